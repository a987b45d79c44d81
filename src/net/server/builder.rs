//! [`Builder`]: configuring and binding a [`Server`].

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use parking_lot::Mutex;

use super::config::Effective;
use super::conn::HandlerFn;
use super::{
    Config, Conn, HandlerResult, LimitError, ListenAddr, Listener, ServeError, Server,
    ServerShared, WhenFull, accept, error, spin,
};
use crate::chan::{self, Receiver};
use crate::context::{self as gocontext, Context};
use crate::net::codec::Codec;
use crate::net::server::ListenerWake;
use crate::net::{ListenConfig, ToAddrs, UnixListener};

pub(super) enum BindAddr {
    Tcp(Box<dyn ToAddrs + Send>),
    Unix(PathBuf),
}

/// Configures and binds a [`Server`]: `Server::builder().addr(..).codec(..).handler(..)
/// .bind()`. Set the codec before the handler, so the handler's `conn` type is known.
pub struct Builder<C, H> {
    pub(super) cfg: Config,
    pub(super) addr: Option<BindAddr>,
    pub(super) codec: C,
    pub(super) handler: H,
    pub(super) signals: Vec<Receiver<()>>,
    pub(super) ctx: Option<Context>,
    pub(super) reuse_port: bool,
    pub(super) tls: TlsSetup,
}

/// The TLS settings of a server ([`Builder::tls`]).
#[derive(Clone, Default)]
pub(crate) struct TlsSetup {
    pub(crate) config: Option<Arc<rustls::ServerConfig>>,
    /// `None`: the default (10 s); `Some(ZERO)`: no limit.
    pub(crate) handshake_timeout: Option<Duration>,
}

/// Go's default TLS handshake timeout, and the server's.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsSetup {
    /// The handshake timeout in force (`None`: no limit).
    pub(crate) fn handshake_limit(&self) -> Option<Duration> {
        match self.handshake_timeout {
            None => Some(TLS_HANDSHAKE_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        }
    }
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
            reuse_port: self.reuse_port,
            tls: self.tls,
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

    /// See [`Config::frame_timeout`] (default 10 s, from a frame's first byte; 0: none).
    pub fn frame_timeout(mut self, d: Duration) -> Self {
        self.cfg.frame_timeout = d;
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
    /// `soft_for`, is disconnected (reason
    /// [`CloseReason::OutputLimit`](super::CloseReason::OutputLimit), a warning with its
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

    /// Serves TLS (Go's `ServeTLS`) with `config`: a
    /// [`tls::ServerConfig`](crate::tls::ServerConfig) or rustls's own. Each connection's
    /// reader goroutine runs the handshake before reading frames, under the handshake timeout
    /// (see [`tls_handshake_timeout`](Self::tls_handshake_timeout)); a failed handshake
    /// closes the connection with [`CloseReason::TlsHandshake`](super::CloseReason) before
    /// the handler sees it. Frames, limits, timeouts and stats are as without TLS (`bytes_in`
    /// and `bytes_out` count the bytes on the wire); a graceful close sends close_notify.
    /// The overload reply is not sent to clients refused over `max_connections` (they get
    /// no TLS session to read it in): they are just closed.
    ///
    /// ```
    /// use goway::net::{Server, codec::LinesCodec};
    /// # let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    /// # let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    /// let tls = goway::tls::ServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .codec(LinesCodec::new())
    ///     .tls(tls)
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
    pub fn tls(mut self, config: impl Into<Arc<rustls::ServerConfig>>) -> Self {
        self.tls.config = Some(config.into());
        self
    }

    /// The time a client has to complete the TLS handshake, from its accept (Go's
    /// `TLSHandshakeTimeout`). Default 10 s; `Duration::ZERO`: no limit.
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.tls.handshake_timeout = Some(d);
        self
    }

    /// See [`Config::shutdown_grace`] (default 30 s; 0: cut off at once).
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.cfg.shutdown_grace = d;
        self
    }

    /// See [`Config::overload_reply`] (default none).
    pub fn overload_reply(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg.overload_reply = Some(bytes.into());
        self
    }

    /// See [`Config::spin_poll`] (default 0: off). For example, spinning up to 50 µs for the
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
    ///     .spin_poll(Duration::from_micros(50))
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
    pub fn spin_poll(mut self, budget: Duration) -> Self {
        self.cfg.spin_poll = budget;
        self
    }

    /// See [`Config::handler_stack_size`] (default: the runtime's).
    pub fn handler_stack_size(mut self, bytes: usize) -> Self {
        self.cfg.handler_stack_size = bytes;
        self
    }

    /// Sets `SO_REUSEPORT` on the TCP listener before binding (Go: a `ListenConfig.Control`
    /// that sets it; see [`ListenConfig`](crate::net::ListenConfig)), so that several
    /// processes (or several servers of one process) listen on the same port and the kernel
    /// spreads the new connections among them. Every listener on the port must set it;
    /// without it, binding a port that another socket listens on fails with `AddrInUse`.
    /// Default `false`. No effect on a Unix socket.
    ///
    /// A server that shuts down leaves the group at once (its listening socket is shut
    /// down, so the kernel sends the next connections to the others); a connection that was
    /// still waiting in its accept queue at that moment is reset by the kernel.
    ///
    /// ```
    /// use goway::net::codec::LinesCodec;
    /// use goway::net::Server;
    ///
    /// let echo = |conn: &goway::net::Conn<LinesCodec>| {
    ///     for line in conn {
    ///         conn.send(line)?;
    ///     }
    ///     Ok(())
    /// };
    /// let a = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .reuse_port(true)
    ///     .codec(LinesCodec::new())
    ///     .handler(echo)
    ///     .bind()
    ///     .unwrap();
    /// let port = a.local_addr().unwrap().port();
    /// // A second server (in practice, another process) on the same port:
    /// let b = Server::builder()
    ///     .addr(("127.0.0.1", port))
    ///     .reuse_port(true)
    ///     .codec(LinesCodec::new())
    ///     .handler(echo)
    ///     .bind()
    ///     .unwrap();
    /// assert_eq!(b.local_addr().unwrap().port(), port);
    /// ```
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
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
            reuse_port: self.reuse_port,
            tls: self.tls,
        }
    }
}

