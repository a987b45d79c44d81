//! Reading a request head: an incremental scan for its end ([`HeadScan`]), the request line
//! parsed here and the header fields with `httparse`, checked with Go's rules for what is
//! rejected (net/http/server.go `readRequest`, transfer.go `readTransfer`).

use super::header::{Header, valid_name};

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

/// Finds where a request head ends, however it arrives: the scan resumes where the last
/// call stopped, so each byte of a head trickled in small reads is examined about once
/// (parsing it again on every read made a 1 MB head trickled in 1 KiB reads cost 500 MB of
/// parsing). Complete lines are checked as they come (the request line, each header field),
/// so a malformed head is refused at its first bad line, as Go's line reader does; the
/// fields are parsed once the head is complete ([`parse_head`]).
///
/// Empty lines before the request line are skipped (RFC 9112 §2.2), up to
/// [`MAX_LEADING_EMPTY`] bytes of them.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    /// Bytes examined so far.
    pos: usize,
    /// Start of the request line, once past the empty lines before it.
    start: Option<usize>,
    /// End of the request line (after its `\n`), once it is complete.
    line_end: Option<usize>,
    /// Start of the header line being scanned.
    line_start: usize,
    /// Header field lines seen.
    fields: usize,
}

impl HeadScan {
    /// Scans the bytes of `buf` that earlier calls did not see (`buf` must start with the
    /// bytes they saw). `Ok(Some(n))`: the head is the first `n` bytes; `Ok(None)`: it is
    /// incomplete (the caller checks its size with [`check_partial`]).
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, HeadError> {
        let start = match self.start {
            Some(s) => s,
            None => loop {
                if self.pos > MAX_LEADING_EMPTY {
                    return Err(HeadError::Bad("malformed HTTP request"));
                }
                match buf.get(self.pos) {
                    None => return Ok(None),
                    Some(b'\n') => self.pos += 1,
                    Some(b'\r') => match buf.get(self.pos + 1) {
                        None => return Ok(None),
                        Some(b'\n') => self.pos += 2,
                        Some(_) => return Err(HeadError::Bad("malformed line ending")),
                    },
                    Some(_) => {
                        self.start = Some(self.pos);
                        break self.pos;
                    }
                }
            },
        };
        if self.line_end.is_none() {
            let Some(end) = self.next_line(buf) else {
                return Ok(None);
            };
            request_line(&buf[start..end])?;
            self.line_end = Some(end);
            self.line_start = end;
        }
        loop {
            let Some(end) = self.next_line(buf) else {
                return Ok(None);
            };
            let line = &buf[self.line_start..end];
            if line == b"\r\n" || line == b"\n" {
                return Ok(Some(end));
            }
            header_line(line)?;
            self.fields += 1;
            if self.fields > MAX_HEADERS {
                return Err(HeadError::TooLarge);
            }
            self.line_start = end;
        }
    }

    /// Moves past the next `\n` and returns the offset after it; `None` (having examined
    /// every byte) if there is none yet.
    fn next_line(&mut self, buf: &[u8]) -> Option<usize> {
        let rest = buf.get(self.pos..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Some(self.pos)
            }
            None => {
                self.pos = buf.len();
                None
            }
        }
    }

    /// Bytes examined so far.
    pub(crate) fn scanned(&self) -> usize {
        self.pos
    }

    /// Whether the request line is complete (an oversized head is then 431, not 414).
    pub(crate) fn request_line_done(&self) -> bool {
        self.line_end.is_some()
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

/// Checks one header field line (with its line ending) as `httparse` will parse it: a
/// token, a colon, then a value of tabs, spaces, visible ASCII and obs-text.
fn header_line(line: &[u8]) -> Result<(), HeadError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|&b| b == b':');
    match colon {
        Some(c) if valid_name(&line[..c]) => {
            let ok = line[c + 1..]
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80);
            if ok {
                Ok(())
            } else {
                Err(HeadError::Bad("invalid header value"))
            }
        }
        _ => Err(HeadError::Bad("invalid header name")),
    }
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

