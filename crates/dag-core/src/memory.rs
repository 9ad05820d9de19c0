//! Memory: what the machine has available, how schedulers count the bytes they hold, and how
//! byte counts are shown to people.

/// Live-bytes accounting shared by the schedulers: the current total of held values and the
/// highest it has been.
///
/// The total is signed: a parallel scheduler that publishes per-worker deltas in batches may
/// publish a release before the matching hold, and the total must not wrap when it dips.
#[derive(Debug, Default)]
pub struct MemoryMeter {
    live: std::sync::atomic::AtomicIsize,
    peak: std::sync::atomic::AtomicIsize,
}

impl MemoryMeter {
    /// Values of `nbytes` in total are now held.
    pub fn hold(&self, nbytes: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = nbytes as isize;
        let now = self.live.fetch_add(n, Relaxed) + n;
        self.peak.fetch_max(now, Relaxed);
    }

    /// Values of `nbytes` in total were dropped.
    pub fn release(&self, nbytes: usize) {
        self.live
            .fetch_sub(nbytes as isize, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes held now.
    pub fn live(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Relaxed).max(0) as usize
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed).max(0) as usize
    }
}

/// The cores this process may run on (`std::thread::available_parallelism`, 1 if unknown),
/// counted once per process: the count reads cgroup files, about 60 µs, which a fresh
/// process's first small computation would otherwise pay.
///
/// ```
/// assert!(dag_core::available_cores() >= 1);
/// ```
pub fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Bytes of memory available to this process now: the kernel's estimate of what can be
/// allocated without swapping (`MemAvailable` in `/proc/meminfo`), or `None` where that is
/// not known (other systems). Results and persisted arrays that would not fit are refused
/// against it, and memory bounds default to a share of it.
///
/// A reading is reused for 20 ms (one computation asks several times while it is checked and
/// planned, and reading `/proc/meminfo` costs about 10 µs).
pub fn available_memory() -> Option<usize> {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    static LAST: Mutex<Option<(Instant, Option<usize>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, value)) = *last
        && at.elapsed() < Duration::from_millis(20)
    {
        return value;
    }
    let value = read_available_memory();
    *last = Some((Instant::now(), value));
    value
}

fn read_available_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// What [`tune_allocator`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// glibc's malloc now keeps freed block buffers for reuse (see [`tune_allocator`]).
    Tuned,
    /// Left alone: `BLOCKARRAY_MALLOC=system` is set.
    DisabledByEnv,
    /// Left alone: the user configures malloc through `GLIBC_TUNABLES` themselves.
    UserTunables,
    /// Left alone: not a glibc target, or glibc refused the setting.
    Unsupported,
}

