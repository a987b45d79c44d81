//! [`RespCodec`], the server's side: requests in, replies out, Redis's protocol errors.

use super::request::INLINE_ENDS;
use super::wire::{header_end, parse_int, put_line};
use super::{DEFAULT_MAX_BULK, MAX_INLINE, MAX_MULTIBULK, Reply, Request, RespError, split_inline};
use crate::net::codec::{Codec, DEFAULT_MAX_FRAME, DecodeError, EncodeError, find_byte};

/// The server side of RESP2: decodes [`Request`]s (multibulk and inline), encodes
/// [`Reply`]s. See the [module documentation](super) for the exact rules and error texts.
///
/// A multibulk request arriving in pieces is parsed once: the codec remembers the arguments
/// complete so far and resumes after them (the server hands it the same pending bytes with
/// more appended, as [`Codec::decode`] promises).
#[derive(Debug, Clone)]
pub struct RespCodec {
    pub(super) max_bulk: usize,
    pub(super) max_frame: usize,
    pub(super) partial: Partial,
}

/// A multibulk request parsed up to an argument boundary.
#[derive(Debug, Clone, Default)]
pub(super) struct Partial {
    pub(super) active: bool,
    /// Bytes of the request parsed (where the next argument's header starts).
    pub(super) pos: usize,
    /// Arguments still to read.
    pub(super) left: usize,
    /// `src.len()` at the last call, to notice a caller that did not append.
    pub(super) seen: usize,
    pub(super) req: Request,
}

impl Default for RespCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RespCodec {
    /// Requests of at most [`DEFAULT_MAX_FRAME`] bytes (until the server sets its
    /// `max_frame`), bulk strings of at most [`DEFAULT_MAX_BULK`] bytes.
    pub fn new() -> Self {
        RespCodec {
            max_bulk: DEFAULT_MAX_BULK,
            max_frame: DEFAULT_MAX_FRAME,
            partial: Partial::default(),
        }
    }

    /// Bulk strings of at most `max` bytes (Redis's `proto-max-bulk-len`); the frame maximum
    /// still applies on top.
    pub fn with_max_bulk(mut self, max: usize) -> Self {
        self.max_bulk = max;
        self
    }

    /// Requests of at most `max` bytes in all (the server sets this from its `max_frame`).
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// The largest bulk string accepted: the bulk and frame maximums' smaller.
    pub fn max_bulk(&self) -> usize {
        self.max_bulk.min(self.max_frame)
    }

    /// A multibulk request of 1 to [`INLINE_ENDS`] arguments, complete and valid at the start
    /// of `src`: its argument spans (start, end) and its length. `None` for anything else,
    /// which the general path then handles (including every error).
    pub(super) fn scan_short(
        &self,
        src: &[u8],
        spans: &mut [(usize, usize); INLINE_ENDS],
    ) -> Option<(usize, usize)> {
        if src.first() != Some(&b'*') {
            return None;
        }
        let cr = header_end(src, 0, RespError::TooBigMultibulkCount).ok()??;
        let n = parse_int(&src[1..cr])?;
        if n < 1 || n > INLINE_ENDS as i64 {
            return None;
        }
        let n = n as usize;
        let (max_bulk, max_frame) = (self.max_bulk.min(self.max_frame), self.max_frame);
        let mut at = cr + 2;
        for span in &mut spans[..n] {
            let (data, len) = bulk_at(src, at, max_bulk, max_frame).ok()??;
            *span = (data, data + len);
            at = data + len + 2;
        }
        Some((n, at))
    }

    fn inline(&mut self, src: &[u8]) -> Result<Option<(Request, usize)>, DecodeError> {
        // An inline request is a frame too: `max_frame` bounds it when below MAX_INLINE.
        let max = MAX_INLINE.min(self.max_frame);
        let window = &src[..src.len().min(max + 1)];
        match find_byte(b'\n', window) {
            None if src.len() > max => Err(RespError::TooBigInlineRequest.into()),
            None => Ok(None),
            Some(i) if i > max => Err(RespError::TooBigInlineRequest.into()),
            Some(i) => {
                let mut line = &src[..i];
                if let [head @ .., b'\r'] = line {
                    line = head;
                }
                match split_inline(line) {
                    Some(req) => Ok(Some((req, i + 1))),
                    None => Err(RespError::UnbalancedQuotes.into()),
                }
            }
        }
    }
}

