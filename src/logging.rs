//! Logging what clients can repeat at will, without letting them flood the log.
//!
//! A server sees some events as often as its clients choose to cause them: connections reset
//! by the peer, clients disconnected for being slow, malformed input. Logged one line each,
//! a storm of them writes a line per event (hundreds of thousands a minute), buries what an
//! operator needs and costs the server CPU and disk. Go's `net/http` does not log client
//! resets at all, and logs only accept and TLS handshake errors through `ErrorLog`.
//! [`LogSummary`] keeps such events visible at a bounded rate: the first one of a quiet period
//! is logged as it happens, with its detail; those that follow within the period are counted
//! and logged as one line when it ends.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Default period of a [`LogSummary`]: at most one line per kind of event every 10 s.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

/// Logs a kind of event at most once per period, with a count of the rest: the first event
/// after a quiet period is logged at once with its detail; the events that follow within the
/// period are counted, and one line reports them when the period ends:
///
/// ```text
/// INFO goway::server: conn 12 127.0.0.1:50312 closed: reset by peer
/// INFO goway::server: 48211 more connections reset by peer in the last 10 s
/// ```
///
/// A storm of any length thus logs about one line per period. Recording an event takes an
/// uncontended lock for a few instructions; the detail is only formatted when it is logged,
/// and nothing is done at all when the level is disabled for the target. The summary line is
/// written by a goway timer at the end of the period (on a goroutine), so counts never wait
/// for the next event to be reported; [`flush`](LogSummary::flush) writes it at once.
///
/// Clones share their counts. For a process-wide summary, keep it in a `static`:
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use goway::logging::LogSummary;
///
/// static RESETS: LazyLock<LogSummary> = LazyLock::new(|| {
///     LogSummary::new("connections reset by peer")
///         .target("myserver")
///         .level(log::Level::Info)
///         .period(Duration::from_secs(10))
/// });
///
/// # let _ = env_logger::Builder::new().filter_level(log::LevelFilter::Info).is_test(true).try_init();
/// let peer = "127.0.0.1:50312";
/// // Logged: the first in this period.
/// assert!(RESETS.record(|| format!("{peer}: connection reset by peer")));
/// // Counted, and reported in one line ten seconds later.
/// assert!(!RESETS.record(|| format!("{peer}: connection reset by peer")));
/// assert_eq!(RESETS.pending(), 1);
/// RESETS.flush(); // or now: "1 more connections reset by peer in the last 0 s"
/// assert_eq!(RESETS.pending(), 0);
/// ```
#[derive(Clone)]
pub struct LogSummary {
    inner: Arc<Inner>,
}

struct Inner {
    what: &'static str,
    target: &'static str,
    level: log::Level,
    period: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the last line was logged.
    last: Option<Instant>,
    /// Events since then, not logged.
    counted: u64,
    /// A timer will log the count.
    armed: bool,
}

impl fmt::Debug for LogSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSummary")
            .field("what", &self.inner.what)
            .field("target", &self.inner.target)
            .field("level", &self.inner.level)
            .field("period", &self.inner.period)
            .field("counted", &self.inner.state.lock().counted)
            .finish()
    }
}

impl LogSummary {
    /// A summary of events called `what` in its count line (`"connections reset by peer"`:
    /// `"1234 more connections reset by peer in the last 10 s"`), logged at `Info` under the
    /// target `goway`, at most once per [`DEFAULT_PERIOD`].
    pub fn new(what: &'static str) -> Self {
        LogSummary {
            inner: Arc::new(Inner {
                what,
                target: "goway",
                level: log::Level::Info,
                period: DEFAULT_PERIOD,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            what: shared.what,
            target: shared.target,
            level: shared.level,
            period: shared.period,
            state: Mutex::new(State::default()),
        });
        f(&mut inner);
        LogSummary {
            inner: Arc::new(inner),
        }
    }

    /// The `log` target of its lines.
    pub fn target(self, target: &'static str) -> Self {
        self.with(|i| i.target = target)
    }

    /// The level of its lines.
    pub fn level(self, level: log::Level) -> Self {
        self.with(|i| i.level = level)
    }

    /// At most one line per `period` (a zero period logs every event).
    pub fn period(self, period: Duration) -> Self {
        self.with(|i| i.period = period)
    }

    /// Records one event. Logs `detail()` if it is the first since the last line was logged
    /// more than a period ago, and returns `true`; otherwise counts it for the summary line
    /// and returns `false` (also when the level is disabled).
    pub fn record(&self, detail: impl FnOnce() -> String) -> bool {
        let i = &*self.inner;
        if !log::log_enabled!(target: i.target, i.level) {
            return false;
        }
        let now = Instant::now();
        {
            let mut st = i.state.lock();
            match st.last {
                Some(t) if now.duration_since(t) < i.period => {
                    st.counted += 1;
                    if !st.armed {
                        st.armed = true;
                        let inner = self.inner.clone();
                        let due = (t + i.period).saturating_duration_since(now);
                        // The timer runs once; it keeps the summary alive until then.
                        let _timer = crate::time::after_func(due, move || report(&inner));
                    }
                    return false;
                }
                _ => st.last = Some(now),
            }
        }
        log::log!(target: i.target, i.level, "{}", detail());
        true
    }

    /// Logs the count of events not logged yet, if any, now.
    pub fn flush(&self) {
        report(&self.inner);
    }

    /// Events counted and not logged yet.
    pub fn pending(&self) -> u64 {
        self.inner.state.lock().counted
    }
}

/// Logs the count line, if anything was counted; the line opens a new period.
fn report(i: &Inner) {
    let now = Instant::now();
    let (n, since) = {
        let mut st = i.state.lock();
        st.armed = false;
        if st.counted == 0 {
            return;
        }
        let since = st.last.replace(now);
        (std::mem::take(&mut st.counted), since)
    };
    let secs = since.map_or(0.0, |t| now.duration_since(t).as_secs_f64());
    log::log!(target: i.target, i.level, "{n} more {} in the last {secs:.0} s", i.what);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captures the lines of the target `goway::logging::test`.
    struct Capture(Mutex<Vec<String>>);

    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata<'_>) -> bool {
            m.target() == "goway::logging::test"
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                self.0.lock().push(r.args().to_string());
            }
        }
        fn flush(&self) {}
    }

    static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

    #[test]
    fn a_storm_logs_its_first_event_and_one_count_line() {
        // Other unit tests may have set a logger: then this one checks nothing but the counts.
        let ours = log::set_logger(&CAPTURE).is_ok();
        log::set_max_level(log::LevelFilter::Trace);
        let s = LogSummary::new("resets")
            .target("goway::logging::test")
            .period(Duration::from_millis(300));
        let start = Instant::now();
        let mut logged = 0;
        for i in 0..10_000 {
            if s.record(|| format!("reset {i}")) {
                logged += 1;
            }
        }
        if !ours {
            return;
        }
        assert_eq!(logged, 1);
        assert_eq!(s.pending(), 9_999);
        // The timer reports the count when the period ends.
        while CAPTURE.0.lock().len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(10), "no count line");
            // Bounds a poll on the timer's line; it synchronises nothing.
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(s.pending(), 0);
        let lines = CAPTURE.0.lock().clone();
        assert_eq!(lines[0], "reset 0");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].starts_with("9999 more resets in the last "),
            "{lines:?}"
        );
        // Within the next period, events are counted again; flush reports them at once.
        assert!(!s.record(|| "late".into()));
        s.flush();
        let lines = CAPTURE.0.lock().clone();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].starts_with("1 more resets"), "{lines:?}");
    }
}
