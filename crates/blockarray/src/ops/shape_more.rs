//! More of NumPy's shape operations and array creation, built from the existing nodes
//! wherever one exists: reshape with an inferred axis, `flatten`, `flip`, `roll`, `tile`,
//! `repeat`, the `split` family, `broadcast_to`/`broadcast_arrays`, `atleast_nd`,
//! `expand_dims`, `meshgrid`, `indices`, `*_like`, `empty`, `tri`/`tril`/`triu`,
//! `logspace`/`geomspace`.
//!
//! # Design notes
//!
//! Only [`broadcast_to`](BlockArray::broadcast_to) needs a node of its own (a block read once
//! and broadcast); everything else is one of the existing lazy nodes: `flip` and `split` are
//! slices (so they push down into sources and elementwise maps), `roll` and `tile` are
//! concatenations of slices, `repeat` is a `take` with repeated indices, `tril`/`triu` are
//! block maps that know where their block sits, `logspace`/`geomspace` are maps over
//! `linspace`. So each result's tasks read only the input blocks its output blocks need.

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::reduce::norm_axes;
use crate::ops::shape::{axes_node, rechunk_direct};
use crate::ops::slicing::slice_node;
use crate::plan::index::NormSlice;
use crate::{BlockArray, ChunkSpec, Chunks, Element, Error, Float, Numeric, OpName, Result};
use crate::{broadcast_shapes, concatenate, stack};
use dag_core::{BlockIndex, Value};
use ndarray::IxDyn;
use std::sync::Arc;

/// `node` restricted to `start..start + len` along `axis` (a lazy slice).
pub(crate) fn range_along(
    node: &Arc<dyn Node>,
    axis: usize,
    start: usize,
    len: usize,
) -> Result<Arc<dyn Node>> {
    let mut slices: Vec<NormSlice> = node
        .meta()
        .shape()
        .iter()
        .map(|&n| NormSlice::full(n))
        .collect();
    slices[axis] = NormSlice {
        start,
        len,
        step: 1,
    };
    slice_node(node, &slices)
}

/// An input broadcast to a larger shape: output axis `k` is input axis `k - off`, or a new
/// axis for `k < off`; input axes of length 1 marked in `stretched` repeat their one element.
struct BroadcastNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    off: usize,
    stretched: Vec<bool>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element> Node for BroadcastNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let src: BlockIndex = self
            .stretched
            .iter()
            .enumerate()
            .map(|(j, &s)| if s { 0 } else { index[j + self.off] })
            .collect();
        let shape = self.meta.chunks.block_shape(index);
        BlockTask {
            deps: vec![(0, src)],
            func: Arc::new(move |v: &[Value]| {
                let b = block_ref::<T>(&v[0])?;
                let out = b
                    .broadcast(IxDyn(&shape))
                    .ok_or("broadcast_to: a block does not broadcast to its output block")?
                    .to_owned();
                Ok(block_value(out))
            }),
        }
    }
    fn push_slice(&self, slices: &[NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        // Slice the input along the axes it keeps (a stretched axis keeps its one element),
        // then broadcast that to the sliced shape: only the selected elements are made.
        Some((|| {
            let inner: Vec<NormSlice> = self
                .stretched
                .iter()
                .enumerate()
                .map(|(j, &st)| {
                    if st {
                        NormSlice::full(1)
                    } else {
                        slices[j + self.off]
                    }
                })
                .collect();
            let input = BlockArray::<T>::wrap(slice_node(&self.input, &inner)?);
            let (chunks, _) = crate::ops::slicing::plan_slices(&self.meta.chunks, slices)?;
            Ok(broadcast_in(&input, chunks)?.node)
        })())
    }
}

/// `x` broadcast to `chunks.shape()` in exactly `chunks` (the caller checked the shapes).
fn broadcast_in<T: Element>(x: &BlockArray<T>, chunks: Chunks) -> Result<BlockArray<T>> {
    let shape = chunks.shape().to_vec();
    if shape == x.shape() {
        return Ok(BlockArray::wrap(rechunk_direct(&x.node, chunks)?));
    }
    let off = shape.len() - x.ndim();
    let stretched: Vec<bool> = (0..x.ndim())
        .map(|j| x.shape()[j] != shape[j + off])
        .collect();
    // The input in the output's chunks along the axes it keeps, one block along the others.
    let want: Vec<Vec<usize>> = (0..x.ndim())
        .map(|j| {
            if stretched[j] {
                vec![1]
            } else {
                chunks.axis(j + off).to_vec()
            }
        })
        .collect();
    let input = rechunk_direct(&x.node, Chunks::from_blocks(want)?)?;
    let mut t = token_of(&[&input]);
    t.write_str("broadcast").write(shape.as_slice());
    let meta = Meta::new::<T>("broadcast_to", t, chunks);
    Ok(BlockArray::wrap(Arc::new(BroadcastNode::<T> {
        meta,
        input,
        off,
        stretched,
        _type: std::marker::PhantomData,
    })))
}

