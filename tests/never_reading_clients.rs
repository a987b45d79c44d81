//! Hostile clients that pipeline requests for large replies and never read them, against the
//! HTTP server and the framed server, each in a child process.
//!
//! The server's writes to such clients stall, its write timeouts fire for hundreds of
//! connections at about the same time, it closes them, and the clients reconnect at once and do
//! it again: bursts of write timeouts. On may 0.3.51 unpatched (with goway's old 1 ms sleep
//! after every socket timeout) a server under this attack died of heap corruption
//! (`malloc_consolidate(): unaligned fastbin chunk detected` and other glibc aborts, or
//! SIGSEGV): `Sleep::subscribe` and `Park::subscribe` touched a coroutine after handing it to
//! another thread (see `vendor/may/PATCHES.md`). Each test checks that the server is alive all
//! along (a death fails the test at once, naming the signal and showing the end of the
//! server's stderr), that every connection is gone from the server once the clients closed
//! (its descriptor count is back where it was), that it still answers normal requests
//! correctly, and that it is the test's own SIGKILL that ends it.
//!
//! What makes the race fire, found by trying on the old code (a 2-core machine):
//! - handlers that contend for a goroutine mutex (`goway::sync::Mutex`, so goroutines park and
//!   are handed over between threads all the time) and allocate: `http_todo`'s `GET /todos`
//!   shape. The same flood against a handler that writes a constant 256 KiB killed nothing;
//! - loopback's own MSS and buffer sizes, so that the server's kernel send buffers grow to
//!   megabytes and its threads spend long stretches in `write`;
//! - a busy machine: two spinning threads in the test process during the flood. On an idle
//!   machine the old `http_todo`-shaped server died in about 1 run in 5; with them, in every
//!   run (the HTTP test below, run on the old code: 5 deaths in 5 runs, after 3.5-13 s of
//!   flood, each a glibc `malloc(): unaligned fastbin chunk detected` abort or the like).
//!
//! The servers of the CI tests are this test binary run again as a child process (the
//! `child_server` test with `GOWAY_NEVER_READ_CHILD` set), because the examples cannot shorten
//! their 10 s write timeouts: a 400 ms write timeout gives several bursts within the CI budget.
//! The HTTP one is `http_todo`'s `GET /todos` (a context with a timeout, the list copied under
//! a goroutine mutex, written as JSON: 256 KiB); the framed one (`goway::net::Server`, lines)
//! answers each `big` line with a store's records, copied under a goroutine mutex and joined
//! (256 KiB), and echoes any other line.
//!
//! The soak variants (ignored) run the attack for `GOWAY_NEVER_READ_SECS` seconds (default
//! 180, without the spinning threads) against the unmodified `http_todo` example (filled with
//! to-dos until `GET /todos` is about 256 KiB; its own 10 s write timeout), the unmodified
//! `echo` example (4 KiB lines sent for as long as it reads them; 10 s write timeout), and the
//! two short-timeout child servers, printing the server's RSS every 10 s. Several runs in a
//! row, with the examples built first:
//!
//! ```text
//! cargo build --release --examples
//! for i in 1 2 3; do
//!   GOWAY_NEVER_READ_SECS=180 cargo test --release --test never_reading_clients -- \
//!     --ignored --test-threads=1 --nocapture soak_ || break
//! done
//! ```
//!
//! `child_server` is ignored too and does nothing unless `GOWAY_NEVER_READ_CHILD` is set, so
//! `-- --ignored` without a filter also passes it.
//!
//! Linux only (`poll`, `/proc`). Each test holds the machine alone (a lock): two floods at
//! once would halve each one's CPU on a 2-core CI machine.
#![cfg(feature = "json")]

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hostile::{AttackReport, FloodConfig, FloodLength, ServerProcess};

/// Tells the test binary, run again as a child, which server to be: `todo <write timeout ms>
/// <reply bytes>` or `framed <write timeout ms> <reply bytes>`.
const CHILD_ENV: &str = "GOWAY_NEVER_READ_CHILD";
/// Seconds each soak variant floods its server.
const SOAK_ENV: &str = "GOWAY_NEVER_READ_SECS";
const SOAK_DEFAULT_SECS: u64 = 180;

