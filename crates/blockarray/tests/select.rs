//! Selection and ordering (`topk`, `argtopk`, the quantiles, `sort`, `argsort`, `partition`,
//! `argpartition`) against in-memory references written independently of the library: NumPy's
//! order (NaN last, ties by position) by a plain stable sort of each lane, NumPy's quantile
//! formulas over the sorted lane; random shapes, irregular chunkings, NaNs and ties, both
//! schedulers.

use blockarray::{BlockArray, ErrorKind};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use std::cmp::Ordering;

mod common;
use common::{cuts_to_chunks, scheduler};

/// Small integers (many ties), some NaN, some -0.0.
fn data(shape: &[usize], seed: u64, nan_every: u64) -> ArrayD<f64> {
    let mut i = 0u64;
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        i += 1;
        let z = (seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = z ^ (z >> 29);
        if nan_every > 0 && z.is_multiple_of(nan_every) {
            f64::NAN
        } else if z.is_multiple_of(13) {
            -0.0
        } else {
            ((z >> 40) % 11) as f64 - 5.0
        }
    })
}

/// NumPy's sort order: NaN last, -0.0 == 0.0.
fn numpy_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap(),
    }
}

/// The positions of one lane in stable sorted order.
fn stable_argsort(lane: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..lane.len()).collect();
    idx.sort_by(|&i, &j| numpy_cmp(lane[i], lane[j]));
    idx
}

/// `f` applied to every lane along `axis`, the results laid along `axis` (length `out_len`).
fn along<U: Clone + Default>(
    d: &ArrayD<f64>,
    axis: usize,
    out_len: usize,
    f: impl Fn(&[f64]) -> Vec<U>,
) -> ArrayD<U> {
    let mut shape = d.shape().to_vec();
    shape[axis] = out_len;
    let mut out = ArrayD::from_elem(IxDyn(&shape), U::default());
    for (lane, mut o) in d
        .lanes(Axis(axis))
        .into_iter()
        .zip(out.lanes_mut(Axis(axis)))
    {
        let v: Vec<f64> = lane.iter().copied().collect();
        for (slot, r) in o.iter_mut().zip(f(&v)) {
            *slot = r;
        }
    }
    out
}

fn same(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
}

type Case = (Vec<usize>, Vec<Vec<usize>>, u64, bool);

