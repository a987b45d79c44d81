//! [`TlsStream`]: a TLS connection over a goway TCP stream, blocking-style (Go's `tls.Conn`).
//!
//! Locking follows Go's `tls.Conn`: a handshake lock, an input lock (one reader at a time,
//! held across its socket wait) and an output lock (one writer at a time, held across its
//! socket write), all goway mutexes that park a waiting goroutine rather than its thread. The
//! rustls state itself sits behind a short `parking_lot` lock that is never held across a
//! socket wait: a reader reads raw bytes with it unlocked, then locks it to decrypt; a writer
//! locks it to encrypt into its buffer, unlocks it, then writes the buffer. So a reader
//! blocked on the socket never holds up a writer in another goroutine.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::Connection;
use rustls_pki_types::{CertificateDer, ServerName};

use super::config::{ClientConfig, ServerConfig};
use super::error::{TlsError, clone_io};
use crate::net::TcpStream;
use crate::sync::Mutex;

/// Size of a stream's raw read buffer.
const RAW_BUF: usize = 4 << 10;

/// How long [`TlsStream::close`] tries to send close_notify (Go's 5 s).
const CLOSE_NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS record type of a handshake message, and of an alert.
const RECORD_HANDSHAKE: u8 = 0x16;
const RECORD_ALERT: u8 = 0x15;

struct ReadState {
    raw: Vec<u8>,
    /// The peer closed its side (TCP EOF).
    eof: bool,
    /// The first bytes of the connection were checked for looking like TLS.
    checked: bool,
}

struct WriteState {
    buf: Vec<u8>,
    /// The kind of the error that broke the stream: a write that failed part way leaves a
    /// partial record on the wire, so every later write fails too (as Go's).
    broken: Option<io::ErrorKind>,
}

struct Shared {
    tcp: TcpStream,
    conn: parking_lot::Mutex<Connection>,
    is_server: bool,
    rd: Mutex<ReadState>,
    wr: Mutex<WriteState>,
    /// The handshake's outcome once failed (every later call fails the same way).
    hs: Mutex<Option<io::Error>>,
    done: AtomicBool,
    /// When the handshake must be over, if the stream was given a handshake timeout.
    hs_deadline: parking_lot::Mutex<Option<Instant>>,
    /// The user set a read (write) deadline: the handshake timeout leaves that side alone.
    user_rd: AtomicBool,
    user_wd: AtomicBool,
    /// The name a client dialed (or its configuration's override).
    client_name: Option<String>,
}

/// A TLS connection over a [`TcpStream`] (Go's `tls.Conn`). Reads and writes block the
/// calling goroutine (parking it, not its thread) and run the handshake first if it has not
/// run yet; [`handshake`](Self::handshake) runs it explicitly.
///
/// Reads and writes may come from two goroutines at once (share `&TlsStream`, an `Arc`, or
/// [`split`](Self::split)): a read waiting for data does not hold up a write.
///
/// A read returns `Ok(0)` at the end of the data only when the peer closed the session with
/// close_notify; a peer that just closed the TCP connection makes the read fail with
/// `ErrorKind::UnexpectedEof` (Go's `io.ErrUnexpectedEOF`), since its data may have been cut.
///
/// ```
/// use std::io::{Read, Write};
/// use goway::tls::{self, CertPool, ClientConfig, ServerConfig};
///
/// let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
/// let server = ServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
/// let ln = tls::Listener::bind("127.0.0.1:0", server).unwrap();
/// let addr = ln.local_addr().unwrap();
/// goway::go!(move || {
///     let (mut c, _) = ln.accept().unwrap();
///     let mut buf = [0u8; 5];
///     c.read_exact(&mut buf).unwrap();
///     c.write_all(&buf).unwrap();
///     c.shutdown().unwrap();
/// });
/// let client = ClientConfig::with_roots(CertPool::from_pem(cert.as_bytes()).unwrap());
/// let mut c = tls::dial(addr, &client, "localhost").unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut back = String::new();
/// c.read_to_string(&mut back).unwrap();
/// assert_eq!(back, "hello");
/// ```
pub struct TlsStream {
    s: Arc<Shared>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.s.tcp)
            .field("server", &self.s.is_server)
            .field("handshake_done", &self.s.done.load(Ordering::Relaxed))
            .finish()
    }
}

