//! The rest of NumPy's ufuncs: integer-safe division families (`floor_divide`, `remainder`,
//! `divmod`, `fmod`), NaN-ignoring `fmax`/`fmin`, `square`, and the floating-point functions
//! (`reciprocal`, `rint`, `deg2rad`, `logaddexp`, `copysign`, `nextafter`, `ldexp`/`frexp`,
//! `signbit`, `nan_to_num`, `isclose`/`allclose`, and `angle`/`real`/`imag`/`conj` on real
//! arrays). Each is one fused elementwise map like those of [`elementwise`](super::elementwise),
//! keyed by its name and every parameter.
//!
//! ```
//! use blockarray::BlockArray;
//! let x = BlockArray::from_array(ndarray::arr1(&[-7i64, 7, 8]).into_dyn(), 2)?;
//! assert_eq!(x.floor_divide(2)?.compute()?.into_raw_vec_and_offset().0, vec![-4, 3, 4]);
//! assert_eq!(x.remainder(-3)?.compute()?.into_raw_vec_and_offset().0, vec![-1, -2, -1]);
//! assert_eq!(x.fmod(-3)?.compute()?.into_raw_vec_and_offset().0, vec![-1, 1, 2]);
//! # Ok::<(), blockarray::Error>(())
//! ```

use crate::element::{Element, Float, Numeric, Real};
use crate::ops::elementwise::{map_nodes, nan_max, nan_min, unary_kernel};
use crate::{BlockArray, Error, Operand, Result};
use dag_core::Tokenizer;

impl<T: Numeric> BlockArray<T> {
    /// `self * self` (`numpy.square`; integers wrap).
    pub fn square(&self) -> BlockArray<T> {
        self.map_builtin("square", |v: T| v.mul_wrap(v))
    }

    /// `-self` (`numpy.negative`): integers wrap, unsigned ones too (the `-` operator exists
    /// for the signed types only).
    pub fn negative(&self) -> BlockArray<T> {
        self.map_builtin("neg", |v: T| v.neg_wrap())
    }

    /// `self // other` (`numpy.floor_divide`): rounds toward negative infinity. An integer
    /// division by zero fails when computed, naming the task (NumPy returns 0 with a warning);
    /// complex arrays fail too (NumPy has no complex floor division).
    pub fn floor_divide<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "floor_divide", |a, b| a.try_floor_div(b))
    }

    /// `self % other` (`numpy.remainder`, `numpy.mod`): the sign of the divisor, as the `%`
    /// operator.
    pub fn remainder<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "mod", |a, b| a.try_rem(b))
    }

    /// `(self // other, self % other)` (`numpy.divmod`), as two arrays.
    pub fn divmod<'a>(
        &self,
        other: impl Into<Operand<'a, T>>,
    ) -> Result<(BlockArray<T>, BlockArray<T>)> {
        let other = other.into();
        let q = self.floor_divide(other)?;
        Ok((q, self.remainder(other)?))
    }
}

impl<T: Real> BlockArray<T> {
    /// C's `fmod` (`numpy.fmod`): the remainder with the sign of the dividend. An integer
    /// divisor of zero fails when computed (NumPy returns 0 with a warning).
    pub fn fmod<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "fmod", |a, b| a.try_fmod(b))
    }

    /// The elementwise maximum ignoring NaN (`numpy.fmax`): NaN only where both are NaN.
    pub fn fmax<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "fmax", |a, b| {
            Ok(if b.is_nan_value() {
                a
            } else if a.is_nan_value() {
                b
            } else {
                nan_max(a, b)
            })
        })
    }

    /// The elementwise minimum ignoring NaN (`numpy.fmin`): NaN only where both are NaN.
    pub fn fmin<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "fmin", |a, b| {
            Ok(if b.is_nan_value() {
                a
            } else if a.is_nan_value() {
                b
            } else {
                nan_min(a, b)
            })
        })
    }
}

/// `x · 2^n` exactly, without overflow in between (as C's `scalbn`): the power applied in
/// steps that stay in range, the last one rounding once.
fn scalbn(x: f64, n: i64) -> f64 {
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    let (mut y, mut n) = (x, n.clamp(-3000, 3000));
    if n > 1023 {
        y *= pow2(1023);
        n -= 1023;
        if n > 1023 {
            y *= pow2(1023);
            n = (n - 1023).min(1023);
        }
    } else if n < -1022 {
        // Scale by 2^-1022 · 2^53 so that the final multiplication is the only rounding.
        y *= pow2(-1022) * pow2(53);
        n += 1022 - 53;
        if n < -1022 {
            y *= pow2(-1022) * pow2(53);
            n = (n + 1022 - 53).max(-1022);
        }
    }
    y * pow2(n)
}

