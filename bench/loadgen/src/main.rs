//! echo-load: the harness's load generator for newline-framed echo servers. It does not use
//! goway: nonblocking sockets on one mio (epoll) poller per thread.
//!
//! It opens C connections and spreads them over T threads (default: the CPUs this process
//! may use, so one under `taskset -c 1`). A frame is S bytes: S - 1 printable bytes that
//! depend on the connection and the frame's number, then `\n`. Every echoed byte is checked;
//! a frame with a differing byte is a *mismatch*, a connection that fails or that the server
//! closes is a *connection error*, and `errors` is their sum.
//!
//! * Closed loop (default): each connection keeps P frames in flight (`-p`), sending one
//!   each time an echoed frame has fully arrived. Latency runs from queueing a frame (just
//!   before its write) to reading its last byte.
//! * Open loop (`--rate R`): R frames/s in total on a fixed schedule (see `open.rs`); latency
//!   runs from each frame's scheduled time. `backlog` counts frames due by the end of the
//!   window but not echoed, `unsent` those of them that were never sent (`--max-inflight`
//!   reached); `sendlag` is how late frames were queued against the schedule.
//!
//! The first W seconds (`-w`) are a warm-up: verified, not counted. The next D seconds
//! (`-d`) are measured. `--server-pid PID` samples that process's CPU time (all threads) at
//! the start and the end of the window: nanoseconds from `/proc/PID/task/*/schedstat`, and
//! utime+stime ticks from `/proc/PID/stat` as a cross-check, and reports it per frame.
//!
//! The last line of output is machine-readable (keys in this order):
//!
//! ```text
//! RESULT frames_per_s= mb_per_s= p50_us= p99_us= p999_us= max_us= mean_us= errors=
//!        mismatch= conn_errors= conns= loadgen_cpu=
//!        [mode=open rate= sent_per_s= backlog= unsent= sendlag_p50_us= sendlag_p99_us=
//!         sendlag_max_us=]
//!        [server_cpu_s= server_cores= server_us_per_frame= server_stat_cpu_s=
//!         server_stat_us_per_frame=]
//! ```
//!
//! The exit status is 1 when no connection could be opened or any error was counted.

mod closed;
mod conn;
mod open;

use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::process::exit;
use std::time::{Duration, Instant};

use bench_loadgen::parse_flag;
use bench_loadgen::procfs::{self, CpuSample};
use conn::{Conn, Pattern, Record, Window};
use open::{Backlog, Schedule};

struct Opts {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    pipeline: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    rate: Option<f64>,
    max_in_flight: usize,
    server_pid: Option<u32>,
}

