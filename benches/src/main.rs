//! `blockarray-bench`: the blockarray side of the side-by-side workload suite.
//!
//! `cargo xtask bench` runs this binary once per workload and repetition, each time in a fresh
//! process, next to `benches/python/workloads.py` (dask.array and NumPy):
//!
//! ```text
//! blockarray-bench [--data-dir DIR] WORKLOAD        run one workload, print {"seconds": …, "check": …}
//! blockarray-bench [--data-dir DIR] --mpi N WORKLOAD the same on N MPI ranks × 1 thread (launches
//!                                                    `mpirun`; adds "ranks", "bytes_sent",
//!                                                    "messages", "values" to the line)
//! blockarray-bench [--data-dir DIR] setup WORKLOAD  create the workload's input files (untimed)
//! blockarray-bench triad      STREAM-style triad over all cores, print {"triad_gbs": …, …}
//! blockarray-bench list       the workloads, one per line: name, status, description
//! ```
//!
//! Input files (`hdf5_sum`'s HDF5 file, `zarr_sum`'s Zarr store) live in `DIR`, by default
//! `target/bench`. `setup` writes them once, for every engine (the dask and NumPy side reads
//! the same bytes), and leaves input that is already there and has the expected shape alone.
//!
//! `seconds` is measured inside the process, from before the expression is built until the
//! result is in memory (so process start-up is excluded, graph construction included); `check`
//! is a statistic of the result that every engine computes the same way (see
//! `docs/benchmarks.md`). An unknown name exits with status 2 and lists the known ones. Every
//! computation uses blockarray's default scheduler: the work-stealing pool over all cores — or,
//! with `--mpi N`, `sched-mpi`'s scheduler with one worker thread per rank, the results gathered
//! to rank 0 (which alone prints the line; the traffic is the last run's, all ranks together).

