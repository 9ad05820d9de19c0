//! Memory known before running: a computation's predicted peak of bytes held against what the
//! schedulers measure, runs under a memory limit, and plans refused before they start.

use blockarray::{BlockArray, Computation, ErrorKind, random::Rng, s};
use dag_core::{NoCallbacks, Scheduler};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;

/// Small versions of the seed workloads (values of at least tens of kB, so the threaded
/// scheduler's byte count, exact to 64 KiB per worker without a limit, is meaningful).
fn workloads() -> Vec<(&'static str, BlockArray<f64>)> {
    let rng = Rng::new(42);
    let m = rng.random::<f64>(&[1200, 1200], [200, 200]).unwrap();
    let r = rng.random::<f64>(&[2000, 2000], [2000, 20]).unwrap();
    let x = rng.random::<f64>(&[2000, 2000], [200, 200]).unwrap();
    let n = rng
        .normal::<f64>(10.0, 0.1, &[4000, 4000], [200, 400])
        .unwrap();
    vec![
        ("matmul", m.matmul(&m.t()).unwrap()),
        (
            "rechunk_sum",
            r.rechunk(vec![20, 2000])
                .unwrap()
                .sum(Some(&[1]), false)
                .unwrap(),
        ),
        (
            "xxt_slice_mean",
            (&x + &x.t())
                .unwrap()
                .slice(s![..;2, 1000..])
                .unwrap()
                .mean(Some(&[1]), false)
                .unwrap(),
        ),
        ("normal_mean", n.mean(Some(&[0]), false).unwrap()),
    ]
}

/// The predicted peak for `s`, and the peak measured running on it.
fn predicted_and_measured(x: &BlockArray<f64>, s: &dyn Scheduler) -> (usize, usize) {
    let mut c = Computation::new();
    c.add(x);
    c.allowed_mem(None);
    let plan = c.plan(s).unwrap();
    let (_, stats) = c.run_with(s, &NoCallbacks).unwrap();
    (plan.predicted_peak, stats.peak_bytes)
}

#[test]
fn the_predicted_peak_is_the_synchronous_schedulers_peak() {
    for (name, x) in workloads() {
        let (p, m) = predicted_and_measured(&x, &SyncScheduler::new());
        assert_eq!(p, m, "{name}");
        assert!(p > 0, "{name}");
    }
}

#[test]
fn the_predicted_peak_is_within_a_quarter_of_the_threaded_schedulers_peak() {
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    for (name, x) in workloads() {
        // The best of three runs: a loaded machine can delay one worker and change the
        // order the other runs in.
        let runs: Vec<(usize, usize)> = (0..3).map(|_| predicted_and_measured(&x, &s)).collect();
        let ratio = |&(p, m): &(usize, usize)| m as f64 / p as f64;
        let best = runs
            .iter()
            .map(ratio)
            .min_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()))
            .unwrap();
        // Without a limit the threaded count is exact to 64 KiB per worker.
        let slack = (2 * 64 * 1024) as f64 / runs[0].0 as f64;
        assert!(
            (best - 1.0).abs() <= 0.25 + slack,
            "{name}: measured / predicted = {best:.3} ({runs:?})"
        );
    }
}

#[test]
fn a_run_under_a_limit_between_the_sequential_and_parallel_peaks_stays_within_it() {
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    // A tree reduction: the threaded order holds more partials than the sequential one. (The
    // blocks are as small as the partials, since each is made inside the task reducing it:
    // the limit must leave room for one per worker.)
    let x = Rng::new(1)
        .normal::<f64>(0.0, 1.0, &[1000, 4000], [2, 400])
        .unwrap()
        .mean(Some(&[0]), false)
        .unwrap();
    let mut c = Computation::new();
    c.add(&x);
    let sequential = c.plan(&SyncScheduler::new()).unwrap().predicted_peak;
    let parallel = c.plan(&s).unwrap().predicted_peak;
    assert!(parallel > sequential, "{parallel} vs {sequential}");
    let limit = (sequential + parallel) / 2;
    let expected = x.compute_with(&SyncScheduler::new()).unwrap();
    for _ in 0..3 {
        let mut c = Computation::new();
        let h = c.add(&x);
        c.allowed_mem(Some(limit));
        let (mut out, stats) = c.run_with(&s, &NoCallbacks).unwrap();
        assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
        assert_eq!(out.take(h).unwrap(), expected);
    }
}

