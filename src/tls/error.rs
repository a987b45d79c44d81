//! TLS errors: what went wrong in a handshake, said the way Go's `crypto/tls` and
//! `crypto/x509` say it, with rustls's own error kept as the source.

use std::fmt;
use std::io;

use rustls::{AlertDescription, CertificateError};

/// What kind of failure a [`TlsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The peer's certificate is signed by an authority this side does not trust (Go's
    /// `x509: certificate signed by unknown authority`).
    UnknownAuthority,
    /// The server's certificate is not valid for the name the client asked for (Go's
    /// `x509: certificate is valid for X, not Y`).
    WrongHost,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// The certificate is malformed, badly signed, or not for this use.
    BadCertificate,
    /// The server requires a client certificate and the client sent none.
    CertificateRequired,
    /// The peer does not speak TLS: its first bytes are not a TLS handshake record (Go's
    /// `tls: first record does not look like a TLS handshake`).
    NotTls,
    /// The client sent plain HTTP to a TLS server (Go's `client sent an HTTP request to an
    /// HTTPS server`).
    HttpToHttps,
    /// Client and server share no ALPN protocol.
    NoApplicationProtocol,
    /// The configuration is unusable (a PEM file without a certificate or key, a key that does
    /// not match its certificate, a malformed server name).
    Config,
    /// Any other handshake or record-layer failure (a protocol violation, a failed decryption,
    /// an alert without a more precise meaning).
    Protocol,
}

/// A TLS failure. It travels inside an [`io::Error`] (kind `InvalidData`, or `InvalidInput`
/// for [`TlsErrorKind::Config`]) from reads, writes and handshakes; get it back with
/// [`TlsError::from_io`]. Its source is rustls's error, where there is one.
///
/// ```
/// use goway::tls::{TlsError, TlsErrorKind};
/// let err = goway::tls::ServerConfig::from_pem(b"not pem", b"not pem").unwrap_err();
/// assert_eq!(TlsError::from_io(&err).unwrap().kind(), TlsErrorKind::Config);
/// ```
#[derive(Debug, Clone)]
pub struct TlsError {
    kind: TlsErrorKind,
    remote: bool,
    msg: String,
    source: Option<rustls::Error>,
}

impl TlsError {
    /// The kind of failure.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// `true` when the peer reported the failure (a TLS alert it sent: Go's `remote error`),
    /// `false` when this side found it.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// rustls's error, if the failure came from rustls.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        self.source.as_ref()
    }

    /// The TLS error inside an I/O error from a [`TlsStream`](super::TlsStream), a dial or a
    /// config constructor, if it carries one.
    pub fn from_io(e: &io::Error) -> Option<&TlsError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsError>())
    }

    pub(crate) fn config(msg: impl Into<String>) -> TlsError {
        TlsError {
            kind: TlsErrorKind::Config,
            remote: false,
            msg: msg.into(),
            source: None,
        }
    }

    pub(crate) fn not_tls(http: bool) -> TlsError {
        let (kind, msg) = if http {
            (
                TlsErrorKind::HttpToHttps,
                "tls: client sent an HTTP request to an HTTPS server",
            )
        } else {
            (
                TlsErrorKind::NotTls,
                "tls: first record does not look like a TLS handshake",
            )
        };
        TlsError {
            kind,
            remote: false,
            msg: msg.to_string(),
            source: None,
        }
    }

    /// Classifies rustls's error.
    pub(crate) fn from_rustls(e: rustls::Error) -> TlsError {
        use TlsErrorKind as K;
        let (kind, remote, msg) = match &e {
            rustls::Error::InvalidCertificate(c) => {
                let (kind, msg) = cert_kind(c);
                (kind, false, msg)
            }
            rustls::Error::NoCertificatesPresented => (
                K::CertificateRequired,
                false,
                "tls: client didn't provide a certificate".to_string(),
            ),
            rustls::Error::NoApplicationProtocol => (
                K::NoApplicationProtocol,
                false,
                "tls: no application protocol in common with the peer".to_string(),
            ),
            rustls::Error::AlertReceived(a) => {
                let kind = match a {
                    AlertDescription::UnknownCA => K::UnknownAuthority,
                    AlertDescription::CertificateExpired => K::Expired,
                    AlertDescription::BadCertificate
                    | AlertDescription::UnsupportedCertificate
                    | AlertDescription::CertificateRevoked
                    | AlertDescription::CertificateUnknown => K::BadCertificate,
                    AlertDescription::CertificateRequired => K::CertificateRequired,
                    AlertDescription::NoApplicationProtocol => K::NoApplicationProtocol,
                    _ => K::Protocol,
                };
                (kind, true, format!("remote error: tls: {}", alert_text(*a)))
            }
            rustls::Error::InconsistentKeys(_) => (
                K::Config,
                false,
                "tls: private key does not match public key".to_string(),
            ),
            other => (K::Protocol, false, format!("tls: {other}")),
        };
        TlsError {
            kind,
            remote,
            msg,
            source: Some(e),
        }
    }

    /// This error in an `io::Error`.
    pub(crate) fn into_io(self) -> io::Error {
        let k = if self.kind == TlsErrorKind::Config {
            io::ErrorKind::InvalidInput
        } else {
            io::ErrorKind::InvalidData
        };
        io::Error::new(k, self)
    }
}

fn cert_kind(c: &CertificateError) -> (TlsErrorKind, String) {
    use TlsErrorKind as K;
    match c {
        CertificateError::UnknownIssuer => (
            K::UnknownAuthority,
            "x509: certificate signed by unknown authority".to_string(),
        ),
        CertificateError::NotValidForName => (
            K::WrongHost,
            "x509: certificate is not valid for the requested name".to_string(),
        ),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => (
            K::WrongHost,
            format!(
                "x509: certificate is valid for {}, not {}",
                presented
                    .iter()
                    .map(|n| bare_name(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                expected.to_str()
            ),
        ),
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => (
            K::Expired,
            format!("x509: certificate has expired or is not yet valid ({c})"),
        ),
        other => (
            K::BadCertificate,
            format!("x509: bad certificate ({other})"),
        ),
    }
}

/// Go's names of the alerts a peer sends most.
fn alert_text(a: AlertDescription) -> String {
    match a {
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::UnknownCA => "unknown certificate authority".into(),
        AlertDescription::CertificateExpired => "expired certificate".into(),
        AlertDescription::CertificateRequired => "certificate required".into(),
        AlertDescription::HandshakeFailure => "handshake failure".into(),
        AlertDescription::ProtocolVersion => "protocol version not supported".into(),
        AlertDescription::NoApplicationProtocol => "no application protocol".into(),
        AlertDescription::DecodeError => "error decoding message".into(),
        AlertDescription::UnexpectedMessage => "unexpected message".into(),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An `io::Error` with the same kind and the same TLS error (if any) as `e`: for the error
/// of a handshake that every later call reports again.
pub(crate) fn clone_io(e: &io::Error) -> io::Error {
    match TlsError::from_io(e) {
        Some(t) => io::Error::new(e.kind(), t.clone()),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// A name as rustls presents it (`DnsName("example.com")`, `IpAddress(127.0.0.1)`) in Go's
/// bare form (`example.com`, `127.0.0.1`); anything else unchanged.
fn bare_name(n: &str) -> &str {
    match n.split_once('(') {
        Some((kind, rest))
            if !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            let inner = rest.strip_suffix(')').unwrap_or(rest);
            inner
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .unwrap_or(inner)
        }
        _ => n,
    }
}
