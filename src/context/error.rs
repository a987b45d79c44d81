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
    /// `DeadlineExceeded` becomes `TimedOut`, `Canceled` becomes `Interrupted`, each with Go's
    /// text.
    fn from(e: ContextError) -> Self {
        let kind = match e {
            ContextError::Canceled => std::io::ErrorKind::Interrupted,
            ContextError::DeadlineExceeded => std::io::ErrorKind::TimedOut,
        };
        std::io::Error::new(kind, e)
    }
}
