//! `BlockArray<T>`: a lazy chunked array, and the expression nodes behind it.
//!
//! # Design notes
//!
//! An array is a handle on an expression node ([`Node`]). Nodes are type-erased so that one
//! expression can mix element types (a comparison yields `bool`, `astype` changes type), and
//! they are shared (`Arc`), so building `x + x.t()` never copies `x`'s expression.
//!
//! Building an expression does constant work per node, whatever the number of blocks: a node
//! holds its [`Chunks`] and its parameters, never per-block tasks. Tasks appear only when the
//! expression is lowered ([`crate::expr::lower`]), starting from the output blocks that were asked for:
//! each node says which input blocks one of its output blocks needs ([`Node::block`]), so only
//! the blocks that feed the requested output ever become tasks.
//!
//! Every node has a name `op-token`, where the token hashes the operation, its parameters and
//! its inputs' names: equal expressions get equal keys, so shared work is computed once.

use crate::{Chunks, Element, Error, Result};
use dag_core::{BlockIndex, TaskError, TaskFn, TaskResult, Tokenizer, Value};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// What every node knows about its output.
#[derive(Clone)]
pub struct Meta {
    /// `op-token`: the name of this node's tasks.
    pub name: Arc<str>,
    /// The output's chunks (and so its shape).
    pub chunks: Chunks,
    /// The output's element type (NumPy name).
    pub dtype: &'static str,
    /// Bytes per element.
    pub itemsize: usize,
    /// Type-erased block operations for the element type.
    pub kit: &'static dyn Kit,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("name", &self.name)
            .field("chunks", &self.chunks.to_string())
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl Meta {
    /// Metadata for a node computing `T`, named `op-<token>` where the token hashes `op`, the
    /// chunks and whatever `tokenizer` was fed (parameters and input names).
    pub fn new<T: Element>(op: &str, mut tokenizer: Tokenizer, chunks: Chunks) -> Meta {
        tokenizer.write_str(op).write_str(T::DTYPE);
        write_chunks(&mut tokenizer, &chunks);
        Meta {
            name: format!("{op}-{}", tokenizer.finish_hex()).into(),
            chunks,
            dtype: T::DTYPE,
            itemsize: T::itemsize(),
            kit: kit::<T>(),
        }
    }

    /// The same metadata under another op name and token, with other chunks (for nodes that
    /// move blocks around without knowing their element type).
    pub fn derive(&self, op: &str, mut tokenizer: Tokenizer, chunks: Chunks) -> Meta {
        tokenizer.write_str(op).write_str(self.dtype);
        write_chunks(&mut tokenizer, &chunks);
        Meta {
            name: format!("{op}-{}", tokenizer.finish_hex()).into(),
            chunks,
            dtype: self.dtype,
            itemsize: self.itemsize,
            kit: self.kit,
        }
    }

    /// The output shape.
    pub fn shape(&self) -> &[usize] {
        self.chunks.shape()
    }

    /// The operation name (the name without its token).
    pub fn op(&self) -> &str {
        self.name.rsplit_once('-').map_or(&self.name, |(op, _)| op)
    }
}

/// Feed a node's output chunks to its token: the block lengths, and for unknown axes their
/// origins (known chunkings hash as they always did).
fn write_chunks(t: &mut Tokenizer, chunks: &Chunks) {
    for axis in chunks.axes() {
        t.write(axis);
    }
    if !chunks.is_known() {
        for u in chunks.unknown_axes() {
            t.write_u64(u.map_or(0, |o| o.wrapping_add(1)));
        }
    }
}

/// Block operations that do not depend on the element type, behind a per-type vtable, so that
/// nodes that only move data (slices, transposes, rechunks, reshapes, takes) need not be generic.
pub trait Kit: Send + Sync {
    /// The block sliced by `info` (ranges with steps, integer indices, new axes), owned.
    fn slice(&self, block: &Value, info: &[SliceInfoElem]) -> TaskResult;
    /// The block with its axes permuted.
    fn permute(&self, block: &Value, axes: &[usize]) -> TaskResult;
    /// The block reshaped (C order) to `shape`.
    fn reshape(&self, block: &Value, shape: &[usize]) -> TaskResult;
    /// The block's shape (an error if the value is not a block of this element type).
    fn shape(&self, block: &Value) -> std::result::Result<Vec<usize>, TaskError>;
    /// A new block of `shape` made of pieces: each `(block, source region, destination
    /// region)` copies the source region of its block to the destination region.
    fn assemble(
        &self,
        shape: &[usize],
        pieces: &[(&Value, Vec<SliceInfoElem>, Vec<SliceInfoElem>)],
    ) -> TaskResult;
    /// A new block of `shape` gathered along `axis`: each `(block, source positions, output
    /// positions)` copies those slices of its block to those output positions.
    fn gather(
        &self,
        shape: &[usize],
        axis: usize,
        parts: &[(&Value, &[usize], &[usize])],
    ) -> TaskResult;
}

struct KitImpl<T>(PhantomData<fn() -> T>);

/// The block operations for `T`.
pub fn kit<T: Element>() -> &'static dyn Kit {
    &KitImpl::<T>(PhantomData)
}