/// `(m, e)` with `x = m · 2^e` and `0.5 ≤ |m| < 1` (C's `frexp`); `(x, 0)` for zeros,
/// infinities and NaN.
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (x, bias) = if x.abs() < f64::MIN_POSITIVE {
        (x * f64::from_bits((54 + 1023) << 52), -54)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, exp + bias)
}

/// The next representable value after `a` toward `b` (C's `nextafter`), in `a`'s own type.
fn next_after<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b.is_nan() {
        return T::nan();
    }
    if a == b {
        return b;
    }
    let tiny = if std::mem::size_of::<T>() == 4 {
        T::from_f64(f64::from(f32::from_bits(1)))
    } else {
        T::from_f64(f64::from_bits(1))
    };
    if a == T::zero() {
        return if b > a { tiny } else { -tiny };
    }
    // Step the bit pattern: away from zero when moving outward, toward it otherwise.
    let up = (b > a) == (a > T::zero());
    if std::mem::size_of::<T>() == 4 {
        let bits = (a.as_f64() as f32).to_bits();
        let bits = if up { bits + 1 } else { bits - 1 };
        T::from_f64(f64::from(f32::from_bits(bits)))
    } else {
        let bits = a.as_f64().to_bits();
        let bits = if up { bits + 1 } else { bits - 1 };
        T::from_f64(f64::from_bits(bits))
    }
}

impl<T: Float> BlockArray<T> {
    /// `1 / x` (`numpy.reciprocal`).
    pub fn reciprocal(&self) -> BlockArray<T> {
        self.map_builtin("reciprocal", |v: T| T::one() / v)
    }

    /// Round to the nearest integer, half to even (`numpy.rint`; the same as [`round`](Self::round)).
    pub fn rint(&self) -> BlockArray<T> {
        self.round()
    }

    /// Degrees to radians (`numpy.deg2rad`, `numpy.radians`).
    pub fn deg2rad(&self) -> BlockArray<T> {
        self.map_builtin("deg2rad", |v: T| v.to_radians())
    }

    /// Radians to degrees (`numpy.rad2deg`, `numpy.degrees`).
    pub fn rad2deg(&self) -> BlockArray<T> {
        // NumPy's constant, rounded in the element type (f32's `to_degrees` rounds 180/π
        // once in f64 terms, one ulp away from NumPy's `180f/πf`).
        let k = T::from_f64(180.0) / T::from_f64(std::f64::consts::PI);
        self.map_builtin("rad2deg", move |v: T| v * k)
    }

    /// Inverse hyperbolic sine (`numpy.arcsinh`).
    pub fn asinh(&self) -> BlockArray<T> {
        self.map_builtin("arcsinh", |v: T| {
            // Beyond 2^28, asinh(x) = ln(2|x|) to the last bit; the textbook ln(x + sqrt(x² + 1))
            // would overflow in x² long before x does.
            if v.abs() > T::from_f64(268_435_456.0) {
                (v.abs().ln() + T::from_f64(std::f64::consts::LN_2)).copysign(v)
            } else {
                v.asinh()
            }
        })
    }

    /// Inverse hyperbolic cosine (`numpy.arccosh`; NaN below 1).
    pub fn acosh(&self) -> BlockArray<T> {
        self.map_builtin("arccosh", |v: T| {
            if v > T::from_f64(268_435_456.0) {
                v.ln() + T::from_f64(std::f64::consts::LN_2)
            } else {
                v.acosh()
            }
        })
    }

    /// Inverse hyperbolic tangent (`numpy.arctanh`; ±inf at ±1, NaN beyond).
    pub fn atanh(&self) -> BlockArray<T> {
        self.map_builtin("arctanh", |v: T| v.atanh())
    }

    /// Whether the sign bit is set (`numpy.signbit`): true for `-0.0` and negative NaN.
    pub fn signbit(&self) -> BlockArray<bool> {
        self.map_builtin("signbit", |v: T| v.is_sign_negative())
    }

