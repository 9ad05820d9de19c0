//! Operations whose results depend on the values: one-argument [`where_indices`], [`isin`](BlockArray::isin),
//! [`searchsorted`], [`digitize`], [`bincount`] / [`bincount_weighted`], [`histogram`],
//! [`histogramdd`] and [`unique`](BlockArray::unique) (with first indices, inverse and counts).
//!
//! # Design notes
//!
//! Everything here is lazy and lowers to task graphs like the rest of the crate:
//!
//! * **Small results are trees.** `unique`, `bincount`, the test set of `isin`, the counts of a
//!   histogram and the autodetected range of a histogram reduce every block to a partial (a
//!   sorted run of distinct values, a vector of counts, a min/max), then combine levels merge
//!   up to [`DEFAULT_FANIN`] partials each until one is left, as
//!   [`reduce`](crate::reduce()) does. Each block's partial depends only on that block, so it
//!   fuses with the elementwise work before it and no task holds more than one input block.
//! * **Value-dependent lengths stay lazy.** `unique`'s and `bincount`'s lengths are not known
//!   before the run: they are single blocks along an axis of unknown length
//!   ([`Chunks::unknown_axis`]) whose stored length is used only to plan memory: the input's
//!   length for `unique` (an upper bound), `minlength` for `bincount` (no bound is known before
//!   the run; nothing relies on the stored length being one). Reductions, elementwise
//!   operations between the outputs of one `unique` (values, counts and first indices share an
//!   origin) and `compute` work on them directly; `compute_chunk_sizes` makes them known. We
//!   chose this over computing the maximum first (an eager pass at build time), so that
//!   building an expression never runs anything.
//! * **Lookups read the tree's root.** `isin`, `unique`'s inverse and a histogram's per-block
//!   counts read their block and the single root value (the test set, the unique values, the
//!   bin edges): blockwise tasks, as parallel as elementwise ones.
//! * **`searchsorted` is a sum of per-block counts.** For each block of `v` and each block of
//!   the sorted array, the number of sorted elements before each value (a binary search in
//!   that block); the counts are summed over the sorted array's blocks by the tree reduction
//!   of [`sum`](BlockArray::sum). The sorted array can be larger than memory.
//!
//! Order of values follows NumPy's sort: NaN after everything and equal to every NaN, `-0.0`
//! equal to `0.0`. Every node's key hashes its inputs' names and every parameter (sides, bins,
//! edges, ranges, flags, minlength).

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::expr::wire::{WireElement, get_vec, put_vec};
use crate::ops::select::quantile::HOLD_BYTES;
use crate::ops::shape::rechunk_direct;
use crate::{BlockArray, Chunks, DEFAULT_FANIN, Element, Error, Real, Result};
use dag_core::wire::put_u64;
use dag_core::{BlockIndex, TaskError, Tokenizer, Value};
use ndarray::{ArrayD, IxDyn};
use std::cmp::Ordering;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Building blocks: a node from closures, trees of partials.
// ---------------------------------------------------------------------------------------------

type TaskOf = Arc<dyn Fn(&[usize]) -> BlockTask + Send + Sync>;
type SizeOf = Arc<dyn Fn(&[usize]) -> usize + Send + Sync>;

/// A node whose tasks come from a closure. Its key is the caller's: every constructor below
/// feeds all parameters to the token.
struct FnNode {
    meta: Meta,
    inputs: Vec<Arc<dyn Node>>,
    blockwise: bool,
    nbytes: Option<SizeOf>,
    task: TaskOf,
}

impl Node for FnNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        (self.task)(index)
    }
    fn blockwise(&self) -> bool {
        self.blockwise
    }
    fn block_nbytes(&self, index: &[usize]) -> usize {
        match &self.nbytes {
            Some(f) => f(index),
            None => {
                self.meta
                    .chunks
                    .block_shape(index)
                    .iter()
                    .product::<usize>()
                    * self.meta.itemsize
            }
        }
    }
}

/// The block index of flat block number `flat` in a grid of `nb` blocks (C order).
fn unravel(mut flat: usize, nb: &[usize]) -> Vec<usize> {
    let mut out = vec![0; nb.len()];
    for k in (0..nb.len()).rev() {
        out[k] = flat % nb[k].max(1);
        flat /= nb[k].max(1);
    }
    out
}

/// The dependency on the single block of a one-block node.
fn root_dep(input: usize, node: &Arc<dyn Node>) -> (usize, BlockIndex) {
    (
        input,
        BlockIndex::from_slice(&vec![0; node.meta().chunks.ndim()]),
    )
}

type ChunkFn<P> =
    Arc<dyn Fn(&[Value], &[usize]) -> std::result::Result<P, TaskError> + Send + Sync>;
type MergeFn<P> = Arc<dyn Fn(&P, &P) -> P + Send + Sync>;
/// A task function returning a value.
type ValueFn = Arc<dyn Fn(&[Value]) -> std::result::Result<Value, TaskError> + Send + Sync>;
/// A task function returning a block.
type BlockFn<U> = Arc<dyn Fn(&[Value]) -> std::result::Result<ArrayD<U>, TaskError> + Send + Sync>;

/// How to reduce the blocks of an array to one value.
struct TreeSpec<P> {
    /// The partial of one block: the values are the block, then the blocks of the aligned
    /// inputs (same block index), then the roots of the whole inputs; and the block index.
    chunk: ChunkFn<P>,
    /// The partial of an array with no blocks.
    identity: Arc<dyn Fn() -> P + Send + Sync>,
    /// Merge two partials (the first covers earlier blocks).
    merge: MergeFn<P>,
    /// Bytes held by a partial.
    nbytes: fn(&P) -> usize,
    /// Predicted bytes of a partial, for memory planning.
    predicted: usize,
    /// Predicted bytes of one block's partial (at most `predicted`).
    predicted_chunk: usize,
}

fn partial_value<P: Send + Sync + 'static>(p: P, nbytes: fn(&P) -> usize) -> Value {
    let n = nbytes(&p);
    Value::with_nbytes(p, n)
}

/// The C-order strides of a grid of `nbins` bins. They saturate: with no bins along one
/// dimension the grid is empty (nothing is counted), while the others' product may overflow.
fn bin_strides(nbins: &[usize]) -> Vec<usize> {
    (0..nbins.len())
        .map(|k| {
            nbins[k + 1..]
                .iter()
                .fold(1usize, |a, &n| a.saturating_mul(n))
        })
        .collect()
}

/// One value reduced from every block of `x` through `spec`: one partial per block (blockwise,
/// so it fuses with what comes before), then levels merging up to `DEFAULT_FANIN` partials.
/// `aligned` nodes are read at each block's index (they have `x`'s chunks); `whole` nodes are
/// one-block nodes read by every partial. Returns a one-block node (1-d, one block of length 1)
/// whose value is the partial.
fn tree<P: Send + Sync + 'static>(
    op: &str,
    t: &Tokenizer,
    x: &Arc<dyn Node>,
    aligned: &[Arc<dyn Node>],
    whole: &[Arc<dyn Node>],
    spec: TreeSpec<P>,
) -> Result<Arc<dyn Node>> {
    let nb = x.meta().chunks.numblocks();
    // The partials lie along one axis, listed when the expression is built.
    let n = nb
        .iter()
        .try_fold(1usize, |acc, &b| acc.checked_mul(b))
        .unwrap_or(usize::MAX);
    crate::check_build_tasks(
        op,
        n,
        || {
            format!(
                "{} has {} blocks, one partial each",
                x.meta().name,
                crate::error::fmt_shape(&nb)
            )
        },
        "give it larger chunks (e.g. rechunk it to ChunkSpec::auto())",
    )?;
    let spec = Arc::new(spec);
    let mut inputs = vec![x.clone()];
    inputs.extend(aligned.iter().cloned());
    inputs.extend(whole.iter().cloned());
    let whole_deps: Vec<(usize, BlockIndex)> = whole
        .iter()
        .enumerate()
        .map(|(i, w)| root_dep(1 + aligned.len() + i, w))
        .collect();
    let n_aligned = aligned.len();
    let s = spec.clone();
    let (predicted, predicted_chunk) = (spec.predicted, spec.predicted_chunk.min(spec.predicted));
    let task: TaskOf = Arc::new(move |index: &[usize]| {
        let s = s.clone();
        if n == 0 {
            return BlockTask {
                deps: vec![],
                func: Arc::new(move |_: &[Value]| Ok(partial_value((s.identity)(), s.nbytes))),
            };
        }
        let bi = unravel(index[0], &nb);
        let mut deps = vec![(0, BlockIndex::from_slice(&bi))];
        deps.extend((0..n_aligned).map(|a| (1 + a, BlockIndex::from_slice(&bi))));
        deps.extend(whole_deps.iter().cloned());
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| Ok(partial_value((s.chunk)(v, &bi)?, s.nbytes))),
        }
    });
    let mut node: Arc<dyn Node> = Arc::new(FnNode {
        meta: Meta::new::<u8>(
            &format!("{op}-chunk"),
            t.clone(),
            Chunks::from_blocks(vec![vec![1; n.max(1)]])?,
        ),
        inputs: if n == 0 { vec![] } else { inputs },
        blockwise: true,
        nbytes: Some(Arc::new(move |_: &[usize]| predicted_chunk)),
        task,
    });
    let mut level = 0u64;
    while node.meta().chunks.nblocks() > 1 {
        let below = node.meta().chunks.nblocks();
        let groups = below.div_ceil(DEFAULT_FANIN);
        let mut tl = t.clone();
        tl.write_u64(level);
        level += 1;
        let s = spec.clone();
        let task: TaskOf = Arc::new(move |index: &[usize]| {
            let lo = index[0] * DEFAULT_FANIN;
            let hi = (lo + DEFAULT_FANIN).min(below);
            let s = s.clone();
            BlockTask {
                deps: (lo..hi)
                    .map(|j| (0, BlockIndex::from_slice(&[j])))
                    .collect(),
                func: Arc::new(move |v: &[Value]| {
                    let [first, rest @ ..] = v else {
                        return Err("internal: empty combine group".into());
                    };
                    if rest.is_empty() {
                        return Ok(first.clone());
                    }
                    let mut acc = (s.merge)(first.get::<P>()?, rest[0].get::<P>()?);
                    for r in &rest[1..] {
                        acc = (s.merge)(&acc, r.get::<P>()?);
                    }
                    Ok(partial_value(acc, s.nbytes))
                }),
            }
        });
        node = Arc::new(FnNode {
            meta: Meta::new::<u8>(
                &format!("{op}-combine"),
                tl,
                Chunks::from_blocks(vec![vec![1; groups]])?,
            ),
            inputs: vec![node],
            blockwise: false,
            nbytes: Some(Arc::new(move |_: &[usize]| predicted)),
            task,
        });
    }
    Ok(node)
}

