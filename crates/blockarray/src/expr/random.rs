//! Seeded random arrays: uniform, normal and integer values, the common distributions
//! (exponential, lognormal, gamma, beta, Student's t, chi-square, F, Poisson, binomial,
//! negative binomial, geometric, hypergeometric, Zipf, Wald, Laplace, logistic, Gumbel,
//! Rayleigh, Weibull, Pareto, power, triangular, Cauchy, multivariate normal, multinomial,
//! Dirichlet), permutations, shuffles and choices. The same seed gives the same values
//! whatever the chunking, the scheduler or the number of threads.
//!
//! ```
//! use blockarray::random::Rng;
//! let rng = Rng::new(42);
//! // The same values in any chunking (dask only repeats values for the same chunking).
//! let a = rng.gamma::<f64>(2.0, 3.0, &[100, 100], [30, 40])?.compute()?;
//! let b = rng.gamma::<f64>(2.0, 3.0, &[100, 100], [100, 7])?.compute()?;
//! assert_eq!(a, b);
//! // Counts, permutations and choices are int64, as in NumPy.
//! let k = rng.poisson(4.5, &[1000], 100)?.compute()?;
//! assert!(k.iter().all(|&v| v >= 0));
//! let p = rng.permutation(10, 3)?.compute()?;
//! let mut sorted = p.into_raw_vec_and_offset().0;
//! sorted.sort();
//! assert_eq!(sorted, (0..10).collect::<Vec<i64>>());
//! let picks = rng.choice(5, &[3], false, Some(&[0.1, 0.2, 0.3, 0.4, 0.0]), 3)?.compute()?;
//! assert!(picks.iter().all(|&i| (0..4).contains(&i)));
//! # Ok::<(), blockarray::Error>(())
//! ```
//!
//! # Design notes
//!
//! **Counter-based values.** Element `i` (its flat C-order index in the whole array) draws from
//! the bits `mix(key + (i + 1)·γ)`: SplitMix64's own sequence started at a key derived from the
//! seed, so any element can be drawn on its own, in any order, by any block. Uniform, integer,
//! exponential (inversion: `-scale·ln(1 - u)`), the other inversions (Laplace, logistic,
//! Gumbel, Rayleigh, Weibull, Pareto, power, triangular, Cauchy, geometric; `u` in the open
//! `(0, 1)` where the inverse CDF is infinite at an end) and weighted-choice values (inverse
//! CDF: a binary search of `u` in the cumulative weights) use those 64 bits directly. So the
//! values for a seed depend on neither the chunking, nor the scheduler, nor the thread count,
//! nor which blocks are computed.
//!
//! **Normal values at the generator's rate.** Normal (and lognormal, and the multivariate
//! normal's `z`) values come from a 256-layer ziggurat run on the element's own 64 bits: 8 bits
//! pick the layer, 52 give the uniform, and about 98.5 % of values are done there; the rest
//! (tail and wedges) continue on a SplitMix64 stream seeded from the same bits. Runs of
//! elements are drawn in vectorised loops (AVX-512 or AVX2 when the CPU has them) that give
//! bitwise the values of the one-element path (`expr/counter_rng.rs` has the details).
//!
//! **Per-element streams for rejection samplers.** Gamma (Marsaglia–Tsang,
//! with the `u^(1/shape)` boost below shape 1), beta (Cheng's BB/BC), Student's t, chi-square,
//! Poisson (multiplication method below λ = 12, Ahrens and Dieter's PD above), binomial
//! (inversion below n·p = 10, BTPE above), F (chi-square ratio), negative binomial (a Poisson
//! count of a gamma rate, NumPy's construction), Wald, Zipf and hypergeometric need a variable
//! number of uniforms per value. Each element seeds its own PCG generator from its counter bits
//! and runs the sampler on it (rand_distr's implementations of those algorithms, but for Wald,
//! written here without cancellation, and Zipf, truncated below 2⁶³ as NumPy's): the draws of
//! element `i` are a pure function of `(seed, parameters, i)` however many draws a neighbour
//! rejected. The generator's state is a full 128-bit `(bits, mix(bits))`, so its first
//! outputs are well mixed. Lognormal values are `exp` of exactly the values
//! `normal` draws for the seed.
//!
//! **Vector-valued samples.** Multivariate normal rows are `mean + L·z` with `z` the standard
//! normal values a `normal(0, 1)` array of shape `(..., d)` holds at those positions, `L` a
//! Cholesky factor of `cov` computed in memory when the array is built (semi-definite
//! covariances are accepted: a zero pivot gives a zero column). Multinomial rows (conditional
//! binomials) and Dirichlet rows (stick-breaking with beta variates) run on the generator of
//! their row's flat index. These arrays never split the last axis, and a slice reading some
//! components still draws whole rows, so a component's value does not depend on what else is
//! read.
//!
//! **Permutations and choices.** `permutation(n)` is the stable argsort of `n` random 64-bit
//! keys (the out-of-core sample sort of `ops::select`): a true permutation for any keys (ties,
//! with probability about n²/2⁶⁵, keep position order), the same for a seed in any chunking.
//! Choice without replacement takes the `k` best random keys with `argtopk` (a tree reduction
//! keeping `k` candidates); with weights the keys are Efraimidis–Spirakis keys `ln(u)/w`
//! (equivalently `u^(1/w)`), whose top `k` is a weighted sample without replacement; a zero
//! weight gets key `-∞` and is never chosen. Choice with replacement draws one uniform per
//! output element (no graph beyond the source). `permutation_of`/`shuffle`/`choice_of` gather
//! rows with `take`, which needs its indices when the graph is built: they are computed in
//! memory then (16 bytes per row of the axis while sorting a permutation; the population's
//! keys for choice without replacement), with the same order rules as argsort/argtopk, so
//! `permutation_of(arange(n))` equals `permutation(n)` element for element.
//!
//! **Stability.** The values for a seed are fixed by this code and the rand_distr version in
//! `Cargo.lock`; an upgrade of rand_distr that changes one of its samplers changes that
//! distribution's values (uniform, integer, exponential, permutation and choice values depend on
//! this module alone).
//!
//! **Keys.** Every source tokenizes its shape, seed, distribution tag and every parameter
//! (weights and covariance entries included), so equal keys mean equal values.

use super::counter_rng::{
    below, counter_bits, normal_run, open_unit, splitmix, standard_normal, stream_key, uniform_run,
    unit,
};
use super::source::{ChunkSource, fill_flat, fill_flat_runs, fill_rows, from_source};
use crate::element::{Element, Float, Real};
use crate::error::vec_with_capacity;
use crate::ops::select::SortKey;
use crate::{BlockArray, ChunkSpec, Chunks, Error, Result};
use dag_core::Tokenizer;
use ndarray::ArrayD;
use rand_distr::Distribution as _;
use rand_pcg::Pcg64Mcg;
use std::ops::Range;
use std::sync::Arc;

