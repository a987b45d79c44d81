//! TLS on a server connection ([`Builder::tls`](crate::net::server::Builder::tls)): the
//! reader's handshake and decryption, and what the writer needs to encrypt.
//!
//! The rustls session sits behind a short lock that is never held across a socket wait: the
//! reader reads raw bytes without it (non-blocking, into a pooled buffer it hands back at
//! once, so an idle connection holds no read buffer), then locks it to decrypt; the writer
//! locks it to encrypt into its buffer, then writes with it unlocked. Everything that goes to
//! the socket (replies, and the handshake messages, alerts and close_notify the reader or
//! writer makes rustls queue) is drained from rustls and written under the connection's
//! output mutex, so records reach the client in the order rustls made them.

use std::io;
use std::time::Instant;

use parking_lot::Mutex;

use super::shared::ConnShared;
use super::writer::WriteSide;
use crate::net::codec::Codec;
use crate::net::server::stats::CloseReason;
use crate::net::server::stream::{Wakeup, give_read_buf, take_read_buf};
use crate::sync::Mutex as GoMutex;

/// A connection's TLS session.
pub(crate) type Session = Mutex<rustls::ServerConnection>;

/// TLS handshake failures, logged at info at most once per 10 s (each at debug).
static HANDSHAKE_ERRORS: std::sync::LazyLock<crate::logging::LogSummary> =
    std::sync::LazyLock::new(|| {
        crate::logging::LogSummary::new("TLS handshake errors").target("goway::server")
    });

/// What one non-blocking read brought.
pub(super) enum Fed {
    /// Raw bytes, handed to rustls.
    Bytes(usize),
    /// Nothing there now.
    Empty,
    /// The client closed its side.
    Eof,
}

/// Why feeding rustls failed.
pub(super) enum Fail {
    /// The socket failed.
    Io(io::Error),
    /// The TLS session failed (rustls queued an alert for the client).
    Tls(String),
}

/// Reads what the socket has now (without waiting) and hands it to rustls. `first`: these
/// are the connection's first bytes, which must look like a TLS record.
pub(super) fn feed<O: Send + 'static>(
    sh: &ConnShared<O>,
    tls: &Session,
    first: bool,
) -> Result<Fed, Fail> {
    let mut raw = take_read_buf();
    let r = loop {
        match sh.sock.read_nb(&mut raw) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => break r,
        }
    };
    let out = match r {
        Ok(0) => {
            // An empty read tells rustls the transport ended.
            let _ = tls.lock().read_tls(&mut &[][..]);
            Ok(Fed::Eof)
        }
        Ok(n) => {
            sh.server
                .stats
                .bytes_in
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            if first && raw[0] != 0x16 && raw[0] != 0x15 {
                Err(Fail::Tls(not_tls(&raw[..n]).to_string()))
            } else {
                process(tls, &raw[..n]).map(|()| Fed::Bytes(n))
            }
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Fed::Empty),
        Err(e) => Err(Fail::Io(e)),
    };
    give_read_buf(raw);
    out
}

/// Go's words for a client that does not speak TLS.
fn not_tls(b: &[u8]) -> &'static str {
    let http = [&b"GET /"[..], b"HEAD ", b"POST ", b"PUT /", b"OPTIO"]
        .iter()
        .any(|p| b.starts_with(p));
    if http {
        "client sent an HTTP request to an HTTPS server"
    } else {
        "first record does not look like a TLS handshake"
    }
}

fn process(tls: &Session, mut raw: &[u8]) -> Result<(), Fail> {
    let mut c = tls.lock();
    while !raw.is_empty() {
        c.read_tls(&mut raw).map_err(Fail::Io)?;
        c.process_new_packets()
            .map_err(|e| Fail::Tls(e.to_string()))?;
    }
    Ok(())
}

/// Whether rustls has bytes to send (handshake messages, alerts, a key update).
pub(super) fn wants_write(tls: &Session) -> bool {
    tls.lock().wants_write()
}

/// Sends what rustls has queued, under the output mutex.
pub(super) fn flush<C: Codec>(
    sh: &ConnShared<C::Out>,
    out: &GoMutex<WriteSide<C>>,
) -> io::Result<()> {
    out.lock().tls_flush(sh)
}

/// Logs a failed handshake (Go's "http: TLS handshake error from ADDR: ERR").
pub(super) fn report<O: Send + 'static>(sh: &ConnShared<O>, err: &str) {
    let msg = || format!("conn {} TLS handshake error from {}: {err}", sh.id, sh.peer);
    if !HANDSHAKE_ERRORS.record(msg) {
        log::debug!(target: "goway::server", "{}", msg());
    }
}

/// Runs the handshake on the reader's goroutine, waiting for the client's bytes until the
/// handshake timeout. `Err`: the connection must close for that reason.
pub(super) fn handshake<C: Codec>(
    sh: &ConnShared<C::Out>,
    tls: &Session,
    out: &GoMutex<WriteSide<C>>,
    wakeup: &Wakeup,
) -> Result<(), CloseReason> {
    let end = sh
        .server
        .tls
        .handshake_limit()
        .and_then(|d| Instant::now().checked_add(d));
    let mut first = true;
    loop {
        let (handshaking, pending, request) = {
            let mut c = tls.lock();
            let handshaking = c.is_handshaking();
            // Done, with the client's first data already decrypted (it came with its
            // Finished): what rustls queued after the handshake (the session ticket) goes
            // out in the same write as the first reply, one segment instead of two. Any
            // later socket read that brings bytes flushes it too.
            let request = !handshaking
                && c.process_new_packets()
                    .is_ok_and(|s| s.plaintext_bytes_to_read() > 0);
            (handshaking, c.wants_write(), request)
        };
        if request {
            return Ok(());
        }
        if pending {
            flush(sh, out).map_err(|e| super::io_reason(&e))?;
            continue;
        }
        if !handshaking {
            return Ok(());
        }
        match feed(sh, tls, first) {
            Ok(Fed::Bytes(_)) => first = false,
            Ok(Fed::Empty) => {
                if end.is_some_and(|e| Instant::now() >= e) {
                    report(sh, "handshake timeout");
                    return Err(CloseReason::TlsHandshake);
                }
                if sh.is_draining() {
                    return Err(CloseReason::Shutdown);
                }
                wakeup.set(end);
                sh.sock.wait_readable(end.is_some());
            }
            Ok(Fed::Eof) => {
                return Err(if sh.is_draining() {
                    CloseReason::Shutdown
                } else if first {
                    CloseReason::Eof
                } else {
                    report(sh, "EOF");
                    CloseReason::TlsHandshake
                });
            }
            Err(Fail::Io(e)) => return Err(super::io_reason(&e)),
            Err(Fail::Tls(e)) => {
                // The alert rustls queued, if any.
                let _ = flush(sh, out);
                report(sh, &e);
                return Err(CloseReason::TlsHandshake);
            }
        }
    }
}
