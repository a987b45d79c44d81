//! Model checks (loom) of goway's parking protocol and channel core, and of may's `Park`.
//!
//! `src/runtime/park/waiter.rs` (the `Waiter` protocol), `src/chan/channel.rs` (the channel
//! core) and `src/chan/packet.rs` (a channel wait's `Packet`) take every synchronisation
//! primitive they use from a sibling module `shim`. The library's shims
//! (`src/runtime/park/shim.rs`, `src/chan/shim.rs`) hand them std/parking_lot/may; this file
//! compiles the *same three files* (and `error.rs`) next to the one `shim` below, built on
//! loom's atomics, `Arc`, `Mutex` and `UnsafeCell` (which reports two unordered accesses to a
//! packet's slot), with the parker being [`may_model::Park`]: a step-by-step model of may's `Park`
//! (`vendor/may/src/park.rs`), its worker-side `subscribe` and its timer thread. A coroutine
//! that nobody takes out of a park's slot and resumes stays blocked, so loom reports it as a
//! deadlock.
//!
//! Stubbed rather than modelled: the runtime registry (`block`, `Why`, `Site`), which only
//! records diagnostics; `is_coroutine` (every actor here is a coroutine); may's cancellation
//! (goway never cancels a parked goroutine). The per-thread pool is a loom thread-local, so the
//! real recycle-and-reuse path runs. `src/select/mod.rs` cannot be compiled here (it is
//! written against the public `Sender`/`Receiver` of `chan`, which reach the whole runtime),
//! so the select models drive the real `Chan::register_*`/`unregister_*`, `Waiter` and
//! `Packet` with line-by-line transcriptions of `select::run` and `RecvCase` / `SendCase`.
//!
//! Time is a model clock: it moves only when the model's timer thread fires a timer (to that
//! timer's deadline), which it may do at any point after the timer is armed.
//!
//! What the checker found, kept as tests that expect loom to fail (so CI shows it still does):
//! - may 0.3.51's `Park::subscribe` (timer armed before the coroutine is stored) loses a timed
//!   wake-up; vendor/may's order does not, and needs its resumed coroutine's wait for
//!   `wait_kernel`.
//! - may 0.3.51's `Park::check_park` (a load, then a plain store) loses the wake-up of a
//!   recycled `Waiter` whose flag still held a late unpark's permit: the lost wake-up behind the
//!   `pipeline` example's rare hangs, for which goway used to run a rescuer thread. vendor/may
//!   always swaps; goway's own models run on vendor/may as it is ([`GOWAY_MAY`]).
//!
//! Every model runs with a bounded number of preemptions (`loom::model::Builder`; 2 or 3, or
//! `LOOM_MAX_PREEMPTIONS` for a deeper search by hand); the whole file runs in seconds in
//! release mode. A failing model prints the park events of the failing execution; to see where
//! each blocked thread waits: `LOOM_LOCATION=1 cargo test --release --test loom_waiter NAME`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../src/chan/error.rs"]
mod error;

#[allow(dead_code)]
#[path = "../src/runtime/park/waiter.rs"]
mod waiter;

#[allow(dead_code)]
#[path = "../src/chan/packet.rs"]
mod packet;

#[allow(dead_code)]
#[path = "../src/chan/channel.rs"]
mod channel;

/// What `waiter.rs`, `packet.rs` and `channel.rs` import as `super::shim`: loom's types, the park model, and
/// stubs for the diagnostics.
mod shim {
    use std::cell::RefCell;

    pub use loom::cell::UnsafeCell;
    pub use loom::sync::Arc;
    pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    pub use crate::may_model::{Blocker, Instant};
    pub use crate::waiter::Waiter;

    /// parking_lot's interface (`lock()` returns the guard) over loom's mutex.
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub fn new(v: T) -> Self {
            Mutex(loom::sync::Mutex::new(v))
        }

        pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    /// Every actor of these models is a coroutine parked through the `Park` model.
    pub fn is_coroutine() -> bool {
        true
    }

    pub fn yield_now() {
        loom::thread::yield_now();
    }

    // The runtime registry only records what a goroutine waits for: stubbed.
    pub type Site = &'static str;

    #[derive(Clone, Copy, Debug)]
    pub enum Wait {
        ChanSend,
        ChanRecv,
        Model,
    }

    #[derive(Clone, Copy, Debug)]
    pub struct Why;

    impl Why {
        pub fn at(_wait: Wait, _site: Site) -> Why {
            Why
        }
    }

    pub struct Blocked;

    pub fn block(_why: Why, _timed: bool, _coroutine: bool) -> Blocked {
        Blocked
    }

    /// How often, over all executions of all models, a waiter came back out of the pool.
    pub static REUSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    // The per-thread pool: one per loom thread, as the library's is one per OS thread.
    loom::thread_local! {
        static POOL: RefCell<Vec<Arc<Waiter>>> = RefCell::new(Vec::new());
    }

    pub fn pool_take(_coroutine: bool) -> Option<Arc<Waiter>> {
        let w = POOL.with(|p| p.borrow_mut().pop());
        if w.is_some() {
            REUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        w
    }

    pub fn pool_put(w: Arc<Waiter>, _coroutine: bool) {
        POOL.with(|p| p.borrow_mut().push(w));
    }

    /// Drops this thread's pooled waiters while the thread still runs (a model's actors call
    /// it last).
    pub fn pool_clear() {
        let pooled = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
        drop(pooled);
    }
}

/// A model of may's coroutine parking (`vendor/may/src/park.rs`), of the worker that runs an
/// event source's `subscribe` once the coroutine has yielded, and of the timer thread.
///
/// - A coroutine is a loom thread. `Park::park_timeout` hands its `subscribe` to the model's
///   worker thread and suspends: the thread parks until somebody takes its [`Co`] out of a
///   park's `wait_co` slot and resumes it (an `unpark`, the timer, or `subscribe`'s fast path).
///   A coroutine left in a slot, or never put in one, is never resumed: loom reports a deadlock.
/// - `subscribe` runs on the worker concurrently with whatever the coroutine does once resumed,
///   as in may (the resumer runs it on another thread while the worker finishes `subscribe`).
/// - The timer thread fires each armed timer at a moment of loom's choosing: it unlinks it,
///   moves the clock to its deadline, takes the coroutine out of the slot, if any, and resumes
///   it with the timeout result (`set_co_para(TimedOut)`, `run_coroutine`).
/// - Model-only checks (plain std atomics, so no extra interleavings): the worker never touches
///   a dropped park, and never arms a timer for a park call that has already returned.
/// - Not modelled: cancellation (goway never cancels a parked goroutine), the thread parker
///   (`ThreadPark`, for waits outside coroutines).
pub mod may_model {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::sync::Arc as StdArc;
    use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering::SeqCst};
    use std::time::Duration;

    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
    use loom::sync::{Condvar, Mutex};

