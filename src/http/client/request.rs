//! Building a request (Go's `http.NewRequest`, `NewRequestWithContext`) and its body.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use super::error::ClientError;
use super::url::Url;
use crate::context::Context;
use crate::http::Header;

/// A request body: none, bytes (which can be sent again: after a redirect, or on a retry
/// over a fresh connection) or any reader (sent once; with a known length as
/// `Content-Length`, else chunked).
///
/// # Examples
/// ```
/// use goway::http::RequestBody;
/// assert_eq!(RequestBody::from("hello").len(), Some(5));
/// assert!(RequestBody::from("hello").is_replayable());
/// let r = RequestBody::from_reader(std::io::empty());
/// assert_eq!(r.len(), None);
/// assert!(!r.is_replayable());
/// ```
#[derive(Default)]
pub struct RequestBody(pub(crate) BodyKind);

#[derive(Default)]
pub(crate) enum BodyKind {
    #[default]
    Empty,
    Bytes(Arc<[u8]>),
    Reader {
        reader: Box<dyn Read + Send>,
        len: Option<u64>,
    },
    /// A reader already sent.
    Consumed,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            BodyKind::Empty => f.write_str("RequestBody::Empty"),
            BodyKind::Bytes(b) => write!(f, "RequestBody::Bytes({} bytes)", b.len()),
            BodyKind::Reader { len, .. } => write!(f, "RequestBody::Reader(len {len:?})"),
            BodyKind::Consumed => f.write_str("RequestBody::Consumed"),
        }
    }
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        RequestBody(BodyKind::Empty)
    }

    /// A body read from `r` until its end, sent chunked (its length is unknown).
    pub fn from_reader(r: impl Read + Send + 'static) -> Self {
        RequestBody(BodyKind::Reader {
            reader: Box::new(r),
            len: None,
        })
    }

    /// A body of exactly `len` bytes read from `r`, sent with `Content-Length: len`. The
    /// request fails ([`ClientError::BodyLength`]) if `r` ends early; bytes after `len`
    /// are not read.
    pub fn from_reader_len(r: impl Read + Send + 'static, len: u64) -> Self {
        RequestBody(BodyKind::Reader {
            reader: Box::new(r),
            len: Some(len),
        })
    }

    /// The length, if known.
    pub fn len(&self) -> Option<u64> {
        match &self.0 {
            BodyKind::Empty | BodyKind::Consumed => Some(0),
            BodyKind::Bytes(b) => Some(b.len() as u64),
            BodyKind::Reader { len, .. } => *len,
        }
    }

    /// Whether there is no body at all (a known length of 0).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the body can be sent again (Go's `GetBody != nil`): none, or bytes.
    pub fn is_replayable(&self) -> bool {
        matches!(self.0, BodyKind::Empty | BodyKind::Bytes(_))
    }

    /// The body to send now: a copy of a replayable one, or the reader itself (the
    /// request then holds `Consumed`).
    pub(crate) fn take_for_send(&mut self) -> BodyKind {
        match &self.0 {
            BodyKind::Empty => BodyKind::Empty,
            BodyKind::Bytes(b) => BodyKind::Bytes(b.clone()),
            BodyKind::Consumed => BodyKind::Consumed,
            BodyKind::Reader { .. } => std::mem::replace(&mut self.0, BodyKind::Consumed),
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> Self {
        if v.is_empty() {
            RequestBody::empty()
        } else {
            RequestBody(BodyKind::Bytes(v.into()))
        }
    }
}

impl From<&[u8]> for RequestBody {
    fn from(v: &[u8]) -> Self {
        RequestBody::from(v.to_vec())
    }
}

impl From<&str> for RequestBody {
    fn from(v: &str) -> Self {
        RequestBody::from(v.as_bytes())
    }
}

impl From<String> for RequestBody {
    fn from(v: String) -> Self {
        RequestBody::from(v.into_bytes())
    }
}

impl From<()> for RequestBody {
    fn from(_: ()) -> Self {
        RequestBody::empty()
    }
}

/// An outgoing request (Go's `*http.Request` on the client side): a method, a URL,
/// header fields, a body and a [`Context`] that cancels it.
///
/// The client adds `Host`, `User-Agent` (unless set), and `Content-Length` or
/// `Transfer-Encoding: chunked` from the body.
///
/// # Examples
/// ```
/// use goway::http::ClientRequest;
/// let mut req = ClientRequest::new("POST", "http://127.0.0.1:9/items").unwrap();
/// req.header_mut().set("Content-Type", "application/json");
/// let req = req.with_body(r#"{"name":"x"}"#);
/// assert_eq!(req.method(), "POST");
/// assert_eq!(req.url().path(), "/items");
/// ```
#[derive(Debug)]
pub struct ClientRequest {
    pub(crate) method: String,
    pub(crate) url: Url,
    pub(crate) header: Header,
    pub(crate) body: RequestBody,
    pub(crate) context: Context,
    pub(crate) close: bool,
}

impl ClientRequest {
    /// A request for `method` and `url`, no body, the background context (Go's
    /// `http.NewRequest`).
    ///
    /// # Errors
    /// A bad URL or method ([`ClientError::InvalidUrl`], [`ClientError::UnsupportedScheme`],
    /// [`ClientError::Protocol`] for a method that is not a token).
    pub fn new(method: &str, url: &str) -> Result<ClientRequest, ClientError> {
        let method = if method.is_empty() { "GET" } else { method };
        if !crate::http::header::valid_name(method.as_bytes()) {
            return Err(ClientError::Protocol(format!(
                "net/http: invalid method {method:?}"
            )));
        }
        Ok(ClientRequest::from_url(method, Url::parse(url)?))
    }

    /// A request for an already parsed URL.
    pub fn from_url(method: &str, url: Url) -> ClientRequest {
        ClientRequest {
            method: method.to_owned(),
            url,
            header: Header::new(),
            body: RequestBody::empty(),
            context: Context::default(),
            close: false,
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<RequestBody>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the context (Go's `NewRequestWithContext`): cancelling it, or its deadline,
    /// ends the request wherever it is (connecting, writing, waiting for the response, or
    /// reading the response body).
    pub fn with_context(mut self, ctx: Context) -> Self {
        self.context = ctx;
        self
    }

    /// Asks for the connection to be closed after the response (Go's `req.Close`).
    pub fn with_close(mut self, close: bool) -> Self {
        self.close = close;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header fields, to set some.
    pub fn header_mut(&mut self) -> &mut Header {
        &mut self.header
    }

    /// The body.
    pub fn body(&self) -> &RequestBody {
        &self.body
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether the method is idempotent, so the request may be sent again on a fresh
    /// connection when a kept-alive one turns out closed (Go's `isReplayable`: GET, HEAD,
    /// OPTIONS, TRACE, or an `Idempotency-Key` header), with a body that can be sent again.
    pub(crate) fn is_replayable(&self) -> bool {
        self.body.is_replayable()
            && (matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE")
                || self.header.contains("Idempotency-Key")
                || self.header.contains("X-Idempotency-Key"))
    }
}