impl<C: Codec> Builder<C, Arc<HandlerFn<C>>> {
    /// Binds the listener. Warns (target `goway::server`) and lowers `max_connections` when
    /// the file-descriptor limit cannot back it.
    ///
    /// # Errors
    /// [`ServeError::Io`] if no address was set, binding failed or the spin poller (see
    /// [`spin_poll`](Builder::spin_poll)) could not start;
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
        let mut wake = ListenerWake::default();
        let (listener, listen) = match self.addr {
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no address: call .addr(..) or .unix(..) before .bind()",
                )
                .into());
            }
            Some(BindAddr::Tcp(a)) => {
                let l = ListenConfig::new()
                    .reuse_port(self.reuse_port)
                    .listen(&*a)
                    .map_err(fail)?;
                let addr = l.local_addr().map_err(fail)?;
                wake = ListenerWake::new(&l, self.reuse_port).map_err(fail)?;
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
        // An idle connection holds one goroutine (the handler), a busy one up to three (a
        // reader while the handler is busy and someone waits on `done`/`incoming`/`context`,
        // or under TLS; a writer while replies wait); the process can hold
        // `max_goroutines()`. Counted at one per connection: the figure an idle server
        // reaches; a busy connection whose reader or writer cannot start is closed
        // (`Refused`).
        let need = max
            .saturating_mul(accept::CONN_GOROUTINES)
            .saturating_add(1);
        let cap = crate::runtime::max_goroutines();
        if need > cap {
            let maps =
                error::max_map_count().map_or_else(|| "unknown".to_string(), |m| m.to_string());
            log::warn!(target: "goway::server", "max_connections {max} needs {need} goroutines but this process can hold about {cap} (vm.max_map_count {maps}: each goroutine stack takes 2 memory mappings): about {} connections can be served, the rest are refused; raise it with `sysctl -w vm.max_map_count=N`", cap / accept::CONN_GOROUTINES);
        }
        let spin = match cfg.spin_poll {
            Some(budget) => Some(spin::SpinPoll::start(budget).map_err(fail)?.0),
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
            spin,
            wake,
            tls: self.tls,
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
