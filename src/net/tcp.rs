//! TCP listeners and streams for goroutines, over `may::net`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use may::io::{SplitIo, SplitReader, SplitWriter, WaitIo};

use super::ToAddrs;
use super::deadline::{Limits, check_timeout, timed, timed_out};
use super::ready::ReadGate;

/// A TCP socket server, listening for connections (Go's `net.TCPListener`).
///
/// `accept` parks the calling goroutine until a client connects; the worker thread keeps
/// running other goroutines. Called from a plain thread, it blocks that thread. One goroutine
/// or thread at a time should wait in `accept` (may keeps one waiter per socket: a second one
/// would take the first one's place); [`close`](Self::close) wakes it.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use goway::net::{TcpListener, dial};
///
/// let ln = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = ln.local_addr().unwrap();
/// let h = goway::go!(move || {
///     let (mut c, _peer) = ln.accept().unwrap();
///     let mut buf = [0u8; 5];
///     c.read_exact(&mut buf).unwrap();
///     c.write_all(&buf).unwrap();
/// });
/// let mut c = dial(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut buf = [0u8; 5];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hello");
/// h.join().unwrap();
/// ```
pub struct TcpListener {
    io: may::net::TcpListener,
    closed: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl TcpListener {
    /// Binds to the first address of `addr` that works, and listens.
    ///
    /// The socket gets `SO_REUSEADDR` (quick restarts) but not `SO_REUSEPORT`, so binding an
    /// address that another socket listens on fails with `AddrInUse` instead of silently
    /// sharing the port (`may::net::TcpListener::bind` sets `SO_REUSEPORT`). The accept
    /// backlog is the system's maximum (`net.core.somaxconn`), as Go sets it, so a burst of
    /// connections waits in the kernel instead of being refused (`std` uses 128).
    ///
    /// # Errors
    /// The address does not resolve, or no address could be bound (the last error).
    pub fn bind(addr: impl ToAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.to_addrs()? {
            match listen_socket(a) {
                Ok(l) => return TcpListener::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    /// Wraps a listening `std` socket; it is switched to non-blocking mode.
    ///
    /// # Errors
    /// The socket could not be made non-blocking.
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        l.set_nonblocking(true)?;
        let fd = l.into_raw_fd();
        // This is may's only way to wrap a socket it did not bind itself.
        // SAFETY: `fd` is an open listening socket that we own (just released by `into_raw_fd`,
        // so nothing else will close it); may takes over its ownership.
        let io = unsafe { may::net::TcpListener::from_raw_fd(fd) };
        Ok(TcpListener {
            io,
            closed: Default::default(),
        })
    }

    /// Waits for a connection and returns it with the client's address. The stream has
    /// `TCP_NODELAY` set, as Go sets it on every TCP connection.
    ///
    /// # Errors
    /// What `accept(2)` returns: notably `EMFILE`/`ENFILE` when the process or the system is
    /// out of file descriptors (the pending connection stays queued; retry after a pause).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = {
            let _io = super::deadline::io_wait(false);
            super::closed_or(&self.closed, self.io.accept())?
        };
        // A failure here only loses the latency optimisation; the connection is fine.
        let _ = s.set_nodelay(true);
        Ok((TcpStream::from_may(s), a))
    }

    /// Stops listening (Go's `Listener.Close`): an `accept` waiting in any goroutine or
    /// thread returns at once, and every later one fails, with the error of
    /// [`is_closed_error`](super::is_closed_error) ("use of closed network connection").
    /// Connections already accepted are not affected; the descriptor is released on drop.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn close(&self) -> io::Result<()> {
        super::close_listener(&self.closed, self.io.inner())
    }

    /// An endless iterator over accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { ln: self }
    }

    /// The address this listener is bound to (with the real port after binding port 0).
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The underlying `may` listener.
    pub fn as_may(&self) -> &may::net::TcpListener {
        &self.io
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// Iterator returned by [`TcpListener::incoming`]; never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    ln: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.ln.accept().map(|(s, _)| s))
    }
}

