//! Every operation against the same operation on an in-memory ndarray, over random shapes
//! (0-d to 4-d, zero-length axes included), random irregular chunkings, and both schedulers.
//!
//! The references are written independently of the library: NumPy's slicing rules as a naive
//! loop, reductions by gathering each output position's elements, and so on.

use blockarray::{BlockArray, Error, ErrorKind, SliceArg, concatenate, stack, where_};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;

mod common;
use common::{arb_chunks, data, numpy_positions, scheduler};

/// A case: shape, two chunkings of it, a seed, and a scheduler choice (threaded when true).
type Case = (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>, u64, bool);

fn arb_case(max_nd: usize) -> impl Strategy<Value = Case> {
    proptest::collection::vec(0usize..6, 0..=max_nd).prop_flat_map(|shape| {
        (
            Just(shape.clone()),
            arb_chunks(shape.clone()),
            arb_chunks(shape),
            any::<u64>(),
            any::<bool>(),
        )
    })
}

fn arr(d: &ArrayD<f64>, chunks: &[Vec<usize>]) -> BlockArray<f64> {
    BlockArray::from_array(d.clone(), chunks.to_vec()).unwrap()
}

fn close(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
    a.shape() == b.shape()
        && a.iter().zip(b.iter()).all(|(x, y)| {
            (x.is_nan() && y.is_nan())
                || x == y
                || (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()))
        })
}

/// Reduce by gathering each output position's elements (keepdims shape).
fn ref_reduce<U: Clone>(
    d: &ArrayD<f64>,
    axes: &[usize],
    f: impl Fn(&[f64], &[usize]) -> U,
) -> ArrayD<U> {
    let mut out_shape = d.shape().to_vec();
    for &a in axes {
        out_shape[a] = 1;
    }
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); out_shape.iter().product()];
    let mut flat_idx: Vec<Vec<usize>> = vec![Vec::new(); buckets.len()];
    for (flat, (idx, &v)) in d.indexed_iter().enumerate() {
        let mut o = 0;
        for (k, &n) in out_shape.iter().enumerate() {
            let i = if axes.contains(&k) { 0 } else { idx[k] };
            o = o * n + i;
        }
        buckets[o].push(v);
        flat_idx[o].push(flat);
    }
    let vals: Vec<U> = buckets
        .iter()
        .zip(&flat_idx)
        .map(|(b, fi)| f(b, fi))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&out_shape), vals).unwrap()
}

fn drop_axes<U: Clone>(a: ArrayD<U>, axes: &[usize]) -> ArrayD<U> {
    let mut a = a;
    for &ax in axes.iter().rev() {
        a = a.index_axis_move(Axis(ax), 0);
    }
    a
}

