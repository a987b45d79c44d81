//! A framed server in the classic Go shape: one accept goroutine, and per connection a
//! reader, a handler and a writer goroutine joined by bounded channels.
//!
//! ```text
//!            socket                in (bounded)            out (bounded)            socket
//! client ──▶ reader: read, decode ──────────▶ handler(conn) ──────────▶ writer: encode, write ──▶ client
//! ```
//!
//! - The **reader** decodes every frame a read brings in and queues each for the handler; a
//!   full queue stops it reading (backpressure reaches the client's TCP window).
//! - The **handler** is your function: `for frame in conn { conn.send(reply)? }`. It may also
//!   hand [`conn.sender()`](Conn::sender) to other goroutines (broadcast).
//! - The **writer** takes every reply queued at the moment, encodes them into one buffer and
//!   writes it with one call. One shortcut: when the writer has nothing queued or in hand and
//!   no more input waits for the handler (a client in lockstep), `conn.send` writes the reply
//!   from the handler's goroutine at once, saving a hop and a goroutine switch; order, the
//!   write timeout and the stats are the same either way.
//!
//! When any of the three ends, the others end promptly: the reader's end closes the handler's
//! input; the handler's return closes the writer's queue (after which the writer flushes and
//! sends FIN); a socket error aborts all three. Limits and timeouts are in [`Config`]; what
//! happened is in [`Stats`].
//!
//! # Examples
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use goway::net::codec::LinesCodec;
//! use goway::net::Server;
//!
//! let server = Server::builder()
//!     .addr("127.0.0.1:0")
//!     .codec(LinesCodec::new())
//!     .handler(|conn| {
//!         for frame in conn {
//!             conn.send(frame)?; // echo
//!         }
//!         Ok(())
//!     })
//!     .bind()
//!     .unwrap();
//! let addr = server.local_addr().unwrap();
//! let handle = server.handle();
//! let serving = goway::go!(move || server.serve());
//!
//! let mut c = std::net::TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello\nworld\n").unwrap();
//! let mut lines = BufReader::new(c).lines();
//! assert_eq!(lines.next().unwrap().unwrap(), "hello");
//! assert_eq!(lines.next().unwrap().unwrap(), "world");
//!
//! handle.shutdown().unwrap();
//! assert!(matches!(serving.join().unwrap(), Err(goway::net::server::ServeError::ServerClosed)));
//! assert_eq!(handle.stats().active, 0);
//! ```

pub(crate) mod accept;
mod budget;
mod busy;
pub(crate) mod config;
mod conn;
pub(crate) mod error;
mod shutdown;
mod stats;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

pub use config::{Config, WhenFull};
pub use conn::{Conn, ConnSender, Frames, HandlerResult};
pub use error::{LimitError, ServeError, ShutdownError};
pub use shutdown::ShutdownReport;
pub use stats::{CloseReason, ClosedBy, Stats};

pub(crate) use conn::LINGER;
pub(crate) use shutdown::wake_acceptor;

use crate::chan::{self, Receiver, Sender};
use crate::context::{self as gocontext, Context};
use crate::net::codec::Codec;
use crate::net::{TcpListener, ToAddrs, UnixListener};
use config::Effective;
use conn::{ConnCtl, HandlerFn};

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address (with the real port after binding port 0).
    Tcp(std::net::SocketAddr),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => a.fmt(f),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The listening socket, owned by `serve`. A Unix socket's file is removed when it closes,
