//! Ports of small Go programs that pin down Go's channel, select and memory-model rules. Each
//! `mod` ports one program, named in its comment by its number and name in the set of Go
//! programs the project was checked against (the set is not in this repository: each port
//! carries what it needs). The port prints the same lines into an `Out` buffer, and the test
//! compares them with the Go program's recorded output, copied inline.
//! Where goway deliberately differs from Go, the expected line is changed and the Go original is
//! quoted next to it.
//!
//! Deviations from Go (Go 1.19), as goway defines them:
//! 1. Send on a closed channel: Go panics "send on closed channel"; goway's `send` returns
//!    `Err(SendError(v))` with the value, `try_send` gives `TrySendError::Closed(v)`, and a select
//!    send arm on a closed channel is chosen (beating `default`, as Go's panic does) with
//!    `Err(SendError(v))`. (07)
//! 2. Close of a closed channel: Go panics "close of closed channel"; goway's `close()` returns
//!    `false` (and `true` the one time it closes). (08)
//! 3. Nil channel: goway has `chan::never()` (a `Receiver`) and `Sender::never()`. Close of nil:
//!    Go panics "close of nil channel"; `Sender::never().close()` returns `false` and
//!    `Receiver` has no public `close`. (09, 12, 13)
//! 4. Deadlock detection: Go reports "fatal error: all goroutines are asleep - deadlock!" and
//!    exits 2; so does goway's detector, in a process of its own (`tests/diag_deadlock.rs` runs
//!    this program as a child). In this shared test process the port shows the block with a
//!    bounded wait that times out. (12)
//! 5. Uncaught panics ("panic: ..." + "exit status 2"): not reproduced; goway never panics for
//!    these channel misuses, so the "now uncaught" parts show the returned error instead. (07-09)
//! 6. `v, ok := <-ch`: goway's `recv()` returns `Result<T, RecvError>`; there is no zero value.
//!    The ports use `recv_ok`, which maps `Err` to `(T::default(), false)` to print Go's lines.
//! 7. `len(ch)`/`cap(ch)`: `len()`/`capacity()`, where `capacity()` is an `Option` (`None` for the
//!    unbounded channels Go does not have). (04)
//! 8. `time.After(d)` is `goway::time::after(d)`, delivering an `Instant` (never a zero time). (18)
//! 9. Go programs sleep to let goroutines block; the ports never sleep to synchronise: they wait
//!    on channels, and show that something does NOT happen with a short bounded wait that must
//!    time out. Goroutines that Go sleeps in are held back by a channel instead. (01, 03, 10, 18)
//! 10. `sync.WaitGroup`/`sync.Mutex` in the Go programs become join handles, channels and atomics
//!     (goway::sync is tested elsewhere). Go's plain variables shared through a channel become
//!     `Relaxed` atomics, so only the channel's synchronisation makes the writes visible. (48)
//! 11. Leaked goroutines (Go 12 leaves one blocked on a nil channel forever) are released at the
//!     end, because every goroutine a test starts must end.
//! 12. `chan struct{}` is `chan<()>`; `unsafe.Sizeof(struct{}{})` is `size_of::<()>()`. (47)
//! 13. `for v := range ch` is `for v in &rx`. (06)

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goway::chan::{self, Receiver, RecvTimeoutError, Sender};
use goway::time::after;
use goway::{go, select};

mod common;
use common::{WATCHDOG, join, wait_until};

/// Where a Go program sleeps to show that something does not happen, the port waits this long
/// for it (bounded) and expects the wait to time out.
const SHORT: Duration = Duration::from_millis(50);

/// The program's stdout, line by line.
#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<String>>>);

impl Out {
    fn println(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }
    #[track_caller]
    fn assert_is(&self, expected: &[&str]) {
        let got = self.0.lock().unwrap().clone();
        assert_eq!(got, expected, "\n got: {got:#?}\nwant: {expected:#?}");
    }
}

/// Go's `v, ok := <-ch`.
fn recv_ok<T: Default>(rx: &Receiver<T>) -> (T, bool) {
    match rx.recv() {
        Ok(v) => (v, true),
        Err(_) => (T::default(), false),
    }
}

/// Go's `cap(ch)` for the bounded channels the ports use.
fn cap<T>(rx: &Receiver<T>) -> usize {
    rx.capacity().expect("bounded channel")
}

// 01_unbuffered_rendezvous.
mod c01_unbuffered_rendezvous {
    use super::*;

