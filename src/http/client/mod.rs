//! An HTTP/1.1 client the Go way (Go's `http.Client`): a [`Client`] with a timeout and a
//! redirect policy over a [`Transport`] that keeps idle keep-alive connections per host.
//! Every blocking step (connecting, writing, waiting for the response, reading its body)
//! parks the calling goroutine only.
//!
//! | Go | goway |
//! |---|---|
//! | `http.Get(url)` | [`http::get(url)`](get) |
//! | `http.Post(url, ct, body)` | [`http::post(url, ct, body)`](post) |
//! | `c := &http.Client{Timeout: t}` | [`Client::new().with_timeout(t)`](Client::with_timeout) |
//! | `http.NewRequestWithContext(ctx, m, url, body)` | [`ClientRequest::new(m, url)?.with_context(ctx).with_body(b)`](ClientRequest) |
//! | `c.Do(req)` | [`c.send(req)`](Client::send) |
//! | `resp.StatusCode`, `resp.Header`, `resp.Body` | [`resp.status()`](Response::status), [`resp.header()`](Response::header), [`resp.body`](Response::body) (a `Read`) |
//! | `&http.Transport{MaxIdleConnsPerHost: n}` | [`Transport::new(TransportConfig { max_idle_conns_per_host: n, .. })`](Transport::new) |
//! | `CheckRedirect` | [`RedirectPolicy`] |
//!
//! # Behaviour (as Go's)
//! - Responses are streamed: [`Response::body`] reads `Content-Length`, chunked, or
//!   close-delimited bodies from the connection; `1xx` responses are skipped; `HEAD`, `204`
//!   and `304` have no body. A body that ends early fails with `UnexpectedEof`.
//! - A response with both `Content-Length` and `Transfer-Encoding`, differing
//!   `Content-Length`s, another transfer coding, or a malformed status line fails with
//!   [`ClientError::Protocol`].
//! - A connection goes back to the pool when its response body was read to the end;
//!   dropping a body early closes the connection (unless its rest had arrived).
//! - A kept-alive connection the server had closed is detected when the request fails
//!   on it before any response byte; the request is sent again on another connection if
//!   it is idempotent (`GET`, `HEAD`, `OPTIONS`, `TRACE`, or an `Idempotency-Key`) with a
//!   body that can be sent again, or if nothing of it was written.
//! - Redirects: see [`RedirectPolicy`]; sensitive headers (`Authorization`, `Cookie`, ...)
//!   are not sent to another host.
//! - `https://` URLs run TLS through [`goway::tls`](crate::tls), verifying the server
//!   against the system's roots (or [`TransportConfig::tls`]) and the URL's host, with ALPN
//!   `http/1.1`; a certificate problem is a [`ClientError::Tls`]. The pool keeps
//!   connections per scheme, host and port, and redirects may go between `http` and
//!   `https`.
//! - [`TransportConfig::max_conns_per_host`] bounds a host's connections; requests beyond
//!   it wait for one.
//!
//! # Examples
//! ```
//! use std::io::Read;
//! use std::time::Duration;
//! use goway::http::{Client, ClientRequest, Request, ResponseWriter, Server};
//!
//! let srv = Server::builder()
//!     .addr("127.0.0.1:0")
//!     .handler(|r: &Request, w: &mut ResponseWriter| {
//!         let body = r.read_body().unwrap_or_default();
//!         let _ = std::io::Write::write_all(w, &body);
//!     })
//!     .bind()
//!     .unwrap();
//! let addr = srv.local_addr().unwrap();
//! let handle = srv.handle();
//! goway::go!(move || srv.serve());
//!
//! let client = Client::new().with_timeout(Duration::from_secs(10));
//! let url = format!("http://{addr}/echo");
//! let mut resp = client.post(&url, "text/plain", "ping").unwrap();
//! let mut got = String::new();
//! resp.body.read_to_string(&mut got).unwrap();
//! assert_eq!(got, "ping");
//!
//! let req = ClientRequest::new("PUT", &url).unwrap().with_body("pong");
//! assert_eq!(client.send(req).unwrap().text().unwrap(), "pong");
//! handle.shutdown().unwrap();
//! ```

mod conn;
mod connect;
mod error;
mod pool;
mod redirect;
mod request;
mod response;
mod tls;
mod transport;
mod url;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use conn::Conn;
pub use connect::{Dialer, TlsConnector};
pub use error::ClientError;
pub use pool::TransportStats;
pub use redirect::{RedirectAction, RedirectFn, RedirectPolicy};
pub use request::{ClientRequest, RequestBody};
pub use response::{Response, ResponseBody};
pub use transport::{Transport, TransportConfig};
pub use url::Url;

