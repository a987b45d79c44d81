//! Go 1.19's own tests of channels, select, `sync`, `context` and `time`, ported to goway.
//!
//! This file is not a test binary (files in subdirectories of `tests/` are not compiled on their
//! own): `tests/gostd_one_worker.rs` and `tests/gostd_two_workers.rs` include it with
//! `#[path = "gostd/cases.rs"] mod cases;` and expand [`gostd_tests!`] into one `#[test]` per case,
//! after applying `runtime::Config::new().workers(N)`. Each port is a translation of the Go test's
//! logic (not its text); its comment names the Go file and test. Every case body runs as a
//! goroutine, as a Go test function does, joined by the test thread within [`WATCHDOG`], so a hang
//! fails the test instead of hanging CI; the tests of one binary run one at a time (Go runs its
//! tests sequentially unless they call `t.Parallel`), which also keeps the timing checks honest.
//! Every goroutine a case starts has ended when the case returns.
//!
//! # Ported
//!
//! `$GOROOT/test/chan`: doubleselect.go, fifo.go, goroutines.go, nonblock.go, select.go,
//! select2.go, select3.go, select4.go, select5.go (its generated cases, enumerated at run time),
//! select6.go, select7.go, select8.go, sendstmt.go, sieve1.go, sieve2.go, zerosize.go.
//!
//! `src/sync`: TestSemaphore (on `goway::sync::Semaphore`), TestMutex, TestMutexFairness,
//! TestParallelReaders, TestRWMutex, TestRLocker, TestCondSignal, TestCondSignalGenerations,
//! TestCondBroadcast, TestRace (cond_test.go), TestCondSignalStealing, TestOnce, TestOncePanic,
//! TestWaitGroup, TestWaitGroupMisuse, TestWaitGroupRace, TestWaitGroupAlign.
//!
//! `src/context`: TestBackground, TestTODO, TestWithCancel, TestParentFinishesChild,
//! TestChildFinishesFirst, TestDeadline, TestTimeout, TestCanceledTimeout, TestValues,
//! TestSimultaneousCancels, TestInterlockedCancels, TestLayersCancel, TestLayersTimeout,
//! TestCancelRemoves, TestWithCancelCanceledParent, TestDeadlineExceededSupportsTimeout.
//!
//! `src/time`: TestSleep, TestAfterFunc, TestAfterStress, TestAfter, TestAfterTick, TestAfterStop,
//! TestAfterQueuing, TestTimerStopStress, TestSleepZeroDeadlock, TestReset, TestOverflowSleep
//! (partly), TestZeroTimer, TestTimerModifiedEarlier, TestAdjustTimers, TestTicker, TestTeardown,
//! TestTick, TestNewTickerLtZeroDuration, TestTickerResetLtZeroDuration.
//!
//! # Scaled down (Go's figure → here), to keep each binary within ~20 s on two cores
//!
//! - TestRWMutex: `HammerRWMutex` with 1000 iterations as Go (non-short); the GOMAXPROCS values
//!   of its ten calls are ignored (the worker count is the binary's).
//! - TestTimerStopStress: AfterFunc 2 s / Sleep 1 s / main Sleep 3 s → 200 / 100 / 300 ms.
//! - TestZeroTimer: 1,000,000 iterations → 5,000.
//! - TestTicker: the fallback attempt of 8 ticks of 1 s → 8 ticks of 100 ms.
//! - TestAfterTick: Go's `-short` values (10 ticks of 10 ms, no upper bound).
//! - TestAfterFunc: each call's `Sleep(1 * Second)` → 250 ms.
//!
//! # Skipped, and why
//!
//! - test/chan/perm.go: compile-only (errors for misuse of channel directions).
//! - test/chan/powser1.go, powser2.go: not in the list asked for (power-series arithmetic on the
//!   same channel patterns as the sieves).
//! - select2.go's memory check (`runtime.ReadMemStats` after `runtime.GC`): no GC or MemStats; the
//!   200,000 selects themselves are ported.
//! - select5.go's assignments outside a select (`*fp(&x, 1) = <-fc(c, 2)`): left-to-right
//!   evaluation of an assignment is Go's language rule, not a channel one (Rust evaluates the right
//!   side first). Its receive forms (`x =`, `*f(&x) =`, `y :=`, interface, map) are one form in
//!   Rust (a pattern in the arm).
//! - TestMutexMisuse, TestRWMutex's misuse cases: unlocking an unlocked mutex cannot be written
//!   with guards. TestMutex's `SetMutexProfileFraction`: no mutex profile.
//! - TestCondCopy: Rust moves, never copies, a `Cond`. sync.Pool and sync.Map tests: goway has
//!   neither.
//! - TestAllocs (allocation counts), TestWithValueChecksKey (keys are types: no nil or
//!   non-comparable key), TestInvalidDerivedFail (no nil parent), TestCustomContextGoroutines and
//!   every `otherContext`/`myCtx` variant (goway has no user-implemented `Context`; where the
//!   wrapped context matters to the test, the plain context stands in, see each port),
//!   the `String()` checks (goway's `Debug` has another format), `parentCancelCtx` and the
//!   identity of `pc.children` entries (internal; their number is checked through
//!   `registered_children()`).
//! - TestSleep's `Interrupt()` (a test hook that signals the process to interrupt the sleep):
//!   no such hook; the goroutine still runs beside the sleep.
//! - TestOverflowSleep's goroutine in `Sleep(1<<63-1)`: it can never be ended, and every goroutine
//!   here must end; the `After(big)` and zero-duration halves are ported (Rust has no negative
//!   `Duration`: Go's negative durations are `Duration::ZERO`).
//! - TestIssue5745 (`(*Timer)(nil).Stop()`), TestZeroTimerResetPanics, TestZeroTimerStopPanics,
//!   TestTickerStopWithDirectInitialization (uninitialised timers cannot be written in Rust),
//!   TestOverflowPeriodRuntimeTimer (runtime internals), TestAfterStress's and
//!   TestSleepZeroDeadlock's `runtime.GC()` (no GC: the goroutine yields instead), GOMAXPROCS
//!   changes anywhere (the worker count is fixed per binary), the time package's formatting,
//!   zone and monotonic-clock tests (not goroutine or timer behaviour).
//!
//! # Where goway deliberately differs from Go (see also tests/golang.rs)
//!
//! - Send on a closed channel returns `Err(SendError(v))` instead of panicking (a select send arm
//!   on a closed channel is chosen with that `Err`): select3's `testPanic(always, ...)` cases
//!   check for the `Err`.
//! - Dropping every `Sender` (or `Receiver`) closes the channel. The ports keep a handle alive
//!   wherever Go relies on a channel that nobody closes, and the never-ending goroutines of Go's
//!   programs (sieve generators, select8's sender) end when their send returns `Err`.
//! - A nil channel is `chan::never()` / `Sender::never()`. Go's operations that block forever on
//!   one (select3: `nilch <- 7`, `<-nilch`, `select {}` and selects over nil channels only) cannot
//!   be ended, so the port runs their timed forms (`send_timeout`, `recv_timeout`,
//!   `Select::select_timeout`) and checks they stay blocked for their whole 100 ms timeout
//!   (longer than Go's 10 ms window) and end by timing out; select3's other "always blocks"
//!   cases run the untimed operation, check it is still blocked after Go's 10 ms, and then
//!   release it by completing the operation from outside (Go leaves it blocked).
//! - `v, ok := <-ch` on a closed channel is `Err(RecvError)` (no zero value).
//! - Go's keys for `context.WithValue` are values; goway's are types, so keys of one Go type with
//!   different values become different types.
//! - `context.CancelFunc` cancels when dropped: every cancel function Go discards with `_` is kept
//!   in a named binding here.
//! - Timeouts inside goroutines are rounded up to whole milliseconds (may's timer), so the 100 µs
//!   sleeps of TestMutexFairness last about 1 ms.

use std::any::Any;
use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use goway::chan::{self, Receiver, RecvError, RecvTimeoutError, SendTimeoutError, Sender};
use goway::context::{self, CancelFunc, Context, ContextError};
use goway::runtime::yield_now;
use goway::select::Select;
use goway::sync::{Cond, Mutex, Once, RwLock, Semaphore, WaitGroup};
use goway::time::{self, Ticker, Timer};
use goway::{JoinHandle, go, select};

/// Expands into one `#[test]` per case, each running it with `$workers` worker threads.
macro_rules! gostd_tests {
    ($workers:expr) => {
        gostd_tests!(@each $workers;
            // test/chan
            chan_doubleselect, chan_fifo, chan_goroutines, chan_nonblock, chan_select,
            chan_select2, chan_select3, chan_select4, chan_select5, chan_select6, chan_select7,
            chan_select8, chan_sendstmt, chan_sieve1, chan_sieve2, chan_zerosize,
            // src/sync
            sync_semaphore, sync_mutex, sync_mutex_fairness, sync_parallel_readers, sync_rwmutex,
            sync_rlocker, sync_cond_signal, sync_cond_signal_generations, sync_cond_broadcast,
            sync_cond_race, sync_cond_signal_stealing, sync_once, sync_once_panic,
            sync_waitgroup, sync_waitgroup_misuse, sync_waitgroup_race, sync_waitgroup_align,
            // src/context
            context_background, context_todo, context_with_cancel,
            context_parent_finishes_child, context_child_finishes_first, context_deadline,
            context_timeout, context_canceled_timeout, context_values,
            context_simultaneous_cancels, context_interlocked_cancels, context_layers_cancel,
            context_layers_timeout, context_cancel_removes, context_with_cancel_canceled_parent,
            context_deadline_exceeded_supports_timeout,
            // src/time
            time_sleep, time_after_func, time_after_stress, time_after, time_after_tick,
            time_after_stop, time_after_queuing, time_timer_stop_stress,
            time_sleep_zero_deadlock, time_reset, time_overflow_sleep, time_zero_timer,
            time_timer_modified_earlier, time_adjust_timers, time_ticker, time_teardown,
            time_tick, time_new_ticker_zero_duration, time_ticker_reset_zero_duration,
        );
    };
    (@each $workers:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                crate::cases::run_case($workers, stringify!($name), crate::cases::$name);
            }
        )*
    };
}

// ----- harness ------------------------------------------------------------------------------

/// Upper bound for a case (and for any join inside it); reaching it means a hang. Three times
/// the shared watchdog: it bounds a whole Go test (some run for seconds on one worker), not
/// one wait.
pub const WATCHDOG: Duration = crate::common::WATCHDOG.saturating_mul(3);
/// A case still running after this aborts the process (a hang out of reach of `WATCHDOG`).
const TEST_LIMIT: Duration = WATCHDOG.saturating_mul(3);
/// Stack of the goroutine that runs a case body (Go's stacks grow; goway's are fixed).
const MAIN_STACK: usize = 1 << 20;

/// Runs case `body` as a goroutine on a runtime with `workers` worker threads, one case at a time.
pub fn run_case(workers: usize, name: &'static str, body: fn()) {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let _ = goway::runtime::Config::new().workers(workers).apply();
    assert_eq!(
        may::config().get_workers(),
        workers,
        "this binary must run goroutines on exactly {workers} worker thread(s)"
    );
    let _watchdog = crate::common::Watchdog::with_limit(TEST_LIMIT);
    let h = goway::Builder::new()
        .name(name)
        .stack_size(MAIN_STACK)
        .spawn(body)
        .expect("spawn the case's goroutine");
    match h.join_timeout(WATCHDOG) {
        Ok(()) => {}
        Err(Ok(_)) => panic!("{name}: did not finish within {WATCHDOG:?} (hang)"),
        Err(Err(p)) => panic!("{name} failed: {}", p.message()),
    }
}

/// Joins a goroutine within `WATCHDOG`; its panic fails the case with the goroutine's message.
#[track_caller]
fn join<T>(h: JoinHandle<T>) -> T {
    match h.join_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(Ok(_)) => panic!("goroutine did not finish within {WATCHDOG:?}"),
        Err(Err(p)) => panic!("goroutine panicked: {}", p.message()),
    }
}

#[track_caller]
fn join_all<T>(hs: Vec<JoinHandle<T>>) -> Vec<T> {
    hs.into_iter().map(join).collect()
}

/// Waits for `wg` within `WATCHDOG`.
#[track_caller]
fn wait_group(wg: &WaitGroup, what: &str) {
    assert!(
        wg.wait_timeout(WATCHDOG),
        "{what}: goroutines still running after {WATCHDOG:?}"
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The message of a caught panic.
fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_owned()
    }
}

/// Runs `f`, catching a panic, without the panic hook's report (the cases run one at a time).
fn catch_quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let prev = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(prev);
    r.map_err(|p| panic_message(p.as_ref()))
}

/// Go's `rand` for the randomised tests: xorshift64*, seeded from the clock; failures print the
/// seed.
struct Rng(u64);

