//! # blockarray: dask.array for Rust
//!
//! n-dimensional arrays too large for memory, cut into blocks (each an `ndarray` array),
//! processed by blocked algorithms that become task graphs (`dag-core`) run by a pluggable
//! scheduler (`sched-threaded` by default, `sched-sync`, or any `dag_core::Scheduler`).
//!
//! Operations build an expression and return at once; nothing runs until `compute`, `store` or
//! `persist`, and then only the blocks the result needs are computed.
//!
//! ```
//! use blockarray::{BlockArray, random::Rng, s};
//!
//! // 800 MB of random numbers in 100 blocks of 1000 × 1000: nothing is generated yet.
//! let x: BlockArray<f64> = Rng::new(42).random(&[10_000, 10_000], [1000, 1000])?;
//! // The seed talk's example: (x + x.T)[::2, 5000:].mean(axis=1)
//! let y = (&x + &x.t())?.slice(s![..;2, 5000..])?.mean(Some(&[1]), false)?;
//! assert_eq!(y.shape(), &[5000]);
//! // Only the blocks feeding y[..3] are computed: 10 of x's 100 (5 of x, 5 of x.T).
//! let head = y.slice(s![..3])?.compute()?;
//! assert!(head.iter().all(|v| (0.9..1.1).contains(v)));
//! # Ok::<(), blockarray::Error>(())
//! ```
//!
//! What is where:
//!
//! * [`BlockArray`] — the lazy array: creation ([`BlockArray::ones`], [`BlockArray::arange`],
//!   [`BlockArray::from_array`], [`random::Rng`], …), elementwise operators and ufuncs
//!   ([`ops::elementwise`]), reductions ([`ops::reduce`]), indexing ([`ops::slicing`], [`s!`]),
//!   shape operations ([`ops::shape`]), contractions ([`tensordot`]), user block functions
//!   ([`ops::blockwise`]), blocks with their neighbours' margins ([`ops::overlap`]:
//!   `overlap`, `map_overlap`, `trim_internal`), selection and ordering ([`ops::select`]:
//!   `topk`, exact `quantile`/`percentile`/`median`, out-of-core `sort`/`argsort`/`partition`),
//!   and results ([`expr::lower`]: `compute`, `store`, `persist`, [`Computation`]).
//! * [`Chunks`] — how an array is cut into blocks (per-axis block lengths, like dask's tuple
//!   of tuples), built from a [`ChunkSpec`]; [`plan::rechunk::plan_rechunk`] moves between
//!   chunkings without any task reading more than a memory bound.
//! * [`ext`] — the traits extensions implement: new operations ([`ext::Node`]), storage formats
//!   ([`ext::ChunkSource`], [`ext::ChunkSink`]), reductions ([`ext::Reduction`]).
//! * Diagnostics — [`ProgressBar`], and in [`diagnostics`] a task [`Profiler`](diagnostics::Profiler),
//!   a [`ResourceProfiler`](diagnostics::ResourceProfiler), an HTML
//!   [`Report`](diagnostics::Report) and Chrome traces of a run, and (cargo feature
//!   `dashboard`) a live dashboard in the browser; [`BlockArray::visualize_operations`] and
//!   [`BlockArray::visualize`] draw the graph of operations and the task graph with Graphviz.
//! * [`Error`] — every failure, with an [`ErrorKind`] and a message naming what was wrong,
//!   returned when the expression is built wherever it can be known then.
//!
//! The source is laid out the way data flows: [`expr`] (the array handle, nodes, sources,
//! lowering and sinks), [`ops`] (one module per family of operations), [`plan`] (chunks, index
//! arithmetic, rechunk plans).

#![doc(test(attr(deny(warnings))))]

pub mod element;
pub mod error;
pub mod expr;
pub mod ops;
pub mod plan;
#[cfg(test)]
mod testutil;

/// The traits and helpers an extension crate implements or calls: new operations ([`Node`]),
/// storage formats ([`ChunkSource`], [`ChunkSink`]), reductions ([`Reduction`]), and the
/// type-erased block operations nodes use ([`Kit`]), and the key tokenizer they feed
/// ([`Tokenizer`]).
pub mod ext {
    pub use crate::element::plain_number;
    pub use crate::expr::array::{BlockTask, Kit, Meta, Node, block_ref, block_value, kit};
    pub use crate::expr::lower::ChunkSink;
    pub use crate::expr::source::{ChunkSource, SourceNode};
    pub use crate::ops::reduce::Reduction;
    /// What [`Reduction::tokenize`], [`ChunkSource::tokenize`] and [`Node`]s feed their
    /// parameters into.
    pub use dag_core::{Tokenize, Tokenizer};
}

pub use dag_core::{OpName, ProgressBar, diagnostics};
pub use element::{Bitwise, CastTo, Element, Float, Integer, Numeric, Promote, Real};
pub use error::{Error, ErrorKind, Result};
pub use expr::array::BlockArray;
pub use expr::lower::{
    ArraySink, Computation, DEFAULT_MEMORY_SHARE, Handle, MAX_BUILD_TASKS, Results, RunPlan,
    check_build_tasks, default_max_tasks, default_scheduler, set_default_scheduler,
};
pub use expr::random;
pub use expr::visualize::MAX_DRAWN_TASKS;
pub use ext::*;
pub use ops::blockwise::{BlockInfo, blockwise};
pub use ops::contract::{CONTRACT_GROUP, MatMul, tensordot};
pub use ops::einsum::{einsum, outer};
pub use ops::elementwise::{Operand, where_};
pub use ops::map_axes::{apply_gufunc, blockwise_axes};
pub use ops::mask::extract;
pub use ops::overlap::{
    Boundaries, Boundary, Depth, MapOverlap, map_overlap, overlap, trim_internal,
};
pub use ops::pad::PadMode;
pub use ops::reduce::{ArgExt, DEFAULT_FANIN, Fold, MomentKind, Moments, reduce};
pub use ops::select::SortKey;
pub use ops::select::quantile::{
    QuantileMethod, Quantiles, median, nanmedian, nanpercentile, nanquantile, percentile, quantile,
};
pub use ops::select::sort::{SORT_MEMORY, SortOptions, argpartition, argsort, partition, sort};
pub use ops::select::topk::{argtopk, topk};
pub use ops::shape::{concatenate, glob_paths, join_named, join_paths, stack};
pub use ops::shape_more::{broadcast_arrays, indices, meshgrid};
pub use ops::values::{
    Bins, Side, Unique, UniqueOptions, bincount, bincount_weighted, digitize, histogram,
    histogramdd, searchsorted, where_indices,
};
pub use plan::chunks::{
    AxisChunks, BlockIndices, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, MAX_BLOCKS_PER_AXIS,
    broadcast_chunks, broadcast_shapes, shape_bytes, unify_axis,
};
pub use plan::index::{AsIndex, NormSlice, SliceArg, normalize_index, normalize_slice};
