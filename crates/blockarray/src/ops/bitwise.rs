//! The bitwise operators `& | ^ ! << >>` on the integer types and `bool`, with NumPy's
//! promotion between arrays of different types, a scalar on either side, and NumPy's shift
//! semantics (a count outside `[0, bits)` shifts everything out; see [`Integer`]).
//!
//! ```
//! use blockarray::BlockArray;
//! let x = BlockArray::arange(0i64, 8, 1, 3)?;
//! let y = ((&x & 6) << 1) ^ 1;
//! assert_eq!(y.compute()?.into_raw_vec_and_offset().0, vec![1, 1, 5, 5, 9, 9, 13, 13]);
//! let m = !&x.greater(3)?;
//! assert_eq!(m.compute()?.into_raw_vec_and_offset().0, vec![true, true, true, true, false, false, false, false]);
//! # Ok::<(), blockarray::Error>(())
//! ```

use crate::element::{Bitwise, CastTo, Element, Integer, Promote};
use crate::ops::elementwise::{map_nodes, promoted, scalar_kernel, scalar_left};
use crate::{BlockArray, Result};
use dag_core::Tokenizer;
use std::ops::{BitAnd, BitOr, BitXor, Not, Shl, Shr};

/// One binary operator over the element types satisfying `$Bound`: array–array (promoted),
/// array–scalar, and scalar–array for each listed scalar type.
macro_rules! bit_op {
    ($Bound:ident, $Trait:ident, $method:ident, $name:literal, |$a:ident, $b:ident| $body:expr) => {
        impl<T, U> $Trait<&BlockArray<U>> for &BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: $Bound,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: &BlockArray<U>) -> Self::Output {
                let (x, y) = promoted(self, rhs);
                x.try_zip(&y, $name, |$a, $b| Ok($body))
            }
        }
        impl<T, U> $Trait<BlockArray<U>> for BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: $Bound,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: BlockArray<U>) -> Self::Output {
                (&self).$method(&rhs)
            }
        }
        impl<T, U> $Trait<&BlockArray<U>> for BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: $Bound,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: &BlockArray<U>) -> Self::Output {
                (&self).$method(rhs)
            }
        }
        impl<T, U> $Trait<BlockArray<U>> for &BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: $Bound,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: BlockArray<U>) -> Self::Output {
                self.$method(&rhs)
            }
        }
        impl<T: $Bound> $Trait<T> for &BlockArray<T> {
            type Output = BlockArray<T>;
            fn $method(self, rhs: T) -> BlockArray<T> {
                let mut t = Tokenizer::new();
                rhs.tokenize(&mut t);
                t.write_str(concat!($name, "-scalar"));
                map_nodes::<T>(
                    $name,
                    t,
                    vec![self.node.clone()],
                    scalar_kernel(move |$a: T| {
                        let $b = rhs;
                        Ok($body)
                    }),
                )
                .expect("a unary map cannot fail to broadcast")
            }
        }
        impl<T: $Bound> $Trait<T> for BlockArray<T> {
            type Output = BlockArray<T>;
            fn $method(self, rhs: T) -> BlockArray<T> {
                (&self).$method(rhs)
            }
        }
    };
}

bit_op!(Bitwise, BitAnd, bitand, "bitwise_and", |a, b| a & b);
bit_op!(Bitwise, BitOr, bitor, "bitwise_or", |a, b| a | b);
bit_op!(Bitwise, BitXor, bitxor, "bitwise_xor", |a, b| a ^ b);
bit_op!(Integer, Shl, shl, "left_shift", |a, b| a.shift_left(b));
bit_op!(Integer, Shr, shr, "right_shift", |a, b| a.shift_right(b));

/// A scalar on the left of a bitwise operator (`1 << &x`), for each type: the same impls as
/// the arithmetic operators' (`elementwise::scalar_left`).
macro_rules! scalar_left_bits {
    (@logic $($s:ty),*) => {$(
        scalar_left!(@op $s, BitAnd, bitand, "bitwise_and", |a, b| Ok(a & b));
        scalar_left!(@op $s, BitOr, bitor, "bitwise_or", |a, b| Ok(a | b));
        scalar_left!(@op $s, BitXor, bitxor, "bitwise_xor", |a, b| Ok(a ^ b));
    )*};
    (@shift $($s:ty),*) => {$(
        scalar_left!(@op $s, Shl, shl, "left_shift", |a, b| Ok(a.shift_left(b)));
        scalar_left!(@op $s, Shr, shr, "right_shift", |a, b| Ok(a.shift_right(b)));
    )*};
}

scalar_left_bits!(@logic bool, i8, i16, i32, i64, u8, u16, u32, u64);
scalar_left_bits!(@shift i8, i16, i32, i64, u8, u16, u32, u64);

/// `!x`: bitwise not (`numpy.invert`); logical not on `bool`.
impl<T: Bitwise> Not for &BlockArray<T> {
    type Output = BlockArray<T>;
    fn not(self) -> BlockArray<T> {
        self.map_builtin("invert", |v: T| !v)
    }
}

/// `!x`: bitwise not (`numpy.invert`); logical not on `bool`.
impl<T: Bitwise> Not for BlockArray<T> {
    type Output = BlockArray<T>;
    fn not(self) -> BlockArray<T> {
        !&self
    }
}

impl<T: Integer> BlockArray<T> {
    /// Each element to an integer power (`numpy.power` on integers): wraps on overflow as
    /// NumPy's fixed-width arithmetic; a negative exponent fails when computed (NumPy raises
    /// "Integers to negative integer powers are not allowed").
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0i64, 5, 1, 2)?;
    /// assert_eq!(x.pow(3)?.compute()?.into_raw_vec_and_offset().0, vec![0, 1, 8, 27, 64]);
    /// assert!(x.pow(-1)?.compute().is_err());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn pow<'a>(&self, exponent: impl Into<crate::Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(exponent, "power", |a, b| a.try_pow(b))
    }

    /// `self << by` (`numpy.left_shift`), with an array or scalar count.
    pub fn left_shift<'a>(&self, by: impl Into<crate::Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(by, "left_shift", |a, b| Ok(a.shift_left(b)))
    }

    /// `self >> by` (`numpy.right_shift`), with an array or scalar count.
    pub fn right_shift<'a>(&self, by: impl Into<crate::Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(by, "right_shift", |a, b| Ok(a.shift_right(b)))
    }
}
