//! Value-dependent operations (`where`, `isin`, `searchsorted`, `digitize`, `bincount`,
//! `histogram`, `histogramdd`, `unique`) against references written as plain loops over an
//! in-memory ndarray following NumPy's definitions, over random shapes, random irregular
//! chunkings and both schedulers; bad inputs; keys that hash every parameter.

use blockarray::{
    Bins, BlockArray, ErrorKind, Side, UniqueOptions, bincount, bincount_weighted, concatenate,
    digitize, histogram, histogramdd, searchsorted, where_indices,
};
use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use std::cmp::Ordering;

mod common;
use common::{arb_chunks, cuts_to_chunks, scheduler};

/// Deterministic small integers in `[lo, lo + span)` stored as floats, with NaN where
/// `nan_every` divides the draw (never when 0).
fn data(shape: &[usize], seed: u64, lo: i64, span: u64, nan_every: u64) -> ArrayD<f64> {
    let mut i = 0u64;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        i += 1;
        let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let r = z >> 33;
        if nan_every > 0 && r.is_multiple_of(nan_every) {
            f64::NAN
        } else {
            ((r >> 5) % span) as i64 as f64 + lo as f64
        }
    })
}

/// Shape (0-d to `max_nd`-d, axes up to `max_len`), a chunking, a seed, a scheduler choice.
type Case = (Vec<usize>, Vec<Vec<usize>>, u64, bool);

fn arb_case(min_nd: usize, max_nd: usize, max_len: usize) -> impl Strategy<Value = Case> {
    proptest::collection::vec(0usize..=max_len, min_nd..=max_nd).prop_flat_map(|shape| {
        (
            Just(shape.clone()),
            arb_chunks(shape),
            any::<u64>(),
            any::<bool>(),
        )
    })
}

fn arr(d: &ArrayD<f64>, chunks: &[Vec<usize>]) -> BlockArray<f64> {
    BlockArray::from_array(d.clone(), chunks.to_vec()).unwrap()
}

/// NumPy's sort order: NaN last.
fn order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn same_all(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same(x, y))
}

fn flat<T: Clone>(a: ArrayD<T>) -> Vec<T> {
    a.iter().cloned().collect()
}

/// NumPy's histogram edges for `n` bins over `[lo, hi]` (`_get_outer_edges` + `linspace`).
fn ref_edges(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let step = (hi - lo) / n as f64;
    let mut e: Vec<f64> = (0..=n).map(|i| i as f64 * step + lo).collect();
    e[n] = hi;
    e
}

