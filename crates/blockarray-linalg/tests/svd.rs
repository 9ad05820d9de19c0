//! SVD (exact and randomized): U·S·Vᴴ = A, orthonormal factors, singular values against faer,
//! determinism across chunkings and schedulers.

mod common;

use blockarray::ErrorKind;
use blockarray_linalg::{RealOf, SvdCompressed, svd, svd_compressed, svd_via_qr};
use common::*;
use ndarray::{Array1, Array2};
use num_complex::Complex;
use proptest::prelude::*;

fn faer_singular_values<T: TestScalar>(a: &Array2<T>) -> Vec<f64> {
    let (m, n) = a.dim();
    if m.min(n) == 0 {
        return vec![];
    }
    let fa = faer::Mat::<Complex<f64>>::from_fn(m, n, |i, j| a[[i, j]].c64());
    fa.singular_values().expect("converges")
}

/// Computes and checks an SVD of `a`; returns (u, s, vh).
fn check_svd<T: TestScalar>(
    a: &Array2<T>,
    chunks: Vec<Vec<usize>>,
    threaded: bool,
) -> (Array2<T>, Vec<f64>, Array2<T>)
where
    RealOf<T>: TestScalar,
{
    let (m, n) = a.dim();
    let k = m.min(n);
    let x = chunked(a, chunks);
    let (u, s, vh) = svd(&x).unwrap();
    let sch = scheduler(threaded);
    let u = two(u.compute_with(&*sch).unwrap());
    let s: Vec<f64> = s
        .compute_with(&*sch)
        .unwrap()
        .iter()
        .map(|v| v.c64().re)
        .collect();
    let vh = two(vh.compute_with(&*sch).unwrap());
    assert_eq!((u.dim(), s.len(), vh.dim()), ((m, k), k, (k, n)));
    let tol = T::tol() * (m + n + 1) as f64;
    let sc = scale(a);
    let us = Array2::from_shape_fn((m, k), |(i, j)| u[[i, j]].c64() * s[j]);
    let err = max_diff(&us.dot(&c(&vh)), &c(a)) / sc;
    assert!(err < tol, "U·S·Vᴴ differs from A by {err}");
    if k > 0 {
        assert!(orthogonality(&u) < tol, "U not orthonormal");
        let v = vh.t().mapv(|x| x.conjugate());
        assert!(orthogonality(&v) < tol, "V not orthonormal");
    }
    assert!(
        s.windows(2).all(|w| w[0] >= w[1]) && s.iter().all(|&v| v >= 0.0),
        "{s:?}"
    );
    for (ours, theirs) in s.iter().zip(faer_singular_values(a)) {
        assert!(
            (ours - theirs).abs() < tol * sc,
            "singular value {ours} vs faer {theirs}"
        );
    }
    (u, s, vh)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn svd_any_chunking(
        (m, n, rows, cols) in (1usize..40, 1usize..40).prop_flat_map(|(m, n)| (Just(m), Just(n), axis_chunks(m, 0.2), axis_chunks(n, 0.2))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        check_svd(&random::<f64>(seed, m, n), vec![rows.clone(), cols.clone()], threaded);
        check_svd(&random::<Complex<f64>>(seed, m, n), vec![rows, cols], !threaded);
    }

    #[test]
    fn svd_tall_skinny_same_for_every_chunking(
        (m, rows1, rows2) in (8usize..80).prop_flat_map(|m| (Just(m), axis_chunks(m, 0.3), axis_chunks(m, 0.1))),
        seed in any::<u64>(),
    ) {
        let a = random::<f64>(seed, m, 6);
        let (u1, s1, vh1) = check_svd(&a, vec![rows1, vec![6]], false);
        let (u2, s2, vh2) = check_svd(&a, vec![rows2, vec![4, 2]], true);
        // Canonical signs: the same factors (to rounding) whatever the chunking.
        for (x, y) in s1.iter().zip(&s2) {
            prop_assert!((x - y).abs() < 1e-10);
        }
        prop_assert!(max_diff(&c(&vh1), &c(&vh2)) < 1e-8);
        prop_assert!(max_diff(&c(&u1), &c(&u2)) < 1e-8);
    }
}

#[test]
fn f32_and_complex_f32() {
    check_svd(&random::<f32>(1, 50, 7), vec![vec![20, 30], vec![7]], true);
    check_svd(
        &random::<Complex<f32>>(2, 9, 33),
        vec![vec![9], vec![10, 23]],
        false,
    );
}

#[test]
fn small_empty_and_rank_deficient() {
    check_svd(
        &Array2::from_elem((1, 1), -2.5f64),
        vec![vec![1], vec![1]],
        false,
    );
    for (m, n) in [(0, 3), (3, 0), (0, 0)] {
        let rows = if m == 0 { vec![0] } else { vec![m] };
        let cols = if n == 0 { vec![0] } else { vec![n] };
        check_svd(&Array2::<f64>::zeros((m, n)), vec![rows, cols], true);
    }
    let b = random::<f64>(3, 30, 2);
    let a = b.dot(&random::<f64>(4, 2, 9));
    let (_, s, _) = check_svd(&a, vec![vec![10; 3], vec![9]], true);
    assert!(s[2] < 1e-12 * s[0], "rank 2: {s:?}");
}

#[test]
fn general_path_uses_qr_first() {
    // What svd does when both axes are in several blocks and rows are too wide to merge.
    for (m, n, rows, cols) in [
        (40, 30, vec![13, 13, 14], vec![10, 10, 10]),
        (20, 35, vec![8, 12], vec![5, 30]),
    ] {
        let a = random::<f64>(8, m, n);
        let x = chunked(&a, vec![rows, cols]);
        let (u, s, vh) = svd_via_qr(&x).unwrap();
        let out = compute_all(&[&u, &vh], &*scheduler(true));
        let s: Vec<f64> = s.compute().unwrap().iter().copied().collect();
        let us = Array2::from_shape_fn((m, m.min(n)), |(i, j)| out[0][[i, j]] * s[j]);
        let err = (&us.dot(&two(out[1].clone())) - &a)
            .iter()
            .fold(0.0f64, |x, v| x.max(v.abs()));
        assert!(err < 1e-12, "{err}");
        for (x, y) in s.iter().zip(faer_singular_values(&a)) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}

#[test]
fn compressed_recovers_low_rank() {
    let (m, n, r) = (120, 80, 4);
    let a = random::<f64>(1, m, r).dot(&random::<f64>(2, r, n));
    let exact = faer_singular_values(&a);
    for (rows, cols) in [
        (vec![40; 3], vec![80]),
        (vec![50, 70], vec![30, 50]),
        (vec![120], vec![25, 25, 30]),
    ] {
        for s in schedulers() {
            let x = chunked(&a, vec![rows.clone(), cols.clone()]);
            let (u, sv, vh) =
                svd_compressed(&x, r, &SvdCompressed::new().n_power_iter(1).seed(7)).unwrap();
            let out_u = two(u.compute_with(&*s).unwrap());
            let out_s: Array1<f64> = sv.compute_with(&*s).unwrap().into_dimensionality().unwrap();
            let out_vh = two(vh.compute_with(&*s).unwrap());
            let us = Array2::from_shape_fn((m, r), |(i, j)| out_u[[i, j]] * out_s[j]);
            let err = (&us.dot(&out_vh) - &a)
                .iter()
                .fold(0.0f64, |x, v| x.max(v.abs()));
            assert!(err < 1e-9, "rank-{r} reconstruction error {err}");
            for (x, y) in out_s.iter().zip(&exact) {
                assert!((x - y).abs() < 1e-9 * exact[0]);
            }
        }
    }
}

#[test]
fn compressed_is_deterministic_across_chunkings() {
    let a = random::<f64>(5, 90, 60);
    let opts = SvdCompressed::new().seed(11).n_power_iter(2);
    let run = |chunks: Vec<Vec<usize>>, threaded: bool| {
        let (u, s, vh) = svd_compressed(&chunked(&a, chunks), 5, &opts).unwrap();
        compute_all(&[&u, &vh], &*scheduler(threaded))
            .into_iter()
            .map(two)
            .chain(std::iter::once(
                Array2::from_shape_vec((1, 5), s.compute().unwrap().into_raw_vec_and_offset().0)
                    .unwrap(),
            ))
            .collect::<Vec<_>>()
    };
    let x = run(vec![vec![30; 3], vec![60]], false);
    let y = run(vec![vec![45, 45], vec![20, 40]], true);
    for (p, q) in x.iter().zip(&y) {
        let d = (p - q).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(d < 1e-9, "results differ by {d} between chunkings");
    }
    // Another seed draws another sketch: other keys.
    let k1 = svd_compressed(&chunked(&a, vec![vec![90], vec![60]]), 5, &opts)
        .unwrap()
        .1;
    let k2 = svd_compressed(
        &chunked(&a, vec![vec![90], vec![60]]),
        5,
        &opts.clone().seed(12),
    )
    .unwrap()
    .1;
    assert_ne!(k1.name(), k2.name());
}

#[test]
fn bad_inputs() {
    let x = blockarray::BlockArray::<f64>::ones(&[10, 4], [5, 4]).unwrap();
    for k in [0, 5] {
        let e = svd_compressed(&x, k, &SvdCompressed::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(
            e.to_string().contains(&format!("k = {k}")) && e.to_string().contains("[10, 4]"),
            "{e}"
        );
    }
    let v = blockarray::BlockArray::<f64>::ones(&[10], 5).unwrap();
    assert!(svd(&v).unwrap_err().to_string().contains("2-d"));
}

#[test]
fn compressed_oversamples_overflowing_usize_are_errors() {
    let a = blockarray::BlockArray::<f64>::ones(&[30, 20], [10, 20]).unwrap();
    let e = svd_compressed(&a, 5, &SvdCompressed::new().n_oversamples(usize::MAX)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("n_oversamples"), "{e}");
}

#[test]
fn compressed_too_many_power_iterations_are_errors() {
    let a = blockarray::BlockArray::<f64>::ones(&[30, 20], [10, 20]).unwrap();
    for n in [SvdCompressed::MAX_POWER_ITER + 1, usize::MAX] {
        let e = svd_compressed(&a, 5, &SvdCompressed::new().n_power_iter(n)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            e.to_string().contains("n_power_iter") && e.to_string().contains(&n.to_string()),
            "{e}"
        );
    }
}

#[test]
fn compressed_complex_low_rank() {
    let (m, n, r) = (60, 45, 3);
    let a = matmul(
        &random::<Complex<f64>>(3, m, r),
        &random::<Complex<f64>>(4, r, n),
    )
    .mapv(|v| v);
    let x = chunked(&a, vec![vec![20, 40], vec![15, 30]]);
    let (u, s, vh) = svd_compressed(&x, r, &SvdCompressed::new().seed(5)).unwrap();
    let out = compute_all(&[&u, &vh], &*scheduler(true));
    let s: Vec<f64> = s.compute().unwrap().iter().copied().collect();
    let (u, vh) = (two(out[0].clone()), two(out[1].clone()));
    let us = Array2::from_shape_fn((m, r), |(i, j)| u[[i, j]] * s[j]);
    assert!(max_diff(&us.dot(&vh), &a) < 1e-10);
}

#[test]
fn ill_conditioned_singular_values() {
    // Singular values 1, 1e-3, …, 1e-12 by construction: U·diag·Vᵀ from two QRs.
    let (m, n) = (80, 5);
    let qu = faer::Mat::<f64>::from_fn(m, n, |i, j| random::<f64>(1, m, n)[[i, j]])
        .qr()
        .compute_thin_Q();
    let qv = faer::Mat::<f64>::from_fn(n, n, |i, j| random::<f64>(2, n, n)[[i, j]])
        .qr()
        .compute_thin_Q();
    let sv = [1.0, 1e-3, 1e-6, 1e-9, 1e-12];
    let a = Array2::from_shape_fn((m, n), |(i, j)| {
        (0..n).map(|k| qu[(i, k)] * sv[k] * qv[(j, k)]).sum::<f64>()
    });
    let (_, s, _) = svd(&chunked(&a, vec![vec![20; 4], vec![5]])).unwrap();
    let s = s.compute().unwrap();
    for (got, want) in s.iter().zip(sv) {
        assert!((got - want).abs() < 1e-14, "{got} vs {want}");
    }
}
