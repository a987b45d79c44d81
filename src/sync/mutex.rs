//! [`Mutex`]: Go's `sync.Mutex`, holding the data it guards, as Rust's does.
//!
//! Invariants:
//! - `state` is `LOCKED` (someone holds the lock) | `QUEUED` (the wait list is not empty).
//! - `QUEUED` changes only under `queue`'s lock, so it always mirrors the list.
//! - While a holder has `LOCKED` and `queue`'s lock, nobody else can change `state`: every other
//!   writer either needs `LOCKED` clear (fast paths) or holds `queue`'s lock (slow paths).
//!
//! The algorithm is Go's (`sync/mutex.go`): a locker spins briefly, then queues and parks.
//! Unlock wakes the first waiter, which competes with newcomers (barging keeps the lock busy
//! while the woken goroutine is being scheduled); a woken waiter that loses re-queues at the
//! head. Once a waiter has waited over 1 ms, unlock hands it the lock directly (Go's
//! starvation mode), so no waiter starves.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::waiters::WaitList;
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

const LOCKED: usize = 1;
const QUEUED: usize = 2;

/// Case of a woken waiter that must compete for the lock again.
const WAKE: usize = 0;
/// Case of a woken waiter that was handed the lock.
const HANDOFF: usize = 1;

/// A waiter that has waited this long gets the lock handed over (Go's `starvationThresholdNs`).
const STARVATION: Duration = Duration::from_millis(1);

/// Spin rounds before parking; each round doubles its pause, as parking_lot's `SpinWait`.
const SPIN_ROUNDS: u32 = 4;

