//! Hostile clients against servers whose worker threads never run out of work: the vendored
//! may's scheduler fixes 9-11 (`vendor/may/PATCHES.md`). Goroutine pairs that keep waking each
//! other never leave their worker's run queue empty; before those fixes such a worker took in
//! no new or timed-out goroutine (fixes 9, 10) and polled none of its sockets (fix 11) for as
//! long as the pair went on, so every connection on it stalled and no socket timeout fired.
//!
//! - In-process servers beside ping-pong pairs (one pair per worker): replies complete and in
//!   order (ping-pong clients, a flood on one connection beside 2,000 idle ones), idle, frame
//!   (slowloris) and write timeouts (a client that never reads) still close their connections
//!   with the right reason, resets mid-write close as `PeerReset`, timed waits (sleep,
//!   `recv_timeout`, `after`, a context's deadline, a socket read timeout) end; then every
//!   connection and goroutine is gone.
//! - examples/echo and examples/kv as child processes (`taskset -c 0` for one worker): 2,000
//!   idle connections and a flood on one, clients that never read beside ping-pong clients, a
//!   slowloris trickle, resets mid-write; every reply complete and in order, and the server's
//!   sockets back to where they were.
//!
//! Nothing here asserts a duration. `timer_lateness_beside_ping_pong_pairs` (ignored) prints
//! how late timed waits end beside the pairs:
//! `cargo test --release --test sched_hostile -- --ignored --nocapture timer_lateness`.
//!
//! `sched_hostile_one_worker.rs` runs the same tests on one worker thread. Linux only
//! (`/proc`, `taskset`).

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLockWriteGuard};
use std::time::{Duration, Instant};

use goway::chan;
use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::CloseReason;

mod common;
use common::example::{Example, build_example};
use common::net_server::{Running, run};
use common::wait::wait_until;
use common::{WATCHDOG, client, join, join_thread, read_to_close, reset};

/// Worker threads for this test binary (`None`: the default).
#[allow(dead_code)]
const WORKERS: Option<usize> = None;

/// Applies the worker count and runs the tests one at a time (each one's pairs keep its
/// workers busy, and the goroutine counts must be this test's alone), each bounded by the
/// harness's watchdog.
fn setup() -> (RwLockWriteGuard<'static, ()>, common::Watchdog) {
    if let Some(n) = crate::WORKERS {
        let _ = goway::runtime::Config::new().workers(n).apply();
    }
    common::exclusive()
}

/// Accepts one connection on `l`, failing (never hanging) after `WATCHDOG`.
fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let c = common::wait_for("a connection to accept", WATCHDOG, || match l.accept() {
        Ok((c, _)) => Ok(c),
        Err(e) => Err(e),
    });
    c.set_nonblocking(false).unwrap();
    c
}

/// The runtime's worker count (one busy pair for each).
fn workers() -> usize {
    crate::WORKERS.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

// ----- ping-pong pairs -------------------------------------------------------------------------

/// Goroutine pairs handing a value back and forth on unbuffered channels until stopped: their
/// workers' run queues never run dry. Stopped and joined on drop.
struct Pairs {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    handles: Vec<goway::JoinHandle<()>>,
}

impl Pairs {
    /// Starts `n` pairs and waits until they run.
    fn start(n: usize) -> Pairs {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for _ in 0..n {
            let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
            let (s, r) = (stop.clone(), rounds.clone());
            handles.push(goway::go!(move || {
                let mut i = 0;
                while !s.load(Ordering::Relaxed) {
                    if ping_tx.send(i).is_err() {
                        break;
                    }
                    match pong_rx.recv() {
                        Ok(j) => i = j + 1,
                        Err(_) => break,
                    }
                    r.fetch_add(1, Ordering::Relaxed);
                }
                // Dropping `ping_tx` ends the partner.
            }));
            handles.push(goway::go!(move || {
                while let Ok(i) = ping_rx.recv() {
                    if pong_tx.send(i).is_err() {
                        break;
                    }
                }
            }));
        }
        let p = Pairs {
            stop,
            rounds,
            handles,
        };
        let want = 1000 * n as u64;
        wait_until("the ping-pong pairs to run", WATCHDOG, || {
            p.rounds() >= want
        });
        p
    }

    fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops and joins the pairs; checks they were still running (rounds past `before`).
    fn finish(mut self, before: u64) {
        let ran = self.rounds();
        self.stop_join();
        assert!(
            ran > before,
            "the pairs stopped running ({ran} rounds, {before} before the attack)"
        );
    }

    fn stop_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            join(h);
        }
    }
}

