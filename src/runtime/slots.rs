//! The table of goroutine stacks: a [`Slot`] per coroutine goway started, holding its stack's
//! bounds and the identity of the goroutine running on it, read by the stack overflow handler
//! (`overflow`, in a signal handler: atomics only), the blocked-worker watchdog and the
//! goroutine dump.
//!
//! Each coroutine takes a slot once (its spawner sets one aside on its own stack, since the new
//! coroutine's stack may be a single page), records its stack's bounds there (found by
//! `stack::enter`), and each goroutine it runs writes its identity into the slot as it starts
//! (spawn site, the first bytes of its name, its id if it has one) and bumps the slot's
//! sequence number as it starts and ends: a few plain stores into a cache line only that
//! coroutine writes; no lock, no shared counter. The table is a list of chunks that are never
//! freed, so readers walk it with atomic loads only.
//!
//! The blocked-worker watchdog (`watchdog`) reads the slots from its own thread: each slot
//! records may's key for its coroutine, which may shows for the coroutine each worker runs, and
//! the sequence number makes a torn read detectable.
//!
//! Goroutine and thread ids are handed out here too ([`next_id`]): with the registry off, a
//! goroutine is given one only when a report names it.

use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};

use parking_lot::Mutex;

use super::stack::Bounds;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new goroutine or thread id (the registry's, and those given on first report).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Bytes of a goroutine's name kept in its slot (the reports print them, then `...`).
const NAME_BYTES: usize = 48;
const NAME_WORDS: usize = NAME_BYTES / 8;

/// One coroutine stack goway started, and the goroutine running on it: what the overflow
/// handler and the blocked-worker watchdog report. Cache lines of its own: the goroutine fields are written on every
/// goroutine start and end, by whichever worker runs the stack's coroutine.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct Slot {
    /// First byte of the guard page; 0 while the slot is free or the bounds are unknown.
    pub(crate) guard: AtomicUsize,
    /// Lowest usable byte.
    pub(crate) bottom: AtomicUsize,
    /// One past the highest byte.
    pub(crate) top: AtomicUsize,
    /// may's key for the coroutine on this stack (`Coroutine::running_key`); 0 while free.
    key: AtomicUsize,
    /// Even while a goroutine runs on the stack, odd between goroutines; a sequence lock for
    /// the fields below (each goroutine's start and end add one: the values are never reused),
    /// which the coroutine on this stack alone writes, each goroutine's start before it makes
    /// `seq` even.
    seq: AtomicU64,
    /// The goroutine's id; 0 if it has none yet (with the registry off, ids are given on
    /// first report: see [`Slot::goroutine`]).
    id: AtomicU64,
    /// Its spawn site; null if none.
    site: AtomicPtr<Location<'static>>,
    /// The length of its name plus one; 0 if it has none.
    name_len: AtomicUsize,
    /// The name's first `NAME_BYTES` bytes.
    name: [AtomicU64; NAME_WORDS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            guard: AtomicUsize::new(0),
            bottom: AtomicUsize::new(0),
            top: AtomicUsize::new(0),
            key: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
            id: AtomicU64::new(0),
            site: AtomicPtr::new(ptr::null_mut()),
            name_len: AtomicUsize::new(0),
            name: [const { AtomicU64::new(0) }; NAME_WORDS],
        }
    }

    /// The goroutine running on this stack, read on the thread that runs it (the handler) or,
    /// racing with its start and end, on another (`None` then also when the read was torn).
    /// One without an id is given one now (an atomic fetch-add and compare-exchange:
    /// async-signal-safe).
    pub(crate) fn goroutine(&self) -> Option<Goroutine> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 1 == 1 {
            return None;
        }
        let mut id = self.id.load(Ordering::Relaxed);
        let site = self.site.load(Ordering::Relaxed);
        let len = self.name_len.load(Ordering::Relaxed);
        let mut name = [0u8; NAME_BYTES];
        for (w, chunk) in self.name.iter().zip(name.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != seq {
            return None;
        }
        if id == 0 {
            // Nobody has seen an id for this goroutine: give it one. Should it end meanwhile,
            // the id goes to whichever goroutine runs next here, unseen (ids are only unique).
            let new = next_id();
            id = match self
                .id
                .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => new,
                Err(other) => other,
            };
            if self.seq.load(Ordering::Acquire) != seq {
                return None;
            }
        }
        Some(Goroutine {
            id,
            // SAFETY: a non-null site came from a `&'static Location`.
            site: unsafe { site.cast_const().as_ref() },
            name_len: len.checked_sub(1),
            name,
        })
    }
}

/// A copy of a goroutine's identity, as a [`Slot`] holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Goroutine {
    pub(crate) id: u64,
    pub(crate) site: Option<&'static Location<'static>>,
    /// The name's full length, if it has one.
    name_len: Option<usize>,
    name: [u8; NAME_BYTES],
}

