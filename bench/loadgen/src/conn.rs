//! One load connection: the frames it sends, the verification of the bytes echoed back, and
//! what the measured window records.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The frames: frame `seq` of connection `conn` is `size - 1` printable bytes that depend on
/// both numbers, then `\n`, so a byte that arrives on the wrong connection, out of order or
/// altered does not match.
pub struct Pattern {
    text: Vec<u8>,
    pub size: usize,
}

impl Pattern {
    pub fn new(size: usize) -> Pattern {
        let text = (0..size + ALPHABET.len())
            .map(|i| ALPHABET[i % ALPHABET.len()])
            .collect();
        Pattern { text, size }
    }

    fn start(conn: usize, seq: u64) -> usize {
        let mix = (conn as u64)
            .wrapping_mul(7)
            .wrapping_add(seq.wrapping_mul(13));
        (mix % ALPHABET.len() as u64) as usize
    }

    fn append(&self, conn: usize, seq: u64, out: &mut Vec<u8>) {
        let s = Self::start(conn, seq);
        out.extend_from_slice(&self.text[s..s + self.size - 1]);
        out.push(b'\n');
    }

    /// Whether `got` equals bytes `from..from + got.len()` of frame `seq` of `conn`.
    fn check(&self, conn: usize, seq: u64, from: usize, got: &[u8]) -> bool {
        let body = self.size - 1;
        let end = from + got.len();
        let s = Self::start(conn, seq);
        let body_ok = from >= body || {
            let upto = end.min(body);
            self.text[s + from..s + upto] == got[..upto - from]
        };
        let newline_ok = end < self.size || got[got.len() - 1] == b'\n';
        body_ok && newline_ok
    }
}

/// The measurement window: frames completed in `[start, end)` are counted.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Latency in ns, 1 ns to 60 s, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// What one thread saw; merged over the threads at the end.
pub struct Record {
    pub win: Window,
    /// Frames completed in the window.
    pub frames: u64,
    /// Frames with a differing byte, and reads of bytes no frame was waiting for.
    pub mismatch: u64,
    /// Connections that failed or were closed by the server.
    pub conn_errors: u64,
    /// Per completed frame: from its send time (closed loop) or its scheduled time (open
    /// loop) to its last echoed byte.
    pub latency: Histogram<u64>,
    /// Open loop: frames due in the window that were queued for sending.
    pub sent: u64,
    /// Open loop: how late each of those frames was queued against its schedule.
    pub send_lag: Histogram<u64>,
}

impl Record {
    pub fn new(win: Window) -> Record {
        Record {
            win,
            frames: 0,
            mismatch: 0,
            conn_errors: 0,
            latency: histogram(),
            sent: 0,
            send_lag: histogram(),
        }
    }

    fn completed(&mut self, started: Instant, now: Instant, corrupt: bool) {
        self.mismatch += u64::from(corrupt);
        if self.win.contains(now) {
            self.frames += 1;
            self.latency
                .saturating_record(nanos(now.saturating_duration_since(started)));
        }
    }

    /// Open loop: a frame scheduled at `due` was queued at `now`.
    pub fn queued(&mut self, due: Instant, now: Instant) {
        if self.win.contains(due) {
            self.sent += 1;
            self.send_lag
                .saturating_record(nanos(now.saturating_duration_since(due)));
        }
    }

    pub fn merge(&mut self, other: &Record) {
        self.frames += other.frames;
        self.mismatch += other.mismatch;
        self.conn_errors += other.conn_errors;
        self.sent += other.sent;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.send_lag.add(&other.send_lag);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

pub struct Conn {
    pub id: usize,
    pub sock: TcpStream,
    pub alive: bool,
    /// Frames queued so far (the sequence number of the next one).
    pub sent: u64,
    /// Frames fully echoed so far.
    pub received: u64,
    /// Bytes of frame `received` already read.
    partial: usize,
    corrupt: bool,
    /// Per frame queued and not yet echoed: its send or scheduled time.
    times: VecDeque<Instant>,
    out: Vec<u8>,
    written: usize,
    /// Open loop: the scheduled time of frame `sent`.
    pub next_due: Instant,
}

impl Conn {
    pub fn new(id: usize, sock: TcpStream, pipeline: usize, size: usize) -> Conn {
        Conn {
            id,
            sock,
            alive: true,
            sent: 0,
            received: 0,
            partial: 0,
            corrupt: false,
            times: VecDeque::with_capacity(pipeline),
            out: Vec::with_capacity(pipeline * size),
            written: 0,
            next_due: Instant::now(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.times.len()
    }

    /// Queues the next frame; `at` is what its latency will be measured from.
    pub fn queue(&mut self, pat: &Pattern, at: Instant) {
        pat.append(self.id, self.sent, &mut self.out);
        self.sent += 1;
        self.times.push_back(at);
    }

    /// Writes queued bytes until all are written or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.written < self.out.len() {
            match self.sock.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Reads and verifies everything the socket holds. Errors when the server closed the
    /// connection or reading failed.
    pub fn read_all(&mut self, buf: &mut [u8], pat: &Pattern, rec: &mut Record) -> io::Result<()> {
        loop {
            match self.sock.read(buf) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.consume(&buf[..n], pat, Instant::now(), rec);
                    // A short read drained the socket; the next arrival raises a new
                    // (edge-triggered) event, so the read that would say WouldBlock is saved.
                    if n < buf.len() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, mut data: &[u8], pat: &Pattern, now: Instant, rec: &mut Record) {
        while !data.is_empty() {
            let Some(&started) = self.times.front() else {
                rec.mismatch += 1; // bytes that no frame was waiting for
                return;
            };
            let take = (pat.size - self.partial).min(data.len());
            if !pat.check(self.id, self.received, self.partial, &data[..take]) {
                self.corrupt = true;
            }
            self.partial += take;
            data = &data[take..];
            if self.partial == pat.size {
                self.times.pop_front();
                rec.completed(started, now, self.corrupt);
                self.received += 1;
                self.partial = 0;
                self.corrupt = false;
            }
        }
    }
}
