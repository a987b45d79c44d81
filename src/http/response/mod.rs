//! The response writer a handler writes to (Go's `http.ResponseWriter`).
//!
//! A response is buffered until the handler returns, so that it gets a `Content-Length`; a
//! handler that writes more than [`STREAM_AT`] bytes, or calls `flush`, switches it to
//! streaming: the head goes out, then the body as it is written, chunked for HTTP/1.1 unless
//! the handler set `Content-Length` (Go's `chunkWriter` with its 2 KiB buffer; ours is
//! larger so that most responses get a length).

mod encode;

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};

use super::body::BodyState;
use super::header::{Header, valid_name};
use super::io::ConnIo;
use super::status::StatusCode;
use encode::{frame, sniff, write_status_line};

/// Body bytes buffered before a response switches to streaming.
pub const STREAM_AT: usize = 32 << 10;

#[derive(Debug, Clone, Copy)]
struct Stream {
    chunked: bool,
    /// Bytes still owed under a declared `Content-Length`.
    remaining: Option<u64>,
}

/// Where a handler writes its response: [`header`](Self::header) to set fields,
/// [`write_header`](Self::write_header) to set the status, and [`Write`] for the body
/// (`write!(w, ..)`, `w.write_all(..)`). Go's `Flusher` is [`Write::flush`]: it sends what
/// was written so far and makes the rest of the response stream.
///
/// The server adds `Date`, `Content-Length` (or `Transfer-Encoding: chunked` when
/// streaming), `Content-Type` when the handler set none and wrote a body (a small sniffer:
/// `text/html; charset=utf-8` for HTML, `text/plain; charset=utf-8` for other text,
/// `application/octet-stream` otherwise), and `Connection: close` when the connection ends
/// after this response.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use goway::http::{Request, ResponseWriter, StatusCode};
///
/// fn created(_r: &Request, w: &mut ResponseWriter) {
///     w.header().set("Content-Type", "application/json");
///     w.write_header(StatusCode::CREATED);
///     let _ = w.write_all(br#"{"id":1}"#);
/// }
/// # let _ = created;
/// ```
pub struct ResponseWriter<'c> {
    io: &'c RefCell<ConnIo>,
    body_state: &'c RefCell<BodyState>,
    pub(crate) header: Header,
    pub(crate) buf: Vec<u8>,
    status: u16,
    stream: Option<Stream>,
    written: u64,
    head_req: bool,
    minor: u8,
    keep_alive_10: bool,
    pub(crate) close: bool,
}

impl fmt::Debug for ResponseWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseWriter")
            .field("status", &self.status)
            .field("header", &self.header)
            .field("written", &self.written)
            .field("streaming", &self.stream.is_some())
            .finish()
    }
}

fn body_not_allowed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "http: request method or response status code does not allow body",
    )
}

fn too_long() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "http: wrote more than the declared Content-Length",
    )
}

