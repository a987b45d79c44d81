//! Starting a connection: the capacity check (a 503 over `max_connections`), the table
//! entry, and the connection's goroutine.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::Shared;
use super::table::{AtomicConnState, ConnEntry, ConnGuard, ConnState};
use crate::chan::Sender;
use crate::http::conn;
use crate::http::io::HttpStream;
use crate::net::TcpStream;
use crate::net::server::LimitError;
use crate::net::server::accept::RefuseLog;
use crate::net::server::error as neterr;
use crate::tls::TlsStream;

/// The overload reply: what a client over `max_connections` gets before the connection closes.
const OVERLOAD_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n";

/// Answers 503 and closes, without blocking the accept loop: the socket is fresh, so the
/// reply fits its send buffer. What the client already sent is read first (non-blocking), so
/// that closing does not reset the connection before it reads the reply.
fn refuse_overloaded(stream: TcpStream) {
    let mut sys = stream.as_may().inner();
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match sys.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = sys.write(OVERLOAD_RESPONSE);
    let _ = sys.shutdown(Shutdown::Write);
}

pub(super) fn start_conn(
    stream: TcpStream,
    peer: SocketAddr,
    srv: &Arc<Shared>,
    alive: &Sender<()>,
    log: &mut RefuseLog,
) {
    let st = &srv.stats;
    let max = srv.max_connections;
    if max > 0 && st.active.load(Ordering::Relaxed) >= max as u64 {
        st.rejected.fetch_add(1, Ordering::Relaxed);
        if srv.tls.is_none() {
            refuse_overloaded(stream);
        }
        log.warn(|| format!("http: max_connections ({max}) reached: refusing {peer} with 503"));
        return;
    }
    let control = match stream.control() {
        Ok(c) => c,
        Err(e) => {
            st.rejected.fetch_add(1, Ordering::Relaxed);
            if neterr::is_fd_limit(&e) {
                let limit = LimitError::FileDescriptors {
                    soft_limit: srv.fd_limit,
                };
                log.warn(|| format!("http: refusing {peer}: {e}: {limit}"));
            } else {
                log.warn(|| format!("http: refusing {peer}: {e}"));
            }
            return;
        }
    };
    let stream = match &srv.tls {
        None => HttpStream::Plain(stream),
        Some((cfg, timeout)) => match TlsStream::server(stream, cfg) {
            Ok(s) => {
                s.set_handshake_deadline(timeout.and_then(|d| Instant::now().checked_add(d)));
                HttpStream::Tls(Box::new(s))
            }
            Err(e) => {
                st.rejected.fetch_add(1, Ordering::Relaxed);
                log.warn(|| format!("http: refusing {peer}: {e}"));
                return;
            }
        },
    };
    let id = srv.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let entry = Arc::new(ConnEntry {
        state: AtomicConnState::new(ConnState::New),
        idle_since: AtomicU64::new(0),
        since: Instant::now(),
        control,
    });
    srv.conns.lock().insert(id, entry.clone());
    st.active.fetch_add(1, Ordering::Relaxed);
    st.accepted.fetch_add(1, Ordering::Relaxed);
    let guard = ConnGuard {
        srv: srv.clone(),
        id,
        _alive: alive.clone(),
    };
    let mut b = crate::Builder::new();
    if srv.cfg.handler_stack_size > 0 {
        b = b.stack_size(srv.cfg.handler_stack_size);
    }
    let spawned = b.spawn(move || {
        let guard = guard;
        #[cfg(feature = "tracing")]
        let _span = crate::runtime::enter_span(tracing::info_span!(target: "goway::http", "http_conn", server = %guard.srv.addr, peer = %peer, conn_id = guard.id));
        conn::serve(stream, peer, guard.id, &guard.srv, &entry);
    });
    if let Err(e) = spawned {
        // The closure (with the guard) was dropped: the registry is clean again.
        st.rejected.fetch_add(1, Ordering::Relaxed);
        st.accepted.fetch_sub(1, Ordering::Relaxed);
        if e.kind() == io::ErrorKind::InvalidInput {
            // handler_stack_size over the maximum (runtime::StackSizeError): not a mapping limit.
            log.warn(|| format!("http: refusing {peer}: {e}"));
        } else {
            let limit = LimitError::GoroutineStacks {
                max_map_count: neterr::max_map_count(),
            };
            log.warn(|| format!("http: refusing {peer}: {e}: {limit}"));
        }
    }
}
