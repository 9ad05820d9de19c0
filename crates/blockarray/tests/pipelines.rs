//! Chains of operations against the same chain on an in-memory ndarray.
//!
//! Each operation has its own property test elsewhere; here random chains of them (slices with
//! any step, transposes, broadcasting, rechunks, reductions, scans, concatenation, takes, rolls,
//! reshapes, sorts, argsorts, unique, diagonals, vindex, contractions, persists, …) run over
//! random shapes and chunkings on both schedulers. What this catches is what lowering does across operations: slice pushdown
//! through later steps, fused elementwise chains over transposed or flipped operands, shared
//! sub-expressions, rechunks merged into their neighbours. Values are small integers stored as
//! `f64`, and every step keeps them integers, so results must be equal exactly; in half the
//! cases some are NaN, inf or -inf, which follow NumPy's rules through every step.

use std::collections::BTreeSet;

use blockarray::{BlockArray, PadMode, SliceArg, concatenate, extract, stack, where_};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;

mod common;
use common::{cuts_to_chunks, data, numpy_positions, scheduler};

/// Largest array a chain may grow to (keeps each case fast).
const MAX_SIZE: usize = 1500;

/// Decodes a step's parameters from its seed (splitmix64).
struct Bits(u64);

impl Bits {
    /// A value in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if n == 0 { 0 } else { (z % n as u64) as usize }
    }

    /// A value in `lo..hi`.
    fn range(&mut self, lo: isize, hi: isize) -> isize {
        lo + self.below((hi - lo) as usize) as isize
    }

    /// A random chunking of `shape`: up to 3 cuts per axis.
    fn chunking(&mut self, shape: &[usize]) -> Vec<Vec<usize>> {
        shape
            .iter()
            .map(|&n| {
                let cuts: BTreeSet<usize> = (0..self.below(4)).map(|_| self.below(n)).collect();
                cuts_to_chunks(n, &cuts)
            })
            .collect()
    }
}

/// The reference's `take` along `axis`.
fn pick(r: &ArrayD<f64>, axis: usize, positions: &[usize]) -> ArrayD<f64> {
    r.select(Axis(axis), positions)
}

/// The reference's flip along `axis`, in standard layout.
fn flipped(r: &ArrayD<f64>, axis: usize) -> ArrayD<f64> {
    let mut f = r.clone();
    f.invert_axis(Axis(axis));
    f.as_standard_layout().to_owned()
}

type Built = blockarray::Result<BlockArray<f64>>;

/// Runs a step's builder (so that arms can use `?`).
fn build(f: impl FnOnce() -> Built) -> Built {
    f()
}

/// The reference's positions for padding an axis of length `n > 0` by `before` and `after`
/// in a non-constant mode (NumPy's `edge`, `reflect`, `symmetric`, `wrap`).
fn pad_positions(mode: usize, n: usize, before: usize, after: usize) -> Vec<usize> {
    let n = n as isize;
    (-(before as isize)..n + after as isize)
        .map(|p| {
            let q = match mode {
                0 => p.clamp(0, n - 1),
                1 if n == 1 => 0,
                1 => {
                    let m = (p).rem_euclid(2 * (n - 1));
                    if m < n { m } else { 2 * (n - 1) - m }
                }
                2 => {
                    let m = p.rem_euclid(2 * n);
                    if m < n { m } else { 2 * n - 1 - m }
                }
                _ => p.rem_euclid(n),
            };
            q as usize
        })
        .collect()
}