fn subset(nd: usize, mask: u8) -> Vec<usize> {
    (0..nd).filter(|a| mask & (1 << a) != 0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn from_array_roundtrips((shape, c1, _c2, seed, thr) in arb_case(4)) {
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        prop_assert_eq!(x.compute_with(&*scheduler(thr)).unwrap(), d.clone());
        prop_assert_eq!(x.persist_with(&*scheduler(thr)).unwrap().compute().unwrap(), d);
    }

    #[test]
    fn elementwise_matches_ndarray((shape, c1, c2, seed, thr) in arb_case(4)) {
        let s = scheduler(thr);
        let (a, b) = (data(&shape, seed), data(&shape, seed ^ 7));
        let (x, y) = (arr(&a, &c1), arr(&b, &c2));
        prop_assert_eq!((&x + &y).unwrap().compute_with(&*s).unwrap(), &a + &b);
        prop_assert_eq!((&x * 2.5).compute_with(&*s).unwrap(), a.mapv(|v| v * 2.5));
        prop_assert_eq!((-&x - &y).unwrap().compute_with(&*s).unwrap(), -&a - &b);
        prop_assert!(close(&x.exp().sin().compute_with(&*s).unwrap(), &a.mapv(|v| v.exp().sin())));
        let expected_rem = ndarray::Zip::from(&a).and(&b).map_collect(|&p, &q| {
            let r = p % q;
            if r != 0.0 && ((r < 0.0) != (q < 0.0)) { r + q } else { r }
        });
        prop_assert!(close(&(&x % &y).unwrap().compute_with(&*s).unwrap(), &expected_rem));
        let gt = x.greater(&y).unwrap();
        prop_assert_eq!(gt.compute_with(&*s).unwrap(), ndarray::Zip::from(&a).and(&b).map_collect(|p, q| p > q));
        let w = where_(&gt, &x, 0.0).unwrap();
        prop_assert_eq!(w.compute_with(&*s).unwrap(), ndarray::Zip::from(&a).and(&b).map_collect(|&p, &q| if p > q { p } else { 0.0 }));
        prop_assert_eq!(x.clip(-3.0, 4.0).unwrap().compute_with(&*s).unwrap(), a.mapv(|v| v.clamp(-3.0, 4.0)));
        prop_assert_eq!(x.maximum(&y).unwrap().compute_with(&*s).unwrap(), ndarray::Zip::from(&a).and(&b).map_collect(|p, q| p.max(*q)));
        let as_int = x.astype::<i64>().compute_with(&*s).unwrap();
        prop_assert_eq!(as_int, a.mapv(|v| v as i64));
    }

    #[test]
    fn broadcasting_matches_ndarray((shape, c1, c2, seed, thr) in arb_case(4), drop in 0usize..3, ones in any::<u8>()) {
        // y's shape: a suffix of x's, with some axes set to 1.
        let k = drop.min(shape.len());
        let mut yshape: Vec<usize> = shape[k..].to_vec();
        for (i, n) in yshape.iter_mut().enumerate() {
            if ones & (1 << i) != 0 { *n = 1; }
        }
        let ychunks: Vec<Vec<usize>> = yshape.iter().zip(&c2[k..]).map(|(&n, c)| if n == 1 { vec![1] } else { c.clone() }).collect();
        let (a, b) = (data(&shape, seed), data(&yshape, seed ^ 3));
        let (x, y) = (arr(&a, &c1), arr(&b, &ychunks));
        let expected = &a + &b.broadcast(IxDyn(&shape)).unwrap();
        prop_assert_eq!((&x + &y).unwrap().compute_with(&*scheduler(thr)).unwrap(), expected.clone());
        prop_assert_eq!((&y + &x).unwrap().compute_with(&*scheduler(thr)).unwrap(), expected);
    }

    #[test]
    fn reductions_match_reference((shape, c1, _c2, seed, thr) in arb_case(4), mask in any::<u8>(), keep in any::<bool>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let axes = subset(shape.len(), mask);
        let fix = |r: ArrayD<f64>| if keep { r } else { drop_axes(r, &axes) };
        let got = |b: BlockArray<f64>| b.compute_with(&*s).unwrap();
        prop_assert_eq!(got(x.sum(Some(&axes), keep).unwrap()), fix(ref_reduce(&d, &axes, |v, _| v.iter().sum())));
        // Products beyond 2^53 round differently in a different order: close, not equal.
        prop_assert!(close(&got(x.prod(Some(&axes), keep).unwrap()), &fix(ref_reduce(&d, &axes, |v, _| v.iter().product()))));
        let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
        prop_assert!(close(&got(x.mean(Some(&axes), keep).unwrap()), &fix(ref_reduce(&d, &axes, |v, _| mean(v)))));
        let var = |v: &[f64], ddof: f64| {
            let m = mean(v);
            let n = v.len() as f64 - ddof;
            if n <= 0.0 { f64::NAN } else { v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n }
        };
        prop_assert!(close(&got(x.var(Some(&axes), 1.0, keep).unwrap()), &fix(ref_reduce(&d, &axes, |v, _| var(v, 1.0)))));
        prop_assert!(close(&got(x.std(Some(&axes), 0.0, keep).unwrap()), &fix(ref_reduce(&d, &axes, |v, _| var(v, 0.0).sqrt()))));
        let empty = axes.iter().any(|&a| shape[a] == 0);
        if empty {
            prop_assert_eq!(x.min(Some(&axes), keep).unwrap_err().kind(), ErrorKind::Shape);
        } else {
            prop_assert_eq!(got(x.min(Some(&axes), keep).unwrap()), fix(ref_reduce(&d, &axes, |v, _| v.iter().copied().fold(f64::INFINITY, f64::min))));
            prop_assert_eq!(got(x.max(Some(&axes), keep).unwrap()), fix(ref_reduce(&d, &axes, |v, _| v.iter().copied().fold(f64::NEG_INFINITY, f64::max))));
        }
        let b = x.greater(0.0).unwrap();
        let any = b.any(Some(&axes), keep).unwrap().compute_with(&*s).unwrap();
        let any_ref = ref_reduce(&d, &axes, |v, _| v.iter().any(|&x| x > 0.0));
        prop_assert_eq!(any, if keep { any_ref } else { drop_axes(any_ref, &axes) });
        let all = b.all(Some(&axes), keep).unwrap().compute_with(&*s).unwrap();
        let all_ref = ref_reduce(&d, &axes, |v, _| v.iter().all(|&x| x > 0.0));
        prop_assert_eq!(all, if keep { all_ref } else { drop_axes(all_ref, &axes) });
    }

    #[test]
    fn arg_reductions_match_reference((shape, c1, _c2, seed, thr) in arb_case(3), axis_pick in any::<usize>()) {
        prop_assume!(shape.iter().all(|&n| n > 0));
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        // Flat: first index of the extreme.
        let flat: Vec<f64> = d.iter().copied().collect();
        let first = |better: fn(f64, f64) -> bool| {
            let mut b = 0;
            for (i, &v) in flat.iter().enumerate() { if better(v, flat[b]) { b = i; } }
            b as i64
        };
        prop_assert_eq!(x.argmin(None).unwrap().compute_with(&*s).unwrap().into_iter().next(), Some(first(|a, b| a < b)));
        prop_assert_eq!(x.argmax(None).unwrap().compute_with(&*s).unwrap().into_iter().next(), Some(first(|a, b| a > b)));
        if !shape.is_empty() {
            let ax = axis_pick % shape.len();
            let expected = d.map_axis(Axis(ax), |lane| {
                let mut b = 0;
                for (i, &v) in lane.iter().enumerate() { if v < lane[b] { b = i; } }
                b as i64
            });
            prop_assert_eq!(x.argmin(Some(ax)).unwrap().compute_with(&*s).unwrap(), expected);
        }
    }

    #[test]
    fn nan_reductions_match_reference((shape, c1, _c2, seed, thr) in arb_case(3), mask in any::<u8>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed).mapv(|v| if v == 0.0 || v == 7.0 { f64::NAN } else { v });
        let x = arr(&d, &c1);
        let axes = subset(shape.len(), mask);
        let got = |b: BlockArray<f64>| b.compute_with(&*s).unwrap();
        let finite = |v: &[f64]| v.iter().copied().filter(|x| !x.is_nan()).collect::<Vec<_>>();
        prop_assert_eq!(got(x.nansum(Some(&axes), true).unwrap()), ref_reduce(&d, &axes, |v, _| finite(v).iter().sum()));
        let nanmean_ref = ref_reduce(&d, &axes, |v, _| {
            let f = finite(v);
            if f.is_empty() { f64::NAN } else { f.iter().sum::<f64>() / f.len() as f64 }
        });
        prop_assert!(close(&got(x.nanmean(Some(&axes), true).unwrap()), &nanmean_ref));
        prop_assert!(close(&got(x.sum(Some(&axes), true).unwrap()), &ref_reduce(&d, &axes, |v, _| v.iter().sum())));
        let nanvar_ref = |ddof: f64| ref_reduce(&d, &axes, move |v, _| {
            let f: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            let n = f.len() as f64;
            if n - ddof <= 0.0 { return f64::NAN; }
            let m = f.iter().sum::<f64>() / n;
            f.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - ddof)
        });
        prop_assert!(close(&got(x.nanvar(Some(&axes), 1.0, true).unwrap()), &nanvar_ref(1.0)));
        prop_assert!(close(&got(x.nanstd(Some(&axes), 0.0, true).unwrap()), &nanvar_ref(0.0).mapv(f64::sqrt)));
        if !axes.iter().any(|&a| shape[a] == 0) {
            let nanmin_ref = ref_reduce(&d, &axes, |v, _| {
                finite(v).into_iter().fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a })
            });
            prop_assert!(close(&got(x.nanmin(Some(&axes), true).unwrap()), &nanmin_ref));
            let nanmax_ref = ref_reduce(&d, &axes, |v, _| {
                finite(v).into_iter().fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a })
            });
            prop_assert!(close(&got(x.nanmax(Some(&axes), true).unwrap()), &nanmax_ref));
            let max_ref = ref_reduce(&d, &axes, |v, _| {
                if v.iter().any(|x| x.is_nan()) { f64::NAN } else { v.iter().copied().fold(f64::NEG_INFINITY, f64::max) }
            });
            prop_assert!(close(&got(x.max(Some(&axes), true).unwrap()), &max_ref));
        }
    }

    #[test]
    fn cumulative_matches_ndarray((shape, c1, _c2, seed, thr) in arb_case(3), axis_pick in any::<usize>()) {
        prop_assume!(!shape.is_empty());
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let ax = axis_pick % shape.len();
        let mut expected = d.clone();
        expected.accumulate_axis_inplace(Axis(ax), |&p, c| *c += p);
        prop_assert_eq!(x.cumsum(ax).unwrap().compute_with(&*scheduler(thr)).unwrap(), expected);
        // Float scans run in NumPy's sequential order: bitwise the same whatever the chunking,
        // also where every addition rounds.
        let thirds = d.mapv(|v| v / 3.0 + 1e-3);
        let mut expected = thirds.clone();
        expected.accumulate_axis_inplace(Axis(ax), |&p, c| *c += p);
        let got = arr(&thirds, &c1).cumsum(ax).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got.mapv(f64::to_bits), expected.mapv(f64::to_bits));
        let small = d.mapv(|v| (v % 3.0) + 0.5);
        let mut expected = small.clone();
        expected.accumulate_axis_inplace(Axis(ax), |&p, c| *c *= p);
        let got = arr(&small, &c1).cumprod(ax).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got.mapv(f64::to_bits), expected.mapv(f64::to_bits));
    }

    #[test]
    fn slicing_matches_numpy_rules(
        (shape, c1, _c2, seed, thr) in arb_case(4),
        raw in proptest::collection::vec((any::<Option<i8>>(), any::<Option<i8>>(), prop_oneof![-3isize..=-1, 1isize..=3], any::<bool>()), 4),
    ) {
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let mut args = Vec::new();
        // Per axis: Err(index) or Ok(positions), applied to a whole array by `pick`.
        let mut picks: Vec<Result<Vec<usize>, usize>> = Vec::new();
        for (ax, &n) in shape.iter().enumerate() {
            let (start, stop, step, index) = raw[ax];
            if index && n > 0 {
                let i = start.map_or(0, |s| s as isize).rem_euclid(2 * n as isize) - n as isize;
                args.push(SliceArg::Index(i));
                picks.push(Err((i + n as isize) as usize % n));
            } else {
                let (start, stop) = (start.map(|s| s as isize), stop.map(|s| s as isize));
                args.push(SliceArg::Range { start, stop, step });
                picks.push(Ok(numpy_positions(n, start, stop, step)));
            }
        }
        let pick = |whole: &ArrayD<f64>| {
            let mut out = whole.clone();
            let mut out_axis = 0;
            for p in &picks {
                match p {
                    Err(i) => out = out.index_axis_move(Axis(out_axis), *i),
                    Ok(pos) => {
                        out = out.select(Axis(out_axis), pos);
                        out_axis += 1;
                    }
                }
            }
            out
        };
        let expected = pick(&d);
        // Sources that compute their elements compute only the selected ones.
        let rng = blockarray::random::Rng::new(seed);
        let generated = [
            rng.random::<f64>(&shape, c1.clone()).unwrap(),
            rng.normal::<f64>(1.0, 2.0, &shape, c1.clone()).unwrap(),
            rng.integers::<f64>(-5, 5, &shape, c1.clone()).unwrap(),
            BlockArray::from_fn(&shape, c1.clone(), "flat-sum", |i| i.iter().enumerate().map(|(k, &v)| (v * (k + 1)) as f64).sum()).unwrap(),
            BlockArray::full(&shape, 2.5, c1.clone()).unwrap(),
        ];
        for g in &generated {
            let whole = g.compute_with(&SyncScheduler::new()).unwrap();
            prop_assert_eq!(g.slice(&args).unwrap().compute_with(&*scheduler(thr)).unwrap(), pick(&whole));
        }
        let y = x.slice(&args).unwrap();
        prop_assert_eq!(y.shape(), expected.shape());
        prop_assert_eq!(y.compute_with(&*scheduler(thr)).unwrap(), expected.clone());
        // The same slice through an elementwise op and a transpose (push-down paths).
        let z = (&x * 2.0).slice(&args).unwrap();
        prop_assert_eq!(z.compute_with(&*scheduler(thr)).unwrap(), expected.mapv(|v| v * 2.0));
        let rev: Vec<SliceArg> = args.iter().rev().cloned().collect();
        let t = x.t().slice(&rev).unwrap();
        prop_assert_eq!(t.compute_with(&*scheduler(thr)).unwrap(), expected.t().to_owned());
    }

    #[test]
    fn take_matches_select((shape, c1, _c2, seed, thr) in arb_case(3), raw in proptest::collection::vec(any::<i16>(), 0..12), axis_pick in any::<usize>()) {
        prop_assume!(!shape.is_empty());
        let ax = axis_pick % shape.len();
        let n = shape[ax] as isize;
        prop_assume!(n > 0);
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let idx: Vec<isize> = raw.iter().map(|&r| (r as isize).rem_euclid(2 * n) - n).collect();
        let pos: Vec<usize> = idx.iter().map(|&i| (i + n) as usize % n as usize).collect();
        prop_assert_eq!(x.take(&idx, ax).unwrap().compute_with(&*scheduler(thr)).unwrap(), d.select(Axis(ax), &pos));
    }

    #[test]
    fn shape_ops_match_ndarray((shape, c1, c2, seed, thr) in arb_case(4), perm_seed in any::<u64>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let nd = shape.len();
        let mut perm: Vec<usize> = (0..nd).collect();
        let mut z = perm_seed;
        for i in (1..nd).rev() {
            z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (z >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(x.permuted_axes(&perm).unwrap().compute_with(&*s).unwrap(), d.clone().permuted_axes(IxDyn(&perm)));
        prop_assert_eq!(x.t().compute_with(&*s).unwrap(), d.t().to_owned());
        if nd >= 2 {
            let (p, q) = (perm[0], perm[1]);
            let mut swapped = d.clone();
            swapped.swap_axes(p, q);
            prop_assert_eq!(x.swap_axes(p, q).unwrap().compute_with(&*s).unwrap(), swapped);
            // moveaxis(p, q): axis p goes to position q, the others keep their order.
            let mut order: Vec<usize> = (0..nd).filter(|&a| a != p).collect();
            order.insert(q, p);
            prop_assert_eq!(x.moveaxis(p, q).unwrap().compute_with(&*s).unwrap(), d.clone().permuted_axes(IxDyn(&order)));
        }
        prop_assert_eq!(x.rechunk(c2.clone()).unwrap().compute_with(&*s).unwrap(), d.clone());
        let rechunked = x.rechunk(c2.clone()).unwrap();
        prop_assert_eq!(rechunked.chunks().axes(), c2.as_slice());
        let flat = x.reshape(&[d.len()]).unwrap();
        prop_assert_eq!(flat.compute_with(&*s).unwrap().into_raw_vec_and_offset().0, d.iter().copied().collect::<Vec<_>>());
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let back = flat.reshape(&rev).unwrap();
        prop_assert_eq!(back.compute_with(&*s).unwrap(), d.clone().into_shape_with_order(IxDyn(&rev)).unwrap());
        prop_assert_eq!(x.insert_axis(nd).unwrap().squeeze(Some(&[nd])).unwrap().compute_with(&*s).unwrap(), d.clone());
        let doubled = concatenate(&[&x, &arr(&d, &c2)], 0);
        if nd == 0 {
            prop_assert!(doubled.is_err());
        } else {
            prop_assert_eq!(doubled.unwrap().compute_with(&*s).unwrap(), ndarray::concatenate(Axis(0), &[d.view(), d.view()]).unwrap());
        }
        let st = stack(&[&x, &arr(&d, &c2)], nd).unwrap();
        prop_assert_eq!(st.compute_with(&*s).unwrap(), ndarray::stack(Axis(nd), &[d.view(), d.view()]).unwrap());
    }
}

/// NumPy's `nansum` counts NaN as zero and then sums: `inf` and `-inf` still make NaN, in one
/// block or two, wherever the partial sums meet (a fold that skipped NaN operands dropped a
/// partial sum that had become NaN).
#[test]
fn nansum_of_inf_and_minus_inf_is_nan_in_every_chunking() {
    let data = ArrayD::from_shape_vec(
        IxDyn(&[6]),
        vec![1.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.0, 3.0],
    )
    .unwrap();
    for chunks in [vec![6], vec![1, 2, 3], vec![2, 4], vec![1, 1, 1, 1, 1, 1]] {
        let x = BlockArray::from_array(data.clone(), [6])
            .unwrap()
            .rechunk(vec![chunks.clone()])
            .unwrap();
        let got = x.nansum(None, false).unwrap().compute().unwrap()[[]];
        assert!(got.is_nan(), "chunks {chunks:?}: {got}");
    }
    // A lane along the first axis, longer than the fold's eight accumulators.
    let mut lane = vec![1.0; 40];
    // Column 0: rows 1 and 15; column 1: rows 1 and 15; a NaN in row 5.
    (lane[2], lane[30], lane[3], lane[31]) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    lane[10] = f64::NAN;
    let col = ArrayD::from_shape_vec(IxDyn(&[20, 2]), lane).unwrap();
    let x = BlockArray::from_array(col, [20, 2]).unwrap();
    let got = x.nansum(Some(&[0]), false).unwrap().compute().unwrap();
    assert!(got.iter().all(|v| v.is_nan()), "{got}");
}

#[test]
fn random_values_do_not_depend_on_chunks_or_scheduler() {
    let rng = blockarray::random::Rng::new(7);
    let a = rng.normal::<f64>(10.0, 0.1, &[37, 23], [10, 10]).unwrap();
    let b = rng.normal::<f64>(10.0, 0.1, &[37, 23], [37, 1]).unwrap();
    let va = a.compute_with(&SyncScheduler::new()).unwrap();
    let vb = b
        .compute_with(&ThreadedScheduler::builder().threads(8).build().unwrap())
        .unwrap();
    assert_eq!(va, vb);
    let mean = va.mean().unwrap();
    assert!((mean - 10.0).abs() < 0.02, "{mean}");
    let u = rng
        .uniform::<f32>(-1.0, 1.0, &[1000], 64)
        .unwrap()
        .compute()
        .unwrap();
    assert!(u.iter().all(|&v| (-1.0..1.0).contains(&v)));
    let i = rng
        .integers::<i64>(3, 7, &[1000], 100)
        .unwrap()
        .compute()
        .unwrap();
    assert!(i.iter().all(|&v| (3..7).contains(&v)));
    for k in 3..7 {
        assert!(i.iter().any(|&v| v == k), "{k} never drawn");
    }
    assert_ne!(
        rng.random::<f64>(&[10], 5).unwrap().compute().unwrap(),
        blockarray::random::Rng::new(8)
            .random::<f64>(&[10], 5)
            .unwrap()
            .compute()
            .unwrap()
    );
}

#[test]
fn creation_functions_match_numpy() {
    let s = SyncScheduler::new();
    assert_eq!(
        BlockArray::arange(0.0f64, 1.0, 0.3, 2)
            .unwrap()
            .compute_with(&s)
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![0.0, 0.3, 0.6, 0.8999999999999999]
    );
    assert_eq!(
        BlockArray::arange(5i32, 0, -2, 2)
            .unwrap()
            .compute_with(&s)
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![5, 3, 1]
    );
    assert_eq!(BlockArray::arange(0i64, 0, 1, 2).unwrap().shape(), &[0]);
    assert_eq!(
        BlockArray::arange(0i64, 5, 0, 2).unwrap_err().kind(),
        ErrorKind::Step
    );
    assert_eq!(
        BlockArray::linspace(0.0f64, 1.0, 5, true, 2)
            .unwrap()
            .compute_with(&s)
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    );
    assert_eq!(
        BlockArray::linspace(0.0f64, 1.0, 4, false, 3)
            .unwrap()
            .compute_with(&s)
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![0.0, 0.25, 0.5, 0.75]
    );
    // NumPy's special cases (values from NumPy 2.4): one value over an infinite range is NaN
    // (`0·inf`), a step that underflows to 0 spreads `delta` by `i/div`, and geomspace's ends
    // are set by position, not by value.
    let v = |x: Result<BlockArray<f64>, Error>| {
        x.unwrap()
            .compute_with(&s)
            .unwrap()
            .into_raw_vec_and_offset()
            .0
    };
    assert!(v(BlockArray::linspace(0.0, f64::INFINITY, 1, true, 1))[0].is_nan());
    assert!(v(BlockArray::linspace(1.0, f64::NEG_INFINITY, 1, false, 1))[0].is_nan());
    assert_eq!(
        v(BlockArray::linspace(0.0, 5e-324, 3, false, 2)),
        vec![0.0, 0.0, 5e-324]
    );
    assert_eq!(
        v(BlockArray::geomspace(5.0, 5.0, 3, true, 2)),
        vec![5.0, 5.000000000000001, 5.0]
    );
    assert_eq!(
        v(BlockArray::geomspace(-5.0, -5.0, 3, true, 2)),
        vec![-5.0, -5.000000000000001, -5.0]
    );
    let e = BlockArray::<i32>::eye(3, Some(4), 1, 2)
        .unwrap()
        .compute_with(&s)
        .unwrap();
    assert_eq!(
        e,
        ndarray::array![[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]].into_dyn()
    );
    assert_eq!(
        BlockArray::full(&[2, 2], 7u8, 1)
            .unwrap()
            .compute_with(&s)
            .unwrap()
            .sum(),
        28
    );
    let z = BlockArray::<num_complex::Complex<f64>>::zeros(&[3], 2).unwrap();
    let one = num_complex::Complex::new(1.0, 2.0);
    assert_eq!((&z + one).compute_with(&s).unwrap()[[2]], one);
}

#[test]
fn element_types_all_compute() {
    fn check<T: blockarray::Numeric>(v: T) {
        let x = BlockArray::full(&[5, 3], v, [2, 2]).unwrap();
        let y = (&x + &x)
            .unwrap()
            .sum(None, false)
            .unwrap()
            .compute()
            .unwrap();
        // Integers are summed in 64 bits, as NumPy's.
        assert_eq!(
            y.into_iter().next().unwrap(),
            (0..30).fold(<T::Acc as num_traits::Zero>::zero(), |a, _| a + v.to_acc())
        );
    }
    check(1.5f32);
    check(1.5f64);
    check(3i32);
    check(3i64);
    check(2u8);
    check(-2i8);
    check(-300i16);
    check(700u16);
    check(70_000u32);
    check(u64::MAX / 64);
    // A sum that overflows the element type but not 64 bits, as NumPy's int8 sum.
    let small = BlockArray::full(&[1000], 100i8, 300).unwrap();
    assert_eq!(
        small.sum(None, false).unwrap().compute().unwrap()[[]],
        100_000i64
    );
    assert_eq!(
        small.cumsum(0).unwrap().compute().unwrap()[[999]],
        100_000i64
    );
    assert_eq!(
        BlockArray::full(&[3], 200u8, 2)
            .unwrap()
            .prod(None, false)
            .unwrap()
            .compute()
            .unwrap()[[]],
        8_000_000u64
    );
    // NumPy's astype between the integer types wraps, and from floats truncates and saturates.
    let big = BlockArray::full(&[3], 70_000i64, 3).unwrap();
    assert_eq!(
        big.astype::<u16>().compute().unwrap()[[0]],
        70_000u32 as u16
    );
    assert_eq!(big.astype::<i8>().compute().unwrap()[[0]], 70_000i64 as i8);
    let neg = BlockArray::full(&[3], -1.5f64, 3).unwrap();
    assert_eq!(neg.astype::<u32>().compute().unwrap()[[0]], 0);
    assert_eq!(neg.astype::<i16>().compute().unwrap()[[0]], -1);
    let r = blockarray::random::Rng::new(3)
        .integers::<u16>(0, 65536, &[1000], 300)
        .unwrap();
    assert!(r.compute().unwrap().iter().any(|&v| v > 60_000));
    check(num_complex::Complex::new(1.0f32, -1.0));
    check(num_complex::Complex::new(1.0f64, -1.0));
    let b = BlockArray::full(&[4], true, 3).unwrap();
    assert!(
        b.all(None, false)
            .unwrap()
            .compute()
            .unwrap()
            .into_iter()
            .next()
            .unwrap()
    );
    assert!(
        !(!&b)
            .any(None, false)
            .unwrap()
            .compute()
            .unwrap()
            .into_iter()
            .next()
            .unwrap()
    );
}

fn kind<T>(r: Result<T, Error>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind(),
    }
}

