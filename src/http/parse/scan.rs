//! Finding the end of a request head as its bytes arrive, checking each line as it
//! completes.

use super::{HeadError, MAX_HEADERS, MAX_LEADING_EMPTY, request_line};
use crate::http::header::valid_name;

/// Finds where a request head ends, however it arrives: the scan resumes where the last
/// call stopped, so each byte of a head trickled in small reads is examined about once
/// (parsing it again on every read made a 1 MB head trickled in 1 KiB reads cost 500 MB of
/// parsing). Complete lines are checked as they come (the request line, each header field),
/// so a malformed head is refused at its first bad line, as Go's line reader does; the
/// fields are parsed once the head is complete ([`parse_head`](super::parse_head)).
///
/// Empty lines before the request line are skipped (RFC 9112 §2.2), up to
/// [`MAX_LEADING_EMPTY`] bytes of them.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    /// Bytes examined so far.
    pos: usize,
    /// Start of the request line, once past the empty lines before it.
    pub(super) start: Option<usize>,
    /// End of the request line (after its `\n`), once it is complete.
    pub(super) line_end: Option<usize>,
    /// Start of the header line being scanned.
    line_start: usize,
    /// Header field lines seen.
    pub(super) fields: usize,
}

impl HeadScan {
    /// Scans the bytes of `buf` that earlier calls did not see (`buf` must start with the
    /// bytes they saw). `Ok(Some(n))`: the head is the first `n` bytes; `Ok(None)`: it is
    /// incomplete (the caller checks its size with [`check_partial`](super::check_partial)).
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
