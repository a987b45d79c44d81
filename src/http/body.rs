//! Request bodies: `Content-Length` and chunked framing read from the connection, with the
//! server's size limit, `Expect: 100-continue`, and the draining of what a handler left
//! unread (Go's transfer.go `body` and server.go's `maxPostHandlerReadBytes`).

use std::io::{self, Read, Write};

use super::io::ConnIo;

/// Longest chunk-size line accepted, extensions and CRLF included (Go's 4096). Checked on
/// every line, complete or not.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk; each line must also fit the read
/// buffer ([`ConnIo::capacity`]).
pub(crate) const MAX_TRAILER: usize = 16 << 10;
/// Chunk framing allowed for free with each chunk: its size line and the CRLF after its
/// data, up to this many bytes, plus twice the chunk's data (so one byte a chunk,
/// `1\r\nX\r\n`, streams fine).
const CHUNK_FRAMING_ALLOWANCE: u64 = 16;
/// Framing beyond the allowances that a body may accumulate before it is refused: chunk
/// extensions (or tiny chunks with long size lines) cannot make a body mostly framing (the
/// idea of Go 1.22's fix for CVE-2023-39326).
const MAX_EXCESS_FRAMING: u64 = 16 << 10;
/// What the server reads and discards of a body the handler left unread before giving up
/// and closing the connection (Go's `maxPostHandlerReadBytes`, 256 KiB).
pub(crate) const MAX_DRAIN: u64 = 256 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line; this many of its bytes were searched for its end.
    Size(usize),
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk: bytes of complete lines so far, and
    /// bytes of the current line searched for its end.
    Trailer(usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    /// Until the peer closes (a response without length or chunking: the client's side).
    UntilEof,
    Done,
}

/// Why a body cannot be read further; the connection then closes after the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the server's body limit (Go's `http: request body too large`).
    TooLarge,
    /// Bad chunked framing, and why.
    Malformed(&'static str),
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
            BodyError::Malformed(why) => (io::ErrorKind::InvalidData, why),
            BodyError::Eof => (io::ErrorKind::UnexpectedEof, "unexpected EOF"),
            BodyError::TimedOut => (io::ErrorKind::TimedOut, "i/o timeout"),
            BodyError::Io => (io::ErrorKind::ConnectionReset, "http: connection error"),
        };
        io::Error::new(kind, msg)
    }
}

/// Chunk-size and trailer lines as the chunked decoder met them: bytes searched for line
/// ends (each byte once however the lines arrive), the longest chunk-size line held
/// (complete or not), the most trailer bytes held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LineStats {
    pub(crate) searched: u64,
    pub(crate) size_line: usize,
    pub(crate) trailer: usize,
}

