//! goway::http over raw TCP on loopback: requests, keep-alive, pipelining, HTTP/1.0, the
//! mux, bodies, streaming, Go's replies to bad input, handler panics, timeouts, limits and
//! shutdown (the HTTP rows S1, S2, S3, S6, S7, S9 and S10 of docs/reliability.md). Each test
//! stops its server and checks that the connection gauge is back at zero.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::http_server::Running;
use common::{WATCHDOG, client, wait_until};
use goway::http::{Builder, Request, ResponseWriter, ServeError, ServeMux, Server, ShutdownError};

// ---- a logger that keeps the lines, to check the panic log ------------------------------

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("goway::http")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn logs() -> &'static Capture {
    static L: OnceLock<&'static Capture> = OnceLock::new();
    L.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Debug);
        c
    })
}

// ---- server and client helpers ----------------------------------------------------------

fn run(b: Builder) -> Running {
    logs();
    common::http_server::run(b)
}

#[derive(Debug)]
struct Resp {
    status: u16,
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

/// Reads one response (Content-Length, chunked, or to EOF); `None` at EOF before it.
fn read_resp(r: &mut impl BufRead, head_req: bool) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
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
        headers,
        body: Vec::new(),
    };
    if head_req || status == 204 || status == 304 || status < 200 {
        return Some(resp);
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).ok()?;
            let n = usize::from_str_radix(l.trim().split(';').next()?, 16).ok()?;
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
    read_resp(&mut BufReader::new(c), raw.starts_with(b"HEAD")).expect("a response")
}

/// `true` if the peer closed: EOF or a reset, within the read timeout.
fn closed(r: &mut impl Read) -> bool {
    let mut b = [0u8; 1];
    matches!(r.read(&mut b), Ok(0) | Err(_)) && !matches!(r.read(&mut b), Ok(n) if n > 0)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// A mux with the routes the tests use.
fn app() -> ServeMux {
    let mut m = ServeMux::new();
    m.handle("GET /hello", |_r: &Request, w: &mut ResponseWriter| {
        w.header().set("Content-Type", "text/plain");
        let _ = w.write_all(b"Hello, World!");
    });
    m.handle("GET /items/{id}", |r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "get {}", r.path_value("id").unwrap());
    });
    m.handle("GET /items/new", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"new form");
    });
    m.handle(
        "DELETE /items/{id}",
        |r: &Request, w: &mut ResponseWriter| {
            let _ = write!(w, "deleted {}", r.path_value("id").unwrap());
        },
    );
    m.handle("/files/{path...}", |r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "file {}", r.path_value("path").unwrap());
    });
    m.handle("GET /{$}", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"root");
    });
    m.handle("/dir/", |r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "dir {}", r.path());
    });
    m.handle("GET /query", |r: &Request, w: &mut ResponseWriter| {
        let q = r.query();
        let _ = write!(
            w,
            "a={:?} b={:?} n={}",
            q.get("a"),
            r.query_value("b").as_deref(),
            q.get_all("a").count()
        );
    });
    m.handle(
        "POST /echo",
        |r: &Request, w: &mut ResponseWriter| match r.read_body() {
            Ok(b) => {
                let _ = w.write_all(&b);
            }
            Err(e) => goway::http::error(w, &e.to_string(), 400),
        },
    );
    m.handle("POST /ignore", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"ignored");
    });
    m.handle("GET /panic", |_r: &Request, _w: &mut ResponseWriter| {
        panic!("boom");
    });
    m.handle("GET /stream", |_r: &Request, w: &mut ResponseWriter| {
        for i in 0..3 {
            let _ = write!(w, "part{i};");
            let _ = w.flush();
        }
    });
    m.handle("GET /big", |r: &Request, w: &mut ResponseWriter| {
        if r.query_value("len").is_some() {
            w.header().set("Content-Length", "100000");
        }
        let _ = w.write_all(&vec![b'x'; 100_000]);
    });
    m.handle("GET /nocontent", |_r: &Request, w: &mut ResponseWriter| {
        w.write_header(204);
        w.write_header(500); // superfluous: ignored
        assert!(w.write_all(b"x").is_err());
    });
    m.handle("GET /headers", |r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "{}", r.header().len());
    });
    m
}

