//! Go's deadlock detector (`checkdead` in `runtime/proc.go`): when nothing in the process can
//! ever run again, print `fatal error: all goroutines are asleep - deadlock!` and a report, and
//! exit with status 2. On by default, as in Go ([`Config::detect_deadlock`](super::Config::detect_deadlock),
//! `GOWAY_DETECT_DEADLOCK`).
//!
//! Go knows every goroutine; goway shares its process with OS threads and coroutines it knows
//! nothing about, any of which could send on a channel later. So goway reports a deadlock only
//! when it can prove one, and prefers a miss to a false report. The proof is about the process,
//! not about each goroutine: it needs no goroutine registry and costs the goroutines nothing
//! (no bookkeeping when they spawn, park or resume). The watcher thread (`goway-deadlock`,
//! started the first time the main thread waits in a goway operation) checks, every 100 ms:
//!
//! 1. the main thread, and every other thread that ever waited in goway, is parked in goway
//!    on a channel, a select, a join or a `sync` primitive, with no deadline (their registry
//!    records, kept for threads whenever the detector is on);
//! 2. no coroutine runs: each thread that resumes coroutines (may's workers; its timer thread
//!    too before `PATCHES.md` 9) runs none (the resume records of the vendored may,
//!    `PATCHES.md` 6);
//! 3. nothing outside the process's threads can wake any of them: no goway timer is pending
//!    (`time::after`, tickers, `after_func`, timeouts, context deadlines), the blocking pool
//!    runs no call, the process holds no socket beyond standard input and output other than
//!    goway's own, and may's epoll sets watch nothing but eventfds (no pipe, timer or signal
//!    descriptor a coroutine waits on through may);
//! 4. every OS thread of the process is known: the main thread, registered threads, goway's
//!    own (timer, SIGQUIT, watchdog, blocking-pool) threads, and at most may's worker and
//!    timer threads; every one of them is asleep in the kernel (state `S` in
//!    `/proc/self/task/*/stat`); and each of may's (the threads goway did not start) sleeps
//!    where only another thread of the process can wake it (`/proc/self/task/*/syscall`): in
//!    `epoll_wait` (a worker with nothing to run; it wakes every 10 ms to look, and finds
//!    nothing), or in a futex wait without timeout (may's timer thread with no timer pending:
//!    no coroutine, goway's or not, sleeps or waits with a timeout in may).
//!
//! Then it waits 100 ms and checks again, and accepts only if 1-4 still hold and neither a
//! thread record's sequence number, nor a thread's count of coroutine resumes, nor the number
//! of live goroutines changed, before and after reading the thread states. So nothing ran for
//! 100 ms (a coroutine that ran was resumed; a goroutine spawned meanwhile was spawned by
//! something that ran; a thread that was woken is runnable, not asleep), and every thread
//! waits for another: nothing can run again. Where each goroutine waits does not matter: a
//! goroutine in a sleep or a timeout shows as a timer, one in network I/O as a socket, one in
//! `block_on_thread` as a busy pool, one that blocks its worker thread in the kernel as a
//! worker outside `epoll_wait`, and a coroutine spawned with may directly is covered the same
//! way whatever it waits on in may.
//!
//! The report is the goroutine dump with the registry on. With it off (the default) goway has
//! no per-goroutine records: it says how many goroutines there are, what each thread waits on
//! (for main, the line that made the channel), and how to get the full report
//! (`GOWAY_REGISTRY=1`).

use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{own, registry, switches, timer};

/// `true` while the detector is on (the default). Read on every wait of a plain thread, so
/// decided once: before `Config::apply`, by `GOWAY_DETECT_DEADLOCK`.
#[inline]
pub(crate) fn enabled() -> bool {
    switches::DETECT_DEADLOCK.on()
}

/// Whether something outside the process's threads could still wake one of them, besides the
/// timers and sockets checked here: registered by the runtime's services above this module
/// (the blocking pool) when they start.
static WAKE_SOURCES: Mutex<Vec<fn() -> bool>> = Mutex::new(Vec::new());

/// Registers `busy`, which says whether a service could still wake a waiting thread (a
/// blocking-pool call in flight). Call it before the service can first be busy.
pub(crate) fn add_wake_source(busy: fn() -> bool) {
    WAKE_SOURCES.lock().push(busy);
}

