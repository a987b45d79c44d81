//! goway::tls over loopback: round trips, mTLS, SNI, ALPN, certificate errors, non-TLS peers,
//! handshake timeouts and deadlines, slowloris on the handshake, split halves, the end of a
//! session with and without close_notify, and certificate reload. Certificates are made at
//! test time (tests/common/tls.rs).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use goway::chan;
use goway::tls::{self, ClientAuth, ClientConfig, Listener, ServerConfig, TlsErrorKind, TlsStream};

mod common;
use common::tls::{Ca, tls_kind};
use common::{WATCHDOG, join};

/// A listener on a free port; each accepted stream goes to `serve` in its own goroutine, and
/// its handshake's outcome is reported on the returned channel.
fn serve_with(
    ln: Listener,
    serve: impl Fn(TlsStream) + Send + Sync + Clone + 'static,
) -> (SocketAddr, chan::Receiver<io::Result<()>>) {
    let addr = ln.local_addr().unwrap();
    let (tx, rx) = chan::bounded(64);
    goway::go!(move || {
        while let Ok((s, _)) = ln.accept() {
            let tx = tx.clone();
            let serve = serve.clone();
            goway::go!(move || {
                let r = s.handshake();
                let ok = r.is_ok();
                let _ = tx.try_send(r);
                if ok {
                    serve(s);
                }
            });
        }
    });
    (addr, rx)
}

fn echo(mut s: TlsStream) {
    let mut buf = vec![0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = s.shutdown();
}

fn echo_server(cfg: ServerConfig) -> (SocketAddr, chan::Receiver<io::Result<()>>) {
    serve_with(Listener::bind("127.0.0.1:0", cfg).unwrap(), echo)
}

fn server_outcome(rx: &chan::Receiver<io::Result<()>>) -> io::Result<()> {
    rx.recv_timeout(WATCHDOG)
        .expect("the server reported no handshake outcome")
}

#[test]
fn round_trip_and_clean_end() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, hs) = echo_server(ca.server());
    let h = goway::go!(move || {
        let c = tls::dial(addr, &ca.client(), "localhost").unwrap();
        assert!(c.is_handshake_complete());
        assert_eq!(c.server_name().as_deref(), Some("localhost"));
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let w = payload.clone();
        // Write and read at once (the echo would fill both socket buffers otherwise).
        let (r, mut wh) = c.split();
        let writer = goway::go!(move || {
            wh.write_all(&w).unwrap();
            wh.shutdown().unwrap(); // close_notify
        });
        let mut back = Vec::new();
        let mut r = r;
        r.read_to_end(&mut back).unwrap(); // Ok(0) at the server's close_notify
        join(writer);
        assert_eq!(back, payload);
    });
    join(h);
    server_outcome(&hs).unwrap();
}

#[test]
fn mtls_accepted_and_refused() {
    let _g = common::shared();
    let ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let cfg = ca
        .server()
        .with_client_auth(ClientAuth::Require(client_ca.pool()))
        .unwrap();
    let (addr, hs) = serve_with(Listener::bind("127.0.0.1:0", cfg).unwrap(), |s| {
        // The server sees the client's certificate.
        let n = s.peer_certificates().len();
        let mut s = s;
        let _ = s.write_all(format!("{n}\n").as_bytes());
        let _ = s.shutdown();
    });

    // Accepted: a certificate from the client CA.
    let id = client_ca.issue(&["client-1"]);
    let good = ca
        .client()
        .with_client_cert_pem(id.cert.as_bytes(), id.key.as_bytes())
        .unwrap();
    let mut c = tls::dial(addr, &good, "localhost").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "1\n");
    server_outcome(&hs).unwrap();

    // Refused: no certificate. TLS 1.3 clients finish first; the refusal arrives as an alert.
    let mut c = tls::dial(addr, &ca.client(), "localhost").unwrap();
    let err = c.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::CertificateRequired),
        "{err}"
    );
    let err = server_outcome(&hs).unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::CertificateRequired),
        "{err}"
    );

    // Refused: a certificate from another CA.
    let other = Ca::new("other CA").issue(&["client-2"]);
    let bad = ca
        .client()
        .with_client_cert_pem(other.cert.as_bytes(), other.key.as_bytes())
        .unwrap();
    let mut c = tls::dial(addr, &bad, "localhost").unwrap();
    let err = c.read(&mut [0u8; 8]).unwrap_err();
    assert!(tls::TlsError::from_io(&err).unwrap().is_remote(), "{err}");
    let err = server_outcome(&hs).unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::UnknownAuthority),
        "{err}"
    );
    assert!(err.to_string().contains("unknown authority"), "{err}");
}

