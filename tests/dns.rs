//! Name resolution off the worker threads: `localhost` resolves, a name that does not exist
//! gives Go's error, a slow lookup times out, each while the only worker keeps running other
//! goroutines; and the dialer tries the next resolved address when the first refuses,
//! reporting the first error when all fail.
//!
//! Every test runs on a one-worker runtime (`workers(1)`, process-wide: this file is its own
//! process) and the tests run one at a time. A lookup "held" by a test runs through a
//! `Resolver::from_fn` that waits on a gate before it asks the system resolver: while it
//! waits, a goroutine B, on the same single worker, must run; B opens the gate, so the lookup
//! can only finish if B ran while the lookup was in flight.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goway::chan;
use goway::go;
use goway::net::{
    Dialer, DnsError, DnsErrorKind, Resolver, TcpListener, ToAddrs, lookup_host,
    lookup_host_timeout,
};

mod common;
use common::{WATCHDOG, join};

/// Applies `workers(1)` and serialises the tests of this file (see the module doc).
fn setup() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = goway::runtime::Config::new().workers(1).apply();
    assert_eq!(
        may::config().get_workers(),
        1,
        "this file must run goroutines on exactly one worker thread"
    );
    guard
}

/// A gate a resolver waits on (on its pool thread, which may block) until a goroutine opens
/// it.
struct Gate {
    tx: Mutex<Option<mpsc::Sender<()>>>,
    rx: Mutex<mpsc::Receiver<()>>,
}

impl Gate {
    fn new() -> Arc<Gate> {
        let (tx, rx) = mpsc::channel();
        Arc::new(Gate {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(rx),
        })
    }

    /// Opens the gate (never blocks).
    fn open(&self) {
        if let Some(tx) = self.tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }

    /// Waits until the gate is open, at most `limit`; `true` if it opened.
    fn wait(&self, limit: Duration) -> bool {
        let rx = self.rx.lock().unwrap();
        match rx.recv_timeout(limit) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

/// The system resolver, behind `gate`: each lookup waits for the gate (`WATCHDOG` at most)
/// and then asks the system.
fn gated_system(gate: Arc<Gate>) -> Resolver {
    Resolver::from_fn(move |name| {
        if !gate.wait(WATCHDOG) {
            return Err(DnsError::other(name, "the test never opened the gate"));
        }
        // On this pool thread (not a goroutine) the system lookup runs right here.
        Resolver::system().lookup_host(name)
    })
}

/// Runs `lookup` in goroutine A through a gated system resolver, and B, which opens the gate,
/// in another goroutine on the same worker; returns A's result. A can only finish if the
/// worker ran B while A's lookup was in flight.
fn held_lookup<T: Send + 'static>(lookup: impl FnOnce(Resolver) -> T + Send + 'static) -> T {
    let gate = Gate::new();
    let resolver = gated_system(gate.clone());
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let a = go!(move || {
        ready_tx.send(()).unwrap();
        lookup(resolver)
    });
    ready_rx.recv_timeout(WATCHDOG).expect("A started");
    join(go!(move || gate.open()));
    join(a)
}

#[test]
fn localhost_resolves_to_loopback_while_the_worker_runs_others() {
    let _g = setup();
    let ips = held_lookup(|r| r.lookup_host("localhost")).unwrap();
    assert!(!ips.is_empty());
    assert!(
        ips.iter()
            .all(|ip| *ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip.is_loopback()),
        "{ips:?}"
    );
    assert!(
        ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)) || ips.contains(&"::1".parse().unwrap()),
        "{ips:?}"
    );
    // The same through the public functions, from a goroutine and from this thread.
    let from_goroutine = join(go!(|| lookup_host("localhost"))).unwrap();
    assert_eq!(from_goroutine, ips);
    assert_eq!(lookup_host_timeout("localhost", WATCHDOG).unwrap(), ips);
    // And through `ToAddrs`, with the port attached.
    let addrs = join(go!(|| "localhost:7".to_addrs())).unwrap();
    assert!(addrs.iter().all(|a| a.port() == 7 && a.ip().is_loopback()));
}

