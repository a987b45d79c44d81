//! [`Semaphore`]: a counting semaphore with RAII permits, after Go's
//! `golang.org/x/sync/semaphore.Weighted` (FIFO, weighted, context-aware).
//!
//! Invariants (under `state`'s lock): waiters are served strictly in arrival order, so a waiter
//! is queued only while the list is non-empty or permits are short; permits are handed to a
//! waiter (subtracted on its behalf) before it is woken, so a woken waiter never competes
//! again. A waiter that gives up (timeout, context) removes itself, then lets the waiters behind
//! it try, since it may have been the one blocking them (x/sync does the same).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiters::{WaitList, unpark_all};
use crate::context::{Context, ContextError};
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

/// The case of a waiter that was handed its permits.
const GRANTED: usize = 0;
/// The case of a waiter whose context was cancelled.
const CANCELLED: usize = 1;

/// A counting semaphore: at most N holders at a time, each holding a [`Permit`] that gives its
/// permits back when dropped.
///
/// Waiters are served first come, first served: a request for many permits is not overtaken by
/// later requests for few (as in Go's `x/sync/semaphore`). Waiting parks the goroutine (or
/// thread). For a limit shared by goroutines, put it in an `Arc` and use
/// [`acquire_owned`](Semaphore::acquire_owned), whose permit can move into the goroutine.
///
/// may's `Semphore` has no RAII permits, no FIFO weighted requests and no context; this one is
/// goway's own.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use goway::sync::{Semaphore, WaitGroup};
///
/// // At most 2 of 6 goroutines inside at once (mini-redis caps connections this way).
/// let sem = Arc::new(Semaphore::new(2));
/// let wg = WaitGroup::new();
/// for _ in 0..6 {
///     let permit = sem.acquire_owned(); // parks while 2 are out
///     wg.go(move || {
///         let _permit = permit; // released when the goroutine ends
///     });
/// }
/// wg.wait();
/// assert_eq!(sem.available_permits(), 2);
/// ```
pub struct Semaphore {
    /// Guards the permit count and the parked waiters.
    state: parking_lot::Mutex<State>,
}

struct State {
    permits: usize,
    /// Each waiter with the number of permits it asked for.
    waiters: WaitList<usize>,
}

impl State {
    /// Hands permits to waiters in order while the first one's request fits. Returns the
    /// waiters to unpark after unlocking.
    fn grant(&mut self) -> Vec<Arc<Waiter>> {
        let mut woken = Vec::new();
        while let Some((_, n)) = self.waiters.front() {
            let n = *n;
            if n > self.permits {
                break;
            }
            if let Some((w, _)) = self.waiters.pop_front() {
                // A dead entry (its waiter gave up and is about to remove itself) is skipped.
                if w.try_select(GRANTED) {
                    self.permits -= n;
                    woken.push(w);
                }
            }
        }
        woken
    }
}