impl Goroutine {
    /// The name's first bytes (cut to a character boundary), and whether it was cut.
    pub(crate) fn name(&self) -> Option<(&str, bool)> {
        let len = self.name_len?;
        let kept = &self.name[..len.min(NAME_BYTES)];
        // A cut through a character keeps the whole characters before it.
        let s = match std::str::from_utf8(kept) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&kept[..e.valid_up_to()]).unwrap_or_default(),
        };
        Some((s, len > s.len()))
    }
}

/// Slots are made this many at a time.
const CHUNK: usize = 256;

struct Chunk {
    slots: Box<[Slot]>,
    /// The chunk made before this one; set once, before the chunk is published.
    next: *const Chunk,
}

/// The newest chunk; chunks are never freed.
static CHUNKS: AtomicPtr<Chunk> = AtomicPtr::new(ptr::null_mut());
/// Slots not in use. Only coroutine starts and ends take this lock, never the handler.
static FREE: Mutex<Free> = Mutex::new(Free {
    slots: Vec::new(),
    total: 0,
});

struct Free {
    /// Has room for every slot made, so that giving one back never allocates.
    slots: Vec<&'static Slot>,
    total: usize,
}

/// Page size, set when the handler is installed.
pub(crate) static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// A coroutine's slot, handed to each goroutine it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackRef(&'static Slot);

impl StackRef {
    /// Shows the goroutine `id` (0: none yet) as running on this stack until the guard drops:
    /// a few plain stores into the slot, which only the coroutine on this stack writes.
    #[inline]
    pub(crate) fn enter(self, id: u64, name: Option<&str>, site: Option<Site>) -> Entered {
        let s = self.0;
        let seq = s.seq.load(Ordering::Relaxed);
        // After the previous goroutine's end made `seq` odd, for the sequence lock's readers.
        fence(Ordering::Release);
        s.id.store(id, Ordering::Relaxed);
        s.site.store(
            site.map_or(ptr::null_mut(), |l| ptr::from_ref(l).cast_mut()),
            Ordering::Relaxed,
        );
        match name {
            None => s.name_len.store(0, Ordering::Relaxed),
            Some(n) => {
                s.name_len.store(n.len() + 1, Ordering::Relaxed);
                let mut bytes = [0u8; NAME_BYTES];
                let k = n.len().min(NAME_BYTES);
                bytes[..k].copy_from_slice(&n.as_bytes()[..k]);
                for (w, chunk) in s.name.iter().zip(bytes.chunks_exact(8)).take(k.div_ceil(8)) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    w.store(u64::from_ne_bytes(word), Ordering::Relaxed);
                }
            }
        }
        s.seq.store(seq.wrapping_add(1), Ordering::Release);
        Entered(s)
    }

    /// The slot, for the goroutine dump.
    pub(crate) fn slot(self) -> &'static Slot {
        self.0
    }
}

/// A spawn site.
type Site = &'static Location<'static>;

/// Shows a goroutine as running on its stack; see [`StackRef::enter`].
#[derive(Debug)]
pub(crate) struct Entered(&'static Slot);

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        let seq = &self.0.seq;
        seq.store(
            seq.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
    }
}

/// A slot set aside for a coroutine by its spawner, which takes the lock (and makes new slots)
/// on its own stack rather than on the new one, possibly a one-page stack. Dropping it gives
/// the slot back.
#[derive(Debug)]
pub(crate) struct Reserved(&'static Slot);

/// Sets a slot aside for a coroutine about to be spawned.
pub(crate) fn reserve() -> Reserved {
    let mut free = FREE.lock();
    if let Some(s) = free.slots.pop() {
        return Reserved(s);
    }
    let slots: Box<[Slot]> = (0..CHUNK).map(|_| Slot::new()).collect();
    let chunk: &'static Chunk = Box::leak(Box::new(Chunk {
        slots,
        next: CHUNKS.load(Ordering::Relaxed),
    }));
    // Writers hold `FREE`, so nobody else publishes meanwhile.
    CHUNKS.store(ptr::from_ref(chunk).cast_mut(), Ordering::Release);
    free.total += CHUNK;
    let room = free.total - free.slots.len();
    free.slots.reserve(room);
    free.slots.extend(chunk.slots[1..].iter());
    Reserved(&chunk.slots[0])
}

impl Reserved {
    /// Takes the slot for the running coroutine: records may's key for it (for the watchdog)
    /// and its stack's bounds (found by `stack::enter`; without them the handler does not know
    /// the stack).
    pub(crate) fn claim(self, b: Option<&Bounds>) -> Claim {
        let slot = self.0;
        // The slot passes to the claim (no return to `FREE`).
        std::mem::forget(self);
        let key = may::coroutine::Coroutine::running_key().unwrap_or(0);
        slot.key.store(key, Ordering::Release);
        if let Some(b) = b {
            let page = PAGE.load(Ordering::Relaxed);
            slot.bottom.store(b.bottom, Ordering::Relaxed);
            slot.top.store(b.top, Ordering::Relaxed);
            slot.guard
                .store(b.bottom.saturating_sub(page), Ordering::Release);
        }
        Claim(slot)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        FREE.lock().slots.push(self.0);
    }
}

