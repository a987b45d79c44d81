//! The store: a map sharded behind mutexes, each shard keeping its keys' deadlines in order
//! for the sweeper.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;
// The store's lock. A shard is locked only for a hash-map operation and a copy of one value:
// no I/O, no channel operation, nothing that parks, and no drop of a large value (those are
// dropped after unlocking). With 64 shards and one or two worker threads, waiting for a
// shard is rare and lasts a few hundred nanoseconds, so parking_lot's mutex (one CAS when
// free, a brief spin otherwise) is the right tool; goway::sync::Mutex would park the
// goroutine instead, which costs more than the whole critical section.
use parking_lot::{Mutex, MutexGuard};

const SHARDS: usize = 64;
/// Most expired keys one sweep removes from a shard per lock.
const SWEEP_BATCH: usize = 64;

/// Milliseconds since the Unix epoch (Redis's `mstime()`); expiry times use the same clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `now_ms()` read at most once per command, and only if a key with a deadline is met.
pub(crate) struct Clock(pub(crate) Option<i64>);

impl Clock {
    pub(crate) fn get(&mut self) -> i64 {
        *self.0.get_or_insert_with(now_ms)
    }
}

pub(crate) struct Entry {
    pub(crate) value: Vec<u8>,
    /// Deadline in `now_ms()` milliseconds; 0 for none.
    pub(crate) expires: i64,
}

#[derive(Default)]
pub(crate) struct Shard {
    map: HashMap<Vec<u8>, Entry>,
    /// `(deadline, key)` of every key with a deadline, soonest first, for the sweeper.
    expiring: BTreeSet<(i64, Vec<u8>)>,
}

impl Shard {
    /// The live entry for `key`, for reading: one hash lookup. An entry past its deadline
    /// reads as missing and is left for the sweeper (or the next write) to remove.
    pub(crate) fn peek(&mut self, key: &[u8], clock: &mut Clock) -> Option<&Entry> {
        match self.map.get(key) {
            Some(e) if e.expires != 0 && e.expires <= clock.get() => None,
            other => other,
        }
    }

    /// The live entry for `key`, for writing: an entry past its deadline is removed first,
    /// so a write starts from a missing key (no stale deadline kept).
    pub(crate) fn live(&mut self, key: &[u8], clock: &mut Clock) -> Option<&mut Entry> {
        if self.expiring.is_empty() {
            // No key of this shard has a deadline: one lookup.
            return self.map.get_mut(key);
        }
        let expired = match self.map.get(key) {
            None => return None,
            Some(e) => e.expires != 0 && e.expires <= clock.get(),
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.expires != 0 {
            self.expiring.remove(&(e.expires, key.to_vec()));
        }
        Some(e)
    }

    /// Stores `value` under `key`. `expires`: `Some(deadline or 0)` replaces the deadline,
    /// `None` keeps the current one (KEEPTTL, INCR). Reuses the old value's buffer.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8], expires: Option<i64>) {
        match self.map.get_mut(key) {
            Some(e) => {
                e.value.clear();
                e.value.extend_from_slice(value);
                if let Some(t) = expires {
                    let old = std::mem::replace(&mut e.expires, t);
                    self.retime(key, old, t);
                }
            }
            None => {
                let t = expires.unwrap_or(0);
                self.map.insert(
                    key.to_vec(),
                    Entry {
                        value: value.to_vec(),
                        expires: t,
                    },
                );
                self.retime(key, 0, t);
            }
        }
    }

    /// Sets the deadline of an existing key.
    pub(crate) fn set_expiry(&mut self, key: &[u8], t: i64) {
        if let Some(e) = self.map.get_mut(key) {
            let old = std::mem::replace(&mut e.expires, t);
            self.retime(key, old, t);
        }
    }

    fn retime(&mut self, key: &[u8], old: i64, new: i64) {
        if old == new {
            return;
        }
        if old != 0 {
            self.expiring.remove(&(old, key.to_vec()));
        }
        if new != 0 {
            self.expiring.insert((new, key.to_vec()));
        }
    }
}

pub(crate) struct Db {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Seeds the shard choice (per process, so clients cannot easily aim at one shard).
    seed: u64,
}

impl Db {
    pub(crate) fn new() -> Self {
        Db {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            seed: RandomState::new().hash_one(0x6b76u64),
        }
    }

    /// FxHash's step (a rotate, xor and multiply per 8 bytes) from a per-process seed: much
    /// cheaper than the maps' SipHash, and the maps keep SipHash against collision floods.
    pub(crate) fn shard_of(&self, key: &[u8]) -> usize {
        let mut h = self.seed;
        let mut chunks = key.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        let mut w = [0u8; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ key.len() as u64)
            .wrapping_mul(0x517c_c1b7_2722_0a95);
        (h >> 32) as usize % SHARDS
    }

    pub(crate) fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Locks the shards of `keys` in index order (so two multi-key commands cannot deadlock)
    /// and returns the guards by shard index.
    pub(crate) fn lock_many<'a, 'k>(
        &'a self,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Vec<(usize, MutexGuard<'a, Shard>)> {
        let mut idx: Vec<usize> = keys.map(|k| self.shard_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| (i, self.shards[i].lock()))
            .collect()
    }

    /// Removes expired keys, a bounded batch per lock; returns how many.
    pub(crate) fn sweep(&self) -> usize {
        let mut total = 0;
        for s in self.shards.iter() {
            loop {
                let now = now_ms();
                let mut dead = Vec::new();
                {
                    let mut g = s.lock();
                    while dead.len() < SWEEP_BATCH {
                        let Some((t, _)) = g.expiring.first() else {
                            break;
                        };
                        if *t > now {
                            break;
                        }
                        let Some((_, key)) = g.expiring.pop_first() else {
                            break;
                        };
                        if let Some(e) = g.map.remove(&key) {
                            dead.push(e);
                        }
                    }
                }
                let n = dead.len();
                total += n;
                // `dead` is dropped here, outside the lock.
                drop(dead);
                if n < SWEEP_BATCH {
                    break;
                }
            }
        }
        total
    }

    pub(crate) fn dbsize(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(k, e), s| {
            let g = s.lock();
            (k + g.map.len(), e + g.expiring.len())
        })
    }

    pub(crate) fn flush(&self) {
        for s in self.shards.iter() {
            let old = std::mem::take(&mut *s.lock());
            drop(old); // outside the lock
        }
    }
}
