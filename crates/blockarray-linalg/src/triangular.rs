//! Triangular solves with one or many right-hand sides.
//!
//! # Algorithm (blocked substitution, right-looking)
//!
//! `a` is cut into `p × p` blocks on the same row and column boundaries (the common
//! refinement of its chunks and `b`'s rows), `b` into `p × q`. For a lower triangular `a`,
//! step `k = 0, 1, …` solves the diagonal block, `X_kj = A_kk⁻¹ B_kj` (`q` tasks), and
//! updates the blocks below, `B_ij ← B_ij − A_ik X_kj` (`(p − k − 1)·q` tasks); an upper
//! triangular `a` runs the steps from the last block up. `p(p+1)/2 · q` tasks in all, each
//! reading at most three blocks; only the triangle of blocks that is used is read.

use crate::cholesky::square_blocks;
use crate::kernels::{self, Tri};
use crate::node::{array, array_value, bi, mat, op, task};
use crate::scalar::Scalar;
use blockarray::{BlockArray, Chunks, Error, Node, Result, unify_axis};
use std::sync::Arc;

/// Solve `a · x = b` for a triangular `a` (`Tri::Lower`: only blocks on and below the
/// diagonal are read; `Tri::Upper`: on and above), `b` a vector (`N`) or a matrix (`N × K`, any
/// number of right-hand sides); `x` has `b`'s shape (`scipy.linalg.solve_triangular`).
///
/// A zero on the diagonal fails when computed, with an error naming the row (as SciPy's
/// "singular matrix").
///
/// ```
/// use blockarray_linalg::{Tri, solve_triangular};
/// let a = ndarray::array![[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 3.0, 4.0]];
/// let a = blockarray::BlockArray::from_array(a, [2, 2])?;
/// let b = blockarray::BlockArray::from_array(ndarray::array![2.0, 2.0, 7.0], 2)?;
/// let x = solve_triangular(&a, &b, Tri::Lower)?.compute()?;
/// assert_eq!(x.into_raw_vec_and_offset().0, vec![1.0, 1.0, 1.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn solve_triangular<T: Scalar>(
    a: &BlockArray<T>,
    b: &BlockArray<T>,
    tri: Tri,
) -> Result<BlockArray<T>> {
    solve_triangular_with(a, b, tri, false)
}

/// [`solve_triangular`] with the choice of a unit diagonal (`unit_diagonal`: the diagonal of
/// `a` is taken to be ones and never read, as for the `L` of an LU factorisation).
pub fn solve_triangular_with<T: Scalar>(
    a: &BlockArray<T>,
    b: &BlockArray<T>,
    tri: Tri,
    unit_diagonal: bool,
) -> Result<BlockArray<T>> {
    trisolve(a, b, tri, unit_diagonal, "solve_triangular")
}

