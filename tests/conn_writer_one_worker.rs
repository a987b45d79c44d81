//! `conn_writer.rs`'s tests on one worker thread: a writer starting, ending and starting again
//! never needs a second thread (nothing blocks the worker).

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "conn_writer.rs"]
mod conn_writer;
