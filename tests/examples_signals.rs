//! The serving examples under `SIGTERM`, each a child process, with clients in the middle of
//! something: every request the server had begun is answered, or counted as cut off in the
//! example's `shutdown:` line; the example exits 0 within its `--grace`; a second `SIGTERM`
//! during a drain held open by a client exits at once (status 143).
//!
//! The moment the drain has started is seen from outside, never guessed: an idle connection
//! is closed by it (or, for the proxy, the port stops accepting).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::example::{Example, build_example};
use common::{WATCHDOG, client, wait_until};

/// Starts the example `name` (built first if missing) with `args` and waits for its address.
fn start(name: &str, args: &[&str]) -> Example {
    Example::start_with(Command::new(build_example(name)).args(args), true)
}

fn addr(ex: &Example) -> SocketAddr {
    ex.addr().parse().expect("a socket address")
}

fn sigterm(ex: &Example) {
    // SAFETY: kill(2) on the child's pid, ours to signal until `Example` reaps it (on drop).
    assert_eq!(unsafe { libc::kill(ex.pid() as i32, libc::SIGTERM) }, 0);
}

/// Reads until the peer closes; what came.
fn read_to_eof(c: &mut TcpStream) -> String {
    let mut s = String::new();
    // A reset after the close counts as the close.
    let _ = c.read_to_string(&mut s);
    s
}

/// Waits for `c`, which has nothing to receive, to be closed by the server: the drain started.
fn closed_by_drain(c: &mut TcpStream) {
    assert_eq!(
        read_to_eof(c),
        "",
        "an idle connection gets nothing but the close"
    );
}

/// Waits for the example to exit within `limit` with status 0, and returns its `shutdown:`
/// line.
fn exits_0(ex: Example, limit: Duration) -> String {
    let t0 = Instant::now();
    let (status, lines) = ex.wait(limit);
    assert!(status.success(), "{status:?}\n{lines:?}");
    assert!(t0.elapsed() < limit, "{:?}", t0.elapsed());
    lines
        .into_iter()
        .find(|l| l.starts_with("shutdown: "))
        .expect("a shutdown line")
}

/// One line-protocol round trip.
fn round_trip(c: &mut TcpStream, line: &str) -> String {
    c.write_all(format!("{line}\n").as_bytes()).expect("write");
    let mut r = BufReader::new(&*c);
    let mut got = String::new();
    r.read_line(&mut got).expect("read");
    got
}

#[test]
fn echo_answers_a_frame_begun_before_sigterm_then_exits_0() {
    let ex = start("echo", &["--addr", "127.0.0.1:0", "--grace", "10"]);
    let a = addr(&ex);
    let mut idle = client(a);
    assert_eq!(round_trip(&mut idle, "hi"), "hi\n");
    // A complete frame and the start of the next in one write: once "ping" is answered the
    // server has read "hel" too, and holds it as a frame begun.
    let mut half = client(a);
    half.write_all(b"ping\nhel").expect("write");
    let mut r = BufReader::new(half.try_clone().expect("clone"));
    let mut got = String::new();
    r.read_line(&mut got).expect("read");
    assert_eq!(got, "ping\n");

    sigterm(&ex);
    closed_by_drain(&mut idle);
    // The drain waits for the frame begun, answers it, then closes.
    half.write_all(b"lo\n").expect("write");
    got.clear();
    r.read_line(&mut got).expect("read");
    assert_eq!(got, "hello\n");
    got.clear();
    assert_eq!(
        r.read_line(&mut got).expect("read"),
        0,
        "closed after the reply"
    );

    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: drained 2 connection(s), cut off 0");
}

#[test]
fn a_second_sigterm_during_a_held_drain_exits_at_once() {
    let ex = start("echo", &["--addr", "127.0.0.1:0", "--grace", "60"]);
    let a = addr(&ex);
    let mut idle = client(a);
    assert_eq!(round_trip(&mut idle, "hi"), "hi\n");
    // A frame begun and never finished holds the drain open (for up to 60 s).
    let mut half = client(a);
    half.write_all(b"ping\nnever finished").expect("write");
    let mut r = BufReader::new(half.try_clone().expect("clone"));
    let mut got = String::new();
    r.read_line(&mut got).expect("read");
    assert_eq!(got, "ping\n");

    sigterm(&ex);
    closed_by_drain(&mut idle);
    let t0 = Instant::now();
    sigterm(&ex);
    let (status, lines) = ex.wait(WATCHDOG);
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "{status:?} {lines:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(
        !lines.iter().any(|l| l.starts_with("shutdown: ")),
        "{lines:?}"
    );
}

