//! Go's `context`: cancellation, deadlines and request-scoped values that flow down a tree of
//! [`Context`]s.
//!
//! | Go | goway |
//! |---|---|
//! | `context.Background()`, `context.TODO()` | [`background()`], [`todo()`] |
//! | `ctx, cancel := context.WithCancel(parent)` | `let (ctx, cancel) = context::with_cancel(&parent);` |
//! | `context.WithTimeout(parent, d)` / `WithDeadline(parent, t)` | [`with_timeout`] / [`with_deadline`] |
//! | `context.WithValue(parent, key, v)`, `ctx.Value(key)` | [`with_value`]`(&parent, v)`, [`ctx.value::<T>()`](Context::value) (the value's type is the key), or [`with_key_value`]`(&parent, key, v)`, [`ctx.value_for::<V>(&key)`](Context::value_for) (a key compared by value) |
//! | `<-ctx.Done()` | `recv(ctx.done()) -> _ => ..` in [`select!`](crate::select!), or `ctx.done().recv()` |
//! | `ctx.Err()`: `nil`, `Canceled`, `DeadlineExceeded` | [`ctx.err()`](Context::err): `None`, `Some(ContextError::Canceled)`, `Some(ContextError::DeadlineExceeded)` |
//! | `ctx.Deadline()` | [`ctx.deadline()`](Context::deadline) → `Option<Instant>` |
//! | `defer cancel()` | keep the [`CancelFunc`] in scope: it cancels when dropped |
//!
//! Go's rules hold: cancelling closes the `done` channel of the context and of every
//! descendant, never of its parent; cancelling again does nothing; a context derived from a
//! cancelled parent is born cancelled with the parent's error; a deadline never extends the
//! parent's; a context whose deadline passed reports `DeadlineExceeded` even if cancelled later.
//!
//! # When resources are released
//!
//! A cancellable context registers itself with its nearest cancellable ancestor (so that
//! cancelling the ancestor reaches it), and a context with a deadline owns a timer. Both are
//! released the moment the context is cancelled, whichever way that happens:
//! - its [`CancelFunc`] is called **or dropped**;
//! - an ancestor is cancelled;
//! - its deadline passes.
//!
//! Dropping the `CancelFunc` cancels: it is Go's `defer cancel()` made automatic. Go requires
//! calling cancel on every path (`go vet` reports a lost cancel as a leak: the parent keeps the
//! child until the parent itself is cancelled); tying it to scope makes that leak impossible to
//! forget, and a program creating a million short-lived contexts under one long-lived parent
//! keeps flat memory. The flip side: `let (ctx, _) = with_cancel(&p)` cancels `ctx` at once,
//! because `_` drops the handle immediately. Bind it to a name (`_cancel`). To keep a context
//! alive after its handle goes out of scope, call [`CancelFunc::detach`]: the context is then
//! cancelled only by an ancestor or its deadline, as in Go after a lost cancel.
//!
//! The `Context` values themselves are cheap `Arc` handles; dropping them releases nothing
//! early and cancels nothing. A context derived from [`background()`] (directly or through
//! values) has no ancestor to register with.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use goway::{context, go, select, time};
//!
//! let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(20));
//! let worker = go!(move || {
//!     loop {
//!         select! {
//!             recv(ctx.done()) -> _ => return ctx.err(),
//!             recv(time::after(Duration::from_millis(1))) -> _ => { /* one unit of work */ }
//!         }
//!     }
//! });
//! assert_eq!(worker.join().unwrap(), Some(context::ContextError::DeadlineExceeded));
//! ```

mod cancel;
mod error;
mod tree;

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use cancel::CancelFunc;
pub(crate) use cancel::CancelRegistration;
pub use error::ContextError;
use tree::Node;

use crate::chan::{self, Receiver};

