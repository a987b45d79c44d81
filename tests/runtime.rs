//! Goroutines: `go!`, `Builder`, `JoinHandle`, `Panicked`, `runtime::num_goroutines`,
//! `runtime::in_goroutine`, unjoined-panic logging and the runtime's one-time configuration.
//!
//! Ordering is done with channels; time is only a watchdog (`WATCHDOG`). Tests that read the
//! process-wide goroutine count take the exclusive side of `LOCK`, every other test the shared
//! side, so a count is never disturbed by a test running in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use goway::runtime::{self, AlreadyStarted, Config, ConfigError};
use goway::{Builder, chan, go};

mod common;
// `join` gives a goroutine's panic back: what most tests here are about.
use common::{WATCHDOG, exclusive, join_result as join, shared, wait_until};

/// The goroutine count once it has settled. A goroutine is still counted for a moment after its
/// result was delivered, so right after another test joined its goroutines the count may still
/// drop: wait until it has held still for 20 ms (at most 2 s).
fn baseline() -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = runtime::num_goroutines();
    let mut still = 0;
    while still < 20 && Instant::now() < deadline {
        goway::time::sleep(Duration::from_millis(1));
        let n = runtime::num_goroutines();
        if n == last {
            still += 1;
        } else {
            (last, still) = (n, 0);
        }
    }
    last
}

// ----- a `log` implementation that keeps every record ------------------------------------------

struct Capture;

#[derive(Debug, Clone)]
struct Rec {
    level: log::Level,
    target: String,
    text: String,
}

static RECORDS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());
static CAPTURE: Capture = Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        RECORDS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Rec {
                level: r.level(),
                target: r.target().to_owned(),
                text: r.args().to_string(),
            });
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Records whose text mentions `needle` (each test uses a unique goroutine name).
fn records_with(needle: &str) -> Vec<Rec> {
    RECORDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|r| r.text.contains(needle))
        .cloned()
        .collect()
}

// ----- go! and JoinHandle -----------------------------------------------------------------------

#[test]
fn go_returns_the_closure_value() {
    let _g = shared();
    let h = go!(|| 6 * 7);
    assert_eq!(join(h).unwrap(), 42);
    let s = String::from("moved");
    let h = go!(move || s + " in");
    assert_eq!(join(h).unwrap(), "moved in");
}

#[test]
fn join_from_another_goroutine() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<u32>(0);
    let inner = go!(move || rx.recv().unwrap() * 2);
    let outer = go!(move || join(inner).unwrap() + 1);
    tx.send(20).unwrap();
    assert_eq!(join(outer).unwrap(), 41);
}

#[test]
fn join_timeout_gives_the_handle_back_then_the_value() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<()>(0);
    let h = Builder::new()
        .name("slow")
        .spawn(move || {
            rx.recv().unwrap();
            "done"
        })
        .unwrap();
    let t = Instant::now();
    let h = match h.join_timeout(Duration::from_millis(20)) {
        Err(Ok(h)) => h,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(h.name(), Some("slow"));
    assert!(!h.is_finished());
    tx.send(()).unwrap();
    // A timeout too large for an Instant means "no timeout".
    match h.join_timeout(Duration::MAX) {
        Ok(v) => assert_eq!(v, "done"),
        Err(e) => panic!("expected the value, got {e:?}"),
    }
}

#[test]
fn join_timeout_returns_the_panic() {
    let _g = shared();
    let h = Builder::new()
        .name("jt-panic")
        .spawn(|| -> u8 { panic!("jt boom") })
        .unwrap();
    match h.join_timeout(WATCHDOG) {
        Err(Err(p)) => {
            assert_eq!(p.message(), "jt boom");
            assert_eq!(p.name(), Some("jt-panic"));
        }
        other => panic!("expected Err(Err(Panicked)), got {other:?}"),
    }
}

#[test]
fn is_finished_turns_true_when_the_goroutine_returns() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<()>(0);
    let h = go!(move || rx.recv().unwrap());
    assert!(!h.is_finished());
    tx.send(()).unwrap();
    wait_until("is_finished", WATCHDOG, || h.is_finished());
    join(h).unwrap();

    let h = go!(|| panic!("finished by panicking"));
    wait_until("is_finished after a panic", WATCHDOG, || h.is_finished());
    assert!(join(h).is_err());
}

