//! Unix-domain stream sockets for goroutines, over `may::os::unix::net`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use may::io::{SplitIo, SplitReader, SplitWriter};
use may::os::unix::net as may_unix;

use super::deadline::{Limits, check_timeout, timed};

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

/// A Unix-domain stream connection for goroutines, with the same timeouts, deadlines and
/// [`split`](Self::split) as [`TcpStream`](super::TcpStream).
pub struct UnixStream {
    io: may_unix::UnixStream,
    rd: Limits,
    wr: Limits,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.io.as_raw_fd())
            .finish()
    }
}

fn set_rd(s: &may_unix::UnixStream, t: Option<Duration>) -> io::Result<()> {
    s.set_read_timeout(t)
}

fn set_wr(s: &may_unix::UnixStream, t: Option<Duration>) -> io::Result<()> {
    s.set_write_timeout(t)
}

impl UnixStream {
    pub(crate) fn from_may(io: may_unix::UnixStream) -> Self {
        UnixStream {
            io,
            rd: Limits::default(),
            wr: Limits::default(),
        }
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

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
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

    /// Shuts down the read side, the write side, or both.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Sets the timeout of each future read (`None`, the default: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.rd.timeout = d;
        Ok(())
    }

    /// Sets the timeout of each future write (`None`, the default: no limit).
    ///
    /// # Errors
    /// `InvalidInput` for a zero duration.
    pub fn set_write_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        check_timeout(d)?;
        self.wr.timeout = d;
        Ok(())
    }

    /// Sets an absolute read deadline (Go's `SetReadDeadline`; `None` clears it).
    pub fn set_read_deadline(&mut self, t: Option<Instant>) {
        self.rd.deadline = t;
    }

    /// Sets an absolute write deadline (`None` clears it).
    pub fn set_write_deadline(&mut self, t: Option<Instant>) {
        self.wr.deadline = t;
    }

    /// Splits into halves for a reader goroutine and a writer goroutine (two descriptors).
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn split(self) -> io::Result<(UnixReadHalf, UnixWriteHalf)> {
        let (rd, wr) = (self.rd, self.wr);
        let (r, w) = self.io.split()?;
        Ok((UnixReadHalf { io: r, rd }, UnixWriteHalf { io: w, wr }))
    }

    /// The `std` socket inside (non-blocking).
    pub(crate) fn std_ref(&self) -> &std::os::unix::net::UnixStream {
        self.io.inner()
    }

    /// The may stream, for the server's connections.
    pub(crate) fn into_may(self) -> may_unix::UnixStream {
        self.io
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.rd, set_rd, |s, nb| {
            if nb { s.inner().read(buf) } else { s.read(buf) }
        })
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.wr, set_wr, |s, nb| {
            if nb {
                s.inner().write(buf)
            } else {
                s.write(buf)
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The read half of a [`UnixStream::split`].
pub struct UnixReadHalf {
    io: SplitReader<may_unix::UnixStream>,
    rd: Limits,
}

/// The write half of a [`UnixStream::split`].
pub struct UnixWriteHalf {
    io: SplitWriter<may_unix::UnixStream>,
    wr: Limits,
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

fn set_rd_half(s: &SplitReader<may_unix::UnixStream>, t: Option<Duration>) -> io::Result<()> {
    s.inner().set_read_timeout(t)
}

fn set_wr_half(s: &SplitWriter<may_unix::UnixStream>, t: Option<Duration>) -> io::Result<()> {
    s.inner().set_write_timeout(t)
}

impl UnixReadHalf {
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

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner().peer_addr()
    }

    /// Shuts down part or all of the connection (it affects both halves): from another
    /// goroutine, `Shutdown::Read` ends a read blocked on this half.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.inner().shutdown(how)
    }
}

impl UnixWriteHalf {
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

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.inner().peer_addr()
    }

    /// Shuts down part or all of the connection (it affects both halves);
    /// `Shutdown::Write` sends EOF to the peer.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.inner().shutdown(how)
    }
}

impl Read for UnixReadHalf {
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

impl Write for UnixWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        timed(&mut self.io, &mut self.wr, set_wr_half, |s, nb| {
            if nb {
                s.inner().inner().write(buf)
            } else {
                s.write(buf)
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
