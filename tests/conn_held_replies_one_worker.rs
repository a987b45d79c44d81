//! `conn_held_replies.rs`'s tests on one worker thread: held replies are written by the
//! handler's last reply of a burst or by a writer goroutine, never needing a second thread.

/// One worker for the whole test binary.
const WORKERS: Option<usize> = Some(1);

#[path = "conn_held_replies.rs"]
mod conn_held_replies;
