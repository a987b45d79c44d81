//! `goway::time`: `sleep`, `after`, `tick`, `Timer`, `Ticker`, `after_func`.
//!
//! Time is measured, never used to order steps: lower bounds are exact (a timer never fires
//! early), upper bounds are generous (`slack`) for a noisy 2-core VM, and every wait is bounded
//! by `WATCHDOG`. Negative checks ("no tick arrives within 50 ms") only use timers that, if the
//! library is right, cannot fire for an hour.
//!
//! The test reading the process-wide goroutine and thread counts takes the exclusive side of
//! `LOCK`; every other test takes the shared side.

use std::time::{Duration, Instant};

use goway::chan::{self, RecvTimeoutError, TryRecvError};
use goway::time::{self, Ticker, Timer};
use goway::{go, runtime, select};

const HOUR: Duration = Duration::from_secs(3600);

mod common;
use common::{WATCHDOG, exclusive, shared, wait_until};

/// A generous upper bound for something that should take `d`.
fn slack(d: Duration) -> Duration {
    d * 5 + Duration::from_millis(250)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Number of threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .count()
}

// ----- sleep ------------------------------------------------------------------------------------

#[test]
fn sleep_on_a_thread_waits_at_least_d() {
    let _g = shared();
    let t = Instant::now();
    time::sleep(ms(30));
    let e = t.elapsed();
    assert!(e >= ms(30), "{e:?}");
    assert!(e < slack(ms(30)), "{e:?}");
}

#[test]
fn sleep_in_a_goroutine_waits_at_least_d() {
    let _g = shared();
    let h = go!(|| {
        let t = Instant::now();
        time::sleep(ms(30));
        t.elapsed()
    });
    let e = h.join_timeout(WATCHDOG).expect("goroutine finished");
    assert!(e >= ms(30), "{e:?}");
    assert!(e < slack(ms(30)), "{e:?}");
}

#[test]
fn sleep_zero_returns_at_once() {
    let _g = shared();
    let t = Instant::now();
    time::sleep(Duration::ZERO);
    assert!(t.elapsed() < ms(250));
    let h = go!(|| time::sleep(Duration::ZERO));
    h.join_timeout(WATCHDOG).expect("goroutine finished");
}

// Was a bug: may keeps a coroutine's park timeout in whole milliseconds and reads 0 as
// "forever", so a goroutine's timed wait with less than 1 ms left never returned; a plain
// sleep(50 ms) hit it whenever may woke it up to 1 ms early (src/chan/waiter.rs, Waiter::wait).
#[test]
fn sleep_and_timeouts_below_1ms_in_a_goroutine() {
    let _g = shared();
    let short = Duration::from_micros(500);
    let h = go!(move || {
        let (_tx, rx) = chan::bounded::<()>(0);
        let t = Instant::now();
        assert!(rx.recv_timeout(short).unwrap_err().is_timeout());
        time::sleep(short);
        t.elapsed()
    });
    match h.join_timeout(Duration::from_secs(5)) {
        Ok(e) => assert!(e >= short * 2, "{e:?}"),
        Err(Ok(_)) => panic!("a 0.5 ms timeout and a 0.5 ms sleep did not end within 5 s"),
        Err(Err(p)) => panic!("{p}"),
    }
}

#[test]
fn sleeping_goroutines_do_not_hold_their_worker() {
    let _g = shared();
    // 40 × 50 ms would take 1 s on two workers if sleep blocked the worker thread.
    let t = Instant::now();
    let hs: Vec<_> = (0..40).map(|_| go!(|| time::sleep(ms(50)))).collect();
    for h in hs {
        h.join_timeout(WATCHDOG).expect("goroutine finished");
    }
    let e = t.elapsed();
    assert!(e >= ms(50), "{e:?}");
    assert!(e < ms(500), "sleeps ran one after another: {e:?}");
}

// ----- after ------------------------------------------------------------------------------------

#[test]
fn after_zero_fires_at_once() {
    let _g = shared();
    let t = Instant::now();
    let fired = time::after(Duration::ZERO)
        .recv_timeout(WATCHDOG)
        .expect("after(0) fires");
    assert!(fired >= t);
    assert!(t.elapsed() < ms(250), "{:?}", t.elapsed());
}

#[test]
fn after_delivers_its_firing_time_once() {
    let _g = shared();
    let t = Instant::now();
    let rx = time::after(ms(20));
    let fired = rx.recv_timeout(WATCHDOG).expect("after fires");
    assert!(fired >= t + ms(20), "fired early");
    assert!(t.elapsed() >= ms(20));
    assert!(t.elapsed() < slack(ms(20)), "{:?}", t.elapsed());
    // One value only.
    assert!(rx.try_recv().is_err());
}