const USAGE: &str = "\
usage: echo-load --addr HOST:PORT [-c CONNS=50] [-s FRAME_BYTES=64] [-p PIPELINE=1]
                 [-d SECONDS=5] [-w WARMUP_SECONDS=1] [-t THREADS=#cpus]
                 [--rate FRAMES_PER_S [--max-inflight N=1000]] [--server-pid PID]
FRAME_BYTES counts the trailing newline (at least 2). --rate runs open loop: that many
frames per second over all connections, on a fixed schedule (-p is then unused); it
busy-polls, so give it a CPU of its own. --server-pid reports PID's CPU time (all threads)
over the measured window, per frame.";

fn usage() -> ! {
    eprintln!("{USAGE}");
    exit(2)
}

fn parse_opts() -> Opts {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut addr, mut conns, mut size, mut pipeline) = (None::<String>, 50, 64, 1);
    let (mut duration, mut warmup, mut threads) = (5.0f64, 1.0f64, cpus);
    let (mut rate, mut max_in_flight, mut server_pid) = (None, 1000, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        match flag.as_str() {
            "--addr" | "-a" => addr = value(),
            "-c" | "--conns" => conns = parse_flag(&flag, value()),
            "-s" | "--size" => size = parse_flag(&flag, value()),
            "-p" | "--pipeline" => pipeline = parse_flag(&flag, value()),
            "-d" | "--duration" => duration = parse_flag(&flag, value()),
            "-w" | "--warmup" => warmup = parse_flag(&flag, value()),
            "-t" | "--threads" => threads = parse_flag(&flag, value()),
            "-r" | "--rate" => rate = Some(parse_flag::<f64>(&flag, value())),
            "--max-inflight" => max_in_flight = parse_flag(&flag, value()),
            "--server-pid" => server_pid = Some(parse_flag(&flag, value())),
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
    let bad_rate = rate.is_some_and(|r: f64| !(r.is_finite() && r > 0.0));
    if size < 2 || conns == 0 || pipeline == 0 || threads == 0 || max_in_flight == 0 || bad_rate {
        usage();
    }
    if !(duration > 0.0 && duration.is_finite() && warmup >= 0.0 && warmup.is_finite()) {
        usage();
    }
    let threads = threads.min(conns);
    Opts {
        addr,
        conns,
        size,
        pipeline,
        duration,
        warmup,
        threads,
        rate,
        max_in_flight,
        server_pid,
    }
}

/// Sleeps to the start and to the end of the window, sampling `pid`'s CPU time at each.
fn sample_server(pid: u32, win: Window) -> (CpuSample, CpuSample) {
    let sleep_until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    sleep_until(win.start);
    let first = CpuSample::read(pid);
    sleep_until(win.end);
    (first, CpuSample::read(pid))
}

fn main() {
    let o = parse_opts();
    println!(
        "echo-load: addr={} conns={} size={} pipeline={} duration={}s warmup={}s threads={}",
        o.addr, o.conns, o.size, o.pipeline, o.duration, o.warmup, o.threads
    );
    let mut groups: Vec<Vec<Conn>> = (0..o.threads).map(|_| Vec::new()).collect();
    let mut connect_errors = 0u64;
    for id in 0..o.conns {
        let sock = StdTcpStream::connect_timeout(&o.addr, Duration::from_secs(5))
            .and_then(|s| s.set_nodelay(true).and(s.set_nonblocking(true)).map(|()| s));
        match sock {
            Ok(s) => groups[id % o.threads].push(Conn::new(
                id,
                mio::net::TcpStream::from_std(s),
                o.pipeline,
                o.size,
            )),
            Err(e) => {
                if connect_errors == 0 {
                    eprintln!("connect {}: {e}", o.addr);
                }
                connect_errors += 1;
            }
        }
    }
    let conns_open = o.conns as u64 - connect_errors;
    if conns_open == 0 {
        eprintln!("no connection could be opened");
        println!(
            "RESULT frames_per_s=0 mb_per_s=0 p50_us=0 p99_us=0 p999_us=0 max_us=0 mean_us=0 errors={connect_errors} mismatch=0 conn_errors={connect_errors} conns=0 loadgen_cpu=0"
        );
        exit(1);
    }

    let pat = Pattern::new(o.size);
    let t0 = Instant::now();
    let start = t0 + Duration::from_secs_f64(o.warmup);
    let win = Window {
        start,
        end: start + Duration::from_secs_f64(o.duration),
    };
    let sch = o.rate.map(|r| Schedule {
        t0,
        gap_ns: ((1e9 / r).round() as u64).max(1),
        conns: o.conns as u64,
        max_in_flight: o.max_in_flight,
    });
    if let Some(s) = &sch {
        println!(
            "open loop: {:.0} frames/s in total (a slot every {} ns), a frame every {:.1} us per connection, at most {} in flight per connection",
            1e9 / s.gap_ns as f64,
            s.gap_ns,
            (s.gap_ns * s.conns) as f64 / 1e3,
            s.max_in_flight
        );
    }

    let cpu_before = procfs::own_cpu_seconds();
    let (results, server) = std::thread::scope(|scope| {
        let sampler = o
            .server_pid
            .map(|pid| scope.spawn(move || sample_server(pid, win)));
        let workers: Vec<_> = groups
            .into_iter()
            .filter(|g| !g.is_empty())
            .map(|group| {
                let (pat, sch) = (&pat, sch.as_ref());
                scope.spawn(move || match sch {
                    Some(sch) => open::run(group, pat, sch, win),
                    None => {
                        closed::run(group, pat, o.pipeline, win).map(|r| (r, Backlog::default()))
                    }
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (results, sampler.map(|s| s.join()))
    });
    let loadgen_cpu = (procfs::own_cpu_seconds() - cpu_before) / t0.elapsed().as_secs_f64();

    let mut total = Record::new(win);
    let mut backlog = Backlog::default();
    for r in results {
        match r {
            Ok(Ok((rec, b))) => {
                total.merge(&rec);
                backlog.unanswered += b.unanswered;
                backlog.unsent += b.unsent;
            }
            Ok(Err(e)) => {
                eprintln!("load thread failed: {e}");
                exit(1)
            }
            Err(_) => {
                eprintln!("load thread panicked");
                exit(1)
            }
        }
    }
    total.conn_errors += connect_errors;
    report(
        &o,
        conns_open,
        &total,
        &backlog,
        loadgen_cpu,
        server.and_then(Result::ok),
    );
    if total.mismatch + total.conn_errors > 0 {
        exit(1);
    }
}

fn report(
    o: &Opts,
    conns: u64,
    t: &Record,
    backlog: &Backlog,
    loadgen_cpu: f64,
    server: Option<(CpuSample, CpuSample)>,
) {
    let us = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    let fps = t.frames as f64 / o.duration;
    let mbps = fps * o.size as f64 / 1e6;
    let (p50, p99, p999) = (
        us(&t.latency, 0.5),
        us(&t.latency, 0.99),
        us(&t.latency, 0.999),
    );
    let (max, mean) = (t.latency.max() as f64 / 1e3, t.latency.mean() / 1e3);
    let errors = t.mismatch + t.conn_errors;
    println!("frames/s:    {fps:.0}   ({mbps:.2} MB/s echoed)");
    println!(
        "latency us:  p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}  mean {mean:.1}"
    );
    println!(
        "errors:      {errors}  (mismatched frames {}, connection errors {})",
        t.mismatch, t.conn_errors
    );
    println!(
        "loadgen cpu: {loadgen_cpu:.2} cores ({} thread(s))",
        o.threads
    );
    let mut line = format!(
        "RESULT frames_per_s={fps:.0} mb_per_s={mbps:.2} p50_us={p50:.1} p99_us={p99:.1} p999_us={p999:.1} max_us={max:.1} mean_us={mean:.1} errors={errors} mismatch={} conn_errors={} conns={conns} loadgen_cpu={loadgen_cpu:.2}",
        t.mismatch, t.conn_errors
    );
    if let Some(rate) = o.rate {
        let offered = 1e9 / ((1e9 / rate).round().max(1.0));
        let sent_ps = t.sent as f64 / o.duration;
        let (l50, l99, lmax) = (
            us(&t.send_lag, 0.5),
            us(&t.send_lag, 0.99),
            t.send_lag.max() as f64 / 1e3,
        );
        println!("open loop:   offered {offered:.0} frames/s, achieved {fps:.0} ({:.1} %), sent {sent_ps:.0}/s", 100.0 * fps / offered);
        println!(
            "backlog:     {} frames due and not echoed at the end ({} never sent)",
            backlog.unanswered, backlog.unsent
        );
        println!("send lag us: p50 {l50:.1}  p99 {l99:.1}  max {lmax:.1}");
        line += &format!(
            " mode=open rate={offered:.0} sent_per_s={sent_ps:.0} backlog={} unsent={} sendlag_p50_us={l50:.1} sendlag_p99_us={l99:.1} sendlag_max_us={lmax:.1}",
            backlog.unanswered, backlog.unsent
        );
    }
    if let Some((a, b)) = server {
        let cpu_s = b.sched_ns.saturating_sub(a.sched_ns) as f64 / 1e9;
        let stat_s =
            b.ticks.saturating_sub(a.ticks) as f64 / procfs::clock_ticks_per_second() as f64;
        let per_frame = |s: f64| {
            if t.frames > 0 {
                s * 1e6 / t.frames as f64
            } else {
                0.0
            }
        };
        let cores = cpu_s / o.duration;
        println!(
            "server cpu:  {cpu_s:.3} s in the window = {cores:.2} cores = {:.3} us/frame (schedstat); /proc/PID/stat: {stat_s:.2} s = {:.3} us/frame",
            per_frame(cpu_s),
            per_frame(stat_s)
        );
        line += &format!(
            " server_cpu_s={cpu_s:.4} server_cores={cores:.3} server_us_per_frame={:.4} server_stat_cpu_s={stat_s:.2} server_stat_us_per_frame={:.3}",
            per_frame(cpu_s),
            per_frame(stat_s)
        );
    }
    println!("{line}");
}