#[test]
fn bad_input_is_an_error_naming_what_was_wrong() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    let y = BlockArray::<f64>::ones(&[5, 6], [2, 3]).unwrap();
    let e = (&x + &y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("(4, 6)") && e.to_string().contains("(5, 6)"),
        "{e}"
    );
    let e = x.sum(Some(&[2]), false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Axis);
    assert!(e.to_string().contains('2'), "{e}");
    assert_eq!(kind(x.sum(Some(&[1, 1]), false)), ErrorKind::Axis);
    assert_eq!(kind(x.slice(blockarray::s![4, ..])), ErrorKind::Index);
    assert_eq!(kind(x.slice(blockarray::s![..;0, ..])), ErrorKind::Step);
    assert_eq!(kind(x.slice(blockarray::s![.., .., 1])), ErrorKind::Index);
    assert_eq!(kind(x.take(&[6], 0)), ErrorKind::Index);
    assert_eq!(kind(x.take(&[0], 2)), ErrorKind::Axis);
    assert_eq!(
        kind(BlockArray::<f64>::ones(&[4, 6], vec![vec![2, 1], vec![6]])),
        ErrorKind::Chunks
    );
    assert_eq!(
        kind(BlockArray::<f64>::ones(&[4, 6], [0, 3])),
        ErrorKind::Chunks
    );
    assert_eq!(kind(x.reshape(&[5, 5])), ErrorKind::Shape);
    assert_eq!(kind(x.permuted_axes(&[0, 0])), ErrorKind::Axis);
    assert_eq!(kind(x.swap_axes(0, 2)), ErrorKind::Axis);
    assert_eq!(kind(x.squeeze(Some(&[0]))), ErrorKind::Shape);
    assert_eq!(kind(x.insert_axis(3)), ErrorKind::Axis);
    assert_eq!(kind(concatenate(&[&x, &y.t()], 0)), ErrorKind::Shape);
    assert_eq!(kind(stack::<f64>(&[], 0)), ErrorKind::Shape);
    assert_eq!(kind(x.clip(2.0, 1.0)), ErrorKind::Unsupported);
    assert_eq!(kind(x.block(&[2, 0])), ErrorKind::Index);
    assert_eq!(kind(x.rechunk([3, 0])), ErrorKind::Chunks);
    assert_eq!(
        kind(blockarray::random::Rng::new(1).normal::<f64>(0.0, -1.0, &[3], 1)),
        ErrorKind::Unsupported
    );
    assert_eq!(
        kind(BlockArray::<f64>::zeros(&[0], 1).unwrap().max(None, false)),
        ErrorKind::Shape
    );
    assert_eq!(
        kind(blockarray::reduce(
            &x,
            blockarray::Moments::<f64>::new(blockarray::MomentKind::Mean, false),
            None,
            false,
            1
        )),
        ErrorKind::Unsupported
    );
    // Sizes beyond what can be addressed, or chunked, are refused up front (not a panic or an
    // allocation failure).
    let e = BlockArray::<f64>::ones(&[usize::MAX, 2], [10, 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.to_string().contains("isize::MAX bytes"), "{e}");
    assert_eq!(
        kind(
            blockarray::random::Rng::new(1).random::<f64>(&[1 << 40, 1 << 40], [1 << 20, 1 << 20])
        ),
        ErrorKind::Shape
    );
    let e = BlockArray::<u8>::ones(&[1 << 40], 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks);
    assert!(e.to_string().contains("use larger blocks"), "{e}");
    assert_eq!(
        kind(BlockArray::<f64>::linspace(0.0, 1.0, usize::MAX, true, 3)),
        ErrorKind::Shape
    );
    assert_eq!(
        kind(BlockArray::<f64>::arange(0.0, 1.0, f64::NAN, 3)),
        ErrorKind::Step
    );
    assert_eq!(
        kind(BlockArray::<f64>::arange(0.0, f64::INFINITY, 1.0, 3)),
        ErrorKind::Step
    );
    assert_eq!(
        kind(BlockArray::<f64>::arange(0.0, 1e300, 1e-300, 3)),
        ErrorKind::Step
    );
    assert_eq!(kind(x.reshape(&[usize::MAX, 2])), ErrorKind::Shape);
    // Integer remainder by zero fails when computed, naming the task.
    let i = BlockArray::<i64>::ones(&[3], 2).unwrap();
    let e = (&i % 0).compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Graph);
    assert!(
        e.to_string().contains("by zero") && e.to_string().contains("mod-"),
        "{e}"
    );
}

