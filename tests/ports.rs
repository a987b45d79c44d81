//! The Go ports in `examples/` run as real programs and are checked over real TCP: the chat
//! server with 50 clients and a stalled one, the proxy with 64 MiB each way, half-closes and
//! failing upstreams, the key-value + pub/sub server against its Go original (idle timeouts,
//! a SIGINT drain), and the printed results of the concurrency patterns.
//!
//! `cargo test --release --test ports` does not rebuild the examples: run
//! `cargo build --release --examples` first (a plain `cargo test` builds them).

mod common;

use common::WATCHDOG;
use common::example::Example;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// chat

/// A chat client: its socket, a line reader and its address as the server sees it.
struct ChatClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
    who: String,
}

impl ChatClient {
    /// Connects and reads the greeting.
    fn connect(addr: &str) -> ChatClient {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(WATCHDOG)).unwrap();
        let who = w.local_addr().unwrap().to_string();
        let mut c = ChatClient {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
            who,
        };
        assert_eq!(c.line(), format!("You are {}", c.who));
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self
            .r
            .read_line(&mut l)
            .unwrap_or_else(|e| panic!("{}: read: {e}", self.who));
        assert!(n > 0, "{}: unexpected EOF", self.who);
        assert!(l.ends_with('\n'), "{}: partial line {l:?}", self.who);
        l.pop();
        l
    }

    fn say(&mut self, text: &str) {
        self.w.write_all(format!("{text}\n").as_bytes()).unwrap();
    }
}

#[test]
fn chat_fifty_clients_arrive_talk_and_leave() {
    let _g = common::shared();
    // Each client gets 49 × 20 lines and may not read them until it has written its own: the
    // queue holds them all (the slow-client policy has its own test).
    // Arrivals are announced one by one at this pace (by default, beyond 20 a second they are
    // announced together).
    let ex = Example::start(
        "chat",
        &[
            "--addr",
            "127.0.0.1:0",
            "--queue",
            "2000",
            "--announce-per-sec",
            "1000",
        ],
        true,
    );
    const CLIENTS: usize = 50;
    const LINES: usize = 20;

    // Arrivals: once a client has its greeting it is registered, so each earlier client sees
    // every later arrival, in order.
    let mut clients: Vec<ChatClient> = Vec::new();
    for _ in 0..CLIENTS {
        let c = ChatClient::connect(ex.addr());
        clients.push(c);
    }
    let whos: Vec<String> = clients.iter().map(|c| c.who.clone()).collect();
    for (j, c) in clients.iter_mut().enumerate() {
        for who in &whos[j + 1..] {
            assert_eq!(c.line(), format!("{who} has arrived"));
        }
    }

    // Everybody talks at once; every line reaches every other client, in order per sender.
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let whos = whos.clone();
            std::thread::spawn(move || {
                for i in 0..LINES {
                    c.say(&format!("line {i} from {}", c.who));
                }
                let mut next: HashMap<String, usize> = HashMap::new();
                for _ in 0..(CLIENTS - 1) * LINES {
                    let l = c.line();
                    let (from, text) = l
                        .split_once(": ")
                        .unwrap_or_else(|| panic!("{}: not `<addr>: <text>`: {l:?}", c.who));
                    assert_ne!(from, c.who, "own line echoed back");
                    assert!(whos.iter().any(|w| w == from), "unknown sender in {l:?}");
                    let i = next.entry(from.to_owned()).or_insert(0);
                    assert_eq!(text, format!("line {i} from {from}"), "order from {from}");
                    *i += 1;
                }
                assert!(next.values().all(|&n| n == LINES));
                c
            })
        })
        .collect();
    let mut clients: Vec<ChatClient> = threads.into_iter().map(common::join_thread).collect();

    // Departures, announced to those still there, in order.
    while !clients.is_empty() {
        let gone = clients.remove(0);
        let who = gone.who.clone();
        drop(gone);
        for c in &mut clients {
            assert_eq!(c.line(), format!("{who} has left"));
        }
    }
}

