//! `sort`, `argsort`, `partition` and `argpartition` along an axis, out of core.
//!
//! # Design notes
//!
//! Elements are ordered by ([`SortKey`], position along the axis): NumPy's order with NaN last,
//! and ties by position, so `argsort` is stable and the result is the same whatever the
//! chunking.
//!
//! **Short lanes** (at most [`super::quantile::LANE_BYTES`] along the axis) are
//! sorted in memory: the axis is rechunked into one block (the other axes cut so blocks stay
//! near 128 MiB) and each lane is sorted (or partitioned) in its block's task.
//!
//! **Long lanes** use a sample sort with exact output blocks (the output keeps the input's
//! chunks along the axis):
//!
//! 1. *Splitters*: a strided sample of the lane (pushed down into the source, so a generated
//!    or stored array reads only the sampled elements) is sorted in one task and cut into `B`
//!    buckets (16 per output block) by `B - 1` splitters.
//! 2. *Partition*: each input block's `(key, position)` pairs are counting-sorted by bucket
//!    (a table on the key's top 16 bits, then a binary search among the few splitters that
//!    share them). The buckets' sizes, summed over the blocks in a tree, give every bucket's
//!    first rank.
//! 3. *Output*: the task of output block `j` (ranks `o_j .. o_j + c_j`) gathers the pieces of
//!    the buckets its ranks fall in from every partition task, sorts them (an LSD radix sort
//!    on the keys, stable, so positions stay in order among equal keys) and keeps its ranks.
//!    Buckets straddling an output boundary are sorted by both neighbours (about 1/16 extra).
//!
//! Memory: the partition tasks hold 8 bytes per element (the key; 16 with the position for
//! `argsort`). With a budget
//! ([`SortOptions::memory`]) smaller than that, the output blocks are cut into `G` groups of
//! consecutive blocks; the bucket sizes are counted first (one pass), then each group runs its
//! own partition pass, keeping only its buckets and reading the input again (each block
//! computed inside its partition task, not kept from an earlier pass), and a group starts only
//! when the previous one has written its output blocks. Peak memory is about the budget plus
//! the blocks in flight; the input is read `G + 2` times (sample, counts, one per group), or
//! twice when it fits (sample, partition).
//!
//! Costs for `m` input and `m'` output blocks: `1 + G·m + m' + tree` tasks (`+ m` counting
//! tasks with groups); bytes moved: the sample, `8·n` bytes of pieces (`16·n` for `argsort`),
//! `8·n` of output.
//!
//! `partition` of long lanes returns the sorted lane (a valid partition: NumPy only promises
//! the order around each `kth`); short lanes are partitioned by selection. `sort` rebuilds the
//! values from their keys, so `-0.0` comes back as `0.0` and NaN payloads are not kept
//! (`argsort` is exact).

use super::SortKey;
use super::quantile::LANE_BYTES;
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::expr::lower::reread;
use crate::ops::reduce::{Merge, combine_levels};
use crate::plan::chunks::AxisChunks;
use crate::plan::index::NormSlice;
use crate::{
    BlockArray, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, DEFAULT_FANIN, Element, Error, Result,
    concatenate, stack,
};
use dag_core::{BlockIndex, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// The default memory budget of an out-of-core sort's partition pass: 4 GiB of keys (8 bytes
/// per element; 16 with positions, for `argsort`).
pub const SORT_MEMORY: usize = 4 << 30;

/// Buckets per output block.
const OVERSAMPLE: usize = 16;

/// Sample elements per bucket.
const SAMPLES_PER_BUCKET: usize = 32;

/// Options of [`BlockArray::sort_with`] and [`BlockArray::argsort_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortOptions {
    /// Bytes the partition tasks of one pass may hold together (8 per element for `sort`, 16
    /// for `argsort`); a larger lane is sorted in groups, reading its input once per group.
    pub memory: usize,
}

impl Default for SortOptions {
    fn default() -> SortOptions {
        SortOptions {
            memory: SORT_MEMORY,
        }
    }
}

/// What a sort produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Values,
    Positions,
}

/// Bits per radix digit.
const RADIX: u32 = 11;

/// LSD radix sort of a slice by `key`, 11 bits at a time, with `buf` as scratch: stable; the
/// six digit histograms come from one read, and digits where every key agrees are skipped.
fn radix_sort_by<E: Copy + Default>(v: &mut [E], buf: &mut Vec<E>, key: impl Fn(&E) -> u64) {
    const DIGITS: usize = 64usize.div_ceil(RADIX as usize);
    const SIZE: usize = 1 << RADIX;
    const MASK: u64 = (1 << RADIX) - 1;
    if v.len() < 512 {
        v.sort_by_key(&key);
        return;
    }
    let mut hist = vec![[0usize; SIZE]; DIGITS];
    for e in v.iter() {
        let k = key(e);
        for (d, h) in hist.iter_mut().enumerate() {
            h[((k >> (RADIX as usize * d)) & MASK) as usize] += 1;
        }
    }
    buf.clear();
    buf.resize(v.len(), E::default());
    // Ping-pong between `v` and `buf`; `in_buf` says where the data is.
    let mut in_buf = false;
    let mut next = vec![0usize; SIZE];
    for (d, h) in hist.iter().enumerate() {
        if h.contains(&v.len()) {
            continue;
        }
        let mut at = 0;
        for (slot, &c) in next.iter_mut().zip(h.iter()) {
            *slot = at;
            at += c;
        }
        let shift = RADIX as usize * d;
        let (from, to): (&[E], &mut [E]) = if in_buf {
            (&buf[..], &mut *v)
        } else {
            (&*v, &mut buf[..])
        };
        for e in from {
            let b = ((key(e) >> shift) & MASK) as usize;
            to[next[b]] = *e;
            next[b] += 1;
        }
        in_buf = !in_buf;
    }
    if in_buf {
        v.copy_from_slice(buf);
    }
}

