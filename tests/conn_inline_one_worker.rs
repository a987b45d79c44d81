//! `conn_inline.rs`'s tests on one worker thread: a handler reading inline, a reader started
//! later, and the writer never need a second thread (nothing blocks the worker).

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "conn_inline.rs"]
mod conn_inline;
