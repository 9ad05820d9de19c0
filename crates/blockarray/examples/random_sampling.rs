//! Random sampling at scale, the same values in any chunking: 20 million gamma values reduced
//! block by block, Poisson counts, a weighted sample without replacement, a permutation of a
//! million positions (an out-of-core argsort of random keys) and a bootstrap resample.
//!
//! `cargo run --release -p blockarray --example random_sampling`

use blockarray::{BlockArray, random::Rng};
use std::time::Instant;

fn main() -> Result<(), blockarray::Error> {
    let rng = Rng::new(2026);

    // 160 MB of gamma(2, 3) values (mean 6, variance 18), generated and reduced per block.
    let t = Instant::now();
    let g = rng.gamma::<f64>(2.0, 3.0, &[20_000_000], 1_000_000)?;
    let mean = g.mean(None, false)?.compute()?.into_raw_vec_and_offset().0[0];
    let var = g
        .var(None, 0.0, false)?
        .compute()?
        .into_raw_vec_and_offset()
        .0[0];
    println!(
        "gamma(2, 3), 2e7 values: mean {mean:.4} (expect 6), variance {var:.3} (expect 18) in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The same values whatever the chunking: a slice drawn in other blocks.
    let a = rng
        .gamma::<f64>(2.0, 3.0, &[20_000_000], 777_777)?
        .slice(blockarray::s![12_345_678..12_345_688])?
        .compute()?;
    let b = g.slice(blockarray::s![12_345_678..12_345_688])?.compute()?;
    assert_eq!(a, b);
    println!("same ten values in blocks of 777 777 and of 1 000 000: {a:.3}");

    // Poisson counts: the mean of 1e7 draws of λ = 4.5.
    let k = rng.poisson(4.5, &[10_000_000], 1_000_000)?;
    let km = k.astype::<f64>().mean(None, false)?.compute()?;
    println!(
        "poisson(4.5), 1e7 counts: mean {:.4}",
        km.into_raw_vec_and_offset().0[0]
    );

    // Five distinct winners from a million weighted entries (Efraimidis–Spirakis keys + argtopk).
    let n = 1_000_000;
    let w: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 3.0 }).collect();
    let total: f64 = w.iter().sum();
    let p: Vec<f64> = w.iter().map(|v| v / total).collect();
    let winners = rng.choice(n, &[5], false, Some(&p), 5)?.compute()?;
    println!("5 weighted picks without replacement from 1e6: {winners}");

    // A permutation of a million positions, and a bootstrap resample of a dataset.
    let t = Instant::now();
    let perm = rng.permutation(n, 100_000)?.compute()?;
    let mut seen = vec![false; n];
    for &i in perm.iter() {
        seen[i as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
    println!(
        "permutation(1e6): a true permutation in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let data = BlockArray::arange(0.0f64, 1000.0, 1.0, 100)?;
    let boot = rng.choice_of(&data, &[1000], true, None, 250)?;
    let bm = boot.mean(None, false)?.compute()?;
    println!(
        "bootstrap mean of 0..1000: {:.2} (data mean 499.5, standard error 9.1)",
        bm.into_raw_vec_and_offset().0[0]
    );
    Ok(())
}