// ---- basics -------------------------------------------------------------------------------

#[test]
fn get_keep_alive_and_pipelining() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(&get("/hello")).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), "Hello, World!");
    assert_eq!(a.header("content-type"), Some("text/plain"));
    assert_eq!(a.header("content-length"), Some("13"));
    assert!(
        a.header("date")
            .is_some_and(|d| d.ends_with(" GMT") && d.len() == 29)
    );
    assert_eq!(a.header("connection"), None);
    // Three pipelined requests in one write: three responses, in order.
    let mut raw = get("/items/1");
    raw.extend(get("/items/new"));
    raw.extend(b"DELETE /items/2 HTTP/1.1\r\nHost: t\r\n\r\n");
    w.write_all(&raw).unwrap();
    let texts: Vec<String> = (0..3)
        .map(|_| read_resp(&mut r, false).unwrap().text())
        .collect();
    assert_eq!(texts, ["get 1", "new form", "deleted 2"]);
    // Connection: close is honoured.
    w.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_resp(&mut r, false).unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    assert!(closed(&mut r));
    s.stop();
}

#[test]
fn http10_closes_unless_keep_alive() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let mut c = client(s.addr);
    c.write_all(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
    let mut r = BufReader::new(c);
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "Hello, World!"));
    assert_eq!(a.header("connection"), Some("close"));
    assert!(closed(&mut r));

    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    for _ in 0..2 {
        w.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let a = read_resp(&mut r, false).unwrap();
        assert_eq!(a.header("connection"), Some("keep-alive"));
        assert_eq!(a.text(), "Hello, World!");
    }
    // A streamed response to HTTP/1.0 cannot be chunked: it ends with the connection.
    w.write_all(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.header("connection"), Some("close"));
    assert_eq!(a.text(), "part0;part1;part2;");
    s.stop();
}

#[test]
fn head_gets_the_length_and_no_body() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let a = read_resp(&mut r, true).unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("13"));
    // No body was sent: the next response follows at once.
    w.write_all(&get("/items/9")).unwrap();
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "get 9");
    s.stop();
}

#[test]
fn mux_patterns_405_404_and_redirects() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let a = s.addr;
    assert_eq!(roundtrip(a, &get("/items/42")).text(), "get 42");
    assert_eq!(roundtrip(a, &get("/items/new")).text(), "new form");
    assert_eq!(roundtrip(a, &get("/items/a%20b")).text(), "get a b");
    assert_eq!(
        roundtrip(a, &get("/files/a/b/c.txt")).text(),
        "file a/b/c.txt"
    );
    assert_eq!(roundtrip(a, &get("/")).text(), "root");
    assert_eq!(roundtrip(a, &get("/dir/x/y")).text(), "dir /dir/x/y");
    let r = roundtrip(
        a,
        b"PUT /items/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("DELETE, GET, HEAD"));
    let r = roundtrip(a, &get("/nothing/here"));
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found\n"));
    let r = roundtrip(a, &get("/dir"));
    assert_eq!((r.status, r.header("location")), (301, Some("/dir/")));
    let r = roundtrip(a, &get("/items/../hello?x=1"));
    assert_eq!((r.status, r.header("location")), (301, Some("/hello?x=1")));
    let r = roundtrip(a, &get("/query?a=1&b=x+y%21&a=2"));
    assert_eq!(r.text(), "a=Some(\"1\") b=Some(\"x y!\") n=2");
    let r = roundtrip(a, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    s.stop();
}

#[test]
fn many_headers_are_fine() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let mut raw = String::from("GET /headers HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        raw.push_str(&format!("X-Header-{i}: value {i}\r\n"));
    }
    raw.push_str("\r\n");
    let r = roundtrip(s.addr, raw.as_bytes());
    assert_eq!((r.status, r.text().as_str()), (200, "101"));
    s.stop();
}

