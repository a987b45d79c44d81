//! The server's counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// A server's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections refused (over `max_connections`, or out of descriptors or stacks).
    pub rejected: u64,
    /// Connections open now.
    pub active: u64,
    /// Requests whose head was read (including ones refused with 413).
    pub requests: u64,
    /// Bytes of request heads the parser examined, counting every pass over them: about
    /// twice the bytes of heads received (once while looking for their end, however they
    /// trickle in, once to parse them). A measure of parsing work, for tests and monitoring.
    pub head_bytes_scanned: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) head_bytes_scanned: AtomicU64,
}

impl StatsCell {
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            head_bytes_scanned: self.head_bytes_scanned.load(Ordering::Relaxed),
        }
    }
}

#[cfg(feature = "metrics")]
impl crate::metrics::ServerMetrics for super::ServerHandle {
    fn sample(&self) -> crate::metrics::ServerSample {
        let s = self.stats();
        crate::metrics::ServerSample {
            active: s.active,
            accepted: s.accepted,
            rejected: s.rejected,
            requests: Some(s.requests),
            head_bytes_scanned: Some(s.head_bytes_scanned),
            ..Default::default()
        }
    }
}
