//! The RESP codecs through the public `Codec` trait: Redis's protocol errors (as `RespError`
//! variants, whose texts are checked once against Redis's) for the inputs of Redis's
//! protocol.tcl and docs/reliability.md S1, S2 and S15, limits checked before
//! buffering, and (with proptest, a few hundred cases) every proper prefix needing more, split
//! and whole feeds agreeing, and `decode(encode(x)) == x` for requests and replies.

mod common;

use goway::net::codec::resp::{
    DEFAULT_MAX_BULK, MAX_BATCH, MAX_DEPTH, MAX_INLINE, Replies, Reply, Request, RespClientCodec,
    RespError, error_reply, split_inline,
};
use goway::net::codec::{Codec, DecodeError, RespCodec, RespPipelineCodec};
use proptest::prelude::*;

/// Feeds `input` to `c` until it fails; the error and the codec's reply to it.
fn first_error(c: &mut impl Codec, input: &[u8]) -> (DecodeError, String) {
    let mut pending = input.to_vec();
    loop {
        match c.decode(&pending) {
            Ok(Some((_, used))) => {
                pending.drain(..used);
            }
            Ok(None) => panic!("{input:?}: no error, needs more"),
            Err(e) => {
                let r = c.error_reply(&e).expect("RESP codecs reply to errors");
                return (e, String::from_utf8(r).unwrap());
            }
        }
    }
}

/// The RESP error `input` meets, checking that the reply is `-` and its text.
fn resp_error(c: &mut impl Codec, input: &[u8]) -> RespError {
    match first_error(c, input) {
        (DecodeError::Resp(e), reply) => {
            assert_eq!(reply, format!("-{e}\r\n"), "{input:?}");
            e
        }
        (other, _) => panic!("{input:?}: {other:?}, not a RESP error"),
    }
}

#[test]
fn protocol_error_texts_are_redis_texts() {
    // Redis's networking.c words, as redis-cli shows them.
    for (e, text) in [
        (
            RespError::InvalidMultibulkLength,
            "ERR Protocol error: invalid multibulk length",
        ),
        (
            RespError::InvalidBulkLength,
            "ERR Protocol error: invalid bulk length",
        ),
        (
            RespError::ExpectedDollar { got: b'f' },
            "ERR Protocol error: expected '$', got 'f'",
        ),
        (
            RespError::ExpectedDollar { got: b'\r' },
            "ERR Protocol error: expected '$', got ' '",
        ),
        (
            RespError::ExpectedDollar { got: 0xff },
            "ERR Protocol error: expected '$', got '\\xff'",
        ),
        (
            RespError::TooBigInlineRequest,
            "ERR Protocol error: too big inline request",
        ),
        (
            RespError::TooBigMultibulkCount,
            "ERR Protocol error: too big mbulk count string",
        ),
        (
            RespError::TooBigBulkCount,
            "ERR Protocol error: too big bulk count string",
        ),
        (
            RespError::UnbalancedQuotes,
            "ERR Protocol error: unbalanced quotes in request",
        ),
    ] {
        assert_eq!(e.to_string(), text);
        assert_eq!(DecodeError::Resp(e).to_string(), text);
        assert_eq!(error_reply(&e.into()), format!("-{text}\r\n").as_bytes());
    }
    assert_eq!(
        error_reply(&DecodeError::FrameTooLarge { len: 9, max: 8 }),
        b"-ERR Protocol error: request of 9 bytes is over the limit of 8\r\n"
    );
}

