//! QR of any chunked matrix: TSQR, short-and-fat QR, and tile QR, chosen by [`qr`].
//!
//! # Which algorithm
//!
//! * **One block of columns** (tall and skinny): [`tsqr`](crate::tsqr).
//! * **One block of rows, `M ≤ N`** (short and fat): the leading `M × M` part is factorised in
//!   one task, `A[:, :M] = Q R₀`, and every column block of R is `Qᴴ Aⱼ` (one task per
//!   block, the leading columns replaced by `R₀`'s, so R is exactly triangular).
//! * **Otherwise, when full rows are narrow** (`N` columns of at least `N` rows fit in
//!   128 MiB): the columns are merged into one block (a rechunk) and TSQR runs.
//! * **Otherwise: tile QR** ([`qr_tiled`]), the right-looking block Householder algorithm
//!   over the grid of blocks (Buttari, Langou, Kurzak & Dongarra's tiled QR with a flat tree
//!   per panel), which works for any chunking of any shape.
//!
//! # Tile QR
//!
//! The rows are first cut where the columns are (a rechunk that only splits and merges row
//! blocks inside the leading `min(M, N)` rows), so that diagonal block `k` is square (`w_k ×
//! w_k`). Step `k` (one per diagonal block) runs four kinds of task:
//!
//! * `geqrt`: QR of the diagonal block, `A_kk = H_kk R_kk`;
//! * `unmqr`: `A_kj ← H_kkᴴ A_kj` for every block right of it;
//! * `tsqrt`: for each block below, `i = k+1, k+2, …` in turn, QR of `R_kk` stacked on
//!   `A_ik`, giving the next `R_kk` and reflectors `H_ik`;
//! * `tsmqr`: `[A_kj; A_ij] ← H_ikᴴ [A_kj; A_ij]` for every block right of it.
//!
//! R is read off the top row of blocks of each step. Q (thin, `M × min(M, N)`) is built by
//! applying the same reflectors, in reverse order, to the block identity: only the blocks of
//! Q's columns `≥ k` change in step `k`. For a `p × q` grid of `b × b` blocks (`p ≥ q`) the
//! factorisation has about `q²p − q³/3` tasks of `O(b³)` flops each (`4b³` to `8b³`), and so
//! has Q; every task reads at most three blocks, so memory per task is bounded by the block
//! size whatever the matrix size.

use crate::kernels::{self, ColMat, House};
use crate::node::{
    MAX_GATHER_BYTES, array, bi, block_value, house, house_value, mat, mat_value, mats_value, op,
    task,
};
use crate::scalar::Scalar;
use crate::tsqr::check_matrix;
use blockarray::{BlockArray, Chunks, DEFAULT_CHUNK_BYTES, Node, Result};
use dag_core::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The QR factorisation of a matrix, whatever its chunking: `(q, r)` with `a = q · r`, `q`
/// (`M × K`, `K = min(M, N)`) with orthonormal columns and `r` (`K × N`) upper triangular.
/// The algorithm is chosen from the shape and chunks (see the module notes): TSQR for one
/// column block, a short-and-fat QR for one row block, tile QR for a general grid.
///
/// ```
/// use blockarray::random::Rng;
/// // A square matrix in a 3 × 3 grid of irregular blocks.
/// let a = Rng::new(3).random::<f64>(&[60, 60], vec![vec![25, 20, 15], vec![10, 30, 20]])?;
/// let (q, r) = blockarray_linalg::qr(&a)?;
/// let (qv, rv, av) = (q.compute()?, r.compute()?, a.compute()?);
/// let qv = qv.into_dimensionality::<ndarray::Ix2>().unwrap();
/// let rv = rv.into_dimensionality::<ndarray::Ix2>().unwrap();
/// let err = (&qv.dot(&rv) - &av.into_dimensionality::<ndarray::Ix2>().unwrap())
///     .iter().fold(0.0f64, |m, x| m.max(x.abs()));
/// assert!(err < 1e-12);
/// assert!((0..60).all(|i| (0..i).all(|j| rv[[i, j]] == 0.0)));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn qr<T: Scalar>(a: &BlockArray<T>) -> Result<(BlockArray<T>, BlockArray<T>)> {
    check_matrix(a, "qr")?;
    match method(a) {
        Method::Tsqr => crate::tsqr(a),
        Method::ShortFat => sfqr(a),
        Method::Tiled => {
            let (q, r) = qr_tiled_parts(a, true)?;
            Ok((q.expect("asked for Q"), r))
        }
    }
}

