//! A connection's socket with its read buffer and its output buffer, shared by the request
//! body (reads) and the response writer (writes) of the one goroutine serving it.

use std::io::{self, Read, Write};

use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::date::DateCache;
use crate::net::TcpStream;
use crate::tls::TlsStream;

/// First size of the read buffer; it grows for larger heads, up to the head limit.
const READ_BUF_START: usize = 8 << 10;

/// Invariants: `pos <= end <= buf.len() <= max_buf`; the unconsumed input is
/// `buf[pos..end]`; `out` holds response bytes not yet written, in order. Once `broken` is
/// set (a write failed), nothing more is written and the connection ends after the current
/// request.
///
/// The server's stream is a [`TcpStream`]; `goway::fuzzing` drives the same buffer, head
/// scanner and body decoder over an in-memory stream that hands its bytes out in pieces.
#[derive(Debug)]
pub(crate) struct ConnIo<S = HttpStream> {
    pub(crate) stream: S,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Largest the read buffer may grow to.
    max_buf: usize,
    pub(crate) out: Vec<u8>,
    pub(crate) broken: bool,
    pub(crate) date: DateCache,
}

impl<S: Read + Write> ConnIo<S> {
    pub(crate) fn new(stream: S, max_buf: usize) -> Self {
        ConnIo {
            stream,
            buf: vec![0; READ_BUF_START.min(max_buf.max(1024))],
            pos: 0,
            end: 0,
            max_buf: max_buf.max(1024),
            out: Vec::with_capacity(READ_BUF_START),
            broken: false,
            date: DateCache::new(),
        }
    }

    /// The bytes received and not consumed yet.
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// The most bytes the buffer holds at once: a line that must be complete in it before it
    /// is parsed cannot be longer.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.max_buf
    }

    /// Marks `n` buffered bytes as consumed.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Reads more input after the buffered bytes (one `read` call). `Ok(0)` is EOF.
    ///
    /// # Errors
    /// The socket's error (`TimedOut` at a deadline), or `OutOfMemory` when the buffer is at
    /// its limit and full (the caller's size checks come first, so this means a bug).
    pub(crate) fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            } else if self.buf.len() < self.max_buf {
                let n = (self.buf.len() * 2).min(self.max_buf);
                self.buf.resize(n, 0);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "http: read buffer full",
                ));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Reads from the socket straight into `dst` (only when nothing is buffered).
    pub(crate) fn read_direct(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        debug_assert_eq!(self.pos, self.end);
        self.stream.read(dst)
    }

    /// Writes out everything in `out`.
    ///
    /// # Errors
    /// The socket's error; the connection is then `broken` and `out` is dropped.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.broken {
            self.out.clear();
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "http: connection broken",
            ));
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.out);
        self.out.clear();
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Shrinks the buffers back after a large request or response, so an idle connection
    /// holds little memory.
    pub(crate) fn trim(&mut self) {
        if self.pos == self.end && self.buf.len() > READ_BUF_START {
            self.buf = vec![0; READ_BUF_START];
            self.pos = 0;
            self.end = 0;
        }
        if self.out.capacity() > 4 * READ_BUF_START && self.out.is_empty() {
            self.out = Vec::with_capacity(READ_BUF_START);
        }
    }
}

/// A server connection's stream: plain TCP, or TLS over it ([`Builder::tls`]).
///
/// [`Builder::tls`]: crate::http::Builder::tls
#[derive(Debug)]
pub(crate) enum HttpStream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl HttpStream {
    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            HttpStream::Plain(s) => s.set_read_timeout(d),
            HttpStream::Tls(s) => s.set_read_timeout(d),
        }
    }

    pub(crate) fn set_read_deadline(&self, t: Option<Instant>) {
        match self {
            HttpStream::Plain(s) => s.set_read_deadline(t),
            HttpStream::Tls(s) => s.set_read_deadline(t),
        }
    }

    pub(crate) fn set_write_deadline(&self, t: Option<Instant>) {
        match self {
            HttpStream::Plain(s) => s.set_write_deadline(t),
            HttpStream::Tls(s) => s.set_write_deadline(t),
        }
    }

    /// `Shutdown::Write` on TLS sends close_notify first.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match (self, how) {
            (HttpStream::Plain(s), _) => s.shutdown(how),
            (HttpStream::Tls(s), Shutdown::Write) => s.shutdown(),
            (HttpStream::Tls(s), _) => s.get_ref().shutdown(how),
        }
    }
}

impl Read for HttpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            HttpStream::Plain(s) => s.read(buf),
            HttpStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for HttpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            HttpStream::Plain(s) => s.write(buf),
            HttpStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
