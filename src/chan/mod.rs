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
mod lock;
pub(crate) mod packet;
mod receiver;
mod sender;
mod shim;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub(crate) use channel::Chan;
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use receiver::{IntoIter, Iter, Receiver, TryIter};
pub use sender::Sender;

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
    wake: channel::Wake<T>,
    dead: channel::Dead<T>,
}

impl<T> Deferred<T> {
    pub(crate) fn finish(self) {
        if let Some(p) = self.wake {
            p.waiter.unpark();
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

fn capacity<T>(c: &Option<Arc<Chan<T>>>) -> Option<usize> {
    match c {
        None => Some(0),
        Some(c) if c.cap() == usize::MAX => None,
        Some(c) => Some(c.cap()),
    }
}
