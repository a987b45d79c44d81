//! The table of open connections: each one's state (Go's `ConnState`), read by shutdown and
//! the idle janitor, and the guard that removes it when its goroutine ends.

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use super::Shared;
use crate::chan::Sender;

/// Connection states, for shutdown (Go's `ConnState`).
pub(crate) const NEW: u8 = 0;
pub(crate) const ACTIVE: u8 = 1;
pub(crate) const IDLE: u8 = 2;
pub(crate) const CLOSED: u8 = 3;

/// A connection as the registry sees it.
///
/// Invariants: `state` moves NEW/IDLE → ACTIVE only by the connection's goroutine (a CAS),
/// and NEW/IDLE → CLOSED only by shutdown or the idle janitor (a CAS), which then shuts the
/// socket through `control` to wake the goroutine's read. `control` is the entry's own
/// duplicate of the socket's descriptor, so a shutdown through it can never reach another
/// file, whenever the connection's goroutine closes its own descriptor.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub(crate) state: AtomicU8,
    /// When the connection last became idle, in [`Shared::coarse_now_ms`] time.
    pub(crate) idle_since: AtomicU64,
    pub(crate) since: Instant,
    pub(crate) control: std::net::TcpStream,
}

impl ConnEntry {
    /// Moves NEW or IDLE to ACTIVE; `false` if shutdown closed the connection.
    pub(crate) fn activate(&self) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        match s {
            ACTIVE => true,
            CLOSED => false,
            _ => self
                .state
                .compare_exchange(s, ACTIVE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok(),
        }
    }

    pub(crate) fn close_if(&self, from: u8) -> bool {
        let ok = self
            .state
            .compare_exchange(from, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if ok {
            let _ = self.control.shutdown(Shutdown::Both);
        }
        ok
    }
}

/// Removes a connection from the registry and the gauge when its goroutine ends (also by a
/// panic), before its socket closes.
pub(crate) struct ConnGuard {
    pub(crate) srv: Arc<Shared>,
    pub(crate) id: u64,
    pub(crate) _alive: Sender<()>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let entry = self.srv.conns.lock().remove(&self.id);
        drop(entry);
        self.srv.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}
