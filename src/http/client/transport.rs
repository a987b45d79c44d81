//! The transport (Go's `http.Transport`): dials connections, keeps idle keep-alive ones per
//! host for the next request, and makes one request/response exchange on a connection.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::Conn;
use super::conn::{self, HeadError, Outgoing, PersistConn, WriteError};
use super::connect::{Dialer, TcpDialer, TlsConnector, dial_ctx};
use super::error::{
    CLIENT_TIMEOUT, CLIENT_TIMEOUT_HEADERS, ClientError, HEADER_TIMEOUT, TLS_HANDSHAKE_TIMEOUT,
};
use super::pool::{Acquired, ConnSlot, Pool};
use super::request::ClientRequest;
use super::response::{Live, Response, ResponseBody};
use super::url::Url;
use crate::context::Context;
use crate::http::StatusCode;
use crate::http::body::BodyState;

/// The transport's settings (Go's `http.Transport` fields), with Go's defaults.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Most idle connections kept in total (Go's `MaxIdleConns`, 100; 0: no limit).
    pub max_idle_conns: usize,
    /// Most idle connections kept per host (Go's `MaxIdleConnsPerHost`, 2).
    pub max_idle_conns_per_host: usize,
    /// An idle connection older than this is closed instead of reused (Go's
    /// `IdleConnTimeout`, 90 s).
    pub idle_conn_timeout: Option<Duration>,
    /// Connect timeout (Go's `net.Dialer.Timeout` in `DefaultTransport`, 30 s).
    pub dial_timeout: Duration,
    /// TLS handshake timeout, handed to the TLS connector (Go's 10 s).
    pub tls_handshake_timeout: Option<Duration>,
    /// The TLS configuration of `https://` requests (Go's `TLSClientConfig`): roots to
    /// trust, a client certificate, a server-name override. The transport makes it offer
    /// ALPN `http/1.1`. `None`: the system's roots (`SSL_CERT_FILE`, or the distribution's
    /// CA bundle; Mozilla's roots compiled in where there is none), as Go's
    /// `DefaultTransport`.
    pub tls: Option<crate::tls::ClientConfig>,
    /// Most connections per host, dialing, in use and idle together (Go's
    /// `MaxConnsPerHost`; 0, the default: no limit). A request beyond it waits until one
    /// of them comes back to the pool or closes, its context ends, or the client's timeout
    /// passes.
    pub max_conns_per_host: usize,
    /// Time allowed from the end of the request to the response head (Go's
    /// `ResponseHeaderTimeout`; none by default).
    pub response_header_timeout: Option<Duration>,
    /// One connection per request (Go's `DisableKeepAlives`).
    pub disable_keep_alives: bool,
    /// Largest response head accepted (Go's `MaxResponseHeaderBytes`; 1 MiB here).
    pub max_response_header_bytes: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_idle_conns: 100,
            max_idle_conns_per_host: 2,
            idle_conn_timeout: Some(Duration::from_secs(90)),
            dial_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Some(Duration::from_secs(10)),
            tls: None,
            max_conns_per_host: 0,
            response_header_timeout: None,
            disable_keep_alives: false,
            max_response_header_bytes: 1 << 20,
        }
    }
}

pub(super) struct Inner {
    pub(super) cfg: TransportConfig,
    dialer: Arc<dyn Dialer>,
    tls: Arc<dyn TlsConnector>,
    pub(super) pool: Mutex<Pool>,
}

/// Makes requests over kept-alive connections (Go's `http.Transport`). Cheap to clone:
/// clones share the pool. Share one transport (through a [`Client`](super::Client)) rather
/// than making one per request, or nothing is reused.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use goway::http::{Client, Transport, TransportConfig};
///
/// let transport = Transport::new(TransportConfig {
///     max_idle_conns_per_host: 16,
///     response_header_timeout: Some(Duration::from_secs(5)),
///     ..TransportConfig::default()
/// });
/// let client = Client::new().with_transport(transport.clone());
/// assert_eq!(transport.stats().idle, 0);
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct Transport {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.inner.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new(TransportConfig::default())
    }
}