// Was a bug: after(d)'s channel closed once it fired (the wheel dropped the last sender), so a
// select! loop keeping a fired timeout arm spun on it; Go's timer channels never close.
#[test]
fn after_channel_stays_open_after_firing() {
    let _g = shared();
    let rx = time::after(ms(1));
    rx.recv_timeout(WATCHDOG).expect("after fires");
    assert!(!rx.is_closed(), "closed after firing");
    assert_eq!(
        rx.recv_timeout(ms(20)).unwrap_err(),
        RecvTimeoutError::Timeout,
        "a second receive must wait, as in Go"
    );
    // The consequence: a fired timeout arm stays ready.
    let (_tx, data) = chan::bounded::<u32>(0);
    let idle = select! {
        recv(data) -> _ => false,
        recv(rx) -> _ => false,
        default => true,
    };
    assert!(idle, "the fired timeout arm was chosen again");
}

#[test]
fn after_in_select_loses_to_a_ready_arm() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<u32>(1);
    for i in 0..1000 {
        tx.send(i).unwrap();
        let got = select! {
            recv(rx) -> v => v.unwrap(),
            recv(time::after(ms(200))) -> _ => panic!("timeout chosen over a ready arm"),
        };
        assert_eq!(got, i);
    }
}

#[test]
fn after_in_select_times_out_when_nothing_is_ready() {
    let _g = shared();
    let (_tx, rx) = chan::bounded::<u32>(0);
    let t = Instant::now();
    let timed_out = select! {
        recv(rx) -> _ => false,
        // A block body followed by a comma (select! once failed to parse it).
        recv(time::after(ms(30))) -> v => {
            assert!(v.is_ok());
            true
        },
    };
    assert!(timed_out);
    assert!(t.elapsed() >= ms(30));
    assert!(t.elapsed() < slack(ms(30)), "{:?}", t.elapsed());
}

#[test]
fn after_in_select_inside_a_goroutine() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<&str>(0);
    let h = go!(move || {
        let t = Instant::now();
        let r = select! {
            recv(rx) -> v => v.unwrap(),
            recv(time::after(ms(20))) -> _ => "timeout",
        };
        (r, t.elapsed())
    });
    let (r, e) = h.join_timeout(WATCHDOG).expect("goroutine finished");
    assert_eq!(r, "timeout");
    assert!(e >= ms(20), "{e:?}");
    drop(tx);
}

/// A timer per `after()` must not cost a goroutine or an OS thread.
#[test]
fn after_in_a_hot_select_loop_spawns_no_goroutine_or_thread() {
    let _g = exclusive();
    // Warm up: the workers and the timer thread exist from now on.
    go!(|| ())
        .join_timeout(WATCHDOG)
        .expect("warm-up goroutine");
    time::after(Duration::ZERO)
        .recv_timeout(WATCHDOG)
        .expect("warm-up timer");

    const ITERS: usize = 100_000;
    let h = go!(|| {
        let (tx, rx) = chan::bounded::<usize>(1);
        let goroutines = runtime::num_goroutines();
        let threads0 = threads();
        let (mut max_g, mut max_t) = (goroutines, threads0);
        for i in 0..ITERS {
            tx.try_send(i).unwrap();
            let got = select! {
                recv(rx) -> v => v.unwrap(),
                recv(time::after(HOUR)) -> _ => usize::MAX,
            };
            assert_eq!(got, i);
            if i % 5_000 == 0 {
                max_g = max_g.max(runtime::num_goroutines());
                max_t = max_t.max(threads());
            }
        }
        max_g = max_g.max(runtime::num_goroutines());
        max_t = max_t.max(threads());
        (goroutines, max_g, threads0, max_t)
    });
    let (g0, g1, t0, t1) = h.join_timeout(WATCHDOG).expect("loop finished");
    assert!(g1 <= g0, "goroutines grew from {g0} to {g1}");
    assert!(t1 <= t0 + 2, "threads grew from {t0} to {t1}");
}

// ----- tick -------------------------------------------------------------------------------------

#[test]
fn tick_delivers_increasing_times() {
    let _g = shared();
    let t = Instant::now();
    let rx = time::tick(ms(10));
    let mut prev = t;
    for k in 1..=3u32 {
        let v = rx.recv_timeout(WATCHDOG).expect("tick");
        assert!(v > prev, "tick {k} not after the previous one");
        assert!(v >= t + ms(10) * k, "tick {k} early");
        prev = v;
    }
    assert!(t.elapsed() >= ms(30));
    drop(rx); // stops the ticking
}