#[test]
fn join_after_is_finished_does_not_wait() {
    let _g = shared();
    let h = go!(|| 9);
    wait_until("is_finished", WATCHDOG, || h.is_finished());
    // Like std's JoinHandle: once finished, the result is there.
    match h.join_timeout(Duration::ZERO) {
        Ok(v) => assert_eq!(v, 9),
        Err(e) => panic!("finished, yet join_timeout(0) gave {e:?}"),
    }
}

#[test]
fn join_handle_debug_shows_name_and_state() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<()>(0);
    let h = Builder::new()
        .name("dbg")
        .spawn(move || rx.recv().unwrap())
        .unwrap();
    let s = format!("{h:?}");
    assert!(s.contains("dbg") && s.contains("finished: false"), "{s}");
    tx.send(()).unwrap();
    join(h).unwrap();
}

// ----- Builder ------------------------------------------------------------------------------------

#[test]
fn builder_name_is_on_the_handle_and_the_panic() {
    let _g = shared();
    let h = Builder::new().name("worker-1").spawn(|| 1).unwrap();
    assert_eq!(h.name(), Some("worker-1"));
    assert_eq!(join(h).unwrap(), 1);

    let h = go!(|| 2);
    assert_eq!(h.name(), None);
    assert_eq!(join(h).unwrap(), 2);
}

#[test]
fn builder_big_stack_holds_a_large_array() {
    let _g = shared();
    const N: usize = 768 * 1024;
    let h = Builder::new()
        .name("big-stack")
        .stack_size(1024 * 1024)
        .spawn(|| {
            let mut buf = [0u8; N];
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            std::hint::black_box(&mut buf);
            buf.iter().map(|&b| u64::from(b)).sum::<u64>()
        })
        .unwrap();
    let want: u64 = (0..N).map(|i| (i % 251) as u64).sum();
    assert_eq!(join(h).unwrap(), want);
}

#[test]
fn builder_small_stack_runs() {
    let _g = shared();
    // Below the 4 KiB minimum: rounded up, still runs.
    let h = Builder::new().stack_size(1).spawn(|| 5).unwrap();
    assert_eq!(join(h).unwrap(), 5);
}

// Was a bug: may panics ("failed to alloc sys stack") when the OS refuses a stack, and
// Builder::spawn let that panic out and left num_goroutines() one too high. A size over the
// maximum is now refused before anything is mapped (tests/stack_size.rs checks that nothing
// is printed either).
#[cfg(target_pointer_width = "64")]
#[test]
fn builder_spawn_returns_err_for_a_stack_over_the_maximum() {
    let _g = exclusive();
    let before = baseline();
    // 1 PiB: more than the address space.
    let r = std::panic::catch_unwind(|| {
        Builder::new()
            .name("too-big")
            .stack_size(1 << 50)
            .spawn(|| ())
            .map(drop)
    });
    let r = r.expect("Builder::spawn panicked instead of returning Err");
    let e = r.expect_err("a 1 PiB stack cannot be mapped");
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let too_big = runtime::StackSizeError::from_io(&e).expect("a StackSizeError");
    assert_eq!(too_big.requested, 1 << 50);
    assert_eq!(too_big.max, runtime::max_stack_size());
    assert!(e.to_string().contains("over the maximum of"), "{e}");
    wait_until("num_goroutines back to its baseline", WATCHDOG, || {
        runtime::num_goroutines() <= before
    });
}

// ----- Panicked ---------------------------------------------------------------------------------

#[test]
fn a_str_panic_gives_its_message_and_payload_back() {
    let _g = shared();
    let p = join(go!(|| panic!("plain str"))).unwrap_err();
    assert_eq!(p.message(), "plain str");
    assert_eq!(p.name(), None);
    assert_eq!(p.to_string(), "goroutine panicked: plain str");
    assert!(format!("{p:?}").contains("plain str"));
    let payload = p.into_payload();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"plain str"));
}

