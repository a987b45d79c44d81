//! `goway::sync`: Go's sync rules (a `Mutex` and `RWMutex` exclude as Go's do, a `WaitGroup`
//! waits for every `Done`, `Once` runs once even under contention), then each type's API, from goroutines and plain threads in any mix.
//! (The worker pool and pipeline ports built on `Group` and contexts are in `context.rs`.)
//!
//! A section titled "Go program N" checks what program N of the set of Go programs the project
//! was checked against shows (see `tests/golang.rs`).
//!
//! No test sleeps to synchronise: hand-offs go through channels, and waits are bounded by
//! `WATCHDOG` so that a bug fails the test instead of hanging it. A `SHORT` wait only shows
//! that something does *not* happen. Every goroutine and thread a test starts is joined.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goway::chan::{self, RecvTimeoutError};
use goway::context::{self, ContextError};
use goway::go;
use goway::sync::{Cond, Group, Mutex, Once, OnceValue, RwLock, Semaphore, WaitGroup};

/// A short wait used to show that something does NOT happen.
const SHORT: Duration = Duration::from_millis(50);
/// Scales the loop counts of the contention tests.
const STRESS: usize = 1;

// ----- helpers ------------------------------------------------------------------------------

mod common;
use common::{WATCHDOG, join, join_thread, wait_until};

/// The message of a caught panic.
fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string>".to_owned()
    }
}

/// Number of waiters parked in `wg` (from its `Debug` output).
fn wg_waiters(wg: &WaitGroup) -> String {
    format!("{wg:?}")
}

// ----- Go program 29: WaitGroup zero wait, reuse, every waiter released -----------------

#[test]
fn waitgroup_zero_counter_wait_returns_at_once() {
    let wg = WaitGroup::new();
    wg.wait();
    wg.wait(); // "and again"
    assert!(wg.wait_timeout(Duration::ZERO));
}

#[test]
fn waitgroup_add_n_needs_n_dones() {
    let wg = WaitGroup::new();
    wg.add(3);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let (wg, go_rx) = (wg.clone(), go_rx.clone());
            go!(move || {
                go_rx.recv().unwrap();
                wg.done();
            })
        })
        .collect();
    for i in 0..3 {
        assert!(
            !wg.wait_timeout(Duration::ZERO),
            "released after {i} of 3 dones"
        );
        go_tx.send(()).unwrap();
    }
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(wg.count(), 0);
    hs.into_iter().for_each(join);
}

#[test]
fn waitgroup_is_reusable_and_blocks_while_counter_positive() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.wait();
    // Round two on the same group.
    wg.add(1);
    let (tx, released) = chan::bounded(0);
    let w = wg.clone();
    let h = go!(move || {
        w.wait();
        tx.send(true).unwrap();
    });
    assert_eq!(released.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    wg.done();
    assert_eq!(released.recv_timeout(WATCHDOG), Ok(true));
    join(h);
}

#[test]
fn waitgroup_releases_every_waiter() {
    let wg = WaitGroup::new();
    wg.add(1);
    let (tx, out) = chan::bounded(3);
    let mut hs = Vec::new();
    for _ in 0..3 {
        let (wg, tx) = (wg.clone(), tx.clone());
        hs.push(go!(move || {
            wg.wait();
            tx.send(1).unwrap();
        }));
    }
    // Two more waiters on plain threads.
    let mut ths = Vec::new();
    for _ in 0..2 {
        let (wg, tx) = (wg.clone(), tx.clone());
        ths.push(std::thread::spawn(move || {
            wg.wait();
            tx.send(1).unwrap();
        }));
    }
    drop(tx);
    wait_until("5 parked waiters", WATCHDOG, || {
        wg_waiters(&wg).contains("waiters: 5")
    });
    wg.done();
    let total: i32 = (0..5).map(|_| out.recv_timeout(WATCHDOG).unwrap()).sum();
    assert_eq!(total, 5);
    hs.into_iter().for_each(join);
    ths.into_iter().for_each(join_thread);
    assert!(wg_waiters(&wg).contains("waiters: 0"));
}

// ----- Go program 30: a negative counter panics with Go's message ------------------------

