//! A connection's handler reads its input itself, inside `recv`, until it asks for a reader
//! goroutine (`done`, `incoming`, `context`): an idle connection holds one goroutine. These
//! tests check what inline reading must keep: replies in order across direct writes and the
//! writer, the idle and frame timeouts, `recv_timeout`, a drain between frames and in the
//! middle of one, and that a handler waiting on `done` still learns that its client left.
//!
//! `conn_inline_one_worker.rs` runs the same tests on one worker thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use goway::chan;
use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::CloseReason;

mod common;
use common::net_server::run;
use common::wait::wait_until;
use common::{WATCHDOG, client};

/// Worker threads for this test binary (`None`: the default).
#[allow(dead_code)]
const WORKERS: Option<usize> = None;

fn setup() {
    if let Some(n) = crate::WORKERS {
        let _ = goway::runtime::Config::new().workers(n).apply();
    }
}

/// Reads until the server closes; returns what came.
fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("read until the server closes");
    got
}

/// A burst of frames in one write: each frame is answered by a direct reply, a reply queued by
/// the handler's sender (every third frame), and another direct one, so replies go out both
/// from the handler's goroutine and through the writer while more input is buffered. They
/// come back in order, and afterwards the connection holds only its handler.
#[test]
fn a_pipelined_burst_is_answered_in_order_across_inline_and_writer_paths() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            let queued = conn.sender();
            for (n, frame) in conn.into_iter().enumerate() {
                conn.send([b"a".as_slice(), &frame].concat())?;
                if n % 3 == 0 {
                    queued.send([b"b".as_slice(), &frame].concat())?;
                }
                conn.send([b"c".as_slice(), &frame].concat())?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    const N: usize = 2000;
    let mut want = Vec::new();
    for round in 0..3 {
        let mut burst = Vec::new();
        for i in 0..N {
            writeln!(burst, "{round}-{i:05}").unwrap();
        }
        w.write_all(&burst).unwrap();
        want.clear();
        for i in 0..N {
            want.push(format!("a{round}-{i:05}\n"));
            // The handler counts frames across rounds.
            if (round * N + i) % 3 == 0 {
                want.push(format!("b{round}-{i:05}\n"));
            }
            want.push(format!("c{round}-{i:05}\n"));
        }
        let mut line = String::new();
        for expect in &want {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(&line, expect);
        }
        // Everything answered: the writer ended, the handler reads inline (plus the accept
        // loop).
        wait_until("one goroutine for the connection", WATCHDOG, || {
            s.handle.stats().goroutines == 2
        });
    }
    w.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let st = s.stop();
    assert_eq!(st.frames_in, 3 * N as u64, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
}

/// A handler that waits on `done` (not in `recv`) learns that its client left: `done` starts
/// a reader goroutine, which sees the client's EOF while the handler is busy.
#[test]
fn a_handler_waiting_on_done_learns_that_the_client_left() {
    setup();
    let (tx, rx) = chan::bounded::<&'static str>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            let first = conn.recv().ok_or("no first frame")?;
            conn.send(first)?;
            // Busy with something else now: only `done` can tell the client left.
            let done = conn.done();
            let r = goway::select! {
                recv(done) -> _ => "done",
                recv(goway::time::after(WATCHDOG)) -> _ => "timed out",
            };
            let _ = tx.send(r);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"hi\n").unwrap();
    let mut got = [0u8; 3];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi\n");
    // The handler goroutine and the reader `done` started (plus the accept loop).
    wait_until("the reader started", WATCHDOG, || {
        s.handle.stats().goroutines >= 3
    });
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv_timeout(WATCHDOG).unwrap(), "done");
    assert!(read_to_close(&mut c).is_empty());
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
}

/// Inline, the idle clock runs while the handler waits in `recv`: a silent client is closed
/// with `IdleTimeout`, after its frame was answered.
#[test]
fn an_idle_client_is_closed_by_the_inline_reader() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .idle_timeout(Duration::from_millis(200))
        .handler(|conn| {
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"one\n").unwrap();
    let t = Instant::now();
    assert_eq!(read_to_close(&mut c), b"one\n");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 1, "{st:?}");
    s.stop();
}

