//! The seed documents' example: `normal(10, 0.1, (20000, 20000)).mean(axis=0)` in 1000 × 1000
//! blocks — 3.2 GB of random numbers generated, reduced and dropped block by block.
//!
//! `cargo run --release -p blockarray --example normal_mean`

use blockarray::{BlockArray, random::Rng};
use dag_core::ProgressBar;
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let t0 = Instant::now();
    let x: BlockArray<f64> = Rng::new(0).normal(10.0, 0.1, &[20_000, 20_000], [1000, 1000])?;
    let m = x.mean(Some(&[0]), false)?;
    println!("x:\n{x}\n\nx.mean(axis=0):\n{m}\n");
    let (v, stats) =
        m.compute_with_callbacks(&*blockarray::default_scheduler(), &ProgressBar::new())?;
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "result: {} column means in [{lo:.5}, {hi:.5}] (expect 10 ± 0.003)",
        v.len()
    );
    println!(
        "{} tasks in {:.2} s ({:.2} s including graph building), peak {:.1} MB held of {:.1} GB generated",
        stats.tasks,
        stats.wall.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        stats.peak_bytes as f64 / 1e6,
        x.nbytes() as f64 / 1e9
    );
    Ok(())
}
