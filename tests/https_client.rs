//! `goway::http::Client` over HTTPS through goway::tls: against goway's own TLS server with a
//! CA made at test time (tests/common/tls.rs), keep-alive reuse over TLS, certificate
//! errors with Go's texts, the handshake timeout, and redirects between http and https.
//!
//! Run: `cargo test --release --test https_client`.

use std::io::Write;
use std::time::Duration;

use goway::go;
use goway::http::{
    Client, ClientError, Request, ResponseWriter, ServeMux, Server, Transport, TransportConfig,
};
use goway::tls::{ServerConfig, TlsErrorKind};

mod common;
use common::tls::Ca;
use common::{http_server, join};

/// `/hello` answers `hello over <over>`.
fn mux(over: &'static str) -> ServeMux {
    let mut mux = ServeMux::new();
    mux.handle("/hello", move |_r: &Request, w: &mut ResponseWriter| {
        let _ = write!(w, "hello over {over}");
    });
    mux
}

fn tls_server(cfg: ServerConfig, mux: ServeMux) -> http_server::Running {
    http_server::run(Server::builder().tls(cfg).handler(mux))
}

/// A client trusting `ca` only.
fn client_for(ca: &Ca, cfg: TransportConfig) -> Client {
    Client::new().with_transport(Transport::new(TransportConfig {
        tls: Some(ca.client()),
        ..cfg
    }))
}

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    join(go!(f))
}

#[test]
fn keep_alive_reuses_one_tls_connection() {
    let ca = Ca::new("https_client test CA");
    let srv = tls_server(ca.server(), mux("tls"));
    let client = client_for(&ca, TransportConfig::default());
    let (c, url) = (
        client.clone(),
        format!("https://localhost:{}/hello", srv.addr.port()),
    );
    run(move || {
        for _ in 0..20 {
            let resp = c.get(&url).expect("get");
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.text().unwrap(), "hello over tls");
        }
    });
    assert_eq!(srv.handle.stats().accepted, 1, "20 requests, 1 connection");
    let st = client.transport().stats();
    assert_eq!((st.dials, st.reused, st.idle), (1, 19, 1), "{st:?}");
    client.transport().close_idle_connections();
    srv.stop();
}

#[test]
fn certificate_errors_are_typed_with_gos_texts() {
    let ca = Ca::new("https_client test CA");
    let pair = ca.issue(&["example.com"]);
    let cfg = ServerConfig::from_pem(pair.cert.as_bytes(), pair.key.as_bytes()).unwrap();
    let srv = tls_server(cfg, mux("tls"));
    let port = srv.addr.port();
    let client = client_for(&ca, TransportConfig::default());
    let errs = run(move || {
        // Trusted CA, but the certificate is for another name.
        let wrong_host = client
            .get(&format!("https://127.0.0.1:{port}/hello"))
            .unwrap_err();
        // The default client trusts the system's roots, not the test CA.
        let unknown = goway::http::get(&format!("https://127.0.0.1:{port}/hello")).unwrap_err();
        (wrong_host, unknown)
    });
    let (wrong_host, unknown) = errs;
    assert!(
        matches!(wrong_host, ClientError::Tls { .. }),
        "{wrong_host:?}"
    );
    assert_eq!(
        wrong_host.tls_error().map(|t| t.kind()),
        Some(TlsErrorKind::WrongHost)
    );
    // Go's text, names bare.
    assert_eq!(
        wrong_host.to_string(),
        "x509: certificate is valid for example.com, not 127.0.0.1"
    );
    assert!(matches!(unknown, ClientError::Tls { .. }), "{unknown:?}");
    assert_eq!(
        unknown.tls_error().map(|t| t.kind()),
        Some(TlsErrorKind::UnknownAuthority)
    );
    assert_eq!(
        unknown.to_string(),
        "x509: certificate signed by unknown authority"
    );
    assert!(!wrong_host.is_timeout() && !unknown.is_timeout());
    srv.stop();
}

#[test]
fn handshake_timeout_against_a_server_that_never_answers() {
    // The kernel completes the TCP connection into the backlog; nobody reads the ClientHello.
    let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/", ln.local_addr().unwrap());
    let ca = Ca::new("https_client test CA");
    let client = client_for(
        &ca,
        TransportConfig {
            tls_handshake_timeout: Some(Duration::from_millis(300)),
            ..TransportConfig::default()
        },
    );
    let u = url.clone();
    let err = run(move || client.get(&u).unwrap_err());
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.to_string(), "net/http: TLS handshake timeout");
    // The client's own timeout also bounds the handshake (here before the transport's 10 s).
    let client =
        client_for(&ca, TransportConfig::default()).with_timeout(Duration::from_millis(300));
    let err = run(move || client.get(&url).unwrap_err());
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "net/http: request canceled (Client.Timeout exceeded)"
    );
    drop(ln);
}

