//! `goway::net::Acceptor`: the connection cap (refusing over it, a place freed when its slot
//! drops) and the descriptor budget.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;

use common::WATCHDOG;
use goway::net::{Acceptor, TcpListener};

/// `true` once the server closed `c` (EOF or a reset), `false` if it sent data.
fn closed_by_server(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    match c.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) => panic!("read: {e}"),
    }
}

#[test]
fn over_the_cap_is_refused_and_a_dropped_slot_frees_a_place() {
    let (_g, _w) = common::shared();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    let mut acc = Acceptor::new(ln).max_connections(2);
    assert_eq!(acc.limit(), 2);

    let _c1 = TcpStream::connect(addr).unwrap();
    let (_s1, _, slot1) = acc.accept().unwrap();
    let _c2 = TcpStream::connect(addr).unwrap();
    let (_s2, _, _slot2) = acc.accept().unwrap();
    assert_eq!(acc.active(), 2);

    // Full: the next connection is accepted and closed at once; accept goes on waiting.
    let waiter = std::thread::spawn(move || {
        let (s, peer, slot) = acc.accept().unwrap();
        (acc, s, peer, slot)
    });
    let mut c3 = TcpStream::connect(addr).unwrap();
    assert!(
        closed_by_server(&mut c3),
        "the third connection was not refused"
    );
    // A place frees up: the next client gets it.
    drop(slot1);
    let c4 = TcpStream::connect(addr).unwrap();
    let (acc, _s4, peer, _slot4) = common::join_thread(waiter);
    assert_eq!(peer, c4.local_addr().unwrap());
    assert_eq!(acc.refused(), 1);
    assert_eq!(acc.active(), 2);
}

/// The soft `RLIMIT_NOFILE` of this process (`None`: unlimited).
fn nofile() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").unwrap();
    let l = s.lines().find(|l| l.starts_with("Max open files")).unwrap();
    l["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn the_cap_fits_the_descriptor_limit() {
    let (_g, _w) = common::shared();
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let acc = Acceptor::new(ln)
        .fds_per_connection(4)
        .max_connections(usize::MAX / 8);
    // 32 descriptors kept for the process, 4 per connection (after raising the soft limit).
    let Some(lim) = nofile() else {
        return; // no descriptor limit: nothing to fit
    };
    assert_eq!(acc.limit() as u64, (lim - 32) / 4);
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let acc = Acceptor::new(ln).fds_per_connection(4).max_connections(0);
    assert_eq!(acc.limit() as u64, (lim - 32) / 4);
}