fn check_broadcast_to(from: &[usize], to: &[usize]) -> Result<()> {
    let off = to.len().checked_sub(from.len());
    let ok = off.is_some_and(|off| {
        from.iter()
            .enumerate()
            .all(|(j, &n)| n == to[j + off] || n == 1)
    });
    if ok {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "cannot broadcast an array of shape {from:?} to shape {to:?}"
        )))
    }
}

/// [`cut`], refused when it would make more than [`MAX_BLOCKS_PER_AXIS`] blocks (`what` names
/// the operation): a length from the user is checked before a list of its blocks is made.
///
/// [`MAX_BLOCKS_PER_AXIS`]: crate::plan::chunks::MAX_BLOCKS_PER_AXIS
pub(crate) fn try_cut(len: usize, step: usize, what: &str) -> Result<Vec<usize>> {
    let blocks = len.div_ceil(step.max(1));
    if blocks > crate::plan::chunks::MAX_BLOCKS_PER_AXIS {
        return Err(Error::chunks(format!(
            "{what}: a length of {len} in blocks of {step} would make {blocks} blocks, more than \
             the {} one axis may have",
            crate::plan::chunks::MAX_BLOCKS_PER_AXIS
        )));
    }
    Ok(cut(len, step))
}

/// `len` cut into blocks of `step` (at least 1), the last one shorter; `[0]` for 0.
pub(crate) fn cut(len: usize, step: usize) -> Vec<usize> {
    let step = step.max(1);
    if len == 0 {
        return vec![0];
    }
    let mut out = vec![step; len / step];
    if !len.is_multiple_of(step) {
        out.push(len % step);
    }
    out
}

fn explicit(c: &Chunks) -> ChunkSpec {
    ChunkSpec::Explicit(c.axes().to_vec())
}

