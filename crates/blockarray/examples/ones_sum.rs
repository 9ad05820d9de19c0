//! The seed documents' example: the sum of `ones((10000, 10000))` in 100 × 100 blocks — ten
//! thousand blocks, a tree reduction of about 11,500 tasks.
//!
//! `cargo run --release -p blockarray --example ones_sum`

use blockarray::BlockArray;
use dag_core::ProgressBar;
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let t0 = Instant::now();
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100])?;
    let total = x.sum(None, false)?;
    println!("x:\n{x}\n\nx.sum():\n{total}\n");
    let (v, stats) =
        total.compute_with_callbacks(&*blockarray::default_scheduler(), &ProgressBar::new())?;
    let got = v.into_iter().next().unwrap_or(f64::NAN);
    println!("result: {got} (expect 1e8)");
    println!(
        "{} tasks in {:.3} s ({:.3} s including graph building): {:.1} µs per task",
        stats.tasks,
        stats.wall.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64() * 1e6 / stats.tasks as f64
    );
    Ok(())
}
