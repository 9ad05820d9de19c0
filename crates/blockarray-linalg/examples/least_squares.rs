//! A least-squares fit on an array larger than one block: a cubic through two million noisy
//! samples of `y = 1 − 2t + 0.5t² + 3t³`, the design matrix cut into 20 blocks of rows.
//! `lstsq` factorises it by TSQR on every core and returns the coefficients, the residual, the
//! rank and the singular values, as `dask.array.linalg.lstsq` does.
//!
//! ```sh
//! cargo run --release -p blockarray-linalg --example least_squares [-- --points 2000000 --chunk 100000]
//! ```

use blockarray::{BlockArray, Computation, random::Rng, stack};
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
    let (n, chunk) = (arg("--points", 2_000_000), arg("--chunk", 100_000));
    let truth = [1.0, -2.0, 0.5, 3.0];
    // Samples t in [0, 1), a cubic with noise of standard deviation 0.1.
    let t = BlockArray::arange(0.0f64, 1.0, 1.0 / n as f64, chunk)?;
    let t2 = (&t * &t)?;
    let t3 = (&t2 * &t)?;
    let noise = Rng::new(7).normal::<f64>(0.0, 0.1, &[n], chunk)?;
    let mut y = &noise + truth[0];
    for (c, p) in truth[1..].iter().zip([&t, &t2, &t3]) {
        y = (&y + &(p * *c))?;
    }
    let ones = BlockArray::<f64>::ones(&[n], chunk)?;
    let a = stack(&[&ones, &t, &t2, &t3], 1)?;
    println!("design matrix: {a}");

    let start = Instant::now();
    let fit = blockarray_linalg::lstsq(&a, &y)?;
    let mut c = Computation::new();
    let (hx, hr, hk, hs) = (
        c.add(&fit.x),
        c.add(&fit.residuals),
        c.add(&fit.rank),
        c.add(&fit.s),
    );
    let mut out = c.run(&*blockarray::default_scheduler())?;
    let (x, res, rank, s) = (out.take(hx)?, out.take(hr)?, out.take(hk)?, out.take(hs)?);
    println!(
        "lstsq on {n} points in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    println!(
        "coefficients {:.4?} (true {truth:?})",
        x.as_slice().unwrap_or(&[])
    );
    println!(
        "residual sum of squares {:.1} (expected about n·0.01 = {:.1}), rank {}, singular values {:.1?}",
        res[[0]],
        n as f64 * 0.01,
        rank[[]],
        s.as_slice().unwrap_or(&[])
    );
    for (got, want) in x.iter().zip(truth) {
        assert!(
            (got - want).abs() < 0.05,
            "coefficient {got} far from {want}"
        );
    }
    assert_eq!(rank[[]], 4);
    Ok(())
}
