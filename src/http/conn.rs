//! One connection, served by one goroutine: read into a reusable buffer, parse every complete
//! request in it, call the handler, queue each response in one output buffer, and write that
//! buffer when no complete request is left (pipelined requests get their responses in one
//! write). Go's `conn.serve` in net/http/server.go, without the background reader.
//!
//! Invariants:
//! - Input is consumed only by the head parser and the body reader, so a request's body
//!   ends before the next head is parsed; a body that cannot be finished (unread and over
//!   the drain limit, malformed, timed out) closes the connection. Never desynchronised.
//! - Responses are queued in request order; output is flushed before any blocking read.
//! - Every error reply ends the connection with `Connection: close`.

use std::cell::{OnceCell, RefCell};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::body::{BodyError, BodyState};
use super::header::Header;
use super::io::{ConnIo, HttpStream};
use super::parse::{self, HEADER_SLACK, Head, HeadError, HeadScan};
use super::request::Request;
use super::response::{ResponseWriter, STREAM_AT};
use super::server::{ConnEntry, ConnState, Shared};
use super::status::status_text;
use crate::net::server::LINGER;
use crate::runtime::panic_message;

/// Most bytes discarded while lingering after an error reply (for up to [`LINGER`], Go's
/// `rstAvoidanceDelay`).
const LINGER_BYTES: usize = 256 << 10;

/// Why reading the next head ended without one.
enum End {
    /// EOF, timeout, socket error, or shutdown: close without a reply (Go replies nothing).
    Quiet,
    /// A bad request: reply, then close.
    Reply(HeadError),
}

/// Serves one connection (`conn_id`, for its tracing spans) until it closes.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn serve(
    stream: HttpStream,
    peer: SocketAddr,
    conn_id: u64,
    srv: &Shared,
    entry: &ConnEntry,
) {
    let cfg = &srv.cfg;
    let accepted = Instant::now();
    if let HttpStream::Tls(s) = &stream {
        if !tls_handshake(s, peer) {
            return;
        }
    }
    let io = RefCell::new(ConnIo::new(stream, cfg.max_header_bytes + HEADER_SLACK + 1));
    let body = RefCell::new(BodyState::empty());
    let mut head = Head::default();
    let mut resp_header = Header::new();
    let mut resp_buf = Vec::new();
    let mut path_values = Vec::new();
    let mut first = true;
    loop {
        let started = match read_head(&io, &mut head, srv, entry, first, accepted) {
            Ok(t) => t,
            Err(End::Quiet) => {
                close(&io, false);
                return;
            }
            Err(End::Reply(e)) => {
                let (code, why) = e.status();
                log::debug!(target: "goway::http", "http: {peer}: {code} {why}");
                error_reply(&io, code, why);
                close(&io, true);
                return;
            }
        };
        first = false;
        srv.stats.requests.fetch_add(1, Ordering::Relaxed);
        let declared = if head.chunked {
            None
        } else {
            head.content_length
        };
        if declared.is_some_and(|n| n > cfg.max_body_bytes) {
            error_reply(&io, 413, "");
            close(&io, true);
            return;
        }
        {
            let mut iob = io.borrow_mut();
            let s = &mut iob.stream;
            let _ = s.set_read_timeout(None);
            s.set_read_deadline(
                cfg.read_timeout
                    .and_then(|t| started.unwrap_or_else(Instant::now).checked_add(t)),
            );
            s.set_write_deadline(
                cfg.write_timeout
                    .and_then(|t| Instant::now().checked_add(t)),
            );
        }
        *body.borrow_mut() = BodyState::new(
            head.content_length,
            head.chunked,
            cfg.max_body_bytes,
            head.expect_continue,
        );
        let closing = srv.closing.load(Ordering::SeqCst);
        let (head_req, minor, ka10, client_close) = (
            head.method() == "HEAD",
            head.minor,
            head.keep_alive_10,
            head.close,
        );
        let options_star = head.target() == "*";
        let req = Request {
            head: std::mem::take(&mut head),
            body: &body,
            io: &io,
            remote: peer,
            path_values: RefCell::new(std::mem::take(&mut path_values)),
            pattern: RefCell::new(None),
            base_ctx: &srv.ctx,
            ctx: OnceCell::new(),
        };
        let mut w = ResponseWriter::new(
            &io,
            &body,
            std::mem::take(&mut resp_header),
            std::mem::take(&mut resp_buf),
            head_req,
            minor,
            ka10,
            client_close || closing,
        );
        let res = if options_star {
            // Go's globalOptionsHandler: `OPTIONS *` is answered by the server.
            w.header().set("Content-Length", "0");
            Ok(())
        } else {
            #[cfg(feature = "tracing")]
            let _span = crate::runtime::enter_span(
                tracing::info_span!(target: "goway::http", "request", method = req.method(), path = req.path(), conn_id),
            );
            panic::catch_unwind(AssertUnwindSafe(|| srv.handler.serve_http(&req, &mut w)))
        };
        req.end();
        let keep = match res {
            Ok(()) => {
                if srv.closing.load(Ordering::SeqCst) {
                    w.close = true;
                }
                // The handler gave up on a body over the limit, or with bad chunked framing,
                // without answering: answer for it.
                let fallback = match body.borrow().error {
                    Some(BodyError::TooLarge) => Some(413),
                    Some(BodyError::Malformed(_)) => Some(400),
                    _ => None,
                };
                if let Some(code) = fallback {
                    if !w.is_committed() && w.written() == 0 && w.status().as_u16() == 200 {
                        w.discard();
                        w.write_header(code);
                    }
                }
                w.finish()
            }
            Err(p) => {
                let msg = panic_message(&*p);
                log::error!(target: "goway::http", "http: panic serving {peer}: {msg}");
                if !w.is_committed() {
                    w.discard();
                    error_reply(&io, 500, "");
                }
                false
            }
        };
        head = req.head;
        path_values = req.path_values.into_inner();
        path_values.clear();
        let (h, b) = w.into_parts();
        resp_header = h;
        resp_header.clear();
        resp_buf = b;
        resp_buf.clear();
        let mut iob = io.borrow_mut();
        if iob.broken {
            return;
        }
        if !keep {
            let unread = !iob.buffered().is_empty() || !body.borrow().is_done();
            drop(iob);
            close(&io, unread);
            return;
        }
        if iob.out.len() >= STREAM_AT && iob.flush().is_err() {
            return;
        }
    }
}

