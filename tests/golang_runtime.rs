//! Small Go programs about goroutines, the runtime and time, ported to goway: one `mod` per
//! program, numbered as in the set of Go reference programs the project was checked against
//! (goroutine start and exit, `runtime.Gosched`, `NumGoroutine`, panics, timers and tickers).
//! Where the output can be the same, the port prints Go's lines and compares them with the
//! output Go 1.19 printed, embedded here.
//!
//! Deviations from Go:
//! - A panic ends only its goroutine (25, 45): `join()` returns `Err(Panicked)` with the
//!   message and the program goes on; an unjoined panic is logged. Go's crash (exit status 2,
//!   `panic: <v>` on stderr) is the opt-in `Config::abort_on_panic(true)`, tested in
//!   `tests/abort_on_panic.rs`.
//! - Recovering (46) is `join()` returning `Err`: there is no `recover()` inside the
//!   goroutine, no `error`/`runtime.Error` interface on the payload (Rust's runtime errors,
//!   such as an index out of bounds, panic with a `String`), and a non-string payload has the
//!   message `<non-string panic payload>` (the payload itself comes back whole).
//! - A deadlock (44) is reported by goway's detector in a process of its own
//!   (`tests/diag_deadlock.rs` runs it as a child); in this shared test process every wait is
//!   bounded by a watchdog (`recv_timeout`, `join_timeout`) instead.
//! - Goroutines cannot be abandoned: Go's sieve and generators block forever when main
//!   returns; here every goroutine ends when its peer's channel closes (a send returns `Err`),
//!   and each test joins all of them.
//! - `sync.WaitGroup` is replaced by a counter over channels (each goroutine sends one "done").
//! - Durations are unsigned: `NewTimer(-1s)` is ported as `Timer::new(Duration::ZERO)`.
//! - An `AfterFunc` timer's channel is not nil but `chan::never()`: never ready, never closed.
//! - 28: 1e5 goroutines blocked at once need 2e5 memory mappings (stack + guard page each); on
//!   a machine whose `vm.max_map_count` is too small for that the test runs as many as fit and
//!   says so on stderr.

use std::time::{Duration, Instant};

use goway::chan::{self, Receiver, Sender};
use goway::{JoinHandle, go};

mod common;
// `join` gives a goroutine's panic back, as Go's programs show theirs.
use common::{WATCHDOG, exclusive, join_result as join, shared};

fn recv<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("no value within {WATCHDOG:?}: {e}"))
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_owned).collect()
}

/// Go's `fmt.Println` of an `[]int`.
fn go_slice(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(" "))
}

// 24_prime_sieve
mod prime_sieve {
    use super::*;

    const EXPECTED: &str = "\
[2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97]
100th prime: 541
";

    fn generate(ch: Sender<u64>) {
        for i in 2.. {
            if ch.send(i).is_err() {
                return; // the first filter is gone
            }
        }
    }

    fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
        for i in &input {
            if i % prime != 0 && out.send(i).is_err() {
                return; // the next filter (or main) is gone
            }
        }
    }

    #[test]
    fn hundred_filters() {
        let _g = shared();
        let (tx, mut ch) = chan::bounded::<u64>(0);
        let mut hs = vec![go!(move || generate(tx))];
        let mut primes = Vec::new();
        for _ in 0..100 {
            let prime = recv(&ch);
            primes.push(prime);
            let (tx1, rx1) = chan::bounded(0);
            let input = std::mem::replace(&mut ch, rx1);
            hs.push(go!(move || filter(input, tx1, prime)));
        }
        let out = format!("{}\n100th prime: {}\n", go_slice(&primes[..25]), primes[99]);
        assert_eq!(lines(&out), lines(EXPECTED));
        // Dropping the last receiver unwinds the chain: each filter's send fails in turn.
        drop(ch);
        for h in hs {
            join(h).unwrap();
        }
    }
}

// 25_pipeline_fan_out_fan_in
mod pipeline_fan_out_fan_in {
    use super::*;

    const EXPECTED: &str = "count: 1000 sum: 333833500 smallest: [1 4 9 16 25] largest: 1000000\n";