impl Rng {
    fn new() -> (Rng, u64) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Go's `Intn(n)`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

// ===== test/chan ============================================================================

/// test/chan/doubleselect.go: one sender selects over four unbuffered channels, four muxes
/// forward into one channel; no value may arrive twice. Go runs it with GOMAXPROCS(2) and
/// `-n 100000`; the worker count here is the binary's. Added: every value arrives.
pub fn chan_doubleselect() {
    const ITERATIONS: i32 = 100_000;
    let (c1_tx, c1) = chan::bounded::<i32>(0);
    let (c2_tx, c2) = chan::bounded::<i32>(0);
    let (c3_tx, c3) = chan::bounded::<i32>(0);
    let (c4_tx, c4) = chan::bounded::<i32>(0);
    let (done_tx, done) = chan::bounded::<bool>(0);
    let (cmux_tx, cmux) = chan::bounded::<i32>(0);
    let mut hs = Vec::new();
    hs.push(go!(move || {
        for i in 0..ITERATIONS {
            select! {
                send(c1_tx, i) -> r => r.expect("c1 open"),
                send(c2_tx, i) -> r => r.expect("c2 open"),
                send(c3_tx, i) -> r => r.expect("c3 open"),
                send(c4_tx, i) -> r => r.expect("c4 open"),
            }
        }
        // Go: defer close(c1) ... close(c4)
        c1_tx.close();
        c2_tx.close();
        c3_tx.close();
        c4_tx.close();
    }));
    for input in [c1, c2, c3, c4] {
        let (out, done) = (cmux_tx.clone(), done_tx.clone());
        hs.push(go!(move || {
            for v in &input {
                out.send(v).expect("cmux open");
            }
            done.send(true).expect("done open");
        }));
    }
    hs.push(go!(move || {
        for _ in 0..4 {
            done.recv().expect("a mux finished");
        }
        cmux_tx.close();
    }));
    // recver
    let mut seen = HashSet::new();
    for v in &cmux {
        assert!(seen.insert(v), "got duplicate value: {v}");
    }
    join_all(hs);
    drop(done_tx);
    assert_eq!(seen.len(), ITERATIONS as usize, "values lost");
}

/// test/chan/fifo.go: AsynchFifo and SynchFifo (a chain of goroutines, each receiving the next
/// value of one unbuffered channel only after its predecessor did, must get them in order).
pub fn chan_fifo() {
    const N: i32 = 10;
    // AsynchFifo
    let (tx, rx) = chan::bounded::<i32>(N as usize);
    for i in 0..N {
        tx.send(i).unwrap();
    }
    for i in 0..N {
        assert_eq!(rx.recv(), Ok(i), "bad receive");
    }
    // SynchFifo
    let (ch_tx, ch) = chan::bounded::<i32>(0);
    let (start, mut input) = chan::bounded::<i32>(0);
    let mut hs = Vec::new();
    for i in 0..N {
        let (out_tx, out) = chan::bounded::<i32>(0);
        let (ch, inp) = (ch.clone(), input);
        hs.push(go!(move || {
            inp.recv().expect("in");
            assert_eq!(ch.recv(), Ok(i), "Chain {i}: value out of order");
            out_tx.send(1).expect("out");
        }));
        input = out;
    }
    drop(ch); // only the chain receives (a failed chain then fails main's sends, not hangs them)
    start.send(0).unwrap();
    for i in 0..N {
        if ch_tx.send(i).is_err() {
            break;
        }
    }
    let last = input.recv();
    join_all(hs);
    assert_eq!(last, Ok(1));
}

/// test/chan/goroutines.go: a chain of 10,000 goroutines, each passing one value from its right
/// to its left channel.
pub fn chan_goroutines() {
    const N: usize = 10_000;
    let (leftmost_tx, leftmost) = chan::bounded::<i32>(0);
    let mut left = leftmost_tx;
    let mut hs = Vec::with_capacity(N + 1);
    for _ in 0..N {
        let (right_tx, right) = chan::bounded::<i32>(0);
        let l = left;
        hs.push(go!(move || {
            let v = right.recv().expect("right");
            l.send(v).expect("left");
        }));
        left = right_tx;
    }
    hs.push(go!(move || left.send(1).expect("rightmost")));
    assert_eq!(leftmost.recv(), Ok(1));
    join_all(hs);
}

/// test/chan/nonblock.go, for one element type: non-blocking receive from an empty channel, then
/// non-blocking send and receive polled (with Go's `sleep()` backoff) until a goroutine on the
/// other side makes them ready.
#[allow(clippy::too_many_arguments)]
fn nonblock_type<T: PartialEq + Debug + Clone + Send + 'static>(
    name: &str,
    buffer: usize,
    to_receiver: T,
    from_sender: T,
    sync_tx: &Sender<bool>,
    sync: &Receiver<bool>,
    sleep: &dyn Fn(),
) {
    const MAX_TRIES: u32 = 10_000; // Go: up to 100 ms per test
    let (c_tx, c) = chan::bounded::<T>(buffer);
    select! {
        recv(c) -> _ => panic!("blocked {name}sender"),
        default => {}
    }

    let (rx, strobe, want) = (c.clone(), sync_tx.clone(), to_receiver.clone());
    let h = go!(move || {
        assert_eq!(rx.recv().expect("open"), want, "receiver value");
        strobe.send(true).unwrap();
    });
    let mut tries = 0;
    loop {
        let sent = select! {
            send(c_tx, to_receiver.clone()) -> r => { r.expect("open"); true },
            default => false,
        };
        if sent {
            break;
        }
        tries += 1;
        assert!(tries <= MAX_TRIES, "{name}receiver buffer={buffer}");
        sleep();
    }
    sync.recv().unwrap();
    join(h);

    let (tx, strobe, v) = (c_tx.clone(), sync_tx.clone(), from_sender.clone());
    let h = go!(move || {
        tx.send(v).unwrap();
        strobe.send(true).unwrap();
    });
    if buffer > 0 {
        sync.recv().unwrap();
    }
    tries = 0;
    let got = loop {
        let got = select! {
            recv(c) -> v => Some(v.expect("open")),
            default => None,
        };
        if let Some(v) = got {
            break v;
        }
        tries += 1;
        assert!(tries <= MAX_TRIES, "{name}sender buffer={buffer}");
        sleep();
    };
    assert_eq!(got, from_sender, "{name}sender value");
    if buffer == 0 {
        sync.recv().unwrap();
    }
    join(h);
}

/// test/chan/nonblock.go: int32, int64, bool and string, unbuffered and with a buffer of one.
pub fn chan_nonblock() {
    let ticker = Ticker::new(Duration::from_micros(10)); // Go: time.Tick(10 * 1000)
    let sleep = || {
        ticker.c().recv().unwrap();
        ticker.c().recv().unwrap();
        yield_now();
        yield_now();
        yield_now();
    };
    let (sync_tx, sync) = chan::bounded::<bool>(0);
    for buffer in 0..2 {
        nonblock_type("i32", buffer, 123i32, 234i32, &sync_tx, &sync, &sleep);
        nonblock_type("i64", buffer, 123456i64, 234567i64, &sync_tx, &sync, &sleep);
        nonblock_type("b", buffer, true, true, &sync_tx, &sync, &sleep);
        nonblock_type(
            "s",
            buffer,
            "hello".to_string(),
            "hello again".to_string(),
            &sync_tx,
            &sync,
            &sleep,
        );
    }
}

/// test/chan/select.go's `Send`: a select with two send cases and a default, each send case
/// disabled (set to the nil channel) once used; every value expression is evaluated on each
/// entry, nil channel or not.
fn select_send(mut a: Sender<u32>, mut b: Sender<u32>, counter: &mut u32, shift: &mut u32) -> i32 {
    fn get_value(counter: &mut u32, shift: u32) -> u32 {
        *counter += 1;
        1 << shift
    }
    let mut i = 0;
    loop {
        select! {
            send(a, get_value(counter, *shift)) -> r => {
                r.expect("a open");
                i += 1;
                a = Sender::never();
            },
            send(b, get_value(counter, *shift)) -> r => {
                r.expect("b open");
                i += 1;
                b = Sender::never();
            },
            default => break,
        }
        *shift += 1;
    }
    i
}

/// test/chan/select.go.
pub fn chan_select() {
    let (mut counter, mut shift) = (0u32, 0u32);
    let (a_tx, a) = chan::bounded::<u32>(1);
    let (b_tx, b) = chan::bounded::<u32>(1);
    let v = select_send(a_tx.clone(), b_tx.clone(), &mut counter, &mut shift);
    assert_eq!(v, 2, "Send returned {v} != 2");
    let (av, bv) = (a.recv().unwrap(), b.recv().unwrap());
    assert_eq!(av | bv, 3, "bad values {av} {bv}");
    let v = select_send(a_tx.clone(), Sender::never(), &mut counter, &mut shift);
    assert_eq!(v, 1, "Send returned {v} != 1");
    assert_eq!(counter, 10, "counter is {counter} != 10");
}

/// test/chan/select2.go: 100,000 selects receiving from a sender's channel beside a dummy that
/// never fires, twice (Go's memory comparison between the rounds is skipped).
pub fn chan_select2() {
    const N: usize = 100_000;
    let (c_tx, c) = chan::bounded::<i32>(0);
    let (_dummy_tx, dummy) = chan::bounded::<i32>(0);
    for _round in 0..2 {
        let tx = c_tx.clone();
        let h = go!(move || {
            for _ in 0..N {
                tx.send(1).unwrap();
            }
        });
        for _ in 0..N {
            select! {
                recv(c) -> v => { v.expect("c open"); },
                recv(dummy) -> _ => panic!("dummy"),
            }
        }
        join(h);
    }
}

// test/chan/select3.go ------------------------------------------------------------------------

/// Go's signal: the function blocked.
const ALWAYS: &str = "function did not";
/// Go's signal: the function returned.
const NEVER: &str = "function did";
/// Go's window: a function still running after 10 ms "always blocks".
const BLOCK_WINDOW: Duration = Duration::from_millis(10);
/// Go waits 10 s for a function that must not block.
const NO_BLOCK_LIMIT: Duration = Duration::from_secs(10);
/// How long the timed stand-ins for Go's forever-blocking nil-channel operations wait.
const NIL_HOLD: Duration = Duration::from_millis(100);

/// Go's `testBlock(never, f)`: `f` returns (within 10 s).
fn test_block_never(what: &str, f: impl FnOnce() + Send + 'static) {
    let (c_tx, c) = chan::bounded::<&'static str>(1);
    let h = go!(move || {
        f();
        let _ = c_tx.send(NEVER);
    });
    let got = select! {
        recv(c) -> v => v.ok(),
        recv(time::after(NO_BLOCK_LIMIT)) -> _ => Some(ALWAYS),
    };
    match got {
        Some(NEVER) => join(h),
        None => {
            join(h); // f panicked: report its message
            unreachable!("{what}: f ended without signalling");
        }
        Some(s) => panic!("{what}: {s} block (expected: {NEVER})"),
    }
}

/// Go's `testBlock(always, f)`: `f` is still running after Go's 10 ms window. Go leaves it
/// blocked; here `release` then ends its wait (from outside), and `f`'s result is returned.
fn test_block_always<R: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
    release: impl FnOnce(),
) -> R {
    let (c_tx, c) = chan::bounded::<()>(1);
    let h = go!(move || {
        let r = f();
        let _ = c_tx.send(());
        r
    });
    let blocked = select! {
        recv(c) -> _ => false,
        recv(time::after(BLOCK_WINDOW)) -> _ => true,
    };
    if !blocked {
        join(h); // a panic in f is the better report
        panic!("{what}: {NEVER} block (expected: {ALWAYS})");
    }
    release();
    join(h)
}

/// Go's `testBlock(always, f)` for the timed stand-ins of forever-blocking operations: `f` runs
/// in a goroutine and must stay blocked for its whole timeout (`NIL_HOLD`, longer than Go's
/// window), then end by timing out (`timed_out`). Measured inside `f`, so a descheduled test
/// goroutine cannot make a blocked `f` look early.
fn test_block_timed<R: Debug + Send + 'static>(
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
    timed_out: impl FnOnce(&R) -> bool,
) {
    let h = go!(move || {
        let t = Instant::now();
        let r = f();
        (r, t.elapsed())
    });
    let (r, took) = join(h);
    assert!(
        took >= NIL_HOLD,
        "{what}: {NEVER} block (returned {r:?} after {took:?} < {NIL_HOLD:?})"
    );
    assert!(timed_out(&r), "{what}: ended with {r:?}, not a timeout");
}

