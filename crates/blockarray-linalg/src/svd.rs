//! Singular value decompositions: exact ([`svd`]) and randomized ([`svd_compressed`]).
//!
//! # Algorithms
//!
//! * **Tall and skinny** (`M ≥ N`, columns in one block or mergeable into one): TSQR's
//!   leaves and tree give `R` (`N × N`) in one task, whose SVD `R = U_R S Vᴴ` (faer) is
//!   small; the TSQR's top-down pass then carries `U_R` instead of the identity, so each
//!   block of `U = Q U_R` costs what a block of Q costs (`Hᵢ · [Xᵢ U_R; 0]`). Tasks: those
//!   of a TSQR plus one.
//! * **Short and fat** (`M < N`): the SVD of `Aᴴ`, with `U` and `Vᴴ` exchanged.
//! * **General** (both dimensions in several blocks and too wide to merge): tile QR first,
//!   `A = Q R`, then the SVD of `R` (`min(M, N) × N`, assembled in one task, at most
//!   1 GiB) and `U = Q · U_R` (a blocked product).
//!
//! Signs are made canonical (the largest entry of each row of `Vᴴ` real and positive, as
//! dask's `coerce_signs`), so the factors do not depend on the path that produced them. A wide
//! matrix (`M < N`) is decomposed as its conjugate transpose, so there the rule holds for the
//! columns of `U` instead (the largest entry of each real and positive).
//!
//! [`svd_compressed`] is Halko, Martinsson & Tropp's randomized range finder: `Y = A Ω` for a
//! Gaussian `Ω` (`N × (k + oversamples)`, at least 20 columns), optional power iterations
//! re-orthonormalised by TSQR (`Y ← A (Aᴴ Q)`), `Q = qr(Y)`, and the exact SVD of the small
//! `Qᴴ A`. `Ω` comes from blockarray's counter-based generator, whose values depend only on
//! the seed and the position, so the result for a seed does not depend on the chunking or the
//! scheduler (beyond rounding).

use crate::kernels::{self, ColMat};
use crate::node::{adjoint, array, bi, block_value, gather, mat, mats_value, op, task};
use crate::scalar::{RealOf, Scalar};
use crate::tsqr::{TsqrTree, check_matrix, child_r, one_column_block};
use blockarray::{BlockArray, Chunks, DEFAULT_CHUNK_BYTES, Error, Node, Result, s};
use std::sync::Arc;

/// Results of an SVD: `(u, s, vh)` with `a = u · diag(s) · vh`.
pub type Svd<T> = (BlockArray<T>, BlockArray<RealOf<T>>, BlockArray<T>);

