//! Goroutines: [`spawn`] (behind [`go!`](crate::go!)), [`Builder`], [`JoinHandle`], the
//! runtime's one-time configuration, and [`block_on_thread`] for blocking calls.
//!
//! This is the only module that calls `may`'s `unsafe` spawn. may marks it unsafe because a
//! coroutine must not block its worker thread, must not rely on thread-local storage across a
//! blocking call, and must fit its fixed-size stack; goway's docs state those rules on
//! [`go!`](crate::go!), and goway's own blocking operations all park the coroutine.

use std::any::Any;
use std::fmt;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub(crate) mod blocked;
mod blocking;
mod carrier;
mod deadlock;
mod dump;
mod join;
mod overflow;
mod own;
pub(crate) mod park;
pub(crate) mod registry;
mod stack;
mod switches;
pub(crate) mod timer;
mod watchdog;

pub use blocking::{
    BlockingStats, DEFAULT_BLOCKING_KEEP_ALIVE, DEFAULT_MAX_BLOCKING_THREADS, block_on_thread,
    blocking_stats,
};
pub use dump::{dump, dump_on_signal};
pub use registry::num_goroutines;
use registry::{LIVE, Wait, Why};

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
pub fn max_stack_size() -> usize {
    stack::max_stack_size().0
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
fn check_stack_size(bytes: usize) -> Result<(), StackSizeError> {
    let (max, limit) = stack::max_stack_size();
    if bytes > max {
        return Err(StackSizeError {
            requested: bytes,
            max,
            limit,
        });
    }
    Ok(())
}

/// Why [`Config::apply`] did not apply the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The runtime was already started; the settings in force stay.
    #[error(transparent)]
    AlreadyStarted(#[from] AlreadyStarted),
    /// [`Config::stack_size`] is over the maximum; nothing was applied (the defaults still
    /// apply when the first goroutine starts).
    #[error(transparent)]
    StackSize(#[from] StackSizeError),
}

/// Runtime settings, applied once before the first goroutine starts.
///
/// ```
/// goway::runtime::Config::new()
///     .workers(2)
///     .stack_size(64 * 1024)
///     .apply()
///     .ok(); // Err(ConfigError::AlreadyStarted(_)) if goroutines already run
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    workers: usize,
    stack_size: usize,
    abort_on_panic: bool,
    coroutine_pool: usize,
    registry: bool,
    detect_deadlock: bool,
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
    blocked_worker: Duration,
}

/// The runtime was already started (a goroutine was spawned, or `apply` was called), so the
/// settings can no longer change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("goway runtime already started: configure it before the first go!()")]
pub struct AlreadyStarted;

struct Settings {
    abort_on_panic: bool,
    /// Most goroutines that may be alive at once (see [`max_goroutines`]).
    max_live: usize,
    /// The blocking pool's most threads (at least 1) and idle time before a thread exits.
    max_blocking_threads: usize,
    blocking_keep_alive: Duration,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults: one worker per CPU this process may use, 32 KiB stacks, panics contained
    /// to their goroutine, a pool of 1,000 reusable stacks, up to 512 blocking-pool threads
    /// kept 10 s when idle, the registry off, a warning for a goroutine that holds its worker
    /// thread for over 100 ms.
    pub fn new() -> Self {
        Config {
            workers: 0,
            stack_size: DEFAULT_STACK_SIZE,
            abort_on_panic: false,
            coroutine_pool: 1000,
            registry: false,
            detect_deadlock: true,
            max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
            blocking_keep_alive: DEFAULT_BLOCKING_KEEP_ALIVE,
            blocked_worker: watchdog::DEFAULT_THRESHOLD,
        }
    }

    /// Worker threads that run goroutines. `0` (the default) means one per CPU in this
    /// process's affinity mask (`std::thread::available_parallelism`).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Default goroutine stack size in bytes (rounded up to 16 bytes; minimum
    /// [`MIN_STACK_SIZE`], 4 KiB; maximum [`max_stack_size`], 1 GiB unless `RLIMIT_STACK` is
    /// lower). Default 32 KiB. Each stack costs virtual memory plus two memory mappings (stack
    /// and guard page). A size over the maximum makes [`apply`](Config::apply) return
    /// [`ConfigError::StackSize`].
    ///
    /// ```
    /// use goway::runtime::{Config, ConfigError};
    /// let e = Config::new().stack_size(1 << 43).apply().unwrap_err();
    /// assert!(matches!(e, ConfigError::StackSize(s) if s.requested == 1 << 43));
    /// assert!(e.to_string().contains("over the maximum of"));
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Go's behaviour on an unrecovered panic: print `panic: <message>` and the goroutine's
    /// name to stderr and exit the process with status 2. Default `false`: the panic ends only
    /// its goroutine.
    pub fn abort_on_panic(mut self, yes: bool) -> Self {
        self.abort_on_panic = yes;
        self
    }

    /// How many finished goroutine stacks are kept for reuse (may's coroutine pool). Reuse
    /// avoids an `mmap`/`munmap` pair per spawn; each kept stack holds two memory mappings,
    /// which count against the goroutine limit. Default 1,000.
    pub fn coroutine_pool(mut self, n: usize) -> Self {
        self.coroutine_pool = n;
        self
    }

    /// Keep the goroutine registry behind [`dump`] and the deadlock detector's detailed report:
    /// every goroutine's id, name, spawn site, start time and current wait, updated only when
    /// it parks and resumes. Default `false`: it costs 2-11 % on a channel ping-pong (two parks
    /// per round trip) and about 40 % on spawning goroutines that do nothing (see
    /// `BENCHMARKS.md`, "Diagnostics overhead"), more than goway adds silently. The environment
    /// variable `GOWAY_REGISTRY=1` turns it on, `=0` off, whatever the program sets, so a
    /// deployed program can be diagnosed without a rebuild. Off, [`dump`] lists nothing, and
    /// the deadlock detector (on either way) reports how many goroutines are asleep and what
    /// the threads wait on, but not each goroutine.
    pub fn registry(mut self, yes: bool) -> Self {
        self.registry = yes;
        self
    }

    /// Go's deadlock detector, on by default as in Go: when the main thread waits in a goway
    /// operation and nothing in the process can ever run again (every thread asleep waiting
    /// for another; no timer, sleep, blocking call or network I/O pending; no thread goway does
    /// not know), print
    /// `fatal error: all goroutines are asleep - deadlock!` and a report to stderr and exit
    /// with status 2. The report is the [`dump`] with the [`registry`](Config::registry) on;
    /// with it off (the default), the number of goroutines asleep, what each thread waits on
    /// (for main, the line that made the channel) and a line saying to rerun with
    /// `GOWAY_REGISTRY=1` for the full report. `GOWAY_DETECT_DEADLOCK=0` or `=1` overrides the
    /// program. It costs goroutines nothing (no bookkeeping when they spawn, park or resume:
    /// the proof is about the process's threads, read from `/proc`), and a thread that looks
    /// every 100 ms (see `BENCHMARKS.md`, "Deadlock detection on by default"). See the guide's
    /// "Diagnostics" section for what it does and does not detect.
    ///
    /// ```
    /// goway::runtime::Config::new().detect_deadlock(false).apply().ok();
    /// ```
    pub fn detect_deadlock(mut self, yes: bool) -> Self {
        self.detect_deadlock = yes;
        self
    }

    /// Most OS threads of the blocking pool behind [`block_on_thread`] (and goway's DNS
    /// lookups) alive at once; `0` counts as 1. Default [`DEFAULT_MAX_BLOCKING_THREADS`], 512,
    /// as tokio's `max_blocking_threads` and about Go's limit of 500 threads in DNS lookups at
    /// once: the pool is for work that mostly waits (disk, DNS, a blocking client), so it
    /// allows many more threads than CPUs, and starts them only when needed. Calls beyond the
    /// maximum wait in a queue for a free thread ([`blocking_stats`] counts them; see
    /// [`block_on_thread`]). Each possible thread is counted against [`max_goroutines`] as two
    /// memory mappings (its stack and guard page).
    ///
    /// ```
    /// goway::runtime::Config::new().max_blocking_threads(16).apply().ok();
    /// ```
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.max_blocking_threads = n;
        self
    }

    /// How long a blocking-pool thread waits for more work before it exits. Default
    /// [`DEFAULT_BLOCKING_KEEP_ALIVE`], 10 seconds (tokio's `thread_keep_alive`): a burst of
    /// blocking calls reuses threads, and an idle program holds none.
    ///
    /// ```
    /// use std::time::Duration;
    /// goway::runtime::Config::new().blocking_keep_alive(Duration::from_secs(60)).apply().ok();
    /// ```
    pub fn blocking_keep_alive(mut self, d: Duration) -> Self {
        self.blocking_keep_alive = d;
        self
    }

    /// The blocked-worker watchdog: a goroutine that keeps its worker thread for longer than
    /// `threshold` without parking or yielding (in a blocking call such as
    /// `std::thread::sleep`, std I/O or a std lock, or a long computation) holds up every
    /// goroutine queued on that worker, and is named in a `log::warn!` (target
    /// `goway::runtime`) with its id, name and spawn site and how long it has held the worker,
    /// once per incident (such calls belong in [`block_on_thread`]). Default 100 ms;
    /// `Duration::ZERO` turns it off. A monitor thread looks every quarter of the threshold;
    /// goroutines pay a few plain stores per switch.
    ///
    /// ```
    /// use std::time::Duration;
    /// goway::runtime::Config::new()
    ///     .blocked_worker(Duration::from_millis(500)) // or Duration::ZERO: off
    ///     .apply()
    ///     .ok();
    /// ```
    pub fn blocked_worker(mut self, threshold: Duration) -> Self {
        self.blocked_worker = threshold;
        self
    }

    /// Applies the settings.
    ///
    /// # Errors
    /// [`ConfigError::StackSize`] if the stack size is over [`max_stack_size`] (checked
    /// first: nothing is applied, and the defaults still apply when the first goroutine
    /// starts); [`ConfigError::AlreadyStarted`] if the runtime was started already (by a spawn
    /// or an earlier `apply`): the settings in force then stay.
    pub fn apply(self) -> Result<(), ConfigError> {
        // may would panic on its first spawn (and stay broken) with a stack it cannot map.
        check_stack_size(self.stack_size)?;
        let mut applied = false;
        SETTINGS.get_or_init(|| {
            applied = true;
            let workers = if self.workers == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                self.workers
            };
            let cfg = may::config();
            cfg.set_workers(workers);
            cfg.set_stack_size(stack_words(self.stack_size));
            cfg.set_pool_capacity(self.coroutine_pool.max(1));
            switches::REGISTRY.set(self.registry);
            switches::DETECT_DEADLOCK.set(self.detect_deadlock);
            watchdog::start(self.blocked_worker);
            let max_blocking_threads = self.max_blocking_threads.max(1);
            Settings {
                abort_on_panic: self.abort_on_panic,
                max_live: live_limit(self.coroutine_pool.max(1), max_blocking_threads),
                max_blocking_threads,
                blocking_keep_alive: self.blocking_keep_alive,
            }
        });
        if applied {
            Ok(())
        } else {
            Err(AlreadyStarted.into())
        }
    }
}

