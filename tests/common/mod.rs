//! Shared test harness: bounded joins of goroutines and threads, a lock that lets tests needing
//! the whole process (goroutine counts, memory mappings) run alone, and a watchdog that aborts a
//! test binary hung inside the runtime, out of reach of the channel timeouts.
#![allow(dead_code)] // each test binary uses a different part

pub mod child;
pub mod example;
pub mod hogs;
pub mod http_server;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Upper bound for a join that should succeed; reaching it means a bug (a hang).
const JOIN_LIMIT: Duration = Duration::from_secs(10);

/// Joins a goroutine, failing (never hanging) after `JOIN_LIMIT`; a panic in it fails the test.
pub fn join<T>(h: goway::JoinHandle<T>) -> T {
    match h.join_timeout(JOIN_LIMIT) {
        Ok(v) => v,
        Err(Ok(_)) => panic!("goroutine did not finish within {JOIN_LIMIT:?}"),
        Err(Err(p)) => panic!("goroutine panicked: {p}"),
    }
}

/// Joins an OS thread, failing after `JOIN_LIMIT`. std has no timed join, so this polls
/// `is_finished` with 1 ms naps: the nap only bounds the poll, it synchronises nothing.
pub fn join_thread<T>(h: std::thread::JoinHandle<T>) -> T {
    let deadline = Instant::now() + JOIN_LIMIT;
    while !h.is_finished() {
        assert!(
            Instant::now() < deadline,
            "thread did not finish within {JOIN_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    h.join().expect("thread panicked")
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
const TEST_LIMIT: Duration = Duration::from_secs(60);

impl Watchdog {
    fn start() -> Self {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(TEST_LIMIT) {
                eprintln!("test {test} still running after {TEST_LIMIT:?}: aborting");
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

/// A line echo server on a free loopback port, spinning up to `busy_poll` for input before
/// its worker sleeps (`Duration::ZERO`: never). Bound, not yet serving.
pub fn line_echo_server(busy_poll: Duration) -> goway::net::Server<goway::net::codec::LinesCodec> {
    goway::net::Server::builder()
        .addr("127.0.0.1:0")
        .codec(goway::net::codec::LinesCodec::new())
        .spin_poll(busy_poll)
        .handler(|conn| {
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()
        .unwrap()
}