/// Block buffers up to this size come from malloc's arenas instead of their own `mmap`.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of an arena is returned to the system only beyond this much.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Make the process's allocator keep freed block buffers for the next block, once per
/// process; every scheduler calls it when a run starts.
///
/// # Why
///
/// Blocks are megabytes each. glibc's malloc serves such sizes with a fresh `mmap` and
/// returns them with `munmap` on free (its threshold adapts only up to the first sizes it
/// sees, and arenas trim their free tops eagerly), so every new block faults its pages in
/// again: the kernel zeroes 4 KiB at a time, and the run spends more time in page faults than
/// in its kernels (measured in docs/benchmarks.md: `xxt_slice_mean` 0.23 → 0.085 s, 147 000 →
/// 8 800 faults). Setting malloc's mmap threshold to 32 MiB and its trim threshold to 1 GiB
/// (the same as `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824`)
/// makes a freed block's pages serve the next block of a similar size. Blocks of 32 MiB and
/// more stay mappings of their own; adding `glibc.malloc.mmap_max=0` to that line keeps them
/// too (much faster for streaming such blocks from disk) but slowed `sort` and
/// `task_overhead`, so it is left to the user (docs/benchmarks.md).
///
/// The cost: up to 1 GiB of freed memory per arena stays mapped after a peak instead of
/// going back to the system (the peak itself does not grow). Set `BLOCKARRAY_MALLOC=system`
/// to keep glibc's defaults; if `GLIBC_TUNABLES` already sets any `glibc.malloc.` tunable,
/// the user's settings are left as they are. On other targets this does nothing.
///
/// ```
/// let tuning = dag_core::tune_allocator();
/// // Every later call reports the first call's outcome.
/// assert_eq!(dag_core::tune_allocator(), tuning);
/// ```
pub fn tune_allocator() -> AllocatorTuning {
    static ONCE: std::sync::OnceLock<AllocatorTuning> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        if system_malloc_requested() {
            return AllocatorTuning::DisabledByEnv;
        }
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|v| v.contains("glibc.malloc.")) {
            return AllocatorTuning::UserTunables;
        }
        set_malloc_thresholds()
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_thresholds() -> AllocatorTuning {
    // SAFETY: mallopt only changes malloc's parameters; it is thread-safe in glibc (it takes
    // each arena's lock) and both values are within its documented ranges.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    };
    if ok {
        AllocatorTuning::Tuned
    } else {
        AllocatorTuning::Unsupported
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_thresholds() -> AllocatorTuning {
    AllocatorTuning::Unsupported
}

/// A global allocator that keeps a few freed large block buffers for the next block of the
/// same size: opt in from a binary that streams big blocks.
///
/// ```
/// #[global_allocator]
/// static ALLOC: dag_core::BlockCache = dag_core::BlockCache::new();
/// # fn main() {}
/// ```
///
/// # Why
///
/// [`tune_allocator`] makes glibc reuse the pages of freed blocks up to 32 MiB, the most its
/// mmap threshold can be. Larger blocks (dask's default chunk is 128 MiB; the 32 GB streaming
/// examples read 32 MiB chunks) are still mapped fresh for every block and unmapped when it is
/// freed, so each block's pages fault in and are zeroed again: on the 32 GB HDF5 reduction
/// that kept the disk idle a quarter of the time (docs/benchmarks.md). This allocator passes
/// everything to the system allocator except buffers of at least 16 MiB: a freed one is kept
/// (up to [`MAX_BUFFERS`](Self::MAX_BUFFERS) buffers and [`MAX_BYTES`](Self::MAX_BYTES)
/// bytes; to keep a new one beyond that, the oldest kept go back to the system, so the cache
/// follows the block sizes in use), and an allocation of exactly its size and
/// alignment gets it back, pages already in place; a zeroed allocation gets it cleared
/// (clearing 32 MiB takes a few milliseconds, faulting in 8 192 fresh zero pages several times
/// that on the VMs measured here). Blocks
/// that stream through a computation have one size, so at most a few buffers per worker are
/// ever kept. Set `BLOCKARRAY_MALLOC=system` to make it pass everything through.
pub struct BlockCache {
    kept: std::sync::Mutex<Kept>,
}

const BLOCK_CACHE_SLOTS: usize = 16;

/// A kept buffer: its address, size, alignment, and when it was kept.
#[derive(Clone, Copy)]
struct Slot {
    ptr: usize,
    size: usize,
    align: usize,
    age: u64,
}

impl Slot {
    fn layout(&self) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(self.size, self.align)
            .expect("a kept buffer's layout was valid when it was allocated")
    }
}

/// The buffers a [`BlockCache`] keeps.
struct Kept {
    slots: [Option<Slot>; BLOCK_CACHE_SLOTS],
    /// Bytes kept.
    bytes: usize,
    next_age: u64,
}

impl Kept {
    /// Take slot `i`'s buffer out of the cache.
    fn remove(&mut self, i: usize) -> Option<Slot> {
        let s = self.slots[i].take()?;
        self.bytes -= s.size;
        Some(s)
    }

    /// Return slot `i`'s buffer (if any) to the system.
    fn release(&mut self, i: usize) {
        if let Some(s) = self.remove(i) {
            // SAFETY: a kept buffer came from `System` with this layout, and the cache owned it.
            unsafe {
                std::alloc::GlobalAlloc::dealloc(&std::alloc::System, s.ptr as *mut u8, s.layout())
            }
        }
    }
}

/// Whether the user asked for the system allocator as it comes (`BLOCKARRAY_MALLOC=system`):
/// then [`tune_allocator`] leaves malloc alone and [`BlockCache`] passes everything through.
/// Read once; without allocating (the cache asks from inside the allocator).
fn system_malloc_requested() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
    // 0: not read yet, 1: not requested, 2: requested.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            // SAFETY: a NUL-terminated name; the result is only read, right away.
            let requested = unsafe {
                let v = libc::getenv(c"BLOCKARRAY_MALLOC".as_ptr());
                !v.is_null() && std::ffi::CStr::from_ptr(v).to_bytes() == b"system"
            };
            STATE.store(if requested { 2 } else { 1 }, Relaxed);
            requested
        }
    }
}

