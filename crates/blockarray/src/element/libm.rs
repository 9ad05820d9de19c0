//! `exp`, `log` and `pow` of `f64` without glibc's `errno` wrappers.
//!
//! # Design notes
//!
//! Since glibc 2.29, `exp`, `log` and `pow` (the `f64` ones) are thin wrappers: each calls the
//! function glibc picked for this CPU (through a second, indirect call) and then checks the
//! result to set `errno` on overflow or underflow. In an elementwise kernel the wrapper costs
//! about as much as the computation: in a C loop over 2²⁰ values, `exp` took 4.9–5.1 ns each
//! against 3.0–3.2 ns for the function it wraps (AMD EPYC, glibc 2.36), and the `fused_chain`
//! workload, `(exp(x) * x.T + 1).mean(axis=0)`, went from 0.42–0.44 to 0.36–0.37 s.
//!
//! glibc still exports the wrapped functions, as `__exp_finite`, `__log_finite` and
//! `__pow_finite` of version `GLIBC_2.15` (kept for binaries linked against older headers; a
//! library's ABI symbols are never removed). They are looked up once with `dlvsym`. The values
//! are bitwise those of `exp`, `log` and `pow`, because the wrappers return what these
//! functions return; only `errno` is not set, and nothing here reads it. So that a libm where
//! that is not so is never used, the functions are also compared with the wrapped ones, bit
//! for bit, on values covering every branch of glibc's code (zeros, subnormals, the overflow
//! and underflow thresholds, infinities, NaNs, negative arguments of `log` and `pow`) before
//! they replace them. Anywhere else (another C library, another OS, a symbol missing or a
//! comparison failing) the standard functions are used.
//!
//! Only these three have wrappers: `expf`, `logf`, `exp2` and `log2` are already the selected
//! functions themselves.

use super::Float;
use std::any::TypeId;
use std::ffi::CStr;
use std::sync::OnceLock;

type Unary = unsafe extern "C" fn(f64) -> f64;
type Binary = unsafe extern "C" fn(f64, f64) -> f64;

/// Arguments covering each branch of glibc's `exp` and `log` (and the ones `pow` combines).
const PROBES: [f64; 26] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1e-300,
    -1e-300,
    5e-324,
    2.2250738585072014e-308,
    1e-17,
    std::f64::consts::LN_2,
    3.7,
    -3.7,
    100.0,
    -700.0,
    -745.0,
    -745.2,
    -746.0,
    709.7,
    709.8,
    710.0,
    1e308,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MAX,
];

/// Bitwise equality, any NaN matching any NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lookup(name: &CStr) -> Option<*mut libc::c_void> {
    // SAFETY: both strings are NUL-terminated; `RTLD_DEFAULT` searches the objects already
    // loaded (libm is, as a dependency of std), and a missing symbol gives a null pointer.
    let f = unsafe { libc::dlvsym(libc::RTLD_DEFAULT, name.as_ptr(), c"GLIBC_2.15".as_ptr()) };
    (!f.is_null()).then_some(f)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lookup(_: &CStr) -> Option<*mut libc::c_void> {
    None
}

/// The unwrapped function `name` when it gives bitwise `reference`'s values on [`PROBES`].
fn unary(name: &CStr, reference: fn(f64) -> f64) -> Option<Unary> {
    // SAFETY: the symbol is glibc's `double name(double)` (its documented ABI).
    let f: Unary = unsafe { std::mem::transmute::<*mut libc::c_void, Unary>(lookup(name)?) };
    // SAFETY: `f` is a pure C function of one double.
    PROBES
        .iter()
        .all(|&x| same(unsafe { f(x) }, reference(x)))
        .then_some(f)
}

/// The unwrapped two-argument function `name` when it gives bitwise `reference`'s values on
/// every pair of [`PROBES`].
fn binary(name: &CStr, reference: fn(f64, f64) -> f64) -> Option<Binary> {
    // SAFETY: the symbol is glibc's `double name(double, double)` (its documented ABI).
    let f: Binary = unsafe { std::mem::transmute::<*mut libc::c_void, Binary>(lookup(name)?) };
    let mut pairs = PROBES
        .iter()
        .flat_map(|&x| PROBES.iter().map(move |&y| (x, y)));
    // SAFETY: `f` is a pure C function of two doubles.
    pairs
        .all(|(x, y)| same(unsafe { f(x, y) }, reference(x, y)))
        .then_some(f)
}

