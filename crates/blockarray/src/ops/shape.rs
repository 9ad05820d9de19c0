//! Shape operations: rechunk, transpose and axis moves, unit axes, concatenate and stack.
//!
//! These nodes move data without looking at it, so they are not generic over the element type:
//! they work through the element type's [`Kit`](crate::expr::array::Kit).

use crate::expr::array::{BlockTask, Meta, Node, token_of};
use crate::ops::reduce::norm_axes;
use crate::plan::index::NormSlice;
use crate::plan::rechunk::{Piece, merge_steps, plan_rechunk, rechunk_pieces};
use crate::{BlockArray, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, Element, Error, Result};
use dag_core::{BlockIndex, Value};
use ndarray::SliceInfoElem;
use rustc_hash::FxHashMap;
use std::any::Any;
use std::sync::Arc;

/// A direct rechunk: each new block is assembled from pieces of old blocks.
struct RechunkNode {
    meta: Meta,
    input: Arc<dyn Node>,
    /// Per axis, per new block: the old blocks and ranges within them it reads.
    pieces: Vec<Vec<Vec<Piece>>>,
    /// Whether lowering may merge this step with a rechunk step under it
    /// ([`merge_rechunks`]): not for the steps of [`BlockArray::rechunk_bounded`], whose bound
    /// the user asked for.
    mergeable: bool,
}

/// `node` in other chunks, in one step.
pub(crate) fn rechunk_direct(node: &Arc<dyn Node>, chunks: Chunks) -> Result<Arc<dyn Node>> {
    rechunk_step(node, chunks, true)
}

/// `node` in other chunks, in one step, which lowering may merge with a rechunk step under it
/// when `mergeable`.
fn rechunk_step(node: &Arc<dyn Node>, chunks: Chunks, mergeable: bool) -> Result<Arc<dyn Node>> {
    let old = &node.meta().chunks;
    if old.shape() != chunks.shape() {
        return Err(Error::shape_mismatch(
            "rechunk",
            chunks.shape(),
            old.shape(),
        ));
    }
    if *old == chunks {
        return Ok(node.clone());
    }
    old.require_known("rechunking")?;
    chunks.require_known("rechunking")?;
    let pieces = all_pieces(old, &chunks)?;
    let mut t = token_of(&[node]);
    if !mergeable {
        // A step kept whole has other tasks than one that may merge: not one key for both.
        t.write_str("kept");
    }
    let meta = node.meta().derive("rechunk", t, chunks);
    Ok(Arc::new(RechunkNode {
        meta,
        input: node.clone(),
        pieces,
        mergeable,
    }))
}

/// Per axis, per new block: the old blocks and ranges within them it reads.
fn all_pieces(old: &Chunks, new: &Chunks) -> Result<Vec<Vec<Vec<Piece>>>> {
    (0..new.ndim())
        .map(|ax| rechunk_pieces(old.axis(ax), new.axis(ax)))
        .collect()
}