    const EXPECTED: &[&str] = &[
        "send completed before any receive: false",
        "received: 42",
        "send completed after receive: true",
        "receive completed before any send: false",
        "receiver got: hello",
        "receive completed after send: true",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, ch) = chan::bounded::<i32>(0);
        let sent = Arc::new(AtomicI32::new(0));
        let (done_tx, done) = chan::bounded::<()>(0);
        let s = sent.clone();
        let h = go!(move || {
            ch_tx.send(42).unwrap();
            s.store(1, SeqCst);
            done_tx.close();
        });
        // Go sleeps 50ms: wait that long for a completion that must not come.
        assert_eq!(done.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        out.println(format!(
            "send completed before any receive: {}",
            sent.load(SeqCst) == 1
        ));
        let v = ch.recv().unwrap();
        assert_eq!(done.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
        out.println(format!("received: {v}"));
        out.println(format!(
            "send completed after receive: {}",
            sent.load(SeqCst) == 1
        ));
        join(h);

        let (ch2_tx, ch2) = chan::bounded::<&str>(0);
        let got = Arc::new(AtomicI32::new(0));
        let (done2_tx, done2) = chan::bounded::<()>(0);
        let (g, o) = (got.clone(), out.clone());
        let h = go!(move || {
            let s = ch2.recv().unwrap();
            g.store(1, SeqCst);
            o.println(format!("receiver got: {s}"));
            done2_tx.close();
        });
        assert_eq!(done2.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        out.println(format!(
            "receive completed before any send: {}",
            got.load(SeqCst) == 1
        ));
        ch2_tx.send("hello").unwrap();
        assert_eq!(done2.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
        out.println(format!(
            "receive completed after send: {}",
            got.load(SeqCst) == 1
        ));
        join(h);
        out.assert_is(EXPECTED);
    }
}

// 02_buffered_fifo_order.
mod c02_buffered_fifo_order {
    use super::*;

    const EXPECTED: &[&str] = &[
        "buffered(10) first five: [0 1 2 3 4] all 10000 in order: true",
        "buffered(1) first five: [0 1 2 3 4] all 10000 in order: true",
        "unbuffered first five: [0 1 2 3 4] all 10000 in order: true",
        "w x y z",
    ];

    fn check(out: &Out, name: &str, (tx, rx): (Sender<i32>, Receiver<i32>), n: i32) {
        let h = go!(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        let mut in_order = true;
        let mut first = Vec::new();
        for i in 0..n {
            let v = rx.recv().unwrap();
            if v != i {
                in_order = false;
            }
            if i < 5 {
                first.push(v.to_string());
            }
        }
        join(h);
        out.println(format!(
            "{name} first five: [{}] all {n} in order: {in_order}",
            first.join(" ")
        ));
    }

    #[test]
    fn port() {
        let out = Out::default();
        check(&out, "buffered(10)", chan::bounded(10), 10000);
        check(&out, "buffered(1)", chan::bounded(1), 10000);
        check(&out, "unbuffered", chan::bounded(0), 10000);

        let (b_tx, b) = chan::bounded(4);
        for s in ["w", "x", "y", "z"] {
            b_tx.send(s).unwrap();
        }
        let line = [b.recv(), b.recv(), b.recv(), b.recv()].map(Result::unwrap);
        out.println(line.join(" "));
        out.assert_is(EXPECTED);
    }
}

// 03_buffered_capacity_blocking.
mod c03_buffered_capacity_blocking {
    use super::*;

    const EXPECTED: &[&str] = &[
        "len: 3 cap: 3 completed sends: 3",
        "non-blocking send on full buffer: would block",
        "received: 1",
        "after one receive, completed sends: 4 len: 3",
        "rest: [2 3 4 5] completed sends: 5",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, ch) = chan::bounded::<i32>(3);
        let completed = Arc::new(AtomicI32::new(0));
        // One message per completed send, so the port can wait for a completion (or show,
        // with a bounded wait, that none happens) instead of sleeping.
        let (progress_tx, progress) = chan::unbounded::<()>();
        let (finished_tx, finished) = chan::bounded::<()>(0);
        let c = completed.clone();
        let tx = ch_tx.clone();
        let h = go!(move || {
            for i in 1..=5 {
                tx.send(i).unwrap();
                c.fetch_add(1, SeqCst);
                progress_tx.send(()).unwrap();
            }
            finished_tx.close();
        });
        wait_until("a full buffer", WATCHDOG, || ch.len() >= 3);
        for _ in 0..3 {
            progress.recv_timeout(WATCHDOG).unwrap();
        }
        // Go sleeps 50ms: the 4th send must not complete meanwhile.
        assert_eq!(progress.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        out.println(format!(
            "len: {} cap: {} completed sends: {}",
            ch.len(),
            cap(&ch),
            completed.load(SeqCst)
        ));

        select! {
            send(ch_tx, 99) -> _ => out.println("non-blocking send on full buffer: sent (WRONG)"),
            default => out.println("non-blocking send on full buffer: would block"),
        }

        out.println(format!("received: {}", ch.recv().unwrap()));
        progress.recv_timeout(WATCHDOG).unwrap(); // the 4th send completes...
        assert_eq!(progress.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout)); // ...not the 5th
        out.println(format!(
            "after one receive, completed sends: {} len: {}",
            completed.load(SeqCst),
            ch.len()
        ));

        let rest: Vec<String> = (0..4).map(|_| ch.recv().unwrap().to_string()).collect();
        assert_eq!(
            finished.recv_timeout(WATCHDOG),
            Err(RecvTimeoutError::Closed)
        );
        out.println(format!(
            "rest: [{}] completed sends: {}",
            rest.join(" "),
            completed.load(SeqCst)
        ));
        join(h);
        out.assert_is(EXPECTED);
    }
}

// 04_len_cap.
mod c04_len_cap {
    use super::*;

    const EXPECTED: &[&str] = &[
        "nil: 0 0",
        "unbuffered: 0 0",
        "make(chan int, 0): 0 0",
        "buffered empty: 0 5",
        "after 2 sends: 2 5",
        "after 1 receive: 1 5",
        "after close: 1 5",
        "received 2 true -> 0 5",
        "received 0 false -> 0 5",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let nilc = chan::never::<i32>();
        out.println(format!("nil: {} {}", nilc.len(), cap(&nilc)));
        let (_u_tx, u) = chan::bounded::<i32>(0);
        out.println(format!("unbuffered: {} {}", u.len(), cap(&u)));
        let (_z_tx, z) = chan::bounded::<i32>(0);
        out.println(format!("make(chan int, 0): {} {}", z.len(), cap(&z)));
        let (b_tx, b) = chan::bounded::<i32>(5);
        out.println(format!("buffered empty: {} {}", b.len(), cap(&b)));
        b_tx.send(1).unwrap();
        b_tx.send(2).unwrap();
        out.println(format!("after 2 sends: {} {}", b.len(), cap(&b)));
        b.recv().unwrap();
        out.println(format!("after 1 receive: {} {}", b.len(), cap(&b)));
        b_tx.close();
        out.println(format!("after close: {} {}", b.len(), cap(&b)));
        let (v, ok) = recv_ok(&b);
        out.println(format!("received {v} {ok} -> {} {}", b.len(), cap(&b)));
        let (v, ok) = recv_ok(&b);
        out.println(format!("received {v} {ok} -> {} {}", b.len(), cap(&b)));
        // The sender side reports the same.
        assert_eq!((b_tx.len(), b_tx.capacity()), (0, Some(5)));
        out.assert_is(EXPECTED);
    }
}

// 05_close_drains_buffer_then_zero.
mod c05_close_drains_buffer_then_zero {
    use super::*;

    const EXPECTED: &[&str] = &[
        "\"a\" true",
        "\"b\" true",
        "\"\" false",
        "\"\" false",
        "int zero: 0 0",
        "{A:1 B:x} true {A:0 B:} false",
        "100000 receives on closed channel, all (0,false): true",
    ];

    #[derive(Default)]
    struct Pair {
        a: i32,
        b: String,
    }

    impl std::fmt::Display for Pair {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{{A:{} B:{}}}", self.a, self.b) // Go's %+v
        }
    }

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, ch) = chan::bounded::<String>(3);
        ch_tx.send("a".into()).unwrap();
        ch_tx.send("b".into()).unwrap();
        ch_tx.close();
        for _ in 0..4 {
            let (v, ok) = recv_ok(&ch);
            out.println(format!("{v:?} {ok}"));
        }
        let (ic_tx, ic) = chan::bounded::<i32>(0);
        ic_tx.close();
        out.println(format!("int zero: {} {}", recv_ok(&ic).0, recv_ok(&ic).0));
        let (pc_tx, pc) = chan::bounded::<Pair>(1);
        pc_tx
            .send(Pair {
                a: 1,
                b: "x".into(),
            })
            .unwrap();
        pc_tx.close();
        let (p1, ok1) = recv_ok(&pc);
        let (p2, ok2) = recv_ok(&pc);
        out.println(format!("{p1} {ok1} {p2} {ok2}"));
        let t = Instant::now();
        let mut zeros = 0;
        for _ in 0..100000 {
            if let (0, false) = recv_ok(&ic) {
                zeros += 1;
            }
        }
        assert!(
            t.elapsed() < WATCHDOG,
            "receives on a closed channel must not block"
        );
        out.println(format!(
            "100000 receives on closed channel, all (0,false): {}",
            zeros == 100000
        ));
        out.assert_is(EXPECTED);
    }
}

