//! In-memory kernels: what one task does to its blocks, on faer, sequentially.
//!
//! Every blocked algorithm of this crate is a graph of tasks, and every task calls one or two
//! of these functions on whole blocks. They run faer with `Par::Seq`: the scheduler owns the
//! cores, so a task never spawns threads of its own.
//!
//! # Design notes
//!
//! * **Column-major work, row-major blocks.** faer's factorisations work in place on
//!   column-major matrices: [`ColMat`] is one contiguous column-major buffer for those (and
//!   for small matrices kept inside the algorithms). Blocks handed to blockarray are row-major
//!   (C order, [`c_block`]): its sinks copy them with `memcpy` and its reductions take their
//!   contiguous path, and faer's products and triangular solves run as fast on them (measured
//!   by the `kernels` bench). Input blocks of any order are read in place as faer views
//!   ([`MatView`]); a row-major block entering a factorisation is transposed in cache-sized
//!   strips ([`ColMat::from_row_major`]).
//! * **Householder factors are kept, not Q.** [`House`] is a QR factorisation in faer's
//!   compact form (the reflectors below the diagonal, R above, and the block factor `T`).
//!   Applying Q to a small matrix stacked on zeros, `Q · [X; 0]`, which is how TSQR assembles
//!   its Q blocks, costs `2·m·k·p` flops with a single reflector block
//!   ([`House::apply_top`]) against `4·m·k·p` for forming Q and multiplying. faer factorises
//!   with its own block size; the block factors are then merged into one (`m·k²` flops,
//!   cheaper than factorising with one `k`-wide block).
//! * **Rank-deficient blocks.** faer's QR skips columns that are zero to working precision
//!   (its `T` then has infinite diagonal entries, which make those reflectors the identity);
//!   R is still upper triangular and `Q · R` is still the input, which is all the blocked
//!   algorithms rely on.

use crate::scalar::{RealOf, Scalar};
use dag_core::TaskError;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::matmul::{matmul, matmul_with_conj};
use faer::linalg::qr::no_pivoting::factor as qr_factor;
use faer::linalg::triangular_solve;
use faer::reborrow::ReborrowMut;
use faer::{Accum, Conj, MatMut, MatRef, Par};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use num_traits::Float as _;

const SEQ: Par = Par::Seq;

fn one<T: Scalar>() -> T {
    <T as num_traits::One>::one()
}

fn zero<T: Scalar>() -> T {
    <T as num_traits::Zero>::zero()
}

/// A dense column-major matrix in one contiguous buffer (column stride = number of rows).
#[derive(Clone, Debug, PartialEq)]
pub struct ColMat<T> {
    data: Vec<T>,
    nrows: usize,
    ncols: usize,
}

impl<T: Scalar> ColMat<T> {
    /// An `m × n` matrix of zeros.
    pub fn zeros(nrows: usize, ncols: usize) -> ColMat<T> {
        ColMat {
            data: vec![zero(); nrows * ncols],
            nrows,
            ncols,
        }
    }

    /// An `m × n` matrix with ones on the main diagonal.
    pub fn identity(nrows: usize, ncols: usize) -> ColMat<T> {
        let mut m = ColMat::zeros(nrows, ncols);
        for i in 0..nrows.min(ncols) {
            m.data[i + i * nrows] = one();
        }
        m
    }

    /// A copy of any faer matrix view.
    pub fn copy_of(a: MatRef<'_, T>) -> ColMat<T> {
        let mut out = ColMat::zeros(a.nrows(), a.ncols());
        out.as_mut().copy_from(a);
        out
    }

