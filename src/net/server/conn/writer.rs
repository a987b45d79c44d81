//! The writer goroutine: takes every reply queued at the moment, encodes them into one
//! buffer and writes it with one call; then FIN and the linger. [`WriteSide`] is what writing
//! takes, shared with the handler's direct writes. The writer runs only while it has work
//! ([`Writers`]): an idle connection holds no writer goroutine.

use std::io::Write as _;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use super::io_reason;
use super::shared::{ConnCtl, ConnShared, Exit};
use crate::chan::{self, Receiver, Sender, TryRecvError};
use crate::net::codec::Codec;
use crate::net::server::LINGER;
use crate::net::server::budget::WriteBudget;
use crate::net::server::stats::CloseReason;
use crate::net::server::stream::SockWriter;
use crate::sync::Mutex as GoMutex;

/// Most frames the writer takes from its queue under one lock.
const WRITE_BATCH: usize = 64;

pub(crate) struct WriterTask<C: Codec> {
    pub(super) out: Arc<GoMutex<WriteSide<C>>>,
    pub(super) pending: Arc<AtomicUsize>,
    pub(super) budget: Arc<WriteBudget>,
    pub(super) rx: Receiver<C::Out>,
    pub(super) exit: Exit<C::Out>,
}

/// What writing to the client takes: the codec, a buffer, the socket's writer. Used by the
/// writer goroutine, or by the handler while the writer is idle (see the module docs).
pub(crate) struct WriteSide<C: Codec> {
    pub(super) wr: SockWriter,
    pub(super) codec: C,
    pub(super) buf: Vec<u8>,
    /// Replies the handler left in `buf` for the writer: held while more input was waiting,
    /// or the rest of a write the socket did not take. Counted once in `pending`.
    pub(super) carry: Option<Carry>,
    /// TLS records to write (empty without TLS).
    pub(super) tls_buf: Vec<u8>,
}

/// What a carry in [`WriteSide::buf`] holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Carry {
    /// Its replies' sizes in the byte bound.
    pub(super) bytes: usize,
    /// How many replies (for `frames_out`).
    pub(super) frames: u64,
}

impl<C: Codec> WriteSide<C> {
    /// Writes the buffer (`frames` encoded frames) and empties it.
    pub(super) fn write(
        &mut self,
        sh: &ConnShared<C::Out>,
        frames: u64,
    ) -> Result<(), CloseReason> {
        let r = match &sh.tls {
            None => self
                .wr
                .write_all(&sh.sock, &self.buf)
                .map(|()| self.buf.len()),
            Some(tls) => self.encrypt_and_write(sh, tls),
        };
        let wrote = match r {
            Ok(n) => n,
            Err(e) => {
                log::debug!(target: "goway::server", "conn {} {}: write: {e}", sh.id, sh.peer);
                return Err(io_reason(&e));
            }
        };
        let stats = &sh.server.stats;
        stats.frames_out.fetch_add(frames, Ordering::Relaxed);
        stats.bytes_out.fetch_add(wrote as u64, Ordering::Relaxed);
        if !sh.replied.load(Ordering::Relaxed) {
            sh.replied.store(true, Ordering::Release);
        }
        self.buf.clear();
        if self.buf.capacity() > sh.server.cfg.write_buffer.max(64 << 10) {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Encrypts the buffer into TLS records (with anything else rustls queued, in order) and
    /// writes them; returns the bytes written.
    fn encrypt_and_write(
        &mut self,
        sh: &ConnShared<C::Out>,
        tls: &super::tls::Session,
    ) -> std::io::Result<usize> {
        {
            let mut c = tls.lock();
            let mut src = &self.buf[..];
            while !src.is_empty() {
                let n = std::io::Write::write(&mut c.writer(), src)?;
                src = &src[n..];
                let queued = c.wants_write();
                while c.wants_write() {
                    c.write_tls(&mut self.tls_buf)?;
                }
                if n == 0 && !queued {
                    // Before the handshake ends rustls holds a bounded amount of plaintext.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::WriteZero,
                        "tls: too much output before the handshake completed",
                    ));
                }
            }
        }
        self.send_tls_buf(sh)
    }

    /// Writes the TLS records in `tls_buf` and empties it.
    fn send_tls_buf(&mut self, sh: &ConnShared<C::Out>) -> std::io::Result<usize> {
        let len = self.tls_buf.len();
        let r = self.wr.write_all(&sh.sock, &self.tls_buf);
        self.tls_buf.clear();
        if self.tls_buf.capacity() > sh.server.cfg.write_buffer.max(64 << 10) {
            self.tls_buf = Vec::new();
        }
        r.map(|()| len)
    }