/// The distributions random arrays draw from (one value per element).
#[derive(Clone, Debug, PartialEq)]
enum Distribution {
    Uniform {
        low: f64,
        high: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    Integers {
        low: i64,
        high: i64,
    },
    Exponential {
        scale: f64,
    },
    LogNormal {
        mean: f64,
        sigma: f64,
    },
    Gamma {
        shape: f64,
        scale: f64,
    },
    Beta {
        a: f64,
        b: f64,
    },
    StandardT {
        df: f64,
    },
    ChiSquare {
        df: f64,
    },
    Poisson {
        lam: f64,
    },
    Binomial {
        n: i64,
        p: f64,
    },
    Laplace {
        loc: f64,
        scale: f64,
    },
    Logistic {
        loc: f64,
        scale: f64,
    },
    Gumbel {
        loc: f64,
        scale: f64,
    },
    Rayleigh {
        scale: f64,
    },
    Weibull {
        a: f64,
    },
    Pareto {
        a: f64,
    },
    StandardCauchy,
    Geometric {
        p: f64,
    },
    F {
        dfnum: f64,
        dfden: f64,
    },
    NegativeBinomial {
        n: f64,
        p: f64,
    },
    Wald {
        mean: f64,
        scale: f64,
    },
    Zipf {
        a: f64,
    },
    Hypergeometric {
        ngood: i64,
        nbad: i64,
        nsample: i64,
    },
    Power {
        a: f64,
    },
    Triangular {
        left: f64,
        mode: f64,
        right: f64,
    },
    /// 64 raw random bits as an `i64` (permutation keys).
    Bits,
    /// Inverse CDF of normalized cumulative weights (choice with replacement).
    Choice {
        cdf: Arc<[f64]>,
    },
    /// Efraimidis–Spirakis keys `ln(u) / w_i` (weighted choice without replacement).
    WeightedKey {
        weights: Arc<[f64]>,
    },
}

impl Distribution {
    fn tag(&self) -> u64 {
        match self {
            Distribution::Uniform { .. } => 0,
            Distribution::Normal { .. } => 1,
            Distribution::Integers { .. } => 2,
            Distribution::Exponential { .. } => 3,
            Distribution::LogNormal { .. } => 4,
            Distribution::Gamma { .. } => 5,
            Distribution::Beta { .. } => 6,
            Distribution::StandardT { .. } => 7,
            Distribution::ChiSquare { .. } => 8,
            Distribution::Poisson { .. } => 9,
            Distribution::Binomial { .. } => 10,
            Distribution::Bits => 11,
            Distribution::Choice { .. } => 12,
            Distribution::WeightedKey { .. } => 13,
            Distribution::Laplace { .. } => 14,
            Distribution::Logistic { .. } => 15,
            Distribution::Gumbel { .. } => 16,
            Distribution::Rayleigh { .. } => 17,
            Distribution::Weibull { .. } => 18,
            Distribution::Pareto { .. } => 19,
            Distribution::StandardCauchy => 20,
            Distribution::Geometric { .. } => 21,
            Distribution::F { .. } => 22,
            Distribution::NegativeBinomial { .. } => 23,
            Distribution::Wald { .. } => 24,
            Distribution::Zipf { .. } => 25,
            Distribution::Hypergeometric { .. } => 26,
            Distribution::Power { .. } => 27,
            Distribution::Triangular { .. } => 28,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "uniform",
            Distribution::Normal { .. } => "normal",
            Distribution::Integers { .. } => "integers",
            Distribution::Exponential { .. } => "exponential",
            Distribution::LogNormal { .. } => "lognormal",
            Distribution::Gamma { .. } => "gamma",
            Distribution::Beta { .. } => "beta",
            Distribution::StandardT { .. } => "standard_t",
            Distribution::ChiSquare { .. } => "chisquare",
            Distribution::Poisson { .. } => "poisson",
            Distribution::Binomial { .. } => "binomial",
            Distribution::Bits => "random-keys",
            Distribution::Choice { .. } => "choice",
            Distribution::WeightedKey { .. } => "weighted-keys",
            Distribution::Laplace { .. } => "laplace",
            Distribution::Logistic { .. } => "logistic",
            Distribution::Gumbel { .. } => "gumbel",
            Distribution::Rayleigh { .. } => "rayleigh",
            Distribution::Weibull { .. } => "weibull",
            Distribution::Pareto { .. } => "pareto",
            Distribution::StandardCauchy => "standard_cauchy",
            Distribution::Geometric { .. } => "geometric",
            Distribution::F { .. } => "f",
            Distribution::NegativeBinomial { .. } => "negative_binomial",
            Distribution::Wald { .. } => "wald",
            Distribution::Zipf { .. } => "zipf",
            Distribution::Hypergeometric { .. } => "hypergeometric",
            Distribution::Power { .. } => "power",
            Distribution::Triangular { .. } => "triangular",
        }
    }

    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.tag());
        match self {
            Distribution::Uniform { low: x, high: y }
            | Distribution::Normal { mean: x, std: y }
            | Distribution::LogNormal { mean: x, sigma: y }
            | Distribution::Gamma { shape: x, scale: y }
            | Distribution::Beta { a: x, b: y }
            | Distribution::Laplace { loc: x, scale: y }
            | Distribution::Logistic { loc: x, scale: y }
            | Distribution::Gumbel { loc: x, scale: y }
            | Distribution::F { dfnum: x, dfden: y }
            | Distribution::NegativeBinomial { n: x, p: y }
            | Distribution::Wald { mean: x, scale: y } => {
                t.write_f64(*x).write_f64(*y);
            }
            Distribution::Integers { low, high } => {
                t.write_i64(*low).write_i64(*high);
            }
            Distribution::Exponential { scale: x }
            | Distribution::StandardT { df: x }
            | Distribution::ChiSquare { df: x }
            | Distribution::Poisson { lam: x }
            | Distribution::Rayleigh { scale: x }
            | Distribution::Weibull { a: x }
            | Distribution::Pareto { a: x }
            | Distribution::Geometric { p: x }
            | Distribution::Zipf { a: x }
            | Distribution::Power { a: x } => {
                t.write_f64(*x);
            }
            Distribution::Binomial { n, p } => {
                t.write_i64(*n).write_f64(*p);
            }
            Distribution::Hypergeometric {
                ngood,
                nbad,
                nsample,
            } => {
                t.write_i64(*ngood).write_i64(*nbad).write_i64(*nsample);
            }
            Distribution::Triangular { left, mode, right } => {
                t.write_f64(*left).write_f64(*mode).write_f64(*right);
            }
            Distribution::Bits | Distribution::StandardCauchy => {}
            Distribution::Choice { cdf: v } | Distribution::WeightedKey { weights: v } => {
                write_f64s(t, v);
            }
        }
    }
}

fn write_f64s(t: &mut Tokenizer, v: &[f64]) {
    t.write_usize(v.len());
    for &x in v {
        t.write_f64(x);
    }
}

struct RandomSource<T> {
    shape: Vec<usize>,
    seed: u64,
    dist: Distribution,
    /// The hypergeometric sampler, made by the first read (its set-up may be long).
    hypergeometric: std::sync::OnceLock<rand_distr::Hypergeometric>,
    _type: std::marker::PhantomData<fn() -> T>,
}

/// A Wald (inverse Gaussian) value, by Michael, Schucany and Haas's transformation (as NumPy
/// and rand_distr), written without cancellation: with `y = mean·z²` for a standard normal
/// `z` and `s = y/(4·scale)`, the smaller root `mean + mean/(2·scale)·(y − √(4·scale·y + y²))`
/// is `mean/(√s + √(1 + s))²`, a sum of positive terms (the subtraction lost every digit once
/// `mean/scale` passed about 10⁷, giving zeros and negative values); for `s ≥ 1` it is computed
/// as `(4·scale/z²)/(1 + √(1 + 1/s))²`, which also holds when `s` overflows.
fn wald_sample(mean: f64, scale: f64, rng: &mut Pcg64Mcg) -> f64 {
    let z: f64 = rand_distr::StandardNormal.sample(rng);
    let s = mean / (4.0 * scale) * (z * z);
    let x = if s >= 1.0 {
        (4.0 * scale / (z * z)) / (1.0 + (1.0 + 1.0 / s).sqrt()).powi(2)
    } else {
        mean / (s.sqrt() + (1.0 + s).sqrt()).powi(2)
    };
    let u: f64 = rand_distr::StandardUniform.sample(rng);
    if u <= mean / (mean + x) {
        x
    } else {
        // The other root, mean²/x, without overflowing mean².
        mean * (mean / x)
    }
}

/// A Zipf value with exponent `a > 1` below 2⁶³ (NumPy's truncation: it redraws values past
/// `i64::MAX`), by Devroye's rejection from the Pareto `⌊U^(−1/(a−1))⌋`, with `U` drawn only
/// from the part of `(0, 1]` that gives values below 2⁶³: as NumPy's, without its redraws,
/// which for `a` within 10⁻¹⁰ of 1 never end.
fn zipf_sample(a: f64, rng: &mut Pcg64Mcg) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    let am1 = a - 1.0;
    // b − 1 and t − 1 below by exp_m1: for a near 1 the powers lie within 10⁻¹² of 1.
    let bm1 = (am1 * std::f64::consts::LN_2).exp_m1();
    // U = 1 − w for w in [0, span): U ≥ 2^(−63·(a−1)), so U^(−1/(a−1)) ≤ 2^63.
    let span = -(-63.0 * std::f64::consts::LN_2 * am1).exp_m1();
    loop {
        let w = span * unit(rand_distr::StandardUniform.sample(rng));
        let x = (-(-w).ln_1p() / am1).exp().floor();
        if !(1.0..LIMIT).contains(&x) {
            continue; // rounding at the ends
        }
        let v = unit(rand_distr::StandardUniform.sample(rng));
        let tm1 = (am1 * (1.0 / x).ln_1p()).exp_m1();
        if v * x * tm1 / bm1 <= (1.0 + tm1) / (1.0 + bm1) {
            return x as i64;
        }
    }
}

/// The private generator of element `i`, for samplers that draw a variable number of
/// uniforms: a full, well-mixed 128-bit PCG state from the element's counter bits.
#[inline]
fn element_rng(key: u64, i: u64) -> Pcg64Mcg {
    let a = counter_bits(key, i);
    let b = splitmix(a ^ 0xD1B5_4A32_D192_ED03);
    Pcg64Mcg::new(((u128::from(a) << 64) | u128::from(b)) | 1)
}

/// Element types random arrays can hold (the floats and the integers): conversions from
/// the `f64` and `i64` samples the generator draws.
pub trait FromRandom: Element {
    /// A sample of a real-valued distribution as `Self`.
    fn from_f64_sample(v: f64) -> Self;
    /// A sample of an integer distribution as `Self`.
    fn from_i64_sample(v: i64) -> Self;
    /// Whether an `f64` sample below a bound may round up to the bound in `Self` (`f32`).
    /// Uniform arrays of other types take their samples as they are, through the plain
    /// conversion (measured: routing `f64` through [`below_high`](Self::below_high) too, an
    /// identity, left `topk` a few per cent slower).
    const NARROW: bool = false;
    /// `v`, a uniform sample below `high` converted to `Self`, kept below `high` (a type
    /// narrower than `f64` may round it up to `high`): the largest value of the type below
    /// `high` then. The default: `v`.
    fn below_high(v: Self, high: f64) -> Self {
        let _ = high;
        v
    }
}

