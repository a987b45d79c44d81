//! rust-chanbench: the workloads of `bench/peers/go/chanbench` for raw may coroutines with
//! may's channels, and for OS threads with crossbeam-channel, printed in the Go program's
//! format plus the name of the Go benchmark each line stands beside:
//!
//! ```text
//! # chanbench impl=rust may=0.3.51 may_workers=2 crossbeam-channel=0.5 reps=5 ...
//! RESULT <name> <median> <unit> reps=<n> min=<v> max=<v> n=<ops per rep> base=<go name> [base_x=<k>]
//! ```
//!
//! `base_x=k`: the value times k compares with the Go value (10k thread spawns against
//! 100k goroutine spawns). Each value is the median of `-reps` runs after one untimed run
//! with a tenth of the operations, as in Go.
//!
//! may (the "main goroutine" of each benchmark is a coroutine, except for spawn_join):
//!
//! | name                        | unit   | workload                                            |
//! |-----------------------------|--------|-----------------------------------------------------|
//! | may_unbounded_pingpong_rtt  | ns/rtt | two coroutines, two `may::sync::mpsc` channels       |
//! | may_unbounded_spsc          | ns/msg | one producer, one consumer, `mpsc`                   |
//! | may_unbounded_mpmc_4x4      | ns/msg | 4 producers, 4 consumers, one `may::sync::mpmc`      |
//! | may_unbounded_select2_poll  | ns/op  | two `mpsc`, each with a producer; see below          |
//! | may_spawn_join_100k         | ms     | 100 000 coroutines count an atomic down; the last    |
//! |                             |        | fires a `SyncFlag` the main thread waits on          |
//!
//! may's channels are unbounded only (hence the names): producers never wait, so these
//! measure queueing, not Go's back-pressure. may's `select!` runs a coroutine per arm and
//! can lose a message, so select2 polls: `try_recv` on both channels, the first one
//! alternating, and `yield_now` when both are empty. spawn_join spawns from the main thread:
//! a coroutine spawning 100 000 without yielding queues them all on its own worker, and their
//! stacks exceed the default `vm.max_map_count`.
//!
//! OS threads and crossbeam-channel: `crossbeam_unbuf_pingpong_rtt` (`bounded(0)`),
//! `crossbeam_buf128_spsc` and `crossbeam_buf128_mpmc_4x4` (`bounded(128)`),
//! `crossbeam_select2` (`select!` over two `bounded(128)`), and `crossbeam_spawn_join_10k`
//! (spawn then join 10 000 threads). A crossbeam benchmark whose run would exceed
//! `-target-ms` (200) runs fewer operations, estimated from two short probe runs (an OS
//! thread wakeup costs tens of microseconds): `n=` shows the count.
//!
//! Flags: `-procs N` (may workers, 2 as Go's GOMAXPROCS; 0: one per CPU), `-reps N` (5),
//! `-scale F` (1.0), `-only NAME`, `-group may|crossbeam`, `-spawn N` (100000; the thread
//! spawn count is a tenth of it), `-target-ms N` (200).

use std::process::exit;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::go;
use may::sync::SyncFlag;

struct Opts {
    procs: usize,
    reps: usize,
    scale: f64,
    only: String,
    group: String,
    spawn: usize,
    target: Duration,
}

fn opts() -> Opts {
    let mut o = Opts {
        procs: 2,
        reps: 5,
        scale: 1.0,
        only: String::new(),
        group: String::new(),
        spawn: 100_000,
        target: Duration::from_millis(200),
    };
    let usage = || -> ! {
        eprintln!("usage: rust-chanbench [-procs N] [-reps N] [-scale F] [-only NAME] [-group may|crossbeam] [-spawn N] [-target-ms N]");
        exit(2)
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Go's flag syntax: -name value, --name value, -name=value
        let arg = arg.trim_start_matches('-').to_owned();
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let value = inline.or_else(|| args.next()).unwrap_or_else(|| usage());
        let number = |v: &str| v.parse::<f64>().unwrap_or_else(|_| usage());
        match name.as_str() {
            "procs" => o.procs = number(&value) as usize,
            "reps" => o.reps = (number(&value) as usize).max(1),
            "scale" => o.scale = number(&value),
            "only" => o.only = value,
            "group" => o.group = value,
            "spawn" => o.spawn = (number(&value) as usize).max(10),
            "target-ms" => o.target = Duration::from_millis(number(&value) as u64),
            _ => usage(),
        }
    }
    o
}

