//! Exact quantiles: `quantile`, `percentile`, `median` and their NaN-skipping variants, with
//! NumPy's methods (`linear` by default), along any axes, many `q` at once.
//!
//! # Design notes
//!
//! A quantile is a function of one or two order statistics of each lane (the elements the
//! reduced axes span) and NumPy's formula for the method ([`QuantileMethod`]). The order
//! statistics are found exactly, two ways:
//!
//! * **Short lanes** (a lane of at most [`LANE_BYTES`]): the reduced axes are rechunked into
//!   one block (the kept axes cut so that a block stays near 128 MiB) and each lane is selected
//!   in memory (`select_nth_unstable`, once per needed rank): one task per block, no sort.
//! * **Long lanes**: a distributed *radix selection* on [`SortKey`] keys, 16 bits per pass. Pass
//!   1 counts the elements (and NaNs) and builds a histogram of the keys' top 16 bits, as a
//!   tree reduction; its finish step turns each `q` into the ranks it needs and finds the bin
//!   holding each rank. Every later pass looks only at the elements whose key starts with a
//!   target's known bits: a histogram of the next 16 bits, or, once the bin holds at most
//!   [`COLLECT_MAX`] elements, the keys themselves, among which the rank is selected exactly.
//!   A 64-bit key is pinned after at most 4 passes (2 for 32-bit types, 1 for `u8`), whatever
//!   the data; the partials are histograms (512 KiB) or at most `COLLECT_MAX` keys per target,
//!   so memory per task is bounded. A lane of at most [`HOLD_BYTES`] keeps its blocks in memory
//!   between the passes (as any array read by several consumers does); a larger lane is read
//!   again by every pass that still has a target to pin (each block computed inside its pass
//!   task, not kept), so its memory stays bounded too.
//!
//! Costs of the long-lane path, for `B` blocks and `P ≤ 4` passes: `P·B` chunk tasks (each a
//! scan of its block), `P·⌈B/7⌉` combine tasks, `P` finish tasks; bytes moved between tasks:
//! `P·B` histograms of 512 KiB (fewer once targets collect) — independent of the data's size
//! beyond the number of blocks. Float keys' top 16 bits are sign, exponent and 4 mantissa bits,
//! so uniform data in `[0, 1)` puts about 1/32 of the elements in the median's first bin, ~50
//! in its second, which are then collected: 3 useful passes.
//!
//! Results equal NumPy's to the last bit for `f64` (same virtual index, same `_lerp`); `f32`
//! lanes are interpolated in `f64` and rounded to `f32` (NumPy computes in `float32` for a
//! scalar `q` and `float64` for an array of them); integer lanes give `f64`.

use super::SortKey;
use crate::element::Float;
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::reduce::{Merge, combine_levels, norm_axes};
use crate::plan::chunks::AxisChunks;
use crate::plan::index::NormSlice;
use crate::{
    BlockArray, ChunkSpec, Chunks, DEFAULT_CHUNK_BYTES, DEFAULT_FANIN, Error, Result, stack,
};
use dag_core::{BlockIndex, Tokenizer, Value};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;

/// Lanes of at most this many bytes are selected in memory, one block per group of lanes;
/// longer lanes use the distributed radix selection.
pub const LANE_BYTES: usize = 64 << 20;

/// The radix selection keeps a lane's blocks in memory between its passes when the lane is at
/// most this large (4 GiB), and computes each block again in every pass that needs it
/// otherwise, so that a lane larger than memory is selected with bounded memory.
pub const HOLD_BYTES: usize = 4 << 30;

/// A radix-selection target whose current bin holds at most this many elements is finished by
/// collecting them (8 bytes each) rather than by another histogram.
pub const COLLECT_MAX: u64 = 1 << 16;

/// Bits of the key each radix pass resolves.
const DIGIT: u32 = 16;

/// How a quantile between two order statistics is chosen: NumPy's `method` argument (the nine
/// Hyndman–Fan methods and NumPy's four others). Results equal `numpy.quantile`'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum QuantileMethod {
    /// Linear interpolation at virtual index `(n - 1)·q` (NumPy's default; H&F 7).
    #[default]
    Linear,
    /// The order statistic at `floor((n - 1)·q)`.
    Lower,
    /// The order statistic at `ceil((n - 1)·q)`.
    Higher,
    /// The order statistic at `(n - 1)·q` rounded half to even.
    Nearest,
    /// The mean of `lower` and `higher`.
    Midpoint,
    /// H&F 1.
    InvertedCdf,
    /// H&F 2.
    AveragedInvertedCdf,
    /// H&F 3.
    ClosestObservation,
    /// H&F 4.
    InterpolatedInvertedCdf,
    /// H&F 5.
    Hazen,
    /// H&F 6.
    Weibull,
    /// H&F 8.
    MedianUnbiased,
    /// H&F 9.
    NormalUnbiased,
}

impl QuantileMethod {
    fn id(self) -> u64 {
        self as u64
    }
}

/// The `q` of a quantile call: one value (no `q` axis in the result) or several (a leading
/// axis, one entry per value), like NumPy's scalar or array `q`.
#[derive(Clone, Debug, PartialEq)]
pub enum Quantiles {
    /// One value.
    One(f64),
    /// Several values: the result gets a leading axis.
    Many(Vec<f64>),
}

impl From<f64> for Quantiles {
    fn from(q: f64) -> Quantiles {
        Quantiles::One(q)
    }
}

impl From<Vec<f64>> for Quantiles {
    fn from(q: Vec<f64>) -> Quantiles {
        Quantiles::Many(q)
    }
}

impl From<&[f64]> for Quantiles {
    fn from(q: &[f64]) -> Quantiles {
        Quantiles::Many(q.to_vec())
    }
}

impl<const N: usize> From<[f64; N]> for Quantiles {
    fn from(q: [f64; N]) -> Quantiles {
        Quantiles::Many(q.to_vec())
    }
}

impl Quantiles {
    fn values(&self) -> &[f64] {
        match self {
            Quantiles::One(q) => std::slice::from_ref(q),
            Quantiles::Many(v) => v,
        }
    }
}

/// What one quantile of a lane of `n` values is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pick {
    /// One order statistic.
    Element(usize),
    /// NumPy's `_lerp` between two order statistics.
    Lerp { lo: usize, hi: usize, gamma: f64 },
    /// The mean of two order statistics (`median`).
    Mean { lo: usize, hi: usize },
}

impl Pick {
    fn ranks(self) -> [usize; 2] {
        match self {
            Pick::Element(i) => [i, i],
            Pick::Lerp { lo, hi, .. } | Pick::Mean { lo, hi } => [lo, hi],
        }
    }

