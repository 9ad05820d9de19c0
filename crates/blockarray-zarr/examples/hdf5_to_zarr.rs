//! Convert an HDF5 file's datasets to Zarr in one computation.
//!
//! The dask recipe is `da.to_zarr(da.from_array(h5py.File(f)['/t']), 'out.zarr')`, once per
//! dataset, each its own pass over the file. Here both datasets of a weather-like HDF5 file,
//! plus an anomaly derived from one of them, go into one Zarr v3 store in **one** computation:
//! each HDF5 chunk is read (and inflated) once, even though two outputs need it, and the Zarr
//! arrays appear only when everything was written.
//!
//! `cargo run --release -p blockarray-zarr --example hdf5_to_zarr [-- --days 60 --side 500]`

mod common;

use blockarray::random::Rng;
use blockarray::{BlockArray, s};
use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5};
use blockarray_zarr::{ArrayOptions, Compressor, ZarrStore, array_info, from_zarr};
use std::path::Path;
use std::time::Instant;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(|e| e.ok())
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                _ => e.metadata().map_or(0, |m| m.len()),
            })
            .sum()
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let days = common::arg("--days", 60).max(1);
    let side = common::arg("--side", 500).max(1);
    let work = std::env::temp_dir().join(format!("hdf5-to-zarr-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run(&work, days, side);
    std::fs::remove_dir_all(&work)?;
    result
}

fn run(work: &Path, days: usize, side: usize) -> Result<(), Box<dyn std::error::Error>> {
    let h5 = work.join("weather.h5");
    let zarr = work.join("weather.zarr");
    let sched = blockarray::default_scheduler();

    // An HDF5 file as a user would have it: /temperature (day, y, x) and /pressure, deflated.
    let t = Instant::now();
    let field = BlockArray::<f64>::from_fn(&[days, side, side], [10, 250, 250], "field", |i| {
        15.0 + 8.0 * (i[0] as f64 / 58.0).sin()
            + 3.0 * ((i[1] as f64 / 37.0).cos() + (i[2] as f64 / 53.0).sin())
    })?;
    let noise = Rng::new(7).normal::<f64>(0.0, 0.3, &[days, side, side], [10, 250, 250])?;
    let temperature = (&field + &noise)?;
    let pressure = Rng::new(8).normal::<f32>(1013.0, 6.0, &[days, side, side], [10, 250, 250])?;
    let mut hstore = Hdf5Store::new(&h5);
    let deflate = DatasetOptions::new().deflate(1).shuffle(true);
    hstore
        .dataset("/temperature", &temperature, &deflate)?
        .dataset("/pressure", &pressure, &deflate)?;
    hstore.run()?;
    println!(
        "HDF5 file with /temperature (float64) and /pressure (float32), {days} × {side} × {side}: \
         {:.0} MB in {:.2} s",
        std::fs::metadata(&h5)?.len() as f64 * 1e-6,
        t.elapsed().as_secs_f64()
    );

    // The conversion: three Zarr arrays from one computation.
    let t = Instant::now();
    let temp = from_hdf5::<f64>(&h5, "/temperature")?;
    let pres = from_hdf5::<f32>(&h5, "/pressure")?;
    let anomaly = (&temp - &temp.mean(Some(&[0]), true)?)?;
    let opts = ArrayOptions::new()
        .compressor(Compressor::Zstd(3))
        .dimension_names(["day", "y", "x"]);
    let mut store = ZarrStore::new(&zarr);
    store
        .array("temperature", &temp, &opts)?
        .array("pressure", &pres, &opts)?
        .array(
            "derived/temperature_anomaly",
            // Sharded: 10 × 250 × 250 chunks, one file per 10 × 500 × 500 shard. A shard is
            // written whole by one task, so the blocks must be whole shards: storing the
            // 250 × 250 blocks would be refused, naming this rechunk.
            &anomaly.rechunk(vec![10, 500, 500])?,
            &opts.clone().chunks([10, 250, 250]).shards([10, 500, 500]),
        )?;
    let (_, stats) = store.run_with(&*sched, &dag_core::NoCallbacks)?;
    println!(
        "converted to {} ({:.0} MB) in {:.2} s: {} tasks, scheduler peak {:.0} MB held",
        zarr.display(),
        dir_bytes(&zarr) as f64 * 1e-6,
        t.elapsed().as_secs_f64(),
        stats.tasks,
        stats.peak_bytes as f64 * 1e-6
    );
    for name in ["temperature", "pressure", "derived/temperature_anomaly"] {
        let info = array_info(&zarr, name)?;
        println!(
            "  {name}: {} {:?}, chunks {:?}{}, codecs {}",
            info.dtype,
            info.shape,
            info.chunks,
            info.inner_chunks
                .map_or(String::new(), |c| format!(" (inner {c:?})")),
            info.codecs.join(" → ")
        );
    }

    // Check: the Zarr arrays hold exactly what the HDF5 file does.
    let t_back = from_zarr::<f64>(&zarr, "temperature")?.compute()?;
    let p_back = from_zarr::<f32>(&zarr, "pressure")?.compute()?;
    let a_back = from_zarr::<f64>(&zarr, "derived/temperature_anomaly")?;
    let same = t_back == temp.compute()? && p_back == pres.compute()?;
    let mean_anomaly = a_back
        .mean(None, false)?
        .compute()?
        .into_iter()
        .next()
        .unwrap_or(f64::NAN);
    let corner = a_back.slice(s![.., 0, 0])?.compute()?;
    println!(
        "round trip exact: {same}; mean anomaly {mean_anomaly:.1e} (≈ 0); anomaly at (·, 0, 0) \
         starts {:.3}, {:.3}",
        corner[[0]],
        corner[[1.min(days - 1)]]
    );
    if !same || mean_anomaly.abs() > 1e-9 {
        return Err("the Zarr arrays differ from the HDF5 datasets".into());
    }
    Ok(())
}
