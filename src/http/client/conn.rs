//! One client connection: the stream seam ([`Conn`]), writing a request, and reading a
//! response head with `httparse` (Go's `persistConn` and `ReadResponse`).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use super::error::ClientError;
use super::pool::ConnSlot;
use super::request::BodyKind;
use crate::http::Header;
use crate::http::io::ConnIo;
use crate::net::TcpStream;

/// A connection the client speaks HTTP over: a TCP stream, or (through a
/// [`TlsConnector`](super::TlsConnector)) a TLS stream over one. Every method takes `&self`
/// so that another goroutine can [`close`](Conn::close) it while a read or write is blocked
/// on it: that is how a request's context or timeout ends it.
pub trait Conn: Send + Sync + 'static {
    /// Reads into `buf`; `Ok(0)` at EOF.
    ///
    /// # Errors
    /// As the socket's read (`TimedOut` at the read deadline).
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes some of `buf`.
    ///
    /// # Errors
    /// As the socket's write (`TimedOut` at the write deadline).
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Closes the connection, waking the reads and writes blocked on it.
    fn close(&self);
    /// Ends the connection at once, without writing anything (no TLS close_notify): what a
    /// request's context runs when it is cancelled, so it must never block. The default
    /// calls [`close`](Conn::close); a connection whose close can block must override it.
    fn abort(&self) {
        self.close();
    }
    /// Sets the deadline of reads (`None`: none).
    fn set_read_deadline(&self, t: Option<Instant>);
    /// Sets the deadline of writes (`None`: none).
    fn set_write_deadline(&self, t: Option<Instant>);
    /// The TCP stream this connection is, for a [`TlsConnector`](super::TlsConnector) to
    /// run TLS over; `None` (the default) for any other kind of connection, which is
    /// then dropped.
    fn into_tcp(self: Box<Self>) -> Option<TcpStream> {
        None
    }
}

impl Conn for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self).read(buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&mut &*self).write(buf)
    }
    fn close(&self) {
        let _ = TcpStream::close(self);
    }
    fn set_read_deadline(&self, t: Option<Instant>) {
        TcpStream::set_read_deadline(self, t);
    }
    fn set_write_deadline(&self, t: Option<Instant>) {
        TcpStream::set_write_deadline(self, t);
    }
    fn into_tcp(self: Box<Self>) -> Option<TcpStream> {
        Some(*self)
    }
}

/// A shared connection as the `Read + Write` stream of a [`ConnIo`].
pub(crate) struct Shared(pub(crate) Arc<dyn Conn>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection with its buffers, as kept in the pool between requests.
pub(crate) struct PersistConn {
    pub(crate) conn: Arc<dyn Conn>,
    pub(crate) io: ConnIo<Shared>,
    /// Requests served on it so far.
    pub(crate) uses: u64,
    /// When it went idle.
    pub(crate) idle_since: Instant,
    /// Its place among its host's `max_conns_per_host`, freed when it is dropped.
    _slot: Option<ConnSlot>,
}

impl PersistConn {
    pub(crate) fn new(conn: Arc<dyn Conn>, max_head: usize, slot: Option<ConnSlot>) -> Self {
        PersistConn {
            io: ConnIo::new(Shared(conn.clone()), max_head),
            conn,
            uses: 0,
            idle_since: Instant::now(),
            _slot: slot,
        }
    }
}

/// The framing and fields of a response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) minor: u8,
    pub(crate) reason: String,
    pub(crate) header: Header,
    pub(crate) content_length: Option<u64>,
    pub(crate) chunked: bool,
    /// The server asked to close (or is HTTP/1.0 without keep-alive).
    pub(crate) close: bool,
}

/// A body to send: the request's own, or one borrowed for one exchange (a server
/// request's body streamed on by a proxy).
pub(crate) enum Outgoing<'a> {
    Owned(BodyKind),
    Borrowed {
        reader: &'a mut dyn Read,
        len: Option<u64>,
    },
}

/// How writing a request failed.
pub(crate) enum WriteError {
    /// Nothing could be written (the request may be sent again elsewhere).
    NothingWritten(io::Error),
    /// A socket error after some bytes went out.
    Io(io::Error),
    /// The body's reader failed, or gave the wrong length.
    Body(ClientError),
}

/// Streams bodies in pieces of this size.
const COPY_BUF: usize = 32 << 10;
/// A body of up to this many bytes goes out in the same write as the head.
const INLINE_BODY: usize = 16 << 10;

