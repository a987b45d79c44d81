//! Unix-domain stream sockets for goroutines, over `may::os::unix::net`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::os::unix::net as may_unix;

use super::methods::{netfd_methods, read_write};
use super::netfd::NetFd;

/// A Unix-domain socket server (Go's `net.UnixListener`).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use goway::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("goway-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let ln = UnixListener::bind(&path).unwrap();
/// let h = goway::go!(move || {
///     let (mut c, _) = ln.accept().unwrap();
///     c.write_all(b"hi").unwrap();
/// });
/// let mut c = UnixStream::connect(&path).unwrap();
/// let mut buf = [0u8; 2];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// h.join().unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    io: may_unix::UnixListener,
    closed: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.io.as_raw_fd())
            .finish()
    }
}

impl UnixListener {
    /// Creates the socket file at `path` and listens. The file is not removed on drop.
    ///
    /// # Errors
    /// `AddrInUse` if the file exists; other `bind(2)` errors.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: may_unix::UnixListener::bind(path)?,
            closed: Default::default(),
        })
    }

    /// Waits for a connection.
    ///
    /// # Errors
    /// What `accept(2)` returns (`EMFILE` at the descriptor limit).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = {
            let _io = super::deadline::io_wait(false);
            super::closed_or(&self.closed, self.io.accept())?
        };
        Ok((UnixStream::from_may(s), a))
    }

    /// Stops listening, as [`TcpListener::close`](super::TcpListener::close): a waiting
    /// `accept` returns the closed error (woken by a connection the call makes to the
    /// socket's path, since shutting a Unix listener down wakes nobody).
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn close(&self) -> io::Result<()> {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        // Shutting a Unix listener down does not wake its accept (unlike TCP's): knock once,
        // without waiting, so a waiting accept returns and sees the flag.
        let path = self.io.local_addr()?;
        if let Some(path) = path.as_pathname() {
            use socket2::{Domain, SockAddr, Socket, Type};
            let knock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            knock.set_nonblocking(true)?;
            // A full backlog refuses the knock; then a queued client wakes the accept instead.
            let _ = knock.connect(&SockAddr::unix(path)?);
        }
        Ok(())
    }

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A Unix-domain stream connection for goroutines, with the same concurrency contract,
/// timeouts, deadlines, [`close`](Self::close) and [`split`](Self::split) as
/// [`TcpStream`](super::TcpStream): every method takes `&self`, `Read` and `Write` are also
/// implemented for `&UnixStream`, and changing a deadline or closing the stream wakes the
/// operations blocked on it in other goroutines or threads.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use goway::net::UnixStream;
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let a = Arc::new(a);
/// let (got_tx, got_rx) = goway::chan::bounded(1);
/// let reader = {
///     let a = a.clone();
///     goway::go!(move || {
///         let mut buf = [0u8; 2];
///         (&*a).read_exact(&mut buf).unwrap();
///         got_tx.send(buf).unwrap();
///         (&*a).read(&mut buf) // blocks until the close below
///     })
/// };
/// // Another goroutine (here the main thread) writes while the reader waits.
/// (&*a).write_all(b"ok").unwrap();
/// let mut back = [0u8; 2];
/// b.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"ok");
/// b.write_all(b"hi").unwrap();
/// assert_eq!(&got_rx.recv().unwrap(), b"hi");
/// a.close().unwrap();
/// assert!(goway::net::is_closed_error(&reader.join().unwrap().unwrap_err()));
/// ```
pub struct UnixStream {
    fd: NetFd<may_unix::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixStream {
    pub(crate) fn from_may(io: may_unix::UnixStream) -> Self {
        UnixStream { fd: NetFd::new(io) }
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    /// As `connect(2)` (`NotFound`, `ConnectionRefused`).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let _io = super::deadline::io_wait(false);
        Ok(UnixStream::from_may(may_unix::UnixStream::connect(path)?))
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = may_unix::UnixStream::pair()?;
        Ok((UnixStream::from_may(a), UnixStream::from_may(b)))
    }

    /// Shuts down the read side, the write side, or both, and wakes the operations blocked on
    /// the stream, as [`TcpStream::shutdown`](super::TcpStream::shutdown).
    ///
    /// # Errors
    /// As `shutdown(2)`; the closed error after [`close`](Self::close).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.shutdown(how)
    }

    /// Splits into halves for a reader goroutine and a writer goroutine; they share the
    /// stream and its one descriptor, as [`TcpStream::split`](super::TcpStream::split).
    ///
    /// # Errors
    /// None today; kept for compatibility.
    pub fn split(self) -> io::Result<(UnixReadHalf, UnixWriteHalf)> {
        let s = Arc::new(self);
        Ok((UnixReadHalf { s: s.clone() }, UnixWriteHalf { s }))
    }

    /// The `std` socket inside (non-blocking).
    pub(crate) fn std_ref(&self) -> &std::os::unix::net::UnixStream {
        self.fd.io().inner()
    }

    /// The may stream, for the server's connections.
    pub(crate) fn into_may(self) -> may_unix::UnixStream {
        self.fd.into_io()
    }
}

netfd_methods! {
    UnixStream: "stream", "read" / "write", SocketAddr;
    /// Closes the connection, as [`TcpStream::close`](super::TcpStream::close): blocked and
    /// later operations fail with the closed error; the descriptor is released when the last
    /// owner drops the stream.
    ///
    /// # Errors
    /// The closed error if the stream was closed already.
    fn close;
    /// Sets an absolute read deadline (Go's `SetReadDeadline`; `None` clears it), from any
    /// goroutine or thread, as
    /// [`TcpStream::set_read_deadline`](super::TcpStream::set_read_deadline).
    fn set_read_deadline;
}

read_write!(read UnixStream => fd);
read_write!(write UnixStream => fd);

/// The read half of a [`UnixStream::split`]. Its methods take `&self`, as the stream's do.
pub struct UnixReadHalf {
    s: Arc<UnixStream>,
}

/// The write half of a [`UnixStream::split`]. Its methods take `&self`, as the stream's do.
pub struct UnixWriteHalf {
    s: Arc<UnixStream>,
}

impl fmt::Debug for UnixReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixReadHalf").finish_non_exhaustive()
    }
}

impl fmt::Debug for UnixWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixWriteHalf").finish_non_exhaustive()
    }
}

impl UnixReadHalf {
    /// Sets the per-read timeout (`None`: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.set_read_timeout(d)
    }

    /// Sets an absolute read deadline (`None` clears it); a read blocked in another goroutine
    /// sees it at once.
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.s.set_read_deadline(t);
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.peer_addr()
    }

    /// Shuts down part or all of the connection (it affects both halves): from another
    /// goroutine, `Shutdown::Read` ends a read blocked on this half with EOF.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    /// Closes the connection (both halves), as [`UnixStream::close`].
    ///
    /// # Errors
    /// The closed error if it was closed already.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl UnixWriteHalf {
    /// Sets the per-write timeout (`None`: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.s.set_write_timeout(d)
    }

    /// Sets an absolute write deadline (`None` clears it).
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.s.set_write_deadline(t);
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.s.peer_addr()
    }

    /// Shuts down part or all of the connection (it affects both halves);
    /// `Shutdown::Write` sends EOF to the peer.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.s.shutdown(how)
    }

    /// Closes the connection (both halves), as [`UnixStream::close`].
    ///
    /// # Errors
    /// The closed error if it was closed already.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

read_write!(read UnixReadHalf => s.fd);
read_write!(write UnixWriteHalf => s.fd);
