//! Least squares by QR.

use crate::kernels;
use crate::kernels::ColMat;
use crate::node::{adjoint, array, bi, block_value, gather, mat, op, task};
use crate::scalar::{RealOf, Scalar};
use crate::svd::{extract_s, small_svd};
use crate::tsqr::check_matrix;
use blockarray::{BlockArray, Chunks, Error, Node, Result};
use std::sync::Arc;

/// The result of [`lstsq`], as `dask.array.linalg.lstsq` returns it.
#[derive(Clone)]
pub struct Lstsq<T: Scalar> {
    /// The solution (`N` or `N × K`, like `b`).
    pub x: BlockArray<T>,
    /// `Σ |b − a·x|²` per column of `b`: shape `(K,)`, or `(1,)` for a vector `b`.
    pub residuals: BlockArray<RealOf<T>>,
    /// The rank of `a` (a 0-d array): singular values above `max(s) · max(M, N) · ε`, as
    /// NumPy's `lstsq` counts them (`ε` of the element type: NumPy computes `f32` input in
    /// `f64`, with `f64`'s `ε`, so it keeps singular values this counts as rounding noise).
    pub rank: BlockArray<i64>,
    /// The singular values of `a` (of its R factor), descending.
    pub s: BlockArray<RealOf<T>>,
}

impl<T: Scalar> std::fmt::Debug for Lstsq<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lstsq")
            .field("x", &self.x)
            .field("residuals", &self.residuals)
            .field("rank", &self.rank)
            .field("s", &self.s)
            .finish()
    }
}