/// A one-block node computing `f` of the values of the single blocks of `inputs`, with the
/// given chunks (one block per axis).
fn finish_node<U: Element>(
    op: &str,
    t: Tokenizer,
    chunks: Chunks,
    inputs: Vec<Arc<dyn Node>>,
    nbytes: Option<usize>,
    f: ValueFn,
) -> Arc<dyn Node> {
    let deps: Vec<(usize, BlockIndex)> = inputs
        .iter()
        .enumerate()
        .map(|(i, n)| root_dep(i, n))
        .collect();
    Arc::new(FnNode {
        meta: Meta::new::<U>(op, t, chunks),
        inputs,
        blockwise: true,
        nbytes: nbytes.map(|b| Arc::new(move |_: &[usize]| b) as SizeOf),
        task: Arc::new(move |_: &[usize]| BlockTask {
            deps: deps.clone(),
            func: f.clone(),
        }),
    })
}

/// A node with `x`'s chunks computing each block from `x`'s block and the single block of each
/// of `roots`.
fn lookup_node<U: Element>(
    op: &str,
    t: Tokenizer,
    x: &Arc<dyn Node>,
    roots: Vec<Arc<dyn Node>>,
    f: BlockFn<U>,
) -> Arc<dyn Node> {
    let mut inputs = vec![x.clone()];
    let root_deps: Vec<(usize, BlockIndex)> = roots
        .iter()
        .enumerate()
        .map(|(i, n)| root_dep(1 + i, n))
        .collect();
    inputs.extend(roots);
    Arc::new(FnNode {
        meta: Meta::new::<U>(op, t, x.meta().chunks.clone()),
        inputs,
        blockwise: true,
        nbytes: None,
        task: Arc::new(move |index: &[usize]| {
            let mut deps = vec![(0, BlockIndex::from_slice(index))];
            deps.extend(root_deps.iter().cloned());
            let f = f.clone();
            BlockTask {
                deps,
                func: Arc::new(move |v: &[Value]| Ok(block_value(f(v)?))),
            }
        }),
    })
}

/// A 1-d chunking of one block whose length is unknown until computed (`bound` is only for
/// planning memory), of the origin `origin` (arrays of the same origin have equal lengths).
fn unknown_single(bound: usize, origin: &str) -> Result<Chunks> {
    let mut o = Tokenizer::new();
    o.write_str(origin);
    Ok(Chunks::from_blocks(vec![vec![bound]])?.with_unknown_axis(0, o.finish()))
}

/// NumPy's sort order: NaN last and equal to NaN, `-0.0` equal to `0.0`.
fn order<T: Real>(a: &T, b: &T) -> Ordering {
    match (a.is_nan_value(), b.is_nan_value()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The number of distinct values memory is planned for, at most (a prediction: the real
/// number is known only after the run; planning for the input's length would refuse every
/// `unique` of a large array under a memory limit).
const DISTINCT_PLANNED: usize = 1 << 12;

/// The number of elements of `x`'s largest block.
fn largest_block<T: Element>(x: &BlockArray<T>) -> usize {
    x.chunks()
        .axes()
        .iter()
        .map(|a| a.iter().copied().max().unwrap_or(0))
        .product()
}

#[allow(clippy::ptr_arg)] // used as `fn(&Vec<E>) -> usize`
fn vec_bytes<E>(v: &Vec<E>) -> usize {
    v.len() * std::mem::size_of::<E>()
}

// ---------------------------------------------------------------------------------------------
// where, searchsorted, digitize, isin
// ---------------------------------------------------------------------------------------------

/// NumPy's one-argument `where(condition)`: the indices of the nonzero elements along each axis,
/// the same as [`BlockArray::nonzero`] (one 1-d array per axis, of equal unknown lengths).
///
/// ```
/// use blockarray::{BlockArray, where_indices};
/// let x = BlockArray::from_array(ndarray::arr1(&[0, 7, 0, 3]), 2)?;
/// let idx = where_indices(&x.greater(0)?)?;
/// assert_eq!(idx[0].compute()?.into_raw_vec_and_offset().0, vec![1, 3]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn where_indices<T: Element>(condition: &BlockArray<T>) -> Result<Vec<BlockArray<i64>>> {
    condition.nonzero()
}

/// Which side [`searchsorted`] returns for values equal to elements of the sorted array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Side {
    /// The first suitable position (`a[i-1] < v <= a[i]`).
    #[default]
    Left,
    /// The last suitable position (`a[i-1] <= v < a[i]`).
    Right,
}

/// The indices where the elements of `v` would be inserted into the sorted 1-d array `a` to
/// keep it sorted (`numpy.searchsorted(a, v, side)`), with `v`'s shape. NaN sorts last, as in
/// NumPy. `a` may be larger than memory: each block of `v` is searched in each block of `a`
/// and the counts are summed by a tree reduction. `a` must be sorted (NumPy's order); the
/// result is unspecified otherwise, as NumPy's.
///
/// ```
/// use blockarray::{BlockArray, Side, searchsorted};
/// let a = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0, 2.0, 3.0]), 3)?;
/// let v = BlockArray::from_array(ndarray::arr1(&[2.0, 0.5, f64::NAN]), 2)?;
/// let left = searchsorted(&a, &v, Side::Left)?.compute()?;
/// assert_eq!(left.into_raw_vec_and_offset().0, vec![1, 0, 4]);
/// let right = searchsorted(&a, &v, Side::Right)?.compute()?;
/// assert_eq!(right.into_raw_vec_and_offset().0, vec![3, 0, 4]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn searchsorted<T: Real>(
    a: &BlockArray<T>,
    v: &BlockArray<T>,
    side: Side,
) -> Result<BlockArray<i64>> {
    if a.ndim() != 1 {
        return Err(Error::shape(format!(
            "searchsorted: the sorted array must be 1-d, got shape {}",
            crate::error::fmt_shape(a.shape())
        )));
    }
    let nd = v.ndim();
    let nb_a = a.chunks().axis(0).len();
    let mut axes = v.chunks().axes().to_vec();
    axes.push(vec![1; nb_a]);
    let mut chunks = Chunks::from_blocks(axes)?;
    for (k, o) in v.chunks().unknown_axes().iter().enumerate() {
        if let Some(o) = o {
            chunks = chunks.with_unknown_axis(k, *o);
        }
    }
    let mut t = token_of(&[&v.node, &a.node]);
    t.write_u64(side as u64);
    let node: Arc<dyn Node> = Arc::new(FnNode {
        meta: Meta::new::<i64>("searchsorted-part", t, chunks),
        inputs: vec![v.node.clone(), a.node.clone()],
        blockwise: true,
        nbytes: None,
        task: Arc::new(move |index: &[usize]| BlockTask {
            deps: vec![
                (0, BlockIndex::from_slice(&index[..nd])),
                (1, BlockIndex::from_slice(&index[nd..])),
            ],
            func: Arc::new(move |vals: &[Value]| {
                let v = block_ref::<T>(&vals[0])?;
                let a = block_ref::<T>(&vals[1])?;
                let a = a
                    .as_slice()
                    .map(<[T]>::to_vec)
                    .unwrap_or_else(|| a.iter().copied().collect());
                let counts = v.mapv(|x| count_before(&a, &x, side) as i64);
                let mut shape = counts.shape().to_vec();
                shape.push(1);
                Ok(block_value(counts.into_shape_with_order(IxDyn(&shape))?))
            }),
        }),
    });
    BlockArray::<i64>::wrap(node).sum(Some(&[nd]), false)
}

