//! Hostile clients against net::Server serving TLS, over real sockets: a client that
//! completes the handshake and never reads while the server writes (the write queue bound
//! applies to TLS as to plain TCP), a ClientHello trickled a byte at a time (the handshake
//! timeout ends it), a request trickled after the handshake (the frame timeout ends it),
//! records that look like TLS but are not, a handshake flood beyond `max_connections`, and a
//! reset in the middle of a large response. After each the server still serves a
//! well-behaved client, and every connection and goroutine is released.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::{Builder, CloseReason};
use goway::tls::{self, ClientConfig, ServerConfig};

mod common;
use common::net_server::{Running, run};
use common::tls::Ca;
use common::{WATCHDOG, join, join_thread, wait_until};

/// Replies to `big N` with N lines of 64 KiB, echoes any other line.
fn tls_server(cfg: ServerConfig, edit: impl FnOnce(Builder<(), ()>) -> Builder<(), ()>) -> Running {
    let b = edit(Server::builder())
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .tls(cfg)
        .handler(|conn| {
            for line in conn {
                if let Some(n) = line.strip_prefix(b"big ") {
                    let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
                    for _ in 0..n {
                        conn.send(vec![b'x'; 64 << 10])?;
                    }
                } else {
                    conn.send(line)?;
                }
            }
            Ok(())
        });
    run(b.bind().unwrap())
}

/// One echoed line over a fresh TLS connection: the server still serves.
fn still_serves(addr: SocketAddr, client: &ClientConfig) {
    let client = client.clone();
    let h = goway::go!(move || {
        let c = tls::dial(addr, &client, "localhost").unwrap();
        c.set_deadline(Some(Instant::now() + WATCHDOG));
        let mut c = BufReader::new(c);
        c.get_mut().write_all(b"still here\n").unwrap();
        let mut s = String::new();
        c.read_line(&mut s).unwrap();
        assert_eq!(s, "still here\n");
    });
    join(h);
}

/// Makes closing `fd` send a reset (SO_LINGER with a zero timeout).
fn reset_on_close(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is an open socket owned by the caller for the length of this call, and
    // the option value is a `linger` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// A ClientHello as rustls's client writes it.
fn client_hello(client: &ClientConfig) -> Vec<u8> {
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(client.rustls().clone(), name).unwrap();
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).unwrap();
    }
    out
}

/// Handshake done, then requests for 64 MiB of replies and never a byte read: the server's
/// queue for the connection stays within `write_queue_bytes` (plus the reply being written)
/// and the write timeout closes it.
#[test]
fn client_that_never_reads_is_bounded_and_closed() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    const QUEUE: usize = 512 << 10;
    let srv = tls_server(ca.server(), |b| {
        b.write_queue_bytes(QUEUE)
            .write_timeout(Duration::from_millis(500))
    });
    let addr = srv.addr;
    let client = ca.client();
    let (done_tx, done_rx) = goway::chan::bounded::<()>(1);
    let hog = goway::go!(move || {
        let c = tls::dial(addr, &client, "localhost").unwrap();
        c.handshake().unwrap();
        (&c).write_all(b"big 1024\n").unwrap();
        // Hold the connection, unread, until the test has seen it closed.
        let _ = done_rx.recv();
        drop(c);
    });
    let h = srv.handle.clone();
    wait_until("the write timeout to close the hog", WATCHDOG, || {
        h.stats().closed_by[CloseReason::WriteTimeout] == 1
    });
    done_tx.send(()).unwrap();
    join(hog);
    still_serves(addr, &ca.client());
    let s = srv.stop();
    // A 64 KiB frame over the limit is the most one connection holds.
    assert!(
        s.queued_bytes_peak <= (QUEUE + (64 << 10) + 1) as u64,
        "queued {} bytes for a client that never reads: {s:?}",
        s.queued_bytes_peak
    );
    assert!(s.bytes_out < 64 << 20, "{s:?}");
    assert_eq!(s.closed_by[CloseReason::WriteTimeout], 1, "{s:?}");
}

