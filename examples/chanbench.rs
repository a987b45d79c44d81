//! chanbench: goway's channels, `select!` and goroutine spawning, measured with the same
//! workloads and printed in the same machine-readable lines as the Go program it mirrors,
//! `bench/peers/go/chanbench/main.go` (in this repository's benchmark harness), so that
//! `bench/compare.sh chan` can put goway beside Go, raw `may` and crossbeam in one table.
//!
//! What it shows: the cost of goway's Go-like primitives against Go's own, like for like:
//! the timed code of every benchmark runs inside a goroutine (where Go's runs in the main
//! goroutine) and hands its result back over a channel; the runtime has 2 worker threads
//! (Go: GOMAXPROCS=2).
//!
//! ```text
//! # chanbench impl=goway goway=0.1.0 may=0.3.51 workers=2 reps=5 ...
//! RESULT <name> <median> <unit> reps=<n> min=<v> max=<v> n=<ops per rep>
//! ```
//!
//! | name               | unit   | workload (same as Go's)                                        |
//! |--------------------|--------|----------------------------------------------------------------|
//! | unbuf_pingpong_rtt | ns/rtt | two goroutines, two unbuffered channels; send ping, recv pong   |
//! | buf128_spsc        | ns/msg | 1 producer -> 1 consumer, `bounded(128)`                        |
//! | buf128_mpmc_4x4    | ns/msg | 4 producers -> 4 consumers on one `bounded(128)`                |
//! | select2            | ns/op  | `select!` over two `bounded(128)`, each fed by its own producer |
//! | spawn_join_100k    | ms     | spawn 100 000 goroutines that each count down, wait for all     |
//!
//! Each value is the median of `-reps` runs after one unmeasured warm-up run with a tenth of
//! the operations, as in Go. spawn_join_100k waits on an atomic countdown whose last
//! decrement sends one message on a channel (Go: a `sync.WaitGroup`).
//!
//! spawn_join_100k spawns from a goroutine, as Go spawns from its main goroutine;
//! `-spawn-from thread` spawns from the main thread instead, which is what the raw may peer in
//! the harness does (a may coroutine spawning 100k without blocking runs out of stack
//! mappings), for a like-for-like goway / may comparison.
//!
//! Run it:
//!
//! ```sh
//! cargo build --release --example chanbench
//! target/release/examples/chanbench                       # all five, 5 reps each
//! target/release/examples/chanbench -only select2 -reps 9
//! bench/compare.sh chan        # beside Go, raw may and crossbeam (see bench/README.md)
//! ```
//!
//! Flags, as Go's: `-procs N` (worker threads, default 2; 0 = one per CPU), `-reps N` (5),
//! `-scale F` (1.0, multiplies the operation counts), `-only NAME`, `-spawn N` (100000), and
//! goway's own `-spawn-from goroutine|thread` (goroutine).
//! Go-style single-dash long flags are accepted (`-reps 5`, `-reps=5`), and so are clap's
//! `--reps 5`; `--help` lists them.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::chan::{self, Sender};
use goway::{go, select};

#[derive(Parser, Debug)]
#[command(
    name = "chanbench",
    about = "goway channel / goroutine micro-benchmarks in go-chanbench's output format"
)]
struct Opts {
    /// Worker threads (Go: GOMAXPROCS); 0 = one per CPU.
    #[arg(long, default_value_t = 2)]
    procs: usize,
    /// Repetitions per benchmark (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Multiply iteration counts by this factor.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Run only the benchmark with this name.
    #[arg(long, default_value = "")]
    only: String,
    /// Goroutines for spawn_join.
    #[arg(long, default_value_t = 100_000)]
    spawn: usize,
    /// Where spawn_join spawns from: `goroutine` (Go's shape) or `thread` (the main thread,
    /// as raw may's peer does).
    #[arg(long, value_enum, default_value_t = SpawnFrom::Goroutine)]
    spawn_from: SpawnFrom,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SpawnFrom {
    Thread,
    Goroutine,
}

/// Go's `flag` package takes `-name` and `--name` alike; clap only `--name`. Rewrite a leading
/// single dash followed by a flag name (not a lone `-x` short flag, not a negative number).
fn go_style_args() -> Vec<String> {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let b = a.as_bytes();
            let go_long =
                i > 0 && b.len() > 2 && b[0] == b'-' && b[1] != b'-' && b[1].is_ascii_alphabetic();
            if go_long { format!("-{a}") } else { a }
        })
        .collect()
}

