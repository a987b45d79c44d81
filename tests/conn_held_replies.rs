//! Attacks on the handler's held replies (`Conn::send` while a pipelined burst's next frames
//! wait): the replies of a burst are encoded into the write side's buffer, handed to the
//! writer if the handler's goroutine parks first, and leave in one write. Every test makes
//! the burst arrive in one read (the handler waits on a channel before its first `recv`
//! while the client writes the whole burst), then checks order, counts, close reasons, the output limits and that every
//! goroutine ends (`Running::stop`).
//!
//! `conn_held_replies_one_worker.rs` runs the same tests on one worker thread.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use goway::chan;
use goway::net::codec::{Codec, DecodeError, EncodeError, LinesCodec};
use goway::net::server::{CloseReason, Config, WhenFull};
use goway::net::{Conn, Server};

mod common;
use common::net_server::run;
use common::{WATCHDOG, client, join_thread};

/// Worker threads for this test binary (`None`: the default).
#[allow(dead_code)]
const WORKERS: Option<usize> = None;

fn setup() {
    if let Some(n) = crate::WORKERS {
        let _ = goway::runtime::Config::new().workers(n).apply();
    }
}

/// Reads lines until EOF (or a reset, which ends the stream as well).
fn read_lines(r: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return out,
            Ok(_) => out.push(line),
        }
    }
}

fn read_n(r: &mut BufReader<TcpStream>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut line = String::new();
            let got = r.read_line(&mut line).expect("read a reply");
            assert!(got > 0, "EOF after {i} of {n} replies");
            line
        })
        .collect()
}

/// How a handler gets its frames.
#[derive(Clone, Copy, Debug)]
enum Reading {
    /// `recv` on the handler's goroutine (no reader goroutine).
    Inline,
    /// A reader goroutine, started by `done()` before the first `recv`.
    Goroutine,
}

/// The handler of the order tests. For each frame `i` of a burst, in this order: a reply
/// (`h`), on every 3rd frame a reply queued through the handler's own `ConnSender` (`s`), on
/// every 4th a job for a helper goroutine that sends its own reply (`o`, not waited for), on
/// every 7th a round trip to a second helper (the handler parks with replies held).
fn order_handler(
    conn: &Conn<LinesCodec>,
    start: &chan::Receiver<()>,
    reading: Reading,
) -> goway::net::server::HandlerResult {
    if let Reading::Goroutine = reading {
        let _ = conn.done();
    }
    start.recv()?;
    let own = conn.sender();
    let other = conn.sender();
    let (jobs_tx, jobs) = chan::bounded::<Vec<u8>>(1024);
    let helper = goway::go!(move || {
        for f in jobs {
            if other.send([b"o".as_slice(), &f].concat()).is_err() {
                return;
            }
        }
    });
    let (ping_tx, ping_rx) = chan::bounded::<chan::Sender<()>>(0);
    let ponger = goway::go!(move || {
        for back in ping_rx {
            let _ = back.send(());
        }
    });
    for (i, frame) in conn.into_iter().enumerate() {
        conn.send([b"h".as_slice(), &frame].concat())?;
        if i % 3 == 0 {
            own.send([b"s".as_slice(), &frame].concat())?;
        }
        if i % 4 == 0 {
            jobs_tx.send(frame.clone())?;
        }
        if i % 7 == 0 {
            let (back_tx, back_rx) = chan::bounded(1);
            ping_tx.send(back_tx)?;
            back_rx.recv()?;
        }
    }
    drop(jobs_tx);
    drop(ping_tx);
    helper.join().map_err(|_| "helper panicked")?;
    ponger.join().map_err(|_| "ponger panicked")?;
    Ok(())
}

