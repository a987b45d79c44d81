//! goway::http against hostile clients, over real sockets on loopback: request targets and
//! versions Go refuses or accepts, 1xx responses that must not end the exchange, deep JSON
//! that must not overflow a handler's stack, chunked bodies made mostly of framing, and
//! request heads trickled in small pieces. Each case checks that the server answers as Go
//! does and still serves a well-behaved request afterwards; each test stops its server and
//! checks that every connection was released.

mod common;
#[path = "common/hostile.rs"]
#[allow(dead_code)] // the flood is not used here
mod hostile;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::http_server::run;
use common::{WATCHDOG, client, wait_until};
use goway::http::{Request, ResponseWriter, ServeMux, Server, StatusCode};

/// Tells this test binary, run again as a child, which server to be (see [`child_server`]).
const CHILD_ENV: &str = "GOWAY_HTTP_HOSTILE_CHILD";

// ---- server and client helpers ----------------------------------------------------------

#[derive(Debug)]
struct Resp {
    status: u16,
    /// The status line without its CRLF.
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response, an informational (1xx) one included (Content-Length, chunked, or to
/// EOF); `None` at EOF before it.
fn read_resp(r: &mut impl BufRead) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let line = line.trim_end().to_owned();
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    let mut resp = Resp {
        status,
        line,
        headers,
        body: Vec::new(),
    };
    if status == 204 || status == 304 || status < 200 {
        return Some(resp);
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).ok()?;
            let n = usize::from_str_radix(l.trim(), 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = resp.header("content-length") {
        let mut b = vec![0; n.parse().ok()?];
        r.read_exact(&mut b).ok()?;
        resp.body = b;
    } else {
        r.read_to_end(&mut resp.body).ok()?;
    }
    Some(resp)
}

/// Sends `raw` on a new connection and reads one response.
fn roundtrip(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut c = client(addr);
    c.write_all(raw).unwrap();
    read_resp(&mut BufReader::new(c))
        .unwrap_or_else(|| panic!("no reply to {:?}", String::from_utf8_lossy(raw)))
}

/// `true` if the peer closed: EOF or a reset, within the read timeout.
fn closed(r: &mut impl Read) -> bool {
    let mut b = [0u8; 1];
    matches!(r.read(&mut b), Ok(0) | Err(_)) && !matches!(r.read(&mut b), Ok(n) if n > 0)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// A handler that answers with the method, the target, the protocol and the decoded path.
fn echo_target(r: &Request, w: &mut ResponseWriter) {
    let _ = write!(
        w,
        "{} {} {} {}",
        r.method(),
        r.target(),
        r.proto(),
        r.url_path()
    );
}

/// Asserts `raw` gets `want` with `Connection: close` and a Go-style body, and the
/// connection closes.
fn assert_refused(addr: SocketAddr, raw: &[u8], want: u16) {
    let mut c = client(addr);
    c.write_all(raw).unwrap();
    let mut r = BufReader::new(c);
    let what = String::from_utf8_lossy(raw);
    let resp = read_resp(&mut r).unwrap_or_else(|| panic!("no reply to {what:?}"));
    assert_eq!(resp.status, want, "{what:?}: {}", resp.text());
    assert_eq!(resp.header("connection"), Some("close"), "{what:?}");
    assert!(resp.text().starts_with(&want.to_string()), "{what:?}");
    assert!(closed(&mut r), "still open after {what:?}");
}

// ---- request targets ------------------------------------------------------------------------

/// Go's `url.ParseRequestURI` refuses a malformed percent-escape in the path (and in the
/// authority of an absolute target) with 400; the query is not checked.
#[test]
fn invalid_percent_escapes_in_the_path_get_400() {
    let _g = common::shared();
    let s = run(Server::builder().handler(echo_target));
    for t in [
        "/%zz",
        "/a%4",
        "/a%",
        "/x/%g0/y",
        "/%zz?q=1",
        "http://host/%zz",
        "http://h%zz/p",
    ] {
        let raw = format!("GET {t} HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_refused(s.addr, raw.as_bytes(), 400);
    }
    // Well-formed escapes decode; a bad escape in the query is left to the handler, as Go.
    let r = roundtrip(s.addr, &get("/a%20b%2Fc"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "GET /a%20b%2Fc HTTP/1.1 /a b/c")
    );
    let r = roundtrip(s.addr, &get("/p?q=%zz"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "GET /p?q=%zz HTTP/1.1 /p")
    );
    s.stop();
}

// ---- versions -------------------------------------------------------------------------------

/// Go's `ParseHTTPVersion` takes any `HTTP/<digit>.<digit>` and its server serves every
/// HTTP/1.x (as HTTP/1.1: keep-alive, chunked replies); HTTP/0.x and 2+ get 505, a malformed
/// version 400.
#[test]
fn any_http_1x_is_served_as_go_does() {
    let _g = common::shared();
    let s = run(Server::builder().handler(echo_target));
    for minor in 2..=9 {
        let c = client(s.addr);
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut w = c;
        // Two pipelined requests: keep-alive as HTTP/1.1, and Host is required.
        let raw = format!(
            "GET /a HTTP/1.{minor}\r\nHost: t\r\n\r\nGET /b HTTP/1.{minor}\r\nHost: t\r\n\r\n"
        );
        w.write_all(raw.as_bytes()).unwrap();
        for p in ["/a", "/b"] {
            let resp = read_resp(&mut r).expect("a response");
            assert_eq!(resp.status, 200);
            assert!(resp.line.starts_with("HTTP/1.1 200"), "{}", resp.line);
            assert_eq!(resp.text(), format!("GET {p} HTTP/1.{minor} {p}"));
            assert_eq!(resp.header("connection"), None);
        }
        let no_host = format!("GET / HTTP/1.{minor}\r\n\r\n");
        assert_refused(s.addr, no_host.as_bytes(), 400);
    }
    for v in ["HTTP/0.9", "HTTP/2.0", "HTTP/3.0", "HTTP/9.9"] {
        let raw = format!("GET / {v}\r\nHost: t\r\n\r\n");
        assert_refused(s.addr, raw.as_bytes(), 505);
    }
    for v in [
        "HTTP/1.10",
        "HTTP/1",
        "HTTP/2",
        "http/1.1",
        "HTTP/1.1 extra",
        "HTTP/1.x",
        "HTTPS/1.1",
    ] {
        let raw = format!("GET / {v}\r\nHost: t\r\n\r\n");
        assert_refused(s.addr, raw.as_bytes(), 400);
    }
    // The HTTP/2 preface: 400, as Go's ServeMux answers a `*` target that is not OPTIONS.
    assert_refused(s.addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400);
    assert_eq!(roundtrip(s.addr, &get("/ok")).status, 200);
    s.stop();
}

// ---- informational responses ----------------------------------------------------------------

fn informational_app() -> ServeMux {
    let mut m = ServeMux::new();
    m.handle("GET /hints", |_r: &Request, w: &mut ResponseWriter| {
        w.header().add("Link", "</a.css>; rel=preload");
        w.header().set("Content-Length", "999"); // not sent with the 1xx
        w.write_header(103);
        w.header().del("Content-Length");
        w.write_header(StatusCode::PROCESSING);
        w.write_header(StatusCode::CREATED);
        w.write_header(StatusCode::EARLY_HINTS); // superfluous: ignored
        let _ = w.write_all(b"final");
    });
    m.handle("GET /plain", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"plain");
    });
    m.handle("POST /continue", |r: &Request, w: &mut ResponseWriter| {
        // The handler sends its own 100 Continue: the server must not send a second one.
        w.write_header(StatusCode::CONTINUE);
        let body = r.read_body().unwrap_or_default();
        let _ = w.write_all(&body);
    });
    m.handle("POST /late", |r: &Request, w: &mut ResponseWriter| {
        // The final head goes out before the body is read: no 100 Continue after it.
        let _ = w.write_all(b"head;");
        let _ = w.flush();
        let body = r.read_body().unwrap_or_default();
        let _ = w.write_all(&body);
    });
    m.handle("GET /switch", |_r: &Request, w: &mut ResponseWriter| {
        w.header().set("Upgrade", "x-test");
        w.write_header(StatusCode::SWITCHING_PROTOCOLS);
    });
    m.handle("GET /odd", |_r: &Request, w: &mut ResponseWriter| {
        w.write_header(599);
    });
    m
}

/// `write_header(1xx)` sends an informational response at once and the final response
/// follows it: pipelined requests stay in step (it used to go out as the final response,
/// and each later response answered the request before it).
#[test]
fn informational_responses_do_not_desynchronise_the_connection() {
    let _g = common::shared();
    let s = run(Server::builder().handler(informational_app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut raw = get("/hints");
    raw.extend_from_slice(&get("/plain"));
    raw.extend_from_slice(&get("/hints"));
    raw.extend_from_slice(&get("/plain"));
    w.write_all(&raw).unwrap();
    for _ in 0..2 {
        let hints = read_resp(&mut r).unwrap();
        assert_eq!(hints.line, "HTTP/1.1 103 Early Hints");
        assert_eq!(hints.header("link"), Some("</a.css>; rel=preload"));
        assert_eq!(hints.header("content-length"), None);
        assert_eq!(hints.header("date"), None);
        let processing = read_resp(&mut r).unwrap();
        assert_eq!(processing.line, "HTTP/1.1 102 Processing");
        let fin = read_resp(&mut r).unwrap();
        assert_eq!(fin.line, "HTTP/1.1 201 Created");
        assert_eq!(fin.header("link"), Some("</a.css>; rel=preload"));
        assert_eq!(fin.text(), "final");
        let plain = read_resp(&mut r).unwrap();
        assert_eq!((plain.status, plain.text().as_str()), (200, "plain"));
    }

    // HTTP/1.0 clients get no 1xx (RFC 9110 §15.2), only the final response.
    let r10 = roundtrip(s.addr, b"GET /hints HTTP/1.0\r\n\r\n");
    assert_eq!((r10.status, r10.text().as_str()), (201, "final"));

    // A code without a reason phrase: Go's `599 status code 599`.
    let odd = roundtrip(s.addr, &get("/odd"));
    assert_eq!(odd.line, "HTTP/1.1 599 status code 599");
    s.stop();
}

/// A handler's own `100 Continue` replaces the server's; and once the final head went out
/// (a streaming response), reading the body sends no `100 Continue` after it.
#[test]
fn continue_is_sent_once_and_never_after_the_final_head() {
    let _g = common::shared();
    let s = run(Server::builder().handler(informational_app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(
        b"POST /continue HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let cont = read_resp(&mut r).unwrap();
    assert_eq!(cont.line, "HTTP/1.1 100 Continue");
    w.write_all(b"hello").unwrap();
    let fin = read_resp(&mut r).unwrap();
    assert_eq!((fin.status, fin.text().as_str()), (200, "hello"));
    // Still in step: the next response answers the next request.
    w.write_all(&get("/plain")).unwrap();
    assert_eq!(read_resp(&mut r).unwrap().text(), "plain");

    w.write_all(
        b"POST /late HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK\r\n");
    w.write_all(b"world").unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap(); // the head said `Connection: close`
    let rest = String::from_utf8_lossy(&rest);
    assert!(!rest.contains("100 Continue"), "{rest:?}");
    assert!(rest.contains("Connection: close"), "{rest:?}");
    assert!(rest.contains("head;") && rest.contains("world"), "{rest:?}");
    s.stop();
}

/// `101 Switching Protocols` is final (Go since 1.20) and, with no way to take over the
/// connection, the connection closes after it: a pipelined request is not answered.
#[test]
fn switching_protocols_is_final_and_closes() {
    let _g = common::shared();
    let s = run(Server::builder().handler(informational_app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut raw = get("/switch");
    raw.extend_from_slice(&get("/plain"));
    w.write_all(&raw).unwrap();
    let sw = read_resp(&mut r).unwrap();
    assert_eq!(sw.line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(sw.header("upgrade"), Some("x-test"));
    assert!(closed(&mut r));
    assert_eq!(roundtrip(s.addr, &get("/plain")).text(), "plain");
    s.stop();
}

// ---- chunked bodies ----------------------------------------------------------------------

fn chunked_app() -> ServeMux {
    let mut m = ServeMux::new();
    m.handle("POST /count", |r: &Request, w: &mut ResponseWriter| {
        // Counts the body's bytes; on an error, says how many came before it.
        let mut body = r.body();
        let mut buf = [0u8; 4096];
        let mut n = 0usize;
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => {
                    return goway::http::error(w, &format!("read {n} bytes: {e}"), 400);
                }
            }
        }
        let _ = write!(w, "read {n}");
    });
    m.handle("POST /ignore", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"ignored");
    });
    m.handle("POST /quiet", |r: &Request, _w: &mut ResponseWriter| {
        // Gives up on a bad body without answering: the server answers 400 for it.
        let _ = r.read_body();
    });
    m
}

fn chunked_head(path: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes()
}

/// Sends a chunked request with `body` as its framing and returns the response.
fn chunked(addr: SocketAddr, path: &str, body: &[u8]) -> Resp {
    let mut raw = chunked_head(path);
    raw.extend_from_slice(body);
    roundtrip(addr, &raw)
}

/// Bodies that are mostly framing are refused: a chunk-size line is capped whether or not it
/// is complete (a 5,000-byte extension used to pass: the cap was checked only while the line
/// was incomplete), and extension bytes count against the data they carry (Go 1.22's fix
/// for CVE-2023-39326: 200 MB of wire could carry 50 KB of data). Honest framing passes,
/// one byte a chunk included.
#[test]
fn chunk_framing_is_bounded_by_the_data_it_carries() {
    let _g = common::shared();
    let s = run(Server::builder().handler(chunked_app()));
    // One byte a chunk is legitimate streaming, as in Go.
    let ones = "1\r\nx\r\n".repeat(20_000) + "0\r\n\r\n";
    assert_eq!(
        chunked(s.addr, "/count", ones.as_bytes()).text(),
        "read 20000"
    );
    // Modest extensions on real chunks are fine.
    let data = "d".repeat(1000);
    let ext = format!("3e8;name=value;q=\"a b\"\r\n{data}\r\n").repeat(64) + "0;end\r\n\r\n";
    assert_eq!(
        chunked(s.addr, "/count", ext.as_bytes()).text(),
        "read 64000"
    );
    // A size line up to 4096 bytes with its CRLF, complete: accepted; one byte more: refused.
    let line = |len: usize| format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(len - 4));
    assert_eq!(
        chunked(s.addr, "/count", line(4096).as_bytes()).text(),
        "read 5"
    );
    for len in [4097, 5000, 100_000] {
        let r = chunked(s.addr, "/count", line(len).as_bytes());
        assert_eq!(r.status, 400, "{len}: {}", r.text());
        assert!(
            r.text().contains(
                "read 0 bytes: http: malformed chunked encoding: chunk-size line too long"
            ),
            "{}",
            r.text()
        );
    }
    // Tiny chunks with long extensions: refused once the framing exceeds what the data
    // allows by 16 KiB, after a few hundred bytes of data, not at the end of a megabyte.
    let mut c = client(s.addr);
    c.write_all(&chunked_head("/count")).unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = format!("1;{}\r\nx\r\n", "e".repeat(100)).repeat(1000);
            for _ in 0..10 {
                if c.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    let mut r = BufReader::new(c);
    let resp = read_resp(&mut r).unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    let text = resp.text();
    assert!(
        text.contains("http: chunked encoding contains too much non-data"),
        "{text}"
    );
    let n: usize = text
        .split("read ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((100..1000).contains(&n), "data before the refusal: {n}");
    assert!(closed(&mut r));
    common::join_thread(writer);
    assert_eq!(roundtrip(s.addr, &get("/")).status, 404);
    s.stop();
}

/// A handler that does not read the body: the server discards it only while its framing
/// stays within bounds, then closes; it does not read hundreds of megabytes of extensions
/// for a few kilobytes of data.
#[test]
fn an_unread_body_of_framing_is_not_drained_forever() {
    let _g = common::shared();
    let s = run(Server::builder().handler(chunked_app()));
    let mut c = client(s.addr);
    c.write_all(&chunked_head("/ignore")).unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let block = format!("1;{}\r\nx\r\n", "e".repeat(4000)).repeat(16);
            let mut sent = 0usize;
            while sent < 64 << 20 {
                match c.write(block.as_bytes()) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        })
    };
    let mut r = BufReader::new(c);
    let resp = read_resp(&mut r).unwrap();
    assert_eq!((resp.status, resp.text().as_str()), (200, "ignored"));
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(closed(&mut r));
    let sent = common::join_thread(writer);
    assert!(sent < 32 << 20, "the client pushed {sent} bytes");
    assert_eq!(roundtrip(s.addr, &get("/")).status, 404);
    s.stop();
}

/// Chunk framing Go or RFC 9112 refuses is refused (a bare LF, a bare CR, an empty or
/// overlong size, a malformed trailer), and a handler that gives up on such a body without
/// answering gets a 400 sent for it.
#[test]
fn malformed_chunk_framing_gets_400() {
    let _g = common::shared();
    let s = run(Server::builder().handler(chunked_app()));
    for body in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5;x\nhello\r\n0\r\n\r\n",
        b"5\rhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b";x\r\nhello\r\n0\r\n\r\n",
        b"10000000000000005\r\nhello\r\n0\r\n\r\n",
        b"5 x\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nno colon\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-T: v\n\r\n",
    ] {
        let what = String::from_utf8_lossy(body);
        let mut raw = chunked_head("/count");
        raw.extend_from_slice(body);
        let mut c = client(s.addr);
        c.write_all(&raw).unwrap();
        let mut r = BufReader::new(c);
        let resp = read_resp(&mut r).unwrap_or_else(|| panic!("no reply to {what:?}"));
        assert_eq!(resp.status, 400, "{what:?}: {}", resp.text());
        assert!(resp.text().contains("chunk"), "{what:?}: {}", resp.text());
        assert!(closed(&mut r), "{what:?}");
        let quiet = chunked(s.addr, "/quiet", body);
        assert_eq!(quiet.status, 400, "{what:?}");
        assert_eq!(quiet.header("connection"), Some("close"));
    }
    // Trailers are fine, and the connection goes on after them.
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut raw = chunked_head("/count");
    raw.extend_from_slice(b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n");
    raw.extend_from_slice(&get("/"));
    w.write_all(&raw).unwrap();
    assert_eq!(read_resp(&mut r).unwrap().text(), "read 5");
    assert_eq!(read_resp(&mut r).unwrap().status, 404);
    s.stop();
}

/// A trailer line must fit the connection's read buffer (`max_header_bytes` plus 4 KiB): a
/// longer one is refused as a malformed body, 400 (found by `goway::fuzzing::http_request`:
/// with `max_header_bytes` below 12 KiB, a trailer line between the buffer's size and the
/// 16 KiB trailer limit filled the buffer and the body failed as a connection error, so a
/// handler that gave up on it without answering sent 200).
#[test]
fn a_trailer_line_longer_than_the_read_buffer_gets_400() {
    let _g = common::shared();
    let s = run(Server::builder()
        .max_header_bytes(100)
        .handler(chunked_app()));
    let trailer =
        |len: usize| format!("5\r\nhello\r\n0\r\nX-T: {}\r\n\r\n", "t".repeat(len)).into_bytes();
    // Within the buffer (100 + 4096 bytes): fine.
    assert_eq!(chunked(s.addr, "/count", &trailer(3000)).text(), "read 5");
    for len in [4200, 6000, 15_000] {
        let r = chunked(s.addr, "/count", &trailer(len));
        assert_eq!(r.status, 400, "{len}: {}", r.text());
        assert!(
            r.text()
                .contains("read 5 bytes: http: malformed chunked encoding: trailer too long"),
            "{len}: {}",
            r.text()
        );
        let quiet = chunked(s.addr, "/quiet", &trailer(len));
        assert_eq!(quiet.status, 400, "{len}: {}", quiet.text());
        assert_eq!(quiet.header("connection"), Some("close"));
    }
    assert_eq!(roundtrip(s.addr, &get("/")).status, 404);
    s.stop();
    // With the default head limit, trailers up to 16 KiB pass.
    let s = run(Server::builder().handler(chunked_app()));
    assert_eq!(chunked(s.addr, "/count", &trailer(15_000)).text(), "read 5");
    s.stop();
}

// ---- deep JSON ------------------------------------------------------------------------------

#[cfg(feature = "json")]
mod deep_json {
    use super::*;

    /// `n` objects nested: `{"a":{"a":1}}` for 2.
    fn objects(n: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n))
    }

    /// `n` arrays nested: `[[1]]` for 2.
    fn arrays(n: usize) -> String {
        format!("{}1{}", "[".repeat(n), "]".repeat(n))
    }

    /// `n` levels alternating objects and arrays: `{"k":[{"k":[]}]}` for 4 (a `Node` tree).
    fn nodes(n: usize) -> String {
        assert!(n % 2 == 0);
        format!(
            "{}[]{}",
            r#"{"k":["#.repeat(n / 2 - 1) + r#"{"k":"#,
            "}]".repeat(n / 2 - 1) + "}"
        )
    }

    /// A handler's `read_json` on the server's default stack: a body nested up to
    /// `MAX_JSON_DEPTH` decodes (and echoes back through `write_json`), one level more gets 400
    /// before decoding, and the server goes on. It used to overflow the stack and kill the
    /// whole process on 127 nested objects (763 bytes): serde_json's own limit is 128.
    #[test]
    fn deep_json_gets_400_and_never_overflows_the_stack() {
        use goway::http::MAX_JSON_DEPTH as MAX;
        let _g = common::shared();
        let mut server = child("json");
        let addr = server.addr;
        for body in [objects(MAX), arrays(MAX), nodes(MAX), objects(MAX - 1)] {
            for path in ["/value", "/node"] {
                if path == "/node" && !body.contains("\"k\"") {
                    continue;
                }
                let (status, reply) = hostile::http_request(addr, "POST", path, &body);
                assert_eq!(
                    status,
                    200,
                    "{path} {}: {}",
                    body.len(),
                    String::from_utf8_lossy(&reply)
                );
                assert_eq!(String::from_utf8_lossy(&reply), body, "{path}");
            }
        }
        server.assert_alive("decoding the deepest bodies allowed");
        let report = objects(127);
        assert_eq!(report.len(), 763, "the reported body");
        for body in [
            report,
            objects(MAX + 1),
            arrays(MAX + 1),
            nodes(MAX + 2),
            arrays(1 << 20),
        ] {
            for path in ["/value", "/node"] {
                let (status, reply) = hostile::http_request(addr, "POST", path, &body);
                let reply = String::from_utf8_lossy(&reply);
                assert_eq!(status, 400, "{path} {}: {reply}", body.len());
                assert!(reply.contains("nested deeper than 64 levels"), "{reply}");
            }
            server.assert_alive("refusing a body nested too deep");
        }
        // Brackets inside strings are not nesting.
        let strings = format!(r#"["{}", "\"{}"]"#, "[{".repeat(1000), "[".repeat(1000));
        assert_eq!(
            hostile::http_request(addr, "POST", "/value", &strings).0,
            200
        );
        // Encoding: `write_json` stops at the same depth with a 500, it does not overflow.
        let (status, reply) = hostile::http_request(addr, "GET", &format!("/deep?n={MAX}"), "");
        assert_eq!(
            (status, String::from_utf8_lossy(&reply).into_owned()),
            (200, arrays(MAX))
        );
        let (status, reply) =
            hostile::http_request(addr, "GET", &format!("/deep?n={}", MAX + 1), "");
        assert_eq!(status, 500, "{}", String::from_utf8_lossy(&reply));
        server.assert_alive("encoding values nested too deep");
        assert_eq!(
            hostile::http_request(addr, "POST", "/value", "[1]"),
            (200, b"[1]".to_vec())
        );
        server.kill_and_reap();
    }

    /// `POST /value`: a `serde_json::Value` decoded and written back; `POST /node`: the same
    /// through a recursive derived type; `GET /deep?n=N`: `N` arrays nested, written.
    pub(super) fn app() -> ServeMux {
        use goway::http::{self, read_json, write_json};
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Node {
            k: Vec<Node>,
        }
        let mut m = ServeMux::new();
        m.handle(
            "POST /value",
            |r: &Request, w: &mut ResponseWriter| match read_json::<serde_json::Value>(r) {
                Ok(v) => write_json(w, 200, &v),
                Err(e) => http::error(w, &e.to_string(), e.status()),
            },
        );
        m.handle(
            "POST /node",
            |r: &Request, w: &mut ResponseWriter| match read_json::<Node>(r) {
                Ok(v) => write_json(w, 200, &v),
                Err(e) => http::error(w, &e.to_string(), e.status()),
            },
        );
        m.handle("GET /deep", |r: &Request, w: &mut ResponseWriter| {
            let n: usize = r.query_value("n").and_then(|n| n.parse().ok()).unwrap_or(1);
            let mut v = serde_json::Value::from(1);
            for _ in 0..n.min(1000) {
                v = serde_json::Value::Array(vec![v]);
            }
            write_json(w, 200, &v);
        });
        m
    }
}

// ---- trickled heads --------------------------------------------------------------------------

/// Bytes of each trickled head in the CPU measurement: under the default limit
/// (`max_header_bytes` 1 MiB plus Go's 4 KiB of slack: 1,052,672 bytes).
const TRICKLE_HEAD: usize = 1_040_000;

/// A request head of about `len` bytes: fields of about 200 bytes each (5,000 of them for
/// 1 MB, under the 8,192-field limit).
fn big_head(len: usize) -> Vec<u8> {
    let mut h = b"GET /big HTTP/1.1\r\nHost: t\r\n".to_vec();
    let mut i = 0;
    while h.len() + 220 < len {
        h.extend_from_slice(format!("X-Field-{i:05}: {}\r\n", "v".repeat(190)).as_bytes());
        i += 1;
    }
    h.extend_from_slice(b"\r\n");
    h
}

fn plain_app() -> ServeMux {
    let mut m = ServeMux::new();
    m.handle("/", |r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "ok {}", r.header().len());
    });
    m
}

/// A head trickled in 1 KiB writes, each read by the server before the next is sent, is
/// examined about twice in all (once while its end is looked for, once parsed), not again
/// on every read: it used to be parsed whole on every read (256 KiB in 256 reads: 32 MiB
/// of parsing). Counted by the server's `head_bytes_scanned`, not timed.
#[test]
fn a_trickled_head_is_parsed_in_linear_work() {
    let _g = common::shared();
    let s = run(Server::builder().handler(plain_app()));
    let head = big_head(256 << 10);
    let fields = head.windows(2).filter(|w| w == b"\r\n").count() - 2;
    let base = s.handle.stats().head_bytes_scanned;
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    let mut sent = 0;
    for piece in head.chunks(1024) {
        w.write_all(piece).unwrap();
        sent += piece.len();
        // Wait (bounded) until the server has scanned this piece: one read per piece.
        wait_until(
            &format!("the server to scan {sent} bytes"),
            WATCHDOG,
            || s.handle.stats().head_bytes_scanned - base >= sent as u64,
        );
    }
    let resp = read_resp(&mut r).unwrap();
    assert_eq!((resp.status, resp.text()), (200, format!("ok {fields}")));
    let work = s.handle.stats().head_bytes_scanned - base;
    let n = head.len() as u64;
    assert!(work <= 2 * n, "{work} bytes examined for a head of {n}");
    s.stop();
}

/// The default limit on a head is Go's: `max_header_bytes` (1 MiB) plus 4 KiB of slack, so
/// a head of 1,052,672 bytes is served and one of 1,052,673 gets 431; a head whose request
/// line alone is over it gets 414.
#[test]
fn the_default_head_limit_is_one_mib_and_four_kib() {
    let _g = common::shared();
    let s = run(Server::builder().handler(plain_app()));
    let limit = (1 << 20) + 4096;
    let exactly = |len: usize| {
        let mut h = big_head(len - 300);
        let pad = len - h.len() - "X-Pad: \r\n".len();
        h.truncate(h.len() - 2);
        h.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "p".repeat(pad)).as_bytes());
        assert_eq!(h.len(), len);
        h
    };
    assert_eq!(roundtrip(s.addr, &exactly(limit)).status, 200);
    assert_eq!(roundtrip(s.addr, &exactly(limit + 1)).status, 431);
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(limit));
    assert_eq!(roundtrip(s.addr, long_line.as_bytes()).status, 414);
    s.stop();
}

