//! [`ServerHandle`]: shutting a running server down and reading its state from anywhere.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ListenAddr, ServerShared, ShutdownError, ShutdownReport, Stats, shutdown};
use crate::chan;

/// A cloneable handle on a running server: shutdown, stats, address.
#[derive(Clone)]
pub struct ServerHandle {
    pub(super) shared: Arc<ServerShared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.shared.listen)
            .field("closing", &self.is_closing())
            .finish()
    }
}

impl ServerHandle {
    /// Shuts down gracefully within the configured `shutdown_grace` (Go's `Shutdown`):
    /// 1. stops accepting (the listener closes; `serve` returns `ServerClosed`);
    /// 2. ends every connection's input at its next frame boundary: idle connections close at
    ///    once, a frame being received is finished (within `frame_timeout`);
    /// 3. lets handlers answer the frames already received, writes the replies, closes;
    /// 4. after the grace period, cuts off whatever is left and reports how many.
    ///
    /// Calling it again waits again (idempotent).
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown(&self) -> Result<ShutdownReport, ShutdownError> {
        shutdown::shutdown(&self.shared, self.shared.cfg.shutdown_grace)
    }

    /// [`shutdown`](Self::shutdown) with another grace period.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown_timeout(&self, grace: Duration) -> Result<ShutdownReport, ShutdownError> {
        shutdown::shutdown(&self.shared, grace)
    }

    /// Closes the listener and every connection now, dropping queued replies (Go's
    /// `Server.Close`). Returns how many connections were cut off.
    pub fn close(&self) -> usize {
        match shutdown::shutdown(&self.shared, Duration::ZERO) {
            Ok(_) => 0,
            Err(ShutdownError::Timeout { cut_off }) => cut_off,
        }
    }

    /// Waits up to `timeout` for a shutdown to finish, whatever started it (a call to
    /// [`shutdown`](Self::shutdown), a [`shutdown_on`](super::Builder::shutdown_on) signal, the
    /// server's [`context`](super::Builder::context) being cancelled), and returns its outcome, as
    /// `shutdown` would have: how many connections drained, or how many were cut off after
    /// the grace period. `None` if no shutdown finished in time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::net::{Server, codec::LinesCodec};
    ///
    /// let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    /// let srv = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .codec(LinesCodec::new())
    ///     .context(&ctx)
    ///     .handler(|conn| { for f in conn { conn.send(f)?; } Ok(()) })
    ///     .bind()
    ///     .unwrap();
    /// let h = srv.handle();
    /// let serving = goway::go!(move || srv.serve());
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

    /// After a shutdown, waits up to `timeout` for the accept loop and every connection's
    /// goroutines to be gone; `true` if they are. Before a shutdown it just waits and returns
    /// `false`.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        matches!(
            self.shared.all_done.recv_timeout(timeout),
            Err(chan::RecvTimeoutError::Closed)
        )
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Where the server listens.
    pub fn listen_addr(&self) -> &ListenAddr {
        &self.shared.listen
    }

    /// The TCP address the server listens on.
    ///
    /// # Errors
    /// `Unsupported` for a Unix-socket server.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match &self.shared.listen {
            ListenAddr::Tcp(a) => Ok(*a),
            ListenAddr::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a Unix-socket server has no TCP address",
            )),
        }
    }
}
