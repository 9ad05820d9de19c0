//! NumPy's shape operations on a chunked array, lazily: a corner of a padded, flipped, rolled
//! 10 000 × 10 000 array reads a handful of its 10 000 blocks; `einsum` gives a trace and a
//! batched matrix product.
//!
//! `cargo run --release -p blockarray --example numpy_shapes`

use blockarray::{BlockArray, PadMode, einsum, s};
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let t0 = Instant::now();
    let x = BlockArray::arange(0.0f64, 1e8, 1.0, 1_000_000)?.reshape(&[10_000, 10_000])?;
    let x = x.rechunk([100, 100])?;
    let y = x
        .pad(&[(2, 2)], PadMode::Reflect)?
        .flip(Some(&[0]))?
        .roll(&[3], Some(&[1]))?;
    let corner = y.slice(s![..4, ..6])?;
    let (graph, _) = corner.lowered(None)?;
    println!(
        "corner of pad(reflect) → flip → roll: {} tasks (the array has {} blocks)",
        graph.len(),
        x.chunks().nblocks()
    );
    println!("{}", corner.compute()?);

    // The trace of the top-left 2000 × 2000 block, as einsum("ii") and as trace().
    let m = x.slice(s![..2000, ..2000])?;
    let a = einsum("ii", &[&m])?.compute()?[[]];
    let b = m.trace(0, 0, 1)?.compute()?[[]];
    println!("einsum(\"ii\") = {a}, trace = {b}");

    // A stack of 8 products of 300 × 300 matrices, batch axes broadcast.
    let p = blockarray::random::Rng::new(1).random::<f64>(&[8, 300, 300], [1, 100, 100])?;
    let q = blockarray::random::Rng::new(2).random::<f64>(&[1, 300, 300], [1, 100, 100])?;
    let r = p.matmul(&q)?;
    let e = einsum("bij,jk->bik", &[&p, &q.squeeze(Some(&[0]))?])?;
    let diff = (&r - &e)?.abs().max(None, false)?.compute()?[[]];
    println!(
        "batched matmul {:?}: max |matmul − einsum| = {diff:e}",
        r.shape()
    );
    println!("{:.2} s in all", t0.elapsed().as_secs_f64());
    Ok(())
}
