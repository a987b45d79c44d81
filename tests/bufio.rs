//! `goway::bufio::Scanner` against Go's `bufio.Scanner` rules (the cases of Go's
//! `bufio/scan_test.go`: lines with and without `\r`, a last line without newline, words over
//! Unicode spaces, runes with invalid UTF-8, a reader that hands out one byte at a time, the
//! token-size limit, split functions that misbehave), then over real loopback sockets: a
//! trickling client, a read deadline, an over-long line (the one-worker case is in
//! `one_worker.rs`).

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use goway::bufio::{
    MAX_SCAN_TOKEN_SIZE, ScanError, Scanner, Split, scan_bytes, scan_lines, scan_runes, scan_words,
};
use goway::go;
use goway::net::{TcpListener, TcpStream};

use common::join;

/// A reader that returns at most `step` bytes per read (Go's `slowReader`).
struct Slow<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Slow<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn tokens<R: Read>(mut sc: Scanner<R>) -> (Vec<Vec<u8>>, Option<String>) {
    let mut out = Vec::new();
    while sc.scan() {
        out.push(sc.bytes().to_vec());
    }
    (out, sc.err().map(|e| e.to_string()))
}

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn lines_drop_one_cr_and_keep_a_last_line_without_newline() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("\n", &[""]),
        ("\n\n", &["", ""]),
        ("a", &["a"]),
        ("a\n", &["a"]),
        ("a\r\n", &["a"]),
        ("a\r\r\n", &["a\r"]),
        ("a\rb\n", &["a\rb"]),
        ("abc\r\ndef\nghi", &["abc", "def", "ghi"]),
        ("trailing cr\r", &["trailing cr"]),
        ("  spaces kept  \n", &["  spaces kept  "]),
    ];
    for &(input, want) in cases {
        for step in [1, 2, 3, 100] {
            let sc = Scanner::new(Slow {
                data: input.as_bytes(),
                step,
            });
            let (got, err) = tokens(sc);
            assert_eq!(got, strs(want), "input {input:?}, {step} bytes per read");
            assert_eq!(err, None);
        }
    }
}

#[test]
fn lines_split_across_many_reads_match_scan_lines_as_a_custom_split() {
    // The built-in line search remembers how far it looked; the public `scan_lines`, used as a
    // custom split, searches from the start each time. Both must give the same tokens.
    let mut input = Vec::new();
    for i in 0..300 {
        input.extend(std::iter::repeat_n(b'x', i * 37 % 5000));
        input.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
    }
    input.extend_from_slice(b"tail");
    for step in [1, 7, 4096, 100_000] {
        let built_in = tokens(Scanner::new(Slow { data: &input, step }));
        let custom = tokens(Scanner::new(Slow { data: &input, step }).split(scan_lines));
        assert_eq!(built_in, custom, "{step} bytes per read");
        assert_eq!(built_in.0.len(), 301);
        assert_eq!(built_in.0[300], b"tail");
    }
}

#[test]
fn words_are_separated_by_unicode_spaces() {
    // Every space Go's isSpace knows, between words; non-spaces such as U+200B stay in words.
    let spaces = [
        "\t", "\n", "\u{b}", "\u{c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}",
        "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
    ];
    let mut input = String::from("  ");
    let mut want = Vec::new();
    for (i, sp) in spaces.iter().enumerate() {
        let w = format!("w{i}\u{200b}é");
        input.push_str(&w);
        input.push_str(sp);
        want.push(w);
    }
    input.push_str("last");
    want.push("last".into());
    for step in [1, 2, 5, 1000] {
        let sc = Scanner::new(Slow {
            data: input.as_bytes(),
            step,
        })
        .split(scan_words);
        let (got, err) = tokens(sc);
        let got: Vec<String> = got
            .into_iter()
            .map(|t| String::from_utf8(t).unwrap())
            .collect();
        assert_eq!(got, want, "{step} bytes per read");
        assert_eq!(err, None);
    }
    // Only spaces: no token at all.
    assert_eq!(
        tokens(Scanner::new(&b" \t \n "[..]).split(scan_words)),
        (vec![], None)
    );
}

#[test]
fn runes_replace_each_invalid_byte_and_wait_for_incomplete_ones() {
    let input = b"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xe2\x82z\xe2";
    let want: Vec<&[u8]> = vec![
        b"a",
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        "\u{FFFD}".as_bytes(), // 0xff
        "\u{FFFD}".as_bytes(), // 0xe2 0x82, cut short by 'z'
        "\u{FFFD}".as_bytes(),
        b"z",
        "\u{FFFD}".as_bytes(), // 0xe2 at the end of the stream
    ];
    for step in [1, 2, 3, 100] {
        let (got, err) = tokens(Scanner::new(Slow { data: input, step }).split(scan_runes));
        assert_eq!(got, want, "{step} bytes per read");
        assert_eq!(err, None);
    }
    let (bytes, _) = tokens(Scanner::new(&input[..]).split(scan_bytes));
    assert_eq!(bytes.len(), input.len());
}