/// Only the R factor of [`qr`] (no task builds Q).
pub fn qr_r<T: Scalar>(a: &BlockArray<T>) -> Result<BlockArray<T>> {
    check_matrix(a, "qr")?;
    match method(a) {
        Method::Tsqr => Ok(crate::tsqr_with(a, &crate::TsqrOptions::new().compute_q(false))?.r),
        Method::ShortFat => Ok(sfqr(a)?.1),
        Method::Tiled => Ok(qr_tiled_parts(a, false)?.1),
    }
}

/// The algorithms [`qr`] chooses from.
enum Method {
    Tsqr,
    ShortFat,
    Tiled,
}

/// TSQR when the columns are in one block, or are few enough that full rows fit a block
/// (128 MiB for `N` rows) — as long as its `min(M, N) × N` R factors fit one task (1 GiB);
/// the short-and-fat
/// QR for one block of rows with `M ≤ N` (its `M × M` head in one task); else tile QR.
fn method<T: Scalar>(a: &BlockArray<T>) -> Method {
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let nb = a.numblocks();
    let square = |k: usize| k.saturating_mul(k).saturating_mul(T::itemsize());
    if m == 0 || n == 0 {
        return Method::Tsqr;
    }
    if nb[1] == 1 && m.min(n).saturating_mul(n).saturating_mul(T::itemsize()) <= MAX_GATHER_BYTES {
        return Method::Tsqr;
    }
    if nb[0] == 1 && m <= n && square(m) <= MAX_GATHER_BYTES {
        return Method::ShortFat;
    }
    if m >= n && square(n) <= DEFAULT_CHUNK_BYTES {
        return Method::Tsqr;
    }
    Method::Tiled
}

/// QR by the tile algorithm (see the module notes) whatever the shape: what [`qr`] uses for
/// matrices that are neither tall and skinny nor short and fat. Rows are rechunked to match
/// the column blocks on the leading `min(M, N)` rows.
///
/// ```
/// let a = blockarray::random::Rng::new(5).random::<f64>(&[40, 30], [12, 9])?;
/// let (q, r) = blockarray_linalg::qr_tiled(&a)?;
/// assert_eq!(r.shape(), &[30, 30]);
/// let qtq = q.t().matmul(&q)?.compute()?;
/// let eye = ndarray::Array2::<f64>::eye(30).into_dyn();
/// assert!(qtq.iter().zip(eye.iter()).all(|(x, y)| (x - y).abs() < 1e-12));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn qr_tiled<T: Scalar>(a: &BlockArray<T>) -> Result<(BlockArray<T>, BlockArray<T>)> {
    check_matrix(a, "qr_tiled")?;
    if a.shape()[0] == 0 || a.shape()[1] == 0 {
        return crate::tsqr(a);
    }
    let (q, r) = qr_tiled_parts(a, true)?;
    Ok((q.expect("asked for Q"), r))
}

