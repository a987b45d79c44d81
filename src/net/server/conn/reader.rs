//! Reading and decoding a connection's input, under the frame and idle clocks: the
//! [`ReadSide`], run by the handler itself inside `recv` (inline), or by a reader goroutine
//! ([`ReaderTask`]) once one is started, which queues each frame for the handler.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::io_reason;
use super::shared::{ConnCtl, ConnShared, Exit};
use super::tls::{self, Fail, Fed};
use super::writer::{GoroutineCount, WriteSide};
use crate::chan::{Sender, TrySendError};
use crate::net::codec::{Codec, DecodeError};
use crate::net::ready::ReadGate;
use crate::net::server::config::Effective;
use crate::net::server::stats::CloseReason;
use crate::net::server::stream::{READ_BUF_START, Wakeup, give_read_buf, take_read_buf};
use crate::sync::Mutex as GoMutex;

/// How much more than `max_frame` the reader buffers for one undecoded frame before giving up
/// on a codec that does not check sizes itself.
const FRAME_SLACK: usize = 64 << 10;

/// What reading takes: the codec, the buffered input and its clocks. Behind a goroutine mutex
/// shared by the handler's [`Conn`](super::Conn) (which reads inline while no reader goroutine
/// runs) and the [`ReaderTask`]; whoever holds the mutex is the only one waiting on the socket.
pub(crate) struct ReadSide<C: Codec> {
    codec: C,
    st: ReadState,
    lim: ReadLimits,
    /// Ends a wait for input when its deadline passes (one timer for the connection); made
    /// at the first wait.
    wakeup: Option<Wakeup>,
    /// Reading ended (its reason recorded): no more frames.
    pub(super) stopped: bool,
    /// The reading part's exit guard, dropped when reading ends (or taken by the reader
    /// goroutine, which drops it when it ends).
    exit: Option<Exit<C::Out>>,
}

/// What [`ReadSide::next`] found.
pub(super) enum Next<F> {
    Frame(F),
    /// Reading must stop (the caller calls [`ReadSide::stop`]).
    Stop(Stop),
    /// The caller's own deadline passed first; nothing is lost.
    Timeout,
}

/// How reading stopped.
pub(super) enum Stop {
    /// Close gracefully: the handler finishes the frames received, the writer writes.
    Close(CloseReason),
    /// The socket is unusable: abort the connection.
    Abort(CloseReason),
}

impl<C: Codec> ReadSide<C> {
    pub(super) fn new(mut codec: C, cfg: &Effective, exit: Exit<C::Out>) -> Self {
        let lim = ReadLimits::new(cfg);
        codec.set_max_frame(lim.max_frame);
        ReadSide {
            codec,
            st: ReadState::new(),
            lim,
            wakeup: None,
            stopped: false,
            exit: Some(exit),
        }
    }

    /// Undecoded input is buffered (maybe only part of a frame).
    #[inline]
    pub(super) fn buffered(&self) -> bool {
        self.st.start < self.st.end
    }

    /// The consumer of the last frame kept it a while (the handler worked on it, or the
    /// reader waited for room in the handler's queue): the clocks restart after it.
    #[inline]
    pub(super) fn held_up(&mut self) {
        self.st.held = true;
    }

    /// A reader goroutine takes over from the handler. Frames the handler took from the last
    /// read were each worked on before it asked for the next (it held the reading up), so the
    /// clocks restart when that read's frames are out, not at the read: a frame whose rest
    /// is still to come gets its whole `frame_timeout` from then.
    pub(super) fn hand_over(&mut self) {
        if self.st.got > 0 {
            self.st.held = true;
        }
    }

    /// The handler's inline `recv` ran out of time and the handler goes back to its own work:
    /// nobody reads until its next `recv`, or until a reader goroutine takes over. See
    /// [`next`](Self::next) for what that changes to the clocks.
    pub(super) fn left_waiting(&mut self) {
        self.st.away = true;
    }

