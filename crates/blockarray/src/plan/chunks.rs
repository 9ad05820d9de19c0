//! Chunkings: how an array is cut into blocks.
//!
//! A [`Chunks`] holds, for every axis, the lengths of the blocks along that axis, like dask's
//! tuple of tuples: `((100, 100), (50, 50, 20))` cuts a `200 × 120` array into `2 × 3` blocks.
//! Prefix offsets are cached per axis, so finding the block that holds a position is a binary
//! search.
//!
//! A chunking is built from a shape and a [`ChunkSpec`]: explicit block lengths, one block shape
//! for every block, `auto` (a block shape close to a cube whose bytes stay under a target), or a
//! choice per axis ([`AxisChunks`]).
//!
//! This module also holds the chunk arithmetic of elementwise operations: [`unify_axis`] (the
//! common refinement of two chunkings of one axis), [`broadcast_shapes`] and
//! [`broadcast_chunks`] (NumPy broadcasting, for shapes and for chunkings).

use crate::error::{Error, Result, fmt_shape};
use std::fmt;
use std::ops::Range;

/// The default target size of one block for automatic chunking: 128 MiB (as in dask).
pub const DEFAULT_CHUNK_BYTES: usize = 128 * 1024 * 1024;

/// How to chunk one axis, inside [`ChunkSpec::PerAxis`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AxisChunks {
    /// Blocks of this length; the last block is shorter when the length does not divide the
    /// axis. A length larger than the axis means one block. Zero is an error unless the axis is
    /// empty.
    Size(usize),
    /// These block lengths, which must add up to the axis length.
    Explicit(Vec<usize>),
    /// One block spanning the whole axis.
    Full,
    /// Chosen automatically, sharing a [`DEFAULT_CHUNK_BYTES`] budget with the other `Auto`
    /// axes once the fixed axes have taken their share.
    Auto,
}

impl From<usize> for AxisChunks {
    fn from(size: usize) -> AxisChunks {
        AxisChunks::Size(size)
    }
}

impl From<Vec<usize>> for AxisChunks {
    fn from(blocks: Vec<usize>) -> AxisChunks {
        AxisChunks::Explicit(blocks)
    }
}

/// A description of a chunking, resolved against a shape by [`Chunks::new`].
///
/// Conversions make the common cases short:
///
/// | value | meaning |
/// | --- | --- |
/// | `vec![vec![5, 5], vec![3, 3, 1]]` | [`ChunkSpec::Explicit`] block lengths per axis |
/// | `vec![5, 3]`, `[5, 3]`, `&[5, 3][..]` | [`ChunkSpec::Shape`]: blocks of shape `5 × 3` |
/// | `100` | [`ChunkSpec::Uniform`]: blocks of length 100 on every axis |
/// | `ChunkSpec::auto()` | [`ChunkSpec::Auto`] with the 128 MiB default |
/// | `vec![AxisChunks::Full, AxisChunks::Auto]` | [`ChunkSpec::PerAxis`] |
/// | `&chunks` | the same block lengths as an existing [`Chunks`] |
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChunkSpec {
    /// The block lengths along each axis; each axis must add up to its length. A zero-length
    /// axis has the single block `[0]` (an empty list is accepted and means the same).
    Explicit(Vec<Vec<usize>>),
    /// One block shape: entry `i` is the block length along axis `i` (the last block along an
    /// axis is shorter when the length does not divide the axis; an entry larger than the axis
    /// means one block).
    Shape(Vec<usize>),
    /// The same block length along every axis.
    Uniform(usize),
    /// A block shape whose bytes stay at most `target_bytes`, as close to a cube as the shape
    /// allows (see [`Chunks::new`] for the algorithm).
    Auto {
        /// The largest number of bytes a block may hold.
        target_bytes: usize,
    },
    /// A choice for each axis.
    PerAxis(Vec<AxisChunks>),
}

impl ChunkSpec {
    /// Automatic chunking with the default target of [`DEFAULT_CHUNK_BYTES`] (128 MiB).
    pub fn auto() -> ChunkSpec {
        ChunkSpec::Auto {
            target_bytes: DEFAULT_CHUNK_BYTES,
        }
    }

    /// Automatic chunking with blocks of at most `target_bytes` bytes.
    pub fn auto_bytes(target_bytes: usize) -> ChunkSpec {
        ChunkSpec::Auto { target_bytes }
    }
}

impl Default for ChunkSpec {
    fn default() -> ChunkSpec {
        ChunkSpec::auto()
    }
}

impl From<Vec<usize>> for ChunkSpec {
    fn from(block_shape: Vec<usize>) -> ChunkSpec {
        ChunkSpec::Shape(block_shape)
    }
}

