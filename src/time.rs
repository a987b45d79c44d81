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

use crate::chan::waiter::Waiter;
use crate::chan::{self, Receiver, Sender};

/// Pauses the calling goroutine (or thread) for at least `d`. A goroutine parks: its worker
/// runs other goroutines meanwhile.
///
/// ```
/// let t = std::time::Instant::now();
/// goway::time::sleep(std::time::Duration::from_millis(5));
/// assert!(t.elapsed() >= std::time::Duration::from_millis(5));
/// ```
pub fn sleep(d: Duration) {
    let Some(deadline) = Instant::now().checked_add(d) else {
        chan::park_forever();
        return;
    };
    while Instant::now() < deadline {
        chan::park_until(Some(deadline));
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
pub fn after(d: Duration) -> Receiver<Instant> {
    Timer::new(d).into_channel()
}

/// A channel that receives the time every `d` (Go's `time.Tick`). Ticking stops once the
/// receiver is dropped. A zero `d` gives a never-ready channel, as Go returns nil.
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return chan::never();
    }
    let (tx, rx) = chan::timer_channel();
    let id = wheel().next_id();
    wheel().insert(id, due_in(d), Action::Tick { tx, period: d });
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
    let w = wheel();
    let id = w.next_id();
    let action = Action::Func(Arc::new(f));
    let t = Timer {
        id,
        c: chan::never(),
        action: action.clone(),
    };
    w.insert(id, due_in(d), action);
    t
}

/// A single event: its channel receives the time once after the duration (Go's `time.Timer`).
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
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer").field("id", &self.id).finish()
    }
}

impl Timer {
    /// A timer that fires once after `d`. A zero duration fires at once.
    pub fn new(d: Duration) -> Self {
        let (tx, rx) = chan::timer_channel();
        let w = wheel();
        let id = w.next_id();
        let action = Action::Send(tx);
        let t = Timer {
            id,
            c: rx,
            action: action.clone(),
        };
        w.insert(id, due_in(d), action);
        t
    }

    /// The channel that receives the firing time (Go's `t.C`).
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    fn into_channel(self) -> Receiver<Instant> {
        self.c
    }

    /// Stops the timer. `true` if this call stopped an active timer, `false` if it had already
    /// fired or been stopped. Like Go's, it does not drain a value already in the channel.
    pub fn stop(&mut self) -> bool {
        wheel().remove(self.id)
    }

    /// Makes the timer fire after `d` from now. `true` if it was active (Go's `Reset`).
    pub fn reset(&mut self, d: Duration) -> bool {
        let w = wheel();
        let was = w.remove(self.id);
        w.insert(self.id, due_in(d), self.action.clone());
        was
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
    pub fn new(d: Duration) -> Self {
        if d.is_zero() {
            panic!("non-positive interval for NewTicker");
        }
        let (tx, rx) = chan::timer_channel();
        let w = wheel();
        let id = w.next_id();
        w.insert(
            id,
            due_in(d),
            Action::Tick {
                tx: tx.clone(),
                period: d,
            },
        );
        Ticker { id, c: rx, tx }
    }

    /// The channel that receives the ticks (Go's `t.C`).
    pub fn c(&self) -> &Receiver<Instant> {
        &self.c
    }

    /// Stops the ticker: no tick is sent after this returns (one may already be buffered).
    pub fn stop(&mut self) {
        wheel().remove(self.id);
    }

    /// Stops the ticker and restarts it with period `d`; the next tick comes `d` from now.
    ///
    /// # Panics
    /// If `d` is zero, with Go's message `non-positive interval for Ticker.Reset`.
    pub fn reset(&mut self, d: Duration) {
        if d.is_zero() {
            panic!("non-positive interval for Ticker.Reset");
        }
        let w = wheel();
        w.remove(self.id);
        w.insert(
            self.id,
            due_in(d),
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

/// Parks the calling goroutine and has the timer thread wake it: being woken from a plain
/// thread puts it on a worker's global run queue, which may drains only once the worker's local
/// queue is empty, so every goroutine queued before it runs first (Go's `Gosched` puts the
/// goroutine on the global queue for the same reason).
pub(crate) fn yield_to_all() {
    let w = Waiter::new();
    let wh = wheel();
    let id = wh.next_id();
    wh.insert(id, Instant::now(), Action::Wake(w.clone()));
    w.wait(None);
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
    /// Wakes a parked goroutine from the timer thread (see [`yield_to_all`]).
    Wake(Arc<Waiter>),
}

impl Action {
    /// Nobody can observe this timer any more.
    fn is_dead(&self) -> bool {
        match self {
            Action::Send(tx) | Action::Tick { tx, .. } => tx.is_closed(),
            Action::Func(_) | Action::Wake(_) => false,
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
    by_time: BTreeMap<(Instant, u64), Action>,
    /// When each pending timer is due.
    due: HashMap<u64, Instant>,
    next_id: u64,
    /// Size at which dead timers are swept out.
    sweep_at: usize,
}

const SWEEP_MIN: usize = 1024;

fn wheel() -> &'static Wheel {
    static W: OnceLock<&'static Wheel> = OnceLock::new();
    W.get_or_init(|| {
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
            .spawn(move || w.run())
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

    fn insert(&self, id: u64, when: Instant, action: Action) {
        // Swept timers are dropped after the lock is released (a channel's last sender closes
        // it and wakes its receivers).
        let mut swept = Vec::new();
        let mut s = self.state.lock();
        let earliest = s.by_time.keys().next().map(|k| k.0);
        if s.by_time.len() >= s.sweep_at {
            let State { by_time, due, .. } = &mut *s;
            let dead: Vec<(Instant, u64)> =
                by_time.iter().filter(|(_, a)| a.is_dead()).map(|(k, _)| *k).collect();
            for k in dead {
                due.remove(&k.1);
                swept.extend(by_time.remove(&k));
            }
            s.sweep_at = (s.by_time.len() * 2).max(SWEEP_MIN);
        }
        s.by_time.insert((when, id), action);
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
        let mut fired: Vec<(Instant, Action)> = Vec::new();
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
                while let Some(entry) = s.by_time.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let ((when, id), action) = entry.remove_entry();
                    s.due.remove(&id);
                    if let Action::Tick { tx, period } = &action {
                        if !tx.is_closed() {
                            // Go's next tick: the first multiple of the period after now.
                            let next = next_tick(when, *period, now);
                            s.by_time.insert((next, id), action.clone());
                            s.due.insert(id, next);
                        }
                    }
                    fired.push((now, action));
                }
            }
            // Deliver outside the lock: a send may wake a goroutine, a func spawns one.
            for (now, action) in fired.drain(..) {
                match action {
                    Action::Send(tx) | Action::Tick { tx, .. } => {
                        let _ = tx.try_send(now);
                    }
                    Action::Wake(w) => {
                        if w.try_select(0) {
                            w.unpark();
                        }
                    }
                    Action::Func(f) => {
                        let spawned = crate::runtime::Builder::new()
                            .name("time::after_func")
                            .spawn(move || f());
                        if let Err(e) = spawned {
                            log::error!(target: "goway::time", "after_func: {e}");
                        }
                    }
                }
            }
        }
    }
}