/// The bucket boundaries: `B - 1` splitters in `(key, position)` order, and a table over the
/// splitters' key range (at most 65536 slots of `2^shift` keys) giving the splitters in each
/// slot, so that most lookups compare with one or two splitters.
struct Splitters {
    keys: Vec<(u64, u64)>,
    base: u64,
    shift: u32,
    /// `first[s]`: the splitters in slots before `s` (slot 0: keys below the first splitter's;
    /// slots past the table: keys above the last's).
    first: Vec<u32>,
}

impl Splitters {
    fn new(keys: Vec<(u64, u64)>) -> Splitters {
        let base = keys.first().map_or(0, |k| k.0);
        let width = keys.last().map_or(0, |k| k.0) - base;
        let shift = (64 - width.leading_zeros()).saturating_sub(16);
        let slots = (width >> shift) as usize + 1;
        let mut first = vec![0u32; slots + 3];
        for k in &keys {
            first[Self::slot_of(k.0, base, shift, slots) + 1] += 1;
        }
        for s in 1..first.len() {
            first[s] += first[s - 1];
        }
        Splitters {
            keys,
            base,
            shift,
            first,
        }
    }

    #[inline]
    fn slot_of(key: u64, base: u64, shift: u32, slots: usize) -> usize {
        if key < base {
            0
        } else {
            (((key - base) >> shift) as usize + 1).min(slots + 1)
        }
    }

    fn buckets(&self) -> usize {
        self.keys.len() + 1
    }

    /// The bucket of `(key, position)`: the number of splitters below it.
    #[inline(always)]
    fn bucket(&self, key: u64, pos: u64) -> usize {
        let s = Self::slot_of(key, self.base, self.shift, self.first.len() - 3);
        let (a, b) = (self.first[s] as usize, self.first[s + 1] as usize);
        if b - a > 8 {
            // Many splitters share the slot (equal or clustered keys).
            return a + self.keys[a..b].partition_point(|k| *k < (key, pos));
        }
        let mut i = a;
        while i < b && self.keys[i] < (key, pos) {
            i += 1;
        }
        i
    }
}

/// The pieces of one input block: its keys (and, for positions, their positions) in bucket
/// order, for the buckets `lo..hi`.
struct Pieces {
    keys: Vec<u64>,
    /// Empty unless positions are wanted.
    pos: Vec<u64>,
    lo: usize,
    /// `offsets[b - lo] .. offsets[b - lo + 1]` is bucket `b`.
    offsets: Vec<usize>,
    /// Every bucket's size in this block (the first pass of a fitting sort counts here).
    counts: Vec<u64>,
}

/// Register the sort's intermediate values with [`dag_core::wire`] (distributed runs).
pub(crate) fn register_wire() {
    use crate::expr::wire::{get_vec, put_vec};
    use dag_core::wire::{put_u64, register};
    register::<Splitters>(
        |s, out| {
            let flat: Vec<u64> = s.keys.iter().flat_map(|&(a, b)| [a, b]).collect();
            put_vec(&flat, out);
        },
        |r| {
            let flat: Vec<u64> = get_vec(r)?;
            if !flat.len().is_multiple_of(2) {
                return Err("splitters come in (key, position) pairs".into());
            }
            Ok(Splitters::new(
                flat.chunks(2).map(|p| (p[0], p[1])).collect(),
            ))
        },
    );
    register::<Pieces>(
        |p, out| {
            put_vec(&p.keys, out);
            put_vec(&p.pos, out);
            put_u64(out, p.lo as u64);
            let offsets: Vec<u64> = p.offsets.iter().map(|&o| o as u64).collect();
            put_vec(&offsets, out);
            put_vec(&p.counts, out);
        },
        |r| {
            let keys: Vec<u64> = get_vec(r)?;
            let pos = get_vec(r)?;
            let lo = r.usize()?;
            let offsets: Vec<u64> = get_vec(r)?;
            let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
            if offsets.iter().any(|&o| o > keys.len()) {
                return Err("a piece's bucket offsets point past its keys".into());
            }
            Ok(Pieces {
                keys,
                pos,
                lo,
                offsets,
                counts: get_vec(r)?,
            })
        },
    );
    register::<Layout>(
        |l, out| put_vec(&l.starts, out),
        |r| {
            Ok(Layout {
                starts: get_vec(r)?,
            })
        },
    );
    register::<()>(|_, _| {}, |_| Ok(()));
}

/// The first rank of every bucket (`B + 1` values).
struct Layout {
    starts: Vec<u64>,
}

