//! Entry points for fuzzing the parsers that read remote input.
//!
//! **Not a public API**: hidden from the documentation and free to change in any release.
//!
//! Each function takes arbitrary bytes, feeds them to one parser the way goway's servers do
//! (in pieces, into a growing buffer), checks invariants, and panics when one breaks. Whatever
//! the bytes, nothing else may panic, hang or allocate without bound. They are driven by
//!
//! - the cargo-fuzz targets in `fuzz/` (nightly; for long runs that grow the corpus:
//!   `cargo +nightly fuzz run lines`, see `fuzz/Cargo.toml`), and
//! - `tests/fuzz_corpus.rs` (stable, part of `cargo test`): every input of the corpus under
//!   `fuzz/corpus/<target>/`, then a bounded number of mutations of them.
//!
//! The inputs are plain wire bytes, so corpus files are readable protocol samples. Where a
//! function needs more (how to split the bytes, which size limit to use), it derives it from a
//! hash of the input, so the same input always takes the same path.
//!
//! Invariants checked for every codec:
//! - `decode` never consumes 0 bytes with a frame, nor more than it was given;
//! - while `decode` waits for more ("need more"), the buffered bytes stay within the limit the
//!   server relies on (`max_frame` plus 64 KiB);
//! - fed in pieces or all at once, the same frames come out, then the same outcome (the same
//!   kind of error, or the same unused bytes);
//! - what was decoded, encoded again, decodes to the same frames.
//!
//! The HTTP request reader has the same shape: see [`http_request`].

use std::mem::discriminant;

mod http;
pub use http::http_request;

use crate::net::codec::resp::{Reply, Request, RespClientCodec};
use crate::net::codec::{
    Codec, DEFAULT_MAX_FRAME, DecodeError, LengthCodec, LinesCodec, RespCodec, RespPipelineCodec,
};

/// Slack the server's reader allows over `max_frame` for one undecoded frame.
const READER_SLACK: usize = 64 << 10;

/// A small deterministic generator (xorshift64*), for the fuzz entry points and the stable
/// mutation harness (`tests/fuzz_corpus.rs`).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A generator seeded from a hash of `data`: the same input always takes the same path.
    pub fn for_input(data: &[u8]) -> Rng {
        Rng::new(hash(data))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// FNV-1a of `data`: names saved failures and seeds [`Rng::for_input`].
pub fn hash(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Cuts `data` into pieces of 1 to 64 bytes (sometimes a few KiB), as reads would.
fn pieces<'a>(data: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = if rng.below(8) == 0 {
            1 + rng.below(4096)
        } else {
            1 + rng.below(64)
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out
}

/// What feeding a codec produced: its frames, then an error or the bytes left unused.
struct Fed<T> {
    frames: Vec<T>,
    end: Result<usize, DecodeError>,
}

/// Feeds `chunks` to `codec` as the server's reader does: append each to a buffer, take out
/// every complete frame from its front, stop at the first error.
fn feed<C: Codec>(codec: &mut C, chunks: &[&[u8]], max: usize) -> Fed<C::In> {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match codec.decode(&buf) {
                Ok(Some((f, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "decode used {used} of {} bytes",
                        buf.len()
                    );
                    frames.push(f);
                    buf.drain(..used);
                }
                Ok(None) => {
                    assert!(
                        buf.len() <= max + READER_SLACK,
                        "{} bytes buffered for one frame, limit {max} (+{READER_SLACK})",
                        buf.len()
                    );
                    break;
                }
                Err(e) => {
                    return Fed {
                        frames,
                        end: Err(e),
                    };
                }
            }
        }
    }
    Fed {
        frames,
        end: Ok(buf.len()),
    }
}

/// Whole and in pieces, `make()`'s codec decodes `data` alike; returns the whole-feed result.
fn whole_and_pieces<C, F>(data: &[u8], max: usize, make: F) -> Fed<C::In>
where
    C: Codec,
    C::In: PartialEq + std::fmt::Debug,
    F: Fn() -> C,
{
    let mut rng = Rng::for_input(data);
    let whole = feed(&mut make(), &[data], max);
    let split = feed(&mut make(), &pieces(data, &mut rng), max);
    assert_eq!(
        whole.frames, split.frames,
        "frames differ between whole and split feeding"
    );
    same_end(&whole.end, &split.end);
    whole
}

/// Panics unless `a` and `b` end alike: the same unused bytes, or the same kind of error.
fn same_end(a: &Result<usize, DecodeError>, b: &Result<usize, DecodeError>) {
    match (a, b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "unused bytes differ"),
        (Err(x), Err(y)) => assert_eq!(
            discriminant(x),
            discriminant(y),
            "errors differ: {x:?} vs {y:?}"
        ),
        (x, y) => panic!("outcomes differ: {x:?} vs {y:?}"),
    }
}

/// A size limit for this input: small ones reach the over-limit paths, the default the rest.
fn limit(data: &[u8]) -> usize {
    match Rng::for_input(data).below(4) {
        0 => 16,
        1 => 300,
        _ => DEFAULT_MAX_FRAME,
    }
}