    /// Nobody will handle more frames: input is read and dropped until the client closes.
    pub(super) fn handler_gone<O: Send + 'static>(&mut self, sh: &ConnShared<O>) {
        self.count_frames(sh);
        self.st.handler_gone = true;
        (self.st.start, self.st.end) = (0, 0);
    }

    /// Reading ended for `stop`: records the reason, then lets go of the reading part's exit
    /// guard.
    pub(super) fn stop(&mut self, sh: &ConnShared<C::Out>, stop: Stop) {
        self.count_frames(sh);
        // Recorded before the handler can learn of the end: its own reason must not win.
        match stop {
            Stop::Close(r) => {
                sh.set_reason(r);
                sh.cancel_ctx();
            }
            Stop::Abort(r) => sh.abort(r),
        }
        self.stopped = true;
        self.exit = None;
        if !self.st.buf.is_empty() {
            give_read_buf(std::mem::take(&mut self.st.buf));
        }
    }

    /// Adds the frames decoded since the last count to the server's stats.
    fn count_frames<O: Send + 'static>(&mut self, sh: &ConnShared<O>) {
        let got = std::mem::take(&mut self.st.uncounted);
        if got > 0 {
            sh.server.stats.frames_in.fetch_add(got, Ordering::Relaxed);
        }
    }

    /// The next frame: decoded from the buffered input, else read (waiting for the socket
    /// under the frame or idle deadline, and `until`). `queued`: the reader goroutine's queue
    /// to the handler (`None` inline), for the idle check.
    ///
    /// Each pass that reads: [`deadline`](Self::deadline) (1), [`wait_for_input`] when the
    /// socket is known to be empty (2), [`make_room`](Self::make_room) (3), [`read_some`]
    /// (4); then the frames it brought in are decoded one per call (5), and once they run
    /// out [`restart_clocks`] (6).
    ///
    /// After an inline `Timeout` ([`left_waiting`](Self::left_waiting)) nobody read while the
    /// handler was away, so a deadline found passed on the first pass may have passed with the
    /// client's input waiting in the socket, or with the handler busy: neither is the client's
    /// doing. The frame deadline then first reads what the socket holds (as a reader goroutine
    /// would have while the handler worked), and only a frame still incomplete once the socket
    /// is empty is timed out; the idle deadline restarts the idle clock (the handler was not
    /// waiting for input, as a reader goroutine's idle check would have found).
    pub(super) fn next(
        &mut self,
        sh: &ConnShared<C::Out>,
        out: &GoMutex<WriteSide<C>>,
        queued: Option<&Sender<C::In>>,
        until: Option<Instant>,
    ) -> Next<C::In> {
        let mut looked = false;
        let mut away = std::mem::take(&mut self.st.away);
        loop {
            let st = &mut self.st;
            if st.start < st.end && !st.handler_gone {
                match self.codec.decode(&st.buf[st.start..st.end]) {
                    Ok(Some((frame, used))) => {
                        st.start += used;
                        st.got += 1;
                        st.uncounted += 1;
                        if st.start == st.end {
                            // The read's last frame: counted now (the rest at the clocks'
                            // restart), one atomic add per read.
                            self.count_frames(sh);
                        }
                        return Next::Frame(frame);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let stop = self.protocol_error(sh, e);
                        return Next::Stop(stop);
                    }
                }
            }
            let st = &mut self.st;
            if st.settle {
                // Every complete frame of the last read is out: restart the clocks.
                st.settle = false;
                // Inline, the handler worked on each frame before asking for the next.
                let held = std::mem::take(&mut st.held) || (queued.is_none() && st.got > 0);
                let d = Decoded {
                    got: std::mem::take(&mut st.got),
                    blocked: held,
                };
                // Held up: the clocks restart now, not at the read.
                let now = if d.blocked {
                    Instant::now()
                } else {
                    st.read_at
                };
                self.count_frames(sh);
                if let Err(stop) = restart_clocks(sh, &mut self.st, &self.lim, now, d) {
                    return Next::Stop(stop);
                }
                self.st.fresh = Some(now);
            }
            let st = &mut self.st;
            let now = st.fresh.take().unwrap_or_else(Instant::now);
            let deadline = match self.deadline(sh, queued, now) {
                Deadline::At(d) => {
                    // From now on the handler waits here: its absence is over.
                    away = false;
                    d
                }
                Deadline::Passed(reason) if away => {
                    if reason == CloseReason::IdleTimeout {
                        away = false;
                        self.st.idle_since = now;
                        continue;
                    }
                    // Read on while reads bring input (each read's frames are decoded first).
                    match self.look_once(sh) {
                        Ok(true) => {}
                        Ok(false) => away = false,
                        Err(stop) => return Next::Stop(stop),
                    }
                    continue;
                }
                Deadline::Passed(reason) => return Next::Stop(Stop::Close(reason)),
                Deadline::Restart => continue,
            };
            if until.is_some_and(|u| now >= u) {
                // Out of time: one look at the socket first (a `recv_timeout` of zero, or one
                // whose time ran out while it decoded, still takes input already there, as the
                // frames a reader goroutine queued would be), then `Timeout`.
                if looked {
                    return Next::Timeout;
                }
                looked = true;
                match self.look_once(sh) {
                    Ok(true) => continue,
                    Ok(false) => return Next::Timeout,
                    Err(stop) => return Next::Stop(stop),
                }
            }
            let st = &mut self.st;
            if st.gate.must_wait() && !st.tls_more {
                let wake_at = match (deadline, until) {
                    (Some(d), Some(u)) => Some(d.min(u)),
                    (d, u) => d.or(u),
                };
                let wakeup = self.wakeup.get_or_insert_with(|| sh.sock.wakeup());
                wait_for_input(sh, wakeup, st, wake_at);
                continue;
            }
            if let Err(stop) = self.make_room(sh) {
                return Next::Stop(stop);
            }
            let st = &mut self.st;
            let got = match &sh.tls {
                None => read_some(sh, st),
                Some(session) => read_some_tls(sh, st, session, out),
            };
            match got {
                Ok(true) => {}
                Ok(false) => continue,
                Err(stop) => return Next::Stop(stop),
            }
            if st.handler_gone {
                // Nobody will handle more frames: discard until the client closes.
                (st.start, st.end) = (0, 0);
                st.idle_since = now;
                continue;
            }
            st.settle = true;
            st.read_at = now;
        }
    }

    /// One read without waiting (plain sockets; under TLS `next` never runs out of time and
    /// is never left by an inline handler: only the inline reader has a time limit):
    /// `Ok(true)` if it brought bytes, to decode.
    /// Kept out of line: the path a waiting handler parks on stays shallow (an idle
    /// connection's stack keeps to one page).
    #[cold]
    #[inline(never)]
    fn look_once(&mut self, sh: &ConnShared<C::Out>) -> Result<bool, Stop> {
        self.make_room(sh)?;
        let st = &mut self.st;
        if !read_some(sh, st)? {
            return Ok(false);
        }
        if st.handler_gone {
            (st.start, st.end) = (0, 0);
            return Ok(false);
        }
        st.settle = true;
        st.read_at = Instant::now();
        Ok(true)
    }

    /// Step 1, the deadline of this read: the frame's (from its first byte), or the idle one.
    #[inline]
    fn deadline(
        &mut self,
        sh: &ConnShared<C::Out>,
        queued: Option<&Sender<C::In>>,
        now: Instant,
    ) -> Deadline {
        let (st, lim) = (&mut self.st, &self.lim);
        let (end, reason) = match st.frame_start {
            Some(fs) => (lim.frame.map(|d| fs + d), CloseReason::FrameTimeout),
            None => (
                lim.idle.map(|d| st.idle_since + d),
                CloseReason::IdleTimeout,
            ),
        };
        match end {
            Some(e) if now >= e => {
                if reason == CloseReason::IdleTimeout && !is_idle(sh, queued) {
                    // The handler is still working on earlier frames: not idle.
                    st.idle_since = now;
                    return Deadline::Restart;
                }
                Deadline::Passed(reason)
            }
            _ => Deadline::At(end),
        }
    }

    /// Step 3, room to read into: take a buffer if none is held, compact, then grow if a read
    /// filled everything. Fails with `FrameTooLarge` once one undecoded frame fills the
    /// largest buffer allowed.
    #[inline]
    fn make_room(&mut self, sh: &ConnShared<C::Out>) -> Result<(), Stop> {
        let (st, lim) = (&mut self.st, &self.lim);
        if st.buf.is_empty() {
            st.buf = take_read_buf();
        }
        if st.end < st.buf.len() {
            return Ok(());
        }
        if st.start > 0 {
            st.buf.copy_within(st.start..st.end, 0);
            st.end -= st.start;
            st.start = 0;
        }
        if st.end < st.buf.len() {
            return Ok(());
        }
        if st.buf.len() >= lim.hard_cap {
            let e = DecodeError::FrameTooLarge {
                len: st.end,
                max: lim.max_frame,
            };
            return Err(self.protocol_error(sh, e));
        }
        let len = st.buf.len();
        let target = if len < lim.grow_to {
            lim.grow_to.min(len * 2)
        } else {
            len * 2
        };
        st.buf.resize(target.min(lim.hard_cap), 0);
        Ok(())
    }

    /// The buffered input cannot be decoded: logs it (escaped) and leaves the codec's error
    /// reply for the writer.
    fn protocol_error(&mut self, sh: &ConnShared<C::Out>, e: DecodeError) -> Stop {
        let input = &self.st.buf[self.st.start..self.st.end];
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

/// Idle means: the handler waits for input (inside `recv`, or parked on `in` in a select of
/// its own, found on the queue: only then is the lock of `in` taken) and nothing is queued
/// either way.
fn is_idle<I, O: Send + 'static>(sh: &ConnShared<O>, queued: Option<&Sender<I>>) -> bool {
    let waiting =
        sh.waiting.load(Ordering::Relaxed) || queued.is_some_and(|q| q.has_waiting_receiver());
    waiting && queued.is_none_or(|q| q.is_empty()) && sh.out_tx.is_empty()
}

