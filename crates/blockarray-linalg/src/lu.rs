//! LU factorisation with partial pivoting, and what is built on it: `solve` and `inv`.
//!
//! # Algorithm (blocked right-looking, pivoting over the whole column)
//!
//! Rows and columns are cut at the same places (as for Cholesky). Step `k`, for diagonal
//! block `k` of width `w` at row `o`:
//!
//! * `panel`: the block column below the diagonal (`N − o` rows × `w`) is assembled in one
//!   task and factorised with partial pivoting (faer): `σ_k · [A_kk; A_{k+1,k}; …] = [L_kk;
//!   L_{k+1,k}; …] · U_kk`. The pivot search covers every row below, as in LAPACK's `getrf`
//!   (dask pivots only inside the diagonal block).
//! * `u`: for each block right of it, the rows the pivoting brought into block row `k`
//!   (gathered from the blocks below: one task reads the block column) and
//!   `U_kj = L_kk⁻¹ (σ_k A)_kj`.
//! * `update`: `A_ij ← (σ_k A)_ij − L_ik U_kj` for the trailing blocks. Pivoting only moves rows
//!   between block row `k` and the rows below it (`w` transpositions), so a block below the
//!   diagonal reads only itself and block `(k, j)`.
//!
//! The row exchanges of later steps also apply to the `L` blocks of earlier ones; they are
//! composed backwards (`π_k = σ_k ∘ π_{k+1}`, small index vectors) and applied once to each
//! `L` block when it is output. `P` and the index form of the permutation come from `π_0`.
//! For `p × p` blocks of `b × b`: `p` panel tasks of `O(N b²)` flops, `p(p−1)/2` `u` and
//! `p(p−1)(2p−1)/6` update tasks of `O(b³)`; `2N³/3` flops in all. The panel task holds a
//! block column (`N × b`), every other task at most `p + 2` blocks.
//!
//! `solve(a, b)` permutes `b`'s rows with `π_0`, then runs two blocked triangular solves
//! (unit lower, then upper); `inv(a)` is `solve(a, I)`.

use crate::cholesky::square_blocks;
use crate::kernels::{self, ColMat, Tri};
use crate::node::{array, array_value, bi, block_value, mat, op, task};
use crate::scalar::Scalar;
use crate::triangular::trisolve;
use blockarray::{BlockArray, Chunks, Error, Node, Result, unify_axis};
use dag_core::{BlockIndex, TaskError, Value};
use faer::reborrow::ReborrowMut;
use std::sync::Arc;

/// A factorised panel: `lu` (rows below the diagonal block's top × width) and the local row
/// permutation (`lu`'s row `i` is the panel's row `perm[i]`).
struct Panel<T> {
    lu: ColMat<T>,
    perm: Vec<usize>,
}

/// Register an LU panel of `T` with [`dag_core::wire`] (distributed runs).
pub(crate) fn register_wire<T: crate::wire::WireScalar>() {
    dag_core::wire::register::<Panel<T>>(
        |p, out| {
            p.lu.put(out);
            dag_core::wire::put_u64(out, p.perm.len() as u64);
            for &i in &p.perm {
                dag_core::wire::put_u64(out, i as u64);
            }
        },
        |r| {
            let lu = ColMat::get(r)?;
            let n = r.usize()?;
            let perm = (0..n)
                .map(|_| r.usize())
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Ok(Panel { lu, perm })
        },
    );
}

fn panel<T: Scalar>(v: &Value) -> std::result::Result<&Panel<T>, TaskError> {
    Ok(v.get::<Panel<T>>()?)
}

/// The LU factorisation of a square matrix with partial pivoting: `a = p · l · u`
/// (`scipy.linalg.lu`, `dask.array.linalg.lu`), with the permutation also as indices.
#[derive(Clone)]
pub struct Lu<T> {
    /// The permutation matrix `P` (`N × N`, `a`'s chunks).
    pub p: BlockArray<T>,
    /// Unit lower triangular `L`.
    pub l: BlockArray<T>,
    /// Upper triangular `U`.
    pub u: BlockArray<T>,
    /// The permutation as indices: row `i` of `l · u` is row `perm[i]` of `a`
    /// (`a[perm] == l @ u`).
    pub perm: BlockArray<i64>,
}

