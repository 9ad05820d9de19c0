//! # blockarray-linalg: blocked linear algebra on lazy chunked arrays
//!
//! QR, SVD, Cholesky, LU, solves, least squares, norms and eigendecompositions of
//! [`BlockArray`](blockarray::BlockArray) matrices. Like every blockarray operation they build
//! an expression and return at once; computing the result lowers only the blocks it needs to
//! a task graph, which blockarray's schedulers run on every core. Inside each task, faer does
//! the block's arithmetic sequentially (the scheduler owns the cores).
//!
//! ```
//! use blockarray::{BlockArray, random::Rng};
//! use blockarray_linalg::{Tri, cholesky, lstsq, qr, solve, svd};
//!
//! // A tall 20,000 × 50 matrix in 10 blocks of rows: nothing is generated yet.
//! let a = Rng::new(1).random::<f64>(&[20_000, 50], [2_000, 50])?;
//! let (q, r) = qr(&a)?;                       // TSQR: one column block
//! let (_u, s, _vh) = svd(&a)?;                // TSQR, then the SVD of R
//! assert_eq!((q.shape(), r.shape(), s.shape()), (&[20_000, 50][..], &[50, 50][..], &[50][..]));
//!
//! // Least squares: fit b ≈ a · x.
//! let b = Rng::new(2).random::<f64>(&[20_000], 2_000)?;
//! let fit = lstsq(&a, &b)?;
//! assert_eq!(fit.x.shape(), &[50]);
//!
//! // A symmetric positive definite system, by Cholesky and by LU.
//! let g = (&a.t().matmul(&a)? + &(&BlockArray::eye(50, None, 0, 20)? * 1.0))?; // 3 × 3 blocks
//! let l = cholesky(&g, Tri::Lower)?;
//! let x = solve(&g, &fit.x)?;
//! // Only now does anything run: one computation per result here.
//! let (l, x, s) = (l.compute()?, x.compute()?, s.compute()?);
//! assert!(l[[0, 1]] == 0.0 && s[[0]] >= s[[49]]);
//! assert!(x.iter().all(|v| v.is_finite()));
//! # Ok::<(), blockarray::Error>(())
//! ```
//!
//! What is where:
//!
//! * **QR** — [`qr`] for any chunking, choosing among [`tsqr`] (tall and skinny: one block of
//!   columns; [`tsqr_with`] for R alone or another tree fan-in), a short-and-fat QR (one block
//!   of rows) and [`qr_tiled`] (tile Householder QR over any grid); [`qr_r`] for R alone.
//! * **SVD** — [`svd`] (tall-skinny by TSQR, short-fat by the transpose, general by
//!   [`svd_via_qr`]), and [`svd_compressed`] (randomized, [`SvdCompressed`]: power iterations,
//!   oversampling, seed).
//! * **Factorisations and solves** — [`cholesky`] (lower or upper, [`Tri`]), [`lu`] (partial
//!   pivoting; [`Lu`] holds `p`, `l`, `u` and the permutation as indices), [`solve`],
//!   [`solve_triangular`] / [`solve_triangular_with`], [`inv`], [`lstsq`] ([`Lstsq`]: solution,
//!   residuals, rank, singular values).
//! * **Norms and spectra** — [`norm`] (vector and matrix norms along any axes, [`NormOrd`]),
//!   [`eigh`] (Hermitian eigendecomposition).
//! * **Element types** — [`Scalar`]: `f32`, `f64`, `Complex<f32>`, `Complex<f64>`; real
//!   results (singular values, norms, eigenvalues) have the real type [`RealOf<T>`].
//! * **Kernels** — [`kernels`]: the per-block faer calls the tasks make, public for
//!   benchmarks and for extensions that build their own blocked algorithms.
//!
//! # Design
//!
//! * **Blocked algorithms are expression nodes.** Each step of an algorithm (a panel
//!   factorisation, the trailing updates of one step, one level of a TSQR tree) is a node of
//!   blockarray's expression graph, implemented through blockarray's public `Node` trait; a
//!   step that produces more than an array block (Householder reflectors, a pivoted panel) is
//!   a hidden node whose task values only this crate reads. So these operations are lazy,
//!   compose with every other operation (a slice of `q` lowers only the tasks that block
//!   needs), and run on any scheduler.
//! * **Keys hash every parameter.** A node's token hashes its inputs' names and its parameters
//!   (step numbers, triangle, fan-in, seed, rank, iteration counts), never a closure's type:
//!   equal keys mean equal work.
//! * **Memory per task is bounded by the blocks.** Every task reads a bounded number of
//!   blocks (at most three for Cholesky, tile QR and triangular solves), except where the
//!   algorithm needs a whole panel (LU's pivot search reads a block column; the SVD and eigh
//!   hold one small or at most 1 GiB matrix).
//! * **Bad input is an error when the expression is built**: a matrix that is not 2-d or not
//!   square, a right-hand side of the wrong length, a rank out of range, an operation that
//!   would hold more than 1 GiB in one task. Chunkings an algorithm needs are made for you:
//!   rows and columns are cut at the same places where diagonal blocks must be square, and
//!   columns merged into one block where TSQR needs it. Numerical failures (a matrix that is
//!   not positive definite, a singular system) are errors when computed, naming the block and
//!   the row.
//!
//! Costs in tasks and bytes, per algorithm, are in each function's module notes and in the
//! workspace's `docs/architecture.md`.

#![doc(test(attr(deny(warnings))))]

mod cholesky;
mod eigh;
// Public only for the crate's `kernels` bench: not part of the API (its functions assert
// their arguments' shapes, as kernels inside tasks whose shapes are checked at build time).
#[doc(hidden)]
pub mod kernels;
mod lstsq;
mod lu;
mod node;
mod norm;
mod qr;
mod scalar;
mod svd;
mod triangular;
mod tsqr;
mod wire;

pub use cholesky::cholesky;
pub use eigh::eigh;
pub use kernels::Tri;
pub use lstsq::{Lstsq, lstsq};
pub use lu::{Lu, inv, lu, solve};
pub use norm::{NormOrd, norm};
pub use qr::{qr, qr_r, qr_tiled};
pub use scalar::{RealOf, Scalar};
pub use svd::{Svd, SvdCompressed, svd, svd_compressed, svd_via_qr};
pub use triangular::{solve_triangular, solve_triangular_with};
pub use tsqr::{Tsqr, TsqrOptions, tsqr, tsqr_with};