#[test]
fn chat_stalled_client_is_dropped_and_others_keep_talking() {
    let _g = common::shared();
    let ex = Example::start("chat", &["--addr", "127.0.0.1:0", "--queue", "16"], true);

    let mut reader = ChatClient::connect(ex.addr());
    // Never reads a byte after connecting.
    let stalled = TcpStream::connect(ex.addr()).unwrap();
    let stalled_who = stalled.local_addr().unwrap().to_string();
    assert_eq!(reader.line(), format!("{stalled_who} has arrived"));
    let mut writer = ChatClient::connect(ex.addr());
    let writer_who = writer.who.clone();
    assert_eq!(reader.line(), format!("{writer_who} has arrived"));

    // The writer talks until the reader has seen the stalled client dropped (once the kernel
    // buffers towards it and its 16-line queue are full), then a little more. It stays at most
    // WINDOW lines ahead of the reader, which keeps up: only the stalled client falls behind.
    const WINDOW: usize = 8;
    let dropped = Arc::new(AtomicBool::new(false));
    let (ack, acks) = mpsc::channel::<()>();
    let talker = {
        let dropped = dropped.clone();
        std::thread::spawn(move || {
            let pad = "x".repeat(16 * 1024);
            let (mut i, mut after) = (0, 0);
            while after < 100 {
                assert!(i < 200_000, "stalled client never dropped");
                writer.say(&format!("{i} {pad}"));
                i += 1;
                if i > WINDOW {
                    acks.recv_timeout(WATCHDOG)
                        .expect("reader stopped acknowledging");
                }
                if dropped.load(Ordering::Relaxed) {
                    after += 1;
                }
            }
            writer.say("end");
            writer
        })
    };

    // Every line arrives, in order, with the stalled client's departure announced once.
    let mut expect = 0usize;
    let mut saw_drop = false;
    loop {
        let l = reader.line();
        if l == format!("{stalled_who} has left") {
            assert!(!saw_drop, "announced twice");
            saw_drop = true;
            dropped.store(true, Ordering::Relaxed);
            continue;
        }
        let text = l
            .strip_prefix(&format!("{writer_who}: "))
            .unwrap_or_else(|| panic!("unexpected line {l:?}"));
        if text == "end" {
            break;
        }
        let (n, _) = text.split_once(' ').unwrap();
        assert_eq!(
            n.parse::<usize>().unwrap(),
            expect,
            "lost or reordered line"
        );
        expect += 1;
        let _ = ack.send(());
    }
    assert!(saw_drop);
    let _writer = common::join_thread(talker);

    // The server closed the stalled client's connection: it reads its backlog, then EOF.
    let mut stalled = stalled;
    stalled.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut sink = Vec::new();
    match stalled.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("stalled client was not disconnected: {e}"),
    }
}

#[test]
fn chat_client_longer_line_than_max_is_disconnected() {
    let _g = common::shared();
    let ex = Example::start(
        "chat",
        &["--addr", "127.0.0.1:0", "--max-line", "100"],
        true,
    );
    let mut other = ChatClient::connect(ex.addr());
    let mut big = ChatClient::connect(ex.addr());
    assert_eq!(other.line(), format!("{} has arrived", big.who));
    big.say("short");
    assert_eq!(other.line(), format!("{}: short", big.who));
    big.say(&"y".repeat(500));
    assert_eq!(other.line(), format!("{} has left", big.who));
}

// ---------------------------------------------------------------------------------------------
// proxy

/// A test upstream: accepts connections on a thread and runs `serve` on each in its own thread.
/// Dropping it stops accepting and joins every thread (declare it before the proxy, so that the
/// proxy is killed first and its connections are closed).
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

