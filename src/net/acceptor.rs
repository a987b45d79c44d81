//! An accept loop for hand-written TCP servers, with the defences of goway's own servers.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::TcpListener;
use super::server::accept::{AcceptErr, Backoff, classify};
use super::server::error::{self as limits, LimitError};
use crate::logging::LogSummary;

/// Descriptors kept for the rest of the process (the runtime, logs, libraries), as goway's
/// servers keep them.
const RESERVED_FDS: u64 = 32;

/// Default [`Acceptor::max_connections`], as goway's servers.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Accepts connections from a [`TcpListener`] the way goway's servers do, for programs that
/// run their own accept loop (a proxy, a chat server):
///
/// - **A connection cap.** At most [`max_connections`](Acceptor::max_connections) accepted
///   connections are live at once: each comes with a [`ConnSlot`], and dropping the slot
///   frees its place. A connection arriving while all places are taken is accepted and closed
///   at once (refused), so that a storm of connections beyond the cap costs one descriptor
///   for an instant each, and the listen backlog keeps moving: a client arriving after the
///   storm is not stuck behind thousands of stale connections.
/// - **A descriptor budget.** The cap is lowered to what `RLIMIT_NOFILE` allows, given
///   [`fds_per_connection`](Acceptor::fds_per_connection) (a proxy uses two sockets per
///   client, more once they are split) and 32 descriptors kept for the rest of the process.
///   Like Go, the soft limit is first raised towards the hard one. The process then never
///   reaches `EMFILE` through its connections.
/// - **Go's accept backoff.** Accept errors from exhausted resources (`EMFILE`, `ENFILE`,
///   `ENOBUFS`, `ENOMEM`) pause the loop 5 ms, doubling to 1 s (net/http's `Serve`); a
///   connection aborted before it was accepted is skipped at once. Other errors are returned.
/// - **Quiet logs.** Refusals and accept errors are logged through a [`LogSummary`] (target
///   `goway::net`): the first at once, then one count line per 10 s.
///
/// ```
/// use std::io::{Read, Write};
/// use goway::net::{Acceptor, TcpListener};
///
/// let ln = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = ln.local_addr().unwrap();
/// let mut acceptor = Acceptor::new(ln).max_connections(100).fds_per_connection(1);
/// assert_eq!(acceptor.limit(), 100);
/// let server = goway::go!(move || {
///     let (mut conn, _peer, slot) = acceptor.accept().unwrap();
///     goway::go!(move || {
///         let _slot = slot; // the place is free again once this goroutine ends
///         let mut buf = [0u8; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap();
///     });
/// });
/// let mut c = goway::net::dial(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut buf = [0u8; 5];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// server.join().unwrap();
/// ```
pub struct Acceptor {
    ln: TcpListener,
    /// The cap asked for (`0`: only the descriptor budget).
    wanted: usize,
    fds_per_conn: usize,
    /// The cap in force.
    max: usize,
    fd_limit: Option<u64>,
    active: Arc<AtomicUsize>,
    backoff: Backoff,
    /// Why the cap was lowered, logged once by the first `accept`.
    lowered: Option<String>,
    refused: u64,
    refusals: LogSummary,
    errors: LogSummary,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("max_connections", &self.max)
            .field("fds_per_connection", &self.fds_per_conn)
            .field("active", &self.active())
            .field("refused", &self.refused)
            .finish()
    }
}

/// An accepted connection's place under the cap of its [`Acceptor`]; dropping it frees the
/// place. Keep it as long as the connection (and anything it opened, like a proxy's upstream
/// connection) is open.
#[derive(Debug)]
pub struct ConnSlot {
    active: Arc<AtomicUsize>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Acceptor {
    /// Accepts from `ln` with the default cap of goway's servers, 10,000 connections, one
    /// descriptor per connection.
    pub fn new(ln: TcpListener) -> Self {
        let mut a = Acceptor {
            ln,
            wanted: DEFAULT_MAX_CONNECTIONS,
            fds_per_conn: 1,
            max: 0,
            fd_limit: None,
            active: Arc::new(AtomicUsize::new(0)),
            backoff: Backoff::default(),
            lowered: None,
            refused: 0,
            refusals: LogSummary::new("connections refused at max_connections")
                .target("goway::net")
                .level(log::Level::Warn),
            errors: LogSummary::new("accept errors")
                .target("goway::net")
                .level(log::Level::Warn),
        };
        a.budget();
        a
    }

    /// Sets the cap on live connections (`0`: as many as the descriptor limit allows). It is
    /// lowered to what `RLIMIT_NOFILE` allows, with a warning (logged by the first
    /// [`accept`](Acceptor::accept)).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.wanted = n;
        self.budget();
        self
    }

