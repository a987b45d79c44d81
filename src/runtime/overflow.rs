//! Go's `fatal error: stack overflow`: a goroutine that runs into the guard page below its
//! stack ends the process with a report naming it, and exit status 2.
//!
//! Every goroutine stack is a may coroutine's fixed mapping with a `PROT_NONE` guard page
//! below it (the `generator` crate maps them). Left to may, an overflow prints `coroutine has
//! overflowed its stack` (generator's handler, which then abandons the coroutine without
//! unwinding it: whatever it held stays held) and, when may drops the coroutine,
//! `stack overflow detected, size=4096` (in machine words) and exits with status 1, without
//! saying which goroutine it was.
//!
//! goway installs its own `SIGSEGV`/`SIGBUS` handler on top (with `SA_ONSTACK`: it runs on the
//! worker thread's alternate signal stack, since the goroutine's own stack is exhausted).
//!
//! - Which guard page is whose: each coroutine goway starts takes a [`Slot`] of a global table
//!   and records its stack's bounds there (found by `stack::enter`), once per stack. Each
//!   goroutine the coroutine runs writes its identity into the slot as it starts (spawn site,
//!   the first bytes of its name, its id if it has one) and bumps the slot's sequence number
//!   as it starts and ends: a few plain stores into a cache line only that coroutine writes;
//!   no lock, no shared counter. With the registry off, a goroutine is given an id only when a
//!   report names it. The table is a list of chunks that are never freed, so the handler walks
//!   it with atomic loads only. The spawner sets the slot aside and installs the handler, on
//!   its own stack: the new coroutine's stack may be a single page.
//! - A fault in a slot's guard page, with the faulting thread's stack pointer on that stack,
//!   is reported: the text is assembled in a buffer on the signal stack, written to fd 2 with
//!   `write(2)` and followed by `_exit(2)`. Only async-signal-safe calls; no allocation, no
//!   lock.
//! - Any other fault goes to the handler that was there before: the one installed before
//!   goway's first goroutine (Rust's own, which reports a plain thread's overflow and lets any
//!   other fault kill the process with `SIGSEGV`), or, for a may coroutine goway did not start,
//!   generator's.
//!
//! The handler needs an alternate signal stack on the faulting thread. Rust gives one to every
//! thread it starts while its own `SIGSEGV` handler is installed (the normal case); goway maps
//! one (64 KiB, kept for the life of the thread) for a worker that has none when a coroutine
//! first starts on it. generator's handler is chained to only on threads where a goway
//! coroutine has started, where generator's per-thread state is known to exist (looking it up
//! elsewhere would allocate in the handler).
//!
//! A coroutine whose stack bounds cannot be found (see `stack`) has a slot without them: its
//! overflow is left to may as before.
//!
//! The blocked-worker watchdog (`watchdog`) reads the same slots from its own thread: each slot
//! records may's key for its coroutine, which may shows for the coroutine each worker runs, and
//! the sequence number makes a torn read detectable.

use std::cell::Cell;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Once, OnceLock};

use parking_lot::Mutex;

use super::stack::Bounds;

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
    guard: AtomicUsize,
    /// Lowest usable byte.
    bottom: AtomicUsize,
    /// One past the highest byte.
    top: AtomicUsize,
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
    fn goroutine(&self) -> Option<Goroutine> {
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
            let new = super::registry::next_id();
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
static PAGE: AtomicUsize = AtomicUsize::new(4096);

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

// ----- installing the handler ----------------------------------------------------------------

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The actions in force before goway's first coroutine (before generator installed its own).
static BEFORE: OnceLock<[libc::sigaction; 2]> = OnceLock::new();
/// generator's actions, if it installed them after `BEFORE` was read.
static GENERATOR: OnceLock<[Option<libc::sigaction>; 2]> = OnceLock::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread has run a goway coroutine (so generator's thread state exists) and has an
    /// alternate signal stack.
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

fn current_actions() -> [libc::sigaction; 2] {
    SIGNALS.map(|sig| {
        // SAFETY: an all-zero sigaction is a valid value to be overwritten; a null new action
        // only reads the current one.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, ptr::null(), &mut old);
            old
        }
    })
}

/// Reads the fault actions in force, once, before goway's first coroutine is made (making one
/// installs generator's handler).
pub(crate) fn before_spawn() {
    BEFORE.get_or_init(current_actions);
}

/// Installs the handler once a coroutine has been made (so generator's handler is in place and
/// ours goes on top of it). Runs on the spawner's stack.
pub(crate) fn after_spawn() {
    if !INSTALLED.load(Ordering::Acquire) {
        install();
    }
}

/// Called first thing in every coroutine goway starts: waits for the handler (only the first
/// coroutines can start before their spawner installed it) and gives this worker thread an
/// alternate signal stack if it has none (once per thread).
pub(crate) fn enter_coroutine() {
    while !INSTALLED.load(Ordering::Acquire) {
        may::coroutine::yield_now();
    }
    if !WORKER.get() {
        alt_stack();
        WORKER.set(true);
    }
}

#[cold]
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let now = current_actions();
        let before = BEFORE.get_or_init(|| now);
        let mut generator = [None; 2];
        for i in 0..SIGNALS.len() {
            if now[i].sa_sigaction != before[i].sa_sigaction {
                generator[i] = Some(now[i]);
            }
        }
        let _ = GENERATOR.set(generator);
        PAGE.store(super::stack::page_size(), Ordering::Relaxed);
        for sig in SIGNALS {
            // SAFETY: `on_fault` is an `extern "C"` SA_SIGINFO handler that only makes
            // async-signal-safe calls; the struct is fully initialised (zeroed, then set).
            let r = unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_fault as *const () as libc::sighandler_t;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, ptr::null_mut())
            };
            if r != 0 {
                log::warn!(target: "goway::runtime", "cannot install the stack overflow handler for signal {sig}: {}", std::io::Error::last_os_error());
            }
        }
        INSTALLED.store(true, Ordering::Release);
    });
}

