//! TSQR: the QR factorisation of a tall-and-skinny array, and of a short-and-fat one.
//!
//! # Algorithm (direct TSQR, Benson, Gleich & Demmel 2013)
//!
//! For `A` (`M × N`) cut into row blocks `A₀ … A_{p-1}` that each span all `N` columns:
//!
//! 1. **Leaves**: each block is factorised, `Aᵢ = Hᵢ Rᵢ` (faer Householder QR, the
//!    reflectors kept in compact form, one task per block).
//! 2. **Tree**: the `Rᵢ` are stacked in groups of up to `fanin` and factorised again,
//!    `[R_a; R_b; …] = Q_g R_g`, level by level, until one `R` is left: the result's R.
//! 3. **Q, top down**: the root hands each child the rows of its small `Q_g` that belong to
//!    it; each level multiplies them down (`k × k` products), and leaf `i` turns its piece
//!    `Xᵢ` into its Q block `Hᵢ · [Xᵢ; 0]` without forming `Hᵢ`'s Q (see
//!    [`House::apply_top`](crate::kernels::House::apply_top)).
//!
//! Costs for `p` blocks of `m × N` (`m ≥ N`): `p` leaf tasks of `2mN²` flops, a tree of
//! `⌈(p − 1)/(fanin − 1)⌉` tasks of at most `2·fanin·N³` flops, and `p` Q tasks of `2mN²`;
//! bytes moved between tasks: `8pN²` (the R factors and Q pieces) besides the input and the
//! output. The SVD of a tall-skinny array reuses the tree and hands the root its left singular
//! vectors instead of the identity, so `U` costs what `Q` costs.

use crate::kernels::{ColMat, House};
use crate::node::{
    array, array_value, bi, block_value, grid, house, house_value, mat, mat_value, mats_value, op,
    task,
};
use crate::scalar::Scalar;
use blockarray::{BlockArray, Chunks, DEFAULT_CHUNK_BYTES, Error, Node, Result};
use std::sync::Arc;

/// The default number of R factors one TSQR tree task stacks: as many as fit in 32 MiB,
/// between 2 and 64.
fn default_fanin(n: usize, itemsize: usize) -> usize {
    let per = n.saturating_mul(n).saturating_mul(itemsize).max(1);
    ((32 << 20) / per).clamp(2, 64)
}

/// Options of [`tsqr_with`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TsqrOptions {
    compute_q: bool,
    fanin: Option<usize>,
}

impl Default for TsqrOptions {
    fn default() -> Self {
        TsqrOptions::new()
    }
}

impl TsqrOptions {
    /// Q and R, with the default fan-in.
    pub fn new() -> TsqrOptions {
        TsqrOptions {
            compute_q: true,
            fanin: None,
        }
    }

    /// Whether to build Q (default true). Without Q, the leaves keep only their R factors, so
    /// no task holds a block's Householder reflectors past its leaf.
    pub fn compute_q(mut self, yes: bool) -> TsqrOptions {
        self.compute_q = yes;
        self
    }

    /// How many R factors one tree task stacks (at least 2; default: as many `N × N` factors
    /// as fit in 32 MiB, at most 64).
    pub fn fanin(mut self, fanin: usize) -> TsqrOptions {
        self.fanin = Some(fanin);
        self
    }
}

/// The result of [`tsqr_with`]: `q` when it was asked for.
#[derive(Clone)]
pub struct Tsqr<T> {
    /// `M × K` with orthonormal columns (`K = min(M, N)`), chunked like the input's rows and
    /// one block of columns.
    pub q: Option<BlockArray<T>>,
    /// `K × N` upper triangular, one block.
    pub r: BlockArray<T>,
}

impl<T: Scalar> std::fmt::Debug for Tsqr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsqr")
            .field("q", &self.q)
            .field("r", &self.r)
            .finish()
    }
}

/// One level of the tree above the leaves.
struct Level {
    node: Arc<dyn Node>,
    /// For each group: the children (node numbers on the level below).
    groups: Vec<std::ops::Range<usize>>,
    /// Rows of each group's R.
    ks: Vec<usize>,
}

/// The factorisation part of a TSQR (leaves and tree), from which Q, R and the SVD are built.
pub(crate) struct TsqrTree {
    leaves: Arc<dyn Node>,
    levels: Vec<Level>,
    /// Row chunks of the input.
    rows: Vec<usize>,
    /// Rows of each leaf's R.
    leaf_ks: Vec<usize>,
    n: usize,
    fanin: usize,
    compute_q: bool,
}

