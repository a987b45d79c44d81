//! Wait queues' building blocks: a [`Waiter`] parks one goroutine or one OS thread, and a
//! [`Packet`] is one waiting operation of that waiter on one channel.
//!
//! The protocol follows Go's `runtime/select.go` with crossbeam-channel's lock-free commit:
//! a waiter starts `WAITING`; whoever completes one of its operations first moves it to
//! `selected(case)` with a single compare-and-swap, and only that party touches the packet's
//! slot. The waiter itself can move to `ABORTED` (timeout, or a select that found another case
//! ready); after that no other party touches its packets. So each waiter commits exactly once.
//!
//! Parking goes through `may::sync::Blocker`, which parks the coroutine when called from one and
//! the OS thread otherwise, so a worker thread is never blocked.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use may::sync::Blocker;
use parking_lot::Mutex;

use crate::runtime::registry::{self, Why};

const WAITING: usize = 0;
const ABORTED: usize = usize::MAX;

/// One blocked goroutine or thread, waiting for any of its registered operations to commit.
#[doc(hidden)]
pub struct Waiter {
    /// `WAITING`, `ABORTED`, or `case + 1` of the operation that committed.
    state: AtomicUsize,
    blocker: Blocker,
    /// The blocker parks a coroutine (else an OS thread); fixed at creation.
    coroutine: bool,
    /// Set by the rescuer when it saw the waiter committed on its last look.
    suspect: AtomicBool,
}

/// Recycled waiters, per OS thread and per kind (coroutine, thread). Touched only in stretches
/// that never block, so a coroutine moving between workers never sees another's half-update.
const POOL_MAX: usize = 16;
thread_local! {
    static POOL: RefCell<[Vec<Arc<Waiter>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl Waiter {
    /// A waiter for the calling goroutine or thread, fresh or recycled.
    ///
    /// Never inlined: it touches a thread-local, and inlined into a caller that parks, the
    /// compiler may keep the thread-local's address across the park, while the goroutine
    /// resumes on another worker thread.
    #[inline(never)]
    pub(crate) fn new() -> Arc<Self> {
        let coroutine = may::coroutine::is_coroutine();
        let pooled = POOL
            .try_with(|p| p.borrow_mut()[coroutine as usize].pop())
            .ok()
            .flatten();
        if let Some(w) = pooled {
            return w;
        }
        let w = Arc::new(Waiter {
            state: AtomicUsize::new(WAITING),
            blocker: Blocker::new(false),
            coroutine,
            suspect: AtomicBool::new(false),
        });
        if coroutine {
            rescue::watch(&w);
        }
        w
    }

    /// Returns a finished waiter for reuse, if nobody else still holds it (a peer that
    /// committed it may still be about to unpark it; then it is simply dropped). A permit left
    /// by such a late unpark only makes a later `wait` loop once more: `wait` trusts the state,
    /// never the wake-up.
    #[inline(never)] // touches a thread-local: see `new`
    pub(crate) fn recycle(self: Arc<Self>) {
        // Held by nobody else (the rescuer's list aside, see `rescue`): no packet of it is
        // left in any queue and no peer is about to unpark it.
        if Arc::strong_count(&self) > 1 + usize::from(self.coroutine) {
            return;
        }
        // `strong_count` reads relaxed: order the other holders' last uses (their drops
        // release) before this reuse, as `Arc::get_mut` would.
        std::sync::atomic::fence(Ordering::Acquire);
        self.state.store(WAITING, Ordering::Relaxed);
        // A waiter the full pool refuses is dropped only after leaving the thread-local.
        let overflow = POOL
            .try_with(|p| {
                let mut p = p.borrow_mut();
                let v = &mut p[self.coroutine as usize];
                if v.len() < POOL_MAX {
                    v.push(self);
                    None
                } else {
                    Some(self)
                }
            })
            .ok()
            .flatten();
        drop(overflow);
    }

    /// Commits this waiter to operation `case`. `true` if it was still waiting: the caller now
    /// owns the matching packet's slot and must [`unpark`](Self::unpark) the waiter afterwards.
    #[inline]
    pub(crate) fn try_select(&self, case: usize) -> bool {
        self.state
            .compare_exchange(WAITING, case + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Withdraws the waiter (timeout, or the select goes back to polling). `false` if some
    /// operation committed first: then that operation's result must be collected.
    #[inline]
    pub(crate) fn try_abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `true` while no operation has committed and the waiter has not aborted.
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// The committed case, if any.
    #[inline]
    pub(crate) fn selected(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            WAITING | ABORTED => None,
            s => Some(s - 1),
        }
    }

    /// Wakes the waiter. Call after releasing every channel lock (as `chan.go` does).
    #[inline]
    pub(crate) fn unpark(&self) {
        self.blocker.unpark();
    }

    /// Parks until an operation commits (returns its case) or `deadline` passes (returns `None`
    /// after aborting). `deadline == None` waits forever. While parked, the goroutine's (or
    /// thread's) record in the runtime registry says `why`.
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: Why) -> Option<usize> {
        if let Some(case) = self.selected() {
            return Some(case);
        }
        let _blocked = registry::block(why, deadline.is_some(), self.coroutine);
        loop {
            if let Some(case) = self.selected() {
                return Some(case);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return if self.try_abort() {
                            None
                        } else {
                            self.selected()
                        };
                    }
                    // Capped: may turns a park timeout into u64 nanoseconds past its own
                    // start, which overflows for timeouts of centuries. The loop re-parks.
                    let left = (d - now).min(Duration::from_secs(3600));
                    if self.coroutine {
                        // may keeps a coroutine's park timeout in whole milliseconds and reads
                        // 0 as "forever": round up, so a short wait cannot become endless (it
                        // may end up to 1 ms late instead).
                        let ms = left.as_nanos().div_ceil(1_000_000).max(1);
                        Some(Duration::from_millis(ms as u64))
                    } else {
                        Some(left)
                    }
                }
            };
            // A timeout or a spurious return just loops: the state decides.
            let _ = self.blocker.park(timeout);
        }
    }
}

