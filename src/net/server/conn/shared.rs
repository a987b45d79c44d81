//! The state a connection's parts (reader, handler, writer) and the server share, what the server does to a
//! live connection ([`ConnCtl`]), and the exit guard that counts the close once.

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use parking_lot::Mutex;

use crate::chan::Sender;
use crate::context::CancelFunc;
use crate::net::PeerAddr;
use crate::net::server::ServerShared;
use crate::net::server::budget::{Over, WriteBudget};
use crate::net::server::stats::CloseReason;
use crate::net::server::stream::Sock;

/// What the server does to a live connection, whatever its codec.
pub(crate) trait ConnCtl: Send + Sync {
    /// Finish the frames already received, then close (graceful shutdown).
    fn drain(&self);
    /// Close now, dropping queued replies.
    fn abort(&self, reason: CloseReason);
    /// Bytes of replies not yet written: now, and the most at once so far.
    fn queued_bytes(&self) -> (usize, usize);
}

/// State shared by a connection's parts (reader, handler, writer) and the server.
pub(crate) struct ConnShared<O> {
    pub(crate) id: u64,
    pub(crate) peer: PeerAddr,
    pub(super) sock: Sock,
    /// Closed by `abort` so the writer stops and the handler's sends fail.
    pub(super) out_tx: Sender<O>,
    /// The write queue's byte bound; closed by `abort` so that senders waiting for room fail.
    pub(super) budget: Arc<WriteBudget>,
    /// Cancels the connection's context when it starts closing ([`Conn::done`]); dropped
    /// with the connection, which unregisters it from the server's context. The context is
    /// made at the handler's first `context()` or `done()` (an idle connection need not
    /// carry one): see [`cancel_ctx`](Self::cancel_ctx).
    pub(super) cancel: Mutex<CtxCancel>,
    /// 0 until a reason is recorded, then `CloseReason as u8 + 1`; set once.
    pub(super) reason: AtomicU8,
    /// The server asked the connection to stop at the next frame boundary.
    pub(super) draining: AtomicBool,
    /// The reader holds part of a frame (so draining must not cut its input).
    pub(super) partial: AtomicBool,
    /// Set by `abort`: the writer drops what is queued.
    pub(super) aborted: AtomicBool,
    /// The handler is blocked in `recv`.
    pub(super) waiting: AtomicBool,
    /// A reply was queued by the handler or written by the writer (so a panic reply would
    /// come too late).
    pub(super) replied: AtomicBool,
    /// Codec error reply, written by the writer after the queued replies.
    pub(super) error_reply: Mutex<Option<Vec<u8>>>,
    /// Parts of this connection (reader, handler, writer) not yet exited.
    pub(super) running: AtomicU8,
    /// Closed when the reader goroutine ends; made when one starts (the writer's linger waits
    /// on it).
    pub(super) reader_alive: std::sync::OnceLock<crate::chan::Receiver<()>>,
    pub(super) server: Arc<ServerShared>,
    /// Keeps the server's "all connections gone" channel open while this connection lives.
    pub(super) _alive: Sender<()>,
    /// The TLS session, when the server serves TLS (boxed: a rustls session is over a
    /// kilobyte, which a plain connection need not carry).
    pub(super) tls: Option<Box<super::tls::Session>>,
}

/// Connections reset by their peer, logged at info at most once per 10 s.
static PEER_RESETS: std::sync::LazyLock<crate::logging::LogSummary> =
    std::sync::LazyLock::new(|| {
        crate::logging::LogSummary::new("connections reset by peer").target("goway::server")
    });

/// The connection context's cancel function, once the context is made.
pub(crate) enum CtxCancel {
    /// No context yet.
    NotMade,
    Made(CancelFunc),
    /// The connection started closing: a context made from now on is cancelled at once.
    Cancelled,
}