    /// Which `Park::subscribe` to run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Order {
        /// vendor/may as patched: publish the coroutine, re-check the flag, then arm the
        /// timer; the resumed coroutine waits for `wait_kernel` (in `yield_back`) before it
        /// goes on to remove the handle.
        Patched,
        /// may 0.3.51 as released: arm the timer, then publish the coroutine.
        Original,
        /// The patched order without the resumed coroutine's wait for `wait_kernel`.
        PatchedNoWait,
    }

    /// Which `Park::check_park` to run.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CheckPark {
        /// may 0.3.51's: a set flag is cleared with a load and then a plain store ("fast
        /// check, since only one consumer to park"), else with a swap.
        LoadThenStore,
        /// Always the swap, which reads the latest flag (vendor/may's fix).
        Swap,
    }

    /// The may a model runs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct May {
        pub order: Order,
        pub check_park: CheckPark,
    }

    /// vendor/may as it is.
    pub const VENDORED: May = May {
        order: Order::Patched,
        check_park: CheckPark::Swap,
    };

    /// may 0.3.51 as released.
    pub const RELEASED: May = May {
        order: Order::Original,
        check_park: CheckPark::LoadThenStore,
    };

    /// vendor/may with may's own `check_park` (a load, then a plain store) put back: the
    /// reverted fix, which loses wake-ups of recycled waiters.
    pub const LOAD_THEN_STORE: May = May {
        order: Order::Patched,
        check_park: CheckPark::LoadThenStore,
    };

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ParkError {
        Timeout,
    }

    std::thread_local! {
        /// The current execution's park events. loom runs a model's threads on the test's
        /// thread and stops at the first failing execution, so after a failure this holds the
        /// failing interleaving.
        static EVENTS: RefCell<Vec<(&'static str, &'static str)>> = const { RefCell::new(Vec::new()) };
    }

    fn ev(what: &'static str) {
        let who = NAME.with(|n| n.get());
        EVENTS.with(|e| e.borrow_mut().push((who, what)));
    }

    /// The park events of the last execution, one per line.
    pub fn events() -> String {
        EVENTS.with(|e| {
            e.borrow()
                .iter()
                .map(|(who, what)| format!("  {who:<8} {what}\n"))
                .collect()
        })
    }

    const SUSPENDED: usize = 0;
    const RESUMED: usize = 1;
    const TIMED_OUT: usize = 2;

    /// A coroutine: its thread, and the result it is resumed with (may's co para).
    pub struct Co {
        thread: loom::thread::Thread,
        para: AtomicUsize,
    }

    impl Co {
        /// Runs (resumes) the coroutine: whoever holds the `Co` does this once.
        fn resume(&self, timed_out: bool) {
            ev(if timed_out {
                "resumes the coroutine (timed out)"
            } else {
                "resumes the coroutine"
            });
            let para = if timed_out { TIMED_OUT } else { RESUMED };
            let old = self.para.swap(para, Release);
            assert_eq!(old, SUSPENDED, "a coroutine resumed twice");
            self.thread.unpark();
        }

        /// The coroutine side: stays here until resumed. `true` if resumed by the timer.
        fn suspend(&self) -> bool {
            while self.para.load(Acquire) == SUSPENDED {
                loom::thread::park();
            }
            self.para.swap(SUSPENDED, Acquire) == TIMED_OUT
        }
    }

    /// may's `AtomicOption<CoroutineImpl>` (whose every operation is a swap).
    #[derive(Default)]
    struct Slot(Mutex<Option<StdArc<Co>>>);

    impl Slot {
        fn store(&self, co: StdArc<Co>) {
            let old = self.0.lock().unwrap().replace(co);
            assert!(old.is_none(), "a coroutine overwritten in a park's slot");
        }

        fn take(&self) -> Option<StdArc<Co>> {
            self.0.lock().unwrap().take()
        }
    }

    /// A `subscribe` for the worker: what `yield_with(park)` hands over.
    struct Sub {
        park: StdArc<ParkInner>,
        co: StdArc<Co>,
        timeout: Option<Duration>,
        call: u64,
    }

    struct Timer {
        id: usize,
        deadline: u64,
        slot: StdArc<Slot>,
    }

    #[derive(Default)]
    struct Sched {
        subs: VecDeque<Sub>,
        timers: VecDeque<Timer>,
        next_timer: usize,
        shutdown: bool,
    }

    /// The model's scheduler: one worker thread (runs `subscribe`s), one timer thread, a clock.
    pub struct Rt {
        may: May,
        sched: Mutex<Sched>,
        worker_cv: Condvar,
        timer_cv: Condvar,
        /// Model time in nanoseconds; only the timer thread moves it.
        clock: StdAtomicU64,
    }

    /// What a model's main thread gets from [`Rt::start`]; [`Running::stop`] ends it.
    pub struct Running {
        rt: StdArc<Rt>,
        threads: Vec<loom::thread::JoinHandle<()>>,
    }

    loom::thread_local! {
        /// The model thread's name, for the event log.
        static NAME: std::cell::Cell<&'static str> = std::cell::Cell::new("main");
    }

    fn spawn_named<T: 'static>(
        name: &'static str,
        f: impl FnOnce() -> T + 'static,
    ) -> loom::thread::JoinHandle<T> {
        loom::thread::spawn(move || {
            NAME.with(|n| n.set(name));
            f()
        })
    }

    loom::thread_local! {
        static CURRENT: RefCell<Option<(StdArc<Rt>, StdArc<Co>)>> = RefCell::new(None);
    }

    fn current() -> (StdArc<Rt>, StdArc<Co>) {
        CURRENT.with(|c| {
            c.borrow()
                .clone()
                .expect("not a model coroutine: spawn it with Running::go")
        })
    }

    fn enter(rt: &StdArc<Rt>) {
        let co = StdArc::new(Co {
            thread: loom::thread::current(),
            para: AtomicUsize::new(SUSPENDED),
        });
        CURRENT.with(|c| *c.borrow_mut() = Some((rt.clone(), co)));
    }

    fn leave() {
        crate::shim::pool_clear();
        let me = CURRENT.with(|c| c.borrow_mut().take());
        drop(me);
    }

    impl Rt {
        /// Starts the worker (and, if `timer`, the timer thread) and makes the calling thread a
        /// model coroutine.
        pub fn start(may: May, timer: bool) -> Running {
            EVENTS.with(|e| e.borrow_mut().clear());
            let rt = StdArc::new(Rt {
                may,
                sched: Mutex::new(Sched::default()),
                worker_cv: Condvar::new(),
                timer_cv: Condvar::new(),
                clock: StdAtomicU64::new(0),
            });
            let mut threads = Vec::new();
            let r = rt.clone();
            threads.push(spawn_named("worker", move || r.worker()));
            if timer {
                let r = rt.clone();
                threads.push(spawn_named("timer", move || r.timer()));
            }
            enter(&rt);
            Running { rt, threads }
        }

        fn worker(&self) {
            let mut g = self.sched.lock().unwrap();
            loop {
                if let Some(sub) = g.subs.pop_front() {
                    drop(g);
                    self.subscribe(sub);
                    g = self.sched.lock().unwrap();
                } else if g.shutdown {
                    return;
                } else {
                    g = self.worker_cv.wait(g).unwrap();
                }
            }
        }

        fn timer(&self) {
            let mut g = self.sched.lock().unwrap();
            loop {
                if let Some(t) = g.timers.pop_front() {
                    drop(g);
                    // The timer thread's handler: `c.take()`, then run it with `TimedOut`.
                    self.clock.fetch_max(t.deadline, SeqCst);
                    match t.slot.take() {
                        Some(co) => co.resume(true),
                        None => ev("timer: fires on an empty slot"),
                    }
                    g = self.sched.lock().unwrap();
                } else if g.shutdown {
                    return;
                } else {
                    g = self.timer_cv.wait(g).unwrap();
                }
            }
        }

        fn add_timer(&self, dur: Duration, slot: StdArc<Slot>) -> usize {
            ev("subscribe: arms the timer");
            let mut g = self.sched.lock().unwrap();
            g.next_timer += 1;
            let id = g.next_timer;
            let deadline = self.clock.load(SeqCst) + dur.as_nanos() as u64;
            g.timers.push_back(Timer { id, deadline, slot });
            drop(g);
            self.timer_cv.notify_one();
            id
        }

        /// `if h.is_link() { del_timer(h) }`: unlinks the timer unless it fired already.
        fn del_timer(&self, id: usize) {
            self.sched.lock().unwrap().timers.retain(|t| t.id != id);
        }

        /// `yield_with(park)`: the coroutine leaves its worker, which then runs `subscribe`.
        fn submit(&self, sub: Sub) {
            self.sched.lock().unwrap().subs.push_back(sub);
            self.worker_cv.notify_one();
        }

        /// `<Park as EventSource>::subscribe`, on the worker.
        fn subscribe(&self, sub: Sub) {
            let Sub {
                park: p,
                co,
                timeout,
                call,
            } = sub;
            let live = |p: &ParkInner| {
                assert!(!p.dropped.load(SeqCst), "subscribe touched a dropped park");
            };
            match self.may.order {
                Order::Patched | Order::PatchedNoWait => {
                    live(&p);
                    p.wait_kernel.store(true, Release); // delay_drop()
                    // register the coroutine: from here on it may run on another thread
                    live(&p);
                    p.wait_co.store(co);
                    ev("subscribe: stored the coroutine");
                    live(&p);
                    if p.state.load(Acquire) {
                        // take it back (an unpark may have taken it already), release the
                        // park, then run it
                        ev("subscribe: flag set, takes the coroutine back");
                        let co = p.wait_co.take();
                        p.wait_kernel.store(false, Release); // drop(g)
                        if let Some(co) = co {
                            co.resume(false);
                        }
                        return;
                    }
                    if let Some(dur) = timeout {
                        live(&p);
                        let id = self.add_timer(dur, p.wait_co.clone());
                        p.check_arming(call);
                        p.set_timeout_handle(id);
                    }
                    live(&p);
                    p.wait_kernel.store(false, Release); // g dropped
                }
                Order::Original => {
                    live(&p);
                    if let Some(dur) = timeout {
                        let id = self.add_timer(dur, p.wait_co.clone());
                        p.check_arming(call);
                        p.set_timeout_handle(id);
                    }
                    live(&p);
                    p.wait_kernel.store(true, Release); // delay_drop()
                    live(&p);
                    p.wait_co.store(co);
                    ev("subscribe: stored the coroutine");
                    live(&p);
                    if p.state.load(Acquire) {
                        // fast_wake_up(), with the guard still held
                        ev("subscribe: flag set, takes the coroutine back");
                        if let Some(co) = p.wait_co.take() {
                            co.resume(false);
                        }
                        live(&p);
                        p.wait_kernel.store(false, Release);
                        return;
                    }
                    live(&p);
                    p.wait_kernel.store(false, Release);
                }
            }
        }
    }

    impl Running {
        /// Spawns a model coroutine named `name` running `f`.
        pub fn go<T: 'static>(
            &self,
            name: &'static str,
            f: impl FnOnce() -> T + 'static,
        ) -> loom::thread::JoinHandle<T> {
            let rt = self.rt.clone();
            spawn_named(name, move || {
                enter(&rt);
                let r = f();
                leave();
                r
            })
        }

        /// Ends the worker and timer threads; call once every coroutine is done.
        pub fn stop(self) {
            leave();
            {
                let mut g = self.rt.sched.lock().unwrap();
                assert!(g.subs.is_empty());
                g.shutdown = true;
            }
            self.rt.worker_cv.notify_one();
            self.rt.timer_cv.notify_one();
            for t in self.threads {
                t.join().unwrap();
            }
        }
    }

    /// The fields of may's `Park` (which the subscriber reaches through a raw pointer, and the
    /// timer through the slot's `Arc`).
    struct ParkInner {
        wait_co: StdArc<Slot>,
        state: AtomicBool,
        /// The armed timer's id; 0 for none.
        timeout_handle: AtomicUsize,
        wait_kernel: AtomicBool,
        // Model-only checks.
        dropped: std::sync::atomic::AtomicBool,
        /// Counts `park_timeout` entries and exits (odd while inside one).
        calls: StdAtomicU64,
    }

    impl ParkInner {
        fn set_timeout_handle(&self, id: usize) -> usize {
            self.timeout_handle.swap(id, Relaxed)
        }

        fn check_arming(&self, call: u64) {
            assert_eq!(
                self.calls.load(SeqCst),
                call,
                "a park's timer armed, its handle stored, after its park_timeout call returned: \
                 a timer left armed cuts a later park short"
            );
        }
    }

    /// may's `Park` (the coroutine side), with its `unpark`.
    pub struct Park {
        inner: StdArc<ParkInner>,
        rt: StdArc<Rt>,
    }

    impl Park {
        pub fn new() -> Park {
            let (rt, _) = current();
            Park {
                inner: StdArc::new(ParkInner {
                    wait_co: StdArc::new(Slot::default()),
                    state: AtomicBool::new(false),
                    timeout_handle: AtomicUsize::new(0),
                    wait_kernel: AtomicBool::new(false),
                    dropped: std::sync::atomic::AtomicBool::new(false),
                    calls: StdAtomicU64::new(0),
                }),
                rt,
            }
        }

        /// `true` if the coroutine must really park; clears the flag.
        fn check_park(&self) -> bool {
            let p = &self.inner;
            // fast check, since only one consumer to park
            if self.rt.may.check_park == CheckPark::LoadThenStore && p.state.load(Acquire) {
                p.state.store(false, Release);
                return false;
            }
            !p.state.swap(false, AcqRel)
        }

        pub fn unpark(&self) {
            let p = &self.inner;
            if !p.state.swap(true, AcqRel) {
                // wake_up(): schedule the coroutine
                match p.wait_co.take() {
                    Some(co) => co.resume(false),
                    None => ev("unpark: sets the flag, slot empty"),
                }
            } else {
                ev("unpark: flag already set, no wake-up");
            }
        }

        fn remove_timeout_handle(&self) {
            let id = self.inner.set_timeout_handle(0);
            if id != 0 {
                self.rt.del_timer(id);
            }
        }

        pub fn park_timeout(&self, dur: Option<Duration>) -> Result<(), ParkError> {
            let p = &self.inner;
            if !self.check_park() {
                ev("park: flag was set, clears it and returns");
                return Ok(());
            }
            // before a new yield wait the kernel done
            while p.wait_kernel.load(Acquire) {
                loom::thread::yield_now();
            }
            let call = p.calls.fetch_add(1, SeqCst) + 1;
            ev("park: yields to the worker");
            let (rt, co) = current();
            rt.submit(Sub {
                park: p.clone(),
                co: co.clone(),
                timeout: dur,
                call,
            });
            let timed_out = co.suspend();
            ev("park: resumed");
            if self.rt.may.order == Order::Patched {
                // goway patch, in `Park::yield_back`: the subscriber may still be arming the
                // timer (or re-checking the cancel state)
                while p.wait_kernel.load(Acquire) {
                    loom::thread::yield_now();
                }
            }
            // clear the trigger state
            self.check_park();
            self.remove_timeout_handle();
            p.calls.fetch_add(1, SeqCst);
            if timed_out {
                Err(ParkError::Timeout)
            } else {
                Ok(())
            }
        }
    }

    impl Default for Park {
        fn default() -> Self {
            Park::new()
        }
    }

    impl Drop for Park {
        fn drop(&mut self) {
            let p = &self.inner;
            // wait the kernel finish
            while p.wait_kernel.load(Acquire) {
                loom::thread::yield_now();
            }
            p.set_timeout_handle(0);
            p.dropped.store(true, SeqCst);
        }
    }

    /// may's `Blocker` for a coroutine: what the waiter parks on.
    pub struct Blocker(Park);

    impl Blocker {
        pub fn new(_ignore_cancel: bool) -> Blocker {
            Blocker(Park::new())
        }

        pub fn park(&self, timeout: Option<Duration>) -> Result<(), ParkError> {
            self.0.park_timeout(timeout)
        }

        pub fn unpark(&self) {
            self.0.unpark();
        }
    }

    /// `std::time::Instant` on the model clock.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Instant(u64);

    impl Instant {
        pub fn now() -> Instant {
            let (rt, _) = current();
            Instant(rt.clock.load(SeqCst))
        }

        /// The model time `ms` milliseconds after the start.
        pub fn at_ms(ms: u64) -> Instant {
            Instant(ms * 1_000_000)
        }
    }

    impl std::ops::Sub for Instant {
        type Output = Duration;

        fn sub(self, earlier: Instant) -> Duration {
            Duration::from_nanos(self.0.saturating_sub(earlier.0))
        }
    }
}