#[test]
fn sni_and_wrong_host() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let p = ca.issue(&["a.example", "b.example"]);
    let cfg = ServerConfig::from_pem(p.cert.as_bytes(), p.key.as_bytes()).unwrap();
    let (addr, hs) = serve_with(Listener::bind("127.0.0.1:0", cfg).unwrap(), |mut s| {
        let name = s.server_name().unwrap_or_default();
        let _ = s.write_all(name.as_bytes());
        let _ = s.shutdown();
    });
    let mut c = tls::dial(addr, &ca.client(), "b.example").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "b.example");
    server_outcome(&hs).unwrap();

    // The override in the config wins over the dialed name.
    let cfg = ca.client().with_server_name("a.example");
    let mut c = tls::dial(addr, &cfg, "127.0.0.1").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "a.example");
    server_outcome(&hs).unwrap();

    let err = tls::dial(addr, &ca.client(), "c.example").unwrap_err();
    assert_eq!(tls_kind(&err), Some(TlsErrorKind::WrongHost), "{err}");
    assert!(err.to_string().contains("not c.example"), "{err}");
    // The server hears of it by the client's alert.
    let err = server_outcome(&hs).unwrap_err();
    assert!(tls::TlsError::from_io(&err).unwrap().is_remote(), "{err}");
}

#[test]
fn unknown_authority_and_expired() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, _hs) = echo_server(ca.server());
    let err = tls::dial(addr, &Ca::new("other").client(), "localhost").unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::UnknownAuthority),
        "{err}"
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "x509: certificate signed by unknown authority"
    );

    let p = ca.issue_expired(&["localhost"]);
    let cfg = ServerConfig::from_pem(p.cert.as_bytes(), p.key.as_bytes()).unwrap();
    let (addr, _hs) = echo_server(cfg);
    let err = tls::dial(addr, &ca.client(), "localhost").unwrap_err();
    assert_eq!(tls_kind(&err), Some(TlsErrorKind::Expired), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[test]
fn alpn() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, hs) = serve_with(
        Listener::bind("127.0.0.1:0", ca.server().with_alpn(&["h2", "http/1.1"])).unwrap(),
        |mut s| {
            let p = s.alpn_protocol().unwrap_or_default();
            let _ = s.write_all(&p);
            let _ = s.shutdown();
        },
    );
    let cfg = ca.client().with_alpn(&["http/1.1"]);
    let mut c = tls::dial(addr, &cfg, "localhost").unwrap();
    assert_eq!(c.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "http/1.1");
    server_outcome(&hs).unwrap();

    let cfg = ca.client().with_alpn(&["spdy/1"]);
    let err = tls::dial(addr, &cfg, "localhost").unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::NoApplicationProtocol),
        "{err}"
    );
    let err = server_outcome(&hs).unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::NoApplicationProtocol),
        "{err}"
    );
}

/// Garbage and plain HTTP instead of a ClientHello: each is a clear error on its connection,
/// and the accept loop goes on serving others.
#[test]
fn not_tls_peers() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, hs) = echo_server(ca.server());
    for (input, kind) in [
        (
            &b"\x00\x01garbage garbage garbage\r\n"[..],
            TlsErrorKind::NotTls,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            TlsErrorKind::HttpToHttps,
        ),
    ] {
        let mut raw = common::client(addr);
        raw.write_all(input).unwrap();
        let err = server_outcome(&hs).unwrap_err();
        assert_eq!(tls_kind(&err), Some(kind), "{err}");
        // The server closes the connection.
        raw.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest);
    }
    let mut c = tls::dial(addr, &ca.client(), "localhost").unwrap();
    c.write_all(b"still here").unwrap();
    let mut buf = [0u8; 10];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
}

/// A client that sends half a ClientHello and stops: the server's handshake timeout ends it.
#[test]
fn handshake_timeout_on_half_a_hello() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let mut ln = Listener::bind("127.0.0.1:0", ca.server()).unwrap();
    assert_eq!(ln.handshake_timeout(), Some(Duration::from_secs(10)));
    ln.set_handshake_timeout(Some(Duration::from_millis(300)));
    let (addr, hs) = echo_server_on(ln);
    let mut raw = common::client(addr);
    // A handshake record header announcing 512 bytes, and 4 of them.
    raw.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .unwrap();
    let err = server_outcome(&hs).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
}

fn echo_server_on(ln: Listener) -> (SocketAddr, chan::Receiver<io::Result<()>>) {
    serve_with(ln, echo)
}

