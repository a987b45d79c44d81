//! [`ContextError`]: why a context is done.

/// Why a context is done: Go's `context.Canceled` and `context.DeadlineExceeded`, displayed
/// with Go's texts.
///
/// # Examples
/// ```
/// use goway::context::ContextError;
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// assert!(ContextError::DeadlineExceeded.is_timeout());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ContextError {
    /// The context was cancelled (its [`CancelFunc`](super::CancelFunc) or an ancestor's was called or dropped).
    #[error("context canceled")]
    Canceled,
    /// The context's deadline passed.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
}

impl ContextError {
    /// `true` for [`DeadlineExceeded`](ContextError::DeadlineExceeded) (Go's `Timeout()`).
    ///
    /// # Examples
    /// ```
    /// assert!(!goway::context::ContextError::Canceled.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, ContextError::DeadlineExceeded)
    }

    pub(super) fn code(self) -> u8 {
        match self {
            ContextError::Canceled => 1,
            ContextError::DeadlineExceeded => 2,
        }
    }

    pub(super) fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(ContextError::Canceled),
            2 => Some(ContextError::DeadlineExceeded),
            _ => None,
        }
    }
}

impl From<ContextError> for std::io::Error {
    /// `DeadlineExceeded` becomes `TimedOut` and `Canceled` becomes `Other`, each with Go's
    /// text and the `ContextError` inside (`e.get_ref()` and `downcast_ref` recover it).
    ///
    /// `std` has no kind for a cancellation. `Interrupted` would be wrong: `read_to_end`,
    /// `write_all` and `io::copy` retry it, so a cancelled reader would spin. `ConnectionAborted`
    /// names a peer's abort, and a context is not always about a connection.
    ///
    /// ```
    /// use goway::context::ContextError;
    /// let e = std::io::Error::from(ContextError::Canceled);
    /// assert_eq!(e.kind(), std::io::ErrorKind::Other);
    /// let inner = e.get_ref().and_then(|i| i.downcast_ref::<ContextError>());
    /// assert_eq!(inner, Some(&ContextError::Canceled));
    /// ```
    fn from(e: ContextError) -> Self {
        let kind = match e {
            ContextError::Canceled => std::io::ErrorKind::Other,
            ContextError::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}