/// Writes the request head and body.
pub(crate) fn write_request(
    pc: &mut PersistConn,
    method: &str,
    target: &str,
    host: &str,
    header: &Header,
    close: bool,
    body: Outgoing<'_>,
) -> Result<(), WriteError> {
    let out = &mut pc.io.out;
    out.clear();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    let host = header.get("Host").unwrap_or(host);
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !header.contains("User-Agent") {
        out.extend_from_slice(b"User-Agent: goway-http-client/1.1\r\n");
    }
    for (name, value, line) in header.raw_fields() {
        let skip = name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"user-agent") && value.is_empty());
        if !skip {
            out.extend_from_slice(line);
        }
    }
    if close && !header.contains("Connection") {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    let body_len = match &body {
        Outgoing::Owned(BodyKind::Empty | BodyKind::Consumed) => Some(0),
        Outgoing::Owned(BodyKind::Bytes(b)) => Some(b.len() as u64),
        Outgoing::Owned(BodyKind::Reader { len, .. }) | Outgoing::Borrowed { len, .. } => *len,
    };
    match body_len {
        // Go sends no Content-Length for an empty body, except for methods that expect
        // one.
        Some(0) if !matches!(method, "POST" | "PUT" | "PATCH") => {}
        Some(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    match body {
        Outgoing::Owned(BodyKind::Bytes(b)) if b.len() <= INLINE_BODY => {
            pc.io.out.extend_from_slice(&b);
            flush_head(pc)
        }
        Outgoing::Owned(BodyKind::Bytes(b)) => {
            flush_head(pc)?;
            pc.conn
                .as_ref()
                .write_all_shared(&b)
                .map_err(WriteError::Io)
        }
        Outgoing::Owned(BodyKind::Empty | BodyKind::Consumed) => flush_head(pc),
        Outgoing::Owned(BodyKind::Reader { mut reader, len }) => {
            flush_head(pc)?;
            copy_body(pc, &mut *reader, len)
        }
        Outgoing::Borrowed { reader, len } => {
            flush_head(pc)?;
            copy_body(pc, reader, len)
        }
    }
}

fn copy_body(pc: &mut PersistConn, r: &mut dyn Read, len: Option<u64>) -> Result<(), WriteError> {
    match len {
        Some(0) => Ok(()),
        Some(n) => copy_exact(pc, r, n),
        None => copy_chunked(pc, r),
    }
}

/// Sends the head (and inline body) in `out`.
fn flush_head(pc: &mut PersistConn) -> Result<(), WriteError> {
    let total = pc.io.out.len();
    let mut written = 0;
    let r = loop {
        if written == total {
            break Ok(());
        }
        match pc.conn.write(&pc.io.out[written..]) {
            Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    pc.io.out.clear();
    r.map_err(|e| {
        if written == 0 {
            WriteError::NothingWritten(e)
        } else {
            WriteError::Io(e)
        }
    })
}

trait WriteAllShared {
    fn write_all_shared(&self, b: &[u8]) -> io::Result<()>;
}

impl WriteAllShared for dyn Conn {
    fn write_all_shared(&self, mut b: &[u8]) -> io::Result<()> {
        while !b.is_empty() {
            match self.write(b) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => b = &b[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize, WriteError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WriteError::Body(ClientError::Io(e))),
        }
    }
}

fn copy_exact(pc: &mut PersistConn, r: &mut dyn Read, len: u64) -> Result<(), WriteError> {
    let mut buf = vec![0u8; COPY_BUF.min(usize::try_from(len).unwrap_or(COPY_BUF))];
    let mut sent = 0u64;
    while sent < len {
        let want = usize::try_from(len - sent)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = read_some(r, &mut buf[..want])?;
        if n == 0 {
            return Err(WriteError::Body(ClientError::BodyLength {
                declared: len,
                actual: sent,
            }));
        }
        pc.conn
            .as_ref()
            .write_all_shared(&buf[..n])
            .map_err(WriteError::Io)?;
        sent += n as u64;
    }
    Ok(())
}

fn copy_chunked(pc: &mut PersistConn, r: &mut dyn Read) -> Result<(), WriteError> {
    // Room for a size line before the data and the CRLF after it.
    let mut buf = vec![0u8; COPY_BUF + 20];
    loop {
        let n = read_some(r, &mut buf[18..18 + COPY_BUF])?;
        if n == 0 {
            return pc
                .conn
                .as_ref()
                .write_all_shared(b"0\r\n\r\n")
                .map_err(WriteError::Io);
        }
        let line = format!("{n:x}\r\n");
        let start = 18 - line.len();
        buf[start..18].copy_from_slice(line.as_bytes());
        buf[18 + n..18 + n + 2].copy_from_slice(b"\r\n");
        pc.conn
            .as_ref()
            .write_all_shared(&buf[start..18 + n + 2])
            .map_err(WriteError::Io)?;
    }
}

/// How reading a response head failed.
pub(crate) enum HeadError {
    /// The server closed (EOF or reset) before sending a byte: a kept-alive connection it
    /// had closed (Go's `errServerClosedIdle`).
    ClosedBeforeResponse(io::Error),
    /// A socket error or timeout after some bytes.
    Io(io::Error),
    /// Not a valid response head.
    Protocol(String),
}

/// Fields of a head parsed at once on the stack; more get a heap array.
const STACK_FIELDS: usize = 64;

/// Reads a final response head (skipping `1xx` ones other than `101`).
pub(crate) fn read_head(pc: &mut PersistConn, max: usize) -> Result<ResponseHead, HeadError> {
    let mut got_any = false;
    loop {
        let parsed = {
            let buf = pc.io.buffered();
            if buf.is_empty() {
                None
            } else {
                parse_head(buf)?
            }
        };
        match parsed {
            Some((head, n)) => {
                pc.io.consume(n);
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                return Ok(head);
            }
            None => {
                if pc.io.buffered().len() >= max {
                    return Err(HeadError::Protocol(format!(
                        "net/http: server response headers exceeded {max} bytes; aborted"
                    )));
                }
                match pc.io.fill() {
                    Ok(0) if !got_any && pc.io.buffered().is_empty() => {
                        return Err(HeadError::ClosedBeforeResponse(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "EOF",
                        )));
                    }
                    Ok(0) => {
                        return Err(HeadError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "unexpected EOF",
                        )));
                    }
                    Ok(_) => got_any = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // Nothing of the response read: the server closed the kept-alive
                    // connection (a TLS one without close_notify reads UnexpectedEof).
                    Err(e)
                        if !got_any
                            && pc.io.buffered().is_empty()
                            && matches!(
                                e.kind(),
                                io::ErrorKind::ConnectionReset
                                    | io::ErrorKind::ConnectionAborted
                                    | io::ErrorKind::UnexpectedEof
                            ) =>
                    {
                        return Err(HeadError::ClosedBeforeResponse(e));
                    }
                    Err(e) => return Err(HeadError::Io(e)),
                }
            }
        }
    }
}

/// Parses the head at the start of `buf`: `None` if it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut resp = httparse::Response::new(&mut stack);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => head_from(&resp).map(|h| Some((h, n))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            let count = buf.windows(2).filter(|w| w == b"\r\n").count() + 1;
            let mut many = vec![httparse::EMPTY_HEADER; count];
            let mut resp = httparse::Response::new(&mut many);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => head_from(&resp).map(|h| Some((h, n))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(e) => Err(malformed(buf, e)),
            }
        }
        Err(e) => Err(malformed(buf, e)),
    }
}

