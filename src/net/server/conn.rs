//! One connection in the article's shape: a reader, a handler and a writer goroutine joined
//! by two bounded channels (`in`: reader → handler, `out`: handler → writer).
//!
//! Invariants:
//! - Each goroutine holds an [`Exit`] guard; the last one to exit removes the connection from
//!   the server's registry and counts its close, once, with the first recorded reason.
//! - Only the reader sends on `in` and closes it when it stops; the handler side (the
//!   [`Conn`]) is its only receiver, so when the handler returns the reader's sends fail and
//!   it discards further input.
//! - `out` is closed by the handler goroutine when the handler returns (other goroutines may
//!   hold [`ConnSender`] clones), or by [`ConnShared::abort`]. The writer drains it, writes,
//!   sends FIN, and finally shuts the read side so the reader stops.
//! - Replies leave in the order they were sent. The writer's state (codec, buffer, socket
//!   writer) is a [`WriteSide`] behind a goroutine mutex. `pending` counts frames queued on
//!   `out` and not yet written (incremented before a frame is queued, decremented by the
//!   writer, under that mutex, once written). The handler's [`Conn::send`] may write a reply
//!   itself, skipping a hop to the writer, only while holding the mutex with `pending == 0`
//!   (nothing sent earlier is still unwritten) and no further input waiting (more frames
//!   coming means more replies: those go to the writer, which batches them). It writes only
//!   what the socket takes at once: a rest is left in the write side's buffer as its
//!   `carry`, counted in `pending` and in the byte bound, and the writer is woken by a
//!   `None` on `out` (frames travel as `Some`); the writer writes a carry before anything
//!   else. So the handler never waits on the client's reading, only for room in the queue.
//! - The write queue is bounded in bytes too ([`WriteBudget`], `write_queue_bytes`): a
//!   sender takes a frame's encoded size ([`Codec::encoded_len`]) before queueing it (the
//!   handler before writing a reply itself), the writer gives the sizes back once the batch
//!   is written. A sender that finds the connection past its output limit
//!   ([`WhenFull::Disconnect`](super::WhenFull), or the soft limit) closes it with
//!   `OutputLimit` ([`ConnShared::over_limit`]). `abort` closes the budget, failing senders
//!   waiting for room.
//! - The socket ([`Sock`], one descriptor) lives in [`ConnShared`], so it closes only when
//!   the last goroutine and the server let go of the connection. Whoever meets a broken
//!   socket calls `abort`, which shuts it down: that wakes a reader waiting for input and a
//!   writer waiting for room, whatever goroutine they run on.
//! - Nothing here holds a lock across a blocking call; `error_reply` is locked only to move a
//!   buffer in or out.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ServerShared;
use super::budget::{Limits, NoRoom, Over, WriteBudget};
use super::stats::CloseReason;
use super::stream::{READ_BUF_START, Sock, SockWriter, give_read_buf, take_read_buf};
use crate::chan::{
    self, Receiver, RecvTimeoutError, SendError, SendTimeoutError, Sender, TrySendError,
};
use crate::context::{self as gocontext, CancelFunc, Context};
use crate::net::PeerAddr;
use crate::net::codec::{Codec, DecodeError};
use crate::net::ready::ReadGate;
use crate::sync::Mutex as GoMutex;

/// What a handler returns: `Ok(())`, or an error that is logged (at debug level, with the
/// connection's id and peer) before the connection closes. `?` works on any error type.
pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The handler's type, as stored by the server.
pub(crate) type HandlerFn<C> = dyn Fn(&Conn<C>) -> HandlerResult + Send + Sync;

/// After the writer sends FIN, how long the client gets to read the replies and close before
/// the server stops reading (Go's `rstAvoidanceDelay`, net/http/server.go): closing with
/// unread input makes the kernel send RST, which can destroy replies still in flight.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// Most frames the writer takes from its queue under one lock.
const WRITE_BATCH: usize = 64;

/// How much more than `max_frame` the reader buffers for one undecoded frame before giving up
/// on a codec that does not check sizes itself.
const FRAME_SLACK: usize = 64 << 10;

/// The handler's side of a connection: frames in, frames out.
///
/// `recv` (or `for frame in conn`) yields decoded frames until the client is done (EOF, error,
/// timeout, or the server draining); `send` queues a reply for the writer goroutine and waits
/// while the write queue is full. Returning from the handler ends the connection once the
/// queued replies are written.
///
/// # Examples
/// An echo handler, as in the article:
/// ```
/// use goway::net::codec::LinesCodec;
/// use goway::net::server::{Conn, HandlerResult};
///
/// fn echo(conn: &Conn<LinesCodec>) -> HandlerResult {
///     for frame in conn {
///         conn.send(frame)?;
///     }
///     Ok(())
/// }
/// # let _ = echo;
/// ```
pub struct Conn<C: Codec> {
    rx: Receiver<C::In>,
    tx: ConnSender<C::Out>,
    /// The writer's state, for replies the handler writes itself (see the module docs).
    out: Arc<GoMutex<WriteSide<C>>>,
    ctx: Context,
    done: Receiver<()>,
    sh: Arc<ConnShared<C::Out>>,
}