/// What the client expects for a burst numbered from `base`: the handler's replies (`h`, `s`)
/// in the handler's order, and the helper's (`o`) in its own order.
fn check_burst(lines: &[String], base: usize, n: usize) {
    let mut want_handler = Vec::new();
    let mut want_other = Vec::new();
    for k in 0..n {
        let i = base + k;
        want_handler.push(format!("h{i:06}\n"));
        if i % 3 == 0 {
            want_handler.push(format!("s{i:06}\n"));
        }
        if i % 4 == 0 {
            want_other.push(format!("o{i:06}\n"));
        }
    }
    let got_handler: Vec<&String> = lines.iter().filter(|l| !l.starts_with('o')).collect();
    let got_other: Vec<&String> = lines.iter().filter(|l| l.starts_with('o')).collect();
    assert_eq!(
        got_handler.len(),
        want_handler.len(),
        "handler replies of burst at {base}"
    );
    for (g, w) in got_handler.iter().zip(&want_handler) {
        assert_eq!(*g, w, "handler replies out of order in burst at {base}");
    }
    assert_eq!(
        got_other.len(),
        want_other.len(),
        "helper replies at {base}"
    );
    for (g, w) in got_other.iter().zip(&want_other) {
        assert_eq!(*g, w, "helper replies out of order in burst at {base}");
    }
}

/// The frame numbering carries across bursts, so the helper's `i % 4` matches the client's.
fn expected_lines(base: usize, n: usize) -> usize {
    (base..base + n)
        .map(|i| 1 + usize::from(i % 3 == 0) + usize::from(i % 4 == 0))
        .sum()
}

fn order_case(write_queue: Option<usize>, reading: Reading) {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let mut b = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new());
    if let Some(q) = write_queue {
        b = b.write_queue(q);
    }
    let srv = b
        .handler(move |conn| order_handler(conn, &start_rx, reading))
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    // Bursts of 1..=300 frames of 7 bytes (under the 4 KiB first read).
    let mut base = 0;
    let mut received = 0u64;
    let mut bytes = 0u64;
    for (round, n) in [300usize, 1, 2, 17, 64, 299, 3, 150]
        .into_iter()
        .enumerate()
    {
        let burst: String = (base..base + n).map(|i| format!("{i:06}\n")).collect();
        w.write_all(burst.as_bytes()).unwrap();
        if round == 0 {
            start_tx.send(()).unwrap();
        }
        let lines = read_n(&mut r, expected_lines(base, n));
        check_burst(&lines, base, n);
        received += lines.len() as u64;
        bytes += lines.iter().map(|l| l.len() as u64).sum::<u64>();
        base += n;
    }
    w.shutdown(Shutdown::Write).unwrap();
    let rest = read_lines(&mut r);
    assert!(rest.is_empty(), "{rest:?}");
    let st = s.stop();
    assert_eq!(st.frames_out, received, "{st:?}");
    assert_eq!(st.bytes_out, bytes, "{st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
}

#[test]
fn burst_replies_keep_order_with_other_senders_inline() {
    order_case(None, Reading::Inline);
}

#[test]
fn burst_replies_keep_order_with_other_senders_reader_goroutine() {
    order_case(None, Reading::Goroutine);
}

#[test]
fn burst_replies_keep_order_unbuffered_write_queue() {
    order_case(Some(0), Reading::Inline);
    order_case(Some(0), Reading::Goroutine);
}

#[test]
fn burst_replies_keep_order_one_slot_write_queue() {
    order_case(Some(1), Reading::Inline);
    order_case(Some(1), Reading::Goroutine);
}

/// An echo-like server whose handler waits for `start` before its first `recv` and answers
/// each frame with `reply(frame)`.
fn burst_server(
    b: goway::net::server::Builder<LinesCodec, ()>,
    reply: fn(&[u8]) -> Vec<u8>,
) -> (common::net_server::Running, chan::Sender<()>) {
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let srv = b
        .addr("127.0.0.1:0")
        .handler(move |conn| {
            start_rx.recv()?;
            for frame in conn {
                conn.send(reply(&frame))?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    (run(srv), start_tx)
}

/// A client that reads every reply, sending a burst whose replies add up to several times a
/// `WhenFull::Disconnect` byte bound, each reply far below it. The write queue's frame count
/// (8 replies of 101 bytes, under 1 KiB, plus a writer's batch) keeps queued replies below
/// the 4 KiB bound, so the connection only goes past it if replies the server chose to hold
/// count as the client's unread output. It must not be disconnected.
#[test]
fn a_reading_client_is_not_disconnected_for_replies_the_server_held() {
    setup();
    const BURST: usize = 200;
    let (s, start) = burst_server(
        Server::builder()
            .codec(LinesCodec::new())
            .write_queue(8)
            .write_queue_bytes(4 << 10)
            .write_queue_full(WhenFull::Disconnect),
        |f| {
            let mut r = f.to_vec();
            r.resize(100, b'.');
            r
        },
    );
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let burst: String = (0..BURST).map(|i| format!("{i:04}\n")).collect();
    w.write_all(burst.as_bytes()).unwrap();
    start.send(()).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut r = BufReader::new(c);
    let lines = read_lines(&mut r);
    let st = s.stop();
    assert_eq!(
        lines.len(),
        BURST,
        "a reading client lost replies: {:?}",
        st.closed_by
    );
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("{i:04}")), "{i}: {l}");
    }
    assert_eq!(st.closed_by[CloseReason::OutputLimit], 0, "{st:?}");
}

