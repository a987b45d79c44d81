//! Go-like channels: bounded (with Go's unbuffered rendezvous at capacity 0), unbounded, and
//! the never-ready channel that stands for Go's nil channel.
//!
//! | Go | goway |
//! |---|---|
//! | `make(chan T)` / `make(chan T, n)` | [`bounded::<T>(0)`](bounded) / [`bounded(n)`](bounded) |
//! | `ch <- v` | [`tx.send(v)`](Sender::send) (returns the value if the channel is closed) |
//! | `v, ok := <-ch` | [`rx.recv()`](Receiver::recv) → `Ok(v)` or `Err(RecvError)` once closed and drained |
//! | `close(ch)` | [`tx.close()`](Sender::close) → `true` if this call closed it; never panics |
//! | `for v := range ch` | `for v in &rx` |
//! | `len(ch)`, `cap(ch)` | [`len()`](Receiver::len), [`capacity()`](Receiver::capacity) |
//! | nil channel | [`never()`] / [`Sender::never()`] |
//!
//! Every operation works from a goroutine and from a plain OS thread, in any mix: a blocked
//! goroutine parks (its worker thread runs other goroutines), a blocked thread parks itself.
//! [`Sender`] and [`Receiver`] are both `Clone + Send + Sync`: many producers, many consumers.
//! Dropping every `Sender` closes the channel (receivers drain what is buffered, then see
//! `Err`); dropping every `Receiver` closes it too (senders get their values back).
//!
//! ```
//! use goway::{chan, go};
//!
//! let (tx, rx) = chan::bounded(0); // unbuffered, like make(chan int)
//! let h = go!(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     tx.close();
//! });
//! let got: Vec<i32> = rx.iter().collect();
//! assert_eq!(got, [0, 1, 2]);
//! h.join().unwrap();
//! ```

mod channel;
mod error;
pub(crate) mod packet;
mod shim;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::runtime::park::{park_forever, park_until};
use crate::runtime::registry::{Wait, Why};
pub(crate) use channel::Chan;
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

/// Creates a channel that buffers up to `cap` values; `cap == 0` is Go's unbuffered channel, on
/// which a send completes only when a receiver takes the value.
///
/// Bounded channels are goway's default: a full buffer blocks the sender (backpressure).
///
/// # Examples
/// ```
/// let (tx, rx) = goway::chan::bounded(2);
/// tx.send(1).unwrap();
/// tx.send(2).unwrap();
/// assert!(tx.try_send(3).unwrap_err().is_full());
/// assert_eq!((rx.len(), rx.capacity()), (2, Some(2)));
/// ```
#[track_caller]
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let c = Arc::new(Chan::new(cap, std::panic::Location::caller()));
    (
        Sender {
            chan: Some(c.clone()),
        },
        Receiver { chan: Some(c) },
    )
}

/// The second half of [`Sender::try_send_deferred`]: call [`finish`](Deferred::finish) after
/// releasing every lock.
pub(crate) struct Deferred<T> {
    wake: channel::Wake,
    dead: channel::Dead<T>,
}

impl<T> Deferred<T> {
    pub(crate) fn finish(self) {
        if let Some(w) = self.wake {
            w.unpark();
        }
        drop(self.dead);
    }
}

/// A channel that never closes when its senders are dropped (only by an explicit close or when
/// every receiver is gone): Go's channels, which have no sender count.
#[track_caller]
pub(crate) fn bounded_unclosable<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = bounded(cap);
    if let Some(c) = &tx.chan {
        // A sender count nobody owns: the count never reaches zero.
        c.senders.fetch_add(1, Ordering::Relaxed);
    }
    (tx, rx)
}

/// A one-slot channel that never closes when its senders are dropped (Go's timer channels:
/// a fired timer's channel stays open, so a second receive blocks instead of reporting a close).
/// Dropping every receiver still closes it, which tells the timer thread nobody listens.
#[track_caller]
pub(crate) fn timer_channel<T>() -> (Sender<T>, Receiver<T>) {
    bounded_unclosable(1)
}

/// Creates a channel with an unlimited buffer: a send never blocks.
///
/// There is no backpressure: a producer faster than its consumers grows memory without limit.
/// Go has no such channel; prefer [`bounded`] unless the producer is bounded by other means.
///
/// # Examples
/// ```
/// let (tx, rx) = goway::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(rx.capacity(), None);
/// ```
#[track_caller]
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    bounded(usize::MAX)
}

/// A receiver that is never ready: Go's nil channel.
///
/// `recv` on it waits forever (or until its timeout); a `select!` arm over it is never chosen,
/// so replacing a drained receiver with `never()` disables that arm (Go's merge idiom).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let rx = goway::chan::never::<i32>();
/// assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
/// assert_eq!((rx.len(), rx.capacity()), (0, Some(0)));
/// ```
pub fn never<T>() -> Receiver<T> {
    Receiver { chan: None }
}

fn deadline_after(d: Duration) -> Option<Instant> {
    // A timeout too large to represent waits forever.
    Instant::now().checked_add(d)
}

/// The sending half of a channel. Clone it for more producers.
pub struct Sender<T> {
    /// `None` is the never-ready (nil) channel.
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

/// The receiving half of a channel. Clone it for more consumers; each value goes to one of them.
pub struct Receiver<T> {
    /// `None` is the never-ready (nil) channel.
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

impl<T> Sender<T> {
    /// A sender that is never ready: Go's nil channel. `send` on it waits forever (or until its
    /// timeout) and a `select!` arm over it is never chosen.
    pub fn never() -> Self {
        Sender { chan: None }
    }

