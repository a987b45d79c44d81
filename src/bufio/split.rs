//! The split functions (Go's `ScanLines`, `ScanWords`, `ScanRunes`, `ScanBytes`) and the line
//! search that the [`Scanner`](super::Scanner) and `LinesCodec` share.

use std::io;

use super::Split;

/// Position of the first `needle` in `hay`, a word at a time (the `memchr` idea without the
/// crate).
pub(crate) fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pat = LO.wrapping_mul(needle as u64);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w) ^ pat;
        if (x.wrapping_sub(LO) & !x & HI) != 0 {
            return c.iter().position(|&b| b == needle).map(|i| base + i);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

/// The line search shared by the [`Scanner`](super::Scanner) and [`LinesCodec`](crate::net::codec::LinesCodec):
/// the index of the first `\n` in `src[..limit]`, where `src[..from]` is already known to hold
/// none, so a line that arrives in pieces is searched once.
#[inline]
pub(crate) fn line_end(src: &[u8], from: usize, limit: usize) -> Option<usize> {
    let limit = limit.min(src.len());
    let from = from.min(limit);
    find_byte(b'\n', &src[from..limit]).map(|i| from + i)
}

/// `line` without one trailing `\r`.
fn drop_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Go's `ScanLines` over `data`, knowing `data[..scanned]` holds no `\n`; also returns how
/// much is now known to hold none.
pub(super) fn lines_from(data: &[u8], scanned: usize, at_eof: bool) -> (Split<'_>, usize) {
    match line_end(data, scanned, data.len()) {
        Some(i) => (
            Split::Token {
                advance: i + 1,
                token: drop_cr(&data[..i]),
            },
            0,
        ),
        None if at_eof && !data.is_empty() => (
            Split::Token {
                advance: data.len(),
                token: drop_cr(data),
            },
            0,
        ),
        None => (Split::Need, data.len()),
    }
}

/// Lines without their `\n` and a `\r` before it; the last line may lack the `\n` (Go's
/// `ScanLines`). The [`Scanner`](super::Scanner)'s default.
///
/// # Examples
/// ```
/// use goway::bufio::{scan_lines, Split};
/// assert_eq!(scan_lines(b"ab\r\ncd", false).unwrap(), Split::Token { advance: 4, token: b"ab" });
/// assert_eq!(scan_lines(b"cd", false).unwrap(), Split::Need);
/// assert_eq!(scan_lines(b"cd", true).unwrap(), Split::Token { advance: 2, token: b"cd" });
/// ```
pub fn scan_lines(data: &[u8], at_eof: bool) -> io::Result<Split<'_>> {
    Ok(lines_from(data, 0, at_eof).0)
}

/// Each byte is a token (Go's `ScanBytes`).
///
/// # Examples
/// ```
/// use goway::bufio::{scan_bytes, Split};
/// assert_eq!(scan_bytes(b"ab", false).unwrap(), Split::Token { advance: 1, token: b"a" });
/// ```
pub fn scan_bytes(data: &[u8], _at_eof: bool) -> io::Result<Split<'_>> {
    Ok(match data {
        [] => Split::Need,
        _ => Split::Token {
            advance: 1,
            token: &data[..1],
        },
    })
}

/// The UTF-8 encoding of U+FFFD, the token for a byte that starts no valid UTF-8 sequence.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// The character at the start of `b` and its length in bytes; `Err(true)` if more bytes could
/// complete it, `Err(false)` if it is not valid UTF-8 (then its first byte stands alone).
fn decode_rune(b: &[u8]) -> Result<(char, usize), bool> {
    let first = *b.first().ok_or(true)?;
    let width = match first {
        0x00..=0x7f => return Ok((char::from(first), 1)),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Err(false),
    };
    let have = b.len().min(width);
    match std::str::from_utf8(&b[..have]) {
        Ok(s) if have == width => s.chars().next().map(|c| (c, width)).ok_or(false),
        Ok(_) => Err(true),
        // An incomplete but so far valid prefix: more bytes could complete it.
        Err(e) if e.error_len().is_none() => Err(true),
        Err(_) => Err(false),
    }
}

