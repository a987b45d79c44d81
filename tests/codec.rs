//! The built-in codecs through the public `Codec` trait: need-more on every proper prefix,
//! split and whole feeds agreeing, round trips, and the size limit enforced before buffering
//! (docs/reliability.md S1, S2 and S14's smoke checks, with a small deterministic generator instead
//! of proptest).

use goway::net::codec::{
    Codec, DEFAULT_MAX_FRAME, DecodeError, EncodeError, LengthCodec, LinesCodec,
};

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Decodes all of `bytes` fed in pieces whose sizes come from `cuts`, as the server's reader
/// does: keep the unused tail, append, decode again.
fn decode_in_pieces<C: Codec>(
    c: &mut C,
    bytes: &[u8],
    rng: &mut Rng,
) -> Result<(Vec<C::In>, usize), DecodeError> {
    let mut frames = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    while fed < bytes.len() {
        let n = 1 + rng.below(17) as usize;
        let n = n.min(bytes.len() - fed);
        pending.extend_from_slice(&bytes[fed..fed + n]);
        fed += n;
        while let Some((f, used)) = c.decode(&pending)? {
            frames.push(f);
            pending.drain(..used);
        }
    }
    Ok((frames, pending.len()))
}

fn random_frames(rng: &mut Rng, count: usize, max_len: u64, no_newline: bool) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let len = rng.below(max_len + 1) as usize;
            (0..len)
                .map(|_| {
                    let b = rng.below(256) as u8;
                    if no_newline && b == b'\n' { b'.' } else { b }
                })
                .collect()
        })
        .collect()
}

fn round_trip<C: Codec<In = Vec<u8>, Out = Vec<u8>>>(mut c: C, no_newline: bool, seed: u64) {
    let mut rng = Rng(seed);
    for _ in 0..200 {
        let count = 1 + rng.below(8) as usize;
        let frames = random_frames(&mut rng, count, 300, no_newline);
        let mut wire = Vec::new();
        for f in &frames {
            let before = wire.len();
            c.encode(f.clone(), &mut wire).unwrap();
            // The write queue's byte bound counts frames by this size.
            assert_eq!(C::encoded_len(f), wire.len() - before);
        }
        // Whole feed.
        let mut whole = Vec::new();
        let mut at = 0;
        while let Some((f, used)) = c.decode(&wire[at..]).unwrap() {
            whole.push(f);
            at += used;
        }
        assert_eq!(at, wire.len());
        assert_eq!(whole, frames);
        // Split feed agrees.
        let (split, left) = decode_in_pieces(&mut c, &wire, &mut rng).unwrap();
        assert_eq!(split, frames);
        assert_eq!(left, 0);
    }
}