/// Short-and-fat QR of a matrix with one block of rows and `M ≤ N` (see the module notes).
fn sfqr<T: Scalar>(a: &BlockArray<T>) -> Result<(BlockArray<T>, BlockArray<T>)> {
    let (m, _n) = (a.shape()[0], a.shape()[1]);
    let cols = a.chunks().axis(1).to_vec();
    let offsets: Vec<usize> = std::iter::once(0)
        .chain(cols.iter().scan(0, |s, &c| {
            *s += c;
            Some(*s)
        }))
        .collect();
    // Column blocks overlapping the leading m columns.
    let head_blocks: Vec<usize> = (0..cols.len()).filter(|&j| offsets[j] < m).collect();
    let head_offsets = offsets.clone();
    let hb = head_blocks.clone();
    let head = op::<T, _>(
        "sfqr-head",
        &m,
        vec![a.node().clone()],
        crate::node::grid(1),
        false,
        move |_| {
            let deps = hb.iter().map(|&j| (0, bi(&[0, j]))).collect();
            let (hb, offs) = (hb.clone(), head_offsets.clone());
            task(deps, move |v| {
                let mut head = ColMat::<T>::zeros(m, m);
                for (x, &j) in v.iter().zip(&hb) {
                    let blk = mat::<T>(x, 0)?;
                    let w = (offs[j + 1].min(m)) - offs[j];
                    head.as_mut()
                        .subcols_mut(offs[j], w)
                        .copy_from(blk.rf().subcols(0, w));
                }
                let h = House::new(head, false);
                Ok(mats_value(vec![h.q(), h.r()]))
            })
        },
    );
    let q = op::<T, _>(
        "sfqr-q",
        &[0usize; 0],
        vec![head.clone()],
        Chunks::from_blocks(vec![vec![m], vec![m]])?,
        true,
        |_| {
            task(vec![(0, bi(&[0]))], |v| {
                Ok(block_value(ColMat::copy_of(mat::<T>(&v[0], 0)?.rf())))
            })
        },
    );
    let offs = offsets;
    let r = op::<T, _>(
        "sfqr-r",
        &[0usize; 0],
        vec![head, a.node().clone()],
        a.chunks().clone(),
        true,
        move |index| {
            let j = index[1];
            let (start, end) = (offs[j], offs[j + 1]);
            task(vec![(0, bi(&[0])), (1, bi(&[0, j]))], move |v| {
                let q = mat::<T>(&v[0], 0)?;
                let r0 = mat::<T>(&v[0], 1)?;
                let mut out = kernels::adjoint_product(q.rf(), mat::<T>(&v[1], 0)?.rf());
                // The leading columns come from R₀, exactly triangular.
                for c in start..end.min(m) {
                    for i in 0..m {
                        *out.at_mut(i, c - start) = r0.rf()[(i, c)];
                    }
                }
                Ok(block_value(out))
            })
        },
    );
    Ok((array(q)?, array(r)?))
}

/// Where a tile's current value is: node, block index, part of the value.
#[derive(Clone)]
struct Src {
    node: Arc<dyn Node>,
    index: Vec<usize>,
    part: usize,
}

impl Src {
    fn new(node: &Arc<dyn Node>, index: &[usize], part: usize) -> Src {
        Src {
            node: node.clone(),
            index: index.to_vec(),
            part,
        }
    }
}

/// The inputs of a node being assembled from [`Src`]s: each distinct node once.
#[derive(Default)]
struct Inputs {
    nodes: Vec<Arc<dyn Node>>,
    number: HashMap<Arc<str>, usize>,
}

impl Inputs {
    fn add(&mut self, node: &Arc<dyn Node>) -> usize {
        let name = node.meta().name.clone();
        if let Some(&i) = self.number.get(&name) {
            return i;
        }
        self.nodes.push(node.clone());
        self.number.insert(name, self.nodes.len() - 1);
        self.nodes.len() - 1
    }
}

/// A dependency list entry and the part to read, for a planned [`Src`].
type Dep = (usize, Vec<usize>, usize);

fn dep(inputs: &mut Inputs, s: &Src) -> Dep {
    (inputs.add(&s.node), s.index.clone(), s.part)
}

/// Row chunks for tile QR: the column boundaries on the leading `min(M, N)` rows, the input's
/// row boundaries below.
fn tile_rows(rows: &[usize], cols: &[usize], m: usize, n: usize) -> Vec<usize> {
    let k = m.min(n);
    let mut bounds: Vec<usize> = Vec::new();
    let mut s = 0;
    for &c in cols {
        s += c;
        if s < k {
            bounds.push(s);
        }
    }
    bounds.push(k);
    let mut s = 0;
    for &r in rows {
        s += r;
        if s > k && s < m {
            bounds.push(s);
        }
    }
    if m > k {
        bounds.push(m);
    }
    let mut out = Vec::with_capacity(bounds.len());
    let mut prev = 0;
    for b in bounds {
        out.push(b - prev);
        prev = b;
    }
    out
}