static SINK: AtomicI64 = AtomicI64::new(0);

fn sink(v: i64) {
    SINK.fetch_add(v, Ordering::Relaxed);
}

/// Runs `f` in a goroutine (the Go program's main goroutine) and returns what it measured,
/// sent back over a channel.
fn in_goroutine<F>(f: F) -> Duration
where
    F: FnOnce() -> Duration + Send + 'static,
{
    let (tx, rx) = chan::bounded(1);
    let _h = go!(move || {
        let _ = tx.send(f());
    });
    rx.recv().expect("benchmark goroutine panicked")
}

/// Go: `benchPingPong`.
fn bench_pingpong(iters: usize) -> Duration {
    in_goroutine(move || {
        let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
        let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
        let _echo = go!(move || {
            for v in &ping_rx {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
            pong_tx.close();
        });
        let start = Instant::now();
        for i in 0..iters {
            ping_tx.send(i).expect("ping");
            pong_rx.recv().expect("pong");
        }
        let d = start.elapsed();
        ping_tx.close();
        let _ = pong_rx.recv(); // Go: <-pong, returns once the echo goroutine closed it
        d
    })
}

/// Go: `benchSPSC`.
fn bench_spsc(msgs: usize) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::bounded::<usize>(128);
        let (done_tx, done_rx) = chan::bounded::<i64>(0);
        let _consumer = go!(move || {
            let mut s = 0i64;
            for v in &rx {
                s += v as i64;
            }
            let _ = done_tx.send(s);
        });
        let start = Instant::now();
        for i in 0..msgs {
            tx.send(i).expect("send");
        }
        tx.close();
        sink(done_rx.recv().expect("consumer sum"));
        start.elapsed()
    })
}

/// Go: `benchMPMC` (the WaitGroups become join handles).
fn bench_mpmc(msgs: usize, producers: usize, consumers: usize) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::bounded::<usize>(128);
        let per = msgs / producers;
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let ps: Vec<_> = (0..producers)
            .map(|_| {
                let (tx, gate_rx) = (tx.clone(), gate_rx.clone());
                go!(move || {
                    let _ = gate_rx.recv(); // Err once the gate is closed
                    for i in 0..per {
                        tx.send(i).expect("send");
                    }
                })
            })
            .collect();
        let cs: Vec<_> = (0..consumers)
            .map(|_| {
                let rx = rx.clone();
                go!(move || {
                    let mut s = 0i64;
                    for v in &rx {
                        s += v as i64;
                    }
                    s
                })
            })
            .collect();
        let start = Instant::now();
        gate_tx.close();
        for p in ps {
            p.join().expect("producer");
        }
        tx.close();
        let mut s = 0;
        for c in cs {
            s += c.join().expect("consumer");
        }
        let d = start.elapsed();
        sink(s);
        d
    })
}

/// Go: `benchSelect2`.
fn bench_select2(msgs: usize) -> Duration {
    in_goroutine(move || {
        // This goroutine keeps `a_tx` and `b_tx` to the end: a producer that finishes drops
        // only its clone, so its channel is not closed (Go's producers never close theirs;
        // a closed channel's arm would always be ready).
        let (a_tx, a) = chan::bounded::<usize>(128);
        let (b_tx, b) = chan::bounded::<usize>(128);
        let half = msgs / 2;
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let feed = |tx: Sender<usize>| {
            let gate_rx = gate_rx.clone();
            go!(move || {
                let _ = gate_rx.recv();
                for i in 0..half {
                    tx.send(i).expect("send");
                }
            })
        };
        let _fa = feed(a_tx.clone());
        let _fb = feed(b_tx.clone());
        let start = Instant::now();
        gate_tx.close();
        let mut s = 0i64;
        for _ in 0..2 * half {
            select! {
                recv(a) -> v => s += v.expect("a") as i64,
                recv(b) -> v => s -= v.expect("b") as i64,
            }
        }
        let d = start.elapsed();
        drop((a_tx, b_tx));
        sink(s);
        d
    })
}