// 06_range_ends_on_close.
mod c06_range_ends_on_close {
    use super::*;

    const EXPECTED: &[&str] = &[
        "got 10",
        "got 20",
        "got 30",
        "got 40",
        "got 50",
        "range ended",
        "buffered got 1",
        "buffered got 2",
        "buffered range ended after 2",
        "closed empty channel iterations: 0",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, ch) = chan::bounded::<i32>(0);
        let h = go!(move || {
            for i in 1..=5 {
                ch_tx.send(i * 10).unwrap();
            }
            ch_tx.close();
        });
        for v in &ch {
            out.println(format!("got {v}"));
        }
        out.println("range ended");
        join(h);

        let (b_tx, b) = chan::bounded::<i32>(3);
        b_tx.send(1).unwrap();
        b_tx.send(2).unwrap();
        b_tx.close();
        let mut n = 0;
        for v in &b {
            n += 1;
            out.println(format!("buffered got {v}"));
        }
        out.println(format!("buffered range ended after {n}"));

        let (e_tx, e) = chan::bounded::<i32>(0);
        e_tx.close();
        n = 0;
        for _ in &e {
            n += 1;
        }
        out.println(format!("closed empty channel iterations: {n}"));
        out.assert_is(EXPECTED);
    }
}

// 07_send_on_closed_panics. Deviation 1 and 5: the send returns the value.
mod c07_send_on_closed_panics {
    use super::*;

