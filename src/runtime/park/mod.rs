//! Giving up the worker: parking, until another goroutine or thread wakes the caller, and
//! yielding ([`yield_now`], Go's `Gosched`).
//!
//! A [`Waiter`] parks its owner (the coroutine, else the OS thread) until one of its operations
//! commits or its deadline passes; every goway wait (channels, select, `sync`, joins, sleeps,
//! the carriers) is built on it.

mod shim;
mod waiter;

pub(crate) use waiter::Waiter;

use std::time::Instant;

use super::registry::{Wait, Why};
use super::timer::{self, Entry, Fire};

/// Waits forever (a never channel). A goroutine parks; a thread parks; neither busy-waits.
pub(crate) fn park_forever(why: Why) {
    park_until(None, why);
}

/// Waits until `deadline` (forever for `None`) with nothing that can wake it early.
pub(crate) fn park_until(deadline: Option<Instant>, why: Why) {
    let w = Waiter::new();
    w.wait(deadline, why);
    w.recycle();
}

/// Parks the calling goroutine and has the timer thread wake it: being woken from a plain
/// thread puts it on a worker's global run queue, behind every goroutine queued there before it
/// (Go's `Gosched` puts the goroutine on the global queue for the same reason). The vendored
/// may's workers now also take in their global queue every 61 runs (`vendor/may/PATCHES.md`
/// 10), which alone keeps a `yield_now` loop from starving those goroutines.
fn yield_to_all() {
    let w = Waiter::new();
    let q = timer::queue();
    let id = q.next_id();
    q.insert(
        id,
        Instant::now(),
        Entry {
            target: w.clone(),
            seq: 0,
            period: None,
        },
    );
    w.wait(None, Why::new(Wait::Yield));
    w.recycle();
}

/// A waiter queued on the timer thread is woken when its deadline passes.
impl Fire for Waiter {
    fn fire(&self, _seq: u64, _now: Instant) {
        if self.try_select(0) {
            self.unpark();
        }
    }
}

/// `true` when called from inside a goroutine (any may coroutine), `false` on a plain thread.
///
/// # Examples
/// ```
/// use goway::runtime::in_goroutine;
/// assert!(!in_goroutine()); // a plain thread
/// assert!(goway::go!(in_goroutine).join().unwrap());
/// ```
#[inline(never)] // reads a thread-local: never keep its address across a caller's park
pub fn in_goroutine() -> bool {
    may::coroutine::is_coroutine()
}

/// Lets other goroutines run (Go's `runtime.Gosched`). On a plain thread, yields the thread.
///
/// Most calls requeue the goroutine behind the others on its worker's local run queue (cheap).
/// Every 61st call on a worker (Go checks its global queue every 61 schedules) it is woken
/// through the timer thread instead, which puts it behind goroutines waiting on the worker's
/// global queue (new goroutines, goroutines woken by OS threads), so a goroutine that loops on
/// `yield_now` cannot starve them.
///
/// # Examples
/// ```
/// let h = goway::go!(|| {
///     for _ in 0..100 {
///         goway::runtime::yield_now(); // lets the other goroutines of this worker run
///     }
///     "done"
/// });
/// assert_eq!(h.join().unwrap(), "done");
/// ```
pub fn yield_now() {
    if !in_goroutine() {
        std::thread::yield_now();
        return;
    }
    if next_yield_is_global() {
        yield_to_all();
    } else {
        may::coroutine::yield_now();
    }
}

/// Counts this worker's yields; `true` every 61st. Never inlined: a thread-local's address
/// must not be kept across the caller's yield (the goroutine may resume on another worker).
#[inline(never)]
fn next_yield_is_global() -> bool {
    thread_local! {
        static YIELDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    YIELDS.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % 61 == 0
    })
}
