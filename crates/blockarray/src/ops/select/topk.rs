//! `topk` and `argtopk`: the `k` largest (or, for `k < 0`, the `-k` smallest) elements along an
//! axis, as a tree reduction that keeps `|k|` candidates per partial.
//!
//! # Design notes
//!
//! Each block keeps, for every lane along the axis, its best `m = min(|k|, lane length)`
//! elements, best first, with their positions along the axis: a scan against the worst kept
//! element (a branch that is almost never taken once the buffer is full) for small `m`, a
//! selection (`select_nth_unstable`) then a sort of the `m` for large `m`. Combine tasks merge
//! sorted candidate lists (linear in `|k|`) up to [`crate::DEFAULT_FANIN`] at a
//! time; the finish step lays the last list out along the axis. Cost: one task per block (fused
//! with whatever produces the block), `⌈B/8⌉ + ⌈B/64⌉ + …` combine tasks for `B` blocks along
//! the axis, and `|k|` values and indices per lane moving between tasks.
//!
//! Order: [`SortKey`] (NaN largest, as NumPy's sort), ties broken by position (the first
//! occurrence is better), so the result does not depend on the chunking.

use super::SortKey;
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::reduce::{Merge, combine_levels};
use crate::{BlockArray, Chunks, DEFAULT_FANIN, Element, Error, Result};
use dag_core::{BlockIndex, Value};
use std::sync::Arc;

/// Elements compared at once against the worst kept candidate.
const SCAN: usize = 128;

/// The candidates of a group of blocks: per lane, `width` entries, best first.
struct TopPartial<T> {
    width: usize,
    /// Lanes (the product of the other axes' block lengths).
    lanes: usize,
    /// Per entry: score (higher is better), position along the axis, value.
    score: Vec<u64>,
    index: Vec<i64>,
    value: Vec<T>,
}

/// The parameters of one top-k: how many, which end, along which axis.
struct TopK {
    k: usize,
    largest: bool,
}

impl TopK {
    fn score<T: SortKey>(&self, v: T) -> u64 {
        if self.largest { v.key() } else { !v.key() }
    }

    /// The best `min(k, lane.len())` of one lane whose first element is at `offset`, appended.
    fn lane<T: SortKey>(&self, lane: &[T], offset: usize, out: &mut TopPartial<T>) {
        let m = self.k.min(lane.len());
        if m == 0 {
            return;
        }
        let better = |a: &(u64, i64, T), b: &(u64, i64, T)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        let mut best: Vec<(u64, i64, T)> = Vec::with_capacity(m + 1);
        if m <= 32 && m * 8 < lane.len() {
            for (c, chunk) in lane.chunks(SCAN).enumerate() {
                if best.len() == m {
                    // Skip a run of elements none of which beats the worst kept one: one
                    // vectorised comparison per element (NaN never passes `<=`, so a run with
                    // a NaN is looked at element by element).
                    let worst = best[m - 1].2;
                    let beaten = if self.largest {
                        chunk.iter().fold(true, |all, &v| all & (v <= worst))
                    } else {
                        chunk.iter().fold(true, |all, &v| all & (v >= worst))
                    };
                    if beaten && !worst.is_nan_value() {
                        continue;
                    }
                }
                for (i, &v) in chunk.iter().enumerate() {
                    let s = self.score(v);
                    // A later equal score is worse (ties go to the first position).
                    if best.len() == m && s <= best[m - 1].0 {
                        continue;
                    }
                    let item = (s, (offset + c * SCAN + i) as i64, v);
                    let at = best.partition_point(|b| b.0 >= s);
                    best.insert(at, item);
                    best.truncate(m);
                }
            }
        } else {
            best.extend(
                lane.iter()
                    .enumerate()
                    .map(|(i, &v)| (self.score(v), (offset + i) as i64, v)),
            );
            if m < best.len() {
                best.select_nth_unstable_by(m - 1, better);
                best.truncate(m);
            }
            best.sort_unstable_by(better);
        }
        for (s, i, v) in best {
            out.score.push(s);
            out.index.push(i);
            out.value.push(v);
        }
    }
}

