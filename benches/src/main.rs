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
//! Input files (only `hdf5_sum` has one) live in `DIR`, by default `target/bench`. `setup`
//! writes them once, for every engine (the dask and NumPy side reads the same file), and
//! leaves a file that is already there and has the expected shape alone.
//!
//! `seconds` is measured inside the process, from before the expression is built until the
//! result is in memory (so process start-up is excluded, graph construction included); `check`
//! is a statistic of the result that every engine computes the same way (see
//! `docs/benchmarks.md`). A workload whose blockarray feature does not exist yet prints
//! `{"missing": "…"}` and exits with status 3; an unknown name exits with status 2 and lists the
//! known ones. Every computation uses blockarray's default scheduler: the work-stealing pool over
//! all cores — or, with `--mpi N`, `sched-mpi`'s scheduler with one worker thread per rank, the
//! results gathered to rank 0 (which alone prints the line; the traffic is the last run's,
//! all ranks together).

use blockarray::{BlockArray, random::Rng, s};
use blockarray_hdf5::{DatasetOptions, dataset_info, from_hdf5, to_hdf5_with};
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

/// Exit status of a workload whose feature blockarray does not have yet.
const EXIT_MISSING: u8 = 3;
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

/// Whether blockarray can run a workload yet.
enum Status {
    /// The workload's body; its argument is the directory of input files.
    Ready(fn(&Path) -> BoxResult<Outcome>),
    /// The feature it needs does not exist yet; the text names it.
    Missing(&'static str),
}

/// One workload of the suite.
struct Workload {
    name: &'static str,
    about: &'static str,
    status: Status,
    /// Creates the workload's input files in the given directory, if it has any; returns what
    /// it did ("created" or "present").
    setup: Option<fn(&Path) -> BoxResult<&'static str>>,
}

/// Every workload, in the order of the table in `docs/benchmarks.md`.
const WORKLOADS: &[Workload] = &[
    Workload {
        name: "ones_sum",
        about: "ones 10000x10000, chunks 100x100, sum",
        status: Status::Ready(ones_sum),
        setup: None,
    },
    Workload {
        name: "normal_mean",
        about: "normal(10, 0.1) 20000x20000, chunks 1000x1000, mean over axis 0",
        status: Status::Ready(normal_mean),
        setup: None,
    },
    Workload {
        name: "xxt_slice_mean",
        about: "random 10000x10000, chunks 1000x1000, (x + x.T)[::2, 5000:].mean(axis=1)",
        status: Status::Ready(xxt_slice_mean),
        setup: None,
    },
    Workload {
        name: "lazy_slice",
        about: "exp(ones 10000x10000, chunks 100x100)[1:100, 1:100]",
        status: Status::Ready(lazy_slice),
        setup: None,
    },
    Workload {
        name: "matmul",
        about: "random 6000x6000, chunks 1000x1000, x @ x.T",
        status: Status::Ready(matmul),
        setup: None,
    },
    Workload {
        name: "rechunk_sum",
        about: "random 10000x10000, chunks 10000x100 -> 100x10000, sum over axis 1",
        status: Status::Ready(rechunk_sum),
        setup: None,
    },
    Workload {
        name: "task_overhead",
        about: "1,000,002 trivial tasks: a fan-in-8 tree sum over 875,000 leaves",
        status: Status::Ready(task_overhead),
        setup: None,
    },
    Workload {
        name: "cholesky",
        about: "cholesky of an SPD 6000x6000, chunks 1000x1000",
        status: Status::Missing("blockarray has no linalg.cholesky yet (blockarray-linalg)"),
        setup: None,
    },
    Workload {
        name: "tsqr",
        about: "tall-skinny QR of 400000x100, chunks 20000x100",
        status: Status::Missing("blockarray has no linalg.tsqr yet (blockarray-linalg)"),
        setup: None,
    },
    Workload {
        name: "svd_tall",
        about: "SVD of 400000x100, chunks 20000x100",
        status: Status::Missing("blockarray has no linalg.svd yet (blockarray-linalg)"),
        setup: None,
    },
    Workload {
        name: "topk",
        about: "the 10 largest of 10^8 values",
        status: Status::Missing("blockarray has no topk yet"),
        setup: None,
    },
    Workload {
        name: "percentile",
        about: "percentiles 5, 50, 95 of 10^8 values",
        status: Status::Missing("blockarray has no percentile yet"),
        setup: None,
    },
    Workload {
        name: "overlap_stencil",
        about: "3x3 mean filter over 8000x8000, chunks 1000x1000",
        status: Status::Missing("blockarray has no map_overlap yet"),
        setup: None,
    },
    Workload {
        name: "hdf5_sum",
        about: "sum of 2*10^8 f64 read from HDF5, chunks 10^6",
        status: Status::Ready(hdf5_sum),
        setup: Some(hdf5_sum_setup),
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
        let status = match w.status {
            Status::Ready(_) => "",
            Status::Missing(_) => " (missing)",
        };
        text.push_str(&format!("  {:<16} {}{status}\n", w.name, w.about));
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
    let run = match w.status {
        Status::Missing(why) => {
            if mpi.rank() == 0 {
                println!("{{\"missing\": {}}}", json_str(why));
            }
            return ExitCode::from(EXIT_MISSING);
        }
        Status::Ready(run) => run,
    };
    match run(data) {
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
                let status = match w.status {
                    Status::Ready(_) => "ready",
                    Status::Missing(_) => "missing",
                };
                println!("{}\t{status}\t{}", w.name, w.about);
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
            match w.status {
                Status::Missing(why) => {
                    println!("{{\"missing\": {}}}", json_str(why));
                    ExitCode::from(EXIT_MISSING)
                }
                Status::Ready(run) => match run(&data) {
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
                },
            }
        }
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