/// [`LinesCodec`]: newline-terminated frames.
pub fn lines(data: &[u8]) {
    let max = limit(data);
    let fed = whole_and_pieces(data, max, || LinesCodec::with_max(max));
    for f in &fed.frames {
        assert!(
            f.len() <= max,
            "a {}-byte line passed the {max} limit",
            f.len()
        );
    }
    let mut wire = Vec::new();
    let mut c = LinesCodec::with_max(max);
    for f in &fed.frames {
        c.encode(f.clone(), &mut wire)
            .expect("encode a decoded line");
    }
    let again = feed(&mut LinesCodec::with_max(max), &[&wire], max);
    assert_eq!(again.frames, fed.frames, "lines: decode(encode(x)) != x");
    assert_eq!(again.end, Ok(0));
}

/// [`LengthCodec`]: frames behind a 4-byte big-endian length.
pub fn length(data: &[u8]) {
    let max = limit(data);
    let fed = whole_and_pieces(data, max, || LengthCodec::with_max(max));
    for f in &fed.frames {
        assert!(
            f.len() <= max,
            "a {}-byte frame passed the {max} limit",
            f.len()
        );
    }
    let mut wire = Vec::new();
    let mut c = LengthCodec::with_max(max);
    for f in &fed.frames {
        c.encode(f.clone(), &mut wire)
            .expect("encode a decoded frame");
    }
    let again = feed(&mut LengthCodec::with_max(max), &[&wire], max);
    assert_eq!(again.frames, fed.frames, "length: decode(encode(x)) != x");
    assert_eq!(again.end, Ok(0));
}

/// [`RespCodec`] (the server side: requests, multibulk and inline) and
/// [`RespPipelineCodec`], which must read the same requests; what was read, encoded by
/// [`RespClientCodec`], reads back the same.
pub fn resp(data: &[u8]) {
    let max = limit(data);
    let make = || RespCodec::new().with_max_frame(max).with_max_bulk(max);
    let fed = whole_and_pieces(data, max, make);
    for r in &fed.frames {
        let bytes: usize = r.iter().map(<[u8]>::len).sum();
        assert!(
            bytes <= max,
            "a request of {bytes} bytes passed the {max} limit"
        );
    }

    // The pipeline codec: whole and in pieces, the same requests as the plain one.
    let make_p = || {
        RespPipelineCodec::new()
            .with_max_frame(max)
            .with_max_bulk(max)
    };
    let mut rng = Rng::for_input(data);
    let pw = feed(&mut make_p(), &[data], max);
    let ps = feed(&mut make_p(), &pieces(data, &mut rng), max);
    let (rw, rs): (Vec<_>, Vec<_>) = (
        pw.frames.iter().map(|b| b.to_requests()).collect(),
        ps.frames.iter().map(|b| b.to_requests()).collect(),
    );
    // Batches may be cut differently; the requests in order must be the same.
    assert_eq!(
        rw.concat(),
        rs.concat(),
        "pipeline: requests differ between whole and split feeding"
    );
    same_end(&pw.end, &ps.end);
    let flat: Vec<Request> = pw.frames.iter().flat_map(|b| b.to_requests()).collect();
    let plain: Vec<Request> = fed
        .frames
        .iter()
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    assert_eq!(
        flat, plain,
        "pipeline and plain RESP codecs read different requests"
    );
    match (&pw.end, &fed.end) {
        (Ok(x), Ok(y)) => assert_eq!(x, y, "unused bytes differ (pipeline vs plain)"),
        (Err(_), Err(_)) => {}
        (x, y) => panic!("pipeline vs plain outcomes differ: {x:?} vs {y:?}"),
    }

    // Round trip through the client codec's encoder.
    let mut wire = Vec::new();
    let mut client = RespClientCodec::new();
    for r in &fed.frames {
        if !r.is_empty() {
            client
                .encode(r.clone(), &mut wire)
                .expect("encode a request");
        }
    }
    // (Re-encoded as multibulk, an inline request grows: read it back without the limit.)
    let big = DEFAULT_MAX_FRAME;
    let again = feed(
        &mut RespCodec::new().with_max_frame(big).with_max_bulk(big),
        &[&wire],
        big,
    );
    assert_eq!(
        again.frames, plain,
        "RESP: decode(encode(request)) != request"
    );
    assert_eq!(again.end, Ok(0));
}

/// [`RespClientCodec`] (replies, as a proxy or client reads them from a server); what was
/// read, encoded by [`RespCodec`], reads back the same.
pub fn resp_reply(data: &[u8]) {
    let max = limit(data);
    let make = || {
        let mut c = RespClientCodec::new();
        c.set_max_frame(max);
        c
    };
    let fed = whole_and_pieces(data, max, make);
    let mut wire = Vec::new();
    let mut server = RespCodec::new();
    for r in &fed.frames {
        server
            .encode(r.clone(), &mut wire)
            .expect("encode a decoded reply");
    }
    let again: Fed<Reply> = feed(&mut make(), &[&wire], max);
    // The encoder turns CR and LF in status and error texts into spaces (as Redis does); the
    // decoder keeps a lone LF, as hiredis does.
    let expected: Vec<Reply> = fed.frames.iter().map(sanitized).collect();
    assert_eq!(
        again.frames, expected,
        "RESP: decode(encode(reply)) != reply"
    );
    assert_eq!(again.end, Ok(0));
}

/// `r` with CR and LF in its status and error texts replaced by spaces.
fn sanitized(r: &Reply) -> Reply {
    let clean = |s: &str| -> String { s.replace(['\r', '\n'], " ") };
    match r {
        Reply::Simple(s) => Reply::Simple(clean(s).into()),
        Reply::Error(s) => Reply::Error(clean(s).into()),
        Reply::Array(v) => Reply::Array(v.iter().map(sanitized).collect()),
        other => other.clone(),
    }
}
