//! Out-of-core sort: an HDF5 dataset sorted into another dataset with bounded memory.
//!
//! 1. Checks free disk space (the input and the output, plus `--reserve-gb`).
//! 2. Writes `--gb` GB of uniform random float64 to `/x` of one file (chunks of 4 Mi values,
//!    32 MiB), with blockarray.
//! 3. Drops the page cache (as root) and sorts `/x` into `/sorted` of a second file with
//!    `sort_with(0, SortOptions { memory })`: a sample sort whose partition passes hold at most
//!    `--memory-gb` GB of keys (8 bytes per value), reading the input once per group of output
//!    blocks (see blockarray's `ops::select::sort`).
//! 4. Checks the output streaming, with bounded memory: every value is at least the one
//!    before it, and the sums agree.
//! 5. Reports times, the number of groups and the peak RSS (getrusage), then deletes both
//!    files (unless `--keep`).
//!
//! `cargo run --release -p blockarray-hdf5 --example sort_dataset -- --gb 4 --memory-gb 1`
//! (`--dir D` picks where the files go, default the temporary directory).

mod common;

/// Freed 32 MiB chunk buffers serve the next chunk instead of being mapped afresh (see
/// `dag_core::BlockCache`).
#[global_allocator]
static ALLOC: dag_core::BlockCache = dag_core::BlockCache::new();

use blockarray::random::Rng;
use blockarray::{SortOptions, s};
use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5};
use std::path::{Path, PathBuf};
use std::time::Instant;

const CHUNK: usize = 1 << 22; // 4 Mi float64 = 32 MiB

/// Bytes available to this user on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs only writes the struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Peak resident set size of this process so far, in bytes.
fn peak_rss() -> u64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64 * 1024
}

/// Flush dirty pages and drop the page cache (root only); whether it worked.
fn drop_caches() -> bool {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn gb(bytes: f64) -> String {
    format!("{:.2} GB", bytes * 1e-9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size_gb = common::arg("--gb", 2.0);
    let memory_gb = common::arg("--memory-gb", 0.5);
    let reserve = common::arg("--reserve-gb", 10.0) * 1e9;
    let keep = std::env::args().any(|a| a == "--keep");
    let dir = common::value("--dir").map_or_else(std::env::temp_dir, PathBuf::from);
    let n = ((size_gb * 1e9 / 8.0) as usize).max(1);
    let bytes = n as f64 * 8.0;
    let input = dir.join(format!("sort-input-{}.h5", std::process::id()));
    let output = dir.join(format!("sort-output-{}.h5", std::process::id()));
    let free = free_bytes(&dir).ok_or("cannot query free disk space")? as f64;
    println!(
        "dataset: {n} float64 = {}; memory budget {}; free on {}: {}",
        gb(bytes),
        gb(memory_gb * 1e9),
        dir.display(),
        gb(free)
    );
    if free < 2.02 * bytes + reserve {
        println!(
            "not enough free disk space: need {} plus {} reserve, have {}. Run with a smaller --gb.",
            gb(2.02 * bytes),
            gb(reserve),
            gb(free)
        );
        return Ok(());
    }
    let result = run(&input, &output, n, bytes, memory_gb);
    if !keep {
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
    }
    result
}

fn run(
    input: &Path,
    output: &Path,
    n: usize,
    bytes: f64,
    memory_gb: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let sched = blockarray::default_scheduler();
    // 2. The input.
    let t = Instant::now();
    let x = Rng::new(7).random::<f64>(&[n], [CHUNK])?;
    let mut store = Hdf5Store::new(input);
    store.dataset("/x", &x, &DatasetOptions::new().chunks([CHUNK]))?;
    store.run()?;
    println!(
        "wrote {} in {:.1} s; peak RSS so far {}",
        gb(bytes),
        t.elapsed().as_secs_f64(),
        gb(peak_rss() as f64)
    );

    // 3. The sort.
    let dropped = drop_caches();
    let memory = (memory_gb * 1e9) as usize;
    let groups = (n * 8).div_ceil(memory.max(1)).clamp(1, n.div_ceil(CHUNK));
    let t = Instant::now();
    let y = from_hdf5::<f64>(input, "/x")?.sort_with(0, &SortOptions { memory })?;
    let mut store = Hdf5Store::new(output);
    store.dataset("/sorted", &y, &DatasetOptions::new().chunks([CHUNK]))?;
    let (_, stats) = store.run_with(&*sched, &dag_core::NoCallbacks)?;
    let t_sort = t.elapsed().as_secs_f64();
    let rss_sort = peak_rss();
    println!(
        "sorted {} into another file in {t_sort:.1} s ({:.0} MB/s; page cache {}dropped): {} \
         group(s) of output blocks, the input read {} times; {} tasks, scheduler peak {} held; \
         peak RSS {}",
        gb(bytes),
        bytes / t_sort * 1e-6,
        if dropped { "" } else { "NOT " },
        groups,
        if groups > 1 { groups + 2 } else { 2 },
        stats.tasks,
        gb(stats.peak_bytes as f64),
        gb(rss_sort as f64)
    );

    // 4. Check, streaming: sorted, and the same values (their sum).
    let t = Instant::now();
    let z = from_hdf5::<f64>(output, "/sorted")?;
    let ordered = z
        .slice(s![1..])?
        .greater_equal(&z.slice(s![..-1])?)?
        .all(None, false)?;
    let mut c = blockarray::Computation::new();
    let (h_ok, h_in, h_out) = (
        c.add(&ordered),
        c.add(&from_hdf5::<f64>(input, "/x")?.sum(None, false)?),
        c.add(&z.sum(None, false)?),
    );
    let mut out = c.run(&*sched)?;
    let ok = out.take(h_ok)?.into_iter().next() == Some(true);
    let (s_in, s_out) = (
        out.take(h_in)?.into_iter().next().unwrap_or(f64::NAN),
        out.take(h_out)?.into_iter().next().unwrap_or(f64::NAN),
    );
    println!(
        "check in {:.1} s: non-decreasing {ok}; sums {s_in:.6e} and {s_out:.6e}",
        t.elapsed().as_secs_f64()
    );
    println!(
        "peak RSS of the whole run: {} (memory is {} in total)",
        gb(peak_rss() as f64),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned)))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("?".to_owned(), |kb| gb(kb * 1024.0))
    );
    if !ok || (s_in - s_out).abs() > 1e-9 * s_in.abs().max(1.0) {
        return Err("the output is not the sorted input".into());
    }
    Ok(())
}
