//! eigh: A·V = V·diag(W), orthonormal V, eigenvalues ascending and equal to faer's.

mod common;

use blockarray::ErrorKind;
use blockarray_linalg::eigh;
use common::*;
use ndarray::Array2;
use num_complex::Complex;
use proptest::prelude::*;

fn check<T: TestScalar>(a: &Array2<T>, chunks: Vec<Vec<usize>>, threaded: bool) {
    let n = a.nrows();
    let (w, v) = eigh(&chunked(a, chunks)).unwrap();
    let s = scheduler(threaded);
    let w: Vec<f64> = w
        .compute_with(&*s)
        .unwrap()
        .iter()
        .map(|&x| blockarray::Float::as_f64(x))
        .collect();
    let v = two(v.compute_with(&*s).unwrap());
    let tol = T::tol() * (n + 1) as f64 * scale(a);
    assert!(w.windows(2).all(|p| p[0] <= p[1]), "ascending: {w:?}");
    let av = matmul(a, &v);
    let vw = Array2::from_shape_fn((n, n), |(i, j)| v[[i, j]].c64() * w[j]);
    assert!(
        max_diff(&av, &vw) < tol,
        "A·V ≠ V·W by {}",
        max_diff(&av, &vw)
    );
    if n > 0 {
        assert!(orthogonality(&v) < tol);
        let fa = faer::Mat::<Complex<f64>>::from_fn(n, n, |i, j| a[[i, j]].c64());
        let fw = fa.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        for (x, y) in w.iter().zip(&fw) {
            assert!((x - y).abs() < tol, "{x} vs faer {y}");
        }
    }
}

fn hermitian<T: TestScalar>(seed: u64, n: usize) -> Array2<T> {
    let x = random::<T>(seed, n, n);
    Array2::from_shape_fn((n, n), |(i, j)| {
        T::from_c64((x[[i, j]].c64() + x[[j, i]].c64().conj()) / 2.0)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn eigh_any_chunking(
        (n, rows, cols) in (1usize..30).prop_flat_map(|n| (Just(n), axis_chunks(n, 0.2), axis_chunks(n, 0.3))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        check(&hermitian::<f64>(seed, n), vec![rows.clone(), cols.clone()], threaded);
        check(&hermitian::<Complex<f64>>(seed, n), vec![rows, cols], !threaded);
    }
}

#[test]
fn f32_empty_one_and_lower_triangle_only() {
    check(&hermitian::<f32>(1, 9), vec![vec![4, 5], vec![4, 5]], true);
    check(
        &Array2::from_elem((1, 1), 2.0f64),
        vec![vec![1], vec![1]],
        false,
    );
    let (w, v) = eigh(&chunked(
        &Array2::<f64>::zeros((0, 0)),
        vec![vec![0], vec![0]],
    ))
    .unwrap();
    assert_eq!((w.shape(), v.shape()), (&[0][..], &[0, 0][..]));
    // The upper triangle is not read.
    let a = hermitian::<f64>(2, 6);
    let mut garbage = a.clone();
    for i in 0..6 {
        for j in i + 1..6 {
            garbage[[i, j]] = 1e300;
        }
    }
    let w1 = eigh(&chunked(&a, vec![vec![3, 3], vec![3, 3]]))
        .unwrap()
        .0
        .compute()
        .unwrap();
    let w2 = eigh(&chunked(&garbage, vec![vec![3, 3], vec![3, 3]]))
        .unwrap()
        .0
        .compute()
        .unwrap();
    assert_eq!(w1, w2);
}

#[test]
fn the_imaginary_parts_of_the_diagonal_are_ignored() {
    // NumPy (LAPACK) takes the diagonal of a Hermitian matrix as real: [[2+i, ·], [1+i, 3-2i]]
    // is [[2, 1-i], [1+i, 3]], eigenvalues 1 and 4.
    let a = ndarray::array![
        [Complex::<f64>::new(2.0, 1.0), Complex::new(9.0, 9.0)],
        [Complex::new(1.0, 1.0), Complex::new(3.0, -2.0)]
    ];
    let (w, _) = eigh(&blockarray::BlockArray::from_array(a, [1, 1]).unwrap()).unwrap();
    let w = w.compute().unwrap();
    assert!(
        (w[[0]] - 1.0f64).abs() < 1e-12 && (w[[1]] - 4.0).abs() < 1e-12,
        "{w}"
    );
}

#[test]
fn too_large_or_not_square() {
    let big = blockarray::BlockArray::<f64>::zeros(&[20_000, 20_000], [5000, 5000]).unwrap();
    let e = eigh(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("20000 × 20000") && e.to_string().contains("1024 MiB"),
        "{e}"
    );
    let rect = blockarray::BlockArray::<f64>::zeros(&[3, 4], 2).unwrap();
    assert!(eigh(&rect).unwrap_err().to_string().contains("square"));
}
