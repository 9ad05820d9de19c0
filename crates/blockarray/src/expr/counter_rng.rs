//! The counter-based generator under [`random`](super::random): the bits of element `i`,
//! uniform values from them, and standard normal values by a ziggurat on the same bits, one
//! element at a time or a run of elements at once.
//!
//! # Design notes
//!
//! **One pure function per element.** Element `i` of the stream `key` draws the 64 bits
//! `counter_bits(key, i)` (SplitMix64's sequence started at `key`, one mix per value). Every
//! value below is a pure function of `(key, i)`, so no value depends on which block, thread or
//! process draws it, nor on what else is drawn.
//!
//! **Normal values: a ziggurat on the element's own bits.** The 256-layer ziggurat (Marsaglia
//! and Tsang; the tables in `ziggurat_tables.rs`) needs, in about 98.5 % of draws, one layer
//! index and one uniform: the low 8 bits of the element's bits pick the layer, the top 52 bits
//! give a symmetric uniform `u` in `(-1, 1)` (exactly: `(m + ½)·2⁻⁵¹` for a 52-bit `m` centred
//! on 0), and `x = u·X[layer]` is the value when `|x| < X[layer + 1]`. The remaining draws (the
//! tail beyond `R` and the wedges) run the classic rejection loop on a PCG generator seeded from
//! the element's bits, so they too depend on `(key, i)` alone.
//!
//! **Runs vectorise.** The fast path has no data-dependent branch: a run of elements is
//! computed in one loop that stores each first try and a bit mask of the rejected ones (64
//! elements per mask word), and a second loop visits the set bits only, redrawing those few
//! elements on the slow path. The first loop is compiled
//! three times — for AVX-512, for AVX2 and for the baseline — and chosen at run time. Every
//! step is an exact integer operation, an exact conversion or a single IEEE multiplication, and
//! Rust never contracts `a·b + c` into a fused multiply-add, so the three versions, and the
//! one-element function, give bitwise the same values.

#[path = "ziggurat_tables.rs"]
mod tables;

use tables::{F, R, X};

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a strong 64-bit mix of a counter.
#[inline(always)]
pub(super) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream key of a seed.
#[inline]
pub(super) fn stream_key(seed: u64) -> u64 {
    splitmix(seed ^ 0x5EED_5EED_5EED_5EED)
}

/// The random bits of element `i` (its flat index) of the stream `key`: SplitMix64's own
/// sequence (`mix(key + (i + 1)·γ)`, one mix per value) started at `key`, so any element can be
/// drawn on its own, in any order, by any block.
#[inline(always)]
pub(super) fn counter_bits(key: u64, i: u64) -> u64 {
    splitmix(key.wrapping_add(i.wrapping_mul(GAMMA)))
}

/// A uniform integer in `[0, span)` for element `i` (`span ≥ 1`): Lemire's multiply-shift of
/// the element's bits, with his rejection step, so every value is equally likely for any span
/// (without it, spans near 2⁶⁴ favour some values by up to 2 : 1). A rejected draw (probability
/// below `span / 2⁶⁴`) continues on a SplitMix64 stream of the element's own; accepted first
/// draws are the plain multiply-shift.
#[inline]
pub(super) fn below(key: u64, i: u64, span: u64) -> u64 {
    let bits = counter_bits(key, i);
    let mut m = u128::from(bits) * u128::from(span);
    if (m as u64) < span {
        let threshold = span.wrapping_neg() % span;
        let mut state = splitmix(bits ^ 0xBB67_AE85_84CA_A73B);
        while (m as u64) < threshold {
            state = state.wrapping_add(GAMMA);
            m = u128::from(splitmix(state)) * u128::from(span);
        }
    }
    (m >> 64) as u64
}