/// Bytes of an alternate signal stack goway maps for a worker thread that has none (Rust's
/// runtime gives one to every thread it starts when its own handler is installed).
const ALT_STACK: usize = 64 * 1024;

fn alt_stack() {
    // SAFETY: a null new stack only reads the current one into `old`.
    let enabled = unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(ptr::null(), &mut old) == 0 && old.ss_flags & libc::SS_DISABLE == 0
    };
    if enabled {
        return;
    }
    let page = super::stack::page_size();
    // SAFETY: a fresh private anonymous mapping; its lowest page becomes a guard. It is never
    // unmapped: worker threads run for the life of the process.
    unsafe {
        let len = ALT_STACK + page;
        let p = libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            log::warn!(target: "goway::runtime", "no alternate signal stack for a worker thread: {}", std::io::Error::last_os_error());
            return;
        }
        libc::mprotect(p, page, libc::PROT_NONE);
        let ss = libc::stack_t {
            ss_sp: p.cast::<u8>().add(page).cast(),
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        if libc::sigaltstack(&ss, ptr::null_mut()) != 0 {
            libc::munmap(p, len);
        }
    }
}

// ----- the handler ----------------------------------------------------------------------------

/// The stack pointer may sit this far below the guard page when a frame larger than a page
/// faults (stack probes touch each page, so it is usually in the guard page itself).
const SP_SLACK: usize = 64 * 1024;

/// The interrupted stack pointer, where the platform's context layout is known.
fn stack_pointer(ctx: *mut libc::c_void) -> Option<usize> {
    let uc = ctx.cast::<libc::ucontext_t>();
    if uc.is_null() {
        return None;
    }
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        // SAFETY: the kernel passes a ucontext_t as an SA_SIGINFO handler's third argument.
        let sp = unsafe { (*uc).uc_mcontext.gregs[libc::REG_RSP as usize] };
        Some(sp as usize)
    }
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    {
        // SAFETY: as above.
        let sp = unsafe { (*uc).uc_mcontext.sp };
        Some(sp as usize)
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        None
    }
}

/// Calls `f` on every slot in use, newest chunk first, until it returns `true`.
fn find_slot(mut f: impl FnMut(&Slot, usize) -> bool) -> Option<&'static Slot> {
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

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let sp = stack_pointer(ctx);
    let page = PAGE.load(Ordering::Relaxed);
    let mut on_goway_stack = false;
    let hit = find_slot(|s, guard| {
        let top = s.top.load(Ordering::Relaxed);
        on_goway_stack |= sp.is_some_and(|sp| guard <= sp && sp < top);
        let sp_near = sp.is_none_or(|sp| guard.saturating_sub(SP_SLACK) <= sp && sp < top);
        guard <= addr && addr - guard < page && sp_near
    });
    if let Some(s) = hit {
        report(s, sp);
    }
    chain(sig, info, ctx, on_goway_stack);
}

