//! The handle on a running server: shutdown, stats, address.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use super::shutdown::shutdown;
use super::stats::Stats;
use crate::chan::RecvTimeoutError;
use crate::net::server::{ShutdownError, ShutdownReport};

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
    /// Calling it again waits again. Returns how many connections were open when the call
    /// started (all closed gracefully), as [`net::ServerHandle::shutdown`] does.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    ///
    /// [`net::ServerHandle::shutdown`]: crate::net::ServerHandle::shutdown
    pub fn shutdown(&self) -> Result<ShutdownReport, ShutdownError> {
        self.shutdown_timeout(self.shared.cfg.shutdown_grace)
    }

    /// [`shutdown`](Self::shutdown) with another grace period.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown_timeout(&self, grace: Duration) -> Result<ShutdownReport, ShutdownError> {
        shutdown(&self.shared, grace)
    }

    /// Closes the listener and every connection now (Go's `Close`); returns how many were
    /// cut off (open and not idle).
    pub fn close(&self) -> usize {
        match shutdown(&self.shared, Duration::ZERO) {
            Ok(_) => 0,
            Err(ShutdownError::Timeout { cut_off }) => cut_off,
        }
    }

    /// Waits up to `timeout` for a shutdown to finish, whatever started it (a call to
    /// [`shutdown`](Self::shutdown), a [`shutdown_on`](super::Builder::shutdown_on) signal,
    /// the server's [`context`](super::Builder::context) being cancelled), and returns its
    /// outcome, as `shutdown` would have: how many connections drained, or how many were cut
    /// off after the grace period. `None` if no shutdown finished in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Request, ResponseWriter, Server};
    ///
    /// let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    /// let srv = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .context(&ctx)
    ///     .handler(|_r: &Request, _w: &mut ResponseWriter| {})
    ///     .bind()
    ///     .unwrap();
    /// let h = srv.handle();
    /// let serving = goway::go!(move || srv.serve());
    /// assert!(h.wait_shutdown(Duration::ZERO).is_none()); // still serving
    /// cancel.cancel();
    /// let outcome = h.wait_shutdown(Duration::from_secs(5)).expect("shut down");
    /// assert_eq!(outcome.unwrap().drained, 0);
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn wait_shutdown(
        &self,
        timeout: Duration,
    ) -> Option<Result<ShutdownReport, ShutdownError>> {
        let _ = self.shared.outcome_rx.recv_timeout(timeout);
        *self.shared.outcome.lock()
    }

    /// `true` once a shutdown has started.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The address the server listens on (with the real port after binding port 0). The
    /// same type as [`net::ServerHandle::local_addr`](crate::net::ServerHandle::local_addr),
    /// whose Unix-socket servers have none; an HTTP server always has one.
    ///
    /// # Errors
    /// None: always `Ok`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared.addr)
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
