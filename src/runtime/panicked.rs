//! A goroutine's panic as a value ([`Panicked`]), and the text of a panic payload.

use std::any::Any;
use std::fmt;

/// A goroutine's panic, as returned by [`JoinHandle::join`], or a panic of a closure run by
/// [`block_on_thread`].
///
/// [`JoinHandle::join`]: crate::runtime::JoinHandle::join
/// [`block_on_thread`]: crate::runtime::block_on_thread
pub struct Panicked {
    name: Option<String>,
    message: String,
    payload: Box<dyn Any + Send>,
}

impl Panicked {
    pub(crate) fn new(name: Option<String>, payload: Box<dyn Any + Send>) -> Self {
        Panicked {
            name,
            message: panic_message(payload.as_ref()),
            payload,
        }
    }

    /// The panic message (`"<non-string panic payload>"` when the payload is not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The goroutine's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The raw payload, to re-raise with `std::panic::resume_unwind`.
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }
}

impl fmt::Debug for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panicked")
            .field("name", &self.name)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "goroutine '{n}' panicked: {}", self.message),
            None => write!(f, "goroutine panicked: {}", self.message),
        }
    }
}

impl std::error::Error for Panicked {}

/// The text of a panic payload.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
