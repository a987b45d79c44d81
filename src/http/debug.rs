//! Go's `net/http/pprof` goroutine page: the runtime's goroutine report over HTTP.
//!
//! ```no_run
//! let mut mux = goway::http::ServeMux::new();
//! goway::http::debug::register(&mut mux); // GET /debug/pprof/goroutine
//! ```
//!
//! The report lists goroutines only while the runtime's registry is on
//! ([`runtime::Config::registry`](crate::runtime::Config::registry), or `GOWAY_REGISTRY=1` in
//! the environment); otherwise the page says so. Mount it on a listener that only operators
//! reach, as with Go's pprof handlers.

use std::io::Write;

use super::mux::ServeMux;
use super::request::Request;
use super::response::ResponseWriter;

/// The path [`register`] mounts [`goroutines`] at (Go's pprof goroutine profile).
pub const GOROUTINE_PATH: &str = "/debug/pprof/goroutine";

/// Writes [`runtime::dump`](crate::runtime::dump) as plain text (Go's
/// `/debug/pprof/goroutine?debug=2`, without stacks).
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let mut mux = ServeMux::new();
/// mux.handle("GET /goroutines", debug::goroutines);
/// // The reply to `GET /goroutines`: the runtime's report.
/// # let req = "GET /goroutines HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.header("Content-Type"), Some("text/plain; charset=utf-8"));
/// assert!(!reply.body.is_empty());
/// ```
pub fn goroutines(_r: &Request<'_>, w: &mut ResponseWriter<'_>) {
    let report = crate::runtime::dump();
    let h = w.header();
    h.set("Content-Type", "text/plain; charset=utf-8");
    h.set("X-Content-Type-Options", "nosniff");
    let _ = w.write_all(report.as_bytes());
}

/// Mounts [`goroutines`] at `GET /debug/pprof/goroutine` on `mux`.
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let mut mux = ServeMux::new();
/// debug::register(&mut mux);
/// // The reply to `GET /debug/pprof/goroutine`:
/// # let req = "GET /debug/pprof/goroutine HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.header("Content-Type"), Some("text/plain; charset=utf-8"));
/// ```
pub fn register(mux: &mut ServeMux) {
    mux.handle_func(&format!("GET {GOROUTINE_PATH}"), goroutines);
}