#[test]
fn a_formatted_panic_names_its_goroutine_in_the_error() {
    let _g = shared();
    let h = Builder::new()
        .name("fmt")
        .spawn(|| -> () { panic!("code {}", 7) })
        .unwrap();
    let p = join(h).unwrap_err();
    assert_eq!(p.message(), "code 7");
    assert_eq!(p.name(), Some("fmt"));
    assert_eq!(p.to_string(), "goroutine 'fmt' panicked: code 7");
    let e: Box<dyn std::error::Error> = Box::new(p);
    assert_eq!(e.to_string(), "goroutine 'fmt' panicked: code 7");
}

#[test]
fn a_non_string_panic_keeps_its_payload_whole() {
    let _g = shared();
    #[derive(Debug, PartialEq)]
    struct Code(i32);
    let p = join(go!(|| std::panic::panic_any(Code(42)))).unwrap_err();
    assert_eq!(p.message(), "<non-string panic payload>");
    assert_eq!(
        p.into_payload().downcast::<Code>().ok().map(|b| *b),
        Some(Code(42))
    );

    let p = join(go!(|| std::panic::panic_any(String::from("owned")))).unwrap_err();
    assert_eq!(p.message(), "owned");
}

#[test]
fn panicked_payload_can_be_resumed() {
    let _g = shared();
    let p = join(go!(|| panic!("again"))).unwrap_err();
    let payload = p.into_payload();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        std::panic::resume_unwind(payload)
    }));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"again"));
}

#[test]
fn a_panic_ends_only_its_goroutine() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<i32>(0);
    let survivor = go!(move || rx.recv().unwrap() + 1);
    let p = join(go!(|| panic!("only me"))).unwrap_err();
    assert_eq!(p.message(), "only me");
    tx.send(1).unwrap();
    assert_eq!(join(survivor).unwrap(), 2);
}

// ----- unjoined panics are logged ---------------------------------------------------------------

#[test]
fn unjoined_panic_is_logged_when_the_handle_is_dropped_after_it() {
    let _g = shared();
    install_logger();
    let name = "log-after-finish";
    let h = Builder::new()
        .name(name)
        .spawn(|| panic!("lost panic one"))
        .unwrap();
    wait_until("the goroutine to finish", WATCHDOG, || h.is_finished());
    drop(h);
    wait_until("the log record", WATCHDOG, || {
        !records_with(name).is_empty()
    });
    let recs = records_with(name);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].level, log::Level::Error);
    assert_eq!(recs[0].target, "goway::runtime");
    assert!(recs[0].text.contains("lost panic one"), "{recs:?}");
}

#[test]
fn unjoined_panic_is_logged_when_the_handle_was_dropped_before_it() {
    let _g = shared();
    install_logger();
    let name = "log-detached";
    let (tx, rx) = chan::bounded::<()>(0);
    let h = Builder::new()
        .name(name)
        .spawn(move || {
            rx.recv().unwrap();
            panic!("lost panic two");
        })
        .unwrap();
    drop(h);
    tx.send(()).unwrap();
    wait_until("the log record", WATCHDOG, || {
        !records_with(name).is_empty()
    });
    let recs = records_with(name);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].level, log::Level::Error);
    assert!(recs[0].text.contains("lost panic two"), "{recs:?}");
}

#[test]
fn after_func_panic_is_logged_with_its_goroutine_name() {
    let _g = shared();
    install_logger();
    let _t = goway::time::after_func(Duration::from_millis(1), || panic!("after_func boom"));
    wait_until("the log record", WATCHDOG, || {
        !records_with("after_func boom").is_empty()
    });
    let recs = records_with("after_func boom");
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].level, log::Level::Error);
    assert!(recs[0].text.contains("time::after_func"), "{recs:?}");
}

#[test]
fn joined_panic_is_not_logged() {
    let _g = shared();
    install_logger();
    let name = "log-joined";
    let h = Builder::new()
        .name(name)
        .spawn(|| panic!("seen by join"))
        .unwrap();
    let p = join(h).unwrap_err();
    assert_eq!(p.message(), "seen by join");
    assert!(records_with(name).is_empty(), "{:?}", records_with(name));
}