use blockarray::{BlockArray, Boundary, Computation, QuantileMethod, random::Rng, s};
use blockarray_hdf5::{DatasetOptions, dataset_info, from_hdf5, to_hdf5_with};
use blockarray_zarr::{ArrayOptions, Compressor, array_info, from_zarr, to_zarr_with};
use dag_core::{Scheduler, synthetic};
use ndarray::ArrayD;
use sched_mpi::{Mpi, MpiScheduler};
use sched_threaded::ThreadedScheduler;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The seed of every random array (other engines use other generators, so random workloads are
/// compared through statistics, not exact values).
const SEED: u64 = 42;

/// Exit status of bad usage (an unknown workload name).
const EXIT_USAGE: u8 = 2;

type BoxResult<T> = Result<T, Box<dyn Error>>;

/// What one run of a workload measured.
struct Outcome {
    /// Wall time of building and computing the expression.
    seconds: f64,
    /// A statistic of the result, compared across engines.
    check: f64,
}

/// One workload of the suite.
struct Workload {
    name: &'static str,
    about: &'static str,
    /// The workload's body; its argument is the directory of input files.
    run: fn(&Path) -> BoxResult<Outcome>,
    /// Creates the workload's input files in the given directory, if it has any; returns what
    /// it did ("created" or "present").
    setup: Option<fn(&Path) -> BoxResult<&'static str>>,
}

/// Every workload, in the order of the table in `docs/benchmarks.md`.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "ones_sum",
        about: "ones 10000x10000, chunks 100x100, sum",
        run: ones_sum,
        setup: None,
    },
    Workload {
        name: "normal_mean",
        about: "normal(10, 0.1) 20000x20000, chunks 1000x1000, mean over axis 0",
        run: normal_mean,
        setup: None,
    },
    Workload {
        name: "xxt_slice_mean",
        about: "random 10000x10000, chunks 1000x1000, (x + x.T)[::2, 5000:].mean(axis=1)",
        run: xxt_slice_mean,
        setup: None,
    },
    Workload {
        name: "fused_chain",
        about: "random 10000x10000, chunks 1000x1000, (exp(x) * x.T + 1).mean(axis=0)",
        run: fused_chain,
        setup: None,
    },
    Workload {
        name: "lazy_slice",
        about: "exp(ones 10000x10000, chunks 100x100)[1:100, 1:100]",
        run: lazy_slice,
        setup: None,
    },
    Workload {
        name: "matmul",
        about: "random 6000x6000, chunks 1000x1000, x @ x.T",
        run: matmul,
        setup: None,
    },
    Workload {
        name: "rechunk_sum",
        about: "random 10000x10000, chunks 10000x100 -> 100x10000, sum over axis 1",
        run: rechunk_sum,
        setup: None,
    },
    Workload {
        name: "task_overhead",
        about: "1,000,002 trivial tasks: a fan-in-8 tree sum over 875,000 leaves",
        run: task_overhead,
        setup: None,
    },
    Workload {
        name: "cholesky",
        about: "cholesky of an SPD 6000x6000, chunks 1000x1000",
        run: cholesky,
        setup: None,
    },
    Workload {
        name: "tsqr",
        about: "tall-skinny QR of 400000x100, chunks 20000x100",
        run: tsqr,
        setup: None,
    },
    Workload {
        name: "svd_tall",
        about: "SVD of 400000x100, chunks 20000x100",
        run: svd_tall,
        setup: None,
    },
    Workload {
        name: "lu_solve",
        about: "solve(a, b), a random 6000x6000 in chunks 1000x1000, b 6000x100",
        run: lu_solve,
        setup: None,
    },
    Workload {
        name: "topk",
        about: "the 10 largest of 10^8 values",
        run: topk,
        setup: None,
    },
    Workload {
        name: "percentile",
        about: "percentiles 5, 50, 95 of 10^8 values",
        run: percentile,
        setup: None,
    },
    Workload {
        name: "overlap_stencil",
        about: "3x3 mean filter over 8000x8000, chunks 1000x1000",
        run: overlap_stencil,
        setup: None,
    },
    Workload {
        name: "sort",
        about: "sort 10^8 random values into a new array, chunks 10^6",
        run: sort,
        setup: None,
    },
    Workload {
        name: "hdf5_sum",
        about: "sum of 2*10^8 f64 read from HDF5, chunks 10^6",
        run: hdf5_sum,
        setup: Some(hdf5_sum_setup),
    },
    Workload {
        name: "hdf5_sum_cold",
        about: "hdf5_sum with the file dropped from the page cache before each run",
        run: hdf5_sum_cold,
        setup: Some(hdf5_sum_setup),
    },
    Workload {
        name: "zarr_sum",
        about: "sum of 2*10^8 f64 read from a Zarr v3 array (zstd), chunks 10^6",
        run: zarr_sum,
        setup: Some(zarr_sum_setup),
    },
];

thread_local! {
    /// The MPI scheduler when running as a rank (`--mpi N`).
    static MPI: std::cell::RefCell<Option<MpiScheduler>> = const { std::cell::RefCell::new(None) };
}

/// Compute `x` with the default scheduler. On an MPI rank other than 0 the result is gathered
/// to rank 0 and this rank gets an empty array (it prints nothing).
fn compute<T: blockarray::Element>(x: &BlockArray<T>) -> BoxResult<ArrayD<T>> {
    let mut c = blockarray::Computation::new();
    let h = c.add(x);
    let mut results = c.run(&*blockarray::default_scheduler())?;
    if results.held() {
        Ok(results.take(h)?)
    } else {
        Ok(ArrayD::from_shape_vec(ndarray::IxDyn(&[0]), Vec::new())?)
    }
}

/// The mean of an array's elements (the check of random workloads).
fn mean(a: &ArrayD<f64>) -> f64 {
    if a.is_empty() {
        f64::NAN
    } else {
        a.sum() / a.len() as f64
    }
}

/// Time `work` (which returns the result), then derive the check from the result.
fn timed<R>(
    work: impl FnOnce() -> BoxResult<R>,
    check: impl FnOnce(&R) -> f64,
) -> BoxResult<Outcome> {
    let start = Instant::now();
    let result = work()?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Outcome {
        seconds,
        check: check(&result),
    })
}

fn ones_sum(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100])?;
            compute(&x.sum(None, false)?)
        },
        |r| r.sum(),
    )
}

fn normal_mean(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).normal::<f64>(10.0, 0.1, &[20_000, 20_000], [1000, 1000])?;
            compute(&x.mean(Some(&[0]), false)?)
        },
        mean,
    )
}