/// Never-reading connections kept open at once.
const CLIENTS: usize = 400;
/// Size of each large reply (`http_todo`'s `GET /todos` in the original report).
const REPLY: usize = 256 << 10;
/// Write timeout of the child servers: short, for many bursts within the CI budget.
const WRITE_TIMEOUT_MS: u64 = 400;
/// How long the CI tests flood their server at least (then on until `MIN_BURSTS` bursts were
/// seen). The old HTTP server died within 14 s in 5 runs of 5.
const CI_FLOOD: Duration = Duration::from_secs(16);
/// Server-closed connections the CI flood must see, in multiples of `CLIENTS`: the write
/// timeouts fired in several bursts. (A burst takes the HTTP child about 2 s of CPU: it
/// answers each connection until megabytes of kernel send buffer are full.)
const MIN_BURSTS: u64 = 3;
/// Spinning threads beside the CI flood (see the module documentation).
const CI_HOGS: usize = 2;
/// Requests each client pipelines on a connection: more than the servers read before their
/// first reply stalls (the HTTP server reads 8 KiB at first, the framed one up to 64 KiB), so
/// that they close with input unread (see `FloodConfig::max_bytes`): 72 KiB of `GET`s, 128
/// KiB of `big` lines.
const PIPELINED: usize = 2048;
const PIPELINED_LINES: usize = 32 << 10;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `n` pipelined `GET path` requests.
fn http_batch(path: &str, n: usize) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
        .repeat(n)
        .into_bytes()
}

/// Clients that send `batch` once per connection, with loopback's own MSS and the kernel's
/// buffer sizes.
fn pipelining_flood(batch: Vec<u8>) -> FloodConfig {
    FloodConfig {
        clients: CLIENTS,
        threads: 4,
        max_bytes: Some(batch.len()),
        batch,
        recv_buffer: None,
        send_buffer: None,
        mss: None,
    }
}

/// Starts this test binary as the child server `spec` (see [`CHILD_ENV`]).
fn child(spec: &str) -> ServerProcess {
    let exe = std::env::current_exe().expect("test binary path");
    ServerProcess::start(
        Command::new(exe)
            .args(["child_server", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, spec),
    )
}

fn soak_duration() -> Duration {
    let secs = match std::env::var(SOAK_ENV) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SOAK_ENV}={v:?}: not a number of seconds")),
        Err(_) => SOAK_DEFAULT_SECS,
    };
    Duration::from_secs(secs)
}

fn print_report(what: &str, r: &AttackReport) {
    let mut out = std::io::stderr().lock();
    let _ = writeln!(
        out,
        "{what}: {:.1} s, {} connects, {} closed by the server ({:.1} per client), {} connect \
         errors, {} KiB of requests sent; server RSS {} KiB before, {} KiB peak, {} KiB after; \
         fds {} before, {} after; {} stderr line(s)",
        r.duration.as_secs_f64(),
        r.connects,
        r.server_closes,
        r.server_closes as f64 / CLIENTS as f64,
        r.connect_errors,
        r.sent_bytes >> 10,
        r.rss_before_kib,
        r.rss_peak_kib,
        r.rss_after_kib,
        r.fds_before,
        r.fds_after,
        r.stderr_lines,
    );
    if r.rss_samples.len() > 2 {
        let s: Vec<String> = r
            .rss_samples
            .iter()
            .map(|(t, kib)| format!("{t}s:{}M", kib >> 10))
            .collect();
        let _ = writeln!(out, "{what}: RSS {}", s.join(" "));
    }
}

/// A flood of at least `duration` that goes on until the server closed `min_bursts` rounds of
/// connections (on a busy machine the bursts come slower), for at most `duration` + 60 s.
fn flood_length(duration: Duration, min_bursts: u64) -> FloodLength {
    FloodLength {
        at_least: duration,
        until_closes: min_bursts * CLIENTS as u64,
        at_most: duration + Duration::from_secs(60),
    }
}

/// The checks every flood must pass besides the server's survival.
fn check_report(r: &AttackReport, min_bursts: u64) {
    assert!(
        r.server_closes >= min_bursts * CLIENTS as u64,
        "the server closed only {} never-reading connections: its write timeouts did not fire \
         in {min_bursts} bursts of {CLIENTS}; {r:?}",
        r.server_closes
    );
    assert!(
        r.fds_after <= r.fds_before,
        "connections left open in the server after the clients closed: {} descriptors, {} \
         before; {r:?}",
        r.fds_after,
        r.fds_before
    );
}

// ----- the child servers ---------------------------------------------------------------------

/// The server process of the other tests; does nothing unless [`CHILD_ENV`] is set.
#[test]
#[ignore = "the server process of the other tests: does nothing unless GOWAY_NEVER_READ_CHILD is set"]
fn child_server() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [kind, ms, bytes] = parts[..] else {
        panic!("{CHILD_ENV}={spec:?}: want `todo|framed <write timeout ms> <reply bytes>`");
    };
    let write_timeout = Duration::from_millis(ms.parse().expect("write timeout in ms"));
    let bytes: usize = bytes.parse().expect("reply size in bytes");
    match kind {
        "todo" => serve_todo(write_timeout, bytes),
        "framed" => serve_framed(write_timeout, bytes),
        _ => panic!("{CHILD_ENV}={spec:?}: unknown server {kind:?}"),
    }
}