/// In a run in one process, where tasks read their input blocks in place: each rechunk whose
/// input is another rechunk used by nothing else becomes one step from that rechunk's input,
/// when [`merge_steps`] finds that the intermediate chunking bounds no memory (row blocks to
/// column blocks: one copy of the array instead of two). The merged step keeps the outer
/// step's name, so keys are unchanged: both compute the same blocks. `uses` counts each node's
/// consumers and requests (`expr::lower::use_counts`).
///
/// Across processes the two steps stay: a task's input blocks travel to it whole, and the
/// intermediate is what keeps each task from pulling in every old block.
pub(crate) fn merge_rechunks(order: &mut [Arc<dyn Node>], uses: &FxHashMap<Arc<str>, usize>) {
    let position: FxHashMap<Arc<str>, usize> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.meta().name.clone(), i))
        .collect();
    // Inputs first, so that a chain of rechunks merges from the bottom up.
    for pos in 0..order.len() {
        let Some(outer) = (&*order[pos] as &dyn Any).downcast_ref::<RechunkNode>() else {
            continue;
        };
        let inner_name = &outer.input.meta().name;
        if !outer.mergeable || uses.get(inner_name) != Some(&1) {
            continue;
        }
        // The inner step as lowering will see it (itself merged already, perhaps).
        let inner = &order[position[inner_name]];
        let Some(inner) = (&**inner as &dyn Any).downcast_ref::<RechunkNode>() else {
            continue;
        };
        let (old, mid, new) = (
            &inner.input.meta().chunks,
            &inner.meta.chunks,
            &outer.meta.chunks,
        );
        // (Both steps were built from known chunks of one shape: neither call can fail.)
        if !inner.mergeable || !merge_steps(old, mid, new, outer.meta.itemsize).unwrap_or(false) {
            continue;
        }
        let Ok(pieces) = all_pieces(old, new) else {
            continue;
        };
        order[pos] = Arc::new(RechunkNode {
            meta: outer.meta.clone(),
            input: inner.input.clone(),
            pieces,
            mergeable: true,
        });
    }
}

impl Node for RechunkNode {
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
        let per_axis: Vec<&Vec<Piece>> = index
            .iter()
            .enumerate()
            .map(|(ax, &b)| &self.pieces[ax][b])
            .collect();
        let old = self.input.meta().chunks.clone();
        let shape = self.meta.chunks.block_shape(index);
        // Cartesian product of the pieces along each axis.
        let mut deps = Vec::new();
        let mut regions: Vec<(Vec<SliceInfoElem>, Vec<SliceInfoElem>)> = Vec::new();
        let mut choice = vec![0usize; per_axis.len()];
        loop {
            let mut src_block = BlockIndex::new();
            let mut src = Vec::with_capacity(choice.len());
            let mut dst = Vec::with_capacity(choice.len());
            for (ax, &c) in choice.iter().enumerate() {
                let (b, ref r) = per_axis[ax][c];
                let before: usize = per_axis[ax][..c].iter().map(|(_, r)| r.len()).sum();
                src_block.push(b);
                src.push(SliceInfoElem::from(r.clone()));
                dst.push(SliceInfoElem::from(before..before + r.len()));
            }
            deps.push((0, src_block));
            regions.push((src, dst));
            let mut ax = choice.len();
            loop {
                if ax == 0 {
                    break;
                }
                ax -= 1;
                choice[ax] += 1;
                if choice[ax] < per_axis[ax].len() {
                    break;
                }
                choice[ax] = 0;
            }
            if choice.iter().all(|&c| c == 0) {
                break;
            }
        }
        let whole = deps.len() == 1 && old.block_shape(&deps[0].1) == shape;
        let kit = self.meta.kit;
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                if whole {
                    return Ok(v[0].clone());
                }
                let pieces: Vec<_> = v
                    .iter()
                    .zip(&regions)
                    .map(|(b, (s, d))| (b, s.clone(), d.clone()))
                    .collect();
                kit.assemble(&shape, &pieces)
            }),
        }
    }
}

/// Output axis `k` is input axis `perm[k]`.
pub(crate) struct TransposeNode {
    meta: Meta,
    input: Arc<dyn Node>,
    perm: Vec<usize>,
}

pub(crate) fn transpose_node(node: &Arc<dyn Node>, perm: &[usize]) -> Result<Arc<dyn Node>> {
    let nd = node.meta().chunks.ndim();
    let mut seen = vec![false; nd];
    if perm.len() != nd
        || perm
            .iter()
            .any(|&p| p >= nd || std::mem::replace(&mut seen[p], true))
    {
        return Err(Error::axis(format!(
            "axes {perm:?} are not a permutation of the {nd} axes of an array of shape {:?}",
            node.meta().shape()
        )));
    }
    if perm.iter().enumerate().all(|(k, &p)| k == p) {
        return Ok(node.clone());
    }
    // transpose(transpose(x, p), q) = transpose(x, p∘q)
    if let Some(t) = (&**node as &dyn Any).downcast_ref::<TransposeNode>() {
        let composed: Vec<usize> = perm.iter().map(|&q| t.perm[q]).collect();
        return transpose_node(&t.input, &composed);
    }
    let from: Vec<Option<usize>> = perm.iter().map(|&p| Some(p)).collect();
    let chunks = node.meta().chunks.rearranged(&from);
    let mut t = token_of(&[node]);
    t.write(perm);
    let meta = node.meta().derive("transpose", t, chunks);
    Ok(Arc::new(TransposeNode {
        meta,
        input: node.clone(),
        perm: perm.to_vec(),
    }))
}