/// One operation of a [`Waiter`] on one channel: the waiter, which of its cases this is, and the
/// slot through which the value moves (a sender's offered value, or a receiver's delivery).
pub(crate) struct Packet<T> {
    pub(crate) waiter: Arc<Waiter>,
    pub(crate) case: usize,
    pub(crate) slot: Mutex<Option<T>>,
}

impl<T> Packet<T> {
    pub(crate) fn new(waiter: Arc<Waiter>, case: usize, value: Option<T>) -> Arc<Self> {
        Arc::new(Packet {
            waiter,
            case,
            slot: Mutex::new(value),
        })
    }

    /// Commits the packet's waiter to this packet's case; see [`Waiter::try_select`].
    #[inline]
    pub(crate) fn try_select(&self) -> bool {
        self.waiter.try_select(self.case)
    }

    #[inline]
    pub(crate) fn take(&self) -> Option<T> {
        self.slot.lock().take()
    }

    #[inline]
    pub(crate) fn put(&self, v: T) {
        *self.slot.lock() = Some(v);
    }

    #[inline]
    pub(crate) fn belongs_to(&self, w: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(&self.waiter, w)
    }
}

/// A safety net for wake-ups lost inside may's park.
///
/// On may 0.3.51 a goroutine parked in [`Waiter::wait`] was, rarely, found still parked with
/// its waiter committed: the committer had called `unpark`, yet may's park flag was clear and
/// the coroutine still registered in it, so nothing would ever resume it. The `pipeline`
/// example (`--n 100000 --workers 16`) hung in about 1 run in 100; that state was read from
/// hung processes. Reusing waiters (and so may parks) across goroutines is involved: with the
/// waiter pool off, 0 runs in 1,500 hung against 15 in 1,500 with it. The exact race inside
/// may could not be pinned down (any tracing on the park path hides it), and dropping the pool
/// costs about a quarter on an unbuffered ping-pong, so goway keeps the pool and guards against
/// the loss instead. Every goroutine waiter is listed when it is made (waiters are pooled, so
/// that is rare; a wait itself costs nothing), and a background OS thread looks at the list
/// every `PERIOD`. A waiter seen committed on two looks in a row is unparked again. An extra
/// unpark is harmless, parked or not (the waiter trusts its state, never the wake-up), so a
/// lost wake-up costs 10 to 20 ms instead of a hang. The count of such re-wakes also takes in
/// goroutines that were merely slow to resume, or busy between their wait and their next one.
pub(crate) mod rescue {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::{ABORTED, WAITING, Waiter};

    const SHARDS: usize = 16;
    const PERIOD: Duration = Duration::from_millis(10);

    /// Every goroutine waiter alive. Waiters are pooled, so this changes only when a pool
    /// runs dry or overflows; the rescuer drops the entries nobody else holds any more.
    static WATCHED: [Mutex<Vec<Arc<Waiter>>>; SHARDS] = [const { Mutex::new(Vec::new()) }; SHARDS];
    static RESCUED: AtomicU64 = AtomicU64::new(0);
    static STARTED: std::sync::Once = std::sync::Once::new();

