//! The accept loop: backoff on resource errors, the connection cap, and starting each
//! connection's goroutines.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::conn::{self, HandlerFn};
use super::error::{self, LimitError, ServeError, errno};
use super::stats::CloseReason;
use super::stream::AnyStream;
use super::{Listener, ServerShared};
use crate::chan::Sender;
use crate::net::PeerAddr;
use crate::net::codec::Codec;

/// First pause after a failed accept (Go's `Serve`: 5 ms, doubling, at most 1 s).
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Go's accept backoff (net/http/server.go `Serve`): 5 ms, doubling to 1 s, reset by a
/// successful accept.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// The pause before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = match self.next {
            None => BACKOFF_MIN,
            Some(d) => (d * 2).min(BACKOFF_MAX),
        };
        self.next = Some(d);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = None;
    }
}

/// What an accept error means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AcceptErr {
    /// One connection failed before we got it (aborted, interrupted): try again at once, as
    /// Go's poller does for ECONNABORTED (internal/poll/fd_unix.go `Accept`).
    Retry,
    /// Out of a resource (descriptors, buffers, memory): pause, then try again.
    Backoff,
    /// Anything else: `serve` returns it.
    Fatal,
}

pub(crate) fn classify(e: &io::Error) -> AcceptErr {
    match e.raw_os_error() {
        Some(errno::ECONNABORTED | errno::EINTR | errno::EPROTO) => AcceptErr::Retry,
        Some(errno::EMFILE | errno::ENFILE | errno::ENOBUFS | errno::ENOMEM) => AcceptErr::Backoff,
        _ => match e.kind() {
            io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => AcceptErr::Retry,
            io::ErrorKind::OutOfMemory => AcceptErr::Backoff,
            _ => AcceptErr::Fatal,
        },
    }
}

/// Accepts until `closing()` is true, passing each connection to `on_conn`. Resource errors
/// pause through `pause` (which returns `false` when the server is shutting down, ending the
/// loop); each one is logged with its delay. Returns `Err(ServerClosed)` on shutdown, or the
/// fatal error.
pub(crate) fn accept_loop<S>(
    mut accept: impl FnMut() -> io::Result<(S, PeerAddr)>,
    closing: impl Fn() -> bool,
    mut pause: impl FnMut(Duration) -> bool,
    mut on_conn: impl FnMut(S, PeerAddr),
    fd_limit: Option<u64>,
) -> ServeError {
    let mut backoff = Backoff::default();
    loop {
        if closing() {
            return ServeError::ServerClosed;
        }
        match accept() {
            Ok((s, peer)) => {
                backoff.reset();
                if closing() {
                    // Shutdown began while we waited: this connection (shutdown's own wake-up
                    // connection, or a client just too late) is closed with the listener, as
                    // the clients still in its backlog are. Not counted as rejected: it was
                    // never offered service.
                    log::debug!(target: "goway::server", "shutting down: closing {peer}, accepted as the listener closed");
                    drop(s);
                    return ServeError::ServerClosed;
                }
                on_conn(s, peer);
            }
            Err(e) => {
                if closing() {
                    return ServeError::ServerClosed;
                }
                match classify(&e) {
                    AcceptErr::Retry => continue,
                    AcceptErr::Backoff => {
                        let d = backoff.next_delay();
                        if error::is_fd_limit(&e) {
                            let limit = LimitError::FileDescriptors {
                                soft_limit: fd_limit,
                            };
                            log::warn!(target: "goway::server", "accept error: {e}; retrying in {d:?}: {limit}");
                        } else {
                            log::warn!(target: "goway::server", "accept error: {e}; retrying in {d:?}");
                        }
                        if !pause(d) {
                            return ServeError::ServerClosed;
                        }
                    }
                    AcceptErr::Fatal => {
                        log::error!(target: "goway::server", "accept error: {e}; server stops");
                        return ServeError::Io(e);
                    }
                }
            }
        }
    }
}

impl Listener {
    pub(crate) fn accept(&self) -> io::Result<(AnyStream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| (AnyStream::Tcp(s), a.into())),
            Listener::Unix(l, _) => l.accept().map(|(s, a)| (AnyStream::Unix(s), a.into())),
        }
    }
}

/// Rate limit for "refusing" warnings: one line per second, with the count since the last.
pub(crate) struct RefuseLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefuseLog {
    pub(crate) fn new() -> Self {
        RefuseLog {
            last: None,
            suppressed: 0,
        }
    }

    pub(crate) fn warn(&mut self, msg: impl FnOnce() -> String) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        let more = std::mem::take(&mut self.suppressed);
        if more > 0 {
            log::warn!(target: "goway::server", "{} (and {more} more refused in the last second)", msg());
        } else {
            log::warn!(target: "goway::server", "{}", msg());
        }
        self.last = Some(now);
    }
}

/// Goroutines an idle connection holds: its handler (the handler reads inline; the writer
/// runs only while it has work, the reader only for handlers that ask for it and for TLS).
pub(crate) const CONN_GOROUTINES: usize = 1;