/// The same with a soft limit of 1 KiB that may not be exceeded at all (`soft_for` 0): held
/// replies of a burst must not count as a client that does not read.
#[test]
fn a_reading_client_is_not_disconnected_by_the_soft_limit_for_held_replies() {
    setup();
    const BURST: usize = 200;
    let (s, start) = burst_server(
        Server::builder()
            .codec(LinesCodec::new())
            .write_queue(4)
            .write_queue_soft(2 << 10, Duration::ZERO),
        |f| {
            let mut r = f.to_vec();
            r.resize(100, b'.');
            r
        },
    );
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let burst: String = (0..BURST).map(|i| format!("{i:04}\n")).collect();
    w.write_all(burst.as_bytes()).unwrap();
    start.send(()).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut r = BufReader::new(c);
    let lines = read_lines(&mut r);
    let st = s.stop();
    assert_eq!(
        lines.len(),
        BURST,
        "a reading client lost replies: {:?}",
        st.closed_by
    );
    assert_eq!(st.closed_by[CloseReason::OutputLimit], 0, "{st:?}");
}

/// Replies larger than `write_buffer` mixed with small ones in a burst (so a held carry
/// meets a reply that alone passes the buffer), and a `write_buffer` of one byte (nothing
/// can be held): order and counts hold.
#[test]
fn replies_larger_than_the_write_buffer_and_a_tiny_buffer_keep_order() {
    setup();
    for wb in [64usize, 1, 300] {
        let (s, start) = burst_server(
            Server::builder()
                .config({
                    let mut cfg = Config::default();
                    cfg.write_buffer = wb;
                    cfg
                })
                .codec(LinesCodec::new()),
            |f| {
                let i: usize = std::str::from_utf8(f).unwrap().parse().unwrap();
                let mut r = f.to_vec();
                if i % 3 == 1 {
                    r.resize(200 + i, b'z');
                }
                r
            },
        );
        let c = client(s.addr);
        let mut w = c.try_clone().unwrap();
        const BURST: usize = 400;
        let burst: String = (0..BURST).map(|i| format!("{i:04}\n")).collect();
        w.write_all(burst.as_bytes()).unwrap();
        start.send(()).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        let mut r = BufReader::new(c);
        let lines = read_lines(&mut r);
        assert_eq!(lines.len(), BURST, "write_buffer {wb}");
        let mut bytes = 0;
        for (i, l) in lines.iter().enumerate() {
            assert!(
                l.starts_with(&format!("{i:04}")),
                "write_buffer {wb}: {i}: {l}"
            );
            let want = if i % 3 == 1 { 200 + i + 1 } else { 5 };
            assert_eq!(l.len(), want, "write_buffer {wb}: {i}");
            bytes += l.len() as u64;
        }
        let st = s.stop();
        assert_eq!(st.frames_out, BURST as u64, "write_buffer {wb}: {st:?}");
        assert_eq!(st.bytes_out, bytes, "write_buffer {wb}: {st:?}");
    }
}