    /// Sends what rustls has queued on its own (handshake messages, alerts, close_notify).
    /// Nothing without TLS.
    pub(super) fn tls_flush(&mut self, sh: &ConnShared<C::Out>) -> std::io::Result<()> {
        let Some(tls) = &sh.tls else { return Ok(()) };
        {
            let mut c = tls.lock();
            while c.wants_write() {
                c.write_tls(&mut self.tls_buf)?;
            }
        }
        if self.tls_buf.is_empty() {
            return Ok(());
        }
        let n = self.send_tls_buf(sh)?;
        sh.server
            .stats
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Writes bytes that are not frames (the codec's error reply), encrypted under TLS.
    fn write_extra(&mut self, sh: &ConnShared<C::Out>, bytes: &[u8]) -> std::io::Result<()> {
        match &sh.tls {
            None => self.wr.write_all(&sh.sock, bytes),
            Some(tls) => {
                tls.lock().writer().write_all(bytes)?;
                self.tls_flush(sh)
            }
        }
    }
}

/// Encodes one reply; a codec that cannot encode it closes the connection. A codec that
/// fails or panics part-way leaves nothing of the reply in `buf`: replies encoded before it
/// (a carry the handler held) may still be written, and must not be followed by a fragment.
pub(super) fn encode<C: Codec>(
    codec: &mut C,
    f: C::Out,
    buf: &mut Vec<u8>,
    sh: &ConnShared<C::Out>,
) -> Result<(), CloseReason> {
    let mut keep = Rollback {
        len: buf.len(),
        buf,
        done: false,
    };
    let r = codec.encode(f, keep.buf);
    keep.done = r.is_ok();
    r.map_err(|e| {
        log::error!(target: "goway::server", "conn {} {}: cannot encode reply: {e}; closing", sh.id, sh.peer);
        CloseReason::EncodeError
    })
}

/// Cuts `buf` back to `len` when dropped before `done` (an encode that failed or panicked).
struct Rollback<'a> {
    buf: &'a mut Vec<u8>,
    len: usize,
    done: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.buf.truncate(self.len);
        }
    }
}

/// Starts the writer when there is work for it (see the module docs of `conn`, "The writer
/// runs only while it has work"). Type-erased for [`ConnSender`](super::ConnSender), which
/// does not know the codec.
pub(crate) trait Kick: Send + Sync {
    /// Something was queued (or the queue was closed): make sure a writer runs.
    fn kick(&self);
    /// A sender is about to wait in a send on the queue: a writer must take from the queue
    /// until [`unblocked`](Self::unblocked), even when it looks empty (an unbuffered queue
    /// holds nothing until a receiver waits).
    fn blocked(&self);
    /// The send announced by [`blocked`](Self::blocked) returned; kicks as well.
    fn unblocked(&self);
    /// The handler returned (the queue is closed): runs the writer's end on this goroutine,
    /// unless a writer goroutine is running (it will see the closed queue and end).
    fn finish(&self);
    /// A carry was left in the write side's buffer (set under its mutex): a writer must write
    /// it unless the handler does first. `now`: start one at once; else the handler's
    /// goroutine starts one when it parks ([`parking`](Self::parking)).
    fn held(&self, now: bool);
    /// The carry was taken out of the buffer (under its mutex), to be written.
    fn released(&self);
    /// The handler's goroutine is about to park (its park hook): a carry it left must not
    /// wait for it to come back, so a writer starts for it.
    fn parking(&self);
}

/// The writer's task while no writer goroutine runs, and who is running.
pub(crate) struct Writers<C: Codec> {
    /// The task, here while `running` is false (and gone once the writer ended for good).
    task: parking_lot::Mutex<Option<WriterTask<C>>>,
    /// A writer goroutine runs (or is being started), or the writer ended for good.
    running: AtomicBool,
    /// Senders waiting (or about to wait) in a send on the queue.
    waiting: AtomicUsize,
    /// A carry is in the write side's buffer (changed with it, under its mutex).
    carry: AtomicBool,
    /// Wakes a writer waiting for a blocked sender's frame ([`WriterTask::next`]) when there
    /// is something else to look at: the sender gave up, or a carry came. A token left while
    /// no writer waits stays (capacity 1), so a writer about to wait sees it. Made by the
    /// first sender that blocks.
    nudge: OnceLock<(Sender<()>, Receiver<()>)>,
    /// The queue, to look for work after parking.
    rx: Receiver<C::Out>,
    me: Weak<Writers<C>>,
}