#[test]
fn plain_http_port_is_a_tls_error() {
    let plain = http_server::run(Server::builder().handler(mux("tcp")));
    let ca = Ca::new("https_client test CA");
    let client = client_for(&ca, TransportConfig::default());
    let url = format!("https://{}/hello", plain.addr);
    let err = run(move || client.get(&url).unwrap_err());
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    plain.stop();
}

#[test]
fn redirects_between_http_and_https() {
    let ca = Ca::new("https_client test CA");
    let secure_port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let plain_port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let mut pm = mux("tcp");
    let sp = secure_port.clone();
    pm.handle("/to-https", move |r: &Request, w: &mut ResponseWriter| {
        let port = sp.load(std::sync::atomic::Ordering::SeqCst);
        goway::http::redirect(r, w, &format!("https://localhost:{port}/to-http"), 302);
    });
    let plain = http_server::run(Server::builder().handler(pm));
    plain_port.store(plain.addr.port(), std::sync::atomic::Ordering::SeqCst);
    let mut sm = mux("tls");
    let pp = plain_port.clone();
    sm.handle("/to-http", move |r: &Request, w: &mut ResponseWriter| {
        let port = pp.load(std::sync::atomic::Ordering::SeqCst);
        goway::http::redirect(r, w, &format!("http://127.0.0.1:{port}/hello"), 302);
    });
    let secure = tls_server(ca.server(), sm);
    secure_port.store(secure.addr.port(), std::sync::atomic::Ordering::SeqCst);
    let client = client_for(&ca, TransportConfig::default());
    let c = client.clone();
    let url = format!("http://127.0.0.1:{}/to-https", plain.addr.port());
    let (final_url, body) = run(move || {
        let resp = c.get(&url).expect("get");
        (resp.url().to_string(), resp.text().unwrap())
    });
    assert_eq!(body, "hello over tcp");
    assert!(final_url.starts_with("http://127.0.0.1:"), "{final_url}");
    // One connection per scheme and host, both kept.
    let st = client.transport().stats();
    assert_eq!((st.dials, st.idle), (2, 2), "{st:?}");
    client.transport().close_idle_connections();
    plain.stop();
    secure.stop();
}

#[test]
fn kept_alive_connection_closed_without_close_notify_is_retried() {
    // A raw TLS server: the first connection answers one request, then ends with a bare FIN
    // (no close_notify) while the client holds it idle; the second one answers every
    // request. The client's next request meets the end of the data before any byte of its
    // response (UnexpectedEof from TLS) and goes again on a new connection, as Go's does.
    use goway::net::TcpListener;
    use goway::tls::TlsStream;
    use std::io::Read;
    use std::net::Shutdown;

    fn serve_one(s: &TlsStream) -> bool {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match (&mut &*s).read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        (&mut &*s)
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_ok()
    }

    let ca = Ca::new("https_client test CA");
    let cfg = ca.server();
    let ln = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = ln.local_addr().expect("addr").port();
    let (fin_tx, fin_rx) = goway::chan::bounded::<()>(1);
    let server = go!(move || {
        let (tcp, _) = ln.accept().expect("accept 1");
        let s = TlsStream::server(tcp, &cfg).expect("tls 1");
        assert!(serve_one(&s), "first request");
        s.get_ref().shutdown(Shutdown::Write).expect("fin");
        fin_tx.send(()).expect("signal");
        // Hold the socket open (no RST) until the client has given up on it.
        let mut sink = [0u8; 1024];
        while matches!((&mut &s).read(&mut sink), Ok(n) if n > 0) {}
        drop(s);
        let (tcp, _) = ln.accept().expect("accept 2");
        let s = TlsStream::server(tcp, &cfg).expect("tls 2");
        while serve_one(&s) {}
    });
    let client = client_for(&ca, TransportConfig::default());
    let (c, url) = (client.clone(), format!("https://localhost:{port}/"));
    run(move || {
        assert_eq!(c.get(&url).expect("first").text().unwrap(), "ok");
        fin_rx
            .recv_timeout(common::WATCHDOG)
            .expect("server sent its FIN");
        assert_eq!(c.get(&url).expect("second").text().unwrap(), "ok");
    });
    let st = client.transport().stats();
    assert_eq!((st.dials, st.retries), (2, 1), "{st:?}");
    client.transport().close_idle_connections();
    join(server);
}
