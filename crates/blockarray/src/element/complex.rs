//! Complex division and the complex functions whose textbook formulas lose the answer at the
//! edges, written as NumPy's loops compute them (C99 Annex G for `exp`, `tanh`, `sqrt`):
//!
//! - `a / b` by Smith's algorithm: `(a·conj b)/|b|²` overflows or underflows `|b|²` for large
//!   or small `b` (NaN or 0 where NumPy has the quotient, already at `1e20` for `f32`);
//! - `exp(x + 0i)` is `exp(x) + 0i` (`exp(x)·sin 0` would be `inf·0 = NaN` once `exp(x)`
//!   overflows), and `exp(x)` is taken in two halves where only it overflows;
//! - `tanh` by Kahan's formula, `±1 + 4·sin y·cos y·e^{-2|x|} i` for large `|x|` (the quotient
//!   of two overflowing terms gave NaN), and `tan(z) = -i·tanh(iz)`;
//! - `log`'s real part `½·log1p((|z|max - 1)(|z|max + 1) + |z|min²)` near the unit circle
//!   (`ln |z|` there cancels to 0);
//! - `sqrt` as `t = √((|x| + |z|)/2)` and `|y|/(2t)`, so neither part cancels.

use num_complex::Complex;
use num_traits::Float;

/// `v` in `F` (small exact constants).
fn konst<F: Float>(v: f64) -> F {
    F::from(v).expect("a float type holds small constants")
}

/// `a / b` (NumPy's loop: Smith's algorithm; a zero divisor gives complex inf or NaN).
pub(crate) fn div<F: Float>(a: Complex<F>, b: Complex<F>) -> Complex<F> {
    let (ar, ai, br, bi) = (a.re, a.im, b.re, b.im);
    if br.abs() >= bi.abs() {
        if br == F::zero() && bi == F::zero() {
            return Complex::new(ar / br.abs(), ai / br.abs());
        }
        let rat = bi / br;
        let scl = F::one() / (br + bi * rat);
        Complex::new((ar + ai * rat) * scl, (ai - ar * rat) * scl)
    } else {
        let rat = br / bi;
        let scl = F::one() / (bi + br * rat);
        Complex::new((ar * rat + ai) * scl, (ai * rat - ar) * scl)
    }
}

/// `e^z`.
pub(crate) fn exp<F: Float>(z: Complex<F>) -> Complex<F> {
    let (x, y) = (z.re, z.im);
    if y == F::zero() {
        return Complex::new(x.exp(), y);
    }
    if x.is_infinite() {
        return match (x > F::zero(), y.is_finite()) {
            (true, true) => Complex::new(x * y.cos(), x * y.sin()),
            (true, false) => Complex::new(x, F::nan()),
            (false, true) => Complex::new(F::zero() * y.cos(), F::zero() * y.sin()),
            (false, false) => Complex::new(F::zero(), F::zero()),
        };
    }
    let (s, c) = y.sin_cos();
    if x > F::max_value().ln() {
        // e^x overflows but e^x·cos y may not: two halves.
        let h = (x / konst(2.0)).exp();
        return Complex::new(h * c * h, h * s * h);
    }
    let r = x.exp();
    Complex::new(r * c, r * s)
}

/// `tanh z` (Kahan's formula).
pub(crate) fn tanh<F: Float>(z: Complex<F>) -> Complex<F> {
    let (x, y) = (z.re, z.im);
    let two: F = konst(2.0);
    if !x.is_finite() {
        if x.is_nan() {
            return Complex::new(x, if y == F::zero() { y } else { x * y });
        }
        let im = if y.is_infinite() {
            y
        } else {
            y.sin() * y.cos()
        };
        return Complex::new(F::one().copysign(x), F::zero().copysign(im));
    }
    if !y.is_finite() {
        return Complex::new(F::nan(), F::nan());
    }
    // Past this, tanh x rounds to ±1 in F (22 for f64, 9 for f32: where e^{-2|x|} < ε/4).
    let big = -(F::epsilon() / konst(4.0)).ln() / two;
    if x.abs() >= big {
        let e = (-x.abs()).exp();
        return Complex::new(
            F::one().copysign(x),
            konst::<F>(4.0) * y.sin() * y.cos() * e * e,
        );
    }
    let t = y.tan();
    let beta = F::one() + t * t;
    let s = x.sinh();
    let rho = (F::one() + s * s).sqrt();
    let denom = F::one() + beta * s * s;
    Complex::new(beta * rho * s / denom, t / denom)
}

