//! Point-wise and orthogonal indexing with several integer arrays (dask's `x.vindex[...]`
//! and NumPy's outer indexing), and what is built on them: `diagonal`, `trace`, `diag`.
//!
//! # Design notes
//!
//! Point-wise indexing selects points — one coordinate on each of several axes — and lays
//! them along one new axis. The points axis is cut into blocks of consecutive points; an
//! output block reads only the distinct input blocks its points fall in (a diagonal's block
//! reads one or two blocks per other-axes block), so the cost is proportional to the blocks
//! touched, never to the array. The plan (which block and offset each point reads) is made
//! once when the expression is built and shared by the tasks. Orthogonal indexing is one
//! `take` per axis.
//!
//! A diagonal is planned per block instead of per point: it is cut where it crosses a block
//! boundary of either axis, and each piece reads the one block it lies in. Its plan has at
//! most as many pieces as the two axes have blocks together, whatever its length (a list of
//! its points would be as long as the diagonal: gigabytes for a long one).

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::{BlockArray, Chunks, Element, Error, Numeric, OpName, Result, where_};
use dag_core::{BlockIndex, Value};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::sync::Arc;

/// Points of the points axis read from one input block: (local coordinates on the indexed
/// axes, output position in the block).
type Group = (Vec<usize>, Vec<(Vec<usize>, usize)>);

/// Output axis 0 is the points; then the input's other axes in order.
struct PointsNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    /// The indexed input axes.
    axes: Vec<usize>,
    /// Per points block: per input block touched (its indices on the indexed axes), the points
    /// it gives.
    plan: Arc<Vec<Vec<Group>>>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Node for PointsNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nd_in = self.input.meta().chunks.ndim();
        let others: Vec<usize> = (0..nd_in).filter(|a| !self.axes.contains(a)).collect();
        let groups = self.plan.get(index[0]).cloned().unwrap_or_default();
        let deps = groups
            .iter()
            .map(|(blk, _)| {
                let mut b = BlockIndex::from_elem(0, nd_in);
                for (k, &a) in self.axes.iter().enumerate() {
                    b[a] = blk[k];
                }
                for (k, &a) in others.iter().enumerate() {
                    b[a] = index[k + 1];
                }
                (0, b)
            })
            .collect();
        let shape = self.meta.chunks.block_shape(index);
        let axes = self.axes.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let mut out = ArrayD::from_elem(IxDyn(&shape), T::default());
                for (value, (_, points)) in v.iter().zip(&groups) {
                    let b = block_ref::<T>(value)?;
                    for (local, at) in points {
                        let info: Vec<SliceInfoElem> = (0..b.ndim())
                            .map(|a| match axes.iter().position(|&x| x == a) {
                                Some(k) => SliceInfoElem::Index(local[k] as isize),
                                None => SliceInfoElem::from(..),
                            })
                            .collect();
                        out.index_axis_mut(ndarray::Axis(0), *at)
                            .assign(&b.slice(info.as_slice()));
                    }
                }
                Ok(block_value(out))
            }),
        }
    }
}