/// `node` as `(input, perm)` when it is a transpose (output axis `k` is input axis `perm[k]`):
/// contractions read the input's blocks directly, as transposed views.
pub(crate) fn as_transpose(node: &Arc<dyn Node>) -> Option<(&Arc<dyn Node>, &[usize])> {
    (&**node as &dyn Any)
        .downcast_ref::<TransposeNode>()
        .map(|t| (&t.input, t.perm.as_slice()))
}

impl Node for TransposeNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let mut src = vec![0; index.len()];
        for (k, &p) in self.perm.iter().enumerate() {
            src[p] = index[k];
        }
        let perm = self.perm.clone();
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(src))],
            func: Arc::new(move |v: &[Value]| kit.permute(&v[0], &perm)),
        }
    }
    fn push_slice(&self, slices: &[NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        let mut inner = vec![NormSlice::full(0); slices.len()];
        for (k, &p) in self.perm.iter().enumerate() {
            inner[p] = slices[k];
        }
        Some(
            crate::ops::slicing::slice_node(&self.input, &inner)
                .and_then(|n| transpose_node(&n, &self.perm)),
        )
    }
}

/// Drops unit axes and inserts new unit axes: output axis `k` is input axis `from[k]`, or a new
/// axis of length 1 when `None`; input axes not listed (all of length 1) are dropped.
struct AxesNode {
    meta: Meta,
    input: Arc<dyn Node>,
    from: Vec<Option<usize>>,
}

pub(crate) fn axes_node(node: &Arc<dyn Node>, from: Vec<Option<usize>>) -> Result<Arc<dyn Node>> {
    let old = &node.meta().chunks;
    if from.iter().flatten().count() == old.ndim()
        && from.iter().enumerate().all(|(k, f)| *f == Some(k))
    {
        return Ok(node.clone());
    }
    let chunks = old.rearranged(&from);
    let mut t = token_of(&[node]);
    for f in &from {
        t.write_u64(f.map_or(u64::MAX, |j| j as u64));
    }
    let meta = node.meta().derive("reshape", t, chunks);
    Ok(Arc::new(AxesNode {
        meta,
        input: node.clone(),
        from,
    }))
}

impl Node for AxesNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let mut src = vec![0; self.input.meta().chunks.ndim()];
        for (k, f) in self.from.iter().enumerate() {
            if let Some(j) = f {
                src[*j] = index[k];
            }
        }
        // The output block's shape from the input block's own (an axis of unknown length
        // keeps whatever length its block has).
        let from = self.from.clone();
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(src))],
            func: Arc::new(move |v: &[Value]| {
                let shape = kit.shape(&v[0])?;
                let out: Vec<usize> = from.iter().map(|f| f.map_or(1, |j| shape[j])).collect();
                kit.reshape(&v[0], &out)
            }),
        }
    }
}

/// Inputs laid end to end along `axis`.
struct ConcatNode {
    meta: Meta,
    inputs: Vec<Arc<dyn Node>>,
    axis: usize,
    /// Block offsets along `axis` where each input starts (len inputs + 1).
    starts: Vec<usize>,
}

impl Node for ConcatNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let b = index[self.axis];
        let k = self.starts.partition_point(|&s| s <= b) - 1;
        let mut src = BlockIndex::from_slice(index);
        src[self.axis] = b - self.starts[k];
        BlockTask {
            deps: vec![(k, src)],
            func: Arc::new(|v: &[Value]| Ok(v[0].clone())),
        }
    }
}

