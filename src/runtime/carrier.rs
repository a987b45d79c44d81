//! Carriers: recycled may coroutines that run goroutines.
//!
//! A may spawn maps a fresh stack (or takes one from may's pool), allocates its bookkeeping and
//! always queues the coroutine on a global run queue with an `eventfd` write to wake a worker:
//! three system calls per goroutine, which is why raw may spawns and joins 100k coroutines
//! several times slower than Go (`BENCHMARKS.md`, "Channels and goroutines"). goway keeps finished coroutines parked on
//! an idle stack instead; a spawn hands the next goroutine to an idle carrier through a
//! one-slot goway channel, which wakes it on the spawning worker's local queue: no system call,
//! no stack mapping.
//!
//! Invariants:
//! - A carrier's sender is on `IDLE` only while the carrier is between jobs; whoever pops it
//!   owns the right to hand it exactly one job.
//! - `STACKS` counts every coroutine goway started (carriers busy or idle, dedicated goroutines)
//!   and is checked against the mapping budget before a new stack is made.
//! - `SUBMITTED` counts jobs once they are handed out, `STARTED` once they start (every job
//!   calls `started` first thing, which may come before its spawner counts it handed out).

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::overflow;
use super::park::Waiter;
use super::registry::{Wait, Why};
use super::slots::{self, StackRef};

/// A goroutine's body, wrapped with its result delivery; it runs on the stack given.
pub(crate) type Job = Box<dyn FnOnce(StackRef) + Send>;

/// Idle carriers; the most recently idle last (its stack is warm).
static IDLE: Mutex<Vec<Arc<Carrier>>> = Mutex::new(Vec::new());

/// A carrier's mailbox. Guards the next job and, while the carrier is parked waiting for one,
/// its waiter.
struct Carrier {
    slot: Mutex<Slot>,
}

struct Slot {
    job: Option<Job>,
    parked: Option<Arc<Waiter>>,
}
/// Idle carriers kept at most: each holds a stack (two mappings and its touched pages).
const MAX_IDLE: usize = 1024;

static STACKS: AtomicUsize = AtomicUsize::new(0);
/// Jobs handed out, and jobs started, since the process began; each on a cache line of its
/// own (spawning and starting are often on different workers).
static SUBMITTED: Counter = Counter(AtomicUsize::new(0));
static STARTED: Counter = Counter(AtomicUsize::new(0));

#[repr(align(64))]
struct Counter(AtomicUsize);

/// `(started, waiting)`: jobs started so far, and jobs handed out and not started yet then,
/// never overcounted: `STARTED` is read first, and each job `SUBMITTED` counts is either in
/// `started` or starts later, so `STARTED` is sure to reach `started + waiting`. (A job that
/// starts before its spawner counts it handed out is missed for that moment.)
fn backlog() -> (usize, usize) {
    let started = STARTED.0.load(Ordering::SeqCst);
    let waiting = SUBMITTED.0.load(Ordering::SeqCst).saturating_sub(started);
    (started, waiting)
}

/// A goroutine that spawns while more than this many spawned goroutines wait to start is
/// paused while as many more start as that backlog exceeds `THROTTLE_LOW`, at most
/// `THROTTLE_HIGH - THROTTLE_LOW` (Go's local run queue holds 256): alone, it goes on once the
/// backlog is down to `THROTTLE_LOW`. Without it, a loop spawning 100k short goroutines runs
/// none of them until it blocks, so all 100k need a stack at once (and there are only about
/// 31k on a default Linux).
///
/// The pause is counted in starts, not until the backlog is low again: a plain thread
/// spawning in a loop (plain threads are never paused: they hold up no worker) may keep the
/// backlog high for as long as it likes, and the paused goroutine must not wait for that
/// thread to stop. Every job in the backlog is runnable and counts itself started first
/// thing, so the starts come without a timer (which would cost a wake-up of the timer thread
/// per pause).
const THROTTLE_HIGH: usize = 256;
const THROTTLE_LOW: usize = 64;
/// Paused spawners, each with the `STARTED` count that ends its pause.
static THROTTLED: Mutex<Vec<(usize, Arc<Waiter>)>> = Mutex::new(Vec::new());
/// The smallest of `THROTTLED`'s counts, `usize::MAX` when it is empty; written under its
/// lock. Each start reads it after counting itself, and each spawner reads `STARTED` after
/// writing it (all `SeqCst`), so of a start that ends a pause and the spawner, at least one
/// sees the other.
static WAKE_AT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Runs `job` on an idle carrier, or on a new one.
pub(crate) fn submit(job: Job, max_stacks: usize) -> io::Result<()> {
    // Pop first: the idle-stack lock must not be held while waking the carrier (a woken
    // coroutine may run on this very worker and need that lock).
    let idle = IDLE.lock().pop();
    if let Some(c) = idle {
        let parked = {
            let mut slot = c.slot.lock();
            slot.job = Some(job);
            slot.parked.take()
        };
        if let Some(w) = parked {
            if w.try_select(0) {
                w.unpark();
            }
        }
        SUBMITTED.0.fetch_add(1, Ordering::SeqCst);
        return Ok(());
    }
    spawn_coroutine(
        Box::new(move |stack| carrier_main(job, stack)),
        None,
        max_stacks,
    )
    .inspect(|()| {
        SUBMITTED.0.fetch_add(1, Ordering::SeqCst);
    })
}

