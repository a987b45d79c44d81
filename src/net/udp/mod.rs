//! UDP sockets (Go's `net.UDPConn`) and Unix datagram sockets (`"unixgram"`) for goroutines,
//! over may's registered sockets.
//!
//! A [`UdpSocket`] keeps its descriptor in the same [`NetFd`] as a [`TcpStream`](super::TcpStream):
//! every method takes `&self`, any number of goroutines and threads may send and receive on
//! one socket at once, and deadlines, timeouts and [`close`](UdpSocket::close) set from
//! anywhere wake the operations blocked on it.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;

use super::ToAddrs;
use super::methods::netfd_methods;
use super::netfd::{NetFd, Socket};
use super::ready::Dir;

mod unixgram;

pub use unixgram::UnixDatagram;

impl Socket for may::net::UdpSocket {
    // A datagram socket's short read is one whole (small) datagram: it proves nothing.
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
        // `close` wakes the blocked operations by its kick alone. Shutting a datagram socket
        // down would stop every duplicate of the descriptor (`try_clone`) too, and UDP has no
        // peer to tell.
        Ok(())
    }
}

/// A UDP socket usable from goroutines: a receive that finds no datagram parks the goroutine,
/// never the worker thread (Go's `net.UDPConn`, from `net.ListenUDP` or `net.DialUDP`).
///
/// As on [`TcpStream`](super::TcpStream), every method takes `&self` and may be called from
/// any goroutine or thread while others send or receive: share the socket as
/// `Arc<UdpSocket>`. Each receive takes one whole datagram, so several goroutines receiving on
/// one socket split its datagrams between them, none lost and none torn, and several senders
/// never interleave within a datagram.
///
/// Timeouts and deadlines are those of [`TcpStream`](super::TcpStream): a per-operation
/// [`set_read_timeout`](Self::set_read_timeout) (as `std`) and an absolute
/// [`set_read_deadline`](Self::set_read_deadline) (Go's `SetReadDeadline`); an operation past
/// either fails with `ErrorKind::TimedOut` ("i/o timeout"), and setting either wakes the
/// blocked operations to measure against the new value. [`close`](Self::close) ends every
/// blocked and later operation with the closed error ([`is_closed_error`](super::is_closed_error)).
///
/// A datagram longer than the buffer given to a receive is **truncated**: the receive fills
/// the buffer, returns its length, and the rest of that datagram is discarded (the next
/// receive returns the next datagram), as with `std` and Go's `ReadFrom`. Use a buffer of
/// 65,536 bytes to receive any UDP datagram whole (the IPv4 payload limit is 65,507 bytes);
/// a send longer than that fails with `EMSGSIZE`.
///
/// # Examples
/// An echo round trip between two sockets:
/// ```
/// use goway::net::UdpSocket;
///
/// let server = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let addr = server.local_addr().unwrap();
/// let echo = goway::go!(move || {
///     let mut buf = [0u8; 1500];
///     let (n, peer) = server.recv_from(&mut buf).unwrap();
///     server.send_to(&buf[..n], peer).unwrap();
/// });
///
/// let client = UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.connect(addr).unwrap();
/// client.send(b"ping").unwrap();
/// let mut buf = [0u8; 1500];
/// let n = client.recv(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// echo.join().unwrap();
/// ```
pub struct UdpSocket {
    fd: NetFd<may::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}

impl UdpSocket {
    fn from_may(io: may::net::UdpSocket) -> Self {
        UdpSocket { fd: NetFd::new(io) }
    }