/// Keeps the consumers' sums from being optimized away.
static SINK: AtomicI64 = AtomicI64::new(0);

fn sink(v: i64) {
    SINK.fetch_add(v, Ordering::Relaxed);
}

/// Runs a benchmark body in a coroutine (Go's main goroutine) and returns what it timed.
fn in_coroutine(f: impl FnOnce() -> Duration + Send + 'static) -> Duration {
    match go!(f).join() {
        Ok(d) => d,
        Err(_) => {
            eprintln!("benchmark coroutine panicked");
            exit(1)
        }
    }
}

fn may_pingpong(n: usize) -> Duration {
    in_coroutine(move || {
        let (ping, ping_rx) = may::sync::mpsc::channel::<usize>();
        let (pong_tx, pong) = may::sync::mpsc::channel::<usize>();
        let echo = go!(move || {
            while let Ok(v) = ping_rx.recv() {
                if pong_tx.send(v).is_err() {
                    return;
                }
            }
        });
        let start = Instant::now();
        for i in 0..n {
            let _ = ping.send(i);
            let _ = pong.recv();
        }
        let elapsed = start.elapsed();
        drop(ping);
        let _ = echo.join();
        elapsed
    })
}

fn may_spsc(n: usize) -> Duration {
    in_coroutine(move || {
        let (tx, rx) = may::sync::mpsc::channel::<usize>();
        let consumer = go!(move || rx.iter().map(|v| v as i64).sum::<i64>());
        let start = Instant::now();
        for i in 0..n {
            let _ = tx.send(i);
        }
        drop(tx);
        sink(consumer.join().unwrap_or(0));
        start.elapsed()
    })
}

fn may_mpmc(n: usize) -> Duration {
    const SIDES: usize = 4;
    in_coroutine(move || {
        let (tx, rx) = may::sync::mpmc::channel::<usize>();
        let gate = Arc::new(SyncFlag::new());
        let producers: Vec<_> = (0..SIDES)
            .map(|_| {
                let (tx, gate) = (tx.clone(), gate.clone());
                go!(move || {
                    gate.wait();
                    for i in 0..n / SIDES {
                        let _ = tx.send(i);
                    }
                })
            })
            .collect();
        drop(tx);
        let consumers: Vec<_> = (0..SIDES)
            .map(|_| {
                let rx = rx.clone();
                go!(move || rx.iter().map(|v| v as i64).sum::<i64>())
            })
            .collect();
        drop(rx);
        let start = Instant::now();
        gate.fire();
        for p in producers {
            let _ = p.join();
        }
        // every sender is gone: the consumers drain the channel and stop (Go: close)
        let total: i64 = consumers.into_iter().map(|c| c.join().unwrap_or(0)).sum();
        let elapsed = start.elapsed();
        sink(total);
        elapsed
    })
}

fn may_select2_poll(n: usize) -> Duration {
    in_coroutine(move || {
        let half = n / 2;
        let gate = Arc::new(SyncFlag::new());
        let producer = |tx: may::sync::mpsc::Sender<usize>| {
            let gate = gate.clone();
            go!(move || {
                gate.wait();
                for i in 0..half {
                    let _ = tx.send(i);
                }
            })
        };
        let (a_tx, a) = may::sync::mpsc::channel();
        let (b_tx, b) = may::sync::mpsc::channel();
        let producers = [producer(a_tx), producer(b_tx)];
        let start = Instant::now();
        gate.fire();
        let (mut sum, mut got, mut a_first) = (0i64, 0, true);
        while got < 2 * half {
            let (first, second, sign) = if a_first { (&a, &b, 1) } else { (&b, &a, -1) };
            a_first = !a_first;
            if let Ok(v) = first.try_recv() {
                sum += sign * v as i64;
            } else if let Ok(v) = second.try_recv() {
                sum -= sign * v as i64;
            } else {
                may::coroutine::yield_now();
                continue;
            }
            got += 1;
        }
        let elapsed = start.elapsed();
        for p in producers {
            let _ = p.join();
        }
        sink(sum);
        elapsed
    })
}

