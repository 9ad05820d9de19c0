//! The seed talk's "QR of a tall array": a random 400,000 × 100 array in 20 blocks of
//! 20,000 rows, factorised by TSQR on every core, then checked.
//!
//! ```sh
//! cargo run --release -p blockarray-linalg --example tall_qr [-- --rows 400000 --cols 100 --chunk 20000]
//! ```

use blockarray::{Computation, random::Rng};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (m, n, chunk) = (
        arg("--rows", 400_000),
        arg("--cols", 100),
        arg("--chunk", 20_000),
    );
    let x = Rng::new(42).random::<f64>(&[m, n], [chunk, n])?;
    println!("{x}");
    let start = Instant::now();
    let (q, r) = blockarray_linalg::tsqr(&x)?;
    println!(
        "tsqr: q {:?} in {} blocks, r {:?}; {} tasks before fusion",
        q.shape(),
        q.numblocks()[0],
        r.shape(),
        q.ntasks() + r.ntasks()
    );
    let mut c = Computation::new();
    let (hq, hr) = (c.add(&q), c.add(&r));
    let mut out = c.run(&*blockarray::default_scheduler())?;
    let (qv, rv) = (out.take(hq)?, out.take(hr)?);
    println!("computed Q and R in {:.3} s", start.elapsed().as_secs_f64());

    // Checks on a few rows: Q·R reproduces them, and Q's columns are orthonormal.
    let rows = 1000.min(m);
    let xs = x.slice(blockarray::s![..rows, ..])?.compute()?;
    let q2 = qv.into_dimensionality::<ndarray::Ix2>()?;
    let r2 = rv.into_dimensionality::<ndarray::Ix2>()?;
    let err = (&q2.slice(ndarray::s![..rows, ..]).dot(&r2)
        - &xs.into_dimensionality::<ndarray::Ix2>()?)
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()));
    let qtq = q2.t().dot(&q2);
    let orth = qtq
        .indexed_iter()
        .map(|((i, j), v)| (v - if i == j { 1.0 } else { 0.0 }).abs())
        .fold(0.0f64, f64::max);
    println!("max |Q·R − A| over the first {rows} rows: {err:.2e}; max |QᵀQ − I|: {orth:.2e}");
    assert!(err < 1e-10 && orth < 1e-10);
    Ok(())
}
