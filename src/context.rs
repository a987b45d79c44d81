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

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::chan::{self, Receiver, Sender};
use crate::time::Timer;

/// Why a context is done: Go's `context.Canceled` and `context.DeadlineExceeded`, displayed
/// with Go's texts.
///
/// # Examples
/// ```
/// use goway::context::ContextError;
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// assert!(ContextError::DeadlineExceeded.is_timeout());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ContextError {
    /// The context was cancelled (its [`CancelFunc`] or an ancestor's was called or dropped).
    #[error("context canceled")]
    Canceled,
    /// The context's deadline passed.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
}

impl ContextError {
    /// `true` for [`DeadlineExceeded`](ContextError::DeadlineExceeded) (Go's `Timeout()`).
    ///
    /// # Examples
    /// ```
    /// assert!(!goway::context::ContextError::Canceled.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, ContextError::DeadlineExceeded)
    }

    fn code(self) -> u8 {
        match self {
            ContextError::Canceled => 1,
            ContextError::DeadlineExceeded => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(ContextError::Canceled),
            2 => Some(ContextError::DeadlineExceeded),
            _ => None,
        }
    }
}

impl From<ContextError> for std::io::Error {
    /// `DeadlineExceeded` becomes `TimedOut`, `Canceled` becomes `Interrupted`, each with Go's
    /// text.
    fn from(e: ContextError) -> Self {
        let kind = match e {
            ContextError::Canceled => std::io::ErrorKind::Interrupted,
            ContextError::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}

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

// ----- the cancellation tree ----------------------------------------------------------------

/// Keys in a node's registry: unique ids, spread by a multiplicative hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Registry = HashMap<u64, Child, BuildHasherDefault<IdHasher>>;

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a cancellable node notifies when it is cancelled.
enum Child {
    Node(Arc<Node>),
    /// A crate-internal callback (a parked `Semaphore::acquire_ctx`): quick and non-blocking.
    Func(Box<dyn FnOnce(ContextError) + Send>),
}

/// The cancellable part of a context (Go's `cancelCtx`, plus `timerCtx`'s timer).
///
/// Invariants: `err` goes from 0 to an error code once, under `state`'s lock; from then on the
/// registry is empty, the timer is gone and the done channel (if created) is closed. A live
/// node is in its parent's registry, unless its parent is not cancellable.
struct Node {
    /// Key in the parent's registry.
    id: u64,
    /// 0 while live, else `ContextError::code`; set under `state`, read without it.
    err: AtomicU8,
    /// The nearest cancellable ancestor, whose registry holds this node while it is live.
    parent: Option<Weak<Node>>,
    state: Mutex<NodeState>,
}

/// Guarded by `Node::state`.
#[derive(Default)]
struct NodeState {
    /// Created on the first `done()` (Go creates it lazily too); closed on cancel.
    done: Option<(Sender<()>, Receiver<()>)>,
    /// Live descendants and callbacks to notify on cancel.
    children: Registry,
    /// The deadline's timer, stopped on cancel. Its function holds this node.
    timer: Option<Timer>,
}

/// A done channel that is already closed, for contexts cancelled before anyone asked for one.
fn closed_done() -> Receiver<()> {
    static CLOSED: OnceLock<Receiver<()>> = OnceLock::new();
    CLOSED
        .get_or_init(|| {
            let (tx, rx) = chan::bounded(0);
            tx.close();
            rx
        })
        .clone()
}

impl Node {
    /// A node under `parent`'s nearest cancellable node: registered there, or born cancelled
    /// with its error.
    fn new_child(parent: &Context) -> Arc<Node> {
        let pnode = parent.inner.node.as_ref();
        let node = Arc::new(Node {
            id: next_id(),
            err: AtomicU8::new(0),
            parent: pnode.map(Arc::downgrade),
            state: Mutex::new(NodeState::default()),
        });
        if let Some(p) = pnode {
            let mut st = p.state.lock();
            match p.err.load(Ordering::Acquire) {
                0 => {
                    st.children.insert(node.id, Child::Node(node.clone()));
                }
                e => node.err.store(e, Ordering::Release),
            }
        }
        node
    }

    fn err(&self) -> Option<ContextError> {
        ContextError::from_code(self.err.load(Ordering::Acquire))
    }

    fn done(&self) -> Receiver<()> {
        let mut st = self.state.lock();
        if let Some((_, rx)) = &st.done {
            return rx.clone();
        }
        if self.err.load(Ordering::Acquire) != 0 {
            return closed_done();
        }
        // Closed only by cancel: a node dropped uncancelled must not look cancelled.
        let (tx, rx) = chan::bounded_unclosable(0);
        st.done = Some((tx, rx.clone()));
        rx
    }

    /// Cancels this node and its whole subtree with `err`, and leaves the parent's registry.
    /// Iterative, so a deep tree cannot overflow a goroutine's stack. A no-op if already
    /// cancelled.
    fn cancel(self: &Arc<Self>, err: ContextError) {
        if self.err.load(Ordering::Acquire) != 0 {
            return;
        }
        // Leave the parent's registry before closing `done`: whoever sees the channel closed
        // then also sees the registration gone. Leaving twice (racing cancels) is harmless.
        self.leave_parent();
        let mut nodes = Vec::new();
        let mut funcs = Vec::new();
        if !self.cancel_one(err, &mut nodes, &mut funcs) {
            return;
        }
        while let Some(n) = nodes.pop() {
            // Descendants were taken out of their parents' registries wholesale.
            n.cancel_one(err, &mut nodes, &mut funcs);
        }
        for f in funcs {
            f(err);
        }
    }

    /// Marks this node cancelled; its children go to `nodes` and `funcs`. `false` if it was
    /// cancelled already.
    fn cancel_one(
        &self,
        err: ContextError,
        nodes: &mut Vec<Arc<Node>>,
        funcs: &mut Vec<Box<dyn FnOnce(ContextError) + Send>>,
    ) -> bool {
        if self.err.load(Ordering::Acquire) != 0 {
            return false;
        }
        let (done, children, timer) = {
            let mut st = self.state.lock();
            if self.err.load(Ordering::Acquire) != 0 {
                return false;
            }
            self.err.store(err.code(), Ordering::Release);
            (
                st.done.as_ref().map(|(tx, _)| tx.clone()),
                std::mem::take(&mut st.children),
                st.timer.take(),
            )
        };
        // Wake the done channel's waiters and stop the timer after unlocking.
        if let Some(tx) = done {
            tx.close();
        }
        if let Some(mut t) = timer {
            t.stop();
        }
        for (_, c) in children {
            match c {
                Child::Node(n) => nodes.push(n),
                Child::Func(f) => funcs.push(f),
            }
        }
        true
    }

    fn leave_parent(&self) {
        if let Some(p) = self.parent.as_ref().and_then(Weak::upgrade) {
            p.deregister(self.id);
        }
    }

    fn deregister(&self, id: u64) {
        let mut st = self.state.lock();
        if st.children.remove(&id).is_some() {
            // Give memory back after a burst of children (a million at once, then a few).
            let cap = st.children.capacity();
            if cap > 64 && st.children.len() * 8 < cap {
                let len = st.children.len();
                st.children.shrink_to(len * 2);
            }
        }
    }

    /// Registers `f` to run on cancel. `Err` (and `f` dropped) if already cancelled.
    fn register_func(&self, f: Box<dyn FnOnce(ContextError) + Send>) -> Result<u64, ContextError> {
        let mut st = self.state.lock();
        if let Some(e) = self.err() {
            return Err(e);
        }
        let id = next_id();
        st.children.insert(id, Child::Func(f));
        Ok(id)
    }
}

impl Drop for Node {
    /// Frees a never-cancelled subtree (only possible after [`CancelFunc::detach`])
    /// iteratively, so a deep one cannot overflow the stack.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = Vec::new();
        let take = |st: &mut NodeState, stack: &mut Vec<Arc<Node>>| {
            for (_, c) in std::mem::take(&mut st.children) {
                if let Child::Node(n) = c {
                    stack.push(n);
                }
            }
        };
        take(self.state.get_mut(), &mut stack);
        while let Some(n) = stack.pop() {
            if let Ok(mut n) = Arc::try_unwrap(n) {
                take(n.state.get_mut(), &mut stack);
            }
        }
    }
}

// ----- constructors -------------------------------------------------------------------------

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
    (ctx, CancelFunc { node: Some(node) })
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
    if node.err.load(Ordering::Acquire) == 0 {
        let now = Instant::now();
        if deadline <= now {
            node.cancel(ContextError::DeadlineExceeded);
        } else {
            let n = node.clone();
            let mut timer = crate::time::after_func(deadline - now, move || {
                n.cancel(ContextError::DeadlineExceeded)
            });
            let mut st = node.state.lock();
            if node.err.load(Ordering::Acquire) == 0 {
                st.timer = Some(timer);
            } else {
                // Cancelled meanwhile (by the parent, or the timer already fired).
                drop(st);
                timer.stop();
            }
        }
    }
    (ctx, CancelFunc { node: Some(node) })
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
        self.inner
            .node
            .as_ref()
            .map_or(0, |n| n.state.lock().children.len())
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
        Ok(Some(CancelRegistration {
            node: Arc::downgrade(node),
            id,
        }))
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

/// A callback registered with [`Context::on_cancel`]; withdrawn on drop.
pub(crate) struct CancelRegistration {
    node: Weak<Node>,
    id: u64,
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        if let Some(n) = self.node.upgrade() {
            n.deregister(self.id);
        }
    }
}

