//! The cancellation tree behind [`Context`](super::Context): Go's `cancelCtx` and `timerCtx`.
//!
//! Each cancellable context owns a [`Node`]; a node registers with its nearest cancellable
//! ancestor's registry, so cancelling the ancestor reaches it, and leaves that registry the
//! moment it is cancelled itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use super::{Context, ContextError};
use crate::chan::{self, Receiver, Sender};
use crate::time::Timer;

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
pub(super) struct Node {
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
    pub(super) fn new_child(parent: &Context) -> Arc<Node> {
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

    /// Cancels this node with `DeadlineExceeded` at `deadline`: at once if it has passed,
    /// else from a timer the node owns (stopped when the node is cancelled another way).
    pub(super) fn arm_deadline(self: &Arc<Self>, deadline: Instant) {
        if self.err.load(Ordering::Acquire) != 0 {
            return;
        }
        let now = Instant::now();
        if deadline <= now {
            self.cancel(ContextError::DeadlineExceeded);
            return;
        }
        let n = self.clone();
        let mut timer = crate::time::after_func(deadline - now, move || {
            n.cancel(ContextError::DeadlineExceeded)
        });
        let mut st = self.state.lock();
        if self.err.load(Ordering::Acquire) == 0 {
            st.timer = Some(timer);
        } else {
            // Cancelled meanwhile (by the parent, or the timer already fired).
            drop(st);
            timer.stop();
        }
    }

    /// Live children and callbacks in this node's registry.
    pub(super) fn registered(&self) -> usize {
        self.state.lock().children.len()
    }

    pub(super) fn err(&self) -> Option<ContextError> {
        ContextError::from_code(self.err.load(Ordering::Acquire))
    }

    pub(super) fn done(&self) -> Receiver<()> {
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
    pub(super) fn cancel(self: &Arc<Self>, err: ContextError) {
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

    pub(super) fn deregister(&self, id: u64) {
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
    pub(super) fn register_func(
        &self,
        f: Box<dyn FnOnce(ContextError) + Send>,
    ) -> Result<u64, ContextError> {
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
