//! The reader goroutine: reads the socket, decodes every frame a read brings in and queues
//! each for the handler, under the frame and idle clocks.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::io_reason;
use super::shared::{ConnCtl, Exit};
use crate::chan::{Sender, TrySendError};
use crate::net::codec::{Codec, DecodeError};
use crate::net::ready::ReadGate;
use crate::net::server::stats::CloseReason;
use crate::net::server::stream::{READ_BUF_START, give_read_buf, take_read_buf};

/// How much more than `max_frame` the reader buffers for one undecoded frame before giving up
/// on a codec that does not check sizes itself.
const FRAME_SLACK: usize = 64 << 10;

pub(crate) struct ReaderTask<C: Codec> {
    pub(super) codec: C,
    pub(super) tx: Sender<C::In>,
    /// Dropped when the reader ends: the writer's linger wait ends with it.
    pub(super) _alive: Sender<()>,
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
