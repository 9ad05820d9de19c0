//! `overlap`, `trim_internal` and `map_overlap` against an in-memory reference: the array padded
//! axis after axis with NumPy's rules (`numpy.pad` modes `symmetric`, `wrap`, `edge`,
//! `constant`), cut into the extended blocks; random shapes, irregular chunkings, depths
//! (symmetric and not), boundary kinds per axis, and both schedulers.

use blockarray::{BlockArray, Boundary, ErrorKind, MapOverlap};
use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use sched_sync::SyncScheduler;

mod common;
use common::{cuts_to_chunks, data, scheduler};

fn boundary(kind: u8, value: f64) -> Boundary<f64> {
    match kind % 5 {
        0 => Boundary::None,
        1 => Boundary::Constant(value),
        2 => Boundary::Reflect,
        3 => Boundary::Periodic,
        _ => Boundary::Nearest,
    }
}

/// Where position `p` (possibly outside `0..len`) of a padded axis comes from: `Some(i)` or
/// the constant (`None`).
fn source(p: isize, len: usize, b: &Boundary<f64>) -> Option<usize> {
    let n = len as isize;
    if (0..n).contains(&p) {
        return Some(p as usize);
    }
    match b {
        Boundary::Reflect => Some(if p < 0 { -p - 1 } else { 2 * n - p - 1 } as usize),
        Boundary::Periodic => Some(p.rem_euclid(n) as usize),
        Boundary::Nearest => Some(p.clamp(0, n - 1) as usize),
        Boundary::Constant(_) | Boundary::None => None,
    }
}

/// The overlapped array: per axis, the padded positions of each block's window, laid end to
/// end; each element looked up through the per-axis maps (a constant if any axis says so: the
/// last constant axis, as padding axis after axis gives).
fn reference(
    d: &ArrayD<f64>,
    chunks: &[Vec<usize>],
    depth: &[(usize, usize)],
    bounds: &[Boundary<f64>],
) -> ArrayD<f64> {
    let maps: Vec<Vec<Option<usize>>> = (0..d.ndim())
        .map(|a| {
            let len = d.shape()[a];
            let (b, f) = depth[a];
            let nb = chunks[a].len();
            let none = matches!(bounds[a], Boundary::None);
            let mut start = 0;
            let mut out = Vec::new();
            for (j, &c) in chunks[a].iter().enumerate() {
                let lo = if j == 0 && none { 0 } else { b };
                let hi = if j + 1 == nb && none { 0 } else { f };
                for p in start as isize - lo as isize..(start + c + hi) as isize {
                    out.push(source(p, len, &bounds[a]));
                }
                start += c;
            }
            out
        })
        .collect();
    let shape: Vec<usize> = maps.iter().map(Vec::len).collect();
    ArrayD::from_shape_fn(IxDyn(&shape), |idx| {
        let mut at = Vec::with_capacity(idx.ndim());
        let mut constant = None;
        for a in 0..idx.ndim() {
            match maps[a][idx[a]] {
                Some(i) => at.push(i),
                None => {
                    at.push(0);
                    if let Boundary::Constant(c) = bounds[a] {
                        constant = Some(c);
                    }
                }
            }
        }
        constant.unwrap_or_else(|| d[IxDyn(&at)])
    })
}

/// A box sum over the window `[-before, +after]` of every axis, each neighbour looked up through
/// the boundary (outside the array with `None`: left out).
fn box_sum_reference(
    d: &ArrayD<f64>,
    depth: &[(usize, usize)],
    bounds: &[Boundary<f64>],
) -> ArrayD<f64> {
    let nd = d.ndim();
    ArrayD::from_shape_fn(d.raw_dim(), |idx| {
        let mut total = 0.0;
        let mut off: Vec<isize> = depth.iter().map(|&(b, _)| -(b as isize)).collect();
        'all: loop {
            let mut at = Vec::with_capacity(nd);
            let mut value = None;
            let mut skip = false;
            for a in 0..nd {
                let p = idx[a] as isize + off[a];
                match source(p, d.shape()[a], &bounds[a]) {
                    Some(i) => at.push(i),
                    None => {
                        at.push(0);
                        match bounds[a] {
                            Boundary::Constant(c) => value = Some(c),
                            _ => skip = true,
                        }
                    }
                }
            }
            if !skip {
                total += value.unwrap_or_else(|| d[IxDyn(&at)]);
            }
            let mut a = nd;
            loop {
                if a == 0 {
                    break 'all;
                }
                a -= 1;
                off[a] += 1;
                if off[a] <= depth[a].1 as isize {
                    break;
                }
                off[a] = -(depth[a].0 as isize);
            }
        }
        total
    })
}