/// Called when the main thread's record is created: starts the watcher once.
pub(crate) fn main_thread_registered() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if !enabled() {
        return;
    }
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("goway-deadlock".into())
            .spawn(watch);
        if let Err(e) = spawned {
            log::warn!(target: "goway::runtime", "cannot start the deadlock detector: {e}");
        }
    });
}

const PERIOD: Duration = Duration::from_millis(100);

/// Parks the watcher for `d` (it has nothing to be woken by).
fn nap(d: Duration) {
    static LOCK: Mutex<()> = Mutex::new(());
    static COND: Condvar = Condvar::new();
    let mut g = LOCK.lock();
    let _ = COND.wait_for(&mut g, d);
}

fn watch() {
    own::note_runtime_thread();
    let me = own::current_tid();
    loop {
        nap(PERIOD);
        if !enabled() {
            continue;
        }
        let Some(first) = suspect() else { continue };
        nap(PERIOD);
        let Some(second) = suspect() else { continue };
        if first != second || !threads_quiet(me, &second.threads.thread_tids) {
            continue;
        }
        match suspect() {
            Some(third) if third == second => fire(second.live),
            _ => {}
        }
    }
}

/// What one check saw, to compare with the next.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// The registered threads: ids and sequence numbers.
    threads: registry::Asleep,
    /// may's record of each thread that resumes coroutines, with its count of resumes.
    resumers: Vec<(usize, usize)>,
    /// Live goroutines.
    live: usize,
}

/// Conditions 1-3 of the module docs, cheapest first, with what is compared across checks.
fn suspect() -> Option<Seen> {
    let threads = registry::asleep()?;
    if timer::pending() {
        return None;
    }
    let sources = WAKE_SOURCES.lock().clone();
    if sources.iter().any(|busy| busy()) {
        return None;
    }
    let resumers = idle_resumers()?;
    if outside_wake_up()? {
        return None;
    }
    Some(Seen {
        threads,
        resumers,
        live: registry::num_goroutines(),
    })
}

/// Each thread that resumes coroutines, with its resume count; `None` if one runs a coroutine
/// now (or is switching).
fn idle_resumers() -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    let mut running = false;
    may::coroutine::Coroutine::for_each_resumer(|thread, count, key| {
        running |= key != 0;
        out.push((thread, count));
    });
    if running {
        return None;
    }
    out.sort_unstable();
    Some(out)
}

/// Whether a file descriptor lets the outside wake a thread: a socket other than goway's own
/// (in-flight network I/O, including that of coroutines spawned with may directly), or
/// anything but an eventfd in an epoll set (a pipe, timerfd, signalfd, ... that a may worker
/// waits on, listed in `/proc/self/fdinfo/<epoll fd>`). A descriptor nothing waits on (an
/// inherited pipe, a file) wakes nobody; a thread reading one directly is not asleep in
/// epoll or a futex (`threads_quiet`). Stops at the first one. `None` if `/proc/self/fd`
/// cannot be read.
fn outside_wake_up() -> Option<bool> {
    let ours = own::own_sockets();
    for e in std::fs::read_dir("/proc/self/fd").ok()? {
        let e = e.ok()?;
        let fd: u32 = e.file_name().to_str()?.parse().ok()?;
        // A descriptor closed meanwhile has no link any more: skip it.
        let Ok(l) = std::fs::read_link(e.path()) else {
            continue;
        };
        let l = l.to_string_lossy();
        if fd > 2 && l.starts_with("socket:") && !ours.iter().any(|s| *s == l) {
            return Some(true);
        }
        if l == "anon_inode:[eventpoll]" && !only_eventfds(fd) {
            return Some(true);
        }
    }
    Some(false)
}

/// `true` if the epoll set `epfd` watches nothing but eventfds (may's wake-ups, which only a
/// thread of the process writes) and other epoll sets.
fn only_eventfds(epfd: u32) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")) else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.strip_prefix("tfd:"))
        .all(|rest| {
            let Some(Ok(tfd)) = rest.split_whitespace().next().map(str::parse::<u32>) else {
                return false;
            };
            std::fs::read_link(format!("/proc/self/fd/{tfd}")).is_ok_and(|l| {
                l.to_str()
                    .is_some_and(|l| l == "anon_inode:[eventfd]" || l == "anon_inode:[eventpoll]")
            })
        })
}