impl Transport {
    /// A transport with these settings, dialing TCP with
    /// [`net::dial_timeout`](crate::net::dial_timeout), and running TLS with
    /// [`goway::tls`](crate::tls) and `cfg.tls`.
    pub fn new(cfg: TransportConfig) -> Transport {
        Transport::with_parts(cfg, Arc::new(TcpDialer), None)
    }

    /// A transport with its own dialer and TLS connector (`None`: as [`new`](Self::new),
    /// `cfg.tls` or the system's roots). A connector given here is used as it is: a
    /// [`tls::ClientConfig`](crate::tls::ClientConfig) should offer ALPN `http/1.1` (or
    /// none).
    pub fn with_parts(
        cfg: TransportConfig,
        dialer: Arc<dyn Dialer>,
        tls: Option<Arc<dyn TlsConnector>>,
    ) -> Transport {
        let tls = tls.unwrap_or_else(|| match &cfg.tls {
            Some(c) => Arc::new(super::tls::with_http_alpn(c.clone())),
            None => Arc::new(super::tls::SystemRoots),
        });
        Transport {
            inner: Arc::new(Inner {
                cfg,
                dialer,
                tls,
                pool: Mutex::new(Pool::default()),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.cfg
    }

    /// Sends one request and reads the response head (Go's `RoundTrip`): no redirects and
    /// no overall timeout (the [`Client`](super::Client) adds those).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn round_trip(&self, req: &mut ClientRequest) -> Result<Response, ClientError> {
        self.round_trip_until(req, None)
    }

    /// Sends one request with a body borrowed for this call, such as a server request's
    /// body that a proxy streams on (Go's `ReverseProxy`, whose outgoing request takes the
    /// incoming body). `len` is its length if known (sent as `Content-Length`), else it goes
    /// chunked. The request's own body is ignored. No redirects; the request is sent again
    /// on a fresh connection only if nothing of it could be written.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn round_trip_streaming(
        &self,
        req: &mut ClientRequest,
        body: &mut dyn std::io::Read,
        len: Option<u64>,
    ) -> Result<Response, ClientError> {
        self.round_trip_inner(req, None, Some((body, len)))
    }

    pub(crate) fn round_trip_until(
        &self,
        req: &mut ClientRequest,
        deadline: Option<Instant>,
    ) -> Result<Response, ClientError> {
        self.round_trip_inner(req, deadline, None)
    }

    fn round_trip_inner(
        &self,
        req: &mut ClientRequest,
        deadline: Option<Instant>,
        mut borrowed: Option<(&mut dyn std::io::Read, Option<u64>)>,
    ) -> Result<Response, ClientError> {
        let url = req.url.clone();
        let key = format!("{}://{}", url.scheme(), url.addr());
        let ctx = req.context.clone();
        loop {
            if let Some(e) = ctx.err() {
                return Err(ClientError::Canceled(e));
            }
            let (pc, reused) = match self.acquire(&key, &ctx, deadline)? {
                Acquired::Idle(pc) => (pc, true),
                Acquired::Slot(slot) => (self.dial(&url, &ctx, deadline, slot)?, false),
            };
            let body = borrowed.as_mut().map(|(r, len)| (&mut **r, *len));
            match self.exchange(pc, req, &key, &ctx, deadline, body) {
                Ok(resp) => return Ok(resp),
                Err(Failure::Retry(e)) if reused => {
                    log::debug!("http client: retrying on a new connection after: {e}");
                    self.inner.pool.lock().stats.retries += 1;
                    continue;
                }
                Err(Failure::Retry(e)) | Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    fn dial(
        &self,
        url: &Url,
        ctx: &Context,
        deadline: Option<Instant>,
        slot: Option<ConnSlot>,
    ) -> Result<PersistConn, ClientError> {
        let cfg = &self.inner.cfg;
        let addr = url.addr();
        // The request's end: the client's timeout or the context's deadline.
        let end = match (deadline, ctx.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let now = Instant::now();
        let left = end.map(|e| e.saturating_duration_since(now));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(match ctx.err() {
                Some(e) => ClientError::Canceled(e),
                None => ClientError::Timeout(CLIENT_TIMEOUT),
            });
        }
        self.inner.pool.lock().stats.dials += 1;
        let dialer = self.inner.dialer.clone();
        let tls = (url.scheme() == "https").then(|| {
            let host = url.host().trim_start_matches('[').trim_end_matches(']');
            (self.inner.tls.clone(), host.to_owned())
        });
        let (dial_timeout, hs_timeout) = (cfg.dial_timeout, cfg.tls_handshake_timeout);
        // The slot goes with the dial: a cancelled dial keeps its host's place until its
        // goroutine ends.
        let connect = move || -> Result<(Box<dyn Conn>, Option<ConnSlot>), ClientError> {
            // Each step gets its own limit, cut to what is left of the request's time.
            let limit = |own: Option<Duration>| {
                let left = end.map(|e| e.saturating_duration_since(Instant::now()));
                match (own, left) {
                    (Some(o), Some(l)) if l <= o => (Some(l), true),
                    (None, Some(l)) => (Some(l), true),
                    (o, _) => (o, false),
                }
            };
            let (t, client_limited) = limit(Some(dial_timeout));
            let conn =
                dialer
                    .dial(&addr, t.unwrap_or(dial_timeout))
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::TimedOut if client_limited => {
                            ClientError::Timeout(CLIENT_TIMEOUT)
                        }
                        io::ErrorKind::TimedOut => ClientError::Connect {
                            addr: addr.clone(),
                            source: io::Error::new(io::ErrorKind::TimedOut, "i/o timeout"),
                        },
                        _ => ClientError::Connect {
                            addr: addr.clone(),
                            source: e,
                        },
                    })?;
            let Some((tls, host)) = tls else {
                return Ok((conn, slot));
            };
            let (t, client_limited) = limit(hs_timeout);
            let conn = tls.handshake(conn, &host, t).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut if client_limited => ClientError::Timeout(CLIENT_TIMEOUT),
                io::ErrorKind::TimedOut => ClientError::Tls {
                    addr,
                    source: io::Error::new(io::ErrorKind::TimedOut, TLS_HANDSHAKE_TIMEOUT),
                },
                _ => ClientError::Tls { addr, source: e },
            })?;
            Ok((conn, slot))
        };
        let (conn, slot) = dial_ctx(connect, ctx).map_err(|e| match ctx.err() {
            Some(c) => ClientError::Canceled(c),
            None => e,
        })?;
        Ok(PersistConn::new(
            Arc::from(conn),
            cfg.max_response_header_bytes,
            slot,
        ))
    }

