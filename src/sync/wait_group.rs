//! [`WaitGroup`]: Go's `sync.WaitGroup`, with `add`, `done` and `wait`.
//!
//! Invariants (after Go's `sync/waitgroup.go`):
//! - `state` packs the counter (high 32 bits, signed) and the number of registered waiters (low
//!   32 bits) so that "counter is zero" and "no waiter registered" are checked together.
//! - A waiter registers (compare-and-swap on `state`, counter non-zero) and joins the list under
//!   the list's lock. Whoever brings the counter to zero with waiters registered takes that lock
//!   and releases every listed waiter, subtracting them from the waiter count; a waiter that
//!   timed out removes itself and subtracts itself.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::waiters::{WaitList, unpark_all};
use crate::runtime::JoinHandle;
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

/// The case a waiter is committed to when the counter reaches zero.
const RELEASED: usize = 0;

/// Waits for a collection of goroutines (or threads) to finish: Go's `sync.WaitGroup`.
///
/// [`add`](WaitGroup::add) the number of tasks, have each call [`done`](WaitGroup::done) when
/// it finishes, and [`wait`](WaitGroup::wait) until the counter is back to zero. Clones share
/// one counter (Go passes a `*sync.WaitGroup`); cloning costs one atomic increment.
///
/// Go's rules hold: `wait` with a zero counter returns at once; every waiter is released when
/// the counter reaches zero; the group is reusable once `wait` has returned (the `add`s of the
/// next round must happen after that, as in Go); a counter going negative panics with
/// `sync: negative WaitGroup counter`. A waiting goroutine parks, so its worker runs others.
///
/// Unlike may's `WaitGroup` (which counts live clones), this one has an explicit counter, so a
/// clone can be handed out before the work is known, and one task may account for several.
///
/// # Examples
/// ```
/// use goway::{go, sync::WaitGroup};
///
/// let wg = WaitGroup::new();
/// for i in 0..4 {
///     wg.add(1);
///     let wg = wg.clone();
///     go!(move || {
///         let _ = i * i; // work
///         wg.done();
///     });
/// }
/// wg.wait();
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: AtomicU64,
    /// Guards the parked waiters.
    waiters: parking_lot::Mutex<WaitList>,
}

#[inline]
fn counter(s: u64) -> i32 {
    (s >> 32) as i32
}

#[inline]
fn registered(s: u64) -> u32 {
    s as u32
}

impl WaitGroup {
    /// A group with a zero counter.
    ///
    /// # Examples
    /// ```
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.wait(); // zero counter: returns at once
    /// ```
    pub fn new() -> Self {
        WaitGroup::default()
    }

