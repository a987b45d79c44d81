//! Goroutine stack sizes (the default, the smallest, the largest one the process can have,
//! and the error for a size over it), finding each goroutine stack's bounds, and giving back
//! its bottom page.
//!
//! may's stacks come from the `generator` crate, which writes eight marker words at the very
//! bottom of every new stack (may reads them when the coroutine ends, as a cheap overflow
//! check). That write makes the bottom page resident, so every goroutine costs two pages of
//! memory (its top page, where it runs, and the bottom one) even when it uses a few hundred
//! bytes: 8 KiB per goroutine, 24 KiB per server connection. goway hands the bottom page back
//! to the kernel (`madvise(MADV_DONTNEED)`) when a coroutine starts and writes the markers back
//! just before it ends, so may's check still finds them.
//!
//! The bounds also tell the stack overflow handler (`overflow`) which guard page belongs to
//! which goroutine.
//!
//! Finding the page: a coroutine's first frames sit at a fixed distance below the top of its
//! stack (the same code runs first in every coroutine goway starts). That distance is measured
//! once, against `/proc/self/maps`; afterwards the top is the current frame plus that distance
//! and must be page-aligned, and the bottom must hold the eight markers, or nothing is done. A
//! stack laid out any other way (another may or generator version) is left alone.

use std::fmt;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default goroutine stack: 32 KiB, may's default (4096 machine words).
pub const DEFAULT_STACK_SIZE: usize = 32 * 1024;

/// Smallest goroutine stack, in bytes: smaller sizes are rounded up to it.
pub const MIN_STACK_SIZE: usize = 4 * 1024;

/// Largest goroutine stack goway accepts, in bytes: 1 GiB on 64-bit targets, 256 MiB on
/// 32-bit ones (about Go's own maximum stack size, `debug.SetMaxStack`'s default). A lower hard
/// `RLIMIT_STACK` lowers it further (see [`max_stack_size`]). Each stack is mapped whole
/// when its goroutine starts (only the pages it touches cost memory), so a large default
/// multiplies by the number of goroutines in virtual memory.
pub const MAX_STACK_SIZE: usize = if cfg!(target_pointer_width = "64") {
    1 << 30
} else {
    256 << 20
};

/// The largest goroutine stack this process can have, in bytes: [`MAX_STACK_SIZE`], or less
/// if the hard `RLIMIT_STACK` (`ulimit -Hs`) is lower (the stack allocator refuses bigger
/// stacks).
///
/// # Examples
/// ```
/// use goway::runtime::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, max_stack_size};
/// assert!(DEFAULT_STACK_SIZE <= max_stack_size() && max_stack_size() <= MAX_STACK_SIZE);
/// ```
pub fn max_stack_size() -> usize {
    stack_limit().0
}

/// What sets the largest goroutine stack (see [`StackSizeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackLimit {
    /// goway's own [`MAX_STACK_SIZE`].
    Goway,
    /// The process's hard `RLIMIT_STACK` (`ulimit -Hs`), lower than [`MAX_STACK_SIZE`].
    RlimitStack,
}

impl fmt::Display for StackLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackLimit::Goway => f.write_str("goway's maximum, as Go's"),
            StackLimit::RlimitStack => {
                f.write_str("the hard RLIMIT_STACK; raise it with `ulimit -Hs` as root")
            }
        }
    }
}

/// A goroutine stack size over the maximum, from [`Config::stack_size`] (returned by
/// [`Config::apply`]) or [`Builder::stack_size`] (returned by [`Builder::spawn`], inside an
/// `io::Error` of kind `InvalidInput`). Checked before anything is mapped: no goroutine is
/// started, nothing is printed.
///
/// [`Builder::spawn`]: crate::runtime::Builder::spawn
/// [`Builder::stack_size`]: crate::runtime::Builder::stack_size
/// [`Config::apply`]: crate::runtime::Config::apply
/// [`Config::stack_size`]: crate::runtime::Config::stack_size
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "goroutine stack size of {requested} bytes is over the maximum of {max} bytes ({limit}); \
     goroutine stacks take {MIN_STACK_SIZE} bytes (the minimum: smaller sizes are rounded up) \
     to {max} bytes"
)]
#[non_exhaustive]
pub struct StackSizeError {
    /// The size asked for, in bytes.
    pub requested: usize,
    /// The largest size allowed, in bytes ([`max_stack_size`]).
    pub max: usize,
    /// What sets the maximum.
    pub limit: StackLimit,
}

impl StackSizeError {
    /// The `StackSizeError` inside an error returned by [`Builder::spawn`], if that is what it
    /// is.
    ///
    /// ```
    /// let e = goway::Builder::new().stack_size(usize::MAX / 2).spawn(|| ()).unwrap_err();
    /// let too_big = goway::runtime::StackSizeError::from_io(&e).unwrap();
    /// assert_eq!(too_big.requested, usize::MAX / 2);
    /// ```
    ///
    /// [`Builder::spawn`]: crate::runtime::Builder::spawn
    pub fn from_io(e: &io::Error) -> Option<&StackSizeError> {
        e.get_ref()?.downcast_ref()
    }
}

