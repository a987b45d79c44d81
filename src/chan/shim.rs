//! The seam between the channel core and what it runs on.
//!
//! [`channel`](super::channel) (the channel core) and [`packet`](super::packet) take every
//! synchronisation primitive and every runtime service they use from this module, and from
//! nowhere else. Here they are the real ones: std's atomics, `Arc` and `UnsafeCell`, the
//! channel's spin lock ([`lock`](super::lock), as `Mutex`), the runtime's [`Waiter`]
//! (parking), registry and `yield_now`.
//! `tests/loom_waiter.rs`
//! compiles the very same files, and the runtime's `park/waiter.rs`, next to a `shim` of its
//! own, built on loom's types and on a loom model of may's `Park`, and model-checks them. So
//! anything these files need goes through here, under the same name in both shims; the
//! re-exports cost nothing.

pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub(crate) use std::time::Instant;

pub(crate) use super::lock::SpinMutex as Mutex;

pub(crate) use crate::runtime::park::Waiter;
pub(crate) use crate::runtime::registry::{Site, Wait, Why};
pub(crate) use crate::runtime::yield_now;

/// `std::cell::UnsafeCell` with loom's interface (`with_mut` hands out the raw pointer), so the
/// loom shim can track every access to a packet's slot.
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }

    /// Calls `f` with a pointer to the value; what `f` may do with it is the caller's contract.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