/// The reader goroutine, for handlers that wait on something other than `recv` (and for
/// TLS): reads on, queueing each frame for the handler on the bounded `in` channel, so that
/// the end of the client's input is seen while the handler is busy.
pub(crate) struct ReaderTask<C: Codec> {
    pub(super) read: Arc<GoMutex<ReadSide<C>>>,
    /// The handler's queue; `None` when the handler has returned (input is discarded).
    pub(super) tx: Option<Sender<C::In>>,
    /// The output side, for what TLS sends on the reader's behalf (handshake, alerts).
    pub(super) out: Arc<GoMutex<WriteSide<C>>>,
    pub(super) sh: Arc<ConnShared<C::Out>>,
    /// Dropped when the reader ends: the writer's linger wait ends with it.
    pub(super) _alive: Sender<()>,
}

impl<C: Codec> ReaderTask<C> {
    pub(crate) fn run(self) {
        let sh = &*self.sh;
        let _count = GoroutineCount::new(sh);
        // The reading part's guard, here while this goroutine runs (a codec panic aborts).
        let exit = {
            let mut rs = self.read.lock();
            if rs.stopped {
                return;
            }
            rs.hand_over();
            rs.exit.take()
        };
        if let Some(session) = &sh.tls {
            let wakeup = sh.sock.wakeup();
            if let Err(r) = tls::handshake(sh, session, &self.out, &wakeup) {
                self.read.lock().stop(sh, Stop::Abort(r));
                return;
            }
        }
        loop {
            // The lock is let go between frames: a `recv` that took it while this goroutine
            // was being started finds the queue and goes there.
            let mut rs = self.read.lock();
            let frame = match rs.next(sh, &self.out, self.tx.as_ref(), None) {
                Next::Frame(f) => f,
                Next::Stop(stop) => {
                    rs.stop(sh, stop);
                    break;
                }
                Next::Timeout => continue,
            };
            let Some(tx) = &self.tx else {
                rs.handler_gone(sh);
                continue;
            };
            match tx.try_send(frame) {
                Ok(()) => {}
                Err(TrySendError::Full(frame)) => {
                    rs.held_up();
                    drop(rs);
                    if tx.send(frame).is_err() {
                        self.read.lock().handler_gone(sh);
                    }
                }
                Err(TrySendError::Closed(_)) => rs.handler_gone(sh),
            }
        }
        if let Some(tx) = &self.tx {
            tx.close();
        }
        drop(exit);
    }
}

