//! # blockarray: dask.array for Rust
//!
//! n-dimensional arrays too large for memory, cut into blocks, processed by blocked algorithms
//! that become task graphs (see the `dag-core` crate) run by a pluggable scheduler.
//!
//! This crate currently holds the pure arithmetic underneath: no task graphs yet.
//!
//! * [`Chunks`] — how an array is cut into blocks (per-axis block lengths, like dask's tuple
//!   of tuples), built from a [`ChunkSpec`]; [`unify_axis`], [`broadcast_shapes`] and
//!   [`broadcast_chunks`] for elementwise operations.
//! * [`plan_rechunk`] and [`rechunk_pieces`] — moving between chunkings without any task
//!   reading more than a memory limit.
//! * [`SliceArg`], [`s!`], [`normalize_slice`], [`plan_axis_slice`], [`plan_take`] — NumPy
//!   indexing semantics mapped onto blocks, with work proportional to the blocks touched.
//! * [`Error`] — every failure, with a [`ErrorKind`] and a message naming what was wrong.
//!
//! ```
//! use blockarray::{Chunks, ChunkSpec, normalize_slice, s, SliceArg};
//!
//! // A 10000 × 10000 array of f64 in blocks of 1000 × 1000.
//! let chunks = Chunks::new(&[10_000, 10_000], [1000, 1000], 8)?;
//! assert_eq!(chunks.numblocks(), vec![10, 10]);
//! assert_eq!(chunks.block_of(0, 4321)?, (4, 321));
//!
//! // Automatic chunking keeps blocks under 128 MiB, as square as possible.
//! let auto = Chunks::new(&[10_000, 10_000], ChunkSpec::auto(), 8)?;
//! assert_eq!(auto.to_string(), "((3334, 3334, 3332), (3334, 3334, 3332))");
//!
//! // x[1:100] touches a single block along axis 0.
//! let args = s![1..100, ..];
//! let SliceArg::Range { start, stop, step } = args[0] else { unreachable!() };
//! let plan = chunks.plan_slice(0, &normalize_slice(10_000, start, stop, step)?)?;
//! assert_eq!(plan.chunks, vec![99]);
//! assert_eq!(plan.pieces[0].block, 0);
//! # Ok::<(), blockarray::Error>(())
//! ```

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

pub use array::{BlockArray, BlockTask, Kit, Meta, Node, block_ref, block_value, kit};
pub use blockwise::{BlockInfo, blockwise};
pub use chunks::{
    AxisChunks, BlockIndices, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, broadcast_chunks,
    broadcast_shapes, unify_axis,
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