#[test]
fn ellipsis_and_new_axes_follow_numpy() {
    let d = data(&[3, 4, 5], 9);
    let x = arr(&d, &[vec![2, 1], vec![4], vec![2, 3]]);
    // x[..., 1] == x[:, :, 1]
    let a = x
        .slice(blockarray::s![Ellipsis, 1])
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(a, d.index_axis(Axis(2), 1).to_owned());
    // x[1, ..., NewAxis] has shape (4, 5, 1)
    let b = x.slice(blockarray::s![1, Ellipsis, NewAxis]).unwrap();
    assert_eq!(b.shape(), &[4, 5, 1]);
    assert_eq!(
        b.compute().unwrap(),
        d.index_axis(Axis(0), 1).to_owned().insert_axis(Axis(2))
    );
    // x[NewAxis, :, -1, ::-2]
    let c = x
        .slice(blockarray::s![NewAxis, .., -1, ..;-2])
        .unwrap()
        .compute()
        .unwrap();
    let expected = d
        .index_axis(Axis(1), 3)
        .select(Axis(1), &[4, 2, 0])
        .insert_axis(Axis(0));
    assert_eq!(c, expected);
    assert_eq!(
        kind(x.slice(blockarray::s![Ellipsis, 0, Ellipsis])),
        ErrorKind::Index
    );
}

#[test]
fn block_access_returns_that_block() {
    let d = data(&[7, 5], 3);
    let x = arr(&d, &[vec![3, 4], vec![2, 2, 1]]);
    let b = x.block(&[1, 2]).unwrap();
    assert_eq!(
        b.compute().unwrap(),
        d.slice(ndarray::s![3..7, 4..5]).to_owned().into_dyn()
    );
}

#[test]
fn lazy_slices_lower_only_the_blocks_they_touch() {
    // exp(ones((10000, 10000), chunks 100×100))[1:100, 1:100] lowers one block of ones.
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100]).unwrap();
    let y = x.exp().slice(blockarray::s![1..100, 1..100]).unwrap();
    assert_eq!(y.shape(), &[99, 99]);
    let unfused = y.graph().unwrap();
    assert!(unfused.len() <= 4, "{} tasks:\n{unfused}", unfused.len());
    let (fused, outputs) = y.lowered(None).unwrap();
    assert!(fused.len() <= 2, "{fused}");
    assert_eq!(outputs.len(), 1);
    let v = y.compute().unwrap();
    assert!(v.iter().all(|&e| e == std::f64::consts::E));
    // Building over a million blocks is cheap: no per-block work until lowering.
    let t0 = std::time::Instant::now();
    let big = BlockArray::<f64>::ones(&[1_000_000, 1_000], [1_000, 1]).unwrap();
    assert_eq!(big.chunks().nblocks(), 1_000_000);
    let e = (&big.exp() + 1.0)
        .slice(blockarray::s![5..7, 3..4])
        .unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    // One output block, fused from source read to slice: one task.
    assert_eq!(e.lowered(None).unwrap().0.len(), 1);
    assert_eq!(e.compute().unwrap().len(), 2);
}

#[test]
fn elementwise_chains_fuse_into_one_task_per_block() {
    let x = BlockArray::<f64>::ones(&[40, 40], [10, 10]).unwrap();
    let y = ((x.exp() + 1.0).sin() * 2.0)
        .slice(blockarray::s![.., ..;-1])
        .unwrap()
        .t();
    let (g, outputs) = y.lowered(None).unwrap();
    // 16 blocks: one store... no — `lowered` gives the array's blocks only: one fused task each.
    assert_eq!(outputs.len(), 16);
    assert_eq!(g.len(), 16, "{g}");
    let expected = ((1f64.exp() + 1.0).sin()) * 2.0;
    assert!(y.compute().unwrap().iter().all(|&v| v == expected));
}

#[test]
fn shared_work_is_computed_once_across_outputs() {
    let x = BlockArray::<f64>::ones(&[20, 20], [10, 10]).unwrap();
    let shared = x.exp();
    let a = shared.sum(None, false).unwrap();
    let b = shared.mean(Some(&[0]), false).unwrap();
    let mut c = blockarray::Computation::new();
    let (ha, hb) = (c.add(&a), c.add(&b));
    let (g, _) = c.graph().unwrap();
    // 4 blocks of exp, each read by both reductions: not fused, computed once.
    let exp_tasks = g
        .keys()
        .iter()
        .filter(|k| k.name() == shared.name())
        .count();
    assert_eq!(exp_tasks, 4, "{g}");
    let mut out = c.run(&SyncScheduler::new()).unwrap();
    assert!((out.take(ha).unwrap().into_iter().next().unwrap() - 400.0 * 1f64.exp()).abs() < 1e-9);
    assert_eq!(out.take(hb).unwrap().len(), 20);
    assert!(out.take(ha).is_err());
}

#[test]
fn display_shows_what_dask_shows() {
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [1000, 1000]).unwrap();
    let s = x.to_string();
    assert!(
        s.contains("BlockArray<float64> shape=(10000, 10000) 800.00 MB"),
        "{s}"
    );
    assert!(
        s.contains("blocks of (1000, 1000) 8.00 MB: 100 blocks in (10, 10), 100 tasks"),
        "{s}"
    );
    let y = (&x + &x.t()).unwrap();
    assert!(y.to_string().contains("300 tasks"), "{}", y);
    let listing = x
        .slice(blockarray::s![..1000, ..2000])
        .unwrap()
        .graph()
        .unwrap()
        .to_string();
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(x.to_dot().unwrap().starts_with("digraph"));
}

#[test]
fn store_writes_many_arrays_to_many_sinks_in_one_run() {
    use std::sync::Arc;
    let x = BlockArray::arange(0i64, 12, 1, 5).unwrap();
    let y = (&x * 2).reshape(&[3, 4]).unwrap();
    let s1 = Arc::new(blockarray::ArraySink::new(ArrayD::zeros(IxDyn(&[12]))));
    let s2 = Arc::new(blockarray::ArraySink::new(ArrayD::zeros(IxDyn(&[3, 4]))));
    let mut c = blockarray::Computation::new();
    c.store(&x, s1.clone()).unwrap();
    c.store(&y, s2.clone()).unwrap();
    let wrong = Arc::new(blockarray::ArraySink::new(ArrayD::zeros(IxDyn(&[4, 3]))));
    assert_eq!(c.store(&y, wrong).unwrap_err().kind(), ErrorKind::Shape);
    c.run(&ThreadedScheduler::new()).unwrap();
    let a = Arc::try_unwrap(s1).ok().unwrap().into_inner();
    let b = Arc::try_unwrap(s2).ok().unwrap().into_inner();
    assert_eq!(a.into_raw_vec_and_offset().0, (0..12).collect::<Vec<i64>>());
    assert_eq!(
        b.into_raw_vec_and_offset().0,
        (0..12).map(|v| v * 2).collect::<Vec<i64>>()
    );
    let mut into = ArrayD::zeros(IxDyn(&[3, 4]));
    y.store_into(&mut into).unwrap();
    assert_eq!(into[[2, 3]], 22);
    let mut bad = ArrayD::zeros(IxDyn(&[2]));
    assert_eq!(y.store_into(&mut bad).unwrap_err().kind(), ErrorKind::Shape);
}

/// A sink that records how its run ended, and can refuse to commit.
struct Recorder {
    log: std::sync::Mutex<Vec<&'static str>>,
    refuse_commit: bool,
}

impl Recorder {
    fn new(refuse_commit: bool) -> std::sync::Arc<Recorder> {
        std::sync::Arc::new(Recorder {
            log: std::sync::Mutex::new(Vec::new()),
            refuse_commit,
        })
    }
    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }
}

impl blockarray::ChunkSink<f64> for Recorder {
    fn shape(&self) -> Vec<usize> {
        vec![6]
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        self.log.lock().unwrap().push("write");
        Ok(())
    }
    fn describe(&self) -> String {
        "the recorder".to_owned()
    }
    fn commit(&self) -> blockarray::Result<()> {
        self.log.lock().unwrap().push("commit");
        if self.refuse_commit {
            Err(Error::io("the recorder refuses to commit"))
        } else {
            Ok(())
        }
    }
    fn abort(&self) {
        self.log.lock().unwrap().push("abort");
    }
    fn prepare(&self) -> blockarray::Result<()> {
        self.log.lock().unwrap().push("prepare");
        Ok(())
    }
    fn rollback(&self) {
        self.log.lock().unwrap().push("rollback");
    }
    fn finish(&self) {
        self.log.lock().unwrap().push("finish");
    }
}

#[test]
fn sinks_are_committed_after_success_and_aborted_after_failure() {
    let x = BlockArray::<f64>::ones(&[6], 3).unwrap();
    // Success: every block written, then one commit.
    let ok = Recorder::new(false);
    x.store(ok.clone()).unwrap();
    assert_eq!(ok.log(), ["write", "write", "prepare", "commit", "finish"]);
    // A failing task: no commit, one abort, for every sink of the run.
    let bad = x.map(
        "fails-on-ones",
        |v: f64| {
            if v == 1.0 { panic!("one") } else { v }
        },
    );
    let (a, b) = (Recorder::new(false), Recorder::new(false));
    let mut c = blockarray::Computation::new();
    c.store(&bad, a.clone()).unwrap();
    c.store(&x, b.clone()).unwrap();
    assert!(c.run(&SyncScheduler::new()).is_err());
    assert_eq!(a.log().last(), Some(&"abort"));
    assert!(!a.log().contains(&"commit") && !b.log().contains(&"commit"));
    assert_eq!(b.log().last(), Some(&"abort"));
    // A refused commit fails the run: it and the sinks after it are aborted, not committed.
    let (first, second) = (Recorder::new(true), Recorder::new(false));
    let mut c = blockarray::Computation::new();
    c.store(&x, first.clone()).unwrap();
    c.store(&x, second.clone()).unwrap();
    let e = c.run(&ThreadedScheduler::new()).unwrap_err();
    assert!(e.to_string().contains("refuses to commit"), "{e}");
    assert_eq!(&first.log()[2..], ["prepare", "commit", "abort"]);
    assert_eq!(&second.log()[2..], ["prepare", "abort"]);
    // A sink that committed before another refused is rolled back: all of a run, or none.
    let (first, second) = (Recorder::new(false), Recorder::new(true));
    let mut c = blockarray::Computation::new();
    c.store(&x, first.clone()).unwrap();
    c.store(&x, second.clone()).unwrap();
    assert!(c.run(&SyncScheduler::new()).is_err());
    assert_eq!(&first.log()[2..], ["prepare", "commit", "rollback"]);
    assert_eq!(&second.log()[2..], ["prepare", "commit", "abort"]);
    // A shape mismatch names the sink.
    let e = BlockArray::<f64>::ones(&[5], 3)
        .unwrap()
        .store(Recorder::new(false))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("the recorder") && e.to_string().contains("(5,)"),
        "{e}"
    );
}