/// The merge of the combine levels: two candidate lists per lane into the best `k`.
struct TopMerge<T> {
    top: TopK,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Merge for TopMerge<T> {
    type Partial = TopPartial<T>;
    fn merge_partials(&self, a: &TopPartial<T>, b: &TopPartial<T>) -> TopPartial<T> {
        let width = self.top.k.min(a.width + b.width);
        let lanes = a.lanes;
        let mut out = TopPartial {
            width,
            lanes,
            score: Vec::with_capacity(lanes * width),
            index: Vec::with_capacity(lanes * width),
            value: Vec::with_capacity(lanes * width),
        };
        for lane in 0..lanes {
            let (mut i, mut j) = (lane * a.width, lane * b.width);
            let (ie, je) = (i + a.width, j + b.width);
            for _ in 0..width {
                // Take from `a` unless `b`'s next is better (higher score, or equal score at an
                // earlier position).
                let take_a = j >= je
                    || (i < ie
                        && (a.score[i], std::cmp::Reverse(a.index[i]))
                            >= (b.score[j], std::cmp::Reverse(b.index[j])));
                if take_a {
                    out.score.push(a.score[i]);
                    out.index.push(a.index[i]);
                    out.value.push(a.value[i]);
                    i += 1;
                } else {
                    out.score.push(b.score[j]);
                    out.index.push(b.index[j]);
                    out.value.push(b.value[j]);
                    j += 1;
                }
            }
        }
        out
    }
    fn partial_bytes(p: &TopPartial<T>) -> usize {
        p.score.len() * (16 + T::itemsize())
    }
}

/// Per block: the candidates of every lane.
struct TopChunkNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    axis: usize,
    merge: Arc<TopMerge<T>>,
}

impl<T: SortKey> Node for TopChunkNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let offset = self.input.meta().chunks.block_start(index)[self.axis];
        let (axis, merge) = (self.axis, self.merge.clone());
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                let block = block_ref::<T>(&v[0])?;
                let len = block.shape()[axis];
                let lanes = super::axis_last(block, axis);
                let data = lanes.as_slice().ok_or("lanes are contiguous")?;
                let mut p = TopPartial {
                    width: merge.top.k.min(len),
                    lanes: data.len().checked_div(len).unwrap_or(0),
                    score: Vec::new(),
                    index: Vec::new(),
                    value: Vec::new(),
                };
                if len > 0 {
                    for lane in data.chunks_exact(len) {
                        merge.top.lane(lane, offset, &mut p);
                    }
                }
                let n = TopMerge::<T>::partial_bytes(&p);
                Ok(Value::with_nbytes(p, n))
            }),
        }
    }
}

/// The last candidate list, laid out along the axis: values or positions.
struct TopFinishNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    axis: usize,
    positions: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for TopFinishNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let shape = self.meta.chunks.block_shape(index);
        let axis = self.axis;
        let k = shape[axis];
        let outer: Vec<usize> = (0..shape.len())
            .filter(|&a| a != axis)
            .map(|a| shape[a])
            .collect();
        let positions = self.positions;
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                let p = v[0].get::<TopPartial<T>>()?;
                if p.width != k {
                    return Err(format!(
                        "internal: top-k kept {} candidates per lane, {k} wanted",
                        p.width
                    )
                    .into());
                }
                Ok(if positions {
                    block_value(super::axis_back(p.index.clone(), &outer, k, axis))
                } else {
                    block_value(super::axis_back(p.value.clone(), &outer, k, axis))
                })
            }),
        }
    }
}

fn top<T: SortKey, U: Element>(
    x: &BlockArray<T>,
    k: isize,
    axis: usize,
    positions: bool,
) -> Result<BlockArray<U>> {
    x.chunks().require_known("topk")?;
    x.check_axis(axis)?;
    let len = x.shape()[axis];
    let n = k.unsigned_abs();
    if k == 0 || n > len {
        return Err(Error::index(format!(
            "{}: k = {k} does not select 1 to {len} elements along axis {axis} of length {len} \
             (shape {:?})",
            if positions { "argtopk" } else { "topk" },
            x.shape()
        )));
    }
    let op = if positions { "argtopk" } else { "topk" };
    let merge = Arc::new(TopMerge::<T> {
        top: TopK {
            k: n,
            largest: k > 0,
        },
        _type: std::marker::PhantomData,
    });
    let mut t = token_of(&[&x.node]);
    t.write_str(op)
        .write_i64(k as i64)
        .write_usize(axis)
        .write_usize(DEFAULT_FANIN);
    let mut axes = x.chunks().axes().to_vec();
    axes[axis] = vec![1; axes[axis].len()];
    let chunk: Arc<dyn Node> = Arc::new(TopChunkNode {
        meta: Meta::new::<T>(
            &format!("{op}-chunk"),
            t.clone(),
            Chunks::from_blocks(axes)?,
        ),
        input: x.node.clone(),
        axis,
        merge: merge.clone(),
    });
    let combined = combine_levels::<T, _>(chunk, &[axis], DEFAULT_FANIN, &merge, op, &t)?;
    let mut out_axes = x.chunks().axes().to_vec();
    out_axes[axis] = vec![n];
    let finish = TopFinishNode::<T> {
        meta: Meta::new::<U>(op, t, Chunks::from_blocks(out_axes)?),
        input: combined,
        axis,
        positions,
        _type: std::marker::PhantomData,
    };
    Ok(BlockArray::wrap(Arc::new(finish)))
}