    const EXPECTED: &[&str] = &[
        // Go: "send: recovered=send on closed channel runtime.Error=true"
        "send: Err(SendError(1)): sending on a closed channel",
        // Go: "select send with default: recovered=send on closed channel runtime.Error=true"
        "select send with default: send arm chosen with Err(SendError(1))",
        // Go: "unbuffered send: recovered=send on closed channel runtime.Error=true"
        "unbuffered send: Err(SendError(1))",
        "now uncaught:",
        // Go: "panic: send on closed channel" / "exit status 2"
        "send: Err(SendError(2))",
        "reachable",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, _ch) = chan::bounded::<i32>(1);
        ch_tx.close();
        let e = ch_tx.send(1).unwrap_err();
        out.println(format!("send: Err(SendError({})): {e}", e.0));
        select! {
            send(ch_tx, 1) -> r => out.println(format!(
                "select send with default: send arm chosen with Err(SendError({}))",
                r.unwrap_err().0
            )),
            default => out.println("default (WRONG)"),
        }
        let (u_tx, _u) = chan::bounded::<i32>(0);
        u_tx.close();
        out.println(format!(
            "unbuffered send: Err(SendError({}))",
            u_tx.send(1).unwrap_err().0
        ));
        out.println("now uncaught:");
        out.println(format!(
            "send: Err(SendError({}))",
            ch_tx.send(2).unwrap_err().0
        ));
        out.println("reachable");
        out.assert_is(EXPECTED);
    }
}

// 08_close_of_closed_panics. Deviation 2 and 5: close returns false.
mod c08_close_of_closed_panics {
    use super::*;

    const EXPECTED: &[&str] = &[
        "first close: true",
        // Go: "recovered: close of closed channel"
        "second close: false",
        "now uncaught:",
        // Go: "panic: close of closed channel" / "exit status 2"
        "third close: false",
        "reachable",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (ch_tx, ch) = chan::bounded::<i32>(0);
        out.println(format!("first close: {}", ch_tx.close()));
        out.println(format!("second close: {}", ch_tx.close()));
        out.println("now uncaught:");
        out.println(format!("third close: {}", ch_tx.clone().close()));
        out.println("reachable");
        assert!(ch.is_closed());
        out.assert_is(EXPECTED);
    }
}

// 09_close_of_nil_panics. Deviation 3 and 5: closing the never channel is a no-op.
mod c09_close_of_nil_panics {
    use super::*;

    const EXPECTED: &[&str] = &[
        // Go: "recovered: close of nil channel"
        "close of never channel: false",
        "now uncaught:",
        // Go: "panic: close of nil channel" / "exit status 2"
        "close of never channel: false",
        "reachable",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let ch = Sender::<i32>::never();
        out.println(format!("close of never channel: {}", ch.close()));
        out.println("now uncaught:");
        out.println(format!("close of never channel: {}", ch.close()));
        out.println("reachable");
        assert!(!ch.is_closed());
        out.assert_is(EXPECTED);
    }
}

// 10_close_wakes_all_receivers.
mod c10_close_wakes_all_receivers {
    use super::*;

    const EXPECTED: &[&str] = &["woken before close: 0", "woken by close with ok=false: 10"];

    #[test]
    fn port() {
        let out = Out::default();
        let (done_tx, done) = chan::bounded::<()>(0);
        let (started_tx, started) = chan::unbounded::<()>();
        let (woke_tx, woke) = chan::unbounded::<bool>();
        let closed_seen = Arc::new(AtomicI32::new(0));
        let mut hs = Vec::new();
        for _ in 0..10 {
            let (done, started, woke) = (done.clone(), started_tx.clone(), woke_tx.clone());
            let seen = closed_seen.clone();
            hs.push(go!(move || {
                started.send(()).unwrap();
                let ((), ok) = recv_ok(&done);
                if !ok {
                    seen.fetch_add(1, SeqCst);
                }
                woke.send(ok).unwrap();
            }));
        }
        for _ in 0..10 {
            started.recv_timeout(WATCHDOG).unwrap();
        }
        // Go sleeps 20ms: nobody may wake meanwhile.
        assert_eq!(woke.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
        out.println(format!("woken before close: {}", closed_seen.load(SeqCst)));
        done_tx.close();
        for _ in 0..10 {
            assert_eq!(woke.recv_timeout(WATCHDOG), Ok(false));
        }
        for h in hs {
            join(h);
        }
        out.println(format!(
            "woken by close with ok=false: {}",
            closed_seen.load(SeqCst)
        ));
        out.assert_is(EXPECTED);
    }
}

// 12_nil_channel_blocks_forever. Deviations 3, 4 and 11.
mod c12_nil_channel_blocks_forever {
    use super::*;

