//! Cholesky factorisation of a Hermitian positive definite chunked matrix.
//!
//! # Algorithm (blocked right-looking)
//!
//! The rows and columns are first cut at the same places (the common refinement of the two
//! chunkings, a rechunk that only splits blocks), so that diagonal blocks are square. Then, for
//! each diagonal block `k`:
//!
//! * `potrf`: `L_kk = chol(A_kk)` (one task);
//! * `trsm`: `L_ik = A_ik · L_kk⁻ᴴ` for every block below it (one task each);
//! * `update`: `A_ij ← A_ij − L_ik · L_jkᴴ` for every block of the trailing lower triangle
//!   (one task each; on the diagonal only the lower triangle is computed, half the flops).
//!
//! Only the lower triangle of blocks of the input is read (as LAPACK's `potrf` with
//! `uplo = 'L'`). For `p × p` blocks of `b × b` there are `p` potrf, `p(p−1)/2` trsm and
//! `p(p−1)(p+1)/6` update tasks; `n³/3` flops in all; every task reads at most three blocks.
//! Updates of step `k` only wait for the panel of step `k`, so the next steps' panels start
//! while the rest of the trailing matrix is still being updated.

use crate::kernels::{self, Tri};
use crate::node::{array, array_value, bi, mat, mat_value, op, task};
use crate::scalar::Scalar;
use crate::tsqr::check_matrix;
use blockarray::{BlockArray, Chunks, Error, Float, Node, Result, unify_axis};
use dag_core::BlockIndex;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use std::sync::Arc;