#[derive(Clone, serde::Serialize)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
}

/// A title of 200 bytes and more: about 240 bytes of JSON per to-do.
fn title(id: u64) -> String {
    format!("{}-{id}", "t".repeat(200))
}

/// `http_todo`'s `GET /todos` over a store of to-dos filled to about `bytes` of JSON: a
/// context with a timeout for the store's work, the list copied under a goroutine mutex,
/// written as JSON. `GET /ping`: `pong`.
fn serve_todo(write_timeout: Duration, bytes: usize) {
    use goway::http::{self, Request, ResponseWriter, ServeMux, Server, StatusCode};
    let items: Vec<Todo> = (1..=(bytes / 240) as u64)
        .map(|id| Todo {
            id,
            title: title(id),
            done: false,
        })
        .collect();
    let store = Arc::new(goway::sync::Mutex::new(items));
    let mut mux = ServeMux::new();
    mux.handle("GET /todos", move |r: &Request, w: &mut ResponseWriter| {
        let (ctx, _cancel) = goway::context::with_timeout(&r.context(), Duration::from_secs(2));
        if ctx.err().is_some() {
            return http::error(w, "store timed out", StatusCode::GATEWAY_TIMEOUT);
        }
        let items = store.lock().clone();
        http::write_json(w, StatusCode::OK, &items);
    });
    mux.handle("GET /ping", |_: &Request, w: &mut ResponseWriter| {
        let _ = w.write_all(b"pong");
    });
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .handler(mux)
        .write_timeout(write_timeout)
        .bind()
        .expect("bind the HTTP server");
    println!(
        "listening on {}",
        server.local_addr().expect("a TCP address")
    );
    let r = server.serve();
    panic!("serve returned: {r:?}");
}

/// Lines: `big` is answered with every record of a store of 240-byte records (about `bytes`
/// in all), copied under a goroutine mutex and joined; any other line is echoed.
fn serve_framed(write_timeout: Duration, bytes: usize) {
    use goway::net::Server;
    use goway::net::codec::LinesCodec;
    let records: Vec<Vec<u8>> = (1..=(bytes / 240) as u64)
        .map(|id| {
            let mut r = title(id).into_bytes();
            r.resize(240, b'.');
            r
        })
        .collect();
    let store = Arc::new(goway::sync::Mutex::new(records));
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_timeout(write_timeout)
        .handler(move |conn| {
            for frame in conn {
                if frame == b"big" {
                    let records = store.lock().clone();
                    conn.send(records.concat())?;
                } else {
                    conn.send(frame)?;
                }
            }
            Ok(())
        })
        .bind()
        .expect("bind the framed server");
    println!(
        "listening on {}",
        server.local_addr().expect("a TCP address")
    );
    let r = server.serve();
    panic!("serve returned: {r:?}");
}

// ----- the attacks ---------------------------------------------------------------------------

/// The child HTTP server under attack for `duration` (beside `hogs` spinning threads), then
/// checked.
fn attack_todo_child(duration: Duration, min_bursts: u64, rss_every: Duration, hogs: usize) {
    let mut server = child(&format!("todo {WRITE_TIMEOUT_MS} {REPLY}"));
    let addr = server.addr;
    let (status, list) = hostile::http_request(addr, "GET", "/todos", "");
    assert_eq!(status, 200);
    assert!(list.len() >= 250 << 10, "GET /todos: {} bytes", list.len());
    let r = hostile::attack(
        &mut server,
        &pipelining_flood(http_batch("/todos", PIPELINED)),
        flood_length(duration, min_bursts),
        rss_every,
        hogs,
    );
    print_report("http server", &r);
    assert_eq!(
        hostile::http_request(addr, "GET", "/ping", ""),
        (200, b"pong".to_vec())
    );
    let (status, after) = hostile::http_request(addr, "GET", "/todos", "");
    assert_eq!(status, 200);
    assert!(
        after == list,
        "GET /todos: {} bytes, not the list of before",
        after.len()
    );
    check_report(&r, min_bursts);
    server.kill_and_reap();
}

/// The child framed server under attack for `duration` (beside `hogs` spinning threads), then
/// checked.
fn attack_framed_child(duration: Duration, min_bursts: u64, rss_every: Duration, hogs: usize) {
    let mut server = child(&format!("framed {WRITE_TIMEOUT_MS} {REPLY}"));
    let addr = server.addr;
    let big = hostile::line_request(addr, b"big");
    assert!(big.len() >= 250 << 10, "`big`: {} bytes", big.len());
    let r = hostile::attack(
        &mut server,
        &pipelining_flood(b"big\n".repeat(PIPELINED_LINES)),
        flood_length(duration, min_bursts),
        rss_every,
        hogs,
    );
    print_report("framed server", &r);
    assert_eq!(hostile::line_request(addr, b"hello"), b"hello");
    let after = hostile::line_request(addr, b"big");
    assert!(
        after == big,
        "`big`: {} bytes, not the reply of before",
        after.len()
    );
    check_report(&r, min_bursts);
    server.kill_and_reap();
}