impl<C: Codec> fmt::Debug for Conn<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.sh.id)
            .field("peer", &self.sh.peer)
            .finish_non_exhaustive()
    }
}

impl<C: Codec> Conn<C> {
    /// The next frame, waiting for it; `None` once the client is done (EOF, an error or
    /// timeout, or the server draining) and every decoded frame was received.
    pub fn recv(&self) -> Option<C::In> {
        // Seen by the reader's idle check: the handler is waiting for input, not working.
        self.sh.waiting.store(true, Ordering::Relaxed);
        let r = self.rx.recv().ok();
        self.sh.waiting.store(false, Ordering::Relaxed);
        r
    }

    /// The next frame, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` when the time is up; `Closed` once the client is done and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<C::In, RecvTimeoutError> {
        self.sh.waiting.store(true, Ordering::Relaxed);
        let r = self.rx.recv_timeout(timeout);
        self.sh.waiting.store(false, Ordering::Relaxed);
        r
    }

    /// The channel of incoming frames, to use in a `select!` (with a timer, or the handler's
    /// own channels). It closes when the client is done.
    pub fn incoming(&self) -> &Receiver<C::In> {
        &self.rx
    }

    /// Sends `frame` to the client: queued for the writer goroutine, waiting while the write
    /// queue is full (under [`WhenFull::Wait`](super::WhenFull::Wait); under `Disconnect` a
    /// reply past the limit closes the connection instead). When nothing is queued or being
    /// written and no more input is waiting, the reply is written at once from the handler's
    /// goroutine instead (same order, one hop less): as much as the socket takes, the rest
    /// being left to the writer, so `send` never waits for the client to read.
    ///
    /// # Errors
    /// `SendError(frame)` once the connection is closing (write failed, peer reset, output
    /// limit, server cut off): stop serving this client. As with a queued frame, a write
    /// that fails after `send` returned closes the connection, and the next `recv` or `send`
    /// says so.
    pub fn send(&self, frame: C::Out) -> Result<(), SendError<C::Out>> {
        if !self.sh.replied.load(Ordering::Relaxed) {
            self.sh.replied.store(true, Ordering::Relaxed);
        }
        let frame = match self.send_direct(frame) {
            Ok(r) => return r,
            Err(frame) => frame,
        };
        self.tx.send(frame)
    }

    /// Writes `frame` from the handler's goroutine if the writer is idle (see the module
    /// docs); hands it back (`Err`) to be queued otherwise.
    fn send_direct(&self, frame: C::Out) -> Result<Result<(), SendError<C::Out>>, C::Out> {
        let pending = &self.tx.pending;
        if pending.load(Ordering::Acquire) != 0 || !self.rx.is_empty() {
            return Err(frame);
        }
        let Some(mut out) = self.out.try_lock() else {
            return Err(frame);
        };
        // Under the mutex, `pending == 0` means every frame queued before this one is written.
        if pending.load(Ordering::Acquire) != 0 {
            return Err(frame);
        }
        let sh = &*self.sh;
        if sh.aborted.load(Ordering::Acquire) || self.tx.is_closed() {
            return Ok(Err(SendError(frame)));
        }
        // Counted in the byte bound while it is being written, as a queued reply is.
        let budget = &*self.tx.budget;
        let n = self.tx.size_of(&frame);
        match budget.try_take(n) {
            Ok(true) => {}
            // Nothing is pending, so this is rare (a sender racing in): queue it.
            Ok(false) => return Err(frame),
            Err(over) => {
                drop(out);
                sh.over_limit(over);
                return Ok(Err(SendError(frame)));
            }
        }
        let out = &mut *out;
        out.buf.clear();
        if let Err(r) = encode(&mut out.codec, frame, &mut out.buf, sh) {
            budget.give_back(n);
            sh.abort(r);
            return Ok(Ok(()));
        }
        // What the socket takes now; the rest (the client is not reading fast enough, or
        // the socket failed) goes to the writer, which waits for the client or meets the
        // error.
        let sent = out.wr.write_now(&sh.sock, &out.buf);
        sh.server
            .stats
            .bytes_out
            .fetch_add(sent as u64, Ordering::Relaxed);
        out.buf.drain(..sent);
        if !out.buf.is_empty() {
            out.carry = Some(n);
            pending.fetch_add(1, Ordering::AcqRel);
            if self.tx.tx.try_send(None).is_ok() {
                return Ok(Ok(()));
            }
            // The writer cannot be woken (an unbuffered queue it is not waiting on, or the
            // connection closing): finish here.
            out.carry = None;
            pending.fetch_sub(1, Ordering::AcqRel);
        }
        // Writes the rest if any, and counts the frame.
        let r = out.write(sh, 1);
        budget.give_back(n);
        if let Err(r) = r {
            // The connection is over; the handler learns it at its next `recv` or `send`.
            sh.abort(r);
        }
        Ok(Ok(()))
    }

    /// A cloneable sender of frames to this client, usable from any goroutine (for
    /// broadcast). It fails once the connection closes.
    pub fn sender(&self) -> ConnSender<C::Out> {
        self.tx.clone()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.sh.peer
    }

    /// The connection's id, unique within its server (also in its log lines).
    pub fn id(&self) -> u64 {
        self.sh.id
    }

    /// A channel that closes when the connection starts closing: the client left, the server
    /// is draining, or the connection was cut off. For handlers that wait on something other
    /// than [`recv`](Self::recv): `select! { recv(conn.done()) -> _ => return Ok(()), .. }`.
    pub fn done(&self) -> &Receiver<()> {
        &self.done
    }

    /// The connection's context: a child of the server's (see
    /// [`Builder::context`](super::Builder::context)), cancelled when the connection starts
    /// closing, or when the server's context is. Hand it to work done for this client.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

