//! The connection's writer goroutine runs only while it has replies to write: it starts when
//! a reply is queued (or a direct write leaves a rest), and ends once the queue is empty. These
//! tests check that replies keep their order across many such restarts, that an idle
//! connection holds only its handler (which reads inline), and that a client that stops reading is
//! still held to the write queue's byte bound.
//!
//! `conn_writer_one_worker.rs` runs the same tests on one worker thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use goway::chan;
use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::{CloseReason, WhenFull};

mod common;
use common::net_server::{Running, run};
use common::{WATCHDOG, client};

/// Worker threads for this test binary (`None`: the default).
#[allow(dead_code)]
const WORKERS: Option<usize> = None;

fn setup() {
    if let Some(n) = crate::WORKERS {
        let _ = goway::runtime::Config::new().workers(n).apply();
    }
}

/// Waits (at most `WATCHDOG`) until the server's goroutines gauge is `want`.
fn wait_goroutines(s: &Running, want: u64) {
    let end = Instant::now() + WATCHDOG;
    loop {
        let st = s.handle.stats();
        if st.goroutines == want {
            return;
        }
        assert!(Instant::now() < end, "goroutines never {want}: {st:?}");
        std::thread::yield_now();
    }
}

/// Each frame is answered four ways in a fixed order: a direct write, a queued reply (which
/// starts a writer), a reply queued by another goroutine, and a direct write again (which
/// must wait until the writer has written the queued ones). The client runs in lockstep, so
/// the writer empties its queue and ends between frames: hundreds of writer restarts, and
/// between them the connection holds one goroutine.
#[test]
fn replies_keep_their_order_across_writer_restarts() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            let queued = conn.sender();
            let (to_helper, jobs) = chan::bounded::<(Vec<u8>, chan::Sender<()>)>(0);
            let helper_out = conn.sender();
            let helper = goway::go!(move || {
                for (frame, done) in jobs {
                    let _ = helper_out.send([b"c".as_slice(), &frame].concat());
                    let _ = done.send(());
                }
            });
            for frame in conn {
                conn.send([b"a".as_slice(), &frame].concat())?;
                queued.send([b"b".as_slice(), &frame].concat())?;
                let (done_tx, done_rx) = chan::bounded(1);
                to_helper.send((frame.clone(), done_tx))?;
                done_rx.recv()?;
                conn.send([b"d".as_slice(), &frame].concat())?;
            }
            drop(to_helper);
            helper.join().map_err(|_| "helper panicked")?;
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    const ROUNDS: usize = 400;
    for i in 0..ROUNDS {
        writeln!(w, "{i:06}").unwrap();
        for tag in ["a", "b", "c", "d"] {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, format!("{tag}{i:06}\n"));
        }
        if i % 100 == 0 {
            // Everything written and nothing queued: the writer ends. The handler's helper
            // goroutine is not the server's: the handler (reading inline), plus the accept
            // loop.
            wait_goroutines(&s, 1 + 1);
        }
    }
    w.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let st = s.stop();
    assert_eq!(st.frames_out, 4 * ROUNDS as u64);
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
}

/// A pipelining client: replies go through the writer in batches, with a broadcaster's
/// frames mixed in from another goroutine; each source's frames arrive in order.
#[test]
fn queued_replies_from_two_sources_keep_each_sources_order() {
    setup();
    const N: usize = 5000;
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue(4)
        .handler(|conn| {
            let other = conn.sender();
            let pusher = goway::go!(move || {
                for i in 0..N {
                    if other.send(format!("p{i:06}").into_bytes()).is_err() {
                        break;
                    }
                    if i % 64 == 0 {
                        goway::runtime::yield_now();
                    }
                }
            });
            for frame in conn {
                conn.send([b"e".as_slice(), &frame].concat())?;
            }
            pusher.join().map_err(|_| "pusher panicked")?;
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..N {
            writeln!(all, "{i:06}").unwrap();
        }
        w.write_all(&all).unwrap();
        w
    });
    let mut r = BufReader::new(c);
    let (mut e, mut p) = (0, 0);
    let mut line = String::new();
    while e < N || p < N {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "EOF at e{e} p{p}");
        if line.starts_with('e') {
            assert_eq!(line, format!("e{e:06}\n"));
            e += 1;
        } else {
            assert_eq!(line, format!("p{p:06}\n"));
            p += 1;
        }
    }
    let w = feeder.join().unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let st = s.stop();
    assert_eq!(st.frames_out, 2 * N as u64);
}