/// The keys of one block counted per bucket, and (for buckets `keep`) laid out by bucket, with
/// their positions when `positions`.
fn partition_block<T: SortKey>(
    block: &ArrayD<T>,
    offset: u64,
    split: &Splitters,
    keep: Option<std::ops::Range<usize>>,
    positions: bool,
) -> Pieces {
    let nb = split.buckets();
    let mut counts = vec![0u64; nb];
    let owned;
    let data: &[T] = match block.as_slice() {
        Some(s) => s,
        None => {
            owned = block.iter().copied().collect::<Vec<T>>();
            &owned
        }
    };
    let keys: Vec<u64> = data.iter().map(|&x| x.key()).collect();
    let buckets: Vec<u32> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let b = split.bucket(k, offset + i as u64);
            counts[b] += 1;
            b as u32
        })
        .collect();
    let keep = keep.unwrap_or(0..nb);
    let mut offsets = Vec::with_capacity(keep.len() + 1);
    let mut at = 0usize;
    for b in keep.clone() {
        offsets.push(at);
        at += counts[b] as usize;
    }
    offsets.push(at);
    let mut next = offsets.clone();
    let mut out_keys = vec![0u64; at];
    let mut out_pos = if positions {
        vec![0u64; at]
    } else {
        Vec::new()
    };
    for (i, (&k, &b)) in keys.iter().zip(&buckets).enumerate() {
        let b = b as usize;
        if keep.contains(&b) {
            let slot = &mut next[b - keep.start];
            out_keys[*slot] = k;
            if positions {
                out_pos[*slot] = offset + i as u64;
            }
            *slot += 1;
        }
    }
    Pieces {
        keys: out_keys,
        pos: out_pos,
        lo: keep.start,
        offsets,
        counts,
    }
}

/// Bucket sizes merged up a tree.
struct CountMerge;

impl Merge for CountMerge {
    type Partial = Vec<u64>;
    fn merge_partials(&self, a: &Vec<u64>, b: &Vec<u64>) -> Vec<u64> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }
    fn partial_bytes(p: &Vec<u64>) -> usize {
        p.len() * 8
    }
}

/// The sorted sample, cut into splitters: one task reading every sample block.
struct SplitNode<T> {
    meta: Meta,
    sample: Arc<dyn Node>,
    step: usize,
    buckets: usize,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for SplitNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.sample.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, _index: &[usize]) -> BlockTask {
        let nb = self.sample.meta().chunks.nblocks();
        let (step, buckets) = (self.step as u64, self.buckets);
        BlockTask {
            deps: (0..nb)
                .map(|b| (0, BlockIndex::from_vec(vec![b])))
                .collect(),
            func: Arc::new(move |v: &[Value]| {
                let mut sample: Vec<(u64, u64)> = Vec::new();
                for b in v {
                    for &x in block_ref::<T>(b)? {
                        let k = sample.len() as u64;
                        sample.push((x.key(), k * step));
                    }
                }
                sample.sort_unstable();
                let s = sample.len();
                let keys: Vec<(u64, u64)> = (1..buckets)
                    .filter_map(|k| sample.get(k * s / buckets).copied())
                    .collect();
                let mut keys = keys;
                keys.dedup();
                Ok(Value::with_nbytes(Splitters::new(keys), 8 * 65537))
            }),
        }
    }
}

/// Per input block: its pieces, for every bucket (one group) or a group's buckets.
struct PartNode<T> {
    meta: Meta,
    /// The input, the splitters, the layout (groups) and the previous group's barrier.
    input: Arc<dyn Node>,
    split: Arc<dyn Node>,
    layout: Option<Arc<dyn Node>>,
    barrier: Option<Arc<dyn Node>>,
    /// The group's ranks.
    ranks: std::ops::Range<u64>,
    /// Whether positions are kept with the keys.
    positions: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for PartNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        let mut v = vec![self.input.clone(), self.split.clone()];
        v.extend(self.layout.clone());
        v.extend(self.barrier.clone());
        v
    }
    fn blockwise(&self) -> bool {
        // One block of each input: the input's task (a re-read, with groups) runs inside this
        // one, so a group's blocks are read only when its partition runs.
        true
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let offset = self.input.meta().chunks.block_start(index)[0] as u64;
        let mut deps = vec![
            (0, BlockIndex::from_slice(index)),
            (1, BlockIndex::from_vec(vec![0])),
        ];
        if self.layout.is_some() {
            deps.push((2, BlockIndex::from_vec(vec![0])));
        }
        if self.barrier.is_some() {
            deps.push((deps.len(), BlockIndex::from_vec(vec![0])));
        }
        let grouped = self.layout.is_some();
        let ranks = self.ranks.clone();
        let positions = self.positions;
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let block = block_ref::<T>(&v[0])?;
                let split = v[1].get::<Splitters>()?;
                let keep = if grouped {
                    let layout = v[2].get::<Layout>()?;
                    Some(bucket_range(&layout.starts, &ranks))
                } else {
                    None
                };
                let p = partition_block(block, offset, split, keep, positions);
                let n = (p.keys.len() + p.pos.len() + p.counts.len()) * 8;
                Ok(Value::with_nbytes(p, n))
            }),
        }
    }
}

/// The buckets whose ranks meet `ranks` (`starts`: every bucket's first rank, then the total).
fn bucket_range(starts: &[u64], ranks: &std::ops::Range<u64>) -> std::ops::Range<usize> {
    let nb = starts.len() - 1;
    // The first bucket ending after the first rank, the first starting at or after the end.
    let lo = starts[1..].partition_point(|&e| e <= ranks.start).min(nb);
    let hi = starts[..nb].partition_point(|&s| s < ranks.end).max(lo);
    lo..hi
}

/// Per input block: its bucket sizes (from its pieces, or by counting the block).
struct CountNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    split: Option<Arc<dyn Node>>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for CountNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        let mut v = vec![self.input.clone()];
        v.extend(self.split.clone());
        v
    }
    fn blockwise(&self) -> bool {
        // One block of each input (see `PartNode`).
        true
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let offset = self.input.meta().chunks.block_start(index)[0] as u64;
        let mut deps = vec![(0, BlockIndex::from_slice(index))];
        let counting = self.split.is_some();
        if counting {
            deps.push((1, BlockIndex::from_vec(vec![0])));
        }
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let counts = if counting {
                    let block = block_ref::<T>(&v[0])?;
                    let split = v[1].get::<Splitters>()?;
                    let mut counts = vec![0u64; split.buckets()];
                    for (i, &x) in block.iter().enumerate() {
                        counts[split.bucket(x.key(), offset + i as u64)] += 1;
                    }
                    counts
                } else {
                    v[0].get::<Pieces>()?.counts.clone()
                };
                let n = counts.len() * 8;
                Ok(Value::with_nbytes(counts, n))
            }),
        }
    }
}