impl From<&[usize]> for ChunkSpec {
    fn from(block_shape: &[usize]) -> ChunkSpec {
        ChunkSpec::Shape(block_shape.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(block_shape: [usize; N]) -> ChunkSpec {
        ChunkSpec::Shape(block_shape.to_vec())
    }
}

impl<const N: usize> From<&[usize; N]> for ChunkSpec {
    fn from(block_shape: &[usize; N]) -> ChunkSpec {
        ChunkSpec::Shape(block_shape.to_vec())
    }
}

impl From<usize> for ChunkSpec {
    fn from(block_len: usize) -> ChunkSpec {
        ChunkSpec::Uniform(block_len)
    }
}

impl From<Vec<Vec<usize>>> for ChunkSpec {
    fn from(chunks: Vec<Vec<usize>>) -> ChunkSpec {
        ChunkSpec::Explicit(chunks)
    }
}

impl From<Vec<AxisChunks>> for ChunkSpec {
    fn from(axes: Vec<AxisChunks>) -> ChunkSpec {
        ChunkSpec::PerAxis(axes)
    }
}

impl From<&Chunks> for ChunkSpec {
    fn from(chunks: &Chunks) -> ChunkSpec {
        ChunkSpec::Explicit(chunks.chunks.clone())
    }
}

impl From<Chunks> for ChunkSpec {
    fn from(chunks: Chunks) -> ChunkSpec {
        ChunkSpec::Explicit(chunks.chunks)
    }
}

impl TryFrom<Vec<Vec<usize>>> for Chunks {
    type Error = Error;

    /// [`Chunks::from_blocks`].
    fn try_from(chunks: Vec<Vec<usize>>) -> Result<Chunks> {
        Chunks::from_blocks(chunks)
    }
}

/// The chunking of an array: the block lengths along each axis, with cached prefix offsets.
///
/// Invariants: every axis has at least one block; blocks are non-empty except on a zero-length
/// axis, which has the single block `0` (as in dask).
///
/// ```
/// use blockarray::Chunks;
///
/// let c = Chunks::new(&[200, 120], [100, 50], 8)?;
/// assert_eq!(c.axis(1), &[50, 50, 20]);
/// assert_eq!(c.numblocks(), vec![2, 3]);
/// assert_eq!(c.block_shape(&[1, 2]), vec![100, 20]);
/// assert_eq!(c.block_of(1, 110)?, (2, 10));
/// assert_eq!(c.to_string(), "((100, 100), (50, 50, 20))");
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Unknown chunk sizes
///
/// Value-dependent operations (boolean masks, `nonzero`, `unique`, …) make arrays whose block
/// lengths along some axis are not known until computed, like dask's NaN chunks. Such an axis is
/// marked unknown ([`unknown_axis`](Self::unknown_axis)) with an *origin* token naming what made
/// it unknown (arrays of the same origin have equal real lengths, so they combine
/// elementwise); the lengths stored for it are used only to plan memory (upper bounds after a
/// mask or `unique`; `bincount`'s `minlength`, which bounds nothing).
/// Operations that need real lengths (slicing by position, reshape, rechunk, contractions
/// along it, stores into files) refuse such arrays with an error naming
/// `BlockArray::compute_chunk_sizes` ([`require_known`](Self::require_known)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chunks {
    chunks: Vec<Vec<usize>>,
    offsets: Vec<Vec<usize>>,
    shape: Vec<usize>,
    /// Per axis: `Some(origin)` when the lengths are unknown (then `chunks` holds bounds).
    unknown: Vec<Option<u64>>,
}

impl Chunks {
    /// Resolves `spec` against `shape`, for elements of `itemsize` bytes (used by automatic
    /// chunking only).
    ///
    /// Automatic chunking (for [`ChunkSpec::Auto`] and [`AxisChunks::Auto`]), in the manner of
    /// dask's: the budget is `target_bytes / itemsize` elements, divided by the largest block
    /// length of every axis that is not automatic. The automatic axes share what remains
    /// equally: with `k` of them, the block length is the integer `k`-th root `s` of the budget;
    /// an axis not longer than `s` becomes one block and leaves its share to the others, until
    /// none is. Each remaining axis is then cut into `ceil(len / s)` blocks of (nearly) equal
    /// length, `ceil(len / nblocks)` each with the last possibly shorter: as many blocks as
    /// dask's, without its short last block (dask gives `(4096, 4096, 1808)` where this gives
    /// `(3334, 3334, 3332)`). A block never holds more than `max(target_bytes, itemsize)`
    /// bytes.
    ///
    /// # Errors
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks), naming the chunks and the shape, when
    /// the number of axes differs from the shape's, explicit blocks do not add up to the axis
    /// length, a block length is zero on a non-empty axis, or an axis would have more than
    /// [`MAX_BLOCKS_PER_AXIS`] blocks. [`ErrorKind::Shape`](crate::ErrorKind::Shape) when the
    /// array would have more than `isize::MAX` bytes.
    pub fn new(shape: &[usize], spec: impl Into<ChunkSpec>, itemsize: usize) -> Result<Chunks> {
        let spec = spec.into();
        check_size(shape, itemsize)?;
        let axes = match &spec {
            ChunkSpec::Explicit(chunks) => {
                check_ndim(chunks.len(), shape, || fmt_chunks(chunks))?;
                chunks
                    .iter()
                    .zip(shape)
                    .enumerate()
                    .map(|(axis, (blocks, &len))| {
                        explicit_axis(blocks, len)
                            .map_err(|why| explicit_error(chunks, shape, axis, &why))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            ChunkSpec::Shape(block) => {
                check_ndim(block.len(), shape, || {
                    format!("with block shape {}", fmt_shape(block))
                })?;
                block
                    .iter()
                    .zip(shape)
                    .enumerate()
                    .map(|(axis, (&b, &len))| {
                        regular_axis(len, b).map_err(|why| {
                            Error::chunks(format!(
                                "block shape {} does not fit the shape {}: axis {axis}: {why}",
                                fmt_shape(block),
                                fmt_shape(shape)
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            ChunkSpec::Uniform(b) => shape
                .iter()
                .enumerate()
                .map(|(axis, &len)| {
                    regular_axis(len, *b).map_err(|why| {
                        Error::chunks(format!(
                            "block length {b} does not fit the shape {}: axis {axis}: {why}",
                            fmt_shape(shape)
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            ChunkSpec::Auto { target_bytes } => {
                let fixed = vec![None; shape.len()];
                auto_axes(shape, &fixed, *target_bytes, itemsize)?
            }
            ChunkSpec::PerAxis(per_axis) => {
                check_ndim(per_axis.len(), shape, || format!("{per_axis:?}"))?;
                let mut fixed = Vec::with_capacity(shape.len());
                for (axis, (choice, &len)) in per_axis.iter().zip(shape).enumerate() {
                    let blocks = match choice {
                        AxisChunks::Size(b) => Some(regular_axis(len, *b).map_err(|why| {
                            Error::chunks(format!(
                                "chunks {per_axis:?} do not fit the shape {}: axis {axis}: {why}",
                                fmt_shape(shape)
                            ))
                        })?),
                        AxisChunks::Explicit(blocks) => {
                            Some(explicit_axis(blocks, len).map_err(|why| {
                                Error::chunks(format!(
                                    "chunks {per_axis:?} do not fit the shape {}: axis {axis}: \
                                     {why}",
                                    fmt_shape(shape)
                                ))
                            })?)
                        }
                        AxisChunks::Full => Some(vec![len]),
                        AxisChunks::Auto => None,
                    };
                    fixed.push(blocks);
                }
                auto_axes(shape, &fixed, DEFAULT_CHUNK_BYTES, itemsize)?
            }
        };
        Ok(Chunks::from_valid(axes))
    }

    /// The chunking with these block lengths; the shape is their sums.
    ///
    /// # Errors
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when a block is empty on an axis that
    /// is not (a zero-length axis is `[0]`, or `[]`, which means the same), or a sum overflows.
    pub fn from_blocks(chunks: Vec<Vec<usize>>) -> Result<Chunks> {
        let mut shape = Vec::with_capacity(chunks.len());
        for blocks in &chunks {
            let len = blocks
                .iter()
                .try_fold(0usize, |acc, &b| acc.checked_add(b))
                .ok_or_else(|| {
                    Error::chunks(format!("chunks {} overflow usize", fmt_chunks(&chunks)))
                })?;
            shape.push(len);
        }
        Chunks::new(&shape, chunks, 1)
    }

    /// Builds from block lengths already known to satisfy the invariants.
    pub(crate) fn from_valid(chunks: Vec<Vec<usize>>) -> Chunks {
        let offsets: Vec<Vec<usize>> = chunks.iter().map(|c| prefix_offsets(c)).collect();
        let shape = offsets
            .iter()
            .map(|o| o.last().copied().unwrap_or(0))
            .collect();
        let unknown = vec![None; chunks.len()];
        Chunks {
            chunks,
            offsets,
            shape,
            unknown,
        }
    }

    /// The same chunking with the lengths along `axis` marked unknown until computed (the
    /// current lengths are kept to plan memory), made unknown by `origin` (a token of the operation
    /// that made them: arrays of the same origin have equal real lengths).
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    #[must_use]
    pub fn with_unknown_axis(mut self, axis: usize, origin: u64) -> Chunks {
        self.unknown[axis] = Some(origin);
        self
    }

    /// The origin of `axis`'s unknown lengths, or `None` when they are known.
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    pub fn unknown_axis(&self, axis: usize) -> Option<u64> {
        self.unknown[axis]
    }

    /// Per axis, the origin of its unknown lengths (`None` where known).
    pub fn unknown_axes(&self) -> &[Option<u64>] {
        &self.unknown
    }

    /// `v` — a position or a shape, one entry per axis — with `usize::MAX` on the axes of
    /// unknown lengths, where a position computed from the stored bounds would be a guess
    /// (what [`BlockInfo`](crate::BlockInfo) and reductions are given there).
    pub fn unknown_as_max(&self, v: Vec<usize>) -> Vec<usize> {
        v.into_iter()
            .zip(&self.unknown)
            .map(|(v, u)| if u.is_some() { usize::MAX } else { v })
            .collect()
    }

    /// Whether every block length is known.
    pub fn is_known(&self) -> bool {
        self.unknown.iter().all(Option::is_none)
    }

    /// `Ok` when every block length is known; otherwise an
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) error saying that `what` needs them and
    /// naming `compute_chunk_sizes`.
    pub fn require_known(&self, what: &str) -> Result<()> {
        match self.unknown.iter().position(Option::is_some) {
            None => Ok(()),
            Some(axis) => Err(unknown_sizes(what, axis)),
        }
    }

    /// A chunking whose axis `k` is this one's axis `from[k]` — its block lengths and whether
    /// they are known — or a new axis of one block of length 1 when `from[k]` is `None` (for
    /// transposes and for inserting and dropping unit axes).
    ///
    /// # Panics
    /// If an entry of `from` is not an axis.
    pub fn rearranged(&self, from: &[Option<usize>]) -> Chunks {
        let mut c = Chunks::from_valid(
            from.iter()
                .map(|f| f.map_or_else(|| vec![1], |j| self.chunks[j].clone()))
                .collect(),
        );
        c.unknown = from
            .iter()
            .map(|f| f.and_then(|j| self.unknown[j]))
            .collect();
        c
    }

    /// The same chunking with axis `k` unknown wherever `other`'s axis `k` is, except on the
    /// axes in `except` (which an operation has made known, e.g. reduced to length 1). Both
    /// must have the same number of axes.
    ///
    /// # Panics
    /// If the numbers of axes differ.
    #[must_use]
    pub fn with_unknown_of(mut self, other: &Chunks, except: &[usize]) -> Chunks {
        assert_eq!(self.ndim(), other.ndim(), "chunkings of different rank");
        for (k, u) in other.unknown.iter().enumerate() {
            if !except.contains(&k) {
                self.unknown[k] = *u;
            }
        }
        self
    }

    /// `Ok` when the lengths along `axis` are known (see [`require_known`](Self::require_known)).
    pub fn require_known_axis(&self, axis: usize, what: &str) -> Result<()> {
        match self.unknown.get(axis) {
            Some(Some(_)) => Err(unknown_sizes(what, axis)),
            _ => Ok(()),
        }
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.chunks.len()
    }

    /// The shape of the array (the sums of the block lengths).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The block lengths along `axis`.
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    pub fn axis(&self, axis: usize) -> &[usize] {
        &self.chunks[axis]
    }

    /// The block lengths along every axis (dask's tuple of tuples).
    pub fn axes(&self) -> &[Vec<usize>] {
        &self.chunks
    }

    /// The block lengths along every axis, taken out.
    pub fn into_axes(self) -> Vec<Vec<usize>> {
        self.chunks
    }

    /// The number of blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        self.chunks.iter().map(Vec::len).collect()
    }

    /// The total number of blocks (1 for a zero-dimensional array), saturating at `usize::MAX`.
    pub fn nblocks(&self) -> usize {
        self.chunks
            .iter()
            .try_fold(1usize, |acc, c| acc.checked_mul(c.len()))
            .unwrap_or(usize::MAX)
    }

    /// The prefix offsets along `axis`: `n + 1` values from 0 to the axis length, block `i`
    /// spanning `offsets[i]..offsets[i + 1]`.
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    pub fn offsets(&self, axis: usize) -> &[usize] {
        &self.offsets[axis]
    }

    /// The positions block `block` spans along `axis`.
    ///
    /// # Panics
    /// If `axis` or `block` is out of range.
    pub fn block_range(&self, axis: usize, block: usize) -> Range<usize> {
        let o = &self.offsets[axis];
        o[block]..o[block + 1]
    }

    /// The shape of the block at `index` (one block index per axis).
    ///
    /// # Panics
    /// If `index` has the wrong length or a block index is out of range.
    pub fn block_shape(&self, index: &[usize]) -> Vec<usize> {
        assert_eq!(index.len(), self.ndim(), "block index has the wrong length");
        index.iter().zip(&self.chunks).map(|(&i, c)| c[i]).collect()
    }

    /// The position of the first element of the block at `index`.
    ///
    /// # Panics
    /// If `index` has the wrong length or a block index is out of range.
    pub fn block_start(&self, index: &[usize]) -> Vec<usize> {
        assert_eq!(index.len(), self.ndim(), "block index has the wrong length");
        index
            .iter()
            .zip(&self.offsets)
            .map(|(&i, o)| o[i])
            .collect()
    }

    /// The block along `axis` that holds position `pos`, and the offset of `pos` within it.
    /// A binary search over the cached offsets.
    ///
    /// # Errors
    /// [`ErrorKind::Axis`](crate::ErrorKind::Axis) when `axis >= ndim`,
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when its lengths are unknown,
    /// [`ErrorKind::Index`](crate::ErrorKind::Index) when `pos` is not less than the axis
    /// length.
    pub fn block_of(&self, axis: usize, pos: usize) -> Result<(usize, usize)> {
        self.check_axis(axis)?;
        self.require_known_axis(axis, "block_of")?;
        let offsets = &self.offsets[axis];
        let len = self.shape[axis];
        if pos >= len {
            return Err(Error::index_out_of_bounds(pos, len).context(format!("axis {axis}")));
        }
        let block = block_containing(offsets, pos);
        Ok((block, pos - offsets[block]))
    }

    /// The length along `axis` that makes a block of about 1 MiB of `itemsize`-byte elements
    /// across the largest blocks of the other axes (at least 1): the shortest block worth a
    /// task where an operation chooses the block lengths along `axis` (pad's margins, take).
    ///
    /// # Panics
    /// If `axis >= self.ndim()`.
    pub(crate) fn mib_run(&self, axis: usize, itemsize: usize) -> usize {
        let across: usize = (0..self.ndim())
            .filter(|&a| a != axis)
            .map(|a| self.chunks[a].iter().copied().max().unwrap_or(1))
            .fold(1usize, |p, c| p.saturating_mul(c.max(1)));
        ((1usize << 20) / itemsize.max(1)).div_ceil(across)
    }

    /// `Ok` when `axis < ndim`, else an [`ErrorKind::Axis`](crate::ErrorKind::Axis) error.
    pub fn check_axis(&self, axis: usize) -> Result<()> {
        if axis < self.ndim() {
            Ok(())
        } else {
            Err(Error::axis_out_of_bounds(axis, self.ndim()))
        }
    }

    /// The largest block length along each axis.
    pub fn max_block_shape(&self) -> Vec<usize> {
        self.chunks
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// The number of elements of the largest block (the product of the largest block length
    /// along each axis), saturating at `usize::MAX`.
    pub fn max_block_elems(&self) -> usize {
        self.max_block_shape()
            .iter()
            .try_fold(1usize, |acc, &m| acc.checked_mul(m))
            .unwrap_or(usize::MAX)
    }

    /// An iterator over every block index, in C order (last axis fastest).
    pub fn block_indices(&self) -> BlockIndices {
        BlockIndices::new(self.numblocks())
    }

    /// Whether every axis is cut into equal blocks, except for a last block that may be
    /// shorter (the chunkings a single block shape produces, and that Zarr can store).
    pub fn is_regular(&self) -> bool {
        self.chunks.iter().all(|c| match c.split_last() {
            None => true,
            Some((last, rest)) => match rest.first() {
                None => true,
                Some(&first) => rest.iter().all(|&b| b == first) && *last <= first,
            },
        })
    }
}

/// The error of an operation that needs the unknown lengths of `axis`.
fn unknown_sizes(what: &str, axis: usize) -> Error {
    Error::chunks(format!(
        "{what} needs the chunk sizes along axis {axis}, which depend on values and are not \
         known until computed: call .compute_chunk_sizes() on the array first (one pass that \
         keeps only the block sizes)"
    ))
}

/// The block lengths `Display` shows for one axis in full; longer axes are run-length encoded.
const DISPLAY_FULL: usize = 8;

/// Formats the chunks of one axis as a Python tuple, shortened when long.
fn fmt_axis(blocks: &[usize], out: &mut String) {
    use std::fmt::Write as _;
    if blocks.len() <= DISPLAY_FULL {
        out.push('(');
        for (i, b) in blocks.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{b}");
        }
        if blocks.len() == 1 {
            out.push(',');
        }
        out.push(')');
        return;
    }
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &b in blocks {
        match runs.last_mut() {
            Some((v, n)) if *v == b => *n += 1,
            _ => runs.push((b, 1)),
        }
    }
    let run_text = |(v, n): (usize, usize)| {
        if n == 1 {
            v.to_string()
        } else {
            format!("{v} × {n}")
        }
    };
    let parts: Vec<String> = if runs.len() <= DISPLAY_FULL {
        runs.iter().copied().map(run_text).collect()
    } else {
        let mut parts: Vec<String> = runs[..3].iter().copied().map(run_text).collect();
        parts.push("...".to_owned());
        parts.extend(runs[runs.len() - 2..].iter().copied().map(run_text));
        parts
    };
    out.push('(');
    out.push_str(&parts.join(", "));
    out.push(')');
}

/// Formats block lengths per axis like [`Chunks`]' `Display`.
pub(crate) fn fmt_chunks(chunks: &[Vec<usize>]) -> String {
    let mut out = String::from("(");
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        fmt_axis(c, &mut out);
    }
    if chunks.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}

/// Dask-like text: a tuple of tuples, `((100, 100), (50, 50, 20))`.
///
/// An axis with more than 8 blocks is run-length encoded, a run of `n` equal blocks of length
/// `v` written `v × n`: `((100 × 99, 20),)`. When even that has more than 8 runs, the first three
/// and the last two runs are shown around `...`: `((1, 2, 3, ..., 9, 10),)`. Tuples of one
/// element carry Python's trailing comma.
impl fmt::Display for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            return f.write_str(&fmt_chunks(&self.chunks));
        }
        // Unknown lengths show as NaN, as dask shows them.
        let parts: Vec<String> = self
            .chunks
            .iter()
            .zip(&self.unknown)
            .map(|(c, u)| match u {
                None => {
                    let mut out = String::new();
                    fmt_axis(c, &mut out);
                    out
                }
                Some(_) if c.len() == 1 => "(nan,)".to_string(),
                Some(_) if c.len() <= DISPLAY_FULL => {
                    format!("({})", vec!["nan"; c.len()].join(", "))
                }
                Some(_) => format!("(nan × {})", c.len()),
            })
            .collect();
        if parts.len() == 1 {
            write!(f, "({},)", parts[0])
        } else {
            write!(f, "({})", parts.join(", "))
        }
    }
}

/// An iterator over the block indices of a chunking in C order; see
/// [`Chunks::block_indices`].
#[derive(Clone, Debug)]
pub struct BlockIndices {
    numblocks: Vec<usize>,
    next: Option<Vec<usize>>,
    remaining: usize,
}

impl BlockIndices {
    /// Iterates over every index of a grid of `numblocks` blocks, in C order.
    pub fn new(numblocks: Vec<usize>) -> BlockIndices {
        let remaining = numblocks
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
            .unwrap_or(usize::MAX);
        let next = (remaining > 0).then(|| vec![0; numblocks.len()]);
        BlockIndices {
            numblocks,
            next,
            remaining,
        }
    }
}

impl Iterator for BlockIndices {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let current = self.next.take()?;
        self.remaining = self.remaining.saturating_sub(1);
        let mut succ = current.clone();
        let mut axis = succ.len();
        let mut carried_out = true;
        while axis > 0 {
            axis -= 1;
            succ[axis] += 1;
            if succ[axis] < self.numblocks[axis] {
                carried_out = false;
                break;
            }
            succ[axis] = 0;
        }
        if !carried_out {
            self.next = Some(succ);
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BlockIndices {}

impl std::iter::FusedIterator for BlockIndices {}

/// The bytes of `shape` elements of `itemsize` bytes each, `usize::MAX` when more: element
/// counts fit (chunks refuse larger shapes), their bytes may not, and the memory checks then
/// refuse the array as too large (a plain product panicked in debug builds).
///
/// ```
/// assert_eq!(blockarray::shape_bytes(&[1000, 1000], 8), 8_000_000);
/// assert_eq!(blockarray::shape_bytes(&[1 << 62, 4], 8), usize::MAX);
/// assert_eq!(blockarray::shape_bytes(&[1 << 62, 4, 0], 8), 0);
/// ```
pub fn shape_bytes(shape: &[usize], itemsize: usize) -> usize {
    shape.iter().fold(itemsize, |a, &d| a.saturating_mul(d))
}

/// The prefix offsets of block lengths: `[0, b0, b0 + b1, …]`.
pub(crate) fn prefix_offsets(blocks: &[usize]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(blocks.len() + 1);
    let mut acc = 0usize;
    offsets.push(0);
    for &b in blocks {
        acc = acc.saturating_add(b);
        offsets.push(acc);
    }
    offsets
}

/// The block whose span holds `pos`, given prefix offsets with `pos < *offsets.last()`: the last
/// block starting at or before `pos` (so empty blocks are skipped).
pub(crate) fn block_containing(offsets: &[usize], pos: usize) -> usize {
    offsets.partition_point(|&o| o <= pos).saturating_sub(1)
}

/// Blocks of length `block` (clamped to the axis) covering `len`, or why they cannot: a zero
/// block on a non-empty axis, or more than [`MAX_BLOCKS_PER_AXIS`] blocks.
fn regular_axis(len: usize, block: usize) -> std::result::Result<Vec<usize>, String> {
    if len == 0 {
        return Ok(vec![0]);
    }
    if block == 0 {
        return Err(format!("block length 0 on an axis of length {len}"));
    }
    let block = block.min(len);
    let n = len.div_ceil(block);
    if n > MAX_BLOCKS_PER_AXIS {
        return Err(format!(
            "{n} blocks of length {block} on an axis of length {len}: more than \
             {MAX_BLOCKS_PER_AXIS} blocks on one axis (use larger blocks)"
        ));
    }
    let mut blocks = vec![block; len / block];
    if !len.is_multiple_of(block) {
        blocks.push(len % block);
    }
    Ok(blocks)
}

/// The most blocks one axis may have (2²⁸): the chunking itself keeps two words per block and
/// axis, so more would cost gigabytes of bookkeeping before any data.
pub const MAX_BLOCKS_PER_AXIS: usize = 1 << 28;

/// Refuses shapes whose whole array would not fit an address space (more than `isize::MAX`
/// bytes), the bound of every index and byte count computed for it. As NumPy, an empty array
/// is refused too when its other axes alone are that large (`(2⁴⁰, 2⁴⁰, 0)`): products of
/// lengths are computed in that order before a zero is met.
fn check_size(shape: &[usize], itemsize: usize) -> Result<()> {
    let bytes = shape
        .iter()
        .filter(|&&n| n != 0)
        .try_fold(itemsize.max(1), |acc, &n| acc.checked_mul(n))
        .filter(|&b| b <= isize::MAX as usize);
    if bytes.is_none() {
        return Err(Error::shape(format!(
            "an array of shape {} with {itemsize}-byte elements would hold more than \
             isize::MAX bytes",
            fmt_shape(shape)
        )));
    }
    Ok(())
}

/// Validates explicit block lengths for an axis of length `len`; the reason on failure.
fn explicit_axis(blocks: &[usize], len: usize) -> std::result::Result<Vec<usize>, String> {
    if len == 0 {
        return if blocks.iter().all(|&b| b == 0) && blocks.len() <= 1 {
            Ok(vec![0])
        } else {
            Err("a zero-length axis must have the single block (0,)".to_owned())
        };
    }
    let sum = blocks.iter().try_fold(0usize, |acc, &b| acc.checked_add(b));
    if sum != Some(len) {
        let sum = sum.map_or_else(|| "more than usize::MAX".to_owned(), |s| s.to_string());
        return Err(format!("the blocks add up to {sum}, not {len}"));
    }
    if let Some(i) = blocks.iter().position(|&b| b == 0) {
        return Err(format!(
            "block {i} has length 0 (only a zero-length axis may have an empty block)"
        ));
    }
    Ok(blocks.to_vec())
}

fn explicit_error(chunks: &[Vec<usize>], shape: &[usize], axis: usize, why: &str) -> Error {
    Error::chunks(format!(
        "chunks {} do not fit the shape {}: axis {axis}: {why}",
        fmt_chunks(chunks),
        fmt_shape(shape)
    ))
}

fn check_ndim(got: usize, shape: &[usize], what: impl FnOnce() -> String) -> Result<()> {
    if got == shape.len() {
        Ok(())
    } else {
        Err(Error::chunks(format!(
            "chunks {} have {got} ax{} but the shape {} has {}",
            what(),
            if got == 1 { "is" } else { "es" },
            fmt_shape(shape),
            shape.len()
        )))
    }
}

/// The largest `s >= 1` with `s^k <= n` (1 when `n` is 0 or 1).
pub(crate) fn integer_root(n: u128, k: u32) -> u128 {
    if k == 0 || n <= 1 {
        return 1;
    }
    if k == 1 {
        return n;
    }
    // Start from the float estimate and correct it: exact for any n.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut s = ((n as f64).powf(1.0 / f64::from(k)).round() as u128).max(1);
    let fits = |s: u128| s.checked_pow(k).is_some_and(|p| p <= n);
    while !fits(s) {
        s -= 1;
    }
    while fits(s + 1) {
        s += 1;
    }
    s
}

/// Resolves automatic axes (`None` in `fixed`) against the budget left by the fixed ones.
fn auto_axes(
    shape: &[usize],
    fixed: &[Option<Vec<usize>>],
    target_bytes: usize,
    itemsize: usize,
) -> Result<Vec<Vec<usize>>> {
    let limit = (target_bytes / itemsize.max(1)).max(1) as u128;
    let fixed_elems = fixed
        .iter()
        .flatten()
        .map(|blocks| blocks.iter().copied().max().unwrap_or(0).max(1) as u128)
        .fold(1u128, u128::saturating_mul);
    let mut budget = (limit / fixed_elems).max(1);
    // Automatic axes still to size; empty axes are one empty block and use no budget.
    let mut free: Vec<usize> = (0..shape.len())
        .filter(|&a| fixed[a].is_none() && shape[a] > 0)
        .collect();
    let mut width = vec![0usize; shape.len()];
    let mut side = 1u128;
    while !free.is_empty() {
        #[allow(clippy::cast_possible_truncation)]
        let k = free.len() as u32;
        side = integer_root(budget, k);
        let (small, large): (Vec<usize>, Vec<usize>) =
            free.iter().partition(|&&a| shape[a] as u128 <= side);
        if small.is_empty() {
            break;
        }
        for &a in &small {
            width[a] = shape[a];
            budget = (budget / shape[a] as u128).max(1);
        }
        free = large;
    }
    for &a in &free {
        // side < shape[a] here, so it fits in usize.
        let s = usize::try_from(side).unwrap_or(usize::MAX).max(1);
        let n = shape[a].div_ceil(s);
        width[a] = shape[a].div_ceil(n);
    }
    fixed
        .iter()
        .enumerate()
        .map(|(a, f)| match f {
            Some(blocks) => Ok(blocks.clone()),
            None if shape[a] == 0 => Ok(vec![0]),
            None => regular_axis(shape[a], width[a].max(1)).map_err(|why| {
                Error::chunks(format!(
                    "automatic chunks for the shape {}: axis {a}: {why}",
                    fmt_shape(shape)
                ))
            }),
        })
        .collect()
}

/// The common refinement of two chunkings of one axis: blocks cut at every boundary of either.
///
/// ```
/// assert_eq!(blockarray::unify_axis(&[5, 5], &[3, 7])?, vec![3, 2, 5]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks), naming both, when they do not cover the
/// same length.
pub fn unify_axis(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let total = |c: &[usize]| c.iter().try_fold(0usize, |acc, &x| acc.checked_add(x));
    let (ta, tb) = (total(a), total(b));
    if ta.is_none() || ta != tb {
        return Err(Error::chunks(format!(
            "cannot unify the chunks {} and {}: they cover {} and {} elements",
            fmt_chunks(&[a.to_vec()]),
            fmt_chunks(&[b.to_vec()]),
            ta.map_or_else(|| "overflowing".to_owned(), |t| t.to_string()),
            tb.map_or_else(|| "overflowing".to_owned(), |t| t.to_string()),
        )));
    }
    if ta == Some(0) {
        return Ok(vec![0]);
    }
    let ends = |c: &[usize]| {
        c.iter()
            .scan(0usize, |acc, &x| {
                *acc += x;
                Some(*acc)
            })
            .collect::<Vec<usize>>()
    };
    Ok(refine_ends(&ends(a), &ends(b)))
}

/// Block lengths cut at every value of two sorted lists of block ends (duplicates merged).
fn refine_ends(ea: &[usize], eb: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(ea.len() + eb.len());
    let (mut i, mut j, mut last) = (0, 0, 0usize);
    loop {
        let next = match (ea.get(i), eb.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        if ea.get(i) == Some(&next) {
            i += 1;
        }
        if eb.get(j) == Some(&next) {
            j += 1;
        }
        if next > last {
            out.push(next - last);
            last = next;
        }
    }
    out
}

/// The shape two shapes broadcast to, by NumPy's rules: aligned at the last axis, a missing
/// axis or an axis of length 1 stretches to the other's length.
///
/// ```
/// assert_eq!(blockarray::broadcast_shapes(&[5, 1, 3], &[4, 1])?, vec![5, 4, 3]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Shape`](crate::ErrorKind::Shape), naming both shapes and the axis, when two
/// lengths differ and neither is 1.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let ndim = a.len().max(b.len());
    let mut out = vec![0; ndim];
    for (axis, slot) in out.iter_mut().enumerate() {
        let la = axis.checked_sub(ndim - a.len()).map_or(1, |i| a[i]);
        let lb = axis.checked_sub(ndim - b.len()).map_or(1, |i| b[i]);
        *slot = if la == lb || lb == 1 {
            la
        } else if la == 1 {
            lb
        } else {
            return Err(Error::shape(format!(
                "cannot broadcast the shapes {} and {}: lengths {la} and {lb} on axis {axis} of \
                 the result",
                fmt_shape(a),
                fmt_shape(b)
            )));
        };
    }
    Ok(out)
}

/// The chunks of the result of an elementwise operation on two chunked operands, broadcast by
/// NumPy's rules: an axis of length 1 (or missing) takes the other operand's chunks; two axes
/// of the same length take the common refinement of their chunks ([`unify_axis`]). Fold over
/// more than two operands.
///
/// ```
/// use blockarray::{Chunks, broadcast_chunks};
///
/// let a = Chunks::from_blocks(vec![vec![2, 2], vec![1]])?;
/// let b = Chunks::from_blocks(vec![vec![3, 3]])?;
/// assert_eq!(broadcast_chunks(&a, &b)?.axes(), &[vec![2, 2], vec![3, 3]]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Shape`](crate::ErrorKind::Shape), naming both shapes, when they do not
/// broadcast; [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when a chunking has lengths
/// that are not known until computed (the stored ones are not lengths to broadcast).
pub fn broadcast_chunks(a: &Chunks, b: &Chunks) -> Result<Chunks> {
    a.require_known("broadcast_chunks")?;
    b.require_known("broadcast_chunks")?;
    let shape = broadcast_shapes(a.shape(), b.shape())?;
    let ndim = shape.len();
    let mut axes = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        let ca = axis.checked_sub(ndim - a.ndim()).map(|i| a.axis(i));
        let cb = axis.checked_sub(ndim - b.ndim()).map(|i| b.axis(i));
        let blocks = match (ca, cb) {
            (Some(x), Some(y)) => {
                let (lx, ly) = (x.iter().sum::<usize>(), y.iter().sum::<usize>());
                if lx == ly {
                    unify_axis(x, y)?
                } else if lx == 1 {
                    y.to_vec()
                } else {
                    x.to_vec()
                }
            }
            (Some(x), None) => x.to_vec(),
            (None, Some(y)) => y.to_vec(),
            (None, None) => vec![1],
        };
        axes.push(blocks);
    }
    Ok(Chunks::from_valid(axes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ch(axes: &[&[usize]]) -> Chunks {
        Chunks::from_blocks(axes.iter().map(|a| a.to_vec()).collect()).expect("valid chunks")
    }

    #[test]
    fn explicit_chunks() {
        let c = Chunks::new(&[10, 4], vec![vec![3, 7], vec![4]], 8).unwrap();
        assert_eq!(c.ndim(), 2);
        assert_eq!(c.shape(), &[10, 4]);
        assert_eq!(c.axis(0), &[3, 7]);
        assert_eq!(c.offsets(0), &[0, 3, 10]);
        assert_eq!(c.offsets(1), &[0, 4]);
        assert_eq!(c.numblocks(), vec![2, 1]);
        assert_eq!(c.nblocks(), 2);
        assert_eq!(c.axes(), &[vec![3, 7], vec![4]]);
    }

    #[test]
    fn explicit_errors_name_chunks_and_shape() {
        let e = Chunks::new(&[10], vec![vec![3, 3]], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        let msg = e.to_string();
        assert!(msg.contains("((3, 3),)"), "{msg}");
        assert!(msg.contains("(10,)"), "{msg}");
        assert!(msg.contains("add up to 6, not 10"), "{msg}");

        let e = Chunks::new(&[10, 2], vec![vec![10]], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(10, 2)"), "{e}");
        assert!(e.to_string().contains("1 axis"), "{e}");

        let e = Chunks::new(&[10], vec![vec![10, 0]], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("length 0"), "{e}");

        let e = Chunks::new(&[0], vec![vec![0, 0]], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);

        let e = Chunks::new(&[3], vec![vec![usize::MAX, 4]], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
    }

    #[test]
    fn zero_length_axes_have_one_empty_block() {
        let c = Chunks::new(&[0, 5], vec![vec![0], vec![5]], 8).unwrap();
        assert_eq!(c.axis(0), &[0]);
        let c2 = Chunks::new(&[0, 5], vec![vec![], vec![5]], 8).unwrap();
        assert_eq!(c, c2);
        let c3 = Chunks::new(&[0, 5], [3, 2], 8).unwrap();
        assert_eq!(c3.axes(), &[vec![0], vec![2, 2, 1]]);
        let c4 = Chunks::new(&[0, 5], [0, 5], 8).unwrap();
        assert_eq!(c4.axes(), &[vec![0], vec![5]]);
        let c5 = Chunks::new(&[0, 0], ChunkSpec::auto(), 8).unwrap();
        assert_eq!(c5.axes(), &[vec![0], vec![0]]);
        assert_eq!(c5.nblocks(), 1);
        assert_eq!(c5.max_block_elems(), 0);
    }

    #[test]
    fn block_shape_chunks() {
        let c = Chunks::new(&[200, 120], [100, 50], 8).unwrap();
        assert_eq!(c.axes(), &[vec![100, 100], vec![50, 50, 20]]);
        let c = Chunks::new(&[7], vec![10], 8).unwrap();
        assert_eq!(c.axes(), &[vec![7]], "larger than the axis is clamped");
        let c = Chunks::new(&[7, 3], &[2, 2][..], 8).unwrap();
        assert_eq!(c.axes(), &[vec![2, 2, 2, 1], vec![2, 1]]);
        let c = Chunks::new(&[7, 3], [2, 3], 8).unwrap();
        assert_eq!(c.axes(), &[vec![2, 2, 2, 1], vec![3]]);

        let e = Chunks::new(&[7, 3], [0, 3], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(0, 3)"), "{e}");
        assert!(e.to_string().contains("(7, 3)"), "{e}");
        let e = Chunks::new(&[7, 3], [2], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(7, 3)"), "{e}");
    }

    #[test]
    fn uniform_chunks() {
        let c = Chunks::new(&[5, 3], 2, 8).unwrap();
        assert_eq!(c.axes(), &[vec![2, 2, 1], vec![2, 1]]);
        let e = Chunks::new(&[5, 3], 0, 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(5, 3)"), "{e}");
        let c = Chunks::new(&[], 4, 8).unwrap();
        assert_eq!(c.ndim(), 0);
        assert_eq!(c.nblocks(), 1);
        assert_eq!(
            c.block_indices().collect::<Vec<_>>(),
            vec![Vec::<usize>::new()]
        );
        assert_eq!(c.to_string(), "()");
    }

    #[test]
    fn from_existing_chunks() {
        let c = ch(&[&[2, 3], &[4]]);
        assert_eq!(Chunks::new(&[5, 4], &c, 8).unwrap(), c);
        assert_eq!(Chunks::new(&[5, 4], c.clone(), 8).unwrap(), c);
        assert_eq!(Chunks::try_from(vec![vec![2, 3], vec![4]]).unwrap(), c);
        assert_eq!(
            Chunks::try_from(vec![vec![2, 0, 3]]).unwrap_err().kind(),
            ErrorKind::Chunks
        );
        assert_eq!(
            Chunks::new(&[6, 4], &c, 8).unwrap_err().kind(),
            ErrorKind::Chunks
        );
    }

    #[test]
    fn auto_chunks_like_dask() {
        // dask: da.ones((10000, 10000)).chunks -> 4096-long blocks, 3 per axis.
        let c = Chunks::new(&[10000, 10000], ChunkSpec::auto(), 8).unwrap();
        assert_eq!(c.numblocks(), vec![3, 3]);
        assert_eq!(c.axis(0), &[3334, 3334, 3332]);
        assert!(c.max_block_elems() * 8 <= DEFAULT_CHUNK_BYTES);

        // A short axis becomes one block and leaves its share to the others.
        let c = Chunks::new(&[10, 1_000_000_000], ChunkSpec::auto_bytes(8000), 8).unwrap();
        assert_eq!(c.axis(0), &[10]);
        assert_eq!(c.max_block_shape(), vec![10, 100]);

        // Fits entirely.
        let c = Chunks::new(&[100, 100], ChunkSpec::auto(), 8).unwrap();
        assert_eq!(c.axes(), &[vec![100], vec![100]]);

        // Target smaller than one element: single elements.
        let c = Chunks::new(&[3, 2], ChunkSpec::auto_bytes(1), 8).unwrap();
        assert_eq!(c.axes(), &[vec![1, 1, 1], vec![1, 1]]);

        // 1-D: exactly the budget.
        let c = Chunks::new(&[1000], ChunkSpec::auto_bytes(800), 8).unwrap();
        assert_eq!(c.axes(), &[vec![100; 10]]);

        // itemsize 0 behaves like 1.
        let c = Chunks::new(&[1000], ChunkSpec::auto_bytes(100), 0).unwrap();
        assert_eq!(c.axes(), &[vec![100; 10]]);
    }

    #[test]
    fn per_axis_chunks() {
        let spec = vec![AxisChunks::Full, AxisChunks::Auto, AxisChunks::Size(3)];
        let c = Chunks::new(&[4, 100_000_000, 7], spec, 8).unwrap();
        assert_eq!(c.axis(0), &[4]);
        assert_eq!(c.axis(2), &[3, 3, 1]);
        // Budget 16 Mi elements / (4 * 3) ≈ 1.398 Mi along the auto axis, balanced.
        let m = c.max_block_shape()[1];
        assert!(m * 4 * 3 * 8 <= DEFAULT_CHUNK_BYTES, "{m}");
        assert!(m * 4 * 3 * 8 > DEFAULT_CHUNK_BYTES / 2, "{m}");

        let spec: Vec<AxisChunks> = vec![vec![1, 3].into(), 2.into()];
        let c = Chunks::new(&[4, 3], spec, 8).unwrap();
        assert_eq!(c.axes(), &[vec![1, 3], vec![2, 1]]);

        let e =
            Chunks::new(&[4, 3], vec![AxisChunks::Explicit(vec![1, 2]), 2.into()], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(4, 3)"), "{e}");
        let e = Chunks::new(&[4, 3], vec![AxisChunks::Size(0), 2.into()], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        let e = Chunks::new(&[4, 3], vec![AxisChunks::Full], 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
    }

    #[test]
    fn block_lookups() {
        let c = ch(&[&[3, 1, 4], &[5]]);
        assert_eq!(c.block_shape(&[2, 0]), vec![4, 5]);
        assert_eq!(c.block_start(&[2, 0]), vec![4, 0]);
        assert_eq!(c.block_range(0, 1), 3..4);
        assert_eq!(c.block_of(0, 0).unwrap(), (0, 0));
        assert_eq!(c.block_of(0, 2).unwrap(), (0, 2));
        assert_eq!(c.block_of(0, 3).unwrap(), (1, 0));
        assert_eq!(c.block_of(0, 7).unwrap(), (2, 3));
        let e = c.block_of(0, 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert!(e.to_string().contains("index 8"), "{e}");
        assert!(e.to_string().contains("length 8"), "{e}");
        let e = c.block_of(2, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Axis);
        assert!(e.to_string().contains("axis 2"), "{e}");
        assert!(e.to_string().contains("2 dimensions"), "{e}");
        assert_eq!(c.max_block_shape(), vec![4, 5]);
        assert_eq!(c.max_block_elems(), 20);
        let empty = ch(&[&[0]]);
        assert_eq!(empty.block_of(0, 0).unwrap_err().kind(), ErrorKind::Index);
    }

    #[test]
    fn block_indices_in_c_order() {
        let c = ch(&[&[1, 1], &[1, 1, 1]]);
        let all: Vec<Vec<usize>> = c.block_indices().collect();
        assert_eq!(
            all,
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![0, 2],
                vec![1, 0],
                vec![1, 1],
                vec![1, 2]
            ]
        );
        let mut it = c.block_indices();
        assert_eq!(it.len(), 6);
        it.next();
        assert_eq!(it.len(), 5);
        assert_eq!(BlockIndices::new(vec![2, 0]).count(), 0);
    }

    #[test]
    fn regularity() {
        assert!(ch(&[&[5, 5, 2], &[3]]).is_regular());
        assert!(ch(&[&[5, 5, 5]]).is_regular());
        assert!(!ch(&[&[5, 6]]).is_regular());
        assert!(!ch(&[&[5, 2, 5]]).is_regular());
        assert!(ch(&[&[0]]).is_regular());
        assert!(ch(&[&[2, 2, 2, 1]]).is_regular());
    }

    #[test]
    fn display() {
        assert_eq!(
            ch(&[&[100, 100], &[50, 50, 20]]).to_string(),
            "((100, 100), (50, 50, 20))"
        );
        assert_eq!(ch(&[&[100, 100]]).to_string(), "((100, 100),)");
        assert_eq!(ch(&[&[7], &[3]]).to_string(), "((7,), (3,))");
        let mut long = vec![100; 99];
        long.push(20);
        assert_eq!(ch(&[&long]).to_string(), "((100 × 99, 20),)");
        let ragged: Vec<usize> = (1..=10).collect();
        assert_eq!(ch(&[&ragged]).to_string(), "((1, 2, 3, ..., 9, 10),)");
        let mut mixed = vec![1, 1, 1];
        mixed.extend(2..=9);
        mixed.extend([10, 10]);
        assert_eq!(
            ch(&[&mixed]).to_string(),
            "((1 × 3, 2, 3, ..., 9, 10 × 2),)"
        );
    }

    #[test]
    fn integer_roots() {
        assert_eq!(integer_root(16_777_216, 2), 4096);
        assert_eq!(integer_root(16_777_215, 2), 4095);
        assert_eq!(integer_root(27, 3), 3);
        assert_eq!(integer_root(26, 3), 2);
        assert_eq!(integer_root(1, 5), 1);
        assert_eq!(integer_root(0, 5), 1);
        assert_eq!(integer_root(u128::MAX, 2), u64::MAX as u128);
        assert_eq!(integer_root(1000, 1), 1000);
    }

    #[test]
    fn unify_axis_examples() {
        assert_eq!(unify_axis(&[5, 5], &[3, 7]).unwrap(), vec![3, 2, 5]);
        assert_eq!(unify_axis(&[10], &[10]).unwrap(), vec![10]);
        assert_eq!(unify_axis(&[2, 2, 2], &[3, 3]).unwrap(), vec![2, 1, 1, 2]);
        assert_eq!(unify_axis(&[0], &[0]).unwrap(), vec![0]);
        assert_eq!(unify_axis(&[], &[0]).unwrap(), vec![0]);
        // Empty blocks in raw lists add no boundary.
        assert_eq!(unify_axis(&[3, 0, 2], &[5]).unwrap(), vec![3, 2]);
        assert_eq!(unify_axis(&[0, 5], &[2, 0, 3, 0]).unwrap(), vec![2, 3]);
        let e = unify_axis(&[5, 5], &[3, 3]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("((5, 5),)"), "{e}");
        assert!(e.to_string().contains("((3, 3),)"), "{e}");
        assert!(e.to_string().contains("10 and 6"), "{e}");
    }

    #[test]
    fn broadcast_shapes_examples() {
        assert_eq!(
            broadcast_shapes(&[5, 1, 3], &[4, 1]).unwrap(),
            vec![5, 4, 3]
        );
        assert_eq!(broadcast_shapes(&[], &[2, 3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shapes(&[0], &[1]).unwrap(), vec![0]);
        assert_eq!(broadcast_shapes(&[1], &[0]).unwrap(), vec![0]);
        assert_eq!(broadcast_shapes(&[1, 1], &[1]).unwrap(), vec![1, 1]);
        let e = broadcast_shapes(&[2, 3], &[4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(e.to_string().contains("(2, 3)"), "{e}");
        assert!(e.to_string().contains("(4,)"), "{e}");
        assert_eq!(
            broadcast_shapes(&[0], &[2]).unwrap_err().kind(),
            ErrorKind::Shape
        );
    }

    /// Helpers that read lengths refuse axes whose lengths are not known.
    #[test]
    fn unknown_lengths_are_not_planned_with() {
        let known = ch(&[&[2, 2], &[3]]);
        let unknown = known.clone().with_unknown_axis(0, 7);
        let e = broadcast_chunks(&unknown, &known).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("compute_chunk_sizes"), "{e}");
        assert_eq!(
            broadcast_chunks(&known, &unknown).unwrap_err().kind(),
            ErrorKind::Chunks
        );
        assert_eq!(
            unknown.block_of(0, 1).unwrap_err().kind(),
            ErrorKind::Chunks
        );
        assert_eq!(unknown.block_of(1, 1).unwrap(), (0, 1));
        assert_eq!(unknown.block_of(2, 0).unwrap_err().kind(), ErrorKind::Axis);
    }

    #[test]
    fn broadcast_chunks_examples() {
        let a = ch(&[&[2, 2], &[1]]);
        let b = ch(&[&[3, 3]]);
        let c = broadcast_chunks(&a, &b).unwrap();
        assert_eq!(c.axes(), &[vec![2, 2], vec![3, 3]]);
        assert_eq!(c.shape(), &[4, 6]);

        let a = ch(&[&[5, 5], &[2, 2]]);
        let b = ch(&[&[3, 7], &[1, 3]]);
        let c = broadcast_chunks(&a, &b).unwrap();
        assert_eq!(c.axes(), &[vec![3, 2, 5], vec![1, 1, 2]]);

        let a = ch(&[&[1], &[1]]);
        let b = ch(&[&[1]]);
        assert_eq!(
            broadcast_chunks(&a, &b).unwrap().axes(),
            &[vec![1], vec![1]]
        );

        let e = broadcast_chunks(&ch(&[&[2, 2]]), &ch(&[&[3]])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(
            e.to_string().contains("(4,)") && e.to_string().contains("(3,)"),
            "{e}"
        );
    }

    // ---- property tests ----

    fn two_chunkings() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        (0usize..40).prop_flat_map(|len| {
            (
                crate::testutil::axis_chunks(len, 0.5),
                crate::testutil::axis_chunks(len, 0.5),
            )
        })
    }

    fn boundaries(c: &[usize]) -> BTreeSet<usize> {
        let mut set = BTreeSet::new();
        let mut acc = 0;
        for &b in c {
            acc += b;
            set.insert(acc);
        }
        set
    }

    proptest! {
        #[test]
        fn unify_is_the_union_of_boundaries((a, b) in two_chunkings()) {
            let u = unify_axis(&a, &b).unwrap();
            let total: usize = a.iter().sum();
            prop_assert_eq!(u.iter().sum::<usize>(), total);
            if total == 0 {
                prop_assert_eq!(u, vec![0]);
            } else {
                prop_assert!(u.iter().all(|&x| x > 0));
                let expected: BTreeSet<usize> = boundaries(&a).union(&boundaries(&b)).copied().collect();
                prop_assert_eq!(boundaries(&u), expected);
            }
            prop_assert_eq!(unify_axis(&b, &a).unwrap(), unify_axis(&a, &b).unwrap());
        }

        #[test]
        fn block_of_matches_a_scan(c in (0usize..50).prop_flat_map(|l| crate::testutil::axis_chunks(l, 0.5)), pos in 0usize..60) {
            let chunks = Chunks::from_blocks(vec![c.clone()]).unwrap();
            let total: usize = c.iter().sum();
            let got = chunks.block_of(0, pos);
            if pos >= total {
                prop_assert_eq!(got.unwrap_err().kind(), ErrorKind::Index);
            } else {
                let mut start = 0;
                let mut expected = None;
                for (i, &b) in c.iter().enumerate() {
                    if pos < start + b { expected = Some((i, pos - start)); break; }
                    start += b;
                }
                prop_assert_eq!(got.ok(), expected);
            }
        }

        #[test]
        fn shape_spec_is_regular(shape in proptest::collection::vec(0usize..30, 0..4),
                                 block in proptest::collection::vec(1usize..40, 4)) {
            let block = &block[..shape.len()];
            let c = Chunks::new(&shape, block, 8).unwrap();
            prop_assert_eq!(c.shape(), &shape[..]);
            prop_assert!(c.is_regular());
            for (axis, &len) in shape.iter().enumerate() {
                let blocks = c.axis(axis);
                if len == 0 {
                    prop_assert_eq!(blocks, &[0][..]);
                } else {
                    let b = block[axis].min(len);
                    prop_assert_eq!(blocks.len(), len.div_ceil(b));
                    prop_assert!(blocks[..blocks.len() - 1].iter().all(|&x| x == b));
                }
            }
            prop_assert_eq!(c.block_indices().count(), c.nblocks());
        }

        #[test]
        fn block_indices_enumerate_the_grid(nb in proptest::collection::vec(1usize..4, 0..4)) {
            let all: Vec<Vec<usize>> = BlockIndices::new(nb.clone()).collect();
            prop_assert_eq!(all.len(), nb.iter().product::<usize>());
            // C order is lexicographic order.
            prop_assert!(all.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(all.iter().all(|ix| ix.iter().zip(&nb).all(|(i, n)| i < n)));
        }

        #[test]
        fn auto_respects_the_target(shape in proptest::collection::vec(0usize..2_000_000, 1..5),
                                    itemsize in prop::sample::select(vec![1usize, 2, 4, 8, 16]),
                                    target in 1usize..(1 << 31)) {
            let bytes = shape.iter().try_fold(itemsize, |acc, &n| acc.checked_mul(n));
            if bytes.is_none_or(|b| b > isize::MAX as usize) && !shape.contains(&0) {
                // Too big to address: refused, naming the shape.
                let e = Chunks::new(&shape, ChunkSpec::auto_bytes(target), itemsize).unwrap_err();
                prop_assert_eq!(e.kind(), crate::ErrorKind::Shape);
                return Ok(());
            }
            let c = Chunks::new(&shape, ChunkSpec::auto_bytes(target), itemsize).unwrap();
            prop_assert_eq!(c.shape(), &shape[..]);
            prop_assert!(c.is_regular());
            let bytes = c.max_block_elems() as u128 * itemsize as u128;
            prop_assert!(bytes <= target.max(itemsize) as u128, "{} > {}", bytes, target);
            // Near-cubic: the axes that are cut have block lengths within a factor 2 of each
            // other, and no uncut axis is more than twice as long as a cut one's block.
            let max = c.max_block_shape();
            let cut: Vec<usize> = (0..shape.len()).filter(|&a| c.axis(a).len() > 1).map(|a| max[a]).collect();
            if let (Some(&lo), Some(&hi)) = (cut.iter().min(), cut.iter().max()) {
                prop_assert!(hi <= 2 * lo, "{:?}", max);
                for a in 0..shape.len() {
                    if c.axis(a).len() == 1 {
                        prop_assert!(shape[a] <= 2 * hi, "{:?} {:?}", shape, max);
                    }
                }
                // And the budget is not wasted: doubling every cut block would exceed it.
                let grown: u128 = max.iter().enumerate()
                    .map(|(a, &m)| if c.axis(a).len() > 1 { 2 * m as u128 } else { m.max(1) as u128 })
                    .product();
                prop_assert!(grown * itemsize as u128 > target as u128);
            }
        }

        #[test]
        fn broadcast_matches_numpy_rules(a in proptest::collection::vec(prop::sample::select(vec![0usize, 1, 2, 3]), 0..4),
                                         b in proptest::collection::vec(prop::sample::select(vec![0usize, 1, 2, 3]), 0..4)) {
            let got = broadcast_shapes(&a, &b);
            // Reference: pad with ones on the left, compare axis by axis.
            let n = a.len().max(b.len());
            let pad = |s: &[usize]| { let mut v = vec![1; n - s.len()]; v.extend_from_slice(s); v };
            let (pa, pb) = (pad(&a), pad(&b));
            let mut expected = Some(Vec::new());
            for (&x, &y) in pa.iter().zip(&pb) {
                let r = if x == y { Some(x) } else if x == 1 { Some(y) } else if y == 1 { Some(x) } else { None };
                match (r, expected.as_mut()) {
                    (Some(r), Some(v)) => v.push(r),
                    _ => expected = None,
                }
            }
            match expected {
                Some(e) => {
                    prop_assert_eq!(got.as_ref().unwrap(), &e);
                    let ca = Chunks::new(&a, 2, 8).unwrap();
                    let cb = Chunks::new(&b, 1, 8).unwrap();
                    let c = broadcast_chunks(&ca, &cb).unwrap();
                    prop_assert_eq!(c.shape(), &e[..]);
                }
                None => prop_assert_eq!(got.unwrap_err().kind(), ErrorKind::Shape),
            }
        }
    }
}
