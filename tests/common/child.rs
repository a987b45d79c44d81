//! Running a scenario in a child process: this test binary re-executed with `<env>=<scenario>`,
//! running only its ignored `child` test (which does nothing unless that variable is set), with
//! stdout and stderr captured and a time limit. For what can only be seen from outside: an exit
//! status, a fatal report, log lines, a default configuration.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a child ended and what it printed.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
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

/// Runs `scenario` in a child (see the module docs), with neither `RUST_BACKTRACE`,
/// `RUST_LOG` nor `GOWAY_REGISTRY` inherited; kills it and fails if it is still running after
/// `limit`.
pub fn run(env: &str, scenario: &str, limit: Duration) -> Outcome {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, scenario)
        .env_remove("RUST_BACKTRACE")
        .env_remove("GOWAY_REGISTRY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let s = child.wait().expect("wait");
            let o = Outcome {
                status: s,
                stdout: out.join().expect("stdout reader"),
                stderr: err.join().expect("stderr reader"),
            };
            panic!(
                "{scenario}: child still running after {limit:?}\n{}",
                o.describe()
            );
        }
        // Bounds a poll on the child's exit; it synchronises nothing.
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}
