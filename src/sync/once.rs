//! [`Once`] (Go's `sync.Once`) and [`OnceValue`] (Go's `sync.OnceValue`, a lazy value).
//!
//! Invariants: `state` goes `INCOMPLETE` → `RUNNING` → `DONE` and never back; it changes only
//! under `waiters`' lock, and a caller parks only while it is `RUNNING`. The runner sets `DONE`
//! and drains the list under that lock, so no caller parks after `DONE`.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use super::waiters::{WaitList, unpark_all};
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// Runs a function exactly once, whoever calls first: Go's `sync.Once`.
///
/// Go's rules: concurrent callers of [`call_once`](Once::call_once) park until the first
/// caller's function has finished, so every caller sees its effects; a function that panics
/// still counts as done (the panic goes on in the caller that ran it, and later calls return at
/// once). There is no poisoning. Calling `call_once` on the same `Once` from inside the
/// function deadlocks, as in Go.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use goway::{go, sync::Once};
///
/// let once = Arc::new(Once::new());
/// let calls = Arc::new(AtomicUsize::new(0));
/// let hs: Vec<_> = (0..8)
///     .map(|_| {
///         let (once, calls) = (once.clone(), calls.clone());
///         go!(move || once.call_once(|| { calls.fetch_add(1, Ordering::SeqCst); }))
///     })
///     .collect();
/// for h in hs {
///     h.join().unwrap();
/// }
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// ```
pub struct Once {
    state: AtomicU8,
    /// Guards the callers parked while the function runs.
    waiters: parking_lot::Mutex<WaitList>,
}

impl Once {
    /// A `Once` whose function has not run.
    ///
    /// # Examples
    /// ```
    /// static INIT: goway::sync::Once = goway::sync::Once::new();
    /// INIT.call_once(|| {});
    /// assert!(INIT.is_done());
    /// ```
    pub const fn new() -> Self {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            waiters: parking_lot::Mutex::new(WaitList::new()),
        }
    }

    /// Runs `f` if no call has run a function yet (Go's `Do`); otherwise parks until that
    /// function has finished, and returns without running `f`.
    ///
    /// # Panics
    /// If `f` panics, the panic propagates to this caller, and the `Once` counts as done.
    ///
    /// # Examples
    /// ```
    /// let once = goway::sync::Once::new();
    /// let mut runs = 0;
    /// once.call_once(|| runs += 1);
    /// once.call_once(|| runs += 1);
    /// assert_eq!(runs, 1);
    /// ```
    #[inline]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.state.load(Ordering::Acquire) == DONE {
            return;
        }
        self.call_slow(f);
    }

    /// `true` once a function has run to completion (or panicked).
    ///
    /// # Examples
    /// ```
    /// let once = goway::sync::Once::new();
    /// assert!(!once.is_done());
    /// once.call_once(|| {});
    /// assert!(once.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    #[cold]
    fn call_slow<F: FnOnce()>(&self, f: F) {
        let w = {
            let mut q = self.waiters.lock();
            match self.state.load(Ordering::Acquire) {
                DONE => return,
                INCOMPLETE => {
                    self.state.store(RUNNING, Ordering::Relaxed);
                    None
                }
                _ => {
                    let w = Waiter::new();
                    q.push_back(w.clone(), ());
                    Some(w)
                }
            }
        };
        match w {
            Some(w) => {
                w.wait(None, Why::new(Wait::Once));
            }
            None => {
                // Marks the `Once` done even if `f` unwinds (Go: "if f panics, Do considers
                // it to have returned").
                let _finish = Finish(self);
                f();
            }
        }
    }
}

/// Sets `DONE` and wakes the parked callers when the running function returns or unwinds.
struct Finish<'a>(&'a Once);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let (woken, _) = {
            let mut q = self.0.waiters.lock();
            self.0.state.store(DONE, Ordering::Release);
            q.drain(0)
        };
        unpark_all(woken);
    }
}

// A panicking function still marks the `Once` done and releases its waiters.
impl std::panic::UnwindSafe for Once {}
impl std::panic::RefUnwindSafe for Once {}

impl Default for Once {
    fn default() -> Self {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("done", &self.is_done())
            .finish()
    }
}

/// A value computed on first use by exactly one caller: Go's `sync.OnceValue`, as a lazy cell.
///
/// The first [`get`](OnceValue::get) (or dereference) runs the function; concurrent callers
/// park until it has finished, then all share the value. Works in a `static`.
///
/// # Panics
/// If the function panics, that first caller's panic goes on, and every later `get` panics
/// with `sync: OnceValue function panicked` (Go re-panics with the same value; a Rust panic
/// payload cannot be shared, so the message says what happened).
///
/// # Examples
/// ```
/// use goway::sync::OnceValue;
///
/// static GREETING: OnceValue<String> = OnceValue::new(|| format!("hello {}", 42));
/// assert_eq!(GREETING.get(), "hello 42");
/// assert_eq!(GREETING.len(), 8); // Deref to the value
/// ```
pub struct OnceValue<T, F = fn() -> T> {
    once: Once,
    /// Taken by the one caller that runs it.
    init: parking_lot::Mutex<Option<F>>,
    value: OnceLock<T>,
}

impl<T, F: FnOnce() -> T> OnceValue<T, F> {
    /// A cell that will hold `f()`.
    ///
    /// # Examples
    /// ```
    /// let v = goway::sync::OnceValue::new(|| 6 * 7);
    /// assert_eq!(*v.get(), 42);
    /// ```
    pub const fn new(f: F) -> Self {
        OnceValue {
            once: Once::new(),
            init: parking_lot::Mutex::new(Some(f)),
            value: OnceLock::new(),
        }
    }

    /// The value, computing it first if no caller has.
    ///
    /// # Panics
    /// If the function panics (see the type's docs).
    ///
    /// # Examples
    /// ```
    /// let v = goway::sync::OnceValue::new(|| vec![1, 2, 3]);
    /// assert_eq!(v.get().len(), 3);
    /// assert!(std::ptr::eq(v.get(), v.get())); // computed once
    /// ```
    pub fn get(&self) -> &T {
        self.once.call_once(|| {
            // Take the function in its own statement: the lock must not be held while it runs.
            let f = self.init.lock().take();
            if let Some(f) = f {
                let _ = self.value.set(f());
            }
        });
        match self.value.get() {
            Some(v) => v,
            None => panic!("sync: OnceValue function panicked"),
        }
    }

    /// The value if it has been computed, without computing it.
    ///
    /// # Examples
    /// ```
    /// let v = goway::sync::OnceValue::new(|| 1);
    /// assert_eq!(v.try_get(), None);
    /// v.get();
    /// assert_eq!(v.try_get(), Some(&1));
    /// ```
    pub fn try_get(&self) -> Option<&T> {
        self.value.get()
    }
}

impl<T, F: FnOnce() -> T> Deref for OnceValue<T, F> {
    type Target = T;
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T: fmt::Debug, F> fmt::Debug for OnceValue<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OnceValue");
        match self.value.get() {
            Some(v) => d.field("value", v),
            None => d.field("value", &format_args!("<uninit>")),
        };
        d.finish()
    }
}
