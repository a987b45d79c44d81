//! The one-shot cell through which a goroutine hands its result to its [`JoinHandle`], and a
//! blocking-pool job its result to the goroutine waiting in `block_on_thread`.
//!
//! Invariants (under `Join::state`): the state only moves forward, `Running` → `Done` →
//! `Taken`, or to `Detached` when the handle is dropped first; a joiner's waiter is stored only
//! while `Running` and is committed by the goroutine's `finish`, after the lock is released.
//!
//! [`JoinHandle`]: super::JoinHandle

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::panicked::Panicked;
use super::park::Waiter;
use crate::runtime::registry::Why;

pub(crate) struct Join<T> {
    state: Mutex<State<T>>,
}

enum State<T> {
    Running(Option<Arc<Waiter>>),
    Done(Result<T, Panicked>),
    Taken,
    Detached,
}

/// What `wait` saw.
pub(crate) enum Waited<T> {
    Done(Result<T, Panicked>),
    TimedOut,
}

impl<T> Join<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Join {
            state: Mutex::new(State::Running(None)),
        })
    }

    /// The goroutine's end. Returns the result back if the handle was dropped (detached).
    pub(crate) fn finish(&self, r: Result<T, Panicked>) -> Option<Result<T, Panicked>> {
        let mut g = self.state.lock();
        match std::mem::replace(&mut *g, State::Taken) {
            State::Running(w) => {
                *g = State::Done(r);
                drop(g);
                if let Some(w) = w {
                    if w.try_select(0) {
                        w.unpark();
                    }
                }
                None
            }
            State::Detached => {
                *g = State::Detached;
                Some(r)
            }
            other => {
                *g = other;
                Some(r)
            }
        }
    }

    /// Waits for the result until `deadline` (forever for `None`); the registry shows the
    /// waiter as `why` meanwhile.
    pub(crate) fn wait(&self, deadline: Option<Instant>, why: Why) -> Waited<T> {
        loop {
            let w = {
                let mut g = self.state.lock();
                match std::mem::replace(&mut *g, State::Taken) {
                    State::Done(r) => return Waited::Done(r),
                    State::Running(_) => {
                        let w = Waiter::new();
                        *g = State::Running(Some(w.clone()));
                        w
                    }
                    other => {
                        *g = other;
                        unreachable!("a JoinHandle waits once, before it is dropped")
                    }
                }
            };
            let got = w.wait(deadline, why);
            if got.is_none() {
                // Timed out: withdraw the waiter unless the result arrived meanwhile.
                let mut g = self.state.lock();
                if let State::Running(slot) = &mut *g {
                    *slot = None;
                    drop(g);
                    w.recycle();
                    return Waited::TimedOut;
                }
            }
            w.recycle();
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(*self.state.lock(), State::Done(_) | State::Taken)
    }

    /// The handle is dropped: returns a result that arrived and was never taken.
    pub(crate) fn detach(&self) -> Option<Result<T, Panicked>> {
        match std::mem::replace(&mut *self.state.lock(), State::Detached) {
            State::Done(r) => Some(r),
            _ => None,
        }
    }
}
