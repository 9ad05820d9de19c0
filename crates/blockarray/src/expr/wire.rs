//! Blocks on the wire: the encoders that let blocks (and reduction partials) travel between
//! the processes of a distributed run, registered with [`dag_core::wire`].
//!
//! A block is encoded as its shape and its elements' bytes in C order, copied as one run
//! (no per-element encoding), preceded by a byte-order mark: a process of another byte order
//! refuses it with an error instead of reading swapped numbers. Decoding copies the bytes
//! into a new array once; `bool` bytes are checked to be 0 or 1.
//!
//! [`register`] runs once per process, from lowering, so every graph blockarray builds can
//! travel: blocks of every element type, the moments partials of `mean`/`var`/`std` and the
//! partials of arg-reductions. A user's own [`Reduction`](crate::Reduction) partial type
//! registers itself with [`dag_core::wire::register`].

use crate::Element;
use dag_core::wire::{Reader, put_u64};
use ndarray::{ArrayD, IxDyn};
use num_complex::Complex;

/// Element types whose blocks can travel: plain bytes, checked on arrival where not every
/// bit pattern is a value.
pub(crate) trait WireElement: Element {
    /// Check that `bytes` (whole elements) are valid values of the type.
    fn check(_bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

impl WireElement for f32 {}
impl WireElement for f64 {}
impl WireElement for i32 {}
impl WireElement for i64 {}
impl WireElement for u8 {}
impl WireElement for i8 {}
impl WireElement for i16 {}
impl WireElement for u16 {}
impl WireElement for u32 {}
impl WireElement for u64 {}
impl WireElement for Complex<f32> {}
impl WireElement for Complex<f64> {}
impl WireElement for bool {
    fn check(bytes: &[u8]) -> Result<(), String> {
        match bytes.iter().position(|&b| b > 1) {
            None => Ok(()),
            Some(i) => Err(format!("byte {} at element {i} is not a bool", bytes[i])),
        }
    }
}

const LITTLE: u64 = 0x0102_0304;

/// Append a block: byte-order mark, number of axes, shape, then the elements' bytes in C
/// order.
pub(crate) fn put_block<T: WireElement>(a: &ArrayD<T>, out: &mut Vec<u8>) {
    put_u64(
        out,
        if cfg!(target_endian = "little") {
            LITTLE
        } else {
            LITTLE.swap_bytes()
        },
    );
    put_u64(out, a.ndim() as u64);
    for &n in a.shape() {
        put_u64(out, n as u64);
    }
    let a = a.as_standard_layout();
    let elems = a.as_slice().expect("a standard-layout array is contiguous");
    // SAFETY: every `WireElement` is a plain value type without padding (floats, integers,
    // bool, `Complex` = two floats, `repr(C)`), so its memory is `size_of::<T>() * len`
    // initialised bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(elems.as_ptr().cast::<u8>(), std::mem::size_of_val(elems))
    };
    out.extend_from_slice(bytes);
}

/// Read a block written by [`put_block`].
pub(crate) fn get_block<T: WireElement>(r: &mut Reader<'_>) -> Result<ArrayD<T>, String> {
    let mark = r.u64()?;
    let native = if cfg!(target_endian = "little") {
        LITTLE
    } else {
        LITTLE.swap_bytes()
    };
    if mark != native {
        return Err("the block was encoded on a machine of the other byte order".into());
    }
    let ndim = r.usize()?;
    if ndim > 64 {
        return Err(format!("{ndim} axes is not a block"));
    }
    let shape = (0..ndim)
        .map(|_| r.usize())
        .collect::<Result<Vec<_>, _>>()?;
    let len = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or("the shape's size overflows")?;
    let size = std::mem::size_of::<T>();
    let bytes = r.bytes(len.checked_mul(size).ok_or("the block's size overflows")?)?;
    T::check(bytes)?;
    let mut data: Vec<T> = Vec::with_capacity(len);
    // SAFETY: `bytes` holds `len` elements' worth of bytes that `check` accepted as values
    // of `T` (a plain type without padding); they are copied into the vector's unused,
    // properly aligned capacity, which then holds `len` initialised elements.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.as_mut_ptr().cast::<u8>(), bytes.len());
        data.set_len(len);
    }
    ArrayD::from_shape_vec(IxDyn(&shape), data).map_err(|e| e.to_string())
}

/// A run of values as a 1-d block.
pub(crate) fn put_vec<T: WireElement>(v: &[T], out: &mut Vec<u8>) {
    put_block(
        &ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).expect("1-d"),
        out,
    );
}