impl Codec for RespCodec {
    type In = Request;
    type Out = Reply;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Request, usize)>, DecodeError> {
        if self.partial.active && src.len() < self.partial.seen {
            // Not the same pending bytes with more appended: start over.
            self.partial = Partial::default();
        }
        if !self.partial.active {
            let Some(&first) = src.first() else {
                return Ok(None);
            };
            if first != b'*' {
                return self.inline(src);
            }
            let Some(cr) = header_end(src, 0, RespError::TooBigMultibulkCount)? else {
                return Ok(None);
            };
            let n = match parse_int(&src[1..cr]) {
                Some(n) if n <= MAX_MULTIBULK as i64 => n,
                _ => return Err(RespError::InvalidMultibulkLength.into()),
            };
            if n <= 0 {
                return Ok(Some((Request::new(), cr + 2)));
            }
            let n = n as usize;
            if n <= INLINE_ENDS {
                // The common case, a short request already complete: find its arguments
                // first, then copy them into a buffer of the exact size. Anything else
                // (incomplete, or an error) is left to the general path below.
                let mut spans = [(0usize, 0usize); INLINE_ENDS];
                if let Some((n, used)) = self.scan_short(src, &mut spans) {
                    let bytes = spans[..n].iter().map(|s| s.1 - s.0).sum();
                    let mut req = Request::with_capacity(n, bytes);
                    for &(start, end) in &spans[..n] {
                        req.push(&src[start..end]);
                    }
                    return Ok(Some((req, used)));
                }
            }
            self.partial = Partial {
                active: true,
                pos: cr + 2,
                left: n,
                seen: 0,
                req: Request::with_capacity(n.min(1024), 0),
            };
        }
        let (max_bulk, max_frame) = (self.max_bulk.min(self.max_frame), self.max_frame);
        let p = &mut self.partial;
        p.seen = src.len();
        while p.left > 0 {
            match bulk_at(src, p.pos, max_bulk, max_frame) {
                Ok(Some((data, len))) => {
                    p.req.push(&src[data..data + len]);
                    p.pos = data + len + 2;
                    p.left -= 1;
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    *p = Partial::default();
                    return Err(e);
                }
            }
        }
        let used = p.pos;
        let req = std::mem::take(&mut p.req);
        *p = Partial::default();
        Ok(Some((req, used)))
    }

    fn encoded_len(frame: &Reply) -> usize {
        frame.encoded_len()
    }

    fn encode(&mut self, frame: Reply, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame.encode(dst);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    fn error_reply(&mut self, err: &DecodeError) -> Option<Vec<u8>> {
        Some(error_reply(err))
    }
}

/// The bulk string whose header starts at `at`: `Ok(Some((data start, length)))` once all
/// of it and the two bytes after it are buffered, `Ok(None)` before. Sizes are checked as soon
/// as the header is in.
fn bulk_at(
    src: &[u8],
    at: usize,
    max_bulk: usize,
    max_frame: usize,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let Some(cr) = header_end(src, at, RespError::TooBigBulkCount)? else {
        return if at > max_frame {
            Err(DecodeError::FrameTooLarge {
                len: at,
                max: max_frame,
            })
        } else {
            Ok(None)
        };
    };
    if src[at] != b'$' {
        return Err(RespError::ExpectedDollar { got: src[at] }.into());
    }
    let len = match parse_int(&src[at + 1..cr]) {
        Some(n) if n >= 0 && n as u64 <= max_bulk as u64 => n as usize,
        _ => return Err(RespError::InvalidBulkLength.into()),
    };
    let data = cr + 2;
    let end = data + len + 2;
    if end > max_frame {
        return Err(DecodeError::FrameTooLarge {
            len: end,
            max: max_frame,
        });
    }
    Ok(if src.len() < end {
        None
    } else {
        Some((data, len))
    })
}

/// Redis's reply to a protocol error: `-` and the error's text, `-ERR Protocol error: <why>\r\n`
/// ([`RespError`]'s texts; a request over the frame maximum gets goway's own, `request of <n>
/// bytes is over the limit of <max>`).
pub fn error_reply(err: &DecodeError) -> Vec<u8> {
    let text = match err {
        DecodeError::Resp(e) => e.to_string(),
        DecodeError::FrameTooLarge { len, max } => {
            format!("ERR Protocol error: request of {len} bytes is over the limit of {max}")
        }
        DecodeError::Malformed { reason } => format!("ERR Protocol error: {reason}"),
    };
    let mut out = Vec::with_capacity(text.len() + 3);
    put_line(&mut out, b'-', text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_a_request_arriving_in_pieces() {
        let mut c = RespCodec::new();
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
        assert_eq!(c.decode(&wire[..14]).unwrap(), None);
        assert!(c.partial.active);
        assert_eq!(c.partial.req.len(), 1);
        assert_eq!(c.decode(&wire[..20]).unwrap(), None);
        assert_eq!(c.partial.req.len(), 2);
        let (r, used) = c.decode(wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(r, Request::from_args(["SET", "k", "value"]));
        assert!(!c.partial.active);
        // A shorter buffer than last time is a new start.
        assert_eq!(c.decode(&wire[..20]).unwrap(), None);
        let (r, _) = c.decode(b"*1\r\n$1\r\nP\r\n").unwrap().unwrap();
        assert_eq!(r, Request::from_args(["P"]));
    }
}