    /// Sends `v`, waiting while the buffer is full (or, unbuffered, until a receiver takes it).
    ///
    /// # Errors
    /// `SendError(v)` if the channel is closed or every receiver is gone; the value comes back.
    /// (Go panics with "send on closed channel".)
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// tx.send("hi").unwrap();
    /// tx.close();
    /// assert_eq!(tx.send("late").unwrap_err().into_inner(), "late");
    /// assert_eq!(rx.recv(), Ok("hi"));
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        match &self.chan {
            Some(c) => c.send(v, None).map_err(|e| SendError(e.into_inner())),
            None => {
                park_forever(Why::new(Wait::NilSend));
                Err(SendError(v))
            }
        }
    }

    /// Sends `v` only if that needs no waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the buffer is full (unbuffered: no receiver is waiting, and
    /// always for a never channel); [`TrySendError::Closed`] if the channel is closed.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        match &self.chan {
            Some(c) => c.try_send(v),
            None => Err(TrySendError::Full(v)),
        }
    }

    /// [`try_send`](Self::try_send), but the wake-up of a receiver and the release of dead
    /// wait packets happen only when the returned [`Deferred`] is finished: for internal
    /// callers that hold a lock of their own, since releasing a waiter may wait for may to
    /// finish parking a coroutine that could need that lock.
    pub(crate) fn try_send_deferred(&self, v: T) -> (Result<(), TrySendError<T>>, Deferred<T>) {
        match &self.chan {
            Some(c) => {
                let (r, wake, dead) = c.try_send_deferred(v);
                (r, Deferred { wake, dead })
            }
            None => (
                Err(TrySendError::Full(v)),
                Deferred {
                    wake: None,
                    dead: Vec::new(),
                },
            ),
        }
    }

    /// Sends `v`, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] when the time is up, [`SendTimeoutError::Closed`] if the
    /// channel is closed; both return the value.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline_opt(v, deadline_after(timeout))
    }

    /// Sends `v`, waiting until `deadline` at most. Errors as [`send_timeout`](Self::send_timeout).
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline_opt(v, Some(deadline))
    }

    fn send_deadline_opt(
        &self,
        v: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        match &self.chan {
            Some(c) => c.send(v, deadline),
            None => {
                park_until(deadline, Why::new(Wait::NilSend));
                Err(SendTimeoutError::Timeout(v))
            }
        }
    }

    /// Closes the channel; returns `true` if this call closed it, `false` if it was closed
    /// already. Never panics (Go panics on a second close). Buffered values stay receivable;
    /// blocked receivers wake and see the close once the buffer is drained; blocked senders get
    /// their values back. Closing a never channel does nothing and returns `false`.
    pub fn close(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.close())
    }

    /// `true` once the channel is closed (explicitly, or because every sender or every
    /// receiver is gone).
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// Number of buffered values (Go's `len(ch)`).
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// `true` if nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer size (Go's `cap(ch)`): `Some(0)` for unbuffered and never channels, `None` for
    /// unbounded ones.
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }

    /// `true` if both senders send into the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        match (&self.chan, &other.chan) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T> Receiver<T> {
    /// A receiver that is never ready; the same as [`never()`].
    pub fn never() -> Self {
        never()
    }

    /// Receives a value, waiting until one is available.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is closed and its buffer drained (Go's `v, ok := <-ch`
    /// with `ok == false`). A never channel waits forever.
    pub fn recv(&self) -> Result<T, RecvError> {
        match &self.chan {
            Some(c) => c.recv(None).map_err(|_| RecvError),
            None => {
                park_forever(Why::new(Wait::NilRecv));
                Err(RecvError)
            }
        }
    }

    /// Receives a value only if that needs no waiting.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if nothing is ready, [`TryRecvError::Closed`] once closed and
    /// drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.chan {
            Some(c) => c.try_recv(),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Moves up to `max` values that are ready now into `out`, in order, taking the channel's
    /// lock once (a consumer that works in batches, like the server's writer). Returns how
    /// many it moved: 0 if none was ready (or the channel is closed and drained).
    pub(crate) fn try_recv_many(&self, out: &mut Vec<T>, max: usize) -> usize {
        match &self.chan {
            Some(c) => c.try_recv_many(out, max),
            None => 0,
        }
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] when the time is up, [`RecvTimeoutError::Closed`] once
    /// closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline_opt(deadline_after(timeout))
    }

    /// Receives a value, waiting until `deadline` at most. Errors as
    /// [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_deadline_opt(Some(deadline))
    }

    fn recv_deadline_opt(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match &self.chan {
            Some(c) => c.recv(deadline),
            None => {
                park_until(deadline, Why::new(Wait::NilRecv));
                Err(RecvTimeoutError::Timeout)
            }
        }
    }

    /// A blocking iterator: yields values until the channel is closed and drained (Go's
    /// `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// `true` once the channel is closed (explicitly, or because every sender is gone). Values
    /// may still be buffered.
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// Number of buffered values (Go's `len(ch)`).
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// `true` if nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer size (Go's `cap(ch)`): `Some(0)` for unbuffered and never channels, `None` for
    /// unbounded ones.
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }

    /// `true` if both receivers receive from the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        match (&self.chan, &other.chan) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

fn capacity<T>(c: &Option<Arc<Chan<T>>>) -> Option<usize> {
    match c {
        None => Some(0),
        Some(c) if c.cap() == usize::MAX => None,
        Some(c) => Some(c.cap()),
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        if let Some(c) = &self.chan {
            c.senders.fetch_add(1, Ordering::Relaxed);
        }
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(c) = &self.chan {
            if c.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
                c.close();
            }
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        if let Some(c) = &self.chan {
            c.receivers.fetch_add(1, Ordering::Relaxed);
        }
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some(c) = &self.chan {
            if c.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
                c.disconnect_receivers();
            }
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Blocking iterator returned by [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator returned by [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator: `for v in rx`.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