/// Tile QR: R, and Q when `want_q`.
fn qr_tiled_parts<T: Scalar>(
    a: &BlockArray<T>,
    want_q: bool,
) -> Result<(Option<BlockArray<T>>, BlockArray<T>)> {
    let (m, n) = (a.shape()[0], a.shape()[1]);
    let k_total = m.min(n);
    let cols = a.chunks().axis(1).to_vec();
    let rows = tile_rows(a.chunks().axis(0), &cols, m, n);
    let a = if rows == a.chunks().axis(0) {
        a.clone()
    } else {
        a.rechunk(vec![rows.clone(), cols.clone()])?
    };
    let (p, qn) = (rows.len(), cols.len());
    // Diagonal steps: the column blocks starting inside the leading k_total rows.
    let mut kt = 0;
    let mut off = 0;
    while kt < qn && off < k_total {
        off += cols[kt];
        kt += 1;
    }
    // Step k updates the (p − k) × (qn − k) tiles of the trailing matrix.
    let tasks = (0..kt).fold(0usize, |acc, k| {
        acc.saturating_add(p.saturating_sub(k).saturating_mul(qn - k))
    });
    crate::node::check_tasks("qr", p.max(qn), tasks)?;
    // cur[(i, j)]: the current value of tile (i, j) of the trailing matrix.
    let mut cur: HashMap<(usize, usize), Src> = HashMap::new();
    for i in 0..p {
        for j in 0..qn {
            cur.insert((i, j), Src::new(a.node(), &[i, j], 0));
        }
    }
    // Per step: the last House of the chain (R_kk) and the top-row tiles of R.
    let mut r_diag: Vec<(Src, bool)> = Vec::new(); // (source, is a House)
    let mut r_top: Vec<Vec<Src>> = Vec::new(); // r_top[k][j - k - 1]
    // The reflectors of each step, for Q: geqrt_k and tsqrt_{k,i}.
    let mut geqrt: Vec<Arc<dyn Node>> = Vec::new();
    let mut tsqrt: Vec<Vec<Arc<dyn Node>>> = Vec::new(); // tsqrt[k][i - k - 1]
    for k in 0..kt {
        let d = cur[&(k, k)].clone();
        let g = tile_task::<T>("qr-geqrt", &(k, 0usize), &[d], move |v| {
            Ok(house_value(House::new(ColMat::copy_of(v[0].rf()), false)))
        });
        geqrt.push(g.clone());
        let right = qn - k - 1;
        // unmqr: top row of blocks.
        let mut top: Vec<Src> = Vec::new();
        if right > 0 {
            let srcs: Vec<Vec<Src>> = (k + 1..qn)
                .map(|j| vec![Src::new(&g, &[0], 0), cur[&(k, j)].clone()])
                .collect();
            let node = multi_task::<T>("qr-unmqr", &(k, 0usize), srcs, |h, v| {
                let mut c = ColMat::copy_of(v[0].rf());
                h.apply(c.as_mut(), true);
                Ok(mat_value(c))
            });
            top = (0..right).map(|j| Src::new(&node, &[j], 0)).collect();
        }
        let mut last_house = Src::new(&g, &[0], 0);
        let mut step_ts = Vec::new();
        for i in k + 1..p {
            let below = cur[&(i, k)].clone();
            let prev = last_house.clone();
            let t = tile_task_h::<T>("qr-tsqrt", &(k, i), prev, &[below], move |h, v| {
                let r = h.r();
                let stacked = ColMat::vstack(&[r.as_ref(), v[0].rf()]);
                Ok(house_value(House::new(stacked, false)))
            });
            step_ts.push(t.clone());
            last_house = Src::new(&t, &[0], 0);
            if right > 0 {
                let srcs: Vec<Vec<Src>> = (k + 1..qn)
                    .map(|j| {
                        vec![
                            Src::new(&t, &[0], 0),
                            top[j - k - 1].clone(),
                            cur[&(i, j)].clone(),
                        ]
                    })
                    .collect();
                let node = multi_task::<T>("qr-tsmqr", &(k, i), srcs, |h, v| {
                    let mut c = ColMat::vstack(&[v[0].rf(), v[1].rf()]);
                    h.apply(c.as_mut(), true);
                    let w = v[0].rf().nrows();
                    let total = c.nrows();
                    Ok(mats_value(vec![c.rows(0..w), c.rows(w..total)]))
                });
                for j in k + 1..qn {
                    top[j - k - 1] = Src::new(&node, &[j - k - 1], 0);
                    cur.insert((i, j), Src::new(&node, &[j - k - 1], 1));
                }
            }
        }
        tsqrt.push(step_ts);
        r_diag.push((last_house, true));
        r_top.push(top);
    }
    // R: K × N, row blocks = the diagonal blocks' heights.
    let r_rows: Vec<usize> = rows[..kt].to_vec();
    let r = {
        let mut inputs = Inputs::default();
        let mut plan: HashMap<(usize, usize), Option<Dep>> = HashMap::new();
        for k in 0..kt {
            for j in 0..qn {
                let d = if j < k {
                    None
                } else if j == k {
                    Some(dep(&mut inputs, &r_diag[k].0))
                } else {
                    Some(dep(&mut inputs, &r_top[k][j - k - 1]))
                };
                plan.insert((k, j), d);
            }
        }
        let (rr, cc) = (r_rows.clone(), cols.clone());
        let node = op::<T, _>(
            "qr-r",
            &(kt, qn),
            inputs.nodes,
            Chunks::from_blocks(vec![r_rows.clone(), cols.clone()])?,
            false,
            move |index| {
                let (k, j) = (index[0], index[1]);
                let (h, w) = (rr[k], cc[j]);
                match plan[&(k, j)].clone() {
                    None => task(vec![], move |_| Ok(block_value(ColMat::<T>::zeros(h, w)))),
                    Some((input, idx, part)) => {
                        let diag = j == k;
                        task(vec![(input, bi(&idx))], move |v| {
                            if diag {
                                let r = house::<T>(&v[0])?.r();
                                Ok(block_value(r.rows(0..h)))
                            } else {
                                Ok(block_value(ColMat::copy_of(mat::<T>(&v[0], part)?.rf())))
                            }
                        })
                    }
                }
            },
        );
        array::<T>(node)?
    };
    if !want_q {
        return Ok((None, r));
    }
    // Q: M × K; column blocks = the diagonal blocks (widths rows[..kt]).
    let qw: Vec<usize> = rows[..kt].to_vec();
    let row_off: Vec<usize> = prefix(&rows);
    let col_off: Vec<usize> = prefix(&qw);
    // qcur[(r, j)]: the current Q tile, None while it is still the identity's.
    let mut qcur: HashMap<(usize, usize), Option<Src>> = HashMap::new();
    for k in (0..kt).rev() {
        let before: HashMap<(usize, usize), Option<Src>> = qcur.clone();
        let get = |r: usize, j: usize| before.get(&(r, j)).cloned().flatten();
        let mut top: Vec<Option<Src>> = (k..kt).map(|j| get(k, j)).collect();
        for i in (k + 1..p).rev() {
            let t = &tsqrt[k][i - k - 1];
            let srcs: Vec<QSrc> = (k..kt)
                .map(|j| {
                    (
                        Src::new(t, &[0], 0),
                        [top[j - k].clone(), get(i, j)],
                        [(row_off[k], col_off[j]), (row_off[i], col_off[j])],
                    )
                })
                .collect();
            let shapes: Vec<[(usize, usize); 2]> = (k..kt)
                .map(|j| [(rows[k], qw[j]), (rows[i], qw[j])])
                .collect();
            let node = q_task::<T>("qr-qa", &(k, i), srcs, shapes, true);
            for j in k..kt {
                top[j - k] = Some(Src::new(&node, &[j - k], 0));
                qcur.insert((i, j), Some(Src::new(&node, &[j - k], 1)));
            }
        }
        let srcs: Vec<QSrc> = (k..kt)
            .map(|j| {
                (
                    Src::new(&geqrt[k], &[0], 0),
                    [top[j - k].clone(), None],
                    [(row_off[k], col_off[j]), (0, 0)],
                )
            })
            .collect();
        let shapes: Vec<[(usize, usize); 2]> =
            (k..kt).map(|j| [(rows[k], qw[j]), (0, qw[j])]).collect();
        let node = q_task::<T>("qr-qd", &(k, 0usize), srcs, shapes, false);
        for j in k..kt {
            qcur.insert((k, j), Some(Src::new(&node, &[j - k], 0)));
        }
    }
    let mut inputs = Inputs::default();
    let mut plan: HashMap<(usize, usize), Option<Dep>> = HashMap::new();
    for rr in 0..p {
        for j in 0..kt {
            let d = qcur
                .get(&(rr, j))
                .cloned()
                .flatten()
                .map(|s| dep(&mut inputs, &s));
            plan.insert((rr, j), d);
        }
    }
    let (rows_c, qw_c, ro, co) = (rows.clone(), qw.clone(), row_off, col_off);
    let node = op::<T, _>(
        "qr-q",
        &(kt, p),
        inputs.nodes,
        Chunks::from_blocks(vec![rows.clone(), qw.clone()])?,
        false,
        move |index| {
            let (rr, j) = (index[0], index[1]);
            let (h, w, r0, c0) = (rows_c[rr], qw_c[j], ro[rr], co[j]);
            match plan[&(rr, j)].clone() {
                None => task(vec![], move |_| {
                    Ok(block_value(eye_tile::<T>(h, w, r0, c0)))
                }),
                Some((input, idx, part)) => task(vec![(input, bi(&idx))], move |v| {
                    Ok(block_value(ColMat::copy_of(mat::<T>(&v[0], part)?.rf())))
                }),
            }
        },
    );
    Ok((Some(array::<T>(node)?), r))
}

