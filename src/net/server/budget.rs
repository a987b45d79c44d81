//! The write queue's byte bound (`Config::write_queue_bytes`): besides holding at most
//! `write_queue` frames, a connection's write queue holds at most this many bytes of frames
//! not yet written, as the codec sizes them ([`Codec::encoded_len`]). A frame larger than the
//! whole bound is queued alone, once the queue is empty of bytes.
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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::chan::{self, Receiver, RecvTimeoutError, Sender};

/// Why a sender could not get room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The connection is closing.
    Closed,
    /// The deadline passed.
    Timeout,
}

/// Bytes queued for one connection's writer, with waiting for room.
pub(crate) struct WriteBudget {
    /// Bytes of frames queued and not yet written (as sized by the codec).
    queued: AtomicUsize,
    /// The bound; 0: none.
    cap: usize,
    /// Senders waiting for room.
    waiters: AtomicUsize,
    closed: AtomicBool,
    room_tx: Sender<()>,
    room_rx: Receiver<()>,
}

impl WriteBudget {
    pub(crate) fn new(cap: usize) -> Self {
        let (room_tx, room_rx) = chan::bounded(1);
        WriteBudget {
            queued: AtomicUsize::new(0),
            cap,
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            room_tx,
            room_rx,
        }
    }

    /// `false` when `write_queue_bytes` is 0: frames need not be sized.
    #[inline]
    pub(crate) fn is_bounded(&self) -> bool {
        self.cap != 0
    }

    /// Takes room for `n` bytes if there is some now: the queue holds no bytes, or `n` more
    /// stay within the bound.
    #[inline]
    pub(crate) fn try_take(&self, n: usize) -> bool {
        if n == 0 || self.cap == 0 {
            return true;
        }
        // Compare-and-swap, not add-then-undo: a failed attempt must leave no trace, or two
        // senders could each see the other's bytes, both wait, and nobody wake them.
        let mut now = self.queued.load(Ordering::SeqCst);
        loop {
            if now != 0 && now.saturating_add(n) > self.cap {
                return false;
            }
            match self.queued.compare_exchange_weak(
                now,
                now.saturating_add(n),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => now = actual,
            }
        }
    }

    /// Takes room for `n` bytes, waiting for the writer to make some, until `deadline` if
    /// any.
    pub(crate) fn take(&self, n: usize, deadline: Option<Instant>) -> Result<(), NoRoom> {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                self.pass_on();
                return Err(NoRoom::Closed);
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            if self.try_take(n) {
                self.waiters.fetch_sub(1, Ordering::SeqCst);
                return Ok(());
            }
            let woke = match deadline {
                None => self.room_rx.recv().map_err(|_| RecvTimeoutError::Closed),
                Some(d) => self.room_rx.recv_deadline(d),
            };
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            if woke == Err(RecvTimeoutError::Timeout) {
                // One last look: room made just as the time ran out is still room.
                return if self.try_take(n) {
                    Ok(())
                } else {
                    Err(NoRoom::Timeout)
                };
            }
        }
    }

    /// `n` bytes left the queue (written, or not queued after all).
    #[inline]
    pub(crate) fn give_back(&self, n: usize) {
        if n == 0 || self.cap == 0 {
            return;
        }
        self.queued.fetch_sub(n, Ordering::SeqCst);
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

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn room_within_the_bound_and_one_oversized_frame_alone() {
        let b = WriteBudget::new(100);
        assert!(b.try_take(60));
        assert!(b.try_take(40));
        assert!(!b.try_take(1), "full");
        b.give_back(100);
        assert_eq!(b.queued(), 0);
        assert!(
            b.try_take(500),
            "larger than the bound, but the queue is empty"
        );
        assert!(!b.try_take(1));
        b.give_back(500);
        let off = WriteBudget::new(0);
        assert!(
            off.try_take(usize::MAX) && off.try_take(usize::MAX),
            "0: no bound"
        );
    }

    #[test]
    fn a_waiting_sender_gets_room_when_the_writer_gives_bytes_back() {
        let b = Arc::new(WriteBudget::new(10));
        assert!(b.try_take(10));
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
        let b = Arc::new(WriteBudget::new(10));
        assert!(b.try_take(10));
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
}