#[test]
fn a_name_that_does_not_exist_gives_gos_error() {
    let _g = setup();
    let err = held_lookup(|r| r.lookup_host("nonexistent.invalid")).unwrap_err();
    assert_eq!(err.kind(), DnsErrorKind::NotFound);
    assert!(err.is_not_found() && !err.is_timeout());
    assert_eq!(err.name(), "nonexistent.invalid");
    assert_eq!(err.to_string(), "lookup nonexistent.invalid: no such host");

    let io = join(go!(|| lookup_host("nonexistent.invalid"))).unwrap_err();
    assert_eq!(io.kind(), ErrorKind::NotFound);
    assert_eq!(io.to_string(), "lookup nonexistent.invalid: no such host");
    assert!(DnsError::find(&io).is_some_and(DnsError::is_not_found));

    // Dialing the name fails the same way, before any connection attempt.
    let io = join(go!(|| goway::net::dial("nonexistent.invalid:80"))).unwrap_err();
    assert_eq!(io.to_string(), "lookup nonexistent.invalid: no such host");
    let io = goway::net::dial_timeout("nonexistent.invalid:80", WATCHDOG).unwrap_err();
    assert_eq!(io.kind(), ErrorKind::NotFound);
}

#[test]
fn literal_addresses_need_no_lookup() {
    let _g = setup();
    let never = Resolver::from_fn(|name| panic!("{name} was looked up"));
    assert_eq!(
        never.lookup_host("127.0.0.1").unwrap(),
        [IpAddr::V4(Ipv4Addr::LOCALHOST)]
    );
    assert_eq!(
        never.lookup_host("::1").unwrap(),
        ["::1".parse::<IpAddr>().unwrap()]
    );
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let c = Dialer::new()
        .resolver(never)
        .dial(addr.to_string())
        .unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    assert_eq!(
        "[::1]:80".to_addrs().unwrap(),
        ["[::1]:80".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        "localhost".to_addrs().unwrap_err().to_string(),
        "address localhost: missing port in address"
    );
}

/// A lookup that outlasts its timeout: the caller gets Go's timeout error when the time is
/// up, the worker runs other goroutines meanwhile, and the pool thread still stuck in the
/// lookup does not hold up anyone.
#[test]
fn a_slow_lookup_times_out_without_blocking_the_worker() {
    let _g = setup();
    let gate = Gate::new();
    let slow = {
        let gate = gate.clone();
        Resolver::from_fn(move |_name| {
            gate.wait(WATCHDOG);
            Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
        })
    };
    // A waits up to a timeout long enough that B, which needs the worker for microseconds,
    // runs well within it even on a loaded machine.
    let timeout = Duration::from_secs(5);
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let a = {
        let slow = slow.clone();
        go!(move || {
            ready_tx.send(()).unwrap();
            slow.lookup_host_timeout("slow.test", timeout)
        })
    };
    ready_rx.recv_timeout(WATCHDOG).expect("A started");
    let b = go!(|| 42);
    assert_eq!(join(b), 42);
    assert!(!a.is_finished(), "B ran only after A's lookup had given up");
    let err = join(a).unwrap_err();
    assert_eq!(err.kind(), DnsErrorKind::Timeout);
    assert!(err.is_timeout() && err.is_temporary());
    assert_eq!(err.to_string(), "lookup slow.test: i/o timeout");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), ErrorKind::TimedOut);

    // A dial through the slow resolver gives up in its own time too, from a goroutine and
    // from a plain thread (the lookup runs on the pool either way).
    let d = Dialer::new()
        .timeout(Duration::from_millis(200))
        .resolver(slow.clone());
    let d2 = d.clone();
    let io = join(go!(move || d2.dial("slow.test:80"))).unwrap_err();
    assert_eq!(io.kind(), ErrorKind::TimedOut);
    assert_eq!(io.to_string(), "lookup slow.test: i/o timeout");
    let io = d.dial(("slow.test", 80)).unwrap_err();
    assert_eq!(io.kind(), ErrorKind::TimedOut);

    // Let the pool threads still in the slow lookup go.
    gate.open();
}

/// A resolver answering `ips` for any name.
fn fixed(ips: &[&str]) -> Resolver {
    let ips: Vec<IpAddr> = ips.iter().map(|s| s.parse().unwrap()).collect();
    Resolver::from_fn(move |_| Ok(ips.clone()))
}