fn arb_case(max_len: usize) -> impl Strategy<Value = Case> {
    proptest::collection::vec(1usize..max_len, 1..=3).prop_flat_map(|shape| {
        let chunks: Vec<_> = shape
            .iter()
            .map(|&n| {
                proptest::collection::btree_set(0..n, 0..=n.min(5))
                    .prop_map(move |c| cuts_to_chunks(n, &c))
            })
            .collect();
        (Just(shape), chunks, any::<u64>(), any::<bool>())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn topk_matches_stable_sort((shape, chunks, seed, thr) in arb_case(12), axis_pick in any::<usize>(), k_pick in any::<u32>(), nans in 0u64..6) {
        let s = scheduler(thr);
        let d = data(&shape, seed, nans);
        let x = BlockArray::from_array(d.clone(), chunks).unwrap();
        let axis = axis_pick % shape.len();
        let len = shape[axis];
        let n = 1 + (k_pick as usize) % len;
        // Largest first: a stable sort by descending value (NaN largest) keeps the first of
        // equal values first.
        let top_idx = |lane: &[f64]| {
            let mut idx: Vec<usize> = (0..lane.len()).collect();
            idx.sort_by(|&i, &j| numpy_cmp(lane[j], lane[i]));
            idx
        };
        let expect_vals = along(&d, axis, n, |lane| top_idx(lane)[..n].iter().map(|&i| lane[i]).collect());
        let expect_idx = along(&d, axis, n, |lane| top_idx(lane)[..n].iter().map(|&i| i as i64).collect());
        prop_assert!(same(&x.topk(n as isize, axis).unwrap().compute_with(&*s).unwrap(), &expect_vals));
        prop_assert_eq!(x.argtopk(n as isize, axis).unwrap().compute_with(&*s).unwrap(), expect_idx);
        // Smallest first: the stable ascending order.
        let low_vals = along(&d, axis, n, |lane| stable_argsort(lane)[..n].iter().map(|&i| lane[i]).collect());
        let low_idx = along(&d, axis, n, |lane| stable_argsort(lane)[..n].iter().map(|&i| i as i64).collect());
        prop_assert!(same(&x.topk(-(n as isize), axis).unwrap().compute_with(&*s).unwrap(), &low_vals));
        prop_assert_eq!(x.argtopk(-(n as isize), axis).unwrap().compute_with(&*s).unwrap(), low_idx);
    }
}

#[test]
fn topk_over_many_blocks_and_large_k() {
    // Deep combine trees (200 blocks), and k large enough for the selection path.
    let d = data(&[2000], 5, 7);
    let x = BlockArray::from_array(d.clone(), 10).unwrap();
    let lane: Vec<f64> = d.iter().copied().collect();
    for k in [1usize, 7, 33, 500, 2000] {
        let mut idx: Vec<usize> = (0..lane.len()).collect();
        idx.sort_by(|&i, &j| numpy_cmp(lane[j], lane[i]));
        let want: Vec<i64> = idx[..k].iter().map(|&i| i as i64).collect();
        let got = x.argtopk(k as isize, 0).unwrap().compute().unwrap();
        assert_eq!(got.into_raw_vec_and_offset().0, want, "k = {k}");
    }
}

#[test]
fn topk_bad_inputs_name_the_value() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    let e = x.topk(7, 1).unwrap_err();
    assert!(
        e.to_string().contains("k = 7") && e.to_string().contains("length 6"),
        "{e}"
    );
    let e = x.topk(-5, 0).unwrap_err();
    assert!(e.to_string().contains("k = -5"), "{e}");
    assert!(x.topk(0, 0).unwrap_err().to_string().contains("k = 0"));
    assert_eq!(x.argtopk(1, 2).unwrap_err().kind(), ErrorKind::Axis);
    // Keys: k, its sign and the axis are in the name.
    let names: Vec<String> = [(2, 0), (-2, 0), (3, 0), (2, 1)]
        .iter()
        .map(|&(k, a)| x.topk(k, a).unwrap().name().to_owned())
        .collect();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            assert_ne!(names[i], names[j]);
        }
    }
    assert_ne!(
        x.topk(2, 0).unwrap().name(),
        x.argtopk(2, 0).unwrap().name()
    );
}

