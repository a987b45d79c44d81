//! Shared test harness: the watchdog that bounds every wait and a poll for conditions (`wait`),
//! bounded joins of goroutines and threads, a client socket, servers run in the test process
//! (`net_server`, `http_server`) or in a child process (`child`, `example`), a lock that lets
//! tests needing the whole process (goroutine counts, memory mappings) run alone, and a
//! watchdog that aborts a test binary hung inside the runtime, out of reach of the channel
//! timeouts.
#![allow(dead_code)] // each test binary uses a different part

pub mod child;
pub mod example;
pub mod go_server;
pub mod hogs;
pub mod http_server;
pub mod net_server;
pub mod tls;
pub mod wait;

pub use wait::{WATCHDOG, wait_for, wait_until};

use std::net::{SocketAddr, TcpStream};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Joins a goroutine, failing (never hanging) after `WATCHDOG`; a panic in it fails the test.
#[track_caller]
pub fn join<T>(h: goway::JoinHandle<T>) -> T {
    join_result(h).unwrap_or_else(|p| panic!("goroutine panicked: {p}"))
}

/// Joins a goroutine, failing (never hanging) after `WATCHDOG`, and returns its panic as
/// `Err`: for the tests about panics.
#[track_caller]
pub fn join_result<T>(h: goway::JoinHandle<T>) -> Result<T, goway::Panicked> {
    match h.join_timeout(WATCHDOG) {
        Ok(v) => Ok(v),
        Err(Ok(h)) => panic!(
            "goroutine {:?} did not finish within {WATCHDOG:?}",
            h.name()
        ),
        Err(Err(p)) => Err(p),
    }
}

/// Joins an OS thread, failing after `WATCHDOG`; a panic in it fails the test. std has no timed join, so this polls
/// `is_finished`.
#[track_caller]
pub fn join_thread<T>(h: std::thread::JoinHandle<T>) -> T {
    wait_until("the thread to finish", WATCHDOG, || h.is_finished());
    h.join().expect("thread panicked")
}

/// A client connection to `addr` with no Nagle delay (as Go's clients: none behind the
/// server's delayed ACKs), its reads and writes bounded by `WATCHDOG`.
pub fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    c.set_read_timeout(Some(WATCHDOG)).expect("read timeout");
    c.set_write_timeout(Some(WATCHDOG)).expect("write timeout");
    c
}

/// Reads until the server closes (a reset counts as the end too); returns what came.
pub fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        match std::io::Read::read(c, &mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("read until the server closes: {e}"),
        }
    }
}

/// Closes `c` with a reset (SO_LINGER 0).
pub fn reset(c: TcpStream) {
    socket2::SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(c);
}

static LOCK: RwLock<()> = RwLock::new(());

/// Aborts the test binary if a test is still running after `TEST_LIMIT`: a hang inside the
/// runtime (a deadlocked spawn, say) is out of reach of the channel watchdogs. The thread ends
/// with the test.
pub struct Watchdog {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Much longer than `WATCHDOG`, so that a channel timeout fails a test first.
const TEST_LIMIT: Duration = WATCHDOG.saturating_mul(6);

impl Watchdog {
    fn start() -> Self {
        Self::with_limit(TEST_LIMIT)
    }

    /// Aborts the test binary if the calling test is still running after `limit`.
    pub fn with_limit(limit: Duration) -> Self {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("test {test} still running after {limit:?}: aborting");
                std::process::abort();
            }
        });
        Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// For tests that share the process with others.
pub fn shared() -> (RwLockReadGuard<'static, ()>, Watchdog) {
    let g = LOCK.read().unwrap_or_else(PoisonError::into_inner);
    (g, Watchdog::start())
}

/// For tests that need the whole process: goroutine counts, most memory mappings.
pub fn exclusive() -> (RwLockWriteGuard<'static, ()>, Watchdog) {
    let g = LOCK.write().unwrap_or_else(PoisonError::into_inner);
    (g, Watchdog::start())
}

/// A line echo server on a free loopback port, spinning up to `spin_poll` for input before
/// its worker sleeps (`Duration::ZERO`: never). Bound, not yet serving.
pub fn line_echo_server(spin_poll: Duration) -> goway::net::Server<goway::net::codec::LinesCodec> {
    goway::net::Server::builder()
        .addr("127.0.0.1:0")
        .codec(goway::net::codec::LinesCodec::new())
        .spin_poll(spin_poll)
        .handler(|conn| {
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap()
}
