//! Element types: what a `BlockArray<T>` can hold, and the arithmetic each supports.
//!
//! - [`Element`]: every supported type (`f32`, `f64`, `i8`, `i16`, `i32`, `i64`, `u8`, `u16`,
//!   `u32`, `u64`, `bool`, `Complex<f32>`, `Complex<f64>`), with its NumPy dtype name and size.
//! - [`Numeric`]: the types with `+ - * / %` and a zero and one (all but `bool`).
//! - [`Real`]: the ordered numeric types (no complex): comparisons, min/max, clip, argmin.
//! - [`Float`]: `f32` and `f64`: the transcendental ufuncs, NaN handling, `mean` results.
//! - [`Bitwise`]: the integers and `bool`: `& | ^ !`.
//! - [`Integer`]: the integer types: shifts, integer powers.
//! - [`Promote`]: NumPy's type promotion, the result type of a binary operation between two
//!   element types.
//! - [`CastTo`]: `astype` conversions between any two element types, with NumPy's rules
//!   (float → int truncates toward zero, anything → bool is `!= 0`, complex → real keeps the
//!   real part). Where NumPy's result is undefined (a float that is NaN, infinite or out of the
//!   integer type's range: C leaves the cast undefined, and NumPy returns whatever the CPU
//!   gives, with a warning), the result saturates (NaN → 0, out of range → the nearest bound),
//!   as Rust's `as`; docs/numpy.md lists this.

pub(crate) mod complex;
pub(crate) mod libm;
mod promote;

pub use promote::Promote;

use dag_core::Tokenizer;
use num_complex::Complex;
use std::fmt::Debug;
use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Not, Rem, Sub};

/// A type a `BlockArray` can hold.
pub trait Element: Copy + Send + Sync + Debug + PartialEq + Default + 'static {
    /// NumPy's name for the type: `"float64"`, `"int32"`, `"bool"`, `"complex128"`, ….
    const DTYPE: &'static str;

    /// Feed the value to a tokenizer (for keys of operations with scalar parameters).
    fn tokenize(&self, t: &mut Tokenizer);

    /// The size of one element in bytes.
    fn itemsize() -> usize {
        std::mem::size_of::<Self>()
    }

    /// Whether the value is NaN (never, for non-float types).
    fn is_nan_value(&self) -> bool {
        false
    }
}

/// Element types with arithmetic: all but `bool`.
pub trait Numeric:
    Element
    + Promote<Self, Out = Self>
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Rem<Output = Self>
    + num_traits::Zero
    + num_traits::One
{
    /// What `/` gives (NumPy's `true_divide`): `f64` for the integers, the type itself for the
    /// floats and complex numbers.
    type Quotient: Numeric;
    /// The type NumPy sums and multiplies this type in (`sum`, `prod`, `cumsum`, `cumprod`):
    /// `i64` for the signed integers, `u64` for the unsigned ones, the type itself otherwise.
    type Acc: Numeric;
    /// The value as [`Acc`](Self::Acc) (exact: a widening).
    fn to_acc(self) -> Self::Acc;
    /// `self + other`, wrapping around for integers as NumPy's fixed-width arithmetic (Rust's
    /// `+` would panic on overflow in debug builds).
    fn add_wrap(self, other: Self) -> Self;
    /// `self - other`, wrapping for integers.
    fn sub_wrap(self, other: Self) -> Self;
    /// `self * other`, wrapping for integers.
    fn mul_wrap(self, other: Self) -> Self;
    /// `-self` (`numpy.negative`), wrapping for integers (so unsigned values wrap too).
    fn neg_wrap(self) -> Self;
    /// `self / other` as NumPy's `true_divide`: integers are divided as `f64` (so `7 / 2` is
    /// `3.5`, and `1 / 0` is `inf`, as NumPy).
    fn true_div(self, other: Self) -> Self::Quotient;
    /// `self // other` as NumPy's `floor_divide` (rounding toward negative infinity), or an
    /// error message for an integer division by zero (NumPy gives 0 with a warning; we refuse
    /// rather than return a wrong value silently). Complex numbers have no floor division.
    fn try_floor_div(self, other: Self) -> Result<Self, &'static str>;
    /// `self % other` with NumPy's sign convention (the result has the sign of the divisor, a
    /// zero result too), or an error message for an integer modulo by zero.
    fn try_rem(self, other: Self) -> Result<Self, &'static str>;
    /// The value as `f64` (real part for complex), for means and variances of integers.
    fn to_f64_lossy(self) -> f64;
}

