//! Hostile clients against the examples, each run as a child process: the chat server with
//! clients that never read while another floods it with long lines, and with a join/leave
//! flood; the framed server (the `echo` example) under a storm of connection resets, which it
//! must not answer with a log line each; the proxy under a connect/close storm beyond its
//! descriptor limit.
//!
//! Each test checks behaviour a healthy client can count on (it stays connected and gets every
//! line, in order) and bounds what the attack may cost: the server's resident memory (`VmRSS`
//! from `/proc`) and the lines it logs.
//!
//! `cargo test --release --test examples_hostile` does not rebuild the examples: run
//! `cargo build --release --examples` first (a plain `cargo test` builds them). With
//! `--nocapture` each test prints its figures.
//!
//! Linux only (`/proc`). Each test holds the machine alone (a lock): a flood beside another
//! would halve its CPU on a 2-core CI machine.

mod common;
#[path = "common/hostile.rs"]
#[allow(dead_code)]
mod hostile;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::example::example_path;
use common::{WATCHDOG, wait_until};
use hostile::ServerProcess;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn chat(args: &[&str]) -> ServerProcess {
    ServerProcess::start(
        Command::new(example_path("chat"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args),
    )
}

// ---------------------------------------------------------------------------------------------
// chat clients

/// A well-behaved chat client: its socket, a line reader and its address as the server sees it.
struct ChatClient {
    w: TcpStream,
    r: BufReader<TcpStream>,
    who: String,
}

impl ChatClient {
    /// Connects and reads the greeting.
    fn connect(addr: SocketAddr) -> ChatClient {
        let mut c = ChatClient::connect_raw(addr);
        assert_eq!(c.line(), Some(format!("You are {}", c.who)));
        c
    }

    /// The next line without its newline, `None` at EOF (or a reset).
    fn line(&mut self) -> Option<String> {
        let mut l = Vec::new();
        match self.r.read_until(b'\n', &mut l) {
            Ok(0) => None,
            Ok(_) => {
                assert_eq!(l.pop(), Some(b'\n'), "{}: partial line", self.who);
                Some(String::from_utf8(l).expect("utf-8 line"))
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
            Err(e) => panic!("{}: read: {e}", self.who),
        }
    }

    /// Connects without expecting a greeting (to a server that is not the chat).
    fn connect_raw(addr: SocketAddr) -> ChatClient {
        let w = TcpStream::connect_timeout(&addr, WATCHDOG).unwrap();
        w.set_read_timeout(Some(WATCHDOG)).unwrap();
        w.set_write_timeout(Some(WATCHDOG)).unwrap();
        let who = w.local_addr().unwrap().to_string();
        ChatClient {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
            who,
        }
    }

    fn say(&mut self, text: &str) {
        self.w.write_all(text.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }
}

/// How many arrivals and departures an announcement line reports: `<addr> has arrived`,
/// `<addr> has left`, or the chat's summary of those it did not announce one by one,
/// `(<n> more arrived, <m> more left)`. `None` for any other line.
fn announced(line: &str) -> Option<(u64, u64)> {
    if line.ends_with(" has arrived") {
        return Some((1, 0));
    }
    if line.ends_with(" has left") {
        return Some((0, 1));
    }
    let inner = line.strip_prefix('(')?.strip_suffix(')')?;
    let (a, l) = inner.split_once(" more arrived, ")?;
    let l = l.strip_suffix(" more left")?;
    Some((a.parse().ok()?, l.parse().ok()?))
}

/// What a reading client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Lines from the watched sender, all in order.
    lines: u64,
    /// Announcement lines, and the arrivals and departures they reported.
    announcements: u64,
    arrived: u64,
    left: u64,
    /// `true` if the server closed the connection.
    eof: bool,
}

/// Reads `client` on a thread until `<from>: end` (or EOF), checking that the lines from
/// `from` are `<from>: <i> ...` for i = 0, 1, ... Live counts of arrivals and departures go
/// to `progress`.
fn watch(
    mut client: ChatClient,
    from: String,
    progress: Arc<(AtomicU64, AtomicU64)>,
) -> std::thread::JoinHandle<(ChatClient, Seen)> {
    std::thread::spawn(move || {
        let prefix = format!("{from}: ");
        let mut seen = Seen::default();
        loop {
            let Some(l) = client.line() else {
                seen.eof = true;
                break;
            };
            if let Some(text) = l.strip_prefix(&prefix) {
                if text == "end" {
                    break;
                }
                let n = text.split(' ').next().unwrap_or_default();
                assert_eq!(
                    n.parse::<u64>().ok(),
                    Some(seen.lines),
                    "{}: lost or reordered line from {from}",
                    client.who
                );
                seen.lines += 1;
            } else if let Some((a, d)) = announced(&l) {
                seen.announcements += 1;
                seen.arrived += a;
                seen.left += d;
                progress.0.fetch_add(a, Ordering::Relaxed);
                progress.1.fetch_add(d, Ordering::Relaxed);
            } else {
                panic!("{}: unexpected line {:.80?}", client.who, l);
            }
        }
        (client, seen)
    })
}

/// A client that connects and never reads, with a small receive buffer so that the server's
/// writes to it stall early.
fn non_reader(addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect_timeout(&addr.into(), WATCHDOG).unwrap();
    s.into()
}

// ---------------------------------------------------------------------------------------------
// chat: memory

/// Non-reading clients the chat memory test connects (the original report: 40 cost 615 MiB).
const NON_READERS: usize = 40;
/// Bytes of each flood line: close to the chat's 64 KiB line limit.
const BIG_LINE: usize = 60 * 1024;
/// Highest server `VmRSS` growth the chat memory test accepts, in KiB. A line is stored once
/// for all clients and each client's queue is bounded in bytes (1 MiB by default), so the
/// queued lines cost a few MiB whatever the number of clients; before, each client held its
/// own copy of up to 256 lines (16 MiB each at this line length).
const CHAT_RSS_GROWTH_KIB: u64 = 32 << 10;

#[test]
fn chat_non_reading_clients_and_a_flood_of_long_lines_keep_memory_bounded() {
    let _g = serial();
    let (_s, _w) = common::shared();
    let server = chat(&[]);
    let addr = server.addr;
    let rss_before = server.rss_kib();
    let log_before = server.stderr_lines();

    let healthy = ChatClient::connect(addr);
    let progress = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    // Connected before the flooder, so that their arrivals are the healthy client's first
    // announcements.
    let stalled: Vec<TcpStream> = (0..NON_READERS).map(|_| non_reader(addr)).collect();
    let mut flooder = ChatClient::connect(addr);
    let flooder_who = flooder.who.clone();
    let reader = watch(healthy, flooder_who.clone(), progress.clone());
    // The flooder reads what comes to it (announcements) and throws it away.
    let mut flooder_in = flooder.r.get_ref().try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        let mut sink = vec![0u8; 64 * 1024];
        while matches!(flooder_in.read(&mut sink), Ok(n) if n > 0) {}
    });
    wait_until("the arrivals of all clients", WATCHDOG, || {
        progress.0.load(Ordering::Relaxed) > NON_READERS as u64
    });

    // Long lines until every non-reading client is gone, then 100 more.
    let pad = "x".repeat(BIG_LINE);
    let start = Instant::now();
    let mut peak = rss_before;
    let mut i = 0u64;
    let mut after = 0;
    while after < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the non-reading clients were not all disconnected ({} left)",
            progress.1.load(Ordering::Relaxed)
        );
        flooder.say(&format!("{i} {pad}"));
        i += 1;
        if i % 8 == 0 {
            peak = peak.max(server.rss_kib());
        }
        if progress.1.load(Ordering::Relaxed) >= NON_READERS as u64 {
            after += 1;
        }
    }
    flooder.say("end");
    let (healthy, seen) = common::join_thread(reader);
    peak = peak.max(server.rss_kib());
    let growth = peak.saturating_sub(rss_before);
    println!(
        "chat: {NON_READERS} non-reading clients, {i} lines of {} KiB in {:.1} s: server VmRSS \
         {rss_before} KiB before, peak {peak} KiB (+{} MiB); {} log lines",
        BIG_LINE >> 10,
        start.elapsed().as_secs_f64(),
        growth >> 10,
        server.stderr_lines() - log_before
    );

    // The healthy client kept up and got every line, in order; only the stalled ones left.
    assert!(!seen.eof, "the healthy client was disconnected: {seen:?}");
    assert_eq!(seen.lines, i, "{seen:?}");
    assert_eq!(seen.left, NON_READERS as u64, "{seen:?}");
    // One line for the first slow client; the others are counted for a line 10 s later.
    let log_lines = server.stderr_lines() - log_before;
    assert!(log_lines <= 3, "the server logged {log_lines} lines");
    assert!(
        growth <= CHAT_RSS_GROWTH_KIB,
        "server VmRSS grew by {growth} KiB (limit {CHAT_RSS_GROWTH_KIB} KiB)"
    );
    // The server closed every stalled connection: each reads its backlog, then EOF.
    for mut s in stalled {
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        loop {
            match s.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a stalled client was not disconnected: {e}"),
            }
        }
    }
    drop(healthy);
    // Ends the drain thread's read (it holds a clone of the socket).
    let _ = flooder.w.shutdown(std::net::Shutdown::Both);
    common::join_thread(drain);
    server.kill_and_reap();
}