fn prefix(v: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(v.len() + 1);
    let mut s = 0;
    out.push(0);
    for &x in v {
        s += x;
        out.push(s);
    }
    out
}

/// The tile of the `M × K` identity at row offset `r0` and column offset `c0`.
fn eye_tile<T: Scalar>(h: usize, w: usize, r0: usize, c0: usize) -> ColMat<T> {
    ColMat::from_fn(h, w, |i, j| {
        if r0 + i == c0 + j {
            <T as num_traits::One>::one()
        } else {
            <T as num_traits::Zero>::zero()
        }
    })
}

/// A one-block node reading tiles `srcs` (views passed in order).
fn tile_task<T: Scalar>(
    name: &str,
    params: &(usize, usize),
    srcs: &[Src],
    f: impl for<'a> Fn(&[kernels::MatView<'a, T>]) -> std::result::Result<Value, dag_core::TaskError>
    + Send
    + Sync
    + Clone
    + 'static,
) -> Arc<dyn Node> {
    let mut inputs = Inputs::default();
    let deps: Vec<Dep> = srcs.iter().map(|s| dep(&mut inputs, s)).collect();
    op::<T, _>(
        name,
        params,
        inputs.nodes,
        crate::node::grid(1),
        false,
        move |_| {
            let parts: Vec<usize> = deps.iter().map(|d| d.2).collect();
            let f = f.clone();
            task(
                deps.iter().map(|(i, idx, _)| (*i, bi(idx))).collect(),
                move |v| {
                    let views = v
                        .iter()
                        .zip(&parts)
                        .map(|(x, &p)| mat::<T>(x, p))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    f(&views)
                },
            )
        },
    )
}