/// The reader's settings, resolved once per connection.
struct ReadLimits {
    /// `frame_timeout`: time to receive one whole frame.
    frame: Option<Duration>,
    /// `idle_timeout`: time between frames.
    idle: Option<Duration>,
    max_frame: usize,
    /// Largest buffer for one undecoded frame: `max_frame` plus [`FRAME_SLACK`].
    hard_cap: usize,
    /// The size the buffer grows to at once for throughput (`read_buffer`).
    grow_to: usize,
}

impl ReadLimits {
    fn new(cfg: &Effective) -> Self {
        ReadLimits {
            frame: cfg.frame_timeout,
            idle: cfg.idle_timeout,
            max_frame: cfg.max_frame,
            hard_cap: cfg.max_frame.saturating_add(FRAME_SLACK),
            grow_to: cfg.read_buffer.max(READ_BUF_START),
        }
    }
}

/// What the reader carries from one read to the next.
struct ReadState {
    /// Bytes read and not yet decoded are `buf[start..end]`. No buffer while waiting for a
    /// frame: taken when data comes, handed back when the connection goes quiet again.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// When the frame being received began (its first byte); `None` between frames.
    frame_start: Option<Instant>,
    /// When the connection last went quiet between frames.
    idle_since: Instant,
    /// TLS: the last decryption filled the room, so rustls may hold more plaintext (read it
    /// before waiting on the socket).
    tls_more: bool,
    /// A partial frame is buffered (as last published in the shared state).
    partial: bool,
    /// The handler returned: input is read and dropped until the client closes.
    handler_gone: bool,
    gate: ReadGate,
    /// The clock read of the last pass when that pass never waited (it only read, decoded
    /// and handed frames over, microseconds ago): one clock read per frame instead of two.
    fresh: Option<Instant>,
    /// A read brought input: once its complete frames are decoded, the clocks restart.
    settle: bool,
    /// The clock read before that read.
    read_at: Instant,
    /// Frames decoded from that read.
    got: u64,
    /// Frames decoded and not yet counted in the stats.
    uncounted: u64,
    /// The consumer held the reader up since that read (see [`ReadSide::held_up`]).
    held: bool,
    /// Nobody has read since the handler's inline `recv` ran out of time (see
    /// [`ReadSide::left_waiting`]).
    away: bool,
}

