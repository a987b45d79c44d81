//! The state a [`TlsStream`](super::TlsStream) and its halves share, and the handshake,
//! read, write and close logic on it (locking as the parent module describes).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::Connection;

use super::super::error::{TlsError, clone_io};
use crate::net::TcpStream;
use crate::sync::Mutex;

/// Size of a stream's raw read buffer.
const RAW_BUF: usize = 4 << 10;

/// How long [`TlsStream::close`](super::TlsStream::close) tries to send close_notify (Go's 5 s).
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS record type of a handshake message, and of an alert.
const RECORD_HANDSHAKE: u8 = 0x16;
const RECORD_ALERT: u8 = 0x15;

pub(super) struct ReadState {
    pub(super) raw: Vec<u8>,
    /// The peer closed its side (TCP EOF).
    pub(super) eof: bool,
    /// The first bytes of the connection were checked for looking like TLS.
    pub(super) checked: bool,
}

pub(super) struct WriteState {
    pub(super) buf: Vec<u8>,
    /// The kind of the error that broke the stream: a write that failed part way leaves a
    /// partial record on the wire, so every later write fails too (as Go's).
    pub(super) broken: Option<io::ErrorKind>,
}

pub(super) struct Shared {
    pub(super) tcp: TcpStream,
    pub(super) conn: parking_lot::Mutex<Connection>,
    pub(super) is_server: bool,
    pub(super) rd: Mutex<ReadState>,
    pub(super) wr: Mutex<WriteState>,
    /// The handshake's outcome once failed (every later call fails the same way).
    pub(super) hs: Mutex<Option<io::Error>>,
    pub(super) done: AtomicBool,
    /// When the handshake must be over, if the stream was given a handshake timeout.
    pub(super) hs_deadline: parking_lot::Mutex<Option<Instant>>,
    /// The user set a read (write) deadline: the handshake timeout leaves that side alone.
    pub(super) user_rd: AtomicBool,
    pub(super) user_wd: AtomicBool,
    /// The name a client dialed (or its configuration's override).
    pub(super) client_name: Option<String>,
}

impl Shared {
    pub(super) fn handshake(&self) -> io::Result<()> {
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut failed = self.hs.lock();
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(e) = &*failed {
            return Err(clone_io(e));
        }
        let dl = *self.hs_deadline.lock();
        let (set_r, set_w) = match dl {
            Some(_) => (
                !self.user_rd.load(Ordering::SeqCst),
                !self.user_wd.load(Ordering::SeqCst),
            ),
            None => (false, false),
        };
        if set_r {
            self.tcp.set_read_deadline(dl);
        }
        if set_w {
            self.tcp.set_write_deadline(dl);
        }
        let r = self.drive_handshake();
        if set_r && !self.user_rd.load(Ordering::SeqCst) {
            self.tcp.set_read_deadline(None);
        }
        if set_w && !self.user_wd.load(Ordering::SeqCst) {
            self.tcp.set_write_deadline(None);
        }
        match r {
            Ok(()) => {
                self.done.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                log::debug!("tls: handshake with {:?} failed: {e}", self.tcp.peer_addr());
                *failed = Some(clone_io(&e));
                Err(e)
            }
        }
    }

