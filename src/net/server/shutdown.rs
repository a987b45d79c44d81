//! Graceful shutdown (Go's `Server.Shutdown`): stop accepting, let every connection finish the
//! frames it already received, wait up to the grace period, then cut off the rest.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::conn::ConnCtl;
use super::error::ShutdownError;
use super::stats::CloseReason;
use super::{ListenAddr, ServerShared};
use crate::chan::RecvTimeoutError;

/// What a finished shutdown did. Its `Display` is one line, "drained 2 connection(s), cut
/// off 0"; [`log_outcome`](Self::log_outcome) logs and describes any outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections open when this call started, all closed gracefully.
    pub drained: usize,
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "drained {} connection(s), cut off 0", self.drained)
    }
}

impl ShutdownReport {
    /// Logs the outcome of a shutdown as `wait_shutdown` returns it (of `net::Server` or
    /// `http::Server`; `Some(r)` for what `shutdown` returned), and returns the same line for
    /// the program's own output: "drained N connection(s), cut off 0" (logged at `info`),
    /// "grace over, cut off N connection(s)" (`warn`), or, for `None`, "the drain did not
    /// finish" (`error`).
    ///
    /// # Examples
    /// ```
    /// use goway::net::ShutdownReport;
    /// use goway::net::server::ShutdownError;
    ///
    /// let server = goway::http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .handler(goway::http::not_found)
    ///     .bind()
    ///     .unwrap();
    /// let line = ShutdownReport::log_outcome(Some(server.handle().shutdown()));
    /// assert_eq!(line, "drained 0 connection(s), cut off 0");
    ///
    /// let cut = Err(ShutdownError::Timeout { cut_off: 3 });
    /// assert_eq!(ShutdownReport::log_outcome(Some(cut)), "grace over, cut off 3 connection(s)");
    /// ```
    pub fn log_outcome(outcome: Option<Result<ShutdownReport, ShutdownError>>) -> String {
        match outcome {
            Some(Ok(r)) => {
                log::info!(target: "goway::server", "shutdown complete: {r}");
                r.to_string()
            }
            Some(Err(ShutdownError::Timeout { cut_off })) => {
                let line = format!("grace over, cut off {cut_off} connection(s)");
                log::warn!(target: "goway::server", "shutdown: {line}");
                line
            }
            None => {
                let line = "the drain did not finish".to_string();
                log::error!(target: "goway::server", "shutdown: {line}");
                line
            }
        }
    }
}

/// How long a cut-off connection gets to finish closing before `shutdown` returns (its
/// goroutines wake at once unless a handler is busy in its own code).
const CUT_OFF_SETTLE: Duration = Duration::from_millis(200);

pub(crate) fn shutdown(
    srv: &Arc<ServerShared>,
    grace: Duration,
) -> Result<ShutdownReport, ShutdownError> {
    let r = drain_then_cut(srv, grace);
    // For `wait_shutdown`: a shutdown started by a signal or a context has nobody to return to.
    *srv.outcome.lock() = Some(r);
    drop(srv.outcome_tx.lock().take());
    r
}

fn drain_then_cut(
    srv: &Arc<ServerShared>,
    grace: Duration,
) -> Result<ShutdownReport, ShutdownError> {
    let deadline = Instant::now().checked_add(grace);
    if !srv.closing.swap(true, Ordering::SeqCst) {
        // Stop accepting: the accept loop sees `closing` once woken; a pause in its backoff
        // ends with the shutdown channel.
        srv.shutdown_tx.close();
        drop(srv.alive.lock().take());
        srv.wake.wake(&srv.listen);
    }
    let conns: Vec<Arc<dyn ConnCtl>> = srv.conns.lock().values().cloned().collect();
    let drained = conns.len();
    log::info!(target: "goway::server", "shutting down: draining {drained} connection(s), grace {grace:?}");
    for c in &conns {
        c.drain();
    }
    // The registry's entries keep the "all gone" channel open: hold none while waiting.
    drop(conns);
    let waited = match deadline {
        Some(d) => srv.all_done.recv_deadline(d),
        None => srv.all_done.recv().map_err(|_| RecvTimeoutError::Closed),
    };
    if !matches!(waited, Err(RecvTimeoutError::Timeout)) {
        return Ok(ShutdownReport { drained });
    }
    let rest: Vec<Arc<dyn ConnCtl>> = srv.conns.lock().values().cloned().collect();
    let cut_off = rest.len();
    for c in &rest {
        c.abort(CloseReason::CutOff);
    }
    drop(rest);
    if cut_off == 0 {
        return Ok(ShutdownReport { drained });
    }
    log::error!(target: "goway::server", "shutdown grace ({grace:?}) over: cut off {cut_off} connection(s) with work in flight");
    let _ = srv.all_done.recv_timeout(CUT_OFF_SETTLE);
    Err(ShutdownError::Timeout { cut_off })
}

/// How shutdown wakes the accept loop of a listener that shares its port
/// ([`reuse_port`](super::Builder::reuse_port)): connecting to the port, as
/// [`wake_acceptor`] does, may reach another process's listener, so shutdown instead shuts
/// down this listening socket (through a duplicate of its descriptor), which wakes the
/// `accept` and takes the socket out of the port's group at once (the kernel sends no more
/// connections to it). Empty for the other listeners.
#[derive(Default)]
pub(crate) struct ListenerWake(parking_lot::Mutex<Option<socket2::Socket>>);

impl ListenerWake {
    /// Keeps a duplicate of `l`'s descriptor when `reuse_port` is set.
    pub(crate) fn new(l: &crate::net::TcpListener, reuse_port: bool) -> std::io::Result<Self> {
        if !reuse_port {
            return Ok(Self::default());
        }
        let dup = socket2::SockRef::from(l.as_may().inner()).try_clone()?;
        Ok(ListenerWake(parking_lot::Mutex::new(Some(dup))))
    }

    /// Wakes the accept loop: shuts the shared listening socket down, or else connects to
    /// `addr`.
    pub(crate) fn wake(&self, addr: &ListenAddr) {
        match self.0.lock().take() {
            Some(sock) => {
                if let Err(e) = sock.shutdown(std::net::Shutdown::Read) {
                    log::debug!(target: "goway::server", "shutting down the listener: {e}");
                }
            }
            None => wake_acceptor(addr),
        }
    }

    /// Drops the duplicate (the accept loop is over), so that the socket closes with the
    /// listener.
    pub(crate) fn release(&self) {
        drop(self.0.lock().take());
    }
}

/// Wakes an accept loop blocked in `accept` by connecting to the listener: it then sees
/// `closing` and returns, closing the listener. (may cannot interrupt a blocked accept, and
/// shutting the listening socket down needs `libc`.) A failure is fine: an accept loop that
/// is not blocked in `accept` sees the flag by itself.
pub(crate) fn wake_acceptor(addr: &ListenAddr) {
    match addr {
        ListenAddr::Tcp(a) => {
            let mut a = *a;
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = crate::net::dial_timeout(a, Duration::from_millis(200));
        }
        ListenAddr::Unix(p) => {
            let _ = crate::net::UnixStream::connect(p);
        }
    }
}
