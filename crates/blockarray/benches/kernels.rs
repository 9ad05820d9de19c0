//! Micro-benchmarks of blockarray's hot paths: `cargo bench -p blockarray`.
//!
//! - `lowering/1M-blocks`: turning a 1,000,000-block elementwise expression into its fused task
//!   graph (`lowered`), without running it: the per-block cost of lowering and fusion.
//! - `fused-chain/1000x1000`: a chain of elementwise operations over one 1000×1000 block,
//!   computed (one fused task), next to the same chain written directly with ndarray: the
//!   difference is blockarray's per-block overhead; and `x * 2 + x.T`, whose transposed operand
//!   the fused program reads tile by tile instead of copying it.
//! - `reduction/100-blocks`: a full sum and a mean over axis 0 of 100 in-memory blocks of
//!   100×100 (persisted first, so only the reduction is measured).
//! - `gemm/1000x1000`: one block product `x @ y`, `x @ y.T` (the transposed block read as a
//!   view) and `x @ x.T` (a Gram block: upper triangle only, then mirrored) of 1000×1000
//!   in-memory blocks, the unit of work of the `matmul` workload (throughput counted as
//!   2·1000³ flops per product in all three).
//! - `random/1M`: one block of 10⁶ uniform and of 10⁶ standard normal values (the counter-based
//!   generator: a vectorised ziggurat for normal values), computed on the calling thread.
//! - `small/lazy-slice`: the `lazy_slice` workload end to end (a 99 × 99 slice of `exp` of a
//!   10⁴ × 10⁴ array in 100 × 100 blocks: one block is computed): the fixed cost of building,
//!   lowering, planning and running a computation.
//!
//! Scheduler overhead on trivial tasks has its own bench: `cargo bench -p sched-threaded`.

use blockarray::BlockArray;
use blockarray::random::Rng;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn lowering(c: &mut Criterion) {
    let mut group = c.benchmark_group("lowering");
    group.sample_size(10);
    // 100,000 × 100,000 in 100 × 100 blocks: 1,000,000 blocks (never materialised here).
    let x = BlockArray::<f64>::ones(&[100_000, 100_000], [100, 100]).expect("valid chunks");
    let y = (&(&x * 2.0) + 1.0).exp();
    assert_eq!(y.chunks().nblocks(), 1_000_000);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("1M-blocks/fused", |b| {
        b.iter(|| black_box(y.lowered(None).expect("lowers")))
    });
    group.finish();
}

fn fused_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("fused-chain");
    let data = Rng::new(7)
        .random::<f64>(&[1000, 1000], [1000, 1000])
        .and_then(|x| x.compute())
        .expect("computes");
    let x = BlockArray::from_array(data.clone(), [1000, 1000]).expect("valid chunks");
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("1000x1000/blockarray", |b| {
        b.iter(|| {
            let y = (&(&x * 2.0) + 1.0).sqrt().exp();
            let y = (&y - &x).expect("same shape");
            black_box(y.compute().expect("computes"))
        })
    });
    group.bench_function("1000x1000/ndarray", |b| {
        b.iter(|| black_box(data.mapv(|v| (v * 2.0 + 1.0).sqrt().exp() - v)))
    });
    // A transposed operand: read across its rows, tile by tile.
    group.bench_function("1000x1000/x*2+x.T/blockarray", |b| {
        b.iter(|| {
            let y = (&(&x * 2.0) + &x.t()).expect("square");
            black_box(y.compute().expect("computes"))
        })
    });
    group.bench_function("1000x1000/x*2+x.T/ndarray", |b| {
        b.iter(|| black_box(data.mapv(|v| v * 2.0) + data.t()))
    });
    group.finish();
}

fn reduction(c: &mut Criterion) {
    let mut group = c.benchmark_group("reduction");
    let x = Rng::new(11)
        .random::<f64>(&[1000, 1000], [100, 100])
        .and_then(|x| x.persist())
        .expect("computes");
    assert_eq!(x.chunks().nblocks(), 100);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("100-blocks/sum", |b| {
        b.iter(|| black_box(x.sum(None, false).and_then(|s| s.compute()).expect("sums")))
    });
    group.bench_function("100-blocks/mean-axis0", |b| {
        b.iter(|| {
            black_box(
                x.mean(Some(&[0]), false)
                    .and_then(|s| s.compute())
                    .expect("reduces"),
            )
        })
    });
    group.finish();
}

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(20);
    let x = Rng::new(13)
        .random::<f64>(&[1000, 1000], [1000, 1000])
        .and_then(|x| x.persist())
        .expect("computes");
    let y = Rng::new(17)
        .random::<f64>(&[1000, 1000], [1000, 1000])
        .and_then(|y| y.persist())
        .expect("computes");
    // 2·1000³ flops per product.
    group.throughput(Throughput::Elements(2_000_000_000));
    group.bench_function("1000x1000/x@y", |b| {
        b.iter(|| black_box(x.matmul(&y).and_then(|p| p.compute()).expect("multiplies")))
    });
    group.bench_function("1000x1000/x@y.T", |b| {
        b.iter(|| {
            black_box(
                x.matmul(&y.t())
                    .and_then(|p| p.compute())
                    .expect("multiplies"),
            )
        })
    });
    // One block, so one diagonal block: only its upper triangle is multiplied (half the flops
    // of the throughput counted here), then mirrored.
    group.bench_function("1000x1000/x@x.T", |b| {
        b.iter(|| {
            black_box(
                x.matmul(&x.t())
                    .and_then(|p| p.compute())
                    .expect("multiplies"),
            )
        })
    });
    group.finish();
}

fn random(c: &mut Criterion) {
    let mut group = c.benchmark_group("random");
    let sync = sched_sync::SyncScheduler::new();
    let n = 1_000_000;
    group.throughput(Throughput::Elements(n as u64));
    let uniform = Rng::new(3).random::<f64>(&[n], [n]).expect("valid chunks");
    group.bench_function("1M/uniform", |b| {
        b.iter(|| black_box(uniform.compute_with(&sync).expect("computes")))
    });
    let normal = Rng::new(3)
        .normal::<f64>(0.0, 1.0, &[n], [n])
        .expect("valid chunks");
    group.bench_function("1M/normal", |b| {
        b.iter(|| black_box(normal.compute_with(&sync).expect("computes")))
    });
    group.finish();
}

fn small(c: &mut Criterion) {
    let mut group = c.benchmark_group("small");
    group.bench_function("lazy-slice", |b| {
        b.iter(|| {
            let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100]).expect("valid chunks");
            let y = x
                .exp()
                .slice(blockarray::s![1..100, 1..100])
                .expect("in bounds");
            black_box(y.compute().expect("computes"))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    lowering,
    fused_chain,
    reduction,
    gemm,
    random,
    small
);
criterion_main!(benches);
