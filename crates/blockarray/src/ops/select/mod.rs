//! Selection and ordering: [`topk`] (the k largest or smallest along an axis), [`quantile`]
//! (exact percentiles, quantiles and medians), [`sort`] (sorting and partitioning along an
//! axis, out of core).
//!
//! All of them order elements as NumPy's `sort` does: NaN after every number (whatever its
//! sign or payload), `-0.0` equal to `0.0`. [`SortKey`] maps each element to a `u64` whose
//! unsigned order is that order; ties between equal keys are broken by position, so results
//! are deterministic whatever the chunking and the scheduler.

pub mod quantile;
pub mod sort;
pub mod topk;

use crate::element::{Float, Real};

/// Refuses `lanes` lanes selected one by one, each reading `per_lane` blocks, when together
/// they pass [`MAX_BUILD_TASKS`](crate::MAX_BUILD_TASKS): each lane is a sub-graph of its own,
/// built when the expression is, so too many would exhaust memory before any limit on tasks
/// is checked.
pub(crate) fn check_lane_graphs(op: &str, lanes: &[usize], per_lane: usize) -> crate::Result<()> {
    let count = lanes.iter().fold(1usize, |a, &n| a.saturating_mul(n));
    crate::check_build_tasks(
        op,
        count.saturating_mul(per_lane.max(1)),
        || {
            format!(
                "{count} lanes (kept axes of shape {}), each too long for one task and read \
                 from {per_lane} blocks",
                crate::error::fmt_shape(lanes)
            )
        },
        "select along fewer lanes (slice the array first) or shorter ones",
    )
}

/// Element types that can be sorted and selected: `f32`, `f64`, `i8`, `i16`, `i32`, `i64`, `u8`,
/// `u16`, `u32`, `u64`.
///
/// [`key`](Self::key) maps an element to a `u64` whose unsigned order is NumPy's sort order
/// (NaN last, `-0.0 == 0.0`), using the top [`KEY_BITS`](Self::KEY_BITS) bits, so that
/// comparisons and radix passes work on plain integers.
///
/// ```
/// use blockarray::SortKey;
/// assert!((-1.5f64).key() < 0.0f64.key());
/// assert_eq!((-0.0f64).key(), 0.0f64.key());
/// assert!(f64::INFINITY.key() < f64::NAN.key());
/// assert!((-3i32).key() < 2i32.key());
/// assert_eq!(f64::from_key(2.5f64.key()), 2.5);
/// ```
pub trait SortKey: Real {
    /// How many of the key's bits (from the top) can differ: the type's width (64 for `f64`,
    /// `i64` and `u64`, 32 for `f32`, `i32` and `u32`, …).
    const KEY_BITS: u32;
    /// The type quantiles of this type are computed in (NumPy: `float32` for `float32`,
    /// `float64` otherwise).
    type Quantile: Float;
    /// The order key.
    fn key(self) -> u64;
    /// The element of a key (`-0.0` comes back as `0.0`, every NaN as the same NaN).
    fn from_key(key: u64) -> Self;
    /// The value in the quantile type.
    fn to_quantile(self) -> Self::Quantile;
}

const TOP: u64 = 1 << 63;

impl SortKey for f64 {
    const KEY_BITS: u32 = 64;
    type Quantile = f64;
    #[inline]
    fn key(self) -> u64 {
        // Branch-free: `+ 0.0` turns -0.0 into 0.0; a negative number's bits are inverted, a
        // positive one's sign bit set; NaN maps to the largest key.
        let b = (self + 0.0).to_bits();
        let flip = ((b as i64) >> 63) as u64 | TOP;
        let nan = u64::from(self.is_nan()).wrapping_neg();
        (b ^ flip) | nan
    }
    fn from_key(key: u64) -> f64 {
        if key == u64::MAX {
            f64::NAN
        } else if key & TOP != 0 {
            f64::from_bits(key & !TOP)
        } else {
            f64::from_bits(!key)
        }
    }
    fn to_quantile(self) -> f64 {
        self
    }
}

impl SortKey for f32 {
    const KEY_BITS: u32 = 32;
    type Quantile = f32;
    #[inline]
    fn key(self) -> u64 {
        if self.is_nan() {
            return u64::from(u32::MAX) << 32;
        }
        let b = (self + 0.0).to_bits();
        let k = if b & (1 << 31) != 0 {
            !b
        } else {
            b | (1 << 31)
        };
        u64::from(k) << 32
    }
    fn from_key(key: u64) -> f32 {
        let k = (key >> 32) as u32;
        if k == u32::MAX {
            f32::NAN
        } else if k & (1 << 31) != 0 {
            f32::from_bits(k & !(1 << 31))
        } else {
            f32::from_bits(!k)
        }
    }
    fn to_quantile(self) -> f32 {
        self
    }
}

impl SortKey for i64 {
    const KEY_BITS: u32 = 64;
    type Quantile = f64;
    #[inline]
    fn key(self) -> u64 {
        (self as u64) ^ TOP
    }
    fn from_key(key: u64) -> i64 {
        (key ^ TOP) as i64
    }
    fn to_quantile(self) -> f64 {
        self as f64
    }
}

