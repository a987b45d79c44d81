//! goway::net::Server over real TCP on loopback: echo, many clients, pipelining, large
//! frames, broadcast, handler endings, Unix sockets, shutdown signals. Each test shuts its
//! server down and checks that `stats()` is back at its baseline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goway::chan;
use goway::net::codec::{Codec, LengthCodec, LinesCodec};
use goway::net::server::{CloseReason, ServeError, Stats};
use goway::net::{ConnSender, Server};

mod common;
use common::net_server::run;
use common::{WATCHDOG, client};

fn echo_server() -> Server<LinesCodec> {
    common::line_echo_server(Duration::ZERO)
}

fn read_all(mut c: TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    c.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn echo_returns_whole_lines_and_counts_frames_and_bytes() {
    let s = run(echo_server());
    let mut c = client(s.addr);
    c.write_all(b"hello\r\n\nworld\nunterminated").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(c), b"hello\r\n\nworld\n");
    let st = s.stop();
    assert_eq!((st.frames_in, st.frames_out), (3, 3));
    assert_eq!(st.bytes_in, 26);
    assert_eq!(st.bytes_out, 14);
    assert_eq!(st.accepted, 1);
    assert_eq!(st.closed_by[CloseReason::EofMidFrame], 1);
}

#[test]
fn many_clients_round_trips() {
    let st = round_trips(echo_server());
    assert_eq!(
        (st.spins, st.spin_hits),
        (0, 0),
        "spin polling is off by default"
    );
}

#[test]
fn many_clients_round_trips_with_spin_polling() {
    let st = round_trips(common::line_echo_server(Duration::from_micros(200)));
    assert!(st.spins > 0, "the server never spun: {st:?}");
    assert!(st.spin_hits <= st.spins, "{st:?}");
}