    /// A copy of a row-major `m × n` matrix held in `data` (an ndarray block in standard
    /// layout).
    ///
    /// The transpose goes in strips of 64 rows: each column of the strip is written as one
    /// contiguous run while the strip stays in cache (faer's element-by-element copy writes
    /// every element to another cache line).
    pub fn from_row_major(data: &[T], m: usize, n: usize) -> ColMat<T> {
        assert_eq!(data.len(), m * n, "from_row_major: m × n elements");
        const STRIP: usize = 64;
        let mut out = ColMat::zeros(m, n);
        for r0 in (0..m).step_by(STRIP) {
            let h = STRIP.min(m - r0);
            let src = &data[r0 * n..(r0 + h) * n];
            for j in 0..n {
                let dst = &mut out.data[r0 + j * m..r0 + j * m + h];
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = src[i * n + j];
                }
            }
        }
        out
    }

    /// A column-major copy of a 2-d ndarray block (any layout).
    pub fn from_block(block: &ArrayD<T>) -> Result<ColMat<T>, TaskError> {
        if block.ndim() == 2
            && let Some(s) = block.as_slice()
        {
            return Ok(ColMat::from_row_major(
                s,
                block.shape()[0],
                block.shape()[1],
            ));
        }
        Ok(ColMat::copy_of(view(block)?.rf()))
    }

    /// The matrix whose element `(i, j)` is `f(i, j)`.
    pub fn from_fn(nrows: usize, ncols: usize, mut f: impl FnMut(usize, usize) -> T) -> ColMat<T> {
        let mut data = Vec::with_capacity(nrows * ncols);
        for j in 0..ncols {
            for i in 0..nrows {
                data.push(f(i, j));
            }
        }
        ColMat { data, nrows, ncols }
    }

    /// Rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Element `(i, j)`.
    pub fn at(&self, i: usize, j: usize) -> T {
        self.data[i + j * self.nrows]
    }

    /// Element `(i, j)`, mutably.
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut T {
        &mut self.data[i + j * self.nrows]
    }

    /// A faer view.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef::from_column_major_slice(&self.data, self.nrows, self.ncols)
    }

    /// A mutable faer view.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.nrows, self.ncols)
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<T>()
    }

    /// The matrix as a 2-d ndarray block in Fortran (column-major) order, without a copy.
    pub fn into_block(self) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(&[self.nrows, self.ncols]).f(), self.data)
            .expect("the buffer holds nrows × ncols elements")
    }

    /// The rows `rows` as a new matrix.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> ColMat<T> {
        ColMat::copy_of(self.as_ref().subrows(rows.start, rows.len()))
    }

    /// The columns `cols` as a new matrix.
    pub fn cols(&self, cols: std::ops::Range<usize>) -> ColMat<T> {
        ColMat::copy_of(self.as_ref().subcols(cols.start, cols.len()))
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> ColMat<T> {
        ColMat::from_fn(self.ncols, self.nrows, |i, j| self.at(j, i).conjugate())
    }

    /// The matrices stacked vertically (all with the same number of columns).
    pub fn vstack(parts: &[MatRef<'_, T>]) -> ColMat<T> {
        let ncols = parts.first().map_or(0, |p| p.ncols());
        let nrows = parts.iter().map(|p| p.nrows()).sum();
        let mut out = ColMat::zeros(nrows, ncols);
        let mut row = 0;
        for p in parts {
            out.as_mut().subrows_mut(row, p.nrows()).copy_from(*p);
            row += p.nrows();
        }
        out
    }
}

/// A copy of `m` as a row-major (C order) ndarray block: the layout the rest of blockarray
/// reads fastest (sinks copy it with `memcpy`, reductions take their contiguous path), and
/// faer's products and solves run as fast on it as on a column-major one.
pub fn c_block<T: Scalar>(m: MatRef<'_, T>) -> ArrayD<T> {
    let (r, c) = (m.nrows(), m.ncols());
    let mut data = vec![zero::<T>(); r * c];
    MatMut::from_row_major_slice_mut(&mut data, r, c).copy_from(m);
    ArrayD::from_shape_vec(IxDyn(&[r, c]), data).expect("the buffer holds r × c elements")
}

/// The conjugate transpose of `m` as a row-major ndarray block.
pub fn c_block_adjoint<T: Scalar>(m: MatRef<'_, T>) -> ArrayD<T> {
    let mut out = c_block(m.transpose());
    if T::COMPLEX {
        out.mapv_inplace(Scalar::conjugate);
    }
    out
}

/// A row-major ndarray block of zeros.
pub fn c_zeros<T: Scalar>(r: usize, c: usize) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[r, c]), zero())
}

/// A row-major block whose element `(i, j)` is `f(i, j)`.
pub fn c_from_fn<T: Scalar>(r: usize, c: usize, mut f: impl FnMut(usize, usize) -> T) -> ArrayD<T> {
    ArrayD::from_shape_fn(IxDyn(&[r, c]), |ix| f(ix[0], ix[1]))
}

/// A mutable faer view of an owned row-major 2-d block.
///
/// # Panics
/// If the block is not 2-d in standard layout (the blocks this crate allocates always are).
pub fn view_mut<T: Scalar>(a: &mut ArrayD<T>) -> MatMut<'_, T> {
    let (r, c) = (a.shape()[0], a.shape()[1]);
    let s = a
        .as_slice_mut()
        .expect("an owned block of this crate is in standard layout");
    MatMut::from_row_major_slice_mut(s, r, c)
}

/// A 2-d block seen by faer: a view of its buffer when it is row- or column-major, else a
/// column-major copy.
pub enum MatView<'a, T> {
    /// A view of the block's own buffer.
    Borrowed(MatRef<'a, T>),
    /// A copy (the block had another layout).
    Owned(ColMat<T>),
}