fn upstream(serve: fn(TcpStream)) -> Upstream {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let acceptor = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in ln.incoming() {
            if stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(c) = c else { break };
            c.set_read_timeout(Some(WATCHDOG)).unwrap();
            conns.push(std::thread::spawn(move || serve(c)));
        }
        for c in conns {
            common::join_thread(c);
        }
    });
    Upstream {
        addr,
        stop,
        acceptor: Some(acceptor),
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept
        // A failing test is already unwinding: leave the threads rather than panic twice.
        if let Some(t) = self.acceptor.take().filter(|_| !std::thread::panicking()) {
            common::join_thread(t);
        }
    }
}

/// Echoes until EOF, then half-closes.
fn echo(mut c: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = c.shutdown(Shutdown::Write);
}

fn start_proxy(upstream: &str, dial_timeout: &str) -> Example {
    Example::start(
        "proxy",
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--dial-timeout",
            dial_timeout,
        ],
        true,
    )
}

/// A reproducible byte stream (xorshift), so the receiver can check every byte.
struct Bytes(u64);

impl Bytes {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let b = self.0.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

#[test]
fn proxy_carries_64_mib_each_way() {
    let _g = common::shared();
    const TOTAL: usize = 64 << 20;
    const CHUNK: usize = 64 * 1024;
    let up = upstream(echo);
    let ex = start_proxy(&up.addr.to_string(), "3s");

    let c = TcpStream::connect(ex.addr()).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut w = c.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut stream = Bytes(0x9e37_79b9_7f4a_7c15);
        let mut buf = vec![0u8; CHUNK];
        for _ in 0..TOTAL / CHUNK {
            stream.fill(&mut buf);
            w.write_all(&buf).unwrap();
        }
        // Half-close: the proxy passes the EOF to the echo upstream, whose EOF comes back.
        w.shutdown(Shutdown::Write).unwrap();
    });

    let mut r = c;
    let mut stream = Bytes(0x9e37_79b9_7f4a_7c15);
    let (mut got, mut want) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut received = 0usize;
    while received < TOTAL {
        r.read_exact(&mut got).unwrap();
        stream.fill(&mut want);
        assert!(got == want, "corrupt data at byte {received}");
        received += CHUNK;
    }
    // Then EOF: both directions are done and the proxy closed the connection.
    assert_eq!(r.read(&mut got).unwrap(), 0);
    common::join_thread(sender);
}

#[test]
fn proxy_serves_many_connections_at_once() {
    let _g = common::shared();
    const CONNS: u64 = 40;
    const EACH: usize = 1 << 20;
    let up = upstream(echo);
    let ex = start_proxy(&up.addr.to_string(), "3s");
    let clients: Vec<_> = (0..CONNS)
        .map(|seed| {
            let addr = ex.addr().to_owned();
            std::thread::spawn(move || {
                let c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(WATCHDOG)).unwrap();
                let mut w = c.try_clone().unwrap();
                let sender = std::thread::spawn(move || {
                    let mut data = vec![0u8; EACH];
                    Bytes(seed + 1).fill(&mut data);
                    w.write_all(&data).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut got = Vec::new();
                let mut r = c;
                r.read_to_end(&mut got).unwrap();
                let mut want = vec![0u8; EACH];
                Bytes(seed + 1).fill(&mut want);
                assert!(
                    got == want,
                    "connection {seed}: {} bytes, corrupt or short",
                    got.len()
                );
                common::join_thread(sender);
            })
        })
        .collect();
    for c in clients {
        common::join_thread(c);
    }
}

#[test]
fn proxy_half_close_client_first() {
    let _g = common::shared();
    // Reads until EOF, then answers with the byte count: only works if the client's half-close
    // reaches it and the way back stays open.
    fn count_then_answer(mut c: TcpStream) {
        let mut all = Vec::new();
        if c.read_to_end(&mut all).is_ok() {
            let _ = c.write_all(format!("got {} bytes", all.len()).as_bytes());
        }
    }
    let up = upstream(count_then_answer);
    let ex = start_proxy(&up.addr.to_string(), "3s");

    let mut c = TcpStream::connect(ex.addr()).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    c.write_all(b"hello, upstream").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "got 15 bytes");
}

