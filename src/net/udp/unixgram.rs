//! Unix datagram sockets (Go's `net.UnixConn` on `"unixgram"`) for goroutines.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::AsRawFd;

use crate::net::methods::netfd_methods;
use crate::net::netfd::{NetFd, Socket};
use crate::net::ready::Dir;

/// The may wrapper of a Unix datagram socket (registered with may's poller).
type MayUnixDatagram = may::io::CoIo<std::os::unix::net::UnixDatagram>;

impl Socket for MayUnixDatagram {
    const SHORT_READ_DRAINS: bool = false;
    #[inline]
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner().recv(buf)
    }
    #[inline]
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner().send(buf)
    }
    #[inline]
    fn write_vectored_now(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(self.inner()).send_vectored(bufs)
    }
    fn shutdown_now(&self, _how: Shutdown) -> io::Result<()> {
        // As for UDP: `close` wakes the blocked operations by its kick alone.
        Ok(())
    }
}

/// A Unix datagram socket usable from goroutines (Go's `net.UnixConn` on `"unixgram"`): the
/// same `&self` methods, deadlines, timeouts and [`close`](Self::close) as [`UdpSocket`](super::UdpSocket),
/// with paths for addresses. Datagrams longer than a receive's buffer are truncated as on
/// [`UdpSocket`](super::UdpSocket).
///
/// # Examples
/// ```
/// use goway::net::UnixDatagram;
/// let (a, b) = UnixDatagram::pair().unwrap();
/// let h = goway::go!(move || {
///     let mut buf = [0u8; 64];
///     let n = b.recv(&mut buf).unwrap();
///     buf[..n].to_vec()
/// });
/// a.send(b"over a socketpair").unwrap();
/// assert_eq!(h.join().unwrap(), b"over a socketpair");
/// ```
pub struct UnixDatagram {
    fd: NetFd<MayUnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UnixDatagram {
    fn from_std(s: std::os::unix::net::UnixDatagram) -> io::Result<Self> {
        Ok(UnixDatagram {
            fd: NetFd::new(may::io::CoIo::new(s)?),
        })
    }

    /// Binds a socket to the file-system path `path` (Go's `net.ListenUnixgram`).
    ///
    /// # Errors
    /// As `bind(2)` (`AddrInUse` if the path exists).
    pub fn bind(path: impl AsRef<std::path::Path>) -> io::Result<UnixDatagram> {
        Self::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to no path (it can send, and receive once connected).
    ///
    /// # Errors
    /// As `socket(2)`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        Self::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// Two sockets connected to each other (`socketpair(2)`).
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Sets the socket's default peer, the socket bound at `path` (Go's `net.DialUnix`).
    ///
    /// # Errors
    /// As `connect(2)`.
    pub fn connect(&self, path: impl AsRef<std::path::Path>) -> io::Result<()> {
        if self.fd.is_closed() {
            return Err(crate::net::closed());
        }
        self.fd.io().inner().connect(path)
    }

    /// Receives one datagram and its sender's address, as [`UdpSocket::recv_from`](super::UdpSocket::recv_from).
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`](super::UdpSocket::recv_from).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, std::os::unix::net::SocketAddr)> {
        let r = self
            .fd
            .op(Dir::Read, |s| s.inner().recv_from(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// Receives one datagram from the connected peer, as [`UdpSocket::recv`](super::UdpSocket::recv).
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`](super::UdpSocket::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.fd.op(Dir::Read, |s| s.read_now(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// Sends `buf` as one datagram to the socket bound at `path`, as [`UdpSocket::send_to`](super::UdpSocket::send_to).
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`](super::UdpSocket::send_to).
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<std::path::Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.fd
            .op(Dir::Write, |s| s.inner().send_to(buf, path), |_| false)
    }

    /// Sends `buf` as one datagram to the connected peer.
    ///
    /// # Errors
    /// As [`UdpSocket::send`](super::UdpSocket::send).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    fn unless_closed<T>(&self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Ok(_) if self.fd.is_closed() => Err(crate::net::closed()),
            r => r,
        }
    }
}

netfd_methods! {
    UnixDatagram: "socket", "receive" / "send", std::os::unix::net::SocketAddr;
    /// Closes the socket, as [`UdpSocket::close`](super::UdpSocket::close): blocked and later operations fail with
    /// the closed error.
    ///
    /// # Errors
    /// The closed error if the socket was closed already.
    fn close;
    /// Sets the receive deadline, as [`UdpSocket::set_read_deadline`](super::UdpSocket::set_read_deadline) (wakes a blocked
    /// receive).
    fn set_read_deadline;
}
