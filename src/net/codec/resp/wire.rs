//! RESP's building blocks: integer and text lines out, integers and header lines in.

use super::{MAX_INLINE, RespError};
use crate::net::codec::{DecodeError, find_byte};

/// `<prefix><text>\r\n`, with CR and LF in `text` replaced by spaces.
pub(super) fn put_line(dst: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    dst.reserve(text.len() + 3);
    dst.push(prefix);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        dst.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        dst.extend_from_slice(text);
    }
    dst.extend_from_slice(b"\r\n");
}

/// The length of `put_int`'s output: prefix, sign, digits, CRLF.
pub(super) fn int_len(v: i64) -> usize {
    let digits = v
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1);
    1 + usize::from(v < 0) + digits + 2
}

/// `<prefix><decimal v>\r\n` without allocating.
pub(super) fn put_int(dst: &mut Vec<u8>, prefix: u8, v: i64) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    i -= 2;
    buf[i] = b'\r';
    buf[i + 1] = b'\n';
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    i -= 1;
    buf[i] = prefix;
    dst.extend_from_slice(&buf[i..]);
}

/// Redis's `string2ll`: an optional `-`, then digits without leading zeros (`0` alone is
/// fine), no `+`, no spaces, no overflow.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MIN.unsigned_abs() {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Finds the `\r` ending the header line that starts at `at`, once the byte after it is
/// buffered too. `Ok(None)`: wait for more. Fails when the line is longer than
/// [`MAX_INLINE`], whether or not its end is already buffered (so split and whole feeds agree).
pub(super) fn header_end(
    src: &[u8],
    at: usize,
    too_big: RespError,
) -> Result<Option<usize>, DecodeError> {
    let rest = &src[at.min(src.len())..];
    let window = &rest[..rest.len().min(MAX_INLINE + 1)];
    match find_byte(b'\r', window) {
        Some(i) if i + 1 < rest.len() => Ok(Some(at + i)),
        Some(_) => Ok(None),
        None if rest.len() > MAX_INLINE => Err(too_big.into()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_is_redis_string2ll() {
        for (s, v) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("42", Some(42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("18446744073709551615", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            ("", None),
            ("-", None),
            (" 1", None),
            ("1 ", None),
            ("blabla", None),
        ] {
            assert_eq!(parse_int(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn put_int_matches_to_string() {
        for v in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_int(&mut out, b':', v);
            assert_eq!(out, format!(":{v}\r\n").as_bytes());
        }
    }
}
