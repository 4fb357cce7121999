//! How long-running work reports progress, without knowing who listens: the
//! CLI draws a bar or prints step lines, the server updates a task record.

/// Receives progress events. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    /// A new step begins, e.g. "flushing 3 collections".
    fn step(&self, message: &str);
    /// A transfer of `items` items (`unit`: "files", "segments") and `bytes`
    /// bytes begins.
    fn transfer_start(&self, items: u64, unit: &str, bytes: u64);
    /// One item of `bytes` bytes is done.
    fn transfer_advance(&self, bytes: u64);
    /// The transfer ended (successfully or not).
    fn transfer_end(&self);
    /// Something the user should know that does not stop the work.
    fn warn(&self, message: &str);
}

/// Discards every event.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str) {}
    fn transfer_start(&self, _: u64, _: &str, _: u64) {}
    fn transfer_advance(&self, _: u64) {}
    fn transfer_end(&self) {}
    fn warn(&self, message: &str) {
        tracing::warn!("{message}");
    }
}