/// Replies to a pipelined burst are held in the writer's buffer while more input waits, and
/// leave together. A held reply must not wait for the handler's next reply: here the handler
/// parks on a channel after the first reply of a two-frame burst (and another goroutine
/// queues a reply meanwhile), and the client must get both replies before it lets the
/// handler go on.
#[test]
fn held_replies_leave_while_the_handler_waits_elsewhere() {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let (gate_tx, gate_rx) = chan::bounded::<()>(0);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            // Both frames are in the socket before the first read: one read takes them.
            start_rx.recv()?;
            let other = conn.sender();
            for frame in conn {
                conn.send([b"r".as_slice(), &frame].concat())?;
                if frame == b"a" {
                    let o = other.clone();
                    goway::go!(move || o.send(b"x".to_vec()))
                        .join()
                        .map_err(|_| "helper panicked")??;
                    gate_rx.recv()?;
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    w.write_all(b"a\nb\n").unwrap();
    start_tx.send(()).unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    for want in ["ra\n", "x\n"] {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    gate_tx.send(()).unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "rb\n");
    w.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let st = s.stop();
    assert_eq!(st.frames_out, 3);
}

/// A burst whose replies are much larger than its frames, to a client that never reads:
/// the replies held while more input waits count in the byte bound, so the connection
/// never holds more than the bound (plus the reply that crossed it), and is closed past it.
#[test]
fn held_replies_count_in_the_byte_bound() {
    setup();
    const BOUND: usize = 256 << 10;
    const FRAME: usize = 16 << 10;
    const BURST: usize = 2000;
    let (start_tx, start_rx) = chan::bounded::<()>(0);
    let (done_tx, done_rx) = chan::bounded::<usize>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue_bytes(BOUND)
        .write_queue_full(WhenFull::Disconnect)
        .handler(move |conn| {
            start_rx.recv()?;
            let mut sent = 0;
            for _ in conn {
                if conn.send(vec![b'y'; FRAME - 1]).is_err() {
                    break;
                }
                sent += 1;
            }
            let _ = done_tx.send(sent);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(&b"q\n".repeat(BURST)).unwrap();
    start_tx.send(()).unwrap();
    // The client never reads.
    let sent = done_rx.recv_timeout(WATCHDOG).expect("handler report");
    assert!(sent < BURST, "the output limit never tripped");
    let st = s.handle.stats();
    assert!(
        st.queued_bytes_peak <= (BOUND + FRAME) as u64,
        "{} bytes held past a {BOUND}-byte bound: {st:?}",
        st.queued_bytes_peak
    );
    drop(c);
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::OutputLimit], 1, "{st:?}");
}

/// A client that stops reading: the handler's direct write leaves a rest to a writer, the
/// next replies queue behind it, and the connection never holds more than the byte bound
/// (plus the one reply that crossed it); past it the connection is closed.
#[test]
fn a_client_that_stops_reading_holds_at_most_the_byte_bound() {
    setup();
    const BOUND: usize = 256 << 10;
    const FRAME: usize = 16 << 10;
    let (sent_tx, sent_rx) = chan::bounded::<usize>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue_bytes(BOUND)
        .write_queue_full(WhenFull::Disconnect)
        .handler(move |conn| {
            let Some(_go) = conn.recv() else {
                return Ok(());
            };
            let mut sent = 0;
            while conn.send(vec![b'x'; FRAME - 1]).is_ok() {
                sent += 1;
                // Far more than the socket and the bound can hold: the limit must trip.
                if sent > 100_000 {
                    break;
                }
            }
            let _ = sent_tx.send(sent);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"go\n").unwrap();
    // The client never reads.
    let sent = sent_rx.recv_timeout(WATCHDOG).expect("handler report");
    assert!(sent < 100_000, "the output limit never tripped");
    let st = s.handle.stats();
    assert!(
        st.queued_bytes_peak <= (BOUND + FRAME) as u64,
        "{} bytes held past a {BOUND}-byte bound: {st:?}",
        st.queued_bytes_peak
    );
    drop(c);
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::OutputLimit], 1, "{st:?}");
}

/// Many idle connections hold one goroutine each (the handler, reading inline); after a round
/// of replies each, the writers have ended again.
#[test]
fn idle_connections_hold_one_goroutine() {
    setup();
    const N: usize = 50;
    let s: Running = run(common::line_echo_server(Duration::ZERO));
    let mut conns: Vec<TcpStream> = (0..N).map(|_| client(s.addr)).collect();
    for round in 0..3 {
        for c in &mut conns {
            writeln!(c, "r{round}").unwrap();
        }
        for c in &mut conns {
            let mut got = [0u8; 3];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, format!("r{round}\n").as_bytes());
        }
        wait_goroutines(&s, N as u64 + 1);
    }
    drop(conns);
    s.stop();
}
