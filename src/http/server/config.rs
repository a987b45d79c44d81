//! The server's settings (Go's `http.Server` fields) and their resolved form.

use std::time::Duration;

use crate::net::server::config::limit;

/// An HTTP server's limits and timeouts. Each field gives its default and what zero means;
/// the [`Builder`](super::Builder) has a setter for each.
///
/// ```
/// let cfg = goway::http::Config::default();
/// assert_eq!(cfg.max_header_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Time to receive a request's head (Go's `ReadHeaderTimeout`), counted from the
    /// connection's accept for its first request and from the first byte for later ones;
    /// bytes trickling in do not extend it (slowloris). The connection is closed without a
    /// reply, as Go does. Default 10 s; 0: no limit.
    pub read_header_timeout: Duration,
    /// Time to receive a whole request, head and body, from its first byte (Go's
    /// `ReadTimeout`): body reads after it fail with `TimedOut`. Default 0: no limit (as Go).
    pub read_timeout: Duration,
    /// Time to write a response, from the end of the request head (Go's `WriteTimeout`):
    /// writes after it fail and the connection closes. Default 0: no limit (as Go).
    pub write_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request (Go's `IdleTimeout`); it
    /// is closed (without a reply) between 1 and 1.5 times this after its last response,
    /// by a janitor goroutine that checks four times per period. Default 60 s; 0:
    /// `read_timeout` (Go's fallback), and if that is 0 too, no limit.
    pub idle_timeout: Duration,
    /// Largest request head (request line and header fields), in bytes (Go's
    /// `MaxHeaderBytes`; Go also allows 4 KiB over it). A larger one gets `431 Request Header
    /// Fields Too Large` (`414` when the request line alone is too long). Default 1 MiB;
    /// 0: the default.
    pub max_header_bytes: usize,
    /// Largest request body, in bytes. A declared `Content-Length` over it gets `413`
    /// without calling the handler; a chunked body that grows over it fails the handler's
    /// read (and gets 413 if the handler then sends nothing). Default 10 MiB; 0: no limit.
    pub max_body_bytes: u64,
    /// Most connections served at once; more are answered `503 Service Unavailable` and
    /// closed before any goroutine is spawned. Lowered (with a warning) to what the
    /// file-descriptor limit allows at 2 descriptors per connection. Default 10,000; 0: only
    /// the descriptor limit.
    pub max_connections: usize,
    /// Grace period of [`ServerHandle::shutdown`](super::ServerHandle::shutdown) and of a
    /// context-driven shutdown. Default 30 s; 0: cut off at once.
    pub shutdown_grace: Duration,
    /// Stack size of each connection's goroutine, which runs the handler. Default 64 KiB,
    /// and 256 KiB in builds with debug assertions (unoptimised code uses about four times
    /// as much stack: decoding and encoding JSON `http::MAX_JSON_DEPTH` levels deep takes
    /// up to 37 KiB optimised, 132 KiB not); 0: the runtime's default. A goroutine's stack
    /// overflow is not recoverable: it ends the process. Raise it for handlers with deep
    /// recursion or big locals.
    pub handler_stack_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_header_timeout: Duration::from_secs(10),
            read_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 1 << 20,
            max_body_bytes: 10 << 20,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            handler_stack_size: DEFAULT_STACK,
        }
    }
}

/// The default [`Config::handler_stack_size`]: 64 KiB, four times that without optimisations.
const DEFAULT_STACK: usize = if cfg!(debug_assertions) {
    256 << 10
} else {
    64 << 10
};

/// Settings with zeros resolved.
#[derive(Debug, Clone)]
pub(crate) struct Effective {
    pub(crate) read_header_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_bytes: u64,
    pub(crate) shutdown_grace: Duration,
    pub(crate) handler_stack_size: usize,
}

impl Effective {
    pub(crate) fn new(c: &Config) -> Self {
        Effective {
            read_header_timeout: limit(c.read_header_timeout),
            read_timeout: limit(c.read_timeout),
            write_timeout: limit(c.write_timeout),
            idle_timeout: limit(c.idle_timeout).or(limit(c.read_timeout)),
            max_header_bytes: if c.max_header_bytes == 0 {
                1 << 20
            } else {
                c.max_header_bytes
            },
            max_body_bytes: if c.max_body_bytes == 0 {
                u64::MAX
            } else {
                c.max_body_bytes
            },
            shutdown_grace: c.shutdown_grace,
            handler_stack_size: c.handler_stack_size,
        }
    }
}
