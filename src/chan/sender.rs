//! The sending half of a channel: [`Sender`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Chan, Deferred, SendError, SendTimeoutError, TrySendError, capacity, deadline_after};
use crate::runtime::park::{park_forever, park_until};
use crate::runtime::registry::{Wait, Why};

/// The sending half of a channel. Clone it for more producers.
pub struct Sender<T> {
    /// `None` is the never-ready (nil) channel.
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

impl<T> Sender<T> {
    /// A sender that is never ready: Go's nil channel. `send` on it waits forever (or until its
    /// timeout) and a `select!` arm over it is never chosen.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let tx = goway::chan::Sender::<i32>::never();
    /// assert!(tx.try_send(1).unwrap_err().is_full());
    /// assert!(tx.send_timeout(2, Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(tx.try_send(2).unwrap_err().is_full()); // no waiting: the buffer is full
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = goway::chan::bounded(1);
    /// tx.send_timeout(1, Duration::from_secs(1)).unwrap();
    /// let e = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert!(e.is_timeout());
    /// assert_eq!(e.into_inner(), 2);
    /// assert_eq!(rx.recv(), Ok(1));
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_deadline_opt(v, deadline_after(timeout))
    }

    /// Sends `v`, waiting until `deadline` at most. Errors as [`send_timeout`](Self::send_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = goway::chan::bounded(0); // unbuffered: waits for a receiver
    /// let h = goway::go!(move || rx.recv());
    /// tx.send_deadline("hi", Instant::now() + Duration::from_secs(10)).unwrap();
    /// assert_eq!(h.join().unwrap(), Ok("hi"));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(2);
    /// tx.send(1).unwrap();
    /// assert!(tx.close());
    /// assert!(!tx.close()); // already closed: no panic
    /// assert_eq!(rx.recv(), Ok(1)); // buffered values stay receivable
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.close())
    }

    /// `true` once the channel is closed (explicitly, or because every sender or every
    /// receiver is gone).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<i32>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx); // every receiver gone
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// Number of buffered values (Go's `len(ch)`).
    ///
    /// # Examples
    /// ```
    /// let (tx, _rx) = goway::chan::bounded(4);
    /// tx.send('a').unwrap();
    /// tx.send('b').unwrap();
    /// assert_eq!(tx.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// `true` if nothing is buffered.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// assert!(tx.is_empty());
    /// tx.send(()).unwrap();
    /// assert!(!tx.is_empty());
    /// rx.recv().unwrap();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` if a receiver is parked on the channel right now, in a `recv` or in a select
    /// with a receive case on it (for the server's idle check).
    pub(crate) fn has_waiting_receiver(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.has_waiting_receiver())
    }

    /// Buffer size (Go's `cap(ch)`): `Some(0)` for unbuffered and never channels, `None` for
    /// unbounded ones.
    ///
    /// # Examples
    /// ```
    /// use goway::chan;
    /// assert_eq!(chan::bounded::<u8>(8).0.capacity(), Some(8));
    /// assert_eq!(chan::bounded::<u8>(0).0.capacity(), Some(0));
    /// assert_eq!(chan::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }

    /// `true` if both senders send into the same channel.
    ///
    /// # Examples
    /// ```
    /// let (a, _rx) = goway::chan::bounded::<i32>(1);
    /// let (b, _rx2) = goway::chan::bounded::<i32>(1);
    /// assert!(a.same_channel(&a.clone()));
    /// assert!(!a.same_channel(&b));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        match (&self.chan, &other.chan) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
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

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}