/// The points `coords[p]` (one in-bounds coordinate per axis of `axes`) of `x`, laid along a
/// new first axis; the other axes follow in order.
pub(crate) fn points<T: Element>(
    x: &BlockArray<T>,
    axes: &[usize],
    coords: &[Vec<usize>],
) -> Result<BlockArray<T>> {
    let chunks = x.chunks();
    let npts = coords.len();
    // Points per block: about the block length along the first indexed axis.
    let per = axes
        .first()
        .map_or(1, |&a| chunks.axis(a).iter().copied().max().unwrap_or(1))
        .max(1);
    let mut plan: Vec<Vec<Group>> = Vec::new();
    let mut point_chunks = Vec::new();
    for start in (0..npts).step_by(per) {
        let end = (start + per).min(npts);
        point_chunks.push(end - start);
        let mut groups: Vec<Group> = Vec::new();
        for (at, c) in coords[start..end].iter().enumerate() {
            let mut blk = Vec::with_capacity(axes.len());
            let mut local = Vec::with_capacity(axes.len());
            for (k, &a) in axes.iter().enumerate() {
                let (b, off) = chunks.block_of(a, c[k])?;
                blk.push(b);
                local.push(off);
            }
            match groups.iter_mut().find(|(g, _)| *g == blk) {
                Some((_, pts)) => pts.push((local, at)),
                None => groups.push((blk, vec![(local, at)])),
            }
        }
        plan.push(groups);
    }
    if point_chunks.is_empty() {
        point_chunks.push(0);
    }
    let mut out_axes = vec![point_chunks];
    out_axes.extend(
        (0..x.ndim())
            .filter(|a| !axes.contains(a))
            .map(|a| chunks.axis(a).to_vec()),
    );
    let mut t = token_of(&[&x.node]);
    t.write(axes);
    for c in coords {
        t.write(c.as_slice());
    }
    let meta = Meta::new::<T>("vindex", t, Chunks::from_blocks(out_axes)?);
    Ok(BlockArray::wrap(Arc::new(PointsNode::<T> {
        meta,
        input: x.node.clone(),
        axes: axes.to_vec(),
        plan: Arc::new(plan),
        _type: std::marker::PhantomData,
    })))
}

/// One piece of a diagonal: the blocks along the two axes it lies in, where it starts in
/// them, and its length.
#[derive(Clone, Copy)]
struct Piece {
    blocks: (usize, usize),
    start: (usize, usize),
    len: usize,
}

/// A diagonal of the planes of two axes: the other axes in order, then the diagonal, cut into
/// [`Piece`]s.
struct DiagonalNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    axes: (usize, usize),
    pieces: Arc<Vec<Piece>>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Node for DiagonalNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nd_in = self.input.meta().chunks.ndim();
        let (a1, a2) = self.axes;
        let shape = self.meta.chunks.block_shape(index);
        let Some(&piece) = self.pieces.get(index[index.len() - 1]) else {
            // An empty diagonal: one empty block, read from nothing.
            return BlockTask {
                deps: vec![],
                func: Arc::new(move |_: &[Value]| {
                    Ok(block_value(ArrayD::from_elem(IxDyn(&shape), T::default())))
                }),
            };
        };
        let mut b = BlockIndex::from_elem(0, nd_in);
        let mut others = index.iter();
        for (a, slot) in b.iter_mut().enumerate() {
            *slot = if a == a1 {
                piece.blocks.0
            } else if a == a2 {
                piece.blocks.1
            } else {
                *others.next().expect("one output index per other axis")
            };
        }
        // The higher axis is indexed first, so the lower keeps its number.
        let ((lo, lo_start), (hi, hi_start)) = if a1 < a2 {
            ((a1, piece.start.0), (a2, piece.start.1))
        } else {
            ((a2, piece.start.1), (a1, piece.start.0))
        };
        BlockTask {
            deps: vec![(0, b)],
            func: Arc::new(move |v: &[Value]| {
                let block = block_ref::<T>(&v[0])?;
                let mut out = ArrayD::from_elem(IxDyn(&shape), T::default());
                let last = ndarray::Axis(shape.len() - 1);
                for k in 0..piece.len {
                    let plane = block.index_axis(ndarray::Axis(hi), hi_start + k);
                    out.index_axis_mut(last, k)
                        .assign(&plane.index_axis(ndarray::Axis(lo), lo_start + k));
                }
                Ok(block_value(out))
            }),
        }
    }
}

