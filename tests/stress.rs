//! Stress: many producers and consumers (goroutines and OS threads mixed) over capacities 0, 1
//! and 16, consumers selecting over the data channel and a quit channel while a close races
//! them; and a select-heavy mix of goroutines and threads selecting over shared channels with
//! timeouts while others send and close. Every value must be delivered exactly once (checked
//! per value), and nothing may hang (every wait is bounded by `WATCHDOG`).
//!
//! `STRESS` scales the loop counts; at 1 the file runs in under 10 s in `--release` on 2 cores
//! (the two send-commit race tests take 3 s each).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use goway::chan::{self, SendError, SendTimeoutError, Sender};
use goway::select::Select;
use goway::time::after;
use goway::{go, select};

/// Scales every loop count in this file.
const STRESS: usize = 1;
mod common;

/// This file's watchdog: three times the shared one, because a join here waits for a whole run
/// (many producers, consumers and selectors on two cores), not for one step.
const WATCHDOG: Duration = common::WATCHDOG.saturating_mul(3);

/// A goroutine or an OS thread, joined with a bounded wait.
enum Worker<T> {
    Goroutine(goway::JoinHandle<T>),
    Thread(std::thread::JoinHandle<T>),
}

impl<T: Send + 'static> Worker<T> {
    fn spawn(on_thread: bool, f: impl FnOnce() -> T + Send + 'static) -> Self {
        if on_thread {
            Worker::Thread(std::thread::spawn(f))
        } else {
            Worker::Goroutine(go!(f))
        }
    }

    fn join(self) -> T {
        match self {
            Worker::Goroutine(h) => match h.join_timeout(WATCHDOG) {
                Ok(v) => v,
                Err(Ok(_)) => panic!("goroutine did not finish within {WATCHDOG:?}"),
                Err(Err(p)) => panic!("goroutine panicked: {p}"),
            },
            Worker::Thread(h) => common::join_thread(h),
        }
    }
}

/// One counter per value: how many times it was accounted for (received, given back, or never
/// attempted). Exactly once is the invariant.
struct Marks(Vec<AtomicU8>);

impl Marks {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Marks((0..n).map(|_| AtomicU8::new(0)).collect()))
    }
    fn hit(&self, v: usize) {
        self.0[v].fetch_add(1, Ordering::Relaxed);
    }
    #[track_caller]
    fn assert_each_once(&self, what: &str) {
        let mut missing = 0;
        let mut dups = 0;
        for m in &self.0 {
            match m.load(Ordering::Relaxed) {
                0 => missing += 1,
                1 => {}
                _ => dups += 1,
            }
        }
        assert_eq!(
            (missing, dups),
            (0, 0),
            "{what}: values missing / duplicated"
        );
    }
}

// ----- MPMC: 8 producers x 8 consumers ------------------------------------------------------------

const P: usize = 8;
const C: usize = 8;

struct Outcome {
    received: usize,
    returned: usize,
    not_attempted: usize,
}

