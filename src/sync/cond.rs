//! [`Cond`]: Go's `sync.Cond`, used with goway's [`Mutex`].
//!
//! Invariant: a waiter joins the list before it unlocks the mutex, so a `signal` or `broadcast`
//! made after that unlock (by anyone who then takes the mutex and changes the condition)
//! always finds it. Go's `notifyList` gives the same guarantee with tickets.

use std::fmt;
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::waiters::{WaitList, unpark_all};
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

/// The case a waiter is committed to when signalled.
const SIGNALLED: usize = 0;

/// A condition variable: goroutines (or threads) wait for a condition guarded by a
/// [`Mutex`](super::Mutex), and whoever changes it signals them. Go's `sync.Cond`.
///
/// [`wait`](Cond::wait) unlocks the mutex, parks until [`signal`](Cond::signal) or
/// [`broadcast`](Cond::broadcast), and locks it again before returning. As in Go, there are no
/// spurious wake-ups, but the condition may have changed again by the time the mutex is
/// relocked, so wait in a loop (or use [`wait_while`](Cond::wait_while)). One `Cond` may be used
/// with any mutex; Go's `Cond.L` is the mutex whose guard you pass.
///
/// For a one-off event, closing a channel is often simpler (Go's advice too).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use goway::{go, sync::{Cond, Mutex}};
///
/// let pair = Arc::new((Mutex::new(false), Cond::new()));
/// let p = pair.clone();
/// go!(move || {
///     *p.0.lock() = true;
///     p.1.broadcast();
/// });
/// let (ready, cond) = &*pair;
/// let mut g = ready.lock();
/// while !*g {
///     g = cond.wait(g);
/// }
/// ```
pub struct Cond {
    /// Guards the parked waiters.
    waiters: parking_lot::Mutex<WaitList>,
}

impl Cond {
    /// A condition variable with no waiters.
    ///
    /// # Examples
    /// ```
    /// let c = goway::sync::Cond::new();
    /// c.signal(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Self {
        Cond {
            waiters: parking_lot::Mutex::new(WaitList::new()),
        }
    }

    /// Unlocks `guard`'s mutex, parks until signalled, then locks the mutex again (Go's
    /// `Wait`).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use goway::sync::{Cond, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let p = pair.clone();
    /// goway::go!(move || {
    ///     *p.0.lock() = 1;
    ///     p.1.signal();
    /// });
    /// let mut g = pair.0.lock();
    /// while *g == 0 {
    ///     g = pair.1.wait(g);
    /// }
    /// assert_eq!(*g, 1);
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_deadline(guard, None).0
    }

    /// Like [`wait`](Cond::wait), giving up after `timeout`. Returns the relocked guard and
    /// `true` if the time ran out before a signal.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use goway::sync::{Cond, Mutex};
    ///
    /// let (m, c) = (Mutex::new(()), Cond::new());
    /// let (_g, timed_out) = c.wait_timeout(m.lock(), Duration::from_millis(5));
    /// assert!(timed_out);
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_deadline(guard, Instant::now().checked_add(timeout))
    }

    /// Waits while `condition` holds: checks it under the lock, and waits again after each
    /// signal while it is still `true`. Returns the guard with the condition `false`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use goway::sync::{Cond, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(Vec::new()), Cond::new()));
    /// let p = pair.clone();
    /// goway::go!(move || {
    ///     p.0.lock().push("job");
    ///     p.1.signal();
    /// });
    /// let mut queue = pair.1.wait_while(pair.0.lock(), |q| q.is_empty());
    /// assert_eq!(queue.pop(), Some("job"));
    /// ```
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex = guard.mutex();
        let w = Waiter::new();
        self.waiters.lock().push_back(w.clone(), ());
        drop(guard);
        let timed_out = match w.wait(deadline, Why::new(Wait::Cond)) {
            Some(_) => false,
            None => {
                self.waiters.lock().remove(&w);
                true
            }
        };
        (mutex.lock(), timed_out)
    }

    /// Wakes one waiter, the one waiting longest, if any (Go's `Signal`). Holding the mutex
    /// while signalling is allowed but not required.
    ///
    /// # Examples
    /// ```
    /// let c = goway::sync::Cond::new();
    /// c.signal();
    /// ```
    pub fn signal(&self) {
        let w = self.waiters.lock().pop_live(SIGNALLED);
        if let Some((w, ())) = w {
            w.unpark();
        }
    }

    /// Wakes every waiter (Go's `Broadcast`).
    ///
    /// # Examples
    /// ```
    /// let c = goway::sync::Cond::new();
    /// c.broadcast();
    /// ```
    pub fn broadcast(&self) {
        let (woken, _) = self.waiters.lock().drain(SIGNALLED);
        unpark_all(woken);
    }
}

// The wait list stays consistent across a panic (no user code runs under its lock).
impl std::panic::UnwindSafe for Cond {}
impl std::panic::RefUnwindSafe for Cond {}

impl Default for Cond {
    fn default() -> Self {
        Cond::new()
    }
}

impl fmt::Debug for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cond")
            .field("waiters", &self.waiters.lock().len())
            .finish()
    }
}