/// Inline, a frame begun and not finished within `frame_timeout` closes the connection with
/// `FrameTimeout`; a handler busier than the idle timeout between frames is not idle.
#[test]
fn frame_timeout_inline_and_a_busy_handler_is_not_idle() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .frame_timeout(Duration::from_millis(200))
        .idle_timeout(Duration::from_millis(200))
        .handler(|conn| {
            for frame in conn {
                if frame == b"slow" {
                    // Busy (not reading) for longer than the idle timeout.
                    goway::time::sleep(Duration::from_millis(400));
                }
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"slow\n").unwrap();
    let mut got = [0u8; 5];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"slow\n");
    // The idle clock starts when the handler asks for more: a quick frame is still served.
    c.write_all(b"ok\n").unwrap();
    let mut got = [0u8; 3];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok\n");
    // Half a frame, never finished.
    c.write_all(b"half").unwrap();
    assert!(read_to_close(&mut c).is_empty());
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::FrameTimeout], 1, "{st:?}");
    s.stop();
}

/// `recv_timeout` inline: the time runs out with half a frame buffered, and the frame is
/// whole when its rest comes.
#[test]
fn recv_timeout_inline_keeps_a_partial_frame() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            loop {
                match conn.recv_timeout(Duration::from_millis(50)) {
                    Ok(Some(frame)) => conn.send(frame)?,
                    Ok(None) => return Ok(()),
                    Err(_) => conn.send(b"tick".to_vec())?,
                }
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    w.write_all(b"hal").unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "tick\n");
    w.write_all(b"f\n").unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line != "tick\n" {
            break;
        }
    }
    assert_eq!(line, "half\n");
    w.shutdown(Shutdown::Write).unwrap();
    s.stop();
}

/// A drain reaches handlers reading inline: an idle connection closes at once, one in the
/// middle of a frame gets that frame answered first, and one whose handler is busy answers
/// its frame, then closes.
#[test]
fn a_drain_reaches_inline_readers_between_and_within_frames() {
    setup();
    let (busy_tx, busy_rx) = chan::bounded::<()>(1);
    let (go_tx, go_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            for frame in conn {
                if frame == b"busy" {
                    let _ = busy_tx.send(());
                    let _ = go_rx.recv_timeout(WATCHDOG);
                }
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut idle = client(s.addr);
    let mut mid = client(s.addr);
    let mut busy = client(s.addr);
    mid.write_all(b"mid").unwrap();
    busy.write_all(b"busy\n").unwrap();
    busy_rx.recv_timeout(WATCHDOG).unwrap();
    wait_until("3 active, the partial frame read", WATCHDOG, || {
        s.handle.stats().active == 3 && s.handle.stats().bytes_in == 8
    });
    let h = s.handle.clone();
    let shutdown = std::thread::spawn(move || h.shutdown());
    wait_until("closing", WATCHDOG, || s.handle.is_closing());
    assert!(read_to_close(&mut idle).is_empty());
    mid.write_all(b"dle\n").unwrap();
    assert_eq!(read_to_close(&mut mid), b"middle\n");
    go_tx.send(()).unwrap();
    assert_eq!(read_to_close(&mut busy), b"busy\n");
    let report = shutdown.join().unwrap().expect("drained within the grace");
    assert_eq!(report.drained, 3);
    let st = s.finish();
    assert_eq!(st.closed_by[CloseReason::Shutdown], 3, "{st:?}");
}

/// A handler that returns while its client still sends: the input is discarded until the
/// client closes, and the replies queued before the return are all delivered.
#[test]
fn a_handler_that_returns_early_delivers_its_replies() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            let frame = conn.recv().ok_or("no frame")?;
            for _ in 0..100 {
                conn.send(frame.clone())?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"x\nmore\nand more\n").unwrap();
    let got = read_to_close(&mut c);
    assert_eq!(got, b"x\n".repeat(100));
    drop(c);
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::HandlerDone], 1, "{st:?}");
    s.stop();
}

/// The read side the handler now carries leaves `Conn` shareable as before (a handler may
/// lend `&Conn` to goroutines it waits for).
#[test]
fn conn_stays_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<goway::net::Conn<LinesCodec>>();
    assert_send_sync::<goway::net::Conn<goway::net::codec::RespPipelineCodec>>();
}
