//! `sched_hostile.rs`'s tests on one worker thread: the ping-pong pair, the server's
//! connections and every timed wait share that worker, and the examples run under
//! `taskset -c 0`.

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "sched_hostile.rs"]
mod sched_hostile;