/// Blocking iterator over a connection's frames: `for frame in conn`.
#[derive(Debug)]
pub struct Frames<'a, C: Codec> {
    conn: &'a Conn<C>,
}

impl<C: Codec> Iterator for Frames<'_, C> {
    type Item = C::In;
    fn next(&mut self) -> Option<C::In> {
        self.conn.recv()
    }
}

impl<'a, C: Codec> IntoIterator for &'a Conn<C> {
    type Item = C::In;
    type IntoIter = Frames<'a, C>;
    fn into_iter(self) -> Frames<'a, C> {
        Frames { conn: self }
    }
}

/// A handle that queues frames to one client from any goroutine; clone it freely.
///
/// # Examples
/// ```no_run
/// # use goway::net::{Conn, codec::LinesCodec, server::HandlerResult};
/// # fn register(_: goway::net::ConnSender<Vec<u8>>) {}
/// fn handler(conn: &Conn<LinesCodec>) -> HandlerResult {
///     register(conn.sender()); // a broadcaster keeps a copy
///     for _ in conn {}
///     Ok(())
/// }
/// ```
pub struct ConnSender<O> {
    /// Frames as `Some`; `None` wakes the writer for a carry (see the module docs).
    tx: Sender<Option<O>>,
    /// Frames queued and not yet written (see the module docs).
    pending: Arc<AtomicUsize>,
    /// Bytes queued and not yet written, bounded by `write_queue_bytes`.
    budget: Arc<WriteBudget>,
    /// The codec's [`Codec::encoded_len`].
    size: fn(&O) -> usize,
    /// To close the connection past its output limit (weak: a sender kept by another
    /// goroutine must not keep a closed connection's socket open).
    conn: Weak<ConnShared<O>>,
    id: u64,
}

impl<O> Clone for ConnSender<O> {
    fn clone(&self) -> Self {
        ConnSender {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
            budget: self.budget.clone(),
            size: self.size,
            conn: self.conn.clone(),
            id: self.id,
        }
    }
}