/// Number of block `(i, j)`, `j ≤ i`, of a lower triangle numbered row by row.
fn tri(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

/// The block `(i, j)` numbered `l` by [`tri`].
fn untri(l: usize) -> (usize, usize) {
    let mut i = (((8 * l + 1) as f64).sqrt() as usize).saturating_sub(1) / 2;
    while tri(i + 1, 0) <= l {
        i += 1;
    }
    while tri(i, 0) > l {
        i -= 1;
    }
    (i, l - tri(i, 0))
}

/// Where block `(i, j)` of the trailing matrix is: in the input (`shift == None`) or in the
/// last update node, whose blocks start at block row and column `shift`.
fn at(shift: Option<usize>, i: usize, j: usize) -> BlockIndex {
    match shift {
        None => bi(&[i, j]),
        Some(s) => bi(&[tri(i - s, j - s)]),
    }
}

/// `a` square with equal row and column chunks (rechunked to the common refinement if not).
pub(crate) fn square_blocks<T: Scalar>(a: &BlockArray<T>, what: &str) -> Result<BlockArray<T>> {
    check_matrix(a, what)?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    if m != n {
        return Err(Error::shape(format!(
            "{what} needs a square matrix, got shape {:?}",
            a.shape()
        )));
    }
    let (rows, cols) = (a.chunks().axis(0), a.chunks().axis(1));
    if rows == cols {
        return Ok(a.clone());
    }
    let common = unify_axis(rows, cols)?;
    a.rechunk(vec![common.clone(), common])
}

/// The Cholesky factor of a Hermitian (symmetric) positive definite matrix: `L` lower
/// triangular with `a = L · Lᴴ` (`Tri::Lower`, NumPy's default), or `U = Lᴴ` upper triangular
/// with `a = Uᴴ · U` (`Tri::Upper`, dask's default). Only the lower triangle of blocks of `a` is
/// read. The result has `a`'s chunks (rows and columns cut at the same places: when they
/// differ, both are cut where either is).
///
/// A matrix that is not positive definite fails when computed, with an error naming the
/// diagonal block and the order of the leading minor that is not positive.
///
/// ```
/// use blockarray_linalg::{Tri, cholesky};
/// let x = blockarray::random::Rng::new(2).random::<f64>(&[300, 300], [100, 100])?;
/// let a = (&x.matmul(&x.t())? + &(&blockarray::BlockArray::<f64>::eye(300, None, 0, 100)? * 300.0))?;
/// let l = cholesky(&a, Tri::Lower)?;
/// let llt = l.matmul(&l.t())?.compute()?;
/// let a = a.compute()?;
/// assert!(llt.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-9 * y.abs().max(1.0)));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn cholesky<T: Scalar>(a: &BlockArray<T>, tri: Tri) -> Result<BlockArray<T>> {
    let a = square_blocks(a, "cholesky")?;
    let chunks = a.chunks().axis(0).to_vec();
    let n = a.shape()[0];
    if n == 0 {
        return BlockArray::zeros(&[0, 0], vec![vec![0], vec![0]]);
    }
    let p = chunks.len();
    crate::node::check_tasks("cholesky", p, crate::node::tetrahedral(p))?;
    let offsets: Vec<usize> = chunks
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    // The current value of block (i, j) of the trailing matrix: block (i, j) of the input at
    // step 0, then block `tri(i − shift, j − shift)` of the last update node (whose grid is the
    // trailing lower triangle, numbered row by row).
    let mut cur_node: Arc<dyn Node> = a.node().clone();
    let mut cur_shift: Option<usize> = None;
    let mut potrf: Vec<Arc<dyn Node>> = Vec::with_capacity(p);
    let mut trsm: Vec<Option<Arc<dyn Node>>> = Vec::with_capacity(p);
    for k in 0..p {
        let (dk, ok, hk) = (at(cur_shift, k, k), offsets[k], chunks[k]);
        let d = op::<T, _>(
            "cholesky-potrf",
            &k,
            vec![cur_node.clone()],
            crate::node::grid(1),
            false,
            move |_| {
                task(vec![(0, dk.clone())], move |v| {
                    let a = mat::<T>(&v[0], 0)?;
                    let l = kernels::cholesky(a.rf()).map_err(|i| {
                        // A NaN pivot fails faer's test too: name it for what it is (NaN or
                        // infinite values in the matrix, or reached by the updates).
                        let a = kernels::ColMat::copy_of(a.rf());
                        let n = a.nrows();
                        let finite = (0..n)
                            .all(|c| (c..n).all(|r| a.at(r, c).modulus().as_f64().is_finite()));
                        if finite {
                            format!(
                                "cholesky: the matrix is not positive definite: its leading minor of order {} \
                                 (in diagonal block ({k}, {k}), rows {}..{}) is not positive",
                                ok + i + 1,
                                ok,
                                ok + hk
                            )
                        } else {
                            format!(
                                "cholesky: the matrix is not finite: NaN or infinite values reach \
                                 diagonal block ({k}, {k}), rows {}..{}",
                                ok,
                                ok + hk
                            )
                        }
                    })?;
                    Ok(mat_value(l))
                })
            },
        );
        potrf.push(d.clone());
        let below = p - k - 1;
        if below == 0 {
            trsm.push(None);
            break;
        }
        let cur = cur_node.clone();
        let shift = cur_shift;
        let t = op::<T, _>(
            "cholesky-trsm",
            &k,
            vec![d.clone(), cur.clone()],
            Chunks::from_blocks(vec![chunks[k + 1..].to_vec(), vec![chunks[k]]])?,
            false,
            move |index| {
                let i = index[0] + k + 1;
                task(vec![(0, bi(&[0])), (1, at(shift, i, k))], |v| {
                    let l = mat::<T>(&v[0], 0)?;
                    let mut x = kernels::c_block(mat::<T>(&v[1], 0)?.rf());
                    kernels::solve_triangular_right_in_place(
                        l.rf(),
                        Tri::Lower,
                        true,
                        false,
                        kernels::view_mut(&mut x),
                    );
                    Ok(array_value(x))
                })
            },
        );
        trsm.push(Some(t.clone()));
        // Trailing update: blocks (i, j), k < j <= i, numbered tri(i − k − 1, j − k − 1).
        let trailing = p - k - 1;
        let u = op::<T, _>(
            "cholesky-update",
            &k,
            vec![cur.clone(), t.clone()],
            crate::node::grid(trailing * (trailing + 1) / 2),
            false,
            move |index| {
                let (r, c) = untri(index[0]);
                let (i, j) = (r + k + 1, c + k + 1);
                let mut deps: Vec<(usize, BlockIndex)> =
                    vec![(0, at(shift, i, j)), (1, bi(&[i - k - 1, 0]))];
                if i != j {
                    deps.push((1, bi(&[j - k - 1, 0])));
                }
                task(deps, move |v| {
                    let mut c = kernels::c_block(mat::<T>(&v[0], 0)?.rf());
                    let li = mat::<T>(&v[1], 0)?;
                    let minus = -<T as num_traits::One>::one();
                    if i == j {
                        if li.rf().ncols() > 0 {
                            triangular::matmul_with_conj(
                                kernels::view_mut(&mut c),
                                BlockStructure::TriangularLower,
                                faer::Accum::Add,
                                li.rf(),
                                BlockStructure::Rectangular,
                                faer::Conj::No,
                                li.rf().transpose(),
                                BlockStructure::Rectangular,
                                faer::Conj::Yes,
                                minus,
                                faer::Par::Seq,
                            );
                        }
                    } else {
                        let lj = mat::<T>(&v[2], 0)?;
                        kernels::gemm_adjoint_b(kernels::view_mut(&mut c), li.rf(), lj.rf(), minus);
                    }
                    Ok(array_value(c))
                })
            },
        );
        cur_node = u;
        cur_shift = Some(k + 1);
    }
    while trsm.len() < p {
        trsm.push(None);
    }
    // The factor: L blocks from potrf and trsm, zeros above; or their conjugate transposes.
    let mut inputs: Vec<Arc<dyn Node>> = potrf.clone();
    let trsm_input: Vec<Option<usize>> = trsm
        .iter()
        .map(|t| {
            t.as_ref().map(|t| {
                inputs.push(t.clone());
                inputs.len() - 1
            })
        })
        .collect();
    let upper = tri == Tri::Upper;
    let ch = chunks.clone();
    let node = op::<T, _>(
        "cholesky",
        &upper,
        inputs,
        Chunks::from_blocks(vec![chunks.clone(), chunks])?,
        false,
        move |index| {
            // (r, c): the block of L read (transposed when upper).
            let (i, j) = (index[0], index[1]);
            let (r, c) = if upper { (j, i) } else { (i, j) };
            let (h, w) = (ch[i], ch[j]);
            if r < c {
                return task(vec![], move |_| {
                    Ok(array_value(kernels::c_zeros::<T>(h, w)))
                });
            }
            let dep = if r == c {
                (r, bi(&[0]))
            } else {
                (
                    trsm_input[c].expect("a block below the diagonal has a trsm"),
                    bi(&[r - c - 1, 0]),
                )
            };
            let diagonal = r == c;
            task(vec![dep], move |v| {
                if upper {
                    Ok(array_value(kernels::c_block_adjoint(
                        mat::<T>(&v[0], 0)?.rf(),
                    )))
                } else if diagonal {
                    Ok(array_value(kernels::c_block(mat::<T>(&v[0], 0)?.rf())))
                } else {
                    // trsm blocks are already C-order ndarray blocks: handed on as they are.
                    Ok(v[0].clone())
                }
            })
        },
    );
    array(node)
}

#[cfg(test)]
mod tests {
    use super::{tri, untri};

    #[test]
    fn triangle_numbering_round_trips() {
        let mut l = 0;
        for i in 0..60 {
            for j in 0..=i {
                assert_eq!(tri(i, j), l);
                assert_eq!(untri(l), (i, j));
                l += 1;
            }
        }
    }
}