// ----- num_goroutines, in_goroutine, yield_now --------------------------------------------------

#[test]
fn num_goroutines_counts_live_goroutines_and_returns_to_baseline() {
    let _g = exclusive();
    let base = baseline();
    const N: usize = 200;
    let (gate_tx, gate_rx) = chan::bounded::<()>(0);
    let (ready_tx, ready_rx) = chan::bounded::<()>(N);
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let gate = gate_rx.clone();
            let ready = ready_tx.clone();
            go!(move || {
                ready.send(()).unwrap();
                let _ = gate.recv();
            })
        })
        .collect();
    for _ in 0..N {
        ready_rx.recv_timeout(WATCHDOG).expect("goroutine started");
    }
    assert!(
        runtime::num_goroutines() >= base + N,
        "{} live, base {base}",
        runtime::num_goroutines()
    );
    gate_tx.close();
    for h in hs {
        join(h).unwrap();
    }
    // The count drops just after a goroutine delivered its result: poll.
    wait_until("num_goroutines back to its baseline", WATCHDOG, || {
        runtime::num_goroutines() <= base
    });
}

#[test]
fn num_goroutines_returns_to_baseline_after_panics() {
    let _g = exclusive();
    let base = baseline();
    let hs: Vec<_> = (0..50).map(|i| go!(move || panic!("p{i}"))).collect();
    for h in hs {
        assert!(join(h).is_err());
    }
    wait_until("num_goroutines back to its baseline", WATCHDOG, || {
        runtime::num_goroutines() <= base
    });
}

#[test]
fn in_goroutine_tells_goroutines_from_threads() {
    let _g = shared();
    assert!(!runtime::in_goroutine());
    assert!(join(go!(runtime::in_goroutine)).unwrap());
    let t = std::thread::spawn(runtime::in_goroutine);
    assert!(!t.join().unwrap());
    // A thread started from a goroutine is a plain thread again.
    let h = go!(|| std::thread::spawn(runtime::in_goroutine).join().unwrap());
    assert!(!join(h).unwrap());
}

#[test]
fn yield_now_returns_on_a_thread_and_in_a_goroutine() {
    let _g = shared();
    runtime::yield_now();
    let (tx, rx) = chan::bounded::<u32>(1);
    let h = go!(move || {
        let mut n = 0;
        for _ in 0..100 {
            runtime::yield_now();
            n += 1;
        }
        tx.send(n).unwrap();
    });
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(100));
    join(h).unwrap();
}

// ----- where goroutines are spawned from --------------------------------------------------------

#[test]
fn spawn_from_os_threads() {
    let _g = shared();
    let total = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let total = total.clone();
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..250)
                    .map(|i| {
                        let total = total.clone();
                        go!(move || {
                            total.fetch_add(1, Ordering::Relaxed);
                            t * 1000 + i
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| join(h).unwrap()).sum::<usize>()
            })
        })
        .collect();
    let sum: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let want: usize = (0..4)
        .map(|t| (0..250).map(|i| t * 1000 + i).sum::<usize>())
        .sum();
    assert_eq!(sum, want);
    assert_eq!(total.load(Ordering::Relaxed), 1000);
}

#[test]
fn spawn_from_a_goroutine() {
    let _g = shared();
    let h = go!(|| {
        let children: Vec<_> = (0..100u64).map(|i| go!(move || i * i)).collect();
        children.into_iter().map(|c| join(c).unwrap()).sum::<u64>()
    });
    assert_eq!(join(h).unwrap(), (0..100u64).map(|i| i * i).sum::<u64>());
}

/// A tree of goroutines `depth` levels deep with `fanout` children each; returns its size.
fn tree(depth: u32, fanout: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let kids: Vec<_> = (0..fanout)
        .map(|_| go!(move || tree(depth - 1, fanout)))
        .collect();
    1 + kids.into_iter().map(|k| join(k).unwrap()).sum::<u64>()
}

