//! `tune_allocator`: a freed block buffer serves the next block instead of going back to the
//! system (its own test binary: the tuning is process-wide).

#[test]
fn a_freed_block_buffer_is_reused_after_tuning() {
    let tuning = dag_core::tune_allocator();
    if tuning != dag_core::AllocatorTuning::Tuned {
        // Not glibc, or the environment opted out: nothing to check, but say so.
        assert!(
            !cfg!(all(target_os = "linux", target_env = "gnu"))
                || std::env::var_os("BLOCKARRAY_MALLOC").is_some()
                || std::env::var_os("GLIBC_TUNABLES").is_some(),
            "glibc without an opt-out must be tuned, got {tuning:?}"
        );
        return;
    }
    // 16 MB: above glibc's default mmap threshold, so without the tuning each buffer is its
    // own mapping and is unmapped on free.
    let n = 2 << 20;
    let first: Vec<f64> = vec![1.0; n];
    let addr = first.as_ptr() as usize;
    drop(first);
    let second: Vec<f64> = vec![2.0; n];
    assert_eq!(
        second.as_ptr() as usize,
        addr,
        "the second 16 MB buffer should reuse the first one's pages"
    );
}

/// Minor page faults of the calling thread so far.
fn thread_faults() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    ru.ru_minflt
}

#[test]
fn a_freed_buffer_above_the_mmap_threshold_is_reused_after_tuning() {
    if dag_core::tune_allocator() != dag_core::AllocatorTuning::Tuned {
        return;
    }
    // 40 MB: above glibc's largest mmap threshold (32 MiB), so only `mmap_max = 0` keeps it
    // from being a mapping of its own, unmapped on free and faulted in afresh next time.
    let n = 5 << 20;
    let first: Vec<f64> = vec![1.0; n];
    drop(first);
    let before = thread_faults();
    let second: Vec<f64> = vec![2.0; n];
    let faults = thread_faults() - before;
    let pages = (n * 8 / 4096) as i64;
    assert!(
        faults < pages / 10,
        "writing a second 40 MB buffer faulted {faults} of its {pages} pages in again"
    );
    drop(second);
}
