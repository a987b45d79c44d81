//! Marking the caller as waiting, right before it parks: its registry record says what it waits
//! for until the returned [`Blocked`] guard drops (the registry's one write on a slow path).
//!
//! A plain thread's record is created the first time it waits in goway, and dropped when the
//! thread exits. Threads are recorded whenever the registry or the deadlock detector (on by
//! default) is on, goroutines only with the registry; the main thread's first wait starts the
//! deadlock detector's watcher.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::ptr;
use std::sync::Arc;

use super::registry::{self, Owner, Record, Registration, Wait, Why};
use super::{deadlock, own};

thread_local! {
    static THREAD: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

/// The calling thread's record, registered on first use; null if the thread is exiting.
#[inline(never)]
fn current_thread() -> *const Record {
    THREAD
        .try_with(|t| {
            let mut t = t.borrow_mut();
            let reg = t.get_or_insert_with(|| {
                let th = std::thread::current();
                let tid = own::current_tid();
                if tid == Some(std::process::id()) {
                    deadlock::main_thread_registered();
                }
                registry::register(
                    Owner::Thread {
                        name: th.name().map(str::to_owned),
                        tid,
                    },
                    Wait::Running,
                )
            });
            Arc::as_ptr(reg.record())
        })
        .unwrap_or(ptr::null())
}

/// A goroutine or thread marked as waiting; dropping it puts back the previous state.
pub(crate) struct Blocked {
    record: *const Record,
    word: u64,
    site: *mut Location<'static>,
    /// The goroutine's tracing spans were exited before the park (entered again on drop).
    #[cfg(feature = "tracing")]
    traced: bool,
}

impl fmt::Debug for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocked").finish_non_exhaustive()
    }
}

/// Marks the caller (a goroutine if `coroutine`, else a thread) as waiting for `why` until the
/// returned guard drops. Call right before parking, never on a fast path. Goroutines are
/// recorded with the registry on; threads also while the deadlock detector is on (the
/// default), which needs to know what the main thread waits on.
#[inline]
pub(crate) fn block(why: Why, timed: bool, coroutine: bool) -> Blocked {
    #[cfg(feature = "tracing")]
    let traced = coroutine && super::trace::suspend();
    if why.wait == Wait::Internal || !(registry::enabled() || (!coroutine && deadlock::enabled())) {
        return Blocked {
            record: ptr::null(),
            word: 0,
            site: ptr::null_mut(),
            #[cfg(feature = "tracing")]
            traced,
        };
    }
    let record = if coroutine {
        registry::current_goroutine()
    } else {
        current_thread()
    };
    // SAFETY: a non-null record is kept alive by the goroutine's registration (held by the
    // goroutine's own frame) or by the thread's thread-local, both of which outlive this guard.
    // (A coroutine spawned with may directly has none.)
    let (word, site) = match unsafe { record.as_ref() } {
        Some(r) => r.set(why.wait, timed, why.site),
        None => (0, ptr::null_mut()),
    };
    Blocked {
        record,
        word,
        site,
        #[cfg(feature = "tracing")]
        traced,
    }
}

/// [`block`] for callers that do not know whether they run in a goroutine (network I/O).
#[inline]
pub(crate) fn block_here(why: Why, timed: bool) -> Blocked {
    block(why, timed, may::coroutine::is_coroutine())
}

impl Drop for Blocked {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: as in `block`; the guard lives inside the owner's wait.
        if let Some(r) = unsafe { self.record.as_ref() } {
            r.restore(self.word, self.site);
        }
        #[cfg(feature = "tracing")]
        if self.traced {
            super::trace::resume();
        }
    }
}