impl<T: Element> BlockArray<T> {
    /// [`reshape`](Self::reshape) where one entry of `shape` may be `-1`, inferred from the
    /// size (`numpy.reshape(x, (-1, 3))`).
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 12, 1, 5)?;
    /// assert_eq!(x.reshape_infer(&[-1, 3])?.shape(), &[4, 3]);
    /// assert!(x.reshape_infer(&[-1, 5]).is_err());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<BlockArray<T>> {
        let unknown: Vec<usize> = (0..shape.len()).filter(|&k| shape[k] == -1).collect();
        if unknown.len() > 1 {
            return Err(Error::shape(format!(
                "reshape to {shape:?}: at most one axis may be -1"
            )));
        }
        if let Some(&bad) = shape.iter().find(|&&n| n < -1) {
            return Err(Error::shape(format!(
                "reshape to {shape:?}: negative length {bad}"
            )));
        }
        let Some(known) = shape
            .iter()
            .filter(|&&n| n >= 0)
            .try_fold(1usize, |acc, &n| acc.checked_mul(n as usize))
        else {
            return Err(Error::shape(format!(
                "reshape to {shape:?}: the size overflows usize"
            )));
        };
        let mut out: Vec<usize> = shape.iter().map(|&n| n.max(0) as usize).collect();
        if let Some(&k) = unknown.first() {
            if known == 0 || !self.len().is_multiple_of(known) {
                return Err(Error::shape(format!(
                    "cannot reshape an array of shape {:?} ({} elements) into shape {shape:?}",
                    self.shape(),
                    self.len()
                )));
            }
            out[k] = self.len() / known;
        }
        self.reshape(&out)
    }

    /// The elements in C order as a 1-d array (`ndarray.flatten`; lazy, the same as
    /// [`ravel`](Self::ravel)).
    pub fn flatten(&self) -> Result<BlockArray<T>> {
        self.ravel()
    }

    /// The order of elements reversed along `axes` (all axes when `None`), `numpy.flip`: a
    /// slice with step -1, so it costs no task of its own where it can be pushed down.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 6, 1, 4)?.reshape(&[2, 3])?;
    /// assert_eq!(x.flip(Some(&[1]))?.compute()?, ndarray::array![[2, 1, 0], [5, 4, 3]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn flip(&self, axes: Option<&[usize]>) -> Result<BlockArray<T>> {
        self.chunks().require_known("flip")?;
        let axes = norm_axes(self.ndim(), axes).map_err(|e| e.context("flip"))?;
        let mut slices: Vec<NormSlice> = self.shape().iter().map(|&n| NormSlice::full(n)).collect();
        for a in axes {
            let n = self.shape()[a];
            if n > 0 {
                slices[a] = NormSlice {
                    start: n - 1,
                    len: n,
                    step: -1,
                };
            }
        }
        Ok(BlockArray::wrap(slice_node(&self.node, &slices)?))
    }

    /// Columns reversed (`numpy.fliplr`, axis 1); the array needs at least 2 axes.
    pub fn fliplr(&self) -> Result<BlockArray<T>> {
        if self.ndim() < 2 {
            return Err(Error::axis(format!(
                "fliplr needs at least 2 axes, got shape {:?}",
                self.shape()
            )));
        }
        self.flip(Some(&[1]))
    }

    /// Rows reversed (`numpy.flipud`, axis 0); the array needs at least 1 axis.
    pub fn flipud(&self) -> Result<BlockArray<T>> {
        if self.ndim() < 1 {
            return Err(Error::axis("flipud needs at least 1 axis, got a 0-d array"));
        }
        self.flip(Some(&[0]))
    }

    /// Elements shifted cyclically by `shifts[i]` along `axes[i]` (`numpy.roll`); with `axes`
    /// `None`, the flattened array is rolled by the single shift and reshaped back. Along an
    /// axis a roll is the concatenation of two slices.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 5, 1, 2)?;
    /// assert_eq!(x.roll(&[2], None)?.compute()?.into_raw_vec_and_offset().0, vec![3, 4, 0, 1, 2]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn roll(&self, shifts: &[isize], axes: Option<&[usize]>) -> Result<BlockArray<T>> {
        self.chunks().require_known("roll")?;
        let Some(axes) = axes else {
            // NumPy rolls the flattened array along its one axis by every shift.
            return self
                .ravel()?
                .roll(shifts, Some(&[0]))?
                .reshape(self.shape());
        };
        if shifts.is_empty() || axes.is_empty() {
            return Err(Error::shape(format!(
                "roll needs at least one shift and one axis, got shifts {shifts:?} and axes \
                 {axes:?}"
            )));
        }
        // Shifts and axes broadcast against each other, as in NumPy.
        let pairs = shifts.len().max(axes.len());
        if (shifts.len() != pairs && shifts.len() != 1) || (axes.len() != pairs && axes.len() != 1)
        {
            return Err(Error::shape(format!(
                "roll: {} shifts {shifts:?} for {} axes {axes:?}",
                shifts.len(),
                axes.len()
            )));
        }
        // Shifts of a repeated axis add up (as in NumPy).
        let mut total = vec![0i128; self.ndim()];
        for i in 0..pairs {
            let a = axes[if axes.len() == 1 { 0 } else { i }];
            self.check_axis(a).map_err(|e| e.context("roll"))?;
            total[a] += shifts[if shifts.len() == 1 { 0 } else { i }] as i128;
        }
        let mut out = self.clone();
        for (a, &s) in total.iter().enumerate() {
            let n = self.shape()[a];
            if n == 0 {
                continue;
            }
            let s = s.rem_euclid(n as i128) as usize;
            if s == 0 {
                continue;
            }
            let tail = BlockArray::<T>::wrap(range_along(&out.node, a, n - s, s)?);
            let head = BlockArray::<T>::wrap(range_along(&out.node, a, 0, n - s)?);
            out = concatenate(&[&tail, &head], a)?;
        }
        Ok(out)
    }

    /// The array repeated `reps[i]` times along axis `i` (`numpy.tile`): shorter `reps` are
    /// padded with leading 1s, a shorter array with leading unit axes. Each axis becomes a
    /// concatenation of copies (no data is copied until computed).
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 3, 1, 2)?;
    /// assert_eq!(x.tile(&[2, 2])?.compute()?, ndarray::array![[0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn tile(&self, reps: &[usize]) -> Result<BlockArray<T>> {
        self.chunks().require_known("tile")?;
        let nd = self.ndim().max(reps.len());
        let mut reps_full = vec![1usize; nd - reps.len()];
        reps_full.extend_from_slice(reps);
        let mut out = self.clone();
        for _ in self.ndim()..nd {
            out = out.insert_axis(0)?;
        }
        for (a, &r) in reps_full.iter().enumerate() {
            match r {
                1 => {}
                0 => out = BlockArray::wrap(range_along(&out.node, a, 0, 0)?),
                r => {
                    let blocks = out.numblocks()[a].saturating_mul(r);
                    if blocks > crate::MAX_BLOCKS_PER_AXIS
                        || out.shape()[a].checked_mul(r).is_none()
                    {
                        return Err(Error::shape(format!(
                            "tile: {r} copies of axis {a} (length {}, {} blocks) are too many",
                            out.shape()[a],
                            out.numblocks()[a]
                        )));
                    }
                    let copies: Vec<&BlockArray<T>> = std::iter::repeat_n(&out, r).collect();
                    out = concatenate(&copies, a)?;
                }
            }
        }
        Ok(out)
    }

    /// Each element repeated (`numpy.repeat`): `repeats` has one count for every element, or
    /// one entry used for all, along `axis` (the flattened array when `None`). One count for
    /// all is a block map (each block repeats its elements; nothing proportional to the
    /// output is built); per-element counts are a `take` with repeated indices.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 3, 1, 2)?;
    /// assert_eq!(x.repeat(&[2], None)?.compute()?.into_raw_vec_and_offset().0, vec![0, 0, 1, 1, 2, 2]);
    /// assert_eq!(x.repeat(&[0, 1, 3], Some(0))?.compute()?.into_raw_vec_and_offset().0, vec![1, 2, 2, 2]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn repeat(&self, repeats: &[usize], axis: Option<usize>) -> Result<BlockArray<T>> {
        self.chunks().require_known("repeat")?;
        let Some(axis) = axis else {
            return self.ravel()?.repeat(repeats, Some(0));
        };
        self.check_axis(axis).map_err(|e| e.context("repeat"))?;
        let n = self.shape()[axis];
        if repeats.len() != 1 && repeats.len() != n {
            return Err(Error::shape(format!(
                "repeat: {} counts for axis {axis} of length {n} (give 1 or {n})",
                repeats.len()
            )));
        }
        if let ([r], true) = (repeats, n > 0) {
            // One count for all: each block repeats its own elements (no index list).
            let r = *r;
            if r == 0 {
                return Ok(BlockArray::wrap(range_along(&self.node, axis, 0, 0)?));
            }
            let mut out = self.chunks().axes().to_vec();
            out[axis] = out[axis]
                .iter()
                .map(|&c| c.checked_mul(r))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Error::shape(format!(
                        "repeat: {r} repeats of axis {axis} (length {n}) overflow usize"
                    ))
                })?;
            let name = OpName::pure("repeat", &(axis, r));
            return crate::ops::blockwise::blockwise_tagged(
                &name,
                "repeat",
                &[self],
                Some(ChunkSpec::Explicit(out)),
                move |b: &[&ndarray::ArrayD<T>], _| {
                    let idx: Vec<usize> = (0..b[0].shape()[axis])
                        .flat_map(|i| std::iter::repeat_n(i, r))
                        .collect();
                    Ok(b[0].select(ndarray::Axis(axis), &idx))
                },
            );
        }
        let count = |i: usize| repeats[if repeats.len() == 1 { 0 } else { i }];
        let total = (0..n)
            .try_fold(0usize, |acc, i| acc.checked_add(count(i)))
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| {
                Error::shape(format!(
                    "repeat: the repeats of axis {axis} (length {n}) add up to more elements \
                     than an index can count"
                ))
            })?;
        let mut idx = crate::error::vec_with_capacity(total, "repeat")?;
        for i in 0..n {
            idx.extend(std::iter::repeat_n(i as isize, count(i)));
        }
        self.take(&idx, axis)
    }

    /// The array cut into `sections` equal parts along `axis` (`numpy.split` with a number);
    /// an error unless `sections` divides the axis length.
    pub fn split(&self, sections: usize, axis: usize) -> Result<Vec<BlockArray<T>>> {
        self.check_axis(axis).map_err(|e| e.context("split"))?;
        let n = self.shape()[axis];
        if sections == 0 || !n.is_multiple_of(sections) {
            return Err(Error::shape(format!(
                "split: axis {axis} of length {n} does not divide into {sections} equal sections \
                 (use array_split)"
            )));
        }
        self.array_split(sections, axis)
    }

    /// The array cut into `sections` parts along `axis` whose lengths differ by at most one,
    /// the longer first (`numpy.array_split`).
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 7, 1, 3)?;
    /// let parts = x.array_split(3, 0)?;
    /// let lens: Vec<usize> = parts.iter().map(|p| p.shape()[0]).collect();
    /// assert_eq!(lens, vec![3, 2, 2]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn array_split(&self, sections: usize, axis: usize) -> Result<Vec<BlockArray<T>>> {
        self.check_axis(axis)
            .map_err(|e| e.context("array_split"))?;
        if sections == 0 || sections > crate::MAX_BLOCKS_PER_AXIS {
            return Err(Error::shape(format!(
                "array_split: the number of sections must be in 1..={}, got {sections}",
                crate::MAX_BLOCKS_PER_AXIS
            )));
        }
        let n = self.shape()[axis];
        let (q, r) = (n / sections, n % sections);
        let mut cuts = Vec::with_capacity(sections);
        let mut at = 0;
        for s in 0..sections - 1 {
            at += q + usize::from(s < r);
            cuts.push(at);
        }
        self.split_at(&cuts, axis)
    }

    /// The array cut before each position of `indices` along `axis` (`numpy.split` with a
    /// list): `x[:i0], x[i0:i1], …, x[ik:]`; positions past the end give empty parts, as in
    /// NumPy.
    pub fn split_at(&self, indices: &[usize], axis: usize) -> Result<Vec<BlockArray<T>>> {
        self.chunks().require_known("split")?;
        self.check_axis(axis).map_err(|e| e.context("split"))?;
        let n = self.shape()[axis];
        let mut bounds = vec![0];
        bounds.extend(indices.iter().map(|&i| i.min(n)));
        bounds.push(n);
        bounds
            .windows(2)
            .map(|w| {
                let len = w[1].saturating_sub(w[0]);
                Ok(BlockArray::wrap(range_along(
                    &self.node,
                    axis,
                    w[0].min(n),
                    len,
                )?))
            })
            .collect()
    }

    /// `numpy.hsplit`: [`array_split`](Self::array_split)-like cut into equal `sections`
    /// along axis 1 (axis 0 for 1-d arrays); an error unless they divide the axis.
    pub fn hsplit(&self, sections: usize) -> Result<Vec<BlockArray<T>>> {
        match self.ndim() {
            0 => Err(Error::axis("hsplit needs at least 1 axis, got a 0-d array")),
            1 => self.split(sections, 0),
            _ => self.split(sections, 1),
        }
    }

    /// `numpy.vsplit`: cut into equal `sections` along axis 0; needs at least 2 axes.
    pub fn vsplit(&self, sections: usize) -> Result<Vec<BlockArray<T>>> {
        if self.ndim() < 2 {
            return Err(Error::axis(format!(
                "vsplit needs at least 2 axes, got shape {:?}",
                self.shape()
            )));
        }
        self.split(sections, 0)
    }

    /// The array broadcast to `shape` (`numpy.broadcast_to`): leading axes may be added and
    /// axes of length 1 stretched. Kept axes keep their chunks; the others are chunked
    /// automatically within what the block budget leaves. Each output block reads one input
    /// block.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 3, 1, 2)?;
    /// let y = x.broadcast_to(&[2, 3])?;
    /// assert_eq!(y.compute()?, ndarray::array![[0, 1, 2], [0, 1, 2]].into_dyn());
    /// assert!(x.broadcast_to(&[4]).is_err());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<BlockArray<T>> {
        self.chunks().require_known("broadcast_to")?;
        check_broadcast_to(self.shape(), shape)?;
        // Kept axes keep their chunks; the others share what is left of the block budget.
        let off = shape.len() - self.ndim();
        let per_axis: Vec<crate::AxisChunks> = (0..shape.len())
            .map(|k| {
                if k >= off && self.shape()[k - off] == shape[k] {
                    crate::AxisChunks::Explicit(self.chunks().axis(k - off).to_vec())
                } else {
                    crate::AxisChunks::Auto
                }
            })
            .collect();
        broadcast_in(
            self,
            Chunks::new(shape, ChunkSpec::PerAxis(per_axis), T::itemsize())?,
        )
    }

    /// [`broadcast_to`](Self::broadcast_to) in explicitly given output chunks.
    pub fn broadcast_to_chunks(
        &self,
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        self.chunks().require_known("broadcast_to")?;
        check_broadcast_to(self.shape(), shape)?;
        broadcast_in(self, Chunks::new(shape, chunks, T::itemsize())?)
    }

    /// At least one axis (`numpy.atleast_1d`): a 0-d array becomes shape `(1,)`.
    pub fn atleast_1d(&self) -> Result<BlockArray<T>> {
        match self.ndim() {
            0 => self.insert_axis(0),
            _ => Ok(self.clone()),
        }
    }

    /// At least two axes (`numpy.atleast_2d`): `()` → `(1, 1)`, `(n,)` → `(1, n)`.
    pub fn atleast_2d(&self) -> Result<BlockArray<T>> {
        match self.ndim() {
            0 | 1 => self.atleast_1d()?.insert_axis(0),
            _ => Ok(self.clone()),
        }
    }

    /// At least three axes (`numpy.atleast_3d`): `()` → `(1, 1, 1)`, `(n,)` → `(1, n, 1)`,
    /// `(m, n)` → `(m, n, 1)`.
    pub fn atleast_3d(&self) -> Result<BlockArray<T>> {
        match self.ndim() {
            0 | 1 => self.atleast_2d()?.insert_axis(2),
            2 => self.insert_axis(2),
            _ => Ok(self.clone()),
        }
    }

    /// New unit axes at positions `axes` of the result (`numpy.expand_dims` with a tuple):
    /// each must be below `ndim + axes.len()`, none repeated.
    pub fn expand_dims(&self, axes: &[usize]) -> Result<BlockArray<T>> {
        let nd = self.ndim() + axes.len();
        for (i, &a) in axes.iter().enumerate() {
            if a >= nd {
                return Err(Error::axis_out_of_bounds(a, nd).context("expand_dims"));
            }
            if axes[..i].contains(&a) {
                return Err(Error::axis(format!(
                    "expand_dims: axis {a} is repeated in {axes:?}"
                )));
            }
        }
        let mut next = 0;
        let from = (0..nd)
            .map(|k| {
                if axes.contains(&k) {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect();
        Ok(BlockArray::wrap(axes_node(&self.node, from)?))
    }

    /// Two axes exchanged (`numpy.swapaxes`; the same as [`swap_axes`](Self::swap_axes)).
    pub fn swapaxes(&self, a: usize, b: usize) -> Result<BlockArray<T>> {
        self.swap_axes(a, b)
    }

    /// An array of this one's shape and chunks filled with `value` (`numpy.full_like`).
    pub fn full_like<U: Element>(&self, value: U) -> Result<BlockArray<U>> {
        self.chunks().require_known("full_like")?;
        BlockArray::full(self.shape(), value, explicit(self.chunks()))
    }

    /// `numpy.empty_like`: blockarray never hands out uninitialised memory, so this is
    /// [`full_like`](Self::full_like) with the type's default (zero, `false`).
    pub fn empty_like(&self) -> Result<BlockArray<T>> {
        self.full_like(T::default())
    }

    /// `numpy.empty`: an array of `shape` filled with the type's default (zero, `false`).
    pub fn empty(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<BlockArray<T>> {
        BlockArray::full(shape, T::default(), chunks)
    }

    /// The lower triangle of the last two axes: elements above diagonal `k` set to zero
    /// (`numpy.tril`; `k > 0` keeps diagonals above the main one). A block map that knows
    /// where each block sits.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<i64>::ones(&[3, 3], 2)?;
    /// assert_eq!(x.tril(0)?.compute()?, ndarray::array![[1, 0, 0], [1, 1, 0], [1, 1, 1]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn tril(&self, k: isize) -> Result<BlockArray<T>> {
        self.triangle(k, true)
    }

    /// The upper triangle of the last two axes: elements below diagonal `k` set to zero
    /// (`numpy.triu`).
    pub fn triu(&self, k: isize) -> Result<BlockArray<T>> {
        self.triangle(k, false)
    }

    fn triangle(&self, k: isize, lower: bool) -> Result<BlockArray<T>> {
        let what = if lower { "tril" } else { "triu" };
        self.chunks().require_known(what)?;
        let nd = self.ndim();
        if nd < 2 {
            return Err(Error::axis(format!(
                "{what} needs at least 2 axes, got shape {:?}",
                self.shape()
            )));
        }
        let name = OpName::pure(what, &(k as i64));
        crate::ops::blockwise::blockwise_tagged(
            &name,
            what,
            &[self],
            None,
            move |b: &[&ndarray::ArrayD<T>], info| {
                let (r0, c0) = (info.start[nd - 2] as isize, info.start[nd - 1] as isize);
                let mut out = b[0].clone();
                for (idx, v) in out.indexed_iter_mut() {
                    let d = (c0 + idx[nd - 1] as isize) - (r0 + idx[nd - 2] as isize);
                    if (lower && d > k) || (!lower && d < k) {
                        *v = T::default();
                    }
                }
                Ok(out)
            },
        )
    }
}

impl<T: Numeric> BlockArray<T> {
    /// An array of zeros of this one's shape and chunks (`numpy.zeros_like`).
    pub fn zeros_like(&self) -> Result<BlockArray<T>> {
        self.full_like(T::zero())
    }

    /// An array of ones of this one's shape and chunks (`numpy.ones_like`).
    pub fn ones_like(&self) -> Result<BlockArray<T>> {
        self.full_like(T::one())
    }

    /// The `n × m` matrix with ones at and below diagonal `k` and zeros above (`numpy.tri`).
    ///
    /// ```
    /// let t = blockarray::BlockArray::<i64>::tri(2, Some(3), 0, 2)?;
    /// assert_eq!(t.compute()?, ndarray::array![[1, 0, 0], [1, 1, 0]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn tri(
        n: usize,
        m: Option<usize>,
        k: isize,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let m = m.unwrap_or(n);
        BlockArray::from_fn(
            &[n, m],
            chunks,
            OpName::pure("tri", &(k as i64)),
            move |i: &[usize]| {
                if i[1] as isize - i[0] as isize <= k {
                    T::one()
                } else {
                    T::zero()
                }
            },
        )
    }
}

impl<T: Float> BlockArray<T> {
    /// `num` values spaced evenly on a log scale: `base` to the powers
    /// `linspace(start, stop, num, endpoint)` (`numpy.logspace`).
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::logspace(0.0, 3.0, 4, true, 10.0, 2)?;
    /// assert_eq!(x.compute()?.into_raw_vec_and_offset().0, vec![1.0, 10.0, 100.0, 1000.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn logspace(
        start: T,
        stop: T,
        num: usize,
        endpoint: bool,
        base: T,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let lin = BlockArray::linspace(start, stop, num, endpoint, chunks)?;
        let b = base.as_f64();
        Ok(lin.map(OpName::pure("logspace", &b), move |v: T| {
            T::from_f64(b.powf(v.as_f64()))
        }))
    }

    /// `num` values from `start` to `stop` spaced evenly on a log scale, each a constant
    /// multiple of the one before (`numpy.geomspace`); the ends are exactly `start` and
    /// `stop`. Both must be non-zero and of one sign.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::geomspace(1.0, 1000.0, 4, true, 3)?.compute()?;
    /// assert_eq!((x[[0]], x[[3]]), (1.0, 1000.0));
    /// assert!((x[[1]] - 10.0).abs() < 1e-12);
    /// assert!(blockarray::BlockArray::<f64>::geomspace(0.0, 1.0, 4, true, 3).is_err());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn geomspace(
        start: T,
        stop: T,
        num: usize,
        endpoint: bool,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let (a, b) = (start.as_f64(), stop.as_f64());
        if a == 0.0 || b == 0.0 || a.is_nan() || b.is_nan() {
            return Err(Error::shape(format!(
                "geomspace({a}, {b}): a geometric sequence cannot include zero or NaN"
            )));
        }
        if (a < 0.0) != (b < 0.0) {
            return Err(Error::unsupported(format!(
                "geomspace({a}, {b}): ends of different signs give complex values"
            )));
        }
        let sign = if a < 0.0 { -1.0 } else { 1.0 };
        let (la, lb) = ((a * sign).log10(), (b * sign).log10());
        let lin = BlockArray::linspace(T::from_f64(la), T::from_f64(lb), num, endpoint, chunks)?;
        let params = (a, b, u64::from(endpoint));
        // The ends are `start` and (with endpoint) `stop` exactly, by position, as NumPy's.
        let index = BlockArray::<i64>::arange(0, num as i64, 1, lin.chunks())?;
        lin.zip_map(
            &index,
            OpName::pure("geomspace", &params),
            move |v: T, i: i64| {
                if i == 0 {
                    T::from_f64(a)
                } else if endpoint && i as usize == num - 1 {
                    T::from_f64(b)
                } else {
                    T::from_f64(sign * 10f64.powf(v.as_f64()))
                }
            },
        )
    }
}

