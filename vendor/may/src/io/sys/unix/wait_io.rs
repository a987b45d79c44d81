//! # Generic Wrapper for IO object
//! `wait_io` is a function that can be used in coroutine
//! context to wait on the io events
//!
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::coroutine_impl::{is_coroutine, CoroutineImpl, EventSource};
use crate::io as io_impl;
use crate::yield_now::yield_with_io;

pub struct RawIoBlock<'a> {
    io_data: &'a io_impl::IoData,
    // goway patch (PATCHES.md 7): the wait's timeout, for `wait_io_timeout`
    #[cfg(feature = "io_timeout")]
    timeout: Option<Duration>,
}

impl<'a> RawIoBlock<'a> {
    fn new(io_data: &'a io_impl::IoData) -> Self {
        RawIoBlock {
            io_data,
            #[cfg(feature = "io_timeout")]
            timeout: None,
        }
    }
}

impl EventSource for RawIoBlock<'_> {
    fn subscribe(&mut self, co: CoroutineImpl) {
        // goway patch (PATCHES.md fix 5): one subscribe for every fd operation
        self.io_data.subscribe(
            co,
            #[cfg(feature = "io_timeout")]
            self.timeout,
            true,
        );
    }

    fn wait_subscriber(&self) {
        self.io_data.wait_subscriber();
    }

    /// after yield back process
    fn yield_back(&self, _cancel: &'static Cancel) {
        #[cfg(feature = "io_cancel")]
        _cancel.clear_cancel_bit();
    }
}

/// A waker that could wakeup the coroutine that is blocked by `WaitIo::wait_io`
pub struct WaitIoWaker {
    io_data: Arc<io_impl::sys::EventData>,
}

impl WaitIoWaker {
    /// wakeup the coroutine that is blocked by `WaitIo::wait_io`
    pub fn wakeup(&self) {
        self.io_data
            .io_flag
            .fetch_or(0x8000_0000, Ordering::Release);
        self.io_data.schedule();
    }
}

/// This is trait that can block on io events but doing nothing about io
pub trait WaitIo {
    /// reset the io before io operation
    #[deprecated(since = "0.3.46", note = "don't need to call this method")]
    fn reset_io(&self) -> usize;
    /// block on read/write event, return events flags
    fn wait_io(&self) -> usize;
    /// wake up the coroutine that is waiting for io
    fn waker(&self) -> WaitIoWaker;
    /// goway patch (PATCHES.md 7): `wait_io` with a timeout, callable from a coroutine or a
    /// thread. Returns the io flags recorded since the last wait (and clears them), or
    /// `Err(TimedOut)` when `timeout` passed first (`None`: no timeout). A `WaitIoWaker` or
    /// `EventData::schedule` from any thread ends the wait early (then the flags may be 0).
    fn wait_io_timeout(&self, timeout: Option<Duration>) -> io::Result<usize>;
}

impl<T: io_impl::AsIoData> WaitIo for T {
    fn reset_io(&self) -> usize {
        let io_data = self.as_io_data();
        io_data.reset()
    }
    fn wait_io(&self) -> usize {
        let io_data = self.as_io_data();
        // when io flag is set we do nothing
        if io_data.io_flag.load(Ordering::Relaxed) != 0 {
            return io_data.reset();
        }
        let blocker = RawIoBlock::new(self.as_io_data());
        yield_with_io(&blocker, true);
        io_data.reset()
    }

    fn wait_io_timeout(&self, _timeout: Option<Duration>) -> io::Result<usize> {
        let io_data = self.as_io_data();
        if io_data.io_flag.load(Ordering::Acquire) != 0 {
            return Ok(io_data.reset());
        }
        let is_co = is_coroutine();
        let blocker = RawIoBlock {
            io_data,
            #[cfg(feature = "io_timeout")]
            timeout: _timeout,
        };
        yield_with_io(&blocker, is_co);
        // the timer's error (or a cancel's) comes back as the coroutine's or the thread's io
        // result; a wake-up without readiness returns the flags as they are
        super::co_io_result(is_co)?;
        Ok(io_data.reset())
    }

    fn waker(&self) -> WaitIoWaker {
        WaitIoWaker {
            io_data: (*self.as_io_data()).clone(),
        }
    }
}
