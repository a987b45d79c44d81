//! The blocking pool behind [`block_on_thread`]: OS threads that run code which would block a
//! worker thread (file I/O, DNS, long computations) while the calling goroutine parks.
//!
//! Go needs no such call: a goroutine that enters a system call keeps its OS thread, and the
//! scheduler hands the thread's other goroutines to another thread when the call takes long
//! (`sysmon` retakes the processor after about 20 µs). may coroutines cannot be moved off a
//! thread in the middle of a call, so goway moves the call instead, as tokio's
//! `spawn_blocking` does.
//!
//! Invariants (under `Pool::state`):
//! - `threads` counts pool threads alive or being started, never more than `max`;
//! - `idle` counts threads waiting for work that nobody has woken yet; a submitter that wakes
//!   one moves it from `idle` to `notified`, so two submitters never count on the same thread;
//! - a job is queued only when no idle thread was free and no thread could be started; every
//!   busy thread looks at the queue before it goes idle, so a queued job waits at most until
//!   the first running job ends.
//!
//! The queue is not bounded by a number, but it holds one job per goroutine parked in
//! [`block_on_thread`], so it is bounded by the number of live goroutines
//! ([`max_goroutines`](super::max_goroutines)), as a channel's waiters are.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::config::settings;
use super::join::{Join, Waited};
use super::panicked::Panicked;
use super::park::in_goroutine;
use super::registry::{Wait, Why};
use super::{deadlock, own};

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    state: Mutex<State>,
    cond: Condvar,
    max: usize,
    keep_alive: Duration,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    notified: usize,
    /// Number of the next thread's name (`goway-blocking-N`).
    next_id: u64,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        // Before the pool can first be busy.
        deadlock::add_wake_source(busy);
        let s = settings();
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                next_id: 1,
            }),
            cond: Condvar::new(),
            max: s.max_blocking_threads,
            keep_alive: s.blocking_keep_alive,
        }
    })
}