impl Drop for Pairs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop_join();
        } else {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

// ----- client helpers --------------------------------------------------------------------------

/// Writes `frame` over and over (64 KiB of copies a write) until the socket takes no more
/// (the peer is not reading); returns the bytes written. Only the last frame may be cut.
fn push_until_full(c: &mut TcpStream, frame: &[u8]) -> usize {
    let chunk = frame.repeat((64 << 10) / frame.len() + 1);
    c.set_nonblocking(true).unwrap();
    let (mut sent, mut at) = (0, 0);
    loop {
        match c.write(&chunk[at..]) {
            Ok(n) => {
                sent += n;
                at = (at + n) % chunk.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("flood: {e}"),
        }
    }
    c.set_nonblocking(false).unwrap();
    sent
}

/// `rounds` request-reply round trips on `c`, each reply checked against `reply(i)`.
fn ping_pong(c: &mut TcpStream, rounds: u64, req: fn(u64) -> Vec<u8>, reply: fn(u64) -> Vec<u8>) {
    for i in 0..rounds {
        c.write_all(&req(i)).unwrap();
        let want = reply(i);
        let mut got = vec![0u8; want.len()];
        c.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("round {i}: {e}"));
        assert_eq!(got, want, "round {i}");
    }
}

/// `n` pipelined requests written by a thread while this one reads the replies: every reply
/// there, in order.
fn flood(c: TcpStream, n: u64, req: fn(u64) -> Vec<u8>, reply: fn(u64) -> Vec<u8>) {
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..n {
            buf.extend_from_slice(&req(i));
            if buf.len() >= 16 << 10 {
                w.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        w.write_all(&buf).unwrap();
    });
    let mut r = BufReader::with_capacity(64 << 10, c);
    for i in 0..n {
        let want = reply(i);
        let mut got = vec![0u8; want.len()];
        r.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("flood reply {i}: {e}"));
        assert_eq!(got, want, "flood reply {i}");
    }
    join_thread(writer);
}

fn line(i: u64) -> Vec<u8> {
    format!("m{i}\n").into_bytes()
}

// ----- in-process servers ----------------------------------------------------------------------

