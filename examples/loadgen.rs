//! An echo load generator written with goway itself, in blocking style: many connections,
//! each with a writer goroutine and a reader goroutine, a fixed frame size and a pipelining
//! depth, every echoed byte verified, and the latency of each frame recorded in an
//! `hdrhistogram` (frames/s and p50/p99/p99.9/max at the end, a live progress line meanwhile).
//!
//! Run it against the echo server:
//!
//! ```text
//! cargo run --release --example echo &
//! cargo run --release --example loadgen -- -c 50 -s 64 -p 16 -d 5 -w 1
//! ```
//!
//! (`--addr` picks another server; `--help` lists the options.) It exits with a non-zero
//! status if any echoed frame differed from what was sent or any connection failed.
//!
//! The shape is the usual Go load generator: for each connection `c := net.Dial(...)`,
//! `inflight := make(chan time.Time, pipeline)`, then `go writer(c, inflight)` (send the time
//! into `inflight`, then write the frame: the full channel is the pipelining limit) and
//! `go reader(c, inflight)` (`io.ReadFull` one frame, compare it, `t := <-inflight`, record
//! `time.Since(t)`); a `time.Ticker` goroutine prints progress, a `sync.WaitGroup`-style join
//! waits for everyone, and the per-connection histograms are merged at the end.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::chan::{self, Receiver, Sender};
use goway::net::{TcpReadHalf, TcpWriteHalf, dial_timeout};
use goway::time::Ticker;
use goway::{go, select};
use hdrhistogram::Histogram;

/// How long a connect, or a single read or write, may take before the connection counts as
/// failed.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the readers may take, after the writers stop, to receive the frames in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many error messages are printed (all are counted).
const MAX_ERROR_MESSAGES: u64 = 10;

/// Echo load generator on goway: fixed-size newline-terminated frames, pipelined, verified.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address of the echo server.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// Number of connections.
    #[arg(short, long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Frame size in bytes, including the trailing '\n'.
    #[arg(short, long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..))]
    size: u32,
    /// Frames in flight per connection.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pipeline: u32,
    /// Measured duration, in seconds (after the warm-up).
    #[arg(short, long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Warm-up, in seconds: frames sent during it are echoed and verified but not measured.
    #[arg(short, long, default_value_t = 1)]
    warmup: u64,
}

/// Counters shared by every goroutine.
#[derive(Default)]
struct Stats {
    mismatches: AtomicU64,
    errors: AtomicU64,
}

impl Stats {
    /// Counts a failed connection and prints the first few reasons.
    fn error(&self, conn: usize, what: &str, e: &dyn std::fmt::Display) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed);
        if n < MAX_ERROR_MESSAGES {
            // Overwrite the progress line; the next tick redraws it below.
            eprintln!("\r{:<60}", format!("connection {conn}: {what}: {e}"));
        }
    }
}

/// One connection's schedule and identity.
#[derive(Clone, Copy)]
struct Plan {
    conn: usize,
    size: usize,
    /// Frames sent from here on are measured.
    measure_from: Instant,
    /// The writers send no frame from here on.
    end: Instant,
}

/// What a connection's reader hands back.
struct ConnResult {
    hist: Histogram<u64>,
}

/// splitmix64: a well-mixed start for each frame's pattern.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Fills `buf` with frame `seq` of connection `conn`: printable bytes ('!'..='~', never a
/// newline) from a start that depends on both, then '\n'.
fn fill_frame(buf: &mut [u8], conn: usize, seq: u64) {
    let start = mix(((conn as u64) << 40) ^ seq) % 94;
    let (body, nl) = buf.split_at_mut(buf.len() - 1);
    for (i, b) in body.iter_mut().enumerate() {
        *b = b'!' + ((start + i as u64) % 94) as u8;
    }
    nl[0] = b'\n';
}

/// The writer: while fewer than `pipeline` frames are in flight (the channel has room), send
/// the time into the channel, then write the frame. Dropping `inflight` on return tells the
/// reader that no more frames are coming.
fn writer(
    mut w: TcpWriteHalf,
    inflight: Sender<Instant>,
    plan: Plan,
    stats: &Stats,
    failed: &AtomicBool,
) {
    let mut frame = vec![0u8; plan.size];
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        if now >= plan.end {
            return;
        }
        // Blocks while `pipeline` frames are outstanding; fails once the reader is gone.
        if inflight.send(now).is_err() {
            return;
        }
        fill_frame(&mut frame, plan.conn, seq);
        if let Err(e) = w.write_all(&frame) {
            stats.error(plan.conn, "write", &e);
            // The reader's failure that follows is a consequence, not a second error.
            failed.store(true, Ordering::Relaxed);
            // Wake the reader, which would otherwise wait for this frame until its timeout.
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        seq += 1;
    }
}