/// The bin of `v` by NumPy's definition, scanning the bins in order.
fn ref_bin(edges: &[f64], v: f64) -> Option<usize> {
    let n = edges.len() - 1;
    (0..n).find(|&i| edges[i] <= v && (v < edges[i + 1] || (i == n - 1 && v == edges[n])))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn searchsorted_matches_counting(
        (vshape, vchunks, seed, thr) in arb_case(0, 3, 5),
        alen in 0usize..12,
        acuts in proptest::collection::btree_set(0usize..12, 0..4),
        left in any::<bool>(),
    ) {
        let mut a = flat(data(&[alen], seed ^ 7, -4, 9, 5));
        a.sort_by(|x, y| order(*x, *y));
        let v = data(&vshape, seed, -5, 11, 6);
        let side = if left { Side::Left } else { Side::Right };
        let ab = BlockArray::from_array(ndarray::Array1::from(a.clone()), vec![cuts_to_chunks(alen, &acuts)]).unwrap();
        let got = searchsorted(&ab, &arr(&v, &vchunks), side).unwrap().compute_with(&*scheduler(thr)).unwrap();
        let want = v.mapv(|x| a.iter().filter(|&&e| match side {
            Side::Left => order(e, x) == Ordering::Less,
            Side::Right => order(e, x) != Ordering::Greater,
        }).count() as i64);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn digitize_matches_numpy_definition(
        (shape, chunks, seed, thr) in arb_case(0, 3, 5),
        mut bins in proptest::collection::vec(-4i64..5, 0..6),
        decreasing in any::<bool>(),
        right in any::<bool>(),
    ) {
        bins.sort_unstable();
        if decreasing {
            bins.reverse();
        }
        let bins: Vec<f64> = bins.into_iter().map(|b| b as f64).collect();
        let x = data(&shape, seed, -6, 13, 0);
        let got = digitize(&arr(&x, &chunks), &bins, right).unwrap().compute_with(&*scheduler(thr)).unwrap();
        // NumPy's documented conditions, counted directly.
        let want = x.mapv(|v| {
            let c = |f: &dyn Fn(f64) -> bool| bins.iter().filter(|&&b| f(b)).count() as i64;
            match (decreasing && bins.first() != bins.last(), right) {
                (false, false) => c(&|b| b <= v),
                (false, true) => c(&|b| b < v),
                (true, false) => c(&|b| b > v),
                (true, true) => c(&|b| b >= v),
            }
        });
        prop_assert_eq!(got, want);
    }

    #[test]
    fn isin_matches_equality(
        (shape, chunks, seed, thr) in arb_case(0, 3, 5),
        (tshape, tchunks, tseed, _) in arb_case(0, 2, 5),
    ) {
        let x = data(&shape, seed, -5, 11, 7);
        let test = data(&tshape, tseed, -5, 11, 4);
        let got = arr(&x, &chunks).isin(&arr(&test, &tchunks)).unwrap().compute_with(&*scheduler(thr)).unwrap();
        let want = x.mapv(|v| test.iter().any(|&t| t == v));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn bincount_matches_loop(
        (shape, chunks, seed, thr) in arb_case(1, 1, 14),
        minlength in 0usize..12,
        weighted in any::<bool>(),
        wcuts in proptest::collection::btree_set(0usize..14, 0..4),
    ) {
        let x = data(&shape, seed, 0, 9, 0).mapv(|v| v as i64);
        let xb = BlockArray::from_array(x.clone(), chunks.clone()).unwrap();
        let n = x.iter().map(|&v| v as usize + 1).max().unwrap_or(0).max(minlength);
        if weighted {
            let w = data(&shape, seed ^ 3, -3, 7, 0);
            let wb = arr(&w, &[cuts_to_chunks(shape[0], &wcuts)]);
            let got = bincount_weighted(&xb, &wb, minlength).unwrap().compute_with(&*scheduler(thr)).unwrap();
            let mut want = vec![0.0; n];
            for (&v, &w) in x.iter().zip(w.iter()) {
                want[v as usize] += w;
            }
            prop_assert_eq!(flat(got), want);
        } else {
            let got = bincount(&xb, minlength).unwrap().compute_with(&*scheduler(thr)).unwrap();
            let mut want = vec![0i64; n];
            for &v in x.iter() {
                want[v as usize] += 1;
            }
            prop_assert_eq!(flat(got), want);
        }
    }

    #[test]
    fn histogram_matches_numpy_definition(
        (shape, chunks, seed, thr) in arb_case(0, 3, 5),
        nbins in 1usize..6,
        edges in proptest::option::of(proptest::collection::vec(-6i64..7, 1..6)),
        range in proptest::option::of((-6i64..3, 0i64..7)),
        weighted in any::<bool>(),
        density in any::<bool>(),
    ) {
        let nan = if range.is_some() || edges.is_some() { 5 } else { 0 };
        let x = data(&shape, seed, -5, 11, nan);
        let range = range.map(|(lo, extra)| (lo as f64, (lo + extra) as f64));
        let (bins, e) = match edges {
            Some(mut e) => {
                e.sort_unstable();
                let e: Vec<f64> = e.into_iter().map(|v| v as f64).collect();
                (Bins::Edges(e.clone()), e)
            }
            None => {
                let (lo, hi) = range.unwrap_or_else(|| {
                    if x.is_empty() {
                        (0.0, 1.0)
                    } else {
                        (x.iter().cloned().fold(f64::INFINITY, f64::min),
                         x.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
                    }
                });
                (Bins::Count(nbins), ref_edges(nbins, lo, hi))
            }
        };
        let w = data(&shape, seed ^ 11, 0, 4, 0);
        let wb = arr(&w, &chunks);
        let (counts, edges_got) = histogram(&arr(&x, &chunks), bins, range, weighted.then_some(&wb), density).unwrap();
        let s = scheduler(thr);
        let mut want = vec![0.0; e.len() - 1];
        for (&v, &w) in x.iter().zip(w.iter()) {
            if let Some(i) = ref_bin(&e, v) {
                want[i] += if weighted { w } else { 1.0 };
            }
        }
        if density {
            let total: f64 = want.iter().sum();
            for (i, c) in want.iter_mut().enumerate() {
                *c = *c / (e[i + 1] - e[i]) / total;
            }
        }
        prop_assert!(same_all(&flat(edges_got.compute_with(&*s).unwrap()), &e));
        let got = flat(counts.compute_with(&*s).unwrap());
        prop_assert!(same_all(&got, &want), "{:?} != {:?}", got, want);
    }

    #[test]
    fn histogramdd_matches_numpy_definition(
        n in 0usize..14,
        d in 1usize..4,
        rcuts in proptest::collection::btree_set(0usize..14, 0..4),
        dcuts in proptest::collection::btree_set(0usize..3, 0..2),
        nbins in proptest::collection::vec(1usize..4, 3),
        use_edges in any::<bool>(),
        weighted in any::<bool>(),
        density in any::<bool>(),
        seed in any::<u64>(),
        thr in any::<bool>(),
    ) {
        let x = data(&[n, d], seed, -3, 7, 0);
        let chunks = vec![cuts_to_chunks(n, &rcuts), cuts_to_chunks(d, &dcuts)];
        let mut edges = Vec::new();
        let mut bins = Vec::new();
        for (k, &nb) in nbins.iter().enumerate().take(d) {
            if use_edges && k % 2 == 0 {
                let e: Vec<f64> = (0..=nb).map(|i| -2.0 + 1.5 * i as f64).collect();
                bins.push(Bins::Edges(e.clone()));
                edges.push(e);
            } else {
                let col = x.index_axis(ndarray::Axis(1), k);
                let (lo, hi) = if n == 0 {
                    (0.0, 1.0)
                } else {
                    (col.iter().cloned().fold(f64::INFINITY, f64::min),
                     col.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
                };
                bins.push(Bins::Count(nb));
                edges.push(ref_edges(nb, lo, hi));
            }
        }
        let w = data(&[n], seed ^ 5, 0, 3, 0);
        let wb = arr(&w, &[cuts_to_chunks(n, &rcuts)]);
        let (counts, got_edges) = histogramdd(&arr(&x, &chunks), &bins, None, weighted.then_some(&wb), density).unwrap();
        let s = scheduler(thr);
        let shape: Vec<usize> = edges.iter().map(|e| e.len() - 1).collect();
        let mut want = ArrayD::<f64>::zeros(IxDyn(&shape));
        for r in 0..n {
            let at: Option<Vec<usize>> = (0..d).map(|k| ref_bin(&edges[k], x[[r, k]])).collect();
            if let Some(at) = at {
                want[IxDyn(&at)] += if weighted { w[r] } else { 1.0 };
            }
        }
        if density {
            let total: f64 = want.sum();
            for (ix, c) in want.indexed_iter_mut() {
                for k in 0..d {
                    *c /= edges[k][ix[k] + 1] - edges[k][ix[k]];
                }
                *c /= total;
            }
        }
        for k in 0..d {
            prop_assert!(same_all(&flat(got_edges[k].compute_with(&*s).unwrap()), &edges[k]));
        }
        let got = counts.compute_with(&*s).unwrap();
        prop_assert_eq!(got.shape(), want.shape());
        prop_assert!(same_all(&flat(got), &flat(want)));
    }

    #[test]
    fn unique_matches_sorting(
        (shape, chunks, seed, thr) in arb_case(0, 3, 5),
        index in any::<bool>(),
        inverse in any::<bool>(),
        counts in any::<bool>(),
    ) {
        let x = data(&shape, seed, -3, 6, 5);
        let u = arr(&x, &chunks).unique_with(UniqueOptions { index, inverse, counts }).unwrap();
        let s = scheduler(thr);
        // Reference: stable sort of (value, flat index), runs of equal values (NaNs one run).
        let mut pairs: Vec<(f64, usize)> = x.iter().cloned().zip(0..).collect();
        pairs.sort_by(|a, b| order(a.0, b.0));
        let mut vals: Vec<f64> = Vec::new();
        let mut first: Vec<i64> = Vec::new();
        let mut cnt: Vec<i64> = Vec::new();
        for (v, i) in pairs {
            if vals.last().is_some_and(|&l| same(l, v)) {
                *cnt.last_mut().unwrap() += 1;
            } else {
                vals.push(v);
                first.push(i as i64);
                cnt.push(1);
            }
        }
        prop_assert!(same_all(&flat(u.values.compute_with(&*s).unwrap()), &vals));
        prop_assert_eq!(u.index.is_some(), index);
        if let Some(ix) = u.index {
            prop_assert_eq!(flat(ix.compute_with(&*s).unwrap()), first);
        }
        if let Some(c) = u.counts {
            prop_assert_eq!(flat(c.compute_with(&*s).unwrap()), cnt);
        }
        if let Some(inv) = u.inverse {
            let want = x.mapv(|v| vals.iter().position(|&u| same(u, v)).unwrap() as i64);
            prop_assert_eq!(inv.compute_with(&*s).unwrap(), want);
        }
    }

    #[test]
    fn where_indices_are_nonzero(
        (shape, chunks, seed, thr) in arb_case(1, 3, 5),
    ) {
        let x = data(&shape, seed, -1, 3, 0);
        let got = where_indices(&arr(&x, &chunks)).unwrap();
        let s = scheduler(thr);
        prop_assert_eq!(got.len(), shape.len());
        let hits: Vec<Vec<usize>> = x.indexed_iter().filter(|(_, v)| **v != 0.0).map(|(i, _)| i.slice().to_vec()).collect();
        for (k, g) in got.iter().enumerate() {
            let want: Vec<i64> = hits.iter().map(|h| h[k] as i64).collect();
            prop_assert_eq!(flat(g.compute_with(&*s).unwrap()), want);
        }
    }
}

/// Value-dependent inputs (unknown chunk sizes) work where positions are not needed.
#[test]
fn operations_on_masked_arrays() {
    let x = data(&[7, 5], 42, -4, 9, 0);
    let xb = arr(&x, &[vec![3, 4], vec![2, 3]]);
    let m = xb.mask(&xb.greater(0.0).unwrap()).unwrap();
    assert!(!m.chunks().is_known());
    let pos: Vec<f64> = x.iter().cloned().filter(|&v| v > 0.0).collect();
    let mut uniq = pos.clone();
    uniq.sort_by(|a, b| a.partial_cmp(b).unwrap());
    uniq.dedup();
    assert_eq!(flat(m.unique().unwrap().compute().unwrap()), uniq);
    let (c, _) = histogram(&m, Bins::Count(4), Some((0.0, 4.0)), None, false).unwrap();
    assert_eq!(
        c.sum(None, false).unwrap().compute().unwrap()[[]],
        pos.len() as f64
    );
    let test = BlockArray::from_array(ndarray::arr1(&[1.0, 3.0]), 1).unwrap();
    let hits = m.isin(&test).unwrap().compute().unwrap();
    assert_eq!(
        flat(hits),
        pos.iter()
            .map(|&v| v == 1.0 || v == 3.0)
            .collect::<Vec<_>>()
    );
    let sorted = BlockArray::from_array(ndarray::arr1(&[0.5, 2.0, 2.0, 3.5]), 3).unwrap();
    let at = searchsorted(&sorted, &m, Side::Right).unwrap();
    assert!(!at.chunks().is_known());
    let want: Vec<i64> = pos
        .iter()
        .map(|&v| [0.5, 2.0, 2.0, 3.5].iter().filter(|&&e| e <= v).count() as i64)
        .collect();
    assert_eq!(flat(at.compute().unwrap()), want);
    let bins = digitize(&m, &[0.5, 2.0, 2.0, 3.5], false).unwrap();
    assert_eq!(flat(bins.compute().unwrap()), want);
    let counts = bincount(&m.astype::<i64>(), 0).unwrap();
    let known = counts.compute_chunk_sizes().unwrap();
    assert!(known.chunks().is_known());
    let top = pos.iter().cloned().fold(0.0, f64::max) as usize;
    assert_eq!(known.shape(), &[top + 1]);
    // The values, counts and first indices of one unique share an origin: they combine.
    let all = xb
        .unique_with(UniqueOptions {
            counts: true,
            ..Default::default()
        })
        .unwrap();
    let weighted = (&all.values * &all.counts.unwrap().astype::<f64>()).unwrap();
    assert_eq!(
        weighted.sum(None, false).unwrap().compute().unwrap()[[]],
        x.sum()
    );
}

/// Arrays of unknown lengths are only combined when their lengths are equal by construction:
/// a block function may shorten blocks, so its result's lengths are its own; a concatenation's
/// lengths include its known parts; and a block function is not told positions that are not
/// known yet (NumPy raises "could not be broadcast" where these had given values).
#[test]
fn unknown_lengths_are_not_equated_unless_equal_by_construction() {
    let x = BlockArray::arange(0i64, 6, 1, 3).unwrap();
    let y = x.mask(&x.greater(0).unwrap()).unwrap();
    let first = y
        .map_blocks("first", None, |b, _| Ok(b.select(ndarray::Axis(0), &[0])))
        .unwrap();
    let e = (&y + &first).unwrap_err();
    assert!(e.to_string().contains("compute_chunk_sizes"), "{e}");
    // A function that keeps lengths, computed with its input after their sizes are known.
    let first = first.compute_chunk_sizes().unwrap();
    assert_eq!(
        first.compute().unwrap().into_raw_vec_and_offset().0,
        vec![1, 3]
    );
    // Positions along an unknown axis are not guessed from the bounds.
    let starts = y
        .map_blocks("start", None, |b, info| {
            Ok(ArrayD::from_elem(
                b.raw_dim(),
                (info.start[0] == usize::MAX) as i64,
            ))
        })
        .unwrap();
    assert!(starts.compute().unwrap().iter().all(|&v| v == 1));
    // Concatenations of the same unknown part with known parts of other lengths.
    let z = BlockArray::arange(0i64, 3, 1, 3).unwrap();
    let u = z.mask(&z.greater(1).unwrap()).unwrap();
    let (k3, k6) = (
        BlockArray::<i64>::zeros(&[3], 3).unwrap(),
        BlockArray::<i64>::zeros(&[6], 3).unwrap(),
    );
    let r1 = concatenate(&[&concatenate(&[&k3, &u], 0).unwrap(), &k6], 0).unwrap();
    let r2 = concatenate(&[&concatenate(&[&k6, &u], 0).unwrap(), &k3], 0).unwrap();
    assert!((&r1 + &r2).is_err());
    // The same construction twice is still equal.
    let r3 = concatenate(&[&concatenate(&[&k3, &u], 0).unwrap(), &k6], 0).unwrap();
    assert_eq!((&r1 + &r3).unwrap().compute().unwrap().len(), 10);
}

/// `bincount`'s length has no bound before the run (its stored length is `minlength`, a
/// planning guess), so block functions, elementwise operations and reductions on it must take
/// blocks longer than the stored length.
#[test]
fn bincount_results_longer_than_minlength_flow_through_operations() {
    let x = BlockArray::from_array(ndarray::arr1(&[0i64, 9, 9, 3, 2]), 2).unwrap();
    for minlength in [0, 4] {
        let c = bincount(&x, minlength).unwrap();
        let want = vec![1i64, 0, 1, 1, 0, 0, 0, 0, 0, 2];
        let doubled = c
            .map_blocks("doubled", None, |b, _| Ok(b.mapv(|v| 2 * v)))
            .unwrap();
        assert_eq!(
            flat(doubled.compute().unwrap()),
            want.iter().map(|v| 2 * v).collect::<Vec<_>>()
        );
        let fused = (&(&c * 3) + &c).unwrap();
        assert_eq!(
            flat(fused.compute().unwrap()),
            want.iter().map(|v| 4 * v).collect::<Vec<_>>()
        );
        assert_eq!(c.sum(None, false).unwrap().compute().unwrap()[[]], 5);
        assert_eq!(c.compute_chunk_sizes().unwrap().shape(), &[10]);
    }
}

fn kind<T: std::fmt::Debug>(r: blockarray::Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.to_string())
}

#[test]
fn bad_inputs_are_errors_naming_them() {
    let x = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0, 3.0]), 2).unwrap();
    let m2 = BlockArray::from_array(ndarray::arr2(&[[1.0, 2.0]]), [1, 1]).unwrap();
    let (k, msg) = kind(searchsorted(&m2, &x, Side::Left));
    assert_eq!(k, ErrorKind::Shape);
    assert!(msg.contains("(1, 2)"), "{msg}");
    let (k, msg) = kind(digitize(&x, &[1.0, 3.0, 2.0], false));
    assert_eq!(k, ErrorKind::Unsupported);
    assert!(
        msg.contains("monoton") && msg.contains("[1.0, 3.0, 2.0]"),
        "{msg}"
    );
    let (k, msg) = kind(bincount(&x, 0));
    assert_eq!(k, ErrorKind::Type);
    assert!(msg.contains("float64"), "{msg}");
    let i2 = BlockArray::from_array(ndarray::arr2(&[[1i64, 2]]), [1, 1]).unwrap();
    let (k, _) = kind(bincount(&i2, 0));
    assert_eq!(k, ErrorKind::Shape);
    let neg = BlockArray::from_array(ndarray::arr1(&[1i64, 0, 4, -3, 2]), 2).unwrap();
    let msg = bincount(&neg, 0)
        .unwrap()
        .compute()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("-3") && msg.contains("position 3"), "{msg}");
    let w = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0]), 2).unwrap();
    let (k, msg) = kind(bincount_weighted(&neg, &w, 0));
    assert_eq!(k, ErrorKind::Shape);
    assert!(msg.contains("(5,)") && msg.contains("(2,)"), "{msg}");
    // Histograms.
    let (k, msg) = kind(histogram(&x, 0, None, None, false));
    assert_eq!(k, ErrorKind::Unsupported);
    assert!(msg.contains("positive"), "{msg}");
    let (_, msg) = kind(histogram(&x, 3, Some((2.0, 1.0)), None, false));
    assert!(msg.contains("max must be larger than min"), "{msg}");
    let (_, msg) = kind(histogram(&x, 3, Some((0.0, f64::INFINITY)), None, false));
    assert!(msg.contains("not finite"), "{msg}");
    let (_, msg) = kind(histogram(&x, vec![0.0, 2.0, 1.0], None, None, false));
    assert!(msg.contains("monoton"), "{msg}");
    let (_, msg) = kind(histogram(&x, vec![], None, None, false));
    assert!(msg.contains("at least one edge"), "{msg}");
    let (k, _) = kind(histogram(&x, 3, None, Some(&w), false));
    assert_eq!(k, ErrorKind::Shape);
    let with_nan = BlockArray::from_array(ndarray::arr1(&[1.0, f64::NAN, 3.0]), 2).unwrap();
    let (counts, edges) = histogram(&with_nan, 3, None, None, false).unwrap();
    for msg in [
        counts.compute().unwrap_err().to_string(),
        edges.compute().unwrap_err().to_string(),
    ] {
        assert!(
            msg.contains("autodetected range") && msg.contains("not finite"),
            "{msg}"
        );
    }
    // histogramdd.
    let (k, msg) = kind(histogramdd(&x, &[Bins::Count(2)], None, None, false));
    assert_eq!(k, ErrorKind::Shape);
    assert!(msg.contains("2-d"), "{msg}");
    let s = BlockArray::from_array(ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0]]), [1, 1]).unwrap();
    let (_, msg) = kind(histogramdd(
        &s,
        &[2.into(), 2.into(), 2.into()],
        None,
        None,
        false,
    ));
    assert!(
        msg.contains("3 bins") && msg.contains("2 dimensions"),
        "{msg}"
    );
    let (_, msg) = kind(histogramdd(
        &s,
        &[2.into()],
        Some(&[(0.0, 1.0)]),
        None,
        false,
    ));
    assert!(msg.contains("1 ranges"), "{msg}");
    let (k, _) = kind(histogramdd(&s, &[2.into()], None, Some(&x), false));
    assert_eq!(k, ErrorKind::Shape);
    // unique's first indices need positions.
    let masked = x.mask(&x.greater(1.0).unwrap()).unwrap();
    let (k, msg) = kind(masked.unique_with(UniqueOptions {
        index: true,
        ..Default::default()
    }));
    assert_eq!(k, ErrorKind::Chunks);
    assert!(msg.contains("compute_chunk_sizes"), "{msg}");
}

