//! Go 1.19's own channel, select, sync, context and time tests (`tests/gostd/cases.rs`, which
//! lists them, with what is skipped and why) on a runtime with TWO worker threads: goroutines
//! run in parallel, as under Go's GOMAXPROCS=2.

mod common;

#[macro_use]
#[path = "gostd/cases.rs"]
mod cases;

gostd_tests!(2);