impl<T: Scalar> MatView<'_, T> {
    /// The faer view.
    pub fn rf(&self) -> MatRef<'_, T> {
        match self {
            MatView::Borrowed(m) => *m,
            MatView::Owned(m) => m.as_ref(),
        }
    }
}

/// An ndarray block as a faer matrix (see [`MatView`]); errors unless it has two axes.
pub fn view<T: Scalar>(block: &ArrayD<T>) -> Result<MatView<'_, T>, TaskError> {
    if block.ndim() != 2 {
        return Err(format!("expected a 2-d block, got shape {:?}", block.shape()).into());
    }
    let (m, n) = (block.shape()[0], block.shape()[1]);
    if let Some(s) = block.as_slice() {
        return Ok(MatView::Borrowed(MatRef::from_row_major_slice(s, m, n)));
    }
    if let Some(s) = block.t().to_slice() {
        return Ok(MatView::Borrowed(MatRef::from_column_major_slice(s, m, n)));
    }
    Ok(MatView::Owned(ColMat::from_fn(m, n, |i, j| block[[i, j]])))
}

/// `dst = alpha · op(a) · op(b) (+ dst when accumulating)`, with `op` the identity or the
/// conjugate.
pub fn gemm<T: Scalar>(
    dst: MatMut<'_, T>,
    accumulate: bool,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    alpha: T,
) {
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    matmul(dst, beta, a, b, alpha, SEQ);
}

/// `dst += alpha · a · bᴴ`.
pub fn gemm_adjoint_b<T: Scalar>(dst: MatMut<'_, T>, a: MatRef<'_, T>, b: MatRef<'_, T>, alpha: T) {
    if a.ncols() == 0 {
        return;
    }
    matmul_with_conj(
        dst,
        Accum::Add,
        a,
        Conj::No,
        b.transpose(),
        Conj::Yes,
        alpha,
        SEQ,
    );
}

/// `a · b` as a new matrix.
pub fn product<T: Scalar>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> ColMat<T> {
    let mut out = ColMat::zeros(a.nrows(), b.ncols());
    if a.ncols() > 0 {
        gemm(out.as_mut(), false, a, b, one());
    }
    out
}

/// `aᴴ · b` as a new matrix.
pub fn adjoint_product<T: Scalar>(a: MatRef<'_, T>, b: MatRef<'_, T>) -> ColMat<T> {
    let mut out = ColMat::zeros(a.ncols(), b.ncols());
    if a.nrows() > 0 {
        matmul_with_conj(
            out.as_mut(),
            Accum::Replace,
            a.transpose(),
            Conj::Yes,
            b,
            Conj::No,
            one(),
            SEQ,
        );
    }
    out
}

impl<T: crate::wire::WireScalar> ColMat<T> {
    /// Append the matrix's bytes (shape, then the column-major data) for another process.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        dag_core::wire::put_u64(out, self.nrows as u64);
        dag_core::wire::put_u64(out, self.ncols as u64);
        T::put(&self.data, out);
    }

    /// Read a matrix written by [`put`](Self::put).
    pub(crate) fn get(r: &mut dag_core::wire::Reader<'_>) -> Result<ColMat<T>, String> {
        let (nrows, ncols) = (r.usize()?, r.usize()?);
        let len = nrows
            .checked_mul(ncols)
            .ok_or_else(|| format!("a {nrows} × {ncols} matrix is too large"))?;
        let data = T::get(r, len)?;
        Ok(ColMat { data, nrows, ncols })
    }
}

impl<T: crate::wire::WireScalar> House<T> {
    /// Append the factorisation's bytes for another process.
    pub(crate) fn put(&self, out: &mut Vec<u8>) {
        self.f.put(out);
        self.t.put(out);
    }

    /// Read a factorisation written by [`put`](Self::put).
    pub(crate) fn get(r: &mut dag_core::wire::Reader<'_>) -> Result<House<T>, String> {
        Ok(House {
            f: ColMat::get(r)?,
            t: ColMat::get(r)?,
        })
    }
}

/// A QR factorisation in faer's compact form: reflectors below the diagonal of `f`, R on and
/// above it, and the block Householder factors `t` (block size × min(m, n)).
#[derive(Clone, Debug)]
pub struct House<T> {
    f: ColMat<T>,
    t: ColMat<T>,
}

