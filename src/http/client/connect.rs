//! Making a connection for the transport: the dialing and TLS seams ([`Dialer`],
//! [`TlsConnector`]) and a dial that the request's context can cancel.

use std::io;
use std::time::Duration;

use super::conn::Conn;
use super::error::ClientError;
use crate::context::Context;

/// Opens the TCP connection to `host:port` (the seam for custom dialing: a test's
/// blackhole, a Unix socket, a SOCKS proxy). The default uses
/// [`net::dial_timeout`](crate::net::dial_timeout).
pub trait Dialer: Send + Sync + 'static {
    /// Connects to `addr` (`host:port`) within `timeout`.
    ///
    /// # Errors
    /// The connection error (`TimedOut` when the time is up).
    fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Box<dyn Conn>>;
}

impl<F> Dialer for F
where
    F: Fn(&str, Duration) -> io::Result<Box<dyn Conn>> + Send + Sync + 'static,
{
    fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Box<dyn Conn>> {
        self(addr, timeout)
    }
}

/// The TLS seam: turns a dialled connection into a TLS one for `https://` URLs. goway's
/// [`tls::ClientConfig`](crate::tls::ClientConfig) is one (the default); implement it for
/// another TLS stack.
pub trait TlsConnector: Send + Sync + 'static {
    /// Runs the client handshake for `server_name` on `conn` within `timeout`.
    ///
    /// # Errors
    /// The handshake's error (`TimedOut` when the time is up), with a
    /// [`TlsError`](crate::tls::TlsError) inside for a certificate problem.
    fn handshake(
        &self,
        conn: Box<dyn Conn>,
        server_name: &str,
        timeout: Option<Duration>,
    ) -> io::Result<Box<dyn Conn>>;
}

pub(super) struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial(&self, addr: &str, timeout: Duration) -> io::Result<Box<dyn Conn>> {
        Ok(Box::new(crate::net::dial_timeout(addr, timeout)?))
    }
}

/// Runs `connect` (a dial, then a handshake); a context that can be cancelled is watched
/// while it runs, in a goroutine of its own that ends with the dial's and handshake's
/// timeouts (what it made, such as the connection and its host slot, is then dropped).
pub(super) fn dial_ctx<T, F>(connect: F, ctx: &Context) -> Result<T, ClientError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ClientError> + Send + 'static,
{
    // Only a context that can be cancelled needs watching.
    match ctx.on_cancel(|_| {}) {
        Ok(None) => return connect(),
        Ok(Some(_)) => {}
        Err(e) => return Err(ClientError::Canceled(e)),
    }
    let (tx, rx) = crate::chan::bounded(1);
    let spawned = crate::Builder::new().spawn(move || {
        let _ = tx.send(connect());
    });
    if let Err(e) = spawned {
        return Err(ClientError::Io(e));
    }
    let done = ctx.done();
    crate::select! {
        recv(rx) -> r => match r {
            Ok(r) => r,
            Err(_) => Err(ClientError::Io(io::Error::other("http: dial goroutine ended"))),
        },
        recv(done) -> _ => Err(ClientError::Canceled(
            ctx.err().unwrap_or(crate::context::ContextError::Canceled),
        )),
    }
}