    /// The quantile from the values at its ranks.
    fn value<Q: Float>(self, at: impl Fn(usize) -> Q) -> Q {
        match self {
            Pick::Element(i) => at(i),
            Pick::Mean { lo, hi } => {
                let (a, b) = (at(lo), at(hi));
                (a + b) / Q::from_f64(2.0)
            }
            Pick::Lerp { lo, hi, gamma } => {
                let (a, b) = (at(lo).as_f64(), at(hi).as_f64());
                let diff = b - a;
                let r = if gamma >= 0.5 {
                    b - diff * (1.0 - gamma)
                } else {
                    a + diff * gamma
                };
                Q::from_f64(r)
            }
        }
    }
}

/// NumPy's order statistics and weight for quantile `q` of `n ≥ 1` values (`median`: `None`).
fn pick(n: usize, q: Option<f64>, method: QuantileMethod) -> Pick {
    let nf = n as f64;
    let last = n - 1;
    let Some(q) = q else {
        return if n % 2 == 1 {
            Pick::Element(n / 2)
        } else {
            Pick::Mean {
                lo: n / 2 - 1,
                hi: n / 2,
            }
        };
    };
    let discrete = |index: f64, take_previous: &dyn Fn(f64, f64) -> bool| {
        let previous = index.floor();
        let gamma = index - previous;
        let i = if take_previous(gamma, index) {
            previous
        } else {
            previous + 1.0
        };
        Pick::Element(i.max(0.0) as usize)
    };
    let hf = |alpha: f64, beta: f64| nf * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    let virtual_index = match method {
        QuantileMethod::Lower => return Pick::Element(((nf - 1.0) * q).floor() as usize),
        QuantileMethod::Higher => return Pick::Element(((nf - 1.0) * q).ceil() as usize),
        QuantileMethod::Nearest => {
            return Pick::Element(((nf - 1.0) * q).round_ties_even() as usize);
        }
        QuantileMethod::InvertedCdf => return discrete(nf * q - 1.0, &|g, _| g == 0.0),
        QuantileMethod::ClosestObservation => {
            return discrete(nf * q - 1.0 - 0.5, &|g, i| {
                g == 0.0 && i.floor().rem_euclid(2.0) == 1.0
            });
        }
        QuantileMethod::Linear => (nf - 1.0) * q,
        QuantileMethod::Midpoint => 0.5 * (((nf - 1.0) * q).floor() + ((nf - 1.0) * q).ceil()),
        QuantileMethod::AveragedInvertedCdf => nf * q - 1.0,
        QuantileMethod::InterpolatedInvertedCdf => hf(0.0, 1.0),
        QuantileMethod::Hazen => hf(0.5, 0.5),
        QuantileMethod::Weibull => hf(0.0, 0.0),
        QuantileMethod::MedianUnbiased => hf(1.0 / 3.0, 1.0 / 3.0),
        QuantileMethod::NormalUnbiased => hf(3.0 / 8.0, 3.0 / 8.0),
    };
    // NumPy's `_get_indexes`: above the last index both neighbours are the last element (and
    // the previous index counts as -1 in gamma); below 0 both are the first.
    let (lo, hi, previous) = if virtual_index >= (last as f64) {
        (last, last, -1.0)
    } else if virtual_index < 0.0 {
        (0, 0, 0.0)
    } else {
        let p = virtual_index.floor();
        (p as usize, p as usize + 1, p)
    };
    let raw = virtual_index - previous;
    let gamma = match method {
        QuantileMethod::Midpoint => {
            if virtual_index % 1.0 == 0.0 {
                0.0
            } else {
                0.5
            }
        }
        QuantileMethod::AveragedInvertedCdf => {
            if raw == 0.0 {
                0.5
            } else {
                1.0
            }
        }
        _ => raw,
    };
    Pick::Lerp { lo, hi, gamma }
}

/// The parameters of one quantile call.
#[derive(Clone, Debug)]
struct Spec {
    /// `None`: the median.
    qs: Vec<Option<f64>>,
    method: QuantileMethod,
    skip_nan: bool,
}

impl Spec {
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_usize(self.qs.len());
        for q in &self.qs {
            match q {
                Some(q) => t.write_u64(1).write_f64(*q),
                None => t.write_u64(0),
            };
        }
        t.write_u64(self.method.id())
            .write_u64(u64::from(self.skip_nan));
    }

    /// The quantiles of a lane from its order statistics (`count` valid values, `nans` NaN).
    fn results<Q: Float>(&self, count: usize, nans: usize, at: impl Fn(usize) -> Q) -> Vec<Q> {
        if count == 0 || (nans > 0 && !self.skip_nan) {
            return vec![<Q as num_traits::Float>::nan(); self.qs.len()];
        }
        self.qs
            .iter()
            .map(|&q| pick(count, q, self.method).value(&at))
            .collect()
    }

    /// The ranks a lane of `count` valid values needs, sorted, without repeats.
    fn ranks(&self, count: usize) -> Vec<usize> {
        let mut r: Vec<usize> = self
            .qs
            .iter()
            .flat_map(|&q| pick(count, q, self.method).ranks())
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// The quantiles of each lane of each block, the reduced axes being whole in every block.
struct InBlockNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    axes: Vec<usize>,
    spec: Arc<Spec>,
    keepdims: bool,
    q_axis: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for InBlockNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nd = self.input.meta().chunks.ndim();
        let in_index: Vec<usize> = if self.keepdims {
            index[usize::from(self.q_axis)..].to_vec()
        } else {
            // The kept axes' block indices, with 0 for the reduced axes (one block each).
            let mut kept = index[usize::from(self.q_axis)..].iter();
            (0..nd)
                .map(|a| {
                    if self.axes.contains(&a) {
                        0
                    } else {
                        *kept.next().expect("one index per kept axis")
                    }
                })
                .collect()
        };
        let out_shape = self.meta.chunks.block_shape(index);
        let (axes, spec) = (self.axes.clone(), self.spec.clone());
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(in_index))],
            func: Arc::new(move |v: &[Value]| {
                let block = block_ref::<T>(&v[0])?;
                // Reduced axes last, flattened: one row per lane, lanes in C order.
                let kept: Vec<usize> = (0..block.ndim()).filter(|a| !axes.contains(a)).collect();
                let perm: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
                let moved = block.view().permuted_axes(IxDyn(&perm));
                let moved = moved.as_standard_layout();
                let data = moved.as_slice().ok_or("lanes are contiguous")?;
                let len: usize = axes.iter().map(|&a| block.shape()[a]).product();
                let lanes = data.len().checked_div(len).unwrap_or(0);
                let nq = spec.qs.len();
                // Results: q major, then lanes.
                let mut out = vec![<T::Quantile as num_traits::Float>::nan(); nq * lanes];
                // An empty block's lanes may still be long: reserve only for lanes that exist.
                let mut buf: Vec<u64> = Vec::with_capacity(if lanes == 0 { 0 } else { len });
                for (l, lane) in data.chunks_exact(len.max(1)).take(lanes).enumerate() {
                    buf.clear();
                    let mut nans = 0;
                    for &x in lane {
                        if x.is_nan_value() {
                            nans += 1;
                        } else {
                            buf.push(x.key());
                        }
                    }
                    let count = buf.len();
                    if !(count == 0 || (nans > 0 && !spec.skip_nan)) {
                        // Each needed rank selected in turn, every later rank among the
                        // elements to its right (which are all at least as large).
                        let mut from = 0;
                        for r in spec.ranks(count) {
                            buf[from..].select_nth_unstable(r - from);
                            from = r + 1;
                        }
                    }
                    let res = spec.results(count, nans, |i| T::from_key(buf[i]).to_quantile());
                    for (k, r) in res.into_iter().enumerate() {
                        out[k * lanes + l] = r;
                    }
                }
                Ok(block_value(ArrayD::from_shape_vec(IxDyn(&out_shape), out)?))
            }),
        }
    }
}

