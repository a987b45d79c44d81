//! When a read may skip asking the socket: the rule shared by `TcpStream`'s reads and the
//! server's readers.
//!
//! A read that returned less than it could take emptied the socket, so the next read waits
//! for news first instead of paying a system call that only says EAGAIN (a third of the calls
//! of request/reply traffic). This is safe because may records, per socket, the epoll events
//! it got since the last wait (`wait_io` returns and clears them): data or a FIN arriving
//! after the short read sets an event that ends the wait at once, and a FIN that arrived
//! before it was reported by the wait that preceded it, which turns the shortcut off for
//! good. Anything else that clears the recorded events (may's own read or write on the
//! socket) must call [`ReadGate::forget`].

/// epoll events that mean the peer closed (`EPOLLRDHUP`), hung up or failed.
const HANGUP: usize = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as usize;

/// One socket's read state for the shortcut.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReadGate {
    /// The last read emptied the socket: wait before reading again.
    drained: bool,
    /// A wait reported a FIN, hang-up or error: read until the socket says so itself.
    hangup: bool,
}

impl ReadGate {
    /// `true` if the caller must wait on the socket before its next read; the wait's events
    /// then go to [`waited`](Self::waited).
    #[inline]
    pub(crate) fn must_wait(&self) -> bool {
        self.drained
    }

    /// Records the events a wait returned.
    #[inline]
    pub(crate) fn waited(&mut self, events: usize) {
        self.drained = false;
        if events & HANGUP != 0 {
            self.hangup = true;
        }
    }

    /// Records a read of `n` bytes into `room` bytes of space (`n == 0`, EOF, never waits:
    /// a read after EOF must return EOF again at once).
    #[inline]
    pub(crate) fn read(&mut self, n: usize, room: usize) {
        self.drained = n > 0 && n < room && !self.hangup;
    }

    /// Records a read that found the socket empty (EAGAIN).
    #[inline]
    pub(crate) fn would_block(&mut self) {
        self.drained = true;
    }

    /// The socket's recorded events were cleared elsewhere: read before waiting next time.
    #[inline]
    pub(crate) fn forget(&mut self) {
        self.drained = false;
    }
}
