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
use crate::net::server::error as neterr;
use crate::net::server::{LimitError, ServeError};
use crate::net::{TcpListener, ToAddrs};

/// Configures and binds a [`Server`].
pub struct Builder {
    pub(super) cfg: Config,
    pub(super) addr: Option<Box<dyn ToAddrs + Send>>,
    pub(super) handler: Option<Arc<dyn Handler>>,
    pub(super) ctx: Option<Context>,
    pub(super) signals: Vec<Receiver<()>>,
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

    /// The handler of every request (usually a [`ServeMux`](crate::http::ServeMux)).
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

    /// See [`Config::handler_stack_size`].
    pub fn handler_stack_size(mut self, bytes: usize) -> Self {
        self.cfg.handler_stack_size = bytes;
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
