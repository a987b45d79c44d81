//! The plumbing of the `http` module's rustdoc examples (hidden from the documentation): one
//! request, sent as raw bytes to a real server on a loopback port, and the response the
//! client read. Not part of the API; it may change at any release.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use super::{Builder, Handler, Server};
use crate::net::TcpStream;

/// How long the client waits for the whole response, and the server's shutdown after it.
const LIMIT: Duration = Duration::from_secs(10);

/// A response as the client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reply {
    /// The status code of the first response.
    pub status: u16,
    /// Its status line and header fields, each line ending with CRLF, without the empty
    /// line that ends the head.
    pub head: String,
    /// Everything after the head, as sent (with the chunk framing of a chunked body).
    pub body: String,
}

impl Reply {
    /// The first value of header field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Serves `request` (as a client sends it) with `handler` on a server with the default
/// configuration, and returns the response. The client half-closes the connection after
/// the request, so the server closes it after answering.
///
/// # Errors
/// Binding, connecting, writing or reading failed, or the reply is not an HTTP response.
pub fn serve_one(handler: impl Handler, request: &str) -> io::Result<Reply> {
    serve_one_with(Server::builder().handler(handler), request)
}

/// [`serve_one`] with a server configured by `builder` (its address is replaced by
/// `127.0.0.1:0`).
///
/// # Errors
/// As [`serve_one`].
pub fn serve_one_with(builder: Builder, request: &str) -> io::Result<Reply> {
    let server = builder
        .addr("127.0.0.1:0")
        .bind()
        .map_err(io::Error::other)?;
    let addr = server.local_addr()?;
    let handle = server.handle();
    let serving = crate::go!(move || server.serve());
    let raw = exchange(addr, request);
    let stopped = handle.shutdown_timeout(LIMIT);
    let _ = serving.join();
    stopped.map_err(io::Error::other)?;
    parse(&raw?)
}

fn exchange(addr: SocketAddr, request: &str) -> io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(LIMIT))?;
    c.set_write_timeout(Some(LIMIT))?;
    c.write_all(request.as_bytes())?;
    c.shutdown(Shutdown::Write)?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw)?;
    Ok(raw)
}

fn parse(raw: &[u8]) -> io::Result<Reply> {
    let text = String::from_utf8_lossy(raw);
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a response: {text:?}"),
        )
    };
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok(Reply {
        status,
        head: format!("{head}\r\n"),
        body: body.to_owned(),
    })
}