/// Cancels its context: when [`cancel`](CancelFunc::cancel) is called, or when it is dropped
/// (Go's `CancelFunc` with `defer cancel()` built in).
///
/// Cancelling closes the context's `done` channel and those of all its descendants, sets their
/// error to [`ContextError::Canceled`] (a context already done keeps its error), stops the
/// deadline's timer and unregisters the context from its parent. Calling it again does
/// nothing. It is `Send + Sync`: share it (for example in an `Arc`) to cancel from another
/// goroutine. See the [module docs](self) for why dropping cancels.
///
/// # Examples
/// ```
/// use goway::context::{self, ContextError};
///
/// let parent = context::background();
/// let ctx = {
///     let (ctx, _cancel) = context::with_cancel(&parent);
///     ctx
/// }; // `_cancel` dropped here: `ctx` is cancelled
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// ```
#[must_use = "dropping a CancelFunc cancels its context at once; bind it to a name"]
pub struct CancelFunc {
    /// `None` once detached.
    node: Option<Arc<Node>>,
}

impl CancelFunc {
    /// Cancels the context now (Go's `cancel()`); a no-op if it is done already.
    ///
    /// # Examples
    /// ```
    /// let (ctx, cancel) = goway::context::with_cancel(&goway::context::background());
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// ```
    pub fn cancel(&self) {
        if let Some(n) = &self.node {
            n.cancel(ContextError::Canceled);
        }
    }

    /// Gives up this handle without cancelling. The context is then cancelled only by an
    /// ancestor or by its deadline; until then it stays registered with its parent (Go's
    /// behaviour after a lost cancel). Useful for a timeout context handed to a goroutine that
    /// outlives the caller. (A detached context that nothing can cancel any more, with no
    /// deadline and no cancellable ancestor, is freed when its last `Context` handle is
    /// dropped; a `done()` receiver kept beyond that then sees its channel closed.)
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use goway::context;
    ///
    /// let (ctx, cancel) = context::with_timeout(&context::background(), Duration::from_millis(5));
    /// cancel.detach();
    /// assert_eq!(ctx.err(), None);
    /// ctx.done().recv().unwrap_err(); // the deadline still cancels it
    /// assert!(ctx.err().unwrap().is_timeout());
    /// ```
    pub fn detach(mut self) {
        self.node = None;
    }
}

impl Drop for CancelFunc {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for CancelFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFunc")
            .field("detached", &self.node.is_none())
            .field("err", &self.node.as_ref().and_then(|n| n.err()))
            .finish()
    }
}