    const EXPECTED: &[&str] = &[
        "receive on nil channel: still blocked after timeout",
        "send on nil channel: still blocked after timeout",
        "main blocking on nil channel now",
        // Go: "fatal error: all goroutines are asleep - deadlock!" / "exit status 2"
        "main on nil channel: still blocked after timeout (the deadlock itself: tests/diag_deadlock.rs)",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let c = chan::never::<i32>();
        let c_tx = Sender::<i32>::never();
        select! {
            recv(c) -> v => out.println(format!("received from nil (WRONG) {v:?}")),
            recv(after(Duration::from_millis(50))) -> _ => {
                out.println("receive on nil channel: still blocked after timeout")
            }
        }
        select! {
            send(c_tx, 1) -> _ => out.println("sent to nil (WRONG)"),
            recv(after(Duration::from_millis(50))) -> _ => {
                out.println("send on nil channel: still blocked after timeout")
            }
        }
        // Go leaks a goroutine blocked on `<-c`; here it is released at the end.
        let (release_tx, release) = chan::bounded::<()>(0);
        let (done_tx, done) = chan::bounded::<bool>(0);
        let inner = go!(move || {
            let nil = chan::never::<i32>();
            select! {
                recv(nil) -> _ => "received from nil (WRONG)",
                recv(release) -> _ => "released",
            }
        });
        let outer = go!(move || done_tx.send(true).unwrap());
        assert_eq!(done.recv_timeout(WATCHDOG), Ok(true));
        out.println("main blocking on nil channel now");
        match c.recv_timeout(SHORT) {
            Err(RecvTimeoutError::Timeout) => out
                .println("main on nil channel: still blocked after timeout (the deadlock itself: tests/diag_deadlock.rs)"),
            other => out.println(format!("WRONG {other:?}")),
        }
        // The leaked goroutine was still blocked all along.
        assert!(!inner.is_finished());
        release_tx.close();
        assert_eq!(join(inner), "released");
        join(outer);
        out.assert_is(EXPECTED);
    }
}

// 13_nil_channel_disables_select_case.
mod c13_nil_channel_disables_select_case {
    use super::*;

    const EXPECTED: &[&str] = &[
        "merged: [1 2 3 4 5 6 7]",
        "only nil cases + default: default",
        "only nil cases + default: default",
        "only nil cases + default: default",
        "ready case chosen over nil case: 1000 of 1000",
    ];

    fn gen_vals(vals: Vec<i32>) -> (Receiver<i32>, goway::JoinHandle<()>) {
        let (tx, rx) = chan::bounded(0);
        let h = go!(move || {
            for v in vals {
                tx.send(v).unwrap();
            }
            tx.close();
        });
        (rx, h)
    }

    #[test]
    fn port() {
        let out = Out::default();
        let (mut a, ha) = gen_vals(vec![1, 3, 5, 7]);
        let (mut b, hb) = gen_vals(vec![2, 4, 6]);
        let (mut a_nil, mut b_nil) = (false, false);
        let mut merged = Vec::new();
        while !a_nil || !b_nil {
            select! {
                recv(a) -> v => match v {
                    Ok(v) => merged.push(v),
                    Err(_) => { a = chan::never(); a_nil = true; continue; }
                },
                recv(b) -> v => match v {
                    Ok(v) => merged.push(v),
                    Err(_) => { b = chan::never(); b_nil = true; continue; }
                },
            }
        }
        join(ha);
        join(hb);
        merged.sort();
        let merged: Vec<String> = merged.iter().map(i32::to_string).collect();
        out.println(format!("merged: [{}]", merged.join(" ")));

        let nilc = chan::never::<i32>();
        let nilc_tx = Sender::<i32>::never();
        for _ in 0..3 {
            select! {
                recv(nilc) -> _ => out.println("nil recv case (WRONG)"),
                send(nilc_tx, 1) -> _ => out.println("nil send case (WRONG)"),
                default => out.println("only nil cases + default: default"),
            }
        }
        let (ready_tx, ready) = chan::bounded::<i32>(1000);
        for i in 0..1000 {
            ready_tx.send(i).unwrap();
        }
        let mut picked = 0;
        for _ in 0..1000 {
            select! {
                recv(nilc) -> _ => out.println("nil case (WRONG)"),
                recv(ready) -> _ => picked += 1,
            }
        }
        out.println(format!("ready case chosen over nil case: {picked} of 1000"));
        out.assert_is(EXPECTED);
    }
}

// 14_select_default_nonblocking.
mod c14_select_default_nonblocking {
    use super::*;

    const EXPECTED: &[&str] = &[
        "recv on empty buffered: default",
        "recv on unbuffered, no sender: default",
        "send on unbuffered, no receiver: default",
        "send on buffered with room: sent",
        "send on full buffered: default",
        "recv on non-empty buffered: 7",
        "select with only default: default",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (empty_tx, empty) = chan::bounded::<i32>(1);
        select! {
            recv(empty) -> v => out.println(format!("recv {v:?}")),
            default => out.println("recv on empty buffered: default"),
        }
        let (u_tx, u) = chan::bounded::<i32>(0);
        select! {
            recv(u) -> v => out.println(format!("recv {v:?}")),
            default => out.println("recv on unbuffered, no sender: default"),
        }
        select! {
            send(u_tx, 1) -> _ => out.println("sent"),
            default => out.println("send on unbuffered, no receiver: default"),
        }
        select! {
            send(empty_tx, 7) -> _ => out.println("send on buffered with room: sent"),
            default => out.println("default"),
        }
        select! {
            send(empty_tx, 8) -> _ => out.println("sent"),
            default => out.println("send on full buffered: default"),
        }
        select! {
            recv(empty) -> v => out.println(format!("recv on non-empty buffered: {}", v.unwrap())),
            default => out.println("default"),
        }
        select! {
            default => out.println("select with only default: default"),
        }
        out.assert_is(EXPECTED);
    }
}

// 16_select_uniform_random (statistical, same thresholds as Go's program).
mod c16_select_uniform_random {
    use super::*;

    const EXPECTED: &[&str] = &[
        "2 recv cases, each chosen >= 4000 of 10000: true total: 10000",
        "4 recv cases, each chosen >= 2000 of 10000: true",
        "2 send cases, each chosen >= 4000 of 10000: true",
    ];

