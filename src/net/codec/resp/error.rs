//! [`RespError`]: what is wrong with bytes that are not RESP, as Redis words it.

use std::fmt;

use crate::net::codec::DecodeError;

/// Why bytes are not a RESP2 request (or, for a client, a reply). Its `Display` is the text
/// of the error Redis replies with (`ERR Protocol error: invalid multibulk length`), so
/// [`error_reply`](super::error_reply) sends `-` and the text; tests and callers match the
/// variant instead of the words. The codecs return it as [`DecodeError::Resp`].
///
/// ```
/// use goway::net::codec::{Codec, DecodeError, RespCodec, resp::RespError};
///
/// let mut c = RespCodec::new();
/// let err = c.decode(b"*x\r\n").unwrap_err();
/// assert_eq!(err, DecodeError::Resp(RespError::InvalidMultibulkLength));
/// assert_eq!(err.to_string(), "ERR Protocol error: invalid multibulk length");
/// assert_eq!(c.error_reply(&err).unwrap(), b"-ERR Protocol error: invalid multibulk length\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RespError {
    /// A request's `*<count>` is not a number, or is over [`MAX_MULTIBULK`](super::MAX_MULTIBULK);
    /// for a reply, an array's count is not `-1` to `MAX_MULTIBULK`.
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$<length>` is not a number, is negative (`$-1` in a request), or is over the bulk
    /// maximum.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A request's argument does not start with `$` (an array in a request is `got '*'`).
    #[error("ERR Protocol error: expected '$', got '{}'", Shown(*got))]
    ExpectedDollar {
        /// The byte found instead (shown as Redis shows it: CR and LF as a space).
        got: u8,
    },
    /// An inline request line longer than [`MAX_INLINE`](super::MAX_INLINE) or than the frame
    /// maximum.
    #[error("ERR Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// A `*<count>` line longer than [`MAX_INLINE`](super::MAX_INLINE).
    #[error("ERR Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$<length>` line longer than [`MAX_INLINE`](super::MAX_INLINE).
    #[error("ERR Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline request with an unclosed quote, or a closing quote not followed by a space.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A reply's header line longer than [`MAX_INLINE`](super::MAX_INLINE) (client side).
    #[error("ERR Protocol error: too big reply header")]
    TooBigReplyHeader,
    /// A reply starting with a byte other than `+ - : $ *` (client side).
    #[error("ERR Protocol error: unknown reply type")]
    UnknownReplyType,
    /// A reply's header line ends in `\r` without `\n` (client side).
    #[error("ERR Protocol error: expected CRLF after a reply header")]
    ExpectedCrlfAfterHeader,
    /// A bulk string's data is not followed by `\r\n` (client side).
    #[error("ERR Protocol error: expected CRLF after bulk data")]
    ExpectedCrlfAfterBulk,
    /// An integer reply that is not a number (client side).
    #[error("ERR Protocol error: invalid integer")]
    InvalidInteger,
    /// A reply's arrays nest deeper than [`MAX_DEPTH`](super::MAX_DEPTH) (client side).
    #[error("ERR Protocol error: reply nested too deep")]
    NestedTooDeep,
}

/// A byte as Redis's `expected '$', got '%c'` shows it: CR and LF as a space (so the reply
/// stays one line), other printable ASCII as itself, anything else as `\xHH`.
struct Shown(u8);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\r' | b'\n' => f.write_str(" "),
            b @ 0x20..=0x7e => write!(f, "{}", b as char),
            b => write!(f, "\\x{b:02x}"),
        }
    }
}

impl From<RespError> for DecodeError {
    fn from(e: RespError) -> Self {
        DecodeError::Resp(e)
    }
}