/// The state of one request's body.
#[derive(Debug)]
pub(crate) struct BodyState {
    framing: Framing,
    /// Bytes of body delivered so far.
    pub(crate) read: u64,
    limit: u64,
    pub(crate) error: Option<BodyError>,
    /// Chunk framing beyond the allowances so far (see [`MAX_EXCESS_FRAMING`]).
    excess_framing: u64,
    /// What the chunked decoder examined and held, for the bounds `goway::fuzzing` checks.
    pub(crate) lines: LineStats,
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
            excess_framing: 0,
            lines: LineStats::default(),
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
            Framing::Chunked(Chunk::Size(0))
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
            excess_framing: 0,
            lines: LineStats::default(),
            error: None,
            continue_pending: expect && framing != Framing::Done,
            final_sent: false,
        }
    }

    /// A body that ends when the peer closes the connection (an HTTP client reading a
    /// response that has neither `Content-Length` nor chunked framing).
    pub(crate) fn until_eof() -> Self {
        BodyState {
            framing: Framing::UntilEof,
            ..BodyState::empty()
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
            Framing::Chunked(_) | Framing::UntilEof => None,
        }
    }

    fn fail(&mut self, e: BodyError) -> io::Error {
        self.error = Some(e);
        e.to_io()
    }

    fn fill<S: Read + Write>(&mut self, io: &mut ConnIo<S>) -> io::Result<()> {
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
    pub(crate) fn read<S: Read + Write>(
        &mut self,
        io: &mut ConnIo<S>,
        dst: &mut [u8],
    ) -> io::Result<usize> {
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
                Framing::UntilEof => {
                    let n = if !io.buffered().is_empty() {
                        let b = io.buffered();
                        let n = dst.len().min(b.len());
                        dst[..n].copy_from_slice(&b[..n]);
                        io.consume(n);
                        n
                    } else {
                        match io.read_direct(dst) {
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                return Err(self.fail(BodyError::TimedOut));
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => return Err(self.fail(BodyError::Io)),
                        }
                    };
                    if n == 0 {
                        self.framing = Framing::Done;
                    }
                    self.read += n as u64;
                    return Ok(n);
                }
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
                Framing::Chunked(Chunk::Size(searched)) => {
                    let b = io.buffered();
                    // Search only the bytes not searched yet, and never past the limit.
                    let end = b.len().min(MAX_CHUNK_LINE);
                    let window = &b[searched.min(end)..end];
                    let found = window.iter().position(|&c| c == b'\n');
                    self.lines.searched += found.map_or(window.len(), |i| i + 1) as u64;
                    let held = found.map_or(end, |i| searched + i + 1);
                    self.lines.size_line = self.lines.size_line.max(held);
                    let Some(i) = found else {
                        if b.len() >= MAX_CHUNK_LINE {
                            return Err(self.fail(BodyError::Malformed(LINE_TOO_LONG)));
                        }
                        self.framing = Framing::Chunked(Chunk::Size(b.len()));
                        self.fill(io)?;
                        continue;
                    };
                    let len = searched + i + 1;
                    let size = match chunk_size(&b[..len]) {
                        Ok(n) => n,
                        Err(why) => return Err(self.fail(BodyError::Malformed(why))),
                    };
                    io.consume(len);
                    // The line and the CRLF after the data, less what the chunk may carry.
                    self.excess_framing = (self.excess_framing + len as u64 + 2).saturating_sub(
                        CHUNK_FRAMING_ALLOWANCE.saturating_add(size.saturating_mul(2)),
                    );
                    if self.excess_framing > MAX_EXCESS_FRAMING {
                        return Err(self.fail(BodyError::Malformed(TOO_MUCH_FRAMING)));
                    }
                    if size == 0 {
                        self.framing = Framing::Chunked(Chunk::Trailer(0, 0));
                    } else if self.read.saturating_add(size) > self.limit {
                        return Err(self.fail(BodyError::TooLarge));
                    } else {
                        self.framing = Framing::Chunked(Chunk::Data(size));
                    }
                }
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
                            return Err(self.fail(BodyError::Malformed(MALFORMED)));
                        }
                        self.fill(io)?;
                        continue;
                    }
                    if &b[..2] != b"\r\n" {
                        return Err(self.fail(BodyError::Malformed(MALFORMED)));
                    }
                    io.consume(2);
                    self.framing = Framing::Chunked(Chunk::Size(0));
                }
                Framing::Chunked(Chunk::Trailer(seen, searched)) => {
                    let b = io.buffered();
                    // A line must also fit the read buffer (the head limit and 4 KiB, as
                    // Go's trailers must fit its 4 KiB reader); longer is too long.
                    let room = MAX_TRAILER.saturating_sub(seen).min(io.capacity());
                    let end = b.len().min(room);
                    let window = &b[searched.min(end)..end];
                    let found = window.iter().position(|&c| c == b'\n');
                    self.lines.searched += found.map_or(window.len(), |i| i + 1) as u64;
                    let held = found.map_or(end, |i| searched + i + 1);
                    self.lines.trailer = self.lines.trailer.max(seen + held);
                    let Some(i) = found else {
                        if b.len() >= room {
                            return Err(self.fail(BodyError::Malformed(TRAILER_TOO_LONG)));
                        }
                        self.framing = Framing::Chunked(Chunk::Trailer(seen, b.len()));
                        self.fill(io)?;
                        continue;
                    };
                    let len = searched + i + 1;
                    let line = &b[..len];
                    if line == b"\r\n" {
                        io.consume(len);
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    if !trailer_field(line) {
                        return Err(self.fail(BodyError::Malformed(MALFORMED)));
                    }
                    io.consume(len);
                    self.framing = Framing::Chunked(Chunk::Trailer(seen + len, 0));
                }
            }
        }
    }

    /// Reads and discards what is left of the body, up to [`MAX_DRAIN`] bytes; `true` if the
    /// body then ended, so the connection can serve its next request. Never sends
    /// `100 Continue`: a client that was not told to send its body is not waited for.
    pub(crate) fn drain<S: Read + Write>(&mut self, io: &mut ConnIo<S>) -> bool {
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

const MALFORMED: &str = "http: malformed chunked encoding";
const LINE_TOO_LONG: &str = "http: malformed chunked encoding: chunk-size line too long";
const TOO_MUCH_FRAMING: &str = "http: chunked encoding contains too much non-data";
const TRAILER_TOO_LONG: &str = "http: malformed chunked encoding: trailer too long";

/// The size in a chunk-size line (`line` ends with its `\n`), as RFC 9112 §7.1 has it:
/// 1 to 16 hex digits, optional blanks, optional extensions after `;` (visible bytes,
/// blanks and obs-text: no control bytes), then CRLF. A bare LF, a bare CR, or an empty size
/// is refused (each has been used to smuggle requests past a proxy that reads them
/// otherwise).
fn chunk_size(line: &[u8]) -> Result<u64, &'static str> {
    let Some(line) = line.strip_suffix(b"\r\n") else {
        return Err(MALFORMED);
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err("http: malformed chunked encoding: no chunk size");
    }
    if digits > 16 {
        return Err("http: chunk length too large");
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        // A hex digit: its value fits in 4 bits, and 16 digits fit in a u64.
        let v = (b as char).to_digit(16).unwrap_or(0);
        size = size << 4 | u64::from(v);
    }
    let rest = &line[digits..];
    let blanks = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match rest.get(blanks) {
        None => Ok(size),
        Some(b';') if rest[blanks + 1..].iter().all(|&b| field_byte(b)) => Ok(size),
        Some(_) => Err(MALFORMED),
    }
}

