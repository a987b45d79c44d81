//! [`Listener`]: accepts TCP connections as un-handshaken [`TlsStream`]s (Go's
//! `tls.NewListener`), each with a handshake timeout.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::config::ServerConfig;
use super::stream::TlsStream;
use crate::net::{TcpListener, ToAddrs};

/// Go's default handshake timeout (net/http's `TLSHandshakeTimeout`), and goway's.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS listener (Go's `tls.NewListener` / `tls.Listen`). [`accept`](Self::accept) returns
/// at once with a stream whose handshake has not run: it runs on the stream's first read,
/// write or [`handshake`](TlsStream::handshake), in whichever goroutine serves the
/// connection, so a slow or silent client never holds up the accept loop. The handshake must
/// end within the handshake timeout (10 s unless set) from the accept, or it fails with
/// `TimedOut`.
///
/// ```
/// # let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// # let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
/// let cfg = goway::tls::ServerConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
/// let mut ln = goway::tls::Listener::bind("127.0.0.1:0", cfg).unwrap();
/// ln.set_handshake_timeout(Some(std::time::Duration::from_secs(5)));
/// assert!(ln.local_addr().unwrap().port() != 0);
/// ```
pub struct Listener {
    tcp: TcpListener,
    config: ServerConfig,
    handshake_timeout: Option<Duration>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("tcp", &self.tcp)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl Listener {
    /// Listens on `addr` (Go's `tls.Listen("tcp", addr, config)`).
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    pub fn bind(addr: impl ToAddrs, config: ServerConfig) -> io::Result<Listener> {
        Ok(Self::new(TcpListener::bind(addr)?, config))
    }

    /// Serves TLS on an existing listener (Go's `tls.NewListener`).
    pub fn new(tcp: TcpListener, config: ServerConfig) -> Listener {
        Listener {
            tcp,
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets the handshake timeout (`None`: none; then only the stream's own deadlines
    /// bound the handshake).
    pub fn set_handshake_timeout(&mut self, d: Option<Duration>) {
        self.handshake_timeout = d;
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// Waits for the next connection and returns it un-handshaken, with its peer's address.
    ///
    /// # Errors
    /// As [`TcpListener::accept`].
    pub fn accept(&self) -> io::Result<(TlsStream, SocketAddr)> {
        let (tcp, peer) = self.tcp.accept()?;
        let s = TlsStream::server(tcp, &self.config)?;
        s.set_handshake_deadline(
            self.handshake_timeout
                .and_then(|d| Instant::now().checked_add(d)),
        );
        Ok((s, peer))
    }

    /// The listening address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Closes the listener: accepts blocked in other goroutines fail with the closed error.
    ///
    /// # Errors
    /// As [`TcpListener::close`].
    pub fn close(&self) -> io::Result<()> {
        self.tcp.close()
    }

    /// The configuration (a clone shares its reloadable certificate).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}