impl From<StackSizeError> for io::Error {
    fn from(e: StackSizeError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Checks a requested stack size against [`max_stack_size`].
pub(crate) fn check_stack_size(bytes: usize) -> Result<(), StackSizeError> {
    let (max, limit) = stack_limit();
    if bytes > max {
        return Err(StackSizeError {
            requested: bytes,
            max,
            limit,
        });
    }
    Ok(())
}

/// may counts stack sizes in machine words, and prints a debug line for an odd count: keep it even.
pub(crate) fn stack_words(bytes: usize) -> usize {
    let words = bytes
        .max(MIN_STACK_SIZE)
        .div_ceil(std::mem::size_of::<usize>());
    words + (words & 1)
}

/// generator 0.8's marker word and how many it writes (`Stack::new`, sampling mode).
const MARKER: usize = 0xDEAD_BEEF;
const MARKER_WORDS: usize = 8;

/// Distance from a probe frame to the top of its stack; `UNKNOWN` until measured, `OFF` when
/// the layout is not the expected one.
static OFFSET: AtomicUsize = AtomicUsize::new(UNKNOWN);
const UNKNOWN: usize = usize::MAX;
const OFF: usize = 0;

/// Measurements that found no matching mapping; after `MAX_FAILED` the feature is off.
static FAILED: AtomicUsize = AtomicUsize::new(0);
const MAX_FAILED: usize = 8;

/// Frames above the probe must fit well within one page for the measurement to be trusted.
const MAX_OFFSET: usize = 2048;

/// The running coroutine's stack, as found by [`enter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Lowest usable address (the guard page lies just below it).
    pub(crate) bottom: usize,
    /// One past the highest address.
    pub(crate) top: usize,
    /// The bottom page was handed back: [`leave`] writes the markers back.
    released: bool,
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).unwrap_or(4096)
}

/// Finds the running coroutine's stack of `stack_bytes` (as requested from may), if it can be
/// found with certainty, and releases its bottom page unless that is the page it runs on.
/// Hand the result to [`leave`] before the coroutine ends.
///
/// # Safety
/// Call it only first thing in a coroutine goway started with a stack of `stack_bytes`, and
/// always from the same function, so that this frame sits at the same distance below the top
/// of the stack in every call (see the module docs). The bounds come from that distance,
/// measured once and then trusted: from anywhere else (a plain thread, a deeper frame, a
/// stack of another size) the computed bottom page is some other memory, which this function
/// reads (it may be unmapped or a guard page) and, if it holds the markers, hands back to the
/// kernel, discarding its contents.
#[inline(never)]
pub(crate) unsafe fn enter(stack_bytes: usize) -> Option<Bounds> {
    let probe = 0u8;
    let sp = std::hint::black_box(&probe) as *const u8 as usize;
    let page = page_size();
    // generator rounds the usable part of a stack up to whole pages.
    let len = stack_bytes.max(page).next_multiple_of(page);
    let offset = match OFFSET.load(Ordering::Relaxed) {
        UNKNOWN => measure(sp, len),
        o => o,
    };
    if offset == OFF {
        return None;
    }
    let top = sp.checked_add(offset)?;
    if top % page != 0 {
        return None;
    }
    let bottom = top.checked_sub(len)?;
    // `top` is the page-aligned end of this coroutine's stack mapping (the probe frame sits
    // `offset` below it, as measured, which the caller guarantees), so `bottom` is its first
    // usable page: mapped and readable (the stack grows down from `top`).
    let words = bottom as *const usize;
    for i in 0..MARKER_WORDS {
        // SAFETY: `words + i` lies in that page (see above).
        let w = unsafe { std::ptr::read_volatile(words.add(i)) };
        if w != MARKER {
            return None;
        }
    }
    // The bottom page of a one-page stack is the one we run on.
    let released = len >= 2 * page && {
        // SAFETY: as above, `bottom..bottom + page` is the unused bottom page of our own
        // stack (the stack has at least two pages, and we run near its top); dropping its
        // contents only discards the markers, which `leave` writes back.
        let r = unsafe { libc::madvise(bottom as *mut libc::c_void, page, libc::MADV_DONTNEED) };
        r == 0
    };
    Some(Bounds {
        bottom,
        top,
        released,
    })
}

