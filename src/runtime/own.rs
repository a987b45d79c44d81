//! What the runtime itself runs and holds: its own OS threads (the timer, SIGQUIT, watchdog,
//! deadlock-watcher and blocking-pool threads) and sockets (signal-hook's wake-up pair), and
//! whether may's scheduler threads exist. The deadlock detector reads these to tell the
//! runtime's threads and sockets from the program's; the modules that start them write them.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// Kernel ids of goway's own threads.
static RUNTIME_TIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Socket inodes goway opened for itself (signal-hook's wake-up pair).
static OWN_SOCKETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// may's scheduler started (by goway's first spawn): its threads exist.
static MAY_STARTED: AtomicBool = AtomicBool::new(false);

/// The calling thread's kernel id, read from `/proc/thread-self`.
pub(crate) fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Records the calling thread as one of goway's own; returns its kernel id for
/// [`forget_runtime_thread`].
pub(crate) fn note_runtime_thread() -> Option<u32> {
    let tid = current_tid()?;
    RUNTIME_TIDS.lock().push(tid);
    Some(tid)
}

/// Forgets one of goway's own threads that is about to exit (a blocking-pool thread), so that
/// the list does not grow with each thread the pool starts, and a later thread given the same
/// id is not taken for goway's.
pub(crate) fn forget_runtime_thread(tid: u32) {
    RUNTIME_TIDS.lock().retain(|&t| t != tid);
}

/// The kernel ids of goway's own threads now.
pub(crate) fn runtime_threads() -> Vec<u32> {
    RUNTIME_TIDS.lock().clone()
}

pub(crate) fn note_may_started() {
    MAY_STARTED.store(true, Ordering::Relaxed);
}

/// `true` once may's scheduler (its worker and timer threads) exists.
pub(crate) fn may_started() -> bool {
    MAY_STARTED.load(Ordering::Relaxed)
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

/// goway's own sockets (`socket:[inode]` names).
pub(crate) fn own_sockets() -> Vec<String> {
    OWN_SOCKETS.lock().clone()
}
