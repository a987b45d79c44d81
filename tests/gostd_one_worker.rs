//! Go 1.19's own channel, select, sync, context and time tests (`tests/gostd/cases.rs`, which
//! lists them, with what is skipped and why) on a runtime with ONE worker thread: every
//! goroutine shares it, so any operation that blocks the worker instead of parking shows up
//! here as a hang (a failed test after the watchdog).

mod common;

#[macro_use]
#[path = "gostd/cases.rs"]
mod cases;

gostd_tests!(1);
