//! The HTTP/1.1 request reader of the server, driven over bytes in memory.
//!
//! The connection's read buffer ([`ConnIo`]), the head scanner and parser
//! ([`parse::head_step`], the function `conn::read_head` calls on every read) and the body
//! decoder ([`BodyState`]) are the server's own; only the socket is replaced, by a stream
//! that hands the input out in pieces. The loop around them is the server's
//! (`conn::serve`): read a head, refuse a declared body over the limit, let a "handler"
//! read the body (all of it, some of it, or none), drain what is left as the response's
//! `finish` does, and stop where the server would close the connection.

use std::io::{self, Read, Write};

use super::{Rng, pieces};
use crate::http::body::{BodyError, BodyState, MAX_CHUNK_LINE, MAX_TRAILER};
use crate::http::io::ConnIo;
use crate::http::parse::{self, HEADER_SLACK, Head, HeadError, HeadScan};

/// The client's end of an in-memory connection: each `read` hands out the next piece (or
/// as much of it as fits), then EOF; what the server writes (`100 Continue`) is counted.
struct Wire<'a> {
    pieces: Vec<&'a [u8]>,
    next: usize,
    reads: usize,
    written: usize,
}

impl<'a> Wire<'a> {
    fn new(pieces: Vec<&'a [u8]>) -> Self {
        Wire {
            pieces,
            next: 0,
            reads: 0,
            written: 0,
        }
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        let Some(p) = self.pieces.get_mut(self.next) else {
            return Ok(0);
        };
        let n = p.len().min(dst.len());
        dst[..n].copy_from_slice(&p[..n]);
        *p = &p[n..];
        if p.is_empty() {
            self.next += 1;
        }
        Ok(n)
    }
}

impl Write for Wire<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.written += b.len();
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The server's limits for one input (`Config::max_header_bytes`, `max_body_bytes`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_header_bytes: usize,
    max_body_bytes: u64,
}

impl Limits {
    /// Small limits for some inputs, to reach the over-limit paths; the defaults for others.
    fn for_input(data: &[u8]) -> Limits {
        let mut rng = Rng::for_input(data);
        // (The first draw picks the codecs' limit; use later ones.)
        rng.next_u64();
        let max_header_bytes = [1, 300, 1 << 20, 1 << 20][rng.below(4)];
        let max_body_bytes = [1, 100, 10 << 20, 10 << 20][rng.below(4)];
        Limits {
            max_header_bytes,
            max_body_bytes,
        }
    }
}

/// What the handler of the `i`th request does with its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    /// Reads it to its end (or its error).
    ReadAll,
    /// Reads once, then leaves the rest to the server's drain.
    ReadSome,
    /// Never reads it: the server drains it (up to 256 KiB) or closes.
    Ignore,
}

impl Handler {
    /// From `plan` (0: every handler reads everything) and the request's index.
    fn pick(plan: u64, i: usize) -> Handler {
        if plan == 0 {
            return Handler::ReadAll;
        }
        let mut rng = Rng::new(plan ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        match rng.below(5) {
            0 => Handler::Ignore,
            1 => Handler::ReadSome,
            _ => Handler::ReadAll,
        }
    }
}

/// A request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Req {
    method: String,
    target: String,
    minor: u8,
    header: Vec<(String, String)>,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive_10: bool,
    expect_continue: bool,
    /// What the handler read of the body: all of it if it read to the end (`complete`), or
    /// what came before the body failed; empty if it read less than that.
    body: Vec<u8>,
    complete: bool,
}

/// Why the server stopped reading the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// EOF between requests.
    Eof,
    /// EOF inside a head (the server closes without a reply).
    EofInHead,
    /// A head refused: the server replies with its status and closes.
    Head(HeadError),
    /// A declared body over `max_body_bytes`: 413, close.
    TooLarge,
    /// The body failed (over the limit, malformed, EOF): the connection closes.
    Body(BodyError),
    /// The body was left unread and the server would not drain it: close.
    Undrained,
    /// The request asked for the connection to close.
    Close,
}

/// One connection, served to its end.
#[derive(Debug)]
struct Served {
    reqs: Vec<Req>,
    end: End,
    /// Bytes the head scanner examined (`Stats::head_bytes_scanned`).
    head_work: usize,
    /// Bytes the chunked decoder searched for line ends.
    line_work: u64,
    /// Socket reads.
    reads: usize,
    /// Bytes written back (`100 Continue`).
    written: usize,
}