/// A byte of a field value or an extension: HTAB, SP, visible ASCII, obs-text.
fn field_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Whether `line` (ending with its `\n`) is a trailer field: a token, `:`, a value, CRLF.
fn trailer_field(line: &[u8]) -> bool {
    let Some(line) = line.strip_suffix(b"\r\n") else {
        return false;
    };
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    super::header::valid_name(&line[..colon]) && line[colon + 1..].iter().all(|&b| field_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        let ok = |l: &[u8]| chunk_size(l).ok();
        assert_eq!(ok(b"5\r\n"), Some(5));
        assert_eq!(ok(b"a;name=value\r\n"), Some(10));
        assert_eq!(ok(b"A \t;x;y=\"q s\"\r\n"), Some(10));
        assert_eq!(ok(b"1f \r\n"), Some(31));
        assert_eq!(ok(b"0\r\n"), Some(0));
        assert_eq!(ok(b"ffffffffffffffff\r\n"), Some(u64::MAX));
        assert_eq!(ok(b"0000000000000001\r\n"), Some(1));
        for bad in [
            &b"10000000000000000\r\n"[..],
            b"\r\n",
            b";x\r\n",
            b" 5\r\n",
            b"5\n",
            b"5;x\n",
            b"5\r\r\n",
            b"5;\r\r\n",
            b"5;\x01\r\n",
            b"5 x\r\n",
            b"-5\r\n",
            b"0x5\r\n",
            b"5\x00\r\n",
        ] {
            assert_eq!(ok(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn trailer_fields() {
        assert!(trailer_field(b"X-Sum: abc\r\n"));
        assert!(trailer_field(b"X-Empty:\r\n"));
        assert!(!trailer_field(b"X-Sum: abc\n"));
        assert!(!trailer_field(b"no colon\r\n"));
        assert!(!trailer_field(b"Bad Name: v\r\n"));
        assert!(!trailer_field(b": v\r\n"));
        assert!(!trailer_field(b"X: a\rb\r\n"));
    }
}
