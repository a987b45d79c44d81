//! The halves of a split [`TcpStream`], for a reader goroutine and a writer goroutine.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::TcpStream;
use crate::net::methods::read_write;

/// The read half of a [`TcpStream::split`]. Its methods take `&self`, as the stream's do.
pub struct TcpReadHalf {
    pub(super) s: Arc<TcpStream>,
    pub(super) peer: Option<SocketAddr>,
}

/// The write half of a [`TcpStream::split`]. Its methods take `&self`, as the stream's do.
pub struct TcpWriteHalf {
    pub(super) s: Arc<TcpStream>,
    pub(super) peer: Option<SocketAddr>,
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

read_write!(read TcpReadHalf => s.fd);
read_write!(write TcpWriteHalf => s.fd);