/// The merged bucket sizes as first ranks.
struct LayoutNode {
    meta: Meta,
    counts: Arc<dyn Node>,
}

impl Node for LayoutNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.counts.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(|v: &[Value]| {
                let counts = v[0].get::<Vec<u64>>()?;
                let mut starts = Vec::with_capacity(counts.len() + 1);
                let mut at = 0;
                starts.push(0);
                for c in counts {
                    at += c;
                    starts.push(at);
                }
                let n = starts.len() * 8;
                Ok(Value::with_nbytes(Layout { starts }, n))
            }),
        }
    }
}

/// The output blocks of one group: each gathers its buckets from the group's pieces.
struct OutNode<T> {
    meta: Meta,
    layout: Arc<dyn Node>,
    parts: Arc<dyn Node>,
    /// The first rank of the group.
    first: u64,
    want: Want,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for OutNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.layout.clone(), self.parts.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let r = self.meta.chunks.block_range(0, index[0]);
        let ranks = self.first + r.start as u64..self.first + r.end as u64;
        let m = self.parts.meta().chunks.nblocks();
        let mut deps = vec![(0, BlockIndex::from_vec(vec![0]))];
        deps.extend((0..m).map(|i| (1, BlockIndex::from_vec(vec![i]))));
        let want = self.want;
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let layout = v[0].get::<Layout>()?;
                let buckets = bucket_range(&layout.starts, &ranks);
                let base = layout.starts[buckets.start];
                let lo = (ranks.start - base) as usize;
                let hi = (ranks.end - base) as usize;
                let mut total = 0;
                let mut pieces: Vec<(&Pieces, std::ops::Range<usize>)> = Vec::new();
                for b in buckets.clone() {
                    for part in &v[1..] {
                        let p = part.get::<Pieces>()?;
                        let k = b.checked_sub(p.lo).ok_or("internal: bucket not kept")?;
                        let range = p.offsets[k]..p.offsets[k + 1];
                        total += range.len();
                        pieces.push((p, range));
                    }
                }
                let outside = "internal: output ranks outside the buckets";
                // Buckets are in order: sorting each on its own (in cache) sorts them all.
                let per_bucket = v.len() - 1;
                Ok(match want {
                    Want::Values => {
                        let mut keys: Vec<u64> = Vec::with_capacity(total);
                        let mut buf = Vec::new();
                        for chunk in pieces.chunks(per_bucket) {
                            let start = keys.len();
                            for (p, r) in chunk {
                                keys.extend_from_slice(&p.keys[r.clone()]);
                            }
                            radix_sort_by(&mut keys[start..], &mut buf, |&k| k);
                        }
                        let mine = keys.get(lo..hi).ok_or(outside)?;
                        let vals: Vec<T> = mine.iter().map(|&k| T::from_key(k)).collect();
                        block_value(ArrayD::from_shape_vec(IxDyn(&[vals.len()]), vals)?)
                    }
                    Want::Positions => {
                        let mut pairs: Vec<(u64, u64)> = Vec::with_capacity(total);
                        let mut buf = Vec::new();
                        for chunk in pieces.chunks(per_bucket) {
                            let start = pairs.len();
                            for (p, r) in chunk {
                                pairs.extend(
                                    p.keys[r.clone()]
                                        .iter()
                                        .copied()
                                        .zip(p.pos[r.clone()].iter().copied()),
                                );
                            }
                            radix_sort_by(&mut pairs[start..], &mut buf, |p| p.0);
                        }
                        let mine = pairs.get(lo..hi).ok_or(outside)?;
                        let pos: Vec<i64> = mine.iter().map(|p| p.1 as i64).collect();
                        block_value(ArrayD::from_shape_vec(IxDyn(&[pos.len()]), pos)?)
                    }
                })
            }),
        }
    }
}

/// `()` once an output block is done: what the barrier waits for, so that the output blocks
/// themselves are not held until the whole group is done.
struct DoneNode {
    meta: Meta,
    out: Arc<dyn Node>,
}

impl Node for DoneNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.out.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(|_: &[Value]| Ok(Value::with_nbytes((), 0))),
        }
    }
}

/// Done when every output block of a group is: the next group's partition waits for it.
struct BarrierNode {
    meta: Meta,
    out: Arc<dyn Node>,
}

impl Node for BarrierNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.out.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, _index: &[usize]) -> BlockTask {
        let nb = self.out.meta().chunks.nblocks();
        BlockTask {
            deps: (0..nb)
                .map(|b| (0, BlockIndex::from_vec(vec![b])))
                .collect(),
            func: Arc::new(|_: &[Value]| Ok(Value::with_nbytes((), 0))),
        }
    }
}

