//! Overlapping blocks ("ghosting"): [`BlockArray::overlap`], [`BlockArray::map_overlap`] and
//! [`BlockArray::trim_internal`], with per-axis depths and boundary conditions.
//!
//! # Design notes
//!
//! `overlap` gives every block a margin of its neighbours' elements: `before` elements on the
//! low side of each axis and `after` on the high side. At the array's edges the margin comes
//! from the boundary condition ([`Boundary`]): nothing (`None`, the edge block stays shorter),
//! a constant, a reflection, the other end of the axis (`Periodic`), or the edge value
//! repeated (`Nearest`).
//!
//! Only slivers move between blocks. Each margin piece that comes from another block is a
//! *sliver task*: a slice of that block (its last `before` rows, its first `after` columns, a
//! corner, …), a node of its own (`BlockSlicesNode`) whose tasks read one block and keep a
//! few rows of it. The overlap task of a block reads its own block and the slivers of its
//! neighbours (up to `3^d - 1` of them in `d` dimensions) and assembles the extended block.
//! Margins taken from the block itself (reflections and repeated edges at the array's
//! boundary, or a periodic axis of one block) are cut inside the overlap task, and constant
//! margins are filled there, so they move nothing.
//!
//! A margin must come from the immediate neighbour, so every block along an overlapped axis
//! must be at least as long as the larger depth of that axis: shorter blocks are merged with
//! the blocks after them first (a rechunk that reads only adjacent blocks). A depth larger
//! than the axis itself is an error.
//!
//! `map_overlap` is `overlap`, then the user function over each extended block and the trim of
//! its result, in one blockwise node: one task per block, and the trim only narrows the view of
//! the function's result (no copy). The overlap task before it is not blockwise (it reads
//! several blocks) and keeps its own task.
//!
//! Costs, for `B` blocks in `d` dimensions with depth `h` on every side: `B` overlap tasks and
//! at most `B·(3^d - 1)` sliver tasks; the bytes that move between blocks are the slivers,
//! about `2·d·h/L` of the array for blocks of side `L` (plus corners).
//!
//! Boundary kinds follow dask's `overlap` (and so `numpy.pad`): dask's `"reflect"` repeats the
//! edge element (`numpy.pad`'s `"symmetric"`, `scipy.ndimage`'s `"reflect"`): `[1, 2, 3]` with
//! depth 2 becomes `[2, 1, 1, 2, 3, 3, 2]`. [`Boundary::Reflect`] is that. `"periodic"` is
//! `numpy.pad`'s `"wrap"`, `"nearest"` is `"edge"`, a value is `"constant"`. Where the margins
//! of several axes meet (the corners), the result is that of padding one axis after another,
//! as dask and `numpy.pad` do: reflections, wraps and repeats compose, and a constant axis fills
//! the corner with its value (the last constant axis, if several).

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::blockwise::blockwise_tagged;
use crate::ops::shape::rechunk_direct;
use crate::{BlockArray, BlockInfo, ChunkSpec, Chunks, Element, Error, Result};
use dag_core::{BlockIndex, TaskError, Tokenizer, Value};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// How far blocks reach into their neighbours: the same depth on both sides of every axis, or
/// `(before, after)` per axis.
///
/// ```
/// use blockarray::Depth;
/// assert_eq!(Depth::from(2), Depth::All(2));
/// assert_eq!(Depth::from([1, 0]), Depth::PerAxis(vec![(1, 1), (0, 0)]));
/// assert_eq!(Depth::from(vec![(2, 0), (1, 3)]), Depth::PerAxis(vec![(2, 0), (1, 3)]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The same depth on both sides of every axis.
    All(usize),
    /// Per axis, the depth `(before, after)`: elements taken from the block before and from
    /// the block after.
    PerAxis(Vec<(usize, usize)>),
}

impl From<usize> for Depth {
    fn from(d: usize) -> Depth {
        Depth::All(d)
    }
}

impl From<Vec<usize>> for Depth {
    fn from(d: Vec<usize>) -> Depth {
        Depth::PerAxis(d.into_iter().map(|d| (d, d)).collect())
    }
}