/// 40 clients, 100 lockstep round trips each; returns the stats after a graceful stop.
fn round_trips(srv: Server<LinesCodec>) -> Stats {
    let s = run(srv);
    const CLIENTS: usize = 40;
    const LINES: usize = 100;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = s.addr;
            std::thread::spawn(move || {
                let c = client(addr);
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut w = c;
                let mut line = String::new();
                for j in 0..LINES {
                    writeln!(w, "client {i} line {j}").unwrap();
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    assert_eq!(line, format!("client {i} line {j}\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let st = s.stop();
    assert_eq!(st.frames_in, (CLIENTS * LINES) as u64);
    assert_eq!(st.frames_out, (CLIENTS * LINES) as u64);
    assert_eq!(st.accepted, CLIENTS as u64);
    // Clients that left before the shutdown closed by EOF; the shutdown may beat a last FIN.
    assert_eq!(
        st.closed_by[CloseReason::Eof] + st.closed_by[CloseReason::Shutdown],
        CLIENTS as u64
    );
    st
}

#[test]
fn pipelined_frames_come_back_in_order() {
    let s = run(echo_server());
    const N: usize = 20_000;
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..N {
            writeln!(all, "{i:08}").unwrap();
        }
        w.write_all(&all).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut r = BufReader::new(c);
    let mut line = String::new();
    for i in 0..N {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, format!("{i:08}\n"));
    }
    writer.join().unwrap();
    let st = s.stop();
    assert_eq!(st.frames_out, N as u64);
    // Batching: far fewer writes than frames is not observable here, but bytes must match.
    assert_eq!(st.bytes_out, (N * 9) as u64);
}

#[test]
fn length_prefixed_frames_up_to_max_frame_come_back_intact() {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LengthCodec::new())
        .max_frame(4 << 20)
        .handler(|conn| {
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let sizes = [0usize, 1, 70_000, 3 << 20, 4 << 20];
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            let body: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8).collect();
            w.write_all(&(n as u32).to_be_bytes()).unwrap();
            w.write_all(&body).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let got = read_all(c);
    writer.join().unwrap();
    let mut at = 0;
    for (i, &n) in sizes.iter().enumerate() {
        let len = u32::from_be_bytes(got[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(len, n);
        let body = &got[at + 4..at + 4 + n];
        assert!(
            body.iter()
                .enumerate()
                .all(|(j, &b)| b == (i * 31 + j) as u8)
        );
        at += 4 + n;
    }
    assert_eq!(at, got.len());
    let st = s.stop();
    assert_eq!(st.frames_in, sizes.len() as u64);
}

#[test]
fn broadcast_through_cloned_senders() {
    type Room = Arc<Mutex<Vec<ConnSender<Vec<u8>>>>>;
    let room: Room = Arc::default();
    let r2 = room.clone();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            r2.lock().unwrap().push(conn.sender());
            conn.send(b"joined".to_vec())?;
            for frame in conn {
                // Collect the live senders, then send outside the lock (a send may wait).
                let peers: Vec<_> = r2.lock().unwrap().clone();
                for p in peers {
                    let _ = p.send(frame.clone());
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let clients: Vec<_> = (0..3).map(|_| client(s.addr)).collect();
    let mut readers: Vec<_> = clients
        .iter()
        .map(|c| BufReader::new(c.try_clone().unwrap()))
        .collect();
    let mut line = String::new();
    for r in &mut readers {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "joined\n");
    }
    (&clients[0]).write_all(b"hi all\n").unwrap();
    for r in &mut readers {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "hi all\n");
    }
    drop(readers);
    for c in &clients {
        c.shutdown(Shutdown::Both).unwrap();
    }
    drop(clients);
    let st = s.stop();
    // Senders of closed connections fail.
    for p in room.lock().unwrap().iter() {
        assert!(p.is_closed());
        assert!(p.send(b"late".to_vec()).is_err());
    }
    assert_eq!(st.frames_out, 3 + 3);
}

#[test]
fn each_connection_has_its_peer_address_and_a_unique_id() {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            conn.send(format!("{} {}", conn.peer_addr(), conn.id()).into_bytes())?;
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let c = client(s.addr);
        let local = c.local_addr().unwrap();
        let got = String::from_utf8(read_all(c)).unwrap();
        let (peer, id) = got.trim_end().split_once(' ').unwrap();
        assert_eq!(peer, local.to_string());
        ids.push(id.parse::<u64>().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are unique");
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::HandlerDone], 3);
}

#[test]
fn handler_return_closes_after_the_replies_and_errors_are_counted() {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            let first = conn.recv().ok_or("no frame")?;
            conn.send(b"bye".to_vec())?;
            if first == b"fail" {
                return Err("asked to fail".into());
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    for (msg, reason) in [
        (&b"x\nignored\n"[..], CloseReason::HandlerDone),
        (b"fail\n", CloseReason::HandlerError),
    ] {
        let mut c = client(s.addr);
        c.write_all(msg).unwrap();
        // The server closes on its own (FIN after the reply); the client does not half-close.
        assert_eq!(read_all(c), b"bye\n");
        let _ = reason;
    }
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::HandlerDone], 1);
    assert_eq!(st.closed_by[CloseReason::HandlerError], 1);
}

#[test]
fn a_unix_socket_server_echoes_and_removes_its_socket_file() {
    let path = std::env::temp_dir().join(format!("goway-server-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let srv = Server::builder()
        .unix(&path)
        .codec(LinesCodec::new())
        .handler(|conn| {
            for f in conn {
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    assert!(srv.local_addr().is_err());
    let s = run(srv);
    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    c.write_all(b"over unix\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut v = Vec::new();
    c.read_to_end(&mut v).unwrap();
    assert_eq!(v, b"over unix\n");
    s.stop();
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
}

#[test]
fn serve_after_shutdown_and_shutdown_signal() {
    // Shut down before serving: serve returns ServerClosed at once (Go's
    // TestServerShutdownThenServe); shutdown is idempotent.
    let srv = echo_server();
    let h = srv.handle();
    h.shutdown().unwrap();
    h.shutdown().unwrap();
    assert!(matches!(srv.serve(), Err(ServeError::ServerClosed)));

    // Closing the signal channel shuts the server down.
    let (sig_tx, sig_rx) = chan::bounded::<()>(0);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .shutdown_on(sig_rx)
        .handler(|conn| {
            for f in conn {
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"before\n").unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "before\n");
    sig_tx.close();
    let served = s.serving.join().unwrap();
    assert!(matches!(served, Err(ServeError::ServerClosed)));
    // The idle connection was closed by the shutdown.
    line.clear();
    assert_eq!(r.read_line(&mut line).unwrap(), 0);
    assert!(s.handle.wait_closed(WATCHDOG));
    assert!(TcpStream::connect(s.addr).is_err(), "no longer accepting");
    let st = s.handle.stats();
    assert_eq!((st.active, st.goroutines), (0, 0));
    assert_eq!(st.closed_by[CloseReason::Shutdown], 1);
}

#[test]
fn done_channel_ends_a_pushing_handler() {
    // A handler that never calls recv: it pushes ticks until the connection closes.
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            let tick = goway::time::tick(Duration::from_millis(5));
            loop {
                goway::select! {
                    recv(conn.done()) -> _ => return Ok(()),
                    recv(tick) -> _ => conn.send(b"tick".to_vec())?,
                }
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "tick\n");
    c.shutdown(Shutdown::Write).unwrap();
    // The client's EOF closes `done`; the handler returns; the server closes.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    s.stop();
}

#[test]
fn a_slow_handler_is_not_idle() {
    // idle_timeout counts only while the handler waits for input with nothing queued.
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .idle_timeout(Duration::from_millis(100))
        .handler(|conn| {
            for f in conn {
                goway::time::sleep(Duration::from_millis(400));
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"slow\n").unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "slow\n");
    // Then idle: closed by the idle timeout.
    line.clear();
    assert_eq!(r.read_line(&mut line).unwrap(), 0);
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 1);
}

#[test]
fn unbuffered_queues_still_work() {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .read_queue(0)
        .write_queue(0)
        .handler(|conn| {
            for f in conn {
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    let msg: Vec<u8> = (0..500)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    c.write_all(&msg).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(c), msg);
    s.stop();
}

#[test]
fn context_cancellation_shuts_down_and_reaches_connections() {
    let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    let (seen_tx, seen_rx) = chan::bounded::<goway::context::Context>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .context(&ctx)
        .handler(move |conn| {
            let _ = seen_tx.send(conn.context().clone());
            for f in conn {
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"ctx\n").unwrap();
    let mut r = BufReader::new(c);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let conn_ctx = seen_rx.recv_timeout(WATCHDOG).unwrap();
    assert!(!conn_ctx.is_done());
    cancel.cancel();
    // The server drains: the idle client sees EOF, serve returns, the conn's context is done.
    line.clear();
    assert_eq!(r.read_line(&mut line).unwrap(), 0);
    assert!(matches!(
        s.serving.join().unwrap(),
        Err(ServeError::ServerClosed)
    ));
    assert!(conn_ctx.done().recv_timeout(WATCHDOG).is_err());
    assert!(conn_ctx.is_done());
    assert!(s.handle.wait_closed(WATCHDOG));
    assert_eq!(s.handle.stats().active, 0);
}

/// Lines, with an error line for a client whose handler panicked before answering.
#[derive(Clone)]
struct LinesWithPanicReply(LinesCodec);

impl Codec for LinesWithPanicReply {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn decode(
        &mut self,
        src: &[u8],
    ) -> Result<Option<(Vec<u8>, usize)>, goway::net::codec::DecodeError> {
        self.0.decode(src)
    }
    fn encode(
        &mut self,
        f: Vec<u8>,
        dst: &mut Vec<u8>,
    ) -> Result<(), goway::net::codec::EncodeError> {
        self.0.encode(f, dst)
    }
    fn encoded_len(f: &Vec<u8>) -> usize {
        LinesCodec::encoded_len(f)
    }
    fn panic_reply(&mut self) -> Option<Vec<u8>> {
        Some(b"ERR internal error\n".to_vec())
    }
}

#[test]
fn a_panic_before_any_reply_sends_the_codec_panic_reply() {
    // Handler panics are the point here: keep their report out of the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesWithPanicReply(LinesCodec::new()))
        .handler(|conn| {
            if let Some(frame) = conn.recv() {
                if frame == b"reply-then-panic" {
                    conn.send(b"one".to_vec())?;
                }
                panic!("boom");
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"panic\n").unwrap();
    assert_eq!(read_all(c), b"ERR internal error\n");
    // After a reply was queued, the connection just closes: no extra line.
    let mut c = client(s.addr);
    c.write_all(b"reply-then-panic\n").unwrap();
    assert_eq!(read_all(c), b"one\n");
    let st = s.stop();
    std::panic::set_hook(hook);
    assert_eq!(st.closed_by[CloseReason::Panic], 2, "{st:?}");
}

/// The handler writes a reply itself when nothing is queued for the writer: replies still
/// leave in the order they were sent, whether they went through the queue (a cloned sender,
/// another goroutine's sends) or straight to the socket, with the client in lockstep (every
/// reply written directly) or pipelining (replies batched by the writer).
#[test]
fn direct_and_queued_replies_keep_their_order() {
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
                // Another goroutine's send that happens before the handler's next one.
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
    let mut expect = |r: &mut BufReader<TcpStream>, i: usize| {
        for tag in ["a", "b", "c", "d"] {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line, format!("{tag}{i:06}\n"));
        }
    };
    const LOCKSTEP: usize = 300;
    const PIPELINED: usize = 3000;
    for i in 0..LOCKSTEP {
        writeln!(w, "{i:06}").unwrap();
        expect(&mut r, i);
    }
    let writer = std::thread::spawn(move || {
        let mut all = Vec::new();
        for i in LOCKSTEP..LOCKSTEP + PIPELINED {
            writeln!(all, "{i:06}").unwrap();
        }
        w.write_all(&all).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    for i in LOCKSTEP..LOCKSTEP + PIPELINED {
        expect(&mut r, i);
    }
    writer.join().unwrap();
    let st = s.stop();
    assert_eq!(st.frames_out, 4 * (LOCKSTEP + PIPELINED) as u64);
}

/// A reader held up by a slow handler (full input queue) does not count that wait as the
/// client's idle time: after the handler catches up, the connection is still served.
#[test]
fn a_reader_held_up_by_the_handler_is_not_idle() {
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .read_queue(1)
        .idle_timeout(Duration::from_millis(800))
        .handler(move |conn| {
            for f in conn {
                // Slow on the first frame only: the reader waits to queue the third.
                if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
                    goway::time::sleep(Duration::from_millis(1200));
                }
                conn.send(f)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"one\ntwo\nthree\n").unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    for want in ["one\n", "two\n", "three\n"] {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    // Answered at once, not cut off as idle (the client has the whole idle timeout to ask).
    c.write_all(b"four\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "four\n");
    c.shutdown(Shutdown::Both).unwrap();
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 0, "{st:?}");
}

/// Frames a handler could queue (`send_timeout` succeeding) for a client that never reads,
/// beyond those the writer had already written when the first send timed out.
fn queued_behind_a_stalled_client(write_queue_bytes: usize) -> u64 {
    const FRAME: usize = 60 << 10;
    let (report_tx, report_rx) = chan::bounded::<u64>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue(64)
        .write_queue_bytes(write_queue_bytes)
        .write_timeout(Duration::from_secs(20))
        .handler(move |conn| {
            let Some(_go) = conn.recv() else {
                return Ok(());
            };
            let tx = conn.sender();
            let mut sent = 0u64;
            // Until the kernel's buffers are full and the write queue is too.
            while tx
                .send_timeout(vec![b'x'; FRAME - 1], Duration::from_millis(300))
                .is_ok()
            {
                sent += 1;
            }
            let _ = report_tx.send(sent);
            for _ in conn {}
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    (&c).write_all(b"go\n").unwrap();
    // The client never reads.
    let sent = report_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("handler report");
    let written = s.handle.stats().frames_out;
    // Closing with unread input resets the connection: the stalled writer fails.
    drop(c);
    let st = s.stop();
    assert_eq!(st.active, 0);
    sent - written
}

#[test]
fn the_write_queue_holds_at_most_write_queue_bytes_for_a_stalled_client() {
    // 60 KiB frames against a 100 KiB bound: one frame at a time waits to be written (a
    // frame is queued once the bytes before it fit), whatever the frame bound (64).
    let held = queued_behind_a_stalled_client(100 << 10);
    assert!(held <= 2, "{held} frames held with a 100 KiB byte bound");
    // Without the byte bound the 64-frame queue (and the writer's batch) fill up.
    let held = queued_behind_a_stalled_client(0);
    assert!(held >= 32, "{held} frames held without a byte bound");
}
