//! The handle on a running server: shutdown, stats, address.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use super::shutdown::shutdown;
use super::stats::Stats;
use crate::chan::RecvTimeoutError;
use crate::net::server::ShutdownError;

/// A cloneable handle on a running server: shutdown, stats, address.
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.shared.addr)
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl ServerHandle {
    /// Shuts down gracefully within the configured `shutdown_grace` (Go's `Shutdown`):
    /// 1. stops accepting (`serve` returns `ServerClosed`);
    /// 2. closes idle keep-alive connections, and connections that have sent nothing for
    ///    5 s (Go's rule for new ones);
    /// 3. lets requests in flight finish; their responses say `Connection: close`;
    /// 4. after the grace period, cuts off whatever is left.
    ///
    /// Calling it again waits again.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        self.shutdown_timeout(self.shared.cfg.shutdown_grace)
    }

    /// [`shutdown`](Self::shutdown) with another grace period.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown_timeout(&self, grace: Duration) -> Result<(), ShutdownError> {
        shutdown(&self.shared, grace)
    }

    /// Closes the listener and every connection now (Go's `Close`); returns how many were
    /// busy.
    pub fn close(&self) -> usize {
        match shutdown(&self.shared, Duration::ZERO) {
            Ok(()) => 0,
            Err(ShutdownError::Timeout { cut_off }) => cut_off,
        }
    }

    /// `true` once a shutdown has started.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// After a shutdown, waits up to `timeout` for the accept loop and every connection to
    /// be gone; `true` if they are.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        matches!(
            self.shared.all_done.recv_timeout(timeout),
            Err(RecvTimeoutError::Closed)
        )
    }
}
