//! The request a handler gets (Go's `http.Request`).

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use super::body::BodyState;
use super::header::Header;
use super::io::ConnIo;
use super::parse::Head;
use super::query::{self, Query};
use crate::context::{self, CancelFunc, Context};

/// An HTTP request received by the server, as a handler sees it: method, target, headers,
/// path values set by the [`ServeMux`](super::ServeMux), and the body as a [`Read`]er.
///
/// A request lives for one handler call; what a handler wants to keep it copies out.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use goway::http::{Request, ResponseWriter};
///
/// fn upload(r: &Request, w: &mut ResponseWriter) {
///     let name = r.path_value("name").unwrap_or_default();
///     let mut data = Vec::new();
///     if r.body().read_to_end(&mut data).is_err() {
///         goway::http::error(w, "bad body", 400);
///         return;
///     }
///     let _ = write!(w, "{name}: {} bytes, lang {:?}", data.len(), r.query_value("lang"));
/// }
/// # use std::io::Write;
/// # let _ = upload;
/// ```
pub struct Request<'c> {
    pub(crate) head: Head,
    pub(crate) body: &'c RefCell<BodyState>,
    pub(crate) io: &'c RefCell<ConnIo>,
    pub(crate) remote: SocketAddr,
    pub(crate) path_values: RefCell<Vec<(Arc<str>, String)>>,
    pub(crate) pattern: RefCell<Option<Arc<str>>>,
    pub(crate) base_ctx: &'c Context,
    pub(crate) ctx: OnceCell<(Context, CancelFunc)>,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("proto", &self.proto())
            .field("header", &self.head.header)
            .field("remote_addr", &self.remote)
            .finish_non_exhaustive()
    }
}

impl<'c> Request<'c> {
    /// The method: `GET`, `POST`, … (case-sensitive, as sent).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.method());
    /// }
    /// // The reply to a client that sends `DELETE /items/7 HTTP/1.1`:
    /// # let req = "DELETE /items/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "DELETE");
    /// ```
    pub fn method(&self) -> &str {
        self.head.method()
    }

    /// The request target exactly as sent (Go's `RequestURI`): `/items/1?x=2`.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.target());
    /// }
    /// // The reply to a client that sends `GET /items/1?x=2 HTTP/1.1`:
    /// # let req = "GET /items/1?x=2 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "/items/1?x=2");
    /// ```
    pub fn target(&self) -> &str {
        self.head.target()
    }

    /// The path of the target, still percent-encoded (Go's `URL.EscapedPath`): `/a%20b`.
    /// For an absolute-form target (`http://host/p`) it is the path part; for `*` and
    /// `CONNECT` targets it is empty.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.path());
    /// }
    /// // The reply to a client that sends `GET http://example.com/a%20b?x=1 HTTP/1.1`:
    /// # let req = "GET http://example.com/a%20b?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "/a%20b");
    /// ```
    pub fn path(&self) -> &str {
        let t = self.target();
        let t = query::find_byte(t, b'?').map_or(t, |i| &t[..i]);
        if t.starts_with('/') {
            t
        } else if let Some(rest) = t.split_once("://").map(|(_, r)| r) {
            rest.find('/').map_or("/", |i| &rest[i..])
        } else {
            ""
        }
    }

