//! `BlockCache` as this test binary's global allocator: a freed large buffer serves the next
//! allocation of its size, zeroed allocations stay zeroed, small and odd sizes pass through,
//! and what it keeps is bounded.

use dag_core::BlockCache;

#[global_allocator]
static ALLOC: BlockCache = BlockCache::new();

/// The tests share the one allocator: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Minor page faults of this process so far.
fn faults() -> i64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_minflt
}

fn enabled() -> bool {
    std::env::var_os("BLOCKARRAY_MALLOC").is_none_or(|v| v != "system")
}

#[test]
fn a_freed_block_buffer_serves_the_next_block_of_its_size() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Fill the cache with buffers of other sizes first: the oldest make room for new ones.
    let others: Vec<Vec<u8>> = (0..20).map(|i| vec![1u8; (17 << 20) + i]).collect();
    drop(others);
    // 32 MiB: beyond what glibc's mmap threshold can be raised to, so without the cache each
    // buffer is a fresh mapping.
    let n = 4 << 20;
    let first: Vec<f64> = vec![1.5; n];
    let addr = first.as_ptr() as usize;
    drop(first);
    let before = faults();
    let second: Vec<f64> = vec![2.5; n];
    let faulted = faults() - before;
    if enabled() {
        assert_eq!(second.as_ptr() as usize, addr, "the buffer was not reused");
        // Its 8192 pages are in place: writing them does not fault them in again.
        assert!(faulted < 512, "{faulted} page faults writing a kept buffer");
    }
    assert!(second.iter().all(|&v| v == 2.5));
    // A zeroed allocation of the same size is zero, whatever the cache holds.
    let dirty = second;
    drop(dirty);
    let zeroed: Vec<f64> = vec![0.0; n];
    assert!(zeroed.iter().all(|&v| v == 0.0));
    if enabled() {
        assert_eq!(
            zeroed.as_ptr() as usize,
            addr,
            "the zeroed buffer was not reused"
        );
    }
    // Another size does not get the kept buffer (back in the cache now).
    drop(zeroed);
    let other: Vec<u8> = Vec::with_capacity((32 << 20) + 8);
    assert_ne!(other.as_ptr() as usize, addr);
}

#[test]
fn what_the_cache_keeps_is_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let buffers: Vec<Vec<u8>> = (0..40).map(|_| vec![7u8; 20 << 20]).collect();
    drop(buffers);
    // Fewer buffers than slots but more bytes than the cache keeps (never written, so cheap).
    let big: Vec<Vec<u8>> = (0..6).map(|_| Vec::with_capacity(100 << 20)).collect();
    drop(big);
    // 40 × 20 MiB and 6 × 100 MiB were freed; at most MAX_BYTES (512 MiB) are kept.
    assert!(ALLOC.cached_bytes() <= BlockCache::MAX_BYTES);
    if enabled() {
        assert!(ALLOC.cached_bytes() >= 20 << 20, "nothing was kept");
    }
    // `clear` returns them all.
    ALLOC.clear();
    assert_eq!(ALLOC.cached_bytes(), 0);
    // Growing and shrinking a large buffer in place still works.
    let mut v = vec![3u32; 5 << 20];
    v.resize(9 << 20, 4);
    v.truncate(1 << 20);
    v.shrink_to_fit();
    assert_eq!((v.len(), v[0]), (1 << 20, 3));
}
