//! `goway::http::Client` over real loopback sockets: against goway's own server, against
//! scripted servers that misbehave on purpose (raw goway listeners), and against a real Go
//! `net/http` server (tests/go/httpserver, built into the target directory when `go` is on
//! PATH; the Go tests are skipped with a message otherwise).
//!
//! Run: `cargo test --release --test http_client`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goway::chan;
use goway::context;
use goway::go;
use goway::http::{
    Client, ClientError, ClientRequest, RedirectPolicy, Request, RequestBody, ResponseWriter,
    ServeMux, Server, Transport, TransportConfig,
};
use goway::net::{TcpListener, TcpStream};

mod common;
use common::{WATCHDOG, http_server, join};

// ---------------------------------------------------------------------------------------
// Servers

/// goway's server with `mux`.
fn goway_server(mux: ServeMux) -> http_server::Running {
    http_server::run(Server::builder().handler(mux))
}

fn echo(r: &Request, w: &mut ResponseWriter) {
    let te = r.header().get("Transfer-Encoding").unwrap_or("").to_owned();
    let cl = r.header().get("Content-Length").unwrap_or("").to_owned();
    let body = r.read_body().unwrap_or_default();
    w.header().set("X-Req-TE", &te);
    w.header().set("X-Req-CL", &cl);
    w.header().set("X-Method", r.method());
    let _ = w.write_all(&body);
}

fn test_mux() -> ServeMux {
    let mut mux = ServeMux::new();
    mux.handle("/hello", |_r: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"hello");
    });
    mux.handle("/echo", echo);
    mux.handle("GET /r/{n}", |r: &Request, w: &mut ResponseWriter| {
        let n: u32 = r.path_value("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        if n == 0 {
            let _ = w.write_all(b"done");
        } else {
            goway::http::redirect(r, w, &format!("/r/{}", n - 1), 302);
        }
    });
    mux.handle("/loop", |r: &Request, w: &mut ResponseWriter| {
        goway::http::redirect(r, w, "/loop", 302);
    });
    mux.handle("/see-other", |r: &Request, w: &mut ResponseWriter| {
        goway::http::redirect(r, w, "/echo", 303);
    });
    mux.handle("/temporary", |r: &Request, w: &mut ResponseWriter| {
        goway::http::redirect(r, w, "/echo", 307);
    });
    mux.handle("/chunks", |_r: &Request, w: &mut ResponseWriter| {
        for i in 0..5 {
            let _ = writeln!(w, "piece {i}");
            let _ = w.flush();
        }
    });
    mux.handle("/auth", |r: &Request, w: &mut ResponseWriter| {
        let a = r.header().get("Authorization").unwrap_or("none").to_owned();
        let _ = w.write_all(a.as_bytes());
    });
    mux.handle("/nocontent", |_r: &Request, w: &mut ResponseWriter| {
        w.write_header(204);
    });
    mux
}

/// A raw listener whose connections run `script` (each in its goroutine, with its index):
/// for servers that misbehave.
struct Raw {
    addr: SocketAddr,
    ln: Arc<TcpListener>,
    accepted: Arc<AtomicUsize>,
    acceptor: goway::JoinHandle<Vec<goway::JoinHandle<()>>>,
}