/// Condition 4: every thread is known, asleep, and may's asleep for good. `registered` are the
/// registered threads' ids (all parked in goway, per the registry); `me` is the watcher.
fn threads_quiet(me: Option<u32>, registered: &[u32]) -> bool {
    let Some(me) = me else { return false };
    let runtime = own::runtime_threads();
    let may_threads = if own::may_started() {
        may::config().get_workers() + 1
    } else {
        0
    };
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let mut unknown = 0;
    let mut seen = 0;
    for e in dir {
        let Ok(e) = e else { return false };
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        if tid == me {
            continue;
        }
        if registered.contains(&tid) {
            seen += 1;
        } else if !runtime.contains(&tid) {
            unknown += 1;
            // One of may's (or a thread goway does not know, if there are more than may has).
            if !waits_for_a_thread(tid) {
                return false;
            }
        }
        if thread_state(tid) != Some('S') {
            return false;
        }
    }
    unknown <= may_threads && seen == registered.len()
}

/// `true` if the thread sleeps in a system call only another thread of the process can end:
/// `epoll_wait` (a may worker; its timeout only makes it look at its empty queues again) or a
/// futex wait without timeout. Read from `/proc/self/task/<tid>/syscall`: the call's number
/// and arguments, or `running`.
fn waits_for_a_thread(tid: u32) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let mut words = s.split_whitespace();
    let Some(Ok(nr)) = words.next().map(str::parse::<libc::c_long>) else {
        return false;
    };
    let args: Vec<u64> = words
        .take(6)
        .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
        .collect();
    if args.len() < 4 {
        return false;
    }
    sleeps_for_a_thread(nr, &args)
}

/// [`waits_for_a_thread`] on a system call's number and first arguments.
fn sleeps_for_a_thread(nr: libc::c_long, args: &[u64]) -> bool {
    // futex(2) operations that wait: FUTEX_WAIT and FUTEX_WAIT_BITSET, with or without
    // FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME; the fourth argument is the timeout.
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_WAIT_BITSET: u64 = 9;
    const FUTEX_CMD: u64 = 0x7f;
    if nr == libc::SYS_futex {
        let op = args[1] & FUTEX_CMD;
        return (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) && args[3] == 0;
    }
    // epoll_pwait2(2): 441 on every architecture (numbered after the tables were unified).
    const SYS_EPOLL_PWAIT2: libc::c_long = 441;
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    if nr == libc::SYS_epoll_wait {
        return true;
    }
    nr == libc::SYS_epoll_pwait || nr == SYS_EPOLL_PWAIT2
}

/// The scheduling state letter of one of this process's threads (`R`, `S`, `D`, ...).
fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": the name may hold spaces and parentheses; the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Go's report, then exit status 2.
fn fire(goroutines: usize) -> ! {
    use std::io::Write;
    let report = super::dump::deadlock_report(goroutines);
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "fatal error: all goroutines are asleep - deadlock!\n\n{report}"
    );
    let _ = err.flush();
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::sleeps_for_a_thread;

    #[test]
    fn only_untimed_futex_waits_and_epoll_wait_for_a_thread() {
        // futex(uaddr, op, val, timeout): FUTEX_WAIT_PRIVATE and FUTEX_WAIT_BITSET_PRIVATE (std's
        // and may's parks) without timeout wait for a thread; with one, or a FUTEX_WAKE, do not.
        assert!(sleeps_for_a_thread(libc::SYS_futex, &[0x1000, 0x80, 1, 0]));
        assert!(sleeps_for_a_thread(
            libc::SYS_futex,
            &[0x1000, 0x89, 0xffff_ffff, 0]
        ));
        assert!(!sleeps_for_a_thread(
            libc::SYS_futex,
            &[0x1000, 0x89, 0xffff_ffff, 0x7f00]
        ));
        assert!(!sleeps_for_a_thread(libc::SYS_futex, &[0x1000, 0x81, 1, 0]));
        // A may worker in epoll, whatever its timeout.
        assert!(sleeps_for_a_thread(
            libc::SYS_epoll_pwait,
            &[3, 0x7f00, 1024, 10]
        ));
        // A thread in a sleep or a read waits for the clock or the outside.
        assert!(!sleeps_for_a_thread(
            libc::SYS_nanosleep,
            &[0x7f00, 0, 0, 0]
        ));
        assert!(!sleeps_for_a_thread(libc::SYS_read, &[0, 0x7f00, 10, 0]));
    }
}
