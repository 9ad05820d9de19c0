//! The element types that can live in a Zarr array, and how they are named there.

use blockarray::Element;
use num_complex::Complex;
use zarrs::array::{DataType, data_type};

pub(crate) mod sealed {
    use zarrs::array::DataType;

    /// What the crate needs of an element type, in `zarrs` terms (kept out of the public
    /// trait's surface).
    pub trait Sealed: zarrs::array::Element + zarrs::array::ElementOwned {
        /// The data type new arrays of this element type are created with.
        fn zarr_data_type() -> DataType;
        /// Whether arrays of `dt` decode to this element type.
        fn accepts(dt: &DataType) -> bool;
        /// The Zarr v2 `dtype` string (little-endian).
        const V2_DTYPE: &'static str;
        /// The fill value of new arrays (zero, `false`), as v3 metadata JSON.
        fn fill_json() -> serde_json::Value;
        /// The values' bytes, for decoding straight into them; `None` for types where not every
        /// byte pattern is a valid value (`bool`), which are decoded through a checked copy.
        fn bytes_mut(values: &mut [Self]) -> Option<&mut [u8]>;
    }
}

/// An element type a [`BlockArray`](blockarray::BlockArray) can read from and write to Zarr:
/// the floats, the signed and unsigned integers of 8 to 64 bits, `bool`, `Complex<f32>` and
/// `Complex<f64>` (Zarr's `float32`, `float64`, `int8` … `int64`, `uint8` … `uint64`, `bool`,
/// `complex64`, `complex128`; in v2 `<f4`, `<f8`, `|i1`, `<i2`, `<i4`, `<i8`, `|u1`, `<u2`,
/// `<u4`, `<u8`, `|b1`, `<c8`, `<c16`, either byte order).
///
/// Sealed: the set of types is blockarray's.
pub trait ZarrElement: Element + sealed::Sealed {}

macro_rules! pod {
    ($($t:ty => $dt:ident, $v2:literal, $fill:expr);* $(;)?) => {$(
        impl sealed::Sealed for $t {
            fn zarr_data_type() -> DataType {
                data_type::$dt()
            }
            fn accepts(dt: &DataType) -> bool {
                *dt == data_type::$dt()
            }
            const V2_DTYPE: &'static str = $v2;
            fn fill_json() -> serde_json::Value {
                $fill
            }
            fn bytes_mut(values: &mut [Self]) -> Option<&mut [u8]> {
                Some(bytemuck::cast_slice_mut(values))
            }
        }
        impl ZarrElement for $t {}
    )*};
}

pod! {
    f32 => float32, "<f4", serde_json::json!(0.0);
    f64 => float64, "<f8", serde_json::json!(0.0);
    i8 => int8, "|i1", serde_json::json!(0);
    i16 => int16, "<i2", serde_json::json!(0);
    i32 => int32, "<i4", serde_json::json!(0);
    i64 => int64, "<i8", serde_json::json!(0);
    u8 => uint8, "|u1", serde_json::json!(0);
    u16 => uint16, "<u2", serde_json::json!(0);
    u32 => uint32, "<u4", serde_json::json!(0);
    u64 => uint64, "<u8", serde_json::json!(0);
}

macro_rules! complex {
    ($($t:ty => $dt:ident, $alt:ident, $v2:literal);* $(;)?) => {$(
        impl sealed::Sealed for Complex<$t> {
            fn zarr_data_type() -> DataType {
                data_type::$dt()
            }
            fn accepts(dt: &DataType) -> bool {
                // zarr-python writes `complex64`; the v3 extension name is also accepted.
                *dt == data_type::$dt() || *dt == data_type::$alt()
            }
            const V2_DTYPE: &'static str = $v2;
            fn fill_json() -> serde_json::Value {
                serde_json::json!([0.0, 0.0])
            }
            fn bytes_mut(values: &mut [Self]) -> Option<&mut [u8]> {
                Some(bytemuck::cast_slice_mut(values))
            }
        }
        impl ZarrElement for Complex<$t> {}
    )*};
}

complex! {
    f32 => complex64, complex_float32, "<c8";
    f64 => complex128, complex_float64, "<c16";
}

impl sealed::Sealed for bool {
    fn zarr_data_type() -> DataType {
        data_type::bool()
    }
    fn accepts(dt: &DataType) -> bool {
        *dt == data_type::bool()
    }
    const V2_DTYPE: &'static str = "|b1";
    fn fill_json() -> serde_json::Value {
        serde_json::json!(false)
    }
    fn bytes_mut(_: &mut [Self]) -> Option<&mut [u8]> {
        None
    }
}
impl ZarrElement for bool {}

/// A data type's name for messages: the v3 name (`"int16"`), or what zarrs calls it.
pub(crate) fn type_name(dt: &DataType) -> String {
    use zarrs::plugin::{ExtensionName, ZarrVersion};
    dt.name(ZarrVersion::V3)
        .map_or_else(|| dt.to_string(), |n| n.into_owned())
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;

    fn check<T: ZarrElement>() {
        let dt = T::zarr_data_type();
        assert!(T::accepts(&dt));
        assert_eq!(type_name(&dt), T::DTYPE, "v3 names are NumPy's");
        assert_eq!(dt.fixed_size(), Some(T::itemsize()));
    }

    #[test]
    fn every_type_has_its_numpy_name_and_size() {
        check::<f32>();
        check::<f64>();
        check::<i8>();
        check::<i16>();
        check::<i32>();
        check::<i64>();
        check::<u8>();
        check::<u16>();
        check::<u32>();
        check::<u64>();
        check::<bool>();
        check::<Complex<f32>>();
        check::<Complex<f64>>();
        assert!(!f64::accepts(&data_type::int64()));
        assert!(!i64::accepts(&data_type::float64()));
        assert!(Complex::<f64>::accepts(&data_type::complex_float64()));
    }

    #[test]
    fn bytes_are_the_values() {
        let mut v = [1.5f64, -2.0];
        let b = f64::bytes_mut(&mut v).unwrap();
        assert_eq!(&b[..8], 1.5f64.to_ne_bytes());
        assert!(bool::bytes_mut(&mut [true]).is_none());
    }
}