/// Why a timed or context-bound acquire gave up.
enum GiveUp {
    Timeout,
    Context(ContextError),
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    ///
    /// # Examples
    /// ```
    /// static LIMIT: goway::sync::Semaphore = goway::sync::Semaphore::new(10);
    /// assert_eq!(LIMIT.available_permits(), 10);
    /// ```
    pub const fn new(permits: usize) -> Self {
        Semaphore {
            state: parking_lot::Mutex::new(State {
                permits,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Takes one permit, parking until one is available.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(1);
    /// let p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> Permit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, parking until they are available (Go's `Acquire(ctx, n)`
    /// without the context). Requests are served in arrival order.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(5);
    /// let p = sem.acquire_many(3);
    /// assert_eq!((p.permits(), sem.available_permits()), (3, 2));
    /// ```
    pub fn acquire_many(&self, n: usize) -> Permit<'_> {
        match self.acquire_inner(n, None, None) {
            Ok(()) => Permit { sem: self, n },
            Err(_) => unreachable!("an acquire with neither deadline nor context only succeeds"),
        }
    }

    /// Takes one permit if one is available now and nobody is queued before us.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are available now and nobody is queued (Go's `TryAcquire`).
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<Permit<'_>> {
        if self.try_take(n) {
            Some(Permit { sem: self, n })
        } else {
            None
        }
    }

    /// Takes one permit, parking at most `timeout`; `None` if the time ran out.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let sem = goway::sync::Semaphore::new(1);
    /// let _held = sem.acquire();
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now().checked_add(timeout);
        self.acquire_inner(1, deadline, None)
            .ok()
            .map(|()| Permit { sem: self, n: 1 })
    }

    /// Takes one permit, parking until one is available or `ctx` is done (Go's
    /// `Acquire(ctx, 1)`).
    ///
    /// # Errors
    /// The context's error if it is done first (already done: no permit is taken, even if one
    /// is free, as in Go).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use goway::{context, sync::Semaphore};
    ///
    /// let sem = Semaphore::new(1);
    /// let _held = sem.acquire();
    /// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
    /// assert_eq!(sem.acquire_ctx(&ctx).unwrap_err(), context::ContextError::DeadlineExceeded);
    /// ```
    pub fn acquire_ctx(&self, ctx: &Context) -> Result<Permit<'_>, ContextError> {
        self.acquire_many_ctx(1, ctx)
    }

    /// Takes `n` permits, parking until they are available or `ctx` is done.
    ///
    /// # Errors
    /// As [`acquire_ctx`](Semaphore::acquire_ctx).
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(4);
    /// let p = sem.acquire_many_ctx(4, &goway::context::background()).unwrap();
    /// assert_eq!(p.permits(), 4);
    /// ```
    pub fn acquire_many_ctx(&self, n: usize, ctx: &Context) -> Result<Permit<'_>, ContextError> {
        match self.acquire_inner(n, None, Some(ctx)) {
            Ok(()) => Ok(Permit { sem: self, n }),
            Err(GiveUp::Context(e)) => Err(e),
            Err(GiveUp::Timeout) => unreachable!("no deadline was given"),
        }
    }

    /// [`acquire`](Semaphore::acquire) for a shared semaphore: the permit holds an `Arc`, so it
    /// can move into a goroutine.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(goway::sync::Semaphore::new(1));
    /// let permit = sem.acquire_owned();
    /// goway::go!(move || drop(permit)).join().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_owned(self: &Arc<Self>) -> OwnedPermit {
        let p = self.acquire();
        OwnedPermit::from_permit(self, p)
    }

    /// [`try_acquire`](Semaphore::try_acquire) for a shared semaphore.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let sem = Arc::new(goway::sync::Semaphore::new(1));
    /// let p = sem.try_acquire_owned().unwrap();
    /// assert!(sem.try_acquire_owned().is_none());
    /// drop(p);
    /// ```
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedPermit> {
        let p = self.try_acquire()?;
        Some(OwnedPermit::from_permit(self, p))
    }

    /// Permits available now (a snapshot).
    ///
    /// # Examples
    /// ```
    /// assert_eq!(goway::sync::Semaphore::new(3).available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    /// Adds `n` permits (Go's `Release(n)` without a matching acquire), waking waiters whose
    /// requests now fit.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let woken = {
            let mut st = self.state.lock();
            st.permits = st.permits.saturating_add(n);
            st.grant()
        };
        unpark_all(woken);
    }

    fn try_take(&self, n: usize) -> bool {
        let mut st = self.state.lock();
        if st.waiters.is_empty() && st.permits >= n {
            st.permits -= n;
            true
        } else {
            false
        }
    }

    fn acquire_inner(
        &self,
        n: usize,
        deadline: Option<Instant>,
        ctx: Option<&Context>,
    ) -> Result<(), GiveUp> {
        if let Some(e) = ctx.and_then(Context::err) {
            return Err(GiveUp::Context(e));
        }
        let w = {
            let mut st = self.state.lock();
            if st.waiters.is_empty() && st.permits >= n {
                st.permits -= n;
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                drop(st);
                // An expired deadline still lets the others run once (see `Waiter::wait`).
                crate::runtime::yield_now();
                return Err(GiveUp::Timeout);
            }
            let w = Waiter::new();
            st.waiters.push_back(w.clone(), n);
            w
        };
        // Registered after queueing: a cancel in between commits the waiter through it.
        let registration = match ctx.map(|c| {
            let w = w.clone();
            c.on_cancel(move |_| {
                if w.try_select(CANCELLED) {
                    w.unpark();
                }
            })
        }) {
            Some(Err(e)) => {
                // Done already: withdraw, unless permits were handed over meanwhile.
                if w.try_abort() {
                    self.withdraw(&w);
                    return Err(GiveUp::Context(e));
                }
                None
            }
            Some(Ok(r)) => r,
            None => None,
        };
        let outcome = w.wait(deadline, Why::new(Wait::Semaphore));
        drop(registration);
        match outcome {
            Some(GRANTED) => Ok(()),
            Some(_) => {
                self.withdraw(&w);
                let e = ctx.and_then(Context::err).unwrap_or(ContextError::Canceled);
                Err(GiveUp::Context(e))
            }
            None => {
                self.withdraw(&w);
                Err(GiveUp::Timeout)
            }
        }
    }

    /// A waiter gave up: remove its entry and let the ones behind it try.
    fn withdraw(&self, w: &Arc<Waiter>) {
        let woken = {
            let mut st = self.state.lock();
            st.waiters.remove(w);
            st.grant()
        };
        unpark_all(woken);
    }

    fn release(&self, n: usize) {
        self.add_permits(n);
    }
}