    /// Lists a new goroutine waiter (its creation only; waits cost nothing).
    pub(crate) fn watch(w: &Arc<Waiter>) {
        STARTED.call_once(start);
        // Heap addresses are at least 8-aligned: drop the low bits before picking a shard.
        let mut v = WATCHED[(Arc::as_ptr(w) as usize >> 6) % SHARDS].lock();
        // The rescuer prunes the list; should its thread be missing, this keeps the list from
        // growing without bound (amortised: a sweep each time the length doubles).
        let mut gone = Vec::new();
        if v.len() >= 64 && v.len().is_power_of_two() {
            let mut i = 0;
            while i < v.len() {
                if Arc::strong_count(&v[i]) == 1 {
                    gone.push(v.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        v.push(w.clone());
        drop(v);
        // Released outside the lock (see `channel::Dead`).
        drop(gone);
    }

    /// `true` while `w` is listed.
    #[cfg(test)]
    pub(crate) fn is_watched(w: &Arc<Waiter>) -> bool {
        WATCHED
            .iter()
            .any(|s| s.lock().iter().any(|x| Arc::ptr_eq(x, w)))
    }

    /// How many lost wake-ups the rescuer has made good since the process started.
    pub(crate) fn rescued() -> u64 {
        RESCUED.load(Ordering::Relaxed)
    }

    /// One look at the list: waiters committed on this look and the last one are unparked
    /// again (harmless if they were not parked: a spare permit only makes a later wait loop
    /// once more), waiters nobody else holds are dropped from it.
    fn look(wake: &mut Vec<Arc<Waiter>>, gone: &mut Vec<Arc<Waiter>>) {
        for s in &WATCHED {
            let mut v = s.lock();
            let mut i = 0;
            while i < v.len() {
                let w = &v[i];
                if Arc::strong_count(w) == 1 {
                    gone.push(v.swap_remove(i));
                    continue;
                }
                let st = w.state.load(Ordering::Acquire);
                if st == WAITING || st == ABORTED {
                    if w.suspect.load(Ordering::Relaxed) {
                        w.suspect.store(false, Ordering::Relaxed);
                    }
                } else if w.suspect.swap(true, Ordering::Relaxed) {
                    wake.push(w.clone());
                }
                i += 1;
            }
        }
    }

    fn start() {
        let spawned = std::thread::Builder::new()
            .name("goway-rescue".into())
            .spawn(|| {
                // One of goway's own threads: the deadlock detector must not count it as a
                // stranger that might still make progress.
                crate::runtime::deadlock::note_runtime_thread();
                let (mut wake, mut gone) = (Vec::new(), Vec::new());
                loop {
                    std::thread::park_timeout(PERIOD);
                    look(&mut wake, &mut gone);
                    // Released outside the locks (see `channel::Dead`).
                    gone.clear();
                    for w in wake.drain(..) {
                        RESCUED.fetch_add(1, Ordering::Relaxed);
                        log::debug!(target: "goway::runtime", "re-waking a goroutine whose wake-up was lost");
                        w.unpark();
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!(target: "goway::runtime", "cannot start the wake-up rescuer thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Waiter, rescue};
    use crate::runtime::registry::{Wait, Why};

    /// A lost wake-up, made on purpose: the waiter is committed and never unparked. The
    /// rescuer must wake the goroutine anyway. (The commit can land before the goroutine
    /// parks, when `wait` needs no wake-up at all; so the scenario runs until one attempt
    /// needed the rescuer, at most 20 times. The goroutine parks within a microsecond of its
    /// send, while waking this thread takes tens, so nearly every attempt does.)
    #[test]
    fn a_committed_waiter_that_is_never_unparked_is_woken_by_the_rescuer() {
        let before = rescue::rescued();
        for _ in 0..20 {
            let (wtx, wrx) = crate::chan::bounded::<Arc<Waiter>>(1);
            let (rtx, rrx) = crate::chan::bounded(1);
            let h = crate::go!(move || {
                let w = Waiter::new();
                wtx.send(w.clone()).expect("test receiver alive");
                let got = w.wait(None, Why::new(Wait::Internal));
                rtx.send(got).expect("test receiver alive");
            });
            let w = wrx.recv().expect("the goroutine sends its waiter");
            assert!(rescue::is_watched(&w));
            assert!(w.try_select(3));
            drop(w);
            assert_eq!(rrx.recv_timeout(Duration::from_secs(10)), Ok(Some(3)));
            h.join().expect("the goroutine does not panic");
            if rescue::rescued() > before {
                return;
            }
        }
        panic!("in 20 attempts the goroutine never parked before the commit");
    }
}
