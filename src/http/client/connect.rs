//! Making a connection for the transport: the dialing and TLS seams ([`Dialer`],
//! [`TlsConnector`]) and a dial that the request's context can cancel.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::conn::Conn;
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

/// The TLS seam: turns a dialled connection into a TLS one for `https://` URLs. A
/// transport without one refuses `https://` URLs with [`ClientError::TlsUnavailable`].
pub trait TlsConnector: Send + Sync + 'static {
    /// Runs the client handshake for `server_name` on `conn` within `timeout`.
    ///
    /// # Errors
    /// The handshake's error (`TimedOut` when the time is up).
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

pub(super) enum DialError {
    Canceled(crate::context::ContextError),
    Io(io::Error),
}

/// Dials; a context that can be cancelled is watched while the dial runs (in a goroutine
/// of its own, which ends with the dial's timeout; its connection is then dropped).
pub(super) fn dial_ctx(
    dialer: Arc<dyn Dialer>,
    addr: String,
    timeout: Duration,
    ctx: &Context,
) -> Result<Box<dyn Conn>, DialError> {
    // Only a context that can be cancelled needs watching.
    match ctx.on_cancel(|_| {}) {
        Ok(None) => return dialer.dial(&addr, timeout).map_err(DialError::Io),
        Ok(Some(_)) => {}
        Err(e) => return Err(DialError::Canceled(e)),
    }
    let (tx, rx) = crate::chan::bounded(1);
    let spawned = crate::Builder::new().spawn(move || {
        let _ = tx.send(dialer.dial(&addr, timeout));
    });
    if let Err(e) = spawned {
        return Err(DialError::Io(e));
    }
    let done = ctx.done();
    crate::select! {
        recv(rx) -> r => match r {
            Ok(r) => r.map_err(DialError::Io),
            Err(_) => Err(DialError::Io(io::Error::other("http: dial goroutine ended"))),
        },
        recv(done) -> _ => Err(DialError::Canceled(
            ctx.err().unwrap_or(crate::context::ContextError::Canceled),
        )),
    }
}