impl TlsStream {
    /// The client side of a TLS connection over `tcp` (Go's `tls.Client`), verifying the
    /// server against `server_name` (or the configuration's
    /// [override](ClientConfig::with_server_name)), which is also sent as SNI unless it is an
    /// IP address. The handshake runs on the first read, write or
    /// [`handshake`](Self::handshake).
    ///
    /// # Errors
    /// A [`TlsErrorKind::Config`](super::TlsErrorKind::Config) error for an invalid name.
    pub fn client(tcp: TcpStream, config: &ClientConfig, server_name: &str) -> io::Result<Self> {
        let name = config.server_name().unwrap_or(server_name).to_string();
        let sn = ServerName::try_from(name.clone()).map_err(|_| {
            TlsError::config(format!("tls: invalid server name {name:?}")).into_io()
        })?;
        let conn = rustls::ClientConnection::new(config.rustls().clone(), sn)
            .map_err(|e| TlsError::from_rustls(e).into_io())?;
        Ok(Self::new(tcp, Connection::Client(conn), false, Some(name)))
    }

    /// The server side of a TLS connection over `tcp` (Go's `tls.Server`). The handshake
    /// runs on the first read, write or [`handshake`](Self::handshake), with no time limit
    /// unless deadlines are set (a [`Listener`](super::Listener) sets its handshake timeout).
    ///
    /// # Errors
    /// As rustls's `ServerConnection::new` (not in practice).
    pub fn server(tcp: TcpStream, config: &ServerConfig) -> io::Result<Self> {
        let conn = rustls::ServerConnection::new(config.rustls().clone())
            .map_err(|e| TlsError::from_rustls(e).into_io())?;
        Ok(Self::new(tcp, Connection::Server(conn), true, None))
    }

    fn new(tcp: TcpStream, conn: Connection, is_server: bool, name: Option<String>) -> Self {
        TlsStream {
            s: Arc::new(Shared {
                tcp,
                conn: parking_lot::Mutex::new(conn),
                is_server,
                rd: Mutex::new(ReadState {
                    raw: Vec::new(),
                    eof: false,
                    checked: false,
                }),
                wr: Mutex::new(WriteState {
                    buf: Vec::new(),
                    broken: None,
                }),
                hs: Mutex::new(None),
                done: AtomicBool::new(false),
                hs_deadline: parking_lot::Mutex::new(None),
                user_rd: AtomicBool::new(false),
                user_wd: AtomicBool::new(false),
                client_name: name,
            }),
        }
    }

    /// Gives the handshake until `t` (reads and writes during it fail with `TimedOut` after),
    /// unless the user sets deadlines of their own. The deadlines are cleared after it.
    pub(crate) fn set_handshake_deadline(&self, t: Option<Instant>) {
        *self.s.hs_deadline.lock() = t;
    }

    /// Runs the handshake now if it has not run (Go's `Handshake`). Reads and writes run it
    /// themselves; calling it first separates handshake errors from I/O errors.
    ///
    /// # Errors
    /// A [`TlsError`] inside the `io::Error` for a TLS failure (unknown authority, wrong host,
    /// expired certificate, a peer that does not speak TLS, a refused client certificate…);
    /// `TimedOut` when a deadline or the handshake timeout passes; `UnexpectedEof` when the
    /// peer closes during it. A failed handshake fails every later call the same way.
    pub fn handshake(&self) -> io::Result<()> {
        self.s.handshake()
    }

