//! `Config::abort_on_panic(true)` gives Go's crash: a goroutine's panic prints `panic: <v>` to
//! stderr and exits the process with status 2, as a Go program whose goroutine panics does.
//!
//! The runtime's settings are fixed once per process, so the crash runs in a child: the example
//! `examples/crash_on_panic.rs`, found next to this test's executable. `cargo test` builds the
//! examples along with the tests; when only this test was built (`cargo test --test
//! abort_on_panic`), the test builds the example itself (`common::example::build_example`).

use std::time::Duration;

mod common;
use common::child;
use common::example::build_example;

/// Runs the example and collects its exit status and output; kills it after `LIMIT`.
fn run_child() -> child::Outcome {
    const LIMIT: Duration = Duration::from_secs(30);
    child::run_command(
        std::process::Command::new(build_example("crash_on_panic"))
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE"),
        "the crash_on_panic example",
        LIMIT,
    )
}

#[test]
fn goroutine_panic_exits_with_status_2_and_prints_it() {
    let child::Outcome {
        status,
        stdout,
        stderr,
    } = run_child();
    assert_eq!(
        status.code(),
        Some(2),
        "stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    assert!(stderr.contains("panic: boom"), "stderr:\n{stderr}");
    assert!(stderr.contains("goroutine 'crasher'"), "stderr:\n{stderr}");
    // Go: main's code after the panic does not run.
    assert!(stderr.contains("start"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("must not") && !stdout.contains("must not"),
        "main went on:\n{stderr}"
    );
}
