//! A [`Packet`]: one waiting operation of a [`Waiter`] on one channel, the unit of a channel's
//! wait queues (and of a select's registrations).
//!
//! Everything this file synchronises with comes from [`shim`](super::shim): `tests/loom_waiter.rs`
//! compiles this same file against a loom-based shim.

use super::shim::{Arc, Mutex, Waiter};

/// One operation of a [`Waiter`] on one channel: the waiter, which of its cases this is, and the
/// slot through which the value moves (a sender's offered value, or a receiver's delivery).
pub(crate) struct Packet<T> {
    pub(crate) waiter: Arc<Waiter>,
    pub(crate) case: usize,
    pub(crate) slot: Mutex<Option<T>>,
}

impl<T> Packet<T> {
    pub(crate) fn new(waiter: Arc<Waiter>, case: usize, value: Option<T>) -> Arc<Self> {
        Arc::new(Packet {
            waiter,
            case,
            slot: Mutex::new(value),
        })
    }

    /// Commits the packet's waiter to this packet's case; see [`Waiter::try_select`].
    #[inline]
    pub(crate) fn try_select(&self) -> bool {
        self.waiter.try_select(self.case)
    }

    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        self.slot.lock().take()
    }

    #[inline]
    pub(crate) fn put(&self, v: T) {
        *self.slot.lock() = Some(v);
    }

    #[inline]
    pub(crate) fn belongs_to(&self, w: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(&self.waiter, w)
    }
}