impl<C: Codec> Writers<C> {
    pub(super) fn new(task: WriterTask<C>) -> Arc<Self> {
        let rx = task.rx.clone();
        Arc::new_cyclic(|me| Writers {
            task: parking_lot::Mutex::new(Some(task)),
            running: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            carry: AtomicBool::new(false),
            nudge: OnceLock::new(),
            rx,
            me: me.clone(),
        })
    }

    /// Claims the right to run the writer: the task if no writer runs.
    fn claim(&self) -> Option<WriterTask<C>> {
        if self.running.load(Ordering::SeqCst) || self.running.swap(true, Ordering::SeqCst) {
            return None;
        }
        // `running` was false, so the task is in its slot (or the writer ended for good).
        self.task.lock().take()
    }

    /// Work a parked writer must not leave behind: frames queued, a carry, a sender waiting,
    /// or the queue closed (the end to write).
    fn has_work(&self) -> bool {
        !self.rx.is_empty()
            || self.carry.load(Ordering::SeqCst)
            || self.rx.is_closed()
            || self.waiting.load(Ordering::SeqCst) > 0
    }

    /// Wakes a writer waiting for a blocked sender's frame, if one may wait (see `nudge`).
    fn nudge(&self) {
        if let Some((tx, _)) = self.nudge.get() {
            let _ = tx.try_send(());
        }
    }

    /// The handler's goroutine parks with a carry: start a writer for it, or wake the one
    /// waiting for a blocked sender. Out of line: an idle handler's park stays shallow.
    #[cold]
    #[inline(never)]
    fn carry_parked(&self) {
        self.kick();
        self.nudge();
    }

    /// A writer goroutine: writes until the queue is empty, then parks the task and ends,
    /// unless work came meanwhile.
    fn run_spawned(&self, mut task: WriterTask<C>) {
        let sh = task.exit.0.clone();
        let _count = GoroutineCount::new(&sh);
        loop {
            if !task.run(self) {
                return;
            }
            // Park: the task back first, then `running` false, then one more look. A sender
            // that queued before this store finds `running` true and relies on this look; one
            // that queues after it finds `running` false and starts a writer itself.
            *self.task.lock() = Some(task);
            self.running.store(false, Ordering::SeqCst);
            if !self.has_work() {
                return;
            }
            match self.claim() {
                Some(t) => task = t,
                // Another writer started (or the end came): it has the work.
                None => return,
            }
        }
    }
}

impl<C: Codec> Kick for Writers<C> {
    fn kick(&self) {
        let Some(task) = self.claim() else { return };
        let Some(me) = self.me.upgrade() else { return };
        let sh = task.exit.0.clone();
        if let Err(e) = crate::Builder::new().spawn(move || me.run_spawned(task)) {
            // The task was dropped with its exit guard: the writer is gone for good, and so
            // is the connection.
            log::warn!(target: "goway::server", "conn {} {}: cannot start its writer: {e}; closing", sh.id, sh.peer);
            sh.abort(CloseReason::Refused);
        }
    }

    fn blocked(&self) {
        self.nudge.get_or_init(|| chan::bounded(1));
        self.waiting.fetch_add(1, Ordering::SeqCst);
        self.kick();
    }

    fn unblocked(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // A writer waiting for this sender's frame must not wait on if the send gave up.
        self.nudge();
        self.kick();
    }

    fn finish(&self) {
        if let Some(mut task) = self.claim() {
            // The queue is closed: `run` ends the connection's output and returns false.
            while task.run(self) {}
        }
    }

    fn held(&self, now: bool) {
        // Sequentially consistent, as `running`: a writer parking after this store sees it
        // in its last look, or this goroutine's `kick` (now or at its park) sees `running`
        // false and starts one.
        self.carry.store(true, Ordering::SeqCst);
        if now {
            self.kick();
        }
        // A writer waiting for a blocked sender's frame looks at the carry.
        self.nudge();
    }

    fn released(&self) {
        self.carry.store(false, Ordering::SeqCst);
    }

    fn parking(&self) {
        if self.carry.load(Ordering::SeqCst) {
            self.carry_parked();
        }
    }
}

/// Counts a writer (or reader) goroutine in the server's `goroutines` gauge while it lives.
pub(super) struct GoroutineCount<'a, O: Send + 'static>(&'a ConnShared<O>);

impl<'a, O: Send + 'static> GoroutineCount<'a, O> {
    pub(super) fn new(sh: &'a ConnShared<O>) -> Self {
        sh.server.stats.goroutines.fetch_add(1, Ordering::Relaxed);
        GoroutineCount(sh)
    }
}

