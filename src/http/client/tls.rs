//! HTTPS for the transport through [`goway::tls`](crate::tls): a
//! [`ClientConfig`](crate::tls::ClientConfig) is a [`TlsConnector`], and the default one
//! trusts the system's certificate store (as Go's `crypto/x509` does on Linux).

use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;

use super::conn::Conn;
use super::connect::TlsConnector;
use crate::tls::{ClientConfig, TlsStream};

impl Conn for TlsStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self).read(buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self).write(buf)
    }
    fn close(&self) {
        let _ = TlsStream::close(self);
    }
    fn abort(&self) {
        // The TCP stream only: TlsStream::close writes close_notify, which can wait.
        let _ = self.get_ref().close();
    }
    fn set_read_deadline(&self, t: Option<Instant>) {
        TlsStream::set_read_deadline(self, t);
    }
    fn set_write_deadline(&self, t: Option<Instant>) {
        TlsStream::set_write_deadline(self, t);
    }
}

/// A [`ClientConfig`] runs the client handshake of `https://` requests: the server is
/// verified against the URL's host (also sent as SNI unless it is an IP address), or the
/// configuration's [server name](ClientConfig::with_server_name). The connection must be a
/// TCP one (from the default [`Dialer`](super::Dialer), or a custom one that returns a
/// [`TcpStream`](crate::net::TcpStream)); the transport offers ALPN `http/1.1` through the
/// configurations it makes itself (see [`TransportConfig::tls`](super::TransportConfig::tls)).
impl TlsConnector for ClientConfig {
    fn handshake(
        &self,
        conn: Box<dyn Conn>,
        server_name: &str,
        timeout: Option<Duration>,
    ) -> io::Result<Box<dyn Conn>> {
        let tcp = conn.into_tcp().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "http: TLS needs a TCP connection from the dialer",
            )
        })?;
        let s = TlsStream::client(tcp, self, server_name)?;
        s.set_handshake_deadline(timeout.and_then(|t| Instant::now().checked_add(t)));
        s.handshake()?;
        Ok(Box::new(s))
    }
}

/// The configuration of a transport without its own: the system's roots, ALPN `http/1.1`.
/// Loaded once, on the first `https://` request (so a program that makes none reads no
/// file); every such transport shares it, and with it rustls's session cache.
pub(super) fn default_config() -> ClientConfig {
    static CFG: OnceLock<ClientConfig> = OnceLock::new();
    CFG.get_or_init(|| with_http_alpn(ClientConfig::from_rustls(Arc::new(system_config()))))
        .clone()
}

/// `cfg` offering ALPN `http/1.1` only: the transport speaks HTTP/1.1, so a server must not
/// pick `h2`.
pub(super) fn with_http_alpn(cfg: ClientConfig) -> ClientConfig {
    cfg.with_alpn(&["http/1.1"])
}

/// Where Linux distributions keep their CA bundle (the list Go's `crypto/x509` tries).
const CERT_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// A rustls client configuration trusting the system's roots: `SSL_CERT_FILE` if set, else
/// the first bundle of [`CERT_FILES`] that holds a usable certificate, else Mozilla's roots
/// compiled in (a `scratch` container has no bundle).
// rustls 0.23.48 deprecates the `ring` provider only for its lack of post-quantum key
// exchange; it is goway::tls's provider too.
#[allow(deprecated)]
fn system_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let files = env
        .into_iter()
        .chain(CERT_FILES.iter().map(std::path::PathBuf::from));
    for path in files {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        // A bundle can hold a certificate rustls cannot use as a root: skip it, as Go does.
        let (added, skipped) = roots.add_parsable_certificates(certs);
        if added > 0 {
            log::debug!(
                "http client: {added} roots from {} ({skipped} skipped)",
                path.display()
            );
            break;
        }
    }
    if roots.is_empty() {
        log::debug!("http client: no system CA bundle; using the compiled-in Mozilla roots");
        roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        // The ring provider supports the default versions: this cannot fail.
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
}

/// The connector of a transport without a TLS configuration: [`default_config`], loaded on
/// its first handshake.
pub(super) struct SystemRoots;

impl TlsConnector for SystemRoots {
    fn handshake(
        &self,
        conn: Box<dyn Conn>,
        server_name: &str,
        timeout: Option<Duration>,
    ) -> io::Result<Box<dyn Conn>> {
        default_config().handshake(conn, server_name, timeout)
    }
}