// ---------------------------------------------------------------------------------------------
// chat: join/leave flood

/// How long the join/leave flood lasts.
const CHURN: Duration = Duration::from_secs(3);
/// Threads that connect and leave again and again.
const CHURN_THREADS: usize = 3;

/// Connections each churning thread keeps open (not reading) while it opens new ones.
const CHURN_WINDOW: usize = 50;

/// Connects and leaves until `stop`: keeps `CHURN_WINDOW` connections that never read open,
/// closing the oldest as it opens a new one, every other one with a reset. Returns the number
/// of connections.
fn churn(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    let mut open = std::collections::VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(s) = TcpStream::connect_timeout(&addr, WATCHDOG) else {
            continue;
        };
        n += 1;
        if n % 2 == 0 {
            // SO_LINGER 0: closing sends a reset.
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        open.push_back(s);
        if open.len() > CHURN_WINDOW {
            open.pop_front();
        }
    }
    n
}

#[test]
fn chat_join_leave_flood_keeps_a_healthy_reader_and_stays_quiet() {
    let _g = serial();
    let (_s, _w) = common::shared();
    let mut server = chat(&[]);
    let addr = server.addr;

    let healthy = ChatClient::connect(addr);
    let progress = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let mut talker = ChatClient::connect(addr);
    let talker_who = talker.who.clone();
    let reader = watch(healthy, talker_who, progress.clone());
    wait_until("the talker's arrival", WATCHDOG, || {
        progress.0.load(Ordering::Relaxed) >= 1
    });
    // The talker reads (and drops) what comes to it.
    let mut talker_in = talker.r.get_ref().try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        let mut sink = vec![0u8; 64 * 1024];
        while matches!(talker_in.read(&mut sink), Ok(n) if n > 0) {}
    });

    let log_before = server.stderr_lines();
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..CHURN_THREADS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || churn(addr, stop))
        })
        .collect();
    // The talker says a line every 5 ms for as long as the flood lasts.
    let start = Instant::now();
    let mut said = 0u64;
    let mut talker_kicked = false;
    while start.elapsed() < CHURN {
        if talker
            .w
            .write_all(format!("{said} hello\n").as_bytes())
            .is_err()
        {
            talker_kicked = true;
            break;
        }
        said += 1;
        // Paces the talker; it synchronises nothing.
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let joins: u64 = churners.into_iter().map(common::join_thread).sum();
    let elapsed = start.elapsed();
    if !talker_kicked {
        talker.say("end");
    }
    let (healthy, seen) = common::join_thread(reader);
    let log_lines = server.stderr_lines() - log_before;
    println!(
        "chat: {joins} joins and leaves in {:.1} s ({:.0}/s); the healthy client got {} lines \
         and {} announcement lines (for {} arrivals, {} departures); the server logged {log_lines} \
         lines; talker disconnected: {talker_kicked}",
        elapsed.as_secs_f64(),
        joins as f64 / elapsed.as_secs_f64(),
        seen.lines,
        seen.announcements,
        seen.arrived,
        seen.left
    );
    assert!(!talker_kicked, "the talker was disconnected");
    assert!(!seen.eof, "the healthy client was disconnected: {seen:?}");
    assert_eq!(seen.lines, said, "{seen:?}");
    assert!(joins > 0);
    // No line per slow client or failed connection: the chat caps its connections (a flood
    // faster than the broadcaster registers clients cannot exhaust its descriptors) and logs
    // what clients cause at most once per 10 s per kind.
    assert!(
        log_lines <= 10,
        "the server logged {log_lines} lines\n{}",
        server.stderr_report()
    );
    // Announced one by one at most 20 a second, the rest in one summary line a second.
    let secs = elapsed.as_secs() + 2;
    assert!(
        seen.announcements <= secs * 21 + 5,
        "{} announcement lines in {elapsed:?}",
        seen.announcements
    );
    drop(healthy);
    let _ = talker.w.shutdown(std::net::Shutdown::Both);
    common::join_thread(drain);
    server.kill_and_reap();
}