#[test]
fn limits_that_cannot_be_kept_are_refused_before_running() {
    let x = BlockArray::<f64>::ones(&[1000, 1000], [250, 250]).unwrap();
    let y = x.matmul(&x).unwrap();
    let mut c = Computation::new();
    c.add(&y);
    let plan = c.plan(&SyncScheduler::new()).unwrap();
    // Output block (i, j) reads x[i, k] and x[k, j] for the four k, 0.5 MB each, and makes a
    // 0.5 MB block; x[i, j] is among both (k = j and k = i), and held once: 4.0 MB.
    let (_, largest) = plan.largest_task.clone().unwrap();
    assert_eq!(largest, 4_000_000);
    c.allowed_mem(Some(largest - 1));
    let e = c.run(&ThreadedScheduler::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    let msg = e.to_string();
    assert!(
        msg.contains("4.00 MB") && msg.contains("tensordot"),
        "{msg}"
    );
    // Enough for any one task, but not for the frugal order's peak (every block of x is read
    // by a whole row or column of output blocks, so all of x is held early on).
    let sequential = plan.predicted_peak;
    assert!(sequential > largest + 1_000_000, "{sequential}");
    let mut c = Computation::new();
    c.add(&y);
    c.allowed_mem(Some(sequential - 1));
    let e = c.run(&ThreadedScheduler::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    assert!(e.to_string().contains("one task at a time"), "{e}");
    // At the frugal order's peak the synchronous scheduler runs it (it cannot hold back, so
    // its own peak must fit).
    let mut c = Computation::new();
    let h = c.add(&y);
    c.allowed_mem(Some(sequential));
    let mut out = c.run(&SyncScheduler::new()).unwrap();
    assert!(out.take(h).unwrap().iter().all(|&v| v == 1000.0));
}

/// A block made inside a fused task counts against the memory limit: a source block fused
/// into its reduction used to count as the reduction's few bytes, so a run went ahead and
/// tried to allocate it (for the terabyte block below, aborting the process).
#[test]
fn blocks_made_inside_fused_tasks_count_against_the_limit() {
    let x = BlockArray::<f64>::ones(&[1000, 1000], [500, 500]).unwrap();
    let y = x.sum(None, false).unwrap();
    let mut c = Computation::new();
    c.add(&y);
    let (_, largest) = c.plan(&SyncScheduler::new()).unwrap().largest_task.unwrap();
    assert!(
        largest >= 2_000_000,
        "a 2 MB block of ones is made: {largest}"
    );
    c.allowed_mem(Some(1_000_000));
    let e = c.run(&SyncScheduler::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
    // 8 TiB in one block, summed: refused under the default limit, not allocated.
    let huge = BlockArray::<f64>::ones(&[1 << 40], 1usize << 40).unwrap();
    let e = huge.sum(None, false).unwrap().compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
}

/// A sink that accepts anything and keeps nothing.
struct Discard;

impl blockarray::ChunkSink<u8> for Discard {
    fn shape(&self) -> Vec<usize> {
        vec![1 << 20, 1 << 20]
    }
    fn write_block(&self, _: &[usize], _: &ndarray::ArrayD<u8>) -> blockarray::Result<()> {
        Ok(())
    }
}

/// Storing an array of 2^40 one-element blocks is refused for its task count before its
/// blocks are listed (the list alone, 44 TB of indices, used to abort the process).
#[test]
fn stores_of_too_many_blocks_are_refused_before_listing_them() {
    let x = BlockArray::<u8>::zeros(&[1 << 20, 1 << 20], 1).unwrap();
    let e = x.store(std::sync::Arc::new(Discard)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
    assert!(e.to_string().contains("1099511627776 blocks"), "{e}");
    let e = x.persist().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
    assert!(x.graph().is_err() && x.lowered(None).is_err());
}

#[test]
fn a_plan_says_what_it_will_do_before_running() {
    let x = BlockArray::<f64>::ones(&[4000, 4000], [1000, 1000]).unwrap();
    let mut c = Computation::new();
    c.add(&x.sum(Some(&[0]), false).unwrap());
    c.allowed_mem(Some(1 << 30));
    let plan = c
        .plan(&ThreadedScheduler::builder().threads(2).build().unwrap())
        .unwrap();
    assert_eq!(plan.workers, 2);
    assert_eq!(plan.allowed_mem, Some(1 << 30));
    let text = plan.to_string();
    assert!(
        text.contains("tasks on 2 workers") && text.contains("limit 1.07 GB"),
        "{text}"
    );
}

#[test]
fn graphs_over_the_task_limit_are_refused_naming_the_rechunk() {
    let x = BlockArray::<f64>::ones(&[1000, 1000], [10, 10]).unwrap();
    let mut c = Computation::new();
    c.add(&x.sum(None, false).unwrap());
    c.max_tasks(5000);
    let e = c.run(&ThreadedScheduler::new()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory);
    let msg = e.to_string();
    assert!(
        msg.contains("more than 5000 tasks")
            && msg.contains("10000 blocks")
            && msg.contains("larger chunks"),
        "{msg}"
    );
    // Made with larger blocks it runs.
    let y = BlockArray::<f64>::ones(&[1000, 1000], [250, 250]).unwrap();
    let mut c = Computation::new();
    let h = c.add(&y.sum(None, false).unwrap());
    c.max_tasks(5000);
    let mut out = c.run(&ThreadedScheduler::new()).unwrap();
    assert_eq!(out.take(h).unwrap()[[]], 1e6);
}
