//! `goway::context`: Go's context rules (cancelling a parent cancels its children, not the
//! reverse; `Err` says why, `Done` closes once), values and deadlines, use from goroutines and threads; Go's worker pool
//! and fan-out/fan-in pipeline rebuilt on `sync::Group` with timeouts; and
//! the release of resources: registrations and timers are freed on cancel, so a million
//! short-lived contexts keep memory flat.
//!
//! A section titled "Go program N" (or a test `go_case_N`) checks what program N of the set of
//! Go programs the project was checked against shows (see `tests/golang.rs`).
//!
//! No test sleeps to synchronise; waits are bounded by `WATCHDOG`. Deadlines of a few
//! milliseconds are the subject of the timeout tests, not a synchronisation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goway::chan::{self, RecvTimeoutError, TryRecvError};
use goway::context::{self, Context, ContextError};
use goway::sync::Group;
use goway::{go, select};

mod common;
// The memory test measures this process's RSS, so it runs alone (`exclusive`); every other
// test takes the `shared` side.
use common::{WATCHDOG, exclusive, join, shared};

/// A short wait used to show that something does NOT happen.
const SHORT: Duration = Duration::from_millis(50);

/// Go's `closed(c)` helper: is `Done` ready now?
fn closed(c: &Context) -> bool {
    select! {
        recv(c.done()) -> _ => true,
        default => false,
    }
}

// ----- Go program 36: cancel propagates down, never up -----------------------------------

#[test]
fn go_case_36_cancel_propagates() {
    let _t = shared();
    let (parent, cancel_p) = context::with_cancel(&context::background());
    let (child1, _cancel1) = context::with_cancel(&parent);
    let (child2, cancel2) = context::with_cancel(&parent);
    let (grand, _cancel_g) = context::with_cancel(&child1);

    // "before: parent err <nil> done closed false"
    assert_eq!(parent.err(), None);
    assert!(!closed(&parent));
    // "Done() returns same channel each call: true"
    assert!(parent.done().same_channel(&parent.done()));

    // "after cancel child2: child2 context canceled | parent <nil> | child1 <nil>"
    cancel2.cancel();
    assert_eq!(child2.err(), Some(ContextError::Canceled));
    assert_eq!(parent.err(), None);
    assert_eq!(child1.err(), None);

    // "goroutine waiting on grandchild woke with: context canceled"
    let g = grand.clone();
    let woke = go!(move || {
        let _ = g.done().recv();
        g.err()
    });
    cancel_p.cancel();
    assert_eq!(join(woke), Some(ContextError::Canceled));
    for c in [&parent, &child1, &grand] {
        assert_eq!(c.err(), Some(ContextError::Canceled));
        assert!(closed(c));
    }
    assert_eq!(grand.err().unwrap().to_string(), "context canceled");

    // "repeated cancel is a no-op, err still: context canceled"
    cancel_p.cancel();
    cancel_p.cancel();
    assert_eq!(parent.err(), Some(ContextError::Canceled));

    // "child of cancelled parent is born cancelled: true context canceled"
    let (late, _cancel_l) = context::with_cancel(&parent);
    assert!(closed(&late));
    assert_eq!(late.err(), Some(ContextError::Canceled));
    assert!(late.done().same_channel(&late.done()));
}

