//! Edges of the handler reading its own input (`recv` inline), a reader goroutine
//! started on demand, the writer started on demand. Each test names the guarantee it checks.
//!
//! `conn_inline_edges_one_worker.rs` runs the same tests on one worker thread.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use goway::chan;
use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::{CloseReason, Timeout, WhenFull};

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

fn read_line(c: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match c.read(&mut b) {
            Ok(0) => return line,
            Ok(_) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    return line;
                }
            }
            Err(e) => panic!("read: {e} after {line:?}"),
        }
    }
}

/// Hand-off of the read side from inline reading to a reader goroutine with a partial frame
/// buffered. The client sends `A\n` and the first half of `B` in one write, then (after the
/// answer to A) the rest of B at once. The handler works on A for longer than
/// `frame_timeout` (its own work, not the client's slowness), then calls `done()` (which
/// starts the reader goroutine) and receives. The time the handler held the input is not the
/// client's: the reader goroutine must restart the frame clock when it takes over, read the
/// rest of B that sits in the socket and hand B over, not close with `FrameTimeout`.
#[test]
fn a_reader_started_after_a_busy_inline_frame_does_not_time_out_a_complete_frame() {
    setup();
    const FRAME_TIMEOUT: Duration = Duration::from_millis(300);
    let (rest_sent_tx, rest_sent_rx) = chan::bounded::<()>(1);
    let (result_tx, result_rx) = chan::bounded::<String>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .frame_timeout(FRAME_TIMEOUT)
        .handler(move |conn| {
            let a = conn.recv().ok_or("no A")?;
            let t0 = Instant::now();
            conn.send(a)?;
            // The client has sent the whole of B now.
            rest_sent_rx
                .recv_timeout(WATCHDOG)
                .map_err(|_| "no signal")?;
            // Work on A for twice the frame timeout.
            let until = t0 + 2 * FRAME_TIMEOUT;
            goway::time::sleep(until.saturating_duration_since(Instant::now()));
            // Now the handler wants to learn if the client leaves: a reader goroutine starts.
            let _ = conn.done();
            let r = match conn.recv() {
                Some(b) => String::from_utf8_lossy(&b).into_owned(),
                None => "None".to_string(),
            };
            let _ = result_tx.send(r);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"A\nBBBB").unwrap();
    assert_eq!(read_line(&mut c), b"A\n");
    c.write_all(b"BBBB\n").unwrap();
    rest_sent_tx.send(()).unwrap();
    let got = result_rx.recv_timeout(WATCHDOG).expect("handler result");
    let st = s.handle.stats();
    assert_eq!(got, "BBBBBBBB", "frame B lost: {st:?}");
    c.shutdown(Shutdown::Write).unwrap();
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::FrameTimeout], 0, "{st:?}");
    s.stop();
}

/// `recv_timeout(Duration::ZERO)` is a poll ("a frame if one is there"): a frame the client
/// sent a while ago must come out, though the handler reads its own input (no reader
/// goroutine queued it): a timeout that has run out still looks at the socket once.
#[test]
fn a_zero_timeout_poll_returns_a_frame_waiting_in_the_socket() {
    setup();
    let (result_tx, result_rx) = chan::bounded::<String>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            let _start = conn.recv().ok_or("no start")?;
            conn.send(b"polling".to_vec())?;
            let end = Instant::now() + Duration::from_secs(3);
            let r = loop {
                match conn.recv_timeout(Duration::ZERO) {
                    Ok(Some(f)) => break String::from_utf8_lossy(&f).into_owned(),
                    Ok(None) => break "None".to_string(),
                    Err(Timeout) => {}
                }
                if Instant::now() > end {
                    break "never".to_string();
                }
                // Other work between polls.
                goway::time::sleep(Duration::from_millis(5));
            };
            let _ = result_tx.send(r);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"start\n").unwrap();
    assert_eq!(read_line(&mut c), b"polling\n");
    c.write_all(b"x\n").unwrap();
    let got = result_rx.recv_timeout(WATCHDOG).expect("handler result");
    assert_eq!(got, "x", "the poll never saw the frame");
    drop(c);
    s.stop();
}