use channel::Chan;
use error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use may_model::{LOAD_THEN_STORE, May, Order, Park, ParkError, RELEASED, Rt, VENDORED};
use packet::Packet;
use shim::{Arc, Instant, Wait, Why};
use waiter::Waiter;

/// The may that goway's models run on: vendor/may as it is.
///
/// may 0.3.51's `check_park` cleared a set flag with a load and a plain store. With goway's
/// recycled waiters (whose flag may still hold a late unpark's permit) that lost wake-ups: see
/// [`waiter_reused_and_committed_again_with_load_then_store_check_park_loses_the_wakeup`].
/// vendor/may always swaps.
const GOWAY_MAY: May = VENDORED;

/// Runs `f` under loom with at most `preemptions` preemptions per execution (or as many as
/// `LOOM_MAX_PREEMPTIONS` says, for a deeper search by hand); on a failure, prints the failing
/// execution's park events.
fn check(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(preemptions);
    }
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| b.check(f))) {
        eprintln!(
            "park events of the failing execution:\n{}",
            may_model::events()
        );
        std::panic::resume_unwind(e);
    }
}

/// Runs a model that loom must fail; returns loom's failure message and the failing
/// execution's park events.
fn check_fails(preemptions: usize, f: impl Fn() + Sync + Send + 'static) -> (String, String) {
    let r = catch_unwind(AssertUnwindSafe(|| check(preemptions, f)));
    let Err(payload) = r else {
        panic!("loom found no failure");
    };
    let msg = if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "(non-string panic)".to_string()
    };
    (msg, may_model::events())
}

