//! The receiving half of a channel ([`Receiver`]) and its iterators.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Chan, RecvError, RecvTimeoutError, TryRecvError, capacity, deadline_after, never};
use crate::runtime::park::{park_forever, park_until};
use crate::runtime::registry::{Wait, Why};

/// The receiving half of a channel. Clone it for more consumers; each value goes to one of them.
pub struct Receiver<T> {
    /// `None` is the never-ready (nil) channel.
    pub(crate) chan: Option<Arc<Chan<T>>>,
}

impl<T> Receiver<T> {
    /// A receiver that is never ready; the same as [`never()`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let rx = goway::chan::Receiver::<i32>::never();
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn never() -> Self {
        never()
    }

    /// Receives a value, waiting until one is available.
    ///
    /// # Errors
    /// [`RecvError`] once the channel is closed and its buffer drained (Go's `v, ok := <-ch`
    /// with `ok == false`). A never channel waits forever.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(0);
    /// let h = goway::go!(move || tx.send(5).unwrap());
    /// assert_eq!(rx.recv(), Ok(5));
    /// h.join().unwrap();
    /// assert!(rx.recv().is_err()); // the sender is gone: closed and drained
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use goway::chan::TryRecvError;
    /// let (tx, rx) = goway::chan::bounded(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use goway::chan::RecvTimeoutError;
    /// let (tx, rx) = goway::chan::bounded(1);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Ok(1));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_deadline_opt(deadline_after(timeout))
    }

    /// Receives a value, waiting until `deadline` at most. Errors as
    /// [`recv_timeout`](Self::recv_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = goway::chan::bounded(1);
    /// let _h = goway::go!(move || tx.send("done").unwrap());
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(10)), Ok("done"));
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(3);
    /// for i in 1..=3 {
    ///     tx.send(i).unwrap();
    /// }
    /// drop(tx); // ends the iteration once drained
    /// assert_eq!(rx.iter().sum::<i32>(), 6);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(3);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// // Stops at the first empty poll, though the channel is still open.
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// `true` once the channel is closed (explicitly, or because every sender is gone). Values
    /// may still be buffered.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// tx.send(1).unwrap();
    /// tx.close();
    /// assert!(rx.is_closed());
    /// assert_eq!(rx.recv(), Ok(1)); // closed, but not yet drained
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.as_ref().is_some_and(|c| c.is_closed())
    }

    /// Number of buffered values (Go's `len(ch)`).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.as_ref().map_or(0, |c| c.len())
    }

    /// `true` if nothing is buffered.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// assert!(rx.is_empty());
    /// tx.send(()).unwrap();
    /// assert!(!rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buffer size (Go's `cap(ch)`): `Some(0)` for unbuffered and never channels, `None` for
    /// unbounded ones.
    ///
    /// # Examples
    /// ```
    /// use goway::chan;
    /// assert_eq!(chan::bounded::<u8>(8).1.capacity(), Some(8));
    /// assert_eq!(chan::never::<u8>().capacity(), Some(0));
    /// assert_eq!(chan::unbounded::<u8>().1.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        capacity(&self.chan)
    }

    /// `true` if both receivers receive from the same channel.
    ///
    /// # Examples
    /// ```
    /// let (_tx, a) = goway::chan::bounded::<i32>(1);
    /// assert!(a.same_channel(&a.clone()));
    /// assert!(!a.same_channel(&goway::chan::never()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        match (&self.chan, &other.chan) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
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
