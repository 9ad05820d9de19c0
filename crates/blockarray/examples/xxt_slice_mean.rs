//! The seed talk's example: `(x + x.T)[::2, 5000:].mean(axis=1)` on a random 10000 × 10000
//! array in 1000 × 1000 blocks.
//!
//! `cargo run --release -p blockarray --example xxt_slice_mean`

use blockarray::{BlockArray, random::Rng, s};
use dag_core::ProgressBar;
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let t0 = Instant::now();
    let x: BlockArray<f64> = Rng::new(42).random(&[10_000, 10_000], [1000, 1000])?;
    let y = (&x + &x.t())?
        .slice(s![..;2, 5000..])?
        .mean(Some(&[1]), false)?;
    println!("x:\n{x}\n\n(x + x.T)[::2, 5000:].mean(axis=1):\n{y}\n");
    let scheduler = blockarray::default_scheduler();
    let (v, stats) = y.compute_with_callbacks(&*scheduler, &ProgressBar::new())?;
    println!(
        "result: {} values, first {:.6}, mean {:.6} (uniform [0, 1): expect ≈ 1.0)",
        v.len(),
        v[[0]],
        v.mean().unwrap_or(f64::NAN)
    );
    println!(
        "{} tasks in {:.2} s ({:.2} s including graph building), peak {:.1} MB held",
        stats.tasks,
        stats.wall.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        stats.peak_bytes as f64 / 1e6
    );
    Ok(())
}
