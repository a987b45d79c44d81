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
//! - Which guard page is whose: each coroutine goway starts has a [`Slot`] in the table of
//!   `slots`, which holds its stack's bounds (found by `stack::enter`) and the identity of the
//!   goroutine running on it; the handler walks the table with atomic loads only. The spawner
//!   installs the handler, on its own stack: the new coroutine's stack may be a single page.
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

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};

use super::slots::{self, Slot};

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
        slots::PAGE.store(super::stack::page_size(), Ordering::Relaxed);
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

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let sp = stack_pointer(ctx);
    let page = slots::PAGE.load(Ordering::Relaxed);
    let mut on_goway_stack = false;
    let hit = slots::find_slot(|s, guard| {
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
    use super::Buf;

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