/// 8 producers x 8 consumers over one channel of capacity `cap`, half of each on OS threads.
/// Consumers select over the data channel and a quit channel. With `racing_close`, a closer
/// closes the data channel (then quit) once half the values arrived, racing the producers:
/// each value is then received, or given back to its producer by `send`, or never attempted.
fn mpmc(cap: usize, racing_close: bool) -> Outcome {
    let per = 5000 * STRESS;
    let total = P * per;
    let marks = Marks::new(total);
    let received = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded::<usize>(cap);
    let (quit_tx, quit_rx) = chan::bounded::<()>(0);
    let (half_tx, half_rx) = chan::bounded::<()>(1);

    let producers: Vec<_> = (0..P)
        .map(|p| {
            let (tx, marks) = (tx.clone(), marks.clone());
            Worker::spawn(p % 2 == 1, move || {
                let (mut returned, mut not_attempted) = (0, 0);
                for i in 0..per {
                    if let Err(SendError(v)) = tx.send(p * per + i) {
                        assert!(tx.is_closed(), "send failed on an open channel");
                        marks.hit(v);
                        returned += 1;
                        for j in i + 1..per {
                            marks.hit(p * per + j);
                            not_attempted += 1;
                        }
                        break;
                    }
                }
                (returned, not_attempted)
            })
        })
        .collect();

    let consumers: Vec<_> = (0..C)
        .map(|c| {
            let (rx, quit_rx, half_tx) = (rx.clone(), quit_rx.clone(), half_tx.clone());
            let (marks, received) = (marks.clone(), received.clone());
            Worker::spawn(c % 2 == 0, move || {
                let take = |v: usize| {
                    marks.hit(v);
                    if received.fetch_add(1, Ordering::Relaxed) + 1 == total / 2 {
                        let _ = half_tx.try_send(());
                    }
                };
                let mut n = 0;
                loop {
                    select! {
                        recv(rx) -> r => match r {
                            Ok(v) => { take(v); n += 1; }
                            Err(_) => break,
                        },
                        recv(quit_rx) -> _ => {
                            // Quit: data is closed already; drain what is left.
                            for v in &rx {
                                take(v);
                                n += 1;
                            }
                            break;
                        }
                    }
                }
                n
            })
        })
        .collect();
    drop((rx, quit_rx, half_tx));

    let closer = if racing_close {
        let tx = tx.clone();
        Some(Worker::spawn(false, move || {
            half_rx.recv().expect("half of the values arrive");
            assert!(tx.close(), "the closer closes the channel");
            quit_tx.close();
        }))
    } else {
        drop(quit_tx); // never fires before the data channel closes
        None
    };
    drop(tx); // without a closer, the channel closes when the last producer is done

    let (mut returned, mut not_attempted) = (0, 0);
    for p in producers {
        let (r, n) = p.join();
        returned += r;
        not_attempted += n;
    }
    if let Some(c) = closer {
        c.join();
    }
    let consumed: usize = consumers.into_iter().map(Worker::join).sum();
    assert_eq!(consumed, received.load(Ordering::Relaxed));
    marks.assert_each_once(&format!("cap {cap}, racing close {racing_close}"));
    Outcome {
        received: consumed,
        returned,
        not_attempted,
    }
}

#[test]
fn mpmc_every_value_exactly_once() {
    let total = P * 5000 * STRESS;
    for cap in [0, 1, 16] {
        let o = mpmc(cap, false);
        assert_eq!(o.received, total, "cap {cap}");
        assert_eq!((o.returned, o.not_attempted), (0, 0), "cap {cap}");
    }
}

#[test]
fn mpmc_with_close_racing_producers_and_consumers() {
    let total = P * 5000 * STRESS;
    for cap in [0, 1, 16] {
        for _ in 0..3 {
            let o = mpmc(cap, true);
            assert_eq!(o.received + o.returned + o.not_attempted, total);
            assert!(o.received >= total / 2, "cap {cap}");
        }
    }
}

// ----- select-heavy ----------------------------------------------------------------------------------