/// `reference(x)` through the unwrapped function `name`, looked up (and checked) on first use.
#[inline]
fn call(cell: &OnceLock<Option<Unary>>, name: &CStr, reference: fn(f64) -> f64, x: f64) -> f64 {
    match cell.get_or_init(|| unary(name, reference)) {
        // SAFETY: checked against `reference` when it was looked up.
        Some(f) => unsafe { f(x) },
        None => reference(x),
    }
}

/// `e^x`, bitwise `f64::exp`.
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    static F: OnceLock<Option<Unary>> = OnceLock::new();
    call(&F, c"__exp_finite", f64::exp, x)
}

/// The natural logarithm, bitwise `f64::ln`.
#[inline]
pub(crate) fn ln(x: f64) -> f64 {
    static F: OnceLock<Option<Unary>> = OnceLock::new();
    call(&F, c"__log_finite", f64::ln, x)
}

/// `x^y`, bitwise `f64::powf`.
#[inline]
pub(crate) fn pow(x: f64, y: f64) -> f64 {
    static F: OnceLock<Option<Binary>> = OnceLock::new();
    match F.get_or_init(|| binary(c"__pow_finite", f64::powf)) {
        // SAFETY: checked against `f64::powf` when it was looked up.
        Some(f) => unsafe { f(x, y) },
        None => x.powf(y),
    }
}

/// `for_f64` of an `f64` (exact both ways), `other` of the other float types.
#[inline]
fn by_type<T: Float>(v: T, for_f64: fn(f64) -> f64, other: fn(T) -> T) -> T {
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        T::from_f64(for_f64(v.as_f64()))
    } else {
        other(v)
    }
}

/// [`exp`] for `f64`, `exp` for the other float types.
#[inline]
pub(crate) fn exp_of<T: Float>(v: T) -> T {
    by_type(v, exp, num_traits::Float::exp)
}

/// [`ln`] for `f64`, `ln` for the other float types.
#[inline]
pub(crate) fn ln_of<T: Float>(v: T) -> T {
    by_type(v, ln, num_traits::Float::ln)
}

/// [`pow`] for `f64`, `powf` for the other float types.
#[inline]
pub(crate) fn pow_of<T: Float>(x: T, y: T) -> T {
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        T::from_f64(pow(x.as_f64(), y.as_f64()))
    } else {
        x.powf(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values across the whole range, from a fixed sequence of bit patterns.
    fn values(n: usize) -> impl Iterator<Item = f64> {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        (0..n).map(move |_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            f64::from_bits(s)
        })
    }

    #[test]
    fn the_unwrapped_functions_give_the_standard_values() {
        // Arbitrary bit patterns (every exponent), and the ranges kernels mostly see.
        let spread = values(200_000);
        let small = values(200_000).map(|v| (v.to_bits() >> 11) as f64 / (1u64 << 53) as f64);
        for x in spread.chain(small.flat_map(|u| [u, 20.0 * u - 10.0, 1500.0 * u - 750.0])) {
            assert!(same(exp(x), x.exp()), "exp({x:e})");
            assert!(same(ln(x), x.ln()), "ln({x:e})");
            assert!(same(pow(x, 1.5), x.powf(1.5)), "pow({x:e}, 1.5)");
            assert!(same(pow(2.5, x), 2.5f64.powf(x)), "pow(2.5, {x:e})");
        }
        for &x in &PROBES {
            for &y in &PROBES {
                assert!(same(pow(x, y), x.powf(y)), "pow({x:e}, {y:e})");
            }
        }
    }

    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    #[test]
    fn glibc_gives_the_unwrapped_functions_here() {
        // On this project's targets the faster path is the one in use (the test above would
        // pass with the fallbacks too).
        assert!(unary(c"__exp_finite", f64::exp).is_some());
        assert!(unary(c"__log_finite", f64::ln).is_some());
        assert!(binary(c"__pow_finite", f64::powf).is_some());
    }

    #[test]
    fn a_function_that_differs_is_refused() {
        assert!(unary(c"__exp_finite", |x| x.exp() * (1.0 + f64::EPSILON)).is_none());
        assert!(unary(c"no_such_function_anywhere", f64::exp).is_none());
        assert!(binary(c"__pow_finite", |x, y| x.powf(y) * (1.0 + f64::EPSILON)).is_none());
        assert!(binary(c"no_such_function_anywhere", f64::powf).is_none());
    }
}
