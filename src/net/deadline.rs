//! Read and write deadlines and timeouts, kept in atomics so that any goroutine or thread can
//! move them while another one is blocked in an operation (Go's `SetReadDeadline` from
//! elsewhere).
//!
//! Each direction of a stream has a [`Limit`]: a per-operation timeout (`std`'s
//! `set_read_timeout`: an operation fails once it has waited that long) and an absolute
//! deadline (Go's: every operation fails from then on). A blocked operation reads both again
//! each time it wakes, so a change takes effect at once when the setter wakes it
//! ([`NetFd`](super::netfd::NetFd) does).

use std::io;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::runtime::blocked::{self, Blocked};
use crate::runtime::registry::{Wait, Why};

/// The error of an operation that ran out of time (Go's "i/o timeout").
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")
}

/// `Err(InvalidInput)` for a zero timeout, as `std` rejects it.
pub(crate) fn check_timeout(d: Option<Duration>) -> io::Result<()> {
    if d == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// `d` rounded up to whole milliseconds, at least 1 ms, and at most an hour. may keeps its
/// timeouts in whole milliseconds, truncated, and treats 0 as "no timeout": a 0.3 ms timeout
/// would wait forever. Very long waits are cut into hours (the caller waits again).
#[inline]
pub(crate) fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000).clamp(1, 3_600_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(3_600_000))
}

/// The instant deadlines are counted from (nanoseconds after it; 0 means "none").
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// One direction's limits, settable through a shared reference.
#[derive(Debug, Default)]
pub(crate) struct Limit {
    /// The per-operation timeout in nanoseconds; 0: none.
    timeout: AtomicU64,
    /// The deadline in nanoseconds after `EPOCH`; 0: none (a deadline at or before `EPOCH`
    /// is kept as 1, which has passed too).
    deadline: AtomicU64,
}

impl Limit {
    /// Sets the per-operation timeout (`None`: none; a zero duration must be rejected first).
    pub(crate) fn set_timeout(&self, d: Option<Duration>) {
        let ns = d.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.timeout.store(ns, Ordering::SeqCst);
    }

    /// The per-operation timeout.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        match self.timeout.load(Ordering::SeqCst) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Sets the deadline (`None`: none).
    pub(crate) fn set_deadline(&self, t: Option<Instant>) {
        let ns = t.map_or(0, |t| {
            u64::try_from(t.saturating_duration_since(*EPOCH).as_nanos())
                .unwrap_or(u64::MAX)
                .max(1)
        });
        self.deadline.store(ns, Ordering::SeqCst);
    }

    /// `true` if neither a timeout nor a deadline is set (two loads).
    #[inline]
    pub(crate) fn is_unlimited(&self) -> bool {
        self.timeout.load(Ordering::Relaxed) == 0 && self.deadline.load(Ordering::Relaxed) == 0
    }

    /// When an operation that started at `start` must end, by the limits set now (`None`:
    /// no limit).
    #[inline]
    pub(crate) fn end(&self, start: Instant) -> Option<Instant> {
        let by_timeout = match self.timeout.load(Ordering::SeqCst) {
            0 => None,
            ns => start.checked_add(Duration::from_nanos(ns)),
        };
        let by_deadline = match self.deadline.load(Ordering::SeqCst) {
            0 => None,
            ns => EPOCH.checked_add(Duration::from_nanos(ns)),
        };
        match (by_timeout, by_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The time left until `end` (`Ok(None)`: no limit), or the timeout error if it has passed.
#[inline]
pub(crate) fn remaining(end: Option<Instant>) -> io::Result<Option<Duration>> {
    match end {
        None => Ok(None),
        Some(e) => {
            let now = Instant::now();
            if now >= e {
                Err(timed_out())
            } else {
                Ok(Some(e - now))
            }
        }
    }
}

/// Marks the caller as in network I/O until the guard drops.
#[inline]
pub(crate) fn io_wait(timed: bool) -> Blocked {
    blocked::block_here(Why::new(Wait::NetIo), timed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn sub_millisecond_timeouts_round_up_and_long_ones_are_cut() {
        assert_eq!(
            ceil_ms(Duration::from_micros(300)),
            Duration::from_millis(1)
        );
        assert_eq!(ceil_ms(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(
            ceil_ms(Duration::from_micros(1001)),
            Duration::from_millis(2)
        );
        assert_eq!(ceil_ms(Duration::MAX), 3600 * S);
    }

    #[test]
    fn end_is_the_earlier_limit() {
        let now = Instant::now();
        let lim = Limit::default();
        assert!(lim.is_unlimited());
        assert_eq!(lim.end(now), None);
        lim.set_timeout(Some(S));
        lim.set_deadline(Some(now + 2 * S));
        assert!(!lim.is_unlimited());
        assert_eq!(lim.end(now), Some(now + S));
        lim.set_timeout(Some(3 * S));
        assert_eq!(lim.end(now), Some(now + 2 * S));
        lim.set_timeout(None);
        lim.set_deadline(None);
        assert!(lim.is_unlimited());
    }

    #[test]
    fn a_deadline_before_the_epoch_has_passed() {
        let lim = Limit::default();
        let long_ago = Instant::now().checked_sub(Duration::from_secs(1));
        lim.set_deadline(long_ago.or(Some(*EPOCH)));
        let err = remaining(lim.end(Instant::now())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(remaining(None).unwrap(), None);
    }
}
