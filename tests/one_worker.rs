//! With a single worker thread, no goway operation may block that thread: while goroutine A
//! waits (recv on an empty channel, send on a full one, a select with no ready arm, a timer,
//! a sleep, a timed receive), goroutine B must still run and complete on the same worker.
//!
//! Each test first applies `workers(1)`; the setting is process-wide (this file is its own
//! process), so later calls get `Err(AlreadyStarted)`, which is fine. With one worker and
//! cooperative scheduling, B can run only once A has parked, and B checks A's state with a
//! non-blocking operation that succeeds only if A is parked where the test says (for example
//! an unbuffered `try_send` succeeds only if a receiver is waiting). Results flow back to the
//! test thread over channels with bounded waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use goway::chan::{self, RecvError, RecvTimeoutError, SendError, TryRecvError};
use goway::time::after;
use goway::{go, select};

/// How long A waits on a timer in the timer tests: long enough that B, which needs the worker
/// for microseconds, runs well before A's wait ends even on a loaded machine.
const A_WAIT: Duration = Duration::from_millis(500);

mod common;
use common::{WATCHDOG, join};

/// Applies `workers(1)` and serialises the tests of this file: they share the one worker, and
/// one test's goroutines must not delay another's B past its timer.
fn setup() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = goway::runtime::Config::new().workers(1).apply();
    assert_eq!(
        may::config().get_workers(),
        1,
        "this file must run goroutines on exactly one worker thread"
    );
    guard
}

/// Spawns A: it reports on `ready` right before it blocks in `op` (nothing in between yields,
/// so once the test thread sees `ready` and spawns B, B runs only after A has parked).
fn spawn_a<T: Send + 'static>(
    op: impl FnOnce() -> T + Send + 'static,
) -> (goway::JoinHandle<T>, Arc<AtomicBool>) {
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let h = go!(move || {
        ready_tx.send(()).unwrap();
        let r = op();
        d.store(true, Ordering::SeqCst);
        r
    });
    ready_rx
        .recv_timeout(WATCHDOG)
        .expect("goroutine A started");
    (h, done)
}

/// Spawns B and returns what it reports, waiting at most `WATCHDOG`.
fn run_b<T: Send + 'static>(b: impl FnOnce() -> T + Send + 'static) -> T {
    let (out_tx, out_rx) = chan::bounded::<T>(1);
    let h = go!(move || {
        let _ = out_tx.send(b());
    });
    let r = out_rx
        .recv_timeout(WATCHDOG)
        .expect("goroutine B ran while A was blocked");
    join(h);
    r
}

#[test]
fn the_runtime_has_one_worker() {
    let _serial = setup();
    // Two goroutines hand a value back and forth 10,000 times on that one worker.
    let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
    let echo = go!(move || {
        for v in &ping_rx {
            pong_tx.send(v + 1).unwrap();
        }
    });
    let driver = go!(move || {
        let mut v = 0;
        for _ in 0..10_000 {
            ping_tx.send(v).unwrap();
            v = pong_rx.recv().unwrap();
        }
        v
    });
    assert_eq!(join(driver), 10_000);
    join(echo);
}

#[test]
fn recv_on_an_empty_channel_does_not_block_the_worker() {
    let _serial = setup();
    for cap in [0usize, 4] {
        let (tx, rx) = chan::bounded::<u32>(cap);
        let (a, a_done) = spawn_a(move || rx.recv());
        let (parked, a_was_done) = run_b(move || {
            // Unbuffered: a non-blocking send succeeds only if A waits in recv. Buffered and
            // empty: the value goes to the waiting A directly, the buffer stays empty.
            let ok = tx.try_send(7).is_ok() && tx.is_empty();
            (ok, a_done.load(Ordering::SeqCst))
        });
        assert!(parked, "cap {cap}: A was not parked in recv when B ran");
        assert!(!a_was_done);
        assert_eq!(join(a), Ok(7));
    }
}