fn xxt_slice_mean(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[10_000, 10_000], [1000, 1000])?;
            let y = (&x + &x.t())?.slice(s![..;2, 5000..])?;
            compute(&y.mean(Some(&[1]), false)?)
        },
        mean,
    )
}

fn fused_chain(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[10_000, 10_000], [1000, 1000])?;
            let y = &(&x.exp() * &x.t())? + 1.0;
            compute(&y.mean(Some(&[0]), false)?)
        },
        mean,
    )
}

fn lazy_slice(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100])?;
            compute(&x.exp().slice(s![1..100, 1..100])?)
        },
        |r| r.sum(),
    )
}

fn matmul(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[6000, 6000], [1000, 1000])?;
            compute(&x.matmul(&x.t())?)
        },
        mean,
    )
}

fn rechunk_sum(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[10_000, 10_000], [10_000, 100])?;
            compute(&x.rechunk([100, 10_000])?.sum(Some(&[1]), false)?)
        },
        mean,
    )
}

/// `scipy.ndimage.uniform_filter(b, size=3, mode="reflect")` of a 2-d block: the mean of each
/// element's 3×3 neighbourhood, the edges reflected (the edge element repeated). Separable: a
/// horizontal 3-sum per row (kept for three rows at a time), then three of those rows added,
/// one output row at a time; the inner loops vectorise.
fn mean_filter_3x3(b: &ArrayD<f64>) -> Result<ArrayD<f64>, dag_core::TaskError> {
    let b = b.view().into_dimensionality::<ndarray::Ix2>()?;
    let (rows, cols) = b.dim();
    if rows == 0 || cols == 0 {
        return Ok(ArrayD::zeros(ndarray::IxDyn(&[rows, cols])));
    }
    let b = b.as_standard_layout();
    let data = b
        .as_slice()
        .ok_or("a standard-layout block is contiguous")?;
    let hsum = |r: usize, out: &mut [f64]| {
        let row = &data[r * cols..(r + 1) * cols];
        if cols == 1 {
            out[0] = 3.0 * row[0];
            return;
        }
        out[0] = row[0] + row[0] + row[1];
        for ((o, (&l, &m)), &r) in out[1..cols - 1]
            .iter_mut()
            .zip(row.iter().zip(&row[1..]))
            .zip(&row[2..])
        {
            *o = l + m + r;
        }
        out[cols - 1] = row[cols - 2] + row[cols - 1] + row[cols - 1];
    };
    let mut out = Vec::with_capacity(rows * cols);
    // Horizontal sums of rows i-1, i, i+1 (reflected at the top and bottom).
    let mut h = [vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]];
    hsum(0, &mut h[1]);
    h[0] = h[1].clone();
    hsum(1.min(rows - 1), &mut h[2]);
    for i in 0..rows {
        out.extend(
            h[0].iter()
                .zip(&h[1])
                .zip(&h[2])
                .map(|((&a, &b), &c)| (a + b + c) * (1.0 / 9.0)),
        );
        h.rotate_left(1);
        hsum((i + 2).min(rows - 1), &mut h[2]);
    }
    Ok(ArrayD::from_shape_vec(ndarray::IxDyn(&[rows, cols]), out)?)
}

fn overlap_stencil(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[8000, 8000], [1000, 1000])?;
            let y = x.map_overlap(1, Boundary::Reflect, |b: &ArrayD<f64>, _| {
                mean_filter_3x3(b)
            })?;
            compute(&y)
        },
        mean,
    )
}

fn topk(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[100_000_000], [1_000_000])?;
            compute(&x.topk(10, 0)?)
        },
        mean,
    )
}

fn percentile(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[100_000_000], [1_000_000])?;
            compute(&x.percentile([5.0, 50.0, 95.0], None, QuantileMethod::Linear, false)?)
        },
        |r| r.sum(),
    )
}

fn sort(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[100_000_000], [1_000_000])?;
            compute(&x.sort(0)?)
        },
        // The mean of every 1000th sorted value: the sorted order's quantiles, so engines with
        // different generators agree to a few standard errors.
        |r| {
            let picked: Vec<f64> = r.iter().step_by(1000).copied().collect();
            picked.iter().sum::<f64>() / picked.len().max(1) as f64
        },
    )
}