/// A client that reads slowly (small reads, small receive buffer) while a burst's large
/// replies pass the byte bound under `Wait`: every reply arrives in order, and the
/// connection never holds more than the bound plus one reply.
#[test]
fn a_slow_reader_gets_every_reply_within_the_byte_bound() {
    setup();
    const BOUND: usize = 8 << 10;
    const REPLY: usize = 3000;
    const BURST: usize = 300;
    let (s, start) = burst_server(
        Server::builder()
            .codec(LinesCodec::new())
            .write_queue(4)
            .write_queue_bytes(BOUND),
        |f| {
            let mut r = f.to_vec();
            r.resize(REPLY - 1, b'.');
            r
        },
    );
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let burst: String = (0..BURST).map(|i| format!("{i:04}\n")).collect();
    w.write_all(burst.as_bytes()).unwrap();
    start.send(()).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    let mut all = Vec::new();
    let mut rd = c;
    let mut chunk = [0u8; 97];
    loop {
        let n = rd.read(&mut chunk).expect("read");
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
    }
    let lines: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), BURST);
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(format!("{i:04}").as_bytes()), "{i}");
        assert_eq!(l.len(), REPLY);
    }
    let st = s.stop();
    assert!(
        st.queued_bytes_peak <= (BOUND + REPLY) as u64,
        "{} bytes held past a {BOUND}-byte bound: {st:?}",
        st.queued_bytes_peak
    );
    assert_eq!(st.frames_out, BURST as u64);
}

/// A handler that returns, or panics, right after replying to the first frame of a burst
/// (its reply held, since more input waits): the reply is still written, then the
/// connection closes with the handler's reason.
#[test]
fn a_reply_held_when_the_handler_returns_or_panics_is_written() {
    setup();
    for panics in [false, true] {
        let (start_tx, start_rx) = chan::bounded::<()>(1);
        let srv = Server::builder()
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .handler(move |conn| {
                start_rx.recv()?;
                let f = conn.recv().ok_or("no frame")?;
                conn.send([b"r".as_slice(), &f].concat())?;
                if panics {
                    panic!("handler panics with a reply held");
                }
                Ok(())
            })
            .bind()
            .unwrap();
        let s = run(srv);
        let c = client(s.addr);
        let mut w = c.try_clone().unwrap();
        w.write_all(b"a\nb\nc\n").unwrap();
        start_tx.send(()).unwrap();
        let mut r = BufReader::new(c);
        let lines = read_lines(&mut r);
        assert_eq!(lines, ["ra\n"], "panics: {panics}");
        let st = s.stop();
        assert_eq!(st.frames_out, 1, "panics: {panics}: {st:?}");
        let reason = if panics {
            CloseReason::Panic
        } else {
            CloseReason::HandlerDone
        };
        assert_eq!(st.closed_by[reason], 1, "{st:?}");
        assert_eq!(st.panics, u64::from(panics), "{st:?}");
    }
}

/// Lines, except that `boom` panics in `encode` and `bad` fails there, each after writing
/// part of its encoding.
#[derive(Clone)]
struct Fragile(LinesCodec);

impl Codec for Fragile {
    type In = Vec<u8>;
    type Out = Vec<u8>;
    fn decode(&mut self, src: &[u8]) -> Result<Option<(Vec<u8>, usize)>, DecodeError> {
        self.0.decode(src)
    }
    fn encode(&mut self, frame: Vec<u8>, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        if frame.ends_with(b"boom") || frame.ends_with(b"bad") {
            dst.extend_from_slice(b"PARTIAL");
            if frame.ends_with(b"boom") {
                panic!("the codec panics in encode");
            }
            return Err(EncodeError::Invalid {
                reason: "bad frame".into(),
            });
        }
        self.0.encode(frame, dst)
    }
    fn encoded_len(frame: &Vec<u8>) -> usize {
        frame.len() + 1
    }
    fn set_max_frame(&mut self, max: usize) {
        self.0.set_max_frame(max);
    }
}

