//! Go's `time` for goroutines: [`sleep`], [`after`], [`tick`], [`Timer`], [`Ticker`] and
//! [`after_func`].
//!
//! All timers live in one ordered map served by a single timer thread (a plain OS thread, not a
//! worker): creating a timer never spawns a goroutine or a thread, so `after(d)` in a hot
//! `select!` loop costs one small allocation and one map insert. A timer whose channel nobody
//! can receive from any more is dropped when it fires, or sooner when the map grows (Go 1.19
//! keeps such timers until they fire).
//!
//! Channels carry the [`Instant`] at which the timer fired and buffer one value, as Go's do: a
//! slow receiver of a [`Ticker`] finds one tick waiting; the ticks it missed are dropped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::park::{Waiter, park_forever, park_until};
use crate::runtime::registry::{Wait, Why};

/// Pauses the calling goroutine (or thread) for at least `d`. A goroutine parks: its worker
/// runs other goroutines meanwhile.
///
/// As in Go, any positive duration gives up the worker, however short: a goroutine that waits
/// politely with `sleep(Duration::from_nanos(1))` in a loop lets the others run. A zero duration
/// returns at once (Go's `time.Sleep(0)`).
///
/// ```
/// let t = std::time::Instant::now();
/// goway::time::sleep(std::time::Duration::from_millis(5));
/// assert!(t.elapsed() >= std::time::Duration::from_millis(5));
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    let Some(deadline) = Instant::now().checked_add(d) else {
        park_forever(Why::new(Wait::Sleep));
        return;
    };
    // At least one wait, even when the deadline has passed by the time it starts: the wait
    // then yields (see `Waiter::wait`).
    loop {
        park_until(Some(deadline), Why::new(Wait::Sleep));
        if Instant::now() >= deadline {
            return;
        }
    }
}

/// A channel that receives the time once, after `d` (Go's `time.After`). For a timeout arm:
/// `recv(goway::time::after(d)) -> _ => ..`.
///
/// ```
/// use std::time::Duration;
/// let rx = goway::time::after(Duration::from_millis(1));
/// assert!(rx.recv().is_ok());
/// ```
#[track_caller]
pub fn after(d: Duration) -> Receiver<Instant> {
    Timer::new(d).into_channel()
}

/// A channel that receives the time every `d` (Go's `time.Tick`). Ticking stops once the
/// receiver is dropped. A zero `d` gives a never-ready channel, as Go returns nil.
#[track_caller]
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return chan::never();
    }
    let (tx, rx) = chan::timer_channel();
    let id = wheel().next_id();
    Cell::new().arm(id, d, Action::Tick { tx, period: d });
    rx
}

/// Runs `f` in its own goroutine after `d` (Go's `time.AfterFunc`). The returned timer's
/// channel is never ready; `stop` prevents the call if it has not started, `reset` schedules
/// it again (even after it ran).
///
/// ```
/// use std::time::Duration;
/// let (tx, rx) = goway::chan::bounded(1);
/// let _t = goway::time::after_func(Duration::from_millis(1), move || { let _ = tx.try_send("ran"); });
/// assert_eq!(rx.recv(), Ok("ran"));
/// ```
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: Fn() + Send + Sync + 'static,
{
    Timer::with_action(d, chan::never(), Action::Func(Arc::new(f)))
}

/// A timer that runs `f` on the timer thread itself after `d`: for the crate's own short,
/// never-blocking callbacks (waking a goroutine parked on a socket), where a goroutine per
/// firing would cost more than the call.
pub(crate) fn inline_timer<F>(d: Duration, f: F) -> Timer
where
    F: Fn() + Send + Sync + 'static,
{
    Timer::with_action(d, chan::never(), Action::Inline(Arc::new(f)))
}

