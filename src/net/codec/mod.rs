//! Framing: the [`Codec`] trait, and the built-in [`LinesCodec`], [`LengthCodec`] and
//! [`RespCodec`] (Redis's protocol, in [`resp`]).
//!
//! A codec turns the bytes of a connection into frames and frames back into bytes. The
//! server's reader goroutine hands [`Codec::decode`] everything it has buffered and takes out
//! every complete frame a read brought in; the writer goroutine [`encode`](Codec::encode)s
//! every queued reply into one buffer for one write.
//!
//! `decode` answers `Ok(None)` for "need more bytes" (mini-redis's `Incomplete`), and fails
//! with a [`DecodeError`] variant for bytes that can never become a valid frame. A frame's
//! size is checked against the maximum **before** it is buffered: as soon as a length prefix
//! or an unterminated line exceeds the maximum, `decode` fails with
//! [`DecodeError::FrameTooLarge`], so a client cannot make the server buffer more than the
//! maximum plus one read.
//!
//! ```
//! use goway::net::codec::{Codec, DecodeError, LinesCodec};
//!
//! let mut c = LinesCodec::with_max(8);
//! assert_eq!(c.decode(b"hel").unwrap(), None); // need more
//! assert_eq!(c.decode(b"hello\nwor").unwrap(), Some((b"hello".to_vec(), 6)));
//! assert_eq!(
//!     c.decode(b"much too long").unwrap_err(),
//!     DecodeError::FrameTooLarge { len: 13, max: 8 }
//! );
//! let mut out = Vec::new();
//! c.encode(b"hi".to_vec(), &mut out).unwrap();
//! assert_eq!(out, b"hi\n");
//! ```

mod length;
mod lines;
pub mod resp;

use std::borrow::Cow;

pub use length::LengthCodec;
pub use lines::LinesCodec;
pub use resp::{RespCodec, RespPipelineCodec};

/// Default maximum frame size of the built-in codecs and of the server: 1 MiB (Go's
/// `DefaultMaxHeaderBytes`, Redis's inline-request limit is 64 KiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Turns a byte stream into frames and frames into bytes.
///
/// A server clones its codec twice per connection: one copy decodes in the reader goroutine,
/// one encodes in the writer goroutine, so `&mut self` state needs no lock.
///
/// # Examples
/// A codec of fixed 2-byte big-endian numbers:
/// ```
/// use goway::net::codec::{Codec, DecodeError, EncodeError};
///
/// #[derive(Clone, Debug)]
/// struct U16s;
///
/// impl Codec for U16s {
///     type In = u16;
///     type Out = u16;
///     fn decode(&mut self, src: &[u8]) -> Result<Option<(u16, usize)>, DecodeError> {
///         Ok(match src {
///             [a, b, ..] => Some((u16::from_be_bytes([*a, *b]), 2)),
///             _ => None,
///         })
///     }
///     fn encode(&mut self, v: u16, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
///         dst.extend_from_slice(&v.to_be_bytes());
///         Ok(())
///     }
///     fn encoded_len(_: &u16) -> usize {
///         2
///     }
/// }
///
/// let mut c = U16s;
/// assert_eq!(c.decode(&[1]).unwrap(), None);
/// assert_eq!(c.decode(&[1, 2, 3]).unwrap(), Some((0x0102, 2)));
/// ```
pub trait Codec: Clone + Send + 'static {
    /// A decoded (incoming) frame.
    type In: Send + 'static;
    /// A frame to encode (outgoing).
    type Out: Send + 'static;

    /// Decodes the first frame of `src`, which starts at a frame boundary. Returns the frame
    /// and the number of bytes it used, or `Ok(None)` if `src` holds only part of a frame.
    /// The caller keeps the unused bytes and calls again with them and more data appended.
    ///
    /// # Errors
    /// A [`DecodeError`] when the bytes can never form a valid frame; the connection is then
    /// closed (after [`error_reply`](Self::error_reply), if any).
    fn decode(&mut self, src: &[u8]) -> Result<Option<(Self::In, usize)>, DecodeError>;

    /// Appends the encoding of `frame` to `dst`.
    ///
    /// # Errors
    /// An [`EncodeError`] when the frame cannot be encoded (for example it is over the
    /// maximum size); the server logs it and closes the connection.
    fn encode(&mut self, frame: Self::Out, dst: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// How many bytes `frame` takes once encoded: exact, or an estimate that errs on the
    /// high side (the frame's memory, if larger, is the better answer). The server's write
    /// queue counts it against
    /// [`Config::write_queue_bytes`](crate::net::server::Config::write_queue_bytes) and
    /// the output limits, so that the replies a slow client has not read hold a bounded
    /// amount of memory: a size below the truth lets a client hold more than the bound.
    /// Required, so that no codec is left out of the bound unnoticed; the built-in codecs
    /// return their exact encoded size. Called once when a frame is queued and once when it
    /// is written, only if a byte bound is set: keep it cheap.
    fn encoded_len(frame: &Self::Out) -> usize
    where
        Self: Sized;

    /// Sets the largest frame this codec accepts. The server calls it with its `max_frame`
    /// setting before serving. The default ignores it: the server's reader still refuses to
    /// buffer more than `max_frame` bytes plus 64 KiB of one undecoded frame.
    fn set_max_frame(&mut self, max: usize) {
        let _ = max;
    }

    /// Bytes to send to the client before closing its connection after `err`, such as
    /// RESP's `-ERR Protocol error`. Default: none (the connection is just closed).
    fn error_reply(&mut self, err: &DecodeError) -> Option<Vec<u8>> {
        let _ = err;
        None
    }

    /// Bytes to send to a client whose handler panicked before any reply was queued, before
    /// its connection is closed (an HTTP server's 500, RESP's `-ERR`). Default: none (the
    /// connection is just closed). After a reply was queued nothing is added: the client
    /// would read it as the answer to a later request.
    fn panic_reply(&mut self) -> Option<Vec<u8>> {
        None
    }
}

/// Why bytes could not be decoded. The connection that sent them is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is (or declares itself) `len` bytes long, more than the `max` allowed. For a
    /// line, `len` is how much was buffered without finding its end.
    #[error("frame too large: {len} bytes, max {max}")]
    FrameTooLarge {
        /// The frame's size, or the bytes seen so far.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The bytes violate the protocol.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What was wrong, for the log and the error reply.
        reason: Cow<'static, str>,
    },
    /// The bytes are not RESP (the [`resp`] codecs); the error's text is Redis's.
    #[error(transparent)]
    Resp(resp::RespError),
}

/// Why a frame could not be encoded. The server logs it and closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame is `len` bytes long, more than the `max` allowed.
    #[error("frame too large to encode: {len} bytes, max {max}")]
    FrameTooLarge {
        /// The frame's size.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The frame cannot be represented in this protocol.
    #[error("cannot encode frame: {reason}")]
    Invalid {
        /// What was wrong.
        reason: Cow<'static, str>,
    },
}

pub(crate) use crate::bufio::find_byte;