/// `true` if `events` has lines containing each of `steps`, in that order.
fn in_order(events: &str, steps: &[&str]) -> bool {
    let mut lines = events.lines();
    steps.iter().all(|s| lines.any(|l| l.contains(s)))
}

fn why() -> Why {
    Why::at(Wait::Model, "loom model")
}

// ----- may's Park ---------------------------------------------------------------------------

/// A timed park nobody unparks (a sleep): it must time out.
fn park_sleep(may: May) {
    let rt = Rt::start(may, true);
    let park = Park::new();
    assert_eq!(
        park.park_timeout(Some(Duration::from_millis(1))),
        Err(ParkError::Timeout)
    );
    drop(park);
    rt.stop();
}

#[test]
fn park_sleep_vendored_may() {
    check(3, || park_sleep(VENDORED));
}

/// may 0.3.51's order (timer armed before the coroutine is stored) loses the timed wake-up:
/// the timer fires on the empty slot, the coroutine is stored after, nobody ever resumes it.
#[test]
fn park_sleep_released_may_loses_the_timed_wakeup() {
    let (msg, events) = check_fails(3, || park_sleep(RELEASED));
    eprintln!("loom on may 0.3.51's park: {msg}\n{events}");
    assert!(msg.contains("deadlock"), "unexpected failure: {msg}");
    assert!(
        in_order(
            &events,
            &[
                "subscribe: arms the timer",
                "timer: fires on an empty slot",
                "subscribe: stored the coroutine",
            ]
        ),
        "not the lost timed wake-up:\n{events}"
    );
}