    /// `true` once the handshake has completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.s.done.load(Ordering::Acquire)
    }

    /// The peer's certificate chain, leaf first (empty before the handshake, and for a client
    /// that presented none).
    pub fn peer_certificates(&self) -> Vec<CertificateDer<'static>> {
        self.s
            .conn
            .lock()
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// The ALPN protocol agreed in the handshake (Go's `NegotiatedProtocol`).
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        self.s.conn.lock().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The server name: on a server, the name the client asked for by SNI (Go's
    /// `ConnectionState().ServerName`), once the handshake has read it; on a client, the name
    /// it verifies the server against.
    pub fn server_name(&self) -> Option<String> {
        match &*self.s.conn.lock() {
            Connection::Server(c) => c.server_name().map(str::to_string),
            Connection::Client(_) => self.s.client_name.clone(),
        }
    }

    /// The negotiated TLS version, after the handshake.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.s.conn.lock().protocol_version()
    }

    /// The underlying TCP stream (for its addresses and options; reading or writing it
    /// corrupts the TLS session).
    pub fn get_ref(&self) -> &TcpStream {
        &self.s.tcp
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As [`TcpStream::peer_addr`].
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.tcp.peer_addr()
    }

    /// This end's address.
    ///
    /// # Errors
    /// As [`TcpStream::local_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.s.tcp.local_addr()
    }

    /// Sets an absolute read deadline (Go's `SetReadDeadline`), as
    /// [`TcpStream::set_read_deadline`]; it applies to the handshake's reads too.
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.s.user_rd.store(true, Ordering::SeqCst);
        self.s.tcp.set_read_deadline(t);
    }

    /// Sets an absolute write deadline (Go's `SetWriteDeadline`).
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.s.user_wd.store(true, Ordering::SeqCst);
        self.s.tcp.set_write_deadline(t);
    }

    /// Sets both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, t: Option<Instant>) {
        self.set_read_deadline(t);
        self.set_write_deadline(t);
    }

    /// Sets the timeout of each socket read, as [`TcpStream::set_read_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.tcp.set_read_timeout(d)
    }

    /// Sets the timeout of each socket write, as [`TcpStream::set_write_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.tcp.set_write_timeout(d)
    }

    /// Ends this side's data (Go's `CloseWrite`): sends close_notify, then shuts the TCP
    /// write side down. The peer reads the end of the data (`Ok(0)`); this side may go on
    /// reading.
    ///
    /// # Errors
    /// `NotConnected` before the handshake completed (Go's "CloseWrite called before
    /// handshake complete"); the write's error.
    pub fn shutdown(&self) -> io::Result<()> {
        self.s.close_write()
    }

    /// Closes the connection (Go's `Close`): sends close_notify if the handshake completed
    /// and no write is in progress (trying for at most 5 s), then closes the TCP stream,
    /// which ends reads and writes blocked in other goroutines.
    ///
    /// # Errors
    /// The TCP stream's close error (already closed).
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }

    /// Splits the stream into a read half and a write half, for two goroutines. They share
    /// the connection; the TCP stream closes when both are dropped.
    pub fn split(self) -> (TlsReadHalf, TlsWriteHalf) {
        (
            TlsReadHalf { s: self.s.clone() },
            TlsWriteHalf { s: self.s },
        )
    }
}

impl Shared {
    fn handshake(&self) -> io::Result<()> {
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

    fn drive_handshake(&self) -> io::Result<()> {
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
    fn fill(&self, rd: &mut ReadState) -> io::Result<bool> {
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
    fn flush(&self) -> io::Result<()> {
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
    fn send(&self, wr: &mut WriteState) -> io::Result<()> {
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

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
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

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
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

    fn close_write(&self) -> io::Result<()> {
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

    fn close(&self) -> io::Result<()> {
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

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read(buf)
    }
}

impl Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read half of a [`TlsStream::split`].
pub struct TlsReadHalf {
    s: Arc<Shared>,
}

/// The write half of a [`TlsStream::split`].
pub struct TlsWriteHalf {
    s: Arc<Shared>,
}

impl fmt::Debug for TlsReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReadHalf")
            .field("tcp", &self.s.tcp)
            .finish()
    }
}

impl fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriteHalf")
            .field("tcp", &self.s.tcp)
            .finish()
    }
}

impl TlsReadHalf {
    /// Sets the read deadline, as [`TlsStream::set_read_deadline`].
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.s.user_rd.store(true, Ordering::SeqCst);
        self.s.tcp.set_read_deadline(t);
    }

    /// Runs the handshake if it has not run, as [`TlsStream::handshake`].
    ///
    /// # Errors
    /// As `TlsStream::handshake`.
    pub fn handshake(&self) -> io::Result<()> {
        self.s.handshake()
    }

    /// Closes the connection (both halves), as [`TlsStream::close`].
    ///
    /// # Errors
    /// As `TlsStream::close`.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl TlsWriteHalf {
    /// Sets the write deadline, as [`TlsStream::set_write_deadline`].
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.s.user_wd.store(true, Ordering::SeqCst);
        self.s.tcp.set_write_deadline(t);
    }

    /// Runs the handshake if it has not run, as [`TlsStream::handshake`].
    ///
    /// # Errors
    /// As `TlsStream::handshake`.
    pub fn handshake(&self) -> io::Result<()> {
        self.s.handshake()
    }

    /// Sends close_notify and shuts the TCP write side, as [`TlsStream::shutdown`].
    ///
    /// # Errors
    /// As `TlsStream::shutdown`.
    pub fn shutdown(&self) -> io::Result<()> {
        self.s.close_write()
    }

    /// Closes the connection (both halves), as [`TlsStream::close`].
    ///
    /// # Errors
    /// As `TlsStream::close`.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl Read for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read(buf)
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