#[test]
fn kv_drains_on_sigterm_and_exits_0() {
    let ex = start("kv", &["--addr", "127.0.0.1:0", "--grace", "10"]);
    let a = addr(&ex);
    let mut idle = client(a);
    idle.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let mut r = BufReader::new(idle.try_clone().expect("clone"));
    let mut got = String::new();
    r.read_line(&mut got).expect("read");
    assert_eq!(got, "+PONG\r\n");
    // A command begun (its last argument not yet sent) before the signal.
    let mut half = client(a);
    half.write_all(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n")
        .expect("write");
    let mut hr = BufReader::new(half.try_clone().expect("clone"));
    got.clear();
    hr.read_line(&mut got).expect("read");
    assert_eq!(got, "+PONG\r\n");

    sigterm(&ex);
    got.clear();
    assert_eq!(
        r.read_line(&mut got).expect("read"),
        0,
        "idle closed: {got:?}"
    );
    half.write_all(b"$1\r\nv\r\n").expect("write");
    got.clear();
    hr.read_line(&mut got).expect("read");
    assert_eq!(got, "+OK\r\n");

    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: drained 2 connection(s), cut off 0");
}

/// A request head and the first half of its body.
fn begin_post(a: SocketAddr, body: &str) -> TcpStream {
    let mut c = client(a);
    let head = format!(
        "POST /todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).expect("write");
    c.write_all(&body.as_bytes()[..body.len() / 2])
        .expect("write");
    c
}

/// An HTTP keep-alive connection that has had one response: idle from then on.
fn idle_keep_alive(a: SocketAddr, path: &str) -> TcpStream {
    let mut c = client(a);
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("write");
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).expect("read");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    c
}

#[test]
fn http_todo_answers_a_slow_body_sent_across_sigterm() {
    let ex = start("http_todo", &["--addr", "127.0.0.1:0", "--grace", "10"]);
    let a = addr(&ex);
    let body = r#"{"title":"milk","done":false}"#;
    let mut slow = begin_post(a, body);
    // Accepted after `slow` (one listener accepts in order): once this one is answered,
    // `slow` has been accepted too. (A connection still in the backlog when the drain starts
    // is closed with the listener, as Go's is.)
    let mut idle = idle_keep_alive(a, "/todos");

    sigterm(&ex);
    closed_by_drain(&mut idle);
    slow.write_all(&body.as_bytes()[body.len() / 2..])
        .expect("write");
    let reply = read_to_eof(&mut slow);
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    assert!(reply.contains(r#""id":1"#), "{reply}");

    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: drained 2 connection(s), cut off 0");
}

#[test]
fn http_todo_cuts_off_a_request_still_running_when_the_grace_ends() {
    let ex = start("http_todo", &["--addr", "127.0.0.1:0", "--grace", "1"]);
    let a = addr(&ex);
    // The store takes 5 s for this one; the grace is 1 s.
    let mut slow = client(a);
    slow.write_all(b"GET /todos?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    // Accepted after `slow`: once it is answered, `slow` is being served.
    let mut idle = idle_keep_alive(a, "/todos");

    sigterm(&ex);
    closed_by_drain(&mut idle);
    let t0 = Instant::now();
    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: grace over, cut off 1 connection(s)");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The cut-off request got no response, or the 503 its handler wrote as the end of the
    // grace cancelled its context (the server cancels, then closes).
    let reply = read_to_eof(&mut slow);
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 503"),
        "{reply}"
    );
}

#[test]
fn http_hello_closes_idle_keep_alive_and_exits_0() {
    let ex = start("http_hello", &["--addr", "127.0.0.1:0", "--grace", "10"]);
    let mut idle = idle_keep_alive(addr(&ex), "/plaintext");
    sigterm(&ex);
    closed_by_drain(&mut idle);
    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: drained 1 connection(s), cut off 0");
}

#[test]
fn proxy_lets_an_open_session_finish_after_sigterm() {
    let upstream = start("echo", &["--addr", "127.0.0.1:0"]);
    let ex = start(
        "proxy",
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream.addr(),
            "--grace",
            "10",
        ],
    );
    let a = addr(&ex);
    let mut c = client(a);
    assert_eq!(round_trip(&mut c, "one"), "one\n");

    sigterm(&ex);
    // The drain has started once the port accepts no more. Each probe that still connects may
    // be accepted, served and drained as well.
    let mut probes = 0;
    wait_until("the proxy to stop accepting", WATCHDOG, || {
        let refused = TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err();
        probes += usize::from(!refused);
        refused
    });
    // The open session goes on until its client ends it.
    assert_eq!(round_trip(&mut c, "two"), "two\n");
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    assert_eq!(read_to_eof(&mut c), "");

    let report = exits_0(ex, WATCHDOG);
    // The session, and any probe that connected before the listener closed (accepted and
    // drained, or left in the backlog and reset with the listener).
    assert!(
        (1..=1 + probes)
            .map(|n| format!("shutdown: drained {n} connection(s), cut off 0"))
            .any(|r| r == report),
        "{report} ({probes} probe(s) connected)"
    );
    sigterm(&upstream);
    assert!(exits_0(upstream, WATCHDOG).starts_with("shutdown: drained"));
}

#[test]
fn chat_tells_its_clients_and_exits_0() {
    let ex = start("chat", &["--addr", "127.0.0.1:0", "--grace", "10"]);
    let a = addr(&ex);
    let mut readers: Vec<BufReader<TcpStream>> = (0..2)
        .map(|_| {
            let mut r = BufReader::new(client(a));
            let mut l = String::new();
            r.read_line(&mut l).expect("greeting");
            assert!(l.starts_with("You are "), "{l}");
            r
        })
        .collect();

    sigterm(&ex);
    for r in &mut readers {
        // Other lines (the second client's arrival) may come first.
        let mut rest = String::new();
        let _ = r.read_to_string(&mut rest);
        assert!(rest.contains("server shutting down\n"), "{rest:?}");
    }
    let report = exits_0(ex, WATCHDOG);
    assert_eq!(report, "shutdown: drained 2 connection(s), cut off 0");
}
