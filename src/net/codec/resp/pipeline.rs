//! [`RespPipelineCodec`]: every request of a read as one batch, one buffer of replies out.

use super::request::INLINE_ENDS;
use super::{Batch, Replies, RespCodec, error_reply};
use crate::net::codec::{Codec, DecodeError, EncodeError};

/// Most requests [`RespPipelineCodec`] puts in one batch.
pub const MAX_BATCH: usize = 1024;

/// [`RespCodec`] for pipelining clients: one frame is *every* complete request buffered (up to
/// [`MAX_BATCH`]) as one [`Batch`], and the handler answers a batch with one [`Replies`], in
/// order.
///
/// A client pipelining 16 commands then costs one trip through the server's channels instead
/// of 16, which is most of a small command's cost; and [`Replies`] encodes each reply as it is
/// added, straight from borrowed bytes, so a reply needs no allocation of its own. The decoding rules, limits and error
/// replies are [`RespCodec`]'s; empty requests are left out of the batch (a batch can be
/// empty: answer it with nothing). Requests complete before a protocol error are still
/// delivered and answered, as Redis answers them before it meets the error.
///
/// ```
/// use goway::net::codec::{Codec, resp::{Replies, Reply, Request, RespPipelineCodec}};
/// let mut c = RespPipelineCodec::new();
/// let (batch, used) = c.decode(b"PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3").unwrap().unwrap();
/// assert_eq!(batch.to_requests(), vec![Request::from_args(["PING"]); 2]);
/// assert_eq!(used, 20);
/// let mut replies = Replies::new();
/// replies.push(&Reply::simple("PONG"));
/// replies.bulk(b"pong");
/// let mut out = Vec::new();
/// c.encode(replies, &mut out).unwrap();
/// assert_eq!(out, b"+PONG\r\n$4\r\npong\r\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RespPipelineCodec {
    inner: RespCodec,
}

impl RespPipelineCodec {
    /// See [`RespCodec::new`].
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`RespCodec::with_max_bulk`].
    pub fn with_max_bulk(self, max: usize) -> Self {
        RespPipelineCodec {
            inner: self.inner.with_max_bulk(max),
        }
    }

    /// See [`RespCodec::with_max_frame`].
    pub fn with_max_frame(self, max: usize) -> Self {
        RespPipelineCodec {
            inner: self.inner.with_max_frame(max),
        }
    }
}

impl Codec for RespPipelineCodec {
    type In = Batch;
    type Out = Replies;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Batch, usize)>, DecodeError> {
        let mut batch = Batch::default();
        // Arguments of requests not copied verbatim from `src` (inline ones, and ones that
        // arrived in pieces): appended after the copy of `src[..used]`.
        let mut extra: Vec<u8> = Vec::new();
        let mut extra_spans: Vec<usize> = Vec::new();
        let mut used = 0;
        let mut frames = 0;
        let mut spans = [(0usize, 0usize); INLINE_ENDS];
        while frames < MAX_BATCH {
            // The inner codec's resume state always refers to the slice starting at `used`:
            // the first request not yet returned.
            if !self.inner.partial.active {
                if let Some((n, len)) = self.inner.scan_short(&src[used..], &mut spans) {
                    if batch.spans.capacity() == 0 {
                        batch.spans.reserve(64);
                        batch.reqs.reserve(16);
                    }
                    batch.reqs.push((batch.spans.len(), n));
                    batch
                        .spans
                        .extend(spans[..n].iter().map(|&(a, b)| (used + a, used + b)));
                    used += len;
                    frames += 1;
                    continue;
                }
            }
            match self.inner.decode(&src[used..]) {
                Ok(Some((req, n))) => {
                    used += n;
                    frames += 1;
                    if !req.is_empty() {
                        batch.reqs.push((batch.spans.len(), req.len()));
                        for a in &req {
                            extra_spans.push(batch.spans.len());
                            let start = extra.len();
                            extra.extend_from_slice(a);
                            batch.spans.push((start, extra.len()));
                        }
                    }
                }
                Ok(None) => break,
                // Deliver what came before the error first; the next call meets it again.
                Err(_) if used > 0 => break,
                Err(e) => return Err(e),
            }
        }
        if used == 0 {
            return Ok(None);
        }
        batch.data.reserve_exact(used + extra.len());
        batch.data.extend_from_slice(&src[..used]);
        batch.data.extend_from_slice(&extra);
        for i in extra_spans {
            let (a, b) = batch.spans[i];
            batch.spans[i] = (used + a, used + b);
        }
        Ok(Some((batch, used)))
    }

    fn encoded_len(frame: &Replies) -> usize {
        frame.len()
    }

    fn encode(&mut self, frame: Replies, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        if dst.is_empty() && dst.capacity() <= frame.buf.len() {
            *dst = frame.buf;
        } else {
            dst.extend_from_slice(&frame.buf);
        }
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.inner.set_max_frame(max);
    }

    fn error_reply(&mut self, err: &DecodeError) -> Option<Vec<u8>> {
        Some(error_reply(err))
    }
}