fn task_overhead(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let (graph, root) = synthetic::tree(875_000, 8);
            let out = match MPI.with(|m| m.borrow().clone()) {
                Some(s) => s.compute(&graph, &[root])?,
                None => ThreadedScheduler::new().compute(&graph, &[root])?,
            };
            let first = out.first().ok_or("the scheduler returned no output")?;
            // On MPI ranks other than 0 the total is held by rank 0.
            Ok(first.get::<u64>().copied().unwrap_or(0))
        },
        |&total| total as f64,
    )
}

/// The diagonal of a square result.
fn diagonal(a: &ArrayD<f64>) -> Vec<f64> {
    let n = a.shape().first().copied().unwrap_or(0);
    (0..n).map(|i| a[[i, i]]).collect()
}

/// The mean of some values.
fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `(x + x.T) / 2 + n·I` for `x` random `n × n` in `chunk × chunk` blocks: symmetric positive
/// definite (as in `workloads.py`'s `_spd_dask`).
fn spd(n: usize, chunk: usize) -> BoxResult<BlockArray<f64>> {
    let x = Rng::new(SEED).random::<f64>(&[n, n], [chunk, chunk])?;
    let eye = BlockArray::<f64>::eye(n, None, 0, [chunk, chunk])?;
    Ok((&((&x + &x.t())? / 2.0) + &(&eye * n as f64))?)
}

fn cholesky(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let l = blockarray_linalg::cholesky(&spd(6000, 1000)?, blockarray_linalg::Tri::Lower)?;
            compute(&l)
        },
        |l| mean_of(&diagonal(l)),
    )
}

fn tsqr(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[400_000, 100], [20_000, 100])?;
            let (q, r) = blockarray_linalg::tsqr(&x)?;
            let mut c = Computation::new();
            let (hq, hr) = (c.add(&q), c.add(&r));
            let mut out = c.run(&*blockarray::default_scheduler())?;
            if !out.held() {
                // An MPI rank other than 0: rank 0 holds the results.
                return Ok(ArrayD::zeros(ndarray::IxDyn(&[0, 0])));
            }
            let _q = out.take(hq)?;
            Ok(out.take(hr)?)
        },
        |r| mean_of(&diagonal(r).iter().map(|d| d.abs()).collect::<Vec<_>>()),
    )
}

fn svd_tall(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let x = Rng::new(SEED).random::<f64>(&[400_000, 100], [20_000, 100])?;
            let (u, s, v) = blockarray_linalg::svd(&x)?;
            let mut c = Computation::new();
            let (hu, hs, hv) = (c.add(&u), c.add(&s), c.add(&v));
            let mut out = c.run(&*blockarray::default_scheduler())?;
            if !out.held() {
                return Ok(ArrayD::zeros(ndarray::IxDyn(&[0])));
            }
            let (_u, _v) = (out.take(hu)?, out.take(hv)?);
            Ok(out.take(hs)?)
        },
        |s| s.iter().next().copied().unwrap_or(f64::NAN),
    )
}

fn lu_solve(_data: &Path) -> BoxResult<Outcome> {
    timed(
        || {
            let a = Rng::new(SEED).random::<f64>(&[6000, 6000], [1000, 1000])?;
            // Another seed: the generator is counter-based, so the same seed would give b the
            // leading values of a.
            let b = Rng::new(SEED + 1).random::<f64>(&[6000, 100], [1000, 100])?;
            let x = compute(&blockarray_linalg::solve(&a, &b)?)?;
            Ok((a, x))
        },
        // The mean of a @ x (the mean of b when x solves a x = b), after the clock stops.
        |(a, x)| {
            let product = || -> BoxResult<f64> {
                let a = compute(a)?.into_dimensionality::<ndarray::Ix2>()?;
                let x = x.clone().into_dimensionality::<ndarray::Ix2>()?;
                Ok(mean(&a.dot(&x).into_dyn()))
            };
            product().unwrap_or(f64::NAN)
        },
    )
}

/// Length of the `hdf5_sum` dataset: 2·10⁸ f64, 1.6 GB.
const HDF5_LEN: usize = 200_000_000;
/// Chunk length of the `hdf5_sum` dataset, in the file and in the array.
const HDF5_CHUNK: usize = 1_000_000;