/// Checks that `a` is a matrix and returns it with one block of columns (rechunked when it has
/// several: row blocks are kept unless a full-width block would exceed 128 MiB).
pub(crate) fn one_column_block<T: Scalar>(a: &BlockArray<T>, what: &str) -> Result<BlockArray<T>> {
    check_matrix(a, what)?;
    if a.numblocks()[1] == 1 {
        return Ok(a.clone());
    }
    let n = a.shape()[1];
    let max_rows = a.chunks().axis(0).iter().copied().max().unwrap_or(0);
    let row_bytes = (n * T::itemsize()).max(1);
    if max_rows * row_bytes <= DEFAULT_CHUNK_BYTES {
        a.rechunk(vec![a.chunks().axis(0).to_vec(), vec![n]])
    } else {
        let rows = (DEFAULT_CHUNK_BYTES / row_bytes).max(1);
        a.rechunk([rows, n])
    }
}

/// An error unless `a` has two axes and known chunk sizes.
pub(crate) fn check_matrix<T: Scalar>(a: &BlockArray<T>, what: &str) -> Result<()> {
    if a.ndim() != 2 {
        return Err(Error::shape(format!(
            "{what} needs a 2-d array (a matrix), got shape {:?}",
            a.shape()
        )));
    }
    // The plans below place blocks by the chunk sizes: bounds (a mask's result) would leave
    // gaps in the factors.
    a.chunks().require_known(what)
}

impl TsqrTree {
    /// Leaves and tree of the TSQR of `a` (one column block).
    pub(crate) fn new<T: Scalar>(
        a: &BlockArray<T>,
        compute_q: bool,
        fanin: Option<usize>,
    ) -> Result<TsqrTree> {
        let (m, n) = (a.shape()[0], a.shape()[1]);
        debug_assert_eq!(a.numblocks()[1], 1);
        debug_assert!(m > 0 && n > 0);
        let fanin = fanin.unwrap_or_else(|| default_fanin(n, T::itemsize()));
        if fanin < 2 {
            return Err(Error::unsupported(format!(
                "tsqr: fanin must be at least 2, got {fanin}"
            )));
        }
        let k = m.min(n);
        let r_bytes = k.saturating_mul(n).saturating_mul(T::itemsize());
        if r_bytes > crate::node::MAX_GATHER_BYTES {
            return Err(Error::unsupported(format!(
                "tsqr of shape {:?}: its tree holds {k} × {n} R factors ({:.1} MB each) in one \
                 task, more than the {} MiB limit; TSQR is for tall-and-skinny matrices: use qr \
                 (tile QR) for this shape instead",
                a.shape(),
                r_bytes as f64 / 1e6,
                crate::node::MAX_GATHER_BYTES >> 20
            )));
        }
        let rows = a.chunks().axis(0).to_vec();
        let leaf_ks: Vec<usize> = rows.iter().map(|&r| r.min(n)).collect();
        let p = rows.len();
        // Leaves: the Householder QR of each row block (or only its R).
        let leaves = op::<T, _>(
            if compute_q {
                "tsqr-leaf"
            } else {
                "tsqr-leaf-r"
            },
            &[0usize; 0],
            vec![a.node().clone()],
            Chunks::from_blocks(vec![rows.clone(), vec![n]])?,
            true,
            move |index| {
                task(vec![(0, bi(index))], move |v| {
                    let h = House::new(crate::node::colmat::<T>(&v[0], 0)?, true);
                    Ok(if compute_q {
                        house_value(h)
                    } else {
                        mat_value(h.r())
                    })
                })
            },
        );
        let mut levels: Vec<Level> = Vec::new();
        let mut below: Arc<dyn Node> = leaves.clone();
        let mut below_ks = leaf_ks.clone();
        let mut depth = 0usize;
        while below_ks.len() > 1 {
            let count = below_ks.len();
            let groups: Vec<std::ops::Range<usize>> = (0..count.div_ceil(fanin))
                .map(|g| g * fanin..((g + 1) * fanin).min(count))
                .collect();
            let ks: Vec<usize> = groups
                .iter()
                .map(|g| below_ks[g.clone()].iter().sum::<usize>().min(n))
                .collect();
            let from_leaves = depth == 0;
            let gs = groups.clone();
            let node = op::<T, _>(
                "tsqr-level",
                &(depth, fanin, compute_q),
                vec![below.clone()],
                grid(groups.len()),
                false,
                move |index| {
                    let g = gs[index[0]].clone();
                    let deps = g
                        .clone()
                        .map(|c| (0, child_index(from_leaves, c)))
                        .collect();
                    task(deps, move |v| {
                        let rs: Vec<ColMat<T>> = v
                            .iter()
                            .map(|x| child_r::<T>(x, from_leaves && compute_q))
                            .collect::<std::result::Result<_, _>>()?;
                        let views: Vec<_> = rs.iter().map(|r| r.as_ref()).collect();
                        let h = House::new(ColMat::vstack(&views), true);
                        let mut parts = vec![h.r()];
                        if compute_q {
                            parts.push(h.q());
                        }
                        Ok(mats_value(parts))
                    })
                },
            );
            levels.push(Level {
                node: node.clone(),
                groups,
                ks: ks.clone(),
            });
            below = node;
            below_ks = ks;
            depth += 1;
        }
        debug_assert!(p == 1 || !levels.is_empty());
        Ok(TsqrTree {
            leaves,
            levels,
            rows,
            leaf_ks,
            n,
            fanin,
            compute_q,
        })
    }