impl<O> fmt::Debug for ConnSender<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnSender")
            .field("conn", &self.id)
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl<O: Send + 'static> ConnSender<O> {
    /// Queues `frame`, waiting while the write queue is full (`write_queue` frames, or
    /// `write_queue_bytes` bytes, are waiting to be written). Under
    /// [`WhenFull::Disconnect`](super::WhenFull::Disconnect), a frame that does not fit in
    /// `write_queue_bytes` closes the connection instead of waiting.
    ///
    /// # Errors
    /// `SendError(frame)` once the connection is closing.
    pub fn send(&self, frame: O) -> Result<(), SendError<O>> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        let room = match self.budget.try_take(n) {
            Ok(true) => Ok(()),
            Ok(false) => self.budget.take(n, None),
            Err(over) => Err(NoRoom::Over(over)),
        };
        if let Err(e) = room {
            self.no_room(e);
            return Err(SendError(frame));
        }
        self.tx
            .send(Some(frame))
            .map_err(|e| SendError(self.unsent(e.0, n)))
    }

    /// `frame`'s size for the byte bound; not computed when there is no bound.
    #[inline]
    fn size_of(&self, frame: &O) -> usize {
        if self.budget.is_bounded() {
            (self.size)(frame)
        } else {
            0
        }
    }

    /// A frame counted in `pending` (and `n` bytes of the budget) was not queued after all.
    fn unqueued(&self, n: usize) {
        self.budget.give_back(n);
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// A frame that the queue refused (it comes back as sent, `Some`).
    fn unsent(&self, item: Option<O>, n: usize) -> O {
        self.unqueued(n);
        match item {
            Some(frame) => frame,
            None => unreachable!("senders queue frames as Some"),
        }
    }

    /// No room was taken: undoes `pending`, and closes a connection past its limit.
    fn no_room(&self, why: NoRoom) {
        self.unqueued(0);
        if let (NoRoom::Over(over), Some(sh)) = (why, self.conn.upgrade()) {
            sh.over_limit(over);
        }
    }

    /// Queues `frame` only if there is room now (a broadcaster that must not wait for one slow
    /// client). Under [`WhenFull::Disconnect`](super::WhenFull::Disconnect) a frame that does
    /// not fit closes the connection (Redis drops a slow subscriber so).
    ///
    /// # Errors
    /// `Full(frame)` if the queue is full, `Closed(frame)` once the connection is closing.
    pub fn try_send(&self, frame: O) -> Result<(), TrySendError<O>> {
        if self.tx.is_closed() {
            return Err(TrySendError::Closed(frame));
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        match self.budget.try_take(n) {
            Ok(true) => {}
            Ok(false) => {
                self.unqueued(0);
                return Err(TrySendError::Full(frame));
            }
            Err(over) => {
                self.no_room(NoRoom::Over(over));
                return Err(TrySendError::Closed(frame));
            }
        }
        self.tx.try_send(Some(frame)).map_err(|e| match e {
            TrySendError::Full(f) => TrySendError::Full(self.unsent(f, n)),
            TrySendError::Closed(f) => TrySendError::Closed(self.unsent(f, n)),
        })
    }

    /// Queues `frame`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// `Timeout(frame)` or `Closed(frame)` (also when the connection was closed for its
    /// output limit).
    pub fn send_timeout(&self, frame: O, timeout: Duration) -> Result<(), SendTimeoutError<O>> {
        let deadline = Instant::now().checked_add(timeout);
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        let room = match self.budget.try_take(n) {
            Ok(true) => Ok(()),
            Ok(false) => self.budget.take(n, deadline),
            Err(over) => Err(NoRoom::Over(over)),
        };
        if let Err(e) = room {
            self.no_room(e);
            return Err(if e == NoRoom::Timeout {
                SendTimeoutError::Timeout(frame)
            } else {
                SendTimeoutError::Closed(frame)
            });
        }
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        self.tx
            .send_timeout(Some(frame), left)
            .map_err(|e| match e {
                SendTimeoutError::Timeout(f) => SendTimeoutError::Timeout(self.unsent(f, n)),
                SendTimeoutError::Closed(f) => SendTimeoutError::Closed(self.unsent(f, n)),
            })
    }

    /// `true` once the connection is closing: sends fail from then on.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// What the server does to a live connection, whatever its codec.
pub(crate) trait ConnCtl: Send + Sync {
    /// Finish the frames already received, then close (graceful shutdown).
    fn drain(&self);
    /// Close now, dropping queued replies.
    fn abort(&self, reason: CloseReason);
    /// Bytes of replies not yet written: now, and the most at once so far.
    fn queued_bytes(&self) -> (usize, usize);
}

/// State shared by a connection's three goroutines and the server.
pub(crate) struct ConnShared<O> {
    pub(crate) id: u64,
    pub(crate) peer: PeerAddr,
    sock: Sock,
    /// Closed by `abort` so the writer stops and the handler's sends fail.
    out_tx: Sender<Option<O>>,
    /// The write queue's byte bound; closed by `abort` so that senders waiting for room fail.
    budget: Arc<WriteBudget>,
    /// Cancels the connection's context when it starts closing ([`Conn::done`]); dropped
    /// with the connection, which unregisters it from the server's context.
    cancel: CancelFunc,
    /// 0 until a reason is recorded, then `CloseReason as u8 + 1`; set once.
    reason: AtomicU8,
    /// The server asked the connection to stop at the next frame boundary.
    draining: AtomicBool,
    /// The reader holds part of a frame (so draining must not cut its input).
    partial: AtomicBool,
    /// Set by `abort`: the writer drops what is queued.
    aborted: AtomicBool,
    /// The handler is blocked in `recv`.
    waiting: AtomicBool,
    /// A reply was queued by the handler or written by the writer (so a panic reply would
    /// come too late).
    replied: AtomicBool,
    /// Codec error reply, written by the writer after the queued replies.
    error_reply: Mutex<Option<Vec<u8>>>,
    /// Goroutines of this connection not yet exited.
    running: AtomicU8,
    server: Arc<ServerShared>,
    /// Keeps the server's "all connections gone" channel open while this connection lives.
    _alive: Sender<()>,
}

/// Connections reset by their peer, logged at info at most once per 10 s.
static PEER_RESETS: std::sync::LazyLock<crate::logging::LogSummary> =
    std::sync::LazyLock::new(|| {
        crate::logging::LogSummary::new("connections reset by peer").target("goway::server")
    });

impl<O: Send + 'static> ConnShared<O> {
    /// Records `r` as the close reason unless one is recorded already.
    pub(crate) fn set_reason(&self, r: CloseReason) {
        let _ = self
            .reason
            .compare_exchange(0, r as u8 + 1, Ordering::AcqRel, Ordering::Acquire);
    }

    fn reason(&self) -> CloseReason {
        match self.reason.load(Ordering::Acquire) {
            0 => CloseReason::Eof,
            n => CloseReason::ALL[n as usize - 1],
        }
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// One goroutine is done; the last one counts the close.
    fn exit_one(&self) {
        self.server.stats.goroutines.fetch_sub(1, Ordering::Relaxed);
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
        self.cancel.cancel();
        // Between frames the reader may be blocked in `read`: end its input now. Mid-frame it
        // finishes the frame first (within read_timeout) and stops by itself.
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
        self.cancel.cancel();
        self.sock.shutdown(Shutdown::Both);
        self.out_tx.close();
        self.budget.close();
    }

    fn queued_bytes(&self) -> (usize, usize) {
        (self.budget.queued(), self.budget.peak())
    }
}

/// Held by each of a connection's goroutines; its drop accounts the exit (also on panic, for
/// a codec that panics in the reader or writer).
pub(crate) struct Exit<O: Send + 'static>(Arc<ConnShared<O>>);

impl<O: Send + 'static> Drop for Exit<O> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!(target: "goway::server", "conn {} {}: codec panicked; closing", self.0.id, self.0.peer);
            self.0.abort(CloseReason::Panic);
        }
        self.0.exit_one();
    }
}

