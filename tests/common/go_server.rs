//! The real Go `net/http` server of tests/go/httpserver, for the client and proxy tests:
//! built once per test binary into the target directory with `go build`, started as a child
//! that prints its address. `None` (and a message) when `go` is not on PATH.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use super::example::Example;

/// The built server, or `None` without `go`.
pub fn binary() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if Command::new("go").arg("version").output().is_err() {
            eprintln!("skipped: `go` is not on PATH");
            return None;
        }
        let mut dir = std::env::current_exe().expect("exe");
        dir.pop();
        let out = dir.join("go-httpserver");
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg("./httpserver")
            .current_dir(src)
            .status()
            .expect("run go build");
        assert!(status.success(), "go build of tests/go/httpserver failed");
        Some(out)
    })
    .clone()
}

/// Starts the Go server on a free loopback port (killed when dropped).
pub fn start() -> Option<Example> {
    let bin = binary()?;
    Some(Example::start_with(&mut Command::new(bin), true))
}