/// A mutual-exclusion lock that parks the goroutine (or thread) waiting for it: Go's
/// `sync.Mutex`, with the data it guards inside, as in Rust.
///
/// [`lock`](Mutex::lock) returns a guard; dropping the guard unlocks. A waiting goroutine parks,
/// so its worker thread runs other goroutines meanwhile; plain threads can lock it too.
///
/// **No poisoning.** Go has none, and a goroutine's panic is contained to that goroutine: if it
/// panics while holding the guard, the unwinding drops the guard and the mutex is unlocked, with
/// the data as the panic left it (as `parking_lot::Mutex` does). `lock` therefore returns the
/// guard directly, not a `LockResult`.
///
/// The guard may be held across any blocking call (a channel receive, `time::sleep`) and moved
/// to another goroutine, which then unlocks it (Go allows unlocking from another goroutine).
/// Locking twice from the same goroutine deadlocks, as in Go.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use goway::{go, sync::{Mutex, WaitGroup}};
///
/// let counter = Arc::new(Mutex::new(0));
/// let wg = WaitGroup::new();
/// for _ in 0..10 {
///     wg.add(1);
///     let (counter, wg) = (counter.clone(), wg.clone());
///     go!(move || {
///         *counter.lock() += 1;
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(*counter.lock(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicUsize,
    /// Guards the parked lockers, each with the time it first queued.
    queue: parking_lot::Mutex<WaitList<Instant>>,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex hands out access to `T` to one holder at a time, so it may be shared
// between threads whenever `T` may be sent between them (the same bounds as std's `Mutex`).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Exclusive access to a [`Mutex`]'s data; unlocks on drop.
///
/// Unlike std's guard it is `Send` (when `T: Send`): a goroutine holding it may resume on
/// another worker thread, and Go lets another goroutine unlock.
///
/// # Examples
/// ```
/// let m = goway::sync::Mutex::new(vec![1]);
/// let mut g = m.lock();
/// g.push(2);
/// drop(g); // unlocks
/// assert_eq!(*m.lock(), [1, 2]);
/// ```
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

// SAFETY: the guard is exclusive access to `T` (like `&mut T`), which may move to another
// thread when `T: Send`; unlocking from another thread is fine for this mutex.
unsafe impl<T: ?Sized + Send> Send for MutexGuard<'_, T> {}
// SAFETY: sharing the guard shares `&T`, which needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// # Examples
    /// ```
    /// static COUNT: goway::sync::Mutex<u64> = goway::sync::Mutex::new(0);
    /// *COUNT.lock() += 1;
    /// assert_eq!(*COUNT.lock(), 1);
    /// ```
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicUsize::new(0),
            queue: parking_lot::Mutex::new(WaitList::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the data.
    ///
    /// # Examples
    /// ```
    /// let m = goway::sync::Mutex::new(String::from("hi"));
    /// assert_eq!(m.into_inner(), "hi");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the caller until it is free; the guard unlocks on drop.
    ///
    /// # Examples
    /// ```
    /// let m = goway::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        MutexGuard { mutex: self }
    }

    /// Locks the mutex only if it is free now (Go's `TryLock`): `None` while someone holds it.
    ///
    /// # Examples
    /// ```
    /// let m = goway::sync::Mutex::new(());
    /// let g = m.lock();
    /// assert!(m.try_lock().is_none()); // held
    /// drop(g);
    /// assert!(m.try_lock().is_some()); // free
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // Not `then_some`: that would build (and drop, unlocking) a guard on failure too.
        if self.try_set_locked() {
            Some(MutexGuard { mutex: self })
        } else {
            None
        }
    }

    /// `true` while someone holds the lock (a snapshot: it may change at once).
    ///
    /// # Examples
    /// ```
    /// let m = goway::sync::Mutex::new(0);
    /// let g = m.lock();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// Mutable access without locking: the `&mut` borrow proves nobody else holds it.
    ///
    /// # Examples
    /// ```
    /// let mut m = goway::sync::Mutex::new(1);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Sets `LOCKED` if it is clear.
    #[inline]
    fn try_set_locked(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
    }

    /// Spins a few rounds while the holder is likely to unlock soon. `true` if it got the lock.
    fn spin(&self) -> bool {
        for round in 0..SPIN_ROUNDS {
            if self.try_set_locked() {
                return true;
            }
            for _ in 0..(2u32 << round) {
                std::hint::spin_loop();
            }
        }
        self.try_set_locked()
    }

    #[cold]
    fn lock_slow(&self) {
        // When this locker first queued: after `STARVATION` it is handed the lock.
        let mut since: Option<Instant> = None;
        loop {
            if self.spin() {
                return;
            }
            let w = Waiter::new();
            {
                let mut q = self.queue.lock();
                let mut s = self.state.load(Ordering::Relaxed);
                loop {
                    let (new, got_lock) = if s & LOCKED == 0 {
                        (s | LOCKED, true)
                    } else {
                        (s | QUEUED, false)
                    };
                    match self.state.compare_exchange_weak(
                        s,
                        new,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) if got_lock => return,
                        Ok(_) => break,
                        Err(x) => s = x,
                    }
                }
                match since {
                    // Woken before and lost the race: keep the turn at the head.
                    Some(t) => q.push_front(w.clone(), t),
                    None => {
                        let t = Instant::now();
                        since = Some(t);
                        q.push_back(w.clone(), t);
                    }
                }
            }
            // Lock waiters never time out, so `wait` returns only once woken.
            if w.wait(None, Why::new(Wait::Mutex)) == Some(HANDOFF) {
                return;
            }
        }
    }

    /// Releases the lock. Precondition: the caller holds it (its guard is being dropped).
    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let woken = {
            let mut q = self.queue.lock();
            // Nobody else can change `state` now (see the invariants), so plain stores do.
            match q.pop_front() {
                None => {
                    self.state.store(0, Ordering::Release);
                    None
                }
                Some((w, since)) => {
                    let rest = if q.is_empty() { 0 } else { QUEUED };
                    if since.elapsed() >= STARVATION {
                        // Starving: the lock passes to `w` without ever being free.
                        self.state.store(LOCKED | rest, Ordering::Relaxed);
                        w.try_select(HANDOFF);
                    } else {
                        self.state.store(rest, Ordering::Release);
                        w.try_select(WAKE);
                    }
                    Some(w)
                }
            }
        };
        if let Some(w) = woken {
            w.unpark();
        }
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Cond`](super::Cond), which unlocks and relocks it).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this holder owns the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this holder owns the lock, and `&mut self`
        // makes this the only access through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(v: T) -> Self {
        Mutex::new(v)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        let parked = self.queue.lock().len();
        d.field("parked", &parked).finish()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