/// `tan z = -i·tanh(iz)`.
pub(crate) fn tan<F: Float>(z: Complex<F>) -> Complex<F> {
    let w = tanh(Complex::new(-z.im, z.re));
    Complex::new(w.im, -w.re)
}

/// `ln z`, the principal branch.
pub(crate) fn log<F: Float>(z: Complex<F>) -> Complex<F> {
    let (a, b) = (z.re.abs(), z.im.abs());
    let (big, small) = if a >= b { (a, b) } else { (b, a) };
    let half: F = konst(0.5);
    let re = if big.is_finite() && small.is_finite() && big >= half && big <= konst(2.0) {
        half * ((big - F::one()) * (big + F::one()) + small * small).ln_1p()
    } else {
        a.hypot(b).ln()
    };
    Complex::new(re, z.im.atan2(z.re))
}

/// `√z`, the principal branch.
pub(crate) fn sqrt<F: Float>(z: Complex<F>) -> Complex<F> {
    let (x, y) = (z.re, z.im);
    if x == F::zero() && y == F::zero() {
        return Complex::new(F::zero(), y);
    }
    if y.is_infinite() {
        return Complex::new(F::infinity(), y);
    }
    if x.is_nan() {
        return Complex::new(x, F::nan());
    }
    if x.is_infinite() {
        // `y` is finite or NaN here: a zero part, or NaN.
        let zero = if y.is_nan() { y } else { F::zero() };
        return if x < F::zero() {
            Complex::new(zero.abs(), x.abs().copysign(y))
        } else {
            Complex::new(x, zero.copysign(y))
        };
    }
    // Scaled by 1/4 near the top of the range, so that |x| + |z| cannot overflow.
    let four: F = konst(4.0);
    let (x, y, scale) = if x.abs() >= F::max_value() / four || y.abs() >= F::max_value() / four {
        (x / four, y / four, konst(2.0))
    } else {
        (x, y, F::one())
    };
    let two: F = konst(2.0);
    let t = ((x.abs() + x.hypot(y)) / two).sqrt();
    if x >= F::zero() {
        Complex::new(t * scale, y / (two * t) * scale)
    } else {
        Complex::new(y.abs() / (two * t) * scale, t.copysign(y) * scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> f64 {
        // A C99 hex float such as "-0x1.21969c4953cd1p+0", "inf", "-0x0.0p+0".
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let v = if s == "inf" {
            f64::INFINITY
        } else {
            let s = s.strip_prefix("0x").expect("hex");
            let (mant, exp) = s.split_once('p').expect("exponent");
            let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
            let mut m = u64::from_str_radix(int, 16).unwrap() as f64;
            for (k, d) in frac.chars().enumerate() {
                m += d.to_digit(16).unwrap() as f64 / 16f64.powi(k as i32 + 1);
            }
            m * 2f64.powi(exp.parse().unwrap())
        };
        if neg { -v } else { v }
    }

    /// Within `ulps` units in the last place (exact for zeros, infinities and NaN).
    fn close(got: f64, want: f64, ulps: u64) -> bool {
        if want.is_nan() || got.is_nan() {
            return want.is_nan() && got.is_nan();
        }
        if !want.is_finite() || want == 0.0 {
            return got == want && got.is_sign_negative() == want.is_sign_negative();
        }
        let ord = |v: f64| {
            let b = v.to_bits() as i64;
            if b < 0 { i64::MIN - b } else { b }
        };
        ord(got).abs_diff(ord(want)) <= ulps
    }

    /// Inputs and NumPy 2.4.6's results (`np.exp(z)` etc. printed with `float.hex`).
    const Z: [(f64, f64); 12] = [
        (710.0, 0.0),
        (1.0, 2.0),
        (-3.0, 0.5),
        (0.5, 400.0),
        (400.0, 0.0),
        (1.0, 1e-10),
        (-1.0, 1e-20),
        (0.0, 0.0),
        (-4.0, 0.0),
        (1e308, 1e308),
        (3.0, -4.0),
        (-0.0, -2.0),
    ];

    type Row = [(&'static str, &'static str); 12];

    const EXP: Row = [
        ("inf", "0x0.0p+0"),
        ("-0x1.21969c4953cd1p+0", "0x1.3c618a2274afdp+1"),
        ("0x1.65ed51168b4a7p-5", "0x1.8712a5d409a97p-6"),
        ("-0x1.bb6d2a8b7ed1ap-1", "-0x1.672658504ad9ap+0"),
        ("0x1.0e398d7d01704p+577", "0x0.0p+0"),
        ("0x1.5bf0a8b145769p+1", "0x1.2ae0d4d8fadc6p-32"),
        ("0x1.78b56362cef38p-2", "0x1.15f63b9820447p-68"),
        ("0x1.0000000000000p+0", "0x0.0p+0"),
        ("0x1.2c155b8213cf4p-6", "0x0.0p+0"),
        ("-inf", "inf"),
        ("-0x1.a41efdb2650efp+3", "0x1.e66cd389cd7f4p+3"),
        ("-0x1.aa22657537205p-2", "-0x1.d18f6ead1b446p-1"),
    ];
    const TANH: Row = [
        ("0x1.0000000000000p+0", "0x0.0p+0"),
        ("0x1.2aaf3a33e83dep+0", "-0x1.f29a36a04911ep-3"),
        ("-0x1.fea04029505aap-1", "0x1.10a86027652f4p-8"),
        ("0x1.12c31230f0d1fp+0", "0x1.a205280e653d7p-1"),
        ("0x1.0000000000000p+0", "0x0.0p+0"),
        ("0x1.85efab514f394p-1", "0x1.7169d07dd2a8ap-35"),
        ("-0x1.85efab514f394p-1", "0x1.3d52da1e46566p-68"),
        ("0x0.0p+0", "0x0.0p+0"),
        ("-0x1.ffa81708a0b42p-1", "0x0.0p+0"),
        ("0x1.0000000000000p+0", "-0x0.0p+0"),
        ("0x1.002e800a343fcp+0", "-0x1.41aae7e15657cp-8"),
        ("-0x0.0p+0", "0x1.17af62e0950f8p+1"),
    ];
    const TAN: Row = [
        ("0x1.f9bd03136287cp-15", "0x0.0p+0"),
        ("0x1.14fea2c65a0c4p-5", "0x1.03c983b18a141p+0"),
        ("0x1.c93327a9bee67p-4", "0x1.e0bcbdf0debbbp-2"),
        ("0x0.0p+0", "0x1.0000000000000p+0"),
        ("0x1.9eb0bef65b597p+0", "0x0.0p+0"),
        ("0x1.8eb245cbee3a5p+0", "0x1.78a3c874b97a1p-32"),
        ("-0x1.8eb245cbee3a5p+0", "0x1.4387f6849fa80p-65"),
        ("0x0.0p+0", "0x0.0p+0"),
        ("-0x1.2866f9be4de13p+0", "0x0.0p+0"),
        ("-0x0.0p+0", "0x1.0000000000000p+0"),
        ("-0x1.88e4ba4d1d311p-13", "-0x1.ffab9685bafdap-1"),
        ("-0x0.0p+0", "-0x1.ed9505e1bc3d3p-1"),
    ];
    const LOG: Row = [
        ("0x1.a42d4d1ff8154p+2", "0x0.0p+0"),
        ("0x1.9c041f7ed8d34p-1", "0x1.1b6e192ebbe44p+0"),
        ("0x1.1cc076ebdaac5p+0", "0x1.7cfc1dc00636ap+1"),
        ("0x1.7f742afe1a6b8p+2", "0x1.91cdc9c1efecfp+0"),
        ("0x1.7f7427b73e391p+2", "0x0.0p+0"),
        ("0x1.79ca10c924224p-68", "0x1.b7cdfd9d7bdbbp-34"),
        ("0x1.16c262777579cp-134", "0x1.921fb54442d18p+1"),
        ("-inf", "0x0.0p+0"),
        ("0x1.62e42fefa39efp+0", "0x1.921fb54442d18p+1"),
        ("0x1.62c579e3609a5p+9", "0x1.921fb54442d18p-1"),
        ("0x1.9c041f7ed8d33p+0", "-0x1.dac670561bb4fp-1"),
        ("0x1.62e42fefa39efp-1", "-0x1.921fb54442d18p+0"),
    ];
    const SQRT: Row = [
        ("0x1.aa554ccb17776p+4", "0x0.0p+0"),
        ("0x1.45a3146a88456p+0", "0x1.92826ef258d1bp-1"),
        ("0x1.2696d68098959p-3", "0x1.bcee727bb9ce5p+0"),
        ("0x1.c4d4ce2d34461p+3", "0x1.c443fd6c7ed30p+3"),
        ("0x1.4000000000000p+4", "0x0.0p+0"),
        ("0x1.0000000000000p+0", "0x1.b7cdfd9d7bdbbp-35"),
        ("0x1.79ca10c924223p-68", "0x1.0000000000000p+0"),
        ("0x0.0p+0", "0x0.0p+0"),
        ("0x0.0p+0", "0x1.0000000000000p+1"),
        ("0x1.a38d1f21aa181p+511", "0x1.5b9150ea5fa22p+510"),
        ("0x1.0000000000000p+1", "-0x1.0000000000000p+0"),
        ("0x1.0000000000000p+0", "-0x1.0000000000000p+0"),
    ];

    #[test]
    fn functions_match_numpy() {
        type Fun = fn(Complex<f64>) -> Complex<f64>;
        let table: [(&str, Fun, &Row); 5] = [
            ("exp", exp, &EXP),
            ("tanh", tanh, &TANH),
            ("tan", tan, &TAN),
            ("log", log, &LOG),
            ("sqrt", sqrt, &SQRT),
        ];
        for (name, f, want) in table {
            for (&(re, im), &(wr, wi)) in Z.iter().zip(want.iter()) {
                let got = f(Complex::new(re, im));
                let (wr, wi) = (h(wr), h(wi));
                assert!(
                    close(got.re, wr, 4) && close(got.im, wi, 4),
                    "{name}({re} + {im}i) = {got}, NumPy {wr} + {wi}i"
                );
            }
        }
    }

    #[test]
    fn f32_functions_keep_large_and_small_parts() {
        // exp and tanh where the textbook formulas give NaN in f32.
        assert_eq!(
            exp(Complex::new(89.0f32, 0.0)),
            Complex::new(f32::INFINITY, 0.0)
        );
        assert_eq!(tanh(Complex::new(45.0f32, 0.0)), Complex::new(1.0, 0.0));
        let q = div(Complex::new(1.0f32, 1.0), Complex::new(1e20, 1e20));
        assert_eq!(q, Complex::new(1e-20, 0.0));
    }

    #[test]
    fn division_matches_numpy() {
        let c = Complex::new;
        // NumPy 2.4.6: [1+0j, 1e-200+0j, inf+nanj, (0.44-0.08j)].
        assert_eq!(div(c(1e-200, 1e-200), c(1e-200, 1e-200)), c(1.0, 0.0));
        assert_eq!(div(c(1.0, 1.0), c(1e200, 1e200)), c(1e-200, 0.0));
        let z = div(c(1.0, 0.0), c(0.0, 0.0));
        assert!(z.re == f64::INFINITY && z.im.is_nan(), "{z}");
        let q = div(c(1.0, 2.0), c(3.0, 4.0));
        assert!(close(q.re, 0.44, 1) && close(q.im, 0.08, 1), "{q}");
    }
}