/// A one-block node reading a Householder factorisation `h` and tiles `srcs`.
fn tile_task_h<T: Scalar>(
    name: &str,
    params: &(usize, usize),
    h: Src,
    srcs: &[Src],
    f: impl for<'a> Fn(
        &House<T>,
        &[kernels::MatView<'a, T>],
    ) -> std::result::Result<Value, dag_core::TaskError>
    + Send
    + Sync
    + Clone
    + 'static,
) -> Arc<dyn Node> {
    let mut inputs = Inputs::default();
    let hd = dep(&mut inputs, &h);
    let deps: Vec<Dep> = srcs.iter().map(|s| dep(&mut inputs, s)).collect();
    op::<T, _>(
        name,
        params,
        inputs.nodes,
        crate::node::grid(1),
        false,
        move |_| {
            let parts: Vec<usize> = deps.iter().map(|d| d.2).collect();
            let f = f.clone();
            let mut all = vec![(hd.0, bi(&hd.1))];
            all.extend(deps.iter().map(|(i, idx, _)| (*i, bi(idx))));
            task(all, move |v| {
                let h = house::<T>(&v[0])?;
                let views = v[1..]
                    .iter()
                    .zip(&parts)
                    .map(|(x, &p)| mat::<T>(x, p))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                f(h, &views)
            })
        },
    )
}