fn hdf5_path(data: &Path) -> PathBuf {
    data.join("hdf5_sum.h5")
}

/// Write `hdf5_sum.h5`: dataset `/x`, all ones (so the sum is exact), chunks of 10⁶,
/// uncompressed. A complete file is written under a temporary name and renamed into place.
fn hdf5_sum_setup(data: &Path) -> BoxResult<&'static str> {
    let path = hdf5_path(data);
    if path.exists()
        && let Ok(info) = dataset_info(&path, "/x")
        && info.shape == [HDF5_LEN]
        && info.dtype == "float64"
        && info.chunks.as_deref() == Some(&[HDF5_CHUNK][..])
    {
        warm(&path)?;
        return Ok("present");
    }
    std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    let tmp = data.join("hdf5_sum.h5.tmp");
    let _ = std::fs::remove_file(&tmp);
    let x = BlockArray::<f64>::ones(&[HDF5_LEN], [10 * HDF5_CHUNK])?;
    to_hdf5_with(
        &tmp,
        &[("/x", &x)],
        &DatasetOptions::new().chunks([HDF5_CHUNK]),
        &*blockarray::default_scheduler(),
    )?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    warm(&path)?;
    Ok("created")
}

fn hdf5_sum(data: &Path) -> BoxResult<Outcome> {
    let path = hdf5_path(data);
    if !path.exists() {
        return Err(format!(
            "{} does not exist: run `blockarray-bench setup hdf5_sum` first",
            path.display()
        )
        .into());
    }
    timed(
        || compute(&from_hdf5::<f64>(&path, "/x")?.sum(None, false)?),
        |r| r.sum(),
    )
}

/// Length of the `zarr_sum` array: 2·10⁸ f64, 1.6 GB before compression.
const ZARR_LEN: usize = 200_000_000;
/// Chunk length of the `zarr_sum` array, in the store and in the array.
const ZARR_CHUNK: usize = 1_000_000;

/// Drop `path`'s pages from the page cache (`posix_fadvise(DONTNEED)` after an `fdatasync`,
/// no root needed), so that the next read comes from the disk.
fn evict(path: &Path) -> BoxResult<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.sync_data()?;
    // SAFETY: the descriptor is open for the duration of the call.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!("posix_fadvise({}): error {r}", path.display()).into());
    }
    Ok(())
}

/// `hdf5_sum` from the disk: the file is dropped from the page cache first (untimed).
fn hdf5_sum_cold(data: &Path) -> BoxResult<Outcome> {
    let path = hdf5_path(data);
    if path.exists() {
        evict(&path)?;
    }
    hdf5_sum(data)
}

fn zarr_path(data: &Path) -> PathBuf {
    data.join("zarr_sum.zarr")
}

/// Write `zarr_sum.zarr`: Zarr v3 array `x`, chunks of 10⁶, zstd level 1, holding random
/// integers 0–1023 as f64 (so the sum is exact in any order, and zstd has real work: about
/// 2.4× compression). Read every stored file once afterwards, so the timed runs find the page
/// cache warm.
fn zarr_sum_setup(data: &Path) -> BoxResult<&'static str> {
    let path = zarr_path(data);
    let present = array_info(&path, "x").is_ok_and(|info| {
        info.shape == [ZARR_LEN] && info.dtype == "float64" && info.chunks == [ZARR_CHUNK]
    });
    let what = if present {
        "present"
    } else {
        std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
        let x = Rng::new(SEED)
            .integers::<i64>(0, 1024, &[ZARR_LEN], [10 * ZARR_CHUNK])?
            .astype::<f64>()
            .rechunk([ZARR_CHUNK])?;
        // Replaces an incomplete or different array; a failed run leaves the old one.
        to_zarr_with(
            &path,
            &[("x", &x)],
            &ArrayOptions::new()
                .chunks([ZARR_CHUNK])
                .compressor(Compressor::Zstd(1))
                .overwrite(true),
            &*blockarray::default_scheduler(),
        )?;
        "created"
    };
    warm(&path)?;
    Ok(what)
}

