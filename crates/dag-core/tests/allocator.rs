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