    /// Binds a socket to the first address of `addr` that works (Go's `net.ListenUDP`); port
    /// 0 picks a free port ([`local_addr`](Self::local_addr) tells which).
    ///
    /// # Errors
    /// The address does not resolve, or no address could be bound (the last error, e.g.
    /// `AddrInUse`).
    ///
    /// # Examples
    /// ```
    /// let s = goway::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(addr: impl ToAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in addr.to_addrs()? {
            // A `SocketAddr` resolves to itself: no lookup on the worker.
            match may::net::UdpSocket::bind(a) {
                Ok(s) => return Ok(UdpSocket::from_may(s)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    /// Sets the socket's default peer (Go's `net.DialUDP`): [`send`](Self::send) goes there,
    /// and [`recv`](Self::recv) takes datagrams from that address only. The first resolved
    /// address that works is used; nothing is sent. After a connect, an ICMP "port
    /// unreachable" from the peer makes a later receive fail with `ConnectionRefused`.
    ///
    /// # Errors
    /// The address does not resolve, or `connect(2)` failed for every address.
    ///
    /// # Examples
    /// ```
    /// use goway::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0u8; 8];
    /// let (n, from) = b.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr().unwrap()));
    /// ```
    pub fn connect(&self, addr: impl ToAddrs) -> io::Result<()> {
        if self.fd.is_closed() {
            return Err(super::closed());
        }
        let mut last = None;
        for a in addr.to_addrs()? {
            match self.fd.io().inner().connect(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    /// Receives one datagram and the address it came from (Go's `ReadFrom`), waiting as long
    /// as the read limits allow. A datagram longer than `buf` is truncated to it (see the
    /// type's documentation).
    ///
    /// # Errors
    /// `TimedOut` past the read timeout or deadline; the closed error after
    /// [`close`](Self::close); otherwise as `recvfrom(2)` (`ConnectionRefused` on a connected
    /// socket whose peer's port is closed).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let r = self
            .fd
            .op(Dir::Read, |s| s.inner().recv_from(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// Receives one datagram from the connected peer (Go's `Read` on a dialed `UDPConn`),
    /// truncated to `buf` as [`recv_from`](Self::recv_from) is.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.fd.op(Dir::Read, |s| s.read_now(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// Returns the next datagram and its sender without taking it off the queue (the next
    /// receive returns it again), waiting for one as [`recv_from`](Self::recv_from) does.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let r = self
            .fd
            .op(Dir::Read, |s| s.inner().peek_from(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// As [`peek_from`](Self::peek_from), from the connected peer.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self
            .fd
            .op(Dir::Read, |s| s.inner().peek(&mut *buf), |_| false);
        self.unless_closed(r)
    }

    /// Sends `buf` as one datagram to `addr` (Go's `WriteTo`), waiting for room in the send
    /// buffer as long as the write limits allow. `addr` is a socket address (no lookup on the
    /// hot path); resolve a name once with [`ToAddrs`] or [`lookup_host`](super::lookup_host).
    ///
    /// # Errors
    /// `TimedOut` past the write timeout or deadline; the closed error after
    /// [`close`](Self::close); otherwise as `sendto(2)` (`EMSGSIZE` for a datagram over the
    /// protocol's limit).
    ///
    /// # Examples
    /// ```
    /// use goway::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"hello", b.local_addr().unwrap()).unwrap(), 5);
    /// let mut buf = [0u8; 3];
    /// // Truncated: the datagram's first 3 bytes, the rest discarded.
    /// assert_eq!(b.recv(&mut buf).unwrap(), 3);
    /// assert_eq!(&buf, b"hel");
    /// ```
    pub fn send_to(&self, buf: &[u8], addr: impl Into<SocketAddr>) -> io::Result<usize> {
        let addr = addr.into();
        self.fd
            .op(Dir::Write, |s| s.inner().send_to(buf, addr), |_| false)
    }

    /// Sends `buf` as one datagram to the connected peer (Go's `Write` on a dialed
    /// `UDPConn`).
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `EDESTADDRREQ` ("destination address required")
    /// without a [`connect`](Self::connect).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.write(buf)
    }

    /// Gathers `bufs` into one datagram to the connected peer.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.fd.write_vectored(bufs)
    }

    /// A second, independent handle to the same socket (a duplicated descriptor, with its
    /// own timeouts, deadlines and closed state). To use one socket from several goroutines,
    /// share it (`Arc<UdpSocket>`) instead.
    ///
    /// # Errors
    /// As `dup(2)`; the closed error after [`close`](Self::close).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            fd: self.fd.try_clone(|io| io.try_clone())?,
        })
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.fd.io().broadcast()
    }

    /// Sets `SO_BROADCAST`: allows sending to a broadcast address.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd.io().set_broadcast(on)
    }

    /// Whether multicast datagrams sent are looped back to this host (IPv4).
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.fd.io().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.fd.io().set_multicast_loop_v4(on)
    }

    /// The time-to-live of multicast datagrams sent (IPv4).
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.fd.io().multicast_ttl_v4()
    }

