//! A [`Packet`]: one waiting operation of a [`Waiter`] on one channel, the unit of a channel's
//! wait queues (and of a select's registrations).
//!
//! Everything this file synchronises with comes from [`shim`](super::shim): `tests/loom_waiter.rs`
//! compiles this same file against a loom-based shim, whose `UnsafeCell` reports any two
//! accesses to a slot that the protocol below leaves unordered.
//!
//! # Who touches a slot, and when
//!
//! A slot has no lock of its own: the channel protocol hands it from one party to the next, and
//! each hand-over is ordered by the channel's lock or by the waiter's commit.
//!
//! - A **peer** (the other side of the channel) touches a packet's slot only while it holds
//!   that channel's lock, with the packet in the channel's wait queue or just taken out of it
//!   by this same critical section. If the peer commits the waiter through this packet, it
//!   reads or writes the slot *before* the commit and never touches it again. `close` commits
//!   the waiters it takes out of the queues and never touches a slot.
//! - The packet's **owner** (the goroutine or thread whose waiter it is) touches the slot only
//!   once nobody else can: after its waiter was committed through this very packet (the
//!   commit's compare-and-swap releases the committer's write and the owner's load of the
//!   state acquires it), or after it took the packet out of the queue under the channel's lock
//!   (every peer that met the packet did so in an earlier critical section).
//!
//! A packet that is out of its queue is met by no peer again, so the two never overlap.

use super::shim::{Arc, UnsafeCell, Waiter};

/// One operation of a [`Waiter`] on one channel: the waiter, which of its cases this is, and the
/// slot through which the value moves (a sender's offered value, or a receiver's delivery).
pub(crate) struct Packet<T> {
    pub(crate) waiter: Arc<Waiter>,
    pub(crate) case: usize,
    /// See the module docs for who may touch it, and when.
    slot: UnsafeCell<Option<T>>,
}

// SAFETY: the slot is the only part that is not `Sync` by itself. The protocol in the module
// docs gives it to one party at a time, each hand-over ordered by the channel's lock or by the
// waiter's commit (release, then acquire), so sharing a packet between threads never lets two
// of them touch the slot at once; what moves through it is a `T`, hence `T: Send`.
unsafe impl<T: Send> Sync for Packet<T> {}

// The impl above puts no bound on `Waiter`: it relies on `Waiter` being `Send + Sync` itself.
const _: () = {
    fn send_sync<W: Send + Sync>() {}
    let _ = send_sync::<Waiter>;
};

impl<T> Packet<T> {
    pub(crate) fn new(waiter: Arc<Waiter>, case: usize, value: Option<T>) -> Arc<Self> {
        Arc::new(Packet {
            waiter,
            case,
            slot: UnsafeCell::new(value),
        })
    }

    /// Commits the packet's waiter to this packet's case; see [`Waiter::try_select`].
    #[inline]
    pub(crate) fn try_select(&self) -> bool {
        self.waiter.try_select(self.case)
    }

    /// Takes the slot's value.
    ///
    /// # Safety
    /// The caller must have the slot to itself, as the module docs say: a peer holds the
    /// channel's lock with the packet in (or just out of) the queue; the owner has seen its
    /// waiter committed through this packet, or took the packet out of the queue under the lock.
    #[inline]
    pub(crate) unsafe fn take(&self) -> Option<T> {
        // SAFETY: the caller has the slot to itself (this function's contract).
        self.slot.with_mut(|p| unsafe { (*p).take() })
    }

    /// Puts `v` in the slot.
    ///
    /// # Safety
    /// As for [`take`](Self::take).
    #[inline]
    pub(crate) unsafe fn put(&self, v: T) {
        // SAFETY: the caller has the slot to itself (this function's contract).
        self.slot.with_mut(|p| unsafe { *p = Some(v) })
    }

    #[inline]
    pub(crate) fn belongs_to(&self, w: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(&self.waiter, w)
    }
}
