//! The goroutine registry: one [`Record`] per live goroutine, and one per plain OS thread that
//! has waited in a goway operation, each saying what its owner is doing now.
//!
//! Invariants and costs:
//! - A goroutine's record is created and registered by [`Builder::spawn`](super::Builder::spawn)
//!   (state `runnable`), set `running` when the goroutine starts and unregistered when it ends.
//!   The record belongs to the goroutine, not to the carrier coroutine that runs it: the
//!   carrier's coroutine-local [`CURRENT`] points at it only while the goroutine runs.
//! - A thread's record is created the first time the thread parks in goway, and unregistered
//!   when the thread exits (its thread-local is destroyed; see `blocked`). Threads are
//!   recorded whenever the registry or the deadlock detector (on by default) is on; goroutines
//!   only with the registry.
//! - Only the owner writes its record's state, and only on slow paths: right before parking
//!   (`blocked::block`) and right after (the `Blocked` guard's drop). A write is a relaxed
//!   load and two release stores on the owner's own record; the fast paths of channels,
//!   select and sync never touch the registry.
//! - Each state write bumps a sequence number kept in the same word, so an observer comparing
//!   two snapshots can tell that an owner moved even if it came back to the same state (the
//!   deadlock detector relies on it).

use std::cell::Cell;
use std::fmt;
use std::panic::Location;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::slots::{self, Slot, StackRef};
use super::switches;

/// A source location recorded with `#[track_caller]`: a spawn site, a channel's creation site.
pub(crate) type Site = &'static Location<'static>;

/// What a goroutine or thread is doing: Go's goroutine "wait reason", plus goway's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Wait {
    /// Running goway-unaware code (or blocked somewhere goway does not see).
    Running = 0,
    /// Spawned, not yet started.
    Runnable,
    ChanSend,
    ChanRecv,
    /// A send on a never (nil) channel.
    NilSend,
    /// A receive on a never (nil) channel.
    NilRecv,
    Select,
    /// A select whose every case is a never channel (Go's `select {}`).
    SelectNoCases,
    Sleep,
    /// Waiting for another goroutine to finish (`JoinHandle::join`).
    Join,
    Mutex,
    RwLockRead,
    RwLockWrite,
    /// `WaitGroup::wait`.
    Group,
    Once,
    Semaphore,
    Cond,
    /// Blocked in a network read, write, accept or connect.
    NetIo,
    /// A spawner paused while too many spawned goroutines wait to start.
    SpawnThrottle,
    /// `runtime::yield_now` going round the timer thread.
    Yield,
    /// Internal waits of the runtime (an idle carrier); never shown.
    Internal,
}

const WAITS: [Wait; 21] = [
    Wait::Running,
    Wait::Runnable,
    Wait::ChanSend,
    Wait::ChanRecv,
    Wait::NilSend,
    Wait::NilRecv,
    Wait::Select,
    Wait::SelectNoCases,
    Wait::Sleep,
    Wait::Join,
    Wait::Mutex,
    Wait::RwLockRead,
    Wait::RwLockWrite,
    Wait::Group,
    Wait::Once,
    Wait::Semaphore,
    Wait::Cond,
    Wait::NetIo,
    Wait::SpawnThrottle,
    Wait::Yield,
    Wait::Internal,
];

impl Wait {
    fn from_u8(v: u8) -> Wait {
        WAITS.get(v as usize).copied().unwrap_or(Wait::Running)
    }

