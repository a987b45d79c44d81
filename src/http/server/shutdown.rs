//! Graceful shutdown (Go's `Server.Shutdown`): stop accepting, close idle connections, let
//! requests in flight finish within the grace period, then cut off the rest.

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use super::table::{ConnEntry, ConnState};
use crate::chan::RecvTimeoutError;
use crate::net::server::{ListenAddr, ShutdownError, ShutdownReport};

/// How long shutdown lets a connection that never sent a byte stay open (Go: 5 s); then it
/// is closed like an idle one.
const NEW_CONN_GRACE: Duration = Duration::from_secs(5);

/// How long cut-off connections get to finish closing before `shutdown` returns (their
/// goroutines wake at once unless a handler is still running its own code).
const CUT_OFF_SETTLE: Duration = Duration::from_millis(200);

/// Shuts the server down within `grace`, and records the outcome for
/// [`wait_shutdown`](super::ServerHandle::wait_shutdown) (a shutdown started by a signal or a
/// context has nobody else to report to).
pub(super) fn shutdown(
    srv: &Arc<Shared>,
    grace: Duration,
) -> Result<ShutdownReport, ShutdownError> {
    let r = drain_then_cut(srv, grace);
    *srv.outcome.lock() = Some(r);
    drop(srv.outcome_tx.lock().take());
    r
}

fn drain_then_cut(srv: &Arc<Shared>, grace: Duration) -> Result<ShutdownReport, ShutdownError> {
    let deadline = Instant::now().checked_add(grace);
    // Counted before `closing` is set: from then on, idle connections close by themselves.
    let report = ShutdownReport {
        drained: srv.conns.lock().len(),
    };
    if !srv.closing.swap(true, Ordering::SeqCst) {
        srv.stop_tx.close();
        // Dropped after the lock is released.
        let first = srv.alive.lock().take();
        drop(first);
        // Wake an accept loop blocked in `accept`: it sees `closing` and returns.
        srv.wake.wake(&ListenAddr::Tcp(srv.addr));
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
            Err(RecvTimeoutError::Closed) => return Ok(report),
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
        c.state.store(ConnState::Closed);
        let _ = c.control.shutdown(Shutdown::Both);
        cut_off += 1;
    }
    drop(rest);
    let _ = srv.all_done.recv_timeout(CUT_OFF_SETTLE);
    if cut_off == 0 {
        return Ok(report);
    }
    log::error!(target: "goway::http", "http: shutdown grace ({grace:?}) over: cut off {cut_off} connection(s)");
    Err(ShutdownError::Timeout { cut_off })
}

fn close_idle(srv: &Shared) {
    let conns: Vec<Arc<ConnEntry>> = srv.conns.lock().values().cloned().collect();
    for c in &conns {
        if !c.close_if(ConnState::Idle) && c.since.elapsed() >= NEW_CONN_GRACE {
            c.close_if(ConnState::New);
        }
    }
}