/// A slot in use; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct Claim(&'static Slot);

impl Claim {
    pub(crate) fn stack(&self) -> StackRef {
        StackRef(self.0)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let s = self.0;
        s.guard.store(0, Ordering::Relaxed);
        s.key.store(0, Ordering::Release);
        // No allocation: `slots` has room for every slot.
        FREE.lock().slots.push(s);
    }
}

/// The goroutine that the coroutine with may's key `key` runs, read from another thread (the
/// watchdog): `None` if no coroutine goway started has that key, `Some(None)` if it runs no
/// goroutine (or the read kept racing with goroutine starts and ends).
pub(crate) fn goroutine_of(key: usize) -> Option<Option<Goroutine>> {
    if key == 0 {
        return None;
    }
    let mut c = CHUNKS.load(Ordering::Acquire).cast_const();
    // SAFETY: chunks are leaked when made and published complete.
    while let Some(chunk) = unsafe { c.as_ref() } {
        for s in chunk.slots.iter() {
            if s.key.load(Ordering::Acquire) != key {
                continue;
            }
            let g = (0..4).find_map(|_| s.goroutine());
            // The slot may have changed hands meanwhile.
            return (s.key.load(Ordering::Acquire) == key).then_some(g);
        }
        c = chunk.next;
    }
    None
}

/// A stack's size and how deep it has been used, for the goroutine dump: `(bytes, high)` where
/// `high` counts the resident pages contiguous from the top (`mincore`), so it is the deepest
/// any goroutine on this stack has reached (carriers are reused), to the page; `None` if the
/// stack could not be read.
pub(crate) fn usage(slot: &Slot) -> Option<(usize, Option<usize>)> {
    if slot.guard.load(Ordering::Acquire) == 0 {
        return None;
    }
    let bottom = slot.bottom.load(Ordering::Relaxed);
    let top = slot.top.load(Ordering::Relaxed);
    let page = PAGE.load(Ordering::Relaxed);
    let bytes = top.checked_sub(bottom)?;
    if bytes == 0 || bottom % page != 0 {
        return None;
    }
    let pages = bytes / page;
    let mut vec = vec![0u8; pages];
    // SAFETY: `bottom..top` is page-aligned and `vec` holds one byte per page; mincore only
    // reports on the range (ENOMEM if the stack was unmapped meanwhile).
    let r = unsafe { libc::mincore(bottom as *mut libc::c_void, bytes, vec.as_mut_ptr()) };
    let high = (r == 0).then(|| vec.iter().rev().take_while(|&&v| v & 1 != 0).count() * page);
    Some((bytes, high))
}

/// Calls `f` on every slot in use, newest chunk first, until it returns `true`.
pub(crate) fn find_slot(mut f: impl FnMut(&Slot, usize) -> bool) -> Option<&'static Slot> {
    let mut c = CHUNKS.load(Ordering::Acquire).cast_const();
    // SAFETY: chunks are leaked when made and published complete (Release above), and a
    // chunk's `next` never changes after it is published.
    while let Some(chunk) = unsafe { c.as_ref() } {
        for s in chunk.slots.iter() {
            let guard = s.guard.load(Ordering::Acquire);
            if guard != 0 && f(s, guard) {
                return Some(s);
            }
        }
        c = chunk.next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Slot, StackRef};

    #[test]
    fn a_slot_names_its_goroutine_while_it_runs() {
        let slot: &'static Slot = Box::leak(Box::new(Slot::new()));
        assert!(slot.goroutine().is_none());
        let site = std::panic::Location::caller();
        let long = "n".repeat(60);
        {
            let _in = StackRef(slot).enter(0, Some(&long), Some(site));
            let g = slot.goroutine().expect("running");
            assert!(g.id > 0, "an id is given on first look");
            assert_eq!(slot.goroutine().map(|g| g.id), Some(g.id), "and kept");
            assert_eq!(g.name(), Some(("n".repeat(48).as_str(), true)));
            assert_eq!(g.site.map(|l| l.line()), Some(site.line()));
        }
        assert!(slot.goroutine().is_none(), "none between goroutines");
        {
            let _in = StackRef(slot).enter(7, Some("é".repeat(24).as_str()), None);
            let g = slot.goroutine().expect("running");
            assert_eq!(g.id, 7);
            assert!(g.site.is_none());
            assert_eq!(g.name(), Some(("é".repeat(24).as_str(), false)));
        }
        {
            // The 48 bytes kept end inside the last two-byte character: it is dropped.
            let name = format!("a{}", "é".repeat(24));
            let _in = StackRef(slot).enter(8, Some(&name), None);
            let g = slot.goroutine().expect("running");
            assert_eq!(g.name(), Some((&name[..47], true)));
        }
    }
}