#[test]
fn send_on_a_full_channel_does_not_block_the_worker() {
    let _serial = setup();
    // Buffered and full.
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(1).unwrap();
    let (a, a_done) = spawn_a(move || tx.send(2));
    let (first, second, a_was_done) = run_b(move || {
        // The first receive frees the slot and moves A's parked value into the buffer.
        let first = rx.try_recv();
        let second = rx.try_recv();
        (first, second, a_done.load(Ordering::SeqCst))
    });
    assert_eq!(first, Ok(1));
    assert_eq!(second, Ok(2), "A was not parked in send when B ran");
    assert!(!a_was_done);
    assert_eq!(join(a), Ok(()));

    // Unbuffered, no receiver.
    let (tx, rx) = chan::bounded::<u32>(0);
    let (a, a_done) = spawn_a(move || tx.send(3));
    let (got, a_was_done) = run_b(move || (rx.try_recv(), a_done.load(Ordering::SeqCst)));
    assert_eq!(got, Ok(3), "A was not parked in send when B ran");
    assert!(!a_was_done);
    assert_eq!(join(a), Ok(()));
}

#[test]
fn select_with_no_ready_arm_does_not_block_the_worker() {
    let _serial = setup();
    let (t1, r1) = chan::bounded::<u32>(0);
    let (t2, r2) = chan::bounded::<u32>(0);
    let (t3, r3) = chan::bounded::<u32>(0);
    // Keep the other ends of A's arms alive after A is done, for the ghost check below.
    let (_r1_keep, _t3_keep) = (r1.clone(), t3.clone());
    let (a, a_done) = spawn_a(move || {
        select! {
            recv(r1) -> v => ("r1", v.ok()),
            recv(r2) -> v => ("r2", v.ok()),
            send(t3, 5) -> _ => ("t3", None),
        }
    });
    let (handed, a_was_done) = run_b(move || {
        let handed = t2.try_send(9).is_ok();
        (handed, a_done.load(Ordering::SeqCst))
    });
    assert!(handed, "A's select was not parked on r2 when B ran");
    assert!(!a_was_done);
    assert_eq!(join(a), ("r2", Some(9)));
    // A left no waiter behind on the other arms.
    assert!(t1.try_send(1).unwrap_err().is_full());
    assert_eq!(r3.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn select_waiting_for_its_timeout_arm_does_not_block_the_worker() {
    let _serial = setup();
    let (_tx, rx) = chan::bounded::<u32>(0);
    let (a, a_done) = spawn_a(move || {
        let t = Instant::now();
        let r = select! {
            recv(rx) -> _ => "value",
            recv(after(A_WAIT)) -> _ => "timeout",
        };
        (r, t.elapsed())
    });
    let a_was_done = run_b(move || a_done.load(Ordering::SeqCst));
    assert!(!a_was_done, "B ran only after A's select had finished");
    let (r, took) = join(a);
    assert_eq!(r, "timeout");
    assert!(took >= A_WAIT);
}

#[test]
fn waiting_on_time_after_does_not_block_the_worker() {
    let _serial = setup();
    let (a, a_done) = spawn_a(|| {
        let t = Instant::now();
        after(A_WAIT).recv().unwrap();
        t.elapsed()
    });
    let a_was_done = run_b(move || a_done.load(Ordering::SeqCst));
    assert!(!a_was_done, "B ran only after A's timer had fired");
    assert!(join(a) >= A_WAIT);
}

#[test]
fn sleep_does_not_block_the_worker() {
    let _serial = setup();
    let (a, a_done) = spawn_a(|| {
        let t = Instant::now();
        goway::time::sleep(A_WAIT);
        t.elapsed()
    });
    let a_was_done = run_b(move || a_done.load(Ordering::SeqCst));
    assert!(!a_was_done, "B ran only after A's sleep had ended");
    assert!(join(a) >= A_WAIT);
}

#[test]
fn recv_timeout_does_not_block_the_worker() {
    let _serial = setup();
    let (tx, rx) = chan::bounded::<u32>(0);
    let (a, a_done) = spawn_a(move || rx.recv_timeout(WATCHDOG));
    let (handed, a_was_done) =
        run_b(move || (tx.try_send(4).is_ok(), a_done.load(Ordering::SeqCst)));
    assert!(handed, "A was not parked in recv_timeout when B ran");
    assert!(!a_was_done);
    assert_eq!(join(a), Ok(4));
}

#[test]
fn expiring_recv_timeout_does_not_block_the_worker() {
    let _serial = setup();
    let (_tx, rx) = chan::bounded::<u32>(0);
    let (a, a_done) = spawn_a(move || {
        let t = Instant::now();
        (rx.recv_timeout(A_WAIT), t.elapsed())
    });
    let a_was_done = run_b(move || a_done.load(Ordering::SeqCst));
    assert!(!a_was_done, "B ran only after A's recv_timeout had expired");
    let (r, took) = join(a);
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
    assert!(took >= A_WAIT);
}

#[test]
fn close_and_disconnect_release_a_goroutine_parked_on_the_worker() {
    let _serial = setup();
    // Recv released by close.
    let (tx, rx) = chan::bounded::<u32>(0);
    let (a, _) = spawn_a(move || rx.recv());
    assert!(run_b(move || tx.close()));
    assert_eq!(join(a), Err(RecvError));

    // Send released by the last receiver going away.
    let (tx, rx) = chan::bounded::<u32>(0);
    let (a, _) = spawn_a(move || tx.send(8));
    run_b(move || drop(rx));
    assert_eq!(join(a), Err(SendError(8)));
}

#[test]
fn join_inside_a_goroutine_does_not_block_the_worker() {
    let _serial = setup();
    let (kick_tx, kick_rx) = chan::bounded::<u32>(0);
    let outer = go!(move || {
        let inner = go!(move || kick_rx.recv().unwrap() * 2);
        inner.join().unwrap() // parks outer; inner and the kicker run on the same worker
    });
    let kicker = go!(move || kick_tx.send(21).unwrap());
    assert_eq!(join(outer), 42);
    join(kicker);
}

/// A spins (bounded) on `yield_now` until `flag` is set; returns how many yields it took.
fn yield_until(flag: Arc<AtomicBool>) -> Option<u64> {
    // Without a real yield, nobody else could set the flag on one worker.
    for i in 0..2_000_000u64 {
        if flag.load(Ordering::SeqCst) {
            return Some(i);
        }
        goway::runtime::yield_now();
    }
    None
}

#[test]
fn yield_now_lets_a_goroutine_woken_by_a_goroutine_run() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let (kick_tx, kick_rx) = chan::bounded::<()>(0);
    let f = flag.clone();
    // B parks first, on a channel that A (on the same worker) sends on.
    let (b, _) = spawn_a(move || {
        kick_rx.recv().unwrap();
        f.store(true, Ordering::SeqCst);
    });
    let a = go!(move || {
        kick_tx.send(()).unwrap();
        yield_until(flag)
    });
    assert!(
        join(a).is_some(),
        "A never saw B's write: yield_now did not yield"
    );
    join(b);
}

#[test]
fn yield_now_lets_a_new_goroutine_run() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let (a, _) = spawn_a(move || yield_until(f));
    // B is new, so it lands in may's global queue (may spawns every coroutine there).
    let b = go!(move || flag.store(true, Ordering::SeqCst));
    assert!(
        join(a).is_some(),
        "A never saw B's write: B never ran while A yielded"
    );
    join(b);
}

