//! goway::http against hostile clients, over real sockets on loopback: request targets and
//! versions Go refuses or accepts, 1xx responses that must not end the exchange, deep JSON
//! that must not overflow a handler's stack, chunked bodies made mostly of framing, and
//! request heads trickled in small pieces. Each case checks that the server answers as Go
//! does and still serves a well-behaved request afterwards; each test stops its server and
//! checks that every connection was released.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use goway::http::{Builder, Request, ResponseWriter, ServeError, Server, ServerHandle};
use goway::runtime::JoinHandle;

/// Bound of every client read and of the server's shutdown.
const LIMIT: Duration = Duration::from_secs(10);

// ---- server and client helpers ----------------------------------------------------------

struct Running {
    handle: ServerHandle,
    addr: SocketAddr,
    serving: JoinHandle<Result<(), ServeError>>,
}

fn run(b: Builder) -> Running {
    let srv = b.addr("127.0.0.1:0").bind().expect("bind");
    let handle = srv.handle();
    let addr = srv.local_addr();
    let serving = goway::go!(move || srv.serve());
    Running {
        handle,
        addr,
        serving,
    }
}

impl Running {
    fn stop(self) {
        self.handle
            .shutdown_timeout(Duration::from_secs(5))
            .expect("graceful shutdown");
        let r = common::join(self.serving);
        assert!(matches!(r, Err(ServeError::ServerClosed)), "{r:?}");
        assert!(self.handle.wait_closed(LIMIT), "connections still open");
        assert_eq!(self.handle.stats().active, 0);
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.set_write_timeout(Some(LIMIT)).unwrap();
    c
}

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
