//! `retain_freed_memory`: a large block freed and allocated again reuses the process's pages
//! instead of faulting in fresh ones (glibc; its defaults `mmap` every block over 32 MiB).
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use daad_nn::{retain_freed_memory, AllocatorSetup};

// Over glibc's largest mmap threshold (32 MiB) and under the 64 MiB heap of a thread's arena
// (the test runs on a thread; larger blocks there are always mapped).
const BYTES: usize = 48 << 20;
const PAGES: i64 = (BYTES / 4096) as i64;

fn minor_faults() -> i64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_minflt
}

/// Page faults of allocating, writing and freeing one `BYTES` block.
fn faults_of_one_block() -> i64 {
    let before = minor_faults();
    let block = vec![1u8; BYTES];
    std::hint::black_box(&block);
    drop(block);
    minor_faults() - before
}

#[test]
fn a_freed_large_block_is_reused_without_page_faults() {
    faults_of_one_block();
    let default = faults_of_one_block();
    assert!(default > PAGES / 2, "glibc's default faults every page in again: {default}");

    assert_eq!(retain_freed_memory(), AllocatorSetup::Applied);
    faults_of_one_block(); // the heap grows once
    let retained = faults_of_one_block();
    assert!(retained < PAGES / 20, "{retained} faults for {PAGES} pages after the setup");
}