impl SortKey for i32 {
    const KEY_BITS: u32 = 32;
    type Quantile = f64;
    #[inline]
    fn key(self) -> u64 {
        u64::from((self as u32) ^ (1 << 31)) << 32
    }
    fn from_key(key: u64) -> i32 {
        (((key >> 32) as u32) ^ (1 << 31)) as i32
    }
    fn to_quantile(self) -> f64 {
        f64::from(self)
    }
}

impl SortKey for u8 {
    const KEY_BITS: u32 = 8;
    type Quantile = f64;
    #[inline]
    fn key(self) -> u64 {
        u64::from(self) << 56
    }
    fn from_key(key: u64) -> u8 {
        (key >> 56) as u8
    }
    fn to_quantile(self) -> f64 {
        f64::from(self)
    }
}

/// Register the partials of the selections with [`dag_core::wire`] (distributed runs).
pub(crate) fn register_wire() {
    topk::register_wire::<f32>();
    topk::register_wire::<f64>();
    topk::register_wire::<i8>();
    topk::register_wire::<i16>();
    topk::register_wire::<i32>();
    topk::register_wire::<i64>();
    topk::register_wire::<u8>();
    topk::register_wire::<u16>();
    topk::register_wire::<u32>();
    topk::register_wire::<u64>();
    quantile::register_wire();
    sort::register_wire();
}

/// The other signed integers: the sign bit flipped, the key in the top bits.
macro_rules! signed_key {
    ($($t:ty => $u:ty),*) => {$(
        impl SortKey for $t {
            const KEY_BITS: u32 = <$t>::BITS;
            type Quantile = f64;
            #[inline]
            fn key(self) -> u64 {
                u64::from((self as $u) ^ (1 << (<$t>::BITS - 1))) << (64 - <$t>::BITS)
            }
            fn from_key(key: u64) -> $t {
                (((key >> (64 - <$t>::BITS)) as $u) ^ (1 << (<$t>::BITS - 1))) as $t
            }
            fn to_quantile(self) -> f64 {
                f64::from(self)
            }
        }
    )*};
}
signed_key!(i8 => u8, i16 => u16);

/// The other unsigned integers: the value in the top bits.
macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            const KEY_BITS: u32 = <$t>::BITS;
            type Quantile = f64;
            #[inline]
            fn key(self) -> u64 {
                u64::from(self) << (64 - <$t>::BITS)
            }
            fn from_key(key: u64) -> $t {
                (key >> (64 - <$t>::BITS)) as $t
            }
            fn to_quantile(self) -> f64 {
                self as f64
            }
        }
    )*};
}
unsigned_key!(u16, u32, u64);

/// The block with `axis` moved last, in standard layout (borrowed when it already is): its rows
/// are the lanes along `axis`, in the C order of the other axes.
pub(crate) fn axis_last<T: Clone>(
    block: &ndarray::ArrayD<T>,
    axis: usize,
) -> ndarray::CowArray<'_, T, ndarray::IxDyn> {
    let nd = block.ndim();
    let mut perm: Vec<usize> = (0..nd).filter(|&a| a != axis).collect();
    perm.push(axis);
    let moved = block.view().permuted_axes(ndarray::IxDyn(&perm));
    if moved.is_standard_layout() {
        moved.into()
    } else {
        moved.as_standard_layout().into_owned().into()
    }
}

/// The inverse of [`axis_last`]: an array whose last axis is `axis` of the result, of the
/// other axes' shape `outer` (C order) and lane length `len`, with the axis moved back, in
/// standard layout.
pub(crate) fn axis_back<T: Clone>(
    data: Vec<T>,
    outer: &[usize],
    len: usize,
    axis: usize,
) -> ndarray::ArrayD<T> {
    let mut shape = outer.to_vec();
    shape.push(len);
    let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), data)
        .expect("the lanes fill the shape");
    let nd = shape.len();
    if axis + 1 == nd {
        return a;
    }
    // Output axis k is input axis perm[k]: the last axis goes back to `axis`.
    let perm: Vec<usize> = (0..nd)
        .map(|k| match k.cmp(&axis) {
            std::cmp::Ordering::Less => k,
            std::cmp::Ordering::Equal => nd - 1,
            std::cmp::Ordering::Greater => k - 1,
        })
        .collect();
    a.permuted_axes(ndarray::IxDyn(&perm))
        .as_standard_layout()
        .into_owned()
}

#[cfg(test)]
mod key_tests {
    use super::SortKey;

    fn check<T: SortKey>(vals: &[T]) {
        for w in vals.windows(2) {
            assert!(w[0].key() < w[1].key(), "{:?} < {:?}", w[0], w[1]);
        }
        for &v in vals {
            assert_eq!(T::from_key(v.key()), v);
        }
    }

    #[test]
    fn integer_keys_keep_order_and_round_trip() {
        check(&[i8::MIN, -1, 0, 1, i8::MAX]);
        check(&[i16::MIN, -300, -1, 0, 7, i16::MAX]);
        check(&[0u16, 1, 40_000, u16::MAX]);
        check(&[0u32, 5, 1 << 31, u32::MAX]);
        check(&[0u64, 1, 1 << 63, u64::MAX]);
    }
}
