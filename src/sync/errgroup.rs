//! [`Group`]: Go's `golang.org/x/sync/errgroup`: goroutines working on subtasks of one task,
//! with the first error cancelling the rest through a shared [`Context`].

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use super::semaphore::{OwnedPermit, Semaphore};
use super::wait_group::WaitGroup;
use crate::context::{self, CancelFunc, Context};

/// A group of goroutines running fallible subtasks of one task: Go's `errgroup.Group`.
///
/// [`go`](Group::go) runs a function returning `Result<(), E>` in a new goroutine;
/// [`wait`](Group::wait) parks until all have returned and gives back the first error. A group
/// made by [`with_context`](Group::with_context) also cancels its derived [`Context`] at the
/// first error (or panic), so the other goroutines can stop early, and when `wait` returns.
/// [`set_limit`](Group::set_limit) bounds how many run at once: `go` then parks the caller
/// until a slot frees, and [`try_go`](Group::try_go) declines.
///
/// Clones share the group, so a goroutine of the group can start more goroutines in it.
///
/// **Panics.** A panicking function counts as failed: the group's context is cancelled, the
/// other goroutines run to completion, and `wait` re-raises the first panic (after they have
/// all finished) rather than returning an error. A panic is thus never swallowed.
///
/// # Examples
/// ```
/// use goway::{context, select, sync::Group, time};
/// use std::time::Duration;
///
/// let (g, ctx) = Group::with_context(&context::background());
/// for i in 0..4 {
///     let ctx = ctx.clone();
///     g.go(move || {
///         if i == 2 {
///             return Err(format!("task {i} failed"));
///         }
///         // The others stop early once the group's context is cancelled.
///         select! {
///             recv(ctx.done()) -> _ => Ok(()),
///             recv(time::after(Duration::from_secs(10))) -> _ => Ok(()),
///         }
///     });
/// }
/// assert_eq!(g.wait(), Err("task 2 failed".to_string()));
/// assert!(ctx.is_done());
/// ```
pub struct Group<E = Box<dyn std::error::Error + Send + Sync>> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    wg: WaitGroup,
    /// Guards the first failure.
    failure: parking_lot::Mutex<Failure<E>>,
    /// Cancels the context of `with_context`.
    cancel: Option<CancelFunc>,
    /// The limit and its semaphore (`None`: no limit). Guards only the swap in `set_limit`.
    limit: parking_lot::Mutex<Option<(usize, Arc<Semaphore>)>>,
}

struct Failure<E> {
    /// Set by the first failure (error or panic) and never reset: later ones are dropped.
    failed: bool,
    err: Option<E>,
    panic: Option<Box<dyn Any + Send>>,
}

impl<E> Clone for Group<E> {
    fn clone(&self) -> Self {
        Group {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Send + 'static> Default for Group<E> {
    fn default() -> Self {
        Group::new()
    }
}

impl<E: Send + 'static> Group<E> {
    /// A group without a context and without a limit (Go's zero `errgroup.Group`).
    ///
    /// # Examples
    /// ```
    /// let g = goway::sync::Group::<std::io::Error>::new();
    /// g.go(|| Ok(()));
    /// assert!(g.wait().is_ok());
    /// ```
    pub fn new() -> Self {
        Group::build(None)
    }

    /// A group and a child of `ctx` that is cancelled when a function of the group first fails
    /// or panics, or when [`wait`](Group::wait) returns, whichever comes first (Go's
    /// `errgroup.WithContext`).
    ///
    /// # Examples
    /// ```
    /// let (g, ctx) = goway::sync::Group::<String>::with_context(&goway::context::background());
    /// g.go(|| Err("boom".to_string()));
    /// assert_eq!(g.wait(), Err("boom".to_string()));
    /// assert!(ctx.is_done());
    /// ```
    pub fn with_context(ctx: &Context) -> (Self, Context) {
        let (ctx, cancel) = context::with_cancel(ctx);
        (Group::build(Some(cancel)), ctx)
    }

    fn build(cancel: Option<CancelFunc>) -> Self {
        Group {
            inner: Arc::new(Inner {
                wg: WaitGroup::new(),
                failure: parking_lot::Mutex::new(Failure {
                    failed: false,
                    err: None,
                    panic: None,
                }),
                cancel,
                limit: parking_lot::Mutex::new(None),
            }),
        }
    }

    /// Limits the group to `n` goroutines at once (Go's `SetLimit`); `usize::MAX` removes the
    /// limit (Go's negative `n`). With a limit of 0, `go` parks forever and `try_go` declines.
    ///
    /// # Panics
    /// If goroutines of the group are still running, with Go's message
    /// `errgroup: modify limit while N goroutines in the group are still active`.
    ///
    /// # Examples
    /// ```
    /// let g = goway::sync::Group::<()>::new();
    /// g.set_limit(2);
    /// for _ in 0..10 {
    ///     g.go(|| Ok(())); // parks while 2 are running
    /// }
    /// g.wait().unwrap();
    /// ```
    pub fn set_limit(&self, n: usize) {
        let active = self.inner.wg.count();
        if active != 0 {
            panic!(
                "errgroup: modify limit while {active} goroutines in the group are still active"
            );
        }
        *self.inner.limit.lock() = (n != usize::MAX).then(|| (n, Arc::new(Semaphore::new(n))));
    }

    /// Runs `f` in a new goroutine of the group (Go's `Go`). With a limit, parks the caller
    /// until fewer than the limit are running.
    ///
    /// The first `Err` (or panic) is kept for [`wait`](Group::wait) and cancels the group's
    /// context; later ones are dropped.
    ///
    /// # Panics
    /// If the OS refuses a goroutine stack (as [`go!`](crate::go!)).
    ///
    /// # Examples
    /// ```
    /// let g = goway::sync::Group::new();
    /// g.go(|| "42".parse::<u32>().map(drop));
    /// g.go(|| "x".parse::<u32>().map(drop));
    /// assert!(g.wait().is_err());
    /// ```
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let permit = self.limit().map(|s| s.acquire_owned());
        self.spawn(f, permit);
    }