#[test]
fn protocol_errors_are_redis_errors() {
    use RespError::*;
    let cases: &[(&[u8], RespError)] = &[
        (b"*3000000000\r\n", InvalidMultibulkLength),
        (b"*20000000\r\n", InvalidMultibulkLength),
        (b"*1048577\r\n", InvalidMultibulkLength),
        (b"*x\r\n", InvalidMultibulkLength),
        (b"*\r\n", InvalidMultibulkLength),
        (b"*1\r\n$blabla\r\n", InvalidBulkLength),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
            InvalidBulkLength,
        ),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", InvalidBulkLength),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
            InvalidBulkLength,
        ),
        (b"*1\r\n$18446744073709551615\r\n", InvalidBulkLength),
        (b"*1\r\n$-1\r\n", InvalidBulkLength),
        (b"*1\r\nfoo\r\n", ExpectedDollar { got: b'f' }),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            ExpectedDollar { got: b'f' },
        ),
        (b"*1\r\n*1\r\n$4\r\nPING\r\n", ExpectedDollar { got: b'*' }),
        (b"SET \"a b\r\n", UnbalancedQuotes),
        (b"SET \"a\"b c\r\n", UnbalancedQuotes),
        (b"SET 'a\r\n", UnbalancedQuotes),
    ];
    for (input, want) in cases {
        assert_eq!(
            resp_error(&mut RespCodec::new(), input),
            *want,
            "{}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(resp_error(&mut RespPipelineCodec::new(), input), *want);
    }
}

#[test]
fn empty_requests_are_skipped_as_redis_does() {
    let mut c = RespCodec::new();
    for input in [&b"*-10\r\n"[..], b"*0\r\n", b"\r\n", b"\n", b"   \r\n"] {
        let (r, used) = c.decode(input).unwrap().unwrap();
        assert!(r.is_empty(), "{input:?}");
        assert_eq!(used, input.len());
    }
    let mut p = RespPipelineCodec::new();
    let (batch, used) = p.decode(b"*-10\r\n\r\nPING\r\n").unwrap().unwrap();
    assert_eq!(batch.to_requests(), vec![Request::from_args(["PING"])]);
    assert_eq!(used, 14);
}

#[test]
fn batches_hold_every_kind_of_request_and_are_capped() {
    let mut p = RespPipelineCodec::new();
    // Inline with quoting (copied after the raw bytes), short and long multibulk, and a
    // request completed by a later read (resumed by the inner codec).
    let mut input = b"SET \"a b\" 'c'\r\n*1\r\n$4\r\nPING\r\n".to_vec();
    let long: Vec<String> = (0..9).map(|i| format!("arg{i}")).collect();
    Request::from_args(&long).encode(&mut input);
    let cut = input.len() + 9;
    Request::from_args(["ECHO", "hello"]).encode(&mut input);
    let (batch, used) = p.decode(&input[..cut]).unwrap().unwrap();
    assert_eq!(
        batch.to_requests(),
        vec![
            Request::from_args(["SET", "a b", "c"]),
            Request::from_args(["PING"]),
            Request::from_args(&long),
        ]
    );
    assert_eq!(batch.get(0).unwrap()[1], *b"a b");
    assert!(batch.get(1).unwrap().is_command("ping"));
    assert!(p.decode(&input[used..cut]).unwrap().is_none());
    let (batch, used2) = p.decode(&input[used..]).unwrap().unwrap();
    assert_eq!(
        batch.to_requests(),
        vec![Request::from_args(["ECHO", "hello"])]
    );
    assert_eq!(used + used2, input.len());
    // At most MAX_BATCH requests per batch.
    let many = b"PING\r\n".repeat(MAX_BATCH + 10);
    let (batch, used) = p.decode(&many).unwrap().unwrap();
    assert_eq!(batch.len(), MAX_BATCH);
    let (batch, rest) = p.decode(&many[used..]).unwrap().unwrap();
    assert_eq!((batch.len(), used + rest), (10, many.len()));
}