/// as Go's `UnixListener` does.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// State shared by the server, its handles and its connections.
pub(crate) struct ServerShared {
    pub(crate) cfg: Effective,
    /// `cfg.max_connections`, lowered to what the descriptor limit allows.
    pub(crate) max_connections: usize,
    pub(crate) fd_limit: Option<u64>,
    pub(crate) stats: stats::StatsCell,
    /// Live connections, for shutdown. Locked per connection start and end, never per frame.
    pub(crate) conns: Mutex<HashMap<u64, Arc<dyn ConnCtl>>>,
    pub(crate) next_id: AtomicU64,
    /// Set once by the first shutdown.
    pub(crate) closing: AtomicBool,
    /// Closed by the first shutdown (ends an accept backoff pause, and the signal watcher).
    pub(crate) shutdown_tx: Sender<()>,
    shutdown_rx: Receiver<()>,
    /// The first sender of the "all gone" channel: the accept loop and every connection hold
    /// clones; shutdown drops this one, so `all_done` closes when they are all gone.
    pub(crate) alive: Mutex<Option<Sender<()>>>,
    pub(crate) all_done: Receiver<()>,
    /// The outcome of the last finished shutdown, whatever started it.
    pub(crate) outcome: Mutex<Option<Result<ShutdownReport, ShutdownError>>>,
    /// Dropped (closing `outcome_rx`) when the first shutdown has finished.
    pub(crate) outcome_tx: Mutex<Option<Sender<()>>>,
    outcome_rx: Receiver<()>,
    pub(crate) listen: ListenAddr,
    /// Parent of every connection's context.
    pub(crate) ctx: Context,
    /// The busy poller, when `busy_poll` is set.
    pub(crate) busy: Option<Arc<busy::BusyPoll>>,
}

impl ServerShared {
    /// The counters, the busy poller's included.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.stats.snapshot();
        if let Some(bp) = &self.busy {
            (s.spins, s.spin_hits) = bp.counts();
        }
        for c in self.conns.lock().values() {
            let (queued, peak) = c.queued_bytes();
            s.queued_bytes += queued as u64;
            s.queued_bytes_peak = s.queued_bytes_peak.max(peak as u64);
        }
        s
    }
}

/// A bound server, ready to [`serve`](Self::serve). Build one with [`Server::builder`].
pub struct Server<C: Codec> {
    listener: Option<Listener>,
    codec: C,
    handler: Arc<HandlerFn<C>>,
    shared: Arc<ServerShared>,
    signals: Vec<Receiver<()>>,
}

impl<C: Codec> fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.shared.listen)
            .field("stats", &self.shared.stats())
            .finish_non_exhaustive()
    }
}

// `Server::builder()` needs some codec type to name the impl by; the builder's own type
// parameters are what matter.
impl Server<crate::net::codec::LinesCodec> {
    /// A builder with the default [`Config`]; set at least `addr` (or `unix`), `codec` and
    /// `handler`, then [`bind`](Builder::bind). (Any codec works: this constructor lives on
    /// `Server<LinesCodec>` only so that it can be called without type parameters.)
    pub fn builder() -> Builder<(), ()> {
        Builder {
            cfg: Config::default(),
            addr: None,
            codec: (),
            handler: (),
            signals: Vec::new(),
            ctx: None,
        }
    }
}

impl<C: Codec> Server<C> {
    /// Where the server listens.
    pub fn listen_addr(&self) -> &ListenAddr {
        &self.shared.listen
    }

    /// The TCP address the server listens on (with the real port after binding port 0).
    ///
    /// # Errors
    /// `Unsupported` for a Unix-socket server.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.handle().local_addr()
    }

    /// A handle to shut the server down and read its stats from any goroutine or thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Accepts and serves connections until the server is shut down, on the calling goroutine
    /// (or thread). Like Go's `Serve`, it always returns an error:
    /// [`ServeError::ServerClosed`] after [`ServerHandle::shutdown`] (also when called after
    /// it), or the accept error that retrying cannot fix. Accept errors from exhausted
    /// resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) are retried after a pause of 5 ms
    /// doubling to 1 s, each logged with a warning that names the limit.
    ///
    /// # Errors
    /// Always; see above.
    pub fn serve(mut self) -> Result<(), ServeError> {
        let srv = self.shared.clone();
        let alive = srv.alive.lock().clone();
        let (Some(alive), Some(listener)) = (alive, self.listener.take()) else {
            return Err(ServeError::ServerClosed);
        };
        srv.stats.goroutines.fetch_add(1, Ordering::Relaxed);
        for sig in std::mem::take(&mut self.signals) {
            let h = self.handle();
            let stop = srv.shutdown_rx.clone();
            // Shut down when the signal channel closes (or delivers), unless shutdown came first.
            let watcher = crate::Builder::new().spawn(move || {
                crate::select! {
                    recv(sig) -> _ => { let _ = h.shutdown(); },
                    recv(stop) -> _ => {},
                }
            });
            if let Err(e) = watcher {
                log::warn!(target: "goway::server", "cannot watch the shutdown signal: {e}");
            }
        }
        let stop = srv.shutdown_rx.clone();
        let mut refuse_log = accept::RefuseLog::new();
        let err = accept::accept_loop(
            || listener.accept(),
            || srv.closing.load(Ordering::SeqCst),
            |d| {
                crate::select! {
                    recv(stop) -> _ => false,
                    recv(crate::time::after(d)) -> _ => true,
                }
            },
            |s, peer| {
                accept::start_conn(
                    s,
                    peer,
                    &srv,
                    &self.codec,
                    &self.handler,
                    &alive,
                    &mut refuse_log,
                )
            },
            srv.fd_limit,
        );
        drop(listener);
        srv.stats.goroutines.fetch_sub(1, Ordering::Relaxed);
        drop(alive);
        Err(err)
    }
}

