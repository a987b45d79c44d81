//! Request bodies: `Content-Length` and chunked framing read from the connection, with the
//! server's size limit, `Expect: 100-continue`, and the draining of what a handler left
//! unread (Go's transfer.go `body` and server.go's `maxPostHandlerReadBytes`).

use std::io;

use super::io::ConnIo;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILER: usize = 16 << 10;
/// What the server reads and discards of a body the handler left unread before giving up
/// and closing the connection (Go's `maxPostHandlerReadBytes`, 256 KiB).
pub(crate) const MAX_DRAIN: u64 = 256 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk; bytes so far.
    Trailer(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    Done,
}

/// Why a body cannot be read further; the connection then closes after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the server's body limit (Go's `http: request body too large`).
    TooLarge,
    /// Bad chunked framing.
    Malformed,
    /// The client closed before the body ended.
    Eof,
    /// The read deadline passed.
    TimedOut,
    /// Another socket error.
    Io,
}

impl BodyError {
    fn to_io(self) -> io::Error {
        let (kind, msg) = match self {
            BodyError::TooLarge => (io::ErrorKind::InvalidData, "http: request body too large"),
            BodyError::Malformed => (
                io::ErrorKind::InvalidData,
                "http: malformed chunked encoding",
            ),
            BodyError::Eof => (io::ErrorKind::UnexpectedEof, "unexpected EOF"),
            BodyError::TimedOut => (io::ErrorKind::TimedOut, "i/o timeout"),
            BodyError::Io => (io::ErrorKind::ConnectionReset, "http: connection error"),
        };
        io::Error::new(kind, msg)
    }
}

/// The state of one request's body.
#[derive(Debug)]
pub(crate) struct BodyState {
    framing: Framing,
    /// Bytes of body delivered so far.
    pub(crate) read: u64,
    limit: u64,
    pub(crate) error: Option<BodyError>,
    /// `Expect: 100-continue` and no `100 Continue` sent yet.
    pub(crate) continue_pending: bool,
    /// The final response's head went out: a `100 Continue` can no longer be sent (it
    /// would follow the final response). A read then waits for a body the client may send
    /// anyway, as Go's does.
    pub(crate) final_sent: bool,
}

impl BodyState {
    pub(crate) fn empty() -> Self {
        BodyState {
            framing: Framing::Done,
            read: 0,
            limit: u64::MAX,
            error: None,
            continue_pending: false,
            final_sent: false,
        }
    }