/// Carries cancellation, a deadline and values across API boundaries and goroutines: Go's
/// `context.Context`.
///
/// Cloning is cheap (one atomic increment) and a `Context` is `Send + Sync`: pass it by
/// reference or clone it into goroutines. Derive children with [`with_cancel`],
/// [`with_timeout`], [`with_deadline`] and [`with_value`]. See the [module docs](self) for
/// Go's rules and for when resources are released.
///
/// # Examples
/// ```
/// use goway::context::{self, ContextError};
///
/// let (parent, cancel) = context::with_cancel(&context::background());
/// let (child, _cancel_child) = context::with_cancel(&parent);
/// cancel.cancel();
/// assert_eq!(child.err(), Some(ContextError::Canceled));
/// assert!(child.done().recv().is_err()); // closed
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    parent: Option<Context>,
    /// The nearest cancellable node: this context's own, or an ancestor's for a value context.
    /// `None` below `background()` only.
    node: Option<Arc<Node>>,
    /// The effective deadline: the earliest of this context's and its ancestors'.
    deadline: Option<Instant>,
    value: Option<Box<dyn Any + Send + Sync>>,
    /// The key of a [`with_key_value`] context (`value` is then found by key, not by type).
    key: Option<Box<dyn Any + Send + Sync>>,
}

impl Drop for Inner {
    /// Unlinks a chain of contexts iteratively, so dropping a very deep one cannot overflow a
    /// goroutine's small stack.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(ctx) = next {
            match Arc::try_unwrap(ctx.inner) {
                Ok(mut inner) => next = inner.parent.take(),
                Err(_) => break,
            }
        }
    }
}

/// The root of every context tree: never cancelled, no deadline, no values (Go's
/// `context.Background()`). Its [`done`](Context::done) channel is never ready.
///
/// # Examples
/// ```
/// let bg = goway::context::background();
/// assert_eq!(bg.err(), None);
/// assert_eq!(bg.deadline(), None);
/// assert!(bg.done().try_recv().is_err()); // never ready
/// ```
pub fn background() -> Context {
    static BG: OnceLock<Context> = OnceLock::new();
    BG.get_or_init(|| Context {
        inner: Arc::new(Inner {
            parent: None,
            node: None,
            deadline: None,
            value: None,
            key: None,
        }),
    })
    .clone()
}

/// The same as [`background()`], for code that has not been given a context yet (Go's
/// `context.TODO()`).
///
/// # Examples
/// ```
/// assert_eq!(goway::context::todo().err(), None);
/// ```
pub fn todo() -> Context {
    background()
}

/// A child of `parent` that is cancelled when the returned [`CancelFunc`] is called or dropped,
/// or when `parent` is cancelled, whichever comes first (Go's `context.WithCancel`).
///
/// If `parent` is already cancelled, the child is born cancelled with the parent's error.
///
/// # Examples
/// ```
/// use goway::context::{self, ContextError};
///
/// let (ctx, cancel) = context::with_cancel(&context::background());
/// assert_eq!(ctx.err(), None);
/// cancel.cancel();
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// cancel.cancel(); // again: no-op
/// ```
pub fn with_cancel(parent: &Context) -> (Context, CancelFunc) {
    let node = Node::new_child(parent);
    let ctx = Context {
        inner: Arc::new(Inner {
            parent: Some(parent.clone()),
            node: Some(node.clone()),
            deadline: parent.inner.deadline,
            value: None,
            key: None,
        }),
    };
    (ctx, CancelFunc::new(node))
}

/// A child of `parent` that is also cancelled with [`ContextError::DeadlineExceeded`] at
/// `deadline` (Go's `context.WithDeadline`).
///
/// If `parent`'s deadline is earlier, the child keeps the parent's and is the same as
/// [`with_cancel`] (the parent's expiry will reach it). A deadline already past gives a
/// context that is done at creation. The timer is stopped as soon as the context is
/// cancelled in any way.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use goway::context::{self, ContextError};
///
/// let past = Instant::now() - Duration::from_secs(1);
/// let (ctx, _cancel) = context::with_deadline(&context::background(), past);
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// ```
pub fn with_deadline(parent: &Context, deadline: Instant) -> (Context, CancelFunc) {
    if parent.inner.deadline.is_some_and(|d| d <= deadline) {
        return with_cancel(parent);
    }
    let node = Node::new_child(parent);
    let ctx = Context {
        inner: Arc::new(Inner {
            parent: Some(parent.clone()),
            node: Some(node.clone()),
            deadline: Some(deadline),
            value: None,
            key: None,
        }),
    };
    node.arm_deadline(deadline);
    (ctx, CancelFunc::new(node))
}

