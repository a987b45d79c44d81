#![doc = include_str!("../docs/guide.md")]
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

// A goroutine's panic ends that goroutine (`join` returns `Err`) and a server handler's panic
// ends only its connection (docs/reliability.md S9): both need unwinding. Under `panic = "abort"`
// one bad request would take the whole process down, so goway refuses to build.
#[cfg(panic = "abort")]
compile_error!(
    "goway needs panic = \"unwind\": it contains goroutine and handler panics with \
     catch_unwind, which panic = \"abort\" turns into process aborts (set panic = \"unwind\" \
     in the Cargo profile)"
);

#[macro_use]
mod macros;

pub mod bufio;
pub mod chan;
pub mod context;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod logging;
pub mod net;
pub mod runtime;
pub mod select;
pub mod signal;
pub mod sync;
pub mod time;

pub use runtime::{Builder, JoinHandle, Panicked};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The porting guide's examples (`docs/porting-from-go.md`), compiled and run as doctests.
#[doc = include_str!("../docs/porting-from-go.md")]
#[cfg(doctest)]
pub struct PortingGuideDoctests;
