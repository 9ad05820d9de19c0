//! Indexing: basic slicing (NumPy semantics: negative steps, integers, new axes, ellipsis),
//! fancy indexing with integer lists, and block access.
//!
//! # Design notes
//!
//! A slice is first offered to the node it applies to ([`Node::push_slice`]): sources narrow
//! their read, elementwise maps slice their inputs instead, transposes slice their input with
//! permuted arguments, and slices of slices compose. Only when a node cannot absorb the slice is
//! a slice node put on top; its output blocks follow the input blocks they come from (one
//! output block per touched input block, see [`plan_axis_slice`](crate::plan::index::plan_axis_slice)), so the
//! cost is proportional to the blocks touched. Integer indices slice to length 1, then the axis
//! is dropped; new axes are inserted where they appear, as in NumPy.

use crate::expr::array::{BlockTask, Meta, Node, token_of};
use crate::expr::source::{compose, nd_slice};
use crate::ops::shape::axes_node;
use crate::plan::index::{AxisSlicePlan, NormSlice, ResolvedArg, SliceArg, TakePlan, resolve_args};
use crate::{BlockArray, Chunks, Element, Error, Result};
use dag_core::{BlockIndex, Value};
use std::sync::Arc;

/// `node` restricted to `slices` (one per axis), pushed down where possible.
pub(crate) fn slice_node(node: &Arc<dyn Node>, slices: &[NormSlice]) -> Result<Arc<dyn Node>> {
    let shape = node.meta().shape();
    if slices.len() != shape.len() {
        return Err(Error::index(format!(
            "{} slices for an array of {} axes",
            slices.len(),
            shape.len()
        )));
    }
    if slices
        .iter()
        .zip(shape)
        .all(|(s, &n)| *s == NormSlice::full(n) || (n == 0 && s.len == 0))
    {
        return Ok(node.clone());
    }
    if let Some(pushed) = node.push_slice(slices) {
        return pushed;
    }
    SliceNode::build(node, slices)
}

/// The output chunks of `chunks` sliced by `slices`, and the per-axis plans.
pub(crate) fn plan_slices(
    chunks: &Chunks,
    slices: &[NormSlice],
) -> Result<(Chunks, Vec<AxisSlicePlan>)> {
    let plans = slices
        .iter()
        .enumerate()
        .map(|(ax, s)| chunks.plan_slice(ax, s))
        .collect::<Result<Vec<_>>>()?;
    let out = Chunks::from_blocks(plans.iter().map(|p| p.chunks.clone()).collect())?;
    Ok((out, plans))
}

/// A strided selection of each axis of its input.
pub(crate) struct SliceNode {
    meta: Meta,
    input: Arc<dyn Node>,
    slices: Vec<NormSlice>,
    plans: Vec<AxisSlicePlan>,
}

impl SliceNode {
    fn build(node: &Arc<dyn Node>, slices: &[NormSlice]) -> Result<Arc<dyn Node>> {
        let (chunks, plans) = plan_slices(&node.meta().chunks, slices)?;
        let mut t = token_of(&[node]);
        for s in slices {
            t.write_usize(s.start)
                .write_usize(s.len)
                .write_i64(s.step as i64);
        }
        let meta = node.meta().derive("getitem", t, chunks);
        Ok(Arc::new(SliceNode {
            meta,
            input: node.clone(),
            slices: slices.to_vec(),
            plans,
        }))
    }
}

impl Node for SliceNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let kit = self.meta.kit;
        if self.plans.iter().any(|p| p.pieces.is_empty()) {
            // An empty slice: its one (empty) block reads nothing.
            let shape = self.meta.chunks.block_shape(index);
            return BlockTask {
                deps: Vec::new(),
                func: Arc::new(move |_: &[Value]| kit.assemble(&shape, &[])),
            };
        }
        let mut src = BlockIndex::new();
        let mut info = Vec::with_capacity(index.len());
        let mut whole = true;
        for (ax, &b) in index.iter().enumerate() {
            let piece = &self.plans[ax].pieces[b];
            src.push(piece.block);
            let block_len = self.input.meta().chunks.axis(ax)[piece.block];
            whole &= piece.slice == NormSlice::full(block_len);
            info.push(nd_slice(&piece.slice, 0));
        }
        BlockTask {
            deps: vec![(0, src)],
            func: Arc::new(move |v: &[Value]| {
                if whole {
                    Ok(v[0].clone())
                } else {
                    kit.slice(&v[0], &info)
                }
            }),
        }
    }
    fn push_slice(&self, slices: &[NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        let composed: Vec<NormSlice> = self
            .slices
            .iter()
            .zip(slices)
            .map(|(a, b)| compose(a, b))
            .collect();
        Some(slice_node(&self.input, &composed))
    }
}

/// Integer-list selection along one axis.
struct TakeNode {
    meta: Meta,
    input: Arc<dyn Node>,
    axis: usize,
    plan: TakePlan,
}

