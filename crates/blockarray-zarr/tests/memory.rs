//! Out-of-core behaviour on a small scale: sum, mean and std of a Zarr array with many chunks
//! in one computation hold a bounded number of blocks at once, however many chunks there are;
//! and storing many chunks holds a bounded number too.

mod common;

use blockarray::{BlockArray, Computation};
use blockarray_zarr::{ArrayOptions, Compressor, ZarrStore, from_zarr, to_zarr_with};
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

/// The bound: a few chunks per worker plus the publication slack of the threaded scheduler
/// (64 KiB per worker); it does not depend on the number of chunks.
fn bound(threads: usize) -> usize {
    threads * (12 * CHUNK_BYTES + 64 * 1024)
}

/// Write `nchunks` chunks, then compute sum, mean and std in one computation; returns the
/// write's and the read's statistics.
fn stats_of_store(
    nchunks: usize,
    sched: &dyn Scheduler,
    compressor: Compressor,
) -> (RunStats, RunStats) {
    let dir = TempPath::new("memory.zarr");
    let n = nchunks * CHUNK;
    let x = BlockArray::<f64>::from_fn(&[n], [CHUNK], "memory-test", |i| value(i[0])).expect("x");
    let mut store = ZarrStore::new(&dir);
    store
        .array("x", &x, &ArrayOptions::new().compressor(compressor))
        .expect("x");
    let (_, written) = store.run_with(sched, &NoCallbacks).expect("write");
    let y = from_zarr::<f64>(&dir, "x").expect("open");
    assert_eq!(y.numblocks(), [nchunks]);
    let mut c = Computation::new();
    let hs = c.add(&y.sum(None, false).expect("sum"));
    let hm = c.add(&y.mean(None, false).expect("mean"));
    let hd = c.add(&y.std(None, 0.0, false).expect("std"));
    let (graph, _) = c.graph().expect("graph");
    let reads = graph
        .keys()
        .iter()
        .filter(|k| k.to_string().contains("zarr"))
        .count();
    assert!(reads <= nchunks, "{reads} read tasks for {nchunks} chunks");
    let (mut out, read) = c.run_with(sched, &NoCallbacks).expect("run");
    let one = |v: ndarray::ArrayD<f64>| v.into_iter().next().expect("a scalar");
    let (sum, mean, std) = (
        one(out.take(hs).expect("sum")),
        one(out.take(hm).expect("mean")),
        one(out.take(hd).expect("std")),
    );
    let exact: f64 = (0..n).map(value).sum();
    let mu = exact / n as f64;
    let var: f64 = (0..n).map(|i| (value(i) - mu).powi(2)).sum::<f64>() / n as f64;
    assert!((sum - exact).abs() < 1e-9 * exact, "{sum} vs {exact}");
    assert!(
        (mean - mu).abs() < 1e-12 * mu.abs().max(1.0),
        "{mean} vs {mu}"
    );
    assert!((std - var.sqrt()).abs() < 1e-9, "{std} vs {}", var.sqrt());
    (written, read)
}

#[test]
fn peak_bytes_do_not_grow_with_the_number_of_chunks() {
    let threaded = ThreadedScheduler::builder().threads(2).build().expect("2");
    for compressor in [Compressor::None, Compressor::Zstd(1)] {
        let (small_w, small_r) = stats_of_store(40, &threaded, compressor);
        let (large_w, large_r) = stats_of_store(400, &threaded, compressor);
        for s in [&small_w, &small_r, &large_w, &large_r] {
            assert!(
                s.peak_bytes <= bound(2),
                "peak {} B over the bound {} B ({compressor:?})",
                s.peak_bytes,
                bound(2)
            );
        }
        // The whole array is 400 chunks (26 MB); a small fraction is held at once.
        assert!(large_r.peak_bytes < 400 * CHUNK_BYTES / 10);
    }
}

#[test]
fn one_statistic_at_a_time_is_bounded_with_the_sync_scheduler_too() {
    // As in blockarray-hdf5: the sync scheduler's static order finishes one output's tree
    // before the next, so each reduction is checked alone.
    let sync = SyncScheduler::new();
    for nchunks in [40, 400] {
        let dir = TempPath::new("memory-sync.zarr");
        let n = nchunks * CHUNK;
        let x =
            BlockArray::<f64>::from_fn(&[n], [CHUNK], "memory-test", |i| value(i[0])).expect("x");
        to_zarr_with(&dir, &[("x", &x)], &ArrayOptions::new(), &sync).expect("write");
        let y = from_zarr::<f64>(&dir, "x").expect("open");
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
