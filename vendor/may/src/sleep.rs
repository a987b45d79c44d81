use crate::sync::AtomicOption;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::coroutine_impl::{co_get_handle, is_coroutine, CoroutineImpl, EventSource};
use crate::likely::unlikely;
use crate::scheduler::get_scheduler;
use crate::yield_now::{get_co_para, yield_with};

struct Sleep {
    dur: Duration,
}

impl EventSource for Sleep {
    // register the coroutine to the park
    //
    // goway patch: once the timer is armed, the coroutine may be resumed on another thread (a
    // worker the timer thread hands it to, fix 9) and finish and free its shared data, so the
    // timer is armed last; a handle keeps the cancel data alive for the re-check after it
    fn subscribe(&mut self, co: CoroutineImpl) {
        let handle = co_get_handle(&co);
        let cancel = handle.get_cancel();
        let sleep_co = Arc::new(AtomicOption::some(co));

        // register the cancel data while the coroutine is still ours
        cancel.set_co(sleep_co.clone());

        // put the coroutine into the timer list
        get_scheduler().add_timer(self.dur, sleep_co);

        // re-check the cancel status
        if cancel.is_canceled() {
            unsafe { cancel.cancel() };
        }
    }
}

/// block the current coroutine until timeout
pub fn sleep(dur: Duration) {
    if unlikely(!is_coroutine()) {
        return thread::sleep(dur);
    }

    let sleeper = Sleep { dur };
    yield_with(&sleeper);
    // consume the timeout error
    get_co_para();
}