macro_rules! from_random {
    ($($t:ty),*) => {$(
        impl FromRandom for $t {
            fn from_f64_sample(v: f64) -> Self { v as $t }
            fn from_i64_sample(v: i64) -> Self { v as $t }
        }
    )*};
}
from_random!(f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl FromRandom for f32 {
    const NARROW: bool = true;
    fn from_f64_sample(v: f64) -> Self {
        v as f32
    }
    fn from_i64_sample(v: i64) -> Self {
        v as f32
    }
    fn below_high(v: f32, high: f64) -> f32 {
        if f64::from(v) < high {
            v
        } else {
            // `high` as f32 rounds to nearest: step down when that is not below `high`.
            let h = high as f32;
            if f64::from(h) < high {
                h
            } else {
                h.next_down()
            }
        }
    }
}

/// Fill a region with `f(flat index)`, a sampler built once per read.
fn fill<T: FromRandom>(
    shape: &[usize],
    region: &[Range<usize>],
    steps: &[usize],
    f: impl Fn(u64) -> T,
) -> ArrayD<T> {
    fill_flat(shape, region, steps, f)
}

/// Fill a region run by run: `run(first, step, buf)` writes the `f64` samples of the
/// elements `first + j·step` into `buf` (a scratch buffer of at most 1024 values), which are
/// then converted to `T` by `convert`.
fn fill_runs<T: FromRandom>(
    shape: &[usize],
    region: &[Range<usize>],
    steps: &[usize],
    mut run: impl FnMut(u64, u64, &mut [f64]),
    convert: impl Fn(f64) -> T,
) -> ArrayD<T> {
    let mut buf = [0.0f64; 1024];
    fill_flat_runs(
        shape,
        region,
        steps,
        |mut first, step, mut n, data: &mut Vec<T>| {
            while n > 0 {
                let m = n.min(buf.len());
                run(first, step, &mut buf[..m]);
                data.extend(buf[..m].iter().map(|&v| convert(v)));
                first = first.wrapping_add(step.wrapping_mul(m as u64));
                n -= m;
            }
        },
    )
}

/// A rand_distr constructor error (parameters are validated before, so this is a bug guard).
fn distr_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::unsupported(format!("{what}: {e}"))
}

impl<T: FromRandom> ChunkSource<T> for RandomSource<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.read_strided(region, &vec![1; region.len()])
    }
    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        let key = stream_key(self.seed);
        let sh = &self.shape;
        let f = T::from_f64_sample;
        Ok(match &self.dist {
            &Distribution::Uniform { low, high } => {
                let run =
                    |first, step, buf: &mut [f64]| uniform_run(key, first, step, low, high, buf);
                if T::NARROW && low < high {
                    // A value just below `high` may round to it in a narrower type.
                    fill_runs(sh, region, steps, run, |v| {
                        T::below_high(T::from_f64_sample(v), high)
                    })
                } else {
                    fill_runs(sh, region, steps, run, T::from_f64_sample)
                }
            }
            &Distribution::Normal { mean, std } => fill_runs(
                sh,
                region,
                steps,
                |first, step, buf| {
                    normal_run(key, first, step, buf);
                    for v in buf {
                        *v = mean + std * *v;
                    }
                },
                f,
            ),
            &Distribution::Integers { low, high } => {
                // At most 2⁶⁴ - 1: `low < high` are both i64.
                let span = (i128::from(high) - i128::from(low)) as u64;
                fill(sh, region, steps, |i| {
                    T::from_i64_sample(low.wrapping_add(below(key, i, span) as i64))
                })
            }
            &Distribution::Exponential { scale } => fill(sh, region, steps, |i| {
                // Inversion; 1 - u lies in (0, 1], so the logarithm is finite.
                f(-scale * (1.0 - unit(counter_bits(key, i))).ln())
            }),
            &Distribution::LogNormal { mean, sigma } => fill(sh, region, steps, |i| {
                f((mean + sigma * standard_normal(key, i)).exp())
            }),
            &Distribution::Gamma { shape, scale } => {
                if shape == 0.0 || scale == 0.0 {
                    fill(sh, region, steps, |_| f(0.0))
                } else {
                    let d =
                        rand_distr::Gamma::new(shape, scale).map_err(|e| distr_err("gamma", e))?;
                    fill(sh, region, steps, |i| f(d.sample(&mut element_rng(key, i))))
                }
            }
            &Distribution::Beta { a, b } => {
                let d = rand_distr::Beta::new(a, b).map_err(|e| distr_err("beta", e))?;
                fill(sh, region, steps, |i| f(d.sample(&mut element_rng(key, i))))
            }
            &Distribution::StandardT { df } => {
                let d = rand_distr::StudentT::new(df).map_err(|e| distr_err("standard_t", e))?;
                fill(sh, region, steps, |i| f(d.sample(&mut element_rng(key, i))))
            }
            &Distribution::ChiSquare { df } => {
                let d = rand_distr::ChiSquared::new(df).map_err(|e| distr_err("chisquare", e))?;
                fill(sh, region, steps, |i| f(d.sample(&mut element_rng(key, i))))
            }
            &Distribution::Poisson { lam } => {
                if lam == 0.0 {
                    fill(sh, region, steps, |_| T::from_i64_sample(0))
                } else {
                    let d = rand_distr::Poisson::new(lam).map_err(|e| distr_err("poisson", e))?;
                    fill(sh, region, steps, |i| {
                        let v: f64 = d.sample(&mut element_rng(key, i));
                        T::from_i64_sample(v as i64)
                    })
                }
            }
            &Distribution::Binomial { n, p } => {
                let d =
                    rand_distr::Binomial::new(n as u64, p).map_err(|e| distr_err("binomial", e))?;
                fill(sh, region, steps, |i| {
                    T::from_i64_sample(d.sample(&mut element_rng(key, i)) as i64)
                })
            }
            &Distribution::Laplace { loc, scale } => fill(sh, region, steps, |i| {
                let u = open_unit(counter_bits(key, i));
                f(if u < 0.5 {
                    loc + scale * (2.0 * u).ln()
                } else {
                    loc - scale * (2.0 * (1.0 - u)).ln()
                })
            }),
            &Distribution::Logistic { loc, scale } => fill(sh, region, steps, |i| {
                let u = open_unit(counter_bits(key, i));
                f(loc + scale * (u / (1.0 - u)).ln())
            }),
            &Distribution::Gumbel { loc, scale } => fill(sh, region, steps, |i| {
                let u = open_unit(counter_bits(key, i));
                f(loc - scale * (-u.ln()).ln())
            }),
            &Distribution::Rayleigh { scale } => fill(sh, region, steps, |i| {
                let u = open_unit(counter_bits(key, i));
                f(scale * (-2.0 * u.ln()).sqrt())
            }),
            &Distribution::Weibull { a } => fill(sh, region, steps, |i| {
                if a == 0.0 {
                    return f(0.0);
                }
                let u = open_unit(counter_bits(key, i));
                f((-u.ln()).powf(1.0 / a))
            }),
            &Distribution::Pareto { a } => fill(sh, region, steps, |i| {
                // NumPy's pareto is the Lomax (Pareto II) law: exp(E / a) - 1.
                let u = open_unit(counter_bits(key, i));
                f((-u.ln() / a).exp_m1())
            }),
            Distribution::StandardCauchy => fill(sh, region, steps, |i| {
                let u = open_unit(counter_bits(key, i));
                f((std::f64::consts::PI * (u - 0.5)).tan())
            }),
            &Distribution::Geometric { p } => fill(sh, region, steps, |i| {
                // Inversion: the trials up to the first success, at least 1 (saturating at
                // i64::MAX for absurdly small p).
                if p == 1.0 {
                    return T::from_i64_sample(1);
                }
                let u = open_unit(counter_bits(key, i));
                T::from_i64_sample((u.ln() / (-p).ln_1p()).ceil().max(1.0) as i64)
            }),
            &Distribution::F { dfnum, dfden } => {
                let d = rand_distr::FisherF::new(dfnum, dfden).map_err(|e| distr_err("f", e))?;
                fill(sh, region, steps, |i| f(d.sample(&mut element_rng(key, i))))
            }
            &Distribution::NegativeBinomial { n, p } => {
                if p == 1.0 {
                    fill(sh, region, steps, |_| T::from_i64_sample(0))
                } else {
                    // NumPy's construction: a Poisson count of a gamma(n, (1 - p)/p) rate, both
                    // drawn from the element's own generator.
                    let g = rand_distr::Gamma::new(n, (1.0 - p) / p)
                        .map_err(|e| distr_err("negative_binomial", e))?;
                    fill(sh, region, steps, |i| {
                        let mut rng = element_rng(key, i);
                        let lam: f64 = g.sample(&mut rng);
                        // A rate that underflowed to 0 counts 0; one in the gamma's far tail
                        // past the Poisson sampler's range counts at its bound.
                        let k: f64 = if lam > 0.0 {
                            // (`new` accepts every rate in (0, POISSON_LAM_MAX].)
                            rand_distr::Poisson::new(lam.min(Rng::POISSON_LAM_MAX))
                                .map_or(0.0, |d| d.sample(&mut rng))
                        } else {
                            0.0
                        };
                        T::from_i64_sample(k as i64)
                    })
                }
            }
            &Distribution::Wald { mean, scale } => fill(sh, region, steps, |i| {
                f(wald_sample(mean, scale, &mut element_rng(key, i)))
            }),
            &Distribution::Zipf { a } => fill(sh, region, steps, |i| {
                T::from_i64_sample(zipf_sample(a, &mut element_rng(key, i)))
            }),
            &Distribution::Hypergeometric {
                ngood,
                nbad,
                nsample,
            } => {
                // Built once per array: its set-up can take ngood + nsample steps.
                let d = match self.hypergeometric.get() {
                    Some(d) => d,
                    None => {
                        let d = rand_distr::Hypergeometric::new(
                            (ngood + nbad) as u64,
                            ngood as u64,
                            nsample as u64,
                        )
                        .map_err(|e| distr_err("hypergeometric", e))?;
                        self.hypergeometric.get_or_init(|| d)
                    }
                };
                fill(sh, region, steps, |i| {
                    T::from_i64_sample(d.sample(&mut element_rng(key, i)) as i64)
                })
            }
            &Distribution::Power { a } => fill(sh, region, steps, |i| {
                f(unit(counter_bits(key, i)).powf(1.0 / a))
            }),
            &Distribution::Triangular { left, mode, right } => {
                let (width, fc) = (right - left, (mode - left) / (right - left));
                fill(sh, region, steps, |i| {
                    let u = unit(counter_bits(key, i));
                    f(if u < fc {
                        left + (u * width * (mode - left)).sqrt()
                    } else {
                        right - ((1.0 - u) * width * (right - mode)).sqrt()
                    })
                })
            }
            Distribution::Bits => fill(sh, region, steps, |i| {
                T::from_i64_sample(counter_bits(key, i) as i64)
            }),
            Distribution::Choice { cdf } => fill(sh, region, steps, |i| {
                T::from_i64_sample(choice_index(cdf, key, i) as i64)
            }),
            Distribution::WeightedKey { weights } => fill(sh, region, steps, |i| {
                f(weighted_key(weights[i as usize], key, i))
            }),
        })
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write(&self.shape).write_u64(self.seed);
        self.dist.tokenize(t);
    }
    fn name(&self) -> &str {
        self.dist.name()
    }
}