/// Arrays broadcast to their common shape (`numpy.broadcast_arrays`).
pub fn broadcast_arrays<T: Element>(arrays: &[&BlockArray<T>]) -> Result<Vec<BlockArray<T>>> {
    let mut shape: Vec<usize> = Vec::new();
    for a in arrays {
        shape = broadcast_shapes(&shape, a.shape())
            .map_err(|e| e.context("broadcast_arrays: shapes do not broadcast"))?;
    }
    arrays.iter().map(|a| a.broadcast_to(&shape)).collect()
}

/// Coordinate matrices from 1-d coordinate vectors (`numpy.meshgrid`): with `ij` indexing
/// output `i` varies along axis `i`; with `xy` (NumPy's default, `ij = false`) the first
/// two axes are exchanged. Each output is its vector broadcast (lazily), in the vectors'
/// chunks, or automatic ones when those would make blocks larger than
/// [`DEFAULT_CHUNK_BYTES`](crate::DEFAULT_CHUNK_BYTES).
///
/// ```
/// use blockarray::{BlockArray, meshgrid};
/// let x = BlockArray::arange(0i64, 3, 1, 2)?;
/// let y = BlockArray::arange(10i64, 12, 1, 1)?;
/// let g = meshgrid(&[&x, &y], false)?;
/// assert_eq!(g[0].compute()?, ndarray::array![[0, 1, 2], [0, 1, 2]].into_dyn());
/// assert_eq!(g[1].compute()?, ndarray::array![[10, 10, 10], [11, 11, 11]].into_dyn());
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn meshgrid<T: Element>(xs: &[&BlockArray<T>], ij: bool) -> Result<Vec<BlockArray<T>>> {
    meshgrid_in(xs, ij, None)
}

