//! Operators' pages: Go's `net/http/pprof` goroutine page (the runtime's goroutine report),
//! the Prometheus metrics (`GET /metrics`, with the `metrics` feature) and the liveness and
//! readiness probes (`GET /healthz`, `GET /readyz`) that load balancers and Kubernetes ask
//! of each process.
//!
//! ```no_run
//! use goway::http::{ServeMux, debug};
//!
//! let drain = goway::context::background(); // cancel it (or a child) when draining starts
//! let metrics = goway::metrics::Registry::new(); // register your servers on it
//! let mut mux = ServeMux::new();
//! debug::register(&mut mux); // GET /debug/pprof/goroutine
//! debug::register_metrics(&mut mux, &metrics); // GET /metrics
//! debug::register_health(&mut mux, &debug::Readiness::until_done(&drain)); // /healthz, /readyz
//! ```
//!
//! The goroutine report lists goroutines only while the runtime's registry is on
//! ([`runtime::Config::registry`](crate::runtime::Config::registry), or `GOWAY_REGISTRY=1` in
//! the environment); otherwise the page says so. Mount these pages on a listener that only
//! operators and probes reach, as with Go's pprof handlers.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::handler::Handler;
use super::mux::ServeMux;
use super::request::Request;
use super::response::ResponseWriter;
use crate::context::Context;

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

/// The path [`register_health`] mounts [`healthz`] at (the liveness probe).
pub const HEALTHZ_PATH: &str = "/healthz";

/// The path [`register_health`] mounts [`readyz`] at (the readiness probe).
pub const READYZ_PATH: &str = "/readyz";

/// The path [`register_metrics`] mounts [`metrics`] at: Prometheus's default `metrics_path`,
/// so a scrape config needs no path.
#[cfg(feature = "metrics")]
pub const METRICS_PATH: &str = "/metrics";

fn plain(w: &mut ResponseWriter<'_>, code: u16, body: &str) {
    let h = w.header();
    h.set("Content-Type", "text/plain; charset=utf-8");
    h.set("X-Content-Type-Options", "nosniff");
    h.set("Cache-Control", "no-store");
    w.write_header(code);
    let _ = w.write_all(body.as_bytes());
}

/// The liveness probe: `200 ok` whenever the process answers at all (Kubernetes restarts a
/// container whose liveness probe fails; a process that serves this page is alive).
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let mut mux = ServeMux::new();
/// mux.handle("GET /healthz", debug::healthz);
/// # let req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.body, "ok\n");
/// ```
pub fn healthz(_r: &Request<'_>, w: &mut ResponseWriter<'_>) {
    plain(w, 200, "ok\n");
}

/// Whether the process should receive new traffic: what [`readyz`] answers. Ready until
/// [`set_ready(false)`](Self::set_ready), or until the drain context given to
/// [`until_done`](Self::until_done) is done, whichever comes first. Clones share the state.
///
/// The usual drain (see `docs/deploy.md`): on SIGTERM cancel the drain context, so `/readyz`
/// answers 503 and the load balancer stops sending new connections, then shut the servers
/// down gracefully.
///
/// ```
/// use goway::http::debug::Readiness;
///
/// let (drain, cancel) = goway::context::with_cancel(&goway::context::background());
/// let ready = Readiness::until_done(&drain);
/// assert!(ready.is_ready());
/// cancel.cancel(); // SIGTERM: stop taking traffic
/// assert!(!ready.is_ready());
///
/// let warmup = Readiness::new();
/// warmup.set_ready(false); // not before the caches are loaded
/// assert!(!warmup.is_ready());
/// warmup.set_ready(true);
/// assert!(warmup.is_ready());
/// ```
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<ReadyInner>,
}

struct ReadyInner {
    ready: AtomicBool,
    drain: Option<Context>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

impl Readiness {
    /// Ready, until [`set_ready(false)`](Self::set_ready).
    pub fn new() -> Readiness {
        Readiness {
            inner: Arc::new(ReadyInner {
                ready: AtomicBool::new(true),
                drain: None,
            }),
        }
    }

    /// Ready until `drain` is done (cancelled or past its deadline), or until
    /// [`set_ready(false)`](Self::set_ready).
    pub fn until_done(drain: &Context) -> Readiness {
        Readiness {
            inner: Arc::new(ReadyInner {
                ready: AtomicBool::new(true),
                drain: Some(drain.clone()),
            }),
        }
    }

    /// Sets the flag: `false` makes [`readyz`] answer 503 (a drain context that is done keeps
    /// it at 503 whatever the flag).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// `true` while the flag is set and the drain context (if any) is not done.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
            && !self.inner.drain.as_ref().is_some_and(Context::is_done)
    }
}

