use super::*;

fn p(raw: &str) -> Result<Option<usize>, HeadError> {
    let mut h = Head::default();
    parse(raw.as_bytes(), &mut h, 1 << 20)
}

#[test]
fn complete_partial_and_errors() {
    assert_eq!(p("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(Some(27)));
    assert_eq!(p("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    assert_eq!(p("GET / HTTP/1.0\r\n\r\n"), Ok(Some(18)));
    assert_eq!(
        p("GET / HTTP/1.1\r\n\r\n"),
        Err(HeadError::Bad("missing required Host header"))
    );
    assert_eq!(
        p("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        Err(HeadError::Version)
    );
    assert_eq!(
        p("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        Err(HeadError::Bad("conflicting Content-Length"))
    );
    assert_eq!(
        p("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
        Ok(Some(66))
    );
    assert_eq!(
        p("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
        Err(HeadError::Bad("bad Content-Length"))
    );
    assert_eq!(
        p("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
        Err(HeadError::NotImplemented)
    );
    assert_eq!(
        p("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        Err(HeadError::Bad("both Transfer-Encoding and Content-Length"))
    );
    assert_eq!(
        p("GET x HTTP/1.1\r\nHost: a\r\n\r\n"),
        Err(HeadError::Bad("invalid request target"))
    );
    assert_eq!(p("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(Some(31)));
}

#[test]
fn versions_as_go() {
    // Go's ParseHTTPVersion takes any HTTP/<digit>.<digit>; the server serves major 1.
    for (v, want) in [
        ("HTTP/1.0", Ok(0)),
        ("HTTP/1.1", Ok(1)),
        ("HTTP/1.2", Ok(2)),
        ("HTTP/1.9", Ok(9)),
        ("HTTP/0.9", Err(HeadError::Version)),
        ("HTTP/2.0", Err(HeadError::Version)),
        ("HTTP/3.1", Err(HeadError::Version)),
        ("HTTP/1.10", Err(HeadError::Bad("malformed HTTP version"))),
        ("HTTP/1", Err(HeadError::Bad("malformed HTTP version"))),
        ("http/1.1", Err(HeadError::Bad("malformed HTTP version"))),
        ("HTTP/1.1 x", Err(HeadError::Bad("malformed HTTP version"))),
        ("HTTP/a.1", Err(HeadError::Bad("malformed HTTP version"))),
        ("", Err(HeadError::Bad("malformed HTTP version"))),
    ] {
        let raw = format!("GET / {v}\r\nHost: a\r\n\r\n");
        let mut h = Head::default();
        let got = parse(raw.as_bytes(), &mut h, 1 << 20).map(|_| h.minor);
        assert_eq!(got, want, "{v:?}");
    }
    // The HTTP/2 preface: Go passes it to the handler, and its ServeMux answers 400 to a
    // `*` target that is not `OPTIONS`; so does this server, before the handler.
    assert_eq!(
        p("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Err(HeadError::Bad("invalid request target"))
    );
    assert_eq!(
        p("GET /%zz HTTP/2.0\r\nHost: a\r\n\r\n"),
        Err(HeadError::Bad("invalid URL escape in request target")),
        "Go checks the URL before the version's support"
    );
}

#[test]
fn request_lines() {
    let bad = |l: &str| request_line(l.as_bytes()).err();
    let malformed = Some(HeadError::Bad("malformed HTTP request"));
    assert_eq!(bad("GET\r\n"), malformed);
    assert_eq!(bad("GET /\r\n"), malformed);
    assert_eq!(
        bad("GET  / HTTP/1.1\r\n"),
        Some(HeadError::Bad("malformed HTTP version"))
    );
    assert_eq!(
        bad("G(T / HTTP/1.1\r\n"),
        Some(HeadError::Bad("invalid method"))
    );
    assert_eq!(
        bad(" / HTTP/1.1\r\n"),
        Some(HeadError::Bad("invalid method"))
    );
    assert_eq!(
        bad("GET /\x01 HTTP/1.1\r\n"),
        Some(HeadError::Bad("invalid request target"))
    );
    assert_eq!(
        bad("GET /\t HTTP/1.1\r\n"),
        Some(HeadError::Bad("invalid request target"))
    );
    assert_eq!(
        bad("GET / HTTP/1.1\r\r\n"),
        Some(HeadError::Bad("malformed HTTP version"))
    );
    assert_eq!(
        request_line(b"PUT /caf\xc3\xa9?x=1 HTTP/1.1\n"),
        Ok(RequestLine {
            method: "PUT",
            target: "/caf\u{e9}?x=1",
            major: 1,
            minor: 1
        })
    );
    assert_eq!(
        request_line(b"GET /\xff HTTP/1.1\r\n").err(),
        Some(HeadError::Bad("invalid request target"))
    );
    // Empty lines before the request line are skipped (RFC 9112 §2.2), 4 bytes at most.
    assert_eq!(p("\r\n\nGET / HTTP/1.0\r\n\r\n"), Ok(Some(21)));
    assert_eq!(p("\r\n\r\nGET / HTTP/1.0\r\n\r\n"), Ok(Some(22)));
    assert_eq!(
        p("\r\n\r\n\nGET / HTTP/1.0\r\n\r\n"),
        Err(HeadError::Bad("malformed HTTP request"))
    );
}

#[test]
fn percent_escapes_in_the_target() {
    let esc = Err(HeadError::Bad("invalid URL escape in request target"));
    for t in ["/%zz", "/a%4", "/a%", "/%4g/b", "http://h/%zz", "/%zz?q=1"] {
        let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(p(&raw), esc, "{t}");
    }
    for t in ["/%41%2f", "/a?q=%zz", "/a?%", "http://h/p%20q", "/a%41"] {
        let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(p(&raw), Ok(Some(raw.len())), "{t}");
    }
    for t in ["http://h%zz/", "http://h{x}/"] {
        let raw = format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            p(&raw),
            Err(HeadError::Bad("invalid request target")),
            "{t}"
        );
    }
    let ok = "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(p(ok), Ok(Some(ok.len())));
}

#[test]
fn a_trickled_head_is_scanned_once() {
    let mut raw = String::from("\r\nGET /a HTTP/1.1\r\nHost: a\r\n");
    for i in 0..200 {
        raw.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(i)));
    }
    raw.push_str("\r\nGET /next HTTP/1.1\r\n");
    let end = raw.find("GET /next").unwrap();
    let raw = raw.as_bytes();
    let mut scan = HeadScan::default();
    // One byte more at each call, as from the slowest client.
    let mut found = None;
    for n in 1..=raw.len() {
        if let Some(e) = scan.advance(&raw[..n]).unwrap() {
            found = Some((n, e));
            break;
        }
    }
    assert_eq!(found, Some((end, end)));
    assert_eq!(scan.scanned(), end, "each byte examined once");
    let mut h = Head::default();
    parse_head(raw, &scan, end, &mut h, 1 << 20).unwrap();
    assert_eq!((h.target(), h.header.len()), ("/a", 201));
    assert_eq!(h.header.get("x-h199").map(str::len), Some(199));
}

#[test]
fn bad_lines_are_refused_before_the_head_ends() {
    let early = |raw: &str| HeadScan::default().advance(raw.as_bytes());
    assert_eq!(
        early("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n"),
        Err(HeadError::Bad("invalid header name"))
    );
    assert_eq!(
        early("GET / HTTP/1.1\r\n folded\r\n"),
        Err(HeadError::Bad("invalid header name"))
    );
    assert_eq!(
        early("GET / HTTP/1.1\r\nX: a\x01b\r\n"),
        Err(HeadError::Bad("invalid header value"))
    );
    assert_eq!(
        early("GARBAGE\r\n"),
        Err(HeadError::Bad("malformed HTTP request"))
    );
    assert_eq!(early("\rX"), Err(HeadError::Bad("malformed line ending")));
    assert_eq!(early("GET / HTTP/1.1\r\nX: a\r\n"), Ok(None));
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..=MAX_HEADERS {
        many.push_str(&format!("x{i}:\r\n"));
    }
    assert_eq!(early(&many), Err(HeadError::TooLarge));
}

#[test]
fn many_headers_parse_on_the_heap() {
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..100 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    let mut h = Head::default();
    assert_eq!(parse(raw.as_bytes(), &mut h, 1 << 20), Ok(Some(raw.len())));
    assert_eq!(h.header.len(), 101);
    assert_eq!(h.header.get("x-h99"), Some("v"));
}

#[test]
fn connection_semantics() {
    let mut h = Head::default();
    parse(
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
        &mut h,
        1024,
    )
    .unwrap();
    assert!(!h.close && h.keep_alive_10);
    parse(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        &mut h,
        1024,
    )
    .unwrap();
    assert!(h.close);
    assert_eq!(check_partial(6000, false, 1024), Err(HeadError::UriTooLong));
}
