//! Tensor contractions: `tensordot`, `matmul`, `dot`.
//!
//! # Design notes
//!
//! The contracted axes of both operands are rechunked to a common chunking. Output block
//! `(i, j)` (free blocks of `a`, then of `b`) is `Σ_k a[i, k] · b[k, j]` over the blocks `k` of
//! the contracted axes. Products are grouped: each task accumulates up to
//! [`CONTRACT_GROUP`] block products, and when there are more groups their partial sums are
//! added by a tree (the reduction machinery), so a task never holds more than a bounded number
//! of input blocks whatever the contracted length.
//!
//! Each block product is one GEMM: both blocks are laid out as matrices (free axes × contracted
//! axes) and multiplied with faer for `f32`, `f64` and complex types (sequentially: the
//! scheduler owns the cores), or with ndarray's `general_mat_mul` for integers. Blocks are not
//! copied for this when they need not be: a transposed operand is looked through (its input's
//! blocks are read, and a transposed block is the same buffer read column-major, which faer
//! takes as a view), and a 2-d block is always a view.
//!
//! A contraction of an array with itself over the same axes (`x @ x.T`, `x.T @ x`,
//! `tensordot(x, x, axes, axes)`) is symmetric: block `(I, J)` of the result is block `(J, I)`
//! transposed. A mirror node on top computes the blocks with `I <= J` and transposes them into
//! the others; because lowering asks a node only for the blocks that are read, the
//! contraction runs for the upper triangle of blocks only (21 of 36 for 6 × 6 blocks), and
//! in the diagonal blocks for the upper triangle of elements only (faer's triangular
//! product), as BLAS's `syrk` does for NumPy.

use crate::element::Numeric;
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::reduce::{DEFAULT_FANIN, reduce};
use crate::ops::shape::{as_transpose, rechunk_direct};
use crate::{BlockArray, Chunks, Error, Result, unify_axis};
use dag_core::{BlockIndex, Value};
use ndarray::{Array2, ArrayD, ArrayView2, CowArray, Ix2, IxDyn};
use num_complex::Complex;
use std::sync::Arc;

/// How many block products one contraction task accumulates before partial sums are combined by
/// a tree.
pub const CONTRACT_GROUP: usize = 8;

/// Element types with a matrix product.
pub trait MatMul: Numeric {
    /// `c += a · b` for `a` (m × k), `b` (k × n) and a row-major `c` (m × n).
    fn gemm_acc(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>, c: &mut Array2<Self>);

    /// `c += a · b` on the upper triangle of a square `c`, diagonal included, for a product
    /// known to be symmetric (`a · aᵀ`); the strict lower triangle may be left untouched or
    /// updated too. Half the work of [`gemm_acc`](Self::gemm_acc) where the kernel allows;
    /// the default computes the whole product.
    fn gemm_acc_upper(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>, c: &mut Array2<Self>) {
        Self::gemm_acc(a, b, c);
    }
}

macro_rules! matmul_faer {
    ($($t:ty),*) => {$(
        impl MatMul for $t {
            fn gemm_acc(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>, c: &mut Array2<Self>) {
                faer_acc(a, b, c, |dst, lhs, rhs| {
                    faer::linalg::matmul::matmul(dst, faer::Accum::Add, lhs, rhs, <$t as num_traits::One>::one(), faer::Par::Seq)
                });
            }

            fn gemm_acc_upper(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>, c: &mut Array2<Self>) {
                use faer::linalg::matmul::triangular::{BlockStructure, matmul};
                faer_acc(a, b, c, |dst, lhs, rhs| {
                    matmul(
                        dst,
                        BlockStructure::TriangularUpper,
                        faer::Accum::Add,
                        lhs,
                        BlockStructure::Rectangular,
                        rhs,
                        BlockStructure::Rectangular,
                        <$t as num_traits::One>::one(),
                        faer::Par::Seq,
                    )
                });
            }
        }
    )*};
}
matmul_faer!(f32, f64, Complex<f32>, Complex<f64>);

