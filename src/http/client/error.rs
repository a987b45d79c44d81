//! The client's errors, with Go's texts.

use std::io;

use crate::context::ContextError;

/// Why a request failed (Go's `*url.Error` and the errors it wraps).
///
/// # Examples
/// ```
/// let err = goway::http::get("ftp://example.com/").unwrap_err();
/// assert_eq!(err.to_string(), "unsupported protocol scheme \"ftp\"");
/// assert!(!err.is_timeout());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is malformed.
    #[error("parse {url:?}: {why}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A scheme other than `http` and `https`.
    #[error("unsupported protocol scheme {0:?}")]
    UnsupportedScheme(String),
    /// The connection could not be made (Go's `dial tcp <addr>: <err>`); a timeout is
    /// [`TimedOut`](io::ErrorKind::TimedOut).
    #[error("dial tcp {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The dialer's error.
        source: io::Error,
    },
    /// The TLS handshake failed or timed out. The text is the TLS error's, as Go's
    /// (`x509: certificate signed by unknown authority`, `x509: certificate is valid for
    /// localhost, not example.com`, `net/http: TLS handshake timeout`);
    /// [`tls_error`](Self::tls_error) gives its [kind](crate::tls::TlsErrorKind).
    #[error("{source}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// The connector's error.
        source: io::Error,
    },
    /// A time limit passed: the client's `timeout`, or the transport's response header
    /// timeout. The text says which, as Go's does.
    #[error("{0}")]
    Timeout(&'static str),
    /// The request's context was cancelled or its deadline passed.
    #[error("{0}")]
    Canceled(ContextError),
    /// The response is not valid HTTP/1.x (a malformed status line, conflicting framing,
    /// a head over the limit, ...).
    #[error("{0}")]
    Protocol(String),
    /// Writing the request or reading the response failed.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The request body's reader gave a different length than the one declared.
    #[error("http: ContentLength={declared} with Body length {actual}")]
    BodyLength {
        /// The declared length.
        declared: u64,
        /// The bytes the reader gave (at least).
        actual: u64,
    },
    /// More redirects than the policy allows (Go's `stopped after 10 redirects`).
    #[error("stopped after {0} redirects")]
    TooManyRedirects(usize),
    /// A custom redirect policy refused to follow.
    #[error("{0}")]
    Redirect(String),
}

/// Text of a client timeout while waiting for the response head.
pub(crate) const CLIENT_TIMEOUT_HEADERS: &str =
    "net/http: request canceled (Client.Timeout exceeded while awaiting headers)";
/// Text of a client timeout while connecting or writing the request.
pub(crate) const CLIENT_TIMEOUT: &str = "net/http: request canceled (Client.Timeout exceeded)";
/// Text of the transport's response header timeout.
pub(crate) const HEADER_TIMEOUT: &str = "net/http: timeout awaiting response headers";
/// Text of the transport's TLS handshake timeout.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: &str = "net/http: TLS handshake timeout";
/// Text of a timeout while reading a body.
pub(crate) const BODY_TIMEOUT: &str =
    "context deadline exceeded (Client.Timeout or context cancellation while reading body)";

impl ClientError {
    /// `true` for a timeout of any kind (Go's `err.Timeout()`): the client's, the
    /// transport's, a dial or handshake timeout, or a context's deadline.
    pub fn is_timeout(&self) -> bool {
        match self {
            ClientError::Timeout(_) => true,
            ClientError::Canceled(e) => e.is_timeout(),
            ClientError::Connect { source, .. } | ClientError::Tls { source, .. } => {
                source.kind() == io::ErrorKind::TimedOut
            }
            ClientError::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// The TLS error of a failed handshake (unknown authority, wrong host, expired, ...), or
    /// of a TLS read or write, if this is one.
    ///
    /// # Examples
    /// ```no_run
    /// use goway::tls::TlsErrorKind;
    /// let err = goway::http::get("https://wrong.host.badssl.com/").unwrap_err();
    /// assert_eq!(err.tls_error().map(|t| t.kind()), Some(TlsErrorKind::WrongHost));
    /// ```
    pub fn tls_error(&self) -> Option<&crate::tls::TlsError> {
        match self {
            ClientError::Tls { source, .. } | ClientError::Io(source) => {
                crate::tls::TlsError::from_io(source)
            }
            _ => None,
        }
    }

    /// `true` if the request's context ended it.
    pub fn is_canceled(&self) -> bool {
        matches!(self, ClientError::Canceled(_))
    }
}

impl From<ClientError> for io::Error {
    /// An `io::Error` carrying the client error: `TimedOut` for timeouts,
    /// `Other` for a cancellation (not `Interrupted`, which readers retry),
    /// the socket's kind for connect and I/O errors,
    /// `InvalidData` for protocol errors, `Other` otherwise.
    fn from(e: ClientError) -> io::Error {
        let kind = match &e {
            _ if e.is_timeout() => io::ErrorKind::TimedOut,
            ClientError::Canceled(_) => io::ErrorKind::Other,
            ClientError::Connect { source, .. } | ClientError::Io(source) => source.kind(),
            ClientError::Protocol(_) => io::ErrorKind::InvalidData,
            ClientError::InvalidUrl { .. } | ClientError::UnsupportedScheme(_) => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
