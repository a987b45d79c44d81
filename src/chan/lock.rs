//! The channel lock: a test-and-test-and-set spin lock whose release is a plain store.
//!
//! No critical section under a channel's lock parks, yields, switches coroutines, runs user
//! code or wakes anybody (waiters are woken, values and dead packets dropped, after the
//! release). Most are a few dozen instructions plus, on the blocking paths, the allocation of a
//! wait's packet; a few grow with a queue (withdrawing a timed-out waiter from a long wait
//! queue, an unbounded buffer reallocating). Since a holder never switches, goroutines of one
//! worker never contend for the lock: only worker threads (and plain threads) do, each for the
//! length of such a section. A parking mutex pays a second read-modify-write at every release
//! to learn whether anyone sleeps on it; with two cores passing a channel's cache line back and
//! forth, that release is about as costly as the acquire. This lock releases with a store.
//!
//! A waiter spins on a plain load (no traffic while the line is held), and after
//! [`SPINS`] rounds gives its CPU to the holder with `sched_yield`, in case the holder's thread
//! was preempted. It never sleeps: a goroutine's worker thread must not block. Nor does it
//! yield the coroutine: some callers hold another lock while they take a channel's (the HTTP
//! client's connection pool, the timers), and a coroutine switch there would hold that lock
//! across a park. The lock is not fair; no caller needs it to be.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before each `sched_yield` while the lock stays held.
const SPINS: u32 = 64;

pub(crate) struct SpinMutex<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one holder at a time (acquire on lock, release on
// unlock), so sharing the lock shares `T` only by moving access between threads.
unsafe impl<T: Send> Send for SpinMutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SpinMutex<T> {}

impl<T> SpinMutex<T> {
    pub(crate) const fn new(v: T) -> Self {
        SpinMutex {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(v),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        loop {
            let mut spins = 0;
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    spins = 0;
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

/// Holds a [`SpinMutex`]; releases it when dropped. Like std's guard it stays on the thread
/// that locked (`!Send`), and is shared between threads only when `T` is `Sync`.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinMutex<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard gives out only `&T`, which other threads may hold when `T: Sync`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock, so no other reference to the value exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only use of the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinMutex;
    use std::sync::Arc;

    /// Threads (more than the machine has cores, so holders get preempted) each add to a
    /// plain counter under the lock; no increment may be lost.
    #[test]
    fn excludes_under_contention() {
        const THREADS: usize = 8;
        const ROUNDS: u64 = 20_000;
        let m = Arc::new(SpinMutex::new((0u64, 0u64)));
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let mut g = m.lock();
                        // Two words updated apart: a second holder would see them differ.
                        g.0 += 1;
                        assert_eq!(g.0, g.1 + 1);
                        g.1 += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            *m.lock(),
            (THREADS as u64 * ROUNDS, THREADS as u64 * ROUNDS)
        );
    }

    /// A guard dropped by a panic releases the lock.
    #[test]
    fn a_panic_releases_the_lock() {
        let m = Arc::new(SpinMutex::new(1));
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("while holding the lock");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*m.lock(), 1);
    }
}
