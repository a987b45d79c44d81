//! `goway::net::UdpSocket`: round trips, truncation and the largest datagram, timeouts and
//! deadlines (a receive times out; moving the deadline or closing from another goroutine wakes
//! it), many goroutines sending and receiving on one socket, socket options, and the wake-up
//! scenarios again on a one-worker runtime (a blocked receive leaves the worker to the others).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use goway::chan;
use goway::go;
use goway::net::{UdpSocket, UnixDatagram, is_closed_error};

mod common;
use common::{WATCHDOG, join};

/// The variable that makes the ignored `child` test run the scenarios.
const CHILD_ENV: &str = "GOWAY_UDP_CHILD";

/// The largest UDP payload over IPv4 (65,535 - 20 bytes of IP header - 8 of UDP header).
const MAX_V4_PAYLOAD: usize = 65_507;

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind")
}

/// A socket whose receives give up after `WATCHDOG` (a lost datagram fails, never hangs).
fn bind_bounded() -> UdpSocket {
    let s = bind();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    s
}

#[test]
fn send_to_and_recv_from_round_trip_between_goroutines() {
    let _g = common::shared();
    let server = bind_bounded();
    let addr = server.local_addr().unwrap();
    let echo = go!(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, peer) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], peer).unwrap();
        }
    });
    let client = go!(move || {
        let c = bind_bounded();
        let mut got = Vec::new();
        for msg in [&b"one"[..], b"", b"three"] {
            assert_eq!(c.send_to(msg, addr).unwrap(), msg.len());
            let mut buf = [0u8; 2048];
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr, "the echo comes from the server's address");
            got.push(buf[..n].to_vec());
        }
        got
    });
    assert_eq!(
        join(client),
        [b"one".to_vec(), Vec::new(), b"three".to_vec()]
    );
    join(echo);
}

#[test]
fn a_connected_socket_sends_to_and_receives_from_its_peer_only() {
    let _g = common::shared();
    let a = bind_bounded();
    let b = bind_bounded();
    let stranger = bind();
    a.connect(b.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    assert!(b.peer_addr().is_err(), "b is not connected");
    assert_eq!(
        b.send(b"x").unwrap_err().raw_os_error(),
        Some(libc::EDESTADDRREQ)
    );

    // A datagram from another address is not delivered to a connected socket.
    stranger.send_to(b"noise", a.local_addr().unwrap()).unwrap();
    b.send_to(b"from b", a.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 64];
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from b");

    a.send(b"to b").unwrap();
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"to b"[..], a.local_addr().unwrap()));
}

#[test]
fn peek_leaves_the_datagram_queued() {
    let _g = common::shared();
    let a = bind_bounded();
    let b = bind();
    b.send_to(b"first", a.local_addr().unwrap()).unwrap();
    b.send_to(b"second", a.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = a.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"first"[..], b.local_addr().unwrap()));
    assert_eq!(a.recv(&mut buf).unwrap(), 5, "the peeked datagram again");
    assert_eq!(&buf[..5], b"first");
    a.connect(b.local_addr().unwrap()).unwrap();
    let n = a.peek(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"second");
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"second");
}

#[test]
fn the_largest_datagram_goes_through_whole_and_a_larger_one_is_refused() {
    let _g = common::shared();
    let a = bind_bounded();
    let b = bind_bounded();
    // The default send and receive buffers hold a 64 KiB datagram; make sure they do.
    socket2::SockRef::from(a.as_may().inner())
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    socket2::SockRef::from(b.as_may().inner())
        .set_send_buffer_size(1 << 20)
        .unwrap();
    let big: Vec<u8> = (0..MAX_V4_PAYLOAD).map(|i| (i % 251) as u8).collect();
    let to = a.local_addr().unwrap();
    let h = go!(move || {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = a.recv_from(&mut buf).unwrap();
        buf.truncate(n);
        buf
    });
    assert_eq!(b.send_to(&big, to).unwrap(), MAX_V4_PAYLOAD);
    assert_eq!(join(h), big);

    let too_big = vec![0u8; MAX_V4_PAYLOAD + 1];
    let err = b.send_to(&too_big, to).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
}

