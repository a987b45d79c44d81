//! One connection in the article's shape: a reader, a handler and a writer goroutine joined
//! by two bounded channels (`in`: reader → handler, `out`: handler → writer). The writer runs
//! only while it has work, so an idle connection holds two goroutines.
//!
//! Invariants:
//! - Each part (the reader and handler goroutines, the writer's task) holds an [`Exit`] guard;
//!   the last one to exit removes the connection from the server's registry and counts its
//!   close, once, with the first recorded reason.
//! - The writer runs only while it has work ([`Writers`]). Its task (queue receiver, exit
//!   guard) sits in a slot while no writer goroutine runs; `running` is false exactly while
//!   it is there. Whoever queues on `out` (a frame, or the `None` of a carry) then calls
//!   `kick`, which claims the task (`running` false → true) and starts a writer goroutine
//!   with it. A writer that finds `out` empty puts the task back, sets `running` false, and
//!   looks once more (`out` not empty, closed, or a sender waiting): if there is work and it
//!   wins the claim again, it goes on; else it ends. With `running` and the queue's lock
//!   both sequentially consistent, a frame queued at any moment is seen either by the
//!   sender's `kick` (`running` false: it starts a writer) or by the writer's last look
//!   (the sender saw `running` true before the writer cleared it), so no frame is left
//!   without a writer. A sender about to wait in a send on a full (or unbuffered) queue
//!   counts itself in `waiting` and kicks first; a writer that finds the queue empty while
//!   `waiting` is not zero waits for the frame instead of ending. Frames are written in
//!   queue order by one writer at a time (the task is in one place), so order holds across
//!   writer restarts.
//! - The writer's end (error reply, FIN, linger) is the last run of its task: when the
//!   handler returns it closes `out` and calls `finish`, which runs the task on the handler's
//!   own goroutine unless a writer goroutine runs (which then meets the closed queue itself).
//!   A writer that ends for good leaves `running` true, so nothing starts another.
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
//!
//! Where things are: this file holds the handler's [`Conn`] (with its direct write) and
//! [`build`], which wires a connection together; `sender.rs` the [`ConnSender`] other
//! goroutines queue replies with; `shared.rs` the [`ConnShared`] state, the server's
//! [`ConnCtl`] view of it and the [`Exit`] guard; `reader.rs`, `handler.rs` and `writer.rs`
//! the three goroutines (`writer.rs` also the [`Writers`] slot that starts the writer).

mod handler;
mod reader;
mod sender;
mod shared;
mod tls;
mod writer;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

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
use writer::{WriteSide, encode};

pub(crate) use handler::HandlerTask;
pub(crate) use reader::ReaderTask;
pub use sender::ConnSender;
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
    /// The next frame, waiting for it; `None` at the end of the stream: the client is done
    /// (EOF, an error or timeout, or the server draining) and every decoded frame was
    /// received (Go's `v, ok := <-ch` with `ok == false`). [`recv_timeout`](Self::recv_timeout)
    /// answers the same, inside an `Ok`.
    pub fn recv(&self) -> Option<C::In> {
        // Seen by the reader's idle check: the handler is waiting for input, not working.
        self.sh.waiting.store(true, Ordering::Relaxed);
        let r = self.rx.recv().ok();
        self.sh.waiting.store(false, Ordering::Relaxed);
        r
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
        self.sh.waiting.store(true, Ordering::Relaxed);
        let r = self.rx.recv_timeout(timeout);
        self.sh.waiting.store(false, Ordering::Relaxed);
        match r {
            Ok(frame) => Ok(Some(frame)),
            Err(RecvTimeoutError::Closed) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(Timeout),
        }
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
        // Under TLS every reply goes through the writer, which encrypts.
        if pending.load(Ordering::Acquire) != 0 || !self.rx.is_empty() || self.sh.tls.is_some() {
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
                self.tx.writer.kick();
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

/// Everything needed to start one connection's goroutines (the writer starts when there is
/// something to write).
pub(crate) struct Parts<C: Codec> {
    pub(crate) reader: ReaderTask<C>,
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
        tls: tls.map(parking_lot::Mutex::new),
    });
    server
        .stats
        .goroutines
        .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
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
        reader_alive: reader_alive_rx,
        exit: exit(false),
    });
    Parts {
        reader: ReaderTask {
            codec: codec.clone(),
            tx: in_tx,
            _alive: reader_alive_tx,
            out: out.clone(),
            exit: exit(true),
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
                    writer: writers,
                },
                out,
                ctx,
                done: done_rx,
                sh: shared.clone(),
            },
            handler,
            codec: codec.clone(),
            exit: exit(true),
        },
        shared,
    }
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