/// A radix-selection target: an order statistic being pinned down.
#[derive(Clone, Debug)]
struct Target {
    rank: u64,
    /// The key bits known so far (the top `bits` of `prefix`).
    prefix: u64,
    bits: u32,
    /// Valid elements whose key is below the prefix.
    below: u64,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The next pass counts the next 16 bits of the keys starting with the prefix.
    Histogram,
    /// The next pass collects the keys starting with the prefix.
    Collect,
    /// The key.
    Done(u64),
}

/// What the passes know after each one: the lane's counts and its targets.
#[derive(Clone, Debug, Default)]
struct SelectState {
    /// `(valid, nan)` counts, after the first pass.
    counts: Option<(u64, u64)>,
    targets: Vec<Target>,
}

/// A group of targets with the same prefix and mode: one histogram or key list per pass.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Group {
    prefix: u64,
    bits: u32,
    collect: bool,
}

impl Group {
    fn matches(self, key: u64) -> bool {
        self.bits == 0 || (key ^ self.prefix) >> (64 - self.bits) == 0
    }
    fn digit(self, key: u64) -> usize {
        ((key << self.bits) >> (64 - DIGIT)) as usize
    }
}

impl SelectState {
    fn groups(&self) -> Vec<Group> {
        if self.counts.is_none() {
            return vec![Group {
                prefix: 0,
                bits: 0,
                collect: false,
            }];
        }
        let mut g: Vec<Group> = Vec::new();
        for t in &self.targets {
            let group = match t.mode {
                Mode::Done(_) => continue,
                Mode::Histogram => Group {
                    prefix: t.prefix,
                    bits: t.bits,
                    collect: false,
                },
                Mode::Collect => Group {
                    prefix: t.prefix,
                    bits: t.bits,
                    collect: true,
                },
            };
            if !g.contains(&group) {
                g.push(group);
            }
        }
        g
    }
}

/// One pass's counts over a group of blocks.
struct PassPartial {
    valid: u64,
    nans: u64,
    /// Per group of the pass: a histogram of the next digit, or the keys.
    hist: Vec<Vec<u64>>,
    keys: Vec<Vec<u64>>,
}

struct PassMerge;

impl Merge for PassMerge {
    type Partial = PassPartial;
    fn merge_partials(&self, a: &PassPartial, b: &PassPartial) -> PassPartial {
        PassPartial {
            valid: a.valid + b.valid,
            nans: a.nans + b.nans,
            hist: a
                .hist
                .iter()
                .zip(&b.hist)
                .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p + q).collect())
                .collect(),
            keys: a
                .keys
                .iter()
                .zip(&b.keys)
                .map(|(x, y)| x.iter().chain(y).copied().collect())
                .collect(),
        }
    }
    fn partial_bytes(p: &PassPartial) -> usize {
        8 * (p.hist.iter().map(Vec::len).sum::<usize>()
            + p.keys.iter().map(Vec::len).sum::<usize>())
    }
}

/// One pass over one block: counts, and per group a histogram or the matching keys.
fn scan_block<T: SortKey>(block: &ArrayD<T>, state: &SelectState) -> PassPartial {
    let groups = state.groups();
    let mut p = PassPartial {
        valid: 0,
        nans: 0,
        hist: groups
            .iter()
            .map(|g| {
                if g.collect {
                    Vec::new()
                } else {
                    vec![0; 1 << DIGIT]
                }
            })
            .collect(),
        keys: vec![Vec::new(); groups.len()],
    };
    let owned;
    let data: &[T] = match block.as_slice_memory_order() {
        Some(s) => s,
        None => {
            owned = block.iter().copied().collect::<Vec<T>>();
            &owned
        }
    };
    if state.counts.is_none() {
        // Pass 1: count, and a histogram of the top digit of every valid key.
        let hist = &mut p.hist[0];
        let mut nans = 0u64;
        for &x in data {
            if x.is_nan_value() {
                nans += 1;
            } else {
                hist[(x.key() >> (64 - DIGIT)) as usize] += 1;
            }
        }
        p.nans = nans;
        p.valid = data.len() as u64 - nans;
        return p;
    }
    if groups.is_empty() {
        // Every target is pinned: nothing to look at.
        return p;
    }
    // Later passes: a table of the top digits some group's prefix starts with (every group
    // knows at least one digit), so that most elements cost one lookup.
    let mut hit = vec![false; 1 << DIGIT];
    for g in &groups {
        hit[(g.prefix >> (64 - DIGIT)) as usize] = true;
    }
    for &x in data {
        if x.is_nan_value() {
            continue;
        }
        let key = x.key();
        if !hit[(key >> (64 - DIGIT)) as usize] {
            continue;
        }
        for (k, g) in groups.iter().enumerate() {
            if g.matches(key) {
                if g.collect {
                    p.keys[k].push(key);
                } else {
                    p.hist[k][g.digit(key)] += 1;
                }
            }
        }
    }
    p
}