/// The least-squares solution of `a · x = b` of least norm (`numpy.linalg.lstsq`), for any
/// chunking: with `a = Q R` (see [`qr`](crate::qr)), `x = R⁺ Qᴴ b`; for `M < N`
/// (underdetermined), from the QR of `aᴴ`, `x = Q (R⁺)ᴴ b`. `R⁺` is the pseudo-inverse of the
/// `min(M, N)`-square R, from its SVD in one task, singular values at most
/// `max(s) · max(M, N) · ε` taken as zero (NumPy's default `rcond`, with `ε` of the element
/// type: this computes `f32` input in `f32`, where NumPy computes it in `f64` and keeps
/// singular values down to `f64`'s `ε`): a rank-deficient `a` gets NumPy's minimum-norm
/// solution, not the blow-up of a pivot the size of rounding errors.
/// `b` is a vector (`M`) or a matrix (`M × K`).
///
/// `residuals` are always computed (NumPy leaves them empty when `a` is rank deficient or
/// `M ≤ N`; dask does not).
///
/// ```
/// use blockarray::BlockArray;
/// // Fit y = 2 + 3·t on 1000 points, in blocks of 100 rows.
/// let t = BlockArray::arange(0.0f64, 1.0, 0.001, 100)?;
/// let a = blockarray::stack(&[&BlockArray::ones(&[1000], 100)?, &t], 1)?;
/// let y = &(&t * 3.0) + 2.0;
/// let fit = blockarray_linalg::lstsq(&a, &y)?;
/// let x = fit.x.compute()?;
/// assert!((x[[0]] - 2.0).abs() < 1e-10 && (x[[1]] - 3.0).abs() < 1e-10);
/// assert_eq!(fit.rank.compute()?.into_iter().next(), Some(2));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn lstsq<T: Scalar>(a: &BlockArray<T>, b: &BlockArray<T>) -> Result<Lstsq<T>> {
    check_matrix(a, "lstsq")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    b.chunks().require_known("lstsq")?;
    if b.ndim() == 0 || b.ndim() > 2 || b.shape()[0] != m {
        return Err(Error::shape(format!(
            "lstsq: b must have shape ({m},) or ({m}, K) for a of shape {:?}, got {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let vector = b.ndim() == 1;
    let b2 = if vector { b.insert_axis(1)? } else { b.clone() };
    if m == 0 || n == 0 {
        // NumPy's answer: nothing to fit, so x = 0, rank 0, no singular values; the residuals
        // are then |b|² down each column (0 when there are no rows).
        let k = b2.shape()[1];
        let x = BlockArray::<T>::zeros(&[n, k], [n.max(1), k.max(1)])?;
        return Ok(Lstsq {
            x: if vector { x.squeeze(Some(&[1]))? } else { x },
            residuals: T::abs_array(&b2).powi(2).sum(Some(&[0]), false)?,
            rank: BlockArray::<i64>::zeros(&[], 1)?,
            s: BlockArray::<RealOf<T>>::zeros(&[0], 1)?,
        });
    }
    // The pseudo-inverse of R from its SVD (singular values at most NumPy's `rcond` ×
    // the largest dropped), so a rank-deficient `a` gets the minimum-norm solution as from
    // NumPy (LAPACK's gelsd), not R⁻¹'s blow-up of a rounding-sized pivot.
    let rcond = T::epsilon() * m.max(n) as f64;
    let (x, SvdOfR { s, rank, .. }) = if m >= n {
        // a = Q R: x = R⁺ Qᴴ b.
        let (q, r) = crate::qr(a)?;
        let parts = SvdOfR::new(&r, rcond)?;
        (parts.pinv.matmul(&adjoint(&q).matmul(&b2)?)?, parts)
    } else {
        // a = (Q R)ᴴ = Rᴴ Qᴴ: x = Q (Rᴴ)⁺ b = Q (R⁺)ᴴ b.
        let (q, r) = crate::qr(&adjoint(a))?;
        let parts = SvdOfR::new(&r, rcond)?;
        (q.matmul(&adjoint(&parts.pinv).matmul(&b2)?)?, parts)
    };
    // Residuals: Σ |b − a·x|² down each column.
    let diff = (&b2 - &a.matmul(&x)?)?;
    let residuals = T::abs_array(&diff).powi(2).sum(Some(&[0]), false)?;
    Ok(Lstsq {
        x: if vector { x.squeeze(Some(&[1]))? } else { x },
        residuals,
        rank,
        s,
    })
}

/// From one SVD of the (small, square) R factor assembled in one task: its singular values
/// (descending), its rank and its pseudo-inverse, each singular value at most
/// `rcond · max(s)` counted as zero (NumPy's `lstsq`).
struct SvdOfR<T: Scalar> {
    s: BlockArray<RealOf<T>>,
    rank: BlockArray<i64>,
    pinv: BlockArray<T>,
}

impl<T: Scalar> SvdOfR<T> {
    fn new(r: &BlockArray<T>, rcond: f64) -> Result<SvdOfR<T>> {
        let (k, n) = (r.shape()[0], r.shape()[1]);
        let g: Arc<dyn Node> = gather(r, "lstsq (the SVD of R)")?;
        // [U, s (k × 1), Vᴴ], as the SVD itself computes it.
        let parts = small_svd::<T>(g, vec![0], false, k);
        let rank = op::<i64, _>(
            "matrix-rank",
            &[rcond],
            vec![parts.clone()],
            Chunks::from_blocks(vec![])?,
            true,
            move |_| {
                task(vec![(0, bi(&[0]))], move |v| {
                    let s = mat::<T>(&v[0], 1)?;
                    let kept = kept_values::<T>(s.rf(), rcond);
                    let rank = kept.iter().filter(|&&keep| keep).count() as i64;
                    Ok(blockarray::block_value(ndarray::ArrayD::from_elem(
                        ndarray::IxDyn(&[]),
                        rank,
                    )))
                })
            },
        );
        let pinv = op::<T, _>(
            "pinv",
            &[rcond],
            vec![parts.clone()],
            Chunks::from_blocks(vec![vec![n], vec![k]])?,
            true,
            move |_| {
                task(vec![(0, bi(&[0]))], move |v| {
                    let (u, s, vh) = (
                        mat::<T>(&v[0], 0)?,
                        mat::<T>(&v[0], 1)?,
                        mat::<T>(&v[0], 2)?,
                    );
                    let kept = kept_values::<T>(s.rf(), rcond);
                    // R⁺ = V · diag(1/s kept) · Uᴴ: Uᴴ's rows scaled, then V times them.
                    let (u, s) = (u.rf(), s.rf());
                    let scaled = ColMat::from_fn(u.ncols(), u.nrows(), |i, j| {
                        if kept[i] {
                            u[(j, i)].conjugate()
                                * T::from_re(<RealOf<T> as blockarray::Float>::from_f64(
                                    1.0 / blockarray::Float::as_f64(s[(i, 0)].re()),
                                ))
                        } else {
                            T::from_re(<RealOf<T> as blockarray::Float>::from_f64(0.0))
                        }
                    });
                    let pinv = kernels::adjoint_product(vh.rf(), scaled.as_ref());
                    Ok(block_value(pinv))
                })
            },
        );
        Ok(SvdOfR {
            s: extract_s::<T>(&parts, k.min(n))?,
            rank: array(rank)?,
            pinv: array(pinv)?,
        })
    }
}

/// Which singular values (a column, descending) count as non-zero: those above
/// `rcond · max(s)`.
fn kept_values<T: Scalar>(s: faer::MatRef<'_, T>, rcond: f64) -> Vec<bool> {
    let vals: Vec<f64> = (0..s.nrows())
        .map(|i| blockarray::Float::as_f64(s[(i, 0)].re()))
        .collect();
    let tol = vals.iter().fold(0.0f64, |m, &x| m.max(x)) * rcond;
    vals.iter().map(|&x| x > tol).collect()
}
