//! The reader goroutine: reads the socket, decodes every frame a read brings in and queues
//! each for the handler, under the frame and idle clocks.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::io_reason;
use super::shared::{ConnCtl, ConnShared, Exit};
use super::tls::{self, Fail, Fed};
use super::writer::WriteSide;
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

pub(crate) struct ReaderTask<C: Codec> {
    pub(super) codec: C,
    pub(super) tx: Sender<C::In>,
    /// Dropped when the reader ends: the writer's linger wait ends with it.
    pub(super) _alive: Sender<()>,
    /// The output side, for what TLS sends on the reader's behalf (handshake, alerts).
    pub(super) out: Arc<GoMutex<WriteSide<C>>>,
    pub(super) exit: Exit<C::Out>,
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

    /// Reads, decodes and hands frames over until the connection must stop. Each pass is
    /// one read: [`deadline`](Self::deadline) (1), [`wait_for_input`] when the socket is
    /// known to be empty (2), [`make_room`](Self::make_room) (3), [`read_some`] (4),
    /// [`decode_all`](Self::decode_all) (5), and [`restart_clocks`] (6).
    fn read_loop(&mut self) -> Stop {
        let sh = self.exit.0.clone();
        let lim = ReadLimits::new(&sh.server.cfg);
        // Ends a wait for input when its deadline passes (one timer for the connection).
        let wakeup = sh.sock.wakeup();
        self.codec.set_max_frame(lim.max_frame);
        if let Some(session) = &sh.tls {
            if let Err(r) = tls::handshake(&sh, session, &self.out, &wakeup) {
                return Stop::Abort(r);
            }
        }
        let mut st = ReadState::new();
        loop {
            let now = st.fresh.take().unwrap_or_else(Instant::now);
            let deadline = match self.deadline(&mut st, &lim, now) {
                Deadline::At(d) => d,
                Deadline::Passed(reason) => return Stop::Close(reason),
                Deadline::Restart => continue,
            };
            if st.gate.must_wait() && !st.tls_more {
                wait_for_input(&sh, &wakeup, &mut st, deadline);
                continue;
            }
            if let Err(stop) = self.make_room(&mut st, &lim) {
                return stop;
            }
            let got = match &sh.tls {
                None => read_some(&sh, &mut st),
                Some(session) => read_some_tls(&sh, &mut st, session, &self.out),
            };
            match got {
                Ok(true) => {}
                Ok(false) => continue,
                Err(stop) => return stop,
            }
            if st.handler_gone {
                // Nobody will handle more frames: discard until the client closes.
                (st.start, st.end) = (0, 0);
                st.idle_since = now;
                continue;
            }
            let decoded = match self.decode_all(&mut st) {
                Ok(d) => d,
                Err(stop) => return stop,
            };
            if let Err(stop) = restart_clocks(&sh, &mut st, &lim, now, decoded) {
                return stop;
            }
            if !decoded.blocked {
                st.fresh = Some(now);
            }
        }
    }

    /// Step 1, the deadline of this read: the frame's (from its first byte), or the idle one.
    #[inline]
    fn deadline(&self, st: &mut ReadState, lim: &ReadLimits, now: Instant) -> Deadline {
        let (end, reason) = match st.frame_start {
            Some(fs) => (lim.frame.map(|d| fs + d), CloseReason::FrameTimeout),
            None => (
                lim.idle.map(|d| st.idle_since + d),
                CloseReason::IdleTimeout,
            ),
        };
        match end {
            Some(e) if now >= e => {
                if reason == CloseReason::IdleTimeout && !self.is_idle() {
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
    fn make_room(&mut self, st: &mut ReadState, lim: &ReadLimits) -> Result<(), Stop> {
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
            return Err(self.protocol_error(
                DecodeError::FrameTooLarge {
                    len: st.end,
                    max: lim.max_frame,
                },
                &st.buf[st.start..st.end],
            ));
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

    /// Step 5, decode every complete frame this read brought in and hand each to the handler,
    /// waiting while its queue is full. Input the handler will never take (it returned) is
    /// dropped.
    #[inline]
    fn decode_all(&mut self, st: &mut ReadState) -> Result<Decoded, Stop> {
        let stats = &self.exit.0.server.stats;
        let mut d = Decoded {
            got: 0,
            blocked: false,
        };
        loop {
            match self.codec.decode(&st.buf[st.start..st.end]) {
                Ok(Some((frame, used))) => {
                    st.start += used;
                    d.got += 1;
                    match self.tx.try_send(frame) {
                        Ok(()) => {}
                        Err(TrySendError::Full(frame)) => {
                            d.blocked = true;
                            if self.tx.send(frame).is_err() {
                                st.handler_gone = true;
                                break;
                            }
                        }
                        Err(TrySendError::Closed(_)) => {
                            st.handler_gone = true;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    stats.frames_in.fetch_add(d.got, Ordering::Relaxed);
                    return Err(self.protocol_error(e, &st.buf[st.start..st.end]));
                }
            }
        }
        if d.got > 0 {
            stats.frames_in.fetch_add(d.got, Ordering::Relaxed);
        }
        if st.handler_gone {
            (st.start, st.end) = (0, 0);
        }
        Ok(d)
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
}

impl ReadState {
    fn new() -> Self {
        ReadState {
            buf: Vec::new(),
            start: 0,
            end: 0,
            frame_start: None,
            idle_since: Instant::now(),
            tls_more: false,
            partial: false,
            handler_gone: false,
            gate: ReadGate::default(),
            fresh: None,
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
    /// The handler's queue was full: the reader waited for it.
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

/// Step 6, the clocks after a pass: with every byte decoded the connection is between
/// frames (idle from `now`, or from after the wait if the handler held the reader up; a
/// draining connection stops here); with a partial frame left, its clock starts at its first
/// byte (this read, unless it began in an earlier one) and restarts after the handler held
/// the reader up. `now` is the clock read before this pass's read.
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
        // The clock read before this read (two clock reads per frame instead of three),
        // unless the handler held the reader up: then the client's idle time starts now, not
        // before the wait.
        st.idle_since = if d.blocked { Instant::now() } else { now };
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
            st.frame_start = Some(Instant::now());
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
