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
//! // Only the blocks feeding y[..3] are computed: 6 of x's 100.
//! let head = y.slice(s![..3])?.compute()?;
//! assert!(head.iter().all(|v| (0.9..1.1).contains(v)));
//! # Ok::<(), blockarray::Error>(())
//! ```
//!
//! What is where:
//!
//! * [`BlockArray`] — the lazy array: creation ([`BlockArray::ones`], [`BlockArray::arange`],
//!   [`BlockArray::from_array`], [`random::Rng`], …), elementwise operators and ufuncs
//!   ([`elementwise`]), reductions ([`mod@reduce`]), indexing ([`slicing`], [`s!`]), shape
//!   operations ([`shape`]), contractions ([`tensordot`]), user block functions
//!   ([`mod@blockwise`]), and results ([`lower`]: `compute`, `store`, `persist`, [`Computation`]).
//! * [`Chunks`] — how an array is cut into blocks (per-axis block lengths, like dask's tuple
//!   of tuples), built from a [`ChunkSpec`]; [`plan_rechunk`] moves between chunkings without
//!   any task reading more than a memory bound.
//! * [`Node`], [`ChunkSource`], [`ChunkSink`], [`Reduction`] — the traits extensions implement:
//!   new operations, storage formats, reductions.
//! * [`Error`] — every failure, with an [`ErrorKind`] and a message naming what was wrong,
//!   returned when the expression is built wherever it can be known then.

#![doc(test(attr(deny(warnings))))]

pub mod array;
pub mod blockwise;
pub mod chunks;
pub mod contract;
pub mod element;
pub mod elementwise;
pub mod error;
pub mod index;
pub mod lower;
pub mod rechunk;
pub mod reduce;
pub mod shape;
pub mod slicing;
pub mod source;
#[cfg(test)]
mod testutil;

pub use array::{BlockArray, BlockTask, Kit, Meta, Node, block_ref, block_value, kit};
pub use blockwise::{BlockInfo, blockwise};
pub use chunks::{
    AxisChunks, BlockIndices, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, MAX_BLOCKS_PER_AXIS,
    broadcast_chunks, broadcast_shapes, unify_axis,
};
pub use contract::{CONTRACT_GROUP, MatMul, tensordot};
pub use element::{CastTo, Element, Float, Numeric, Real};
pub use elementwise::{Kernel, Operand, where_};
pub use error::{Error, ErrorKind, Result};
pub use index::{
    AsIndex, AxisSlicePlan, ExpandedArgs, NormSlice, Positions, ResolvedArg, SliceArg, SlicePiece,
    SliceRange, TakeBlock, TakePlan, TakeSource, expand_args, normalize_index, normalize_slice,
    plan_axis_slice, plan_take, resolve_args,
};
pub use lower::{
    ArraySink, ChunkSink, Computation, Handle, Results, default_scheduler, set_default_scheduler,
};
pub use rechunk::{Piece, plan_rechunk, rechunk_pieces, rechunk_read_elems};
pub use reduce::{ArgExt, DEFAULT_FANIN, Fold, MomentKind, Moments, Reduction, reduce};
pub use shape::{concatenate, stack};
pub use source::{ChunkSource, SourceNode, random};