/// Ordered numeric types: the floats and the integers.
pub trait Real: Numeric + PartialOrd {
    /// The smallest value (`-inf` for floats).
    fn min_value() -> Self;
    /// The largest value (`inf` for floats).
    fn max_value() -> Self;
    /// -1, 0 or 1 (NaN stays NaN).
    fn signum_value(self) -> Self;
    /// The absolute value.
    fn abs_value(self) -> Self;
    /// The value as an exact integer (`None` for floats).
    fn to_i128(self) -> Option<i128>;
    /// The integer `v` as this type, if it is an integer type and `v` fits (`None` otherwise).
    fn from_i128(v: i128) -> Option<Self>;
    /// The index `i` as this type, as C converts it: rounded to nearest for floats (NumPy's
    /// float `arange` multiplies its step by the index in the element type), wrapping for
    /// integers.
    fn from_index(i: usize) -> Self;
    /// C's `fmod` (`numpy.fmod`): the remainder of truncating division, with the sign of the
    /// dividend; an error message for an integer divisor of zero (NumPy gives 0 with a warning).
    fn try_fmod(self, other: Self) -> Result<Self, &'static str>;
}

/// Types with the bitwise operators `& | ^ !`: the integers and `bool` (on `bool` they are the
/// logical operators, as NumPy's).
pub trait Bitwise:
    Element
    + Promote<Self, Out = Self>
    + BitAnd<Output = Self>
    + BitOr<Output = Self>
    + BitXor<Output = Self>
    + Not<Output = Self>
{
}

impl Bitwise for bool {}

/// The integer element types: shifts and integer powers with NumPy's semantics.
pub trait Integer: Real + Numeric<Quotient = f64> + Bitwise + Ord {
    /// The width in bits.
    const BITS: u32;
    /// `self << by` as NumPy's `left_shift`: 0 when `by` is negative or at least the width.
    fn shift_left(self, by: Self) -> Self;
    /// `self >> by` as NumPy's `right_shift` (arithmetic for signed types): when `by` is
    /// negative or at least the width, 0, or -1 for a negative `self`.
    fn shift_right(self, by: Self) -> Self;
    /// `self ** exp` as NumPy's `power` on integers (wrapping on overflow), or an error
    /// message for a negative exponent (NumPy raises too).
    fn try_pow(self, exp: Self) -> Result<Self, &'static str>;
}

/// Floating-point element types: `f32` and `f64`.
pub trait Float:
    Real + Numeric<Acc = Self, Quotient = Self> + num_traits::Float + Neg<Output = Self>
{
    /// Conversion from `f64` (rounding for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Conversion to `f64`.
    fn as_f64(self) -> f64;
}

/// Whether `T` is one of the built-in number types (the integers, `f32`, `f64` and their
/// complex numbers): every bit pattern of its size is a valid value, and the all-zero pattern
/// is its default. Storage crates use it to read stored bytes straight into a block.
///
/// ```
/// use blockarray::plain_number;
/// assert!(plain_number::<f64>() && plain_number::<num_complex::Complex<f32>>());
/// assert!(!plain_number::<bool>());
/// ```
pub fn plain_number<T: 'static>() -> bool {
    use std::any::TypeId;
    [
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<Complex<f32>>(),
        TypeId::of::<Complex<f64>>(),
    ]
    .contains(&TypeId::of::<T>())
}

