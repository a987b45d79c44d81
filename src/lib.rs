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

// Module layers: dependencies between the top-level modules point one way, down.
//
//   6  fuzzing                  hidden: drives net's and http's parsers for the fuzz targets
//   5  http
//   4  net, signal, tls         signal: os/signal on chan and context; tls: on net's streams
//   3  sync, context, logging,  logging rate-limits its reports with a time timer;
//      bufio, metrics           bufio (Go's Scanner) needs nothing of goway; net's line codec
//                               shares its line search; metrics reads the runtime, and
//                               the servers implement its ServerMetrics
//   2  select, time, macros     macros: go! and select! expand to runtime and select
//   1  chan
//   0  runtime                  goroutines, parking, the timer thread, diagnostics
//
// A module names only modules of its own layer or lower ones, and no cycle forms within a
// layer; inside runtime, the submodules form no cycle either (their order is in
// src/runtime/mod.rs). A lower module that needs something of a higher one gets it through a
// hook the higher one registers (the blocking pool's busy check in the deadlock detector; the
// timer queue's entries, which time's timers and park's yield fill), or the thing moves down.
// `cargo test --release --test layering` checks all of it (`-- --nocapture` prints the graph).

#[macro_use]
mod macros;

pub mod bufio;
pub mod chan;
pub mod context;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod net;
pub mod runtime;
pub mod select;
pub mod signal;
pub mod sync;
pub mod time;
pub mod tls;

pub use runtime::{Builder, JoinHandle, Panicked};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The porting guide's examples (`docs/porting-from-go.md`), compiled and run as doctests.
#[doc = include_str!("../docs/porting-from-go.md")]
#[cfg(doctest)]
pub struct PortingGuideDoctests;
