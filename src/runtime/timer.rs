//! The timer thread: the deadlines of goway's timers (`time::after`, `Timer`, `Ticker`,
//! `after_func`, the network deadlines' timers, a yielding goroutine's wake-up) in one
//! [`TimerQueue`], served by a single OS thread, `goway-timer`. (Timed waits, a `sleep` or a
//! `recv_timeout`, do not come here: they park with a timeout, on may's timer.)
//!
//! The queue is ordered by deadline (a `BTreeSet` of deadline and id, plus a map from id to
//! deadline and entry), not a hashed wheel: inserting, removing and finding the earliest
//! deadline are logarithmic, and the thread sleeps on a condition variable until the earliest
//! deadline or until an earlier one is inserted. Creating a timer never spawns a goroutine or
//! a thread.
//!
//! The queue knows nothing of what a deadline does: each entry holds an [`Arc<dyn Fire>`](Fire)
//! that the thread calls, without the queue's lock, when the deadline passes. `time` builds
//! Go's timers on it; `park` wakes a yielding goroutine through it.
//!
//! Lock order: whatever lock a caller holds while inserting or removing (a timer's own), then
//! the queue's; the thread never holds the queue's lock while calling [`Fire::fire`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// What a deadline does when it passes.
pub(crate) trait Fire: Send + Sync {
    /// Called on the timer thread, without the queue's lock, when the entry queued with `seq`
    /// comes due; `now` is when the thread found it due.
    fn fire(&self, seq: u64, now: Instant);

    /// `true` once nobody can observe this entry any more: it is swept out when the queue
    /// grows, and a periodic one is not queued again. Called with the queue's lock held.
    fn is_dead(&self) -> bool {
        false
    }
}

/// One pending deadline.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) target: Arc<dyn Fire>,
    /// Handed back to [`Fire::fire`]: which arming of the target this is.
    pub(crate) seq: u64,
    /// Queued again this long after each firing (Go's tickers), until the target is dead.
    pub(crate) period: Option<Duration>,
}

/// The process's pending deadlines; see the module docs.
pub(crate) struct TimerQueue {
    /// Guards the pending deadlines.
    state: Mutex<State>,
    /// Signalled when the earliest deadline moves earlier.
    cond: Condvar,
}

struct State {
    /// The pending entries' deadlines and ids, in order. Keys only: a goroutine on its way into
    /// a park inserts here (see [`TimerQueue::insert`]), and the B-tree's node split moves keys
    /// and values through its frames, so the entries (40 bytes each) live in `due`.
    by_time: BTreeSet<(Instant, u64)>,
    /// When each pending entry is due, and the entry.
    due: HashMap<u64, (Instant, Entry)>,
    next_id: u64,
    /// Size at which dead entries are swept out.
    sweep_at: usize,
}

const SWEEP_MIN: usize = 1024;

impl State {
    /// Takes the dead entries out (see [`Fire::is_dead`]) and sets the next sweep's size; the
    /// caller drops them once the queue's lock is released.
    #[cold]
    #[inline(never)]
    fn sweep(&mut self) -> Vec<Entry> {
        let State { by_time, due, .. } = self;
        let dead: Vec<u64> = due
            .iter()
            .filter(|(_, (_, e))| e.target.is_dead())
            .map(|(id, _)| *id)
            .collect();
        let mut swept = Vec::with_capacity(dead.len());
        for id in dead {
            if let Some((when, e)) = due.remove(&id) {
                by_time.remove(&(when, id));
                swept.push(e);
            }
        }
        self.sweep_at = (self.by_time.len() * 2).max(SWEEP_MIN);
        swept
    }
}

static QUEUE: OnceLock<&'static TimerQueue> = OnceLock::new();

/// `true` while a deadline is pending (for the deadlock detector: a pending timer can still
/// wake someone).
pub(crate) fn pending() -> bool {
    QUEUE
        .get()
        .is_some_and(|q| !q.state.lock().by_time.is_empty())
}

/// Deadlines pending (for `runtime::metrics`); 0 before the queue is first used.
pub(crate) fn pending_count() -> usize {
    QUEUE.get().map_or(0, |q| q.state.lock().by_time.len())
}

