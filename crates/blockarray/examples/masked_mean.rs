//! The seed tutorial's `x[x > 0].mean()` on an array larger than the memory the run may use:
//! `x` (a few GB of normal random numbers, generated lazily from a seed) is masked by its own
//! positive values — a selection whose length is not known until computed — and averaged,
//! under `Computation::allowed_mem` smaller than `x`. The result is checked against a streamed
//! reference: the same numbers computed one block row at a time and averaged by a plain loop.
//!
//! `cargo run --release -p blockarray --example masked_mean -- [--gb 2] [--limit-mb 256]`

use blockarray::{BlockArray, Computation, random::Rng, s};
use dag_core::NoCallbacks;
use std::time::Instant;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() -> Result<(), blockarray::Error> {
    let gb = arg("--gb", 2.0);
    let limit = (arg("--limit-mb", 256.0) * 1e6) as usize;
    // Rows of 8192 float64 (64 kB); blocks of 256 rows (16 MB), whole rows so that the mask
    // selects in C order without rechunking.
    let cols = 8192;
    let rows = ((gb * 1e9 / 8.0 / cols as f64) as usize / 256).max(1) * 256;
    let x: BlockArray<f64> = Rng::new(7).normal(0.0, 1.0, &[rows, cols], [256, cols])?;
    let positive = x.mask(&x.greater(0.0)?)?;
    let mean = positive.mean(None, false)?;
    println!(
        "x: {} of float64 in {} blocks; memory limit {:.0} MB\nx[x > 0]: {positive}\n",
        dag_core::fmt_bytes(x.nbytes()),
        x.chunks().nblocks(),
        limit as f64 / 1e6
    );
    let t0 = Instant::now();
    let mut c = Computation::new();
    let h = c.add(&mean);
    c.allowed_mem(Some(limit));
    let (mut out, stats) = c.run_with(&*blockarray::default_scheduler(), &NoCallbacks)?;
    let got = out.take(h)?[[]];
    println!(
        "x[x > 0].mean() = {got:.6} (half-normal mean: {:.6}) in {:.2} s, {} tasks, peak {} held \
         (limit {})",
        (2.0 / std::f64::consts::PI).sqrt(),
        t0.elapsed().as_secs_f64(),
        stats.tasks,
        dag_core::fmt_bytes(stats.peak_bytes),
        dag_core::fmt_bytes(limit)
    );
    assert!(stats.peak_bytes <= limit, "the run passed its memory limit");

    // Streamed reference: one block row at a time, a plain loop.
    let t1 = Instant::now();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for start in (0..rows).step_by(256) {
        let slab = x.slice(s![start..start + 256, ..])?.compute()?;
        for &v in slab.iter().filter(|&&v| v > 0.0) {
            sum += v;
            count += 1;
        }
    }
    let want = sum / count as f64;
    println!(
        "streamed reference: {want:.6} over {count} positive values in {:.2} s",
        t1.elapsed().as_secs_f64()
    );
    assert!(
        (got - want).abs() <= 1e-9 * want.abs(),
        "{got} differs from the reference {want}"
    );
    Ok(())
}