/// The sorted values or positions of a 1-d lane, by the sample sort (see the module notes).
fn sample_sort<T: SortKey, U: Element>(
    x: &BlockArray<T>,
    want: Want,
    memory: usize,
) -> Result<BlockArray<U>> {
    let n = x.len();
    let out_chunks = x.chunks().axis(0).to_vec();
    let m_out = out_chunks.len();
    let buckets = (m_out * OVERSAMPLE).clamp(1, 1 << 20);
    let mut t = token_of(&[&x.node]);
    // What the partition keeps depends on the output wanted (positions or not).
    t.write_str("sample-sort")
        .write_usize(memory)
        .write_u64(u64::from(want == Want::Positions));
    // Pieces hold 8 bytes per element (keys), 16 with positions.
    let per_elem = match want {
        Want::Values => 8,
        Want::Positions => 16,
    };
    let bytes = n.saturating_mul(per_elem);
    let groups = bytes.div_ceil(memory.max(1)).clamp(1, m_out);
    let grouped = groups > 1;
    // 1. Splitters from a strided sample.
    let target = (buckets * SAMPLES_PER_BUCKET).max(1024);
    let step = (n / target).max(1);
    // A source absorbs the strided slice (reading only the sample); otherwise the slice's tasks
    // read the input's blocks, whose only other consumers are the partition tasks without
    // groups (with groups, those read the input again).
    let sample = crate::ops::slicing::slice_node(
        &x.node,
        &[NormSlice {
            start: 0,
            len: n.div_ceil(step),
            step: step as isize,
        }],
    )?;
    let one = Chunks::from_blocks(vec![vec![1]])?;
    let mut ts = t.clone();
    ts.write_usize(step).write_usize(buckets);
    let split: Arc<dyn Node> = Arc::new(SplitNode::<T> {
        meta: Meta::new::<i64>("sort-splitters", ts, one.clone()),
        sample,
        step,
        buckets,
        _type: std::marker::PhantomData,
    });
    let per_block = Chunks::from_blocks(vec![vec![1; x.numblocks()[0]]])?;
    let layout_from = |counts: Arc<dyn Node>, tag: &str| -> Result<Arc<dyn Node>> {
        let mut tc = t.clone();
        tc.write_str(tag);
        let merged = combine_levels::<i64, _>(
            counts,
            &[0],
            DEFAULT_FANIN,
            &Arc::new(CountMerge),
            "sort-counts",
            &tc,
        )?;
        Ok(Arc::new(LayoutNode {
            meta: Meta::new::<i64>("sort-layout", tc, one.clone()),
            counts: merged,
        }))
    };
    // Group boundaries, in output blocks.
    let bounds: Vec<usize> = (0..=groups).map(|g| g * m_out / groups).collect();
    let offsets = crate::plan::chunks::prefix_offsets(&out_chunks);
    let mut outs: Vec<BlockArray<U>> = Vec::with_capacity(groups);
    let mut barrier: Option<Arc<dyn Node>> = None;
    let counted: Option<Arc<dyn Node>> = if grouped {
        let mut tc = t.clone();
        tc.write_str("count");
        let counts: Arc<dyn Node> = Arc::new(CountNode::<T> {
            meta: Meta::new::<i64>("sort-count", tc, per_block.clone()),
            input: reread(&x.node, 1),
            split: Some(split.clone()),
            _type: std::marker::PhantomData,
        });
        Some(layout_from(counts, "counted")?)
    } else {
        None
    };
    for g in 0..groups {
        let ranks = offsets[bounds[g]] as u64..offsets[bounds[g + 1]] as u64;
        let mut tg = t.clone();
        tg.write_usize(g)
            .write_u64(ranks.start)
            .write_u64(ranks.end);
        let input = if grouped {
            reread(&x.node, 2 + g as u64)
        } else {
            x.node.clone()
        };
        let parts: Arc<dyn Node> = Arc::new(PartNode::<T> {
            meta: Meta::new::<i64>("sort-partition", tg.clone(), per_block.clone()),
            input,
            split: split.clone(),
            layout: counted.clone(),
            barrier: barrier.clone(),
            ranks: ranks.clone(),
            positions: want == Want::Positions,
            _type: std::marker::PhantomData,
        });
        let layout = match &counted {
            Some(l) => l.clone(),
            None => {
                let counts: Arc<dyn Node> = Arc::new(CountNode::<T> {
                    meta: Meta::new::<i64>("sort-count", tg.clone(), per_block.clone()),
                    input: parts.clone(),
                    split: None,
                    _type: std::marker::PhantomData,
                });
                layout_from(counts, "pieces")?
            }
        };
        let mut to = tg.clone();
        to.write_u64(match want {
            Want::Values => 0,
            Want::Positions => 1,
        });
        let out: Arc<dyn Node> = Arc::new(OutNode::<T> {
            meta: Meta::new::<U>(
                match want {
                    Want::Values => "sort",
                    Want::Positions => "argsort",
                },
                to.clone(),
                Chunks::from_blocks(vec![out_chunks[bounds[g]..bounds[g + 1]].to_vec()])?,
            ),
            layout,
            parts,
            first: ranks.start,
            want,
            _type: std::marker::PhantomData,
        });
        if grouped && g + 1 < groups {
            let done: Arc<dyn Node> = Arc::new(DoneNode {
                meta: out
                    .meta()
                    .derive("sort-done", to.clone(), out.meta().chunks.clone()),
                out: out.clone(),
            });
            barrier = Some(Arc::new(BarrierNode {
                meta: Meta::new::<i64>("sort-barrier", to, one.clone()),
                out: done,
            }));
        }
        outs.push(BlockArray::wrap(out));
    }
    if outs.len() == 1 {
        return Ok(outs.remove(0));
    }
    let refs: Vec<&BlockArray<U>> = outs.iter().collect();
    concatenate(&refs, 0)
}