/// Run the faer product `kernel(c, a, b)` on ndarray operands (nothing to do when a dimension
/// is empty).
fn faer_acc<T: Clone>(
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    c: &mut Array2<T>,
    kernel: impl FnOnce(faer::MatMut<'_, T>, faer::MatRef<'_, T>, faer::MatRef<'_, T>),
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let c = c.as_slice_mut().expect("owned output is contiguous");
    let dst = faer::MatMut::from_row_major_slice_mut(c, m, n);
    with_faer(a, |lhs| with_faer(b, |rhs| kernel(dst, lhs, rhs)));
}

/// Call `f` with `a` as a faer matrix: a view of `a`'s buffer when it is row-major or
/// column-major (a transposed block is the same buffer read column-major, so it is not
/// copied), else a row-major copy.
fn with_faer<T: Clone, R>(a: ArrayView2<'_, T>, f: impl FnOnce(faer::MatRef<'_, T>) -> R) -> R {
    let (m, n) = a.dim();
    if let Some(s) = a.as_slice() {
        return f(faer::MatRef::from_row_major_slice(s, m, n));
    }
    let at = a.t();
    if let Some(s) = at.as_slice() {
        return f(faer::MatRef::from_column_major_slice(s, m, n));
    }
    let owned = a.as_standard_layout();
    f(faer::MatRef::from_row_major_slice(
        owned.as_slice().expect("standard layout"),
        m,
        n,
    ))
}

macro_rules! matmul_wrapping {
    ($($t:ty),*) => {$(
        impl MatMul for $t {
            fn gemm_acc(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>, c: &mut Array2<Self>) {
                wrapping_gemm_acc(a, b, c);
            }
        }
    )*};
}
matmul_wrapping!(i8, i16, i32, i64, u8, u16, u32, u64);

/// `c += a · b` for integers, wrapping on overflow as NumPy's integer products do (ndarray's
/// `general_mat_mul` uses plain `*` and `+`, which panic on overflow in debug builds): rows of
/// `c` updated by rows of `b`, in the order `i, p, j`.
fn wrapping_gemm_acc<T: Numeric>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>, c: &mut Array2<T>) {
    for (a_row, mut c_row) in a.outer_iter().zip(c.outer_iter_mut()) {
        for (&aip, b_row) in a_row.iter().zip(b.outer_iter()) {
            c_row.zip_mut_with(&b_row, |cij, &bpj| *cij = cij.add_wrap(aip.mul_wrap(bpj)));
        }
    }
}

/// The contraction of a group of block pairs along the contracted axes.
struct ContractNode<T> {
    meta: Meta,
    a: Arc<dyn Node>,
    b: Arc<dyn Node>,
    /// Free axes of a and b, contracted axes of a and b (positions in each operand).
    free_a: Vec<usize>,
    free_b: Vec<usize>,
    con_a: Vec<usize>,
    con_b: Vec<usize>,
    /// Blocks along each contracted axis, and how many linear contracted-block numbers one
    /// group covers. The output has one extra trailing axis: the group number.
    con_blocks: Vec<usize>,
    group: usize,
    /// `a` and `b` are the same array contracted over the same axes: diagonal blocks
    /// (`I == J`) are symmetric, so only their upper triangle is computed, then mirrored.
    symmetric: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: MatMul> Node for ContractNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.a.clone(), self.b.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nfa = self.free_a.len();
        let (ia, rest) = index.split_at(nfa);
        let (jb, g) = rest.split_at(self.free_b.len());
        let total: usize = self.con_blocks.iter().product();
        let ks = g[0] * self.group..((g[0] + 1) * self.group).min(total);
        let mut deps = Vec::new();
        for lin in ks {
            // Linear contracted-block number → per-axis block index.
            let mut k = vec![0; self.con_blocks.len()];
            let mut rem = lin;
            for (d, &n) in self.con_blocks.iter().enumerate().rev() {
                k[d] = rem % n;
                rem /= n;
            }
            let mut ai = BlockIndex::from_elem(0, nfa + k.len());
            for (p, &ax) in self.free_a.iter().enumerate() {
                ai[ax] = ia[p];
            }
            for (p, &ax) in self.con_a.iter().enumerate() {
                ai[ax] = k[p];
            }
            let mut bi = BlockIndex::from_elem(0, self.free_b.len() + k.len());
            for (p, &ax) in self.free_b.iter().enumerate() {
                bi[ax] = jb[p];
            }
            for (p, &ax) in self.con_b.iter().enumerate() {
                bi[ax] = k[p];
            }
            deps.push((0, ai));
            deps.push((1, bi));
        }
        let diagonal = self.symmetric && ia == jb;
        let out_shape: Vec<usize> = self.meta.chunks.block_shape(index);
        let (free_a, free_b, con_a, con_b) = (
            self.free_a.clone(),
            self.free_b.clone(),
            self.con_a.clone(),
            self.con_b.clone(),
        );
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let m: usize = out_shape[..free_a.len()].iter().product();
                let n: usize = out_shape[free_a.len()..out_shape.len() - 1]
                    .iter()
                    .product();
                let mut c = Array2::<T>::zeros((m, n));
                for pair in v.chunks(2) {
                    let (a, b) = (block_ref::<T>(&pair[0])?, block_ref::<T>(&pair[1])?);
                    let a = as_matrix(a, &free_a, &con_a);
                    let b = as_matrix(b, &con_b, &free_b);
                    if diagonal {
                        T::gemm_acc_upper(a.view(), b.view(), &mut c);
                    } else {
                        T::gemm_acc(a.view(), b.view(), &mut c);
                    }
                }
                if diagonal {
                    for i in 1..m {
                        for j in 0..i {
                            c[[i, j]] = c[[j, i]];
                        }
                    }
                }
                Ok(block_value(c.into_shape_with_order(IxDyn(&out_shape))?))
            }),
        }
    }
}

