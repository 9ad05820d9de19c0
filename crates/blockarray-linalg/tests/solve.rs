//! LU, solve, solve_triangular and inv: P·L·U = A, triangularity, residuals, agreement with
//! faer, singular matrices and bad shapes.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_linalg::{Tri, inv, lu, solve, solve_triangular, solve_triangular_with};
use common::*;
use ndarray::{Array1, Array2};
use num_complex::Complex;
use proptest::prelude::*;

fn check_lu<T: TestScalar>(a: &Array2<T>, chunks: Vec<Vec<usize>>, threaded: bool) {
    let n = a.nrows();
    let f = lu(&chunked(a, chunks)).unwrap();
    let perm_arr = f.perm.clone();
    let out = compute_all(&[&f.p, &f.l, &f.u], &*scheduler(threaded));
    let (p, l, u) = (
        two(out[0].clone()),
        two(out[1].clone()),
        two(out[2].clone()),
    );
    let perm: Vec<i64> = perm_arr
        .compute_with(&*scheduler(threaded))
        .unwrap()
        .iter()
        .copied()
        .collect();
    let tol = T::tol() * (n + 1) as f64 * scale(a);
    let plu = c(&p).dot(&matmul(&l, &u));
    assert!(
        max_diff(&plu, &c(a)) < tol,
        "P·L·U differs from A by {}",
        max_diff(&plu, &c(a))
    );
    assert!(is_triangular(&l, false) && is_triangular(&u, true));
    assert!(
        (0..n).all(|i| l[[i, i]].c64() == Complex::new(1.0, 0.0)),
        "L has a unit diagonal"
    );
    // |L| ≤ 1 (√2 for complex, where faer compares |re| + |im|): pivoting over the whole
    // column.
    let bound = if T::COMPLEX { 2f64.sqrt() } else { 1.0 };
    let lmax = l.iter().map(|x| x.c64().norm()).fold(0.0, f64::max);
    assert!(
        lmax <= bound + 1e-6,
        "partial pivoting bounds L, but max |L| = {lmax}: {l:?}"
    );
    // perm: a[perm] == L·U, and P is the matching permutation matrix.
    let mut seen = perm.clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..n as i64).collect::<Vec<_>>());
    let lu_ = matmul(&l, &u);
    for (i, &r) in perm.iter().enumerate() {
        for j in 0..n {
            assert!((lu_[[i, j]] - a[[r as usize, j]].c64()).norm() < tol);
        }
        assert_eq!(p[[r as usize, i]].c64(), Complex::new(1.0, 0.0));
    }
    // The same pivots as faer's LU of the whole matrix (both pick the largest pivot).
    if n > 0 {
        let fa = faer::Mat::<Complex<f64>>::from_fn(n, n, |i, j| a[[i, j]].c64());
        let flu = fa.partial_piv_lu();
        let fu = flu.U().to_owned();
        // (faer's U is not finite for exactly singular matrices: nothing to compare.)
        let finite = (0..n).all(|i| (0..n).all(|j| fu[(i, j)].norm().is_finite()));
        for i in (0..n).filter(|_| finite) {
            assert!(
                (u[[i, i]].c64().norm() - fu[(i, i)].norm()).abs() < tol,
                "U[{i}, {i}]"
            );
        }
    }
}