/// A sink that accepts only blocks of length 2 or 4 (as if its unit of writing were 2).
struct Pairs;

impl blockarray::ChunkSink<f64> for Pairs {
    fn shape(&self) -> Vec<usize> {
        vec![8]
    }
    fn write_block(&self, _: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        Ok(())
    }
    fn check_chunks(&self, chunks: &blockarray::Chunks) -> blockarray::Result<()> {
        if chunks.axis(0).iter().all(|&b| b % 2 == 0) {
            Ok(())
        } else {
            Err(Error::chunks(format!("rechunk to pairs, not {chunks}")))
        }
    }
}

#[test]
fn a_sink_can_refuse_a_chunking_before_anything_runs() {
    let good = BlockArray::<f64>::ones(&[8], 4).unwrap();
    good.store(std::sync::Arc::new(Pairs)).unwrap();
    let odd = BlockArray::<f64>::ones(&[8], 3).unwrap();
    let mut c = blockarray::Computation::new();
    let e = c.store(&odd, std::sync::Arc::new(Pairs)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Chunks);
    assert!(e.to_string().contains("rechunk to pairs"), "{e}");
    // After a rechunk it is accepted.
    c.store(&odd.rechunk(2).unwrap(), std::sync::Arc::new(Pairs))
        .unwrap();
}

#[test]
fn a_failing_task_fails_compute_with_the_key() {
    let x = BlockArray::<f64>::ones(&[10], 3).unwrap();
    let bad = x.map("explode", |v: f64| {
        if v > 0.0 {
            panic!("exploded on {v}")
        } else {
            v
        }
    });
    let e = bad.compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Graph);
    assert!(
        e.to_string().contains("exploded on 1") && e.to_string().contains("panicked"),
        "{e}"
    );
}

/// A naive tensordot: loops over every output position and contracted position.
fn naive_tensordot(a: &ArrayD<f64>, b: &ArrayD<f64>, ca: &[usize], cb: &[usize]) -> ArrayD<f64> {
    let fa: Vec<usize> = (0..a.ndim()).filter(|x| !ca.contains(x)).collect();
    let fb: Vec<usize> = (0..b.ndim()).filter(|x| !cb.contains(x)).collect();
    let mut out_shape: Vec<usize> = fa.iter().map(|&x| a.shape()[x]).collect();
    out_shape.extend(fb.iter().map(|&x| b.shape()[x]));
    let con_shape: Vec<usize> = ca.iter().map(|&x| a.shape()[x]).collect();
    let con_total: usize = con_shape.iter().product();
    ArrayD::from_shape_fn(IxDyn(&out_shape), |o| {
        let mut sum = 0.0;
        for lin in 0..con_total {
            let mut k = vec![0; con_shape.len()];
            let mut rem = lin;
            for d in (0..con_shape.len()).rev() {
                k[d] = rem % con_shape[d];
                rem /= con_shape[d];
            }
            let mut ia = vec![0; a.ndim()];
            let mut ib = vec![0; b.ndim()];
            for (p, &x) in fa.iter().enumerate() {
                ia[x] = o[p];
            }
            for (p, &x) in fb.iter().enumerate() {
                ib[x] = o[fa.len() + p];
            }
            for (p, (&x, &y)) in ca.iter().zip(cb).enumerate() {
                ia[x] = k[p];
                ib[y] = k[p];
            }
            sum += a[IxDyn(&ia)] * b[IxDyn(&ib)];
        }
        sum
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matmul_matches_ndarray_dot(m in 0usize..9, k in 0usize..25, n in 0usize..9, ca in arb_chunks(vec![9, 25]), cb in arb_chunks(vec![25, 9]), seed in any::<u64>(), thr in any::<bool>()) {
        let a = data(&[m, k], seed);
        let b = data(&[k, n], seed ^ 1);
        let fit = |c: &Vec<usize>, len: usize| -> Vec<usize> {
            // Trim a chunking of 9 or 25 down to `len`.
            let mut out = Vec::new();
            let mut left = len;
            for &x in c { if left == 0 { break; } let t = x.min(left); out.push(t); left -= t; }
            if out.is_empty() { out.push(0); }
            out
        };
        let x = arr(&a, &[fit(&ca[0], m), fit(&ca[1], k)]);
        let y = arr(&b, &[fit(&cb[0], k), fit(&cb[1], n)]);
        let got = x.matmul(&y).unwrap().compute_with(&*scheduler(thr)).unwrap();
        let expected = a.clone().into_dimensionality::<ndarray::Ix2>().unwrap().dot(&b.clone().into_dimensionality::<ndarray::Ix2>().unwrap());
        prop_assert_eq!(got, expected.into_dyn());
    }

    #[test]
    fn tensordot_matches_naive((shape, c1, _c2, seed, thr) in arb_case(3), pick in any::<u8>()) {
        // Contract a subset of axes of x with the same axes of a permuted copy.
        let nd = shape.len();
        let axes: Vec<usize> = (0..nd).filter(|a| pick & (1 << a) != 0).collect();
        let d = data(&shape, seed);
        let e = data(&shape, seed ^ 5);
        let x = arr(&d, &c1);
        let y = arr(&e, &c1).t();
        let yd = e.t().to_owned();
        let axes_b: Vec<usize> = axes.iter().map(|&a| nd - 1 - a).collect();
        let got = blockarray::tensordot(&x, &y, &axes, &axes_b).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got, naive_tensordot(&d, &yd, &axes, &axes_b));
    }

    #[test]
    fn symmetric_and_transposed_contractions_match_naive((shape, c1, c2, seed, thr) in arb_case(3), pick in any::<u8>()) {
        // x · x over any axes (symmetric: only the upper triangle of blocks is contracted, the
        // rest mirrored), and x against a transposed other array (read as transposed views).
        let nd = shape.len();
        let axes: Vec<usize> = (0..nd).filter(|a| pick & (1 << a) != 0).collect();
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let got = blockarray::tensordot(&x, &x, &axes, &axes).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got, naive_tensordot(&d, &d, &axes, &axes));
        let rev: Vec<usize> = axes.iter().map(|&a| nd - 1 - a).collect();
        let got = blockarray::tensordot(&x, &x.t(), &axes, &rev).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got, naive_tensordot(&d, &d.t().to_owned(), &axes, &rev));
        let e = data(&shape, seed ^ 9);
        let y = arr(&e, &c2).t();
        let got = blockarray::tensordot(&x.t(), &y, &rev, &rev).unwrap().compute_with(&*scheduler(thr)).unwrap();
        prop_assert_eq!(got, naive_tensordot(&d.t().to_owned(), &e.t().to_owned(), &rev, &rev));
    }

    #[test]
    fn map_blocks_sees_each_block_once((shape, c1, _c2, seed, thr) in arb_case(3)) {
        let d = data(&shape, seed);
        let x = arr(&d, &c1);
        let y = x.map_blocks("plus-first-start", None, |b, info| {
            let shift = info.start.first().copied().unwrap_or(0) as f64;
            Ok(b.mapv(|v| v * 2.0 + shift))
        }).unwrap();
        let got = y.compute_with(&*scheduler(thr)).unwrap();
        let starts: Vec<usize> = if shape.is_empty() { vec![] } else {
            let mut s = Vec::new();
            let mut acc = 0;
            for &c in &c1[0] { for _ in 0..c { s.push(acc); } acc += c; }
            s
        };
        let expected = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
            let shift = if shape.is_empty() { 0.0 } else { starts[i[0]] as f64 };
            d[&i] * 2.0 + shift
        });
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn gram_matrices_contract_only_the_upper_triangle_of_blocks() {
    // 4 × 4 output blocks: x @ x.T and x.T @ x contract 10 (the diagonal and above) and mirror
    // the other 6; x @ y.T contracts all 16.
    let d = data(&[10, 7], 3);
    let x = arr(&d, &[vec![3, 3, 3, 1], vec![4, 3]]);
    let contractions = |z: &BlockArray<f64>| {
        let g = z.graph().unwrap();
        g.keys()
            .iter()
            .filter(|k| k.name().starts_with("tensordot") && k.index().len() == 3)
            .count()
    };
    let dm = d.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let xxt = x.matmul(&x.t()).unwrap();
    assert_eq!(contractions(&xxt), 10);
    assert_eq!(xxt.compute().unwrap(), dm.dot(&dm.t()).into_dyn());
    let xt = arr(&d, &[vec![3, 3, 3, 1], vec![2, 2, 2, 1]]).t();
    let xtx = xt.matmul(&xt.t()).unwrap();
    assert_eq!(contractions(&xtx), 10);
    assert_eq!(xtx.compute().unwrap(), dm.t().dot(&dm).into_dyn());
    let y = arr(&data(&[10, 7], 4), &[vec![3, 3, 3, 1], vec![4, 3]]);
    assert_eq!(contractions(&x.matmul(&y.t()).unwrap()), 16);
    // A slice of a Gram matrix lowers only the contractions it reads.
    // Complex and f32 Gram matrices (the transpose, not the conjugate transpose) take the
    // same path, with faer's triangular product on the diagonal blocks.
    let z = d.mapv(|v| num_complex::Complex::new(v, 1.0 - v));
    let zm = z.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let zb = BlockArray::from_array(z, [3, 4]).unwrap();
    assert_eq!(
        zb.matmul(&zb.t()).unwrap().compute().unwrap(),
        zm.dot(&zm.t()).into_dyn()
    );
    let f = d.mapv(|v| v as f32);
    let fm = f.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let fb = BlockArray::from_array(f, [4, 3]).unwrap();
    assert_eq!(
        fb.t().matmul(&fb).unwrap().compute().unwrap(),
        fm.t().dot(&fm).into_dyn()
    );
    // Rows 7.. are in row blocks 2 and 3, columns ..3 in column block 0: blocks (2, 0) and
    // (3, 0), mirrored from (0, 2) and (0, 3).
    let corner = xxt.slice(blockarray::s![7.., ..3]).unwrap();
    assert_eq!(contractions(&corner), 2);
    assert_eq!(
        corner.compute().unwrap(),
        dm.dot(&dm.t())
            .slice(ndarray::s![7.., ..3])
            .to_owned()
            .into_dyn()
    );
}

