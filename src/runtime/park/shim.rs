//! The seam between the parking protocol and what it runs on.
//!
//! [`waiter`](super::waiter) takes every synchronisation primitive and every runtime service it
//! uses from this module, and from nowhere else. Here they are the real ones: std's atomics and
//! `Arc`, may's `Blocker`, the runtime registry and `yield_now`, and the per-thread pool of
//! recycled waiters. `tests/loom_waiter.rs` compiles the very same file next to a `shim` of its
//! own, built on loom's types and on a loom model of may's `Park`, and model-checks it. So
//! anything `waiter.rs` needs goes through here, under the same name in both shims; the
//! re-exports cost nothing.

use std::cell::RefCell;

pub(crate) use std::sync::Arc;
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering, fence};
pub(crate) use std::time::Instant;

pub(crate) use may::coroutine::is_coroutine;
/// Parks the calling coroutine (else the OS thread): `new(ignore_cancel)`, `park(timeout)`,
/// `unpark()`.
pub(crate) use may::sync::Blocker;

pub(crate) use super::yield_now;
pub(crate) use crate::runtime::blocked::block;
pub(crate) use crate::runtime::registry::Why;

use super::waiter::Waiter;

impl Waiter {
    /// Returns a finished waiter for reuse; see [`Waiter::release`]. The method form lives here
    /// because a `self: Arc<Self>` receiver must be std's `Arc` (loom's cannot be one).
    #[inline]
    pub(crate) fn recycle(self: Arc<Self>) {
        Waiter::release(self);
    }
}

/// Recycled waiters, per OS thread and per kind (coroutine, thread). Touched only in stretches
/// that never block, so a coroutine moving between workers never sees another's half-update.
const POOL_MAX: usize = 16;
thread_local! {
    static POOL: RefCell<[Vec<Arc<Waiter>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// A waiter of kind `coroutine` from this thread's pool, if it has one.
///
/// Touches a thread-local: call it only from a function that is never inlined into one that
/// parks (see `Waiter::new`).
#[inline]
pub(crate) fn pool_take(coroutine: bool) -> Option<Arc<Waiter>> {
    POOL.try_with(|p| p.borrow_mut()[coroutine as usize].pop())
        .ok()
        .flatten()
}

/// Puts a finished waiter of kind `coroutine`, held by nobody else, into this thread's pool.
/// Touches a thread-local, as [`pool_take`].
#[inline]
pub(crate) fn pool_put(w: Arc<Waiter>, coroutine: bool) {
    // A waiter the full pool refuses is dropped only after leaving the thread-local.
    let overflow = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let v = &mut p[coroutine as usize];
            if v.len() < POOL_MAX {
                v.push(w);
                None
            } else {
                Some(w)
            }
        })
        .ok()
        .flatten();
    drop(overflow);
}
