//! goway::net over real sockets on loopback: listeners, dial, timeouts and deadlines, split
//! halves, Unix sockets. Every wait is bounded (`WATCHDOG`), every address is port 0.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

mod common;
use common::WATCHDOG;

use goway::chan;
use goway::go;
use goway::net::{TcpListener, UnixListener, UnixStream, dial, dial_timeout};

#[test]
fn echo_between_goroutines() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let server = go!(move || {
        let (mut c, peer) = ln.accept().unwrap();
        assert!(peer.ip().is_loopback());
        assert!(c.nodelay().unwrap(), "accepted streams have TCP_NODELAY");
        let mut buf = [0u8; 1024];
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            c.write_all(&buf[..n]).unwrap();
        }
    });
    let client = go!(move || {
        let mut c = dial(addr).unwrap();
        let mut got = Vec::new();
        for i in 0..100u32 {
            let msg = format!("message {i};");
            c.write_all(msg.as_bytes()).unwrap();
            let mut buf = vec![0u8; msg.len()];
            c.read_exact(&mut buf).unwrap();
            got.extend_from_slice(&buf);
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        got.len()
    });
    assert!(client.join().unwrap() > 1000);
    server.join().unwrap();
}

#[test]
fn many_clients_from_threads_and_goroutines() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    const N: usize = 40;
    let acceptor = go!(move || {
        let mut hs = Vec::new();
        for _ in 0..N {
            let (mut c, _) = ln.accept().unwrap();
            hs.push(go!(move || {
                let mut b = [0u8; 8];
                c.read_exact(&mut b).unwrap();
                c.write_all(&b).unwrap();
            }));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
    let mut clients = Vec::new();
    for i in 0..N {
        let f = move || {
            let mut c = dial(addr).unwrap();
            c.write_all(&(i as u64).to_be_bytes()).unwrap();
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            assert_eq!(u64::from_be_bytes(b), i as u64);
        };
        if i % 2 == 0 {
            clients.push(go!(f));
        } else {
            std::thread::spawn(f).join().unwrap();
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    acceptor.join().unwrap();
}

#[test]
fn dial_refused_and_resolved_names() {
    // A port that was just free: nobody listens.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = dial(("127.0.0.1", port)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

    // A host name resolves off the worker thread when dialled from a goroutine.
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = ln.local_addr().unwrap().port();
    let h = go!(move || dial_timeout(format!("localhost:{port}"), WATCHDOG).map(|_| ()));
    let (_c, _) = ln.accept().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn binding_a_port_in_use_fails() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = TcpListener::bind(a.local_addr().unwrap()).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::AddrInUse,
        "no silent SO_REUSEPORT sharing"
    );
}

#[test]
fn read_timeout_and_zero_timeout() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = dial(ln.local_addr().unwrap()).unwrap();
    let (_s, _) = ln.accept().unwrap();
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(c.read_timeout(), Some(Duration::from_millis(50)));
    let t = Instant::now();
    let e = c.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(45) && took < WATCHDOG,
        "{took:?}"
    );
}

#[test]
fn a_deadline_is_not_extended_by_trickled_bytes() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let (stop_tx, stop_rx) = chan::bounded::<()>(0);
    // The peer trickles one byte every 20 ms until told to stop.
    let trickler = go!(move || {
        let (mut s, _) = ln.accept().unwrap();
        loop {
            goway::select! {
                recv(stop_rx) -> _ => break,
                recv(goway::time::after(Duration::from_millis(20))) -> _ => {
                    if s.write_all(b"x").is_err() { break; }
                }
            }
        }
    });
    let reader = go!(move || {
        let mut c = dial(addr).unwrap();
        let start = Instant::now();
        c.set_read_deadline(Some(start + Duration::from_millis(200)));
        let mut got = 0;
        let mut buf = [0u8; 16];
        let err = loop {
            match c.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        (err.kind(), got, start.elapsed())
    });
    let (kind, got, took) = reader.join().unwrap();
    stop_tx.close();
    trickler.join().unwrap();
    assert_eq!(kind, ErrorKind::TimedOut);
    assert!(got >= 2, "bytes arrived before the deadline: {got}");
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn a_past_deadline_fails_at_once_and_clearing_it_works() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = dial(ln.local_addr().unwrap()).unwrap();
    let (mut s, _) = ln.accept().unwrap();
    c.set_deadline(Some(Instant::now() - Duration::from_millis(1)));
    assert_eq!(
        c.read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    assert_eq!(c.write(b"x").unwrap_err().kind(), ErrorKind::TimedOut);
    c.set_deadline(None);
    s.write_all(b"y").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");
}

#[test]
fn split_halves_work_from_two_goroutines() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let server = go!(move || {
        let (s, _) = ln.accept().unwrap();
        let (mut r, mut w) = s.split().unwrap();
        // Reader goroutine forwards to the writer goroutine through a channel.
        let (tx, rx) = chan::bounded::<Vec<u8>>(4);
        let rd = go!(move || {
            let mut buf = [0u8; 256];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let wr = go!(move || {
            for chunk in &rx {
                w.write_all(&chunk).unwrap();
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        rd.join().unwrap();
        wr.join().unwrap();
    });
    let mut c = dial(addr).unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut c2 = c.try_clone().unwrap();
        let p = payload.clone();
        std::thread::spawn(move || {
            c2.write_all(&p).unwrap();
            c2.shutdown(Shutdown::Write).unwrap();
        })
    };
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    server.join().unwrap();
    assert_eq!(back, payload);
}

#[test]
fn split_halves_keep_their_timeouts() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = dial(ln.local_addr().unwrap()).unwrap();
    let (_s, _) = ln.accept().unwrap();
    let (mut r, _w) = c.split().unwrap();
    r.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let h = go!(move || r.read(&mut [0u8; 1]).map_err(|e| e.kind()));
    assert_eq!(h.join().unwrap(), Err(ErrorKind::TimedOut));
}

#[test]
fn unix_sockets_round_trip_and_time_out() {
    let path = std::env::temp_dir().join(format!("goway-net-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ln = UnixListener::bind(&path).unwrap();
    let server = go!(move || {
        let (s, _) = ln.accept().unwrap();
        let (mut r, mut w) = s.split().unwrap();
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        w.write_all(&buf).unwrap();
    });
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    server.join().unwrap();
    // The server closed: EOF, not a timeout. (A generous limit: the peer's descriptors may be
    // closed a moment after its goroutine returns, and a loaded machine stretches that.)
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    std::fs::remove_file(&path).unwrap();

    let (mut a, mut b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    a.write_all(b"x").unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 1);
}

#[test]
fn unix_deadlines_write_timeouts_and_half_shutdown() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let mut buf = [0u8; 64 << 10];
    // A read deadline in the past fails at once; clearing it lets the read succeed.
    b.set_read_deadline(Some(Instant::now()));
    assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    b.set_read_deadline(None);
    a.write_all(b"y").unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    // Nobody reads `b`: writes fill the socket buffer, then the write timeout fires.
    a.set_write_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let err = loop {
        if let Err(e) = a.write(&buf) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // The same with a write deadline, on a split half.
    let (_ra, mut wa) = a.split().unwrap();
    wa.set_write_timeout(None).unwrap();
    wa.set_write_deadline(Some(Instant::now() + Duration::from_millis(30)));
    assert_eq!(wa.write(&buf).unwrap_err().kind(), ErrorKind::TimedOut);
    // Halves: peer address (unnamed for a pair), and a write half's shutdown gives EOF to a
    // read blocked in another goroutine.
    let (mut rb, wb) = b.split().unwrap();
    assert!(rb.peer_addr().unwrap().as_pathname().is_none());
    assert!(wa.peer_addr().is_ok() && wb.peer_addr().is_ok());
    let (started_tx, started_rx) = chan::bounded::<()>(1);
    let reader = go!(move || {
        let _ = started_tx.send(());
        let mut n = 0usize;
        let mut small = [0u8; 4096];
        // Drain what is buffered, then block until the peer's shutdown gives EOF.
        loop {
            match rb.read(&mut small) {
                Ok(0) => return Ok(n),
                Ok(k) => n += k,
                Err(e) => return Err(e),
            }
        }
    });
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    wa.shutdown(Shutdown::Write).unwrap();
    let drained = reader
        .join()
        .unwrap()
        .expect("EOF after the peer's shutdown");
    assert!(drained > 0);
    wb.shutdown(Shutdown::Both).unwrap();
}

#[test]
fn close_wakes_a_waiting_accept_in_a_goroutine_or_a_thread() {
    use std::sync::Arc;
    // One waiter per listener at a time (may keeps one waiter per socket): a goroutine...
    let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l1 = ln.clone();
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let h = go!(move || {
        ready_tx.send(()).unwrap();
        l1.accept().map(|_| ())
    });
    ready_rx.recv().unwrap();
    // It may still be on its way into accept: close works either way.
    ln.close().unwrap();
    let e = h
        .join_timeout(Duration::from_secs(10))
        .expect("accept woke")
        .unwrap_err();
    assert!(goway::net::is_closed_error(&e), "{e}");
    assert!(goway::net::is_closed_error(&ln.accept().unwrap_err()));

    // ...then a plain thread.
    let ln = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = ln.clone();
    let (ready_tx, ready_rx) = chan::bounded::<()>(1);
    let t = std::thread::spawn(move || {
        ready_tx.send(()).unwrap();
        l2.accept().map(|_| ())
    });
    ready_rx.recv().unwrap();
    ln.close().unwrap();
    let e = common::join_thread(t).unwrap_err();
    assert!(goway::net::is_closed_error(&e), "{e}");

    let path = std::env::temp_dir().join(format!("goway-close-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ul = Arc::new(UnixListener::bind(&path).unwrap());
    let u1 = ul.clone();
    let h = go!(move || u1.accept().map(|_| ()));
    ul.close().unwrap();
    let e = h
        .join_timeout(Duration::from_secs(10))
        .expect("accept woke")
        .unwrap_err();
    assert!(goway::net::is_closed_error(&e), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn data_and_fin_arriving_together_end_in_eof_in_a_goroutine() {
    // A read that empties the socket lets the next one wait without reading first; a FIN
    // that came with the data must still end that wait.
    for _ in 0..50 {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = ln.local_addr().unwrap();
        let h = go!(move || {
            let (mut c, _) = ln.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 64];
            loop {
                match c.read(&mut b) {
                    Ok(0) => {
                        // A read after EOF returns EOF again at once.
                        assert_eq!(c.read(&mut b).unwrap(), 0);
                        break got;
                    }
                    Ok(n) => got.extend_from_slice(&b[..n]),
                    Err(e) => panic!("read: {e}"),
                }
            }
        });
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = h
            .join_timeout(Duration::from_secs(10))
            .expect("EOF was seen");
        assert_eq!(got, b"hello");
    }
}

#[test]
fn data_arriving_between_a_read_and_a_write_is_not_missed() {
    // A request/reply server: the client's next request lands after the server read the
    // first one and before it writes its reply. The write must not make the next read wait
    // for an event that already came.
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let (got_tx, got_rx) = chan::bounded::<()>(0);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let h = go!(move || {
        let (mut c, _) = ln.accept().unwrap();
        let mut b = [0u8; 64];
        let n = c.read(&mut b).unwrap();
        assert_eq!(&b[..n], b"one");
        got_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        c.write_all(b"reply").unwrap();
        let n = c.read(&mut b).unwrap();
        b[..n].to_vec()
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"one").unwrap();
    got_rx.recv().unwrap();
    // On loopback the bytes are in the server's socket when write returns.
    c.write_all(b"two").unwrap();
    go_tx.send(()).unwrap();
    let second = h
        .join_timeout(Duration::from_secs(10))
        .expect("the second request was read");
    assert_eq!(second, b"two");
}

/// Go's `Conn.Close` leaves a descriptor from `File()` working: closing one `try_clone` copy
/// closes that copy only, and the connection goes down with the last open copy (a dropped
/// copy no longer counts as open).
#[test]
fn closing_a_try_clone_copy_closes_that_copy_only() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = dial(ln.local_addr().unwrap()).unwrap();
    let (mut s, _) = ln.accept().unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut buf = [0u8; 1];

    // A reader blocked on the copy is ended by the copy's close; the original works on.
    let copy = std::sync::Arc::new(c.try_clone().unwrap());
    let reader = {
        let copy = copy.clone();
        go!(move || (&*copy).read(&mut [0u8; 1]).unwrap_err())
    };
    copy.close().unwrap();
    assert!(goway::net::is_closed_error(&reader.join().unwrap()));
    assert!(goway::net::is_closed_error(
        &(&*copy).write(b"x").unwrap_err()
    ));
    assert!(goway::net::is_closed_error(&copy.try_clone().unwrap_err()));
    (&c).write_all(b"a").unwrap();
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"a");
    s.write_all(b"b").unwrap();
    (&c).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");

    // A copy dropped unclosed: the original's close is then the last one and shuts the
    // connection down although the closed copy's descriptor is still open.
    drop(c.try_clone().unwrap());
    c.close().unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0, "the peer reads EOF");
    drop(copy);
}

/// Without copies, `close` shuts the connection down at once (the peer reads EOF) although
/// the descriptor stays open until the stream is dropped.
#[test]
fn close_without_copies_shuts_the_connection_down() {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = dial(ln.local_addr().unwrap()).unwrap();
    let (mut s, _) = ln.accept().unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    c.close().unwrap();
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0);
    drop(c);
}
