//! `conn_inline_edges.rs`'s tests on one worker thread.

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "conn_inline_edges.rs"]
mod conn_inline_edges;