    /// One request and response head on `pc`.
    fn exchange<'r>(
        &self,
        mut pc: PersistConn,
        req: &mut ClientRequest,
        key: &str,
        ctx: &Context,
        deadline: Option<Instant>,
        borrowed: Option<(&mut (dyn std::io::Read + 'r), Option<u64>)>,
    ) -> Result<Response, Failure> {
        let cfg = &self.inner.cfg;
        let reused = pc.uses > 0;
        pc.uses += 1;
        let conn = pc.conn.clone();
        let cancel = {
            let closer = conn.clone();
            match ctx.on_cancel(move |_| closer.abort()) {
                Ok(r) => r,
                Err(e) => {
                    conn.close();
                    return Err(Failure::Fatal(ClientError::Canceled(e)));
                }
            }
        };
        let ctx_deadline = ctx.deadline();
        let deadline = match (deadline, ctx_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The context's error, also when its deadline has passed a moment before its timer
        // ran the cancel (the socket's deadline can fire first).
        let ctx_err = || {
            ctx.err().or_else(|| {
                ctx_deadline
                    .filter(|d| Instant::now() >= *d)
                    .map(|_| crate::context::ContextError::DeadlineExceeded)
            })
        };
        conn.set_write_deadline(deadline);
        let replayable = borrowed.is_none() && req.is_replayable();
        let body = match borrowed {
            Some((reader, len)) => Outgoing::Borrowed { reader, len },
            None => Outgoing::Owned(req.body.take_for_send()),
        };
        let close = req.close || cfg.disable_keep_alives;
        let target = if req.method == "CONNECT" {
            req.url.addr()
        } else {
            req.url.request_target()
        };
        let host = req.url.host_header();
        let io_failure = |e: io::Error, retry: bool| {
            conn.close();
            let err = match ctx_err() {
                Some(c) => ClientError::Canceled(c),
                None if e.kind() == io::ErrorKind::TimedOut && deadline.is_some() => {
                    ClientError::Timeout(CLIENT_TIMEOUT)
                }
                None => ClientError::Io(e),
            };
            if retry && !err.is_canceled() && !err.is_timeout() {
                Failure::Retry(err)
            } else {
                Failure::Fatal(err)
            }
        };
        match conn::write_request(
            &mut pc,
            &req.method,
            &target,
            &host,
            &req.header,
            close,
            body,
        ) {
            Ok(()) => {}
            Err(WriteError::NothingWritten(e)) => return Err(io_failure(e, reused)),
            Err(WriteError::Io(e)) => return Err(io_failure(e, reused && replayable)),
            Err(WriteError::Body(e)) => {
                conn.close();
                return Err(Failure::Fatal(e));
            }
        }
        let header_deadline = cfg
            .response_header_timeout
            .and_then(|t| Instant::now().checked_add(t));
        let read_deadline = match (deadline, header_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        conn.set_read_deadline(read_deadline);
        let head = match conn::read_head(&mut pc, cfg.max_response_header_bytes) {
            Ok(h) => h,
            Err(HeadError::ClosedBeforeResponse(e)) => {
                return Err(io_failure(e, reused && replayable));
            }
            Err(HeadError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                conn.close();
                let err = match ctx_err() {
                    Some(c) => ClientError::Canceled(c),
                    None if header_deadline.is_some() && read_deadline == header_deadline => {
                        ClientError::Timeout(HEADER_TIMEOUT)
                    }
                    None => ClientError::Timeout(CLIENT_TIMEOUT_HEADERS),
                };
                return Err(Failure::Fatal(err));
            }
            Err(HeadError::Io(e)) => return Err(io_failure(e, false)),
            Err(HeadError::Protocol(m)) => {
                conn.close();
                return Err(Failure::Fatal(ClientError::Protocol(m)));
            }
        };
        conn.set_read_deadline(deadline);
        let status = StatusCode::from_u16(head.status);
        let no_body = req.method == "HEAD"
            || (100..200).contains(&head.status)
            || head.status == 204
            || head.status == 304;
        let (state, content_length, reusable) = if no_body {
            let cl = if req.method == "HEAD" {
                head.content_length
            } else {
                Some(0)
            };
            (BodyState::empty(), cl, head.status != 101)
        } else if head.chunked {
            (BodyState::new(None, true, u64::MAX, false), None, true)
        } else if let Some(n) = head.content_length {
            (
                BodyState::new(Some(n), false, u64::MAX, false),
                Some(n),
                true,
            )
        } else {
            (BodyState::until_eof(), None, false)
        };
        let reusable = reusable && !head.close && !close;
        let body = ResponseBody::new(Live {
            pc,
            state,
            transport: self.clone(),
            key: key.to_owned(),
            reusable,
            ctx: ctx.clone(),
            _cancel: cancel,
        });
        Ok(Response {
            status,
            reason: head.reason,
            minor: head.minor,
            header: head.header,
            content_length,
            url: req.url.clone(),
            body,
        })
    }
}

/// A failed exchange: whether the request may go again on another connection.
enum Failure {
    Retry(ClientError),
    Fatal(ClientError),
}
