//! What `daad` and `cargo xtask` (and its worker processes) do before anything else.

/// Logging, then the allocator setup that keeps freed tensor memory for reuse
/// ([`daad::nn::retain_freed_memory`]; `DAAD_MALLOC=default` keeps glibc's defaults).
pub fn init() {
    super::logging::init();
    let setup = daad::nn::retain_freed_memory();
    tracing::debug!(?setup, "allocator");
}
