//! S14 of docs/reliability.md (smoke): properties of the built-in codecs over random frames and
//! random splits. Every proper prefix of a frame decodes to "need more", split and whole
//! feeds decode the same, `decode(encode(f)) == f`, and arbitrary bytes never panic or yield
//! a frame over the limit. CI runs 256 cases per property (`PROPTEST_CASES` to change).

use goway::net::codec::{Codec, DecodeError, LengthCodec, LinesCodec};
use proptest::prelude::*;

/// Decodes `chunks` the way the server's reader does: append each chunk to a buffer, then
/// take every complete frame from its front.
fn feed<C: Codec<In = Vec<u8>>>(
    codec: &mut C,
    chunks: &[&[u8]],
) -> Result<(Vec<Vec<u8>>, usize), DecodeError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some((f, used)) = codec.decode(&buf)? {
            assert!(
                used > 0 && used <= buf.len(),
                "used {used} of {}",
                buf.len()
            );
            out.push(f);
            buf.drain(..used);
        }
    }
    Ok((out, buf.len()))
}

fn encode_all<C: Codec<Out = Vec<u8>>>(codec: &mut C, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for f in frames {
        codec.encode(f.clone(), &mut wire).unwrap();
    }
    wire
}

/// Splits `wire` at the given cut points (taken modulo its length).
fn split<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| if wire.is_empty() { 0 } else { c % wire.len() })
        .collect();
    at.push(0);
    at.push(wire.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| &wire[w[0]..w[1]]).collect()
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
        0..200,
    )
}

fn blob() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn lines_round_trip_whole_and_split(frames in proptest::collection::vec(line(), 0..20),
                                        cuts in proptest::collection::vec(any::<usize>(), 0..30)) {
        let wire = encode_all(&mut LinesCodec::new(), &frames);
        let whole = feed(&mut LinesCodec::new(), &[&wire]).unwrap();
        prop_assert_eq!(&whole.0, &frames);
        prop_assert_eq!(whole.1, 0);
        let pieces = split(&wire, &cuts);
        let parts = feed(&mut LinesCodec::new(), &pieces).unwrap();
        prop_assert_eq!(parts, whole);
    }

    #[test]
    fn length_round_trip_whole_and_split(frames in proptest::collection::vec(blob(), 0..20),
                                         cuts in proptest::collection::vec(any::<usize>(), 0..30)) {
        let wire = encode_all(&mut LengthCodec::new(), &frames);
        let whole = feed(&mut LengthCodec::new(), &[&wire]).unwrap();
        prop_assert_eq!(&whole.0, &frames);
        prop_assert_eq!(whole.1, 0);
        let pieces = split(&wire, &cuts);
        let parts = feed(&mut LengthCodec::new(), &pieces).unwrap();
        prop_assert_eq!(parts, whole);
    }

    #[test]
    fn every_proper_prefix_needs_more(l in line(), b in blob()) {
        let wire = encode_all(&mut LinesCodec::new(), std::slice::from_ref(&l));
        let mut growing = LinesCodec::new();
        for n in 0..wire.len() {
            prop_assert_eq!(LinesCodec::new().decode(&wire[..n]).unwrap(), None);
            prop_assert_eq!(growing.decode(&wire[..n]).unwrap(), None);
        }
        prop_assert_eq!(growing.decode(&wire).unwrap(), Some((l, wire.len())));

        let wire = encode_all(&mut LengthCodec::new(), std::slice::from_ref(&b));
        let mut growing = LengthCodec::new();
        for n in 0..wire.len() {
            prop_assert_eq!(LengthCodec::new().decode(&wire[..n]).unwrap(), None);
            prop_assert_eq!(growing.decode(&wire[..n]).unwrap(), None);
        }
        prop_assert_eq!(growing.decode(&wire).unwrap(), Some((b, wire.len())));
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_exceed_the_limit(bytes in proptest::collection::vec(any::<u8>(), 0..2000),
                                                       cuts in proptest::collection::vec(any::<usize>(), 0..10),
                                                       max in 1usize..300) {
        let pieces = split(&bytes, &cuts);
        let mut lines = LinesCodec::with_max(max);
        match feed(&mut lines, &pieces) {
            Ok((frames, _)) => prop_assert!(frames.iter().all(|f| f.len() <= max)),
            Err(DecodeError::FrameTooLarge { max: m, .. }) => prop_assert_eq!(m, max),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        let mut length = LengthCodec::with_max(max);
        match feed(&mut length, &pieces) {
            Ok((frames, _)) => prop_assert!(frames.iter().all(|f| f.len() <= max)),
            Err(DecodeError::FrameTooLarge { max: m, .. }) => prop_assert_eq!(m, max),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}
