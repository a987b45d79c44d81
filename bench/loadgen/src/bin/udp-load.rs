//! udp-load: the harness's load generator for UDP echo servers. It does not use goway:
//! nonblocking sockets on one mio (epoll) poller per thread.
//!
//! It opens C client sockets (`-c`), each connected to the server, and spreads them over T
//! threads (default: the CPUs this process may use). A datagram is S bytes (`-s`): its
//! sequence number, its socket's number, then bytes that depend on both; every echoed byte is
//! checked (a differing one is a *mismatch*). Closed loop: each socket keeps P datagrams in
//! flight (`-p`), sending one each time an echo arrives. A datagram not echoed within
//! `--loss-ms` milliseconds counts as *lost* and is replaced by a new one, so that loss does
//! not stall the loop; an echo arriving after that counts as *late* (not in the throughput).
//! A send the kernel refuses (a full buffer) is retried at the next sweep.
//!
//! The first W seconds (`-w`) are a warm-up: verified, not counted. The next D seconds (`-d`)
//! are measured. The last line of output is machine-readable:
//!
//! ```text
//! RESULT dgrams_per_s= p50_us= p99_us= p999_us= max_us= sent= echoed= lost= late= loss_pct=
//!        mismatch= errors= sockets= loadgen_cpu=
//! ```
//!
//! `errors` counts mismatches and failed sockets; loss is reported, not counted as an error
//! (UDP may drop). The exit status is 1 when a socket could not be opened or an error was
//! counted.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;
use std::time::{Duration, Instant};

use bench_loadgen::parse_flag;
use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

const USAGE: &str = "\
usage: udp-load --addr HOST:PORT [-c SOCKETS=16] [-s DATAGRAM_BYTES=64] [-p IN_FLIGHT=4]
                [-d SECONDS=5] [-w WARMUP_SECONDS=1] [-t THREADS=#cpus] [--loss-ms MS=200]
DATAGRAM_BYTES is at least 16.";

/// The header of a datagram: sequence number (8 bytes) and socket number (8 bytes).
const HEADER: usize = 16;

struct Opts {
    addr: SocketAddr,
    sockets: usize,
    size: usize,
    in_flight: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    loss: Duration,
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    exit(2)
}

fn parse_opts() -> Opts {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut addr, mut sockets, mut size, mut in_flight) = (None::<String>, 16, 64, 4);
    let (mut duration, mut warmup, mut threads, mut loss_ms) = (5.0f64, 1.0f64, cpus, 200u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        match flag.as_str() {
            "--addr" | "-a" => addr = value(),
            "-c" | "--sockets" => sockets = parse_flag(&flag, value()),
            "-s" | "--size" => size = parse_flag(&flag, value()),
            "-p" | "--in-flight" => in_flight = parse_flag(&flag, value()),
            "-d" | "--duration" => duration = parse_flag(&flag, value()),
            "-w" | "--warmup" => warmup = parse_flag(&flag, value()),
            "-t" | "--threads" => threads = parse_flag(&flag, value()),
            "--loss-ms" => loss_ms = parse_flag(&flag, value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            _ => {
                eprintln!("unknown argument {flag:?}");
                usage()
            }
        }
    }
    let Some(addr) = addr else { usage() };
    let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        eprintln!("cannot resolve {addr}");
        exit(2)
    };
    if !(HEADER..=65_507).contains(&size) || sockets == 0 || in_flight == 0 || threads == 0 {
        usage();
    }
    if !(duration > 0.0 && duration.is_finite() && warmup >= 0.0 && warmup.is_finite()) {
        usage();
    }
    if loss_ms == 0 {
        usage();
    }
    Opts {
        addr,
        sockets,
        size,
        in_flight,
        duration,
        warmup,
        threads: threads.min(sockets),
        loss: Duration::from_millis(loss_ms),
    }
}

/// The byte at `i` of datagram `seq` of socket `sock`.
fn fill(seq: u64, sock: u64, i: usize) -> u8 {
    (seq as usize)
        .wrapping_mul(31)
        .wrapping_add(sock as usize * 7 + i) as u8
}

fn datagram(buf: &mut [u8], seq: u64, sock: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&sock.to_le_bytes());
    for (i, b) in buf.iter_mut().enumerate().skip(HEADER) {
        *b = fill(seq, sock, i);
    }
}

/// One client socket and its datagrams in flight (sequence number, send time), oldest first.
struct Client {
    sock: UdpSocket,
    id: u64,
    next_seq: u64,
    in_flight: VecDeque<(u64, Instant)>,
    /// Datagrams to send at the next chance (after a refused send or a loss).
    owed: usize,
}

#[derive(Default)]
struct Counts {
    sent: u64,
    echoed: u64,
    lost: u64,
    late: u64,
    mismatch: u64,
    failed: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.sent += o.sent;
        self.echoed += o.echoed;
        self.lost += o.lost;
        self.late += o.late;
        self.mismatch += o.mismatch;
        self.failed += o.failed;
    }
}

struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Sends the datagrams `c` owes; stops at a refused send (they stay owed).
fn send_owed(c: &mut Client, buf: &mut [u8], counts: &mut Counts, window: &Window) -> bool {
    while c.owed > 0 {
        let seq = c.next_seq;
        datagram(buf, seq, c.id);
        match c.sock.send(buf) {
            Ok(_) => {
                let now = Instant::now();
                c.next_seq += 1;
                c.owed -= 1;
                c.in_flight.push_back((seq, now));
                if window.contains(now) {
                    counts.sent += 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            // ECONNREFUSED from an earlier ICMP error: the server is not there (yet).
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
            Err(e) => {
                eprintln!("socket {}: send: {e}", c.id);
                return false;
            }
        }
    }
    true
}

fn run_thread(opts: &Opts, ids: Vec<u64>, window: Window) -> (Counts, Histogram<u64>) {
    let mut counts = Counts::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut poll = Poll::new().expect("poll");
    let mut clients = Vec::new();
    for id in ids {
        let bind: SocketAddr = if opts.addr.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(opts.addr).map(|()| s)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("socket {id}: {e}");
                counts.failed += 1;
                continue;
            }
        };
        let mut sock = sock;
        let token = Token(clients.len());
        poll.registry()
            .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
            .expect("register");
        clients.push(Client {
            sock,
            id,
            next_seq: 0,
            in_flight: VecDeque::with_capacity(opts.in_flight),
            owed: opts.in_flight,
        });
    }
    let mut buf = vec![0u8; opts.size];
    let mut rbuf = vec![0u8; 65_536];
    let mut events = Events::with_capacity(1024);
    for c in clients.iter_mut() {
        if !send_owed(c, &mut buf, &mut counts, &window) {
            counts.failed += 1;
        }
    }
    let sweep_every = (opts.loss / 4).max(Duration::from_millis(1));
    let mut next_sweep = Instant::now() + sweep_every;
    loop {
        let now = Instant::now();
        if now >= window.end {
            break;
        }
        let wait = next_sweep.min(window.end).saturating_duration_since(now);
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() != ErrorKind::Interrupted {
                eprintln!("poll: {e}");
                counts.failed += 1;
                break;
            }
        }
        for ev in events.iter() {
            let c = &mut clients[ev.token().0];
            loop {
                match c.sock.recv(&mut rbuf) {
                    Ok(n) => {
                        let now = Instant::now();
                        let got = &rbuf[..n];
                        if n != opts.size || got[8..16] != c.id.to_le_bytes() {
                            counts.mismatch += 1;
                            continue;
                        }
                        let seq = u64::from_le_bytes(got[..8].try_into().expect("8 bytes"));
                        if got
                            .iter()
                            .enumerate()
                            .skip(HEADER)
                            .any(|(i, &b)| b != fill(seq, c.id, i))
                        {
                            counts.mismatch += 1;
                            continue;
                        }
                        match c.in_flight.iter().position(|&(s, _)| s == seq) {
                            Some(k) => {
                                let (_, sent_at) = c.in_flight.remove(k).expect("in flight");
                                if window.contains(now) {
                                    counts.echoed += 1;
                                    let us = now.duration_since(sent_at).as_micros();
                                    let _ =
                                        hist.record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
                                }
                                c.owed += 1;
                            }
                            None => {
                                if window.contains(now) {
                                    counts.late += 1;
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                    Err(e) => {
                        eprintln!("socket {}: recv: {e}", c.id);
                        counts.failed += 1;
                        break;
                    }
                }
            }
            if !send_owed(c, &mut buf, &mut counts, &window) {
                counts.failed += 1;
            }
        }
        let now = Instant::now();
        if now >= next_sweep {
            next_sweep = now + sweep_every;
            for c in clients.iter_mut() {
                while let Some(&(_, at)) = c.in_flight.front() {
                    if now.duration_since(at) < opts.loss {
                        break;
                    }
                    c.in_flight.pop_front();
                    if window.contains(at) {
                        counts.lost += 1;
                    }
                    c.owed += 1;
                }
                if !send_owed(c, &mut buf, &mut counts, &window) {
                    counts.failed += 1;
                }
            }
        }
    }
    (counts, hist)
}

fn main() {
    let opts = parse_opts();
    let cpu0 = bench_loadgen::procfs::own_cpu_seconds();
    let start = Instant::now() + Duration::from_secs_f64(opts.warmup);
    let end = start + Duration::from_secs_f64(opts.duration);
    let results: Vec<(Counts, Histogram<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|t| {
                let ids: Vec<u64> = (0..opts.sockets as u64)
                    .filter(|i| *i as usize % opts.threads == t)
                    .collect();
                let opts = &opts;
                s.spawn(move || run_thread(opts, ids, Window { start, end }))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect()
    });
    let wall = Instant::now()
        .duration_since(start)
        .as_secs_f64()
        .max(opts.duration);
    let cpu = bench_loadgen::procfs::own_cpu_seconds() - cpu0;
    let mut counts = Counts::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for (c, h) in &results {
        counts.add(c);
        hist.add(h).expect("histogram add");
    }
    let per_s = counts.echoed as f64 / opts.duration;
    let loss_pct = if counts.sent > 0 {
        100.0 * counts.lost as f64 / counts.sent as f64
    } else {
        0.0
    };
    let errors = counts.mismatch + counts.failed;
    println!(
        "RESULT dgrams_per_s={per_s:.0} p50_us={} p99_us={} p999_us={} max_us={} sent={} \
         echoed={} lost={} late={} loss_pct={loss_pct:.3} mismatch={} errors={errors} \
         sockets={} loadgen_cpu={:.2}",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        counts.sent,
        counts.echoed,
        counts.lost,
        counts.late,
        counts.mismatch,
        opts.sockets,
        cpu / (wall + opts.warmup),
    );
    if errors > 0 || counts.echoed == 0 {
        exit(1);
    }
}
