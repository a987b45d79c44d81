//! goway: write network servers the Go way, in Rust.
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]

#[macro_use]
mod macros;

pub mod chan;
pub mod context;
pub mod runtime;
pub mod select;
pub mod sync;
pub mod time;

pub use runtime::{Builder, JoinHandle, Panicked};