/// A `minlength` whose counts would overflow a byte count is refused when the expression is
/// built.
#[test]
fn bincount_minlength_overflowing_bytes_is_an_error() {
    let i = BlockArray::from_array(ndarray::arr1(&[1i64, 2]), 1).unwrap();
    let w = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0]), 1).unwrap();
    for m in [usize::MAX, 1 << 61] {
        for (k, msg) in [kind(bincount(&i, m)), kind(bincount_weighted(&i, &w, m))] {
            assert_eq!(k, ErrorKind::Memory);
            assert!(
                msg.contains("minlength") && msg.contains(&m.to_string()),
                "{msg}"
            );
        }
    }
}

/// Bins whose counts or edges would overflow a byte count are refused when the expression is
/// built.
#[test]
fn histogram_bins_overflowing_bytes_are_errors() {
    let x = BlockArray::from_array(ndarray::arr1(&[0.25, 0.5]), 1).unwrap();
    let n = (1usize << 61) - 1;
    let (k, msg) = kind(histogram(&x, Bins::Count(n), Some((0.0, 1.0)), None, false));
    assert_eq!(k, ErrorKind::Memory);
    assert!(msg.contains(&n.to_string()), "{msg}");
    // No bins in one dimension: no counts, but the other's edges are still too many.
    let s = BlockArray::from_array(ndarray::arr2(&[[0.25, 0.5]]), [1, 2]).unwrap();
    let (k, msg) = kind(histogramdd(
        &s,
        &[Bins::Edges(vec![0.0]), Bins::Count(n)],
        Some(&[(0.0, 1.0), (0.0, 1.0)]),
        None,
        false,
    ));
    assert_eq!(k, ErrorKind::Memory);
    assert!(
        msg.contains("edges") && msg.contains(&n.to_string()),
        "{msg}"
    );
    // No bins in one dimension and 2^80 in the others: an error (the bin strides overflowed,
    // a panic).
    let s = BlockArray::from_array(ndarray::Array2::<f64>::zeros((4, 3)), [4, 3]).unwrap();
    let huge = Bins::Count(1 << 40);
    let (_, msg) = kind(histogramdd(
        &s,
        &[Bins::Edges(vec![0.0]), huge.clone(), huge],
        Some(&[(0.0, 1.0); 3]),
        None,
        false,
    ));
    assert!(msg.contains("1099511627776"), "{msg}");
    // 2^40 blocks reduced into one axis of partials: refused when built (a list of 2^40
    // block lengths aborted the process).
    let big = BlockArray::<f64>::zeros(&[1 << 20, 1 << 20], 1).unwrap();
    let (k, msg) = kind(histogram(&big, 10, Some((0.0, 1.0)), None, false));
    assert_eq!(k, ErrorKind::Memory);
    assert!(msg.contains("(1048576, 1048576) blocks"), "{msg}");
}