/// The block as a matrix: rows over `rows` axes, columns over `cols` axes (C order each). A view
/// of the block when its layout allows (always for 2-d blocks, transposed or not), else a copy.
fn as_matrix<'a, T: Clone>(
    block: &'a ArrayD<T>,
    rows: &[usize],
    cols: &[usize],
) -> CowArray<'a, T, Ix2> {
    let perm: Vec<usize> = rows.iter().chain(cols).copied().collect();
    let r: usize = rows.iter().map(|&a| block.shape()[a]).product();
    let c: usize = cols.iter().map(|&a| block.shape()[a]).product();
    let view = block.view().permuted_axes(IxDyn(&perm));
    if rows.len() == 1 && cols.len() == 1 {
        return CowArray::from(view.into_dimensionality::<Ix2>().expect("two axes"));
    }
    match view.clone().into_shape_with_order((r, c)) {
        Ok(m) => CowArray::from(m),
        Err(_) => CowArray::from(
            view.as_standard_layout()
                .into_owned()
                .into_shape_with_order((r, c))
                .expect("sizes match"),
        ),
    }
}

/// An operand as the node whose blocks a contraction reads and where its axes are there:
/// operand axis `y` is axis `perm[y]` of the node. A transpose is looked through, so its
/// blocks are read in place (as transposed views) instead of being copied first.
fn operand(node: &Arc<dyn Node>) -> (Arc<dyn Node>, Vec<usize>) {
    match as_transpose(node) {
        Some((input, perm)) => (input.clone(), perm.to_vec()),
        None => (node.clone(), (0..node.meta().chunks.ndim()).collect()),
    }
}

/// `x @ x.T` and its kin are symmetric: output block `(I, J)` (the first `half` block indices,
/// then the last `half`) is the transpose of block `(J, I)`. This node computes the blocks with
/// `I <= J` from its input and mirrors the others, so the contraction below it runs for the
/// upper triangle of blocks only (lowering asks an input only for the blocks read).
struct MirrorNode {
    meta: Meta,
    input: Arc<dyn Node>,
    half: usize,
}

impl Node for MirrorNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let (i, j) = index.split_at(self.half);
        if i <= j {
            return BlockTask {
                deps: vec![(0, BlockIndex::from_slice(index))],
                func: Arc::new(|v: &[Value]| Ok(v[0].clone())),
            };
        }
        let source: BlockIndex = j.iter().chain(i).copied().collect();
        let perm: Vec<usize> = (self.half..2 * self.half).chain(0..self.half).collect();
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, source)],
            func: Arc::new(move |v: &[Value]| kit.permute(&v[0], &perm)),
        }
    }
}

