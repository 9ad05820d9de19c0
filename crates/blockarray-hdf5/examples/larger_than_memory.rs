//! Larger than memory: a dataset bigger than this machine's RAM, written block by block and
//! then reduced — sum, mean and standard deviation in one computation — streaming from disk
//! with a small, fixed amount of memory.
//!
//! 1. Checks free disk space (statvfs) and stops with a message if the file would not fit
//!    while leaving `--reserve-gb` free.
//! 2. Writes `--gb` GB of normally distributed float64 (mean 3, std 2) with blockarray itself,
//!    one 32 MiB chunk per task.
//! 3. Measures the disk's raw sequential read speed on the file (16 MiB reads, after dropping
//!    the page cache when running as root; otherwise the number includes whatever is cached).
//! 4. Drops the cache again and computes sum, mean and std in one computation, reading each
//!    chunk once; reports time, throughput against the raw read speed, and peak RSS
//!    (getrusage).
//! 5. Deletes the file (unless `--keep`).
//!
//! `cargo run --release -p blockarray-hdf5 --example larger_than_memory -- --gb 32`
//! (default 32 GB = 4·10⁹ float64; `--dir D` picks where the file goes, default the temporary
//! directory).

mod common;

/// Freed 32 MiB chunk buffers serve the next chunk instead of being mapped afresh (see
/// `dag_core::BlockCache`).
#[global_allocator]
static ALLOC: dag_core::BlockCache = dag_core::BlockCache::new();

use blockarray::random::Rng;
use blockarray::{Computation, s};
use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5};
use dag_core::ProgressBar;
use std::io::Read;
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

/// Read the whole file sequentially with large reads; bytes per second.
fn raw_read_speed(path: &Path) -> std::io::Result<f64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 16 << 20];
    let t = Instant::now();
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(total as f64 / t.elapsed().as_secs_f64())
}

fn gb(bytes: f64) -> String {
    format!("{:.2} GB", bytes * 1e-9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size_gb = common::arg("--gb", 32.0);
    let reserve = common::arg("--reserve-gb", 20.0) * 1e9;
    let keep = std::env::args().any(|a| a == "--keep");
    let dir = common::value("--dir").map_or_else(std::env::temp_dir, PathBuf::from);
    let n = ((size_gb * 1e9 / 8.0) as usize).max(1);
    let bytes = n as f64 * 8.0;
    let path = dir.join(format!("larger-than-memory-{}.h5", std::process::id()));

    // 1. Room on disk?
    let free = free_bytes(&dir).ok_or("cannot query free disk space")? as f64;
    println!(
        "dataset: {n} float64 = {}; free on {}: {}; reserve kept free: {}",
        gb(bytes),
        dir.display(),
        gb(free),
        gb(reserve)
    );
    if free < bytes * 1.01 + reserve {
        println!(
            "not enough free disk space: need {} plus {} reserve, have {}. Run with a smaller \
             --gb (or --reserve-gb, or --dir elsewhere).",
            gb(bytes * 1.01),
            gb(reserve),
            gb(free)
        );
        return Ok(());
    }

    let result = run(&path, n, bytes);
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn run(path: &Path, n: usize, bytes: f64) -> Result<(), Box<dyn std::error::Error>> {
    let sched = blockarray::default_scheduler();

    // 2. Write, block by block, with blockarray.
    let t = Instant::now();
    let x = Rng::new(4).normal::<f64>(3.0, 2.0, &[n], [CHUNK])?;
    let mut store = Hdf5Store::new(path);
    store.dataset("/x", &x, &DatasetOptions::new())?;
    let (_, wstats) = store.run_with(&*sched, &ProgressBar::new())?;
    let t_write = t.elapsed().as_secs_f64();
    let rss_write = peak_rss();
    println!(
        "wrote {} in {t_write:.1} s ({:.2} GB/s, {} tasks); peak RSS so far {}",
        gb(bytes),
        bytes * 1e-9 / t_write,
        wstats.tasks,
        gb(rss_write as f64)
    );

    // 3. The disk's raw sequential read speed, on the same file.
    let dropped = drop_caches();
    let raw = raw_read_speed(path)?;
    println!(
        "raw sequential read (16 MiB reads{}): {:.2} GB/s",
        if dropped {
            ", page cache dropped"
        } else {
            ", page cache NOT dropped (not root): may include cached pages"
        },
        raw * 1e-9
    );

    // 4. sum, mean, std in one computation.
    drop_caches();
    let t = Instant::now();
    let y = from_hdf5::<f64>(path, "/x")?;
    let mut c = Computation::new();
    let hs = c.add(&y.sum(None, false)?);
    let hm = c.add(&y.mean(None, false)?);
    let hd = c.add(&y.std(None, 0.0, false)?);
    let head = c.add(&y.slice(s![..3])?);
    let (mut out, stats) = c.run_with(&*sched, &ProgressBar::new())?;
    let t_stats = t.elapsed().as_secs_f64();
    let one = |a: ndarray::ArrayD<f64>| a.into_iter().next().unwrap_or(f64::NAN);
    let (sum, mean, std) = (one(out.take(hs)?), one(out.take(hm)?), one(out.take(hd)?));
    let head = out.take(head)?;
    let rss = peak_rss();
    println!("sum  = {sum:.6e}\nmean = {mean:.6} (expect ≈ 3)\nstd  = {std:.6} (expect ≈ 2)");
    println!("first values: {head}");
    println!(
        "sum, mean, std over {} in {t_stats:.1} s: {:.2} GB/s = {:.0}% of the raw read speed; \
         {} tasks, scheduler peak {} held",
        gb(bytes),
        bytes * 1e-9 / t_stats,
        100.0 * bytes / t_stats / raw,
        stats.tasks,
        gb(stats.peak_bytes as f64)
    );
    println!(
        "peak RSS of the whole run: {} (memory is {} in total)",
        gb(rss as f64),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l
                .split_whitespace()
                .nth(1)
                .unwrap_or("?")
                .to_owned()))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or("?".to_owned(), |kb| gb(kb * 1024.0))
    );
    let ok_stats = (mean - 3.0).abs() < 0.01 && (std - 2.0).abs() < 0.01;
    let ok_sum = (sum - mean * n as f64).abs() <= 1e-9 * sum.abs().max(1.0);
    if !(ok_stats && ok_sum) {
        return Err(format!("unexpected statistics: sum {sum}, mean {mean}, std {std}").into());
    }
    if rss > 1_500_000_000 {
        return Err(format!("peak RSS {} is over 1.5 GB", gb(rss as f64)).into());
    }
    Ok(())
}
