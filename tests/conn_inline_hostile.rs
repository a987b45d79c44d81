//! A hostile client against the handler reading its own input (`recv` inline), the reader
//! goroutine that takes over on demand (`done`, `incoming`, `context`), and the handler's direct
//! writes with the rest (`carry`) left to a writer started on demand. Each test attacks one
//! path over real loopback sockets and then checks the server's books: the close counted once
//! with the right reason, the goroutine gauge back to the accept loop alone, and a fresh
//! client still served.
//!
//! `conn_inline_hostile_one_worker.rs` runs the same tests on one worker thread.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use goway::chan;
use goway::net::Server;
use goway::net::codec::{Codec, DecodeError, EncodeError, LinesCodec};
use goway::net::server::{CloseReason, Conn, HandlerResult, Timeout};

mod common;
use common::net_server::{Running, run};
use common::wait::wait_until;
use common::{WATCHDOG, client, read_to_close, reset};

/// Worker threads for this test binary (`None`: the default).
#[allow(dead_code)]
const WORKERS: Option<usize> = None;

fn setup() {
    if let Some(n) = crate::WORKERS {
        let _ = goway::runtime::Config::new().workers(n).apply();
    }
}

/// Reads one line (up to and with its `\n`), byte by byte; what came before an EOF otherwise.
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
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&line)),
        }
    }
}

/// A fresh client is still served: `ping` comes back (the server echoes lines).
fn still_serves(addr: SocketAddr) {
    let mut c = client(addr);
    c.write_all(b"ping\n").unwrap();
    assert_eq!(
        read_line(&mut c),
        b"ping\n",
        "a fresh client was not served"
    );
    c.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_close(&mut c).is_empty());
}

/// How a handler asks for a reader goroutine.
#[derive(Clone, Copy, Debug)]
enum Switch {
    Done,
    Incoming,
    Context,
}

/// The next frame after the switch: by `recv`, or by the `incoming` channel.
fn next_frame(conn: &Conn<LinesCodec>, how: Switch, switched: bool) -> Option<Vec<u8>> {
    match (how, switched) {
        (Switch::Incoming, true) => conn.incoming().recv().ok(),
        _ => conn.recv(),
    }
}

/// An echo handler that switches to a reader goroutine after `at` frames.
fn switching_echo(
    how: Switch,
    at: usize,
) -> impl Fn(&Conn<LinesCodec>) -> HandlerResult + Send + Sync + 'static {
    move |conn| {
        let mut n = 0;
        loop {
            if n == at {
                match how {
                    Switch::Done => {
                        let _ = conn.done();
                    }
                    Switch::Incoming => {
                        let _ = conn.incoming();
                    }
                    Switch::Context => {
                        let _ = conn.context();
                    }
                }
            }
            let Some(frame) = next_frame(conn, how, n >= at) else {
                return Ok(());
            };
            n += 1;
            conn.send(frame)?;
        }
    }
}

/// Frames trickled one byte per write while the handler switches from reading inline to a
/// reader goroutine (after 0, 1 and 7 frames, by `done`, `incoming` and `context`): every
/// frame is answered once, in order, and the connection ends with `Eof`.
#[test]
fn trickled_frames_survive_the_switch_to_a_reader_goroutine() {
    setup();
    for how in [Switch::Done, Switch::Incoming, Switch::Context] {
        for at in [0, 1, 7] {
            let srv = Server::builder()
                .addr("127.0.0.1:0")
                .codec(LinesCodec::new())
                .handler(switching_echo(how, at))
                .bind()
                .unwrap();
            let s = run(srv);
            let mut c = client(s.addr);
            let mut want = Vec::new();
            for i in 0..20 {
                let frame = format!("{how:?}-{at}-{i:03}\n");
                for b in frame.as_bytes() {
                    c.write_all(&[*b]).unwrap();
                }
                want.extend_from_slice(frame.as_bytes());
                // Every few frames, wait for the answers: the switch then comes while the
                // handler reads inline with nothing buffered as well as mid-frame.
                if i % 5 == 4 {
                    let mut got = vec![0u8; want.len()];
                    c.read_exact(&mut got).unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "{how:?} at {at}"
                    );
                    want.clear();
                }
            }
            c.shutdown(Shutdown::Write).unwrap();
            assert!(read_to_close(&mut c).is_empty());
            let st = s.settled();
            assert_eq!(st.frames_in, 20, "{how:?} at {at}: {st:?}");
            assert_eq!(st.closed_by[CloseReason::Eof], 1, "{how:?} at {at}: {st:?}");
            s.stop();
        }
    }
}

/// A burst whose last frame is cut in the middle of a byte-by-byte trickle, with the switch
/// in the middle of the burst (the handler has taken a few of the buffered frames inline):
/// the reader goroutine decodes the rest of the burst from the same buffer, then the
/// trickled frame, in order.
#[test]
fn a_switch_mid_burst_keeps_the_buffered_frames_and_a_trickled_one() {
    setup();
    for how in [Switch::Done, Switch::Incoming, Switch::Context] {
        let srv = Server::builder()
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .handler(switching_echo(how, 3))
            .bind()
            .unwrap();
        let s = run(srv);
        let mut c = client(s.addr);
        let mut burst = Vec::new();
        for i in 0..50 {
            writeln!(burst, "b{i:03}").unwrap();
        }
        burst.extend_from_slice(b"tr");
        c.write_all(&burst).unwrap();
        for b in b"ickled\n" {
            c.write_all(&[*b]).unwrap();
        }
        let mut want = burst[..burst.len() - 2].to_vec();
        want.extend_from_slice(b"trickled\n");
        let mut got = vec![0u8; want.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{how:?}"
        );
        c.shutdown(Shutdown::Write).unwrap();
        assert!(read_to_close(&mut c).is_empty());
        let st = s.settled();
        assert_eq!(st.frames_in, 51, "{how:?}: {st:?}");
        assert_eq!(st.closed_by[CloseReason::Eof], 1, "{how:?}: {st:?}");
        s.stop();
    }
}