/// may counts stack sizes in machine words, and prints a debug line for an odd count: keep it even.
fn stack_words(bytes: usize) -> usize {
    let words = bytes
        .max(MIN_STACK_SIZE)
        .div_ceil(std::mem::size_of::<usize>());
    words + (words & 1)
}

fn settings() -> &'static Settings {
    if let Some(s) = SETTINGS.get() {
        return s;
    }
    let _ = Config::new().apply();
    SETTINGS.get_or_init(|| Settings {
        abort_on_panic: false,
        max_live: live_limit(1000, DEFAULT_MAX_BLOCKING_THREADS),
        max_blocking_threads: DEFAULT_MAX_BLOCKING_THREADS,
        blocking_keep_alive: DEFAULT_BLOCKING_KEEP_ALIVE,
    })
}

/// Mappings kept free for everything else the process maps (heap arenas, libraries, threads).
const MAP_RESERVE: usize = 1024;

/// How many goroutines may live at once: every may stack is one `mmap` plus a guard page, two
/// of the process's `vm.max_map_count` mappings (65,530 by default), and the stacks kept in
/// may's pool hold theirs too, as do the blocking pool's threads (`blocking`) when they all
/// run. Past the limit the kernel refuses mappings and the process cannot even allocate
/// memory, so goway refuses the spawn first, with an error naming the setting.
fn live_limit(pool: usize, blocking_threads: usize) -> usize {
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    let used_now = std::fs::read_to_string("/proc/self/maps").map_or(512, |s| s.lines().count());
    (max_maps.saturating_sub(used_now + MAP_RESERVE) / 2)
        .saturating_sub(pool)
        .saturating_sub(blocking_threads)
}