/// A request line, split and checked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) major: u8,
    pub(crate) minor: u8,
}

/// Splits and checks a request line (with its line ending) as Go's `readRequest` does:
/// the method is a token, the version has the form `HTTP/<digit>.<digit>`, and the target
/// is visible ASCII (or UTF-8) without spaces, in one of the forms [`check_target`] takes. Anything else is `400`. Which versions are
/// served is decided later ([`HeadError::Version`] for a major other than 1).
pub(crate) fn request_line(line: &[u8]) -> Result<RequestLine<'_>, HeadError> {
    const MALFORMED: HeadError = HeadError::Bad("malformed HTTP request");
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let sp = line.iter().position(|&b| b == b' ').ok_or(MALFORMED)?;
    let (method, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = rest.iter().position(|&b| b == b' ').ok_or(MALFORMED)?;
    let (target, version) = (&rest[..sp], &rest[sp + 1..]);
    if !valid_name(method) {
        return Err(HeadError::Bad("invalid method"));
    }
    let (major, minor) = match *version {
        [b'H', b'T', b'T', b'P', b'/', maj, b'.', min]
            if maj.is_ascii_digit() && min.is_ascii_digit() =>
        {
            (maj - b'0', min - b'0')
        }
        _ => return Err(HeadError::Bad("malformed HTTP version")),
    };
    // Go refuses control bytes in a URL; a space cannot be in it (it ended the target).
    if target.is_empty() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(HeadError::Bad("invalid request target"));
    }
    let target =
        std::str::from_utf8(target).map_err(|_| HeadError::Bad("invalid request target"))?;
    // A token is ASCII, so this cannot fail.
    let method = std::str::from_utf8(method).map_err(|_| HeadError::Bad("invalid method"))?;
    check_target(method, target)?;
    Ok(RequestLine {
        method,
        target,
        major,
        minor,
    })
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

