//! Criterion benchmarks of goway's `sync` and `context`.
//!
//! Each benchmark mirrors a Go benchmark with the same workload
//! (`bench/peers/go/syncbench/sync_test.go`; results in `BENCHMARKS.md`, "sync and context"). As in Go, where the timed code runs in a
//! goroutine, the timed code here runs inside a goroutine and sends its elapsed time back over
//! a channel; the runtime has 2 worker threads (Go: GOMAXPROCS=2). For reference, the mutex
//! groups also time `may::sync::Mutex` (what goway would have re-exported) and
//! `parking_lot::Mutex` (which blocks the thread: fine here, since nothing waits long).
//!
//! Run: `cargo bench --bench sync -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use goway::context;
use goway::sync::{Mutex, RwLock, Semaphore, WaitGroup};
use goway::{chan, go};

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

/// Times `iters` runs of `op` in one goroutine (Go: a plain `for i := 0; i < b.N; i++` loop).
fn uncontended(iters: u64, op: impl Fn() + Send + 'static) -> Duration {
    in_goroutine(move || {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        start.elapsed()
    })
}

/// Go `BenchmarkMutexContended4`: 4 goroutines share `iters` lock/increment/unlock operations.
/// `lock_inc` does one of them.
fn contended4<M: Send + Sync + 'static>(iters: u64, m: Arc<M>, lock_inc: fn(&M)) -> Duration {
    in_goroutine(move || {
        let wg = WaitGroup::new();
        let (start_tx, start_rx) = chan::bounded::<()>(0);
        let per = iters.div_ceil(4);
        for _ in 0..4 {
            let (m, start_rx) = (m.clone(), start_rx.clone());
            wg.add(1);
            let wg = wg.clone();
            go!(move || {
                let _ = start_rx.recv();
                for _ in 0..per {
                    lock_inc(&m);
                }
                wg.done();
            });
        }
        let start = Instant::now();
        start_tx.close();
        wg.wait();
        start.elapsed()
    })
}

