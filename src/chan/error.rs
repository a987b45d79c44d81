//! Every channel error type, one per operation (after crossbeam-channel's `err.rs`).
//!
//! An unsent value always comes back to the caller: through the tuple field of [`SendError`],
//! the variants of [`TrySendError`] and [`SendTimeoutError`], or `into_inner()` on each.
//! `Debug` does not require `T: Debug`, so these errors work with `?` and `unwrap` for any `T`.

use std::fmt;

/// The channel was closed (or every receiver is gone) when `send` was called; the value is
/// returned inside. Go panics here ("send on closed channel"); goway hands the value back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`](crate::chan::Sender::try_send) did not send; the value is returned.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The buffer is full (or, unbuffered, no receiver is waiting).
    Full(T),
    /// The channel is closed.
    Closed(T),
}

/// Why [`Sender::send_timeout`](crate::chan::Sender::send_timeout) did not send; the value is
/// returned.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The timeout passed before a buffer slot or a receiver was available.
    Timeout(T),
    /// The channel is closed.
    Closed(T),
}

/// The channel is closed and its buffer drained: no value will ever arrive.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub struct RecvError;

/// Why [`Receiver::try_recv`](crate::chan::Receiver::try_recv) returned no value.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum TryRecvError {
    /// Nothing is buffered and no sender is waiting.
    Empty,
    /// The channel is closed and drained.
    Closed,
}

/// Why [`Receiver::recv_timeout`](crate::chan::Receiver::recv_timeout) returned no value.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
pub enum RecvTimeoutError {
    /// The timeout passed with no value.
    Timeout,
    /// The channel is closed and drained.
    Closed,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<&str>(1);
    /// drop(rx); // no receiver left: the channel is closed
    /// assert_eq!(tx.send("lost").unwrap_err().into_inner(), "lost");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    /// ```
    /// let (tx, _rx) = goway::chan::bounded(0); // unbuffered, nobody receiving
    /// assert_eq!(tx.try_send(7).unwrap_err().into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// `true` for [`TrySendError::Full`].
    ///
    /// # Examples
    /// ```
    /// let (tx, _rx) = goway::chan::bounded(1);
    /// tx.try_send(1).unwrap();
    /// assert!(tx.try_send(2).unwrap_err().is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// `true` for [`TrySendError::Closed`].
    ///
    /// # Examples
    /// ```
    /// let (tx, _rx) = goway::chan::bounded(1);
    /// tx.close();
    /// assert!(tx.try_send(1).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = goway::chan::bounded(0);
    /// let e = tx.send_timeout("late", Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(e.into_inner(), "late");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }

    /// `true` for [`SendTimeoutError::Timeout`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = goway::chan::bounded(0);
    /// assert!(tx.send_timeout(1, Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// `true` for [`SendTimeoutError::Closed`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = goway::chan::bounded(0);
    /// tx.close();
    /// assert!(tx.send_timeout(1, Duration::from_secs(1)).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendTimeoutError::Closed(_))
    }
}

impl TryRecvError {
    /// `true` for [`TryRecvError::Empty`].
    ///
    /// # Examples
    /// ```
    /// let (_tx, rx) = goway::chan::bounded::<i32>(1);
    /// assert!(rx.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// `true` for [`TryRecvError::Closed`].
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<i32>(1);
    /// drop(tx);
    /// assert!(rx.try_recv().unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TryRecvError::Closed)
    }
}

impl RecvTimeoutError {
    /// `true` for [`RecvTimeoutError::Timeout`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = goway::chan::bounded::<i32>(1);
    /// assert!(rx.recv_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// `true` for [`RecvTimeoutError::Closed`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (tx, rx) = goway::chan::bounded::<i32>(1);
    /// tx.close();
    /// assert!(rx.recv_timeout(Duration::from_secs(1)).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvTimeoutError::Closed)
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}
impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> std::error::Error for TrySendError<T> {}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}
impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}
impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on a closed channel")
    }
}
impl std::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}
impl std::error::Error for TryRecvError {}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on receive operation"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed channel"),
        }
    }
}
impl std::error::Error for RecvTimeoutError {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        TrySendError::Closed(e.0)
    }
}
impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Closed(e.0)
    }
}
impl From<RecvError> for TryRecvError {
    fn from(_: RecvError) -> Self {
        TryRecvError::Closed
    }
}
impl From<RecvError> for RecvTimeoutError {
    fn from(_: RecvError) -> Self {
        RecvTimeoutError::Closed
    }
}
