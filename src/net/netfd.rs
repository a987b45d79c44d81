//! A stream's socket as every goroutine and thread using it sees it (Go's `netFD`, with the
//! `pollDesc` of `internal/poll`): reads and writes that park the caller until the socket is
//! ready, and deadlines, timeouts, `close` and `shutdown` that anyone may call at any time,
//! waking the operations blocked on the socket so that they look again.
//!
//! may keeps one waiter per registered socket (one coroutine slot). Here the first goroutine
//! or thread that must wait takes that slot (it *leads*); any other one waiting at the same
//! time (a writer while a reader waits, say) parks on its own [`Blocker`] as a *follower*.
//! The leader records the events may reports in the stream's [`Readiness`], gives up the
//! slot, wakes the followers, and everyone looks at the readiness of its own direction: its
//! operation goes ahead, or it waits again (the first one back leads). Setting a deadline or
//! a timeout, `shutdown` and `close` store their change, then *kick*: the leader through
//! may's waker, the followers by unparking them. Nothing is done for a kick when nobody
//! waits, so a reader that moves its own deadline before each read pays two atomic stores
//! and a load.
//!
//! The file descriptor belongs to the stream and is closed when the stream is dropped, so it
//! is never closed while another goroutine may still use its number; `close` marks the stream
//! closed and shuts the socket down. Copies made by [`try_clone`](NetFd::try_clone) (each its
//! own descriptor) are closed one by one, as Go's `Conn.Close` leaves a descriptor from
//! `File()` working: a copy's `close` shuts the socket down only when no other copy is open.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use may::io::{AsIoData, WaitIo};
use may::sync::Blocker;
use parking_lot::Mutex;

use super::deadline::{Limit, ceil_ms, io_wait, remaining};
use super::ready::{Dir, Readiness};

/// What [`NetFd`] needs of a may socket: non-blocking operations on the `std` socket inside.
pub(crate) trait Socket: AsIoData + WaitIo + Send + Sync {
    /// `true` if a read that returns less than it could take proves the socket empty (TCP:
    /// `tcp_recvmsg` stops short only when the receive queue is empty).
    const SHORT_READ_DRAINS: bool;
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_now(&self, buf: &[u8]) -> io::Result<usize>;
    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    fn shutdown_now(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for may::net::TcpStream {
    const SHORT_READ_DRAINS: bool = true;
    #[inline]
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner().read(buf)
    }
    #[inline]
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner().write(buf)
    }
    #[inline]
    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner().write_vectored(bufs)
    }
    fn shutdown_now(&self, how: Shutdown) -> io::Result<()> {
        self.inner().shutdown(how)
    }
}

impl Socket for may::os::unix::net::UnixStream {
    const SHORT_READ_DRAINS: bool = false;
    #[inline]
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner().read(buf)
    }
    #[inline]
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner().write(buf)
    }
    #[inline]
    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner().write_vectored(bufs)
    }
    fn shutdown_now(&self, how: Shutdown) -> io::Result<()> {
        self.inner().shutdown(how)
    }
}

/// A socket shared by reference between goroutines and threads; see the module's doc.
pub(crate) struct NetFd<S> {
    io: S,
    closed: Closed,
    rd: Limit,
    wr: Limit,
    ready: Readiness,
    /// How many goroutines and threads are in [`wait`](Self::wait) (kicks skip the wake-ups
    /// when none is).
    waiting: AtomicUsize,
    /// Whether one of them waits in may's slot for the socket.
    leading: AtomicBool,
    /// The other waiters, and their number (read without the lock).
    followers: Mutex<Vec<Arc<Blocker>>>,
    n_followers: AtomicUsize,
}

/// A stream's closed state, and the count of open copies it shares with the copies
/// [`NetFd::try_clone`] made of it.
#[derive(Default)]
struct Closed {
    closed: AtomicBool,
    /// How many of the copies are open (neither closed nor dropped); set by the first
    /// `try_clone`, shared by every copy.
    open_copies: OnceLock<Arc<AtomicUsize>>,
}

impl Closed {
    /// Marks this copy closed: `None` if it was closed already, else whether it was the last
    /// open copy (then the socket may be shut down).
    fn close(&self) -> Option<bool> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(
            self.open_copies
                .get()
                .is_none_or(|n| n.fetch_sub(1, Ordering::SeqCst) == 1),
        )
    }
}