    fn gen_(n: u64, hs: &mut Vec<JoinHandle<()>>) -> Receiver<u64> {
        let (out, rx) = chan::bounded(0);
        hs.push(go!(move || {
            for i in 1..=n {
                out.send(i).unwrap();
            }
            out.close();
        }));
        rx
    }

    fn sq(input: Receiver<u64>, hs: &mut Vec<JoinHandle<()>>) -> Receiver<u64> {
        let (out, rx) = chan::bounded(0);
        hs.push(go!(move || {
            for v in &input {
                out.send(v * v).unwrap();
            }
            out.close();
        }));
        rx
    }

    /// Go's merge, with a "done" channel and a counting closer in place of the WaitGroup.
    fn merge(cs: Vec<Receiver<u64>>, hs: &mut Vec<JoinHandle<()>>) -> Receiver<u64> {
        let (out, rx) = chan::bounded(4);
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let n = cs.len();
        for c in cs {
            let out = out.clone();
            let done = done_tx.clone();
            hs.push(go!(move || {
                for v in &c {
                    out.send(v).unwrap();
                }
                done.send(()).unwrap();
            }));
        }
        hs.push(go!(move || {
            for _ in 0..n {
                recv(&done_rx);
            }
            out.close();
        }));
        rx
    }

    #[test]
    fn four_squarers() {
        let _g = shared();
        let mut hs = Vec::new();
        let input = gen_(1000, &mut hs);
        let workers: Vec<_> = (0..4).map(|_| sq(input.clone(), &mut hs)).collect();
        drop(input);
        let merged = merge(workers, &mut hs);
        let mut all = Vec::new();
        let mut sum = 0;
        loop {
            match merged.recv_timeout(WATCHDOG) {
                Ok(v) => {
                    all.push(v);
                    sum += v;
                }
                Err(e) if e.is_timeout() => panic!("pipeline stalled"),
                Err(_) => break, // closed by the closer
            }
        }
        all.sort_unstable();
        let out = format!(
            "count: {} sum: {} smallest: {} largest: {}\n",
            all.len(),
            sum,
            go_slice(&all[..5]),
            all[all.len() - 1]
        );
        assert_eq!(lines(&out), lines(EXPECTED));
        for h in hs {
            join(h).unwrap();
        }
    }
}

// 26_worker_pool_waitgroup
mod worker_pool {
    use super::*;
    use std::collections::HashMap;

    const EXPECTED: &str =
        "results: 100 sum: 10100 each job exactly once: true per-worker total: 100\n";

    #[test]
    fn five_workers_each_job_once() {
        let _g = shared();
        let (jobs_tx, jobs_rx) = chan::bounded::<u64>(100);
        let (res_tx, res_rx) = chan::bounded::<(usize, u64)>(100);
        // Joining the workers stands in for wg.Wait().
        let workers: Vec<_> = (0..5)
            .map(|w| {
                let jobs = jobs_rx.clone();
                let results = res_tx.clone();
                go!(move || {
                    for j in &jobs {
                        results.send((w, j * 2)).unwrap();
                    }
                })
            })
            .collect();
        drop(jobs_rx);
        drop(res_tx);
        for j in 1..=100 {
            jobs_tx.send(j).unwrap();
        }
        jobs_tx.close();
        for w in workers {
            join(w).unwrap();
        }
        let mut seen: HashMap<u64, u32> = HashMap::new();
        let mut per_worker: HashMap<usize, u32> = HashMap::new();
        let mut sum = 0;
        for (w, r) in &res_rx {
            *seen.entry(r).or_default() += 1;
            *per_worker.entry(w).or_default() += 1;
            sum += r;
        }
        let once = (1..=100).all(|j| seen.get(&(j * 2)) == Some(&1));
        let total: u32 = per_worker.values().sum();
        let out = format!(
            "results: {} sum: {} each job exactly once: {} per-worker total: {}\n",
            seen.len(),
            sum,
            once,
            total
        );
        assert_eq!(lines(&out), lines(EXPECTED));
    }
}

// 27_daisy_chain_10000
mod daisy_chain {
    use super::*;