#[test]
fn a_short_buffer_truncates_the_datagram_and_drops_the_rest() {
    let _g = common::shared();
    let a = bind_bounded();
    let b = bind();
    let to = a.local_addr().unwrap();
    let long: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    b.send_to(&long, to).unwrap();
    b.send_to(b"next", to).unwrap();
    let mut small = [0u8; 100];
    let (n, _) = a.recv_from(&mut small).unwrap();
    assert_eq!(n, 100, "the buffer's length, not the datagram's");
    assert_eq!(&small[..], &long[..100]);
    // The other 900 bytes are gone: the next receive is the next datagram.
    let n = a.recv(&mut small).unwrap();
    assert_eq!(&small[..n], b"next");
}

#[test]
fn a_receive_times_out_and_the_socket_stays_usable() {
    let _g = common::shared();
    let a = bind();
    let b = bind();
    a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    assert_eq!(a.read_timeout(), Some(Duration::from_millis(30)));
    let start = Instant::now();
    let err = a.recv_from(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "i/o timeout");
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(
        a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // A deadline in the past fails at once, even with a datagram queued.
    b.send_to(b"x", a.local_addr().unwrap()).unwrap();
    a.set_read_timeout(None).unwrap();
    a.set_read_deadline(Some(Instant::now()));
    assert_eq!(
        a.recv(&mut [0u8; 16]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    a.set_read_deadline(Some(Instant::now() + WATCHDOG));
    assert_eq!(a.recv(&mut [0u8; 16]).unwrap(), 1);

    a.set_write_deadline(Some(Instant::now()));
    assert_eq!(
        a.send_to(b"y", b.local_addr().unwrap()).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    a.set_deadline(None);
    a.send_to(b"y", b.local_addr().unwrap()).unwrap();
}

#[test]
fn a_socket_used_from_plain_threads() {
    let _g = common::shared();
    let a = Arc::new(bind());
    let b = bind_bounded();
    let to = b.local_addr().unwrap();
    let t = {
        let a = a.clone();
        std::thread::spawn(move || a.send_to(b"from a thread", to).unwrap())
    };
    common::join_thread(t);
    let mut buf = [0u8; 64];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from a thread");
    // A thread blocked in a receive is woken by a deadline set elsewhere.
    let t = {
        let a = a.clone();
        std::thread::spawn(move || a.recv(&mut [0u8; 8]).map_err(|e| e.kind()))
    };
    // No synchronisation with the thread's entry into recv is needed: a deadline in the past
    // fails the receive whether it is set before or while the thread waits.
    a.set_read_deadline(Some(Instant::now()));
    assert_eq!(common::join_thread(t), Err(ErrorKind::TimedOut));
}

/// Many goroutines on one socket: 4 send to the socket's own address while 4 receive from it.
/// A window of credits keeps the datagrams in flight well within the receive buffer, so on
/// loopback none may be lost, and every one must be received exactly once, whole.
#[test]
fn many_goroutines_send_and_receive_on_one_socket() {
    let _g = common::shared();
    const SENDERS: u32 = 4;
    const RECEIVERS: usize = 4;
    const EACH: u32 = 500;
    const WINDOW: usize = 64;
    let s = Arc::new(bind());
    let me = s.local_addr().unwrap();
    let (credit_tx, credit_rx) = chan::bounded::<()>(WINDOW);
    let (got_tx, got_rx) = chan::bounded::<u32>(WINDOW);
    let mut receivers = Vec::new();
    for _ in 0..RECEIVERS {
        let (s, credit_rx, got_tx) = (s.clone(), credit_rx.clone(), got_tx.clone());
        receivers.push(go!(move || {
            let mut buf = [0u8; 64];
            loop {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        assert_eq!(n, 8, "a whole datagram");
                        assert_eq!(from, me);
                        let id = u32::from_le_bytes(buf[..4].try_into().unwrap());
                        assert_eq!(buf[4..8], id.to_be_bytes(), "not torn");
                        let _ = credit_rx.recv_timeout(WATCHDOG);
                        got_tx.send_timeout(id, WATCHDOG).unwrap();
                    }
                    Err(e) if is_closed_error(&e) => return,
                    Err(e) => panic!("receive: {e}"),
                }
            }
        }));
    }
    drop(got_tx);
    let mut senders = Vec::new();
    for k in 0..SENDERS {
        let (s, credit_tx) = (s.clone(), credit_tx.clone());
        senders.push(go!(move || {
            for i in 0..EACH {
                credit_tx.send_timeout((), WATCHDOG).unwrap();
                let id = k * EACH + i;
                let mut d = [0u8; 8];
                d[..4].copy_from_slice(&id.to_le_bytes());
                d[4..].copy_from_slice(&id.to_be_bytes());
                assert_eq!(s.send_to(&d, me).unwrap(), 8);
            }
        }));
    }
    let mut seen = HashSet::new();
    for _ in 0..SENDERS * EACH {
        let id = got_rx
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|e| panic!("after {} datagrams: {e:?}", seen.len()));
        assert!(seen.insert(id), "datagram {id} received twice");
    }
    for h in senders {
        join(h);
    }
    s.close().unwrap();
    for h in receivers {
        join(h);
    }
    assert_eq!(seen.len() as u32, SENDERS * EACH);
}

/// A shared server socket echoing with several goroutines while clients in goroutines make
/// round trips: every round trip completes.
#[test]
fn an_echo_socket_served_by_several_goroutines() {
    let _g = common::shared();
    let server = Arc::new(bind());
    let addr = server.local_addr().unwrap();
    let mut echoers = Vec::new();
    for _ in 0..3 {
        let server = server.clone();
        echoers.push(go!(move || {
            let mut buf = [0u8; 256];
            loop {
                match server.recv_from(&mut buf) {
                    Ok((n, peer)) => {
                        server.send_to(&buf[..n], peer).unwrap();
                    }
                    Err(e) if is_closed_error(&e) => return,
                    Err(e) => panic!("echo: {e}"),
                }
            }
        }));
    }
    let clients: Vec<_> = (0..6u32)
        .map(|k| {
            go!(move || {
                let c = bind_bounded();
                c.connect(addr).unwrap();
                for i in 0..200u32 {
                    let msg = format!("{k}-{i}");
                    c.send(msg.as_bytes()).unwrap();
                    let mut buf = [0u8; 256];
                    let n = c.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], msg.as_bytes());
                }
            })
        })
        .collect();
    for h in clients {
        join(h);
    }
    server.close().unwrap();
    for h in echoers {
        join(h);
    }
}