/// A frame begun and then abandoned after the switch closes with `FrameTimeout`, not before
/// `frame_timeout` has passed since the client's last chance; the frames before it are
/// answered.
#[test]
fn an_abandoned_frame_after_the_switch_times_out_not_early() {
    setup();
    const FRAME: Duration = Duration::from_millis(300);
    for how in [Switch::Done, Switch::Incoming, Switch::Context] {
        let srv = Server::builder()
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .frame_timeout(FRAME)
            .handler(switching_echo(how, 1))
            .bind()
            .unwrap();
        let s = run(srv);
        let mut c = client(s.addr);
        c.write_all(b"one\n").unwrap();
        assert_eq!(read_line(&mut c), b"one\n");
        c.write_all(b"two\n").unwrap();
        assert_eq!(read_line(&mut c), b"two\n");
        let t = Instant::now();
        for b in b"aband" {
            c.write_all(&[*b]).unwrap();
        }
        assert!(read_to_close(&mut c).is_empty(), "{how:?}");
        assert!(
            t.elapsed() >= FRAME,
            "{how:?}: closed after {:?}",
            t.elapsed()
        );
        let st = s.settled();
        assert_eq!(
            st.closed_by[CloseReason::FrameTimeout],
            1,
            "{how:?}: {st:?}"
        );
        s.stop();
    }
}

/// `recv_timeout` inline runs out with half a frame buffered; the handler then works (not
/// reading) for longer than `frame_timeout`, while the client sends the rest of the frame at
/// once. The handler's work is not the client's slowness (a reader goroutine would have read
/// the rest and decoded the frame in time): the next `recv` must hand the frame over, not
/// close with `FrameTimeout`.
#[test]
fn a_frame_completed_while_the_handler_works_after_a_recv_timeout_is_not_timed_out() {
    setup();
    frame_completed_while_away(false);
}

/// The same, with the handler asking for a reader goroutine (`done`) after its work: the
/// reader takes over a frame clock that ran out while nobody read, and must read the rest
/// sitting in the socket before it judges the frame late.
#[test]
fn a_frame_completed_while_away_is_not_timed_out_by_the_reader_taking_over() {
    setup();
    frame_completed_while_away(true);
}