/// Slowloris on the handshake: many connections that never say a word do not hold up a
/// client that does the handshake.
#[test]
fn silent_connections_do_not_block_others() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, _hs) = echo_server(ca.server());
    let silent: Vec<_> = (0..200).map(|_| common::client(addr)).collect();
    let mut c = tls::dial_timeout(addr, &ca.client(), "localhost", WATCHDOG).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    drop(silent);
}

/// The user's deadlines bound the handshake's reads; its failure is the stream's from then on.
#[test]
fn deadline_during_handshake() {
    let _g = common::shared();
    let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let h = goway::go!(move || {
        let tcp = goway::net::dial(addr).unwrap();
        let c = TlsStream::client(tcp, &ClientConfig::new(), "localhost").unwrap();
        c.set_read_deadline(Some(Instant::now() + Duration::from_millis(200)));
        let err = c.handshake().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        c.set_read_deadline(None);
        let err = (&c).write(b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    });
    join(h);
    drop(ln);
}

/// A reader blocked in one goroutine does not hold up a writer in another.
#[test]
fn split_halves_from_two_goroutines() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, _hs) = echo_server(ca.server());
    let (r, w) = tls::dial(addr, &ca.client(), "localhost").unwrap().split();
    let (tx, rx) = chan::bounded::<Vec<u8>>(1);
    let reader = goway::go!(move || {
        let mut r = r;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while got.len() < 100 * 6 {
            let n = r.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        tx.send(got).unwrap();
    });
    let writer = goway::go!(move || {
        let mut w = w;
        for i in 0..100 {
            // The reader is parked in its read the whole time.
            w.write_all(format!("{i:05}\n").as_bytes()).unwrap();
        }
        w
    });
    let got = rx.recv_timeout(WATCHDOG).unwrap();
    let want: String = (0..100).map(|i| format!("{i:05}\n")).collect();
    assert_eq!(String::from_utf8(got).unwrap(), want);
    join(reader);
    let _w = join(writer);
}

/// A peer that closes the TCP connection without close_notify: the read fails with
/// `UnexpectedEof` (Go's io.ErrUnexpectedEOF), not a clean end.
#[test]
fn close_without_close_notify_is_unexpected_eof() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, _hs) = serve_with(
        Listener::bind("127.0.0.1:0", ca.server()).unwrap(),
        |mut s| {
            let _ = s.write_all(b"partial");
            let _ = s.get_ref().shutdown(std::net::Shutdown::Both);
        },
    );
    let mut c = tls::dial(addr, &ca.client(), "localhost").unwrap();
    let mut buf = Vec::new();
    let err = c.read_to_end(&mut buf).unwrap_err();
    assert_eq!(buf, b"partial");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

/// `close` sends close_notify: the peer reads a clean end.
#[test]
fn close_sends_close_notify() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let (addr, _hs) = serve_with(
        Listener::bind("127.0.0.1:0", ca.server()).unwrap(),
        |mut s| {
            let _ = s.write_all(b"bye");
            let _ = s.close();
        },
    );
    let mut c = tls::dial(addr, &ca.client(), "localhost").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    assert_eq!(s, "bye");
}

/// A reloaded certificate applies to the next handshakes.
#[test]
fn certificate_reload() {
    let _g = common::shared();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let cfg = old_ca.server();
    let (addr, _hs) = echo_server(cfg.clone());
    tls::dial(addr, &old_ca.client(), "localhost").unwrap();
    let p = new_ca.issue(&["localhost"]);
    cfg.reload_pem(p.cert.as_bytes(), p.key.as_bytes()).unwrap();
    tls::dial(addr, &new_ca.client(), "localhost").unwrap();
    let err = tls::dial(addr, &old_ca.client(), "localhost").unwrap_err();
    assert_eq!(
        tls_kind(&err),
        Some(TlsErrorKind::UnknownAuthority),
        "{err}"
    );
    // A bad reload keeps the certificate.
    assert!(cfg.reload_pem(b"junk", b"junk").is_err());
    tls::dial(addr, &new_ca.client(), "localhost").unwrap();
}

#[test]
fn config_errors() {
    let ca = Ca::new("test CA");
    let a = ca.issue(&["localhost"]);
    let b = ca.issue(&["localhost"]);
    let err = ServerConfig::from_pem(a.cert.as_bytes(), b.key.as_bytes()).unwrap_err();
    assert_eq!(tls_kind(&err), Some(TlsErrorKind::Config), "{err}");
    let err =
        ServerConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}