/// [`with_deadline`] at `timeout` from now (Go's `context.WithTimeout`). A zero timeout gives a
/// context that is done at creation.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use goway::context::{self, ContextError};
///
/// let (ctx, _cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
/// assert!(ctx.done().recv().is_err()); // closed when the timeout passes
/// assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
/// ```
pub fn with_timeout(parent: &Context, timeout: Duration) -> (Context, CancelFunc) {
    match Instant::now().checked_add(timeout) {
        Some(d) => with_deadline(parent, d),
        // Too far away to represent: no deadline.
        None => with_cancel(parent),
    }
}

/// A child of `parent` carrying `value`, found by its type with [`Context::value`] (Go's
/// `context.WithValue`). Cancellation and deadline are the parent's.
///
/// Go keys values by an unexported key type; here the value's type is the key, so wrap a value
/// in a newtype of your own (`struct RequestId(u64)`) to keep it from clashing with others.
///
/// # Examples
/// ```
/// use goway::context;
///
/// #[derive(Debug, PartialEq)]
/// struct RequestId(u64);
///
/// let ctx = context::with_value(&context::background(), RequestId(7));
/// assert_eq!(ctx.value::<RequestId>(), Some(&RequestId(7)));
/// assert_eq!(ctx.value::<String>(), None);
/// ```
pub fn with_value<T: Any + Send + Sync>(parent: &Context, value: T) -> Context {
    Context {
        inner: Arc::new(Inner {
            parent: Some(parent.clone()),
            node: parent.inner.node.clone(),
            deadline: parent.inner.deadline,
            value: Some(Box::new(value)),
            key: None,
        }),
    }
}

/// A child of `parent` carrying `value` under `key`, found with [`Context::value_for`]: Go's
/// `context.WithValue(parent, key, v)` with a key compared by value, for when one key type
/// names several values (Go's own example keys `"language"` and `"color"` with one
/// `favContextKey` type). Cancellation and deadline are the parent's.
///
/// Keys of different types never match, even when equal as text, so a package-private key
/// type (`struct Key(&'static str)`) keeps its values from clashing with anyone else's, as
/// Go's unexported key types do. [`with_value`] keys by the value's type instead, which is
/// shorter when each value has its own type.
///
/// # Examples
/// Go's `ExampleWithValue`:
/// ```
/// use goway::context::{self, Context};
///
/// #[derive(PartialEq)]
/// struct FavContextKey(&'static str);
///
/// fn f(ctx: &Context, k: &FavContextKey) -> String {
///     match ctx.value_for::<&str>(k) {
///         Some(v) => format!("found value: {v}"),
///         None => format!("key not found: {}", k.0),
///     }
/// }
///
/// let k = FavContextKey("language");
/// let ctx = context::with_key_value(&context::background(), k, "Go");
/// assert_eq!(f(&ctx, &FavContextKey("language")), "found value: Go");
/// assert_eq!(f(&ctx, &FavContextKey("color")), "key not found: color");
/// ```
pub fn with_key_value<K, V>(parent: &Context, key: K, value: V) -> Context
where
    K: Any + PartialEq + Send + Sync,
    V: Any + Send + Sync,
{
    Context {
        inner: Arc::new(Inner {
            parent: Some(parent.clone()),
            node: parent.inner.node.clone(),
            deadline: parent.inner.deadline,
            value: Some(Box::new(value)),
            key: Some(Box::new(key)),
        }),
    }
}

impl Context {
    /// A channel that is closed when this context is cancelled or its deadline passes (Go's
    /// `Done`). For [`background()`] it is never ready. Every call returns a handle to the same
    /// channel. Use it as a `select!` arm: `recv(ctx.done()) -> _ => ..`.
    ///
    /// # Examples
    /// ```
    /// use goway::{context, select};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert!(ctx.done().same_channel(&ctx.done()));
    /// drop(cancel); // cancels
    /// let cancelled = select! {
    ///     recv(ctx.done()) -> _ => true,
    ///     default => false,
    /// };
    /// assert!(cancelled);
    /// ```
    pub fn done(&self) -> Receiver<()> {
        match &self.inner.node {
            Some(n) => n.done(),
            None => chan::never(),
        }
    }