impl BlockCache {
    /// The smallest buffer kept.
    pub const MIN_SIZE: usize = 16 << 20;
    /// The most buffers kept at once.
    pub const MAX_BUFFERS: usize = BLOCK_CACHE_SLOTS;
    /// The most bytes kept at once.
    pub const MAX_BYTES: usize = 512 << 20;

    /// An empty cache.
    pub const fn new() -> BlockCache {
        BlockCache {
            kept: std::sync::Mutex::new(Kept {
                slots: [None; BLOCK_CACHE_SLOTS],
                bytes: 0,
                next_age: 0,
            }),
        }
    }

    /// Bytes of freed buffers kept now.
    pub fn cached_bytes(&self) -> usize {
        self.kept().bytes
    }

    /// Return every kept buffer to the system (after a streaming phase, say).
    pub fn clear(&self) {
        let mut kept = self.kept();
        for i in 0..BLOCK_CACHE_SLOTS {
            kept.release(i);
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a buffer of `layout` goes through the cache.
    fn handles(layout: std::alloc::Layout) -> bool {
        layout.size() >= Self::MIN_SIZE && !system_malloc_requested()
    }

    /// A kept buffer of exactly `layout`, taken out of the cache, or null.
    fn take(&self, layout: std::alloc::Layout) -> *mut u8 {
        let mut kept = self.kept();
        let found = kept
            .slots
            .iter()
            .position(|s| s.is_some_and(|s| s.size == layout.size() && s.align == layout.align()));
        found
            .and_then(|i| kept.remove(i))
            .map_or(std::ptr::null_mut(), |s| s.ptr as *mut u8)
    }

    /// Keep `ptr` (from `System` with `layout`), making room by returning the oldest kept
    /// buffers to the system, so the cache follows the sizes in use now. False when it
    /// cannot be kept (larger than the cache).
    fn keep(&self, ptr: *mut u8, layout: std::alloc::Layout) -> bool {
        if layout.size() > Self::MAX_BYTES {
            return false;
        }
        let mut kept = self.kept();
        loop {
            let free = kept.slots.iter().position(Option::is_none);
            if let Some(i) = free
                && kept.bytes + layout.size() <= Self::MAX_BYTES
            {
                let age = kept.next_age;
                kept.next_age += 1;
                kept.slots[i] = Some(Slot {
                    ptr: ptr as usize,
                    size: layout.size(),
                    align: layout.align(),
                    age,
                });
                kept.bytes += layout.size();
                return true;
            }
            let oldest = (0..BLOCK_CACHE_SLOTS)
                .filter_map(|i| kept.slots[i].map(|s| (s.age, i)))
                .min()
                .map(|(_, i)| i)
                .expect("a full cache holds a buffer");
            kept.release(oldest);
        }
    }
}

impl Default for BlockCache {
    fn default() -> Self {
        BlockCache::new()
    }
}

// SAFETY: every pointer handed out comes from `System` with the caller's exact layout (a kept
// buffer is only returned for an identical size and alignment), and every pointer given back
// is either kept (then owned by the cache until handed out again or released to `System` with
// the layout it was allocated with) or returned to `System` at once. The lock does not
// allocate, and `System` never calls back into this allocator.
unsafe impl std::alloc::GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if Self::handles(layout) {
            let p = self.take(layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // A kept buffer cleared is cheaper than fresh zero pages faulted in one by one.
        if Self::handles(layout) {
            let p = self.take(layout);
            if !p.is_null() {
                // SAFETY: `take` returned room for `layout`, cleared whole here.
                unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
                return p;
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if Self::handles(layout) && self.keep(ptr, layout) {
            return;
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout` (kept buffers are handed out whole).
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// A byte count for people, in decimal units like dask's repr: `512 B`, `8.00 MB`, `1.50 GB`.
///
/// ```
/// assert_eq!(dag_core::fmt_bytes(512), "512 B");
/// assert_eq!(dag_core::fmt_bytes(8_000_000), "8.00 MB");
/// assert_eq!(dag_core::fmt_bytes(320_000_000_000), "320.00 GB");
/// ```
pub fn fmt_bytes(n: usize) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let n = available_memory().expect("MemAvailable is in /proc/meminfo");
            assert!(n > 1 << 20, "{n}");
        }
    }

    #[test]
    fn a_meter_tracks_live_and_peak_bytes() {
        let m = MemoryMeter::default();
        m.hold(100);
        m.hold(50);
        m.release(120);
        m.hold(10);
        assert_eq!((m.live(), m.peak()), (40, 150));
    }
}
