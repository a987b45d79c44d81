//! The HTTP server (Go's `http.Server`): settings, the accept loop, the registry of
//! connections, and graceful shutdown.
//!
//! Each connection is served by one goroutine ([`conn`](super::conn)): HTTP/1.1 answers
//! requests in order, so one goroutine reading, handling and writing needs no channels.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn;
use super::handler::Handler;
use crate::chan::{self, Receiver, RecvTimeoutError, Sender};
use crate::context::{self as gocontext, Context};
use crate::net::server::accept::{self, RefuseLog};
use crate::net::server::error as neterr;
use crate::net::server::{LimitError, ServeError, ShutdownError};
use crate::net::{TcpListener, TcpStream, ToAddrs};

/// An HTTP server's limits and timeouts. Each field gives its default and what zero means;
/// the [`Builder`] has a setter for each.
///
/// ```
/// let cfg = goway::http::Config::default();
/// assert_eq!(cfg.max_header_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Time to receive a request's head (Go's `ReadHeaderTimeout`), counted from the
    /// connection's accept for its first request and from the first byte for later ones;
    /// bytes trickling in do not extend it (slowloris). The connection is closed without a
    /// reply, as Go does. Default 10 s; 0: no limit.
    pub read_header_timeout: Duration,
    /// Time to receive a whole request, head and body, from its first byte (Go's
    /// `ReadTimeout`): body reads after it fail with `TimedOut`. Default 0: no limit (as Go).
    pub read_timeout: Duration,
    /// Time to write a response, from the end of the request head (Go's `WriteTimeout`):
    /// writes after it fail and the connection closes. Default 0: no limit (as Go).
    pub write_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request (Go's `IdleTimeout`); it
    /// is closed (without a reply) between 1 and 1.5 times this after its last response,
    /// by a janitor goroutine that checks four times per period. Default 60 s; 0:
    /// `read_timeout` (Go's fallback), and if that is 0 too, no limit.
    pub idle_timeout: Duration,
    /// Largest request head (request line and header fields), in bytes (Go's
    /// `MaxHeaderBytes`; Go also allows 4 KiB over it). A larger one gets `431 Request Header
    /// Fields Too Large` (`414` when the request line alone is too long). Default 1 MiB;
    /// 0: the default.
    pub max_header_bytes: usize,
    /// Largest request body, in bytes. A declared `Content-Length` over it gets `413`
    /// without calling the handler; a chunked body that grows over it fails the handler's
    /// read (and gets 413 if the handler then sends nothing). Default 10 MiB; 0: no limit.
    pub max_body_bytes: u64,
    /// Most connections served at once; more are answered `503 Service Unavailable` and
    /// closed before any goroutine is spawned. Lowered (with a warning) to what the
    /// file-descriptor limit allows at 2 descriptors per connection. Default 10,000; 0: only
    /// the descriptor limit.
    pub max_connections: usize,
    /// Grace period of [`ServerHandle::shutdown`] and of a context-driven shutdown.
    /// Default 30 s; 0: cut off at once.
    pub shutdown_grace: Duration,
    /// Stack size of each connection's goroutine, which runs the handler. Default 64 KiB,
    /// and 256 KiB in builds with debug assertions (unoptimised code uses about four times
    /// as much stack: decoding and encoding JSON `http::MAX_JSON_DEPTH` levels deep takes
    /// up to 37 KiB optimised, 132 KiB not); 0: the runtime's default. A goroutine's stack
    /// overflow is not recoverable: it ends the process. Raise it for handlers with deep
    /// recursion or big locals.
    pub stack_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_header_timeout: Duration::from_secs(10),
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 1 << 20,
            max_body_bytes: 10 << 20,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            stack_size: DEFAULT_STACK,
        }
    }
}

/// The default [`Config::stack_size`]: 64 KiB, four times that without optimisations.
const DEFAULT_STACK: usize = if cfg!(debug_assertions) {
    256 << 10
} else {
    64 << 10
};