type Case = (
    Vec<usize>,
    Vec<Vec<usize>>,
    Vec<(usize, usize)>,
    Vec<Boundary<f64>>,
    u64,
    bool,
);

fn arb_case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(1usize..7, 1..=3).prop_flat_map(|shape| {
        let chunks: Vec<_> = shape
            .iter()
            .map(|&n| {
                proptest::collection::btree_set(1..n.max(2), 0..n)
                    .prop_map(move |c| cuts_to_chunks(n, &c))
            })
            .collect();
        let depth: Vec<_> = shape
            .iter()
            .map(|&n| (0..=n.min(3), 0..=n.min(3)))
            .collect();
        let bounds = proptest::collection::vec((any::<u8>(), -3i8..3), shape.len()).prop_map(|v| {
            v.into_iter()
                .map(|(k, c)| boundary(k, f64::from(c) + 0.5))
                .collect::<Vec<_>>()
        });
        (
            Just(shape),
            chunks,
            depth,
            bounds,
            any::<u64>(),
            any::<bool>(),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn overlap_matches_padding((shape, chunks, depth, bounds, seed, thr) in arb_case()) {
        let s = scheduler(thr);
        let d = data(&shape, seed);
        let x = BlockArray::from_array(d.clone(), chunks).unwrap();
        let y = x.overlap(depth.clone(), bounds.clone()).unwrap();
        let trimmed = y.trim_internal(depth.clone(), bounds.clone()).unwrap();
        // The blocks overlap extends: the input's, merged where shorter than the depth.
        let blocks = trimmed.chunks().axes().to_vec();
        for (a, axis) in blocks.iter().enumerate() {
            let need = depth[a].0.max(depth[a].1);
            prop_assert!(need == 0 || axis.iter().all(|&c| c >= need), "axis {a}: {axis:?} for depth {:?}", depth[a]);
        }
        let got = y.compute_with(&*s).unwrap();
        prop_assert_eq!(got, reference(&d, &blocks, &depth, &bounds));
        prop_assert_eq!(trimmed.compute_with(&*s).unwrap(), d);
    }

    #[test]
    fn map_overlap_box_sum_matches_reference((shape, chunks, depth, bounds, seed, thr) in arb_case()) {
        let d = data(&shape, seed);
        let x = BlockArray::from_array(d.clone(), chunks).unwrap();
        let dep = depth.clone();
        // A box sum over the extended block, each window cut to the block (only the margins see
        // cut windows, and they are trimmed away, except at `None` edges where the cut is right).
        let y = x.map_overlap(depth.clone(), bounds.clone(), move |b: &ArrayD<f64>, _| {
            Ok(ArrayD::from_shape_fn(b.raw_dim(), |idx| {
                let lo: Vec<usize> = (0..b.ndim()).map(|a| idx[a].saturating_sub(dep[a].0)).collect();
                let hi: Vec<usize> = (0..b.ndim()).map(|a| (idx[a] + dep[a].1 + 1).min(b.shape()[a])).collect();
                let info: Vec<ndarray::SliceInfoElem> = lo.iter().zip(&hi).map(|(&l, &h)| (l..h).into()).collect();
                b.slice(info.as_slice()).sum()
            }))
        }).unwrap();
        prop_assert_eq!(y.shape(), x.shape());
        prop_assert_eq!(y.compute_with(&*scheduler(thr)).unwrap(), box_sum_reference(&d, &depth, &bounds));
    }
}

#[test]
fn reflect_is_numpy_symmetric_and_dask_reflect() {
    // dask: overlap(arange(8) in chunks of 4, depth 2, "reflect") = [1 0 | 0 1 2 3 | 4 5 ...].
    let x = BlockArray::arange(0i64, 8, 1, 4).unwrap();
    let y = x.overlap(2, Boundary::Reflect).unwrap().compute().unwrap();
    assert_eq!(
        y.into_raw_vec_and_offset().0,
        vec![1, 0, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 7, 6]
    );
    let p = x.overlap(2, Boundary::Periodic).unwrap().compute().unwrap();
    assert_eq!(
        p.into_raw_vec_and_offset().0,
        vec![6, 7, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 0, 1]
    );
    let n = x.overlap(2, Boundary::Nearest).unwrap().compute().unwrap();
    assert_eq!(
        n.into_raw_vec_and_offset().0,
        vec![0, 0, 0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 6, 7, 7, 7]
    );
    let none = x.overlap(vec![(1, 2)], Boundary::None).unwrap();
    assert_eq!(none.chunks().axis(0), &[6, 5]);
}

#[test]
fn only_slivers_move_and_only_needed_blocks_lower() {
    let x = BlockArray::<f64>::ones(&[100, 100], [10, 10]).unwrap();
    let y = x.overlap(1, Boundary::Reflect).unwrap();
    let (graph, _) = y.lowered(Some(&[vec![5, 5]])).unwrap();
    let keys: Vec<String> = graph.keys().iter().map(|k| k.to_string()).collect();
    // The own block, eight slivers of the neighbours (each reading its block inside the
    // sliver task), the overlap task: nothing else is lowered.
    assert_eq!(graph.len(), 10, "{keys:?}");
    assert_eq!(keys.iter().filter(|k| k.contains("sliver-")).count(), 8);
    assert_eq!(keys.iter().filter(|k| k.contains("overlap-")).count(), 1);
    // Slivers are thin: one row, one column, or one element.
    let z = y.block(&[5, 5]).unwrap().compute().unwrap();
    assert_eq!(z.shape(), &[12, 12]);
    for n in y.node().inputs().iter().skip(1) {
        let shape = n.meta().chunks.max_block_shape();
        assert!(shape.contains(&1), "sliver blocks {shape:?}");
    }
}

#[test]
fn map_overlap_runs_function_and_trim_as_one_task() {
    let x = BlockArray::<f64>::ones(&[30, 30], [10, 10]).unwrap();
    let y = x
        .map_overlap(1, Boundary::Constant(0.0), |b: &ArrayD<f64>, _| Ok(b * 2.0))
        .unwrap();
    let (graph, outputs) = y.lowered(None).unwrap();
    let keys: Vec<String> = graph.keys().iter().map(|k| k.to_string()).collect();
    // Per block: the overlap task and one task for the function and the trim.
    assert!(keys.iter().all(|k| !k.contains("trim-")), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("(\"overlap-")).count(),
        9,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("(\"map-overlap-"))
            .count(),
        9,
        "{keys:?}"
    );
    assert_eq!(outputs.len(), 9);
    assert!(y.compute().unwrap().iter().all(|&v| v == 2.0));
}

