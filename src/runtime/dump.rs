//! The goroutine dump: Go's `debug=2` goroutine profile without stacks, grouped as its
//! `debug=1` profile is, but saying which channel each goroutine waits on and where it was
//! spawned.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::own;
use super::registry::{self, Owner, Record, Site, State, Wait};

/// Goroutines listed one by one in a group; the rest are counted.
const LIST_MAX: usize = 20;

/// A readable report of every goroutine spawned through goway, and of every plain thread
/// waiting in a goway operation, when the registry is on ([`Config::registry`](super::Config::registry),
/// or `GOWAY_REGISTRY=1`; off by default): what each is doing (running, or the channel operation,
/// select, sleep, `sync` wait or network I/O it is blocked in), grouped by state and spawn
/// site (Go's goroutine profile, without stacks), with each running or parked goroutine's
/// stack size and high-water mark.
///
/// The high-water mark is measured with `mincore(2)`: the stack's resident pages counted
/// down from its top, so it is page-grained, and since goroutines run on reused stacks it is
/// the deepest any goroutine on that stack has gone, not only this one (a stack goway could
/// not locate shows neither figure).
///
/// For a channel operation the report names the channel by its creation site (the line of
/// its `chan::bounded`, `chan::unbounded`, `time::after`, … call) and for a `select!` its own
/// site. The text is meant for people; its layout may change. Safe to call from anywhere, at
/// any time (it takes a snapshot: goroutines keep running meanwhile). It is a `String` so
/// that a server can serve it, Go's `net/http/pprof` goroutine page.
///
/// # Examples
/// ```
/// use goway::chan;
///
/// goway::runtime::Config::new().registry(true).apply().unwrap();
/// let (tx, rx) = chan::bounded::<u32>(0);
/// let h = goway::Builder::new().name("consumer").spawn(move || rx.recv()).unwrap();
/// // Wait until the consumer is parked on the channel.
/// while !goway::runtime::dump().contains("[chan receive]") {
///     goway::runtime::yield_now();
/// }
/// let report = goway::runtime::dump();
/// assert!(report.contains("\"consumer\""));
/// tx.send(7).unwrap();
/// assert_eq!(h.join().unwrap(), Ok(7));
/// ```
pub fn dump() -> String {
    let mut out = String::new();
    if !registry::enabled() {
        out.push_str(
            "goroutine dump unavailable: the goroutine registry is off \
             (turn it on with runtime::Config::registry(true) or GOWAY_REGISTRY=1)\n",
        );
        return out;
    }
    let now = Instant::now();
    let records = registry::records();
    let snaps: Vec<(Arc<Record>, State)> = records
        .into_iter()
        .map(|r| {
            let s = r.snapshot();
            (r, s)
        })
        .filter(|(r, s)| r.is_goroutine() || s.wait != Wait::Running)
        .collect();
    let goroutines = snaps.iter().filter(|(r, _)| r.is_goroutine()).count();
    let threads = snaps.len() - goroutines;
    let _ = writeln!(
        out,
        "goroutine dump: {} {}, {} {} waiting in goway",
        goroutines,
        plural(goroutines, "goroutine", "goroutines"),
        threads,
        plural(threads, "thread", "threads"),
    );

    // Group goroutines by (state, deadline, what they wait on, spawn site).
    type Key = (Wait, bool, Option<SiteKey>, Option<SiteKey>);
    let mut groups: BTreeMap<Key, Vec<&(Arc<Record>, State)>> = BTreeMap::new();
    for e in snaps.iter().filter(|(r, _)| r.is_goroutine()) {
        let spawned = match &e.0.owner {
            Owner::Goroutine { spawned_at, .. } => spawned_at.map(SiteKey),
            Owner::Thread { .. } => None,
        };
        let key = (e.1.wait, e.1.timed, e.1.site.map(SiteKey), spawned);
        groups.entry(key).or_default().push(e);
    }
    for ((wait, timed, site, spawned), members) in &groups {
        out.push('\n');
        let n = members.len();
        let _ = write!(
            out,
            "{n} {} [{}]",
            plural(n, "goroutine", "goroutines"),
            state_label(*wait, *timed)
        );
        if let Some(s) = site {
            let _ = write!(out, ": {}", site_label(*wait, s.0));
        }
        out.push('\n');
        if let Some(s) = spawned {
            let _ = writeln!(out, "    spawned at {}", s.0);
        }
        for (r, _) in members.iter().take(LIST_MAX).map(|e| (&e.0, &e.1)) {
            let _ = write!(out, "    goroutine {}", r.id);
            if let Owner::Goroutine {
                name: Some(name), ..
            } = &r.owner
            {
                let _ = write!(out, " \"{name}\"");
            }
            let _ = write!(out, ", up {:.3}s", secs(now, r.started));
            if let Some((bytes, high)) = r.stack_usage() {
                let _ = write!(out, ", stack {}", size(bytes));
                if let Some(h) = high {
                    let _ = write!(out, " (high-water {})", size(h));
                }
            }
            out.push('\n');
        }
        if n > LIST_MAX {
            let _ = writeln!(out, "    ... and {} more", n - LIST_MAX);
        }
    }
    write_threads(&mut out, snaps.iter().filter(|(r, _)| !r.is_goroutine()));
    out
}