/// Read `dir` once (into the page cache): every file under it, or the file itself.
fn warm(dir: &Path) -> BoxResult<()> {
    if dir.is_file() {
        std::io::copy(&mut std::fs::File::open(dir)?, &mut std::io::sink())?;
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            warm(&entry.path())?;
        } else {
            std::io::copy(
                &mut std::fs::File::open(entry.path())?,
                &mut std::io::sink(),
            )?;
        }
    }
    Ok(())
}

fn zarr_sum(data: &Path) -> BoxResult<Outcome> {
    let path = zarr_path(data);
    if !path.exists() {
        return Err(format!(
            "{} does not exist: run `blockarray-bench setup zarr_sum` first",
            path.display()
        )
        .into());
    }
    timed(
        || compute(&from_zarr::<f64>(&path, "x")?.sum(None, false)?),
        |r| r.sum(),
    )
}

/// What [`triad`] measured.
struct Triad {
    /// Best triad bandwidth, GB/s (24 bytes per element, as STREAM counts).
    gbs: f64,
    /// Seconds of the best iteration.
    seconds: f64,
    /// Bandwidth of the first writes to the freshly allocated arrays, GB/s: the price of
    /// page faults on new memory, which every engine pays when it allocates.
    first_touch_gbs: f64,
}

/// STREAM triad `a = b + s·c` over three arrays of `len` f64, split over `threads` threads,
/// best of `iterations`.
fn triad(len: usize, threads: usize, iterations: usize) -> Triad {
    let threads = threads.max(1);
    let part = len.div_ceil(threads);
    let (mut a, mut b, mut c) = (vec![0.0f64; len], vec![0.0f64; len], vec![0.0f64; len]);
    // First touch on the threads that will use the pages.
    let start = Instant::now();
    std::thread::scope(|scope| {
        for ((a, b), c) in a
            .chunks_mut(part)
            .zip(b.chunks_mut(part))
            .zip(c.chunks_mut(part))
        {
            scope.spawn(move || {
                a.fill(0.0);
                b.fill(1.0);
                c.fill(2.0);
            });
        }
    });
    let first_touch = start.elapsed().as_secs_f64();
    let scalar = std::hint::black_box(3.0f64);
    let mut best = f64::INFINITY;
    for _ in 0..iterations {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for ((a, b), c) in a.chunks_mut(part).zip(b.chunks(part)).zip(c.chunks(part)) {
                scope.spawn(move || {
                    for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                        *a = b + scalar * c;
                    }
                });
            }
        });
        best = best.min(start.elapsed().as_secs_f64());
        std::hint::black_box(&a);
    }
    let bytes = 3.0 * 8.0 * len as f64;
    Triad {
        gbs: bytes / best / 1e9,
        seconds: best,
        first_touch_gbs: bytes / first_touch / 1e9,
    }
}

/// Format a float as a JSON number (`null` when not finite).
fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".to_string()
    }
}

/// Escape a string for a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn usage() -> String {
    let mut text = String::from(
        "usage: blockarray-bench [--data-dir DIR] <workload> | setup <workload> | triad | list\n\n\
         Runs one workload with blockarray's default (threaded, all cores) scheduler and prints\n\
         {\"seconds\": ..., \"check\": ...}. Workloads:\n",
    );
    for w in WORKLOADS {
        text.push_str(&format!("  {:<16} {}\n", w.name, w.about));
    }
    text
}

/// Find a workload by name, or print the known ones.
fn find(name: &str) -> Option<&'static Workload> {
    let found = WORKLOADS.iter().find(|w| w.name == name);
    if found.is_none() {
        let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        eprintln!(
            "blockarray-bench: unknown workload {name:?}; known workloads: {}, or setup / triad / list",
            known.join(", ")
        );
    }
    found
}

