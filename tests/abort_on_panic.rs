//! `Config::abort_on_panic(true)` gives Go's crash: a goroutine's panic prints `panic: <v>` to
//! stderr and exits the process with status 2, as a Go program whose goroutine panics does.
//!
//! The runtime's settings are fixed once per process, so the crash runs in a child: the example
//! `examples/crash_on_panic.rs`. Cargo gives integration tests no path to examples
//! (`CARGO_BIN_EXE_*` is for binaries only), so the test finds it next to its own executable:
//! the test runs from `target/<profile>/deps/`, the example is `target/<profile>/examples/`.
//! `cargo test` builds the examples along with the tests; when only this test was built
//! (`cargo test --test abort_on_panic`), the test builds the example itself with
//! `cargo build --example crash_on_panic` and the same profile and target directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>`, from this test's path `target/<profile>/deps/abort_on_panic-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_path_buf()
}

fn crash_example() -> PathBuf {
    let dir = profile_dir();
    let exe = dir
        .join("examples")
        .join(format!("crash_on_panic{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        return exe;
    }
    // Build it with the profile this test was built with: the directory is named after it
    // ("debug" is the dev/test profile).
    let profile = dir.file_name().and_then(|s| s.to_str()).unwrap_or("debug");
    let target_dir = dir.parent().expect("target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", "crash_on_panic", "--target-dir"])
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
        .expect("run cargo build --example crash_on_panic");
    assert!(
        status.success(),
        "cargo build --example crash_on_panic failed"
    );
    assert!(exe.exists(), "{} missing after the build", exe.display());
    exe
}

/// Runs the example and collects its exit status and output; kills it after `LIMIT`.
fn run_child(exe: &Path) -> (Option<i32>, String, String) {
    const LIMIT: Duration = Duration::from_secs(30);
    let mut child = Command::new(exe)
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the crash_on_panic example");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout")));
    let err = read(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for the child") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the crash_on_panic example still ran after {LIMIT:?}");
        }
        // Polling a child process: nothing to wait on with a timeout in std.
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    (status.code(), stdout, stderr)
}

#[test]
fn goroutine_panic_exits_with_status_2_and_prints_it() {
    let (code, stdout, stderr) = run_child(&crash_example());
    assert_eq!(code, Some(2), "stderr:\n{stderr}\nstdout:\n{stdout}");
    assert!(stderr.contains("panic: boom"), "stderr:\n{stderr}");
    assert!(stderr.contains("goroutine 'crasher'"), "stderr:\n{stderr}");
    // Go: main's code after the panic does not run.
    assert!(stderr.contains("start"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("must not") && !stdout.contains("must not"),
        "main went on:\n{stderr}"
    );
}
