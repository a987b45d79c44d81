//! The blocking pool (`runtime::block_on_thread`) and the DNS lookups that use it, on ONE
//! worker thread: a goroutine that waits for blocking work must leave the worker to the others.
//!
//! The runtime is configured once for this process: one worker, at most `CAP` blocking-pool
//! threads, idle pool threads exiting after `KEEP_ALIVE`. Every test takes the harness's
//! exclusive lock, so the pool's counts seen by one test are its own. Nothing here sleeps to
//! synchronise: closures on the pool block on a std condition (they run on plain OS threads,
//! where blocking is allowed), with bounded waits.

mod common;

use std::io::ErrorKind;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use goway::chan;
use goway::go;
use goway::net::{TcpListener, ToAddrs};
use goway::runtime::{self, block_on_thread, blocking_stats};

use common::{WATCHDOG, join, wait_until};

/// The blocking pool's maximum in this process.
const CAP: usize = 3;
/// Idle time before a pool thread exits, short so that the exit can be observed.
const KEEP_ALIVE: Duration = Duration::from_millis(200);

fn setup() {
    let _ = runtime::Config::new()
        .workers(1)
        .max_blocking_threads(CAP)
        .blocking_keep_alive(KEEP_ALIVE)
        .apply();
    assert_eq!(
        may::config().get_workers(),
        1,
        "this file must run goroutines on exactly one worker thread"
    );
    assert_eq!(blocking_stats().max_threads, CAP);
}

/// A flag plain threads can block on (with a bounded wait) and goroutines can raise without
/// blocking: the lock is held only to flip the flag, never across a wait in a goroutine.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }

    /// Blocks this (plain) thread until the gate opens; `false` after `WATCHDOG`.
    fn wait(&self) -> bool {
        let g = self.open.lock().unwrap();
        let (g, _) = self.cond.wait_timeout_while(g, WATCHDOG, |o| !*o).unwrap();
        *g
    }
}

/// Two goroutines playing ping-pong over unbuffered channels for `rounds` round trips,
/// counting them in `count`; opens `done` at the end.
fn ping_pong(
    rounds: usize,
    count: Arc<AtomicUsize>,
    done: Arc<Gate>,
) -> [goway::JoinHandle<()>; 2] {
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    let pong = go!(move || {
        for v in &ping_rx {
            if pong_tx.send(v).is_err() {
                break;
            }
        }
    });
    let ping = go!(move || {
        for i in 0..rounds {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
            count.fetch_add(1, Ordering::SeqCst);
        }
        done.open();
    });
    [ping, pong]
}

/// A goroutine blocked in `block_on_thread` leaves the only worker to the others: the
/// closure blocks its pool thread until a ping-pong between two other goroutines has finished
/// 1,000 rounds, which it could never do if the caller held the worker.
#[test]
fn other_goroutines_run_while_one_waits_for_the_pool() {
    let _g = common::exclusive();
    setup();
    let rounds = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Gate::default());
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let d = done.clone();
    let a = go!(move || {
        ready_tx.send(()).unwrap();
        block_on_thread(move || d.wait()).unwrap()
    });
    // A parks in block_on_thread right after this send (nothing in between yields), so the
    // ping-pong starts only once A waits.
    ready_rx.recv_timeout(WATCHDOG).unwrap();
    let pp = ping_pong(1000, rounds.clone(), done);
    assert!(
        join(a),
        "the ping-pong did not finish while the caller waited: the worker was blocked"
    );
    assert_eq!(rounds.load(Ordering::SeqCst), 1000);
    for h in pp {
        join(h);
    }
}

