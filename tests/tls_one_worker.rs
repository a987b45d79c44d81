//! TLS on a one-worker runtime: a handshake waiting for a silent client parks its goroutine,
//! not the worker, so a second client's whole handshake and echo complete meanwhile on the
//! same worker thread. The setting is process-wide, hence this file of its own.

use goway::tls::{self, Listener};
use std::io::{Read, Write};

mod common;
use common::tls::Ca;
use common::{WATCHDOG, join};

#[test]
fn handshake_does_not_block_the_only_worker() {
    let _ = goway::runtime::Config::new().workers(1).apply();
    assert_eq!(may::config().get_workers(), 1);
    let _g = common::shared();
    let ca = Ca::new("test CA");
    let ln = Listener::bind("127.0.0.1:0", ca.server()).unwrap();
    let addr = ln.local_addr().unwrap();
    let (outcome_tx, outcome) = goway::chan::bounded(4);
    goway::go!(move || {
        while let Ok((mut s, _)) = ln.accept() {
            let tx = outcome_tx.clone();
            goway::go!(move || {
                let r = s.handshake().map_err(|e| e.kind());
                let _ = tx.try_send(r.is_ok());
                let mut buf = [0u8; 4];
                if r.is_ok() && s.read_exact(&mut buf).is_ok() {
                    let _ = s.write_all(&buf);
                }
            });
        }
    });
    // A client that connects and says nothing: its server goroutine waits in the handshake.
    let (talked_tx, talked) = goway::chan::bounded::<()>(1);
    let (dialed_tx, dialed) = goway::chan::bounded::<()>(1);
    let silent = goway::go!(move || {
        let c = goway::net::dial(addr).unwrap();
        dialed_tx.send(()).unwrap();
        // Hold the connection until the other client is done, then close it.
        let _ = talked.recv_timeout(WATCHDOG);
        drop(c);
    });
    dialed.recv_timeout(WATCHDOG).unwrap();
    let client = ca.client();
    let talker = goway::go!(move || {
        let mut c = tls::dial_timeout(addr, &client, "localhost", WATCHDOG).unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        buf
    });
    assert_eq!(&join(talker), b"ping");
    assert_eq!(outcome.recv_timeout(WATCHDOG).ok(), Some(true));
    talked_tx.send(()).unwrap();
    join(silent);
    // The silent client's handshake ends with its EOF.
    assert_eq!(outcome.recv_timeout(WATCHDOG).ok(), Some(false));
}
