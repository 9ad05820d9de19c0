//! Eigendecomposition of a Hermitian (symmetric) chunked matrix.

use crate::cholesky::square_blocks;
use crate::kernels::{self, ColMat};
use crate::node::{array, bi, block_value, gather, mat, mats_value, op, task};
use crate::scalar::{RealOf, Scalar};
use blockarray::{BlockArray, Chunks, Result};

/// The eigenvalues (ascending) and eigenvectors (as columns) of a Hermitian matrix
/// (`numpy.linalg.eigh` with `UPLO='L'`: only the lower triangle is read): `(w, v)` with
/// `a · v = v · diag(w)`; `v` has `a`'s chunks.
///
/// dask has no eigendecomposition. This one assembles the matrix in one task (faer's
/// tridiagonalisation and divide-and-conquer, sequential), so the matrix must fit in memory:
/// at most 1 GiB (an `11585 × 11585` `f64` matrix); larger ones are an error at build time.
/// The eigenvectors are then cut back into blocks in parallel. For the extreme eigenvalues of
/// larger matrices, `svd_compressed` of a positive semi-definite matrix gives them.
///
/// ```
/// let a = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
/// let (w, v) = blockarray_linalg::eigh(&blockarray::BlockArray::from_array(a, [1, 1])?)?;
/// let w: ndarray::ArrayD<f64> = w.compute()?;
/// assert!((w[[0]] - 1.0).abs() < 1e-12 && (w[[1]] - 3.0).abs() < 1e-12);
/// assert_eq!(v.shape(), &[2, 2]);
/// # Ok::<(), blockarray::Error>(())
/// ```
#[allow(clippy::type_complexity)]
pub fn eigh<T: Scalar>(a: &BlockArray<T>) -> Result<(BlockArray<RealOf<T>>, BlockArray<T>)> {
    let a = square_blocks(a, "eigh")?;
    let n = a.shape()[0];
    let chunks = a.chunks().clone();
    if n == 0 {
        return Ok((
            BlockArray::zeros(&[0], vec![vec![0]])?,
            BlockArray::zeros(&[0, 0], vec![vec![0], vec![0]])?,
        ));
    }
    let g = gather(&a, "eigh")?;
    let evd = op::<T, _>(
        "eigh-evd",
        &[0usize; 0],
        vec![g],
        crate::node::grid(1),
        false,
        |_| {
            task(vec![(0, bi(&[0]))], |v| {
                let (w, u) = kernels::eigh(mat::<T>(&v[0], 0)?.rf())?;
                let w = ColMat::from_fn(w.len(), 1, |i, _| T::from_re(w[i]));
                Ok(mats_value(vec![w, u]))
            })
        },
    );
    let w = op::<RealOf<T>, _>(
        "eigh-w",
        &[0usize; 0],
        vec![evd.clone()],
        Chunks::from_blocks(vec![vec![n]])?,
        true,
        |_| {
            task(vec![(0, bi(&[0]))], |v| {
                let w = mat::<T>(&v[0], 0)?;
                let vals: Vec<RealOf<T>> =
                    (0..w.rf().nrows()).map(|i| w.rf()[(i, 0)].re()).collect();
                Ok(blockarray::block_value(ndarray::ArrayD::from_shape_vec(
                    ndarray::IxDyn(&[vals.len()]),
                    vals,
                )?))
            })
        },
    );
    let c2 = chunks.clone();
    let vecs = op::<T, _>(
        "eigh-v",
        &[0usize; 0],
        vec![evd],
        chunks,
        true,
        move |index| {
            let s = c2.block_start(index);
            let sh = c2.block_shape(index);
            task(vec![(0, bi(&[0]))], move |v| {
                let u = mat::<T>(&v[0], 1)?;
                Ok(block_value(ColMat::copy_of(
                    u.rf().submatrix(s[0], s[1], sh[0], sh[1]),
                )))
            })
        },
    );
    Ok((array(w)?, array(vecs)?))
}
