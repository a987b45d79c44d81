//! `goway::select!` and the run-time `goway::select::Select` builder: recv, send and default
//! arms, `time::after` timeouts, never-ready arms, closed channels, a select sending and
//! receiving on one channel, selects on both sides of a channel, control flow in arms, the merge
//! idiom, and "a select never leaves a waiter behind".
//!
//! No test sleeps to synchronise; every wait is bounded (`WATCHDOG`), and every goroutine and
//! thread a test starts is joined before it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use goway::chan::{self, RecvError, SendError, Sender, TryRecvError, TrySendError};
use goway::select::Select;
use goway::time::after;
use goway::{go, select};

/// A short wait used to show that something does NOT happen.
const SHORT: Duration = Duration::from_millis(50);

mod common;
use common::{WATCHDOG, join, join_thread};

// ----- basic arms -------------------------------------------------------------------------------

#[test]
fn recv_arm_takes_ready_value() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let (_tx2, rx2) = chan::bounded::<i32>(1);
    tx.send(5).unwrap();
    let got = select! {
        recv(rx) -> v => v,
        recv(rx2) -> _ => panic!("empty channel chosen"),
    };
    assert_eq!(got, Ok(5));
    assert!(rx.is_empty());
}

#[test]
fn send_arm_sends_when_there_is_room() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let (full_tx, _full_rx) = chan::bounded::<i32>(0);
    let r = select! {
        send(tx, 7) -> r => r,
        send(full_tx, 8) -> _ => panic!("unbuffered send without receiver chosen"),
    };
    assert_eq!(r, Ok(()));
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn default_runs_iff_no_arm_is_ready() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let d = select! {
        recv(rx) -> _ => false,
        default => true,
    };
    assert!(d, "empty: default");
    tx.send(1).unwrap();
    let d = select! {
        recv(rx) -> v => { assert_eq!(v, Ok(1)); false }
        default => true,
    };
    assert!(!d, "ready recv beats default");
    let d = select! {
        send(tx, 2) -> r => { assert!(r.is_ok()); false }
        default => true,
    };
    assert!(!d, "room to send beats default");
    let d = select! {
        send(tx, 3) -> _ => false,
        default => true,
    };
    assert!(d, "full: default");
    // A lone default never blocks.
    let t = Instant::now();
    let x = select! { default => 42 };
    assert_eq!(x, 42);
    assert!(t.elapsed() < WATCHDOG);
}

#[test]
fn blocks_until_an_arm_becomes_ready() {
    // From a goroutine and from a thread; woken by a send, by a receive, and by a close.
    let (a_tx, a_rx) = chan::bounded::<i32>(0);
    let (b_tx, b_rx) = chan::bounded::<i32>(0);
    let h = go!(move || {
        select! {
            recv(a_rx) -> v => v,
            recv(after(WATCHDOG)) -> _ => Err(RecvError),
        }
    });
    a_tx.send_timeout(1, WATCHDOG).unwrap();
    assert_eq!(join(h), Ok(1));

    let t = std::thread::spawn(move || {
        select! {
            send(b_tx, 2) -> r => r.is_ok(),
            recv(after(WATCHDOG)) -> _ => false,
        }
    });
    assert_eq!(b_rx.recv_timeout(WATCHDOG), Ok(2));
    assert!(join_thread(t));

    let (c_tx, c_rx) = chan::bounded::<i32>(0);
    let h = go!(move || {
        select! {
            recv(c_rx) -> v => v,
            recv(after(WATCHDOG)) -> _ => Ok(-1),
        }
    });
    let c2 = c_tx.clone();
    c2.close();
    assert_eq!(join(h), Err(RecvError));
    drop(c_tx);
}

#[test]
fn arms_accept_receivers_and_senders_by_value_ref_and_mut_ref() {
    let (tx, rx) = chan::bounded::<i32>(4);
    let mut tx_m = tx.clone();
    let mut rx_m = rx.clone();
    select! { send(tx, 1) -> r => r.unwrap() }
    select! { send(&tx, 2) -> r => r.unwrap() }
    select! { send(&mut tx_m, 3) -> r => r.unwrap() }
    select! { send(tx.clone(), 4) -> r => r.unwrap() }
    assert_eq!(select! { recv(rx) -> v => v.unwrap() }, 1);
    assert_eq!(select! { recv(&rx) -> v => v.unwrap() }, 2);
    assert_eq!(select! { recv(&mut rx_m) -> v => v.unwrap() }, 3);
    assert_eq!(select! { recv(rx.clone()) -> v => v.unwrap() }, 4);
}

