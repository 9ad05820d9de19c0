//! User functions over blocks: `map_blocks` (one array) and [`blockwise`] (several).
//!
//! The function sees whole blocks (ndarray arrays) and where they sit ([`BlockInfo`]). Output
//! chunks are declared up front (by default the input's), so the result is as lazy as any other
//! array; a block of another shape is an error naming the block, raised when it is computed.

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::{BlockArray, ChunkSpec, Chunks, Element, Error, Result, unify_axis};
use dag_core::{BlockIndex, OpName, TaskError, Value};
use ndarray::ArrayD;
use std::sync::Arc;

/// Where a block sits, for functions passed to `map_blocks` and [`blockwise`].
#[derive(Clone, Copy, Debug)]
pub struct BlockInfo<'a> {
    /// The block's index in the output's block grid.
    pub index: &'a [usize],
    /// The position of the block's first element in the output. On an axis whose lengths
    /// depend on values (a mask's result) the position is not known before the blocks are
    /// computed: it is `usize::MAX` there (dask passes NaN), never a guess.
    pub start: &'a [usize],
    /// The output's declared shape for this block. On an axis of unknown lengths it is the
    /// length memory is planned for (an upper bound after a mask or `unique`, a guess after
    /// `bincount`), and the block may come back with any length there.
    pub block_shape: &'a [usize],
    /// The shape of the whole output (`usize::MAX` on an axis of unknown length).
    pub array_shape: &'a [usize],
}

type BlockFn =
    Arc<dyn Fn(&[Value], &BlockInfo<'_>) -> std::result::Result<Value, TaskError> + Send + Sync>;

struct BlockwiseNode {
    meta: Meta,
    inputs: Vec<Arc<dyn Node>>,
    f: BlockFn,
}

impl Node for BlockwiseNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let idx = index.to_vec();
        let chunks = &self.meta.chunks;
        // Positions and lengths along axes of unknown length are not known yet.
        let start = chunks.unknown_as_max(chunks.block_start(index));
        let block_shape = chunks.block_shape(index);
        let array_shape = chunks.unknown_as_max(self.meta.shape().to_vec());
        let f = self.f.clone();
        BlockTask {
            deps: (0..self.inputs.len())
                .map(|i| (i, BlockIndex::from_slice(index)))
                .collect(),
            func: Arc::new(move |v: &[Value]| {
                let info = BlockInfo {
                    index: &idx,
                    start: &start,
                    block_shape: &block_shape,
                    array_shape: &array_shape,
                };
                f(v, &info)
            }),
        }
    }
}

/// Apply `f` to corresponding blocks of several arrays of the same shape (their chunks are
/// unified first). `out_chunks` declares the output's chunks; it must have the same number of
/// blocks along every axis as the inputs (`None`: the inputs' chunks). `name` labels the tasks:
/// from a plain name the keys are unique to this call; with [`OpName::pure`] the caller vouches
/// that the name and token identify `f`, so equal calls share tasks.
///
/// ```
/// use blockarray::{BlockArray, blockwise};
/// let a = BlockArray::<f64>::ones(&[6, 4], [3, 2])?;
/// let b = BlockArray::<f64>::full(&[6, 4], 2.0, [3, 4])?;
/// // Chunks are unified to rows (3, 3), columns (2, 2); row 5 is in block row 1.
/// let c = blockwise("weighted", &[&a, &b], None, |blocks, info| {
///     Ok(blocks[0] + &(blocks[1] * info.index[0] as f64))
/// })?;
/// assert_eq!(c.compute()?[[5, 3]], 1.0 + 2.0 * 1.0);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn blockwise<T, U, F>(
    name: impl Into<OpName>,
    inputs: &[&BlockArray<T>],
    out_chunks: Option<ChunkSpec>,
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&[&ArrayD<T>], &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
        + Send
        + Sync
        + 'static,
{
    blockwise_tagged(
        &name.into(),
        std::any::type_name::<F>(),
        inputs,
        out_chunks,
        f,
    )
}

