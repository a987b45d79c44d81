//! The HTTP server (Go's `http.Server`): settings, the accept loop, the registry of
//! connections, and graceful shutdown.
//!
//! Each connection is served by one goroutine ([`conn`](super::conn)): HTTP/1.1 answers
//! requests in order, so one goroutine reading, handling and writing needs no channels.

mod accept;
mod builder;
mod config;
mod handle;
mod idle;
mod shutdown;
mod stats;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

pub use builder::Builder;
pub use config::Config;
pub use handle::ServerHandle;
pub use stats::Stats;

use super::handler::Handler;
use crate::chan::{Receiver, Sender};
use crate::context::{self as gocontext, Context};
use crate::net::TcpListener;
use crate::net::ToAddrs;
use crate::net::server::accept::{RefuseLog, accept_loop};
use crate::net::server::{ServeError, ShutdownError, ShutdownReport};
pub(crate) use config::Effective;
use stats::StatsCell;
pub(crate) use table::{ConnEntry, ConnState};

/// State shared by the server, its handles and its connections.
pub(crate) struct Shared {
    pub(crate) cfg: Effective,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) closing: AtomicBool,
    pub(crate) conns: Mutex<HashMap<u64, Arc<ConnEntry>>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) stats: StatsCell,
    pub(crate) max_connections: usize,
    pub(crate) fd_limit: Option<u64>,
    pub(crate) stop_tx: Sender<()>,
    pub(crate) stop_rx: Receiver<()>,
    pub(crate) alive: Mutex<Option<Sender<()>>>,
    pub(crate) all_done: Receiver<()>,
    /// The outcome of the last finished shutdown, whatever started it.
    pub(crate) outcome: Mutex<Option<Result<ShutdownReport, ShutdownError>>>,
    /// Dropped (closing `outcome_rx`) when the first shutdown has finished.
    pub(crate) outcome_tx: Mutex<Option<Sender<()>>>,
    pub(crate) outcome_rx: Receiver<()>,
    pub(crate) addr: SocketAddr,
    /// How shutdown wakes the accept loop.
    pub(crate) wake: crate::net::server::ListenerWake,
    /// Parent of every request's context: a child of the base context, cancelled when a
    /// shutdown's grace period ends (so handlers waiting on their context give up).
    pub(crate) ctx: Context,
    pub(crate) cut: gocontext::CancelFunc,
    /// Start of the coarse clock.
    pub(crate) epoch: Instant,
    /// Milliseconds since `epoch`, advanced by the janitor at each tick: connections stamp
    /// their idle start with it without reading the clock.
    pub(crate) now_ms: AtomicU64,
    /// TLS ([`Builder::tls`]): the configuration and the handshake timeout.
    pub(crate) tls: Option<(crate::tls::ServerConfig, Option<std::time::Duration>)>,
}

impl Shared {
    /// The coarse clock: milliseconds since the server started, as of the janitor's last
    /// tick.
    #[inline]
    pub(crate) fn coarse_now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// A bound HTTP server, ready to [`serve`](Self::serve) (Go's `http.Server`). Build one
/// with [`Server::builder`].
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use goway::http::{Request, ResponseWriter, Server, ServeMux};
///
/// let mut mux = ServeMux::new();
/// mux.handle("GET /hello", |_r: &Request, w: &mut ResponseWriter| {
///     let _ = w.write_all(b"hi");
/// });
/// let server = Server::builder().addr("127.0.0.1:0").handler(mux).bind().unwrap();
/// let addr = server.local_addr().unwrap();
/// let handle = server.handle();
/// let serving = goway::go!(move || server.serve());
///
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut reply = String::new();
/// c.read_to_string(&mut reply).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(reply.ends_with("\r\n\r\nhi"));
///
/// handle.shutdown().unwrap();
/// assert!(serving.join().unwrap().is_err()); // ServeError::ServerClosed
/// ```
pub struct Server {
    pub(super) listener: Option<TcpListener>,
    pub(super) shared: Arc<Shared>,
    pub(super) signals: Vec<Receiver<()>>,
}

impl Drop for Server {
    /// A server dropped without serving closes its listener, also one that shares its port
    /// (whose duplicate descriptor, kept for shutdown, would hold it open and keep taking the
    /// port's connections).
    fn drop(&mut self) {
        self.shared.wake.release();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.shared.addr)
            .field("stats", &self.shared.stats.snapshot())
            .finish_non_exhaustive()
    }
}

