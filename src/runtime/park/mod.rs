//! Parking: how a goroutine or a plain thread waits for another to wake it. A [`Waiter`] parks
//! its owner (the coroutine, else the OS thread) until one of its operations commits or its
//! deadline passes; every goway wait (channels, select, `sync`, joins, sleeps, the carriers)
//! is built on it.

mod shim;
mod waiter;

pub(crate) use waiter::Waiter;

use std::time::Instant;

use super::registry::{Wait, Why};
use super::timer::{self, Entry, Fire};

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

/// Parks the calling goroutine and has the timer thread wake it: being woken from a plain
/// thread puts it on a worker's global run queue, which may drains only once the worker's local
/// queue is empty, so every goroutine queued before it runs first (Go's `Gosched` puts the
/// goroutine on the global queue for the same reason).
pub(crate) fn yield_to_all() {
    let w = Waiter::new();
    let q = timer::queue();
    let id = q.next_id();
    q.insert(
        id,
        Instant::now(),
        Entry {
            target: w.clone(),
            seq: 0,
            period: None,
        },
    );
    w.wait(None, Why::new(Wait::Yield));
    w.recycle();
}

/// A waiter queued on the timer thread is woken when its deadline passes.
impl Fire for Waiter {
    fn fire(&self, _seq: u64, _now: Instant) {
        if self.try_select(0) {
            self.unpark();
        }
    }
}
