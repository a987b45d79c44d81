//! Configuring and binding a server.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::config::{Config, Effective};
use super::stats::StatsCell;
use super::{Server, Shared};
use crate::chan::{self, Receiver};
use crate::context::{self as gocontext, Context};
use crate::http::handler::Handler;
use crate::net::server::ListenerWake;
use crate::net::server::error as neterr;
use crate::net::server::{LimitError, ServeError};
use crate::net::{ListenConfig, ToAddrs};

/// Configures and binds a [`Server`].
pub struct Builder {
    pub(super) cfg: Config,
    pub(super) addr: Option<Box<dyn ToAddrs + Send>>,
    pub(super) handler: Option<Arc<dyn Handler>>,
    pub(super) ctx: Option<Context>,
    pub(super) signals: Vec<Receiver<()>>,
    pub(super) reuse_port: bool,
    pub(super) tls: Option<crate::tls::ServerConfig>,
    pub(super) tls_handshake_timeout: Option<Duration>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The TCP address to listen on (`"127.0.0.1:8080"`, or port 0 for any free port).
    ///
    /// ```
    /// let server = goway::http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let addr = server.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// ```
    pub fn addr(mut self, addr: impl ToAddrs + Send + 'static) -> Self {
        self.addr = Some(Box::new(addr));
        self
    }

    /// Serves HTTPS (Go's `ListenAndServeTLS`) with `config`; its ALPN protocols become
    /// `http/1.1` unless it names some. Each connection's goroutine runs the handshake
    /// first, under the handshake timeout (see
    /// [`tls_handshake_timeout`](Self::tls_handshake_timeout)); a client that sends plain
    /// HTTP gets Go's 400 reply. A client refused over `max_connections` is closed without
    /// the 503 (it has no TLS session to read it in).
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use goway::http::{Request, ResponseWriter, Server};
    /// use goway::tls::{CertPool, ClientConfig, ServerConfig};
    ///
    /// # let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// # let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .tls(ServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap())
    ///     .handler(|_r: &Request, w: &mut ResponseWriter| {
    ///         let _ = w.write_all(b"secure hello");
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// let addr = server.local_addr().unwrap();
    /// let handle = server.handle();
    /// goway::go!(move || server.serve());
    ///
    /// let roots = CertPool::from_pem(cert.as_bytes()).unwrap();
    /// let mut c = goway::tls::dial(addr, &ClientConfig::with_roots(roots), "localhost").unwrap();
    /// c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    /// let mut reply = String::new();
    /// c.read_to_string(&mut reply).unwrap();
    /// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(reply.ends_with("secure hello"));
    /// handle.shutdown().unwrap();
    /// ```
    pub fn tls(mut self, config: crate::tls::ServerConfig) -> Self {
        let config = if config.rustls().alpn_protocols.is_empty() {
            config.with_alpn(&["http/1.1"])
        } else {
            config
        };
        self.tls = Some(config);
        self
    }

