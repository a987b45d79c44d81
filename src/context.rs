//! Go's `context` for goroutines (placeholder: being written).
