//! Read and write deadlines on top of may's per-operation timeouts.
//!
//! may gives each blocking socket operation a timeout (`set_read_timeout`), restarted by every
//! call; for `may::net::TcpStream` each change of it is also a `setsockopt` system call. Go's
//! deadlines are absolute instants instead. [`Limits`] keeps both forms and applies to the
//! socket the shortest one still ahead, changing the socket's setting only when the setting in
//! force could let an operation run past its limit or would wake it much too early. An early
//! wake-up is harmless: the operation sees `TimedOut`, finds time left, and goes on.

use std::io;
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

/// The timeout currently set on a socket, and whether a new limit needs a change.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TimeoutSlot {
    applied: Option<Duration>,
}

impl TimeoutSlot {
    /// The setting to apply before an operation that must end within `remaining` (`None`: no
    /// limit), or `None` to keep the current one. The current one is kept when it cannot
    /// overshoot `remaining` and wakes no earlier than half of it, or no earlier than
    /// `min_keep` (an early wake costs one spurious wake-up; a change costs a system call).
    #[inline]
    pub(crate) fn plan(
        &self,
        remaining: Option<Duration>,
        min_keep: Duration,
    ) -> Option<Option<Duration>> {
        let remaining = remaining.map(ceil_ms);
        let keep = match (self.applied, remaining) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(c), None) => c >= min_keep,
            (Some(c), Some(r)) => c <= r && (c >= r / 2 || c >= min_keep),
        };
        if keep { None } else { Some(remaining) }
    }

    /// Records that `t` is now set on the socket.
    #[inline]
    pub(crate) fn set(&mut self, t: Option<Duration>) {
        self.applied = t;
    }
}

/// `d` rounded up to whole milliseconds, at least 1 ms. may keeps socket timeouts in whole
/// milliseconds, truncated, and treats 0 as "no timeout": a 0.3 ms timeout would wait forever.
#[inline]
pub(crate) fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// One direction's limits: a per-operation timeout and an absolute deadline.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) slot: TimeoutSlot,
}

impl Limits {
    #[inline]
    pub(crate) fn is_unlimited(&self) -> bool {
        self.timeout.is_none() && self.deadline.is_none() && self.slot.applied.is_none()
    }

    /// When an operation started at `start` must end.
    #[inline]
    fn end(&self, start: Instant) -> Option<Instant> {
        let by_timeout = self.timeout.and_then(|t| start.checked_add(t));
        match (by_timeout, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Runs `op` on `s` within `lim`: applies the remaining time with `set` (only when needed),
/// and retries an early `TimedOut` while time is left.
///
/// `op(s, false)` is the may operation. On a plain thread may cannot time an operation out
/// (its thread path ignores the timer), so there, with a limit set, `op(s, true)` is called
/// instead: one non-blocking attempt on the `std` socket, retried after naps of 50 µs
/// doubling to 5 ms until the limit. A thread may sleep; a goroutine never takes this path.
pub(crate) fn timed<S: ?Sized, T>(
    s: &mut S,
    lim: &mut Limits,
    set: fn(&S, Option<Duration>) -> io::Result<()>,
    mut op: impl FnMut(&mut S, bool) -> io::Result<T>,
) -> io::Result<T> {
    // Shown as "IO wait" in goroutine dumps, and never counted as asleep by the deadlock
    // detector: the peer can always wake it.
    let _io = io_wait(!lim.is_unlimited());
    if lim.is_unlimited() {
        return op(s, false);
    }
    let start = Instant::now();
    let end = lim.end(start);
    if !crate::runtime::in_goroutine() {
        return thread_timed(end, || op(s, true));
    }
    loop {
        let remaining = match end {
            None => None,
            Some(e) => {
                let now = Instant::now();
                if now >= e {
                    return Err(timed_out());
                }
                Some(e - now)
            }
        };
        if let Some(t) = lim.slot.plan(remaining, Duration::MAX) {
            set(s, t)?;
            lim.slot.set(t);
        }
        match op(s, false) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                if end.is_some() {
                    continue;
                }
                return Err(e);
            }
            r => return r,
        }
    }
}

/// Marks the caller as in network I/O until the guard drops.
#[inline]
pub(crate) fn io_wait(timed: bool) -> Blocked {
    blocked::block_here(Why::new(Wait::NetIo), timed)
}

fn thread_timed<T>(
    end: Option<Instant>,
    mut attempt: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let mut nap = Duration::from_micros(50);
    loop {
        let now = Instant::now();
        let left = match end {
            Some(e) if now >= e => return Err(timed_out()),
            Some(e) => e - now,
            None => Duration::MAX,
        };
        match attempt() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
        // A plain thread (this path is never taken in a goroutine): parks the thread.
        crate::time::sleep(nap.min(left));
        nap = (nap * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn plan_keeps_what_is_safe_and_close() {
        let mut slot = TimeoutSlot::default();
        assert_eq!(slot.plan(None, S), None);
        assert_eq!(slot.plan(Some(S), S), Some(Some(S)));
        slot.set(Some(10 * S));
        // Would overshoot: shorten.
        assert_eq!(slot.plan(Some(9 * S), S), Some(Some(9 * S)));
        // Safe and not too early.
        assert_eq!(slot.plan(Some(15 * S), S), None);
        // Safe but far too early, and below min_keep: lengthen.
        assert_eq!(slot.plan(Some(60 * S), 20 * S), Some(Some(60 * S)));
        // Safe, early, but at least min_keep: keep.
        assert_eq!(slot.plan(Some(60 * S), 10 * S), None);
        // No limit wanted: keep a long setting, drop a short one.
        assert_eq!(slot.plan(None, 10 * S), None);
        assert_eq!(slot.plan(None, 20 * S), Some(None));
    }

    #[test]
    fn sub_millisecond_timeouts_round_up() {
        assert_eq!(
            ceil_ms(Duration::from_micros(300)),
            Duration::from_millis(1)
        );
        assert_eq!(ceil_ms(Duration::ZERO), Duration::from_millis(1));
        assert_eq!(
            ceil_ms(Duration::from_micros(1001)),
            Duration::from_millis(2)
        );
        let slot = TimeoutSlot::default();
        assert_eq!(
            slot.plan(Some(Duration::from_micros(10)), S),
            Some(Some(Duration::from_millis(1)))
        );
    }

    #[test]
    fn end_is_the_earlier_limit() {
        let now = Instant::now();
        let lim = Limits {
            timeout: Some(S),
            deadline: Some(now + 2 * S),
            slot: TimeoutSlot::default(),
        };
        assert_eq!(lim.end(now), Some(now + S));
        let lim = Limits {
            timeout: Some(3 * S),
            ..lim
        };
        assert_eq!(lim.end(now), Some(now + 2 * S));
    }
}
