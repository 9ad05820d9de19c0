//! Helpers shared by the test files: reference matrices, chunkings, schedulers, comparisons.
#![allow(dead_code)]

use blockarray::{BlockArray, Computation};
use blockarray_linalg::Scalar;
use dag_core::Scheduler;
use ndarray::{Array2, ArrayD, Ix2};
use num_complex::Complex;
use proptest::prelude::*;

/// The two schedulers every property runs under.
pub fn schedulers() -> Vec<Box<dyn Scheduler>> {
    vec![
        Box::new(sched_sync::SyncScheduler::new()),
        Box::new(sched_threaded::ThreadedScheduler::new()),
    ]
}

/// One scheduler picked by a test case's flag.
pub fn scheduler(threaded: bool) -> Box<dyn Scheduler> {
    if threaded {
        Box::new(sched_threaded::ThreadedScheduler::new())
    } else {
        Box::new(sched_sync::SyncScheduler::new())
    }
}

/// Element types of the tests: reproducible values from a seed, and a tolerance.
pub trait TestScalar: Scalar {
    /// A value in [-1, 1) (both parts for complex), a function of `(seed, i)`.
    fn sample(seed: u64, i: u64) -> Self;
    /// Relative tolerance for reconstructions of well-conditioned matrices.
    fn tol() -> f64;
    /// The value as complex f64.
    fn c64(self) -> Complex<f64>;
    /// From an f64.
    fn of(x: f64) -> Self;
    /// From a complex f64 (real types keep the real part).
    fn from_c64(v: Complex<f64>) -> Self;
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(seed: u64, i: u64) -> f64 {
    let h = splitmix(seed.wrapping_mul(0x1000_0000_01b3) ^ splitmix(i));
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

impl TestScalar for f64 {
    fn sample(seed: u64, i: u64) -> f64 {
        unit(seed, i)
    }
    fn tol() -> f64 {
        1e-10
    }
    fn c64(self) -> Complex<f64> {
        Complex::new(self, 0.0)
    }
    fn of(x: f64) -> f64 {
        x
    }
    fn from_c64(v: Complex<f64>) -> f64 {
        v.re
    }
}

impl TestScalar for f32 {
    fn sample(seed: u64, i: u64) -> f32 {
        unit(seed, i) as f32
    }
    fn tol() -> f64 {
        2e-3
    }
    fn c64(self) -> Complex<f64> {
        Complex::new(f64::from(self), 0.0)
    }
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn from_c64(v: Complex<f64>) -> f32 {
        v.re as f32
    }
}

impl TestScalar for Complex<f64> {
    fn sample(seed: u64, i: u64) -> Self {
        Complex::new(unit(seed, 2 * i), unit(seed, 2 * i + 1))
    }
    fn tol() -> f64 {
        1e-10
    }
    fn c64(self) -> Complex<f64> {
        self
    }
    fn of(x: f64) -> Self {
        Complex::new(x, 0.0)
    }
    fn from_c64(v: Complex<f64>) -> Self {
        v
    }
}

impl TestScalar for Complex<f32> {
    fn sample(seed: u64, i: u64) -> Self {
        Complex::new(unit(seed, 2 * i) as f32, unit(seed, 2 * i + 1) as f32)
    }
    fn tol() -> f64 {
        2e-3
    }
    fn c64(self) -> Complex<f64> {
        Complex::new(f64::from(self.re), f64::from(self.im))
    }
    fn of(x: f64) -> Self {
        Complex::new(x as f32, 0.0)
    }
    fn from_c64(v: Complex<f64>) -> Self {
        Complex::new(v.re as f32, v.im as f32)
    }
}

/// A Hermitian positive definite matrix: X·Xᴴ + n·I.
pub fn hpd<T: TestScalar>(seed: u64, n: usize) -> Array2<T> {
    let x = random::<T>(seed, n, n);
    let g = matmul(&x, &x.t().mapv(|v| v.conjugate()));
    Array2::from_shape_fn((n, n), |(i, j)| {
        let d = if i == j { n as f64 } else { 0.0 };
        T::from_c64(g[[i, j]] + Complex::new(d, 0.0))
    })
}

/// A reproducible random `m × n` matrix.
pub fn random<T: TestScalar>(seed: u64, m: usize, n: usize) -> Array2<T> {
    Array2::from_shape_fn((m, n), |(i, j)| T::sample(seed, (i * n + j) as u64))
}

/// The matrix as a chunked array.
pub fn chunked<T: TestScalar>(a: &Array2<T>, chunks: Vec<Vec<usize>>) -> BlockArray<T> {
    BlockArray::from_array(a.clone(), chunks).expect("valid chunks")
}

/// A 2-d result.
pub fn two<T: Clone>(a: ArrayD<T>) -> Array2<T> {
    a.into_dimensionality::<Ix2>().expect("a 2-d result")
}

/// Compute several arrays in one run.
pub fn compute_all<T: TestScalar>(arrays: &[&BlockArray<T>], s: &dyn Scheduler) -> Vec<ArrayD<T>> {
    let mut c = Computation::new();
    let hs: Vec<_> = arrays.iter().map(|a| c.add(a)).collect();
    let mut out = c.run(s).expect("the computation runs");
    hs.into_iter()
        .map(|h| out.take(h).expect("taken once"))
        .collect()
}

/// `a · b` in complex f64.
pub fn matmul<T: TestScalar>(a: &Array2<T>, b: &Array2<T>) -> Array2<Complex<f64>> {
    a.mapv(T::c64).dot(&b.mapv(T::c64))
}

/// The conjugate transpose in complex f64.
pub fn adjoint<T: TestScalar>(a: &Array2<T>) -> Array2<Complex<f64>> {
    a.t().mapv(|x| T::c64(x).conj())
}

/// Largest absolute difference (infinite when any is NaN).
pub fn max_diff(a: &Array2<Complex<f64>>, b: &Array2<Complex<f64>>) -> f64 {
    assert_eq!(a.dim(), b.dim(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).norm())
        .map(|d| if d.is_nan() { f64::INFINITY } else { d })
        .fold(0.0, f64::max)
}

/// Largest absolute value (at least 1, so that relative errors of tiny matrices are absolute).
pub fn scale<T: TestScalar>(a: &Array2<T>) -> f64 {
    a.iter().map(|x| x.c64().norm()).fold(1.0, f64::max)
}

/// `a` in complex f64.
pub fn c<T: TestScalar>(a: &Array2<T>) -> Array2<Complex<f64>> {
    a.mapv(T::c64)
}

/// `‖Qᴴ Q − I‖_max`.
pub fn orthogonality<T: TestScalar>(q: &Array2<T>) -> f64 {
    let k = q.ncols();
    let qtq = adjoint(q).dot(&c(q));
    max_diff(&qtq, &Array2::eye(k).mapv(|x: f64| Complex::new(x, 0.0)))
}

/// Whether every element strictly below (`lower == false`) or above the diagonal is zero.
pub fn is_triangular<T: TestScalar>(a: &Array2<T>, upper: bool) -> bool {
    a.indexed_iter().all(|((i, j), x)| {
        let off = if upper { i > j } else { j > i };
        !off || x.c64().norm() == 0.0
    })
}

/// A random chunking of an axis of length `len` (`[0]` when empty), cutting after each
/// position with probability `cut`.
pub fn axis_chunks(len: usize, cut: f64) -> BoxedStrategy<Vec<usize>> {
    if len == 0 {
        return Just(vec![0]).boxed();
    }
    proptest::collection::vec(prop::bool::weighted(cut), len - 1)
        .prop_map(|cuts| {
            let mut blocks = Vec::new();
            let mut run = 1;
            for cut in cuts {
                if cut {
                    blocks.push(run);
                    run = 1;
                } else {
                    run += 1;
                }
            }
            blocks.push(run);
            blocks
        })
        .boxed()
}