/// Each UTF-8 encoded character is a token; a byte that starts no valid encoding gives the
/// token U+FFFD and consumes one byte (Go's `ScanRunes`).
///
/// # Examples
/// ```
/// use goway::bufio::{scan_runes, Split};
/// assert_eq!(scan_runes("é!".as_bytes(), false).unwrap(), Split::Token { advance: 2, token: "é".as_bytes() });
/// assert_eq!(scan_runes(b"\xff", false).unwrap(), Split::Token { advance: 1, token: "\u{FFFD}".as_bytes() });
/// assert_eq!(scan_runes(b"\xc3", false).unwrap(), Split::Need);
/// ```
pub fn scan_runes(data: &[u8], at_eof: bool) -> io::Result<Split<'_>> {
    Ok(match decode_rune(data) {
        _ if data.is_empty() => Split::Need,
        Ok((_, n)) => Split::Token {
            advance: n,
            token: &data[..n],
        },
        Err(true) if !at_eof => Split::Need,
        Err(_) => Split::Token {
            advance: 1,
            token: REPLACEMENT,
        },
    })
}

/// Space-separated words, with spaces as Unicode defines them (Go's `ScanWords`, whose
/// `isSpace` is the same set as [`char::is_whitespace`]); never an empty token.
///
/// # Examples
/// ```
/// use goway::bufio::{scan_words, Split};
/// assert_eq!(scan_words(b"  go way", false).unwrap(), Split::Token { advance: 5, token: b"go" });
/// assert_eq!(scan_words(b"  way", false).unwrap(), Split::Skip(2));
/// assert_eq!(scan_words(b"way", true).unwrap(), Split::Token { advance: 3, token: b"way" });
/// ```
pub fn scan_words(data: &[u8], at_eof: bool) -> io::Result<Split<'_>> {
    // Skip leading spaces.
    let mut start = 0;
    while start < data.len() {
        match decode_rune(&data[start..]) {
            Ok((c, n)) if c.is_whitespace() => start += n,
            Err(true) if !at_eof => return Ok(skip_or_need(start)),
            _ => break,
        }
    }
    // Scan until a space, which marks the end of the word.
    let mut i = start;
    while i < data.len() {
        match decode_rune(&data[i..]) {
            Ok((c, n)) if c.is_whitespace() => {
                return Ok(Split::Token {
                    advance: i + n,
                    token: &data[start..i],
                });
            }
            Ok((_, n)) => i += n,
            Err(true) if !at_eof => return Ok(skip_or_need(start)),
            Err(_) => i += 1,
        }
    }
    if at_eof && data.len() > start {
        return Ok(Split::Token {
            advance: data.len(),
            token: &data[start..],
        });
    }
    Ok(skip_or_need(start))
}

fn skip_or_need(n: usize) -> Split<'static> {
    if n == 0 { Split::Need } else { Split::Skip(n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_matches_naive_search() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        for n in 0..=255u8 {
            for start in 0..20 {
                let s = &hay[start..];
                assert_eq!(
                    find_byte(n, s),
                    s.iter().position(|&b| b == n),
                    "n={n} start={start}"
                );
            }
        }
        assert_eq!(find_byte(b'\n', b""), None);
        assert_eq!(find_byte(0x80, &[0x7f, 0x80]), Some(1));
        assert_eq!(find_byte(0, &[1, 1, 1, 1, 1, 1, 1, 1, 0]), Some(8));
    }

    #[test]
    fn line_end_searches_only_past_what_was_scanned() {
        assert_eq!(line_end(b"ab\ncd\n", 0, 6), Some(2));
        assert_eq!(line_end(b"ab\ncd\n", 3, 6), Some(5));
        assert_eq!(line_end(b"ab\ncd\n", 0, 2), None);
        assert_eq!(line_end(b"ab", 5, 9), None);
    }

    #[test]
    fn decode_rune_tells_incomplete_from_invalid() {
        assert_eq!(decode_rune("é".as_bytes()), Ok(('é', 2)));
        assert_eq!(decode_rune(b"\xe2\x82"), Err(true));
        assert_eq!(decode_rune(b"\xe2\x28\xa1"), Err(false));
        assert_eq!(decode_rune(b"\x80"), Err(false));
        assert_eq!(decode_rune(b"\xed\xa0\x80"), Err(false)); // a surrogate
        assert_eq!(decode_rune(b""), Err(true));
    }
}
