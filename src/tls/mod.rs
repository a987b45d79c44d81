//! TLS for goway's streams and servers, blocking-style, on rustls (Go's `crypto/tls`).
//!
//! | Go | goway |
//! |---|---|
//! | `tls.LoadX509KeyPair(cert, key)` + `&tls.Config{Certificates: …}` | [`ServerConfig::from_pem_files`] |
//! | `tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}` | [`ServerConfig::with_client_auth`]`(`[`ClientAuth::Require`]`(pool))` |
//! | `tls.Config{NextProtos: …}` | [`ServerConfig::with_alpn`], [`ClientConfig::with_alpn`] |
//! | `tls.Config{RootCAs: pool, ServerName: name}` | [`ClientConfig::with_roots`]`(pool)`[`.with_server_name(name)`](ClientConfig::with_server_name) |
//! | `x509.NewCertPool()` + `AppendCertsFromPEM` | [`CertPool::from_pem`] |
//! | `tls.Dial("tcp", addr, cfg)` / `tls.DialWithDialer` (timeout) | [`dial`] / [`dial_timeout`] |
//! | `tls.Listen("tcp", addr, cfg)` / `tls.NewListener` | [`Listener::bind`] / [`Listener::new`] |
//! | `tls.Client(conn, cfg)` / `tls.Server(conn, cfg)` | [`TlsStream::client`] / [`TlsStream::server`] |
//! | `c.Handshake()`, `c.ConnectionState().PeerCertificates`, `.NegotiatedProtocol`, `.ServerName` | [`handshake`](TlsStream::handshake), [`peer_certificates`](TlsStream::peer_certificates), [`alpn_protocol`](TlsStream::alpn_protocol), [`server_name`](TlsStream::server_name) |
//! | `c.CloseWrite()` / `c.Close()` | [`shutdown`](TlsStream::shutdown) / [`close`](TlsStream::close) (both send close_notify) |
//! | `io.ErrUnexpectedEOF` from a peer gone without close_notify | `ErrorKind::UnexpectedEof` |
//! | `x509.UnknownAuthorityError`, `x509.HostnameError`, … | [`TlsError`] with a [`TlsErrorKind`] |
//! | `http.Server{TLSConfig}.ListenAndServeTLS` | [`net::server::Builder::tls`](crate::net::server::Builder::tls), [`http::Builder::tls`](crate::http::Builder::tls) |
//!
//! The crypto is rustls's `ring` provider: pure Rust with a small C and assembly part that
//! `cc` builds, so goway needs no cmake, Go or nasm (which aws-lc-rs would).
//!
//! A [`ClientConfig::new`] trusts Mozilla's root program as compiled into the `webpki-roots`
//! crate, not the system's store: the same roots on every machine and in every container
//! (a `scratch` image has no `/etc/ssl`), with no file read at start-up. A client that must
//! trust the system's store or a private CA passes its certificates to
//! [`ClientConfig::with_roots`] (see [`CertPool::from_pem_file`]).
//!
//! Certificates can be renewed without a restart: [`ServerConfig::reload_pem_files`] on the
//! configuration a server or listener was given makes its next handshakes present the new
//! certificate.

mod config;
mod error;
mod listener;
mod stream;

use std::io;
use std::time::{Duration, Instant};

pub use config::{CertPool, ClientAuth, ClientConfig, ServerConfig};
pub use error::{TlsError, TlsErrorKind};
pub use listener::{DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub use stream::{TlsReadHalf, TlsStream, TlsWriteHalf};

use crate::net::ToAddrs;

/// Connects to `addr` and runs the TLS handshake (Go's `tls.Dial`), verifying the server
/// against `server_name` (or the configuration's override).
///
/// # Errors
/// As [`crate::net::dial`]; then the handshake's errors ([`TlsStream::handshake`]).
///
/// # Examples
/// ```
/// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = ln.local_addr().unwrap();
/// // A server that does not speak TLS: it ends its side at once (reading what comes).
/// let server = goway::go!(move || {
///     let (c, _) = ln.accept().unwrap();
///     c.shutdown(std::net::Shutdown::Write).unwrap();
///     let _ = std::io::copy(&mut &c, &mut std::io::sink());
/// });
/// let cfg = goway::tls::ClientConfig::new();
/// let err = goway::tls::dial(addr, &cfg, "localhost").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
/// server.join().unwrap();
/// ```
pub fn dial(addr: impl ToAddrs, config: &ClientConfig, server_name: &str) -> io::Result<TlsStream> {
    let tcp = crate::net::dial(addr)?;
    let s = TlsStream::client(tcp, config, server_name)?;
    s.handshake()?;
    Ok(s)
}

/// [`dial`] with one timeout for the connection and the handshake together (Go's
/// `tls.DialWithDialer` with a `Dialer.Timeout`).
///
/// # Errors
/// `TimedOut` when the time is up; otherwise as [`dial`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// // The kernel completes the TCP connection; nobody ever answers the ClientHello.
/// let cfg = goway::tls::ClientConfig::new();
/// let addr = ln.local_addr().unwrap();
/// let err = goway::tls::dial_timeout(addr, &cfg, "localhost", Duration::from_millis(200));
/// assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// ```
pub fn dial_timeout(
    addr: impl ToAddrs,
    config: &ClientConfig,
    server_name: &str,
    timeout: Duration,
) -> io::Result<TlsStream> {
    let end = Instant::now().checked_add(timeout);
    let tcp = crate::net::dial_timeout(addr, timeout)?;
    let s = TlsStream::client(tcp, config, server_name)?;
    s.set_handshake_deadline(end);
    s.handshake()?;
    Ok(s)
}
