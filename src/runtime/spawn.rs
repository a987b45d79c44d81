//! Starting goroutines: [`spawn`] (behind [`go!`](crate::go!)), [`Builder`], and the
//! [`JoinHandle`] through which a goroutine's result comes back.

use std::fmt;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::config::settings;
use super::panicked::Panicked;
use super::registry::{self, LIVE, Wait, Why};
use super::stack::{check_stack_size, stack_words};
use super::{carrier, join, slots};

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
    ///
    /// # Examples
    /// ```
    /// assert_eq!(goway::go!(|| 6 * 7).join().unwrap(), 42);
    /// // Room for a panic's backtrace (RUST_BACKTRACE=1), which runs on the goroutine's stack.
    /// let b = goway::Builder::new().stack_size(256 << 10);
    /// let p = b.spawn(|| -> u32 { panic!("boom") }).unwrap().join().unwrap_err();
    /// assert_eq!(p.message(), "boom");
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = goway::chan::bounded::<()>(0);
    /// let h = goway::go!(move || rx.recv().is_ok());
    /// // Still waiting for `tx`: the handle comes back.
    /// let h = h.join_timeout(Duration::from_millis(1)).unwrap_err().unwrap();
    /// tx.send(()).unwrap();
    /// assert!(h.join_timeout(Duration::from_secs(10)).unwrap());
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// let h = goway::go!(|| 1);
    /// while !h.is_finished() {
    ///     goway::runtime::yield_now();
    /// }
    /// assert_eq!(h.join().unwrap(), 1);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// The goroutine's name, if it was given one.
    ///
    /// # Examples
    /// ```
    /// let h = goway::Builder::new().name("worker").spawn(|| ()).unwrap();
    /// assert_eq!(h.name(), Some("worker"));
    /// assert_eq!(goway::go!(|| ()).name(), None);
    /// ```
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
    match p.name() {
        Some(n) => {
            log::error!(target: "goway::runtime", "goroutine '{n}' panicked: {}", p.message())
        }
        None => log::error!(target: "goway::runtime", "goroutine panicked: {}", p.message()),
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
    ///
    /// # Examples
    /// ```
    /// let h = goway::Builder::new().spawn(|| "defaults").unwrap();
    /// assert_eq!(h.join().unwrap(), "defaults");
    /// ```
    pub fn new() -> Self {
        Builder::default()
    }

    /// Names the goroutine.
    ///
    /// # Examples
    /// ```
    /// // Room for a panic's backtrace (RUST_BACKTRACE=1), which runs on the goroutine's stack.
    /// let b = goway::Builder::new().stack_size(256 << 10);
    /// let h = b.name("parser").spawn(|| -> u32 { panic!("bad input") }).unwrap();
    /// assert_eq!(h.join().unwrap_err().to_string(), "goroutine 'parser' panicked: bad input");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes (minimum [`MIN_STACK_SIZE`], 4 KiB: smaller sizes are
    /// rounded up; maximum [`max_stack_size`], 1 GiB unless `RLIMIT_STACK` is lower: a larger
    /// size makes [`spawn`](Builder::spawn) fail with a [`StackSizeError`]).
    ///
    /// [`MIN_STACK_SIZE`]: crate::runtime::MIN_STACK_SIZE
    /// [`StackSizeError`]: crate::runtime::StackSizeError
    /// [`max_stack_size`]: crate::runtime::max_stack_size
    ///
    /// # Examples
    /// ```
    /// // 256 KiB on the stack: more than the default 32 KiB holds.
    /// let h = goway::Builder::new()
    ///     .stack_size(1 << 20)
    ///     .spawn(|| std::hint::black_box([1u8; 256 * 1024]).len())
    ///     .unwrap();
    /// assert_eq!(h.join().unwrap(), 256 * 1024);
    /// assert!(goway::Builder::new().stack_size(usize::MAX).spawn(|| ()).is_err());
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the goroutine.
    ///
    /// Goroutines with the default stack size run on recycled coroutines (see the module
    /// docs), so a spawn usually costs no system call. A goroutine spawning faster than the
    /// runtime starts them is paused once 256 are waiting to start, until 192 of them have
    /// started (Go's run queue holds 256), so that a spawning loop does not need a stack per
    /// iteration.
    ///
    /// # Errors
    /// - The [`stack_size`](Builder::stack_size) is over [`max_stack_size`]: an error of kind
    ///   `InvalidInput` holding a [`StackSizeError`] ([`StackSizeError::from_io`]), before
    ///   anything is mapped.
    /// - The goroutine needs a new stack and the process is at [`max_goroutines`] (each stack
    ///   takes two of `vm.max_map_count`'s memory mappings), or the OS refused the stack
    ///   (`OutOfMemory`). The error names the limit and the setting to change.
    ///
    /// [`StackSizeError`]: crate::runtime::StackSizeError
    /// [`StackSizeError::from_io`]: crate::runtime::StackSizeError::from_io
    /// [`max_goroutines`]: crate::runtime::max_goroutines
    /// [`max_stack_size`]: crate::runtime::max_stack_size
    ///
    /// # Examples
    /// ```
    /// match goway::Builder::new().spawn(|| 2 + 2) {
    ///     Ok(h) => assert_eq!(h.join().unwrap(), 4),
    ///     // At max_goroutines, or the OS refused a stack: go! would panic here.
    ///     Err(e) => eprintln!("cannot start a goroutine: {e}"),
    /// }
    /// ```
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
        super::metrics::count_spawn();
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
    stack: slots::StackRef,
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
    let _ = match p.name() {
        Some(n) => writeln!(err, "panic: {}\n\ngoroutine '{n}' [running]", p.message()),
        None => writeln!(err, "panic: {}", p.message()),
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
///
/// [`Config::apply`]: crate::runtime::Config::apply
/// [`max_goroutines`]: crate::runtime::max_goroutines
///
/// # Examples
/// ```
/// let h = goway::runtime::spawn(|| "hi");
/// assert_eq!(h.join().unwrap(), "hi");
/// ```
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