impl<T: Scalar> House<T> {
    /// Factorise `a` (taken, factorised in place) with faer's recommended block size. With
    /// `single_block`, the block factors are then merged into one `k × k` factor
    /// (`k = min(m, n)`), which [`apply_top`](Self::apply_top) exploits.
    pub fn new(a: ColMat<T>, single_block: bool) -> House<T> {
        let (m, n) = (a.nrows, a.ncols);
        let k = m.min(n);
        let bs = qr_factor::recommended_block_size::<T>(m, n);
        let mut f = a;
        let mut t = ColMat::zeros(bs, k);
        if k > 0 {
            let req = qr_factor::qr_in_place_scratch::<T>(m, n, bs, SEQ, Default::default());
            let mut buf = MemBuffer::new(req);
            qr_factor::qr_in_place(
                f.as_mut(),
                t.as_mut(),
                SEQ,
                MemStack::new(&mut buf),
                Default::default(),
            );
        }
        let mut h = House { f, t };
        if single_block {
            h.merge_blocks();
        }
        h
    }

    /// Turn faer's block factors (`bs × k`, one `T` per block of `bs` reflectors) into the
    /// single `k × k` factor of the whole sequence: `H₁ ⋯ H_b = I − V T⁻¹ Vᴴ` with `T`'s
    /// diagonal blocks the blocks' own factors and its block `(i, j)`, `i < j`, equal to
    /// `Vᵢᴴ Vⱼ` (multiply out `(I − V₁T₁⁻¹V₁ᴴ)(I − V₂T₂⁻¹V₂ᴴ)` to check). faer's factorisation
    /// with a `k`-wide block builds the same matrix recursively, at a higher cost than these
    /// `2·m·k²/2` flops.
    fn merge_blocks(&mut self) {
        let (m, k, bs) = (self.nrows(), self.k(), self.t.nrows);
        if k == 0 || bs == k {
            return;
        }
        let mut t = ColMat::<T>::zeros(k, k);
        let v = self.f.as_ref().subcols(0, k);
        let mut j0 = 0;
        while j0 < k {
            let j1 = (j0 + bs).min(k);
            let b = j1 - j0;
            t.as_mut()
                .submatrix_mut(j0, j0, b, b)
                .copy_from(self.t.as_ref().submatrix(0, j0, b, b));
            if j0 > 0 {
                // T[..j0, j0..j1] = V[j0.., ..j0]ᴴ · V[j0.., j0..j1], V's block unit lower
                // triangular on its top b rows.
                let mut dst = t.as_mut().submatrix_mut(0, j0, j0, b);
                triangular::matmul_with_conj(
                    dst.rb_mut(),
                    BlockStructure::Rectangular,
                    Accum::Replace,
                    v.submatrix(j0, 0, b, j0).transpose(),
                    BlockStructure::Rectangular,
                    Conj::Yes,
                    v.submatrix(j0, j0, b, b),
                    BlockStructure::UnitTriangularLower,
                    Conj::No,
                    one(),
                    SEQ,
                );
                if m > j1 {
                    matmul_with_conj(
                        dst,
                        Accum::Add,
                        v.submatrix(j1, 0, m - j1, j0).transpose(),
                        Conj::Yes,
                        v.submatrix(j1, j0, m - j1, b),
                        Conj::No,
                        one(),
                        SEQ,
                    );
                }
            }
            j0 = j1;
        }
        self.t = t;
    }

    /// Rows of the factorised matrix.
    pub fn nrows(&self) -> usize {
        self.f.nrows
    }

    /// Columns of the factorised matrix.
    pub fn ncols(&self) -> usize {
        self.f.ncols
    }

    /// `min(rows, columns)`: the number of reflectors, rows of R and columns of the thin Q.
    pub fn k(&self) -> usize {
        self.f.nrows.min(self.f.ncols)
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.f.nbytes() + self.t.nbytes()
    }

    /// R: `k × n`, upper triangular (zeros below the diagonal).
    pub fn r(&self) -> ColMat<T> {
        let (k, n) = (self.k(), self.ncols());
        ColMat::from_fn(k, n, |i, j| if i <= j { self.f.at(i, j) } else { zero() })
    }