/// The state after a pass, from the state before it and the pass's merged counts.
fn advance<T: SortKey>(prev: &SelectState, p: &PassPartial, spec: &Spec) -> SelectState {
    let mut state = prev.clone();
    if state.counts.is_none() {
        state.counts = Some((p.valid, p.nans));
        // The NaNs of a non-skipping quantile are in `valid` (as the largest keys): NumPy's
        // result is NaN then, so there is nothing to select.
        let nans_poison = p.nans > 0 && !spec.skip_nan;
        let n = p.valid;
        state.targets = if n == 0 || nans_poison {
            Vec::new()
        } else {
            spec.ranks(n as usize)
                .into_iter()
                .map(|r| Target {
                    rank: r as u64,
                    prefix: 0,
                    bits: 0,
                    below: 0,
                    mode: Mode::Histogram,
                })
                .collect()
        };
    }
    let groups = prev.groups();
    let group_of = |t: &Target| {
        groups.iter().position(|g| {
            g.prefix == t.prefix && g.bits == t.bits && g.collect == (t.mode == Mode::Collect)
        })
    };
    for t in &mut state.targets {
        let Some(k) = group_of(t) else { continue };
        if t.mode == Mode::Collect {
            let mut keys = p.keys[k].clone();
            let at = (t.rank - t.below) as usize;
            let (_, &mut key, _) = keys.select_nth_unstable(at);
            t.mode = Mode::Done(key);
            continue;
        }
        // Find the digit holding the rank.
        let mut below = t.below;
        let mut digit = 0;
        let mut count = 0;
        for (d, &c) in p.hist[k].iter().enumerate() {
            if below + c > t.rank {
                digit = d;
                count = c;
                break;
            }
            below += c;
        }
        t.below = below;
        t.prefix |= (digit as u64) << (64 - t.bits - DIGIT);
        t.bits += DIGIT;
        t.mode = if t.bits >= T::KEY_BITS {
            Mode::Done(t.prefix)
        } else if count <= COLLECT_MAX {
            Mode::Collect
        } else {
            Mode::Histogram
        };
    }
    state
}

/// Per block: one pass of the selection (pass 1 without a previous state).
struct PassChunkNode<T> {
    meta: Meta,
    input: Arc<dyn Node>,
    state: Option<Arc<dyn Node>>,
    /// Whether the task computes its block itself (inside the task, only when the pass has
    /// something to look at) rather than reading the input's shared block.
    reread: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for PassChunkNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        let mut v = Vec::new();
        if !self.reread {
            v.push(self.input.clone());
        }
        v.extend(self.state.clone());
        v
    }
    fn blockwise(&self) -> bool {
        // Pass 1 fuses with the work producing the block; later passes read a block that the
        // earlier passes read too.
        self.state.is_none()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let mut deps = Vec::new();
        if !self.reread {
            deps.push((0, BlockIndex::from_slice(index)));
        }
        if self.state.is_some() {
            deps.push((deps.len(), BlockIndex::from_vec(vec![0; index.len()])));
        }
        let (reread, input, at) = (self.reread, self.input.clone(), index.to_vec());
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let initial = SelectState::default();
                let state = match v.get(usize::from(!reread)) {
                    Some(s) => s.get::<SelectState>()?,
                    None => &initial,
                };
                let p = if reread {
                    if state.counts.is_some() && state.groups().is_empty() {
                        // Every target is pinned: no need to read the block again.
                        scan_block::<T>(&ArrayD::from_elem(IxDyn(&[0]), T::default()), state)
                    } else {
                        let block = crate::expr::lower::compute_block_inline(&input, &at)?;
                        scan_block(block_ref::<T>(&block)?, state)
                    }
                } else {
                    scan_block(block_ref::<T>(&v[0])?, state)
                };
                let n = PassMerge::partial_bytes(&p);
                Ok(Value::with_nbytes(p, n))
            }),
        }
    }
}

/// The state after a pass.
struct PassFinishNode<T> {
    meta: Meta,
    partial: Arc<dyn Node>,
    state: Option<Arc<dyn Node>>,
    spec: Arc<Spec>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for PassFinishNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        let mut v = vec![self.partial.clone()];
        v.extend(self.state.clone());
        v
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let mut deps = vec![(0, BlockIndex::from_slice(index))];
        if self.state.is_some() {
            deps.push((1, BlockIndex::from_slice(index)));
        }
        let spec = self.spec.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let p = v[0].get::<PassPartial>()?;
                let initial = SelectState::default();
                let prev = match v.get(1) {
                    Some(s) => s.get::<SelectState>()?,
                    None => &initial,
                };
                let state = advance::<T>(prev, p, &spec);
                let n = 64 + 64 * state.targets.len();
                Ok(Value::with_nbytes(state, n))
            }),
        }
    }
}

/// The quantiles of the lane from the last state: a 1-d block of one value per `q`.
struct LaneResultNode<T> {
    meta: Meta,
    state: Arc<dyn Node>,
    spec: Arc<Spec>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: SortKey> Node for LaneResultNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.state.clone()]
    }
    fn block(&self, _index: &[usize]) -> BlockTask {
        let nd = self.state.meta().chunks.ndim();
        let spec = self.spec.clone();
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(vec![0; nd]))],
            func: Arc::new(move |v: &[Value]| {
                let s = v[0].get::<SelectState>()?;
                let (valid, nans) = s.counts.ok_or("internal: selection without counts")?;
                let key_of = |rank: usize| {
                    s.targets
                        .iter()
                        .find(|t| t.rank == rank as u64)
                        .and_then(|t| match t.mode {
                            Mode::Done(k) => Some(k),
                            _ => None,
                        })
                };
                if s.targets.iter().any(|t| !matches!(t.mode, Mode::Done(_))) {
                    return Err("internal: radix selection left a target unresolved".into());
                }
                let res = spec.results(valid as usize, nans as usize, |i| {
                    key_of(i).map_or(<T::Quantile as num_traits::Float>::nan(), |k| {
                        T::from_key(k).to_quantile()
                    })
                });
                Ok(block_value(ArrayD::from_shape_vec(
                    IxDyn(&[res.len()]),
                    res,
                )?))
            }),
        }
    }
}