/// The queue, and its thread started on first use.
pub(crate) fn queue() -> &'static TimerQueue {
    QUEUE.get_or_init(|| {
        let q: &'static TimerQueue = Box::leak(Box::new(TimerQueue {
            state: Mutex::new(State {
                by_time: BTreeSet::new(),
                due: HashMap::new(),
                next_id: 1,
                sweep_at: SWEEP_MIN,
            }),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("goway-timer".into())
            .spawn(move || {
                super::own::note_runtime_thread();
                q.run()
            })
            .map_err(|e| log::error!(target: "goway::time", "cannot start the timer thread: {e}"))
            .ok();
        q
    })
}

/// The instant `d` from now; a duration too large to represent means "in a century" (never,
/// in practice), rather than a panic.
pub(crate) fn due_in(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Go's next tick after a tick due at `when` was served at `now`: the first multiple of the
/// period after `now` (ticks missed by a slow receiver are skipped, not queued).
fn next_tick(when: Instant, period: Duration, now: Instant) -> Instant {
    let p = period.as_nanos().max(1);
    let missed = now.saturating_duration_since(when).as_nanos() / p;
    let step = p.saturating_mul(missed + 1);
    let step = Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX));
    when.checked_add(step).unwrap_or_else(|| due_in(period))
}

impl TimerQueue {
    /// A fresh id for [`insert`](Self::insert) and [`remove`](Self::remove).
    pub(crate) fn next_id(&self) -> u64 {
        let mut s = self.state.lock();
        let id = s.next_id;
        s.next_id += 1;
        id
    }

    /// Queues `entry` under `id` (which must not be pending) to fire at `when`.
    ///
    /// Stack depth matters here: a server connection's reader arms its idle timer through this
    /// on its way into the park (`WakeupInner::arm`), on a goroutine stack whose park should
    /// keep to one resident 4 KiB page (an idle connection costs a second page for as long as
    /// it lives otherwise). The B-tree's node split (about one insert in six) and its
    /// allocation are the deepest point of that path, so the frames down to it are kept
    /// small: the B-tree holds keys only (the entries are in `due`), and the rare sweep of
    /// dead entries, with its locals, is out of line. Measure with `bench/compare.sh idle`
    /// (`pages per stack`) after changing this path.
    pub(crate) fn insert(&self, id: u64, when: Instant, entry: Entry) {
        // Swept entries are dropped after the lock is released (a channel's last sender closes
        // it and wakes its receivers).
        let mut swept = Vec::new();
        let mut s = self.state.lock();
        let earliest = s.by_time.first().map(|k| k.0);
        if s.by_time.len() >= s.sweep_at {
            swept = s.sweep();
        }
        s.by_time.insert((when, id));
        s.due.insert(id, (when, entry));
        drop(s);
        drop(swept);
        if earliest.is_none_or(|e| when < e) {
            self.cond.notify_one();
        }
    }

    /// Removes a pending entry; `true` if it was pending.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut s = self.state.lock();
        match s.due.remove(&id) {
            Some((when, _)) => s.by_time.remove(&(when, id)),
            None => false,
        }
    }

    fn run(&self) {
        let mut fired: Vec<(Instant, Entry)> = Vec::new();
        loop {
            {
                let mut s = self.state.lock();
                loop {
                    let now = Instant::now();
                    match s.by_time.first() {
                        Some(&(when, _)) if when <= now => break,
                        Some(&(when, _)) => {
                            self.cond.wait_for(&mut s, when - now);
                        }
                        None => self.cond.wait(&mut s),
                    }
                }
                let now = Instant::now();
                while let Some(&(when, id)) = s.by_time.first() {
                    if when > now {
                        break;
                    }
                    s.by_time.pop_first();
                    let Some((_, entry)) = s.due.remove(&id) else {
                        continue;
                    };
                    if let Some(period) = entry.period {
                        if !entry.target.is_dead() {
                            // Go's next tick: the first multiple of the period after now.
                            let next = next_tick(when, period, now);
                            s.by_time.insert((next, id));
                            s.due.insert(id, (next, entry.clone()));
                        }
                    }
                    fired.push((now, entry));
                }
            }
            // Fired without the queue's lock (a send may wake a goroutine, a func spawns one).
            for (now, entry) in fired.drain(..) {
                entry.target.fire(entry.seq, now);
            }
        }
    }
}