#[test]
fn channel_and_value_expressions_evaluated_once_in_order() {
    let order = std::cell::RefCell::new(Vec::new());
    let (tx, rx) = chan::bounded::<i32>(1);
    let (_tx2, rx2) = chan::bounded::<i32>(0);
    let r = select! {
        recv({ order.borrow_mut().push("rx2"); &rx2 }) -> _ => "recv",
        send({ order.borrow_mut().push("tx"); &tx }, { order.borrow_mut().push("value"); 9 }) -> _ => "send",
    };
    assert_eq!(r, "send");
    assert_eq!(*order.borrow(), ["rx2", "tx", "value"]);
    assert_eq!(rx.try_recv(), Ok(9));
}

#[test]
fn block_and_expression_arm_bodies_and_trailing_commas() {
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    let a = select! {
        recv(rx) -> v => { v.unwrap() + 1 }
        default => { 0 }
    };
    let b = select! {
        recv(rx) -> v => v.unwrap(),
        default => 10,
    };
    let c = select! { default => 20, };
    assert_eq!((a, b, c), (2, 10, 20));
}

// ----- timeouts -----------------------------------------------------------------------------------

#[test]
fn after_arm_times_out_when_nothing_is_ready() {
    let (_tx, rx) = chan::bounded::<i32>(0);
    let t = Instant::now();
    let r = select! {
        recv(rx) -> _ => "value",
        recv(after(Duration::from_millis(30))) -> fired => {
            let fired = fired.expect("timer channel delivers the time");
            assert!(fired >= t + Duration::from_millis(30));
            "timeout"
        }
    };
    assert_eq!(r, "timeout");
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn ready_value_beats_timeout() {
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(5).unwrap();
    let t = Instant::now();
    let r = select! {
        recv(rx) -> v => v,
        recv(after(Duration::from_secs(2))) -> _ => Err(RecvError),
    };
    assert_eq!(r, Ok(5));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn value_arriving_during_the_wait_beats_timeout() {
    let (tx, rx) = chan::bounded::<&str>(0);
    let h = go!(move || tx.send("arrived"));
    let r = select! {
        recv(rx) -> v => v,
        recv(after(WATCHDOG)) -> _ => Err(RecvError),
    };
    assert_eq!(r, Ok("arrived"));
    assert_eq!(join(h), Ok(()));
}

#[test]
fn timeout_beats_a_producer_that_is_held_back() {
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let (tx, rx) = chan::bounded::<&str>(1);
    let h = go!(move || {
        go_rx.recv().unwrap(); // held back until after the select
        tx.send("too late").unwrap();
    });
    let r = select! {
        recv(rx) -> _ => "value",
        recv(after(Duration::from_millis(20))) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
    go_tx.send_timeout((), WATCHDOG).unwrap();
    join(h);
    assert_eq!(rx.try_recv(), Ok("too late"));
}

#[test]
fn timeout_arm_in_a_goroutine() {
    // The timer fires on goway's timer thread: a goroutine waiting on it is woken by a send.
    let h = go!(|| {
        let (_tx, rx) = chan::bounded::<i32>(0);
        let t = Instant::now();
        let r = select! {
            recv(rx) -> _ => false,
            recv(after(Duration::from_millis(20))) -> _ => true,
        };
        (r, t.elapsed())
    });
    let (timed_out, took) = join(h);
    assert!(timed_out);
    assert!(took >= Duration::from_millis(20));
}

// ----- never and closed channels --------------------------------------------------------------------

#[test]
fn never_arms_are_never_chosen() {
    let (tx, rx) = chan::bounded::<i32>(1000);
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    let never_rx = chan::never::<i32>();
    let never_tx = Sender::<i32>::never();
    for i in 0..1000 {
        let v = select! {
            recv(never_rx) -> _ => panic!("never recv chosen"),
            send(never_tx, 1) -> _ => panic!("never send chosen"),
            recv(rx) -> v => v.unwrap(),
        };
        assert_eq!(v, i);
    }
    for _ in 0..100 {
        let d = select! {
            recv(never_rx) -> _ => false,
            send(never_tx, 1) -> _ => false,
            default => true,
        };
        assert!(d);
    }
    let r = select! {
        recv(never_rx) -> _ => "never",
        send(never_tx, 1) -> _ => "never",
        recv(after(SHORT)) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
}

#[test]
fn closed_recv_arm_is_always_ready() {
    let (tx, rx) = chan::bounded::<i32>(0);
    tx.close();
    let (_tx2, open_rx) = chan::bounded::<i32>(0);
    for _ in 0..1000 {
        let r = select! {
            recv(rx) -> v => v,
            recv(open_rx) -> _ => panic!("open empty channel chosen"),
            recv(chan::never::<i32>()) -> _ => panic!("never chosen"),
        };
        assert_eq!(r, Err(RecvError));
        let d = select! {
            recv(rx) -> _ => false,
            default => true,
        };
        assert!(!d, "closed channel must beat default");
    }
    // A lone closed arm does not block.
    let r = select! { recv(rx) -> v => v };
    assert_eq!(r, Err(RecvError));
}

#[test]
fn closed_buffered_channel_drains_through_select_then_errs() {
    let (tx, rx) = chan::bounded::<i32>(3);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    tx.close();
    for i in 0..3 {
        assert_eq!(
            select! { recv(rx) -> v => v, default => Err(RecvError) },
            Ok(i)
        );
    }
    for _ in 0..10 {
        assert_eq!(
            select! { recv(rx) -> v => v, default => Ok(-1) },
            Err(RecvError)
        );
    }
}

#[test]
fn closed_send_arm_is_ready_and_gives_the_value_back() {
    let (tx, _rx) = chan::bounded::<String>(1);
    tx.close();
    for _ in 0..100 {
        let r = select! {
            send(tx, "mine".to_string()) -> r => r,
            default => panic!("closed send arm must beat default (Go panics here)"),
        };
        assert_eq!(r, Err(SendError("mine".to_string())));
    }
    let r = select! { send(tx, "x".to_string()) -> r => r.unwrap_err().into_inner() };
    assert_eq!(r, "x");
}

#[test]
fn close_wakes_a_blocked_select() {
    // Recv arm.
    let (a_tx, a_rx) = chan::bounded::<i32>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let h = go!(move || {
        started_tx.send(()).unwrap();
        select! {
            recv(a_rx) -> v => v,
            recv(after(WATCHDOG)) -> _ => Ok(-1),
        }
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    a_tx.close();
    assert_eq!(join(h), Err(RecvError));

    // Send arm, on a thread: the value comes back.
    let (b_tx, b_rx) = chan::bounded::<String>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let b2 = b_tx.clone();
    let t = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        select! {
            send(b2, "v".to_string()) -> r => r,
            recv(after(WATCHDOG)) -> _ => Ok(()),
        }
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    b_tx.close();
    assert_eq!(join_thread(t), Err(SendError("v".to_string())));
    drop(b_rx);
}

#[test]
fn dropping_receivers_wakes_a_select_blocked_on_send() {
    let (tx, rx) = chan::bounded::<u64>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let h = go!(move || {
        started_tx.send(()).unwrap();
        select! {
            send(tx, 77) -> r => r,
            recv(after(WATCHDOG)) -> _ => Ok(()),
        }
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    drop(rx);
    assert_eq!(join(h), Err(SendError(77)));
}

#[test]
fn dropping_senders_wakes_a_select_blocked_on_recv() {
    let (tx, rx) = chan::bounded::<u64>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let t = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        select! {
            recv(rx) -> r => r,
            recv(after(WATCHDOG)) -> _ => Ok(0),
        }
    });
    started_rx.recv_timeout(WATCHDOG).unwrap();
    drop(tx);
    assert_eq!(join_thread(t), Err(RecvError));
}

// ----- one select, one channel, both directions ---------------------------------------------------

#[test]
fn select_never_pairs_its_send_with_its_own_recv() {
    let (tx, rx) = chan::bounded::<i32>(0);
    for _ in 0..5 {
        let r = select! {
            send(tx, 1) -> _ => "sent",
            recv(rx) -> _ => "received",
            recv(after(Duration::from_millis(20))) -> _ => "timeout",
        };
        assert_eq!(r, "timeout", "a select must not rendezvous with itself");
        // ...and it left nothing behind.
        assert!(tx.try_send(2).unwrap_err().is_full());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
    let d = select! {
        send(tx, 1) -> _ => false,
        recv(rx) -> _ => false,
        default => true,
    };
    assert!(d);
}

#[test]
fn select_send_and_recv_on_one_buffered_channel() {
    let (tx, rx) = chan::bounded::<i32>(1);
    // Empty: only the send can proceed.
    for _ in 0..100 {
        let r = select! {
            send(tx, 1) -> r => { r.unwrap(); "sent" }
            recv(rx) -> _ => "received",
        };
        assert_eq!(r, "sent");
        // Full: only the receive can proceed.
        let r = select! {
            send(tx, 2) -> _ => "sent",
            recv(rx) -> v => { assert_eq!(v, Ok(1)); "received" }
        };
        assert_eq!(r, "received");
    }
}

#[test]
fn two_selects_sending_and_receiving_on_one_channel_pair_with_each_other() {
    // Both goroutines run `select { ch <- me; v := <-ch }` on one unbuffered channel: one must
    // send to the other; neither may pair with itself.
    for round in 0..200u32 {
        let (tx, rx) = chan::bounded::<u32>(0);
        let mut hs = Vec::new();
        for me in [round * 2, round * 2 + 1] {
            let (tx, rx) = (tx.clone(), rx.clone());
            hs.push(go!(move || {
                select! {
                    send(tx, me) -> r => { r.unwrap(); (me, None) }
                    recv(rx) -> v => (me, Some(v.unwrap())),
                    recv(after(WATCHDOG)) -> _ => panic!("the two selects did not pair"),
                }
            }));
        }
        let rs: Vec<_> = hs.into_iter().map(join).collect();
        let (a, b) = (rs[0], rs[1]);
        match (a.1, b.1) {
            (None, Some(v)) => assert_eq!(v, a.0),
            (Some(v), None) => assert_eq!(v, b.0),
            other => panic!("round {round}: expected one send and one receive, got {other:?}"),
        }
    }
}

#[test]
fn select_send_meets_select_recv_on_unbuffered_channel() {
    // Rendezvous where both sides are selects; goroutine/goroutine and goroutine/thread.
    const N: u32 = 2000;
    for thread_receiver in [false, true] {
        let (tx, rx) = chan::bounded::<u32>(0);
        let (_quit_tx, quit_rx) = chan::bounded::<()>(0);
        let q = quit_rx.clone();
        let sender = go!(move || {
            for i in 0..N {
                select! {
                    send(tx, i) -> r => r.unwrap(),
                    recv(q) -> _ => return false,
                }
            }
            true
        });
        let recv_all = move || {
            let mut got = Vec::with_capacity(N as usize);
            while got.len() < N as usize {
                select! {
                    recv(rx) -> v => got.push(v.unwrap()),
                    recv(quit_rx) -> _ => break,
                }
            }
            got
        };
        let got = if thread_receiver {
            join_thread(std::thread::spawn(recv_all))
        } else {
            join(go!(recv_all))
        };
        assert!(join(sender));
        assert_eq!(got, (0..N).collect::<Vec<_>>());
    }
}

#[test]
fn two_arms_on_the_same_receiver() {
    let (tx, rx) = chan::bounded::<i32>(2);
    tx.send(1).unwrap();
    let (mut first, mut second) = (0, 0);
    for _ in 0..200 {
        select! {
            recv(rx) -> v => { assert_eq!(v, Ok(1)); first += 1; }
            recv(rx) -> v => { assert_eq!(v, Ok(1)); second += 1; }
        }
        assert!(rx.is_empty(), "exactly one arm took the value");
        tx.send(1).unwrap();
    }
    assert_eq!(first + second, 200);
    assert!(
        first > 0 && second > 0,
        "random choice between identical arms"
    );
}

// ----- control flow in arms, merge idiom ---------------------------------------------------------

#[test]
fn arms_can_break_continue_and_return() {
    let (tx, rx) = chan::bounded(16);
    for i in 1..=10 {
        tx.send(i).unwrap();
    }
    tx.close();
    let mut odd_sum = 0;
    let mut iterations = 0;
    loop {
        iterations += 1;
        select! {
            recv(rx) -> v => match v {
                Ok(x) if x % 2 == 0 => continue,
                Ok(x) => odd_sum += x,
                Err(_) => break,
            },
            recv(after(WATCHDOG)) -> _ => panic!("hang"),
        }
    }
    assert_eq!(odd_sum, 25);
    assert_eq!(iterations, 11);

    fn first_even(rx: &chan::Receiver<i32>) -> Option<i32> {
        loop {
            select! {
                recv(rx) -> v => {
                    let v = v.ok()?;
                    if v % 2 == 0 {
                        return Some(v);
                    }
                }
            }
        }
    }
    let (tx, rx) = chan::unbounded();
    for v in [1, 3, 4, 5] {
        tx.send(v).unwrap();
    }
    assert_eq!(first_even(&rx), Some(4));
    drop(tx);
    assert_eq!(first_even(&rx), None);

    // Labeled break out of nested loops.
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(3).unwrap();
    let mut hit = false;
    'outer: for _ in 0..3 {
        for _ in 0..3 {
            select! {
                recv(rx) -> _ => { hit = true; break 'outer; }
                default => {}
            }
        }
    }
    assert!(hit);
}

#[test]
fn merge_idiom_swaps_drained_receivers_for_never() {
    fn generate(vals: Vec<i32>) -> (chan::Receiver<i32>, goway::JoinHandle<()>) {
        let (tx, rx) = chan::bounded(0);
        let h = go!(move || {
            for v in vals {
                tx.send(v).unwrap();
            }
        });
        (rx, h)
    }
    let (mut a, ha) = generate(vec![1, 3, 5, 7]);
    let (mut b, hb) = generate(vec![2, 4, 6]);
    let mut out = Vec::new();
    let mut open = 2;
    while open > 0 {
        select! {
            recv(a) -> v => match v {
                Ok(v) => out.push(v),
                Err(_) => { a = chan::never(); open -= 1; }
            },
            recv(b) -> v => match v {
                Ok(v) => out.push(v),
                Err(_) => { b = chan::never(); open -= 1; }
            },
            recv(after(WATCHDOG)) -> _ => panic!("merge hung"),
        }
    }
    join(ha);
    join(hb);
    out.sort();
    assert_eq!(out, [1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn a_select_of_thirty_two_arms_takes_each_ready_one() {
    let chans: Vec<_> = (0..32).map(|_| chan::bounded::<usize>(1)).collect();
    let r = |i: usize| &chans[i].1;
    let mut hits = [0usize; 32];
    for k in 0..320 {
        chans[k % 32].0.send(k % 32).unwrap();
        let v = select! {
            recv(r(0)) -> v => v, recv(r(1)) -> v => v, recv(r(2)) -> v => v,
            recv(r(3)) -> v => v, recv(r(4)) -> v => v, recv(r(5)) -> v => v,
            recv(r(6)) -> v => v, recv(r(7)) -> v => v, recv(r(8)) -> v => v,
            recv(r(9)) -> v => v, recv(r(10)) -> v => v, recv(r(11)) -> v => v,
            recv(r(12)) -> v => v, recv(r(13)) -> v => v, recv(r(14)) -> v => v,
            recv(r(15)) -> v => v, recv(r(16)) -> v => v, recv(r(17)) -> v => v,
            recv(r(18)) -> v => v, recv(r(19)) -> v => v, recv(r(20)) -> v => v,
            recv(r(21)) -> v => v, recv(r(22)) -> v => v, recv(r(23)) -> v => v,
            recv(r(24)) -> v => v, recv(r(25)) -> v => v, recv(r(26)) -> v => v,
            recv(r(27)) -> v => v, recv(r(28)) -> v => v, recv(r(29)) -> v => v,
            recv(r(30)) -> v => v, recv(r(31)) -> v => v,
        };
        hits[v.unwrap()] += 1;
    }
    assert!(hits.iter().all(|&h| h == 10), "{hits:?}");
}

// ----- uniform choice --------------------------------------------------------------------------------

#[test]
fn ready_arms_are_chosen_uniformly() {
    const N: usize = 10_000;
    // Mixed recv and send arms, all ready.
    let (a_tx, a_rx) = chan::bounded::<u8>(1);
    let (b_tx, b_rx) = chan::bounded::<u8>(1);
    let mut counts = [0usize; 3];
    for _ in 0..N {
        a_tx.send(0).unwrap();
        select! {
            recv(a_rx) -> _ => counts[0] += 1,
            send(b_tx, 1) -> _ => counts[1] += 1,
            default => counts[2] += 1,
        }
        let _ = a_rx.try_recv();
        let _ = b_rx.try_recv();
    }
    assert_eq!(counts[2], 0, "default never runs while arms are ready");
    for c in &counts[..2] {
        assert!(*c >= N * 40 / 100, "{counts:?}");
    }
}

// ----- no waiter left behind --------------------------------------------------------------------------

#[test]
fn no_ghost_receiver_after_a_timed_out_select() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let r = select! {
        recv(rx) -> _ => "value",
        recv(after(Duration::from_millis(20))) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
    // Nobody waits on the channel any more: an unbuffered non-blocking send must fail.
    assert!(tx.try_send(1).unwrap_err().is_full());
    assert!(tx.send_timeout(1, SHORT).unwrap_err().is_timeout());
    // The channel still works afterwards.
    let h = go!(move || rx.recv());
    tx.send_timeout(3, WATCHDOG).unwrap();
    assert_eq!(join(h), Ok(3));
}

#[test]
fn no_ghost_sender_after_a_timed_out_select() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let r = select! {
        send(tx, 1) -> _ => "sent",
        recv(after(Duration::from_millis(20))) -> _ => "timeout",
    };
    assert_eq!(r, "timeout");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(rx.recv_timeout(SHORT).unwrap_err().is_timeout());
    assert_eq!(rx.len(), 0);
}

#[test]
fn no_ghost_after_another_arm_won() {
    // The select parks on two unbuffered channels; `b` wins. Afterwards `a` must have no waiter.
    for _ in 0..50 {
        let (a_tx, a_rx) = chan::bounded::<i32>(0);
        let (b_tx, b_rx) = chan::bounded::<i32>(0);
        let (c_tx, c_rx) = chan::bounded::<i32>(0);
        let h = go!(move || {
            let r = select! {
                recv(a_rx) -> _ => "a",
                recv(b_rx) -> _ => "b",
                send(c_tx, 5) -> _ => "c",
                recv(after(WATCHDOG)) -> _ => "timeout",
            };
            (r, a_rx, c_tx)
        });
        b_tx.send_timeout(1, WATCHDOG).unwrap();
        let (r, a_rx, c_tx) = join(h);
        assert_eq!(r, "b");
        assert!(
            a_tx.try_send(2).unwrap_err().is_full(),
            "ghost receiver on a"
        );
        assert_eq!(
            c_rx.try_recv(),
            Err(TryRecvError::Empty),
            "ghost sender on c"
        );
        drop((a_rx, c_tx));
    }
}

#[test]
fn no_ghost_after_builder_select_timeout() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let (tx2, rx2) = chan::bounded::<i32>(0);
    let mut sel = Select::new();
    sel.recv(&rx);
    sel.send(&tx2, 9);
    assert_eq!(sel.select_timeout(Duration::from_millis(20)), None);
    assert_eq!(sel.select_deadline(Instant::now()), None);
    drop(sel);
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
}

// ----- the run-time Select builder ------------------------------------------------------------------

#[test]
fn builder_recv_and_send_results() {
    let (tx1, rx1) = chan::bounded::<i32>(1);
    let (tx2, rx2) = chan::bounded::<String>(1);
    tx1.send(10).unwrap();

    let mut sel = Select::new();
    let r = sel.recv(&rx1);
    let s = sel.send(&tx2, "hello".to_string());
    assert_eq!((r, s), (0, 1));
    let i = sel.select();
    assert!(i == r || i == s);
    if i == r {
        assert_eq!(sel.recv_result::<i32>(r), Some(Ok(10)));
        assert_eq!(sel.recv_result::<i32>(r), None, "result taken once");
        assert_eq!(sel.send_result::<String>(s), None, "not chosen");
        assert!(rx2.is_empty(), "unchosen send did not happen");
    } else {
        assert_eq!(sel.send_result::<String>(s), Some(Ok(())));
        assert_eq!(sel.recv_result::<i32>(r), None);
        assert_eq!(rx2.try_recv(), Ok("hello".to_string()));
        assert_eq!(rx1.len(), 1, "unchosen recv did not happen");
    }
    // Wrong type or wrong kind: None.
    let (tx3, rx3) = chan::bounded::<u8>(1);
    let mut sel = Select::new();
    tx3.send(1).unwrap();
    let r3 = sel.recv(&rx3);
    assert_eq!(sel.select(), r3);
    assert_eq!(sel.send_result::<u8>(r3), None);
    assert_eq!(sel.recv_result::<i64>(r3), None);
}

#[test]
fn builder_try_select_and_timeouts() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let mut sel = Select::new();
    let r = sel.recv(&rx);
    assert_eq!(sel.try_select(), None);
    let t = Instant::now();
    assert_eq!(sel.select_timeout(Duration::from_millis(20)), None);
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(
        sel.select_deadline(Instant::now() + Duration::from_millis(5)),
        None
    );
    tx.send(4).unwrap();
    assert_eq!(sel.try_select(), Some(r));
    assert_eq!(sel.recv_result::<i32>(r), Some(Ok(4)));
    tx.send(5).unwrap();
    assert_eq!(sel.select_timeout(WATCHDOG), Some(r));
    assert_eq!(sel.recv_result::<i32>(r), Some(Ok(5)));
    tx.close();
    assert_eq!(sel.select_timeout(WATCHDOG), Some(r));
    assert_eq!(sel.recv_result::<i32>(r), Some(Err(RecvError)));
    assert_eq!(sel.select_deadline(Instant::now() + WATCHDOG), Some(r));
    // An empty select with a timeout just times out; Default is empty.
    let mut empty = Select::default();
    assert_eq!(empty.try_select(), None);
    assert_eq!(empty.select_timeout(Duration::from_millis(5)), None);
    assert!(format!("{empty:?}").contains("Select"));
}

#[test]
fn builder_send_to_closed_returns_value() {
    let (tx, rx) = chan::bounded::<Vec<u8>>(0);
    drop(rx);
    let mut sel = Select::new();
    let s = sel.send(&tx, vec![1, 2]);
    assert_eq!(sel.try_select(), Some(s));
    assert_eq!(
        sel.send_result::<Vec<u8>>(s),
        Some(Err(SendError(vec![1, 2])))
    );
}

#[test]
fn builder_selects_among_more_cases_than_the_macro_allows() {
    // More cases than the select engine's inline buffer (16) and than the macro allows (32).
    const K: usize = 100;
    let chans: Vec<_> = (0..K).map(|_| chan::bounded::<usize>(1)).collect();
    let never = chan::never::<usize>();
    for round in 0..3 * K {
        let target = (round * 37) % K;
        chans[target].0.send(target).unwrap();
        let mut sel = Select::new();
        sel.recv(&never);
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        let i = sel.select_timeout(WATCHDOG).expect("a ready case");
        assert_eq!(i, target + 1);
        assert_eq!(sel.recv_result::<usize>(i), Some(Ok(target)));
    }
    // Blocking with many cases, woken from a goroutine.
    let tx = chans[K - 1].0.clone();
    let h = go!(move || tx.send(usize::MAX).unwrap());
    let mut sel = Select::new();
    for (_, rx) in &chans {
        sel.recv(rx);
    }
    let i = sel.select_timeout(WATCHDOG).expect("woken");
    assert_eq!(i, K - 1);
    assert_eq!(sel.recv_result::<usize>(i), Some(Ok(usize::MAX)));
    join(h);
}

#[test]
fn builder_chooses_uniformly_among_ready_cases() {
    const N: usize = 10_000;
    let chans: Vec<_> = (0..4).map(|_| chan::bounded::<u8>(1)).collect();
    for (tx, _) in &chans {
        tx.send(0).unwrap();
    }
    let mut counts = [0usize; 4];
    for _ in 0..N {
        let mut sel = Select::new();
        for (_, rx) in &chans {
            sel.recv(rx);
        }
        let i = sel.select();
        counts[i] += 1;
        chans[i].0.send(0).unwrap();
    }
    for c in counts {
        assert!(c >= N * 20 / 100, "{counts:?}");
    }
}

#[test]
fn builder_blocks_until_a_goroutine_sends() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let (_tx2, rx2) = chan::bounded::<i32>(0);
    let h = go!(move || tx.send(3));
    let mut sel = Select::new();
    sel.recv(&rx2);
    let r = sel.recv(&rx);
    assert_eq!(sel.select_timeout(WATCHDOG), Some(r));
    assert_eq!(sel.recv_result::<i32>(r), Some(Ok(3)));
    assert_eq!(join(h), Ok(()));
}

#[test]
fn builder_only_never_cases_time_out() {
    let n1 = chan::never::<i32>();
    let n2 = Sender::<i32>::never();
    let mut sel = Select::new();
    sel.recv(&n1);
    sel.send(&n2, 1);
    assert_eq!(sel.try_select(), None);
    assert_eq!(sel.select_timeout(Duration::from_millis(10)), None);
}

// ----- concurrency ------------------------------------------------------------------------------------

#[test]
fn concurrent_selects_deliver_each_value_once() {
    const N: usize = 4000;
    let (tx, rx) = chan::bounded::<usize>(0);
    let (tx2, rx2) = chan::bounded::<usize>(3);
    let taken = Arc::new(AtomicUsize::new(0));
    let sum = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..6 {
        let (rx, rx2) = (rx.clone(), rx2.clone());
        let (taken, sum) = (taken.clone(), sum.clone());
        hs.push(go!(move || {
            let (mut a, mut b) = (rx, rx2);
            let mut open = 2;
            while open > 0 {
                select! {
                    recv(a) -> v => match v {
                        Ok(v) => { taken.fetch_add(1, Ordering::Relaxed); sum.fetch_add(v, Ordering::Relaxed); }
                        Err(_) => { a = chan::never(); open -= 1; }
                    },
                    recv(b) -> v => match v {
                        Ok(v) => { taken.fetch_add(1, Ordering::Relaxed); sum.fetch_add(v, Ordering::Relaxed); }
                        Err(_) => { b = chan::never(); open -= 1; }
                    },
                }
            }
        }));
    }
    drop((rx, rx2));
    let p1 = go!(move || {
        for i in 0..N {
            tx.send(i).unwrap();
        }
    });
    let p2 = std::thread::spawn(move || {
        for i in N..2 * N {
            tx2.send(i).unwrap();
        }
    });
    join(p1);
    join_thread(p2);
    for h in hs {
        join(h);
    }
    assert_eq!(taken.load(Ordering::Relaxed), 2 * N);
    assert_eq!(sum.load(Ordering::Relaxed), (2 * N) * (2 * N - 1) / 2);
}

// ----- timed selects inside goroutines ----------------------------------------------------------------
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

#[test]
fn builder_select_timeout_inside_a_goroutine() {
    let (took, r) = in_goroutine(WATCHDOG, || {
        let (_tx, rx) = chan::bounded::<i32>(0);
        let mut sel = Select::new();
        sel.recv(&rx);
        let t = Instant::now();
        let r = sel.select_timeout(Duration::from_millis(20));
        (t.elapsed(), r)
    });
    assert_eq!(r, None);
    assert!(took >= Duration::from_millis(20));
}

#[test]
fn builder_select_deadline_inside_a_goroutine() {
    let r = in_goroutine(WATCHDOG, || {
        let (_tx, rx) = chan::bounded::<i32>(0);
        let mut sel = Select::new();
        sel.recv(&rx);
        sel.select_deadline(Instant::now() + Duration::from_micros(300))
    });
    assert_eq!(r, None);
}
