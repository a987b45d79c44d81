//! The table of open connections: each one's state (Go's `ConnState`), read by shutdown and
//! the idle janitor, and the guard that removes it when its goroutine ends.

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use super::Shared;
use crate::chan::Sender;

/// Where a connection is in its life, for shutdown and the idle janitor (Go's `ConnState`,
/// without `StateHijacked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ConnState {
    /// Accepted; no byte of a request received yet.
    New = 0,
    /// Reading a request, running its handler or writing its response.
    Active = 1,
    /// Between requests on a keep-alive connection, waiting for the next one.
    Idle = 2,
    /// Closed by shutdown or the idle janitor; its goroutine is ending.
    Closed = 3,
}

impl ConnState {
    /// The state stored as `v` by [`AtomicConnState`].
    fn from_repr(v: u8) -> ConnState {
        match v {
            0 => ConnState::New,
            1 => ConnState::Active,
            2 => ConnState::Idle,
            // Only `AtomicConnState` stores, and only the four states' values.
            _ => ConnState::Closed,
        }
    }
}

/// A [`ConnState`] in an atomic byte, read and changed by the connection's goroutine,
/// shutdown and the idle janitor. Every access is `SeqCst`.
#[derive(Debug)]
pub(crate) struct AtomicConnState(AtomicU8);

impl AtomicConnState {
    pub(crate) fn new(s: ConnState) -> Self {
        AtomicConnState(AtomicU8::new(s as u8))
    }

    pub(crate) fn load(&self) -> ConnState {
        ConnState::from_repr(self.0.load(Ordering::SeqCst))
    }

    pub(crate) fn store(&self, s: ConnState) {
        self.0.store(s as u8, Ordering::SeqCst);
    }

    /// Moves `from` to `to`; `false` (and no change) if the state was not `from`.
    pub(crate) fn move_from(&self, from: ConnState, to: ConnState) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// A connection as the registry sees it.
///
/// Invariants: `state` moves New/Idle → Active only by the connection's goroutine (a CAS),
/// and Active → Idle only by it (when it waits for the next request). New/Idle → Closed is
/// a CAS by shutdown or the idle janitor, which then shuts the socket through `control` to
/// wake the goroutine's read; when a shutdown's grace period is over, it stores Closed
/// whatever the state and shuts the socket. `control` is the entry's own duplicate of the
/// socket's descriptor, so a shutdown through it can never reach another file, whenever the
/// connection's goroutine closes its own descriptor.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub(crate) state: AtomicConnState,
    /// When the connection last became idle, in [`Shared::coarse_now_ms`] time.
    pub(crate) idle_since: AtomicU64,
    pub(crate) since: Instant,
    pub(crate) control: std::net::TcpStream,
}

impl ConnEntry {
    /// Moves New or Idle to Active; `false` if shutdown closed the connection.
    pub(crate) fn activate(&self) -> bool {
        match self.state.load() {
            ConnState::Active => true,
            ConnState::Closed => false,
            s @ (ConnState::New | ConnState::Idle) => self.state.move_from(s, ConnState::Active),
        }
    }

    /// Closes the connection if its state is `from`: marks it Closed and shuts its socket,
    /// which wakes its goroutine's read. `false` if the state was not `from`.
    pub(crate) fn close_if(&self, from: ConnState) -> bool {
        let ok = self.state.move_from(from, ConnState::Closed);
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