/// Sorts, argsorts or partitions each lane of a block whose axis is whole.
struct LaneSortNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    axis: usize,
    want: Want,
    /// For a partition: the ranks to put in place (sorted); empty: a full sort.
    kth: Vec<usize>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for LaneSortNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let (axis, want, kth) = (self.axis, self.want, self.kth.clone());
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                let block = block_ref::<T>(&v[0])?;
                let len = block.shape()[axis];
                let outer: Vec<usize> = (0..block.ndim())
                    .filter(|&a| a != axis)
                    .map(|a| block.shape()[a])
                    .collect();
                let lanes = super::axis_last(block, axis);
                let data = lanes.as_slice().ok_or("lanes are contiguous")?;
                // An empty block's lanes may still be long: reserve only for lanes that exist.
                let mut pairs: Vec<(u64, u64)> =
                    Vec::with_capacity(if data.is_empty() { 0 } else { len });
                let mut scratch = Vec::new();
                let mut vals: Vec<T> = Vec::new();
                let mut pos: Vec<i64> = Vec::new();
                for lane in data.chunks_exact(len.max(1)) {
                    if len == 0 {
                        break;
                    }
                    pairs.clear();
                    pairs.extend(lane.iter().enumerate().map(|(i, &x)| (x.key(), i as u64)));
                    if kth.is_empty() {
                        radix_sort_by(&mut pairs, &mut scratch, |p| p.0);
                    } else {
                        let mut from = 0;
                        for &k in &kth {
                            pairs[from..].select_nth_unstable(k - from);
                            from = k + 1;
                        }
                    }
                    match want {
                        Want::Values => vals.extend(pairs.iter().map(|p| lane[p.1 as usize])),
                        Want::Positions => pos.extend(pairs.iter().map(|p| p.1 as i64)),
                    }
                }
                Ok(match want {
                    Want::Values => block_value(super::axis_back(vals, &outer, len, axis)),
                    Want::Positions => block_value(super::axis_back(pos, &outer, len, axis)),
                })
            }),
        }
    }
}

fn sort_impl<T: SortKey, U: Element>(
    x: &BlockArray<T>,
    axis: usize,
    want: Want,
    kth: &[isize],
    memory: usize,
    op: &str,
) -> Result<BlockArray<U>> {
    x.chunks().require_known("sort")?;
    sort_bounded(x, axis, want, kth, memory, op, LANE_BYTES)
}

/// [`sort_impl`] with lanes longer than `lane_bytes` sorted by the sample sort.
fn sort_bounded<T: SortKey, U: Element>(
    x: &BlockArray<T>,
    axis: usize,
    want: Want,
    kth: &[isize],
    memory: usize,
    op: &str,
    lane_bytes: usize,
) -> Result<BlockArray<U>> {
    x.check_axis(axis)?;
    let shape = x.shape().to_vec();
    let len = shape[axis];
    let mut ks: Vec<usize> = kth
        .iter()
        .map(|&k| {
            let n = len as isize;
            let kk = if k < 0 { k + n } else { k };
            if kk < 0 || kk >= n {
                Err(Error::index(format!(
                    "{op}: kth {k} is out of bounds for axis {axis} of length {len}"
                )))
            } else {
                Ok(kk as usize)
            }
        })
        .collect::<Result<_>>()?;
    ks.sort_unstable();
    ks.dedup();
    // Lanes of an empty array are sorted whatever their length: short ones, in no task.
    if len.saturating_mul(T::itemsize()) <= lane_bytes || shape.contains(&0) {
        let mut want_chunks: Vec<Vec<usize>> = x.chunks().axes().to_vec();
        want_chunks[axis] = vec![len];
        let others: usize = (0..x.ndim())
            .filter(|&a| a != axis)
            .map(|a| want_chunks[a].iter().copied().max().unwrap_or(0))
            .product();
        if others.saturating_mul(len).saturating_mul(16)
            > DEFAULT_CHUNK_BYTES.max(len.saturating_mul(16))
        {
            let spec: Vec<AxisChunks> = (0..x.ndim())
                .map(|a| {
                    if a == axis {
                        AxisChunks::Full
                    } else {
                        AxisChunks::Auto
                    }
                })
                .collect();
            want_chunks = Chunks::new(&shape, ChunkSpec::PerAxis(spec), 16)?.into_axes();
        }
        let input = x.rechunk(want_chunks)?;
        let mut t = token_of(&[&input.node]);
        t.write_str(op).write_usize(axis).write(ks.as_slice());
        let node = LaneSortNode::<T> {
            meta: Meta::new::<U>(op, t, input.chunks().clone()),
            input: input.node.clone(),
            axis,
            want,
            kth: ks,
            _type: std::marker::PhantomData,
        };
        return Ok(BlockArray::wrap(Arc::new(node)));
    }
    // Long lanes: a sample sort per lane (a partition is the sorted lane).
    let kept: Vec<usize> = (0..x.ndim()).filter(|&a| a != axis).collect();
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    super::check_lane_graphs(op, &kept_shape, x.numblocks()[axis])?;
    let mut lanes = Vec::new();
    for pos in crate::plan::chunks::BlockIndices::new(kept_shape.clone()) {
        let slices: Vec<NormSlice> = (0..x.ndim())
            .map(|a| match kept.iter().position(|&k| k == a) {
                Some(i) => NormSlice {
                    start: pos[i],
                    len: 1,
                    step: 1,
                },
                None => NormSlice::full(shape[a]),
            })
            .collect();
        let sub = BlockArray::<T>::wrap(crate::ops::slicing::slice_node(&x.node, &slices)?);
        let lane = if x.ndim() == 1 {
            sub
        } else {
            sub.squeeze(Some(&kept))?
        };
        lanes.push(sample_sort::<T, U>(&lane, want, memory)?);
    }
    if x.ndim() == 1 {
        return Ok(lanes.remove(0));
    }
    let refs: Vec<&BlockArray<U>> = lanes.iter().collect();
    let stacked = stack(&refs, 0)?;
    let mut full = kept_shape;
    full.push(len);
    stacked.reshape(&full)?.moveaxis(x.ndim() - 1, axis)
}