/// The most goroutines that can be alive at once in this process: each goroutine stack takes
/// two of `vm.max_map_count`'s memory mappings, less what the process already maps, the
/// stacks kept in may's pool and the threads the blocking pool may start
/// ([`Config::max_blocking_threads`], two mappings each). About 31,000 on a default Linux
/// (65,530 mappings). Raise it with `sysctl -w vm.max_map_count=<n>` before the program
/// starts.
pub fn max_goroutines() -> usize {
    settings().max_live
}

/// `true` when called from inside a goroutine (any may coroutine), `false` on a plain thread.
#[inline(never)] // reads a thread-local: never keep its address across a caller's park
pub fn in_goroutine() -> bool {
    may::coroutine::is_coroutine()
}

/// Lets other goroutines run (Go's `runtime.Gosched`). On a plain thread, yields the thread.
///
/// Most calls requeue the goroutine behind the others on its worker's local run queue (cheap).
/// Every 61st call on a worker (Go checks its global queue every 61 schedules) it is woken
/// through the timer thread instead, which puts it behind goroutines waiting on the worker's
/// global queue (new goroutines, goroutines woken by OS threads), so a goroutine that loops on
/// `yield_now` cannot starve them.
pub fn yield_now() {
    if !in_goroutine() {
        std::thread::yield_now();
        return;
    }
    if next_yield_is_global() {
        park::yield_to_all();
    } else {
        may::coroutine::yield_now();
    }
}