#[test]
fn contraction_over_many_blocks_uses_a_tree_and_stays_exact() {
    // 20 contracted blocks: more than one group of CONTRACT_GROUP products.
    let a = data(&[3, 20], 1);
    let b = data(&[20, 4], 2);
    let x = arr(&a, &[vec![3], vec![1; 20]]);
    let y = arr(&b, &[vec![1; 20], vec![2, 2]]);
    let z = x.matmul(&y).unwrap();
    let g = z.graph().unwrap();
    assert!(
        g.keys().iter().any(|k| k.name().starts_with("sum-combine")),
        "{g}"
    );
    let expected = a
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .dot(&b.into_dimensionality::<ndarray::Ix2>().unwrap());
    assert_eq!(z.compute().unwrap(), expected.into_dyn());
    // Integers go through ndarray's GEMM.
    let i = BlockArray::arange(0i64, 12, 1, 5)
        .unwrap()
        .reshape(&[3, 4])
        .unwrap();
    let ii = i.matmul(&i.t()).unwrap().compute().unwrap();
    assert_eq!(ii[[2, 2]], 8 * 8 + 9 * 9 + 10 * 10 + 11 * 11);
    // Vectors.
    let v = BlockArray::<f64>::ones(&[4], 3).unwrap();
    let m = BlockArray::<f64>::ones(&[4, 2], [2, 2]).unwrap();
    assert_eq!(v.matmul(&m).unwrap().shape(), &[2]);
    assert_eq!(
        v.dot(&v).unwrap().compute().unwrap().into_iter().next(),
        Some(4.0)
    );
}

#[test]
fn contraction_and_blockwise_bad_input() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    let y = BlockArray::<f64>::ones(&[5, 6], [2, 3]).unwrap();
    let e = x.matmul(&y).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("length 6") && e.to_string().contains("length 5"),
        "{e}"
    );
    assert_eq!(
        kind(blockarray::tensordot(&x, &y, &[0, 1], &[1])),
        ErrorKind::Axis
    );
    assert_eq!(
        kind(blockarray::tensordot(&x, &y, &[2], &[1])),
        ErrorKind::Axis
    );
    assert_eq!(
        kind(blockarray::tensordot(&x, &x, &[1, 1], &[1, 1])),
        ErrorKind::Axis
    );
    let cube = BlockArray::<f64>::ones(&[2, 2, 2], 1).unwrap();
    // Stacks of matrices multiply (batched matmul, tests/shape_ops.rs); a 0-d operand does not.
    assert!(cube.matmul(&cube).is_ok());
    let scalar = BlockArray::<f64>::ones(&[], 1).unwrap();
    assert_eq!(kind(cube.matmul(&scalar)), ErrorKind::Shape);
    // map_blocks: wrong number of declared blocks, then a block of the wrong shape.
    let wrong = blockarray::ChunkSpec::Explicit(vec![vec![4], vec![3, 3]]);
    assert_eq!(
        kind(x.map_blocks("id", Some(wrong), |b, _| Ok(b.clone()))),
        ErrorKind::Chunks
    );
    let bad = x
        .map_blocks("shrink", None, |b, _| {
            Ok(b.slice(ndarray::s![..1, ..]).to_owned().into_dyn())
        })
        .unwrap();
    let e = bad.compute().unwrap_err();
    assert!(
        e.to_string().contains("shrink") && e.to_string().contains("declared"),
        "{e}"
    );
    assert_eq!(
        kind(blockarray::blockwise::<f64, f64, _>(
            "none",
            &[],
            None,
            |b, _| Ok(b[0].clone())
        )),
        ErrorKind::Shape
    );
    assert_eq!(
        kind(blockarray::blockwise("pair", &[&x, &y], None, |b, _| Ok(b
            [0]
        .clone()))),
        ErrorKind::Shape
    );
}

#[test]
fn complex_ufuncs_match_num_complex() {
    use num_complex::Complex;
    let d = ArrayD::from_shape_fn(IxDyn(&[5, 4]), |i| {
        Complex::new(i[0] as f64 - 2.0, i[1] as f64 * 0.5 - 1.0)
    });
    let x = BlockArray::from_array(d.clone(), [2, 3]).unwrap();
    let near = |a: &ArrayD<Complex<f64>>, b: &ArrayD<Complex<f64>>| {
        a.iter()
            .zip(b.iter())
            .all(|(p, q)| p == q || (p - q).norm() < 1e-12)
    };
    assert!(near(&x.exp().compute().unwrap(), &d.mapv(|z| z.exp())));
    assert!(near(&x.log().compute().unwrap(), &d.mapv(|z| z.ln())));
    assert!(near(
        &x.sqrt().tanh().compute().unwrap(),
        &d.mapv(|z| z.sqrt().tanh())
    ));
    assert!(near(
        &(&x * &x.conj()).unwrap().compute().unwrap(),
        &d.mapv(|z| Complex::new(z.norm_sqr(), 0.0))
    ));
    assert_eq!(x.abs().compute().unwrap(), d.mapv(|z| z.norm()));
    assert_eq!(x.re().compute().unwrap(), d.mapv(|z| z.re));
    assert_eq!(
        x.im()
            .sum(None, false)
            .unwrap()
            .compute()
            .unwrap()
            .into_iter()
            .next(),
        Some(d.mapv(|z| z.im).sum())
    );
}

#[test]
fn planned_rechunk_keeps_every_task_under_the_bound() {
    // 1000 × 1000 f64 from row blocks (1000 × 10) to column blocks (10 × 1000). Directly, each
    // new block reads a piece of all 100 old blocks (an 8 MB region); the plan goes through an
    // intermediate chunking so that no task reads a region of more than the bound.
    let x = BlockArray::<f64>::ones(&[1000, 1000], [1000, 10]).unwrap();
    let bound = 800_000;
    let planned = x.rechunk_bounded([10, 1000], bound).unwrap();
    // Walk the chain of rechunk steps back to the source.
    let steps = |y: &BlockArray<f64>| {
        let mut chunks = vec![y.chunks().clone()];
        let mut node = y.node().clone();
        while let Some(input) = node.inputs().first().cloned() {
            chunks.push(input.meta().chunks.clone());
            node = input;
        }
        chunks.reverse();
        chunks
    };
    let planned_steps = steps(&planned);
    assert!(
        planned_steps.len() >= 3,
        "expected an intermediate: {planned_steps:?}"
    );
    for w in planned_steps.windows(2) {
        let read = blockarray::plan::rechunk::rechunk_read_elems(&w[0], &w[1]).unwrap() * 8;
        assert!(
            read <= bound,
            "step {} -> {} reads {read} bytes",
            w[0],
            w[1]
        );
    }
    let (first, last) = (&planned_steps[0], &planned_steps[planned_steps.len() - 1]);
    assert!(blockarray::plan::rechunk::rechunk_read_elems(first, last).unwrap() * 8 >= 8_000_000);
    let v = planned.sum(Some(&[1]), false).unwrap().compute().unwrap();
    assert!(v.iter().all(|&s| s == 1000.0));
}

/// A handle is taken only from its own computation's results: another computation's handle of
/// the same index gave that computation's array, and one of another type destroyed the result
/// before failing.
#[test]
fn handles_of_another_computation_are_refused() {
    let a = BlockArray::<f64>::ones(&[4], [2]).unwrap();
    let b = BlockArray::<i64>::zeros(&[4], [2]).unwrap();
    let c = BlockArray::<f64>::zeros(&[4], [2]).unwrap();
    let (mut c1, mut c2, mut c3) = (
        blockarray::Computation::new(),
        blockarray::Computation::new(),
        blockarray::Computation::new(),
    );
    let ha = c1.add(&a);
    let (hb, hc) = (c2.add(&b), c3.add(&c));
    let mut r1 = c1.run(&SyncScheduler::new()).unwrap();
    assert!(
        r1.take(hc)
            .unwrap_err()
            .to_string()
            .contains("another computation")
    );
    assert!(r1.take(hb).is_err());
    assert_eq!(r1.take(ha).unwrap().sum(), 4.0);
    assert!(r1.take(ha).is_err());
}

/// Two persists of one expression are two snapshots: named apart, so a computation that reads
/// both reads each (they had one name, and one stood in for the other).
/// One `OpName::unique` cloned into two calls keys each call afresh: with closures of one
/// type capturing different values, both arrays got one key and one the other's result.
#[test]
fn a_unique_name_given_to_two_calls_keys_them_apart() {
    let x = BlockArray::<f64>::ones(&[4], 2).unwrap();
    let op = blockarray::OpName::unique("scale");
    let by = |k: f64| {
        x.map_blocks(op.clone(), None, move |b: &ArrayD<f64>, _| Ok(b * k))
            .unwrap()
    };
    let (a, b) = (by(2.0), by(3.0));
    assert_ne!(a.name(), b.name());
    let map = |k: f64| x.map(op.clone(), move |v: f64| v * k);
    let (c, d) = (map(2.0), map(3.0));
    assert_ne!(c.name(), d.name());
    for s in [
        &SyncScheduler::new() as &dyn dag_core::Scheduler,
        &ThreadedScheduler::new(),
    ] {
        let mut comp = blockarray::Computation::new();
        let hs = [comp.add(&a), comp.add(&b), comp.add(&c), comp.add(&d)];
        let mut out = comp.run(s).unwrap();
        for (h, want) in hs.into_iter().zip([2.0, 3.0, 2.0, 3.0]) {
            assert!(out.take(h).unwrap().iter().all(|&v| v == want), "{want}");
        }
    }
    // Pure names still share tasks when their tokens agree.
    let p = blockarray::OpName::pure("scale", &2.0f64);
    let (e, f) = (
        x.map(p.clone(), |v: f64| v * 2.0),
        x.map(p, |v: f64| v * 2.0),
    );
    assert_eq!(e.name(), f.name());
}

#[test]
fn two_persists_of_one_array_are_named_apart() {
    let x = BlockArray::<f64>::ones(&[6], [3]).unwrap();
    let (p0, p1) = (x.persist().unwrap(), x.persist().unwrap());
    assert_ne!(p0.name(), p1.name());
    assert_eq!((&p1 - &p0).unwrap().compute().unwrap().sum(), 0.0);
}

