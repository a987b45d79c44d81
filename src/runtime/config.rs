//! The runtime's one-time configuration ([`Config`]), applied before the first goroutine
//! starts, and the settings and limits derived from it.

use std::sync::OnceLock;
use std::time::Duration;

use super::stack::{DEFAULT_STACK_SIZE, StackSizeError, check_stack_size, stack_words};
use super::{switches, watchdog};

/// Default most blocking-pool threads alive at once (see [`Config::max_blocking_threads`]):
/// tokio's default, about Go's limit of 500 threads doing DNS lookups at once.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// Default time an idle blocking-pool thread waits for work before it exits (see
/// [`Config::blocking_keep_alive`]): 10 seconds, as tokio's.
pub const DEFAULT_BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

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

pub(crate) struct Settings {
    pub(crate) abort_on_panic: bool,
    /// Most goroutines that may be alive at once (see [`max_goroutines`]).
    pub(crate) max_live: usize,
    /// The blocking pool's most threads (at least 1) and idle time before a thread exits.
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
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
    ///
    /// # Examples
    /// ```
    /// goway::runtime::Config::new().apply().ok(); // the defaults, as if never configured
    /// assert!(goway::runtime::max_goroutines() > 0);
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// goway::runtime::Config::new().workers(1).apply().ok();
    /// assert_eq!(goway::go!(|| 6 * 7).join().unwrap(), 42);
    /// ```
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
    ///
    /// [`MIN_STACK_SIZE`]: crate::runtime::MIN_STACK_SIZE
    /// [`max_stack_size`]: crate::runtime::max_stack_size
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Go's behaviour on an unrecovered panic: print `panic: <message>` and the goroutine's
    /// name to stderr and exit the process with status 2. Default `false`: the panic ends only
    /// its goroutine.
    ///
    /// # Examples
    /// ```
    /// goway::runtime::Config::new().abort_on_panic(false).apply().ok(); // the default
    /// // Room for a panic's backtrace (RUST_BACKTRACE=1), which runs on the goroutine's stack.
    /// let b = goway::Builder::new().stack_size(256 << 10);
    /// let h = b.spawn(|| -> u32 { panic!("boom") }).unwrap();
    /// assert_eq!(h.join().unwrap_err().message(), "boom"); // only the goroutine ended
    /// ```
    pub fn abort_on_panic(mut self, yes: bool) -> Self {
        self.abort_on_panic = yes;
        self
    }

    /// How many finished goroutine stacks are kept for reuse (may's coroutine pool). Reuse
    /// avoids an `mmap`/`munmap` pair per spawn; each kept stack holds two memory mappings,
    /// which count against the goroutine limit. Default 1,000.
    ///
    /// # Examples
    /// ```
    /// goway::runtime::Config::new().coroutine_pool(100).apply().ok();
    /// assert!(goway::runtime::max_goroutines() > 0);
    /// ```
    pub fn coroutine_pool(mut self, n: usize) -> Self {
        self.coroutine_pool = n;
        self
    }

    /// Keep the goroutine registry behind [`dump`] and the deadlock detector's detailed report:
    /// every goroutine's id, name, spawn site, start time and current wait, updated only when
    /// it parks and resumes. Default `false`: it costs a few percent on a channel ping-pong (two
    /// parks per round trip) and about a third on spawning goroutines that do nothing (see
    /// `BENCHMARKS.md`, "Diagnostics"), more than goway adds silently. The environment
    /// variable `GOWAY_REGISTRY=1` turns it on, `=0` off, whatever the program sets, so a
    /// deployed program can be diagnosed without a rebuild. Off, [`dump`] lists nothing, and
    /// the deadlock detector (on either way) reports how many goroutines are asleep and what
    /// the threads wait on, but not each goroutine.
    ///
    /// [`dump`]: crate::runtime::dump
    ///
    /// # Examples
    /// ```
    /// goway::runtime::Config::new().registry(true).apply().ok(); // or GOWAY_REGISTRY=1
    /// assert!(!goway::runtime::dump().is_empty());
    /// ```
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
    /// every 100 ms (see `BENCHMARKS.md`, "Diagnostics"). See the guide's
    /// "Diagnostics" section for what it does and does not detect.
    ///
    /// ```
    /// goway::runtime::Config::new().detect_deadlock(false).apply().ok();
    /// ```
    ///
    /// [`dump`]: crate::runtime::dump
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
    ///
    /// [`block_on_thread`]: crate::runtime::block_on_thread
    /// [`blocking_stats`]: crate::runtime::blocking_stats
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
    ///
    /// [`block_on_thread`]: crate::runtime::block_on_thread
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
    ///
    /// [`max_stack_size`]: crate::runtime::max_stack_size
    ///
    /// # Examples
    /// ```
    /// use goway::runtime::{Config, ConfigError};
    /// match Config::new().workers(2).apply() {
    ///     Ok(()) => {}                              // applied
    ///     Err(ConfigError::AlreadyStarted(_)) => {} // goroutines ran already: the settings stay
    ///     Err(e) => panic!("{e}"),
    /// }
    /// // Once started, the settings never change.
    /// assert!(matches!(Config::new().apply(), Err(ConfigError::AlreadyStarted(_))));
    /// ```
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

pub(crate) fn settings() -> &'static Settings {
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
///
/// # Examples
/// ```
/// let max = goway::runtime::max_goroutines();
/// assert!(goway::runtime::num_goroutines() <= max);
/// ```
pub fn max_goroutines() -> usize {
    settings().max_live
}
