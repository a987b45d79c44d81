//! API behaviour of `goway::chan`'s `Sender` and `Receiver`: constructors, every send and
//! receive flavour, iterators, len/capacity/is_closed, close and disconnection, zero-size
//! values, use across goroutines and OS threads, and exact-once dropping of values.
//!
//! No test sleeps to synchronise: waits are bounded by `WATCHDOG` so that a bug fails the test
//! instead of hanging it. Every goroutine and thread a test starts is joined before it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goway::chan::{
    self, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};
use goway::{go, select};

/// "Promptly": an operation woken by close/disconnect must return well within this.
const PROMPT: Duration = Duration::from_secs(5);
/// A short wait used to show that something does NOT happen (the outcome does not depend on
/// scheduling: with a correct library it never happens, however long we wait).
const SHORT: Duration = Duration::from_millis(50);

// ----- helpers ------------------------------------------------------------------------------

mod common;
use common::{WATCHDOG, join, join_thread, wait_until};

/// Counts drops per value id: detects leaks (0 drops) and double drops (2+ drops).
struct DropLog {
    drops: Vec<AtomicU8>,
}

impl DropLog {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(DropLog {
            drops: (0..n).map(|_| AtomicU8::new(0)).collect(),
        })
    }
    fn count(&self, id: usize) -> u8 {
        self.drops[id].load(Ordering::SeqCst)
    }
    fn total(&self) -> usize {
        self.drops
            .iter()
            .map(|d| d.load(Ordering::SeqCst) as usize)
            .sum()
    }
    fn assert_each_dropped_once(&self) {
        for (id, d) in self.drops.iter().enumerate() {
            let d = d.load(Ordering::SeqCst);
            assert_eq!(d, 1, "value {id} dropped {d} times (expected exactly once)");
        }
    }
}

/// A value whose drop is recorded in a `DropLog`.
struct Tok {
    id: usize,
    log: Arc<DropLog>,
}

impl Tok {
    fn new(log: &Arc<DropLog>, id: usize) -> Self {
        Tok {
            id,
            log: log.clone(),
        }
    }
}

