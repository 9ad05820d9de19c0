//! What diagnostics cost a run: the `ones_sum` workload (`ones((10000, 10000), chunks=(100,
//! 100)).sum()`, about 11,500 tasks after fusion, 23,000 in dask's count) built and computed on
//! the default scheduler, with no callbacks, with the task profiler, with the task and
//! resource profilers, and with the live dashboard serving (no page open).
//!
//! `cargo bench -p blockarray --bench diagnostics`; the numbers are in `docs/benchmarks.md`.

use blockarray::BlockArray;
use blockarray::diagnostics::{Dashboard, Profiler, ResourceProfiler};
use criterion::{Criterion, criterion_group, criterion_main};
use dag_core::{Callbacks, NoCallbacks};
use std::hint::black_box;
use std::time::Duration;

/// The `ones_sum` workload, as `cargo xtask bench` runs it, with `callbacks`.
fn ones_sum(callbacks: &dyn Callbacks) -> f64 {
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100]).expect("valid chunks");
    let (v, _) = x
        .sum(None, false)
        .expect("a sum")
        .compute_with_callbacks(&*blockarray::default_scheduler(), callbacks)
        .expect("computes");
    v.into_iter().next().unwrap_or(f64::NAN)
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("ones_sum");
    group.sample_size(40);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("no-callbacks", |b| {
        b.iter(|| black_box(ones_sum(&NoCallbacks)))
    });
    group.bench_function("profiler", |b| {
        // A profiler per run, as a user makes one (and so no run's records pile up).
        b.iter(|| {
            let p = Profiler::new();
            black_box(ones_sum(&p));
            black_box(p.runs())
        })
    });
    group.bench_function("profiler+resources", |b| {
        b.iter(|| {
            let (p, r) = (Profiler::new(), ResourceProfiler::new());
            black_box(ones_sum(&(&p, &r)));
            black_box(p.runs())
        })
    });
    let dashboard = Dashboard::serve("127.0.0.1:0").expect("a free port");
    group.bench_function("dashboard", |b| b.iter(|| black_box(ones_sum(&dashboard))));
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
