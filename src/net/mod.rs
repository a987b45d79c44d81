//! Networking for goroutines: blocking-style TCP and Unix-socket listeners and streams and UDP
//! sockets with timeouts and deadlines, [`dial`]/[`dial_timeout`], framing [`codec`]s, and a
//! connection-per-three-goroutines [`server`] (Go's net package and the classic Go server
//! shape).
//!
//! Everything here is built on `may::net`: a read, write, accept or connect that cannot
//! complete parks the calling goroutine and lets its worker thread run others, like Go's
//! netpoller. Called from a plain thread, the same calls block that thread. Host names are
//! resolved on the runtime's blocking pool
//! ([`block_on_thread`](crate::runtime::block_on_thread)), so DNS does not block a worker
//! either; literal addresses are parsed in place.
//!
//! | Go | goway |
//! |---|---|
//! | `net.Listen("tcp", addr)` | [`TcpListener::bind(addr)`](TcpListener::bind) |
//! | `ln.Accept()` | [`ln.accept()`](TcpListener::accept) |
//! | `net.Dial("tcp", addr)` / `net.DialTimeout` | [`dial(addr)`](dial) / [`dial_timeout(addr, d)`](dial_timeout) |
//! | `net.LookupHost(host)` | [`lookup_host(host)`](lookup_host) (`IpAddr`s, not strings); [`lookup_host_timeout`] for a context's deadline |
//! | `net.Dialer{Timeout: d, Resolver: r}.Dial("tcp", addr)` | [`Dialer::new().timeout(d).resolver(r).dial(addr)`](Dialer) |
//! | `*net.DNSError`, `IsNotFound`, `IsTimeout` | [`DnsError`], [`DnsError::find(&err)`](DnsError::find) |
//! | `c.SetReadDeadline(t)` (from any goroutine) | [`c.set_read_deadline(Some(t))`](TcpStream::set_read_deadline) |
//! | `c.Close()` (from any goroutine), `errors.Is(err, net.ErrClosed)` | [`c.close()`](TcpStream::close), [`is_closed_error(&err)`](is_closed_error) |
//! | `net.ListenUDP("udp", addr)`, `c.ReadFrom(b)`, `c.WriteTo(b, a)` | [`UdpSocket::bind(addr)`](UdpSocket::bind), [`recv_from`](UdpSocket::recv_from), [`send_to`](UdpSocket::send_to) |
//! | `net.ListenUnixgram("unixgram", addr)` | [`UnixDatagram::bind(path)`](UnixDatagram::bind) |
//! | `net.Listen("unix", path)` | [`UnixListener::bind(path)`](UnixListener::bind) |
//! | an accept loop with a connection cap and `Serve`'s backoff (`netutil.LimitListener`, but refusing over the cap) | [`Acceptor`] |
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use goway::net::{TcpListener, dial};
//!
//! let ln = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = ln.local_addr().unwrap();
//! goway::go!(move || {
//!     for c in ln.incoming().take(1) {
//!         let mut c = c.unwrap();
//!         goway::go!(move || {
//!             let _ = c.write_all(b"hello from a goroutine\n");
//!         });
//!     }
//! });
//! let mut line = String::new();
//! BufReader::new(dial(addr).unwrap()).read_line(&mut line).unwrap();
//! assert_eq!(line, "hello from a goroutine\n");
//! ```

mod acceptor;
mod addr;
pub mod codec;
mod deadline;
mod dial;
mod dns;
mod methods;
mod netfd;
mod ready;
pub mod server;
mod tcp;
mod udp;
mod unix;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

pub use acceptor::{Acceptor, ConnSlot};
pub use addr::ToAddrs;
pub use dial::Dialer;
pub use dns::{DnsError, DnsErrorKind, Resolver, lookup_host, lookup_host_timeout};
pub use server::{Conn, ConnSender, Server, ServerHandle, ShutdownReport};
pub use tcp::{Incoming, ListenConfig, TcpListener, TcpReadHalf, TcpStream, TcpWriteHalf};
pub use udp::{UdpSocket, UnixDatagram};
pub use unix::{UnixListener, UnixReadHalf, UnixStream, UnixWriteHalf};