    #[test]
    fn port() {
        const N: usize = 10000;
        let out = Out::default();
        let (a_tx, a) = chan::bounded::<i32>(1);
        let (b_tx, b) = chan::bounded::<i32>(1);
        let (mut ca, mut cb) = (0, 0);
        for _ in 0..N {
            a_tx.send(1).unwrap();
            b_tx.send(1).unwrap();
            select! {
                recv(a) -> _ => { ca += 1; b.recv().unwrap(); }
                recv(b) -> _ => { cb += 1; a.recv().unwrap(); }
            }
        }
        out.println(format!(
            "2 recv cases, each chosen >= 4000 of 10000: {} total: {}",
            ca >= 4000 && cb >= 4000,
            ca + cb
        ));

        let cs: Vec<_> = (0..4).map(|_| chan::bounded::<i32>(1)).collect();
        for (tx, _) in &cs {
            tx.send(0).unwrap();
        }
        let mut cnt = [0; 4];
        for _ in 0..N {
            select! {
                recv(cs[0].1) -> v => { cnt[0] += 1; cs[0].0.send(v.unwrap()).unwrap(); }
                recv(cs[1].1) -> v => { cnt[1] += 1; cs[1].0.send(v.unwrap()).unwrap(); }
                recv(cs[2].1) -> v => { cnt[2] += 1; cs[2].0.send(v.unwrap()).unwrap(); }
                recv(cs[3].1) -> v => { cnt[3] += 1; cs[3].0.send(v.unwrap()).unwrap(); }
            }
        }
        out.println(format!(
            "4 recv cases, each chosen >= 2000 of 10000: {}",
            cnt.iter().all(|&c| c >= 2000)
        ));

        let (s1_tx, s1) = chan::bounded::<usize>(1);
        let (s2_tx, s2) = chan::bounded::<usize>(1);
        let (mut c1, mut c2) = (0, 0);
        for i in 0..N {
            select! {
                send(s1_tx, i) -> _ => { c1 += 1; s1.recv().unwrap(); }
                send(s2_tx, i) -> _ => { c2 += 1; s2.recv().unwrap(); }
            }
        }
        out.println(format!(
            "2 send cases, each chosen >= 4000 of 10000: {}",
            c1 >= 4000 && c2 >= 4000
        ));
        // Also hold each of the 4 recv cases to the brief's 20%.
        assert!(cnt.iter().all(|&c| c >= N / 5), "{cnt:?}");
        out.assert_is(EXPECTED);
    }
    /// The brief's extra check: 4 ready send cases, each chosen >= 20% of 10000.
    #[test]
    fn four_send_cases() {
        const N: usize = 10000;
        let cs: Vec<_> = (0..4).map(|_| chan::bounded::<usize>(1)).collect();
        let mut cnt = [0usize; 4];
        for i in 0..N {
            select! {
                send(cs[0].0, i) -> _ => { cnt[0] += 1; cs[0].1.recv().unwrap(); }
                send(cs[1].0, i) -> _ => { cnt[1] += 1; cs[1].1.recv().unwrap(); }
                send(cs[2].0, i) -> _ => { cnt[2] += 1; cs[2].1.recv().unwrap(); }
                send(cs[3].0, i) -> _ => { cnt[3] += 1; cs[3].1.recv().unwrap(); }
            }
            assert!(
                cs.iter().all(|(_, rx)| rx.is_empty()),
                "exactly one send happened"
            );
        }
        assert!(cnt.iter().all(|&c| c >= N / 5), "{cnt:?}");
    }
}

// 18_select_timeout_time_after. Deviations 8 and 9.
mod c18_select_timeout_time_after {
    use super::*;

    const EXPECTED: &[&str] = &[
        "nothing ready: timeout fired",
        "value already ready: 5",
        "value before timeout: arrived",
        "timeout wins over slow producer; fired value is a non-zero time: true",
        "time.After waits at least its duration: true",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (_never_tx, never) = chan::bounded::<i32>(0);
        select! {
            recv(never) -> _ => out.println("WRONG"),
            recv(after(Duration::from_millis(30))) -> _ => out.println("nothing ready: timeout fired"),
        }
        let (ready_tx, ready) = chan::bounded::<i32>(1);
        ready_tx.send(5).unwrap();
        select! {
            recv(ready) -> v => out.println(format!("value already ready: {}", v.unwrap())),
            recv(after(Duration::from_secs(2))) -> _ => out.println("WRONG timeout"),
        }
        let (late_tx, late) = chan::bounded::<&str>(0);
        let h = go!(move || late_tx.send("arrived").unwrap()); // Go sleeps 10ms first
        select! {
            recv(late) -> s => out.println(format!("value before timeout: {}", s.unwrap())),
            recv(after(Duration::from_secs(5))) -> _ => out.println("WRONG timeout"),
        }
        join(h);
        // Go's slow producer sleeps 300ms; here it is held back until the select is over.
        let (slow_tx, slow) = chan::bounded::<&str>(1);
        let (go_ahead_tx, go_ahead) = chan::bounded::<()>(0);
        let h = go!(move || {
            go_ahead.recv().unwrap();
            slow_tx.send("too late").unwrap();
        });
        let start = Instant::now();
        select! {
            recv(slow) -> s => out.println(format!("WRONG {s:?}")),
            recv(after(Duration::from_millis(20))) -> t => out.println(format!(
                "timeout wins over slow producer; fired value is a non-zero time: {}",
                t.is_ok_and(|t| t > start)
            )),
        }
        go_ahead_tx.send(()).unwrap();
        join(h);
        assert_eq!(slow.recv(), Ok("too late"));
        let start = Instant::now();
        after(Duration::from_millis(40)).recv().unwrap();
        out.println(format!(
            "time.After waits at least its duration: {}",
            start.elapsed() >= Duration::from_millis(40)
        ));
        out.assert_is(EXPECTED);
    }
}

// 19_select_closed_channel_always_ready.
mod c19_select_closed_channel_always_ready {
    use super::*;