// ---------------------------------------------------------------------------------------------
// logs under a reset storm

/// How long the reset storm lasts.
const STORM: Duration = Duration::from_secs(2);

/// Connects, has one line echoed (so the connection is being served), and closes with a reset,
/// until `stop`. Returns the number of connections reset.
fn reset_storm(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, WATCHDOG) else {
            continue;
        };
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        s.write_all(b"ping\n").unwrap();
        let mut echo = [0u8; 5];
        s.read_exact(&mut echo).unwrap();
        assert_eq!(&echo, b"ping\n");
        // SO_LINGER 0: closing sends a reset, which the server's reader sees (ECONNRESET).
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        n += 1;
    }
    n
}

#[test]
fn echo_reset_storm_logs_a_bounded_number_of_lines() {
    let _g = serial();
    let (_s, _w) = common::shared();
    // Its default log filter: `info` (and `warn` for may).
    let mut server = ServerProcess::start(
        Command::new(example_path("echo"))
            .args(["--addr", "127.0.0.1:0"])
            .env_remove("RUST_LOG"),
    );
    let addr = server.addr;
    let before = server.stderr_lines();
    let stop = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || reset_storm(addr, stop))
        })
        .collect();
    let start = Instant::now();
    // Paces the storm's length; it synchronises nothing.
    std::thread::sleep(STORM);
    stop.store(true, Ordering::Relaxed);
    let resets: u64 = storm.into_iter().map(common::join_thread).sum();
    // And it still serves.
    assert_eq!(hostile::line_request(addr, b"after"), b"after");
    let lines = server.stderr_lines() - before;
    println!(
        "echo: {resets} connections reset in {:.1} s; the server logged {lines} lines",
        start.elapsed().as_secs_f64()
    );
    assert!(resets >= 100, "only {resets} resets");
    // The first reset at once, the others counted for one line 10 s later.
    assert!(
        lines <= 3,
        "{lines} lines for {resets} resets\n{}",
        server.stderr_report()
    );
    server.kill_and_reap();
}