    /// Go's name for the state, as in a goroutine dump (`[chan receive]`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Wait::Running => "running",
            Wait::Runnable => "runnable",
            Wait::ChanSend => "chan send",
            Wait::ChanRecv => "chan receive",
            Wait::NilSend => "chan send (nil chan)",
            Wait::NilRecv => "chan receive (nil chan)",
            Wait::Select => "select",
            Wait::SelectNoCases => "select (no cases)",
            Wait::Sleep => "sleep",
            Wait::Join => "join",
            Wait::Mutex => "sync.Mutex.Lock",
            Wait::RwLockRead => "sync.RWMutex.RLock",
            Wait::RwLockWrite => "sync.RWMutex.Lock",
            Wait::Group => "sync.WaitGroup.Wait",
            Wait::Once => "sync.Once.Do",
            Wait::Semaphore => "semaphore.Acquire",
            Wait::Cond => "sync.Cond.Wait",
            Wait::NetIo => "IO wait",
            Wait::SpawnThrottle => "spawn throttled",
            Wait::Yield => "yield",
            Wait::Internal => "internal",
        }
    }

    /// Waits that only another goroutine or thread can end (no timer, no I/O): what Go's
    /// deadlock detector counts as asleep.
    pub(crate) fn is_sync(self) -> bool {
        matches!(
            self,
            Wait::ChanSend
                | Wait::ChanRecv
                | Wait::NilSend
                | Wait::NilRecv
                | Wait::Select
                | Wait::SelectNoCases
                | Wait::Join
                | Wait::Mutex
                | Wait::RwLockRead
                | Wait::RwLockWrite
                | Wait::Group
                | Wait::Once
                | Wait::Semaphore
                | Wait::Cond
        )
    }
}

/// Why a waiter parks: the wait reason and, where there is one, the site identifying what it
/// waits on (a channel's creation site, a select's site).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Why {
    pub(crate) wait: Wait,
    pub(crate) site: Option<Site>,
}

impl Why {
    #[inline]
    pub(crate) const fn new(wait: Wait) -> Why {
        Why { wait, site: None }
    }

    #[inline]
    pub(crate) const fn at(wait: Wait, site: Site) -> Why {
        Why {
            wait,
            site: Some(site),
        }
    }
}

/// Bits of a state word: wait reason in bits 0-7, "has a deadline" in bit 8, sequence number
/// in bits 32-63.
const TIMED: u64 = 1 << 8;
const SEQ_SHIFT: u32 = 32;

/// Who owns a record.
#[derive(Debug)]
pub(crate) enum Owner {
    Goroutine {
        name: Option<Arc<str>>,
        spawned_at: Option<Site>,
    },
    Thread {
        name: Option<String>,
        /// The kernel's thread id (`None` where it cannot be read).
        tid: Option<u32>,
    },
}

/// One goroutine or thread.
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) owner: Owner,
    pub(crate) started: Instant,
    state: AtomicU64,
    /// The site of what it waits on; null when none. Written before `state`.
    site: AtomicPtr<Location<'static>>,
    /// The stack a goroutine runs on (null before it starts).
    stack: AtomicPtr<Slot>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("state", &self.snapshot().wait)
            .finish()
    }
}

/// What a record said when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) wait: Wait,
    pub(crate) timed: bool,
    pub(crate) site: Option<Site>,
    pub(crate) seq: u32,
}

impl Record {
    fn new(id: u64, owner: Owner, wait: Wait) -> Arc<Record> {
        Arc::new(Record {
            id,
            owner,
            started: Instant::now(),
            state: AtomicU64::new(wait as u64),
            site: AtomicPtr::new(ptr::null_mut()),
            stack: AtomicPtr::new(ptr::null_mut()),
        })
    }

    /// The goroutine's stack size and high-water mark (see `slots::usage`), while it runs.
    pub(crate) fn stack_usage(&self) -> Option<(usize, Option<usize>)> {
        // SAFETY: slots are never freed; a non-null pointer came from a `&'static Slot`.
        let slot = unsafe { self.stack.load(Ordering::Acquire).as_ref() }?;
        slots::usage(slot)
    }