#[test]
fn the_http_server_survives_bursts_of_write_timeouts_from_never_reading_clients() {
    let _serial = serial();
    attack_todo_child(CI_FLOOD, MIN_BURSTS, Duration::from_secs(1), CI_HOGS);
}

#[test]
fn the_framed_server_survives_bursts_of_write_timeouts_from_never_reading_clients() {
    let _serial = serial();
    attack_framed_child(CI_FLOOD, MIN_BURSTS, Duration::from_secs(1), CI_HOGS);
}

// ----- soak ----------------------------------------------------------------------------------

/// Bursts a soak against an example (10 s write timeout) must see at least.
fn soak_bursts(d: Duration) -> u64 {
    (d.as_secs() / 30).max(1)
}

#[test]
#[ignore = "soak: minutes (GOWAY_NEVER_READ_SECS); needs `cargo build --release --examples`"]
fn soak_http_todo_example() {
    let _serial = serial();
    let duration = soak_duration();
    let mut server = ServerProcess::start(
        Command::new(common::example::example_path("http_todo")).args(["--addr", "127.0.0.1:0"]),
    );
    let addr = server.addr;
    // Fill the store until the list is about 256 KiB.
    let mut n = 0;
    loop {
        let (status, body) = hostile::http_request(
            addr,
            "POST",
            "/todos",
            &format!(r#"{{"title":"{}"}}"#, title(n)),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        n += 1;
        if n % 100 == 0 {
            let (status, list) = hostile::http_request(addr, "GET", "/todos", "");
            assert_eq!(status, 200);
            if list.len() >= REPLY {
                break;
            }
        }
    }
    let (_, list) = hostile::http_request(addr, "GET", "/todos", "");
    eprintln!("http_todo: {n} to-dos, GET /todos is {} bytes", list.len());
    let r = hostile::attack(
        &mut server,
        &pipelining_flood(http_batch("/todos", PIPELINED)),
        FloodLength::fixed(duration),
        Duration::from_secs(10),
        0,
    );
    print_report("http_todo example", &r);
    eprintln!("{}", server.stderr_report());
    let (status, after) = hostile::http_request(addr, "GET", "/todos", "");
    assert_eq!(status, 200);
    assert!(after == list, "GET /todos changed: {} bytes", after.len());
    check_report(&r, soak_bursts(duration));
    server.kill_and_reap();
}

#[test]
#[ignore = "soak: minutes (GOWAY_NEVER_READ_SECS); needs `cargo build --release --examples`"]
fn soak_echo_example() {
    let _serial = serial();
    let duration = soak_duration();
    let mut server = ServerProcess::start(
        Command::new(common::example::example_path("echo")).args(["--addr", "127.0.0.1:0"]),
    );
    let addr = server.addr;
    let mut line = vec![b'x'; 4095];
    assert_eq!(hostile::line_request(addr, &line), line);
    line.push(b'\n');
    // Echo replies are as large as the requests: the clients send for as long as the server
    // reads. Small buffers and an Ethernet MSS keep what that parks in the kernel modest.
    let flood = FloodConfig {
        clients: CLIENTS,
        threads: 4,
        batch: line.repeat(16),
        max_bytes: None,
        recv_buffer: Some(16 << 10),
        send_buffer: Some(16 << 10),
        mss: Some(1460),
    };
    let r = hostile::attack(
        &mut server,
        &flood,
        FloodLength::fixed(duration),
        Duration::from_secs(10),
        0,
    );
    print_report("echo example", &r);
    eprintln!("{}", server.stderr_report());
    assert_eq!(hostile::line_request(addr, b"hello"), b"hello");
    check_report(&r, soak_bursts(duration));
    server.kill_and_reap();
}

#[test]
#[ignore = "soak: minutes (GOWAY_NEVER_READ_SECS)"]
fn soak_http_server_short_write_timeout() {
    let _serial = serial();
    let d = soak_duration();
    attack_todo_child(d, d.as_secs() / 10, Duration::from_secs(10), 0);
}

#[test]
#[ignore = "soak: minutes (GOWAY_NEVER_READ_SECS)"]
fn soak_framed_server_short_write_timeout() {
    let _serial = serial();
    let d = soak_duration();
    attack_framed_child(d, d.as_secs() / 10, Duration::from_secs(10), 0);
}
