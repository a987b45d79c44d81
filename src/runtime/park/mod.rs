//! Parking: how a goroutine or a plain thread waits for another to wake it. A [`Waiter`] parks
//! its owner (the coroutine, else the OS thread) until one of its operations commits or its
//! deadline passes; every goway wait (channels, select, `sync`, joins, sleeps, the carriers)
//! is built on it.

mod shim;
mod waiter;

pub(crate) use waiter::Waiter;

use super::registry::Why;
use std::time::Instant;

/// Waits forever (a never channel). A goroutine parks; a thread parks; neither busy-waits.
pub(crate) fn park_forever(why: Why) {
    park_until(None, why);
}

/// Waits until `deadline` (forever for `None`) with nothing that can wake it early.
pub(crate) fn park_until(deadline: Option<Instant>, why: Why) {
    let w = Waiter::new();
    w.wait(deadline, why);
    w.recycle();
}