/// Go's texts for a bad status line or header.
fn malformed(buf: &[u8], e: httparse::Error) -> HeadError {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(buf.len())
        .min(200);
    let line = String::from_utf8_lossy(&buf[..line_end]);
    let line = line.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let (proto, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    HeadError::Protocol(match e {
        httparse::Error::Version if !proto.starts_with("HTTP/") || !line.contains(' ') => {
            format!("malformed HTTP response {line:?}")
        }
        httparse::Error::Version => format!("malformed HTTP version {proto:?}"),
        httparse::Error::Status => format!("malformed HTTP status code {code:?}"),
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            "malformed MIME header line".to_owned()
        }
        _ => format!("malformed HTTP response {line:?}"),
    })
}

fn head_from(resp: &httparse::Response<'_, '_>) -> Result<ResponseHead, HeadError> {
    let status = resp.code.unwrap_or(0);
    let minor = resp.version.unwrap_or(1);
    let mut header = Header::new();
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let (mut conn_close, mut keep_alive) = (false, false);
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| HeadError::Protocol(format!("bad Content-Length {v:?}")))?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(HeadError::Protocol(
                    "http: message cannot contain multiple Content-Length headers".to_owned(),
                ));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            let v = v.trim();
            if te || !v.eq_ignore_ascii_case("chunked") {
                return Err(HeadError::Protocol(format!(
                    "net/http: unsupported transfer encoding {v:?}"
                )));
            }
            te = true;
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for t in h.value.split(|&b| b == b',') {
                let t = t.trim_ascii();
                conn_close |= t.eq_ignore_ascii_case(b"close");
                keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        header.add_raw(name, h.value);
    }
    if chunked && content_length.is_some() {
        // A response-splitting vector: refused rather than picking one.
        return Err(HeadError::Protocol(
            "http: response has both Transfer-Encoding and Content-Length".to_owned(),
        ));
    }
    if chunked && minor == 0 {
        return Err(HeadError::Protocol(
            "http: Transfer-Encoding in an HTTP/1.0 response".to_owned(),
        ));
    }
    let close = conn_close || (minor == 0 && !keep_alive);
    Ok(ResponseHead {
        status,
        minor,
        reason: resp.reason.unwrap_or("").to_owned(),
        header,
        content_length,
        chunked,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<ResponseHead>, String> {
        match parse_head(s.as_bytes()) {
            Ok(h) => Ok(h.map(|(h, _)| h)),
            Err(HeadError::Protocol(m)) => Err(m),
            Err(_) => Err("io".into()),
        }
    }

    #[test]
    fn heads() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.content_length, h.close), (200, Some(5), false));
        let h = parse("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(h.close);
        assert!(parse("HTTP/1.1 200 OK\r\n").unwrap().is_none());
        assert_eq!(
            parse("HTTP/1.1 abc OK\r\n\r\n").unwrap_err(),
            "malformed HTTP status code \"abc\""
        );
        assert_eq!(
            parse("SSH-2.0-OpenSSH\r\n\r\n").unwrap_err(),
            "malformed HTTP response \"SSH-2.0-OpenSSH\""
        );
        assert!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .contains("both")
        );
        assert!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .unwrap_err()
                .contains("multiple")
        );
        assert!(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
    }
}