impl ReadState {
    fn new() -> Self {
        let now = Instant::now();
        ReadState {
            buf: Vec::new(),
            start: 0,
            end: 0,
            frame_start: None,
            idle_since: now,
            tls_more: false,
            partial: false,
            handler_gone: false,
            gate: ReadGate::default(),
            fresh: None,
            settle: false,
            read_at: now,
            got: 0,
            uncounted: 0,
            held: false,
            away: false,
        }
    }
}

/// Step 1's answer.
enum Deadline {
    /// Read, waiting at most until then (`None`: no limit).
    At(Option<Instant>),
    /// The limit passed: close for this reason.
    Passed(CloseReason),
    /// The idle limit passed while the handler was still busy: the idle clock restarted.
    Restart,
}

/// What one pass's decoding did.
#[derive(Clone, Copy)]
struct Decoded {
    /// Frames decoded.
    got: u64,
    /// The consumer held the reader up: `now` is the clock read after that.
    blocked: bool,
}

/// Step 2, wait for input (or the deadline, then step 1 decides) once the socket is empty:
/// a read said so, or returned less than it could take (see [`ReadGate`]). A connection with
/// nothing buffered gives its buffer back first.
#[inline]
fn wait_for_input<O: Send + 'static>(
    sh: &ConnShared<O>,
    wakeup: &Wakeup,
    st: &mut ReadState,
    deadline: Option<Instant>,
) {
    if st.start == st.end && st.buf.len() == READ_BUF_START {
        give_read_buf(std::mem::take(&mut st.buf));
        (st.start, st.end) = (0, 0);
    }
    wakeup.set(deadline);
    if let Some(sp) = sh.server.spin.as_deref() {
        sp.kick();
    }
    st.gate.waited(sh.sock.wait_readable(deadline.is_some()));
}