    /// `K = min(M, N)`: rows of the final R.
    pub(crate) fn k(&self) -> usize {
        match self.levels.last() {
            Some(l) => l.ks[0],
            None => self.leaf_ks[0],
        }
    }

    /// The final R (`K × N`, one block).
    pub(crate) fn r<T: Scalar>(&self) -> Result<BlockArray<T>> {
        let (root, from_house) = match self.levels.last() {
            Some(l) => (l.node.clone(), false),
            None => (self.leaves.clone(), self.compute_q),
        };
        let root_index = if self.levels.is_empty() {
            vec![0, 0]
        } else {
            vec![0]
        };
        let node = op::<T, _>(
            "tsqr-r",
            &[0usize; 0],
            vec![root],
            Chunks::from_blocks(vec![vec![self.k()], vec![self.n]])?,
            true,
            move |_| {
                task(vec![(0, bi(&root_index))], move |v| {
                    Ok(block_value(child_r::<T>(&v[0], from_house)?))
                })
            },
        );
        array(node)
    }

    /// The root's R as a hidden value (a `ColMat`), for kernels that continue from it (the
    /// SVD): the node and the block index to read.
    pub(crate) fn root(&self) -> (Arc<dyn Node>, Vec<usize>, bool) {
        match self.levels.last() {
            Some(l) => (l.node.clone(), vec![0], false),
            None => (self.leaves.clone(), vec![0, 0], self.compute_q),
        }
    }

    /// `Q · X`: the Q factor times `factor` (a hidden node whose block `[0]` is a `ColMat` of
    /// `K × cols`), or Q itself when `factor` is `None`. Chunked like the input's rows, one
    /// block of `cols` columns.
    pub(crate) fn q<T: Scalar>(
        &self,
        factor: Option<(Arc<dyn Node>, usize)>,
    ) -> Result<BlockArray<T>> {
        if !self.compute_q {
            return Err(Error::unsupported(
                "internal: Q asked of a TSQR built without it",
            ));
        }
        let cols = factor.as_ref().map_or(self.k(), |f| f.1);
        // Pieces, top down: piece of node c on level l = rows of its parent's Q · the parent's
        // piece (the root's piece is the factor, or the identity).
        let mut parent_piece: Option<Arc<dyn Node>> = factor.as_ref().map(|f| f.0.clone());
        let nlev = self.levels.len();
        for l in (0..nlev).rev() {
            let level = &self.levels[l];
            let child_ks = if l == 0 {
                self.leaf_ks.clone()
            } else {
                self.levels[l - 1].ks.clone()
            };
            let nchildren = child_ks.len();
            // Parent group and row offset of each child inside its parent's stacked matrix.
            let mut parent_of = vec![0usize; nchildren];
            let mut offset = vec![0usize; nchildren];
            for (g, range) in level.groups.iter().enumerate() {
                let mut row = 0;
                for c in range.clone() {
                    parent_of[c] = g;
                    offset[c] = row;
                    row += child_ks[c];
                }
            }
            let mut inputs = vec![level.node.clone()];
            let has_parent = parent_piece.is_some();
            if let Some(pp) = &parent_piece {
                inputs.push(pp.clone());
            }
            let top = l == nlev - 1;
            let node = op::<T, _>(
                "tsqr-down",
                &(l, self.fanin, has_parent, cols),
                inputs,
                grid(nchildren),
                true,
                move |index| {
                    let c = index[0];
                    let g = parent_of[c];
                    let mut deps = vec![(0, bi(&[g]))];
                    if has_parent {
                        // The root's factor is block [0]; pieces of lower levels are per node.
                        deps.push((1, bi(&[if top { 0 } else { g }])));
                    }
                    let (row, k) = (offset[c], child_ks[c]);
                    task(deps, move |v| {
                        let q = mat::<T>(&v[0], 1)?;
                        let rows = q.rf().subrows(row, k);
                        Ok(mat_value(if has_parent {
                            crate::kernels::product(rows, mat::<T>(&v[1], 0)?.rf())
                        } else {
                            ColMat::copy_of(rows)
                        }))
                    })
                },
            );
            parent_piece = Some(node);
        }
        let rows = self.rows.clone();
        let mut inputs = vec![self.leaves.clone()];
        let has_piece = parent_piece.is_some();
        if let Some(pp) = &parent_piece {
            inputs.push(pp.clone());
        }
        let node = op::<T, _>(
            "tsqr-q",
            &(cols, has_piece),
            inputs,
            Chunks::from_blocks(vec![rows, vec![cols]])?,
            true,
            move |index| {
                let i = index[0];
                let mut deps = vec![(0, bi(&[i, 0]))];
                if has_piece {
                    deps.push((1, bi(&[if nlev == 0 { 0 } else { i }])));
                }
                task(deps, move |v| {
                    let h = house::<T>(&v[0])?;
                    let out = if has_piece {
                        h.apply_top_block(mat::<T>(&v[1], 0)?.rf())
                    } else {
                        let k = h.k();
                        h.apply_top_block(ColMat::identity(k, k).as_ref())
                    };
                    Ok(array_value(out))
                })
            },
        );
        array(node)
    }
}