fn frame_completed_while_away(switch: bool) {
    const FRAME: Duration = Duration::from_millis(200);
    let (rest_tx, rest_rx) = chan::bounded::<()>(1);
    let (res_tx, res_rx) = chan::bounded::<String>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .frame_timeout(FRAME)
        .handler(move |conn| {
            let first = conn.recv().ok_or("no first frame")?;
            conn.send(first)?;
            // The client has sent half a frame: the poll runs out with it buffered.
            match conn.recv_timeout(Duration::from_millis(20)) {
                Err(Timeout) => {}
                other => {
                    let _ = res_tx.send(format!("poll: {other:?}"));
                    return Ok(());
                }
            }
            conn.send(b"polled".to_vec())?;
            // The client sends the rest now; the handler works twice the frame timeout.
            rest_rx.recv_timeout(WATCHDOG).map_err(|_| "no signal")?;
            goway::time::sleep(2 * FRAME);
            if switch {
                let _ = conn.done();
            }
            let r = match conn.recv() {
                Some(f) => String::from_utf8_lossy(&f).into_owned(),
                None => "None".to_string(),
            };
            let _ = res_tx.send(r);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"first\n").unwrap();
    assert_eq!(read_line(&mut c), b"first\n");
    c.write_all(b"hal").unwrap();
    assert_eq!(read_line(&mut c), b"polled\n");
    c.write_all(b"f\n").unwrap();
    rest_tx.send(()).unwrap();
    let got = res_rx.recv_timeout(WATCHDOG).expect("the handler's result");
    let st = s.handle.stats();
    assert_eq!(got, "half", "switch {switch}: {st:?}");
    drop(c);
    s.settled();
    s.stop();
}

/// The same with the idle clock: after a `recv_timeout` that ran out on a silent client, the
/// handler works (not waiting for input) for longer than `idle_timeout`, and the client sends
/// a frame meanwhile. The connection was not idle (the handler was busy, and the client sent):
/// the next `recv` must hand the frame over, not close with `IdleTimeout`.
#[test]
fn a_frame_sent_while_the_handler_works_after_a_recv_timeout_is_not_idle_timed_out() {
    setup();
    const IDLE: Duration = Duration::from_millis(200);
    let (sent_tx, sent_rx) = chan::bounded::<()>(1);
    let (res_tx, res_rx) = chan::bounded::<String>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .idle_timeout(IDLE)
        .handler(move |conn| {
            match conn.recv_timeout(Duration::from_millis(20)) {
                Err(Timeout) => {}
                other => {
                    let _ = res_tx.send(format!("poll: {other:?}"));
                    return Ok(());
                }
            }
            conn.send(b"polled".to_vec())?;
            sent_rx.recv_timeout(WATCHDOG).map_err(|_| "no signal")?;
            goway::time::sleep(2 * IDLE);
            let r = match conn.recv() {
                Some(f) => String::from_utf8_lossy(&f).into_owned(),
                None => "None".to_string(),
            };
            let _ = res_tx.send(r);
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    assert_eq!(read_line(&mut c), b"polled\n");
    c.write_all(b"hello\n").unwrap();
    sent_tx.send(()).unwrap();
    let got = res_rx.recv_timeout(WATCHDOG).expect("the handler's result");
    let st = s.handle.stats();
    assert_eq!(got, "hello", "{st:?}");
    drop(c);
    s.settled();
    s.stop();
}

/// What the allowance above must not give away: a handler that polls (`recv_timeout`, then
/// work of its own, over and over) still times out a client that trickles a frame forever
/// (`FrameTimeout`), and one that polls without other work still closes a silent client
/// (`IdleTimeout`).
#[test]
fn a_polling_handler_still_times_out_slowloris_and_silent_clients() {
    setup();
    const LIMIT: Duration = Duration::from_millis(200);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .frame_timeout(LIMIT)
        .idle_timeout(LIMIT)
        .handler(|conn| {
            let work = conn.recv().ok_or("no first frame")? == b"worker";
            loop {
                match conn.recv_timeout(Duration::from_millis(10)) {
                    Ok(Some(f)) => conn.send(f)?,
                    Ok(None) => return Ok(()),
                    Err(Timeout) if work => goway::time::sleep(Duration::from_millis(30)),
                    Err(Timeout) => {}
                }
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    // Slowloris: a byte every 20 ms, never a newline, until the server closes.
    let mut slow = client(s.addr);
    slow.write_all(b"worker\n").unwrap();
    let t = Instant::now();
    let trickle = std::thread::spawn(move || {
        let mut sent = 0;
        while slow.write_all(b"s").is_ok() && sent < 1000 {
            sent += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = slow.read_to_end(&mut Vec::new());
        t.elapsed()
    });
    let took = common::join_thread(trickle);
    assert!(took >= LIMIT, "closed after {took:?}");
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::FrameTimeout], 1, "{st:?}");
    // A silent client of a handler that only polls.
    let mut silent = client(s.addr);
    silent.write_all(b"poller\n").unwrap();
    let t = Instant::now();
    assert!(read_to_close(&mut silent).is_empty());
    assert!(t.elapsed() >= LIMIT, "closed after {:?}", t.elapsed());
    let st = s.closed_at_least(2);
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 1, "{st:?}");
    s.settled();
    s.stop();
}

/// Writes `frame` over and over without waiting until the socket takes no more (the server
/// is not reading); returns the bytes written. Blocking mode is restored after.
fn push_until_full(c: &mut TcpStream, frame: &[u8]) -> usize {
    c.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut at = 0;
    loop {
        match c.write(&frame[at..]) {
            Ok(n) => {
                sent += n;
                at = (at + n) % frame.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("flood: {e}"),
        }
    }
    c.set_nonblocking(false).unwrap();
    // The frame cut by the full socket is finished (blocking: the server reads on later).
    sent + if at > 0 {
        c.write_all(&frame[at..])
            .map(|()| frame.len() - at)
            .unwrap_or(0)
    } else {
        0
    }
}

/// A flood while the handler is busy on a channel (reading inline, or with a reader goroutine
/// and a small `in` queue): the server reads a bounded amount (its read buffer, the queued
/// frames) and leaves the rest in the socket; once the handler goes on, every frame is
/// answered, in order.
#[test]
fn a_flood_while_the_handler_is_busy_is_read_in_bounded_memory_and_served_in_order() {
    setup();
    for reader in [false, true] {
        let (busy_tx, busy_rx) = chan::bounded::<()>(1);
        let (go_tx, go_rx) = chan::bounded::<()>(1);
        let srv = Server::builder()
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .read_queue(4)
            .handler(move |conn| {
                let first = conn.recv().ok_or("no first frame")?;
                if reader {
                    let _ = conn.done();
                }
                let _ = busy_tx.send(());
                go_rx.recv_timeout(WATCHDOG).map_err(|_| "not released")?;
                conn.send(first)?;
                for frame in conn {
                    conn.send(frame)?;
                }
                Ok(())
            })
            .bind()
            .unwrap();
        let s = run(srv);
        let mut c = client(s.addr);
        c.write_all(b"first\n").unwrap();
        busy_rx.recv_timeout(WATCHDOG).unwrap();
        let frame = [vec![b'f'; 1023], vec![b'\n']].concat();
        let sent = push_until_full(&mut c, &frame);
        // Still busy: what the server took is what it holds.
        let held = s.handle.stats().bytes_in;
        assert!(
            held <= (256 << 10) + 6,
            "reader {reader}: {held} bytes read while busy (the client sent {sent})"
        );
        // The socket buffers took the rest (so the bound above meant something).
        assert!(
            sent as u64 > held,
            "reader {reader}: {sent} sent, {held} read"
        );
        let frames = sent / frame.len();
        let mut r = c.try_clone().unwrap();
        let reading = std::thread::spawn(move || {
            let mut got = vec![0u8; 6 + frames * 1024];
            r.read_exact(&mut got).map(|()| got)
        });
        go_tx.send(()).unwrap();
        let got = common::join_thread(reading).expect("the replies");
        assert_eq!(&got[..6], b"first\n");
        for (i, chunk) in got[6..].chunks(1024).enumerate() {
            assert!(chunk == frame, "reader {reader}: reply {i} differs");
        }
        c.shutdown(Shutdown::Write).unwrap();
        assert!(read_to_close(&mut c).is_empty());
        let st = s.settled();
        assert_eq!(st.frames_in, 1 + frames as u64, "reader {reader}: {st:?}");
        assert_eq!(st.closed_by[CloseReason::Eof], 1, "reader {reader}: {st:?}");
        s.stop();
    }
}

/// Lines, where a line starting with `!` is malformed; the codec answers bad input with
/// `ERR <why>`.
#[derive(Clone)]
struct StrictLines(LinesCodec);

impl Codec for StrictLines {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn decode(&mut self, src: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
        if src.first() == Some(&b'!') {
            return Err(DecodeError::Malformed {
                reason: "a line starts with !".into(),
            });
        }
        self.0.decode(src)
    }
    fn encode(&mut self, f: Vec<u8>, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.0.encode(f, dst)
    }
    fn encoded_len(f: &Vec<u8>) -> usize {
        LinesCodec::encoded_len(f)
    }
    fn set_max_frame(&mut self, max: usize) {
        self.0.set_max_frame(max);
    }
    fn error_reply(&mut self, e: &DecodeError) -> Option<Vec<u8>> {
        Some(match e {
            DecodeError::FrameTooLarge { .. } => b"ERR too large\n".to_vec(),
            _ => b"ERR malformed\n".to_vec(),
        })
    }
}

/// An echo handler that switches to a reader goroutine after `at` frames (`usize::MAX`:
/// never), for any line codec.
fn strict_echo(at: usize) -> impl Fn(&Conn<StrictLines>) -> HandlerResult + Send + Sync {
    move |conn| {
        let mut n = 0;
        loop {
            if n == at {
                let _ = conn.done();
            }
            let Some(frame) = conn.recv() else {
                return Ok(());
            };
            n += 1;
            conn.send(frame)?;
        }
    }
}

/// Garbage and oversized frames, read inline and after the switch, alone or behind good
/// frames in the same write: the good frames are answered, then the codec's error reply,
/// then the server closes with `Protocol` or `FrameTooLarge`; a well-behaved client on the
/// same server is served throughout.
#[test]
fn garbage_and_oversized_frames_inline_and_after_the_switch() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(StrictLines(LinesCodec::new()))
        .max_frame(1024)
        .handler(strict_echo(2))
        .bind()
        .unwrap();
    let s = run(srv);
    let mut good = client(s.addr);
    let big = [vec![b'x'; 4096], vec![b'\n']].concat();
    // What the client sends first, the bad frame, what it gets back, the close reason.
    type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], CloseReason);
    let cases: [Case; 6] = [
        // Inline: the first frame is bad.
        (b"", b"!bad\n", b"ERR malformed\n", CloseReason::Protocol),
        (b"", &big, b"ERR too large\n", CloseReason::FrameTooLarge),
        // Behind one good frame, in one write: still inline.
        (
            b"a\n",
            b"!bad\n",
            b"a\nERR malformed\n",
            CloseReason::Protocol,
        ),
        (
            b"a\n",
            &big,
            b"a\nERR too large\n",
            CloseReason::FrameTooLarge,
        ),
        // Behind three: the handler switched after two.
        (
            b"a\nb\nc\n",
            b"!bad\n",
            b"a\nb\nc\nERR malformed\n",
            CloseReason::Protocol,
        ),
        (
            b"a\nb\nc\n",
            &big,
            b"a\nb\nc\nERR too large\n",
            CloseReason::FrameTooLarge,
        ),
    ];
    for (i, (before, bad, want, reason)) in cases.into_iter().enumerate() {
        let mut c = client(s.addr);
        c.write_all(&[before, bad].concat()).unwrap();
        let got = read_to_close(&mut c);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "case {i}"
        );
        let st = s.closed_at_least(i as u64 + 1);
        assert_eq!(st.closed_by[reason], (i / 2 + 1) as u64, "case {i}: {st:?}");
        good.write_all(format!("ok{i}\n").as_bytes()).unwrap();
        assert_eq!(read_line(&mut good), format!("ok{i}\n").as_bytes());
    }
    good.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_close(&mut good).is_empty());
    let st = s.settled();
    assert_eq!(st.closed, 7, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
    s.stop();
}

/// The size of the large replies: far more than the loopback socket buffers take at once, so a
/// client that does not read leaves most of it to a writer goroutine (the carry).
const BIG: usize = 8 << 20;

/// A server whose handler answers `big` with a reply of `BIG` bytes (written by the handler
/// itself, the rest carried by a writer goroutine) and echoes other lines; `flood` queues
/// sixteen of them instead (the handler waits for room in the write queue).
fn big_reply_server() -> Running {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .max_frame(2 * BIG)
        .handler(|conn| {
            for frame in conn {
                match &frame[..] {
                    b"big" => conn.send(vec![b'B'; BIG - 1])?,
                    b"flood" => {
                        for _ in 0..16 {
                            conn.send(vec![b'F'; (1 << 20) - 1])?;
                        }
                    }
                    _ => conn.send(frame)?,
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    run(srv)
}

/// Waits until the connection's writer goroutine runs (the handler's reply did not fit the
/// socket): the accept loop, the handler and the writer.
fn wait_writer(s: &Running) {
    wait_until("a writer with the rest of the reply", WATCHDOG, || {
        s.handle.stats().goroutines == 3
    });
}

/// A client that asks for a large reply, reads none of it, and resets the connection while
/// the writer holds the carry (and the handler waits inline for the next frame): the
/// connection closes once, as `PeerReset`, its goroutines end, and others are served.
#[test]
fn a_reset_while_the_writer_holds_a_carry() {
    setup();
    let s = big_reply_server();
    let mut c = client(s.addr);
    c.write_all(b"big\n").unwrap();
    wait_writer(&s);
    reset(c);
    let st = s.settled();
    assert_eq!(st.closed, 1, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::PeerReset], 1, "{st:?}");
    still_serves(s.addr);
    s.stop();
}

/// The same with the handler waiting for room in the write queue (replies larger than the
/// byte bound, the client not reading): the reset fails the handler's `send`, and the
/// connection is counted once, as `PeerReset`.
#[test]
fn a_reset_while_the_handler_waits_for_room() {
    setup();
    let s = big_reply_server();
    let mut c = client(s.addr);
    c.write_all(b"flood\n").unwrap();
    wait_writer(&s);
    // The handler's queued replies passed the bound: it waits in `send`.
    wait_until("the byte bound reached", WATCHDOG, || {
        s.handle.stats().queued_bytes >= 1 << 20
    });
    reset(c);
    let st = s.settled();
    assert_eq!(st.closed, 1, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::PeerReset], 1, "{st:?}");
    still_serves(s.addr);
    s.stop();
}

/// A half-close while the writer holds a carry: the handler sees the end of the input inline
/// and returns; the writer still delivers the whole reply (the client reads only now), then
/// closes; `Eof`.
#[test]
fn a_half_close_while_the_writer_holds_a_carry_still_gets_the_whole_reply() {
    setup();
    let s = big_reply_server();
    let mut c = client(s.addr);
    c.write_all(b"big\nafter\n").unwrap();
    wait_writer(&s);
    c.shutdown(Shutdown::Write).unwrap();
    let got = read_to_close(&mut c);
    assert_eq!(got.len(), BIG + 6, "{:?}", s.handle.stats());
    assert!(got[..BIG - 1].iter().all(|&b| b == b'B'));
    assert_eq!(&got[BIG - 1..], b"\nafter\n");
    let st = s.settled();
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
    still_serves(s.addr);
    s.stop();
}

/// A client that resets in the middle of a trickled frame, after the switch to a reader
/// goroutine and before it: `PeerReset` (or `EofMidFrame` if the kernel reports the end
/// first), counted once, nothing left running.
#[test]
fn a_reset_mid_frame_inline_and_after_the_switch() {
    setup();
    for at in [usize::MAX, 1] {
        let srv = Server::builder()
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .handler(switching_echo(Switch::Done, at))
            .bind()
            .unwrap();
        let s = run(srv);
        let mut c = client(s.addr);
        c.write_all(b"one\n").unwrap();
        assert_eq!(read_line(&mut c), b"one\n");
        for b in b"hal" {
            c.write_all(&[*b]).unwrap();
        }
        wait_until("the partial frame read", WATCHDOG, || {
            s.handle.stats().bytes_in == 7
        });
        reset(c);
        let st = s.settled();
        assert_eq!(st.closed, 1, "{st:?}");
        assert_eq!(
            st.closed_by[CloseReason::PeerReset] + st.closed_by[CloseReason::EofMidFrame],
            1,
            "switch at {at}: {st:?}"
        );
        still_serves(s.addr);
        s.stop();
    }
}

/// With an unbuffered write queue the writer cannot be woken for a carry, so the handler
/// writes its whole reply itself: a client that never reads it and then resets fails that
/// write (the handler does not hang), and the connection is counted once, as `PeerReset`.
#[test]
fn a_reset_while_the_handler_writes_a_whole_reply_itself() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .max_frame(2 * BIG)
        .write_queue(0)
        .handler(|conn| {
            for frame in conn {
                match &frame[..] {
                    b"big" => conn.send(vec![b'B'; BIG - 1])?,
                    _ => conn.send(frame)?,
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"big\n").unwrap();
    // Some of the reply came: the handler is writing it.
    let mut some = [0u8; 1024];
    c.read_exact(&mut some).unwrap();
    reset(c);
    let st = s.settled();
    assert_eq!(st.closed, 1, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::PeerReset], 1, "{st:?}");
    still_serves(s.addr);
    s.stop();
}

/// A burst whose last frame is cut by the client's half-close, read inline: every complete
/// frame is answered, then the connection closes with `EofMidFrame`.
#[test]
fn a_half_close_mid_frame_after_a_burst_answers_the_complete_frames() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(switching_echo(Switch::Done, usize::MAX))
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    let mut burst = Vec::new();
    for i in 0..200 {
        writeln!(burst, "f{i:03}").unwrap();
    }
    c.write_all(&burst).unwrap();
    c.write_all(b"cut").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(&mut c)),
        String::from_utf8_lossy(&burst)
    );
    let st = s.settled();
    assert_eq!(st.frames_in, 200, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::EofMidFrame], 1, "{st:?}");
    s.stop();
}