/// Writes the markers back (making the page resident again) for may's end-of-coroutine
/// check, if [`enter`] released the page.
///
/// # Safety
/// `b` must come from [`enter`] on the running coroutine, and the coroutine must not have
/// ended: the markers are written to its stack's bottom page, which is another stack's (or
/// nobody's) memory once the coroutine is gone.
pub(crate) unsafe fn leave(b: &Bounds) {
    if !b.released {
        return;
    }
    let words = b.bottom as *mut usize;
    for i in 0..MARKER_WORDS {
        // SAFETY: `b.bottom` is the first usable page of the running coroutine's stack (see
        // `enter`; the caller guarantees `b` is this live coroutine's), mapped and writable;
        // nothing else uses these words.
        unsafe { std::ptr::write_volatile(words.add(i), MARKER) };
    }
}

/// Measures the probe's distance to the top of its stack from `/proc/self/maps`, once.
#[cold]
fn measure(sp: usize, len: usize) -> usize {
    let offset = match mapping_of(sp) {
        Some((start, end)) if end - start == len && end - sp <= MAX_OFFSET => end - sp,
        // A stack's mapping can merge with a neighbour of the same protection: try again on
        // a later coroutine, a few times.
        _ if FAILED.fetch_add(1, Ordering::Relaxed) < MAX_FAILED => return OFF,
        _ => {
            not_recognised();
            OFF
        }
    };
    // The first measurement wins; later ones see the same layout.
    match OFFSET.compare_exchange(UNKNOWN, offset, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => offset,
        Err(o) => o,
    }
}

/// The largest stack generator (may's stack allocator) will map: its limit is the hard
/// `RLIMIT_STACK`, less two pages (a guard page and rounding slack) it adds to every stack.
/// goway's own [`MAX_STACK_SIZE`] when that is lower.
pub(crate) fn stack_limit() -> (usize, StackLimit) {
    static MAX: OnceLock<(usize, StackLimit)> = OnceLock::new();
    *MAX.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into the struct we pass.
        let hard = if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0
            && lim.rlim_max != libc::RLIM_INFINITY
        {
            usize::try_from(lim.rlim_max).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        };
        let allowed = hard.saturating_sub(2 * page_size());
        if allowed < MAX_STACK_SIZE {
            (allowed, StackLimit::RlimitStack)
        } else {
            (MAX_STACK_SIZE, StackLimit::Goway)
        }
    })
}

/// Stacks from this size up are mapped once on trial before may maps them, so that a refusal
/// comes back as an error rather than as a panic inside may (whose message the panic hook
/// would print): smaller ones fail only when the process is out of mappings, which the
/// goroutine budget prevents.
pub(crate) const PROBE_FROM: usize = 1 << 20;

/// Maps and unmaps a stack of `bytes` as generator would (read-write, private, anonymous, plus
/// its two extra pages), to learn whether the kernel grants it.
pub(crate) fn probe(bytes: usize) -> io::Result<()> {
    let len = bytes
        .max(page_size())
        .checked_next_multiple_of(page_size())
        .and_then(|b| b.checked_add(2 * page_size()))
        .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
    // SAFETY: a fresh anonymous mapping chosen by the kernel (no address given), touching no
    // existing memory; it is unmapped right below and never accessed.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `p..p + len` is the mapping made above, used by nothing.
    unsafe { libc::munmap(p, len) };
    Ok(())
}

#[cold]
#[inline(never)]
fn not_recognised() {
    log::debug!(target: "goway::runtime", "goroutine stack layout not recognised: stacks keep their bottom page and a stack overflow is reported by may");
}

/// The range of the `/proc/self/maps` mapping that holds `addr`. Read through a small buffer
/// and parsed as it comes: this runs on the first coroutine's stack, which may be one page
/// (reading the whole file into a `String` overflowed a 4 KiB stack in a debug build).
fn mapping_of(addr: usize) -> Option<(usize, usize)> {
    use std::io::Read as _;
    let mut f = std::fs::File::open("/proc/self/maps").ok()?;
    let mut buf = [0u8; 256];
    // Each line starts `start-end `; `field` is 0 in the start, 1 in the end, 2 past them.
    let (mut start, mut end, mut field) = (0usize, 0usize, 0u8);
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        for &c in &buf[..n] {
            match (field, c) {
                (_, b'\n') => (start, end, field) = (0, 0, 0),
                (0, b'-') => field = 1,
                (1, b' ') => {
                    if start <= addr && addr < end {
                        return Some((start, end));
                    }
                    field = 2;
                }
                (0 | 1, c) => {
                    let d = (c as char).to_digit(16)? as usize;
                    let v = if field == 0 { &mut start } else { &mut end };
                    *v = v.checked_mul(16)?.checked_add(d)?;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_mapping_of_a_stack_variable() {
        let x = 0u8;
        let addr = std::hint::black_box(&x) as *const u8 as usize;
        let (start, end) = super::mapping_of(addr).expect("mapped");
        assert!(start <= addr && addr < end);
        assert_eq!(start % 4096, 0);
        assert_eq!(end % 4096, 0);
    }
}