    pub(super) fn drive_handshake(&self) -> io::Result<()> {
        loop {
            let (handshaking, wants_write, data) = {
                let mut c = self.conn.lock();
                let handshaking = c.is_handshaking();
                // Done, with the peer's first data already decrypted (it came with its
                // Finished): what rustls queued after the handshake (a server's session
                // ticket) goes out with the first write, one segment instead of two; a read
                // that has to wait for the socket sends it first.
                let data = !handshaking
                    && c.process_new_packets()
                        .is_ok_and(|s| s.plaintext_bytes_to_read() > 0);
                (handshaking, c.wants_write(), data)
            };
            if data {
                return Ok(());
            }
            if wants_write {
                self.flush()?;
                continue;
            }
            if !handshaking {
                return Ok(());
            }
            let mut rd = self.rd.lock();
            if self.fill(&mut rd)? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls: the peer closed the connection during the handshake (EOF)",
                ));
            }
        }
    }

    /// Reads raw bytes from the socket (no lock on the rustls state while waiting) and feeds
    /// them to rustls. Returns `true` at the peer's EOF.
    pub(super) fn fill(&self, rd: &mut ReadState) -> io::Result<bool> {
        if rd.eof {
            return Ok(true);
        }
        if rd.raw.is_empty() {
            rd.raw = vec![0u8; RAW_BUF];
        }
        let n = loop {
            match (&self.tcp).read(&mut rd.raw) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        if n == 0 {
            rd.eof = true;
            // An empty read tells rustls the transport ended.
            let _ = self.conn.lock().read_tls(&mut &[][..]);
            return Ok(true);
        }
        if !rd.checked {
            rd.checked = true;
            let first = rd.raw[0];
            if first != RECORD_HANDSHAKE && first != RECORD_ALERT {
                let http = self.is_server && looks_like_http(&rd.raw[..n]);
                return Err(TlsError::not_tls(http).into_io());
            }
        }
        let mut failed = None;
        {
            let mut c = self.conn.lock();
            let mut raw = &rd.raw[..n];
            while !raw.is_empty() {
                c.read_tls(&mut raw)?;
                if let Err(e) = c.process_new_packets() {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            // rustls queued an alert for the peer: send it if we can.
            let _ = self.flush();
            return Err(TlsError::from_rustls(e).into_io());
        }
        Ok(false)
    }

    /// Sends what rustls has queued (handshake messages, alerts, key updates).
    pub(super) fn flush(&self) -> io::Result<()> {
        let mut wr = self.wr.lock();
        if let Some(k) = wr.broken {
            return Err(broken(k));
        }
        {
            let mut c = self.conn.lock();
            while c.wants_write() {
                c.write_tls(&mut wr.buf)?;
            }
        }
        self.send(&mut wr)
    }

    /// Writes the output buffer to the socket (under the output lock, without the rustls one).
    pub(super) fn send(&self, wr: &mut WriteState) -> io::Result<()> {
        if wr.buf.is_empty() {
            return Ok(());
        }
        let r = (&self.tcp).write_all(&wr.buf);
        wr.buf.clear();
        if wr.buf.capacity() > 64 << 10 {
            wr.buf.shrink_to(16 << 10);
        }
        if let Err(e) = &r {
            wr.broken = Some(e.kind());
        }
        r
    }

    pub(super) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.handshake()?;
        let mut rd = self.rd.lock();
        loop {
            let wants_write = {
                let mut c = self.conn.lock();
                match c.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(unexpected_eof());
                    }
                    Err(e) => return Err(e),
                }
                c.wants_write()
            };
            if wants_write {
                self.flush()?;
            }
            if rd.eof {
                return Err(unexpected_eof());
            }
            self.fill(&mut rd)?;
        }
    }

    pub(super) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.handshake()?;
        let mut wr = self.wr.lock();
        if let Some(k) = wr.broken {
            return Err(broken(k));
        }
        let n = {
            let mut c = self.conn.lock();
            let n = c.writer().write(buf)?;
            while c.wants_write() {
                c.write_tls(&mut wr.buf)?;
            }
            n
        };
        self.send(&mut wr)?;
        Ok(n)
    }

    pub(super) fn close_write(&self) -> io::Result<()> {
        if !self.done.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "tls: CloseWrite called before handshake complete",
            ));
        }
        self.conn.lock().send_close_notify();
        self.flush()?;
        self.tcp.shutdown(Shutdown::Write)
    }

    pub(super) fn close(&self) -> io::Result<()> {
        if self.done.load(Ordering::Acquire) {
            // A write in progress means the caller is breaking it: close at once (as Go).
            if let Some(mut wr) = self.wr.try_lock() {
                if wr.broken.is_none() {
                    let user_wd = self.user_wd.load(Ordering::SeqCst);
                    if !user_wd {
                        self.tcp
                            .set_write_deadline(Some(Instant::now() + CLOSE_NOTIFY_TIMEOUT));
                    }
                    let mut c = self.conn.lock();
                    c.send_close_notify();
                    let mut ok = true;
                    while ok && c.wants_write() {
                        ok = c.write_tls(&mut wr.buf).is_ok();
                    }
                    drop(c);
                    let _ = self.send(&mut wr);
                }
            }
        }
        self.tcp.close()
    }
}

fn unexpected_eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "unexpected EOF: the peer closed the connection without a TLS close_notify",
    )
}

fn broken(k: io::ErrorKind) -> io::Error {
    io::Error::new(
        k,
        "tls: an earlier write failed part way; the connection is unusable",
    )
}

/// Go's test for a plain HTTP request sent to a TLS server.
fn looks_like_http(b: &[u8]) -> bool {
    [&b"GET /"[..], b"HEAD ", b"POST ", b"PUT /", b"OPTIO"]
        .iter()
        .any(|p| b.starts_with(p))
}