/// Runs `job` on a coroutine of its own with a stack of `words` machine words.
pub(crate) fn spawn_dedicated(job: Job, words: usize, max_stacks: usize) -> io::Result<()> {
    spawn_coroutine(job, Some(words), max_stacks).inspect(|()| {
        SUBMITTED.0.fetch_add(1, Ordering::SeqCst);
    })
}

/// Stacks held (busy and idle), idle stacks, and jobs handed out but not started: for
/// `runtime::metrics`.
pub(crate) fn counts() -> (usize, usize, usize) {
    let idle = IDLE.lock().len();
    (STACKS.load(Ordering::Relaxed), idle, backlog().1)
}

/// Called first thing by every job.
pub(crate) fn started() {
    let now = STARTED.0.fetch_add(1, Ordering::SeqCst) + 1;
    if now >= WAKE_AT.load(Ordering::SeqCst) {
        end_pauses(now);
    }
}

/// Wakes the paused spawners whose pause ends at `now` starts or earlier.
#[cold]
#[inline(never)]
fn end_pauses(now: usize) {
    let due: Vec<Arc<Waiter>> = {
        let mut t = THROTTLED.lock();
        let mut due = Vec::new();
        t.retain(|(at, w)| {
            let keep = *at > now;
            if !keep {
                due.push(w.clone());
            }
            keep
        });
        set_wake_at(&t);
        due
    };
    for w in due {
        if w.try_select(0) {
            w.unpark();
        }
    }
}

/// Sets `WAKE_AT` for paused spawners `t` (`THROTTLED`, locked).
fn set_wake_at(t: &[(usize, Arc<Waiter>)]) {
    let at = t.iter().map(|(at, _)| *at).min().unwrap_or(usize::MAX);
    WAKE_AT.store(at, Ordering::SeqCst);
}

/// Pauses a spawning goroutine while too many spawned goroutines wait to start (see
/// `THROTTLE_HIGH`). Plain threads are never paused: they do not hold up a worker.
pub(crate) fn throttle() {
    let (started, backlog) = backlog();
    if backlog <= THROTTLE_HIGH || !super::park::in_goroutine() {
        return;
    }
    // Counted from the same `started`: `STARTED` is sure to pass `started + backlog`, and so
    // `until`, however many spawn or start meanwhile.
    let until = started + (backlog - THROTTLE_LOW).min(THROTTLE_HIGH - THROTTLE_LOW);
    let w = Waiter::new();
    {
        let mut t = THROTTLED.lock();
        t.push((until, w.clone()));
        set_wake_at(&t);
    }
    // Re-check after registering: a start that read `WAKE_AT` before it was set missed us.
    if STARTED.0.load(Ordering::SeqCst) < until {
        w.wait(None, Why::new(Wait::SpawnThrottle));
    }
    {
        let mut t = THROTTLED.lock();
        t.retain(|(_, x)| !Arc::ptr_eq(x, &w));
        set_wake_at(&t);
    }
    w.recycle();
}

/// A carrier: runs its first job, then waits on the idle stack for the next one.
fn carrier_main(first: Job, stack: StackRef) {
    let me = Arc::new(Carrier {
        slot: Mutex::new(Slot {
            job: None,
            parked: None,
        }),
    });
    let mut job = first;
    loop {
        job(stack);
        {
            let mut idle = IDLE.lock();
            if idle.len() >= MAX_IDLE {
                return;
            }
            idle.push(me.clone());
        }
        job = loop {
            let w = {
                let mut slot = me.slot.lock();
                if let Some(j) = slot.job.take() {
                    break j;
                }
                let w = Waiter::new();
                slot.parked = Some(w.clone());
                w
            };
            // Only a spawner that popped us from `IDLE` commits this waiter, after leaving
            // the job in the slot.
            w.wait(None, Why::new(Wait::Internal));
            w.recycle();
        };
    }
}