/// `--mpi N WORKLOAD`, not yet under MPI: run this binary on N ranks and pass rank 0's line on.
fn launch_mpi(ranks: usize, data: &Path, name: &str) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("blockarray-bench: cannot find this program: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = sched_mpi::mpirun(ranks)
        .arg(exe)
        .arg("--data-dir")
        .arg(data)
        .args(["--mpi-rank", name])
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c.clamp(1, 255) as u8)),
        Err(e) => {
            eprintln!("blockarray-bench: cannot run mpirun: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--mpi-rank WORKLOAD`: one rank of an MPI run of the workload.
fn mpi_rank(data: &Path, name: &str) -> ExitCode {
    let mpi = match Mpi::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("blockarray-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sched = match MpiScheduler::builder()
        .threads(1)
        .predict(&[2, 4, 8, 16, 32, 64])
        .build(&mpi)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("blockarray-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    blockarray::set_default_scheduler(std::sync::Arc::new(sched.clone()));
    MPI.with(|m| *m.borrow_mut() = Some(sched.clone()));
    let Some(w) = find(name) else {
        return ExitCode::from(EXIT_USAGE);
    };
    match (w.run)(data) {
        Ok(o) => {
            let t = sched.last_run().unwrap_or_default();
            if mpi.rank() == 0 {
                // The static partition's traffic at other rank counts, as a string (the
                // harness reads flat JSON): "ranks:values:value bytes:gathered bytes:most
                // tasks on one rank" for each.
                let predicted: Vec<String> = t
                    .predicted
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}:{}:{}:{}",
                            p.ranks,
                            p.values,
                            p.bytes,
                            p.gathered_bytes,
                            p.tasks.iter().max().unwrap_or(&0)
                        )
                    })
                    .collect();
                println!(
                    "{{\"seconds\": {}, \"check\": {}, \"ranks\": {}, \"bytes_sent\": {}, \"messages\": {}, \"values\": {}, \"value_bytes\": {}, \"tasks\": {}, \"predicted\": \"{}\"}}",
                    json_num(o.seconds),
                    json_num(o.check),
                    mpi.size(),
                    t.total_bytes(),
                    t.total_messages(),
                    t.values.iter().sum::<usize>(),
                    t.value_bytes.iter().sum::<usize>(),
                    t.tasks.iter().sum::<usize>(),
                    predicted.join(" ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blockarray-bench: rank {}: {name} failed: {e}", mpi.rank());
            // The other ranks may wait for this one.
            mpi.abort(1)
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut data = PathBuf::from("target").join("bench");
    if let Some(i) = args.iter().position(|a| a == "--data-dir") {
        let Some(dir) = args.get(i + 1) else {
            eprintln!(
                "blockarray-bench: --data-dir needs a directory\n\n{}",
                usage()
            );
            return ExitCode::from(EXIT_USAGE);
        };
        data = PathBuf::from(dir);
        args.drain(i..i + 2);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--mpi", n, name] => match n.parse::<usize>() {
            Ok(ranks) if ranks > 0 => launch_mpi(ranks, &data, name),
            _ => {
                eprintln!("blockarray-bench: --mpi needs a number of ranks, got {n:?}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        ["--mpi-rank", name] => mpi_rank(&data, name),
        ["-h" | "--help" | "help"] => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        ["list"] => {
            for w in WORKLOADS {
                println!("{}\tready\t{}", w.name, w.about);
            }
            ExitCode::SUCCESS
        }
        ["triad"] => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            // 3 arrays of 256 MiB: far beyond any cache.
            let len = 256 * 1024 * 1024 / 8;
            let t = triad(len, threads, 10);
            println!(
                "{{\"triad_gbs\": {}, \"seconds\": {}, \"first_touch_gbs\": {}, \"threads\": {threads}, \"array_mib\": 256}}",
                json_num(t.gbs),
                json_num(t.seconds),
                json_num(t.first_touch_gbs)
            );
            ExitCode::SUCCESS
        }
        ["setup", name] => {
            let Some(w) = find(name) else {
                return ExitCode::from(EXIT_USAGE);
            };
            match w
                .setup
                .map_or(Ok("nothing to set up"), |setup| setup(&data))
            {
                Ok(status) => {
                    println!("{{\"setup\": {}}}", json_str(status));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("blockarray-bench: setting up {name} failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [name] => {
            let Some(w) = find(name) else {
                return ExitCode::from(EXIT_USAGE);
            };
            match (w.run)(&data) {
                Ok(o) => {
                    println!(
                        "{{\"seconds\": {}, \"check\": {}}}",
                        json_num(o.seconds),
                        json_num(o.check)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("blockarray-bench: {name} failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
