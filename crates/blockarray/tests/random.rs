//! Random arrays: the same values for a seed whatever the chunking and the scheduler
//! (proptest over shapes, irregular chunkings and both schedulers), the distributions against
//! their exact CDFs and PMFs (Kolmogorov–Smirnov and chi-square tests with fixed seeds and
//! bounds at p ≈ 0.001, so a wrong sampler fails), moments against k·σ/√n bounds,
//! permutations are permutations, choices without replacement are distinct, weighted choice
//! frequencies, bad parameters give errors naming them, keys hash every parameter.

use blockarray::random::Rng;
use blockarray::{BlockArray, ChunkSpec, Result, s};
use ndarray::{ArrayD, array};
use proptest::prelude::*;
use sched_sync::SyncScheduler;

mod common;
use common::scheduler;

fn sync_values<T: blockarray::Element>(x: &BlockArray<T>) -> Vec<T> {
    x.compute_with(&SyncScheduler::new())
        .unwrap()
        .into_raw_vec_and_offset()
        .0
}

// ---------------------------------------------------------------------------------------
// Reference CDFs.

/// erf, Abramowitz–Stegun 7.1.26 (absolute error below 1.5e-7, far below the KS bounds).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// The Kolmogorov–Smirnov statistic of `sample` against `cdf`, checked against the
/// p ≈ 0.001 critical value 1.95/√n.
fn ks(what: &str, mut sample: Vec<f64>, cdf: impl Fn(f64) -> f64) {
    sample.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = sample.len() as f64;
    let d = sample
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    let crit = 1.95 / n.sqrt();
    assert!(d < crit, "{what}: KS statistic {d} ≥ {crit}");
}

/// Pearson's chi-square of integer `sample` against `pmf`, bins merged until each expects at
/// least 5; the bound is the df + 4.5·√(2·df) (≈ p 0.001 for these df).
fn chi_square(what: &str, sample: &[i64], pmf: impl Fn(i64) -> f64, lo: i64, hi: i64) {
    let n = sample.len() as f64;
    let mut bins: Vec<(f64, f64)> = Vec::new(); // (expected, observed)
    let mut acc = (0.0, 0.0);
    let mut counts = std::collections::HashMap::new();
    for &v in sample {
        assert!((lo..=hi).contains(&v), "{what}: {v} outside [{lo}, {hi}]");
        *counts.entry(v).or_insert(0.0) += 1.0;
    }
    let mut total_p = 0.0;
    for k in lo..=hi {
        let p = pmf(k);
        total_p += p;
        acc.0 += n * p;
        acc.1 += counts.get(&k).copied().unwrap_or(0.0);
        if acc.0 >= 5.0 {
            bins.push(acc);
            acc = (0.0, 0.0);
        }
    }
    // The mass outside [lo, hi] (and a short last bin) joins the last bin.
    let last = bins.last_mut().unwrap();
    last.0 += acc.0 + n * (1.0 - total_p).max(0.0);
    last.1 += acc.1;
    let stat: f64 = bins.iter().map(|(e, o)| (o - e) * (o - e) / e).sum();
    let df = (bins.len() - 1) as f64;
    let bound = df + 4.5 * (2.0 * df).sqrt();
    assert!(
        stat < bound,
        "{what}: chi-square {stat} ≥ {bound} (df {df})"
    );
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0),
    )
}

/// The sample mean within 5 standard errors of `mean` (the true variance `var`).
fn check_mean(what: &str, v: &[f64], mean: f64, var: f64) {
    let (m, _) = mean_var(v);
    let se = (var / v.len() as f64).sqrt();
    assert!(
        (m - mean).abs() < 5.0 * se,
        "{what}: mean {m}, want {mean} ± {}",
        5.0 * se
    );
}

const N: usize = 20_000;

fn f64s(x: Result<BlockArray<f64>>) -> Vec<f64> {
    sync_values(&x.unwrap())
}

// ---------------------------------------------------------------------------------------
// Chunking and scheduler independence.

/// Every distribution, by index, as f64 values of `shape` in `chunks`.
fn draw(which: usize, seed: u64, shape: &[usize], chunks: ChunkSpec) -> BlockArray<f64> {
    let rng = Rng::new(seed);
    let as_f64 = |x: BlockArray<i64>| x.astype::<f64>();
    match which {
        0 => rng.uniform(-2.0, 3.0, shape, chunks),
        1 => rng.normal(1.0, 2.0, shape, chunks),
        2 => rng.exponential(1.5, shape, chunks),
        3 => rng.lognormal(0.1, 0.7, shape, chunks),
        4 => rng.gamma(0.4, 2.0, shape, chunks),
        5 => rng.gamma(7.5, 0.5, shape, chunks),
        6 => rng.beta(0.3, 2.5, shape, chunks),
        7 => rng.standard_t(3.0, shape, chunks),
        8 => rng.chisquare(2.5, shape, chunks),
        9 => rng.poisson(3.0, shape, chunks).map(as_f64),
        10 => rng.poisson(250.0, shape, chunks).map(as_f64),
        11 => rng.binomial(20, 0.2, shape, chunks).map(as_f64),
        12 => rng.binomial(500, 0.6, shape, chunks).map(as_f64),
        13 => rng.integers::<i64>(-5, 9, shape, chunks).map(as_f64),
        14 => rng.laplace(1.0, 2.0, shape, chunks),
        15 => rng.logistic(-1.0, 0.5, shape, chunks),
        16 => rng.gumbel(0.5, 1.5, shape, chunks),
        17 => rng.rayleigh(2.0, shape, chunks),
        18 => rng.weibull(0.7, shape, chunks),
        19 => rng.pareto(2.5, shape, chunks),
        20 => rng.standard_cauchy(shape, chunks),
        21 => rng.f(3.0, 8.0, shape, chunks),
        22 => rng.geometric(0.2, shape, chunks).map(as_f64),
        23 => rng.negative_binomial(2.5, 0.3, shape, chunks).map(as_f64),
        24 => rng.wald(1.5, 2.0, shape, chunks),
        25 => rng.zipf(1.7, shape, chunks).map(as_f64),
        26 => rng.hypergeometric(30, 20, 15, shape, chunks).map(as_f64),
        27 => rng.power(0.6, shape, chunks),
        28 => rng.triangular(-1.0, 2.0, 2.5, shape, chunks),
        _ => unreachable!(),
    }
    .unwrap()
}
const DISTRIBUTIONS: usize = 29;