/// A vector of `n` default values, or `None` if the allocator refuses. For the built-in
/// element types, whose default is the all-zero bit pattern, the memory comes zeroed from the
/// allocator (`calloc`: fresh pages are already zero, so there is no pass over them and they
/// are faulted in by whoever first writes them); other types are filled.
pub(crate) fn try_default_vec<T: Element>(n: usize) -> Option<Vec<T>> {
    let zero_default =
        plain_number::<T>() || std::any::TypeId::of::<T>() == std::any::TypeId::of::<bool>();
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    if zero_default && layout.size() > 0 {
        // SAFETY: the layout has a non-zero size. For these types the all-zero bit pattern is
        // a valid value and equals `T::default()` (0, 0.0, false, 0 + 0i), so the `n`
        // elements are initialised; the pointer comes from the global allocator with the
        // layout of `n` elements of `T`, as `Vec::from_raw_parts` requires.
        unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<T>();
            if p.is_null() {
                return None;
            }
            return Some(Vec::from_raw_parts(p, n, n));
        }
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, T::default());
    Some(v)
}

macro_rules! element {
    ($t:ty, $name:literal, |$v:ident, $tk:ident| $tok:expr) => {
        impl Element for $t {
            const DTYPE: &'static str = $name;
            fn tokenize(&self, $tk: &mut Tokenizer) {
                let $v = *self;
                $tok;
            }
        }
    };
}

element!(i8, "int8", |v, t| t.write_i64(i64::from(v)));
element!(i16, "int16", |v, t| t.write_i64(i64::from(v)));
element!(i32, "int32", |v, t| t.write_i64(i64::from(v)));
element!(i64, "int64", |v, t| t.write_i64(v));
element!(u8, "uint8", |v, t| t.write_u64(u64::from(v)));
element!(u16, "uint16", |v, t| t.write_u64(u64::from(v)));
element!(u32, "uint32", |v, t| t.write_u64(u64::from(v)));
element!(u64, "uint64", |v, t| t.write_u64(v));
element!(bool, "bool", |v, t| t.write_u64(u64::from(v)));

impl Element for f32 {
    const DTYPE: &'static str = "float32";
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(u64::from(self.to_bits()));
    }
    fn is_nan_value(&self) -> bool {
        self.is_nan()
    }
}

impl Element for f64 {
    const DTYPE: &'static str = "float64";
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_f64(*self);
    }
    fn is_nan_value(&self) -> bool {
        self.is_nan()
    }
}

impl Element for Complex<f32> {
    const DTYPE: &'static str = "complex64";
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(u64::from(self.re.to_bits()))
            .write_u64(u64::from(self.im.to_bits()));
    }
    fn is_nan_value(&self) -> bool {
        self.re.is_nan() || self.im.is_nan()
    }
}

impl Element for Complex<f64> {
    const DTYPE: &'static str = "complex128";
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_f64(self.re).write_f64(self.im);
    }
    fn is_nan_value(&self) -> bool {
        self.re.is_nan() || self.im.is_nan()
    }
}