impl<T: SortKey> BlockArray<T> {
    /// The `k` largest elements along `axis`, largest first; for `k < 0`, the `-k` smallest,
    /// smallest first (dask's `topk`). NaN counts as the largest value (NumPy's sort order);
    /// among equal values the first occurrence comes first.
    ///
    /// A tree reduction keeping `|k|` candidates per lane in every partial: one task per
    /// block, fused with the work producing it.
    ///
    /// # Errors
    /// An axis out of range; `k = 0` or `|k|` larger than the axis (naming `k`, the axis and
    /// its length).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![5.0, 1.0, f64::NAN, 7.0, 3.0, 7.0], 2)?;
    /// let top = x.topk(3, 0)?.compute()?;
    /// assert!(top[0].is_nan());
    /// assert_eq!(&top.as_slice().unwrap()[1..], &[7.0, 7.0]);
    /// assert_eq!(x.topk(-2, 0)?.compute()?.into_raw_vec_and_offset().0, vec![1.0, 3.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn topk(&self, k: isize, axis: usize) -> Result<BlockArray<T>> {
        top::<T, T>(self, k, axis, false)
    }

    /// The positions along `axis` of [`topk`](Self::topk)'s elements (dask's `argtopk`), in the
    /// same order; equal values give the first position first.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![[5, 1, 9], [2, 8, 8]], [1, 2])?;
    /// let i = x.argtopk(2, 1)?.compute()?;
    /// assert_eq!(i, ndarray::array![[2, 0], [1, 2]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn argtopk(&self, k: isize, axis: usize) -> Result<BlockArray<i64>> {
        top::<T, i64>(self, k, axis, true)
    }
}

/// The `k` largest elements of `x` along `axis` (`k < 0`: the `-k` smallest); see
/// [`BlockArray::topk`].
///
/// ```
/// let x = blockarray::BlockArray::arange(0i64, 100, 1, 7)?;
/// assert_eq!(blockarray::topk(&x, 2, 0)?.compute()?.into_raw_vec_and_offset().0, vec![99, 98]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn topk<T: SortKey>(x: &BlockArray<T>, k: isize, axis: usize) -> Result<BlockArray<T>> {
    x.topk(k, axis)
}

/// The positions of [`topk`]'s elements; see [`BlockArray::argtopk`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![5, 9, 1], 2)?;
/// assert_eq!(blockarray::argtopk(&x, -1, 0)?.compute()?.into_raw_vec_and_offset().0, vec![2]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn argtopk<T: SortKey>(x: &BlockArray<T>, k: isize, axis: usize) -> Result<BlockArray<i64>> {
    x.argtopk(k, axis)
}

/// Register the candidates of a top-k of `T` with [`dag_core::wire`] (distributed runs).
pub(crate) fn register_wire<T: SortKey + crate::expr::wire::WireElement>() {
    use crate::expr::wire::{get_vec, put_vec};
    dag_core::wire::register::<TopPartial<T>>(
        |p, out| {
            dag_core::wire::put_u64(out, p.width as u64);
            dag_core::wire::put_u64(out, p.lanes as u64);
            put_vec(&p.score, out);
            put_vec(&p.index, out);
            put_vec(&p.value, out);
        },
        |r| {
            let (width, lanes) = (r.u64()? as usize, r.u64()? as usize);
            let p = TopPartial {
                width,
                lanes,
                score: get_vec(r)?,
                index: get_vec(r)?,
                value: get_vec::<T>(r)?,
            };
            let n = width.checked_mul(lanes);
            if n.is_none_or(|n| p.score.len() != n || p.index.len() != n || p.value.len() != n) {
                return Err(format!(
                    "a top-k partial of {lanes} lanes × {width} has runs of other lengths"
                ));
            }
            Ok(p)
        },
    );
}