#[test]
fn proxy_half_close_upstream_first() {
    let _g = common::shared();
    let (seen_tx, seen_rx) = mpsc::channel::<Vec<u8>>();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = ln.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = ln.accept().unwrap();
        c.set_read_timeout(Some(WATCHDOG)).unwrap();
        // Greets, then says it will send no more, and still listens.
        c.write_all(b"banner\n").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        seen_tx.send(all).unwrap();
    });
    let ex = start_proxy(&up.to_string(), "3s");

    let mut c = TcpStream::connect(ex.addr()).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut banner = String::new();
    c.read_to_string(&mut banner).unwrap(); // up to the upstream's EOF
    assert_eq!(banner, "banner\n");
    // The client → upstream direction still works after the other one ended.
    c.write_all(b"still here").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(seen_rx.recv_timeout(WATCHDOG).unwrap(), b"still here");
    common::join_thread(server);
    // Both directions done: the proxy closes the client's connection.
    assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 0);
}

#[test]
fn proxy_refused_upstream_closes_client_at_once() {
    let _g = common::shared();
    // A port nobody listens on (bound, then released): connecting is refused right away.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ex = start_proxy(&format!("127.0.0.1:{port}"), "5s");
    let mut c = TcpStream::connect(ex.addr()).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    let start = Instant::now();
    match c.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the proxy to close the connection, got {other:?}"),
    }
    // Well under the 5 s dial timeout: the refusal ends the dial, not the timer.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // And the proxy still serves the next client the same way.
    let mut c2 = TcpStream::connect(ex.addr()).unwrap();
    c2.set_read_timeout(Some(WATCHDOG)).unwrap();
    assert!(matches!(c2.read(&mut [0u8; 1]), Ok(0) | Err(_)));
}

#[test]
fn proxy_dial_timeout_to_silent_upstream() {
    let _g = common::shared();
    // An upstream that never completes a handshake: a listener nobody accepts from, its accept
    // queue filled until connecting to it hangs (Linux then drops SYNs).
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = ln.local_addr().unwrap();
    let mut fillers = Vec::new();
    let full = loop {
        match TcpStream::connect_timeout(&up, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                break true;
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        if fillers.len() > 5000 {
            break false;
        }
    };
    assert!(full, "could not fill the upstream's accept queue");

    let ex = start_proxy(&up.to_string(), "600ms");
    let mut c = TcpStream::connect(ex.addr()).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    let start = Instant::now();
    match c.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the proxy to close the connection, got {other:?}"),
    }
    let waited = start.elapsed();
    // Closed because the dial timed out: not before 600 ms (less some slack), not much after.
    assert!(
        waited >= Duration::from_millis(450),
        "closed too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(8),
        "closed too late: {waited:?}"
    );
    drop(fillers);
    drop(ln);
}

// ---------------------------------------------------------------------------------------------
// the concurrency patterns

fn run(name: &str, args: &[&str]) -> Vec<String> {
    let ex = Example::start(name, args, false);
    let (status, lines) = ex.wait(Duration::from_secs(20));
    assert!(status.success(), "{name} {args:?} failed: {status}");
    lines
}

fn primes(n: usize) -> Vec<u64> {
    let mut ps: Vec<u64> = Vec::new();
    let mut i = 2;
    while ps.len() < n {
        if ps.iter().all(|p| i % p != 0) {
            ps.push(i);
        }
        i += 1;
    }
    ps
}

#[test]
fn sieve_prints_the_first_primes() {
    let _g = common::shared();
    let lines = run("sieve", &[]);
    let want: Vec<String> = primes(100).iter().map(u64::to_string).collect();
    assert_eq!(lines[..100], want[..]);
    assert_eq!(
        lines[100..],
        ["100 primes, the last is 541; 101 goroutines joined"]
    );

    let lines = run("sieve", &["--n", "500"]);
    assert_eq!(lines.len(), 501);
    assert_eq!(lines[499], primes(500)[499].to_string());
    assert_eq!(
        lines[500],
        "500 primes, the last is 3571; 501 goroutines joined"
    );
}

