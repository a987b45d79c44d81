//! A response and its streamed body (Go's `*http.Response` and its `Body`).

use std::fmt;
use std::io::{self, Read};
use std::time::Instant;

use super::conn::PersistConn;
use super::error::BODY_TIMEOUT;
use super::transport::Transport;
use super::url::Url;
use crate::context::{CancelRegistration, Context};
use crate::http::body::BodyState;
use crate::http::{Header, StatusCode};

/// A response: status, header fields, and the body as a stream.
///
/// The body is read from the connection as it is consumed. Read it to its end (or until
/// it fails) and the connection goes back to the transport's pool for the next request;
/// drop it early and the connection is closed (unless the rest of the body had already
/// arrived), as Go closes it.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use goway::http::{Server, Request, ResponseWriter};
///
/// let srv = Server::builder()
///     .addr("127.0.0.1:0")
///     .handler(|_r: &Request, w: &mut ResponseWriter| { let _ = w.write_all(b"hi"); })
///     .bind()
///     .unwrap();
/// let addr = srv.local_addr().unwrap();
/// let handle = srv.handle();
/// goway::go!(move || srv.serve());
///
/// let resp = goway::http::get(&format!("http://{addr}/")).unwrap();
/// assert_eq!(resp.status().as_u16(), 200);
/// assert_eq!(resp.header().get("Content-Length"), Some("2"));
/// assert_eq!(resp.text().unwrap(), "hi");
/// handle.shutdown().unwrap();
/// ```
pub struct Response {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) minor: u8,
    pub(crate) header: Header,
    pub(crate) content_length: Option<u64>,
    pub(crate) url: Url,
    /// The body, as a reader (Go's `resp.Body`).
    pub body: ResponseBody,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &self.url.to_string())
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reason phrase the server sent (`OK` in `200 OK`).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// `"HTTP/1.1"` or `"HTTP/1.0"`.
    pub fn proto(&self) -> &'static str {
        if self.minor == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// The header fields.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The body's length, if the server declared it (`Content-Length`); `Some(0)` when the
    /// response cannot have a body (`HEAD`, `204`, `304`).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The URL this response answers: the last one after redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Reads the whole body.
    ///
    /// # Errors
    /// The body's read error (see [`ResponseBody`]).
    pub fn bytes(mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }

    /// Reads the whole body as UTF-8 text (invalid sequences replaced).
    ///
    /// # Errors
    /// The body's read error (see [`ResponseBody`]).
    pub fn text(self) -> io::Result<String> {
        self.bytes()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}

/// A response body being read from its connection; implements [`Read`].
///
/// A read fails, and keeps failing, on a body that does not end as framed: a connection
/// closed before `Content-Length` bytes or the last chunk (`UnexpectedEof`, "unexpected
/// EOF": never a silently short body), malformed chunked framing (`InvalidData`), the
/// client's timeout (`TimedOut`), the request's context (`Other` for a
/// cancel, `TimedOut` for a deadline, with the
/// [`ContextError`](crate::context::ContextError) inside).
#[derive(Default)]
pub struct ResponseBody {
    live: Option<Box<Live>>,
    error: Option<(io::ErrorKind, String)>,
}

/// A body still attached to its connection.
pub(crate) struct Live {
    pub(crate) pc: PersistConn,
    pub(crate) state: BodyState,
    pub(crate) transport: Transport,
    pub(crate) key: String,
    pub(crate) reusable: bool,
    pub(crate) ctx: Context,
    /// Closes the connection when the context ends; withdrawn when the body is done.
    pub(crate) _cancel: Option<CancelRegistration>,
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("open", &self.live.is_some())
            .field("error", &self.error)
            .finish()
    }
}

impl ResponseBody {
    pub(crate) fn new(live: Live) -> Self {
        let mut b = ResponseBody {
            live: Some(Box::new(live)),
            error: None,
        };
        b.release_if_done();
        b
    }

    /// Stops reading: the connection goes back to the pool if the body had ended (or its
    /// rest is already received), else it is closed. Dropping the body does the same.
    pub fn close(&mut self) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        if !live.state.is_done() && live.reusable && live.state.error.is_none() {
            // Take what already arrived without waiting: reads fail at once from here.
            live.pc.conn.set_read_deadline(Some(Instant::now()));
            let mut sink = [0u8; 4096];
            let mut left = 4u32 << 10;
            while !live.state.is_done() && left > 0 {
                match live.state.read(&mut live.pc.io, &mut sink) {
                    Ok(0) => break,
                    Ok(n) => left = left.saturating_sub(n as u32),
                    Err(_) => break,
                }
            }
        }
        finish(live);
    }

    /// Whether the body was read to its end.
    pub fn is_done(&self) -> bool {
        self.live.is_none() && self.error.is_none()
    }

    fn release_if_done(&mut self) {
        if self.live.as_ref().is_some_and(|l| l.state.is_done()) {
            if let Some(live) = self.live.take() {
                finish(live);
            }
        }
    }

    fn fail(&mut self, e: io::Error, live: Box<Live>) -> io::Error {
        let ctx_err = live.ctx.err().or_else(|| {
            live.ctx
                .deadline()
                .filter(|d| Instant::now() >= *d)
                .map(|_| crate::context::ContextError::DeadlineExceeded)
        });
        let e = match ctx_err {
            Some(c) => canceled_io(c),
            None if e.kind() == io::ErrorKind::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, BODY_TIMEOUT)
            }
            None => e,
        };
        live.pc.conn.close();
        self.error = Some((e.kind(), e.to_string()));
        e
    }
}

/// The error of a body read that the request's context ended: `TimedOut` for a deadline,
/// `Other` for a cancel (never `Interrupted`, which `Read` callers retry), with the
/// [`ContextError`](crate::context::ContextError) inside: the context module's own mapping.
pub(crate) fn canceled_io(c: crate::context::ContextError) -> io::Error {
    io::Error::from(c)
}

/// Returns a finished body's connection to the pool, or closes it.
fn finish(live: Box<Live>) {
    let Live {
        pc,
        state,
        transport,
        key,
        reusable,
        ..
    } = *live;
    if reusable && state.is_done() && state.error.is_none() {
        transport.put_idle(key, pc);
    } else {
        pc.conn.close();
    }
}

impl Read for ResponseBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.error {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        let Some(live) = self.live.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        match live.state.read(&mut live.pc.io, buf) {
            Ok(n) => {
                self.release_if_done();
                Ok(n)
            }
            Err(e) => match self.live.take() {
                Some(live) => Err(self.fail(e, live)),
                None => Err(e),
            },
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.close();
    }
}