impl<T: SortKey> BlockArray<T> {
    /// The array sorted along `axis` (`numpy.sort`; NaN last). Out of core: long lanes are
    /// sorted by a sample sort whose partition pass keeps to [`SORT_MEMORY`] (see
    /// [`sort_with`](Self::sort_with) and the module notes); the result keeps the input's
    /// chunks along the axis.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![[3.0, f64::NAN, 1.0], [2.0, 5.0, -1.0]], [1, 2])?;
    /// let s = x.sort(1)?.compute()?;
    /// assert_eq!((s[[1, 0]], s[[1, 1]], s[[1, 2]]), (-1.0, 2.0, 5.0));
    /// assert!(s[[0, 2]].is_nan());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn sort(&self, axis: usize) -> Result<BlockArray<T>> {
        self.sort_with(axis, &SortOptions::default())
    }

    /// [`sort`](Self::sort) with a memory budget for the partition pass: with less than 8
    /// bytes per element, long lanes are sorted in groups that read the input again.
    ///
    /// ```
    /// use blockarray::{BlockArray, SortOptions};
    /// let x = BlockArray::arange(0i64, 1000, 1, 100)?.map("scramble", |v| (v * 7919) % 1000);
    /// let s = x.sort_with(0, &SortOptions { memory: 1 << 30 })?;
    /// assert_eq!(s.compute()?, BlockArray::arange(0i64, 1000, 1, 100)?.compute()?);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn sort_with(&self, axis: usize, options: &SortOptions) -> Result<BlockArray<T>> {
        sort_impl::<T, T>(self, axis, Want::Values, &[], options.memory, "sort")
    }

    /// The positions that sort each lane along `axis` (`numpy.argsort(kind="stable")`): equal
    /// values keep their order, NaN last. Always stable.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![2, 1, 2, 0, 1], 2)?;
    /// assert_eq!(x.argsort(0)?.compute()?.into_raw_vec_and_offset().0, vec![3, 1, 4, 0, 2]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn argsort(&self, axis: usize) -> Result<BlockArray<i64>> {
        self.argsort_with(axis, &SortOptions::default())
    }

    /// [`argsort`](Self::argsort) with a memory budget for the partition pass (16 bytes per
    /// element).
    ///
    /// ```
    /// use blockarray::{BlockArray, SortOptions};
    /// let x = BlockArray::from_array(ndarray::array![3.0, 1.0, 2.0], 2)?;
    /// let i = x.argsort_with(0, &SortOptions::default())?.compute()?;
    /// assert_eq!(i.into_raw_vec_and_offset().0, vec![1, 2, 0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn argsort_with(&self, axis: usize, options: &SortOptions) -> Result<BlockArray<i64>> {
        sort_impl::<T, i64>(self, axis, Want::Positions, &[], options.memory, "argsort")
    }

    /// The array rearranged along `axis` so that the element at each position in `kth` is
    /// where a sort would put it, smaller (or equal) elements before it and larger after
    /// (`numpy.partition`; negative `kth` count from the end). Long lanes come back sorted,
    /// which satisfies this.
    ///
    /// # Errors
    /// A `kth` out of bounds (naming it and the axis length), a bad axis.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![7, 1, 5, 3, 9, 2], 4)?;
    /// let p = x.partition(&[2], 0)?.compute()?;
    /// assert_eq!(p[2], 3);
    /// assert!(p.iter().take(2).all(|&v| v <= 3) && p.iter().skip(3).all(|&v| v >= 3));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn partition(&self, kth: &[isize], axis: usize) -> Result<BlockArray<T>> {
        sort_impl::<T, T>(self, axis, Want::Values, kth, SORT_MEMORY, "partition")
    }

    /// The positions [`partition`](Self::partition) moves each element from
    /// (`numpy.argpartition`).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::from_array(ndarray::array![40, 10, 30, 20], 3)?;
    /// let i = x.argpartition(&[-1], 0)?.compute()?;
    /// assert_eq!(i[3], 0); // the largest, 40, was at position 0
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn argpartition(&self, kth: &[isize], axis: usize) -> Result<BlockArray<i64>> {
        sort_impl::<T, i64>(
            self,
            axis,
            Want::Positions,
            kth,
            SORT_MEMORY,
            "argpartition",
        )
    }
}

/// `x` sorted along `axis`; see [`BlockArray::sort`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![2, 3, 1], 2)?;
/// assert_eq!(blockarray::sort(&x, 0)?.compute()?.into_raw_vec_and_offset().0, vec![1, 2, 3]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn sort<T: SortKey>(x: &BlockArray<T>, axis: usize) -> Result<BlockArray<T>> {
    x.sort(axis)
}

/// The stable sorting positions of `x` along `axis`; see [`BlockArray::argsort`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![2, 3, 1], 2)?;
/// assert_eq!(blockarray::argsort(&x, 0)?.compute()?.into_raw_vec_and_offset().0, vec![2, 0, 1]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn argsort<T: SortKey>(x: &BlockArray<T>, axis: usize) -> Result<BlockArray<i64>> {
    x.argsort(axis)
}

/// `x` partitioned along `axis` around the positions `kth` (`numpy.partition`); see
/// [`BlockArray::partition`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![5, 1, 4, 2, 3], 2)?;
/// let p = blockarray::partition(&x, &[0, -1], 0)?.compute()?;
/// assert_eq!((p[0], p[4]), (1, 5));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn partition<T: SortKey>(
    x: &BlockArray<T>,
    kth: &[isize],
    axis: usize,
) -> Result<BlockArray<T>> {
    x.partition(kth, axis)
}

