//! `runtime::dump()`: every goroutine spawned through goway, and every thread waiting in a goway
//! operation, shows up with its name, spawn site and what it is blocked in, and a channel wait
//! names the channel by its creation site.
//!
//! Each test parks a goroutine (named after the test, so that tests running in parallel in
//! this process do not mix up) in one blocking state, polls the dump until it shows the state
//! (bounded by `WATCHDOG`), then releases and joins it. No test sleeps to synchronise.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use goway::chan;
use goway::sync::{Cond, Mutex, Once, RwLock, Semaphore, WaitGroup};
use goway::{Builder, JoinHandle, select};

mod common;
use common::{WATCHDOG, join, join_thread};

const FILE: &str = "tests/diag.rs";

/// The registry is off by default; every test here turns it on before its first goroutine
/// (the first to run wins, and they all ask the same).
fn registry_on() {
    let _ = goway::runtime::Config::new().registry(true).apply();
}

#[track_caller]
fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    Builder::new().name(name).spawn(f).expect("spawn")
}

/// The dump's block (a group of goroutines, or a thread line) that lists `who`, once it says
/// `[state]`; fails after `WATCHDOG`.
fn wait_for(who: &str, state: &str) -> String {
    let want = format!("[{state}");
    common::wait_for(&format!("{who} shown as [{state}]"), WATCHDOG, || {
        let d = goway::runtime::dump();
        match d.split("\n\n").find(|b| b.contains(who)) {
            Some(block) if block.contains(&want) => Ok(block.to_owned()),
            _ => Err(d),
        }
    })
}

fn goroutine(name: &str) -> String {
    format!("\"{name}\"")
}

#[test]
fn chan_receive_names_the_channel_and_the_spawn_site() {
    registry_on();
    let ((tx, rx), made) = (chan::bounded::<u8>(0), line!());
    let (h, spawned) = (spawn("diag-recv", move || rx.recv()), line!());
    let block = wait_for(&goroutine("diag-recv"), "chan receive]");
    assert!(
        block.contains(&format!("channel made at {FILE}:{made}:")),
        "{block}"
    );
    assert!(
        block.contains(&format!("spawned at {FILE}:{spawned}:")),
        "{block}"
    );
    tx.send(1).unwrap();
    assert_eq!(join(h), Ok(1));
}

#[test]
fn chan_send_and_unbounded_receive_name_their_channel() {
    registry_on();
    let ((tx, rx), made) = (chan::bounded::<u8>(1), line!());
    tx.send(0).unwrap();
    let h = spawn("diag-send", move || tx.send(1));
    let block = wait_for(&goroutine("diag-send"), "chan send]");
    assert!(
        block.contains(&format!("channel made at {FILE}:{made}:")),
        "{block}"
    );
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx.recv(), Ok(1));
    join(h).unwrap();

    let ((utx, urx), made) = (chan::unbounded::<u8>(), line!());
    let h = spawn("diag-unbounded", move || urx.recv());
    let block = wait_for(&goroutine("diag-unbounded"), "chan receive]");
    assert!(
        block.contains(&format!("channel made at {FILE}:{made}:")),
        "{block}"
    );
    utx.send(2).unwrap();
    assert_eq!(join(h), Ok(2));
}

#[test]
fn nil_channel_waits_show_as_a_select_or_a_nil_chan_receive() {
    registry_on();
    let (tx, rx) = chan::bounded::<()>(0);
    let h = spawn("diag-nil", move || {
        // A nil channel parks for good; the deadline only lets the test end.
        let never = chan::never::<u8>();
        select! {
            recv(never) -> _ => {},
            recv(rx) -> _ => {},
        }
        let _ = chan::never::<u8>().recv_timeout(Duration::from_millis(1));
    });
    wait_for(&goroutine("diag-nil"), "select]");
    tx.send(()).unwrap();
    join(h);

    let (tx, rx) = chan::bounded::<()>(0);
    let h = spawn("diag-nil-recv", move || {
        // Parks on the nil channel until the deadline (up to the watchdog), unless the test's
        // signal arrives first, through the select below.
        let _ = rx.recv();
        chan::never::<u8>().recv_timeout(Duration::from_secs(1))
    });
    tx.send(()).unwrap();
    let block = wait_for(&goroutine("diag-nil-recv"), "chan receive (nil chan)");
    assert!(block.contains("with deadline"), "{block}");
    assert!(join(h).is_err());
}

