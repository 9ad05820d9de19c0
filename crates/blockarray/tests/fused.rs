//! Fused elementwise chains (`blockarray::ops::fused`): chains of maps and transposes computed
//! in one pass per block give bitwise the values of the same operations on in-memory arrays,
//! over random shapes (empty and length-1 axes included), random chunkings, transposed and
//! broadcast operands and both schedulers; the fused graph has one task per output block and
//! names the chain; shared intermediates are not fused; errors inside a chain name the failure.

use blockarray::{BlockArray, ErrorKind, where_};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;

mod common;
use common::{arb_chunks, data, scheduler};

/// A shape, a chunking of it, a chunking of its reverse, and whether to use threads.
type Case = (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>, bool);

/// A 2-d or 3-d shape (lengths 0..12) with a chunking of it and of its reverse.
fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(0usize..12, 2..=3).prop_flat_map(|shape| {
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        (
            Just(shape.clone()),
            arb_chunks(shape),
            arb_chunks(rev),
            any::<bool>(),
        )
    })
}

fn reversed(a: &ArrayD<f64>) -> ArrayD<f64> {
    a.t().to_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `exp(a) * b.T + 1`, `(a + 1).T * b`, broadcasting a last-axis row, and a comparison
    /// feeding `where_`: bitwise equal to ndarray's, whatever the chunks and scheduler.
    #[test]
    fn fused_chains_match_ndarray((shape, ca, cb, thr) in case()) {
        let s = scheduler(thr);
        let a = data(&shape, 1);
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let b = data(&rev, 2);
        let last = *shape.last().unwrap();
        let r = data(&[last], 3);
        let x = BlockArray::from_array(a.clone(), ca.clone()).unwrap();
        let y = BlockArray::from_array(b.clone(), cb).unwrap();
        let row = BlockArray::from_array(r.clone(), vec![ca.last().unwrap().clone()]).unwrap();

        let e1 = (&(&x.exp() * &y.t()).unwrap() + 1.0).compute_with(&*s).unwrap();
        let want1 = (a.mapv(f64::exp) * reversed(&b)).mapv(|v| v + 1.0);
        prop_assert_eq!(&e1, &want1);

        let e2 = (&(&y + 1.0).t() * &x).unwrap().compute_with(&*s).unwrap();
        let want2 = reversed(&b.mapv(|v| v + 1.0)) * &a;
        prop_assert_eq!(&e2, &want2);

        let e3 = (&(&x * 0.5) - &row).unwrap().sqrt().compute_with(&*s).unwrap();
        let want3 = (a.mapv(|v| v * 0.5) - &r).mapv(f64::sqrt);
        // NaN where negative: compare bit patterns.
        prop_assert_eq!(e3.mapv(f64::to_bits), want3.mapv(f64::to_bits));

        let cond = x.greater(&y.t()).unwrap();
        let e4 = where_(&cond, &(&x * 2.0), &y.t().sin()).unwrap().compute_with(&*s).unwrap();
        let bt = reversed(&b);
        let want4 = ndarray::Zip::from(&a)
            .and(&bt)
            .map_collect(|&p, &q| if p > q { p * 2.0 } else { q.sin() });
        prop_assert_eq!(&e4, &want4);

        // A chain into a reduction, and a cast in the middle of a chain.
        if !a.is_empty() {
            let e5 = (&x.t() * 3.0).astype::<i64>().sum(Some(&[0]), false).unwrap()
                .compute_with(&*s).unwrap();
            let want5 = a.t().mapv(|v| (v * 3.0) as i64).sum_axis(Axis(0));
            prop_assert_eq!(e5, want5);
        }
    }

    /// Square arrays: `x + x.T` reads the same blocks twice, one transposed, and a transposed
    /// intermediate used twice is computed once (not fused) yet gives the same values.
    #[test]
    fn symmetric_and_shared_chains_match_ndarray(
        n in 0usize..20,
        cuts in proptest::collection::btree_set(0usize..20, 0..4),
        thr in any::<bool>(),
    ) {
        let s = scheduler(thr);
        let a = data(&[n, n], 4);
        let c = common::cuts_to_chunks(n, &cuts);
        let x = BlockArray::from_array(a.clone(), vec![c.clone(), c]).unwrap();
        let got = (&x + &x.t()).unwrap().compute_with(&*s).unwrap();
        prop_assert_eq!(&got, &(&a + &a.t()));
        let e = x.exp();
        let shared = (&(&e * &e.t()).unwrap() - &e).unwrap().compute_with(&*s).unwrap();
        let ea = a.mapv(f64::exp);
        prop_assert_eq!(&shared, &(&(&ea * &ea.t()) - &ea));
    }
}