#[test]
fn waitgroup_negative_counter_panics_with_go_message() {
    const MSG: &str = "sync: negative WaitGroup counter";
    let wg = WaitGroup::new();
    let p = panic::catch_unwind(|| wg.done()).unwrap_err();
    assert_eq!(panic_text(p), MSG, "Done on zero");

    let wg2 = WaitGroup::new();
    wg2.add(1);
    wg2.done();
    let p = panic::catch_unwind(|| wg2.done()).unwrap_err();
    assert_eq!(panic_text(p), MSG, "extra Done");

    let wg3 = WaitGroup::new();
    let p = panic::catch_unwind(|| wg3.add(-1)).unwrap_err();
    assert_eq!(panic_text(p), MSG, "Add(-1)");
    let p = panic::catch_unwind(|| wg3.add(isize::MIN)).unwrap_err();
    assert_eq!(panic_text(p), MSG, "Add(MIN)");

    // The counter is left as it was, so the group still works.
    assert_eq!(wg3.count(), 0);
    wg3.add(1);
    wg3.done();
    wg3.wait();

    // "now uncaught": in a goroutine the panic ends that goroutine; join reports it.
    let wg4 = WaitGroup::new();
    let err = go!(move || wg4.done()).join_timeout(WATCHDOG).unwrap_err();
    assert_eq!(err.unwrap_err().message(), MSG);
}

#[test]
fn waitgroup_counter_overflow_panics() {
    let wg = WaitGroup::new();
    wg.add(i32::MAX as isize);
    let p = panic::catch_unwind(|| wg.add(1)).unwrap_err();
    assert_eq!(panic_text(p), "sync: WaitGroup counter overflow");
    assert_eq!(wg.count(), i32::MAX as usize);
    wg.add(-(i32::MAX as isize));
    wg.wait();
}

#[test]
fn waitgroup_mixed_goroutines_and_threads() {
    let wg = WaitGroup::new();
    let n = AtomicUsize::new(0);
    let n = Arc::new(n);
    wg.add(200);
    let mut ths = Vec::new();
    for t in 0..4 {
        let (wg, n) = (wg.clone(), n.clone());
        ths.push(std::thread::spawn(move || {
            for i in 0..50 {
                if (t + i) % 2 == 0 {
                    n.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                } else {
                    let (wg, n) = (wg.clone(), n.clone());
                    go!(move || {
                        n.fetch_add(1, Ordering::SeqCst);
                        wg.done();
                    });
                }
            }
        }));
    }
    // Wait from a goroutine and from this thread at once.
    let w = wg.clone();
    let h = go!(move || w.wait());
    assert!(wg.wait_timeout(WATCHDOG));
    join(h);
    assert_eq!(n.load(Ordering::SeqCst), 200);
    ths.into_iter().for_each(join_thread);
}

#[test]
fn waitgroup_ten_thousand_goroutines() {
    let wg = WaitGroup::new();
    let sum = Arc::new(AtomicUsize::new(0));
    for i in 0..10_000 {
        wg.add(1);
        let (wg, sum) = (wg.clone(), sum.clone());
        go!(move || {
            sum.fetch_add(i, Ordering::Relaxed);
            wg.done();
        });
    }
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(sum.load(Ordering::Relaxed), (0..10_000).sum::<usize>());
}

#[test]
fn waitgroup_wait_timeout_withdraws_cleanly() {
    let wg = WaitGroup::new();
    wg.add(1);
    assert!(!wg.wait_timeout(Duration::from_millis(5)));
    assert!(wg_waiters(&wg).contains("waiters: 0"), "{wg:?}");
    wg.done();
    assert!(wg.wait_timeout(Duration::from_millis(5)));
}

#[test]
fn waitgroup_go_calls_done_even_on_panic() {
    let wg = WaitGroup::new();
    let h = wg.go(|| panic!("worker failed"));
    let ok = wg.go(|| 5);
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(h.join().unwrap_err().message(), "worker failed");
    assert_eq!(join(ok), 5);
}

#[test]
fn waitgroup_add_guard_releases_the_wait_when_its_goroutine_panics() {
    // In Go a panic ends the process; here it ends its goroutine, so a bare add(1) ... done()
    // pair would leave wait() blocked forever. The guard is dropped by the unwind.
    let wg = WaitGroup::new();
    let mut workers = Vec::new();
    for i in 0..4 {
        let done = wg.add_guard();
        workers.push(go!(move || {
            let _done = done;
            if i % 2 == 0 {
                panic!("worker {i} failed");
            }
            i
        }));
    }
    // And from a plain thread.
    let done = wg.add_guard();
    let thread = std::thread::spawn(move || {
        let _done = done;
        panic!("thread failed");
    });
    assert!(
        wg.wait_timeout(WATCHDOG),
        "a panicking task kept the wait blocked"
    );
    let failed = workers
        .into_iter()
        .map(|h| h.join())
        .filter(|r| r.is_err())
        .count();
    assert_eq!(failed, 2);
    assert!(thread.join().is_err());
    assert_eq!(wg.count(), 0);
}