    /// Runs `f` in a new goroutine only if the limit allows one more now (Go's `TryGo`):
    /// `false` (and `f` dropped) otherwise. Without a limit it always runs `f`.
    ///
    /// # Examples
    /// ```
    /// let g = goway::sync::Group::<()>::new();
    /// g.set_limit(1);
    /// let (tx, rx) = goway::chan::bounded::<()>(0);
    /// assert!(g.try_go(move || { let _ = rx.recv(); Ok(()) }));
    /// assert!(!g.try_go(|| Ok(()))); // the first one still runs
    /// drop(tx);
    /// g.wait().unwrap();
    /// ```
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let permit = match self.limit() {
            Some(s) => match s.try_acquire_owned() {
                Some(p) => Some(p),
                None => return false,
            },
            None => None,
        };
        self.spawn(f, permit);
        true
    }

    /// Parks until every goroutine of the group has returned, cancels the group's context,
    /// and returns the first error (Go's `Wait`). Only the first failure of a group is kept,
    /// and it is handed out once (an error need not be `Clone`): a later `wait` returns
    /// `Ok(())`.
    ///
    /// # Errors
    /// The first `Err` returned by a function of the group.
    ///
    /// # Panics
    /// Re-raises the first panic of a function of the group.
    ///
    /// # Examples
    /// ```
    /// let g = goway::sync::Group::<&str>::new();
    /// g.go(|| Err("first"));
    /// assert_eq!(g.wait(), Err("first"));
    /// assert_eq!(g.wait(), Ok(()));
    /// ```
    pub fn wait(&self) -> Result<(), E> {
        self.inner.wg.wait();
        if let Some(c) = &self.inner.cancel {
            c.cancel();
        }
        let mut fail = self.inner.failure.lock();
        if let Some(p) = fail.panic.take() {
            drop(fail);
            panic::resume_unwind(p);
        }
        match fail.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn limit(&self) -> Option<Arc<Semaphore>> {
        self.inner.limit.lock().as_ref().map(|(_, s)| s.clone())
    }

    #[track_caller]
    fn spawn<F>(&self, f: F, permit: Option<OwnedPermit>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.inner.wg.add(1);
        let spawned = crate::runtime::Builder::new().spawn(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => inner.fail(Some(e), None),
                Err(p) => inner.fail(None, Some(p)),
            }
            // The slot frees before `done`, so after `wait` every permit is back.
            drop(permit);
            inner.wg.done();
        });
        if let Err(e) = spawned {
            self.inner.wg.done();
            panic!("errgroup: {e}");
        }
    }
}

impl<E> Inner<E> {
    fn fail(&self, err: Option<E>, panic: Option<Box<dyn Any + Send>>) {
        {
            let mut f = self.failure.lock();
            if f.failed {
                return;
            }
            f.failed = true;
            f.err = err;
            f.panic = panic;
        }
        if let Some(c) = &self.cancel {
            c.cancel();
        }
    }
}

impl<E> Drop for Inner<E> {
    fn drop(&mut self) {
        // Nobody waited for the group: do not let its panic vanish.
        if let Some(p) = self.failure.get_mut().panic.take() {
            log::error!(
                target: "goway::sync",
                "errgroup: a goroutine panicked and the group was never waited for: {}",
                crate::runtime::panic_message(p.as_ref())
            );
        }
    }
}

impl<E> fmt::Debug for Group<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("active", &self.inner.wg.count())
            .field("failed", &self.inner.failure.lock().failed)
            .field("limit", &self.inner.limit.lock().as_ref().map(|(n, _)| *n))
            .finish()
    }
}