/// Hands a fault that is not a goroutine's overflow to the handler that was there before.
fn chain(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    on_goway_stack: bool,
) {
    let i = usize::from(sig != libc::SIGSEGV);
    // generator's handler only for a may coroutine goway did not start (it handles their
    // overflows); its thread state exists on threads that ran goway coroutines.
    let generator = GENERATOR.get().and_then(|g| g[i]);
    let act = match generator {
        Some(g)
            if !on_goway_stack
                && WORKER.try_with(Cell::get).unwrap_or(false)
                && may::coroutine::is_coroutine() =>
        {
            Some(g)
        }
        _ => BEFORE.get().map(|b| b[i]),
    };
    let handler = act.map_or(libc::SIG_DFL, |a| a.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Back to the default action; returning re-runs the faulting instruction, which now
        // kills the process with the signal.
        // SAFETY: resetting a signal's action is async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, ptr::null_mut());
        }
        return;
    }
    let Some(act) = act else { return };
    // SAFETY: `handler` is the address of the handler that was installed for `sig`, called as
    // the kernel would have called it (with siginfo and context if it asked for them).
    unsafe {
        if act.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

/// Writes Go's report for the overflow of `slot`'s stack and exits with status 2.
fn report(slot: &Slot, sp: Option<usize>) -> ! {
    let bottom = slot.bottom.load(Ordering::Relaxed);
    let top = slot.top.load(Ordering::Relaxed);
    let bytes = top.saturating_sub(bottom);
    let mut b = Buf::new();
    b.str("runtime: goroutine stack exceeds ");
    b.dec(bytes as u64);
    b.str("-byte limit\n");
    if let Some(sp) = sp {
        b.str("runtime: sp=");
        b.hex(sp);
        b.str(" stack=[");
        b.hex(bottom);
        b.str(", ");
        b.hex(top);
        b.str("]\n");
    }
    b.str("fatal error: stack overflow\n\n");
    match slot.goroutine() {
        Some(g) => {
            b.str("goroutine ");
            b.dec(g.id);
            if let Some((n, cut)) = g.name() {
                b.str(" \"");
                b.str(n);
                b.str(if cut { "...\"" } else { "\"" });
            }
            b.str(" [running]:\n");
            if let Some(site) = g.site {
                b.str("\tspawned at ");
                b.str_max(site.file(), 400);
                b.str(":");
                b.dec(u64::from(site.line()));
                b.str(":");
                b.dec(u64::from(site.column()));
                b.str("\n");
            }
        }
        None => b.str("goroutine ? [running]: (the runtime's own code, between goroutines)\n"),
    }
    b.str("\tstack size ");
    b.dec(bytes as u64);
    b.str(" bytes\n\n");
    b.str(
        "goroutine stacks do not grow: raise the size with goway::Builder::stack_size for this \
         goroutine, goway::runtime::Config::stack_size for every goroutine, or \
         goway::http::Config::handler_stack_size / goway::net::server::Config::handler_stack_size \
         for a server's connection handlers\n",
    );
    b.write_stderr();
    // SAFETY: _exit is async-signal-safe; nothing else runs after it.
    unsafe { libc::_exit(2) }
}

/// A fixed buffer on the signal stack; text past its end is dropped.
struct Buf {
    bytes: [u8; 1536],
    len: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            bytes: [0; 1536],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn str(&mut self, s: &str) {
        self.push(s.as_bytes());
    }

    /// At most `max` bytes of `s`, then `...` if it was longer.
    fn str_max(&mut self, s: &str, max: usize) {
        if s.len() <= max {
            self.push(s.as_bytes());
        } else {
            self.push(&s.as_bytes()[..max]);
            self.push(b"...");
        }
    }

    fn dec(&mut self, mut v: u64) {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&d[i..]);
    }

    fn hex(&mut self, v: usize) {
        let mut d = [0u8; 2 + 2 * size_of::<usize>()];
        let mut i = d.len();
        let mut v = v;
        loop {
            i -= 1;
            d[i] = b"0123456789abcdef"[v & 15];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        i -= 2;
        d[i] = b'0';
        d[i + 1] = b'x';
        self.push(&d[i..]);
    }

    fn write_stderr(&self) {
        let mut rest = &self.bytes[..self.len];
        while !rest.is_empty() {
            // SAFETY: write(2) from a valid buffer is async-signal-safe.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                rest = &rest[n as usize..];
            } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Buf, Slot, StackRef};

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

    #[test]
    fn numbers() {
        let mut b = Buf::new();
        b.dec(0);
        b.str(" ");
        b.dec(32768);
        b.str(" ");
        b.hex(0);
        b.str(" ");
        b.hex(0x7f00_dead_beef);
        b.str(" ");
        b.dec(u64::MAX);
        assert_eq!(
            &b.bytes[..b.len],
            b"0 32768 0x0 0x7f00deadbeef 18446744073709551615"
        );
    }

    #[test]
    fn truncates() {
        let mut b = Buf::new();
        b.str_max("abcdef", 3);
        for _ in 0..1000 {
            b.str("xy");
        }
        assert_eq!(&b.bytes[..6], b"abc...");
        assert_eq!(b.len, b.bytes.len());
    }
}
