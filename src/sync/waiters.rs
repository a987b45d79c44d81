//! A FIFO list of parked goroutines or threads: the building block of every type in
//! [`sync`](crate::sync), as Go's runtime semaphore (`runtime/sema.go`) is for package `sync`.
//!
//! Each entry is a one-shot [`Waiter`] plus a little data (when it queued, how many permits it
//! wants). The list itself has no lock: its owner keeps it inside a `parking_lot::Mutex` together
//! with the state the entries wait on, and holds that lock only for short, non-blocking
//! sections. Waking follows the channel protocol: commit the waiter with
//! [`Waiter::try_select`] under the lock, [`Waiter::unpark`] it after unlocking.
//!
//! A waiter that gives up (timeout, cancelled context) first moves to `ABORTED` or is committed
//! to a cancel case, then removes its own entry under the owner's lock. Until it does, its
//! entry is dead: [`WaitList::pop_live`] and [`WaitList::drain`] skip it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::runtime::park::Waiter;

/// Waiters in arrival order, each with data `D`.
pub(crate) struct WaitList<D = ()> {
    q: VecDeque<(Arc<Waiter>, D)>,
}

impl<D> WaitList<D> {
    pub(crate) const fn new() -> Self {
        WaitList { q: VecDeque::new() }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }

    pub(crate) fn push_back(&mut self, w: Arc<Waiter>, d: D) {
        self.q.push_back((w, d));
    }

    /// Queues at the head: a waiter that was woken, lost the race and waits again keeps its
    /// turn (Go's `semacquire1(lifo=true)` for a re-queued `Mutex` waiter).
    pub(crate) fn push_front(&mut self, w: Arc<Waiter>, d: D) {
        self.q.push_front((w, d));
    }

    /// The first entry, live or dead.
    pub(crate) fn front(&self) -> Option<&(Arc<Waiter>, D)> {
        self.q.front()
    }

    /// Removes the first entry, live or dead.
    pub(crate) fn pop_front(&mut self) -> Option<(Arc<Waiter>, D)> {
        self.q.pop_front()
    }

    /// Pops entries until one commits to `case`; dead entries met on the way are dropped.
    /// The caller unparks the returned waiter after unlocking.
    pub(crate) fn pop_live(&mut self, case: usize) -> Option<(Arc<Waiter>, D)> {
        while let Some((w, d)) = self.q.pop_front() {
            if w.try_select(case) {
                return Some((w, d));
            }
        }
        None
    }

    /// Empties the list, committing every live entry to `case`. Returns the committed waiters
    /// (to unpark after unlocking) and how many entries were removed, dead ones included.
    pub(crate) fn drain(&mut self, case: usize) -> (Vec<Arc<Waiter>>, usize) {
        let n = self.q.len();
        let live = self
            .q
            .drain(..)
            .filter_map(|(w, _)| w.try_select(case).then_some(w))
            .collect();
        (live, n)
    }

    /// Removes `w`'s entry; `false` if it is not in the list (someone popped it already).
    pub(crate) fn remove(&mut self, w: &Arc<Waiter>) -> bool {
        match self.q.iter().position(|(x, _)| Arc::ptr_eq(x, w)) {
            Some(i) => {
                self.q.remove(i);
                true
            }
            None => false,
        }
    }
}

impl<D> Default for WaitList<D> {
    fn default() -> Self {
        WaitList::new()
    }
}

/// Unparks every waiter (call after releasing the lock that guards their list).
pub(crate) fn unpark_all(ws: Vec<Arc<Waiter>>) {
    for w in ws {
        w.unpark();
    }
}