impl Drop for Tok {
    fn drop(&mut self) {
        self.log.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

// ----- constructors, len/capacity ------------------------------------------------------------

#[test]
fn handles_are_send_sync_clone() {
    assert_send_sync_clone::<Sender<i32>>();
    assert_send_sync_clone::<Receiver<i32>>();
    assert_send_sync_clone::<Sender<String>>();
    assert_send_sync_clone::<Receiver<()>>();
}

#[test]
fn bounded_zero_is_unbuffered() {
    let (tx, rx) = chan::bounded::<i32>(0);
    assert_eq!((tx.len(), tx.capacity()), (0, Some(0)));
    assert_eq!((rx.len(), rx.capacity()), (0, Some(0)));
    assert!(tx.is_empty() && rx.is_empty());
    // No receiver waiting: a non-blocking send cannot complete, and nothing is buffered.
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(
        tx.send_timeout(2, SHORT)
            .is_err_and(|e| e.is_timeout() && e.into_inner() == 2)
    );
    assert_eq!(rx.len(), 0);

    // A send completes only together with a receive.
    let (done_tx, done_rx) = chan::unbounded();
    let h = go!(move || {
        tx.send(7).unwrap();
        done_tx.send(()).unwrap();
    });
    assert_eq!(
        done_rx.recv_timeout(SHORT),
        Err(RecvTimeoutError::Timeout),
        "unbuffered send completed without a receiver"
    );
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(7));
    assert_eq!(done_rx.recv_timeout(WATCHDOG), Ok(()));
    join(h);
}

#[test]
fn bounded_n_buffers_exactly_n() {
    for cap in [1usize, 2, 5, 64, 100] {
        let (tx, rx) = chan::bounded(cap);
        assert_eq!(tx.capacity(), Some(cap));
        for i in 0..cap {
            tx.try_send(i).unwrap();
            assert_eq!(rx.len(), i + 1);
        }
        assert!(tx.try_send(cap).unwrap_err().is_full());
        assert!(
            tx.send_timeout(cap, Duration::from_millis(5))
                .unwrap_err()
                .is_timeout()
        );
        assert_eq!(tx.len(), cap);
        for i in 0..cap {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert!(rx.is_empty());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[test]
fn unbounded_never_blocks() {
    let (tx, rx) = chan::unbounded();
    assert_eq!(tx.capacity(), None);
    assert_eq!(rx.capacity(), None);
    for i in 0..100_000u32 {
        tx.try_send(i).unwrap();
    }
    tx.send(100_000).unwrap();
    tx.send_timeout(100_001, Duration::ZERO).unwrap();
    assert_eq!(rx.len(), 100_002);
    for i in 0..100_002u32 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert!(rx.is_empty());
}

#[test]
fn never_channel_never_ready() {
    let rx = chan::never::<i32>();
    assert_eq!((rx.len(), rx.capacity()), (0, Some(0)));
    assert!(!rx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(SHORT), Err(RecvTimeoutError::Timeout));
    assert!(t.elapsed() >= SHORT);
    assert_eq!(
        rx.recv_deadline(Instant::now() + Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(rx.try_iter().count(), 0);
    assert!(!rx.same_channel(&chan::never()));
    assert!(!Receiver::<i32>::never().same_channel(&rx));

    let tx = Sender::<String>::never();
    assert_eq!((tx.len(), tx.capacity()), (0, Some(0)));
    assert!(!tx.is_closed());
    assert_eq!(tx.try_send("a".into()).unwrap_err().into_inner(), "a");
    assert!(tx.try_send("a".into()).unwrap_err().is_full());
    let t = Instant::now();
    let e = tx.send_timeout("b".into(), SHORT).unwrap_err();
    assert!(t.elapsed() >= SHORT);
    assert!(e.is_timeout());
    assert_eq!(e.into_inner(), "b");
    assert!(
        tx.send_deadline("c".into(), Instant::now())
            .unwrap_err()
            .is_timeout()
    );
    // Go panics on close(nil); goway's never sender just reports it did not close anything.
    assert!(!tx.close());
    assert!(!tx.is_closed());
}

#[test]
fn same_channel_is_true_only_for_handles_of_one_channel() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let (tx2, rx2) = chan::bounded::<i32>(1);
    assert!(tx.same_channel(&tx.clone()));
    assert!(rx.same_channel(&rx.clone()));
    assert!(!tx.same_channel(&tx2));
    assert!(!rx.same_channel(&rx2));
}

#[test]
fn debug_output_names_state() {
    let (tx, rx) = chan::bounded::<u8>(2);
    tx.send(1).unwrap();
    let s = format!("{tx:?} {rx:?}");
    assert!(s.contains("Sender") && s.contains("Receiver"), "{s}");
    assert!(
        s.contains("len: 1") && s.contains("capacity: Some(2)"),
        "{s}"
    );
}

// ----- send / recv flavours ------------------------------------------------------------------

#[test]
fn send_timeout_and_deadline() {
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    let t = Instant::now();
    let e = tx.send_timeout(2, Duration::from_millis(20)).unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(e, SendTimeoutError::Timeout(2));
    // A deadline in the past still tries once without waiting.
    assert_eq!(
        tx.send_deadline(3, Instant::now() - Duration::from_millis(1)),
        Err(SendTimeoutError::Timeout(3))
    );
    assert_eq!(rx.recv(), Ok(1));
    tx.send_deadline(4, Instant::now() - Duration::from_millis(1))
        .unwrap();
    assert_eq!(rx.recv(), Ok(4));

    // A receiver arriving within the timeout takes the value.
    let (tx0, rx0) = chan::bounded::<i32>(0);
    let h = go!(move || rx0.recv_timeout(WATCHDOG));
    tx0.send_timeout(5, WATCHDOG).unwrap();
    assert_eq!(join(h), Ok(5));

    // Closed channel: Closed with the value back, at once.
    tx.close();
    let t = Instant::now();
    assert_eq!(
        tx.send_timeout(6, WATCHDOG),
        Err(SendTimeoutError::Closed(6))
    );
    assert_eq!(
        tx.send_deadline(7, Instant::now() + WATCHDOG),
        Err(SendTimeoutError::Closed(7))
    );
    assert!(t.elapsed() < PROMPT);
}

#[test]
fn recv_timeout_and_deadline() {
    let (tx, rx) = chan::bounded::<i32>(2);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        rx.recv_deadline(Instant::now() + Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send(1).unwrap();
    // A deadline in the past still takes a ready value.
    assert_eq!(
        rx.recv_deadline(Instant::now() - Duration::from_millis(1)),
        Ok(1)
    );
    assert_eq!(
        rx.recv_deadline(Instant::now() - Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );

    let tx2 = tx.clone();
    let h = go!(move || tx2.send(2).unwrap());
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(2));
    join(h);

    tx.send(3).unwrap();
    tx.close();
    assert_eq!(rx.recv_timeout(WATCHDOG), Ok(3));
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
    assert_eq!(
        rx.recv_deadline(Instant::now() + WATCHDOG),
        Err(RecvTimeoutError::Closed)
    );
    assert!(t.elapsed() < PROMPT);
}

#[test]
fn huge_timeouts_mean_forever() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let h = go!(move || rx.recv_timeout(Duration::MAX));
    tx.send_timeout(1, Duration::MAX).unwrap();
    assert_eq!(join(h), Ok(1));
}

#[test]
fn zero_timeouts_do_not_wait() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    tx.send_timeout(1, Duration::ZERO).unwrap();
    assert_eq!(
        tx.send_timeout(2, Duration::ZERO),
        Err(SendTimeoutError::Timeout(2))
    );
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    assert!(t.elapsed() < PROMPT);
}

#[test]
fn try_forms_report_empty_full_and_closed_without_waiting() {
    let (tx, rx) = chan::bounded::<&str>(1);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.try_recv().unwrap_err().is_empty());
    tx.try_send("a").unwrap();
    let e = tx.try_send("b").unwrap_err();
    assert!(e.is_full() && !e.is_closed());
    assert_eq!(e.into_inner(), "b");
    assert_eq!(rx.try_recv(), Ok("a"));
    tx.close();
    let e = tx.try_send("c").unwrap_err();
    assert!(e.is_closed() && !e.is_full());
    assert_eq!(e.into_inner(), "c");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(rx.try_recv().unwrap_err().is_closed());
}

#[test]
fn try_recv_takes_from_a_blocked_unbuffered_sender() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let h = go!(move || tx.send(9));
    // Poll (bounded) until the sender is parked and its value is handed over.
    let v = common::wait_for("a parked sender", WATCHDOG, || match rx.try_recv() {
        Err(TryRecvError::Closed) => panic!("closed"),
        r => r,
    });
    assert_eq!(v, 9);
    assert_eq!(join(h), Ok(()));
}

#[test]
fn try_send_hands_to_a_blocked_unbuffered_receiver() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let h = go!(move || rx.recv());
    let mut v = 11;
    wait_until("a parked receiver", WATCHDOG, || match tx.try_send(v) {
        Ok(()) => true,
        Err(TrySendError::Full(back)) => {
            v = back;
            false
        }
        Err(TrySendError::Closed(_)) => panic!("closed"),
    });
    assert_eq!(join(h), Ok(11));
}

#[test]
fn blocked_senders_resume_in_fifo_order_on_buffered_channel() {
    let (tx, rx) = chan::bounded::<usize>(2);
    tx.send(0).unwrap();
    tx.send(1).unwrap();
    // A single producer blocking repeatedly: its values keep their order, as in Go.
    let h = go!(move || {
        for i in 2..1000 {
            tx.send(i).unwrap();
        }
    });
    for i in 0..1000 {
        assert_eq!(rx.recv_timeout(WATCHDOG), Ok(i));
    }
    join(h);
}

// ----- iterators ------------------------------------------------------------------------------

#[test]
fn iter_blocks_until_closed_and_drained() {
    let (tx, rx) = chan::bounded(0);
    let h = go!(move || {
        for i in 0..100 {
            tx.send(i).unwrap();
        }
        // tx dropped: the channel closes.
    });
    let got: Vec<i32> = rx.iter().collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    join(h);
    assert!(rx.is_closed());
    assert_eq!(rx.iter().next(), None);
}

#[test]
fn for_loop_by_reference_and_by_value() {
    let (tx, rx) = chan::bounded(4);
    let h = go!(move || {
        for i in 1..=10 {
            tx.send(i).unwrap();
        }
        assert!(tx.close());
    });
    let mut sum = 0;
    for v in &rx {
        sum += v;
    }
    assert_eq!(sum, 55);
    join(h);

    let (tx, rx) = chan::unbounded();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut seen = Vec::new();
    for v in rx {
        seen.push(v);
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);
}

#[test]
fn try_iter_takes_only_what_is_ready() {
    let (tx, rx) = chan::bounded(8);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    let t = Instant::now();
    let got: Vec<i32> = rx.try_iter().collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(rx.try_iter().count(), 0); // open and empty: does not block
    assert!(t.elapsed() < PROMPT);
    tx.send(5).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [5]);
}