impl From<&[usize]> for Depth {
    fn from(d: &[usize]) -> Depth {
        Depth::from(d.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Depth {
    fn from(d: [usize; N]) -> Depth {
        Depth::from(d.to_vec())
    }
}

impl From<Vec<(usize, usize)>> for Depth {
    fn from(d: Vec<(usize, usize)>) -> Depth {
        Depth::PerAxis(d)
    }
}

impl<const N: usize> From<[(usize, usize); N]> for Depth {
    fn from(d: [(usize, usize); N]) -> Depth {
        Depth::PerAxis(d.to_vec())
    }
}

impl Depth {
    /// `(before, after)` for each axis of `shape`; fails if the number of axes differs or a
    /// depth exceeds its axis' length.
    pub fn resolve(&self, shape: &[usize]) -> Result<Vec<(usize, usize)>> {
        let per_axis = match self {
            Depth::All(d) => vec![(*d, *d); shape.len()],
            Depth::PerAxis(v) => {
                if v.len() != shape.len() {
                    return Err(Error::axis(format!(
                        "depth {v:?} has {} entries for an array of {} axes (shape {})",
                        v.len(),
                        shape.len(),
                        crate::error::fmt_shape(shape)
                    )));
                }
                v.clone()
            }
        };
        for (axis, (&(b, a), &len)) in per_axis.iter().zip(shape).enumerate() {
            if b.max(a) > len {
                return Err(Error::shape(format!(
                    "depth ({b}, {a}) along axis {axis} is larger than the axis (length {len}, shape {})",
                    crate::error::fmt_shape(shape)
                )));
            }
        }
        Ok(per_axis)
    }
}

/// What lies beyond the edges of the array along one axis, for [`BlockArray::overlap`].
///
/// With `x = [1, 2, 3]` and depth 2:
///
/// | kind | margin | `numpy.pad` mode |
/// |---|---|---|
/// | `None` | no margin at the edge (edge blocks stay shorter) | – |
/// | `Constant(0)` | `[0, 0, 1, 2, 3, 0, 0]` | `"constant"` |
/// | `Reflect` | `[2, 1, 1, 2, 3, 3, 2]` (dask's `"reflect"`) | `"symmetric"` |
/// | `Periodic` | `[2, 3, 1, 2, 3, 1, 2]` | `"wrap"` |
/// | `Nearest` | `[1, 1, 1, 2, 3, 3, 3]` | `"edge"` |
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary<T> {
    /// No margin at the array's edge: blocks at the edge grow only inwards.
    None,
    /// The margin is filled with a value.
    Constant(T),
    /// The margin mirrors the elements next to the edge, the edge element included.
    Reflect,
    /// The margin continues from the other end of the axis.
    Periodic,
    /// The margin repeats the edge element.
    Nearest,
}

impl<T: Element> Boundary<T> {
    fn tokenize(&self, t: &mut Tokenizer) {
        match self {
            Boundary::None => t.write_u64(0),
            Boundary::Constant(v) => {
                t.write_u64(1);
                v.tokenize(t);
                t
            }
            Boundary::Reflect => t.write_u64(2),
            Boundary::Periodic => t.write_u64(3),
            Boundary::Nearest => t.write_u64(4),
        };
    }
}

/// The boundary condition of every axis: one for all, or one per axis.
///
/// ```
/// use blockarray::{Boundaries, Boundary};
/// let b: Boundaries<f64> = Boundary::Reflect.into();
/// assert_eq!(b, Boundaries::All(Boundary::Reflect));
/// let b: Boundaries<f64> = [Boundary::Periodic, Boundary::Constant(0.0)].into();
/// assert_eq!(b, Boundaries::PerAxis(vec![Boundary::Periodic, Boundary::Constant(0.0)]));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Boundaries<T> {
    /// The same condition along every axis.
    All(Boundary<T>),
    /// One condition per axis.
    PerAxis(Vec<Boundary<T>>),
}

impl<T> From<Boundary<T>> for Boundaries<T> {
    fn from(b: Boundary<T>) -> Boundaries<T> {
        Boundaries::All(b)
    }
}

impl<T> From<Vec<Boundary<T>>> for Boundaries<T> {
    fn from(b: Vec<Boundary<T>>) -> Boundaries<T> {
        Boundaries::PerAxis(b)
    }
}

impl<T: Clone, const N: usize> From<[Boundary<T>; N]> for Boundaries<T> {
    fn from(b: [Boundary<T>; N]) -> Boundaries<T> {
        Boundaries::PerAxis(b.to_vec())
    }
}

impl<T: Element> Boundaries<T> {
    /// One condition per axis of an array of `ndim` axes; fails if a per-axis list has another
    /// length.
    pub fn resolve(&self, ndim: usize) -> Result<Vec<Boundary<T>>> {
        match self {
            Boundaries::All(b) => Ok(vec![*b; ndim]),
            Boundaries::PerAxis(v) if v.len() == ndim => Ok(v.clone()),
            Boundaries::PerAxis(v) => Err(Error::axis(format!(
                "{} boundary conditions {v:?} for an array of {ndim} axes",
                v.len()
            ))),
        }
    }
}

/// A contiguous cut of a block along one axis: what a sliver keeps of the block it slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    All,
    First(usize),
    Last(usize),
}

impl Cut {
    fn range(self, len: usize) -> Range<usize> {
        match self {
            Cut::All => 0..len,
            Cut::First(k) => 0..k,
            Cut::Last(k) => len - k..len,
        }
    }
}

/// One piece of an extended block along one axis.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Elements of the block `block` along this axis: `cut` of it, reversed or with its one
    /// element repeated `len` times.
    From {
        block: usize,
        cut: Cut,
        reverse: bool,
        repeat: bool,
        len: usize,
    },
    /// `len` elements of the boundary constant.
    Constant { len: usize },
}

impl Part {
    fn len(&self) -> usize {
        match *self {
            Part::From { len, .. } | Part::Constant { len } => len,
        }
    }
}