// ---- bodies -------------------------------------------------------------------------------

#[test]
fn bodies_content_length_chunked_and_continue() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let r = roundtrip(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r.text(), "hello world");
    let r = roundtrip(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
    );
    assert_eq!(r.text(), "hello world");
    // Expect: 100-continue: the body is sent after the interim response.
    let c = client(s.addr);
    let mut rd = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    let interim = read_resp(&mut rd, false).unwrap();
    assert_eq!(interim.status, 100);
    w.write_all(b"data").unwrap();
    assert_eq!(read_resp(&mut rd, false).unwrap().text(), "data");
    // A malformed chunked body: 400 from the handler, then the connection closes.
    let mut c = client(s.addr);
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .unwrap();
    let mut rd = BufReader::new(c);
    let r = read_resp(&mut rd, false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed(&mut rd));
    s.stop();
}

#[test]
fn unread_body_is_drained_or_the_connection_closes() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()).max_body_bytes(64 << 20));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    // A small unread body is discarded: the next request is parsed where it starts.
    let mut raw = b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 29\r\n\r\nGET /items/666 HTTP/1.1\r\n\r\n..".to_vec();
    raw.extend(get("/items/7"));
    w.write_all(&raw).unwrap();
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "ignored");
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "get 7");
    // Chunked, unread: drained too.
    w.write_all(b"POST /ignore HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .unwrap();
    w.write_all(&get("/items/8")).unwrap();
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "ignored");
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "get 8");
    // A large unread body (over 256 KiB): the response closes the connection.
    let head = format!(
        "POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        4 << 20
    );
    w.write_all(head.as_bytes()).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.text(), "ignored");
    assert_eq!(a.header("connection"), Some("close"));
    assert!(closed(&mut r));
    s.stop();
}

#[test]
fn body_over_the_limit_gets_413() {
    let _g = common::shared();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let mut m = ServeMux::new();
    m.handle("POST /up", move |r: &Request, w: &mut ResponseWriter| {
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = r.read_body(); // fails over the limit; the server answers 413
        let _ = w;
    });
    let s = run(Server::builder().handler(m).max_body_bytes(1000));
    // Declared too large: 413 before the handler, and the client cannot push megabytes.
    let mut c = client(s.addr);
    c.write_all(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n")
        .unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let block = vec![b'a'; 64 << 10];
            let mut sent = 0usize;
            while sent < 64 << 20 {
                match c.write(&block) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        })
    };
    let mut rd = BufReader::new(c);
    let r = read_resp(&mut rd, false).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed(&mut rd));
    let sent = common::join_thread(writer);
    assert!(sent < 32 << 20, "the client pushed {sent} bytes");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Chunked and growing over the limit: the handler's read fails, the reply is 413.
    let mut raw = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend(b"200\r\n");
        raw.extend(vec![b'b'; 512]);
        raw.extend(b"\r\n");
    }
    let mut c = client(s.addr);
    c.write_all(&raw).unwrap();
    let mut rd = BufReader::new(c);
    let r = read_resp(&mut rd, false).unwrap();
    assert_eq!(r.status, 413);
    assert!(closed(&mut rd));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    s.stop();
}

// ---- responses ----------------------------------------------------------------------------

#[test]
fn streaming_and_large_responses() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(&get("/stream")).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.header("transfer-encoding"), Some("chunked"));
    assert_eq!(a.text(), "part0;part1;part2;");
    w.write_all(&get("/big")).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.header("transfer-encoding"), Some("chunked"));
    assert_eq!(a.body.len(), 100_000);
    w.write_all(&get("/big?len=1")).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.header("content-length"), Some("100000"));
    assert_eq!(a.body.len(), 100_000);
    w.write_all(&get("/nocontent")).unwrap();
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!((a.status, a.header("content-length")), (204, None));
    // Still in sync.
    w.write_all(&get("/items/5")).unwrap();
    assert_eq!(read_resp(&mut r, false).unwrap().text(), "get 5");
    s.stop();
}

