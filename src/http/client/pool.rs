//! The pool of idle keep-alive connections, per host (`scheme://host:port`), and the count
//! of each host's connections for `max_conns_per_host` (Go's `connsPerHost` and
//! `connsPerHostWait`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::conn::PersistConn;
use super::error::{CLIENT_TIMEOUT, ClientError};
use super::transport::{Inner, Transport};
use crate::chan::{self, Deferred, Sender};
use crate::context::Context;

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
    /// Requests that had to wait for a connection because their host had
    /// `max_conns_per_host` of them.
    pub waited: u64,
}

#[derive(Default)]
pub(super) struct Pool {
    /// Per host (`scheme://host:port`), newest last.
    pub(super) idle: HashMap<String, Vec<PersistConn>>,
    pub(super) total: usize,
    pub(super) stats: TransportStats,
    /// Per host with a limit: its connections (dialing, in use or idle).
    conns: HashMap<String, usize>,
    /// Per host: the requests waiting for one of its connections, first come first, each
    /// with its id. Each is woken by one message; a waiter that gives up removes its own
    /// entry, so there is at most one entry per request waiting.
    waiters: HashMap<String, VecDeque<(u64, Sender<()>)>>,
    /// The id of the next waiter.
    next_waiter: u64,
}

/// Wake-ups to send once the pool's lock is released.
pub(super) type Wakes = Vec<Deferred<()>>;

impl Pool {
    /// Wakes the first waiter of `key` still waiting, if any; the wake-up goes into `wakes`,
    /// to be finished after the lock is released.
    fn wake_one(&mut self, key: &str, wakes: &mut Wakes) {
        let Some(q) = self.waiters.get_mut(key) else {
            return;
        };
        while let Some((_, tx)) = q.pop_front() {
            let (r, d) = tx.try_send_deferred(());
            wakes.push(d);
            if r.is_ok() {
                break;
            }
        }
        if q.is_empty() {
            self.waiters.remove(key);
        }
    }
}

fn finish(wakes: Wakes) {
    for d in wakes {
        d.finish();
    }
}

/// One of a host's `max_conns_per_host` connections, held by its [`PersistConn`]: dropping
/// it (the connection is closed, or its dial failed) frees the place for a waiter.
pub(crate) struct ConnSlot {
    inner: Weak<Inner>,
    key: String,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut wakes = Wakes::new();
        {
            let mut p = inner.pool.lock();
            if let Some(n) = p.conns.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    p.conns.remove(&self.key);
                }
            }
            p.wake_one(&self.key, &mut wakes);
        }
        finish(wakes);
    }
}

/// What [`Transport::acquire`] got.
pub(super) enum Acquired {
    /// An idle keep-alive connection from the pool.
    Idle(PersistConn),
    /// A place to dial a connection in (`None`: the transport has no per-host limit).
    Slot(Option<ConnSlot>),
}

/// What one look at the pool gave: a connection or slot, or a place in the queue (its id
/// and the receiver of its wake-up).
enum Step {
    Got(Acquired),
    Wait(u64, chan::Receiver<()>),
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
        // Dropped outside the lock: their slots take it.
        for pc in idle.into_values().flatten() {
            pc.conn.close();
        }
    }

    /// An idle connection to `key`, or else a place for a new one, waiting while the host
    /// has `max_conns_per_host` until one of them comes back to the pool or closes, the
    /// request's context ends, or `deadline` (the client's timeout) passes. The look for an
    /// idle connection and the reservation are one step under the pool's lock, so that a
    /// connection pooled meanwhile is never missed.
    pub(super) fn acquire(
        &self,
        key: &str,
        ctx: &Context,
        deadline: Option<Instant>,
    ) -> Result<Acquired, ClientError> {
        let mut timer = None;
        loop {
            let (step, expired) = self.take_or_queue(key);
            for pc in expired {
                pc.conn.close();
            }
            let (id, rx) = match step {
                Step::Got(a) => return Ok(a),
                Step::Wait(id, rx) => (id, rx),
            };
            let timer = timer.get_or_insert_with(|| match deadline {
                Some(d) => crate::time::after(d.saturating_duration_since(Instant::now())),
                None => chan::never(),
            });
            let done = ctx.done();
            let err = crate::select! {
                // Woken: look again, with no check of the context in between (a connection
                // taken now is handed on when it is dropped).
                recv(rx) -> _ => continue,
                recv(done) -> _ => {
                    ClientError::Canceled(ctx.err().unwrap_or(crate::context::ContextError::Canceled))
                },
                recv(*timer) -> _ => ClientError::Timeout(CLIENT_TIMEOUT),
            };
            // Giving up: leave the queue, and if woken meanwhile, hand the wake-up on. Under
            // the lock, which every wake-up takes, so that none reaches the receiver after
            // this look.
            let mut wakes = Wakes::new();
            {
                let mut p = self.inner.pool.lock();
                if let Some(q) = p.waiters.get_mut(key) {
                    q.retain(|(i, _)| *i != id);
                    if q.is_empty() {
                        p.waiters.remove(key);
                    }
                }
                if rx.try_recv().is_ok() {
                    p.wake_one(key, &mut wakes);
                }
            }
            drop(rx);
            finish(wakes);
            return Err(err);
        }
    }

    /// Under the pool's lock: an idle connection to `key` if there is one, else a slot if
    /// the host has room, else a place in its queue of waiters. Also returns the expired
    /// idle connections met, to close after the lock.
    fn take_or_queue(&self, key: &str) -> (Step, Vec<PersistConn>) {
        let cfg = &self.inner.cfg;
        let mut expired = Vec::new();
        let mut p = self.inner.pool.lock();
        if !cfg.disable_keep_alives {
            let mut got = None;
            let mut taken = 0;
            if let Some(list) = p.idle.get_mut(key) {
                while let Some(pc) = list.pop() {
                    taken += 1;
                    let old = cfg
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
            if let Some(pc) = got {
                p.stats.reused += 1;
                return (Step::Got(Acquired::Idle(pc)), expired);
            }
        }
        let max = cfg.max_conns_per_host;
        if max == 0 {
            return (Step::Got(Acquired::Slot(None)), expired);
        }
        // An expired connection closed after this frees its slot and wakes the queue.
        let n = p.conns.entry(key.to_owned()).or_insert(0);
        if *n < max {
            *n += 1;
            let slot = ConnSlot {
                inner: Arc::downgrade(&self.inner),
                key: key.to_owned(),
            };
            return (Step::Got(Acquired::Slot(Some(slot))), expired);
        }
        let (tx, rx) = chan::bounded(1);
        let id = p.next_waiter;
        p.next_waiter += 1;
        p.waiters
            .entry(key.to_owned())
            .or_default()
            .push_back((id, tx));
        p.stats.waited += 1;
        (Step::Wait(id, rx), expired)
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
        let mut wakes = Wakes::new();
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
                if cfg.max_conns_per_host > 0 {
                    p.wake_one(&key, &mut wakes);
                }
                p.idle.entry(key).or_default().push(pc);
                p.total += 1;
            }
        }
        finish(wakes);
        if let Some(pc) = evicted {
            pc.conn.close();
        }
    }
}