impl<T: Element> Kit for KitImpl<T> {
    fn slice(&self, block: &Value, info: &[SliceInfoElem]) -> TaskResult {
        Ok(block_value(block_ref::<T>(block)?.slice(info).to_owned()))
    }
    fn permute(&self, block: &Value, axes: &[usize]) -> TaskResult {
        crate::ops::fused::permuted::<T>(block, axes)
    }
    fn shape(&self, block: &Value) -> std::result::Result<Vec<usize>, TaskError> {
        Ok(block_ref::<T>(block)?.shape().to_vec())
    }
    fn reshape(&self, block: &Value, shape: &[usize]) -> TaskResult {
        let b = block_ref::<T>(block)?;
        let b = b.as_standard_layout().into_owned();
        Ok(block_value(b.into_shape_with_order(IxDyn(shape))?))
    }
    fn assemble(
        &self,
        shape: &[usize],
        pieces: &[(&Value, Vec<SliceInfoElem>, Vec<SliceInfoElem>)],
    ) -> TaskResult {
        let mut out = ArrayD::from_elem(IxDyn(shape), T::default());
        for (block, src, dst) in pieces {
            let b = block_ref::<T>(block)?;
            out.slice_mut(dst.as_slice())
                .assign(&b.slice(src.as_slice()));
        }
        Ok(block_value(out))
    }
    fn gather(
        &self,
        shape: &[usize],
        axis: usize,
        parts: &[(&Value, &[usize], &[usize])],
    ) -> TaskResult {
        let mut out = ArrayD::from_elem(IxDyn(shape), T::default());
        let ax = ndarray::Axis(axis);
        for (block, from, to) in parts {
            let b = block_ref::<T>(block)?;
            for (&f, &t) in from.iter().zip(to.iter()) {
                out.index_axis_mut(ax, t).assign(&b.index_axis(ax, f));
            }
        }
        Ok(block_value(out))
    }
}

/// How to compute one output block: the input blocks it reads and the function.
pub struct BlockTask {
    /// `(input number, block index)` of each value the function receives, in order. The
    /// input number [`BlockTask::SELF`] names a block of the node itself (a recurrence such
    /// as a sequential scan, whose block `j` starts from block `j - 1`'s last values); those
    /// references must not form a cycle.
    pub deps: Vec<(usize, BlockIndex)>,
    /// The function of those values.
    pub func: TaskFn,
}

impl BlockTask {
    /// The input number of a dependency on another block of the same node.
    pub const SELF: usize = usize::MAX;
}

/// One node of an array expression. Implement it (through the public constructors such as
/// `map_blocks`, or sources) to add operations; lowering calls [`Node::block`] only for blocks
/// some output needs.
pub trait Node: Any + Send + Sync {
    /// Name, chunks and element type of the output.
    fn meta(&self) -> &Meta;

    /// The nodes this one reads, in the order [`BlockTask::deps`] numbers them.
    fn inputs(&self) -> Vec<Arc<dyn Node>>;

    /// The task for output block `index` (a valid block index of `meta().chunks`).
    fn block(&self, index: &[usize]) -> BlockTask;

    /// Whether each output block reads at most one block of each input, cheaply. Lowering
    /// fuses a chain of such nodes into one task per block (blockwise fusion); other nodes
    /// (reductions' combine steps, rechunks, contractions) keep their own tasks, so their
    /// parallelism is kept.
    fn blockwise(&self) -> bool {
        true
    }

    /// Where this node's tasks run when a run is spread over several processes (an MPI
    /// scheduler): anywhere (the default), or pinned for tasks with side effects — with the
    /// results ([`dag_core::Placement::Results`], writes into memory) or on the first process
    /// ([`dag_core::Placement::First`], writes into files): a store takes its sink's
    /// ([`ChunkSink::placement`](crate::ChunkSink::placement)).
    fn placement(&self) -> dag_core::Placement {
        dag_core::Placement::Anywhere
    }

