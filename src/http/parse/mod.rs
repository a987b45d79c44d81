//! Reading a request head: an incremental scan for its end ([`HeadScan`], in `scan`), the
//! request line parsed here (`request_line`) and the header fields with `httparse`, checked
//! with Go's rules for what is rejected (`fields`; net/http/server.go `readRequest`,
//! transfer.go `readTransfer`).

mod fields;
mod request_line;
mod scan;
#[cfg(test)]
mod tests;

use super::header::Header;
use fields::fill;
pub(crate) use request_line::{RequestLine, request_line};
pub(crate) use scan::HeadScan;

/// Header fields parsed into an array on the stack; a request with more gets a heap array
/// of the size counted while scanning.
const STACK_HEADERS: usize = 48;
/// Most header fields in one request (beyond it: 431).
const MAX_HEADERS: usize = 8192;
/// Bytes of empty lines (CR, LF) skipped before a request line: RFC 9112 §2.2 asks servers
/// to ignore at least one empty line there; Go skips up to 4 bytes of them (after a POST
/// only) and refuses more, as this server does.
const MAX_LEADING_EMPTY: usize = 4;
/// Slack over `max_header_bytes`, as Go allows (`initialReadLimitSize`: +4096).
pub(crate) const HEADER_SLACK: usize = 4096;

/// A request head, parsed and checked. Its buffers are reused from request to request.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// Method, then the request target.
    pub(crate) line: String,
    pub(crate) method_len: usize,
    /// The minor version of HTTP/1.x: 0 is served as HTTP/1.0, any other (1 to 9, as Go
    /// accepts) as HTTP/1.1.
    pub(crate) minor: u8,
    pub(crate) header: Header,
    pub(crate) content_length: Option<u64>,
    pub(crate) chunked: bool,
    /// The client wants the connection closed after this response.
    pub(crate) close: bool,
    /// An HTTP/1.0 client asked for keep-alive (it gets `Connection: keep-alive` back).
    pub(crate) keep_alive_10: bool,
    pub(crate) expect_continue: bool,
}

impl Head {
    pub(crate) fn method(&self) -> &str {
        &self.line[..self.method_len]
    }

    pub(crate) fn target(&self) -> &str {
        &self.line[self.method_len..]
    }
}

/// Why a request head is refused: each maps to Go's status and reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// 400, with a reason.
    Bad(&'static str),
    /// 414: the request line alone is over the limit.
    UriTooLong,
    /// 431: the head is over `max_header_bytes`, or has too many fields.
    TooLarge,
    /// 417: an `Expect` other than `100-continue`.
    Expectation,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented,
    /// 505: a well-formed version other than HTTP/1.x (Go's `http1ServerSupportsRequest`).
    Version,
}

impl HeadError {
    /// The status and the text after it in Go's reply (`400 Bad Request: <why>`).
    pub(crate) fn status(self) -> (u16, &'static str) {
        match self {
            HeadError::Bad(why) => (400, why),
            HeadError::UriTooLong => (414, ""),
            HeadError::TooLarge => (431, ""),
            HeadError::Expectation => (417, ""),
            HeadError::NotImplemented => (501, "unsupported transfer encoding"),
            HeadError::Version => (505, "unsupported protocol version"),
        }
    }
}

/// One step of reading a request head, as the server takes it whenever bytes arrived:
/// scans the bytes of `buf` (the unconsumed input, from the start of the head) that `scan`
/// has not seen; if the head is complete, parses it into `head`, else checks its size so
/// far. Returns `Ok(Some(n))` (the head is the first `n` bytes), `Ok(None)` (more bytes are
/// needed) or the error to reply with, and the bytes examined (`Stats::head_bytes_scanned`).
pub(crate) fn head_step(
    buf: &[u8],
    scan: &mut HeadScan,
    head: &mut Head,
    max_header_bytes: usize,
) -> (Result<Option<usize>, HeadError>, usize) {
    let before = scan.scanned();
    let found = scan.advance(buf);
    let mut work = scan.scanned() - before;
    let r = match found {
        Ok(Some(end)) => {
            work += end;
            parse_head(buf, scan, end, head, max_header_bytes).map(|()| Some(end))
        }
        Ok(None) => {
            check_partial(buf.len(), scan.request_line_done(), max_header_bytes).map(|()| None)
        }
        Err(e) => Err(e),
    };
    (r, work)
}

/// Parses the head that `scan` found complete (the first `end` bytes of `buf`) into
/// `head`, checking it as Go's `readRequest` does.
pub(crate) fn parse_head(
    buf: &[u8],
    scan: &HeadScan,
    end: usize,
    head: &mut Head,
    max_header_bytes: usize,
) -> Result<(), HeadError> {
    check_size(end, max_header_bytes)?;
    let (Some(start), Some(line_end)) = (scan.start, scan.line_end) else {
        return Err(HeadError::Bad("malformed HTTP request"));
    };
    let line = request_line(&buf[start..line_end])?;
    let block = &buf[line_end..end];
    if scan.fields <= STACK_HEADERS {
        let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
        parse_fields(block, &mut stack, &line, head)
    } else {
        // Sized once, from the lines counted: no retry, no fixed 8,192-entry array.
        let mut many = vec![httparse::EMPTY_HEADER; scan.fields];
        parse_fields(block, &mut many, &line, head)
    }
}

fn parse_fields<'b>(
    block: &'b [u8],
    slots: &mut [httparse::Header<'b>],
    line: &RequestLine<'_>,
    head: &mut Head,
) -> Result<(), HeadError> {
    match httparse::parse_headers(block, slots) {
        Ok(httparse::Status::Complete((n, fields))) if n == block.len() => fill(line, fields, head),
        Ok(_) => Err(HeadError::Bad("malformed header block")),
        Err(e) => Err(map_err(e)),
    }
}

/// Parses the head at the start of `buf` in one go (the tests' way in): `Ok(None)` if it
/// is incomplete, `Ok(Some(n))` if it is the first `n` bytes.
#[cfg(test)]
pub(crate) fn parse(
    buf: &[u8],
    head: &mut Head,
    max_header_bytes: usize,
) -> Result<Option<usize>, HeadError> {
    let mut scan = HeadScan::default();
    match scan.advance(buf)? {
        Some(end) => parse_head(buf, &scan, end, head, max_header_bytes).map(|()| Some(end)),
        None => Ok(None),
    }
}

fn check_size(n: usize, max: usize) -> Result<(), HeadError> {
    if n > max.saturating_add(HEADER_SLACK) {
        Err(HeadError::TooLarge)
    } else {
        Ok(())
    }
}

/// For an incomplete head of `len` bytes: an error once it is over the limit (414 if the
/// request line has not even ended, else 431).
pub(crate) fn check_partial(
    len: usize,
    request_line_done: bool,
    max_header_bytes: usize,
) -> Result<(), HeadError> {
    if len <= max_header_bytes.saturating_add(HEADER_SLACK) {
        Ok(())
    } else if request_line_done {
        Err(HeadError::TooLarge)
    } else {
        Err(HeadError::UriTooLong)
    }
}

/// An error of `httparse::parse_headers` (the request line is parsed here).
fn map_err(e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        httparse::Error::HeaderName => HeadError::Bad("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Bad("invalid header value"),
        httparse::Error::NewLine => HeadError::Bad("malformed line ending"),
        _ => HeadError::Bad("malformed header line"),
    }
}