    /// Adds `delta` (which may be negative) to the counter (Go's `Add`). When it reaches
    /// zero, every waiter is released.
    ///
    /// # Panics
    /// With `sync: negative WaitGroup counter` if the counter would go below zero (the counter
    /// is left unchanged), and with `sync: WaitGroup counter overflow` above `i32::MAX`.
    ///
    /// # Examples
    /// ```
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-1);
    /// assert_eq!(wg.count(), 1);
    /// wg.done();
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: isize) {
        let Ok(d) = i32::try_from(delta) else {
            if delta < 0 {
                panic!("sync: negative WaitGroup counter");
            }
            panic!("sync: WaitGroup counter overflow");
        };
        let step = (i64::from(d) as u64) << 32;
        let s = self.inner.state.fetch_add(step, Ordering::AcqRel);
        let v = i64::from(counter(s)) + i64::from(d);
        if v < 0 || v > i64::from(i32::MAX) {
            // Undo, so that a caught panic leaves the group usable.
            self.inner.state.fetch_sub(step, Ordering::AcqRel);
            if v < 0 {
                panic!("sync: negative WaitGroup counter");
            }
            panic!("sync: WaitGroup counter overflow");
        }
        if v > 0 || registered(s) == 0 {
            return;
        }
        self.release_waiters();
    }

    /// Decrements the counter by one (Go's `Done`).
    ///
    /// # Panics
    /// With `sync: negative WaitGroup counter` if the counter is zero.
    ///
    /// # Examples
    /// ```
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.add(1);
    /// std::thread::spawn({
    ///     let wg = wg.clone();
    ///     move || wg.done()
    /// });
    /// wg.wait();
    /// ```
    #[inline]
    pub fn done(&self) {
        self.add(-1);
    }

    /// Parks until the counter is zero (Go's `Wait`); returns at once if it is zero already.
    ///
    /// # Examples
    /// ```
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.add(1);
    /// let w = wg.clone();
    /// let h = goway::go!(move || w.wait());
    /// wg.done();
    /// h.join().unwrap();
    /// ```
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Like [`wait`](WaitGroup::wait), giving up after `timeout`: `true` if the counter reached
    /// zero, `false` on timeout.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.add(1);
    /// assert!(!wg.wait_timeout(Duration::from_millis(5)));
    /// wg.done();
    /// assert!(wg.wait_timeout(Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Instant::now().checked_add(timeout))
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> bool {
        let st = &self.inner.state;
        if counter(st.load(Ordering::Acquire)) == 0 {
            return true;
        }
        let w = Waiter::new();
        {
            let mut q = self.inner.waiters.lock();
            let mut s = st.load(Ordering::Acquire);
            loop {
                if counter(s) == 0 {
                    return true;
                }
                // Register with the counter still non-zero, in one step: a `done` that brings
                // it to zero either comes first (this fails, and we see zero) or sees us.
                match st.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => break,
                    Err(x) => s = x,
                }
            }
            q.push_back(w.clone(), ());
        }
        if w.wait(deadline, Why::new(Wait::Group)).is_some() {
            return true;
        }
        let mut q = self.inner.waiters.lock();
        if q.remove(&w) {
            st.fetch_sub(1, Ordering::AcqRel);
        }
        false
    }

    /// The counter reached zero with waiters registered: release every listed one.
    #[cold]
    fn release_waiters(&self) {
        let woken = {
            let mut q = self.inner.waiters.lock();
            if counter(self.inner.state.load(Ordering::Acquire)) != 0 {
                // The counter left zero again before the waiters were released: an `add` raced
                // this round's `wait` (Go panics the same way, sync/waitgroup.go).
                drop(q);
                panic!("sync: WaitGroup misuse: Add called concurrently with Wait");
            }
            let (woken, removed) = q.drain(RELEASED);
            self.inner.state.fetch_sub(removed as u64, Ordering::AcqRel);
            woken
        };
        unpark_all(woken);
    }

    /// The counter now (a snapshot, for logs and tests; Go has no such method).
    ///
    /// # Examples
    /// ```
    /// let wg = goway::sync::WaitGroup::new();
    /// wg.add(3);
    /// assert_eq!(wg.count(), 3);
    /// ```
    pub fn count(&self) -> usize {
        counter(self.inner.state.load(Ordering::Acquire)).max(0) as usize
    }

    /// Adds one to the counter and returns a guard that calls [`done`](WaitGroup::done) when it
    /// is dropped: Go's `wg.Add(1)` paired with a `defer wg.Done()`, for work that
    /// [`go`](WaitGroup::go) does not start itself (a thread, a goroutine spawned by another
    /// API, a task handed down a channel).
    ///
    /// The guard is dropped when its owner returns **or unwinds**, so a panicking task still
    /// releases [`wait`](WaitGroup::wait). A bare `add(1)` ... `done()` pair does not: in Go a
    /// panic ends the process, in goway it ends only its goroutine, and the `done()` after the
    /// panic never runs, so `wait` would block forever.
    ///
    /// # Examples
    /// ```
    /// use goway::sync::WaitGroup;
    ///
    /// let wg = WaitGroup::new();
    /// let done = wg.add_guard();
    /// let worker = std::thread::spawn(move || {
    ///     let _done = done; // released however this closure ends
    ///     panic!("lost the connection");
    /// });
    /// wg.wait(); // returns: the guard was dropped during the unwind
    /// assert!(worker.join().is_err());
    /// ```
    #[must_use = "dropping the guard at once calls done() at once"]
    pub fn add_guard(&self) -> DoneGuard {
        self.add(1);
        DoneGuard(self.clone())
    }

    /// Adds one to the counter and runs `f` in a new goroutine that calls
    /// [`done`](WaitGroup::done) when `f` returns or panics (Go 1.25's `WaitGroup.Go`).
    ///
    /// # Panics
    /// If the OS refuses a new goroutine stack (as [`go!`](crate::go!)); the counter is
    /// restored first.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let wg = goway::sync::WaitGroup::new();
    /// let sum = Arc::new(AtomicUsize::new(0));
    /// for i in 1..=3 {
    ///     let sum = sum.clone();
    ///     wg.go(move || { sum.fetch_add(i, Ordering::Relaxed); });
    /// }
    /// wg.wait();
    /// assert_eq!(sum.load(Ordering::Relaxed), 6);
    /// ```
    #[track_caller]
    pub fn go<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let done = self.add_guard();
        match crate::runtime::Builder::new().spawn(move || {
            let _done = done;
            f()
        }) {
            Ok(h) => h,
            // The closure was dropped unrun, and its `Done` with it.
            Err(e) => panic!("WaitGroup::go: {e}"),
        }
    }
}

/// Calls [`WaitGroup::done`] once, when dropped (returned by [`WaitGroup::add_guard`]).
///
/// Go's `defer wg.Done()`: the drop runs on return and on unwind alike.
#[must_use = "dropping the guard at once calls done() at once"]
pub struct DoneGuard(WaitGroup);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.0.done();
    }
}

impl fmt::Debug for DoneGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DoneGuard").field(&self.0).finish()
    }
}

// A panic (a negative counter) leaves the counter as it was, so the group stays consistent.
impl std::panic::UnwindSafe for WaitGroup {}
impl std::panic::RefUnwindSafe for WaitGroup {}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("count", &counter(s))
            .field("waiters", &registered(s))
            .finish()
    }
}
