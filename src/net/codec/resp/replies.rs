//! [`Replies`]: replies encoded as they are added, what the pipelining codec sends.

use std::fmt;

use super::Reply;
use super::wire::{put_int, put_line};

/// Replies encoded as they are added, in order: what
/// [`RespPipelineCodec`](super::RespPipelineCodec) sends. Besides [`push`](Self::push)ing a
/// [`Reply`], the shortcuts write a reply from borrowed data without building one
/// (`bulk(&value)` copies the value once, into the output).
///
/// ```
/// use goway::net::codec::resp::{Replies, Reply};
/// let mut r = Replies::new();
/// r.simple("OK");
/// r.integer(-2);
/// r.array(2);
/// r.bulk(b"a");
/// r.null();
/// r.error("ERR no");
/// r.push(&Reply::NullArray);
/// assert_eq!(r.as_bytes(), b"+OK\r\n:-2\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR no\r\n*-1\r\n");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Replies {
    pub(super) buf: Vec<u8>,
}

impl Replies {
    /// No replies yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No replies yet, with room for `bytes` of them.
    pub fn with_capacity(bytes: usize) -> Self {
        Replies {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Appends `r`.
    pub fn push(&mut self, r: &Reply) {
        r.encode(&mut self.buf);
    }

    /// Appends a simple string (`+OK`); CR and LF become spaces.
    pub fn simple(&mut self, s: &str) {
        put_line(&mut self.buf, b'+', s.as_bytes());
    }

    /// Appends an error (`-ERR why`); CR and LF become spaces.
    pub fn error(&mut self, s: &str) {
        put_line(&mut self.buf, b'-', s.as_bytes());
    }

    /// Appends an integer.
    pub fn integer(&mut self, v: i64) {
        put_int(&mut self.buf, b':', v);
    }

    /// Appends a bulk string copied from `b`.
    pub fn bulk(&mut self, b: &[u8]) {
        self.buf.reserve(b.len() + 16);
        put_int(&mut self.buf, b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends the null bulk string (`$-1`).
    pub fn null(&mut self) {
        self.buf.extend_from_slice(b"$-1\r\n");
    }

    /// Appends the header of an array of `n` elements; append the `n` elements next.
    pub fn array(&mut self, n: usize) {
        put_int(&mut self.buf, b'*', n as i64);
    }

    /// `true` if nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes appended so far: the size of the encoded replies (what
    /// [`RespPipelineCodec`](super::RespPipelineCodec) counts against the server's write-queue
    /// bound).
    ///
    /// ```
    /// use goway::net::codec::resp::Replies;
    /// let mut r = Replies::new();
    /// r.bulk(b"abc");
    /// assert_eq!(r.len(), b"$3\r\nabc\r\n".len());
    /// ```
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Replies")
            .field(&String::from_utf8_lossy(&self.buf))
            .finish()
    }
}
