//! The request line: method, target and version, checked as Go's `readRequest` and
//! `url.ParseRequestURI` do.

use super::HeadError;
use crate::http::header::valid_name;

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
/// is visible ASCII (or UTF-8) without spaces, in one of the forms [`check_target`] takes.
/// Anything else is `400`. Which versions are served is decided later
/// ([`HeadError::Version`] for a major other than 1).
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

pub(super) fn valid_host_byte(b: u8) -> bool {
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
