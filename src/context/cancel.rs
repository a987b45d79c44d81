//! [`CancelFunc`] and the crate's cancel callbacks ([`CancelRegistration`]).

use std::fmt;
use std::sync::{Arc, Weak};

use super::ContextError;
use super::tree::Node;

/// A callback registered with [`Context::on_cancel`](super::Context::on_cancel); withdrawn on drop.
pub(crate) struct CancelRegistration {
    node: Weak<Node>,
    id: u64,
}

impl CancelRegistration {
    pub(super) fn new(node: &Arc<Node>, id: u64) -> Self {
        CancelRegistration {
            node: Arc::downgrade(node),
            id,
        }
    }
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
/// goroutine. See the [module docs](crate::context) for why dropping cancels.
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
    pub(super) fn new(node: Arc<Node>) -> Self {
        CancelFunc { node: Some(node) }
    }

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
