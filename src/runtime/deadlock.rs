//! Go's deadlock detector (`checkdead` in `runtime/proc.go`): when nothing in the process can
//! ever run again, print `fatal error: all goroutines are asleep - deadlock!` and the goroutine
//! dump, and exit with status 2.
//!
//! Go knows every goroutine; goway shares its process with OS threads it knows nothing about,
//! any of which could send on a channel later. So goway reports a deadlock only when it can
//! prove one, and prefers a miss to a false report. The watcher thread (`goway-deadlock`,
//! started the first time the main thread waits in a goway operation) checks, every 100 ms:
//!
//! 1. the registry: the main thread and every registered goroutine and thread are parked on a
//!    channel, a select, a join or a `sync` primitive, with no deadline (a sleep, a timeout,
//!    network I/O, a not-yet-started goroutine or a goroutine running code goway cannot see,
//!    including one waiting in `block_on_thread`, all count as awake); every live goroutine has a record; and no coroutine spawned with
//!    may directly has ever waited in goway (goway cannot see what those do);
//! 2. no goway timer is pending (`time::after`, tickers, `after_func`, context deadlines);
//! 3. the process holds no socket beyond standard input and output (in-flight network I/O,
//!    including that of coroutines spawned with may directly, could wake someone);
//! 4. every OS thread of the process is known: the main thread, registered threads, goway's
//!    own (timer, SIGQUIT, blocking-pool) threads, and at most may's worker and timer
//!    threads; and every one of them is asleep in the kernel (state `S` in
//!    `/proc/self/task/*/stat`).
//!
//! Then it waits 100 ms and checks again, and accepts only if 1-4 still hold and no record's
//! sequence number moved, before and after reading the thread states. A goroutine that was
//! woken but has not run yet sits on a run queue of a worker that is therefore not asleep; a
//! thread that was woken is runnable, not asleep; and a woken goroutine that ran has a new
//! sequence number. So a report means: nothing ran for 100 ms, and nothing can.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::registry;

/// 0: not configured (the environment decides, default on); 1: on; 2: off.
static ENABLED: AtomicU8 = AtomicU8::new(0);

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => super::env_flag("GOWAY_DETECT_DEADLOCK").unwrap_or(true),
    }
}

/// Kernel ids of goway's own threads (timer, SIGQUIT, the watcher).
static RUNTIME_TIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Socket inodes goway opened for itself (signal-hook's wake-up pair).
static OWN_SOCKETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// may's scheduler started (by goway's first spawn): its threads exist.
static MAY_STARTED: AtomicBool = AtomicBool::new(false);

/// Records the calling thread as one of goway's own; returns its kernel id for
/// [`forget_runtime_thread`].
pub(crate) fn note_runtime_thread() -> Option<u32> {
    let tid = registry::current_tid()?;
    RUNTIME_TIDS.lock().push(tid);
    Some(tid)
}

/// Forgets one of goway's own threads that is about to exit (a blocking-pool thread), so that
/// the list does not grow with each thread the pool starts, and a later thread given the same
/// id is not taken for goway's.
pub(crate) fn forget_runtime_thread(tid: u32) {
    RUNTIME_TIDS.lock().retain(|&t| t != tid);
}

pub(crate) fn note_may_started() {
    MAY_STARTED.store(true, Ordering::Relaxed);
}

/// The sockets open now (their `socket:[inode]` names), standard streams excluded; `None` if
/// `/proc/self/fd` cannot be read.
pub(crate) fn open_sockets() -> Option<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").ok()? {
        let e = e.ok()?;
        let fd: u32 = e.file_name().to_str()?.parse().ok()?;
        if fd <= 2 {
            continue;
        }
        // A descriptor closed meanwhile has no link any more: skip it.
        if let Ok(l) = std::fs::read_link(e.path()) {
            let l = l.to_string_lossy().into_owned();
            if l.starts_with("socket:") {
                out.push(l);
            }
        }
    }
    Some(out)
}

/// Marks the sockets that appeared between two [`open_sockets`] calls as goway's own, if they
/// are exactly a socket pair (anything else might be another thread's).
pub(crate) fn note_own_sockets(before: &[String], after: &[String]) {
    let new: Vec<String> = after
        .iter()
        .filter(|s| !before.contains(s))
        .cloned()
        .collect();
    if new.len() == 2 {
        OWN_SOCKETS.lock().extend(new);
    }
}

/// Called when the main thread's record is created: starts the watcher once.
pub(crate) fn main_thread_registered() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if !enabled() || !registry::enabled() {
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
    note_runtime_thread();
    let me = registry::current_tid();
    loop {
        nap(PERIOD);
        if !enabled() {
            continue;
        }
        let Some(first) = suspect() else { continue };
        nap(PERIOD);
        let Some(second) = suspect() else { continue };
        if first != second || !threads_asleep(me, &second.thread_tids) {
            continue;
        }
        match suspect() {
            Some(third) if third == second => fire(),
            _ => {}
        }
    }
}

/// Conditions 1-3 of the module docs, with the registry's state for comparison.
fn suspect() -> Option<registry::Asleep> {
    let asleep = registry::asleep()?;
    // Every live goroutine has a record (a goroutine being spawned or ending may be counted on
    // one side only for a moment).
    if asleep.goroutines != super::num_goroutines() {
        return None;
    }
    if super::time_pending() {
        return None;
    }
    let sockets = open_sockets()?;
    let own = OWN_SOCKETS.lock();
    if sockets.iter().any(|s| !own.contains(s)) {
        return None;
    }
    Some(asleep)
}

/// Condition 4: every thread is known and asleep. `registered` are the registered threads'
/// ids (all parked in goway, per the registry); `me` is the watcher.
fn threads_asleep(me: Option<u32>, registered: &[u32]) -> bool {
    let Some(me) = me else { return false };
    let runtime = RUNTIME_TIDS.lock().clone();
    let may_threads = if MAY_STARTED.load(Ordering::Relaxed) {
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
        }
        if thread_state(tid) != Some('S') {
            return false;
        }
    }
    unknown <= may_threads && seen == registered.len()
}

/// The scheduling state letter of one of this process's threads (`R`, `S`, `D`, ...).
fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": the name may hold spaces and parentheses; the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Go's report, then exit status 2.
fn fire() -> ! {
    use std::io::Write;
    let report = super::dump();
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "fatal error: all goroutines are asleep - deadlock!\n\n{report}"
    );
    let _ = err.flush();
    std::process::exit(2)
}
