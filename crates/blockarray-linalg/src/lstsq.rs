//! Least squares by QR.

use crate::kernels;
use crate::kernels::Tri;
use crate::node::{adjoint, array, bi, gather, mat, op, task};
use crate::scalar::{RealOf, Scalar};
use crate::triangular::trisolve;
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
    /// The rank of `a`'s R factor (a 0-d array): singular values above
    /// `max(s) · max(R's shape) · ε` (NumPy's `matrix_rank`).
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

/// The least-squares solution of `a · x = b` (`numpy.linalg.lstsq`, computed as
/// `dask.array.linalg.lstsq` does, for any chunking): with `a = Q R` (see [`qr`](crate::qr)),
/// `x = R⁻¹ Qᴴ b`. For `M < N` (underdetermined) the minimum-norm solution, from the QR of
/// `aᴴ`: `x = Q R⁻ᴴ b`. `b` is a vector (`M`) or a matrix (`M × K`).
///
/// `residuals` are always computed (NumPy leaves them empty when `a` is rank deficient or
/// `M ≤ N`; dask does not). A rank-deficient `a` makes R singular: `x` then fails when
/// computed, naming the zero pivot's row (`rank` and `s` still compute).
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
        return Err(Error::shape(format!(
            "lstsq: a has no {} (shape {:?})",
            if m == 0 { "rows" } else { "columns" },
            a.shape()
        )));
    }
    let (x, r) = if m >= n {
        let (q, r) = crate::qr(a)?;
        let qhb = adjoint(&q).matmul(&b2)?;
        (trisolve(&r, &qhb, Tri::Upper, false, "lstsq")?, r)
    } else {
        // a = (Q R)ᴴ = Rᴴ Qᴴ; the minimum-norm x = Q · R⁻ᴴ · b.
        let (q, r) = crate::qr(&adjoint(a))?;
        let z = trisolve(&adjoint(&r), &b2, Tri::Lower, false, "lstsq")?;
        (q.matmul(&z)?, r)
    };
    // Residuals: Σ |b − a·x|² down each column.
    let diff = (&b2 - &a.matmul(&x)?)?;
    let residuals = T::abs_array(&diff).powi(2).sum(Some(&[0]), false)?;
    let (s, rank) = singular_values_and_rank(&r)?;
    Ok(Lstsq {
        x: if vector { x.squeeze(Some(&[1]))? } else { x },
        residuals,
        rank,
        s,
    })
}

/// The singular values of a matrix assembled in one task (descending), and its rank as
/// NumPy's `matrix_rank` counts it.
fn singular_values_and_rank<T: Scalar>(
    r: &BlockArray<T>,
) -> Result<(BlockArray<RealOf<T>>, BlockArray<i64>)> {
    let (k, n) = (r.shape()[0], r.shape()[1]);
    let g: Arc<dyn Node> = gather(r, "lstsq (the singular values of R)")?;
    let sv = op::<RealOf<T>, _>(
        "singular-values",
        &[0usize; 0],
        vec![g],
        Chunks::from_blocks(vec![vec![k.min(n)]])?,
        true,
        |_| {
            task(vec![(0, bi(&[0]))], |v| {
                let (_, s, _) = kernels::svd(mat::<T>(&v[0], 0)?.rf())?;
                Ok(blockarray::block_value(ndarray::ArrayD::from_shape_vec(
                    ndarray::IxDyn(&[s.len()]),
                    s,
                )?))
            })
        },
    );
    let eps = T::epsilon();
    let rank = op::<i64, _>(
        "matrix-rank",
        &[0usize; 0],
        vec![sv.clone()],
        Chunks::from_blocks(vec![])?,
        true,
        move |_| {
            task(vec![(0, bi(&[0]))], move |v| {
                let s = blockarray::block_ref::<RealOf<T>>(&v[0])?;
                let smax = s
                    .iter()
                    .fold(0.0f64, |m, x| m.max(blockarray::Float::as_f64(*x)));
                let tol = smax * k.max(n) as f64 * eps;
                let rank = s
                    .iter()
                    .filter(|&&x| blockarray::Float::as_f64(x) > tol)
                    .count() as i64;
                Ok(blockarray::block_value(ndarray::ArrayD::from_elem(
                    ndarray::IxDyn(&[]),
                    rank,
                )))
            })
        },
    );
    Ok((array(sv)?, array(rank)?))
}