/// A timed park raced by an unpark, then two more parks of the same `Park` that nobody
/// unparks: the first returns (woken or timed out), a permit the unpark left ends the second at
/// once, and the last one times out: no coroutine is lost and no timer of an earlier call cuts
/// a later one short.
fn park_unpark_then_sleep(may: May) {
    let rt = Rt::start(may, true);
    let park = Arc::new(Park::new());
    let p = park.clone();
    let unparker = rt.go("unparker", move || p.unpark());
    let _ = park.park_timeout(Some(Duration::from_millis(1)));
    unparker.join().unwrap();
    let _ = park.park_timeout(Some(Duration::from_millis(2)));
    let r = park.park_timeout(Some(Duration::from_millis(2)));
    assert_eq!(r, Err(ParkError::Timeout));
    drop(park);
    rt.stop();
}

#[test]
fn park_unpark_race_vendored_may() {
    check(2, || park_unpark_then_sleep(VENDORED));
}

/// Without the resumed coroutine's wait for `wait_kernel`, the patched order can arm a timer
/// after the park call it belongs to has returned.
#[test]
fn park_patched_order_needs_the_wait_for_wait_kernel() {
    let may = May {
        order: Order::PatchedNoWait,
        ..VENDORED
    };
    let (msg, events) = check_fails(2, move || park_unpark_then_sleep(may));
    eprintln!("loom on the patched order without the wait: {msg}\n{events}");
    assert!(msg.contains("call returned"), "unexpected failure: {msg}");
}

// ----- the Waiter ----------------------------------------------------------------------------

/// One waiter with a deadline; a committer (`try_select` + `unpark`) and the timer race.
#[test]
fn waiter_commit_vs_timeout() {
    check(2, || {
        let rt = Rt::start(GOWAY_MAY, true);
        let w = Waiter::new();
        let w2 = w.clone();
        let committer = rt.go("committer", move || {
            if w2.try_select(4) {
                w2.unpark();
                true
            } else {
                false
            }
        });
        let got = w.wait(Some(Instant::at_ms(1)), why());
        let committed = committer.join().unwrap();
        assert_eq!(got, committed.then_some(4));
        Waiter::release(w);
        rt.stop();
    });
}

/// The same race, then the waiter is recycled while its committer may still hold it (then it
/// is not pooled) or after (then it is, possibly with the committer's unpark permit still set
/// and the first wait's timer still armed), and used again for a timed wait that nobody
/// completes: the second wait must time out, whatever the stale permit or timer do.
#[test]
fn waiter_reuse_with_stale_permit() {
    check(2, || {
        let rt = Rt::start(GOWAY_MAY, true);
        let w = Waiter::new();
        let w2 = w.clone();
        let committer = rt.go("committer", move || {
            if w2.try_select(0) {
                w2.unpark();
                true
            } else {
                false
            }
        });
        let first = w.wait(Some(Instant::at_ms(1)), why());
        Waiter::release(w);
        let w = Waiter::new();
        assert_eq!(w.wait(Some(Instant::at_ms(2)), why()), None);
        Waiter::release(w);
        let committed = committer.join().unwrap();
        assert_eq!(first, committed.then_some(0));
        rt.stop();
    });
    assert!(
        shim::REUSED.load(Relaxed) > 0,
        "no execution reused a waiter"
    );
}