#[test]
fn options_that_std_offers() {
    let _g = common::shared();
    let s = bind();
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.set_ttl(17).unwrap();
    assert_eq!(s.ttl().unwrap(), 17);
    s.set_multicast_ttl_v4(3).unwrap();
    assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
    s.set_multicast_loop_v4(false).unwrap();
    assert!(!s.multicast_loop_v4().unwrap());
    assert!(s.take_error().unwrap().is_none());
    let c = s.try_clone().unwrap();
    assert_eq!(c.local_addr().unwrap(), s.local_addr().unwrap());
    assert_ne!(
        std::os::fd::AsRawFd::as_raw_fd(&c),
        std::os::fd::AsRawFd::as_raw_fd(&s)
    );
    // The clone has its own closed state: closing it leaves the original working.
    c.close().unwrap();
    assert!(is_closed_error(
        &c.send_to(b"x", s.local_addr().unwrap()).unwrap_err()
    ));
    s.send_to(b"x", s.local_addr().unwrap()).unwrap();
}

/// Multicast on loopback: a member of a group receives what is sent to the group (skipped
/// with a message where the host has no multicast route on loopback).
#[test]
fn a_multicast_member_receives_the_group_datagrams() {
    let _g = common::shared();
    let group = Ipv4Addr::new(239, 255, 42, 99);
    let member = UdpSocket::bind("0.0.0.0:0").unwrap();
    member.set_read_timeout(Some(WATCHDOG)).unwrap();
    if let Err(e) = member.join_multicast_v4(group, Ipv4Addr::LOCALHOST) {
        eprintln!("skipped: cannot join a multicast group on loopback here: {e}");
        return;
    }
    let port = member.local_addr().unwrap().port();
    let sender = bind();
    socket2::SockRef::from(sender.as_may().inner())
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    sender.set_multicast_loop_v4(true).unwrap();
    if let Err(e) = sender.send_to(b"to the group", SocketAddr::from((group, port))) {
        eprintln!("skipped: cannot send to a multicast group on loopback here: {e}");
        return;
    }
    let mut buf = [0u8; 64];
    let n = member.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"to the group");
    member
        .leave_multicast_v4(group, Ipv4Addr::LOCALHOST)
        .unwrap();
}