/// [`meshgrid`] in `chunks` (the output's), or by default in the vectors' chunks when their
/// blocks together stay within [`DEFAULT_CHUNK_BYTES`](crate::DEFAULT_CHUNK_BYTES), else
/// automatic ones.
fn meshgrid_in<T: Element>(
    xs: &[&BlockArray<T>],
    ij: bool,
    chunks: Option<Chunks>,
) -> Result<Vec<BlockArray<T>>> {
    for (i, x) in xs.iter().enumerate() {
        if x.ndim() != 1 {
            return Err(Error::shape(format!(
                "meshgrid: coordinate vector {i} has shape {:?}, not 1-d",
                x.shape()
            )));
        }
        x.chunks().require_known("meshgrid")?;
    }
    let n = xs.len();
    // Output axis of vector i.
    let pos = |i: usize| {
        if !ij && n >= 2 && i < 2 { 1 - i } else { i }
    };
    let mut shape = vec![0; n];
    let mut own = vec![Vec::new(); n];
    for (i, x) in xs.iter().enumerate() {
        shape[pos(i)] = x.shape()[0];
        own[pos(i)] = x.chunks().axis(0).to_vec();
    }
    let chunks = match chunks {
        Some(c) => c,
        None => {
            let own = Chunks::from_blocks(own)?;
            if own.max_block_elems().saturating_mul(T::itemsize()) <= crate::DEFAULT_CHUNK_BYTES {
                own
            } else {
                Chunks::new(&shape, ChunkSpec::auto(), T::itemsize())?
            }
        }
    };
    xs.iter()
        .enumerate()
        .map(|(i, x)| {
            let from = (0..n).map(|k| (k == pos(i)).then_some(0)).collect();
            let col = BlockArray::<T>::wrap(axes_node(&x.node, from)?);
            broadcast_in(&col, chunks.clone())
        })
        .collect()
}

/// The grid of indices of an array of shape `dims` (`numpy.indices`): shape
/// `(dims.len(), *dims)`, entry `[i, …]` holding the index along axis `i`.
///
/// ```
/// let g = blockarray::indices(&[2, 3], 2)?;
/// assert_eq!(g.shape(), &[2, 2, 3]);
/// assert_eq!(g.compute()?[[1, 1, 2]], 2);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn indices(dims: &[usize], chunks: impl Into<ChunkSpec>) -> Result<BlockArray<i64>> {
    let c = Chunks::new(dims, chunks, i64::itemsize())?;
    let ranges = dims
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            BlockArray::arange(
                0i64,
                n as i64,
                1,
                ChunkSpec::Explicit(vec![c.axis(k).to_vec()]),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    if ranges.is_empty() {
        return BlockArray::zeros(&[0], 1);
    }
    let refs: Vec<&BlockArray<i64>> = ranges.iter().collect();
    let grids = meshgrid_in(&refs, true, Some(c))?;
    let refs: Vec<&BlockArray<i64>> = grids.iter().collect();
    stack(&refs, 0)
}
