//! An HTTP server run in the test process on a loopback port, stopped gracefully and checked
//! to have closed every connection.

use std::net::SocketAddr;
use std::time::Duration;

use goway::http::{Builder, ServeError, ServerHandle};
use goway::runtime::JoinHandle;

use super::WATCHDOG;

/// A server serving in a goroutine.
pub struct Running {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    serving: JoinHandle<Result<(), ServeError>>,
}

/// Binds `b` to a free loopback port and serves it in a goroutine.
pub fn run(b: Builder) -> Running {
    let srv = b.addr("127.0.0.1:0").bind().expect("bind");
    let handle = srv.handle();
    let addr = srv.local_addr().expect("an HTTP server has a TCP address");
    let serving = goway::go!(move || srv.serve());
    Running {
        handle,
        addr,
        serving,
    }
}

impl Running {
    /// Shuts the server down gracefully; it must end with `ServerClosed` and no connection.
    pub fn stop(self) {
        self.handle
            .shutdown_timeout(Duration::from_secs(5))
            .expect("graceful shutdown");
        let r = super::join(self.serving);
        assert!(matches!(r, Err(ServeError::ServerClosed)), "{r:?}");
        assert!(self.handle.wait_closed(WATCHDOG), "connections still open");
        assert_eq!(self.handle.stats().active, 0);
    }
}