impl Raw {
    fn start(script: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> Raw {
        let ln = Arc::new(TcpListener::bind("127.0.0.1:0").expect("bind"));
        let addr = ln.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let acceptor = {
            let (ln, accepted) = (ln.clone(), accepted.clone());
            go!(move || {
                let mut conns = Vec::new();
                while let Ok((s, _)) = ln.accept() {
                    let i = accepted.fetch_add(1, Ordering::SeqCst);
                    let script = script.clone();
                    conns.push(go!(move || script(i, s)));
                }
                conns
            })
        };
        Raw {
            addr,
            ln,
            accepted,
            acceptor,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting and waits for every connection's script to end.
    fn stop(self) {
        let _ = self.ln.close();
        for h in join(self.acceptor) {
            join(h);
        }
    }
}

/// Reads one request head (through its blank line) and returns it.
fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads until the peer closes or fails (the client gave up).
fn until_closed(s: &mut TcpStream) {
    let mut b = [0u8; 1024];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    join(go!(f))
}

// ---------------------------------------------------------------------------------------
// Against goway's server

#[test]
fn keep_alive_reuses_one_connection() {
    let srv = goway_server(test_mux());
    let url = format!("http://{}/hello", srv.addr);
    let client = Client::new();
    let c = client.clone();
    run(move || {
        for _ in 0..20 {
            let resp = c.get(&url).expect("get");
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.text().unwrap(), "hello");
        }
    });
    assert_eq!(
        srv.handle.stats().accepted,
        1,
        "20 sequential requests, 1 connection"
    );
    let st = client.transport().stats();
    assert_eq!((st.dials, st.reused, st.idle), (1, 19, 1));
    client.transport().close_idle_connections();
    srv.stop();
}

#[test]
fn pool_keeps_at_most_max_idle_per_host() {
    let srv = goway_server(test_mux());
    let url = format!("http://{}/hello", srv.addr);
    let t = Transport::new(TransportConfig {
        max_idle_conns_per_host: 2,
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(t.clone());
    run(move || {
        // Five responses held unread: five connections.
        let held: Vec<_> = (0..5).map(|_| client.get(&url).expect("get")).collect();
        for r in held {
            assert_eq!(r.text().unwrap(), "hello");
        }
        assert_eq!(client.transport().stats().idle, 2);
        for _ in 0..4 {
            client.get(&url).unwrap().text().unwrap();
        }
    });
    let st = t.stats();
    assert_eq!((st.dials, st.idle), (5, 2), "{st:?}");
    t.close_idle_connections();
    assert_eq!(t.stats().idle, 0);
    srv.stop();
}

#[test]
fn pool_keeps_at_most_max_idle_in_total() {
    let (a, b) = (goway_server(test_mux()), goway_server(test_mux()));
    let (ua, ub) = (
        format!("http://{}/hello", a.addr),
        format!("http://{}/hello", b.addr),
    );
    let t = Transport::new(TransportConfig {
        max_idle_conns: 1,
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(t.clone());
    run(move || {
        client.get(&ua).unwrap().text().unwrap();
        client.get(&ub).unwrap().text().unwrap();
        // B's connection evicted A's: A dials again.
        assert_eq!(client.transport().stats().idle, 1);
        client.get(&ua).unwrap().text().unwrap();
    });
    let st = t.stats();
    assert_eq!((st.dials, st.reused, st.idle), (3, 0, 1), "{st:?}");
    t.close_idle_connections();
    a.stop();
    b.stop();
}

#[test]
fn bodies_chunked_both_ways() {
    let srv = goway_server(test_mux());
    let base = format!("http://{}", srv.addr);
    run(move || {
        let client = Client::new();
        // A reader of unknown length goes out chunked.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let req = ClientRequest::new("POST", &format!("{base}/echo"))
            .unwrap()
            .with_body(RequestBody::from_reader(std::io::Cursor::new(data.clone())));
        let resp = client.send(req).unwrap();
        assert_eq!(resp.header().get("X-Req-TE"), Some("chunked"));
        let got = resp.bytes().unwrap();
        assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
        // A reader of known length goes out with Content-Length.
        let req = ClientRequest::new("PUT", &format!("{base}/echo"))
            .unwrap()
            .with_body(RequestBody::from_reader_len(&b"abcdef"[..], 6));
        let resp = client.send(req).unwrap();
        assert_eq!(resp.header().get("X-Req-CL"), Some("6"));
        assert_eq!(resp.text().unwrap(), "abcdef");
        // A reader shorter than declared fails the request.
        let req = ClientRequest::new("PUT", &format!("{base}/echo"))
            .unwrap()
            .with_body(RequestBody::from_reader_len(&b"abc"[..], 6));
        let err = client.send(req).unwrap_err();
        assert!(
            matches!(err, ClientError::BodyLength { declared: 6, .. }),
            "{err}"
        );
        // A chunked response, streamed.
        let resp = client.get(&format!("{base}/chunks")).unwrap();
        assert_eq!(resp.header().get("Transfer-Encoding"), Some("chunked"));
        assert_eq!(resp.content_length(), None);
        let text = resp.text().unwrap();
        assert_eq!(text.lines().count(), 5);
        // 204 and HEAD have no body.
        let resp = client.get(&format!("{base}/nocontent")).unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        assert_eq!(resp.text().unwrap(), "");
        let resp = client.head(&format!("{base}/hello")).unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().unwrap(), "");
    });
    srv.stop();
}

#[test]
fn redirects_follow_gos_rules() {
    let srv = goway_server(test_mux());
    let base = format!("http://{}", srv.addr);
    run(move || {
        let client = Client::new();
        // A chain of 3.
        let resp = client.get(&format!("{base}/r/3")).unwrap();
        assert_eq!(resp.url().path(), "/r/0");
        assert_eq!(resp.text().unwrap(), "done");
        // A loop: the 10th redirect fails, with Go's text.
        let err = client.get(&format!("{base}/loop")).unwrap_err();
        assert!(matches!(err, ClientError::TooManyRedirects(10)), "{err}");
        assert_eq!(err.to_string(), "stopped after 10 redirects");
        // 303 turns a POST into a GET without body.
        let resp = client
            .post(&format!("{base}/see-other"), "text/plain", "payload")
            .unwrap();
        assert_eq!(resp.header().get("X-Method"), Some("GET"));
        assert_eq!(resp.text().unwrap(), "");
        // 307 keeps the method and a replayable body.
        let resp = client
            .post(&format!("{base}/temporary"), "text/plain", "payload")
            .unwrap();
        assert_eq!(resp.header().get("X-Method"), Some("POST"));
        assert_eq!(resp.text().unwrap(), "payload");
        // 307 with a body that cannot be sent again: the redirect itself comes back.
        let req = ClientRequest::new("POST", &format!("{base}/temporary"))
            .unwrap()
            .with_body(RequestBody::from_reader(&b"once"[..]));
        let resp = client.send(req).unwrap();
        assert_eq!(resp.status().as_u16(), 307);
        // No following at all.
        let none = Client::new().with_redirect(RedirectPolicy::none());
        let resp = none.get(&format!("{base}/r/2")).unwrap();
        assert_eq!(resp.status().as_u16(), 302);
        assert_eq!(resp.header().get("Location"), Some("/r/1"));
    });
    srv.stop();
}

#[test]
fn redirect_to_another_host_drops_authorization() {
    let srv = goway_server(test_mux());
    let other = srv.addr;
    // The first server redirects to the second by another name (localhost vs 127.0.0.1).
    let mut mux = ServeMux::new();
    mux.handle("/go", move |r: &Request, w: &mut ResponseWriter| {
        goway::http::redirect(
            r,
            w,
            &format!("http://localhost:{}/auth", other.port()),
            302,
        );
    });
    mux.handle("/same", |r: &Request, w: &mut ResponseWriter| {
        goway::http::redirect(r, w, "/auth", 302);
    });
    mux.handle("/auth", |r: &Request, w: &mut ResponseWriter| {
        let a = r.header().get("Authorization").unwrap_or("none").to_owned();
        let _ = w.write_all(a.as_bytes());
    });
    let first = goway_server(mux);
    let base = format!("http://{}", first.addr);
    run(move || {
        let client = Client::new();
        let mut req = ClientRequest::new("GET", &format!("{base}/go")).unwrap();
        req.header_mut().set("Authorization", "Bearer secret");
        assert_eq!(client.send(req).unwrap().text().unwrap(), "none");
        let mut req = ClientRequest::new("GET", &format!("{base}/same")).unwrap();
        req.header_mut().set("Authorization", "Bearer secret");
        assert_eq!(client.send(req).unwrap().text().unwrap(), "Bearer secret");
    });
    first.stop();
    srv.stop();
}

#[test]
fn max_conns_per_host_makes_requests_wait_for_a_connection() {
    // Every handler holds its request until the gate closes: the test sees how many run at
    // once.
    let (gate, held) = chan::bounded::<()>(1);
    let inflight = Arc::new(AtomicUsize::new(0));
    let mut mux = ServeMux::new();
    let seen = inflight.clone();
    mux.handle("/held", move |_r: &Request, w: &mut ResponseWriter| {
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = held.recv_timeout(WATCHDOG);
        let _ = w.write_all(b"hello");
    });
    let srv = goway_server(mux);
    let url = format!("http://{}/held", srv.addr);
    let t = Transport::new(TransportConfig {
        max_conns_per_host: 2,
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(t.clone());
    let reqs: Vec<_> = (0..10)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            go!(move || c.get(&u).map(|r| r.text().expect("body")))
        })
        .collect();
    common::wait_until("2 requests served and 8 waiting", WATCHDOG, || {
        inflight.load(Ordering::SeqCst) == 2 && t.stats().waited >= 8
    });
    // One more, whose context ends while it waits for a connection.
    let (c, u) = (client.clone(), url.clone());
    let err = run(move || {
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(200));
        let req = ClientRequest::new("GET", &u).unwrap().with_context(ctx);
        c.send(req).unwrap_err()
    });
    assert!(err.is_canceled() && err.is_timeout(), "{err}");
    assert_eq!(inflight.load(Ordering::SeqCst), 2);
    drop(gate);
    for r in reqs {
        assert_eq!(join(r).expect("request"), "hello");
    }
    assert!(srv.handle.stats().accepted <= 2, "{:?}", srv.handle.stats());
    let st = t.stats();
    assert_eq!(st.dials, 2, "{st:?}");
    t.close_idle_connections();
    srv.stop();
}

#[test]
fn max_conns_per_host_one_connection_shared_by_many_never_hangs() {
    // One connection for the host, many requests taking turns on it, some of them giving
    // up at once or while waiting: a request that waits while the connection sits idle in
    // the pool, or a wake-up lost with a cancelled waiter, would hang a request here (the
    // client's timeout turns a hang into a failure).
    let srv = goway_server(test_mux());
    let url = format!("http://{}/hello", srv.addr);
    let t = Transport::new(TransportConfig {
        max_conns_per_host: 1,
        ..TransportConfig::default()
    });
    let client = Client::new()
        .with_transport(t.clone())
        .with_timeout(Duration::from_secs(10));
    let steady: Vec<_> = (0..4)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            go!(move || {
                for _ in 0..100 {
                    let r = c.get(&u).expect("request");
                    assert_eq!(r.text().expect("body"), "hello");
                }
            })
        })
        .collect();
    let quitters: Vec<_> = (0..4u64)
        .map(|i| {
            let (c, u) = (client.clone(), url.clone());
            go!(move || {
                for j in 0..100u64 {
                    let ctx = context::background();
                    let (ctx, cancel) = context::with_cancel(&ctx);
                    if (i + j) % 3 == 0 {
                        cancel.cancel();
                    }
                    let wait = Duration::from_micros((i * 37 + j * 101) % 2000);
                    let (ctx, _end) = context::with_timeout(&ctx, wait);
                    let req = ClientRequest::new("GET", &u).unwrap().with_context(ctx);
                    match c.send(req) {
                        Ok(r) => drop(r.text()),
                        // A deadline met before the context's timer ran reads as a timeout.
                        Err(e) => assert!(e.is_canceled() || e.is_timeout(), "{e}"),
                    }
                }
            })
        })
        .collect();
    for h in steady.into_iter().chain(quitters) {
        join(h);
    }
    let (c, u) = (client.clone(), url.clone());
    assert_eq!(run(move || c.get(&u).unwrap().text().unwrap()), "hello");
    t.close_idle_connections();
    srv.stop();
}

#[test]
fn a_cancelled_dial_keeps_its_hosts_slot_until_it_ends() {
    // With one connection per host, a request whose context ends while its dial hangs
    // returns at once, but the dial goes on: its place is freed only when the dial ends,
    // so the next request waits until then instead of dialling a second connection.
    let srv = goway_server(test_mux());
    let url = format!("http://{}/hello", srv.addr);
    let (release, hold) = chan::bounded::<()>(1);
    let (entered_tx, entered) = chan::bounded::<()>(4);
    let dials = Arc::new(AtomicUsize::new(0));
    let seen = dials.clone();
    let dialer =
        move |addr: &str, timeout: Duration| -> std::io::Result<Box<dyn goway::http::Conn>> {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = entered_tx.send(());
                let _ = hold.recv_timeout(WATCHDOG);
            }
            Ok(Box::new(goway::net::dial_timeout(addr, timeout)?))
        };
    let t = Transport::with_parts(
        TransportConfig {
            max_conns_per_host: 1,
            ..TransportConfig::default()
        },
        Arc::new(dialer),
        None,
    );
    let client = Client::new().with_transport(t.clone());
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (c, u) = (client.clone(), url.clone());
    let first = go!(move || {
        let req = ClientRequest::new("GET", &u).unwrap().with_context(ctx);
        c.send(req).unwrap_err()
    });
    entered.recv_timeout(WATCHDOG).expect("first dial started");
    cancel.cancel();
    assert!(join(first).is_canceled());
    let (c, u) = (client.clone(), url.clone());
    let second = go!(move || c.get(&u).expect("second").text().expect("body"));
    common::wait_until("the second request waits for the slot", WATCHDOG, || {
        t.stats().waited >= 1
    });
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    drop(release);
    assert_eq!(join(second), "hello");
    t.close_idle_connections();
    srv.stop();
}

// ---------------------------------------------------------------------------------------
// Timeouts and cancellation

#[test]
fn dial_timeout_on_a_full_backlog() {
    // A listener that never accepts, with its backlog filled: further SYNs are dropped and
    // a connect hangs until its timeout.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    if !full {
        eprintln!("skipped: the kernel kept accepting connections into a backlog of 0");
        return;
    }
    let t = Transport::new(TransportConfig {
        dial_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(t);
    let url = format!("http://{addr}/");
    let (err, took) = run(move || {
        let start = Instant::now();
        (client.get(&url).unwrap_err(), start.elapsed())
    });
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert_eq!(err.to_string(), format!("dial tcp {addr}: i/o timeout"));
    assert!(took < WATCHDOG, "{took:?}");
    // A cancel ends a dial in progress, long before its 10 s dial timeout.
    let t = Transport::new(TransportConfig {
        dial_timeout: Duration::from_secs(10),
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(t);
    let url = format!("http://{addr}/");
    let (err, took) = run(move || {
        let (ctx, cancel) = context::with_cancel(&context::background());
        let canceller = go!(move || {
            // Give the dial time to start (either way the request must end canceled).
            let (_tx, rx) = chan::bounded::<()>(1);
            let _ = rx.recv_timeout(Duration::from_millis(200));
            cancel.cancel();
        });
        let start = Instant::now();
        let req = ClientRequest::new("GET", &url).unwrap().with_context(ctx);
        let err = client.send(req).unwrap_err();
        join(canceller);
        (err, start.elapsed())
    });
    assert!(err.is_canceled() && !err.is_timeout(), "{err}");
    assert_eq!(err.to_string(), "context canceled");
    assert!(took < Duration::from_secs(9), "{took:?}");
    drop(fillers);
}

#[test]
fn response_header_timeout_with_a_silent_server() {
    let raw = Raw::start(|_, mut s| {
        read_head(&mut s);
        until_closed(&mut s);
    });
    let t = Transport::new(TransportConfig {
        response_header_timeout: Some(Duration::from_millis(300)),
        ..TransportConfig::default()
    });
    let url = raw.url("/");
    let err = run(move || Client::new().with_transport(t).get(&url).unwrap_err());
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        err.to_string(),
        "net/http: timeout awaiting response headers"
    );
    // The client's own timeout says so.
    let url = raw.url("/");
    let err = run(move || {
        Client::new()
            .with_timeout(Duration::from_millis(300))
            .get(&url)
            .unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
    );
    raw.stop();
}

/// Sends a head promising 100 bytes and 10 of them, then waits for the client to leave.
fn slow_body(_: usize, mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    until_closed(&mut s);
}

#[test]
fn client_timeout_covers_a_slow_body() {
    let raw = Raw::start(slow_body);
    let url = raw.url("/");
    let err = run(move || {
        let client = Client::new().with_timeout(Duration::from_millis(400));
        let mut resp = client.get(&url).expect("the head arrives in time");
        let mut got = Vec::new();
        let err = resp.body.read_to_end(&mut got).unwrap_err();
        assert_eq!(got, b"0123456789");
        // It sticks.
        assert_eq!(
            resp.body.read(&mut [0u8; 8]).unwrap_err().kind(),
            err.kind()
        );
        err
    });
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    raw.stop();
}

#[test]
fn context_cancels_mid_body() {
    let raw = Raw::start(slow_body);
    let url = raw.url("/");
    let err = run(move || {
        let (ctx, cancel) = context::with_cancel(&context::background());
        let req = ClientRequest::new("GET", &url).unwrap().with_context(ctx);
        let mut resp = Client::new().send(req).unwrap();
        let mut first = [0u8; 10];
        resp.body.read_exact(&mut first).unwrap();
        // A goroutine blocks in the next read; the cancel wakes it.
        let (tx, rx) = chan::bounded(1);
        let reader = go!(move || {
            let mut rest = Vec::new();
            let r = resp.body.read_to_end(&mut rest);
            let _ = tx.send(());
            r.unwrap_err()
        });
        // (whether or not the reader is parked yet, the read must end with the cancel)
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        cancel.cancel();
        join(reader)
    });
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
    assert_eq!(err.to_string(), "context canceled");
    raw.stop();
}

#[test]
fn context_deadline_ends_the_wait_for_headers() {
    let raw = Raw::start(|_, mut s| {
        read_head(&mut s);
        until_closed(&mut s);
    });
    let url = raw.url("/");
    let err = run(move || {
        let (ctx, _cancel) =
            context::with_timeout(&context::background(), Duration::from_millis(300));
        let req = ClientRequest::new("GET", &url).unwrap().with_context(ctx);
        Client::new().send(req).unwrap_err()
    });
    assert!(err.is_canceled() && err.is_timeout(), "{err}");
    assert_eq!(err.to_string(), "context deadline exceeded");
    raw.stop();
}

// ---------------------------------------------------------------------------------------
// What servers send wrong

#[test]
fn truncated_and_reset_bodies_are_errors() {
    let raw = Raw::start(|i, mut s| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        let _ = s.write_all(&[b'x'; 100]);
        if i == 1 {
            // A reset (SO_LINGER 0 then close).
            use std::os::fd::{AsRawFd, BorrowedFd};
            // SAFETY: the descriptor is open for as long as `s` lives, past this borrow.
            let fd = unsafe { BorrowedFd::borrow_raw(s.as_raw_fd()) };
            let _ = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO));
        }
        let _ = s.close();
    });
    for _ in 0..2 {
        let url = raw.url("/");
        let (got, err) = run(move || {
            let client = Client::new().with_transport(Transport::default());
            let mut resp = client.get(&url).unwrap();
            let mut got = Vec::new();
            let err = resp.body.read_to_end(&mut got).unwrap_err();
            (got.len(), err)
        });
        assert!(got <= 100);
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
    }
    // A chunked body cut before its last chunk, too.
    raw.stop();
    let raw = Raw::start(|_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        let _ = s.close();
    });
    let url = raw.url("/");
    let err = run(move || Client::new().get(&url).unwrap().bytes().unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    raw.stop();
}

fn one_response(resp: &'static [u8]) -> Raw {
    Raw::start(move |_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(resp);
        let _ = s.close();
    })
}