#[test]
fn background_is_never_done() {
    let _t = shared();
    let bg = context::background();
    assert_eq!(bg.err(), None);
    assert_eq!(bg.deadline(), None);
    assert!(!closed(&bg));
    assert_eq!(bg.done().try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        bg.done().recv_timeout(SHORT),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(context::todo().err(), None);
    assert_eq!(Context::default().deadline(), None);
    assert_eq!(bg.registered_children(), 0);
}

#[test]
fn done_is_stable_before_and_after_cancel() {
    let _t = shared();
    let (ctx, cancel) = context::with_cancel(&context::background());
    let before = ctx.done();
    cancel.cancel();
    let after = ctx.done();
    assert!(before.same_channel(&after));
    assert!(before.recv().is_err());
}

#[test]
fn cancelling_a_child_leaves_siblings_and_parent() {
    let _t = shared();
    let (parent, _cp) = context::with_cancel(&context::background());
    let kids: Vec<_> = (0..5).map(|_| context::with_cancel(&parent)).collect();
    assert_eq!(parent.registered_children(), 5);
    kids[2].1.cancel();
    assert_eq!(
        parent.registered_children(),
        4,
        "a cancelled child leaves the registry"
    );
    for (i, (c, _)) in kids.iter().enumerate() {
        assert_eq!(c.is_done(), i == 2);
    }
    assert!(!parent.is_done());
}

#[test]
fn dropping_the_cancel_func_cancels_and_detach_does_not() {
    let _t = shared();
    let (parent, _cp) = context::with_cancel(&context::background());
    let ctx = {
        let (ctx, _cancel) = context::with_cancel(&parent);
        assert!(!ctx.is_done());
        ctx
    };
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    assert_eq!(parent.registered_children(), 0);

    let (kept, cancel) = context::with_cancel(&parent);
    cancel.detach();
    assert!(!kept.is_done());
    assert_eq!(
        parent.registered_children(),
        1,
        "a detached child stays registered (Go's rule)"
    );
    drop(_cp); // the parent's cancel reaches the detached child
    assert_eq!(kept.err(), Some(ContextError::Canceled));
    assert_eq!(parent.registered_children(), 0);
}

#[test]
fn cancel_from_thread_wakes_goroutines_and_threads() {
    let _t = shared();
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (child, _c) = context::with_timeout(&ctx, Duration::from_secs(3600));
    let gs: Vec<_> = (0..10)
        .map(|i| {
            let c = if i % 2 == 0 {
                ctx.clone()
            } else {
                child.clone()
            };
            go!(move || c.done().recv_timeout(WATCHDOG))
        })
        .collect();
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let c = child.clone();
            std::thread::spawn(move || c.done().recv_timeout(WATCHDOG))
        })
        .collect();
    std::thread::spawn(move || cancel.cancel()).join().unwrap();
    for g in gs {
        assert_eq!(join(g), Err(RecvTimeoutError::Closed));
    }
    for t in ts {
        assert_eq!(t.join().unwrap(), Err(RecvTimeoutError::Closed));
    }
    assert_eq!(child.err(), Some(ContextError::Canceled));
}

#[test]
fn context_is_send_sync_clone() {
    let _t = shared();
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Context>();
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<context::CancelFunc>();
    // A CancelFunc shared in an Arc cancels from another goroutine.
    let (ctx, cancel) = context::with_cancel(&context::background());
    let cancel = Arc::new(cancel);
    let c = cancel.clone();
    join(go!(move || c.cancel()));
    assert!(ctx.is_done());
}

#[test]
fn concurrent_children_while_the_root_is_cancelled() {
    let _t = shared();
    for _ in 0..5 {
        let (root, cancel_root) = context::with_cancel(&context::background());
        let (ready_tx, ready_rx) = chan::bounded::<()>(20);
        let workers: Vec<_> = (0..20u64)
            .map(|i| {
                let (root, ready_tx) = (root.clone(), ready_tx.clone());
                go!(move || {
                    let mut kept = Vec::new();
                    for j in 0..200u64 {
                        let (c, cf) = if j % 3 == 0 {
                            context::with_timeout(&root, Duration::from_micros(i * j % 500))
                        } else {
                            context::with_cancel(&root)
                        };
                        let (g, gf) = context::with_cancel(&context::with_value(&c, j));
                        if j % 5 == 0 {
                            kept.push((c, cf, g, gf));
                        } else if j % 2 == 0 {
                            gf.cancel();
                            cf.cancel();
                            assert!(g.is_done());
                        }
                        if j == 100 {
                            let _ = ready_tx.send(());
                        }
                    }
                    // The root's cancel reaches every kept descendant.
                    kept.iter()
                        .filter(|(c, _, g, _)| {
                            g.done().recv_timeout(WATCHDOG).is_err() && c.is_done() && g.is_done()
                        })
                        .count()
                })
            })
            .collect();
        // Cancel while the workers are still creating and cancelling children.
        ready_rx.recv_timeout(WATCHDOG).unwrap();
        cancel_root.cancel();
        let done: usize = workers.into_iter().map(join).sum();
        assert_eq!(done, 20 * 40);
        assert_eq!(root.registered_children(), 0);
    }
}

