//! `tracing` spans that follow a goroutine (the `tracing` cargo feature): [`enter_span`].
//!
//! A subscriber keeps the current span per OS thread, and a goroutine parks on one worker
//! thread and may resume on another while other goroutines run on the first. A span entered
//! with `Span::enter` in a goroutine would so stay current on the thread it was entered on
//! (the other goroutines' events would land in it) and be exited on another. goway instead
//! keeps the spans a goroutine entered through [`enter_span`] in a coroutine-local list, exits
//! them (innermost first) right before the goroutine parks and enters them again when it
//! resumes: the hooks are in `blocked`, where every goway wait marks its owner (channels,
//! `sync`, timers, network I/O). With no span entered this way in the process, the hooks are
//! one relaxed load.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

may::coroutine_local!(static ENTERED: RefCell<Vec<tracing::Span>> = RefCell::new(Vec::new()));

/// Set once a span was ever entered through [`enter_span`]: until then the park hooks do
/// nothing.
static USED: AtomicBool = AtomicBool::new(false);

/// The guard of [`enter_span`]: the span stays entered (across the goroutine's parks) until it
/// drops. Not `Send`: it belongs to the goroutine that entered it.
#[must_use = "the span is exited when the guard drops"]
#[derive(Debug)]
pub struct SpanGuard {
    _not_send: PhantomData<*const ()>,
}

/// Enters `span` for the calling goroutine (or thread) until the returned guard drops:
/// `tracing`'s `Span::enter` for goroutines. While the goroutine runs, the span is current on
/// whatever worker thread runs it, so its events and child spans belong to it; while it is
/// parked, the span is not current anywhere (other goroutines on that worker do not see it).
/// goway's servers enter their connection and request spans this way. Guards must drop in the
/// reverse order of their entering (as scopes do).
///
/// ```
/// use goway::runtime::enter_span;
///
/// let h = goway::go!(|| {
///     let _g = enter_span(tracing::info_span!("job", id = 7));
///     goway::time::sleep(std::time::Duration::from_millis(1)); // parks: exited meanwhile
///     tracing::info!("done"); // inside `job` again, on whichever worker resumed us
/// });
/// h.join().unwrap();
/// ```
pub fn enter_span(span: tracing::Span) -> SpanGuard {
    USED.store(true, Ordering::Relaxed);
    span.with_subscriber(|(id, d)| d.enter(id));
    ENTERED.with(|e| e.borrow_mut().push(span));
    SpanGuard {
        _not_send: PhantomData,
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Some(span) = ENTERED.with(|e| e.borrow_mut().pop()) {
            span.with_subscriber(|(id, d)| d.exit(id));
        }
    }
}

/// Before the calling goroutine parks: exits its spans, innermost first. `true` if there were
/// any (then [`resume`] must follow).
#[inline]
pub(crate) fn suspend() -> bool {
    if !USED.load(Ordering::Relaxed) {
        return false;
    }
    ENTERED.with(|e| {
        let e = e.borrow();
        for span in e.iter().rev() {
            span.with_subscriber(|(id, d)| d.exit(id));
        }
        !e.is_empty()
    })
}

/// After the goroutine resumed: enters its spans again, outermost first.
pub(crate) fn resume() {
    ENTERED.with(|e| {
        for span in e.borrow().iter() {
            span.with_subscriber(|(id, d)| d.enter(id));
        }
    });
}
