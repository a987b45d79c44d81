//! Memory per idle TLS connection: the echo example serving TLS in a child process, 400 TLS
//! connections made by this process (handshake done, one line echoed on each, then held
//! idle). The growth of the server's resident memory per connection stays under a bound
//! (about 3x what this machine measured; the test prints the figure).

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::time::Instant;

use goway::tls::{self, TlsStream};

mod common;
#[allow(dead_code)] // only the server process is used here
#[path = "common/hostile.rs"]
mod hostile;
use common::tls::Ca;
use common::{WATCHDOG, join};
use hostile::ServerProcess;

/// Connections held idle while the server's memory is read.
const CONNS: usize = 400;

/// Resident KiB per idle TLS connection that fails the test: about 3x what a 2-core Linux
/// VM measured (goroutine stacks touched by the handshake, rustls's session and buffers,
/// the socket's state); the test prints its figure (`--nocapture`).
const BOUND_KIB: u64 = 64;

/// `n` TLS connections, each with one line echoed, held open.
fn hold(addr: std::net::SocketAddr, client: &tls::ClientConfig, n: usize) -> Vec<TlsStream> {
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            goway::go!(move || {
                let c = tls::dial_timeout(addr, &client, "localhost", WATCHDOG).unwrap();
                c.set_deadline(Some(Instant::now() + WATCHDOG));
                let mut r = BufReader::new(c);
                let msg = format!("idle {i}\n");
                r.get_mut().write_all(msg.as_bytes()).unwrap();
                let mut s = String::new();
                r.read_line(&mut s).unwrap();
                assert_eq!(s, msg);
                let c = r.into_inner();
                c.set_deadline(None);
                c
            })
        })
        .collect();
    hs.into_iter().map(join).collect()
}

#[test]
fn idle_tls_connection_memory_is_bounded() {
    let _g = common::exclusive();
    let ca = Ca::new("test CA");
    let pair = ca.issue(&["localhost", "127.0.0.1"]);
    let dir = std::env::temp_dir().join(format!("goway-tls-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &pair.cert).unwrap();
    std::fs::write(&key, &pair.key).unwrap();
    let echo = common::example::build_example("echo");
    let mut server = ServerProcess::start(
        Command::new(echo)
            .args(["--addr", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key),
    );
    let client = ca.client();
    // Warm up: the runtime's workers, rustls's tables, the allocator's first arenas.
    let warm = hold(server.addr, &client, 50);
    let before = server.rss_kib();
    let idle = hold(server.addr, &client, CONNS);
    let after = server.rss_kib();
    server.assert_alive("holding the idle connections");
    let per_conn = after.saturating_sub(before) as f64 / CONNS as f64;
    eprintln!(
        "idle TLS connections: server RSS {before} KiB -> {after} KiB for {CONNS} more: {per_conn:.1} KiB each"
    );
    drop(idle);
    drop(warm);
    server.kill_and_reap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        per_conn < BOUND_KIB as f64,
        "{per_conn:.1} KiB per idle TLS connection (bound {BOUND_KIB} KiB)"
    );
}