/// How many elements of the sorted `a` go before `x` on `side`.
fn count_before<T: Real>(a: &[T], x: &T, side: Side) -> usize {
    match side {
        Side::Left => a.partition_point(|e| order(e, x) == Ordering::Less),
        Side::Right => a.partition_point(|e| order(e, x) != Ordering::Greater),
    }
}

/// The index of the bin of each element of `x` (`numpy.digitize(x, bins, right)`): with
/// increasing `bins`, `i` such that `bins[i-1] <= x < bins[i]` (`bins[i-1] < x <= bins[i]` when
/// `right`); with decreasing `bins`, `bins[i-1] > x >= bins[i]` (`bins[i-1] >= x > bins[i]`).
/// Values beyond the bins give `0` or `bins.len()`; NaN sorts last. `bins` must be monotonic
/// (an error names them otherwise).
///
/// ```
/// use blockarray::{BlockArray, digitize};
/// let x = BlockArray::from_array(ndarray::arr1(&[0.2, 6.4, 3.0, 1.6]), 2)?;
/// let i = digitize(&x, &[0.0, 1.0, 2.5, 4.0, 10.0], false)?.compute()?;
/// assert_eq!(i.into_raw_vec_and_offset().0, vec![1, 4, 3, 2]);
/// let d = digitize(&x, &[10.0, 4.0, 2.5, 1.0, 0.0], false)?.compute()?;
/// assert_eq!(d.into_raw_vec_and_offset().0, vec![4, 1, 2, 3]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn digitize<T: Real>(x: &BlockArray<T>, bins: &[T], right: bool) -> Result<BlockArray<i64>> {
    let increasing = bins
        .windows(2)
        .all(|w| order(&w[0], &w[1]) != Ordering::Greater);
    let decreasing = bins
        .windows(2)
        .all(|w| order(&w[0], &w[1]) != Ordering::Less);
    if !increasing && !decreasing {
        return Err(Error::unsupported(format!(
            "digitize: bins must be monotonically increasing or decreasing, got {bins:?}"
        )));
    }
    let mut t = token_of(&[&x.node]);
    t.write_u64(u64::from(right)).write_usize(bins.len());
    for b in bins {
        b.tokenize(&mut t);
    }
    // NumPy's sides are swapped: `right` searches on the left.
    let side = if right { Side::Left } else { Side::Right };
    let sorted: Arc<Vec<T>> = Arc::new(if increasing {
        bins.to_vec()
    } else {
        bins.iter().rev().copied().collect()
    });
    let n = bins.len() as i64;
    Ok(BlockArray::wrap(lookup_node::<i64>(
        "digitize",
        t,
        &x.node,
        vec![],
        Arc::new(move |v: &[Value]| {
            let b = block_ref::<T>(&v[0])?;
            Ok(b.mapv(|e| {
                let c = count_before(&sorted, &e, side) as i64;
                if increasing { c } else { n - c }
            }))
        }),
    )))
}

/// The sorted distinct values of `x` as one partial (NaNs collapsed into one).
fn sorted_set<T: Real>(op: &str, x: &BlockArray<T>) -> Result<Arc<dyn Node>> {
    let t = token_of(&[&x.node]);
    tree(
        op,
        &t,
        &x.node,
        &[],
        &[],
        TreeSpec::<Vec<T>> {
            chunk: Arc::new(|v: &[Value], _: &[usize]| {
                let mut s: Vec<T> = block_ref::<T>(&v[0])?.iter().copied().collect();
                s.sort_by(order);
                s.dedup_by(|a, b| order(a, b) == Ordering::Equal);
                Ok(s)
            }),
            identity: Arc::new(Vec::new),
            merge: Arc::new(|a: &Vec<T>, b: &Vec<T>| {
                let mut out = Vec::with_capacity(a.len() + b.len());
                let (mut i, mut j) = (0, 0);
                while i < a.len() && j < b.len() {
                    match order(&a[i], &b[j]) {
                        Ordering::Less => {
                            out.push(a[i]);
                            i += 1;
                        }
                        Ordering::Greater => {
                            out.push(b[j]);
                            j += 1;
                        }
                        Ordering::Equal => {
                            out.push(a[i]);
                            i += 1;
                            j += 1;
                        }
                    }
                }
                out.extend_from_slice(&a[i..]);
                out.extend_from_slice(&b[j..]);
                out
            }),
            nbytes: vec_bytes::<T>,
            predicted: x.len().min(DISTINCT_PLANNED) * T::itemsize(),
            predicted_chunk: largest_block(x).min(DISTINCT_PLANNED) * T::itemsize(),
        },
    )
}

