//! Direct chunk I/O against HDF5's own filter path, on a deflate + shuffle compressed dataset.
//!
//! With one lock around the HDF5 library (h5py, and so dask), every chunk is decompressed
//! inside the library, one at a time, however many threads ask. `ChunkIo::Auto` reads the
//! compressed bytes under the lock (`H5Dread_chunk`) and inflates them outside it, on every
//! core; writes compress outside the lock and store with `H5Dwrite_chunk`. This example times
//! both paths for reading (every chunk read and summed with ndarray's vectorised sum, so the
//! time is the read path's) and for writing, with the threaded scheduler, and checks that
//! they agree.
//!
//! `cargo run --release -p blockarray-hdf5 --example direct_chunks [-- --mb 256 --level 4 --repeat 3]`

mod common;

use blockarray::{BlockArray, ChunkSpec};
use blockarray_hdf5::{
    ChunkIo, DatasetOptions, ReadOptions, dataset_info, from_hdf5_with, to_hdf5_with,
};
use sched_threaded::ThreadedScheduler;
use std::time::Instant;

/// Measurement-like data: a smooth signal plus noise, rounded to 0.01 (compresses about 3×
/// with shuffle + deflate, like many real instrument datasets).
fn signal(i: usize) -> f64 {
    let h = (i as u64 ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 40;
    let noise = h as f64 / (1u64 << 24) as f64 - 0.5;
    ((((i as f64) * 1e-4).sin() * 50.0 + noise * 4.0) * 100.0).round() / 100.0
}

fn best<F: FnMut() -> Result<f64, Box<dyn std::error::Error>>>(
    repeat: usize,
    mut f: F,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let mut best = f64::INFINITY;
    let mut value = 0.0;
    for _ in 0..repeat {
        let t = Instant::now();
        value = f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((best, value))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb = common::arg("--mb", 256.0);
    let level = common::arg("--level", 4.0) as u8;
    let repeat = (common::arg("--repeat", 3.0) as usize).max(1);
    let n = (mb * 1e6 / 8.0) as usize;
    let chunk = 1 << 18; // 2 MiB chunks
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    let sched = ThreadedScheduler::new();
    let dir = std::env::temp_dir().join(format!("direct-chunks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let x = BlockArray::<f64>::from_fn(&[n], [chunk], "signal", |i| signal(i[0]))?.persist()?;
    let opts = DatasetOptions::new().deflate(level).shuffle(true);

    // Writing: HDF5 compresses under the lock vs we compress outside it.
    let mut write = Vec::new();
    for io in [ChunkIo::Library, ChunkIo::Auto] {
        let path = dir.join(format!("{io:?}.h5"));
        let (t, _) = best(repeat, || {
            let _ = std::fs::remove_file(&path);
            to_hdf5_with(&path, &[("/x", &x)], &opts.clone().io(io), &sched)?;
            Ok(0.0)
        })?;
        write.push(t);
    }
    let path = dir.join("Auto.h5");
    let info = dataset_info(&path, "/x")?;
    println!(
        "dataset: {n} float64 = {:.0} MB in {} chunks of {chunk}, filters {:?}, {:.0} MB stored ({:.2}× smaller)",
        n as f64 * 8e-6,
        n.div_ceil(chunk),
        info.filters,
        info.storage_bytes as f64 * 1e-6,
        n as f64 * 8.0 / info.storage_bytes as f64
    );

    // Reading: every chunk read and summed (ndarray's vectorised sum, so the time is the read
    // path's); page cache warm, so this measures decompression, not the disk.
    let read = |io: ChunkIo, s: &dyn dag_core::Scheduler| {
        best(repeat, || {
            let y = from_hdf5_with::<f64>(&path, "/x", &ReadOptions::new().io(io))?;
            let per_block = ChunkSpec::Explicit(vec![vec![1; y.numblocks()[0]]]);
            let sums = y.map_blocks::<f64, _>("block-sum", Some(per_block), |b, _| {
                Ok(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[1]), b.sum()))
            })?;
            Ok(sums.compute_with(s)?.sum())
        })
    };
    let (t_lib, s_lib) = read(ChunkIo::Library, &sched)?;
    let (t_dir, s_dir) = read(ChunkIo::Auto, &sched)?;
    let (t_dir1, s_dir1) = read(ChunkIo::Auto, &sched_sync::SyncScheduler::new())?;
    let gb = n as f64 * 8e-9;
    println!("read every chunk, {threads} threads (best of {repeat}):");
    println!(
        "  library path (H5Dread, inflate under the lock): {t_lib:.3} s  {:.2} GB/s",
        gb / t_lib
    );
    println!(
        "  direct chunk read, parallel inflate:            {t_dir:.3} s  {:.2} GB/s",
        gb / t_dir
    );
    println!(
        "  direct chunk read, 1 thread (sync scheduler):   {t_dir1:.3} s  {:.2} GB/s",
        gb / t_dir1
    );
    println!("  speedup of the direct path: {:.2}×", t_lib / t_dir);
    println!("write, {threads} threads (best of {repeat}):");
    println!(
        "  library path (H5Dwrite, deflate under the lock): {:.3} s",
        write[0]
    );
    println!(
        "  direct chunk write, parallel deflate:            {:.3} s",
        write[1]
    );
    println!("  speedup of the direct path: {:.2}×", write[0] / write[1]);
    let lib_file = from_hdf5_with::<f64>(dir.join("Library.h5"), "/x", &ReadOptions::new())?;
    let same = (&lib_file - &from_hdf5_with::<f64>(&path, "/x", &ReadOptions::new())?)?
        .abs()
        .max(None, false)?
        .compute()?
        .into_iter()
        .next()
        .unwrap_or(f64::NAN);
    std::fs::remove_dir_all(&dir)?;
    if s_lib != s_dir || s_dir != s_dir1 || same != 0.0 {
        return Err(format!(
            "paths disagree: sums {s_lib} {s_dir} {s_dir1}, files differ by {same}"
        )
        .into());
    }
    println!("both paths read and write the same values (sum {s_dir:.2})");
    Ok(())
}