/// A node with one block per entry of `srcs`: block `j` reads a Householder factorisation
/// (`srcs[j][0]`) and tiles (`srcs[j][1..]`).
fn multi_task<T: Scalar>(
    name: &str,
    params: &(usize, usize),
    srcs: Vec<Vec<Src>>,
    f: impl for<'a> Fn(
        &House<T>,
        &[kernels::MatView<'a, T>],
    ) -> std::result::Result<Value, dag_core::TaskError>
    + Send
    + Sync
    + Clone
    + 'static,
) -> Arc<dyn Node> {
    let mut inputs = Inputs::default();
    let plans: Vec<Vec<Dep>> = srcs
        .iter()
        .map(|ss| ss.iter().map(|s| dep(&mut inputs, s)).collect())
        .collect();
    let count = plans.len();
    op::<T, _>(
        name,
        params,
        inputs.nodes,
        crate::node::grid(count),
        false,
        move |index| {
            let deps = plans[index[0]].clone();
            let parts: Vec<usize> = deps.iter().map(|d| d.2).collect();
            let f = f.clone();
            task(
                deps.iter().map(|(i, idx, _)| (*i, bi(idx))).collect(),
                move |v| {
                    let h = house::<T>(&v[0])?;
                    let views = v[1..]
                        .iter()
                        .zip(&parts[1..])
                        .map(|(x, &p)| mat::<T>(x, p))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    f(h, &views)
                },
            )
        },
    )
}

/// One block of a Q-build node: the reflectors, the two tiles (`None`: still the identity's),
/// and the tiles' offsets in Q.
type QSrc = (Src, [Option<Src>; 2], [(usize, usize); 2]);

/// A planned [`QSrc`]: dependencies instead of sources.
type QDep = (Dep, [Option<Dep>; 2], [(usize, usize); 2]);

/// A node of the Q build: block `j` applies the reflectors `srcs[j].0` to the stacked tiles
/// `srcs[j].1` (each an identity tile when `None`, of the shapes given, at the offsets given),
/// returning both parts (`pair`) or the top one.
fn q_task<T: Scalar>(
    name: &str,
    params: &(usize, usize),
    srcs: Vec<QSrc>,
    shapes: Vec<[(usize, usize); 2]>,
    pair: bool,
) -> Arc<dyn Node> {
    let mut inputs = Inputs::default();
    let plans: Vec<QDep> = srcs
        .iter()
        .map(|(h, tiles, offs)| {
            (
                dep(&mut inputs, h),
                [
                    tiles[0].as_ref().map(|s| dep(&mut inputs, s)),
                    tiles[1].as_ref().map(|s| dep(&mut inputs, s)),
                ],
                *offs,
            )
        })
        .collect();
    let count = plans.len();
    op::<T, _>(
        name,
        params,
        inputs.nodes,
        crate::node::grid(count),
        false,
        move |index| {
            let (hd, tiles, offs) = plans[index[0]].clone();
            let shape = shapes[index[0]];
            let mut deps = vec![(hd.0, bi(&hd.1))];
            let mut slots = [None, None];
            for (s, t) in tiles.iter().enumerate() {
                if let Some((i, idx, part)) = t {
                    slots[s] = Some((deps.len(), *part));
                    deps.push((*i, bi(idx)));
                }
            }
            task(deps, move |v| {
                let h = house::<T>(&v[0])?;
                let mut parts: Vec<ColMat<T>> = Vec::new();
                let nparts = if pair { 2 } else { 1 };
                for s in 0..nparts {
                    let (rows, cols) = shape[s];
                    parts.push(match slots[s] {
                        Some((pos, part)) => ColMat::copy_of(mat::<T>(&v[pos], part)?.rf()),
                        None => eye_tile::<T>(rows, cols, offs[s].0, offs[s].1),
                    });
                }
                let views: Vec<_> = parts.iter().map(|p| p.as_ref()).collect();
                let mut c = ColMat::vstack(&views);
                h.apply(c.as_mut(), false);
                if pair {
                    let w = parts[0].nrows();
                    let total = c.nrows();
                    Ok(mats_value(vec![c.rows(0..w), c.rows(w..total)]))
                } else {
                    Ok(mat_value(c))
                }
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::tile_rows;

    #[test]
    fn tile_rows_follow_columns_then_rows() {
        // Tall: leading 30 rows cut like the columns, then the input's boundaries.
        assert_eq!(
            tile_rows(&[25, 25, 25], &[10, 20], 75, 30),
            vec![10, 20, 20, 25]
        );
        // Wide: the columns' boundaries clipped at M.
        assert_eq!(tile_rows(&[10, 10], &[7, 7, 7], 20, 21), vec![7, 7, 6]);
        // Square.
        assert_eq!(tile_rows(&[5, 5], &[3, 7], 10, 10), vec![3, 7]);
    }
}