/// test/chan/select3.go: which channel operations and selects block, and which panic (here:
/// return `Err`, deviation 1).
pub fn chan_select3() {
    const ASYNC: usize = 1;
    let (closed_tx, closedch) = chan::bounded::<i32>(0);
    closed_tx.close();

    // sending/receiving from a nil channel blocks (timed stand-ins: the module doc)
    test_block_timed(
        "nil send",
        || Sender::<i32>::never().send_timeout(7, NIL_HOLD),
        |r| matches!(r, Err(SendTimeoutError::Timeout(7))),
    );
    test_block_timed(
        "nil recv",
        || chan::never::<i32>().recv_timeout(NIL_HOLD),
        |r| *r == Err(RecvTimeoutError::Timeout),
    );
    // ... and untimed, inside a select whose only other case releases it (added).
    let (release_tx, release) = chan::bounded::<()>(0);
    let r = test_block_always(
        "nil recv in a select (untimed)",
        move || {
            let nil = chan::never::<i32>();
            let nil_tx = Sender::<i32>::never();
            select! {
                recv(nil) -> _ => "nil recv",
                send(nil_tx, 7) -> _ => "nil send",
                recv(release) -> _ => "released",
            }
        },
        || release_tx.send(()).unwrap(),
    );
    assert_eq!(r, "released");

    // sending/receiving from a nil channel inside a select is never selected
    let nil = chan::never::<i32>();
    let nil_tx = Sender::<i32>::never();
    select! {
        send(nil_tx, 7) -> _ => panic!("control flow shouldn't reach here"),
        default => {}
    }
    select! {
        recv(nil) -> _ => panic!("control flow shouldn't reach here"),
        default => {}
    }

    // sending to an async channel with free buffer space never blocks
    test_block_never("send with free buffer space", || {
        let (ch, _keep) = chan::bounded::<i32>(ASYNC);
        ch.send(7).unwrap();
    });

    // receiving from a closed channel never blocks
    let c = closedch.clone();
    test_block_never("recv from a closed channel", move || {
        for _ in 0..10 {
            // Go: the zero value, and then (0, false)
            assert_eq!(c.recv(), Err(RecvError), "expected closed");
            assert_eq!(
                c.recv(),
                Err(RecvError),
                "expected 0, false from closed channel"
            );
        }
    });

    // sending to a closed channel panics (deviation 1: returns the value in Err)
    assert_eq!(closed_tx.send(7).unwrap_err().0, 7);

    // receiving from a non-ready channel always blocks
    let (tx, rx) = chan::bounded::<i32>(0);
    let r = test_block_always(
        "recv from a non-ready channel",
        move || rx.recv(),
        || tx.send(1).unwrap(),
    );
    assert_eq!(r, Ok(1));

    // empty selects always block (timed stand-in)
    test_block_timed(
        "empty select",
        || Select::new().select_timeout(NIL_HOLD),
        Option::is_none,
    );

    // selects with only nil channels always block (timed stand-ins)
    for (what, recv_case, send_case) in [
        ("select over a nil recv", true, false),
        ("select over a nil send", false, true),
        ("select over a nil recv and a nil send", true, true),
    ] {
        test_block_timed(
            what,
            move || {
                let nil = chan::never::<i32>();
                let nil_tx = Sender::<i32>::never();
                let mut sel = Select::new();
                if recv_case {
                    sel.recv(&nil);
                }
                if send_case {
                    sel.send(&nil_tx, 7);
                }
                sel.select_timeout(NIL_HOLD)
            },
            Option::is_none,
        );
    }

    // selects with non-ready non-nil channels always block
    let (tx, rx) = chan::bounded::<i32>(0);
    let r = test_block_always(
        "select over a non-ready channel",
        move || {
            select! {
                recv(rx) -> v => v,
            }
        },
        || tx.send(1).unwrap(),
    );
    assert_eq!(r, Ok(1));

    // selects with default cases don't block
    test_block_never("select with only default", || {
        select! {
            default => {}
        }
    });
    test_block_never("select with a nil recv and default", || {
        let nil = chan::never::<i32>();
        select! {
            recv(nil) -> _ => panic!("control flow shouldn't reach here"),
            default => {}
        }
    });
    test_block_never("select with a nil send and default", || {
        let nil_tx = Sender::<i32>::never();
        select! {
            send(nil_tx, 7) -> _ => panic!("control flow shouldn't reach here"),
            default => {}
        }
    });

    // selects with ready channels don't block
    test_block_never("select send with free buffer space", || {
        let (ch, _keep) = chan::bounded::<i32>(ASYNC);
        select! {
            send(ch, 7) -> r => r.unwrap(),
            default => panic!("control flow shouldn't reach here"),
        }
    });
    test_block_never("select recv with a buffered value", || {
        let (ch_tx, ch) = chan::bounded::<i32>(ASYNC);
        ch_tx.send(7).unwrap();
        select! {
            recv(ch) -> v => assert_eq!(v, Ok(7)),
            default => panic!("control flow shouldn't reach here"),
        }
    });

    // selects with closed channels behave like ordinary operations
    let c = closedch.clone();
    test_block_never("select recv from a closed channel", move || {
        select! {
            recv(c) -> _ => {}
        }
    });
    let c = closedch.clone();
    test_block_never("select recv x from a closed channel", move || {
        select! {
            recv(c) -> x => { let _ = x; }
        }
    });
    let c = closedch.clone();
    test_block_never("select recv x, ok from a closed channel", move || {
        select! {
            recv(c) -> r => assert_eq!(r, Err(RecvError)),
        }
    });
    // a select send to a closed channel panics (deviation 1: the arm runs with Err)
    select! {
        send(closed_tx, 7) -> r => assert_eq!(r.unwrap_err().0, 7),
    }

    // select should not get confused if it sees itself: blocked, then released from outside by
    // a receive (its send case commits) and, a second time, by a send (its receive case).
    for release_by_recv in [true, false] {
        let (tx, rx) = chan::bounded::<i32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let r = test_block_always(
            "select over both ends of one channel",
            move || {
                select! {
                    send(tx2, 1) -> r => { r.unwrap(); "send" },
                    recv(rx2) -> v => { assert_eq!(v, Ok(2)); "recv" },
                }
            },
            || {
                if release_by_recv {
                    assert_eq!(rx.recv(), Ok(1));
                } else {
                    tx.send(2).unwrap();
                }
            },
        );
        assert_eq!(r, if release_by_recv { "send" } else { "recv" });
    }
    drop(closedch);
}

/// test/chan/select4.go: the left-hand side of a receive case that is not chosen is not
/// evaluated (in Rust: an arm's body runs only for the chosen arm).
pub fn chan_select4() {
    fn f<'a>(called: &Cell<bool>, slot: &'a mut i32) -> &'a mut i32 {
        called.set(true); // Go: println("BUG: called f")
        slot
    }
    let called = Cell::new(false);
    let mut x_a = 0;
    let mut other = 0;
    let (c_tx, c) = chan::bounded::<i32>(1);
    let (_c1_tx, c1) = chan::bounded::<i32>(0);
    c_tx.send(42).unwrap();
    select! {
        recv(c1) -> v => *f(&called, &mut other) = v.unwrap(),
        recv(c) -> v => {
            x_a = v.unwrap();
            assert_eq!(x_a, 42, "BUG: {x_a}");
        },
    }
    assert!(!called.get(), "BUG: called f");
    assert_eq!((x_a, other), (42, 0));
}

// test/chan/select5.go --------------------------------------------------------------------------

/// select5.go's `checkorder`: the argument sequence must strictly increase.
fn checkorder(order: &Cell<i32>, o: i32) {
    assert!(o > order.get(), "invalid order {o} after {}", order.get());
    order.set(o);
}

fn fc<'a, T>(order: &Cell<i32>, c: &'a Receiver<T>, o: i32) -> &'a Receiver<T> {
    checkorder(order, o);
    c
}

fn fcs<'a, T>(order: &Cell<i32>, c: &'a Sender<T>, o: i32) -> &'a Sender<T> {
    checkorder(order, o);
    c
}

fn fnv(order: &Cell<i32>, n: i32, o: i32) -> i32 {
    checkorder(order, o);
    n
}

/// select5.go's tested case: a receive from, or a send of `n` to, `c`.
fn add_tested<'a>(
    sel: &mut Select<'a>,
    recv: bool,
    c: &'a Receiver<i32>,
    c_tx: &'a Sender<i32>,
    n: i32,
) -> usize {
    if recv { sel.recv(c) } else { sel.send(c_tx, n) }
}

/// test/chan/select5.go: the generator's `recv`, `send` and `nonblock` templates, every
/// combination of its optional cases (a default, a dummy send and receive on a channel nobody
/// else uses, a send and receive on a nil channel), built at run time with `Select`; and its
/// `recvOrder`/`sendOrder` templates with `select!`, checking that channel operands and send
/// values are evaluated once, in source order, before any case body.
pub fn chan_select5() {
    let (c_tx, c) = chan::bounded::<i32>(1);
    let (dummy_tx, dummy) = chan::bounded::<i32>(0);
    let nil_tx = Sender::<i32>::never();
    let nil = chan::never::<i32>();
    let mut n = 1;

    // recv: plain receive
    c_tx.send(n).unwrap();
    assert_eq!(c.recv(), Ok(n));
    n += 1;
    // recv and send: every combination; bit 0 default, 1 dummy send, 2 dummy recv, 3 nil send,
    // 4 nil recv, 5 the tested case added last instead of first.
    for template in ["recv", "send"] {
        for shape in 0u32..64 {
            if template == "recv" {
                c_tx.send(n).unwrap();
            }
            let mut sel = Select::new();
            let recv = template == "recv";
            let mut tested = None;
            if shape & 32 == 0 {
                tested = Some(add_tested(&mut sel, recv, &c, &c_tx, n));
            }
            if shape & 2 != 0 {
                sel.send(&dummy_tx, 1);
            }
            if shape & 4 != 0 {
                sel.recv(&dummy);
            }
            if shape & 8 != 0 {
                sel.send(&nil_tx, 1);
            }
            if shape & 16 != 0 {
                sel.recv(&nil);
            }
            if shape & 32 != 0 {
                tested = Some(add_tested(&mut sel, recv, &c, &c_tx, n));
            }
            let tested = tested.unwrap();
            let i = if shape & 1 != 0 {
                sel.try_select()
                    .unwrap_or_else(|| panic!("{template} {shape:#b}: nonblock"))
            } else {
                sel.select()
            };
            assert_eq!(
                i, tested,
                "{template} {shape:#b}: a dummy or nil case was chosen"
            );
            let x = if template == "recv" {
                sel.recv_result::<i32>(i).expect("chosen").expect("c open")
            } else {
                sel.send_result::<i32>(i).expect("chosen").expect("c open");
                drop(sel);
                c.recv().unwrap()
            };
            assert_eq!(x, n, "{template} {shape:#b}: have {x} want {n}");
            n += 1;
        }
    }
    // nonblock: every combination of dummy and nil cases, with a default: the default runs.
    for shape in 0u32..16 {
        let mut sel = Select::new();
        if shape & 1 != 0 {
            sel.send(&dummy_tx, 1);
        }
        if shape & 2 != 0 {
            sel.send(&nil_tx, 1);
        }
        if shape & 4 != 0 {
            sel.recv(&dummy);
        }
        if shape & 8 != 0 {
            sel.recv(&nil);
        }
        assert_eq!(sel.try_select(), None, "nonblock {shape:#b}");
    }

    // recvOrder and sendOrder with select!: operands in source order, then the chosen body
    // (Go's `*fp(&x, 100) = ...` runs after the select commits).
    let order = Cell::new(0);
    for default_at in ["none", "first", "last"] {
        // recvOrder
        order.set(0);
        c_tx.send(n).unwrap();
        let x = match default_at {
            "none" => select! {
                recv(fc(&order, &c, 1)) -> v => { checkorder(&order, 100); v.unwrap() },
                send(fcs(&order, &dummy_tx, 2), fnv(&order, 1, 3)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 4)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 5), fnv(&order, 1, 6)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 7)) -> _ => panic!("nilch recv"),
            },
            "first" => select! {
                default => panic!("nonblock"),
                recv(fc(&order, &c, 1)) -> v => { checkorder(&order, 100); v.unwrap() },
                send(fcs(&order, &dummy_tx, 2), fnv(&order, 1, 3)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 4)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 5), fnv(&order, 1, 6)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 7)) -> _ => panic!("nilch recv"),
            },
            _ => select! {
                recv(fc(&order, &c, 1)) -> v => { checkorder(&order, 100); v.unwrap() },
                send(fcs(&order, &dummy_tx, 2), fnv(&order, 1, 3)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 4)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 5), fnv(&order, 1, 6)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 7)) -> _ => panic!("nilch recv"),
                default => panic!("nonblock"),
            },
        };
        assert_eq!(x, n, "recvOrder ({default_at} default): have {x} want {n}");
        n += 1;
        // sendOrder
        order.set(0);
        match default_at {
            "none" => select! {
                send(fcs(&order, &c_tx, 1), fnv(&order, n, 2)) -> r => r.unwrap(),
                send(fcs(&order, &dummy_tx, 3), fnv(&order, 1, 4)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 5)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 6), fnv(&order, 1, 7)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 8)) -> _ => panic!("nilch recv"),
            },
            "first" => select! {
                default => panic!("nonblock"),
                send(fcs(&order, &c_tx, 1), fnv(&order, n, 2)) -> r => r.unwrap(),
                send(fcs(&order, &dummy_tx, 3), fnv(&order, 1, 4)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 5)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 6), fnv(&order, 1, 7)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 8)) -> _ => panic!("nilch recv"),
            },
            _ => select! {
                send(fcs(&order, &c_tx, 1), fnv(&order, n, 2)) -> r => r.unwrap(),
                send(fcs(&order, &dummy_tx, 3), fnv(&order, 1, 4)) -> _ => panic!("dummy send"),
                recv(fc(&order, &dummy, 5)) -> _ => panic!("dummy receive"),
                send(fcs(&order, &nil_tx, 6), fnv(&order, 1, 7)) -> _ => panic!("nilch send"),
                recv(fc(&order, &nil, 8)) -> _ => panic!("nilch recv"),
                default => panic!("nonblock"),
            },
        }
        let x = c.recv().unwrap();
        assert_eq!(x, n, "sendOrder ({default_at} default): have {x} want {n}");
        n += 1;
    }
}

