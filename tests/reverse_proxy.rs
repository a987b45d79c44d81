//! examples/reverse_proxy.rs as a child process, in front of goway's own server (in this
//! process) and of a real Go `net/http` server (tests/go/httpserver, skipped without `go`):
//! headers (X-Forwarded-For, hop-by-hop fields removed both ways), bodies streamed both
//! ways with the proxy's memory bounded, and 502 on a dead upstream.
//!
//! Run: `cargo test --release --test reverse_proxy` (builds the example if it is missing).

use std::io::{Read, Write};

use goway::go;
use goway::http::{Client, ClientRequest, Request, RequestBody, ResponseWriter, ServeMux, Server};

mod common;
use common::example::{Example, build_example};
use common::{http_server, join};

fn upstream() -> http_server::Running {
    let mut mux = ServeMux::new();
    mux.handle("/headers", |r: &Request, w: &mut ResponseWriter| {
        let mut lines: Vec<String> = r
            .header()
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        lines.sort();
        w.header().set("Keep-Alive", "timeout=5");
        w.header().set("Proxy-Authenticate", "Basic");
        w.header().set("X-End", "e");
        let _ = w.write_all(lines.join("\n").as_bytes());
    });
    mux.handle("/count", |r: &Request, w: &mut ResponseWriter| {
        let te = r.header().get("Transfer-Encoding").unwrap_or("").to_owned();
        let mut body = r.body();
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0u64;
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(e) => {
                    let _ = write!(w, "error {e}");
                    return;
                }
            }
        }
        let _ = write!(w, "{n} {te}");
    });
    mux.handle("/big", |r: &Request, w: &mut ResponseWriter| {
        let n: usize = r.query_value("n").and_then(|v| v.parse().ok()).unwrap_or(0);
        let piece = vec![b'x'; 64 << 10];
        let mut left = n;
        while left > 0 {
            let k = left.min(piece.len());
            if w.write_all(&piece[..k]).is_err() {
                return;
            }
            left -= k;
        }
    });
    http_server::run(Server::builder().max_body_bytes(0).handler(mux))
}

fn proxy(upstream: &str) -> Example {
    let exe = build_example("reverse_proxy");
    Example::start_with(
        std::process::Command::new(exe)
            .args(["--addr", "127.0.0.1:0", "--upstream", upstream])
            .env("RUST_LOG", "error"),
        true,
    )
}

/// The child's resident set, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A reader of `n` bytes that never holds them.
struct Zeros(u64);

impl Read for Zeros {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = (buf.len() as u64).min(self.0) as usize;
        buf[..k].fill(b'z');
        self.0 -= k as u64;
        Ok(k)
    }
}

fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    join(go!(f))
}

#[test]
fn headers_go_through_without_hop_by_hop_fields() {
    let up = upstream();
    let px = proxy(&format!("http://{}", up.addr));
    let base = format!("http://{}", px.addr());
    run(move || {
        let mut req = ClientRequest::new("GET", &format!("{base}/headers")).unwrap();
        let h = req.header_mut();
        h.set("Connection", "X-Secret");
        h.set("X-Secret", "s");
        h.set("Keep-Alive", "300");
        h.set("Proxy-Authorization", "Basic abc");
        h.set("X-Forwarded-For", "10.1.2.3");
        h.set("X-Keep", "k");
        let resp = Client::new().send(req).unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.header().get("X-End"), Some("e"));
        assert_eq!(resp.header().get("Keep-Alive"), None);
        assert_eq!(resp.header().get("Proxy-Authenticate"), None);
        let seen = resp.text().unwrap();
        assert!(seen.contains("X-Keep: k"), "{seen}");
        assert!(
            seen.contains("X-Forwarded-For: 10.1.2.3, 127.0.0.1"),
            "{seen}"
        );
        for gone in ["X-Secret", "Keep-Alive", "Proxy-Authorization"] {
            assert!(!seen.contains(gone), "{gone} reached the upstream:\n{seen}");
        }
    });
    drop(px);
    up.stop();
}

#[test]
fn large_bodies_stream_both_ways_in_bounded_memory() {
    let up = upstream();
    let px = proxy(&format!("http://{}", up.addr));
    let pid = px.pid();
    let base = format!("http://{}", px.addr());
    let before = rss_kib(pid);
    const N: u64 = 128 << 20;
    let peak = run(move || {
        let client = Client::new();
        let mut peak = 0;
        // Down: 128 MiB from the upstream through the proxy.
        let mut resp = client.get(&format!("{base}/big?n={N}")).unwrap();
        let mut buf = vec![0u8; 256 << 10];
        let mut got = 0u64;
        loop {
            let k = resp.body.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            got += k as u64;
            if got % (16 << 20) < k as u64 {
                peak = peak.max(rss_kib(pid));
            }
        }
        assert_eq!(got, N);
        // Up: 128 MiB of unknown length (chunked) through the proxy.
        let req = ClientRequest::new("POST", &format!("{base}/count"))
            .unwrap()
            .with_body(RequestBody::from_reader(Zeros(N)));
        let resp = client.send(req).unwrap();
        peak = peak.max(rss_kib(pid));
        assert_eq!(resp.text().unwrap(), format!("{N} chunked"));
        peak
    });
    eprintln!("proxy VmRSS: {before} KiB at start, {peak} KiB at most while streaming");
    assert!(
        peak < before + 32 * 1024,
        "the proxy grew from {before} KiB to {peak} KiB streaming 128 MiB each way"
    );
    drop(px);
    up.stop();
}

#[test]
fn dead_upstream_is_502() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let px = proxy(&format!("http://{addr}"));
    let url = format!("http://{}/x", px.addr());
    let status = run(move || Client::new().get(&url).unwrap().status().as_u16());
    assert_eq!(status, 502);
}

#[test]
fn in_front_of_go_server() {
    let Some(go_srv) = common::go_server::start() else {
        return;
    };
    let px = proxy(&format!("http://{}", go_srv.addr()));
    let base = format!("http://{}", px.addr());
    run(move || {
        let client = Client::new();
        assert_eq!(
            client
                .get(&format!("{base}/hello"))
                .unwrap()
                .text()
                .unwrap(),
            "hello"
        );
        let resp = client.get(&format!("{base}/chunked?n=3")).unwrap();
        assert_eq!(resp.text().unwrap(), "piece 0\npiece 1\npiece 2\n");
        let data = vec![b'q'; 200_000];
        let req = ClientRequest::new("POST", &format!("{base}/echo"))
            .unwrap()
            .with_body(RequestBody::from_reader(std::io::Cursor::new(data.clone())));
        let resp = client.send(req).unwrap();
        assert_eq!(resp.header().get("X-Req-TE"), Some("chunked"));
        let got = resp.bytes().unwrap();
        assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
        let mut req = ClientRequest::new("GET", &format!("{base}/headers")).unwrap();
        req.header_mut().set("Connection", "X-Secret");
        req.header_mut().set("X-Secret", "s");
        let seen = client.send(req).unwrap().text().unwrap();
        assert!(seen.contains("X-Forwarded-For: 127.0.0.1"), "{seen}");
        assert!(!seen.contains("X-Secret"), "{seen}");
        let n = 8 << 20;
        let resp = client.get(&format!("{base}/big?n={n}")).unwrap();
        assert_eq!(resp.bytes().unwrap().len(), n);
    });
    drop(px);
    drop(go_srv);
}
