//! The write queue's byte bound (`Config::write_queue_bytes`): besides holding at most
//! `write_queue` frames, a connection's write queue holds at most this many bytes of replies
//! not yet written, as the codec sizes them ([`Codec::encoded_len`]), counting the batch the
//! writer is writing and a reply the handler is writing itself.
//!
//! At the bound the policy ([`WhenFull`]) decides: `Wait` makes the sender wait for room
//! (a frame larger than the whole bound is then queued alone, once the queue is empty of
//! bytes); `Disconnect` fails the sender with [`Over::Hard`] instead, whatever the frame's
//! size, and the caller closes the connection (Redis's hard output-buffer limit). The soft
//! limit (`write_queue_soft` bytes for `write_queue_soft_for`) fails a sender with
//! [`Over::Soft`] under either policy once the queue has stayed above it that long; it is
//! checked when a sender takes room, and a sender waiting for room waits no longer than
//! that (Redis checks its soft limit when a reply is added).
//!
//! Senders add a frame's size before queueing it (a compare-and-swap that fails without a
//! trace when there is no room) and the writer takes it off once written; both are single
//! atomic operations, so the common case costs no lock. A sender that finds
//! no room registers as a waiter, checks again, and parks on a one-slot channel; the writer,
//! after taking bytes off, posts a token there when someone waits. The register-then-check
//! on one side and the subtract-then-look on the other (all `SeqCst`) mean that either the
//! sender sees the room or the writer sees the sender. A woken sender that finds no room
//! waits again; one that finds the connection closed passes the token on, so every waiter
//! learns it.
//!
//! [`Codec::encoded_len`]: crate::net::codec::Codec::encoded_len
//! [`WhenFull`]: super::WhenFull

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::config::{Effective, WhenFull};
use crate::chan::{self, Receiver, RecvTimeoutError, Sender};

/// Why a sender could not get room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The connection is closing.
    Closed,
    /// The deadline passed.
    Timeout,
    /// The connection is past its limit: close it.
    Over(Over),
}

/// How a connection went past its output limit (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// A frame of `frame` bytes did not fit beside the `queued` ones under `limit`
    /// ([`WhenFull::Disconnect`]).
    Hard {
        queued: usize,
        frame: usize,
        limit: usize,
    },
    /// More than `limit` bytes stayed queued for `stayed` (at least `soft_for`).
    Soft {
        queued: usize,
        limit: usize,
        soft_for: Duration,
        stayed: Duration,
    },
}

impl fmt::Display for Over {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Over::Hard {
                queued,
                frame,
                limit,
            } => write!(
                f,
                "hard limit {limit} bytes: a reply of {frame} bytes after {queued} bytes of replies not yet written"
            ),
            Over::Soft {
                queued,
                limit,
                soft_for,
                stayed,
            } => write!(
                f,
                "soft limit {limit} bytes for {soft_for:?}: {queued} bytes of replies not yet written, above the limit for {stayed:.1?}"
            ),
        }
    }
}

/// The limits of one connection's write queue, from the server's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Limits {
    /// `write_queue_bytes`; 0: none.
    pub(crate) cap: usize,
    /// `write_queue_full == Disconnect`.
    pub(crate) disconnect: bool,
    /// `write_queue_soft`; 0: none.
    pub(crate) soft: usize,
    /// `write_queue_soft_for`.
    pub(crate) soft_for: Duration,
}

impl Limits {
    pub(crate) fn new(cfg: &Effective) -> Self {
        Limits {
            cap: cfg.write_queue_bytes,
            disconnect: cfg.write_queue_full == WhenFull::Disconnect,
            soft: cfg.write_queue_soft,
            soft_for: cfg.write_queue_soft_for,
        }
    }

    /// A plain byte bound with back-pressure (for tests).
    #[cfg(test)]
    fn wait(cap: usize) -> Self {
        Limits {
            cap,
            ..Limits::default()
        }
    }
}