/// The quantiles of all the elements of `x` (one lane) by radix selection: a 1-d array of one
/// value per `q`.
fn radix_lane<T: SortKey>(
    x: &BlockArray<T>,
    spec: &Arc<Spec>,
    reread: bool,
) -> Result<BlockArray<T::Quantile>> {
    // Named after this lane's own input: lanes of one call must not share keys.
    let mut t = token_of(&[&x.node]);
    t.write_str("radix-select").write_u64(u64::from(reread));
    spec.tokenize(&mut t);
    let nd = x.ndim();
    let axes: Vec<usize> = (0..nd).collect();
    let partial_chunks = Chunks::from_blocks(x.numblocks().iter().map(|&n| vec![1; n]).collect())?;
    let state_chunks = Chunks::from_blocks(vec![vec![1]; nd])?;
    let passes = T::KEY_BITS.div_ceil(DIGIT);
    let merge = Arc::new(PassMerge);
    let mut state: Option<Arc<dyn Node>> = None;
    for pass in 0..passes {
        let mut tp = t.clone();
        tp.write_u64(u64::from(pass));
        let chunk: Arc<dyn Node> = Arc::new(PassChunkNode::<T> {
            meta: Meta::new::<T>("quantile-pass", tp.clone(), partial_chunks.clone()),
            input: x.node.clone(),
            state: state.clone(),
            reread,
            _type: std::marker::PhantomData,
        });
        let combined =
            combine_levels::<T, _>(chunk, &axes, DEFAULT_FANIN, &merge, "quantile-pass", &tp)?;
        state = Some(Arc::new(PassFinishNode::<T> {
            meta: Meta::new::<T>("quantile-state", tp, state_chunks.clone()),
            partial: combined,
            state: state.clone(),
            spec: spec.clone(),
            _type: std::marker::PhantomData,
        }));
    }
    let state = state.ok_or_else(|| Error::unsupported("no selection pass for this type"))?;
    let node = LaneResultNode::<T> {
        meta: Meta::new::<T::Quantile>(
            "quantile-lane",
            t.clone(),
            Chunks::from_blocks(vec![vec![spec.qs.len()]])?,
        ),
        state,
        spec: spec.clone(),
        _type: std::marker::PhantomData,
    };
    Ok(BlockArray::wrap(Arc::new(node)))
}

fn quantiles<T: SortKey>(
    x: &BlockArray<T>,
    spec: Spec,
    q_axis: bool,
    axes: Option<&[usize]>,
    keepdims: bool,
    op: &str,
) -> Result<BlockArray<T::Quantile>> {
    // Lanes are cut at positions of the whole array (as dask, which rechunks them).
    x.chunks().require_known(op)?;
    quantiles_bounded(x, spec, q_axis, axes, keepdims, op, LANE_BYTES, HOLD_BYTES)
}

/// [`quantiles`] with lanes longer than `lane_bytes` selected by the radix passes, which re-read
/// a lane of more than `hold_bytes` in each pass.
#[allow(clippy::too_many_arguments)]
fn quantiles_bounded<T: SortKey>(
    x: &BlockArray<T>,
    spec: Spec,
    q_axis: bool,
    axes: Option<&[usize]>,
    keepdims: bool,
    op: &str,
    lane_bytes: usize,
    hold_bytes: usize,
) -> Result<BlockArray<T::Quantile>> {
    let axes = norm_axes(x.ndim(), axes)?;
    let shape = x.shape().to_vec();
    let lane: usize = axes.iter().map(|&a| shape[a]).product();
    if lane == 0 {
        return Err(Error::shape(format!(
            "{op} of an empty selection: axes {axes:?} of shape {shape:?} hold no element"
        )));
    }
    let nq = spec.qs.len();
    let kept: Vec<usize> = (0..x.ndim()).filter(|a| !axes.contains(a)).collect();
    let spec = Arc::new(spec);
    let mut t = token_of(&[&x.node]);
    t.write_str(op)
        .write(axes.as_slice())
        .write_u64(u64::from(keepdims))
        .write_u64(u64::from(q_axis));
    spec.tokenize(&mut t);
    t.write_usize(lane_bytes);
    // Lanes of an empty array (a kept axis of length 0) are short ones, in no task.
    if lane.saturating_mul(T::itemsize()) <= lane_bytes || shape.contains(&0) {
        // Reduced axes whole in each block; kept axes as they are unless blocks get too big.
        let mut want: Vec<Vec<usize>> = x.chunks().axes().to_vec();
        for &a in &axes {
            want[a] = vec![shape[a]];
        }
        let max_kept: usize = kept
            .iter()
            .map(|&a| want[a].iter().copied().max().unwrap_or(0))
            .product();
        if max_kept.saturating_mul(lane).saturating_mul(T::itemsize())
            > DEFAULT_CHUNK_BYTES.max(lane * T::itemsize())
        {
            let spec_chunks: Vec<AxisChunks> = (0..x.ndim())
                .map(|a| {
                    if axes.contains(&a) {
                        AxisChunks::Full
                    } else {
                        AxisChunks::Auto
                    }
                })
                .collect();
            want = Chunks::new(&shape, ChunkSpec::PerAxis(spec_chunks), T::itemsize())?.into_axes();
        }
        let input = x.rechunk(want)?;
        let mut out_axes: Vec<Vec<usize>> = Vec::new();
        if q_axis {
            out_axes.push(vec![nq]);
        }
        for a in 0..x.ndim() {
            if !axes.contains(&a) {
                out_axes.push(input.chunks().axis(a).to_vec());
            } else if keepdims {
                out_axes.push(vec![1]);
            }
        }
        let node = InBlockNode::<T> {
            meta: Meta::new::<T::Quantile>(op, t, Chunks::from_blocks(out_axes)?),
            input: input.node.clone(),
            axes,
            spec,
            keepdims,
            q_axis,
            _type: std::marker::PhantomData,
        };
        return Ok(BlockArray::wrap(Arc::new(node)));
    }
    // Long lanes: a radix selection per lane (one per position of the kept axes).
    let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let numblocks = x.numblocks();
    let per_lane = axes
        .iter()
        .fold(1usize, |a, &ax| a.saturating_mul(numblocks[ax]));
    super::check_lane_graphs(op, &kept_shape, per_lane)?;
    let count: usize = kept_shape.iter().product();
    let mut lanes = Vec::with_capacity(count);
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
        let reread = lane.saturating_mul(T::itemsize()) > hold_bytes;
        lanes.push(radix_lane(&sub, &spec, reread)?);
    }
    let refs: Vec<&BlockArray<T::Quantile>> = lanes.iter().collect();
    let stacked = if refs.len() == 1 {
        lanes[0].clone()
    } else {
        stack(&refs, 1)?
    };
    let mut out_shape = vec![nq];
    for (a, &len) in shape.iter().enumerate() {
        if !axes.contains(&a) {
            out_shape.push(len);
        } else if keepdims {
            out_shape.push(1);
        }
    }
    let mut out = stacked.reshape(&out_shape)?;
    if !q_axis {
        out = out.squeeze(Some(&[0]))?;
    }
    Ok(out)
}

fn check_q(qs: &[f64], hi: f64, what: &str) -> Result<()> {
    for &q in qs {
        if !(0.0..=hi).contains(&q) {
            return Err(Error::index(format!("{what} {q} is outside [0, {hi}]")));
        }
    }
    Ok(())
}