// No user code runs under the state's lock, so a panic cannot leave it half-updated.
impl std::panic::UnwindSafe for Semaphore {}
impl std::panic::RefUnwindSafe for Semaphore {}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &st.permits)
            .field("waiters", &st.waiters.len())
            .finish()
    }
}

/// Permits taken from a [`Semaphore`]; given back when dropped.
///
/// # Examples
/// ```
/// let sem = goway::sync::Semaphore::new(1);
/// {
///     let _p = sem.acquire();
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "the permits are given back as soon as the permit is dropped"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl Permit<'_> {
    /// How many permits this holds.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(2);
    /// assert_eq!(sem.acquire_many(2).permits(), 2);
    /// ```
    pub fn permits(&self) -> usize {
        self.n
    }

    /// Keeps the permits taken for good: the semaphore shrinks by this many.
    ///
    /// # Examples
    /// ```
    /// let sem = goway::sync::Semaphore::new(2);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("permits", &self.n).finish()
    }
}

/// Permits taken from a shared (`Arc`) [`Semaphore`]; given back when dropped. It owns its
/// `Arc`, so it can move into a goroutine.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// let sem = Arc::new(goway::sync::Semaphore::new(1));
/// let p: goway::sync::OwnedPermit = sem.acquire_owned();
/// assert_eq!(p.permits(), 1);
/// ```
#[must_use = "the permits are given back as soon as the permit is dropped"]
pub struct OwnedPermit {
    sem: Arc<Semaphore>,
    n: usize,
}

impl OwnedPermit {
    fn from_permit(sem: &Arc<Semaphore>, p: Permit<'_>) -> Self {
        let n = p.n;
        p.forget();
        OwnedPermit {
            sem: sem.clone(),
            n,
        }
    }

    /// How many permits this holds.
    ///
    /// # Examples
    /// ```
    /// let sem = std::sync::Arc::new(goway::sync::Semaphore::new(1));
    /// assert_eq!(sem.acquire_owned().permits(), 1);
    /// ```
    pub fn permits(&self) -> usize {
        self.n
    }

    /// Keeps the permits taken for good.
    ///
    /// # Examples
    /// ```
    /// let sem = std::sync::Arc::new(goway::sync::Semaphore::new(1));
    /// sem.acquire_owned().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.release(self.n);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("permits", &self.n)
            .finish()
    }
}