#[test]
fn nested_spawns_build_a_tree() {
    let _g = shared();
    // 1 + 3 + 9 + 27 + 81 + 243 goroutines.
    assert_eq!(join(go!(|| tree(5, 3))).unwrap(), 364);
}

#[test]
fn goroutines_and_threads_share_channels() {
    let _g = shared();
    let (tx, rx) = chan::bounded::<u64>(0);
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let tx = tx.clone();
            go!(move || {
                for i in 0..100 {
                    tx.send(p * 100 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = std::thread::spawn(move || rx.iter().sum::<u64>());
    for p in producers {
        join(p).unwrap();
    }
    assert_eq!(consumer.join().unwrap(), (0..400).sum::<u64>());
}

// ----- Config -----------------------------------------------------------------------------------

#[test]
fn config_apply_after_start_is_refused() {
    let _g = shared();
    join(go!(|| ())).unwrap();
    let r = Config::new().workers(1).stack_size(64 * 1024).apply();
    assert_eq!(r, Err(ConfigError::AlreadyStarted(AlreadyStarted)));
    assert!(AlreadyStarted.to_string().contains("already started"));
    // The defaults are still in force: goroutines keep running.
    assert_eq!(join(go!(|| 3)).unwrap(), 3);
}

/// The vendored may's park hook (vendor/may/PATCHES.md 8), which the server's held replies
/// rely on: it runs on the coroutine before each park, a park inside it does not run it
/// again, it stays set until replaced, and a thread has none.
#[test]
fn a_coroutines_park_hook_runs_before_each_park_and_not_inside_itself() {
    let _g = shared();
    use may::coroutine::{Coroutine, ParkHook};
    let noop: ParkHook = Arc::new(|| {});
    assert!(
        Coroutine::set_park_hook(Some(noop)).is_err(),
        "a thread has no park hook"
    );
    let (parked_tx, parked_rx) = chan::bounded::<()>(16);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let h = go!(move || {
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let hook: ParkHook = Arc::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
            // A park inside the hook: it must not run the hook again.
            may::coroutine::yield_now();
            let _ = parked_tx.try_send(());
        });
        assert!(matches!(Coroutine::set_park_hook(Some(hook)), Ok(None)));
        for _ in 0..2 {
            go_rx.recv().unwrap();
        }
        let twice = runs.load(Ordering::SeqCst);
        let old = Coroutine::set_park_hook(None);
        assert!(matches!(old, Ok(Some(_))), "the hook stays set");
        go_rx.recv().unwrap();
        (twice, runs.load(Ordering::SeqCst))
    });
    for _ in 0..2 {
        // The goroutine's receive parks (the channel is unbuffered and empty): the hook ran.
        parked_rx.recv_timeout(WATCHDOG).expect("the hook ran");
        go_tx.send_timeout((), WATCHDOG).unwrap();
    }
    go_tx.send_timeout((), WATCHDOG).unwrap();
    let (twice, after) = join(h).unwrap();
    assert_eq!(twice, 2, "once per park");
    assert_eq!(after, 2, "not after it was cleared");
}

/// Goroutines spawning in loops on every worker at once, beside a plain thread doing the
/// same, are paused while too many of the goroutines they spawned wait to start, and all go
/// on: every goroutine runs.
#[test]
fn goroutines_spawning_in_loops_at_once_all_finish() {
    let _g = shared();
    const SPAWNERS: usize = 4;
    const EACH: usize = 20_000;
    let ran = Arc::new(AtomicUsize::new(0));
    let spawn_each = |ran: Arc<AtomicUsize>| {
        move || {
            for _ in 0..EACH {
                let r = ran.clone();
                drop(go!(move || r.fetch_add(1, Ordering::Relaxed)));
            }
        }
    };
    let hs: Vec<_> = (0..SPAWNERS)
        .map(|_| go!(spawn_each(ran.clone())))
        .collect();
    let thread = std::thread::spawn(spawn_each(ran.clone()));
    for h in hs {
        join(h).unwrap();
    }
    common::join_thread(thread);
    wait_until("every goroutine to run", WATCHDOG, || {
        ran.load(Ordering::Relaxed) == (SPAWNERS + 1) * EACH
    });
}
