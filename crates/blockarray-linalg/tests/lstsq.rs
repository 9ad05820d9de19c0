//! lstsq against faer's least squares and the normal equations; residuals, rank, singular
//! values as dask returns them.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_linalg::lstsq;
use common::*;
use faer::linalg::solvers::SolveLstsq;
use ndarray::{Array1, Array2};
use num_complex::Complex;
use proptest::prelude::*;

fn check<T: TestScalar>(
    a: &Array2<T>,
    b: &Array2<T>,
    chunks: Vec<Vec<usize>>,
    bcols: Vec<usize>,
    threaded: bool,
) {
    let (m, n) = a.dim();
    let k = b.ncols();
    let fit = lstsq(
        &chunked(a, chunks.clone()),
        &chunked(b, vec![chunks[0].clone(), bcols]),
    )
    .unwrap();
    let s = scheduler(threaded);
    let x = two(fit.x.compute_with(&*s).unwrap());
    assert_eq!(x.dim(), (n, k));
    let res: Vec<f64> = fit
        .residuals
        .compute_with(&*s)
        .unwrap()
        .iter()
        .map(|&v| blockarray::Float::as_f64(v))
        .collect();
    let sv: Vec<f64> = fit
        .s
        .compute_with(&*s)
        .unwrap()
        .iter()
        .map(|&v| blockarray::Float::as_f64(v))
        .collect();
    let rank = fit.rank.compute_with(&*s).unwrap();
    assert_eq!(rank.ndim(), 0);
    let tol = T::tol() * (m + n + 1) as f64 * 10.0;
    // Against faer's least-squares solution (m ≥ n) or the minimum-norm one (m < n, via aᴴ).
    let fa = faer::Mat::<Complex<f64>>::from_fn(m, n, |i, j| a[[i, j]].c64());
    let fb = faer::Mat::<Complex<f64>>::from_fn(m, k, |i, j| b[[i, j]].c64());
    let expected = if m >= n {
        fa.qr().solve_lstsq(&fb)
    } else {
        let pinv = fa.thin_svd().expect("svd").pseudoinverse();
        &pinv * &fb
    };
    let xs = scale(&x);
    for i in 0..n {
        for j in 0..k {
            assert!(
                (x[[i, j]].c64() - expected[(i, j)]).norm() < tol * xs,
                "x[{i}, {j}] = {} vs {}",
                x[[i, j]].c64(),
                expected[(i, j)]
            );
        }
    }
    let r = &c(b) - &matmul(a, &x);
    assert_eq!(res.len(), k);
    for (j, got) in res.iter().enumerate() {
        let want: f64 = r.column(j).iter().map(|v| v.norm_sqr()).sum();
        assert!(
            (got - want).abs() < tol * (1.0 + want),
            "residual {j}: {got} vs {want}"
        );
    }
    let fs = fa.singular_values().unwrap();
    for (x, y) in sv.iter().zip(&fs) {
        assert!((x - y).abs() < tol * fs[0].max(1.0));
    }
    assert_eq!(rank[[]], m.min(n) as i64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn lstsq_any_chunking(
        (m, n, k, rows, cols, bcols) in (1usize..40, 1usize..12, 1usize..4).prop_flat_map(|(m, n, k)| (Just(m), Just(n), Just(k), axis_chunks(m, 0.2), axis_chunks(n, 0.3), axis_chunks(k, 0.5))),
        seed in any::<u64>(),
        threaded in any::<bool>(),
    ) {
        check(&random::<f64>(seed, m, n), &random::<f64>(seed ^ 5, m, k), vec![rows, cols], bcols, threaded);
    }
}

#[test]
fn complex_f32_and_vectors() {
    check(
        &random::<Complex<f64>>(1, 30, 5),
        &random::<Complex<f64>>(2, 30, 2),
        vec![vec![10, 20], vec![5]],
        vec![2],
        true,
    );
    check(
        &random::<f32>(3, 25, 4),
        &random::<f32>(4, 25, 1),
        vec![vec![12, 13], vec![2, 2]],
        vec![1],
        false,
    );
    // A vector b: x is a vector, residuals have shape (1,) as in dask.
    let a = random::<f64>(5, 20, 3);
    let b: Array1<f64> = random::<f64>(6, 20, 1).column(0).to_owned();
    let fit = lstsq(
        &chunked(&a, vec![vec![10, 10], vec![3]]),
        &BlockArray::from_array(b, 10).unwrap(),
    )
    .unwrap();
    assert_eq!(fit.x.shape(), &[3]);
    assert_eq!(fit.residuals.shape(), &[1]);
    assert_eq!(fit.s.shape(), &[3]);
    assert_eq!(fit.rank.shape(), &[] as &[usize]);
}

#[test]
fn underdetermined_minimum_norm() {
    check(
        &random::<f64>(7, 4, 9),
        &random::<f64>(8, 4, 2),
        vec![vec![4], vec![3, 6]],
        vec![2],
        true,
    );
}

#[test]
fn rank_deficient_rank_and_singular_values() {
    let a = random::<f64>(1, 30, 2).dot(&random::<f64>(2, 2, 4));
    let b = BlockArray::<f64>::ones(&[30], 10).unwrap();
    let fit = lstsq(&chunked(&a, vec![vec![10; 3], vec![4]]), &b).unwrap();
    assert_eq!(fit.rank.compute().unwrap()[[]], 2);
    let s = fit.s.compute().unwrap();
    assert!(s[[2]] < 1e-12 * s[[0]] && s[[3]] < 1e-12 * s[[0]]);
    // x is NumPy's minimum-norm solution: a's pseudo-inverse times b (R's pivots the size of
    // rounding errors are dropped, not inverted).
    let x = fit.x.compute().unwrap();
    let pinv = faer_pinv(&a);
    let want = pinv.dot(&Array1::<f64>::ones(30));
    assert!(
        x.iter().zip(&want).all(|(g, w)| (g - w).abs() < 1e-9),
        "{x} vs {want}"
    );
}

/// The pseudo-inverse of `a` from faer's SVD, dropping singular values at most
/// `max(s) · max(M, N) · ε`.
fn faer_pinv(a: &ndarray::Array2<f64>) -> ndarray::Array2<f64> {
    let (m, n) = a.dim();
    let fa = faer::Mat::<f64>::from_fn(m, n, |i, j| a[[i, j]]);
    let svd = fa.thin_svd().unwrap();
    let s = svd.S().column_vector();
    let k = m.min(n);
    let smax = (0..k).map(|i| s[i]).fold(0.0, f64::max);
    let tol = smax * m.max(n) as f64 * f64::EPSILON;
    ndarray::Array2::from_shape_fn((n, m), |(i, j)| {
        (0..k)
            .filter(|&l| s[l] > tol)
            .map(|l| svd.V()[(i, l)] * svd.U()[(j, l)] / s[l])
            .sum()
    })
}

/// NumPy's answers for rank-deficient systems, tall and wide (`np.linalg.lstsq`).
#[test]
fn rank_deficient_systems_get_numpys_minimum_norm_solution() {
    let tall =
        BlockArray::from_array(ndarray::array![[1f64, 2.], [2., 4.], [3., 6.]], [2, 1]).unwrap();
    let b = BlockArray::from_array(ndarray::array![1f64, 0., 0.], 2).unwrap();
    let fit = lstsq(&tall, &b).unwrap();
    let x = fit.x.compute().unwrap();
    // np.linalg.lstsq: [1/70, 2/70], rank 1.
    assert!(
        (x[[0]] - 1.0 / 70.0).abs() < 1e-12 && (x[[1]] - 2.0 / 70.0).abs() < 1e-12,
        "{x}"
    );
    assert_eq!(fit.rank.compute().unwrap()[[]], 1);
    let wide =
        BlockArray::from_array(ndarray::array![[1f64, 2., 3.], [2., 4., 6.]], [1, 2]).unwrap();
    let b = BlockArray::from_array(ndarray::array![1f64, 2.], 1).unwrap();
    let fit = lstsq(&wide, &b).unwrap();
    let x = fit.x.compute().unwrap();
    // np.linalg.lstsq: [1, 2, 3] / 14, rank 1, b reached exactly.
    for (g, w) in x.iter().zip([1.0 / 14.0, 2.0 / 14.0, 3.0 / 14.0]) {
        assert!((g - w).abs() < 1e-12, "{x}");
    }
    assert_eq!(fit.rank.compute().unwrap()[[]], 1);
    assert!(fit.residuals.compute().unwrap()[[0]] < 1e-24);
}

#[test]
fn bad_shapes() {
    let a = BlockArray::<f64>::ones(&[10, 3], 5).unwrap();
    let b = BlockArray::<f64>::ones(&[9], 5).unwrap();
    let e = lstsq(&a, &b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape);
    assert!(
        e.to_string().contains("[9]") && e.to_string().contains("[10, 3]"),
        "{e}"
    );
    let v = BlockArray::<f64>::ones(&[10], 5).unwrap();
    assert!(lstsq(&v, &v).unwrap_err().to_string().contains("2-d"));
}

/// Empty systems are NumPy's: x = 0 of length N, rank 0, no singular values, and the
/// residuals |b|² down each column (0 with no rows); they had been errors.
#[test]
fn empty_systems() {
    let a = BlockArray::<f64>::zeros(&[0, 3], 2).unwrap();
    let b = BlockArray::<f64>::zeros(&[0], 1).unwrap();
    let fit = lstsq(&a, &b).unwrap();
    assert_eq!(
        fit.x.compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0; 3]
    );
    assert_eq!(fit.rank.compute().unwrap().into_iter().next(), Some(0));
    assert_eq!(fit.s.shape(), &[0]);
    let a = BlockArray::<f64>::zeros(&[3, 0], 2).unwrap();
    let b = BlockArray::<f64>::ones(&[3, 2], 2).unwrap();
    let fit = lstsq(&a, &b).unwrap();
    assert_eq!(fit.x.shape(), &[0, 2]);
    assert_eq!(
        fit.residuals.compute().unwrap().into_raw_vec_and_offset().0,
        vec![3.0, 3.0]
    );
}