impl<T: Real> BlockArray<T> {
    /// Whether each element is in `test_elements` (`numpy.isin(self, test_elements)`), with
    /// this array's shape. `test_elements` (any shape, flattened) is reduced to its sorted
    /// distinct values by a tree, then each block looks its elements up by binary search.
    /// Equality is NumPy's `==`: NaN is in nothing, `-0.0` is in `[0.0]`.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::arr1(&[1, 5, 3, 7]), 2)?;
    /// let test = BlockArray::from_array(ndarray::arr1(&[3, 1, 9]), 1)?;
    /// let got = x.isin(&test)?.compute()?;
    /// assert_eq!(got.into_raw_vec_and_offset().0, vec![true, false, true, false]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn isin(&self, test_elements: &BlockArray<T>) -> Result<BlockArray<bool>> {
        let set = sorted_set("isin-set", test_elements)?;
        let t = token_of(&[&self.node, &set]);
        Ok(BlockArray::wrap(lookup_node::<bool>(
            "isin",
            t,
            &self.node,
            vec![set],
            Arc::new(|v: &[Value]| {
                let b = block_ref::<T>(&v[0])?;
                let set = v[1].get::<Vec<T>>()?;
                Ok(b.mapv(|e| !e.is_nan_value() && set.binary_search_by(|s| order(s, &e)).is_ok()))
            }),
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// bincount
// ---------------------------------------------------------------------------------------------

/// The counts of a block of non-negative integers, or an error naming the first negative one
/// (its position in the whole array) or one too large to count in memory.
fn block_counts<T: Real, C: Copy + Default + std::ops::AddAssign>(
    x: &ArrayD<T>,
    start: usize,
    weights: Option<&ArrayD<f64>>,
    one: C,
    weight: impl Fn(f64) -> C,
) -> std::result::Result<Vec<C>, TaskError> {
    let mut max = None::<usize>;
    for (i, e) in x.iter().enumerate() {
        let v = e.to_i128().unwrap_or(-1);
        if v < 0 {
            return Err(format!(
                "bincount: the input holds the negative value {e:?} at position {}; bincount \
                 counts non-negative integers",
                start + i
            )
            .into());
        }
        let v = usize::try_from(v).unwrap_or(usize::MAX);
        max = Some(max.map_or(v, |m: usize| m.max(v)));
    }
    let len = max.map_or(0, |m| m.saturating_add(1));
    let bytes = len.saturating_mul(std::mem::size_of::<C>());
    if dag_core::available_memory().is_some_and(|a| bytes > a) || len == usize::MAX {
        return Err(format!(
            "bincount: the input holds the value {}, whose {} counts do not fit in memory",
            len - 1,
            dag_core::fmt_bytes(bytes)
        )
        .into());
    }
    let mut out = vec![C::default(); len];
    match weights {
        None => {
            for e in x.iter() {
                out[e.to_i128().unwrap_or(0) as usize] += one;
            }
        }
        Some(w) => {
            for (e, &w) in x.iter().zip(w.iter()) {
                out[e.to_i128().unwrap_or(0) as usize] += weight(w);
            }
        }
    }
    Ok(out)
}

fn add_counts<C: Copy + Default + std::ops::AddAssign>(a: &Vec<C>, b: &Vec<C>) -> Vec<C> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut out = long.clone();
    for (o, &s) in out.iter_mut().zip(short.iter()) {
        *o += s;
    }
    out
}

fn bincount_impl<T: Real, C: Element + std::ops::AddAssign>(
    x: &BlockArray<T>,
    weights: Option<&BlockArray<f64>>,
    minlength: usize,
    one: C,
    weight: fn(f64) -> C,
) -> Result<BlockArray<C>> {
    if T::from_i128(0).is_none() {
        return Err(Error::type_error(format!(
            "bincount counts non-negative integers, got an array of {}",
            T::DTYPE
        )));
    }
    if x.ndim() != 1 {
        return Err(Error::shape(format!(
            "bincount: the input must be 1-d, got shape {}",
            crate::error::fmt_shape(x.shape())
        )));
    }
    let predicted = minlength
        .max(1)
        .checked_mul(C::itemsize())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::memory(format!(
                "bincount: minlength = {minlength} counts of {} bytes would hold more than \
                 isize::MAX bytes",
                C::itemsize()
            ))
        })?;
    let weights = match weights {
        None => None,
        Some(w) => {
            if w.shape() != x.shape() {
                return Err(Error::shape_mismatch(
                    "bincount: the weights must have the input's shape",
                    x.shape(),
                    w.shape(),
                ));
            }
            x.chunks().require_known("bincount with weights")?;
            w.chunks().require_known("bincount weights")?;
            Some(rechunk_direct(&w.node, x.chunks().clone())?)
        }
    };
    let mut t = match &weights {
        None => token_of(&[&x.node]),
        Some(w) => token_of(&[&x.node, w]),
    };
    t.write_usize(minlength).write_str(C::DTYPE);
    let starts: Vec<usize> = {
        let mut s = vec![0];
        for &c in x.chunks().axis(0) {
            s.push(s.last().copied().unwrap_or(0) + c);
        }
        s
    };
    let weighted = weights.is_some();
    let aligned: Vec<Arc<dyn Node>> = weights.into_iter().collect();
    let root = tree(
        "bincount",
        &t,
        &x.node,
        &aligned,
        &[],
        TreeSpec::<Vec<C>> {
            chunk: Arc::new(move |v: &[Value], bi: &[usize]| {
                let b = block_ref::<T>(&v[0])?;
                let w = if weighted {
                    Some(block_ref::<f64>(&v[1])?)
                } else {
                    None
                };
                // Positions in errors are right only when chunks are known; they are unknown
                // only after a mask, where the position in the input is what a user can use
                // least anyway.
                block_counts(b, starts.get(bi[0]).copied().unwrap_or(0), w, one, weight)
            }),
            identity: Arc::new(Vec::new),
            merge: Arc::new(add_counts::<C>),
            nbytes: vec_bytes::<C>,
            predicted,
            predicted_chunk: predicted,
        },
    )?;
    let name = root.meta().name.to_string();
    Ok(BlockArray::wrap(finish_node::<C>(
        "bincount",
        t,
        unknown_single(minlength.max(1), &name)?,
        vec![root],
        None,
        Arc::new(move |v: &[Value]| {
            let mut c = v[0].get::<Vec<C>>()?.clone();
            if c.len() < minlength {
                c.resize(minlength, C::default());
            }
            Ok(block_value(ArrayD::from_shape_vec(IxDyn(&[c.len()]), c)?))
        }),
    )))
}

/// The number of occurrences of each value in the 1-d array of non-negative integers `x`
/// (`numpy.bincount(x, minlength=minlength)`): `max(x) + 1` counts, at least `minlength`.
///
/// The length depends on the values, so the result is one block of unknown length (bounded
/// by `minlength` for memory planning): lazy, like every other result; reductions and
/// `compute` work on it directly, `compute_chunk_sizes` makes it known. A tree reduction adds
/// up per-block count vectors. A negative value fails the run with an error naming it and its
/// position; floating-point input is refused when the expression is built, and so is a
/// `minlength` whose counts would hold more than `isize::MAX` bytes.
///
/// ```
/// use blockarray::{BlockArray, bincount};
/// let x = BlockArray::from_array(ndarray::arr1(&[0i64, 1, 1, 3, 2, 1, 7]), 3)?;
/// let c = bincount(&x, 0)?.compute()?;
/// assert_eq!(c.into_raw_vec_and_offset().0, vec![1, 3, 1, 1, 0, 0, 0, 1]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn bincount<T: Real>(x: &BlockArray<T>, minlength: usize) -> Result<BlockArray<i64>> {
    bincount_impl::<T, i64>(x, None, minlength, 1, |w| w as i64)
}

/// The sum of `weights` for each value of `x` (`numpy.bincount(x, weights, minlength)`), as
/// `f64`; see [`bincount`]. `weights` must have `x`'s shape (it is rechunked like `x`).
///
/// ```
/// use blockarray::{BlockArray, bincount_weighted};
/// let x = BlockArray::from_array(ndarray::arr1(&[0i64, 1, 1, 2]), 2)?;
/// let w = BlockArray::from_array(ndarray::arr1(&[0.5, 1.0, 0.25, 2.0]), 3)?;
/// let c = bincount_weighted(&x, &w, 5)?.compute()?;
/// assert_eq!(c.into_raw_vec_and_offset().0, vec![0.5, 1.25, 2.0, 0.0, 0.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn bincount_weighted<T: Real>(
    x: &BlockArray<T>,
    weights: &BlockArray<f64>,
    minlength: usize,
) -> Result<BlockArray<f64>> {
    bincount_impl::<T, f64>(x, Some(weights), minlength, 1.0, |w| w)
}

// ---------------------------------------------------------------------------------------------
// histogram, histogramdd
// ---------------------------------------------------------------------------------------------

/// The bins of one dimension of a [`histogram`] or [`histogramdd`].
#[derive(Clone, Debug, PartialEq)]
pub enum Bins {
    /// This many equal-width bins over the range (given, or the data's min and max).
    Count(usize),
    /// The bin edges, increasing monotonically: bin `i` is `[edges[i], edges[i+1])`, the last
    /// bin also holds its right edge.
    Edges(Vec<f64>),
}

impl From<usize> for Bins {
    fn from(n: usize) -> Bins {
        Bins::Count(n)
    }
}

impl From<Vec<f64>> for Bins {
    fn from(edges: Vec<f64>) -> Bins {
        Bins::Edges(edges)
    }
}

/// The bin of `v` among `edges` (NumPy's rule: left-closed bins, the last one closed), or
/// `None` when `v` is outside them or NaN.
fn bin_of(edges: &[f64], v: f64) -> Option<usize> {
    let n = edges.len().checked_sub(1)?;
    if n == 0 || v.is_nan() || v < edges[0] || v > edges[n] {
        return None;
    }
    if v == edges[n] {
        return Some(n - 1);
    }
    // At least 1 for increasing edges (edges[0] <= v); 0 only for edges that are not (NaN),
    // which then hold no value.
    edges.partition_point(|&e| e <= v).checked_sub(1)
}

