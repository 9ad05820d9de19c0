//! The element types that can live in an HDF5 dataset, and how their bytes look on disk.

use blockarray::Element;
use hdf5::H5Type;
use num_complex::Complex;

mod sealed {
    pub trait Sealed {}
}

/// An element type a [`BlockArray`](blockarray::BlockArray) can read from and write to HDF5:
/// `f32`, `f64`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`, `u32`, `u64`, `bool` (stored as h5py does, an 8-bit enum
/// `FALSE = 0, TRUE = 1`) and `Complex<f32>`, `Complex<f64>` (h5py's compound `{r, i}`).
///
/// The trait also says how to turn a chunk's raw bytes (in the machine's byte order, as the
/// direct chunk path sees them after decompression) into values and back. It is sealed: the
/// set of types is blockarray's.
pub trait Hdf5Element: Element + H5Type + sealed::Sealed {
    /// Append the values encoded in `bytes` (native byte order, `bytes.len()` a multiple of
    /// the element size) to `out`.
    fn decode(bytes: &[u8], out: &mut Vec<Self>);
    /// Append the native-order bytes of `values` to `out`.
    fn encode(values: &[Self], out: &mut Vec<u8>);
}

macro_rules! primitive {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Hdf5Element for $t {
            fn decode(bytes: &[u8], out: &mut Vec<Self>) {
                const N: usize = std::mem::size_of::<$t>();
                out.extend(bytes.chunks_exact(N).map(|b| {
                    <$t>::from_ne_bytes(b.try_into().expect("chunks_exact yields N bytes"))
                }));
            }
            fn encode(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * std::mem::size_of::<$t>());
                for v in values {
                    out.extend_from_slice(&v.to_ne_bytes());
                }
            }
        }
    )*};
}

primitive!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl sealed::Sealed for bool {}
impl Hdf5Element for bool {
    fn decode(bytes: &[u8], out: &mut Vec<Self>) {
        out.extend(bytes.iter().map(|&b| b != 0));
    }
    fn encode(values: &[Self], out: &mut Vec<u8>) {
        out.extend(values.iter().map(|&b| u8::from(b)));
    }
}

macro_rules! complex {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for Complex<$t> {}
        impl Hdf5Element for Complex<$t> {
            fn decode(bytes: &[u8], out: &mut Vec<Self>) {
                const N: usize = std::mem::size_of::<$t>();
                out.extend(bytes.chunks_exact(2 * N).map(|b| {
                    let (re, im) = b.split_at(N);
                    Complex::new(
                        <$t>::from_ne_bytes(re.try_into().expect("N bytes")),
                        <$t>::from_ne_bytes(im.try_into().expect("N bytes")),
                    )
                }));
            }
            fn encode(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * 2 * std::mem::size_of::<$t>());
                for v in values {
                    out.extend_from_slice(&v.re.to_ne_bytes());
                    out.extend_from_slice(&v.im.to_ne_bytes());
                }
            }
        }
    )*};
}

complex!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Hdf5Element>(values: &[T]) {
        let mut bytes = Vec::new();
        T::encode(values, &mut bytes);
        assert_eq!(bytes.len(), values.len() * T::itemsize());
        let mut back = Vec::new();
        T::decode(&bytes, &mut back);
        assert_eq!(back, values);
    }

    #[test]
    fn every_type_round_trips_through_bytes() {
        round_trip(&[1.5f32, -0.0, f32::MAX]);
        round_trip(&[1.5f64, -2.25, f64::MIN_POSITIVE]);
        round_trip(&[i32::MIN, 0, 7]);
        round_trip(&[i64::MAX, -1]);
        round_trip(&[0u8, 255, 17]);
        round_trip(&[true, false, true]);
        round_trip(&[Complex::new(1.0f32, -2.0)]);
        round_trip(&[Complex::new(1.0f64, -2.0), Complex::new(0.5, 3.0)]);
    }

    #[test]
    fn encoding_is_native_order() {
        let mut bytes = Vec::new();
        i32::encode(&[1], &mut bytes);
        assert_eq!(bytes, 1i32.to_ne_bytes());
    }
}