/// A line echo server; `big` is answered with `BIG` bytes. `read_limit`, if any, is its idle
/// and frame timeout, `write_limit` its write timeout.
fn echo_server(read_limit: Option<Duration>, write_limit: Option<Duration>) -> Running {
    let mut b = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .max_frame(2 * BIG);
    if let Some(d) = read_limit {
        b = b.idle_timeout(d).frame_timeout(d);
    }
    if let Some(d) = write_limit {
        b = b.write_timeout(d);
    }
    let srv = b
        .handler(|conn| {
            for frame in conn {
                if frame == b"big" {
                    conn.send(vec![b'B'; BIG - 1])?;
                } else {
                    conn.send(frame)?;
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    run(srv)
}

/// A reply larger than a loopback connection's socket buffers take.
const BIG: usize = 8 << 20;

/// The pairs stopped, the server shut down: the process's goroutines back to `baseline`.
fn back_to(baseline: usize) {
    wait_until("the goroutine count back to its baseline", WATCHDOG, || {
        goway::runtime::num_goroutines() == baseline
    });
}

/// Ping-pong clients and a flood on one connection beside 2,000 idle ones: every reply, in
/// order; the idle ones then close as `Eof`.
#[test]
fn an_idle_crowd_a_flood_and_ping_pong_clients_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let s = echo_server(None, None);
    let before = pairs.rounds();
    const CROWD: usize = 2000;
    let crowd: Vec<TcpStream> = (0..CROWD).map(|_| client(s.addr)).collect();
    wait_until("the crowd accepted", WATCHDOG, || {
        s.handle.stats().active == CROWD as u64
    });
    let pingers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = client(s.addr);
            std::thread::spawn(move || ping_pong(&mut c, 300, line, line))
        })
        .collect();
    flood(client(s.addr), 50_000, line, line);
    for p in pingers {
        join_thread(p);
    }
    drop(crowd);
    let st = s.settled();
    assert_eq!(st.closed_by[CloseReason::Eof], CROWD as u64 + 5, "{st:?}");
    pairs.finish(before);
    s.stop();
    back_to(baseline);
}

/// A silent client (`IdleTimeout`), a frame begun and abandoned and a slowloris trickle
/// (`FrameTimeout`) are closed while ping-pong pairs keep the workers busy, and a ping-pong
/// client is served all along.
#[test]
fn idle_and_frame_timeouts_fire_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let s = echo_server(Some(Duration::from_millis(200)), None);
    let before = pairs.rounds();
    let mut silent = client(s.addr);
    let mut partial = client(s.addr);
    partial.write_all(b"never ends").unwrap();
    let mut slow = client(s.addr);
    let trickle = std::thread::spawn(move || {
        // A byte every 10 ms, never a newline, until the server closes (at most 10 s).
        for _ in 0..1000 {
            if slow.write_all(b"s").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        read_to_close(&mut slow)
    });
    let mut pinger = client(s.addr);
    ping_pong(&mut pinger, 200, line, line);
    assert!(read_to_close(&mut silent).is_empty());
    assert!(read_to_close(&mut partial).is_empty());
    assert!(join_thread(trickle).is_empty());
    // The ping-pong client was served beside them; it goes idle now and is timed out too.
    assert!(read_to_close(&mut pinger).is_empty());
    let st = s.settled();
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 2, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::FrameTimeout], 2, "{st:?}");
    assert_eq!(st.closed, 4, "{st:?}");
    pairs.finish(before);
    s.stop();
    back_to(baseline);
}

/// A client that asks for large replies and never reads is closed by the write timeout
/// (`WriteTimeout`) while ping-pong pairs keep the workers busy; a ping-pong client is served
/// meanwhile.
#[test]
fn a_never_reading_client_is_write_timed_out_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let s = echo_server(None, Some(Duration::from_millis(200)));
    let before = pairs.rounds();
    let mut deaf = client(s.addr);
    deaf.write_all(b"big\nbig\n").unwrap();
    let mut pinger = client(s.addr);
    ping_pong(&mut pinger, 100, line, line);
    wait_until("the never-reading client closed", WATCHDOG, || {
        s.handle.stats().closed_by[CloseReason::WriteTimeout] == 1
    });
    ping_pong(&mut pinger, 100, line, line);
    pinger.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_close(&mut pinger).is_empty());
    drop(deaf);
    let st = s.settled();
    assert_eq!(st.closed_by[CloseReason::WriteTimeout], 1, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
    assert_eq!(st.closed, 2, "{st:?}");
    pairs.finish(before);
    s.stop();
    back_to(baseline);
}

/// Clients that reset their connections while the server writes large replies to them: each
/// closes once, as `PeerReset`, beside busy pairs.
#[test]
fn resets_mid_write_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let s = echo_server(None, None);
    let before = pairs.rounds();
    const N: usize = 4;
    let cs: Vec<TcpStream> = (0..N)
        .map(|_| {
            let mut c = client(s.addr);
            c.write_all(b"big\n").unwrap();
            c
        })
        .collect();
    // Each connection's replies fill its socket: a writer goroutine holds the rest (the
    // accept loop, and a handler and a writer per connection).
    wait_until("a writer per connection", WATCHDOG, || {
        s.handle.stats().goroutines > 2 * N as u64
    });
    for c in cs {
        reset(c);
    }
    let st = s.settled();
    assert_eq!(st.closed_by[CloseReason::PeerReset], N as u64, "{st:?}");
    assert_eq!(st.closed, N as u64, "{st:?}");
    let mut c = client(s.addr);
    ping_pong(&mut c, 10, line, line);
    drop(c);
    s.settled();
    pairs.finish(before);
    s.stop();
    back_to(baseline);
}