/// A head is refused at its first bad line, before it ends, as Go's line reader does: a
/// client that sends a bad line and waits gets its 400 at once. Empty lines before the
/// request line are bounded.
#[test]
fn a_bad_head_line_is_refused_before_the_head_ends() {
    let _g = common::shared();
    let s = run(Server::builder().handler(plain_app()));
    for raw in [
        &b"GARBAGE\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n",
        b"GET /%zz HTTP/1.1\r\n",
    ] {
        // The head never ends, and the client keeps the connection open.
        assert_refused(s.addr, raw, 400);
    }
    // Empty lines before a request line: up to 4 bytes are skipped (RFC 9112 §2.2, as Go
    // after a POST), more are refused as Go refuses them.
    let mut raw = b"\r\n\r\n".to_vec();
    raw.extend_from_slice(&get("/"));
    assert_eq!(roundtrip(s.addr, &raw).status, 200);
    assert_refused(s.addr, b"\r\n\r\n\r\n", 400);
    s.stop();
}

/// The server's CPU time (user and system) in seconds, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The fields after the command's closing parenthesis: utime and stime are the 12th and
    // 13th of them.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// Measures the server CPU that 8 clients cost, each trickling a 1 MB request head in 1 KiB
/// writes 1 ms apart (`GOWAY_TRICKLE_PIECE` bytes, `GOWAY_TRICKLE_PAUSE_US` apart), then
/// reading the response: this test binary's `plain` child server,
/// or the server at `GOWAY_TRICKLE_ADDR` with process id `GOWAY_TRICKLE_PID` (a Go server,
/// say). A measurement, not a test: it prints the figure.
///
/// ```text
/// cargo test --release --test http_hostile -- --ignored --nocapture trickled_heads_server_cpu
/// ```
#[test]
#[ignore = "a measurement: prints the server CPU that trickled 1 MB heads cost"]
fn trickled_heads_server_cpu() {
    let _g = common::exclusive();
    let external = std::env::var("GOWAY_TRICKLE_ADDR")
        .ok()
        .zip(std::env::var("GOWAY_TRICKLE_PID").ok());
    let mut own = None;
    let (addr, pid): (SocketAddr, u32) = match external {
        Some((a, p)) => (
            a.parse().expect("GOWAY_TRICKLE_ADDR"),
            p.parse().expect("GOWAY_TRICKLE_PID"),
        ),
        None => {
            let srv = child("plain");
            let r = (srv.addr, srv.pid());
            own = Some(srv);
            r
        }
    };
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let piece = env("GOWAY_TRICKLE_PIECE", 1024) as usize;
    let pause = Duration::from_micros(env("GOWAY_TRICKLE_PAUSE_US", 1000));
    let head = std::sync::Arc::new(big_head(TRICKLE_HEAD));
    let before = cpu_seconds(pid);
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let head = head.clone();
            std::thread::spawn(move || {
                let mut c = client(addr);
                for piece in head.chunks(piece) {
                    c.write_all(piece).unwrap();
                    // Pacing, not synchronisation: the point is a slow client.
                    std::thread::sleep(pause);
                }
                read_resp(&mut BufReader::new(c)).map(|r| r.status)
            })
        })
        .collect();
    for c in clients {
        // A bounded wait: the client's own reads and writes time out.
        assert_eq!(c.join().expect("client thread"), Some(200));
    }
    let cpu = cpu_seconds(pid) - before;
    println!(
        "8 clients trickling {}-byte heads in {piece}-byte writes {pause:?} apart: server CPU {cpu:.2} s over {:.1} s",
        head.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(srv) = own {
        srv.kill_and_reap();
    }
}

// ---- the child servers ----------------------------------------------------------------------

/// Starts this test binary as the child server `spec` (see [`child_server`]).
fn child(spec: &str) -> hostile::ServerProcess {
    let exe = std::env::current_exe().expect("test binary path");
    hostile::ServerProcess::start(
        std::process::Command::new(exe)
            .args(["child_server", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, spec),
    )
}

/// The server process of the tests above; does nothing unless [`CHILD_ENV`] is set.
#[test]
#[ignore = "the server process of other tests: does nothing unless GOWAY_HTTP_HOSTILE_CHILD is set"]
fn child_server() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mux: ServeMux = match spec.as_str() {
        #[cfg(feature = "json")]
        "json" => deep_json::app(),
        "plain" => {
            let mut m = ServeMux::new();
            m.handle("/", |_r: &Request, w: &mut ResponseWriter| {
                let _ = w.write_all(b"ok");
            });
            m
        }
        _ => panic!("{CHILD_ENV}={spec:?}: unknown server"),
    };
    // The default configuration: the default stack size is the point.
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .handler(mux)
        .bind()
        .expect("bind");
    println!(
        "listening on {}",
        server.local_addr().expect("a TCP address")
    );
    let r = server.serve();
    panic!("serve returned: {r:?}");
}