/// `true` if a connection to 127.0.0.2 on `port` (nobody listens there) is refused, as on
/// Linux, where all of 127/8 is the loopback interface.
fn second_loopback_refuses(port: u16) -> bool {
    match std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 2], port)), WATCHDOG)
    {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

#[test]
fn dial_tries_the_next_address_when_the_first_refuses() {
    let _g = setup();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    if !second_loopback_refuses(addr.port()) {
        eprintln!("skipped: 127.0.0.2 does not refuse connections here");
        return;
    }
    let r = fixed(&["127.0.0.2", "127.0.0.1"]);
    for timeout in [None, Some(WATCHDOG)] {
        let mut d = Dialer::new().resolver(r.clone());
        if let Some(t) = timeout {
            d = d.timeout(t);
        }
        let port = addr.port();
        let c = join(go!(move || d.dial(format!("svc.test:{port}")))).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr, "timeout {timeout:?}");
        let (_server_side, from) = ln.accept().unwrap();
        assert_eq!(from, c.local_addr().unwrap());
    }
}

#[test]
fn when_every_address_fails_the_first_error_is_reported() {
    let _g = setup();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    drop(ln);
    if !second_loopback_refuses(port) {
        eprintln!("skipped: 127.0.0.2 does not refuse connections here");
        return;
    }
    // A TCP connection to a multicast address fails at once with ENETUNREACH (Linux's
    // `tcp_v4_connect`): an error unlike the refusal, so either order shows which is reported.
    for (ips, first) in [
        (["127.0.0.2", "224.0.0.1"], ErrorKind::ConnectionRefused),
        (["224.0.0.1", "127.0.0.2"], ErrorKind::NetworkUnreachable),
    ] {
        for timeout in [None, Some(WATCHDOG)] {
            let mut d = Dialer::new().resolver(fixed(&ips));
            if let Some(t) = timeout {
                d = d.timeout(t);
            }
            let err = join(go!(move || d.dial(("svc.test", port)))).unwrap_err();
            assert_eq!(err.kind(), first, "{ips:?} {timeout:?}: {err}");
        }
    }
}

/// A listener on `addr` whose backlog is full, so that a SYN to it is dropped and a connect
/// hangs: a blackholed address on loopback. `None` if it cannot be bound (no IPv6 loopback,
/// port taken) or the kernel kept accepting.
fn blackhole(addr: SocketAddr) -> Option<(socket2::Socket, Vec<std::net::TcpStream>)> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).ok()?;
    sock.bind(&addr.into()).ok()?;
    sock.listen(0).ok()?;
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => return Some((sock, fillers)),
        }
    }
    None
}

#[test]
fn happy_eyeballs_races_the_other_family_after_the_fallback_delay() {
    let _g = setup();
    // The server on IPv4 loopback; the same port on IPv6 loopback, resolved first (the
    // primary family), blackholed.
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()));
    let Some((hole, fillers)) = blackhole(v6) else {
        eprintln!(
            "skipped: no IPv6 loopback to blackhole on port {}",
            addr.port()
        );
        return;
    };
    // No time limit: tried in turn, the first address would hang for the kernel's connect
    // timeout (minutes) and the join below would fail at its watchdog.
    let d = Dialer::new()
        .fallback_delay(Duration::from_millis(100))
        .resolver(fixed(&["::1", "127.0.0.1"]));
    let port = addr.port();
    let c = join(go!(move || d.dial(("svc.test", port)))).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    let (_server_side, from) = ln.accept().unwrap();
    assert_eq!(from, c.local_addr().unwrap());
    // The losing attempt ends at its next SYN retransmission, refused once this is closed.
    drop((hole, fillers));
}

#[test]
fn happy_eyeballs_starts_the_fallback_at_once_when_the_primaries_fail() {
    let _g = setup();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    // Nobody listens on IPv6 loopback at this port (or there is no IPv6): the primary fails
    // at once, and the fallback must not wait its minute.
    let d = Dialer::new()
        .fallback_delay(Duration::from_secs(60))
        .resolver(fixed(&["::1", "127.0.0.1"]));
    let port = addr.port();
    let c = join(go!(move || d.dial(("svc.test", port)))).unwrap();
    assert_eq!(c.peer_addr().unwrap(), addr);
    // Both families failing: the primary's error is reported.
    drop(ln);
    let d = Dialer::new()
        .fallback_delay(Duration::from_secs(60))
        .resolver(fixed(&["224.0.0.1", "::1"]));
    let err = join(go!(move || d.dial(("svc.test", port)))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{err}");
}