#[test]
fn pipeline_sums_squares_and_stops_on_cancel() {
    let _g = common::shared();
    assert_eq!(
        run("pipeline", &[]),
        [
            "sum of squares of 1..=1000 through 4 workers: 333833500",
            "cancelled after 10 of 1000 results: all 10 pipeline goroutines stopped (context canceled)",
        ]
    );
    let n: u64 = 100_000;
    let sum: u64 = (1..=n).map(|i| i * i).sum();
    assert_eq!(
        run(
            "pipeline",
            &["--n", "100000", "--workers", "16", "--take", "1"]
        ),
        [
            format!("sum of squares of 1..=100000 through 16 workers: {sum}"),
            "cancelled after 1 of 100000 results: all 34 pipeline goroutines stopped (context canceled)"
                .to_string(),
        ]
    );
}

fn collatz_steps(mut n: u64) -> u64 {
    let mut s = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        s += 1;
    }
    s
}

#[test]
fn worker_pool_finishes_fast_jobs_and_gives_up_at_the_deadline() {
    let _g = common::shared();
    let steps: u64 = (1..=96).map(collatz_steps).sum();
    let start = Instant::now();
    // The defaults but a generous deadline: the 96 quick jobs finish long before it even on a
    // loaded machine, and the 4 hung ones give up at it.
    assert_eq!(
        run("worker_pool", &["--timeout-ms", "2000"]),
        [
            "100 jobs on 8 workers, deadline 2s".to_string(),
            format!("done: 96 jobs, total Collatz steps {steps}"),
            "not done: 4 jobs (context deadline exceeded)".to_string(),
        ]
    );
    // The hung jobs were abandoned at the deadline, not after their hour.
    assert!(start.elapsed() < Duration::from_secs(15));

    let steps: u64 = (1..=1000).map(collatz_steps).sum();
    assert_eq!(
        run(
            "worker_pool",
            &[
                "--jobs",
                "1000",
                "--workers",
                "3",
                "--slow",
                "0",
                "--timeout-ms",
                "20000"
            ]
        ),
        [
            "1000 jobs on 3 workers, deadline 20s".to_string(),
            format!("done: 1000 jobs, total Collatz steps {steps}"),
            "not done: 0 jobs".to_string(),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// pubsub_kv, and its Go original

/// A line client of pubsub_kv.
struct LineClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl LineClient {
    fn connect(addr: &str) -> LineClient {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(WATCHDOG)).unwrap();
        LineClient {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// The next line, or `None` at EOF.
    fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) => None,
            Ok(_) => Some(l.trim_end_matches('\n').to_string()),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
            .unwrap_or_else(|| panic!("{line}: EOF instead of a reply"))
    }
}

/// The Go original, built with the installed Go into target/, or `None` (with a note) when Go
/// is not installed.
fn go_pubsub_kv() -> Option<std::path::PathBuf> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/go/pubsub_kv");
    let out = common::example::example_path("pubsub_kv").with_file_name("go-pubsub_kv");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .status();
    match built {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("go build of {} failed: {s}", src.display()),
        Err(e) => {
            eprintln!("go not runnable ({e}): the Go original of pubsub_kv is not compared");
            None
        }
    }
}

/// One conversation: a subscriber, then every command once. Returns what both clients saw.
fn pubsub_kv_conversation(addr: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut sub = LineClient::connect(addr);
    let mut c = LineClient::connect(addr);
    seen.push(format!("sub: SUB news -> {}", sub.ask("SUB news")));
    for cmd in [
        "SET greeting hello  world",
        "GET greeting",
        "GET nothing",
        "DEL greeting",
        "DEL greeting",
        "PUB news hi there",
        "PUB sports none listening",
        "set lower case",
        "GET",
        "",
        "bogus \"quoted\"\tand tab",
        "QUIT",
    ] {
        if cmd.is_empty() {
            c.send(cmd); // no reply to an empty line
            continue;
        }
        seen.push(format!("{cmd} -> {}", c.ask(cmd)));
    }
    assert_eq!(c.line(), None, "QUIT closes the connection");
    seen.push(format!("sub: {}", sub.line().unwrap()));
    seen
}

const PUBSUB_KV_CONVERSATION: &[&str] = &[
    "sub: SUB news -> OK",
    "SET greeting hello  world -> OK",
    "GET greeting -> hello world",
    "GET nothing -> (nil)",
    "DEL greeting -> (integer) 1",
    "DEL greeting -> (integer) 0",
    "PUB news hi there -> (integer) 1",
    "PUB sports none listening -> (integer) 0",
    "set lower case -> OK",
    "GET -> ERR unknown command or wrong arguments: \"GET\"",
    "bogus \"quoted\"\tand tab -> ERR unknown command or wrong arguments: \"bogus \\\"quoted\\\"\\tand tab\"",
    "QUIT -> OK",
    "sub: MESSAGE news hi there",
];

#[test]
fn pubsub_kv_replies_as_its_go_original_does() {
    let ex = Example::start("pubsub_kv", &["--addr", "127.0.0.1:0"], true);
    assert_eq!(pubsub_kv_conversation(ex.addr()), PUBSUB_KV_CONVERSATION);
    if let Some(go) = go_pubsub_kv() {
        let mut cmd = std::process::Command::new(go);
        cmd.args(["-addr", "127.0.0.1:0"]);
        let go_ex = Example::start_with(&mut cmd, true);
        assert_eq!(pubsub_kv_conversation(go_ex.addr()), PUBSUB_KV_CONVERSATION);
    }
}

#[test]
fn pubsub_kv_closes_a_connection_idle_past_its_read_deadline() {
    let ex = Example::start(
        "pubsub_kv",
        &["--addr", "127.0.0.1:0", "--idle", "300ms"],
        true,
    );
    let mut idle = LineClient::connect(ex.addr());
    let mut busy = LineClient::connect(ex.addr());
    let t0 = Instant::now();
    // `busy` keeps talking, each command restarting its own clock; `idle` says nothing.
    while t0.elapsed() < Duration::from_millis(600) {
        assert_eq!(busy.ask("GET k"), "(nil)");
        // Paces the talker (well inside its idle limit); it synchronises nothing.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(idle.line(), None, "the idle connection is closed");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(busy.ask("SET k v"), "OK");
}

#[test]
fn pubsub_kv_drains_on_sigint_waking_every_blocked_reader() {
    let ex = Example::start(
        "pubsub_kv",
        &["--addr", "127.0.0.1:0", "--idle", "60s"],
        true,
    );
    let mut clients: Vec<LineClient> = (0..5).map(|_| LineClient::connect(ex.addr())).collect();
    // Every reader is blocked in a read with a minute of idle time left; one is subscribed.
    assert_eq!(clients[0].ask("SUB news"), "OK");
    for c in &mut clients[1..] {
        assert_eq!(c.ask("SET a b"), "OK");
    }
    let t0 = Instant::now();
    // SAFETY: kill(2) on the child's pid, which is ours to signal until it is reaped (Drop).
    assert_eq!(unsafe { libc::kill(ex.pid() as i32, libc::SIGINT) }, 0);
    for c in &mut clients {
        assert_eq!(
            c.line(),
            None,
            "woken by the drain, not by the idle timeout"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(30));
    let lines: Vec<String> = (0..2)
        .map(|_| ex.stdout.recv_timeout(WATCHDOG).expect("a drain line"))
        .collect();
    assert_eq!(lines, ["interrupt: draining", "drained"]);
    let (status, _) = ex.wait(WATCHDOG);
    assert!(status.success(), "{status}");
}