/// A drain that comes while the handler is away after a `recv_timeout` that ran out with half
/// a frame buffered: the frame begun is finished when the client sends its rest (after the
/// drain began), answered, and the connection closes with `Shutdown`.
#[test]
fn a_drain_while_the_handler_is_away_mid_frame_finishes_the_frame() {
    setup();
    let (away_tx, away_rx) = chan::bounded::<()>(1);
    let (back_tx, back_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .shutdown_grace(WATCHDOG)
        .handler(move |conn| {
            let mut told = false;
            loop {
                match conn.recv_timeout(Duration::from_millis(10)) {
                    Ok(Some(f)) => conn.send(f)?,
                    Ok(None) => return Ok(()),
                    Err(Timeout) if !told => {
                        // Away, with the partial frame buffered, until told to go on.
                        told = true;
                        let _ = away_tx.send(());
                        back_rx.recv_timeout(WATCHDOG).map_err(|_| "not told")?;
                    }
                    Err(Timeout) => {}
                }
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"hal").unwrap();
    wait_until("the partial frame read", WATCHDOG, || {
        s.handle.stats().bytes_in == 3
    });
    away_rx.recv_timeout(WATCHDOG).unwrap();
    let h = s.handle.clone();
    let shutdown = std::thread::spawn(move || h.shutdown());
    wait_until("closing", WATCHDOG, || s.handle.is_closing());
    c.write_all(b"f\n").unwrap();
    back_tx.send(()).unwrap();
    assert_eq!(read_to_close(&mut c), b"half\n");
    let report = common::join_thread(shutdown).expect("drained within the grace");
    assert_eq!(report.drained, 1);
    let st = s.finish();
    assert_eq!(st.closed_by[CloseReason::Shutdown], 1, "{st:?}");
}

/// Graceful shutdown while a handler reads inline in the middle of a trickled frame, while
/// one is busy with the first frame of a burst, and while a writer holds a carry for a client
/// that reads only after the drain began: the frame begun is finished and answered, the whole
/// burst already read is answered, the carry is delivered whole, and all close by `Shutdown`
/// within the grace.
#[test]
fn a_drain_with_inline_readers_mid_frame_mid_burst_and_a_carry() {
    setup();
    let (busy_tx, busy_rx) = chan::bounded::<()>(1);
    let (go_tx, go_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .max_frame(2 * BIG)
        .shutdown_grace(WATCHDOG)
        .handler(move |conn| {
            for frame in conn {
                match &frame[..] {
                    b"big" => conn.send(vec![b'B'; BIG - 1])?,
                    b"busy" => {
                        let _ = busy_tx.send(());
                        let _ = go_rx.recv_timeout(WATCHDOG);
                        conn.send(frame)?;
                    }
                    _ => conn.send(frame)?,
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut mid = client(s.addr);
    mid.write_all(b"m").unwrap();
    let mut burst = b"busy\n".to_vec();
    for i in 0..100 {
        writeln!(burst, "b{i:03}").unwrap();
    }
    let mut busy = client(s.addr);
    busy.write_all(&burst).unwrap();
    busy_rx.recv_timeout(WATCHDOG).unwrap();
    let mut carry = client(s.addr);
    carry.write_all(b"big\n").unwrap();
    wait_until(
        "the writer holding a carry, the rest read",
        WATCHDOG,
        || {
            let st = s.handle.stats();
            st.goroutines == 5 && st.bytes_in == 1 + burst.len() as u64 + 4
        },
    );
    let h = s.handle.clone();
    let shutdown = std::thread::spawn(move || h.shutdown());
    wait_until("closing", WATCHDOG, || s.handle.is_closing());
    for b in b"iddle\n" {
        mid.write_all(&[*b]).unwrap();
    }
    assert_eq!(read_to_close(&mut mid), b"middle\n");
    go_tx.send(()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(&mut busy)),
        String::from_utf8_lossy(&burst)
    );
    let got = read_to_close(&mut carry);
    assert_eq!(got.len(), BIG);
    let report = common::join_thread(shutdown).expect("drained within the grace");
    assert_eq!(report.drained, 3);
    let st = s.finish();
    assert_eq!(st.closed_by[CloseReason::Shutdown], 3, "{st:?}");
}

/// A drain while the handler is busy with the first frame of a burst, after which it asks for
/// a reader goroutine: the reader takes over the burst's buffered frames and hands them all
/// over before the connection closes with `Shutdown`.
#[test]
fn a_drain_then_the_switch_mid_burst_answers_the_whole_burst() {
    setup();
    let (busy_tx, busy_rx) = chan::bounded::<()>(1);
    let (go_tx, go_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .shutdown_grace(WATCHDOG)
        .handler(move |conn| {
            let first = conn.recv().ok_or("no first frame")?;
            let _ = busy_tx.send(());
            go_rx.recv_timeout(WATCHDOG).map_err(|_| "not released")?;
            let _ = conn.done();
            conn.send(first)?;
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    let mut burst = Vec::new();
    for i in 0..100 {
        writeln!(burst, "b{i:03}").unwrap();
    }
    c.write_all(&burst).unwrap();
    busy_rx.recv_timeout(WATCHDOG).unwrap();
    wait_until("the burst read", WATCHDOG, || {
        s.handle.stats().bytes_in == burst.len() as u64
    });
    let h = s.handle.clone();
    let shutdown = std::thread::spawn(move || h.shutdown());
    wait_until("closing", WATCHDOG, || s.handle.is_closing());
    go_tx.send(()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_to_close(&mut c)),
        String::from_utf8_lossy(&burst)
    );
    let report = common::join_thread(shutdown).expect("drained within the grace");
    assert_eq!(report.drained, 1);
    let st = s.finish();
    assert_eq!(st.closed_by[CloseReason::Shutdown], 1, "{st:?}");
}

/// Past the grace, a frame begun and never finished and a carry the client never reads are
/// cut off (`CutOff`), counted once each; `shutdown` says how many.
#[test]
fn past_the_grace_a_stuck_frame_and_a_stuck_carry_are_cut_off() {
    setup();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .max_frame(2 * BIG)
        .frame_timeout(WATCHDOG)
        .write_timeout(WATCHDOG)
        .shutdown_grace(Duration::from_millis(200))
        .handler(|conn| {
            for frame in conn {
                match &frame[..] {
                    b"big" => conn.send(vec![b'B'; BIG - 1])?,
                    _ => conn.send(frame)?,
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut mid = client(s.addr);
    mid.write_all(b"never finished").unwrap();
    let carry = client(s.addr);
    (&carry).write_all(b"big\n").unwrap();
    wait_until(
        "the writer holding a carry, the partial frame read",
        WATCHDOG,
        || {
            let st = s.handle.stats();
            st.goroutines == 4 && st.bytes_in == 14 + 4
        },
    );
    let r = s.handle.shutdown();
    assert!(
        matches!(
            r,
            Err(goway::net::server::ShutdownError::Timeout { cut_off: 2 })
        ),
        "{r:?}"
    );
    assert!(read_to_close(&mut mid).is_empty());
    drop(carry);
    let st = s.finish();
    assert_eq!(st.closed_by[CloseReason::CutOff], 2, "{st:?}");
}

/// How each client of the mixed attack behaves.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// Frames trickled a byte at a time, the handler switching to a reader goroutine between.
    TrickleSwitch,
    /// A burst with the switch in its middle.
    BurstSwitch,
    /// A large reply asked for, a little of it read, then a reset.
    ResetCarry,
    /// Garbage after the switch.
    GarbageAfterSwitch,
    /// A large reply asked for, then a half-close, then the whole reply read.
    HalfCloseCarry,
    /// Half a frame, then a reset.
    ResetMidFrame,
}

const CLIENTS: [Client; 6] = [
    Client::TrickleSwitch,
    Client::BurstSwitch,
    Client::ResetCarry,
    Client::GarbageAfterSwitch,
    Client::HalfCloseCarry,
    Client::ResetMidFrame,
];

/// The mixed attack's replies: a bit more than the socket buffers take in one go.
const MIXED_BIG: usize = 1 << 20;

/// Phase one: what the client sends first.
fn mixed_start(c: &mut TcpStream, how: Client) {
    match how {
        Client::TrickleSwitch => {
            for b in b"t1\nswitch\nt2\n" {
                c.write_all(&[*b]).unwrap();
            }
        }
        Client::BurstSwitch => c.write_all(b"x1\nx2\nswitch\nx3\nx4\n").unwrap(),
        Client::ResetCarry | Client::HalfCloseCarry => c.write_all(b"big\n").unwrap(),
        Client::GarbageAfterSwitch => c.write_all(b"switch\n!bad\n").unwrap(),
        Client::ResetMidFrame => c.write_all(b"hal").unwrap(),
    }
}

/// Phase two: the rest, and the check of what came back.
fn mixed_finish(mut c: TcpStream, how: Client) {
    match how {
        Client::TrickleSwitch => {
            for b in b"t3\n" {
                c.write_all(&[*b]).unwrap();
            }
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_to_close(&mut c), b"t1\nswitch\nt2\nt3\n");
        }
        Client::BurstSwitch => {
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_to_close(&mut c), b"x1\nx2\nswitch\nx3\nx4\n");
        }
        Client::ResetCarry => {
            let mut some = [0u8; 1024];
            c.read_exact(&mut some).unwrap();
            reset(c);
        }
        Client::GarbageAfterSwitch => {
            assert_eq!(read_to_close(&mut c), b"switch\nERR malformed\n");
        }
        Client::HalfCloseCarry => {
            c.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_to_close(&mut c).len(), MIXED_BIG);
        }
        Client::ResetMidFrame => reset(c),
    }
}

/// A few hundred clients at once, each attacking one of the paths above (trickles across the
/// switch, bursts across it, resets with a carry pending and mid-frame, garbage after the
/// switch, half-closes with a carry pending): each gets its answers, every connection is
/// counted once with its reason, nothing is left running, and a fresh client is served.
#[test]
fn a_few_hundred_hostile_clients_at_once() {
    setup();
    const THREADS: usize = 12;
    const PER_THREAD: usize = 25;
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(StrictLines(LinesCodec::new()))
        .max_frame(2 * MIXED_BIG)
        .handler(|conn| {
            for frame in conn {
                match &frame[..] {
                    b"switch" => {
                        let _ = conn.done();
                        conn.send(frame)?;
                    }
                    b"big" => conn.send(vec![b'B'; MIXED_BIG - 1])?,
                    _ => conn.send(frame)?,
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let addr = s.addr;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let conns: Vec<(TcpStream, Client)> = (0..PER_THREAD)
                    .map(|i| {
                        let how = CLIENTS[(t * PER_THREAD + i) % CLIENTS.len()];
                        let mut c = client(addr);
                        mixed_start(&mut c, how);
                        (c, how)
                    })
                    .collect();
                for (c, how) in conns {
                    mixed_finish(c, how);
                }
            })
        })
        .collect();
    for t in threads {
        common::join_thread(t);
    }
    let n = (THREADS * PER_THREAD) as u64;
    let st = s.closed_at_least(n);
    let per = n / CLIENTS.len() as u64;
    assert_eq!(st.closed, n, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 3 * per, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Protocol], per, "{st:?}");
    assert_eq!(
        st.closed_by[CloseReason::PeerReset] + st.closed_by[CloseReason::EofMidFrame],
        2 * per,
        "{st:?}"
    );
    s.settled();
    still_serves(addr);
    s.stop();
}

/// A handler that takes its frames from `incoming` in a `select!` (with nothing else to do)
/// is waiting for input as much as one in `recv`: a client silent for longer than
/// `idle_timeout` must be closed with `IdleTimeout`.
#[test]
fn a_silent_client_of_a_handler_selecting_on_incoming_is_idle_timed_out() {
    setup();
    const IDLE: Duration = Duration::from_millis(200);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .idle_timeout(IDLE)
        .handler(|conn| {
            loop {
                goway::select! {
                    recv(conn.incoming()) -> f => match f {
                        Ok(f) => conn.send(f)?,
                        Err(_) => return Ok(()),
                    },
                }
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut c = client(s.addr);
    c.write_all(b"one\n").unwrap();
    assert_eq!(read_line(&mut c), b"one\n");
    c.set_read_timeout(Some(IDLE * 10)).unwrap();
    let mut rest = Vec::new();
    let r = c.read_to_end(&mut rest);
    let st = s.handle.stats();
    assert!(r.is_ok(), "not closed after 10 idle timeouts: {r:?} {st:?}");
    let st = s.closed_at_least(1);
    assert_eq!(st.closed_by[CloseReason::IdleTimeout], 1, "{st:?}");
    s.stop();
}

/// A small deterministic generator (xorshift), for the randomised splits below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Randomised: many clients at once, each writing its frames cut at random points into
/// chunks of 1 to 64 bytes, against handlers that read by `recv`, by zero-timeout polls or by
/// short `recv_timeout`s, and switch to a reader goroutine (by `done`, `incoming` or
/// `context`) at a frame chosen by the client: every frame is echoed once, in order.
#[test]
fn random_splits_across_the_switch_keep_every_frame_in_order() {
    setup();
    const CLIENTS: u64 = 60;
    const FRAMES: usize = 40;
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            // The first frame says how to read: `<mode> <switch> <at>`.
            let first = conn.recv().ok_or("no first frame")?;
            let first = String::from_utf8_lossy(&first).into_owned();
            let mut words = first.split(' ');
            let mode: u32 = words.next().and_then(|w| w.parse().ok()).ok_or("mode")?;
            let how: u32 = words.next().and_then(|w| w.parse().ok()).ok_or("switch")?;
            let at: usize = words.next().and_then(|w| w.parse().ok()).ok_or("at")?;
            let mut n = 0;
            let mut switched = false;
            loop {
                if n == at && !switched {
                    switched = true;
                    match how {
                        0 => drop(conn.done()),
                        1 => drop(conn.incoming()),
                        _ => drop(conn.context()),
                    }
                }
                let frame = if switched && how == 1 {
                    conn.incoming().recv().ok()
                } else {
                    match mode {
                        0 => conn.recv(),
                        1 => match conn.recv_timeout(Duration::ZERO) {
                            Ok(f) => f,
                            Err(Timeout) => {
                                goway::time::sleep(Duration::from_millis(1));
                                continue;
                            }
                        },
                        _ => match conn.recv_timeout(Duration::from_millis(1)) {
                            Ok(f) => f,
                            Err(Timeout) => continue,
                        },
                    }
                };
                let Some(frame) = frame else { return Ok(()) };
                n += 1;
                conn.send(frame)?;
            }
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let addr = s.addr;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (i + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let mut c = client(addr);
                let (mode, how) = (rng.below(3), rng.below(3));
                let at = rng.below(FRAMES as u64 + 1);
                writeln!(c, "{mode} {how} {at}").unwrap();
                let mut stream = Vec::new();
                for f in 0..FRAMES {
                    let len = 1 + rng.below(200) as usize;
                    stream.extend(std::iter::repeat_n(b'a' + (f % 26) as u8, len));
                    writeln!(stream, "{i}-{f}").unwrap();
                }
                let mut at = 0;
                while at < stream.len() {
                    let n = (1 + rng.below(64) as usize).min(stream.len() - at);
                    c.write_all(&stream[at..at + n]).unwrap();
                    at += n;
                }
                c.shutdown(Shutdown::Write).unwrap();
                let got = read_to_close(&mut c);
                assert!(
                    got == stream,
                    "client {i} (mode {mode}, switch {how}): {} bytes back of {}",
                    got.len(),
                    stream.len()
                );
            })
        })
        .collect();
    for t in threads {
        common::join_thread(t);
    }
    let st = s.closed_at_least(CLIENTS);
    assert_eq!(st.closed_by[CloseReason::Eof], CLIENTS, "{st:?}");
    assert_eq!(st.frames_in, CLIENTS * (FRAMES as u64 + 1), "{st:?}");
    s.settled();
    s.stop();
}
