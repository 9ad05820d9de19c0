//! The seed documents' example of laziness: `exp(ones((10000, 10000)))[1:100, 1:100]` in
//! 100 × 100 blocks computes one block, not ten thousand.
//!
//! `cargo run --release -p blockarray --example lazy_slice`

use blockarray::{BlockArray, s};
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let t0 = Instant::now();
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100])?;
    let y = x.exp().slice(s![1..100, 1..100])?;
    println!("exp(x)[1:100, 1:100]:\n{y}\n");
    let (graph, _) = y.lowered(None)?;
    println!("the graph that runs ({} task(s)):\n{graph}", graph.len());
    let (v, stats) =
        y.compute_with_callbacks(&*blockarray::default_scheduler(), &dag_core::NoCallbacks)?;
    println!(
        "result: {:?} of e = {} ({} task(s), {:.3} ms in all)",
        v.shape(),
        v[[0, 0]],
        stats.tasks,
        t0.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