    /// The body of a request with this framing.
    pub(crate) fn new(
        content_length: Option<u64>,
        chunked: bool,
        limit: u64,
        expect: bool,
    ) -> Self {
        let framing = if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            match content_length {
                Some(n) if n > 0 => Framing::Length(n),
                _ => Framing::Done,
            }
        };
        BodyState {
            framing,
            read: 0,
            limit,
            error: None,
            continue_pending: expect && framing != Framing::Done,
            final_sent: false,
        }
    }

    /// Whether the whole body was read (or there was none).
    pub(crate) fn is_done(&self) -> bool {
        self.framing == Framing::Done
    }

    /// Bytes of a `Content-Length` body not read yet (`None` for chunked).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::Done => Some(0),
            Framing::Chunked(_) => None,
        }
    }

    fn fail(&mut self, e: BodyError) -> io::Error {
        self.error = Some(e);
        e.to_io()
    }

    fn fill(&mut self, io: &mut ConnIo) -> io::Result<()> {
        match io.fill() {
            Ok(0) => Err(self.fail(BodyError::Eof)),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(self.fail(BodyError::TimedOut)),
            Err(_) => Err(self.fail(BodyError::Io)),
        }
    }

    /// Reads body bytes into `dst`; `Ok(0)` at the end of the body.
    ///
    /// # Errors
    /// A [`BodyError`] as an `io::Error`; it sticks: later reads fail the same way.
    pub(crate) fn read(&mut self, io: &mut ConnIo, dst: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error {
            return Err(e.to_io());
        }
        if dst.is_empty() || self.is_done() {
            return Ok(0);
        }
        if self.continue_pending && !self.final_sent {
            self.continue_pending = false;
            // After any earlier pipelined responses still in `out`.
            io.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            if io.flush().is_err() {
                return Err(self.fail(BodyError::Io));
            }
        }
        // Bounded: each turn consumes input, reads more, or returns.
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length(left) => {
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(dst.len());
                    let n = if !io.buffered().is_empty() {
                        let b = io.buffered();
                        let n = want.min(b.len());
                        dst[..n].copy_from_slice(&b[..n]);
                        io.consume(n);
                        n
                    } else {
                        match io.read_direct(&mut dst[..want]) {
                            Ok(0) => return Err(self.fail(BodyError::Eof)),
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                return Err(self.fail(BodyError::TimedOut));
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => return Err(self.fail(BodyError::Io)),
                        }
                    };
                    let left = left - n as u64;
                    self.framing = if left == 0 {
                        Framing::Done
                    } else {
                        Framing::Length(left)
                    };
                    self.read += n as u64;
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Size) => match httparse::parse_chunk_size(io.buffered()) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        io.consume(used);
                        if size == 0 {
                            self.framing = Framing::Chunked(Chunk::Trailer(0));
                        } else if self.read.saturating_add(size) > self.limit {
                            return Err(self.fail(BodyError::TooLarge));
                        } else {
                            self.framing = Framing::Chunked(Chunk::Data(size));
                        }
                    }
                    Ok(httparse::Status::Partial) => {
                        if io.buffered().len() > MAX_CHUNK_LINE {
                            return Err(self.fail(BodyError::Malformed));
                        }
                        self.fill(io)?;
                    }
                    Err(_) => return Err(self.fail(BodyError::Malformed)),
                },
                Framing::Chunked(Chunk::Data(left)) => {
                    if io.buffered().is_empty() {
                        self.fill(io)?;
                    }
                    let b = io.buffered();
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(dst.len())
                        .min(b.len());
                    dst[..n].copy_from_slice(&b[..n]);
                    io.consume(n);
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    self.read += n as u64;
                    return Ok(n);
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    let b = io.buffered();
                    if b.len() < 2 {
                        if b.first().is_some_and(|&c| c != b'\r') {
                            return Err(self.fail(BodyError::Malformed));
                        }
                        self.fill(io)?;
                        continue;
                    }
                    if &b[..2] != b"\r\n" {
                        return Err(self.fail(BodyError::Malformed));
                    }
                    io.consume(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer(seen)) => {
                    let b = io.buffered();
                    match b.iter().position(|&c| c == b'\n') {
                        Some(i) => {
                            let line = &b[..i];
                            let blank = line.is_empty() || line == b"\r";
                            let valid = blank || line.contains(&b':');
                            io.consume(i + 1);
                            if !valid {
                                return Err(self.fail(BodyError::Malformed));
                            }
                            if blank {
                                self.framing = Framing::Done;
                                return Ok(0);
                            }
                            let seen = seen + i + 1;
                            if seen > MAX_TRAILER {
                                return Err(self.fail(BodyError::Malformed));
                            }
                            self.framing = Framing::Chunked(Chunk::Trailer(seen));
                        }
                        None => {
                            if seen + b.len() > MAX_TRAILER {
                                return Err(self.fail(BodyError::Malformed));
                            }
                            self.fill(io)?;
                        }
                    }
                }
            }
        }
    }

    /// Reads and discards what is left of the body, up to [`MAX_DRAIN`] bytes; `true` if the
    /// body then ended, so the connection can serve its next request. Never sends
    /// `100 Continue`: a client that was not told to send its body is not waited for.
    pub(crate) fn drain(&mut self, io: &mut ConnIo) -> bool {
        if self.is_done() {
            return true;
        }
        if self.error.is_some() || self.continue_pending {
            return false;
        }
        if self.remaining().is_some_and(|n| n > MAX_DRAIN) {
            return false;
        }
        let mut sink = [0u8; 2048];
        let mut drained = 0u64;
        while !self.is_done() {
            match self.read(io, &mut sink) {
                Ok(0) => break,
                Ok(n) => {
                    drained += n as u64;
                    if drained > MAX_DRAIN {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        self.is_done()
    }
}
