//! TCP listeners and streams for goroutines, over `may::net`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ToAddrs;
use super::deadline::{check_timeout, timed_out};
use super::netfd::NetFd;
use super::ready::Dir;

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
    /// sharing the port (`may::net::TcpListener::bind` sets `SO_REUSEPORT`; to share a port
    /// on purpose, use [`ListenConfig::reuse_port`]). The accept
    /// backlog is the system's maximum (`net.core.somaxconn`), as Go sets it, so a burst of
    /// connections waits in the kernel instead of being refused (`std` uses 128).
    ///
    /// # Errors
    /// The address does not resolve, or no address could be bound (the last error).
    pub fn bind(addr: impl ToAddrs) -> io::Result<TcpListener> {
        ListenConfig::new().listen(addr)
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
/// As in Go, every method takes `&self` and may be called from any goroutine or thread while
/// others read or write: share the stream as `Arc<TcpStream>` (or `&TcpStream` in scoped
/// code), and read and write through `&TcpStream`, which implements `Read` and `Write` as in
/// `std`. A reader and a writer may block at the same time; so may several readers, though
/// their bytes then interleave (as concurrent writers' partial writes do): one goroutine per
/// direction is the usual shape.
///
/// Timeouts come in two forms: per operation ([`set_read_timeout`](Self::set_read_timeout),
/// as in `std`) and absolute ([`set_read_deadline`](Self::set_read_deadline), as Go's
/// `SetReadDeadline`); an operation fails with `ErrorKind::TimedOut` ("i/o timeout") at the
/// earlier of the two. Changing either wakes the operations blocked on the stream, which then
/// measure their wait against the new setting: a deadline in the past ends them at once with
/// `TimedOut`, a later one lets them wait on. [`close`](Self::close) ends them, and every later
/// operation, with the closed error ([`is_closed_error`](super::is_closed_error), Go's
/// `net.ErrClosed`). This is Go's way to stop a reader at shutdown, and costs no extra
/// descriptor.
///
/// A plain thread blocked in a read or write is woken the same way as a goroutine (its wait
/// goes through may's per-thread proxy), so all of this holds on threads too.
///
/// # Examples
/// A read that times out, then a reader woken from another goroutine:
/// ```
/// use std::io::Read;
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use goway::net::{TcpListener, dial};
///
/// let ln = TcpListener::bind("127.0.0.1:0").unwrap();
/// let mut c = dial(ln.local_addr().unwrap()).unwrap();
/// let (_server_side, _) = ln.accept().unwrap();
/// c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
/// let err = c.read(&mut [0u8; 1]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
///
/// c.set_read_timeout(None).unwrap();
/// let c = Arc::new(c);
/// let reader = {
///     let c = c.clone();
///     goway::go!(move || (&*c).read(&mut [0u8; 1]).map_err(|e| e.kind()))
/// };
/// // From here (another goroutine or thread): Go's `c.SetReadDeadline(time.Now())`.
/// c.set_read_deadline(Some(Instant::now()));
/// assert_eq!(reader.join().unwrap(), Err(std::io::ErrorKind::TimedOut));
/// ```
pub struct TcpStream {
    fd: NetFd<may::net::TcpStream>,
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

impl TcpStream {
    pub(crate) fn from_may(io: may::net::TcpStream) -> Self {
        TcpStream { fd: NetFd::new(io) }
    }

    /// Connects to `addr` (each resolved address in turn) with no timeout. Same as
    /// [`dial`](super::dial).
    ///
    /// # Errors
    /// The first address's connection error if none connects, or a lookup error.
    pub fn connect(addr: impl ToAddrs) -> io::Result<TcpStream> {
        super::dial(addr)
    }

    /// The client's address.
    ///
    /// # Errors
    /// As `getpeername(2)` (`NotConnected` once the peer is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().peer_addr()
    }

    /// This end's address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.io().local_addr()
    }

    /// Shuts down the read side, the write side, or both (Go's `CloseRead`/`CloseWrite`), and
    /// wakes the operations blocked on the stream in any goroutine or thread: after
    /// `Shutdown::Read` a blocked read returns EOF (`Ok(0)`); `Shutdown::Write` sends FIN (the
    /// peer reads EOF after the data already sent).
    ///
    /// # Errors
    /// As `shutdown(2)` (`NotConnected` if the peer already closed); the closed error after
    /// [`close`](Self::close).
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// use std::sync::Arc;
    /// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = Arc::new(goway::net::dial(ln.local_addr().unwrap()).unwrap());
    /// let _server_side = ln.accept().unwrap();
    /// let reader = {
    ///     let c = c.clone();
    ///     goway::go!(move || (&*c).read(&mut [0u8; 8]).unwrap())
    /// };
    /// c.shutdown(Shutdown::Read).unwrap();
    /// assert_eq!(reader.join().unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.shutdown(how)
    }

    /// Closes the connection (Go's `Conn.Close`): shuts it down both ways (the peer reads EOF)
    /// and makes every read and write fail with the closed error
    /// ([`is_closed_error`](super::is_closed_error): "use of closed network connection"),
    /// those blocked in other goroutines or threads at once. The file descriptor itself is
    /// released when the last owner drops the stream, so that no other goroutine can touch a
    /// reused descriptor number.
    ///
    /// # Errors
    /// The closed error if the stream was closed already (as Go).
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::sync::Arc;
    /// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = Arc::new(goway::net::dial(ln.local_addr().unwrap()).unwrap());
    /// let _server_side = ln.accept().unwrap();
    /// let reader = {
    ///     let c = c.clone();
    ///     goway::go!(move || (&*c).read(&mut [0u8; 8]).unwrap_err())
    /// };
    /// c.close().unwrap();
    /// assert!(goway::net::is_closed_error(&reader.join().unwrap()));
    /// assert!(c.close().is_err());
    /// ```
    pub fn close(&self) -> io::Result<()> {
        self.fd.close()
    }

    /// Sets `TCP_NODELAY` (on by default for goway streams, as in Go).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.fd.io().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.io().inner().nodelay()
    }

    /// Sets the timeout of each read: a read that waits `d` for data fails with `TimedOut`.
    /// `None` (the default) waits as long as it takes. A read blocked meanwhile measures its
    /// wait, from its start, against the new timeout.
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration (as `std`).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.fd.set_timeout(Dir::Read, d);
        Ok(())
    }

    /// Sets the timeout of each write (`None`, the default: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration (as `std`).
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.fd.set_timeout(Dir::Write, d);
        Ok(())
    }

    /// The per-read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.fd.limit(Dir::Read).timeout()
    }

    /// The per-write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.fd.limit(Dir::Write).timeout()
    }

    /// Sets an absolute deadline for reads (Go's `SetReadDeadline`): reads fail with `TimedOut`
    /// ("i/o timeout") from then on; `None` clears it. Callable from any goroutine or thread:
    /// a read blocked on the stream is woken and sees the new deadline, so a deadline in the
    /// past (`Some(Instant::now())`) ends it at once, and a later one lets it wait on. After a
    /// timeout the stream is still usable: move the deadline and read again.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::{Duration, Instant};
    /// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = goway::net::dial(ln.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = ln.accept().unwrap();
    /// c.set_read_deadline(Some(Instant::now()));
    /// assert_eq!(c.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// c.set_read_deadline(Some(Instant::now() + Duration::from_secs(10)));
    /// s.write_all(b"x").unwrap();
    /// assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 1);
    /// ```
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.fd.set_deadline(Dir::Read, t);
    }

    /// Sets an absolute deadline for writes (Go's `SetWriteDeadline`), as
    /// [`set_read_deadline`](Self::set_read_deadline) does for reads.
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.fd.set_deadline(Dir::Write, t);
    }

    /// Sets both deadlines (Go's `SetDeadline`).
    pub fn set_deadline(&self, t: Option<Instant>) {
        self.set_read_deadline(t);
        self.set_write_deadline(t);
    }

    /// A second, independent handle to the same connection (a duplicated file descriptor,
    /// with its own timeouts, deadlines and closed state). To use one connection from several
    /// goroutines, share the stream (`Arc<TcpStream>`) instead: no descriptor is added.
    ///
    /// # Errors
    /// As `dup(2)` (`EMFILE` at the descriptor limit).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::from_may(self.fd.io().try_clone()?))
    }

    /// Splits the stream into a read half and a write half, for a reader goroutine and a
    /// writer goroutine. The halves share the stream (and its one descriptor, closed when
    /// both are dropped) with its timeouts and deadlines; a shared `Arc<TcpStream>` does the
    /// same without the types.
    ///
    /// # Errors
    /// None today; kept for compatibility (the halves used to take a second descriptor).
    pub fn split(self) -> io::Result<(TcpReadHalf, TcpWriteHalf)> {
        let peer = self.peer_addr().ok();
        let s = Arc::new(self);
        Ok((TcpReadHalf { s: s.clone(), peer }, TcpWriteHalf { s, peer }))
    }

    /// The underlying `may` stream. Reading or writing it directly bypasses the stream's
    /// deadlines and readiness records: use it for socket options only.
    pub fn as_may(&self) -> &may::net::TcpStream {
        self.fd.io()
    }

    /// A `std` handle on the same socket (a duplicated descriptor, not registered with may's
    /// poller): for `shutdown` from another goroutine (the HTTP server's connections).
    pub(crate) fn control(&self) -> io::Result<std::net::TcpStream> {
        self.fd.io().inner().try_clone()
    }

    /// The may stream, for the server's connections (one descriptor shared by a connection's
    /// goroutines).
    pub(crate) fn into_may(self) -> may::net::TcpStream {
        self.fd.into_io()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.io().as_raw_fd()
    }
}