/// The pieces of each extended block along one axis, in order: margin before, the block,
/// margin after (margins absent where empty).
fn axis_parts<T>(
    chunks: &[usize],
    (before, after): (usize, usize),
    boundary: &Boundary<T>,
) -> Vec<Vec<Part>> {
    let nb = chunks.len();
    let from = |block, cut, len| Part::From {
        block,
        cut,
        reverse: false,
        repeat: false,
        len,
    };
    (0..nb)
        .map(|j| {
            let mut parts = Vec::with_capacity(3);
            if before > 0 {
                let part = if j > 0 {
                    Some(from(j - 1, Cut::Last(before), before))
                } else {
                    match boundary {
                        Boundary::None => None,
                        Boundary::Constant(_) => Some(Part::Constant { len: before }),
                        Boundary::Periodic => Some(from(nb - 1, Cut::Last(before), before)),
                        Boundary::Reflect => Some(Part::From {
                            block: 0,
                            cut: Cut::First(before),
                            reverse: true,
                            repeat: false,
                            len: before,
                        }),
                        Boundary::Nearest => Some(Part::From {
                            block: 0,
                            cut: Cut::First(1),
                            reverse: false,
                            repeat: true,
                            len: before,
                        }),
                    }
                };
                parts.extend(part);
            }
            parts.push(from(j, Cut::All, chunks[j]));
            if after > 0 {
                let part = if j + 1 < nb {
                    Some(from(j + 1, Cut::First(after), after))
                } else {
                    match boundary {
                        Boundary::None => None,
                        Boundary::Constant(_) => Some(Part::Constant { len: after }),
                        Boundary::Periodic => Some(from(0, Cut::First(after), after)),
                        Boundary::Reflect => Some(Part::From {
                            block: j,
                            cut: Cut::Last(after),
                            reverse: true,
                            repeat: false,
                            len: after,
                        }),
                        Boundary::Nearest => Some(Part::From {
                            block: j,
                            cut: Cut::Last(1),
                            reverse: false,
                            repeat: true,
                            len: after,
                        }),
                    }
                };
                parts.extend(part);
            }
            parts
        })
        .collect()
}

/// Each block of its input sliced by a per-axis, per-block range: the slivers of `overlap`
/// (first or last rows of every block) and the trim of `map_overlap` (every block without its
/// margins). Blockwise: each task reads one block.
pub(crate) struct BlockSlicesNode {
    meta: Meta,
    input: Arc<dyn Node>,
    /// Per axis, per block: the range kept.
    ranges: Vec<Vec<Range<usize>>>,
}

impl BlockSlicesNode {
    /// `input` with block `j` along axis `a` cut to `ranges[a][j]`; `op` and what `t` was fed
    /// must determine the ranges (they name the node).
    fn build(
        input: &Arc<dyn Node>,
        op: &str,
        t: Tokenizer,
        ranges: Vec<Vec<Range<usize>>>,
    ) -> Result<Arc<dyn Node>> {
        let chunks = Chunks::from_blocks(
            ranges
                .iter()
                .map(|axis| axis.iter().map(|r| r.len()).collect())
                .collect(),
        )?;
        let meta = input.meta().derive(op, t, chunks);
        Ok(Arc::new(BlockSlicesNode {
            meta,
            input: input.clone(),
            ranges,
        }))
    }
}

impl Node for BlockSlicesNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let in_shape = self.input.meta().chunks.block_shape(index);
        let mut whole = true;
        let info: Vec<SliceInfoElem> = index
            .iter()
            .enumerate()
            .map(|(ax, &j)| {
                let r = self.ranges[ax][j].clone();
                whole &= r == (0..in_shape[ax]);
                SliceInfoElem::from(r)
            })
            .collect();
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                if whole {
                    Ok(v[0].clone())
                } else {
                    kit.slice(&v[0], &info)
                }
            }),
        }
    }
}

/// How one piece of an extended block is filled.
#[derive(Clone, Debug)]
enum Fill {
    /// From value `dep` (0: the own block, k: the k-th sliver), selected by `select`.
    Copy {
        dep: usize,
        select: Vec<SliceInfoElem>,
    },
    /// With the boundary constant of axis `axis`.
    Constant { axis: usize },
}

/// Every block extended by its margins.
struct OverlapNode<T: Element> {
    meta: Meta,
    /// The input (rechunked so that every block is at least as long as the depth).
    input: Arc<dyn Node>,
    /// The sliver nodes, then their cuts per axis.
    slivers: Vec<(Arc<dyn Node>, Vec<Cut>)>,
    /// Per axis, per block: the pieces of the extended block.
    parts: Vec<Vec<Vec<Part>>>,
    boundaries: Vec<Boundary<T>>,
}

