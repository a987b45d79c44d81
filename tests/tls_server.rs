//! net::Server serving TLS (`Builder::tls`): frames round trip, handshake failures close the
//! connection with `CloseReason::TlsHandshake` and leave the accept loop serving, the
//! handshake timeout ends silent clients (which never hold up others), 1,000 concurrent TLS
//! connections, and a graceful shutdown that sends close_notify; http::Server serving HTTPS,
//! to goway's client, `curl --cacert` and `openssl s_client` (skipped when not installed).

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use goway::net::Server;
use goway::net::codec::LinesCodec;
use goway::net::server::CloseReason;
use goway::tls::{self, ServerConfig};

mod common;
use common::net_server::{Running, run};
use common::tls::Ca;
use common::{WATCHDOG, join, wait_until};

fn tls_echo(cfg: ServerConfig, handshake_timeout: Duration) -> Running {
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .tls(cfg)
        .tls_handshake_timeout(handshake_timeout)
        .handler(|conn| {
            for line in conn {
                conn.send(line)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    run(srv)
}

fn line(c: &mut BufReader<tls::TlsStream>) -> String {
    let mut s = String::new();
    c.read_line(&mut s).unwrap();
    s
}

#[test]
fn frames_round_trip_over_tls() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_echo(ca.server(), WATCHDOG);
    let addr = srv.addr;
    let h = goway::go!(move || {
        let c = tls::dial(addr, &ca.client(), "localhost").unwrap();
        let mut c = BufReader::new(c);
        for i in 0..50 {
            c.get_mut()
                .write_all(format!("hello {i}\n").as_bytes())
                .unwrap();
            assert_eq!(line(&mut c), format!("hello {i}\n"));
        }
        // A frame bigger than a TLS record (16 KiB), pipelined with a small one.
        let big = "x".repeat(100_000);
        c.get_mut()
            .write_all(format!("{big}\nsmall\n").as_bytes())
            .unwrap();
        assert_eq!(line(&mut c), format!("{big}\n"));
        assert_eq!(line(&mut c), "small\n");
        c.get_mut().shutdown().unwrap();
        let mut rest = Vec::new();
        // The server's close_notify: a clean end.
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
    join(h);
    let s = srv.stop();
    assert_eq!(s.frames_in, 52, "{s:?}");
    assert_eq!(s.closed_by[CloseReason::Eof], 1, "{s:?}");
}

/// Garbage, plain HTTP and an untrusted client: each closes its connection with
/// `TlsHandshake`; the server keeps serving.
#[test]
fn failed_handshakes_are_counted_and_harmless() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_echo(ca.server(), WATCHDOG);
    let addr = srv.addr;
    for input in [&b"\x00garbage\r\n"[..], b"GET / HTTP/1.1\r\n\r\n"] {
        let mut raw = common::client(addr);
        raw.write_all(input).unwrap();
        raw.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut rest = Vec::new();
        let _ = raw.read_to_end(&mut rest); // closed by the server
    }
    let err = tls::dial(addr, &Ca::new("other").client(), "localhost").unwrap_err();
    assert_eq!(
        common::tls::tls_kind(&err),
        Some(tls::TlsErrorKind::UnknownAuthority)
    );
    let h = srv.handle.clone();
    wait_until("3 failed handshakes", WATCHDOG, || {
        h.stats().closed_by[CloseReason::TlsHandshake] == 3
    });
    let mut c = BufReader::new(tls::dial(addr, &ca.client(), "localhost").unwrap());
    c.get_mut().write_all(b"ok\n").unwrap();
    assert_eq!(line(&mut c), "ok\n");
    drop(c);
    let s = srv.stop();
    assert_eq!(s.closed_by[CloseReason::TlsHandshake], 3, "{s:?}");
}

/// Silent clients (slowloris on the handshake) are closed by the handshake timeout, and
/// meanwhile never hold up a client that does the handshake.
#[test]
fn handshake_timeout_and_slowloris() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_echo(ca.server(), Duration::from_millis(500));
    let addr = srv.addr;
    let mut silent: Vec<_> = (0..100).map(|_| common::client(addr)).collect();
    // Half a ClientHello on one of them.
    silent[0]
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut c = BufReader::new(tls::dial(addr, &ca.client(), "localhost").unwrap());
    c.get_mut().write_all(b"through\n").unwrap();
    assert_eq!(line(&mut c), "through\n");
    let h = srv.handle.clone();
    wait_until("the silent clients timed out", WATCHDOG, || {
        h.stats().closed_by[CloseReason::TlsHandshake] == 100
    });
    for s in &mut silent {
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    drop(c);
    srv.stop();
}

/// 1,000 TLS connections open at once, each echoing a line.
#[test]
fn a_thousand_concurrent_tls_connections() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_echo(ca.server(), WATCHDOG);
    let addr = srv.addr;
    let client = ca.client();
    let (tx, rx) = goway::chan::bounded(1000);
    let mut hs = Vec::new();
    for i in 0..1000 {
        let client = client.clone();
        let tx = tx.clone();
        hs.push(goway::go!(move || {
            let mut c = BufReader::new(tls::dial(addr, &client, "localhost").unwrap());
            c.get_mut().write_all(format!("{i}\n").as_bytes()).unwrap();
            assert_eq!(line(&mut c), format!("{i}\n"));
            tx.send(()).unwrap();
            // Stay open until every connection is up.
            c
        }));
    }
    for _ in 0..1000 {
        rx.recv_timeout(WATCHDOG * 3).expect("a connection stalled");
    }
    assert_eq!(srv.handle.stats().active, 1000);
    let conns: Vec<_> = hs.into_iter().map(join).collect();
    drop(conns);
    let s = srv.stop();
    assert_eq!(s.accepted, 1000, "{s:?}");
    assert_eq!(s.frames_in, 1000, "{s:?}");
}

/// A graceful shutdown ends each session with close_notify: the client reads a clean end.
#[test]
fn graceful_shutdown_sends_close_notify() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = tls_echo(ca.server(), WATCHDOG);
    let mut c = BufReader::new(tls::dial(srv.addr, &ca.client(), "localhost").unwrap());
    c.get_mut().write_all(b"before\n").unwrap();
    assert_eq!(line(&mut c), "before\n");
    let s = srv.stop();
    assert_eq!(s.closed_by[CloseReason::Shutdown], 1, "{s:?}");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("a clean end (close_notify), not an unexpected EOF");
    assert!(rest.is_empty());
}

// ----- http::Server over TLS ------------------------------------------------------------------

fn https_hello(ca: &Ca) -> common::http_server::Running {
    use goway::http::{Request, ResponseWriter};
    common::http_server::run(goway::http::Server::builder().tls(ca.server()).handler(
        |r: &Request, w: &mut ResponseWriter| {
            let _ = write!(w, "hello over TLS: {}", r.path());
        },
    ))
}

fn get(c: &mut BufReader<tls::TlsStream>, path: &str) -> String {
    c.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    let mut len = 0;
    loop {
        let l = line(c);
        if l == "\r\n" {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[test]
fn https_keep_alive_and_alpn() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = https_hello(&ca);
    let client = ca.client().with_alpn(&["h2", "http/1.1"]);
    let c = tls::dial(srv.addr, &client, "localhost").unwrap();
    assert_eq!(c.alpn_protocol().as_deref(), Some(&b"http/1.1"[..]));
    let mut c = BufReader::new(c);
    assert_eq!(get(&mut c, "/a"), "hello over TLS: /a");
    assert_eq!(get(&mut c, "/b"), "hello over TLS: /b");
    drop(c);
    srv.stop();
}

/// Plain HTTP to the HTTPS port gets Go's 400 reply.
#[test]
fn http_to_https_gets_400() {
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let srv = https_hello(&ca);
    let mut raw = common::client(srv.addr);
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    raw.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut reply = String::new();
    let _ = raw.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{reply:?}"
    );
    assert!(reply.contains("Client sent an HTTP request to an HTTPS server"));
    srv.stop();
}

/// A temporary file holding `text`, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("goway-tls-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn have(tool: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

#[test]
fn curl_with_cacert() {
    if !have("curl") {
        return;
    }
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let cafile = TempFile::new("curl-ca.pem", ca.pem());
    let srv = https_hello(&ca);
    let port = srv.addr.port();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&cafile.0)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/curl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello over TLS: /curl"
    );
    // Without the CA, curl refuses the server.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    srv.stop();
}

#[test]
fn openssl_s_client() {
    if !have("openssl") {
        return;
    }
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let cafile = TempFile::new("openssl-ca.pem", ca.pem());
    let srv = https_hello(&ca);
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-servername",
            "localhost",
        ])
        .args([
            "-alpn",
            "http/1.1",
            "-connect",
            &srv.addr.to_string(),
            "-CAfile",
        ])
        .arg(&cafile.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /openssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = common::child::finish(child, "openssl s_client", WATCHDOG, |_| {});
    let text = out.describe();
    assert!(text.contains("hello over TLS: /openssl"), "{text}");
    srv.stop();
}