/// test/chan/select6.go: a select that was woken by one channel must not leave a stale waiter
/// on the other, which would swallow a later send.
pub fn chan_select6() {
    let (c1_tx, c1) = chan::bounded::<bool>(0);
    let (c2_tx, c2) = chan::bounded::<bool>(0);
    let (c3_tx, c3) = chan::bounded::<bool>(0);
    let r = c1.clone();
    let h1 = go!(move || {
        r.recv().expect("c1");
    });
    let r = c1.clone();
    let h2 = go!(move || {
        select! {
            recv(r) -> _ => panic!("dummy"),
            recv(c2) -> _ => c3_tx.send(true).expect("c3"),
        }
        r.recv().expect("c1");
    });
    let h3 = go!(move || c2_tx.send(true).expect("c2"));
    c3.recv().unwrap();
    c1_tx.send(true).unwrap();
    c1_tx.send(true).unwrap();
    join_all(vec![h1, h2, h3]);
}

/// test/chan/select7.go: every pairing of a plain, a one-case-select and a two-case-select
/// receiver with a plain, one-case-select and two-case-select sender.
pub fn chan_select7() {
    fn recv1(c: Receiver<i32>) {
        c.recv().expect("c");
    }
    fn recv2(c: Receiver<i32>) {
        select! {
            recv(c) -> v => { v.expect("c"); },
        }
    }
    fn recv3(c: Receiver<i32>) {
        let (_c2_tx, c2) = chan::bounded::<i32>(0);
        select! {
            recv(c) -> v => { v.expect("c"); },
            recv(c2) -> _ => panic!("c2"),
        }
    }
    fn send1(recv: fn(Receiver<i32>)) {
        let (c_tx, c) = chan::bounded::<i32>(0);
        let h = go!(move || recv(c));
        yield_now();
        c_tx.send(1).unwrap();
        join(h);
    }
    fn send2(recv: fn(Receiver<i32>)) {
        let (c_tx, c) = chan::bounded::<i32>(0);
        let h = go!(move || recv(c));
        yield_now();
        select! {
            send(c_tx, 1) -> r => r.unwrap(),
        }
        join(h);
    }
    fn send3(recv: fn(Receiver<i32>)) {
        let (c_tx, c) = chan::bounded::<i32>(0);
        let h = go!(move || recv(c));
        yield_now();
        let (c2_tx, _c2) = chan::bounded::<i32>(0);
        select! {
            send(c_tx, 1) -> r => r.unwrap(),
            send(c2_tx, 1) -> _ => panic!("c2"),
        }
        join(h);
    }
    for recv in [recv1 as fn(Receiver<i32>), recv2, recv3] {
        send1(recv);
        send2(recv);
        send3(recv);
    }
}

/// test/chan/select8.go: `break` inside select arms (and the arms' selection) with a goroutine
/// sending forever (here: until the channel is closed).
pub fn chan_select8() {
    let (ch_tx, ch) = chan::bounded::<i32>(0);
    let t = ch_tx.clone();
    let h = go!(move || while t.send(5).is_ok() {});
    #[allow(clippy::never_loop)]
    loop {
        select! {
            recv(ch) -> v => { assert_eq!(v, Ok(5)); break; },
        }
    }
    #[allow(clippy::never_loop)]
    loop {
        select! {
            default => break,
        }
    }
    #[allow(clippy::never_loop)]
    loop {
        select! {
            recv(ch) -> v => { assert_eq!(v, Ok(5)); break; },
            default => break,
        }
    }
    #[allow(clippy::never_loop)]
    loop {
        select! {
            recv(ch) -> v => { assert_eq!(v, Ok(5)); break; },
            send(ch_tx, 10) -> _ => panic!("unreachable"),
            default => break,
        }
    }
    ch_tx.close();
    join(h);
}

/// test/chan/sendstmt.go: a send case whose channel is itself received from a channel
/// (`case <-cc <- 2`), and a send of a boolean expression.
pub fn chan_sendstmt() {
    // chanchan
    let (cc_tx, cc) = chan::bounded::<Sender<i32>>(1);
    let (c_tx, c) = chan::bounded::<i32>(1);
    cc_tx.send(c_tx).unwrap();
    select! {
        send(cc.recv().unwrap(), 2) -> r => r.unwrap(),
        default => panic!("nonblock"),
    }
    assert_eq!(c.recv(), Ok(2), "bad receive");
    // sendprec
    let (c_tx, c) = chan::bounded::<bool>(1);
    c_tx.send(std::hint::black_box(false) || std::hint::black_box(true))
        .unwrap();
    assert_eq!(c.recv(), Ok(true), "sent false");
}

const PRIMES: [i32; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

/// test/chan/sieve1.go: the concurrent prime sieve. Go's goroutines run forever; here each ends
/// when its send fails because its consumer is gone, from the main receiver down to Generate.
pub fn chan_sieve1() {
    fn generate(ch: Sender<i32>) {
        let mut i = 2;
        while ch.send(i).is_ok() {
            i += 1;
        }
    }
    fn filter(input: Receiver<i32>, out: Sender<i32>, prime: i32) {
        for i in &input {
            if i % prime != 0 && out.send(i).is_err() {
                return;
            }
        }
    }
    fn sieve(primes: Sender<i32>, wg: WaitGroup) {
        let (ch_tx, mut ch) = chan::bounded::<i32>(0);
        wg.go(move || generate(ch_tx));
        loop {
            let Ok(prime) = ch.recv() else { return };
            if primes.send(prime).is_err() {
                return;
            }
            let (ch1_tx, ch1) = chan::bounded::<i32>(0);
            let input = std::mem::replace(&mut ch, ch1);
            wg.go(move || filter(input, ch1_tx, prime));
        }
    }
    let wg = WaitGroup::new();
    let (primes_tx, primes) = chan::bounded::<i32>(0);
    let w = wg.clone();
    wg.go(move || sieve(primes_tx, w));
    for want in PRIMES {
        let x = primes.recv().expect("primes open");
        assert_eq!(x, want, "{x} != {want}");
    }
    drop(primes);
    wait_group(&wg, "sieve1");
}

/// test/chan/sieve2.go: the prime sieve with a heap-merged stream of composites, a feedback loop
/// of primes through an unboundedly buffering proxy (Go's growing ring; a `VecDeque` here) whose
/// output case is disabled with a nil channel while it is empty. Shutdown as in [`chan_sieve1`].
pub fn chan_sieve2() {
    fn odds(wg: &WaitGroup) -> Receiver<i32> {
        let (out_tx, out) = chan::bounded::<i32>(50);
        wg.go(move || {
            let mut n = 5;
            while out_tx.send(n).is_ok() {
                n += 2;
            }
        });
        out
    }
    fn multiples(p: i32, wg: &WaitGroup) -> Receiver<i32> {
        let (out_tx, out) = chan::bounded::<i32>(10);
        wg.go(move || {
            let mut n = p * p;
            while out_tx.send(n).is_ok() {
                n += 2 * p;
            }
        });
        out
    }
    fn sendproxy(out: Sender<i32>, wg: &WaitGroup) -> Sender<i32> {
        let (proxy_tx, proxy) = chan::bounded::<i32>(10);
        wg.go(move || {
            let mut buf = VecDeque::new();
            let nil = Sender::<i32>::never();
            loop {
                // buffer empty: disable output
                let (c, e) = match buf.front() {
                    Some(&e) => (&out, e),
                    None => (&nil, 0),
                };
                select! {
                    recv(proxy) -> e => match e {
                        Ok(e) => buf.push_back(e),
                        Err(_) => return,
                    },
                    send(c, e) -> r => {
                        if r.is_err() {
                            return;
                        }
                        buf.pop_front();
                    },
                }
            }
        });
        proxy_tx
    }
    fn sieve(wg: &WaitGroup) -> Receiver<i32> {
        // The output values.
        let (out_tx, out) = chan::bounded::<i32>(10);
        out_tx.send(2).unwrap();
        out_tx.send(3).unwrap();
        // The channel of all composites to be eliminated in increasing order.
        let (composites_tx, composites) = chan::bounded::<i32>(50);
        // The feedback loop.
        let (primes_tx, primes) = chan::bounded::<i32>(10);
        primes_tx.send(3).unwrap();
        // Merge channels of multiples of 'primes' into 'composites'.
        let w = wg.clone();
        wg.go(move || {
            // heap.Pop, then the popped channel's next head pushed back
            fn advance(
                heap: &mut BinaryHeap<Reverse<(i32, usize)>>,
                chans: &[Receiver<i32>],
            ) -> Option<i32> {
                let Reverse((head, id)) = heap.pop().expect("heap not empty");
                let next = chans[id].recv().ok()?;
                heap.push(Reverse((next, id)));
                Some(head)
            }
            let merge = || -> Option<()> {
                let mut heap = BinaryHeap::<Reverse<(i32, usize)>>::new();
                let mut chans: Vec<Receiver<i32>> = Vec::new();
                let mut min = 15;
                loop {
                    let m = multiples(primes.recv().ok()?, &w);
                    let head = m.recv().ok()?;
                    while min < head {
                        composites_tx.send(min).ok()?;
                        min = advance(&mut heap, &chans)?;
                    }
                    while min == head {
                        min = advance(&mut heap, &chans)?;
                    }
                    composites_tx.send(head).ok()?;
                    let next = m.recv().ok()?;
                    chans.push(m);
                    heap.push(Reverse((next, chans.len() - 1)));
                }
            };
            let _ = merge();
        });
        // Sieve out 'composites' from 'candidates'.
        let w = wg.clone();
        wg.go(move || {
            let run = || -> Option<()> {
                let primes = sendproxy(primes_tx, &w);
                let candidates = odds(&w);
                let mut p = candidates.recv().ok()?;
                loop {
                    let c = composites.recv().ok()?;
                    while p < c {
                        primes.send(p).ok()?;
                        out_tx.send(p).ok()?;
                        p = candidates.recv().ok()?;
                    }
                    if p == c {
                        p = candidates.recv().ok()?;
                    }
                }
            };
            let _ = run();
        });
        out
    }
    let wg = WaitGroup::new();
    let primes = sieve(&wg);
    for want in PRIMES {
        let x = primes.recv().expect("primes open");
        assert_eq!(x, want, "{x} != {want}");
    }
    drop(primes);
    wait_group(&wg, "sieve2");
}

/// test/chan/zerosize.go: channels of zero-size elements, unbuffered and buffered (Go only makes
/// them; here each also carries one value).
pub fn chan_zerosize() {
    fn one<T: Send + 'static + PartialEq + Debug + Copy>(cap: usize, v: T) {
        let (tx, rx) = chan::bounded::<T>(cap);
        let h = go!(move || tx.send(v).unwrap());
        assert_eq!(rx.recv(), Ok(v));
        join(h);
    }
    assert_eq!(std::mem::size_of::<[u8; 0]>(), 0);
    one::<[u8; 0]>(0, []);
    one::<[u8; 0]>(1, []);
    one::<()>(0, ());
    one::<()>(1, ());
}

// ===== src/sync =============================================================================

/// sync/mutex_test.go TestSemaphore (on the runtime semaphore there; `Semaphore::new(1)` here):
/// 10 goroutines acquire and release 1000 times each.
pub fn sync_semaphore() {
    let s = Arc::new(Semaphore::new(1));
    let (c_tx, c) = chan::bounded::<bool>(0);
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let (s, c) = (s.clone(), c_tx.clone());
            go!(move || {
                for _ in 0..1000 {
                    drop(s.acquire());
                }
                c.send(true).unwrap();
            })
        })
        .collect();
    for _ in 0..10 {
        c.recv().unwrap();
    }
    join_all(hs);
    assert_eq!(s.available_permits(), 1);
}

/// sync/mutex_test.go TestMutex: TryLock on a locked and an unlocked mutex, then 10 goroutines
/// hammering Lock/Unlock and TryLock.
pub fn sync_mutex() {
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    assert!(
        m.try_lock().is_none(),
        "TryLock succeeded with mutex locked"
    );
    drop(g);
    drop(m.try_lock().expect("TryLock failed with mutex unlocked"));

    let (c_tx, c) = chan::bounded::<bool>(0);
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let (m, c) = (m.clone(), c_tx.clone());
            go!(move || {
                // HammerMutex
                for i in 0..1000 {
                    if i % 3 == 0 {
                        drop(m.try_lock());
                        continue;
                    }
                    drop(m.lock());
                }
                c.send(true).unwrap();
            })
        })
        .collect();
    for _ in 0..10 {
        c.recv().unwrap();
    }
    join_all(hs);
}