/// NumPy's linear quantile of a lane (NaN if it has one), from its stable sort.
fn linear_quantile(lane: &[f64], q: f64) -> f64 {
    if lane.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let order = stable_argsort(lane);
    let v: Vec<f64> = order.iter().map(|&i| lane[i]).collect();
    let n = v.len();
    let vi = (n as f64 - 1.0) * q;
    let (lo, hi, prev) = if vi >= (n - 1) as f64 {
        (n - 1, n - 1, -1.0)
    } else {
        (vi.floor() as usize, vi.floor() as usize + 1, vi.floor())
    };
    let g = vi - prev;
    let d = v[hi] - v[lo];
    if g >= 0.5 {
        v[hi] - d * (1.0 - g)
    } else {
        v[lo] + d * g
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn quantiles_match_numpy_linear((shape, chunks, seed, thr) in arb_case(10), mask in any::<u8>(), qs in proptest::collection::vec(0.0f64..=1.0, 1..4), nans in 0u64..8, keep in any::<bool>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed, nans);
        let x = BlockArray::from_array(d.clone(), chunks).unwrap();
        let axes: Vec<usize> = (0..shape.len()).filter(|a| mask & (1 << a) != 0).collect();
        prop_assume!(!axes.is_empty());
        let got = x.quantile(qs.clone(), Some(&axes), blockarray::QuantileMethod::Linear, keep).unwrap().compute_with(&*s).unwrap();
        // Reference: gather each output position's lane.
        let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let mut want_shape = vec![qs.len()];
        for (a, &len) in shape.iter().enumerate() {
            if !axes.contains(&a) { want_shape.push(len); } else if keep { want_shape.push(1); }
        }
        prop_assert_eq!(got.shape(), want_shape.as_slice());
        let kept_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
        let mut lanes: std::collections::BTreeMap<Vec<usize>, Vec<f64>> = Default::default();
        for (idx, &v) in d.indexed_iter() {
            let key: Vec<usize> = kept.iter().map(|&a| idx[a]).collect();
            lanes.entry(key).or_default().push(v);
        }
        for (key, lane) in &lanes {
            for (k, &q) in qs.iter().enumerate() {
                let mut at = vec![k];
                let mut ki = key.iter();
                for a in 0..shape.len() {
                    if !axes.contains(&a) { at.push(*ki.next().unwrap()); } else if keep { at.push(0); }
                }
                let (g, w) = (got[IxDyn(&at)], linear_quantile(lane, q));
                prop_assert!((g.is_nan() && w.is_nan()) || g == w, "{:?} q {}: {} vs {}", key, q, g, w);
            }
        }
        let _ = kept_shape;
        // Percentiles are quantiles at p / 100; the median is the mean of the middle pair.
        let p = x.percentile(50.0, Some(&axes), blockarray::QuantileMethod::Linear, keep).unwrap().compute_with(&*s).unwrap();
        let q = x.quantile(0.5, Some(&axes), blockarray::QuantileMethod::Linear, keep).unwrap().compute_with(&*s).unwrap();
        prop_assert!(same(&p, &q));
        let m = x.median(Some(&axes), keep).unwrap().compute_with(&*s).unwrap();
        for ((a, b), lane) in m.iter().zip(q.iter()).zip(lanes.values()) {
            prop_assert!((a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b} for {lane:?}");
        }
    }
}

#[test]
fn nan_quantiles_skip_nan_and_types_follow_numpy() {
    let x = BlockArray::from_array(
        ndarray::array![[1.0, f64::NAN, 3.0], [f64::NAN, f64::NAN, f64::NAN]],
        [1, 2],
    )
    .unwrap();
    let m = x.nanmedian(Some(&[1]), false).unwrap().compute().unwrap();
    assert_eq!(m[0], 2.0);
    assert!(m[1].is_nan());
    assert!(x.median(Some(&[1]), false).unwrap().compute().unwrap()[0].is_nan());
    let p = x
        .nanpercentile(
            [0.0, 100.0],
            None,
            blockarray::QuantileMethod::Linear,
            false,
        )
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(p.into_raw_vec_and_offset().0, vec![1.0, 3.0]);
    // Integers give f64, f32 gives f32.
    let i = BlockArray::from_array(ndarray::array![1i64, 2, 3, 4], 3).unwrap();
    let q: BlockArray<f64> = i
        .quantile(0.25, None, blockarray::QuantileMethod::Linear, false)
        .unwrap();
    assert_eq!(q.compute().unwrap().into_iter().next(), Some(1.75));
    let f = BlockArray::from_array(ndarray::array![1.0f32, 2.0, 3.0, 4.0], 3).unwrap();
    let q: BlockArray<f32> = f.median(None, false).unwrap();
    assert_eq!(q.compute().unwrap().into_iter().next(), Some(2.5f32));
}

#[test]
fn quantile_bad_inputs_name_the_value() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    let lin = blockarray::QuantileMethod::Linear;
    let e = x.quantile(1.5, None, lin, false).unwrap_err();
    assert!(e.to_string().contains("1.5"), "{e}");
    let e = x.percentile([50.0, 101.0], None, lin, false).unwrap_err();
    assert!(
        e.to_string().contains("101") && e.to_string().contains("[0, 100]"),
        "{e}"
    );
    let e = x.percentile(-1.0, None, lin, false).unwrap_err();
    assert!(e.to_string().contains("-1"), "{e}");
    assert!(x.quantile(f64::NAN, None, lin, false).is_err());
    assert_eq!(
        x.median(Some(&[2]), false).unwrap_err().kind(),
        ErrorKind::Axis
    );
    let empty = BlockArray::<f64>::ones(&[0, 3], [1, 3]).unwrap();
    assert!(
        empty
            .median(Some(&[0]), false)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    // Keys: q, method, axes and NaN handling are in the name.
    let names = [
        x.quantile(0.5, None, lin, false).unwrap().name().to_owned(),
        x.quantile(0.25, None, lin, false)
            .unwrap()
            .name()
            .to_owned(),
        x.quantile(0.5, None, blockarray::QuantileMethod::Lower, false)
            .unwrap()
            .name()
            .to_owned(),
        x.quantile(0.5, Some(&[0]), lin, false)
            .unwrap()
            .name()
            .to_owned(),
        x.nanquantile(0.5, None, lin, false)
            .unwrap()
            .name()
            .to_owned(),
        x.quantile([0.5], None, lin, false)
            .unwrap()
            .name()
            .to_owned(),
    ];
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            assert_ne!(names[i], names[j], "{i} {j}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sort_argsort_partition_match_stable_sort((shape, chunks, seed, thr) in arb_case(12), axis_pick in any::<usize>(), k_pick in any::<usize>(), nans in 0u64..6) {
        let s = scheduler(thr);
        let d = data(&shape, seed, nans);
        let x = BlockArray::from_array(d.clone(), chunks).unwrap();
        let axis = axis_pick % shape.len();
        let len = shape[axis];
        let want_vals = along(&d, axis, len, |lane| stable_argsort(lane).iter().map(|&i| lane[i]).collect());
        let want_idx = along(&d, axis, len, |lane| stable_argsort(lane).iter().map(|&i| i as i64).collect());
        prop_assert!(same(&x.sort(axis).unwrap().compute_with(&*s).unwrap(), &want_vals));
        prop_assert_eq!(x.argsort(axis).unwrap().compute_with(&*s).unwrap(), want_idx);
        let kth = k_pick % len;
        let p = x.partition(&[kth as isize], axis).unwrap().compute_with(&*s).unwrap();
        let ip = x.argpartition(&[kth as isize], axis).unwrap().compute_with(&*s).unwrap();
        for ((lane, plane), iplane) in d.lanes(Axis(axis)).into_iter().zip(p.lanes(Axis(axis))).zip(ip.lanes(Axis(axis))) {
            let v: Vec<f64> = lane.iter().copied().collect();
            let at = v[stable_argsort(&v)[kth]];
            let pv: Vec<f64> = plane.iter().copied().collect();
            prop_assert!(numpy_cmp(pv[kth], at).is_eq());
            prop_assert!(pv[..kth].iter().all(|&e| numpy_cmp(e, at).is_le()));
            prop_assert!(pv[kth + 1..].iter().all(|&e| numpy_cmp(e, at).is_ge()));
            // argpartition's positions pick the same arrangement out of the lane.
            let picked: Vec<f64> = iplane.iter().map(|&i| v[i as usize]).collect();
            prop_assert!(numpy_cmp(picked[kth], at).is_eq());
            let mut sorted_positions: Vec<i64> = iplane.iter().copied().collect();
            sorted_positions.sort_unstable();
            prop_assert_eq!(sorted_positions, (0..len as i64).collect::<Vec<_>>());
        }
    }
}

#[test]
fn sort_bad_inputs_name_the_value() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    assert_eq!(x.sort(2).unwrap_err().kind(), ErrorKind::Axis);
    assert!(x.argsort(5).unwrap_err().to_string().contains("axis 5"));
    let e = x.partition(&[6], 1).unwrap_err();
    assert!(
        e.to_string().contains("kth 6") && e.to_string().contains("length 6"),
        "{e}"
    );
    let e = x.argpartition(&[-7], 1).unwrap_err();
    assert!(e.to_string().contains("kth -7"), "{e}");
    assert_ne!(x.sort(0).unwrap().name(), x.sort(1).unwrap().name());
    assert_ne!(
        x.partition(&[1], 0).unwrap().name(),
        x.partition(&[2], 0).unwrap().name()
    );
}