fn limit(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Settings with zeros resolved.
#[derive(Debug, Clone)]
pub(crate) struct Effective {
    pub(crate) read_header_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_bytes: u64,
    pub(crate) shutdown_grace: Duration,
    pub(crate) stack_size: usize,
}

impl Effective {
    fn new(c: &Config) -> Self {
        Effective {
            read_header_timeout: limit(c.read_header_timeout),
            read_timeout: limit(c.read_timeout),
            write_timeout: limit(c.write_timeout),
            idle_timeout: limit(c.idle_timeout).or(limit(c.read_timeout)),
            max_header_bytes: if c.max_header_bytes == 0 {
                1 << 20
            } else {
                c.max_header_bytes
            },
            max_body_bytes: if c.max_body_bytes == 0 {
                u64::MAX
            } else {
                c.max_body_bytes
            },
            shutdown_grace: c.shutdown_grace,
            stack_size: c.stack_size,
        }
    }
}

/// A server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections refused (over `max_connections`, or out of descriptors or stacks).
    pub rejected: u64,
    /// Connections open now.
    pub active: u64,
    /// Requests whose head was read (including ones refused with 413).
    pub requests: u64,
    /// Bytes of request heads the parser examined, counting every pass over them: about
    /// twice the bytes of heads received (once while looking for their end, however they
    /// trickle in, once to parse them). A measure of parsing work, for tests and monitoring.
    pub head_bytes_scanned: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) head_bytes_scanned: AtomicU64,
}

impl StatsCell {
    fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            head_bytes_scanned: self.head_bytes_scanned.load(Ordering::Relaxed),
        }
    }
}

/// Connection states, for shutdown (Go's `ConnState`).
pub(crate) const NEW: u8 = 0;
pub(crate) const ACTIVE: u8 = 1;
pub(crate) const IDLE: u8 = 2;
pub(crate) const CLOSED: u8 = 3;

/// How long a connection that never sent a byte counts as busy during shutdown (Go: 5 s).
const NEW_CONN_GRACE: Duration = Duration::from_secs(5);

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
    since: Instant,
    control: std::net::TcpStream,
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

    fn close_if(&self, from: u8) -> bool {
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

/// State shared by the server, its handles and its connections.
pub(crate) struct Shared {
    pub(crate) cfg: Effective,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) closing: AtomicBool,
    conns: Mutex<HashMap<u64, Arc<ConnEntry>>>,
    next_id: AtomicU64,
    pub(crate) stats: StatsCell,
    max_connections: usize,
    fd_limit: Option<u64>,
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
    alive: Mutex<Option<Sender<()>>>,
    all_done: Receiver<()>,
    addr: SocketAddr,
    /// Parent of every request's context: a child of the base context, cancelled when a
    /// shutdown's grace period ends (so handlers waiting on their context give up).
    pub(crate) ctx: Context,
    cut: gocontext::CancelFunc,
    /// Start of the coarse clock.
    epoch: Instant,
    /// Milliseconds since `epoch`, advanced by the janitor at each tick: connections stamp
    /// their idle start with it without reading the clock.
    now_ms: AtomicU64,
}