fn check_axes(what: &str, ndim: usize, axes: &[usize]) -> Result<()> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= ndim {
            return Err(Error::axis_out_of_bounds(a, ndim).context(format!("tensordot: {what}")));
        }
        if axes[..i].contains(&a) {
            return Err(Error::axis(format!(
                "tensordot: {what} axis {a} is repeated in {axes:?}"
            )));
        }
    }
    Ok(())
}

/// Sum of products over `axes_a` of `a` and `axes_b` of `b` (`numpy.tensordot(a, b, axes=(axes_a,
/// axes_b))`): the result's axes are `a`'s free axes followed by `b`'s.
///
/// ```
/// use blockarray::{BlockArray, tensordot};
/// let a = BlockArray::arange(0.0f64, 24.0, 1.0, 7)?.reshape(&[2, 3, 4])?;
/// let b = BlockArray::arange(0.0f64, 12.0, 1.0, 5)?.reshape(&[4, 3])?;
/// let c = tensordot(&a, &b, &[1, 2], &[1, 0])?;
/// assert_eq!(c.shape(), &[2]);
/// assert_eq!(c.compute()?.into_raw_vec_and_offset().0, vec![440.0, 1232.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn tensordot<T: MatMul>(
    a: &BlockArray<T>,
    b: &BlockArray<T>,
    axes_a: &[usize],
    axes_b: &[usize],
) -> Result<BlockArray<T>> {
    a.chunks().require_known("tensordot")?;
    b.chunks().require_known("tensordot")?;
    if axes_a.len() != axes_b.len() {
        return Err(Error::axis(format!(
            "tensordot: {} axes of a ({axes_a:?}) but {} of b ({axes_b:?})",
            axes_a.len(),
            axes_b.len()
        )));
    }
    check_axes("a", a.ndim(), axes_a)?;
    check_axes("b", b.ndim(), axes_b)?;
    for (&x, &y) in axes_a.iter().zip(axes_b) {
        if a.shape()[x] != b.shape()[y] {
            return Err(Error::shape(format!(
                "tensordot: axis {x} of a has length {} but axis {y} of b has length {} (shapes {:?} and {:?})",
                a.shape()[x],
                b.shape()[y],
                a.shape(),
                b.shape()
            )));
        }
    }
    let free_a: Vec<usize> = (0..a.ndim()).filter(|x| !axes_a.contains(x)).collect();
    let free_b: Vec<usize> = (0..b.ndim()).filter(|x| !axes_b.contains(x)).collect();
    // Common chunks on the contracted axes.
    let mut ca = a.chunks().axes().to_vec();
    let mut cb = b.chunks().axes().to_vec();
    for (&x, &y) in axes_a.iter().zip(axes_b) {
        let common = unify_axis(&ca[x], &cb[y])?;
        ca[x] = common.clone();
        cb[y] = common;
    }
    let con_blocks: Vec<usize> = axes_a.iter().map(|&x| ca[x].len()).collect();
    let mut out_axes: Vec<Vec<usize>> = free_a.iter().map(|&x| ca[x].clone()).collect();
    out_axes.extend(free_b.iter().map(|&y| cb[y].clone()));
    // From here on, axes are those of the nodes read (transposes looked through).
    let (a_in, pa) = operand(&a.node);
    let (b_in, pb) = operand(&b.node);
    let on =
        |axes: &[usize], perm: &[usize]| -> Vec<usize> { axes.iter().map(|&x| perm[x]).collect() };
    let chunks_on = |chunks: &[Vec<usize>], perm: &[usize]| -> Result<Chunks> {
        let mut inner = vec![Vec::new(); perm.len()];
        for (x, &p) in perm.iter().enumerate() {
            inner[p] = chunks[x].clone();
        }
        Chunks::from_blocks(inner)
    };
    let (free_a, con_a) = (on(&free_a, &pa), on(axes_a, &pa));
    let (free_b, con_b) = (on(&free_b, &pb), on(axes_b, &pb));
    // Σ_k A[I, k] · A[J, k] is symmetric under exchanging I and J.
    let symmetric = a_in.meta().name == b_in.meta().name && con_a == con_b && free_a == free_b;
    let an = rechunk_direct(&a_in, chunks_on(&ca, &pa)?)?;
    let bn = if symmetric {
        an.clone()
    } else {
        rechunk_direct(&b_in, chunks_on(&cb, &pb)?)?
    };
    let total: usize = con_blocks.iter().product();
    let groups = total.div_ceil(CONTRACT_GROUP).max(1);
    out_axes.push(vec![1; groups]);
    let mut t = token_of(&[&an, &bn]);
    t.write(&free_a).write(&con_a).write(&free_b).write(&con_b);
    let half = free_a.len();
    let node: Arc<dyn Node> = Arc::new(ContractNode::<T> {
        meta: Meta::new::<T>("tensordot", t, Chunks::from_blocks(out_axes)?),
        a: an,
        b: bn,
        free_a,
        free_b,
        con_a,
        con_b,
        con_blocks,
        group: CONTRACT_GROUP,
        symmetric,
        _type: std::marker::PhantomData,
    });
    // Sum the groups (the trailing axis) with a tree.
    let partial = BlockArray::<T>::wrap(node);
    let last = partial.ndim() - 1;
    let sum = if groups == 1 {
        partial.squeeze(Some(&[last]))?
    } else {
        reduce(
            &partial,
            crate::ops::reduce::sum_reduction::<T>(),
            Some(&[last]),
            false,
            DEFAULT_FANIN,
        )?
    };
    if !symmetric || half == 0 || sum.chunks().nblocks() <= 1 {
        return Ok(sum);
    }
    let mut t = token_of(&[&sum.node]);
    t.write_str("mirror");
    let meta = sum.node.meta().derive("tensordot", t, sum.chunks().clone());
    Ok(BlockArray::wrap(Arc::new(MirrorNode {
        meta,
        input: sum.node,
        half,
    })))
}

