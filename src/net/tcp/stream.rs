//! TCP connections (Go's `net.TCPConn`) and connecting one.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::Instant;

use super::{TcpReadHalf, TcpWriteHalf};
use crate::net::ToAddrs;
use crate::net::deadline::timed_out;
use crate::net::methods::{netfd_methods, read_write};
use crate::net::netfd::NetFd;

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
/// operation, with the closed error ([`is_closed_error`](crate::net::is_closed_error), Go's
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
    pub(super) fd: NetFd<may::net::TcpStream>,
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
    /// [`dial`](crate::net::dial).
    ///
    /// # Errors
    /// The first address's connection error if none connects, or a lookup error.
    pub fn connect(addr: impl ToAddrs) -> io::Result<TcpStream> {
        crate::net::dial(addr)
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

    /// A second, independent handle to the same connection (a duplicated file descriptor,
    /// with its own timeouts, deadlines and closed state). To use one connection from several
    /// goroutines, share the stream (`Arc<TcpStream>`) instead: no descriptor is added.
    ///
    /// [`close`](Self::close) on one copy closes that copy only, as in Go closing a `Conn`
    /// does not affect the descriptor its `File()` returned: the connection is shut down when
    /// the last open copy is closed (a copy dropped without `close` no longer counts). What
    /// acts on the connection itself, [`shutdown`](Self::shutdown) and the socket options,
    /// acts for every copy.
    ///
    /// # Errors
    /// As `dup(2)` (`EMFILE` at the descriptor limit); the closed error after
    /// [`close`](Self::close).
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = goway::net::dial(ln.local_addr().unwrap()).unwrap();
    /// let (mut s, _) = ln.accept().unwrap();
    /// let copy = c.try_clone().unwrap();
    /// copy.close().unwrap();
    /// // The original is still open, and so is the connection.
    /// (&c).write_all(b"x").unwrap();
    /// let mut buf = [0u8; 1];
    /// s.read_exact(&mut buf).unwrap();
    /// // Closing the last open copy shuts the connection down: the peer reads EOF.
    /// c.close().unwrap();
    /// assert_eq!(s.read(&mut buf).unwrap(), 0);
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            fd: self.fd.try_clone(|io| io.try_clone())?,
        })
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

netfd_methods! {
    TcpStream: "stream", "read" / "write", SocketAddr;
    /// Closes the connection (Go's `Conn.Close`): shuts it down both ways (the peer reads EOF)
    /// and makes every read and write fail with the closed error
    /// ([`is_closed_error`](crate::net::is_closed_error): "use of closed network connection"),
    /// those blocked in other goroutines or threads at once. The file descriptor itself is
    /// released when the last owner drops the stream, so that no other goroutine can touch a
    /// reused descriptor number. A copy made by [`try_clone`](Self::try_clone) is closed on
    /// its own: while another copy is open, `close` closes this one only and the connection
    /// stays up.
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
    fn close;
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
    fn set_read_deadline;
}

read_write!(read TcpStream => fd);
read_write!(write TcpStream => fd);

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