#[test]
fn select_names_its_site() {
    registry_on();
    let (tx, rx) = chan::bounded::<u8>(0);
    let (_tx2, rx2) = chan::bounded::<u8>(0);
    let at = line!() + 2;
    let h = spawn("diag-select", move || {
        select! {
            recv(rx) -> v => v.ok(),
            recv(rx2) -> v => v.ok(),
        }
    });
    let block = wait_for(&goroutine("diag-select"), "select]");
    assert!(
        block.contains(&format!("select at {FILE}:{at}:")),
        "{block}"
    );
    tx.send(5).unwrap();
    assert_eq!(join(h), Some(5));
}

#[test]
fn select_with_timeout_is_marked_with_deadline() {
    registry_on();
    // A timer case is a channel like any other (Go shows `[select]`)...
    let (tx, rx) = chan::bounded::<u8>(0);
    let h = spawn("diag-select-after", move || {
        select! {
            recv(rx) -> v => v.ok(),
            recv(goway::time::after(WATCHDOG)) -> _ => None,
        }
    });
    wait_for(&goroutine("diag-select-after"), "select]");
    tx.send(1).unwrap();
    assert_eq!(join(h), Some(1));

    // ... while a select with its own deadline is marked.
    let (tx, rx) = chan::bounded::<u8>(0);
    let h = spawn("diag-select-timeout", move || {
        let mut sel = goway::select::Select::new();
        sel.recv(&rx);
        sel.select_timeout(WATCHDOG)
    });
    let block = wait_for(&goroutine("diag-select-timeout"), "select, with deadline]");
    assert!(block.contains("select at"), "{block}");
    tx.send(1).unwrap();
    assert_eq!(join(h), Some(0));
}

#[test]
fn sleep_is_shown_with_its_deadline() {
    registry_on();
    let h = spawn("diag-sleep", || {
        goway::time::sleep(Duration::from_millis(400))
    });
    let block = wait_for(&goroutine("diag-sleep"), "sleep");
    assert!(block.contains("with deadline"), "{block}");
    join(h);
}

#[test]
fn timer_channel_is_named_by_the_after_call() {
    registry_on();
    let at = line!() + 2;
    let h = spawn("diag-timer", || {
        goway::time::after(Duration::from_secs(1)).recv()
    });
    let block = wait_for(&goroutine("diag-timer"), "chan receive]");
    assert!(join(h).is_ok());
    assert!(
        block.contains(&format!("channel made at {FILE}:{at}:")),
        "{block}"
    );
}

#[test]
fn mutex_and_rwlock_waits_are_shown_with_go_names() {
    registry_on();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = m.clone();
    let h = spawn("diag-mutex", move || *m2.lock() += 1);
    wait_for(&goroutine("diag-mutex"), "sync.Mutex.Lock]");
    drop(g);
    join(h);
    assert_eq!(*m.lock(), 1);

    let l = Arc::new(RwLock::new(0));
    let w = l.write();
    let l2 = l.clone();
    let r = spawn("diag-rlock", move || *l2.read());
    wait_for(&goroutine("diag-rlock"), "sync.RWMutex.RLock]");
    drop(w);
    assert_eq!(join(r), 0);

    let rg = l.read();
    let l2 = l.clone();
    let w = spawn("diag-wlock", move || *l2.write() = 1);
    wait_for(&goroutine("diag-wlock"), "sync.RWMutex.Lock]");
    drop(rg);
    join(w);
}