#[test]
fn yield_now_lets_a_goroutine_woken_by_a_thread_run() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let (kick_tx, kick_rx) = chan::bounded::<()>(0);
    let f = flag.clone();
    // B parks first, on a channel that only the test thread sends on.
    let b = go!(move || {
        kick_rx.recv().unwrap();
        f.store(true, Ordering::SeqCst);
    });
    let f = flag.clone();
    let (a, _) = spawn_a(move || yield_until(f));
    // Wakes B from an OS thread (B goes to may's global queue) while A keeps yielding.
    kick_tx
        .send_timeout((), WATCHDOG)
        .expect("B is parked in recv");
    assert!(
        join(a).is_some(),
        "A never saw B's write: B was never resumed while A yielded"
    );
    join(b);
}

/// Starts two goroutines that keep waking each other (a ping-pong over unbuffered channels),
/// which never leave the worker's local run queue empty. They go on until `flag` is set (then
/// the driver returns `true`) or for at most half the watchdog (`false`). Returns the driver,
/// the echo and a receiver that gets a message after the first round trip.
fn ping_pong_until(
    flag: Arc<AtomicBool>,
) -> (
    goway::JoinHandle<bool>,
    goway::JoinHandle<()>,
    chan::Receiver<()>,
) {
    let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let echo = go!(move || {
        for v in &ping_rx {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let driver = go!(move || {
        let end = Instant::now() + WATCHDOG / 2;
        let mut i = 0u64;
        while Instant::now() < end {
            if flag.load(Ordering::SeqCst) {
                return true;
            }
            ping_tx.send(i).unwrap();
            pong_rx.recv().unwrap();
            if i == 0 {
                let _ = started_tx.try_send(());
            }
            i += 1;
        }
        false
    });
    (driver, echo, started_rx)
}

/// Two goroutines that keep waking each other never leave the worker's local run queue empty;
/// a goroutine that is new or woken from another thread waits in the worker's global queue,
/// which the worker looks at every 61 runs (as Go's scheduler does).
#[test]
fn ping_pong_pair_does_not_starve_a_new_goroutine() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let (driver, echo, started) = ping_pong_until(flag.clone());
    started.recv_timeout(WATCHDOG).expect("the pair started");
    // B is new: it lands in the worker's global queue.
    let b = go!(move || flag.store(true, Ordering::SeqCst));
    assert!(join(driver), "B never ran beside the ping-pong pair");
    join(b);
    join(echo);
}

#[test]
fn a_thousand_goroutines_block_and_are_released_on_one_worker() {
    let _serial = setup();
    const N: usize = 1000;
    let (tx, rx) = chan::bounded::<usize>(0);
    let (res_tx, res_rx) = chan::unbounded::<usize>();
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let (rx, res_tx) = (rx.clone(), res_tx.clone());
            go!(move || res_tx.send(rx.recv().unwrap() * 2).unwrap())
        })
        .collect();
    // The test thread feeds them one value each (each send parks the thread, not the worker).
    for i in 0..N {
        tx.send_timeout(i, WATCHDOG).expect("a goroutine receives");
    }
    let mut sum = 0;
    for _ in 0..N {
        sum += res_rx.recv_timeout(WATCHDOG).expect("result");
    }
    for h in hs {
        join(h);
    }
    assert_eq!(sum, N * (N - 1));
}

