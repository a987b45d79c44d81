//! The server's view of a connection's socket: TCP or Unix, whole or split.

use std::io::{self, Write};
use std::net::Shutdown;
use std::time::Duration;

use crate::net::{TcpReadHalf, TcpStream, TcpWriteHalf, UnixReadHalf, UnixStream, UnixWriteHalf};

/// An accepted connection.
pub(crate) enum AnyStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The reader goroutine's half.
pub(crate) enum ReadHalf {
    Tcp(TcpReadHalf),
    Unix(UnixReadHalf),
}

/// The writer goroutine's half.
pub(crate) enum WriteHalf {
    Tcp(TcpWriteHalf),
    Unix(UnixWriteHalf),
}

/// A third descriptor of the socket, not registered with may's poller, so that any goroutine
/// or thread can shut the socket down (and so wake the reader and writer) while they own
/// their halves.
#[derive(Debug)]
pub(crate) enum Control {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl AnyStream {
    pub(crate) fn control(&self) -> io::Result<Control> {
        Ok(match self {
            AnyStream::Tcp(s) => Control::Tcp(s.control()?),
            AnyStream::Unix(s) => Control::Unix(s.control()?),
        })
    }

    pub(crate) fn split(self) -> io::Result<(ReadHalf, WriteHalf)> {
        Ok(match self {
            AnyStream::Tcp(s) => {
                let (r, w) = s.split()?;
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            AnyStream::Unix(s) => {
                let (r, w) = s.split()?;
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
        })
    }

    /// Writes what fits now without waiting (a refusal message on a fresh socket always
    /// fits), then sends FIN. Errors are ignored: the client is being turned away anyway.
    pub(crate) fn refuse(&self, msg: Option<&[u8]>) {
        match self {
            AnyStream::Tcp(s) => {
                let mut sys = s.as_may().inner();
                if let Some(m) = msg {
                    let _ = sys.write(m);
                }
                let _ = sys.shutdown(Shutdown::Write);
            }
            AnyStream::Unix(s) => {
                let mut sys = s.std_ref();
                if let Some(m) = msg {
                    let _ = sys.write(m);
                }
                let _ = sys.shutdown(Shutdown::Write);
            }
        }
    }
}

impl ReadHalf {
    #[inline]
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadHalf::Tcp(r) => r.read_raw(buf),
            ReadHalf::Unix(r) => r.read_raw(buf),
        }
    }

    pub(crate) fn apply_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            ReadHalf::Tcp(r) => r.apply_timeout(t),
            ReadHalf::Unix(r) => r.apply_timeout(t),
        }
    }
}

impl WriteHalf {
    pub(crate) fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(w) => w.set_write_timeout(t),
            WriteHalf::Unix(w) => w.set_write_timeout(t),
        }
    }

    #[inline]
    pub(crate) fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            WriteHalf::Tcp(w) => w.write_all(buf),
            WriteHalf::Unix(w) => w.write_all(buf),
        }
    }
}

impl Control {
    pub(crate) fn shutdown(&self, how: Shutdown) {
        // NotConnected once the peer is gone: nothing left to shut.
        let _ = match self {
            Control::Tcp(s) => s.shutdown(how),
            Control::Unix(s) => s.shutdown(how),
        };
    }
}