    /// The time a client has to complete the TLS handshake, from its accept (Go's
    /// `TLSHandshakeTimeout`). Default 10 s; `Duration::ZERO`: no limit.
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.tls_handshake_timeout = Some(d);
        self
    }

    /// The handler of every request (usually a [`ServeMux`](crate::http::ServeMux)).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, Server};
    ///
    /// fn hello(_r: &Request, w: &mut ResponseWriter) {
    ///     let _ = w.write_all(b"hello");
    /// }
    /// let builder = Server::builder().handler(hello);
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one_with(builder, req).unwrap();
    /// assert_eq!(reply.body, "hello");
    /// ```
    pub fn handler(mut self, h: impl Handler) -> Self {
        self.handler = Some(Arc::new(h));
        self
    }

    /// Replaces the whole configuration.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let mut cfg = Config::default();
    /// cfg.read_header_timeout = Duration::from_secs(5);
    /// cfg.max_connections = 1_000;
    /// let builder = Server::builder().config(cfg);
    /// // The same as the setters:
    /// let same = Server::builder()
    ///     .read_header_timeout(Duration::from_secs(5))
    ///     .max_connections(1_000);
    /// assert_eq!(format!("{builder:?}"), format!("{same:?}"));
    /// ```
    pub fn config(mut self, cfg: Config) -> Self {
        self.cfg = cfg;
        self
    }

    /// See [`Config::read_header_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().read_header_timeout(Duration::from_secs(5));
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.read_header_timeout = Duration::from_secs(5);
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn read_header_timeout(mut self, d: Duration) -> Self {
        self.cfg.read_header_timeout = d;
        self
    }

    /// See [`Config::read_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().read_timeout(Duration::from_secs(30));
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.read_timeout = Duration::from_secs(30);
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.cfg.read_timeout = d;
        self
    }

    /// See [`Config::write_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().write_timeout(Duration::from_secs(30));
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.write_timeout = Duration::from_secs(30);
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.cfg.write_timeout = d;
        self
    }

    /// See [`Config::idle_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().idle_timeout(Duration::from_secs(120));
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.idle_timeout = Duration::from_secs(120);
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.cfg.idle_timeout = d;
        self
    }

    /// See [`Config::max_header_bytes`].
    ///
    /// ```
    /// use goway::http::{Request, ResponseWriter, Server};
    ///
    /// fn ok(_r: &Request, _w: &mut ResponseWriter) {}
    /// // 1 KiB, and the 4 KiB Go allows over it.
    /// let builder = Server::builder().handler(ok).max_header_bytes(1 << 10);
    /// // The reply to a 6 KiB header field:
    /// # let req = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "a".repeat(6 << 10));
    /// # let reply = goway::http::doctest::serve_one_with(builder, &req).unwrap();
    /// assert_eq!(reply.status, 431);
    /// ```
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.cfg.max_header_bytes = n;
        self
    }

    /// See [`Config::max_body_bytes`].
    ///
    /// ```
    /// use goway::http::{Request, ResponseWriter, Server};
    ///
    /// fn upload(_r: &Request, _w: &mut ResponseWriter) {
    ///     unreachable!("a declared body over the limit is refused before the handler");
    /// }
    /// let builder = Server::builder().handler(upload).max_body_bytes(4);
    /// // The reply to a 5-byte body:
    /// # let req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    /// # let reply = goway::http::doctest::serve_one_with(builder, req).unwrap();
    /// assert_eq!(reply.status, 413);
    /// ```
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.cfg.max_body_bytes = n;
        self
    }

    /// See [`Config::max_connections`].
    ///
    /// ```
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().max_connections(1_000);
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.max_connections = 1_000;
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// See [`Config::shutdown_grace`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().shutdown_grace(Duration::from_secs(5));
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.shutdown_grace = Duration::from_secs(5);
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.cfg.shutdown_grace = d;
        self
    }

    /// See [`Config::handler_stack_size`].
    ///
    /// ```
    /// use goway::http::{Config, Server};
    ///
    /// let builder = Server::builder().handler_stack_size(256 << 10);
    /// // The same as setting the field:
    /// let mut cfg = Config::default();
    /// cfg.handler_stack_size = 256 << 10;
    /// assert_eq!(format!("{builder:?}"), format!("{:?}", Server::builder().config(cfg)));
    /// ```
    pub fn handler_stack_size(mut self, bytes: usize) -> Self {
        self.cfg.handler_stack_size = bytes;
        self
    }

    /// Serves under `ctx` (Go's `BaseContext`): every request's context is a child of it,
    /// and the server shuts down gracefully (within `shutdown_grace`) when it is cancelled.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::{ServeError, Server};
    ///
    /// let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .context(&ctx)
    ///     .bind()
    ///     .unwrap();
    /// let serving = goway::go!(move || server.serve());
    /// cancel.cancel();
    /// assert!(matches!(serving.join().unwrap(), Err(ServeError::ServerClosed)));
    /// ```
    pub fn context(mut self, ctx: &Context) -> Self {
        self.signals.push(ctx.done());
        self.ctx = Some(ctx.clone());
        self
    }

    /// Sets `SO_REUSEPORT` on the listener before binding (Go: a `ListenConfig.Control` that
    /// sets it; see [`ListenConfig`](crate::net::ListenConfig)), so that several processes
    /// (or several servers of one process) listen on the same port and the kernel spreads the
    /// new connections among them. Every listener on the port must set it; without it,
    /// binding a port that another socket listens on fails with `AddrInUse`. Default `false`.
    ///
    /// A server that shuts down leaves the group at once (its listening socket is shut
    /// down, so the kernel sends the next connections to the others); a connection that was
    /// still waiting in its accept queue at that moment is reset by the kernel.
    ///
    /// ```
    /// use goway::http::{ServeError, Server};
    ///
    /// let a = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .reuse_port(true)
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let port = a.local_addr().unwrap().port();
    /// // A second server (in practice, another process) on the same port:
    /// let b = Server::builder()
    ///     .addr(("127.0.0.1", port))
    ///     .reuse_port(true)
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// assert_eq!(b.local_addr().unwrap().port(), port);
    /// // Without it, the port is taken:
    /// let taken = Server::builder()
    ///     .addr(("127.0.0.1", port))
    ///     .handler(goway::http::not_found)
    ///     .bind();
    /// assert!(matches!(taken, Err(ServeError::Io(e)) if e.kind() == std::io::ErrorKind::AddrInUse));
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Shuts the server down gracefully when `signal` closes or delivers a value.
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::http::Server;
    ///
    /// let (stop_tx, stop_rx) = goway::chan::bounded::<()>(1);
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .shutdown_on(stop_rx)
    ///     .bind()
    ///     .unwrap();
    /// let handle = server.handle();
    /// let serving = goway::go!(move || server.serve());
    /// drop(stop_tx); // closing the channel is the signal
    /// assert!(handle.wait_shutdown(Duration::from_secs(5)).is_some());
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn shutdown_on(mut self, signal: Receiver<()>) -> Self {
        self.signals.push(signal);
        self
    }

    /// Binds the listener.
    ///
    /// # Errors
    /// [`ServeError::Io`] without an address or handler, or when binding fails;
    /// [`ServeError::Limit`] when out of file descriptors.
    ///
    /// ```
    /// use goway::http::{ServeError, Server};
    ///
    /// let missing = Server::builder().addr("127.0.0.1:0").bind();
    /// assert!(matches!(missing, Err(ServeError::Io(_)))); // no handler
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(self) -> Result<Server, ServeError> {
        let invalid =
            |m: &str| ServeError::Io(io::Error::new(io::ErrorKind::InvalidInput, m.to_owned()));
        let addr = self
            .addr
            .ok_or_else(|| invalid("no address: call .addr(..) before .bind()"))?;
        let handler = self
            .handler
            .ok_or_else(|| invalid("no handler: call .handler(..) before .bind()"))?;
        let fail = |e: io::Error| -> ServeError {
            if neterr::is_fd_limit(&e) {
                LimitError::FileDescriptors {
                    soft_limit: neterr::nofile_limit(),
                }
                .into()
            } else {
                e.into()
            }
        };
        let listener = ListenConfig::new()
            .reuse_port(self.reuse_port)
            .listen(&*addr)
            .map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
        let wake = ListenerWake::new(&listener, self.reuse_port).map_err(fail)?;
        let fd_limit = neterr::nofile_limit();
        let mut max = self.cfg.max_connections;
        if let Some(lim) = fd_limit {
            let allowed = usize::try_from(lim.saturating_sub(32) / 2)
                .unwrap_or(usize::MAX)
                .max(1);
            if max == 0 || max > allowed {
                if max != 0 {
                    log::info!(target: "goway::http", "max_connections {max} needs {} file descriptors but RLIMIT_NOFILE is {lim}: serving at most {allowed}; raise `ulimit -n` to serve more", max.saturating_mul(2).saturating_add(32));
                }
                max = allowed;
            }
        }
        let (stop_tx, stop_rx) = chan::bounded(0);
        let (alive, all_done) = chan::bounded(0);
        let (outcome_tx, outcome_rx) = chan::bounded(0);
        let base = self.ctx.unwrap_or_else(gocontext::background);
        let (ctx, cut) = gocontext::with_cancel(&base);
        let shared = Arc::new(Shared {
            cfg: Effective::new(&self.cfg),
            handler,
            closing: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            stats: StatsCell::default(),
            max_connections: max,
            fd_limit,
            stop_tx,
            stop_rx,
            alive: Mutex::new(Some(alive)),
            all_done,
            outcome: Mutex::new(None),
            outcome_tx: Mutex::new(Some(outcome_tx)),
            outcome_rx,
            addr: local,
            wake,
            ctx,
            cut,
            epoch: Instant::now(),
            now_ms: AtomicU64::new(0),
            tls: self.tls.map(|c| {
                let limit = match self.tls_handshake_timeout {
                    None => Some(crate::tls::DEFAULT_HANDSHAKE_TIMEOUT),
                    Some(d) if d.is_zero() => None,
                    Some(d) => Some(d),
                };
                (c, limit)
            }),
        });
        log::debug!(target: "goway::http", "http: listening on {local}");
        Ok(Server {
            listener: Some(listener),
            shared,
            signals: self.signals,
        })
    }
}