/// Serves `handler` on `addr` with the default [`Config`] until an error (Go's
/// `http.ListenAndServe`). Runs on the calling goroutine or thread.
///
/// # Errors
/// Binding fails, or as [`Server::serve`].
///
/// ```
/// use goway::http::ServeError;
///
/// // An address already taken: binding fails at once.
/// let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = taken.local_addr().unwrap();
/// let r = goway::http::listen_and_serve(addr, goway::http::not_found);
/// assert!(matches!(r, Err(ServeError::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse));
/// ```
pub fn listen_and_serve(
    addr: impl ToAddrs + Send + 'static,
    handler: impl Handler,
) -> Result<(), ServeError> {
    Server::builder()
        .addr(addr)
        .handler(handler)
        .bind()?
        .serve()
}

impl Server {
    /// A builder with the default [`Config`]; set `addr` and `handler`, then `bind`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .read_header_timeout(Duration::from_secs(5))
    ///     .bind()
    ///     .unwrap();
    /// assert!(server.local_addr().is_ok());
    /// ```
    pub fn builder() -> Builder {
        Builder {
            cfg: Config::default(),
            addr: None,
            handler: None,
            ctx: None,
            signals: Vec::new(),
            reuse_port: false,
            tls: None,
            tls_handshake_timeout: None,
        }
    }

    /// The address the server listens on (with the real port after binding port 0). The
    /// same type as [`net::Server::local_addr`](crate::net::Server::local_addr), whose
    /// Unix-socket servers have none; an HTTP server always has one.
    ///
    /// # Errors
    /// None: always `Ok`.
    ///
    /// ```
    /// use goway::http::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let addr = server.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0); // the port the system chose
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.shared.addr)
    }

    /// A handle to shut the server down and read its stats from anywhere.
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
    /// assert_eq!(handle.stats().accepted, 0);
    /// handle.shutdown().unwrap();
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts and serves connections until shutdown, on the calling goroutine or thread
    /// (Go's `Serve`). Accept errors from exhausted resources (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`) are retried after 5 ms doubling to 1 s, with a logged warning.
    ///
    /// # Errors
    /// Always: [`ServeError::ServerClosed`] after a shutdown (also when called after one),
    /// or the accept error that retrying cannot fix.
    ///
    /// ```
    /// use goway::http::{ServeError, Server};
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// // Shut down before serving: `serve` returns at once.
    /// server.handle().shutdown().unwrap();
    /// assert!(matches!(server.serve(), Err(ServeError::ServerClosed)));
    /// ```
    pub fn serve(mut self) -> Result<(), ServeError> {
        let srv = self.shared.clone();
        let alive = srv.alive.lock().clone();
        let (Some(alive), Some(listener)) = (alive, self.listener.take()) else {
            return Err(ServeError::ServerClosed);
        };
        for sig in std::mem::take(&mut self.signals) {
            let h = self.handle();
            let stop = srv.stop_rx.clone();
            let watcher = crate::Builder::new().spawn(move || {
                crate::select! {
                    recv(sig) -> _ => { let _ = h.shutdown(); },
                    recv(stop) -> _ => {},
                }
            });
            if let Err(e) = watcher {
                log::warn!(target: "goway::http", "cannot watch the shutdown signal: {e}");
            }
        }
        if let Some(idle) = srv.cfg.idle_timeout {
            let s = srv.clone();
            if let Err(e) = crate::Builder::new().spawn(move || idle::janitor(s, idle)) {
                log::warn!(target: "goway::http", "cannot start the idle-connection janitor: {e}");
            }
        }
        let stop = srv.stop_rx.clone();
        let mut refuse_log = RefuseLog::new();
        let err = accept_loop(
            || listener.accept().map(|(s, a)| (s, a.into())),
            || srv.closing.load(Ordering::SeqCst),
            |d| {
                crate::select! {
                    recv(stop) -> _ => false,
                    recv(crate::time::after(d)) -> _ => true,
                }
            },
            |s, peer| {
                let crate::net::PeerAddr::Tcp(peer) = peer else {
                    return;
                };
                accept::start_conn(s, peer, &srv, &alive, &mut refuse_log);
            },
            srv.fd_limit,
        );
        srv.wake.release();
        drop(listener);
        drop(alive);
        Err(err)
    }
}
