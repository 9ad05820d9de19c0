//! QR: TSQR, short-and-fat QR and tile QR against their definition (Q·R = A, QᴴQ = I, R upper
//! triangular) and against faer on the same matrix in memory.

mod common;

use blockarray::ErrorKind;
use blockarray_linalg::{TsqrOptions, qr, qr_r, qr_tiled, tsqr, tsqr_with};
use common::*;
use ndarray::Array2;
use num_complex::Complex;
use proptest::prelude::*;

/// Checks a QR factorisation of `a`: shapes, Q·R = A, orthonormal Q, triangular R, and R equal
/// to faer's up to the sign (phase) of each row.
fn check_qr<T: TestScalar>(a: &Array2<T>, q: &Array2<T>, r: &Array2<T>) {
    let (m, n) = a.dim();
    let k = m.min(n);
    assert_eq!(q.dim(), (m, k), "Q shape");
    assert_eq!(r.dim(), (k, n), "R shape");
    let s = scale(a);
    let err = max_diff(&matmul(q, r), &c(a)) / s;
    assert!(
        err < T::tol() * (m + n + 1) as f64,
        "Q·R differs from A by {err}"
    );
    if k > 0 {
        let o = orthogonality(q);
        assert!(
            o < T::tol() * (m + n + 1) as f64,
            "QᴴQ differs from I by {o}"
        );
    }
    assert!(is_triangular(r, true), "R is not upper triangular: {r:?}");
    check_r_against_faer(a, r);
}

/// R against faer's R of the same matrix: equal up to a unit factor per row (rows where R is
/// numerically zero are skipped: rank-deficient inputs).
fn check_r_against_faer<T: TestScalar>(a: &Array2<T>, r: &Array2<T>) {
    let (m, n) = a.dim();
    let k = m.min(n);
    if k == 0 {
        return;
    }
    let fa = faer::Mat::<Complex<f64>>::from_fn(m, n, |i, j| a[[i, j]].c64());
    let fr = fa.qr().thin_R().to_owned();
    let s = scale(a);
    for i in 0..k {
        let (d_ours, d_faer) = (r[[i, i]].c64(), fr[(i, i)]);
        if d_faer.norm() < 1e-6 * s || d_ours.norm() < 1e-6 * s {
            continue;
        }
        let phase = d_ours / d_faer;
        assert!(
            (phase.norm() - 1.0).abs() < T::tol() * 100.0,
            "row {i}: |R| differs: {d_ours} vs {d_faer}"
        );
        for j in i..n {
            let diff = (r[[i, j]].c64() - phase * fr[(i, j)]).norm();
            assert!(
                diff < T::tol() * 100.0 * s,
                "R[{i}, {j}] = {} but faer gives {} (phase {phase})",
                r[[i, j]].c64(),
                fr[(i, j)]
            );
        }
    }
}