impl<T: Element> Node for OverlapNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        std::iter::once(self.input.clone())
            .chain(self.slivers.iter().map(|(n, _)| n.clone()))
            .collect()
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nd = index.len();
        let per_axis: Vec<&Vec<Part>> = (0..nd).map(|a| &self.parts[a][index[a]]).collect();
        let shape = self.meta.chunks.block_shape(index);
        let in_chunks = &self.input.meta().chunks;
        let own = BlockIndex::from_slice(index);
        let mut deps: Vec<(usize, BlockIndex)> = vec![(0, own.clone())];
        let mut fills: Vec<(Fill, Vec<SliceInfoElem>)> = Vec::new();
        let mut choice = vec![0usize; nd];
        loop {
            // The piece: one part per axis.
            let mut dst = Vec::with_capacity(nd);
            let mut constant = None;
            let mut source = BlockIndex::new();
            let mut cuts = Vec::with_capacity(nd);
            for a in 0..nd {
                let before: usize = per_axis[a][..choice[a]].iter().map(Part::len).sum();
                let part = per_axis[a][choice[a]];
                dst.push(SliceInfoElem::from(before..before + part.len()));
                match part {
                    // As `numpy.pad` axis after axis: the last constant axis fills a corner.
                    Part::Constant { .. } => constant = Some(a),
                    Part::From { block, cut, .. } => {
                        source.push(block);
                        cuts.push(cut);
                    }
                }
            }
            let fill = if let Some(axis) = constant {
                Fill::Constant { axis }
            } else {
                let local = source == own;
                // Select within the value: the own block (cut here) or the sliver (already cut).
                let select: Vec<SliceInfoElem> = (0..nd)
                    .map(|a| {
                        let Part::From {
                            block,
                            cut,
                            reverse,
                            repeat,
                            ..
                        } = per_axis[a][choice[a]]
                        else {
                            unreachable!("constant pieces are handled above")
                        };
                        let len = in_chunks.axis(a)[block];
                        let r = if local {
                            cut.range(len)
                        } else {
                            0..cut.range(len).len()
                        };
                        if repeat {
                            // One element, broadcast over the margin by `assign`.
                            let at = if matches!(cut, Cut::Last(_)) {
                                r.end - 1
                            } else {
                                r.start
                            };
                            SliceInfoElem::from(at..at + 1)
                        } else if reverse {
                            SliceInfoElem::Slice {
                                start: r.start as isize,
                                end: Some(r.end as isize),
                                step: -1,
                            }
                        } else {
                            SliceInfoElem::from(r)
                        }
                    })
                    .collect();
                let dep = if local {
                    0
                } else {
                    let k = self
                        .slivers
                        .iter()
                        .position(|(_, c)| *c == cuts)
                        .expect("every sliver kind has a node");
                    deps.push((k + 1, source));
                    deps.len() - 1
                };
                Fill::Copy { dep, select }
            };
            fills.push((fill, dst));
            // Next piece (odometer over the parts of each axis).
            let mut a = nd;
            loop {
                if a == 0 {
                    break;
                }
                a -= 1;
                choice[a] += 1;
                if choice[a] < per_axis[a].len() {
                    break;
                }
                choice[a] = 0;
            }
            if choice.iter().all(|&c| c == 0) {
                break;
            }
        }
        let boundaries = self.boundaries.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                // The pieces tile the extended block (one part per axis, the parts of an axis
                // covering its length end to end), so every element is written exactly once:
                // the block starts uninitialised instead of being filled first.
                let mut out = ArrayD::<T>::uninit(IxDyn(&shape));
                let mut written = 0usize;
                for (fill, dst) in &fills {
                    let mut target = out.slice_mut(dst.as_slice());
                    written += target.len();
                    match fill {
                        Fill::Constant { axis } => {
                            let Boundary::Constant(c) = boundaries[*axis] else {
                                return Err("internal: constant margin without a constant".into());
                            };
                            target.fill(std::mem::MaybeUninit::new(c));
                        }
                        Fill::Copy { dep, select } => {
                            let src = block_ref::<T>(&v[*dep])?;
                            let src = src.slice(select.as_slice());
                            if src.shape() == target.shape() {
                                src.assign_to(&mut target);
                            } else {
                                let b = src.broadcast(target.raw_dim()).ok_or_else(|| {
                                    TaskError::from("internal: margin does not broadcast")
                                })?;
                                b.assign_to(&mut target);
                            }
                        }
                    }
                }
                if written != out.len() {
                    return Err(format!(
                        "internal: the pieces of an extended block cover {written} of its {} \
                         elements",
                        out.len()
                    )
                    .into());
                }
                // SAFETY: the pieces are disjoint (distinct part per axis) and cover `written`
                // = all elements, each assigned above.
                Ok(block_value(unsafe { out.assume_init() }))
            }),
        }
    }
}

/// The chunks of `chunks` along an overlapped axis with every block at least `min` long:
/// shorter blocks are merged into the blocks after them (the last into the one before).
fn ensure_min_chunk(chunks: &[usize], min: usize) -> Vec<usize> {
    if min == 0 || chunks.iter().all(|&c| c >= min) {
        return chunks.to_vec();
    }
    let mut out: Vec<usize> = Vec::with_capacity(chunks.len());
    let mut acc = 0;
    for &c in chunks {
        acc += c;
        if acc >= min {
            out.push(acc);
            acc = 0;
        }
    }
    if acc > 0 {
        match out.last_mut() {
            Some(last) => *last += acc,
            None => out.push(acc),
        }
    }
    out
}

fn tokenize_depth(t: &mut Tokenizer, depth: &[(usize, usize)]) {
    for &(b, a) in depth {
        t.write_usize(b).write_usize(a);
    }
}