impl Drop for Closed {
    /// A copy dropped without `close` no longer counts as open.
    fn drop(&mut self) {
        if !*self.closed.get_mut() {
            if let Some(n) = self.open_copies.get() {
                n.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Counts a waiter in [`NetFd::waiting`] until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: Socket> NetFd<S> {
    pub(crate) fn new(io: S) -> Self {
        NetFd {
            io,
            closed: Closed::default(),
            rd: Limit::default(),
            wr: Limit::default(),
            ready: Readiness::default(),
            waiting: AtomicUsize::new(0),
            leading: AtomicBool::new(false),
            followers: Mutex::new(Vec::new()),
            n_followers: AtomicUsize::new(0),
        }
    }

    /// The may socket.
    #[inline]
    pub(crate) fn io(&self) -> &S {
        &self.io
    }

    /// The may socket, for an owner that takes over (the server's connections).
    pub(crate) fn into_io(self) -> S {
        self.io
    }

    /// The limits of direction `d`.
    #[inline]
    pub(crate) fn limit(&self, d: Dir) -> &Limit {
        match d {
            Dir::Read => &self.rd,
            Dir::Write => &self.wr,
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.closed.load(Ordering::SeqCst)
    }

    /// Sets direction `d`'s per-operation timeout and wakes the blocked operations, which
    /// measure their wait against it from then on.
    pub(crate) fn set_timeout(&self, d: Dir, t: Option<std::time::Duration>) {
        self.limit(d).set_timeout(t);
        self.kick();
    }

    /// Sets direction `d`'s deadline and wakes the blocked operations.
    pub(crate) fn set_deadline(&self, d: Dir, t: Option<Instant>) {
        self.limit(d).set_deadline(t);
        self.kick();
    }

    /// Marks the stream closed and wakes every blocked operation; it and every later one fail
    /// with the closed error. Unless another copy made by [`try_clone`](Self::try_clone) is
    /// still open, the socket is shut down both ways. The descriptor stays open until the
    /// stream is dropped.
    pub(crate) fn close(&self) -> io::Result<()> {
        let last = self.closed.close().ok_or_else(super::closed)?;
        if last {
            // The peer may be gone already (ENOTCONN): there is nothing left to shut.
            let _ = self.io.shutdown_now(Shutdown::Both);
        }
        self.kick();
        Ok(())
    }

    /// A second copy of the stream on the duplicated descriptor `dup(io)` returns, with its
    /// own limits and closed state; the two count each other as open copies (see
    /// [`close`](Self::close)).
    ///
    /// # Errors
    /// The closed error if this copy is closed; the error of `dup`.
    pub(crate) fn try_clone(&self, dup: impl FnOnce(&S) -> io::Result<S>) -> io::Result<Self> {
        let open = self
            .closed
            .open_copies
            .get_or_init(|| Arc::new(AtomicUsize::new(1)));
        // Count the copy before looking at `closed`, as `close` marks `closed` before it
        // looks at the count: a `close` of this copy racing with us then either sees the new
        // copy counted (and leaves the socket up), or is seen here.
        open.fetch_add(1, Ordering::SeqCst);
        let give_back = || {
            // The copy is not made after all; if it held the last count (this copy was
            // closed meanwhile and left the socket up for it), shut the socket down now.
            if open.fetch_sub(1, Ordering::SeqCst) == 1 {
                let _ = self.io.shutdown_now(Shutdown::Both);
            }
        };
        if self.is_closed() {
            give_back();
            return Err(super::closed());
        }
        match dup(&self.io) {
            Ok(io) => {
                let copy = NetFd::new(io);
                let _ = copy.closed.open_copies.set(open.clone());
                Ok(copy)
            }
            Err(e) => {
                give_back();
                Err(e)
            }
        }
    }

    /// Shuts down one or both directions and wakes the blocked operations (a read then sees
    /// EOF, a write an error).
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if self.is_closed() {
            return Err(super::closed());
        }
        let r = self.io.shutdown_now(how);
        self.kick();
        r
    }

    /// Reads, waiting for data as long as the read limits allow.
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let room = buf.len();
        match self.op(
            Dir::Read,
            |s| s.read_now(&mut *buf),
            |&n| S::SHORT_READ_DRAINS && n > 0 && n < room,
        ) {
            // A read that a concurrent close ended with the shutdown's EOF.
            Ok(0) if room > 0 && self.is_closed() => Err(super::closed()),
            r => r,
        }
    }

    /// Writes, waiting for room as long as the write limits allow.
    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.op(Dir::Write, |s| s.write_now(buf), |_| false)
    }

    /// As [`write`](Self::write), gathering `bufs`.
    #[inline]
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.op(Dir::Write, |s| s.write_vectored_now(bufs), |_| false)
    }

    /// Runs `f` (one non-blocking attempt) until it does not say `WouldBlock`, waiting for
    /// readiness in between. `drained(&result)` says that the attempt left the socket empty
    /// (a short read), so the next attempt may wait first.
    #[inline]
    pub(crate) fn op<T>(
        &self,
        d: Dir,
        mut f: impl FnMut(&S) -> io::Result<T>,
        drained: impl Fn(&T) -> bool,
    ) -> io::Result<T> {
        if self.is_closed() {
            return Err(super::closed());
        }
        let lim = self.limit(d);
        // When the operation started, for its timeout: taken at once if a limit is set (a
        // deadline that has passed fails the operation before it tries, as in Go), else at
        // the first wait.
        let mut start = None;
        if !lim.is_unlimited() {
            let now = Instant::now();
            remaining(lim.end(now))?;
            start = Some(now);
        }
        loop {
            let seen = self.ready.get();
            if seen.is_ready(d) {
                match f(&self.io) {
                    Ok(v) => {
                        if drained(&v) && seen.short_read_drains() {
                            self.ready.clear(d, seen);
                        }
                        return Ok(v);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.ready.clear(d, seen),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) if self.is_closed() => return Err(super::closed()),
                    Err(e) => return Err(e),
                }
            }
            let start = *start.get_or_insert_with(Instant::now);
            self.wait(d, start)?;
        }
    }

    /// Waits until direction `d` may be ready (`Ok`), its limits pass (`TimedOut`) or the
    /// stream is closed. Spurious returns are fine: the caller tries and may wait again.
    #[inline(never)]
    fn wait(&self, d: Dir, start: Instant) -> io::Result<()> {
        let lim = self.limit(d);
        // "IO wait" in goroutine dumps; never counted as a deadlock (the peer can wake it).
        let _io = io_wait(!lim.is_unlimited());
        let _waiting = Waiting::enter(&self.waiting);
        loop {
            // A kick stores its change before it wakes anyone, and the leader's wake-up
            // (may's recorded events) is consumed only by the leader's wait below, after
            // these loads: a change is either seen here or ends that wait.
            if self.is_closed() {
                return Err(super::closed());
            }
            let left = remaining(lim.end(start))?;
            if self.ready.get().is_ready(d) {
                return Ok(());
            }
            if self
                .leading
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                // The previous leader may have recorded our event just before letting go.
                let mut failed = None;
                if !self.ready.get().is_ready(d) {
                    // Returns at once if may recorded events while nobody waited.
                    match self.io.wait_io_timeout(left.map(ceil_ms)) {
                        Ok(events) => {
                            self.ready.record(events);
                        }
                        // The limit is checked above, against the latest setting.
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                        Err(e) => failed = Some(e),
                    }
                }
                self.leading.store(false, Ordering::SeqCst);
                if self.n_followers.load(Ordering::SeqCst) != 0 {
                    self.wake_followers();
                }
                if let Some(e) = failed {
                    return Err(e);
                }
            } else {
                self.follow(d, lim, start);
            }
        }
    }