// ----- close and disconnection ------------------------------------------------------------------

#[test]
fn close_returns_true_once_then_false() {
    let (tx, rx) = chan::bounded::<i32>(1);
    assert!(!tx.is_closed() && !rx.is_closed());
    assert!(tx.close());
    assert!(tx.is_closed() && rx.is_closed());
    assert!(!tx.close());
    assert!(!tx.clone().close());
    assert!(tx.is_closed());
}

#[test]
fn concurrent_close_exactly_one_wins() {
    for _ in 0..20 {
        let (tx, rx) = chan::bounded::<i32>(0);
        let (start_tx, start_rx) = chan::bounded::<()>(0);
        let mut gs = Vec::new();
        let mut ts = Vec::new();
        for i in 0..8 {
            let tx = tx.clone();
            let start_rx = start_rx.clone();
            if i % 2 == 0 {
                gs.push(go!(move || {
                    let _ = start_rx.recv();
                    tx.close()
                }));
            } else {
                ts.push(std::thread::spawn(move || {
                    let _ = start_rx.recv();
                    tx.close()
                }));
            }
        }
        drop(start_rx);
        drop(start_tx); // releases them all at once (close broadcast)
        let mut wins = 0;
        for h in gs {
            wins += join(h) as usize;
        }
        for h in ts {
            wins += join_thread(h) as usize;
        }
        assert_eq!(wins, 1, "exactly one close() must return true");
        assert!(rx.is_closed());
    }
}