/// Step 4, one read into the room after `end`: `Ok(true)` if it brought bytes, `Ok(false)` to
/// go round again (the socket was empty, or the read was interrupted), `Err` at EOF or on a
/// socket error.
#[inline]
fn read_some<O: Send + 'static>(sh: &ConnShared<O>, st: &mut ReadState) -> Result<bool, Stop> {
    let room = st.buf.len() - st.end;
    match sh.sock.read_nb(&mut st.buf[st.end..]) {
        Ok(0) => Err(Stop::Close(eof_reason(sh, st))),
        Ok(n) => {
            st.gate.read(n, room);
            st.end += n;
            sh.server
                .stats
                .bytes_in
                .fetch_add(n as u64, Ordering::Relaxed);
            Ok(true)
        }
        Err(e) => match e.kind() {
            io::ErrorKind::WouldBlock => {
                st.gate.would_block();
                Ok(false)
            }
            io::ErrorKind::Interrupted => Ok(false),
            _ => Err(Stop::Abort(io_reason(&e))),
        },
    }
}

/// Why the connection closes at the client's EOF.
fn eof_reason<O: Send + 'static>(sh: &ConnShared<O>, st: &ReadState) -> CloseReason {
    if sh.is_draining() {
        CloseReason::Shutdown
    } else if st.start < st.end && !st.handler_gone {
        CloseReason::EofMidFrame
    } else {
        CloseReason::Eof
    }
}

/// Step 4 under TLS: plaintext rustls already holds, else one non-blocking socket read
/// decrypted; the same answers as [`read_some`]. The end of the client's data (close_notify
/// or, as Go's unexpected EOF, a bare TCP EOF) closes as EOF does.
fn read_some_tls<C: Codec>(
    sh: &ConnShared<C::Out>,
    st: &mut ReadState,
    session: &tls::Session,
    out: &GoMutex<WriteSide<C>>,
) -> Result<bool, Stop> {
    loop {
        let room = st.buf.len() - st.end;
        let r = io::Read::read(&mut session.lock().reader(), &mut st.buf[st.end..]);
        match r {
            Ok(0) => return Err(Stop::Close(eof_reason(sh, st))),
            Ok(n) => {
                st.end += n;
                st.tls_more = n == room;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Err(Stop::Close(eof_reason(sh, st))),
        }
        st.tls_more = false;
        match tls::feed(sh, session, false) {
            Ok(Fed::Bytes(n)) => {
                st.gate.read(n, READ_BUF_START);
                if tls::wants_write(session) {
                    // A key update's answer, say.
                    if let Err(e) = tls::flush(sh, out) {
                        return Err(Stop::Abort(io_reason(&e)));
                    }
                }
            }
            Ok(Fed::Empty) => {
                st.gate.would_block();
                return Ok(false);
            }
            // rustls now reports the end (clean or not) on the next read.
            Ok(Fed::Eof) => {}
            Err(Fail::Io(e)) => return Err(Stop::Abort(io_reason(&e))),
            Err(Fail::Tls(e)) => {
                let _ = tls::flush(sh, out);
                log::debug!(target: "goway::server", "conn {} {}: TLS: {e}; closing", sh.id, sh.peer);
                return Err(Stop::Abort(CloseReason::Protocol));
            }
        }
    }
}

/// Step 6, the clocks once a read's complete frames are decoded: with every byte decoded the
/// connection is between frames (idle from `now`; a draining connection stops here); with a
/// partial frame left, its clock starts at its first byte (this read, unless it began in an
/// earlier one) and restarts when the handler held the reader up. `now` is the clock read
/// before the read, or after the hold-up (`d.blocked`).
#[inline]
fn restart_clocks<O: Send + 'static>(
    sh: &ConnShared<O>,
    st: &mut ReadState,
    lim: &ReadLimits,
    now: Instant,
    d: Decoded,
) -> Result<(), Stop> {
    if st.start == st.end {
        (st.start, st.end) = (0, 0);
        st.frame_start = None;
        st.idle_since = now;
        if st.partial {
            st.partial = false;
            sh.partial.store(false, Ordering::SeqCst);
        }
        if st.buf.len() > lim.grow_to {
            st.buf = Vec::new();
        }
        if sh.is_draining() {
            return Err(Stop::Close(CloseReason::Shutdown));
        }
    } else {
        if d.blocked {
            // The handler held us up: the clock restarts now.
            st.frame_start = Some(now);
        } else if st.frame_start.is_none() || d.got > 0 {
            st.frame_start = Some(now);
        }
        if !st.partial {
            st.partial = true;
            sh.partial.store(true, Ordering::SeqCst);
        }
    }
    Ok(())
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
