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
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use goway::http::{Request, ResponseWriter, Server};
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(|_r: &Request, w: &mut ResponseWriter| {
    ///         let _ = w.write_all(b"hi");
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// let (addr, handle) = (server.local_addr().unwrap(), server.handle());
    /// let serving = goway::go!(move || server.serve());
    /// // A keep-alive client, idle after its first response.
    /// let mut c = std::net::TcpStream::connect(addr).unwrap();
    /// c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    /// let mut reply = [0u8; 512];
    /// assert!(c.read(&mut reply).unwrap() > 0);
    ///
    /// let report = handle.shutdown().unwrap();
    /// assert_eq!(report.drained, 1); // the idle connection, closed
    /// assert_eq!(c.read(&mut reply).unwrap(), 0); // EOF
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn shutdown(&self) -> Result<ShutdownReport, ShutdownError> {
        self.shutdown_timeout(self.shared.cfg.shutdown_grace)
    }

    /// [`shutdown`](Self::shutdown) with another grace period.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Request, ResponseWriter, Server, ShutdownError};
    ///
    /// let (started_tx, started_rx) = goway::chan::bounded(1);
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(move |r: &Request, _w: &mut ResponseWriter| {
    ///         let _ = started_tx.send(());
    ///         // Stuck until the cut-off cancels the request's context.
    ///         let _ = r.context().done().recv();
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// let (addr, handle) = (server.local_addr().unwrap(), server.handle());
    /// let serving = goway::go!(move || server.serve());
    /// let mut c = std::net::TcpStream::connect(addr).unwrap();
    /// std::io::Write::write_all(&mut c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    /// started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    ///
    /// let r = handle.shutdown_timeout(Duration::from_millis(50));
    /// assert_eq!(r, Err(ShutdownError::Timeout { cut_off: 1 }));
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] with the number of connections cut off.
    pub fn shutdown_timeout(&self, grace: Duration) -> Result<ShutdownReport, ShutdownError> {
        shutdown(&self.shared, grace)
    }

    /// Closes the listener and every connection now (Go's `Close`); returns how many were
    /// cut off (open and not idle).
    ///
    /// ```
    /// use goway::http::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let handle = server.handle();
    /// let serving = goway::go!(move || server.serve());
    /// assert_eq!(handle.close(), 0); // no connection was open
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
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
    ///
    /// ```
    /// let server = goway::http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let handle = server.handle();
    /// assert!(!handle.is_closing());
    /// handle.shutdown().unwrap();
    /// assert!(handle.is_closing());
    /// ```
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// The server's counters now.
    ///
    /// ```
    /// use std::io::Read;
    /// use goway::http::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let (addr, handle) = (server.local_addr().unwrap(), server.handle());
    /// let serving = goway::go!(move || server.serve());
    /// let mut c = std::net::TcpStream::connect(addr).unwrap();
    /// std::io::Write::write_all(&mut c, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// let mut reply = String::new();
    /// c.read_to_string(&mut reply).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 404"));
    ///
    /// let stats = handle.stats();
    /// assert_eq!((stats.accepted, stats.requests), (1, 1));
    /// handle.shutdown().unwrap();
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// The address the server listens on (with the real port after binding port 0). The
    /// same type as [`net::ServerHandle::local_addr`](crate::net::ServerHandle::local_addr),
    /// whose Unix-socket servers have none; an HTTP server always has one.
    ///
    /// # Errors
    /// None: always `Ok`.
    ///
    /// ```
    /// let server = goway::http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let handle = server.handle();
    /// assert_eq!(handle.local_addr().unwrap(), server.local_addr().unwrap());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared.addr)
    }

    /// After a shutdown, waits up to `timeout` for the accept loop and every connection to
    /// be gone; `true` if they are.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let handle = server.handle();
    /// let serving = goway::go!(move || server.serve());
    /// assert!(!handle.wait_closed(Duration::ZERO)); // still serving
    /// handle.shutdown().unwrap();
    /// assert!(handle.wait_closed(Duration::from_secs(5)));
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        matches!(
            self.shared.all_done.recv_timeout(timeout),
            Err(RecvTimeoutError::Closed)
        )
    }
}