#[test]
fn close_keeps_buffered_values() {
    let (tx, rx) = chan::bounded(3);
    tx.send("a").unwrap();
    tx.send("b").unwrap();
    tx.close();
    assert_eq!(rx.len(), 2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok("a"));
    assert_eq!(rx.try_recv(), Ok("b"));
    for _ in 0..1000 {
        assert_eq!(rx.recv(), Err(RecvError));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(rx.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
}

#[test]
fn dropping_all_senders_closes() {
    let (tx, rx) = chan::bounded::<i32>(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "one sender left: still open");
    tx2.send(3).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Ok(3));
    assert_eq!(rx.recv(), Err(RecvError));
    // Every receiver clone sees the same.
    assert_eq!(rx.clone().recv(), Err(RecvError));
}

#[test]
fn dropping_all_receivers_gives_values_back() {
    let (tx, rx) = chan::bounded::<String>(2);
    let rx2 = rx.clone();
    drop(rx);
    tx.send("still open".into()).unwrap();
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(tx.send("x".into()), Err(SendError("x".to_string())));
    assert_eq!(tx.send("y".into()).unwrap_err().into_inner(), "y");
    assert!(matches!(tx.try_send("z".into()), Err(TrySendError::Closed(s)) if s == "z"));
    assert!(
        matches!(tx.send_timeout("w".into(), WATCHDOG), Err(SendTimeoutError::Closed(s)) if s == "w")
    );
    // Closing afterwards reports it was already closed.
    assert!(!tx.close());
}

#[test]
fn dropping_receivers_wakes_blocked_sender_goroutine() {
    for cap in [0usize, 1] {
        let (tx, rx) = chan::bounded::<String>(cap);
        for i in 0..cap {
            tx.send(format!("buffered {i}")).unwrap();
        }
        let (started_tx, started_rx) = chan::bounded::<()>(1);
        let h = go!(move || {
            started_tx.send(()).unwrap();
            let t = Instant::now();
            let r = tx.send("blocked".into());
            (r, t.elapsed())
        });
        started_rx.recv_timeout(WATCHDOG).unwrap();
        // Whether or not the sender has parked yet, it must get its value back promptly.
        drop(rx);
        let (r, took) = join(h);
        assert_eq!(r, Err(SendError("blocked".to_string())), "cap {cap}");
        assert!(
            took < PROMPT,
            "cap {cap}: blocked send returned after {took:?}"
        );
    }
}

#[test]
fn dropping_senders_wakes_blocked_receiver_thread() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let h = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        let t = Instant::now();
        (rx.recv(), t.elapsed())
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    drop(tx);
    let (r, took) = join_thread(h);
    assert_eq!(r, Err(RecvError));
    assert!(took < PROMPT);
}

#[test]
fn dropping_receivers_wakes_blocked_sender_thread() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let h = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        (tx.send(5), tx.send_timeout(6, WATCHDOG))
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    drop(rx);
    let (a, b) = join_thread(h);
    assert_eq!(a, Err(SendError(5)));
    assert_eq!(b, Err(SendTimeoutError::Closed(6)));
}

#[test]
fn close_wakes_every_blocked_sender_and_receiver() {
    // Receivers blocked on one channel, senders blocked on another; goroutines and threads.
    let (rtx, rrx) = chan::bounded::<u32>(0);
    let (stx, srx) = chan::bounded::<u32>(0);
    let (ready_tx, ready_rx) = chan::unbounded::<()>();
    let mut gs = Vec::new();
    let mut ts = Vec::new();
    for i in 0..10u32 {
        let rrx = rrx.clone();
        let stx = stx.clone();
        let ready = ready_tx.clone();
        if i % 2 == 0 {
            gs.push(go!(move || {
                ready.send(()).unwrap();
                (rrx.recv().is_err(), stx.send(i) == Err(SendError(i)))
            }));
        } else {
            ts.push(std::thread::spawn(move || {
                ready.send(()).unwrap();
                (rrx.recv().is_err(), stx.send(i) == Err(SendError(i)))
            }));
        }
    }
    for _ in 0..10 {
        ready_rx.recv_timeout(WATCHDOG).unwrap();
    }
    assert!(rtx.close());
    assert!(stx.close());
    for h in gs {
        assert_eq!(join(h), (true, true));
    }
    for h in ts {
        assert_eq!(join_thread(h), (true, true));
    }
    drop(srx);
}

