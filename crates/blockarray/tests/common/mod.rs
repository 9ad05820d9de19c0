//! Helpers shared by blockarray's integration tests: the two schedulers, deterministic data,
//! and random chunkings for property tests.
// Each test crate uses its own subset.
#![allow(dead_code)]

use dag_core::Scheduler;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;

/// The threaded scheduler (2 threads) when `threaded`, else the synchronous one.
pub fn scheduler(threaded: bool) -> Box<dyn Scheduler> {
    if threaded {
        Box::new(ThreadedScheduler::builder().threads(2).build().unwrap())
    } else {
        Box::new(SyncScheduler::new())
    }
}

/// Deterministic data: small integers stored as floats, so sums are exact in any order.
pub fn data(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut i = 0u64;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        i += 1;
        let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        ((z >> 40) % 21) as f64 - 10.0
    })
}

/// The block lengths of an axis of length `n` cut at `cuts` (dask's `[0]` when empty).
pub fn cuts_to_chunks(n: usize, cuts: &std::collections::BTreeSet<usize>) -> Vec<usize> {
    if n == 0 {
        return vec![0];
    }
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().filter(|&&c| c > 0 && c < n) {
        out.push(c - prev);
        prev = c;
    }
    out.push(n - prev);
    out
}

/// A random chunking of `shape`: up to 4 cuts per axis.
pub fn arb_chunks(shape: Vec<usize>) -> impl Strategy<Value = Vec<Vec<usize>>> {
    shape
        .into_iter()
        .map(|n| {
            proptest::collection::btree_set(0..n.max(1), 0..=n.min(4))
                .prop_map(move |cuts| cuts_to_chunks(n, &cuts))
        })
        .collect::<Vec<_>>()
}

/// NumPy's positions for `start:stop:step` on an axis of length `n` (the reference).
pub fn numpy_positions(
    n: usize,
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
) -> Vec<usize> {
    let n = n as isize;
    let norm = |v: isize, lo: isize, hi: isize| {
        let v = if v < 0 { v + n } else { v };
        v.clamp(lo, hi)
    };
    let mut out = Vec::new();
    if step > 0 {
        let (a, b) = (
            start.map_or(0, |s| norm(s, 0, n)),
            stop.map_or(n, |s| norm(s, 0, n)),
        );
        let mut i = a;
        while i < b {
            out.push(i as usize);
            i += step;
        }
    } else {
        let a = start.map_or(n - 1, |s| norm(s, -1, n - 1));
        let b = stop.map_or(-1, |s| norm(s, -1, n - 1));
        let mut i = a;
        while i > b {
            out.push(i as usize);
            i += step;
        }
    }
    out
}
