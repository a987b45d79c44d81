//! [`Server`]: a bound server and its accept loop.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::accept;
use super::conn::HandlerFn;
use super::{Builder, Config, ListenAddr, Listener, ServeError, ServerHandle, ServerShared, Stats};
use crate::chan::Receiver;
use crate::net::codec::Codec;

/// A bound server, ready to [`serve`](Self::serve). Build one with [`Server::builder`].
pub struct Server<C: Codec> {
    pub(super) listener: Option<Listener>,
    pub(super) codec: C,
    pub(super) handler: Arc<HandlerFn<C>>,
    pub(super) shared: Arc<ServerShared>,
    pub(super) signals: Vec<Receiver<()>>,
}

impl<C: Codec> Drop for Server<C> {
    /// A server dropped without serving closes its listener, also one that shares its port
    /// (whose duplicate descriptor, kept for shutdown, would hold it open and keep taking the
    /// port's connections).
    fn drop(&mut self) {
        self.shared.wake.release();
    }
}

impl<C: Codec> fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.shared.listen)
            .field("stats", &self.shared.stats())
            .finish_non_exhaustive()
    }
}

// `Server::builder()` needs some codec type to name the impl by; the builder's own type
// parameters are what matter.
impl Server<crate::net::codec::LinesCodec> {
    /// A builder with the default [`Config`]; set at least `addr` (or `unix`), `codec` and
    /// `handler`, then [`bind`](Builder::bind). (Any codec works: this constructor lives on
    /// `Server<LinesCodec>` only so that it can be called without type parameters.)
    pub fn builder() -> Builder<(), ()> {
        Builder {
            cfg: Config::default(),
            addr: None,
            codec: (),
            handler: (),
            signals: Vec::new(),
            ctx: None,
            reuse_port: false,
            tls: Default::default(),
        }
    }
}

impl<C: Codec> Server<C> {
    /// Where the server listens.
    pub fn listen_addr(&self) -> &ListenAddr {
        &self.shared.listen
    }

    /// The TCP address the server listens on (with the real port after binding port 0).
    ///
    /// # Errors
    /// `Unsupported` for a Unix-socket server.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.handle().local_addr()
    }

    /// A handle to shut the server down and read its stats from any goroutine or thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// The server's counters now.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Accepts and serves connections until the server is shut down, on the calling goroutine
    /// (or thread). Like Go's `Serve`, it always returns an error:
    /// [`ServeError::ServerClosed`] after [`ServerHandle::shutdown`] (also when called after
    /// it), or the accept error that retrying cannot fix. Accept errors from exhausted
    /// resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) are retried after a pause of 5 ms
    /// doubling to 1 s, each logged with a warning that names the limit.
    ///
    /// # Errors
    /// Always; see above.
    pub fn serve(mut self) -> Result<(), ServeError> {
        let srv = self.shared.clone();
        let alive = srv.alive.lock().clone();
        let (Some(alive), Some(listener)) = (alive, self.listener.take()) else {
            return Err(ServeError::ServerClosed);
        };
        srv.stats.goroutines.fetch_add(1, Ordering::Relaxed);
        for sig in std::mem::take(&mut self.signals) {
            let h = self.handle();
            let stop = srv.shutdown_rx.clone();
            // Shut down when the signal channel closes (or delivers), unless shutdown came first.
            let watcher = crate::Builder::new().spawn(move || {
                crate::select! {
                    recv(sig) -> _ => { let _ = h.shutdown(); },
                    recv(stop) -> _ => {},
                }
            });
            if let Err(e) = watcher {
                log::warn!(target: "goway::server", "cannot watch the shutdown signal: {e}");
            }
        }
        let stop = srv.shutdown_rx.clone();
        let mut refuse_log = accept::RefuseLog::new();
        let err = accept::accept_loop(
            || listener.accept(),
            || srv.closing.load(Ordering::SeqCst),
            |d| {
                crate::select! {
                    recv(stop) -> _ => false,
                    recv(crate::time::after(d)) -> _ => true,
                }
            },
            |s, peer| {
                accept::start_conn(
                    s,
                    peer,
                    &srv,
                    &self.codec,
                    &self.handler,
                    &alive,
                    &mut refuse_log,
                )
            },
            srv.fd_limit,
        );
        srv.wake.release();
        drop(listener);
        srv.stats.goroutines.fetch_sub(1, Ordering::Relaxed);
        drop(alive);
        Err(err)
    }
}