/// `node` with every block extended by its margins (see the module notes).
fn overlap_node<T: Element>(
    node: &Arc<dyn Node>,
    depth: &[(usize, usize)],
    boundaries: &[Boundary<T>],
) -> Result<Arc<dyn Node>> {
    node.meta().chunks.require_known("overlap")?;
    let chunks = &node.meta().chunks;
    let wanted: Vec<Vec<usize>> = (0..chunks.ndim())
        .map(|a| {
            let (b, f) = depth[a];
            ensure_min_chunk(chunks.axis(a), b.max(f))
        })
        .collect();
    let input = rechunk_direct(node, Chunks::from_blocks(wanted)?)?;
    if depth.iter().all(|&(b, a)| b == 0 && a == 0) {
        return Ok(input);
    }
    let in_chunks = input.meta().chunks.clone();
    let nd = in_chunks.ndim();
    let parts: Vec<Vec<Vec<Part>>> = (0..nd)
        .map(|a| axis_parts(in_chunks.axis(a), depth[a], &boundaries[a]))
        .collect();
    // Every distinct cut of a piece that comes from another block gets a sliver node. Per
    // axis, the cuts that occur (and whether they come from another block along that axis);
    // block indices vary independently along the axes, so every combination occurs.
    let options: Vec<BTreeMap<(Cut, bool), ()>> = (0..nd)
        .map(|a| {
            let mut seen = BTreeMap::new();
            for (j, block_parts) in parts[a].iter().enumerate() {
                for p in block_parts {
                    if let Part::From { block, cut, .. } = *p {
                        seen.insert((cut, block != j), ());
                    }
                }
            }
            seen
        })
        .collect();
    let mut kinds: Vec<(Vec<Cut>, bool)> = vec![(Vec::new(), false)];
    for opts in &options {
        kinds = kinds
            .into_iter()
            .flat_map(|(cuts, other)| {
                opts.keys().map(move |&(c, o)| {
                    let mut cuts = cuts.clone();
                    cuts.push(c);
                    (cuts, other || o)
                })
            })
            .collect();
    }
    kinds.retain(|(_, other)| *other);
    kinds.sort();
    kinds.dedup();
    let slivers = kinds
        .into_iter()
        .map(|(cuts, _)| {
            let ranges: Vec<Vec<Range<usize>>> = (0..nd)
                .map(|a| {
                    in_chunks
                        .axis(a)
                        .iter()
                        .map(|&len| cuts[a].range(len))
                        .collect()
                })
                .collect();
            let mut t = token_of(&[&input]);
            for c in &cuts {
                match *c {
                    Cut::All => t.write_u64(0),
                    Cut::First(k) => t.write_u64(1).write_usize(k),
                    Cut::Last(k) => t.write_u64(2).write_usize(k),
                };
            }
            BlockSlicesNode::build(&input, "sliver", t, ranges).map(|n| (n, cuts))
        })
        .collect::<Result<Vec<_>>>()?;
    // An extended block is its block and two margins, each up to the axis's length: past
    // usize for axes longer than a third of it (one-byte elements).
    let out_chunks = Chunks::from_blocks(
        parts
            .iter()
            .enumerate()
            .map(|(a, axis)| {
                axis.iter()
                    .map(|p| {
                        p.iter()
                            .try_fold(0usize, |acc, part| acc.checked_add(part.len()))
                            .ok_or_else(|| {
                                Error::shape(format!(
                                    "overlap: along axis {a}, a block with its margins of depth \
                                     {:?} would be longer than memory can address",
                                    depth.get(a).copied().unwrap_or_default()
                                ))
                            })
                    })
                    .collect::<Result<Vec<usize>>>()
            })
            .collect::<Result<Vec<_>>>()?,
    )?;
    let mut t = token_of(&[&input]);
    tokenize_depth(&mut t, depth);
    for b in boundaries {
        b.tokenize(&mut t);
    }
    let meta = input.meta().derive("overlap", t, out_chunks);
    Ok(Arc::new(OverlapNode {
        meta,
        input,
        slivers,
        parts,
        boundaries: boundaries.to_vec(),
    }))
}