impl<T: Scalar> std::fmt::Debug for Lu<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lu")
            .field("p", &self.p)
            .field("l", &self.l)
            .field("u", &self.u)
            .field("perm", &self.perm)
            .finish()
    }
}

/// The nodes of a blocked LU.
struct LuNodes {
    chunks: Vec<usize>,
    offsets: Vec<usize>,
    panels: Vec<Arc<dyn Node>>,
    /// `u[k]`: the U blocks right of diagonal block `k` (`None` for the last).
    u: Vec<Option<Arc<dyn Node>>>,
    /// `cum[k]`: `π_k` as global row indices for rows `offsets[k]..N` (a `Vec<usize>`).
    cum: Vec<Arc<dyn Node>>,
}

/// The row `r` (local to the panel of step `k`) of the permuted panel column, as
/// `(block row, row in block)` of the current matrix.
fn locate(offsets: &[usize], chunks: &[usize], k: usize, local: usize) -> (usize, usize) {
    let g = offsets[k] + local;
    let i = match offsets.binary_search(&g) {
        Ok(i) => i,
        Err(i) => i - 1,
    };
    debug_assert!(g < offsets[i] + chunks[i]);
    (i, g - offsets[i])
}

fn factor<T: Scalar>(a: &BlockArray<T>) -> Result<LuNodes> {
    let chunks = a.chunks().axis(0).to_vec();
    let p = chunks.len();
    // Trailing updates over (p − k)² blocks at step k: about p³/3.
    crate::node::check_tasks("lu", p, crate::node::tetrahedral(p).saturating_mul(2))?;
    let n = a.shape()[0];
    let offsets: Vec<usize> = chunks
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let mut cur: Arc<dyn Node> = a.node().clone();
    let mut shift = 0usize;
    let mut panels = Vec::with_capacity(p);
    let mut us = Vec::with_capacity(p);
    for k in 0..p {
        let ck = chunks[k];
        // Panel: blocks (k..p, k) of the current matrix.
        let sh = shift;
        let pn = op::<T, _>(
            "lu-panel",
            &k,
            vec![cur.clone()],
            crate::node::grid(1),
            false,
            move |_| {
                let deps = (k..p).map(|i| (0, bi(&[i - sh, k - sh]))).collect();
                task(deps, move |v| {
                    let views = v
                        .iter()
                        .map(|x| mat::<T>(x, 0))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let refs: Vec<_> = views.iter().map(|m| m.rf()).collect();
                    let stacked = ColMat::vstack(&refs);
                    let (lu, perm) = kernels::lu(stacked.as_ref());
                    // Pivoting exchanges rows of the diagonal block with rows below only.
                    if perm
                        .iter()
                        .enumerate()
                        .any(|(i, &s)| i >= ck && s != i && s >= ck)
                    {
                        return Err("internal: the panel permutation moved rows below the diagonal block among themselves".into());
                    }
                    let nbytes = lu.nbytes() + perm.len() * 8;
                    Ok(Value::with_nbytes(Panel { lu, perm }, nbytes))
                })
            },
        );
        panels.push(pn.clone());
        if k + 1 == p {
            us.push(None);
            break;
        }
        let right: Vec<usize> = chunks[k + 1..].to_vec();
        let (offs, chs) = (offsets.clone(), chunks.clone());
        // U blocks of row k: the permuted rows of block column j, then L_kk⁻¹.
        let u = op::<T, _>(
            "lu-u",
            &k,
            vec![pn.clone(), cur.clone()],
            Chunks::from_blocks(vec![vec![ck], right.clone()])?,
            false,
            move |index| {
                let j = index[1] + k + 1;
                let mut deps: Vec<(usize, BlockIndex)> = vec![(0, bi(&[0]))];
                deps.extend((k..p).map(|i| (1, bi(&[i - sh, j - sh]))));
                let (offs, chs) = (offs.clone(), chs.clone());
                task(deps, move |v| {
                    let pl = panel::<T>(&v[0])?;
                    let blocks = v[1..]
                        .iter()
                        .map(|x| mat::<T>(x, 0))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    let w = blocks[0].rf().ncols();
                    let mut top = kernels::c_zeros::<T>(ck, w);
                    for r in 0..ck {
                        let (bi_, rr) = locate(&offs, &chs, k, pl.perm[r]);
                        kernels::view_mut(&mut top)
                            .row_mut(r)
                            .copy_from(blocks[bi_ - k].rf().row(rr));
                    }
                    let lkk = pl.lu.as_ref().submatrix(0, 0, ck, ck);
                    kernels::solve_triangular_in_place(
                        lkk,
                        Tri::Lower,
                        false,
                        true,
                        kernels::view_mut(&mut top),
                    );
                    Ok(array_value(top))
                })
            },
        );
        us.push(Some(u.clone()));
        let (offs, chs) = (offsets.clone(), chunks.clone());
        let upd = op::<T, _>(
            "lu-update",
            &k,
            vec![pn.clone(), cur.clone(), u.clone()],
            Chunks::from_blocks(vec![right.clone(), right])?,
            false,
            move |index| {
                let (i, j) = (index[0] + k + 1, index[1] + k + 1);
                let deps = vec![
                    (0, bi(&[0])),
                    (1, bi(&[i - sh, j - sh])),
                    (1, bi(&[k - sh, j - sh])),
                    (2, bi(&[0, j - k - 1])),
                ];
                let (offs, chs) = (offs.clone(), chs.clone());
                task(deps, move |v| {
                    let pl = panel::<T>(&v[0])?;
                    let (own, top) = (mat::<T>(&v[1], 0)?, mat::<T>(&v[2], 0)?);
                    let (own, top) = (own.rf(), top.rf());
                    let h = own.nrows();
                    // Rows of the permuted block: its own, or rows of block (k, j).
                    let base = offs[i] - offs[k];
                    let mut c = kernels::c_block(own);
                    let mut cm = kernels::view_mut(&mut c);
                    for r in 0..h {
                        let src = pl.perm[base + r];
                        if src != base + r {
                            let (bi_, rr) = locate(&offs, &chs, k, src);
                            debug_assert_eq!(bi_, k);
                            cm.rb_mut().row_mut(r).copy_from(top.row(rr));
                        }
                    }
                    let lik = pl.lu.as_ref().submatrix(base, 0, h, ck);
                    kernels::gemm(
                        cm,
                        true,
                        lik,
                        mat::<T>(&v[3], 0)?.rf(),
                        -<T as num_traits::One>::one(),
                    );
                    Ok(array_value(c))
                })
            },
        );
        cur = upd;
        shift = k + 1;
    }
    while us.len() < p {
        us.push(None);
    }
    // π_k = σ_k ∘ π_{k+1}, from the last step back; as global row indices over offsets[k]..n.
    let mut cum: Vec<Option<Arc<dyn Node>>> = vec![None; p];
    for k in (0..p).rev() {
        let ok = offsets[k];
        let mut inputs = vec![panels[k].clone()];
        if let Some(next) = &cum.get(k + 1).cloned().flatten() {
            inputs.push(next.clone());
        }
        let has_next = inputs.len() == 2;
        let node = op::<i64, _>(
            "lu-perm",
            &k,
            inputs,
            crate::node::grid(1),
            false,
            move |_| {
                let mut deps = vec![(0, bi(&[0]))];
                if has_next {
                    deps.push((1, bi(&[0])));
                }
                task(deps, move |v| {
                    let pl = panel::<T>(&v[0])?;
                    let sigma = |r: usize| ok + pl.perm[r - ok];
                    let out: Vec<usize> = if has_next {
                        let next = v[1].get::<Vec<usize>>()?;
                        // Rows offsets[k+1].. go through π_{k+1} first.
                        let start = n - next.len();
                        (ok..n)
                            .map(|r| {
                                if r < start {
                                    sigma(r)
                                } else {
                                    sigma(next[r - start])
                                }
                            })
                            .collect()
                    } else {
                        (ok..n).map(sigma).collect()
                    };
                    Ok(Value::new(out))
                })
            },
        );
        cum[k] = Some(node);
    }
    Ok(LuNodes {
        chunks,
        offsets,
        panels,
        u: us,
        cum: cum
            .into_iter()
            .map(|c| c.expect("every step has a permutation"))
            .collect(),
    })
}