/// A waiter committed by one peer (whose unpark may land after the wait saw the commit and
/// returned: a stale permit), recycled, and committed again by another: both waits return
/// their case.
fn waiter_reused_and_committed_again(may: May) {
    check(2, move || {
        let rt = Rt::start(may, false);
        let w = Waiter::new();
        let w1 = w.clone();
        let first = rt.go("first", move || {
            assert!(w1.try_select(0));
            w1.unpark();
        });
        assert_eq!(w.wait(None, why()), Some(0));
        first.join().unwrap();
        // Nobody else holds it now: it goes to the pool and comes back.
        Waiter::release(w);
        let w = Waiter::new();
        let w2 = w.clone();
        let second = rt.go("second", move || {
            assert!(w2.try_select(1));
            w2.unpark();
        });
        assert_eq!(w.wait(None, why()), Some(1));
        second.join().unwrap();
        Waiter::release(w);
        rt.stop();
    });
}

#[test]
fn waiter_reused_and_committed_again_with_vendored_may() {
    waiter_reused_and_committed_again(VENDORED);
}

/// With may 0.3.51's `check_park` (the fix reverted), the second wait can miss its commit: the waiter's park
/// clears the stale permit with a plain store after a load that need not see the second
/// peer's unpark (which found the flag already set and so woke nobody), the state re-check
/// after it need not see the second commit either, and the waiter parks with nobody left to
/// wake it. A store-buffer reordering (store, then load of another location) allows this on
/// x86 as well.
#[test]
fn waiter_reused_and_committed_again_with_load_then_store_check_park_loses_the_wakeup() {
    let (msg, events) = check_fails(2, || waiter_reused_and_committed_again(LOAD_THEN_STORE));
    eprintln!("loom on a recycled waiter with may 0.3.51's check_park: {msg}\n{events}");
    assert!(msg.contains("deadlock"), "unexpected failure: {msg}");
    assert!(
        in_order(
            &events,
            &[
                "unpark: sets the flag, slot empty",
                "unpark: flag already set, no wake-up",
                "park: flag was set, clears it and returns",
                "park: yields to the worker",
                "subscribe: stored the coroutine",
            ]
        ),
        "not the absorbed unpark:\n{events}"
    );
}

/// A select-like withdrawal (`try_abort`) against a peer committing one of its packets:
/// exactly one wins; a committed value is found in the slot, an aborted packet gets it back.
#[test]
fn waiter_abort_vs_commit() {
    check(3, || {
        let rt = Rt::start(GOWAY_MAY, false);
        let w = Waiter::new();
        let packet = Packet::new(w.clone(), 1, None);
        let p = packet.clone();
        let committer = rt.go("committer", move || {
            // A sender handing a value to a waiting receiver (`try_send_locked`).
            // SAFETY: the only peer (the channel's lock is not modelled here): it writes
            // before its commit and touches the slot again only if the commit failed.
            unsafe { p.put(7) };
            if p.try_select() {
                p.waiter.unpark();
                true
            } else {
                // SAFETY: as above.
                assert_eq!(unsafe { p.take() }, Some(7));
                false
            }
        });
        let aborted = w.try_abort();
        let chosen = if aborted { None } else { w.selected() };
        let committed = committer.join().unwrap();
        assert_eq!(aborted, !committed);
        assert_eq!(chosen, committed.then_some(1));
        // SAFETY: the owner, after joining the only peer.
        assert_eq!(unsafe { packet.take() }, committed.then_some(7));
        drop(packet);
        Waiter::release(w);
        rt.stop();
    });
}

// ----- the channel core ----------------------------------------------------------------------

fn chan(cap: usize) -> Arc<Chan<u32>> {
    Arc::new(Chan::new(cap, "loom model"))
}

/// Two blocking sends and two blocking receives: the values arrive, in order.
fn send_vs_recv(cap: usize, preemptions: usize) {
    check(preemptions, move || {
        let rt = Rt::start(GOWAY_MAY, false);
        let c = chan(cap);
        let tx = c.clone();
        let sender = rt.go("sender", move || {
            tx.send(7, None).unwrap();
            tx.send(8, None).unwrap();
        });
        assert_eq!(c.recv(None).ok(), Some(7));
        assert_eq!(c.recv(None).ok(), Some(8));
        sender.join().unwrap();
        rt.stop();
    });
}

#[test]
fn chan0_send_vs_recv() {
    send_vs_recv(0, 2);
}

#[test]
fn chan1_send_vs_recv() {
    send_vs_recv(1, 2);
}

/// Sends (the last one blocked, or about to block) against a close, with a receiver that
/// receives until the close: each value is either received and its send succeeded, or its
/// send got it back.
fn send_vs_close(may: May, cap: usize, preemptions: usize) {
    check(preemptions, move || {
        let rt = Rt::start(may, false);
        let c = chan(cap);
        let tx = c.clone();
        let sender = rt.go("sender", move || {
            // With a buffer, the first send fills it and the second one waits.
            let values: &[u32] = if cap > 0 { &[6, 7] } else { &[7] };
            values
                .iter()
                .map(|&v| (v, tx.send(v, None)))
                .collect::<Vec<_>>()
        });
        let cl = c.clone();
        let closer = rt.go("closer", move || assert!(cl.close()));
        let mut got = Vec::new();
        while let Ok(v) = c.recv(None) {
            got.push(v);
        }
        let sent = sender.join().unwrap();
        closer.join().unwrap();
        let delivered: Vec<u32> = sent
            .iter()
            .filter_map(|(v, r)| match r {
                Ok(()) => Some(*v),
                Err(SendTimeoutError::Closed(back)) => {
                    assert_eq!(back, v);
                    None
                }
                Err(e) => panic!("unexpected {e:?}"),
            })
            .collect();
        assert_eq!(got, delivered);
        assert!(c.is_closed());
        rt.stop();
    });
}

