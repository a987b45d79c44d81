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
    ///
    /// # Examples
    /// ```
    /// // On a plain thread, block_on_thread runs the closure in place.
    /// let p = goway::runtime::block_on_thread(|| -> u32 { panic!("boom") }).unwrap_err();
    /// assert_eq!(p.message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The goroutine's name, if it had one.
    ///
    /// # Examples
    /// ```
    /// // Room for a panic's backtrace (RUST_BACKTRACE=1), which runs on the goroutine's stack.
    /// let b = goway::Builder::new().stack_size(256 << 10);
    /// let h = b.name("worker").spawn(|| -> u32 { panic!("x") }).unwrap();
    /// assert_eq!(h.join().unwrap_err().name(), Some("worker"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The raw payload, to re-raise with `std::panic::resume_unwind`.
    ///
    /// # Examples
    /// ```
    /// let p = goway::runtime::block_on_thread(|| std::panic::panic_any(7u32)).unwrap_err();
    /// assert_eq!(p.message(), "<non-string panic payload>");
    /// assert_eq!(p.into_payload().downcast_ref::<u32>(), Some(&7));
    /// ```
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
