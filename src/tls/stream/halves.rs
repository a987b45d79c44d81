//! The two halves of a [`TlsStream::split`](super::TlsStream::split).

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::session::Shared;

/// The read half of a [`TlsStream::split`].
pub struct TlsReadHalf {
    pub(super) s: Arc<Shared>,
}

/// The write half of a [`TlsStream::split`].
pub struct TlsWriteHalf {
    pub(super) s: Arc<Shared>,
}

impl fmt::Debug for TlsReadHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReadHalf")
            .field("tcp", &self.s.tcp)
            .finish()
    }
}

impl fmt::Debug for TlsWriteHalf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsWriteHalf")
            .field("tcp", &self.s.tcp)
            .finish()
    }
}

impl TlsReadHalf {
    /// Sets the read deadline, as [`TlsStream::set_read_deadline`].
    pub fn set_read_deadline(&self, t: Option<Instant>) {
        self.s.user_rd.store(true, Ordering::SeqCst);
        self.s.tcp.set_read_deadline(t);
    }

    /// Runs the handshake if it has not run, as [`TlsStream::handshake`].
    ///
    /// # Errors
    /// As `TlsStream::handshake`.
    pub fn handshake(&self) -> io::Result<()> {
        self.s.handshake()
    }

    /// Closes the connection (both halves), as [`TlsStream::close`].
    ///
    /// # Errors
    /// As `TlsStream::close`.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl TlsWriteHalf {
    /// Sets the write deadline, as [`TlsStream::set_write_deadline`].
    pub fn set_write_deadline(&self, t: Option<Instant>) {
        self.s.user_wd.store(true, Ordering::SeqCst);
        self.s.tcp.set_write_deadline(t);
    }

    /// Runs the handshake if it has not run, as [`TlsStream::handshake`].
    ///
    /// # Errors
    /// As `TlsStream::handshake`.
    pub fn handshake(&self) -> io::Result<()> {
        self.s.handshake()
    }

    /// Sends close_notify and shuts the TCP write side, as [`TlsStream::shutdown`].
    ///
    /// # Errors
    /// As `TlsStream::shutdown`.
    pub fn shutdown(&self) -> io::Result<()> {
        self.s.close_write()
    }

    /// Closes the connection (both halves), as [`TlsStream::close`].
    ///
    /// # Errors
    /// As `TlsStream::close`.
    pub fn close(&self) -> io::Result<()> {
        self.s.close()
    }
}

impl Read for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.s.read(buf)
    }
}

impl Write for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