impl<O: Send + 'static> Drop for GoroutineCount<'_, O> {
    fn drop(&mut self) {
        self.0
            .server
            .stats
            .goroutines
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the writer stopped writing.
enum Drained {
    /// The queue is empty and open: park.
    Idle,
    /// The queue is closed and empty: end the output.
    Closed,
}

impl<C: Codec> WriterTask<C> {
    /// Writes what is queued. `true`: the queue is empty, park the task; `false`: the writer
    /// ended for good (the caller drops the task, and its exit guard with it).
    fn run(&mut self, w: &Writers<C>) -> bool {
        let sh = self.exit.0.clone();
        match self.write_loop(w) {
            Ok(Drained::Idle) => return true,
            Err(r) => sh.abort(r),
            Ok(Drained::Closed) if sh.aborted.load(Ordering::Acquire) => {}
            Ok(Drained::Closed) => {
                // Graceful end: the codec's error reply if any, then FIN, then give the
                // client a moment to read and close before we stop reading.
                let reply = sh.error_reply.lock().take();
                if let Some(reply) = reply {
                    let _ = self.out.lock().write_extra(&sh, &reply);
                }
                if let Some(tls) = &sh.tls {
                    // The end of the session, then of the stream.
                    tls.lock().send_close_notify();
                    let _ = self.out.lock().tls_flush(&sh);
                }
                sh.sock.shutdown(Shutdown::Write);
                // A reader goroutine discarding the client's input (see the handler's end);
                // inline reading has ended already.
                if let Some(alive) = sh.reader_alive.get() {
                    let _ = alive.recv_timeout(LINGER);
                }
                sh.sock.shutdown(Shutdown::Read);
            }
        }
        // Ended for good: nothing kicks a writer any more (`running` stays true), and the
        // exit guard drops with the task.
        w.running.store(true, Ordering::SeqCst);
        false
    }

    /// The next frame; `Ok(None)` for a carry to write first (the queue being empty or
    /// closed); `Idle` when there is nothing, `Closed` when the queue is closed and empty.
    /// Waits only while a sender is waiting to hand one over, and looks again when nudged
    /// (the sender gave up, or a carry came: see [`Writers`]' `nudge`).
    fn next(&self, w: &Writers<C>) -> Result<Option<C::Out>, Drained> {
        loop {
            match self.rx.try_recv() {
                Ok(f) => return Ok(Some(f)),
                Err(_) if w.carry.load(Ordering::SeqCst) => return Ok(None),
                Err(TryRecvError::Closed) => return Err(Drained::Closed),
                Err(TryRecvError::Empty) if w.waiting.load(Ordering::SeqCst) > 0 => {
                    // A closed queue is not the end here: the loop looks for a carry first.
                    // (The nudge channel is made before `waiting` is raised.)
                    let Some((_, nudge)) = w.nudge.get() else {
                        match self.rx.recv() {
                            Ok(f) => return Ok(Some(f)),
                            Err(_) => continue,
                        }
                    };
                    crate::select! {
                        recv(self.rx) -> f => match f {
                            Ok(f) => return Ok(Some(f)),
                            Err(_) => continue,
                        },
                        recv(nudge) -> _ => continue,
                    }
                }
                Err(TryRecvError::Empty) => return Err(Drained::Idle),
            }
        }
    }

    fn write_loop(&mut self, w: &Writers<C>) -> Result<Drained, CloseReason> {
        let sh = self.exit.0.clone();
        let flush_at = sh.server.cfg.write_buffer;
        let mut batch: Vec<C::Out> = Vec::new();
        // Take a frame; then every frame queued right now (under one lock of the queue) into
        // one buffer and write it with one call: the queue being momentarily empty is the
        // flush signal.
        loop {
            let first = match self.next(w) {
                Ok(f) => f,
                Err(d) => return Ok(d),
            };
            if sh.aborted.load(Ordering::Acquire) {
                return Ok(Drained::Closed);
            }
            // Waits while the handler writes a reply itself.
            let mut out = self.out.lock();
            let out = &mut *out;
            // What the handler left in the buffer goes first (we came for it, or it came
            // just before this frame).
            match out.carry.take() {
                Some(carry) => {
                    w.released();
                    let r = out.write(&sh, carry.frames);
                    self.budget.give_back(carry.bytes);
                    self.pending.fetch_sub(1, Ordering::AcqRel);
                    r?;
                }
                // The handler wrote it first (and cleared the flag, as here: both change
                // only under this mutex).
                None if first.is_none() => w.released(),
                None => {}
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
                for f in batch.drain(..) {
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
    }
}
