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
//! - `PENDING` counts jobs handed out and not yet started.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// A goroutine that spawns while this many spawned goroutines wait to start is paused until
/// the backlog falls to `THROTTLE_LOW` (Go's local run queue holds 256). Without it, a loop
/// spawning 100k short goroutines runs none of them until it blocks, so all 100k need a stack
/// at once (and there are only about 31k on a default Linux).
const THROTTLE_HIGH: usize = 256;
const THROTTLE_LOW: usize = 64;
/// Paused spawners; `ANY_THROTTLED` says whether to look.
static THROTTLED: Mutex<Vec<Arc<Waiter>>> = Mutex::new(Vec::new());
static ANY_THROTTLED: AtomicBool = AtomicBool::new(false);
/// The longest a spawner stays paused; then it goes on whatever the backlog. The wake-up does
/// not rely on it: whoever brings the backlog down to `THROTTLE_LOW` wakes every paused
/// spawner (`started` and `throttle` each write their side, then read the other's, all
/// `SeqCst`, so at least one of them sees the other). It bounds the pause when the backlog
/// does not fall: plain threads are never paused, and a thread spawning in a loop can keep the
/// backlog above `THROTTLE_LOW` for as long as it likes; the paused goroutine must not wait
/// for that thread to stop.
const THROTTLE_MAX_PAUSE: Duration = Duration::from_millis(5);

/// Runs `job` on an idle carrier, or on a new one.
pub(crate) fn submit(job: Job, max_stacks: usize) -> io::Result<()> {
    PENDING.fetch_add(1, Ordering::SeqCst);
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
        return Ok(());
    }
    spawn_coroutine(
        Box::new(move |stack| carrier_main(job, stack)),
        None,
        max_stacks,
    )
    .inspect_err(|_| {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    })
}

/// Runs `job` on a coroutine of its own with a stack of `words` machine words.
pub(crate) fn spawn_dedicated(job: Job, words: usize, max_stacks: usize) -> io::Result<()> {
    PENDING.fetch_add(1, Ordering::SeqCst);
    spawn_coroutine(job, Some(words), max_stacks).inspect_err(|_| {
        PENDING.fetch_sub(1, Ordering::SeqCst);
    })
}

/// Stacks held (busy and idle), idle stacks, and jobs handed out but not started: for
/// `runtime::metrics`.
pub(crate) fn counts() -> (usize, usize, usize) {
    let idle = IDLE.lock().len();
    (
        STACKS.load(Ordering::Relaxed),
        idle,
        PENDING.load(Ordering::Relaxed),
    )
}

/// Called first thing by every job.
pub(crate) fn started() {
    let left = PENDING.fetch_sub(1, Ordering::SeqCst) - 1;
    if left <= THROTTLE_LOW && ANY_THROTTLED.load(Ordering::SeqCst) {
        let paused = {
            let mut t = THROTTLED.lock();
            ANY_THROTTLED.store(false, Ordering::SeqCst);
            std::mem::take(&mut *t)
        };
        for w in paused {
            if w.try_select(0) {
                w.unpark();
            }
        }
    }
}

/// Pauses a spawning goroutine while too many spawned goroutines wait to start (see
/// `THROTTLE_HIGH`). Plain threads are never paused: they do not hold up a worker.
pub(crate) fn throttle() {
    if PENDING.load(Ordering::Relaxed) <= THROTTLE_HIGH || !super::park::in_goroutine() {
        return;
    }
    let w = Waiter::new();
    {
        let mut t = THROTTLED.lock();
        t.push(w.clone());
        ANY_THROTTLED.store(true, Ordering::SeqCst);
    }
    // Re-check after registering: a starter that already passed its check would miss us.
    if PENDING.load(Ordering::SeqCst) > THROTTLE_LOW {
        w.wait(
            Some(Instant::now() + THROTTLE_MAX_PAUSE),
            Why::new(Wait::SpawnThrottle),
        );
    }
    THROTTLED.lock().retain(|x| !Arc::ptr_eq(x, &w));
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