    /// Sets `IP_MULTICAST_TTL` (1 by default: the local network only).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.fd.io().set_multicast_ttl_v4(ttl)
    }

    /// Whether multicast datagrams sent are looped back to this host (IPv6).
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.fd.io().multicast_loop_v6()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.fd.io().set_multicast_loop_v6(on)
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice); Go's `net.ListenMulticastUDP`.
    ///
    /// # Errors
    /// As `setsockopt(2)` (`IP_ADD_MEMBERSHIP`).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.fd.io().join_multicast_v4(&multiaddr, &interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on interface index `interface` (0: the
    /// system's choice).
    ///
    /// # Errors
    /// As `setsockopt(2)` (`IPV6_ADD_MEMBERSHIP`).
    pub fn join_multicast_v6(&self, multiaddr: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.fd.io().join_multicast_v6(&multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// # Errors
    /// As `setsockopt(2)` (`IP_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.fd.io().leave_multicast_v4(&multiaddr, &interface)
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    ///
    /// # Errors
    /// As `setsockopt(2)` (`IPV6_DROP_MEMBERSHIP`).
    pub fn leave_multicast_v6(&self, multiaddr: Ipv6Addr, interface: u32) -> io::Result<()> {
        self.fd.io().leave_multicast_v6(&multiaddr, interface)
    }

    /// The `IP_TTL` of datagrams sent.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.io().ttl()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.io().set_ttl(ttl)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.io().take_error()
    }

    /// The underlying `may` socket. Sending or receiving on it directly bypasses the
    /// socket's deadlines and readiness records: use it for socket options only.
    pub fn as_may(&self) -> &may::net::UdpSocket {
        self.fd.io()
    }

    /// `r`, unless the socket was closed meanwhile (a receive that the shutdown of
    /// [`close`](Self::close) ended with an empty result): then the closed error.
    #[inline]
    fn unless_closed<T>(&self, r: io::Result<T>) -> io::Result<T> {
        match r {
            Ok(_) if self.fd.is_closed() => Err(super::closed()),
            r => r,
        }
    }
}

netfd_methods! {
    UdpSocket: "socket", "receive" / "send", SocketAddr;
    /// Closes the socket (Go's `Conn.Close`): every receive and send blocked in another
    /// goroutine or thread returns at once, and every later one fails, with the closed error
    /// ([`is_closed_error`](super::is_closed_error)). The descriptor is released when the
    /// last owner drops the socket; until then datagrams sent to it are still queued (up to
    /// the receive buffer) and dropped with it. A [`try_clone`](Self::try_clone) of the
    /// socket is not closed with it.
    ///
    /// # Errors
    /// The closed error if the socket was closed already.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// let s = Arc::new(goway::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    /// let r = {
    ///     let s = s.clone();
    ///     goway::go!(move || s.recv_from(&mut [0u8; 64]).unwrap_err())
    /// };
    /// s.close().unwrap();
    /// assert!(goway::net::is_closed_error(&r.join().unwrap()));
    /// ```
    fn close;
    /// Sets an absolute deadline for receives (Go's `SetReadDeadline`; `None` clears it). A
    /// receive blocked in another goroutine or thread sees the new deadline at once: one in
    /// the past ends it with `TimedOut`, a later one lets it wait on.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// let s = goway::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_deadline(Some(Instant::now() + Duration::from_millis(20)));
    /// let err = s.recv_from(&mut [0u8; 64]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    fn set_read_deadline;
}
