//! One connection in the article's shape: a reader, a handler and a writer, joined by two
//! bounded queues (`in`: reader → handler, `out`: handler → writer). Only the handler is a
//! goroutine for the connection's whole life: the handler reads inline (inside `recv`) until
//! it asks for a reader goroutine, and the writer runs only while it has work, so an idle
//! connection holds one goroutine.
//!
//! Invariants:
//! - Each part (reading, the handler goroutine, the writer's task) holds an [`Exit`] guard;
//!   the last one to exit removes the connection from the server's registry and counts its
//!   close, once, with the first recorded reason. Reading's guard lives in the [`ReadSide`]
//!   and is dropped when reading stops (or by the reader goroutine, which takes it while it
//!   runs).
//! - Reading is done by whoever holds the [`ReadSide`]'s goroutine mutex, so one goroutine at
//!   a time waits on the socket: the handler inside `recv` / `recv_timeout` while no reader
//!   goroutine exists (inline), else the reader goroutine, which takes the mutex for one
//!   frame at a time and queues each frame on `in`. Both run the same code
//!   ([`ReadSide::next`]): decode the next buffered frame, else wait for the socket under
//!   the frame or idle deadline, read, decode; the same close reasons, `partial` for drain,
//!   the codec's error reply, `frames_in`, and no read buffer held while waiting.
//! - The reader goroutine starts at most once (`in` is made then, in a `OnceLock`): at the
//!   first [`Conn::incoming`], [`Conn::done`] or [`Conn::context`] (whose users wait on
//!   something else than `recv` and must learn that the client left while they are busy),
//!   for TLS from the start, and when the handler returns with reading not yet ended (it
//!   then discards the input until the client closes, the writer's linger). An inline
//!   `recv` looks for `in` after taking the mutex, so once a reader goroutine exists every
//!   frame goes through `in`, in order. Inline, the handler worked on each frame it got:
//!   the clocks restart when it asks for the next (the idle time is the client's, as when
//!   the reader waited for room in `in`). After a `recv_timeout` that ran out, nobody reads
//!   until the handler's next `recv` (or a reader goroutine): a deadline that passed meanwhile
//!   is judged after reading what the socket holds (frame), or restarts (idle), as a reader
//!   goroutine would have found (see [`ReadSide::next`]).
//! - When reading stops, [`ReadSide::stop`] records the reason (or aborts) before the
//!   handler can see the end (`None` from an inline `recv`, `in` closed after), then drops
//!   reading's exit guard. The writer's linger waits for a reader goroutine to end
//!   (`reader_alive`, made when one starts); the handler's end starts the discarding reader
//!   before it closes `out`, so the linger cannot miss it.
//! - What an idle connection does not use is made on first use: the reader goroutine and
//!   `in`, the context and its done channel (cancelled at once if made after the
//!   connection started closing, see [`ConnShared::cancel_ctx`]), `reader_alive`, the
//!   TLS session's box, the read buffer (taken from a shared pool while reading).
//! - The writer runs only while it has work ([`Writers`]). Its task (queue receiver, exit
//!   guard) sits in a slot while no writer goroutine runs; `running` is false exactly while
//!   it is there. Whoever queues a frame on `out` (or leaves a carry, below) then calls
//!   `kick`, which claims the task (`running` false → true) and starts a writer goroutine
//!   with it. A writer that finds `out` empty puts the task back, sets `running` false, and
//!   looks once more (`out` not empty, closed, a carry, or a sender waiting): if there is
//!   work and it wins the claim again, it goes on; else it ends. With `running`, the carry
//!   flag and the queue's lock all sequentially consistent, a frame queued at any moment is
//!   seen either by the sender's `kick` (`running` false: it starts a writer) or by the
//!   writer's last look (the sender saw `running` true before the writer cleared it), so no
//!   frame is left without a writer. A sender about to wait in a send on a full (or
//!   unbuffered) queue counts itself in `waiting` and kicks first; a writer that finds the
//!   queue empty while `waiting` is not zero waits for the frame instead of ending (or for a
//!   nudge: the sender gave up, or a carry came, see [`Writers`]). Frames are written in
//!   queue order by one writer at a time (the task is in one place), so order holds across
//!   writer restarts.
//! - The writer's end (error reply, FIN, linger) is the last run of its task: when the
//!   handler returns it closes `out` and calls `finish`, which runs the task on the handler's
//!   own goroutine unless a writer goroutine runs (which then meets the closed queue itself).
//!   A writer that ends for good leaves `running` true, so nothing starts another.
//! - Only the reader goroutine sends on `in` and closes it when it stops; the handler side
//!   (the [`Conn`]) is its only receiver, so when the handler returns the reader's sends fail
//!   and it discards further input.
//! - `out` is closed by the handler goroutine when the handler returns (other goroutines may
//!   hold [`ConnSender`] clones), or by [`ConnShared::abort`]. The writer drains it, writes,
//!   sends FIN, and finally shuts the read side so the reader stops.
//! - Replies leave in the order they were sent. The writer's state (codec, buffer, socket
//!   writer) is a [`WriteSide`] behind a goroutine mutex. `pending` counts frames queued on
//!   `out` and not yet written (incremented before a frame is queued, decremented by the
//!   writer, under that mutex, once written). The handler's [`Conn::send`] may put a reply in
//!   the write side's buffer itself, skipping a hop to the writer, only while holding the
//!   mutex with nothing pending but its own carry (below): every frame sent earlier is
//!   written, or in that buffer ahead of this one. With no further input waiting it writes
//!   the buffer at once; with more input waiting (`in` not empty, or inline, undecoded input
//!   left in the read side by the last `recv`: more frames coming means more replies) it
//!   holds the reply there, so a pipelined burst's replies leave in one write, made by the
//!   handler's last reply of the burst. It writes only what the socket takes at once. What
//!   stays in the buffer, held or unwritten, is the `carry`: counted once in `pending` and
//!   in the byte bound, and flagged to the writer ([`Writers`]' `carry`, set and cleared
//!   with it under the mutex). A carry never depends on the handler coming back: while the
//!   handler runs, its goroutine has a park hook (a patch to may, see vendor/may/PATCHES.md)
//!   that kicks the writer for a carry each time the goroutine is about to park, wherever
//!   it parks (on a channel, a lock, a sleep, the socket); the writer then writes the carry
//!   before anything queued after it. So a burst whose replies the handler writes itself
//!   starts no writer at all. A carry left by another goroutine (one the handler lent its
//!   `&Conn` to) kicks the writer at once, and the handler's end runs the writer, which
//!   writes a carry before it ends the output. A handler that computes for long without
//!   parking holds its carry that long, as it holds the worker thread. A carry stops
//!   growing at `write_buffer` bytes (further replies queue behind it); replies are held
//!   only below half the output limit ([`WriteBudget::hold_limit`]), so that what the
//!   server holds by choice never counts as output a reading client left unread. So the
//!   handler never waits on the client's reading, only for room in the queue.
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
//!
//! Where things are: this file holds the handler's [`Conn`] (with its direct write) and
//! [`build`], which wires a connection together; `sender.rs` the [`ConnSender`] other
//! goroutines queue replies with; `shared.rs` the [`ConnShared`] state, the server's
//! [`ConnCtl`] view of it and the [`Exit`] guard; `reader.rs` the [`ReadSide`] and the reader
//! goroutine, `handler.rs` the handler goroutine and `writer.rs` the writer (with the
//! [`Writers`] slot that starts it).

