//! [`RwLock`]: Go's `sync.RWMutex`, holding the data it guards.
//!
//! Invariants:
//! - `state` is `WRITER` (a writer holds it) | `PARKED` (a wait list is not empty) | the
//!   number of readers holding it times `ONE_READER`.
//! - `PARKED` changes only under `queues`' lock, so it always mirrors the lists.
//! - A reader is queued only while a writer holds the lock or a writer is queued; a writer only
//!   while the lock is held.
//! - Parked waiters are always handed the lock: whoever wakes them has already updated `state`
//!   on their behalf, so a woken waiter never competes again.
//! - With `queues`' lock held and `PARKED` set, or with `WRITER` held, nobody else can change
//!   `state`: the lock-free paths need both clear.
//!
//! Go's policy (`sync/rwmutex.go`): a waiting writer blocks new readers, so writers do not
//! starve; when a writer unlocks, the readers that queued meanwhile all go before the next
//! writer, so readers do not starve either.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::waiters::unpark_all;
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

const WRITER: usize = 1;
const PARKED: usize = 2;
const ONE_READER: usize = 4;

/// The only case a parked waiter is committed to: it was handed the lock.
const GRANTED: usize = 0;

/// A reader-writer lock that parks waiting goroutines (or threads): Go's `sync.RWMutex`, with
/// the data it guards inside.
///
/// Any number of [`read`](RwLock::read) guards, or one [`write`](RwLock::write) guard, at a
/// time. As in Go, a writer that is waiting blocks new readers, so a steady stream of readers
/// cannot starve writers; and when a writer unlocks, readers that queued during its turn go
/// before the next writer. Because of this, taking a read lock while holding one can deadlock
/// if a writer arrives in between (Go's rule: no recursive read locking).
///
/// No poisoning, as with [`Mutex`](super::Mutex): a panic while holding a guard releases it.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use goway::{go, sync::RwLock};
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let c = config.clone();
/// go!(move || c.write().push_str("-patched")).join().unwrap();
/// assert_eq!(*config.read(), "v1-patched");
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    /// Guards the parked readers and writers.
    queues: parking_lot::Mutex<Queues>,
    data: UnsafeCell<T>,
}

struct Queues {
    readers: Vec<Arc<Waiter>>,
    writers: VecDeque<Arc<Waiter>>,
}

impl Queues {
    fn parked_bit(&self) -> usize {
        if self.readers.is_empty() && self.writers.is_empty() {
            0
        } else {
            PARKED
        }
    }
}