/// Weighted choice with replacement: the first index whose cumulative weight exceeds `u`
/// (zero weights own an empty interval and are never picked).
#[inline]
fn choice_index(cdf: &[f64], key: u64, i: u64) -> usize {
    let u = unit(counter_bits(key, i));
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

/// The Efraimidis–Spirakis key of position `i` with weight `w`: `ln(w) − ln(−ln u)` for `u`
/// in `(0, 1]`, an increasing function of `u^(1/w)` (same order) that neither underflows nor
/// loses the weight (`ln(u)/w` was `−∞` for every subnormal weight, so those tied and the
/// first always won); `−∞` for a zero weight, below every positive weight's key, as NumPy
/// never picks those.
#[inline]
fn weighted_key(w: f64, key: u64, i: u64) -> f64 {
    if w > 0.0 {
        w.ln() - (-(1.0 - unit(counter_bits(key, i))).ln()).ln()
    } else {
        f64::NEG_INFINITY
    }
}

/// What a row source draws per row of the last axis.
enum RowKind {
    /// `mean + L·z`: the covariance as given (row-major, for the key) and its lower-triangular
    /// factor (row-major `d × d`).
    Mvn {
        mean: Vec<f64>,
        cov: Vec<f64>,
        factor: Vec<f64>,
    },
    /// Counts of `n` trials over categories of probabilities `pvals` (conditional binomials).
    Multinomial { n: i64, pvals: Vec<f64> },
    /// Points of the simplex (stick-breaking with beta variates).
    Dirichlet { alpha: Vec<f64> },
}

/// Vector-valued samples: rows along the last axis, each drawn whole from the row's flat index
/// (so a component's value does not depend on which others a slice reads, nor on blocks).
struct RowSource<T> {
    shape: Vec<usize>,
    seed: u64,
    kind: RowKind,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: FromRandom> RowSource<T> {
    /// Draw row `row` (d values) into `out` (real rows) or `counts` (multinomial rows); `z` is
    /// scratch space of length d.
    fn row(
        &self,
        key: u64,
        row: u64,
        out: &mut [f64],
        counts: &mut [i64],
        z: &mut [f64],
    ) -> Result<()> {
        let d = out.len() as u64;
        match &self.kind {
            RowKind::Mvn { mean, factor, .. } => {
                let dd = mean.len();
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = standard_normal(key, row * d + k as u64);
                }
                for j in 0..dd {
                    let l = &factor[j * dd..j * dd + j + 1];
                    out[j] = mean[j] + l.iter().zip(&*z).map(|(a, b)| a * b).sum::<f64>();
                }
            }
            RowKind::Multinomial { n, pvals } => {
                let mut rng = element_rng(key, row);
                let mut left = *n as u64;
                let mut mass = 1.0;
                let k = pvals.len();
                for (j, &p) in pvals.iter().enumerate() {
                    let x = if j + 1 == k || left == 0 {
                        left
                    } else {
                        // NaN-safe: no mass left (rounding) means nothing more here.
                        let q = if mass > 0.0 {
                            (p / mass).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                        let b = rand_distr::Binomial::new(left, q)
                            .map_err(|e| distr_err("multinomial", e))?;
                        b.sample(&mut rng)
                    };
                    counts[j] = x as i64;
                    left -= x;
                    mass -= p;
                }
            }
            RowKind::Dirichlet { alpha } => {
                let mut rng = element_rng(key, row);
                let mut rest: f64 = alpha.iter().sum();
                let mut left = 1.0;
                let k = alpha.len();
                for (j, &a) in alpha.iter().enumerate() {
                    rest -= a;
                    out[j] = if j + 1 == k {
                        left
                    } else if rest <= 0.0 {
                        // Only zero weights remain: all the mass goes here.
                        let v = left;
                        left = 0.0;
                        v
                    } else {
                        let x: f64 = rand_distr::Beta::new(a, rest)
                            .map_err(|e| distr_err("dirichlet", e))?
                            .sample(&mut rng);
                        let v = left * x;
                        left -= v;
                        v
                    };
                }
            }
        }
        Ok(())
    }
}

impl<T: FromRandom> ChunkSource<T> for RowSource<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.read_strided(region, &vec![1; region.len()])
    }
    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        let key = stream_key(self.seed);
        let lead = self.shape.len() - 1;
        let d = self.shape[lead];
        let mut strides = vec![1u64; lead];
        for k in (0..lead.saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * self.shape[k + 1] as u64;
        }
        let (mut out, mut counts, mut z) = (vec![0.0; d], vec![0i64; d], vec![0.0; d]);
        let mut failed = None;
        let block = fill_rows(region, steps, |outer, data| {
            let row: u64 = outer
                .iter()
                .zip(&strides)
                .map(|(&i, &s)| i as u64 * s)
                .sum();
            if let Err(e) = self.row(key, row, &mut out, &mut counts, &mut z) {
                failed.get_or_insert(e);
            }
            let ints = matches!(self.kind, RowKind::Multinomial { .. });
            for j in region[lead].clone().step_by(steps[lead]) {
                data.push(if ints {
                    T::from_i64_sample(counts[j])
                } else {
                    T::from_f64_sample(out[j])
                });
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(block),
        }
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write(&self.shape).write_u64(self.seed);
        match &self.kind {
            RowKind::Mvn { mean, cov, .. } => {
                t.write_u64(0);
                write_f64s(t, mean);
                write_f64s(t, cov);
            }
            RowKind::Multinomial { n, pvals } => {
                t.write_u64(1).write_i64(*n);
                write_f64s(t, pvals);
            }
            RowKind::Dirichlet { alpha } => {
                t.write_u64(2);
                write_f64s(t, alpha);
            }
        }
    }
    fn name(&self) -> &str {
        match self.kind {
            RowKind::Mvn { .. } => "multivariate_normal",
            RowKind::Multinomial { .. } => "multinomial",
            RowKind::Dirichlet { .. } => "dirichlet",
        }
    }
}

/// A lower-triangular `L` with `L·Lᵀ = cov` (row-major), for a symmetric positive
/// semi-definite `cov`. The factor is that of the correlation matrix `D^-½·cov·D^-½` (`D` the
/// variances) scaled back by `D^½`, so its tolerances are relative to each component's own
/// variance: a component whose variance is tiny beside another's keeps it. A zero (within
/// rounding) pivot gives a zero column if the rest of that column is zero too; otherwise,
/// like a negative pivot or a correlation beyond ±1, the matrix is not semi-definite.
fn psd_factor(cov: &[f64], d: usize) -> Result<Vec<f64>> {
    let what = "multivariate_normal";
    if let Some(p) = cov.iter().position(|v| !v.is_finite()) {
        return Err(Error::unsupported(format!(
            "{what}: cov[{}, {}] = {} is not finite",
            p / d,
            p % d,
            cov[p]
        )));
    }
    if let Some(i) = (0..d).find(|&i| cov[i * d + i] < 0.0) {
        return Err(Error::unsupported(format!(
            "{what}: cov is not positive semi-definite (variance cov[{i}, {i}] = {} < 0)",
            cov[i * d + i]
        )));
    }
    let sd: Vec<f64> = (0..d).map(|i| cov[i * d + i].sqrt()).collect();
    // The correlation of i and j; components of variance 0 must not covary with anything.
    let mut corr = vec![0.0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let (a, b) = (cov[i * d + j], cov[j * d + i]);
            let s = sd[i] * sd[j];
            if (a - b).abs() > 1e-8 * s.max(f64::MIN_POSITIVE) {
                return Err(Error::unsupported(format!(
                    "{what}: cov is not symmetric (cov[{i}, {j}] = {a}, cov[{j}, {i}] = {b})"
                )));
            }
            let c = if s > 0.0 {
                a / s
            } else if a == 0.0 {
                0.0
            } else {
                return Err(Error::unsupported(format!(
                    "{what}: cov is not positive semi-definite (cov[{i}, {j}] = {a} with a \
                     variance of 0)"
                )));
            };
            corr[i * d + j] = c;
        }
    }
    let tol = 1e-10 * d as f64;
    let mut l = vec![0.0f64; d * d];
    for j in 0..d {
        if sd[j] == 0.0 {
            continue;
        }
        let s = corr[j * d + j] - (0..j).map(|k| l[j * d + k].powi(2)).sum::<f64>();
        if s < -tol {
            return Err(Error::unsupported(format!(
                "{what}: cov is not positive semi-definite (pivot {j} of its correlation matrix \
                 is {s})"
            )));
        }
        let pivot = if s > tol { s.sqrt() } else { 0.0 };
        l[j * d + j] = pivot;
        for i in j + 1..d {
            let r = corr[i * d + j] - (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum::<f64>();
            if pivot > 0.0 {
                l[i * d + j] = r / pivot;
            } else if r.abs() > tol.sqrt() * 10.0 {
                return Err(Error::unsupported(format!(
                    "{what}: cov is not positive semi-definite (zero pivot {j} with \
                     correlation residual {r} in row {i})"
                )));
            }
        }
    }
    // L = D^½ · L_corr.
    for i in 0..d {
        for k in 0..=i {
            l[i * d + k] *= sd[i];
        }
    }
    Ok(l)
}

/// A seed, from which random arrays are drawn.
///
/// Every method takes the array's `shape` (NumPy's `size`) and its `chunks`; the values do not
/// depend on the chunks. Bad parameters give an `Err` naming the parameter (NumPy's rules).
///
/// An `Rng` is a seed, not a generator with a state: calling the same method twice with the
/// same arguments gives the same array (NumPy's and dask's generators move on between calls),
/// and the distributions draw from the same bits (`exponential(1)` is `-ln(1 - random())`
/// element for element). Use one seed per independent array (`Rng::new(seed + k)`; seeds are
/// mixed, so neighbouring seeds give unrelated values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng {
    seed: u64,
}