/// Counts this worker's yields; `true` every 61st. Never inlined: a thread-local's address
/// must not be kept across the caller's yield (the goroutine may resume on another worker).
#[inline(never)]
fn next_yield_is_global() -> bool {
    thread_local! {
        static YIELDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    YIELDS.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % 61 == 0
    })
}

/// A goroutine's panic, as returned by [`JoinHandle::join`], or a panic of a closure run by
/// [`block_on_thread`].
pub struct Panicked {
    name: Option<String>,
    message: String,
    payload: Box<dyn Any + Send>,
}

impl Panicked {
    fn new(name: Option<String>, payload: Box<dyn Any + Send>) -> Self {
        Panicked {
            name,
            message: panic_message(payload.as_ref()),
            payload,
        }
    }

    /// The panic message (`"<non-string panic payload>"` when the payload is not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The goroutine's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The raw payload, to re-raise with `std::panic::resume_unwind`.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("name", &self.name)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "goroutine '{n}' panicked: {}", self.message),
            None => write!(f, "goroutine panicked: {}", self.message),
        }
    }
}

impl std::error::Error for Panicked {}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Owned permission to wait for a goroutine's result. Dropping it detaches the goroutine; a
/// detached goroutine's panic is logged with `log::error!` (target `goway::runtime`).
pub struct JoinHandle<T> {
    join: Arc<join::Join<T>>,
    name: Option<Arc<str>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("name", &self.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine to finish (parking the caller, goroutine or thread).
    ///
    /// # Errors
    /// [`Panicked`] with the message if the goroutine panicked.
    pub fn join(self) -> Result<T, Panicked> {
        match self.join.wait(None, Why::new(Wait::Join)) {
            join::Waited::Done(r) => r,
            join::Waited::TimedOut => unreachable!("a join without deadline does not time out"),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the goroutine is still running.
    ///
    /// # Errors
    /// `Err(Ok(handle))` on timeout; `Err(Err(Panicked))` if it panicked.
    #[allow(clippy::type_complexity)]
    pub fn join_timeout(self, timeout: Duration) -> Result<T, Result<Self, Panicked>> {
        match self
            .join
            .wait(Instant::now().checked_add(timeout), Why::new(Wait::Join))
        {
            join::Waited::Done(Ok(v)) => Ok(v),
            join::Waited::Done(Err(p)) => Err(Err(p)),
            join::Waited::TimedOut => Err(Ok(self)),
        }
    }

    /// `true` once the goroutine has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// The goroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // A panic nobody will ever join is logged here, or by the goroutine if it ends later.
        if let Some(Err(p)) = self.join.detach() {
            log_unjoined(&p);
        }
    }
}

fn log_unjoined(p: &Panicked) {
    match &p.name {
        Some(n) => log::error!(target: "goway::runtime", "goroutine '{n}' panicked: {}", p.message),
        None => log::error!(target: "goway::runtime", "goroutine panicked: {}", p.message),
    }
}

/// Configures a goroutine before spawning it: its name (shown in panics and logs) and stack size.
///
/// ```
/// let h = goway::Builder::new().name("worker-1").stack_size(128 * 1024).spawn(|| 1).unwrap();
/// assert_eq!(h.name(), Some("worker-1"));
/// assert_eq!(h.join().unwrap(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the goroutine.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes (minimum [`MIN_STACK_SIZE`], 4 KiB: smaller sizes are
    /// rounded up; maximum [`max_stack_size`], 1 GiB unless `RLIMIT_STACK` is lower: a larger
    /// size makes [`spawn`](Builder::spawn) fail with a [`StackSizeError`]).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the goroutine.
    ///
    /// Goroutines with the default stack size run on recycled coroutines (see the module
    /// docs), so a spawn usually costs no system call. A goroutine spawning faster than the
    /// runtime starts them is briefly paused once 256 are waiting to start, as Go's bounded
    /// run queue would.
    ///
    /// # Errors
    /// - The [`stack_size`](Builder::stack_size) is over [`max_stack_size`]: an error of kind
    ///   `InvalidInput` holding a [`StackSizeError`] ([`StackSizeError::from_io`]), before
    ///   anything is mapped.
    /// - The goroutine needs a new stack and the process is at [`max_goroutines`] (each stack
    ///   takes two of `vm.max_map_count`'s memory mappings), or the OS refused the stack
    ///   (`OutOfMemory`). The error names the limit and the setting to change.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if let Some(sz) = self.stack_size {
            check_stack_size(sz)?;
        }
        let settings = settings();
        let join = join::Join::new();
        let name: Option<Arc<str>> = self.name.as_deref().map(Arc::from);
        let handle = JoinHandle {
            join: join.clone(),
            name: name.clone(),
        };
        let abort = settings.abort_on_panic;
        let site = std::panic::Location::caller();
        let reg = registry::register_goroutine(name.clone(), Some(site));
        let job: carrier::Job = Box::new(move |stack| {
            carrier::started();
            run_goroutine(f, &join, name, site, abort, reg, stack)
        });
        LIVE.fetch_add(1, Ordering::Relaxed);
        let r = match self.stack_size {
            Some(sz) if stack_words(sz) != may::config().get_stack_size() => {
                carrier::spawn_dedicated(job, stack_words(sz), settings.max_live)
            }
            _ => carrier::submit(job, settings.max_live),
        };
        match r {
            Ok(()) => {
                carrier::throttle();
                Ok(handle)
            }
            Err(e) => {
                LIVE.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

fn run_goroutine<F, T>(
    f: F,
    join: &join::Join<T>,
    name: Option<Arc<str>>,
    site: registry::Site,
    abort: bool,
    reg: Option<registry::Registration>,
    stack: overflow::StackRef,
) where
    F: FnOnce() -> T,
{
    // Names the goroutine to the stack overflow handler and the watchdog while it runs.
    let id = reg.as_ref().map_or(0, registry::Registration::id);
    let _shown = stack.enter(id, name.as_deref(), Some(site));
    // Marks this coroutine as running the goroutine; cleared (even on unwind) before the
    // registration is dropped, so an idle carrier never points at a stale record.
    let entered = reg.as_ref().map(|r| registry::enter(r, stack));
    struct Live;
    impl Drop for Live {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let live = Live;
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let r = r.map_err(|p| Panicked::new(name.as_deref().map(str::to_owned), p));
    if let Err(p) = &r {
        if abort {
            crash(p);
        }
    }
    // No longer counted once a joiner can see the result.
    drop(entered);
    drop(reg);
    drop(live);
    if let Some(Err(p)) = join.finish(r) {
        log_unjoined(&p);
    }
}

/// Go's crash on an unrecovered panic (`abort_on_panic`): message to stderr, exit status 2.
fn crash(p: &Panicked) -> ! {
    let mut err = io::stderr().lock();
    let _ = match &p.name {
        Some(n) => writeln!(err, "panic: {}\n\ngoroutine '{n}' [running]", p.message),
        None => writeln!(err, "panic: {}", p.message),
    };
    let _ = err.flush();
    std::process::exit(2)
}

/// Spawns a goroutine with the default settings; what [`go!`](crate::go!) calls.
///
/// Its stack has the runtime's default size, which [`Config::apply`] checked (and the
/// built-in default is valid), so it never fails on the stack size.
///
/// # Panics
/// If the process is at [`max_goroutines`] or the OS refuses a new stack, with the error
/// [`Builder::spawn`] would return (Go itself dies with a fatal error when it cannot create a
/// goroutine). Use [`Builder::spawn`] to handle that instead.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("go!: {e}"),
    }
}