/// With explicit edges a range is not read, as in NumPy (a bad one was an error).
#[test]
fn histogram_edges_ignore_the_range() {
    let x = BlockArray::from_array(ndarray::arr1(&[0.5, 1.5, 1.7, 9.0]), 3).unwrap();
    let edges = || Bins::Edges(vec![0.0, 1.0, 2.0]);
    let expected = histogram(&x, edges(), None, None, false)
        .unwrap()
        .0
        .compute()
        .unwrap();
    assert_eq!(
        expected.iter().copied().collect::<Vec<f64>>(),
        vec![1.0, 2.0]
    );
    for range in [(5.0, 1.0), (f64::NAN, 1.0), (0.0, f64::INFINITY)] {
        let (counts, _) = histogram(&x, edges(), Some(range), None, false).unwrap();
        assert_eq!(counts.compute().unwrap(), expected, "{range:?}");
    }
    let s = BlockArray::from_array(ndarray::arr2(&[[0.5, 3.0], [1.5, 1.0]]), [1, 2]).unwrap();
    let (counts, _) = histogramdd(
        &s,
        &[Bins::Count(2), Bins::Edges(vec![0.0, 2.0, 4.0])],
        Some(&[(0.0, 2.0), (9.0, -9.0)]),
        None,
        false,
    )
    .unwrap();
    assert_eq!(
        counts.compute().unwrap(),
        ndarray::arr2(&[[0.0, 1.0], [1.0, 0.0]]).into_dyn()
    );
}

