//! Go's `time` for goroutines: [`sleep`], [`after`], [`tick`], [`Timer`], [`Ticker`] and
//! [`after_func`].
//!
//! All timers live in the runtime's one timer queue, served by a single timer thread (a plain
//! OS thread, not a worker; `runtime/timer.rs`): creating a timer never spawns a goroutine or a
//! thread, so `after(d)` in a hot `select!` loop costs a few small allocations (its one-slot
//! channel and its arming state) and one ordered insert. A timer whose channel nobody can
//! receive from any more is dropped when it fires, or sooner when the queue grows (Go 1.19
//! keeps such timers until they fire).
//!
//! Channels carry the [`Instant`] at which the timer fired and buffer one value, as Go's do: a
//! slow receiver of a [`Ticker`] finds one tick waiting; the ticks it missed are dropped.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender};
use crate::runtime::park::{park_forever, park_until};
use crate::runtime::registry::{Wait, Why};
use crate::runtime::timer::{self, Entry, Fire};

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
    let id = timer::queue().next_id();
    Cell::new(Action::Tick(tx)).arm(id, d, Some(d));
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
        let id = timer::queue().next_id();
        let cell = Cell::new(action);
        cell.arm(id, d, None);
        Timer { id, c, cell }
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
        self.cell.arm(self.id, d, None)
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
        let id = timer::queue().next_id();
        let cell = Cell::new(Action::Tick(tx));
        cell.arm(id, d, Some(d));
        Ticker { id, c: rx, cell }
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
        self.cell.arm(self.id, d, Some(d));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One timer: what it does when it fires, and its arming state. The state's lock is held while
/// the timer thread delivers the timer's value, so `stop` and `reset` see either "not yet
/// delivered" (and cancel it) or "delivered" (the value is in the channel), never a delivery in
/// flight.
///
/// Lock order: a cell, then the timer queue; the timer thread never holds the queue while
/// taking a cell.
struct Cell {
    action: Action,
    state: Mutex<Arming>,
}

struct Arming {
    /// Bumped by every arm and disarm: a queued firing with an older `seq` is stale.
    seq: u64,
    armed: bool,
}

enum Action {
    Send(Sender<Instant>),
    /// A ticker's channel (its period is the queue entry's).
    Tick(Sender<Instant>),
    Func(Arc<dyn Fn() + Send + Sync>),
    /// Runs on the timer thread (see [`inline_timer`]).
    Inline(Arc<dyn Fn() + Send + Sync>),
}

impl Cell {
    fn new(action: Action) -> Arc<Self> {
        Arc::new(Cell {
            action,
            state: Mutex::new(Arming {
                seq: 0,
                armed: false,
            }),
        })
    }

    /// (Re)arms the timer to fire after `d`, and every `period` after that; `true` if it was
    /// armed.
    fn arm(self: &Arc<Self>, id: u64, d: Duration, period: Option<Duration>) -> bool {
        let mut a = self.state.lock();
        let was = a.armed;
        a.seq += 1;
        a.armed = true;
        let q = timer::queue();
        q.remove(id);
        q.insert(
            id,
            timer::due_in(d),
            Entry {
                target: self.clone(),
                seq: a.seq,
                period,
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
        timer::queue().remove(id);
        was
    }
}

impl Fire for Cell {
    /// Delivers under the timer's own lock, after checking it is still armed.
    fn fire(&self, seq: u64, now: Instant) {
        let mut arming = self.state.lock();
        if !arming.armed || arming.seq != seq {
            return; // stopped or re-armed since it was queued
        }
        if !matches!(self.action, Action::Tick(_)) {
            arming.armed = false;
        }
        match &self.action {
            Action::Send(tx) | Action::Tick(tx) => {
                // Sent under the timer's lock (so stop() never races it), woken after.
                let (_, deferred) = tx.try_send_deferred(now);
                drop(arming);
                deferred.finish();
            }
            Action::Inline(f) => {
                drop(arming);
                f();
            }
            Action::Func(f) => {
                drop(arming);
                let f = f.clone();
                let inline = f.clone();
                let spawned = crate::runtime::Builder::new()
                    .name("time::after_func")
                    .spawn(move || f());
                if let Err(e) = spawned {
                    // Never lose the call (a context deadline rides on it): run it here, on
                    // the timer thread, delaying other timers meanwhile.
                    log::warn!(
                        target: "goway::time",
                        "after_func: {e}; running the function on the timer thread"
                    );
                    inline();
                }
            }
        }
    }

    /// Nobody can observe this timer any more.
    fn is_dead(&self) -> bool {
        match &self.action {
            Action::Send(tx) | Action::Tick(tx) => tx.is_closed(),
            Action::Func(_) | Action::Inline(_) => false,
        }
    }
}