/// Abort from another goroutine while the handler is parked in an inline read: a
/// broadcaster's sends trip the output limit of a client that never reads (nor writes); the
/// handler's `recv` must end and the connection close with `OutputLimit`.
#[test]
fn an_abort_from_another_goroutine_ends_an_inline_recv() {
    setup();
    const BOUND: usize = 64 << 10;
    let (ended_tx, ended_rx) = chan::bounded::<bool>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue_bytes(BOUND)
        .write_queue_full(WhenFull::Disconnect)
        .handler(move |conn| {
            let tx = conn.sender();
            goway::go!(move || {
                let mut n = 0;
                while tx.send(vec![b'x'; 8 << 10]).is_ok() && n < 100_000 {
                    n += 1;
                }
            });
            let r = conn.recv();
            let _ = ended_tx.send(r.is_none());
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    assert!(ended_rx.recv_timeout(WATCHDOG).expect("recv never ended"));
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::OutputLimit], 1, "{st:?}");
    drop(c);
    s.stop();
}

/// Graceful shutdown must finish a frame whose first bytes were received: here a read brings
/// a whole frame and the start of the next, and the drain comes while the handler works on
/// the first; the rest of the second must still be read and handed over.
#[test]
fn a_drain_while_the_handler_works_keeps_a_frame_begun_in_the_same_read() {
    setup();
    let (busy_tx, busy_rx) = chan::bounded::<()>(1);
    let (go_tx, go_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .frame_timeout(WATCHDOG)
        .handler(move |conn| {
            for frame in conn {
                if frame == b"A" {
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
    let mut c = client(s.addr);
    c.write_all(b"A\nBB").unwrap();
    busy_rx.recv_timeout(WATCHDOG).unwrap();
    let h = s.handle.clone();
    let shutdown = std::thread::spawn(move || h.shutdown());
    wait_until("closing", WATCHDOG, || s.handle.is_closing());
    // The rest of B, after the drain began (the client was mid-frame).
    c.write_all(b"B\n").unwrap();
    go_tx.send(()).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    let _ = shutdown.join();
    let st = s.finish();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "A\nBBB\n",
        "the frame begun before the drain was not finished: {st:?}"
    );
}

/// Lines, but decoding `boom` panics (a buggy codec).
#[derive(Clone)]
struct PanickyLines(LinesCodec);

impl goway::net::codec::Codec for PanickyLines {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn decode(
        &mut self,
        src: &[u8],
    ) -> Result<Option<(Vec<u8>, usize)>, goway::net::codec::DecodeError> {
        if src.starts_with(b"boom") {
            panic!("codec bug");
        }
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
        Some(b"ERR handler panicked\n".to_vec())
    }
}

/// A codec that panics while decoding closes the connection with `Panic` (aborted, as the
/// reading part's failure): it is not a handler panic, though the decode ran inside `recv`
/// on the handler's goroutine: not counted in `panics` ("handler panics caught"), and no
/// handler-panic reply is sent.
#[test]
fn a_codec_panic_inline_is_not_a_handler_panic() {
    setup();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(PanickyLines(LinesCodec::new()))
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
    c.write_all(b"boom\n").unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    drop(c);
    let st = s.closed_at_least(1);
    std::panic::set_hook(hook);
    s.stop();
    assert_eq!(st.closed_by[CloseReason::Panic], 1, "{st:?}");
    assert_eq!(
        st.panics, 0,
        "a codec panic counted as a handler panic: {st:?}"
    );
    assert!(
        got.is_empty(),
        "the handler-panic reply was sent for a codec panic: {:?}",
        String::from_utf8_lossy(&got)
    );
}