fn fragile_case(poison: &str) -> (Vec<u8>, goway::net::server::Stats) {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(Fragile(LinesCodec::new()))
        .handler(move |conn| {
            start_rx.recv()?;
            for f in conn {
                conn.send([b"r".as_slice(), &f].concat())?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    w.write_all(format!("a\nb\n{poison}\nc\nd\n").as_bytes())
        .unwrap();
    start_tx.send(()).unwrap();
    let mut got = Vec::new();
    let mut rd = c;
    let _ = rd.read_to_end(&mut got);
    (got, s.stop())
}

/// A codec that panics in `encode` in the middle of a burst (the replies before it held):
/// the held replies may be written, but never the part of a frame the codec left before
/// it panicked.
#[test]
fn an_encode_panic_mid_burst_writes_no_partial_frame() {
    let (got, st) = fragile_case("boom");
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("PARTIAL"),
        "a partial frame was sent: {text:?}"
    );
    assert!(
        ["", "ra\n", "ra\nrb\n"].contains(&text.as_ref()),
        "{text:?}"
    );
    assert_eq!(st.closed_by[CloseReason::Panic], 1, "{st:?}");
}

/// The same with an `encode` error: the connection is closed with `EncodeError`, nothing of
/// the failed frame or after it is sent.
#[test]
fn an_encode_error_mid_burst_closes_with_encode_error() {
    let (got, st) = fragile_case("bad");
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains("PARTIAL"),
        "a partial frame was sent: {text:?}"
    );
    assert!(
        ["", "ra\n", "ra\nrb\n"].contains(&text.as_ref()),
        "{text:?}"
    );
    assert_eq!(st.closed_by[CloseReason::EncodeError], 1, "{st:?}");
}

/// A graceful shutdown while the handler holds a reply and waits elsewhere: the held reply
/// and the replies to the frames already received are written, then the connection closes.
#[test]
fn a_drain_while_a_reply_is_held_writes_it() {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let (held_tx, held_rx) = chan::bounded::<()>(1);
    let (gate_tx, gate_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            start_rx.recv()?;
            for f in conn {
                conn.send([b"r".as_slice(), &f].concat())?;
                if f == b"a" {
                    held_tx.send(())?;
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
    held_rx
        .recv_timeout(WATCHDOG)
        .expect("the handler replied to a");
    let mut r = BufReader::new(c);
    // Written by the writer while the handler waits.
    assert_eq!(read_n(&mut r, 1), ["ra\n"]);
    let handle = s.handle.clone();
    let shutting = std::thread::spawn(move || handle.shutdown());
    common::wait_until("the shutdown to start", WATCHDOG, || s.handle.is_closing());
    gate_tx.send(()).unwrap();
    let rest = read_lines(&mut r);
    assert_eq!(rest, ["rb\n"]);
    let report = join_thread(shutting).expect("graceful");
    let _ = report;
    let st = s.finish();
    assert_eq!(st.frames_out, 2, "{st:?}");
    drop(w);
}

/// Clients that reset their connection mid-burst, while the server holds or writes large
/// replies they never read: every connection closes and every goroutine ends.
#[test]
fn clients_resetting_mid_burst_leave_nothing_behind() {
    setup();
    const CLIENTS: usize = 8;
    let (start_tx, start_rx) = chan::bounded::<()>(CLIENTS);
    let (sent_tx, sent_rx) = chan::bounded::<()>(CLIENTS);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .write_queue_bytes(64 << 10)
        .handler(move |conn| {
            start_rx.recv()?;
            let mut n = 0;
            for _ in conn {
                if conn.send(vec![b'y'; 4095]).is_err() {
                    break;
                }
                n += 1;
                if n == 50 {
                    let _ = sent_tx.send(());
                }
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = client(s.addr);
        c.write_all(&b"q\n".repeat(1000)).unwrap();
        start_tx.send(()).unwrap();
        clients.push(c);
    }
    for _ in 0..CLIENTS {
        sent_rx.recv_timeout(WATCHDOG).expect("50 replies sent");
    }
    for c in clients {
        // SO_LINGER 0: close sends a reset.
        let sock = socket2::SockRef::from(&c);
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        drop(c);
    }
    let st = s.closed_at_least(CLIENTS as u64);
    assert_eq!(st.closed, CLIENTS as u64, "{st:?}");
    let st = s.stop();
    assert!(st.queued_bytes_peak <= ((64 << 10) + 4096) as u64, "{st:?}");
}

/// The handler of the randomised test: each frame ends in a digit whose bits say what to do
/// besides the reply (`h`): 1 park on a round trip to a helper (replies held meanwhile),
/// 2 a reply through the handler's own `ConnSender` (`s`), 4 a job for a helper goroutine
/// that replies on its own (`o`), 8 a large reply.
fn random_handler(conn: &Conn<LinesCodec>) -> goway::net::server::HandlerResult {
    let own = conn.sender();
    let other = conn.sender();
    let (jobs_tx, jobs) = chan::bounded::<Vec<u8>>(4096);
    let helper = goway::go!(move || {
        for f in jobs {
            if other.send([b"o".as_slice(), &f].concat()).is_err() {
                return;
            }
        }
    });
    let (ping_tx, ping_rx) = chan::bounded::<chan::Sender<()>>(0);
    let ponger = goway::go!(move || {
        for back in ping_rx {
            let _ = back.send(());
        }
    });
    for frame in conn {
        let bits = frame.last().map_or(0, |d| d.wrapping_sub(b'0'));
        let mut reply = [b"h".as_slice(), &frame].concat();
        if bits & 8 != 0 {
            reply.resize(3000, b'.');
        }
        conn.send(reply)?;
        if bits & 2 != 0 {
            own.send([b"s".as_slice(), &frame].concat())?;
        }
        if bits & 4 != 0 {
            jobs_tx.send(frame.clone())?;
        }
        if bits & 1 != 0 {
            let (back_tx, back_rx) = chan::bounded(1);
            ping_tx.send(back_tx)?;
            back_rx.recv()?;
        }
    }
    drop(jobs_tx);
    drop(ping_tx);
    helper.join().map_err(|_| "helper panicked")?;
    ponger.join().map_err(|_| "ponger panicked")?;
    Ok(())
}

/// Clients pipelining random bursts (random sizes, random handler behaviour per frame) while
/// a thread of their own reads the replies, against servers with a default, a tiny (and
/// byte-bounded) and an unbuffered write queue and a small write buffer: every reply
/// arrives, the handler's in its order and the helper's in its own.
#[test]
fn random_bursts_from_many_clients_keep_every_reply_in_order() {
    setup();
    for (cfg_no, (queue, bytes, wbuf)) in [
        (64usize, 1usize << 20, 0usize),
        (2, 8 << 10, 512),
        (0, 0, 4096),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cfg = Config::default();
        cfg.write_queue = queue;
        cfg.write_queue_bytes = bytes;
        cfg.write_buffer = wbuf;
        let srv = Server::builder()
            .config(cfg)
            .addr("127.0.0.1:0")
            .codec(LinesCodec::new())
            .handler(random_handler)
            .bind()
            .unwrap();
        let s = run(srv);
        const CLIENTS: u64 = 6;
        let threads: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let addr = s.addr;
                std::thread::spawn(move || {
                    let mut seed = (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ cfg_no as u64;
                    let mut rnd = move |m: u64| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed % m
                    };
                    let c = client(addr);
                    let mut w = c.try_clone().unwrap();
                    let mut want_h = Vec::new();
                    let mut want_o = Vec::new();
                    let mut i = 0u64;
                    let mut bursts = Vec::new();
                    for _ in 0..25 {
                        let n = 1 + rnd(200);
                        let mut burst = String::new();
                        for _ in 0..n {
                            let bits = rnd(16);
                            // Parking is rarer: it costs a round trip per frame.
                            let bits = if rnd(4) == 0 { bits } else { bits & !1 };
                            // One character, '0' + bits (past '9' for bits of 10 to 15).
                            let f = format!("{i:06}{}", char::from(b'0' + bits as u8));
                            let mut h = format!("h{f}");
                            if bits & 8 != 0 {
                                h.push_str(&".".repeat(3000 - h.len()));
                            }
                            want_h.push(h + "\n");
                            if bits & 2 != 0 {
                                want_h.push(format!("s{f}\n"));
                            }
                            if bits & 4 != 0 {
                                want_o.push(format!("o{f}\n"));
                            }
                            burst.push_str(&f);
                            burst.push('\n');
                            i += 1;
                        }
                        bursts.push(burst);
                    }
                    let total = want_h.len() + want_o.len();
                    let reader = std::thread::spawn(move || {
                        let mut r = BufReader::new(c);
                        read_n(&mut r, total)
                    });
                    for b in bursts {
                        w.write_all(b.as_bytes()).unwrap();
                    }
                    let lines = reader.join().expect("reader");
                    let got_h: Vec<&String> =
                        lines.iter().filter(|l| !l.starts_with('o')).collect();
                    let got_o: Vec<&String> = lines.iter().filter(|l| l.starts_with('o')).collect();
                    assert_eq!(got_h.len(), want_h.len(), "client {k}");
                    for (j, (g, w)) in got_h.iter().zip(&want_h).enumerate() {
                        assert_eq!(*g, w, "client {k}: handler reply {j} out of order");
                    }
                    assert_eq!(got_o, want_o.iter().collect::<Vec<_>>(), "client {k}");
                    w.shutdown(Shutdown::Write).unwrap();
                    total as u64
                })
            })
            .collect();
        let mut total = 0;
        for t in threads {
            total += join_thread(t);
        }
        let st = s.stop();
        assert_eq!(st.frames_out, total, "config {cfg_no}: {st:?}");
        assert_eq!(st.closed, CLIENTS, "config {cfg_no}: {st:?}");
    }
}

/// Where the handler parks with a reply held (see [`park_case`]).
#[derive(Clone, Copy, Debug)]
enum ParkOn {
    /// A goway channel receive.
    Channel,
    /// A goway mutex another goroutine holds.
    Mutex,
    /// A read on a socket of its own (a goway `TcpStream`).
    Socket,
}

/// The handler replies to the first frame of a burst (held: the second frame waits in the
/// read buffer) and then parks elsewhere until the client has that reply: its goroutine's
/// park hook hands the held reply to the writer, whatever it parks on.
fn park_case(on: ParkOn) {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let (gate_tx, gate_rx) = chan::bounded::<()>(1);
    let lock = std::sync::Arc::new(goway::sync::Mutex::new(()));
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    // For `Mutex`: a goroutine holds the lock until the gate opens.
    let holder = match on {
        ParkOn::Mutex => {
            let (locked_tx, locked_rx) = chan::bounded::<()>(1);
            let (lock, gate_rx) = (lock.clone(), gate_rx.clone());
            let h = goway::go!(move || {
                let _g = lock.lock();
                locked_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            });
            locked_rx.recv_timeout(WATCHDOG).expect("the holder locks");
            Some(h)
        }
        _ => None,
    };
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            start_rx.recv()?;
            let f = conn.recv().ok_or("no first frame")?;
            conn.send([b"r".as_slice(), &f].concat())?;
            match on {
                ParkOn::Channel => gate_rx.recv()?,
                ParkOn::Mutex => drop(lock.lock()),
                ParkOn::Socket => {
                    let mut up = goway::net::dial(up_addr)?;
                    let mut b = [0u8; 2];
                    up.read_exact(&mut b)?;
                }
            }
            for f in conn {
                conn.send([b"r".as_slice(), &f].concat())?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    // The upstream connection (made only by the socket case) is accepted after "ra".
    held_then_released(run(srv), &start_tx, &format!("{on:?}"), || match on {
        ParkOn::Channel | ParkOn::Mutex => gate_tx.send(()).unwrap(),
        ParkOn::Socket => {
            let (mut up, _) = upstream.accept().unwrap();
            up.write_all(b"go").unwrap();
        }
    });
    if let Some(h) = holder {
        common::join(h);
    }
}

/// The client's side of the tests whose handler holds the reply to `a` (while `b` waits in
/// its read buffer) and then parks until `release`: `a` and `b` go in one write before the
/// handler starts; `ra` must arrive while the handler is parked, `rb` after `release`. Then
/// the client ends, and the server is stopped and its counts checked.
fn held_then_released(
    s: common::net_server::Running,
    start: &chan::Sender<()>,
    case: &str,
    release: impl FnOnce(),
) {
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    w.write_all(b"a\nb\n").unwrap();
    start.send(()).unwrap();
    let mut r = BufReader::new(c);
    assert_eq!(read_n(&mut r, 1), ["ra\n"], "{case}");
    release();
    assert_eq!(read_n(&mut r, 1), ["rb\n"], "{case}");
    w.shutdown(Shutdown::Write).unwrap();
    assert!(read_lines(&mut r).is_empty(), "{case}");
    let st = s.stop();
    assert_eq!(st.frames_out, 2, "{case}: {st:?}");
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{case}: {st:?}");
}

#[test]
fn held_replies_leave_when_the_handler_parks_on_a_channel() {
    park_case(ParkOn::Channel);
}

#[test]
fn held_replies_leave_when_the_handler_parks_on_a_mutex() {
    park_case(ParkOn::Mutex);
}

#[test]
fn held_replies_leave_when_the_handler_parks_on_a_socket() {
    park_case(ParkOn::Socket);
}

/// A goroutine the handler lends its `&Conn` to (a scoped coroutine) serves the burst: the
/// reply it holds is handed to the writer at once, since only the handler's own goroutine
/// has the park hook, and it parks before that goroutine holds anything.
#[test]
fn a_reply_held_by_a_goroutine_serving_for_the_handler_is_written() {
    setup();
    let (start_tx, start_rx) = chan::bounded::<()>(1);
    let (gate_tx, gate_rx) = chan::bounded::<()>(1);
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(move |conn| {
            let serve = || -> goway::net::server::HandlerResult {
                start_rx.recv()?;
                for f in conn {
                    conn.send([b"r".as_slice(), &f].concat())?;
                    if f == b"a" {
                        gate_rx.recv()?;
                    }
                }
                Ok(())
            };
            let mut r: Result<(), String> = Ok(());
            may::coroutine::scope(|s| {
                // SAFETY: the scope joins the coroutine before it returns, and its handle is
                // not leaked, so the borrowed `conn` outlives it.
                let h = unsafe { s.spawn(|| serve().map_err(|e| e.to_string())) };
                r = h.join();
            });
            r?;
            Ok(())
        })
        .bind()
        .unwrap();
    held_then_released(run(srv), &start_tx, "scoped", || gate_tx.send(()).unwrap());
}

/// An unbuffered write queue, a goroutine queueing with `ConnSender::send_timeout` and
/// timeouts so short that it often gives up while a writer is waiting for its frame, and a
/// handler that holds a burst's replies and parks in the middle of each burst: every reply
/// of the handler arrives, in order (a writer left waiting for a sender that gave up is
/// nudged to look at the carry), and every goroutine ends.
#[test]
fn senders_giving_up_on_an_unbuffered_queue_never_strand_held_replies() {
    setup();
    const BURSTS: usize = 60;
    const BURST: usize = 10;
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .config({
            let mut cfg = Config::default();
            cfg.write_queue = 0;
            cfg
        })
        .handler(|conn| {
            let other = conn.sender();
            let (stop_tx, stop_rx) = chan::bounded::<()>(0);
            let spammer = goway::go!(move || {
                let mut i = 0u64;
                // Until the handler drops `stop_tx` (closed) at the client's end.
                while let Err(goway::chan::TryRecvError::Empty) = stop_rx.try_recv() {
                    let t = Duration::from_micros(i % 40);
                    if let Err(goway::chan::SendTimeoutError::Closed(_)) =
                        other.send_timeout(b"x".to_vec(), t)
                    {
                        return;
                    }
                    i += 1;
                }
            });
            let (ping_tx, ping_rx) = chan::bounded::<()>(0);
            let (pong_tx, pong_rx) = chan::bounded::<()>(0);
            let echo = goway::go!(move || {
                for () in ping_rx {
                    if pong_tx.send(()).is_err() {
                        return;
                    }
                }
            });
            for f in conn {
                conn.send([b"r".as_slice(), &f].concat())?;
                if f.ends_with(b"5") {
                    // Parks with the burst's first replies held.
                    ping_tx.send(())?;
                    pong_rx.recv()?;
                }
            }
            drop(stop_tx);
            drop(ping_tx);
            let _ = spammer.join();
            let _ = echo.join();
            Ok(())
        })
        .bind()
        .unwrap();
    let s = run(srv);
    let c = client(s.addr);
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    for b in 0..BURSTS {
        let burst: String = (0..BURST).map(|i| format!("{b}-{i}\n")).collect();
        w.write_all(burst.as_bytes()).unwrap();
        let mut got = Vec::new();
        while got.len() < BURST {
            let mut line = String::new();
            let n = r.read_line(&mut line).expect("a reply (none stranded)");
            assert!(n > 0, "EOF in burst {b}");
            if line != "x\n" {
                got.push(line);
            }
        }
        let want: Vec<String> = (0..BURST).map(|i| format!("r{b}-{i}\n")).collect();
        assert_eq!(got, want, "burst {b}");
    }
    w.shutdown(Shutdown::Write).unwrap();
    assert!(read_lines(&mut r).iter().all(|l| l == "x\n"));
    let st = s.stop();
    assert_eq!(st.closed_by[CloseReason::Eof], 1, "{st:?}");
}
