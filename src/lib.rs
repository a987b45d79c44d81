#![doc = include_str!("../docs/guide.md")]
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

#[macro_use]
mod macros;

pub mod chan;
pub mod context;
pub mod http;
pub mod net;
pub mod runtime;
pub mod select;
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