/// What each spawned goroutine of spawn_join holds (Go: the WaitGroup pointer).
struct Countdown {
    left: AtomicUsize,
    done: Sender<()>,
}

/// Go: `benchSpawnJoin`: spawn `count` goroutines, each counts down once; the last one
/// signals. Timed from the first spawn until the signal arrives.
fn spawn_join(count: usize) -> Duration {
    let (done, all_done) = chan::bounded::<()>(1);
    let start = Instant::now();
    let wg = Arc::new(Countdown {
        left: AtomicUsize::new(count),
        done,
    });
    for _ in 0..count {
        let wg = wg.clone();
        go!(move || {
            if wg.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _ = wg.done.send(());
            }
        });
    }
    all_done.recv().expect("countdown");
    start.elapsed()
}

fn bench_spawn_join_from_thread(count: usize) -> Duration {
    spawn_join(count)
}

fn bench_spawn_join_from_goroutine(count: usize) -> Duration {
    in_goroutine(move || spawn_join(count))
}

struct Bench {
    name: &'static str,
    unit: &'static str,
    ops: usize,
    run: fn(usize) -> Duration,
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let o = Opts::parse_from(go_style_args());
    let reps = o.reps.max(1);
    goway::runtime::Config::new().workers(o.procs).apply()?;
    let workers = if o.procs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        o.procs
    };
    let n = |base: usize| ((base as f64 * o.scale) as usize).max(1);
    let spawn_n = o.spawn;
    let benches = [
        Bench {
            name: "unbuf_pingpong_rtt",
            unit: "ns/rtt",
            ops: n(500_000),
            run: bench_pingpong,
        },
        Bench {
            name: "buf128_spsc",
            unit: "ns/msg",
            ops: n(5_000_000),
            run: bench_spsc,
        },
        Bench {
            name: "buf128_mpmc_4x4",
            unit: "ns/msg",
            ops: n(4_000_000),
            run: |m| bench_mpmc(m, 4, 4),
        },
        Bench {
            name: "select2",
            unit: "ns/op",
            ops: n(4_000_000),
            run: bench_select2,
        },
        Bench {
            name: "spawn_join_100k",
            unit: "ms",
            ops: spawn_n,
            run: match o.spawn_from {
                SpawnFrom::Thread => bench_spawn_join_from_thread,
                SpawnFrom::Goroutine => bench_spawn_join_from_goroutine,
            },
        },
    ];
    if !o.only.is_empty() && !benches.iter().any(|b| b.name == o.only) {
        return Err(format!("unknown benchmark: {}", o.only).into());
    }
    println!(
        "# chanbench impl=goway goway={} may=0.3.51 workers={workers} reps={reps} \
         spawn_from={}",
        env!("CARGO_PKG_VERSION"),
        match o.spawn_from {
            SpawnFrom::Thread => "thread",
            SpawnFrom::Goroutine => "goroutine",
        },
    );
    for b in benches
        .iter()
        .filter(|b| o.only.is_empty() || o.only == b.name)
    {
        (b.run)((b.ops / 10).max(1)); // warm-up
        let mut vals: Vec<f64> = (0..reps)
            .map(|_| {
                let d = (b.run)(b.ops);
                if b.unit == "ms" {
                    d.as_nanos() as f64 / 1e6
                } else {
                    d.as_nanos() as f64 / b.ops as f64
                }
            })
            .collect();
        vals.sort_by(f64::total_cmp);
        println!(
            "RESULT {} {:.2} {} reps={} min={:.2} max={:.2} n={}",
            b.name,
            vals[vals.len() / 2],
            b.unit,
            vals.len(),
            vals[0],
            vals[vals.len() - 1],
            b.ops
        );
    }
    if SINK.load(Ordering::Relaxed) == 42 {
        log::debug!("sink hit the magic value");
    }
    Ok(())
}