/// Runs `f` on a thread of goway's blocking pool while the calling goroutine parks, and
/// returns what `f` returned: the way to make a blocking call (`std::fs`, a blocking client
/// library, a long computation) from a goroutine without stopping the other goroutines of its
/// worker thread. Called from a plain thread (not a goroutine), it runs `f` right there.
///
/// The pool starts threads as work arrives, up to
/// [`Config::max_blocking_threads`](super::Config::max_blocking_threads) (default
/// [`DEFAULT_MAX_BLOCKING_THREADS`](crate::runtime::DEFAULT_MAX_BLOCKING_THREADS), 512);
/// beyond that, calls wait in a first-in first-out queue until a thread is free
/// ([`blocking_stats`] shows how many wait). The queue has no fixed length, but each entry is
/// a goroutine parked in this call, so it never holds more entries than there are goroutines.
/// A thread that finds no work for
/// [`Config::blocking_keep_alive`](super::Config::blocking_keep_alive) (default 10 s) exits.
/// Threads are named `goway-blocking-N` (the kernel keeps 15 bytes of a thread's name, so
/// `ps` and `top` show `goway-blocking-`; panic messages show the whole name) and have
/// `std`'s default stack (2 MiB unless `RUST_MIN_STACK` says otherwise), so deep recursion
/// that would overflow a goroutine's stack can also move here. If the OS refuses a new thread
/// while the pool has none, `f` runs on the caller's worker after all (a warning is logged);
/// with threads left, it waits in the queue for one of them.
///
/// The name says what happens: the goroutine blocks on another thread's work. Go needs no
/// such call because its scheduler hands a goroutine stuck in a system call its own thread
/// and moves the others away; may cannot move goroutines off a thread mid-call, so goway moves
/// the call. tokio's `spawn_blocking` runs closures on the same kind of pool (an async caller
/// awaits its handle); its `block_in_place`, which hands the worker's other tasks to a new
/// thread instead, has no goway counterpart. As with [`go!`](crate::go!), `f` must be
/// `'static`: it cannot borrow from the caller's stack. Network I/O does not need this call
/// (goway's [`net`](crate::net) parks on the poller), and neither does DNS through goway's
/// [`net::lookup_host`](crate::net::lookup_host), [`net::dial`](crate::net::dial) and
/// [`ToAddrs`](crate::net::ToAddrs), which use this pool themselves.
///
/// While it waits, the goroutine shows as `running` in [`dump`](super::dump) (it is running
/// code goway cannot see, as in a system call), so the deadlock detector never counts it as
/// asleep.
///
/// # Errors
/// [`Panicked`] (with no goroutine name) if `f` panicked; the caller's goroutine goes on.
/// Re-raise it with `std::panic::resume_unwind(p.into_payload())` to panic the caller
/// instead. The panic is also reported by the panic hook (the default one prints it to stderr
/// with the pool thread's name).
///
/// # Examples
/// ```
/// use goway::runtime::block_on_thread;
///
/// let h = goway::go!(|| {
///     // std::fs blocks the thread that calls it: run it on the blocking pool.
///     block_on_thread(|| std::fs::read_to_string("Cargo.toml")).unwrap()
/// });
/// assert!(h.join().unwrap().unwrap().contains("[package]"));
///
/// // A panic comes back as a typed error.
/// let p = goway::go!(|| block_on_thread(|| -> u32 { panic!("disk on fire") }))
///     .join()
///     .unwrap()
///     .unwrap_err();
/// assert_eq!(p.message(), "disk on fire");
///
/// // On a plain thread the closure runs in place.
/// let here = std::thread::current().id();
/// assert_eq!(block_on_thread(move || std::thread::current().id() == here).unwrap(), true);
/// ```
#[doc(alias = "spawn_blocking")]
#[doc(alias = "block_in_place")]
#[doc(alias = "unblock")]
pub fn block_on_thread<F, T>(f: F) -> Result<T, Panicked>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if !in_goroutine() {
        return run(f);
    }
    let join = Join::new();
    let done = join.clone();
    let job: Job = Box::new(move || {
        // The caller waits until `finish`, so the result is never handed back unused.
        let _ = done.finish(run(f));
    });
    if let Err(job) = pool().submit(job) {
        // No thread could be started and none is running: running here blocks this worker,
        // but it is what the call would have done without the pool, and it does finish.
        job();
    }
    match join.wait(None, Why::new(Wait::Running)) {
        Waited::Done(r) => r,
        Waited::TimedOut => unreachable!("a wait without deadline does not time out"),
    }
}

/// As [`block_on_thread`], but the caller waits only until `deadline`: `None` then, while `f`
/// runs on to its end on its pool thread and its result is dropped. Always runs `f` on the
/// pool, also when called from a plain thread (else the deadline could not be kept), unless
/// no pool thread can be started at all: then `f` runs here after all, as in
/// [`block_on_thread`].
pub(crate) fn block_on_thread_until<F, T>(f: F, deadline: Instant) -> Option<Result<T, Panicked>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let join = Join::new();
    let done = join.clone();
    let job: Job = Box::new(move || {
        // A caller that gave up has detached: the result is dropped here.
        drop(done.finish(run(f)));
    });
    if let Err(job) = pool().submit(job) {
        job();
    }
    match join.wait(Some(deadline), Why::new(Wait::Running)) {
        Waited::Done(r) => Some(r),
        Waited::TimedOut => {
            // A result that arrived meanwhile is still taken.
            join.detach()
        }
    }
}

/// Runs `f` here, turning a panic into a [`Panicked`].
fn run<F: FnOnce() -> T, T>(f: F) -> Result<T, Panicked> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| Panicked::new(None, p))
}

/// The blocking pool now, as seen by [`blocking_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockingStats {
    /// Pool threads alive (running a closure or idle).
    pub threads: usize,
    /// Pool threads waiting for work.
    pub idle: usize,
    /// [`block_on_thread`] calls waiting for a free thread (all threads busy, at the maximum).
    pub queued: usize,
    /// The most threads the pool may have ([`Config::max_blocking_threads`]).
    ///
    /// [`Config::max_blocking_threads`]: super::Config::max_blocking_threads
    pub max_threads: usize,
}

