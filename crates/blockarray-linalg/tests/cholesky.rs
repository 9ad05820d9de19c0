//! Cholesky: L·Lᴴ = A, triangularity, agreement with faer, errors naming the block.

mod common;

use blockarray::ErrorKind;
use blockarray_linalg::{Tri, cholesky};
use common::*;
use ndarray::Array2;
use num_complex::Complex;
use proptest::prelude::*;

fn check<T: TestScalar>(a: &Array2<T>, chunks: Vec<Vec<usize>>, tri: Tri, threaded: bool) {
    let x = chunked(a, chunks);
    let f = two(cholesky(&x, tri)
        .unwrap()
        .compute_with(&*scheduler(threaded))
        .unwrap());
    let n = a.nrows();
    let s = scale(a);
    let (rebuilt, lower) = match tri {
        Tri::Lower => (matmul(&f, &f.t().mapv(|v| v.conjugate())), true),
        Tri::Upper => (matmul(&f.t().mapv(|v| v.conjugate()), &f), false),
    };
    let err = max_diff(&rebuilt, &c(a)) / s;
    assert!(
        err < T::tol() * (n + 1) as f64,
        "L·Lᴴ differs from A by {err}"
    );
    assert!(is_triangular(&f, !lower), "not triangular: {f:?}");
    // Against faer's factor (unique: positive diagonal).
    if n > 0 {
        let fa = faer::Mat::<Complex<f64>>::from_fn(n, n, |i, j| a[[i, j]].c64());
        let l = fa.llt(faer::Side::Lower).expect("SPD").L().to_owned();
        for i in 0..n {
            for j in 0..=i {
                let ours = if lower {
                    f[[i, j]].c64()
                } else {
                    f[[j, i]].c64().conj()
                };
                assert!(
                    (ours - l[(i, j)]).norm() < T::tol() * 10.0 * s.sqrt(),
                    "L[{i}, {j}]: {ours} vs faer {}",
                    l[(i, j)]
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn cholesky_any_chunking(
        (n, rows, cols) in (1usize..40).prop_flat_map(|n| (Just(n), axis_chunks(n, 0.2), axis_chunks(n, 0.2))),
        seed in any::<u64>(),
        upper in any::<bool>(),
        threaded in any::<bool>(),
    ) {
        let tri = if upper { Tri::Upper } else { Tri::Lower };
        check(&hpd::<f64>(seed, n), vec![rows.clone(), cols.clone()], tri, threaded);
        check(&hpd::<f32>(seed, n), vec![rows.clone(), rows.clone()], tri, !threaded);
        check(&hpd::<Complex<f64>>(seed, n), vec![cols.clone(), cols], tri, threaded);
    }
}

#[test]
fn complex_f32_and_one_by_one() {
    check(
        &hpd::<Complex<f32>>(3, 17),
        vec![vec![5, 12], vec![9, 8]],
        Tri::Lower,
        true,
    );
    check(
        &Array2::from_elem((1, 1), 4.0f64),
        vec![vec![1], vec![1]],
        Tri::Upper,
        false,
    );
    let l = cholesky(
        &chunked(&Array2::<f64>::zeros((0, 0)), vec![vec![0], vec![0]]),
        Tri::Lower,
    )
    .unwrap();
    assert_eq!(l.shape(), &[0, 0]);
    assert_eq!(l.compute().unwrap().len(), 0);
}

#[test]
fn reads_only_the_lower_triangle() {
    let mut a = hpd::<f64>(5, 12);
    let expected = two(
        cholesky(&chunked(&a, vec![vec![4; 3], vec![4; 3]]), Tri::Lower)
            .unwrap()
            .compute()
            .unwrap(),
    );
    for i in 0..12 {
        for j in i + 1..12 {
            a[[i, j]] = f64::NAN;
        }
    }
    let got = two(
        cholesky(&chunked(&a, vec![vec![4; 3], vec![4; 3]]), Tri::Lower)
            .unwrap()
            .compute()
            .unwrap(),
    );
    assert_eq!(got, expected);
}

#[test]
fn ill_conditioned() {
    // Diagonal scaled over 10 orders of magnitude: still SPD, factor accurate relative to A.
    let n = 20;
    let b = hpd::<f64>(2, n);
    let d: Vec<f64> = (0..n).map(|i| 10f64.powf(-(i as f64) / 2.0)).collect();
    let a = Array2::from_shape_fn((n, n), |(i, j)| d[i] * b[[i, j]] * d[j]);
    let l = two(
        cholesky(&chunked(&a, vec![vec![7, 7, 6], vec![7, 7, 6]]), Tri::Lower)
            .unwrap()
            .compute()
            .unwrap(),
    );
    let err = max_diff(&matmul(&l, &l.t().to_owned()), &c(&a));
    assert!(err < 1e-12 * scale(&a), "{err}");
}

#[test]
fn not_positive_definite_names_the_block() {
    let mut a = hpd::<f64>(1, 12);
    // Make the leading minor of order 7 (row 6, in block 1 of rows 4..8) indefinite.
    a[[6, 6]] = -1000.0;
    let x = chunked(&a, vec![vec![4; 3], vec![4; 3]]);
    let l = cholesky(&x, Tri::Lower).unwrap();
    for s in schedulers() {
        let e = l.compute_with(&*s).unwrap_err().to_string();
        assert!(
            e.contains("not positive definite")
                && e.contains("order 7")
                && e.contains("diagonal block (1, 1)")
                && e.contains("rows 4..8"),
            "{e}"
        );
    }
}

/// NaN in the matrix fails faer's pivot test too: the error names it, not positive
/// definiteness.
#[test]
fn nan_is_named_not_finite() {
    let mut a = hpd::<f64>(2, 12);
    a[[9, 2]] = f64::NAN;
    let x = chunked(&a, vec![vec![4; 3], vec![4; 3]]);
    let l = cholesky(&x, Tri::Lower).unwrap();
    for s in schedulers() {
        let e = l.compute_with(&*s).unwrap_err().to_string();
        assert!(
            e.contains("not finite") && e.contains("diagonal block (2, 2)"),
            "{e}"
        );
    }
}

#[test]
fn bad_inputs() {
    let v = blockarray::BlockArray::<f64>::ones(&[4, 5], 2).unwrap();
    let e = cholesky(&v, Tri::Lower).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("square") && e.to_string().contains("[4, 5]"),
        "{e}"
    );
    let w = blockarray::BlockArray::<f64>::ones(&[4], 2).unwrap();
    assert!(
        cholesky(&w, Tri::Lower)
            .unwrap_err()
            .to_string()
            .contains("2-d")
    );
    // 2000 blocks along a side: about 1.3 billion tasks, refused when built (the steps'
    // bookkeeping alone, p³/6 chunk entries, ran out of memory first).
    let big = blockarray::BlockArray::<f64>::eye(100_000, None, 0, 50).unwrap();
    let e = cholesky(&big, Tri::Lower).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
    assert!(e.to_string().contains("2000 blocks along a side"), "{e}");
}

#[test]
fn keys_depend_on_the_triangle() {
    let x = chunked(&hpd::<f64>(1, 8), vec![vec![4, 4], vec![4, 4]]);
    let (l, u) = (
        cholesky(&x, Tri::Lower).unwrap(),
        cholesky(&x, Tri::Upper).unwrap(),
    );
    assert_ne!(l.name(), u.name());
    assert_eq!(l.name(), cholesky(&x, Tri::Lower).unwrap().name());
}

#[test]
fn task_counts_match_the_documented_costs() {
    // p = 5 diagonal blocks: p potrf, p(p−1)/2 trsm, p(p−1)(p+1)/6 updates.
    let x = chunked(&hpd::<f64>(1, 50), vec![vec![10; 5], vec![10; 5]]);
    let (graph, _) = cholesky(&x, Tri::Lower).unwrap().lowered(None).unwrap();
    let count = |prefix: &str| {
        graph
            .keys()
            .iter()
            .filter(|k| k.name().starts_with(prefix))
            .count()
    };
    assert_eq!(count("cholesky-potrf-"), 5);
    assert_eq!(count("cholesky-trsm-"), 10);
    assert_eq!(count("cholesky-update-"), 20);
}

/// Of the diagonal only the real parts are read, and L's diagonal is real, as LAPACK's `potrf`
/// (NumPy 2.4: `cholesky([[4+1j, 0], [1+1j, 5+2j]])` is `[[2, 0], [0.5+0.5j, 2.1213…]]`),
/// whatever the chunks (an imaginary part there had entered L and changed with the chunking).
#[test]
fn the_diagonal_is_read_and_made_real() {
    let z = Complex::new;
    let a = ndarray::array![[z(4.0, 1.0), z(0.0, 0.0)], [z(1.0, 1.0), z(5.0, 2.0)]];
    let want = [z(2.0, 0.0), z(0.0, 0.0), z(0.5, 0.5), z(4.5f64.sqrt(), 0.0)];
    for chunks in [vec![vec![2], vec![2]], vec![vec![1, 1], vec![1, 1]]] {
        let l = cholesky(&chunked(&a, chunks.clone()), Tri::Lower)
            .unwrap()
            .compute()
            .unwrap();
        for (got, w) in l.iter().zip(&want) {
            assert!((got - w).norm() < 1e-12, "chunks {chunks:?}: {l}");
            assert_eq!(w.im == 0.0, got.im == 0.0, "chunks {chunks:?}: {l}");
        }
    }
}
