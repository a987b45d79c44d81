//! A server connection's socket: one file descriptor, shared by the connection's reader,
//! writer and the server.
//!
//! may lets one goroutine at a time wait on a registered descriptor (one waiter slot per
//! descriptor), so a reader and a writer blocking at once would need two descriptors (may's
//! `split` dups). Here only the reader ever waits on the shared descriptor
//! ([`Sock::wait_readable`]); the writer writes without waiting, which on a socket whose send
//! buffer has room (nearly always) is all it needs, and only when a client stops reading does
//! it take a second, registered descriptor to wait on ([`SlowWriter`]). Shutting the socket
//! down from any goroutine or thread wakes both. The descriptor closes when the last of them
//! lets go of the connection, so nobody can touch a reused descriptor number.
//!
//! Read deadlines are a [`Wakeup`]: one lazily re-armed timer per connection that wakes the
//! reader when its deadline passes; moving the deadline is one atomic store.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use may::io::{WaitIo, WaitIoWaker};
use may::os::unix::net as may_unix;
use parking_lot::Mutex;

use crate::net::{TcpStream, UnixStream};
use crate::time::Timer;

/// An accepted connection, before it is served.
pub(crate) enum AnyStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AnyStream {
    /// The socket, to be shared by the connection's goroutines.
    pub(crate) fn into_sock(self) -> Sock {
        match self {
            AnyStream::Tcp(s) => Sock::Tcp(s.into_may()),
            AnyStream::Unix(s) => Sock::Unix(s.into_may()),
        }
    }

    /// Writes what fits now without waiting (a refusal message on a fresh socket always
    /// fits), then sends FIN. Errors are ignored: the client is being turned away anyway.
    pub(crate) fn refuse(&self, msg: Option<&[u8]>) {
        match self {
            AnyStream::Tcp(s) => {
                let mut sys = s.as_may().inner();
                if let Some(m) = msg {
                    let _ = sys.write(m);
                }
                let _ = sys.shutdown(Shutdown::Write);
            }
            AnyStream::Unix(s) => {
                let mut sys = s.std_ref();
                if let Some(m) = msg {
                    let _ = sys.write(m);
                }
                let _ = sys.shutdown(Shutdown::Write);
            }
        }
    }
}

/// A connection's socket (non-blocking, registered with may's poller).
pub(crate) enum Sock {
    Tcp(may::net::TcpStream),
    Unix(may_unix::UnixStream),
}

impl Sock {
    /// One non-blocking read: `WouldBlock` when nothing is there.
    #[inline]
    pub(crate) fn read_nb(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.inner().read(buf),
            Sock::Unix(s) => s.inner().read(buf),
        }
    }

    /// One non-blocking write: `WouldBlock` when the send buffer is full.
    #[inline]
    fn write_nb(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.inner().write(buf),
            Sock::Unix(s) => s.inner().write(buf),
        }
    }

    /// Parks the calling goroutine until the socket has news (data, EOF, an error, a
    /// shutdown) or its [`Wakeup`] fires. Wake-ups can be spurious: read again and see.
    /// Returns the epoll events recorded since the last wait (for a
    /// [`ReadGate`](crate::net::ready::ReadGate)). Only the connection's reader calls it.
    #[inline]
    pub(crate) fn wait_readable(&self, timed: bool) -> usize {
        // Shown as network I/O in the goroutine registry (and never a deadlock).
        let _io = crate::net::deadline::io_wait(timed);
        match self {
            Sock::Tcp(s) => s.wait_io(),
            Sock::Unix(s) => s.wait_io(),
        }
    }

    /// The descriptor's number (for the spin poller's epoll set).
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    fn waker(&self) -> WaitIoWaker {
        match self {
            Sock::Tcp(s) => s.waker(),
            Sock::Unix(s) => s.waker(),
        }
    }

    /// Shuts the socket down; wakes a reader waiting on it and a writer blocked in
    /// [`SlowWriter`]. Errors (the peer already gone) leave nothing to shut.
    pub(crate) fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Sock::Tcp(s) => s.inner().shutdown(how),
            Sock::Unix(s) => s.inner().shutdown(how),
        };
    }

    /// A second, registered descriptor for a writer that must wait for room.
    fn slow_writer(&self, timeout: Option<Duration>) -> io::Result<SlowWriter> {
        Ok(match self {
            Sock::Tcp(s) => {
                let w = s.try_clone()?;
                w.set_write_timeout(timeout)?;
                SlowWriter::Tcp(w)
            }
            Sock::Unix(s) => {
                let w = s.try_clone()?;
                w.set_write_timeout(timeout)?;
                SlowWriter::Unix(w)
            }
        })
    }

    /// A wake-up for the reader's deadlines.
    pub(crate) fn wakeup(&self) -> Wakeup {
        Wakeup::new(self.waker())
    }
}

