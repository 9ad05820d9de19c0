//! NumPy's shape operations and array creation (flip, roll, tile, repeat, split, broadcast_to,
//! pad, tril/triu, diagonal, meshgrid, vindex/oindex, einsum, batched matmul, …) against
//! references computed on plain ndarray arrays with naive index loops, over random shapes,
//! random irregular chunkings and both schedulers; and their bad-input errors.

use blockarray::{
    BlockArray, ErrorKind, PadMode, apply_gufunc, blockwise_axes, broadcast_arrays, concatenate,
    einsum, indices, meshgrid, outer, s,
};
use ndarray::{ArrayD, Axis, Dimension, IxDyn};
use proptest::prelude::*;
use sched_sync::SyncScheduler;

mod common;
use common::{arb_chunks, cuts_to_chunks, data, scheduler};

/// Shape (axis lengths in `lo..6`), a chunking, a seed, a scheduler choice.
type Case = (Vec<usize>, Vec<Vec<usize>>, u64, bool);

fn arb_case(min_nd: usize, max_nd: usize, lo: usize) -> impl Strategy<Value = Case> {
    proptest::collection::vec(lo..6usize, min_nd..=max_nd).prop_flat_map(|shape| {
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

/// The array whose element at `i` is `d[f(i)]`.
fn remap(d: &ArrayD<f64>, shape: &[usize], f: impl Fn(&[usize]) -> Vec<usize>) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(shape), |i| d[IxDyn(&f(i.slice()))])
}

fn idx_of(i: &IxDyn) -> Vec<usize> {
    i.slice().to_vec()
}

/// A naive einsum over explicit subscripts of letters: loop over every assignment of the
/// labels.
fn ref_einsum(spec: &str, ops: &[&ArrayD<f64>]) -> ArrayD<f64> {
    let (ins, out) = spec.split_once("->").unwrap();
    let terms: Vec<Vec<char>> = ins.split(',').map(|t| t.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut size = std::collections::BTreeMap::new();
    for (t, o) in terms.iter().zip(ops) {
        for (c, &n) in t.iter().zip(o.shape()) {
            size.insert(*c, n);
        }
    }
    let labels: Vec<char> = size.keys().copied().collect();
    let out_shape: Vec<usize> = out.iter().map(|c| size[c]).collect();
    let mut res = ArrayD::<f64>::zeros(IxDyn(&out_shape));
    let total: usize = labels.iter().map(|c| size[c]).product();
    for mut lin in 0..total {
        let mut val = std::collections::BTreeMap::new();
        for c in labels.iter().rev() {
            val.insert(*c, lin % size[c]);
            lin /= size[c];
        }
        let mut p = 1.0;
        for (t, o) in terms.iter().zip(ops) {
            let i: Vec<usize> = t.iter().map(|c| val[c]).collect();
            p *= o[IxDyn(&i)];
        }
        let oi: Vec<usize> = out.iter().map(|c| val[c]).collect();
        res[IxDyn(&oi)] += p;
    }
    res
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn flip_roll_match_reference((shape, c, seed, thr) in arb_case(0, 3, 0), mask in any::<u8>(), shift in -13isize..13, pick in any::<usize>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let axes: Vec<usize> = (0..shape.len()).filter(|a| mask & (1 << a) != 0).collect();
        let want = remap(&d, &shape, |i| i.iter().enumerate().map(|(a, &k)| if axes.contains(&a) { shape[a] - 1 - k } else { k }).collect());
        prop_assert_eq!(x.flip(Some(&axes)).unwrap().compute_with(&*s).unwrap(), want);
        let all = remap(&d, &shape, |i| i.iter().enumerate().map(|(a, &k)| shape[a] - 1 - k).collect());
        prop_assert_eq!(x.flip(None).unwrap().compute_with(&*s).unwrap(), all);
        if shape.len() >= 2 {
            let lr = remap(&d, &shape, |i| { let mut j = i.to_vec(); j[1] = shape[1] - 1 - j[1]; j });
            prop_assert_eq!(x.fliplr().unwrap().compute_with(&*s).unwrap(), lr);
        }
        if !shape.is_empty() {
            let ud = remap(&d, &shape, |i| { let mut j = i.to_vec(); j[0] = shape[0] - 1 - j[0]; j });
            prop_assert_eq!(x.flipud().unwrap().compute_with(&*s).unwrap(), ud);
            // roll along one axis: out[i] = x[(i - shift) mod n]
            let ax = pick % shape.len();
            let n = shape[ax] as isize;
            let want = remap(&d, &shape, |i| { let mut j = i.to_vec(); j[ax] = (i[ax] as isize - shift).rem_euclid(n.max(1)) as usize; j });
            prop_assert_eq!(x.roll(&[shift], Some(&[ax])).unwrap().compute_with(&*s).unwrap(), want);
        }
        // roll of the flattened array
        let flat: Vec<f64> = d.iter().copied().collect();
        let len = flat.len() as isize;
        let rolled: Vec<f64> = (0..len).map(|i| flat[(i - shift).rem_euclid(len.max(1)) as usize]).collect();
        let want = ArrayD::from_shape_vec(IxDyn(&shape), rolled).unwrap();
        prop_assert_eq!(x.roll(&[shift], None).unwrap().compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn tile_repeat_match_reference((shape, c, seed, thr) in arb_case(0, 3, 0), reps in proptest::collection::vec(0usize..4, 0..4), counts in proptest::collection::vec(0usize..4, 1..6), pick in any::<usize>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        // tile
        let nd = shape.len().max(reps.len());
        let mut xs = vec![1usize; nd - shape.len()];
        xs.extend_from_slice(&shape);
        let mut rs = vec![1usize; nd - reps.len()];
        rs.extend_from_slice(&reps);
        let out_shape: Vec<usize> = xs.iter().zip(&rs).map(|(a, b)| a * b).collect();
        let dx = d.clone().into_shape_with_order(IxDyn(&xs)).unwrap();
        let want = remap(&dx, &out_shape, |i| i.iter().zip(&xs).map(|(&k, &n)| k % n).collect());
        prop_assert_eq!(x.tile(&reps).unwrap().compute_with(&*s).unwrap(), want);
        // repeat along an axis, counts per element or one for all
        if !shape.is_empty() {
            let ax = pick % shape.len();
            let n = shape[ax];
            let cs: Vec<usize> = if counts.len() >= n && n > 0 { counts[..n].to_vec() } else { vec![counts[0]] };
            let mut src = Vec::new();
            for k in 0..n { for _ in 0..cs[if cs.len() == 1 { 0 } else { k }] { src.push(k); } }
            let mut oshape = shape.clone();
            oshape[ax] = src.len();
            let want = remap(&d, &oshape, |i| { let mut j = i.to_vec(); j[ax] = src[i[ax]]; j });
            prop_assert_eq!(x.repeat(&cs, Some(ax)).unwrap().compute_with(&*s).unwrap(), want);
        }
        let flat: Vec<f64> = d.iter().flat_map(|&v| std::iter::repeat_n(v, counts[0])).collect();
        prop_assert_eq!(x.repeat(&counts[..1], None).unwrap().compute_with(&*s).unwrap().into_raw_vec_and_offset().0, flat);
    }

    #[test]
    fn splits_match_reference((shape, c, seed, thr) in arb_case(1, 3, 0), sections in 1usize..5, pick in any::<usize>(), cuts in proptest::collection::vec(0usize..8, 0..4)) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let ax = pick % shape.len();
        let n = shape[ax];
        let parts = x.array_split(sections, ax).unwrap();
        prop_assert_eq!(parts.len(), sections);
        let mut at = 0;
        for (k, p) in parts.iter().enumerate() {
            let len = n / sections + usize::from(k < n % sections);
            let want = d.slice_axis(Axis(ax), ndarray::Slice::from(at..at + len)).to_owned();
            prop_assert_eq!(p.compute_with(&*s).unwrap(), want);
            at += len;
        }
        match x.split(sections, ax) {
            Ok(p) => prop_assert!(n % sections == 0 && p.len() == sections),
            Err(e) => { prop_assert!(n % sections != 0); prop_assert_eq!(e.kind(), ErrorKind::Shape); }
        }
        let parts = x.split_at(&cuts, ax).unwrap();
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().map(|&i| i.min(n)));
        bounds.push(n);
        for (p, w) in parts.iter().zip(bounds.windows(2)) {
            let (a, b) = (w[0], w[1].max(w[0]));
            let want = d.slice_axis(Axis(ax), ndarray::Slice::from(a..b)).to_owned();
            prop_assert_eq!(p.compute_with(&*s).unwrap(), want);
        }
        if shape.len() >= 2 && shape[1] % sections == 0 {
            let h = x.hsplit(sections).unwrap();
            prop_assert_eq!(h.len(), sections);
            prop_assert_eq!(h[0].shape()[1], shape[1] / sections);
        }
    }

    #[test]
    fn broadcast_matches_ndarray((shape, c, seed, thr) in arb_case(0, 3, 0), ones in any::<u8>(), extra in proptest::collection::vec(0usize..4, 0..3)) {
        let s = scheduler(thr);
        let mut small = shape.clone();
        let mut sc = c.clone();
        for (i, n) in small.iter_mut().enumerate() {
            if ones & (1 << i) != 0 { *n = 1; sc[i] = vec![1]; }
        }
        let d = data(&small, seed);
        let x = arr(&d, &sc);
        let mut target = extra.clone();
        target.extend_from_slice(&shape);
        let want = d.broadcast(IxDyn(&target)).unwrap().to_owned();
        let bx = x.broadcast_to(&target).unwrap();
        prop_assert_eq!(bx.compute_with(&*s).unwrap(), want.clone());
        // Slices of a broadcast are pushed into its input.
        if !target.is_empty() {
            let a = target.len() - 1;
            let n = target[a];
            let sl = bx.slice(vec![blockarray::SliceArg::Ellipsis, blockarray::SliceArg::range(n / 3.., 2)]).unwrap();
            let w = want.slice_axis(Axis(a), ndarray::Slice::new((n / 3) as isize, None, 2)).to_owned();
            prop_assert_eq!(sl.compute_with(&*s).unwrap(), w);
            prop_assert!(!sl.operations_dot().contains("getitem-"));
        }
        let other = BlockArray::<f64>::zeros(&target, 2).unwrap();
        let both = broadcast_arrays(&[&x, &other]).unwrap();
        prop_assert_eq!(both[0].compute_with(&*s).unwrap(), want);
        prop_assert_eq!(both[1].shape(), &target[..]);
    }

    #[test]
    fn reshape_and_axes_match_reference((shape, c, seed, thr) in arb_case(0, 3, 1), pick in any::<usize>()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let n = d.len();
        // -1 on a random position of (n / k, k) for a divisor k.
        let divs: Vec<usize> = (1..=n).filter(|&k| n.is_multiple_of(k)).collect();
        let k = divs[pick % divs.len()];
        let flat: Vec<f64> = d.iter().copied().collect();
        let want = ArrayD::from_shape_vec(IxDyn(&[n / k, k]), flat.clone()).unwrap();
        prop_assert_eq!(x.reshape_infer(&[-1, k as isize]).unwrap().compute_with(&*s).unwrap(), want.clone());
        prop_assert_eq!(x.reshape_infer(&[(n / k) as isize, -1]).unwrap().compute_with(&*s).unwrap(), want);
        prop_assert_eq!(x.flatten().unwrap().compute_with(&*s).unwrap().into_raw_vec_and_offset().0, flat);
        let s1 = x.atleast_1d().unwrap();
        let s2 = x.atleast_2d().unwrap();
        let s3 = x.atleast_3d().unwrap();
        let expect3: Vec<usize> = match shape.len() { 0 => vec![1, 1, 1], 1 => vec![1, shape[0], 1], 2 => vec![shape[0], shape[1], 1], _ => shape.clone() };
        let expect2: Vec<usize> = match shape.len() { 0 => vec![1, 1], 1 => vec![1, shape[0]], _ => shape.clone() };
        prop_assert_eq!(s1.shape().len(), shape.len().max(1));
        prop_assert_eq!(s2.shape(), &expect2[..]);
        prop_assert_eq!(s3.shape(), &expect3[..]);
        prop_assert_eq!(s3.compute_with(&*s).unwrap().into_raw_vec_and_offset().0, d.iter().copied().collect::<Vec<_>>());
        let e = x.expand_dims(&[0, shape.len() + 1]).unwrap();
        let mut es = vec![1];
        es.extend_from_slice(&shape);
        es.push(1);
        prop_assert_eq!(e.compute_with(&*s).unwrap(), d.clone().into_shape_with_order(IxDyn(&es)).unwrap());
        prop_assert_eq!(x.zeros_like().unwrap().compute_with(&*s).unwrap(), ArrayD::zeros(IxDyn(&shape)));
        let ol = x.ones_like().unwrap();
        prop_assert_eq!(ol.chunks(), x.chunks());
        prop_assert_eq!(x.full_like(7i32).unwrap().compute_with(&*s).unwrap(), ArrayD::from_elem(IxDyn(&shape), 7));
        prop_assert_eq!(x.empty_like().unwrap().compute_with(&*s).unwrap(), ArrayD::zeros(IxDyn(&shape)));
    }

    #[test]
    fn triangles_and_diagonals_match_reference((shape, c, seed, thr) in arb_case(2, 3, 0), k in -6isize..6) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let nd = shape.len();
        let keep = |i: &IxDyn, lower: bool| {
            let diff = i[nd - 1] as isize - i[nd - 2] as isize;
            if lower { diff <= k } else { diff >= k }
        };
        let tril = ArrayD::from_shape_fn(IxDyn(&shape), |i| if keep(&i, true) { d[&i] } else { 0.0 });
        let triu = ArrayD::from_shape_fn(IxDyn(&shape), |i| if keep(&i, false) { d[&i] } else { 0.0 });
        prop_assert_eq!(x.tril(k).unwrap().compute_with(&*s).unwrap(), tril);
        prop_assert_eq!(x.triu(k).unwrap().compute_with(&*s).unwrap(), triu);
        // The diagonal of the first and last axes, appended last: rows along the first axis,
        // or, `swapped`, along the last.
        let (r0, c0) = ((-k).max(0) as usize, k.max(0) as usize);
        let diagonal_ref = |swapped: bool| {
            let (first, last) = if swapped { (c0, r0) } else { (r0, c0) };
            let len = shape[0].saturating_sub(first).min(shape[nd - 1].saturating_sub(last));
            let mut oshape: Vec<usize> = shape[1..nd - 1].to_vec();
            oshape.push(len);
            ArrayD::from_shape_fn(IxDyn(&oshape), |i| {
                let i = idx_of(&i);
                let t = i[i.len() - 1];
                let mut j = vec![t + first];
                j.extend_from_slice(&i[..i.len() - 1]);
                j.push(t + last);
                d[IxDyn(&j)]
            })
        };
        let want = diagonal_ref(false);
        prop_assert_eq!(x.diagonal(k, 0, nd - 1).unwrap().compute_with(&*s).unwrap(), want.clone());
        prop_assert_eq!(x.diagonal(k, nd - 1, 0).unwrap().compute_with(&*s).unwrap(), diagonal_ref(true));
        let tr = want.sum_axis(Axis(want.ndim() - 1));
        prop_assert_eq!(x.trace(k, 0, nd - 1).unwrap().compute_with(&*s).unwrap(), tr);
        if nd == 2 {
            let dg = x.diag(k).unwrap().compute_with(&*s).unwrap();
            prop_assert_eq!(dg.into_raw_vec_and_offset().0, want.into_raw_vec_and_offset().0);
        }
        // diag of a vector
        let v = data(&[shape[0]], seed ^ 5);
        let vx = arr(&v, &c[..1]);
        let m = shape[0] + k.unsigned_abs();
        let want = ArrayD::from_shape_fn(IxDyn(&[m, m]), |i| {
            if i[1] as isize - i[0] as isize == k { v[[i[0].min(i[1])]] } else { 0.0 }
        });
        prop_assert_eq!(vx.diag(k).unwrap().compute_with(&*s).unwrap(), want);
        let t = BlockArray::<f64>::tri(shape[0], Some(shape[1]), k, c[..2].to_vec()).unwrap();
        let want = ArrayD::from_shape_fn(IxDyn(&shape[..2]), |i| if i[1] as isize - i[0] as isize <= k { 1.0 } else { 0.0 });
        prop_assert_eq!(t.compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn grids_match_reference(lens in proptest::collection::vec(0usize..5, 1..4), seed in any::<u64>(), thr in any::<bool>(), ij in any::<bool>()) {
        let s = scheduler(thr);
        let vs: Vec<ArrayD<f64>> = lens.iter().enumerate().map(|(i, &n)| data(&[n], seed ^ i as u64)).collect();
        let xs: Vec<BlockArray<f64>> = vs.iter().map(|v| arr(v, &[cuts_to_chunks(v.len(), &[1, 3].into_iter().collect())])).collect();
        let refs: Vec<&BlockArray<f64>> = xs.iter().collect();
        let g = meshgrid(&refs, ij).unwrap();
        let n = lens.len();
        let pos = |i: usize| if !ij && n >= 2 && i < 2 { 1 - i } else { i };
        let mut shape = vec![0; n];
        for i in 0..n { shape[pos(i)] = lens[i]; }
        for i in 0..n {
            let want = ArrayD::from_shape_fn(IxDyn(&shape), |ix| vs[i][[ix[pos(i)]]]);
            prop_assert_eq!(g[i].compute_with(&*s).unwrap(), want);
        }
        let ind = indices(&lens, 3).unwrap();
        let mut ishape = vec![n];
        ishape.extend_from_slice(&lens);
        let want = ArrayD::from_shape_fn(IxDyn(&ishape), |ix| ix[ix[0] + 1] as i64);
        prop_assert_eq!(ind.compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn pad_matches_reference((shape, c, seed, thr) in arb_case(1, 3, 0), widths in proptest::collection::vec((0usize..9, 0usize..9), 1..4), mode in 0u8..5) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let nd = shape.len();
        let w: Vec<(usize, usize)> = if widths.len() == 1 { widths.clone() } else { (0..nd).map(|a| widths[a % widths.len()]).collect() };
        let wa = |a: usize| w[if w.len() == 1 { 0 } else { a }];
        let m = match mode { 0 => PadMode::Constant(-99.0), 1 => PadMode::Edge, 2 => PadMode::Reflect, 3 => PadMode::Symmetric, _ => PadMode::Wrap };
        let empty_pad = (0..nd).any(|a| shape[a] == 0 && (wa(a).0 > 0 || wa(a).1 > 0));
        if mode != 0 && empty_pad {
            prop_assert_eq!(x.pad(&w, m).unwrap_err().kind(), ErrorKind::Shape);
            return Ok(());
        }
        // Reference: the infinite extension of each axis written out as a sequence of
        // positions, built by laying mirrored / repeated copies side by side.
        let ext = |n: usize, p: isize| -> Option<usize> {
            if p >= 0 && (p as usize) < n { return Some(p as usize); }
            match mode {
                0 => None,
                1 => Some(p.clamp(0, n as isize - 1) as usize),
                _ => {
                    let period: Vec<usize> = match mode {
                        2 if n == 1 => vec![0],
                        2 => (0..n).chain((1..n - 1).rev()).collect(),
                        3 => (0..n).chain((0..n).rev()).collect(),
                        _ => (0..n).collect(),
                    };
                    let len = period.len() as isize;
                    Some(period[p.rem_euclid(len) as usize])
                }
            }
        };
        let oshape: Vec<usize> = (0..nd).map(|a| shape[a] + wa(a).0 + wa(a).1).collect();
        let want = ArrayD::from_shape_fn(IxDyn(&oshape), |i| {
            let mut j = Vec::with_capacity(nd);
            for a in 0..nd {
                match ext(shape[a], i[a] as isize - wa(a).0 as isize) {
                    Some(k) => j.push(k),
                    None => return -99.0,
                }
            }
            d[IxDyn(&j)]
        });
        prop_assert_eq!(x.pad(&w, m).unwrap().compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn linear_ramp_matches_reference((shape, c, seed, thr) in arb_case(1, 3, 1), widths in proptest::collection::vec((0usize..5, 0usize..5), 1..4), ends in proptest::collection::vec((-9i32..9, -9i32..9), 1..4)) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let nd = shape.len();
        let pick = |v: &[(usize, usize)], a: usize| if v.len() == 1 { v[0] } else { v[a % v.len()] };
        let w: Vec<(usize, usize)> = if widths.len() == 1 { widths.clone() } else { (0..nd).map(|a| pick(&widths, a)).collect() };
        let e: Vec<(f64, f64)> = if ends.len() == 1 { vec![(ends[0].0 as f64, ends[0].1 as f64)] } else { (0..nd).map(|a| { let p = ends[a % ends.len()]; (p.0 as f64, p.1 as f64) }).collect() };
        // Reference: NumPy's algorithm, one axis after the other, with linspace's formula.
        let mut cur = d.clone();
        for a in 0..nd {
            let (b, af) = w[if w.len() == 1 { 0 } else { a }];
            let (el, er) = e[if e.len() == 1 { 0 } else { a }];
            let n = cur.shape()[a];
            let mut sh = cur.shape().to_vec();
            sh[a] = n + b + af;
            // linspace(end, edge, w, endpoint=False) over every lane of a margin at once: when
            // some lane's step is 0, all lanes take (i/w)·(edge − end) + end.
            let zero_step = |at: usize, end: f64, w: usize| {
                cur.lanes(Axis(a)).into_iter().any(|l| (l[at] - end) / w as f64 == 0.0)
            };
            let (zl, zr) = (n > 0 && zero_step(0, el, b), n > 0 && zero_step(n - 1, er, af));
            let ramp = |k: usize, edge: f64, end: f64, w: usize, zero: bool| {
                if zero {
                    (k as f64 / w as f64) * (edge - end) + end
                } else {
                    k as f64 * ((edge - end) / w as f64) + end
                }
            };
            cur = ArrayD::from_shape_fn(IxDyn(&sh), |i| {
                let mut j = idx_of(&i);
                let p = j[a];
                if p < b {
                    j[a] = 0;
                    ramp(p, cur[IxDyn(&j)], el, b, zl)
                } else if p >= b + n {
                    j[a] = n - 1;
                    let k = af - 1 - (p - b - n);
                    ramp(k, cur[IxDyn(&j)], er, af, zr)
                } else {
                    j[a] = p - b;
                    cur[IxDyn(&j)]
                }
            });
        }
        prop_assert_eq!(x.pad_linear_ramp(&w, &e).unwrap().compute_with(&*s).unwrap(), cur);
    }

    #[test]
    fn map_blocks_axes_and_apply_along_axis_match_reference((shape, c, seed, thr) in arb_case(1, 3, 1), pick in any::<usize>(), newpos in any::<usize>(), newlen in 1usize..4) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let nd = shape.len();
        let ax = pick % nd;
        // Lane sums along ax (dropped) as i64, with a new axis of newlen copies, k-th scaled by k.
        let m = nd;  // nd - 1 + 1
        let p = newpos % m;
        let y = x.map_blocks_axes("sum-copies", &[ax], &[(p, newlen)], move |b, info| {
            let sum = b.sum_axis(Axis(ax)).mapv(|v| v as i64);
            let copies: Vec<_> = (0..newlen).map(|k| sum.mapv(|v| v * k as i64)).collect();
            let views: Vec<_> = copies.iter().map(|a| a.view()).collect();
            let out = ndarray::stack(Axis(p), &views)?;
            assert_eq!(out.shape(), info.block_shape);
            Ok(out)
        }).unwrap();
        let sums = d.sum_axis(Axis(ax)).mapv(|v| v as i64);
        let copies: Vec<_> = (0..newlen).map(|k| sums.mapv(|v| v * k as i64)).collect();
        let views: Vec<_> = copies.iter().map(|a| a.view()).collect();
        prop_assert_eq!(y.compute_with(&*s).unwrap(), ndarray::stack(Axis(p), &views).unwrap());
        // apply_along_axis: (max, min) replacing the axis; and the lane's first element.
        let mm = x.apply_along_axis("max-min", ax, Some(2), |l| vec![l.fold(f64::MIN, |a, &v| a.max(v)), l.fold(f64::MAX, |a, &v| a.min(v))]).unwrap();
        let want_max = d.map_axis(Axis(ax), |l| l.fold(f64::MIN, |a, &v| a.max(v)));
        let want_min = d.map_axis(Axis(ax), |l| l.fold(f64::MAX, |a, &v| a.min(v)));
        prop_assert_eq!(mm.compute_with(&*s).unwrap(), ndarray::stack(Axis(ax), &[want_max.view(), want_min.view()]).unwrap());
        // Two inputs in different chunks: lane dot products along ax.
        let e = data(&shape, seed ^ 11);
        let z = BlockArray::from_array(e.clone(), 2).unwrap();
        let dot = blockwise_axes("lane-dot", &[&x, &z], &[ax], &[], move |b, _| Ok((b[0] * b[1]).sum_axis(Axis(ax)))).unwrap();
        prop_assert_eq!(dot.compute_with(&*s).unwrap(), (&d * &e).sum_axis(Axis(ax)));
        let first = x.apply_along_axis("first", ax, None, |l| vec![l[0] > 0.0]).unwrap();
        prop_assert_eq!(first.compute_with(&*s).unwrap(), d.map_axis(Axis(ax), |l| l[0] > 0.0));
    }

    #[test]
    fn apply_gufunc_matches_reference((shape, c, seed, thr) in arb_case(1, 3, 1), ncore in 0usize..3) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let nd = shape.len();
        let ncore = ncore.min(nd);
        let loop_nd = nd - ncore;
        // Core in: the last ncore axes; core out: (their total sum, their count) per loop index.
        let names: Vec<String> = (0..ncore).map(|i| format!("c{i}")).collect();
        let sig = format!("({})->(k)", names.join(","));
        let y = x.apply_gufunc("sum-count", &sig, &[("k", 2)], move |b| {
            let mut shape = b.shape()[..loop_nd].to_vec();
            let inner: usize = b.shape()[loop_nd..].iter().product();
            let flat = b.as_standard_layout().into_owned().into_shape_with_order(IxDyn(&[shape.iter().product::<usize>(), inner]))?;
            let sums = flat.sum_axis(Axis(1));
            shape.push(2);
            let mut out = ArrayD::zeros(IxDyn(&shape));
            for (i, mut lane) in out.lanes_mut(Axis(loop_nd)).into_iter().enumerate() {
                lane[0] = sums[i];
                lane[1] = inner as f64;
            }
            Ok(out)
        }).unwrap();
        let mut oshape = shape[..loop_nd].to_vec();
        oshape.push(2);
        let inner: usize = shape[loop_nd..].iter().product();
        let want = ArrayD::from_shape_fn(IxDyn(&oshape), |i| {
            if i[loop_nd] == 1 { return inner as f64; }
            let mut total = 0.0;
            for (j, v) in d.indexed_iter() {
                if (0..loop_nd).all(|a| j[a] == i[a]) { total += v; }
            }
            total
        });
        prop_assert_eq!(y.compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn apply_gufunc_of_several_inputs_matches_reference((shape, c, seed, thr) in arb_case(1, 3, 1), ones in any::<u8>(), drop in 0usize..2) {
        // Inner products over the last axis of a and b; b's loop axes are a suffix of a's
        // with some set to 1 (broadcast).
        let s = scheduler(thr);
        let nd = shape.len();
        let core = shape[nd - 1];
        let loop_a = &shape[..nd - 1];
        let k = drop.min(loop_a.len());
        let mut bshape: Vec<usize> = loop_a[k..].iter().enumerate().map(|(i, &n)| if ones & (1 << i) != 0 { 1 } else { n }).collect();
        bshape.push(core);
        let (a, b) = (data(&shape, seed), data(&bshape, seed ^ 5));
        let x = arr(&a, &c);
        let y = BlockArray::from_array(b.clone(), 2).unwrap();
        let d = apply_gufunc("inner", "(i),(i)->()", &[], &[&x, &y], |v| {
            let last = v[0].ndim() - 1;
            let bb = v[1].broadcast(v[0].raw_dim()).ok_or("no broadcast")?;
            Ok((v[0] * &bb).sum_axis(Axis(last)))
        }).unwrap();
        let bb = b.broadcast(IxDyn(&shape)).unwrap();
        prop_assert_eq!(d.compute_with(&*s).unwrap(), (&a * &bb).sum_axis(Axis(nd - 1)));
        // An output core dimension of a given length, and one named after an input's.
        let e = apply_gufunc("pair", "(i),(i)->(i,t)", &[("t", 2)], &[&x, &y], |v| {
            let bb = v[1].broadcast(v[0].raw_dim()).ok_or("no broadcast")?.to_owned();
            Ok(ndarray::stack(Axis(v[0].ndim()), &[v[0].view(), bb.view()])?)
        }).unwrap();
        prop_assert_eq!(e.compute_with(&*s).unwrap(), ndarray::stack(Axis(nd), &[a.view(), bb.view()]).unwrap());
    }

    #[test]
    fn vindex_oindex_match_reference((shape, c, seed, thr) in arb_case(1, 3, 1), raw in proptest::collection::vec(any::<u16>(), 0..9), k in 1usize..3) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = arr(&d, &c);
        let k = k.min(shape.len());
        let npts = raw.len() / k;
        let lists: Vec<Vec<isize>> = (0..k).map(|a| (0..npts).map(|p| {
            let n = shape[a] as isize;
            (raw[p * k + a] as isize % (2 * n)) - n
        }).collect()).collect();
        let refs: Vec<&[isize]> = lists.iter().map(|l| l.as_slice()).collect();
        let norm = |a: usize, v: isize| if v < 0 { (v + shape[a] as isize) as usize } else { v as usize };
        let mut vshape = vec![npts];
        vshape.extend_from_slice(&shape[k..]);
        let want = ArrayD::from_shape_fn(IxDyn(&vshape), |i| {
            let mut j: Vec<usize> = (0..k).map(|a| norm(a, lists[a][i[0]])).collect();
            j.extend((1..vshape.len()).map(|t| i[t]));
            d[IxDyn(&j)]
        });
        prop_assert_eq!(x.vindex(&refs).unwrap().compute_with(&*s).unwrap(), want);
        let mut oshape: Vec<usize> = lists.iter().map(|l| l.len()).collect();
        oshape.extend_from_slice(&shape[k..]);
        let want = ArrayD::from_shape_fn(IxDyn(&oshape), |i| {
            let j: Vec<usize> = (0..shape.len()).map(|a| if a < k { norm(a, lists[a][i[a]]) } else { i[a] }).collect();
            d[IxDyn(&j)]
        });
        prop_assert_eq!(x.oindex(&refs).unwrap().compute_with(&*s).unwrap(), want);
    }

    #[test]
    fn einsum_matches_naive(spec_pick in 0usize..12, lens in proptest::collection::vec(1usize..5, 5), seed in any::<u64>(), thr in any::<bool>(), chunk in 1usize..4) {
        let s = scheduler(thr);
        let specs = [
            ("ij,jk->ik", "ij,jk->ik"), ("ij,jk", "ij,jk->ik"), ("ii->i", "ii->i"), ("ii", "ii->"),
            ("ij->ji", "ij->ji"), ("ij->", "ij->"), ("i,i->", "i,i->"), ("ij,ij->ij", "ij,ij->ij"),
            ("bij,bjk->bik", "bij,bjk->bik"), ("i,j->ij", "i,j->ij"), ("ab,bc,cd->ad", "ab,bc,cd->ad"),
            ("ijk,ikl->jl", "ijk,ikl->jl"),
        ];
        let (spec, full) = specs[spec_pick];
        let ins = full.split_once("->").unwrap().0;
        let size = |ch: char| if "ijkl".contains(ch) && full.starts_with("ii") { lens[0] } else { lens[(ch as usize) % 5] };
        let ds: Vec<ArrayD<f64>> = ins.split(',').enumerate().map(|(t, term)| {
            let shape: Vec<usize> = term.chars().map(size).collect();
            data(&shape, seed ^ t as u64)
        }).collect();
        let xs: Vec<BlockArray<f64>> = ds.iter().map(|d| BlockArray::from_array(d.clone(), chunk).unwrap()).collect();
        let refs: Vec<&BlockArray<f64>> = xs.iter().collect();
        let drefs: Vec<&ArrayD<f64>> = ds.iter().collect();
        prop_assert_eq!(einsum(spec, &refs).unwrap().compute_with(&*s).unwrap(), ref_einsum(full, &drefs));
    }

    #[test]
    fn batched_matmul_matches_reference(batch_a in proptest::collection::vec(1usize..4, 0..3), ones in any::<u8>(), (n, k, m) in (1usize..5, 1usize..5, 1usize..5), seed in any::<u64>(), thr in any::<bool>(), chunk in 1usize..4, vec_side in 0u8..3) {
        let s = scheduler(thr);
        // b's batch axes: a's, some set to 1 (broadcast), and maybe one fewer.
        let mut batch_b: Vec<usize> = batch_a.iter().enumerate().map(|(i, &v)| if ones & (1 << i) != 0 { 1 } else { v }).collect();
        if ones & 0x80 != 0 && !batch_b.is_empty() { batch_b.remove(0); }
        let mut sa = batch_a.clone();
        let mut sb = batch_b.clone();
        match vec_side { 1 => { sa = vec![k]; } 2 => { sb = vec![k]; } _ => {} }
        if vec_side != 1 { sa.extend([n, k]); }
        if vec_side != 2 { sb.extend([k, m]); }
        let (a, b) = (data(&sa, seed), data(&sb, seed ^ 9));
        let (x, y) = (BlockArray::from_array(a.clone(), chunk).unwrap(), BlockArray::from_array(b.clone(), chunk).unwrap());
        // Reference: promote vectors, broadcast the batch axes, loop.
        let a2 = if vec_side == 1 { a.clone().insert_axis(Axis(0)) } else { a.clone() };
        let b2 = if vec_side == 2 { b.clone().insert_axis(Axis(1)) } else { b.clone() };
        let (ba, bb) = (&a2.shape()[..a2.ndim() - 2], &b2.shape()[..b2.ndim() - 2]);
        let nb = ba.len().max(bb.len());
        let bshape: Vec<usize> = (0..nb).map(|i| {
            let g = |v: &[usize]| if i + v.len() >= nb { v[i + v.len() - nb] } else { 1 };
            g(ba).max(g(bb))
        }).collect();
        let (rn, rm) = (a2.shape()[a2.ndim() - 2], b2.shape()[b2.ndim() - 1]);
        let mut oshape = bshape.clone();
        oshape.extend([rn, rm]);
        let want = ArrayD::from_shape_fn(IxDyn(&oshape), |i| {
            let pick = |v: &ArrayD<f64>, r: usize, c: usize| {
                let vb = v.ndim() - 2;
                let mut j: Vec<usize> = (0..vb).map(|t| { let o = i[t + nb - vb]; if v.shape()[t] == 1 { 0 } else { o } }).collect();
                j.extend([r, c]);
                v[IxDyn(&j)]
            };
            (0..k).map(|t| pick(&a2, i[nb], t) * pick(&b2, t, i[nb + 1])).sum::<f64>()
        });
        let mut want = want;
        if vec_side == 1 { want = want.index_axis_move(Axis(nb), 0); }
        if vec_side == 2 { let last = want.ndim() - 1; want = want.index_axis_move(Axis(last), 0); }
        prop_assert_eq!(x.matmul(&y).unwrap().compute_with(&*s).unwrap(), want);
    }
}

#[test]
fn outer_logspace_geomspace_match_reference() {
    let a = data(&[2, 3], 1);
    let b = data(&[4], 2);
    let o = outer(
        &BlockArray::from_array(a.clone(), 2).unwrap(),
        &BlockArray::from_array(b.clone(), 3).unwrap(),
    )
    .unwrap()
    .compute()
    .unwrap();
    let fa: Vec<f64> = a.iter().copied().collect();
    let want = ArrayD::from_shape_fn(IxDyn(&[6, 4]), |i| fa[i[0]] * b[[i[1]]]);
    assert_eq!(o, want);
    for thr in [false, true] {
        let s = scheduler(thr);
        let l = BlockArray::<f64>::logspace(-1.0, 2.0, 7, true, 2.0, 3)
            .unwrap()
            .compute_with(&*s)
            .unwrap();
        for (i, v) in l.iter().enumerate() {
            let e = 2f64.powf(-1.0 + 0.5 * i as f64);
            assert!((v - e).abs() < 1e-12 * e, "{v} vs {e}");
        }
        let g = BlockArray::<f64>::geomspace(-2.0, -162.0, 5, true, 2)
            .unwrap()
            .compute_with(&*s)
            .unwrap();
        let want = [-2.0, -6.0, -18.0, -54.0, -162.0];
        assert_eq!((g[[0]], g[[4]]), (-2.0, -162.0));
        for (v, e) in g.iter().zip(want) {
            assert!((v - e).abs() < 1e-9, "{v} vs {e}");
        }
        let g = BlockArray::<f64>::geomspace(1.0, 16.0, 4, false, 2)
            .unwrap()
            .compute_with(&*s)
            .unwrap();
        let want = [1.0, 2.0, 4.0, 8.0];
        for (v, e) in g.iter().zip(want) {
            assert!((v - e).abs() < 1e-12, "{v} vs {e}");
        }
    }
    let e = BlockArray::<i32>::empty(&[2, 3], 2)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(e, ArrayD::zeros(IxDyn(&[2, 3])));
}

#[test]
fn broadcast_blocks_stay_within_the_block_budget() {
    // A long row stretched down: the new axis is cut so that blocks stay near the default
    // block size whatever the row's chunks.
    let row = BlockArray::<f64>::zeros(&[1, 1_000_000], [1, 1_000_000]).unwrap();
    let b = row.broadcast_to(&[100_000, 1_000_000]).unwrap();
    let block: usize = b.chunks().max_block_shape().iter().product::<usize>() * 8;
    assert!(block <= blockarray::DEFAULT_CHUNK_BYTES, "{block} bytes");
    assert_eq!(b.chunks().axis(1), &[1_000_000]);
    // meshgrid of long single-block vectors: automatic chunks, not one huge block.
    let v = BlockArray::<f64>::zeros(&[1_000_000], 1_000_000).unwrap();
    let g = meshgrid(&[&v, &v], true).unwrap();
    let block: usize = g[0].chunks().max_block_shape().iter().product::<usize>() * 8;
    assert!(block <= blockarray::DEFAULT_CHUNK_BYTES, "{block} bytes");
    // Small vectors keep their chunks.
    let w = BlockArray::<f64>::zeros(&[10], 3).unwrap();
    assert_eq!(
        meshgrid(&[&w, &w], true).unwrap()[1].chunks().axis(0),
        w.chunks().axis(0)
    );
}

#[test]
fn keys_hash_parameters() {
    let x = BlockArray::from_array(data(&[5, 6], 3), 2).unwrap();
    assert_ne!(x.tril(0).unwrap().name(), x.tril(1).unwrap().name());
    assert_eq!(x.tril(1).unwrap().name(), x.tril(1).unwrap().name());
    assert_ne!(x.tril(0).unwrap().name(), x.triu(0).unwrap().name());
    assert_ne!(
        x.diagonal(0, 0, 1).unwrap().name(),
        x.diagonal(1, 0, 1).unwrap().name()
    );
    let a = BlockArray::<f64>::logspace(0.0, 1.0, 4, true, 10.0, 2).unwrap();
    let b = BlockArray::<f64>::logspace(0.0, 1.0, 4, true, 2.0, 2).unwrap();
    assert_ne!(a.name(), b.name());
    let v = x.slice(blockarray::s![0, ..]).unwrap();
    assert_ne!(
        v.broadcast_to(&[2, 6]).unwrap().name(),
        v.broadcast_to(&[3, 6]).unwrap().name()
    );
    assert_ne!(
        x.pad(&[(1, 1)], PadMode::Constant(0.0)).unwrap().name(),
        x.pad(&[(1, 1)], PadMode::Constant(1.0)).unwrap().name()
    );
    assert_ne!(
        x.pad(&[(1, 1)], PadMode::Reflect).unwrap().name(),
        x.pad(&[(1, 1)], PadMode::Symmetric).unwrap().name()
    );
    // Pure names of block maps still key on the wrapper's own parameters.
    let sq = BlockArray::from_array(data(&[4, 4], 1), 4).unwrap();
    let lane = |ax: usize| {
        sq.apply_along_axis(blockarray::OpName::pure("first", &()), ax, None, |l| {
            vec![l[0]]
        })
        .unwrap()
        .name()
        .to_string()
    };
    assert_ne!(lane(0), lane(1));
    assert_eq!(lane(0), lane(0));
    assert_ne!(
        x.vindex(&[&[0, 1]]).unwrap().name(),
        x.vindex(&[&[1, 0]]).unwrap().name()
    );
}

#[test]
fn results_are_lazy_and_read_only_needed_blocks() {
    // A corner of a padded, flipped, rolled array touches few of the input's 100 blocks.
    let x = BlockArray::<f64>::ones(&[1000, 1000], 100).unwrap();
    let y = x
        .pad(&[(3, 3)], PadMode::Reflect)
        .unwrap()
        .flip(Some(&[0]))
        .unwrap()
        .roll(&[5], Some(&[1]))
        .unwrap();
    let corner = y.slice(blockarray::s![..10, ..10]).unwrap();
    let tasks = |a: &BlockArray<f64>| {
        let mut c = blockarray::Computation::new();
        let _h = c.add(a);
        c.plan(&SyncScheduler::new()).unwrap().tasks
    };
    assert!(tasks(&corner) < 40, "{} tasks", tasks(&corner));
    assert_eq!(
        corner.compute().unwrap(),
        ArrayD::from_elem(IxDyn(&[10, 10]), 1.0)
    );
    // The diagonal of a 1000 × 1000 array in 100 × 100 blocks reads the 10 diagonal blocks.
    let d = x.diagonal(0, 0, 1).unwrap();
    assert!(tasks(&d) <= 40, "{} tasks", tasks(&d));
    // A diagonal 2^28 long is planned per block (a list of its points took gigabytes): one
    // piece per diagonal block, or two where the blocks of the two axes are cut apart.
    let big = BlockArray::<f64>::zeros(&[1 << 28, 1 << 28], [1 << 10, 1 << 10]).unwrap();
    assert_eq!(big.diagonal(0, 0, 1).unwrap().numblocks(), vec![1 << 18]);
    let shifted = big.diagonal(5, 0, 1).unwrap();
    assert_eq!(shifted.shape(), &[(1 << 28) - 5]);
    assert_eq!(shifted.numblocks(), vec![(1 << 19) - 1]);
    let tail = shifted.slice(blockarray::s![-3..]).unwrap();
    assert_eq!(tail.compute().unwrap(), ArrayD::from_elem(IxDyn(&[3]), 0.0));
    assert!(tasks(&tail) <= 3, "{} tasks", tasks(&tail));
}

#[test]
fn arrays_of_many_blocks_lower_the_blocks_asked_for() {
    // Lowering numbers a node's blocks by a table over its grid up to 2^16 blocks and by a
    // map beyond: both sides of that line give the same values, reading only what is needed.
    for side in [250, 300] {
        let a = data(&[side, side], 3);
        let x = BlockArray::from_array(a.clone(), 1).unwrap();
        assert_eq!(x.numblocks(), vec![side, side]);
        let y = (&x * 2.0)
            .t()
            .slice(blockarray::s![7..19;3, 200..203])
            .unwrap();
        let want = (&a * 2.0)
            .t()
            .slice(ndarray::s![7..19;3, 200..203])
            .to_owned()
            .into_dyn();
        for sched in [false, true] {
            let mut c = blockarray::Computation::new();
            let h = c.add(&y);
            let mut r = c.run(&*scheduler(sched)).unwrap();
            assert_eq!(r.take(h).unwrap(), want, "{side} × {side} blocks");
        }
        let mut c = blockarray::Computation::new();
        let _h = c.add(&y.sum(None, false).unwrap());
        assert!(c.plan(&SyncScheduler::new()).unwrap().tasks < 64);
    }
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let x = BlockArray::from_array(data(&[4, 6], 0), 2).unwrap();
    let msg = |r: blockarray::Result<BlockArray<f64>>| r.unwrap_err().to_string();
    assert!(msg(x.reshape_infer(&[-1, -1])).contains("-1"));
    assert!(msg(x.reshape_infer(&[-1, 5])).contains("[-1, 5]"));
    assert!(msg(x.reshape_infer(&[-2, 12])).contains("-2"));
    assert!(msg(x.reshape_infer(&[-1, isize::MAX, 4])).contains("overflows"));
    assert!(msg(x.flip(Some(&[2]))).contains('2'));
    let v = BlockArray::from_array(data(&[4], 0), 2).unwrap();
    assert!(msg(v.fliplr()).contains("[4]"));
    // Repeated axes: NumPy's errors for flip and squeeze; roll adds the shifts up, and
    // broadcasts shifts against axes (np.roll(x, [1, 2]) rolls the flat array by 3).
    assert!(msg(x.flip(Some(&[1, 1]))).contains("repeated"));
    let one = BlockArray::<f64>::zeros(&[1, 3, 1], 1).unwrap();
    assert!(msg(one.squeeze(Some(&[0, 0]))).contains("repeated"));
    let values = |y: blockarray::Result<BlockArray<f64>>| y.unwrap().compute().unwrap();
    assert_eq!(values(x.roll(&[1, 2], None)), values(x.roll(&[3], None)));
    assert_eq!(
        values(x.roll(&[1, 2], Some(&[1]))),
        values(x.roll(&[3], Some(&[1])))
    );
    assert_eq!(
        values(x.roll(&[2], Some(&[0, 1]))),
        values(x.roll(&[2, 2], Some(&[0, 1])))
    );
    assert!(msg(x.roll(&[1, 2, 3], Some(&[0, 1]))).contains("3 shifts"));
    assert!(msg(x.roll(&[], None)).contains("at least one shift"));
    assert!(msg(x.repeat(&[1, 2], Some(1))).contains("axis 1 of length 6"));
    assert!(x.split(4, 1).unwrap_err().to_string().contains("length 6"));
    assert!(x.array_split(0, 1).is_err());
    assert!(
        x.array_split(usize::MAX, 1)
            .unwrap_err()
            .to_string()
            .contains("sections")
    );
    assert!(msg(x.tile(&[usize::MAX, 1])).contains("too many"));
    assert!(msg(x.repeat(&[usize::MAX], Some(0))).contains("overflow"));
    assert!(msg(x.pad(&[(usize::MAX, 1)], PadMode::Edge)).contains("overflow"));
    assert!(v.vsplit(2).unwrap_err().to_string().contains("[4]"));
    let e = msg(x.broadcast_to(&[3, 6]));
    assert!(e.contains("[4, 6]") && e.contains("[3, 6]"), "{e}");
    assert!(msg(x.broadcast_to(&[6])).contains("[6]"));
    assert!(msg(x.expand_dims(&[0, 0])).contains("repeated"));
    assert!(msg(x.expand_dims(&[5])).contains('5'));
    assert!(msg(v.tril(0)).contains("tril"));
    assert!(msg(x.diagonal(0, 1, 1)).contains("axis1 and axis2"));
    assert!(msg(x.diagonal(0, 0, 3)).contains('3'));
    let cube = BlockArray::<f64>::zeros(&[2, 2, 2], 1).unwrap();
    assert!(msg(cube.diag(0)).contains("[2, 2, 2]"));
    let e = msg(x.pad(&[(1, 1), (1, 1), (1, 1)], PadMode::Edge));
    assert!(e.contains("3 width pairs"), "{e}");
    let e = msg(x.pad_linear_ramp(&[(1, 1)], &[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]));
    assert!(e.contains("3 end value pairs"), "{e}");
    // map_blocks with axes
    let id = |b: &ArrayD<f64>, _: &blockarray::BlockInfo<'_>| Ok(b.clone());
    assert!(msg(x.map_blocks_axes("a", &[2], &[], id)).contains("drop_axis"));
    assert!(msg(x.map_blocks_axes("a", &[1, 1], &[], id)).contains("repeated"));
    assert!(msg(x.map_blocks_axes("a", &[], &[(3, 1)], id)).contains("new_axis"));
    assert!(msg(x.map_blocks_axes("a", &[], &[(1, 1), (1, 2)], id)).contains("repeated"));
    let other = BlockArray::<f64>::zeros(&[4, 5], 2).unwrap();
    let e = blockwise_axes("b", &[&x, &other], &[1], &[], |b, _| Ok(b[0].clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("(4, 6)") && e.contains("(4, 5)"), "{e}");
    let wrong = x.map_blocks_axes("wrong", &[1], &[], id).unwrap();
    let e = wrong.compute().unwrap_err().to_string();
    assert!(e.contains("came back with shape"), "{e}");
    let bad = x
        .apply_along_axis("bad", 1, Some(2), |l| vec![l[0]])
        .unwrap();
    let e = bad.compute().unwrap_err().to_string();
    assert!(
        e.contains("returned 1 values") && e.contains("not 2"),
        "{e}"
    );
    assert!(msg(x.apply_along_axis("ax", 2, None, |l| vec![l[0]])).contains('2'));
    let g = |sig: &str, sizes: &[(&str, usize)]| {
        x.apply_gufunc("g", sig, sizes, |b: &ArrayD<f64>| Ok(b.clone()))
            .unwrap_err()
            .to_string()
    };
    assert!(g("(i)", &[]).contains("no '->'"));
    assert!(g("(i),(j)->()", &[]).contains("2 input terms for 1 arrays"));
    assert!(g("(i)->(a),(b)", &[]).contains("one output"));
    assert!(g("i->()", &[]).contains("'i'"));
    assert!(g("(i,j,k)->()", &[]).contains("[4, 6]"));
    assert!(g("(i)->(z)", &[]).contains("'z'"));
    assert!(g("(i-1)->()", &[]).contains("'i-1'"));
    let empty = BlockArray::<f64>::zeros(&[0, 3], 2).unwrap();
    assert!(msg(empty.pad_linear_ramp(&[(1, 1)], &[(0.0, 0.0)])).contains("linear_ramp"));
    let e = msg(empty.pad(&[(1, 1)], PadMode::Wrap));
    assert!(e.contains("empty axis 0") && e.contains("wrap"), "{e}");
    assert!(empty.pad(&[(1, 1)], PadMode::Constant(0.0)).is_ok());
    let e = msg(x.vindex(&[&[0, 1], &[0, 1, 2]]));
    assert!(e.contains("[2, 3]"), "{e}");
    // An empty list broadcasts only with lists of length 1 or 0, as in NumPy (`x[[], [1, 2]]`
    // is an IndexError there); out-of-range indices in a list broadcast away are not read.
    let e = msg(x.vindex(&[&[], &[0, 1]]));
    assert!(e.contains("[0, 2]") && e.contains("broadcast"), "{e}");
    assert_eq!(x.vindex(&[&[], &[9]]).unwrap().shape(), &[0]);
    assert_eq!(x.vindex(&[&[1], &[0, 2, 1]]).unwrap().shape(), &[3]);
    assert!(msg(x.vindex(&[&[4]])).contains("axis 0"));
    assert!(msg(x.vindex(&[])).contains("at least one"));
    assert!(msg(x.vindex(&[&[0], &[0], &[0]])).contains("3 index lists"));
    assert!(msg(x.oindex(&[&[0], &[6]])).contains("axis 1"));
    let g = meshgrid(&[&x], true).unwrap_err().to_string();
    assert!(g.contains("[4, 6]"), "{g}");
    assert!(BlockArray::<f64>::geomspace(0.0, 1.0, 3, true, 2).is_err());
    assert_eq!(
        BlockArray::<f64>::geomspace(-1.0, 1.0, 3, true, 2)
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    // einsum subscripts
    let y = BlockArray::from_array(data(&[6, 3], 1), 2).unwrap();
    let ein = |s: &str, ops: &[&BlockArray<f64>]| einsum(s, ops).unwrap_err().to_string();
    assert!(ein("ij,jk->ik,", &[&x, &y]).contains(','));
    assert!(ein("ij,jk->iz", &[&x, &y]).contains("'z'"));
    assert!(ein("ij,jk->ii", &[&x, &y]).contains("repeated"));
    assert!(ein("ij", &[&x, &y]).contains("1 input terms for 2 operands"));
    assert!(ein("ij,kk->ik", &[&x, &y]).contains("'k'"));
    assert!(ein("ijk,jk->ik", &[&x, &y]).contains("'ijk'"));
    assert!(ein("i2,jk->ik", &[&x, &y]).contains("'2'"));
    assert!(ein("ij,jk->ik->i", &[&x, &y]).contains("->"));
    let x3 = BlockArray::<f64>::zeros(&[2, 4, 6], 2).unwrap();
    assert!(ein("...ij,jk->ik", &[&x3, &y]).contains("..."));
    assert!(ein("ij,ik->jk", &[&x, &y]).contains("'i'"));
    // batched matmul shapes
    let a = BlockArray::<f64>::zeros(&[2, 4, 6], 2).unwrap();
    let b = BlockArray::<f64>::zeros(&[3, 6, 5], 2).unwrap();
    let e = msg(a.matmul(&b));
    assert!(e.contains("[2, 4, 6]") && e.contains("[3, 6, 5]"), "{e}");
    let c = BlockArray::<f64>::zeros(&[2, 5, 5], 2).unwrap();
    assert!(msg(a.matmul(&c)).contains("'j'"));
    let s = BlockArray::<f64>::zeros(&[], 1).unwrap();
    assert!(msg(a.matmul(&s)).contains("at least 1 axis"));
    // Unknown chunk sizes: positions matter, so these refuse and name compute_chunk_sizes.
    let m = v.mask(&v.greater(0.0).unwrap()).unwrap();
    for r in [
        m.flip(None),
        m.roll(&[1], Some(&[0])),
        m.tile(&[2]),
        m.pad(&[(1, 1)], PadMode::Edge),
        m.vindex(&[&[0]]),
        m.broadcast_to(&[2, 4]),
        m.repeat(&[2], Some(0)),
    ] {
        assert!(msg(r).contains("compute_chunk_sizes"));
    }
}

#[test]
fn batched_matmul_of_large_matrices_loops_over_tensordot() {
    // Few batch elements of large matrices go through one tensordot per batch element
    // (blocked GEMM); the result is the same as the naive loop.
    let (sa, sb) = ([2usize, 1, 130, 129], [3usize, 129, 131]);
    let (a, b) = (data(&sa, 1), data(&sb, 2));
    let x = BlockArray::from_array(a.clone(), [1, 1, 50, 47]).unwrap();
    let y = BlockArray::from_array(b.clone(), [2, 60, 70]).unwrap();
    let z = x.matmul(&y).unwrap();
    assert_eq!(z.shape(), &[2, 3, 130, 131]);
    // The loop's signature: tensordot nodes, no broadcast product of the operands.
    let ops = z.operations_dot();
    assert!(ops.contains("tensordot") && !ops.contains("einsum-mul"));
    let want = ArrayD::from_shape_fn(IxDyn(&[2, 3, 130, 131]), |i| {
        (0..129)
            .map(|t| a[[i[0], 0, i[2], t]] * b[[i[1], t, i[3]]])
            .sum::<f64>()
    });
    for thr in [false, true] {
        assert_eq!(z.compute_with(&*scheduler(thr)).unwrap(), want);
    }
    let small = BlockArray::from_array(data(&[2, 4, 5], 3), 2).unwrap();
    let small_b = BlockArray::from_array(data(&[2, 5, 3], 4), 2).unwrap();
    assert!(
        small
            .matmul(&small_b)
            .unwrap()
            .operations_dot()
            .contains("einsum-mul")
    );
    assert_eq!(
        small.matmul(&small_b).unwrap().compute().unwrap(),
        ref_einsum(
            "bij,bjk->bik",
            &[&data(&[2, 4, 5], 3), &data(&[2, 5, 3], 4)]
        )
    );
}

/// `dot` of operands with more than two axes is NumPy's (a sum over the last axis of `a` and
/// the second-to-last of `b`, every other axis kept), not `matmul`'s batch broadcasting, which
/// gave the same shape and other values; a 0-d operand multiplies.
#[test]
fn dot_of_nd_operands_is_numpys() {
    let (da, db) = (data(&[2, 3, 4], 5), data(&[2, 4, 5], 6));
    let a = BlockArray::from_array(da.clone(), [1, 2, 3]).unwrap();
    let b = BlockArray::from_array(db.clone(), [2, 3, 2]).unwrap();
    let d = a.dot(&b).unwrap();
    assert_eq!(d.shape(), &[2, 3, 2, 5]);
    let want = ArrayD::from_shape_fn(IxDyn(&[2, 3, 2, 5]), |i| {
        (0..4)
            .map(|t| da[[i[0], i[1], t]] * db[[i[2], t, i[3]]])
            .sum::<f64>()
    });
    let got = d.compute().unwrap();
    assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
    // 2-d · 3-d and 3-d · 1-d.
    let m = BlockArray::from_array(data(&[3, 4], 7), 2).unwrap();
    assert_eq!(m.dot(&b).unwrap().shape(), &[3, 2, 5]);
    let v = BlockArray::from_array(data(&[4], 8), 3).unwrap();
    assert_eq!(a.dot(&v).unwrap().shape(), &[2, 3]);
    let s = BlockArray::from_array(ndarray::arr0(2.0).into_dyn(), 1).unwrap();
    assert_eq!(
        s.dot(&m).unwrap().compute().unwrap(),
        data(&[3, 4], 7) * 2.0
    );
}

/// Integer products wrap on overflow, as NumPy's do (debug builds panicked).
#[test]
fn integer_products_wrap() {
    let x = BlockArray::full(&[2, 2], 100i8, 1).unwrap();
    let p = x.matmul(&x).unwrap().compute().unwrap();
    assert_eq!(p.into_raw_vec_and_offset().0, vec![32i8; 4]);
    let v = BlockArray::full(&[1], 100i8, 1).unwrap();
    let e = einsum("i,i->i", &[&v, &v]).unwrap().compute().unwrap();
    assert_eq!(e.into_raw_vec_and_offset().0, vec![16i8]);
    let o = blockarray::outer(&v, &v).unwrap().compute().unwrap();
    assert_eq!(o.into_raw_vec_and_offset().0, vec![16i8]);
}

/// A batch axis of length 0 against one of length 1 broadcasts to 0 (it was taken as 1, and
/// the loop over batch elements indexed the empty axis).
#[test]
fn an_empty_batch_broadcasts_against_a_batch_of_one() {
    let a = BlockArray::<f64>::ones(&[0, 128, 128], [1, 64, 64]).unwrap();
    let b = BlockArray::<f64>::ones(&[1, 128, 128], [1, 64, 64]).unwrap();
    for (x, y) in [(&a, &b), (&b, &a)] {
        let z = x.matmul(y).unwrap();
        assert_eq!(z.shape(), &[0, 128, 128]);
        assert_eq!(z.compute().unwrap().len(), 0);
    }
}

/// A batched contraction over an axis of 2⁴² in one block: the step the contracted axis is
/// cut to is computed without overflow, and the lazy graph stays at most
/// `EINSUM_MAX_BLOCKS` product blocks (nothing is allocated per element).
#[test]
fn einsum_over_a_huge_contracted_axis_does_not_overflow() {
    let a = BlockArray::<f64>::ones(&[100, 1 << 42], [100, 1 << 42]).unwrap();
    let r = einsum("bi,bi->b", &[&a, &a]).unwrap();
    assert_eq!(r.shape(), &[100]);
}

/// Sizes far beyond memory and extreme steps are errors (or, where they are valid, results),
/// never a panic, an abort or an overflow in a debug build.
#[test]
fn huge_sizes_and_extreme_steps_are_errors_not_panics() {
    let v = BlockArray::<f64>::ones(&[4], 1).unwrap();
    let huge = 1usize << 62;
    for mode in [
        PadMode::Constant(0.0),
        PadMode::Edge,
        PadMode::Reflect,
        PadMode::Wrap,
    ] {
        let e = v.pad(&[(huge, 0)], mode).unwrap_err().to_string();
        assert!(e.contains("pad"), "{e}");
    }
    let e = v.pad_linear_ramp(&[(0, huge)], &[(0.0, 0.0)]).unwrap_err();
    assert!(e.to_string().contains("pad"), "{e}");
    let r = BlockArray::arange(0i64, 3, 1, 1).unwrap();
    assert!(r.diag(1 << 62).is_err());
    let e = r
        .repeat(&[usize::MAX, 1, 1], Some(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("repeat"), "{e}");
    // An empty array is still too big when its other axes alone are (as NumPy's).
    let e = BlockArray::<f64>::zeros(&[1 << 40, 1 << 40, 0], [1 << 40, 1 << 40, 1]).unwrap_err();
    assert!(e.to_string().contains("isize::MAX"), "{e}");
    // 2⁶¹ elements of 8 bytes: a valid lazy array whose bytes exceed usize.
    let x = BlockArray::<f64>::zeros(&[1 << 59], 1 << 40).unwrap();
    let big = concatenate(&[&x, &x, &x, &x], 0).unwrap();
    assert_eq!(big.nbytes(), usize::MAX);
    assert!(big.compute().is_err());
    assert!(!big.to_string().is_empty());
    // Such arrays through the paths that multiplied their bytes out (a panic in debug
    // builds): one-block results, lowering, the operations' graph, the display, histograms.
    let one = BlockArray::<i64>::ones(&[2], 2)
        .unwrap()
        .repeat(&[1 << 61], Some(0))
        .unwrap();
    assert!(one.compute().is_err());
    let a = BlockArray::<f64>::zeros(&[1 << 31], 1 << 31).unwrap();
    let o = outer(&a, &a).unwrap();
    assert!(!o.to_string().is_empty());
    // Lowering (planning, not running: `a` alone is 16 GiB).
    let mut c = blockarray::Computation::new();
    c.add(&o.sum(None, false).unwrap());
    let _ = c.plan(&SyncScheduler::new());
    assert!(big.operations_dot().contains("digraph"));
    // Built only: the expression multiplied the input's bytes out.
    let _ = blockarray::histogram(&big, 10usize, None, None, false);
    // A step that is never taken: one element, whatever the step.
    let a = BlockArray::arange(0.0, 10.0, 1.0, 3).unwrap();
    let one = a
        .slice(s![..;-1])
        .unwrap()
        .slice(s![..;isize::MIN])
        .unwrap();
    assert_eq!(
        one.compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0]
    );
    let one = a.slice(s![..;2]).unwrap().slice(s![..;isize::MAX]).unwrap();
    assert_eq!(
        one.compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0]
    );
    let e = v
        .trim_internal(usize::MAX, blockarray::Boundary::Reflect)
        .unwrap_err();
    assert!(e.to_string().contains("trim"), "{e}");
}

/// `pad_linear_ramp` bit for bit against NumPy 2.4's `np.pad(mode="linear_ramp")`: the ramp is
/// computed in f64 (NumPy's end values are a float64 array), and when the step of any lane of
/// a margin is 0, every lane of it takes linspace's other formula, `(i/w)·(edge − end) + end`.
#[test]
fn linear_ramp_is_numpys_bit_for_bit() {
    // Lane 0's edge equals the end value: a zero step in the margin.
    let x = BlockArray::from_array(ndarray::array![[-5.0f64], [10.3]], [1, 1]).unwrap();
    let p = x
        .pad_linear_ramp(&[(0, 0), (5, 0)], &[(-5.0, -5.0)])
        .unwrap()
        .compute()
        .unwrap();
    let bits: Vec<u64> = p
        .index_axis(ndarray::Axis(0), 1)
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(
        bits,
        [
            0xc014000000000000,
            0xbfff0a3d70a3d708,
            0x3ff1eb851eb851f0,
            0x4010b851eb851eb8,
            0x401cf5c28f5c28f8,
            0x402499999999999a
        ]
    );
    // No zero step: the usual formula (NumPy: -1.94, 1.12, 4.18, 7.24).
    let y = BlockArray::from_array(ndarray::array![[-4.0f64], [10.3]], [1, 1]).unwrap();
    let p = y
        .pad_linear_ramp(&[(0, 0), (5, 0)], &[(-5.0, -5.0)])
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(
        p.index_axis(ndarray::Axis(0), 1)
            .iter()
            .copied()
            .collect::<Vec<f64>>(),
        [-5.0, -1.94, 1.12, 4.18, 7.24, 10.3]
    );
    // f32: computed in f64, rounded once.
    let z = BlockArray::from_array(ndarray::array![f32::from_bits(0xbfa6_320f)], 1).unwrap();
    let p = z
        .pad_linear_ramp(&[(8, 0)], &[(-2.0, -2.0)])
        .unwrap()
        .compute()
        .unwrap();
    let bits: Vec<u32> = p.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        [
            0xc0000000, 0xbff4c642, 0xbfe98c84, 0xbfde52c6, 0xbfd31908, 0xbfc7df49, 0xbfbca58b,
            0xbfb16bcd, 0xbfa6320f
        ]
    );
    // f32 margins wider than 2^24: positions are exact (they were f32, so the width was
    // refused as a chunk mismatch, or positions past 2^24 rounded).
    let v = BlockArray::from_array(ndarray::array![3.0f32, 3.0, 4.0], 3).unwrap();
    for w in [(1usize << 24) + 1, (1 << 24) + 2] {
        let p = v
            .pad_linear_ramp(&[(w, 0)], &[(-5.0, 0.0)])
            .unwrap()
            .compute()
            .unwrap();
        assert_eq!(p.len(), w + 3);
        let step = (3.0 - -5.0) / w as f64;
        for i in [w - 2, w - 1] {
            assert_eq!(
                p[[i]],
                (i as f64 * step + -5.0) as f32,
                "w {w}, position {i}"
            );
        }
    }
}

/// A wide constant margin past a short axis comes in blocks of about 1 MiB, not one block per
/// element of the axis's chunk (a million one-element blocks), with the same values.
#[test]
fn wide_constant_margins_of_short_axes_come_in_few_blocks() {
    let x = BlockArray::from_array(ndarray::arr1(&[5.0f64]).into_dyn(), 1).unwrap();
    let p = x
        .pad(&[(1_000_000, 999_999)], PadMode::Constant(2.0))
        .unwrap();
    assert_eq!(p.shape(), &[2_000_000]);
    assert!(
        p.chunks().nblocks() <= 40,
        "{} blocks",
        p.chunks().nblocks()
    );
    let v = p.compute().unwrap();
    assert_eq!(
        (v[[999_999]], v[[1_000_000]], v[[1_000_001]]),
        (2.0, 5.0, 2.0)
    );
    assert_eq!(v.sum(), 2.0 * 1_999_999.0 + 5.0);
    // A 2-d array keeps its chunks across the padded axis.
    let y = BlockArray::from_array(data(&[3, 40], 2), [1, 10]).unwrap();
    let q = y
        .pad(&[(0, 0), (0, 100_000)], PadMode::Constant(0.0))
        .unwrap();
    assert_eq!(q.chunks().axis(0), &[1, 1, 1]);
    assert!(
        q.chunks().nblocks() <= 3 * (4 + 2),
        "{:?}",
        q.chunks().axis(1)
    );
    // Edge margins too (and linear ramps, whose edge is the same), not one block per
    // element of the array's chunk.
    let z = BlockArray::from_array(ndarray::arr1(&[1.0f64, 4.0]).into_dyn(), 1).unwrap();
    for p in [
        z.pad(&[(1_000_000, 999_999)], PadMode::Edge).unwrap(),
        z.pad_linear_ramp(&[(1_000_000, 999_999)], &[(0.0, 0.0)])
            .unwrap(),
    ] {
        assert_eq!(p.shape(), &[2_000_001]);
        assert!(
            p.chunks().nblocks() <= 40,
            "{} blocks",
            p.chunks().nblocks()
        );
    }
    // Every other mode's margin is a take: long takes from short blocks come in runs of
    // about 1 MiB, not one output block per source block's length.
    for (mode, left_end) in [
        (PadMode::Wrap, 4.0),
        (PadMode::Reflect, 4.0),
        (PadMode::Symmetric, 1.0),
    ] {
        let p = z.pad(&[(1_000_000, 999_999)], mode).unwrap();
        assert!(
            p.chunks().nblocks() <= 40,
            "{} blocks",
            p.chunks().nblocks()
        );
        let v = p.compute().unwrap();
        assert_eq!((v[[999_999]], v[[1_000_000]]), (left_end, 1.0), "{mode:?}");
        // NumPy 2.4: np.pad([1., 4.], (1000000, 999999), mode).sum()
        assert_eq!(v.sum(), 5_000_001.0, "{mode:?}");
    }
    let t = z.take(&vec![1; 500_000], 0).unwrap();
    assert!(t.chunks().nblocks() <= 4, "{} blocks", t.chunks().nblocks());
    assert_eq!(t.compute().unwrap().sum(), 2_000_000.0);
    let e = z.pad(&[(3, 2)], PadMode::Edge).unwrap().compute().unwrap();
    assert_eq!(
        e.into_raw_vec_and_offset().0,
        [1.0, 1.0, 1.0, 1.0, 4.0, 4.0, 4.0]
    );
}

/// Letter labels of length 1 broadcast across operands, as in NumPy 2 (values from NumPy
/// 2.4.6); within one operand a repeated label's lengths must agree.
#[test]
fn einsum_broadcasts_letters_of_length_one() {
    let ones = |shape: &[usize]| BlockArray::<f64>::ones(shape, 2).unwrap();
    let v = |x: BlockArray<f64>| x.compute().unwrap().into_raw_vec_and_offset().0;
    assert_eq!(
        v(einsum("ij,ij->", &[&ones(&[1, 3]), &ones(&[2, 3])]).unwrap()),
        vec![6.0]
    );
    let p = einsum("ij,jk->ik", &[&ones(&[2, 1]), &ones(&[3, 4])]).unwrap();
    assert_eq!(p.shape(), &[2, 4]);
    assert_eq!(v(p), vec![3.0; 8]);
    let r = BlockArray::arange(0.0f64, 3.0, 1.0, 2)
        .unwrap()
        .reshape(&[1, 3])
        .unwrap();
    let q = einsum("ij,kj->ik", &[&r, &ones(&[2, 1])]).unwrap();
    assert_eq!((q.shape().to_vec(), v(q)), (vec![1, 2], vec![3.0, 3.0]));
    let e = einsum("ii->i", &[&ones(&[1, 3])]).unwrap_err();
    assert!(e.to_string().contains("repeats"), "{e}");
}

/// Spaces between subscripts are skipped, as NumPy's einsum skips them.
#[test]
fn einsum_skips_spaces() {
    let a = BlockArray::<f64>::from_fn(&[2, 3], [1, 3], "a", |i| (i[0] * 3 + i[1]) as f64).unwrap();
    let b = BlockArray::<f64>::ones(&[3], 2).unwrap();
    let spaced = einsum(" i j , j -> i ", &[&a, &b]).unwrap();
    let plain = einsum("ij,j->i", &[&a, &b]).unwrap();
    assert_eq!(spaced.compute().unwrap(), plain.compute().unwrap());
    assert_eq!(einsum("i j", &[&a]).unwrap().shape(), &[2, 3]);
    let e = einsum("i;j", &[&a]).unwrap_err();
    assert!(e.to_string().contains("';'"), "{e}");
}

/// First index whose value exceeds 6, from each block's offset: a user's reduction that
/// reads positions.
struct FirstAbove6;

impl blockarray::Reduction for FirstAbove6 {
    type In = f64;
    type Out = u64;
    type Partial = u64;
    fn name(&self) -> &str {
        "first-above-6"
    }
    fn chunk(&self, block: &ArrayD<f64>, _: &[usize], offset: &[usize], _: &[usize]) -> u64 {
        match block.iter().position(|&v| v > 6.0) {
            Some(i) => offset[0].saturating_add(i) as u64,
            None => u64::MAX,
        }
    }
    fn merge(&self, a: &u64, b: &u64) -> u64 {
        *a.min(b)
    }
    fn finish(&self, p: &u64) -> ArrayD<u64> {
        ArrayD::from_elem(IxDyn(&[1]), *p)
    }
    fn nbytes(_: &u64) -> usize {
        8
    }
}

/// An array of unknown block lengths (after a mask) through operations that need positions:
/// refused, naming `compute_chunk_sizes` (`trim_internal` cut its margins at places computed
/// from the bounds and gave other elements; `median` of long lanes panicked in a task), and a
/// user's reduction gets `usize::MAX` positions on such an axis (it was given positions
/// computed from the bounds: index 6 where NumPy has 5).
#[test]
fn positions_along_unknown_lengths_are_never_guessed() {
    let x = BlockArray::<f64>::arange(0.0, 10.0, 1.0, 5).unwrap();
    let keep = [false, true, true, true, true, false, true, true, true, true];
    let keep = BlockArray::from_array(ndarray::arr1(&keep).into_dyn(), 5).unwrap();
    let y = x.mask(&keep).unwrap();
    let msg = |r: blockarray::Result<BlockArray<f64>>| r.unwrap_err().to_string();
    for r in [
        y.trim_internal(1, blockarray::Boundary::Periodic),
        y.trim_internal(1, blockarray::Boundary::None),
        y.median(None, false),
        y.nanmedian(Some(&[0]), false),
    ] {
        assert!(msg(r).contains("compute_chunk_sizes"));
    }
    let first = blockarray::reduce(&y, FirstAbove6, None, false, 2).unwrap();
    assert_eq!(first.compute().unwrap().into_iter().next(), Some(u64::MAX));
    // With the lengths computed, the positions are the real ones (NumPy: 5).
    let known = y.compute_chunk_sizes().unwrap();
    let first = blockarray::reduce(&known, FirstAbove6, None, false, 2).unwrap();
    assert_eq!(first.compute().unwrap().into_iter().next(), Some(5));
    assert_eq!(
        known
            .median(None, false)
            .unwrap()
            .compute()
            .unwrap()
            .into_iter()
            .next(),
        Some(5.0)
    );
}