/// The LU factorisation of a square matrix with partial pivoting (see the module notes):
/// `a = p · l · u`, `l` unit lower triangular, `u` upper triangular, all with `a`'s chunks
/// (rows and columns cut at the same places). Never fails on a singular matrix (`u` then has a
/// zero on its diagonal); [`solve`] and [`inv`] do.
///
/// ```
/// let a = blockarray::random::Rng::new(6).random::<f64>(&[90, 90], [40, 40])?;
/// let f = blockarray_linalg::lu(&a)?;
/// let plu = f.p.matmul(&f.l.matmul(&f.u)?)?.compute()?;
/// let a = a.compute()?;
/// assert!(plu.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-12));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn lu<T: Scalar>(a: &BlockArray<T>) -> Result<Lu<T>> {
    Ok(lu_parts(a)?.0)
}

/// An [`Lu`] and the node of its permutation.
type LuParts<T> = (Lu<T>, Option<Arc<dyn Node>>);

/// [`lu`], and the node holding `π_0` (block `[0]`, a `Vec<usize>`; `None` when empty).
fn lu_parts<T: Scalar>(a: &BlockArray<T>) -> Result<LuParts<T>> {
    let a = square_blocks(a, "lu")?;
    let n = a.shape()[0];
    if n == 0 {
        let z = BlockArray::<T>::zeros(&[0, 0], vec![vec![0], vec![0]])?;
        let lu = Lu {
            p: z.clone(),
            l: z.clone(),
            u: z,
            perm: BlockArray::<i64>::zeros(&[0], vec![vec![0]])?,
        };
        return Ok((lu, None));
    }
    let f = factor(&a)?;
    let (ch, offs) = (f.chunks.clone(), f.offsets.clone());
    let p = ch.len();
    let sq = Chunks::from_blocks(vec![ch.clone(), ch.clone()])?;
    // L: block (i, k) for i > k is rows π_{k+1} of panel k; (k, k) its unit lower top.
    let mut inputs: Vec<Arc<dyn Node>> = f.panels.clone();
    inputs.extend(f.cum.iter().cloned());
    let (ch2, offs2) = (ch.clone(), offs.clone());
    let l = op::<T, _>(
        "lu-l",
        &[0usize; 0],
        inputs,
        sq.clone(),
        false,
        move |index| {
            let (i, k) = (index[0], index[1]);
            let (h, w) = (ch2[i], ch2[k]);
            if i < k {
                return task(vec![], move |_| {
                    Ok(array_value(kernels::c_zeros::<T>(h, w)))
                });
            }
            if i == k {
                return task(vec![(k, bi(&[0]))], move |v| {
                    let lu = &panel::<T>(&v[0])?.lu;
                    Ok(array_value(kernels::c_from_fn(h, h, |r, c| {
                        match r.cmp(&c) {
                            std::cmp::Ordering::Greater => lu.at(r, c),
                            std::cmp::Ordering::Equal => <T as num_traits::One>::one(),
                            std::cmp::Ordering::Less => <T as num_traits::Zero>::zero(),
                        }
                    })))
                });
            }
            let (ok, oi, ok1) = (offs2[k], offs2[i], offs2[k + 1]);
            task(vec![(k, bi(&[0])), (p + k + 1, bi(&[0]))], move |v| {
                let lu = &panel::<T>(&v[0])?.lu;
                let next = v[1].get::<Vec<usize>>()?;
                Ok(array_value(kernels::c_from_fn(h, w, |r, c| {
                    let g = next[oi + r - ok1];
                    lu.at(g - ok, c)
                })))
            })
        },
    );
    // U: (k, k) the upper top of panel k, (k, j) for j > k from the u nodes.
    let mut inputs: Vec<Arc<dyn Node>> = f.panels.clone();
    let u_input: Vec<Option<usize>> =
        f.u.iter()
            .map(|u| {
                u.as_ref().map(|u| {
                    inputs.push(u.clone());
                    inputs.len() - 1
                })
            })
            .collect();
    let ch3 = ch.clone();
    let u = op::<T, _>(
        "lu-u-out",
        &[0usize; 0],
        inputs,
        sq.clone(),
        false,
        move |index| {
            let (k, j) = (index[0], index[1]);
            let (h, w) = (ch3[k], ch3[j]);
            if j < k {
                return task(vec![], move |_| {
                    Ok(array_value(kernels::c_zeros::<T>(h, w)))
                });
            }
            if j == k {
                return task(vec![(k, bi(&[0]))], move |v| {
                    let lu = &panel::<T>(&v[0])?.lu;
                    Ok(array_value(kernels::c_from_fn(h, h, |r, c| {
                        if r <= c {
                            lu.at(r, c)
                        } else {
                            <T as num_traits::Zero>::zero()
                        }
                    })))
                });
            }
            let input = u_input[k].expect("a block right of the diagonal has a u node");
            // The u blocks are C-order ndarray blocks: handed on as they are.
            task(vec![(input, bi(&[0, j - k - 1]))], |v| Ok(v[0].clone()))
        },
    );
    let perm0 = f.cum[0].clone();
    let offs4 = offs.clone();
    let perm = op::<i64, _>(
        "lu-perm-out",
        &[0usize; 0],
        vec![perm0.clone()],
        Chunks::from_blocks(vec![ch.clone()])?,
        true,
        move |index| {
            let (o, h) = (offs4[index[0]], ch[index[0]]);
            task(vec![(0, bi(&[0]))], move |v| {
                let pi = v[0].get::<Vec<usize>>()?;
                let vals: Vec<i64> = pi[o..o + h].iter().map(|&x| x as i64).collect();
                Ok(blockarray::block_value(ndarray::ArrayD::from_shape_vec(
                    ndarray::IxDyn(&[h]),
                    vals,
                )?))
            })
        },
    );
    let (offs5, ch5) = (offs.clone(), f.chunks.clone());
    let pm = op::<T, _>(
        "lu-p",
        &[0usize; 0],
        vec![perm0.clone()],
        sq,
        false,
        move |index| {
            let (r0, c0, h, w) = (
                offs5[index[0]],
                offs5[index[1]],
                ch5[index[0]],
                ch5[index[1]],
            );
            task(vec![(0, bi(&[0]))], move |v| {
                let pi = v[0].get::<Vec<usize>>()?;
                // P[π(c), c] = 1.
                let mut m = ColMat::<T>::zeros(h, w);
                for c in 0..w {
                    let r = pi[c0 + c];
                    if (r0..r0 + h).contains(&r) {
                        *m.at_mut(r - r0, c) = <T as num_traits::One>::one();
                    }
                }
                Ok(block_value(m))
            })
        },
    );
    let lu = Lu {
        p: array(pm)?,
        l: array(l)?,
        u: array(u)?,
        perm: array(perm)?,
    };
    Ok((lu, Some(perm0)))
}