impl Shared {
    /// The coarse clock: milliseconds since the server started, as of the janitor's last
    /// tick.
    #[inline]
    pub(crate) fn coarse_now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// Closes connections idle for longer than `idle_timeout`, checking every quarter of it,
/// until the server stops. One goroutine per server instead of a timer per read: an idle
/// connection closes between 1 and 1.5 times the timeout after its last response (its idle
/// stamp comes from the coarse clock, up to one tick old, so one tick is added).
fn janitor(srv: Arc<Shared>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let idle_ms = u64::try_from((idle + tick).as_millis()).unwrap_or(u64::MAX);
    let stop = srv.stop_rx.clone();
    loop {
        crate::select! {
            recv(stop) -> _ => return,
            recv(crate::time::after(tick)) -> _ => {},
        }
        let now = u64::try_from(srv.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        srv.now_ms.store(now, Ordering::Relaxed);
        let conns: Vec<Arc<ConnEntry>> = srv.conns.lock().values().cloned().collect();
        for c in &conns {
            if c.state.load(Ordering::SeqCst) == IDLE
                && now.saturating_sub(c.idle_since.load(Ordering::Relaxed)) >= idle_ms
                && c.close_if(IDLE)
            {
                log::debug!(target: "goway::http", "http: closing a connection idle for {idle:?}");
            }
        }
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
/// let addr = server.local_addr();
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
    listener: Option<TcpListener>,
    shared: Arc<Shared>,
    signals: Vec<Receiver<()>>,
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
    pub fn builder() -> Builder {
        Builder {
            cfg: Config::default(),
            addr: None,
            handler: None,
            ctx: None,
            signals: Vec::new(),
        }
    }

    /// The address the server listens on (with the real port after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle to shut the server down and read its stats from anywhere.
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
            if let Err(e) = crate::Builder::new().spawn(move || janitor(s, idle)) {
                log::warn!(target: "goway::http", "cannot start the idle-connection janitor: {e}");
            }
        }
        let stop = srv.stop_rx.clone();
        let mut refuse_log = RefuseLog::new();
        let err = accept::accept_loop(
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
                start_conn(s, peer, &srv, &alive, &mut refuse_log);
            },
            srv.fd_limit,
        );
        drop(listener);
        drop(alive);
        Err(err)
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n";

/// Answers 503 and closes, without blocking the accept loop: the socket is fresh, so the
/// reply fits its send buffer. What the client already sent is read first (non-blocking), so
/// that closing does not reset the connection before it reads the reply.
fn refuse(stream: TcpStream) {
    let mut sys = stream.as_may().inner();
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match sys.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = sys.write(BUSY);
    let _ = sys.shutdown(Shutdown::Write);
}

/// Removes a connection from the registry and the gauge when its goroutine ends (also by a
/// panic), before its socket closes.
struct ConnGuard {
    srv: Arc<Shared>,
    id: u64,
    _alive: Sender<()>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let entry = self.srv.conns.lock().remove(&self.id);
        drop(entry);
        self.srv.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

fn start_conn(
    stream: TcpStream,
    peer: SocketAddr,
    srv: &Arc<Shared>,
    alive: &Sender<()>,
    log: &mut RefuseLog,
) {
    let st = &srv.stats;
    let max = srv.max_connections;
    if max > 0 && st.active.load(Ordering::Relaxed) >= max as u64 {
        st.rejected.fetch_add(1, Ordering::Relaxed);
        refuse(stream);
        log.warn(|| format!("http: max_connections ({max}) reached: refusing {peer} with 503"));
        return;
    }
    let control = match stream.control() {
        Ok(c) => c,
        Err(e) => {
            st.rejected.fetch_add(1, Ordering::Relaxed);
            if neterr::is_fd_limit(&e) {
                let limit = LimitError::FileDescriptors {
                    soft_limit: srv.fd_limit,
                };
                log.warn(|| format!("http: refusing {peer}: {e}: {limit}"));
            } else {
                log.warn(|| format!("http: refusing {peer}: {e}"));
            }
            return;
        }
    };
    let id = srv.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let entry = Arc::new(ConnEntry {
        state: AtomicU8::new(NEW),
        idle_since: AtomicU64::new(0),
        since: Instant::now(),
        control,
    });
    srv.conns.lock().insert(id, entry.clone());
    st.active.fetch_add(1, Ordering::Relaxed);
    st.accepted.fetch_add(1, Ordering::Relaxed);
    let guard = ConnGuard {
        srv: srv.clone(),
        id,
        _alive: alive.clone(),
    };
    let mut b = crate::Builder::new();
    if srv.cfg.stack_size > 0 {
        b = b.stack_size(srv.cfg.stack_size);
    }
    let spawned = b.spawn(move || {
        let guard = guard;
        conn::serve(stream, peer, &guard.srv, &entry);
    });
    if let Err(e) = spawned {
        // The closure (with the guard) was dropped: the registry is clean again.
        st.rejected.fetch_add(1, Ordering::Relaxed);
        st.accepted.fetch_sub(1, Ordering::Relaxed);
        if e.kind() == io::ErrorKind::InvalidInput {
            // stack_size over the maximum (runtime::StackSizeError): not a mapping limit.
            log.warn(|| format!("http: refusing {peer}: {e}"));
        } else {
            let limit = LimitError::GoroutineStacks {
                max_map_count: neterr::max_map_count(),
            };
            log.warn(|| format!("http: refusing {peer}: {e}: {limit}"));
        }
    }
}

/// A cloneable handle on a running server: shutdown, stats, address.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
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

fn shutdown(srv: &Arc<Shared>, grace: Duration) -> Result<(), ShutdownError> {
    let deadline = Instant::now().checked_add(grace);
    if !srv.closing.swap(true, Ordering::SeqCst) {
        srv.stop_tx.close();
        // Dropped after the lock is released.
        let first = srv.alive.lock().take();
        drop(first);
        // Wake an accept loop blocked in `accept`: it sees `closing` and returns.
        let mut a = srv.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = crate::net::dial_timeout(a, Duration::from_millis(200));
        log::info!(target: "goway::http", "http: shutting down, grace {grace:?}");
    }
    // Go's pollIntervalBase: 1 ms, doubling to 500 ms.
    let mut poll = Duration::from_millis(1);
    loop {
        close_idle(srv);
        let now = Instant::now();
        let wait = match deadline {
            Some(d) if now >= d => break,
            Some(d) => poll.min(d - now),
            None => poll,
        };
        match srv.all_done.recv_timeout(wait) {
            Err(RecvTimeoutError::Closed) => return Ok(()),
            _ => poll = (poll * 2).min(Duration::from_millis(500)),
        }
    }
    // Grace over: what is still open now is cut off. Taken before the requests' contexts are
    // cancelled: a handler waiting on its context returns at once, and its connection must
    // still count as cut off (it did not finish within the grace).
    let rest: Vec<Arc<ConnEntry>> = srv.conns.lock().values().cloned().collect();
    srv.cut.cancel();
    let mut cut_off = 0;
    for c in &rest {
        c.state.store(CLOSED, Ordering::SeqCst);
        let _ = c.control.shutdown(Shutdown::Both);
        cut_off += 1;
    }
    drop(rest);
    if matches!(
        srv.all_done.recv_timeout(Duration::from_millis(200)),
        Err(RecvTimeoutError::Closed)
    ) && cut_off == 0
    {
        return Ok(());
    }
    if cut_off == 0 {
        return Ok(());
    }
    log::error!(target: "goway::http", "http: shutdown grace ({grace:?}) over: cut off {cut_off} connection(s)");
    Err(ShutdownError::Timeout { cut_off })
}

fn close_idle(srv: &Shared) {
    let conns: Vec<Arc<ConnEntry>> = srv.conns.lock().values().cloned().collect();
    for c in &conns {
        if !c.close_if(IDLE) && c.since.elapsed() >= NEW_CONN_GRACE {
            c.close_if(NEW);
        }
    }
}

/// Configures and binds a [`Server`].
pub struct Builder {
    cfg: Config,
    addr: Option<Box<dyn ToAddrs + Send>>,
    handler: Option<Arc<dyn Handler>>,
    ctx: Option<Context>,
    signals: Vec<Receiver<()>>,
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
    pub fn addr(mut self, addr: impl ToAddrs + Send + 'static) -> Self {
        self.addr = Some(Box::new(addr));
        self
    }

    /// The handler of every request (usually a [`ServeMux`](super::ServeMux)).
    pub fn handler(mut self, h: impl Handler) -> Self {
        self.handler = Some(Arc::new(h));
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, cfg: Config) -> Self {
        self.cfg = cfg;
        self
    }

    /// See [`Config::read_header_timeout`].
    pub fn read_header_timeout(mut self, d: Duration) -> Self {
        self.cfg.read_header_timeout = d;
        self
    }

    /// See [`Config::read_timeout`].
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.cfg.read_timeout = d;
        self
    }

    /// See [`Config::write_timeout`].
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.cfg.write_timeout = d;
        self
    }

    /// See [`Config::idle_timeout`].
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.cfg.idle_timeout = d;
        self
    }