#[test]
fn malformed_responses_are_protocol_errors() {
    let cases: [(&'static [u8], &str); 4] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
            "http: response has both Transfer-Encoding and Content-Length",
        ),
        (
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            "malformed HTTP status code \"2x0\"",
        ),
        (b"garbage\r\n\r\n", "malformed HTTP response \"garbage\""),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            "http: message cannot contain multiple Content-Length headers",
        ),
    ];
    for (resp, text) in cases {
        let raw = one_response(resp);
        let url = raw.url("/");
        let err = run(move || Client::new().get(&url).unwrap_err());
        assert!(matches!(err, ClientError::Protocol(_)), "{err}");
        assert_eq!(err.to_string(), text);
        raw.stop();
    }
}

#[test]
fn informational_responses_are_skipped_and_close_delimited_bodies_read() {
    let raw = one_response(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
          HTTP/1.0 200 OK\r\nX-A: b\r\n\r\nuntil the end",
    );
    let url = raw.url("/");
    let (status, a, text) = run(move || {
        let r = Client::new().get(&url).unwrap();
        let (s, a) = (
            r.status().as_u16(),
            r.header().get("X-A").map(str::to_owned),
        );
        (s, a, r.text().unwrap())
    });
    assert_eq!(
        (status, a.as_deref(), text.as_str()),
        (200, Some("b"), "until the end")
    );
    raw.stop();
}

