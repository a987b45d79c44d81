//! Running a program in a child process, with stdout and stderr captured and a time limit. For
//! what can only be seen from outside: an exit status, a fatal report, log lines, a default
//! configuration.
//!
//! Most often the program is a scenario of this test binary: the binary re-executed with
//! `<env>=<scenario>`, running only its ignored `child` test (which does nothing unless that
//! variable is set): [`run`]. [`test_command`] runs another ignored test of the binary; other
//! programs (an example, a test binary without libtest's harness) go through [`run_command`],
//! [`try_run_command`] when a child that hangs is a result to count rather than a failure, or
//! [`finish`] for a child the test talks to while it runs.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often a wait for the child's exit looks again; it synchronises nothing (std has no
/// timed wait for a process).
const POLL: Duration = Duration::from_millis(5);

/// How a child ended and what it printed.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// The exit code (`None`: killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The spawn site the child announced on stdout with a `site=<file>:<line>` line.
    pub fn site(&self) -> &str {
        self.stdout
            .lines()
            // libtest's `test child ... ` precedes the child's first line.
            .find_map(|l| l.split_once("site=").map(|(_, site)| site.trim()))
            .unwrap_or_else(|| panic!("no site= line in the child's stdout:\n{}", self.stdout))
    }

    /// Everything, for an assertion message.
    pub fn describe(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The command that runs this test binary's ignored test `test` alone, with neither
/// `RUST_BACKTRACE`, `RUST_LOG`, `GOWAY_REGISTRY` nor `GOWAY_DETECT_DEADLOCK` inherited, so that
/// the child starts from the default configuration.
pub fn test_command(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("RUST_BACKTRACE")
    .env_remove("RUST_LOG")
    .env_remove("GOWAY_REGISTRY")
    .env_remove("GOWAY_DETECT_DEADLOCK");
    cmd
}

/// The command that runs `scenario` (see the module docs): [`test_command`] for the `child`
/// test, with `<env>=<scenario>`.
pub fn command(env: &str, scenario: &str) -> Command {
    let mut cmd = test_command("child");
    cmd.env(env, scenario);
    cmd
}

/// Runs `scenario` in a child (see [`command`]); kills it and fails if it is still running
/// after `limit`.
pub fn run(env: &str, scenario: &str, limit: Duration) -> Outcome {
    run_command(&mut command(env, scenario), scenario, limit)
}

/// Runs `cmd` with no stdin and its output captured; kills it and fails (naming `what`) if it
/// is still running after `limit`.
pub fn run_command(cmd: &mut Command, what: &str, limit: Duration) -> Outcome {
    finish(spawn(cmd, what), what, limit, |_| {})
}

/// Runs `cmd` as [`run_command`] does, but a child still running after `limit` is not a
/// failure here: it is killed, and its outcome comes back as `Err`.
pub fn try_run_command(cmd: &mut Command, limit: Duration) -> Result<Outcome, Outcome> {
    wait(spawn(cmd, "the child"), limit, |_| {})
}

fn spawn(cmd: &mut Command, what: &str) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start the child: {e}"))
}

/// Waits for `child` and collects its output; `on_line` sees each line of its stdout (without
/// the line end) as it comes. The child's stdout must be piped; its stderr is collected if it
/// is piped and the caller has not taken it. Kills the child and fails (naming `what`) if it is
/// still running after `limit`.
pub fn finish(child: Child, what: &str, limit: Duration, on_line: impl FnMut(&str)) -> Outcome {
    wait(child, limit, on_line).unwrap_or_else(|o| {
        panic!(
            "{what}: child still running after {limit:?}\n{}",
            o.describe()
        )
    })
}

/// [`finish`], with a child still running after `limit` killed and its outcome as `Err`.
fn wait(
    mut child: Child,
    limit: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<Outcome, Outcome> {
    let err = child.stderr.take();
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut e) = err {
            let _ = e.read_to_end(&mut s);
        }
        String::from_utf8_lossy(&s).into_owned()
    });
    let out = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = mpsc::channel::<String>();
    let out = std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx
                        .send(String::from_utf8_lossy(&line).into_owned())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut stdout = String::new();
    let mut stdout_open = true;
    let (status, ended) = loop {
        if stdout_open {
            match rx.recv_timeout(POLL) {
                Ok(line) => {
                    on_line(line.trim_end_matches(['\n', '\r']));
                    stdout.push_str(&line);
                }
                Err(RecvTimeoutError::Timeout) => {}
                // stdout closed: the child is exiting.
                Err(RecvTimeoutError::Disconnected) => stdout_open = false,
            }
        } else {
            std::thread::sleep(POLL);
        }
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break (status, true);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break (child.wait().expect("reap the child"), false);
        }
    };
    let _ = out.join();
    stdout.extend(rx.try_iter());
    let o = Outcome {
        status,
        stdout,
        stderr: err.join().expect("stderr reader"),
    };
    if ended { Ok(o) } else { Err(o) }
}