mod handler;
mod reader;
mod sender;
mod shared;
mod tls;
mod writer;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ServerShared;
use super::budget::{Limits, WriteBudget};
use super::error::Timeout;
use super::stats::CloseReason;
use super::stream::{Sock, SockWriter};
use crate::chan::{self, Receiver, RecvTimeoutError, SendError, Sender};
use crate::context::{self as gocontext, Context};
use crate::net::PeerAddr;
use crate::net::codec::Codec;
use crate::sync::Mutex as GoMutex;
use shared::Exit;
use writer::{Carry, WriteSide, encode};

pub(crate) use handler::HandlerTask;
use reader::{Next, ReadSide, ReaderTask, Stop};
pub use sender::ConnSender;
use shared::CtxCancel;
pub(crate) use shared::{ConnCtl, ConnShared};
pub(crate) use writer::{WriterTask, Writers};

/// What a handler returns: `Ok(())`, or an error that is logged (at debug level, with the
/// connection's id and peer) before the connection closes. `?` works on any error type.
pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The handler's type, as stored by the server.
pub(crate) type HandlerFn<C> = dyn Fn(&Conn<C>) -> HandlerResult + Send + Sync;

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
    /// The reader goroutine's queue, made when it starts; until then the handler reads
    /// inline (see the module docs).
    rx: OnceLock<Receiver<C::In>>,
    read: Arc<GoMutex<ReadSide<C>>>,
    /// Undecoded input was left buffered by the last inline `recv` (more replies coming).
    buffered: AtomicBool,
    tx: ConnSender<C::Out>,
    /// The writer's state, for replies the handler writes itself (see the module docs).
    out: Arc<GoMutex<WriteSide<C>>>,
    /// The handler goroutine's key (`Coroutine::running_key`) while its park hook starts the
    /// writer for a carry (see the module docs); 0 otherwise.
    handler_key: usize,
    /// The connection's context and its done channel, made at first use.
    ctx: OnceLock<(Context, Receiver<()>)>,
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
    /// The next frame, waiting for it; `None` at the end of the stream: the client is done
    /// (EOF, an error or timeout, or the server draining) and every decoded frame was
    /// received (Go's `v, ok := <-ch` with `ok == false`). [`recv_timeout`](Self::recv_timeout)
    /// answers the same, inside an `Ok`.
    pub fn recv(&self) -> Option<C::In> {
        match self.rx.get() {
            Some(rx) => {
                // Seen by the reader's idle check: the handler is waiting for input, not
                // working.
                self.sh.waiting.store(true, Ordering::Relaxed);
                let r = rx.recv().ok();
                self.sh.waiting.store(false, Ordering::Relaxed);
                r
            }
            None => self.recv_inline(None).unwrap_or(None),
        }
    }

    /// The next frame, waiting at most `timeout`: `Ok` with what [`recv`](Self::recv) would
    /// have answered (`Some(frame)`, or `None` at the end of the stream), or `Err(Timeout)`
    /// when the time is up first (the connection goes on).
    ///
    /// # Errors
    /// [`Timeout`] when no frame came and the stream did not end within `timeout`.
    ///
    /// # Examples
    /// A handler that greets a client who stays silent for 100 ms, echoes lines, and says
    /// goodbye at the end of the stream:
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::time::Duration;
    /// use goway::net::{Server, codec::LinesCodec};
    ///
    /// let server = Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .codec(LinesCodec::new())
    ///     .handler(|conn| loop {
    ///         match conn.recv_timeout(Duration::from_millis(100)) {
    ///             Ok(Some(line)) => conn.send(line)?,
    ///             Ok(None) => {
    ///                 conn.send(b"bye".to_vec())?;
    ///                 return Ok(());
    ///             }
    ///             Err(goway::net::server::Timeout) => conn.send(b"still there?".to_vec())?,
    ///         }
    ///     })
    ///     .bind()
    ///     .unwrap();
    /// let addr = server.local_addr().unwrap();
    /// let handle = server.handle();
    /// let serving = goway::go!(move || server.serve());
    ///
    /// let mut c = std::net::TcpStream::connect(addr).unwrap();
    /// let mut lines = BufReader::new(c.try_clone().unwrap()).lines();
    /// assert_eq!(lines.next().unwrap().unwrap(), "still there?");
    /// c.write_all(b"hi\n").unwrap();
    /// c.shutdown(std::net::Shutdown::Write).unwrap();
    /// let rest: Vec<String> = lines.map(Result::unwrap).collect();
    /// assert_eq!(rest.last().map(String::as_str), Some("bye"));
    /// assert!(rest.contains(&"hi".to_string()));
    ///
    /// handle.shutdown().unwrap();
    /// assert!(serving.join().unwrap().is_err()); // ServerClosed
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<C::In>, Timeout> {
        let Some(rx) = self.rx.get() else {
            return self.recv_inline(Some(Instant::now() + timeout));
        };
        self.sh.waiting.store(true, Ordering::Relaxed);
        let r = rx.recv_timeout(timeout);
        self.sh.waiting.store(false, Ordering::Relaxed);
        match r {
            Ok(frame) => Ok(Some(frame)),
            Err(RecvTimeoutError::Closed) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(Timeout),
        }
    }

    /// `recv` without a reader goroutine: the handler reads and decodes on its own goroutine
    /// (waiting at most until `until`).
    fn recv_inline(&self, until: Option<Instant>) -> Result<Option<C::In>, Timeout> {
        let mut rs = self.read.lock();
        if let Some(rx) = self.rx.get() {
            // A reader goroutine started while we waited for the read side: frames come
            // from it now.
            drop(rs);
            let Some(until) = until else {
                return Ok(self.recv());
            };
            let left = until.saturating_duration_since(Instant::now());
            return match rx.recv_timeout(left) {
                Ok(frame) => Ok(Some(frame)),
                Err(RecvTimeoutError::Closed) => Ok(None),
                Err(RecvTimeoutError::Timeout) => Err(Timeout),
            };
        }
        if rs.stopped {
            return Ok(None);
        }
        let sh = &*self.sh;
        sh.waiting.store(true, Ordering::Relaxed);
        // `waiting` stays set if the codec panics in `next`: the handler's panic handling
        // then knows the panic is the codec's (see `HandlerTask::run`).
        let r = rs.next(sh, &self.out, None, until);
        sh.waiting.store(false, Ordering::Relaxed);
        match r {
            Next::Frame(f) => {
                self.buffered.store(rs.buffered(), Ordering::Relaxed);
                Ok(Some(f))
            }
            Next::Timeout => {
                // The clocks run on while the handler is away; `next` allows for it.
                rs.left_waiting();
                Err(Timeout)
            }
            Next::Stop(stop) => {
                rs.stop(sh, stop);
                self.buffered.store(false, Ordering::Relaxed);
                Ok(None)
            }
        }
    }

    /// Starts the reader goroutine (once), which from then on reads for the handler and
    /// queues the frames on `in`; returns `in`'s receiving end.
    fn start_reader(&self) -> &Receiver<C::In> {
        self.rx.get_or_init(|| {
            let (tx, rx) = chan::bounded(self.sh.server.cfg.read_queue);
            self.spawn_reader(Some(tx));
            rx
        })
    }

    /// Starts a reader goroutine queueing frames on `tx` (`None`: discarding the input).
    fn spawn_reader(&self, tx: Option<Sender<C::In>>) {
        // The writer's linger waits for this reader to end (at most one reader is started).
        let (alive, alive_rx) = chan::bounded(0);
        let _ = self.sh.reader_alive.set(alive_rx);
        let task = ReaderTask {
            read: self.read.clone(),
            tx,
            out: self.out.clone(),
            sh: self.sh.clone(),
            _alive: alive,
        };
        if let Err(e) = crate::Builder::new().spawn(move || task.run()) {
            // The task was dropped, closing `in`: the handler sees the end of the stream.
            let sh = &self.sh;
            log::warn!(target: "goway::server", "conn {} {}: cannot start its reader: {e}; closing", sh.id, sh.peer);
            sh.abort(CloseReason::Refused);
            let mut rs = self.read.lock();
            if !rs.stopped {
                rs.stop(sh, Stop::Abort(CloseReason::Refused));
            }
        }
    }

    /// The handler returned: what the client still sends is read and dropped until it
    /// closes (the writer's linger), by a reader goroutine unless reading already ended.
    pub(super) fn finish_reading(&self) {
        if self.rx.get().is_some() {
            // The reader's sends fail once this `Conn` (the queue's receiver) is dropped.
            return;
        }
        let mut rs = self.read.lock();
        if rs.stopped {
            return;
        }
        rs.handler_gone(&self.sh);
        drop(rs);
        self.spawn_reader(None);
    }

    /// The channel of incoming frames, to use in a `select!` (with a timer, or the handler's
    /// own channels). It closes when the client is done.
    ///
    /// The first call starts a reader goroutine for the connection (see
    /// [`done`](Self::done)).
    pub fn incoming(&self) -> &Receiver<C::In> {
        self.start_reader()
    }

    /// Sends `frame` to the client: queued for the writer goroutine, waiting while the write
    /// queue is full (under [`WhenFull::Wait`](super::WhenFull::Wait); under `Disconnect` a
    /// reply past the limit closes the connection instead). When nothing is queued or being
    /// written, the reply is encoded on the handler's goroutine instead (same order, one hop
    /// less): written at once if no more input is waiting, as much as the socket takes, the
    /// rest being left to the writer, so `send` never waits for the client to read; held
    /// with the replies before it while a pipelined burst's next frames wait, so the burst's
    /// replies leave in one write (by the last of them, or by the writer as soon as the
    /// handler waits on anything else).
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

    /// Writes `frame` from the handler's goroutine if the writer is idle, or holds it in the
    /// write side's buffer while more input waits (see the module docs); hands it back
    /// (`Err`) to be queued otherwise.
    fn send_direct(&self, frame: C::Out) -> Result<Result<(), SendError<C::Out>>, C::Out> {
        let pending = &self.tx.pending;
        // Under TLS every reply goes through the writer, which encrypts. More than one
        // pending: frames are queued (beyond a carry of ours), and this one goes after them.
        if pending.load(Ordering::Acquire) > 1 || self.sh.tls.is_some() {
            return Err(frame);
        }
        let Some(mut out) = self.out.try_lock() else {
            return Err(frame);
        };
        let sh = &*self.sh;
        let flush_at = sh.server.cfg.write_buffer;
        // Under the mutex, `pending` counting nothing but the carry (if any) means every
        // frame queued before this one is written; the carry, in the buffer, goes first. A
        // carry as large as a writer's batch takes no more: the rest waits in the queue.
        let held = out.carry.is_some();
        if pending.load(Ordering::Acquire) != usize::from(held)
            || (held && out.buf.len() >= flush_at)
        {
            return Err(frame);
        }
        if sh.aborted.load(Ordering::Acquire) || self.tx.is_closed() {
            return Ok(Err(SendError(frame)));
        }
        // Counted in the byte bound until it is written, as a queued reply is.
        let budget = &*self.tx.budget;
        let n = self.tx.size_of(&frame);
        match budget.try_take(n) {
            Ok(true) => {}
            // Nothing else is pending, so this is rare (a sender racing in): queue it.
            Ok(false) => return Err(frame),
            Err(over) => {
                drop(out);
                sh.over_limit(over);
                return Ok(Err(SendError(frame)));
            }
        }
        let out = &mut *out;
        if !held {
            out.buf.clear();
        }
        if let Err(r) = encode(&mut out.codec, frame, &mut out.buf, sh) {
            budget.give_back(n);
            sh.abort(r);
            return Ok(Ok(()));
        }
        if let Some(c) = &mut out.carry {
            c.bytes += n;
            c.frames += 1;
        }
        // More input waiting means more replies: hold this one, so they leave together
        // (written by the handler's last reply of the burst, or else by the writer, woken
        // for the carry now). Held replies stay below the writer's buffer size and below
        // half the output limit: holding them is the server's choice, and must not count
        // as output the client left unread.
        let more = match self.rx.get() {
            Some(rx) => !rx.is_empty(),
            None => self.buffered.load(Ordering::Relaxed),
        };
        let held_bytes = out.carry.map_or(n, |c| c.bytes);
        if more
            && out.buf.len() < flush_at
            && held_bytes < budget.hold_limit()
            && (held || self.carry(out, n, 1, true))
        {
            return Ok(Ok(()));
        }
        // Write the buffer now: what the socket takes. The rest (the client is not reading
        // fast enough, or the socket failed) goes to the writer, which waits for the client
        // or meets the error.
        let sent = out.wr.write_now(&sh.sock, &out.buf);
        sh.server
            .stats
            .bytes_out
            .fetch_add(sent as u64, Ordering::Relaxed);
        out.buf.drain(..sent);
        if !out.buf.is_empty() {
            // The rest is not held by choice: a writer waits for the client at once.
            if out.carry.is_some() {
                self.tx.writer.held(true);
                return Ok(Ok(()));
            }
            if self.carry(out, n, 1, false) {
                return Ok(Ok(()));
            }
        }
        // Everything went (or the writer cannot be woken for the rest: finish here).
        let (bytes, frames) = match out.carry.take() {
            Some(c) => {
                self.tx.writer.released();
                pending.fetch_sub(1, Ordering::AcqRel);
                (c.bytes, c.frames)
            }
            None => (n, 1),
        };
        let r = out.write(sh, frames);
        budget.give_back(bytes);
        if let Err(r) = r {
            // The connection is over; the handler learns it at its next `recv` or `send`.
            sh.abort(r);
        }
        Ok(Ok(()))
    }

    /// Leaves the buffer (`frames` replies, `bytes` in the byte bound) to the writer as a
    /// carry, counted in `pending`. Replies `held` by choice are written by the writer if the
    /// handler's goroutine parks before it writes them (its park hook starts a writer then);
    /// otherwise (the rest of a write the socket did not take, or a caller that is not the
    /// handler's goroutine) a writer starts at once. `false` once the connection is closing
    /// (no writer may come).
    fn carry(&self, out: &mut WriteSide<C>, bytes: usize, frames: u64, held: bool) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        out.carry = Some(Carry { bytes, frames });
        self.tx.pending.fetch_add(1, Ordering::AcqRel);
        let hooked = held
            && self.handler_key != 0
            && may::coroutine::Coroutine::running_key() == Some(self.handler_key);
        self.tx.writer.held(!hooked);
        true
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
    ///
    /// The first call (or one of [`incoming`](Self::incoming) or
    /// [`context`](Self::context)) starts a reader goroutine for the connection, which reads
    /// on while the handler is busy, so that a client that leaves is noticed (Go's net/http
    /// does the same background read); without it the handler reads the input itself, inside
    /// `recv`.
    pub fn done(&self) -> &Receiver<()> {
        self.start_reader();
        &self.ctx().1
    }

    /// The connection's context: a child of the server's (see
    /// [`Builder::context`](super::Builder::context)), cancelled when the connection starts
    /// closing, or when the server's context is. Hand it to work done for this client.
    ///
    /// The first call starts a reader goroutine for the connection (see
    /// [`done`](Self::done)).
    pub fn context(&self) -> &Context {
        self.start_reader();
        &self.ctx().0
    }

    /// The context and its done channel, made now if not yet: a child of the server's,
    /// cancelled at once if the connection already started closing.
    fn ctx(&self) -> &(Context, Receiver<()>) {
        self.ctx.get_or_init(|| {
            let (ctx, cancel) = gocontext::with_cancel(&self.sh.server.ctx);
            let done = ctx.done();
            let mut slot = self.sh.cancel.lock();
            if let CtxCancel::Cancelled = *slot {
                drop(slot);
                cancel.cancel();
            } else {
                *slot = CtxCancel::Made(cancel);
            }
            (ctx, done)
        })
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

/// Everything needed to start one connection's handler goroutine (the writer starts when
/// there is something to write, the reader when the handler asks for it, or for TLS).
pub(crate) struct Parts<C: Codec> {
    pub(crate) handler: HandlerTask<C>,
    pub(crate) shared: Arc<ConnShared<C::Out>>,
}

/// Builds a connection: channels, shared state, three tasks with their exit guards (the
/// writer's parked in its [`Writers`]). The caller registers `shared` and spawns the reader
/// and the handler; a task dropped unspawned still accounts its exit (and a handler that never
/// runs leaves the writer's task to be dropped with the last sender).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build<C: Codec>(
    id: u64,
    peer: PeerAddr,
    sock: Sock,
    codec: &C,
    handler: Arc<HandlerFn<C>>,
    server: Arc<ServerShared>,
    alive: Sender<()>,
    tls: Option<rustls::ServerConnection>,
) -> Parts<C> {
    let cfg = &server.cfg;
    let (out_tx, out_rx) = chan::bounded(cfg.write_queue);
    let budget = Arc::new(WriteBudget::new(Limits::new(cfg)));
    let shared = Arc::new(ConnShared {
        id,
        peer,
        sock,
        out_tx: out_tx.clone(),
        budget: budget.clone(),
        cancel: Mutex::new(CtxCancel::NotMade),
        reason: AtomicU8::new(0),
        draining: AtomicBool::new(false),
        partial: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
        waiting: AtomicBool::new(false),
        replied: AtomicBool::new(false),
        error_reply: Mutex::new(None),
        running: AtomicU8::new(3),
        reader_alive: OnceLock::new(),
        server: server.clone(),
        _alive: alive,
        tls: tls.map(|c| Box::new(parking_lot::Mutex::new(c))),
    });
    server
        .stats
        .goroutines
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let exit = |goroutine| Exit(shared.clone(), goroutine);
    let pending = Arc::new(AtomicUsize::new(0));
    let mut out_codec = codec.clone();
    out_codec.set_max_frame(cfg.max_frame);
    let out = Arc::new(GoMutex::new(WriteSide {
        wr: SockWriter::new(cfg.write_timeout),
        codec: out_codec,
        buf: Vec::new(),
        carry: None,
        tls_buf: Vec::new(),
    }));
    let writers = Writers::new(WriterTask {
        out: out.clone(),
        pending: pending.clone(),
        budget: budget.clone(),
        rx: out_rx,
        exit: exit(false),
    });
    let read = ReadSide::new(codec.clone(), cfg, exit(false));
    let parts = Parts {
        handler: HandlerTask {
            conn: Conn {
                rx: OnceLock::new(),
                read: Arc::new(GoMutex::new(read)),
                buffered: AtomicBool::new(false),
                tx: ConnSender {
                    tx: out_tx,
                    pending,
                    budget,
                    size: C::encoded_len,
                    conn: Arc::downgrade(&shared),
                    id,
                    writer: writers,
                },
                out,
                handler_key: 0,
                ctx: OnceLock::new(),
                sh: shared.clone(),
            },
            handler,
            codec: codec.clone(),
            exit: exit(true),
        },
        shared,
    };
    if parts.shared.tls.is_some() {
        // TLS keeps its reader goroutine from the start (the handshake, records).
        parts.handler.conn.start_reader();
    }
    parts
}

/// The close reason for a socket error.
pub(super) fn io_reason(e: &io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::NotConnected => CloseReason::PeerReset,
        io::ErrorKind::TimedOut => CloseReason::WriteTimeout,
        _ => CloseReason::Io,
    }
}