#[test]
fn chan0_send_vs_close() {
    send_vs_close(GOWAY_MAY, 0, 2);
}

#[test]
fn chan1_send_vs_close() {
    send_vs_close(GOWAY_MAY, 1, 2);
}

/// The lost wake-up of [`waiter_reused_and_committed_again_with_load_then_store_check_park_loses_the_wakeup`]
/// through the channel API: a receiver whose first `recv` was served without parking recycles
/// its waiter with the sender's permit, and its second `recv` misses the close.
#[test]
fn chan0_send_vs_close_with_load_then_store_check_park_loses_the_wakeup() {
    let (msg, events) = check_fails(2, || send_vs_close(LOAD_THEN_STORE, 0, 2));
    eprintln!("loom on send vs close with may 0.3.51's check_park: {msg}\n{events}");
    assert!(msg.contains("deadlock"), "unexpected failure: {msg}");
    assert!(
        in_order(
            &events,
            &[
                "unpark: flag already set, no wake-up",
                "park: flag was set, clears it and returns",
                "park: yields to the worker",
            ]
        ),
        "not the absorbed unpark:\n{events}"
    );
}

/// A receive with a deadline against a send: with no buffer both wait with a deadline and
/// either both complete or both time out; with a buffer the value is received or stays there.
fn recv_timeout_vs_send(cap: usize, preemptions: usize) {
    check(preemptions, move || {
        let rt = Rt::start(GOWAY_MAY, true);
        let c = chan(cap);
        let tx = c.clone();
        let sender = rt.go("sender", move || tx.send(7, Some(Instant::at_ms(1))));
        let got = c.recv(Some(Instant::at_ms(1)));
        let sent = sender.join().unwrap();
        match (got, sent) {
            (Ok(7), Ok(())) => {}
            (Err(RecvTimeoutError::Timeout), Ok(())) if cap > 0 => {
                assert_eq!(c.try_recv(), Ok(7));
            }
            (Err(RecvTimeoutError::Timeout), Err(SendTimeoutError::Timeout(7))) if cap == 0 => {}
            other => panic!("lost or duplicated: {other:?}"),
        }
        assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
        rt.stop();
    });
}

#[test]
fn chan0_recv_timeout_vs_send() {
    recv_timeout_vs_send(0, 2);
}

#[test]
fn chan1_recv_timeout_vs_send() {
    recv_timeout_vs_send(1, 2);
}

/// `select::run` with two `RecvCase`s, transcribed (it cannot be compiled here: see the top of
/// the file), in a fixed case order: poll, register, wait, unregister the others, complete.
fn select_recv2(chans: [&Chan<u32>; 2]) -> (usize, Option<u32>) {
    loop {
        // Step 1: poll.
        for (i, c) in chans.iter().enumerate() {
            match c.try_recv() {
                Ok(v) => return (i, Some(v)),
                Err(TryRecvError::Closed) => return (i, None),
                Err(TryRecvError::Empty) => {}
            }
        }
        // Step 2: register everywhere.
        let w = Waiter::new();
        let mut packets = [None, None];
        let mut ready = false;
        for (i, c) in chans.iter().enumerate() {
            match c.register_recv(&w, i) {
                Ok(p) => packets[i] = Some(p),
                Err(()) => {
                    ready = true;
                    break;
                }
            }
        }
        let chosen = if ready {
            if w.try_abort() { None } else { w.selected() }
        } else {
            // Step 3: park until a peer commits one case.
            w.wait(None, why())
        };
        for (i, c) in chans.iter().enumerate() {
            if Some(i) != chosen {
                if let Some(p) = packets[i].take() {
                    c.unregister_recv(&p);
                }
            }
        }
        let result = chosen.map(|i| {
            let p = packets[i].take().expect("the chosen case was registered");
            // SAFETY: the owner, committed through this packet (as `RecvCase::complete`).
            (i, unsafe { p.take() })
        });
        Waiter::release(w);
        match result {
            Some(r) => return r,
            None if ready => continue,
            None => unreachable!("a select without a deadline only returns with a case"),
        }
    }
}

/// A 2-case select receiving from two unbuffered channels, against a blocking send on one and a
/// `try_send` on the other: exactly one case commits, the `try_send` succeeds exactly when the
/// select took its value, the blocked sender is then served by a plain receive, and no packet
/// of the select is left to take a later value.
#[test]
fn chan0_select2_vs_send_and_try_send() {
    check(2, || {
        let rt = Rt::start(GOWAY_MAY, false);
        let a = chan(0);
        let b = chan(0);
        let ta = a.clone();
        let blocking = rt.go("sender", move || ta.send(1, None).unwrap());
        let tb = b.clone();
        let trying = rt.go("trier", move || tb.try_send(2));
        let (i, v) = select_recv2([&a, &b]);
        let tried = trying.join().unwrap();
        match (i, v) {
            (0, Some(1)) => assert!(matches!(tried, Err(TrySendError::Full(2)))),
            (1, Some(2)) => {
                assert!(tried.is_ok());
                assert_eq!(a.recv(None).ok(), Some(1));
            }
            other => panic!("unexpected select result {other:?}"),
        }
        blocking.join().unwrap();
        assert!(matches!(a.try_send(3), Err(TrySendError::Full(3))));
        assert!(matches!(b.try_send(3), Err(TrySendError::Full(3))));
        rt.stop();
    });
}

