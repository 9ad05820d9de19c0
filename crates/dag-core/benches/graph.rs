//! The graph side of scheduling, without running anything: `cargo bench -p dag-core`.
//!
//! Each iteration works on a 1,000,000-task graph (a fan-in-8 tree sum over 875,000 leaves):
//!
//! - `graph/build`: building it (keys, closures, hash-map inserts);
//! - `graph/plan`: compiling the plan a scheduler runs (cull, validate, priorities, order);
//! - `graph/fuse`: fusing linear chains (a chain of 1,000,000 tasks, fused into one).
//!
//! Together with `cargo bench -p sched-threaded` (the same graphs, run), this separates the
//! cost of graphs from the cost of executing them.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dag_core::{Plan, synthetic};
use std::hint::black_box;

const LEAVES: usize = 875_000;
const N: u64 = 1_000_000;

fn graph(c: &mut Criterion) {
    let mut group = c.benchmark_group("graph");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N));
    group.bench_function("build", |b| {
        b.iter(|| black_box(synthetic::tree(LEAVES, 8)))
    });
    let (tree, root) = synthetic::tree(LEAVES, 8);
    group.bench_function("plan", |b| {
        b.iter(|| black_box(Plan::new(&tree, std::slice::from_ref(&root)).expect("a valid graph")))
    });
    group.bench_function("fuse", |b| {
        b.iter_batched(
            || synthetic::chain(N as usize),
            |(chain, last)| black_box(chain.fuse(&[last]).expect("a valid graph")),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, graph);
criterion_main!(benches);
