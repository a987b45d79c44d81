//! A [`Waiter`] parks one goroutine or one OS thread until one of its operations commits: the
//! building block of every wait queue (channels, select, `sync`, joins, the carriers).
//!
//! The protocol follows Go's `runtime/select.go` with crossbeam-channel's lock-free commit:
//! a waiter starts `WAITING`; whoever completes one of its operations first moves it to
//! `selected(case)` with a single compare-and-swap, and only that party touches the value the
//! operation moves (a channel's `Packet` slot). The waiter itself can move to `ABORTED` (timeout, or a select that found another case
//! ready); after that no other party touches its packets. So each waiter commits exactly once.
//!
//! Parking goes through `may::sync::Blocker`, which parks the coroutine when called from one and
//! the OS thread otherwise, so a worker thread is never blocked.
//!
//! Everything this file synchronises with comes from [`shim`](super::shim): `tests/loom_waiter.rs`
//! compiles this same file against a loom-based shim and model-checks the protocol.

use std::time::Duration;

use super::shim::{
    Arc, AtomicUsize, Blocker, Instant, Ordering, Why, block, fence, is_coroutine, pool_put,
    pool_take, yield_now,
};

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
        let coroutine = is_coroutine();
        // The per-thread pool of recycled waiters (`shim::pool_take`).
        if let Some(w) = pool_take(coroutine) {
            return w;
        }
        Arc::new(Waiter {
            state: AtomicUsize::new(WAITING),
            blocker: Blocker::new(false),
            coroutine,
        })
    }

    /// Returns a finished waiter for reuse, if nobody else still holds it (a peer that
    /// committed it may still be about to unpark it; then it is simply dropped). A permit left
    /// by a late unpark only makes a later `wait` loop once more: `wait` trusts the state, never
    /// the wake-up. That needs the park to consume a permit with one swap: may 0.3.51 cleared
    /// it with a load and a plain store, and the next wait on a recycled waiter could then miss
    /// its commit and park for good (the `pipeline` example's rare hang; `tests/loom_waiter.rs`
    /// shows the interleaving, vendor/may/PATCHES.md the fix). Also callable as `w.recycle()`
    /// (defined in the shim).
    #[inline(never)] // touches a thread-local: see `new`
    pub(crate) fn release(this: Arc<Self>) {
        // Held by nobody else: no packet of it is left in any queue and no peer is about to
        // unpark it.
        if Arc::strong_count(&this) > 1 {
            return;
        }
        // `strong_count` reads relaxed: order the other holders' last uses (their drops
        // release) before this reuse, as `Arc::get_mut` would.
        fence(Ordering::Acquire);
        this.state.store(WAITING, Ordering::Relaxed);
        let coroutine = this.coroutine;
        pool_put(this, coroutine);
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
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: Why) -> Option<usize> {
        if let Some(case) = self.selected() {
            return Some(case);
        }
        let _blocked = block(why, deadline.is_some(), self.coroutine);
        // Whether this wait has given up its worker yet (parked or yielded).
        let mut stepped_aside = false;
        loop {
            if let Some(case) = self.selected() {
                return Some(case);
            }
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        // A deadline that passed while the wait was being set up still lets
                        // the others run once, as Go's timed waits do: a goroutine polling
                        // with short timeouts must not starve the one it waits for.
                        if !stepped_aside {
                            stepped_aside = true;
                            yield_now();
                            continue;
                        }
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
            stepped_aside = true;
        }
    }
}