macro_rules! numeric_int {
    ($($t:ty => $acc:ty),*) => {$(
        impl Numeric for $t {
            type Quotient = f64;
            type Acc = $acc;
            fn to_acc(self) -> $acc {
                self as $acc
            }
            #[inline]
            fn add_wrap(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
            #[inline]
            fn sub_wrap(self, other: Self) -> Self {
                self.wrapping_sub(other)
            }
            #[inline]
            fn mul_wrap(self, other: Self) -> Self {
                self.wrapping_mul(other)
            }
            #[inline]
            fn neg_wrap(self) -> Self {
                self.wrapping_neg()
            }
            fn true_div(self, other: Self) -> f64 {
                self as f64 / other as f64
            }
            #[allow(unused_comparisons)]
            fn try_floor_div(self, other: Self) -> Result<Self, &'static str> {
                if other == 0 {
                    return Err("integer division by zero");
                }
                // Truncating division, then one step down when the signs differ and it was
                // inexact (MIN // -1 wraps, as NumPy's).
                let q = self.wrapping_div(other);
                let inexact = q.wrapping_mul(other) != self;
                Ok(if inexact && ((self < 0) != (other < 0)) { q.wrapping_sub(1) } else { q })
            }
            fn try_rem(self, other: Self) -> Result<Self, &'static str> {
                if other == 0 {
                    return Err("integer modulo by zero");
                }
                let r = self.wrapping_rem(other);
                #[allow(unused_comparisons)]
                let fix = r != 0 && ((r < 0) != (other < 0));
                Ok(if fix { r.wrapping_add(other) } else { r })
            }
            fn to_f64_lossy(self) -> f64 {
                self as f64
            }
        }
        impl Real for $t {
            fn min_value() -> Self { <$t>::MIN }
            fn max_value() -> Self { <$t>::MAX }
            #[allow(unused_comparisons)]
            fn signum_value(self) -> Self {
                if self > 0 { 1 } else if self < 0 { (0 as $t).wrapping_sub(1) } else { 0 }
            }
            #[allow(unused_comparisons)]
            fn abs_value(self) -> Self {
                if self < 0 { (0 as $t).wrapping_sub(self) } else { self }
            }
            fn to_i128(self) -> Option<i128> {
                Some(self as i128)
            }
            fn from_i128(v: i128) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_index(i: usize) -> Self {
                i as $t
            }
            fn try_fmod(self, other: Self) -> Result<Self, &'static str> {
                if other == 0 {
                    return Err("integer fmod by zero");
                }
                Ok(self.wrapping_rem(other))
            }
        }
        impl Bitwise for $t {}
        impl Integer for $t {
            const BITS: u32 = <$t>::BITS;
            fn shift_left(self, by: Self) -> Self {
                // As NumPy's npy_lshift: the count read as unsigned, so negative counts are huge.
                match u32::try_from(by as i128) {
                    Ok(n) if n < Self::BITS => self << n,
                    _ => 0,
                }
            }
            #[allow(unused_comparisons)]
            fn shift_right(self, by: Self) -> Self {
                match u32::try_from(by as i128) {
                    Ok(n) if n < Self::BITS => self >> n,
                    _ if self < 0 => (0 as $t).wrapping_sub(1),
                    _ => 0,
                }
            }
            #[allow(unused_comparisons)]
            fn try_pow(self, exp: Self) -> Result<Self, &'static str> {
                if exp < 0 {
                    return Err("integers to negative integer powers are not allowed");
                }
                // Square and multiply, wrapping as NumPy's fixed-width arithmetic.
                let (mut base, mut e, mut acc) = (self, exp as u128, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                Ok(acc)
            }
        }
    )*};
}
numeric_int!(i8 => i64, i16 => i64, i32 => i64, i64 => i64, u8 => u64, u16 => u64, u32 => u64, u64 => u64);

/// NumPy's `divmod` of two floats (`npy_divmod`): the floored quotient and the remainder with
/// the sign of the divisor — a zero remainder too — computed from `fmod` so that
/// `q * b + r == a` as closely as floats allow.
fn float_divmod<T: num_traits::Float>(a: T, b: T) -> (T, T) {
    let zero = T::zero();
    let modulo = a % b;
    if b == zero {
        // Division by zero: NumPy gives a / b (±inf or nan) and a nan remainder.
        return (a / b, modulo);
    }
    let mut div = (a - modulo) / b;
    let mut m = modulo;
    if m != zero {
        if (b < zero) != (m < zero) {
            m = m + b;
            div = div - T::one();
        }
    } else {
        m = zero.copysign(b);
    }
    let floordiv = if div != zero {
        let f = div.floor();
        if div - f > T::from(0.5).expect("0.5 is a float") {
            f + T::one()
        } else {
            f
        }
    } else {
        zero.copysign(a / b)
    };
    (floordiv, m)
}

/// The wrapping operations of types whose arithmetic cannot overflow into a panic (floats and
/// complex numbers): the plain operators.
macro_rules! plain_arithmetic {
    () => {
        #[inline]
        fn add_wrap(self, other: Self) -> Self {
            self + other
        }
        #[inline]
        fn sub_wrap(self, other: Self) -> Self {
            self - other
        }
        #[inline]
        fn mul_wrap(self, other: Self) -> Self {
            self * other
        }
        #[inline]
        fn neg_wrap(self) -> Self {
            -self
        }
    };
}