/// `b`'s rows reordered by `π` (block `[0]` of `perm`, global indices): row `r` of the result
/// is row `π[r]` of `b`.
fn permute_rows<T: Scalar>(b: &BlockArray<T>, perm: &Arc<dyn Node>) -> Result<BlockArray<T>> {
    let rows = b.chunks().axis(0).to_vec();
    let offs: Vec<usize> = rows
        .iter()
        .scan(0, |s, &c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let p = rows.len();
    let node = op::<T, _>(
        "permute-rows",
        &[0usize; 0],
        vec![perm.clone(), b.node().clone()],
        b.chunks().clone(),
        false,
        move |index| {
            let (i, j) = (index[0], index[1]);
            let mut deps = vec![(0, bi(&[0]))];
            deps.extend((0..p).map(|r| (1, bi(&[r, j]))));
            let (offs, rows) = (offs.clone(), rows.clone());
            task(deps, move |v| {
                let pi = v[0].get::<Vec<usize>>()?;
                let blocks = v[1..]
                    .iter()
                    .map(|x| mat::<T>(x, 0))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let (h, w) = (rows[i], blocks[0].rf().ncols());
                let mut out = kernels::c_zeros::<T>(h, w);
                let mut om = kernels::view_mut(&mut out);
                for r in 0..h {
                    let g = pi[offs[i] + r];
                    let (src, rr) = locate(&offs, &rows, 0, g);
                    om.rb_mut().row_mut(r).copy_from(blocks[src].rf().row(rr));
                }
                Ok(array_value(out))
            })
        },
    );
    array(node)
}

/// Solve `a · x = b` for a square `a` (`numpy.linalg.solve`): `b` is a vector (`N`) or a
/// matrix (`N × K`); `x` has `b`'s shape. By blocked LU with partial pivoting and two blocked
/// triangular solves. A singular `a` fails when computed, naming the zero pivot's row.
///
/// ```
/// let a = blockarray::random::Rng::new(1).random::<f64>(&[120, 120], [50, 50])?;
/// let b = blockarray::random::Rng::new(2).random::<f64>(&[120, 3], [50, 3])?;
/// let x = blockarray_linalg::solve(&a, &b)?;
/// let residual = (&a.matmul(&x)? - &b)?.abs().max(None, false)?.compute()?;
/// assert!(residual.iter().all(|&r| r < 1e-10));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn solve<T: Scalar>(a: &BlockArray<T>, b: &BlockArray<T>) -> Result<BlockArray<T>> {
    let a = square_blocks(a, "solve")?;
    let n = a.shape()[0];
    b.chunks().require_known("solve")?;
    if b.ndim() == 0 || b.ndim() > 2 || b.shape()[0] != n {
        return Err(Error::shape(format!(
            "solve: the right-hand side must have shape ({n},) or ({n}, K) for a matrix of shape {:?}, got {:?}",
            a.shape(),
            b.shape()
        )));
    }
    if b.ndim() == 1 {
        return solve(&a, &b.insert_axis(1)?)?.squeeze(Some(&[1]));
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
    if n == 0 || b.shape()[1] == 0 {
        return Ok(b);
    }
    let (f, perm0) = lu_parts(&a)?;
    let perm0 = perm0.expect("a non-empty factorisation has a permutation");
    let pb = permute_rows(&b, &perm0)?;
    let y = trisolve(&f.l, &pb, Tri::Lower, true, "solve")?;
    trisolve(&f.u, &y, Tri::Upper, false, "solve")
}

/// The inverse of a square matrix (`numpy.linalg.inv`): `solve(a, I)`, with `a`'s chunks.
/// A singular matrix fails when computed.
///
/// ```
/// let a = ndarray::array![[4.0, 7.0], [2.0, 6.0]];
/// let inv = blockarray_linalg::inv(&blockarray::BlockArray::from_array(a, [1, 1])?)?.compute()?;
/// let expected = [0.6f64, -0.7, -0.2, 0.4];
/// assert!(inv.iter().zip(expected).all(|(x, y)| (x - y).abs() < 1e-12));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn inv<T: Scalar>(a: &BlockArray<T>) -> Result<BlockArray<T>> {
    let a = square_blocks(a, "inv")?;
    let n = a.shape()[0];
    let eye = BlockArray::<T>::eye(
        n,
        None,
        0,
        vec![a.chunks().axis(0).to_vec(), a.chunks().axis(1).to_vec()],
    )?;
    solve(&a, &eye)
}
