//! What a socket is known to be ready for, so that an operation can skip a system call that
//! would only say EAGAIN: [`Readiness`], shared by every goroutine and thread using one
//! stream, and [`ReadGate`], the server reader's single-owner form of the same rule.
//!
//! may records, per socket, the epoll events it got since the last wait (`wait_io` returns and
//! clears them). A read that returned less than it could take emptied the socket, so the next
//! read waits for news first instead of paying a system call that only says EAGAIN (a third of
//! the calls of request/reply traffic). This is safe because data or a FIN arriving after the
//! short read sets an event that ends the wait at once, and a FIN that arrived before it was
//! reported by the wait that preceded it, which turns the shortcut off for good. Nothing else
//! may clear the recorded events (may's own read or write on the socket does).

use std::sync::atomic::{AtomicUsize, Ordering};

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
}

/// An event that only asks waiters to look again (a deadline moved, the stream was closed):
/// may's `WaitIoWaker` sets it in the socket's recorded events.
pub(crate) const WAKE: usize = 0x8000_0000;

/// epoll events after which a read may find something (data, EOF, an error).
const READ_EVENTS: usize =
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as usize;
/// epoll events after which a write may go through (room, or an error to report).
const WRITE_EVENTS: usize = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as usize;

/// An operation's direction, and its bit in a [`Readiness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read = 1,
    Write = 2,
}

/// Set for good once an event reported a FIN, hang-up or error: from then on a short read
/// proves nothing (the socket may hold an EOF the next read must see).
const HUNG_UP: usize = 4;
/// Set for good by the first wait of ours that returned: from then on every epoll event of the
/// socket reaches a wait of ours. Before it, an event may have been taken by may's own wait
/// (the connect's, for a socket we dialed), so a short read proves nothing yet: a greeting and
/// a FIN that arrived with the connect leave no event behind for the read after the greeting.
const WATCHED: usize = 8;
/// The low bits are `Dir` bits, `HUNG_UP` and `WATCHED`; the rest counts the events recorded.
const TICK: usize = 16;

/// What one stream is ready for, as far as anyone knows: a bit per direction, set by each
/// recorded epoll event for it and cleared by an operation that met EAGAIN (or a short read),
/// plus a count of recorded events. Clearing is conditional on the count being the one seen
/// before the operation, so an event recorded while the operation ran is never lost; several
/// goroutines may use one stream at once (Tokio's `ScheduledIo` rule).
#[derive(Debug)]
pub(crate) struct Readiness(AtomicUsize);

impl Default for Readiness {
    /// Ready both ways: the first operation of each direction tries the socket.
    fn default() -> Self {
        Readiness(AtomicUsize::new(Dir::Read as usize | Dir::Write as usize))
    }
}

/// A [`Readiness`] as read before an operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen(usize);

impl Seen {
    /// `true` if `d` may go ahead without waiting.
    #[inline]
    pub(crate) fn is_ready(self, d: Dir) -> bool {
        self.0 & d as usize != 0
    }

    /// `true` once a hang-up was recorded.
    #[cfg(test)]
    pub(crate) fn hung_up(self) -> bool {
        self.0 & HUNG_UP != 0
    }

    /// `true` if a short read (a read that returned less than it could take) proves the socket
    /// empty, so that the next read may wait first: only after a wait of ours has returned
    /// (no event can have been taken by anyone else since) and before any hang-up.
    #[inline]
    pub(crate) fn short_read_drains(self) -> bool {
        self.0 & (WATCHED | HUNG_UP) == WATCHED
    }
}

impl Readiness {
    /// The current state, to pass to [`clear`](Self::clear) after the operation.
    #[inline]
    pub(crate) fn get(&self) -> Seen {
        Seen(self.0.load(Ordering::SeqCst))
    }

    /// Records what a wait of ours returned: `events` (from may's record of the socket; `WAKE`
    /// alone records no event), and that the socket is watched. Returns `true` if an event
    /// was recorded.
    #[inline]
    pub(crate) fn record(&self, events: usize) -> bool {
        let events = events & !WAKE;
        if events == 0 {
            self.0.fetch_or(WATCHED, Ordering::SeqCst);
            return false;
        }
        let mut bits = WATCHED;
        if events & READ_EVENTS != 0 {
            bits |= Dir::Read as usize;
        }
        if events & WRITE_EVENTS != 0 {
            bits |= Dir::Write as usize;
        }
        if events & HANGUP != 0 {
            bits |= HUNG_UP;
        }
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some((cur | bits).wrapping_add(TICK))
            });
        true
    }

    /// `d` found the socket not ready (EAGAIN, or a short read) after `seen` was read:
    /// clears its bit unless an event was recorded since.
    #[inline]
    pub(crate) fn clear(&self, d: Dir, seen: Seen) {
        let bit = d as usize;
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (cur & !(TICK - 1) == seen.0 & !(TICK - 1) && cur & bit != 0).then_some(cur & !bit)
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN: usize = libc::EPOLLIN as usize;
    const OUT: usize = libc::EPOLLOUT as usize;
    const RDHUP: usize = libc::EPOLLRDHUP as usize;

    #[test]
    fn both_directions_start_ready_and_clear_independently() {
        let r = Readiness::default();
        let seen = r.get();
        assert!(seen.is_ready(Dir::Read) && seen.is_ready(Dir::Write));
        r.clear(Dir::Read, seen);
        assert!(!r.get().is_ready(Dir::Read));
        assert!(r.get().is_ready(Dir::Write));
        assert!(!r.record(WAKE), "a bare wake-up records nothing");
        assert!(r.record(IN));
        assert!(r.get().is_ready(Dir::Read));
        assert!(!r.get().hung_up());
    }

    #[test]
    fn an_event_during_the_operation_keeps_the_bit() {
        let r = Readiness::default();
        let seen = r.get();
        // The operation runs, an event comes in, then the operation meets EAGAIN.
        r.record(IN | OUT);
        r.clear(Dir::Read, seen);
        assert!(r.get().is_ready(Dir::Read), "the event must not be lost");
        let seen = r.get();
        r.clear(Dir::Read, seen);
        assert!(!r.get().is_ready(Dir::Read));
    }

    #[test]
    fn short_reads_prove_nothing_before_a_wait_of_ours_or_after_a_hang_up() {
        let r = Readiness::default();
        assert!(
            !r.get().short_read_drains(),
            "events may have gone to may's own wait"
        );
        assert!(!r.record(WAKE));
        assert!(
            r.get().short_read_drains(),
            "a wait returned: no event can be lost now"
        );
        let r = Readiness::default();
        r.record(IN);
        assert!(r.get().short_read_drains());
        r.record(RDHUP);
        assert!(!r.get().short_read_drains());
    }

    #[test]
    fn a_hang_up_is_remembered() {
        let r = Readiness::default();
        r.record(IN | RDHUP);
        let seen = r.get();
        assert!(seen.hung_up());
        r.clear(Dir::Read, seen);
        assert!(r.get().hung_up());
    }
}