/// Timed waits of every kind end beside busy pairs: `sleep`, `recv_timeout`, `after`, a
/// context's deadline (parks timed by may's timer thread or goway's) and a socket read
/// timeout (the worker's own timer list).
#[test]
fn timed_waits_end_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let before = pairs.rounds();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let ms = Duration::from_millis(1);
    let hs = vec![
        goway::go!(move || {
            for _ in 0..50 {
                goway::time::sleep(ms);
            }
        }),
        goway::go!(move || {
            let (_tx, rx) = chan::bounded::<()>(0);
            for _ in 0..50 {
                assert!(rx.recv_timeout(ms).is_err());
            }
        }),
        goway::go!(move || {
            for _ in 0..50 {
                goway::time::after(ms).recv().unwrap();
            }
        }),
        goway::go!(move || {
            for _ in 0..50 {
                let bg = goway::context::background();
                let (ctx, _cancel) = goway::context::with_timeout(&bg, ms);
                let _ = ctx.done().recv();
                assert!(ctx.err().is_some());
            }
        }),
        goway::go!(move || {
            let mut c = goway::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(ms)).unwrap();
            let mut b = [0u8; 8];
            for _ in 0..50 {
                let e = c.read(&mut b).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            }
        }),
    ];
    let _peer = accept(&silent);
    for h in hs {
        join(h);
    }
    pairs.finish(before);
    back_to(baseline);
}

/// Timed receives racing their wake-ups beside busy pairs: a timeout (a timed-out goroutine
/// handed to a worker by may's timer thread) and a send that comes at the same moment never
/// lose, repeat or reorder a value.
#[test]
fn timeouts_racing_wake_ups_lose_no_value_beside_busy_pairs() {
    let _one = setup();
    let baseline = goway::runtime::num_goroutines();
    let pairs = Pairs::start(workers());
    let before = pairs.rounds();
    const N: u64 = 500;
    let mut hs = Vec::new();
    for k in 0..4u64 {
        let (tx, rx) = chan::bounded::<u64>(1);
        hs.push(goway::go!(move || {
            for i in 0..N {
                // Sleeps of 0-49 µs: the send lands before, at or after the receiver's
                // timeout.
                goway::time::sleep(Duration::from_micros((i * 7 + k) % 50));
                tx.send(i).unwrap();
            }
        }));
        hs.push(goway::go!(move || {
            let mut next = 0;
            while next < N {
                match rx.recv_timeout(Duration::from_micros(20)) {
                    Ok(v) => {
                        assert_eq!(v, next, "value out of order, repeated or lost");
                        next += 1;
                    }
                    Err(chan::RecvTimeoutError::Timeout) => {}
                    Err(e) => panic!("{e:?} after {next} values"),
                }
            }
            assert!(rx.try_recv().is_err(), "a value past the last");
        }));
    }
    for h in hs {
        join(h);
    }
    pairs.finish(before);
    back_to(baseline);
}

/// Not a test: how late timed waits end beside busy pairs, printed (p50, p99, max).
#[test]
#[ignore]
fn timer_lateness_beside_ping_pong_pairs() {
    let _one = setup();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    for with_pairs in [false, true] {
        let pairs = with_pairs.then(|| Pairs::start(workers()));
        let want = Duration::from_millis(1);
        let measure = |name: &'static str, f: Box<dyn Fn() + Send>| {
            let h = goway::go!(move || {
                let mut v: Vec<Duration> = (0..500)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().saturating_sub(want)
                    })
                    .collect();
                v.sort();
                v
            });
            let v = join(h);
            let n = v.len();
            println!(
                "workers {} pairs {with_pairs}: {name:14} late p50 {:?} p99 {:?} max {:?}",
                workers(),
                v[n / 2],
                v[n * 99 / 100],
                v[n - 1]
            );
        };
        measure("sleep", Box::new(move || goway::time::sleep(want)));
        measure(
            "recv_timeout",
            Box::new(move || {
                let (_tx, rx) = chan::bounded::<()>(0);
                let _ = rx.recv_timeout(want);
            }),
        );
        measure(
            "after",
            Box::new(move || {
                let _ = goway::time::after(want).recv();
            }),
        );
        let c = goway::net::TcpStream::connect(addr).unwrap();
        let _peer = accept(&silent);
        c.set_read_timeout(Some(want)).unwrap();
        measure(
            "socket read",
            Box::new(move || {
                let _ = (&c).read(&mut [0u8; 8]);
            }),
        );
        drop(pairs);
    }
}