#[test]
fn stale_pooled_connection_is_retried_for_idempotent_requests() {
    // Connection 0 answers one request and closes; later connections answer everything.
    let (closed_tx, closed_rx) = chan::bounded::<()>(4);
    let raw = Raw::start(move |i, mut s| {
        loop {
            let head = read_head(&mut s);
            if head.is_empty() {
                return;
            }
            // Read the body too: a close with unread bytes would send a reset.
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = s.read_exact(&mut body);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            if i == 0 || head.starts_with("POST") {
                let _ = s.close();
                let _ = closed_tx.send(());
                return;
            }
        }
    });
    let t = Transport::default();
    let client = Client::new().with_transport(t.clone());
    let url = raw.url("/");
    run(move || {
        assert_eq!(client.get(&url).unwrap().text().unwrap(), "ok");
        closed_rx.recv_timeout(WATCHDOG).unwrap();
        // The pooled connection is closed by the server: the GET goes again on a new one.
        assert_eq!(client.get(&url).unwrap().text().unwrap(), "ok");
        assert_eq!(client.transport().stats().retries, 1);
        // A POST on a connection the server closes after answering is not retried.
        assert_eq!(client.post(&url, "a/b", "x").unwrap().text().unwrap(), "ok");
        closed_rx.recv_timeout(WATCHDOG).unwrap();
        // The pool holds the closed connection (the server closed it after the response
        // went back to the pool): a non-idempotent request on it fails.
        let err = client
            .post(&url, "a/b", RequestBody::from_reader(&b"y"[..]))
            .unwrap_err();
        assert!(matches!(err, ClientError::Io(_)), "{err}");
    });
    assert_eq!(t.stats().retries, 1);
    assert_eq!(raw.accepted.load(Ordering::SeqCst), 2);
    t.close_idle_connections();
    raw.stop();
}

