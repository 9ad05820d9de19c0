//! Inputs whose results cannot be represented are errors, never wrong values: integer ranges
//! near the type's limits, random integers outside the element type.

use blockarray::{BlockArray, ErrorKind, random::Rng};

#[test]
fn integer_aranges_near_the_type_limits_have_numpys_length_and_values() {
    // NumPy: np.arange(MAX - 10, MAX, 1) has 10 values (through f64 the bounds collapsed).
    let x = BlockArray::<i64>::arange(i64::MAX - 10, i64::MAX, 1, 4).unwrap();
    assert_eq!(x.shape(), &[10]);
    let v = x.compute().unwrap();
    assert_eq!(v[[0]], i64::MAX - 10);
    assert_eq!(v[[9]], i64::MAX - 1);
    // Near 2^53 an f64 bound loses its last bit: the length was off by one.
    let b = 1i64 << 53;
    let y = BlockArray::<i64>::arange(b - 2, b + 1, 1, 2).unwrap();
    assert_eq!(
        y.compute().unwrap().into_raw_vec_and_offset().0,
        vec![b - 2, b - 1, b]
    );
    // Negative steps, inexact divisions and empty ranges as NumPy.
    let len = |a, b, s| BlockArray::<i64>::arange(a, b, s, 3).unwrap().shape()[0];
    assert_eq!(len(10, 0, -3), 4); // 10, 7, 4, 1
    assert_eq!(len(0, 10, 3), 4); // 0, 3, 6, 9
    assert_eq!(len(0, 10, -1), 0);
    assert_eq!(len(i64::MIN, i64::MAX, i64::MAX), 3);
    let z = BlockArray::<i64>::arange(i64::MIN, i64::MAX, i64::MAX, 2).unwrap();
    assert_eq!(
        z.compute().unwrap().into_raw_vec_and_offset().0,
        vec![i64::MIN, -1, i64::MAX - 1]
    );
    let big = BlockArray::<u8>::arange(250, 255, 2, 2).unwrap();
    assert_eq!(
        big.compute().unwrap().into_raw_vec_and_offset().0,
        vec![250, 252, 254]
    );
}

#[test]
fn random_integers_outside_the_element_type_are_refused() {
    let rng = Rng::new(3);
    let e = rng.integers::<i32>(0, 1 << 40, &[10], 5).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("int32") && e.to_string().contains("1099511627776"),
        "{e}"
    );
    assert!(rng.integers::<u8>(-1, 10, &[10], 5).is_err());
    assert!(rng.integers::<u8>(0, 257, &[10], 5).is_err());
    // The whole range of the type is fine, and its values stay inside it.
    let v = rng
        .integers::<u8>(0, 256, &[1000], 100)
        .unwrap()
        .compute()
        .unwrap();
    assert!(v.iter().any(|&x| x > 200));
    let w = rng
        .integers::<i32>(-5, 5, &[1000], 100)
        .unwrap()
        .compute()
        .unwrap();
    assert!(w.iter().all(|&x| (-5..5).contains(&x)) && w.iter().any(|&x| x < 0));
}
