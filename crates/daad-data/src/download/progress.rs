//! The progress callback long operations report through.

/// Receives progress of long operations; binaries implement it with a progress bar.
pub trait Progress {
    /// A new phase starts (`total` in bytes for downloads, entries for extraction, if known).
    fn begin(&mut self, label: &str, total: Option<u64>);
    /// The phase reached `done` (absolute, same unit as `total`).
    fn set_position(&mut self, done: u64);
    /// The phase ended.
    fn end(&mut self);
}

/// A [`Progress`] that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&mut self, _label: &str, _total: Option<u64>) {}
    fn set_position(&mut self, _done: u64) {}
    fn end(&mut self) {}
}