    const EXPECTED: &str = "10001\n";

    #[test]
    fn ten_thousand_goroutines() {
        let _g = shared();
        const N: usize = 10_000;
        let (leftmost_tx, leftmost_rx) = chan::bounded::<u64>(0);
        let mut left = leftmost_tx;
        let mut hs = Vec::with_capacity(N + 1);
        for _ in 0..N {
            let (right_tx, right_rx) = chan::bounded::<u64>(0);
            hs.push(go!(move || {
                let v = right_rx.recv().unwrap();
                left.send(1 + v).unwrap();
            }));
            left = right_tx;
        }
        hs.push(go!(move || left.send(1).unwrap()));
        let out = format!("{}\n", recv(&leftmost_rx));
        assert_eq!(lines(&out), lines(EXPECTED));
        for h in hs {
            join(h).unwrap();
        }
    }
}

// 28_spawn_join_1e5
mod spawn_join_1e5 {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    const EXPECTED: &str = "\
ran: 100000 sum of ids: 4999950000 expected: 4999950000
100000 simultaneously blocked goroutines released
";

    #[test]
    fn spawn_and_join() {
        let _g = shared();
        const N: u64 = 100_000;
        let count = Arc::new(AtomicU64::new(0));
        let sum = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let (count, sum) = (count.clone(), sum.clone());
                go!(move || {
                    count.fetch_add(1, Ordering::Relaxed);
                    sum.fetch_add(i, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            join(h).unwrap();
        }
        let out = format!(
            "ran: {} sum of ids: {} expected: {}\n",
            count.load(Ordering::Relaxed),
            sum.load(Ordering::Relaxed),
            N * (N - 1) / 2
        );
        assert_eq!(lines(&out)[0], lines(EXPECTED)[0]);
    }

    /// How many more goroutines can be blocked at once before the process runs out of memory
    /// mappings (each stack takes two: the stack and its guard page).
    fn stacks_that_fit() -> usize {
        let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(usize::MAX / 4);
        let used = std::fs::read_to_string("/proc/self/maps")
            .map(|s| s.lines().count())
            .unwrap_or(0);
        // Headroom for threads, the allocator and the test harness.
        max.saturating_sub(used).saturating_sub(5_000) / 2
    }

    #[test]
    fn all_blocked_then_released_by_one_close() {
        let _g = exclusive();
        const GO_N: usize = 100_000;
        let n = GO_N.min(stacks_that_fit());
        if n < GO_N {
            eprintln!(
                "28_spawn_join_1e5: vm.max_map_count allows only about {n} more goroutine \
                 stacks; blocking {n} instead of {GO_N} (sysctl -w vm.max_map_count=262144 \
                 runs the full case)"
            );
        }
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        // Counters over channels: every goroutine reports once on each.
        let (ready_tx, ready_rx) = chan::unbounded::<()>();
        let (done_tx, done_rx) = chan::unbounded::<()>();
        let mut hs = Vec::with_capacity(n);
        for _ in 0..n {
            let (gate, ready, done) = (gate_rx.clone(), ready_tx.clone(), done_tx.clone());
            let spawned = goway::Builder::new().spawn(move || {
                ready.send(()).unwrap();
                assert!(gate.recv().is_err(), "the gate only closes");
                done.send(()).unwrap();
            });
            match spawned {
                Ok(h) => hs.push(h),
                Err(e) => {
                    // The runtime's own limit may be lower than this estimate.
                    eprintln!("28_spawn_join_1e5: spawn {} refused: {e}", hs.len());
                    assert!(e.to_string().contains("vm.max_map_count"), "{e}");
                    break;
                }
            }
        }
        let n = hs.len();
        assert!(n >= 10_000, "only {n} goroutines could block at once");
        for _ in 0..n {
            recv(&ready_rx);
        }
        assert!(goway::runtime::num_goroutines() >= n);
        assert_eq!(done_rx.len(), 0, "nobody passed the gate before the close");
        assert!(gate_tx.close());
        for _ in 0..n {
            recv(&done_rx);
        }
        for h in hs {
            join(h).unwrap();
        }
        let out = format!("{n} simultaneously blocked goroutines released\n");
        if n == GO_N {
            assert_eq!(lines(&out)[0], lines(EXPECTED)[1]);
        }
    }
}

// 44_deadlock_main_blocked
mod deadlock {
    use super::*;

    /// Go's runtime prints "fatal error: all goroutines are asleep - deadlock!" and exits 2; so
    /// does goway's detector when the blocked thread is main (`tests/diag_deadlock.rs` runs this
    /// program as a child). Here the receive runs on a test thread, with a deadline, while main
    /// waits in libtest: nothing to report, and the bounded wait shows the block by timing out.
    #[test]
    fn the_blocked_receive_times_out_outside_main() {
        let _g = shared();
        let (_tx, rx) = chan::bounded::<i32>(0);
        let t = Instant::now();
        let r = rx.recv_timeout(Duration::from_millis(30));
        assert!(r.unwrap_err().is_timeout());
        assert!(t.elapsed() >= Duration::from_millis(30));
    }
}

// 45_goroutine_panic_crashes_program
mod goroutine_panic {
    use super::*;

    /// Deviation: the panic ends only its goroutine (Go: the whole program, exit status 2;
    /// goway gives that with `abort_on_panic`, see tests/abort_on_panic.rs).
    #[test]
    fn panic_ends_only_the_goroutine() {
        let _g = shared();
        let mut out = vec!["start".to_owned()];
        let h = go!(|| panic!("boom in goroutine"));
        match join(h) {
            Err(p) => out.push(format!("panic: {}", p.message())),
            Ok(()) => out.push("no panic".to_owned()),
        }
        out.push("main continues".to_owned());
        assert_eq!(out, ["start", "panic: boom in goroutine", "main continues"]);
    }
}

// 46_goroutine_recover_prevents_crash
mod recover {
    use super::*;

    #[derive(Debug)]
    struct AnError(&'static str);

    #[test]
    fn join_recovers_any_payload_and_main_continues() {
        let _g = shared();
        let mut out = Vec::new();

        let p = join(go!(|| panic!("boom"))).unwrap_err();
        out.push(format!("recovered {:?}", p.message()));

        // Go: panic(errors.New("an error value")); the value comes back whole.
        let p = join(go!(|| std::panic::panic_any(AnError("an error value")))).unwrap_err();
        assert_eq!(p.message(), "<non-string panic payload>");
        let e = p.into_payload().downcast::<AnError>().expect("the payload");
        out.push(format!("recovered {:?}", e.0));

        // Go: a runtime error (assignment to entry in nil map); Rust's nearest: an index out
        // of bounds, which panics with a String.
        let p = join(go!(|| {
            let v: Vec<i32> = Vec::new();
            v[std::hint::black_box(1)]
        }))
        .unwrap_err();
        out.push(format!("recovered {:?}", p.message()));

        out.push("main continues normally".to_owned());
        assert_eq!(
            out,
            [
                "recovered \"boom\"",
                "recovered \"an error value\"",
                "recovered \"index out of bounds: the len is 0 but the index is 1\"",
                "main continues normally",
            ]
        );
    }
}

// 40_ticker_ticks_and_stop
mod ticker_ticks_and_stop {
    use super::*;
    use goway::select;
    use goway::time::{self, Ticker};

    const EXPECTED: &str = "\
received 5 ticks, increasing: true elapsed >= 100ms: true
no ticks after Stop
Reset restarts a stopped ticker
time.Tick delivered 2 ticks
NewTicker(0) panics: non-positive interval for NewTicker
";

    #[test]
    fn port() {
        let _g = shared();
        let ms = Duration::from_millis;
        let mut out = Vec::new();

        // Deviation: `start` is taken before NewTicker, so that the bound is exact even if the
        // test thread is descheduled and ticks are dropped (the 5th received tick is no earlier
        // than the 5th scheduled one).
        let start = Instant::now();
        let mut t = Ticker::new(ms(20));
        let mut prev: Option<Instant> = None;
        let mut increasing = true;
        for _ in 0..5 {
            let tick = recv(t.c());
            if prev.is_some_and(|p| tick <= p) {
                increasing = false;
            }
            prev = Some(tick);
        }
        out.push(format!(
            "received 5 ticks, increasing: {increasing} elapsed >= 100ms: {}",
            start.elapsed() >= ms(100)
        ));
        t.stop();
        select! {
            recv(t.c()) -> _ => (), // possibly one tick buffered before Stop
            default => (),
        }
        select! {
            recv(t.c()) -> _ => out.push("WRONG: tick after Stop".to_owned()),
            recv(time::after(ms(150))) -> _ => out.push("no ticks after Stop".to_owned()),
        }
        t.reset(ms(10));
        recv(t.c());
        out.push("Reset restarts a stopped ticker".to_owned());
        t.stop();

        let tc = time::tick(ms(10));
        recv(&tc);
        recv(&tc);
        out.push("time.Tick delivered 2 ticks".to_owned());
        drop(tc);

        let r = std::panic::catch_unwind(|| Ticker::new(Duration::ZERO));
        let msg = match r {
            Ok(_) => "no panic".to_owned(),
            Err(p) => p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default(),
        };
        out.push(format!("NewTicker(0) panics: {msg}"));

        assert_eq!(out, lines(EXPECTED));
    }
}

// 42_timer_stop_reset_returns
mod timer_stop_reset_returns {
    use super::*;
    use goway::time::{self, Timer};

    const EXPECTED: &str = "\
Stop active timer: true
Stop again: false
Reset stopped timer: false
fired after Reset
Stop fired+drained timer: false
Reset expired timer: false
Reset active timer: true
fired after second Reset
NewTimer(0) fires
NewTimer(negative) fires
AfterFunc Stop before firing: true
AfterFunc ran
AfterFunc Stop after it ran: false
AfterFunc Reset after it ran: false
AfterFunc ran again
AfterFunc timer has nil C: true
";

    #[test]
    fn port() {
        let _g = shared();
        let ms = Duration::from_millis;
        let hour = Duration::from_secs(3600);
        let mut out = Vec::new();

        let mut t = Timer::new(hour);
        out.push(format!("Stop active timer: {}", t.stop()));
        out.push(format!("Stop again: {}", t.stop()));
        out.push(format!("Reset stopped timer: {}", t.reset(ms(10))));
        recv(t.c());
        out.push("fired after Reset".to_owned());
        out.push(format!("Stop fired+drained timer: {}", t.stop()));
        out.push(format!("Reset expired timer: {}", t.reset(hour)));
        out.push(format!("Reset active timer: {}", t.reset(ms(10))));
        recv(t.c());
        out.push("fired after second Reset".to_owned());

        let z = Timer::new(Duration::ZERO);
        recv(z.c());
        out.push("NewTimer(0) fires".to_owned());
        // Duration cannot be negative: zero is the nearest.
        let n = Timer::new(Duration::ZERO);
        recv(n.c());
        out.push("NewTimer(negative) fires".to_owned());

        let (ran_tx, ran_rx) = chan::bounded::<&str>(2);
        let wrong = ran_tx.clone();
        let mut af = time::after_func(hour, move || {
            let _ = wrong.try_send("WRONG");
        });
        out.push(format!("AfterFunc Stop before firing: {}", af.stop()));
        let mut af2 = time::after_func(ms(10), move || {
            let _ = ran_tx.try_send("AfterFunc ran");
        });
        out.push(recv(&ran_rx).to_owned());
        out.push(format!("AfterFunc Stop after it ran: {}", af2.stop()));
        out.push(format!(
            "AfterFunc Reset after it ran: {}",
            af2.reset(ms(10))
        ));
        out.push(format!("{} again", recv(&ran_rx)));
        // Go: af2.C == nil. Here: a channel that is never ready and never closed.
        let nil_c =
            af2.c().recv_timeout(ms(20)).is_err_and(|e| e.is_timeout()) && !af2.c().is_closed();
        out.push(format!("AfterFunc timer has nil C: {nil_c}"));

        assert_eq!(out, lines(EXPECTED));
        assert!(ran_rx.try_recv().is_err(), "the stopped AfterFunc ran");
    }
}