// ---------------------------------------------------------------------------------------------
// proxy: connect/close storm

/// The proxy's descriptor limit (soft and hard) in the storm test: room for
/// (256 - 32) / 4 = 56 proxied connections.
const PROXY_FDS: u64 = 256;
/// Storm threads, and the connections each keeps open at once (160 in all, more than 56).
const STORM_THREADS: usize = 4;
const STORM_WINDOW: usize = 40;

/// Opens connections through the proxy until `stop`, each sending a line, keeping
/// `STORM_WINDOW` open and closing the oldest as it opens a new one (every other one with a
/// reset). Returns the number of connections.
fn connect_close_storm(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut n = 0u64;
    let mut open = std::collections::VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, WATCHDOG) else {
            continue;
        };
        n += 1;
        let _ = s.write_all(b"storm\n");
        if n % 2 == 0 {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
        open.push_back(s);
        if open.len() > STORM_WINDOW {
            open.pop_front();
        }
    }
    n
}

#[test]
fn proxy_connect_close_storm_stays_within_its_descriptors_and_serves_the_next_client() {
    use std::os::unix::process::CommandExt;
    let _g = serial();
    let (_s, _w) = common::shared();
    let upstream =
        ServerProcess::start(Command::new(example_path("echo")).args(["--addr", "127.0.0.1:0"]));
    let mut cmd = Command::new(example_path("proxy"));
    cmd.args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.addr.to_string());
    // SAFETY: runs in the forked child before exec and only calls setrlimit, which is
    // async-signal-safe; the struct lives on the child's stack for the call.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: PROXY_FDS,
                rlim_max: PROXY_FDS,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut proxy = ServerProcess::start(&mut cmd);
    let addr = proxy.addr;
    let fds_before = proxy.fds();
    let log_before = proxy.stderr_lines();

    let stop = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = (0..STORM_THREADS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || connect_close_storm(addr, stop))
        })
        .collect();
    let start = Instant::now();
    let mut peak = fds_before;
    while start.elapsed() < STORM {
        peak = peak.max(proxy.fds());
        proxy.assert_alive("during the storm");
        // Paces the sampling of the proxy's descriptors; it synchronises nothing.
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let conns: u64 = storm.into_iter().map(common::join_thread).sum();
    // The storm's connections are closed: the proxy releases them (bounded wait).
    let released = Instant::now();
    wait_until(
        "the proxy to release the storm's connections",
        WATCHDOG,
        || proxy.fds() <= fds_before,
    );
    let released = released.elapsed();
    // The next client is served at once, on its first try.
    let mut c = ChatClient::connect_raw(addr);
    c.say("hello through the proxy");
    assert_eq!(c.line().as_deref(), Some("hello through the proxy"));
    let log_lines = proxy.stderr_lines() - log_before;
    let report = proxy.stderr_report();
    println!(
        "proxy: {conns} storm connections in {:.1} s; descriptors {fds_before} before, peak \
         {peak} (limit {PROXY_FDS}); released in {:.0} ms; {log_lines} log lines",
        STORM.as_secs_f64(),
        released.as_secs_f64() * 1000.0
    );
    assert!(conns > 200, "only {conns} storm connections");
    // Never out of descriptors: no failed accept, no failed dial.
    assert!(peak < PROXY_FDS as usize, "peak {peak} descriptors");
    assert!(!report.contains("Too many open files"), "{report}");
    assert!(log_lines <= 5, "{log_lines} lines\n{report}");
    drop(c);
    proxy.kill_and_reap();
    upstream.kill_and_reap();
}