impl<T: Element> BlockArray<T> {
    /// The same array in other chunks. Rechunks that would make some task read too much at
    /// once (from row blocks to column blocks, say) go through an intermediate chunking so
    /// that no task reads more than 128 MiB or the largest old or new block
    /// (see [`plan_rechunk`]). In a run in one process, where tasks read their inputs in
    /// place, the two steps are done as one when the intermediate would not lower the memory
    /// held (see [`merge_steps`]): transposing the layout holds the whole array before the
    /// first new block is done either way, and one step copies it once instead of twice.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::ones(&[100, 100], [100, 10])?;
    /// let y = x.rechunk([10, 100])?;
    /// assert_eq!(y.numblocks(), vec![10, 1]);
    /// assert_eq!(y.compute()?, x.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<BlockArray<T>> {
        self.rechunk_planned(chunks, DEFAULT_CHUNK_BYTES, true)
    }

    /// [`rechunk`](Self::rechunk) with an explicit bound on the bytes any task reads, kept in
    /// every run (its steps are never merged).
    pub fn rechunk_bounded(
        &self,
        chunks: impl Into<ChunkSpec>,
        max_bytes: usize,
    ) -> Result<BlockArray<T>> {
        self.rechunk_planned(chunks, max_bytes, false)
    }

    /// The steps of [`plan_rechunk`] under `max_bytes`, which lowering may merge when
    /// `mergeable` ([`merge_rechunks`]).
    fn rechunk_planned(
        &self,
        chunks: impl Into<ChunkSpec>,
        max_bytes: usize,
        mergeable: bool,
    ) -> Result<BlockArray<T>> {
        self.chunks().require_known("rechunk")?;
        let new = Chunks::new(self.shape(), chunks, T::itemsize())?;
        let steps = plan_rechunk(self.chunks(), &new, T::itemsize(), max_bytes)?;
        let mut node = self.node.clone();
        for step in steps {
            node = rechunk_step(&node, step, mergeable)?;
        }
        Ok(BlockArray::wrap(node))
    }

    /// The axes reversed (`x.T`).
    pub fn t(&self) -> BlockArray<T> {
        let perm: Vec<usize> = (0..self.ndim()).rev().collect();
        BlockArray::wrap(transpose_node(&self.node, &perm).expect("a reversal is a permutation"))
    }

    /// The axes reordered: output axis `k` is axis `axes[k]`. Fails unless `axes` is a
    /// permutation of `0..ndim`.
    pub fn permuted_axes(&self, axes: &[usize]) -> Result<BlockArray<T>> {
        Ok(BlockArray::wrap(transpose_node(&self.node, axes)?))
    }

    /// Two axes exchanged.
    pub fn swap_axes(&self, a: usize, b: usize) -> Result<BlockArray<T>> {
        self.check_axis(a)?;
        self.check_axis(b)?;
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.permuted_axes(&perm)
    }

    /// Axis `source` moved to position `destination`, the others keeping their order
    /// (`numpy.moveaxis`).
    pub fn moveaxis(&self, source: usize, destination: usize) -> Result<BlockArray<T>> {
        self.check_axis(source)?;
        self.check_axis(destination)?;
        let mut perm: Vec<usize> = (0..self.ndim()).filter(|&a| a != source).collect();
        perm.insert(destination, source);
        self.permuted_axes(&perm)
    }

    /// A new axis of length 1 at position `axis` (`0..=ndim`).
    pub fn insert_axis(&self, axis: usize) -> Result<BlockArray<T>> {
        if axis > self.ndim() {
            return Err(Error::axis_out_of_bounds(axis, self.ndim() + 1));
        }
        let mut from: Vec<Option<usize>> = (0..self.ndim()).map(Some).collect();
        from.insert(axis, None);
        Ok(BlockArray::wrap(axes_node(&self.node, from)?))
    }

    /// Unit axes removed: the given ones (each must have length 1), or all when `None`.
    pub fn squeeze(&self, axes: Option<&[usize]>) -> Result<BlockArray<T>> {
        let known = |a: usize| self.chunks().unknown_axis(a).is_none();
        let drop: Vec<usize> = match axes {
            // An axis of unknown length (bounded by 1) may be empty: only known unit axes go.
            None => (0..self.ndim())
                .filter(|&a| self.shape()[a] == 1 && known(a))
                .collect(),
            Some(axes) => {
                let axes = norm_axes(self.ndim(), Some(axes)).map_err(|e| e.context("squeeze"))?;
                for &a in &axes {
                    self.chunks().require_known_axis(a, "squeeze")?;
                    if self.shape()[a] != 1 {
                        return Err(Error::shape(format!(
                            "cannot squeeze axis {a} of length {} (shape {:?})",
                            self.shape()[a],
                            self.shape()
                        )));
                    }
                }
                axes
            }
        };
        let from = (0..self.ndim())
            .filter(|a| !drop.contains(a))
            .map(Some)
            .collect();
        Ok(BlockArray::wrap(axes_node(&self.node, from)?))
    }
}