/// A random shape of 1–3 axes and two chunkings of it (irregular block lengths).
fn shape_and_chunkings() -> impl Strategy<Value = (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>)> {
    prop::collection::vec(1usize..9, 1..4).prop_flat_map(|shape| {
        let axis = |n: usize| {
            prop::collection::vec(1usize..5, n).prop_map(move |lens| {
                let mut out = Vec::new();
                let mut left = n;
                for l in lens {
                    if left == 0 {
                        break;
                    }
                    let l = l.min(left);
                    out.push(l);
                    left -= l;
                }
                out
            })
        };
        let chunking = shape.iter().map(|&n| axis(n)).collect::<Vec<_>>();
        (Just(shape), chunking.clone(), chunking)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_values_whatever_the_chunking_and_scheduler(
        (shape, a, b) in shape_and_chunkings(),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        for which in 0..DISTRIBUTIONS {
            let x = draw(which, seed, &shape, ChunkSpec::Explicit(a.clone()));
            let y = draw(which, seed, &shape, ChunkSpec::Explicit(b.clone()));
            let xs = x.compute_with(&*scheduler(threaded)).unwrap();
            let ys = y.compute_with(&*scheduler(!threaded)).unwrap();
            prop_assert_eq!(xs.shape(), &shape[..]);
            // Bitwise equal (NaN-free: every distribution here gives finite values).
            prop_assert_eq!(&xs, &ys, "distribution {}", which);
            // A strided slice reads the same elements.
            let sliced = x.slice(s![1..;2]).unwrap().compute().unwrap();
            let n0 = shape[0];
            let want = xs.slice_axis(ndarray::Axis(0), ndarray::Slice::new(1, Some(n0 as isize), 2)).to_owned();
            prop_assert_eq!(sliced, want);
        }
    }

    #[test]
    fn multivariate_normal_rows_whatever_the_chunking(
        rows in 1usize..20, c1 in 1usize..7, c2 in 1usize..7, seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        let rng = Rng::new(seed);
        let cov = array![[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]];
        let mean = [1.0, 0.0, -3.0];
        let x = rng.multivariate_normal::<f64>(&mean, &cov, &[rows], [c1, 1]).unwrap();
        let y = rng.multivariate_normal::<f64>(&mean, &cov, &[rows], [c2, 3]).unwrap();
        // The last axis is never split.
        prop_assert_eq!(x.chunks().axes()[1].clone(), vec![3]);
        let xs = x.compute_with(&*scheduler(threaded)).unwrap();
        prop_assert_eq!(&xs, &y.compute_with(&*scheduler(!threaded)).unwrap());
        // One column read alone has the values of the whole rows.
        let col = x.slice(s![.., 2]).unwrap().compute().unwrap();
        prop_assert_eq!(col, xs.slice(ndarray::s![.., 2]).to_owned().into_dyn());
        // Multinomial and Dirichlet rows likewise.
        let m1 = rng.multinomial(50, &[0.1, 0.6, 0.3], &[rows, 2], [c1, 1, 2]).unwrap();
        let m2 = rng.multinomial(50, &[0.1, 0.6, 0.3], &[rows, 2], [c2, 2, 1]).unwrap();
        prop_assert_eq!(m1.chunks().axes()[2].clone(), vec![3]);
        let m1v = m1.compute_with(&*scheduler(threaded)).unwrap();
        prop_assert_eq!(&m1v, &m2.compute_with(&*scheduler(!threaded)).unwrap());
        let mcol = m2.slice(s![.., .., 1..]).unwrap().compute().unwrap();
        prop_assert_eq!(mcol, m1v.slice(ndarray::s![.., .., 1..]).to_owned().into_dyn());
        let d1 = rng.dirichlet::<f64>(&[0.2, 1.0, 3.0, 0.5], &[rows], [c1, 4]).unwrap();
        let d2 = rng.dirichlet::<f64>(&[0.2, 1.0, 3.0, 0.5], &[rows], [c2, 1]).unwrap();
        let d1v = d1.compute_with(&*scheduler(threaded)).unwrap();
        prop_assert_eq!(&d1v, &d2.compute_with(&*scheduler(!threaded)).unwrap());
        let dcol = d2.slice(s![.., 3]).unwrap().compute().unwrap();
        prop_assert_eq!(dcol, d1v.slice(ndarray::s![.., 3]).to_owned().into_dyn());
    }

    #[test]
    fn permutation_is_a_permutation_whatever_the_chunking(
        n in 0usize..300, c1 in 1usize..80, c2 in 1usize..80, seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        let rng = Rng::new(seed);
        let a = rng.permutation(n, c1).unwrap().compute_with(&*scheduler(threaded)).unwrap();
        let b = rng.permutation(n, c2).unwrap().compute_with(&*scheduler(!threaded)).unwrap();
        prop_assert_eq!(&a, &b);
        let mut sorted = a.clone().into_raw_vec_and_offset().0;
        sorted.sort();
        prop_assert_eq!(sorted, (0..n as i64).collect::<Vec<_>>());
        // permutation_of(arange(n)) is the same permutation, whatever x's chunks.
        if n > 0 {
            let x = BlockArray::arange(0i64, n as i64, 1, c2).unwrap();
            prop_assert_eq!(rng.permutation_of(&x).unwrap().compute().unwrap(), a.clone());
            prop_assert_eq!(rng.shuffle(&x).unwrap().compute().unwrap(), a);
        }
    }

    #[test]
    fn choice_whatever_the_chunking(
        n in 1usize..60, k in 0usize..60, c1 in 1usize..20, c2 in 1usize..20,
        seed in any::<u64>(), replace in any::<bool>(), weighted in any::<bool>(),
        threaded in any::<bool>(),
    ) {
        let rng = Rng::new(seed);
        // Weights with some zeros (about every fourth entry).
        let w: Vec<f64> = (0..n).map(|i| if (i * 7 + (seed % 4) as usize).is_multiple_of(4) { 0.0 } else { (i % 5 + 1) as f64 }).collect();
        let total: f64 = w.iter().sum();
        let p: Option<Vec<f64>> = (weighted && total > 0.0).then(|| w.iter().map(|v| v / total).collect());
        let nonzero = if p.is_some() { w.iter().filter(|&&v| v > 0.0).count() } else { n };
        let k = if replace { k } else { k.min(nonzero) };
        let a = rng.choice(n, &[k], replace, p.as_deref(), c1).unwrap();
        let b = rng.choice(n, &[k], replace, p.as_deref(), c2).unwrap();
        let av = a.compute_with(&*scheduler(threaded)).unwrap().into_raw_vec_and_offset().0;
        prop_assert_eq!(&av, &b.compute_with(&*scheduler(!threaded)).unwrap().into_raw_vec_and_offset().0);
        prop_assert_eq!(av.len(), k);
        prop_assert!(av.iter().all(|&i| (0..n as i64).contains(&i)));
        if let Some(p) = &p {
            prop_assert!(av.iter().all(|&i| p[i as usize] > 0.0), "zero weight picked: {:?}", av);
        }
        if !replace {
            let mut d = av.clone();
            d.sort();
            d.dedup();
            prop_assert_eq!(d.len(), k, "repeated indices without replacement: {:?}", av);
        }
        // choice_of(arange(n)) takes the same indices.
        let x = BlockArray::arange(0i64, n as i64, 1, c2).unwrap();
        let picked = rng.choice_of(&x, &[k], replace, p.as_deref(), c1).unwrap();
        prop_assert_eq!(picked.compute().unwrap().into_raw_vec_and_offset().0, av);
    }
}

#[test]
fn weighted_choice_without_replacement_never_picks_a_zero_weight_before_a_positive_one() {
    // A subnormal weight's key divides to -inf, where zero weights are; it must still rank
    // above them (NumPy: always [2, 1]).
    for seed in 0..50 {
        let x = Rng::new(seed)
            .choice(3, &[2], false, Some(&[0.0, 5e-324, 1.0]), 2)
            .unwrap();
        assert_eq!(sync_values(&x), vec![2, 1], "seed {seed}");
    }
    // Two equal subnormal weights are equally likely first (their keys tied at the lowest
    // float, and the first index always won); NumPy picks {0, 2} about half the time.
    let first_is_2 = (0..400)
        .filter(|&seed| {
            let x = Rng::new(seed)
                .choice(3, &[1], false, Some(&[5e-324, 5e-324, 1.0]), 1)
                .unwrap();
            let y = Rng::new(seed)
                .choice(3, &[2], false, Some(&[1.0, 5e-324, 5e-324]), 2)
                .unwrap();
            assert_eq!(sync_values(&x), vec![2], "seed {seed}");
            sync_values(&y)[1] == 2
        })
        .count();
    assert!((140..260).contains(&first_is_2), "{first_is_2} of 400");
}

#[test]
fn choice_with_an_nd_size() {
    let rng = Rng::new(11);
    // A 0-d sample (NumPy's size=None).
    for replace in [false, true] {
        let x = rng.choice(50, &[], replace, None, 1).unwrap();
        assert_eq!(x.shape(), &[] as &[usize]);
        let v = sync_values(&x);
        assert_eq!(
            v,
            sync_values(&rng.choice(50, &[1], replace, None, 1).unwrap())
        );
        let a = BlockArray::arange(100i64, 150, 1, 9).unwrap();
        let y = rng.choice_of(&a, &[], replace, None, 1).unwrap();
        assert_eq!(sync_values(&y), vec![v[0] + 100]);
    }
    for replace in [false, true] {
        let x = rng.choice(50, &[4, 5], replace, None, [3, 2]).unwrap();
        assert_eq!(x.shape(), &[4, 5]);
        assert_eq!(x.chunks().axes()[0], vec![3, 1]);
        let v = sync_values(&x);
        let flat = sync_values(&rng.choice(50, &[20], replace, None, 7).unwrap());
        assert_eq!(v, flat);
        let a = BlockArray::arange(100i64, 150, 1, 9).unwrap();
        let picked = rng.choice_of(&a, &[4, 5], replace, None, 2).unwrap();
        assert_eq!(picked.shape(), &[4, 5]);
        assert_eq!(
            sync_values(&picked),
            flat.iter().map(|i| i + 100).collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Distributions against exact CDFs and PMFs.

#[test]
fn continuous_distributions_match_their_cdfs() {
    let rng = Rng::new(20_260_101);
    let shape = [N];
    let c = 3_000;
    ks("uniform", f64s(rng.uniform(-1.0, 3.0, &shape, c)), |x| {
        ((x + 1.0) / 4.0).clamp(0.0, 1.0)
    });
    ks("normal", f64s(rng.normal(2.0, 3.0, &shape, c)), |x| {
        normal_cdf((x - 2.0) / 3.0)
    });
    ks("exponential", f64s(rng.exponential(2.5, &shape, c)), |x| {
        1.0 - (-x / 2.5).exp()
    });
    ks("lognormal", f64s(rng.lognormal(0.3, 0.8, &shape, c)), |x| {
        normal_cdf((x.ln() - 0.3) / 0.8)
    });
    // Erlang(3, scale 2): Marsaglia–Tsang proper.
    ks("gamma(3, 2)", f64s(rng.gamma(3.0, 2.0, &shape, c)), |x| {
        let y = x / 2.0;
        1.0 - (-y).exp() * (1.0 + y + y * y / 2.0)
    });
    // Gamma(1/2, 1) is Z²/2: the shape < 1 boost.
    ks("gamma(0.5, 1)", f64s(rng.gamma(0.5, 1.0, &shape, c)), |x| {
        erf(x.sqrt())
    });
    // Beta(2, 3): I_x(2, 3) = Σ_{j=2..4} C(4, j) x^j (1-x)^(4-j).
    ks("beta(2, 3)", f64s(rng.beta(2.0, 3.0, &shape, c)), |x| {
        6.0 * x.powi(2) * (1.0 - x).powi(2) + 4.0 * x.powi(3) * (1.0 - x) + x.powi(4)
    });
    // Beta(1/2, 1/2): the arcsine law (small parameters).
    ks("beta(0.5, 0.5)", f64s(rng.beta(0.5, 0.5, &shape, c)), |x| {
        2.0 / std::f64::consts::PI * x.sqrt().asin()
    });
    // t with 1 degree of freedom is Cauchy; with 2 it has a closed form.
    ks("standard_t(1)", f64s(rng.standard_t(1.0, &shape, c)), |x| {
        0.5 + x.atan() / std::f64::consts::PI
    });
    ks("standard_t(2)", f64s(rng.standard_t(2.0, &shape, c)), |x| {
        0.5 + x / (2.0 * (2.0 + x * x).sqrt())
    });
    ks("chisquare(4)", f64s(rng.chisquare(4.0, &shape, c)), |x| {
        1.0 - (-x / 2.0).exp() * (1.0 + x / 2.0)
    });
    ks("chisquare(1)", f64s(rng.chisquare(1.0, &shape, c)), |x| {
        erf((x / 2.0).sqrt())
    });
    ks(
        "laplace(1, 2)",
        f64s(rng.laplace(1.0, 2.0, &shape, c)),
        |x| {
            if x < 1.0 {
                0.5 * ((x - 1.0) / 2.0).exp()
            } else {
                1.0 - 0.5 * (-(x - 1.0) / 2.0).exp()
            }
        },
    );
    ks(
        "logistic(1, 2)",
        f64s(rng.logistic(1.0, 2.0, &shape, c)),
        |x| 1.0 / (1.0 + (-(x - 1.0) / 2.0).exp()),
    );
    ks("gumbel(1, 2)", f64s(rng.gumbel(1.0, 2.0, &shape, c)), |x| {
        (-(-(x - 1.0) / 2.0).exp()).exp()
    });
    ks("rayleigh(2)", f64s(rng.rayleigh(2.0, &shape, c)), |x| {
        1.0 - (-x * x / 8.0).exp()
    });
    for a in [0.5, 1.5] {
        ks(
            &format!("weibull({a})"),
            f64s(rng.weibull(a, &shape, c)),
            |x| 1.0 - (-x.powf(a)).exp(),
        );
    }
    ks("pareto(3)", f64s(rng.pareto(3.0, &shape, c)), |x| {
        1.0 - (1.0 + x).powf(-3.0)
    });
    ks(
        "standard_cauchy",
        f64s(rng.standard_cauchy(&shape, c)),
        |x| 0.5 + x.atan() / std::f64::consts::PI,
    );
    ks("power(3)", f64s(rng.power(3.0, &shape, c)), |x| x.powi(3));
    ks(
        "triangular(-1, 0, 3)",
        f64s(rng.triangular(-1.0, 0.0, 3.0, &shape, c)),
        |x| {
            if x <= 0.0 {
                (x + 1.0).powi(2) / 4.0
            } else {
                1.0 - (3.0 - x).powi(2) / 12.0
            }
        },
    );
    // Wald(μ = 1, λ = 3).
    ks("wald(1, 3)", f64s(rng.wald(1.0, 3.0, &shape, c)), |x| {
        let r = (3.0 / x).sqrt();
        normal_cdf(r * (x - 1.0)) + 6.0f64.exp() * normal_cdf(-r * (x + 1.0))
    });
    // Dirichlet marginals: X_0 ~ Beta(α_0, α_sum - α_0) = Beta(2, 3).
    let dir = Rng::new(5)
        .dirichlet::<f64>(&[2.0, 1.5, 1.5], &[N], [c, 3])
        .unwrap()
        .compute()
        .unwrap();
    assert!(
        dir.outer_iter()
            .all(|r| (r.sum() - 1.0).abs() < 1e-12 && r.iter().all(|&v| v >= 0.0))
    );
    ks(
        "dirichlet marginal",
        dir.index_axis(ndarray::Axis(1), 0)
            .iter()
            .copied()
            .collect(),
        |x| 6.0 * x.powi(2) * (1.0 - x).powi(2) + 4.0 * x.powi(3) * (1.0 - x) + x.powi(4),
    );
    // Small concentrations: still on the simplex, no NaN.
    let small = Rng::new(5)
        .dirichlet::<f64>(&[1e-3, 1e-3, 1e-3], &[1000], [300, 3])
        .unwrap()
        .compute()
        .unwrap();
    assert!(
        small
            .outer_iter()
            .all(|r| (r.sum() - 1.0).abs() < 1e-9 && r.iter().all(|&v| v >= 0.0))
    );
    // F(2, d2) has a closed-form CDF.
    ks("f(2, 5)", f64s(rng.f(2.0, 5.0, &shape, c)), |x| {
        1.0 - (1.0 + 2.0 * x / 5.0).powf(-2.5)
    });
}

#[test]
fn a_wrong_distribution_fails_the_ks_test() {
    // The test is able to fail: gamma(3, 2) values against the CDF of gamma(3, 2.2).
    let v = f64s(Rng::new(3).gamma(3.0, 2.0, &[N], 5000));
    let r = std::panic::catch_unwind(|| {
        ks("wrong", v, |x| {
            let y = x / 2.2;
            1.0 - (-y).exp() * (1.0 + y + y * y / 2.0)
        })
    });
    assert!(r.is_err());
}

fn poisson_pmf(lam: f64) -> impl Fn(i64) -> f64 {
    move |k| {
        let mut p = (-lam).exp();
        for j in 1..=k {
            p *= lam / j as f64;
        }
        p
    }
}

fn binomial_pmf(n: i64, p: f64) -> impl Fn(i64) -> f64 {
    // In logarithms: (1 - p)^n underflows for large n.
    move |k| {
        let mut v = n as f64 * (1.0 - p).ln();
        for j in 0..k {
            v += ((n - j) as f64 / (j + 1) as f64).ln() + (p / (1.0 - p)).ln();
        }
        v.exp()
    }
}

#[test]
fn discrete_distributions_match_their_pmfs() {
    let rng = Rng::new(77);
    let c = 3_000;
    let counts = |x: Result<BlockArray<i64>>| sync_values(&x.unwrap());
    // Small λ (multiplication method) and large λ (transformed rejection).
    for lam in [0.7, 3.5, 40.0] {
        let v = counts(rng.poisson(lam, &[N], c));
        chi_square(
            &format!("poisson({lam})"),
            &v,
            poisson_pmf(lam),
            0,
            (lam * 4.0 + 20.0) as i64,
        );
        let f: Vec<f64> = v.iter().map(|&k| k as f64).collect();
        check_mean(&format!("poisson({lam})"), &f, lam, lam);
    }
    let big = counts(rng.poisson(1e6, &[N], c));
    let f: Vec<f64> = big.iter().map(|&k| k as f64).collect();
    check_mean("poisson(1e6)", &f, 1e6, 1e6);
    let (_, var) = mean_var(&f);
    assert!((var / 1e6 - 1.0).abs() < 0.1, "poisson(1e6) variance {var}");
    // Inversion (n·p < 10) and BTPE (n·p ≥ 10).
    for (n, p) in [(20, 0.3), (12, 0.05), (400, 0.4), (1000, 0.97)] {
        let v = counts(rng.binomial(n, p, &[N], c));
        chi_square(&format!("binomial({n}, {p})"), &v, binomial_pmf(n, p), 0, n);
        let f: Vec<f64> = v.iter().map(|&k| k as f64).collect();
        check_mean(
            &format!("binomial({n}, {p})"),
            &f,
            n as f64 * p,
            n as f64 * p * (1.0 - p),
        );
    }
    for p in [0.3, 0.9] {
        let v = counts(rng.geometric(p, &[N], c));
        chi_square(
            &format!("geometric({p})"),
            &v,
            |k| (1.0 - p).powi(k as i32 - 1) * p,
            1,
            80,
        );
    }
    for (n, p) in [(3.0, 0.4), (2.5, 0.7), (0.5, 0.2)] {
        let v = counts(rng.negative_binomial(n, p, &[N], c));
        let pmf = move |k: i64| {
            let mut v = n * f64::ln(p);
            for j in 0..k {
                v += ((j as f64 + n) / (j + 1) as f64).ln() + (1.0 - p).ln();
            }
            v.exp()
        };
        chi_square(&format!("negative_binomial({n}, {p})"), &v, pmf, 0, 200);
    }
    // Zipf(2): P(k) = 6/(π² k²).
    let z = counts(rng.zipf(2.0, &[N], c));
    let pi2 = std::f64::consts::PI.powi(2);
    let zmax = *z.iter().max().unwrap();
    chi_square("zipf(2)", &z, |k| 6.0 / (pi2 * (k as f64).powi(2)), 1, zmax);
    // Hypergeometric(7 good, 5 bad, 4 drawn).
    let choose = |n: i64, k: i64| (0..k).fold(1.0, |acc, j| acc * (n - j) as f64 / (j + 1) as f64);
    let h = counts(rng.hypergeometric(7, 5, 4, &[N], c));
    chi_square(
        "hypergeometric(7, 5, 4)",
        &h,
        |k| choose(7, k) * choose(5, 4 - k) / choose(12, 4),
        0,
        4,
    );
    let h = counts(rng.hypergeometric(600, 900, 700, &[N], c));
    let f: Vec<f64> = h.iter().map(|&k| k as f64).collect();
    let (nn, kk, dd) = (1500.0, 600.0, 700.0);
    check_mean(
        "hypergeometric(600, 900, 700)",
        &f,
        dd * kk / nn,
        dd * kk / nn * (1.0 - kk / nn) * (nn - dd) / (nn - 1.0),
    );
    // Multinomial: rows sum to n, each component is binomial(n, p_j).
    let m = rng
        .multinomial(30, &[0.2, 0.5, 0.3], &[N], [c, 3])
        .unwrap()
        .compute()
        .unwrap();
    assert!(
        m.outer_iter()
            .all(|r| r.sum() == 30 && r.iter().all(|&v| v >= 0))
    );
    for (j, p) in [0.2, 0.5, 0.3].into_iter().enumerate() {
        chi_square(
            &format!("multinomial component {j}"),
            &m.index_axis(ndarray::Axis(1), j)
                .iter()
                .copied()
                .collect::<Vec<i64>>(),
            binomial_pmf(30, p),
            0,
            30,
        );
    }
    // The last probability is what the others leave (NumPy ignores the given value).
    let m = rng
        .multinomial(10, &[0.5, 0.5, 0.7], &[100], [50, 3])
        .unwrap()
        .compute()
        .unwrap();
    assert!(m.index_axis(ndarray::Axis(1), 2).iter().all(|&v| v == 0));
    // Degenerate parameters.
    assert!(
        counts(rng.hypergeometric(5, 0, 3, &[50], 7))
            .iter()
            .all(|&k| k == 3)
    );
    assert!(
        counts(rng.hypergeometric(5, 5, 0, &[50], 7))
            .iter()
            .all(|&k| k == 0)
    );
    assert!(counts(rng.geometric(1.0, &[50], 7)).iter().all(|&k| k == 1));
    assert!(
        counts(rng.negative_binomial(2.0, 1.0, &[50], 7))
            .iter()
            .all(|&k| k == 0)
    );
    assert!(counts(rng.poisson(0.0, &[50], 7)).iter().all(|&k| k == 0));
    assert!(
        counts(rng.binomial(9, 0.0, &[50], 7))
            .iter()
            .all(|&k| k == 0)
    );
    assert!(
        counts(rng.binomial(9, 1.0, &[50], 7))
            .iter()
            .all(|&k| k == 9)
    );
    assert!(
        counts(rng.binomial(0, 0.5, &[50], 7))
            .iter()
            .all(|&k| k == 0)
    );
    assert!(
        f64s(rng.gamma(0.0, 1.0, &[50], 7))
            .iter()
            .all(|&v| v == 0.0)
    );
    assert!(
        f64s(rng.exponential(0.0, &[50], 7))
            .iter()
            .all(|&v| v == 0.0)
    );
}

#[test]
fn a_wrong_pmf_fails_the_chi_square_test() {
    let v = sync_values(&Rng::new(5).poisson(3.5, &[N], 4000).unwrap());
    let r = std::panic::catch_unwind(|| chi_square("wrong", &v, poisson_pmf(3.8), 0, 40));
    assert!(r.is_err());
}

#[test]
fn multivariate_normal_moments_and_identity() {
    let rng = Rng::new(99);
    let cov = array![[4.0, 1.2, 0.0], [1.2, 1.0, 0.3], [0.0, 0.3, 0.5]];
    let mean = [1.0, -2.0, 0.5];
    let n = 20_000;
    let x = rng
        .multivariate_normal::<f64>(&mean, &cov, &[n], [2_500, 3])
        .unwrap()
        .compute()
        .unwrap();
    for i in 0..3 {
        let col: Vec<f64> = x.slice(ndarray::s![.., i]).to_vec();
        check_mean(&format!("mvn mean {i}"), &col, mean[i], cov[[i, i]]);
        for j in 0..3 {
            let colj: Vec<f64> = x.slice(ndarray::s![.., j]).to_vec();
            let c: f64 = col
                .iter()
                .zip(&colj)
                .map(|(a, b)| (a - mean[i]) * (b - mean[j]))
                .sum::<f64>()
                / n as f64;
            // Var of a sample covariance: (σ_ii σ_jj + σ_ij²)/n.
            let se = ((cov[[i, i]] * cov[[j, j]] + cov[[i, j]].powi(2)) / n as f64).sqrt();
            assert!((c - cov[[i, j]]).abs() < 5.0 * se, "cov[{i}, {j}] = {c}");
        }
    }
    // Identity covariance and zero mean: exactly the standard normal array of shape (..., d).
    let eye = ndarray::Array2::<f64>::eye(2);
    let z = rng
        .multivariate_normal::<f64>(&[0.0, 0.0], &eye, &[5, 4], [2, 3, 1])
        .unwrap();
    assert_eq!(z.shape(), &[5, 4, 2]);
    assert_eq!(
        z.compute().unwrap(),
        rng.normal::<f64>(0.0, 1.0, &[5, 4, 2], 3)
            .unwrap()
            .compute()
            .unwrap()
    );
    // A singular (semi-definite) covariance: the second component is twice the first.
    let sing = array![[1.0, 2.0], [2.0, 4.0]];
    let y = rng
        .multivariate_normal::<f64>(&[0.0, 0.0], &sing, &[100], 30)
        .unwrap()
        .compute()
        .unwrap();
    for r in y.outer_iter() {
        assert!((r[1] - 2.0 * r[0]).abs() < 1e-9 * (1.0 + r[0].abs()));
    }
}

#[test]
fn weighted_choice_frequencies() {
    let p = [0.5, 0.0, 0.2, 0.3];
    // With replacement: chi-square of the draws against p.
    let v = sync_values(&Rng::new(8).choice(4, &[N], true, Some(&p), 3_000).unwrap());
    chi_square("choice with replacement", &v, |k| p[k as usize], 0, 3);
    // Without replacement, the first pick follows p (Efraimidis–Spirakis); the second pick
    // given the first follows the remaining weights.
    let mut first = Vec::new();
    let mut second_after_0 = Vec::new();
    for seed in 0..3_000u64 {
        let v = sync_values(&Rng::new(seed).choice(4, &[2], false, Some(&p), 2).unwrap());
        first.push(v[0]);
        if v[0] == 0 {
            second_after_0.push(v[1]);
        }
    }
    chi_square("first pick", &first, |k| p[k as usize], 0, 3);
    chi_square(
        "second pick after 0",
        &second_after_0,
        |k| [0.0, 0.0, 0.4, 0.6][k as usize],
        0,
        3,
    );
    // Unweighted with replacement: uniform.
    let u = sync_values(&Rng::new(9).choice(7, &[N], true, None, 3_000).unwrap());
    chi_square("uniform choice", &u, |_| 1.0 / 7.0, 0, 6);
}

#[test]
fn permutations_are_uniform() {
    // The 6 permutations of 3 elements are equally likely.
    let perms: Vec<i64> = (0..3_000u64)
        .map(|seed| {
            let v = sync_values(&Rng::new(seed).permutation(3, 2).unwrap());
            v[0] * 3 + v[1]
        })
        .collect();
    let valid = [1, 2, 3, 5, 6, 7];
    chi_square(
        "permutations of 3",
        &perms,
        |k| if valid.contains(&k) { 1.0 / 6.0 } else { 0.0 },
        1,
        7,
    );
}

// ---------------------------------------------------------------------------------------
// Errors and keys.

fn err_mentions<T: std::fmt::Debug>(r: Result<T>, words: &[&str]) {
    let e = r.expect_err("expected an error");
    for w in words {
        assert!(e.to_string().contains(w), "{e} does not mention {w}");
    }
}

#[test]
fn bad_parameters_are_errors_naming_them() {
    let rng = Rng::new(1);
    let sh = &[4][..];
    err_mentions(
        rng.exponential::<f64>(-1.0, sh, 2),
        &["exponential", "scale"],
    );
    err_mentions(rng.exponential::<f64>(f64::NAN, sh, 2), &["scale"]);
    err_mentions(
        rng.lognormal::<f64>(0.0, -0.1, sh, 2),
        &["lognormal", "sigma"],
    );
    err_mentions(rng.lognormal::<f64>(f64::INFINITY, 1.0, sh, 2), &["mean"]);
    err_mentions(rng.gamma::<f64>(-1.0, 1.0, sh, 2), &["gamma", "shape"]);
    err_mentions(rng.gamma::<f64>(1.0, -1.0, sh, 2), &["gamma", "scale"]);
    err_mentions(rng.beta::<f64>(0.0, 1.0, sh, 2), &["beta", "a"]);
    err_mentions(rng.beta::<f64>(1.0, -2.0, sh, 2), &["beta", "b"]);
    err_mentions(rng.standard_t::<f64>(0.0, sh, 2), &["standard_t", "df"]);
    err_mentions(rng.chisquare::<f64>(-3.0, sh, 2), &["chisquare", "df"]);
    err_mentions(rng.poisson(-1.0, sh, 2), &["poisson", "lam"]);
    err_mentions(rng.poisson(1e19, sh, 2), &["poisson", "lam", "too large"]);
    err_mentions(rng.binomial(-1, 0.5, sh, 2), &["binomial", "n"]);
    err_mentions(rng.binomial(5, 1.5, sh, 2), &["binomial", "p"]);
    err_mentions(rng.binomial(5, f64::NAN, sh, 2), &["binomial", "p"]);
    err_mentions(rng.laplace::<f64>(0.0, -1.0, sh, 2), &["laplace", "scale"]);
    err_mentions(
        rng.logistic::<f64>(f64::NAN, 1.0, sh, 2),
        &["logistic", "loc"],
    );
    err_mentions(rng.gumbel::<f64>(0.0, -1.0, sh, 2), &["gumbel", "scale"]);
    err_mentions(rng.rayleigh::<f64>(-1.0, sh, 2), &["rayleigh", "scale"]);
    err_mentions(rng.weibull::<f64>(-1.0, sh, 2), &["weibull", "a"]);
    err_mentions(rng.pareto::<f64>(0.0, sh, 2), &["pareto", "a"]);
    err_mentions(rng.f::<f64>(0.0, 1.0, sh, 2), &["f:", "dfnum"]);
    err_mentions(rng.f::<f64>(1.0, -1.0, sh, 2), &["f:", "dfden"]);
    err_mentions(rng.geometric(0.0, sh, 2), &["geometric", "p"]);
    err_mentions(rng.geometric(1.5, sh, 2), &["geometric", "p"]);
    err_mentions(
        rng.negative_binomial(0.0, 0.5, sh, 2),
        &["negative_binomial", "n"],
    );
    err_mentions(
        rng.negative_binomial(1.0, 0.0, sh, 2),
        &["negative_binomial", "p"],
    );
    err_mentions(
        rng.negative_binomial(1e10, 1e-10, sh, 2),
        &["too large", "too small"],
    );
    // Degrees of freedom whose half is 0 (the samplers need it positive): refused when the
    // array is built, not when it is computed.
    err_mentions(rng.chisquare::<f64>(5e-324, sh, 2), &["chisquare", "df"]);
    err_mentions(rng.standard_t::<f64>(5e-324, sh, 2), &["standard_t", "df"]);
    err_mentions(rng.f::<f64>(5e-324, 1.0, sh, 2), &["f", "dfnum"]);
    // NumPy's bound: ten standard deviations of the gamma rates, not a tenth of the maximum
    // on their mean (this mean is 9.2·10¹⁷; its rates reach past the Poisson sampler's range).
    err_mentions(
        rng.negative_binomial(0.01, 1.0 / (1.0 + 9.2e19), sh, 2),
        &["too large", "too small"],
    );
    // Multivariate normal: shapes, symmetry, definiteness.
    let m = [0.0, 0.0];
    err_mentions(
        rng.multivariate_normal::<f64>(&m, &array![[1.0]], sh, 2),
        &["cov", "2 × 2", "[1, 1]"],
    );
    err_mentions(
        rng.multivariate_normal::<f64>(&m, &array![[1.0, 0.5], [0.4, 1.0]], sh, 2),
        &["symmetric"],
    );
    err_mentions(
        rng.multivariate_normal::<f64>(&m, &array![[1.0, 2.0], [2.0, 1.0]], sh, 2),
        &["semi-definite"],
    );
    err_mentions(
        rng.multivariate_normal::<f64>(&m, &array![[0.0, 1.0], [1.0, 1.0]], sh, 2),
        &["semi-definite"],
    );
    err_mentions(
        rng.multivariate_normal::<f64>(&[f64::NAN, 0.0], &array![[1.0, 0.0], [0.0, 1.0]], sh, 2),
        &["mean[0]"],
    );
    // Choice.
    err_mentions(
        rng.choice(3, &[4], false, None, 2),
        &["larger sample", "4", "3"],
    );
    err_mentions(rng.choice(0, &[1], true, None, 2), &["empty"]);
    err_mentions(
        rng.choice(3, &[2], true, Some(&[0.5, 0.5]), 2),
        &["p has 2", "3"],
    );
    err_mentions(
        rng.choice(2, &[2], true, Some(&[0.5, 0.6]), 2),
        &["sum to 1"],
    );
    err_mentions(rng.choice(2, &[2], true, Some(&[1.5, -0.5]), 2), &["p[1]"]);
    err_mentions(
        rng.choice(3, &[2], false, Some(&[1.0, 0.0, 0.0]), 2),
        &["non-zero", "1", "2"],
    );
    let a2 = BlockArray::<f64>::zeros(&[2, 2], 1).unwrap();
    err_mentions(
        rng.choice_of(&a2, &[1], true, None, 1),
        &["1-dimensional", "[2, 2]"],
    );
    let s0 = BlockArray::from_array(ndarray::arr0(1.0), 1).unwrap();
    err_mentions(rng.permutation_of(&s0), &["0-d"]);
    // Empty samples are fine.
    assert_eq!(rng.choice(0, &[0], false, None, 1).unwrap().shape(), &[0]);
    assert_eq!(rng.permutation(0, 1).unwrap().compute().unwrap().len(), 0);
}

/// Permutations and choices computed in memory as long as a lazy array far larger than memory:
/// an error naming the operation and the length, not a capacity-overflow panic.
#[test]
fn in_memory_indices_too_long_to_allocate_are_errors() {
    let rng = Rng::new(1);
    let x = BlockArray::<u8>::zeros(&[1 << 59], 1 << 40).unwrap();
    let n = (1usize << 59).to_string();
    let e = rng.permutation_of(&x).unwrap_err();
    assert_eq!(e.kind(), blockarray::ErrorKind::Memory);
    err_mentions(rng.permutation_of(&x), &["permutation_of", &n]);
    err_mentions(rng.shuffle(&x), &["shuffle", &n]);
    // Without replacement the whole population is keyed.
    err_mentions(rng.choice_of(&x, &[2], false, None, 1), &["choice_of", &n]);
    let a = BlockArray::from_array(array![10.0, 20.0, 30.0], 2).unwrap();
    let many = (1usize << 61).to_string();
    err_mentions(
        rng.choice_of(&a, &[1 << 61], true, None, 1 << 40),
        &["choice_of", &many],
    );
    err_mentions(
        rng.choice_of(&a, &[1 << 61], true, Some(&[0.5, 0.25, 0.25]), 1 << 40),
        &["choice_of", &many],
    );
}

/// A `size` whose number of elements overflows `usize` is an error naming it.
#[test]
fn choice_sizes_overflowing_usize_are_errors() {
    let rng = Rng::new(1);
    let size = [1usize << 40, 1 << 40];
    err_mentions(
        rng.choice(5, &size, true, None, 1 << 20),
        &["choice", "[1099511627776, 1099511627776]"],
    );
    err_mentions(rng.choice(5, &size, false, None, 1 << 20), &["choice"]);
    let a = BlockArray::from_array(array![10.0, 20.0, 30.0], 2).unwrap();
    err_mentions(rng.choice_of(&a, &size, true, None, 1 << 20), &["choice"]);
}

#[test]
fn keys_hash_every_parameter() {
    let rng = Rng::new(1);
    let sh = &[10][..];
    let names = [
        rng.exponential::<f64>(1.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.exponential::<f64>(2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        Rng::new(2)
            .exponential::<f64>(1.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.gamma::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.gamma::<f64>(2.0, 1.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.beta::<f64>(1.0, 2.0, sh, 5).unwrap().name().to_string(),
        rng.beta::<f64>(2.0, 1.0, sh, 5).unwrap().name().to_string(),
        rng.lognormal::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.normal::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.standard_t::<f64>(3.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.chisquare::<f64>(3.0, sh, 5).unwrap().name().to_string(),
        rng.laplace::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.laplace::<f64>(2.0, 1.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.logistic::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.gumbel::<f64>(1.0, 2.0, sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.rayleigh::<f64>(3.0, sh, 5).unwrap().name().to_string(),
        rng.weibull::<f64>(3.0, sh, 5).unwrap().name().to_string(),
        rng.pareto::<f64>(3.0, sh, 5).unwrap().name().to_string(),
        rng.standard_cauchy::<f64>(sh, 5)
            .unwrap()
            .name()
            .to_string(),
        rng.f::<f64>(3.0, 4.0, sh, 5).unwrap().name().to_string(),
        rng.f::<f64>(4.0, 3.0, sh, 5).unwrap().name().to_string(),
        rng.geometric(0.5, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.negative_binomial(2.0, 0.5, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.negative_binomial(2.0, 0.6, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.poisson(3.0, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.binomial(3, 0.5, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.binomial(4, 0.5, sh, 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.choice(10, sh, true, Some(&[0.1; 10]), 5)
            .unwrap()
            .astype::<f64>()
            .name()
            .to_string(),
        rng.choice(
            10,
            sh,
            true,
            Some(&[0.2, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),
            5,
        )
        .unwrap()
        .astype::<f64>()
        .name()
        .to_string(),
        rng.multivariate_normal::<f64>(&[0.0], &array![[1.0]], &[10], 5)
            .unwrap()
            .reshape(&[10])
            .unwrap()
            .name()
            .to_string(),
        rng.multivariate_normal::<f64>(&[0.0], &array![[2.0]], &[10], 5)
            .unwrap()
            .reshape(&[10])
            .unwrap()
            .name()
            .to_string(),
    ];
    let mut unique = names.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    // Equal parameters: equal keys.
    assert_eq!(
        rng.gamma::<f64>(1.0, 2.0, sh, 5).unwrap().name(),
        rng.gamma::<f64>(1.0, 2.0, sh, 5).unwrap().name()
    );
}

#[test]
fn f32_and_integer_element_types() {
    let rng = Rng::new(4);
    let a: ArrayD<f32> = rng
        .gamma::<f32>(2.0, 1.0, &[100], 30)
        .unwrap()
        .compute()
        .unwrap();
    let b = rng
        .gamma::<f64>(2.0, 1.0, &[100], 30)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(a, b.mapv(|v| v as f32));
}

/// Integers over spans near 2⁶⁴ are uniform: a multiply-shift without rejection makes some
/// values twice as likely as others there (`span = 3·2⁶¹`: remainders mod 3 at 37.5 %, 37.5 %,
/// 25 %; `span = 2⁶³ + 2⁶²` from `i64::MIN`: the first third of the range at 50 %).
#[test]
fn integers_over_huge_spans_are_uniform() {
    let n = 200_000;
    let third = |v: &[i64], f: &dyn Fn(i64) -> usize| {
        let mut c = [0usize; 3];
        for &x in v {
            c[f(x)] += 1;
        }
        c.map(|k| k as f64 / v.len() as f64)
    };
    let rng = Rng::new(21);
    let v = sync_values(&rng.integers::<i64>(0, 3 << 61, &[n], 50_000).unwrap());
    assert!(v.iter().all(|&x| (0..3 << 61).contains(&x)));
    for (r, share) in third(&v, &|x| (x % 3) as usize).iter().enumerate() {
        assert!((share - 1.0 / 3.0).abs() < 0.01, "x % 3 == {r}: {share}");
    }
    let (low, high) = (i64::MIN, 1i64 << 62);
    let span = high as i128 - low as i128;
    let v = sync_values(&rng.integers::<i64>(low, high, &[n], 50_000).unwrap());
    let part = |x: i64| ((x as i128 - low as i128) * 3 / span) as usize;
    for (r, share) in third(&v, &part).iter().enumerate() {
        assert!((share - 1.0 / 3.0).abs() < 0.01, "third {r}: {share}");
    }
    // Choice with replacement draws the same way; a population past int64 is refused.
    let v = sync_values(&rng.choice(3 << 61, &[n], true, None, 50_000).unwrap());
    assert!(v.iter().all(|&x| (0..3 << 61).contains(&x)));
    for (r, share) in third(&v, &|x| (x % 3) as usize).iter().enumerate() {
        assert!(
            (share - 1.0 / 3.0).abs() < 0.01,
            "choice % 3 == {r}: {share}"
        );
    }
    err_mentions(
        rng.choice(1 << 63, &[4], true, None, 4),
        &["choice", "int64"],
    );
    // Small spans keep their values (a rejection there has probability span/2⁶⁴).
    let small = sync_values(&rng.integers::<i64>(3, 7, &[1000], 100).unwrap());
    assert!(small.iter().all(|&x| (3..7).contains(&x)));
}

/// `uniform` stays below `high` in `f32` too (an `f64` value just below 1 rounds to `1.0f32`),
/// and refuses a range wider than `f64` can hold (NumPy's OverflowError) instead of giving inf.
#[test]
fn uniform_stays_in_its_half_open_range() {
    // One element in 2²⁵ rounds up: scan enough to meet several.
    let rng = Rng::new(4);
    let n = 1 << 27;
    let top = rng
        .random::<f32>(&[n], 1 << 22)
        .unwrap()
        .max(None, false)
        .unwrap()
        .compute()
        .unwrap()[[]];
    assert!(top < 1.0, "{top}");
    assert_eq!(top, 1.0f32.next_down());
    let v = sync_values(&rng.uniform::<f32>(2.0, 2.0, &[5], 5).unwrap());
    assert_eq!(v, vec![2.0; 5]);
    err_mentions(
        rng.uniform::<f64>(-1e308, 1e308, &[4], 2),
        &["uniform", "overflows"],
    );
}

/// `multivariate_normal` keeps each component's own variance, however small beside another's,
/// and refuses a correlation beyond ±1 that only a tolerance relative to the largest variance
/// let through.
#[test]
fn multivariate_normal_keeps_small_variances() {
    let rng = Rng::new(8);
    let n = 20_000;
    for cov in [
        array![[1e6, 0.0], [0.0, 1e-4]],
        array![[1e4, 9e-4], [9e-4, 1e-6]],
    ] {
        let x = rng
            .multivariate_normal::<f64>(&[0.0, 0.0], &cov, &[n], [5_000, 2])
            .unwrap()
            .compute()
            .unwrap();
        for i in 0..2 {
            let col: Vec<f64> = x.slice(ndarray::s![.., i]).to_vec();
            let (_, var) = mean_var(&col);
            let want = cov[[i, i]];
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "{cov}: component {i} has variance {var}, want {want}"
            );
        }
    }
    err_mentions(
        rng.multivariate_normal::<f64>(&[0.0, 0.0], &array![[1e4, 0.15], [0.15, 1e-6]], &[4], 2),
        &["semi-definite"],
    );
    // A component of variance 0 is constant, and may not covary.
    let x = rng
        .multivariate_normal::<f64>(&[1.0, 5.0], &array![[2.0, 0.0], [0.0, 0.0]], &[100], 50)
        .unwrap()
        .compute()
        .unwrap();
    assert!(x.slice(ndarray::s![.., 1]).iter().all(|&v| v == 5.0));
    err_mentions(
        rng.multivariate_normal::<f64>(&[0.0, 0.0], &array![[2.0, 1e-30], [1e-30, 0.0]], &[4], 2),
        &["semi-definite"],
    );
}

#[test]
fn extreme_parameters_give_finite_values_in_range() {
    let rng = Rng::new(6);
    let sh = &[2_000][..];
    let finite_nonneg = |v: Vec<f64>, what: &str| {
        assert!(
            v.iter().all(|x| x.is_finite() && *x >= 0.0),
            "{what}: {v:?}"
        );
    };
    finite_nonneg(f64s(rng.gamma(1e-300, 1.0, sh, 500)), "gamma(1e-300)");
    finite_nonneg(f64s(rng.gamma(1e12, 1.0, sh, 500)), "gamma(1e12)");
    finite_nonneg(f64s(rng.chisquare(1e-300, sh, 500)), "chisquare(1e-300)");
    let b = f64s(rng.beta(1e-10, 1e-10, sh, 500));
    assert!(
        b.iter().all(|x| (0.0..=1.0).contains(x)),
        "beta(1e-10, 1e-10)"
    );
    let b = f64s(rng.beta(1e10, 3.0, sh, 500));
    assert!(b.iter().all(|x| (0.0..=1.0).contains(x)), "beta(1e10, 3)");
    assert!(
        f64s(rng.standard_t(1e-3, sh, 500))
            .iter()
            .all(|x| !x.is_nan())
    );
    assert!(
        f64s(rng.standard_t(1e12, sh, 500))
            .iter()
            .all(|x| x.is_finite())
    );
    let big = sync_values(&rng.poisson(Rng::POISSON_LAM_MAX, sh, 500).unwrap());
    assert!(big.iter().all(|&k| k > 0), "poisson(max)");
    assert!(
        sync_values(&rng.poisson(1e-300, sh, 500).unwrap())
            .iter()
            .all(|&k| k == 0)
    );
    let n = i64::MAX;
    let k = sync_values(&rng.binomial(n, 0.5, sh, 500).unwrap());
    assert!(k.iter().all(|&k| k > 0), "binomial(i64::MAX, 0.5)");
    let k = sync_values(&rng.binomial(n, 1e-300, sh, 500).unwrap());
    assert!(k.iter().all(|&k| k >= 0), "binomial(i64::MAX, 1e-300)");
    let e = f64s(rng.exponential(1e300, sh, 500));
    assert!(
        e.iter().all(|x| !x.is_nan() && *x >= 0.0),
        "exponential(1e300)"
    );
}

/// A distribution by index with parameters from `(x, y)` in `[0, 1)²`: its name, a sample,
/// and the exact mean, variance and excess kurtosis.
fn with_moments(which: usize, x: f64, y: f64, seed: u64, n: usize) -> (String, Vec<f64>, [f64; 3]) {
    let rng = Rng::new(seed);
    let c = 1_000;
    let ints =
        |r: Result<BlockArray<i64>>| sync_values(&r.unwrap()).iter().map(|&k| k as f64).collect();
    match which {
        0 => {
            let scale = 10.0 * x;
            (
                format!("exponential({scale})"),
                f64s(rng.exponential(scale, &[n], c)),
                [scale, scale * scale, 6.0],
            )
        }
        1 => {
            let (k, scale) = (0.05 + 50.0 * x, 0.1 + 5.0 * y);
            (
                format!("gamma({k}, {scale})"),
                f64s(rng.gamma(k, scale, &[n], c)),
                [k * scale, k * scale * scale, 6.0 / k],
            )
        }
        2 => {
            let (a, b) = (0.05 + 20.0 * x, 0.05 + 20.0 * y);
            let var = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            let kurt = 6.0 * ((a - b) * (a - b) * (a + b + 1.0) - a * b * (a + b + 2.0))
                / (a * b * (a + b + 2.0) * (a + b + 3.0));
            (
                format!("beta({a}, {b})"),
                f64s(rng.beta(a, b, &[n], c)),
                [a / (a + b), var, kurt],
            )
        }
        3 => {
            let df = 0.1 + 100.0 * x;
            (
                format!("chisquare({df})"),
                f64s(rng.chisquare(df, &[n], c)),
                [df, 2.0 * df, 12.0 / df],
            )
        }
        4 => {
            let df = 5.0 + 100.0 * x;
            (
                format!("standard_t({df})"),
                f64s(rng.standard_t(df, &[n], c)),
                [0.0, df / (df - 2.0), 6.0 / (df - 4.0)],
            )
        }
        5 => {
            let (m, s) = (2.0 * x - 1.0, y);
            let e = (s * s).exp();
            let var = (e - 1.0) * (2.0 * m + s * s).exp();
            let kurt = e.powi(4) + 2.0 * e.powi(3) + 3.0 * e * e - 6.0;
            (
                format!("lognormal({m}, {s})"),
                f64s(rng.lognormal(m, s, &[n], c)),
                [(m + s * s / 2.0).exp(), var, kurt],
            )
        }
        6 => {
            // λ over [0, 1e4] with many small values (both sampler branches).
            let lam = 1e4 * x.powi(3);
            (
                format!("poisson({lam})"),
                ints(rng.poisson(lam, &[n], c)),
                [lam, lam, 1.0 / lam],
            )
        }
        7 => {
            let (trials, p) = ((1e4 * x.powi(3)) as i64, y);
            let (mean, var) = (trials as f64 * p, trials as f64 * p * (1.0 - p));
            (
                format!("binomial({trials}, {p})"),
                ints(rng.binomial(trials, p, &[n], c)),
                [mean, var, (1.0 - 6.0 * p * (1.0 - p)) / var],
            )
        }
        8 => {
            let (loc, sc) = (10.0 * x - 5.0, 3.0 * y);
            (
                format!("laplace({loc}, {sc})"),
                f64s(rng.laplace(loc, sc, &[n], c)),
                [loc, 2.0 * sc * sc, 3.0],
            )
        }
        9 => {
            let (loc, sc) = (10.0 * x - 5.0, 3.0 * y);
            let var = sc * sc * std::f64::consts::PI.powi(2) / 3.0;
            (
                format!("logistic({loc}, {sc})"),
                f64s(rng.logistic(loc, sc, &[n], c)),
                [loc, var, 1.2],
            )
        }
        10 => {
            let (loc, sc) = (10.0 * x - 5.0, 3.0 * y);
            let var = sc * sc * std::f64::consts::PI.powi(2) / 6.0;
            (
                format!("gumbel({loc}, {sc})"),
                f64s(rng.gumbel(loc, sc, &[n], c)),
                [loc + 0.577_215_664_901_532_9 * sc, var, 2.4],
            )
        }
        11 => {
            let sc = 5.0 * x;
            let pi = std::f64::consts::PI;
            let kurt = -(6.0 * pi * pi - 24.0 * pi + 16.0) / ((4.0 - pi) * (4.0 - pi));
            (
                format!("rayleigh({sc})"),
                f64s(rng.rayleigh(sc, &[n], c)),
                [sc * (pi / 2.0).sqrt(), (4.0 - pi) / 2.0 * sc * sc, kurt],
            )
        }
        12 => {
            let p = 0.02 + 0.98 * x;
            let var = (1.0 - p) / (p * p);
            (
                format!("geometric({p})"),
                ints(rng.geometric(p, &[n], c)),
                [1.0 / p, var, 6.0 + p * p / (1.0 - p).max(1e-300)],
            )
        }
        13 => {
            let (k, p) = (0.1 + 20.0 * x, 0.05 + 0.95 * y);
            let (mean, var) = (k * (1.0 - p) / p, k * (1.0 - p) / (p * p));
            let kurt = 6.0 / k + p * p / (k * (1.0 - p)).max(1e-300);
            (
                format!("negative_binomial({k}, {p})"),
                ints(rng.negative_binomial(k, p, &[n], c)),
                [mean, var, kurt],
            )
        }
        _ => unreachable!(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Sample means and variances within 6 standard errors of the exact moments (the
    /// variance's standard error from the excess kurtosis), plus 3/n for discreteness (rare
    /// events), across the parameter ranges.
    #[test]
    fn moments_across_parameters(which in 0usize..14, x in 0.0f64..1.0, y in 0.0f64..1.0, seed in any::<u64>()) {
        let n = 4_000;
        let (what, v, [mean, var, kurt]) = with_moments(which, x, y, seed, n);
        prop_assert_eq!(v.len(), n);
        let nf = n as f64;
        let (m, s2) = mean_var(&v);
        let slack = 3.0 / nf;
        let se = (var / nf).sqrt();
        prop_assert!((m - mean).abs() <= 6.0 * se + slack + 1e-12 * mean.abs(), "{}: mean {} want {} ± {}", what, m, mean, 6.0 * se);
        let se2 = if var > 0.0 { var * (2.0 / (nf - 1.0) + kurt / nf).max(0.0).sqrt() } else { 0.0 };
        prop_assert!((s2 - var).abs() <= 6.0 * se2 + slack + 1e-12 * var, "{}: variance {} want {} ± {}", what, s2, var, 6.0 * se2);
    }
}

/// Wald values far from their scale (mean/scale = 10⁸) follow their law: the transformation's
/// root lost every digit to cancellation there, giving zeros and negative values.
#[test]
fn wald_with_a_huge_mean_over_scale_follows_its_law() {
    let (mu, lam) = (1e8, 1.0);
    let v = f64s(Rng::new(3).wald(mu, lam, &[20_000], 5_000));
    assert!(
        v.iter().all(|&x| x > 0.0 && x.is_finite()),
        "{:?}",
        v.iter().find(|&&x| x <= 0.0)
    );
    ks("wald(1e8, 1)", v, |x| {
        let r = (lam / x).sqrt();
        normal_cdf(r * (x / mu - 1.0)) + (2.0 * lam / mu).exp() * normal_cdf(-r * (x / mu + 1.0))
    });
}

/// Zipf values are truncated below 2⁶³ as NumPy's (rand_distr's sampler returned infinity,
/// saturated to `i64::MAX`, for 71 % of values at a = 1.01), and for a within 10⁻¹² of 1
/// (where redrawing values past 2⁶³ would never end) they come at once.
#[test]
fn zipf_near_one_is_truncated_below_two_to_the_63() {
    let rng = Rng::new(5);
    let n = 20_000;
    let v = sync_values(&rng.zipf(1.01, &[n], 5_000).unwrap());
    assert!(v.iter().all(|&k| (1..i64::MAX).contains(&k)));
    // P(k = 1 | k < 2⁶³) = 1 / Σ_{k < 2⁶³} k^-1.01 ≈ 1 / (ζ(1.01) − (2⁶³)^-0.01 / 0.01)
    let p1 = 1.0 / (100.5779 - 2f64.powf(-0.63) / 0.01);
    let ones = v.iter().filter(|&&k| k == 1).count() as f64;
    let sd = (n as f64 * p1 * (1.0 - p1)).sqrt();
    assert!(
        (ones - n as f64 * p1).abs() < 5.0 * sd,
        "{ones} ones, {} expected",
        n as f64 * p1
    );
    let v = sync_values(&rng.zipf(1.0 + 1e-12, &[1000], 500).unwrap());
    assert!(v.iter().all(|&k| (1..i64::MAX).contains(&k)));
}

/// Uniform values stay below `high` where `high − low` is small beside `low`: the sum rounded
/// up to `high` for about half the values of `[2⁵², 2⁵² + 1)`.
#[test]
fn uniform_values_stay_below_high_when_the_sum_rounds() {
    let (low, high) = (2f64.powi(52), 2f64.powi(52) + 1.0);
    for (low, high) in [(low, high), (1e15, 1e15 + 1.0), (1e6, 1e6 + 1e-6)] {
        let v = sync_values(
            &Rng::new(1)
                .uniform::<f64>(low, high, &[10_000], 3_000)
                .unwrap(),
        );
        assert!(
            v.iter().all(|&x| (low..high).contains(&x)),
            "[{low}, {high})"
        );
    }
    let v = sync_values(
        &Rng::new(1)
            .uniform::<f64>(low, high, &[10_000], 3_000)
            .unwrap(),
    );
    assert!(
        v.iter().all(|&x| x == low),
        "only low lies in [2⁵², 2⁵² + 1)"
    );
}

/// Float element types hold the integers of a range exactly, or the range is refused:
/// `[2²⁴ + 1, 2²⁴ + 3)` in f32 gave 2²⁴, below `low`.
#[test]
fn integers_as_floats_are_exact_or_refused() {
    let rng = Rng::new(8);
    err_mentions(
        rng.integers::<f32>(16_777_217, 16_777_219, &[4], 2),
        &["16777217", "float32", "16777216"],
    );
    err_mentions(
        rng.integers::<f64>(0, (1 << 53) + 2, &[4], 2),
        &["float64", "9007199254740992"],
    );
    let v = sync_values(
        &rng.integers::<f32>(-(1 << 24), 1 << 24, &[1000], 300)
            .unwrap(),
    );
    assert!(
        v.iter()
            .all(|&x| x.fract() == 0.0 && x.abs() <= 16_777_216.0)
    );
}