/// The case: `std::thread::sleep` on the pool. The ping-pong, started once the caller
/// is parked, has made progress by the time the sleep returns (inline on the one worker it
/// could not have started).
#[test]
fn a_sleep_on_the_pool_does_not_stop_the_worker() {
    let _g = common::exclusive();
    setup();
    let rounds = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let r = rounds.clone();
    let s = stop.clone();
    let a = go!(move || {
        ready_tx.send(()).unwrap();
        let seen = block_on_thread(move || {
            std::thread::sleep(Duration::from_millis(200));
            r.load(Ordering::SeqCst)
        })
        .unwrap();
        s.store(true, Ordering::SeqCst);
        seen
    });
    ready_rx.recv_timeout(WATCHDOG).unwrap();
    let (ping_tx, ping_rx) = chan::bounded::<()>(0);
    let pong = go!(move || for () in &ping_rx {});
    let r = rounds.clone();
    // Two goroutines waking each other keep the worker to themselves until they yield (the
    // guide's "run-to-empty" rule): yield, so A gets the worker back once the pool wakes it.
    let ping = go!(move || {
        while !stop.load(Ordering::SeqCst) {
            ping_tx.send(()).unwrap();
            r.fetch_add(1, Ordering::SeqCst);
            runtime::yield_now();
        }
    });
    let seen = join(a);
    assert!(
        seen > 0,
        "no ping-pong round while the caller slept on the pool"
    );
    join(ping);
    join(pong);
}

#[test]
fn the_result_comes_back_from_a_named_pool_thread() {
    let _g = common::exclusive();
    setup();
    let h = go!(|| block_on_thread(|| {
        let name = std::thread::current().name().map(str::to_owned);
        (vec![1, 2, 3], name)
    }));
    let (v, name) = join(h).unwrap();
    assert_eq!(v, [1, 2, 3]);
    let name = name.expect("pool threads are named");
    assert!(name.starts_with("goway-blocking-"), "{name}");
}

#[test]
fn a_panic_comes_back_as_panicked() {
    let _g = common::exclusive();
    setup();
    let h = go!(|| {
        // Not a literal: a formatted message whose arguments are all literals is folded into
        // a `&str` payload.
        let n = std::hint::black_box(7);
        let p = block_on_thread(move || -> u8 { panic!("boom {n}") }).unwrap_err();
        // The goroutine goes on after the panic, and the pool still works.
        let after = block_on_thread(|| 5).unwrap();
        (p, after)
    });
    let (p, after) = join(h);
    assert_eq!(p.message(), "boom 7");
    assert_eq!(p.name(), None);
    assert_eq!(after, 5);
    let payload = p.into_payload();
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "boom 7");
}

#[test]
fn on_a_plain_thread_it_runs_inline() {
    let _g = common::exclusive();
    setup();
    let here = std::thread::current().id();
    assert!(block_on_thread(move || std::thread::current().id() == here).unwrap());
    let p = block_on_thread(|| -> () { panic!("inline") }).unwrap_err();
    assert_eq!(p.message(), "inline");
    // On a pool thread (a plain thread too), a nested call runs inline: no pool deadlock.
    let h = go!(|| block_on_thread(|| {
        let me = std::thread::current().id();
        block_on_thread(move || std::thread::current().id() == me).unwrap()
    }));
    assert!(join(h).unwrap());
}