#[test]
fn requests_before_an_error_are_delivered_first() {
    let mut p = RespPipelineCodec::new();
    let input = b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\nfoo\r\n";
    let (batch, used) = p.decode(input).unwrap().unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(used, 20);
    let e = p.decode(&input[used..]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Resp(RespError::ExpectedDollar { got: b'f' })
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // S15 on a goroutine with the default (small) stack.
    let input: Vec<u8> = b"*1\r\n".repeat(100_000);
    let h = goway::go!(move || {
        let mut c = RespCodec::new();
        let server = resp_error(&mut c, &input);
        let client = Reply::decode(&input, DEFAULT_MAX_BULK);
        (server, client)
    });
    let (server, client) = common::join(h);
    assert_eq!(server, RespError::ExpectedDollar { got: b'*' });
    assert_eq!(client.unwrap_err(), RespError::NestedTooDeep.into());
    // MAX_DEPTH itself is fine.
    let mut ok = b"*1\r\n".repeat(MAX_DEPTH);
    ok.extend_from_slice(b":1\r\n");
    let (r, used) = Reply::decode(&ok, DEFAULT_MAX_BULK).unwrap().unwrap();
    assert_eq!(used, ok.len());
    let mut depth = 0;
    let mut cur = &r;
    while let Reply::Array(items) = cur {
        depth += 1;
        cur = &items[0];
    }
    assert_eq!(depth, MAX_DEPTH);
}

#[test]
fn sizes_are_checked_before_buffering() {
    // S2: with the server's 1 MiB max, a bulk declared one byte longer fails on its header.
    let mut c = RespCodec::new();
    c.set_max_frame(1 << 20);
    let e = c.decode(b"*1\r\n$1048577\r\n").unwrap_err();
    assert_eq!(e, RespError::InvalidBulkLength.into());
    // A bulk that fits but takes the request over the max fails on its header too.
    let mut c = RespCodec::new().with_max_frame(100);
    let e = c.decode(b"*2\r\n$96\r\n").unwrap_err();
    assert!(
        matches!(e, DecodeError::FrameTooLarge { max: 100, .. }),
        "{e:?}"
    );
    let mut c = RespCodec::new().with_max_frame(100);
    let mut two = b"*2\r\n$50\r\n".to_vec();
    two.extend_from_slice(&[b'a'; 50]);
    two.extend_from_slice(b"\r\n$40\r\n");
    let e = c.decode(&two).unwrap_err();
    assert!(
        matches!(e, DecodeError::FrameTooLarge { max: 100, .. }),
        "{e:?}"
    );
    // A configured bulk maximum.
    let mut c = RespCodec::new().with_max_bulk(3);
    assert!(c.decode(b"*1\r\n$3\r\nabc\r\n").unwrap().is_some());
    assert_eq!(
        c.decode(b"*1\r\n$4\r\n").unwrap_err(),
        RespError::InvalidBulkLength.into()
    );
    // Inline lines and header lines: 64 KiB, as Redis.
    let mut long = vec![b'a'; MAX_INLINE];
    assert_eq!(RespCodec::new().decode(&long).unwrap(), None);
    long.push(b'\n');
    assert_eq!(
        RespCodec::new().decode(&long).unwrap().unwrap().1,
        long.len()
    );
    long.pop();
    long.push(b'a');
    assert_eq!(
        resp_error(&mut RespCodec::new(), &long),
        RespError::TooBigInlineRequest
    );
    // An inline request is a frame too: a `max_frame` below 64 KiB bounds it (found by
    // fuzzing: it was accepted up to 64 KiB whatever the maximum).
    let mut c = RespCodec::new().with_max_frame(16);
    assert!(c.decode(b"GET key\r\n").unwrap().is_some());
    assert_eq!(
        resp_error(&mut c, b"SET k \"hello world\"\r\n"),
        RespError::TooBigInlineRequest
    );
    assert_eq!(
        resp_error(
            &mut RespCodec::new().with_max_frame(16),
            b"SET k \"hello world"
        ),
        RespError::TooBigInlineRequest
    );
    let mut hdr = b"*".to_vec();
    hdr.extend(std::iter::repeat_n(b'1', MAX_INLINE + 1));
    assert_eq!(
        resp_error(&mut RespCodec::new(), &hdr),
        RespError::TooBigMultibulkCount
    );
    let mut hdr = b"*1\r\n$".to_vec();
    hdr.extend(std::iter::repeat_n(b'1', MAX_INLINE + 1));
    assert_eq!(
        resp_error(&mut RespCodec::new(), &hdr),
        RespError::TooBigBulkCount
    );
}

#[test]
fn inline_splitting_follows_redis_quoting() {
    let split = |s: &[u8]| split_inline(s).map(|r| r.to_vec());
    let v = |a: &[&str]| Some(a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>());
    assert_eq!(split(b"  set  k   v "), v(&["set", "k", "v"]));
    assert_eq!(split(b"set \"a b\" 'c d'"), v(&["set", "a b", "c d"]));
    assert_eq!(
        split(br#"echo "\x41\x4a\n\t\\" "\q""#),
        v(&["echo", "AJ\n\t\\", "q"])
    );
    assert_eq!(
        split(br#"echo 'it\'s' "\xZZ""#),
        v(&["echo", "it's", "xZZ"])
    );
    assert_eq!(split(b"echo \"\""), v(&["echo", ""]));
    assert_eq!(split(b"a\0b c"), v(&["a"]));
    assert_eq!(split(b""), v(&[]));
    assert_eq!(split(b"echo \"abc"), None);
    assert_eq!(split(b"echo 'abc"), None);
    assert_eq!(split(b"echo \"a\"b"), None);
    assert_eq!(split(b"echo 'a'b"), None);
}

#[test]
fn replies_encode_as_redis_writes_them() {
    let mut c = RespCodec::new();
    let mut out = Vec::new();
    for r in [
        Reply::OK,
        Reply::error("ERR bad\r\nthing"),
        Reply::Integer(i64::MIN),
        Reply::Bulk(Vec::new()),
        Reply::Null,
        Reply::NullArray,
        Reply::Array(vec![Reply::Integer(1), Reply::Array(vec![]), Reply::Null]),
    ] {
        c.encode(r, &mut out).unwrap();
    }
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "+OK\r\n-ERR bad  thing\r\n:-9223372036854775808\r\n$0\r\n\r\n$-1\r\n*-1\r\n\
         *3\r\n:1\r\n*0\r\n$-1\r\n"
    );
}

// ----- properties -----------------------------------------------------------------------

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn request() -> impl Strategy<Value = Request> {
    // Up to 10 arguments: both the inline (up to 6) and the heap-stored argument offsets.
    prop::collection::vec(arg(), 1..10).prop_map(Request::from_args)
}

/// Printable inline words (no quotes, no spaces).
fn inline_request() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9:_.-]{1,12}", 1..5)
}