    fn basis(&self) -> MatRef<'_, T> {
        self.f.as_ref().subcols(0, self.k())
    }

    /// `c ← Q · c` (`adjoint == false`) or `c ← Qᴴ · c`, for `c` with as many rows as the
    /// factorised matrix.
    pub fn apply(&self, c: MatMut<'_, T>, adjoint: bool) {
        let k = self.k();
        if k == 0 || c.ncols() == 0 {
            return;
        }
        let req = householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(
            self.nrows(),
            self.t.nrows,
            c.ncols(),
        );
        let mut buf = MemBuffer::new(req);
        let stack = MemStack::new(&mut buf);
        if adjoint {
            householder::apply_block_householder_sequence_transpose_on_the_left_in_place_with_conj(
                self.basis(),
                self.t.as_ref(),
                Conj::Yes,
                c,
                SEQ,
                stack,
            );
        } else {
            householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                self.basis(),
                self.t.as_ref(),
                Conj::No,
                c,
                SEQ,
                stack,
            );
        }
    }

    /// `Q · [x; 0]` for `x` of `k` rows: the thin Q times `x` (`m × p`).
    ///
    /// With a single reflector block (`Q = I − V T⁻¹ Vᴴ`), the zeros are never touched:
    /// `Vᴴ [x; 0] = V₁ᴴ x` (a `k × k` triangular product), so the cost is one `m × k × p`
    /// product instead of two.
    pub fn apply_top(&self, x: MatRef<'_, T>) -> ColMat<T> {
        let mut out = ColMat::zeros(self.nrows(), x.ncols());
        self.apply_top_into(x, out.as_mut());
        out
    }

    /// [`apply_top`](Self::apply_top) as a row-major (C order) ndarray block: what the
    /// rest of blockarray reads fastest (its reductions and sinks walk C order).
    pub fn apply_top_block(&self, x: MatRef<'_, T>) -> ArrayD<T> {
        let (m, p) = (self.nrows(), x.ncols());
        let mut data = vec![zero::<T>(); m * p];
        self.apply_top_into(x, MatMut::from_row_major_slice_mut(&mut data, m, p));
        ArrayD::from_shape_vec(IxDyn(&[m, p]), data).expect("the buffer holds m × p elements")
    }

    /// [`apply_top`](Self::apply_top) into `out` (`m × p`, any layout, overwritten).
    pub fn apply_top_into(&self, x: MatRef<'_, T>, mut out: MatMut<'_, T>) {
        let (m, k, p) = (self.nrows(), self.k(), x.ncols());
        assert_eq!(x.nrows(), k, "apply_top: x must have k rows");
        assert_eq!(
            (out.nrows(), out.ncols()),
            (m, p),
            "apply_top: out must be m × p"
        );
        if p == 0 {
            return;
        }
        if k == 0 {
            out.fill(zero());
            return;
        }
        if self.t.nrows != k {
            out.fill(zero());
            out.rb_mut().subrows_mut(0, k).copy_from(x);
            self.apply(out, false);
            return;
        }
        let v = self.basis();
        let (v_top, v_bot) = v.split_at_row(k);
        // tmp = T⁻¹ · V₁ᴴ · x
        let mut tmp = ColMat::zeros(k, p);
        triangular::matmul_with_conj(
            tmp.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            v_top.transpose(),
            BlockStructure::UnitTriangularUpper,
            Conj::Yes,
            x,
            BlockStructure::Rectangular,
            Conj::No,
            one(),
            SEQ,
        );
        triangular_solve::solve_upper_triangular_in_place_with_conj(
            self.t.as_ref(),
            Conj::No,
            tmp.as_mut(),
            SEQ,
        );
        let (mut top, bot) = out.split_at_row_mut(k);
        top.copy_from(x);
        triangular::matmul_with_conj(
            top,
            BlockStructure::Rectangular,
            Accum::Add,
            v_top,
            BlockStructure::UnitTriangularLower,
            Conj::No,
            tmp.as_ref(),
            BlockStructure::Rectangular,
            Conj::No,
            -one::<T>(),
            SEQ,
        );
        if m > k {
            matmul_with_conj(
                bot,
                Accum::Replace,
                v_bot,
                Conj::No,
                tmp.as_ref(),
                Conj::No,
                -one::<T>(),
                SEQ,
            );
        }
    }

    /// The thin Q (`m × k`).
    pub fn q(&self) -> ColMat<T> {
        let k = self.k();
        self.apply_top(ColMat::identity(k, k).as_ref())
    }
}

/// The Cholesky factor `L` (lower triangular, zeros above, a real diagonal) of a Hermitian
/// positive definite matrix, of which only the lower triangle is read, and of its diagonal
/// only the real parts (as LAPACK's `potrf`: faer divides the diagonal entry by its root
/// too, so an imaginary part there, or one rounding left by a blocked update, would stay in
/// `L`). `Err(i)` when the leading minor of order `i + 1` is not positive definite.
pub fn cholesky<T: Scalar>(a: MatRef<'_, T>) -> Result<ColMat<T>, usize> {
    use faer::linalg::cholesky::llt::factor as llt;
    let n = a.nrows();
    let mut l = ColMat::copy_of(a);
    for i in 0..n {
        *l.at_mut(i, i) = T::from_re(l.at(i, i).re());
    }
    if n > 0 {
        let req = llt::cholesky_in_place_scratch::<T>(n, SEQ, Default::default());
        let mut buf = MemBuffer::new(req);
        llt::cholesky_in_place(
            l.as_mut(),
            Default::default(),
            SEQ,
            MemStack::new(&mut buf),
            Default::default(),
        )
        .map_err(
            |faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }| index,
        )?;
    }
    for j in 1..n {
        for i in 0..j {
            *l.at_mut(i, j) = zero();
        }
    }
    Ok(l)
}