/// `select::run` with two `SendCase`s, transcribed as [`select_recv2`] is: poll, register,
/// wait, unregister the others (taking an unsent value back), complete. Returns the chosen
/// case, its result (`Err(v)`: closed, value back) and the values the other cases kept.
fn select_send2(
    chans: [&Chan<u32>; 2],
    values: [u32; 2],
) -> (usize, Result<(), u32>, [Option<u32>; 2]) {
    let mut value = values.map(Some);
    loop {
        // Step 1: poll (`SendCase::try_op`).
        for (i, c) in chans.iter().enumerate() {
            let Some(v) = value[i].take() else { continue };
            match c.try_send(v) {
                Ok(()) => return (i, Ok(()), value),
                Err(TrySendError::Closed(v)) => return (i, Err(v), value),
                Err(TrySendError::Full(v)) => value[i] = Some(v),
            }
        }
        // Step 2: register everywhere (`SendCase::register`).
        let w = Waiter::new();
        let mut packets = [None, None];
        let mut ready = false;
        for (i, c) in chans.iter().enumerate() {
            let Some(v) = value[i].take() else { continue };
            match c.register_send(&w, i, v) {
                Ok(p) => packets[i] = Some(p),
                Err(v) => {
                    value[i] = Some(v);
                    ready = true;
                    break;
                }
            }
        }
        let chosen = if ready {
            if w.try_abort() { None } else { w.selected() }
        } else {
            w.wait(None, why())
        };
        // `SendCase::unregister`.
        for (i, c) in chans.iter().enumerate() {
            if Some(i) != chosen {
                if let Some(p) = packets[i].take() {
                    c.unregister_send(&p);
                    // SAFETY: the owner, with the packet out of the queue under the lock.
                    if let Some(v) = unsafe { p.take() } {
                        value[i] = Some(v);
                    }
                }
            }
        }
        // `SendCase::complete`.
        let result = chosen.map(|i| {
            let p = packets[i].take().expect("the chosen case was registered");
            // SAFETY: the owner, committed through this packet.
            (i, unsafe { p.take() }.map_or(Ok(()), Err))
        });
        Waiter::release(w);
        match result {
            Some((i, r)) => return (i, r, value),
            None if ready => continue,
            None => unreachable!("a select without a deadline only returns with a case"),
        }
    }
}

/// A 2-case select sending on two unbuffered channels, against a blocking receive on one and a
/// `try_recv` on the other: a withdrawn `SendCase` takes its value back after `commit_sender`
/// may have taken it out, failed to commit and put it back. Exactly one value is delivered,
/// the other comes back to its case, and no packet is left behind.
#[test]
fn chan0_select_send2_vs_recv_and_try_recv() {
    check(2, || {
        let rt = Rt::start(GOWAY_MAY, false);
        let a = chan(0);
        let b = chan(0);
        let ra = a.clone();
        let blocking = rt.go("receiver", move || ra.recv(None).ok());
        let rb = b.clone();
        let trying = rt.go("trier", move || rb.try_recv());
        let (i, r, kept) = select_send2([&a, &b], [1, 2]);
        let tried = trying.join().unwrap();
        assert_eq!(r, Ok(()));
        match i {
            0 => {
                assert_eq!(kept, [None, Some(2)]);
                assert_eq!(tried, Err(TryRecvError::Empty));
            }
            1 => {
                assert_eq!(kept, [Some(1), None]);
                assert_eq!(tried, Ok(2));
                a.send(1, None).unwrap();
            }
            _ => unreachable!(),
        }
        assert_eq!(blocking.join().unwrap(), Some(1));
        assert_eq!(a.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
        rt.stop();
    });
}

/// The same select against a close of one channel and a `try_recv` on the other: the close
/// commits the `SendCase` with its value still in the slot (the case gets it back), or the
/// other case is taken and the closed case's value comes back through `unregister`.
#[test]
fn chan0_select_send2_vs_close_and_try_recv() {
    check(2, || {
        let rt = Rt::start(GOWAY_MAY, false);
        let a = chan(0);
        let b = chan(0);
        let ca = a.clone();
        let closer = rt.go("closer", move || assert!(ca.close()));
        let rb = b.clone();
        let trying = rt.go("trier", move || rb.try_recv());
        let (i, r, kept) = select_send2([&a, &b], [1, 2]);
        let tried = trying.join().unwrap();
        closer.join().unwrap();
        match (i, r) {
            (0, Err(1)) => {
                assert_eq!(kept, [None, Some(2)]);
                assert_eq!(tried, Err(TryRecvError::Empty));
            }
            (1, Ok(())) => {
                assert_eq!(kept, [Some(1), None]);
                assert_eq!(tried, Ok(2));
            }
            other => panic!("unexpected select result {other:?}"),
        }
        assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
        rt.stop();
    });
}

/// A full one-slot buffer, a sender blocked behind it with a deadline, and a receiver whose
/// `try_recv_many` (or `recv`) pops the buffer and refills it from the blocked sender
/// (`commit_sender` under the lock) while the sender times out and takes its value back:
/// every value is received, left in the buffer or returned, exactly once and in order.
fn refill_vs_send_timeout(many: bool) {
    check(2, move || {
        let rt = Rt::start(GOWAY_MAY, true);
        let c = chan(1);
        c.try_send(6).unwrap();
        let tx = c.clone();
        let sender = rt.go("sender", move || tx.send(7, Some(Instant::at_ms(1))));
        let mut got = Vec::new();
        if many {
            c.try_recv_many(&mut got, 2);
        } else {
            got.push(c.recv(None).unwrap());
        }
        let sent = sender.join().unwrap();
        while let Ok(v) = c.try_recv() {
            got.push(v);
        }
        match sent {
            Ok(()) => assert_eq!(got, [6, 7]),
            Err(SendTimeoutError::Timeout(7)) => assert_eq!(got, [6]),
            other => panic!("unexpected send result {other:?}"),
        }
        rt.stop();
    });
}

#[test]
fn chan1_refill_vs_send_timeout_recv() {
    refill_vs_send_timeout(false);
}

#[test]
fn chan1_refill_vs_send_timeout_try_recv_many() {
    refill_vs_send_timeout(true);
}
