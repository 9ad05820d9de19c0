//! norm against NumPy's definitions computed on the in-memory array.

mod common;

use blockarray::{BlockArray, ErrorKind};
use blockarray_linalg::{NormOrd, norm};
use common::*;
use ndarray::{ArrayD, Axis, IxDyn};
use num_complex::Complex;
use proptest::prelude::*;

/// NumPy's vector norm of `v`.
fn vnorm(v: &[f64], ord: NormOrd) -> f64 {
    match ord {
        NormOrd::Default | NormOrd::P(2.0) => v.iter().map(|x| x * x).sum::<f64>().sqrt(),
        NormOrd::Inf => v.iter().fold(0.0, |m, &x| m.max(x)),
        NormOrd::NegInf => v.iter().fold(f64::INFINITY, |m, &x| m.min(x)),
        NormOrd::P(0.0) => v.iter().filter(|&&x| x != 0.0).count() as f64,
        NormOrd::P(1.0) => v.iter().sum(),
        NormOrd::P(p) => v.iter().map(|x| x.powf(p)).sum::<f64>().powf(1.0 / p),
        _ => unreachable!(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-10 * (1.0 + b.abs()) || (a.is_infinite() && a == b)
}

fn abs_of(x: &ArrayD<Complex<f64>>) -> ArrayD<f64> {
    x.mapv(|v| v.norm())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn vector_norms_along_an_axis(
        (shape, chunks) in proptest::collection::vec(1usize..7, 1..4).prop_flat_map(|s| {
            let ch: Vec<_> = s.iter().map(|&n| axis_chunks(n, 0.4)).collect();
            (Just(s), ch)
        }),
        axis_pick in any::<usize>(),
        ord_pick in 0usize..7,
        keepdims in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let ords = [NormOrd::Default, NormOrd::Inf, NormOrd::NegInf, NormOrd::P(0.0), NormOrd::P(1.0), NormOrd::P(2.0), NormOrd::P(3.5)];
        let ord = ords[ord_pick];
        let axis = axis_pick % shape.len();
        let n: usize = shape.iter().product();
        let data: Vec<Complex<f64>> = (0..n).map(|i| <Complex<f64> as TestScalar>::sample(seed, i as u64)).collect();
        let mut x = ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap();
        x.iter_mut().step_by(3).for_each(|v| *v = Complex::new(0.0, 0.0));
        let arr = BlockArray::from_array(x.clone(), chunks).unwrap();
        let got = norm(&arr, ord, Some(&[axis]), keepdims).unwrap().compute().unwrap();
        let absx = abs_of(&x);
        let want = absx.map_axis(Axis(axis), |lane| vnorm(&lane.to_vec(), ord));
        let want = if keepdims { want.insert_axis(Axis(axis)) } else { want };
        prop_assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want.iter()) {
            prop_assert!(close(*g, *w), "{} vs {} ({:?})", g, w, ord);
        }
    }

    #[test]
    fn matrix_norms(
        (m, n, rows, cols) in (1usize..20, 1usize..20).prop_flat_map(|(m, n)| (Just(m), Just(n), axis_chunks(m, 0.3), axis_chunks(n, 0.3))),
        ord_pick in 0usize..9,
        swap in any::<bool>(),
        keepdims in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let ords = [NormOrd::Default, NormOrd::Fro, NormOrd::Nuc, NormOrd::Inf, NormOrd::NegInf, NormOrd::P(1.0), NormOrd::P(-1.0), NormOrd::P(2.0), NormOrd::P(-2.0)];
        let ord = ords[ord_pick];
        let a = random::<f64>(seed, m, n);
        let x = chunked(&a, vec![rows, cols]);
        let axes: [usize; 2] = if swap { [1, 0] } else { [0, 1] };
        let got = norm(&x, ord, Some(&axes), keepdims).unwrap().compute().unwrap();
        // NumPy: with axes (r, c), inf is the max over r of the sum over c; 1 the max over c of
        // the sum over r.
        let (r, cax) = (axes[0], axes[1]);
        let abs = a.mapv(f64::abs);
        let sums = |over: usize| abs.sum_axis(Axis(over)).to_vec();
        let sv = faer::Mat::<f64>::from_fn(m, n, |i, j| a[[i, j]]).singular_values().unwrap();
        let want = match ord {
            NormOrd::Default | NormOrd::Fro => a.iter().map(|v| v * v).sum::<f64>().sqrt(),
            NormOrd::Nuc => sv.iter().sum(),
            NormOrd::Inf => sums(cax).into_iter().fold(f64::MIN, f64::max),
            NormOrd::NegInf => sums(cax).into_iter().fold(f64::MAX, f64::min),
            NormOrd::P(1.0) => sums(r).into_iter().fold(f64::MIN, f64::max),
            NormOrd::P(-1.0) => sums(r).into_iter().fold(f64::MAX, f64::min),
            NormOrd::P(2.0) => sv[0],
            _ => *sv.last().unwrap(),
        };
        prop_assert_eq!(got.shape(), if keepdims { &[1, 1][..] } else { &[][..] });
        let g = *got.iter().next().unwrap();
        prop_assert!(close(g, want) || (g - want).abs() < 1e-9 * want.abs().max(1.0), "{} vs {} ({:?})", g, want, ord);
    }
}

#[test]
fn defaults_f32_and_batches() {
    // No axes, default ord: the 2-norm of everything, any number of axes.
    let x = BlockArray::<f32>::ones(&[4, 5, 6], [2, 3, 4]).unwrap();
    let n = norm(&x, NormOrd::Default, None, false)
        .unwrap()
        .compute()
        .unwrap();
    assert!((n[[]] - 120f32.sqrt()).abs() < 1e-5);
    let k = norm(&x, NormOrd::Default, None, true).unwrap();
    assert_eq!(k.shape(), &[1, 1, 1]);
    // A batch of matrices: Frobenius and inf over the last two axes.
    let fro = norm(&x, NormOrd::Fro, Some(&[1, 2]), false)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(fro.shape(), &[4]);
    assert!(fro.iter().all(|v| (v - 30f32.sqrt()).abs() < 1e-5));
    let inf = norm(&x, NormOrd::Inf, Some(&[2, 1]), true)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(inf.shape(), &[4, 1, 1]);
    assert!(inf.iter().all(|&v| v == 5.0));
    // A vector: default 2-norm, and with an explicit ord.
    let v = BlockArray::from_array(ndarray::array![3.0f64, -4.0], 1).unwrap();
    assert_eq!(
        norm(&v, NormOrd::P(1.0), None, false)
            .unwrap()
            .compute()
            .unwrap()[[]],
        7.0
    );
    assert_eq!(
        norm(&v, NormOrd::NegInf, None, false)
            .unwrap()
            .compute()
            .unwrap()[[]],
        3.0
    );
}

#[test]
fn the_zero_norm_counts_nan_as_non_zero() {
    // NumPy: norm([nan, 1, 0], 0) == 2 (it counts x != 0).
    let x = BlockArray::from_array(ndarray::arr1(&[f64::NAN, 1.0, 0.0, -0.0, -2.5]), 2).unwrap();
    let n = norm(&x, NormOrd::P(0.0), None, false)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(n.into_iter().next(), Some(3.0));
    let z = BlockArray::from_array(
        ndarray::arr1(&[Complex::new(f64::NAN, 0.0), Complex::new(0.0, 0.0)]),
        1,
    )
    .unwrap();
    let n = norm(&z, NormOrd::P(0.0), None, false)
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(n.into_iter().next(), Some(1.0));
}

/// Norms of empty arrays are NumPy 2.4's: the maxima start at 0 (ord 2, 'nuc', 1 and inf of an
/// empty matrix, the inf-norm of an empty vector, all 0), the minima have nothing to take
/// (an error, as NumPy's).
#[test]
fn norms_of_empty_arrays() {
    let value = |x: &BlockArray<f64>, ord: NormOrd| {
        norm(x, ord, None, false)
            .and_then(|n| n.compute())
            .map(|n| n.into_iter().next().unwrap())
    };
    let (wide, tall) = (
        BlockArray::<f64>::zeros(&[0, 3], 2).unwrap(),
        BlockArray::<f64>::zeros(&[3, 0], 2).unwrap(),
    );
    for m in [&wide, &tall] {
        for ord in [
            NormOrd::P(2.0),
            NormOrd::Nuc,
            NormOrd::P(1.0),
            NormOrd::Inf,
            NormOrd::Fro,
            NormOrd::Default,
        ] {
            assert_eq!(value(m, ord).unwrap(), 0.0, "{ord:?} of {:?}", m.shape());
        }
        assert!(value(m, NormOrd::P(-2.0)).is_err());
    }
    assert!(value(&tall, NormOrd::P(-1.0)).is_err());
    assert!(value(&wide, NormOrd::NegInf).is_err());
    let v = BlockArray::<f64>::zeros(&[0], 1).unwrap();
    for ord in [
        NormOrd::Inf,
        NormOrd::P(0.0),
        NormOrd::P(1.0),
        NormOrd::P(3.0),
        NormOrd::Default,
    ] {
        assert_eq!(value(&v, ord).unwrap(), 0.0, "{ord:?}");
    }
    assert!(value(&v, NormOrd::NegInf).is_err());
}

#[test]
fn bad_arguments() {
    let x = BlockArray::<f64>::ones(&[3, 4, 5], 2).unwrap();
    let m = BlockArray::<f64>::ones(&[3, 4], 2).unwrap();
    let cases = [
        (
            norm(&x, NormOrd::Inf, None, false).unwrap_err(),
            ErrorKind::Axis,
            "1-d or 2-d",
        ),
        (
            norm(&x, NormOrd::Default, Some(&[3]), false).unwrap_err(),
            ErrorKind::Axis,
            "axis 3",
        ),
        (
            norm(&x, NormOrd::Default, Some(&[1, 1]), false).unwrap_err(),
            ErrorKind::Axis,
            "repeated",
        ),
        (
            norm(&x, NormOrd::Default, Some(&[0, 1, 2]), false).unwrap_err(),
            ErrorKind::Axis,
            "got 3",
        ),
        (
            norm(&x, NormOrd::Nuc, Some(&[0]), false).unwrap_err(),
            ErrorKind::Unsupported,
            "matrix norm",
        ),
        (
            norm(&x, NormOrd::P(2.0), Some(&[0, 1]), false).unwrap_err(),
            ErrorKind::Unsupported,
            "2-d",
        ),
        (
            norm(&m, NormOrd::P(3.0), None, false).unwrap_err(),
            ErrorKind::Unsupported,
            "matrix ord 3",
        ),
    ];
    for (e, kind, text) in cases {
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(text), "{e} should mention {text}");
    }
}