/// A range too wide (or too narrow) for finite-sized bins is NumPy's "too many bins" error:
/// when the expression is built for a given range, when run for an autodetected one.
#[test]
fn histogram_range_without_finite_bins_is_an_error() {
    let x = BlockArray::from_array(ndarray::arr1(&[-1e308, 0.0, 1e308]), 2).unwrap();
    for range in [(-1e308, 1e308), (1e308, 1e308), (0.0, 5e-324)] {
        let (k, msg) = kind(histogram(&x, 10, Some(range), None, false));
        assert_eq!(k, ErrorKind::Unsupported);
        assert!(
            msg.contains("too many bins") && msg.contains("10 finite-sized bins"),
            "{msg}"
        );
    }
    let s = BlockArray::from_array(ndarray::arr2(&[[0.0, 1.0]]), [1, 2]).unwrap();
    let (_, msg) = kind(histogramdd(
        &s,
        &[Bins::Count(2)],
        Some(&[(0.0, 1.0), (-1e308, 1e308)]),
        None,
        false,
    ));
    assert!(
        msg.contains("too many bins") && msg.contains("dimension 1"),
        "{msg}"
    );
    let (counts, _) = histogram(&x, 10, None, None, false).unwrap();
    let msg = counts.compute().unwrap_err().to_string();
    assert!(msg.contains("too many bins"), "{msg}");
    // Bins narrower than the spacing of the floats near them: equal edges, into which values
    // would be counted in the wrong bins (NumPy: the same error).
    let near = BlockArray::from_array(ndarray::arr1(&[1.0, 1.0 + f64::EPSILON]), 1).unwrap();
    for range in [None, Some((1.0, 1.0 + 4.0 * f64::EPSILON))] {
        let msg = match histogram(&near, 10, range, None, false) {
            Err(e) => e.to_string(),
            Ok((counts, _)) => counts.compute().unwrap_err().to_string(),
        };
        assert!(
            msg.contains("too many bins") && msg.contains("10 finite-sized bins"),
            "{range:?}: {msg}"
        );
    }
    // Nanosecond timestamps: large values, small differences.
    let t0 = 1.7e18 as i64;
    let stamps = BlockArray::from_array(ndarray::arr1(&[t0, t0 + 100, t0 + 1000]), 2).unwrap();
    let (counts, _) = histogram(&stamps, 10, None, None, false).unwrap();
    assert!(counts.compute().is_err());
}