/// Reads until a complete head is parsed into `head`. Returns when its first byte came, if
/// that was timed (it is only when a deadline needed it: the clock is not read for a head
/// that arrives in one piece).
fn read_head(
    io: &RefCell<ConnIo>,
    head: &mut Head,
    srv: &Shared,
    entry: &ConnEntry,
    first: bool,
    accepted: Instant,
) -> Result<Option<Instant>, End> {
    let cfg = &srv.cfg;
    let mut iob = io.borrow_mut();
    // Whether bytes of this request were seen, and when (measured once a deadline needs it).
    let mut begun = false;
    let mut started: Option<Instant> = None;
    // Where the search for the end of the head stopped: each read only scans new bytes.
    let mut scan = HeadScan::default();
    loop {
        if !iob.buffered().is_empty() {
            begun = true;
            let (r, work) = parse::head_step(iob.buffered(), &mut scan, head, cfg.max_header_bytes);
            srv.stats
                .head_bytes_scanned
                .fetch_add(work as u64, Ordering::Relaxed);
            match r {
                Ok(Some(n)) => {
                    iob.consume(n);
                    return Ok(started);
                }
                Ok(None) => {}
                Err(e) => return Err(End::Reply(e)),
            }
        }
        // Need more input: first send what is queued.
        if iob.flush().is_err() {
            return Err(End::Quiet);
        }
        if !begun && !first {
            // Between requests: idle, closable by shutdown, and closed by the server's
            // janitor after `idle_timeout` (no timer per read).
            iob.trim();
            entry
                .idle_since
                .store(srv.coarse_now_ms(), Ordering::Relaxed);
            entry.state.store(ConnState::Idle);
            if srv.closing.load(Ordering::SeqCst) {
                return Err(End::Quiet);
            }
            let s = &mut iob.stream;
            let _ = s.set_read_timeout(None);
            s.set_read_deadline(None);
        } else {
            // The first request's head is timed from the accept (Go), later ones from their
            // first byte; trickled bytes do not extend it.
            let from = if first {
                accepted
            } else {
                *started.get_or_insert_with(Instant::now)
            };
            let hdr = cfg
                .read_header_timeout
                .or(cfg.read_timeout)
                .and_then(|t| from.checked_add(t));
            let s = &mut iob.stream;
            let _ = s.set_read_timeout(None);
            s.set_read_deadline(hdr);
        }
        match iob.fill() {
            Ok(0) => {
                if begun {
                    log::debug!(target: "goway::http", "http: client closed in the middle of a request head");
                }
                return Err(End::Quiet);
            }
            Ok(_) => {
                if !begun && !entry.activate() {
                    return Err(End::Quiet);
                }
            }
            Err(e) => {
                match e.kind() {
                    io::ErrorKind::TimedOut => {
                        log::debug!(target: "goway::http", "http: read timeout waiting for a request head")
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => {}
                }
                return Err(End::Quiet);
            }
        }
    }
}

/// Queues Go's plain-text error reply (`400 Bad Request: why`) with `Connection: close`.
fn error_reply(io: &RefCell<ConnIo>, code: u16, why: &str) {
    let mut iob = io.borrow_mut();
    let text = status_text(code);
    let msg = if why.is_empty() {
        format!("{code} {text}")
    } else {
        format!("{code} {text}: {why}")
    };
    let reply = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
        msg.len()
    );
    iob.out.extend_from_slice(reply.as_bytes());
}

/// Runs a TLS connection's handshake (under the handshake timeout its listener set); `false`
/// when it failed and the connection is over. A client speaking plain HTTP gets Go's 400.
fn tls_handshake(s: &crate::tls::TlsStream, peer: SocketAddr) -> bool {
    let Err(e) = s.handshake() else { return true };
    log::debug!(target: "goway::http", "http: TLS handshake error from {peer}: {e}");
    let http = crate::tls::TlsError::from_io(&e)
        .is_some_and(|t| t.kind() == crate::tls::TlsErrorKind::HttpToHttps);
    if http {
        use std::io::Write as _;
        let mut tcp = s.get_ref();
        let _ = tcp.write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        );
    }
    let _ = s.get_ref().shutdown(Shutdown::Both);
    false
}

/// Flushes, sends FIN and, if the client may still be sending (`linger`), reads and
/// discards for up to [`LINGER`] so that the close does not reset the connection before
/// the client read the last response.
fn close(io: &RefCell<ConnIo>, linger: bool) {
    let mut iob = io.borrow_mut();
    if iob.flush().is_err() {
        return;
    }
    let _ = iob.stream.shutdown(Shutdown::Write);
    if !linger {
        return;
    }
    let _ = iob.stream.set_read_timeout(None);
    iob.stream
        .set_read_deadline(Instant::now().checked_add(LINGER));
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let n = iob.buffered().len();
        iob.consume(n);
        discarded += n;
        match iob.fill() {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
