//! [`RespClientCodec`], the client's side: requests out, replies in.

use super::{DEFAULT_MAX_BULK, Reply, Request};
use crate::net::codec::{Codec, DecodeError, EncodeError};

/// The client side of RESP2: encodes [`Request`]s, decodes [`Reply`]s (iteratively, arrays at
/// most [`MAX_DEPTH`](super::MAX_DEPTH) deep). For proxies, tests and tools talking to a Redis
/// server.
///
/// ```
/// use goway::net::codec::{Codec, resp::{Reply, Request, RespClientCodec}};
/// let mut c = RespClientCodec::new();
/// let mut out = Vec::new();
/// c.encode(Request::from_args(["PING"]), &mut out).unwrap();
/// assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
/// assert_eq!(c.decode(b"+PONG\r\n").unwrap(), Some((Reply::simple("PONG"), 7)));
/// ```
#[derive(Debug, Clone)]
pub struct RespClientCodec {
    max_bulk: usize,
}

impl Default for RespClientCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RespClientCodec {
    /// Bulk strings of at most [`DEFAULT_MAX_BULK`] bytes.
    pub fn new() -> Self {
        RespClientCodec {
            max_bulk: DEFAULT_MAX_BULK,
        }
    }
}

impl Codec for RespClientCodec {
    type In = Reply;
    type Out = Request;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Reply, usize)>, DecodeError> {
        Reply::decode(src, self.max_bulk)
    }

    fn encoded_len(frame: &Request) -> usize {
        frame.encoded_len()
    }

    fn encode(&mut self, frame: Request, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame.encode(dst);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max_bulk = max;
    }
}