/// Applies step `kind` (parameters from `seed`) to `x` and its reference `r`; `None` when the
/// step does not apply to this shape, or `x` has lengths known only after computing (after
/// `extract`) and the step needs them.
fn apply(
    kind: u8,
    seed: u64,
    x: &BlockArray<f64>,
    r: &ArrayD<f64>,
) -> Option<(BlockArray<f64>, ArrayD<f64>, String)> {
    let mut b = Bits(seed);
    let shape = r.shape().to_vec();
    let nd = shape.len();
    let size = r.len();
    let axis = b.below(nd);
    let n = shape.get(axis).copied().unwrap_or(0);
    let has_axis = nd > 0;
    let (lazy, want, what): (Built, ArrayD<f64>, String) = match kind % 35 {
        0 if has_axis => {
            let s = [-3, -2, -1, 1, 2, 3][b.below(6)];
            let bound =
                |b: &mut Bits| (b.below(3) > 0).then(|| b.range(-(n as isize) - 2, n as isize + 2));
            let (start, stop) = (bound(&mut b), bound(&mut b));
            let mut args = vec![SliceArg::FULL; nd];
            args[axis] = SliceArg::Range {
                start,
                stop,
                step: s,
            };
            (
                x.slice(&args),
                pick(r, axis, &numpy_positions(n, start, stop, s)),
                format!("slice axis {axis} {start:?}:{stop:?}:{s}"),
            )
        }
        1 => {
            let mut perm: Vec<usize> = (0..nd).collect();
            for i in (1..nd).rev() {
                perm.swap(i, b.below(i + 1));
            }
            let want = r
                .clone()
                .permuted_axes(IxDyn(&perm))
                .as_standard_layout()
                .to_owned();
            (x.permuted_axes(&perm), want, format!("permute {perm:?}"))
        }
        2 if has_axis => (
            build(|| x + &x.flip(Some(&[axis]))?),
            r + &flipped(r, axis),
            format!("x + flip(x, {axis})"),
        ),
        3 => {
            let c = b.range(-3, 4) as f64;
            (
                Ok(&(x * 2.0) + c),
                r.mapv(|v| v * 2.0 + c),
                format!("x * 2 + {c}"),
            )
        }
        4 if has_axis && n > 0 => {
            let m = r
                .fold_axis(Axis(axis), f64::NEG_INFINITY, |&a, &v| np_max(a, v))
                .insert_axis(Axis(axis));
            (
                build(|| x - &x.max(Some(&[axis]), true)?),
                r - &m,
                format!("x - max(x, {axis}, keepdims)"),
            )
        }
        5 => {
            let chunks = b.chunking(&shape);
            (
                x.rechunk(chunks.clone()),
                r.clone(),
                format!("rechunk {chunks:?}"),
            )
        }
        6 if has_axis => {
            let keep = b.below(2) == 1;
            let mut want = r.sum_axis(Axis(axis));
            if keep {
                want = want.insert_axis(Axis(axis));
            }
            (
                x.sum(Some(&[axis]), keep),
                want,
                format!("sum axis {axis} keepdims {keep}"),
            )
        }
        7 if has_axis => {
            let mut want = r.clone();
            want.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur += prev);
            (x.cumsum(axis), want, format!("cumsum axis {axis}"))
        }
        8 if has_axis && 2 * size <= MAX_SIZE => {
            let f = flipped(r, axis);
            (
                build(|| concatenate(&[x, &x.flip(Some(&[axis]))?], axis)),
                ndarray::concatenate(Axis(axis), &[r.view(), f.view()]).unwrap(),
                format!("concatenate [x, flip(x, {axis})] axis {axis}"),
            )
        }
        9 if has_axis => {
            let k = if n == 0 { 0 } else { b.below(7) };
            let idx: Vec<isize> = (0..k).map(|_| b.range(-(n as isize), n as isize)).collect();
            let pos: Vec<usize> = idx
                .iter()
                .map(|&i| i.rem_euclid(n as isize) as usize)
                .collect();
            if size / n.max(1) * k > MAX_SIZE {
                return None;
            }
            (
                x.take(&idx, axis),
                pick(r, axis, &pos),
                format!("take {idx:?} axis {axis}"),
            )
        }
        10 if has_axis => {
            let shift = b.range(-7, 8);
            let pos: Vec<usize> = (0..n as isize)
                .map(|i| (i - shift).rem_euclid(n.max(1) as isize) as usize)
                .collect();
            (
                x.roll(&[shift], Some(&[axis])),
                pick(r, axis, &pos),
                format!("roll {shift} axis {axis}"),
            )
        }
        11 => (
            build(|| where_(&x.greater(0.0)?, x, &-x)),
            r.mapv(|v| if v > 0.0 { v } else { -v }),
            "where(x > 0, x, -x)".into(),
        ),
        12 => {
            let divisors: Vec<usize> = (1..=size).filter(|&d| size.is_multiple_of(d)).collect();
            let to = match (size, b.below(3)) {
                (0, _) => vec![0],
                (_, 0) => vec![size],
                (_, 1) => {
                    let d = divisors[b.below(divisors.len())];
                    vec![d, size / d]
                }
                _ => {
                    let d = divisors[b.below(divisors.len())];
                    if b.below(2) == 0 {
                        vec![size / d, 1, d]
                    } else {
                        vec![1, d, size / d]
                    }
                }
            };
            let want = r
                .as_standard_layout()
                .to_owned()
                .into_shape_with_order(IxDyn(&to))
                .unwrap();
            (x.reshape(&to), want, format!("reshape {to:?}"))
        }
        13 if nd < 4 && 2 * size <= MAX_SIZE => {
            let at = b.below(nd + 1);
            let mut to = shape.clone();
            to.insert(at, 2);
            let want = r
                .clone()
                .insert_axis(Axis(at))
                .broadcast(IxDyn(&to))
                .unwrap()
                .to_owned();
            (
                build(|| x.insert_axis(at)?.broadcast_to(&to)),
                want,
                format!("broadcast to {to:?}"),
            )
        }
        14 => (x.persist(), r.clone(), "persist".into()),
        15 if has_axis => {
            let mut want = r.clone();
            for mut lane in want.lanes_mut(Axis(axis)) {
                let mut v = lane.to_vec();
                v.sort_by(|a, b| np_order(*a, *b));
                for (dst, src) in lane.iter_mut().zip(v) {
                    *dst = src;
                }
            }
            (x.sort(axis), want, format!("sort axis {axis}"))
        }
        16 if nd == 2 && shape[0] * shape[0] <= MAX_SIZE && small(r) => {
            let m = r.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
            (x.matmul(&x.t()), m.dot(&m.t()).into_dyn(), "x @ x.T".into())
        }
        17 if nd == 2 => {
            let k = b.range(-3, 4);
            let upper = b.below(2) == 1;
            let mut want = r.clone();
            for ((i, j), v) in want
                .view_mut()
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap()
                .indexed_iter_mut()
            {
                let d = j as isize - i as isize;
                if (upper && d < k) || (!upper && d > k) {
                    *v = 0.0;
                }
            }
            let lazy = if upper { x.triu(k) } else { x.tril(k) };
            (
                lazy,
                want,
                format!("{} {k}", if upper { "triu" } else { "tril" }),
            )
        }
        18 if has_axis && n > 0 => {
            let k = 1 + b.below(n);
            let largest = b.below(2) == 1;
            let mut want = pick(r, axis, &(0..k).collect::<Vec<_>>());
            for (mut out, lane) in want
                .lanes_mut(Axis(axis))
                .into_iter()
                .zip(r.lanes(Axis(axis)))
            {
                let mut v = lane.to_vec();
                v.sort_by(|a, b| np_order(*a, *b));
                if largest {
                    v.reverse();
                }
                for (dst, src) in out.iter_mut().zip(v) {
                    *dst = src;
                }
            }
            let k = if largest { k as isize } else { -(k as isize) };
            (x.topk(k, axis), want, format!("topk {k} axis {axis}"))
        }
        19 => {
            let kept: Vec<f64> = r.iter().copied().filter(|&v| v > 0.0).collect();
            (
                build(|| extract(&x.greater(0.0)?, x)),
                ArrayD::from_shape_vec(IxDyn(&[kept.len()]), kept).unwrap(),
                "extract(x > 0, x)".into(),
            )
        }
        20 => {
            let widths: Vec<(usize, usize)> =
                shape.iter().map(|_| (b.below(3), b.below(3))).collect();
            let grown: usize = shape
                .iter()
                .zip(&widths)
                .map(|(&n, &(p, q))| n + p + q)
                .product();
            let mode = b.below(5);
            if grown > MAX_SIZE || (mode < 4 && shape.contains(&0)) {
                return None;
            }
            let c = b.range(-3, 4) as f64;
            let mut want = r.clone();
            for (a, &(p, q)) in widths.iter().enumerate() {
                want = if mode == 4 {
                    let margin = |w: usize| {
                        let mut s = want.shape().to_vec();
                        s[a] = w;
                        ArrayD::from_elem(IxDyn(&s), c)
                    };
                    let (lo, hi) = (margin(p), margin(q));
                    ndarray::concatenate(Axis(a), &[lo.view(), want.view(), hi.view()]).unwrap()
                } else {
                    pick(&want, a, &pad_positions(mode, shape[a], p, q))
                };
            }
            let pad = match mode {
                0 => PadMode::Edge,
                1 => PadMode::Reflect,
                2 => PadMode::Symmetric,
                3 => PadMode::Wrap,
                _ => PadMode::Constant(c),
            };
            let what = format!("pad {widths:?} {pad:?}");
            (x.pad(&widths, pad), want, what)
        }
        21 if has_axis && n > 0 => {
            let want = r.map_axis(Axis(axis), |lane| {
                // NumPy: the first NaN, else the first largest.
                let mut best = 0;
                for (i, &v) in lane.iter().enumerate() {
                    if v.is_nan() {
                        best = i;
                        break;
                    }
                    if v > lane[best] {
                        best = i;
                    }
                }
                best as f64
            });
            (
                build(|| Ok(x.argmax(Some(axis))?.astype::<f64>())),
                want,
                format!("argmax axis {axis}"),
            )
        }
        22 => {
            let reps: Vec<usize> = shape.iter().map(|_| 1 + b.below(2)).collect();
            let mut want = r.clone();
            for (a, &k) in reps.iter().enumerate() {
                let len = want.shape()[a];
                let pos: Vec<usize> = (0..k * len).map(|i| i % len.max(1)).collect();
                want = pick(&want, a, &pos);
            }
            if want.len() > MAX_SIZE {
                return None;
            }
            (x.tile(&reps), want, format!("tile {reps:?}"))
        }
        23 if nd < 4 && 2 * size <= MAX_SIZE => {
            let at = b.below(nd + 1);
            let neg = r.mapv(|v| -v);
            (
                build(|| stack(&[x, &-x], at)),
                ndarray::stack(Axis(at), &[r.view(), neg.view()]).unwrap(),
                format!("stack [x, -x] axis {at}"),
            )
        }
        24 => {
            let (lo, hi) = (b.range(-6, 1) as f64, b.range(0, 7) as f64);
            (
                x.clip(lo, hi),
                r.mapv(|v| v.clamp(lo, hi)),
                format!("clip {lo} {hi}"),
            )
        }
        25 if has_axis => (
            build(|| x.maximum(&x.flip(Some(&[axis]))?)),
            {
                let f = flipped(r, axis);
                ndarray::Zip::from(r)
                    .and(&f)
                    .map_collect(|&p, &q| np_max(p, q))
            },
            format!("maximum(x, flip(x, {axis}))"),
        ),
        26 if nd >= 2 => {
            let (p, q) = (b.below(nd), b.below(nd));
            let mut want = r.clone();
            want.swap_axes(p, q);
            (
                x.swapaxes(p, q),
                want.as_standard_layout().to_owned(),
                format!("swapaxes {p} {q}"),
            )
        }
        27 => {
            // An axis whose length is known only after computing stays, as in dask.
            let kept: Vec<usize> = (0..nd)
                .filter(|&a| shape[a] != 1 || x.chunks().require_known_axis(a, "").is_err())
                .map(|a| shape[a])
                .collect();
            let want = r
                .as_standard_layout()
                .to_owned()
                .into_shape_with_order(IxDyn(&kept))
                .unwrap();
            (x.squeeze(None), want, "squeeze".into())
        }
        28 => (
            x.compute_chunk_sizes(),
            r.clone(),
            "compute_chunk_sizes".into(),
        ),
        29 if nd >= 2 => {
            let (a1, a2) = (b.below(nd), b.below(nd - 1));
            let a2 = if a2 >= a1 { a2 + 1 } else { a2 };
            let k = b.range(-3, 4);
            let (r0, c0) = ((-k).max(0) as usize, k.max(0) as usize);
            let len = shape[a1]
                .saturating_sub(r0)
                .min(shape[a2].saturating_sub(c0));
            let others: Vec<usize> = (0..nd).filter(|&a| a != a1 && a != a2).collect();
            let mut to: Vec<usize> = others.iter().map(|&a| shape[a]).collect();
            to.push(len);
            let want = ArrayD::from_shape_fn(IxDyn(&to), |i| {
                let mut j = vec![0; nd];
                for (k, &a) in others.iter().enumerate() {
                    j[a] = i[k];
                }
                j[a1] = i[to.len() - 1] + r0;
                j[a2] = i[to.len() - 1] + c0;
                r[IxDyn(&j)]
            });
            (
                x.diagonal(k, a1, a2),
                want,
                format!("diagonal {k} axes {a1} {a2}"),
            )
        }
        30 if has_axis => {
            let mut want = r.clone();
            for (mut out, lane) in want
                .lanes_mut(Axis(axis))
                .into_iter()
                .zip(r.lanes(Axis(axis)))
            {
                let mut order: Vec<usize> = (0..lane.len()).collect();
                order.sort_by(|&p, &q| np_order(lane[p], lane[q]));
                for (dst, src) in out.iter_mut().zip(order) {
                    *dst = src as f64;
                }
            }
            (
                build(|| Ok(x.argsort(axis)?.astype::<f64>())),
                want,
                format!("argsort axis {axis}"),
            )
        }
        31 => {
            let mut v: Vec<f64> = r.iter().copied().collect();
            v.sort_by(|a, b| np_order(*a, *b));
            // NumPy ≥ 2: NaNs are one value (equal_nan=True).
            v.dedup_by(|a, b| same(*a, *b));
            (
                x.unique(),
                ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap(),
                "unique".into(),
            )
        }
        32 if has_axis && small(r) => {
            // x contracted with itself over one axis: the other axes of both, in order.
            let others: Vec<usize> = (0..nd).filter(|&a| a != axis).collect();
            let mut to: Vec<usize> = others.iter().map(|&a| shape[a]).collect();
            to.extend(others.iter().map(|&a| shape[a]));
            if to.iter().product::<usize>() > MAX_SIZE || to.len() > 4 {
                return None;
            }
            let want = ArrayD::from_shape_fn(IxDyn(&to), |i| {
                let (mut p, mut q) = (vec![0; nd], vec![0; nd]);
                for (k, &a) in others.iter().enumerate() {
                    p[a] = i[k];
                    q[a] = i[others.len() + k];
                }
                (0..n)
                    .map(|t| {
                        p[axis] = t;
                        q[axis] = t;
                        r[IxDyn(&p)] * r[IxDyn(&q)]
                    })
                    .sum()
            });
            (
                blockarray::tensordot(x, x, &[axis], &[axis]),
                want,
                format!("tensordot(x, x) over axis {axis}"),
            )
        }
        33 if has_axis && n > 0 => {
            let keep = b.below(2) == 1;
            let mut want = r.fold_axis(Axis(axis), f64::INFINITY, |&a, &v| np_min(a, v));
            if keep {
                want = want.insert_axis(Axis(axis));
            }
            (
                x.min(Some(&[axis]), keep),
                want,
                format!("min axis {axis} keepdims {keep}"),
            )
        }
        34 if nd >= 2 && shape[0] > 0 && shape[1] > 0 => {
            let k = b.below(6);
            let mut pick_in = |len: usize| -> Vec<isize> {
                (0..k)
                    .map(|_| b.range(-(len as isize), len as isize))
                    .collect()
            };
            let (rows, cols) = (pick_in(shape[0]), pick_in(shape[1]));
            let norm = |i: isize, n: usize| i.rem_euclid(n as isize) as usize;
            let mut to = vec![k];
            to.extend_from_slice(&shape[2..]);
            let want = ArrayD::from_shape_fn(IxDyn(&to), |i| {
                let mut j = vec![norm(rows[i[0]], shape[0]), norm(cols[i[0]], shape[1])];
                j.extend((1..to.len()).map(|a| i[a]));
                r[IxDyn(&j)]
            });
            (
                x.vindex(&[&rows, &cols]),
                want,
                format!("vindex {rows:?} {cols:?}"),
            )
        }
        _ => return None,
    };
    match lazy {
        Ok(y) => Some((y, want, what)),
        Err(_) if !x.chunks().is_known() => None,
        Err(e) => panic!("{what} of {shape:?} was refused: {e}"),
    }
}

