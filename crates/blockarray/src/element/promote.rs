//! NumPy's type promotion: the element type of a binary operation between two element types
//! (`numpy.result_type`), so `i32 + f64` arrays give `f64`, `i64 + u8` give `i64`,
//! `bool + i32` give `i32`, `f32 + Complex<f64>` give `Complex<f64>` — with no `astype`.
//!
//! The rules, as NumPy's (NumPy 2, for arrays):
//!
//! - `bool` with anything gives the other type;
//! - two integers of the same signedness give the wider; a signed and an unsigned give the
//!   narrowest signed type holding both (`i8 + u8 → i16`, `i32 + u32 → i64`), and `u64` with
//!   any signed integer gives `f64` (no integer type holds both);
//! - an integer and a float: `f64` with `f64`; with `f32`, integers of up to 16 bits give `f32`
//!   and wider ones `f64`;
//! - complex: `Complex<f32>` with `f32`, integers of up to 16 bits, or itself stays
//!   `Complex<f32>`; with anything wider, or with `Complex<f64>`, gives `Complex<f64>`.
//!
//! Scalars on either side of an operator take the array's type (`x_f32 * 2.0` is `f32`, as a
//! Python scalar is in NumPy 2). The table is generated from these rules; a test checks it
//! against the cases NumPy documents.

use crate::{CastTo, Element};
use num_complex::Complex;

/// The element type of a binary operation between arrays of `Self` and `U`
/// (`numpy.result_type`); both operands are converted to [`Promote::Out`] first.
pub trait Promote<U: Element>: Element + CastTo<Self::Out> {
    /// The result type.
    type Out: Element;
}

macro_rules! promote_table {
    ($($a:ty, $b:ty => $out:ty;)*) => {$(
        impl Promote<$b> for $a {
            type Out = $out;
        }
    )*};
}