macro_rules! numeric_float {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            type Quotient = $t;
            type Acc = $t;
            fn to_acc(self) -> $t {
                self
            }
            plain_arithmetic!();
            fn true_div(self, other: Self) -> $t {
                self / other
            }
            fn try_floor_div(self, other: Self) -> Result<Self, &'static str> {
                Ok(float_divmod(self, other).0)
            }
            fn try_rem(self, other: Self) -> Result<Self, &'static str> {
                Ok(float_divmod(self, other).1)
            }
            fn to_f64_lossy(self) -> f64 {
                self as f64
            }
        }
        impl Real for $t {
            fn min_value() -> Self { <$t>::NEG_INFINITY }
            fn max_value() -> Self { <$t>::INFINITY }
            fn signum_value(self) -> Self {
                // NumPy: 0.0 for both zeros, NaN stays NaN.
                if self > 0.0 { 1.0 } else if self < 0.0 { -1.0 } else if self == 0.0 { 0.0 } else { self }
            }
            fn abs_value(self) -> Self { self.abs() }
            fn to_i128(self) -> Option<i128> { None }
            fn from_i128(_: i128) -> Option<Self> { None }
            fn from_index(i: usize) -> Self { i as $t }
            fn try_fmod(self, other: Self) -> Result<Self, &'static str> {
                Ok(self % other)
            }
        }
        impl Float for $t {
            fn from_f64(v: f64) -> Self { v as $t }
            fn as_f64(self) -> f64 { self as f64 }
        }
    )*};
}
numeric_float!(f32, f64);

macro_rules! numeric_complex {
    ($($t:ty),*) => {$(
        impl Numeric for Complex<$t> {
            type Quotient = Complex<$t>;
            type Acc = Complex<$t>;
            fn to_acc(self) -> Self {
                self
            }
            plain_arithmetic!();
            fn true_div(self, other: Self) -> Self {
                complex::div(self, other)
            }
            fn try_floor_div(self, _: Self) -> Result<Self, &'static str> {
                Err("complex numbers have no floor division")
            }
            fn try_rem(self, _: Self) -> Result<Self, &'static str> {
                Err("complex numbers have no remainder")
            }
            fn to_f64_lossy(self) -> f64 {
                self.re as f64
            }
        }
    )*};
}
numeric_complex!(f32, f64);

/// Conversion to another element type, with NumPy's `astype` rules; a float that is NaN,
/// infinite or out of an integer type's range (undefined in C and NumPy) saturates, as Rust's
/// `as` (NaN → 0).
pub trait CastTo<U>: Element {
    /// The converted value.
    fn cast(self) -> U;
}