/// A TCP connection usable from goroutines: `Read`/`Write` park the goroutine, never the
/// worker thread (Go's `net.TCPConn`).
///
/// Timeouts come in two forms: per operation ([`set_read_timeout`](Self::set_read_timeout),
/// as in `std`) and absolute ([`set_read_deadline`](Self::set_read_deadline), as Go's
/// `SetReadDeadline`); an operation fails with `ErrorKind::TimedOut` ("i/o timeout") at the
/// earlier of the two. To read and write from two goroutines at once, [`split`](Self::split)
/// the stream.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use goway::net::{TcpListener, dial};
///
/// let ln = TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut c = dial(ln.local_addr().unwrap()).unwrap();
/// let (_server_side, _) = ln.accept().unwrap();
/// c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
/// let err = c.read(&mut [0u8; 1]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// ```
pub struct TcpStream {
    io: may::net::TcpStream,
    rd: Limits,
    wr: Limits,
    /// Whether the next read may wait before reading (see `ReadGate`).
    gate: ReadGate,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

fn set_rd(s: &may::net::TcpStream, t: Option<Duration>) -> io::Result<()> {
    s.set_read_timeout(t)
}

fn set_wr(s: &may::net::TcpStream, t: Option<Duration>) -> io::Result<()> {
    s.set_write_timeout(t)
}

impl TcpStream {
    pub(crate) fn from_may(io: may::net::TcpStream) -> Self {
        TcpStream {
            io,
            rd: Limits::default(),
            wr: Limits::default(),
            gate: ReadGate::default(),
        }
    }

    /// Connects to `addr` (each resolved address in turn) with no timeout. Same as
    /// [`dial`](super::dial).
    ///
    /// # Errors
    /// The last connection error, or a resolution error.
    pub fn connect(addr: impl ToAddrs) -> io::Result<TcpStream> {
        super::dial(addr)
    }

    /// The client's address.
    ///
    /// # Errors
    /// As `getpeername(2)` (`NotConnected` once the peer is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// This end's address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Shuts down the read side, the write side, or both (`Shutdown::Write` sends FIN: the
    /// peer reads EOF after the data already sent). Wakes goroutines blocked on this socket.
    ///
    /// # Errors
    /// As `shutdown(2)` (`NotConnected` if the peer already closed).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Sets `TCP_NODELAY` (on by default for goway streams, as in Go).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.inner().nodelay()
    }