/// The thin singular value decomposition `a = u · diag(s) · vh`: `u` (`M × K`) and `vh`
/// (`K × N`) with orthonormal columns and rows, `s` (`K`) non-negative and descending, `K =
/// min(M, N)` (`numpy.linalg.svd(a, full_matrices=False)`). Works for any chunking (see the
/// module notes for the algorithm each shape uses); `u` is chunked like `a`'s rows (split
/// further where a block of full rows would pass 128 MiB, as [`tsqr`](crate::tsqr) splits
/// them), `vh` like `a`'s columns (one block of rows).
///
/// ```
/// use blockarray::random::Rng;
/// let a = Rng::new(4).random::<f64>(&[2000, 30], [250, 30])?;
/// let (u, s, vh) = blockarray_linalg::svd(&a)?;
/// assert_eq!((u.shape(), s.shape(), vh.shape()), (&[2000, 30][..], &[30][..], &[30, 30][..]));
/// let s = s.compute()?;
/// assert!(s.len() == 30 && s[[0]] >= s[[29]] && s[[29]] > 0.0);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn svd<T: Scalar>(a: &BlockArray<T>) -> Result<Svd<T>> {
    check_matrix(a, "svd")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let k = m.min(n);
    if k == 0 {
        return Ok((
            BlockArray::zeros(&[m, 0], vec![a.chunks().axis(0).to_vec(), vec![0]])?,
            BlockArray::zeros(&[0], vec![vec![0]])?,
            BlockArray::zeros(&[0, n], vec![vec![0], a.chunks().axis(1).to_vec()])?,
        ));
    }
    if m < n {
        // a = (aᴴ)ᴴ = (U' S V'ᴴ)ᴴ = V' S U'ᴴ.
        let (u2, s2, vh2) = svd(&adjoint(a))?;
        return Ok((adjoint(&vh2), s2, adjoint(&u2)));
    }
    let nb = a.numblocks();
    if nb[1] == 1 || n * n * T::itemsize() <= DEFAULT_CHUNK_BYTES {
        let a1 = one_column_block(a, "svd")?;
        let tree = TsqrTree::new(&a1, true, None).map_err(|e| {
            e.context("svd (svd_compressed computes the leading singular values of large matrices)")
        })?;
        let (root, index, from_house) = tree.root();
        let small = small_svd::<T>(root, index, from_house, tree.k());
        let u = tree.q(Some((small.clone(), tree.k())))?;
        return Ok((
            u,
            extract_s::<T>(&small, k)?,
            extract_vh::<T>(&small, k, a.chunks().axis(1))?,
        ));
    }
    svd_via_qr(a)
}

/// The SVD by tile QR first, then the SVD of R (`min(M, N) × N`, in one task of at most
/// 1 GiB) and `U = Q · U_R`: what [`svd`] uses when both axes are in several blocks and full
/// rows are too wide to merge into one block. Any chunking.
///
/// ```
/// let a = blockarray::random::Rng::new(1).random::<f64>(&[50, 40], [20, 15])?;
/// let (_, s, _) = blockarray_linalg::svd_via_qr(&a)?;
/// let (_, s2, _) = blockarray_linalg::svd(&a)?;
/// let (s, s2) = (s.compute()?, s2.compute()?);
/// assert!(s.iter().zip(s2.iter()).all(|(x, y)| (x - y).abs() < 1e-10));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn svd_via_qr<T: Scalar>(a: &BlockArray<T>) -> Result<Svd<T>> {
    check_matrix(a, "svd_via_qr")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let k = m.min(n);
    if k == 0 {
        return svd(a);
    }
    if m < n {
        let (u2, s2, vh2) = svd_via_qr(&adjoint(a))?;
        return Ok((adjoint(&vh2), s2, adjoint(&u2)));
    }
    let (q, r) = crate::qr_tiled(a)?;
    let g = gather(&r, "svd of a matrix chunked along both axes").map_err(|e| {
        e.context("svd: use svd_compressed for the leading singular values of a matrix this large")
    })?;
    let small = small_svd::<T>(g, vec![0], false, k);
    // U_R as a k × k array chunked like Q's columns, then U = Q · U_R.
    let qcols = q.chunks().axis(1).to_vec();
    let offs: Vec<usize> = qcols
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let qc = qcols.clone();
    let ur = op::<T, _>(
        "svd-ur",
        &[0usize; 0],
        vec![small.clone()],
        Chunks::from_blocks(vec![qcols, vec![k]])?,
        true,
        move |index| {
            let (r0, h) = (offs[index[0]], qc[index[0]]);
            task(vec![(0, bi(&[0]))], move |v| {
                Ok(block_value(
                    mat::<T>(&v[0], 0)?.rf().subrows(r0, h).to_owned_colmat(),
                ))
            })
        },
    );
    let u = q.matmul(&array::<T>(ur)?)?;
    Ok((
        u,
        extract_s::<T>(&small, k)?,
        extract_vh::<T>(&small, k, a.chunks().axis(1))?,
    ))
}

trait ToColMat<T> {
    fn to_owned_colmat(self) -> ColMat<T>;
}