#[test]
fn select_heavy_with_timeouts_sends_and_closes() {
    let na = 30_000 * STRESS;
    let nb = 30_000 * STRESS;
    let total = na + nb;
    let marks = Marks::new(total);
    let taken = Arc::new(AtomicUsize::new(0));
    let timeouts = Arc::new(AtomicUsize::new(0));
    let (a_tx, a_rx) = chan::bounded::<usize>(0);
    let (b_tx, b_rx) = chan::bounded::<usize>(2);
    let (c_tx, c_rx) = chan::bounded::<(usize, usize)>(1);
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let (all_in_tx, all_in_rx) = chan::bounded::<()>(1);

    let take = {
        let (marks, taken) = (marks.clone(), taken.clone());
        move |v: usize| {
            marks.hit(v);
            if taken.fetch_add(1, Ordering::Relaxed) + 1 == total {
                let _ = all_in_tx.try_send(());
            }
        }
    };

    // Selectors with a send arm and an `after` timeout: 6 goroutines and 2 threads.
    let selectors: Vec<_> = (0..8)
        .map(|id| {
            let (mut a, mut b, stop) = (a_rx.clone(), b_rx.clone(), stop_rx.clone());
            let c_tx = c_tx.clone();
            let take = take.clone();
            let timeouts = timeouts.clone();
            Worker::spawn(id >= 6, move || {
                let mut sent = 0;
                loop {
                    select! {
                        recv(a) -> r => match r {
                            Ok(v) => take(v),
                            Err(_) => a = chan::never(),
                        },
                        recv(b) -> r => match r {
                            Ok(v) => take(v),
                            Err(_) => b = chan::never(),
                        },
                        send(c_tx, (id, sent)) -> r => {
                            r.expect("c is open while the selectors run");
                            sent += 1;
                        }
                        recv(after(Duration::from_millis(1))) -> _ => {
                            timeouts.fetch_add(1, Ordering::Relaxed);
                        }
                        recv(stop) -> _ => break,
                    }
                }
                sent
            })
        })
        .collect();

    // Receive-only selectors using the builder with a deadline, on OS threads.
    let builders: Vec<_> = (0..2)
        .map(|_| {
            let (mut a, mut b, stop) = (a_rx.clone(), b_rx.clone(), stop_rx.clone());
            let take = take.clone();
            let timeouts = timeouts.clone();
            Worker::spawn(true, move || {
                loop {
                    let mut sel = Select::new();
                    let ia = sel.recv(&a);
                    let ib = sel.recv(&b);
                    let is = sel.recv(&stop);
                    let i = sel.select_timeout(Duration::from_micros(500));
                    let (ra, rb) = match i {
                        None => {
                            timeouts.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        Some(i) if i == is => break,
                        Some(i) if i == ia => (sel.recv_result::<usize>(i), None),
                        Some(i) => {
                            assert_eq!(i, ib);
                            (None, sel.recv_result::<usize>(i))
                        }
                    };
                    drop(sel);
                    match ra {
                        Some(Ok(v)) => take(v),
                        Some(Err(_)) => a = chan::never(),
                        None => {}
                    }
                    match rb {
                        Some(Ok(v)) => take(v),
                        Some(Err(_)) => b = chan::never(),
                        None => {}
                    }
                }
            })
        })
        .collect();
    drop((a_rx, b_rx, stop_rx, take));

    // Drainers of c: goroutines and a thread.
    let drainers: Vec<_> = (0..3)
        .map(|d| {
            let c_rx = c_rx.clone();
            Worker::spawn(d == 2, move || c_rx.iter().collect::<Vec<_>>())
        })
        .collect();
    drop(c_rx);

    // Feeders: a (unbuffered) from a goroutine, b (buffered) from a thread; each closes its
    // channel when done (by dropping its sender), racing the selectors.
    let fa = Worker::spawn(false, move || {
        for v in 0..na {
            a_tx.send(v).unwrap();
        }
    });
    let fb = Worker::spawn(true, move || {
        for v in na..total {
            b_tx.send(v).unwrap();
        }
        assert!(b_tx.close());
    });
    fa.join();
    fb.join();
    all_in_rx
        .recv_timeout(WATCHDOG)
        .expect("every value on a and b is taken");
    stop_tx.close();
    let sent: Vec<usize> = selectors.into_iter().map(Worker::join).collect();
    for b in builders {
        b.join();
    }
    drop(c_tx);
    let mut got: Vec<(usize, usize)> = drainers.into_iter().flat_map(Worker::join).collect();
    got.sort_unstable();
    let want: Vec<(usize, usize)> = sent
        .iter()
        .enumerate()
        .flat_map(|(id, &n)| (0..n).map(move |s| (id, s)))
        .collect();
    assert_eq!(got.len(), want.len(), "values sent on c vs received");
    assert!(got == want, "every value sent on c arrives exactly once");
    marks.assert_each_once("values on a and b");
    assert_eq!(taken.load(Ordering::Relaxed), total);
}

#[test]
fn many_goroutines_select_on_shared_channels_closed_midway() {
    // 200 goroutines block in select on shared channels; values and a close wake them.
    let n = 200 * STRESS;
    let (v_tx, v_rx) = chan::bounded::<usize>(0);
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let (res_tx, res_rx) = chan::unbounded::<Option<usize>>();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (v_rx, stop_rx, res_tx) = (v_rx.clone(), stop_rx.clone(), res_tx.clone());
            go!(move || {
                let r = select! {
                    recv(v_rx) -> v => Some(v.unwrap()),
                    recv(stop_rx) -> _ => None,
                };
                res_tx.send(r).unwrap();
            })
        })
        .collect();
    // Half of them get a value; then a close releases the rest.
    for i in 0..n / 2 {
        v_tx.send_timeout(i, WATCHDOG).expect("a selector takes it");
    }
    stop_tx.close();
    let mut values = Vec::new();
    let mut stopped = 0;
    for _ in 0..n {
        match res_rx
            .recv_timeout(WATCHDOG)
            .expect("every selector finishes")
        {
            Some(v) => values.push(v),
            None => stopped += 1,
        }
    }
    for h in hs {
        Worker::Goroutine(h).join();
    }
    values.sort_unstable();
    assert_eq!(values, (0..n / 2).collect::<Vec<_>>());
    assert_eq!(stopped, n - n / 2);
    // Nobody is left waiting on v.
    assert!(v_tx.try_send(0).unwrap_err().is_full());
}

