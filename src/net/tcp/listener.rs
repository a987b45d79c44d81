//! TCP listeners (Go's `net.TCPListener`) and how to open one (`net.ListenConfig`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

use super::TcpStream;
use crate::net::ToAddrs;

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
            let _io = crate::net::deadline::io_wait(false);
            crate::net::closed_or(&self.closed, self.io.accept())?
        };
        // A failure here only loses the latency optimisation; the connection is fine.
        let _ = s.set_nodelay(true);
        Ok((TcpStream::from_may(s), a))
    }

    /// Stops listening (Go's `Listener.Close`): an `accept` waiting in any goroutine or
    /// thread returns at once, and every later one fails, with the error of
    /// [`is_closed_error`](crate::net::is_closed_error) ("use of closed network connection").
    /// Connections already accepted are not affected; the descriptor is released on drop.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn close(&self) -> io::Result<()> {
        crate::net::close_listener(&self.closed, self.io.inner())
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