/// [`blockwise`], with `op` and `tag` (the user function's type name) hashed into the keys.
pub(crate) fn blockwise_tagged<T, U, F>(
    op: &OpName,
    tag: &str,
    inputs: &[&BlockArray<T>],
    out_chunks: Option<ChunkSpec>,
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&[&ArrayD<T>], &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
        + Send
        + Sync
        + 'static,
{
    let name = op.name();
    let first = inputs
        .first()
        .ok_or_else(|| Error::shape(format!("blockwise {name}: no input arrays")))?;
    for a in inputs {
        if a.shape() != first.shape() {
            return Err(Error::shape_mismatch(
                &format!("blockwise {name}"),
                first.shape(),
                a.shape(),
            ));
        }
    }
    // Axes of unknown length must come from one origin in every input (then no rechunk is
    // needed along them).
    for a in &inputs[1..] {
        for k in 0..first.ndim() {
            let (u, v) = (first.chunks().unknown_axis(k), a.chunks().unknown_axis(k));
            if (u.is_some() || v.is_some())
                && (u != v || first.chunks().axis(k) != a.chunks().axis(k))
            {
                return Err(Error::chunks(format!(
                    "blockwise {name}: the inputs' chunk sizes along axis {k} depend on values \
                     and may differ: call .compute_chunk_sizes() on them first"
                )));
            }
        }
    }
    let mut common: Vec<Vec<usize>> = first.chunks().axes().to_vec();
    for a in &inputs[1..] {
        for (k, c) in common.iter_mut().enumerate() {
            *c = unify_axis(c, a.chunks().axis(k))?;
        }
    }
    let common = Chunks::from_blocks(common)?.with_unknown_of(first.chunks(), &[]);
    let nodes = inputs
        .iter()
        .map(|a| crate::ops::shape::rechunk_direct(&a.node, common.clone()))
        .collect::<Result<Vec<_>>>()?;
    let out = match out_chunks {
        None => common.clone(),
        Some(ChunkSpec::Explicit(axes)) => {
            common.require_known(&format!("blockwise {name} with explicit output chunks"))?;
            Chunks::from_blocks(axes)?
        }
        Some(other) => {
            return Err(Error::chunks(format!(
                "blockwise {name}: output chunks must be given explicitly (one block list per axis), got {other:?}"
            )));
        }
    };
    if out.numblocks() != common.numblocks() {
        return Err(Error::chunks(format!(
            "blockwise {name}: output chunks {out} have {:?} blocks, the inputs {:?}",
            out.numblocks(),
            common.numblocks()
        )));
    }
    let label = name.to_string();
    // Along axes of unknown length a block may have any length: the stored lengths there only
    // plan memory, and are not always bounds (`bincount`'s length is known only after the run).
    let unknown: Vec<bool> = out.unknown_axes().iter().map(Option::is_some).collect();
    let func: BlockFn = Arc::new(move |v: &[Value], info: &BlockInfo<'_>| {
        let blocks = v
            .iter()
            .map(|b| block_ref::<T>(b))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let out = f(&blocks, info)?;
        let fits = out.ndim() == info.block_shape.len()
            && out
                .shape()
                .iter()
                .zip(info.block_shape)
                .zip(&unknown)
                .all(|((&got, &want), &u)| got == want || u);
        if !fits {
            return Err(format!(
                "{label}: block {:?} came back with shape {:?}, but the declared chunks give {:?}",
                info.index,
                out.shape(),
                info.block_shape
            )
            .into());
        }
        Ok(block_value(out))
    });
    let refs: Vec<&Arc<dyn Node>> = nodes.iter().collect();
    let mut t = token_of(&refs);
    t.write(op).write_str(tag);
    // The function may return shorter blocks along an unknown axis, so its output's lengths
    // there are its own: a new origin (derived from this call), never equated with the
    // input's by elementwise operations.
    let mut out = out;
    for (k, origin) in out.unknown_axes().to_vec().into_iter().enumerate() {
        if let Some(o) = origin {
            let mut derived = t.clone();
            derived.write_u64(o).write_str("blockwise-lengths");
            out = out.with_unknown_axis(k, derived.finish());
        }
    }
    let meta = Meta::new::<U>(name, t, out);
    Ok(BlockArray::wrap(Arc::new(BlockwiseNode {
        meta,
        inputs: nodes,
        f: func,
    })))
}

impl<T: Element> BlockArray<T> {
    /// Apply `f` to every block (dask's `map_blocks`). `out_chunks` declares the output chunks
    /// (`None`: unchanged; otherwise explicit, with the same number of blocks per axis). Keys
    /// as for [`blockwise`]: unique to the call unless `name` is an [`OpName::pure`].
    ///
    /// ```
    /// use blockarray::{BlockArray, ChunkSpec};
    /// let x = BlockArray::<f64>::ones(&[6, 4], [3, 2])?;
    /// // Each 3×2 block becomes a 1×2 block of its column sums.
    /// let sums = x.map_blocks("colsum", Some(ChunkSpec::Explicit(vec![vec![1, 1], vec![2, 2]])), |b, _| {
    ///     Ok(b.sum_axis(ndarray::Axis(0)).insert_axis(ndarray::Axis(0)))
    /// })?;
    /// assert_eq!(sums.compute()?, ndarray::ArrayD::from_elem(vec![2, 4], 3.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn map_blocks<U, F>(
        &self,
        name: impl Into<OpName>,
        out_chunks: Option<ChunkSpec>,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(&ArrayD<T>, &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
            + Send
            + Sync
            + 'static,
    {
        let tag = std::any::type_name::<F>();
        blockwise_tagged(
            &name.into(),
            tag,
            &[self],
            out_chunks,
            move |b: &[&ArrayD<T>], info: &BlockInfo<'_>| f(b[0], info),
        )
    }
}
