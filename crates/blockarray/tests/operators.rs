//! Operators with NumPy's semantics, against in-memory references over random shapes, random
//! chunkings and both schedulers: promotion between element types, true division of integers,
//! a scalar on the left, the bitwise operators and shifts, and the division family.

use blockarray::{BlockArray, ErrorKind};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

mod common;
use common::scheduler;

/// A shape (up to 3-d), a chunking of it, and data in -50..50.
fn case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<i64>, Vec<i64>, bool)> {
    proptest::collection::vec(1usize..6, 1..=3).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        let chunks = shape.iter().map(|&d| 1..=d).collect::<Vec<_>>();
        (
            Just(shape),
            chunks,
            proptest::collection::vec(-50i64..50, n),
            proptest::collection::vec(-50i64..50, n),
            any::<bool>(),
        )
    })
}

fn nd<T: Clone>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mixed_types_promote_as_numpy((shape, chunks, a, b, thr) in case()) {
        let s = scheduler(thr);
        let ai: Vec<i32> = a.iter().map(|&v| v as i32).collect();
        let bf: Vec<f64> = b.iter().map(|&v| v as f64 / 4.0).collect();
        let bu: Vec<u8> = b.iter().map(|&v| v.unsigned_abs() as u8).collect();
        let x = BlockArray::from_array(nd(&shape, ai.clone()), chunks.clone()).unwrap();
        let y = BlockArray::from_array(nd(&shape, bf.clone()), chunks.clone()).unwrap();
        let u = BlockArray::from_array(nd(&shape, bu.clone()), shape.clone()).unwrap();
        // int32 + float64 → float64; int32 * uint8 → int32; int32 / int32 → float64.
        let sum: ArrayD<f64> = (&x + &y).unwrap().compute_with(&*s).unwrap();
        let want: Vec<f64> = ai.iter().zip(&bf).map(|(&p, &q)| f64::from(p) + q).collect();
        prop_assert_eq!(sum, nd(&shape, want));
        let prod: ArrayD<i32> = (&x * &u).unwrap().compute_with(&*s).unwrap();
        let want: Vec<i32> = ai.iter().zip(&bu).map(|(&p, &q)| p * i32::from(q)).collect();
        prop_assert_eq!(prod, nd(&shape, want));
        let quot: ArrayD<f64> = (&x / &x.astype::<i64>()).unwrap().compute_with(&*s).unwrap();
        let want: Vec<f64> = ai.iter().map(|&p| f64::from(p) / f64::from(p)).collect();
        let same = quot.iter().zip(&want).all(|(g, w)| g == w || (g.is_nan() && w.is_nan()));
        prop_assert!(same);
        // A scalar on the left, and integer division by a scalar into floats.
        let left: ArrayD<f64> = (2.5 - &y).compute_with(&*s).unwrap();
        prop_assert_eq!(left, nd(&shape, bf.iter().map(|&q| 2.5 - q).collect()));
        let halves: ArrayD<f64> = (&x / 2).compute_with(&*s).unwrap();
        prop_assert_eq!(halves, nd(&shape, ai.iter().map(|&p| f64::from(p) / 2.0).collect()));
        let rem: ArrayD<i32> = (7 % &x.clip(1, 50).unwrap()).compute_with(&*s).unwrap();
        prop_assert_eq!(rem, nd(&shape, ai.iter().map(|&p| 7 % p.clamp(1, 50)).collect()));
    }

    #[test]
    fn bitwise_and_division_family((shape, chunks, a, b, thr) in case()) {
        let s = scheduler(thr);
        let x = BlockArray::from_array(nd(&shape, a.clone()), chunks.clone()).unwrap();
        let y = BlockArray::from_array(nd(&shape, b.clone()), shape.clone()).unwrap();
        type Reference = Box<dyn Fn(i64, i64) -> i64>;
        let ops: [(ArrayD<i64>, Reference); 5] = [
            ((&x & &y).unwrap().compute_with(&*s).unwrap(), Box::new(|p, q| p & q)),
            ((&x | &y).unwrap().compute_with(&*s).unwrap(), Box::new(|p, q| p | q)),
            ((&x ^ &y).unwrap().compute_with(&*s).unwrap(), Box::new(|p, q| p ^ q)),
            ((&x << &y.abs()).unwrap().compute_with(&*s).unwrap(), Box::new(|p, q| p << q.abs())),
            ((&x >> 3).compute_with(&*s).unwrap(), Box::new(|p, _| p >> 3)),
        ];
        for (got, f) in ops {
            let want: Vec<i64> = a.iter().zip(&b).map(|(&p, &q)| f(p, q)).collect();
            prop_assert_eq!(got, nd(&shape, want));
        }
        let inv: ArrayD<i64> = (!&x).compute_with(&*s).unwrap();
        prop_assert_eq!(inv, nd(&shape, a.iter().map(|&p| !p).collect()));
        // Floor division and remainder by a divisor without zeros: q·d + r == a, r with the
        // divisor's sign.
        let m = &y.abs() + 1;
        let d = blockarray::where_(&y.less(0).unwrap(), &-&m, &m).unwrap();
        let (q, r) = x.divmod(&d).unwrap();
        let (q, r, d) = (q.compute_with(&*s).unwrap(), r.compute_with(&*s).unwrap(), d.compute_with(&*s).unwrap());
        for (i, &ai) in a.iter().enumerate() {
            let (qi, ri, di) = (q.as_slice().unwrap()[i], r.as_slice().unwrap()[i], d.as_slice().unwrap()[i]);
            prop_assert_eq!(qi * di + ri, ai);
            prop_assert!(ri == 0 || (ri < 0) == (di < 0));
            prop_assert_eq!(qi, (ai as f64 / di as f64).floor() as i64);
        }
        let p = x.clip(-3, 3).unwrap().pow(&y.abs().clip(0, 5).unwrap()).unwrap().compute_with(&*s).unwrap();
        let want: Vec<i64> = a.iter().zip(&b).map(|(&p, &q)| p.clamp(-3, 3).pow(q.unsigned_abs().min(5) as u32)).collect();
        prop_assert_eq!(p, nd(&shape, want));
    }
}