/// A single event: its channel receives the time once after the duration (Go's `time.Timer`).
///
/// `stop` and `reset` follow Go 1.19: `stop` returns `false` only once the value has been
/// delivered (it is then in the channel, or already received), so Go's idiom
/// `if !t.stop() { drain }` works. A delivery in progress is finished before `stop` returns.
///
/// ```
/// use std::time::Duration;
/// let mut t = goway::time::Timer::new(Duration::from_secs(3600));
/// assert!(t.stop());           // stopped an active timer
/// assert!(!t.stop());          // already stopped
/// assert!(!t.reset(Duration::from_millis(1))); // was not active
/// t.c().recv().unwrap();       // fires
/// ```
pub struct Timer {
    id: u64,
    c: Receiver<Instant>,
    action: Action,
    cell: Arc<Cell>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer").field("id", &self.id).finish()
    }
}

impl Timer {
    /// A timer that fires once after `d`. A zero duration fires at once.
    #[track_caller]
    pub fn new(d: Duration) -> Self {
        let (tx, rx) = chan::timer_channel();
        Timer::with_action(d, rx, Action::Send(tx))
    }

    fn with_action(d: Duration, c: Receiver<Instant>, action: Action) -> Self {
        let id = wheel().next_id();
        let cell = Cell::new();
        cell.arm(id, d, action.clone());
        Timer {
            id,
            c,
            action,
            cell,
        }
    }

    /// The channel that receives the firing time (Go's `t.C`).
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    fn into_channel(self) -> Receiver<Instant> {
        self.c
    }

    /// Stops the timer. `true` if this call stopped an active timer, `false` if it had already
    /// fired (its value is in the channel or was received) or been stopped. Like Go's, it does
    /// not drain the channel.
    pub fn stop(&mut self) -> bool {
        self.cell.disarm(self.id)
    }

    /// Makes the timer fire after `d` from now. `true` if it was active (Go's `Reset`).
    pub fn reset(&mut self, d: Duration) -> bool {
        self.cell.arm(self.id, d, self.action.clone())
    }
}

/// Delivers the time on its channel every period (Go's `time.Ticker`). A receiver that falls
/// behind finds one tick buffered; missed ticks are dropped. Dropping the ticker stops it.
///
/// ```
/// use std::time::Duration;
/// let mut t = goway::time::Ticker::new(Duration::from_millis(1));
/// let a = t.c().recv().unwrap();
/// let b = t.c().recv().unwrap();
/// assert!(b > a);
/// t.stop();
/// ```
pub struct Ticker {
    id: u64,
    c: Receiver<Instant>,
    tx: Sender<Instant>,
    cell: Arc<Cell>,
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker").field("id", &self.id).finish()
    }
}

impl Ticker {
    /// A ticker with period `d`.
    ///
    /// # Panics
    /// If `d` is zero, with Go's message `non-positive interval for NewTicker`.
    #[track_caller]
    pub fn new(d: Duration) -> Self {
        if d.is_zero() {
            panic!("non-positive interval for NewTicker");
        }
        let (tx, rx) = chan::timer_channel();
        let id = wheel().next_id();
        let cell = Cell::new();
        cell.arm(
            id,
            d,
            Action::Tick {
                tx: tx.clone(),
                period: d,
            },
        );
        Ticker {
            id,
            c: rx,
            tx,
            cell,
        }
    }

    /// The channel that receives the ticks (Go's `t.C`).
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Stops the ticker: no tick is sent after this returns (one may already be buffered).
    pub fn stop(&mut self) {
        self.cell.disarm(self.id);
    }

