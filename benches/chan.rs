//! Criterion benchmarks of goway's channels, `select!` and goroutine spawning (issue 2).
//!
//! Each benchmark mirrors one workload of the Go program `bench/peers/go/chanbench/main.go`
//! in this repository's benchmark harness (the same workload is in `examples/chanbench.rs`,
//! which prints Go's output format for `bench/compare.sh chan`). As in Go, where the timed code runs in the
//! main goroutine, the timed code here runs inside a goroutine and sends its elapsed time back
//! over a channel; the runtime has 2 worker threads (Go: GOMAXPROCS=2).
//!
//! Run: `cargo bench --bench chan` (or `cargo bench --bench chan -- select2`).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use goway::chan::{self, Sender};
use goway::{go, select};

/// Runs `f` in a goroutine and returns the time it measured, sent back over a channel.
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

/// Go chanbench `unbuf_pingpong_rtt` (`benchPingPong`): two goroutines, two unbuffered
/// channels; one iteration is a round trip (send ping, receive pong).
fn pingpong(iters: u64) -> Duration {
    in_goroutine(move || {
        let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
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
            black_box(pong_rx.recv().expect("pong"));
        }
        let d = start.elapsed();
        ping_tx.close();
        let _ = pong_rx.recv();
        d
    })
}

/// Go chanbench `buf128_spsc` (`benchSPSC`): one producer (the timing goroutine), one
/// consumer, capacity 128; one iteration is one message, timed until the consumer is done.
fn spsc(msgs: u64) -> Duration {
    in_goroutine(move || {
        let (tx, rx) = chan::bounded::<u64>(128);
        let (done_tx, done_rx) = chan::bounded::<u64>(0);
        let _consumer = go!(move || {
            let mut s = 0u64;
            for v in &rx {
                s = s.wrapping_add(v);
            }
            let _ = done_tx.send(s);
        });
        let start = Instant::now();
        for i in 0..msgs {
            tx.send(i).expect("send");
        }
        tx.close();
        black_box(done_rx.recv().expect("consumer sum"));
        start.elapsed()
    })
}

/// Go chanbench `buf128_mpmc_4x4` (`benchMPMC`): 4 producers and 4 consumers on one
/// capacity-128 channel, released by closing a gate channel; one iteration is one message.
fn mpmc(msgs: u64) -> Duration {
    const SIDES: u64 = 4;
    let per = msgs.div_ceil(SIDES);
    let d = in_goroutine(move || {
        let (tx, rx) = chan::bounded::<u64>(128);
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let ps: Vec<_> = (0..SIDES)
            .map(|_| {
                let (tx, gate_rx) = (tx.clone(), gate_rx.clone());
                go!(move || {
                    let _ = gate_rx.recv();
                    for i in 0..per {
                        tx.send(i).expect("send");
                    }
                })
            })
            .collect();
        let cs: Vec<_> = (0..SIDES)
            .map(|_| {
                let rx = rx.clone();
                go!(move || {
                    let mut s = 0u64;
                    for v in &rx {
                        s = s.wrapping_add(v);
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
        for c in cs {
            black_box(c.join().expect("consumer"));
        }
        start.elapsed()
    });
    // `per * SIDES` messages were sent; report the time for `msgs` of them.
    d.mul_f64(msgs as f64 / (per * SIDES) as f64)
}

/// Go chanbench `select2` (`benchSelect2`): the timing goroutine selects over two
/// capacity-128 channels, each fed by its own producer; one iteration is one received message.
fn select2(msgs: u64) -> Duration {
    let half = msgs.div_ceil(2);
    let d = in_goroutine(move || {
        // The senders kept here hold both channels open after a producer finishes (Go's
        // producers never close theirs; a closed channel's arm would always be ready).
        let (a_tx, a) = chan::bounded::<u64>(128);
        let (b_tx, b) = chan::bounded::<u64>(128);
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let feed = |tx: Sender<u64>| {
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
                recv(a) -> v => s = s.wrapping_add(v.expect("a") as i64),
                recv(b) -> v => s = s.wrapping_sub(v.expect("b") as i64),
            }
        }
        let d = start.elapsed();
        black_box(s);
        drop((a_tx, b_tx));
        d
    });
    d.mul_f64(msgs as f64 / (2 * half) as f64)
}

/// Go chanbench `spawn_join_100k` (`benchSpawnJoin`): the timing goroutine spawns 100,000
/// goroutines that each count down once (Go: `wg.Done()`) and waits until the last one
/// signals over a channel (Go: `wg.Wait()`). One iteration is all 100,000.
fn spawn_join_100k(iters: u64) -> Duration {
    const N: usize = 100_000;
    struct Countdown {
        left: AtomicUsize,
        done: Sender<()>,
    }
    (0..iters)
        .map(|_| {
            in_goroutine(|| {
                let (done, all_done) = chan::bounded::<()>(1);
                let start = Instant::now();
                let wg = Arc::new(Countdown {
                    left: AtomicUsize::new(N),
                    done,
                });
                for _ in 0..N {
                    let wg = wg.clone();
                    go!(move || {
                        if wg.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            let _ = wg.done.send(());
                        }
                    });
                }
                all_done.recv().expect("countdown");
                start.elapsed()
            })
        })
        .sum()
}

fn bench_channels(c: &mut Criterion) {
    let mut g = c.benchmark_group("chan");
    g.throughput(Throughput::Elements(1));
    g.bench_function("unbuf_pingpong_rtt", |b| b.iter_custom(pingpong));
    g.bench_function("buf128_spsc", |b| b.iter_custom(spsc));
    g.bench_function("buf128_mpmc_4x4", |b| b.iter_custom(mpmc));
    g.bench_function("select2", |b| b.iter_custom(select2));
    g.finish();
}

fn bench_spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("goroutine");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5));
    g.bench_function("spawn_join_100k", |b| b.iter_custom(spawn_join_100k));
    g.finish();
}

fn main() {
    goway::runtime::Config::new()
        .workers(2)
        .apply()
        .expect("runtime configured before the first goroutine");
    let mut c = Criterion::default().configure_from_args();
    bench_channels(&mut c);
    bench_spawn(&mut c);
    c.final_summary();
}