/// The soft-limit clock's origin, shared by every connection (read once per process).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Bytes queued for one connection's writer, with waiting for room.
pub(crate) struct WriteBudget {
    /// Bytes of frames queued and not yet written (as sized by the codec).
    queued: AtomicUsize,
    /// The most `queued` has been.
    peak: AtomicUsize,
    lim: Limits,
    /// When `queued` went above the soft limit: nanoseconds since [`epoch`], plus one;
    /// 0 while it is not above.
    soft_since: AtomicU64,
    /// Senders waiting for room.
    waiters: AtomicUsize,
    closed: AtomicBool,
    /// Set by the first sender that finds the connection past its limit.
    tripped: AtomicBool,
    room_tx: Sender<()>,
    room_rx: Receiver<()>,
}

impl WriteBudget {
    pub(crate) fn new(lim: Limits) -> Self {
        let (room_tx, room_rx) = chan::bounded(1);
        WriteBudget {
            queued: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            lim,
            soft_since: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            tripped: AtomicBool::new(false),
            room_tx,
            room_rx,
        }
    }

    /// `false` with neither a byte bound nor a soft limit: frames need not be sized.
    #[inline]
    pub(crate) fn is_bounded(&self) -> bool {
        self.lim.cap != 0 || self.lim.soft != 0
    }

    /// The most bytes of replies the handler may hold back to write them together (its
    /// carry, see the module docs of `conn`): below half the tightest limit, so that what
    /// the server holds by its own choice never takes a client past its output limit (held
    /// replies count until written, and more replies may queue meanwhile). `usize::MAX`
    /// without a limit.
    #[inline]
    pub(crate) fn hold_limit(&self) -> usize {
        [self.lim.cap, self.lim.soft]
            .into_iter()
            .filter(|&b| b != 0)
            .min()
            .map_or(usize::MAX, |b| b / 2)
    }

