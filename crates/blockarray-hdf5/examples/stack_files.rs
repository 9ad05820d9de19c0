//! The seed documents' second example: one dataset from many files stacked into one array,
//!
//! ```python
//! filenames = sorted(glob('2015-*-*.hdf5'))
//! dsets = [h5py.File(fn)['/data'] for fn in filenames]
//! arrays = [da.from_array(dset, chunks=(250, 250)) for dset in dsets]
//! x = da.stack(arrays, axis=0)
//! x.mean(axis=0)
//! ```
//!
//! Here 31 daily files of a 1000 × 1000 field are written, found with a glob, stacked along a
//! new time axis, and reduced to the monthly mean, a daily area mean and one pixel's series;
//! each checked against the same computation in memory.
//!
//! `cargo run --release -p blockarray-hdf5 --example stack_files [-- --days 31 --side 1000]`

mod common;

use blockarray::random::Rng;
use blockarray::{BlockArray, Computation, s};
use blockarray_hdf5::{DatasetOptions, ReadOptions, glob_files, stack_hdf5, to_hdf5_with};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let days = common::arg("--days", 31).max(1);
    let side = common::arg("--side", 1000).max(1);
    let dir = std::env::temp_dir().join(format!("stack-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // One file per day, each with /data: a smooth field that warms day by day, plus noise.
    let t = Instant::now();
    let opts = DatasetOptions::new().deflate(1).shuffle(true);
    let sched = blockarray::default_scheduler();
    let mut fields = Vec::new();
    for day in 0..days {
        let base = BlockArray::<f64>::from_fn(&[side, side], [250, 250], "field", |i| {
            15.0 + 5.0 * ((i[0] as f64 / 97.0).sin() + (i[1] as f64 / 61.0).cos())
        })?;
        let noise = Rng::new(day as u64).normal::<f64>(0.0, 0.5, &[side, side], [250, 250])?;
        let field = (&(&base + &noise)? + 0.1 * day as f64).persist()?;
        let path = dir.join(format!("2015-01-{:02}.hdf5", day + 1));
        to_hdf5_with(&path, &[("/data", &field)], &opts, &*sched)?;
        fields.push(field);
    }
    println!(
        "wrote {days} files of {side} × {side} float64 in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Read them back as one lazy array.
    let t = Instant::now();
    let files = glob_files(&format!("{}/2015-*-*.hdf5", dir.display()))?;
    let x = stack_hdf5::<f64, _>(&files, "/data", 0, &ReadOptions::new().chunks([250, 250]))?;
    println!("{x}");
    let mut c = Computation::new();
    let monthly = c.add(&x.mean(Some(&[0]), false)?);
    let daily = c.add(&x.mean(Some(&[1, 2]), false)?);
    let pixel = c.add(&x.slice(s![.., 500.min(side - 1), 500.min(side - 1)])?);
    let mut out = c.run(&*sched)?;
    let (monthly, daily, pixel) = (out.take(monthly)?, out.take(daily)?, out.take(pixel)?);
    println!(
        "monthly mean, daily area means and one pixel's series from {} files in {:.2} s",
        files.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "daily area means: {:.3} … {:.3}; pixel series starts {:.3}, {:.3}",
        daily[[0]],
        daily[[days - 1]],
        pixel[[0]],
        pixel[[1.min(days - 1)]]
    );

    // The same in memory.
    let refs: Vec<&BlockArray<f64>> = fields.iter().collect();
    let mem = blockarray::stack(&refs, 0)?.compute()?;
    let want = mem.mean_axis(ndarray::Axis(0)).expect("days > 0");
    let err = (&monthly - &want)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    println!("largest difference from the in-memory monthly mean: {err:.1e}");
    std::fs::remove_dir_all(&dir)?;
    if err > 1e-9 {
        return Err("the file-backed mean differs from the in-memory one".into());
    }
    Ok(())
}
