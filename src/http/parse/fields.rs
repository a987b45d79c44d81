//! The header fields' meaning for the server: framing (`Content-Length`,
//! `Transfer-Encoding`), `Host`, `Connection` and `Expect`, refused as Go refuses them.

use super::request_line::valid_host_byte;
use super::{Head, HeadError, RequestLine};

/// Fills `head` from a checked request line and its parsed header fields, refusing what Go
/// refuses (an unsupported version, conflicting framing, a bad or missing `Host`, an
/// unknown expectation).
pub(super) fn fill(
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
