//! The process's memory allocator set up for tensor work: freed memory kept for reuse.
//!
//! With glibc's defaults every block over its mmap threshold (at most 32 MiB, e.g. one 256 px
//! feature map of a batch of 8) is a fresh `mmap`, and every freed one goes back to the system.
//! A training step or an inference batch allocates and frees such blocks dozens of times, so each
//! allocation pays a page fault and a page clear per 4 KiB: 16 % of a 256 px step's CPU time in
//! `perf`. [`retain_freed_memory`] turns both off for the process, so freed blocks are reused
//! (measured in `docs/PERFORMANCE.md`: about 2.2 million page faults fewer per 256 px bench
//! worker). Binaries call it first thing; a library that only links daad-nn is left alone.

/// What [`retain_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorSetup {
    /// glibc malloc now serves large blocks from its heap and never trims it.
    Applied,
    /// `GLIBC_TUNABLES` sets malloc parameters already: the user's settings are kept.
    LeftToEnvironment,
    /// glibc refused a setting (the defaults stay).
    Refused,
    /// Not glibc: the platform's allocator is left as it is.
    Unsupported,
}

/// Keeps freed memory in the process for reuse (glibc: no `mmap` for large blocks, no trimming);
/// call it at the start of a binary, before threads allocate.
///
/// The peak resident memory stays what the work needs (the blocks are reused, not added to), but
/// it is not given back to the system until the process ends. `DAAD_MALLOC=default`, or any
/// `glibc.malloc` setting in `GLIBC_TUNABLES`, keeps glibc's own behaviour.
/// Later calls do nothing and return the first call's result.
pub fn retain_freed_memory() -> AllocatorSetup {
    static SETUP: std::sync::OnceLock<AllocatorSetup> = std::sync::OnceLock::new();
    *SETUP.get_or_init(|| {
        if std::env::var("DAAD_MALLOC").is_ok_and(|v| v == "default")
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.contains("glibc.malloc."))
        {
            return AllocatorSetup::LeftToEnvironment;
        }
        apply()
    })
}

/// The `GLIBC_TUNABLES` value that gives another process (say, PyTorch) the same setup.
pub const GLIBC_TUNABLES_EQUIVALENT: &str =
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647";

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> AllocatorSetup {
    // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time, and these
    // two settings change where later blocks come from, not blocks already handed out.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
    };
    if ok {
        AllocatorSetup::Applied
    } else {
        AllocatorSetup::Refused
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> AllocatorSetup {
    AllocatorSetup::Unsupported
}