    /// Sets the state (owner only). Returns the previous word.
    #[inline]
    pub(crate) fn set(
        &self,
        wait: Wait,
        timed: bool,
        site: Option<Site>,
    ) -> (u64, *mut Location<'static>) {
        let old = self.state.load(Ordering::Relaxed);
        let old_site = self.site.load(Ordering::Relaxed);
        let site = site.map_or(ptr::null_mut(), |s| ptr::from_ref(s).cast_mut());
        self.site.store(site, Ordering::Release);
        let seq = (old >> SEQ_SHIFT).wrapping_add(1) & 0xFFFF_FFFF;
        let word = (seq << SEQ_SHIFT) | (wait as u64) | if timed { TIMED } else { 0 };
        self.state.store(word, Ordering::Release);
        (old, old_site)
    }

    /// Puts back a word saved by `set`, with a new sequence number (owner only).
    #[inline]
    pub(crate) fn restore(&self, word: u64, site: *mut Location<'static>) {
        let old = self.state.load(Ordering::Relaxed);
        self.site.store(site, Ordering::Release);
        let seq = (old >> SEQ_SHIFT).wrapping_add(1) & 0xFFFF_FFFF;
        self.state
            .store((seq << SEQ_SHIFT) | (word & 0xFFFF_FFFF), Ordering::Release);
    }

    /// The state now (any thread). The site is read between two reads of the word and kept
    /// only if the word did not change meanwhile.
    pub(crate) fn snapshot(&self) -> State {
        let mut word = self.state.load(Ordering::Acquire);
        let mut site;
        let mut tries = 0;
        loop {
            site = self.site.load(Ordering::Acquire);
            let again = self.state.load(Ordering::Acquire);
            if again == word || tries == 3 {
                break;
            }
            word = again;
            tries += 1;
        }
        // SAFETY: `site` is null or was made from a `&'static Location<'static>` in `set`.
        let site = unsafe { site.as_ref() };
        State {
            wait: Wait::from_u8((word & 0xFF) as u8),
            timed: word & TIMED != 0,
            site,
            seq: (word >> SEQ_SHIFT) as u32,
        }
    }

    /// `true` for a goroutine's record, `false` for a thread's.
    pub(crate) fn is_goroutine(&self) -> bool {
        matches!(self.owner, Owner::Goroutine { .. })
    }
}

// ----- the registry -------------------------------------------------------------------------

/// `true` while goroutines and waiting threads are recorded (the runtime option
/// `Config::registry`, default off; `GOWAY_REGISTRY`).
#[inline]
pub(crate) fn enabled() -> bool {
    switches::REGISTRY.on()
}

/// Goroutines spawned and not yet finished, counted whether or not the registry is on.
pub(crate) static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Number of live goroutines spawned through goway (Go's `runtime.NumGoroutine`, without
/// `main`).
///
/// # Examples
/// ```
/// let (tx, rx) = goway::chan::bounded::<()>(0);
/// let h = goway::go!(move || rx.recv());
/// assert!(goway::runtime::num_goroutines() >= 1); // counted until it ends
/// tx.send(()).unwrap();
/// h.join().unwrap().unwrap();
/// ```
pub fn num_goroutines() -> usize {
    LIVE.load(Ordering::Relaxed)
}

const SHARDS: usize = 8;

/// Live records, sharded by id so that spawns on different workers rarely share a lock.
struct Shard {
    slots: Vec<Option<Arc<Record>>>,
    free: Vec<usize>,
}

static REGISTRY: [Mutex<Shard>; SHARDS] = [const {
    Mutex::new(Shard {
        slots: Vec::new(),
        free: Vec::new(),
    })
}; SHARDS];

/// A record's place in the registry; dropping it unregisters the record.
pub(crate) struct Registration {
    record: Arc<Record>,
    slot: usize,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.record.fmt(f)
    }
}

impl Registration {
    /// The record.
    pub(crate) fn record(&self) -> &Arc<Record> {
        &self.record
    }

    /// The goroutine's or thread's id.
    pub(crate) fn id(&self) -> u64 {
        self.record.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let gone = {
            let mut s = REGISTRY[self.record.id as usize % SHARDS].lock();
            let gone = s.slots.get_mut(self.slot).and_then(Option::take);
            s.free.push(self.slot);
            gone
        };
        // The registry's reference is dropped after the lock is released.
        drop(gone);
    }
}