    /// Takes room for `n` bytes if the limits allow it now: `Ok(true)`; `Ok(false)` when
    /// there is no room and the policy is to wait for it; `Err` when the connection is past
    /// its limit (no room under [`WhenFull::Disconnect`], or above the soft limit too long).
    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> Result<bool, Over> {
        if n == 0 || !self.is_bounded() {
            return Ok(true);
        }
        let cap = self.lim.cap;
        // Compare-and-swap, not add-then-undo: a failed attempt must leave no trace, or two
        // senders could each see the other's bytes, both wait, and nobody wake them.
        let mut now = self.queued.load(Ordering::SeqCst);
        let total = loop {
            let total = now.saturating_add(n);
            if cap != 0 && total > cap {
                if self.lim.disconnect {
                    return Err(Over::Hard {
                        queued: now,
                        frame: n,
                        limit: cap,
                    });
                }
                if now != 0 {
                    return Ok(false);
                }
            }
            match self
                .queued
                .compare_exchange_weak(now, total, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break total,
                Err(actual) => now = actual,
            }
        };
        if total > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(total, Ordering::Relaxed);
        }
        if self.lim.soft != 0 && total > self.lim.soft {
            if let Err(over) = self.check_soft(total) {
                self.give_back(n);
                return Err(over);
            }
        }
        Ok(true)
    }

    /// The queue holds `queued` bytes, above the soft limit: starts the soft limit's clock,
    /// or fails if it started `soft_for` ago.
    fn check_soft(&self, queued: usize) -> Result<(), Over> {
        let now = clock();
        match self
            .soft_since
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(()),
            Err(since) => match self.soft_stayed(since, now) {
                Some(stayed) => Err(Over::Soft {
                    queued,
                    limit: self.lim.soft,
                    soft_for: self.lim.soft_for,
                    stayed,
                }),
                None => Ok(()),
            },
        }
    }

    /// How long the queue has been above the soft limit, if that is `soft_for` or more.
    fn soft_stayed(&self, since: u64, now: u64) -> Option<Duration> {
        let stayed = Duration::from_nanos(now.saturating_sub(since));
        (since != 0 && stayed >= self.lim.soft_for).then_some(stayed)
    }

    /// When the soft limit runs out, if the queue is above it.
    fn soft_deadline(&self) -> Option<Instant> {
        match self.soft_since.load(Ordering::SeqCst) {
            0 => None,
            since => (epoch() + Duration::from_nanos(since - 1)).checked_add(self.lim.soft_for),
        }
    }

    /// Takes room for `n` bytes, waiting for the writer to make some, until `deadline` if
    /// any, and no longer than the soft limit allows.
    pub(crate) fn take(&self, n: usize, deadline: Option<Instant>) -> Result<(), NoRoom> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                self.pass_on();
                return Err(NoRoom::Closed);
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            match self.try_take(n) {
                Ok(false) => {}
                r => {
                    self.waiters.fetch_sub(1, Ordering::SeqCst);
                    return r.map(drop).map_err(NoRoom::Over);
                }
            }
            let until = match (deadline, self.soft_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let woke = match until {
                None => self.room_rx.recv().map_err(|_| RecvTimeoutError::Closed),
                Some(d) => self.room_rx.recv_deadline(d),
            };
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke == Err(RecvTimeoutError::Timeout) {
                // One last look: room made just as the time ran out is still room.
                match self.try_take(n) {
                    Ok(true) => return Ok(()),
                    Err(over) => return Err(NoRoom::Over(over)),
                    Ok(false) => {}
                }
                let since = self.soft_since.load(Ordering::SeqCst);
                if let Some(stayed) = self.soft_stayed(since, clock()) {
                    return Err(NoRoom::Over(Over::Soft {
                        queued: self.queued(),
                        limit: self.lim.soft,
                        soft_for: self.lim.soft_for,
                        stayed,
                    }));
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(NoRoom::Timeout);
                }
                // The soft limit's time ran out, but the queue went below it meanwhile.
            }
        }
    }

    /// `n` bytes left the queue (written, or not queued after all).
    #[inline]
    pub(crate) fn give_back(&self, n: usize) {
        if n == 0 || !self.is_bounded() {
            return;
        }
        let left = self.queued.fetch_sub(n, Ordering::SeqCst).saturating_sub(n);
        if self.lim.soft != 0 && left <= self.lim.soft {
            // Below the soft limit again: its clock stops.
            if self.soft_since.load(Ordering::Relaxed) != 0 {
                self.soft_since.store(0, Ordering::SeqCst);
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _ = self.room_tx.try_send(());
        }
    }

    /// The connection is closing: wake every waiter (each passes the token on).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pass_on();
    }

    fn pass_on(&self) {
        let _ = self.room_tx.try_send(());
    }

    /// `true` for the first caller only: that one reports the connection past its limit.
    pub(crate) fn trip(&self) -> bool {
        !self.tripped.swap(true, Ordering::AcqRel)
    }

    /// Bytes queued now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// The most bytes queued at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// Nanoseconds since [`epoch`], plus one (so that 0 can mean "not above the soft limit").