/// Equal keys mean equal work: every parameter changes the key; equal calls share it.
#[test]
fn keys_hash_every_parameter() {
    let x = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0, 3.0]), 2).unwrap();
    let a = BlockArray::from_array(ndarray::arr1(&[1.0, 2.0]), 1).unwrap();
    let name = |r: blockarray::Result<BlockArray<i64>>| r.unwrap().name().to_string();
    assert_eq!(
        name(searchsorted(&a, &x, Side::Left)),
        name(searchsorted(&a, &x, Side::Left))
    );
    assert_ne!(
        name(searchsorted(&a, &x, Side::Left)),
        name(searchsorted(&a, &x, Side::Right))
    );
    assert_ne!(
        name(digitize(&x, &[1.0, 2.0], false)),
        name(digitize(&x, &[1.0, 2.5], false))
    );
    assert_ne!(
        name(digitize(&x, &[1.0, 2.0], false)),
        name(digitize(&x, &[1.0, 2.0], true))
    );
    let i = x.astype::<i64>();
    assert_ne!(name(bincount(&i, 0)), name(bincount(&i, 4)));
    let h = |bins: Bins, range, density| {
        let (c, e) = histogram(&x, bins, range, None, density).unwrap();
        (c.name().to_string(), e.name().to_string())
    };
    let base = h(Bins::Count(3), None, false);
    assert_eq!(base, h(Bins::Count(3), None, false));
    for other in [
        h(Bins::Count(4), None, false),
        h(Bins::Count(3), Some((0.0, 4.0)), false),
        h(Bins::Count(3), None, true),
        h(Bins::Edges(vec![1.0, 2.0, 3.0, 4.0]), None, false),
    ] {
        assert_ne!(base.0, other.0);
    }
    let u = |o: UniqueOptions| x.unique_with(o).unwrap().values.name().to_string();
    assert_ne!(
        u(UniqueOptions::default()),
        u(UniqueOptions {
            counts: true,
            ..Default::default()
        })
    );
}