pub(crate) fn register(owner: Owner, wait: Wait) -> Registration {
    let id = slots::next_id();
    let record = Record::new(id, owner, wait);
    let slot = {
        let mut s = REGISTRY[id as usize % SHARDS].lock();
        match s.free.pop() {
            Some(i) => {
                s.slots[i] = Some(record.clone());
                i
            }
            None => {
                s.slots.push(Some(record.clone()));
                s.slots.len() - 1
            }
        }
    };
    Registration { record, slot }
}

/// Registers a goroutine being spawned (state `runnable`); `None` when the registry is off.
pub(crate) fn register_goroutine(
    name: Option<Arc<str>>,
    spawned_at: Option<Site>,
) -> Option<Registration> {
    if !enabled() {
        return None;
    }
    Some(register(
        Owner::Goroutine { name, spawned_at },
        Wait::Runnable,
    ))
}

/// Every live record, goroutines first, each kind by id.
pub(crate) fn records() -> Vec<Arc<Record>> {
    let mut all = Vec::new();
    for shard in &REGISTRY {
        let s = shard.lock();
        all.extend(s.slots.iter().flatten().cloned());
    }
    all.sort_by_key(|r| (!r.is_goroutine(), r.id));
    all
}

/// The registered threads when all are parked for good (see `deadlock`): each record's id and
/// sequence number, and the threads' kernel ids.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Asleep {
    states: Vec<(u64, u32)>,
    pub(crate) thread_tids: Vec<u32>,
}

/// `Some` if the main thread is registered and every thread's record is parked on a channel,
/// select, join or `sync` wait without deadline; `None` as soon as one is not. (Threads are
/// recorded while the deadlock detector is on, with or without the registry.)
pub(crate) fn asleep() -> Option<Asleep> {
    let pid = std::process::id();
    let mut main = false;
    let mut out = Asleep {
        states: Vec::new(),
        thread_tids: Vec::new(),
    };
    for shard in &REGISTRY {
        let s = shard.lock();
        for r in s.slots.iter().flatten() {
            let Owner::Thread { tid, .. } = &r.owner else {
                continue;
            };
            let st = r.snapshot();
            if !st.wait.is_sync() || st.timed {
                return None;
            }
            out.states.push((r.id, st.seq));
            let tid = (*tid)?;
            main |= tid == pid;
            out.thread_tids.push(tid);
        }
    }
    out.states.sort_unstable();
    out.thread_tids.sort_unstable();
    main.then_some(out)
}

// ----- the current goroutine or thread ------------------------------------------------------

may::coroutine_local!(static CURRENT: Cell<*const Record> = Cell::new(ptr::null()));

/// The running goroutine's record, null outside a goway goroutine. Never inlined: it reads a
/// coroutine-local (a thread-local on a plain thread); the pointer it returns stays valid while
/// the goroutine lives, wherever it resumes.
#[inline(never)]
pub(crate) fn current_goroutine() -> *const Record {
    CURRENT.with(Cell::get)
}

/// Marks the calling goroutine as running `reg`'s goroutine, on `stack`, until the returned
/// guard drops. Called by the carrier at the start of each goroutine.
pub(crate) fn enter(reg: &Registration, stack: StackRef) -> Entered<'_> {
    reg.record.set(Wait::Running, false, None);
    reg.record
        .stack
        .store(ptr::from_ref(stack.slot()).cast_mut(), Ordering::Release);
    set_current(Arc::as_ptr(&reg.record));
    Entered(&reg.record)
}

#[inline(never)]
fn set_current(p: *const Record) {
    CURRENT.with(|c| c.set(p));
}

/// Clears the coroutine's current record when the goroutine ends (or unwinds).
#[derive(Debug)]
pub(crate) struct Entered<'a>(&'a Record);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.stack.store(ptr::null_mut(), Ordering::Release);
        set_current(ptr::null());
    }
}