/// A cloneable handle on a running server: shutdown, stats, address.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<ServerShared>,
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
    ///    once, a frame being received is finished (within `read_timeout`);
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
    /// [`shutdown`](Self::shutdown), a [`shutdown_on`](Builder::shutdown_on) signal, the
    /// server's [`context`](Builder::context) being cancelled), and returns its outcome, as
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

enum BindAddr {
    Tcp(Box<dyn ToAddrs + Send>),
    Unix(PathBuf),
}

/// Configures and binds a [`Server`]: `Server::builder().addr(..).codec(..).handler(..)
/// .bind()`. Set the codec before the handler, so the handler's `conn` type is known.
pub struct Builder<C, H> {
    cfg: Config,
    addr: Option<BindAddr>,
    codec: C,
    handler: H,
    signals: Vec<Receiver<()>>,
    ctx: Option<Context>,
}

impl<C, H> fmt::Debug for Builder<C, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<C, H> Builder<C, H> {
    /// Listens on a TCP address, such as `"127.0.0.1:7878"` or `"127.0.0.1:0"` (any free port).
    pub fn addr(mut self, addr: impl ToAddrs + Send + 'static) -> Self {
        self.addr = Some(BindAddr::Tcp(Box::new(addr)));
        self
    }

    /// Listens on a Unix socket at `path` (the file is removed when the server stops).
    pub fn unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.addr = Some(BindAddr::Unix(path.into()));
        self
    }

    /// The framing of the connections.
    pub fn codec<C2: Codec>(self, codec: C2) -> Builder<C2, H> {
        Builder {
            cfg: self.cfg,
            addr: self.addr,
            codec,
            handler: self.handler,
            signals: self.signals,
            ctx: self.ctx,
        }
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, cfg: Config) -> Self {
        self.cfg = cfg;
        self
    }

    /// See [`Config::max_connections`] (default 10,000; 0: only the descriptor limit).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// See [`Config::max_frame`] (default 1 MiB; 0: the default).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.cfg.max_frame = bytes;
        self
    }

    /// See [`Config::read_timeout`] (default 10 s, from a frame's first byte; 0: none).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.cfg.read_timeout = d;
        self
    }

    /// See [`Config::idle_timeout`] (default 60 s; 0: none).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.cfg.idle_timeout = d;
        self
    }

    /// See [`Config::write_timeout`] (default 10 s without progress; 0: none).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.cfg.write_timeout = d;
        self
    }

    /// See [`Config::write_queue`] (default 64 frames; 0: unbuffered).
    pub fn write_queue(mut self, frames: usize) -> Self {
        self.cfg.write_queue = frames;
        self
    }

    /// See [`Config::write_queue_bytes`] (default 1 MiB of queued replies; 0: no byte bound).
    pub fn write_queue_bytes(mut self, bytes: usize) -> Self {
        self.cfg.write_queue_bytes = bytes;
        self
    }

    /// See [`Config::write_queue_full`] (default [`WhenFull::Wait`]: back-pressure).
    pub fn write_queue_full(mut self, when: WhenFull) -> Self {
        self.cfg.write_queue_full = when;
        self
    }

    /// See [`Config::write_queue_soft`] and [`Config::write_queue_soft_for`] (default: no
    /// soft limit).
    pub fn write_queue_soft(mut self, bytes: usize, stay: Duration) -> Self {
        self.cfg.write_queue_soft = bytes;
        self.cfg.write_queue_soft_for = stay;
        self
    }

    /// Redis's `client-output-buffer-limit <class> <hard> <soft> <soft seconds>`: a client
    /// whose replies not yet written would pass `hard` bytes, or stay above `soft` bytes for
    /// `soft_for`, is disconnected (reason [`CloseReason::OutputLimit`], a warning with its
    /// address and the limit) instead of making its handler wait. Sets
    /// [`write_queue_bytes`](Config::write_queue_bytes) to `hard` (0: no hard limit), the
    /// soft limit, and [`WhenFull::Disconnect`]; see [`WhenFull`] for an example.
    pub fn output_limit(self, hard: usize, soft: usize, soft_for: Duration) -> Self {
        self.write_queue_bytes(hard)
            .write_queue_full(WhenFull::Disconnect)
            .write_queue_soft(soft, soft_for)
    }

    /// See [`Config::read_queue`] (default 64 frames; 0: unbuffered).
    pub fn read_queue(mut self, frames: usize) -> Self {
        self.cfg.read_queue = frames;
        self
    }

    /// See [`Config::shutdown_grace`] (default 30 s; 0: cut off at once).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.cfg.shutdown_grace = d;
        self
    }

    /// See [`Config::busy_reply`] (default none).
    pub fn busy_reply(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg.busy_reply = Some(bytes.into());
        self
    }

    /// See [`Config::busy_poll`] (default 0: off). For example, spinning up to 50 µs for the
    /// next pipelined request before the worker sleeps:
    ///
    /// ```
    /// use std::time::Duration;
    /// use goway::net::codec::LinesCodec;
    /// use goway::net::Server;
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .codec(LinesCodec::new())
    ///     .busy_poll(Duration::from_micros(50))
    ///     .handler(|conn| {
    ///         for line in conn {
    ///             conn.send(line)?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn busy_poll(mut self, budget: Duration) -> Self {
        self.cfg.busy_poll = budget;
        self
    }

    /// See [`Config::handler_stack_size`] (default: the runtime's).
    pub fn handler_stack_size(mut self, bytes: usize) -> Self {
        self.cfg.handler_stack_size = bytes;
        self
    }

    /// Shuts the server down gracefully when `signal` closes (or receives a value): the
    /// server's stop signal as a goway channel, for example closed by a signal handler or by
    /// a parent's cancellation.
    pub fn shutdown_on(mut self, signal: Receiver<()>) -> Self {
        self.signals.push(signal);
        self
    }

    /// Serves under `ctx` (Go's `BaseContext`): each connection's
    /// [`context`](Conn::context) is a child of it, and the server shuts down gracefully
    /// when it is cancelled or its deadline passes. Default: `context::background()`.
    pub fn context(mut self, ctx: &Context) -> Self {
        self.signals.push(ctx.done());
        self.ctx = Some(ctx.clone());
        self
    }
}

