//! With one worker thread, waiting on each `goway::sync` primitive (and on a context) parks the
//! goroutine and lets the others run.
//!
//! The proof, for each primitive: goroutine B spawns A, sets `entering`, then waits on the
//! primitive. With a single worker, A can only run once B gives the worker up, and B's only
//! point of doing so after setting `entering` is inside the wait. So when A runs and sees
//! `entering` set, B is parked inside the wait and the worker thread is free. A then releases
//! the primitive and B finishes. Had the wait blocked the thread, A would never run and the
//! watchdog would fail the test. (If spawning A ever yielded the worker before B set the flag,
//! A would report the run as inconclusive, and the test fails rather than pass vacuously.)
//!
//! The runtime is configured once, process-wide (each `tests/*.rs` is its own process).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use goway::chan;
use goway::context::{self, ContextError};
use goway::go;
use goway::sync::{Cond, Group, Mutex, Once, RwLock, Semaphore, WaitGroup};

mod common;
use common::WATCHDOG;

fn one_worker() {
    let _ = goway::runtime::Config::new().workers(1).apply();
    assert_eq!(
        may::config().get_workers(),
        1,
        "the runtime must have one worker"
    );
}

fn join<T>(h: goway::JoinHandle<T>) -> T {
    match h.join_timeout(WATCHDOG) {
        Ok(v) => v,
        Err(Ok(_)) => panic!("goroutine did not finish within {WATCHDOG:?}: the worker is blocked"),
        Err(Err(p)) => panic!("goroutine panicked: {p}"),
    }
}

/// Runs the proof described in the module docs. `wait` is B's wait on the primitive;
/// `release` is what A does to end it. Returns what `wait` returned.
fn prove_parks<W, R, T>(wait: W, release: R) -> T
where
    W: FnOnce() -> T + Send + 'static,
    R: FnOnce() + Send + 'static,
    T: Send + 'static,
{
    one_worker();
    let b = go!(move || {
        let entering = Arc::new(AtomicBool::new(false));
        let a_ran = Arc::new(AtomicBool::new(false));
        let (e, ran) = (entering.clone(), a_ran.clone());
        let a = go!(move || {
            // Running at all means B gave up the only worker.
            let conclusive = e.load(Ordering::SeqCst);
            ran.store(true, Ordering::SeqCst);
            release();
            conclusive
        });
        entering.store(true, Ordering::SeqCst);
        let r = wait();
        // A wait that blocked the thread and then returned on its own would get here first.
        let ran_during_wait = a_ran.load(Ordering::SeqCst);
        (r, a, ran_during_wait)
    });
    let (r, a, ran_during_wait) = join(b);
    assert!(
        ran_during_wait,
        "A did not run while B waited: the wait blocked the worker"
    );
    assert!(join(a), "inconclusive: A ran before B reached the wait");
    r
}

/// The harness itself: a wait that blocks the worker thread is caught.
#[test]
fn harness_catches_a_thread_blocking_wait() {
    let r = std::panic::catch_unwind(|| {
        prove_parks(|| std::thread::sleep(Duration::from_millis(20)), || {})
    });
    assert!(
        r.is_err(),
        "std::thread::sleep in a goroutine must fail the proof"
    );
}

/// A goroutine that takes something, reports it, then holds it until `release_rx` fires.
fn holder<F: FnOnce(chan::Receiver<()>) + Send + 'static>(
    f: F,
) -> (goway::JoinHandle<()>, chan::Sender<()>) {
    one_worker();
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    (go!(move || f(release_rx)), release_tx)
}

#[test]
fn mutex_lock_parks() {
    let m = Arc::new(Mutex::new(0));
    let (held_tx, held_rx) = chan::bounded::<()>(0);
    let m1 = m.clone();
    let (h, release) = holder(move |release_rx| {
        let mut g = m1.lock();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        *g += 1;
    });
    held_rx.recv_timeout(WATCHDOG).unwrap();
    let m2 = m.clone();
    let got = prove_parks(move || *m2.lock() * 10, move || release.send(()).unwrap());
    assert_eq!(got, 10);
    join(h);
}