#[test]
fn tick_zero_is_never_ready() {
    let _g = shared();
    let rx = time::tick(Duration::ZERO);
    assert_eq!(
        rx.recv_timeout(ms(20)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(!rx.is_closed());
}

// ----- Ticker -----------------------------------------------------------------------------------

#[test]
fn ticker_ticks_with_increasing_times() {
    let _g = shared();
    let t = Instant::now();
    let ticker = Ticker::new(ms(10));
    let mut prev = t;
    for _ in 0..5 {
        let v = ticker.c().recv_timeout(WATCHDOG).expect("tick");
        assert!(v > prev);
        prev = v;
    }
    assert!(t.elapsed() >= ms(50));
    assert_eq!(ticker.c().capacity(), Some(1));
}

#[test]
fn ticker_slow_receiver_finds_one_buffered_tick_the_rest_dropped() {
    let _g = shared();
    let period = ms(10);
    let ticker = Ticker::new(period);
    let start = Instant::now();
    // The first tick lands in the buffer ...
    wait_until("a tick", WATCHDOG, || !ticker.c().is_empty());
    // ... and the receiver stays busy for six more periods (this sleep is the scenario, not
    // a synchronisation).
    time::sleep(period * 6);
    assert_eq!(ticker.c().len(), 1, "the buffer holds exactly one tick");
    let first = ticker.c().try_recv().expect("a buffered tick");
    assert!(first >= start, "the buffered tick is the old one");
    // At most one fresh tick can have come in since: the missed ones were dropped.
    let mut extra = 0;
    while ticker.c().try_recv().is_ok() {
        extra += 1;
    }
    assert!(extra <= 1, "{extra} extra ticks: missed ticks were queued");
    // Ticking goes on. A tick carries the clock the timer thread read before sending it, and
    // on a loaded machine that thread can be held up in between, so a tick stamped during the
    // sleep can arrive after the drain above: the next tick is only sure to be stamped after
    // `first`, and how it is timed is not asserted here.
    let next = ticker.c().recv_timeout(WATCHDOG).expect("ticking goes on");
    assert!(next >= first + period, "{:?}", next - first);
}

#[test]
fn ticker_stop_then_no_new_tick() {
    let _g = shared();
    let mut ticker = Ticker::new(ms(5));
    for _ in 0..2 {
        ticker.c().recv_timeout(WATCHDOG).expect("tick");
    }
    ticker.stop();
    // One tick may have been buffered before the stop.
    let _ = ticker.c().try_recv();
    assert_eq!(
        ticker.c().recv_timeout(ms(60)).unwrap_err(),
        RecvTimeoutError::Timeout,
        "tick after stop"
    );
    // Stopping again is harmless.
    ticker.stop();
}

#[test]
fn ticker_reset_restarts_with_the_new_period() {
    let _g = shared();
    let mut ticker = Ticker::new(HOUR);
    let t = Instant::now();
    ticker.reset(ms(10));
    let a = ticker.c().recv_timeout(WATCHDOG).expect("tick after reset");
    assert!(a >= t + ms(10), "first tick early");
    let b = ticker.c().recv_timeout(WATCHDOG).expect("second tick");
    // Ticks carry the time they were sent; the schedule is t + 10 ms, t + 20 ms, ...
    assert!(b > a && b >= t + ms(20), "period not 10 ms");

    // Back to a long period: at most the tick already buffered.
    ticker.reset(HOUR);
    let _ = ticker.c().try_recv();
    assert_eq!(
        ticker.c().recv_timeout(ms(50)).unwrap_err(),
        RecvTimeoutError::Timeout
    );

    // A stopped ticker restarts.
    ticker.stop();
    let t = Instant::now();
    ticker.reset(ms(5));
    let c = ticker
        .c()
        .recv_timeout(WATCHDOG)
        .expect("tick after stop+reset");
    assert!(c >= t + ms(5));
}

#[test]
#[should_panic(expected = "non-positive interval for NewTicker")]
fn ticker_zero_period_panics() {
    let _g = shared();
    let _ = Ticker::new(Duration::ZERO);
}

#[test]
#[should_panic(expected = "non-positive interval for Ticker.Reset")]
fn ticker_reset_zero_panics() {
    let _g = shared();
    let mut t = Ticker::new(HOUR);
    t.reset(Duration::ZERO);
}

#[test]
fn dropping_a_ticker_stops_it() {
    let _g = shared();
    let ticker = Ticker::new(ms(1));
    let rx = ticker.c().clone();
    rx.recv_timeout(WATCHDOG).expect("tick");
    drop(ticker);
    // At most one buffered and one in-flight tick; then nothing for 50 ms (goway also closes
    // the channel once the timer thread has let go of its sender).
    let mut late = 0;
    while late <= 2 {
        match rx.recv_timeout(ms(50)) {
            Ok(_) => late += 1,
            Err(_) => break,
        }
    }
    assert!(late <= 2, "still ticking after drop");
}

#[test]
fn dropping_tick_receivers_is_harmless() {
    let _g = shared();
    for _ in 0..100 {
        let rx = time::tick(Duration::from_micros(100));
        rx.recv_timeout(WATCHDOG).expect("tick");
    }
    // The timer thread is still serving.
    time::after(ms(1))
        .recv_timeout(WATCHDOG)
        .expect("timers still fire");
}

// ----- Timer ------------------------------------------------------------------------------------

#[test]
fn timer_zero_fires_at_once_and_only_once() {
    let _g = shared();
    let t = Instant::now();
    let timer = Timer::new(Duration::ZERO);
    timer.c().recv_timeout(WATCHDOG).expect("fires");
    assert!(t.elapsed() < ms(250));
    assert_eq!(
        timer.c().recv_timeout(ms(20)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
}

#[test]
fn timer_with_a_huge_duration_never_fires_and_stops() {
    let _g = shared();
    // 100 years: representable as an Instant, so it is a real (never-firing) timer.
    let mut timer = Timer::new(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(
        timer.c().recv_timeout(ms(20)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(timer.stop());
    assert!(!timer.stop());
}

// Was a bug: `Instant::now() + d` in src/time.rs panicked ("overflow when adding duration to
// instant") for durations such as Duration::MAX; Go's NewTimer(math.MaxInt64) simply never
// fires, as goway's own sleep and recv_timeout treat such durations.
#[test]
fn durations_too_large_for_an_instant_mean_never() {
    let _g = shared();
    let mut timer = Timer::new(Duration::MAX);
    assert!(timer.c().try_recv().is_err());
    assert!(timer.stop());
    assert!(!timer.reset(Duration::MAX));
    assert!(timer.stop());

    let (tx, rx) = chan::bounded::<u8>(1);
    tx.send(1).unwrap();
    let got = select! {
        recv(rx) -> v => v.unwrap(),
        recv(time::after(Duration::MAX)) -> _ => 0,
    };
    assert_eq!(got, 1);

    let mut ticker = Ticker::new(Duration::MAX);
    ticker.reset(Duration::MAX);
    ticker.stop();
    drop(time::tick(Duration::MAX));
    let mut f = time::after_func(Duration::MAX, || {});
    assert!(f.stop());
}

#[test]
fn timer_reset_while_active() {
    let _g = shared();
    // Earlier: fires at the new deadline.
    let mut timer = Timer::new(HOUR);
    let t = Instant::now();
    assert!(timer.reset(ms(20)), "was active");
    let fired = timer.c().recv_timeout(WATCHDOG).expect("fires after reset");
    assert!(fired >= t + ms(20));
    assert!(t.elapsed() < slack(ms(20)), "{:?}", t.elapsed());

    // Later: does not fire at the old deadline.
    let mut timer = Timer::new(ms(10));
    assert!(timer.reset(HOUR), "was active");
    assert_eq!(
        timer.c().recv_timeout(ms(60)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(timer.stop());
}

#[test]
fn timer_stop_and_reset_results() {
    let _g = shared();
    let mut timer = Timer::new(HOUR);
    assert!(timer.stop());
    assert!(!timer.stop());
    assert!(!timer.reset(ms(1)));
    timer.c().recv_timeout(WATCHDOG).expect("fires");
    assert!(!timer.stop(), "fired");
    assert!(!timer.reset(HOUR), "fired");
    assert!(timer.reset(HOUR), "active");
    assert!(timer.stop());
    assert!(format!("{timer:?}").contains("Timer"));
}

/// Makes the timer thread busy delivering a large batch at `deadline`: 50,000 `after` timers
/// due then. Keep the receivers alive until the end of the check.
fn big_batch_at(deadline: Instant) -> Vec<chan::Receiver<Instant>> {
    (0..50_000)
        .map(|_| time::after(deadline.saturating_duration_since(Instant::now())))
        .collect()
}

#[test]
fn timer_stop_false_means_the_value_is_already_in_the_channel() {
    let _g = shared();
    // Three rounds: the stop has to land while the timer thread is still sending the batch.
    for round in 0..3 {
        let deadline = Instant::now() + ms(250);
        let batch = big_batch_at(deadline);
        let mut timer = Timer::new(deadline.saturating_duration_since(Instant::now()));
        // The scenario: stop just after the deadline, while the batch is being delivered.
        time::sleep(deadline.saturating_duration_since(Instant::now()) + ms(1));
        if !timer.stop() {
            assert!(
                timer.c().try_recv().is_ok(),
                "round {round}: stop() said fired, but the channel was empty"
            );
            assert_eq!(
                timer.c().recv_timeout(ms(200)).unwrap_err(),
                RecvTimeoutError::Timeout,
                "round {round}: a stale value arrived after stop() and the drain"
            );
        }
        drop(batch);
    }
}

#[test]
fn ticker_no_tick_after_stop_and_drain_while_the_timer_thread_is_busy() {
    let _g = shared();
    for round in 0..3 {
        let deadline = Instant::now() + ms(250);
        let batch = big_batch_at(deadline);
        // At least 1 ms: on a loaded machine making the batch can take past its deadline,
        // and a zero interval is refused (Go's "non-positive interval for NewTicker").
        let period = deadline
            .saturating_duration_since(Instant::now())
            .max(ms(1));
        let mut ticker = Ticker::new(period);
        time::sleep(deadline.saturating_duration_since(Instant::now()) + ms(1));
        ticker.stop();
        let _ = ticker.c().try_recv(); // one buffered tick is allowed
        assert_eq!(
            ticker.c().recv_timeout(ms(200)).unwrap_err(),
            RecvTimeoutError::Timeout,
            "round {round}: a tick arrived after stop() and the drain"
        );
        drop(batch);
    }
}

#[test]
fn ten_thousand_timers_all_fire_in_deadline_order() {
    let _g = shared();
    const N: usize = 10_000;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut timers = Vec::with_capacity(N);
    for _ in 0..N {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let d = Duration::from_micros(r % 100_000);
        let deadline = Instant::now() + d;
        timers.push((deadline, time::after(d)));
    }
    let mut fired: Vec<(Instant, Instant)> = timers
        .into_iter()
        .map(|(deadline, rx)| (deadline, rx.recv_timeout(WATCHDOG).expect("timer fires")))
        .collect();
    for (deadline, at) in &fired {
        assert!(at >= deadline, "fired {:?} early", *deadline - *at);
    }
    // In deadline order, firing times go up, give or take the time it took to create them.
    fired.sort_by_key(|(deadline, _)| *deadline);
    let tolerance = ms(20);
    let mut latest = fired[0].1;
    let mut inversions = 0;
    for (_, at) in &fired {
        if *at + tolerance < latest {
            inversions += 1;
        }
        latest = latest.max(*at);
    }
    assert_eq!(inversions, 0, "timers fired out of deadline order");
}

// ----- after_func -------------------------------------------------------------------------------

#[test]
fn after_func_runs_in_a_goroutine() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<bool>(1);
    let t = Instant::now();
    let timer = time::after_func(ms(10), move || {
        let _ = tx.try_send(runtime::in_goroutine());
    });
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(true));
    assert!(t.elapsed() >= ms(10));
    // Its channel is never ready.
    assert!(matches!(timer.c().try_recv(), Err(TryRecvError::Empty)));
    assert!(!timer.c().is_closed());
}

#[test]
fn after_func_stop_reset() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<&str>(4);
    let tx2 = tx.clone();
    let mut never = time::after_func(HOUR, move || {
        let _ = tx2.try_send("WRONG");
    });
    assert!(never.stop(), "stop before firing");

    let mut f = time::after_func(ms(5), move || {
        let _ = tx.try_send("ran");
    });
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok("ran"));
    assert!(!f.stop(), "stop after it ran");
    assert!(!f.reset(ms(5)), "reset after it ran");
    assert_eq!(
        rx.recv_timeout(WATCHDOG),
        Ok("ran"),
        "runs again after reset"
    );
    // Reset while pending: true, and it runs once.
    assert!(!f.reset(HOUR));
    assert!(f.reset(ms(5)));
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok("ran"));
    assert_eq!(
        f.c().recv_timeout(ms(20)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "WRONG ran"
    );
}