// ----- bad use gets a clear result ----------------------------------------------------------

#[test]
fn bad_use_never_panics_or_hangs() {
    // Send after close: the value comes back.
    let (tx, rx) = chan::bounded::<Vec<u8>>(1);
    assert!(tx.close());
    let e = tx.send(vec![1, 2, 3]).unwrap_err();
    assert_eq!(e.0, [1, 2, 3]);
    assert_eq!(format!("{e}"), "sending on a closed channel");
    assert_eq!(format!("{e:?}"), "SendError(..)");
    // Close twice.
    assert!(!tx.close());
    assert!(!tx.close());
    // Receive on closed, over and over, never blocking.
    let t = Instant::now();
    for _ in 0..100_000 {
        assert_eq!(rx.recv(), Err(RecvError));
    }
    assert!(t.elapsed() < PROMPT);
    assert_eq!(format!("{}", RecvError), "receiving on a closed channel");
    // Close of the never (nil) channel is a no-op.
    assert!(!Sender::<u8>::never().close());
}

#[test]
fn error_types_display_and_convert() {
    assert_eq!(
        TrySendError::Full(1).to_string(),
        "sending on a full channel"
    );
    assert_eq!(
        TrySendError::Closed(1).to_string(),
        "sending on a closed channel"
    );
    assert_eq!(format!("{:?}", TrySendError::Full(1)), "Full(..)");
    assert_eq!(
        SendTimeoutError::Timeout(1).to_string(),
        "timed out waiting on send operation"
    );
    assert_eq!(
        RecvTimeoutError::Timeout.to_string(),
        "timed out waiting on receive operation"
    );
    assert_eq!(
        TryRecvError::Empty.to_string(),
        "receiving on an empty channel"
    );
    assert_eq!(TrySendError::from(SendError(3)), TrySendError::Closed(3));
    assert_eq!(
        SendTimeoutError::from(SendError(3)),
        SendTimeoutError::Closed(3)
    );
    assert_eq!(TryRecvError::from(RecvError), TryRecvError::Closed);
    assert_eq!(RecvTimeoutError::from(RecvError), RecvTimeoutError::Closed);
    // Errors work with `?` into Box<dyn Error> for any T (no T: Debug bound needed).
    struct NoDebug;
    fn f() -> Result<(), Box<dyn std::error::Error>> {
        let (tx, _) = chan::bounded::<NoDebug>(0);
        tx.try_send(NoDebug)?;
        Ok(())
    }
    assert!(f().is_err());
}

#[test]
fn dropping_join_handle_of_running_goroutine_detaches_it() {
    let (kick_tx, kick_rx) = chan::bounded::<u32>(0);
    let (out_tx, out_rx) = chan::bounded::<u32>(1);
    let h = go!(move || {
        let v = kick_rx.recv().unwrap();
        out_tx.send(v * 2).unwrap();
        v
    });
    assert!(!h.is_finished());
    drop(h); // detach while it is blocked: no panic, no hang
    kick_tx.send_timeout(21, WATCHDOG).unwrap();
    // The detached goroutine keeps running and finishes (it is ended before the test ends).
    assert_eq!(out_rx.recv_timeout(WATCHDOG), Ok(42));
    // It has finished once its sender is dropped.
    assert_eq!(out_rx.recv_timeout(WATCHDOG), Err(RecvTimeoutError::Closed));
}

#[test]
fn dropping_join_handle_of_panicking_goroutine_is_contained() {
    let (kick_tx, kick_rx) = chan::bounded::<()>(0);
    let (done_tx, done_rx) = chan::bounded::<()>(0);
    let h = go!(move || {
        let _done = done_tx; // dropped (closing done) when the goroutine unwinds
        kick_rx.recv().unwrap();
        panic!("deliberate panic in a detached goroutine");
    });
    drop(h);
    kick_tx.send_timeout((), WATCHDOG).unwrap();
    assert_eq!(
        done_rx.recv_timeout(WATCHDOG),
        Err(RecvTimeoutError::Closed)
    );
}

// ----- zero-size values ---------------------------------------------------------------------