/// Count, then per dimension the (min, max) of the values (NaN if any is NaN).
type MinMax = (usize, Vec<(f64, f64)>);

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The range of `n` equal bins over `[lo, hi]` (widened by 0.5 on each side when `lo == hi`,
/// as NumPy) and their width; the reason, as NumPy's, when `n` finite-sized bins cannot be
/// made (a width `hi - lo` that overflows to infinity, or a bin width that does or that
/// rounds to 0).
fn equal_bins(lo: f64, hi: f64, n: usize) -> std::result::Result<(f64, f64, f64), String> {
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let step = (hi - lo) / n as f64;
    if !((hi - lo).is_finite() && step.is_finite() && step > 0.0) {
        return Err(too_many_bins(lo, hi, n));
    }
    Ok((lo, hi, step))
}

/// NumPy's error for `n` equal bins over `[lo, hi]` whose edges are not finite or not
/// strictly increasing.
fn too_many_bins(lo: f64, hi: f64, n: usize) -> String {
    format!("too many bins for the data range [{lo}, {hi}]: cannot create {n} finite-sized bins")
}

/// The bin edges of every dimension (NumPy's `_get_outer_edges` and `linspace`).
fn all_edges(
    bins: &[Bins],
    ranges: &[Option<(f64, f64)>],
    seen: Option<&MinMax>,
) -> std::result::Result<Vec<Vec<f64>>, TaskError> {
    let mut out = Vec::with_capacity(bins.len());
    for (i, b) in bins.iter().enumerate() {
        match b {
            Bins::Edges(e) => out.push(e.clone()),
            Bins::Count(n) => {
                let (lo, hi) = match (ranges[i], seen) {
                    (Some(r), _) => r,
                    (None, Some((0, _))) | (None, None) => (0.0, 1.0),
                    (None, Some((_, mm))) => {
                        let (lo, hi) = mm[i];
                        if !(lo.is_finite() && hi.is_finite()) {
                            return Err(format!(
                                "histogram: autodetected range of [{lo}, {hi}] is not finite \
                                 (dimension {i}); give a range, or drop NaN and infinite values"
                            )
                            .into());
                        }
                        (lo, hi)
                    }
                };
                let (lo, hi, step) = equal_bins(lo, hi, *n)
                    .map_err(|why| format!("histogram: {why} (dimension {i})"))?;
                let mut e: Vec<f64> = (0..=*n).map(|k| k as f64 * step + lo).collect();
                e[*n] = hi;
                // A step below the spacing of floats near `lo` makes equal edges (NumPy's
                // check: values would fall into the wrong bins).
                if e.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!(
                        "histogram: {} (dimension {i})",
                        too_many_bins(lo, hi, *n)
                    )
                    .into());
                }
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// The histogram of `x` (`D == 1`, every element a sample, when `flat`) or of the rows of the
/// `(N, D)` array `x`. `weights` has `x`'s chunks (flat) or `(N, 1)` chunked like `x`'s rows.
#[allow(clippy::too_many_arguments)] // private: the options of histogram and histogramdd
fn hist_engine<T: Real>(
    op: &str,
    x: &Arc<dyn Node>,
    flat: bool,
    bins: Vec<Bins>,
    ranges: Vec<Option<(f64, f64)>>,
    weights: Option<Arc<dyn Node>>,
    density: bool,
    hold: usize,
) -> Result<(BlockArray<f64>, Vec<BlockArray<f64>>)> {
    let d = bins.len();
    for (i, b) in bins.iter().enumerate() {
        match b {
            Bins::Count(0) => {
                return Err(Error::unsupported(format!(
                    "{op}: bins[{i}] must be positive when a number of bins, got 0"
                )));
            }
            Bins::Edges(e) if e.is_empty() => {
                return Err(Error::unsupported(format!(
                    "{op}: bins[{i}] must hold at least one edge"
                )));
            }
            Bins::Edges(e)
                if e.windows(2)
                    .any(|w| matches!(w[0].partial_cmp(&w[1]), None | Some(Ordering::Greater))) =>
            {
                return Err(Error::unsupported(format!(
                    "{op}: bins[{i}] must increase monotonically, got {e:?}"
                )));
            }
            _ => {}
        }
        // As NumPy: a range bounds counted bins; with explicit edges it is not read.
        if let (Some((lo, hi)), Bins::Count(_)) = (ranges[i], b) {
            if !(lo.is_finite() && hi.is_finite()) {
                return Err(Error::unsupported(format!(
                    "{op}: the range [{lo}, {hi}] of dimension {i} is not finite"
                )));
            }
            if lo > hi {
                return Err(Error::unsupported(format!(
                    "{op}: max must be larger than min in the range [{lo}, {hi}] of dimension {i}"
                )));
            }
            if let Bins::Count(n) = b {
                equal_bins(lo, hi, *n)
                    .map_err(|why| Error::unsupported(format!("{op}: {why} (dimension {i})")))?;
            }
        }
    }
    let nbins: Vec<usize> = bins
        .iter()
        .map(|b| match b {
            Bins::Count(n) => *n,
            Bins::Edges(e) => e.len() - 1,
        })
        .collect();
    let total = nbins
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n))
        .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
        .ok_or_else(|| Error::memory(format!("{op}: {nbins:?} bins are too many to count")))?;
    let edge_bytes = nbins
        .iter()
        .try_fold(0usize, |acc, &n| {
            n.checked_add(1)?.checked_mul(8)?.checked_add(acc)
        })
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::memory(format!(
                "{op}: the edges of {nbins:?} bins are too many to hold"
            ))
        })?;
    let mut t = match &weights {
        None => token_of(&[x]),
        Some(w) => token_of(&[x, w]),
    };
    t.write_str(op)
        .write_u64(u64::from(flat))
        .write_u64(u64::from(density));
    for (b, r) in bins.iter().zip(&ranges) {
        match b {
            Bins::Count(n) => t.write_u64(0).write_usize(*n),
            Bins::Edges(e) => {
                t.write_u64(1).write_usize(e.len());
                for &v in e {
                    t.write_f64(v);
                }
                &mut t
            }
        };
        match r {
            None => t.write_u64(0),
            Some((lo, hi)) => t.write_u64(1).write_f64(*lo).write_f64(*hi),
        };
    }
    // The range of the data, when some dimension needs it.
    let auto = bins
        .iter()
        .zip(&ranges)
        .any(|(b, r)| matches!(b, Bins::Count(_)) && r.is_none());
    let mut edge_inputs = Vec::new();
    if auto {
        edge_inputs.push(tree(
            &format!("{op}-range"),
            &t,
            x,
            &[],
            &[],
            TreeSpec::<MinMax> {
                chunk: Arc::new(move |v: &[Value], _: &[usize]| {
                    let b = block_ref::<T>(&v[0])?;
                    let mut mm = vec![(f64::INFINITY, f64::NEG_INFINITY); d];
                    let mut count = 0;
                    for (i, e) in b.iter().enumerate() {
                        let k = if flat { 0 } else { i % d };
                        let e = e.to_f64_lossy();
                        mm[k] = (nan_min(mm[k].0, e), nan_max(mm[k].1, e));
                        count += 1;
                    }
                    Ok((count, mm))
                }),
                identity: Arc::new(move || (0, vec![(f64::INFINITY, f64::NEG_INFINITY); d])),
                merge: Arc::new(|a: &MinMax, b: &MinMax| {
                    let mm =
                        a.1.iter()
                            .zip(&b.1)
                            .map(|(p, q)| (nan_min(p.0, q.0), nan_max(p.1, q.1)))
                            .collect();
                    (a.0 + b.0, mm)
                }),
                nbytes: |p: &MinMax| 8 + p.1.len() * 16,
                predicted: 8 + d * 16,
                predicted_chunk: 8 + d * 16,
            },
        )?);
    }
    let (b2, r2) = (bins.clone(), ranges.clone());
    let edges = finish_node::<u8>(
        &format!("{op}-edges"),
        t.clone(),
        Chunks::from_blocks(vec![vec![1]])?,
        edge_inputs,
        Some(edge_bytes),
        Arc::new(move |v: &[Value]| {
            let seen = match v.first() {
                Some(s) => Some(s.get::<MinMax>()?),
                None => None,
            };
            let e = all_edges(&b2, &r2, seen)?;
            let n = e.iter().map(|e| e.len() * 8).sum();
            Ok(Value::with_nbytes(e, n))
        }),
    );
    let weighted = weights.is_some();
    let strides = bin_strides(&nbins);
    let aligned: Vec<Arc<dyn Node>> = weights.into_iter().collect();
    let strides2 = strides.clone();
    // With an autodetected range the counts pass comes after a pass over all of `x`: an input
    // larger than `hold` is read afresh for it (each block computed again inside its task)
    // rather than kept in memory from the first pass to the second.
    let again =
        auto && crate::plan::chunks::shape_bytes(x.meta().chunks.shape(), T::itemsize()) > hold;
    let counts_input = if again {
        crate::expr::lower::reread(x, 1)
    } else {
        x.clone()
    };
    t.write_u64(u64::from(again));
    let counts_root = tree(
        op,
        &t,
        &counts_input,
        &aligned,
        std::slice::from_ref(&edges),
        TreeSpec::<Vec<f64>> {
            chunk: Arc::new(move |v: &[Value], _: &[usize]| {
                let b = block_ref::<T>(&v[0])?;
                let w = if weighted {
                    Some(block_ref::<f64>(&v[1])?)
                } else {
                    None
                };
                let edges = v[v.len() - 1].get::<Vec<Vec<f64>>>()?;
                let mut out = vec![0.0; total];
                let vals: Vec<f64> = b.iter().map(|e| e.to_f64_lossy()).collect();
                let ws: Option<Vec<f64>> = w.map(|w| w.iter().copied().collect());
                let per = if flat { 1 } else { d };
                for (r, row) in vals.chunks(per).enumerate() {
                    let mut at = 0;
                    let mut inside = true;
                    for (k, &e) in row.iter().enumerate() {
                        match bin_of(&edges[k], e) {
                            Some(i) => at += i * strides2[k],
                            None => {
                                inside = false;
                                break;
                            }
                        }
                    }
                    if inside {
                        out[at] += ws.as_ref().map_or(1.0, |w| w[r]);
                    }
                }
                Ok(out)
            }),
            identity: Arc::new(move || vec![0.0; total]),
            merge: Arc::new(|a: &Vec<f64>, b: &Vec<f64>| {
                a.iter().zip(b).map(|(x, y)| x + y).collect()
            }),
            nbytes: vec_bytes::<f64>,
            predicted: total * 8,
            predicted_chunk: total * 8,
        },
    )?;
    let nb2 = nbins.clone();
    let strides = bin_strides(&nbins);
    let counts = finish_node::<f64>(
        op,
        t.clone(),
        Chunks::from_blocks(nbins.iter().map(|&n| vec![n]).collect())?,
        vec![counts_root, edges.clone()],
        None,
        Arc::new(move |v: &[Value]| {
            let mut c = v[0].get::<Vec<f64>>()?.clone();
            if density {
                let edges = v[1].get::<Vec<Vec<f64>>>()?;
                let s: f64 = c.iter().sum();
                for (at, x) in c.iter_mut().enumerate() {
                    for k in 0..edges.len() {
                        let i = at / strides[k] % nb2[k];
                        *x /= edges[k][i + 1] - edges[k][i];
                    }
                    *x /= s;
                }
            }
            Ok(block_value(ArrayD::from_shape_vec(IxDyn(&nb2), c)?))
        }),
    );
    let edge_arrays = (0..d)
        .map(|k| {
            let mut tk = t.clone();
            tk.write_usize(k);
            Ok(BlockArray::wrap(finish_node::<f64>(
                &format!("{op}-edges"),
                tk,
                Chunks::from_blocks(vec![vec![nbins[k] + 1]])?,
                vec![edges.clone()],
                None,
                Arc::new(move |v: &[Value]| {
                    let e = v[0].get::<Vec<Vec<f64>>>()?[k].clone();
                    Ok(block_value(ArrayD::from_shape_vec(IxDyn(&[e.len()]), e)?))
                }),
            )))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((BlockArray::wrap(counts), edge_arrays))
}

/// The histogram of the elements of `x` (flattened), with its bin edges
/// (`numpy.histogram(x, bins, range, density=density, weights=weights)`), both lazy.
///
/// * `bins`: a number of equal-width bins over `range` — or, without a range, over the data's
///   min and max, found by a tree reduction in the same run (an error when they are not finite,
///   e.g. with NaN, as NumPy's; `[0, 1]` for an empty array; widened by ±0.5 when equal) — or
///   the edges themselves (increasing monotonically). Bins are closed on the left, the last
///   one on both sides; values outside them (and NaN) are not counted. As NumPy, a range
///   whose bins cannot be finite-sized (its width overflows to infinity, as for
///   `(-1e308, 1e308)`, or a bin's width does or rounds to 0) is an error ("too many bins
///   for the data range"): when the expression is built for a given range, when run for an
///   autodetected one.
/// * `weights` (`x`'s shape): each value counts its weight instead of 1.
/// * `density`: counts divided by their sum and by the bin widths (a density integrating to 1).
///
/// Counts are `f64` whatever the options (NumPy gives `int64` without weights or density;
/// they are exact up to 2^53). Values and edges are compared as `f64` (NumPy computes the edges
/// of `float32` data in `float32`). The per-block counts add up through a tree reduction:
/// one task per block plus a few combine tasks, each holding one vector of counts. An
/// autodetected range takes a first pass over `x` (a min/max tree); an `x` larger than
/// [`HOLD_BYTES`] (4 GiB) is then read again for the counts
/// (its blocks computed a second time) instead of being held in memory between the passes.
///
/// ```
/// use blockarray::{BlockArray, Bins, histogram};
/// let x = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0, 1.0, 4.0, 2.5]), 2)?;
/// let (counts, edges) = histogram(&x, Bins::Count(3), None, None, false)?;
/// assert_eq!(counts.compute()?.into_raw_vec_and_offset().0, vec![2.0, 2.0, 1.0]);
/// assert_eq!(edges.compute()?.into_raw_vec_and_offset().0, vec![1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn histogram<T: Real>(
    x: &BlockArray<T>,
    bins: impl Into<Bins>,
    range: Option<(f64, f64)>,
    weights: Option<&BlockArray<f64>>,
    density: bool,
) -> Result<(BlockArray<f64>, BlockArray<f64>)> {
    let weights = match weights {
        None => None,
        Some(w) => {
            if w.shape() != x.shape() {
                return Err(Error::shape_mismatch(
                    "histogram: the weights must have the input's shape",
                    x.shape(),
                    w.shape(),
                ));
            }
            x.chunks().require_known("histogram with weights")?;
            w.chunks().require_known("histogram weights")?;
            Some(rechunk_direct(&w.node, x.chunks().clone())?)
        }
    };
    let (counts, mut edges) = hist_engine::<T>(
        "histogram",
        &x.node,
        true,
        vec![bins.into()],
        vec![range],
        weights,
        density,
        HOLD_BYTES,
    )?;
    Ok((counts, edges.remove(0)))
}

