//! The seed documents' first example: the sum of a large on-disk dataset, first as the
//! sequential blocked loop one writes by hand with h5py,
//!
//! ```python
//! dset = h5py.File('myfile.hdf5')['/x']
//! total = 0
//! for i in range(0, len(dset), 1_000_000):
//!     total += dset[i:i + 1_000_000].sum()
//! ```
//!
//! then as the parallel blocked algorithm, `from_hdf5(...).sum()`. Same answer (up to the
//! order of floating-point additions), timings printed.
//!
//! `cargo run --release -p blockarray-hdf5 --example blocked_sum [-- --n 20000000 --chunk 1000000]`

mod common;

use blockarray::random::Rng;
use blockarray_hdf5::{DatasetOptions, from_hdf5, to_hdf5_with, with_hdf5_lock};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = common::arg("--n", 20_000_000);
    let chunk = common::arg("--chunk", 1_000_000).max(1);
    let path = std::env::temp_dir().join(format!("blocked-sum-{}.h5", std::process::id()));

    // A dataset of n normal values, compressed (deflate 1 + shuffle), in chunks of `chunk`.
    let t = Instant::now();
    let x = Rng::new(2015).normal::<f64>(1.0, 1.0, &[n], [chunk])?;
    to_hdf5_with(
        &path,
        &[("/x", &x)],
        &DatasetOptions::new().deflate(1).shuffle(true),
        &*blockarray::default_scheduler(),
    )?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "wrote {n} float64 ({:.0} MB, {:.0} MB compressed) in {:.2} s",
        n as f64 * 8e-6,
        size as f64 * 1e-6,
        t.elapsed().as_secs_f64()
    );

    // Sequential: read block after block, sum each, add up (what h5py code does).
    let t = Instant::now();
    let sequential = with_hdf5_lock(|| -> hdf5::Result<f64> {
        let f = hdf5::File::open(&path)?;
        let dset = f.dataset("/x")?;
        let mut total = 0.0;
        let mut i = 0;
        while i < n {
            let block = dset.read_slice_1d::<f64, _>(i..(i + chunk).min(n))?;
            total += block.sum();
            i += chunk;
        }
        Ok(total)
    })?;
    let t_seq = t.elapsed().as_secs_f64();

    // Parallel: the same blocks as tasks; chunks inflate on every core.
    let t = Instant::now();
    let y = from_hdf5::<f64>(&path, "/x")?;
    let parallel = y
        .sum(None, false)?
        .compute()?
        .into_iter()
        .next()
        .unwrap_or(f64::NAN);
    let t_par = t.elapsed().as_secs_f64();

    println!("sequential blocked loop: {sequential:.6}  in {t_seq:.3} s");
    println!("blockarray sum:          {parallel:.6}  in {t_par:.3} s");
    let rel = (sequential - parallel).abs() / sequential.abs();
    println!(
        "relative difference {rel:.1e} (summation order); speedup {:.2}× on {} cores",
        t_seq / t_par,
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    std::fs::remove_file(&path)?;
    if rel > 1e-9 {
        return Err(format!("the sums differ: {sequential} vs {parallel}").into());
    }
    Ok(())
}
