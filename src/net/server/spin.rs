//! Spin polling: a short spin for new input before the worker thread goes to sleep
//! ([`Config::spin_poll`](super::Config::spin_poll), off by default).
//!
//! may's worker thread blocks in `epoll_wait` as soon as no goroutine is ready. When a client
//! sends its next request a few microseconds later, waking that thread costs the *client*
//! (its `send` wakes the sleeping server thread, an inter-processor interrupt on most
//! machines) and the server (a context switch back in). Go's scheduler spins a little before
//! parking a thread for this reason; Linux offers `SO_BUSY_POLL` for network devices (not for
//! loopback). A server built with a spin-poll budget keeps one goroutine, the *spinner*, that
//! runs after the connections' goroutines have done their work and, before the worker sleeps,
//! looks for unread input (its own epoll set of the server's connections, level-triggered,
//! polled without waiting) for up to the budget:
//!
//! - input arrived: the spinner parks at once, the worker's queue is empty, and may's poller
//!   finds the input without sleeping;
//! - the budget ran out: the spinner parks and the worker sleeps as it would have.
//!
//! A reader that has handled input and is about to wait [`kick`](SpinPoll::kick)s the spinner
//! (one relaxed load when it is already kicked). Between two looks the spinner yields, so
//! goroutines made ready meanwhile on this worker run first. An idle server never spins.
//!
//! The trade: the server spends up to the budget of CPU per burst of input to spare the
//! wake-up. It pays off when the server is partly busy and its clients are CPU-bound (a
//! pipelining benchmark client on its own core): the next request nearly always comes within
//! microseconds. At a moderate, steady load the next input comes later than a sleep and
//! wake-up would cost, and spinning would only burn CPU; so the spinner keeps score
//! ([`Credit`]): it keeps spinning while at least half the rounds find input within 10 µs
//! ([`WORTH`]), and otherwise stops, probing one round in 64. Off by default.
//!
//! Limits: the spinner looks for any unread input, so while a reader is held up by a full
//! handler queue (its input stays unread) rounds end at once and spare nothing. With several
//! worker threads there is still one spinner per server; it spares the wake-up of the worker
//! it runs on. While it spins (at most the budget, capped at 1 ms), may does not poll that
//! worker's other sockets nor take in its global queue (new goroutines, goroutines woken from
//! other threads): they wait for the round to end, as they would wait for any goroutine that
//! runs that long.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::JoinHandle;
use crate::chan::{self, Receiver, Sender};

/// The spinner's state, shared with the server's readers.
pub(crate) struct SpinPoll {
    /// The server's connections, watched for unread input (level-triggered).
    ep: OwnedFd,
    /// Set by the first kick since the spinner last started; cleared when it parks.
    kicked: AtomicBool,
    /// Kicks to ignore: spinning did not pay lately (see [`Credit`]).
    skip: AtomicU32,
    kick: Sender<()>,
    /// Rounds spun, and those that paid (`Stats::spins`, `Stats::spin_hits`).
    spins: AtomicU64,
    hits: AtomicU64,
}

impl SpinPoll {
    /// Longest budget: spinning longer than this for one burst is never worth it.
    pub(crate) const MAX_BUDGET: Duration = Duration::from_millis(1);

    /// The poller and its spinner goroutine, which ends soon after the poller is dropped.
    /// `budget` is capped at [`MAX_BUDGET`](Self::MAX_BUDGET).
    pub(crate) fn start(budget: Duration) -> io::Result<(Arc<Self>, JoinHandle<()>)> {
        let budget = budget.min(Self::MAX_BUDGET);
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else (checked above).
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        let (kick, rx) = chan::bounded(1);
        let bp = Arc::new(SpinPoll {
            ep,
            kicked: AtomicBool::new(false),
            skip: AtomicU32::new(0),
            kick,
            spins: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&bp);
        let epfd = bp.ep.as_raw_fd();
        // The spinner holds the poller weakly: the poller (and with it the descriptor) lives
        // while the server or a connection holds it. Once it is dropped the kick channel
        // closes, which ends a parked spinner; a spinning one sees it is the last holder.
        let h = crate::Builder::new()
            .name("goway-spin-poll")
            .spawn(move || spinner(&rx, epfd, budget, &weak))?;
        Ok((bp, h))
    }

    /// Watches a connection's socket for input. Failing leaves that connection without
    /// spin polling (it is served as usual).
    pub(crate) fn add(&self, fd: RawFd) {
        let mut ev = libc::epoll_event {
            // Level-triggered: a look reports sockets with input nobody has read *now*, not
            // input that arrived since the last look and that the readers may have taken.
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: `ev` is a valid epoll_event for the call's duration; `fd` is an open socket
        // the caller owns, and both descriptors are only read by the kernel.
        let r = unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r != 0 {
            log::debug!(target: "goway::server", "spin poll: cannot watch fd {fd}: {}", io::Error::last_os_error());
        }
    }

    /// `(spins, hits)` so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.spins.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed),
        )
    }