/// A run of values written by [`put_vec`].
pub(crate) fn get_vec<T: WireElement>(r: &mut Reader<'_>) -> std::result::Result<Vec<T>, String> {
    let b = get_block::<T>(r)?;
    if b.ndim() != 1 {
        return Err(format!(
            "expected a 1-d run of values, got {} axes",
            b.ndim()
        ));
    }
    Ok(b.into_raw_vec_and_offset().0)
}

fn register_blocks<T: WireElement>() {
    dag_core::wire::register::<ArrayD<T>>(put_block::<T>, get_block::<T>);
}

/// Register every value type blockarray's tasks return (once per process).
pub(crate) fn register() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        register_blocks::<f32>();
        register_blocks::<f64>();
        register_blocks::<i32>();
        register_blocks::<i64>();
        register_blocks::<u8>();
        register_blocks::<i8>();
        register_blocks::<i16>();
        register_blocks::<u16>();
        register_blocks::<u32>();
        register_blocks::<u64>();
        register_blocks::<bool>();
        register_blocks::<Complex<f32>>();
        register_blocks::<Complex<f64>>();
        crate::ops::reduce::register_wire();
        crate::ops::values::register_wire();
        crate::ops::select::register_wire();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use dag_core::Value;
    use ndarray::ShapeBuilder;

    fn round_trip<T: WireElement>(a: ArrayD<T>) -> ArrayD<T> {
        register();
        let v = crate::block_value(a);
        let mut bytes = Vec::new();
        dag_core::wire::encode(&v, &mut bytes).unwrap();
        let back: Value = dag_core::wire::decode(&bytes).unwrap();
        assert_eq!(back.nbytes(), v.nbytes());
        back.into_inner::<ArrayD<T>>().unwrap()
    }

    #[test]
    fn blocks_of_every_type_round_trip_bit_for_bit() {
        let f = ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| i[0] as f64 - 0.5 * i[1] as f64);
        let mut odd = f.clone();
        odd[[1, 1]] = f64::NAN;
        odd[[0, 0]] = -0.0;
        let back = round_trip(odd.clone());
        assert!(
            back.iter()
                .zip(&odd)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert_eq!(round_trip(f.mapv(|v| v as f32)), f.mapv(|v| v as f32));
        assert_eq!(round_trip(f.mapv(|v| v as i32)), f.mapv(|v| v as i32));
        assert_eq!(round_trip(f.mapv(|v| v as i64)), f.mapv(|v| v as i64));
        assert_eq!(round_trip(f.mapv(|v| v as u8)), f.mapv(|v| v as u8));
        assert_eq!(round_trip(f.mapv(|v| v as i8)), f.mapv(|v| v as i8));
        assert_eq!(round_trip(f.mapv(|v| v as i16)), f.mapv(|v| v as i16));
        assert_eq!(round_trip(f.mapv(|v| v as u16)), f.mapv(|v| v as u16));
        assert_eq!(round_trip(f.mapv(|v| v as u32)), f.mapv(|v| v as u32));
        assert_eq!(round_trip(f.mapv(|v| v as u64)), f.mapv(|v| v as u64));
        assert_eq!(round_trip(f.mapv(|v| v > 0.0)), f.mapv(|v| v > 0.0));
        let c = f.mapv(|v| Complex::new(v, -v));
        assert_eq!(round_trip(c.clone()), c);
        assert_eq!(
            round_trip(c.mapv(|z| Complex::new(z.re as f32, z.im as f32))),
            c.mapv(|z| Complex::new(z.re as f32, z.im as f32))
        );
        // Empty, 0-d and non-standard layouts.
        assert_eq!(
            round_trip(ArrayD::<f64>::zeros(IxDyn(&[0, 5]))).shape(),
            &[0, 5]
        );
        assert_eq!(
            round_trip(ArrayD::from_elem(IxDyn(&[]), 7i64)),
            ArrayD::from_elem(IxDyn(&[]), 7i64)
        );
        let fortran = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), (0..6).collect()).unwrap();
        assert_eq!(round_trip(fortran.clone()), fortran);
        assert_eq!(round_trip(f.t().to_owned()), f.t());
    }

    #[test]
    fn malformed_blocks_are_refused() {
        register();
        let mut bytes = Vec::new();
        dag_core::wire::encode(
            &crate::block_value(ArrayD::from_elem(IxDyn(&[4]), true)),
            &mut bytes,
        )
        .unwrap();
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 2;
        let e = dag_core::wire::decode(&bad).unwrap_err();
        assert!(
            e.contains("not a bool") && e.contains("OwnedRepr<bool>"),
            "{e}"
        );
        let e = dag_core::wire::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        // The byte-order mark (after the 16-byte frame header).
        let mut swapped = bytes.clone();
        swapped[16..24].reverse();
        let e = dag_core::wire::decode(&swapped).unwrap_err();
        assert!(e.contains("byte order"), "{e}");
    }
}