    /// Stops the ticker and restarts it with period `d`; the next tick comes `d` from now.
    ///
    /// # Panics
    /// If `d` is zero, with Go's message `non-positive interval for Ticker.Reset`.
    pub fn reset(&mut self, d: Duration) {
        if d.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        self.cell.arm(
            self.id,
            d,
            Action::Tick {
                tx: self.tx.clone(),
                period: d,
            },
        );
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One timer's arming state. Its lock is held while the timer thread delivers the timer's
/// value, so `stop` and `reset` see either "not yet delivered" (and cancel it) or "delivered"
/// (the value is in the channel), never a delivery in flight.
///
/// Lock order: a cell, then the wheel; the timer thread never holds the wheel while taking a cell.
struct Cell {
    state: Mutex<Arming>,
}

struct Arming {
    /// Bumped by every arm and disarm: a queued firing with an older `seq` is stale.
    seq: u64,
    armed: bool,
}

impl Cell {
    fn new() -> Arc<Self> {
        Arc::new(Cell {
            state: Mutex::new(Arming {
                seq: 0,
                armed: false,
            }),
        })
    }

    /// (Re)arms the timer to fire after `d`; `true` if it was armed.
    fn arm(self: &Arc<Self>, id: u64, d: Duration, action: Action) -> bool {
        let mut a = self.state.lock();
        let was = a.armed;
        a.seq += 1;
        a.armed = true;
        let w = wheel();
        w.remove(id);
        w.insert(
            id,
            due_in(d),
            Entry {
                action,
                cell: Some(self.clone()),
                seq: a.seq,
            },
        );
        was
    }

    /// Disarms the timer; `true` if it was armed (it will not fire).
    fn disarm(&self, id: u64) -> bool {
        let mut a = self.state.lock();
        let was = a.armed;
        a.seq += 1;
        a.armed = false;
        wheel().remove(id);
        was
    }
}

/// Parks the calling goroutine and has the timer thread wake it: being woken from a plain
/// thread puts it on a worker's global run queue, which may drains only once the worker's local
/// queue is empty, so every goroutine queued before it runs first (Go's `Gosched` puts the
/// goroutine on the global queue for the same reason).
pub(crate) fn yield_to_all() {
    let w = Waiter::new();
    let wh = wheel();
    let id = wh.next_id();
    wh.insert(
        id,
        Instant::now(),
        Entry {
            action: Action::Wake(w.clone()),
            cell: None,
            seq: 0,
        },
    );
    w.wait(None, Why::new(Wait::Yield));
    w.recycle();
}

// ----- the timer thread -------------------------------------------------------------------------

/// The instant `d` from now; a duration too large to represent means "in a century" (never,
/// in practice), rather than a panic.
fn due_in(d: Duration) -> Instant {
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

#[derive(Clone)]
enum Action {
    Send(Sender<Instant>),
    Tick {
        tx: Sender<Instant>,
        period: Duration,
    },
    Func(Arc<dyn Fn() + Send + Sync>),
    /// Runs on the timer thread (see [`inline_timer`]).
    Inline(Arc<dyn Fn() + Send + Sync>),
    /// Wakes a parked goroutine from the timer thread (see [`yield_to_all`]).
    Wake(Arc<Waiter>),
}

/// A queued firing.
#[derive(Clone)]
struct Entry {
    action: Action,
    /// The timer's arming state (`None` for internal wake-ups).
    cell: Option<Arc<Cell>>,
    /// The arming this firing belongs to.
    seq: u64,
}

impl Action {
    /// Nobody can observe this timer any more.
    fn is_dead(&self) -> bool {
        match self {
            Action::Send(tx) | Action::Tick { tx, .. } => tx.is_closed(),
            Action::Func(_) | Action::Inline(_) | Action::Wake(_) => false,
        }
    }
}

struct Wheel {
    /// Guards the pending timers.
    state: Mutex<State>,
    /// Signalled when the earliest deadline moves earlier.
    cond: Condvar,
}

struct State {
    by_time: BTreeMap<(Instant, u64), Entry>,
    /// When each pending timer is due.
    due: HashMap<u64, Instant>,
    next_id: u64,
    /// Size at which dead timers are swept out.
    sweep_at: usize,
}

const SWEEP_MIN: usize = 1024;

static WHEEL: OnceLock<&'static Wheel> = OnceLock::new();

/// `true` while a timer, ticker, sleep or timeout is pending on the timer thread (for the
/// deadlock detector: a pending timer can still wake someone).
pub(crate) fn timers_pending() -> bool {
    WHEEL
        .get()
        .is_some_and(|w| !w.state.lock().by_time.is_empty())
}

fn wheel() -> &'static Wheel {
    WHEEL.get_or_init(|| {
        let w: &'static Wheel = Box::leak(Box::new(Wheel {
            state: Mutex::new(State {
                by_time: BTreeMap::new(),
                due: HashMap::new(),
                next_id: 1,
                sweep_at: SWEEP_MIN,
            }),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("goway-timer".into())
            .spawn(move || {
                crate::runtime::note_runtime_thread();
                w.run()
            })
            .map_err(|e| log::error!(target: "goway::time", "cannot start the timer thread: {e}"))
            .ok();
        w
    })
}

impl Wheel {
    fn next_id(&self) -> u64 {
        let mut s = self.state.lock();
        let id = s.next_id;
        s.next_id += 1;
        id
    }

    fn insert(&self, id: u64, when: Instant, entry: Entry) {
        // Swept timers are dropped after the lock is released (a channel's last sender closes
        // it and wakes its receivers).
        let mut swept = Vec::new();
        let mut s = self.state.lock();
        let earliest = s.by_time.keys().next().map(|k| k.0);
        if s.by_time.len() >= s.sweep_at {
            let State { by_time, due, .. } = &mut *s;
            let dead: Vec<(Instant, u64)> = by_time
                .iter()
                .filter(|(_, e)| e.action.is_dead())
                .map(|(k, _)| *k)
                .collect();
            for k in dead {
                due.remove(&k.1);
                swept.extend(by_time.remove(&k));
            }
            s.sweep_at = (s.by_time.len() * 2).max(SWEEP_MIN);
        }
        s.by_time.insert((when, id), entry);
        s.due.insert(id, when);
        drop(s);
        drop(swept);
        if earliest.is_none_or(|e| when < e) {
            self.cond.notify_one();
        }
    }

    /// Removes a pending timer; `true` if it was pending.
    fn remove(&self, id: u64) -> bool {
        let mut s = self.state.lock();
        match s.due.remove(&id) {
            Some(when) => s.by_time.remove(&(when, id)).is_some(),
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
                    match s.by_time.first_key_value() {
                        Some((&(when, _), _)) if when <= now => break,
                        Some((&(when, _), _)) => {
                            self.cond.wait_for(&mut s, when - now);
                        }
                        None => self.cond.wait(&mut s),
                    }
                }
                let now = Instant::now();
                while let Some(first) = s.by_time.first_entry() {
                    if first.key().0 > now {
                        break;
                    }
                    let ((when, id), entry) = first.remove_entry();
                    s.due.remove(&id);
                    if let Action::Tick { tx, period } = &entry.action {
                        if !tx.is_closed() {
                            // Go's next tick: the first multiple of the period after now.
                            let next = next_tick(when, *period, now);
                            s.by_time.insert((next, id), entry.clone());
                            s.due.insert(id, next);
                        }
                    }
                    fired.push((now, entry));
                }
            }
            // Deliver without the wheel's lock (a send may wake a goroutine, a func spawns
            // one), each under its timer's own lock, after checking it is still armed.
            for (now, entry) in fired.drain(..) {
                let Entry { action, cell, seq } = entry;
                let mut arming = cell.as_ref().map(|c| c.state.lock());
                if let Some(a) = &mut arming {
                    if !a.armed || a.seq != seq {
                        continue; // stopped or re-armed since it was queued
                    }
                    if !matches!(action, Action::Tick { .. }) {
                        a.armed = false;
                    }
                }
                match action {
                    Action::Send(tx) | Action::Tick { tx, .. } => {
                        // Sent under the timer's lock (so stop() never races it), woken after.
                        let (_, deferred) = tx.try_send_deferred(now);
                        drop(arming);
                        deferred.finish();
                    }
                    Action::Wake(w) => {
                        if w.try_select(0) {
                            w.unpark();
                        }
                    }
                    Action::Inline(f) => {
                        drop(arming);
                        f();
                    }
                    Action::Func(f) => {
                        drop(arming);
                        let inline = f.clone();
                        let spawned = crate::runtime::Builder::new()
                            .name("time::after_func")
                            .spawn(move || f());
                        if let Err(e) = spawned {
                            // Never lose the call (a context deadline rides on it): run it
                            // here, on the timer thread, delaying other timers meanwhile.
                            log::warn!(
                                target: "goway::time",
                                "after_func: {e}; running the function on the timer thread"
                            );
                            inline();
                        }
                    }
                }
            }
        }
    }
}