#[test]
fn zero_size_values_fill_buffers_count_and_signal_like_any_value() {
    assert_eq!(std::mem::size_of::<()>(), 0);
    let (tx, rx) = chan::bounded::<()>(3);
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    assert_eq!((rx.len(), rx.capacity()), (2, Some(3)));
    tx.try_send(()).unwrap();
    assert!(tx.try_send(()).unwrap_err().is_full());
    assert_eq!(rx.try_iter().count(), 3);

    let (tx, rx) = chan::unbounded::<()>();
    for _ in 0..1_000_000 {
        tx.send(()).unwrap();
    }
    assert_eq!(rx.len(), 1_000_000);
    assert_eq!(rx.try_iter().count(), 1_000_000);

    // Unbuffered signal, then close as broadcast.
    let (tx, rx) = chan::bounded::<()>(0);
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let rx = rx.clone();
            go!(move || rx.recv())
        })
        .collect();
    tx.send_timeout((), WATCHDOG).unwrap(); // exactly one of them takes the signal
    tx.close();
    let results: Vec<_> = waiters.into_iter().map(join).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 4);
}

// ----- across goroutines and OS threads ---------------------------------------------------------

#[test]
fn clones_across_goroutines_and_threads() {
    const PER: u64 = 2000;
    for cap in [0usize, 1, 7] {
        let (tx, rx) = chan::bounded::<u64>(cap);
        let (res_tx, res_rx) = chan::unbounded::<(u64, u64)>();
        let mut gs = Vec::new();
        let mut ts = Vec::new();
        for p in 0..4u64 {
            let tx = tx.clone();
            let body = move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            };
            if p % 2 == 0 {
                gs.push(go!(body));
            } else {
                ts.push(std::thread::spawn(body));
            }
        }
        drop(tx);
        let mut cgs = Vec::new();
        let mut cts = Vec::new();
        for c in 0..4 {
            let rx = rx.clone();
            let res = res_tx.clone();
            let body = move || {
                let (mut n, mut sum) = (0, 0);
                for v in &rx {
                    n += 1;
                    sum += v;
                }
                res.send((n, sum)).unwrap();
            };
            if c % 2 == 0 {
                cgs.push(go!(body));
            } else {
                cts.push(std::thread::spawn(body));
            }
        }
        drop(rx);
        drop(res_tx);
        for h in gs.into_iter().chain(cgs) {
            join(h);
        }
        for h in ts.into_iter().chain(cts) {
            join_thread(h);
        }
        let (mut n, mut sum) = (0, 0);
        while let Ok((a, b)) = res_rx.recv_timeout(WATCHDOG) {
            n += a;
            sum += b;
        }
        let total = 4 * PER;
        assert_eq!(n, total, "cap {cap}");
        assert_eq!(sum, total * (total - 1) / 2, "cap {cap}");
    }
}