#[test]
fn ping_pong_goroutine_and_thread_via_select() {
    let rounds = 50_000 * STRESS;
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    let g = Worker::spawn(false, move || {
        for _ in 0..rounds {
            let v = select! { recv(ping_rx) -> v => v.unwrap() };
            select! { send(pong_tx, v + 1) -> r => r.unwrap() }
        }
    });
    for i in 0..rounds {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv_timeout(WATCHDOG), Ok(i + 1));
    }
    g.join();
}

// ----- a committed send never reports "closed" ----------------------------------------------

/// One send attempt: `Ok(sent?)`, or `Err(value)` when it reported the channel closed.
type Attempt = fn(&Sender<u64>, &chan::Receiver<u64>, u64) -> Result<bool, u64>;

/// Races 8 sender threads, each making attempts with `attempt(tx, idle, i)` (which must never
/// report Closed: the channel stays open), against 8 threads spinning on `try_recv`, for `run`
/// of wall time. The threads outnumber the cores on purpose: a receiver preempted between
/// committing a sender and taking its value is what exposes the race.
/// Returns (successful sends, bogus Closed results, values received).
fn race_committed_send(run: Duration, attempt: Attempt) -> (u64, u64, u64) {
    // The two race tests want all the cores: run them one at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = chan::bounded::<u64>(0);
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let spinners: Vec<_> = (0..8)
        .map(|_| {
            let (rx, stop_rx) = (rx.clone(), stop_rx.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop_rx.is_closed() {
                    if rx.try_recv().is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let senders: Vec<_> = (0..8u64)
        .map(|s| {
            let (tx, stop_rx) = (tx.clone(), stop_rx.clone());
            std::thread::spawn(move || {
                let (_keep, idle) = chan::bounded::<u64>(0);
                let (mut ok, mut bogus, mut i) = (0, 0, s);
                while !stop_rx.is_closed() {
                    i += 8;
                    match attempt(&tx, &idle, i) {
                        Ok(true) => ok += 1,
                        Ok(false) => {}
                        Err(_) => bogus += 1,
                    }
                }
                (ok, bogus)
            })
        })
        .collect();
    // `rx` stays alive until every sender has stopped: once the spinners exit, the channel
    // must still be open, or a last in-flight send would rightly report Closed.
    drop((tx, stop_rx));
    let _ = chan::never::<()>().recv_timeout(run); // the test thread just waits out `run`
    stop_tx.close();
    let (mut ok, mut bogus) = (0, 0);
    for h in senders {
        let (o, b) = Worker::Thread(h).join();
        ok += o;
        bogus += b;
    }
    let received = spinners.into_iter().map(|h| Worker::Thread(h).join()).sum();
    drop(rx);
    (ok, bogus, received)
}

#[test]
fn send_timeout_never_reports_closed_on_an_open_channel() {
    // The sender wakes on its own (sub-microsecond) timeout just as a receiver commits it.
    let run = Duration::from_secs(3 * STRESS as u64);
    let (ok, bogus, received) = race_committed_send(run, |tx, _, i| {
        match tx.send_timeout(i, Duration::from_nanos(i % 1_000)) {
            Ok(()) => Ok(true),
            Err(SendTimeoutError::Timeout(_)) => Ok(false),
            Err(SendTimeoutError::Closed(v)) => Err(v),
        }
    });
    assert_eq!(ok, received, "no value lost or duplicated");
    assert_eq!(
        bogus, 0,
        "send_timeout reported Closed {bogus} times on an open channel ({ok} sends)"
    );
}

#[test]
fn select_timeout_send_arm_never_reports_closed_on_an_open_channel() {
    let run = Duration::from_secs(3 * STRESS as u64);
    let (ok, bogus, received) = race_committed_send(run, |tx, idle, i| {
        let mut sel = Select::new();
        let s = sel.send(tx, i);
        sel.recv(idle);
        match sel.select_timeout(Duration::from_nanos(i % 1_000)) {
            None => Ok(false),
            Some(k) => {
                assert_eq!(k, s);
                match sel.send_result::<u64>(s).expect("send case chosen") {
                    Ok(()) => Ok(true),
                    Err(SendError(v)) => Err(v),
                }
            }
        }
    });
    assert_eq!(ok, received, "no value lost or duplicated");
    assert_eq!(
        bogus, 0,
        "select send arm reported Closed {bogus} times on an open channel ({ok} sends)"
    );
}