/// The reader: for each frame in flight, read it whole, compare every byte with what was sent,
/// and record its latency if it was sent after the warm-up.
fn reader(
    mut r: TcpReadHalf,
    inflight: Receiver<Instant>,
    plan: Plan,
    stats: &Stats,
    done: &AtomicU64,
    writer_failed: &AtomicBool,
) -> Result<ConnResult, Box<dyn Error + Send + Sync>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut got = vec![0u8; plan.size];
    let mut want = vec![0u8; plan.size];
    let mut draining = false;
    // Ends when the writer has stopped and every frame it sent has come back.
    for (seq, sent) in inflight.iter().enumerate() {
        if !draining && Instant::now() >= plan.end {
            // Past the end the writer sends nothing more: bound the wait for what is in flight.
            draining = true;
            r.set_read_deadline(Some(Instant::now() + DRAIN_TIMEOUT));
        }
        if let Err(e) = r.read_exact(&mut got) {
            if !writer_failed.load(Ordering::Relaxed) {
                let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                    "read: connection closed by the server"
                } else {
                    "read"
                };
                stats.error(plan.conn, what, &e);
            }
            // Wake the writer if it is blocked in a write.
            let _ = r.shutdown(Shutdown::Both);
            break;
        }
        let latency = sent.elapsed();
        fill_frame(&mut want, plan.conn, seq as u64);
        if got != want {
            stats.mismatches.fetch_add(1, Ordering::Relaxed);
        }
        if sent >= plan.measure_from {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            hist.saturating_record(us.max(1));
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(ConnResult { hist })
}

/// One connection: dial, split, run the writer in its own goroutine and the reader here, and
/// join the writer. Every failure is counted in `stats`; the histogram is empty if the
/// connection never came up.
fn connection(
    addr: Arc<str>,
    plan: Plan,
    pipeline: usize,
    stats: Arc<Stats>,
    done: Arc<AtomicU64>,
) -> Result<ConnResult, Box<dyn Error + Send + Sync>> {
    let empty = || -> Result<ConnResult, Box<dyn Error + Send + Sync>> {
        Ok(ConnResult {
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
        })
    };
    let c = match dial_timeout(&*addr, IO_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            stats.error(plan.conn, "dial", &e);
            return empty();
        }
    };
    let setup = c
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| c.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| c.split());
    let (r, w) = match setup {
        Ok(halves) => halves,
        Err(e) => {
            stats.error(plan.conn, "setup", &e);
            return empty();
        }
    };
    let (tx, rx) = chan::bounded::<Instant>(pipeline);
    let writer_failed = Arc::new(AtomicBool::new(false));
    let wh = go!({
        let stats = stats.clone();
        let writer_failed = writer_failed.clone();
        move || writer(w, tx, plan, &stats, &writer_failed)
    });
    let res = reader(r, rx, plan, &stats, &done, &writer_failed);
    if let Err(p) = wh.join() {
        stats.error(plan.conn, "writer goroutine", &p);
    }
    res
}

/// Prints `t=..s frames/s=.. errors=..` to stderr once a second until `stop` closes.
fn progress(start: Instant, done: Arc<Vec<Arc<AtomicU64>>>, stats: Arc<Stats>, stop: Receiver<()>) {
    let ticker = Ticker::new(Duration::from_secs(1));
    let mut last = 0u64;
    let mut last_t = start;
    loop {
        select! {
            recv(ticker.c()) -> _ => {
                let now = Instant::now();
                let total: u64 = done.iter().map(|d| d.load(Ordering::Relaxed)).sum();
                let rate = (total - last) as f64 / (now - last_t).as_secs_f64();
                eprint!(
                    "\rt={}s frames/s={:.0} errors={} mismatches={}   ",
                    (now - start).as_secs(),
                    rate,
                    stats.errors.load(Ordering::Relaxed),
                    stats.mismatches.load(Ordering::Relaxed),
                );
                (last, last_t) = (total, now);
            },
            recv(stop) -> _ => break,
        }
    }
    eprintln!();
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let conns = args.connections as usize;
    let pipeline = args.pipeline as usize;
    let addr: Arc<str> = args.addr.as_str().into();

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let stats = Arc::new(Stats::default());
    let done: Arc<Vec<Arc<AtomicU64>>> =
        Arc::new((0..conns).map(|_| Arc::new(AtomicU64::new(0))).collect());

    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let ph = go!({
        let (done, stats) = (done.clone(), stats.clone());
        move || progress(start, done, stats, stop_rx)
    });

    let handles: Vec<_> = (0..conns)
        .map(|conn| {
            let plan = Plan {
                conn,
                size: args.size as usize,
                measure_from,
                end,
            };
            let (addr, stats, done) = (addr.clone(), stats.clone(), done[conn].clone());
            go!(move || connection(addr, plan, pipeline, stats, done))
        })
        .collect();

    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    for (conn, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => hist.add(&r.hist)?,
            Ok(Err(e)) => stats.error(conn, "histogram", &e),
            Err(p) => stats.error(conn, "connection goroutine", &p),
        }
    }
    stop_tx.close();
    if ph.join().is_err() {
        eprintln!("progress goroutine panicked");
    }

    let frames = hist.len();
    let secs = args.duration as f64;
    let mismatches = stats.mismatches.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    println!(
        "addr={} connections={} size={} pipeline={} duration={}s warmup={}s",
        args.addr, conns, args.size, pipeline, args.duration, args.warmup
    );
    println!("frames={frames} frames/s={:.0}", frames as f64 / secs);
    println!(
        "latency_us p50={} p99={} p99.9={} max={}",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
    println!("mismatches={mismatches} errors={errors}");
    if mismatches != 0 || errors != 0 {
        return Err(format!("{mismatches} mismatched frames, {errors} connection errors").into());
    }
    Ok(())
}