/// Arrays joined along an existing `axis` (`numpy.concatenate`). Shapes must agree on every
/// other axis; chunks along them are unified.
///
/// ```
/// use blockarray::{BlockArray, concatenate};
/// let a = BlockArray::<i64>::ones(&[2, 3], [1, 3])?;
/// let b = BlockArray::<i64>::zeros(&[1, 3], [1, 2])?;
/// let c = concatenate(&[&a, &b], 0)?;
/// assert_eq!(c.shape(), &[3, 3]);
/// assert_eq!(c.compute()?.sum(), 6);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn concatenate<T: Element>(arrays: &[&BlockArray<T>], axis: usize) -> Result<BlockArray<T>> {
    let first = arrays
        .first()
        .ok_or_else(|| Error::shape("concatenate needs at least one array"))?;
    first.check_axis(axis)?;
    let nd = first.ndim();
    for a in arrays {
        // Along `axis` blocks are only placed end to end, so their lengths need not be known;
        // the other axes are unified by position.
        for k in (0..nd).filter(|&k| k != axis) {
            a.chunks()
                .require_known_axis(k, &format!("concatenate along axis {axis}"))?;
        }
    }
    for a in arrays {
        let ok = a.ndim() == nd && (0..nd).all(|k| k == axis || a.shape()[k] == first.shape()[k]);
        if !ok {
            return Err(Error::shape_mismatch(
                &format!("concatenate along axis {axis}"),
                first.shape(),
                a.shape(),
            ));
        }
    }
    // Inputs empty along the axis add nothing (and a zero-length axis has one empty block).
    let nonempty: Vec<&BlockArray<T>> = arrays
        .iter()
        .copied()
        .filter(|a| a.shape()[axis] > 0 || a.chunks().unknown_axis(axis).is_some())
        .collect();
    let arrays: &[&BlockArray<T>] = if nonempty.is_empty() {
        &arrays[..1]
    } else {
        &nonempty
    };
    let first = arrays[0];
    // Unify chunks on the other axes.
    let mut common: Vec<Vec<usize>> = first.chunks().axes().to_vec();
    for a in &arrays[1..] {
        for k in (0..nd).filter(|&k| k != axis) {
            common[k] = crate::unify_axis(&common[k], a.chunks().axis(k))?;
        }
    }
    let mut inputs = Vec::with_capacity(arrays.len());
    let mut along = Vec::new();
    let mut starts = vec![0];
    // Unknown lengths along the axis: the result's are unknown too, of an origin of its own.
    let mut origins = dag_core::Tokenizer::new();
    let mut unknown = false;
    for a in arrays {
        let mut want = common.clone();
        want[axis] = a.chunks().axis(axis).to_vec();
        let mut want = Chunks::from_blocks(want)?;
        if let Some(o) = a.chunks().unknown_axis(axis) {
            want = want.with_unknown_axis(axis, o);
            unknown = true;
        }
        // A known input's lengths are part of the result's too (its origin alone is not).
        match a.chunks().unknown_axis(axis) {
            Some(o) => origins.write_u64(o),
            None => origins.write_u64(0).write(a.chunks().axis(axis)),
        };
        let n = rechunk_direct(&a.node, want)?;
        along.extend_from_slice(n.meta().chunks.axis(axis));
        starts.push(along.len());
        inputs.push(n);
    }
    let mut axes = common;
    axes[axis] = along;
    let refs: Vec<&Arc<dyn Node>> = inputs.iter().collect();
    let mut t = token_of(&refs);
    t.write_usize(axis);
    let mut chunks = Chunks::from_blocks(axes)?;
    if unknown {
        origins.write_str("concatenate");
        chunks = chunks.with_unknown_axis(axis, origins.finish());
    }
    let meta = Meta::new::<T>("concatenate", t, chunks);
    Ok(BlockArray::wrap(Arc::new(ConcatNode {
        meta,
        inputs,
        axis,
        starts,
    })))
}