// ----- the examples, as child processes ---------------------------------------------------------

/// Starts example `name` with `args` on 127.0.0.1:0, on one CPU (one worker) if this binary
/// runs one worker.
fn start_example(name: &str, args: &[&str]) -> Example {
    let exe = build_example(name);
    let mut cmd = match crate::WORKERS {
        Some(1) => {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(exe);
            c
        }
        _ => Command::new(exe),
    };
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    Example::start_with(&mut cmd, true)
}

/// The socket descriptors of process `pid` (its other descriptors come and go: the runtime
/// reads `/proc/self/maps` now and then).
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The attacks of the module doc against a served example speaking `req`/`reply`; `trickle`
/// is a request whose reply is `trickled`.
fn attack_example(
    ex: &Example,
    req: fn(u64) -> Vec<u8>,
    reply: fn(u64) -> Vec<u8>,
    trickle: &'static [u8],
    trickled: &'static [u8],
) {
    let addr: SocketAddr = ex.addr().parse().unwrap();
    let pid = ex.pid();
    // A first round trip, so that the runtime has started everything it keeps.
    let mut first = client(addr);
    ping_pong(&mut first, 1, req, reply);
    let base = fds(pid);
    // 2,000 idle connections, then a flood on one.
    const CROWD: usize = 2000;
    let crowd: Vec<TcpStream> = (0..CROWD).map(|_| client(addr)).collect();
    common::wait_for("the crowd accepted", WATCHDOG, || {
        let n = fds(pid);
        if n >= base + CROWD {
            Ok(())
        } else {
            Err(format!("{n} sockets, {base} before the crowd"))
        }
    });
    flood(client(addr), 50_000, req, reply);
    // Clients that never read, clients that reset mid-write, beside ping-pong clients and a
    // slowloris trickle.
    let deaf: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut c = client(addr);
            assert!(push_until_full(&mut c, &req(i)) > 0);
            c
        })
        .collect();
    let pingers: Vec<_> = (0..4)
        .map(|_| {
            let mut c = client(addr);
            std::thread::spawn(move || ping_pong(&mut c, 500, req, reply))
        })
        .collect();
    let slow = std::thread::spawn(move || {
        let mut c = client(addr);
        for b in trickle {
            c.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = vec![0u8; trickled.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, trickled);
    });
    for i in 0..8 {
        let mut c = client(addr);
        assert!(push_until_full(&mut c, &req(i)) > 0);
        reset(c);
    }
    for p in pingers {
        join_thread(p);
    }
    join_thread(slow);
    for c in deaf {
        reset(c);
    }
    drop(crowd);
    wait_until("the server's sockets back to before", WATCHDOG, || {
        fds(pid) <= base
    });
    // Still served, and the first connection too.
    ping_pong(&mut client(addr), 10, req, reply);
    ping_pong(&mut first, 10, req, reply);
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")),
        "the example died"
    );
}

#[test]
fn the_echo_example_under_hostile_clients() {
    let _one = setup();
    let ex = start_example("echo", &[]);
    attack_example(&ex, line, line, b"a slow line\n", b"a slow line\n");
}

fn resp_echo(i: u64) -> Vec<u8> {
    let m = format!("m{i}");
    format!("*2\r\n$4\r\nECHO\r\n${}\r\n{m}\r\n", m.len()).into_bytes()
}

fn resp_echoed(i: u64) -> Vec<u8> {
    let m = format!("m{i}");
    format!("${}\r\n{m}\r\n", m.len()).into_bytes()
}

#[test]
fn the_kv_example_under_hostile_clients() {
    let _one = setup();
    let ex = start_example("kv", &[]);
    attack_example(
        &ex,
        resp_echo,
        resp_echoed,
        b"*1\r\n$4\r\nPING\r\n",
        b"+PONG\r\n",
    );
}
