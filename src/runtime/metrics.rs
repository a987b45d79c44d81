//! [`metrics`]: a snapshot of the runtime's counters and gauges (Go's `runtime/metrics`, and
//! what `go_goroutines` and friends report).
//!
//! Collection costs nothing on the hot paths: a snapshot reads counters that already exist
//! (live goroutines, the stack budget, may's per-thread resume counts, the watchdog's samples,
//! the timer queue and the blocking pool). The one counter added for it, goroutines spawned in
//! total, is sharded: each thread bumps a relaxed counter on a cache line of its own (as long
//! as there are no more threads spawning than shards), and a snapshot sums the shards.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::blocking::{BlockingStats, blocking_stats};
use super::carrier;
use super::config::max_goroutines;
use super::registry::num_goroutines;
use super::timer;
use super::watchdog;

/// A snapshot of the runtime ([`metrics`]). Gauges say how things are now; counters
/// (`*_total` in the Prometheus exposition) only grow over the process's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Goroutines spawned through goway and not yet finished (gauge; Go's
    /// `runtime.NumGoroutine`, without `main`): [`num_goroutines`](super::num_goroutines).
    pub goroutines: usize,
    /// Goroutines spawned since the process started (counter).
    pub goroutines_spawned: u64,
    /// Goroutines spawned that have not started running yet (gauge): a backlog that stays
    /// high means the workers cannot keep up.
    pub goroutines_runnable: usize,
    /// The most goroutines that can live at once ([`max_goroutines`](super::max_goroutines)):
    /// each goroutine stack takes two of `vm.max_map_count`'s memory mappings.
    pub goroutine_limit: usize,
    /// Goroutine stacks goway holds now (gauge): one per running goroutine plus the idle ones
    /// kept for reuse (`idle_stacks`). New stacks are refused at `goroutine_limit`.
    pub stacks: usize,
    /// Stacks kept idle for the next goroutines (gauge; part of `stacks`).
    pub idle_stacks: usize,
    /// The kernel's `vm.max_map_count` (the bound behind `goroutine_limit`), when readable.
    pub max_map_count: Option<u64>,
    /// may worker threads that run goroutines.
    pub workers: usize,
    /// Times a thread resumed a goroutine's coroutine (counter): each goroutine's start and
    /// each wake-up after it parked (on a channel, a lock, I/O, a timer) or yielded.
    pub coroutine_resumes: u64,
    /// Deadlines pending in goway's timer queue (gauge): `time::after`, `Timer`, `Ticker`,
    /// `after_func` and network deadlines. Timed waits (`sleep`, `recv_timeout`) park on
    /// may's own timer and are not counted.
    pub timers_pending: usize,
    /// Worker threads held by one goroutine for longer than the blocked-worker threshold now
    /// (gauge; see [`Config::blocked_worker`](super::Config::blocked_worker)); 0 while the
    /// watchdog is off.
    pub blocked_workers: usize,
    /// Times a goroutine held its worker past the threshold (counter): the warnings the
    /// watchdog logged.
    pub blocked_worker_incidents: u64,
    /// The pool behind [`block_on_thread`](super::block_on_thread).
    pub blocking: BlockingStats,
}

impl Metrics {
    /// How many more goroutines could start now before spawns fail for want of stacks:
    /// `goroutine_limit - stacks`, plus the idle stacks that new goroutines reuse.
    ///
    /// ```
    /// let m = goway::runtime::metrics();
    /// assert!(m.headroom() <= m.goroutine_limit);
    /// ```
    pub fn headroom(&self) -> usize {
        self.goroutine_limit
            .saturating_sub(self.stacks)
            .saturating_add(self.idle_stacks)
            .min(self.goroutine_limit)
    }
}

/// A snapshot of the runtime's counters and gauges: goroutines live and spawned, the
/// goroutine limit and the stacks held against it, worker threads, resumes, pending timers,
/// blocked workers and the blocking pool. Each field is read without stopping anything, so
/// fields can be a moment apart from each other. Like [`max_goroutines`](super::max_goroutines),
/// a first call before [`Config::apply`](super::Config::apply) fixes the default configuration.
///
/// # Examples
/// ```
/// let before = goway::runtime::metrics();
/// let (tx, rx) = goway::chan::bounded::<()>(0);
/// let h = goway::go!(move || rx.recv());
/// let during = goway::runtime::metrics();
/// assert!(during.goroutines_spawned > before.goroutines_spawned);
/// assert!(during.goroutines >= 1);
/// assert!(during.workers >= 1);
/// tx.send(()).unwrap();
/// h.join().unwrap().unwrap();
/// ```
pub fn metrics() -> Metrics {
    let (stacks, idle_stacks, runnable) = carrier::counts();
    Metrics {
        goroutines: num_goroutines(),
        goroutines_spawned: spawned_total(),
        goroutines_runnable: runnable,
        goroutine_limit: max_goroutines(),
        stacks,
        idle_stacks,
        max_map_count: std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        workers: may::config().get_workers(),
        coroutine_resumes: resumes_total(),
        timers_pending: timer::pending_count(),
        blocked_workers: watchdog::held_now(),
        blocked_worker_incidents: watchdog::incidents(),
        blocking: blocking_stats(),
    }
}

// ----- goroutines spawned: a sharded counter ---------------------------------------------------

const SHARDS: usize = 16;

#[repr(align(64))]
struct Shard(AtomicU64);

static SPAWNED: [Shard; SHARDS] = [const { Shard(AtomicU64::new(0)) }; SHARDS];
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Counts one goroutine spawned, on the calling thread's shard.
#[inline]
pub(crate) fn count_spawn() {
    let i = SHARD
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
                s.set(i);
            }
            i
        })
        .unwrap_or(0);
    SPAWNED[i].0.fetch_add(1, Ordering::Relaxed);
}

fn spawned_total() -> u64 {
    SPAWNED.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
}

// ----- coroutine resumes: may's per-thread counts ----------------------------------------------

/// The largest total reported so far: a thread caught in the middle of a switch is skipped by
/// `for_each_resumer`, and the counter must not go back.
static RESUMES_SEEN: AtomicU64 = AtomicU64::new(0);

fn resumes_total() -> u64 {
    let mut sum = 0u64;
    // Each resume bumps the thread's count twice (before and after it).
    may::coroutine::Coroutine::for_each_resumer(|_, count, _| sum += (count / 2) as u64);
    let prev = RESUMES_SEEN.fetch_max(sum, Ordering::Relaxed);
    prev.max(sum)
}