/// `CAP + 1` calls at once: `CAP` run, one waits in the queue; literal addresses resolve and
/// connect meanwhile (no pool), a host name waits for the pool; all finish once released.
#[test]
fn the_cap_holds_and_extra_calls_queue() {
    let _g = common::exclusive();
    setup();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let calls: Vec<_> = (0..CAP + 1)
        .map(|i| {
            let (running, most, gate) = (running.clone(), most.clone(), gate.clone());
            go!(move || {
                block_on_thread(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let opened = gate.wait();
                    running.fetch_sub(1, Ordering::SeqCst);
                    (i, opened)
                })
                .unwrap()
            })
        })
        .collect();
    wait_until("CAP calls running, one queued", WATCHDOG, || {
        let s = blocking_stats();
        running.load(Ordering::SeqCst) == CAP && s.queued == 1
    });
    let s = blocking_stats();
    assert_eq!((s.threads, s.idle), (CAP, 0), "{s:?}");

    // The pool is full: literal addresses must not need it.
    let literal = go!(move || {
        let ips = goway::net::lookup_host("127.0.0.1").unwrap();
        let c = goway::net::dial(format!("127.0.0.1:{port}")).unwrap();
        let t = goway::net::dial_timeout(("127.0.0.1", port), WATCHDOG).unwrap();
        (
            ips,
            c.peer_addr().unwrap().port(),
            t.peer_addr().unwrap().port(),
        )
    });
    let (ips, p1, p2) = join(literal);
    assert_eq!(ips, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
    assert_eq!((p1, p2), (port, port));

    // A host name goes to the pool: it queues behind the blocked calls.
    let named = go!(|| goway::net::lookup_host("localhost"));
    wait_until("the lookup queued", WATCHDOG, || {
        blocking_stats().queued == 2
    });
    assert!(!named.is_finished());

    gate.open();
    let mut seen: Vec<usize> = calls
        .into_iter()
        .map(|h| {
            let (i, opened) = join(h);
            assert!(opened, "call {i} was never released");
            i
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..CAP + 1).collect::<Vec<_>>());
    assert_eq!(
        most.load(Ordering::SeqCst),
        CAP,
        "more than CAP calls ran at once"
    );
    assert!(join(named).unwrap().iter().all(IpAddr::is_loopback));
    assert!(blocking_stats().threads <= CAP);
}

#[test]
fn idle_threads_exit_after_the_keep_alive() {
    let _g = common::exclusive();
    setup();
    join(go!(|| block_on_thread(|| ()).unwrap()));
    assert!(blocking_stats().threads >= 1);
    wait_until("the idle pool threads exited", WATCHDOG, || {
        blocking_stats().threads == 0
    });
    // And the pool starts a thread again for the next call.
    join(go!(|| block_on_thread(|| ()).unwrap()));
}

#[test]
fn lookup_host_localhost_from_a_goroutine() {
    let _g = common::exclusive();
    setup();
    let ips = join(go!(|| goway::net::lookup_host("localhost"))).unwrap();
    assert!(!ips.is_empty());
    assert!(ips.iter().all(IpAddr::is_loopback), "{ips:?}");
    let mut unique = ips.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ips.len(), "duplicates in {ips:?}");
    // The same from a plain thread (resolved in place).
    assert_eq!(goway::net::lookup_host("localhost").unwrap(), ips);
}

#[test]
fn dial_by_host_name_from_a_goroutine() {
    let _g = common::exclusive();
    setup();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    let server = go!(move || {
        let mut n = 0;
        for c in ln.incoming().take(3) {
            c.unwrap();
            n += 1;
        }
        n
    });
    let client = go!(move || {
        let a = goway::net::dial(format!("localhost:{port}")).unwrap();
        let b = goway::net::dial(("localhost", port)).unwrap();
        let c = goway::net::dial_timeout(format!("localhost:{port}"), WATCHDOG).unwrap();
        [a, b, c].map(|s| s.peer_addr().unwrap().port())
    });
    assert_eq!(join(client), [port; 3]);
    assert_eq!(join(server), 3);
}

/// Resolution errors keep the kinds users saw before the lookups moved to the pool.
#[test]
fn bad_addresses_are_invalid_input_errors() {
    let _g = common::exclusive();
    setup();
    let kinds = join(go!(|| {
        [
            "no port here".to_addrs().unwrap_err().kind(),
            goway::net::dial("no port here").unwrap_err().kind(),
        ]
    }));
    assert_eq!(kinds, [ErrorKind::InvalidInput; 2]);
    // An empty name is Go's "lookup : no such host" (a `DnsError`, kind `NotFound`).
    let empty = join(go!(|| goway::net::lookup_host("").unwrap_err()));
    assert_eq!(empty.kind(), ErrorKind::NotFound);
    assert_eq!(empty.to_string(), "lookup : no such host");
    assert_eq!(
        "no port here".to_addrs().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
