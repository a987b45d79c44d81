#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "epoll.rs"]
mod select;

#[cfg(any(
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "ios",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "openbsd"
))]
#[path = "kqueue.rs"]
mod select;

#[cfg(feature = "io_cancel")]
pub mod cancel;
pub mod co_io;
pub mod net;
pub mod wait_io;

use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::{fmt, io};

#[cfg(feature = "io_cancel")]
use crate::coroutine_impl::co_cancel_data;
use crate::coroutine_impl::{is_coroutine, run_coroutine, CoroutineImpl};
use crate::io::thread::ASSOCIATED_IO_RET;
use crate::likely::likely;
use crate::scheduler::get_scheduler;
use crate::sync::AtomicOption;
#[cfg(feature = "io_timeout")]
use crate::timeout_list::{TimeOutList, TimeoutHandle};
use crate::yield_now::get_co_para;
#[cfg(feature = "io_timeout")]
use crate::yield_now::set_co_para;
use crate::yield_now::yield_now_uncancelable;
#[cfg(feature = "io_timeout")]
use std::time::Duration;

pub(crate) use self::select::{Selector, SysEvent};

#[inline]
pub fn add_socket<T: AsRawFd + ?Sized>(t: &T) -> io::Result<IoData> {
    get_scheduler().get_selector().add_fd(IoData::new(t))
}

#[inline]
pub fn mod_socket(io: &IoData, is_read: bool) -> io::Result<()> {
    get_scheduler().get_selector().mod_fd(io, is_read)
}

#[inline]
fn del_socket(io: &IoData) {
    // transfer the io to the selector
    get_scheduler().get_selector().del_fd(io);
}

// deal with the io result
#[inline]
fn co_io_result(is_coroutine: bool) -> io::Result<()> {
    if likely(is_coroutine) {
        match get_co_para() {
            None => Ok(()),
            Some(err) => Err(err),
        }
    } else {
        let err = ASSOCIATED_IO_RET.with(|io_ret| io_ret.take());
        match err {
            None => Ok(()),
            Some(err) => Err(*err),
        }
    }
}

#[inline]
fn from_nix_error(err: nix::Error) -> ::std::io::Error {
    std::io::Error::from_raw_os_error(err as i32)
}

// goway patch (PATCHES.md fix 5): a timer names the operation it was armed for (`seq`) and
// holds the event data alive, so a timer that outlives its operation (completed, canceled, or
// the socket dropped) is recognised and ignored instead of being defused through its handle from
// a thread that does not own the timer list
#[cfg(feature = "io_timeout")]
fn timeout_handler(data: TimerData) {
    let event_data = &data.event_data;
    if event_data.seq.load(Ordering::Acquire) != data.seq {
        // the operation this timer was armed for is over
        return;
    }

    // get and check the coroutine
    let mut co = match event_data.co.take() {
        Some(co) => co,
        None => return, // the operation completed, or was canceled, meanwhile
    };

    // `co` was stored after its operation's `seq` was: a later operation's coroutine (this
    // timer's own one was taken and resumed between the two loads) only gets a spurious wake-up,
    // after which it retries its operation
    if event_data.seq.load(Ordering::Acquire) == data.seq {
        // this timer's handle, if still in the slot, is spent
        event_data.timer.take();
        set_co_para(&mut co, io::Error::new(io::ErrorKind::TimedOut, "timeout"));
    }

    // resume the coroutine with timeout error
    run_coroutine(co);
}

// the timeout data
#[cfg(feature = "io_timeout")]
pub struct TimerData {
    event_data: Arc<EventData>,
    // the `EventData::seq` of the operation the timer was armed for
    seq: usize,
}

#[cfg(feature = "io_timeout")]
pub type TimerList = TimeOutList<TimerData>;
#[cfg(feature = "io_timeout")]
pub type TimerHandle = TimeoutHandle<TimerData>;

// event associated io data, must be construct in
// each file handle, the epoll event.data would point to it
pub struct EventData {
    pub fd: RawFd,
    pub io_flag: AtomicUsize,
    // goway patch (PATCHES.md fix 5): the handle of the timer armed for the current operation,
    // if any; only the selector thread that owns the fd's timer list removes it from the list,
    // others just drop the handle
    #[cfg(feature = "io_timeout")]
    pub timer: AtomicOption<TimerHandle>,
    pub co: AtomicOption<CoroutineImpl>,
    // goway patch: bumped by every `subscribe`, before it publishes the coroutine: the identity of
    // the operation a timer was armed for
    #[cfg(feature = "io_timeout")]
    seq: AtomicUsize,
    // goway patch: set while `subscribe` runs; a resumed coroutine waits for it to clear
    // (`wait_subscriber`) before it may return from the operation and drop the socket
    subscribing: AtomicBool,
}

unsafe impl Send for EventData {}
unsafe impl Sync for EventData {}

impl EventData {
    pub fn new(fd: RawFd) -> EventData {
        EventData {
            fd,
            io_flag: AtomicUsize::new(0),
            #[cfg(feature = "io_timeout")]
            timer: AtomicOption::none(),
            co: AtomicOption::none(),
            #[cfg(feature = "io_timeout")]
            seq: AtomicUsize::new(0),
            subscribing: AtomicBool::new(false),
        }
    }