fn may_spawn_join(n: usize) -> Duration {
    let left = Arc::new(AtomicUsize::new(n));
    let done = Arc::new(SyncFlag::new());
    let start = Instant::now();
    for _ in 0..n {
        let (left, done) = (left.clone(), done.clone());
        go!(move || {
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                done.fire();
            }
        });
    }
    done.wait();
    start.elapsed()
}

fn cb_pingpong(n: usize) -> Duration {
    let (ping, ping_rx) = crossbeam_channel::bounded::<usize>(0);
    let (pong_tx, pong) = crossbeam_channel::bounded::<usize>(0);
    let echo = std::thread::spawn(move || {
        for v in ping_rx {
            if pong_tx.send(v).is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    for i in 0..n {
        let _ = ping.send(i);
        let _ = pong.recv();
    }
    let elapsed = start.elapsed();
    drop(ping);
    let _ = echo.join();
    elapsed
}

fn cb_spsc(n: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<usize>(128);
    let consumer = std::thread::spawn(move || rx.iter().map(|v| v as i64).sum::<i64>());
    let start = Instant::now();
    for i in 0..n {
        let _ = tx.send(i);
    }
    drop(tx);
    sink(consumer.join().unwrap_or(0));
    start.elapsed()
}

fn cb_mpmc(n: usize) -> Duration {
    const SIDES: usize = 4;
    let (tx, rx) = crossbeam_channel::bounded::<usize>(128);
    // receivers of the gate return once its sender is dropped (Go: close)
    let (gate, gate_rx) = crossbeam_channel::bounded::<()>(0);
    let producers: Vec<_> = (0..SIDES)
        .map(|_| {
            let (tx, gate_rx) = (tx.clone(), gate_rx.clone());
            std::thread::spawn(move || {
                let _ = gate_rx.recv();
                for i in 0..n / SIDES {
                    let _ = tx.send(i);
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..SIDES)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().map(|v| v as i64).sum::<i64>())
        })
        .collect();
    drop(rx);
    let start = Instant::now();
    drop(gate);
    for p in producers {
        let _ = p.join();
    }
    let total: i64 = consumers.into_iter().map(|c| c.join().unwrap_or(0)).sum();
    let elapsed = start.elapsed();
    sink(total);
    elapsed
}

fn cb_select2(n: usize) -> Duration {
    let half = n / 2;
    let (gate, gate_rx) = crossbeam_channel::bounded::<()>(0);
    let producer = |tx: crossbeam_channel::Sender<usize>| {
        let gate_rx = gate_rx.clone();
        std::thread::spawn(move || {
            let _ = gate_rx.recv();
            for i in 0..half {
                let _ = tx.send(i);
            }
        })
    };
    let (a_tx, a) = crossbeam_channel::bounded::<usize>(128);
    let (b_tx, b) = crossbeam_channel::bounded::<usize>(128);
    // Keep a sender of each: a channel whose producer finished must not become
    // disconnected, which would make its arm ready forever.
    let _keep = (a_tx.clone(), b_tx.clone());
    let producers = [producer(a_tx), producer(b_tx)];
    let start = Instant::now();
    drop(gate);
    let mut sum = 0i64;
    for _ in 0..2 * half {
        crossbeam_channel::select! {
            recv(a) -> v => sum += v.map_or(0, |v| v as i64),
            recv(b) -> v => sum -= v.map_or(0, |v| v as i64),
        }
    }
    let elapsed = start.elapsed();
    for p in producers {
        let _ = p.join();
    }
    sink(sum);
    elapsed
}

fn cb_spawn_join(n: usize) -> Duration {
    let start = Instant::now();
    let threads: Vec<_> = (0..n).map(|_| std::thread::spawn(|| {})).collect();
    for t in threads {
        let _ = t.join();
    }
    start.elapsed()
}

struct Bench {
    name: &'static str,
    group: &'static str,
    unit: &'static str,
    base: &'static str,
    base_x: u32,
    ops: usize,
    /// crossbeam: cap one run at `-target-ms`
    capped: bool,
    run: fn(usize) -> Duration,
}

fn main() {
    let o = opts();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if o.procs == 0 { cpus } else { o.procs };
    may::config().set_workers(workers);
    let n = |ops: usize| ((ops as f64 * o.scale) as usize).max(1);
    #[rustfmt::skip]
    let benches = [
        Bench { name: "may_unbounded_pingpong_rtt", group: "may", unit: "ns/rtt", base: "unbuf_pingpong_rtt", base_x: 1, ops: n(500_000), capped: false, run: may_pingpong },
        Bench { name: "may_unbounded_spsc", group: "may", unit: "ns/msg", base: "buf128_spsc", base_x: 1, ops: n(5_000_000), capped: false, run: may_spsc },
        Bench { name: "may_unbounded_mpmc_4x4", group: "may", unit: "ns/msg", base: "buf128_mpmc_4x4", base_x: 1, ops: n(4_000_000), capped: false, run: may_mpmc },
        Bench { name: "may_unbounded_select2_poll", group: "may", unit: "ns/op", base: "select2", base_x: 1, ops: n(4_000_000), capped: false, run: may_select2_poll },
        Bench { name: "may_spawn_join_100k", group: "may", unit: "ms", base: "spawn_join_100k", base_x: 1, ops: o.spawn, capped: false, run: may_spawn_join },
        Bench { name: "crossbeam_unbuf_pingpong_rtt", group: "crossbeam", unit: "ns/rtt", base: "unbuf_pingpong_rtt", base_x: 1, ops: n(500_000), capped: true, run: cb_pingpong },
        Bench { name: "crossbeam_buf128_spsc", group: "crossbeam", unit: "ns/msg", base: "buf128_spsc", base_x: 1, ops: n(5_000_000), capped: true, run: cb_spsc },
        Bench { name: "crossbeam_buf128_mpmc_4x4", group: "crossbeam", unit: "ns/msg", base: "buf128_mpmc_4x4", base_x: 1, ops: n(4_000_000), capped: true, run: cb_mpmc },
        Bench { name: "crossbeam_select2", group: "crossbeam", unit: "ns/op", base: "select2", base_x: 1, ops: n(4_000_000), capped: true, run: cb_select2 },
        Bench { name: "crossbeam_spawn_join_10k", group: "crossbeam", unit: "ms", base: "spawn_join_100k", base_x: 10, ops: o.spawn / 10, capped: false, run: cb_spawn_join },
    ];
    println!(
        "# chanbench impl=rust may=0.3.51 may_workers={workers} crossbeam-channel=0.5 cpus={cpus} reps={} target_ms={}",
        o.reps,
        o.target.as_millis()
    );
    let mut ran = 0;
    for b in &benches {
        if (!o.only.is_empty() && o.only != b.name) || (!o.group.is_empty() && o.group != b.group) {
            continue;
        }
        ran += 1;
        let mut ops = b.ops;
        if b.capped {
            // the marginal cost of one operation from runs of p and 2p (start-up cancels)
            let p = (ops / 2).clamp(1, 2_000);
            let (t1, t2) = ((b.run)(p).as_secs_f64(), (b.run)(2 * p).as_secs_f64());
            let per_op = if t2 > t1 {
                (t2 - t1) / p as f64
            } else {
                t2 / (2 * p) as f64
            };
            if per_op > 0.0 {
                ops = ops.min(((o.target.as_secs_f64() / per_op) as usize).max(1_000));
            }
        }
        (b.run)((ops / 10).max(1));
        let mut values: Vec<f64> = (0..o.reps)
            .map(|_| {
                let ns = (b.run)(ops).as_nanos() as f64;
                if b.unit == "ms" {
                    ns / 1e6
                } else {
                    ns / ops as f64
                }
            })
            .collect();
        values.sort_by(f64::total_cmp);
        let mut line = format!(
            "RESULT {} {:.2} {} reps={} min={:.2} max={:.2} n={ops} base={}",
            b.name,
            values[values.len() / 2],
            b.unit,
            values.len(),
            values[0],
            values[values.len() - 1],
            b.base
        );
        if b.base_x != 1 {
            line += &format!(" base_x={}", b.base_x);
        }
        println!("{line}");
    }
    if ran == 0 {
        eprintln!(
            "no benchmark matches -only {:?} -group {:?}",
            o.only, o.group
        );
        exit(2);
    }
    if SINK.load(Ordering::Relaxed) == 1 {
        eprintln!();
    }
}