// ---- S1: malformed requests ----------------------------------------------------------------

#[test]
fn s1_malformed_requests_get_go_replies_and_close() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let cases: &[(&[u8], u16)] = &[
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n", 400),
        (b"GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
    ];
    for (raw, want) in cases {
        let mut c = client(s.addr);
        c.write_all(raw).unwrap();
        let mut r = BufReader::new(c);
        let resp = read_resp(&mut r, false)
            .unwrap_or_else(|| panic!("no reply to {:?}", String::from_utf8_lossy(raw)));
        assert_eq!(resp.status, *want, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(resp.text().starts_with(&want.to_string()));
        assert!(
            closed(&mut r),
            "still open after {:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // The server still serves.
    assert_eq!(roundtrip(s.addr, &get("/hello")).status, 200);
    s.stop();
}

// ---- S2: oversized heads ------------------------------------------------------------------

#[test]
fn s2_oversized_heads_get_431_or_414() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()).max_header_bytes(1024));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "v".repeat(8000)
    );
    let r = roundtrip(s.addr, big.as_bytes());
    assert_eq!((r.status, r.header("connection")), (431, Some("close")));
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(8000));
    assert_eq!(roundtrip(s.addr, long.as_bytes()).status, 414);
    // A client that never ends its head is cut off well before it sends 64 MiB.
    let mut c = client(s.addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Endless: ")
        .unwrap();
    let writer = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let block = vec![b'z'; 64 << 10];
            let mut sent = 0usize;
            while sent < 64 << 20 {
                match c.write(&block) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            sent
        })
    };
    let mut rd = BufReader::new(c);
    let r = read_resp(&mut rd, false).unwrap();
    assert_eq!(r.status, 431);
    let sent = common::join_thread(writer);
    assert!(sent < 32 << 20, "the client pushed {sent} bytes");
    assert_eq!(roundtrip(s.addr, &get("/hello")).status, 200);
    s.stop();
}

// ---- S3: truncated requests -----------------------------------------------------------------