    /// Called by the selector thread that owns this fd's timer list (the only thread that may
    /// unlink an entry from it) when it has taken the coroutine: the operation's timer is not
    /// needed any more.
    #[cfg(feature = "io_timeout")]
    #[inline]
    pub(crate) fn remove_timer_on_selector(&self) {
        if let Some(h) = self.timer.take() {
            // an entry that cannot be unlinked now (the list's last) fires later, finds its
            // `seq` stale and does nothing
            h.remove();
        }
    }

    /// Schedule the waiting coroutine, if any, from any thread.
    #[inline]
    pub fn schedule(&self) {
        let co = match self.co.take() {
            Some(co) => co,
            None => return, // it's already take by selector
        };

        // goway patch: this may not be the selector thread, which alone may unlink the timer
        // entry; dropping the handle leaves the entry to fire later, stale and ignored
        #[cfg(feature = "io_timeout")]
        self.timer.take();

        // schedule the coroutine
        get_scheduler().schedule(co);
    }

    /// goway patch (PATCHES.md fix 5): wait, after the coroutine (or the thread) blocked in an
    /// operation on this fd was resumed, until the `subscribe` that published it has returned.
    /// Called before anything that could end the operation (the cancel check, which unwinds, or
    /// returning, after which the socket and the event source may be dropped).
    #[inline]
    pub(crate) fn wait_subscriber(&self) {
        while self.subscribing.load(Ordering::Acquire) {
            if is_coroutine() {
                // must not look at the cancel state: unwinding now is what this wait prevents
                yield_now_uncancelable();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// goway patch: test-only fault injection (feature `stall_subscribe`): every 8th socket subscribe
/// sleeps `MAY_STALL_SUBSCRIBE_US` microseconds right after it published the coroutine, the
/// window in which another thread may resume it.
#[cfg(feature = "stall_subscribe")]
fn stall_after_publish() {
    use std::sync::OnceLock;
    static STALL: OnceLock<u64> = OnceLock::new();
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let us = *STALL.get_or_init(|| {
        std::env::var("MAY_STALL_SUBSCRIBE_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    });
    if us > 0 && CALLS.fetch_add(1, Ordering::Relaxed) % 8 == 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

// each file associated data
pub struct IoData(Arc<EventData>);

impl IoData {
    pub fn new<T: AsRawFd + ?Sized>(t: &T) -> Self {
        let fd = t.as_raw_fd();
        let event_data = Arc::new(EventData::new(fd));
        IoData(event_data)
    }

    // clear the io flag
    #[inline]
    pub fn reset(&self) -> usize {
        self.io_flag.swap(0, Ordering::AcqRel)
    }

    /// goway patch (PATCHES.md fix 5): the one `EventSource::subscribe` of every operation that
    /// waits for this fd's readiness.
    ///
    /// Once `co` is in the slot, the selector (a readiness event), the timer pass (the
    /// operation's timeout) or a cancel may take it and resume the coroutine on another thread,
    /// and the coroutine may return from the operation and drop the socket, whose `IoData` this
    /// is, and the event source on its stack. So `subscribing` is held for the whole of this
    /// function, and the resumed coroutine waits for it (`wait_subscriber`) before it goes on.
    /// The timer is armed after the coroutine is stored: armed first, it could fire on an empty
    /// slot and be lost. A timer armed after the operation ended is stale: `seq` tells.
    #[inline]
    pub(crate) fn subscribe(
        &self,
        co: CoroutineImpl,
        #[cfg(feature = "io_timeout")] timeout: Option<Duration>,
        _cancelable: bool,
    ) {
        // the reference stays valid while `subscribing` is set: the coroutine cannot finish
        #[cfg(feature = "io_cancel")]
        let cancel = co_cancel_data(&co);
        self.subscribing.store(true, Ordering::Relaxed);
        #[cfg(feature = "io_timeout")]
        let seq = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);

        // from here the coroutine may be resumed on another thread
        self.co.store(co);
        #[cfg(feature = "stall_subscribe")]
        stall_after_publish();

        // the readiness event came in before the coroutine was stored: run it again
        if self.io_flag.load(Ordering::Acquire) != 0 {
            if let Some(co) = self.co.take() {
                self.subscribing.store(false, Ordering::Release);
                return run_coroutine(co);
            }
            // another thread took it: the operation is over
            self.subscribing.store(false, Ordering::Release);
            return;
        }

        #[cfg(feature = "io_timeout")]
        if let Some(dur) = timeout {
            get_scheduler()
                .get_selector()
                .add_io_timer(self, dur, seq);
        }

        #[cfg(feature = "io_cancel")]
        if _cancelable {
            // register the cancel io data
            cancel.set_io((**self).clone());
            // re-check the cancel status
            if cancel.is_canceled() {
                // SAFETY: as in may's own subscribes: the io data was just registered
                unsafe { cancel.cancel() };
            }
        }

        self.subscribing.store(false, Ordering::Release);
        // touch nothing after this: the coroutine may already be gone
    }
}

impl Deref for IoData {
    type Target = Arc<EventData>;

    fn deref(&self) -> &Arc<EventData> {
        &self.0
    }
}

impl fmt::Debug for IoData {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IoData = {{ ... }}")
    }
}

impl Drop for IoData {
    fn drop(&mut self) {
        del_socket(self);
    }
}

impl AsFd for IoData {
    fn as_fd(&self) -> BorrowedFd<'_> {
        unsafe { BorrowedFd::borrow_raw(self.0.fd) }
    }
}

unsafe impl Send for IoData {}