#[test]
fn lines_round_trip_whole_and_split() {
    round_trip(LinesCodec::new(), true, 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn length_round_trip_whole_and_split() {
    round_trip(LengthCodec::new(), false, 0xdead_beef_cafe_f00d);
}

#[test]
fn every_proper_prefix_needs_more() {
    let mut lines = LinesCodec::new();
    let line = b"a line of text\n";
    for i in 0..line.len() {
        assert_eq!(lines.decode(&line[..i]).unwrap(), None, "prefix {i}");
    }
    assert_eq!(
        lines.decode(line).unwrap(),
        Some((b"a line of text".to_vec(), line.len()))
    );

    let mut len = LengthCodec::new();
    let mut wire = Vec::new();
    len.encode(b"payload".to_vec(), &mut wire).unwrap();
    for i in 0..wire.len() {
        assert_eq!(len.decode(&wire[..i]).unwrap(), None, "prefix {i}");
    }
    assert_eq!(
        len.decode(&wire).unwrap(),
        Some((b"payload".to_vec(), wire.len()))
    );
}

#[test]
fn lines_keep_carriage_returns_and_empty_lines() {
    let mut c = LinesCodec::new();
    assert_eq!(c.decode(b"\n").unwrap(), Some((vec![], 1)));
    assert_eq!(c.decode(b"x\r\n").unwrap(), Some((b"x\r".to_vec(), 3)));
    let mut out = Vec::new();
    c.encode(b"x\r".to_vec(), &mut out).unwrap();
    assert_eq!(out, b"x\r\n", "an echo returns the exact bytes");
}

#[test]
fn length_allows_empty_frames() {
    let mut c = LengthCodec::new();
    let mut wire = Vec::new();
    c.encode(Vec::new(), &mut wire).unwrap();
    assert_eq!(wire, [0, 0, 0, 0]);
    assert_eq!(c.decode(&wire).unwrap(), Some((vec![], 4)));
}

#[test]
fn oversized_length_is_refused_from_the_header_alone() {
    let mut c = LengthCodec::with_max(1000);
    // Only the 4 header bytes: the body is never waited for, let alone buffered.
    let err = c.decode(&1001u32.to_be_bytes()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLarge {
            len: 1001,
            max: 1000
        }
    );
    // The largest declarable length.
    let err = c.decode(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::FrameTooLarge {
            len: u32::MAX as usize,
            max: 1000
        }
    );
    // Exactly the maximum is fine.
    let mut wire = 1000u32.to_be_bytes().to_vec();
    wire.resize(1004, 7);
    assert_eq!(c.decode(&wire).unwrap().unwrap().1, 1004);
}

#[test]
fn unterminated_line_is_refused_once_past_the_maximum() {
    let mut c = LinesCodec::with_max(10);
    let mut buf = Vec::new();
    for i in 0..10 {
        buf.push(b'a');
        assert_eq!(c.decode(&buf).unwrap(), None, "{} bytes", i + 1);
    }
    buf.push(b'a');
    assert_eq!(
        c.decode(&buf).unwrap_err(),
        DecodeError::FrameTooLarge { len: 11, max: 10 }
    );
    // A newline beyond the limit does not rescue it.
    buf.push(b'\n');
    assert!(matches!(
        c.decode(&buf),
        Err(DecodeError::FrameTooLarge { .. })
    ));
}

#[test]
fn a_long_line_in_many_pieces_is_found() {
    let mut c = LinesCodec::new();
    let mut buf = Vec::new();
    for _ in 0..1000 {
        buf.extend_from_slice(&[b'z'; 100]);
        assert_eq!(c.decode(&buf).unwrap(), None);
    }
    buf.push(b'\n');
    let (f, used) = c.decode(&buf).unwrap().unwrap();
    assert_eq!((f.len(), used), (100_000, 100_001));
}

#[test]
fn encoding_over_the_maximum_fails() {
    let mut c = LengthCodec::with_max(4);
    let mut out = Vec::new();
    assert_eq!(
        c.encode(vec![0; 5], &mut out).unwrap_err(),
        EncodeError::FrameTooLarge { len: 5, max: 4 }
    );
    assert!(out.is_empty());
    let mut c = LinesCodec::with_max(4);
    assert!(matches!(
        c.encode(vec![b'a'; 5], &mut out),
        Err(EncodeError::FrameTooLarge { len: 5, max: 4 })
    ));
}

#[test]
fn set_max_frame_changes_the_limit() {
    let mut c = LinesCodec::new();
    assert_eq!(c.max_frame(), DEFAULT_MAX_FRAME);
    c.set_max_frame(3);
    assert!(c.decode(b"abcd").is_err());
    let mut c = LengthCodec::new();
    c.set_max_frame(usize::MAX);
    assert_eq!(c.max_frame(), u32::MAX as usize);
}

#[test]
fn random_garbage_never_panics() {
    // S14 smoke: arbitrary bytes give frames, need-more or an error; never a panic, and a
    // frame never claims more bytes than it was given.
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        for max in [0, 1, 8, 1 << 20] {
            let mut l = LinesCodec::with_max(max);
            if let Ok(Some((_, used))) = l.decode(&bytes) {
                assert!(used <= bytes.len());
            }
            let mut n = LengthCodec::with_max(max);
            if let Ok(Some((_, used))) = n.decode(&bytes) {
                assert!(used <= bytes.len());
            }
        }
    }
}

#[test]
fn errors_display_their_fields() {
    let e = DecodeError::FrameTooLarge { len: 5, max: 4 };
    assert_eq!(e.to_string(), "frame too large: 5 bytes, max 4");
    let e = DecodeError::Malformed {
        reason: "expected a digit".into(),
    };
    assert_eq!(e.to_string(), "malformed frame: expected a digit");
}