/// Everything needed to start one connection's goroutines.
pub(crate) struct Parts<C: Codec> {
    pub(crate) reader: ReaderTask<C>,
    pub(crate) writer: WriterTask<C>,
    pub(crate) handler: HandlerTask<C>,
    pub(crate) shared: Arc<ConnShared<C::Out>>,
}

/// Builds a connection: channels, shared state, three tasks with their exit guards. The
/// caller registers `shared` and spawns the tasks; a task dropped unspawned still accounts
/// its exit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<C: Codec>(
    id: u64,
    peer: PeerAddr,
    sock: Sock,
    codec: &C,
    handler: Arc<HandlerFn<C>>,
    server: Arc<ServerShared>,
    alive: Sender<()>,
) -> Parts<C> {
    let cfg = &server.cfg;
    let (in_tx, in_rx) = chan::bounded(cfg.read_queue);
    let (out_tx, out_rx) = chan::bounded(cfg.write_queue);
    let (ctx, cancel) = gocontext::with_cancel(&server.ctx);
    let done_rx = ctx.done();
    let (reader_alive_tx, reader_alive_rx) = chan::bounded(0);
    let budget = Arc::new(WriteBudget::new(Limits::new(cfg)));
    let shared = Arc::new(ConnShared {
        id,
        peer,
        sock,
        out_tx: out_tx.clone(),
        budget: budget.clone(),
        cancel,
        reason: AtomicU8::new(0),
        draining: AtomicBool::new(false),
        partial: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
        waiting: AtomicBool::new(false),
        replied: AtomicBool::new(false),
        error_reply: Mutex::new(None),
        running: AtomicU8::new(3),
        server: server.clone(),
        _alive: alive,
    });
    server
        .stats
        .goroutines
        .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
    let exit = || Exit(shared.clone());
    let pending = Arc::new(AtomicUsize::new(0));
    let mut out_codec = codec.clone();
    out_codec.set_max_frame(cfg.max_frame);
    let out = Arc::new(GoMutex::new(WriteSide {
        wr: SockWriter::new(cfg.write_timeout),
        codec: out_codec,
        buf: Vec::new(),
        carry: None,
    }));
    Parts {
        reader: ReaderTask {
            codec: codec.clone(),
            tx: in_tx,
            _alive: reader_alive_tx,
            exit: exit(),
        },
        writer: WriterTask {
            out: out.clone(),
            pending: pending.clone(),
            budget: budget.clone(),
            rx: out_rx,
            reader_alive: reader_alive_rx,
            exit: exit(),
        },
        handler: HandlerTask {
            conn: Conn {
                rx: in_rx,
                tx: ConnSender {
                    tx: out_tx,
                    pending,
                    budget,
                    size: C::encoded_len,
                    conn: Arc::downgrade(&shared),
                    id,
                },
                out,
                ctx,
                done: done_rx,
                sh: shared.clone(),
            },
            handler,
            codec: codec.clone(),
            exit: exit(),
        },
        shared,
    }
}

// ----- handler ---------------------------------------------------------------------------

pub(crate) struct HandlerTask<C: Codec> {
    conn: Conn<C>,
    handler: Arc<HandlerFn<C>>,
    /// For its `panic_reply`.
    codec: C,
    exit: Exit<C::Out>,
}

