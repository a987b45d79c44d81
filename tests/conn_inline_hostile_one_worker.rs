//! `conn_inline_hostile.rs`'s tests on one worker thread: hostile clients against inline
//! reading, the reader goroutine started on demand and the writer's carry need no second
//! thread (nothing blocks the worker).

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "conn_inline_hostile.rs"]
mod conn_inline_hostile;