/// The writer's way out when the send buffer is full: a duplicate of the socket's descriptor
/// that the writer may wait on (may's write with its write timeout). Made on the first full
/// buffer and kept for the connection's life.
enum SlowWriter {
    Tcp(may::net::TcpStream),
    Unix(may_unix::UnixStream),
}

impl SlowWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _io = crate::net::deadline::io_wait(true);
        match self {
            SlowWriter::Tcp(s) => s.write(buf),
            SlowWriter::Unix(s) => s.write(buf),
        }
    }
}

/// The connection writer's side of the socket.
pub(crate) struct SockWriter {
    slow: Option<SlowWriter>,
    timeout: Option<Duration>,
}

/// How long a writer without a spare descriptor naps between attempts at most.
const POLL_NAP_MAX: Duration = Duration::from_millis(50);

impl SockWriter {
    /// A writer whose waits for room give up after `timeout` without progress.
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        SockWriter {
            slow: None,
            timeout,
        }
    }

    /// Writes all of `buf`: straight to the socket while it has room, then through the
    /// spare descriptor, waiting for the client to read. A write that makes no progress for
    /// the timeout fails with `TimedOut`.
    pub(crate) fn write_all(&mut self, sock: &Sock, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let r = match &mut self.slow {
                None => sock.write_nb(buf),
                Some(w) => w.write(buf),
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.slow.is_none() => {
                    match sock.slow_writer(self.timeout) {
                        Ok(w) => self.slow = Some(w),
                        // Out of descriptors: wait for room by polling instead.
                        Err(_) => return self.poll_write_all(sock, buf),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes what the socket takes at once of `buf`, without waiting: returns the bytes
    /// written before its send buffer was full, or before an error (left for
    /// [`write_all`](Self::write_all) to meet again and report).
    pub(crate) fn write_now(&self, sock: &Sock, buf: &[u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            match sock.write_nb(&buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        done
    }

    /// `write_all` without a descriptor to wait on: retries after naps (1 ms doubling to
    /// 50 ms) until the timeout passes without progress. Only at the descriptor limit.
    fn poll_write_all(&mut self, sock: &Sock, mut buf: &[u8]) -> io::Result<()> {
        let mut nap = Duration::from_millis(1);
        let mut progress = Instant::now();
        while !buf.is_empty() {
            match sock.write_nb(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    progress = Instant::now();
                    nap = Duration::from_millis(1);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.timeout.is_some_and(|t| progress.elapsed() >= t) {
                        return Err(crate::net::deadline::timed_out());
                    }
                    crate::time::sleep(nap);
                    nap = (nap * 2).min(POLL_NAP_MAX);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Wakes a reader parked in [`Sock::wait_readable`] when its deadline passes.
///
/// The deadline is an atomic the reader moves freely (a store per frame). One timer per
/// connection is armed no later than the deadline; when it fires early (the deadline moved
/// on) it re-arms itself for the new one, so a busy connection re-arms once per timeout
/// period, not once per frame.
pub(crate) struct Wakeup {
    inner: Arc<WakeupInner>,
}

struct WakeupInner {
    waker: WaitIoWaker,
    epoch: Instant,
    /// The deadline in nanoseconds after `epoch`; 0: none.
    at: AtomicU64,
    /// When the timer will fire, in the same unit; 0: not armed. Changed under `timer`.
    armed_at: AtomicU64,
    timer: Mutex<Option<Timer>>,
}

impl WakeupInner {
    fn nanos(&self, t: Instant) -> u64 {
        // At least 1: 0 means "none".
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Arms the timer for `at` unless it already fires no later.
    fn arm(self: &Arc<Self>, at: u64) {
        let mut timer = self.timer.lock();
        let armed = self.armed_at.load(Ordering::SeqCst);
        if armed != 0 && armed <= at {
            return;
        }
        let d = Duration::from_nanos(at.saturating_sub(self.nanos(Instant::now())));
        match timer.as_mut() {
            Some(t) => {
                t.reset(d);
            }
            None => {
                let weak = Arc::downgrade(self);
                *timer = Some(crate::time::inline_timer(d, move || fire(&weak)));
            }
        }
        self.armed_at.store(at, Ordering::SeqCst);
    }
}

/// The timer's callback, on the timer thread: wake the reader if its deadline has passed,
/// else follow the deadline.
fn fire(weak: &Weak<WakeupInner>) {
    let Some(w) = weak.upgrade() else { return };
    {
        let mut timer = w.timer.lock();
        w.armed_at.store(0, Ordering::SeqCst);
        let at = w.at.load(Ordering::SeqCst);
        if at == 0 {
            return; // no deadline now; the reader arms again when it sets one
        }
        let now = w.nanos(Instant::now());
        if now < at {
            if let Some(t) = timer.as_mut() {
                t.reset(Duration::from_nanos(at - now));
                w.armed_at.store(at, Ordering::SeqCst);
            }
            return;
        }
    }
    // Past due: the reader wakes, sees the time and decides (a stale wake-up is harmless).
    w.waker.wakeup();
}

impl Wakeup {
    fn new(waker: WaitIoWaker) -> Self {
        Wakeup {
            inner: Arc::new(WakeupInner {
                waker,
                epoch: Instant::now(),
                at: AtomicU64::new(0),
                armed_at: AtomicU64::new(0),
                timer: Mutex::new(None),
            }),
        }
    }

    /// Sets the instant the reader must be woken at (`None`: no deadline). Call before
    /// waiting.
    #[inline]
    pub(crate) fn set(&self, deadline: Option<Instant>) {
        let w = &self.inner;
        let at = deadline.map_or(0, |d| w.nanos(d));
        w.at.store(at, Ordering::SeqCst);
        if at == 0 {
            return;
        }
        // Either the timer's callback sees this deadline or we see that it is not armed
        // (both sides store, then load, sequentially consistent).
        let armed = w.armed_at.load(Ordering::SeqCst);
        if armed == 0 || armed > at {
            w.arm(at);
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        let timer = self.inner.timer.lock().take();
        if let Some(mut t) = timer {
            t.stop();
        }
    }
}

/// Read buffers of idle connections, shared: a connection waiting for its next frame holds
/// no buffer (Go's bufio would hold 4 KiB per idle connection).
static READ_BUFS: LazyLock<ArrayQueue<Vec<u8>>> = LazyLock::new(|| ArrayQueue::new(256));

thread_local! {
    /// One spare buffer per thread in front of `READ_BUFS`. A reader hands its buffer back
    /// just before it waits and takes one just after it wakes, and the next reader to run on
    /// that worker is woken in between: in the steady state each reader takes the buffer the
    /// previous one left, and the shared queue (two atomic read-modify-writes) is untouched.
    static SPARE: Cell<Option<Vec<u8>>> = const { Cell::new(None) };
}

/// Size of a fresh read buffer.
pub(crate) const READ_BUF_START: usize = 4 << 10;

/// A zeroed `READ_BUF_START` buffer, recycled if one is free.
///
/// Never inlined (nor is [`give_read_buf`]): it touches a thread-local, and inlined into the
/// reader's loop, the compiler could keep the thread-local's address across a wait, while the
/// goroutine resumes on another worker thread.
#[inline(never)]
pub(crate) fn take_read_buf() -> Vec<u8> {
    if let Ok(Some(b)) = SPARE.try_with(Cell::take) {
        return b;
    }
    READ_BUFS.pop().unwrap_or_else(|| vec![0u8; READ_BUF_START])
}

/// Hands back a buffer from [`take_read_buf`] (contents are never read before being
/// overwritten by a read, so they need no clearing).
#[inline(never)]
pub(crate) fn give_read_buf(buf: Vec<u8>) {
    if buf.len() != READ_BUF_START {
        return;
    }
    // The thread's spare slot takes it; a spare already there moves to the shared queue (or
    // is freed when that is full).
    if let Ok(Some(old)) = SPARE.try_with(|s| s.replace(Some(buf))) {
        let _ = READ_BUFS.push(old);
    }
}