/// Starts one accepted connection, or refuses it with `overload_reply` (counted in `rejected`)
/// when the server is full or the process is out of goroutine stacks. Runs on the accept
/// goroutine.
pub(crate) fn start_conn<C: Codec>(
    stream: AnyStream,
    peer: PeerAddr,
    srv: &Arc<ServerShared>,
    codec: &C,
    handler: &Arc<HandlerFn<C>>,
    alive: &Sender<()>,
    log: &mut RefuseLog,
) {
    let st = &srv.stats;
    let max = srv.max_connections;
    // A TLS client could not read a plaintext reply: it is just closed.
    let overload = match srv.tls.config {
        None => srv.cfg.overload_reply.as_deref(),
        Some(_) => None,
    };
    // The connection's goroutines, and a writer, must fit under the process's goroutine limit
    // (memory mappings): refused here with the overload reply, not half-started.
    let live = crate::runtime::num_goroutines();
    if live.saturating_add(CONN_GOROUTINES + 1) > crate::runtime::max_goroutines() {
        st.rejected.fetch_add(1, Ordering::Relaxed);
        stream.refuse(overload);
        let limit = LimitError::GoroutineStacks {
            max_map_count: error::max_map_count(),
        };
        log.warn(|| format!("refusing {peer}: {live} goroutines live: {limit}"));
        return;
    }
    if max > 0 && st.active.load(Ordering::Relaxed) >= max as u64 {
        // Counted before the client can see the refusal.
        st.rejected.fetch_add(1, Ordering::Relaxed);
        stream.refuse(overload);
        log.warn(|| {
            format!("max_connections ({max}) reached: refusing {peer}; raise max_connections if the machine can serve more")
        });
        return;
    }
    let tls = match &srv.tls.config {
        None => None,
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                st.rejected.fetch_add(1, Ordering::Relaxed);
                stream.refuse(None);
                log.warn(|| format!("refusing {peer}: cannot start a TLS session: {e}"));
                return;
            }
        },
    };
    // The connection's one descriptor, shared by its goroutines.
    let sock = stream.into_sock();
    if let Some(sp) = &srv.spin {
        // Watched until the descriptor closes (epoll forgets a closed socket by itself).
        sp.add(sock.raw_fd());
    }
    let id = srv.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    st.active.fetch_add(1, Ordering::Relaxed);
    st.accepted.fetch_add(1, Ordering::Relaxed);
    let parts = conn::build(
        id,
        peer.clone(),
        sock,
        codec,
        handler.clone(),
        srv.clone(),
        alive.clone(),
        tls,
    );
    let shared = parts.shared.clone();
    srv.conns.lock().insert(id, shared.clone());
    // A drain that snapshotted the registry before this insert missed us: drain ourselves.
    if srv.closing.load(Ordering::SeqCst) {
        conn::ConnCtl::drain(&*shared);
    }
    let mut hb = crate::Builder::new();
    if let Some(sz) = srv.cfg.handler_stack_size {
        hb = hb.stack_size(sz);
    }
    let handler = parts.handler;
    if let Err(e) = hb.spawn(move || handler.run()) {
        // The handler's task was dropped with its exit guards (a TLS reader sees the abort
        // and ends).
        conn::ConnCtl::abort(&*shared, CloseReason::Refused);
        if e.kind() == io::ErrorKind::InvalidInput {
            // handler_stack_size over the maximum (runtime::StackSizeError): not a mapping limit.
            log.warn(|| format!("refusing {peer}: {e}"));
        } else {
            let limit = LimitError::GoroutineStacks {
                max_map_count: error::max_map_count(),
            };
            log.warn(|| format!("refusing {peer}: {e}: {limit}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    #[test]
    fn backoff_doubles_to_one_second_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u64> = (0..10).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }

    #[test]
    fn emfile_backs_off_without_spinning_then_recovers() {
        // A fake listener: EMFILE ten times, then one connection, then a fatal error.
        let calls = Cell::new(0u32);
        let accept = || {
            calls.set(calls.get() + 1);
            match calls.get() {
                1..=10 => Err(io::Error::from_raw_os_error(errno::EMFILE)),
                11 => Ok(((), PeerAddr::Unix(None))),
                _ => Err(io::Error::from_raw_os_error(22)), // EINVAL: fatal
            }
        };
        let pauses = RefCell::new(Vec::new());
        let served = Cell::new(0);
        let err = accept_loop(
            accept,
            || false,
            |d| {
                pauses.borrow_mut().push(d.as_millis() as u64);
                true
            },
            |(), _| served.set(served.get() + 1),
            Some(64),
        );
        assert!(matches!(err, ServeError::Io(_)));
        assert_eq!(calls.get(), 12, "one accept call per pause, no busy loop");
        assert_eq!(
            *pauses.borrow(),
            [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]
        );
        assert_eq!(served.get(), 1);
    }

    #[test]
    fn aborted_connections_retry_at_once_and_shutdown_ends_a_pause() {
        let calls = Cell::new(0u32);
        let accept = || {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => Err(io::Error::from_raw_os_error(errno::ECONNABORTED)),
                _ => Err::<((), PeerAddr), _>(io::Error::from_raw_os_error(errno::ENOBUFS)),
            }
        };
        let err = accept_loop(accept, || false, |_| false, |(), _| {}, None);
        assert!(matches!(err, ServeError::ServerClosed));
        assert_eq!(calls.get(), 2);
    }
}