impl<'c> ResponseWriter<'c> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        io: &'c RefCell<ConnIo>,
        body_state: &'c RefCell<BodyState>,
        header: Header,
        buf: Vec<u8>,
        head_req: bool,
        minor: u8,
        keep_alive_10: bool,
        close: bool,
    ) -> Self {
        ResponseWriter {
            io,
            body_state,
            header,
            buf,
            status: 0,
            stream: None,
            written: 0,
            head_req,
            minor,
            keep_alive_10,
            close,
        }
    }

    /// The response's header fields, to set before the first write or `write_header`
    /// (Go's `w.Header()`). Changes made after the head was sent have no effect.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(_r: &Request, w: &mut ResponseWriter) {
    ///     w.header().set("Content-Type", "text/csv");
    ///     w.header().add("Cache-Control", "no-store");
    ///     let _ = w.write_all(b"a,b\n");
    /// }
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.header("Content-Type"), Some("text/csv"));
    /// assert_eq!(reply.header("Cache-Control"), Some("no-store"));
    /// ```
    pub fn header(&mut self) -> &mut Header {
        &mut self.header
    }

    /// Sets the status (Go's `WriteHeader`). Only the first call with a final status counts;
    /// later ones are logged (`http: superfluous response.WriteHeader call`) and ignored.
    /// Without a call, the first write or the handler's return means `200 OK`.
    ///
    /// An informational status (`100 Continue`, `102 Processing`, `103 Early Hints`, any
    /// 1xx but 101) is sent at once, as Go does: its status line and the header fields set
    /// so far (without `Content-Length` and `Transfer-Encoding`; the fields stay set for
    /// the final response), and it does not count as the response's status. Writing `100`
    /// means the server's own `100 Continue` (sent at the first body read of a request with
    /// `Expect: 100-continue`) is not sent again. An HTTP/1.0 client gets no informational
    /// response (RFC 9110 §15.2 forbids them; Go sends them anyway).
    ///
    /// `101 Switching Protocols` is a final status, as in Go since 1.20; goway has no way
    /// to take over the connection (Go's `Hijacker`), so the connection closes after it.
    ///
    /// # Examples
    /// ```
    /// use goway::http::{Request, ResponseWriter, StatusCode};
    ///
    /// fn page(_r: &Request, w: &mut ResponseWriter) {
    ///     w.header().add("Link", "</style.css>; rel=preload; as=style");
    ///     w.write_header(StatusCode::EARLY_HINTS); // sent now: HTTP/1.1 103 Early Hints
    ///     // ... the slow work ...
    ///     w.write_header(StatusCode::OK); // the final response, with the Link field too
    /// }
    /// # let _ = page;
    /// ```
    pub fn write_header(&mut self, code: impl Into<StatusCode>) {
        let code = code.into().as_u16();
        if self.status != 0 {
            log::warn!(target: "goway::http", "http: superfluous response.WriteHeader call (status {code} after {})", self.status);
            return;
        }
        if (100..200).contains(&code) && code != 101 {
            self.informational(code);
            return;
        }
        if code == 101 {
            self.close = true;
        }
        self.status = code;
    }

    /// Sends an informational (1xx) response now, after the responses queued before it.
    fn informational(&mut self, code: u16) {
        if code == 100 {
            self.body_state.borrow_mut().continue_pending = false;
        }
        if self.minor == 0 {
            log::debug!(target: "goway::http", "http: informational status {code} not sent to an HTTP/1.0 client");
            return;
        }
        let mut io = self.io.borrow_mut();
        if io.broken {
            return;
        }
        let out = &mut io.out;
        write_status_line(out, code);
        for (n, _, line) in self.header.raw_fields() {
            let skip = match n.len() {
                10 => n.eq_ignore_ascii_case(b"connection"),
                14 => n.eq_ignore_ascii_case(b"content-length"),
                17 => n.eq_ignore_ascii_case(b"transfer-encoding"),
                _ => false,
            };
            if !skip && valid_name(n) {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(b"\r\n");
        // Go flushes it at once: the point of 103 is to arrive before the slow final one.
        let _ = io.flush();
    }

    /// The status set so far (`200` if none was set yet).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, StatusCode};
    ///
    /// fn handler(_r: &Request, w: &mut ResponseWriter) {
    ///     let before = w.status();
    ///     w.write_header(StatusCode::ACCEPTED);
    ///     let _ = write!(w, "{} then {}", before.as_u16(), w.status().as_u16());
    /// }
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.status, 202);
    /// assert_eq!(reply.body, "200 then 202");
    /// ```
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(if self.status == 0 { 200 } else { self.status })
    }

    /// Body bytes written so far.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(_r: &Request, w: &mut ResponseWriter) {
    ///     let _ = w.write_all(b"hello ");
    ///     let n = w.written();
    ///     let _ = write!(w, "{n}");
    /// }
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.body, "hello 6");
    /// ```
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether the head was sent already (the response is streaming), so the status and
    /// header can no longer change.
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter};
    ///
    /// fn handler(_r: &Request, w: &mut ResponseWriter) {
    ///     let _ = w.write_all(b"first part;");
    ///     let buffered = w.is_committed();
    ///     let _ = w.flush(); // the head goes out: the rest streams, chunked
    ///     let now = w.is_committed();
    ///     let _ = w.write_all(format!("{buffered} {now}").as_bytes());
    /// }
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(handler, req).unwrap();
    /// assert_eq!(reply.header("Transfer-Encoding"), Some("chunked"));
    /// assert!(reply.body.contains("first part;") && reply.body.contains("false true"));
    /// ```
    pub fn is_committed(&self) -> bool {
        self.stream.is_some()
    }

    fn allows_body(&self) -> bool {
        let s = if self.status == 0 { 200 } else { self.status };
        !(s < 200 || s == 204 || s == 304)
    }

    fn explicit_len(&self) -> Option<u64> {
        self.header
            .get("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    /// Serialises the status line and header into `out`.
    fn write_head(&mut self, out: &mut Vec<u8>, date: &[u8], len: Option<u64>, chunked: bool) {
        let status = if self.status == 0 { 200 } else { self.status };
        self.status = status;
        out.reserve(self.header.byte_len() + 4 * self.header.len() + 128);
        let mut num = itoa::Buffer::new();
        write_status_line(out, status);
        let mut has_date = false;
        let mut has_type = false;
        for (n, v, line) in self.header.raw_fields() {
            // Dispatch on the length first: most fields are none of these.
            match n.len() {
                10 if n.eq_ignore_ascii_case(b"connection") => {
                    // The handler may ask to close; the server writes the header itself.
                    self.close |= v
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
                    continue;
                }
                14 if n.eq_ignore_ascii_case(b"content-length") => continue,
                17 if n.eq_ignore_ascii_case(b"transfer-encoding") => continue,
                4 if n.eq_ignore_ascii_case(b"date") => has_date = true,
                12 if n.eq_ignore_ascii_case(b"content-type") => has_type = true,
                _ => {}
            }
            if !valid_name(n) {
                continue;
            }
            out.extend_from_slice(line);
        }
        if !has_date {
            out.extend_from_slice(date);
        }
        if !has_type && self.allows_body() && !self.buf.is_empty() {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(sniff(&self.buf).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(n) = len {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(num.format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.minor == 0 && self.keep_alive_10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Sends the head and the buffered body, and streams from now on.
    fn start_stream(&mut self) -> io::Result<()> {
        let explicit = self.explicit_len();
        {
            let mut body = self.body_state.borrow_mut();
            if !body.is_done() {
                // The handler may still read the body; the next request cannot start before
                // it ends, and a head already sent cannot change: close after this response.
                self.close = true;
            }
            // A `100 Continue` after the final head would be read as the next response.
            body.final_sent = true;
        }
        let allows = self.allows_body();
        let (len, chunked) = if self.head_req || !allows || explicit.is_some() {
            (explicit, false)
        } else if self.minor >= 1 {
            (None, true)
        } else {
            // HTTP/1.0 has no chunking: the body ends when the connection does.
            self.close = true;
            (None, false)
        };
        let mut io = self.io.borrow_mut();
        let io = &mut *io;
        let date = *io.date.get();
        let mut out = std::mem::take(&mut io.out);
        self.write_head(&mut out, &date, len, chunked);
        let mut buf = std::mem::take(&mut self.buf);
        let mut remaining = explicit;
        let mut r = Ok(());
        if allows && !self.head_req && !buf.is_empty() {
            if let Some(rem) = remaining {
                if buf.len() as u64 > rem {
                    buf.truncate(rem as usize);
                    r = Err(too_long());
                }
                remaining = Some(rem - buf.len() as u64);
            }
            frame(&mut out, &buf, chunked);
        }
        buf.clear();
        self.buf = buf;
        io.out = out;
        self.stream = Some(Stream { chunked, remaining });
        io.flush()?;
        r
    }

    /// Ends the response after the handler returned: drains an unread request body (or
    /// decides to close), and queues the head and body in the connection's output.
    /// Returns whether the connection may serve another request.
    pub(crate) fn finish(&mut self) -> bool {
        match self.stream {
            None => {
                let body_ok = {
                    let mut io = self.io.borrow_mut();
                    self.body_state.borrow_mut().drain(&mut io)
                };
                if !body_ok {
                    self.close = true;
                }
                let allows = self.allows_body();
                let len = if !allows {
                    None
                } else if self.head_req {
                    self.explicit_len()
                        .or((self.written > 0).then_some(self.written))
                } else {
                    Some(self.buf.len() as u64)
                };
                let mut io = self.io.borrow_mut();
                let io = &mut *io;
                let date = *io.date.get();
                let mut out = std::mem::take(&mut io.out);
                self.write_head(&mut out, &date, len, false);
                if allows && !self.head_req {
                    out.extend_from_slice(&self.buf);
                }
                io.out = out;
                self.buf.clear();
            }
            Some(s) => {
                let mut io = self.io.borrow_mut();
                if s.chunked {
                    io.out.extend_from_slice(b"0\r\n\r\n");
                }
                if s.remaining.is_some_and(|r| r > 0) && !self.head_req && self.allows_body() {
                    // Fewer bytes than declared: the client would wait for the rest.
                    self.close = true;
                }
                if !self.body_state.borrow_mut().drain(&mut io) {
                    self.close = true;
                }
            }
        }
        !self.close
    }

    /// Forgets everything buffered (for a handler that panicked before sending anything).
    pub(crate) fn discard(&mut self) {
        self.buf.clear();
        self.header.clear();
        self.status = 0;
    }

    /// Takes the reusable buffers back.
    pub(crate) fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.buf)
    }
}

impl Write for ResponseWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.status == 0 {
            self.status = 200;
        }
        if !self.allows_body() {
            return Err(body_not_allowed());
        }
        if data.is_empty() {
            return Ok(0);
        }
        match self.stream {
            None => {
                self.written += data.len() as u64;
                if self.head_req {
                    // Counted for Content-Length, never sent.
                    return Ok(data.len());
                }
                self.buf.extend_from_slice(data);
                if self.buf.len() >= STREAM_AT {
                    self.start_stream()?;
                }
                Ok(data.len())
            }
            Some(mut s) => {
                if self.head_req {
                    self.written += data.len() as u64;
                    return Ok(data.len());
                }
                if let Some(rem) = s.remaining {
                    if data.len() as u64 > rem {
                        return Err(too_long());
                    }
                    s.remaining = Some(rem - data.len() as u64);
                }
                let mut io = self.io.borrow_mut();
                if io.broken {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "http: connection broken",
                    ));
                }
                frame(&mut io.out, data, s.chunked);
                self.stream = Some(s);
                self.written += data.len() as u64;
                if io.out.len() >= STREAM_AT {
                    io.flush()?;
                }
                Ok(data.len())
            }
        }
    }

    /// Sends what was written so far (Go's `Flusher.Flush`); the response streams from now
    /// on.
    fn flush(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            return self.start_stream();
        }
        self.io.borrow_mut().flush()
    }
}
