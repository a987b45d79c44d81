//! Handlers (Go's `http.Handler` and `http.HandlerFunc`) and the small helpers Go gives them:
//! `Error`, `NotFound`, `Redirect`, `StripPrefix`.

use std::io::Write;
use std::sync::Arc;

use super::request::Request;
use super::response::ResponseWriter;
use super::status::StatusCode;

/// Something that answers requests (Go's `http.Handler`). Any
/// `Fn(&Request, &mut ResponseWriter) + Send + Sync` is one (Go's `HandlerFunc`), and so is
/// a [`ServeMux`](super::ServeMux); implement it on your own types for handlers with state.
///
/// A handler runs on the goroutine of its connection; blocking calls park that goroutine
/// only. A panic is caught: the client gets `500 Internal Server Error` if nothing was sent
/// yet, the connection closes, and the server goes on.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use goway::http::{Handler, Request, ResponseWriter};
///
/// struct Counter(AtomicU64);
///
/// impl Handler for Counter {
///     fn serve_http(&self, _r: &Request, w: &mut ResponseWriter) {
///         let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
///         let _ = write!(w, "visit {n}");
///     }
/// }
/// let mut mux = goway::http::ServeMux::new();
/// mux.handle("GET /count", Counter(AtomicU64::new(0)));
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn serve_http(&self, r: &Request<'_>, w: &mut ResponseWriter<'_>);
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, &mut ResponseWriter<'_>) + Send + Sync + 'static,
{
    #[inline]
    fn serve_http(&self, r: &Request<'_>, w: &mut ResponseWriter<'_>) {
        self(r, w)
    }
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    #[inline]
    fn serve_http(&self, r: &Request<'_>, w: &mut ResponseWriter<'_>) {
        (**self).serve_http(r, w)
    }
}

/// Replies with `msg` as plain text and status `code` (Go's `http.Error`): sets
/// `Content-Type: text/plain; charset=utf-8` and `X-Content-Type-Options: nosniff`, removes
/// `Content-Length`, and writes `msg` and a newline. The handler should return afterwards.
///
/// # Examples
/// ```
/// use goway::http::{Request, ResponseWriter};
/// fn teapot(_r: &Request, w: &mut ResponseWriter) {
///     goway::http::error(w, "I'm a teapot", 418);
/// }
/// # let _ = teapot;
/// ```
pub fn error(w: &mut ResponseWriter<'_>, msg: &str, code: impl Into<StatusCode>) {
    let h = w.header();
    h.del("Content-Length");
    h.set("Content-Type", "text/plain; charset=utf-8");
    h.set("X-Content-Type-Options", "nosniff");
    w.write_header(code);
    let _ = w.write_all(msg.as_bytes());
    let _ = w.write_all(b"\n");
}

/// Replies `404 page not found` (Go's `http.NotFound`).
///
/// ```
/// use goway::http::{Request, ResponseWriter};
///
/// fn handler(r: &Request, w: &mut ResponseWriter) {
///     if r.path() != "/" {
///         return goway::http::not_found(r, w);
///     }
/// }
/// // The reply to `GET /missing`:
/// # let req = "GET /missing HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
/// assert_eq!(reply.status, 404);
/// assert_eq!(reply.body, "404 page not found\n");
/// ```
pub fn not_found(_r: &Request<'_>, w: &mut ResponseWriter<'_>) {
    error(w, "404 page not found", StatusCode::NOT_FOUND);
}

/// Redirects to `url` with status `code` (301, 302, 303, 307 or 308) (Go's `http.Redirect`,
/// without its relative-path resolution: pass an absolute path or URL). For GET and HEAD a
/// short HTML body links the target.
///
/// ```
/// use goway::http::{Request, ResponseWriter, StatusCode};
///
/// fn old_home(r: &Request, w: &mut ResponseWriter) {
///     goway::http::redirect(r, w, "/home", StatusCode::MOVED_PERMANENTLY);
/// }
/// // The reply to `GET /index.html`:
/// # let req = "GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(old_home, req).unwrap();
/// assert_eq!(reply.status, 301);
/// assert_eq!(reply.header("Location"), Some("/home"));
/// assert!(reply.body.starts_with(r#"<a href="/home">Moved Permanently</a>"#));
/// ```
pub fn redirect(
    r: &Request<'_>,
    w: &mut ResponseWriter<'_>,
    url: &str,
    code: impl Into<StatusCode>,
) {
    let code = code.into();
    w.header().set("Location", url);
    if r.method() == "GET" || r.method() == "HEAD" {
        w.header().set("Content-Type", "text/html; charset=utf-8");
    }
    w.write_header(code);
    if r.method() == "GET" {
        let esc = html_escape(url);
        let _ = write!(w, "<a href=\"{esc}\">{}</a>.\n\n", code.reason());
    }
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}