/// The multidimensional histogram of `sample`, an `(N, D)` array of `N` points in `D`
/// dimensions (`numpy.histogramdd`), with the bin edges of each dimension, all lazy.
///
/// `bins` holds one [`Bins`] per dimension, or one for all; `range` one `(min, max)` per
/// dimension (used by the dimensions binned by number). Points outside the bins of any
/// dimension are not counted. `weights` (length `N`) and `density` as for [`histogram`];
/// counts have shape `(bins_0, …, bins_{D-1})`.
///
/// ```
/// use blockarray::{BlockArray, Bins, histogramdd};
/// let pts = ndarray::arr2(&[[0.0, 0.0], [1.0, 1.0], [0.2, 0.9], [1.0, 0.1]]);
/// let sample = BlockArray::from_array(pts, [3, 2])?;
/// let (counts, edges) = histogramdd(&sample, &[Bins::Count(2)], None, None, false)?;
/// assert_eq!(counts.compute()?, ndarray::arr2(&[[1.0, 1.0], [1.0, 1.0]]).into_dyn());
/// assert_eq!(edges[1].compute()?.into_raw_vec_and_offset().0, vec![0.0, 0.5, 1.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn histogramdd<T: Real>(
    sample: &BlockArray<T>,
    bins: &[Bins],
    range: Option<&[(f64, f64)]>,
    weights: Option<&BlockArray<f64>>,
    density: bool,
) -> Result<(BlockArray<f64>, Vec<BlockArray<f64>>)> {
    if sample.ndim() != 2 {
        return Err(Error::shape(format!(
            "histogramdd: the sample must be 2-d (N points, D dimensions), got shape {}",
            crate::error::fmt_shape(sample.shape())
        )));
    }
    let (n, d) = (sample.shape()[0], sample.shape()[1]);
    if d == 0 {
        return Err(Error::shape(
            "histogramdd: the sample has no dimensions (shape (N, 0))".to_string(),
        ));
    }
    let bins = match bins.len() {
        1 => vec![bins[0].clone(); d],
        k if k == d => bins.to_vec(),
        k => {
            return Err(Error::shape(format!(
                "histogramdd: {k} bins given for a sample of {d} dimensions (give one or {d})"
            )));
        }
    };
    let ranges = match range {
        None => vec![None; d],
        Some(r) if r.len() == d => r.iter().map(|&r| Some(r)).collect(),
        Some(r) => {
            return Err(Error::shape(format!(
                "histogramdd: {} ranges given for a sample of {d} dimensions",
                r.len()
            )));
        }
    };
    // A point's coordinates must be in one block.
    let x = if sample.chunks().axis(1).len() > 1 {
        sample
            .chunks()
            .require_known("histogramdd of a sample chunked along dimensions")?;
        let want = Chunks::from_blocks(vec![sample.chunks().axis(0).to_vec(), vec![d]])?;
        rechunk_direct(&sample.node, want)?
    } else {
        sample.node.clone()
    };
    let weights = match weights {
        None => None,
        Some(w) => {
            if w.shape() != [n] {
                return Err(Error::shape_mismatch(
                    "histogramdd: the weights must have one value per point",
                    &[n],
                    w.shape(),
                ));
            }
            sample.chunks().require_known("histogramdd with weights")?;
            w.chunks().require_known("histogramdd weights")?;
            let w2 = w.reshape(&[n, 1])?;
            let want = Chunks::from_blocks(vec![x.meta().chunks.axis(0).to_vec(), vec![1]])?;
            Some(rechunk_direct(&w2.node, want)?)
        }
    };
    hist_engine::<T>(
        "histogramdd",
        &x,
        false,
        bins,
        ranges,
        weights,
        density,
        HOLD_BYTES,
    )
}