// ---- Wake-up scenarios, run here and again on a one-worker runtime (in a child process) ----

/// Spawns A, which reports on `ready` right before it blocks in `op`.
fn spawn_a<T: Send + 'static>(
    op: impl FnOnce() -> T + Send + 'static,
) -> (goway::JoinHandle<T>, chan::Receiver<()>) {
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let h = go!(move || {
        ready_tx.send(()).unwrap();
        op()
    });
    (h, ready_rx)
}

/// Runs B in a goroutine once A has said it is about to block, and waits for B. On one
/// worker, B runs only after A has parked, so B completing proves A left the worker free.
fn then_b(ready: chan::Receiver<()>, b: impl FnOnce() + Send + 'static) {
    ready.recv_timeout(WATCHDOG).expect("A started");
    join(go!(b));
}

/// A receive blocked with no limit is woken by a datagram sent by another goroutine.
fn scenario_recv_woken_by_a_datagram() {
    let a = Arc::new(bind());
    let to = a.local_addr().unwrap();
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || {
            let mut buf = [0u8; 16];
            let n = a.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        })
    };
    then_b(ready, move || {
        bind().send_to(b"wake", to).unwrap();
    });
    assert_eq!(join(h), b"wake");
}

/// A receive blocked with no limit is ended by a deadline set from another goroutine.
fn scenario_deadline_from_another_goroutine() {
    let a = Arc::new(bind());
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || a.recv_from(&mut [0u8; 16]).map_err(|e| e.kind()))
    };
    {
        let a = a.clone();
        then_b(ready, move || a.set_read_deadline(Some(Instant::now())));
    }
    assert_eq!(join(h), Err(ErrorKind::TimedOut));
}

/// A receive waiting on a short deadline, moved later from another goroutine, waits on and
/// gets the datagram sent after the first deadline would have passed.
fn scenario_deadline_moved_later() {
    let a = Arc::new(bind());
    let to = a.local_addr().unwrap();
    let first = Instant::now() + Duration::from_secs(2);
    a.set_read_deadline(Some(first));
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || {
            let mut buf = [0u8; 16];
            a.recv(&mut buf).map(|n| buf[..n].to_vec())
        })
    };
    {
        let a = a.clone();
        then_b(ready, move || {
            a.set_read_deadline(Some(Instant::now() + WATCHDOG));
        });
    }
    // Only once the first deadline has passed (this waits for time, not for A), send.
    goway::time::sleep(
        first.saturating_duration_since(Instant::now()) + Duration::from_millis(100),
    );
    bind().send_to(b"late", to).unwrap();
    assert_eq!(join(h).unwrap(), b"late");
}

/// A receive blocked with no limit is ended by a close from another goroutine.
fn scenario_close_from_another_goroutine() {
    let a = Arc::new(bind());
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || a.recv_from(&mut [0u8; 16]).unwrap_err())
    };
    {
        let a = a.clone();
        then_b(ready, move || a.close().unwrap());
    }
    assert!(is_closed_error(&join(h)));
    assert!(is_closed_error(
        &a.send_to(b"x", a.local_addr().unwrap()).unwrap_err()
    ));
    assert!(is_closed_error(&a.close().unwrap_err()));
}

/// A receive with a timeout leaves the worker to other goroutines while it waits: B sends
/// the datagram A waits for (on one worker, if A's wait held the thread, B would run only
/// after A's timeout, and A would fail).
fn scenario_timed_recv_leaves_the_worker() {
    let a = Arc::new(bind());
    let to = a.local_addr().unwrap();
    a.set_read_timeout(Some(WATCHDOG)).unwrap();
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || {
            let mut buf = [0u8; 16];
            a.recv(&mut buf).map(|n| buf[..n].to_vec())
        })
    };
    then_b(ready, move || {
        bind().send_to(b"in time", to).unwrap();
    });
    assert_eq!(join(h).unwrap(), b"in time");
}