/// The seed tutorial's `x[x > 0].mean()` runs under a memory limit below the size of `x`
/// (the `masked_mean` example at a test's scale), on both schedulers, and agrees with a
/// streamed reference (one block row at a time, a plain loop).
#[test]
fn masked_mean_runs_under_a_memory_limit_below_the_array() {
    use blockarray::{Computation, random::Rng, s};
    let x: BlockArray<f64> = Rng::new(3)
        .normal(0.0, 1.0, &[2048, 1024], [128, 1024])
        .unwrap();
    let limit = 4 << 20;
    assert!(limit < x.nbytes());
    let mean = x
        .mask(&x.greater(0.0).unwrap())
        .unwrap()
        .mean(None, false)
        .unwrap();
    let (mut sum, mut count) = (0.0f64, 0usize);
    for start in (0..2048).step_by(128) {
        let slab = x
            .slice(s![start..start + 128, ..])
            .unwrap()
            .compute()
            .unwrap();
        for &v in slab.iter().filter(|&&v| v > 0.0) {
            sum += v;
            count += 1;
        }
    }
    let want = sum / count as f64;
    for threaded in [false, true] {
        let mut c = Computation::new();
        let h = c.add(&mean);
        c.allowed_mem(Some(limit));
        let (mut out, stats) = c
            .run_with(&*scheduler(threaded), &dag_core::NoCallbacks)
            .unwrap();
        assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
        let got = out.take(h).unwrap()[[]];
        assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    }
}