fn check_solve<T: TestScalar>(
    a: &Array2<T>,
    b: &Array2<T>,
    chunks: Vec<Vec<usize>>,
    bcols: Vec<usize>,
    threaded: bool,
) {
    let n = a.nrows();
    let x = solve(
        &chunked(a, chunks.clone()),
        &chunked(b, vec![chunks[0].clone(), bcols]),
    )
    .unwrap();
    let x = two(x.compute_with(&*scheduler(threaded)).unwrap());
    let res = max_diff(&matmul(a, &x), &c(b));
    assert!(
        res < T::tol() * (n + 1) as f64 * 10.0 * scale(a) * scale(&x),
        "residual {res}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn lu_any_chunking(
        (n, rows, cols) in (1usize..36).prop_flat_map(|n| (Just(n), axis_chunks(n, 0.2), axis_chunks(n, 0.2))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        check_lu(&random::<f64>(seed, n, n), vec![rows.clone(), cols.clone()], threaded);
        check_lu(&random::<Complex<f64>>(seed, n, n), vec![cols, rows], !threaded);
    }

    #[test]
    fn solve_any_chunking(
        (n, k, rows, cols, bcols) in (1usize..36, 1usize..6).prop_flat_map(|(n, k)| (Just(n), Just(k), axis_chunks(n, 0.2), axis_chunks(n, 0.2), axis_chunks(k, 0.5))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        // Diagonally weighted so that the random matrix is well conditioned.
        let mut a = random::<f64>(seed, n, n);
        for i in 0..n { a[[i, i]] += 3.0; }
        let b = random::<f64>(seed ^ 1, n, k);
        check_solve(&a, &b, vec![rows, cols], bcols, threaded);
    }

    #[test]
    fn triangular_any_chunking(
        (n, k, rows, brows, bcols) in (1usize..36, 1usize..5).prop_flat_map(|(n, k)| (Just(n), Just(k), axis_chunks(n, 0.2), axis_chunks(n, 0.3), axis_chunks(k, 0.5))),
        seed in any::<u64>(),
        lower in any::<bool>(),
        unit in any::<bool>(),
        threaded in any::<bool>(),
    ) {
        let tri = if lower { Tri::Lower } else { Tri::Upper };
        let mut a = random::<f64>(seed, n, n);
        for i in 0..n { a[[i, i]] += 2.0 * a[[i, i]].signum() + 0.5; }
        // The other triangle holds garbage that must not be read.
        let mut t = a.clone();
        let mut used = a.clone();
        for i in 0..n {
            for j in 0..n {
                let outside = if lower { j > i } else { j < i };
                if outside { t[[i, j]] = f64::NAN; used[[i, j]] = 0.0; }
                if unit && i == j { t[[i, j]] = f64::NAN; used[[i, j]] = 1.0; }
            }
        }
        let b = random::<f64>(seed ^ 2, n, k);
        let x = solve_triangular_with(&chunked(&t, vec![rows.clone(), rows]), &chunked(&b, vec![brows, bcols]), tri, unit).unwrap();
        let x = two(x.compute_with(&*scheduler(threaded)).unwrap());
        let res = (&used.dot(&x) - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        prop_assert!(res < 1e-9 * scale(&x), "residual {}", res);
    }
}

#[test]
fn vectors_complex_and_f32() {
    let mut a = random::<Complex<f64>>(3, 20, 20);
    for i in 0..20 {
        a[[i, i]] += Complex::new(4.0, 0.0);
    }
    let b = random::<Complex<f64>>(4, 20, 1);
    let bv: Array1<Complex<f64>> = b.column(0).to_owned();
    let x = solve(
        &chunked(&a, vec![vec![7, 13], vec![7, 13]]),
        &BlockArray::from_array(bv.clone(), vec![vec![5, 15]]).unwrap(),
    )
    .unwrap();
    assert_eq!(x.shape(), &[20]);
    let x: Array1<Complex<f64>> = x.compute().unwrap().into_dimensionality().unwrap();
    assert!((a.dot(&x) - &bv).iter().all(|v| v.norm() < 1e-10));
    check_lu(
        &random::<f32>(5, 17, 17),
        vec![vec![8, 9], vec![8, 9]],
        true,
    );
    let mut af = random::<f32>(6, 12, 12);
    for i in 0..12 {
        af[[i, i]] += 3.0;
    }
    check_solve(
        &af,
        &random::<f32>(7, 12, 2),
        vec![vec![5, 7], vec![5, 7]],
        vec![2],
        false,
    );
    let xt = solve_triangular(
        &chunked(&Array2::from_elem((1, 1), 4.0f64), vec![vec![1], vec![1]]),
        &BlockArray::from_array(ndarray::array![2.0], 1).unwrap(),
        Tri::Upper,
    )
    .unwrap();
    assert_eq!(xt.compute().unwrap().into_raw_vec_and_offset().0, vec![0.5]);
}

#[test]
fn inverse() {
    let mut a = random::<f64>(8, 25, 25);
    for i in 0..25 {
        a[[i, i]] += 3.0;
    }
    for s in schedulers() {
        let ai = two(inv(&chunked(&a, vec![vec![10, 15], vec![12, 13]]))
            .unwrap()
            .compute_with(&*s)
            .unwrap());
        let id = a.dot(&ai);
        assert!(
            id.indexed_iter()
                .all(|((i, j), v)| (v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12)
        );
    }
    let one = inv(&chunked(
        &Array2::from_elem((1, 1), 4.0f64),
        vec![vec![1], vec![1]],
    ))
    .unwrap();
    assert_eq!(
        one.compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.25]
    );
    let empty = inv(&chunked(
        &Array2::<f64>::zeros((0, 0)),
        vec![vec![0], vec![0]],
    ))
    .unwrap();
    assert_eq!(empty.shape(), &[0, 0]);
}

#[test]
fn singular_matrices_fail_naming_the_row() {
    // Rank 2 of 4: exact zero pivot after elimination.
    let a = ndarray::array![
        [1.0, 2.0, 3.0, 4.0],
        [2.0, 4.0, 6.0, 8.0],
        [1.0, 0.0, 1.0, 0.0],
        [2.0, 2.0, 4.0, 4.0]
    ];
    let x = chunked(&a, vec![vec![2, 2], vec![2, 2]]);
    let b = BlockArray::<f64>::ones(&[4], 2).unwrap();
    for s in schedulers() {
        let e = solve(&x, &b)
            .unwrap()
            .compute_with(&*s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("singular") && e.contains("row"), "{e}");
        let e = inv(&x).unwrap().compute_with(&*s).unwrap_err().to_string();
        assert!(e.contains("singular"), "{e}");
    }
    // lu itself succeeds: U has a zero on its diagonal.
    check_lu(&a, vec![vec![2, 2], vec![1, 3]], true);
    let z = Array2::<f64>::zeros((5, 5));
    check_lu(&z, vec![vec![2, 3], vec![2, 3]], false);
    let t = ndarray::array![[1.0, 0.0], [1.0, 0.0]];
    let e = solve_triangular(
        &chunked(&t, vec![vec![1, 1], vec![1, 1]]),
        &BlockArray::<f64>::ones(&[2], 1).unwrap(),
        Tri::Lower,
    )
    .unwrap()
    .compute()
    .unwrap_err()
    .to_string();
    assert!(e.contains("singular") && e.contains("row 1"), "{e}");
}

#[test]
fn bad_shapes() {
    let a = BlockArray::<f64>::ones(&[4, 4], 2).unwrap();
    let rect = BlockArray::<f64>::ones(&[4, 3], 2).unwrap();
    for e in [
        lu(&rect).unwrap_err(),
        solve(&rect, &a).unwrap_err(),
        inv(&rect).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(
            e.to_string().contains("square") && e.to_string().contains("[4, 3]"),
            "{e}"
        );
    }
    let b = BlockArray::<f64>::ones(&[5, 2], 2).unwrap();
    for e in [
        solve(&a, &b).unwrap_err(),
        solve_triangular(&a, &b, Tri::Lower).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Shape);
        assert!(
            e.to_string().contains("[5, 2]") && e.to_string().contains("[4, 4]"),
            "{e}"
        );
    }
    let b3 = BlockArray::<f64>::ones(&[4, 2, 2], 2).unwrap();
    assert!(
        solve(&a, &b3)
            .unwrap_err()
            .to_string()
            .contains("[4, 2, 2]")
    );
    // 2000 blocks along a side: billions of tasks, refused when built.
    let big = BlockArray::<f64>::eye(100_000, None, 0, 50).unwrap();
    let rhs = BlockArray::<f64>::ones(&[100_000, 4000], 50).unwrap();
    for e in [
        lu(&big).unwrap_err(),
        inv(&big).unwrap_err(),
        solve_triangular(&big, &rhs, Tri::Lower).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Memory, "{e}");
        assert!(e.to_string().contains("2000 blocks along a side"), "{e}");
    }
}

#[test]
fn keys_depend_on_triangle_and_unit_diagonal() {
    let a = BlockArray::<f64>::ones(&[6, 6], 3).unwrap();
    let b = BlockArray::<f64>::ones(&[6, 2], 3).unwrap();
    let names: Vec<String> = [
        (Tri::Lower, false),
        (Tri::Lower, true),
        (Tri::Upper, false),
        (Tri::Upper, true),
    ]
    .iter()
    .map(|&(t, u)| {
        solve_triangular_with(&a, &b, t, u)
            .unwrap()
            .name()
            .to_string()
    })
    .collect();
    for i in 0..names.len() {
        for j in i + 1..names.len() {
            assert_ne!(names[i], names[j]);
        }
    }
    assert_eq!(
        names[0],
        solve_triangular(&a, &b, Tri::Lower).unwrap().name()
    );
}

#[test]
fn ill_conditioned_system_backward_stable() {
    // A Hilbert matrix of order 10 (condition number 1.6e13): the residual stays at rounding
    // level even though x itself is inaccurate.
    let n = 10;
    let a = Array2::from_shape_fn((n, n), |(i, j)| 1.0 / (i + j + 1) as f64);
    let b = Array2::from_shape_fn((n, 1), |(i, _)| (i as f64).sin());
    let x = two(solve(
        &chunked(&a, vec![vec![3, 3, 4], vec![3, 3, 4]]),
        &chunked(&b, vec![vec![3, 3, 4], vec![1]]),
    )
    .unwrap()
    .compute()
    .unwrap());
    let r = (&a.dot(&x) - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let xn = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(r < 1e-14 * xn * n as f64, "residual {r} for |x| {xn}");
}