/// A ClientHello trickled one byte every 50 ms: the handshake timeout closes it, and a
/// client doing its handshake meanwhile is served.
#[test]
fn trickled_client_hello_hits_the_handshake_timeout() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_server(ca.server(), |b| {
        b.tls_handshake_timeout(Duration::from_millis(700))
    });
    let addr = srv.addr;
    let hello = client_hello(&ca.client());
    let start = Instant::now();
    let trickler = std::thread::spawn(move || {
        let mut c = common::client(addr);
        for b in &hello {
            // The trickle's pace, not a synchronisation: the server must cut it short.
            std::thread::sleep(Duration::from_millis(50));
            if c.write_all(std::slice::from_ref(b)).is_err() {
                return true;
            }
            if start.elapsed() > WATCHDOG {
                return false;
            }
        }
        // All of it sent before the timeout: only possible on a stalled machine.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        true
    });
    still_serves(addr, &ca.client());
    let h = srv.handle.clone();
    wait_until("the handshake timeout", WATCHDOG, || {
        h.stats().closed_by[CloseReason::TlsHandshake] == 1
    });
    assert!(
        join_thread(trickler),
        "the trickled handshake was never cut"
    );
    let s = srv.stop();
    assert_eq!(s.closed_by[CloseReason::TlsHandshake], 1, "{s:?}");
    assert_eq!(s.frames_in, 1, "{s:?}");
}

/// After the handshake, a request sent one byte per TLS record every 50 ms: the frame
/// timeout closes it.
#[test]
fn trickled_request_after_the_handshake_hits_the_frame_timeout() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_server(ca.server(), |b| b.frame_timeout(Duration::from_millis(500)));
    let addr = srv.addr;
    let client = ca.client();
    let h = goway::go!(move || {
        let c = tls::dial(addr, &client, "localhost").unwrap();
        c.handshake().unwrap();
        let line = vec![b'a'; 1000];
        let start = Instant::now();
        for b in &line {
            // The trickle's pace, not a synchronisation.
            goway::time::sleep(Duration::from_millis(50));
            if (&c).write_all(std::slice::from_ref(b)).is_err() || start.elapsed() > WATCHDOG {
                break;
            }
        }
        // The server closed: a read sees the end (close_notify or the TCP close).
        c.set_read_deadline(Some(Instant::now() + WATCHDOG));
        let mut rest = Vec::new();
        let r = (&c).read_to_end(&mut rest);
        assert!(rest.is_empty(), "{r:?}");
        start.elapsed()
    });
    let hs = srv.handle.clone();
    wait_until("the frame timeout", WATCHDOG, || {
        hs.stats().closed_by[CloseReason::FrameTimeout] == 1
    });
    let took = join(h);
    assert!(took < WATCHDOG, "{took:?}");
    still_serves(addr, &ca.client());
    let s = srv.stop();
    assert_eq!(s.closed_by[CloseReason::FrameTimeout], 1, "{s:?}");
}

/// Records that look like TLS but are not (a handshake record of garbage, an alert of
/// garbage, a record claiming 16 MiB, random bytes): each is counted as a failed handshake
/// and closed, and the accept loop goes on serving.
#[test]
fn garbage_records_fail_the_handshake_and_nothing_else() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_server(ca.server(), |b| b);
    let addr = srv.addr;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let inputs: Vec<Vec<u8>> = vec![
        [&[0x16, 0x03, 0x01, 0x00, 0x10][..], &[0xff; 16]].concat(),
        vec![0x15, 0x03, 0x03, 0x00, 0x02, 0xde, 0xad],
        [&[0x16, 0x03, 0x03, 0xff, 0xff][..], &[0u8; 64]].concat(),
        [&[0x16][..], &random].concat(),
        [&[0xab][..], &random].concat(),
    ];
    let n = inputs.len() as u64;
    for input in inputs {
        let mut raw = common::client(addr);
        let _ = raw.write_all(&input); // the server may close before taking it all
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest); // an alert, or nothing; then the close
        assert!(rest.len() < 64, "{} bytes back", rest.len());
    }
    let h = srv.handle.clone();
    wait_until("every garbage connection closed", WATCHDOG, || {
        h.stats().closed_by[CloseReason::TlsHandshake] == n
    });
    still_serves(addr, &ca.client());
    let s = srv.stop();
    assert_eq!(s.closed_by[CloseReason::TlsHandshake], n, "{s:?}");
    assert_eq!(s.frames_in, 1, "{s:?}");
}