/// Whether products of two elements, summed over the array, then summed again over up to
/// `MAX_SIZE` elements and doubled by later steps, stay integers below 2^53: exact in any
/// order of summation (contractions and later sums may add in any order).
fn small(r: &ArrayD<f64>) -> bool {
    let m = r
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    m * m * r.len() as f64 * MAX_SIZE as f64 * 256.0 < (1u64 << 53) as f64
}

/// NumPy's sort order: NaN (of either sign) last, `-0.0` equal to `0.0`.
fn np_order(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// NumPy's `maximum` and `max`: NaN propagates.
fn np_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// NumPy's `minimum` and `min`: NaN propagates.
fn np_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Equal, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Exact equality (NaN equal to NaN), shapes included.
fn check(
    got: &ArrayD<f64>,
    want: &ArrayD<f64>,
    what: &str,
    log: &[String],
) -> Result<(), TestCaseError> {
    prop_assert!(
        got.shape() == want.shape() && got.iter().zip(want.iter()).all(|(a, b)| same(*a, *b)),
        "{what} differs after {log:#?}:\n got {got:?}\nwant {want:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn chains_of_operations_match_ndarray(
        shape in proptest::collection::vec(0usize..8, 0..=3),
        seed in any::<u64>(),
        steps in proptest::collection::vec((any::<u8>(), any::<u64>()), 1..8),
        threaded in any::<bool>(),
        specials in any::<bool>(),
    ) {
        let s = scheduler(threaded);
        let mut r = data(&shape, seed);
        if specials {
            // About one element in eight NaN, inf or -inf: NumPy's rules for them through
            // every step (propagation, sort order, argmax, unique).
            let mut b = Bits(seed ^ 2);
            r.mapv_inplace(|v| match b.below(24) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => v,
            });
        }
        let mut x = BlockArray::from_array(r.clone(), Bits(seed).chunking(&shape)).unwrap();
        let mut log = vec![format!("from_array {shape:?} chunks {:?}", x.chunks())];
        for &(kind, param) in &steps {
            if let Some((y, want, what)) = apply(kind, param, &x, &r) {
                log.push(what);
                if y.chunks().is_known() {
                    prop_assert_eq!(y.shape(), want.shape(), "shape after {:#?}", log);
                }
                x = y;
                r = want;
            }
        }
        check(&x.compute_with(&*s).unwrap(), &r, "result", &log)?;
        // A lazy slice of the end result: slice pushdown through every step.
        // (Positions along lengths known only after computing are refused, as in dask.)
        let known = x.chunks().is_known();
        if let Some(&n) = r.shape().first().filter(|&&n| n > 0 && known) {
            let i = Bits(seed ^ 1).below(n);
            let mut args = vec![SliceArg::FULL; r.ndim()];
            args[0] = SliceArg::Index(i as isize);
            let got = x.slice(&args).unwrap().compute_with(&*s).unwrap();
            check(&got, &r.index_axis(Axis(0), i).to_owned(), "row {i}", &log)?;
        }
        // A reduction of the end result, which fuses into the chain's last tasks.
        let total = x.sum(None, false).unwrap().compute_with(&*s).unwrap();
        prop_assert!(same(total.sum(), r.sum()), "total {} != {} after {:#?}", total.sum(), r.sum(), log);
    }
}
