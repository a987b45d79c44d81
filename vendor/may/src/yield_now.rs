use crate::coroutine_impl::{current_cancel_data, is_coroutine};
use crate::coroutine_impl::{CoroutineImpl, EventResult, EventSource, EventSubscriber};
use crate::likely::{likely, unlikely};
use crate::scheduler::get_scheduler;

use generator::{co_get_yield, co_set_para, co_yield_with};

struct Yield {}

impl EventSource for Yield {
    fn subscribe(&mut self, co: CoroutineImpl) {
        // just re-push the coroutine to the ready list
        get_scheduler().schedule(co);
    }
}

/// yield internal `EventSource` ref
/// it's ok to return a ref of object on the generator's stack
/// just like return the ref of a struct member
#[inline]
pub fn yield_with<T: EventSource>(resource: &T) {
    // goway patch (PATCHES.md 8)
    crate::local::run_park_hook();
    let cancel = current_cancel_data();
    // if cancel detected in user space
    // no need to get into kernel any more
    if unlikely(cancel.is_canceled()) {
        co_set_para(std::io::Error::other("Canceled"));
        return resource.yield_back(cancel);
    }

    let r = unsafe {
        std::mem::transmute::<*const (dyn EventSource + '_), *mut (dyn EventSource + 'static)>(
            resource as &dyn EventSource,
        )
    };
    let es = EventSubscriber::new(r);
    co_yield_with(es);

    resource.wait_subscriber();
    resource.yield_back(cancel);
    cancel.clear();
}

#[inline]
pub fn yield_with_io<T: EventSource>(resource: &T, is_coroutine: bool) {
    if likely(is_coroutine) {
        #[cfg(feature = "io_cancel")]
        yield_with(resource);
        #[cfg(not(feature = "io_cancel"))]
        {
            // goway patch (PATCHES.md 8)
            crate::local::run_park_hook();
            let r = unsafe {
                std::mem::transmute::<*const (dyn EventSource + '_), *mut (dyn EventSource + 'static)>(
                    resource as &dyn EventSource,
                )
            };
            let es = EventSubscriber::new(r);
            co_yield_with(es);
            resource.wait_subscriber();
        }
    } else {
        // for thread is only park the thread
        let r = unsafe {
            std::mem::transmute::<*const (dyn EventSource + '_), *mut (dyn EventSource + 'static)>(
                resource as &dyn EventSource,
            )
        };
        let es = EventSubscriber::new(r);
        // goway patch (PATCHES.md 7): park until the proxy says it is done, not just once: a
        // stale unpark token (left by any earlier `unpark` of this thread) would end the park
        // while the proxy still uses `resource`, which lives on this thread's stack
        crate::io::thread::PROXY_DONE.with(|done| {
            done.store(false, std::sync::atomic::Ordering::Relaxed);
            crate::io::thread::PROXY_CO_SENDER.with(|tx| {
                tx.send(es).unwrap();
            });
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::park();
            }
        });
        resource.wait_subscriber();
    }
}

/// set the coroutine para that passed into it
#[cold]
#[inline]
pub fn set_co_para(co: &mut CoroutineImpl, v: EventResult) {
    co.set_para(v);
}

/// get the coroutine para from the coroutine context
#[inline]
pub fn get_co_para() -> Option<EventResult> {
    co_get_yield::<EventResult>()
}

/// goway patch: yield the running coroutine to the back of the ready queue without looking at
/// its cancel state (`yield_now` would unwind a canceled coroutine at once).
pub(crate) fn yield_now_uncancelable() {
    // no park hook here (PATCHES.md 8): this only spins, within a park that ran it already
    let y = Yield {};
    // SAFETY: as in `yield_with`: `y` outlives the yield, since the scheduler is done with the
    // subscriber (it only re-queues the coroutine) before the coroutine runs again
    let r = unsafe {
        std::mem::transmute::<*const (dyn EventSource + '_), *mut (dyn EventSource + 'static)>(
            &y as &dyn EventSource,
        )
    };
    co_yield_with(EventSubscriber::new(r));
}

#[inline]
pub fn yield_now() {
    if unlikely(!is_coroutine()) {
        return std::thread::yield_now();
    }
    let y = Yield {};
    // it's safe to use the stack value here
    yield_with(&y);
}