/// Accounts a stack for its coroutine's life; meanwhile its bottom page is given back and the
/// overflow handler knows its bounds.
struct Stack {
    bounds: Option<super::stack::Bounds>,
    claim: slots::Claim,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(b) = &self.bounds {
            // SAFETY: `bounds` came from `stack::enter` in `coroutine_main`, on this coroutine,
            // and this guard lives in that function's frame: it drops before the coroutine
            // ends.
            unsafe { super::stack::leave(b) };
        }
        STACKS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a coroutine runs, given its stack.
type Body = Box<dyn FnOnce(StackRef) + Send>;

/// The first function of every coroutine goway starts.
#[inline(never)]
fn coroutine_main(body: Body, stack_bytes: usize, slot: slots::Reserved) {
    overflow::enter_coroutine();
    // SAFETY: this is the first thing every coroutine goway starts runs (after the handler
    // check, which returns), always from this one function, on a stack of `stack_bytes`.
    let bounds = unsafe { super::stack::enter(stack_bytes) };
    let stack = Stack {
        claim: slot.claim(bounds.as_ref()),
        bounds,
    };
    body(stack.claim.stack())
}

/// Starts a may coroutine, within the stack budget.
///
/// Not generic (the body comes boxed), so that the closure below is one type, and may's
/// coroutine entry one instantiation, for every coroutine goway starts.
fn spawn_coroutine(body: Body, words: Option<usize>, max_stacks: usize) -> io::Result<()> {
    let n = STACKS.fetch_add(1, Ordering::Relaxed);
    if n >= max_stacks {
        STACKS.fetch_sub(1, Ordering::Relaxed);
        return Err(io::Error::other(format!(
            "goroutine limit reached: {n} goroutine stacks exist and each needs two of \
             vm.max_map_count's memory mappings (runtime::max_goroutines() = {max_stacks}); \
             raise it with `sysctl -w vm.max_map_count=N` or lower the concurrency"
        )));
    }
    let bytes = words.unwrap_or_else(|| may::config().get_stack_size()) * size_of::<usize>();
    if bytes >= super::stack::PROBE_FROM {
        if let Err(e) = super::stack::probe(bytes) {
            STACKS.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot map a goroutine stack of {bytes} bytes: {e} (the system's memory \
                     limits: RAM and swap under vm.overcommit_memory, RLIMIT_AS; use a smaller \
                     stack)"
                ),
            ));
        }
    }
    let mut b = may::coroutine::Builder::new();
    if let Some(w) = words {
        b = b.stack_size(w);
    }
    // One closure type for every coroutine (carriers and goroutines with a stack of their
    // own), so that `coroutine_main`'s frame always sits at the same distance from the top of
    // its stack (see `stack`).
    let slot = slots::reserve();
    let body = move || coroutine_main(body, bytes, slot);
    // The fault handlers in force before the first coroutine (generator adds its own).
    overflow::before_spawn();
    // may panics (instead of returning an error) when the OS refuses a stack: contain it.
    let spawned = panic::catch_unwind(AssertUnwindSafe(|| {
        // may requires that the coroutine never blocks its worker thread, keeps no
        // thread-local state across a blocking call and fits its stack.
        // SAFETY: these are the documented rules of `go!`, and goway's blocking calls park.
        unsafe { b.spawn(body) }
    }));
    let err = match spawned {
        // may's join handle is not needed: results travel through goway's own channel.
        Ok(Ok(_may_handle)) => {
            // Before the coroutine gets going (it waits for this).
            overflow::after_spawn();
            // may's scheduler (and its threads) now exists: the deadlock detector counts them.
            super::own::note_may_started();
            return Ok(());
        }
        Ok(Err(e)) => e.to_string(),
        Err(p) => super::panicked::panic_message(p.as_ref()),
    };
    STACKS.fetch_sub(1, Ordering::Relaxed);
    Err(io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "cannot create a goroutine stack: {err} (each stack needs two memory mappings: \
             raise vm.max_map_count with `sysctl -w vm.max_map_count=N` or lower the concurrency)"
        ),
    ))
}