impl Node for TakeNode {
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
        let shape = self.meta.chunks.block_shape(index);
        let (axis, kit) = (self.axis, self.meta.kit);
        let Some(tb) = self.plan.blocks.get(index[self.axis]) else {
            // An empty index list: one empty block, reading nothing.
            return BlockTask {
                deps: Vec::new(),
                func: Arc::new(move |_: &[Value]| kit.gather(&shape, axis, &[])),
            };
        };
        let deps = tb
            .sources
            .iter()
            .map(|s| {
                let mut b = BlockIndex::from_slice(index);
                b[self.axis] = s.block;
                (0, b)
            })
            .collect();
        let moves: Vec<(Vec<usize>, Vec<usize>)> = tb
            .sources
            .iter()
            .map(|s| (s.local.clone(), s.out_positions.clone()))
            .collect();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let parts: Vec<(&Value, &[usize], &[usize])> = v
                    .iter()
                    .zip(&moves)
                    .map(|(b, (from, to))| (b, from.as_slice(), to.as_slice()))
                    .collect();
                kit.gather(&shape, axis, &parts)
            }),
        }
    }
}

impl<T: Element> BlockArray<T> {
    /// Basic slicing with NumPy semantics, written with [`s!`](crate::s):
    /// `x.slice(s![..100, 500..100;-2])` is `x[:100, 500:100:-2]`.
    ///
    /// Errors name the axis: a zero step, an index out of bounds, too many indices, more than
    /// one ellipsis.
    ///
    /// ```
    /// use blockarray::{BlockArray, s};
    /// let x = BlockArray::arange(0i64, 20, 1, 6)?.reshape(&[4, 5])?;
    /// let y = x.slice(s![1.., 4..0;-2])?;
    /// assert_eq!(y.compute()?, ndarray::array![[9, 7], [14, 12], [19, 17]].into_dyn());
    /// assert_eq!(x.slice(s![-1, NewAxis, ..])?.shape(), &[1, 5]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn slice(&self, args: impl AsRef<[SliceArg]>) -> Result<BlockArray<T>> {
        self.chunks().require_known("slicing")?;
        let resolved = resolve_args(args.as_ref(), self.shape())?;
        let mut slices: Vec<NormSlice> = self.shape().iter().map(|&n| NormSlice::full(n)).collect();
        let mut from: Vec<Option<usize>> = Vec::new();
        for r in &resolved {
            match *r {
                ResolvedArg::Slice { axis, slice } => {
                    slices[axis] = slice;
                    from.push(Some(axis));
                }
                ResolvedArg::Index { axis, index } => {
                    slices[axis] = NormSlice {
                        start: index,
                        len: 1,
                        step: 1,
                    };
                }
                ResolvedArg::NewAxis => from.push(None),
            }
        }
        let sliced = slice_node(&self.node, &slices)?;
        Ok(BlockArray::wrap(axes_node(&sliced, from)?))
    }

    /// Fancy indexing along one axis: the elements at `indices` (unsorted, repeated and
    /// negative indices allowed), like `x[:, [10, 1, 5]]` for `axis = 1`.
    ///
    /// Output blocks follow [`plan_take`](crate::plan::index::plan_take): runs of the index
    /// list, each at most as long as the largest source block along the axis, or as long as
    /// makes about 1 MiB when those are smaller (reading no more source blocks than the
    /// largest is long); a sorted list cuts where the source block changes too.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 12, 1, 5)?;
    /// assert_eq!(x.take(&[10, 1, -1, 1], 0)?.compute()?.into_raw_vec_and_offset().0, vec![10, 1, 11, 1]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn take(&self, indices: &[isize], axis: usize) -> Result<BlockArray<T>> {
        self.chunks().require_known("take")?;
        self.check_axis(axis)?;
        // Output blocks of about 1 MiB at least along the axis when the source blocks are
        // shorter (a take a million long from blocks of 3 is not 300 000 blocks).
        let run = self.chunks().mib_run(axis, T::itemsize());
        let plan = self
            .chunks()
            .plan_take_runs(axis, indices, run)
            .map_err(|e| e.context(format!("take along axis {axis}")))?;
        let mut axes = self.chunks().axes().to_vec();
        axes[axis] = plan.chunks.clone();
        let mut t = token_of(&[&self.node]);
        t.write_usize(axis).write(
            indices
                .iter()
                .map(|&i| i as i64)
                .collect::<Vec<_>>()
                .as_slice(),
        );
        let meta = Meta::new::<T>("take", t, Chunks::from_blocks(axes)?);
        Ok(BlockArray::wrap(Arc::new(TakeNode {
            meta,
            input: self.node.clone(),
            axis,
            plan,
        })))
    }

    /// The block at block index `index`, as an array (dask's `x.blocks[i, j]`).
    pub fn block(&self, index: &[usize]) -> Result<BlockArray<T>> {
        self.chunks().require_known("block access by index")?;
        let numblocks = self.numblocks();
        if index.len() != numblocks.len() || index.iter().zip(&numblocks).any(|(i, n)| i >= n) {
            return Err(Error::index(format!(
                "block index {index:?} out of range for {numblocks:?} blocks"
            )));
        }
        let slices: Vec<NormSlice> = index
            .iter()
            .enumerate()
            .map(|(ax, &b)| {
                let r = self.chunks().block_range(ax, b);
                NormSlice {
                    start: r.start,
                    len: r.len(),
                    step: 1,
                }
            })
            .collect();
        Ok(BlockArray::wrap(slice_node(&self.node, &slices)?))
    }
}