impl<T: MatMul> BlockArray<T> {
    /// Matrix product (`numpy.matmul` / `@`): 2-d × 2-d is a matrix product, a 1-d operand
    /// is treated as a row (left) or column (right) vector and that axis is dropped from the
    /// result; operands of more axes are stacks of matrices whose leading (batch) axes
    /// broadcast, computed as [`einsum`](crate::einsum)`("...ij,...jk->...ik")`.
    ///
    /// ```
    /// let x = blockarray::random::Rng::new(0).random::<f64>(&[60, 40], [25, 15])?;
    /// let g = x.matmul(&x.t())?;
    /// assert_eq!(g.shape(), &[60, 60]);
    /// let (xv, gv) = (x.compute_as::<ndarray::Ix2>()?, g.compute_as::<ndarray::Ix2>()?);
    /// let expected = xv.dot(&xv.t());
    /// assert!(gv.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-9));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn matmul(&self, other: &BlockArray<T>) -> Result<BlockArray<T>> {
        match (self.ndim(), other.ndim()) {
            (1 | 2, 1 | 2) => tensordot(self, other, &[self.ndim() - 1], &[0]),
            _ => crate::ops::einsum::matmul_nd(self, other),
        }
    }

    /// `numpy.dot`: the same as [`matmul`](Self::matmul) for 1-d and 2-d operands; for more
    /// axes, the sum over the last axis of `self` and the second-to-last of `other` (the last
    /// if `other` is 1-d), with every other axis kept (`tensordot`, no batch broadcasting,
    /// unlike `matmul`); a 0-d operand multiplies elementwise.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let a = BlockArray::arange(0.0f64, 4.0, 1.0, 2)?.reshape(&[2, 2])?;
    /// let b = BlockArray::arange(0.0f64, 8.0, 1.0, 4)?.reshape(&[2, 2, 2])?;
    /// let d = a.dot(&b)?;
    /// assert_eq!(d.shape(), &[2, 2, 2]);
    /// // NumPy: np.dot(a, b).ravel()
    /// assert_eq!(d.compute()?.into_raw_vec_and_offset().0, vec![2.0, 3.0, 6.0, 7.0, 6.0, 11.0, 26.0, 31.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn dot(&self, other: &BlockArray<T>) -> Result<BlockArray<T>> {
        let (na, nb) = (self.ndim(), other.ndim());
        match (na, nb) {
            (0, _) | (_, 0) => self * other,
            (_, 1) => tensordot(self, other, &[na - 1], &[0]),
            _ => tensordot(self, other, &[na - 1], &[nb - 2]),
        }
    }
}