/// The blocked solve behind [`solve_triangular_with`]; `what` names the operation in errors.
pub(crate) fn trisolve<T: Scalar>(
    a: &BlockArray<T>,
    b: &BlockArray<T>,
    tri: Tri,
    unit: bool,
    what: &str,
) -> Result<BlockArray<T>> {
    let a = square_blocks(a, what)?;
    let n = a.shape()[0];
    b.chunks().require_known(what)?;
    if b.ndim() == 0 || b.ndim() > 2 || b.shape()[0] != n {
        return Err(Error::shape(format!(
            "{what}: the right-hand side must have shape ({n},) or ({n}, K) for a matrix of shape {:?}, got {:?}",
            a.shape(),
            b.shape()
        )));
    }
    if b.ndim() == 1 {
        return trisolve(&a, &b.insert_axis(1)?, tri, unit, what)?.squeeze(Some(&[1]));
    }
    let common = unify_axis(a.chunks().axis(0), b.chunks().axis(0))?;
    let a = if common == a.chunks().axis(0) {
        a
    } else {
        a.rechunk(vec![common.clone(), common.clone()])?
    };
    let b = if common == b.chunks().axis(0) {
        b.clone()
    } else {
        b.rechunk(vec![common.clone(), b.chunks().axis(1).to_vec()])?
    };
    let bcols = b.chunks().axis(1).to_vec();
    if n == 0 || b.shape()[1] == 0 {
        return Ok(b);
    }
    let p = common.len();
    // An update per block below the diagonal and column block of b.
    let updates = (p.saturating_mul(p + 1) / 2).saturating_mul(bcols.len());
    crate::node::check_tasks("solve_triangular", p, updates)?;
    let offsets: Vec<usize> = common
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let order: Vec<usize> = match tri {
        Tri::Lower => (0..p).collect(),
        Tri::Upper => (0..p).rev().collect(),
    };
    // The current B: node, and for each block row the row index in that node.
    let mut cur: Arc<dyn Node> = b.node().clone();
    let mut cur_row: Vec<Option<usize>> = (0..p).map(Some).collect();
    let mut solved: Vec<Option<Arc<dyn Node>>> = vec![None; p];
    let what_s = what.to_string();
    for (step, &k) in order.iter().enumerate() {
        let rk = cur_row[k].expect("row k is still current");
        let (off, h) = (offsets[k], common[k]);
        let w = what_s.clone();
        let x = op::<T, _>(
            "trisolve-diag",
            &(k, tri == Tri::Lower, unit),
            vec![a.node().clone(), cur.clone()],
            Chunks::from_blocks(vec![vec![h], bcols.clone()])?,
            false,
            move |index| {
                let w = w.clone();
                task(vec![(0, bi(&[k, k])), (1, bi(&[rk, index[1]]))], move |v| {
                    let d = mat::<T>(&v[0], 0)?;
                    if !unit
                        && let Some(i) =
                            (0..h).find(|&i| d.rf()[(i, i)] == <T as num_traits::Zero>::zero())
                    {
                        return Err(format!(
                            "{w}: the matrix is singular: its diagonal is zero at row {} (diagonal block ({k}, {k}))",
                            off + i
                        )
                        .into());
                    }
                    let mut x = kernels::c_block(mat::<T>(&v[1], 0)?.rf());
                    kernels::solve_triangular_in_place(
                        d.rf(),
                        tri,
                        false,
                        unit,
                        kernels::view_mut(&mut x),
                    );
                    Ok(array_value(x))
                })
            },
        );
        solved[k] = Some(x.clone());
        let rest: Vec<usize> = order[step + 1..].to_vec();
        if rest.is_empty() {
            break;
        }
        // Update the remaining rows (in increasing block order inside the node).
        let mut sorted = rest.clone();
        sorted.sort_unstable();
        let rows_chunks: Vec<usize> = sorted.iter().map(|&i| common[i]).collect();
        let prev_rows = cur_row.clone();
        let s2 = sorted.clone();
        let u = op::<T, _>(
            "trisolve-update",
            &(k, tri == Tri::Lower),
            vec![a.node().clone(), cur.clone(), x.clone()],
            Chunks::from_blocks(vec![rows_chunks, bcols.clone()])?,
            false,
            move |index| {
                let i = s2[index[0]];
                let ri = prev_rows[i].expect("a remaining row is current");
                task(
                    vec![
                        (0, bi(&[i, k])),
                        (1, bi(&[ri, index[1]])),
                        (2, bi(&[0, index[1]])),
                    ],
                    |v| {
                        let mut c = kernels::c_block(mat::<T>(&v[1], 0)?.rf());
                        kernels::gemm(
                            kernels::view_mut(&mut c),
                            true,
                            mat::<T>(&v[0], 0)?.rf(),
                            mat::<T>(&v[2], 0)?.rf(),
                            -<T as num_traits::One>::one(),
                        );
                        Ok(array_value(c))
                    },
                )
            },
        );
        cur = u;
        cur_row = vec![None; p];
        for (pos, &i) in sorted.iter().enumerate() {
            cur_row[i] = Some(pos);
        }
    }
    let inputs: Vec<Arc<dyn Node>> = solved
        .into_iter()
        .map(|s| s.expect("every block row is solved"))
        .collect();
    let node = op::<T, _>(
        "trisolve",
        &(tri == Tri::Lower, unit),
        inputs,
        Chunks::from_blocks(vec![common, bcols])?,
        true,
        |index| {
            // The diagonal solves produce ndarray blocks: handed on as they are.
            task(vec![(index[0], bi(&[0, index[1]]))], |v| Ok(v[0].clone()))
        },
    );
    array(node)
}