/// The same array read from several named places (files, stores) joined along `axis`:
/// [`stack`]ed along a new axis when `new_axis`, else [`concatenate`]d along an existing one.
/// Before joining, every array must have the first one's shape (except along `axis` when
/// concatenating); otherwise the error names the two places: "`{what}` has shape … in
/// `{kind} {place}` but … in `{first place}`". For storage crates reading one dataset across
/// many files.
///
/// ```
/// use blockarray::{BlockArray, join_named};
/// let a = BlockArray::<f64>::ones(&[2, 3], 2)?;
/// let b = BlockArray::<f64>::ones(&[2, 4], 2)?;
/// let names = ["a.h5".to_string(), "b.h5".to_string()];
/// let e = join_named("dataset \"x\"", "file", &names, &[a.clone(), b.clone()], 0, true).unwrap_err();
/// assert!(e.to_string().contains("in file b.h5 but [2, 3] in a.h5"));
/// assert_eq!(join_named("x", "file", &names, &[a, b], 1, false)?.shape(), &[2, 7]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn join_named<T: Element>(
    what: &str,
    kind: &str,
    places: &[String],
    arrays: &[BlockArray<T>],
    axis: usize,
    new_axis: bool,
) -> Result<BlockArray<T>> {
    let except = (!new_axis).then_some(axis);
    if let Some(first) = arrays.first() {
        let first = first.shape();
        for (place, a) in places.iter().zip(arrays).skip(1) {
            let s = a.shape();
            let differs = s.len() != first.len()
                || s.iter()
                    .zip(first)
                    .enumerate()
                    .any(|(k, (x, y))| Some(k) != except && x != y);
            if differs {
                return Err(Error::shape(format!(
                    "{what} has shape {s:?} in {kind} {place} but {first:?} in {}{}",
                    places[0],
                    match except {
                        Some(axis) => format!(" (they may differ only along axis {axis})"),
                        None => " (stacking needs equal shapes)".to_owned(),
                    }
                )));
            }
        }
    }
    let refs: Vec<&BlockArray<T>> = arrays.iter().collect();
    if new_axis {
        stack(&refs, axis)
    } else {
        concatenate(&refs, axis)
    }
}

