//! A framed server in the classic Go shape: one accept goroutine, and per connection a
//! reader, a handler and a writer joined by bounded channels. The handler is a goroutine for
//! the connection's whole life; the reader and the writer are goroutines only while they have
//! work of their own (below), so an idle connection holds one goroutine.
//!
//! ```text
//!            socket                in (bounded)            out (bounded)            socket
//! client ──▶ reader: read, decode ──────────▶ handler(conn) ──────────▶ writer: encode, write ──▶ client
//! ```
//!
//! - The **reader** decodes every frame a read brings in and queues each for the handler; a
//!   full queue stops it reading (backpressure reaches the client's TCP window). It costs no
//!   goroutine of its own until the handler needs one: while the handler waits in
//!   [`conn.recv()`](Conn::recv) it reads and decodes on the handler's goroutine (so an idle
//!   connection holds one goroutine); the first [`done`](Conn::done),
//!   [`incoming`](Conn::incoming) or [`context`](Conn::context) starts a reader goroutine,
//!   which goes on reading while the handler is busy (and TLS connections always have one).
//! - The **handler** is your function: `for frame in conn { conn.send(reply)? }`. It may also
//!   hand [`conn.sender()`](Conn::sender) to other goroutines (broadcast).
//! - The **writer** takes every reply queued at the moment, encodes them into one buffer and
//!   writes it with one call. One shortcut: when the writer has nothing queued or in hand,
//!   `conn.send` encodes the reply on the handler's goroutine, saving a hop and a goroutine
//!   switch. With no more input waiting (a client in lockstep) it writes it at once; while a
//!   pipelined burst's next frames wait, it keeps the burst's replies in the writer's buffer
//!   and the last of them writes them all (if the handler parks on anything before that,
//!   the writer starts and writes them, so they never wait for it). Order, the write
//!   queue's bounds, the write timeout and the stats are the same either way. The writer's
//!   goroutine starts when a reply is queued (or part of one is left that the socket would
//!   not take, or the handler parks while it keeps a burst's replies) and ends once
//!   everything queued is written.
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

// Where things are: `builder.rs` configures and binds a `Server` (`serve.rs`), whose accept
// loop is in `accept.rs`; `handle.rs` is the `ServerHandle` that shuts it down
// (`shutdown.rs`) and reads its counters (`stats.rs`); `config.rs` holds the settings and
// `error.rs` the errors. One connection's goroutines are in `conn/`, its write queue's byte
// bound in `budget.rs`, its socket in `stream.rs`; `spin.rs` is the spin poller.
pub(crate) mod accept;
mod budget;
mod builder;
pub(crate) mod config;
mod conn;
pub(crate) mod error;
mod handle;
mod serve;
pub(crate) mod shutdown;
mod spin;
mod stats;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::Mutex;

pub use builder::Builder;
pub use config::{Config, WhenFull};
pub use conn::{Conn, ConnSender, Frames, HandlerResult};
pub use error::{LimitError, ServeError, ShutdownError, Timeout};
pub use handle::ServerHandle;
pub use serve::Server;
pub use shutdown::ShutdownReport;
pub use stats::{CloseReason, ClosedBy, Stats};

pub(crate) use config::LINGER;
pub(crate) use shutdown::ListenerWake;

use crate::chan::{Receiver, Sender};
use crate::context::Context;
use crate::net::{TcpListener, UnixListener};
use config::Effective;
use conn::ConnCtl;

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
    pub(crate) shutdown_rx: Receiver<()>,
    /// The first sender of the "all gone" channel: the accept loop and every connection hold
    /// clones; shutdown drops this one, so `all_done` closes when they are all gone.
    pub(crate) alive: Mutex<Option<Sender<()>>>,
    pub(crate) all_done: Receiver<()>,
    /// The outcome of the last finished shutdown, whatever started it.
    pub(crate) outcome: Mutex<Option<Result<ShutdownReport, ShutdownError>>>,
    /// Dropped (closing `outcome_rx`) when the first shutdown has finished.
    pub(crate) outcome_tx: Mutex<Option<Sender<()>>>,
    pub(crate) outcome_rx: Receiver<()>,
    pub(crate) listen: ListenAddr,
    /// Parent of every connection's context.
    pub(crate) ctx: Context,
    /// The spin poller, when `spin_poll` is set.
    pub(crate) spin: Option<Arc<spin::SpinPoll>>,
    /// How shutdown wakes the accept loop.
    pub(crate) wake: ListenerWake,
    /// TLS, when [`Builder::tls`] is set.
    pub(crate) tls: builder::TlsSetup,
}

impl ServerShared {
    /// The counters, the spin poller's included.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.stats.snapshot();
        if let Some(sp) = &self.spin {
            (s.spins, s.spin_hits) = sp.counts();
        }
        for c in self.conns.lock().values() {
            let (queued, peak) = c.queued_bytes();
            s.queued_bytes += queued as u64;
            s.queued_bytes_peak = s.queued_bytes_peak.max(peak as u64);
        }
        s
    }
}