    /// See [`Config::max_header_bytes`].
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.cfg.max_header_bytes = n;
        self
    }

    /// See [`Config::max_body_bytes`].
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.cfg.max_body_bytes = n;
        self
    }

    /// See [`Config::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.cfg.max_connections = n;
        self
    }

    /// See [`Config::shutdown_grace`].
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.cfg.shutdown_grace = d;
        self
    }

    /// See [`Config::stack_size`].
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.cfg.stack_size = bytes;
        self
    }

    /// Serves under `ctx` (Go's `BaseContext`): every request's context is a child of it,
    /// and the server shuts down gracefully (within `shutdown_grace`) when it is cancelled.
    pub fn context(mut self, ctx: &Context) -> Self {
        self.signals.push(ctx.done());
        self.ctx = Some(ctx.clone());
        self
    }

    /// Shuts the server down gracefully when `signal` closes or delivers a value.
    pub fn shutdown_on(mut self, signal: Receiver<()>) -> Self {
        self.signals.push(signal);
        self
    }

    /// Binds the listener.
    ///
    /// # Errors
    /// [`ServeError::Io`] without an address or handler, or when binding fails;
    /// [`ServeError::Limit`] when out of file descriptors.
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
        let listener = TcpListener::bind(&*addr).map_err(fail)?;
        let local = listener.local_addr().map_err(fail)?;
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
            addr: local,
            ctx,
            cut,
            epoch: Instant::now(),
            now_ms: AtomicU64::new(0),
        });
        log::debug!(target: "goway::http", "http: listening on {local}");
        Ok(Server {
            listener: Some(listener),
            shared,
            signals: self.signals,
        })
    }
}