    /// The path, percent-decoded (Go's `URL.Path`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.url_path());
    /// }
    /// // The reply to a client that sends `GET /caf%C3%A9/a%20b HTTP/1.1`:
    /// # let req = "GET /caf%C3%A9/a%20b HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "/caf\u{e9}/a b");
    /// ```
    pub fn url_path(&self) -> Cow<'_, str> {
        query::unescape(self.path(), false)
    }

    /// The query string without `?` (Go's `URL.RawQuery`), `""` if none.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.raw_query());
    /// }
    /// // The reply to a client that sends `GET /search?q=a+b&n=1 HTTP/1.1`:
    /// # let req = "GET /search?q=a+b&n=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "q=a+b&n=1");
    /// ```
    pub fn raw_query(&self) -> &str {
        let t = self.target();
        query::find_byte(t, b'?').map_or("", |i| &t[i + 1..])
    }

    /// The parsed query string (Go's `URL.Query()`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let q = r.query();
    ///     let tags: Vec<_> = q.get_all("tag").collect();
    ///     let _ = write!(w, "{} {}", q.get("q").unwrap_or(""), tags.join(","));
    /// }
    /// // The reply to a client that sends `GET /search?q=a+b&tag=x&tag=y HTTP/1.1`:
    /// # let req = "GET /search?q=a+b&tag=x&tag=y HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "a b x,y");
    /// ```
    pub fn query(&self) -> Query {
        Query::parse(self.raw_query())
    }

    /// The first value of query parameter `key`, decoded (Go's `URL.Query().Get(key)`,
    /// `None` when absent). Scans the raw query without building a [`Query`].
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{:?} {:?}", r.query_value("q"), r.query_value("page"));
    /// }
    /// // The reply to a client that sends `GET /search?q=caf%C3%A9 HTTP/1.1`:
    /// # let req = "GET /search?q=caf%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, r#"Some("café") None"#);
    /// ```
    pub fn query_value(&self, key: &str) -> Option<Cow<'_, str>> {
        query::lookup(self.raw_query(), key)
    }

    /// The request's header fields.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.header().get("user-agent").unwrap_or("?"));
    /// }
    /// // The reply to a client that sends `User-Agent: curl/8.5`:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8.5\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "curl/8.5");
    /// ```
    pub fn header(&self) -> &Header {
        &self.head.header
    }

    /// The host the request is for (Go's `Request.Host`): the authority of an
    /// absolute-form target, else the `Host` header, else `""`.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.host());
    /// }
    /// // The reply to a client that sends `GET / HTTP/1.1` with `Host: example.com:8080`:
    /// # let req = "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "example.com:8080");
    /// ```
    pub fn host(&self) -> &str {
        let t = self.target();
        if !t.starts_with('/') {
            if let Some((_, rest)) = t.split_once("://") {
                return rest.split(['/', '?']).next().unwrap_or("");
            }
        }
        self.head.header.get("host").unwrap_or("")
    }

    /// The protocol as sent (Go's `Request.Proto`): `"HTTP/1.1"`, `"HTTP/1.0"`, or another
    /// `HTTP/1.x`, which the server accepts as Go does and serves as HTTP/1.1.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.proto());
    /// }
    /// // The reply to a client that sends `GET / HTTP/1.0`:
    /// # let req = "GET / HTTP/1.0\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "HTTP/1.0");
    /// ```
    pub fn proto(&self) -> &'static str {
        const PROTOS: [&str; 10] = [
            "HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.3", "HTTP/1.4", "HTTP/1.5", "HTTP/1.6",
            "HTTP/1.7", "HTTP/1.8", "HTTP/1.9",
        ];
        PROTOS
            .get(usize::from(self.head.minor))
            .copied()
            .unwrap_or("HTTP/1.1")
    }

    /// The minor version (Go's `ProtoMinor`): 1 for HTTP/1.1, 0 for HTTP/1.0.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.proto_minor());
    /// }
    /// // The reply to a client that sends `GET / HTTP/1.1`:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "1");
    /// ```
    pub fn proto_minor(&self) -> u8 {
        self.head.minor
    }

    /// The declared body length; `None` for a chunked body (or no body header at all, which
    /// means an empty body).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{:?}", r.content_length());
    /// }
    /// // The reply to a client that sends a 5-byte body with `Content-Length: 5`:
    /// # let req = "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "Some(5)");
    /// // and to one that sends a chunked body:
    /// # let req = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "None");
    /// ```
    pub fn content_length(&self) -> Option<u64> {
        if self.head.chunked {
            None
        } else {
            self.head.content_length
        }
    }

    /// The client's address (Go's `RemoteAddr`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.remote_addr().ip());
    /// }
    /// // The reply to a client on this machine:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "127.0.0.1");
    /// ```
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Whether the client asked to close the connection after this response
    /// (`Connection: close`, or HTTP/1.0 without keep-alive) (Go's `Request.Close`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.close());
    /// }
    /// // The reply to a client that sends `Connection: close`:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "true");
    /// assert_eq!(reply.header("Connection"), Some("close"));
    /// ```
    pub fn close(&self) -> bool {
        self.head.close
    }

    /// The body, as a reader (Go's `Request.Body`). Reads end (`Ok(0)`) at the end of the
    /// body; a body over the server's `max_body_bytes` fails with
    /// `http: request body too large`, a client that disconnects mid-body with
    /// `UnexpectedEof`, a stalled one with `TimedOut` at the `read_timeout`. A handler need
    /// not read the body: the server discards up to 256 KiB of it afterwards, or closes the
    /// connection.
    ///
    /// With `Expect: 100-continue` the server sends `100 Continue` at the first read.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let mut words = 0;
    ///     let mut buf = [0u8; 4];
    ///     let mut body = r.body();
    ///     // Small reads, as from a stream: the body ends with Ok(0).
    ///     while let Ok(n) = body.read(&mut buf) {
    ///         if n == 0 {
    ///             break;
    ///         }
    ///         words += buf[..n].iter().filter(|&&b| b == b' ').count();
    ///     }
    ///     let _ = write!(w, "{} words", words + 1);
    /// }
    /// // The reply to a client that sends a 15-byte body:
    /// # let req = "POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\none two three 4";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "4 words");
    /// ```
    pub fn body(&self) -> Body<'_, 'c> {
        Body { req: self }
    }

    /// Reads the whole body (Go's `io.ReadAll(r.Body)`).
    ///
    /// # Errors
    /// As [`body`](Self::body)'s reads.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     match r.read_body() {
    ///         Ok(body) => {
    ///             let _ = write!(w, "{} bytes: {}", body.len(), String::from_utf8_lossy(&body));
    ///         }
    ///         Err(e) => goway::http::error(w, &e.to_string(), 400),
    ///     }
    /// }
    /// // The reply to a client that sends `hello` in two chunks:
    /// # let req = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "5 bytes: hello");
    /// ```
    pub fn read_body(&self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body().read_to_end(&mut v)?;
        Ok(v)
    }

    /// The value of wildcard `name` in the [`ServeMux`](super::ServeMux) pattern that
    /// matched, percent-decoded (Go's `PathValue`); `None` if there is no such wildcard.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, ServeMux};
    ///
    /// let mut mux = ServeMux::new();
    /// mux.handle("GET /files/{name}", |r: &Request, w: &mut ResponseWriter| {
    ///     let _ = write!(w, "{:?} {:?}", r.path_value("name"), r.path_value("id"));
    /// });
    /// // The reply to a client that sends `GET /files/a%20b.txt HTTP/1.1`:
    /// # let req = "GET /files/a%20b.txt HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
    /// assert_eq!(reply.body, r#"Some("a b.txt") None"#);
    /// ```
    pub fn path_value(&self, name: &str) -> Option<String> {
        self.path_values
            .borrow()
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.clone())
    }

    /// Sets a path value, as a middleware might (Go's `SetPathValue`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// // A middleware that names the user before the inner handler runs.
    /// fn with_user(r: &Request, w: &mut ResponseWriter) {
    ///     r.set_path_value("user", "ann");
    ///     greet(r, w);
    /// }
    /// fn greet(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "hi {}", r.path_value("user").unwrap_or_default());
    /// }
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(with_user, req).unwrap();
    /// assert_eq!(reply.body, "hi ann");
    /// ```
    pub fn set_path_value(&self, name: &str, value: impl Into<String>) {
        let mut pv = self.path_values.borrow_mut();
        let value = value.into();
        match pv.iter_mut().find(|(n, _)| &**n == name) {
            Some(slot) => slot.1 = value,
            None => pv.push((Arc::from(name), value)),
        }
    }

    /// The [`ServeMux`](super::ServeMux) pattern that matched (Go's `Request.Pattern`).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, ServeMux};
    ///
    /// fn handler(r: &Request, w: &mut ResponseWriter) {
    ///     let _ = write!(w, "{}", r.pattern().as_deref().unwrap_or("none"));
    /// }
    /// let mut mux = ServeMux::new();
    /// mux.handle("GET /items/{id}", handler);
    /// // The reply to a client that sends `GET /items/7 HTTP/1.1`:
    /// # let req = "GET /items/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
    /// assert_eq!(reply.body, "GET /items/{id}");
    /// ```
    pub fn pattern(&self) -> Option<Arc<str>> {
        self.pattern.borrow().clone()
    }

    /// The request's context (Go's `Request.Context()`): a child of the server's base
    /// context, cancelled when the handler returns or the server is cut off. Created on the
    /// first call. (The server does not watch the socket while a handler runs, so a client
    /// that disconnects does not cancel it.)
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// let (seen_tx, seen_rx) = goway::chan::bounded(1);
    /// let handler = move |r: &Request, w: &mut ResponseWriter| {
    ///     let ctx = r.context();
    ///     let _ = write!(w, "done while serving: {}", ctx.is_done());
    ///     let _ = seen_tx.try_send(ctx);
    /// };
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "done while serving: false");
    /// // Cancelled once the handler returned.
    /// assert!(seen_rx.recv().unwrap().is_done());
    /// ```
    pub fn context(&self) -> Context {
        self.ctx
            .get_or_init(|| context::with_cancel(self.base_ctx))
            .0
            .clone()
    }

    /// Cancels the context, if one was made.
    pub(crate) fn end(&self) {
        if let Some((_, cancel)) = self.ctx.get() {
            cancel.cancel();
        }
    }
}

/// The body of a [`Request`], as a [`Read`]er (from [`Request::body`]).
#[derive(Debug)]
pub struct Body<'r, 'c> {
    req: &'r Request<'c>,
}

impl Read for Body<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut io = self.req.io.borrow_mut();
        self.req.body.borrow_mut().read(&mut io, buf)
    }
}
