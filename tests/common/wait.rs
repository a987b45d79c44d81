//! Bounded waits: the one watchdog that every wait of the tests is bounded by, and a poll for
//! conditions that have no notification to wait on (gauges, the goroutine dump, another
//! process's state, a peer's answer).

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Upper bound for any wait that should succeed: reaching it means a bug (a hang, a lost
/// wake-up), not a slow machine. A file whose waits need longer says why, with a multiple of
/// this one.
pub const WATCHDOG: Duration = Duration::from_secs(10);

/// The first pause between two checks of a poll; each pause doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(100);
/// The longest pause between two checks: an expensive check (a dump, a round trip to another
/// process) is not run in a spin.
const MAX_PAUSE: Duration = Duration::from_millis(10);

/// Polls `cond` until it holds; panics naming `what` once `limit` has passed. Between checks it
/// pauses (see [`wait_for`]).
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    if poll(limit, || if cond() { Ok(()) } else { Err(()) }).is_err() {
        panic!("timed out waiting for {what} (after {limit:?})");
    }
}

/// Polls `probe` until it gives `Ok`, and returns that value; panics naming `what` and the
/// last `Err` (what the probe saw) once `limit` has passed.
///
/// Between checks it pauses, a goroutine with goway's sleep (the worker runs others), a
/// thread with std's; the pauses start short and grow to 10 ms, so a condition that holds
/// soon is seen soon and a slow one is not polled in a spin. The pause only paces the poll: it
/// synchronises nothing.
#[track_caller]
pub fn wait_for<T, E: Display>(
    what: &str,
    limit: Duration,
    probe: impl FnMut() -> Result<T, E>,
) -> T {
    match poll(limit, probe) {
        Ok(v) => v,
        Err(seen) => panic!("timed out waiting for {what} (after {limit:?}); last seen:\n{seen}"),
    }
}

/// `probe`'s first `Ok`, or its last `Err` once `limit` has passed (it is checked at least
/// once).
fn poll<T, E>(limit: Duration, mut probe: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    let mut pause = FIRST_PAUSE;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => {}
        }
        if goway::runtime::in_goroutine() {
            goway::time::sleep(pause);
        } else {
            std::thread::sleep(pause);
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