    /// Sets the descriptors each connection holds at most (default 1): a proxy's client and
    /// upstream sockets are 2, 4 once both are split into halves.
    pub fn fds_per_connection(mut self, n: usize) -> Self {
        self.fds_per_conn = n.max(1);
        self.budget();
        self
    }

    /// Works out the cap in force from the one asked for and the descriptor limit (and why it
    /// is lower, for the first `accept` to log).
    fn budget(&mut self) {
        self.lowered = None;
        let per = self.fds_per_conn as u64;
        let want = if self.wanted == 0 {
            u64::MAX
        } else {
            (self.wanted as u64)
                .saturating_mul(per)
                .saturating_add(RESERVED_FDS)
        };
        self.fd_limit = limits::raise_nofile_limit(want).or_else(limits::nofile_limit);
        let mut max = self.wanted;
        if let Some(lim) = self.fd_limit {
            let allowed = usize::try_from(lim.saturating_sub(RESERVED_FDS) / per)
                .unwrap_or(usize::MAX)
                .max(1);
            if max == 0 || max > allowed {
                if max != 0 {
                    self.lowered = Some(format!(
                        "max_connections {max} needs {want} file descriptors ({per} per connection) but RLIMIT_NOFILE is {lim}: serving at most {allowed}; raise `ulimit -n` (LimitNOFILE= under systemd) to serve more"
                    ));
                }
                max = allowed;
            }
        }
        self.max = if max == 0 { usize::MAX } else { max };
    }

    /// The cap in force: what was asked for, lowered to the descriptor budget.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// Connections whose [`ConnSlot`] is alive.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Connections refused so far because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The listener's address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.ln.local_addr()
    }

    /// Waits for the next connection within the cap. Connections over the cap are closed as
    /// they arrive and counted in [`refused`](Acceptor::refused); accept errors from
    /// exhausted resources pause the caller (a goroutine parks, a thread sleeps) and are
    /// retried.
    ///
    /// # Errors
    /// An accept error that retrying cannot fix (the listener is broken or closed).
    pub fn accept(&mut self) -> io::Result<(super::TcpStream, SocketAddr, ConnSlot)> {
        if let Some(why) = self.lowered.take() {
            log::warn!(target: "goway::net", "{why}");
        }
        loop {
            match self.ln.accept() {
                Ok((conn, peer)) => {
                    self.backoff.reset();
                    let live = self.active.fetch_add(1, Ordering::AcqRel);
                    if live >= self.max {
                        self.active.fetch_sub(1, Ordering::AcqRel);
                        self.refused += 1;
                        drop(conn);
                        let max = self.max;
                        self.refusals.record(|| {
                            format!("max_connections ({max}) reached: refusing {peer}; raise max_connections if the machine can serve more")
                        });
                        continue;
                    }
                    let slot = ConnSlot {
                        active: self.active.clone(),
                    };
                    return Ok((conn, peer, slot));
                }
                Err(e) => match classify(&e) {
                    AcceptErr::Retry => continue,
                    AcceptErr::Backoff => {
                        let d = self.backoff.next_delay();
                        let fd_limit = self.fd_limit;
                        self.errors.record(|| {
                            if limits::is_fd_limit(&e) {
                                let limit = LimitError::FileDescriptors {
                                    soft_limit: fd_limit,
                                };
                                format!("accept error: {e}; retrying in {d:?}: {limit}")
                            } else {
                                format!("accept error: {e}; retrying in {d:?}")
                            }
                        });
                        crate::time::sleep(d);
                    }
                    AcceptErr::Fatal => return Err(e),
                },
            }
        }
    }
}