/// Which triangle of a matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tri {
    /// On and below the diagonal.
    Lower,
    /// On and above the diagonal.
    Upper,
}

/// `b ← op(t)⁻¹ · b` for a triangular `t` (`op` = identity, or the conjugate transpose when
/// `adjoint`), with a unit diagonal when `unit`.
pub fn solve_triangular_in_place<T: Scalar>(
    t: MatRef<'_, T>,
    tri: Tri,
    adjoint: bool,
    unit: bool,
    b: MatMut<'_, T>,
) {
    if t.nrows() == 0 || b.ncols() == 0 {
        return;
    }
    // op(t) is lower triangular when (tri, adjoint) is (Lower, false) or (Upper, true).
    let (t, conj) = if adjoint {
        (t.transpose(), Conj::Yes)
    } else {
        (t, Conj::No)
    };
    let lower = (tri == Tri::Lower) != adjoint;
    match (lower, unit) {
        (true, false) => {
            triangular_solve::solve_lower_triangular_in_place_with_conj(t, conj, b, SEQ)
        }
        (true, true) => {
            triangular_solve::solve_unit_lower_triangular_in_place_with_conj(t, conj, b, SEQ)
        }
        (false, false) => {
            triangular_solve::solve_upper_triangular_in_place_with_conj(t, conj, b, SEQ)
        }
        (false, true) => {
            triangular_solve::solve_unit_upper_triangular_in_place_with_conj(t, conj, b, SEQ)
        }
    }
}

/// `b ← b · op(t)⁻¹` (a solve from the right), with `op` as in [`solve_triangular_in_place`].
pub fn solve_triangular_right_in_place<T: Scalar>(
    t: MatRef<'_, T>,
    tri: Tri,
    adjoint: bool,
    unit: bool,
    b: MatMut<'_, T>,
) {
    // x · op(t) = b  ⇔  op(t)ᵀ · xᵀ = bᵀ; transposing op(t) flips the triangle, and the
    // transpose of the conjugate transpose is the conjugate.
    if t.nrows() == 0 || b.nrows() == 0 {
        return;
    }
    let bt = b.transpose_mut();
    let tt = t.transpose();
    let tri_t = match tri {
        Tri::Lower => Tri::Upper,
        Tri::Upper => Tri::Lower,
    };
    if adjoint {
        // op(t)ᵀ = conj(t): triangle of t, conjugated.
        let lower = tri == Tri::Lower;
        match (lower, unit) {
            (true, false) => {
                triangular_solve::solve_lower_triangular_in_place_with_conj(t, Conj::Yes, bt, SEQ)
            }
            (true, true) => triangular_solve::solve_unit_lower_triangular_in_place_with_conj(
                t,
                Conj::Yes,
                bt,
                SEQ,
            ),
            (false, false) => {
                triangular_solve::solve_upper_triangular_in_place_with_conj(t, Conj::Yes, bt, SEQ)
            }
            (false, true) => triangular_solve::solve_unit_upper_triangular_in_place_with_conj(
                t,
                Conj::Yes,
                bt,
                SEQ,
            ),
        }
    } else {
        solve_triangular_in_place(tt, tri_t, false, unit, bt);
    }
}

/// LU factorisation with partial pivoting of an `m × n` matrix: `(lu, perm)` where `lu` holds
/// the unit lower triangular `L` below the diagonal and `U` on and above it, and row `i` of
/// `L · U` is row `perm[i]` of the input.
///
/// faer's blocked kernel divides by a zero pivot (an exactly singular column) and fills the
/// rest with NaN; LAPACK leaves such a column of `L` at zero and carries on. When faer's result
/// is not finite although the input is, the factorisation is redone by the unblocked
/// algorithm with LAPACK's convention (same pivots: largest `|re| + |im|`, first of equals).
pub fn lu<T: Scalar>(a: MatRef<'_, T>) -> (ColMat<T>, Vec<usize>) {
    use faer::linalg::lu::partial_pivoting::factor as plu;
    let (m, n) = (a.nrows(), a.ncols());
    let mut f = ColMat::copy_of(a);
    if m == 0 || n == 0 {
        return (f, (0..m).collect());
    }
    let mut perm = vec![0usize; m];
    let mut perm_inv = vec![0usize; m];
    let req = plu::lu_in_place_scratch::<usize, T>(m, n, SEQ, Default::default());
    let mut buf = MemBuffer::new(req);
    let (_, p) = plu::lu_in_place(
        f.as_mut(),
        &mut perm,
        &mut perm_inv,
        SEQ,
        MemStack::new(&mut buf),
        Default::default(),
    );
    let perm = p.arrays().0.to_vec();
    let finite = |x: &T| x.modulus().is_finite();
    if f.data.iter().all(finite) || !a_is_finite(a) {
        return (f, perm);
    }
    lu_unblocked(a)
}