impl<T: SortKey> BlockArray<T> {
    /// The `q`-th quantiles (`q` in `[0, 1]`) over `axes` (all when `None`), **exact**, with
    /// NumPy's `method` ([`QuantileMethod::Linear`] by default): `numpy.quantile`. A NaN in a
    /// lane makes its quantiles NaN (see [`nanquantile`](Self::nanquantile)). Several `q`
    /// give a leading axis, one entry per `q`; reduced axes stay as length 1 with `keepdims`.
    ///
    /// Lanes of up to [`LANE_BYTES`] are selected in memory, one task per block; longer lanes
    /// by a distributed radix selection of at most 4 passes whose memory per task is bounded
    /// (see the module notes). No sort.
    ///
    /// # Errors
    /// A `q` outside `[0, 1]` (naming it), a bad axis, an empty selection.
    ///
    /// ```
    /// use blockarray::{BlockArray, QuantileMethod};
    /// let x = BlockArray::from_array(ndarray::array![[10.0, 7.0, 4.0], [3.0, 2.0, 1.0]], [1, 2])?;
    /// let q = x.quantile(0.5, None, QuantileMethod::Linear, false)?.compute()?;
    /// assert_eq!(q.into_iter().next(), Some(3.5));
    /// let q = x.quantile([0.0, 0.5, 1.0], Some(&[1]), QuantileMethod::Lower, false)?.compute()?;
    /// assert_eq!(q, ndarray::array![[4.0, 1.0], [7.0, 2.0], [10.0, 3.0]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn quantile(
        &self,
        q: impl Into<Quantiles>,
        axes: Option<&[usize]>,
        method: QuantileMethod,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        self.quantile_impl(q.into(), 1.0, axes, method, keepdims, false, "quantile")
    }

    /// [`quantile`](Self::quantile) ignoring NaN (`numpy.nanquantile`): a lane of NaN only
    /// gives NaN.
    ///
    /// ```
    /// use blockarray::{BlockArray, QuantileMethod};
    /// let x = BlockArray::from_array(ndarray::array![1.0, f64::NAN, 3.0, 2.0], 3)?;
    /// let m = x.nanquantile(0.5, None, QuantileMethod::Linear, false)?.compute()?;
    /// assert_eq!(m.into_iter().next(), Some(2.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn nanquantile(
        &self,
        q: impl Into<Quantiles>,
        axes: Option<&[usize]>,
        method: QuantileMethod,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        self.quantile_impl(q.into(), 1.0, axes, method, keepdims, true, "nanquantile")
    }

    /// The `p`-th percentiles (`p` in `[0, 100]`), exact: `numpy.percentile` (the quantile
    /// at `p / 100`).
    ///
    /// ```
    /// use blockarray::{BlockArray, QuantileMethod};
    /// let x = BlockArray::arange(0.0, 101.0, 1.0, 10)?;
    /// let p = x.percentile([5.0, 50.0, 95.0], None, QuantileMethod::Linear, false)?.compute()?;
    /// assert_eq!(p.into_raw_vec_and_offset().0, vec![5.0, 50.0, 95.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn percentile(
        &self,
        p: impl Into<Quantiles>,
        axes: Option<&[usize]>,
        method: QuantileMethod,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        self.quantile_impl(p.into(), 100.0, axes, method, keepdims, false, "percentile")
    }

    /// [`percentile`](Self::percentile) ignoring NaN (`numpy.nanpercentile`).
    ///
    /// ```
    /// use blockarray::{BlockArray, QuantileMethod};
    /// let x = BlockArray::from_array(ndarray::array![f64::NAN, 10.0, 20.0, 30.0, 40.0], 2)?;
    /// let p = x.nanpercentile(25.0, None, QuantileMethod::Nearest, false)?.compute()?;
    /// assert_eq!(p.into_iter().next(), Some(20.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn nanpercentile(
        &self,
        p: impl Into<Quantiles>,
        axes: Option<&[usize]>,
        method: QuantileMethod,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        self.quantile_impl(
            p.into(),
            100.0,
            axes,
            method,
            keepdims,
            true,
            "nanpercentile",
        )
    }

    /// The median over `axes` (`numpy.median`: the mean of the two middle values of an even
    /// lane); NaN where a lane has a NaN.
    ///
    /// ```
    /// let x = blockarray::BlockArray::from_array(ndarray::array![4, 1, 3, 2], 3)?;
    /// assert_eq!(x.median(None, false)?.compute()?.into_iter().next(), Some(2.5));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn median(
        &self,
        axes: Option<&[usize]>,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        let spec = Spec {
            qs: vec![None],
            method: QuantileMethod::Linear,
            skip_nan: false,
        };
        quantiles(self, spec, false, axes, keepdims, "median")
    }

    /// The median ignoring NaN (`numpy.nanmedian`).
    ///
    /// ```
    /// let x = blockarray::BlockArray::from_array(ndarray::array![[1.0, f64::NAN, 5.0], [2.0, 4.0, 8.0]], 2)?;
    /// let m = x.nanmedian(Some(&[1]), false)?.compute()?;
    /// assert_eq!(m.into_raw_vec_and_offset().0, vec![3.0, 4.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn nanmedian(
        &self,
        axes: Option<&[usize]>,
        keepdims: bool,
    ) -> Result<BlockArray<T::Quantile>> {
        let spec = Spec {
            qs: vec![None],
            method: QuantileMethod::Linear,
            skip_nan: true,
        };
        quantiles(self, spec, false, axes, keepdims, "nanmedian")
    }

    #[allow(clippy::too_many_arguments)]
    fn quantile_impl(
        &self,
        q: Quantiles,
        scale: f64,
        axes: Option<&[usize]>,
        method: QuantileMethod,
        keepdims: bool,
        skip_nan: bool,
        op: &str,
    ) -> Result<BlockArray<T::Quantile>> {
        check_q(
            q.values(),
            scale,
            if scale == 1.0 {
                "quantile"
            } else {
                "percentile"
            },
        )?;
        let qs = q
            .values()
            .iter()
            .map(|&v| Some(if scale == 1.0 { v } else { v / scale }))
            .collect();
        let spec = Spec {
            qs,
            method,
            skip_nan,
        };
        quantiles(
            self,
            spec,
            matches!(q, Quantiles::Many(_)),
            axes,
            keepdims,
            op,
        )
    }
}

/// The `q`-th quantiles of `x` over `axes` (`numpy.quantile`); see [`BlockArray::quantile`].
///
/// ```
/// use blockarray::{BlockArray, QuantileMethod, quantile};
/// let x = BlockArray::arange(0.0, 11.0, 1.0, 4)?;
/// let q = quantile(&x, [0.1, 0.9], None, QuantileMethod::Linear, false)?.compute()?;
/// assert_eq!(q.into_raw_vec_and_offset().0, vec![1.0, 9.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn quantile<T: SortKey>(
    x: &BlockArray<T>,
    q: impl Into<Quantiles>,
    axes: Option<&[usize]>,
    method: QuantileMethod,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.quantile(q, axes, method, keepdims)
}