#[test]
fn results_of_one_block_are_that_block_in_standard_layout() {
    // One square block, transposed in memory order by a user's function: taken as it is, the
    // array would be in Fortran order.
    let base = ndarray::Array::from_shape_fn(IxDyn(&[4, 4]), |i| (i[0] * 10 + i[1]) as f64);
    let x = BlockArray::from_array(base.clone(), [4, 4]).unwrap();
    let t = x
        .map_blocks("fortran-transpose", None, |b, _| Ok(b.t().to_owned()))
        .unwrap();
    assert_eq!(t.numblocks(), vec![1, 1]);
    for s in [
        &SyncScheduler::new() as &dyn dag_core::Scheduler,
        &ThreadedScheduler::new(),
    ] {
        // The same block asked for twice, and once more through another result: each taken
        // array is its own, whichever holds the block last.
        let mut c = blockarray::Computation::new();
        let (h1, h2, h3) = (c.add(&t), c.add(&t), c.add(&x));
        let mut out = c.run(s).unwrap();
        let (mut a, b, c3) = (
            out.take(h1).unwrap(),
            out.take(h2).unwrap(),
            out.take(h3).unwrap(),
        );
        assert!(a.is_standard_layout() && b.is_standard_layout());
        assert_eq!(a, base.t());
        assert_eq!(b, base.t());
        assert_eq!(c3, base);
        a[[0, 0]] = -1.0;
        assert_eq!(b[[0, 0]], 0.0);
        assert!(out.take(h1).is_err());
    }
    // A 0-d result (a full reduction) and an empty one.
    assert_eq!(
        x.sum(None, false).unwrap().compute().unwrap().sum(),
        base.sum()
    );
    let empty = BlockArray::<f64>::zeros(&[0, 4], [1, 4]).unwrap();
    assert_eq!(empty.compute().unwrap().shape(), &[0, 4]);
}

/// A scheduler running in this process that says it is one of two, as a distributed one
/// does (lowering then plans for tasks whose inputs travel to them); when `other_refuses`, the
/// other process refuses to start (it has too little memory, say).
struct TwoProcesses {
    other_refuses: bool,
}

impl dag_core::Scheduler for TwoProcesses {
    fn name(&self) -> &str {
        "two-processes"
    }
    fn execute(
        &self,
        plan: &dag_core::Plan,
        callbacks: &dyn dag_core::Callbacks,
    ) -> Result<dag_core::Execution, dag_core::Error> {
        SyncScheduler::new().execute(plan, callbacks)
    }
    fn processes(&self) -> usize {
        2
    }
    fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        if self.other_refuses {
            Err("process 1 refused: not enough memory".into())
        } else {
            outcome
        }
    }
}

#[test]
fn a_run_another_process_refuses_is_not_started() {
    let x = BlockArray::<f64>::ones(&[10], 5).unwrap();
    let refuses = TwoProcesses {
        other_refuses: true,
    };
    let e = x.persist_with(&refuses).unwrap_err();
    assert!(e.to_string().contains("process 1 refused"), "{e}");
    let e = x.compute_with(&refuses).unwrap_err();
    assert!(e.to_string().contains("process 1 refused"), "{e}");
}

#[test]
fn transposing_rechunks_take_one_step_in_one_process() {
    // 4200 × 4200 f64 (141 MB) from column blocks to row blocks: directly, every new block
    // reads every old block, more than `rechunk`'s 128 MiB bound, so it plans two steps.
    let x = blockarray::random::Rng::new(3)
        .random::<f64>(&[4200, 4200], [4200, 42])
        .unwrap();
    let y = x.rechunk([42, 4200]).unwrap();
    let mid = y.node().inputs()[0].clone();
    assert_ne!(mid.meta().name, x.node().meta().name, "no intermediate");
    let array_bytes = 4200 * 4200 * 8;
    let plan = |a: &BlockArray<f64>, s: &dyn dag_core::Scheduler| {
        let mut c = blockarray::Computation::new();
        c.add(a);
        c.allowed_mem(None);
        c.plan(s).unwrap()
    };
    // In one process the two steps merge: each new block is assembled straight from the 100
    // old blocks (all held at once either way), one copy of the array instead of two. (Each
    // of the 100 new blocks also has a task writing it into the result.)
    let one = plan(&y, &SyncScheduler::new());
    assert_eq!(one.tasks, 300, "{one}");
    assert!(one.largest_task.as_ref().unwrap().1 > array_bytes, "{one}");
    // Across processes, and under an explicit bound, the intermediate stays.
    let bound = blockarray::DEFAULT_CHUNK_BYTES + 2 * 1_411_200;
    let two = plan(
        &y,
        &TwoProcesses {
            other_refuses: false,
        },
    );
    assert_eq!(two.tasks, 300 + mid.meta().chunks.nblocks(), "{two}");
    assert!(two.largest_task.as_ref().unwrap().1 <= bound, "{two}");
    let bounded = x
        .rechunk_bounded([42, 4200], blockarray::DEFAULT_CHUNK_BYTES)
        .unwrap();
    let kept = plan(&bounded, &SyncScheduler::new());
    assert!(kept.largest_task.as_ref().unwrap().1 <= bound, "{kept}");
    // Not one key for both, so that one computation holding both keeps the bound for one.
    assert_ne!(bounded.name(), y.name());
    let mut both = blockarray::Computation::new();
    both.add(&y);
    both.add(&bounded);
    both.allowed_mem(None);
    let both = both.plan(&SyncScheduler::new()).unwrap();
    assert_eq!(both.tasks, one.tasks + kept.tasks - 100, "{both}"); // the sources are shared
    // The values: the same blocks every way.
    let want = x.compute().unwrap();
    assert_eq!(y.compute_with(&SyncScheduler::new()).unwrap(), want);
    assert_eq!(y.compute_with(&ThreadedScheduler::new()).unwrap(), want);
    assert_eq!(
        y.compute_with(&TwoProcesses {
            other_refuses: false,
        })
        .unwrap(),
        want
    );
    assert_eq!(bounded.compute().unwrap(), want);
}

/// A float sum's rounding error, relative to the exact (f64) sum of the same values.
fn rel_err(got: f64, exact: f64) -> f64 {
    ((got - exact) / exact).abs()
}

/// The in-block sum blockarray used before: eight plain accumulator lanes, in f32.
fn eight_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for c in xs.chunks(8) {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum()
}

#[test]
fn float_sums_are_as_accurate_as_numpys_pairwise_summation() {
    // Uniform f32 values, summed in one block and in several. Plain lanes are far off (the
    // check below shows the bound would catch them); NumPy's pairwise error is ~10⁻⁸.
    let n = 8_000_000;
    let one = blockarray::random::Rng::new(11)
        .random::<f32>(&[n], [n])
        .unwrap()
        .persist()
        .unwrap();
    let values = one.compute().unwrap();
    let values = values.as_slice().unwrap();
    let exact: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let bound = 1e-7;
    assert!(rel_err(f64::from(eight_lanes(values)), exact) > bound);
    for chunk in [n, 3_000_001, 500_000] {
        let x = one.rechunk(vec![chunk]).unwrap();
        let got = f64::from(x.sum(None, false).unwrap().compute().unwrap()[[]]);
        assert!(
            rel_err(got, exact) < bound,
            "chunk {chunk}: {got} vs {exact}"
        );
        let nan = f64::from(x.nansum(None, false).unwrap().compute().unwrap()[[]]);
        assert!(
            rel_err(nan, exact) < bound,
            "nansum, chunk {chunk}: {nan} vs {exact}"
        );
        let mean = f64::from(x.mean(None, false).unwrap().compute().unwrap()[[]]);
        assert!(
            rel_err(mean, exact / n as f64) < bound,
            "mean, chunk {chunk}"
        );
    }
    // A constant in one block: each plain lane's running sum outgrows the constant's precision
    // (the 2·10⁸ ones summed to 134217730); pairwise sums stay within 10⁻⁶.
    let n = 8_000_000;
    let tenths = BlockArray::<f32>::full(&[n], 0.1, [n]).unwrap();
    let exact = f64::from(0.1f32) * n as f64;
    assert!(rel_err(f64::from(eight_lanes(&vec![0.1f32; n])), exact) > 1e-5);
    let got = f64::from(tenths.sum(None, false).unwrap().compute().unwrap()[[]]);
    assert!(rel_err(got, exact) < 1e-6, "{got} vs {exact}");
    // Along a leading axis (whole rows added at a time): pairwise over the rows too.
    let rows = 1_000_000;
    let m = BlockArray::<f32>::full(&[rows, 4], 0.1, [rows, 4]).unwrap();
    let col = m.sum(Some(&[0]), false).unwrap().compute().unwrap();
    let exact = f64::from(0.1f32) * rows as f64;
    let plain = (0..rows).fold(0f32, |a, _| a + 0.1);
    assert!(rel_err(f64::from(plain), exact) > 1e-5);
    for &c in col.iter() {
        assert!(rel_err(f64::from(c), exact) < 1e-6, "{c} vs {exact}");
    }
    // f64 moments along a leading axis with a large offset: pairwise sums, then Chan's merge.
    let v = BlockArray::<f64>::arange(0.0, 2e6, 1.0, 2_000_000)
        .unwrap()
        .reshape(&[1_000_000, 2])
        .unwrap();
    let shifted = &v + 1e9;
    let var = shifted
        .var(Some(&[0]), 0.0, false)
        .unwrap()
        .compute()
        .unwrap();
    let exact_var = (1e12 - 1.0) / 3.0; // 0, 2, 4, … (and 1, 3, 5, …): spacing 2
    for &x in var.iter() {
        assert!(rel_err(x, exact_var) < 1e-9, "{x} vs {exact_var}");
    }
}

/// Sums that overflow in every block: the variance is inf whatever the chunking, as NumPy's
/// one pass finds (merging two overflowed blocks' partials gave inf - inf = NaN), while NaN
/// and infinite values in the data still give NaN.
#[test]
fn variance_of_blocks_whose_sums_overflow_is_inf_in_every_chunking() {
    for chunks in [4usize, 2, 1] {
        let x = BlockArray::from_array(ndarray::arr1(&[1e308f64; 4]), chunks).unwrap();
        let one = |a: Result<BlockArray<f64>, Error>| a.unwrap().compute().unwrap()[[]];
        assert_eq!(one(x.var(None, 0.0, false)), f64::INFINITY, "{chunks}");
        assert_eq!(one(x.std(None, 0.0, false)), f64::INFINITY, "{chunks}");
        assert_eq!(one(x.nanvar(None, 1.0, false)), f64::INFINITY, "{chunks}");
        assert_eq!(one(x.nanstd(None, 1.0, false)), f64::INFINITY, "{chunks}");
        let x = BlockArray::from_array(ndarray::arr1(&[1e308, 1e308, f64::INFINITY, 1.0]), chunks)
            .unwrap();
        assert!(one(x.var(None, 0.0, false)).is_nan(), "{chunks}");
    }
}