#[test]
fn s3_truncated_requests_then_disconnect() {
    let _g = common::shared();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let s = run(
        Server::builder().handler(move |_r: &Request, _w: &mut ResponseWriter| {
            seen.fetch_add(1, Ordering::SeqCst);
        }),
    );
    for i in 0..200 {
        let mut c = client(s.addr);
        let raw: &[u8] = match i % 3 {
            0 => b"GET / HT",
            1 => b"GET / HTTP/1.1\r\nHost: t\r\nX-Half",
            _ => b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
        };
        c.write_all(raw).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        if i % 3 == 2 {
            // The body was cut: the handler ran, the connection closes.
            let mut r = BufReader::new(c);
            let _ = read_resp(&mut r, false);
            assert!(closed(&mut r));
        } else {
            let mut b = Vec::new();
            let _ = c.read_to_end(&mut b);
            assert!(
                b.is_empty(),
                "a reply to a truncated head: {:?}",
                String::from_utf8_lossy(&b)
            );
        }
    }
    common::wait_for("every connection closed", WATCHDOG, || {
        let st = s.handle.stats();
        if st.active == 0 {
            Ok(())
        } else {
            Err(format!("{st:?}"))
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 66);
    s.stop();
}

// ---- S6: slowloris and idle connections ---------------------------------------------------

#[test]
fn s6_slowloris_is_cut_by_read_header_timeout_and_idle_conns_close() {
    let _g = common::shared();
    let s = run(Server::builder()
        .handler(app())
        .read_header_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_millis(400)));
    let start = Instant::now();
    let mut slow: Vec<TcpStream> = (0..20).map(|_| client(s.addr)).collect();
    let req = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: 1\r\n\r\n";
    // Trickle one byte per connection every 50 ms until the server hangs up.
    let mut open = vec![true; slow.len()];
    let mut i = 0;
    while open.iter().any(|&o| o) && start.elapsed() < Duration::from_secs(5) {
        for (k, c) in slow.iter_mut().enumerate() {
            if open[k] && c.write_all(&req[i % req.len()..i % req.len() + 1]).is_err() {
                open[k] = false;
            }
        }
        i += 1;
        // A normal client is served meanwhile.
        if i == 3 {
            assert_eq!(roundtrip(s.addr, &get("/hello")).status, 200);
        }
        goway::time::sleep(Duration::from_millis(50));
        if i > 20 {
            break;
        }
    }
    for c in &mut slow {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = Vec::new();
        let _ = c.read_to_end(&mut b);
        assert!(b.is_empty(), "slowloris got a reply");
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Idle: a keep-alive connection closes after idle_timeout; a shorter pause is fine.
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut w = c;
    w.write_all(&get("/hello")).unwrap();
    read_resp(&mut r, false).unwrap();
    goway::time::sleep(Duration::from_millis(100));
    w.write_all(&get("/hello")).unwrap();
    read_resp(&mut r, false).unwrap();
    let idle = Instant::now();
    assert!(closed(&mut r));
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    s.stop();
}

#[test]
fn read_timeout_stops_a_stalled_body_and_the_pipelined_request_is_not_served() {
    let _g = common::shared();
    let s = run(Server::builder()
        .handler(app())
        .read_timeout(Duration::from_millis(300)));
    let mut c = client(s.addr);
    // The body never completes; a request after it must not be served.
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    let mut r = BufReader::new(c);
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!(a.status, 400);
    assert!(a.text().contains("timeout"), "{}", a.text());
    assert!(closed(&mut r));
    s.stop();
}

// ---- S7: too many connections --------------------------------------------------------------

#[test]
fn s7_over_max_connections_gets_503() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()).max_connections(4));
    let mut held = Vec::new();
    for _ in 0..4 {
        let c = client(s.addr);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        w.write_all(&get("/hello")).unwrap();
        assert_eq!(read_resp(&mut r, false).unwrap().status, 200);
        held.push((w, r));
    }
    for _ in 0..6 {
        let mut c = client(s.addr);
        c.write_all(&get("/hello")).unwrap();
        let mut r = BufReader::new(c);
        let a = read_resp(&mut r, false).expect("a 503");
        assert_eq!((a.status, a.header("connection")), (503, Some("close")));
        assert!(closed(&mut r));
    }
    assert_eq!(s.handle.stats().rejected, 6);
    // Close two; two new clients are served.
    held.truncate(2);
    wait_until("two connections closed", WATCHDOG, || {
        s.handle.stats().active <= 2
    });
    for _ in 0..2 {
        assert_eq!(roundtrip(s.addr, &get("/hello")).status, 200);
    }
    drop(held);
    s.stop();
}

// ---- S9: handler panics ----------------------------------------------------------------------