/// The positions [`partition`] moves each element from (`numpy.argpartition`); see
/// [`BlockArray::argpartition`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![5, 1, 4], 2)?;
/// let i = blockarray::argpartition(&x, &[0], 0)?.compute()?;
/// assert_eq!(i[0], 1);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn argpartition<T: SortKey>(
    x: &BlockArray<T>,
    kth: &[isize],
    axis: usize,
) -> Result<BlockArray<i64>> {
    x.argpartition(kth, axis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn numpy_cmp(a: f64, b: f64) -> std::cmp::Ordering {
        a.key().cmp(&b.key())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// The sample sort (forced with a lane bound of 0), with one partition pass or with
        /// groups (a tiny memory budget), and the in-block sort agree with a stable sort of
        /// each lane; partitions put each kth in place.
        #[test]
        fn sorts_match_a_stable_sort(
            rows in 1usize..4, cols in 1usize..60, chunk_r in 1usize..3, chunk_c in 1usize..17,
            seed in any::<u64>(), nan in any::<bool>(), kth in 0usize..60, threaded in any::<bool>(),
        ) {
            let mut i = 0u64;
            let d = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |_| {
                i += 1;
                let z = (seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let z = z ^ (z >> 31);
                if nan && z.is_multiple_of(11) { f64::NAN } else { ((z >> 40) % 9) as f64 - 4.0 }
            });
            let x = BlockArray::from_array(d.clone(), [chunk_r, chunk_c]).unwrap();
            let sched: Box<dyn dag_core::Scheduler> = if threaded {
                Box::new(sched_threaded::ThreadedScheduler::builder().threads(2).build().unwrap())
            } else {
                Box::new(sched_sync::SyncScheduler::new())
            };
            let kth = kth % cols;
            for (bound, memory) in [(LANE_BYTES, SORT_MEMORY), (0, SORT_MEMORY), (0, 16 * 7)] {
                let s: ArrayD<f64> = sort_bounded(&x, 1, Want::Values, &[], memory, "sort", bound)
                    .unwrap().compute_with(&*sched).unwrap();
                let a: ArrayD<i64> = sort_bounded(&x, 1, Want::Positions, &[], memory, "argsort", bound)
                    .unwrap().compute_with(&*sched).unwrap();
                let p: ArrayD<f64> = sort_bounded(&x, 1, Want::Values, &[kth as isize], memory, "partition", bound)
                    .unwrap().compute_with(&*sched).unwrap();
                for r in 0..rows {
                    let lane: Vec<f64> = d.index_axis(ndarray::Axis(0), r).iter().copied().collect::<Vec<_>>();
                    let mut order: Vec<usize> = (0..cols).collect();
                    order.sort_by(|&i, &j| numpy_cmp(lane[i], lane[j]));
                    let want_pos: Vec<i64> = order.iter().map(|&i| i as i64).collect();
                    let got_pos = a.index_axis(ndarray::Axis(0), r).iter().copied().collect::<Vec<_>>();
                    prop_assert_eq!(&got_pos, &want_pos, "bound {} memory {}", bound, memory);
                    let got = s.index_axis(ndarray::Axis(0), r).iter().copied().collect::<Vec<_>>();
                    for (g, &o) in got.iter().zip(&order) {
                        let w = lane[o];
                        prop_assert!((g.is_nan() && w.is_nan()) || *g == w);
                    }
                    let part = p.index_axis(ndarray::Axis(0), r).iter().copied().collect::<Vec<_>>();
                    let at = lane[order[kth]];
                    prop_assert!((part[kth].is_nan() && at.is_nan()) || part[kth] == at);
                    prop_assert!(part[..kth].iter().all(|&v| numpy_cmp(v, at).is_le()));
                    prop_assert!(part[kth + 1..].iter().all(|&v| numpy_cmp(v, at).is_ge()));
                }
            }
        }
    }

    #[test]
    fn sort_and_argsort_in_one_run_do_not_share_partitions() {
        let x = BlockArray::from_array(
            ndarray::Array1::from_iter((0..500i64).map(|i| (i * 37) % 500)),
            50,
        )
        .unwrap();
        let s: BlockArray<i64> =
            sort_bounded(&x, 0, Want::Values, &[], SORT_MEMORY, "sort", 0).unwrap();
        let a: BlockArray<i64> =
            sort_bounded(&x, 0, Want::Positions, &[], SORT_MEMORY, "argsort", 0).unwrap();
        let mut c = crate::Computation::new();
        let (hs, ha) = (c.add(&s), c.add(&a));
        let mut out = c.run(&sched_sync::SyncScheduler::new()).unwrap();
        let sorted = out.take(hs).unwrap();
        let order = out.take(ha).unwrap();
        let xv = x.compute().unwrap();
        for (k, &i) in order.iter().enumerate() {
            assert_eq!(xv[i as usize], sorted[k]);
        }
    }

    #[test]
    fn groups_wait_for_each_other_and_reread_their_input() {
        let x = BlockArray::arange(0i64, 1000, 1, 100).unwrap();
        let rev = x.slice(crate::s![..;-1]).unwrap();
        // 16 bytes per element, a budget of 4000 bytes: 4 groups.
        let s: BlockArray<i64> = sort_bounded(&rev, 0, Want::Values, &[], 4000, "sort", 0).unwrap();
        let (graph, _) = s.lowered(None).unwrap();
        let text = graph.to_string();
        assert!(text.contains("sort-barrier"), "{text}");
        assert!(text.contains("reread"), "{text}");
        assert_eq!(s.compute().unwrap(), x.compute().unwrap());
    }
}