    /// Parks as a follower until the leader is done, a kick, or the limit; the caller then
    /// looks again.
    #[cold]
    fn follow(&self, d: Dir, lim: &Limit, start: Instant) {
        let me = Arc::new(Blocker::new(false));
        {
            let mut f = self.followers.lock();
            f.push(me.clone());
            self.n_followers.fetch_add(1, Ordering::SeqCst);
        }
        // Seen from the list, every later change wakes us; one made before we joined is seen
        // here.
        let settled = !self.is_closed()
            && !self.ready.get().is_ready(d)
            && self.leading.load(Ordering::SeqCst);
        if settled {
            if let Ok(left) = remaining(lim.end(start)) {
                let _ = me.park(left.map(ceil_ms));
            }
        }
        let mut f = self.followers.lock();
        if let Some(i) = f.iter().position(|b| Arc::ptr_eq(b, &me)) {
            f.swap_remove(i);
        }
        self.n_followers.fetch_sub(1, Ordering::SeqCst);
    }

    fn wake_followers(&self) {
        for b in self.followers.lock().iter() {
            b.unpark();
        }
    }

    /// Wakes every blocked operation to look again (after a change of limits or state).
    fn kick(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Sets a flag in may's record of the socket (so a leader about to wait returns at
        // once) and schedules the leader if it waits already.
        self.io.waker().wakeup();
        self.wake_followers();
    }
}