fn reply() -> impl Strategy<Value = Reply> {
    let text = "[ -~]{0,20}".prop_map(|s: String| s);
    let leaf = prop_oneof![
        text.clone().prop_map(Reply::simple),
        text.prop_map(Reply::error),
        any::<i64>().prop_map(Reply::Integer),
        arg().prop_map(Reply::Bulk),
        Just(Reply::Null),
        Just(Reply::NullArray),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Reply::Array)
    })
}

/// A stream of requests in wire form: multibulk and inline, with the expected decodes.
fn wire() -> impl Strategy<Value = (Vec<u8>, Vec<Request>)> {
    prop::collection::vec(
        prop_oneof![
            request().prop_map(|r| {
                let mut w = Vec::new();
                r.encode(&mut w);
                (w, r)
            }),
            inline_request().prop_map(|words| {
                let w = format!("{}\r\n", words.join(" ")).into_bytes();
                (w, Request::from_args(&words))
            }),
        ],
        1..8,
    )
    .prop_map(|parts| {
        let mut bytes = Vec::new();
        let mut reqs = Vec::new();
        for (w, r) in parts {
            bytes.extend_from_slice(&w);
            reqs.push(r);
        }
        (bytes, reqs)
    })
}

/// Feeds `bytes` in pieces cut at `cuts` (as the server's reader does: keep the unused tail,
/// append, decode again). Returns the frames and how it ended.
fn feed<C: Codec>(c: &mut C, bytes: &[u8], cuts: &[usize]) -> (Vec<C::In>, Result<usize, String>) {
    let mut frames = Vec::new();
    let mut pending = Vec::new();
    let mut fed = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    for cut in cuts {
        if cut < fed {
            continue;
        }
        pending.extend_from_slice(&bytes[fed..cut]);
        fed = cut;
        loop {
            match c.decode(&pending) {
                Ok(Some((f, used))) => {
                    frames.push(f);
                    pending.drain(..used);
                }
                Ok(None) => break,
                Err(e) => return (frames, Err(e.to_string())),
            }
        }
    }
    (frames, Ok(pending.len()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn request_round_trip_and_prefixes(r in request()) {
        let mut w = Vec::new();
        r.encode(&mut w);
        let mut c = RespCodec::new();
        // Growing prefixes on one codec (its resume state in use) and on fresh ones.
        for n in 0..w.len() {
            prop_assert_eq!(c.decode(&w[..n]).unwrap(), None, "prefix {}", n);
            prop_assert_eq!(RespCodec::new().decode(&w[..n]).unwrap(), None);
        }
        prop_assert_eq!(c.decode(&w).unwrap(), Some((r.clone(), w.len())));
        let mut cc = RespClientCodec::new();
        let mut w2 = Vec::new();
        // The client codec's frames count in a write queue's byte bound by this size too.
        prop_assert_eq!(<RespClientCodec as Codec>::encoded_len(&r), w.len());
        cc.encode(r, &mut w2).unwrap();
        prop_assert_eq!(w2, w);
    }

    #[test]
    fn split_and_whole_feeds_agree(
        (bytes, reqs) in wire(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = feed(&mut RespCodec::new(), &bytes, &[]);
        prop_assert_eq!(&whole.0, &reqs);
        prop_assert_eq!(&whole.1, &Ok(0));
        let split = feed(&mut RespCodec::new(), &bytes, &cuts);
        prop_assert_eq!(&split, &whole);
        // The pipelining codec sees the same requests, batched.
        let batched = feed(&mut RespPipelineCodec::new(), &bytes, &cuts);
        let flat: Vec<Request> = batched.0.iter().flat_map(|b| b.to_requests()).collect();
        prop_assert_eq!(&flat, &reqs);
        prop_assert_eq!(batched.1, Ok(0));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_agrees(
        bytes in prop::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                1 => prop::sample::select(vec![b'*', b'$', b'\r', b'\n', b'1', b'-', b'"']),
            ],
            0..200,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = feed(&mut RespCodec::new(), &bytes, &[]);
        let split = feed(&mut RespCodec::new(), &bytes, &cuts);
        prop_assert_eq!(&split, &whole);
        // The pipelining codec: the same non-empty requests, and the same ending.
        let batched = feed(&mut RespPipelineCodec::new(), &bytes, &cuts);
        let flat: Vec<Request> = batched.0.iter().flat_map(|b| b.to_requests()).collect();
        let single: Vec<Request> = whole.0.into_iter().filter(|r| !r.is_empty()).collect();
        prop_assert_eq!(flat, single);
        prop_assert_eq!(batched.1.is_err(), whole.1.is_err());
        let _ = Reply::decode(&bytes, 64);
    }

    #[test]
    fn reply_round_trip_and_prefixes(r in reply()) {
        let mut w = Vec::new();
        RespCodec::new().encode(r.clone(), &mut w).unwrap();
        // The write queue's byte bound counts replies by this size: it must be exact.
        prop_assert_eq!(<RespCodec as Codec>::encoded_len(&r), w.len());
        for n in 0..w.len() {
            prop_assert_eq!(Reply::decode(&w[..n], DEFAULT_MAX_BULK).unwrap(), None, "prefix {}", n);
        }
        let mut c = RespClientCodec::new();
        prop_assert_eq!(c.decode(&w).unwrap(), Some((r.clone(), w.len())));
        // The pipelining codec's frames (`Replies`, any number of replies) are sized exactly
        // too: without it kv's replies escaped the server's write-queue bound.
        let mut replies = Replies::new();
        replies.push(&r);
        replies.push(&r);
        prop_assert_eq!(<RespPipelineCodec as Codec>::encoded_len(&replies), 2 * w.len());
        let mut out = Vec::new();
        RespPipelineCodec::new().encode(replies, &mut out).unwrap();
        prop_assert_eq!(out.len(), 2 * w.len());
    }
}