impl<T: Scalar> ToColMat<T> for faer::MatRef<'_, T> {
    fn to_owned_colmat(self) -> ColMat<T> {
        ColMat::copy_of(self)
    }
}

/// A hidden node computing the SVD of the `k × N` matrix at `(node, index)` (a TSQR root's R,
/// or a gathered matrix), with canonical signs: `[U (k × k), s (k × 1), Vᴴ (k × N)]`.
pub(crate) fn small_svd<T: Scalar>(
    node: Arc<dyn Node>,
    index: Vec<usize>,
    from_house: bool,
    k: usize,
) -> Arc<dyn Node> {
    op::<T, _>(
        "svd-small",
        &(from_house, k),
        vec![node],
        crate::node::grid(1),
        false,
        move |_| {
            task(vec![(0, bi(&index))], move |v| {
                let r = child_r::<T>(&v[0], from_house)?;
                let (mut u, s, mut vh) = kernels::svd(r.as_ref())?;
                kernels::coerce_signs(&mut u, &mut vh);
                let s = ColMat::from_fn(s.len(), 1, |i, _| T::from_re(s[i]));
                Ok(mats_value(vec![u, s, vh]))
            })
        },
    )
}

/// The singular values of a [`small_svd`] node, as a 1-d array of the real type.
pub(crate) fn extract_s<T: Scalar>(
    small: &Arc<dyn Node>,
    k: usize,
) -> Result<BlockArray<RealOf<T>>> {
    let node = op::<RealOf<T>, _>(
        "svd-s",
        &[0usize; 0],
        vec![small.clone()],
        Chunks::from_blocks(vec![vec![k]])?,
        true,
        move |_| {
            task(vec![(0, bi(&[0]))], move |v| {
                let s = mat::<T>(&v[0], 1)?;
                let vals: Vec<RealOf<T>> =
                    (0..s.rf().nrows()).map(|i| s.rf()[(i, 0)].re()).collect();
                Ok(blockarray::block_value(ndarray::ArrayD::from_shape_vec(
                    ndarray::IxDyn(&[vals.len()]),
                    vals,
                )?))
            })
        },
    );
    array(node)
}

/// `Vᴴ` of a [`small_svd`] node, chunked like `cols` along its columns.
fn extract_vh<T: Scalar>(small: &Arc<dyn Node>, k: usize, cols: &[usize]) -> Result<BlockArray<T>> {
    let offs: Vec<usize> = cols
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let cc = cols.to_vec();
    let node = op::<T, _>(
        "svd-vh",
        &[0usize; 0],
        vec![small.clone()],
        Chunks::from_blocks(vec![vec![k], cols.to_vec()])?,
        true,
        move |index| {
            let (c0, w) = (offs[index[1]], cc[index[1]]);
            task(vec![(0, bi(&[0]))], move |v| {
                Ok(block_value(
                    mat::<T>(&v[0], 2)?.rf().subcols(c0, w).to_owned_colmat(),
                ))
            })
        },
    );
    array(node)
}

/// Options of [`svd_compressed`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SvdCompressed {
    n_power_iter: usize,
    n_oversamples: usize,
    seed: u64,
}

impl Default for SvdCompressed {
    fn default() -> Self {
        SvdCompressed::new()
    }
}

impl SvdCompressed {
    /// The most power iterations [`svd_compressed`] accepts (1000). Each iteration adds two
    /// passes over `a` and two QR factorizations to the graph, which is built when
    /// `svd_compressed` is called, while the accuracy stops improving after a handful of
    /// iterations (scikit-learn uses at most 7): a larger count is a mistake that would only
    /// build a graph too large to keep or run.
    pub const MAX_POWER_ITER: usize = 1000;

    /// dask's defaults: no power iteration, 10 oversamples, seed 0.
    pub fn new() -> SvdCompressed {
        SvdCompressed {
            n_power_iter: 0,
            n_oversamples: 10,
            seed: 0,
        }
    }

