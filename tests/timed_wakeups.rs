//! No timed wait may lose its wake-up.
//!
//! may 0.3.51's `Park::subscribe` armed a park's timer before it stored the parking coroutine in
//! the slot the timer takes it from. A worker preempted between the two (for longer than the
//! timeout) let the timer fire on an empty slot, and the coroutine then stayed parked for good:
//! 4 goroutines doing 200 `sleep(100µs)` each hung in about 2 % of fresh processes on a loaded
//! machine, always at a first sleep. goway's vendored may arms the timer only once the coroutine
//! is in the slot (see `vendor/may/PATCHES.md`).
//!
//! The race needs a preemption at one exact point, so the test runs the workload in many fresh
//! processes (this binary, re-run with an ignored test) while CPU hogs keep the machine busy;
//! a child that does not finish in time is a hang. `GOWAY_TIMED_WAKEUP_RUNS` sets how many
//! children run (default 120, half on one worker and half on two).

mod common;

use std::time::Duration;

use common::child;

/// A child that takes longer than this hung (it needs about 50 ms).
const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// The workload: 4 goroutines, each 200 sleeps of 100 µs, plus timed receives and a select
/// with a timer arm, all of which park with a timeout. Run in a child process by the test below.
#[test]
#[ignore = "the workload of timed_parks_never_lose_their_wake_up, run by it in child processes"]
fn child_timed_parks() {
    let workers = std::env::var("GOWAY_TEST_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    goway::runtime::Config::new()
        .workers(workers)
        .apply()
        .expect("the runtime starts with this test");
    let handles: Vec<_> = (0..4)
        .map(|i| {
            goway::go!(move || {
                let (_tx, rx) = goway::chan::bounded::<()>(0);
                for n in 0..200 {
                    match (i + n) % 4 {
                        0 | 1 => goway::time::sleep(Duration::from_micros(100)),
                        2 => assert!(rx.recv_timeout(Duration::from_micros(100)).is_err()),
                        _ => goway::select! {
                            recv(rx) -> _ => unreachable!("nobody sends"),
                            recv(goway::time::after(Duration::from_micros(100))) -> _ => {},
                        },
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("the goroutine does not panic");
    }
}

#[test]
fn timed_parks_never_lose_their_wake_up() {
    let runs: usize = std::env::var("GOWAY_TIMED_WAKEUP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(120);
    // Two CPU hogs, so that worker threads get preempted; they stop when the test ends.
    let hogs = common::hogs::CpuHogs::start(2);
    let mut hung = Vec::new();
    let mut failed = Vec::new();
    for run in 0..runs {
        let workers = 1 + run % 2;
        let mut cmd = child::test_command("child_timed_parks");
        cmd.env("GOWAY_TEST_WORKERS", workers.to_string());
        match child::try_run_command(&mut cmd, CHILD_LIMIT) {
            Ok(o) if o.status.success() => {}
            Ok(o) => failed.push((run, workers, o.describe())),
            Err(_) => hung.push((run, workers)),
        }
    }
    drop(hogs);
    assert!(
        failed.is_empty(),
        "children failed (run, workers, outcome): {failed:?}"
    );
    assert!(
        hung.is_empty(),
        "{} of {runs} children hung (a timed wait lost its wake-up): (run, workers) {hung:?}",
        hung.len()
    );
}