    const EXPECTED: &[&str] = &[
        "closed vs never-ready: 1000 of 1000, (0,false): 1000",
        "closed vs default: default chosen 0 times",
        "sole closed case ok: false",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let (closed_tx, closed) = chan::bounded::<i32>(0);
        closed_tx.close();
        let (_never_tx, never) = chan::bounded::<i32>(0);
        let (mut n, mut ok_false) = (0, 0);
        for _ in 0..1000 {
            select! {
                recv(closed) -> r => {
                    n += 1;
                    if r.is_err() {
                        ok_false += 1;
                    }
                }
                recv(never) -> _ => out.println("WRONG"),
            }
        }
        out.println(format!(
            "closed vs never-ready: {n} of 1000, (0,false): {ok_false}"
        ));
        let mut d = 0;
        for _ in 0..1000 {
            select! {
                recv(closed) -> _ => {}
                default => d += 1,
            }
        }
        out.println(format!("closed vs default: default chosen {d} times"));
        select! {
            recv(closed) -> r => out.println(format!("sole closed case ok: {}", r.is_ok())),
        }
        out.assert_is(EXPECTED);
    }
}

// 23_mpmc_no_loss_no_dup.
mod c23_mpmc_no_loss_no_dup {
    use super::*;

    const EXPECTED: &[&str] = &[
        "cap=0 count=40000 sum=799980000 missing=0 dups=0",
        "cap=1 count=40000 sum=799980000 missing=0 dups=0",
        "cap=16 count=40000 sum=799980000 missing=0 dups=0",
    ];

    #[test]
    fn port() {
        const P: usize = 8;
        const C: usize = 8;
        const PER: usize = 5000;
        let out = Out::default();
        for capacity in [0, 1, 16] {
            let (ch_tx, ch) = chan::bounded::<usize>(capacity);
            let producers: Vec<_> = (0..P)
                .map(|p| {
                    let tx = ch_tx.clone();
                    go!(move || {
                        for i in 0..PER {
                            tx.send(p * PER + i).unwrap();
                        }
                    })
                })
                .collect();
            // Go: go func() { pw.Wait(); close(ch) }()
            let closer = go!(move || {
                for h in producers {
                    h.join().unwrap();
                }
                ch_tx.close();
            });
            let (results_tx, results) = chan::bounded::<Vec<usize>>(C);
            let consumers: Vec<_> = (0..C)
                .map(|_| {
                    let (ch, results) = (ch.clone(), results_tx.clone());
                    go!(move || {
                        let mut mine = Vec::new();
                        for v in &ch {
                            mine.push(v);
                        }
                        results.send(mine).unwrap();
                    })
                })
                .collect();
            let mut seen = vec![0u32; P * PER];
            let (mut count, mut sum) = (0, 0);
            for _ in 0..C {
                for v in results.recv_timeout(WATCHDOG).expect("consumer result") {
                    seen[v] += 1;
                    count += 1;
                    sum += v;
                }
            }
            let missing = seen.iter().filter(|&&s| s == 0).count();
            let dups = seen.iter().filter(|&&s| s > 1).count();
            out.println(format!(
                "cap={capacity} count={count} sum={sum} missing={missing} dups={dups}"
            ));
            join(closer);
            for h in consumers {
                join(h);
            }
        }
        out.assert_is(EXPECTED);
    }
}

// 47_zero_size_signal_channel. Deviation 12.
mod c47_zero_size_signal_channel {
    use super::*;

    const EXPECTED: &[&str] = &[
        "sizeof struct{}: 0",
        "signalled, result: 42",
        "buffered zero-size len/cap: 2 3",
        "third send fits",
        "fourth send would block",
        "close broadcast woke: 5",
        "receive from closed signal channel: {} false",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        out.println(format!("sizeof struct{{}}: {}", std::mem::size_of::<()>()));
        let (done_tx, done) = chan::bounded::<()>(0);
        let result = Arc::new(AtomicI32::new(0));
        let r = result.clone();
        let h = go!(move || {
            r.store(6 * 7, std::sync::atomic::Ordering::Relaxed);
            done_tx.send(()).unwrap();
        });
        done.recv().unwrap();
        out.println(format!(
            "signalled, result: {}",
            result.load(std::sync::atomic::Ordering::Relaxed)
        ));
        join(h);

        let (b_tx, b) = chan::bounded::<()>(3);
        b_tx.send(()).unwrap();
        b_tx.send(()).unwrap();
        out.println(format!(
            "buffered zero-size len/cap: {} {}",
            b.len(),
            cap(&b)
        ));
        select! {
            send(b_tx, ()) -> _ => out.println("third send fits"),
            default => out.println("WRONG"),
        }
        select! {
            send(b_tx, ()) -> _ => out.println("WRONG"),
            default => out.println("fourth send would block"),
        }

        let (quit_tx, quit) = chan::bounded::<()>(0);
        let n = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let (quit, n) = (quit.clone(), n.clone());
                go!(move || {
                    let _ = quit.recv();
                    n.fetch_add(1, SeqCst);
                })
            })
            .collect();
        quit_tx.close();
        for h in hs {
            join(h);
        }
        out.println(format!("close broadcast woke: {}", n.load(SeqCst)));
        let ((), ok) = recv_ok(&quit);
        out.println(format!("receive from closed signal channel: {{}} {ok}"));
        out.assert_is(EXPECTED);
    }
}

