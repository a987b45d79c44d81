//! Goroutines: [`spawn`] (behind [`go!`](crate::go!)), [`Builder`], [`JoinHandle`], the
//! runtime's one-time configuration, and [`block_on_thread`] for blocking calls.
//!
//! Only `carrier` calls `may`'s `unsafe` spawn. may marks it unsafe because a coroutine must
//! not block its worker thread, must not rely on thread-local storage across a blocking call,
//! and must fit its fixed-size stack; goway's docs state those rules on [`go!`](crate::go!),
//! and goway's own blocking operations all park the coroutine.
//!
//! # Layout
//!
//! This file only declares the submodules and re-exports the public API. The submodules
//! depend on each other one way (`tests/layering.rs` checks that there is no cycle); from the
//! bottom up, each naming only submodules listed before it:
//!
//! - `switches` (the environment-overridable on/off switches), `own` (the runtime's own
//!   threads and sockets), `stack` (stack sizes and bounds), `panicked` ([`Panicked`]),
//!   `trace` (`enter_span`, with the `tracing` feature).
//! - `slots` (the table of goroutine stacks), `overflow` (the stack overflow handler),
//!   `watchdog` (the blocked-worker monitor).
//! - `registry` (a record per goroutine and waiting thread), `dump` (the goroutine dump).
//! - `timer` (the timer thread and its queue), `deadlock` (the deadlock detector; services
//!   above it register their wake-up checks with it).
//! - `blocked` (marking a waiter in its record), `park` (the `Waiter`, [`yield_now`]).
//! - `join` (a goroutine's result), `config` ([`Config`]), `blocking` (the pool behind
//!   [`block_on_thread`]), `carrier` (recycled coroutines), `metrics` ([`metrics`]), and last
//!   `spawn` ([`Builder`], [`JoinHandle`]).

pub(crate) mod blocked;
mod blocking;
mod carrier;
mod config;
mod deadlock;
mod dump;
mod join;
mod metrics;
mod overflow;
mod own;
mod panicked;
pub(crate) mod park;
pub(crate) mod registry;
mod slots;
mod spawn;
mod stack;
mod switches;
pub(crate) mod timer;
#[cfg(feature = "tracing")]
mod trace;
mod watchdog;

pub(crate) use blocking::block_on_thread_until;
pub use blocking::{BlockingStats, block_on_thread, blocking_stats};
pub use config::{
    AlreadyStarted, Config, ConfigError, DEFAULT_BLOCKING_KEEP_ALIVE, DEFAULT_MAX_BLOCKING_THREADS,
    max_goroutines,
};
pub use dump::{dump, dump_on_signal};
pub use metrics::{Metrics, metrics};
pub use panicked::Panicked;
pub(crate) use panicked::panic_message;
pub use park::{in_goroutine, yield_now};
pub use registry::num_goroutines;
pub use spawn::{Builder, JoinHandle, spawn};
pub use stack::{
    DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE, StackLimit, StackSizeError, max_stack_size,
};
#[cfg(feature = "tracing")]
pub use trace::{SpanGuard, enter_span};