impl<O: Send + 'static> ConnShared<O> {
    /// The connection starts closing: cancels its context (now, or when it is made).
    pub(super) fn cancel_ctx(&self) {
        let was = std::mem::replace(&mut *self.cancel.lock(), CtxCancel::Cancelled);
        if let CtxCancel::Made(cancel) = was {
            cancel.cancel();
        }
    }

    /// Records `r` as the close reason unless one is recorded already.
    pub(crate) fn set_reason(&self, r: CloseReason) {
        let _ = self
            .reason
            .compare_exchange(0, r as u8 + 1, Ordering::AcqRel, Ordering::Acquire);
    }

    pub(super) fn reason(&self) -> CloseReason {
        match self.reason.load(Ordering::Acquire) {
            0 => CloseReason::Eof,
            n => CloseReason::ALL[n as usize - 1],
        }
    }

    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// One of the three parts (reader, handler, writer) is done; the last one counts the
    /// close. `goroutine`: the part was a goroutine of its own, counted in `goroutines`.
    pub(super) fn exit_one(&self, goroutine: bool) {
        if goroutine {
            self.server.stats.goroutines.fetch_sub(1, Ordering::Relaxed);
        }
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finish();
        }
    }

    /// The client's replies went past its output limit: says so once (Redis logs the client
    /// and the limit), and closes the connection.
    pub(crate) fn over_limit(&self, why: Over) {
        if self.budget.trip() {
            log::warn!(target: "goway::server", "conn {} {}: closed for overcoming its output limit: {why}", self.id, self.peer);
        }
        self.abort(CloseReason::OutputLimit);
    }

    fn finish(&self) {
        self.server
            .stats
            .queued_bytes_peak
            .fetch_max(self.budget.peak() as u64, Ordering::Relaxed);
        let r = self.reason();
        self.server.conns.lock().remove(&self.id);
        self.server.stats.record_close(r);
        match r {
            // Clients reset connections as often as they like: one line per 10 s at most
            // (Go's net/http logs none), each one at debug.
            CloseReason::PeerReset => {
                if !PEER_RESETS.record(|| format!("conn {} {} closed: {r}", self.id, self.peer)) {
                    log::debug!(target: "goway::server", "conn {} {} closed: {r}", self.id, self.peer)
                }
            }
            CloseReason::CutOff => {
                log::warn!(target: "goway::server", "conn {} {} cut off at shutdown", self.id, self.peer)
            }
            _ => log::debug!(target: "goway::server", "conn {} {} closed: {r}", self.id, self.peer),
        }
    }
}

impl<O: Send + 'static> ConnCtl for ConnShared<O> {
    fn drain(&self) {
        if self.draining.swap(true, Ordering::SeqCst) {
            return;
        }
        self.cancel_ctx();
        // Between frames the reader may be blocked in `read`: end its input now. Mid-frame it
        // finishes the frame first (within frame_timeout) and stops by itself.
        if !self.partial.load(Ordering::SeqCst) {
            self.sock.shutdown(Shutdown::Read);
        }
    }

    fn abort(&self, reason: CloseReason) {
        let eof = CloseReason::Eof as u8 + 1;
        if reason == CloseReason::CutOff || self.reason.load(Ordering::Acquire) == eof {
            // Being cut off at shutdown outranks the drain that preceded it, and a failure
            // after the client's half-close (replies lost) outranks the half-close.
            self.reason.store(reason as u8 + 1, Ordering::Release);
        } else {
            self.set_reason(reason);
        }
        if self.aborted.swap(true, Ordering::AcqRel) {
            return;
        }
        self.cancel_ctx();
        self.sock.shutdown(Shutdown::Both);
        self.out_tx.close();
        self.budget.close();
    }

    fn queued_bytes(&self) -> (usize, usize) {
        (self.budget.queued(), self.budget.peak())
    }
}

/// Held by each of a connection's parts (the reader and handler goroutines, the writer's
/// task); its drop accounts the exit (also on panic, for a codec that panics in the reader or
/// writer). The second field: the part is a goroutine of its own for its whole life (the
/// writer's goroutines come and go, and count themselves).
pub(crate) struct Exit<O: Send + 'static>(pub(super) Arc<ConnShared<O>>, pub(super) bool);

impl<O: Send + 'static> Drop for Exit<O> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!(target: "goway::server", "conn {} {}: codec panicked; closing", self.0.id, self.0.peer);
            self.0.abort(CloseReason::Panic);
        }
        self.0.exit_one(self.1);
    }
}