#[test]
fn waitgroup_once_semaphore_and_cond_waits_are_shown_with_go_names() {
    registry_on();
    let wg = WaitGroup::new();
    wg.add(1);
    let wg2 = wg.clone();
    let h = spawn("diag-wg", move || wg2.wait());
    wait_for(&goroutine("diag-wg"), "sync.WaitGroup.Wait]");
    wg.done();
    join(h);

    let once = Arc::new(Once::new());
    let (tx, rx) = chan::bounded::<()>(0);
    let o1 = once.clone();
    let first = spawn("diag-once-first", move || {
        o1.call_once(|| {
            let _ = rx.recv();
        })
    });
    wait_for(&goroutine("diag-once-first"), "chan receive]");
    let o2 = once.clone();
    let second = spawn("diag-once-second", move || o2.call_once(|| {}));
    wait_for(&goroutine("diag-once-second"), "sync.Once.Do]");
    tx.send(()).unwrap();
    join(first);
    join(second);

    let sem = Arc::new(Semaphore::new(1));
    let p = sem.acquire();
    let s2 = sem.clone();
    let h = spawn("diag-sem", move || drop(s2.acquire()));
    wait_for(&goroutine("diag-sem"), "semaphore.Acquire]");
    drop(p);
    join(h);

    let pair = Arc::new((Mutex::new(false), Cond::new()));
    let p2 = pair.clone();
    let h = spawn("diag-cond", move || {
        let g = p2.1.wait_while(p2.0.lock(), |ready| !*ready);
        *g
    });
    wait_for(&goroutine("diag-cond"), "sync.Cond.Wait]");
    *pair.0.lock() = true;
    pair.1.broadcast();
    assert!(join(h));
}

#[test]
fn joins_running_goroutines_and_waiting_threads_are_shown() {
    registry_on();
    let (tx, rx) = chan::bounded::<u8>(0);
    let inner = spawn("diag-joined", move || rx.recv());
    let outer = spawn("diag-joiner", move || inner.join().ok());
    wait_for(&goroutine("diag-joiner"), "join]");

    // A goroutine busy in user code is "running".
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let busy = spawn("diag-busy", move || {
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            goway::runtime::yield_now();
        }
    });
    wait_for(&goroutine("diag-busy"), "running]");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    join(busy);

    // A plain thread waiting in a goway operation is listed by name.
    let (ttx, trx) = chan::bounded::<u8>(0);
    let t = std::thread::Builder::new()
        .name("diag-thread".into())
        .spawn(move || trx.recv())
        .expect("thread");
    let line = wait_for("thread \"diag-thread\"", "chan receive]");
    assert!(line.contains("channel made at"), "{line}");
    ttx.send(3).unwrap();
    assert_eq!(join_thread(t), Ok(3));

    tx.send(9).unwrap();
    assert_eq!(join(outer), Some(Ok(9)));
}

#[test]
fn accept_and_read_are_shown_as_io_wait() {
    registry_on();
    let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let acceptor = spawn("diag-accept", move || {
        let (mut c, _) = ln.accept().unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).map(|_| b[0])
    });
    wait_for(&goroutine("diag-accept"), "IO wait]");
    let mut c = goway::net::dial(addr).unwrap();
    // Now the goroutine waits in its read: still I/O.
    wait_for(&goroutine("diag-accept"), "IO wait]");
    c.write_all(&[7]).unwrap();
    assert_eq!(join(acceptor).unwrap(), 7);
}

#[test]
fn finished_goroutines_leave_the_dump() {
    registry_on();
    let h = spawn("diag-gone", || 1);
    assert_eq!(join(h), 1);
    // The record is dropped before the result is handed over.
    assert!(!goway::runtime::dump().contains("\"diag-gone\""));
}

#[test]
fn goroutines_in_one_state_are_grouped_and_counted() {
    registry_on();
    let (tx, rx) = chan::bounded::<u8>(0);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            spawn("diag-group", move || rx.recv())
        })
        .collect();
    let block = common::wait_for("a group of 3", WATCHDOG, || {
        let d = goway::runtime::dump();
        match d.split("\n\n").find(|b| b.contains("\"diag-group\"")) {
            Some(block) if block.starts_with("3 goroutines [chan receive]") => Ok(block.to_owned()),
            _ => Err(d),
        }
    });
    assert_eq!(block.matches("\"diag-group\"").count(), 3, "{block}");
    assert!(goway::runtime::dump().starts_with("goroutine dump: "));
    for _ in 0..3 {
        tx.send(1).unwrap();
    }
    for h in hs {
        assert_eq!(join(h), Ok(1));
    }
}