/// `x.diagonal(offset, axis1, axis2)` as a [`DiagonalNode`] (axes checked and distinct).
fn diagonal_node<T: Element>(
    x: &BlockArray<T>,
    offset: isize,
    axis1: usize,
    axis2: usize,
) -> Result<BlockArray<T>> {
    let chunks = x.chunks();
    let (n1, n2) = (x.shape()[axis1], x.shape()[axis2]);
    let (r0, c0) = (offset.min(0).unsigned_abs(), offset.max(0).unsigned_abs());
    let len = n1.saturating_sub(r0).min(n2.saturating_sub(c0));
    let (o1, o2) = (chunks.offsets(axis1), chunks.offsets(axis2));
    let mut pieces = Vec::new();
    let mut done = 0;
    while done < len {
        let (row, col) = (r0 + done, c0 + done);
        let (b1, s1) = chunks.block_of(axis1, row)?;
        let (b2, s2) = chunks.block_of(axis2, col)?;
        let n = (len - done).min(o1[b1 + 1] - row).min(o2[b2 + 1] - col);
        pieces.push(Piece {
            blocks: (b1, b2),
            start: (s1, s2),
            len: n,
        });
        done += n;
    }
    let mut out_axes: Vec<Vec<usize>> = (0..x.ndim())
        .filter(|&a| a != axis1 && a != axis2)
        .map(|a| chunks.axis(a).to_vec())
        .collect();
    let lens: Vec<usize> = pieces.iter().map(|p| p.len).collect();
    out_axes.push(if lens.is_empty() { vec![0] } else { lens });
    let mut t = token_of(&[&x.node]);
    t.write_usize(axis1)
        .write_usize(axis2)
        .write_u64(offset as i64 as u64);
    let meta = Meta::new::<T>("diagonal", t, Chunks::from_blocks(out_axes)?);
    Ok(BlockArray::wrap(Arc::new(DiagonalNode::<T> {
        meta,
        input: x.node.clone(),
        axes: (axis1, axis2),
        pieces: Arc::new(pieces),
        _type: std::marker::PhantomData,
    })))
}

impl<T: Element> BlockArray<T> {
    /// Point-wise indexing (dask's `x.vindex[i0, i1, …]`, NumPy's `x[i0, i1, …]` with integer
    /// arrays): `indices[k]` indexes axis `k`; the lists have one common length (a list of one
    /// index is repeated) and select the points `(i0[p], i1[p], …)`, laid along the first
    /// axis of the result, followed by the axes not indexed. Negative indices count from the
    /// end.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
    /// let v = x.vindex(&[&[0, 2, -1], &[1, 3, 0]])?;
    /// assert_eq!(v.compute()?.into_raw_vec_and_offset().0, vec![1, 11, 8]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn vindex(&self, indices: &[&[isize]]) -> Result<BlockArray<T>> {
        self.chunks().require_known("vindex")?;
        if indices.is_empty() {
            return Err(Error::index("vindex needs at least one index list"));
        }
        if indices.len() > self.ndim() {
            return Err(Error::index(format!(
                "vindex: {} index lists for an array of shape {:?}",
                indices.len(),
                self.shape()
            )));
        }
        // NumPy's broadcasting of the lists: every length other than 1 must be the same (0
        // included: `[[], [1, 2]]` does not broadcast).
        let mut n = None;
        for i in indices {
            match n {
                _ if i.len() == 1 => {}
                None => n = Some(i.len()),
                Some(m) if m == i.len() => {}
                Some(_) => {
                    let lens: Vec<usize> = indices.iter().map(|i| i.len()).collect();
                    return Err(Error::shape(format!(
                        "vindex: index lists of lengths {lens:?} do not broadcast (give equal \
                         lengths or 1)"
                    )));
                }
            }
        }
        let n = n.unwrap_or(1);
        let coords = (0..n)
            .map(|p| {
                indices
                    .iter()
                    .enumerate()
                    .map(|(k, i)| {
                        let v = i[if i.len() == 1 { 0 } else { p }];
                        crate::normalize_index(self.shape()[k], v)
                            .map_err(|e| e.context(format!("vindex along axis {k}")))
                    })
                    .collect::<Result<Vec<usize>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let axes: Vec<usize> = (0..indices.len()).collect();
        points(self, &axes, &coords)
    }

    /// Orthogonal (outer) indexing: `indices[k]` selects positions of axis `k`
    /// independently (`x[np.ix_(i0, i1, …)]`, dask's `x.oindex`/`x[i0][:, i1]`); axes not
    /// listed are kept whole. One `take` per axis.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
    /// let o = x.oindex(&[&[2, 0], &[1, -1]])?;
    /// assert_eq!(o.compute()?, ndarray::array![[9, 11], [1, 3]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn oindex(&self, indices: &[&[isize]]) -> Result<BlockArray<T>> {
        if indices.len() > self.ndim() {
            return Err(Error::index(format!(
                "oindex: {} index lists for an array of shape {:?}",
                indices.len(),
                self.shape()
            )));
        }
        let mut out = self.clone();
        for (k, i) in indices.iter().enumerate() {
            out = out.take(i, k)?;
        }
        Ok(out)
    }