#[test]
fn rwlock_write_parks_behind_reader_and_read_behind_writer() {
    // A reader holds; a writer waits.
    let l = Arc::new(RwLock::new(0));
    let (held_tx, held_rx) = chan::bounded::<()>(0);
    let l1 = l.clone();
    let (h, release) = holder(move |release_rx| {
        let _r = l1.read();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv_timeout(WATCHDOG).unwrap();
    let l2 = l.clone();
    prove_parks(move || *l2.write() += 1, move || release.send(()).unwrap());
    join(h);

    // A writer holds; a reader waits.
    let (held_tx, held_rx) = chan::bounded::<()>(0);
    let l1 = l.clone();
    let (h, release) = holder(move |release_rx| {
        let mut w = l1.write();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        *w += 1;
    });
    held_rx.recv_timeout(WATCHDOG).unwrap();
    let l2 = l.clone();
    assert_eq!(
        prove_parks(move || *l2.read(), move || release.send(()).unwrap()),
        2
    );
    join(h);
}

#[test]
fn waitgroup_wait_parks() {
    one_worker();
    let wg = WaitGroup::new();
    wg.add(1);
    let (w, d) = (wg.clone(), wg.clone());
    prove_parks(move || w.wait(), move || d.done());
    assert_eq!(wg.count(), 0);
}

#[test]
fn once_caller_parks_while_the_function_runs() {
    let once = Arc::new(Once::new());
    let (running_tx, running_rx) = chan::bounded::<()>(0);
    let o = once.clone();
    let (h, release) = holder(move |release_rx| {
        o.call_once(|| {
            running_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    running_rx.recv_timeout(WATCHDOG).unwrap();
    let o = once.clone();
    prove_parks(
        move || o.call_once(|| panic!("ran twice")),
        move || release.send(()).unwrap(),
    );
    assert!(once.is_done());
    join(h);
}

#[test]
fn cond_wait_parks() {
    one_worker();
    let pair = Arc::new((Mutex::new(false), Cond::new()));
    let (p1, p2) = (pair.clone(), pair.clone());
    prove_parks(
        move || {
            let (m, c) = &*p1;
            let g = c.wait_while(m.lock(), |ready| !*ready);
            *g
        },
        move || {
            let (m, c) = &*p2;
            *m.lock() = true;
            c.signal();
        },
    );
}

#[test]
fn semaphore_acquire_parks() {
    one_worker();
    let sem = Arc::new(Semaphore::new(1));
    let permit = sem.acquire_owned();
    let s = sem.clone();
    let n = prove_parks(move || s.acquire().permits(), move || drop(permit));
    assert_eq!(n, 1);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_acquire_ctx_parks_and_cancel_wakes_it() {
    one_worker();
    let sem = Arc::new(Semaphore::new(0));
    let (ctx, cancel) = context::with_cancel(&context::background());
    let s = sem.clone();
    let r = prove_parks(
        move || s.acquire_ctx(&ctx).map(|p| p.permits()),
        move || cancel.cancel(),
    );
    assert_eq!(r, Err(ContextError::Canceled));
}

#[test]
fn context_done_parks_and_cancel_wakes_it() {
    one_worker();
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (child, _c) = context::with_cancel(&ctx);
    let r = prove_parks(
        move || {
            let _ = child.done().recv();
            child.err()
        },
        move || cancel.cancel(),
    );
    assert_eq!(r, Some(ContextError::Canceled));
}

#[test]
fn context_timeout_fires_while_goroutines_wait() {
    one_worker();
    let r = prove_parks(
        move || {
            // Made here, right before the wait: made earlier, its deadline could pass before
            // a loaded machine got this goroutine going, and the wait would not park at all.
            let (c, _cancel) =
                context::with_timeout(&context::background(), Duration::from_millis(20));
            let _ = c.done().recv();
            c.err()
        },
        || {},
    );
    assert_eq!(r, Some(ContextError::DeadlineExceeded));
}

#[test]
fn group_wait_and_limit_park() {
    one_worker();
    // wait() parks while a member runs.
    let g = Group::<()>::new();
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    g.go(move || {
        release_rx.recv().unwrap();
        Ok(())
    });
    let g2 = g.clone();
    prove_parks(move || g2.wait(), move || release_tx.send(()).unwrap()).unwrap();

    // go() parks at the limit.
    g.set_limit(1);
    let (release_tx, release_rx) = chan::bounded::<()>(0);
    g.go(move || {
        release_rx.recv().unwrap();
        Ok(())
    });
    let g2 = g.clone();
    prove_parks(
        move || g2.go(|| Ok(())),
        move || release_tx.send(()).unwrap(),
    );
    let g3 = g.clone();
    join(go!(move || g3.wait())).unwrap();
}

#[test]
fn many_goroutines_contend_on_one_worker() {
    one_worker();
    let m = Arc::new(Mutex::new(0u32));
    let l = Arc::new(RwLock::new(0u32));
    let wg = WaitGroup::new();
    for i in 0..100 {
        let (m, l) = (m.clone(), l.clone());
        wg.go(move || {
            for _ in 0..50 {
                let mut g = m.lock();
                goway::runtime::yield_now(); // hold the lock across a yield
                *g += 1;
                drop(g);
                if i % 4 == 0 {
                    *l.write() += 1;
                } else {
                    let _ = *l.read();
                }
            }
        });
    }
    let w = wg.clone();
    join(go!(move || w.wait()));
    assert_eq!(*m.lock(), 5000);
    assert_eq!(*l.read(), 25 * 50);
}