/// [`quantile`] ignoring NaN (`numpy.nanquantile`); see [`BlockArray::nanquantile`].
///
/// ```
/// use blockarray::{BlockArray, QuantileMethod, nanquantile};
/// let x = BlockArray::from_array(ndarray::array![f64::NAN, 1.0, 3.0], 2)?;
/// let q = nanquantile(&x, 0.5, None, QuantileMethod::Linear, false)?.compute()?;
/// assert_eq!(q.into_iter().next(), Some(2.0));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn nanquantile<T: SortKey>(
    x: &BlockArray<T>,
    q: impl Into<Quantiles>,
    axes: Option<&[usize]>,
    method: QuantileMethod,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.nanquantile(q, axes, method, keepdims)
}

/// The `p`-th percentiles of `x` over `axes` (`numpy.percentile`); see
/// [`BlockArray::percentile`].
///
/// ```
/// use blockarray::{BlockArray, QuantileMethod, percentile};
/// let x = BlockArray::arange(0i64, 101, 1, 20)?;
/// let p = percentile(&x, 95.0, None, QuantileMethod::Higher, false)?.compute()?;
/// assert_eq!(p.into_iter().next(), Some(95.0));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn percentile<T: SortKey>(
    x: &BlockArray<T>,
    p: impl Into<Quantiles>,
    axes: Option<&[usize]>,
    method: QuantileMethod,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.percentile(p, axes, method, keepdims)
}

/// [`percentile`] ignoring NaN (`numpy.nanpercentile`); see [`BlockArray::nanpercentile`].
///
/// ```
/// use blockarray::{BlockArray, QuantileMethod, nanpercentile};
/// let x = BlockArray::from_array(ndarray::array![4.0, f64::NAN, 8.0], 2)?;
/// let p = nanpercentile(&x, 100.0, None, QuantileMethod::Linear, false)?.compute()?;
/// assert_eq!(p.into_iter().next(), Some(8.0));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn nanpercentile<T: SortKey>(
    x: &BlockArray<T>,
    p: impl Into<Quantiles>,
    axes: Option<&[usize]>,
    method: QuantileMethod,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.nanpercentile(p, axes, method, keepdims)
}

/// The median of `x` over `axes` (`numpy.median`); see [`BlockArray::median`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![[1, 9], [3, 5]], 1)?;
/// let m = blockarray::median(&x, Some(&[0]), false)?.compute()?;
/// assert_eq!(m.into_raw_vec_and_offset().0, vec![2.0, 7.0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn median<T: SortKey>(
    x: &BlockArray<T>,
    axes: Option<&[usize]>,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.median(axes, keepdims)
}

/// The median ignoring NaN (`numpy.nanmedian`); see [`BlockArray::nanmedian`].
///
/// ```
/// let x = blockarray::BlockArray::from_array(ndarray::array![f64::NAN, 2.0, 6.0], 2)?;
/// let m = blockarray::nanmedian(&x, None, false)?.compute()?;
/// assert_eq!(m.into_iter().next(), Some(4.0));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn nanmedian<T: SortKey>(
    x: &BlockArray<T>,
    axes: Option<&[usize]>,
    keepdims: bool,
) -> Result<BlockArray<T::Quantile>> {
    x.nanmedian(axes, keepdims)
}

