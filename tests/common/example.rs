//! Running the crate's examples as child processes: `cargo test` builds every example next to
//! the test binaries (`target/<profile>/examples/`), so integration tests can start the real
//! program, learn its address from its `listening on <addr>` line, talk to it over loopback and
//! kill it when the test ends (also when the test fails).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long an example may take to print its address.
const START_LIMIT: Duration = Duration::from_secs(20);

/// `target/<profile>`: the test binary runs from `target/<profile>/deps/`.
fn profile_dir() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a built example: `target/<profile>/examples/<name>`. A plain `cargo test` builds
/// every example first; with a filter such as `--test NAME`, build them yourself
/// (`cargo build --release --examples`) or the binary may be stale.
pub fn example_path(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "example {name} not built at {}: run `cargo test` (it builds examples) or \
         `cargo build --release --example {name}`",
        path.display()
    );
    path
}

/// Path of the example `name`, built first if it is missing (`cargo test --test NAME` builds
/// no example): with `cargo build --example <name>`, the profile this test was built with and
/// the same target directory. Cargo gives integration tests no path to examples
/// (`CARGO_BIN_EXE_*` is for binaries only), hence the search next to the test binary.
pub fn build_example(name: &str) -> PathBuf {
    let dir = profile_dir();
    let exe = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        return exe;
    }
    // The directory is named after the profile ("debug" is the dev/test profile).
    let profile = dir.file_name().and_then(|s| s.to_str()).unwrap_or("debug");
    let target_dir = dir.parent().expect("target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", name, "--target-dir"])
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
    assert!(status.success(), "cargo build --example {name} failed");
    assert!(exe.exists(), "{} missing after the build", exe.display());
    exe
}

/// A running example, killed and reaped on drop.
pub struct Example {
    child: Child,
    /// The address from the example's `listening on <addr>` line (`None` for examples that do
    /// not serve).
    pub addr: Option<String>,
    /// Lines the example printed on stdout after the address line.
    pub stdout: mpsc::Receiver<String>,
}

impl Example {
    /// Starts `name` with `args` and, if `serves`, waits for its `listening on <addr>` line.
    pub fn start(name: &str, args: &[&str], serves: bool) -> Example {
        Self::start_with(Command::new(example_path(name)).args(args), serves)
    }

    /// Like [`Example::start`] with a prepared command (environment, limits).
    pub fn start_with(cmd: &mut Command, serves: bool) -> Example {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start example");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut ex = Example {
            child,
            addr: None,
            stdout: rx,
        };
        if serves {
            loop {
                let line = ex
                    .stdout
                    .recv_timeout(START_LIMIT)
                    .expect("example did not print `listening on <addr>` in time");
                if let Some(addr) = line.strip_prefix("listening on ") {
                    ex.addr = Some(addr.trim().to_owned());
                    break;
                }
            }
        }
        ex
    }

    /// The process id, to send the example a signal.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The served address; panics for examples that do not serve.
    pub fn addr(&self) -> &str {
        self.addr.as_deref().expect("example serves no address")
    }

    /// Waits for the process to exit on its own (bounded), returning its exit status and
    /// the remaining stdout lines.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let status = super::wait_for("the example to exit", limit, || {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => Ok(status),
                None => Err("still running"),
            }
        });
        let mut lines = Vec::new();
        while let Ok(l) = self.stdout.recv_timeout(Duration::from_secs(2)) {
            lines.push(l);
        }
        (status, lines)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
