//! The blocked-worker watchdog: a goroutine that keeps its worker thread for longer than
//! [`Config::blocked_worker`](super::Config::blocked_worker) (100 ms by default) without
//! parking or yielding is named in a `log::warn!` (target `goway::runtime`), once per incident.
//!
//! Such a goroutine is in a blocking call (`std::thread::sleep`, std or blocking crate I/O, a
//! std lock) or a long computation, and every goroutine queued on its worker waits for it; the
//! warning points to [`block_on_thread`](super::block_on_thread). Go takes the processor back
//! from a goroutine stuck in a system call and preempts one that runs for over 10 ms (its
//! `sysmon`); goway cannot, so it says which goroutine it is.
//!
//! How: the vendored may counts each thread's coroutine resumes and shows which coroutine the
//! thread runs (`vendor/may/PATCHES.md`, 6): a few plain stores per switch, on memory only that
//! thread writes. A monitor thread samples them every quarter of the threshold; a thread whose
//! count and coroutine have stayed the same for the threshold is held. The coroutine's key
//! leads to its `slots::Slot`, which holds the goroutine's id, name and spawn site.
//!
//! The time reported is how long the monitor has seen the thread held: at least the threshold,
//! and less than the true time by up to one sampling period. A goroutine that runs another
//! right after it on the same coroutine without a switch (a carrier picking up a job that was
//! already waiting) shares the incident with it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::slots;

/// The default threshold.
pub(crate) const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// Threads held past the threshold at the last sample, and incidents reported (for
/// `runtime::metrics`): written by the monitor thread only.
static HELD_NOW: AtomicUsize = AtomicUsize::new(0);
static INCIDENTS: AtomicU64 = AtomicU64::new(0);

/// Worker threads held past the threshold at the monitor's last sample.
pub(crate) fn held_now() -> usize {
    HELD_NOW.load(Ordering::Relaxed)
}

/// Incidents reported since the process started.
pub(crate) fn incidents() -> u64 {
    INCIDENTS.load(Ordering::Relaxed)
}

/// Starts the monitor thread; a zero threshold turns the watchdog off.
pub(crate) fn start(threshold: Duration) {
    if threshold.is_zero() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("goway-watchdog".into())
        .spawn(move || watch(threshold));
    if let Err(e) = spawned {
        log::warn!(target: "goway::runtime", "cannot start the blocked-worker watchdog: {e}");
    }
}

/// What the monitor last saw of one thread that resumes coroutines.
struct Seen {
    /// may's record of the thread.
    thread: usize,
    count: usize,
    running: usize,
    /// When the monitor first saw this count and coroutine.
    since: Instant,
    /// This incident was reported.
    reported: bool,
}

/// Parks the monitor for `d` (it has nothing to be woken by).
fn nap(d: Duration) {
    static LOCK: Mutex<()> = Mutex::new(());
    static COND: Condvar = Condvar::new();
    let mut g = LOCK.lock();
    let _ = COND.wait_for(&mut g, d);
}

fn watch(threshold: Duration) {
    super::own::note_runtime_thread();
    let period = (threshold / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        nap(period);
        let now = Instant::now();
        let mut held_now = 0;
        may::coroutine::Coroutine::for_each_resumer(|thread, count, running| {
            let fresh = Seen {
                thread,
                count,
                running,
                since: now,
                reported: false,
            };
            let Some(s) = seen.iter_mut().find(|s| s.thread == thread) else {
                seen.push(fresh);
                return;
            };
            if s.count != count || s.running != running {
                *s = fresh;
                return;
            }
            let held = now.saturating_duration_since(s.since);
            if running != 0 && held >= threshold {
                held_now += 1;
                if !s.reported {
                    s.reported = true;
                    INCIDENTS.fetch_add(1, Ordering::Relaxed);
                    report(running, held);
                }
            }
        });
        HELD_NOW.store(held_now, Ordering::Relaxed);
    }
}

#[cold]
fn report(key: usize, held: Duration) {
    let ms = held.as_millis();
    let advice = "every goroutine queued on that worker waits meanwhile: inside goroutines, use \
                  goway's blocking operations (time::sleep, channels, sync, net) and wrap other \
                  blocking calls and long computations in goway::runtime::block_on_thread";
    match slots::goroutine_of(key) {
        Some(Some(g)) => {
            let name = match g.name() {
                Some((n, cut)) => format!(" \"{n}{}\"", if cut { "..." } else { "" }),
                None => String::new(),
            };
            let site = match g.site {
                Some(l) => format!(" (spawned at {}:{}:{})", l.file(), l.line(), l.column()),
                None => String::new(),
            };
            log::warn!(target: "goway::runtime",
                "goroutine {}{name}{site} has held its worker thread for {ms} ms without parking or yielding; {advice}",
                g.id
            );
        }
        Some(None) => log::warn!(target: "goway::runtime",
            "goway's runtime code (between goroutines) has held a worker thread for {ms} ms without parking or yielding; {advice}"
        ),
        None => log::warn!(target: "goway::runtime",
            "a coroutine goway did not start has held a worker thread for {ms} ms without parking or yielding; {advice}"
        ),
    }
}