#[test]
fn happens_before_through_channel_across_threads() {
    // Relaxed writes before a send are visible after the matching receive.
    let data = Arc::new((0..1000).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (tx, rx) = chan::bounded::<()>(0);
    let d = data.clone();
    let t = std::thread::spawn(move || {
        for (i, x) in d.iter().enumerate() {
            x.store(i + 1, Ordering::Relaxed);
        }
        tx.send(()).unwrap();
    });
    let h = go!(move || {
        rx.recv().unwrap();
        data.iter()
            .enumerate()
            .all(|(i, x)| x.load(Ordering::Relaxed) == i + 1)
    });
    assert!(join(h));
    join_thread(t);
}

// ----- values dropped exactly once ------------------------------------------------------------

#[test]
fn buffered_values_dropped_once_when_channel_dropped() {
    for cap in [1usize, 4, usize::MAX] {
        let log = DropLog::new(4);
        {
            let (tx, rx) = if cap == usize::MAX {
                chan::unbounded()
            } else {
                chan::bounded(cap.max(4))
            };
            for id in 0..4 {
                tx.send(Tok::new(&log, id)).unwrap();
            }
            assert_eq!(log.total(), 0);
            drop(tx);
            assert_eq!(log.total(), 0, "closing must not drop buffered values");
            drop(rx);
        }
        log.assert_each_dropped_once();
    }
}

#[test]
fn buffered_values_dropped_once_when_last_receiver_dropped_first() {
    let log = DropLog::new(4);
    let (tx, rx) = chan::bounded(3);
    for id in 0..3 {
        tx.send(Tok::new(&log, id)).unwrap();
    }
    drop(rx);
    // Nobody can receive them any more: dropped now, once.
    assert_eq!(log.total(), 3);
    let back = tx.send(Tok::new(&log, 3)).unwrap_err().into_inner();
    assert_eq!(back.id, 3);
    assert_eq!(log.count(3), 0, "the value given back is not dropped yet");
    drop(back);
    drop(tx);
    log.assert_each_dropped_once();
}

#[test]
fn received_values_dropped_once() {
    let log = DropLog::new(100);
    let (tx, rx) = chan::bounded(0);
    let l = log.clone();
    let h = go!(move || {
        for id in 0..100 {
            tx.send(Tok::new(&l, id)).unwrap();
        }
    });
    for (n, t) in rx.iter().enumerate() {
        assert_eq!(t.id, n);
        assert_eq!(log.count(n), 0);
    }
    join(h);
    log.assert_each_dropped_once();
}

#[test]
fn timed_out_send_returns_value_without_dropping_it() {
    let log = DropLog::new(3);
    let (tx, rx) = chan::bounded(1);
    tx.send(Tok::new(&log, 0)).unwrap();
    let back = tx
        .send_timeout(Tok::new(&log, 1), Duration::from_millis(5))
        .unwrap_err();
    assert!(back.is_timeout());
    assert_eq!(log.count(1), 0);
    let back = back.into_inner();
    assert_eq!(back.id, 1);
    drop(back);
    assert_eq!(log.count(1), 1);
    let full = tx.try_send(Tok::new(&log, 2)).unwrap_err();
    assert_eq!(log.count(2), 0);
    drop(full);
    assert_eq!(log.count(2), 1);
    drop(tx);
    drop(rx);
    log.assert_each_dropped_once();

    // Unbuffered, timing out while parked (the value sat in a wait-queue packet).
    let log = DropLog::new(1);
    let (tx, rx) = chan::bounded::<Tok>(0);
    let back = tx
        .send_timeout(Tok::new(&log, 0), Duration::from_millis(20))
        .unwrap_err()
        .into_inner();
    assert_eq!(log.count(0), 0);
    drop(back);
    drop((tx, rx));
    log.assert_each_dropped_once();
}

#[test]
fn blocked_send_value_comes_back_on_close_and_is_dropped_once() {
    let log = DropLog::new(2);
    let (tx, rx) = chan::bounded::<Tok>(1);
    tx.send(Tok::new(&log, 0)).unwrap();
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let tx2 = tx.clone();
    let l = log.clone();
    let h = go!(move || {
        started_tx.send(()).unwrap();
        let e = tx2.send(Tok::new(&l, 1)).unwrap_err();
        e.into_inner().id
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    tx.close();
    assert_eq!(join(h), 1);
    assert_eq!(log.count(1), 1);
    assert_eq!(log.count(0), 0, "buffered value survives close");
    assert_eq!(rx.recv().map(|t| t.id), Ok(0));
    log.assert_each_dropped_once();
}

#[test]
fn unchosen_select_send_value_dropped_once() {
    let log = DropLog::new(3);
    let (tx, rx) = chan::bounded::<Tok>(0); // no receiver: never ready
    let (ready_tx, ready_rx) = chan::bounded::<u8>(1);
    ready_tx.send(1).unwrap();
    let picked = select! {
        send(tx, Tok::new(&log, 0)) -> _ => "send",
        recv(ready_rx) -> _ => "recv",
    };
    assert_eq!(picked, "recv");
    assert_eq!(log.count(0), 1, "the unsent value is dropped exactly once");

    // With default.
    let picked = select! {
        send(tx, Tok::new(&log, 1)) -> _ => "send",
        default => "default",
    };
    assert_eq!(picked, "default");
    assert_eq!(log.count(1), 1);

    // Timing out while registered (value parked in the channel's wait queue).
    let picked = select! {
        send(tx, Tok::new(&log, 2)) -> _ => "send",
        recv(goway::time::after(Duration::from_millis(20))) -> _ => "timeout",
    };
    assert_eq!(picked, "timeout");
    assert_eq!(log.count(2), 1);
    drop((tx, rx));
    log.assert_each_dropped_once();
}

#[test]
fn chosen_select_send_value_dropped_once_by_receiver() {
    let log = DropLog::new(1);
    let (tx, rx) = chan::bounded::<Tok>(0);
    let h = go!(move || rx.recv().map(|t| t.id));
    let r = select! {
        send(tx, Tok::new(&log, 0)) -> r => r.is_ok(),
        recv(goway::time::after(WATCHDOG)) -> _ => false,
    };
    assert!(r);
    assert_eq!(join(h), Ok(0));
    log.assert_each_dropped_once();
}

#[test]
fn select_send_to_closed_gives_value_back_not_dropped() {
    let log = DropLog::new(1);
    let (tx, _rx) = chan::bounded::<Tok>(0);
    tx.close();
    let back = select! {
        send(tx, Tok::new(&log, 0)) -> r => r.unwrap_err().into_inner(),
        default => panic!("closed send arm must beat default"),
    };
    assert_eq!(log.count(0), 0);
    assert_eq!(back.id, 0);
    drop(back);
    log.assert_each_dropped_once();
}

#[test]
fn many_values_in_flight_dropped_exactly_once() {
    // Producers race a close; every value is either received, given back, or dropped by the
    // channel, and each is dropped exactly once.
    const N: usize = 4 * 500;
    let log = DropLog::new(N);
    let (tx, rx) = chan::bounded::<Tok>(3);
    let mut hs = Vec::new();
    for p in 0..4 {
        let tx = tx.clone();
        let l = log.clone();
        hs.push(go!(move || {
            let mut back = 0;
            for i in 0..N / 4 {
                if tx.send(Tok::new(&l, p * (N / 4) + i)).is_err() {
                    back += 1; // the Err (with the value) is dropped here
                }
            }
            back
        }));
    }
    drop(tx);
    let mut got = 0;
    while got < N / 2 {
        rx.recv_timeout(WATCHDOG).expect("value");
        got += 1;
    }
    drop(rx); // the last receiver: closes, drops the buffer, senders get values back
    let back: usize = hs.into_iter().map(join).sum();
    assert!(got + back <= N);
    log.assert_each_dropped_once();
}

// ----- timed waits inside goroutines ------------------------------------------------------------
// Regression tests: a goroutine's timed wait used to park forever (may keeps coroutine park
// timeouts in whole milliseconds, 0 = no timeout); fixed in 91994ff.

/// Runs `f` in a goroutine; fails (instead of hanging) if it does not return within `limit`.
fn in_goroutine<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = chan::bounded(1);
    let h = go!(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            join(h);
            v
        }
        Err(_) => panic!("goroutine still parked after {limit:?}: its timed wait never expired"),
    }
}

/// Generous: the waits below are 20 ms at most.
const GOROUTINE_LIMIT: Duration = WATCHDOG;

#[test]
fn timeouts_that_are_already_due_return_at_once_in_a_goroutine() {
    // No parking involved: a zero timeout or a past deadline only tries once.
    let r = in_goroutine(GOROUTINE_LIMIT, || {
        let (tx, rx) = chan::bounded::<i32>(0);
        (
            rx.recv_timeout(Duration::ZERO),
            rx.recv_deadline(Instant::now() - Duration::from_millis(1)),
            tx.send_timeout(1, Duration::ZERO),
        )
    });
    assert_eq!(
        r,
        (
            Err(RecvTimeoutError::Timeout),
            Err(RecvTimeoutError::Timeout),
            Err(SendTimeoutError::Timeout(1))
        )
    );
}

#[test]
fn recv_timeout_expires_in_a_goroutine() {
    let (r, took) = in_goroutine(GOROUTINE_LIMIT, || {
        let (_tx, rx) = chan::bounded::<i32>(0);
        let t = Instant::now();
        (rx.recv_timeout(Duration::from_millis(20)), t.elapsed())
    });
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
    assert!(took >= Duration::from_millis(20));
}

#[test]
fn recv_deadline_expires_in_a_goroutine() {
    let r = in_goroutine(GOROUTINE_LIMIT, || {
        let (_tx, rx) = chan::bounded::<i32>(1);
        rx.recv_deadline(Instant::now() + Duration::from_millis(20))
    });
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
}

#[test]
fn send_timeout_expires_in_a_goroutine() {
    let r = in_goroutine(GOROUTINE_LIMIT, || {
        let (tx, _rx) = chan::bounded::<i32>(0);
        tx.send_timeout(4, Duration::from_millis(20))
    });
    assert_eq!(r, Err(SendTimeoutError::Timeout(4)));
}

#[test]
fn never_channel_timeout_expires_in_a_goroutine() {
    let r = in_goroutine(GOROUTINE_LIMIT, || {
        (
            chan::never::<u8>().recv_timeout(Duration::from_millis(20)),
            Sender::<u8>::never().send_timeout(1, Duration::from_millis(20)),
        )
    });
    assert_eq!(
        r,
        (
            Err(RecvTimeoutError::Timeout),
            Err(SendTimeoutError::Timeout(1))
        )
    );
}

#[test]
fn sub_millisecond_timeout_expires_in_a_goroutine() {
    let r = in_goroutine(GOROUTINE_LIMIT, || {
        let (_tx, rx) = chan::bounded::<i32>(0);
        rx.recv_timeout(Duration::from_micros(100))
    });
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
}

/// A timeout of centuries (a common "forever" idiom) inside a goroutine neither panics nor
/// spins: the wait is parked in capped slices and still wakes for the value.
#[test]
fn a_timeout_of_centuries_in_a_goroutine_still_receives() {
    let (tx, rx) = chan::bounded::<u8>(0);
    let h = goway::go!(move || rx.recv_timeout(Duration::from_nanos(u64::MAX)));
    tx.send_timeout(7, Duration::from_secs(10))
        .expect("the goroutine receives");
    match h.join_timeout(Duration::from_secs(10)) {
        Ok(r) => assert_eq!(r, Ok(7)),
        Err(_) => panic!("the goroutine did not finish"),
    }
}