    /// Asks the spinner to look for input before this worker sleeps. Called by a reader that
    /// handled input and is about to wait.
    #[inline]
    pub(crate) fn kick(&self) {
        if self.kicked.load(Ordering::Relaxed) {
            return;
        }
        // Approximate (two workers may both count one kick): it only paces the probes.
        let skip = self.skip.load(Ordering::Relaxed);
        if skip > 0 {
            self.skip.store(skip - 1, Ordering::Relaxed);
            return;
        }
        if self.kicked.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.kick.try_send(());
    }
}

/// A round that finds input later than this did not pay: the sleep and wake-up it spared cost
/// the worker and the client a few microseconds each. Under a pipelining client
/// (`redis-benchmark -P 16`) nearly every round finds input within 10 µs; at a paced, moderate
/// load the next input comes later than that, and few rounds do.
const WORTH: Duration = Duration::from_micros(10);

/// Whether spinning pays, learnt from its outcomes: a round that finds input within
/// [`WORTH`] is a hit. Credit rises by one per hit and falls by one per miss, so it
/// stays up only while at least half the rounds hit; at zero the next `PROBE` kicks are
/// ignored (no spinning, and no wake-up of the spinner), then one round probes again. A
/// server at a moderate, steady load (where the next input comes some 10-20 µs later) so
/// spins about one round in `PROBE`; under a pipelining client nearly every round hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credit(u32);

impl Credit {
    const MAX: u32 = 8;
    /// Kicks ignored after a round that spent the credit.
    pub(crate) const PROBE: u32 = 64;

    pub(crate) fn new() -> Self {
        Credit(Self::MAX / 2)
    }

    /// Records a round; returns how many kicks to ignore before the next round.
    pub(crate) fn record(&mut self, hit: bool) -> u32 {
        self.0 = if hit {
            (self.0 + 1).min(Self::MAX)
        } else {
            self.0.saturating_sub(1)
        };
        if self.0 == 0 { Self::PROBE } else { 0 }
    }
}

/// The spinner goroutine: for each kick, poll for new input until some arrives or the budget
/// is spent, yielding between looks; then park until the next kick.
fn spinner(rx: &Receiver<()>, epfd: RawFd, budget: Duration, bp: &std::sync::Weak<SpinPoll>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let mut credit = Credit::new();
    while rx.recv().is_ok() {
        // The poller (and so `epfd`) is alive while it can be upgraded; it is held only for
        // this round, so dropping the server's last reference is never delayed for long.
        let Some(held) = bp.upgrade() else { return };
        let start = Instant::now();
        let hit = loop {
            // SAFETY: `events` is a writable array of 8 epoll_events and `epfd` is the
            // poller's open epoll descriptor (`held` keeps it open); timeout 0 never blocks.
            let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 8, 0) };
            let spun = start.elapsed();
            if n != 0 {
                // Input (or an error): park, so that may's poller runs now and takes the
                // input without sleeping first. It paid if it came soon enough.
                break n > 0 && spun <= WORTH;
            }
            // Out of budget, or the server is gone (only this round holds the poller).
            if spun >= budget || Arc::strong_count(&held) == 1 {
                break false;
            }
            may::coroutine::yield_now();
        };
        held.spins.fetch_add(1, Ordering::Relaxed);
        if hit {
            held.hits.fetch_add(1, Ordering::Relaxed);
        }
        held.skip.store(credit.record(hit), Ordering::Relaxed);
        // A kick that came while spinning is for input this round has already seen (or
        // that came after it): the next round starts with the next kick.
        let _ = rx.try_recv();
        held.kicked.store(false, Ordering::Release);
        drop(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spinner_ends_when_the_poller_is_dropped_parked_or_kicked() {
        for kick in [false, true] {
            let (bp, h) = SpinPoll::start(Duration::from_secs(3600)).unwrap();
            if kick {
                bp.kick();
            }
            drop(bp);
            assert!(
                h.join_timeout(Duration::from_secs(10)).is_ok(),
                "the spinner outlived its poller (kicked: {kick})"
            );
        }
    }

    #[test]
    fn credit_keeps_spinning_while_half_the_rounds_hit() {
        let mut c = Credit::new();
        for _ in 0..100 {
            assert_eq!(c.record(false), 0);
            assert_eq!(c.record(true), 0);
        }
    }

    #[test]
    fn credit_backs_off_when_rounds_miss_and_probes_again() {
        let mut c = Credit::new();
        for _ in 0..3 {
            assert_eq!(c.record(false), 0);
        }
        assert_eq!(c.record(false), Credit::PROBE);
        // Probes that keep missing keep it off.
        assert_eq!(c.record(false), Credit::PROBE);
        // A probe that hits turns spinning back on.
        assert_eq!(c.record(true), 0);
        assert_eq!(c.record(true), 0);
    }

    #[test]
    fn credit_is_capped_so_a_change_of_load_is_seen_soon() {
        let mut c = Credit::new();
        for _ in 0..1000 {
            c.record(true);
        }
        let misses = (1..).take_while(|_| c.record(false) == 0).count();
        assert_eq!(
            misses, 7,
            "from full credit, the eighth miss in a row stops spinning"
        );
    }
}