// SAFETY: writers get `&mut T` (needs `T: Send` across threads) and readers share `&T` between
// threads (needs `T: Sync`): std's `RwLock` bounds.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data; releases the read lock on drop.
///
/// # Examples
/// ```
/// let l = goway::sync::RwLock::new(5);
/// let (a, b) = (l.read(), l.read()); // readers share the lock
/// assert_eq!(*a + *b, 10);
/// ```
#[must_use = "the read lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]'s data; releases the write lock on drop.
///
/// # Examples
/// ```
/// let l = goway::sync::RwLock::new(5);
/// *l.write() += 1;
/// assert_eq!(*l.read(), 6);
/// ```
#[must_use = "the write lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: a read guard is `&T`: sending or sharing it needs `T: Sync`.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard is `&mut T`: sending it needs `T: Send`, sharing it `T: Sync`.
unsafe impl<T: ?Sized + Send> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// # Examples
    /// ```
    /// static TABLE: goway::sync::RwLock<Vec<u32>> = goway::sync::RwLock::new(Vec::new());
    /// TABLE.write().push(1);
    /// assert_eq!(TABLE.read().len(), 1);
    /// ```
    pub const fn new(value: T) -> Self {
        RwLock {
            state: AtomicUsize::new(0),
            queues: parking_lot::Mutex::new(Queues {
                readers: Vec::new(),
                writers: VecDeque::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the data.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(goway::sync::RwLock::new(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a read lock, parking while a writer holds the lock or waits for it (Go's `RLock`).
    ///
    /// # Examples
    /// ```
    /// let l = goway::sync::RwLock::new(vec![1, 2]);
    /// assert_eq!(l.read().len(), 2);
    /// ```
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if !self.try_add_reader() {
            self.read_slow();
        }
        RwLockReadGuard { lock: self }
    }

    /// Takes a read lock only if that needs no waiting (Go's `TryRLock`): `None` while a writer
    /// holds the lock or waits for it.
    ///
    /// # Examples
    /// ```
    /// let l = goway::sync::RwLock::new(0);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    #[inline]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if self.try_add_reader() {
            Some(RwLockReadGuard { lock: self })
        } else {
            None
        }
    }

    /// Takes the write lock, parking until no reader or writer holds it (Go's `Lock`).
    ///
    /// # Examples
    /// ```
    /// let l = goway::sync::RwLock::new(1);
    /// *l.write() *= 10;
    /// assert_eq!(*l.read(), 10);
    /// ```
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow();
        }
        RwLockWriteGuard { lock: self }
    }

    /// Takes the write lock only if it is free now (Go's `TryLock`).
    ///
    /// # Examples
    /// ```
    /// let l = goway::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    #[inline]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        match self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Some(RwLockWriteGuard { lock: self }),
            Err(_) => None,
        }
    }

    /// Mutable access without locking: the `&mut` borrow proves nobody else holds it.
    ///
    /// # Examples
    /// ```
    /// let mut l = goway::sync::RwLock::new(1);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Adds a reader if no writer holds or waits for the lock.
    #[inline]
    fn try_add_reader(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | PARKED) != 0 {
                return false;
            }
            let Some(new) = s.checked_add(ONE_READER) else {
                return false;
            };
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
    }

    #[cold]
    fn read_slow(&self) {
        let w = Waiter::new();
        {
            let mut q = self.queues.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let free_for_readers = s & WRITER == 0 && q.writers.is_empty();
                let new = if free_for_readers {
                    s + ONE_READER
                } else {
                    s | PARKED
                };
                match self
                    .state
                    .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) if free_for_readers => return,
                    Ok(_) => break,
                    Err(x) => s = x,
                }
            }
            q.readers.push(w.clone());
        }
        // Whoever wakes a parked reader has already counted it in.
        w.wait(None, Why::new(Wait::RwLockRead));
    }

    #[cold]
    fn write_slow(&self) {
        let w = Waiter::new();
        {
            let mut q = self.queues.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let free = s & !PARKED == 0;
                let new = if free { s | WRITER } else { s | PARKED };
                match self
                    .state
                    .compare_exchange_weak(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) if free => return,
                    Ok(_) => break,
                    Err(x) => s = x,
                }
            }
            q.writers.push_back(w.clone());
        }
        // Whoever wakes a parked writer has already set `WRITER` for it.
        w.wait(None, Why::new(Wait::RwLockWrite));
    }

    #[inline]
    fn read_unlock(&self) {
        let s = self.state.fetch_sub(ONE_READER, Ordering::Release);
        if s & PARKED != 0 && s / ONE_READER == 1 {
            self.read_unlock_slow();
        }
    }

    /// The last reader left while someone is parked: hand the lock to the first writer.
    #[cold]
    fn read_unlock_slow(&self) {
        let woken = {
            let mut q = self.queues.lock();
            let s = self.state.load(Ordering::Acquire);
            if s & WRITER != 0 || s >= ONE_READER || s & PARKED == 0 {
                // Another reader got in meanwhile, or the waiters were already served.
                return;
            }
            // Readers queued only behind a waiting writer: that writer goes first.
            self.grant_locked(&mut q, false)
        };
        unpark_all(woken);
    }

    #[inline]
    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.write_unlock_slow();
        }
    }

    #[cold]
    fn write_unlock_slow(&self) {
        let woken = {
            let mut q = self.queues.lock();
            self.grant_locked(&mut q, true)
        };
        unpark_all(woken);
    }

    /// Hands the free lock to the waiters: after a writer (`readers_first`), every parked
    /// reader (Go releases the readers that arrived during a write before the next writer);
    /// after the last reader, the first writer. Caller holds `queues`, and the lock has no
    /// holder, so nobody else can change `state`. Returns the waiters to unpark once `queues`
    /// is unlocked.
    fn grant_locked(&self, q: &mut Queues, readers_first: bool) -> Vec<Arc<Waiter>> {
        if !q.readers.is_empty() && (readers_first || q.writers.is_empty()) {
            let readers = std::mem::take(&mut q.readers);
            let n = readers.len();
            self.state
                .store((n * ONE_READER) | q.parked_bit(), Ordering::Release);
            for w in &readers {
                w.try_select(GRANTED);
            }
            readers
        } else if let Some(w) = q.writers.pop_front() {
            self.state.store(WRITER | q.parked_bit(), Ordering::Release);
            w.try_select(GRANTED);
            vec![w]
        } else {
            self.state.store(0, Ordering::Release);
            Vec::new()
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while its reader holds the lock, which excludes
        // writers.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the write guard exists only while its writer holds the lock alone.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the writer holds the lock alone and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(v: T) -> Self {
        RwLock::new(v)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        let (r, w) = {
            let q = self.queues.lock();
            (q.readers.len(), q.writers.len())
        };
        d.field("parked_readers", &r)
            .field("parked_writers", &w)
            .finish()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