macro_rules! cast_prim {
    ($from:ty => $($to:ty),*) => {$(
        impl CastTo<$to> for $from {
            #[allow(clippy::unnecessary_cast)]
            fn cast(self) -> $to { self as $to }
        }
    )*};
}
cast_prim!(f32 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(f64 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(i8 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(i16 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(i32 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(i64 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(u8 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(u16 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(u32 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);
cast_prim!(u64 => f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! cast_bool {
    ($($t:ty),*) => {$(
        impl CastTo<bool> for $t {
            #[allow(clippy::float_cmp)]
            fn cast(self) -> bool { self != (0 as $t) }
        }
        impl CastTo<$t> for bool {
            fn cast(self) -> $t { u8::from(self) as $t }
        }
        impl CastTo<Complex<f32>> for $t {
            fn cast(self) -> Complex<f32> { Complex::new(self as f32, 0.0) }
        }
        impl CastTo<Complex<f64>> for $t {
            fn cast(self) -> Complex<f64> { Complex::new(self as f64, 0.0) }
        }
        impl CastTo<$t> for Complex<f32> {
            fn cast(self) -> $t { self.re as $t }
        }
        impl CastTo<$t> for Complex<f64> {
            fn cast(self) -> $t { self.re as $t }
        }
    )*};
}
cast_bool!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl CastTo<bool> for bool {
    fn cast(self) -> bool {
        self
    }
}
impl CastTo<Complex<f32>> for bool {
    fn cast(self) -> Complex<f32> {
        Complex::new(f32::from(u8::from(self)), 0.0)
    }
}
impl CastTo<Complex<f64>> for bool {
    fn cast(self) -> Complex<f64> {
        Complex::new(f64::from(u8::from(self)), 0.0)
    }
}
impl CastTo<bool> for Complex<f32> {
    fn cast(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
}
impl CastTo<bool> for Complex<f64> {
    fn cast(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
}
impl CastTo<Complex<f32>> for Complex<f32> {
    fn cast(self) -> Complex<f32> {
        self
    }
}
impl CastTo<Complex<f64>> for Complex<f32> {
    fn cast(self) -> Complex<f64> {
        Complex::new(f64::from(self.re), f64::from(self.im))
    }
}
impl CastTo<Complex<f32>> for Complex<f64> {
    fn cast(self) -> Complex<f32> {
        Complex::new(self.re as f32, self.im as f32)
    }
}
impl CastTo<Complex<f64>> for Complex<f64> {
    fn cast(self) -> Complex<f64> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_cast_rules() {
        assert_eq!(CastTo::<i32>::cast(-2.7f64), -2);
        assert_eq!(CastTo::<u8>::cast(300.0f64), 255);
        assert!(CastTo::<bool>::cast(0.5f32));
        assert!(!CastTo::<bool>::cast(0i64));
        assert_eq!(CastTo::<f64>::cast(true), 1.0);
        assert_eq!(CastTo::<f64>::cast(Complex::new(2.0f64, 5.0)), 2.0);
        assert_eq!(CastTo::<Complex<f64>>::cast(3i32), Complex::new(3.0, 0.0));
    }

    #[test]
    fn shifts_powers_and_fmod_follow_numpy() {
        assert_eq!(1i32.shift_left(31), i32::MIN);
        assert_eq!(1i32.shift_left(32), 0);
        assert_eq!(1i32.shift_left(-1), 0);
        assert_eq!((-8i64).shift_right(1), -4);
        assert_eq!((-8i64).shift_right(64), -1);
        assert_eq!(8i64.shift_right(-3), 0);
        assert_eq!(200u8.shift_right(9), 0);
        assert_eq!(3i64.try_pow(4), Ok(81));
        assert_eq!(2u8.try_pow(9), Ok(0));
        assert_eq!(0i32.try_pow(0), Ok(1));
        assert!(2i32.try_pow(-1).is_err());
        assert_eq!((-7i32).try_fmod(3), Ok(-1));
        assert_eq!(i32::MIN.try_fmod(-1), Ok(0));
        assert!(1u16.try_fmod(0).is_err());
        assert_eq!((-7.5f64).try_fmod(2.0), Ok(-1.5));
    }

    #[test]
    fn numpy_remainder_sign_follows_divisor() {
        assert_eq!((-7i64).try_rem(3), Ok(2));
        assert_eq!(7i64.try_rem(-3), Ok(-2));
        assert_eq!((-7.0f64).try_rem(3.0), Ok(2.0));
        assert_eq!(7u8.try_rem(0), Err("integer modulo by zero"));
        assert_eq!(1i32.try_floor_div(0), Err("integer division by zero"));
        assert_eq!((-7i32).try_floor_div(2), Ok(-4));
        assert_eq!(7i32.try_floor_div(-2), Ok(-4));
        assert_eq!(6i32.try_floor_div(-2), Ok(-3));
        assert_eq!(i64::MIN.try_floor_div(-1), Ok(i64::MIN));
        assert_eq!(7u8.try_floor_div(2), Ok(3));
        assert_eq!(7i32.true_div(2), 3.5);
        assert_eq!(1i64.true_div(0), f64::INFINITY);
        // NumPy: -7.0 // 2.0 = -4.0, 7.0 % -3.0 = -2.0, and a zero remainder takes the
        // divisor's sign (-0.0 % 3.0 = 0.0, 6.0 % -3.0 = -0.0).
        assert_eq!((-7.0f64).try_floor_div(2.0), Ok(-4.0));
        assert_eq!(7.0f64.try_rem(-3.0), Ok(-2.0));
        assert!((-0.0f64).try_rem(3.0).unwrap().is_sign_positive());
        assert!(6.0f64.try_rem(-3.0).unwrap().is_sign_negative());
        assert!(1.0f64.try_floor_div(0.0).unwrap().is_infinite());
    }

    #[test]
    fn dtype_names_and_sizes() {
        assert_eq!(f64::DTYPE, "float64");
        assert_eq!(<Complex<f32>>::DTYPE, "complex64");
        assert_eq!(<Complex<f64>>::itemsize(), 16);
        assert_eq!(bool::itemsize(), 1);
    }
}