fn a_is_finite<T: Scalar>(a: MatRef<'_, T>) -> bool {
    (0..a.ncols()).all(|j| (0..a.nrows()).all(|i| a[(i, j)].modulus().is_finite()))
}

fn abs1<T: Scalar>(x: T) -> RealOf<T> {
    let re = x.re();
    let im = (x - T::from_re(re)).modulus();
    re.abs() + im
}

/// Right-looking unblocked LU with partial pivoting and LAPACK's zero-pivot convention.
fn lu_unblocked<T: Scalar>(a: MatRef<'_, T>) -> (ColMat<T>, Vec<usize>) {
    let (m, n) = (a.nrows(), a.ncols());
    let mut f = ColMat::copy_of(a);
    let mut perm: Vec<usize> = (0..m).collect();
    for j in 0..m.min(n) {
        let mut piv = j;
        let mut best = abs1(f.at(j, j));
        for i in j + 1..m {
            let v = abs1(f.at(i, j));
            if v > best {
                best = v;
                piv = i;
            }
        }
        if piv != j {
            perm.swap(j, piv);
            for c in 0..n {
                let t = f.at(j, c);
                *f.at_mut(j, c) = f.at(piv, c);
                *f.at_mut(piv, c) = t;
            }
        }
        let d = f.at(j, j);
        if d == zero() {
            continue;
        }
        for i in j + 1..m {
            let l = f.at(i, j) / d;
            *f.at_mut(i, j) = l;
            for c in j + 1..n {
                let v = f.at(i, c) - l * f.at(j, c);
                *f.at_mut(i, c) = v;
            }
        }
    }
    (f, perm)
}

/// The factors of a thin SVD: `U`, the singular values, `Vᴴ`.
pub type SvdParts<T> = (ColMat<T>, Vec<RealOf<T>>, ColMat<T>);

/// The thin SVD `a = U · diag(s) · Vᴴ`: `(U (m × k), s (k, descending), Vᴴ (k × n))`, `k =
/// min(m, n)`.
pub fn svd<T: Scalar>(a: MatRef<'_, T>) -> Result<SvdParts<T>, TaskError> {
    use faer::linalg::svd as fsvd;
    let (m, n) = (a.nrows(), a.ncols());
    let k = m.min(n);
    let mut u = ColMat::zeros(m, k);
    let mut v = ColMat::zeros(n, k);
    if k == 0 {
        return Ok((u, Vec::new(), v.adjoint()));
    }
    let mut s = faer::diag::Diag::<T>::zeros(k);
    let req = fsvd::svd_scratch::<T>(
        m,
        n,
        fsvd::ComputeSvdVectors::Thin,
        fsvd::ComputeSvdVectors::Thin,
        SEQ,
        Default::default(),
    );
    let mut buf = MemBuffer::new(req);
    fsvd::svd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        SEQ,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| format!("the SVD did not converge ({e:?})"))?;
    let s: Vec<RealOf<T>> = (0..k).map(|i| s.column_vector()[i].re()).collect();
    Ok((u, s, v.adjoint()))
}

/// The eigendecomposition of a Hermitian matrix (lower triangle read): eigenvalues ascending
/// and the eigenvectors as columns.
pub fn eigh<T: Scalar>(a: MatRef<'_, T>) -> Result<(Vec<RealOf<T>>, ColMat<T>), TaskError> {
    use faer::linalg::evd;
    let n = a.nrows();
    let mut u = ColMat::zeros(n, n);
    if n == 0 {
        return Ok((Vec::new(), u));
    }
    // faer reads the lower triangle; make the matrix exactly Hermitian from it (a real
    // diagonal: LAPACK's and NumPy's eigh ignore its imaginary parts).
    let h = ColMat::from_fn(n, n, |i, j| {
        if i == j {
            T::from_re(a[(i, i)].re())
        } else if i > j {
            a[(i, j)]
        } else {
            a[(j, i)].conjugate()
        }
    });
    let mut s = faer::diag::Diag::<T>::zeros(n);
    let req = evd::self_adjoint_evd_scratch::<T>(
        n,
        evd::ComputeEigenvectors::Yes,
        SEQ,
        Default::default(),
    );
    let mut buf = MemBuffer::new(req);
    evd::self_adjoint_evd(
        h.as_ref(),
        s.as_mut(),
        Some(u.as_mut()),
        SEQ,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|e| format!("the eigendecomposition did not converge ({e:?})"))?;
    let w: Vec<RealOf<T>> = (0..n).map(|i| s.column_vector()[i].re()).collect();
    Ok((w, u))
}