impl Read for &TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}

impl Read for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.read(buf)
    }
}

impl Write for &TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.fd.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.fd.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read half of a [`TcpStream::split`]. Its methods take `&self`, as the stream's do.
pub struct TcpReadHalf {
    s: Arc<TcpStream>,
    peer: Option<SocketAddr>,
}

/// The write half of a [`TcpStream::split`]. Its methods take `&self`, as the stream's do.
pub struct TcpWriteHalf {
    s: Arc<TcpStream>,
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

impl TcpReadHalf {
    /// Sets the per-read timeout (`None`: no limit), as [`TcpStream::set_read_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.set_read_timeout(d)
    }

    /// Sets an absolute read deadline (`None` clears it), as
    /// [`TcpStream::set_read_deadline`]: a read blocked in another goroutine sees it at once.
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.s.set_read_deadline(t);
    }

    /// The peer's address, as it was when the stream was split.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Shuts down part or all of the connection (it affects both halves), as
    /// [`TcpStream::shutdown`].
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    /// Closes the connection (both halves), as [`TcpStream::close`].
    ///
    /// # Errors
    /// The closed error if it was closed already.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl TcpWriteHalf {
    /// Sets the per-write timeout (`None`: no limit), as [`TcpStream::set_write_timeout`].
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.set_write_timeout(d)
    }

    /// Sets an absolute write deadline (`None` clears it), as
    /// [`TcpStream::set_write_deadline`].
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.s.set_write_deadline(t);
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
        self.s.shutdown(how)
    }

    /// Closes the connection (both halves), as [`TcpStream::close`].
    ///
    /// # Errors
    /// The closed error if it was closed already.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl Read for TcpReadHalf {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.fd.read(buf)
    }
}