/// `Err` unless `v` is finite and satisfies `ok`.
fn check(what: &str, name: &str, v: f64, ok: bool, rule: &str) -> Result<()> {
    if v.is_finite() && ok {
        Ok(())
    } else if rule.is_empty() {
        Err(Error::unsupported(format!(
            "{what}: {name} must be finite, got {v}"
        )))
    } else {
        Err(Error::unsupported(format!(
            "{what}: {name} must be finite and {rule}, got {v}"
        )))
    }
}

/// `Err` unless degrees of freedom `v` are finite and positive, and not so small that half of
/// them is 0 (the chi-square samplers need `v / 2 > 0`).
fn check_df(what: &str, name: &str, v: f64) -> Result<()> {
    check(
        what,
        name,
        v,
        0.5 * v > 0.0,
        "> 0 (and not so small that half of it is 0)",
    )
}

impl Rng {
    /// Random arrays from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { seed }
    }

    fn make<T: FromRandom>(
        &self,
        dist: Distribution,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        from_source(
            Arc::new(RandomSource::<T> {
                shape: shape.to_vec(),
                seed: self.seed,
                dist,
                hypergeometric: std::sync::OnceLock::new(),
                _type: std::marker::PhantomData,
            }),
            chunks,
        )
    }

    /// Uniform values in `[low, high)`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).uniform::<f32>(-1.0, 1.0, &[50], 20)?.compute()?;
    /// assert!(x.iter().all(|&v| (-1.0..1.0).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn uniform<T: Float + FromRandom>(
        &self,
        low: f64,
        high: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if !(low.is_finite() && high.is_finite()) || high < low {
            return Err(Error::unsupported(format!(
                "uniform: need finite low ≤ high, got [{low}, {high})"
            )));
        }
        if !(high - low).is_finite() {
            return Err(Error::unsupported(format!(
                "uniform: high - low overflows f64 for [{low}, {high}) (NumPy's OverflowError)"
            )));
        }
        self.make(Distribution::Uniform { low, high }, shape, chunks)
    }

    /// Uniform values in `[0, 1)` (dask's `random.random`).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).random::<f64>(&[4, 4], 2)?.compute()?;
    /// assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn random<T: Float + FromRandom>(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.uniform(0.0, 1.0, shape, chunks)
    }

    /// Normally distributed values with mean `mean` and standard deviation `std ≥ 0`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).normal::<f64>(5.0, 0.0, &[3], 2)?.compute()?;
    /// assert!(x.iter().all(|&v| v == 5.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn normal<T: Float + FromRandom>(
        &self,
        mean: f64,
        std: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if !(mean.is_finite() && std.is_finite()) || std < 0.0 {
            return Err(Error::unsupported(format!(
                "normal: need finite mean and std ≥ 0, got mean {mean}, std {std}"
            )));
        }
        self.make(Distribution::Normal { mean, std }, shape, chunks)
    }

    /// Integers in `[low, high)`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).integers::<u8>(3, 7, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| (3..7).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn integers<T: Real + FromRandom>(
        &self,
        low: i64,
        high: i64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if high <= low {
            return Err(Error::unsupported(format!(
                "integers: need low < high, got [{low}, {high})"
            )));
        }
        // Integer types must hold every value of [low, high) (NumPy raises too; wrapping
        // would give negative numbers from a range of positive ones).
        // Float types must hold them exactly: integers up to 2^24 in magnitude for f32 and
        // 2^53 for f64 (beyond, a value rounds, possibly out of the range).
        let float = T::to_i128(T::default()).is_none();
        let exact = 1i64
            << if std::mem::size_of::<T>() == 4 {
                24
            } else {
                53
            };
        let fits = |v: i64| {
            if float {
                (-exact..=exact).contains(&v)
            } else {
                T::from_i128(v.into()).is_some()
            }
        };
        if !fits(low) || !fits(high - 1) {
            let holds = if float {
                format!("it holds integers exactly within ±{exact}")
            } else {
                format!(
                    "its values range over [{:?}, {:?}]",
                    T::min_value(),
                    T::max_value()
                )
            };
            return Err(Error::unsupported(format!(
                "integers: [{low}, {high}) does not fit {} ({holds})",
                T::DTYPE
            )));
        }
        self.make(Distribution::Integers { low, high }, shape, chunks)
    }

    /// Exponentially distributed values with mean `scale ≥ 0` (NumPy's `exponential(scale)`;
    /// the rate is `1/scale`), by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).exponential::<f64>(2.0, &[1000], 100)?;
    /// assert!(x.compute()?.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn exponential<T: Float + FromRandom>(
        &self,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("exponential", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Exponential { scale }, shape, chunks)
    }

    /// Log-normal values: `exp` of normal values with mean `mean` and standard deviation
    /// `sigma ≥ 0` (exactly `exp` of what [`normal`](Self::normal) draws for the seed).
    ///
    /// ```
    /// use blockarray::random::Rng;
    /// let x = Rng::new(3).lognormal::<f64>(0.5, 0.2, &[10], 4)?.compute()?;
    /// let z = Rng::new(3).normal::<f64>(0.5, 0.2, &[10], 4)?.compute()?;
    /// assert_eq!(x, z.mapv(f64::exp));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn lognormal<T: Float + FromRandom>(
        &self,
        mean: f64,
        sigma: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("lognormal", "mean", mean, true, "")?;
        check("lognormal", "sigma", sigma, sigma >= 0.0, "≥ 0")?;
        self.make(Distribution::LogNormal { mean, sigma }, shape, chunks)
    }

    /// Gamma-distributed values with shape `shape ≥ 0` and scale `scale ≥ 0` (mean
    /// `shape·scale`; NumPy's `gamma(shape, scale, size)`, `size` being this array's shape).
    /// Marsaglia–Tsang, boosted by `u^(1/shape)` below shape 1; shape or scale 0 gives zeros.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).gamma::<f64>(0.5, 2.0, &[1000], 250)?;
    /// assert!(x.compute()?.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn gamma<T: Float + FromRandom>(
        &self,
        shape: f64,
        scale: f64,
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("gamma", "shape", shape, shape >= 0.0, "≥ 0")?;
        check("gamma", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Gamma { shape, scale }, size, chunks)
    }

    /// Beta-distributed values in `[0, 1]` with `a > 0`, `b > 0` (Cheng's BB/BC rejection
    /// algorithms, exact for small parameters where the ratio of gammas underflows).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).beta::<f64>(0.5, 0.5, &[1000], 300)?;
    /// assert!(x.compute()?.iter().all(|&v| (0.0..=1.0).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn beta<T: Float + FromRandom>(
        &self,
        a: f64,
        b: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("beta", "a", a, a > 0.0, "> 0")?;
        check("beta", "b", b, b > 0.0, "> 0")?;
        self.make(Distribution::Beta { a, b }, shape, chunks)
    }

    /// Student's t values with `df > 0` degrees of freedom.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).standard_t::<f64>(5.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|v| v.is_finite()));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn standard_t<T: Float + FromRandom>(
        &self,
        df: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check_df("standard_t", "df", df)?;
        self.make(Distribution::StandardT { df }, shape, chunks)
    }

    /// Chi-square values with `df > 0` degrees of freedom.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).chisquare::<f64>(3.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn chisquare<T: Float + FromRandom>(
        &self,
        df: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check_df("chisquare", "df", df)?;
        self.make(Distribution::ChiSquare { df }, shape, chunks)
    }

    /// The largest `lam` [`poisson`](Self::poisson) accepts (NumPy's limit: counts stay far
    /// from the `int64` maximum).
    pub const POISSON_LAM_MAX: f64 = 9.223_372_006_484_771e18;

    /// Poisson counts (`int64`) with mean `lam`, `0 ≤ lam ≤` [`POISSON_LAM_MAX`](Self::POISSON_LAM_MAX):
    /// the multiplication method below λ = 12, Ahrens and Dieter's PD method above.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).poisson(0.0, &[5], 2)?.compute()?;
    /// assert!(x.iter().all(|&v| v == 0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn poisson(
        &self,
        lam: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        check("poisson", "lam", lam, lam >= 0.0, "≥ 0")?;
        if lam > Self::POISSON_LAM_MAX {
            return Err(Error::unsupported(format!(
                "poisson: lam = {lam} is too large (at most {})",
                Self::POISSON_LAM_MAX
            )));
        }
        self.make(Distribution::Poisson { lam }, shape, chunks)
    }

    /// Binomial counts (`int64`): successes in `n ≥ 0` trials of probability `0 ≤ p ≤ 1`.
    /// Inversion below `n·p = 10`, BTPE above.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).binomial(10, 0.3, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| (0..=10).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn binomial(
        &self,
        n: i64,
        p: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        if n < 0 {
            return Err(Error::unsupported(format!(
                "binomial: n must be ≥ 0, got {n}"
            )));
        }
        check("binomial", "p", p, (0.0..=1.0).contains(&p), "in [0, 1]")?;
        self.make(Distribution::Binomial { n, p }, shape, chunks)
    }

    /// Laplace (double exponential) values with location `loc` and scale `scale ≥ 0`, by
    /// inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).laplace::<f64>(2.0, 0.0, &[3], 2)?.compute()?;
    /// assert!(x.iter().all(|&v| v == 2.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn laplace<T: Float + FromRandom>(
        &self,
        loc: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("laplace", "loc", loc, true, "")?;
        check("laplace", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Laplace { loc, scale }, shape, chunks)
    }

    /// Logistic values with location `loc` and scale `scale ≥ 0`, by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).logistic::<f64>(0.0, 1.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|v| v.is_finite()));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn logistic<T: Float + FromRandom>(
        &self,
        loc: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("logistic", "loc", loc, true, "")?;
        check("logistic", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Logistic { loc, scale }, shape, chunks)
    }

    /// Gumbel (extreme value, type I) values with location `loc` and scale `scale ≥ 0`, by
    /// inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).gumbel::<f64>(0.0, 1.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|v| v.is_finite()));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn gumbel<T: Float + FromRandom>(
        &self,
        loc: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("gumbel", "loc", loc, true, "")?;
        check("gumbel", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Gumbel { loc, scale }, shape, chunks)
    }

    /// Rayleigh values with scale `scale ≥ 0`, by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).rayleigh::<f64>(2.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn rayleigh<T: Float + FromRandom>(
        &self,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("rayleigh", "scale", scale, scale >= 0.0, "≥ 0")?;
        self.make(Distribution::Rayleigh { scale }, shape, chunks)
    }

    /// Weibull values with shape `a ≥ 0` and scale 1 (NumPy's `weibull(a)`; `a = 0` gives
    /// zeros), by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).weibull::<f64>(1.5, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn weibull<T: Float + FromRandom>(
        &self,
        a: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("weibull", "a", a, a >= 0.0, "≥ 0")?;
        self.make(Distribution::Weibull { a }, shape, chunks)
    }

    /// Pareto II (Lomax) values with shape `a > 0`, as NumPy's `pareto(a)`: `(1 - u)^(-1/a) - 1`
    /// (add 1 and multiply by `m` for the classical Pareto law of minimum `m`).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).pareto::<f64>(3.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn pareto<T: Float + FromRandom>(
        &self,
        a: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("pareto", "a", a, a > 0.0, "> 0")?;
        self.make(Distribution::Pareto { a }, shape, chunks)
    }

    /// Standard Cauchy (Lorentz) values, by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).standard_cauchy::<f64>(&[100], 30)?.compute()?;
    /// assert!(x.iter().all(|v| v.is_finite()));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn standard_cauchy<T: Float + FromRandom>(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.make(Distribution::StandardCauchy, shape, chunks)
    }

    /// F (Fisher–Snedecor) values with `dfnum > 0` and `dfden > 0` degrees of freedom (a ratio
    /// of scaled chi-squares).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).f::<f64>(3.0, 7.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn f<T: Float + FromRandom>(
        &self,
        dfnum: f64,
        dfden: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check_df("f", "dfnum", dfnum)?;
        check_df("f", "dfden", dfden)?;
        self.make(Distribution::F { dfnum, dfden }, shape, chunks)
    }

    /// Geometric counts (`int64`): the number of trials up to and including the first success
    /// of probability `0 < p ≤ 1` (support 1, 2, …), by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).geometric(0.25, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 1));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn geometric(
        &self,
        p: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        check("geometric", "p", p, p > 0.0 && p <= 1.0, "in (0, 1]")?;
        self.make(Distribution::Geometric { p }, shape, chunks)
    }

    /// Negative binomial counts (`int64`): failures before the `n`-th success (`n > 0`, real
    /// values allowed) of probability `0 < p ≤ 1`, as NumPy draws them: a Poisson count whose
    /// rate is gamma(`n`, `(1 - p)/p`).
    ///
    /// # Errors
    /// Bad `n` or `p`; `(1 - p)/p · (n + 10·√n)` (ten standard deviations above the gamma
    /// rates' mean, NumPy's bound) above [`POISSON_LAM_MAX`](Self::POISSON_LAM_MAX). A rate
    /// beyond it even so (a gamma tail rarer than that) is counted at
    /// [`POISSON_LAM_MAX`](Self::POISSON_LAM_MAX).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).negative_binomial(3.0, 0.4, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn negative_binomial(
        &self,
        n: f64,
        p: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        check("negative_binomial", "n", n, n > 0.0, "> 0")?;
        check(
            "negative_binomial",
            "p",
            p,
            p > 0.0 && p <= 1.0,
            "in (0, 1]",
        )?;
        let max_lam = (1.0 - p) / p * (n + 10.0 * n.sqrt());
        if max_lam > Self::POISSON_LAM_MAX {
            return Err(Error::unsupported(format!(
                "negative_binomial: n = {n} too large or p = {p} too small: the gamma rates \
                 reach {max_lam}, above {}",
                Self::POISSON_LAM_MAX
            )));
        }
        self.make(Distribution::NegativeBinomial { n, p }, shape, chunks)
    }

    /// Standard normal values (mean 0, standard deviation 1): [`normal`](Self::normal)`(0, 1)`.
    ///
    /// ```
    /// use blockarray::random::Rng;
    /// let a = Rng::new(3).standard_normal::<f64>(&[5], 2)?.compute()?;
    /// assert_eq!(a, Rng::new(3).normal::<f64>(0.0, 1.0, &[5], 5)?.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn standard_normal<T: Float + FromRandom>(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.normal(0.0, 1.0, shape, chunks)
    }

    /// Standard exponential values (mean 1): [`exponential`](Self::exponential)`(1)`.
    ///
    /// ```
    /// let a = blockarray::random::Rng::new(3).standard_exponential::<f64>(&[5], 2)?.compute()?;
    /// assert!(a.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn standard_exponential<T: Float + FromRandom>(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.exponential(1.0, shape, chunks)
    }

    /// Standard gamma values (scale 1): [`gamma`](Self::gamma)`(shape, 1)`.
    ///
    /// ```
    /// let a = blockarray::random::Rng::new(3).standard_gamma::<f64>(2.0, &[5], 2)?.compute()?;
    /// assert!(a.iter().all(|&v| v >= 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn standard_gamma<T: Float + FromRandom>(
        &self,
        shape: f64,
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.gamma(shape, 1.0, size, chunks)
    }

    /// Wald (inverse Gaussian) values with mean `mean > 0` and scale (shape λ) `scale > 0`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).wald::<f64>(1.0, 3.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v > 0.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn wald<T: Float + FromRandom>(
        &self,
        mean: f64,
        scale: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("wald", "mean", mean, mean > 0.0, "> 0")?;
        check("wald", "scale", scale, scale > 0.0, "> 0")?;
        self.make(Distribution::Wald { mean, scale }, shape, chunks)
    }

    /// Zipf (zeta) counts (`int64`, support 1, 2, …) with exponent `a > 1`: `P(k) ∝ k^-a`,
    /// truncated below 2⁶³ as NumPy's (which redraws larger values): for `a` near 1 a large
    /// share of the law lies beyond, so `a = 1.01` gives values up to `i64::MAX` that
    /// follow `k^-a` conditioned on `k < 2⁶³`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).zipf(2.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| v >= 1));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn zipf(
        &self,
        a: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        check("zipf", "a", a, a > 1.0, "> 1")?;
        self.make(Distribution::Zipf { a }, shape, chunks)
    }

    /// Hypergeometric counts (`int64`): the good items among `nsample` drawn without
    /// replacement from `ngood` good and `nbad` bad ones (`ngood, nbad ≥ 0`,
    /// `0 ≤ nsample ≤ ngood + nbad < 10⁹`, NumPy's limits).
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).hypergeometric(7, 5, 4, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| (0..=4).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn hypergeometric(
        &self,
        ngood: i64,
        nbad: i64,
        nsample: i64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        if ngood < 0 || nbad < 0 || nsample < 0 {
            return Err(Error::unsupported(format!(
                "hypergeometric: ngood, nbad and nsample must be ≥ 0, got ngood {ngood}, \
                 nbad {nbad}, nsample {nsample}"
            )));
        }
        if ngood.saturating_add(nbad) >= 1_000_000_000 {
            return Err(Error::unsupported(format!(
                "hypergeometric: ngood + nbad must be below 10⁹, got {ngood} + {nbad}"
            )));
        }
        if nsample > ngood + nbad {
            return Err(Error::unsupported(format!(
                "hypergeometric: nsample = {nsample} is more than ngood + nbad = {}",
                ngood + nbad
            )));
        }
        self.make(
            Distribution::Hypergeometric {
                ngood,
                nbad,
                nsample,
            },
            shape,
            chunks,
        )
    }

    /// Power-law values in `[0, 1]` with exponent `a > 0` (CDF `x^a`), by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).power::<f64>(3.0, &[100], 30)?.compute()?;
    /// assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn power<T: Float + FromRandom>(
        &self,
        a: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("power", "a", a, a > 0.0, "> 0")?;
        self.make(Distribution::Power { a }, shape, chunks)
    }

    /// Triangular values on `[left, right]` with peak at `mode` (`left ≤ mode ≤ right`,
    /// `left < right`), by inversion.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).triangular::<f64>(-1.0, 0.0, 3.0, &[100], 30)?;
    /// assert!(x.compute()?.iter().all(|&v| (-1.0..=3.0).contains(&v)));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn triangular<T: Float + FromRandom>(
        &self,
        left: f64,
        mode: f64,
        right: f64,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        check("triangular", "left", left, true, "")?;
        check("triangular", "mode", mode, true, "")?;
        check("triangular", "right", right, true, "")?;
        if !(left <= mode && mode <= right && left < right) {
            return Err(Error::unsupported(format!(
                "triangular: need left ≤ mode ≤ right and left < right, got left {left}, \
                 mode {mode}, right {right}"
            )));
        }
        self.make(
            Distribution::Triangular { left, mode, right },
            shape,
            chunks,
        )
    }

    /// Multinomial counts (`int64`): rows of shape `size + [k]` counting `n ≥ 0` trials over
    /// `k = pvals.len()` categories (NumPy's `multinomial(n, pvals, size)`: the last
    /// probability is whatever the others leave, so `sum(pvals[..k-1]) ≤ 1` is required),
    /// drawn as conditional binomials per row. The last axis is one block.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).multinomial(20, &[0.2, 0.3, 0.5], &[10], 4)?.compute()?;
    /// assert_eq!(x.shape(), &[10, 3]);
    /// assert!(x.outer_iter().all(|r| r.sum() == 20));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn multinomial(
        &self,
        n: i64,
        pvals: &[f64],
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        if n < 0 {
            return Err(Error::unsupported(format!(
                "multinomial: n must be ≥ 0, got {n}"
            )));
        }
        if pvals.is_empty() {
            return Err(Error::unsupported("multinomial: pvals is empty"));
        }
        if let Some(j) = pvals
            .iter()
            .position(|p| !(p.is_finite() && (0.0..=1.0).contains(p)))
        {
            return Err(Error::unsupported(format!(
                "multinomial: pvals[{j}] = {} is not in [0, 1]",
                pvals[j]
            )));
        }
        let head: f64 = pvals[..pvals.len() - 1].iter().sum();
        if head > 1.0 + 1e-12 {
            return Err(Error::unsupported(format!(
                "multinomial: sum(pvals[:-1]) = {head} > 1"
            )));
        }
        let kind = RowKind::Multinomial {
            n,
            pvals: pvals.to_vec(),
        };
        self.rows(kind, pvals.len(), size, chunks)
    }

    /// Dirichlet rows of shape `size + [k]` (points of the simplex: non-negative, summing
    /// to 1) with concentrations `alpha` (`k = alpha.len()`, every entry `> 0`), by
    /// stick-breaking with beta variates (exact for small concentrations, where normalized
    /// gammas underflow). The last axis is one block.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(1).dirichlet::<f64>(&[0.5, 1.0, 2.0], &[10], 4)?.compute()?;
    /// assert!(x.outer_iter().all(|r| (r.sum() - 1.0).abs() < 1e-12));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn dirichlet<T: Float + FromRandom>(
        &self,
        alpha: &[f64],
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if alpha.is_empty() {
            return Err(Error::unsupported("dirichlet: alpha is empty"));
        }
        if let Some(j) = alpha.iter().position(|a| !(a.is_finite() && *a > 0.0)) {
            return Err(Error::unsupported(format!(
                "dirichlet: alpha[{j}] = {} must be finite and > 0",
                alpha[j]
            )));
        }
        let kind = RowKind::Dirichlet {
            alpha: alpha.to_vec(),
        };
        self.rows(kind, alpha.len(), size, chunks)
    }

    /// Multivariate normal rows: an array of shape `size + [d]` whose rows along the last
    /// axis are drawn from the normal distribution with mean `mean` (length `d`) and
    /// covariance `cov` (`d × d`, symmetric positive semi-definite). For small `d`: the
    /// covariance is factored in memory when the array is built, and blocks never split the
    /// last axis (whatever `chunks` asks for it, it is one block of `d`).
    ///
    /// # Errors
    /// `cov` not `d × d` for `d = mean.len()`, not symmetric, not positive semi-definite or
    /// not finite; `mean` not finite.
    ///
    /// ```
    /// use ndarray::array;
    /// let rng = blockarray::random::Rng::new(7);
    /// let x = rng.multivariate_normal::<f64>(&[1.0, -1.0], &array![[2.0, 0.5], [0.5, 1.0]], &[1000], [100, 2])?;
    /// assert_eq!(x.shape(), &[1000, 2]);
    /// assert!(rng.multivariate_normal::<f64>(&[0.0], &array![[-1.0]], &[3], 3).is_err());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn multivariate_normal<T: Float + FromRandom>(
        &self,
        mean: &[f64],
        cov: &ndarray::Array2<f64>,
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let d = mean.len();
        if cov.shape() != [d, d] {
            return Err(Error::shape(format!(
                "multivariate_normal: cov must be {d} × {d} for a mean of length {d}, got shape {:?}",
                cov.shape()
            )));
        }
        if let Some(k) = mean.iter().position(|v| !v.is_finite()) {
            return Err(Error::unsupported(format!(
                "multivariate_normal: mean[{k}] = {} is not finite",
                mean[k]
            )));
        }
        let cov: Vec<f64> = cov.iter().copied().collect();
        let factor = psd_factor(&cov, d)?;
        let kind = RowKind::Mvn {
            mean: mean.to_vec(),
            cov,
            factor,
        };
        self.rows(kind, d, size, chunks)
    }

    /// An array of shape `size + [d]` of rows drawn by `kind`, the last axis one block.
    fn rows<T: FromRandom>(
        &self,
        kind: RowKind,
        d: usize,
        size: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let mut shape = size.to_vec();
        shape.push(d);
        let chunks = Chunks::new(&shape, chunks, T::itemsize())?;
        let mut axes = chunks.axes().to_vec();
        *axes.last_mut().expect("at least the last axis") = vec![d];
        from_source(
            Arc::new(RowSource::<T> {
                shape,
                seed: self.seed,
                kind,
                _type: std::marker::PhantomData,
            }),
            ChunkSpec::Explicit(axes),
        )
    }

    /// The random 64-bit key of each position `0..n` (what permutations sort).
    fn keys(&self, n: usize, chunks: impl Into<ChunkSpec>) -> Result<BlockArray<i64>> {
        self.make(Distribution::Bits, &[n], chunks)
    }

    /// A random permutation of `0..n` (`int64`), in blocks of `chunks`: the stable argsort of
    /// one random key per position, out of core. The same for a seed whatever the chunking.
    ///
    /// ```
    /// use blockarray::random::Rng;
    /// let a = Rng::new(5).permutation(100, 7)?.compute()?;
    /// assert_eq!(a, Rng::new(5).permutation(100, 40)?.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn permutation(&self, n: usize, chunks: impl Into<ChunkSpec>) -> Result<BlockArray<i64>> {
        self.keys(n, chunks)?.argsort(0)
    }

    /// The permutation [`permutation`](Self::permutation) gives, computed in memory now
    /// (`take` needs its indices when the graph is built): the same order rules as argsort
    /// (key order, ties by position). An `Err` when the `n` keys cannot be allocated.
    fn permutation_now(&self, n: usize, what: &str) -> Result<Vec<isize>> {
        let key = stream_key(self.seed);
        let mut idx: Vec<(u64, usize)> = vec_with_capacity(n, what)?;
        idx.extend((0..n).map(|i| ((counter_bits(key, i as u64) as i64).key(), i)));
        idx.sort_unstable();
        Ok(idx.into_iter().map(|(_, i)| i as isize).collect())
    }

    /// `x` with its rows along axis 0 in a random order: `x[permutation(len(x))]` (NumPy's
    /// `permutation(x)`), the same for a seed whatever the chunking. The permutation of the
    /// axis is computed in memory when this is called (16 bytes per row while sorting); the rows are
    /// gathered lazily by [`BlockArray::take`].
    ///
    /// # Errors
    /// A 0-d `x`; unknown chunk sizes along axis 0; an axis 0 too long for its permutation to
    /// be allocated in memory ([`ErrorKind::Memory`](crate::ErrorKind::Memory)).
    ///
    /// ```
    /// use blockarray::{BlockArray, random::Rng};
    /// let x = BlockArray::arange(0i64, 20, 1, 6)?;
    /// let p = Rng::new(9).permutation_of(&x)?.compute()?;
    /// assert_eq!(p, Rng::new(9).permutation(20, 20)?.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn permutation_of<T: Element>(&self, x: &BlockArray<T>) -> Result<BlockArray<T>> {
        self.permute_rows(x, "permutation_of")
    }

    /// [`permutation_of`](Self::permutation_of), its errors naming `what`.
    fn permute_rows<T: Element>(&self, x: &BlockArray<T>, what: &str) -> Result<BlockArray<T>> {
        if x.ndim() == 0 {
            return Err(Error::shape(format!(
                "{what}: x must be at least 1-dimensional, got a 0-d array"
            )));
        }
        x.chunks().require_known(what)?;
        x.take(&self.permutation_now(x.shape()[0], what)?, 0)
    }

    /// `x` shuffled along axis 0: the same as [`permutation_of`](Self::permutation_of)
    /// (arrays are immutable, so NumPy's in-place `shuffle` returns the shuffled array here),
    /// with the same errors.
    ///
    /// ```
    /// use blockarray::{BlockArray, random::Rng};
    /// let x = BlockArray::from_array(ndarray::array![[1, 2], [3, 4], [5, 6]], [2, 1])?;
    /// let y = Rng::new(2).shuffle(&x)?.compute()?;
    /// let mut rows: Vec<Vec<i32>> = y.outer_iter().map(|r| r.iter().copied().collect()).collect();
    /// rows.sort();
    /// assert_eq!(rows, vec![vec![1, 2], vec![3, 4], vec![5, 6]]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn shuffle<T: Element>(&self, x: &BlockArray<T>) -> Result<BlockArray<T>> {
        self.permute_rows(x, "shuffle")
    }

    /// Checks `choice`'s parameters; returns the number of samples and the weights
    /// normalized to sum 1 (if any).
    fn check_choice(
        n: usize,
        size: &[usize],
        replace: bool,
        p: Option<&[f64]>,
    ) -> Result<(usize, Option<Vec<f64>>)> {
        let total = size
            .iter()
            .try_fold(1usize, |acc, &m| acc.checked_mul(m))
            .ok_or_else(|| {
                Error::shape(format!(
                    "choice: a sample of shape {size:?} has more elements than usize can count"
                ))
            })?;
        if n == 0 && total > 0 {
            return Err(Error::unsupported(
                "choice: a cannot be empty unless no samples are taken",
            ));
        }
        if n as u64 > i64::MAX as u64 {
            return Err(Error::unsupported(format!(
                "choice: a population of {n} cannot be indexed by int64 (at most 2⁶³ - 1)"
            )));
        }
        let weights = match p {
            None => None,
            Some(p) => {
                if p.len() != n {
                    return Err(Error::shape(format!(
                        "choice: p has {} entries for a population of {n}",
                        p.len()
                    )));
                }
                if let Some(k) = p.iter().position(|&w| !(w.is_finite() && w >= 0.0)) {
                    return Err(Error::unsupported(format!(
                        "choice: probabilities must be finite and ≥ 0, got p[{k}] = {}",
                        p[k]
                    )));
                }
                let sum: f64 = p.iter().sum();
                if n > 0 && (sum - 1.0).abs() > f64::EPSILON.sqrt() {
                    return Err(Error::unsupported(format!(
                        "choice: probabilities do not sum to 1 (p sums to {sum})"
                    )));
                }
                Some(p.iter().map(|w| w / sum).collect::<Vec<f64>>())
            }
        };
        if !replace {
            if total > n {
                return Err(Error::unsupported(format!(
                    "choice: cannot take a larger sample ({total}) than the population ({n}) \
                     without replacement"
                )));
            }
            if let Some(w) = &weights {
                let nonzero = w.iter().filter(|&&v| v > 0.0).count();
                if nonzero < total {
                    return Err(Error::unsupported(format!(
                        "choice: fewer non-zero entries in p ({nonzero}) than samples ({total}) \
                         without replacement"
                    )));
                }
            }
        }
        Ok((total, weights))
    }

    /// Random indices into a population of `n` (`int64`, NumPy's `choice(n, size, replace,
    /// p)`), an array of shape `size` in `chunks`. With replacement each element is an
    /// independent draw (weighted by `p` through the inverse of its cumulative sum); without
    /// replacement the indices are distinct, in random order (the `k` largest random keys,
    /// Efraimidis–Spirakis keys when weighted). The same for a seed whatever the chunking.
    ///
    /// # Errors
    /// `p` of the wrong length, negative, not finite or not summing to 1; more samples than
    /// the population (or than non-zero weights) without replacement; an empty population
    /// with samples asked for; a `size` whose number of elements overflows `usize`.
    ///
    /// ```
    /// use blockarray::random::Rng;
    /// let x = Rng::new(1).choice(1000, &[10, 10], false, None, 5)?.compute()?;
    /// let mut v = x.into_raw_vec_and_offset().0;
    /// v.sort();
    /// v.dedup();
    /// assert_eq!(v.len(), 100);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn choice(
        &self,
        n: usize,
        size: &[usize],
        replace: bool,
        p: Option<&[f64]>,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<i64>> {
        let (total, weights) = Self::check_choice(n, size, replace, p)?;
        if replace || total == 0 {
            return match weights {
                _ if n == 0 => self.make(Distribution::Integers { low: 0, high: 1 }, size, chunks),
                None => self.make(
                    Distribution::Integers {
                        low: 0,
                        high: n as i64,
                    },
                    size,
                    chunks,
                ),
                Some(w) => self.make(
                    Distribution::Choice {
                        cdf: cumulative(&w).into(),
                    },
                    size,
                    chunks,
                ),
            };
        }
        let picks = match weights {
            None => self
                .keys(n, ChunkSpec::auto())?
                .argtopk(total as isize, 0)?,
            Some(w) => self
                .make::<f64>(
                    Distribution::WeightedKey { weights: w.into() },
                    &[n],
                    ChunkSpec::auto(),
                )?
                .argtopk(total as isize, 0)?,
        };
        let picks = if size.len() == 1 {
            picks
        } else {
            picks.reshape(size)?
        };
        picks.rechunk(chunks)
    }

    /// The indices [`choice`](Self::choice) gives, computed in memory now (flat, C order). An
    /// `Err` when the samples (or, without replacement, the population's keys) cannot be
    /// allocated.
    fn choice_now(
        &self,
        n: usize,
        size: &[usize],
        replace: bool,
        p: Option<&[f64]>,
    ) -> Result<Vec<isize>> {
        let (total, weights) = Self::check_choice(n, size, replace, p)?;
        let key = stream_key(self.seed);
        if total == 0 {
            return Ok(Vec::new());
        }
        if replace {
            // The same draws as the source: Lemire's multiply-shift or the inverse CDF.
            let mut idx = vec_with_capacity(total, "choice_of")?;
            match weights {
                None => idx.extend((0..total as u64).map(|i| below(key, i, n as u64) as isize)),
                Some(w) => {
                    let cdf = cumulative(&w);
                    idx.extend((0..total as u64).map(|i| choice_index(&cdf, key, i) as isize));
                }
            }
            return Ok(idx);
        }
        // argtopk's order: the larger key first, ties by position.
        let mut keyed: Vec<(std::cmp::Reverse<u64>, usize)> = vec_with_capacity(n, "choice_of")?;
        keyed.extend((0..n).map(|i| {
            let k = match &weights {
                None => (counter_bits(key, i as u64) as i64).key(),
                Some(w) => weighted_key(w[i], key, i as u64).key(),
            };
            (std::cmp::Reverse(k), i)
        }));
        if total < n {
            keyed.select_nth_unstable(total);
            keyed.truncate(total);
        }
        keyed.sort_unstable();
        Ok(keyed.into_iter().map(|(_, i)| i as isize).collect())
    }

    /// Random elements of the 1-d array `a` (NumPy's `choice(a, size, replace, p)`): `a`
    /// taken at the indices [`choice`](Self::choice) gives for `a.len()`, as an array of
    /// shape `size` in `chunks`. The indices are computed in memory when this is called
    /// (8 bytes per sample, and the population's keys without replacement); the elements are
    /// gathered lazily by [`BlockArray::take`].
    ///
    /// # Errors
    /// `a` not 1-d or with unknown chunk sizes, and [`choice`](Self::choice)'s errors; more
    /// samples (or, without replacement, a longer `a`) than an index vector in memory can hold
    /// ([`ErrorKind::Memory`](crate::ErrorKind::Memory)).
    ///
    /// ```
    /// use blockarray::{BlockArray, random::Rng};
    /// let a = BlockArray::from_array(ndarray::array![10.0, 20.0, 30.0], 2)?;
    /// let x = Rng::new(4).choice_of(&a, &[6], true, Some(&[0.0, 0.5, 0.5]), 3)?.compute()?;
    /// assert!(x.iter().all(|&v| v == 20.0 || v == 30.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn choice_of<T: Element>(
        &self,
        a: &BlockArray<T>,
        size: &[usize],
        replace: bool,
        p: Option<&[f64]>,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if a.ndim() != 1 {
            return Err(Error::shape(format!(
                "choice_of: a must be 1-dimensional, got shape {:?}",
                a.shape()
            )));
        }
        a.chunks().require_known("choice_of")?;
        let idx = self.choice_now(a.shape()[0], size, replace, p)?;
        let picked = a.take(&idx, 0)?;
        let picked = if size.len() == 1 {
            picked
        } else {
            picked.reshape(size)?
        };
        picked.rechunk(chunks)
    }
}

/// The cumulative sums of `w`, the last forced to exactly 1 (so `u < 1` always finds an
/// index and trailing zero weights are never picked).
fn cumulative(w: &[f64]) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = w
        .iter()
        .map(|&v| {
            acc += v;
            acc
        })
        .collect();
    let total = acc;
    for c in &mut cdf {
        *c /= total;
    }
    // Positions after the last positive weight keep 1.0 so `c <= u` skips them.
    if let Some(last) = w.iter().rposition(|&v| v > 0.0) {
        for c in &mut cdf[last..] {
            *c = 1.0;
        }
    }
    cdf
}