fn clock() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn room_within_the_bound_and_one_oversized_frame_alone() {
        let b = WriteBudget::new(Limits::wait(100));
        assert_eq!(b.try_take(60), Ok(true));
        assert_eq!(b.try_take(40), Ok(true));
        assert_eq!(b.try_take(1), Ok(false), "full");
        b.give_back(100);
        assert_eq!(b.queued(), 0);
        assert_eq!(
            b.try_take(500),
            Ok(true),
            "larger than the bound, but the queue is empty"
        );
        assert_eq!(b.try_take(1), Ok(false));
        assert_eq!(b.peak(), 500);
        b.give_back(500);
        let off = WriteBudget::new(Limits::wait(0));
        assert!(
            off.try_take(usize::MAX) == Ok(true) && off.try_take(usize::MAX) == Ok(true),
            "0: no bound"
        );
    }

    #[test]
    fn a_waiting_sender_gets_room_when_the_writer_gives_bytes_back() {
        let b = Arc::new(WriteBudget::new(Limits::wait(10)));
        assert_eq!(b.try_take(10), Ok(true));
        let (done_tx, done_rx) = chan::bounded(1);
        let b2 = b.clone();
        let h = crate::go!(move || {
            let r = b2.take(5, None);
            let _ = done_tx.send(r);
        });
        // Still waiting: no room yet.
        assert_eq!(
            done_rx.recv_timeout(Duration::from_millis(50)),
            Err(RecvTimeoutError::Timeout)
        );
        b.give_back(10);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(5)), Ok(Ok(())));
        assert_eq!(b.queued(), 5);
        h.join().expect("waiter");
    }

    #[test]
    fn close_wakes_every_waiter_and_deadlines_expire() {
        let b = Arc::new(WriteBudget::new(Limits::wait(10)));
        assert_eq!(b.try_take(10), Ok(true));
        assert_eq!(
            b.take(1, Some(Instant::now() + Duration::from_millis(20))),
            Err(NoRoom::Timeout)
        );
        let (done_tx, done_rx) = chan::bounded(3);
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (b, tx) = (b.clone(), done_tx.clone());
                crate::go!(move || {
                    let _ = tx.send(b.take(1, None));
                })
            })
            .collect();
        b.close();
        for _ in 0..3 {
            assert_eq!(
                done_rx.recv_timeout(Duration::from_secs(5)),
                Ok(Err(NoRoom::Closed))
            );
        }
        for h in hs {
            h.join().expect("waiter");
        }
    }

    #[test]
    fn disconnect_policy_fails_where_wait_would_wait_and_oversized_frames_too() {
        let b = WriteBudget::new(Limits {
            cap: 100,
            disconnect: true,
            ..Limits::default()
        });
        assert_eq!(b.try_take(100), Ok(true));
        assert_eq!(
            b.try_take(1),
            Err(Over::Hard {
                queued: 100,
                frame: 1,
                limit: 100
            })
        );
        b.give_back(100);
        assert_eq!(
            b.try_take(101),
            Err(Over::Hard {
                queued: 0,
                frame: 101,
                limit: 100
            }),
            "no exemption for a frame larger than the limit"
        );
        assert_eq!(b.queued(), 0, "a refused frame leaves no trace");
        assert!(b.trip() && !b.trip(), "reported once");
    }

    #[test]
    fn soft_limit_fails_senders_once_the_queue_stayed_above_it() {
        // soft_for 0: the first frame above the limit starts its clock, the next one fails.
        let b = WriteBudget::new(Limits {
            cap: 1000,
            soft: 100,
            ..Limits::default()
        });
        assert_eq!(b.try_take(100), Ok(true), "at the limit, not above");
        assert_eq!(b.try_take(10), Ok(true), "above: the clock starts");
        assert!(matches!(
            b.try_take(10),
            Err(Over::Soft {
                queued: 120,
                limit: 100,
                ..
            })
        ));
        assert_eq!(b.queued(), 110, "the refused frame was given back");
        // Back below the limit: the clock stops, and starts again from zero.
        b.give_back(60);
        assert_eq!(b.try_take(60), Ok(true));
        assert!(matches!(b.try_take(1), Err(Over::Soft { .. })));
    }

    #[test]
    fn a_sender_waiting_for_room_fails_when_the_soft_limit_runs_out() {
        let b = Arc::new(WriteBudget::new(Limits {
            cap: 100,
            soft: 50,
            soft_for: Duration::from_millis(30),
            ..Limits::default()
        }));
        let start = Instant::now();
        assert_eq!(b.try_take(100), Ok(true), "above the soft limit from now");
        let waited = b.take(10, Some(Instant::now() + Duration::from_secs(10)));
        assert!(
            matches!(waited, Err(NoRoom::Over(Over::Soft { queued: 100, .. }))),
            "{waited:?}"
        );
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Without a soft limit the same sender waits for its own deadline.
        let b = WriteBudget::new(Limits::wait(100));
        assert_eq!(b.try_take(100), Ok(true));
        assert_eq!(
            b.take(10, Some(Instant::now() + Duration::from_millis(20))),
            Err(NoRoom::Timeout)
        );
    }
}
