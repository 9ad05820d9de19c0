//! Out-of-core behaviour on a small scale: sum, mean and std of a file with many chunks in one
//! computation hold a bounded number of blocks at once, however many chunks there are.

mod common;

use blockarray::{BlockArray, Computation};
use blockarray_hdf5::{DatasetOptions, from_hdf5, to_hdf5_with};
use common::TempPath;
use dag_core::{NoCallbacks, RunStats, Scheduler};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;

/// Elements per chunk: 8192 f64 = 64 KiB.
const CHUNK: usize = 8192;
const CHUNK_BYTES: usize = CHUNK * 8;

fn value(i: usize) -> f64 {
    ((i * 7919) % 1000) as f64 / 10.0
}

/// Write `nchunks` chunks, then compute sum, mean and std in one computation; returns the
/// three values and the run's statistics.
fn stats_of_file(nchunks: usize, sched: &dyn Scheduler, compress: bool) -> ([f64; 3], RunStats) {
    let file = TempPath::new("memory.h5");
    let n = nchunks * CHUNK;
    let x = BlockArray::<f64>::from_fn(&[n], [CHUNK], "memory-test", |i| value(i[0])).expect("x");
    let mut opts = DatasetOptions::new();
    if compress {
        opts = opts.deflate(1);
    }
    to_hdf5_with(&file, &[("/x", &x)], &opts, sched).expect("write");
    let y = from_hdf5::<f64>(&file, "/x").expect("open");
    assert_eq!(y.numblocks(), [nchunks]);
    let mut c = Computation::new();
    let hs = c.add(&y.sum(None, false).expect("sum"));
    let hm = c.add(&y.mean(None, false).expect("mean"));
    let hd = c.add(&y.std(None, 0.0, false).expect("std"));
    let (graph, _) = c.graph().expect("graph");
    let reads = graph
        .keys()
        .iter()
        .filter(|k| k.to_string().contains("hdf5"))
        .count();
    assert!(
        reads <= nchunks,
        "each chunk is read at most once per computation: {reads} read tasks for {nchunks} chunks"
    );
    let (mut out, stats) = c.run_with(sched, &NoCallbacks).expect("run");
    let one = |v: ndarray::ArrayD<f64>| v.into_iter().next().expect("a scalar");
    let sum = one(out.take(hs).expect("sum"));
    let mean = one(out.take(hm).expect("mean"));
    let std = one(out.take(hd).expect("std"));
    // Against a plain loop.
    let exact: f64 = (0..n).map(value).sum();
    let mu = exact / n as f64;
    let var: f64 = (0..n).map(|i| (value(i) - mu).powi(2)).sum::<f64>() / n as f64;
    assert!((sum - exact).abs() < 1e-9 * exact, "{sum} vs {exact}");
    assert!(
        (mean - mu).abs() < 1e-12 * mu.abs().max(1.0),
        "{mean} vs {mu}"
    );
    assert!((std - var.sqrt()).abs() < 1e-9, "{std} vs {}", var.sqrt());
    ([sum, mean, std], stats)
}

/// The bound: a few chunks per worker plus the publication slack of the threaded scheduler
/// (64 KiB per worker); it does not depend on the number of chunks.
fn bound(threads: usize) -> usize {
    threads * (12 * CHUNK_BYTES + 64 * 1024)
}

#[test]
fn peak_bytes_do_not_grow_with_the_number_of_chunks() {
    // The default scheduler: sum, mean and std in one computation.
    let threaded = ThreadedScheduler::builder().threads(2).build().expect("2");
    for compress in [false, true] {
        let (small_v, small) = stats_of_file(40, &threaded, compress);
        let (_, large) = stats_of_file(400, &threaded, compress);
        assert!(small_v[2] > 0.0);
        for s in [&small, &large] {
            assert!(
                s.peak_bytes <= bound(2),
                "peak {} B over the bound {} B (compress {compress})",
                s.peak_bytes,
                bound(2)
            );
        }
        // The whole file is 400 chunks (26 MB); a small fraction is held at once.
        assert!(large.peak_bytes < 400 * CHUNK_BYTES / 10);
    }
}

#[test]
fn one_statistic_at_a_time_is_bounded_with_the_sync_scheduler_too() {
    // The synchronous scheduler runs dag-core's static order, which finishes one output's
    // tree before the next: with several reductions sharing the file's blocks in one
    // computation it would hold every block until the last reduction reads it. Each
    // reduction alone streams.
    let sync = SyncScheduler::new();
    for nchunks in [40, 400] {
        let file = TempPath::new("memory-sync.h5");
        let n = nchunks * CHUNK;
        let x =
            BlockArray::<f64>::from_fn(&[n], [CHUNK], "memory-test", |i| value(i[0])).expect("x");
        to_hdf5_with(
            &file,
            &[("/x", &x)],
            &DatasetOptions::new().deflate(1),
            &sync,
        )
        .expect("write");
        let y = from_hdf5::<f64>(&file, "/x").expect("open");
        for r in [
            y.sum(None, false).expect("sum"),
            y.mean(None, false).expect("mean"),
            y.std(None, 0.0, false).expect("std"),
        ] {
            let (_, stats) = r.compute_with_callbacks(&sync, &NoCallbacks).expect("run");
            assert!(
                stats.peak_bytes <= bound(1),
                "peak {} B over the bound {} B with {nchunks} chunks",
                stats.peak_bytes,
                bound(1)
            );
        }
    }
}
