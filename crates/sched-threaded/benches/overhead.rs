//! Scheduler overhead: one million trivial tasks per iteration, graph construction included.
//!
//! `cargo bench -p sched-threaded --bench overhead`. Criterion reports time per iteration;
//! divide by 1,000,000 for the per-task cost (docs/benchmarks.md lists the numbers).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dag_core::{Graph, Key, Scheduler, synthetic};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::hint::black_box;

const N: usize = 1_000_000;

type Build = fn() -> (Graph, Vec<Key>);

fn independent() -> (Graph, Vec<Key>) {
    synthetic::independent(N)
}

fn chain() -> (Graph, Vec<Key>) {
    let (g, k) = synthetic::chain(N);
    (g, vec![k])
}

fn tree() -> (Graph, Vec<Key>) {
    // 875,000 leaves + 125,000 partial sums ≈ 1,000,000 tasks.
    let (g, k) = synthetic::tree(875_000, 8);
    (g, vec![k])
}

fn overhead(c: &mut Criterion) {
    let schedulers: Vec<Box<dyn Scheduler>> = vec![
        Box::new(SyncScheduler::new()),
        Box::new(ThreadedScheduler::new()),
    ];
    let shapes: [(&str, Build); 3] = [
        ("independent", independent),
        ("chain", chain),
        ("tree8", tree),
    ];
    let mut group = c.benchmark_group("1M-tasks");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    for (shape, build) in shapes {
        for s in &schedulers {
            group.bench_function(format!("{shape}/{}", s.name()), |b| {
                b.iter(|| {
                    let (g, outputs) = build();
                    black_box(s.compute(&g, &outputs).expect("runs"))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