/// [`join_named`] over arrays opened from `paths` by `open` (a storage crate's reader), each
/// named by its path: one dataset read across many files. No paths is an error naming `kind`
/// and `what`.
///
/// ```
/// use blockarray::{BlockArray, join_paths};
/// let paths = ["a.h5", "b.h5"];
/// let open = |p: &&str| BlockArray::<f64>::ones(&[2, if *p == "a.h5" { 3 } else { 4 }], 2);
/// let e = join_paths("dataset \"x\"", "file", &paths, open, 0, true).unwrap_err();
/// assert!(e.to_string().contains("in file b.h5 but [2, 3] in a.h5"));
/// assert_eq!(join_paths("x", "file", &paths, open, 1, false)?.shape(), &[2, 7]);
/// let e = join_paths("dataset \"x\"", "file", &[] as &[&str], open, 0, true).unwrap_err();
/// assert!(e.to_string().contains("no files given to read dataset \"x\" from"));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn join_paths<T: Element, P: AsRef<std::path::Path>>(
    what: &str,
    kind: &str,
    paths: &[P],
    open: impl Fn(&P) -> Result<BlockArray<T>>,
    axis: usize,
    new_axis: bool,
) -> Result<BlockArray<T>> {
    if paths.is_empty() {
        return Err(Error::index(format!(
            "no {kind}s given to read {what} from"
        )));
    }
    let arrays: Vec<BlockArray<T>> = paths.iter().map(open).collect::<Result<_>>()?;
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.as_ref().display().to_string())
        .collect();
    join_named(what, kind, &names, &arrays, axis, new_axis)
}

/// The paths matching a glob pattern (`data/day-*.h5`), sorted: the files or stores a storage
/// crate then opens with [`join_paths`]. A malformed pattern, an unreadable directory, or a
/// pattern that matches nothing is an error naming the pattern (and `kind`, what was looked
/// for).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("ba-glob-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// for name in ["b.h5", "a.h5", "c.txt"] {
///     std::fs::write(dir.join(name), b"")?;
/// }
/// let found = blockarray::glob_paths(&format!("{}/*.h5", dir.display()), "file")?;
/// assert_eq!(found, [dir.join("a.h5"), dir.join("b.h5")]);
/// let e = blockarray::glob_paths(&format!("{}/*.zarr", dir.display()), "store").unwrap_err();
/// assert!(e.to_string().contains("matches no store"));
/// assert!(blockarray::glob_paths("[", "file").is_err());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn glob_paths(pattern: &str, kind: &str) -> Result<Vec<std::path::PathBuf>> {
    let paths = glob::glob(pattern)
        .map_err(|e| Error::index(format!("bad glob pattern {pattern:?}: {e}")))?;
    let mut found = paths
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::io(format!("glob {pattern:?}: {e}")))?;
    found.sort();
    if found.is_empty() {
        return Err(Error::io(format!(
            "glob pattern {pattern:?} matches no {kind}"
        )));
    }
    Ok(found)
}

/// Arrays of equal shape joined along a new axis at position `axis` (`numpy.stack`).
pub fn stack<T: Element>(arrays: &[&BlockArray<T>], axis: usize) -> Result<BlockArray<T>> {
    let first = arrays
        .first()
        .ok_or_else(|| Error::shape("stack needs at least one array"))?;
    for a in arrays {
        if a.shape() != first.shape() {
            return Err(Error::shape_mismatch("stack", first.shape(), a.shape()));
        }
    }
    let expanded = arrays
        .iter()
        .map(|a| a.insert_axis(axis))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&BlockArray<T>> = expanded.iter().collect();
    concatenate(&refs, axis)
}

/// Reshapes each block (C order); the chunks were arranged so every output block is exactly
/// one input block.
struct ReshapeNode {
    meta: Meta,
    input: Arc<dyn Node>,
}

impl Node for ReshapeNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        // Output block i along the first axis of each group is input block i of the group's
        // first axis; other axes of a group are single blocks, so the linear block number is
        // the same on both sides.
        let in_nb = self.input.meta().chunks.numblocks();
        let out_nb = self.meta.chunks.numblocks();
        let mut linear = 0usize;
        for (&i, &n) in index.iter().zip(&out_nb) {
            linear = linear * n + i;
        }
        let mut src = vec![0usize; in_nb.len()];
        for (k, &n) in in_nb.iter().enumerate().rev() {
            src[k] = linear % n;
            linear /= n;
        }
        let shape = self.meta.chunks.block_shape(index);
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(src))],
            func: Arc::new(move |v: &[Value]| kit.reshape(&v[0], &shape)),
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Chunks of length `len` that are multiples of `m`, close to `target`.
fn multiples(len: usize, m: usize, target: usize) -> Vec<usize> {
    let step = (target.max(m) / m) * m;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let c = step.min(left);
        out.push(c);
        left -= c;
    }
    if out.is_empty() {
        out.push(0);
    }
    out
}