impl<C: Codec> HandlerTask<C> {
    pub(crate) fn run(self) {
        let HandlerTask {
            conn,
            handler,
            mut codec,
            exit,
        } = self;
        let sh = &exit.0;
        // A panic ends only this connection (Go's conn.serve recovers and logs it).
        match panic::catch_unwind(AssertUnwindSafe(|| handler(&conn))) {
            Ok(Ok(())) => sh.set_reason(CloseReason::HandlerDone),
            Ok(Err(e)) => {
                log::debug!(target: "goway::server", "conn {} {}: handler error: {e}", sh.id, sh.peer);
                sh.set_reason(CloseReason::HandlerError);
            }
            Err(p) => {
                sh.server.stats.panics.fetch_add(1, Ordering::Relaxed);
                log::error!(target: "goway::server", "panic serving {}: {}", sh.peer, panic_message(p.as_ref()));
                sh.set_reason(CloseReason::Panic);
                // Nothing answered yet: the codec's error reply, written after the queue
                // (which is empty) and before the connection closes.
                if !sh.replied.load(Ordering::Acquire) && sh.out_tx.is_empty() {
                    if let Some(reply) = codec.panic_reply() {
                        *sh.error_reply.lock() = Some(reply);
                    }
                }
            }
        }
        // The writer writes what is queued, then closes. Clones held elsewhere now fail.
        conn.tx.tx.close();
        drop(conn);
        drop(exit);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

// ----- reader ----------------------------------------------------------------------------

pub(crate) struct ReaderTask<C: Codec> {
    codec: C,
    tx: Sender<C::In>,
    /// Dropped when the reader ends: the writer's linger wait ends with it.
    _alive: Sender<()>,
    exit: Exit<C::Out>,
}

/// How the reader stopped.
enum Stop {
    /// Close gracefully: the handler finishes the queued frames, the writer writes.
    Close(CloseReason),
    /// The socket is unusable: abort the connection.
    Abort(CloseReason),
}

impl<C: Codec> ReaderTask<C> {
    pub(crate) fn run(mut self) {
        let stop = self.read_loop();
        let sh = &self.exit.0;
        // Record the reason before closing `in`: the handler returns as soon as it is closed,
        // and its own reason must not win the race.
        match stop {
            Stop::Close(r) => {
                sh.set_reason(r);
                sh.cancel.cancel();
            }
            Stop::Abort(r) => sh.abort(r),
        }
        self.tx.close();
    }

    fn read_loop(&mut self) -> Stop {
        let sh = self.exit.0.clone();
        let cfg = &sh.server.cfg;
        let stats = &sh.server.stats;
        let frame_limit = cfg.read_timeout;
        let idle_limit = cfg.idle_timeout;
        let hard_cap = cfg.max_frame.saturating_add(FRAME_SLACK);
        let grow_to = cfg.read_buffer.max(READ_BUF_START);
        let wakeup = sh.sock.wakeup();
        let busy = sh.server.busy.as_deref();
        // No buffer while waiting for a frame: taken when data comes, handed back when the
        // connection goes quiet again.
        let mut buf: Vec<u8> = Vec::new();
        let (mut start, mut end) = (0usize, 0usize);
        let mut frame_start: Option<Instant> = None;
        let mut idle_since = Instant::now();
        let mut partial = false;
        let mut handler_gone = false;
        let mut gate = ReadGate::default();
        // The clock read of the last pass when that pass never waited (it only read, decoded
        // and handed frames over, microseconds ago): one clock read per frame instead of two.
        let mut fresh: Option<Instant> = None;
        self.codec.set_max_frame(cfg.max_frame);
        loop {
            // 1. The deadline of this read: the frame's, or the idle one.
            let now = fresh.take().unwrap_or_else(Instant::now);
            let (limit_end, timeout_reason) = match frame_start {
                Some(fs) => (frame_limit.map(|d| fs + d), CloseReason::ReadTimeout),
                None => (idle_limit.map(|d| idle_since + d), CloseReason::IdleTimeout),
            };
            if let Some(e) = limit_end {
                if now >= e {
                    if timeout_reason == CloseReason::IdleTimeout && !self.is_idle() {
                        // The handler is still working on earlier frames: not idle.
                        idle_since = now;
                        continue;
                    }
                    return Stop::Close(timeout_reason);
                }
            }
            // 2. Wait for input (or the deadline, then step 1 decides) once the socket is
            // empty: a read said so, or returned less than it could take (see `ReadGate`).
            if gate.must_wait() {
                if start == end && buf.len() == READ_BUF_START {
                    give_read_buf(std::mem::take(&mut buf));
                    (start, end) = (0, 0);
                }
                wakeup.set(limit_end);
                if let Some(bp) = busy {
                    bp.kick();
                }
                gate.waited(sh.sock.wait_readable(limit_end.is_some()));
                continue;
            }
            // 3. Room to read into: compact, then grow if a read filled everything.
            if buf.is_empty() {
                buf = take_read_buf();
            }
            if end == buf.len() {
                if start > 0 {
                    buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                if end == buf.len() {
                    if buf.len() >= hard_cap {
                        return self.protocol_error(
                            DecodeError::FrameTooLarge {
                                len: end,
                                max: cfg.max_frame,
                            },
                            &buf[start..end],
                        );
                    }
                    let target = if buf.len() < grow_to {
                        grow_to.min(buf.len() * 2)
                    } else {
                        buf.len() * 2
                    };
                    buf.resize(target.min(hard_cap), 0);
                }
            }
            // 4. Read.
            let room = buf.len() - end;
            let n = match sh.sock.read_nb(&mut buf[end..]) {
                Ok(0) => {
                    return Stop::Close(if sh.is_draining() {
                        CloseReason::Shutdown
                    } else if start < end && !handler_gone {
                        CloseReason::EofMidFrame
                    } else {
                        CloseReason::Eof
                    });
                }
                Ok(n) => {
                    gate.read(n, room);
                    n
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => {
                        gate.would_block();
                        continue;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => return Stop::Abort(io_reason(&e)),
                },
            };
            end += n;
            stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            if handler_gone {
                // Nobody will handle more frames: discard until the client closes.
                start = 0;
                end = 0;
                idle_since = now;
                continue;
            }
            // 5. Decode every complete frame this read brought in.
            let mut got = 0u64;
            let mut blocked = false;
            loop {
                match self.codec.decode(&buf[start..end]) {
                    Ok(Some((frame, used))) => {
                        start += used;
                        got += 1;
                        match self.tx.try_send(frame) {
                            Ok(()) => {}
                            Err(TrySendError::Full(frame)) => {
                                blocked = true;
                                if self.tx.send(frame).is_err() {
                                    handler_gone = true;
                                    break;
                                }
                            }
                            Err(TrySendError::Closed(_)) => {
                                handler_gone = true;
                                break;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        stats.frames_in.fetch_add(got, Ordering::Relaxed);
                        return self.protocol_error(e, &buf[start..end]);
                    }
                }
            }
            if got > 0 {
                stats.frames_in.fetch_add(got, Ordering::Relaxed);
            }
            if handler_gone {
                start = 0;
                end = 0;
            }
            // 6. Timing: a partial frame's clock starts at its first byte (this read, unless
            // it began in an earlier one), and restarts after the handler held us up.
            if start == end {
                start = 0;
                end = 0;
                frame_start = None;
                // The clock read before this read (two clock reads per frame instead of three),
                // unless the handler held the reader up: then the client's idle time starts
                // now, not before the wait.
                idle_since = if blocked { Instant::now() } else { now };
                if partial {
                    partial = false;
                    sh.partial.store(false, Ordering::SeqCst);
                }
                if buf.len() > grow_to {
                    buf = Vec::new();
                }
                if sh.is_draining() {
                    return Stop::Close(CloseReason::Shutdown);
                }
            } else {
                if blocked {
                    // The handler held us up: the clock restarts now.
                    frame_start = Some(Instant::now());
                } else if frame_start.is_none() || got > 0 {
                    frame_start = Some(now);
                }
                if !partial {
                    partial = true;
                    sh.partial.store(true, Ordering::SeqCst);
                }
            }
            if !blocked {
                fresh = Some(now);
            }
        }
    }

    /// Idle means: the handler waits for input and nothing is queued either way.
    fn is_idle(&self) -> bool {
        let sh = &self.exit.0;
        sh.waiting.load(Ordering::Relaxed) && self.tx.is_empty() && sh.out_tx.is_empty()
    }

    /// `input`: the undecodable bytes, from the frame's start (logged escaped).
    fn protocol_error(&mut self, e: DecodeError, input: &[u8]) -> Stop {
        let sh = &self.exit.0;
        log::debug!(target: "goway::server", "conn {} {}: {e}; closing; input: {}", sh.id, sh.peer, dump(input));
        if let Some(reply) = self.codec.error_reply(&e) {
            *sh.error_reply.lock() = Some(reply);
        }
        Stop::Close(match e {
            DecodeError::FrameTooLarge { .. } => CloseReason::FrameTooLarge,
            _ => CloseReason::Protocol,
        })
    }
}

/// Most bytes of bad input a log line shows.
const DUMP_MAX: usize = 64;

/// Bad input for a log line: its first bytes, escaped (`\r`, `\x00`, ...) and quoted, and
/// the total length when it was cut.
fn dump(input: &[u8]) -> String {
    let shown = &input[..input.len().min(DUMP_MAX)];
    if shown.len() < input.len() {
        format!("\"{}\"... ({} bytes)", shown.escape_ascii(), input.len())
    } else {
        format!("\"{}\"", shown.escape_ascii())
    }
}

/// The close reason for a socket error.
fn io_reason(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::NotConnected => CloseReason::PeerReset,
        io::ErrorKind::TimedOut => CloseReason::WriteTimeout,
        _ => CloseReason::Io,
    }
}

// ----- writer ----------------------------------------------------------------------------

pub(crate) struct WriterTask<C: Codec> {
    out: Arc<GoMutex<WriteSide<C>>>,
    pending: Arc<AtomicUsize>,
    budget: Arc<WriteBudget>,
    rx: Receiver<Option<C::Out>>,
    reader_alive: Receiver<()>,
    exit: Exit<C::Out>,
}

/// What writing to the client takes: the codec, a buffer, the socket's writer. Used by the
/// writer goroutine, or by the handler while the writer is idle (see the module docs).
pub(crate) struct WriteSide<C: Codec> {
    wr: SockWriter,
    codec: C,
    buf: Vec<u8>,
    /// The handler left the rest of a reply in `buf` for the writer (the socket was full):
    /// its size in the byte bound. Counted in `pending` too.
    carry: Option<usize>,
}

impl<C: Codec> WriteSide<C> {
    /// Writes the buffer (`frames` encoded frames) and empties it.
    fn write(&mut self, sh: &ConnShared<C::Out>, frames: u64) -> Result<(), CloseReason> {
        if let Err(e) = self.wr.write_all(&sh.sock, &self.buf) {
            log::debug!(target: "goway::server", "conn {} {}: write: {e}", sh.id, sh.peer);
            return Err(io_reason(&e));
        }
        let stats = &sh.server.stats;
        stats.frames_out.fetch_add(frames, Ordering::Relaxed);
        stats
            .bytes_out
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        if !sh.replied.load(Ordering::Relaxed) {
            sh.replied.store(true, Ordering::Release);
        }
        self.buf.clear();
        if self.buf.capacity() > sh.server.cfg.write_buffer.max(64 << 10) {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

/// Encodes one reply; a codec that cannot encode it closes the connection.
fn encode<C: Codec>(
    codec: &mut C,
    f: C::Out,
    buf: &mut Vec<u8>,
    sh: &ConnShared<C::Out>,
) -> Result<(), CloseReason> {
    codec.encode(f, buf).map_err(|e| {
        log::error!(target: "goway::server", "conn {} {}: cannot encode reply: {e}; closing", sh.id, sh.peer);
        CloseReason::EncodeError
    })
}

impl<C: Codec> WriterTask<C> {
    pub(crate) fn run(mut self) {
        let sh = self.exit.0.clone();
        match self.write_loop() {
            Err(r) => sh.abort(r),
            Ok(()) if sh.aborted.load(Ordering::Acquire) => {}
            Ok(()) => {
                // Graceful end: the codec's error reply if any, then FIN, then give the
                // client a moment to read and close before we stop reading.
                let reply = sh.error_reply.lock().take();
                if let Some(reply) = reply {
                    let _ = self.out.lock().wr.write_all(&sh.sock, &reply);
                }
                sh.sock.shutdown(Shutdown::Write);
                let _ = self.reader_alive.recv_timeout(LINGER);
                sh.sock.shutdown(Shutdown::Read);
            }
        }
    }

    fn write_loop(&mut self) -> Result<(), CloseReason> {
        let sh = self.exit.0.clone();
        let flush_at = sh.server.cfg.write_buffer;
        let mut batch: Vec<Option<C::Out>> = Vec::new();
        // Wait for a frame; then take every frame queued right now (under one lock of the
        // queue) into one buffer and write it with one call: the queue being momentarily
        // empty is the flush signal.
        while let Ok(first) = self.rx.recv() {
            if sh.aborted.load(Ordering::Acquire) {
                return Ok(());
            }
            // Waits while the handler writes a reply itself.
            let mut out = self.out.lock();
            let out = &mut *out;
            // The rest of a reply the handler began writing goes first (`None` woke us for
            // it, or it came just before this frame).
            if let Some(bytes) = out.carry.take() {
                let r = out.write(&sh, 1);
                self.budget.give_back(bytes);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                r?;
            }
            let Some(first) = first else {
                continue;
            };
            out.buf.clear();
            let mut n = 1u64;
            // Sized again here (the sender's size is not carried with the frame), only when
            // there is a byte bound.
            let bounded = self.budget.is_bounded();
            let mut bytes = if bounded { C::encoded_len(&first) } else { 0 };
            encode(&mut out.codec, first, &mut out.buf, &sh)?;
            while out.buf.len() < flush_at {
                if self.rx.try_recv_many(&mut batch, WRITE_BATCH) == 0 {
                    break;
                }
                // A `None` here woke us for a carry already written.
                for f in batch.drain(..).flatten() {
                    n += 1;
                    if bounded {
                        bytes += C::encoded_len(&f);
                    }
                    encode(&mut out.codec, f, &mut out.buf, &sh)?;
                }
            }
            out.write(&sh, n)?;
            // Written: senders waiting for room in the byte bound may go on.
            self.budget.give_back(bytes);
            // Still under the mutex: the handler may write directly once this reaches 0.
            self.pending.fetch_sub(n as usize, Ordering::AcqRel);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_dumped_escaped_and_cut() {
        assert_eq!(dump(b"GET /\r\n\x00\xff\""), r#""GET /\r\n\x00\xff\"""#);
        let long = vec![b'a'; 100];
        assert_eq!(
            dump(&long),
            format!("\"{}\"... (100 bytes)", "a".repeat(64))
        );
    }
}