    /// Absorb a slice of this node's output (one normalised slice per output axis), returning
    /// an equivalent node that computes only the selected elements, or `None` when this node
    /// cannot (then a slice node is put on top). Elementwise maps, transposes, slices and
    /// sources implement it: that is slice push-down.
    fn push_slice(&self, _slices: &[crate::NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        None
    }

    /// The predicted size in bytes of output block `index`'s value, for planning memory
    /// before a run. The default — the block's elements times the element size — is right
    /// for every node whose tasks return blocks of its element type; nodes returning other
    /// values (reduction partials, `()` from stores) say theirs.
    fn block_nbytes(&self, index: &[usize]) -> usize {
        let meta = self.meta();
        crate::plan::chunks::shape_bytes(&meta.chunks.block_shape(index), meta.itemsize)
    }

    /// The storage this node reads directly (a source's
    /// [`ChunkSource::resource`](crate::ChunkSource::resource)), so that a computation can
    /// refuse to write in place into what it reads. Empty for nodes that compute.
    fn resources(&self) -> Vec<String> {
        Vec::new()
    }

    /// What task listings, progress bars and profiles call this node's tasks: the operation
    /// name by default; a node standing for a fused chain names the chain (`exp+mul+add`).
    fn label(&self) -> &str {
        self.meta().op()
    }
}

/// A lazy n-dimensional array of `T`, cut into blocks.
///
/// Operations build an expression; nothing is computed until `compute`, `store` or `persist`.
/// Cloning is cheap (the expression is shared).
pub struct BlockArray<T> {
    pub(crate) node: Arc<dyn Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for BlockArray<T> {
    fn clone(&self) -> Self {
        BlockArray {
            node: Arc::clone(&self.node),
            _type: PhantomData,
        }
    }
}

impl<T: Element> BlockArray<T> {
    /// An array from an expression node computing `T` blocks.
    ///
    /// Fails if the node's element type is not `T`.
    pub fn from_node(node: Arc<dyn Node>) -> Result<BlockArray<T>> {
        if node.meta().dtype != T::DTYPE {
            return Err(Error::type_error(format!(
                "node {} computes {}, not {}",
                node.meta().name,
                node.meta().dtype,
                T::DTYPE
            )));
        }
        Ok(BlockArray {
            node,
            _type: PhantomData,
        })
    }

    pub(crate) fn wrap(node: Arc<dyn Node>) -> BlockArray<T> {
        debug_assert_eq!(node.meta().dtype, T::DTYPE);
        BlockArray {
            node,
            _type: PhantomData,
        }
    }

    /// The expression node.
    pub fn node(&self) -> &Arc<dyn Node> {
        &self.node
    }

    /// The node's name (`op-token`): the name of this array's tasks.
    pub fn name(&self) -> &str {
        &self.node.meta().name
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        self.node.meta().shape()
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the whole array (`usize::MAX` when more).
    pub fn nbytes(&self) -> usize {
        self.len().saturating_mul(T::itemsize())
    }

    /// The chunks: block lengths along each axis.
    pub fn chunks(&self) -> &Chunks {
        &self.node.meta().chunks
    }

    /// Blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks().numblocks()
    }

    /// NumPy's name for the element type.
    pub fn dtype(&self) -> &'static str {
        T::DTYPE
    }

    /// Tasks in the full, unfused graph of this array (what dask's repr counts): the sum of the
    /// block counts of every node in the expression. Cheap: no tasks are built.
    pub fn ntasks(&self) -> usize {
        crate::expr::lower::nodes_of(std::slice::from_ref(&self.node))
            .iter()
            .map(|n| n.meta().chunks.nblocks())
            .sum()
    }

    pub(crate) fn check_axis(&self, axis: usize) -> Result<()> {
        if axis >= self.ndim() {
            return Err(Error::axis_out_of_bounds(axis, self.ndim()));
        }
        Ok(())
    }
}

/// Wrap a block as a task value (its size is its element bytes).
pub fn block_value<T: Element>(block: ArrayD<T>) -> Value {
    let nbytes = block.len() * T::itemsize();
    Value::with_nbytes(block, nbytes)
}

/// The block inside a task value.
pub fn block_ref<T: Element>(value: &Value) -> std::result::Result<&ArrayD<T>, TaskError> {
    Ok(value.get::<ArrayD<T>>()?)
}

/// The tokenizer state every node starts from, fed the names of its inputs.
pub(crate) fn token_of(inputs: &[&Arc<dyn Node>]) -> Tokenizer {
    let mut t = Tokenizer::new();
    for n in inputs {
        t.write_str(&n.meta().name);
    }
    t
}

fn tuple(v: &[usize]) -> String {
    match v {
        [x] => format!("({x},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl<T: Element> fmt::Display for BlockArray<T> {
    /// What dask's repr shows:
    ///
    /// ```text
    /// BlockArray<float64> shape=(10000, 10000) 800.00 MB
    ///   blocks of (1000, 1000) 8.00 MB: 100 blocks in (10, 10), 100 tasks
    ///   chunks ((1000 × 10), (1000 × 10))
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = self.chunks().max_block_shape();
        let block_bytes = crate::plan::chunks::shape_bytes(&block, T::itemsize());
        writeln!(
            f,
            "BlockArray<{}> shape={} {}",
            T::DTYPE,
            tuple(self.shape()),
            dag_core::fmt_bytes(self.nbytes())
        )?;
        writeln!(
            f,
            "  blocks of {} {}: {} blocks in {}, {} tasks",
            tuple(&block),
            dag_core::fmt_bytes(block_bytes),
            self.chunks().nblocks(),
            tuple(&self.numblocks()),
            self.ntasks()
        )?;
        write!(f, "  chunks {}", self.chunks())
    }
}

impl<T: Element> fmt::Debug for BlockArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BlockArray<{}>({}, shape={:?})",
            T::DTYPE,
            self.name(),
            self.shape()
        )
    }
}