    /// The diagonal `offset` (> 0 above the main one) of the planes of `axis1` and `axis2`
    /// (`numpy.diagonal`): those two axes are removed and the diagonal becomes the last axis.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
    /// assert_eq!(x.diagonal(1, 0, 1)?.compute()?.into_raw_vec_and_offset().0, vec![1, 6, 11]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn diagonal(&self, offset: isize, axis1: usize, axis2: usize) -> Result<BlockArray<T>> {
        self.chunks().require_known("diagonal")?;
        self.check_axis(axis1).map_err(|e| e.context("diagonal"))?;
        self.check_axis(axis2).map_err(|e| e.context("diagonal"))?;
        if axis1 == axis2 {
            return Err(Error::axis(format!(
                "diagonal: axis1 and axis2 are both {axis1}"
            )));
        }
        diagonal_node(self, offset, axis1, axis2)
    }

    /// For a 1-d array, the square matrix with it on diagonal `k` and zeros elsewhere; for a
    /// 2-d array, its diagonal `k` (`numpy.diag`).
    ///
    /// ```
    /// let v = blockarray::BlockArray::arange(1i64, 3, 1, 1)?;
    /// assert_eq!(v.diag(1)?.compute()?, ndarray::array![[0, 1, 0], [0, 0, 2], [0, 0, 0]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn diag(&self, k: isize) -> Result<BlockArray<T>> {
        self.chunks().require_known("diag")?;
        match self.ndim() {
            2 => self.diagonal(k, 0, 1),
            1 => {
                // Column j of the result holds v[j - k] (k ≥ 0) or v[j] (k < 0): the vector
                // padded to the side, broadcast down the rows, kept on the diagonal only.
                let w = k.unsigned_abs();
                let side = if k >= 0 { (w, 0) } else { (0, w) };
                let row = self.pad(&[side], crate::PadMode::Constant(T::default()))?;
                let n = row.shape()[0];
                let c = row.chunks().axis(0).to_vec();
                let on = BlockArray::<bool>::from_fn(
                    &[n, n],
                    crate::ChunkSpec::Explicit(vec![c.clone(), c]),
                    OpName::pure("diag-mask", &(k as i64)),
                    move |i: &[usize]| i[1] as isize - i[0] as isize == k,
                )?;
                where_(&on, &row.insert_axis(0)?, T::default())
            }
            _ => Err(Error::shape(format!(
                "diag needs a 1-d or 2-d array, got shape {:?}",
                self.shape()
            ))),
        }
    }
}

impl<T: Numeric> BlockArray<T> {
    /// The sum along diagonal `offset` of the planes of `axis1` and `axis2`
    /// (`numpy.trace`; integers summed in 64 bits, as NumPy's).
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 9, 1, 2)?.reshape(&[3, 3])?;
    /// assert_eq!(x.trace(0, 0, 1)?.compute()?[[]], 12);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn trace(&self, offset: isize, axis1: usize, axis2: usize) -> Result<BlockArray<T::Acc>> {
        let d = self.diagonal(offset, axis1, axis2)?;
        d.sum(Some(&[d.ndim() - 1]), false)
    }
}