#[test]
fn empty_other_axes_give_empty_results() {
    let x = BlockArray::<f64>::zeros(&[0, 5], [1, 2]).unwrap();
    assert_eq!(x.topk(2, 1).unwrap().compute().unwrap().shape(), &[0, 2]);
    assert_eq!(x.argsort(1).unwrap().compute().unwrap().shape(), &[0, 5]);
    assert_eq!(x.sort(0).unwrap().compute().unwrap().shape(), &[0, 5]);
    let lin = blockarray::QuantileMethod::Linear;
    assert_eq!(
        x.quantile([0.5, 0.9], Some(&[1]), lin, false)
            .unwrap()
            .compute()
            .unwrap()
            .shape(),
        &[2, 0]
    );
    assert_eq!(
        x.median(Some(&[1]), true)
            .unwrap()
            .compute()
            .unwrap()
            .shape(),
        &[0, 1]
    );
    // Lanes too long for one block (72 MB each) along an empty axis: still empty results,
    // not the long-lane path stacking no lanes.
    let long = BlockArray::<f64>::zeros(&[0, 9_000_000], [1, 1_000_000]).unwrap();
    assert_eq!(
        long.sort(1).unwrap().compute().unwrap().shape(),
        &[0, 9_000_000]
    );
    assert_eq!(
        long.argsort(1).unwrap().compute().unwrap().shape(),
        &[0, 9_000_000]
    );
    assert_eq!(
        long.partition(&[3], 1).unwrap().compute().unwrap().shape(),
        &[0, 9_000_000]
    );
    assert_eq!(
        long.quantile(0.5, Some(&[1]), lin, false)
            .unwrap()
            .compute()
            .unwrap()
            .shape(),
        &[0]
    );
    // Lanes longer than any memory (2^45 elements) of an empty array: nothing is reserved
    // for them (the tasks reserved the lane length and the allocator aborted the process).
    let n = 1usize << 45;
    let huge = BlockArray::<u8>::zeros(&[0, n], [1, 1 << 40]).unwrap();
    assert_eq!(huge.sort(1).unwrap().compute().unwrap().shape(), &[0, n]);
    assert_eq!(huge.argsort(1).unwrap().compute().unwrap().shape(), &[0, n]);
    assert_eq!(
        huge.median(Some(&[1]), false)
            .unwrap()
            .compute()
            .unwrap()
            .shape(),
        &[0]
    );
}