/// The deadlock detector's report: the dump with the registry on; with it off, how many
/// goroutines there are, what each thread waiting in goway waits on (threads are recorded
/// while the detector is on), and how to get the full report.
pub(crate) fn deadlock_report(goroutines: usize) -> String {
    if registry::enabled() {
        return dump();
    }
    let threads: Vec<(Arc<Record>, State)> = registry::records()
        .into_iter()
        .filter(|r| !r.is_goroutine())
        .map(|r| {
            let s = r.snapshot();
            (r, s)
        })
        .filter(|(_, s)| s.wait != Wait::Running)
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "goroutine dump: {} {}, {} {} waiting in goway\n\
         (the goroutine registry is off: run with GOWAY_REGISTRY=1 to see what each goroutine \
         waits on and where it was spawned)",
        goroutines,
        plural(goroutines, "goroutine", "goroutines"),
        threads.len(),
        plural(threads.len(), "thread", "threads"),
    );
    write_threads(&mut out, threads.iter());
    out
}

/// One paragraph per thread: its name, kernel id and state.
fn write_threads<'a>(out: &mut String, threads: impl Iterator<Item = &'a (Arc<Record>, State)>) {
    for (r, s) in threads {
        out.push('\n');
        let _ = write!(out, "thread");
        if let Owner::Thread { name, tid } = &r.owner {
            match name {
                Some(n) => {
                    let _ = write!(out, " \"{n}\"");
                }
                None => out.push_str(" <unnamed>"),
            }
            if let Some(t) = tid {
                let _ = write!(out, " (tid {t})");
            }
        }
        let _ = write!(out, " [{}]", state_label(s.wait, s.timed));
        if let Some(site) = s.site {
            let _ = write!(out, ": {}", site_label(s.wait, site));
        }
        out.push('\n');
    }
}

/// Orders sites by file, line and column (a `Location` is not `Ord`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct SiteKey(Site);

impl PartialOrd for SiteKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SiteKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.file(), self.0.line(), self.0.column()).cmp(&(
            other.0.file(),
            other.0.line(),
            other.0.column(),
        ))
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Bytes as KiB when whole (stack sizes are whole pages).
fn size(bytes: usize) -> String {
    if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

fn secs(now: Instant, since: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64()
}

fn state_label(wait: Wait, timed: bool) -> String {
    if timed {
        format!("{}, with deadline", wait.name())
    } else {
        wait.name().to_owned()
    }
}

fn site_label(wait: Wait, site: Site) -> String {
    match wait {
        Wait::ChanSend | Wait::ChanRecv => format!("channel made at {site}"),
        Wait::Select => format!("select at {site}"),
        _ => format!("at {site}"),
    }
}

/// Prints [`dump`] to stderr each time the process receives `SIGQUIT` (Ctrl-\ in a terminal,
/// `kill -QUIT <pid>`), and goes on running: Go prints its goroutines on `SIGQUIT` too, but
/// then exits. Installing it replaces `SIGQUIT`'s default action (exit with a core dump).
/// Calling it again does nothing.
///
/// The dump is written by a thread named `goway-sigquit`, not in the signal handler (which
/// only wakes that thread, through `signal-hook`).
///
/// # Errors
/// The signal handler could not be installed, or the thread not started.
///
/// # Examples
/// ```no_run
/// goway::runtime::dump_on_signal().expect("SIGQUIT handler");
/// ```
pub fn dump_on_signal() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), (io::ErrorKind, String)>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| install_sigquit().map_err(|e| (e.kind(), e.to_string())));
    match r {
        Ok(()) => Ok(()),
        Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
    }
}

fn install_sigquit() -> io::Result<()> {
    let before = own::open_sockets();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGQUIT])?;
    // signal-hook wakes its iterator through a socket pair: not network I/O.
    if let (Some(b), Some(a)) = (before, own::open_sockets()) {
        own::note_own_sockets(&b, &a);
    }
    std::thread::Builder::new()
        .name("goway-sigquit".into())
        .spawn(move || {
            own::note_runtime_thread();
            for _ in signals.forever() {
                let report = dump();
                let mut err = io::stderr().lock();
                let _ = err.write_all(report.as_bytes());
                let _ = err.flush();
            }
        })?;
    Ok(())
}