fn bench_mutex(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex");
    g.throughput(Throughput::Elements(1));

    let m = Arc::new(Mutex::new(0u64));
    g.bench_function("uncontended/goway", |b| {
        let m = m.clone();
        b.iter_custom(move |n| {
            let m = m.clone();
            uncontended(n, move || *m.lock() += 1)
        })
    });
    let m = Arc::new(may::sync::Mutex::new(0u64));
    g.bench_function("uncontended/may", |b| {
        let m = m.clone();
        b.iter_custom(move |n| {
            let m = m.clone();
            uncontended(n, move || *m.lock().expect("not poisoned") += 1)
        })
    });
    let m = Arc::new(parking_lot::Mutex::new(0u64));
    g.bench_function("uncontended/parking_lot", |b| {
        let m = m.clone();
        b.iter_custom(move |n| {
            let m = m.clone();
            uncontended(n, move || *m.lock() += 1)
        })
    });

    g.bench_function("contended4/goway", |b| {
        b.iter_custom(|n| contended4(n, Arc::new(Mutex::new(0u64)), |m| *m.lock() += 1))
    });
    g.bench_function("contended4/may", |b| {
        b.iter_custom(|n| {
            contended4(n, Arc::new(may::sync::Mutex::new(0u64)), |m| {
                *m.lock().expect("not poisoned") += 1
            })
        })
    });
    g.bench_function("contended4/parking_lot", |b| {
        b.iter_custom(|n| {
            contended4(n, Arc::new(parking_lot::Mutex::new(0u64)), |m| {
                *m.lock() += 1
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("rwlock");
    g.throughput(Throughput::Elements(1));
    let l = Arc::new(RwLock::new(0u64));
    g.bench_function("read_uncontended", |b| {
        let l = l.clone();
        b.iter_custom(move |n| {
            let l = l.clone();
            uncontended(n, move || {
                black_box(*l.read());
            })
        })
    });
    g.bench_function("read_contended4", |b| {
        b.iter_custom(|n| {
            contended4(n, Arc::new(RwLock::new(0u64)), |l| {
                black_box(*l.read());
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("semaphore");
    g.throughput(Throughput::Elements(1));
    let s = Arc::new(Semaphore::new(1));
    g.bench_function("acquire_release_uncontended", |b| {
        let s = s.clone();
        b.iter_custom(move |n| {
            let s = s.clone();
            uncontended(n, move || drop(black_box(s.acquire())))
        })
    });
    g.finish();
}

/// Go `BenchmarkWaitGroup10k`: one iteration adds 10,000, starts 10,000 goroutines that each
/// call `Done`, and waits.
fn waitgroup_10k(iters: u64) -> Duration {
    in_goroutine(move || {
        let start = Instant::now();
        for _ in 0..iters {
            let wg = WaitGroup::new();
            wg.add(10_000);
            for _ in 0..10_000 {
                let wg = wg.clone();
                go!(move || wg.done());
            }
            wg.wait();
        }
        start.elapsed()
    })
}

fn bench_waitgroup(c: &mut Criterion) {
    let mut g = c.benchmark_group("waitgroup");
    g.throughput(Throughput::Elements(1));
    let wg = WaitGroup::new();
    g.bench_function("add_done_wait_uncontended", |b| {
        let wg = wg.clone();
        b.iter_custom(move |n| {
            let wg = wg.clone();
            uncontended(n, move || {
                wg.add(1);
                wg.done();
                wg.wait();
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("waitgroup");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("spawn_done_wait_10k", |b| b.iter_custom(waitgroup_10k));
    g.finish();
}

fn bench_context(c: &mut Criterion) {
    let mut g = c.benchmark_group("context");
    g.throughput(Throughput::Elements(1));
    g.bench_function("with_cancel_cancel/background", |b| {
        b.iter_custom(|n| {
            uncontended(n, || {
                let (ctx, cancel) = context::with_cancel(&context::background());
                cancel.cancel();
                black_box(ctx);
            })
        })
    });
    g.bench_function("with_cancel_cancel/cancellable_parent", |b| {
        let (parent, keep) = context::with_cancel(&context::background());
        keep.detach();
        b.iter_custom(move |n| {
            let parent = parent.clone();
            uncontended(n, move || {
                let (ctx, cancel) = context::with_cancel(&parent);
                cancel.cancel();
                black_box(ctx);
            })
        })
    });
    g.bench_function("with_timeout_cancel/cancellable_parent", |b| {
        let (parent, keep) = context::with_cancel(&context::background());
        keep.detach();
        b.iter_custom(move |n| {
            let parent = parent.clone();
            uncontended(n, move || {
                let (ctx, cancel) = context::with_timeout(&parent, Duration::from_secs(3600));
                cancel.cancel();
                black_box(ctx);
            })
        })
    });
    g.bench_function("with_cancel_done_cancel_recv", |b| {
        b.iter_custom(|n| {
            uncontended(n, || {
                let (ctx, cancel) = context::with_cancel(&context::background());
                let done = ctx.done();
                cancel.cancel();
                let _ = black_box(done.recv());
            })
        })
    });
    g.bench_function("value_lookup_depth4", |b| {
        struct Key(u64);
        let mut ctx = context::with_value(&context::background(), Key(1));
        for i in 0..3u32 {
            ctx = context::with_value(&ctx, i);
        }
        b.iter_custom(move |n| {
            let ctx = ctx.clone();
            uncontended(n, move || {
                black_box(ctx.value::<Key>().map(|k| k.0));
            })
        })
    });
    g.finish();
}

fn main() {
    goway::runtime::Config::new()
        .workers(2)
        .apply()
        .expect("runtime configured before the first goroutine");
    let mut c = Criterion::default().configure_from_args();
    bench_mutex(&mut c);
    bench_waitgroup(&mut c);
    bench_context(&mut c);
    c.final_summary();
}