/// The labels of the fused graph's tasks.
fn labels<T: blockarray::Element>(x: &BlockArray<T>) -> Vec<String> {
    let (g, _) = x.lowered(None).unwrap();
    g.iter()
        .map(|(k, t)| t.label().map_or_else(|| k.to_string(), str::to_string))
        .collect()
}

#[test]
fn a_chain_is_one_task_per_block_named_by_its_operations() {
    let a = BlockArray::from_array(data(&[6, 4], 5), [3, 2]).unwrap();
    let b = BlockArray::from_array(data(&[4, 6], 6), [2, 3]).unwrap();
    let y = (&(&a.exp() * &b.t()).unwrap() + 1.0).sqrt();
    let l = labels(&y);
    assert_eq!(l.len(), 4, "{l:?}");
    for label in &l {
        for op in ["exp", "transpose", "mul", "add", "sqrt"] {
            assert!(label.contains(op), "{label} lacks {op}");
        }
    }
    // The keys are the top operation's: fusion does not rename the result.
    let (g, keys) = y.lowered(None).unwrap();
    assert!(keys.iter().all(|k| k.to_string().contains(y.name())));
    assert_eq!(g.len(), 4);
}

#[test]
fn a_shared_intermediate_keeps_its_own_tasks() {
    let a = BlockArray::from_array(data(&[4, 4], 7), [2, 2]).unwrap();
    let e = a.exp();
    let y = (&(&e * &e.t()).unwrap() - &e).unwrap();
    let l = labels(&y);
    // `exp` is computed once per block: inside the output task for the diagonal blocks
    // (their only reader), in a task of its own for the two off-diagonal blocks, each read by
    // two output blocks.
    let exps = l
        .iter()
        .filter(|s| s.contains("exp") && !s.contains("mul"))
        .count();
    assert_eq!(exps, 2, "{l:?}");
    assert_eq!(l.len(), 6, "{l:?}");
}

#[test]
fn a_broadcast_operand_is_not_recomputed_per_block() {
    let a = BlockArray::from_array(data(&[4, 6], 8), [2, 2]).unwrap();
    let row = BlockArray::from_array(data(&[6], 9), [2]).unwrap().exp();
    let y = (&a + &row).unwrap();
    let l = labels(&y);
    // 3 blocks of exp(row), each read by 2 output blocks: kept as tasks.
    assert_eq!(l.iter().filter(|s| s.contains("exp")).count(), 3, "{l:?}");
    assert_eq!(l.len(), 3 + 6, "{l:?}");
}

#[test]
fn errors_inside_a_chain_fail_the_computation() {
    let a = BlockArray::from_array(
        ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1i64, 2, 3, 4, 5, 6]).unwrap(),
        [1, 3],
    )
    .unwrap();
    let z = BlockArray::from_array(
        ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1i64, 0, 1, 1, 1, 1]).unwrap(),
        [3, 1],
    )
    .unwrap();
    let y = (&(&a + 1) % &z.t()).unwrap();
    let e = y.compute().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Graph, "{e}");
    assert!(e.to_string().contains("zero"), "{e}");
    // Without the zero, the same chain computes NumPy's values.
    let ok = (&(&a + 1) % &(&z.t() + 1)).unwrap().compute().unwrap();
    assert_eq!(ok.into_raw_vec_and_offset().0, vec![0, 1, 0, 0, 0, 1]);
}

#[test]
fn kit_permute_copies_any_permutation_and_refuses_others() {
    let kit = blockarray::ext::kit::<f64>();
    let a = data(&[5, 70, 40], 10);
    let v = blockarray::ext::block_value(a.clone());
    for perm in [
        [0, 1, 2],
        [2, 1, 0],
        [1, 2, 0],
        [0, 2, 1],
        [2, 0, 1],
        [1, 0, 2],
    ] {
        let got = kit.permute(&v, &perm).unwrap();
        let got = blockarray::ext::block_ref::<f64>(&got).unwrap();
        let want = a.view().permuted_axes(IxDyn(&perm));
        assert_eq!(got, &want, "{perm:?}");
        assert!(got.is_standard_layout(), "{perm:?}");
    }
    for bad in [&[0, 0, 1][..], &[0, 1], &[0, 1, 3]] {
        let e = kit.permute(&v, bad).unwrap_err();
        assert!(e.to_string().contains("axes"), "{bad:?}: {e}");
    }
}