#[test]
fn s9_handler_panic_gives_500_a_log_line_and_the_server_goes_on() {
    let _g = common::shared();
    let s = run(Server::builder().handler(app()));
    let mut c = client(s.addr);
    c.write_all(&get("/panic")).unwrap();
    let mut r = BufReader::new(c);
    let a = read_resp(&mut r, false).unwrap();
    assert_eq!((a.status, a.header("connection")), (500, Some("close")));
    assert!(closed(&mut r));
    let addr_line = logs()
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("http: panic serving 127.0.0.1:") && l.ends_with(": boom"));
    assert!(addr_line, "no panic log line");
    // 20 clients × 30 requests, every tenth a panic: every other request is served.
    let addr = s.addr;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut served = 0;
                let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
                for i in 0..30 {
                    let (w, r) = conn.get_or_insert_with(|| {
                        let c = client(addr);
                        (c.try_clone().unwrap(), BufReader::new(c))
                    });
                    let path = if i % 10 == 9 { "/panic" } else { "/hello" };
                    w.write_all(&get(path)).unwrap();
                    let a = read_resp(r, false).expect("a response");
                    if path == "/panic" {
                        assert_eq!(a.status, 500);
                        conn = None;
                    } else {
                        assert_eq!(a.status, 200);
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    let served: usize = clients.into_iter().map(common::join_thread).sum();
    assert_eq!(served, 20 * 27);
    s.stop();
}

// ---- S10: graceful shutdown ------------------------------------------------------------------

#[test]
fn s10_shutdown_finishes_in_flight_closes_idle_and_refuses_new() {
    let _g = common::shared();
    let (started_tx, started_rx) = goway::chan::bounded::<()>(64);
    let mut m = ServeMux::new();
    m.handle("GET /slow", move |_r: &Request, w: &mut ResponseWriter| {
        let _ = started_tx.send(());
        goway::time::sleep(Duration::from_millis(300));
        let _ = w.write_all(b"done");
    });
    m.handle("GET /fast", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"ok");
    });
    let s = run(Server::builder().handler(m));
    // 10 idle keep-alive connections.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let c = client(s.addr);
        let mut w = c.try_clone().unwrap();
        let mut r = BufReader::new(c);
        w.write_all(&get("/fast")).unwrap();
        assert_eq!(read_resp(&mut r, false).unwrap().text(), "ok");
        idle.push(r);
    }
    // 10 requests in flight.
    let busy: Vec<_> = (0..10)
        .map(|_| {
            let mut c = client(s.addr);
            c.write_all(&get("/slow")).unwrap();
            c
        })
        .collect();
    for _ in 0..10 {
        started_rx.recv_timeout(WATCHDOG).expect("handler started");
    }
    let t = Instant::now();
    let h = s.handle.clone();
    let stopping = std::thread::spawn(move || h.shutdown_timeout(Duration::from_secs(5)));
    for c in busy {
        let mut r = BufReader::new(c);
        let a = read_resp(&mut r, false).expect("in-flight response");
        assert_eq!(
            (a.text().as_str(), a.header("connection")),
            ("done", Some("close"))
        );
        assert!(closed(&mut r));
    }
    for mut r in idle {
        assert!(closed(&mut r));
    }
    // Every connection open when the shutdown started closed gracefully.
    let report = common::join_thread(stopping).expect("graceful shutdown");
    assert_eq!(report.drained, 20);
    assert_eq!(s.handle.wait_shutdown(Duration::ZERO), Some(Ok(report)));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(TcpStream::connect(s.addr).is_err(), "still accepting");
    s.stop();
}

