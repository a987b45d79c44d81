//! RESP2, the Redis serialization protocol: requests in, replies out (and the reverse for
//! clients).
//!
//! Decoding follows Redis's own reader (`processMultibulkBuffer` and `processInlineBuffer` in
//! Redis's `networking.c`) byte for byte where a client can see the difference:
//!
//! - A request starting with `*` is a *multibulk* request: `*<count>\r\n` then `count` bulk
//!   strings `$<len>\r\n<bytes>\r\n`. It is flat: an array inside a request is
//!   `expected '$', got '*'`. A count of zero or less is an empty request, which Redis
//!   ignores; it decodes to an empty [`Request`].
//! - Anything else is an *inline* request: one line split on whitespace, with Redis's quoting
//!   (`"a b\x41\n"`, `'it''s'`, see [`split_inline`]). A blank line is an empty request.
//! - Like Redis, a header line is found by its `\r` and the byte after it is skipped unread, and
//!   the two bytes after a bulk's data are skipped unread too.
//!
//! Every size is checked before the bytes are buffered: a count over [`MAX_MULTIBULK`], a bulk
//! length over the bulk maximum (the smaller of [`DEFAULT_MAX_BULK`] or
//! [`RespCodec::with_max_bulk`], and the server's `max_frame`), a header line longer than
//! [`MAX_INLINE`], an inline line longer than that or than `max_frame`, and a whole request
//! over `max_frame` all fail as soon as their header is in. The errors are [`RespError`]
//! variants (in [`DecodeError::Resp`](super::DecodeError::Resp)) whose text is Redis's, and
//! [`Codec::error_reply`](super::Codec::error_reply) turns them into Redis's reply,
//! `-ERR Protocol error: <why>`, sent before the server closes the connection:
//!
//! | input | error | reply |
//! |---|---|---|
//! | `*3000000000\r\n`, `*x\r\n` | [`InvalidMultibulkLength`](RespError::InvalidMultibulkLength) | `-ERR Protocol error: invalid multibulk length` |
//! | `*1\r\n$-1\r\n`, `$blabla`, `$18446744073709551615`, over the max | [`InvalidBulkLength`](RespError::InvalidBulkLength) | `-ERR Protocol error: invalid bulk length` |
//! | `*1\r\nfoo\r\n`, `*1\r\n*1\r\n` | [`ExpectedDollar`](RespError::ExpectedDollar) | `-ERR Protocol error: expected '$', got 'f'` (`'*'`) |
//! | an inline line over 64 KiB | [`TooBigInlineRequest`](RespError::TooBigInlineRequest) | `-ERR Protocol error: too big inline request` |
//! | a `*`/`$` header line over 64 KiB | [`TooBigMultibulkCount`](RespError::TooBigMultibulkCount), [`TooBigBulkCount`](RespError::TooBigBulkCount) | `-ERR Protocol error: too big mbulk count string` (`bulk`) |
//! | `SET "a b` | [`UnbalancedQuotes`](RespError::UnbalancedQuotes) | `-ERR Protocol error: unbalanced quotes in request` |
//! | a request over `max_frame` in total | [`DecodeError::FrameTooLarge`](super::DecodeError::FrameTooLarge) | `-ERR Protocol error: request of <n> bytes is over the limit of <max>` (goway's own) |
//!
//! Decoding is iterative (no recursion at all on the request side; replies nest at most
//! [`MAX_DEPTH`] arrays deep), so hostile input cannot overflow a goroutine's small stack.
//!
//! Three codecs share these rules: [`RespCodec`] (one [`Request`] in, one [`Reply`] out),
//! [`RespPipelineCodec`] (every request of a read as one [`Batch`] in, one [`Replies`] out:
//! the fast one for pipelining clients, used by `examples/kv`), and [`RespClientCodec`]
//! (the client's side: requests out, replies in).
//!
//! ```
//! use goway::net::codec::{Codec, RespCodec, resp::{Reply, Request}};
//!
//! let mut c = RespCodec::new();
//! let (req, used) = c.decode(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n").unwrap().unwrap();
//! assert_eq!(used, 20);
//! assert!(req.is_command("get"));
//! assert_eq!(req.get(1), Some(&b"k"[..]));
//! let (inline, _) = c.decode(b"PING\r\n").unwrap().unwrap();
//! assert_eq!(inline, Request::from_args(["PING"]));
//!
//! let mut out = Vec::new();
//! c.encode(Reply::Bulk(b"v".to_vec()), &mut out).unwrap();
//! c.encode(Reply::Integer(-3), &mut out).unwrap();
//! assert_eq!(out, b"$1\r\nv\r\n:-3\r\n");
//!
//! let err = c.decode(b"*1\r\nfoo\r\n").unwrap_err();
//! assert_eq!(c.error_reply(&err).unwrap(), b"-ERR Protocol error: expected '$', got 'f'\r\n");
//! ```

// Where things are: `request.rs` and `reply.rs` hold the values, `wire.rs` the integer and
// line primitives both use, `inline.rs` Redis's quoting; `codec.rs` is the server's
// `RespCodec` (and its error replies), `pipeline.rs` the batching `RespPipelineCodec` with its
// `Batch` (`batch.rs`) and `Replies` (`replies.rs`), and `client.rs` the `RespClientCodec`.
mod batch;
mod client;
mod codec;
mod error;
mod inline;
mod pipeline;
mod replies;
mod reply;
mod request;
mod wire;

pub use batch::{Batch, Req};
pub use client::RespClientCodec;
pub use codec::{RespCodec, error_reply};
pub use error::RespError;
pub use inline::split_inline;
pub use pipeline::{MAX_BATCH, RespPipelineCodec};
pub use replies::Replies;
pub use reply::Reply;
pub use request::{Args, Request};
pub use wire::parse_int;

/// Most arguments in one multibulk request (and elements in one reply array): 1,048,576, the
/// limit Redis had before 7.0 (7.0 accepts up to `INT_MAX` but preallocates at most this).
pub const MAX_MULTIBULK: usize = 1024 * 1024;

/// Default largest bulk string: 512 MiB, Redis's `proto-max-bulk-len`. The server's
/// `max_frame` (1 MiB by default) lowers it.
pub const DEFAULT_MAX_BULK: usize = 512 << 20;

/// Longest inline request line, and longest `*`/`$` header line: 64 KiB, Redis's
/// `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE: usize = 64 << 10;

/// Deepest nesting of arrays in a decoded reply (requests are flat).
pub const MAX_DEPTH: usize = 32;