    /// The magnitude of `self` with the sign of `other` (`numpy.copysign`).
    pub fn copysign<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "copysign", |a, b| Ok(a.copysign(b)))
    }

    /// The next representable value after `self` toward `other` (`numpy.nextafter`).
    pub fn nextafter<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "nextafter", |a, b| Ok(next_after(a, b)))
    }

    /// `log(exp(self) + exp(other))` without overflow (`numpy.logaddexp`).
    pub fn logaddexp<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "logaddexp", |a, b| {
            Ok(if a == b {
                // Also the case of equal infinities, where a - b would be NaN.
                a + T::from_f64(std::f64::consts::LN_2)
            } else {
                let (hi, lo) = if a > b { (a, b) } else { (b, a) };
                if hi.is_nan() || lo.is_nan() {
                    T::nan()
                } else {
                    hi + (lo - hi).exp().ln_1p()
                }
            })
        })
    }

    /// `log2(2^self + 2^other)` without overflow (`numpy.logaddexp2`).
    pub fn logaddexp2<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "logaddexp2", |a, b| {
            Ok(if a == b {
                a + T::one()
            } else {
                let (hi, lo) = if a > b { (a, b) } else { (b, a) };
                if hi.is_nan() || lo.is_nan() {
                    T::nan()
                } else {
                    hi + (lo - hi).exp2().ln_1p() / T::from_f64(std::f64::consts::LN_2)
                }
            })
        })
    }

    /// `self · 2^n` (`numpy.ldexp`), exactly rounded, for an array or scalar of exponents.
    pub fn ldexp<'a>(&self, n: impl Into<Operand<'a, i32>>) -> Result<BlockArray<T>> {
        self.zip_map(n, dag_core::OpName::pure("ldexp", &()), |a: T, e: i32| {
            // For f32: exact in f64 (a wider exponent range), then one rounding to f32.
            T::from_f64(scalbn(a.as_f64(), e.into()))
        })
    }

    /// The mantissa and exponent of each element (`numpy.frexp`): `self = m · 2^e` with
    /// `0.5 ≤ |m| < 1`, and `(x, 0)` for zeros, infinities and NaN.
    pub fn frexp(&self) -> (BlockArray<T>, BlockArray<i32>) {
        let m = self.map_builtin("frexp-mantissa", |v: T| T::from_f64(frexp(v.as_f64()).0));
        let e = self.map_builtin("frexp-exponent", |v: T| frexp(v.as_f64()).1);
        (m, e)
    }

    /// NaN, +inf and -inf replaced by finite numbers (`numpy.nan_to_num`): by default 0, the
    /// largest and the most negative finite value of the type.
    pub fn nan_to_num(
        &self,
        nan: Option<T>,
        posinf: Option<T>,
        neginf: Option<T>,
    ) -> BlockArray<T> {
        let nan = nan.unwrap_or_else(T::zero);
        let posinf = posinf.unwrap_or_else(<T as num_traits::Float>::max_value);
        let neginf = neginf.unwrap_or_else(<T as num_traits::Float>::min_value);
        let mut t = Tokenizer::new();
        for v in [nan, posinf, neginf] {
            v.tokenize(&mut t);
        }
        t.write_str("nan_to_num");
        map_nodes::<T>(
            "nan_to_num",
            t,
            vec![self.node.clone()],
            unary_kernel(move |v: T| {
                if v.is_nan() {
                    nan
                } else if v == T::infinity() {
                    posinf
                } else if v == T::neg_infinity() {
                    neginf
                } else {
                    v
                }
            }),
        )
        .expect("a unary map cannot fail to broadcast")
    }

    /// Whether `self` and `other` are equal within `atol + rtol·|other|` (`numpy.isclose`, the
    /// same asymmetric test): infinities are close only to themselves, NaN only to NaN when
    /// `equal_nan`. Fails for negative or NaN tolerances.
    pub fn isclose<'a>(
        &self,
        other: impl Into<Operand<'a, T>>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> Result<BlockArray<bool>> {
        if !(rtol >= 0.0 && atol >= 0.0) {
            return Err(Error::unsupported(format!(
                "isclose: tolerances must be non-negative numbers, got rtol {rtol}, atol {atol}"
            )));
        }
        let mut t = Tokenizer::new();
        t.write_f64(rtol)
            .write_f64(atol)
            .write_u64(u64::from(equal_nan));
        t.write_str("isclose");
        let other = other.into();
        // In the element type, as NumPy (whose tolerances take the arrays' type).
        let (atol, rtol) = (T::from_f64(atol), T::from_f64(rtol));
        map_nodes::<bool>(
            "isclose",
            t,
            vec![self.node.clone(), other.node()],
            crate::ops::elementwise::binary_kernel(move |x: T, y: T| {
                Ok(if x.is_nan() || y.is_nan() {
                    equal_nan && x.is_nan() && y.is_nan()
                } else if x.is_infinite() || y.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= atol + rtol * y.abs()
                })
            }),
        )
    }

    /// Whether every pair is [`isclose`](Self::isclose) (`numpy.allclose`), as a lazy 0-d
    /// boolean array (compute it, or combine it with other lazy results).
    pub fn allclose<'a>(
        &self,
        other: impl Into<Operand<'a, T>>,
        rtol: f64,
        atol: f64,
        equal_nan: bool,
    ) -> Result<BlockArray<bool>> {
        self.isclose(other, rtol, atol, equal_nan)?.all(None, false)
    }

    /// The argument of each element as a complex number (`numpy.angle` of a real array): 0 for
    /// non-negative values and +0.0, π for negative values and -0.0; in degrees if `deg`.
    pub fn angle(&self, deg: bool) -> BlockArray<T> {
        let name = if deg { "angle-deg" } else { "angle" };
        self.map_builtin(name, move |v: T| {
            let a = T::zero().atan2(v);
            if deg { a.to_degrees() } else { a }
        })
    }

    /// The real part of a real array: the array itself (`numpy.real`).
    pub fn real(&self) -> BlockArray<T> {
        self.clone()
    }

    /// The imaginary part of a real array: zeros of its shape (`numpy.imag`).
    pub fn imag(&self) -> BlockArray<T> {
        self.map_builtin("imag", |_: T| T::zero())
    }

    /// The complex conjugate of a real array: the array itself (`numpy.conj`).
    pub fn conj(&self) -> BlockArray<T> {
        self.clone()
    }
}