#[test]
fn keys_hash_every_parameter_and_each_closure_call() {
    let x = BlockArray::<f64>::ones(&[8, 8], [4, 4]).unwrap();
    let name = |d: usize, b: Boundary<f64>| x.overlap(d, b).unwrap().name().to_owned();
    assert_eq!(name(1, Boundary::Reflect), name(1, Boundary::Reflect));
    assert_ne!(name(1, Boundary::Reflect), name(2, Boundary::Reflect));
    assert_ne!(name(1, Boundary::Reflect), name(1, Boundary::Periodic));
    assert_ne!(
        name(1, Boundary::Constant(0.0)),
        name(1, Boundary::Constant(1.0))
    );
    let asym = x.overlap(vec![(1, 0), (0, 1)], Boundary::Nearest).unwrap();
    let sym = x.overlap(vec![(0, 1), (1, 0)], Boundary::Nearest).unwrap();
    assert_ne!(asym.name(), sym.name());
    // The same closure type with different captured values: different keys and results.
    let scaled = |k: f64| {
        x.map_overlap(1, Boundary::Reflect, move |b: &ArrayD<f64>, _| Ok(b * k))
            .unwrap()
    };
    let (two, three) = (scaled(2.0), scaled(3.0));
    assert_ne!(two.name(), three.name());
    let mut c = blockarray::Computation::new();
    let (h2, h3) = (c.add(&two), c.add(&three));
    let mut out = c.run(&SyncScheduler::new()).unwrap();
    assert!(out.take(h2).unwrap().iter().all(|&v| v == 2.0));
    assert!(out.take(h3).unwrap().iter().all(|&v| v == 3.0));
    // A token the caller vouches for makes equal calls share keys.
    let opts = MapOverlap::new().name("double").token(7);
    let f = |b: &ArrayD<f64>, _: &blockarray::BlockInfo<'_>| Ok(b * 2.0);
    let a = x.map_overlap_with(&opts, 1, Boundary::Reflect, f).unwrap();
    let b = x.map_overlap_with(&opts, 1, Boundary::Reflect, f).unwrap();
    assert_eq!(a.name(), b.name());
    let other = x.map_overlap_with(&opts, 2, Boundary::Reflect, f).unwrap();
    assert_ne!(a.name(), other.name());
}