promote_table! {
    bool, bool => bool;
    bool, i8 => i8;
    bool, i16 => i16;
    bool, i32 => i32;
    bool, i64 => i64;
    bool, u8 => u8;
    bool, u16 => u16;
    bool, u32 => u32;
    bool, u64 => u64;
    bool, f32 => f32;
    bool, f64 => f64;
    bool, Complex<f32> => Complex<f32>;
    bool, Complex<f64> => Complex<f64>;
    i8, bool => i8;
    i8, i8 => i8;
    i8, i16 => i16;
    i8, i32 => i32;
    i8, i64 => i64;
    i8, u8 => i16;
    i8, u16 => i32;
    i8, u32 => i64;
    i8, u64 => f64;
    i8, f32 => f32;
    i8, f64 => f64;
    i8, Complex<f32> => Complex<f32>;
    i8, Complex<f64> => Complex<f64>;
    i16, bool => i16;
    i16, i8 => i16;
    i16, i16 => i16;
    i16, i32 => i32;
    i16, i64 => i64;
    i16, u8 => i16;
    i16, u16 => i32;
    i16, u32 => i64;
    i16, u64 => f64;
    i16, f32 => f32;
    i16, f64 => f64;
    i16, Complex<f32> => Complex<f32>;
    i16, Complex<f64> => Complex<f64>;
    i32, bool => i32;
    i32, i8 => i32;
    i32, i16 => i32;
    i32, i32 => i32;
    i32, i64 => i64;
    i32, u8 => i32;
    i32, u16 => i32;
    i32, u32 => i64;
    i32, u64 => f64;
    i32, f32 => f64;
    i32, f64 => f64;
    i32, Complex<f32> => Complex<f64>;
    i32, Complex<f64> => Complex<f64>;
    i64, bool => i64;
    i64, i8 => i64;
    i64, i16 => i64;
    i64, i32 => i64;
    i64, i64 => i64;
    i64, u8 => i64;
    i64, u16 => i64;
    i64, u32 => i64;
    i64, u64 => f64;
    i64, f32 => f64;
    i64, f64 => f64;
    i64, Complex<f32> => Complex<f64>;
    i64, Complex<f64> => Complex<f64>;
    u8, bool => u8;
    u8, i8 => i16;
    u8, i16 => i16;
    u8, i32 => i32;
    u8, i64 => i64;
    u8, u8 => u8;
    u8, u16 => u16;
    u8, u32 => u32;
    u8, u64 => u64;
    u8, f32 => f32;
    u8, f64 => f64;
    u8, Complex<f32> => Complex<f32>;
    u8, Complex<f64> => Complex<f64>;
    u16, bool => u16;
    u16, i8 => i32;
    u16, i16 => i32;
    u16, i32 => i32;
    u16, i64 => i64;
    u16, u8 => u16;
    u16, u16 => u16;
    u16, u32 => u32;
    u16, u64 => u64;
    u16, f32 => f32;
    u16, f64 => f64;
    u16, Complex<f32> => Complex<f32>;
    u16, Complex<f64> => Complex<f64>;
    u32, bool => u32;
    u32, i8 => i64;
    u32, i16 => i64;
    u32, i32 => i64;
    u32, i64 => i64;
    u32, u8 => u32;
    u32, u16 => u32;
    u32, u32 => u32;
    u32, u64 => u64;
    u32, f32 => f64;
    u32, f64 => f64;
    u32, Complex<f32> => Complex<f64>;
    u32, Complex<f64> => Complex<f64>;
    u64, bool => u64;
    u64, i8 => f64;
    u64, i16 => f64;
    u64, i32 => f64;
    u64, i64 => f64;
    u64, u8 => u64;
    u64, u16 => u64;
    u64, u32 => u64;
    u64, u64 => u64;
    u64, f32 => f64;
    u64, f64 => f64;
    u64, Complex<f32> => Complex<f64>;
    u64, Complex<f64> => Complex<f64>;
    f32, bool => f32;
    f32, i8 => f32;
    f32, i16 => f32;
    f32, i32 => f64;
    f32, i64 => f64;
    f32, u8 => f32;
    f32, u16 => f32;
    f32, u32 => f64;
    f32, u64 => f64;
    f32, f32 => f32;
    f32, f64 => f64;
    f32, Complex<f32> => Complex<f32>;
    f32, Complex<f64> => Complex<f64>;
    f64, bool => f64;
    f64, i8 => f64;
    f64, i16 => f64;
    f64, i32 => f64;
    f64, i64 => f64;
    f64, u8 => f64;
    f64, u16 => f64;
    f64, u32 => f64;
    f64, u64 => f64;
    f64, f32 => f64;
    f64, f64 => f64;
    f64, Complex<f32> => Complex<f64>;
    f64, Complex<f64> => Complex<f64>;
    Complex<f32>, bool => Complex<f32>;
    Complex<f32>, i8 => Complex<f32>;
    Complex<f32>, i16 => Complex<f32>;
    Complex<f32>, i32 => Complex<f64>;
    Complex<f32>, i64 => Complex<f64>;
    Complex<f32>, u8 => Complex<f32>;
    Complex<f32>, u16 => Complex<f32>;
    Complex<f32>, u32 => Complex<f64>;
    Complex<f32>, u64 => Complex<f64>;
    Complex<f32>, f32 => Complex<f32>;
    Complex<f32>, f64 => Complex<f64>;
    Complex<f32>, Complex<f32> => Complex<f32>;
    Complex<f32>, Complex<f64> => Complex<f64>;
    Complex<f64>, bool => Complex<f64>;
    Complex<f64>, i8 => Complex<f64>;
    Complex<f64>, i16 => Complex<f64>;
    Complex<f64>, i32 => Complex<f64>;
    Complex<f64>, i64 => Complex<f64>;
    Complex<f64>, u8 => Complex<f64>;
    Complex<f64>, u16 => Complex<f64>;
    Complex<f64>, u32 => Complex<f64>;
    Complex<f64>, u64 => Complex<f64>;
    Complex<f64>, f32 => Complex<f64>;
    Complex<f64>, f64 => Complex<f64>;
    Complex<f64>, Complex<f32> => Complex<f64>;
    Complex<f64>, Complex<f64> => Complex<f64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out<A: Promote<B>, B: Element>() -> &'static str {
        <A::Out as Element>::DTYPE
    }

    #[test]
    fn numpys_documented_promotions() {
        assert_eq!(out::<i32, f64>(), "float64");
        assert_eq!(out::<i64, u8>(), "int64");
        assert_eq!(out::<bool, i32>(), "int32");
        assert_eq!(out::<f32, Complex<f64>>(), "complex128");
        assert_eq!(out::<u8, i8>(), "int16");
        assert_eq!(out::<u32, i32>(), "int64");
        assert_eq!(out::<u64, i64>(), "float64");
        assert_eq!(out::<i16, f32>(), "float32");
        assert_eq!(out::<i32, f32>(), "float64");
        assert_eq!(out::<Complex<f32>, i32>(), "complex128");
        assert_eq!(out::<Complex<f32>, u16>(), "complex64");
        assert_eq!(out::<f32, f32>(), "float32");
        assert_eq!(out::<bool, bool>(), "bool");
    }
}