impl<C: Codec, H> Builder<C, H> {
    /// The connection handler: called once per connection, on its own goroutine, with the
    /// [`Conn`]. Its return (or panic) ends the connection once the queued replies are
    /// written.
    pub fn handler<F>(self, f: F) -> Builder<C, Arc<HandlerFn<C>>>
    where
        F: Fn(&Conn<C>) -> HandlerResult + Send + Sync + 'static,
    {
        Builder {
            cfg: self.cfg,
            addr: self.addr,
            codec: self.codec,
            handler: Arc::new(f),
            signals: self.signals,
            ctx: self.ctx,
        }
    }
}

impl<C: Codec> Builder<C, Arc<HandlerFn<C>>> {
    /// Binds the listener. Warns (target `goway::server`) and lowers `max_connections` when
    /// the file-descriptor limit cannot back it.
    ///
    /// # Errors
    /// [`ServeError::Io`] if no address was set, binding failed or the busy poller (see
    /// [`busy_poll`](Builder::busy_poll)) could not start;
    /// [`ServeError::Limit`] when out of file descriptors.
    pub fn bind(self) -> Result<Server<C>, ServeError> {
        let fail = |e: io::Error| -> ServeError {
            if error::is_fd_limit(&e) {
                LimitError::FileDescriptors {
                    soft_limit: error::nofile_limit(),
                }
                .into()
            } else {
                e.into()
            }
        };
        let (listener, listen) = match self.addr {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no address: call .addr(..) or .unix(..) before .bind()",
                )
                .into());
            }
            Some(BindAddr::Tcp(a)) => {
                let l = TcpListener::bind(&*a).map_err(fail)?;
                let addr = l.local_addr().map_err(fail)?;
                (Listener::Tcp(l), ListenAddr::Tcp(addr))
            }
            Some(BindAddr::Unix(p)) => {
                let l = UnixListener::bind(&p).map_err(fail)?;
                (Listener::Unix(l, p.clone()), ListenAddr::Unix(p))
            }
        };
        let cfg = Effective::new(&self.cfg);
        let mut max = cfg.max_connections;
        // Like Go, use what the hard limit allows before lowering max_connections.
        let want = if max == 0 { u64::MAX } else { max as u64 + 32 };
        let fd_limit = error::raise_nofile_limit(want).or_else(error::nofile_limit);
        if let Some(lim) = fd_limit {
            // Redis reserves 32 descriptors for itself; each connection here takes one (and
            // briefly a second while its client does not read; without one it polls).
            let allowed = usize::try_from(lim.saturating_sub(32))
                .unwrap_or(usize::MAX)
                .max(1);
            if max == 0 || max > allowed {
                if max != 0 {
                    log::warn!(target: "goway::server", "max_connections {max} needs {} file descriptors but RLIMIT_NOFILE is {lim}: serving at most {allowed}; raise `ulimit -n` (LimitNOFILE= under systemd) to serve more", max.saturating_add(32));
                }
                max = allowed;
            }
        }
        // Each connection runs three goroutines; the process can hold `max_goroutines()`.
        let need = max
            .saturating_mul(accept::CONN_GOROUTINES)
            .saturating_add(1);
        let cap = crate::runtime::max_goroutines();
        if need > cap {
            let maps =
                error::max_map_count().map_or_else(|| "unknown".to_string(), |m| m.to_string());
            log::warn!(target: "goway::server", "max_connections {max} needs {need} goroutines but this process can hold about {cap} (vm.max_map_count {maps}: each goroutine stack takes 2 memory mappings): about {} connections can be served, the rest are refused; raise it with `sysctl -w vm.max_map_count=N`", cap / accept::CONN_GOROUTINES);
        }
        let busy = match cfg.busy_poll {
            Some(budget) => Some(busy::BusyPoll::start(budget).map_err(fail)?.0),
            None => None,
        };
        let mut codec = self.codec;
        codec.set_max_frame(cfg.max_frame);
        let (shutdown_tx, shutdown_rx) = chan::bounded(0);
        let (alive, all_done) = chan::bounded(0);
        let (outcome_tx, outcome_rx) = chan::bounded(0);
        let shared = Arc::new(ServerShared {
            cfg,
            max_connections: max,
            fd_limit,
            stats: Default::default(),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            shutdown_tx,
            shutdown_rx,
            alive: Mutex::new(Some(alive)),
            all_done,
            outcome: Mutex::new(None),
            outcome_tx: Mutex::new(Some(outcome_tx)),
            outcome_rx,
            listen,
            ctx: self.ctx.unwrap_or_else(gocontext::background),
            busy,
        });
        log::debug!(target: "goway::server", "listening on {}", shared.listen);
        Ok(Server {
            listener: Some(listener),
            codec,
            handler: self.handler,
            shared,
            signals: self.signals,
        })
    }
}