#[test]
fn a_token_may_fill_the_maximum_size_delimiter_included_and_no_more() {
    for max in [1, 2, 10, 4096, 4097, 10_000] {
        // `max - 1` bytes and the newline fit exactly.
        let fits = format!("{}\n", "x".repeat(max - 1));
        let (got, err) = tokens(Scanner::new(fits.as_bytes()).max_token_size(max));
        assert_eq!(got.len(), 1, "max {max}");
        assert_eq!(err, None, "max {max}");
        // One more byte does not.
        let over = format!("ok\n{}\nnever\n", "x".repeat(max));
        let mut sc = Scanner::new(Slow {
            data: over.as_bytes(),
            step: 333,
        })
        .max_token_size(max);
        let mut seen = Vec::new();
        while sc.scan() {
            seen.push(sc.bytes().to_vec());
        }
        if max >= 3 {
            assert_eq!(seen, strs(&["ok"]), "max {max}");
        }
        assert!(
            matches!(sc.err(), Some(ScanError::TooLong { max: m }) if *m == max),
            "max {max}: {:?}",
            sc.err()
        );
        // The scan does not resume after the error.
        assert!(!sc.scan());
    }
    // The default is Go's 64 KiB.
    let long = "y".repeat(MAX_SCAN_TOKEN_SIZE);
    let (got, err) = tokens(Scanner::new(long.as_bytes()));
    assert!(got.is_empty());
    assert_eq!(err.as_deref(), Some("bufio.Scanner: token too long"));
}

#[test]
fn misbehaving_split_functions_stop_the_scan_with_an_error() {
    // Consumes more than it was given.
    let mut sc = Scanner::new(&b"abc"[..]).split(|data: &[u8], _| {
        Ok(Split::Token {
            advance: data.len() + 1,
            token: data,
        })
    });
    assert!(!sc.scan());
    assert!(matches!(sc.err(), Some(ScanError::AdvanceTooFar)));

    // Empty tokens forever at the end of the stream (Go panics; here an error).
    let mut sc = Scanner::new(&b""[..]).split(|_: &[u8], _| {
        Ok(Split::Token {
            advance: 0,
            token: b"",
        })
    });
    let mut n = 0;
    while sc.scan() {
        n += 1;
        assert!(n < 1000, "the scan never stopped");
    }
    assert!(matches!(sc.err(), Some(ScanError::NoProgress)));

    // A split function's own error is reported as such.
    let mut sc = Scanner::new(&b"abc\n"[..])
        .split(|_: &[u8], _| Err(io::Error::new(io::ErrorKind::InvalidData, "bad input")));
    assert!(!sc.scan());
    assert_eq!(sc.err().unwrap().to_string(), "bad input");
    assert!(matches!(sc.finish(), Err(ScanError::Split(_))));

    // A reader's error ends the scan and is kept.
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
        }
    }
    let mut sc = Scanner::new(Failing);
    assert!(!sc.scan());
    let err: io::Error = sc.finish().unwrap_err().into();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}

#[test]
fn a_final_token_ends_the_scan_without_error() {
    // Go's ErrFinalToken: stop at the first empty field.
    let mut sc = Scanner::new(&b"a,b,,c,d"[..]).split(|data: &[u8], at_eof| {
        Ok(match data.iter().position(|&b| b == b',') {
            Some(0) => Split::Final(b"STOP"),
            Some(i) => Split::Token {
                advance: i + 1,
                token: &data[..i],
            },
            None if at_eof && !data.is_empty() => Split::Final(data),
            None => Split::Need,
        })
    });
    let mut got = Vec::new();
    while sc.scan() {
        got.push(sc.text().into_owned());
    }
    assert_eq!(got, ["a", "b", "STOP"]);
    assert!(sc.err().is_none());
}

/// A loopback pair: (server side, client side), both goway streams.
fn pair() -> (TcpStream, TcpStream) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let client = go!(move || TcpStream::connect(addr).unwrap());
    let (server, _) = ln.accept().unwrap();
    (server, join(client))
}

#[test]
fn scans_a_trickling_client_over_tcp_and_ends_cleanly_at_its_close() {
    let (server, mut client) = pair();
    let writer = go!(move || {
        // One byte per write, with the goroutine yielding between them.
        for &b in b"hello\r\nworld\nlast".iter() {
            client.write_all(&[b]).unwrap();
            goway::runtime::yield_now();
        }
    });
    let reader = go!(move || {
        let (got, err) = tokens(Scanner::new(server));
        (got, err)
    });
    join(writer);
    let (got, err) = join(reader);
    assert_eq!(got, strs(&["hello", "world", "last"]));
    assert_eq!(err, None);
}

#[test]
fn a_read_deadline_stops_the_scan_with_a_timeout_and_keeps_the_lines_before_it() {
    let (server, mut client) = pair();
    client.write_all(b"one\ntwo\nhalf a line").unwrap();
    let reader = go!(move || {
        server.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)));
        let mut sc = Scanner::new(server);
        let mut got = Vec::new();
        while sc.scan() {
            got.push(sc.text().into_owned());
        }
        let err = sc.finish().unwrap_err();
        (got, err.is_timeout(), err.to_string())
    });
    let (got, timed_out, text) = join(reader);
    assert_eq!(got, ["one", "two"]);
    assert!(timed_out, "{text}");
    assert_eq!(text, "i/o timeout");
    drop(client);
}

#[test]
fn an_over_long_line_from_a_client_is_refused_without_buffering_it_all() {
    let (server, mut client) = pair();
    // The client sends 1 MiB with no newline and would go on; the scanner gives up at its
    // maximum (8 KiB here), having buffered at most that.
    let writer = go!(move || {
        let chunk = vec![b'z'; 64 * 1024];
        let mut sent = 0;
        while sent < (1 << 20) {
            match client.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // the server closed
            }
        }
    });
    let reader = go!(move || {
        let mut sc = Scanner::new(server).max_token_size(8 * 1024);
        assert!(!sc.scan());
        let too_long = matches!(sc.err(), Some(ScanError::TooLong { max: 8192 }));
        let buffered = sc.buffered().len();
        drop(sc); // closes the connection
        (too_long, buffered)
    });
    let (too_long, buffered) = join(reader);
    assert!(too_long);
    assert!(buffered <= 8 * 1024);
    join(writer);
}