/// 53 random bits → `[0, 1)`.
#[inline(always)]
pub(super) fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// 53 random bits → the open interval `(0, 1)` (centres of the 2^53 cells), for inversions
/// whose inverse CDF is infinite at 0 or 1. The top cell's centre, `1 − 2⁻⁵⁴`, is not a
/// double and rounds to 1: it is kept at the largest double below 1 instead (Gumbel,
/// logistic and Laplace values were infinite there).
#[inline]
pub(super) fn open_unit(bits: u64) -> f64 {
    (((bits >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)).min(1.0 - f64::EPSILON / 2.0)
}

/// The top 52 of 64 bits → a uniform value in `(-1, 1)`, symmetric about 0: `(m + ½)·2⁻⁵¹`
/// for `m` in `[-2^51, 2^51)`, exact in 53 bits, as is the scaling.
#[inline(always)]
fn symmetric_unit(bits: u64) -> f64 {
    let m = (bits >> 12) as i64 - (1i64 << 51);
    (m as f64 + 0.5) * (1.0 / (1u64 << 51) as f64)
}

/// The ziggurat's first try from 64 bits: the layer (low 8 bits) and `x = u·X[layer]` with
/// `u` from the top 52 bits ([`symmetric_unit`]). Accepted when `|x| < X[layer + 1]`.
#[inline(always)]
fn first_try(bits: u64) -> (usize, f64) {
    let layer = (bits & 0xff) as usize;
    (layer, symmetric_unit(bits) * X[layer])
}

/// The standard normal value of element `i` of the stream `key`.
#[inline]
pub(super) fn standard_normal(key: u64, i: u64) -> f64 {
    let bits = counter_bits(key, i);
    let (layer, x) = first_try(bits);
    if x.abs() < X[layer + 1] {
        x
    } else {
        normal_rejected(bits, layer, x)
    }
}

/// The rest of the ziggurat when the first try from `bits` (layer `layer`, value `x`) fell
/// outside its layer's rectangle: the tail or wedge test for it, then fresh tries, all on a
/// SplitMix64 stream seeded from `bits`.
#[cold]
fn normal_rejected(bits: u64, mut layer: usize, mut x: f64) -> f64 {
    // A SplitMix64 stream of its own, started from a mix of the element's bits.
    let mut state = splitmix(bits ^ 0x6A09_E667_F3BC_C908);
    let mut next = move || {
        state = state.wrapping_add(GAMMA);
        splitmix(state)
    };
    loop {
        if layer == 0 {
            // The tail beyond R (Marsaglia's method), on the side of x.
            loop {
                let t = -open_unit(next()).ln() / R;
                let y = -open_unit(next()).ln();
                if y + y >= t * t {
                    return if x < 0.0 { -(R + t) } else { R + t };
                }
            }
        }
        let y = F[layer] + (F[layer + 1] - F[layer]) * unit(next());
        if y < (-0.5 * x * x).exp() {
            return x;
        }
        let bits = next();
        (layer, x) = first_try(bits);
        if x.abs() < X[layer + 1] {
            return x;
        }
    }
}

/// Define `fn $name(args)` from a loop body compiled for the best instruction set this CPU
/// has, chosen at run time: AVX-512 (F, DQ, VL: 64-bit multiplies and conversions in vector
/// registers), AVX2, or the baseline. The body must be exact integer and IEEE arithmetic (see
/// the design notes) so that every version gives the same bits.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub(super) fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                fn avx512($($arg: $ty),*) {
                    generic($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has the features `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above, for AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

multiversion! {
    /// `out[j]` = `low + (high - low)·u` for the uniform `[0, 1)` value `u` of element
    /// `first + j·step`, kept below `high` (when `low < high`): the product and sum round, and
    /// where `high - low` is small beside `low` they round up to `high` (half the values of
    /// `[2⁵², 2⁵² + 1)`).
    fn uniform_run(key: u64, first: u64, step: u64, low: f64, high: f64, out: &mut [f64]) {
        let width = high - low;
        let top = if low < high { high.next_down() } else { high };
        for (j, o) in out.iter_mut().enumerate() {
            let i = first.wrapping_add((j as u64).wrapping_mul(step));
            let v = low + width * unit(counter_bits(key, i));
            // (A compare and select, one `minpd`: `f64::min`'s NaN rule costs two more.)
            *o = if v < top { v } else { top };
        }
    }
}

multiversion! {
    /// The ziggurat's first try for elements `first + j·step`, `j < out.len()` (at most
    /// `64·rejected.len()` and `layers.len()`): `out[j]` is the first try's value, and bit
    /// `j % 64` of `rejected[j / 64]` is set where that value was rejected. Two loops: the
    /// bits, layers and uniforms (vectorised: 64-bit multiplies and conversions), then the
    /// table lookups and tests.
    fn normal_fast_run(
        key: u64,
        first: u64,
        step: u64,
        out: &mut [f64],
        layers: &mut [u8],
        rejected: &mut [u64]
    ) {
        for (j, (o, l)) in out.iter_mut().zip(layers.iter_mut()).enumerate() {
            let bits = counter_bits(key, first.wrapping_add((j as u64).wrapping_mul(step)));
            *l = bits as u8;
            *o = symmetric_unit(bits);
        }
        for ((group, ls), mask) in out.chunks_mut(64).zip(layers.chunks(64)).zip(rejected.iter_mut()) {
            let mut m = 0u64;
            for (j, (o, &l)) in group.iter_mut().zip(ls).enumerate() {
                let layer = usize::from(l);
                let x = *o * X[layer];
                *o = x;
                m |= u64::from(x.abs() >= X[layer + 1]) << j;
            }
            *mask = m;
        }
    }
}

/// `out[j]` = the standard normal value of element `first + j·step` (the same values as
/// [`standard_normal`]).
pub(super) fn normal_run(key: u64, first: u64, step: u64, out: &mut [f64]) {
    const RUN: usize = 1024;
    let mut rejected = [0u64; RUN / 64];
    let mut layers = [0u8; RUN];
    for (r, run) in out.chunks_mut(RUN).enumerate() {
        let start = first.wrapping_add(((r * RUN) as u64).wrapping_mul(step));
        normal_fast_run(key, start, step, run, &mut layers, &mut rejected);
        // About one element in 70 was rejected: visit the set bits only.
        for (g, &mask) in rejected.iter().enumerate().take(run.len().div_ceil(64)) {
            let mut m = mask;
            while m != 0 {
                let j = g * 64 + m.trailing_zeros() as usize;
                m &= m - 1;
                let bits = counter_bits(key, start.wrapping_add((j as u64).wrapping_mul(step)));
                let (layer, x) = first_try(bits);
                run[j] = normal_rejected(bits, layer, x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_follow_the_recurrence() {
        let f = |x: f64| (-0.5 * x * x).exp();
        assert_eq!(X[1], R);
        assert!((X[0] - tables::V / f(R)).abs() <= 1e-15 * X[0]);
        for i in 1..255 {
            let next = (-2.0 * (tables::V / X[i] + f(X[i])).ln()).sqrt();
            assert!((X[i + 1] - next).abs() <= 1e-13 * next, "X[{}]", i + 1);
        }
        assert_eq!(X[256], 0.0);
        for i in 0..257 {
            assert!((F[i] - f(X[i])).abs() <= 1e-15, "F[{i}]");
        }
    }

    /// The open unit interval is open at both ends: the top cell's centre rounded to 1.
    #[test]
    fn open_units_stay_inside_the_interval() {
        assert!(open_unit(u64::MAX) < 1.0);
        assert!(open_unit(0) > 0.0);
        assert_eq!(open_unit(1 << 11), 1.5 / (1u64 << 53) as f64);
    }

    #[test]
    fn runs_equal_single_elements_bit_for_bit() {
        let key = stream_key(7);
        for (first, step, n) in [(0u64, 1u64, 1000usize), (12345, 3, 777), (1 << 40, 1, 64)] {
            let mut normal = vec![0.0; n];
            normal_run(key, first, step, &mut normal);
            let mut uniform = vec![0.0; n];
            uniform_run(key, first, step, -2.0, 5.0, &mut uniform);
            for j in 0..n {
                let i = first + j as u64 * step;
                assert_eq!(
                    normal[j].to_bits(),
                    standard_normal(key, i).to_bits(),
                    "{i}"
                );
                let u = -2.0 + 7.0 * unit(counter_bits(key, i));
                assert_eq!(uniform[j].to_bits(), u.to_bits(), "{i}");
            }
        }
    }

    #[test]
    fn normal_values_have_the_normal_moments_and_tails() {
        let key = stream_key(1);
        let n = 2_000_000;
        let mut z = vec![0.0; n];
        normal_run(key, 0, 1, &mut z);
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let kurt = z.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        // Standard errors: 1/sqrt(n) = 7e-4 for the mean, sqrt(2/n) = 1e-3 for the variance.
        assert!(mean.abs() < 4e-3, "mean {mean}");
        assert!((var - 1.0).abs() < 6e-3, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.03, "kurtosis {kurt}");
        // P(|z| > R) = 2.58e-4: about 516 of 2e6 come from the tail sampler.
        let tail = z.iter().filter(|v| v.abs() > R).count();
        assert!((400..650).contains(&tail), "tail count {tail}");
        // P(z > 1) = 0.158655
        let above = z.iter().filter(|&&v| v > 1.0).count() as f64 / n as f64;
        assert!((above - 0.158655).abs() < 1.5e-3, "P(z > 1) = {above}");
    }
}