/// Register a quantile pass's counts with [`dag_core::wire`] (distributed runs).
pub(crate) fn register_wire() {
    use crate::expr::wire::{get_vec, put_vec};
    fn put_runs(runs: &[Vec<u64>], out: &mut Vec<u8>) {
        dag_core::wire::put_u64(out, runs.len() as u64);
        for v in runs {
            put_vec(v, out);
        }
    }
    fn get_runs(r: &mut dag_core::wire::Reader<'_>) -> std::result::Result<Vec<Vec<u64>>, String> {
        let n = r.u64()? as usize;
        (0..n).map(|_| get_vec(r)).collect()
    }
    dag_core::wire::register::<SelectState>(
        |s, out| {
            let (has, valid, nans) = match s.counts {
                Some((v, n)) => (1, v, n),
                None => (0, 0, 0),
            };
            for v in [has, valid, nans, s.targets.len() as u64] {
                dag_core::wire::put_u64(out, v);
            }
            for t in &s.targets {
                let (mode, key) = match t.mode {
                    Mode::Histogram => (0, 0),
                    Mode::Collect => (1, 0),
                    Mode::Done(k) => (2, k),
                };
                for v in [t.rank, t.prefix, u64::from(t.bits), t.below, mode, key] {
                    dag_core::wire::put_u64(out, v);
                }
            }
        },
        |r| {
            let (has, valid, nans, n) = (r.u64()?, r.u64()?, r.u64()?, r.usize()?);
            let targets = (0..n)
                .map(|_| {
                    let (rank, prefix, bits, below) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
                    let mode = match (r.u64()?, r.u64()?) {
                        (0, _) => Mode::Histogram,
                        (1, _) => Mode::Collect,
                        (2, k) => Mode::Done(k),
                        (m, _) => return Err(format!("unknown selection mode {m}")),
                    };
                    let bits = u32::try_from(bits).map_err(|e| e.to_string())?;
                    Ok(Target {
                        rank,
                        prefix,
                        bits,
                        below,
                        mode,
                    })
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Ok(SelectState {
                counts: (has == 1).then_some((valid, nans)),
                targets,
            })
        },
    );
    dag_core::wire::register::<PassPartial>(
        |p, out| {
            dag_core::wire::put_u64(out, p.valid);
            dag_core::wire::put_u64(out, p.nans);
            put_runs(&p.hist, out);
            put_runs(&p.keys, out);
        },
        |r| {
            Ok(PassPartial {
                valid: r.u64()?,
                nans: r.u64()?,
                hist: get_runs(r)?,
                keys: get_runs(r)?,
            })
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// NumPy's documented values for `[1, 2, 3, 4]` at q = 0.25, one per method.
    #[test]
    fn methods_match_numpy_on_a_small_lane() {
        let lane = [1.0, 2.0, 3.0, 4.0];
        let cases = [
            (QuantileMethod::Linear, 1.75),
            (QuantileMethod::Lower, 1.0),
            (QuantileMethod::Higher, 2.0),
            (QuantileMethod::Nearest, 2.0),
            (QuantileMethod::Midpoint, 1.5),
            (QuantileMethod::InvertedCdf, 1.0),
            (QuantileMethod::AveragedInvertedCdf, 1.5),
            (QuantileMethod::ClosestObservation, 1.0),
            (QuantileMethod::InterpolatedInvertedCdf, 1.0),
            (QuantileMethod::Hazen, 1.5),
            (QuantileMethod::Weibull, 1.25),
            (QuantileMethod::MedianUnbiased, 1.0 + 0.25 + 1.0 / 6.0),
            (QuantileMethod::NormalUnbiased, 1.4375),
        ];
        for (method, want) in cases {
            let got: f64 = pick(4, Some(0.25), method).value(|i| lane[i]);
            assert!((got - want).abs() < 1e-12, "{method:?}: {got} vs {want}");
        }
        // q = 1 with linear: the last element (NumPy's gamma of n, harmless).
        assert_eq!(
            pick(4, Some(1.0), QuantileMethod::Linear).value(|i| lane[i]),
            4.0
        );
        assert_eq!(
            pick(4, None, QuantileMethod::Linear),
            Pick::Mean { lo: 1, hi: 2 }
        );
        assert_eq!(pick(5, None, QuantileMethod::Linear), Pick::Element(2));
        // Nearest rounds half to even: (5 - 1) · 0.375 = 1.5 → 2, 0.625 → 2.5 → 2.
        assert_eq!(
            pick(5, Some(0.375), QuantileMethod::Nearest),
            Pick::Element(2)
        );
        assert_eq!(
            pick(5, Some(0.625), QuantileMethod::Nearest),
            Pick::Element(2)
        );
    }

    fn lane_reference(
        lane: &[f64],
        qs: &[Option<f64>],
        method: QuantileMethod,
        skip: bool,
    ) -> Vec<f64> {
        let nan = lane.iter().any(|v| v.is_nan());
        let mut v: Vec<f64> = lane.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() || (nan && !skip) {
            return vec![f64::NAN; qs.len()];
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        qs.iter()
            .map(|&q| pick(v.len(), q, method).value(|i| v[i]))
            .collect()
    }

    /// A lane above the hold bound is read again by each pass instead of kept: the passes hold
    /// histograms, not the input (and give the same result).
    #[test]
    fn rereading_lanes_do_not_hold_the_input() {
        let x = crate::random::Rng::new(3)
            .random::<f64>(&[1 << 23], [1 << 20])
            .unwrap();
        let input = x.nbytes() as u64;
        let spec = Spec {
            qs: vec![Some(0.05), Some(0.5), Some(0.95)],
            method: QuantileMethod::Linear,
            skip_nan: false,
        };
        let run = |hold: usize| {
            let q = quantiles_bounded(&x, spec.clone(), true, None, false, "quantile", 0, hold)
                .unwrap();
            q.compute_with_callbacks(&sched_sync::SyncScheduler::new(), &dag_core::NoCallbacks)
                .unwrap()
        };
        let (held, held_stats) = run(HOLD_BYTES);
        let (reread, reread_stats) = run(0);
        assert_eq!(held, reread);
        assert!(
            held_stats.peak_bytes as u64 >= input,
            "{}",
            held_stats.peak_bytes
        );
        assert!(
            (reread_stats.peak_bytes as u64) < input / 4,
            "{} of {input}",
            reread_stats.peak_bytes
        );
    }

    const METHODS: [QuantileMethod; 13] = [
        QuantileMethod::Linear,
        QuantileMethod::Lower,
        QuantileMethod::Higher,
        QuantileMethod::Nearest,
        QuantileMethod::Midpoint,
        QuantileMethod::InvertedCdf,
        QuantileMethod::AveragedInvertedCdf,
        QuantileMethod::ClosestObservation,
        QuantileMethod::InterpolatedInvertedCdf,
        QuantileMethod::Hazen,
        QuantileMethod::Weibull,
        QuantileMethod::MedianUnbiased,
        QuantileMethod::NormalUnbiased,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The radix selection (forced with a lane bound of 0) and the in-memory selection
        /// agree with the sorted-lane reference, over all axes and over one axis, with NaNs,
        /// ties and spread-out values (so that several radix passes are needed).
        #[test]
        fn radix_and_in_block_selection_match_sorting(
            rows in 1usize..5, cols in 1usize..40, chunk_r in 1usize..4, chunk_c in 1usize..13,
            seed in any::<u64>(), m in 0usize..13, skip in any::<bool>(), nan in any::<bool>(), spread in any::<bool>(),
            qs in proptest::collection::vec(0.0f64..=1.0, 1..4), threaded in any::<bool>(),
        ) {
            let mut i = 0u64;
            let d = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |_| {
                i += 1;
                let z = (seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                let z = z ^ (z >> 31);
                if nan && z.is_multiple_of(17) { f64::NAN }
                else if spread { (z >> 11) as f64 * 1e-300 * if z & 1 == 0 { 1.0 } else { -1e300 } }
                else { ((z >> 40) % 7) as f64 }
            });
            let x = BlockArray::from_array(d.clone(), [chunk_r, chunk_c]).unwrap();
            let method = METHODS[m];
            let spec = Spec { qs: qs.iter().map(|&q| Some(q)).collect(), method, skip_nan: skip };
            let sched: Box<dyn dag_core::Scheduler> = if threaded {
                Box::new(sched_threaded::ThreadedScheduler::builder().threads(2).build().unwrap())
            } else {
                Box::new(sched_sync::SyncScheduler::new())
            };
            let all: Vec<f64> = d.iter().copied().collect();
            let want_all = lane_reference(&all, &spec.qs, method, skip);
            for (bound, hold) in [(0, HOLD_BYTES), (0, 0), (LANE_BYTES, HOLD_BYTES)] {
                let got = quantiles_bounded(&x, spec.clone(), true, None, false, "quantile", bound, hold)
                    .unwrap().compute_with(&*sched).unwrap();
                let got: Vec<f64> = got.iter().copied().collect();
                prop_assert_eq!(got.len(), want_all.len());
                for (g, w) in got.iter().zip(&want_all) {
                    prop_assert!((g.is_nan() && w.is_nan()) || g == w, "bound {}: {:?} vs {:?}", bound, got, want_all);
                }
                // Along axis 1, keeping dims: one lane per row.
                let got = quantiles_bounded(&x, spec.clone(), true, Some(&[1]), true, "quantile", bound, hold)
                    .unwrap().compute_with(&*sched).unwrap();
                prop_assert_eq!(got.shape(), &[qs.len(), rows, 1]);
                for r in 0..rows {
                    let lane: Vec<f64> = d.index_axis(ndarray::Axis(0), r).iter().copied().collect();
                    let want = lane_reference(&lane, &spec.qs, method, skip);
                    for (k, w) in want.iter().enumerate() {
                        let g = got[[k, r, 0]];
                        prop_assert!((g.is_nan() && w.is_nan()) || g == *w, "row {r}: {g} vs {w}");
                    }
                }
            }
        }
    }
}