/// sync/mutex_test.go TestMutexFairness: a goroutine that holds the lock nearly all the time
/// (sleeping inside it) must not starve another that wants it 10 times.
pub fn sync_mutex_fairness() {
    let mu = Arc::new(Mutex::new(()));
    let (stop_tx, stop) = chan::bounded::<bool>(0);
    let m = mu.clone();
    let hog = go!(move || {
        loop {
            let g = m.lock();
            time::sleep(Duration::from_micros(100));
            drop(g);
            select! {
                recv(stop) -> _ => return,
                default => {}
            }
        }
    });
    let (done_tx, done) = chan::bounded::<bool>(1);
    let m = mu.clone();
    let h = go!(move || {
        for _ in 0..10 {
            time::sleep(Duration::from_micros(100));
            drop(m.lock());
        }
        done_tx.send(true).unwrap();
    });
    let acquired = select! {
        recv(done) -> r => r.is_ok(),
        recv(time::after(Duration::from_secs(10))) -> _ => false,
    };
    drop(stop_tx); // Go: defer close(stop)
    join(hog);
    join(h);
    assert!(acquired, "can't acquire Mutex in 10 seconds");
}

/// sync/rwmutex_test.go TestParallelReaders (its GOMAXPROCS values ignored): n goroutines hold
/// the read lock at once.
pub fn sync_parallel_readers() {
    for num_readers in [1, 3, 4] {
        let m = Arc::new(RwLock::new(()));
        let (clocked_tx, clocked) = chan::bounded::<bool>(0);
        let (cunlock_tx, cunlock) = chan::bounded::<bool>(0);
        let (cdone_tx, cdone) = chan::bounded::<bool>(0);
        let hs: Vec<_> = (0..num_readers)
            .map(|_| {
                let (m, clocked, cunlock, cdone) = (
                    m.clone(),
                    clocked_tx.clone(),
                    cunlock.clone(),
                    cdone_tx.clone(),
                );
                go!(move || {
                    let g = m.read();
                    clocked.send(true).unwrap();
                    cunlock.recv().unwrap();
                    drop(g);
                    cdone.send(true).unwrap();
                })
            })
            .collect();
        // Wait for all parallel RLock()s to succeed.
        for _ in 0..num_readers {
            clocked.recv().unwrap();
        }
        for _ in 0..num_readers {
            cunlock_tx.send(true).unwrap();
        }
        for _ in 0..num_readers {
            cdone.recv().unwrap();
        }
        join_all(hs);
    }
}

/// sync/rwmutex_test.go HammerRWMutex: two writers and `num_readers` readers check, through an
/// activity counter, that a writer is always alone.
fn hammer_rwmutex(num_readers: usize, iterations: usize) {
    // Number of active readers + 10000 * number of active writers.
    let activity = Arc::new(AtomicI32::new(0));
    let rwm = Arc::new(RwLock::new(()));
    let (cdone_tx, cdone) = chan::bounded::<bool>(0);
    let reader = {
        let (rwm, activity, cdone) = (rwm.clone(), activity.clone(), cdone_tx.clone());
        move || {
            let (rwm, activity, cdone) = (rwm.clone(), activity.clone(), cdone.clone());
            go!(move || {
                for _ in 0..iterations {
                    let g = rwm.read();
                    let n = activity.fetch_add(1, SeqCst) + 1;
                    assert!((1..10000).contains(&n), "wlock({n})");
                    for _ in 0..100 {
                        std::hint::spin_loop();
                    }
                    activity.fetch_sub(1, SeqCst);
                    drop(g);
                }
                cdone.send(true).unwrap();
            })
        }
    };
    let writer = {
        let (rwm, activity, cdone) = (rwm.clone(), activity.clone(), cdone_tx.clone());
        move || {
            let (rwm, activity, cdone) = (rwm.clone(), activity.clone(), cdone.clone());
            go!(move || {
                for _ in 0..iterations {
                    let g = rwm.write();
                    let n = activity.fetch_add(10000, SeqCst) + 10000;
                    assert_eq!(n, 10000, "wlock({n})");
                    for _ in 0..100 {
                        std::hint::spin_loop();
                    }
                    activity.fetch_sub(10000, SeqCst);
                    drop(g);
                }
                cdone.send(true).unwrap();
            })
        }
    };
    drop(cdone_tx);
    let mut hs = vec![writer()];
    let mut i = 0;
    while i < num_readers / 2 {
        hs.push(reader());
        i += 1;
    }
    hs.push(writer());
    while i < num_readers {
        hs.push(reader());
        i += 1;
    }
    drop((reader, writer));
    // Wait for the 2 writers and all readers to finish (a failed one closes nothing alone, so
    // the joins below report it).
    for _ in 0..2 + num_readers {
        if cdone.recv().is_err() {
            break;
        }
    }
    join_all(hs);
}

/// sync/rwmutex_test.go TestRWMutex: TryLock/TryRLock against held locks, then HammerRWMutex
/// with Go's ten (GOMAXPROCS, readers) pairs, 1000 iterations each.
pub fn sync_rwmutex() {
    let m = RwLock::new(());
    let w = m.write();
    assert!(
        m.try_write().is_none(),
        "TryLock succeeded with mutex locked"
    );
    assert!(
        m.try_read().is_none(),
        "TryRLock succeeded with mutex locked"
    );
    drop(w);
    drop(m.try_write().expect("TryLock failed with mutex unlocked"));
    let r1 = m.try_read().expect("TryRLock failed with mutex unlocked");
    let r2 = m.try_read().expect("TryRLock failed with mutex rlocked");
    assert!(
        m.try_write().is_none(),
        "TryLock succeeded with mutex rlocked"
    );
    drop((r1, r2));

    const N: usize = 1000;
    for num_readers in [1, 3, 10, 1, 3, 10, 1, 3, 10, 5] {
        hammer_rwmutex(num_readers, N);
    }
}

/// sync/rwmutex_test.go TestRLocker: a goroutine read-locks twice, then write-locks; main
/// unlocks its read locks (the guards travel over channels) and checks the write lock waits for
/// both.
pub fn sync_rlocker() {
    let wl: &'static RwLock<()> = Box::leak(Box::new(RwLock::new(())));
    type ReadPair = (
        goway::sync::RwLockReadGuard<'static, ()>,
        goway::sync::RwLockReadGuard<'static, ()>,
    );
    let (wlocked_tx, wlocked) = chan::bounded::<goway::sync::RwLockWriteGuard<'static, ()>>(1);
    let (rlocked_tx, rlocked) = chan::bounded::<ReadPair>(1);
    const N: usize = 10;
    let (wtx, rtx) = (wlocked_tx.clone(), rlocked_tx.clone());
    let h = go!(move || {
        for _ in 0..N {
            let r1 = wl.read();
            let r2 = wl.read();
            rtx.send((r1, r2)).unwrap();
            let w = wl.write();
            wtx.send(w).unwrap();
        }
    });
    for _ in 0..N {
        let (r1, r2) = rlocked.recv().unwrap();
        drop(r1);
        select! {
            recv(wlocked) -> _ => panic!("RLocker() didn't read-lock it"),
            default => {}
        }
        drop(r2);
        let w = wlocked.recv().unwrap();
        select! {
            recv(rlocked) -> _ => panic!("RLocker() didn't respect the write lock"),
            default => {}
        }
        drop(w);
    }
    join(h);
    drop((wlocked_tx, rlocked_tx));
}

/// sync/cond_test.go TestCondSignal: each Signal wakes exactly one of two waiters.
pub fn sync_cond_signal() {
    let st = Arc::new((Mutex::new(()), Cond::new()));
    let n = 2;
    let (running_tx, running) = chan::bounded::<bool>(n);
    let (awake_tx, awake) = chan::bounded::<bool>(n);
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (st, running, awake) = (st.clone(), running_tx.clone(), awake_tx.clone());
            go!(move || {
                let g = st.0.lock();
                running.send(true).unwrap();
                let g = st.1.wait(g);
                awake.send(true).unwrap();
                drop(g);
            })
        })
        .collect();
    for _ in 0..n {
        running.recv().unwrap(); // Wait for everyone to run.
    }
    let mut n = n;
    while n > 0 {
        select! {
            recv(awake) -> _ => panic!("goroutine not asleep"),
            default => {}
        }
        {
            let _g = st.0.lock();
            st.1.signal();
        }
        awake.recv().unwrap(); // Will deadlock if no goroutine wakes up
        select! {
            recv(awake) -> _ => panic!("too many goroutines awake"),
            default => {}
        }
        n -= 1;
    }
    st.1.signal();
    join_all(hs);
    drop((running_tx, awake_tx));
}

/// sync/cond_test.go TestCondSignalGenerations: a Signal wakes the goroutine that was waiting
/// when it was sent, not a later one (100 generations).
pub fn sync_cond_signal_generations() {
    let st = Arc::new((Mutex::new(()), Cond::new()));
    let n = 100;
    let (running_tx, running) = chan::bounded::<bool>(n);
    let (awake_tx, awake) = chan::bounded::<usize>(n);
    let mut hs = Vec::new();
    for i in 0..n {
        let (st2, running_tx, awake_tx) = (st.clone(), running_tx.clone(), awake_tx.clone());
        hs.push(go!(move || {
            let g = st2.0.lock();
            running_tx.send(true).unwrap();
            let g = st2.1.wait(g);
            awake_tx.send(i).unwrap();
            drop(g);
        }));
        if i > 0 {
            let a = awake.recv().unwrap();
            assert_eq!(a, i - 1, "wrong goroutine woke up: want {}, got {a}", i - 1);
        }
        running.recv().unwrap();
        let _g = st.0.lock();
        st.1.signal();
    }
    join_all(hs);
}

/// sync/cond_test.go TestCondBroadcast: 200 goroutines, 200 rounds; each Broadcast wakes every
/// waiter exactly once.
pub fn sync_cond_broadcast() {
    let st = Arc::new((Mutex::new(false), Cond::new())); // the bool is Go's `exit`
    let n = 200;
    let (running_tx, running) = chan::bounded::<usize>(n);
    let (awake_tx, awake) = chan::bounded::<usize>(n);
    let hs: Vec<_> = (0..n)
        .map(|g| {
            let (st, running, awake) = (st.clone(), running_tx.clone(), awake_tx.clone());
            go!(move || {
                let mut exit = st.0.lock();
                while !*exit {
                    running.send(g).unwrap();
                    exit = st.1.wait(exit);
                    awake.send(g).unwrap();
                }
                drop(exit);
            })
        })
        .collect();
    for i in 0..n {
        for _ in 0..n {
            running.recv().unwrap(); // Will deadlock unless n are running.
        }
        if i == n - 1 {
            *st.0.lock() = true;
        }
        select! {
            recv(awake) -> _ => panic!("goroutine not asleep"),
            default => {}
        }
        {
            let _g = st.0.lock();
            st.1.broadcast();
        }
        let mut seen = vec![false; n];
        for _ in 0..n {
            let g = awake.recv().unwrap();
            assert!(!seen[g], "goroutine woke up twice");
            seen[g] = true;
        }
    }
    select! {
        recv(running) -> _ => panic!("goroutine did not exit"),
        default => {}
    }
    st.1.broadcast();
    join_all(hs);
    drop((running_tx, awake_tx));
}

/// sync/cond_test.go TestRace: three goroutines hand a value along through Wait and Signal,
/// two of them polling under the lock (Go's `runtime.Gosched` is `yield_now`).
pub fn sync_cond_race() {
    let st = Arc::new((Mutex::new(0i32), Cond::new())); // the i32 is Go's `x`
    let (done_tx, done) = chan::bounded::<bool>(0);
    let (s, d) = (st.clone(), done_tx.clone());
    let h1 = go!(move || {
        let mut x = s.0.lock();
        *x = 1;
        x = s.1.wait(x);
        assert_eq!(*x, 2, "want 2");
        *x = 3;
        s.1.signal();
        drop(x);
        d.send(true).unwrap();
    });
    let (s, d) = (st.clone(), done_tx.clone());
    let h2 = go!(move || {
        let mut x = s.0.lock();
        loop {
            if *x == 1 {
                *x = 2;
                s.1.signal();
                break;
            }
            drop(x);
            yield_now();
            x = s.0.lock();
        }
        drop(x);
        d.send(true).unwrap();
    });
    let (s, d) = (st.clone(), done_tx.clone());
    let h3 = go!(move || {
        let mut x = s.0.lock();
        loop {
            if *x == 2 {
                x = s.1.wait(x);
                assert_eq!(*x, 3, "want 3");
                break;
            }
            if *x == 3 {
                break;
            }
            drop(x);
            yield_now();
            x = s.0.lock();
        }
        drop(x);
        d.send(true).unwrap();
    });
    drop(done_tx);
    for _ in 0..3 {
        if done.recv().is_err() {
            break;
        }
    }
    join_all(vec![h1, h2, h3]);
}