// ---------------------------------------------------------------------------------------------
// unique
// ---------------------------------------------------------------------------------------------

/// What [`BlockArray::unique_with`] returns besides the values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UniqueOptions {
    /// The flat index of the first occurrence of each value (`return_index`).
    pub index: bool,
    /// For each element, the index of its value among the unique values (`return_inverse`).
    pub inverse: bool,
    /// The number of occurrences of each value (`return_counts`).
    pub counts: bool,
}

/// The result of [`BlockArray::unique_with`]: lazy arrays; the values, indices and counts are
/// one block each of an unknown length they share (so they combine elementwise).
#[derive(Clone, Debug)]
pub struct Unique<T: Element> {
    /// The sorted distinct values.
    pub values: BlockArray<T>,
    /// The flat (C-order) index of each value's first occurrence, if asked for.
    pub index: Option<BlockArray<i64>>,
    /// Each element's position among `values`, with the input's shape, if asked for.
    pub inverse: Option<BlockArray<i64>>,
    /// How many times each value occurs, if asked for.
    pub counts: Option<BlockArray<i64>>,
}

/// A sorted run of distinct values with, when asked for, their first flat indices and counts.
#[derive(Clone)]
struct Distinct<T> {
    values: Vec<T>,
    first: Vec<i64>,
    counts: Vec<i64>,
}

fn distinct_bytes<T>(p: &Distinct<T>) -> usize {
    p.values.len() * std::mem::size_of::<T>() + (p.first.len() + p.counts.len()) * 8
}

fn merge_distinct<T: Real>(a: &Distinct<T>, b: &Distinct<T>) -> Distinct<T> {
    let (fi, co) = (
        !a.first.is_empty() || !b.first.is_empty(),
        !a.counts.is_empty() || !b.counts.is_empty(),
    );
    let cap = a.values.len() + b.values.len();
    let mut out = Distinct {
        values: Vec::with_capacity(cap),
        first: Vec::with_capacity(if fi { cap } else { 0 }),
        counts: Vec::with_capacity(if co { cap } else { 0 }),
    };
    let (mut i, mut j) = (0, 0);
    let take = |out: &mut Distinct<T>, p: &Distinct<T>, k: usize| {
        out.values.push(p.values[k]);
        if fi {
            out.first.push(p.first[k]);
        }
        if co {
            out.counts.push(p.counts[k]);
        }
    };
    while i < a.values.len() && j < b.values.len() {
        match order(&a.values[i], &b.values[j]) {
            Ordering::Less => {
                take(&mut out, a, i);
                i += 1;
            }
            Ordering::Greater => {
                take(&mut out, b, j);
                j += 1;
            }
            Ordering::Equal => {
                // Blocks in block order are not in element order (n-d grids): keep the
                // earlier occurrence when it is known.
                if fi && b.first[j] < a.first[i] {
                    take(&mut out, b, j);
                    if co {
                        *out.counts.last_mut().expect("just pushed") += a.counts[i];
                    }
                    i += 1;
                    j += 1;
                    continue;
                }
                take(&mut out, a, i);
                if co {
                    *out.counts.last_mut().expect("just pushed") += b.counts[j];
                }
                i += 1;
                j += 1;
            }
        }
    }
    for k in i..a.values.len() {
        take(&mut out, a, k);
    }
    for k in j..b.values.len() {
        take(&mut out, b, k);
    }
    out
}