/// Connects to `addr` over TCP (Go's `net.Dial("tcp", addr)`), trying each resolved address
/// in turn (see [`Dialer`]). The stream has `TCP_NODELAY` set. No timeout: the kernel's
/// connect timeout applies (minutes); see [`dial_timeout`].
///
/// # Errors
/// The first address's connection error (`ConnectionRefused`, …) if none connects, or a
/// lookup error ([`DnsError`]).
///
/// # Examples
/// ```
/// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let c = goway::net::dial(ln.local_addr().unwrap()).unwrap();
/// assert!(c.nodelay().unwrap());
/// ```
pub fn dial(addr: impl ToAddrs) -> io::Result<TcpStream> {
    Dialer::new().dial(addr)
}

/// Connects to `addr` over TCP, giving up after `timeout` in total, name lookup included (Go's
/// `net.DialTimeout`). Several resolved addresses share the time as [`Dialer`] says.
///
/// # Errors
/// `TimedOut` when the time is up (a lookup that ran out of time gives a [`DnsError`] of kind
/// `Timeout`, whose `io::ErrorKind` is `TimedOut` too); otherwise as [`dial`].
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let c = goway::net::dial_timeout(ln.local_addr().unwrap(), Duration::from_secs(1));
/// assert!(c.is_ok());
/// ```
pub fn dial_timeout(addr: impl ToAddrs, timeout: Duration) -> io::Result<TcpStream> {
    Dialer::new().timeout(timeout).dial(addr)
}

/// The address of a connection's peer: a TCP address, or a Unix socket's path (`None` for an
/// unnamed client socket, the usual case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(std::net::SocketAddr),
    /// A Unix-socket peer and its path, if it bound one.
    Unix(Option<PathBuf>),
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => a.fmt(f),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            PeerAddr::Unix(None) => f.write_str("unix:@"),
        }
    }
}

impl From<std::net::SocketAddr> for PeerAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        PeerAddr::Tcp(a)
    }
}

impl From<std::os::unix::net::SocketAddr> for PeerAddr {
    fn from(a: std::os::unix::net::SocketAddr) -> Self {
        PeerAddr::Unix(a.as_pathname().map(PathBuf::from))
    }
}

/// The text of the error of an operation on a closed stream or listener (Go's `net.ErrClosed`).
const CLOSED: &str = "use of closed network connection";

/// The error of an operation on a closed stream or listener.
pub(crate) fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, CLOSED)
}

/// `true` if `e` is the error of an operation on a stream or listener that was closed (Go's
/// `errors.Is(err, net.ErrClosed)`): a [`TcpStream::close`] or [`UnixStream::close`] (also
/// through a split half) makes every read and write, blocked or later, fail with it, and a
/// [`TcpListener::close`] or [`UnixListener::close`] every accept. Its kind is
/// `ErrorKind::NotConnected` and its text Go's, "use of closed network connection".
///
/// ```
/// use std::io::Read;
/// let ln = goway::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// ln.close().unwrap();
/// let err = ln.accept().unwrap_err();
/// assert!(goway::net::is_closed_error(&err));
///
/// let (a, _b) = goway::net::UnixStream::pair().unwrap();
/// a.close().unwrap();
/// let err = (&a).read(&mut [0u8; 1]).unwrap_err();
/// assert!(goway::net::is_closed_error(&err));
/// assert_eq!(err.to_string(), "use of closed network connection");
/// ```
pub fn is_closed_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotConnected && e.to_string() == CLOSED
}

/// An accept's result, unless the listener was closed (then the closed error).
fn closed_or<T>(closed: &std::sync::atomic::AtomicBool, r: io::Result<T>) -> io::Result<T> {
    if closed.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(self::closed());
    }
    r
}

/// Marks a listener closed and shuts its socket down, which wakes an accept waiting on it.
fn close_listener(
    closed: &std::sync::atomic::AtomicBool,
    sock: impl std::os::fd::AsFd,
) -> io::Result<()> {
    closed.store(true, std::sync::atomic::Ordering::SeqCst);
    socket2::SockRef::from(&sock).shutdown(std::net::Shutdown::Read)
}