// 48_happens_before_via_channel. Deviation 10: Go's plain variables are Relaxed
// atomics here, so only the channel operation orders them.
mod c48_happens_before_via_channel {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    const EXPECTED: &[&str] = &[
        "after buffered send->recv: hello, world 499500",
        "after unbuffered send completes: written before receive",
        "after receive observing close: written before close",
        "goroutine sees write made before go statement: 5",
    ];

    const TEXTS: [&str; 4] = [
        "",
        "hello, world",
        "written before receive",
        "written before close",
    ];

    #[test]
    fn port() {
        let out = Out::default();
        let msg = Arc::new(AtomicUsize::new(0));
        let data: Arc<Vec<AtomicUsize>> =
            Arc::new((0..1000).map(|_| AtomicUsize::new(0)).collect());
        let (c_tx, c) = chan::bounded::<i32>(10);
        let (m, d) = (msg.clone(), data.clone());
        let h = go!(move || {
            m.store(1, Relaxed);
            for (i, x) in d.iter().enumerate() {
                x.store(i, Relaxed);
            }
            c_tx.send(0).unwrap();
        });
        c.recv().unwrap();
        let sum: usize = data.iter().map(|x| x.load(Relaxed)).sum();
        out.println(format!(
            "after buffered send->recv: {} {sum}",
            TEXTS[msg.load(Relaxed)]
        ));
        join(h);

        let a = Arc::new(AtomicUsize::new(0));
        let (u_tx, u) = chan::bounded::<i32>(0);
        let a2 = a.clone();
        let h = go!(move || {
            a2.store(2, Relaxed);
            u.recv().unwrap();
        });
        u_tx.send(0).unwrap();
        out.println(format!(
            "after unbuffered send completes: {}",
            TEXTS[a.load(Relaxed)]
        ));
        join(h);

        let b = Arc::new(AtomicUsize::new(0));
        let (done_tx, done) = chan::bounded::<()>(0);
        let b2 = b.clone();
        let h = go!(move || {
            b2.store(3, Relaxed);
            done_tx.close();
        });
        assert!(done.recv().is_err());
        out.println(format!(
            "after receive observing close: {}",
            TEXTS[b.load(Relaxed)]
        ));
        join(h);

        let y = Arc::new(AtomicUsize::new(0));
        y.store(5, Relaxed); // the go statement is synchronized before the goroutine starts
        let (fin_tx, fin) = chan::bounded::<bool>(0);
        let (y2, o) = (y.clone(), out.clone());
        let h = go!(move || {
            o.println(format!(
                "goroutine sees write made before go statement: {}",
                y2.load(Relaxed)
            ));
            fin_tx.send(true).unwrap();
        });
        assert_eq!(fin.recv(), Ok(true));
        join(h);
        out.assert_is(EXPECTED);
    }

    #[test]
    fn repeated_on_threads_and_goroutines() {
        // The same three edges many times, with the writer on a thread or a goroutine.
        for round in 0..200 {
            let x = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = chan::bounded::<()>(round % 2);
            let x2 = x.clone();
            let writer = move || {
                x2.store(round + 1, Relaxed);
                tx.send(()).unwrap();
            };
            if round % 3 == 0 {
                let t = std::thread::spawn(writer);
                rx.recv().unwrap();
                assert_eq!(x.load(Relaxed), round + 1);
                t.join().unwrap();
            } else {
                let h = go!(writer);
                rx.recv().unwrap();
                assert_eq!(x.load(Relaxed), round + 1);
                join(h);
            }
        }
    }
}

/// Programs 03 and 01 once more, without any timing at all: a full buffer makes `try_send` fail
/// and an unbuffered channel with a parked receiver makes it succeed.
#[test]
fn a_full_buffer_refuses_try_send_and_a_parked_receiver_takes_it() {
    let (tx, rx) = chan::bounded::<i32>(3);
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    assert!(tx.try_send(3).unwrap_err().is_full());
    assert_eq!(rx.recv(), Ok(0));
    tx.try_send(3).unwrap();

    let (utx, urx) = chan::bounded::<i32>(0);
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let h = go!(move || {
        let v = urx.recv().unwrap();
        f.store(true, SeqCst);
        v
    });
    let mut v = 1;
    wait_until("a parked receiver", WATCHDOG, || match utx.try_send(v) {
        Ok(()) => true,
        Err(e) => {
            v = e.into_inner();
            false
        }
    });
    assert_eq!(join(h), 1);
    assert!(flag.load(SeqCst));
}