#[test]
fn integer_errors_name_the_task() {
    let x = BlockArray::<i64>::ones(&[4], 2).unwrap();
    for (e, op) in [
        (
            x.floor_divide(0).unwrap().compute().unwrap_err(),
            "floor_divide-",
        ),
        ((&x % 0).compute().unwrap_err(), "mod-"),
        (x.fmod(0).unwrap().compute().unwrap_err(), "fmod-"),
        (x.pow(-1).unwrap().compute().unwrap_err(), "power-"),
    ] {
        assert_eq!(e.kind(), ErrorKind::Graph);
        assert!(e.to_string().contains(op), "{e}");
    }
    // Shapes that do not broadcast: an Err at build time naming both.
    let y = BlockArray::<i32>::ones(&[3], 2).unwrap();
    let e = (&x & &y.astype::<i64>()).unwrap_err();
    assert!(e.to_string().contains("(4,) and (3,)"), "{e}");
    let e = (&x + &BlockArray::<f32>::ones(&[3], 2).unwrap()).unwrap_err();
    assert!(e.to_string().contains("(4,) and (3,)"), "{e}");
}

#[test]
fn allclose_is_lazy_and_keys_hold_tolerances() {
    let x = BlockArray::<f64>::linspace(0.0, 1.0, 11, true, 4).unwrap();
    let y = &x + 1e-6;
    let loose = x.allclose(&y, 0.0, 1e-5, false).unwrap();
    let tight = x.allclose(&y, 0.0, 1e-7, false).unwrap();
    assert_ne!(loose.name(), tight.name());
    assert!(loose.compute().unwrap()[[]]);
    assert!(!tight.compute().unwrap()[[]]);
    assert!(x.isclose(&y, -1.0, 0.0, false).is_err());
}

/// Complex arrays divide and take `exp`, `tanh`, `log` and `sqrt` as NumPy does where the
/// textbook formulas lose the answer (values from NumPy 2.4.6).
#[test]
fn complex_division_and_functions_at_the_edges() {
    use num_complex::Complex;
    let c = Complex::new;
    let arr = |v: Vec<Complex<f64>>| BlockArray::from_array(nd(&[v.len()], v), 2).unwrap();
    let q = (&arr(vec![c(1e-200, 1e-200), c(1.0, 1.0)])
        / &arr(vec![c(1e-200, 1e-200), c(1e200, 1e200)]))
        .unwrap()
        .compute()
        .unwrap();
    assert_eq!(
        q.into_raw_vec_and_offset().0,
        vec![c(1.0, 0.0), c(1e-200, 0.0)]
    );
    let z = arr(vec![
        c(710.0, 0.0),
        c(400.0, 0.0),
        c(1.0, 1e-10),
        c(-1.0, 1e-20),
    ]);
    let e = z.exp().compute().unwrap();
    assert_eq!((e[[0]], e[[1]].im), (c(f64::INFINITY, 0.0), 0.0));
    let t = z.tanh().compute().unwrap();
    assert_eq!((t[[0]], t[[1]]), (c(1.0, 0.0), c(1.0, 0.0)));
    let l = z.log().compute().unwrap();
    assert!((l[[2]].re / 5e-21 - 1.0).abs() < 1e-12, "{}", l[[2]]);
    let s = z.sqrt().compute().unwrap();
    assert!((s[[3]].re / 5e-21 - 1.0).abs() < 1e-12, "{}", s[[3]]);
    assert_eq!(s[[3]].im, 1.0);
}

/// `powi` is NumPy's `power(x, n)` (`pow`), `rad2deg` multiplies by NumPy's constant rounded in
/// the element type, and `isclose` compares in the element type with its tolerances rounded
/// to it (values from NumPy 2.4.6).
#[test]
fn powers_degrees_and_closeness_in_the_element_type() {
    let one = |v: f64| BlockArray::from_array(nd(&[1], vec![v]), 1).unwrap();
    let one32 = |v: f32| BlockArray::from_array(nd(&[1], vec![v]), 1).unwrap();
    // 2^-1030 is a subnormal; 1/2^1030 underflowed to 0.
    assert_eq!(
        one(2.0).powi(-1030).compute().unwrap()[[0]],
        2f64.powi(-1000) * 2f64.powi(-30)
    );
    assert_eq!(
        one32(1.0001).powi(10000).compute().unwrap()[[0]],
        2.718597f32
    );
    assert_eq!(one32(1.0).rad2deg().compute().unwrap()[[0]], 57.295776f32);
    let x = one32(f32::from_bits(0xc474_234f));
    let y = one32(f32::from_bits(0xc474_23ef));
    assert!(x.isclose(&y, 1e-5, 1e-8, false).unwrap().compute().unwrap()[[0]]);
}