/// Trees hold partials that grow with the result, not with the input: `unique`, `bincount`
/// and `histogram` of an array run under a memory limit below its size, and agree with the
/// same operations on the array in memory.
#[test]
fn trees_run_under_a_memory_limit_below_the_array() {
    use blockarray::{Computation, random::Rng};
    let x: BlockArray<i64> = Rng::new(9)
        .integers(0, 50, &[2048, 1024], [128, 1024])
        .unwrap();
    let limit = 4 << 20;
    assert!(limit < x.nbytes());
    let whole = x.compute().unwrap();
    let u = x
        .unique_with(UniqueOptions {
            counts: true,
            ..Default::default()
        })
        .unwrap();
    let b = bincount(&x.ravel().unwrap(), 0).unwrap();
    // (An autodetected range reads `x` twice: below 4 GiB it is held between the passes, so
    // that case is tested in the module's unit tests, with its re-read threshold lowered.)
    let (h, _) = histogram(&x, Bins::Count(5), Some((0.0, 50.0)), None, false).unwrap();
    let mut want = vec![0i64; 50];
    for &v in whole.iter() {
        want[v as usize] += 1;
    }
    let present: Vec<i64> = (0..50).filter(|&v| want[v as usize] > 0).collect();
    // One run per tree: a run of several consumers of the same generated blocks is planned
    // to hold them between its consumers (the static order's choice, not these trees').
    for threaded in [false, true] {
        let mut c = Computation::new();
        let (hv, hc) = (c.add(&u.values), c.add(u.counts.as_ref().unwrap()));
        c.allowed_mem(Some(limit));
        let (mut out, stats) = c
            .run_with(&*scheduler(threaded), &dag_core::NoCallbacks)
            .unwrap();
        assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
        assert_eq!(flat(out.take(hv).unwrap()), present);
        assert_eq!(
            flat(out.take(hc).unwrap()),
            want.iter().copied().filter(|&c| c > 0).collect::<Vec<_>>()
        );
        let mut c = Computation::new();
        let hb = c.add(&b);
        c.allowed_mem(Some(limit));
        let (mut out, stats) = c
            .run_with(&*scheduler(threaded), &dag_core::NoCallbacks)
            .unwrap();
        assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
        assert_eq!(flat(out.take(hb).unwrap()), want);
        let mut c = Computation::new();
        let hh = c.add(&h);
        c.allowed_mem(Some(limit));
        let (mut out, stats) = c
            .run_with(&*scheduler(threaded), &dag_core::NoCallbacks)
            .unwrap();
        assert!(stats.peak_bytes <= limit, "{} > {limit}", stats.peak_bytes);
        let hist = flat(out.take(hh).unwrap());
        let per_bin: Vec<f64> = want
            .chunks(10)
            .map(|c| c.iter().sum::<i64>() as f64)
            .collect();
        assert_eq!(hist, per_bin);
    }
}

/// min, max, nanmin and nanmax over a masked selection (unknown length when the graph is
/// built) agree with the reference when something is selected, and are an `Err` naming the
/// empty selection — not the fold's identity (±inf, NaN) — when nothing is; both schedulers.
#[test]
fn extrema_of_an_empty_masked_selection_are_errors() {
    let values: Vec<f64> = vec![3.0, -1.5, f64::NAN, 7.25, 0.5, -4.0, 2.0, 9.0, -0.25];
    let x = BlockArray::from_array(
        ArrayD::from_shape_vec(IxDyn(&[9]), values.clone()).unwrap(),
        4,
    )
    .unwrap();
    let finite: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    for threaded in [false, true] {
        let s = scheduler(threaded);
        // Something selected: the elements above -3 (NaN compares false, so it is dropped).
        let some = x.mask(&x.greater(-3.0).unwrap()).unwrap();
        let kept: Vec<f64> = finite.iter().copied().filter(|&v| v > -3.0).collect();
        let lo = kept.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = kept.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let got = |a: BlockArray<f64>| a.compute_with(&*s).unwrap().into_iter().next().unwrap();
        assert_eq!(got(some.min(None, false).unwrap()), lo);
        assert_eq!(got(some.max(None, false).unwrap()), hi);
        assert_eq!(got(some.nanmin(None, false).unwrap()), lo);
        assert_eq!(got(some.nanmax(None, false).unwrap()), hi);
        // Nothing selected.
        let none = x.mask(&x.greater(100.0).unwrap()).unwrap();
        for (what, r) in [
            ("min", none.min(None, false)),
            ("max", none.max(None, false)),
            ("nanmin", none.nanmin(None, false)),
            ("nanmax", none.nanmax(None, false)),
        ] {
            let e = r.unwrap().compute_with(&*s).unwrap_err();
            assert!(
                e.to_string()
                    .contains(&format!("{what} of an empty selection")),
                "{what}: {e}"
            );
        }
    }
}

/// `map_blocks_axes` dropping and adding no axis maps blocks of unknown length as
/// `map_blocks` does (it rechunked its input to the chunks it had, which needs them known).
#[test]
fn map_blocks_axes_without_axis_changes_takes_unknown_lengths() {
    let x = blockarray::BlockArray::<f64>::arange(0.0, 10.0, 1.0, 5).unwrap();
    let keep = [
        true, false, true, true, false, true, true, true, false, true,
    ];
    let keep = blockarray::BlockArray::from_array(ndarray::arr1(&keep).into_dyn(), 5).unwrap();
    let y = x.mask(&keep).unwrap();
    let twice = y
        .map_blocks_axes("twice", &[], &[], |b: &ArrayD<f64>, _| Ok(b * 2.0))
        .unwrap();
    let got = twice.compute().unwrap().into_raw_vec_and_offset().0;
    assert_eq!(got, vec![0.0, 4.0, 6.0, 10.0, 12.0, 14.0, 18.0]);
    // Dropping an axis of unknown length still needs it known.
    let e = y
        .map_blocks_axes("sum", &[0], &[], |b: &ArrayD<f64>, _| {
            Ok(ndarray::arr0(b.sum()).into_dyn())
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("unknown") || e.to_string().contains("chunk"),
        "{e}"
    );
}