impl<T: Real> BlockArray<T> {
    /// The sorted distinct elements (`numpy.unique`), NaNs collapsed into one (NumPy 2's
    /// `equal_nan=True`); see [`unique_with`](Self::unique_with).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::arr1(&[3.0, 1.0, f64::NAN, 3.0, f64::NAN, 2.0]), 4)?;
    /// let u = x.unique()?.compute()?.into_raw_vec_and_offset().0;
    /// assert_eq!(&u[..3], &[1.0, 2.0, 3.0]);
    /// assert!(u[3].is_nan() && u.len() == 4);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn unique(&self) -> Result<BlockArray<T>> {
        Ok(self.unique_with(UniqueOptions::default())?.values)
    }

    /// The sorted distinct elements with, as asked by `options`, the flat index of each one's
    /// first occurrence (`return_index`), each element's index among them (`return_inverse`,
    /// with this array's shape, as NumPy 2 does for a flattened unique) and their counts
    /// (`return_counts`).
    ///
    /// Each block is sorted and deduplicated, then a tree merges the sorted runs (up to
    /// [`DEFAULT_FANIN`] per task) into one: memory grows with the number
    /// of distinct values, not with the array. The result is one block whose length is
    /// unknown until computed (`compute_chunk_sizes` makes it known); the inverse is computed
    /// blockwise by binary search in the unique values. NaNs count as one value (NumPy 2);
    /// `-0.0` and `0.0` are one value (which of the two is kept is unspecified, as in NumPy).
    ///
    /// `compute` checks an in-memory result against the memory available by its bound (the
    /// input's length): for the unique values of an input larger than memory, call
    /// `compute_chunk_sizes` first (one more pass of the tree), which makes the length known.
    ///
    /// ```
    /// use blockarray::{BlockArray, UniqueOptions};
    /// let x = BlockArray::from_array(ndarray::arr2(&[[5, 1], [5, 2]]), [1, 2])?;
    /// let all = UniqueOptions { index: true, inverse: true, counts: true };
    /// let u = x.unique_with(all)?;
    /// assert_eq!(u.values.compute()?.into_raw_vec_and_offset().0, vec![1, 2, 5]);
    /// assert_eq!(u.index.unwrap().compute()?.into_raw_vec_and_offset().0, vec![1, 3, 0]);
    /// assert_eq!(u.counts.unwrap().compute()?.into_raw_vec_and_offset().0, vec![1, 1, 2]);
    /// assert_eq!(u.inverse.unwrap().compute()?, ndarray::arr2(&[[2i64, 0], [2, 1]]).into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn unique_with(&self, options: UniqueOptions) -> Result<Unique<T>> {
        if options.index {
            self.chunks().require_known("unique with first indices")?;
        }
        let mut t = token_of(&[&self.node]);
        t.write_u64(u64::from(options.index))
            .write_u64(u64::from(options.counts));
        let (fi, co) = (options.index, options.counts);
        let shape = self.shape().to_vec();
        let chunks = self.chunks().clone();
        let root = tree(
            "unique",
            &t,
            &self.node,
            &[],
            &[],
            TreeSpec::<Distinct<T>> {
                chunk: Arc::new(move |v: &[Value], bi: &[usize]| {
                    let b = block_ref::<T>(&v[0])?;
                    let mut pairs: Vec<(T, i64)> = if fi {
                        let start = chunks.block_start(bi);
                        let strides: Vec<usize> = (0..shape.len())
                            .map(|k| shape[k + 1..].iter().product())
                            .collect();
                        b.indexed_iter()
                            .map(|(ix, &e)| {
                                let flat: usize = (0..shape.len())
                                    .map(|k| (start[k] + ix[k]) * strides[k])
                                    .sum();
                                (e, flat as i64)
                            })
                            .collect()
                    } else {
                        // Without indices, values alone: half the bytes to sort, and an
                        // unstable sort (which of `-0.0` and `0.0` is kept is unspecified).
                        let mut vals: Vec<T> = b.iter().copied().collect();
                        vals.sort_unstable_by(order);
                        let mut out = Distinct {
                            values: Vec::new(),
                            first: Vec::new(),
                            counts: Vec::new(),
                        };
                        for e in vals {
                            match out.values.last() {
                                Some(l) if order(l, &e) == Ordering::Equal => {
                                    if co {
                                        *out.counts.last_mut().expect("pushed with it") += 1;
                                    }
                                }
                                _ => {
                                    out.values.push(e);
                                    if co {
                                        out.counts.push(1);
                                    }
                                }
                            }
                        }
                        return Ok(out);
                    };
                    // Stable: among equal values the first occurrence comes first.
                    pairs.sort_by(|a, b| order(&a.0, &b.0));
                    let mut out = Distinct {
                        values: Vec::new(),
                        first: Vec::new(),
                        counts: Vec::new(),
                    };
                    for (e, at) in pairs {
                        if out
                            .values
                            .last()
                            .is_some_and(|l| order(l, &e) == Ordering::Equal)
                        {
                            if co {
                                *out.counts.last_mut().expect("pushed with the value") += 1;
                            }
                            continue;
                        }
                        out.values.push(e);
                        if fi {
                            out.first.push(at);
                        }
                        if co {
                            out.counts.push(1);
                        }
                    }
                    Ok(out)
                }),
                identity: Arc::new(|| Distinct {
                    values: Vec::new(),
                    first: Vec::new(),
                    counts: Vec::new(),
                }),
                merge: Arc::new(merge_distinct::<T>),
                nbytes: distinct_bytes::<T>,
                predicted: self.len().min(DISTINCT_PLANNED) * (T::itemsize() + 16),
                predicted_chunk: largest_block(self).min(DISTINCT_PLANNED) * (T::itemsize() + 16),
            },
        )?;
        let name = root.meta().name.to_string();
        // The input's length bounds the result's; memory is planned for at most
        // `DISTINCT_PLANNED` distinct values (a run holding more is not refused before it
        // starts).
        let bound = self.len().max(1);
        let planned = self.len().min(DISTINCT_PLANNED);
        let part = |what: u64, op: &str| -> Result<Arc<dyn Node>> {
            let mut tw = t.clone();
            tw.write_u64(what);
            let f: ValueFn = Arc::new(move |v: &[Value]| {
                let p = v[0].get::<Distinct<T>>()?;
                let n = p.values.len();
                Ok(match what {
                    0 => block_value(ArrayD::from_shape_vec(IxDyn(&[n]), p.values.clone())?),
                    1 => block_value(ArrayD::from_shape_vec(IxDyn(&[n]), p.first.clone())?),
                    _ => block_value(ArrayD::from_shape_vec(IxDyn(&[n]), p.counts.clone())?),
                })
            });
            Ok(if what == 0 {
                finish_node::<T>(
                    op,
                    tw,
                    unknown_single(bound, &name)?,
                    vec![root.clone()],
                    Some(planned * T::itemsize()),
                    f,
                )
            } else {
                finish_node::<i64>(
                    op,
                    tw,
                    unknown_single(bound, &name)?,
                    vec![root.clone()],
                    Some(planned * 8),
                    f,
                )
            })
        };
        let values = BlockArray::wrap(part(0, "unique")?);
        let index = if fi {
            Some(BlockArray::wrap(part(1, "unique-index")?))
        } else {
            None
        };
        let counts = if co {
            Some(BlockArray::wrap(part(2, "unique-counts")?))
        } else {
            None
        };
        let inverse = if options.inverse {
            let ti = token_of(&[&self.node, &root]);
            Some(BlockArray::wrap(lookup_node::<i64>(
                "unique-inverse",
                ti,
                &self.node,
                vec![root.clone()],
                Arc::new(|v: &[Value]| {
                    let b = block_ref::<T>(&v[0])?;
                    let u = &v[1].get::<Distinct<T>>()?.values;
                    Ok(b.mapv(|e| u.partition_point(|s| order(s, &e) == Ordering::Less) as i64))
                }),
            )))
        } else {
            None
        };
        Ok(Unique {
            values,
            index,
            inverse,
            counts,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Partials on the wire (distributed runs)
// ---------------------------------------------------------------------------------------------

fn register_partials<T: WireElement + Real>() {
    dag_core::wire::register::<Vec<T>>(|v, out| put_vec(v, out), get_vec::<T>);
    dag_core::wire::register::<Distinct<T>>(
        |p, out| {
            put_vec(&p.values, out);
            put_vec(&p.first, out);
            put_vec(&p.counts, out);
        },
        |r| {
            Ok(Distinct {
                values: get_vec(r)?,
                first: get_vec(r)?,
                counts: get_vec(r)?,
            })
        },
    );
}

/// Register the partials of this module's trees with [`dag_core::wire`], so that they can
/// travel between the processes of a distributed run.
pub(crate) fn register_wire() {
    register_partials::<f32>();
    register_partials::<f64>();
    register_partials::<i32>();
    register_partials::<i64>();
    register_partials::<u8>();
    register_partials::<i8>();
    register_partials::<i16>();
    register_partials::<u16>();
    register_partials::<u32>();
    register_partials::<u64>();
    dag_core::wire::register::<MinMax>(
        |(n, mm), out| {
            put_u64(out, *n as u64);
            let flat: Vec<f64> = mm.iter().flat_map(|&(a, b)| [a, b]).collect();
            put_vec(&flat, out);
        },
        |r| {
            let n = r.u64()? as usize;
            let flat: Vec<f64> = get_vec(r)?;
            if !flat.len().is_multiple_of(2) {
                return Err(format!(
                    "a min/max partial has {} values, not pairs",
                    flat.len()
                ));
            }
            Ok((n, flat.chunks(2).map(|p| (p[0], p[1])).collect()))
        },
    );
    dag_core::wire::register::<Vec<Vec<f64>>>(
        |e, out| {
            put_u64(out, e.len() as u64);
            for v in e {
                put_vec(v, out);
            }
        },
        |r| {
            let n = r.u64()? as usize;
            (0..n).map(|_| get_vec(r)).collect()
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<P: Clone + Send + Sync + 'static>(p: P) -> P {
        crate::expr::wire::register();
        let v = Value::with_nbytes(p, 0);
        let mut bytes = Vec::new();
        dag_core::wire::encode(&v, &mut bytes).unwrap();
        dag_core::wire::decode(&bytes)
            .unwrap()
            .into_inner::<P>()
            .unwrap()
    }

    /// A min/max partial whose run of values is not pairs (a corrupt frame) is an `Err`, not a
    /// panic inside the decoder.
    #[test]
    fn a_min_max_partial_of_odd_length_is_refused() {
        crate::expr::wire::register();
        let p: MinMax = (1, vec![(1.0, 2.0)]);
        assert_eq!(round_trip(p.clone()), p);
        let mut bytes = Vec::new();
        dag_core::wire::encode(&Value::with_nbytes(p, 0), &mut bytes).unwrap();
        // The run's length (2) just before its 16 bytes of values: make it 1 and drop a value.
        let at = bytes.len() - 24;
        assert_eq!(bytes[at..at + 8], 2u64.to_le_bytes());
        bytes[at..at + 8].copy_from_slice(&1u64.to_le_bytes());
        bytes.truncate(bytes.len() - 8);
        let e = dag_core::wire::decode(&bytes).unwrap_err();
        assert!(e.contains("pairs"), "{e}");
    }

    /// Above the hold threshold, a histogram with an autodetected range reads its input again
    /// for the counts instead of holding it between the passes: it runs under a memory limit
    /// below the input's size, with the counts of the input in memory.
    #[test]
    fn an_autodetected_histogram_rereads_a_large_input() {
        let x: BlockArray<f64> = crate::random::Rng::new(5)
            .normal(0.0, 1.0, &[2048, 1024], [128, 1024])
            .unwrap();
        let limit = 4 << 20;
        let (counts, edges) = hist_engine::<f64>(
            "histogram",
            &x.node,
            true,
            vec![Bins::Count(7)],
            vec![None],
            None,
            false,
            0,
        )
        .unwrap();
        for s in [
            &sched_sync::SyncScheduler::new() as &dyn dag_core::Scheduler,
            &*crate::default_scheduler(),
        ] {
            let mut c = crate::Computation::new();
            let (hc, he) = (c.add(&counts), c.add(&edges[0]));
            c.allowed_mem(Some(limit));
            let (mut out, stats) = c.run_with(s, &dag_core::NoCallbacks).unwrap();
            assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
            let (got, e) = (out.take(hc).unwrap(), out.take(he).unwrap());
            let whole = x.compute().unwrap();
            let lo = whole.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = whole.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((e[0], e[7]), (lo, hi));
            let mut want = vec![0.0; 7];
            for &v in whole.iter() {
                want[bin_of(e.as_slice().unwrap(), v).unwrap()] += 1.0;
            }
            assert_eq!(got.into_raw_vec_and_offset().0, want);
        }
    }

    #[test]
    fn partials_round_trip() {
        assert_eq!(
            round_trip(vec![1.5f64, f64::INFINITY]),
            vec![1.5, f64::INFINITY]
        );
        assert_eq!(round_trip(vec![3i64, -1]), vec![3, -1]);
        let d = round_trip(Distinct {
            values: vec![1u8, 4],
            first: vec![7, 2],
            counts: vec![],
        });
        assert_eq!(
            (d.values, d.first, d.counts),
            (vec![1, 4], vec![7, 2], vec![])
        );
        let mm: MinMax = (5, vec![(-1.0, 2.0), (0.5, 0.5)]);
        assert_eq!(round_trip(mm.clone()), mm);
        let e = vec![vec![0.0, 1.0], vec![2.0]];
        assert_eq!(round_trip(e.clone()), e);
    }
}