// ----- Go program 31: Mutex: no lost updates, one holder, TryLock ------------------------

#[test]
fn mutex_counter_no_lost_updates_one_holder() {
    let mu = Arc::new(Mutex::new(0u64));
    let inside = Arc::new(AtomicI32::new(0));
    let max_inside = Arc::new(AtomicI32::new(0));
    let wg = WaitGroup::new();
    for _ in 0..50 {
        let (mu, inside, max_inside) = (mu.clone(), inside.clone(), max_inside.clone());
        wg.go(move || {
            for _ in 0..2000 * STRESS {
                let mut g = mu.lock();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_inside.fetch_max(n, Ordering::SeqCst);
                *g += 1;
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(*mu.lock(), 100_000 * STRESS as u64);
    assert_eq!(max_inside.load(Ordering::SeqCst), 1);

    let g = mu.lock();
    assert!(mu.try_lock().is_none(), "TryLock while held");
    drop(g);
    let g = mu.try_lock();
    assert!(g.is_some(), "TryLock while free");
}

#[test]
fn mutex_threads_and_goroutines_contend() {
    let mu = Arc::new(Mutex::new(Vec::new()));
    let wg = WaitGroup::new();
    let mut ths = Vec::new();
    for t in 0..3 {
        let mu = mu.clone();
        ths.push(std::thread::spawn(move || {
            for i in 0..1000 {
                mu.lock().push(t * 10_000 + i);
            }
        }));
    }
    for t in 3..6 {
        let mu = mu.clone();
        wg.go(move || {
            for i in 0..1000 {
                mu.lock().push(t * 10_000 + i);
            }
        });
    }
    assert!(wg.wait_timeout(WATCHDOG));
    ths.into_iter().for_each(join_thread);
    let mut v = mu.lock().clone();
    assert_eq!(v.len(), 6000);
    v.sort_unstable();
    v.dedup();
    assert_eq!(v.len(), 6000);
}

#[test]
fn mutex_guard_held_across_a_park_and_unlocked_elsewhere() {
    let mu = Arc::new(Mutex::new(0));
    let (tx, rx) = chan::bounded::<()>(0);
    let (locked_tx, locked_rx) = chan::bounded::<()>(0);
    let m = mu.clone();
    let holder = go!(move || {
        let mut g = m.lock();
        locked_tx.send(()).unwrap();
        rx.recv().unwrap(); // parks while holding the lock
        *g += 1;
    });
    locked_rx.recv_timeout(WATCHDOG).unwrap();
    assert!(mu.try_lock().is_none());
    let m = mu.clone();
    let waiter = go!(move || *m.lock() * 10);
    tx.send(()).unwrap();
    join(holder);
    assert_eq!(join(waiter), 10);

    // A guard moved to another goroutine unlocks there (Go allows unlocking elsewhere).
    let g = Arc::new(Mutex::new(1));
    let guard_owner = g.clone();
    let guard = guard_owner.lock();
    std::thread::scope(|s| {
        s.spawn(move || drop(guard));
    });
    assert!(g.try_lock().is_some());
}

#[test]
fn mutex_panic_while_locked_unlocks_without_poisoning() {
    let mu = Arc::new(Mutex::new(1));
    let m = mu.clone();
    let r = go!(move || {
        let mut g = m.lock();
        *g = 2;
        panic!("inside");
    })
    .join_timeout(WATCHDOG);
    assert!(matches!(r, Err(Err(_))));
    assert_eq!(*mu.lock(), 2, "the data stays as the panic left it");
    assert!(!mu.is_locked());
}

#[test]
fn mutex_waiter_is_not_starved_by_a_busy_thread() {
    // A thread relocks in a tight loop; a goroutine must still get the lock (Go's starvation
    // mode hands it over after 1 ms).
    let mu = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let (m, s) = (mu.clone(), stop.clone());
    let hog = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            *m.lock() += 1;
        }
    });
    let m = mu.clone();
    let got = go!(move || {
        for _ in 0..100 {
            *m.lock() += 1;
        }
    });
    join(got);
    stop.store(true, Ordering::Relaxed);
    join_thread(hog);
}

#[test]
fn mutex_debug_shows_the_data_unless_locked_and_accessors_give_it_back() {
    let mut m = Mutex::new(String::from("a"));
    m.get_mut().push('b');
    assert_eq!(format!("{m:?}"), r#"Mutex { data: "ab", parked: 0 }"#);
    {
        let g = m.lock();
        assert_eq!(format!("{g}"), "ab");
        assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, parked: 0 }");
    }
    assert_eq!(m.into_inner(), "ab");
    let d: Mutex<u8> = Mutex::default();
    assert_eq!(*d.lock(), 0);
    assert_eq!(*Mutex::from(3).lock(), 3);
}

// ----- RwLock ----------------------------------------------------------------------------------

#[test]
fn rwlock_readers_share() {
    let l = Arc::new(RwLock::new(7));
    let wg = WaitGroup::new();
    wg.add(4);
    let (tx, rx) = chan::bounded(4);
    let mut hs = Vec::new();
    for _ in 0..4 {
        let (l, wg, tx) = (l.clone(), wg.clone(), tx.clone());
        hs.push(go!(move || {
            let g = l.read();
            wg.done();
            // All four are inside at once: each waits for the others while reading.
            assert!(wg.wait_timeout(WATCHDOG));
            tx.send(*g).unwrap();
        }));
    }
    let sum: i32 = (0..4).map(|_| rx.recv_timeout(WATCHDOG).unwrap()).sum();
    assert_eq!(sum, 28);
    hs.into_iter().for_each(join);
}

#[test]
fn rwlock_writer_excludes_and_keeps_invariant() {
    // Writers move value between two cells; readers check the total never changes.
    let l = Arc::new(RwLock::new((1000i64, 0i64)));
    let bad = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for w in 0..4 {
        let l = l.clone();
        wg.go(move || {
            for i in 0..500 * STRESS {
                let mut g = l.write();
                let d = ((w + i) % 7) as i64 - 3;
                g.0 -= d;
                g.1 += d;
            }
        });
    }
    let mut ths = Vec::new();
    for _ in 0..2 {
        let (l, bad) = (l.clone(), bad.clone());
        ths.push(std::thread::spawn(move || {
            for _ in 0..2000 {
                let g = l.read();
                if g.0 + g.1 != 1000 {
                    bad.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for _ in 0..4 {
        let (l, bad) = (l.clone(), bad.clone());
        wg.go(move || {
            for _ in 0..2000 {
                let g = l.read();
                if g.0 + g.1 != 1000 {
                    bad.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    assert!(wg.wait_timeout(WATCHDOG));
    ths.into_iter().for_each(join_thread);
    assert_eq!(bad.load(Ordering::SeqCst), 0);
    let g = l.read();
    assert_eq!(g.0 + g.1, 1000);
}

#[test]
fn rwlock_waiting_writer_blocks_new_readers() {
    // Go's rule: once a writer waits, new readers wait behind it.
    let l = Arc::new(RwLock::new(0));
    let first_reader = l.read();
    let (order_tx, order_rx) = chan::unbounded();
    let (l2, o) = (l.clone(), order_tx.clone());
    let writer = go!(move || {
        *l2.write() += 1;
        o.send("writer").unwrap();
    });
    wait_until("writer parked", WATCHDOG, || l.try_read().is_none());
    let (l3, o) = (l.clone(), order_tx);
    let late_reader = go!(move || {
        let v = *l3.read();
        o.send("reader").unwrap();
        v
    });
    assert_eq!(order_rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    drop(first_reader);
    assert_eq!(order_rx.recv_timeout(WATCHDOG), Ok("writer"));
    assert_eq!(order_rx.recv_timeout(WATCHDOG), Ok("reader"));
    assert_eq!(join(late_reader), 1, "the late reader saw the write");
    join(writer);
}

#[test]
fn rwlock_readers_queued_during_a_write_go_before_the_next_writer() {
    let l = Arc::new(RwLock::new(Vec::<&str>::new()));
    let w = l.write();
    let (l1, l2) = (l.clone(), l.clone());
    let reader = go!(move || l1.read().len());
    wait_until("reader parked", WATCHDOG, || {
        format!("{l:?}").contains("parked_readers: 1")
    });
    let writer2 = go!(move || l2.write().push("second writer"));
    wait_until("writer parked", WATCHDOG, || {
        format!("{l:?}").contains("parked_writers: 1")
    });
    drop(w);
    // Go's rule: the readers that queued during the write go before the next writer.
    assert_eq!(join(reader), 0, "the reader ran before the second writer");
    join(writer2);
    assert_eq!(l.read().len(), 1);
    assert_eq!(
        format!("{l:?}"),
        r#"RwLock { data: ["second writer"], parked_readers: 0, parked_writers: 0 }"#
    );
}

#[test]
fn rwlock_try_forms_fail_only_where_a_lock_would_wait() {
    let mut l = RwLock::new(1);
    {
        let r = l.read();
        assert!(l.try_read().is_some());
        assert!(l.try_write().is_none());
        assert_eq!(
            format!("{l:?}"),
            "RwLock { data: 1, parked_readers: 0, parked_writers: 0 }"
        );
        drop(r);
    }
    {
        let _w = l.write();
        assert!(l.try_read().is_none());
        assert!(l.try_write().is_none());
        assert_eq!(
            format!("{l:?}"),
            "RwLock { data: <locked>, parked_readers: 0, parked_writers: 0 }"
        );
    }
    *l.get_mut() = 5;
    assert_eq!(l.into_inner(), 5);
}

#[test]
fn rwlock_panic_in_writer_releases() {
    let l = Arc::new(RwLock::new(0));
    let l2 = l.clone();
    let r = go!(move || {
        let _g = l2.write();
        panic!("writer");
    })
    .join_timeout(WATCHDOG);
    assert!(matches!(r, Err(Err(_))));
    assert!(l.try_write().is_some());
}

// ----- Go program 34: Once under contention ------------------------------------------------

#[test]
fn once_runs_once_and_every_caller_sees_it() {
    let once = Arc::new(Once::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let initialized = Arc::new(AtomicBool::new(false));
    let saw_init = Arc::new(AtomicUsize::new(0));
    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let wg = WaitGroup::new();
    for _ in 0..100 {
        let (once, calls, initialized, saw_init, start_rx) = (
            once.clone(),
            calls.clone(),
            initialized.clone(),
            saw_init.clone(),
            start_rx.clone(),
        );
        wg.go(move || {
            let _ = start_rx.recv();
            once.call_once(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                // Part of the rule under test: the others must wait this long.
                goway::time::sleep(Duration::from_millis(30));
                initialized.store(true, Ordering::Relaxed);
            });
            if initialized.load(Ordering::Relaxed) {
                saw_init.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    start_tx.close();
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "f calls");
    assert_eq!(
        saw_init.load(Ordering::SeqCst),
        100,
        "callers that saw initialization"
    );
    once.call_once(|| panic!("WRONG: ran twice"));
    assert!(once.is_done());
}

#[test]
fn once_from_threads_and_goroutines() {
    let once = Arc::new(Once::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut ths = Vec::new();
    let wg = WaitGroup::new();
    for i in 0..8 {
        let (once, calls) = (once.clone(), calls.clone());
        let f = move || {
            once.call_once(|| {
                calls.fetch_add(1, Ordering::SeqCst);
            })
        };
        if i % 2 == 0 {
            ths.push(std::thread::spawn(f));
        } else {
            wg.go(f);
        }
    }
    assert!(wg.wait_timeout(WATCHDOG));
    ths.into_iter().for_each(join_thread);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn once_panicking_function_counts_as_done() {
    let once = Arc::new(Once::new());
    let (entered_tx, entered_rx) = chan::bounded::<()>(0);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let o = once.clone();
    let runner = go!(move || {
        o.call_once(|| {
            entered_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            panic!("init failed");
        })
    });
    entered_rx.recv_timeout(WATCHDOG).unwrap();
    // A concurrent caller parks until the function finishes, then returns without running.
    let o = once.clone();
    let waiter = go!(move || o.call_once(|| panic!("WRONG: second run")));
    assert!(
        waiter.join_timeout(SHORT).is_err_and(|r| r.is_ok()),
        "waiter returned early"
    );
    go_tx.send(()).unwrap();
    let r = runner.join_timeout(WATCHDOG).unwrap_err().unwrap_err();
    assert_eq!(r.message(), "init failed");
    assert!(once.is_done());
    once.call_once(|| panic!("WRONG: ran after a panic"));
}

#[test]
fn once_value_computes_once_under_contention() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let v = Arc::new(OnceValue::new(move || {
        c.fetch_add(1, Ordering::SeqCst);
        goway::time::sleep(Duration::from_millis(10));
        vec![1, 2, 3]
    }));
    assert_eq!(v.try_get(), None);
    let wg = WaitGroup::new();
    for _ in 0..20 {
        let v = v.clone();
        wg.go(move || assert_eq!(v.get().iter().sum::<i32>(), 6));
    }
    assert!(wg.wait_timeout(WATCHDOG));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(v.len(), 3); // Deref
    assert_eq!(format!("{v:?}"), "OnceValue { value: [1, 2, 3] }");
}

#[test]
fn once_value_panicking_initializer() {
    let v: OnceValue<u32, _> = OnceValue::new(|| panic!("cannot init"));
    let first = panic::catch_unwind(AssertUnwindSafe(|| *v.get())).unwrap_err();
    assert_eq!(panic_text(first), "cannot init");
    let later = panic::catch_unwind(AssertUnwindSafe(|| *v.get())).unwrap_err();
    assert_eq!(panic_text(later), "sync: OnceValue function panicked");
}

// ----- Cond ------------------------------------------------------------------------------------

#[test]
fn cond_signal_hands_items_to_consumers() {
    let state = Arc::new((Mutex::new(Vec::<u32>::new()), Cond::new()));
    let (got_tx, got_rx) = chan::unbounded();
    let mut hs = Vec::new();
    for _ in 0..4 {
        let (state, got_tx) = (state.clone(), got_tx.clone());
        hs.push(go!(move || {
            for _ in 0..25 {
                let (m, c) = &*state;
                let mut q = c.wait_while(m.lock(), |q| q.is_empty());
                let v = q.pop().unwrap();
                got_tx.send(v).unwrap();
            }
        }));
    }
    let producer_state = state.clone();
    let producer = std::thread::spawn(move || {
        for i in 0..100 {
            let (m, c) = &*producer_state;
            m.lock().push(i);
            c.signal();
        }
    });
    let mut all: Vec<u32> = (0..100)
        .map(|_| got_rx.recv_timeout(WATCHDOG).unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    join_thread(producer);
    hs.into_iter().for_each(join);
}

#[test]
fn cond_broadcast_wakes_every_waiter() {
    // (ready flag, number of waiters inside `wait`)
    let state = Arc::new((Mutex::new((false, 0usize)), Cond::new()));
    let mut hs = Vec::new();
    for _ in 0..5 {
        let state = state.clone();
        hs.push(go!(move || {
            let (m, c) = &*state;
            let mut g = m.lock();
            g.1 += 1;
            while !g.0 {
                g = c.wait(g);
            }
        }));
    }
    let mut ths = Vec::new();
    for _ in 0..2 {
        let state = state.clone();
        ths.push(std::thread::spawn(move || {
            let (m, c) = &*state;
            let mut g = m.lock();
            g.1 += 1;
            while !g.0 {
                g = c.wait(g);
            }
        }));
    }
    // Each waiter bumped the count under the lock before waiting, and `wait` queues before
    // unlocking, so once we see 7 under the lock all 7 are queued.
    wait_until("7 waiters", WATCHDOG, || state.0.lock().1 == 7);
    state.0.lock().0 = true;
    state.1.broadcast();
    hs.into_iter().for_each(join);
    ths.into_iter().for_each(join_thread);
}

#[test]
fn cond_wait_timeout_relocks_and_reports() {
    let m = Mutex::new(5);
    let c = Cond::new();
    let t = Instant::now();
    let (g, timed_out) = c.wait_timeout(m.lock(), Duration::from_millis(20));
    assert!(timed_out);
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(*g, 5);
    assert!(m.try_lock().is_none(), "relocked");
    drop(g);
    assert_eq!(format!("{c:?}"), "Cond { waiters: 0 }");
    c.signal();
    c.broadcast();
}

#[test]
fn cond_signal_before_timeout_is_not_lost() {
    let state = Arc::new((Mutex::new(false), Cond::new()));
    let s = state.clone();
    let waiter = go!(move || {
        let (m, c) = &*s;
        let mut g = m.lock();
        while !*g {
            let (g2, timed_out) = c.wait_timeout(g, WATCHDOG);
            assert!(!timed_out);
            g = g2;
        }
    });
    wait_until("waiter queued", WATCHDOG, || {
        format!("{:?}", state.1) == "Cond { waiters: 1 }"
    });
    *state.0.lock() = true;
    state.1.signal();
    join(waiter);
}

// ----- Semaphore -------------------------------------------------------------------------------

#[test]
fn semaphore_bounds_concurrency() {
    let sem = Arc::new(Semaphore::new(3));
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for _ in 0..30 {
        let (sem, inside, max_inside) = (sem.clone(), inside.clone(), max_inside.clone());
        wg.go(move || {
            for _ in 0..20 {
                let _p = sem.acquire();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_inside.fetch_max(n, Ordering::SeqCst);
                goway::runtime::yield_now();
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
    assert!(wg.wait_timeout(WATCHDOG));
    assert!(max_inside.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_try_timeout_forget_add() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().unwrap();
    let b = sem.acquire();
    assert!(sem.try_acquire().is_none());
    let t = Instant::now();
    assert!(sem.acquire_timeout(Duration::from_millis(20)).is_none());
    assert!(t.elapsed() >= Duration::from_millis(20));
    drop(a);
    assert_eq!(
        sem.acquire_timeout(Duration::from_millis(20))
            .unwrap()
            .permits(),
        1
    );
    b.forget();
    assert_eq!(sem.available_permits(), 1);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(format!("{sem:?}"), "Semaphore { permits: 3, waiters: 0 }");
}

#[test]
fn semaphore_is_fifo_for_weighted_requests() {
    // A queued request for 3 is not overtaken by later requests for 1.
    let sem = Arc::new(Semaphore::new(2));
    let held = sem.acquire();
    let s = sem.clone();
    let big = go!(move || s.acquire_many(3).permits());
    wait_until("big request queued", WATCHDOG, || {
        format!("{sem:?}").contains("waiters: 1")
    });
    assert!(
        sem.try_acquire().is_none(),
        "one permit is free, but the big request is first"
    );
    drop(held);
    assert!(sem.try_acquire().is_none());
    sem.add_permits(1);
    assert_eq!(join(big), 3);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_waiter_that_gives_up_lets_the_next_through() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s = sem.clone();
    // First in line wants 2 and gives up after 30 ms ...
    let big = go!(move || s
        .acquire_many_ctx(2, &{
            let (ctx, c) = context::with_timeout(&context::background(), Duration::from_millis(30));
            c.detach();
            ctx
        })
        .map(|p| p.permits()));
    wait_until("big queued", WATCHDOG, || {
        format!("{sem:?}").contains("waiters: 1")
    });
    // ... the second wants 1, which is free once `held` is dropped, but must wait its turn.
    let s = sem.clone();
    let small = go!(move || s.acquire_timeout(WATCHDOG).map(|p| p.permits()));
    wait_until("small queued", WATCHDOG, || {
        format!("{sem:?}").contains("waiters: 2")
    });
    drop(held);
    assert_eq!(join(big), Err(ContextError::DeadlineExceeded));
    assert_eq!(join(small), Some(1));
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_acquire_ctx_cancel_and_done_context() {
    let sem = Arc::new(Semaphore::new(0));
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (s, c) = (sem.clone(), ctx.clone());
    let h = go!(move || s.acquire_ctx(&c).map(|p| p.permits()));
    wait_until("queued", WATCHDOG, || {
        format!("{sem:?}").contains("waiters: 1")
    });
    // It queues first, then registers with the context.
    wait_until("registered with the context", WATCHDOG, || {
        ctx.registered_children() == 1
    });
    cancel.cancel();
    assert_eq!(join(h), Err(ContextError::Canceled));
    assert_eq!(format!("{sem:?}"), "Semaphore { permits: 0, waiters: 0 }");
    // A context done already takes nothing, even with permits free (Go's Acquire).
    sem.add_permits(1);
    assert_eq!(sem.acquire_ctx(&ctx).unwrap_err(), ContextError::Canceled);
    assert_eq!(sem.available_permits(), 1);
    // Granted: the registration with the context is withdrawn.
    let (ctx2, _c2) = context::with_cancel(&context::background());
    let p = sem.acquire_ctx(&ctx2).unwrap();
    assert_eq!(ctx2.registered_children(), 0);
    drop(p);
}

#[test]
fn semaphore_owned_permits_move_into_goroutines_and_threads() {
    let sem = Arc::new(Semaphore::new(2));
    let a = sem.acquire_owned();
    let b = sem.try_acquire_owned().unwrap();
    assert!(sem.try_acquire_owned().is_none());
    join(go!(move || drop(a)));
    join_thread(std::thread::spawn(move || drop(b)));
    assert_eq!(sem.available_permits(), 2);
}

// ----- Group (errgroup) ------------------------------------------------------------------------

#[test]
fn group_wait_returns_first_error_and_cancels_context() {
    let (g, ctx) = Group::<String>::with_context(&context::background());
    let (fail_tx, fail_rx) = chan::bounded::<()>(0);
    for i in 0..5 {
        let ctx = ctx.clone();
        let fail_rx = fail_rx.clone();
        g.go(move || {
            if i == 3 {
                let _ = fail_rx.recv();
                return Err(format!("worker {i}"));
            }
            // The others run until the group's context is cancelled.
            match ctx.done().recv_timeout(WATCHDOG) {
                Err(RecvTimeoutError::Closed) => Ok(()),
                _ => Err("not cancelled".into()),
            }
        });
    }
    assert_eq!(ctx.err(), None);
    drop(fail_tx);
    assert_eq!(g.wait(), Err("worker 3".to_string()));
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    assert_eq!(g.wait(), Ok(()), "the error is handed out once");
}

#[test]
fn group_only_the_first_error_is_kept() {
    let g = Group::<usize>::new();
    let (tx, rx) = chan::bounded::<()>(0);
    g.go(move || {
        drop(rx);
        Err(1)
    });
    let _ = tx.send(()); // returns once the first goroutine dropped its receiver
    let _ = g.wait();
    g.go(|| Err(2));
    assert_eq!(g.wait(), Ok(()), "a group keeps only its first failure");
}

#[test]
fn group_success_cancels_context_on_wait() {
    let (g, ctx) = Group::<()>::with_context(&context::background());
    for _ in 0..10 {
        g.go(|| Ok(()));
    }
    assert_eq!(g.wait(), Ok(()));
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
}

#[test]
fn group_limit_bounds_running_goroutines() {
    let g = Group::<()>::new();
    g.set_limit(3);
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    for _ in 0..40 {
        let (inside, max_inside) = (inside.clone(), max_inside.clone());
        g.go(move || {
            let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(n, Ordering::SeqCst);
            goway::runtime::yield_now();
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        });
    }
    g.wait().unwrap();
    assert!(max_inside.load(Ordering::SeqCst) <= 3);
    assert!(max_inside.load(Ordering::SeqCst) >= 1);
}

#[test]
fn group_try_go_declines_when_full_and_set_limit_rules() {
    let g = Group::<()>::new();
    g.set_limit(1);
    assert_eq!(
        format!("{g:?}"),
        "Group { active: 0, failed: false, limit: Some(1) }"
    );
    let (tx, rx) = chan::bounded::<()>(0);
    assert!(g.try_go(move || {
        let _ = rx.recv();
        Ok(())
    }));
    assert!(!g.try_go(|| Ok(())));
    let p = panic::catch_unwind(AssertUnwindSafe(|| g.set_limit(5))).unwrap_err();
    assert_eq!(
        panic_text(p),
        "errgroup: modify limit while 1 goroutines in the group are still active"
    );
    drop(tx);
    g.wait().unwrap();
    g.set_limit(usize::MAX); // no limit
    for _ in 0..5 {
        assert!(g.try_go(|| Ok(())));
    }
    g.wait().unwrap();
}

#[test]
fn group_panic_cancels_and_is_reraised_by_wait() {
    let (g, ctx) = Group::<()>::with_context(&context::background());
    let c = ctx.clone();
    g.go(move || {
        // Finishes once the panic below cancels the context.
        c.done().recv_timeout(WATCHDOG).unwrap_err();
        Ok(())
    });
    g.go(|| panic!("worker exploded"));
    let p = panic::catch_unwind(AssertUnwindSafe(|| g.wait())).unwrap_err();
    assert_eq!(panic_text(p), "worker exploded");
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
}

#[test]
fn group_used_from_threads_and_nested_goroutines() {
    let g = Group::<String>::new();
    let total = Arc::new(AtomicUsize::new(0));
    let mut ths = Vec::new();
    for _ in 0..3 {
        let (g, total) = (g.clone(), total.clone());
        ths.push(std::thread::spawn(move || {
            for _ in 0..10 {
                let (g2, total) = (g.clone(), total.clone());
                g.go(move || {
                    // A goroutine of the group starts another one in it.
                    let t = total.clone();
                    g2.go(move || {
                        t.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    });
                    total.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            }
        }));
    }
    ths.into_iter().for_each(join_thread);
    let waited = std::thread::spawn(move || g.wait());
    assert_eq!(join_thread(waited), Ok(()));
    assert_eq!(total.load(Ordering::SeqCst), 60);
}