// ----- Go program 37: timeouts and deadlines ----------------------------------------------

#[test]
fn go_case_37_timeout_deadline_exceeded() {
    let _t = shared();
    let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(50));
    // "before: err <nil> has deadline true"
    assert_eq!(ctx.err(), None);
    assert!(ctx.deadline().is_some());
    // "Done fired, err: context deadline exceeded"
    let fired = select! {
        recv(ctx.done()) -> _ => true,
        recv(goway::time::after(Duration::from_secs(5))) -> _ => false,
    };
    assert!(fired, "timeout did not fire");
    let err = ctx.err().unwrap();
    assert_eq!(err, ContextError::DeadlineExceeded);
    assert_eq!(err.to_string(), "context deadline exceeded");
    // "err has Timeout() true: true"
    assert!(err.is_timeout());
    // "after cancel(), err still: context deadline exceeded"
    cancel.cancel();
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));

    // "cancelled before deadline: context canceled"
    let (ctx2, cancel2) = context::with_timeout(&context::background(), Duration::from_secs(3600));
    cancel2.cancel();
    assert_eq!(ctx2.err(), Some(ContextError::Canceled));

    // "zero timeout: done immediately, err: context deadline exceeded"
    let (ctx3, _cancel3) = context::with_timeout(&context::background(), Duration::ZERO);
    assert!(closed(&ctx3));
    assert_eq!(ctx3.err(), Some(ContextError::DeadlineExceeded));

    // "past deadline: err at creation: context deadline exceeded"
    let past = Instant::now() - Duration::from_secs(1);
    let (ctx4, _cancel4) = context::with_deadline(&context::background(), past);
    assert_eq!(ctx4.err(), Some(ContextError::DeadlineExceeded));

    // "Background has deadline: false"
    assert_eq!(context::background().deadline(), None);
}

#[test]
fn timeout_fires_on_time_and_frees_the_registration() {
    let _t = shared();
    let (parent, _cp) = context::with_cancel(&context::background());
    let (ctx, _c) = context::with_timeout(&parent, Duration::from_millis(20));
    assert_eq!(parent.registered_children(), 1);
    let t = Instant::now();
    assert_eq!(
        ctx.done().recv_timeout(WATCHDOG),
        Err(RecvTimeoutError::Closed)
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(19), "fired early: {took:?}");
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(
        parent.registered_children(),
        0,
        "the expired child left the registry"
    );
    assert!(
        !parent.is_done(),
        "a child's deadline never cancels the parent"
    );
}

#[test]
fn deadline_is_the_earliest_on_the_path() {
    let _t = shared();
    let bg = context::background();
    let (outer, _c1) = context::with_timeout(&bg, Duration::from_secs(10));
    let outer_deadline = outer.deadline().unwrap();
    // A later deadline does not extend the parent's.
    let (later, _c2) = context::with_timeout(&outer, Duration::from_secs(3600));
    assert_eq!(later.deadline(), Some(outer_deadline));
    // An earlier one applies.
    let (sooner, _c3) = context::with_timeout(&outer, Duration::from_millis(5));
    assert!(sooner.deadline().unwrap() < outer_deadline);
    // Plain children and values inherit the deadline.
    let (plain, _c4) = context::with_cancel(&outer);
    assert_eq!(plain.deadline(), Some(outer_deadline));
    assert_eq!(
        context::with_value(&outer, 1u8).deadline(),
        Some(outer_deadline)
    );
    // A timeout too large to represent means no deadline of its own.
    let (huge, _c5) = context::with_timeout(&bg, Duration::MAX);
    assert_eq!(huge.deadline(), None);
}

