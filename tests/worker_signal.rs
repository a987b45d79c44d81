//! A signal handled on a worker thread ends that worker's wait for events early (`epoll_wait`
//! fails with `EINTR`). That is no error: the worker logs nothing and goes on with its timers
//! and queued goroutines (the vendored may's fix 12; before it, each such signal logged
//! `select error = EINTR` and skipped that pass).
//!
//! One worker, so that the signal is sure to reach the thread that polls; its own process
//! (the logger and the worker count are process-wide).

use std::sync::{Mutex, PoisonError};

use goway::go;
use goway::signal::{self, Signal};

mod common;
use common::{WATCHDOG, join};

/// Error records, as `target: text`.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Error
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.level() <= log::Level::Error {
            ERRORS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{}: {}", r.target(), r.args()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_signal_on_the_worker_thread_is_no_error() {
    let _ = goway::runtime::Config::new().workers(1).apply();
    assert_eq!(may::config().get_workers(), 1, "one worker thread");
    log::set_logger(&Capture).expect("no other logger in this test binary");
    log::set_max_level(log::LevelFilter::Error);
    let sub = signal::notify(&[Signal::USR2]).expect("subscribe to SIGUSR2");
    // SAFETY: `gettid` has no preconditions; it names the thread the goroutine runs on, the
    // one worker.
    let worker = join(go!(|| unsafe { libc::gettid() }));
    for _ in 0..5 {
        // The worker has nothing to do: it waits in `epoll_wait`, which the signal interrupts.
        // SAFETY: `tgkill` with this process's id, a live thread of it and a signal whose
        // handler `notify` installed; no memory is passed.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), worker, libc::SIGUSR2) };
        assert_eq!(r, 0, "tgkill: {}", std::io::Error::last_os_error());
        assert_eq!(sub.recv_timeout(WATCHDOG), Ok(Signal::USR2));
        // A goroutine started from this thread runs after the worker's next poll, so by the
        // time it is joined, whatever the interrupted one logged is recorded.
        join(go!(|| ()));
    }
    let errors = ERRORS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(errors.is_empty(), "errors logged: {errors:?}");
}
