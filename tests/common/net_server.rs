//! A framed server (`goway::net::Server`) run in the test process, stopped gracefully and
//! checked to have released every connection and goroutine.

use std::net::SocketAddr;

use goway::net::codec::Codec;
use goway::net::server::{ServeError, Stats};
use goway::net::{Server, ServerHandle};
use goway::runtime::JoinHandle;

use super::WATCHDOG;

/// A server serving in a goroutine.
pub struct Running {
    pub handle: ServerHandle,
    /// The TCP address (`0.0.0.0:0` for a server on a Unix socket).
    pub addr: SocketAddr,
    /// `serve`'s goroutine, for a test that ends the server another way than [`Running::stop`].
    pub serving: JoinHandle<Result<(), ServeError>>,
}

/// Serves the bound `srv` in a goroutine.
pub fn run<C: Codec>(srv: Server<C>) -> Running {
    let handle = srv.handle();
    let addr = srv
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let serving = goway::go!(move || srv.serve());
    Running {
        handle,
        addr,
        serving,
    }
}

impl Running {
    /// Waits (bounded by the watchdog) until the server has counted `n` closed connections;
    /// returns its stats then.
    #[allow(dead_code)]
    pub fn closed_at_least(&self, n: u64) -> Stats {
        super::wait::wait_until("connections closed", WATCHDOG, || {
            self.handle.stats().closed >= n
        });
        self.handle.stats()
    }

    /// Waits (bounded by the watchdog) until every connection is closed and its goroutines
    /// gone, the accept loop alone running; returns its stats then.
    #[allow(dead_code)]
    pub fn settled(&self) -> Stats {
        super::wait::wait_until(
            "every connection closed, its goroutines gone",
            WATCHDOG,
            || {
                let st = self.handle.stats();
                st.active == 0 && st.accepted == st.closed && st.goroutines == 1
            },
        );
        self.handle.stats()
    }

    /// Shuts the server down gracefully, then checks it as [`Running::finish`] does.
    pub fn stop(self) -> Stats {
        self.handle.shutdown().expect("graceful shutdown");
        self.finish()
    }

    /// For a server already shut down: `serve` returned `ServerClosed`, every goroutine ended,
    /// every gauge is back at its baseline. Returns the final stats.
    pub fn finish(self) -> Stats {
        let r = super::join(self.serving);
        assert!(matches!(r, Err(ServeError::ServerClosed)), "{r:?}");
        assert!(
            self.handle.wait_closed(WATCHDOG),
            "goroutines still running"
        );
        let s = self.handle.stats();
        assert_eq!((s.active, s.goroutines), (0, 0), "{s:?}");
        assert_eq!(s.accepted, s.closed, "{s:?}");
        s
    }
}