/// sync/cond_test.go TestCondSignalStealing: a Broadcast racing with a new waiter must still
/// wake the waiter that was already waiting (1000 rounds).
pub fn sync_cond_signal_stealing() {
    for _ in 0..1000 {
        let st = Arc::new((Mutex::new(false), Cond::new())); // the bool is Go's `done`
        // Start a waiter.
        let (ch_tx, ch) = chan::bounded::<()>(0);
        let s = st.clone();
        let h1 = go!(move || {
            let g = s.0.lock();
            ch_tx.send(()).unwrap();
            let g = s.1.wait(g);
            drop(g);
            ch_tx.send(()).unwrap();
        });
        ch.recv().unwrap();
        drop(st.0.lock());
        // The waiter is in Wait now. Race a broadcast against a new waiter.
        let s = st.clone();
        let h2 = go!(move || s.1.broadcast());
        let s = st.clone();
        let h3 = go!(move || {
            let mut done = s.0.lock();
            while !*done {
                done = s.1.wait(done);
            }
            drop(done);
        });
        // Check that the first waiter does get signaled.
        select! {
            recv(ch) -> r => r.expect("first waiter signals"),
            recv(time::after(Duration::from_secs(2))) -> _ => {
                panic!("First waiter didn't get broadcast.")
            }
        }
        // Release the second waiter in case it didn't get the broadcast.
        *st.0.lock() = true;
        st.1.broadcast();
        join_all(vec![h1, h2, h3]);
    }
}

/// sync/once_test.go TestOnce: ten goroutines call Do; the function runs once and every caller
/// sees its effect (a `Relaxed` counter: only the Once orders it).
pub fn sync_once() {
    let o = Arc::new(AtomicI32::new(0));
    let once = Arc::new(Once::new());
    let (c_tx, c) = chan::bounded::<bool>(0);
    const N: usize = 10;
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let (o, once, c) = (o.clone(), once.clone(), c_tx.clone());
            go!(move || {
                once.call_once(|| {
                    o.fetch_add(1, Relaxed);
                });
                let v = o.load(Relaxed);
                assert_eq!(v, 1, "once failed inside run: {v} is not 1");
                c.send(true).unwrap();
            })
        })
        .collect();
    drop(c_tx);
    for _ in 0..N {
        if c.recv().is_err() {
            break;
        }
    }
    join_all(hs);
    assert_eq!(o.load(Relaxed), 1, "once failed outside run");
}

/// sync/once_test.go TestOncePanic: a panicking function counts as done.
pub fn sync_once_panic() {
    let once = Once::new();
    let r = catch_quietly(|| once.call_once(|| panic!("failed")));
    assert_eq!(r.err().as_deref(), Some("failed"), "Once.Do did not panic");
    once.call_once(|| panic!("Once.Do called twice"));
}

/// sync/waitgroup_test.go testWaitGroup: a barrier of 16 goroutines, run 8 times on the same
/// two groups.
pub fn sync_waitgroup() {
    let (wg1, wg2) = (WaitGroup::new(), WaitGroup::new());
    for _ in 0..8 {
        let n = 16;
        wg1.add(n as isize);
        wg2.add(n as isize);
        let (exited_tx, exited) = chan::bounded::<bool>(n);
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (wg1, wg2, exited) = (wg1.clone(), wg2.clone(), exited_tx.clone());
                go!(move || {
                    wg1.done();
                    wg2.wait();
                    exited.send(true).unwrap();
                })
            })
            .collect();
        wg1.wait();
        for _ in 0..n {
            select! {
                recv(exited) -> _ => panic!("WaitGroup released group too soon"),
                default => {}
            }
            wg2.done();
        }
        for _ in 0..n {
            exited.recv().unwrap(); // Will block if barrier fails to unlock someone.
        }
        join_all(hs);
        drop(exited_tx);
    }
}

/// sync/waitgroup_test.go TestWaitGroupMisuse: a negative counter panics with Go's message.
pub fn sync_waitgroup_misuse() {
    let wg = WaitGroup::new();
    let r = catch_quietly(|| {
        wg.add(1);
        wg.done();
        wg.done();
    });
    assert_eq!(
        r.err().as_deref(),
        Some("sync: negative WaitGroup counter"),
        "Unexpected panic (or none)"
    );
}

/// sync/waitgroup_test.go TestWaitGroupRace: Wait returns only after both Dones (1000 rounds).
pub fn sync_waitgroup_race() {
    for _ in 0..1000 {
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicI32::new(0));
        let mut hs = Vec::new();
        for _ in 0..2 {
            wg.add(1);
            let (wg, n) = (wg.clone(), n.clone());
            hs.push(go!(move || {
                n.fetch_add(1, SeqCst);
                wg.done();
            }));
        }
        wg.wait();
        assert_eq!(n.load(SeqCst), 2, "Spurious wakeup from Wait");
        join_all(hs);
    }
}

/// sync/waitgroup_test.go TestWaitGroupAlign: a group inside a struct, done by a goroutine.
pub fn sync_waitgroup_align() {
    struct X {
        _x: u8,
        wg: WaitGroup,
    }
    let x = X {
        _x: 0,
        wg: WaitGroup::new(),
    };
    x.wg.add(1);
    let wg = x.wg.clone();
    let h = go!(move || wg.done());
    x.wg.wait();
    join(h);
}

// ===== src/context ==========================================================================

/// Go's shortDuration: a reasonable duration to block in a test.
const SHORT_DURATION: Duration = Duration::from_millis(1);
/// Go's veryLongDuration: 1000 hours.
const VERY_LONG_DURATION: Duration = Duration::from_secs(1000 * 3600);
/// Go's `quiescent(t)` without a test deadline.
const QUIESCENT: Duration = Duration::from_secs(5);

/// Is `c.Done()` closed now?
fn closed(c: &Context) -> bool {
    select! {
        recv(c.done()) -> _ => true,
        default => false,
    }
}

/// Go's `c.Done() == nil`: a never channel is not the same channel as anything, itself included.
fn is_nil<T>(rx: &Receiver<T>) -> bool {
    !rx.same_channel(rx)
}

/// context_test.go XTestBackground: never done (its Done is Go's nil channel).
pub fn context_background() {
    let c = context::background();
    assert!(is_nil(&c.done()));
    assert!(!closed(&c), "<-c.Done() should block");
    assert_eq!(c.err(), None);
}

/// context_test.go XTestTODO.
pub fn context_todo() {
    let c = context::todo();
    assert!(is_nil(&c.done()));
    assert!(!closed(&c), "<-c.Done() should block");
    assert_eq!(c.err(), None);
}

/// context_test.go XTestWithCancel: cancel propagates synchronously to a child (Go's `o`, the
/// otherContext wrapper of c1, is c1 itself here).
pub fn context_with_cancel() {
    let (c1, cancel) = context::with_cancel(&context::background());
    let (c2, _cancel2) = context::with_cancel(&c1);
    let contexts = [&c1, &c2];
    for (i, c) in contexts.iter().enumerate() {
        assert!(!is_nil(&c.done()), "c[{i}].Done() == nil");
        assert_eq!(c.err(), None, "c[{i}].Err()");
        assert!(!closed(c), "<-c[{i}].Done() should block");
    }
    cancel.cancel(); // Should propagate synchronously.
    for (i, c) in contexts.iter().enumerate() {
        assert!(closed(c), "<-c[{i}].Done() blocked, but shouldn't have");
        assert_eq!(c.err(), Some(ContextError::Canceled), "c[{i}].Err()");
    }
}

