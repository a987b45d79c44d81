//! The transport (Go's `http.Transport`): dials connections, keeps idle keep-alive ones per
//! host for the next request, and makes one request/response exchange on a connection.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::{self, HeadError, Outgoing, PersistConn, WriteError};
use super::connect::{DialError, Dialer, TcpDialer, TlsConnector, dial_ctx};
use super::error::{CLIENT_TIMEOUT, CLIENT_TIMEOUT_HEADERS, ClientError, HEADER_TIMEOUT};
use super::pool::Pool;
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
            response_header_timeout: None,
            disable_keep_alives: false,
            max_response_header_bytes: 1 << 20,
        }
    }
}

pub(super) struct Inner {
    pub(super) cfg: TransportConfig,
    dialer: Arc<dyn Dialer>,
    tls: Option<Arc<dyn TlsConnector>>,
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
            .field("tls", &self.inner.tls.is_some())
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
    /// A transport with these settings, dialing TCP with [`net::dial_timeout`](crate::net::dial_timeout), without TLS.
    pub fn new(cfg: TransportConfig) -> Transport {
        Transport::with_parts(cfg, Arc::new(TcpDialer), None)
    }

    /// A transport with its own dialer and TLS connector.
    pub fn with_parts(
        cfg: TransportConfig,
        dialer: Arc<dyn Dialer>,
        tls: Option<Arc<dyn TlsConnector>>,
    ) -> Transport {
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
        if url.scheme() == "https" && self.inner.tls.is_none() {
            return Err(ClientError::TlsUnavailable(url.to_string()));
        }
        let key = format!("{}://{}", url.scheme(), url.addr());
        let ctx = req.context.clone();
        loop {
            if let Some(e) = ctx.err() {
                return Err(ClientError::Canceled(e));
            }
            let (pc, reused) = match self.take_idle(&key) {
                Some(pc) => (pc, true),
                None => (self.dial(&url, &ctx, deadline)?, false),
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
    ) -> Result<PersistConn, ClientError> {
        let cfg = &self.inner.cfg;
        let addr = url.addr();
        let now = Instant::now();
        let mut timeout = cfg.dial_timeout;
        let mut client_limited = false;
        for end in [deadline, ctx.deadline()].into_iter().flatten() {
            let left = end.saturating_duration_since(now);
            if left <= timeout {
                timeout = left;
                client_limited = true;
            }
        }
        if timeout.is_zero() {
            return Err(match ctx.err() {
                Some(e) => ClientError::Canceled(e),
                None => ClientError::Timeout(CLIENT_TIMEOUT),
            });
        }
        self.inner.pool.lock().stats.dials += 1;
        let dialed = dial_ctx(self.inner.dialer.clone(), addr.clone(), timeout, ctx);
        let conn = match dialed {
            Ok(c) => c,
            Err(DialError::Canceled(e)) => return Err(ClientError::Canceled(e)),
            Err(DialError::Io(e)) => {
                if let Some(c) = ctx.err() {
                    return Err(ClientError::Canceled(c));
                }
                if e.kind() == io::ErrorKind::TimedOut && client_limited {
                    return Err(ClientError::Timeout(CLIENT_TIMEOUT));
                }
                let e = if e.kind() == io::ErrorKind::TimedOut {
                    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
                } else {
                    e
                };
                return Err(ClientError::Connect { addr, source: e });
            }
        };
        let conn = match (&self.inner.tls, url.scheme()) {
            (Some(tls), "https") => {
                let host = url.host().trim_start_matches('[').trim_end_matches(']');
                tls.handshake(conn, host, cfg.tls_handshake_timeout)
                    .map_err(|source| ClientError::Tls { addr, source })?
            }
            _ => conn,
        };
        Ok(PersistConn::new(
            Arc::from(conn),
            cfg.max_response_header_bytes,
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
            match ctx.on_cancel(move |_| closer.close()) {
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