#[test]
fn daisy_chain_on_one_worker() {
    let _serial = setup();
    const N: usize = 2000;
    let (first_tx, mut prev_rx) = chan::bounded::<usize>(0);
    let mut hs = Vec::with_capacity(N);
    for _ in 0..N {
        let (tx, rx) = chan::bounded::<usize>(0);
        let from = std::mem::replace(&mut prev_rx, rx);
        hs.push(go!(move || tx.send(from.recv().unwrap() + 1).unwrap()));
    }
    first_tx.send_timeout(0, WATCHDOG).unwrap();
    assert_eq!(prev_rx.recv_timeout(WATCHDOG), Ok(N));
    for h in hs {
        join(h);
    }
}

#[test]
fn thread_and_goroutine_exchange_on_one_worker() {
    let _serial = setup();
    let (to_g_tx, to_g_rx) = chan::bounded::<u64>(0);
    let (to_t_tx, to_t_rx) = chan::bounded::<u64>(1);
    let g = go!(move || {
        let mut n = 0;
        for v in &to_g_rx {
            to_t_tx.send(v * 3).unwrap();
            n += 1;
        }
        n
    });
    let t = std::thread::spawn(move || {
        for i in 0..5000u64 {
            to_g_tx.send(i).unwrap();
            assert_eq!(to_t_rx.recv_timeout(WATCHDOG), Ok(i * 3));
        }
    });
    assert_eq!(join(g), 5000);
    common::join_thread(t);
}