#[test]
fn parent_expiry_reaches_children_with_deadline_exceeded() {
    let _t = shared();
    let (parent, _cp) = context::with_timeout(&context::background(), Duration::from_millis(10));
    let (child, _cc) = context::with_cancel(&parent);
    let (later, _cl) = context::with_timeout(&parent, Duration::from_secs(3600));
    let v = context::with_value(&child, "v");
    assert_eq!(
        v.done().recv_timeout(WATCHDOG),
        Err(RecvTimeoutError::Closed)
    );
    // Siblings are cancelled one after another (as in Go): wait for each before reading it.
    for c in [&parent, &child, &later, &v] {
        assert_eq!(
            c.done().recv_timeout(WATCHDOG),
            Err(RecvTimeoutError::Closed)
        );
        assert_eq!(c.err(), Some(ContextError::DeadlineExceeded));
    }
    // Born under an expired parent: the parent's error, and the earlier deadline.
    let (born, _cb) = context::with_timeout(&parent, Duration::from_secs(3600));
    assert_eq!(born.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(born.deadline(), parent.deadline());
    let (born2, _cb2) = context::with_cancel(&parent);
    assert_eq!(born2.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn child_timeout_then_parent_cancel_keeps_deadline_exceeded() {
    let _t = shared();
    let (parent, cancel) = context::with_cancel(&context::background());
    let (child, _c) = context::with_timeout(&parent, Duration::from_millis(5));
    child.done().recv_timeout(WATCHDOG).unwrap_err();
    cancel.cancel();
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(parent.err(), Some(ContextError::Canceled));
}

#[test]
fn detached_timeout_still_expires_and_is_freed() {
    let _t = shared();
    let (parent, _cp) = context::with_cancel(&context::background());
    let (ctx, cancel) = context::with_timeout(&parent, Duration::from_millis(10));
    cancel.detach();
    let done = ctx.done();
    drop(ctx); // only the done channel is left: the deadline still closes it
    assert_eq!(done.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
    assert_eq!(parent.registered_children(), 0);
}

#[test]
fn context_errors_become_io_errors_with_go_texts() {
    let _t = shared();
    let e: std::io::Error = ContextError::DeadlineExceeded.into();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "context deadline exceeded");
    let e: std::io::Error = ContextError::Canceled.into();
    assert_eq!(e.kind(), std::io::ErrorKind::Other);
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(ContextError::Canceled);
    assert_eq!(boxed.to_string(), "context canceled");
}

// ----- values ---------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct RequestId(u64);
#[derive(Debug, PartialEq)]
struct User(&'static str);

/// Go's `ExampleWithValue` (context/example_test.go): one key type, two keys compared by value.
#[test]
fn keyed_values_are_found_by_key_value_as_in_gos_example() {
    let _t = shared();
    #[derive(PartialEq)]
    struct FavContextKey(&'static str);

    let f = |ctx: &context::Context, k: FavContextKey| match ctx.value_for::<&str>(&k) {
        Some(v) => format!("found value: {v}"),
        None => format!("key not found: {}", k.0),
    };
    let ctx = context::with_key_value(&context::background(), FavContextKey("language"), "Go");
    assert_eq!(f(&ctx, FavContextKey("language")), "found value: Go");
    assert_eq!(f(&ctx, FavContextKey("color")), "key not found: color");

    // Nearest first; a shadowed key; keys of another type never match; type-keyed values
    // and key-keyed values do not see each other.
    let ctx = context::with_key_value(&ctx, FavContextKey("color"), "blue");
    let ctx = context::with_value(&ctx, User("gopher"));
    let ctx = context::with_key_value(&ctx, FavContextKey("language"), "Rust");
    assert_eq!(f(&ctx, FavContextKey("language")), "found value: Rust");
    assert_eq!(f(&ctx, FavContextKey("color")), "found value: blue");
    assert_eq!(ctx.value_for::<&str>(&"language"), None);
    assert_eq!(ctx.value::<&str>(), None);
    assert_eq!(ctx.value::<User>(), Some(&User("gopher")));
    // The first matching key decides, as in Go: a value of another type is not looked past.
    let ctx = context::with_key_value(&ctx, FavContextKey("color"), 7u8);
    assert_eq!(ctx.value_for::<&str>(&FavContextKey("color")), None);
    assert_eq!(ctx.value_for::<u8>(&FavContextKey("color")), Some(&7));
    // Values cross goroutines and share the parent's cancellation.
    let (child, cancel) = context::with_cancel(&ctx);
    let c2 = child.clone();
    assert_eq!(
        join(go!(move || c2
            .value_for::<&str>(&FavContextKey("language"))
            .copied())),
        Some("Rust")
    );
    cancel.cancel();
    assert!(child.is_done());
}

#[test]
fn values_are_found_by_type_nearest_first() {
    let _t = shared();
    let bg = context::background();
    let a = context::with_value(&bg, RequestId(1));
    let b = context::with_value(&a, User("gopher"));
    let (c, cancel) = context::with_cancel(&b);
    let d = context::with_value(&c, RequestId(2)); // shadows
    assert_eq!(d.value::<RequestId>(), Some(&RequestId(2)));
    assert_eq!(d.value::<User>(), Some(&User("gopher")));
    assert_eq!(c.value::<RequestId>(), Some(&RequestId(1)));
    assert_eq!(bg.value::<RequestId>(), None);
    assert_eq!(d.value::<u64>(), None);
    // A value context shares its parent's cancellation.
    assert!(!d.is_done());
    cancel.cancel();
    assert_eq!(d.err(), Some(ContextError::Canceled));
    assert!(d.done().same_channel(&c.done()));
    // Values cross goroutines.
    let d2 = d.clone();
    assert_eq!(
        join(go!(move || d2.value::<User>().map(|u| u.0))),
        Some("gopher")
    );
}

#[test]
fn value_under_background_is_never_done() {
    let _t = shared();
    let v = context::with_value(&context::background(), 5i32);
    assert!(!closed(&v));
    assert_eq!(v.err(), None);
    let (c, _cancel) = context::with_cancel(&v);
    assert_eq!(
        v.registered_children(),
        0,
        "nothing to register with under background"
    );
    assert_eq!(c.value::<i32>(), Some(&5));
}

// ----- Go ports with Group and contexts: worker pool (program 26), pipeline (program 25) -------

/// Case 26 with errgroup: 5 workers, 100 jobs, each exactly once; the pool stops early if its
/// context (a 10 s timeout) ends.
fn worker_pool() -> (usize, u64, bool) {
    let (parent, _cancel) = context::with_timeout(&context::background(), WATCHDOG);
    let (g, ctx) = Group::<ContextError>::with_context(&parent);
    let (jobs_tx, jobs_rx) = chan::bounded::<u64>(100);
    let (res_tx, res_rx) = chan::bounded::<(usize, u64)>(100);
    for w in 0..5 {
        let (ctx, jobs_rx, res_tx) = (ctx.clone(), jobs_rx.clone(), res_tx.clone());
        g.go(move || {
            loop {
                goway::select! {
                    recv(ctx.done()) -> _ => return Err(ctx.err().unwrap_or(ContextError::Canceled)),
                    recv(jobs_rx) -> j => match j {
                        Ok(j) => {
                            if res_tx.send((w, j * 2)).is_err() {
                                return Ok(());
                            }
                        }
                        Err(_) => return Ok(()),
                    },
                }
            }
        });
    }
    drop(res_tx);
    for j in 1..=100 {
        jobs_tx.send(j).unwrap();
    }
    jobs_tx.close();
    g.wait().unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut sum = 0;
    for (_, r) in res_rx.iter() {
        *seen.entry(r).or_insert(0) += 1;
        sum += r;
    }
    let once = (1..=100).all(|j| seen.get(&(j * 2)) == Some(&1));
    (seen.len(), sum, once)
}

#[test]
fn go_port_worker_pool_with_group_from_thread_and_goroutine() {
    let _t = shared();
    assert_eq!(worker_pool(), (100, 10100, true));
    assert_eq!(join(go!(worker_pool)), (100, 10100, true));
}

/// Case 25 with errgroup: generator → 4 squarers → merge; every stage watches the context.
fn pipeline(ctx: &context::Context, n: u64, take: usize) -> (Result<(), ContextError>, Vec<u64>) {
    let (g, ctx) = Group::<ContextError>::with_context(ctx);
    let (gen_tx, gen_rx) = chan::bounded::<u64>(0);
    let c = ctx.clone();
    g.go(move || {
        for i in 1..=n {
            goway::select! {
                send(gen_tx, i) -> r => if r.is_err() { return Ok(()) },
                recv(c.done()) -> _ => return Err(c.err().unwrap_or(ContextError::Canceled)),
            }
        }
        Ok(())
    });
    let (out_tx, out_rx) = chan::bounded::<u64>(4);
    for _ in 0..4 {
        let (c, gen_rx, out_tx) = (ctx.clone(), gen_rx.clone(), out_tx.clone());
        g.go(move || {
            for v in gen_rx.iter() {
                goway::select! {
                    send(out_tx, v * v) -> r => if r.is_err() { return Ok(()) },
                    recv(c.done()) -> _ => return Err(c.err().unwrap_or(ContextError::Canceled)),
                }
            }
            Ok(())
        });
    }
    drop((gen_rx, out_tx));
    // The consumer: the merge channel closes when all squarers are gone.
    let mut got = Vec::new();
    for v in out_rx.iter().take(take) {
        got.push(v);
    }
    drop(out_rx); // a consumer that stops early: senders see the channel closed
    (g.wait(), got)
}

#[test]
fn go_port_pipeline_fan_out_fan_in_with_group() {
    let _t = shared();
    let (r, mut all) = pipeline(&context::background(), 1000, usize::MAX);
    assert_eq!(r, Ok(()));
    all.sort_unstable();
    assert_eq!(all.len(), 1000);
    assert_eq!(all.iter().sum::<u64>(), 333_833_500);
    assert_eq!(&all[..5], &[1, 4, 9, 16, 25]);
    assert_eq!(*all.last().unwrap(), 1_000_000);
    // The same from inside a goroutine.
    let (r, all) = join(go!(|| pipeline(&context::background(), 1000, usize::MAX)));
    assert_eq!((r, all.len()), (Ok(()), 1000));
}

#[test]
fn go_port_pipeline_consumer_stops_early() {
    let _t = shared();
    let (r, got) = pipeline(&context::background(), 1_000_000, 10);
    assert_eq!(got.len(), 10);
    assert_eq!(r, Ok(()), "stages return once their output is closed");
}

#[test]
fn go_port_pipeline_times_out() {
    let _t = shared();
    // The consumer never reads: the stages block until the 30 ms deadline ends them.
    let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(30));
    let t = Instant::now();
    let (r, got) = std::thread::spawn(move || pipeline(&ctx, 1_000_000, 0))
        .join()
        .unwrap();
    assert!(got.is_empty());
    // With `take(0)` the consumer drops its receiver at once, so stages may also end by
    // closure; a deadline seen first is reported as such.
    assert!(
        r == Ok(()) || r == Err(ContextError::DeadlineExceeded),
        "{r:?}"
    );
    assert!(t.elapsed() < WATCHDOG);

    // A stalled consumer: the deadline is what ends the pipeline.
    let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(30));
    let (g, gctx) = Group::<ContextError>::with_context(&ctx);
    let (tx, _rx_kept_but_never_read) = chan::bounded::<u64>(0);
    for _ in 0..3 {
        let (c, tx) = (gctx.clone(), tx.clone());
        g.go(move || {
            goway::select! {
                send(tx, 1) -> _ => Ok(()),
                recv(c.done()) -> _ => Err(c.err().unwrap_or(ContextError::Canceled)),
            }
        });
    }
    assert_eq!(g.wait(), Err(ContextError::DeadlineExceeded));
}

// ----- resources: no leak ---------------------------------------------------------------------

/// Resident memory of this process in bytes (`/proc/self/statm`, second field).
fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident pages");
    pages * 4096
}

#[test]
fn a_million_short_lived_contexts_keep_memory_flat() {
    let _t = exclusive();
    const N: usize = 1_000_000;
    const WARM: usize = 20_000;
    let (parent, _cancel_parent) = context::with_cancel(&context::background());
    let one_round = |i: usize| {
        match i % 4 {
            0 => {
                let (c, cancel) = context::with_cancel(&parent);
                let _ = c.done(); // creates the channel too
                cancel.cancel();
            }
            1 => {
                let (c, cancel) = context::with_timeout(&parent, Duration::from_secs(3600));
                debug_assert!(!c.is_done());
                cancel.cancel();
            }
            2 => {
                // Dropped: cancels on drop.
                let (c, _cancel) = context::with_timeout(&parent, Duration::from_secs(3600));
                let v = context::with_value(&c, i);
                let (_g, _cancel_g) = context::with_cancel(&v);
            }
            _ => {
                let (_c, _cancel) = context::with_cancel(&parent);
            }
        }
    };
    for i in 0..WARM {
        one_round(i);
    }
    assert_eq!(parent.registered_children(), 0);
    let before = rss_bytes();
    let t = Instant::now();
    for i in WARM..N {
        one_round(i);
    }
    let took = t.elapsed();
    let after = rss_bytes();
    assert_eq!(
        parent.registered_children(),
        0,
        "every child left the parent's registry"
    );
    let grown = after.saturating_sub(before);
    assert!(
        grown < 4 << 20,
        "RSS grew by {} KiB over {N} contexts ({before} -> {after} bytes)",
        grown >> 10
    );
    assert!(!parent.is_done());
    eprintln!(
        "{N} contexts in {took:?}; RSS {} -> {} KiB",
        before >> 10,
        after >> 10
    );
}

#[test]
fn deep_chain_cancels_and_drops_without_overflowing_a_goroutine_stack() {
    let _t = shared();
    // 100k nested contexts inside a goroutine with the default 32 KiB stack: cancelling the
    // root and dropping the chain are iterative.
    let r = join(go!(|| {
        let (root, cancel) = context::with_cancel(&context::background());
        let mut ctx = root.clone();
        let mut cancels = Vec::new();
        for i in 0..100_000u32 {
            if i % 2 == 0 {
                let (c, cf) = context::with_cancel(&ctx);
                cf.detach(); // keep the chain uncancelled until the root goes
                cancels.push(());
                ctx = c;
            } else {
                ctx = context::with_value(&ctx, i);
            }
        }
        let leaf_done = ctx.done();
        cancel.cancel();
        let ok = leaf_done.try_recv() == Err(TryRecvError::Closed) && ctx.is_done();
        drop(ctx);
        drop(root);
        ok
    }));
    assert!(r);

    // Dropped without ever being cancelled (all detached): freeing is iterative too.
    let r = join(go!(|| {
        let mut ctx = context::background();
        let (first, cf) = context::with_cancel(&ctx);
        cf.detach();
        ctx = first;
        for _ in 0..100_000u32 {
            let (c, cf) = context::with_cancel(&ctx);
            cf.detach();
            ctx = c;
        }
        drop(ctx);
        true
    }));
    assert!(r);
}

#[test]
fn select_on_done_with_other_channels() {
    let _t = shared();
    let (ctx, cancel) = context::with_cancel(&context::background());
    let (tx, rx) = goway::chan::bounded::<u32>(0);
    let c = ctx.clone();
    let worker = go!(move || {
        let mut got = Vec::new();
        loop {
            select! {
                recv(c.done()) -> _ => return (got, c.err()),
                recv(rx) -> v => got.push(v.unwrap()),
            }
        }
    });
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    cancel.cancel();
    let (got, err) = join(worker);
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(err, Some(ContextError::Canceled));
    drop(tx);
}

#[test]
fn debug_shows_the_error_of_a_context_and_its_cancel_func() {
    let _t = shared();
    let (ctx, cancel) = context::with_cancel(&context::background());
    assert!(format!("{ctx:?}").starts_with("Context { err: None"));
    assert_eq!(
        format!("{cancel:?}"),
        "CancelFunc { detached: false, err: None }"
    );
    cancel.cancel();
    assert_eq!(
        format!("{cancel:?}"),
        "CancelFunc { detached: false, err: Some(Canceled) }"
    );
}

/// A context dropped without being cancelled (its cancel handle detached, nothing else holding
/// it) must not look cancelled: Go's done channel would stay open.
#[test]
fn done_of_a_dropped_uncancelled_context_stays_open() {
    let (ctx, cancel) = context::with_cancel(&context::background());
    let done = ctx.done();
    cancel.detach();
    drop(ctx);
    assert_eq!(
        done.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
}
