//! Go's `sync` for goroutines (placeholder: being written).