    /// Sets the timeout of each future read: a read that gets no data for `d` fails with
    /// `TimedOut`. `None` (the default) waits as long as it takes.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration (as `std`).
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.rd.timeout = d;
        Ok(())
    }

    /// Sets the timeout of each future write (`None`, the default: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration (as `std`).
    pub fn set_write_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.wr.timeout = d;
        Ok(())
    }

    /// The per-read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.rd.timeout
    }

    /// The per-write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.wr.timeout
    }

    /// Sets an absolute deadline for reads (Go's `SetReadDeadline`): reads fail with `TimedOut`
    /// from then on, a read still waiting when the deadline passes included. `None` clears
    /// it. A deadline in the past makes the next read fail at once. Unlike Go, it is set
    /// through `&mut self`, so it cannot be moved while another goroutine is blocked reading
    /// this stream; to end such a read from elsewhere, [`shutdown`](Self::shutdown) a clone
    /// ([`try_clone`](Self::try_clone)) or the write half of a [`split`](Self::split).
    pub fn set_read_deadline(&mut self, t: Option<Instant>) {
        self.rd.deadline = t;
    }

    /// Sets an absolute deadline for writes (Go's `SetWriteDeadline`).
    pub fn set_write_deadline(&mut self, t: Option<Instant>) {
        self.wr.deadline = t;
    }

    /// Sets both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&mut self, t: Option<Instant>) {
        self.rd.deadline = t;
        self.wr.deadline = t;
    }

    /// A second handle to the same connection (a duplicated file descriptor).
    ///
    /// # Errors
    /// As `dup(2)` (`EMFILE` at the descriptor limit).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::from_may(self.io.try_clone()?))
    }

    /// Splits the stream into a read half and a write half, to be used by two goroutines at
    /// once (Go's reader/writer goroutine pair). The halves use two file descriptors; each is
    /// woken only by its own direction's readiness, so one half's traffic never restarts the
    /// other's timeout. Timeouts and deadlines carry over.
    ///
    /// # Errors
    /// As `dup(2)` (`EMFILE` at the descriptor limit).
    pub fn split(self) -> io::Result<(TcpReadHalf, TcpWriteHalf)> {
        let (rd, wr) = (self.rd, self.wr);
        let (r, w) = self.io.split()?;
        let mut r = TcpReadHalf {
            io: r,
            rd,
            peer: None,
        };
        let mut w = TcpWriteHalf {
            io: w,
            wr,
            peer: None,
        };
        // The read half keeps the original descriptor and its settings; may copies the
        // timeouts onto the write half's new descriptor, so both slots stay accurate.
        let peer = r.io.inner().peer_addr().ok();
        r.peer = peer;
        w.peer = peer;
        Ok((r, w))
    }

    /// The underlying `may` stream.
    pub fn as_may(&self) -> &may::net::TcpStream {
        &self.io
    }

    /// A `std` handle on the same socket (a duplicated descriptor, not registered with may's
    /// poller): for `shutdown` from another goroutine (the HTTP server's connections).
    pub(crate) fn control(&self) -> io::Result<std::net::TcpStream> {
        self.io.inner().try_clone()
    }

    /// The may stream, for the server's connections (one descriptor shared by a connection's
    /// goroutines).
    pub(crate) fn into_may(self) -> may::net::TcpStream {
        self.io
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || !self.rd.is_unlimited() || !crate::runtime::in_goroutine() {
            // may's read clears the socket's recorded events.
            self.gate.forget();
            return timed(&mut self.io, &mut self.rd, set_rd, |s, nb| {
                if nb { s.inner().read(buf) } else { s.read(buf) }
            });
        }
        // No time limit, in a goroutine: read, and wait on the socket only when it is empty
        // (see `ReadGate`).
        loop {
            if self.gate.must_wait() {
                let _io = super::deadline::io_wait(false);
                self.gate.waited(self.io.wait_io());
            }
            match self.io.inner().read(buf) {
                Ok(n) => {
                    self.gate.read(n, buf.len());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.gate.would_block(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl TcpStream {
    /// A write: `op(s, true)` writes to the `std` socket without waiting, `op(s, false)`
    /// through may. Without a time limit the direct write comes first: when the socket has
    /// room (nearly always) it leaves the events the next read waits on untouched, where
    /// may's write would clear them (then the gate forgets).
    fn write_with(
        &mut self,
        empty: bool,
        mut op: impl FnMut(&mut may::net::TcpStream, bool) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if !empty && self.wr.is_unlimited() {
            match op(&mut self.io, true) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
        self.gate.forget();
        timed(&mut self.io, &mut self.wr, set_wr, op)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(buf.is_empty(), |s, nb| {
            if nb {
                s.inner().write(buf)
            } else {
                s.write(buf)
            }
        })
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let empty = bufs.iter().all(|b| b.is_empty());
        self.write_with(empty, |s, nb| {
            if nb {
                s.inner().write_vectored(bufs)
            } else {
                s.write_vectored(bufs)
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read half of a [`TcpStream::split`].
pub struct TcpReadHalf {
    io: SplitReader<may::net::TcpStream>,
    rd: Limits,
    peer: Option<SocketAddr>,
}

/// The write half of a [`TcpStream::split`].
pub struct TcpWriteHalf {
    io: SplitWriter<may::net::TcpStream>,
    wr: Limits,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for TcpReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpReadHalf")
            .field("peer", &self.peer)
            .finish()
    }
}

impl fmt::Debug for TcpWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpWriteHalf")
            .field("peer", &self.peer)
            .finish()
    }
}

fn set_rd_half(s: &SplitReader<may::net::TcpStream>, t: Option<Duration>) -> io::Result<()> {
    s.inner().set_read_timeout(t)
}

fn set_wr_half(s: &SplitWriter<may::net::TcpStream>, t: Option<Duration>) -> io::Result<()> {
    s.inner().set_write_timeout(t)
}

impl TcpReadHalf {
    /// Sets the per-read timeout (`None`: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.rd.timeout = d;
        Ok(())
    }

    /// Sets an absolute read deadline (`None` clears it).
    pub fn set_read_deadline(&mut self, t: Option<Instant>) {
        self.rd.deadline = t;
    }

    /// The peer's address, as it was when the stream was split.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Shuts down part or all of the connection (it affects both halves).
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.inner().shutdown(how)
    }
}

impl TcpWriteHalf {
    /// Sets the per-write timeout (`None`: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.wr.timeout = d;
        Ok(())
    }

    /// Sets an absolute write deadline (`None` clears it).
    pub fn set_write_deadline(&mut self, t: Option<Instant>) {
        self.wr.deadline = t;
    }

    /// The peer's address, as it was when the stream was split.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Shuts down part or all of the connection (it affects both halves); `Shutdown::Write`
    /// sends FIN after the data already written.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.inner().shutdown(how)
    }
}

impl Read for TcpReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.rd, set_rd_half, |s, nb| {
            if nb {
                s.inner().inner().read(buf)
            } else {
                s.read(buf)
            }
        })
    }
}

impl Write for TcpWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.wr, set_wr_half, |s, nb| {
            if nb {
                s.inner().inner().write(buf)
            } else {
                s.write(buf)
            }
        })
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.wr, set_wr_half, |s, nb| {
            if nb {
                s.inner().inner().write_vectored(bufs)
            } else {
                s.inner_mut().write_vectored(bufs)
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket on `a` with `SO_REUSEADDR` and the system's largest backlog.
fn listen_socket(a: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&a.into())?;
    s.listen(listen_backlog())?;
    Ok(s.into())
}

/// Go's choice: `net.core.somaxconn` (the kernel caps any larger request at it anyway),
/// 4096 if it cannot be read.
fn listen_backlog() -> i32 {
    static BACKLOG: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    *BACKLOG.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&n| n > 0)
            .map_or(4096, |n| n.min(65535))
    })
}

/// Hands a connected `std` stream to may.
fn from_std(s: std::net::TcpStream) -> io::Result<may::net::TcpStream> {
    s.set_nonblocking(true)?;
    let fd = s.into_raw_fd();
    // SAFETY: `fd` is an open, connected socket that we own (just released by
    // `into_raw_fd`); may takes over its ownership.
    Ok(unsafe { may::net::TcpStream::from_raw_fd(fd) })
}

/// Connects with an overall `timeout` (`None`: none), trying each address in turn.
pub(crate) fn connect(addr: impl ToAddrs, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let addrs = addr.to_addrs()?;
    let end = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut last = None;
    let _io = super::deadline::io_wait(end.is_some());
    for a in addrs {
        let r = match end {
            None => may::net::TcpStream::connect(a),
            Some(end) => {
                let now = Instant::now();
                if now >= end {
                    return Err(last.unwrap_or_else(timed_out));
                }
                if crate::runtime::in_goroutine() {
                    may::net::TcpStream::connect_timeout(&a, end - now)
                } else {
                    // may's thread path ignores the timeout; a thread may block in std's.
                    std::net::TcpStream::connect_timeout(&a, end - now).and_then(from_std)
                }
            }
        };
        match r {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(TcpStream::from_may(s));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
}
