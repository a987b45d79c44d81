//! Go's crash on an unrecovered goroutine panic, opted into with
//! `Config::abort_on_panic(true)`: the panicking goroutine prints `panic: <message>` and its
//! name to stderr and the process exits with status 2; `main` does not go on.
//!
//! Run: `cargo run --example crash_on_panic; echo "exit status $?"` (prints `panic: boom` on
//! stderr, then `exit status 2`). `tests/abort_on_panic.rs` runs it as a child process.
//!
//! The Go program it ports: `main` starts a goroutine that panics and waits for it; the panic
//! ends the whole program before `main` goes on.

use goway::runtime::Config;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Before the first goroutine: afterwards the settings are fixed.
    Config::new().abort_on_panic(true).apply()?;
    log::info!("start");
    let h = goway::Builder::new()
        .name("crasher")
        .spawn(|| -> () { panic!("boom") })?;
    // The goroutine ends the process before its result arrives.
    let r = h.join();
    log::error!("main continues (must not happen): {r:?}");
    Err("the panic did not end the process".into())
}