impl Read for &TcpReadHalf {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.fd.read(buf)
    }
}

impl Write for TcpWriteHalf {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.fd.write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.s.fd.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpWriteHalf {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.fd.write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.s.fd.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket on `a` with `SO_REUSEADDR` and the system's largest backlog.
/// How to open a listening socket (Go's `net.ListenConfig`): the socket options set between
/// `socket(2)` and `bind(2)`, where Go's `ListenConfig.Control` sets them.
///
/// [`TcpListener::bind`] is `ListenConfig::new().listen(addr)`. The one option so far is
/// [`reuse_port`](Self::reuse_port): `SO_REUSEPORT`, so that several processes (or several
/// listeners of one process) share a port and the kernel spreads the incoming connections
/// among them (Linux: by a hash of the client's address and port).
///
/// # Examples
/// Two listeners on one port, as two copies of a server would be:
/// ```
/// use goway::net::ListenConfig;
///
/// let cfg = ListenConfig::new().reuse_port(true);
/// let a = cfg.listen("127.0.0.1:0").unwrap();
/// let port = a.local_addr().unwrap().port();
/// let b = cfg.listen(("127.0.0.1", port)).unwrap();
/// assert_eq!(b.local_addr().unwrap().port(), port);
///
/// // Without `reuse_port` (on either side), the port is taken:
/// let err = goway::net::TcpListener::bind(("127.0.0.1", port)).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenConfig {
    reuse_port: bool,
}

impl ListenConfig {
    /// The default: `SO_REUSEADDR` (quick restarts), no `SO_REUSEPORT`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `SO_REUSEPORT` on the socket before binding (default `false`). Every socket that
    /// shares the port must set it (Linux also requires them to belong to the same user);
    /// then each listener gets its own accept queue, and the kernel sends each new connection
    /// to one of them. A connection still in a listener's queue when that listener closes is
    /// reset, so a process leaving the group should stop being sent traffic first (see
    /// `docs/deploy.md`).
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Whether [`reuse_port`](Self::reuse_port) is set.
    pub fn is_reuse_port(&self) -> bool {
        self.reuse_port
    }

    /// Binds to the first address of `addr` that works, and listens, as
    /// [`TcpListener::bind`] does, with this configuration's options.
    ///
    /// # Errors
    /// The address does not resolve, or no address could be bound (the last error:
    /// `AddrInUse` when another socket holds the port without both setting `reuse_port`).
    pub fn listen(&self, addr: impl ToAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.to_addrs()? {
            match listen_socket(a, self) {
                Ok(l) => return TcpListener::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }
}

fn listen_socket(a: SocketAddr, cfg: &ListenConfig) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if cfg.reuse_port {
        s.set_reuse_port(true)?;
    }
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

/// Connects to `a`, giving up at `end` (`None`: the kernel's connect timeout).
pub(crate) fn connect_one(a: SocketAddr, end: Option<Instant>) -> io::Result<TcpStream> {
    let r = match end {
        None => may::net::TcpStream::connect(a),
        Some(end) => {
            let now = Instant::now();
            if now >= end {
                return Err(timed_out());
            }
            if crate::runtime::in_goroutine() {
                may::net::TcpStream::connect_timeout(&a, end - now)
            } else {
                // may's thread path ignores the timeout; a thread may block in std's.
                std::net::TcpStream::connect_timeout(&a, end - now).and_then(from_std)
            }
        }
    };
    let s = r?;
    let _ = s.set_nodelay(true);
    Ok(TcpStream::from_may(s))
}