/// The block index of child `c` of the first tree level (`[c, 0]`, a leaf) or of a higher one
/// (`[c]`).
fn child_index(from_leaves: bool, c: usize) -> dag_core::BlockIndex {
    if from_leaves { bi(&[c, 0]) } else { bi(&[c]) }
}

/// The R factor in a child's value: a leaf's Householder factorisation (`from_house`), or a
/// `ColMat` / first part of a tree node's matrices.
pub(crate) fn child_r<T: Scalar>(
    v: &dag_core::Value,
    from_house: bool,
) -> std::result::Result<ColMat<T>, dag_core::TaskError> {
    if from_house {
        Ok(house::<T>(v)?.r())
    } else {
        Ok(ColMat::copy_of(mat::<T>(v, 0)?.rf()))
    }
}

/// An `rows × cols` array of zeros with the given row chunks (for empty factorisations).
pub(crate) fn zeros_like_rows<T: Scalar>(rows: &[usize], cols: usize) -> Result<BlockArray<T>> {
    BlockArray::zeros(&[rows.iter().sum(), cols], vec![rows.to_vec(), vec![cols]])
}

/// The QR factorisation of a tall-and-skinny matrix by direct TSQR (see the module notes):
/// `(q, r)` with `a = q · r`, `q` (`M × K`, `K = min(M, N)`) with orthonormal columns,
/// chunked like `a`'s rows, and `r` (`K × N`) upper triangular in one block.
///
/// `a` should have one block of columns; when it has several they are merged (a rechunk; row
/// blocks are split if a full-width block would exceed 128 MiB). For matrices that are not
/// tall and skinny use [`qr`](crate::qr), which handles any chunking.
///
/// ```
/// use blockarray::random::Rng;
/// let a = Rng::new(7).random::<f64>(&[1000, 20], [100, 20])?;
/// let (q, r) = blockarray_linalg::tsqr(&a)?;
/// assert_eq!((q.shape(), r.shape()), (&[1000, 20][..], &[20, 20][..]));
/// // Q·R rebuilds A.
/// let qr = q.matmul(&r)?.compute()?;
/// let a = a.compute()?;
/// assert!(qr.iter().zip(a.iter()).all(|(x, y)| (x - y).abs() < 1e-12));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn tsqr<T: Scalar>(a: &BlockArray<T>) -> Result<(BlockArray<T>, BlockArray<T>)> {
    let out = tsqr_with(a, &TsqrOptions::new())?;
    Ok((out.q.expect("asked for Q"), out.r))
}

/// [`tsqr`] with options: without Q ([`TsqrOptions::compute_q`]), or another tree fan-in.
///
/// ```
/// use blockarray_linalg::{TsqrOptions, tsqr_with};
/// let a = blockarray::random::Rng::new(1).random::<f64>(&[500, 8], [50, 8])?;
/// let out = tsqr_with(&a, &TsqrOptions::new().compute_q(false).fanin(2))?;
/// assert!(out.q.is_none());
/// assert_eq!(out.r.shape(), &[8, 8]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn tsqr_with<T: Scalar>(a: &BlockArray<T>, options: &TsqrOptions) -> Result<Tsqr<T>> {
    let a = one_column_block(a, "tsqr")?;
    let (m, n) = (a.shape()[0], a.shape()[1]);
    if let Some(f) = options.fanin
        && f < 2
    {
        return Err(Error::unsupported(format!(
            "tsqr: fanin must be at least 2, got {f}"
        )));
    }
    if m == 0 || n == 0 {
        let k = m.min(n);
        let q = if options.compute_q {
            Some(zeros_like_rows(a.chunks().axis(0), k)?)
        } else {
            None
        };
        return Ok(Tsqr {
            q,
            r: BlockArray::zeros(&[k, n], vec![vec![k], vec![n]])?,
        });
    }
    let tree = TsqrTree::new(&a, options.compute_q, options.fanin)?;
    let q = if options.compute_q {
        Some(tree.q(None)?)
    } else {
        None
    };
    Ok(Tsqr { q, r: tree.r()? })
}