fn run_qr<T: TestScalar>(
    f: impl Fn(
        &blockarray::BlockArray<T>,
    ) -> blockarray::Result<(blockarray::BlockArray<T>, blockarray::BlockArray<T>)>,
    a: &Array2<T>,
    chunks: Vec<Vec<usize>>,
    threaded: bool,
) {
    let x = chunked(a, chunks);
    let (q, r) = f(&x).expect("builds");
    let out = compute_all(&[&q, &r], &*scheduler(threaded));
    check_qr(a, &two(out[0].clone()), &two(out[1].clone()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn tsqr_matches_definition(
        (m, n, rows) in (1usize..60, 1usize..10).prop_flat_map(|(m, n)| (Just(m), Just(n), axis_chunks(m, 0.25))),
        fanin in 2usize..5,
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        let a = random::<f64>(seed, m, n);
        let x = chunked(&a, vec![rows, vec![n]]);
        let out = tsqr_with(&x, &TsqrOptions::new().fanin(fanin)).unwrap();
        let res = compute_all(&[out.q.as_ref().unwrap(), &out.r], &*scheduler(threaded));
        check_qr(&a, &two(res[0].clone()), &two(res[1].clone()));
        // Without Q: the same R.
        let r_only = tsqr_with(&x, &TsqrOptions::new().fanin(fanin).compute_q(false)).unwrap();
        prop_assert!(r_only.q.is_none());
        let r2 = r_only.r.compute_with(&*scheduler(threaded)).unwrap();
        prop_assert_eq!(r2, res[1].clone());
    }

    #[test]
    fn qr_any_chunking(
        (m, n, rows, cols) in (1usize..40, 1usize..40).prop_flat_map(|(m, n)| (Just(m), Just(n), axis_chunks(m, 0.2), axis_chunks(n, 0.2))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        let a = random::<f64>(seed, m, n);
        run_qr(qr, &a, vec![rows.clone(), cols.clone()], threaded);
        run_qr(qr_tiled, &a, vec![rows, cols], threaded);
    }

    #[test]
    fn qr_complex_and_f32(
        (m, n, rows, cols) in (1usize..24, 1usize..24).prop_flat_map(|(m, n)| (Just(m), Just(n), axis_chunks(m, 0.25), axis_chunks(n, 0.25))),
        seed in any::<u64>(),
    ) {
        run_qr(qr_tiled, &random::<Complex<f64>>(seed, m, n), vec![rows.clone(), cols.clone()], true);
        run_qr(qr_tiled, &random::<f32>(seed, m, n), vec![rows.clone(), cols.clone()], false);
        run_qr(qr, &random::<Complex<f32>>(seed, m, n), vec![rows, cols], true);
    }
}

#[test]
fn tsqr_complex() {
    let a = random::<Complex<f64>>(3, 70, 6);
    for s in schedulers() {
        let x = chunked(&a, vec![vec![20, 20, 20, 10], vec![6]]);
        let (q, r) = tsqr(&x).unwrap();
        let out = compute_all(&[&q, &r], &*s);
        check_qr(&a, &two(out[0].clone()), &two(out[1].clone()));
    }
}

#[test]
fn short_fat_one_row_block() {
    let a = random::<f64>(9, 7, 30);
    for cols in [vec![5, 10, 15], vec![3, 4, 23], vec![30]] {
        run_qr(qr, &a, vec![vec![7], cols], true);
    }
}

#[test]
fn small_and_empty() {
    let one = Array2::from_elem((1, 1), -3.0f64);
    run_qr(qr, &one, vec![vec![1], vec![1]], false);
    run_qr(qr_tiled, &one, vec![vec![1], vec![1]], false);
    for (m, n) in [(0, 0), (0, 5), (5, 0)] {
        let a = Array2::<f64>::zeros((m, n));
        let rows = if m == 0 { vec![0] } else { vec![2, 3] };
        let cols = if n == 0 { vec![0] } else { vec![2, 3] };
        run_qr(qr, &a, vec![rows.clone(), cols.clone()], false);
        run_qr(qr_tiled, &a, vec![rows.clone(), cols.clone()], false);
        run_qr(tsqr, &a, vec![rows, cols], false);
    }
}

#[test]
fn rank_deficient_and_ill_conditioned() {
    // Rank 2: every column a combination of two.
    let (m, n) = (40, 8);
    let b = random::<f64>(1, m, 2);
    let w = random::<f64>(2, 2, n);
    let a = b.dot(&w);
    run_qr(tsqr, &a, vec![vec![10; 4], vec![n]], true);
    run_qr(qr_tiled, &a, vec![vec![10; 4], vec![3, 5]], true);
    // A zero column and a zero matrix.
    let mut z = random::<f64>(4, 30, 5);
    z.column_mut(2).fill(0.0);
    run_qr(tsqr, &z, vec![vec![7, 8, 15], vec![5]], false);
    run_qr(
        qr_tiled,
        &Array2::<f64>::zeros((12, 9)),
        vec![vec![4; 3], vec![5, 4]],
        false,
    );
    // Columns scaled over 12 orders of magnitude: Q·R still reproduces A (backward stable).
    let mut ill = random::<f64>(5, 50, 6);
    for (j, mut col) in ill.columns_mut().into_iter().enumerate() {
        col *= 10f64.powi(-2 * j as i32);
    }
    let x = chunked(&ill, vec![vec![10; 5], vec![6]]);
    let (q, r) = tsqr(&x).unwrap();
    let out = compute_all(&[&q, &r], &*scheduler(true));
    let (q, r) = (two(out[0].clone()), two(out[1].clone()));
    assert!(max_diff(&matmul(&q, &r), &c(&ill)) < 1e-13);
    assert!(orthogonality(&q) < 1e-12);
}

#[test]
fn r_alone_matches() {
    let a = random::<f64>(11, 33, 21);
    let x = chunked(&a, vec![vec![10, 13, 10], vec![8, 6, 7]]);
    let r = two(qr_r(&x).unwrap().compute().unwrap());
    let (_, r2) = qr(&x).unwrap();
    assert_eq!(r, two(r2.compute().unwrap()));
    check_r_against_faer(&a, &r);
}

#[test]
fn keys_depend_on_options() {
    let a = chunked(&random::<f64>(1, 40, 4), vec![vec![10; 4], vec![4]]);
    let r2 = tsqr_with(&a, &TsqrOptions::new().fanin(2)).unwrap().r;
    let r3 = tsqr_with(&a, &TsqrOptions::new().fanin(3)).unwrap().r;
    let r2b = tsqr_with(&a, &TsqrOptions::new().fanin(2)).unwrap().r;
    assert_ne!(r2.name(), r3.name());
    assert_eq!(r2.name(), r2b.name());
    let b = chunked(&random::<f64>(2, 40, 4), vec![vec![10; 4], vec![4]]);
    assert_ne!(tsqr(&b).unwrap().1.name(), tsqr(&a).unwrap().1.name());
}

#[test]
fn bad_inputs() {
    let v = blockarray::BlockArray::<f64>::ones(&[10], 5).unwrap();
    for e in [
        qr(&v).unwrap_err(),
        tsqr(&v).unwrap_err(),
        qr_tiled(&v).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(
            e.to_string().contains("2-d") && e.to_string().contains("[10]"),
            "{e}"
        );
    }
    let a = blockarray::BlockArray::<f64>::ones(&[10, 2], [5, 2]).unwrap();
    let e = tsqr_with(&a, &TsqrOptions::new().fanin(1)).unwrap_err();
    assert!(e.to_string().contains("fanin"), "{e}");
    // A thousand tiles along each side: about 3 × 10⁸ tasks, refused when built.
    let big = blockarray::BlockArray::<f64>::zeros(&[100_000, 100_000], 100).unwrap();
    for e in [qr(&big).unwrap_err(), qr_tiled(&big).unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
        assert!(e.to_string().contains("1000 blocks along a side"), "{e}");
    }
}

#[test]
fn wide_matrices_are_refused_by_tsqr_and_tiled_by_qr() {
    // 12000 columns: each R factor would hold 1.15 GB.
    let a = blockarray::BlockArray::<f64>::zeros(&[20_000, 12_000], [1000, 12_000]).unwrap();
    let e = tsqr(&a).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("12000 × 12000") && e.to_string().contains("use qr"),
        "{e}"
    );
    let e = blockarray_linalg::svd(&a).unwrap_err().to_string();
    assert!(e.contains("svd_compressed"), "{e}");
    // qr builds the tile algorithm instead (nothing is computed here).
    let (q, r) = qr(&a).unwrap();
    assert_eq!(
        (q.shape(), r.shape()),
        (&[20_000, 12_000][..], &[12_000, 12_000][..])
    );
    assert!(r.name().starts_with("qr-r-"), "{}", r.name());
}

#[test]
fn only_needed_blocks_are_lowered() {
    // Asking for one block of Q lowers that block's leaf, the tree, and the pieces on its path.
    let a = blockarray::random::Rng::new(0)
        .random::<f64>(&[10_000, 4], [100, 4])
        .unwrap();
    let (q, _) = tsqr_with(&a, &TsqrOptions::new().fanin(10))
        .map(|t| (t.q.unwrap(), t.r))
        .unwrap();
    let (graph, _) = q
        .slice(blockarray::s![0..100, ..])
        .unwrap()
        .lowered(None)
        .unwrap();
    // 100 leaves, 10 + 1 tree tasks, pieces for one path (2), one Q block, the slice.
    assert!(graph.len() < 130, "{} tasks", graph.len());
}