#[test]
fn s10_shutdown_grace_over_cuts_off_and_context_stops_the_server() {
    let _g = common::shared();
    let (started_tx, started_rx) = goway::chan::bounded::<()>(1);
    let (cancelled_tx, cancelled_rx) = goway::chan::bounded::<bool>(1);
    let mut m = ServeMux::new();
    m.handle("GET /stuck", move |r: &Request, _w: &mut ResponseWriter| {
        let _ = started_tx.send(());
        // Waits for the request's context: cancelled when the grace period ends.
        let done = r.context().done().recv_timeout(Duration::from_secs(5));
        let _ = cancelled_tx.send(!matches!(done, Err(goway::chan::RecvTimeoutError::Timeout)));
    });
    let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .handler(m)
        .shutdown_grace(Duration::from_millis(200))
        .context(&ctx)
        .bind()
        .unwrap();
    let (addr, handle) = (srv.local_addr().unwrap(), srv.handle());
    let serving = goway::go!(move || srv.serve());
    let mut c = client(addr);
    c.write_all(&get("/stuck")).unwrap();
    started_rx.recv_timeout(WATCHDOG).unwrap();
    let r = handle.shutdown_timeout(Duration::from_millis(200));
    assert_eq!(r, Err(ShutdownError::Timeout { cut_off: 1 }));
    assert_eq!(handle.wait_shutdown(Duration::ZERO), Some(r));
    assert_eq!(
        cancelled_rx.recv_timeout(WATCHDOG),
        Ok(true),
        "context not cancelled"
    );
    assert!(matches!(
        common::join(serving),
        Err(ServeError::ServerClosed)
    ));
    assert!(handle.wait_closed(WATCHDOG));
    drop(c);

    // A cancelled base context shuts a server down.
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .handler(app())
        .context(&ctx)
        .bind()
        .unwrap();
    let handle = srv.handle();
    let serving = goway::go!(move || srv.serve());
    assert_eq!(
        handle.wait_shutdown(Duration::ZERO),
        None,
        "shut down too early"
    );
    cancel.cancel();
    // A shutdown started by the context reports to `wait_shutdown`.
    let outcome = handle
        .wait_shutdown(WATCHDOG)
        .expect("the context shut the server down");
    assert_eq!(outcome.map(|r| r.drained), Ok(0));
    assert!(matches!(
        common::join(serving),
        Err(ServeError::ServerClosed)
    ));
}

#[cfg(feature = "json")]
#[test]
fn read_json_parses_the_body_and_write_json_replies_with_its_content_type() {
    let _g = common::shared();
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Item {
        name: String,
        n: u32,
    }
    let mut m = ServeMux::new();
    m.handle(
        "POST /items",
        |r: &Request, w: &mut ResponseWriter| match goway::http::read_json::<Item>(r) {
            Ok(mut it) => {
                it.n += 1;
                goway::http::write_json(w, 201, &it);
            }
            Err(e) => goway::http::error(w, &e.to_string(), e.status()),
        },
    );
    let s = run(Server::builder().handler(m));
    let body = r#"{"name":"a","n":1}"#;
    let raw = format!(
        "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = roundtrip(s.addr, raw.as_bytes());
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"name":"a","n":2}"#);
    let r = roundtrip(
        s.addr,
        b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n{x}",
    );
    assert_eq!(r.status, 400);
    s.stop();
}

#[test]
fn write_timeout_fails_the_writes_to_a_client_that_does_not_read() {
    let _g = common::shared();
    let (res_tx, res_rx) = goway::chan::bounded::<(bool, Duration)>(1);
    let mut m = ServeMux::new();
    m.handle("GET /flood", move |_r: &Request, w: &mut ResponseWriter| {
        let t = Instant::now();
        let block = vec![b'f'; 64 << 10];
        let mut failed = false;
        for _ in 0..1024 {
            if w.write_all(&block).is_err() {
                failed = true;
                break;
            }
        }
        let _ = res_tx.send((failed, t.elapsed()));
    });
    let s = run(Server::builder()
        .handler(m)
        .write_timeout(Duration::from_millis(300)));
    let mut c = client(s.addr);
    c.write_all(&get("/flood")).unwrap();
    // Never read: the socket buffers fill and the server's writes stall.
    let (failed, took) = res_rx.recv_timeout(WATCHDOG).expect("handler finished");
    assert!(failed, "64 MiB written to a client that reads nothing");
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(c);
    s.stop();
}

#[test]
fn debug_goroutine_page_serves_the_runtime_dump() {
    let _g = common::shared();
    let mut mux = app();
    goway::http::debug::register(&mut mux);
    let s = run(Server::builder().handler(mux));
    let r = roundtrip(s.addr, &get(goway::http::debug::GOROUTINE_PATH));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let body = String::from_utf8(r.body).unwrap();
    assert!(!body.is_empty());
    // With the registry on (GOWAY_REGISTRY=1), the page lists this server's goroutines.
    if std::env::var("GOWAY_REGISTRY").as_deref() == Ok("1") {
        assert!(body.contains("goroutine"), "{body}");
    }
    s.stop();
}