/// Lanes too long for one task each, too many of them, are refused when the expression is built: each
/// would be a sub-graph of its own (hundreds of gigabytes of graph before any task limit), and
/// the quantile's list of lanes alone reserved 128 GiB for 2^33 of them.
#[test]
fn too_many_long_lanes_are_refused_when_built() {
    let lin = blockarray::QuantileMethod::Linear;
    // 2^28 lanes of 16 blocks: past MAX_BUILD_TASKS (2^26) on any machine.
    let x = BlockArray::<f64>::zeros(&[1 << 28, 1 << 24], [1 << 4, 1 << 20]).unwrap();
    for e in [
        x.sort(1).unwrap_err(),
        x.argsort(1).unwrap_err(),
        x.partition(&[3], 1).unwrap_err(),
        x.median(Some(&[1]), false).unwrap_err(),
        x.quantile(0.5, Some(&[1]), lin, false).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
        assert!(e.to_string().contains("268435456 lanes"), "{e}");
    }
    let many = BlockArray::<f64>::zeros(&[1 << 33, 1 << 24], [1 << 10, 1 << 24]).unwrap();
    let e = many.median(Some(&[1]), false).unwrap_err();
    assert!(e.to_string().contains("8589934592 lanes"), "{e}");
}

#[test]
fn sorting_and_topk_of_every_integer_type() {
    fn check<T: blockarray::SortKey + blockarray::CastTo<f64>>(vals: Vec<T>) {
        let n = vals.len();
        let x = BlockArray::from_array(
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[n]), vals.clone()).unwrap(),
            3,
        )
        .unwrap();
        let mut want = vals.clone();
        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let got = blockarray::sort(&x, 0)
            .unwrap()
            .compute()
            .unwrap()
            .into_raw_vec_and_offset()
            .0;
        assert_eq!(got, want);
        let top = blockarray::topk(&x, 2, 0)
            .unwrap()
            .compute()
            .unwrap()
            .into_raw_vec_and_offset()
            .0;
        assert_eq!(top, vec![want[n - 1], want[n - 2]]);
    }
    check(vec![5i8, -128, 127, 0, -1, 3, 3]);
    check(vec![-300i16, 7, i16::MAX, i16::MIN, 0, 2]);
    check(vec![40_000u16, 0, 1, u16::MAX, 7]);
    check(vec![u32::MAX, 0, 1 << 31, 9, 8]);
    check(vec![u64::MAX, 0, 1 << 63, 12, 11, 1]);
}