/// A boolean array with some true and some false elements (from the data's sign and a seed).
fn bools(d: &ArrayD<f64>, seed: u64) -> ArrayD<bool> {
    let mut i = seed;
    d.mapv(|v| {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v > 0.0 || (i >> 60) == 0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn masks_and_nonzero_select_like_numpy((shape, chunks, chunks2, seed, threaded) in arb_case(3)) {
        let s = scheduler(threaded);
        let d = data(&shape, seed);
        let m = bools(&d, seed);
        let x = arr(&d, &chunks);
        let mb = BlockArray::from_array(m.clone(), chunks2.clone()).unwrap();
        // x[m]: the selected elements in C order (one block per flattened block).
        let want: Vec<f64> = d.iter().zip(m.iter()).filter(|(_, b)| **b).map(|(v, _)| *v).collect();
        let sel = x.mask(&mb).unwrap();
        prop_assert!(!sel.chunks().is_known());
        prop_assert_eq!(sel.compute_with(&*s).unwrap().into_raw_vec_and_offset().0, want.clone());
        let total: f64 = want.iter().sum();
        prop_assert_eq!(sel.sum(None, false).unwrap().compute_with(&*s).unwrap()[[]], total);
        let mean = sel.mean(None, false).unwrap().compute_with(&*s).unwrap()[[]];
        let mean_ok = if want.is_empty() { mean.is_nan() } else { (mean - total / want.len() as f64).abs() < 1e-9 };
        prop_assert!(mean_ok, "mean {}", mean);
        // Arrays masked the same way combine elementwise; chunk sizes can be computed.
        let twice = (&sel + &x.mask(&mb).unwrap()).unwrap();
        prop_assert_eq!(twice.compute_with(&*s).unwrap().len(), want.len());
        let known = sel.compute_chunk_sizes().unwrap();
        prop_assert_eq!(known.shape(), &[want.len()]);
        prop_assert_eq!(known.compute_with(&*s).unwrap().into_raw_vec_and_offset().0, want);
        // nonzero / argwhere / flatnonzero of the data.
        let nz: Vec<Vec<usize>> = d.indexed_iter().filter(|(_, v)| **v != 0.0).map(|(i, _)| ndarray::Dimension::slice(&i).to_vec()).collect();
        let flat: Vec<i64> = d.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, _)| i as i64).collect();
        prop_assert_eq!(x.flatnonzero().unwrap().compute_with(&*s).unwrap().into_raw_vec_and_offset().0, flat);
        // A 0-d array: argwhere's rows have width 0 (NumPy: (1, 0) or (0, 0)); nonzero is an
        // error, as in NumPy 2.
        let rows = x.argwhere().unwrap().compute_with(&*s).unwrap();
        prop_assert_eq!(rows.shape(), &[nz.len(), shape.len()]);
        let got: Vec<Vec<usize>> = rows.outer_iter().map(|r| r.iter().map(|&v| v as usize).collect()).collect();
        prop_assert_eq!(&got, &nz);
        prop_assert_eq!(x.nonzero().is_err(), shape.is_empty());
        if !shape.is_empty() {
            for (a, col) in x.nonzero().unwrap().iter().enumerate() {
                let want: Vec<i64> = nz.iter().map(|i| i[a] as i64).collect();
                prop_assert_eq!(col.compute_with(&*s).unwrap().into_raw_vec_and_offset().0, want);
            }
            // compress along each axis with a condition from the data's first lane.
            for axis in 0..shape.len() {
                let n = shape[axis];
                let cond: Vec<bool> = (0..n).map(|i| (i as u64 + seed).is_multiple_of(3) || i % 2 == 1).collect();
                let c = BlockArray::from_array(ndarray::Array1::from(cond.clone()), vec![chunks2[axis].clone()]).unwrap();
                let keep: Vec<usize> = (0..n).filter(|&i| cond[i]).collect();
                let want = d.select(Axis(axis), &keep);
                let got = x.compress(&c, Some(axis)).unwrap().compute_with(&*s).unwrap();
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn unknown_chunk_sizes_are_refused_where_positions_are_needed_and_say_what_to_do() {
    let x = BlockArray::<f64>::arange(-8.0, 8.0, 1.0, 5).unwrap();
    let pos = x.mask(&x.greater(0.0).unwrap()).unwrap();
    assert!(pos.to_string().contains("nan"), "{pos}");
    let needs = |r: Result<BlockArray<f64>, Error>, what: &str| {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks, "{what}: {e}");
        assert!(e.to_string().contains("compute_chunk_sizes"), "{what}: {e}");
    };
    needs(pos.slice(blockarray::s![1..3]), "slice");
    needs(pos.reshape(&[2, 4]), "reshape");
    needs(pos.rechunk(vec![8]), "rechunk");
    needs(pos.matmul(&pos), "matmul");
    needs(pos.take(&[0], 0), "take");
    needs(pos.cumsum(0), "cumsum");
    assert!(pos.argmax(None).is_err());
    // Arrays whose unknown lengths come from different masks may differ: refused.
    let neg = x.mask(&x.less(0.0).unwrap()).unwrap();
    needs(&pos + &neg, "elementwise");
    // A store into a sink needs positions; an in-memory result does not.
    let sink = std::sync::Arc::new(blockarray::ArraySink::new(ArrayD::zeros(IxDyn(&[7]))));
    assert!(
        pos.store(sink)
            .unwrap_err()
            .to_string()
            .contains("compute_chunk_sizes")
    );
    assert_eq!(pos.compute().unwrap().len(), 7);
    // Elementwise with scalars and same-origin arrays, reductions, transposes work.
    let y = (&(&pos * 2.0) + &pos).unwrap();
    assert_eq!(y.sum(None, false).unwrap().compute().unwrap()[[]], 84.0);
    assert_eq!(pos.max(None, false).unwrap().compute().unwrap()[[]], 7.0);
    // After compute_chunk_sizes, everything works (empty blocks are dropped).
    let known = pos.compute_chunk_sizes().unwrap();
    assert_eq!(known.shape(), &[7]);
    assert!(known.chunks().axis(0).iter().all(|&b| b > 0));
    assert_eq!(
        known
            .slice(blockarray::s![1..3])
            .unwrap()
            .compute()
            .unwrap()
            .into_raw_vec_and_offset()
            .0,
        vec![2.0, 3.0]
    );
    // An all-false mask gives an empty array.
    let none = x.mask(&x.greater(100.0).unwrap()).unwrap();
    assert_eq!(none.compute().unwrap().len(), 0);
    assert_eq!(none.compute_chunk_sizes().unwrap().shape(), &[0]);
    // Bad masks name both shapes.
    let bad = BlockArray::<bool>::full(&[3], true, 3).unwrap();
    let e = x.mask(&bad).unwrap_err().to_string();
    assert!(e.contains("(16,)") && e.contains("(3,)"), "{e}");
    let long = BlockArray::<bool>::full(&[20], true, 5).unwrap();
    assert!(x.compress(&long, Some(0)).is_err());
    assert!(x.compress(&bad, Some(1)).is_err());
}

/// `ArraySink` copies blocks concurrently: many threads writing disjoint blocks (and, in a
/// second round, blocks that overlap) into a C-order, a Fortran-order and a reversed array
/// give what one thread writing them in order gives.
#[test]
fn array_sink_takes_concurrent_writes_into_any_layout() {
    use blockarray::{ArraySink, ChunkSink};
    use ndarray::ShapeBuilder;
    let (rows, cols) = (64usize, 48usize);
    let block = |r: usize, c: usize, h: usize, w: usize, tag: f64| {
        ArrayD::from_shape_fn(IxDyn(&[h, w]), |ix| {
            tag + ((r + ix[0]) * cols + c + ix[1]) as f64
        })
    };
    let mut reversed = ArrayD::<f64>::zeros(IxDyn(&[rows, cols]));
    reversed.invert_axis(ndarray::Axis(1));
    let targets = [
        ArrayD::<f64>::zeros(IxDyn(&[rows, cols])),
        ArrayD::<f64>::zeros(IxDyn(&[rows, cols]).f()),
        reversed,
    ];
    for target in targets {
        let sink = ArraySink::new(target);
        // Disjoint 8 × 6 blocks from 4 threads.
        std::thread::scope(|s| {
            for t in 0..4 {
                let sink = &sink;
                s.spawn(move || {
                    for b in (t..(rows / 8) * (cols / 6)).step_by(4) {
                        let (r, c) = ((b / (cols / 6)) * 8, (b % (cols / 6)) * 6);
                        sink.write_block(&[r, c], &block(r, c, 8, 6, 0.0)).unwrap();
                    }
                });
            }
        });
        let a = sink.take().unwrap();
        let expected = block(0, 0, rows, cols, 0.0);
        assert_eq!(a, expected);

        // Overlapping 16 × 16 blocks at a stride of 8, each tagged by its thread: every
        // element ends up from one whole write (the later of the writes covering it), never
        // a mix within a write.
        let sink = ArraySink::new(ArrayD::<f64>::zeros(IxDyn(&[rows, cols])));
        std::thread::scope(|s| {
            for t in 0..4 {
                let sink = &sink;
                s.spawn(move || {
                    for _ in 0..20 {
                        for r in (0..rows - 8).step_by(8) {
                            for c in (0..cols - 8).step_by(8) {
                                let tag = 1e6 * (t + 1) as f64;
                                sink.write_block(&[r, c], &block(r, c, 16, 16, tag))
                                    .unwrap();
                            }
                        }
                    }
                });
            }
        });
        let a = sink.take().unwrap();
        for ((i, j), v) in a
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
            .indexed_iter()
        {
            let base = (i * cols + j) as f64;
            let tag = v - base;
            assert!(
                [1e6, 2e6, 3e6, 4e6].contains(&tag),
                "element ({i}, {j}) = {v}: not one write's value"
            );
        }
        // A write after the array was taken is refused.
        assert!(sink.write_block(&[0, 0], &block(0, 0, 1, 1, 0.0)).is_err());
    }
}

/// A float scan starts each block from the last values of the block before it, so the result
/// is NumPy's sequential one, bit for bit, in every chunking (each addition here rounds).
#[test]
fn float_scans_keep_numpys_order_in_every_chunking() {
    let d = ArrayD::from_shape_fn(IxDyn(&[6, 2]), |i| match i[0] {
        0 => 1e16,
        k => 1.0 + (k + i[1]) as f64 / 3.0,
    });
    for axis in [0, 1] {
        let mut want = d.clone();
        want.accumulate_axis_inplace(Axis(axis), |&p, c| *c += p);
        for threaded in [false, true] {
            let s = scheduler(threaded);
            for chunks in [vec![2, 4], vec![1; 6], vec![6], vec![3, 1, 2]] {
                let x =
                    BlockArray::from_array(d.clone(), vec![chunks.clone(), vec![1, 1]]).unwrap();
                let got = x.cumsum(axis).unwrap().compute_with(&*s).unwrap();
                assert_eq!(
                    got.mapv(f64::to_bits),
                    want.mapv(f64::to_bits),
                    "{chunks:?}"
                );
            }
        }
    }
    // A zero-length axis: one empty block.
    let e = BlockArray::<f64>::zeros(&[0, 3], [1, 2]).unwrap();
    assert_eq!(e.cumsum(0).unwrap().compute().unwrap().shape(), [0, 3]);
}