/// 60 clients handshaking at once against `max_connections(20)`: the server never serves
/// more than 20 at a time, refuses the rest (counted in `rejected`), and serves a
/// well-behaved client once the flood is gone.
#[test]
fn handshake_flood_beyond_max_connections() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    const MAX: usize = 20;
    let srv = tls_server(ca.server(), |b| b.max_connections(MAX));
    let addr = srv.addr;
    let (tx, rx) = goway::chan::bounded::<Option<tls::TlsStream>>(64);
    let mut hs = Vec::new();
    for _ in 0..60 {
        let (tx, client) = (tx.clone(), ca.client());
        hs.push(goway::go!(move || {
            let held = tls::dial_timeout(addr, &client, "localhost", WATCHDOG)
                .ok()
                .and_then(|c| {
                    c.set_deadline(Some(Instant::now() + WATCHDOG));
                    let mut r = BufReader::new(c);
                    r.get_mut().write_all(b"hi\n").ok()?;
                    let mut s = String::new();
                    r.read_line(&mut s).ok()?;
                    (s == "hi\n").then(|| r.into_inner())
                });
            let _ = tx.send(held);
        }));
    }
    drop(tx);
    let mut served = Vec::new();
    for _ in 0..60 {
        if let Some(c) = rx.recv_timeout(WATCHDOG).expect("a flood client finished") {
            served.push(c);
        }
    }
    for h in hs {
        join(h);
    }
    let s = srv.handle.stats();
    assert!(
        served.len() <= MAX,
        "{} served at once: {s:?}",
        served.len()
    );
    assert!(!served.is_empty(), "{s:?}");
    assert_eq!(s.rejected as usize + served.len(), 60, "{s:?}");
    let held = served.len();
    drop(served);
    let h = srv.handle.clone();
    wait_until("the flood's connections closed", WATCHDOG, || {
        h.stats().active == 0
    });
    still_serves(addr, &ca.client());
    let s = srv.stop();
    // The flood's connections served, and the well-behaved client.
    assert_eq!(s.accepted as usize, held + 1, "{s:?}");
}

/// A client that asks for 64 MiB, reads a little, then resets the connection (SO_LINGER 0):
/// the server closes it as a reset (or, if the reset reaches it as a write error, an I/O
/// error) and goes on serving.
#[test]
fn reset_in_the_middle_of_a_response() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_server(ca.server(), |b| b);
    let addr = srv.addr;
    let client = ca.client();
    let h = goway::go!(move || {
        let c = tls::dial(addr, &client, "localhost").unwrap();
        c.set_deadline(Some(Instant::now() + WATCHDOG));
        (&c).write_all(b"big 1024\n").unwrap();
        let mut buf = vec![0u8; 256 << 10];
        (&c).read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == b'x' || b == b'\n'));
        reset_on_close(c.get_ref().as_raw_fd());
        drop(c);
    });
    join(h);
    let hs = srv.handle.clone();
    wait_until("the reset connection closed", WATCHDOG, || {
        let s = hs.stats();
        s.closed_by[CloseReason::PeerReset] + s.closed_by[CloseReason::Io] == 1
    });
    still_serves(addr, &ca.client());
    let s = srv.stop();
    assert_eq!(
        s.closed_by[CloseReason::PeerReset] + s.closed_by[CloseReason::Io],
        1,
        "{s:?}"
    );
    assert!(s.bytes_out < 64 << 20, "{s:?}");
}
