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
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustls::Connection;
use rustls_pki_types::{CertificateDer, ServerName};

use super::config::{ClientConfig, ServerConfig};
use super::error::TlsError;
use crate::net::TcpStream;
use crate::sync::Mutex;
use session::{ReadState, Shared, WriteState};

mod halves;
mod session;

pub use halves::{TlsReadHalf, TlsWriteHalf};

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