#[test]
fn bad_inputs_are_errors_naming_the_value() {
    let x = BlockArray::<f64>::ones(&[4, 6], [2, 3]).unwrap();
    let e = x.overlap(5, Boundary::Reflect).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(e.to_string().contains("depth (5, 5) along axis 0"), "{e}");
    let e = x.overlap(vec![(0, 0), (1, 7)], Boundary::None).unwrap_err();
    assert!(
        e.to_string().contains("axis 1") && e.to_string().contains("length 6"),
        "{e}"
    );
    let e = x.overlap([1], Boundary::None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Axis);
    let e = x.overlap(1, vec![Boundary::None]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Axis);
    let e = x
        .map_overlap(9, Boundary::Reflect, |b: &ArrayD<f64>, _| Ok(b.clone()))
        .unwrap_err();
    assert!(e.to_string().contains("depth (9, 9)"), "{e}");
    // A function returning a block of another shape fails when computed, naming the block.
    let y = x
        .map_overlap(1, Boundary::Reflect, |b: &ArrayD<f64>, _| {
            Ok(b.slice(ndarray::s![1.., ..]).to_owned().into_dyn())
        })
        .unwrap();
    let e = y.compute().unwrap_err().to_string();
    assert!(e.contains("came back with shape"), "{e}");
    // Trimming more than a block holds.
    let e = x.trim_internal(2, Boundary::Reflect).unwrap_err();
    assert!(e.to_string().contains("cannot trim"), "{e}");
}

#[test]
fn chunks_smaller_than_the_depth_are_merged() {
    let d = data(&[10], 3);
    let x = BlockArray::from_array(d.clone(), vec![vec![1, 1, 4, 1, 2, 1]]).unwrap();
    let y = x.overlap(2, Boundary::Periodic).unwrap();
    let t = y.trim_internal(2, Boundary::Periodic).unwrap();
    assert!(
        t.chunks().axis(0).iter().all(|&c| c >= 2),
        "{:?}",
        t.chunks()
    );
    let blocks = t.chunks().axes().to_vec();
    assert_eq!(
        y.compute().unwrap(),
        reference(&d, &blocks, &[(2, 2)], &[Boundary::Periodic])
    );
}

/// Margins as long as an axis longer than a third of `usize` (one-byte elements) are refused,
/// not summed past `usize` (a debug panic; a wrapped shape in release builds).
#[test]
fn margins_that_overflow_block_lengths_are_errors() {
    let n = isize::MAX as usize;
    let x = BlockArray::<u8>::zeros(&[n], n).unwrap();
    for b in [
        Boundary::Periodic,
        Boundary::Reflect,
        Boundary::Nearest,
        Boundary::Constant(0u8),
    ] {
        let e = x.overlap(n, b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Shape, "{e}");
        assert!(e.to_string().contains("axis 0"), "{e}");
    }
}