#[derive(Debug, PartialEq)]
struct Key(&'static str);

/// context_test.go XTestParentFinishesChild: parent → cancelChild, parent → valueChild →
/// timerChild; the parent links both cancellable children and cancelling it finishes all.
pub fn context_parent_finishes_child() {
    let (parent, cancel) = context::with_cancel(&context::background());
    let (cancel_child, _stop1) = context::with_cancel(&parent);
    let value_child = context::with_value(&parent, Key("value"));
    let (timer_child, _stop2) = context::with_timeout(&value_child, VERY_LONG_DURATION);
    for (c, name) in [
        (&parent, "parent"),
        (&cancel_child, "cancelChild"),
        (&timer_child, "timerChild"),
        (&value_child, "valueChild"),
    ] {
        assert!(!closed(c), "<-{name}.Done() should block");
    }
    // The parent's children should contain the two cancelable children.
    assert_eq!(parent.registered_children(), 2, "bad linkage: pc.children");
    cancel.cancel();
    assert_eq!(
        parent.registered_children(),
        0,
        "pc.cancel didn't clear pc.children"
    );
    // parent and children should all be finished.
    for (c, name) in [
        (&parent, "parent"),
        (&cancel_child, "cancelChild"),
        (&value_child, "valueChild"),
        (&timer_child, "timerChild"),
    ] {
        assert!(closed(c), "<-{name}.Done() blocked, but shouldn't have");
        assert_eq!(c.err(), Some(ContextError::Canceled), "{name}.Err()");
    }
    // WithValue on a canceled parent is canceled.
    let precanceled_child = context::with_value(&parent, Key("value"));
    assert!(
        closed(&precanceled_child),
        "<-precanceledChild.Done() blocked, but shouldn't have"
    );
    assert_eq!(precanceled_child.err(), Some(ContextError::Canceled));
}

/// context_test.go XTestChildFinishesFirst: cancelling a child unlinks it and leaves the parent
/// (Background, then a cancellable context) live.
pub fn context_child_finishes_first() {
    let (cancelable, _stop) = context::with_cancel(&context::background());
    for (parent, pcok) in [(context::background(), false), (cancelable.clone(), true)] {
        let (child, cancel) = context::with_cancel(&parent);
        assert!(!closed(&parent), "<-parent.Done() should block");
        assert!(!closed(&child), "<-child.Done() should block");
        if pcok {
            assert_eq!(parent.registered_children(), 1, "bad linkage: pc.children");
        }
        cancel.cancel();
        if pcok {
            assert_eq!(
                parent.registered_children(),
                0,
                "child's cancel didn't remove self from pc.children"
            );
        }
        // child should be finished.
        assert!(closed(&child), "<-child.Done() blocked, but shouldn't have");
        assert_eq!(child.err(), Some(ContextError::Canceled));
        // parent should not be finished.
        assert!(!closed(&parent), "<-parent.Done() should block");
        assert_eq!(parent.err(), None);
    }
}

/// context_test.go testDeadline: `c` is done within `quiescent` with DeadlineExceeded.
fn test_deadline(c: &Context, name: &str) {
    let mut timer = Timer::new(QUIESCENT);
    select! {
        recv(timer.c()) -> _ => panic!("{name}: context not timed out after {QUIESCENT:?}"),
        recv(c.done()) -> _ => {}
    }
    timer.stop();
    assert_eq!(
        c.err(),
        Some(ContextError::DeadlineExceeded),
        "{name}: c.Err()"
    );
}

/// context_test.go XTestDeadline (its otherContext variants run on the plain context).
pub fn context_deadline() {
    let bg = context::background();
    let (c, _c1) = context::with_deadline(&bg, Instant::now() + SHORT_DURATION);
    test_deadline(&c, "WithDeadline");
    let (c, _c2) = context::with_deadline(&bg, Instant::now() + SHORT_DURATION);
    let (c, _c3) = context::with_deadline(&c, Instant::now() + VERY_LONG_DURATION);
    test_deadline(&c, "WithDeadline+WithDeadline");
    let past = Instant::now()
        .checked_sub(SHORT_DURATION)
        .expect("an instant 1 ms ago");
    let (c, _c4) = context::with_deadline(&bg, past);
    test_deadline(&c, "WithDeadline+inthepast");
    let (c, _c5) = context::with_deadline(&bg, Instant::now());
    test_deadline(&c, "WithDeadline+now");
}

/// context_test.go XTestTimeout (its otherContext variants run on the plain context).
pub fn context_timeout() {
    let bg = context::background();
    let (c, _c1) = context::with_timeout(&bg, SHORT_DURATION);
    test_deadline(&c, "WithTimeout");
    let (c, _c2) = context::with_timeout(&bg, SHORT_DURATION);
    let (c, _c3) = context::with_timeout(&c, VERY_LONG_DURATION);
    test_deadline(&c, "WithTimeout+WithTimeout");
}

/// context_test.go XTestCanceledTimeout: cancelling a timeout context is Canceled, at once.
pub fn context_canceled_timeout() {
    let (c, _c1) = context::with_timeout(&context::background(), Duration::from_secs(1));
    let (c, cancel) = context::with_timeout(&c, VERY_LONG_DURATION);
    cancel.cancel(); // Should propagate synchronously.
    assert!(closed(&c), "<-c.Done() blocked, but shouldn't have");
    assert_eq!(c.err(), Some(ContextError::Canceled));
}

// Go's keys k1 = key1(1), k2 = key2(1), k3 = key2(3): keys are types here, so three types; a
// value of `None` is Go's `WithValue(c, k, nil)`.
struct K1(Option<&'static str>);
struct K2(Option<&'static str>);
struct K3(Option<&'static str>);

/// context_test.go XTestValues (the otherContext wrappers o0..o3 are the wrapped contexts).
pub fn context_values() {
    let check = |c: &Context, nm: &str, v1: &str, v2: &str, v3: &str| {
        let got1 = c.value::<K1>().and_then(|k| k.0).unwrap_or("");
        let got2 = c.value::<K2>().and_then(|k| k.0).unwrap_or("");
        let got3 = c.value::<K3>().and_then(|k| k.0).unwrap_or("");
        assert_eq!(got1, v1, "{nm}.Value(k1)");
        assert_eq!(got2, v2, "{nm}.Value(k2)");
        assert_eq!(got3, v3, "{nm}.Value(k3)");
    };
    let c0 = context::background();
    check(&c0, "c0", "", "", "");
    let c1 = context::with_value(&context::background(), K1(Some("c1k1")));
    check(&c1, "c1", "c1k1", "", "");
    let c2 = context::with_value(&c1, K2(Some("c2k2")));
    check(&c2, "c2", "c1k1", "c2k2", "");
    let c3 = context::with_value(&c2, K3(Some("c3k3")));
    check(&c3, "c2", "c1k1", "c2k2", "c3k3");
    let c4 = context::with_value(&c3, K1(None));
    check(&c4, "c4", "", "c2k2", "c3k3");
    // o1 = otherContext{WithValue(Background(), k1, "c1k1")}, o2 = WithValue(o1, k2, "o2k2")
    let o1 = context::with_value(&context::background(), K1(Some("c1k1")));
    check(&o1, "o1", "c1k1", "", "");
    let o2 = context::with_value(&o1, K2(Some("o2k2")));
    check(&o2, "o2", "c1k1", "o2k2", "");
    // o3 = otherContext{c4}, o4 = WithValue(o3, k3, nil)
    let o4 = context::with_value(&c4, K3(None));
    check(&o4, "o4", "", "c2k2", "");
}

/// context_test.go XTestSimultaneousCancels: a tree of 101 contexts, all cancelled at once from
/// goroutines in random order; every Done closes and every cancel returns.
pub fn context_simultaneous_cancels() {
    let (mut rng, seed) = Rng::new();
    let (root, cancel) = context::with_cancel(&context::background());
    let mut m: Vec<(Context, CancelFunc)> = vec![(root.clone(), cancel)];
    let mut q = VecDeque::from([root]);
    // Create a tree of contexts.
    while m.len() < 100 {
        let Some(parent) = q.pop_front() else { break };
        for _ in 0..4 {
            let (ctx, cancel) = context::with_cancel(&parent);
            m.push((ctx.clone(), cancel));
            q.push_back(ctx);
        }
    }
    // Start all the cancels in a random order.
    rng.shuffle(&mut m);
    let wg = WaitGroup::new();
    let mut contexts = Vec::new();
    for (ctx, cancel) in m {
        contexts.push(ctx);
        wg.add(1);
        let wg = wg.clone();
        go!(move || {
            cancel.cancel();
            wg.done();
        });
    }
    let (stuck_tx, stuck) = chan::bounded::<()>(0);
    let mut timer = time::after_func(QUIESCENT, move || {
        stuck_tx.close();
    });
    // Wait on all the contexts in a random order.
    rng.shuffle(&mut contexts);
    for ctx in &contexts {
        select! {
            recv(ctx.done()) -> _ => {}
            recv(stuck) -> _ => panic!("seed={seed}: timed out after {QUIESCENT:?} waiting for <-ctx.Done()"),
        }
    }
    // Wait for all the cancel functions to return.
    let (done_tx, done) = chan::bounded::<()>(0);
    let w = wg.clone();
    let h = go!(move || {
        w.wait();
        done_tx.close();
    });
    select! {
        recv(done) -> _ => {}
        recv(stuck) -> _ => panic!("timed out after {QUIESCENT:?} waiting for cancel functions"),
    }
    timer.stop();
    join(h);
}

/// context_test.go XTestInterlockedCancels: a goroutine cancels the child when it sees the
/// parent done; cancelling the parent must not deadlock and the child ends done.
pub fn context_interlocked_cancels() {
    let (parent, cancel_parent) = context::with_cancel(&context::background());
    let (child, cancel_child) = context::with_cancel(&parent);
    let p = parent.clone();
    let h = go!(move || {
        let _ = p.done().recv();
        cancel_child.cancel();
    });
    cancel_parent.cancel();
    let mut timer = Timer::new(QUIESCENT);
    select! {
        recv(child.done()) -> _ => {}
        recv(timer.c()) -> _ => panic!("timed out after {QUIESCENT:?} waiting for child.Done()"),
    }
    timer.stop();
    join(h);
}

/// A value key per layer: Go's keys are distinct pointers, goway's are types.
#[derive(Debug, PartialEq)]
struct LayerKey<const K: usize>(usize);

macro_rules! layer_keys {
    ($($k:literal)*) => {
        const LAYER_KEYS: usize = [$($k),*].len();
        /// `WithValue(ctx, v, v)` for the `k`-th value.
        fn with_layer_value(ctx: &Context, k: usize) -> Context {
            match k {
                $($k => context::with_value(ctx, LayerKey::<$k>($k)),)*
                _ => unreachable!("layer key {k}"),
            }
        }
        /// `ctx.Value(key)` for the `k`-th value.
        fn layer_value(ctx: &Context, k: usize) -> Option<usize> {
            match k {
                $($k => ctx.value::<LayerKey<$k>>().map(|v| v.0),)*
                _ => unreachable!("layer key {k}"),
            }
        }
    };
}
layer_keys!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47);

/// context_test.go testLayers: at least 30 random layers of values, cancels and timeouts; the
/// values survive, and cancelling any layer (or the timeouts) finishes the innermost context.
fn test_layers(test_timeout: bool) {
    const MIN_LAYERS: usize = 30;
    let (mut rng, seed) = Rng::new();
    let mut vals: Vec<usize> = Vec::new();
    let mut cancels: Vec<CancelFunc> = Vec::new();
    let mut num_timers = 0;
    let mut ctx = context::background();
    let mut i = 0;
    while i < MIN_LAYERS || num_timers == 0 || cancels.is_empty() || vals.is_empty() {
        let mut pick = rng.below(3);
        if pick == 0 && vals.len() == LAYER_KEYS {
            pick = 1; // out of key types (Go has no such limit)
        }
        match pick {
            0 => {
                let k = vals.len();
                ctx = with_layer_value(&ctx, k);
                vals.push(k);
            }
            1 => {
                let (c, cancel) = context::with_cancel(&ctx);
                ctx = c;
                cancels.push(cancel);
            }
            _ => {
                let d = if test_timeout {
                    SHORT_DURATION
                } else {
                    VERY_LONG_DURATION
                };
                let (c, cancel) = context::with_timeout(&ctx, d);
                ctx = c;
                cancels.push(cancel);
                num_timers += 1;
            }
        }
        i += 1;
    }
    let check_values = |when: &str| {
        for &k in &vals {
            assert_eq!(
                layer_value(&ctx, k),
                Some(k),
                "seed={seed}: {when}: ctx.Value({k})"
            );
        }
    };
    if !test_timeout {
        assert!(!closed(&ctx), "seed={seed}: ctx should not be canceled yet");
    }
    check_values("before cancel");
    if test_timeout {
        let mut timer = Timer::new(QUIESCENT);
        select! {
            recv(ctx.done()) -> _ => {}
            recv(timer.c()) -> _ => panic!("seed={seed}: ctx should have timed out after {QUIESCENT:?}"),
        }
        timer.stop();
        check_values("after timeout");
    } else {
        let k = rng.below(cancels.len());
        cancels[k].cancel();
        assert!(closed(&ctx), "seed={seed}: ctx should be canceled");
        check_values("after cancel");
    }
}

/// context_test.go XTestLayersCancel.
pub fn context_layers_cancel() {
    test_layers(false);
}

/// context_test.go XTestLayersTimeout.
pub fn context_layers_timeout() {
    test_layers(true);
}

/// context_test.go XTestCancelRemoves: cancelling a WithCancel or WithTimeout child unlinks it
/// from its parent.
pub fn context_cancel_removes() {
    let (ctx, _c1) = context::with_cancel(&context::background());
    assert_eq!(ctx.registered_children(), 0, "after creation");
    let (_child, cancel) = context::with_cancel(&ctx);
    assert_eq!(ctx.registered_children(), 1, "with WithCancel child");
    cancel.cancel();
    assert_eq!(
        ctx.registered_children(),
        0,
        "after canceling WithCancel child"
    );

    let (ctx, _c2) = context::with_cancel(&context::background());
    assert_eq!(ctx.registered_children(), 0, "after creation");
    let (_child, cancel) = context::with_timeout(&ctx, Duration::from_secs(60 * 60));
    assert_eq!(ctx.registered_children(), 1, "with WithTimeout child");
    cancel.cancel();
    assert_eq!(
        ctx.registered_children(),
        0,
        "after canceling WithTimeout child"
    );
}

/// context_test.go XTestWithCancelCanceledParent: a child of a cancelled parent is born done.
pub fn context_with_cancel_canceled_parent() {
    let (parent, pcancel) = context::with_cancel(&context::background());
    pcancel.cancel();
    let (c, _c) = context::with_cancel(&parent);
    assert!(closed(&c), "child not done immediately upon construction");
    assert_eq!(c.err(), Some(ContextError::Canceled), "child not canceled");
}

/// context_test.go XTestDeadlineExceededSupportsTimeout.
pub fn context_deadline_exceeded_supports_timeout() {
    assert!(
        ContextError::DeadlineExceeded.is_timeout(),
        "wrong value for timeout"
    );
    assert!(!ContextError::Canceled.is_timeout());
}

// ===== src/time =============================================================================

/// sleep_test.go TestSleep: Sleep(100 ms) lasts at least 100 ms while a goroutine wakes halfway
/// (Go's goroutine then calls the `Interrupt()` test hook, which goway has not).
pub fn time_sleep() {
    let delay = ms(100);
    let h = go!(move || time::sleep(delay / 2));
    let start = Instant::now();
    time::sleep(delay);
    let duration = start.elapsed();
    assert!(
        duration >= delay,
        "Sleep({delay:?}) slept for only {duration:?}"
    );
    join(h);
}

/// sleep_test.go TestAfterFunc: a chain of 10 AfterFunc(0) calls, each made from the previous
/// call, which then sleeps (Go: 1 s; 250 ms here); the chain must not wait for the sleepers.
pub fn time_after_func() {
    struct State {
        i: AtomicI32,
        c: Sender<bool>,
        wg: WaitGroup,
    }
    fn schedule(st: &Arc<State>) {
        st.wg.add(1);
        let s = st.clone();
        let _ = time::after_func(Duration::ZERO, move || f(s.clone()));
    }
    fn f(st: Arc<State>) {
        let i = st.i.fetch_sub(1, SeqCst) - 1;
        if i >= 0 {
            schedule(&st);
            time::sleep(ms(250));
        } else {
            st.c.send(true).unwrap();
        }
        st.wg.done();
    }
    let (c_tx, c) = chan::bounded::<bool>(0);
    let st = Arc::new(State {
        i: AtomicI32::new(10),
        c: c_tx,
        wg: WaitGroup::new(),
    });
    schedule(&st);
    c.recv().unwrap();
    wait_group(&st.wg, "AfterFunc calls");
}

/// sleep_test.go TestAfterStress: 100 ticks of a 1 ns ticker must arrive while another goroutine
/// loops on Sleep(1 ns) (Go's loop also runs `runtime.GC()`). With one worker this needs every
/// positive sleep to give up the worker.
pub fn time_after_stress() {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = go!(move || {
        while !s.load(SeqCst) {
            // Yield so that the timer thread's sends reach the ticker's receiver.
            time::sleep(Duration::from_nanos(1));
        }
    });
    let mut ticker = Ticker::new(Duration::from_nanos(1));
    for _ in 0..100 {
        ticker.c().recv().unwrap();
    }
    ticker.stop();
    stop.store(true, SeqCst);
    join(h);
}

/// sleep_test.go TestAfter: After(100 ms) fires no earlier, with a time no earlier.
pub fn time_after() {
    let delay = ms(100);
    let start = Instant::now();
    let end = time::after(delay).recv().unwrap();
    let duration = start.elapsed();
    assert!(
        duration >= delay,
        "After({delay:?}) slept for only {duration:?}"
    );
    assert!(
        end >= start + delay,
        "After({delay:?}) expect >= start + delay, got start + {:?}",
        end - start
    );
}

/// sleep_test.go TestAfterTick (Go's `-short` figures): 10 successive After(10 ms) take at least
/// 90 % of 100 ms.
pub fn time_after_tick() {
    const COUNT: u32 = 10;
    let delta = ms(10);
    let t0 = Instant::now();
    for _ in 0..COUNT {
        time::after(delta).recv().unwrap();
    }
    let d = t0.elapsed();
    let target = delta * COUNT;
    assert!(
        d >= target * 9 / 10,
        "{COUNT} ticks of {delta:?} too fast: took {d:?}, expected {target:?}"
    );
}

/// sleep_test.go TestAfterStop: a stopped Timer and a stopped AfterFunc never fire; Stop of a
/// stopped timer returns false. Go retries up to five times before failing.
pub fn time_after_stop() {
    let mut errs = Vec::new();
    for _ in 0..5 {
        let _t = time::after_func(ms(100), || {});
        let mut t0 = Timer::new(ms(50));
        let (c1_tx, c1) = chan::bounded::<bool>(1);
        let c1_keep = c1_tx.clone(); // c1 stays open while we look at it
        let mut t1 = time::after_func(ms(150), move || {
            let _ = c1_tx.try_send(true);
        });
        let c2 = time::after(ms(200));
        if !t0.stop() {
            errs.push("failed to stop event 0");
            continue;
        }
        if !t1.stop() {
            errs.push("failed to stop event 1");
            continue;
        }
        c2.recv().unwrap();
        let err = select! {
            recv(t0.c()) -> _ => Some("event 0 was not stopped"),
            recv(c1) -> _ => Some("event 1 was not stopped"),
            default => None,
        };
        drop(c1_keep);
        if let Some(e) = err {
            errs.push(e);
            continue;
        }
        if t1.stop() {
            errs.push("Stop returned true twice");
            continue;
        }
        // Test passed, so all done (Go logs the earlier errors).
        return;
    }
    panic!("saw {} errors: {errs:?}", errs.len());
}

const SLOTS: [u32; 13] = [5, 3, 6, 6, 6, 1, 1, 2, 7, 9, 4, 8, 0];

/// sleep_test.go testAfterQueuing: goroutines waiting on After(slot * delta) report in slot
/// order, each within [target - delta/2, target + 10 delta].
fn test_after_queuing(delta: Duration) -> Result<(), String> {
    let (result_tx, result) = chan::bounded::<(u32, Instant)>(SLOTS.len());
    let t0 = Instant::now();
    let hs: Vec<_> = SLOTS
        .iter()
        .map(|&slot| {
            let ac = time::after(delta * slot);
            let r = result_tx.clone();
            go!(move || r.send((slot, ac.recv().unwrap())).unwrap())
        })
        .collect();
    let mut order = Vec::new();
    let mut times = Vec::new();
    for _ in SLOTS {
        let (slot, t) = result.recv().unwrap();
        order.push(slot);
        times.push(t);
    }
    join_all(hs);
    if order.windows(2).any(|w| w[1] < w[0]) {
        return Err(format!("After calls returned out of order: {order:?}"));
    }
    for (i, t) in times.iter().enumerate() {
        let dt = t.saturating_duration_since(t0);
        let target = delta * order[i];
        let (lo, hi) = (target.saturating_sub(delta / 2), target + delta * 10);
        if dt < lo || dt > hi {
            return Err(format!(
                "After({target:?}) arrived at {dt:?}, expected [{lo:?},{hi:?}]"
            ));
        }
    }
    Ok(())
}

/// sleep_test.go TestAfterQueuing: up to five attempts, delta 20 ms, 70 ms, ...
pub fn time_after_queuing() {
    let mut errs = Vec::new();
    for i in 0..5u32 {
        let delta = ms(u64::from(20 + i * 50));
        match test_after_queuing(delta) {
            Ok(()) => return,
            Err(e) => errs.push(format!("attempt {i} failed: {e}")),
        }
    }
    panic!("{errs:#?}");
}

/// sleep_test.go TestTimerStopStress (reduced 10x): 100 goroutines each stop their AfterFunc
/// halfway; none may fire.
pub fn time_timer_stop_stress() {
    let fired = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let fired = fired.clone();
            go!(move || {
                let mut timer = time::after_func(ms(200), move || {
                    fired.fetch_add(1, SeqCst); // Go: t.Errorf("timer %d was not stopped", i)
                });
                time::sleep(ms(100));
                timer.stop();
            })
        })
        .collect();
    time::sleep(ms(300));
    join_all(hs);
    assert_eq!(fired.load(SeqCst), 0, "timers were not stopped");
}

/// sleep_test.go TestSleepZeroDeadlock: Sleep(0) between channel operations while another
/// goroutine keeps the scheduler busy (Go: runtime.GC; here: yields).
pub fn time_sleep_zero_deadlock() {
    let (c_tx, c) = chan::bounded::<bool>(0);
    let h = go!(move || {
        for _ in 0..100 {
            yield_now();
        }
        c_tx.send(true).unwrap();
    });
    for _ in 0..100 {
        time::sleep(Duration::ZERO);
        let (tmp_tx, tmp) = chan::bounded::<bool>(1);
        tmp_tx.send(true).unwrap();
        tmp.recv().unwrap();
    }
    c.recv().unwrap();
    join(h);
}

/// sleep_test.go testReset.
fn test_reset(d: Duration) -> Result<(), &'static str> {
    let mut t0 = Timer::new(2 * d);
    time::sleep(d);
    if !t0.reset(3 * d) {
        return Err("resetting unfired timer returned false");
    }
    time::sleep(2 * d);
    select! {
        recv(t0.c()) -> _ => return Err("timer fired early"),
        default => {}
    }
    time::sleep(2 * d);
    select! {
        recv(t0.c()) -> _ => {}
        default => return Err("reset timer did not fire"),
    }
    if t0.reset(ms(50)) {
        return Err("resetting expired timer returned true");
    }
    Ok(())
}