#[test]
fn a_spin_polling_server_leaves_the_worker_to_other_goroutines() {
    use std::io::{BufRead, BufReader, Write};
    let _serial = setup();
    // The longest budget: every round the spinner runs may spin for a millisecond, on the
    // one worker, while the ping-pong below needs that worker for each of its hand-offs.
    let server = common::line_echo_server(Duration::from_millis(1));
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let serving = go!(move || server.serve());

    const ROUNDS: usize = 500;
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        for i in 0..ROUNDS {
            c.write_all(format!("{i}\n").as_bytes()).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, format!("{i}\n"));
        }
    });
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    let echoer = go!(move || {
        for v in &ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
    let pinger = go!(move || {
        for i in 0..ROUNDS {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
        }
    });
    join(pinger);
    join(echoer);
    common::join_thread(client);
    let stats = handle.stats();
    assert!(stats.spins > 0, "the server never spun: {stats:?}");
    handle.shutdown().unwrap();
    assert!(join(serving).is_err());
}

/// Go's `time.Sleep(d)` gives the processor up for any positive `d`. A goroutine that polls a
/// flag with the shortest sleep must let the goroutine that sets it run on the same worker
/// (the shape of Go's `TestAfterStress`). goway's `sleep` used to return without parking when
/// its deadline had passed by the time it looked, and this poller then held the worker forever.
#[test]
fn a_goroutine_polling_with_nanosecond_sleeps_lets_the_others_run() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let poller = go!(move || {
        let mut polls = 0u64;
        while !f.load(Ordering::SeqCst) {
            goway::time::sleep(Duration::from_nanos(1));
            polls += 1;
        }
        polls
    });
    let setter = go!(move || flag.store(true, Ordering::SeqCst));
    join(setter);
    join(poller);
}

/// A timed wait whose deadline passed before it could park (here: every wait, 1 ns) still lets
/// the others run, for a receive, a send, a select with a timer arm and a semaphore, as Go's
/// timed waits do through its timers: a loop of such polls never starves the peer it polls for.
#[test]
fn timed_waits_whose_deadline_passed_still_let_the_others_run() {
    let _serial = setup();
    const NS: Duration = Duration::from_nanos(1);
    // recv_timeout
    let (tx, rx) = chan::bounded::<u32>(0);
    let poller = go!(move || loop {
        if let Ok(v) = rx.recv_timeout(NS) {
            break v;
        }
    });
    let sender = go!(move || tx.send(7).unwrap());
    assert_eq!(join(poller), 7);
    join(sender);
    // send_timeout
    let (tx, rx) = chan::bounded::<u32>(0);
    let poller = go!(move || { while tx.send_timeout(8, NS).is_err() {} });
    let receiver = go!(move || rx.recv().unwrap());
    assert_eq!(join(receiver), 8);
    join(poller);
    // select! with a timeout arm
    let (tx, rx) = chan::bounded::<u32>(0);
    let poller = go!(move || loop {
        select! {
            recv(rx) -> v => break v.unwrap(),
            recv(after(NS)) -> _ => {},
        }
    });
    let sender = go!(move || tx.send(9).unwrap());
    assert_eq!(join(poller), 9);
    join(sender);
    // Semaphore::acquire_timeout
    let sem = Arc::new(goway::sync::Semaphore::new(0));
    let s = sem.clone();
    let poller = go!(move || while s.acquire_timeout(NS).is_none() {});
    let releaser = go!(move || sem.add_permits(1));
    join(releaser);
    join(poller);
}