/// An HTTP client (Go's `http.Client`): a transport, an overall timeout per request, a
/// redirect policy. Cheap to clone (clones share the transport's pool); make one and share
/// it.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use goway::http::{Client, RedirectPolicy};
/// let client = Client::new()
///     .with_timeout(Duration::from_secs(5))
///     .with_redirect(RedirectPolicy::limit(3));
/// assert_eq!(client.timeout(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Client {
    timeout: Option<Duration>,
    transport: Transport,
    redirect: RedirectPolicy,
}

impl Client {
    /// A client with a transport of its own (Go's defaults), no timeout, and Go's
    /// redirect policy.
    pub fn new() -> Client {
        Client::default()
    }

    /// Sets the time limit of each request, from connecting to the end of reading the
    /// response body, redirects included (Go's `Client.Timeout`).
    pub fn with_timeout(mut self, t: Duration) -> Client {
        self.timeout = Some(t);
        self
    }

    /// Uses `t` (and its pool).
    pub fn with_transport(mut self, t: Transport) -> Client {
        self.transport = t;
        self
    }

    /// Sets the redirect policy.
    pub fn with_redirect(mut self, p: RedirectPolicy) -> Client {
        self.redirect = p;
        self
    }

    /// The timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// `GET url`.
    ///
    /// # Errors
    /// See [`ClientError`]. A response with an error status is not an error.
    pub fn get(&self, url: &str) -> Result<Response, ClientError> {
        self.send(ClientRequest::new("GET", url)?)
    }

    /// `HEAD url`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn head(&self, url: &str) -> Result<Response, ClientError> {
        self.send(ClientRequest::new("HEAD", url)?)
    }

    /// `POST url` with this body and `Content-Type`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        body: impl Into<RequestBody>,
    ) -> Result<Response, ClientError> {
        let mut req = ClientRequest::new("POST", url)?.with_body(body);
        req.header_mut().set("Content-Type", content_type);
        self.send(req)
    }

    /// Sends `req`, following redirects as the policy says (Go's `Client.Do`).
    ///
    /// # Errors
    /// See [`ClientError`]. A response with an error status is not an error.
    #[doc(alias = "do")]
    pub fn send(&self, req: ClientRequest) -> Result<Response, ClientError> {
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        let mut req = req;
        let mut via = Vec::new();
        loop {
            let resp = self.transport.round_trip_until(&mut req, deadline)?;
            let Some(next) = redirect::next_request(&mut req, &resp) else {
                return Ok(resp);
            };
            via.push(req.url.clone());
            let err = match self.redirect.check(&next.url, &via) {
                Ok(RedirectAction::Follow) => None,
                Ok(RedirectAction::UseLastResponse) => return Ok(resp),
                Ok(RedirectAction::Error(m)) => Some(ClientError::Redirect(m)),
                Err(n) => Some(ClientError::TooManyRedirects(n)),
            };
            // Read a small rest so the connection can be reused, as Go does (2 KiB).
            drain_small(resp);
            if let Some(e) = err {
                return Err(e);
            }
            req = next;
        }
    }
}

/// Reads up to 2 KiB of a redirect's body (so its connection can be reused), then drops
/// it.
fn drain_small(mut resp: Response) {
    use std::io::Read;
    let mut sink = [0u8; 2048];
    let mut left = 2048usize;
    while left > 0 {
        match resp.body.read(&mut sink[..left]) {
            Ok(0) | Err(_) => break,
            Ok(n) => left -= n,
        }
    }
}

fn default_client() -> &'static Client {
    static DEFAULT: OnceLock<Client> = OnceLock::new();
    DEFAULT.get_or_init(Client::new)
}

/// `GET url` with the default client (Go's `http.Get`): no timeout, Go's redirect policy,
/// a shared pool.
///
/// # Errors
/// See [`ClientError`].
///
/// # Examples
/// ```
/// let err = goway::http::get("http://127.0.0.1:1/").unwrap_err();
/// assert!(err.to_string().starts_with("dial tcp 127.0.0.1:1: "), "{err}");
/// ```
pub fn get(url: &str) -> Result<Response, ClientError> {
    default_client().get(url)
}

/// `HEAD url` with the default client (Go's `http.Head`).
///
/// # Errors
/// See [`ClientError`].
pub fn head(url: &str) -> Result<Response, ClientError> {
    default_client().head(url)
}

/// `POST url` with the default client (Go's `http.Post`).
///
/// # Errors
/// See [`ClientError`].
pub fn post(
    url: &str,
    content_type: &str,
    body: impl Into<RequestBody>,
) -> Result<Response, ClientError> {
    default_client().post(url, content_type, body)
}
