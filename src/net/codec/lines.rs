//! Newline-delimited frames.

use super::{Codec, DEFAULT_MAX_FRAME, DecodeError, EncodeError};
use crate::bufio::line_end;

/// Frames are lines ending in `\n` (Go's `bufio.Reader.ReadBytes('\n')`).
///
/// A decoded frame is the line without its `\n` (a `\r` before it is kept, so an echo
/// returns the exact bytes); encoding appends `\n`. A frame to encode must not contain `\n`.
/// A line longer than the maximum (default [`DEFAULT_MAX_FRAME`], not counting the `\n`)
/// fails with [`DecodeError::FrameTooLarge`] as soon as more than the maximum is buffered
/// without a newline. An unterminated line at end of stream is not a frame. (Go's
/// `bufio.Scanner` rules, `\r` dropped and a last line without newline kept, are
/// [`bufio::Scanner`](crate::bufio::Scanner)'s, which shares this codec's line search.)
///
/// # Examples
/// ```
/// use goway::net::codec::{Codec, LinesCodec};
/// let mut c = LinesCodec::new();
/// assert_eq!(c.decode(b"a\r\nb\n").unwrap(), Some((b"a\r".to_vec(), 3)));
/// assert_eq!(c.decode(b"b\n").unwrap(), Some((b"b".to_vec(), 2)));
/// ```
#[derive(Debug, Clone)]
pub struct LinesCodec {
    max: usize,
    /// Bytes at the start of the pending input already known to hold no `\n`, so a long
    /// line arriving in pieces is scanned once (tokio's `next_index`).
    scanned: usize,
}

impl Default for LinesCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl LinesCodec {
    /// Lines of at most [`DEFAULT_MAX_FRAME`] bytes.
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_FRAME)
    }

    /// Lines of at most `max` bytes (without the `\n`).
    pub fn with_max(max: usize) -> Self {
        LinesCodec { max, scanned: 0 }
    }

    /// The maximum line length.
    pub fn max_frame(&self) -> usize {
        self.max
    }
}

impl Codec for LinesCodec {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
        // A line of `max` bytes plus its newline fits in `max + 1` bytes: look no further.
        match line_end(src, self.scanned, self.max.saturating_add(1)) {
            Some(end) => {
                self.scanned = 0;
                Ok(Some((src[..end].to_vec(), end + 1)))
            }
            None if src.len() > self.max => {
                self.scanned = 0;
                Err(DecodeError::FrameTooLarge {
                    len: src.len(),
                    max: self.max,
                })
            }
            None => {
                self.scanned = src.len();
                Ok(None)
            }
        }
    }

    fn encoded_len(frame: &Vec<u8>) -> usize {
        frame.len() + 1
    }

    fn encode(&mut self, frame: Vec<u8>, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        if frame.len() > self.max {
            return Err(EncodeError::FrameTooLarge {
                len: frame.len(),
                max: self.max,
            });
        }
        dst.reserve(frame.len() + 1);
        dst.extend_from_slice(&frame);
        dst.push(b'\n');
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max = max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_a_growing_line_once_and_resets() {
        let mut c = LinesCodec::with_max(100);
        assert_eq!(c.decode(b"abc").unwrap(), None);
        assert_eq!(c.scanned, 3);
        assert_eq!(c.decode(b"abcdef").unwrap(), None);
        assert_eq!(
            c.decode(b"abcdef\nx").unwrap(),
            Some((b"abcdef".to_vec(), 7))
        );
        assert_eq!(c.scanned, 0);
    }

    #[test]
    fn exactly_max_is_fine_one_more_is_not() {
        let mut c = LinesCodec::with_max(4);
        assert_eq!(c.decode(b"abcd").unwrap(), None);
        assert_eq!(c.decode(b"abcd\n").unwrap(), Some((b"abcd".to_vec(), 5)));
        assert_eq!(
            c.decode(b"abcde").unwrap_err(),
            DecodeError::FrameTooLarge { len: 5, max: 4 }
        );
        assert_eq!(
            c.decode(b"abcde\n").unwrap_err(),
            DecodeError::FrameTooLarge { len: 6, max: 4 }
        );
    }
}