/// sleep_test.go TestReset: with units of 25, 75, 175, 375 ms until one passes.
pub fn time_reset() {
    let unit = ms(25);
    let mut errs = Vec::new();
    for d in [unit, 3 * unit, 7 * unit, 15 * unit] {
        match test_reset(d) {
            Ok(()) => return,
            Err(e) => errs.push(format!("{d:?}: {e}")),
        }
    }
    panic!("{errs:?}");
}

/// sleep_test.go TestOverflowSleep, without its never-ending Sleep(big) goroutine: an After of
/// the largest duration does not fire (nor disturb a short one), and a zero one (Go: negative)
/// fires at once.
pub fn time_overflow_sleep() {
    let big = Duration::MAX;
    select! {
        recv(time::after(big)) -> _ => panic!("big timeout fired"),
        recv(time::after(ms(25))) -> _ => {}
    }
    let mut t = Timer::new(big);
    assert!(t.stop(), "a timer of the largest duration was not pending");
    time::sleep(Duration::ZERO); // Returns immediately.
    select! {
        recv(time::after(Duration::ZERO)) -> _ => {}
        recv(time::after(Duration::from_secs(1))) -> _ => panic!("negative timeout didn't fire"),
    }
}

/// sleep_test.go TestZeroTimer (5,000 iterations instead of 1,000,000): NewTimer(0) fires.
pub fn time_zero_timer() {
    for _ in 0..5_000 {
        let s = Instant::now();
        let ti = Timer::new(Duration::ZERO);
        ti.c().recv().unwrap();
        let diff = s.elapsed();
        assert!(
            diff <= Duration::from_secs(2),
            "Expected time to get value from Timer channel in less than 2 sec, took {diff:?}"
        );
    }
}

/// sleep_test.go TestTimerModifiedEarlier: a timer moved from an hour to the past ten times
/// (drained with Go's `if !t.Stop() { <-t.C }`) still fires; 1000 rounds, each with a 10 s
/// deadline timer stopped at the end (Go defers the stops).
pub fn time_timer_modified_earlier() {
    let count = 1000;
    let mut fail = 0;
    let mut deadlines = Vec::with_capacity(count);
    for _ in 0..count {
        let mut timer = Timer::new(Duration::from_secs(3600));
        for _ in 0..10 {
            if !timer.stop() {
                timer.c().recv().unwrap();
            }
            timer.reset(Duration::ZERO); // Go: Reset(past), a negative duration
        }
        let deadline = Timer::new(Duration::from_secs(10));
        let now = Instant::now();
        select! {
            recv(timer.c()) -> _ => {
                let since = now.elapsed();
                if since > Duration::from_secs(8) {
                    fail += 1;
                }
            },
            recv(deadline.c()) -> _ => panic!("deadline expired"),
        }
        deadlines.push(deadline);
    }
    for mut d in deadlines {
        d.stop();
    }
    assert_eq!(fail, 0, "{fail} failures");
}

/// sleep_test.go TestAdjustTimers: 100 timers, each stepped in random order through fire, drain,
/// Reset to minutes, Stop, Reset(0), receive (within 750 ms).
pub fn time_adjust_timers() {
    let (mut rng, seed) = Rng::new();
    let mut timers: Vec<Option<Timer>> = (0..100).map(|_| None).collect();
    let mut states = vec![0; timers.len()];
    let mut indices: Vec<usize> = (0..timers.len()).collect();
    rng.shuffle(&mut indices);
    while !indices.is_empty() {
        let ii = rng.below(indices.len());
        let i = indices[ii];
        let state = states[i];
        states[i] += 1;
        if state == 0 {
            timers[i] = Some(Timer::new(Duration::ZERO));
            continue;
        }
        let timer = timers[i].as_mut().expect("created in state 0");
        match state {
            1 => {
                timer.c().recv().unwrap(); // Timer is now idle.
            }
            // Reset to various long durations, which we'll cancel.
            2 => assert!(
                !timer.reset(Duration::from_secs(60)),
                "seed={seed}: shouldn't be active (1)"
            ),
            4 => assert!(
                !timer.reset(Duration::from_secs(180)),
                "seed={seed}: shouldn't be active (3)"
            ),
            6 => assert!(
                !timer.reset(Duration::from_secs(120)),
                "seed={seed}: shouldn't be active (2)"
            ),
            // Stop and drain a long-duration timer.
            3 | 5 | 7 => {
                if !timer.stop() {
                    timer.c().recv().unwrap(); // Go logs "Stop returned false"
                }
            }
            // Start a short-duration timer we expect to select without blocking.
            8 => assert!(
                !timer.reset(Duration::ZERO),
                "seed={seed}: timer.Reset returned true"
            ),
            9 => {
                let now = Instant::now();
                timer.c().recv().unwrap();
                let dur = now.elapsed();
                assert!(
                    dur <= ms(750),
                    "seed={seed}: timer {i} took {dur:?} to complete"
                );
            }
            // Timer is done. Swap with tail and remove.
            10 => {
                indices.swap_remove(ii);
            }
            _ => unreachable!(),
        }
    }
}

/// tick_test.go TestTicker (fallback attempt 8 × 100 ms instead of 8 × 1 s): count/2 ticks of
/// delta, Reset(2 delta), count/2 more take 3 delta count/2 ± 30 %, and a stopped ticker stays
/// quiet.
pub fn time_ticker() {
    let mut errs = Vec::new();
    for (count, delta) in [(10u32, ms(20)), (8, ms(100))] {
        let mut ticker = Ticker::new(delta);
        let t0 = Instant::now();
        for _ in 0..count / 2 {
            ticker.c().recv().unwrap();
        }
        ticker.reset(delta * 2);
        for _ in count / 2..count {
            ticker.c().recv().unwrap();
        }
        ticker.stop();
        let dt = t0.elapsed();
        let target = 3 * delta * (count / 2);
        let slop = target * 3 / 10;
        if dt < target - slop || dt > target + slop {
            errs.push(format!(
                "{} {delta:?} ticks then {} {:?} ticks took {dt:?}, expected [{:?},{:?}]",
                count / 2,
                count / 2,
                delta * 2,
                target - slop,
                target + slop
            ));
            if dt > target + slop {
                // System may be overloaded; sleep a bit in the hopes it will recover.
                time::sleep(ms(500));
            }
            continue;
        }
        // Now test that the ticker stopped.
        time::sleep(2 * delta);
        select! {
            recv(ticker.c()) -> _ => {
                errs.push("Ticker did not shut down".to_owned());
                continue;
            },
            default => {}
        }
        // Test passed, so all done (Go logs the earlier errors).
        return;
    }
    panic!("saw {} errors: {errs:#?}", errs.len());
}

/// tick_test.go TestTeardown (short: 20 ms): make, receive from and stop a ticker three times.
pub fn time_teardown() {
    for _ in 0..3 {
        let mut ticker = Ticker::new(ms(20));
        ticker.c().recv().unwrap();
        ticker.stop();
    }
}

/// tick_test.go TestTick: Tick of a non-positive duration (zero here) is the nil channel.
pub fn time_tick() {
    let got = time::tick(Duration::ZERO);
    assert!(is_nil(&got), "Tick(0) is not the nil channel");
}

/// tick_test.go TestNewTickerLtZeroDuration (zero here: no negative durations): NewTicker panics.
pub fn time_new_ticker_zero_duration() {
    let r = catch_quietly(|| Ticker::new(Duration::ZERO));
    assert!(r.is_err(), "NewTicker(0) should have panicked");
}

/// tick_test.go TestTickerResetLtZeroDuration: Ticker.Reset(0) panics.
pub fn time_ticker_reset_zero_duration() {
    let mut tk = Ticker::new(Duration::from_secs(1));
    let r = catch_quietly(|| tk.reset(Duration::ZERO));
    assert!(r.is_err(), "Ticker.Reset(0) should have panicked");
    tk.stop();
}