// ---------------------------------------------------------------------------------------
// One worker: a client waiting on a slow server parks its goroutine only.

#[test]
fn one_worker_client_wait_does_not_block_others() {
    let out = common::child::run_command(
        &mut common::child::test_command("one_worker_child"),
        "one_worker_child",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
#[ignore = "run by one_worker_client_wait_does_not_block_others in a child process"]
fn one_worker_child() {
    let _ = goway::runtime::Config::new().workers(1).apply();
    let (release_tx, release_rx) = chan::bounded::<()>(1);
    let raw = Raw::start(move |_, mut s| {
        read_head(&mut s);
        let _ = release_rx.recv_timeout(WATCHDOG);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
        until_closed(&mut s);
    });
    let url = raw.url("/");
    let waiting = go!(move || Client::new().get(&url).unwrap().text().unwrap());
    // While the client waits for the head, another goroutine runs on the one worker.
    let other = go!(move || {
        let _ = release_tx.send(());
        7
    });
    assert_eq!(join(other), 7);
    assert_eq!(join(waiting), "late");
    raw.stop();
}

// ---------------------------------------------------------------------------------------
// Against a real Go net/http server

#[test]
fn against_go_server() {
    let Some(go_srv) = common::go_server::start() else {
        return;
    };
    let base = format!("http://{}", go_srv.addr());
    run(move || {
        let client = Client::new();
        for _ in 0..10 {
            assert_eq!(
                client
                    .get(&format!("{base}/hello"))
                    .unwrap()
                    .text()
                    .unwrap(),
                "hello"
            );
        }
        assert_eq!(
            client
                .get(&format!("{base}/conns"))
                .unwrap()
                .text()
                .unwrap(),
            "1"
        );
        // Chunked both ways.
        let resp = client.get(&format!("{base}/chunked?n=4")).unwrap();
        assert_eq!(resp.header().get("Transfer-Encoding"), Some("chunked"));
        assert_eq!(resp.text().unwrap(), "piece 0\npiece 1\npiece 2\npiece 3\n");
        let data = vec![b'z'; 300_000];
        let req = ClientRequest::new("POST", &format!("{base}/echo"))
            .unwrap()
            .with_body(RequestBody::from_reader(std::io::Cursor::new(data.clone())));
        let resp = client.send(req).unwrap();
        assert_eq!(resp.header().get("X-Req-TE"), Some("chunked"));
        assert_eq!(resp.header().get("X-Req-CL"), Some("-1"));
        let got = resp.bytes().unwrap();
        assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
        // Redirects.
        let resp = client.get(&format!("{base}/redirect/3")).unwrap();
        assert_eq!(resp.text().unwrap(), "done");
        let err = client.get(&format!("{base}/redirect/20")).unwrap_err();
        assert!(matches!(err, ClientError::TooManyRedirects(10)), "{err}");
        // A large streamed body.
        let n = 5 << 20;
        let resp = client.get(&format!("{base}/big?n={n}")).unwrap();
        assert_eq!(resp.bytes().unwrap().len(), n);
        // Still one connection: every body was read to its end.
        assert_eq!(
            client
                .get(&format!("{base}/conns"))
                .unwrap()
                .text()
                .unwrap(),
            "1"
        );
    });
    drop(go_srv);
}