impl<F: Float> BlockArray<num_complex::Complex<F>>
where
    num_complex::Complex<F>: Element,
{
    /// The argument of each element (`numpy.angle`), in radians, or degrees if `deg`.
    pub fn angle(&self, deg: bool) -> BlockArray<F> {
        let name = if deg { "angle-deg" } else { "angle" };
        self.map_builtin(name, move |z: num_complex::Complex<F>| {
            let a = z.im.atan2(z.re);
            if deg { a.to_degrees() } else { a }
        })
    }

    /// The real part (`numpy.real`; the same as [`re`](Self::re)).
    pub fn real(&self) -> BlockArray<F> {
        self.re()
    }

    /// The imaginary part (`numpy.imag`; the same as [`im`](Self::im)).
    pub fn imag(&self) -> BlockArray<F> {
        self.im()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalbn_and_frexp_are_exact_at_the_edges() {
        assert_eq!(scalbn(1.0, 1024), f64::INFINITY);
        assert_eq!(scalbn(1.0, 1023), 2f64.powi(1023));
        assert_eq!(scalbn(1.0, -1074), f64::from_bits(1));
        assert_eq!(scalbn(1.0, -1075), 0.0);
        assert_eq!(scalbn(1.5, -1074), f64::from_bits(2)); // ties to even
        assert_eq!(scalbn(f64::MAX, -2000 + 2000), f64::MAX);
        assert_eq!(scalbn(f64::from_bits(1), 2000), 2f64.powi(926));
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(-3.0), (-0.75, 2));
        assert_eq!(frexp(f64::from_bits(1)), (0.5, -1073));
        assert_eq!(frexp(-0.0).0.to_bits(), (-0.0f64).to_bits());
        for x in [1e-310, 3.7, -1e300, 5e-324, 0.1] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}");
            assert_eq!(scalbn(m, e.into()), x);
        }
    }

    #[test]
    fn next_after_steps_one_ulp() {
        assert_eq!(next_after(1.0f64, 2.0), 1.0 + f64::EPSILON);
        assert_eq!(next_after(1.0f32, 0.0), 1.0 - f32::EPSILON / 2.0);
        assert_eq!(next_after(0.0f64, -1.0), -f64::from_bits(1));
        assert_eq!(next_after(-1.0f64, -2.0), -(1.0 + f64::EPSILON));
        assert!(next_after(f64::NAN, 1.0).is_nan());
        assert_eq!(next_after(2.0f64, 2.0), 2.0);
    }
}