/// A Unix datagram receive is woken by a datagram, then by a deadline, then by a close, each
/// from another goroutine.
fn scenario_unix_datagram_wake_ups() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || {
            let mut buf = [0u8; 16];
            a.recv(&mut buf).map(|n| buf[..n].to_vec())
        })
    };
    then_b(ready, move || {
        b.send(b"unix").unwrap();
    });
    assert_eq!(join(h).unwrap(), b"unix");
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || a.recv(&mut [0u8; 16]).map_err(|e| e.kind()))
    };
    {
        let a = a.clone();
        then_b(ready, move || a.set_read_deadline(Some(Instant::now())));
    }
    assert_eq!(join(h), Err(ErrorKind::TimedOut));
    a.set_read_deadline(None);
    let (h, ready) = {
        let a = a.clone();
        spawn_a(move || a.recv(&mut [0u8; 16]).unwrap_err())
    };
    {
        let a = a.clone();
        then_b(ready, move || a.close().unwrap());
    }
    assert!(is_closed_error(&join(h)));
}

fn every_scenario() {
    scenario_unix_datagram_wake_ups();
    scenario_recv_woken_by_a_datagram();
    scenario_deadline_from_another_goroutine();
    scenario_deadline_moved_later();
    scenario_close_from_another_goroutine();
    scenario_timed_recv_leaves_the_worker();
}

#[test]
fn wake_up_scenarios() {
    let _g = common::shared();
    every_scenario();
}

/// Every wake-up scenario again on a one-worker runtime, in a child process.
#[test]
fn wake_up_scenarios_on_one_worker() {
    let _g = common::shared();
    let out = common::child::run(CHILD_ENV, "one-worker", Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("scenarios done"), "{}", out.describe());
}

#[test]
#[ignore = "the child process of wake_up_scenarios_on_one_worker"]
fn child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    goway::runtime::Config::new()
        .workers(1)
        .apply()
        .expect("the child configures its runtime first");
    assert_eq!(may::config().get_workers(), 1);
    every_scenario();
    println!("scenarios done");
}

/// Unix datagram sockets bound to paths: `send_to` a path, `recv_from` gives the sender's path,
/// a short buffer truncates, and a connected socket sends with `send`.
#[test]
fn unix_datagrams_between_bound_paths() {
    let _g = common::shared();
    let dir = std::env::temp_dir().join(format!("goway-udp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pa, pb) = (dir.join("a.sock"), dir.join("b.sock"));
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
    let a = UnixDatagram::bind(&pa).unwrap();
    let b = UnixDatagram::bind(&pb).unwrap();
    b.set_read_timeout(Some(WATCHDOG)).unwrap();
    let h = go!(move || {
        let mut buf = [0u8; 4];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from.as_pathname().map(|p| p.to_owned()))
    });
    assert_eq!(a.send_to(b"truncated", &pb).unwrap(), 9);
    let (got, from) = join(h);
    assert_eq!(got, b"trun");
    assert_eq!(from.as_deref(), Some(pa.as_path()));
    let c = UnixDatagram::unbound().unwrap();
    c.connect(&pa).unwrap();
    assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(pa.as_path()));
    c.send(b"hi").unwrap();
    a.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut buf = [0u8; 8];
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The example serves UDP echo on two workers: every datagram comes back, whole.
#[test]
fn udp_echo_example_echoes_datagrams() {
    let _g = common::shared();
    let exe = common::example::build_example("udp_echo");
    let ex = common::example::Example::start_with(
        std::process::Command::new(exe).args(["--addr", "127.0.0.1:0", "--workers", "2"]),
        true,
    );
    let server: SocketAddr = ex.addr().parse().unwrap();
    let c = bind_bounded();
    c.connect(server).unwrap();
    for i in 0..100u32 {
        let msg = format!("datagram {i}").repeat(1 + i as usize % 7);
        c.send(msg.as_bytes()).unwrap();
        let mut buf = [0u8; 2048];
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.as_bytes());
    }
}