/// A goroutine resumed because its socket read timed out wakes another goroutine, which must run
/// at once. may resumes such goroutines inside its event loop's timer pass; it used to run that
/// pass after draining the worker's run queue, so the goroutine woken from there waited for the
/// next event: here, another socket's 60 s read timeout. goway worked around it by sleeping 1 ms
/// after every socket timeout; the vendored may runs the timer pass first.
#[test]
fn a_goroutine_woken_by_a_timed_out_reader_runs_at_once() {
    use std::io::Read;
    let _serial = setup();
    let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    // Two idle client connections, held by the test thread until the end.
    let _c1 = std::net::TcpStream::connect(addr).unwrap();
    let _c2 = std::net::TcpStream::connect(addr).unwrap();
    let (s1, _) = ln.accept().unwrap();
    let (s2, _) = ln.accept().unwrap();
    // A reader with a long timeout keeps the event loop's next timer a minute away.
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    let long = go!(move || {
        let mut s2 = s2;
        s2.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut b = [0u8; 1];
        // Ends when the test closes the connection.
        let _ = s2.read(&mut b);
        drop(stop_rx);
    });
    // B waits for A's word; A's read times out after 50 ms and tells B.
    let (tx, rx) = chan::bounded::<()>(0);
    let (done_tx, done_rx) = chan::bounded::<()>(1);
    let b = go!(move || {
        rx.recv().unwrap();
        done_tx.send(()).unwrap();
    });
    let start = Instant::now();
    let a = go!(move || {
        let mut s1 = s1;
        s1.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1];
        let e = s1.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(WATCHDOG)
        .expect("B ran soon after A's read timed out");
    let took = start.elapsed();
    join(a);
    join(b);
    assert!(
        took < Duration::from_secs(5),
        "B ran {took:?} after A started (A's timeout is 50 ms)"
    );
    drop(_c2);
    join(long);
    assert!(stop_tx.send(()).is_err());
}

#[test]
fn a_scanner_waiting_for_a_line_parks_its_goroutine_not_the_worker() {
    let _serial = setup();
    use goway::bufio::Scanner;
    use goway::net::{TcpListener, TcpStream};
    use std::io::Write;

    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let connect = go!(move || TcpStream::connect(addr).unwrap());
    let (server, _) = ln.accept().unwrap();
    let mut client = join(connect);
    // A scans the server side and blocks: no line has been sent.
    let (a, _) = spawn_a(move || {
        let mut sc = Scanner::new(server);
        let line = sc.scan().then(|| sc.text().into_owned());
        (line, sc.scan())
    });
    // B runs on the one worker meanwhile and sends A its line.
    run_b(move || {
        client.write_all(b"hello, A\r\n").unwrap();
        drop(client);
    });
    assert_eq!(join(a), (Some("hello, A".to_string()), false));
}

/// The calling thread's id. Not inlined: a thread-local's address must not be kept across the
/// caller's park (the goroutine may resume on another thread).
#[inline(never)]
fn current_thread() -> std::thread::ThreadId {
    std::thread::current().id()
}

/// A timed wait that runs out resumes its goroutine on the worker. may's timer thread used to
/// run the goroutine itself, which then went on with its work on the timer thread, beside the
/// one worker and holding up every other timeout, until it parked again.
#[test]
fn a_wait_that_times_out_goes_on_on_the_worker() {
    let _serial = setup();
    let (_keep, rx) = chan::bounded::<()>(0);
    let h = go!(move || {
        let before = current_thread();
        let r = rx.recv_timeout(Duration::from_millis(20));
        (before, current_thread(), r)
    });
    let (before, after, r) = join(h);
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
    assert_eq!(
        before, after,
        "a goroutine whose timed wait ran out went on on another thread than the one worker"
    );
}

/// A goroutine whose timed wait runs out is queued on the worker (its global queue) and runs
/// even while a ping-pong pair keeps the worker's local queue busy.
#[test]
fn a_timed_out_goroutine_runs_beside_a_ping_pong_pair() {
    let _serial = setup();
    let flag = Arc::new(AtomicBool::new(false));
    let (driver, echo, started) = ping_pong_until(flag.clone());
    started.recv_timeout(WATCHDOG).expect("the pair started");
    // B's timed wait starts and runs out while the pair runs.
    let (_keep, never) = chan::bounded::<()>(0);
    let b = go!(move || {
        let r = never.recv_timeout(Duration::from_millis(20));
        flag.store(true, Ordering::SeqCst);
        r
    });
    assert!(
        join(driver),
        "the goroutine whose wait timed out never ran beside the ping-pong pair"
    );
    assert_eq!(join(b), Err(RecvTimeoutError::Timeout));
    join(echo);
}

/// A goroutine waiting for a socket to become readable is woken even while a ping-pong pair
/// keeps the worker's local queue busy: the worker goes back to poll its sockets after about a
/// millisecond, not only once it runs out of goroutines.
#[test]
fn a_socket_read_completes_beside_a_ping_pong_pair() {
    use std::io::{Read, Write};
    let _serial = setup();
    let ln = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = ln.local_addr().expect("addr");
    let flag = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let f = flag.clone();
    // B connects, then parks in a read until the test thread writes.
    let b = go!(move || {
        let mut c = goway::net::dial(addr).expect("dial");
        ready_tx.send(()).unwrap();
        let mut byte = [0u8; 1];
        let r = c.read(&mut byte).map(|n| (n, byte[0]));
        f.store(true, Ordering::SeqCst);
        r.expect("read")
    });
    // B's connection is in the listener's backlog by now: this accept does not wait.
    ready_rx.recv_timeout(WATCHDOG).expect("B connected");
    let (mut server_side, _) = ln.accept().expect("accept");
    let (driver, echo, started) = ping_pong_until(flag);
    // The pair is running when the byte comes in.
    started.recv_timeout(WATCHDOG).expect("the pair started");
    server_side.write_all(b"x").expect("write");
    assert!(
        join(driver),
        "the goroutine waiting on its socket never ran beside the ping-pong pair"
    );
    assert_eq!(join(b), (1, b'x'));
    join(echo);
}

/// Work that takes the worker for some microseconds without parking.
fn burn() {
    let mut x = 0u64;
    for i in 0..10_000u64 {
        x = std::hint::black_box(x.wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// A goroutine spawning in a loop is paused once 256 goroutines wait to start (with one worker
/// none starts before it parks), and goes on once they have: the backlog, and so the stacks
/// in use, stay bounded.
#[test]
fn a_goroutine_spawning_in_a_loop_is_paused_at_256_waiting() {
    let _serial = setup();
    const N: usize = 5_000;
    let base = goway::runtime::metrics();
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = ran.clone();
    let spawner = go!(move || {
        let (mut backlog, mut stacks) = (0, 0);
        for _ in 0..N {
            let r = r.clone();
            drop(go!(move || r.fetch_add(1, Ordering::Relaxed)));
            let m = goway::runtime::metrics();
            backlog = m.goroutines_runnable.max(backlog);
            stacks = m.stacks.max(stacks);
        }
        (backlog, stacks)
    });
    let (backlog, stacks) = join(spawner);
    common::wait_until("every goroutine to run", WATCHDOG, || {
        ran.load(Ordering::Relaxed) == N
    });
    assert!(
        (200..=257).contains(&backlog),
        "at most 256 goroutines wait to start after a spawn returns, and the spawner runs \
         until 256 do; saw {backlog}"
    );
    assert!(
        stacks <= base.stacks + 258,
        "{} stacks in use at most, from {} before",
        stacks,
        base.stacks
    );
}

/// A goroutine paused for spawning too fast goes on while a plain thread keeps hundreds of
/// goroutines waiting to start: the pause lasts a number of starts, not until the backlog is
/// low again, which that thread never lets it be (and no timer ends it).
#[test]
fn a_paused_spawner_goes_on_while_a_thread_keeps_the_backlog_high() {
    use std::sync::atomic::AtomicUsize;
    let _serial = setup();
    let base = goway::runtime::num_goroutines();
    let stop = Arc::new(AtomicBool::new(false));
    // The thread's goroutines that have not started yet.
    let waiting = Arc::new(AtomicUsize::new(0));
    let (s, w) = (stop.clone(), waiting.clone());
    let flood = std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            if w.load(Ordering::SeqCst) >= 1000 {
                std::thread::yield_now();
                continue;
            }
            w.fetch_add(1, Ordering::SeqCst);
            let w = w.clone();
            drop(go!(move || {
                w.fetch_sub(1, Ordering::SeqCst);
                burn();
            }));
        }
    });
    common::wait_until("the thread's backlog to pass 256", WATCHDOG, || {
        goway::runtime::metrics().goroutines_runnable > 256
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let spawner = go!(move || {
        let mut high = 0;
        for _ in 0..50 {
            high = goway::runtime::metrics().goroutines_runnable.max(high);
            let r = r.clone();
            drop(go!(move || r.fetch_add(1, Ordering::Relaxed)));
        }
        high
    });
    let high = join(spawner);
    stop.store(true, Ordering::SeqCst);
    common::join_thread(flood);
    assert!(
        high > 256,
        "the backlog was not kept high while the goroutine spawned (at most {high})"
    );
    common::wait_until("every goroutine to finish", WATCHDOG, || {
        ran.load(Ordering::Relaxed) == 50 && goway::runtime::num_goroutines() <= base
    });
}