/// The readiness probe for `readiness`: `200 ok` while it [is ready](Readiness::is_ready),
/// `503 not ready` after (a load balancer or Kubernetes then stops sending new traffic).
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let ready = debug::Readiness::new();
/// ready.set_ready(false);
/// let mut mux = ServeMux::new();
/// mux.handle("GET /readyz", debug::readyz(&ready));
/// # let req = "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 503);
/// ```
pub fn readyz(readiness: &Readiness) -> impl Handler + use<> {
    let readiness = readiness.clone();
    move |_r: &Request<'_>, w: &mut ResponseWriter<'_>| {
        if readiness.is_ready() {
            plain(w, 200, "ok\n");
        } else {
            plain(w, 503, "not ready\n");
        }
    }
}

/// Mounts [`healthz`] at `GET /healthz` and [`readyz`] for `readiness` at `GET /readyz`.
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let mut mux = ServeMux::new();
/// debug::register_health(&mut mux, &debug::Readiness::new());
/// # let req = "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// ```
pub fn register_health(mux: &mut ServeMux, readiness: &Readiness) {
    mux.handle_func(&format!("GET {HEALTHZ_PATH}"), healthz);
    mux.handle(&format!("GET {READYZ_PATH}"), readyz(readiness));
}

/// Serves `registry` in the Prometheus text format ([`Registry::encode`]), read at each
/// request.
///
/// [`Registry::encode`]: crate::metrics::Registry::encode
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let registry = goway::metrics::Registry::new();
/// let mut mux = ServeMux::new();
/// mux.handle("GET /metrics", debug::metrics(&registry));
/// # let req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// assert_eq!(reply.header("Content-Type"), Some(goway::metrics::CONTENT_TYPE));
/// assert!(reply.body.contains("goway_goroutines "));
/// ```
#[cfg(feature = "metrics")]
pub fn metrics(registry: &crate::metrics::Registry) -> impl Handler + use<> {
    let registry = registry.clone();
    move |_r: &Request<'_>, w: &mut ResponseWriter<'_>| {
        let text = registry.encode();
        let h = w.header();
        h.set("Content-Type", crate::metrics::CONTENT_TYPE);
        h.set("Cache-Control", "no-store");
        let _ = w.write_all(text.as_bytes());
    }
}

/// Mounts [`metrics`] for `registry` at `GET /metrics` ([`METRICS_PATH`]).
///
/// ```
/// use goway::http::{ServeMux, debug};
///
/// let mut mux = ServeMux::new();
/// debug::register_metrics(&mut mux, &goway::metrics::Registry::new());
/// # let req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
/// assert_eq!(reply.status, 200);
/// ```
#[cfg(feature = "metrics")]
pub fn register_metrics(mux: &mut ServeMux, registry: &crate::metrics::Registry) {
    mux.handle(&format!("GET {METRICS_PATH}"), metrics(registry));
}

/// Serves the operators' pages on a listener of their own at `addr`, in a goroutine: the
/// goroutine report ([`register`]), `registry`'s metrics ([`register_metrics`]) and the
/// health probes ([`register_health`]) answering from `readiness`. Returns the server's
/// handle: its [`local_addr`](crate::http::ServerHandle::local_addr), and
/// [`shutdown`](crate::http::ServerHandle::shutdown) to stop it (else it serves until the
/// process exits).
///
/// # Errors
/// The address does not resolve or cannot be bound.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use goway::http::debug;
///
/// let registry = goway::metrics::Registry::new();
/// let ops = debug::serve("127.0.0.1:0", &registry, &debug::Readiness::new()).unwrap();
/// let mut c = goway::net::dial(ops.local_addr().unwrap()).unwrap();
/// c.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
/// let mut reply = String::new();
/// c.read_to_string(&mut reply).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(reply.contains("goway_goroutines "));
/// ops.shutdown().unwrap();
/// ```
#[cfg(feature = "metrics")]
pub fn serve(
    addr: impl crate::net::ToAddrs + Send + 'static,
    registry: &crate::metrics::Registry,
    readiness: &Readiness,
) -> Result<super::ServerHandle, super::ServeError> {
    let mut mux = ServeMux::new();
    register(&mut mux);
    register_metrics(&mut mux, registry);
    register_health(&mut mux, readiness);
    let srv = super::Server::builder().addr(addr).handler(mux).bind()?;
    let handle = srv.handle();
    crate::go!(move || {
        // Ends with ServerClosed at shutdown, or an accept error retrying cannot fix.
        if let Err(e) = srv.serve() {
            if !matches!(e, super::ServeError::ServerClosed) {
                log::error!(target: "goway::http", "debug server: {e}");
            }
        }
    });
    Ok(handle)
}