fn fill(
    line: &RequestLine<'_>,
    fields: &[httparse::Header<'_>],
    head: &mut Head,
) -> Result<(), HeadError> {
    if line.major != 1 {
        // Go's http1ServerSupportsRequest: HTTP/0.x and HTTP/2+ get 505 (the HTTP/2
        // preface `PRI * HTTP/2.0` was refused by `request_line` already, as Go's ServeMux
        // does).
        return Err(HeadError::Version);
    }
    let minor = line.minor;
    head.line.clear();
    head.line.push_str(line.method);
    head.method_len = line.method.len();
    head.line.push_str(line.target);
    head.minor = minor;
    head.header.clear();
    head.content_length = None;
    head.chunked = false;
    head.expect_continue = false;
    let mut hosts = 0;
    let mut te = 0;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect: Option<bool> = None;
    for h in fields {
        let name = h.name;
        // Dispatch on the length first: most fields are none of these.
        match name.len() {
            10 if name.eq_ignore_ascii_case("connection") => {
                for t in h.value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    conn_close |= t.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if name.eq_ignore_ascii_case("expect") => {
                let cont = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
                expect = Some(expect.unwrap_or(true) && cont);
            }
            14 if name.eq_ignore_ascii_case("content-length") => {
                let v = std::str::from_utf8(h.value)
                    .ok()
                    .map(str::trim)
                    .and_then(parse_length)
                    .ok_or(HeadError::Bad("bad Content-Length"))?;
                match head.content_length {
                    // Go (transfer.go fixLength): repeated values must all agree.
                    Some(prev) if prev != v => {
                        return Err(HeadError::Bad("conflicting Content-Length"));
                    }
                    _ => head.content_length = Some(v),
                }
            }
            17 if name.eq_ignore_ascii_case("transfer-encoding") => {
                te += 1;
                let chunked = h.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
                if !chunked || te > 1 {
                    return Err(HeadError::NotImplemented);
                }
                head.chunked = true;
            }
            4 if name.eq_ignore_ascii_case("host") => {
                hosts += 1;
                if !h.value.iter().all(|&b| valid_host_byte(b)) {
                    return Err(HeadError::Bad("invalid Host header"));
                }
            }
            _ => {}
        }
        head.header.add_raw(name, h.value);
    }
    if head.chunked {
        if minor == 0 {
            // An HTTP/1.0 message cannot be chunked (RFC 9112 §6.1): its framing is suspect.
            return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if head.content_length.is_some() {
            // A request smuggling vector (RFC 9112 §6.3): refuse instead of picking one.
            return Err(HeadError::Bad("both Transfer-Encoding and Content-Length"));
        }
    }
    if minor >= 1 && hosts == 0 {
        return Err(HeadError::Bad("missing required Host header"));
    }
    if hosts > 1 {
        return Err(HeadError::Bad("too many Host headers"));
    }
    if minor >= 1 {
        match expect {
            Some(true) => head.expect_continue = true,
            Some(false) => return Err(HeadError::Expectation),
            None => {}
        }
    }
    if minor == 0 {
        head.keep_alive_10 = conn_keep_alive && !conn_close;
        head.close = !head.keep_alive_10;
    } else {
        head.keep_alive_10 = false;
        head.close = conn_close;
    }
    Ok(())
}

/// A decimal Content-Length: digits only (no sign), no overflow.
fn parse_length(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `httpguts.ValidHostHeader`: the bytes a host (with port, IPv6 brackets, or
/// percent-escapes) may hold.
static HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'%'
                    | b'@'
            );
        i += 1;
    }
    t
};

fn valid_host_byte(b: u8) -> bool {
    HOST_BYTES[b as usize]
}

/// The request target forms of RFC 9112 §3.2: origin (`/path?q`), absolute
/// (`http://host/path`), authority (CONNECT only) and asterisk (OPTIONS only), checked as
/// Go's `url.ParseRequestURI` does: every `%` in the path and the authority starts a
/// well-formed escape (`%` and two hex digits), and the authority holds only the bytes of a
/// host. The query is not checked (Go keeps it raw too).
fn check_target(method: &str, target: &str) -> Result<(), HeadError> {
    const BAD: HeadError = HeadError::Bad("invalid request target");
    if target == "*" {
        return if method == "OPTIONS" {
            Ok(())
        } else {
            Err(BAD)
        };
    }
    let (authority, path) = if target.starts_with('/') {
        // Origin form (also a CONNECT with a path, as Go's net/rpc sends).
        ("", target)
    } else if method == "CONNECT" {
        (target, "")
    } else {
        let rest = strip_prefix_ignore_case(target, "http://")
            .or_else(|| strip_prefix_ignore_case(target, "https://"))
            .ok_or(BAD)?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if method == "CONNECT" && path.is_empty() && authority.is_empty() {
        return Err(BAD);
    }
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if !valid_escapes(path.as_bytes()) {
        return Err(HeadError::Bad("invalid URL escape in request target"));
    }
    if !authority.bytes().all(valid_host_byte) || !valid_escapes(authority.as_bytes()) {
        return Err(BAD);
    }
    Ok(())
}

/// Whether every `%` in `s` is followed by two hex digits (Go's `url.PathUnescape` fails
/// otherwise).
fn valid_escapes(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = s[i..].iter().position(|&b| b == b'%') {
        let at = i + off;
        match s.get(at + 1..at + 3) {
            Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i = at + 3,
            _ => return false,
        }
    }
    true
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    starts_with_ignore_case(s, prefix).then(|| &s[prefix.len()..])
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> Result<Option<usize>, HeadError> {
        let mut h = Head::default();
        parse(raw.as_bytes(), &mut h, 1 << 20)
    }

    #[test]
    fn complete_partial_and_errors() {
        assert_eq!(p("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(Some(27)));
        assert_eq!(p("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(p("GET / HTTP/1.0\r\n\r\n"), Ok(Some(18)));
        assert_eq!(
            p("GET / HTTP/1.1\r\n\r\n"),
            Err(HeadError::Bad("missing required Host header"))
        );
        assert_eq!(
            p("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            Err(HeadError::Version)
        );
        assert_eq!(
            p("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(HeadError::Bad("conflicting Content-Length"))
        );
        assert_eq!(
            p("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            Ok(Some(66))
        );
        assert_eq!(
            p("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
            Err(HeadError::Bad("bad Content-Length"))
        );
        assert_eq!(
            p("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HeadError::NotImplemented)
        );
        assert_eq!(
            p(
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Err(HeadError::Bad("both Transfer-Encoding and Content-Length"))
        );
        assert_eq!(
            p("GET x HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(HeadError::Bad("invalid request target"))
        );
        assert_eq!(p("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(Some(31)));
    }

    #[test]
    fn versions_as_go() {
        // Go's ParseHTTPVersion takes any HTTP/<digit>.<digit>; the server serves major 1.
        for (v, want) in [
            ("HTTP/1.0", Ok(0)),
            ("HTTP/1.1", Ok(1)),
            ("HTTP/1.2", Ok(2)),
            ("HTTP/1.9", Ok(9)),
            ("HTTP/0.9", Err(HeadError::Version)),
            ("HTTP/2.0", Err(HeadError::Version)),
            ("HTTP/3.1", Err(HeadError::Version)),
            ("HTTP/1.10", Err(HeadError::Bad("malformed HTTP version"))),
            ("HTTP/1", Err(HeadError::Bad("malformed HTTP version"))),
            ("http/1.1", Err(HeadError::Bad("malformed HTTP version"))),
            ("HTTP/1.1 x", Err(HeadError::Bad("malformed HTTP version"))),
            ("HTTP/a.1", Err(HeadError::Bad("malformed HTTP version"))),
            ("", Err(HeadError::Bad("malformed HTTP version"))),
        ] {
            let raw = format!("GET / {v}\r\nHost: a\r\n\r\n");
            let mut h = Head::default();
            let got = parse(raw.as_bytes(), &mut h, 1 << 20).map(|_| h.minor);
            assert_eq!(got, want, "{v:?}");
        }
        // The HTTP/2 preface: Go passes it to the handler, and its ServeMux answers 400 to a
        // `*` target that is not `OPTIONS`; so does this server, before the handler.
        assert_eq!(
            p("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Err(HeadError::Bad("invalid request target"))
        );
        assert_eq!(
            p("GET /%zz HTTP/2.0\r\nHost: a\r\n\r\n"),
            Err(HeadError::Bad("invalid URL escape in request target")),
            "Go checks the URL before the version's support"
        );
    }

    #[test]
    fn request_lines() {
        let bad = |l: &str| request_line(l.as_bytes()).err();
        let malformed = Some(HeadError::Bad("malformed HTTP request"));
        assert_eq!(bad("GET\r\n"), malformed);
        assert_eq!(bad("GET /\r\n"), malformed);
        assert_eq!(
            bad("GET  / HTTP/1.1\r\n"),
            Some(HeadError::Bad("malformed HTTP version"))
        );
        assert_eq!(
            bad("G(T / HTTP/1.1\r\n"),
            Some(HeadError::Bad("invalid method"))
        );
        assert_eq!(
            bad(" / HTTP/1.1\r\n"),
            Some(HeadError::Bad("invalid method"))
        );
        assert_eq!(
            bad("GET /\x01 HTTP/1.1\r\n"),
            Some(HeadError::Bad("invalid request target"))
        );
        assert_eq!(
            bad("GET /\t HTTP/1.1\r\n"),
            Some(HeadError::Bad("invalid request target"))
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\r\n"),
            Some(HeadError::Bad("malformed HTTP version"))
        );
        assert_eq!(
            request_line(b"PUT /caf\xc3\xa9?x=1 HTTP/1.1\n"),
            Ok(RequestLine {
                method: "PUT",
                target: "/caf\u{e9}?x=1",
                major: 1,
                minor: 1
            })
        );
        assert_eq!(
            request_line(b"GET /\xff HTTP/1.1\r\n").err(),
            Some(HeadError::Bad("invalid request target"))
        );
        // Empty lines before the request line are skipped (RFC 9112 §2.2), 4 bytes at most.
        assert_eq!(p("\r\n\nGET / HTTP/1.0\r\n\r\n"), Ok(Some(21)));
        assert_eq!(p("\r\n\r\nGET / HTTP/1.0\r\n\r\n"), Ok(Some(22)));
        assert_eq!(
            p("\r\n\r\n\nGET / HTTP/1.0\r\n\r\n"),
            Err(HeadError::Bad("malformed HTTP request"))
        );
    }

    #[test]
    fn percent_escapes_in_the_target() {
        let esc = Err(HeadError::Bad("invalid URL escape in request target"));
        for t in ["/%zz", "/a%4", "/a%", "/%4g/b", "http://h/%zz", "/%zz?q=1"] {
            let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(p(&raw), esc, "{t}");
        }
        for t in ["/%41%2f", "/a?q=%zz", "/a?%", "http://h/p%20q", "/a%41"] {
            let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(p(&raw), Ok(Some(raw.len())), "{t}");
        }
        for t in ["http://h%zz/", "http://h{x}/"] {
            let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert_eq!(
                p(&raw),
                Err(HeadError::Bad("invalid request target")),
                "{t}"
            );
        }
        let ok = "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(p(ok), Ok(Some(ok.len())));
    }

    #[test]
    fn a_trickled_head_is_scanned_once() {
        let mut raw = String::from("\r\nGET /a HTTP/1.1\r\nHost: a\r\n");
        for i in 0..200 {
            raw.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(i)));
        }
        raw.push_str("\r\nGET /next HTTP/1.1\r\n");
        let end = raw.find("GET /next").unwrap();
        let raw = raw.as_bytes();
        let mut scan = HeadScan::default();
        // One byte more at each call, as from the slowest client.
        let mut found = None;
        for n in 1..=raw.len() {
            if let Some(e) = scan.advance(&raw[..n]).unwrap() {
                found = Some((n, e));
                break;
            }
        }
        assert_eq!(found, Some((end, end)));
        assert_eq!(scan.scanned(), end, "each byte examined once");
        let mut h = Head::default();
        parse_head(raw, &scan, end, &mut h, 1 << 20).unwrap();
        assert_eq!((h.target(), h.header.len()), ("/a", 201));
        assert_eq!(h.header.get("x-h199").map(str::len), Some(199));
    }

    #[test]
    fn bad_lines_are_refused_before_the_head_ends() {
        let early = |raw: &str| HeadScan::default().advance(raw.as_bytes());
        assert_eq!(
            early("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n"),
            Err(HeadError::Bad("invalid header name"))
        );
        assert_eq!(
            early("GET / HTTP/1.1\r\n folded\r\n"),
            Err(HeadError::Bad("invalid header name"))
        );
        assert_eq!(
            early("GET / HTTP/1.1\r\nX: a\x01b\r\n"),
            Err(HeadError::Bad("invalid header value"))
        );
        assert_eq!(
            early("GARBAGE\r\n"),
            Err(HeadError::Bad("malformed HTTP request"))
        );
        assert_eq!(early("\rX"), Err(HeadError::Bad("malformed line ending")));
        assert_eq!(early("GET / HTTP/1.1\r\nX: a\r\n"), Ok(None));
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("x{i}:\r\n"));
        }
        assert_eq!(early(&many), Err(HeadError::TooLarge));
    }

    #[test]
    fn many_headers_parse_on_the_heap() {
        let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..100 {
            raw.push_str(&format!("X-H{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        let mut h = Head::default();
        assert_eq!(parse(raw.as_bytes(), &mut h, 1 << 20), Ok(Some(raw.len())));
        assert_eq!(h.header.len(), 101);
        assert_eq!(h.header.get("x-h99"), Some("v"));
    }

    #[test]
    fn connection_semantics() {
        let mut h = Head::default();
        parse(
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            &mut h,
            1024,
        )
        .unwrap();
        assert!(!h.close && h.keep_alive_10);
        parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            &mut h,
            1024,
        )
        .unwrap();
        assert!(h.close);
        assert_eq!(check_partial(6000, false, 1024), Err(HeadError::UriTooLong));
    }
}