/// A snapshot of the blocking pool behind [`block_on_thread`]: its threads, how many are idle,
/// and how many calls wait for a thread. A `queued` count that stays above zero means the
/// maximum ([`Config::max_blocking_threads`](super::Config::max_blocking_threads)) is too low
/// for the blocking work the program does (or that work is stuck).
///
/// ```
/// goway::go!(|| goway::runtime::block_on_thread(|| ()).unwrap()).join().unwrap();
/// let s = goway::runtime::blocking_stats();
/// assert!(s.threads <= s.max_threads); // the thread lingers idle for a while, then exits
/// ```
pub fn blocking_stats() -> BlockingStats {
    let p = pool();
    let st = p.state.lock();
    BlockingStats {
        threads: st.threads,
        idle: st.idle,
        queued: st.queue.len(),
        max_threads: p.max,
    }
}

/// `true` while the pool runs a call or has one queued (the deadlock detector's question: a
/// call may yet wake someone); `false` if the pool was never started.
fn busy() -> bool {
    POOL.get().is_some_and(|p| {
        let st = p.state.lock();
        st.threads > st.idle || !st.queue.is_empty()
    })
}

impl Pool {
    /// Hands `job` to an idle thread, a new thread, or the queue. Gives the job back if no
    /// thread could be started and no thread is left to take it from the queue.
    fn submit(&'static self, job: Job) -> Result<(), Job> {
        let id = {
            let mut st = self.state.lock();
            if st.idle > 0 || st.threads >= self.max {
                self.enqueue(&mut st, job);
                return Ok(());
            }
            st.threads += 1;
            let id = st.next_id;
            st.next_id += 1;
            id
        };
        // The new thread's first job is this one: nobody else can take it meanwhile. It sits
        // in a slot rather than in the thread's closure, which a failed spawn would drop.
        let slot = Arc::new(Mutex::new(Some(job)));
        let first = slot.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("goway-blocking-{id}"))
            .spawn(move || {
                let job = first.lock().take();
                if let Some(job) = job {
                    self.work(job);
                }
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                let Some(job) = slot.lock().take() else {
                    return Ok(());
                };
                let mut st = self.state.lock();
                st.threads -= 1;
                log::warn!(
                    target: "goway::runtime",
                    "cannot start a blocking-pool thread ({} running): {e}",
                    st.threads
                );
                if st.threads > 0 {
                    self.enqueue(&mut st, job);
                    Ok(())
                } else {
                    Err(job)
                }
            }
        }
    }

    /// Queues `job` and wakes an idle thread for it, if there is one (else a busy thread takes
    /// it when its job ends).
    fn enqueue(&self, st: &mut State, job: Job) {
        st.queue.push_back(job);
        if st.idle > 0 {
            st.idle -= 1;
            st.notified += 1;
            self.cond.notify_one();
        }
    }

    /// A pool thread: runs `first`, then queued jobs, until it has been idle for `keep_alive`.
    fn work(&self, first: Job) {
        let tid = own::note_runtime_thread();
        first();
        let mut st = self.state.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = self.state.lock();
                continue;
            }
            st.idle += 1;
            loop {
                let timed_out = self.cond.wait_for(&mut st, self.keep_alive).timed_out();
                if st.notified > 0 {
                    // Woken for a job (or, with a timeout racing a wake-up, counted as woken:
                    // either way this thread takes the job the waker queued).
                    st.notified -= 1;
                    break;
                }
                if timed_out {
                    st.idle -= 1;
                    if !st.queue.is_empty() {
                        break;
                    }
                    st.threads -= 1;
                    drop(st);
                    if let Some(tid) = tid {
                        own::forget_runtime_thread(tid);
                    }
                    return;
                }
                // A spurious wake-up: still idle.
            }
        }
    }
}
