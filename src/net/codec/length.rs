//! Length-prefixed frames.

use super::{Codec, DEFAULT_MAX_FRAME, DecodeError, EncodeError};

/// Length of the prefix: a big-endian `u32` (tokio's `LengthDelimitedCodec` default).
const HEADER: usize = 4;

/// Frames are a 4-byte big-endian length followed by that many bytes.
///
/// The declared length is checked against the maximum (default [`DEFAULT_MAX_FRAME`]) as soon
/// as the 4 header bytes are in, before any of the body is buffered. A frame may be empty.
///
/// # Examples
/// ```
/// use goway::net::codec::{Codec, DecodeError, LengthCodec};
/// let mut c = LengthCodec::with_max(16);
/// let mut buf = Vec::new();
/// c.encode(b"hello".to_vec(), &mut buf).unwrap();
/// assert_eq!(buf, b"\0\0\0\x05hello");
/// assert_eq!(c.decode(&buf[..6]).unwrap(), None);
/// assert_eq!(c.decode(&buf).unwrap(), Some((b"hello".to_vec(), 9)));
/// assert_eq!(
///     c.decode(&[0, 0, 1, 0]).unwrap_err(),
///     DecodeError::FrameTooLarge { len: 256, max: 16 }
/// );
/// ```
#[derive(Debug, Clone)]
pub struct LengthCodec {
    max: usize,
}

impl Default for LengthCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl LengthCodec {
    /// Frames of at most [`DEFAULT_MAX_FRAME`] bytes.
    pub fn new() -> Self {
        Self::with_max(DEFAULT_MAX_FRAME)
    }

    /// Frames of at most `max` bytes (not counting the 4-byte header; capped at `u32::MAX`).
    pub fn with_max(max: usize) -> Self {
        LengthCodec {
            max: max.min(u32::MAX as usize),
        }
    }

    /// The maximum frame length.
    pub fn max_frame(&self) -> usize {
        self.max
    }
}

impl Codec for LengthCodec {
    type In = Vec<u8>;
    type Out = Vec<u8>;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
        let Some(head) = src.first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*head) as usize;
        if len > self.max {
            return Err(DecodeError::FrameTooLarge { len, max: self.max });
        }
        let end = HEADER + len;
        if src.len() < end {
            return Ok(None);
        }
        Ok(Some((src[HEADER..end].to_vec(), end)))
    }

    fn encoded_len(frame: &Vec<u8>) -> usize {
        HEADER + frame.len()
    }

    fn encode(&mut self, frame: Vec<u8>, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        if frame.len() > self.max {
            return Err(EncodeError::FrameTooLarge {
                len: frame.len(),
                max: self.max,
            });
        }
        dst.reserve(HEADER + frame.len());
        // `max` is capped at u32::MAX, so the cast is exact.
        dst.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        dst.extend_from_slice(&frame);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max = max.min(u32::MAX as usize);
    }
}