    /// Power iterations (each costs two passes over `a` and improves the accuracy when the
    /// singular values decay slowly); [`svd_compressed`] refuses more than
    /// [`MAX_POWER_ITER`](Self::MAX_POWER_ITER).
    pub fn n_power_iter(mut self, n: usize) -> SvdCompressed {
        self.n_power_iter = n;
        self
    }

    /// Extra columns of the random sketch beyond `k` (the sketch has at most min(M, N)
    /// columns); [`svd_compressed`] refuses a count for which `k + n` overflows `usize`.
    pub fn n_oversamples(mut self, n: usize) -> SvdCompressed {
        self.n_oversamples = n;
        self
    }

    /// The seed of the Gaussian sketch.
    pub fn seed(mut self, seed: u64) -> SvdCompressed {
        self.seed = seed;
        self
    }
}

/// An approximate SVD of rank `k` by randomized range finding (see the module notes):
/// `(u (M × k), s (k), vh (k × N))`, like `dask.array.linalg.svd_compressed`. For a seed, the
/// result does not depend on the chunking or the scheduler (beyond rounding): the sketch
/// `Ω` is generated by position.
///
/// # Errors
/// `a` not 2-d; `k` not between 1 and min(M, N); more than
/// [`SvdCompressed::MAX_POWER_ITER`] power iterations; `k + n_oversamples` overflowing
/// `usize`.
///
/// ```
/// use blockarray_linalg::{SvdCompressed, svd_compressed};
/// // A rank-5 matrix: the approximation of rank 5 is exact.
/// let rng = blockarray::random::Rng::new(9);
/// let a = rng.random::<f64>(&[600, 5], [100, 5])?.matmul(&rng.random::<f64>(&[5, 400], [5, 100])?)?;
/// let (u, s, vh) = svd_compressed(&a, 5, &SvdCompressed::new().n_power_iter(1).seed(3))?;
/// let approx = u.matmul(&(&vh * &s.insert_axis(1)?)?)?.compute()?;
/// let a = a.compute()?;
/// assert!(approx.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-9));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn svd_compressed<T: Scalar>(
    a: &BlockArray<T>,
    k: usize,
    options: &SvdCompressed,
) -> Result<Svd<T>> {
    check_matrix(a, "svd_compressed")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let full = m.min(n);
    if k == 0 || k > full {
        return Err(Error::shape(format!(
            "svd_compressed: rank k = {k} must be between 1 and min(M, N) = {full} for shape {:?}",
            a.shape()
        )));
    }
    if options.n_power_iter > SvdCompressed::MAX_POWER_ITER {
        return Err(Error::unsupported(format!(
            "svd_compressed: n_power_iter = {} is more than the {} power iterations allowed",
            options.n_power_iter,
            SvdCompressed::MAX_POWER_ITER
        )));
    }
    let sketch = k.checked_add(options.n_oversamples).ok_or_else(|| {
        Error::unsupported(format!(
            "svd_compressed: k + n_oversamples = {k} + {} overflows usize",
            options.n_oversamples
        ))
    })?;
    let comp = sketch.max(20).min(full);
    let omega = T::gaussian(
        options.seed,
        &[n, comp],
        vec![a.chunks().axis(1).to_vec(), vec![comp]],
    )?;
    let orth = |y: &BlockArray<T>| -> Result<BlockArray<T>> { Ok(crate::tsqr(y)?.0) };
    let mut y = a.matmul(&omega)?;
    let ah = adjoint(a);
    for _ in 0..options.n_power_iter {
        let q = orth(&y)?;
        let z = orth(&ah.matmul(&q)?)?;
        y = a.matmul(&z)?;
    }
    let q = orth(&y)?;
    let b = adjoint(&q).matmul(a)?;
    let (ub, s, vh) = svd(&b)?;
    let u = q.matmul(&ub)?;
    Ok((
        u.slice(s![.., ..k])?,
        s.slice(s![..k])?,
        vh.slice(s![..k, ..])?,
    ))
}
