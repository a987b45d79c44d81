//! [`ConnSender`]: queueing replies to one client from any goroutine, within the write
//! queue's frame and byte bounds.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::ConnShared;
use super::writer::Kick;
use crate::chan::{SendError, SendTimeoutError, Sender, TrySendError};
use crate::net::server::budget::{NoRoom, WriteBudget};

/// A handle that queues frames to one client from any goroutine; clone it freely.
///
/// # Examples
/// ```no_run
/// # use goway::net::{Conn, codec::LinesCodec, server::HandlerResult};
/// # fn register(_: goway::net::ConnSender<Vec<u8>>) {}
/// fn handler(conn: &Conn<LinesCodec>) -> HandlerResult {
///     register(conn.sender()); // a broadcaster keeps a copy
///     for _ in conn {}
///     Ok(())
/// }
/// ```
pub struct ConnSender<O> {
    /// The write queue.
    pub(super) tx: Sender<O>,
    /// Frames queued and not yet written (see the module docs).
    pub(super) pending: Arc<AtomicUsize>,
    /// Bytes queued and not yet written, bounded by `write_queue_bytes`.
    pub(super) budget: Arc<WriteBudget>,
    /// The codec's [`Codec::encoded_len`].
    pub(super) size: fn(&O) -> usize,
    /// To close the connection past its output limit (weak: a sender kept by another
    /// goroutine must not keep a closed connection's socket open).
    pub(super) conn: Weak<ConnShared<O>>,
    pub(super) id: u64,
    /// Starts the writer for what was queued (see the module docs of `conn`).
    pub(super) writer: Arc<dyn Kick>,
}

impl<O> Clone for ConnSender<O> {
    fn clone(&self) -> Self {
        ConnSender {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
            budget: self.budget.clone(),
            size: self.size,
            conn: self.conn.clone(),
            id: self.id,
            writer: self.writer.clone(),
        }
    }
}

impl<O> fmt::Debug for ConnSender<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnSender")
            .field("conn", &self.id)
            .field("closed", &self.tx.is_closed())
            .finish()
    }
}

impl<O: Send + 'static> ConnSender<O> {
    /// Queues `frame`, waiting while the write queue is full (`write_queue` frames, or
    /// `write_queue_bytes` bytes, are waiting to be written). Under
    /// [`WhenFull::Disconnect`](crate::net::server::WhenFull::Disconnect), a frame that does not
    /// fit in `write_queue_bytes` closes the connection instead of waiting.
    ///
    /// # Errors
    /// `SendError(frame)` once the connection is closing.
    pub fn send(&self, frame: O) -> Result<(), SendError<O>> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        let room = match self.budget.try_take(n) {
            Ok(true) => Ok(()),
            Ok(false) => self.budget.take(n, None),
            Err(over) => Err(NoRoom::Over(over)),
        };
        if let Err(e) = room {
            self.no_room(e);
            return Err(SendError(frame));
        }
        let r = match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(f)) => {
                // A writer must take from the queue while we wait for room in it.
                self.writer.blocked();
                let r = self.tx.send(f);
                self.writer.unblocked();
                return r.map_err(|e| SendError(self.unsent(e.0, n)));
            }
            Err(TrySendError::Closed(f)) => Err(SendError(self.unsent(f, n))),
        };
        self.writer.kick();
        r
    }

    /// `frame`'s size for the byte bound; not computed when there is no bound.
    #[inline]
    pub(super) fn size_of(&self, frame: &O) -> usize {
        if self.budget.is_bounded() {
            (self.size)(frame)
        } else {
            0
        }
    }

    /// A frame counted in `pending` (and `n` bytes of the budget) was not queued after all.
    fn unqueued(&self, n: usize) {
        self.budget.give_back(n);
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// A frame that the queue refused, handed back.
    fn unsent(&self, frame: O, n: usize) -> O {
        self.unqueued(n);
        frame
    }

    /// No room was taken: undoes `pending`, and closes a connection past its limit.
    fn no_room(&self, why: NoRoom) {
        self.unqueued(0);
        if let (NoRoom::Over(over), Some(sh)) = (why, self.conn.upgrade()) {
            sh.over_limit(over);
        }
    }

    /// Queues `frame` only if there is room now (a broadcaster that must not wait for one slow
    /// client). Under [`WhenFull::Disconnect`](crate::net::server::WhenFull::Disconnect) a frame
    /// that does not fit closes the connection (Redis drops a slow subscriber so).
    ///
    /// # Errors
    /// `Full(frame)` if the queue is full, `Closed(frame)` once the connection is closing.
    pub fn try_send(&self, frame: O) -> Result<(), TrySendError<O>> {
        if self.tx.is_closed() {
            return Err(TrySendError::Closed(frame));
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        match self.budget.try_take(n) {
            Ok(true) => {}
            Ok(false) => {
                self.unqueued(0);
                return Err(TrySendError::Full(frame));
            }
            Err(over) => {
                self.no_room(NoRoom::Over(over));
                return Err(TrySendError::Closed(frame));
            }
        }
        self.tx.try_send(frame).map_err(|e| match e {
            TrySendError::Full(f) => TrySendError::Full(self.unsent(f, n)),
            TrySendError::Closed(f) => TrySendError::Closed(self.unsent(f, n)),
        })?;
        self.writer.kick();
        Ok(())
    }

    /// Queues `frame`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// `Timeout(frame)` or `Closed(frame)` (also when the connection was closed for its
    /// output limit).
    pub fn send_timeout(&self, frame: O, timeout: Duration) -> Result<(), SendTimeoutError<O>> {
        let deadline = Instant::now().checked_add(timeout);
        self.pending.fetch_add(1, Ordering::AcqRel);
        let n = self.size_of(&frame);
        let room = match self.budget.try_take(n) {
            Ok(true) => Ok(()),
            Ok(false) => self.budget.take(n, deadline),
            Err(over) => Err(NoRoom::Over(over)),
        };
        if let Err(e) = room {
            self.no_room(e);
            return Err(if e == NoRoom::Timeout {
                SendTimeoutError::Timeout(frame)
            } else {
                SendTimeoutError::Closed(frame)
            });
        }
        let frame = match self.tx.try_send(frame) {
            Ok(()) => {
                self.writer.kick();
                return Ok(());
            }
            Err(TrySendError::Full(f)) => f,
            Err(TrySendError::Closed(f)) => {
                return Err(SendTimeoutError::Closed(self.unsent(f, n)));
            }
        };
        let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
        // A writer must take from the queue while we wait for room in it.
        self.writer.blocked();
        let r = self.tx.send_timeout(frame, left);
        self.writer.unblocked();
        r.map_err(|e| match e {
            SendTimeoutError::Timeout(f) => SendTimeoutError::Timeout(self.unsent(f, n)),
            SendTimeoutError::Closed(f) => SendTimeoutError::Closed(self.unsent(f, n)),
        })
    }

    /// `true` once the connection is closing: sends fail from then on.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}