    /// `None` while the context is live; then why it is done (Go's `Err`). Once set, it never
    /// changes.
    ///
    /// # Examples
    /// ```
    /// use goway::context::{self, ContextError};
    ///
    /// let (ctx, cancel) = context::with_cancel(&context::background());
    /// assert_eq!(ctx.err(), None);
    /// drop(cancel);
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        self.inner.node.as_ref().and_then(|n| n.err())
    }

    /// `true` once the context is cancelled or past its deadline (`err().is_some()`).
    ///
    /// # Examples
    /// ```
    /// assert!(!goway::context::background().is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// When the context will be cancelled by a deadline, if it has one: its own or an
    /// ancestor's, whichever is earlier (Go's `Deadline`).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use goway::context;
    ///
    /// let (ctx, _c) = context::with_timeout(&context::background(), Duration::from_secs(60));
    /// assert!(ctx.deadline().is_some());
    /// assert_eq!(context::background().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The nearest value of type `T` on the path from this context to the root (Go's `Value`).
    ///
    /// # Examples
    /// ```
    /// use goway::context;
    ///
    /// struct User(&'static str);
    /// let ctx = context::with_value(&context::background(), User("gopher"));
    /// let (child, _c) = context::with_cancel(&ctx);
    /// assert_eq!(child.value::<User>().map(|u| u.0), Some("gopher"));
    /// ```
    pub fn value<T: Any>(&self) -> Option<&T> {
        let mut c = self;
        loop {
            if c.inner.key.is_none() {
                if let Some(v) = c.inner.value.as_deref().and_then(|v| v.downcast_ref::<T>()) {
                    return Some(v);
                }
            }
            c = c.inner.parent.as_ref()?;
        }
    }

    /// The value stored under `key` by the nearest [`with_key_value`] on the path from this
    /// context to the root whose key has `key`'s type and equals it (Go's `Value(key)`).
    /// `None` if no such key, or if that value is not a `V` (Go's failed type assertion: the
    /// search stops at the first matching key, as Go's does).
    ///
    /// # Examples
    /// ```
    /// use goway::context;
    ///
    /// #[derive(PartialEq)]
    /// struct Key(&'static str);
    ///
    /// let ctx = context::with_key_value(&context::background(), Key("user"), 42u32);
    /// let ctx = context::with_key_value(&ctx, Key("role"), "admin");
    /// assert_eq!(ctx.value_for::<u32>(&Key("user")), Some(&42));
    /// assert_eq!(ctx.value_for::<&str>(&Key("role")), Some(&"admin"));
    /// assert_eq!(ctx.value_for::<String>(&Key("role")), None); // not a String
    /// assert_eq!(ctx.value_for::<u32>(&"user"), None); // another key type
    /// ```
    pub fn value_for<V: Any>(&self, key: &(impl Any + PartialEq)) -> Option<&V> {
        fn same<K: Any + PartialEq>(stored: &(dyn Any + Send + Sync), key: &K) -> bool {
            stored.downcast_ref::<K>() == Some(key)
        }
        let mut c = self;
        loop {
            if c.inner.key.as_deref().is_some_and(|k| same(k, key)) {
                return c.inner.value.as_deref().and_then(|v| v.downcast_ref::<V>());
            }
            c = c.inner.parent.as_ref()?;
        }
    }

    /// Number of live children and callbacks registered with this context's cancellable node
    /// (0 for `background()`); for leak tests.
    #[doc(hidden)]
    pub fn registered_children(&self) -> usize {
        self.inner.node.as_ref().map_or(0, |n| n.registered())
    }

    /// Runs `f` when this context is cancelled (or its deadline passes), on the goroutine or
    /// thread that cancels it; `f` must be quick and never block. `Ok(None)` if this context
    /// can never be cancelled; `Err` (and `f` not run) if it is done already. Dropping the
    /// returned registration withdraws `f`.
    pub(crate) fn on_cancel(
        &self,
        f: impl FnOnce(ContextError) + Send + 'static,
    ) -> Result<Option<CancelRegistration>, ContextError> {
        let Some(node) = &self.inner.node else {
            return Ok(None);
        };
        let id = node.register_func(Box::new(f))?;
        Ok(Some(CancelRegistration::new(node, id)))
    }
}

impl Default for Context {
    /// [`background()`].
    fn default() -> Self {
        background()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .field("has_value", &self.inner.value.is_some())
            .finish()
    }
}