impl<T: Element> BlockArray<T> {
    /// The same elements in C order, in another shape of the same size (`numpy.reshape`).
    /// Rechunks where needed so that each output block is one input block.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 24, 1, 5)?;
    /// let y = x.reshape(&[2, 3, 4])?;
    /// assert_eq!(y.compute()?, ndarray::Array::from_iter(0..24i64).into_shape_with_order(vec![2, 3, 4]).unwrap());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn reshape(&self, shape: &[usize]) -> Result<BlockArray<T>> {
        self.chunks().require_known("reshape")?;
        let Some(size) = shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n)) else {
            return Err(Error::shape(format!(
                "cannot reshape an array of shape {:?} into shape {shape:?}: its size overflows usize",
                self.shape()
            )));
        };
        if size != self.len() {
            return Err(Error::shape(format!(
                "cannot reshape an array of shape {:?} ({} elements) into shape {shape:?} ({size} elements)",
                self.shape(),
                self.len()
            )));
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        if size == 0 {
            return BlockArray::full(shape, T::default(), ChunkSpec::auto());
        }
        // Drop unit axes, reshape the rest, insert the output's unit axes.
        let squeezed = self.squeeze(None)?;
        let inner_in: Vec<usize> = squeezed.shape().to_vec();
        let inner_out: Vec<usize> = shape.iter().copied().filter(|&n| n != 1).collect();
        let mut node = squeezed.node.clone();
        if inner_in != inner_out {
            // Groups of axes with equal products.
            let (mut i, mut j) = (0, 0);
            let mut want: Vec<Vec<usize>> = squeezed.chunks().axes().to_vec();
            let mut out_axes: Vec<Vec<usize>> = Vec::with_capacity(inner_out.len());
            while i < inner_in.len() {
                let (gi, gj) = (i, j);
                let (mut pin, mut pout) = (inner_in[i], inner_out[j]);
                i += 1;
                j += 1;
                while pin != pout {
                    if pin < pout {
                        pin *= inner_in[i];
                        i += 1;
                    } else {
                        pout *= inner_out[j];
                        j += 1;
                    }
                }
                if i - gi == 1 && j - gj == 1 {
                    out_axes.push(want[gi].clone());
                    continue;
                }
                let p_in: usize = inner_in[gi + 1..i].iter().product();
                let p_out: usize = inner_out[gj + 1..j].iter().product();
                let m = p_out / gcd(p_out, p_in);
                let target = squeezed
                    .chunks()
                    .axis(gi)
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(1);
                want[gi] = multiples(inner_in[gi], m, target);
                for (k, w) in want.iter_mut().enumerate().take(i).skip(gi + 1) {
                    *w = vec![inner_in[k]];
                }
                out_axes.push(want[gi].iter().map(|&c| c * p_in / p_out).collect());
                out_axes.extend(inner_out[gj + 1..j].iter().map(|&n| vec![n]));
            }
            node = rechunk_direct(&node, Chunks::from_blocks(want)?)?;
            let mut t = token_of(&[&node]);
            t.write(inner_out.as_slice());
            let meta = node
                .meta()
                .derive("reshape", t, Chunks::from_blocks(out_axes)?);
            node = Arc::new(ReshapeNode { meta, input: node });
        }
        let mut from = Vec::with_capacity(shape.len());
        let mut k = 0;
        for &n in shape {
            if n == 1 {
                from.push(None);
            } else {
                from.push(Some(k));
                k += 1;
            }
        }
        Ok(BlockArray::wrap(axes_node(&node, from)?))
    }
}