/// Serves the connection whose input arrives as `wire`, as `conn::serve` does, checking
/// the reader's bounds on the way. `dst` sizes the handler's reads.
fn serve(wire: Wire<'_>, lim: Limits, plan: u64, dst: &mut dyn FnMut() -> usize) -> Served {
    // The server's read buffer: the head limit and Go's slack, and one byte to tell "over".
    let head_cap = lim.max_header_bytes + HEADER_SLACK;
    let mut io = ConnIo::new(wire, head_cap + 1);
    let mut head = Head::default();
    let mut reqs = Vec::new();
    let mut head_work = 0;
    let mut line_work = 0;
    let mut buf = Vec::new();
    let end = loop {
        // conn::read_head.
        let mut scan = HeadScan::default();
        let mut begun = false;
        let refused = loop {
            if !io.buffered().is_empty() {
                begun = true;
                let (r, work) =
                    parse::head_step(io.buffered(), &mut scan, &mut head, lim.max_header_bytes);
                head_work += work;
                match r {
                    Ok(Some(n)) => {
                        assert!(n <= head_cap, "a {n}-byte head passed the {head_cap} limit");
                        io.consume(n);
                        break None;
                    }
                    Ok(None) => assert!(
                        io.buffered().len() <= head_cap,
                        "{} bytes of an incomplete head buffered, limit {head_cap}",
                        io.buffered().len()
                    ),
                    Err(e) => {
                        let _ = e.status();
                        break Some(End::Head(e));
                    }
                }
            }
            if !begun && !reqs.is_empty() {
                // Idle between requests: the server shrinks the buffers back.
                io.trim();
            }
            match io.fill() {
                Ok(0) => break Some(if begun { End::EofInHead } else { End::Eof }),
                Ok(_) => {}
                // The in-memory stream never fails: this is the buffer's hard limit, which
                // the head's size checks must keep it from reaching.
                Err(e) => panic!(
                    "reading a head: {e} ({} bytes buffered, limit {head_cap})",
                    io.buffered().len()
                ),
            }
        };
        if let Some(end) = refused {
            break end;
        }
        let declared = if head.chunked {
            None
        } else {
            head.content_length
        };
        let mut req = Req {
            method: head.method().to_owned(),
            target: head.target().to_owned(),
            minor: head.minor,
            header: head
                .header
                .iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            content_length: head.content_length,
            chunked: head.chunked,
            close: head.close,
            keep_alive_10: head.keep_alive_10,
            expect_continue: head.expect_continue,
            body: Vec::new(),
            complete: false,
        };
        check_request(&req);
        if declared.is_some_and(|n| n > lim.max_body_bytes) {
            reqs.push(req);
            break End::TooLarge;
        }
        let mut body = BodyState::new(
            head.content_length,
            head.chunked,
            lim.max_body_bytes,
            head.expect_continue,
        );
        let handler = Handler::pick(plan, reqs.len());
        if handler != Handler::Ignore {
            loop {
                buf.resize(dst().max(1), 0);
                match body.read(&mut io, &mut buf) {
                    Ok(0) => {
                        req.complete = true;
                        break;
                    }
                    Ok(n) => {
                        assert!(n <= buf.len());
                        req.body.extend_from_slice(&buf[..n]);
                        if handler == Handler::ReadSome {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        // ResponseWriter::finish.
        let drained = body.drain(&mut io);
        line_work += body.lines.searched;
        assert!(
            body.lines.size_line <= MAX_CHUNK_LINE,
            "a {}-byte chunk-size line held",
            body.lines.size_line
        );
        assert!(
            body.lines.trailer <= MAX_TRAILER,
            "{} trailer bytes held",
            body.lines.trailer
        );
        assert!(
            body.read <= lim.max_body_bytes,
            "a {}-byte body passed the {} limit",
            body.read,
            lim.max_body_bytes
        );
        if let Some(n) = declared.filter(|_| req.complete) {
            assert_eq!(n, req.body.len() as u64, "Content-Length body");
        }
        if !req.complete && handler != Handler::ReadAll {
            // One read's worth depends on the read's size: not comparable. (What a handler
            // reading to the end got before an error is: the same bytes either way.)
            req.body.clear();
        }
        let close = req.close;
        reqs.push(req);
        if !drained {
            break match body.error {
                // The in-memory stream never fails nor times out: an I/O error is the read
                // buffer's hard limit, which the decoder's own limits must keep it from.
                Some(e @ (BodyError::Io | BodyError::TimedOut)) => {
                    panic!("body: {e:?}, {} bytes buffered", io.buffered().len())
                }
                Some(e) => End::Body(e),
                None => End::Undrained,
            };
        }
        assert!(body.is_done(), "drained but not done");
        if close {
            break End::Close;
        }
    };
    let wire = &io.stream;
    Served {
        reqs,
        end,
        head_work,
        line_work,
        reads: wire.reads,
        written: wire.written,
    }
}

/// What Go's server guarantees of a request it accepted (`readRequest`, `readTransfer`).
fn check_request(r: &Req) {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    assert!(token(&r.method), "method {:?}", r.method);
    assert!(r.minor <= 9, "HTTP/1.{} accepted", r.minor);
    assert!(
        !r.target.is_empty() && r.target.bytes().all(|b| b > b' ' && b != 0x7f),
        "target {:?}",
        r.target
    );
    // Every `%` of an origin-form path starts an escape (Go's url.ParseRequestURI).
    if r.target.starts_with('/') {
        let path = r.target.split('?').next().unwrap_or_default().as_bytes();
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'%') {
            assert!(
                path.get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                "bad escape in {:?}",
                r.target
            );
        }
    }
    for (n, v) in &r.header {
        assert!(token(n), "field name {n:?}");
        // No CR, LF, NUL or other control byte: a value echoed back cannot split a response.
        assert!(
            v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f)),
            "field value {v:?}"
        );
    }
    let hosts = r
        .header
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count();
    assert!(
        hosts <= 1 && (r.minor == 0 || hosts == 1),
        "{hosts} Host fields"
    );
    if r.chunked {
        assert!(
            r.content_length.is_none() && r.minor >= 1,
            "chunked framing"
        );
    }
    if r.minor == 0 {
        assert_eq!(r.close, !r.keep_alive_10, "HTTP/1.0 keep-alive");
    }
}

/// `req` as a client would send it, canonically: the request line, each field as
/// `name: value`, the body in one chunk (chunked) or as it is (`Content-Length`).
fn canonical(req: &Req, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", req.minor).as_bytes());
    for (n, v) in &req.header {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if req.chunked {
        if !req.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", req.body.len()).as_bytes());
            out.extend_from_slice(&req.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(&req.body);
    }
}

/// The server's HTTP/1.1 request reader (head scan, parse, `Content-Length` and chunked
/// bodies with trailers, the errors that end a connection) on a connection whose input is
/// `data`: pipelined requests, fed whole (in reads as large as the server's buffer allows)
/// and in pieces. Checks that
/// - the same requests (method, target, version, fields, framing, body bytes) and the same
///   end (clean EOF, or the same error, reason included) come out either way, with the
///   same `100 Continue`s sent;
/// - nothing panics, and the read buffer never reaches its hard limit (an incomplete head
///   stays within `max_header_bytes` plus 4 KiB, a chunk-size line within 4 KiB, trailers
///   within 16 KiB; no body passes `max_body_bytes`);
/// - the work is linear: the head scanner examines at most twice the input (each byte
///   once, each complete head once more to parse it), the chunked decoder searches each
///   byte at most once, and there is at most one read per input byte (plus the EOF);
/// - the requests whose bodies were read, sent again canonically (`canonical`: fields
///   as `name: value`, bodies as one chunk), read back the same.
///
/// The limits (small or the defaults) and what each handler does with its body (reads it
/// all, once, or not at all) derive from a hash of the input.
pub fn http_request(data: &[u8]) {
    let lim = Limits::for_input(data);
    let mut rng = Rng::for_input(data);
    let plan = rng.next_u64() | 1;
    let whole = serve(Wire::new(vec![data]), lim, plan, &mut || 16 << 10);
    let split_pieces = pieces(data, &mut rng);
    let mut sizes = Rng::new(rng.next_u64());
    let split = serve(Wire::new(split_pieces), lim, plan, &mut || {
        if sizes.below(8) == 0 {
            1 + sizes.below(8192)
        } else {
            1 + sizes.below(16)
        }
    });
    assert_eq!(
        whole.reqs, split.reqs,
        "requests differ between whole and split feeding"
    );
    assert_eq!(
        whole.end, split.end,
        "outcomes differ between whole and split feeding"
    );
    assert_eq!(
        whole.written, split.written,
        "100 Continue sent differently"
    );
    for s in [&whole, &split] {
        assert!(
            s.head_work <= 2 * data.len(),
            "the head scanner examined {} bytes of {}",
            s.head_work,
            data.len()
        );
        assert!(
            s.line_work <= data.len() as u64,
            "the chunked decoder searched {} bytes of {}",
            s.line_work,
            data.len()
        );
        assert!(
            s.reads <= data.len() + 1,
            "{} reads for {} bytes",
            s.reads,
            data.len()
        );
    }

    // Round trip: what was read in full, sent again canonically, reads back the same.
    let kept: Vec<Req> = whole.reqs.into_iter().filter(|r| r.complete).collect();
    let mut wire = Vec::new();
    for r in &kept {
        canonical(r, &mut wire);
    }
    let big = Limits {
        max_header_bytes: 1 << 20,
        max_body_bytes: lim.max_body_bytes,
    };
    let again = serve(Wire::new(vec![&wire]), big, 0, &mut || 16 << 10);
    assert_eq!(
        again.reqs, kept,
        "HTTP: read(canonical(request)) != request"
    );
    let want = if kept.last().is_some_and(|r| r.close) {
        End::Close
    } else {
        End::Eof
    };
    assert_eq!(
        again.end, want,
        "HTTP: the canonical requests did not end cleanly"
    );
}