/// Per axis, per block of an overlapped array of `chunks`: the range that is not margin, for
/// `depth`, where `none[a]` says axis `a` had no margin at the array's edges.
fn trim_ranges(
    chunks: &Chunks,
    depth: &[(usize, usize)],
    none: &[bool],
) -> Result<Vec<Vec<Range<usize>>>> {
    if depth.len() != chunks.ndim() {
        return Err(Error::axis(format!(
            "depth {depth:?} has {} entries for an array of {} axes",
            depth.len(),
            chunks.ndim()
        )));
    }
    (0..chunks.ndim())
        .map(|a| {
            let (b, f) = depth[a];
            let nb = chunks.axis(a).len();
            chunks
                .axis(a)
                .iter()
                .enumerate()
                .map(|(j, &len)| {
                    let lo = if j > 0 || !none[a] { b } else { 0 };
                    let hi = if j + 1 < nb || !none[a] { f } else { 0 };
                    if lo.checked_add(hi).is_none_or(|m| m > len) {
                        return Err(Error::shape(format!(
                            "cannot trim ({b}, {f}) from block {j} of length {len} along axis {a} \
                             (chunks {chunks})"
                        )));
                    }
                    Ok(lo..len - hi)
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

/// Each block of an overlapped array without its margins: the inverse of `overlap` for
/// `depth`, where `none[a]` says axis `a` had no margin at the array's edges.
fn trim_node(
    node: &Arc<dyn Node>,
    depth: &[(usize, usize)],
    none: &[bool],
) -> Result<Arc<dyn Node>> {
    let ranges = trim_ranges(&node.meta().chunks, depth, none)?;
    if depth.iter().all(|&(b, a)| b == 0 && a == 0) {
        return Ok(node.clone());
    }
    let mut t = token_of(&[node]);
    tokenize_depth(&mut t, depth);
    for &n in none {
        t.write_u64(u64::from(n));
    }
    BlockSlicesNode::build(node, "trim", t, ranges)
}

/// Options of [`BlockArray::map_overlap_with`]: the name in task keys, and a token for the
/// function.
///
/// By default every call gets a fresh token ([`OpName::unique`](crate::OpName::unique)), so
/// two `map_overlap` calls never share tasks, even with the same closure type: a closure's
/// captured values cannot be hashed, and equal keys must mean equal work. Give a token of your
/// own ([`token`](Self::token)) to let equal calls share their tasks
/// ([`OpName::pure`](crate::OpName::pure)): you vouch that the same token means the same
/// function.
#[derive(Clone, Debug)]
pub struct MapOverlap {
    name: String,
    token: Option<u64>,
}

impl Default for MapOverlap {
    fn default() -> MapOverlap {
        MapOverlap {
            name: "map-overlap".to_owned(),
            token: None,
        }
    }
}

impl MapOverlap {
    /// The default options: named `map-overlap`, a fresh token per call.
    pub fn new() -> MapOverlap {
        MapOverlap::default()
    }

    /// The name of the function's tasks.
    pub fn name(mut self, name: &str) -> MapOverlap {
        self.name = name.to_owned();
        self
    }

    /// A token that identifies the function (with everything it captures): calls with the same
    /// token, input, depth and boundaries share their tasks.
    pub fn token(mut self, token: u64) -> MapOverlap {
        self.token = Some(token);
        self
    }
}

impl<T: Element> BlockArray<T> {
    /// Every block extended by `depth` elements of its neighbours along each axis (dask's
    /// `overlap`), with `boundary` deciding what lies beyond the array's edges. Blocks shorter
    /// than the depth of their axis are merged with the following blocks first.
    ///
    /// Each extended block is made from its own block and slivers of its neighbours: only the
    /// margins move. With a depth of 0 along an axis, that axis is left alone.
    ///
    /// # Errors
    /// A depth list or boundary list with the wrong number of axes, or a depth larger than its
    /// axis (both name the axis and the shape).
    ///
    /// ```
    /// use blockarray::{BlockArray, Boundary};
    /// use ndarray::array;
    /// let x = BlockArray::from_array(array![1i64, 2, 3, 4, 5, 6], 3)?;
    /// let y = x.overlap(1, Boundary::Constant(0))?;
    /// assert_eq!(y.chunks().axis(0), &[5, 5]);
    /// assert_eq!(y.compute()?.into_raw_vec_and_offset().0, vec![0, 1, 2, 3, 4, 3, 4, 5, 6, 0]);
    /// let r = x.overlap(2, Boundary::Reflect)?.compute()?;
    /// assert_eq!(r.into_raw_vec_and_offset().0, vec![2, 1, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 6, 5]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn overlap(
        &self,
        depth: impl Into<Depth>,
        boundary: impl Into<Boundaries<T>>,
    ) -> Result<BlockArray<T>> {
        let depth = depth.into().resolve(self.shape())?;
        let boundaries = boundary.into().resolve(self.ndim())?;
        Ok(BlockArray::wrap(overlap_node(
            &self.node,
            &depth,
            &boundaries,
        )?))
    }

    /// Each block without its margins: the inverse of [`overlap`](Self::overlap) with the
    /// same `depth` and `boundary` (along axes whose boundary is [`Boundary::None`], the
    /// blocks at the array's edges have no outer margin to remove). dask's `trim_internal`.
    ///
    /// # Errors
    /// A depth or boundary list with the wrong number of axes, or a block shorter than the
    /// margins to remove from it.
    ///
    /// ```
    /// use blockarray::{BlockArray, Boundary};
    /// let x = BlockArray::arange(0i64, 10, 1, 4)?;
    /// let y = x.overlap(2, Boundary::Periodic)?;
    /// assert_eq!(y.trim_internal(2, Boundary::Periodic)?.compute()?, x.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn trim_internal(
        &self,
        depth: impl Into<Depth>,
        boundary: impl Into<Boundaries<T>>,
    ) -> Result<BlockArray<T>> {
        // Which elements a margin holds depends on the blocks' real lengths.
        self.chunks().require_known("trim_internal")?;
        let depth = match depth.into() {
            Depth::All(d) => vec![(d, d); self.ndim()],
            Depth::PerAxis(v) => v,
        };
        let none: Vec<bool> = boundary
            .into()
            .resolve(self.ndim())?
            .iter()
            .map(|b| matches!(b, Boundary::None))
            .collect();
        Ok(BlockArray::wrap(trim_node(&self.node, &depth, &none)?))
    }

    /// Apply `f` to every block extended by `depth` elements of its neighbours, then cut the
    /// margins off the results (dask's `map_overlap` with `trim=True`): stencils, filters,
    /// finite differences, sliding windows. `f` receives the extended block and where it
    /// sits in the overlapped array ([`BlockInfo`]), and must return an array of the same
    /// shape (a block of another shape is an error naming the block).
    ///
    /// The function and the trim run as one task per block, after the task that assembles the
    /// extended block. Every call gets tasks of its own (see [`MapOverlap`];
    /// [`map_overlap_with`](Self::map_overlap_with) takes a name and a token).
    ///
    /// # Errors
    /// As [`overlap`](Self::overlap).
    ///
    /// A 3-point moving average with reflected edges (`scipy.ndimage.uniform_filter1d(x, 3,
    /// mode="reflect")`):
    ///
    /// ```
    /// use blockarray::{BlockArray, Boundary};
    /// use ndarray::ArrayD;
    /// let x = BlockArray::from_array(ndarray::array![1.0, 2.0, 6.0, 4.0, 5.0], 2)?;
    /// let y = x.map_overlap(1, Boundary::Reflect, |b: &ArrayD<f64>, _| {
    ///     let n = b.len();
    ///     Ok(ArrayD::from_shape_fn(b.raw_dim(), |i| {
    ///         let k = i[0].clamp(1, n - 2);
    ///         (b[[k - 1]] + b[[k]] + b[[k + 1]]) / 3.0
    ///     }))
    /// })?;
    /// assert_eq!(y.compute()?.into_raw_vec_and_offset().0, vec![4.0 / 3.0, 3.0, 4.0, 5.0, 14.0 / 3.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn map_overlap<U, F>(
        &self,
        depth: impl Into<Depth>,
        boundary: impl Into<Boundaries<T>>,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(&ArrayD<T>, &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
            + Send
            + Sync
            + 'static,
    {
        self.map_overlap_with(&MapOverlap::new(), depth, boundary, f)
    }

    /// [`map_overlap`](Self::map_overlap) with options: the name of the tasks and, if you
    /// vouch for it, a token identifying `f` (so that equal calls share tasks).
    ///
    /// ```
    /// use blockarray::{BlockArray, Boundary, MapOverlap};
    /// let x = BlockArray::<f64>::ones(&[6, 6], [3, 3])?;
    /// let opts = MapOverlap::new().name("neighbours").token(1);
    /// let count = |b: &ndarray::ArrayD<f64>, _: &blockarray::BlockInfo<'_>| Ok(b.mapv(|_| b.sum()));
    /// let a = x.map_overlap_with(&opts, 1, Boundary::Constant(0.0), count)?;
    /// let b = x.map_overlap_with(&opts, 1, Boundary::Constant(0.0), count)?;
    /// assert_eq!(a.name(), b.name());
    /// assert_eq!(a.compute()?[[0, 0]], 16.0);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn map_overlap_with<U, F>(
        &self,
        options: &MapOverlap,
        depth: impl Into<Depth>,
        boundary: impl Into<Boundaries<T>>,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(&ArrayD<T>, &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
            + Send
            + Sync
            + 'static,
    {
        let depth = depth.into().resolve(self.shape())?;
        let boundaries = boundary.into().resolve(self.ndim())?;
        let extended: BlockArray<T> =
            BlockArray::wrap(overlap_node(&self.node, &depth, &boundaries)?);
        let none: Vec<bool> = boundaries
            .iter()
            .map(|b| matches!(b, Boundary::None))
            .collect();
        let ext_chunks = extended.chunks().clone();
        let ranges = trim_ranges(&ext_chunks, &depth, &none)?;
        let out_chunks: Vec<Vec<usize>> = ranges
            .iter()
            .map(|axis| axis.iter().map(|r| r.len()).collect())
            .collect();
        let op = match options.token {
            Some(token) => crate::OpName::pure(options.name.as_str(), &token),
            None => crate::OpName::unique(options.name.as_str()),
        };
        let tag = std::any::type_name::<F>();
        let name = options.name.clone();
        // The function and the trim in one closure: the trim only narrows the view of the
        // function's result (`slice_move`), no copy.
        let apply = move |b: &[&ArrayD<T>], out: &BlockInfo<'_>| {
            let start = ext_chunks.block_start(out.index);
            let shape = ext_chunks.block_shape(out.index);
            let info = BlockInfo {
                index: out.index,
                start: &start,
                block_shape: &shape,
                array_shape: ext_chunks.shape(),
            };
            let result = f(b[0], &info)?;
            if result.shape() != shape.as_slice() {
                return Err(TaskError::from(format!(
                    "{name}: extended block {:?} of shape {shape:?} came back with shape {:?}",
                    out.index,
                    result.shape()
                )));
            }
            let keep: Vec<SliceInfoElem> = out
                .index
                .iter()
                .enumerate()
                .map(|(a, &j)| SliceInfoElem::from(ranges[a][j].clone()))
                .collect();
            Ok(result.slice_move(keep.as_slice()))
        };
        blockwise_tagged(
            &op,
            tag,
            &[&extended],
            Some(ChunkSpec::Explicit(out_chunks)),
            apply,
        )
    }
}

/// `x` with every block extended by its neighbours' margins (dask's `overlap`); see
/// [`BlockArray::overlap`].
///
/// ```
/// use blockarray::{BlockArray, Boundary, overlap};
/// let x = BlockArray::arange(0i64, 6, 1, 3)?;
/// let y = overlap(&x, 1, Boundary::Nearest)?.compute()?;
/// assert_eq!(y.into_raw_vec_and_offset().0, vec![0, 0, 1, 2, 3, 2, 3, 4, 5, 5]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn overlap<T: Element>(
    x: &BlockArray<T>,
    depth: impl Into<Depth>,
    boundary: impl Into<Boundaries<T>>,
) -> Result<BlockArray<T>> {
    x.overlap(depth, boundary)
}

/// `f` over every block of `x` extended by `depth`, the margins trimmed afterwards (dask's
/// `map_overlap`); see [`BlockArray::map_overlap`].
///
/// ```
/// use blockarray::{BlockArray, Boundary, map_overlap};
/// let x = BlockArray::arange(0.0, 6.0, 1.0, 2)?;
/// // A centred difference (x[i+1] - x[i-1]) / 2 with the edges repeated.
/// let d = map_overlap(&x, 1, Boundary::Nearest, |b: &ndarray::ArrayD<f64>, _| {
///     let n = b.len();
///     Ok(ndarray::ArrayD::from_shape_fn(b.raw_dim(), |i| {
///         let (l, r) = (i[0].saturating_sub(1), (i[0] + 1).min(n - 1));
///         (b[[r]] - b[[l]]) / 2.0
///     }))
/// })?;
/// assert_eq!(d.compute()?.into_raw_vec_and_offset().0, vec![0.5, 1.0, 1.0, 1.0, 1.0, 0.5]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn map_overlap<T, U, F>(
    x: &BlockArray<T>,
    depth: impl Into<Depth>,
    boundary: impl Into<Boundaries<T>>,
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&ArrayD<T>, &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
        + Send
        + Sync
        + 'static,
{
    x.map_overlap(depth, boundary, f)
}

/// Every block of `x` without the margins of `overlap(depth, boundary)` (dask's
/// `trim_internal`); see [`BlockArray::trim_internal`].
///
/// ```
/// use blockarray::{BlockArray, Boundary, trim_internal};
/// let x = BlockArray::arange(0i64, 6, 1, 3)?;
/// let y = x.overlap(1, Boundary::None)?;
/// assert_eq!(trim_internal(&y, 1, Boundary::None)?.compute()?, x.compute()?);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn trim_internal<T: Element>(
    x: &BlockArray<T>,
    depth: impl Into<Depth>,
    boundary: impl Into<Boundaries<T>>,
) -> Result<BlockArray<T>> {
    x.trim_internal(depth, boundary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_chunks_merge_short_blocks_forward() {
        assert_eq!(ensure_min_chunk(&[5, 5, 5], 2), vec![5, 5, 5]);
        assert_eq!(ensure_min_chunk(&[1, 1, 5, 1], 2), vec![2, 6]);
        assert_eq!(ensure_min_chunk(&[3], 2), vec![3]);
        assert_eq!(ensure_min_chunk(&[1, 1, 1], 3), vec![3]);
        assert_eq!(ensure_min_chunk(&[4, 1, 1, 4], 3), vec![4, 6]);
    }

    #[test]
    fn slivers_only_for_pieces_from_other_blocks() {
        let x = BlockArray::<f64>::ones(&[9, 9], [3, 3]).unwrap();
        let y = x.overlap(1, Boundary::Reflect).unwrap();
        // 8 neighbour directions, plus the cuts reflect needs at the edges: a corner piece of
        // an edge block reflected along one axis comes from the neighbour along the other.
        let node = y.node();
        let inputs = node.inputs();
        assert!(inputs.len() > 1);
        assert!(
            inputs[1..]
                .iter()
                .all(|n| n.meta().op() == "sliver" && n.meta().chunks.max_block_elems() <= 3)
        );
        // A constant boundary needs no reflections: exactly the 8 neighbour directions.
        let z = x.overlap(1, Boundary::Constant(0.0)).unwrap();
        assert_eq!(z.node().inputs().len(), 1 + 8);
    }

    #[test]
    fn bad_depths_and_boundaries_name_the_axis() {
        let x = BlockArray::<f64>::ones(&[4, 5], [2, 2]).unwrap();
        let e = x.overlap([1, 6], Boundary::Reflect).unwrap_err();
        assert!(e.to_string().contains("axis 1"), "{e}");
        assert!(e.to_string().contains("length 5"), "{e}");
        let e = x.overlap([1, 1, 1], Boundary::Reflect).unwrap_err();
        assert!(e.to_string().contains("3 entries"), "{e}");
        let e = x
            .overlap(1, vec![Boundary::Reflect; 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 boundary conditions"), "{e}");
    }
}