/// Make an SVD's signs (phases, for complex) canonical: the largest entry (in modulus, the
/// first of equals) of each row of `vh` becomes real and positive, and the matching column of
/// `u` takes the opposite phase, so `u · diag(s) · vh` is unchanged. The factors are then the
/// same whatever the algorithm's path (chunking, scheduler) produced them.
pub fn coerce_signs<T: Scalar>(u: &mut ColMat<T>, vh: &mut ColMat<T>) {
    for i in 0..vh.nrows() {
        let mut best: Option<(usize, RealOf<T>)> = None;
        for j in 0..vh.ncols() {
            let m = vh.at(i, j).modulus();
            if best.is_none_or(|(_, b)| m > b) {
                best = Some((j, m));
            }
        }
        let Some((j, m)) = best else { continue };
        if m == <RealOf<T> as num_traits::Zero>::zero() {
            continue;
        }
        let phase = vh.at(i, j) / T::from_re(m);
        if phase == one() {
            continue;
        }
        let conj = phase.conjugate();
        for c in 0..vh.ncols() {
            *vh.at_mut(i, c) = vh.at(i, c) * conj;
        }
        if i < u.ncols() {
            for r in 0..u.nrows() {
                *u.at_mut(r, i) = u.at(r, i) * phase;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex;

    fn sample(m: usize, n: usize, seed: u64) -> ColMat<Complex<f64>> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        ColMat::from_fn(m, n, |_, _| Complex::new(next(), next()))
    }

    fn max_diff(a: &ColMat<Complex<f64>>, b: &ColMat<Complex<f64>>) -> f64 {
        assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
        (0..a.ncols())
            .flat_map(|j| (0..a.nrows()).map(move |i| (i, j)))
            .map(|(i, j)| (a.at(i, j) - b.at(i, j)).norm())
            .fold(0.0, f64::max)
    }

    #[test]
    fn merged_factor_applies_like_faers_blocks() {
        for (m, n) in [(300, 70), (90, 90), (40, 100), (1, 5), (64, 64), (200, 33)] {
            let a = sample(m, n, (m * 1000 + n) as u64);
            let blocks = House::new(a.clone(), false);
            let merged = House::new(a, true);
            let k = m.min(n);
            assert_eq!(merged.t.nrows, k);
            let x = sample(k, 7, 3);
            let d = max_diff(&blocks.apply_top(x.as_ref()), &merged.apply_top(x.as_ref()));
            assert!(d < 1e-12, "{m} × {n}: {d}");
            // The C-order output holds the same values.
            let c = merged.apply_top_block(x.as_ref());
            let q = merged.apply_top(x.as_ref());
            assert!((0..m).all(|i| (0..7).all(|j| (c[[i, j]] - q.at(i, j)).norm() < 1e-15)));
        }
    }

    #[test]
    fn strip_transpose_copies_every_element() {
        for (m, n) in [(0, 3), (1, 1), (63, 2), (64, 5), (130, 7), (200, 1)] {
            let data: Vec<f64> = (0..m * n).map(|x| x as f64).collect();
            let c = ColMat::from_row_major(&data, m, n);
            assert!((0..m).all(|i| (0..n).all(|j| c.at(i, j) == (i * n + j) as f64)));
        }
    }

    #[test]
    fn merged_factor_with_rank_deficiency() {
        // Columns 1 and 3 are zero: faer skips them (infinite T entries).
        let mut a = sample(50, 6, 9);
        for i in 0..50 {
            *a.at_mut(i, 1) = Complex::new(0.0, 0.0);
            *a.at_mut(i, 3) = Complex::new(0.0, 0.0);
        }
        let h = House::new(a.clone(), true);
        let q = h.q();
        let qr = product(q.as_ref(), h.r().as_ref());
        assert!(max_diff(&qr, &a) < 1e-13);
        let qhq = adjoint_product(q.as_ref(), q.as_ref());
        assert!(max_diff(&qhq, &ColMat::identity(6, 6)) < 1e-13);
    }
}
