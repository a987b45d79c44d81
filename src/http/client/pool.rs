//! The pool of idle keep-alive connections, per host (`scheme://host:port`).

use std::collections::HashMap;
use std::time::Instant;

use super::conn::PersistConn;
use super::transport::Transport;

/// Counters of a transport, for tests and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportStats {
    /// Connections dialled.
    pub dials: u64,
    /// Requests sent on a kept-alive connection taken from the pool.
    pub reused: u64,
    /// Requests sent again on another connection after a kept-alive one turned out closed.
    pub retries: u64,
    /// Idle connections now in the pool.
    pub idle: usize,
}

#[derive(Default)]
pub(super) struct Pool {
    /// Per host (`scheme://host:port`), newest last.
    pub(super) idle: HashMap<String, Vec<PersistConn>>,
    pub(super) total: usize,
    pub(super) stats: TransportStats,
}

impl Transport {
    /// The counters.
    pub fn stats(&self) -> TransportStats {
        let p = self.inner.pool.lock();
        TransportStats {
            idle: p.total,
            ..p.stats
        }
    }

    /// Closes every idle connection (Go's `CloseIdleConnections`).
    pub fn close_idle_connections(&self) {
        let idle = {
            let mut p = self.inner.pool.lock();
            p.total = 0;
            std::mem::take(&mut p.idle)
        };
        for pc in idle.into_values().flatten() {
            pc.conn.close();
        }
    }

    pub(super) fn take_idle(&self, key: &str) -> Option<PersistConn> {
        if self.inner.cfg.disable_keep_alives {
            return None;
        }
        let mut expired = Vec::new();
        let got = {
            let mut p = self.inner.pool.lock();
            let mut got = None;
            let mut taken = 0;
            if let Some(list) = p.idle.get_mut(key) {
                while let Some(pc) = list.pop() {
                    taken += 1;
                    let old = self
                        .inner
                        .cfg
                        .idle_conn_timeout
                        .is_some_and(|t| pc.idle_since.elapsed() > t);
                    if old {
                        expired.push(pc);
                    } else {
                        got = Some(pc);
                        break;
                    }
                }
                if list.is_empty() {
                    p.idle.remove(key);
                }
            }
            p.total -= taken;
            if got.is_some() {
                p.stats.reused += 1;
            }
            got
        };
        for pc in expired {
            pc.conn.close();
        }
        got
    }

    /// Puts a connection whose response was read to its end back in the pool, or closes
    /// it if the pool is full.
    pub(crate) fn put_idle(&self, key: String, mut pc: PersistConn) {
        let cfg = &self.inner.cfg;
        if cfg.disable_keep_alives || !pc.io.buffered().is_empty() {
            // Bytes after the response: the server is confused; do not reuse.
            pc.conn.close();
            return;
        }
        pc.conn.set_read_deadline(None);
        pc.conn.set_write_deadline(None);
        pc.io.trim();
        pc.idle_since = Instant::now();
        let mut evicted = None;
        {
            let mut p = self.inner.pool.lock();
            let per_host = p.idle.get(&key).map_or(0, Vec::len);
            if per_host >= cfg.max_idle_conns_per_host {
                evicted = Some(pc);
            } else {
                if cfg.max_idle_conns > 0 && p.total >= cfg.max_idle_conns {
                    // Evict the longest idle connection of any host.
                    let oldest = p
                        .idle
                        .iter()
                        .filter_map(|(k, v)| v.first().map(|c| (k.clone(), c.idle_since)))
                        .min_by_key(|(_, t)| *t)
                        .map(|(k, _)| k);
                    if let Some(k) = oldest {
                        if let Some(list) = p.idle.get_mut(&k) {
                            evicted = Some(list.remove(0));
                            if list.is_empty() {
                                p.idle.remove(&k);
                            }
                            p.total -= 1;
                        }
                    }
                }
                p.idle.entry(key).or_default().push(pc);
                p.total += 1;
            }
        }
        if let Some(pc) = evicted {
            pc.conn.close();
        }
    }
}
