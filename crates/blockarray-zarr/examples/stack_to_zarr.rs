//! The seed documents' second example — one dataset from many files stacked into one array —
//! written out as **one Zarr array**:
//!
//! ```python
//! filenames = sorted(glob('2015-*-*.hdf5'))
//! dsets = [h5py.File(fn)['/data'] for fn in filenames]
//! arrays = [da.from_array(dset, chunks=(250, 250)) for dset in dsets]
//! x = da.stack(arrays, axis=0)
//! x.to_zarr('2015-01.zarr')
//! ```
//!
//! Here 31 daily HDF5 files of a 1000 × 1000 field are written, found with a glob, stacked
//! along a new time axis and stored as one (31, 1000, 1000) Zarr array in (31, 250, 250)
//! chunks — each chunk a pixel block's whole month, so a time series reads one chunk — while
//! the same computation also takes the monthly mean. The Zarr array is then read back and
//! checked against the files, and the monthly mean against the one computed in memory.
//!
//! `cargo run --release -p blockarray-zarr --example stack_to_zarr [-- --days 31 --side 1000]`

mod common;

use blockarray::random::Rng;
use blockarray::{BlockArray, s};
use blockarray_hdf5::{DatasetOptions, ReadOptions, glob_files, stack_hdf5, to_hdf5_with};
use blockarray_zarr::{ArrayOptions, ZarrStore, from_zarr};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let days = common::arg("--days", 31).max(1);
    let side = common::arg("--side", 1000).max(1);
    let dir = std::env::temp_dir().join(format!("stack-to-zarr-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir, days, side);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn run(dir: &Path, days: usize, side: usize) -> Result<(), Box<dyn std::error::Error>> {
    let sched = blockarray::default_scheduler();

    // One HDF5 file per day, each with /data.
    let t = Instant::now();
    let mut fields = Vec::new();
    for day in 0..days {
        let base = BlockArray::<f64>::from_fn(&[side, side], [250, 250], "field", |i| {
            15.0 + 5.0 * ((i[0] as f64 / 97.0).sin() + (i[1] as f64 / 61.0).cos())
        })?;
        let noise = Rng::new(day as u64).normal::<f64>(0.0, 0.5, &[side, side], [250, 250])?;
        let field = (&(&base + &noise)? + 0.1 * day as f64).persist()?;
        let path = dir.join(format!("2015-01-{:02}.hdf5", day + 1));
        to_hdf5_with(
            &path,
            &[("/data", &field)],
            &DatasetOptions::new().deflate(1),
            &*sched,
        )?;
        fields.push(field);
    }
    println!(
        "wrote {days} HDF5 files of {side} × {side} float64 in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // Stack them lazily and store as one Zarr array, with the monthly mean in the same run.
    let t = Instant::now();
    let files = glob_files(&format!("{}/2015-*-*.hdf5", dir.display()))?;
    let x = stack_hdf5::<f64, _>(&files, "/data", 0, &ReadOptions::new().chunks([250, 250]))?;
    // Blocks of the whole month per pixel block: the Zarr chunks, one task each.
    let x = x.rechunk(vec![days, 250, 250])?;
    println!("{x}");
    let zarr = dir.join("2015-01.zarr");
    let mut store = ZarrStore::new(&zarr);
    store.array(
        "data",
        &x,
        &ArrayOptions::new().dimension_names(["day", "y", "x"]),
    )?;
    let monthly = store.computation().add(&x.mean(Some(&[0]), false)?);
    let mut out = store.run()?;
    let monthly = out.take(monthly)?;
    println!(
        "stored {} files as one Zarr array (and took the monthly mean) in {:.2} s",
        files.len(),
        t.elapsed().as_secs_f64()
    );

    // Read back: a pixel's series is one chunk.
    let y = from_zarr::<f64>(&zarr, "data")?;
    let p = 500.min(side - 1);
    let series = y.slice(s![.., p, p])?.compute()?;
    println!(
        "{y}\npixel ({p}, {p}) over the month: {:.3}, {:.3}, … {:.3}",
        series[[0]],
        series[[1.min(days - 1)]],
        series[[days - 1]]
    );

    // Checks: the Zarr array is the files, and the mean is the in-memory mean.
    let refs: Vec<&BlockArray<f64>> = fields.iter().collect();
    let mem = blockarray::stack(&refs, 0)?.compute()?;
    let same = y.compute()? == mem;
    let want = mem.mean_axis(ndarray::Axis(0)).expect("days > 0");
    let err = (&monthly - &want)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    println!(
        "Zarr array equals the stacked files: {same}; largest difference from the in-memory \
         monthly mean: {err:.1e}"
    );
    if !same || err > 1e-9 {
        return Err("the Zarr array differs from the files it was made from".into());
    }
    Ok(())
}
