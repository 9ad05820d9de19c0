//! NumPy-semantics indexing math: slice arguments, their normalisation against an axis, and
//! the plans that map a slice or an index list onto the blocks of a chunked axis.
//!
//! * [`SliceArg`] and the [`s!`](crate::s) macro write NumPy indexing expressions:
//!   `s![..100, 500..100;-2]` is NumPy's `x[:100, 500:100:-2]` (not ndarray's `s!`, whose
//!   negative steps reverse the range instead).
//! * [`normalize_slice`] and [`normalize_index`] apply NumPy's rules against an axis length.
//! * [`expand_args`] resolves `Ellipsis` and pads with full slices; [`resolve_args`] also
//!   normalises every argument against a shape.
//! * [`plan_axis_slice`] and [`plan_take`] say which blocks of a chunked axis a slice or an
//!   index list reads, and how the output is chunked, with work proportional to the blocks
//!   touched (binary searches over prefix offsets).

use crate::error::{Error, Result};
use crate::plan::chunks::{Chunks, block_containing, prefix_offsets};
use std::fmt;
use std::ops::{Range, RangeFrom, RangeFull, RangeTo};

/// An integer usable as an index or a slice bound: converts to `isize`, saturating (a value
/// beyond `isize` is beyond any axis, so saturation keeps NumPy's meaning).
pub trait AsIndex: Copy {
    /// The value as `isize`, saturating at `isize::MIN` / `isize::MAX`.
    fn as_index(self) -> isize;
}

macro_rules! impl_as_index {
    ($($t:ty),*) => {$(
        impl AsIndex for $t {
            #[allow(unused_comparisons, unreachable_patterns)]
            fn as_index(self) -> isize {
                match isize::try_from(self) {
                    Ok(v) => v,
                    Err(_) if self < 0 => isize::MIN,
                    Err(_) => isize::MAX,
                }
            }
        }
    )*};
}
impl_as_index!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// A Rust range usable as a NumPy slice: `a..b`, `a..`, `..b`, `..` (bounds may be negative,
/// counting from the end).
pub trait SliceRange {
    /// The `(start, stop)` bounds, `None` where omitted.
    fn bounds(self) -> (Option<isize>, Option<isize>);
}

impl<T: AsIndex> SliceRange for Range<T> {
    fn bounds(self) -> (Option<isize>, Option<isize>) {
        (Some(self.start.as_index()), Some(self.end.as_index()))
    }
}

impl<T: AsIndex> SliceRange for RangeFrom<T> {
    fn bounds(self) -> (Option<isize>, Option<isize>) {
        (Some(self.start.as_index()), None)
    }
}

impl<T: AsIndex> SliceRange for RangeTo<T> {
    fn bounds(self) -> (Option<isize>, Option<isize>) {
        (None, Some(self.end.as_index()))
    }
}

impl SliceRange for RangeFull {
    fn bounds(self) -> (Option<isize>, Option<isize>) {
        (None, None)
    }
}

/// One argument of a NumPy indexing expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SliceArg {
    /// `start:stop:step`; omitted bounds are `None`; negative bounds count from the end.
    Range {
        /// First position (NumPy's default: 0, or the last for a negative step).
        start: Option<isize>,
        /// Position to stop before (NumPy's default: past the end in the step's direction).
        stop: Option<isize>,
        /// The step; negative walks backwards; 0 is an error when normalised.
        step: isize,
    },
    /// An integer index, which removes the axis; negative counts from the end.
    Index(isize),
    /// `np.newaxis`: inserts an axis of length 1.
    NewAxis,
    /// `...`: as many full slices as needed (at most one per expression).
    Ellipsis,
}

impl SliceArg {
    /// The full slice `:`.
    pub const FULL: SliceArg = SliceArg::Range {
        start: None,
        stop: None,
        step: 1,
    };

    /// The slice of `range` with `step`: `SliceArg::range(5.., -1)` is NumPy's `5::-1`. Used by
    /// [`s!`](crate::s) for `range;step`.
    pub fn range(range: impl SliceRange, step: impl AsIndex) -> SliceArg {
        let (start, stop) = range.bounds();
        SliceArg::Range {
            start,
            stop,
            step: step.as_index(),
        }
    }

    /// Whether this argument consumes an axis of the indexed array (a range or an index).
    pub fn consumes_axis(&self) -> bool {
        matches!(self, SliceArg::Range { .. } | SliceArg::Index(_))
    }
}

macro_rules! impl_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for SliceArg {
            fn from(i: $t) -> SliceArg {
                SliceArg::Index(i.as_index())
            }
        }
        impl From<Range<$t>> for SliceArg {
            fn from(r: Range<$t>) -> SliceArg {
                SliceArg::range(r, 1)
            }
        }
        impl From<RangeFrom<$t>> for SliceArg {
            fn from(r: RangeFrom<$t>) -> SliceArg {
                SliceArg::range(r, 1)
            }
        }
        impl From<RangeTo<$t>> for SliceArg {
            fn from(r: RangeTo<$t>) -> SliceArg {
                SliceArg::range(r, 1)
            }
        }
    )*};
}
impl_from_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl From<RangeFull> for SliceArg {
    fn from(_: RangeFull) -> SliceArg {
        SliceArg::FULL
    }
}

/// NumPy's text: `3`, `:`, `2:8:3`, `::-1`, `np.newaxis`, `...`.
impl fmt::Display for SliceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SliceArg::Index(i) => write!(f, "{i}"),
            SliceArg::NewAxis => f.write_str("np.newaxis"),
            SliceArg::Ellipsis => f.write_str("..."),
            SliceArg::Range { start, stop, step } => {
                if let Some(s) = start {
                    write!(f, "{s}")?;
                }
                f.write_str(":")?;
                if let Some(s) = stop {
                    write!(f, "{s}")?;
                }
                if *step != 1 {
                    write!(f, ":{step}")?;
                }
                Ok(())
            }
        }
    }
}

/// Builds a NumPy indexing expression, a `Vec<`[`SliceArg`]`>`, with NumPy's semantics.
///
/// | `s![…]` | NumPy |
/// | --- | --- |
/// | `s![3]`, `s![-1]` | `x[3]`, `x[-1]` |
/// | `s![5..]`, `s![..100]`, `s![-3..]`, `s![..]` | `x[5:]`, `x[:100]`, `x[-3:]`, `x[:]` |
/// | `s![..;-1]`, `s![500..100;-2]` | `x[::-1]`, `x[500:100:-2]` |
/// | `s![NewAxis, ..]` | `x[np.newaxis, :]` |
/// | `s![Ellipsis, 0]` | `x[..., 0]` |
///
/// Bounds and steps are any integer expressions (inclusive ranges `a..=b` are not accepted);
/// an existing [`SliceArg`] may appear as an element too. Unlike ndarray's `s!`, a negative step
/// keeps NumPy's meaning: `500..100;-2` starts at 500 and walks down to 102.
///
/// ```
/// use blockarray::{SliceArg, s};
///
/// let args = s![..100, 500..100;-2, 3, NewAxis, Ellipsis];
/// assert_eq!(args[0], SliceArg::Range { start: None, stop: Some(100), step: 1 });
/// assert_eq!(args[1], SliceArg::Range { start: Some(500), stop: Some(100), step: -2 });
/// assert_eq!(args[2], SliceArg::Index(3));
/// assert_eq!(args[3], SliceArg::NewAxis);
/// assert_eq!(args[4], SliceArg::Ellipsis);
/// ```
#[macro_export]
macro_rules! s {
    (@acc [$($acc:expr,)*]) => {{
        let args: ::std::vec::Vec<$crate::SliceArg> = ::std::vec![$($acc,)*];
        args
    }};
    (@acc [$($acc:expr,)*] NewAxis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($acc,)* $crate::SliceArg::NewAxis,] $($($rest)*)?)
    };
    (@acc [$($acc:expr,)*] Ellipsis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($acc,)* $crate::SliceArg::Ellipsis,] $($($rest)*)?)
    };
    // `500..100` is a meaningful NumPy slice (empty, or walked backwards with a negative step):
    // silence clippy's deny-by-default `reversed_empty_ranges` on the user's range.
    (@acc [$($acc:expr,)*] $r:expr ; $step:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($acc,)* $crate::SliceArg::range(
            {
                #[allow(clippy::reversed_empty_ranges)]
                let range = $r;
                range
            },
            $step,
        ),] $($($rest)*)?)
    };
    (@acc [$($acc:expr,)*] $r:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($acc,)* <$crate::SliceArg as ::core::convert::From<_>>::from(
            {
                #[allow(clippy::reversed_empty_ranges)]
                let arg = $r;
                arg
            }
        ),] $($($rest)*)?)
    };
    ($($t:tt)*) => {
        $crate::s!(@acc [] $($t)*)
    };
}

/// A slice normalised against an axis: `len` positions `start, start + step, …`, all within the
/// axis. An empty slice has `start == 0` and `len == 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NormSlice {
    /// The first selected position (the largest one for a negative step).
    pub start: usize,
    /// The number of selected positions.
    pub len: usize,
    /// The distance between consecutive positions; never 0.
    pub step: isize,
}

impl NormSlice {
    /// The whole axis of length `len`, forwards.
    pub fn full(len: usize) -> NormSlice {
        NormSlice {
            start: 0,
            len,
            step: 1,
        }
    }

    /// Whether no position is selected.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `k`-th selected position, `None` past the end (or when the slice is malformed and the
    /// position would be negative or overflow).
    pub fn get(&self, k: usize) -> Option<usize> {
        if k >= self.len {
            return None;
        }
        let pos = (k as i128)
            .checked_mul(self.step as i128)
            .and_then(|d| (self.start as i128).checked_add(d))?;
        usize::try_from(pos).ok()
    }

    /// The last selected position.
    pub fn last(&self) -> Option<usize> {
        self.len.checked_sub(1).and_then(|k| self.get(k))
    }

    /// The smallest range of positions holding every selected one (empty when none is).
    pub fn span(&self) -> Range<usize> {
        match (self.get(0), self.last()) {
            (Some(a), Some(b)) => a.min(b)..a.max(b) + 1,
            _ => 0..0,
        }
    }

    /// An iterator over the selected positions, in slice order.
    pub fn positions(&self) -> Positions {
        Positions {
            slice: *self,
            front: 0,
            back: self.len,
        }
    }
}

/// An iterator over the positions of a [`NormSlice`].
#[derive(Clone, Debug)]
pub struct Positions {
    slice: NormSlice,
    front: usize,
    back: usize,
}

impl Iterator for Positions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.front >= self.back {
            return None;
        }
        let p = self.slice.get(self.front);
        if p.is_none() {
            self.front = self.back;
            return None;
        }
        self.front += 1;
        p
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (0, Some(n))
    }
}

impl DoubleEndedIterator for Positions {
    fn next_back(&mut self) -> Option<usize> {
        if self.front >= self.back {
            return None;
        }
        let p = self.slice.get(self.back - 1);
        if p.is_none() {
            self.back = self.front;
            return None;
        }
        self.back -= 1;
        p
    }
}

impl std::iter::FusedIterator for Positions {}

/// Normalises `start:stop:step` against an axis of length `len` by NumPy's (Python's) rules:
/// negative bounds count from the end; bounds beyond the axis are clamped; omitted bounds are
/// the ends in the step's direction (for a negative step, start defaults to the last position
/// and stop to "before 0").
///
/// ```
/// use blockarray::normalize_slice;
///
/// // x[500:100:-2] on an axis of 1000: 500, 498, …, 102.
/// let s = normalize_slice(1000, Some(500), Some(100), -2)?;
/// assert_eq!((s.start, s.len, s.step), (500, 200, -2));
/// // x[::-1] on an axis of 3.
/// assert_eq!(normalize_slice(3, None, None, -1)?.positions().collect::<Vec<_>>(), vec![2, 1, 0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Step`](crate::ErrorKind::Step) when `step` is 0.
pub fn normalize_slice(
    len: usize,
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
) -> Result<NormSlice> {
    if step == 0 {
        return Err(Error::step("slice step cannot be zero"));
    }
    let n = len as i128;
    let backwards = step < 0;
    // Python's PySlice_AdjustIndices, in i128 so nothing overflows.
    let adjust = |bound: Option<isize>, default: i128| -> i128 {
        match bound {
            None => default,
            Some(b) => {
                let b = b as i128;
                if b < 0 {
                    let b = b + n;
                    if b < 0 {
                        if backwards { -1 } else { 0 }
                    } else {
                        b
                    }
                } else if b >= n {
                    if backwards { n - 1 } else { n }
                } else {
                    b
                }
            }
        }
    };
    let (start, stop) = if backwards {
        (adjust(start, n - 1), adjust(stop, -1))
    } else {
        (adjust(start, 0), adjust(stop, n))
    };
    let step_abs = (step as i128).abs();
    let count = if backwards {
        if stop < start {
            (start - stop - 1) / step_abs + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step_abs + 1
    } else {
        0
    };
    if count == 0 {
        return Ok(NormSlice {
            start: 0,
            len: 0,
            step,
        });
    }
    // 0 <= start < len and 0 < count <= len here.
    Ok(NormSlice {
        start: usize::try_from(start).unwrap_or(0),
        len: usize::try_from(count).unwrap_or(0),
        step,
    })
}

/// Normalises an integer index against an axis of length `len`: negative counts from the end.
///
/// # Errors
/// [`ErrorKind::Index`](crate::ErrorKind::Index), naming the index and the axis length, when
/// it is outside `-len..len`.
pub fn normalize_index(len: usize, index: isize) -> Result<usize> {
    let n = len as i128;
    let i = index as i128;
    let pos = if i < 0 { i + n } else { i };
    if (0..n).contains(&pos) {
        Ok(usize::try_from(pos).unwrap_or(0))
    } else {
        Err(Error::index_out_of_bounds(index, len))
    }
}

/// An indexing expression with its `Ellipsis` expanded: see [`expand_args`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandedArgs {
    /// One argument per input axis (ranges and indices) plus the `NewAxis` arguments, in order;
    /// no `Ellipsis`.
    pub args: Vec<SliceArg>,
    /// The number of `NewAxis` arguments.
    pub new_axes: usize,
}

impl ExpandedArgs {
    /// The number of dimensions of the result: ranges plus new axes.
    pub fn out_ndim(&self) -> usize {
        self.args
            .iter()
            .filter(|a| matches!(a, SliceArg::Range { .. } | SliceArg::NewAxis))
            .count()
    }
}

/// Expands an indexing expression for an array of `ndim` dimensions: the `Ellipsis` (at most
/// one) becomes as many full slices as the other arguments leave axes, or, without one, full
/// slices are appended, so every input axis has exactly one range or index.
///
/// ```
/// use blockarray::plan::index::expand_args;
/// use blockarray::{SliceArg, s};
///
/// let e = expand_args(&s![Ellipsis, 0, NewAxis], 3)?;
/// assert_eq!(e.args, vec![SliceArg::FULL, SliceArg::FULL, SliceArg::Index(0), SliceArg::NewAxis]);
/// assert_eq!(e.new_axes, 1);
/// assert_eq!(e.out_ndim(), 3);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Index`](crate::ErrorKind::Index) when there is more than one `Ellipsis`, or
/// more ranges and indices than `ndim` (the message names `ndim`).
pub fn expand_args(args: &[SliceArg], ndim: usize) -> Result<ExpandedArgs> {
    let ellipses = args.iter().filter(|a| **a == SliceArg::Ellipsis).count();
    if ellipses > 1 {
        return Err(Error::index(format!(
            "an index can only have a single ellipsis ('...'), found {ellipses}"
        )));
    }
    let consumed = args.iter().filter(|a| a.consumes_axis()).count();
    if consumed > ndim {
        return Err(Error::index(format!(
            "too many indices: the array is {ndim}-dimensional, but {consumed} were indexed"
        )));
    }
    let fill = ndim - consumed;
    let mut out = Vec::with_capacity(args.len() + fill);
    for a in args {
        if *a == SliceArg::Ellipsis {
            out.extend(std::iter::repeat_n(SliceArg::FULL, fill));
        } else {
            out.push(*a);
        }
    }
    if ellipses == 0 {
        out.extend(std::iter::repeat_n(SliceArg::FULL, fill));
    }
    let new_axes = args.iter().filter(|a| **a == SliceArg::NewAxis).count();
    Ok(ExpandedArgs {
        args: out,
        new_axes,
    })
}

/// One argument of an indexing expression resolved against a shape: see [`resolve_args`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResolvedArg {
    /// A normalised slice of input axis `axis`.
    Slice {
        /// The input axis.
        axis: usize,
        /// The selected positions.
        slice: NormSlice,
    },
    /// A normalised index into input axis `axis` (the axis is removed).
    Index {
        /// The input axis.
        axis: usize,
        /// The position, within the axis.
        index: usize,
    },
    /// A new axis of length 1.
    NewAxis,
}

/// Expands an indexing expression ([`expand_args`]) and normalises each argument against the
/// axis it applies to ([`normalize_slice`], [`normalize_index`]).
///
/// # Errors
/// As [`expand_args`]; [`ErrorKind::Step`](crate::ErrorKind::Step) for a zero step and
/// [`ErrorKind::Index`](crate::ErrorKind::Index) for an index out of bounds, both naming the
/// axis.
pub fn resolve_args(args: &[SliceArg], shape: &[usize]) -> Result<Vec<ResolvedArg>> {
    let expanded = expand_args(args, shape.len())?;
    let mut axis = 0;
    let mut out = Vec::with_capacity(expanded.args.len());
    for a in expanded.args {
        match a {
            SliceArg::Range { start, stop, step } => {
                let slice = normalize_slice(shape[axis], start, stop, step)
                    .map_err(|e| e.context(format!("axis {axis}")))?;
                out.push(ResolvedArg::Slice { axis, slice });
                axis += 1;
            }
            SliceArg::Index(i) => {
                let index = normalize_index(shape[axis], i)
                    .map_err(|e| e.context(format!("axis {axis}")))?;
                out.push(ResolvedArg::Index { axis, index });
                axis += 1;
            }
            SliceArg::NewAxis => out.push(ResolvedArg::NewAxis),
            SliceArg::Ellipsis => {}
        }
    }
    Ok(out)
}

/// Where one output block of a sliced axis comes from: see [`AxisSlicePlan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlicePiece {
    /// The source block along the axis.
    pub block: usize,
    /// The positions to take within the source block, in output order.
    pub slice: NormSlice,
}

/// The plan of a slice along one chunked axis: see [`plan_axis_slice`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AxisSlicePlan {
    /// The chunks of the output along the axis: `[0]` when the slice is empty.
    pub chunks: Vec<usize>,
    /// For each output block, the source block and the positions it takes there. Empty (with
    /// `chunks == [0]`) when the slice selects nothing: no block is read.
    pub pieces: Vec<SlicePiece>,
}

/// Plans a slice along one axis chunked as `chunks`: one output block per source block the
/// slice touches, in slice order (so reversed for a negative step), each taking its positions
/// from that block. Untouched blocks never appear. The work is proportional to the blocks
/// touched times a binary search, plus computing prefix offsets of `chunks` (use
/// [`Chunks::plan_slice`] to reuse the cached ones).
///
/// ```
/// use blockarray::normalize_slice;
/// use blockarray::plan::index::plan_axis_slice;
///
/// // Blocks of 4 over 12 positions; x[10:1:-3] takes 10 (block 2), then 7 and 4 (block 1).
/// let s = normalize_slice(12, Some(10), Some(1), -3)?;
/// let plan = plan_axis_slice(&[4, 4, 4], &s)?;
/// assert_eq!(plan.chunks, vec![1, 2]);
/// assert_eq!(plan.pieces.iter().map(|p| p.block).collect::<Vec<_>>(), vec![2, 1]);
/// assert_eq!(plan.pieces[1].slice.positions().collect::<Vec<_>>(), vec![3, 0]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Step`](crate::ErrorKind::Step) for a zero step;
/// [`ErrorKind::Index`](crate::ErrorKind::Index) when the slice reaches outside the axis (a
/// slice from [`normalize_slice`] with the axis length never does).
pub fn plan_axis_slice(chunks: &[usize], s: &NormSlice) -> Result<AxisSlicePlan> {
    let offsets = prefix_offsets(chunks);
    check_slice(&offsets, s)?;
    Ok(plan_slice_offsets(&offsets, s))
}

impl Chunks {
    /// [`plan_axis_slice`] along `axis`, using the cached offsets: work proportional to the
    /// blocks touched.
    ///
    /// # Errors
    /// [`ErrorKind::Axis`](crate::ErrorKind::Axis) when `axis >= ndim`,
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when its lengths are not known until
    /// computed; otherwise as [`plan_axis_slice`].
    pub fn plan_slice(&self, axis: usize, s: &NormSlice) -> Result<AxisSlicePlan> {
        self.check_axis(axis)?;
        self.require_known_axis(axis, "slicing")?;
        let offsets = self.offsets(axis);
        check_slice(offsets, s).map_err(|e| e.context(format!("axis {axis}")))?;
        Ok(plan_slice_offsets(offsets, s))
    }

    /// [`plan_take`] along `axis`.
    ///
    /// # Errors
    /// [`ErrorKind::Axis`](crate::ErrorKind::Axis) when `axis >= ndim`,
    /// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when its lengths are not known until
    /// computed; otherwise as [`plan_take`], naming the axis.
    pub fn plan_take(&self, axis: usize, indices: &[isize]) -> Result<TakePlan> {
        self.plan_take_runs(axis, indices, 0)
    }

    /// [`plan_take`](Self::plan_take) with output blocks up to `run` long along the axis when
    /// that is more than the largest source block (for short source blocks: a long take
    /// from them is not one output block per few elements).
    pub(crate) fn plan_take_runs(
        &self,
        axis: usize,
        indices: &[isize],
        run: usize,
    ) -> Result<TakePlan> {
        self.check_axis(axis)?;
        self.require_known_axis(axis, "take")?;
        plan_take_offsets(self.axis(axis), self.offsets(axis), indices, run)
            .map_err(|e| e.context(format!("axis {axis}")))
    }
}

fn check_slice(offsets: &[usize], s: &NormSlice) -> Result<()> {
    let len = offsets.last().copied().unwrap_or(0);
    if s.step == 0 {
        return Err(Error::step("slice step cannot be zero"));
    }
    if s.len == 0 {
        return Ok(());
    }
    let first = s.start as i128;
    let last = (s.len as i128 - 1)
        .checked_mul(s.step as i128)
        .and_then(|d| first.checked_add(d));
    let n = len as i128;
    if first >= n || last.is_none_or(|last| last < 0 || last >= n) {
        return Err(Error::index(format!(
            "slice of {} positions from {} by step {} reaches outside an axis of length {len}",
            s.len, s.start, s.step
        )));
    }
    Ok(())
}

/// The plan of a slice already checked to lie within the axis.
fn plan_slice_offsets(offsets: &[usize], s: &NormSlice) -> AxisSlicePlan {
    if s.len == 0 {
        return AxisSlicePlan {
            chunks: vec![0],
            pieces: Vec::new(),
        };
    }
    let step = s.step.unsigned_abs();
    let mut chunks = Vec::new();
    let mut pieces = Vec::new();
    let mut remaining = s.len;
    let mut pos = s.start;
    loop {
        let block = block_containing(offsets, pos);
        let (lo, hi) = (offsets[block], offsets[block + 1]);
        let fit = if s.step > 0 {
            (hi - 1 - pos) / step + 1
        } else {
            (pos - lo) / step + 1
        };
        let count = fit.min(remaining);
        chunks.push(count);
        pieces.push(SlicePiece {
            block,
            slice: NormSlice {
                start: pos - lo,
                len: count,
                step: s.step,
            },
        });
        remaining -= count;
        if remaining == 0 {
            break;
        }
        pos = if s.step > 0 {
            pos + count * step
        } else {
            pos - count * step
        };
    }
    AxisSlicePlan { chunks, pieces }
}

/// The positions one output block of a take reads from one source block: see [`TakePlan`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TakeSource {
    /// The source block along the axis.
    pub block: usize,
    /// The positions to read within the source block.
    pub local: Vec<usize>,
    /// Where each of them goes within the output block (same length as `local`).
    pub out_positions: Vec<usize>,
}

/// One output block of a take: see [`TakePlan`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TakeBlock {
    /// The source blocks it reads, in increasing block order, each once.
    pub sources: Vec<TakeSource>,
}

/// The plan of a fancy index (`take`) along one chunked axis: see [`plan_take`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TakePlan {
    /// The chunks of the output along the axis: `[0]` when the index list is empty.
    pub chunks: Vec<usize>,
    /// For each output block, where its elements come from (no blocks when the index list is
    /// empty).
    pub blocks: Vec<TakeBlock>,
}

/// Plans `take(indices)` along one axis chunked as `chunks`, by NumPy's rules: negative
/// indices count from the end; indices may repeat and come in any order.
///
/// The output is cut into consecutive runs of the index list, each at most as long as the
/// largest source block. When the list is sorted (either way) a run also ends where the source
/// block changes, so output blocks line up with source blocks as in dask (one output block per
/// source block touched, split when repeated indices make it too long). Each output block lists
/// the source blocks it reads, with the positions within each and where they go.
/// ([`BlockArray::take`](crate::BlockArray::take) allows runs of about 1 MiB when the source
/// blocks are smaller, each reading no more than a run of the largest block's length could,
/// or than its own length.)
///
/// The work is `O(len(chunks) + len(indices) · log len(chunks))`.
///
/// ```
/// use blockarray::plan::index::plan_take;
///
/// let plan = plan_take(&[3, 3, 3], &[0, 4, 5, 8, -1])?;
/// assert_eq!(plan.chunks, vec![1, 2, 2]);
/// assert_eq!(plan.blocks[1].sources[0].local, vec![1, 2]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Index`](crate::ErrorKind::Index), naming the index, its place in the list and
/// the axis length, when an index is out of bounds.
pub fn plan_take(chunks: &[usize], indices: &[isize]) -> Result<TakePlan> {
    plan_take_offsets(chunks, &prefix_offsets(chunks), indices, 0)
}

/// [`plan_take`] with runs up to `run` long when that is more than the largest block.
fn plan_take_offsets(
    chunks: &[usize],
    offsets: &[usize],
    indices: &[isize],
    run: usize,
) -> Result<TakePlan> {
    let len = offsets.last().copied().unwrap_or(0);
    let positions = indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            normalize_index(len, i).map_err(|e| e.context(format!("take: entry {k} of the list")))
        })
        .collect::<Result<Vec<usize>>>()?;
    if positions.is_empty() {
        return Ok(TakePlan {
            chunks: vec![0],
            blocks: Vec::new(),
        });
    }
    // Runs are at most `max_run` long and read at most `max_read` source blocks: a longer run
    // (`run`) reads no more than a run of the largest block's length could (`max_chunk`
    // blocks), or than its own length in elements along the axis.
    let max_chunk = chunks.iter().copied().max().unwrap_or(1).max(1);
    let max_run = max_chunk.max(run);
    let max_read = max_chunk.max(max_run / max_chunk);
    let sorted =
        positions.windows(2).all(|w| w[0] <= w[1]) || positions.windows(2).all(|w| w[0] >= w[1]);
    let located: Vec<(usize, usize)> = positions
        .iter()
        .map(|&p| {
            let b = block_containing(offsets, p);
            (b, p - offsets[b])
        })
        .collect();

    let mut out_chunks = Vec::new();
    let mut blocks = Vec::new();
    let mut start = 0;
    let mut read = std::collections::HashSet::new();
    while start < located.len() {
        let mut end = start + 1;
        read.clear();
        read.insert(located[start].0);
        while end < located.len()
            && end - start < max_run
            && !(sorted && located[end].0 != located[end - 1].0)
        {
            if read.len() == max_read && !read.contains(&located[end].0) {
                break;
            }
            read.insert(located[end].0);
            end += 1;
        }
        let mut entries: Vec<(usize, usize, usize)> = located[start..end]
            .iter()
            .enumerate()
            .map(|(o, &(b, l))| (b, l, o))
            .collect();
        entries.sort_by_key(|&(b, _, _)| b);
        let mut sources: Vec<TakeSource> = Vec::new();
        for (b, l, o) in entries {
            match sources.last_mut() {
                Some(src) if src.block == b => {
                    src.local.push(l);
                    src.out_positions.push(o);
                }
                _ => sources.push(TakeSource {
                    block: b,
                    local: vec![l],
                    out_positions: vec![o],
                }),
            }
        }
        out_chunks.push(end - start);
        blocks.push(TakeBlock { sources });
        start = end;
    }
    Ok(TakePlan {
        chunks: out_chunks,
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;

    /// Reference: Python's slicing, written from the language reference, by walking candidate
    /// positions one by one.
    fn naive_slice(
        len: usize,
        start: Option<isize>,
        stop: Option<isize>,
        step: isize,
    ) -> Vec<usize> {
        let n = len as i128;
        let k = step as i128;
        let clamp_fwd = |v: i128| {
            let v = if v < 0 { v + n } else { v };
            v.clamp(0, n)
        };
        let clamp_back = |v: i128| {
            let v = if v < 0 { v + n } else { v };
            v.clamp(-1, n - 1)
        };
        let mut out = Vec::new();
        if k > 0 {
            let i = start.map_or(0, |s| clamp_fwd(s as i128));
            let j = stop.map_or(n, |s| clamp_fwd(s as i128));
            let mut x = i;
            while x < j {
                out.push(x as usize);
                x += k;
            }
        } else {
            let i = start.map_or(n - 1, |s| clamp_back(s as i128));
            let j = stop.map_or(-1, |s| clamp_back(s as i128));
            let mut x = i;
            while x > j {
                out.push(x as usize);
                x += k;
            }
        }
        out
    }

    fn sl(len: usize, start: Option<isize>, stop: Option<isize>, step: isize) -> Vec<usize> {
        normalize_slice(len, start, stop, step)
            .unwrap()
            .positions()
            .collect()
    }

    #[test]
    fn slices_match_python() {
        // Expected values printed by CPython's list(range(n))[slice(a, b, c)].
        type Case = (usize, Option<isize>, Option<isize>, isize, &'static [usize]);
        let cases: &[Case] = &[
            (10, None, None, 1, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (10, None, None, -1, &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
            (10, Some(2), Some(8), 3, &[2, 5]),
            (10, Some(8), Some(2), -3, &[8, 5]),
            (10, Some(-3), None, 1, &[7, 8, 9]),
            (10, None, Some(-3), -1, &[9, 8]),
            (10, Some(-100), Some(100), 2, &[0, 2, 4, 6, 8]),
            (10, Some(100), Some(-100), -2, &[9, 7, 5, 3, 1]),
            (10, Some(5), Some(5), 1, &[]),
            (10, Some(5), Some(5), -1, &[]),
            (0, None, None, 1, &[]),
            (0, None, None, -1, &[]),
            (10, Some(-1), Some(-11), -1, &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
            (10, Some(-11), None, -1, &[]),
            (10, Some(11), None, -1, &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
            (10, None, Some(-11), 1, &[]),
            (10, Some(500), Some(100), -2, &[]),
            (3, None, None, -5, &[2]),
            (1, Some(0), Some(1), -1, &[]),
            (7, Some(1), None, 4, &[1, 5]),
        ];
        for &(n, a, b, c, want) in cases {
            assert_eq!(sl(n, a, b, c), want, "len {n} [{a:?}:{b:?}:{c}]");
            assert_eq!(
                naive_slice(n, a, b, c),
                want,
                "reference, len {n} [{a:?}:{b:?}:{c}]"
            );
        }
    }

    #[test]
    fn norm_slice_fields() {
        let s = normalize_slice(1000, Some(500), Some(100), -2).unwrap();
        assert_eq!(
            s,
            NormSlice {
                start: 500,
                len: 200,
                step: -2
            }
        );
        assert_eq!(s.last(), Some(102));
        assert_eq!(s.span(), 102..501);
        assert_eq!(s.get(1), Some(498));
        assert_eq!(s.get(200), None);
        let e = normalize_slice(10, Some(2), Some(5), 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Step);
        let empty = normalize_slice(10, Some(5), Some(2), 1).unwrap();
        assert_eq!(
            empty,
            NormSlice {
                start: 0,
                len: 0,
                step: 1
            }
        );
        assert!(empty.is_empty());
        assert_eq!(empty.span(), 0..0);
        assert_eq!(empty.last(), None);
        // Extreme bounds do not overflow.
        assert_eq!(
            sl(5, Some(isize::MIN), Some(isize::MAX), isize::MAX),
            vec![0]
        );
        assert_eq!(
            sl(5, Some(isize::MAX), Some(isize::MIN), isize::MIN),
            vec![4]
        );
        assert_eq!(
            NormSlice::full(3).positions().rev().collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        // A malformed hand-made slice stops instead of panicking.
        let bad = NormSlice {
            start: 1,
            len: 5,
            step: -1,
        };
        assert_eq!(bad.positions().collect::<Vec<_>>(), vec![1, 0]);
    }

    #[test]
    fn indices() {
        assert_eq!(normalize_index(10, 3).unwrap(), 3);
        assert_eq!(normalize_index(10, -1).unwrap(), 9);
        assert_eq!(normalize_index(10, -10).unwrap(), 0);
        let e = normalize_index(10, 10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert_eq!(
            e.to_string(),
            "index 10 is out of bounds for an axis of length 10"
        );
        let e = normalize_index(10, -11).unwrap_err();
        assert!(
            e.to_string().contains("-11") && e.to_string().contains("10"),
            "{e}"
        );
        assert_eq!(normalize_index(0, 0).unwrap_err().kind(), ErrorKind::Index);
        assert_eq!(
            normalize_index(3, isize::MIN).unwrap_err().kind(),
            ErrorKind::Index
        );
    }

    #[test]
    fn macro_forms() {
        let full = SliceArg::FULL;
        let r = |start, stop, step| SliceArg::Range { start, stop, step };
        assert_eq!(
            s![..100, 500..100;-2],
            vec![r(None, Some(100), 1), r(Some(500), Some(100), -2)]
        );
        assert_eq!(s![3], vec![SliceArg::Index(3)]);
        assert_eq!(s![-1], vec![SliceArg::Index(-1)]);
        assert_eq!(s![..;-1], vec![r(None, None, -1)]);
        assert_eq!(s![5..], vec![r(Some(5), None, 1)]);
        assert_eq!(s![..], vec![full]);
        assert_eq!(s![-3..], vec![r(Some(-3), None, 1)]);
        assert_eq!(s![NewAxis, ..], vec![SliceArg::NewAxis, full]);
        assert_eq!(
            s![Ellipsis, 0],
            vec![SliceArg::Ellipsis, SliceArg::Index(0)]
        );
        assert_eq!(
            s![.., 3..;2, NewAxis,],
            vec![full, r(Some(3), None, 2), SliceArg::NewAxis]
        );
        assert_eq!(s![], Vec::<SliceArg>::new());
        assert_eq!(s![2..5], vec![r(Some(2), Some(5), 1)]);
        assert_eq!(s![..;2], vec![r(None, None, 2)]);
        let (a, b, k): (usize, usize, isize) = (1, 9, -3);
        assert_eq!(
            s![a..b;k, b],
            vec![r(Some(1), Some(9), -3), SliceArg::Index(9)]
        );
        assert_eq!(s![SliceArg::Index(4)], vec![SliceArg::Index(4)]);
        assert_eq!(s![usize::MAX], vec![SliceArg::Index(isize::MAX)]);
        assert_eq!(s![(1 + 1)..], vec![r(Some(2), None, 1)]);
    }

    #[test]
    fn display_like_numpy() {
        let args = s![3, .., 2..8;3, ..;-1, -3.., NewAxis, Ellipsis];
        let text: Vec<String> = args.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec!["3", ":", "2:8:3", "::-1", "-3:", "np.newaxis", "..."]
        );
    }

    #[test]
    fn expanding() {
        let e = expand_args(&s![0], 3).unwrap();
        assert_eq!(
            e.args,
            vec![SliceArg::Index(0), SliceArg::FULL, SliceArg::FULL]
        );
        assert_eq!(e.out_ndim(), 2);
        let e = expand_args(&s![Ellipsis, 0], 3).unwrap();
        assert_eq!(
            e.args,
            vec![SliceArg::FULL, SliceArg::FULL, SliceArg::Index(0)]
        );
        let e = expand_args(&s![NewAxis, Ellipsis, NewAxis], 2).unwrap();
        assert_eq!(e.new_axes, 2);
        assert_eq!(e.out_ndim(), 4);
        let e = expand_args(&s![1, Ellipsis, 2], 2).unwrap();
        assert_eq!(e.args, vec![SliceArg::Index(1), SliceArg::Index(2)]);
        assert_eq!(expand_args(&[], 0).unwrap().args, vec![]);

        let err = expand_args(&s![0, 1, 2], 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Index);
        assert!(err.to_string().contains("2-dimensional"), "{err}");
        assert!(err.to_string().contains("3 were indexed"), "{err}");
        let err = expand_args(&s![Ellipsis, Ellipsis], 2).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Index);
        assert!(err.to_string().contains("single ellipsis"), "{err}");
    }

    #[test]
    fn resolving() {
        let r = resolve_args(&s![-1, NewAxis, ..;-2], &[4, 5]).unwrap();
        assert_eq!(
            r,
            vec![
                ResolvedArg::Index { axis: 0, index: 3 },
                ResolvedArg::NewAxis,
                ResolvedArg::Slice {
                    axis: 1,
                    slice: NormSlice {
                        start: 4,
                        len: 3,
                        step: -2
                    }
                },
            ]
        );
        let e = resolve_args(&s![.., 7], &[4, 5]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert!(
            e.to_string().contains("axis 1") && e.to_string().contains("length 5"),
            "{e}"
        );
        let e = resolve_args(&s![..;0], &[4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Step);
        assert!(e.to_string().contains("axis 0"), "{e}");
    }

    #[test]
    fn slice_plans() {
        // x[10:1:-3] over blocks of 4: 10 (block 2), 7 and 4 (block 1).
        let s = normalize_slice(12, Some(10), Some(1), -3).unwrap();
        let plan = plan_axis_slice(&[4, 4, 4], &s).unwrap();
        assert_eq!(plan.chunks, vec![1, 2]);
        assert_eq!(
            plan.pieces,
            vec![
                SlicePiece {
                    block: 2,
                    slice: NormSlice {
                        start: 2,
                        len: 1,
                        step: -3
                    }
                },
                SlicePiece {
                    block: 1,
                    slice: NormSlice {
                        start: 3,
                        len: 2,
                        step: -3
                    }
                },
            ]
        );
        // A large step skips whole blocks without touching them.
        let s = normalize_slice(100, Some(5), None, 50).unwrap();
        let plan = plan_axis_slice(&[10; 10], &s).unwrap();
        assert_eq!(plan.chunks, vec![1, 1]);
        assert_eq!(
            plan.pieces.iter().map(|p| p.block).collect::<Vec<_>>(),
            vec![0, 5]
        );
        // Empty selection.
        let s = normalize_slice(12, Some(3), Some(3), 1).unwrap();
        let plan = plan_axis_slice(&[4, 4, 4], &s).unwrap();
        assert_eq!(plan.chunks, vec![0]);
        assert!(plan.pieces.is_empty());
        let plan = plan_axis_slice(&[0], &normalize_slice(0, None, None, -1).unwrap()).unwrap();
        assert_eq!(plan.chunks, vec![0]);
        // Out of range or zero step.
        let bad = NormSlice {
            start: 11,
            len: 3,
            step: 1,
        };
        assert_eq!(
            plan_axis_slice(&[4, 4, 4], &bad).unwrap_err().kind(),
            ErrorKind::Index
        );
        let bad = NormSlice {
            start: 1,
            len: 3,
            step: -1,
        };
        assert_eq!(
            plan_axis_slice(&[4, 4, 4], &bad).unwrap_err().kind(),
            ErrorKind::Index
        );
        let bad = NormSlice {
            start: usize::MAX,
            len: usize::MAX,
            step: isize::MIN,
        };
        assert_eq!(
            plan_axis_slice(&[4, 4, 4], &bad).unwrap_err().kind(),
            ErrorKind::Index
        );
        assert_eq!(bad.get(usize::MAX - 1), None);
        let bad = NormSlice {
            start: 1,
            len: 3,
            step: 0,
        };
        assert_eq!(
            plan_axis_slice(&[4, 4, 4], &bad).unwrap_err().kind(),
            ErrorKind::Step
        );
    }

    #[test]
    fn chunks_plan_methods() {
        let c = Chunks::new(&[12, 5], [4, 5], 8).unwrap();
        let s = normalize_slice(12, None, None, -1).unwrap();
        let plan = c.plan_slice(0, &s).unwrap();
        assert_eq!(plan.chunks, vec![4, 4, 4]);
        assert_eq!(
            plan.pieces.iter().map(|p| p.block).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert_eq!(c.plan_slice(2, &s).unwrap_err().kind(), ErrorKind::Axis);
        let e = c.plan_slice(1, &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert!(e.to_string().contains("axis 1"), "{e}");
        let t = c.plan_take(0, &[11, 0]).unwrap();
        assert_eq!(t.chunks, vec![1, 1]);
        let e = c.plan_take(1, &[5]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert!(
            e.to_string().contains("axis 1") && e.to_string().contains("length 5"),
            "{e}"
        );
        assert_eq!(c.plan_take(3, &[0]).unwrap_err().kind(), ErrorKind::Axis);
        let u = c.clone().with_unknown_axis(0, 1);
        assert_eq!(u.plan_slice(0, &s).unwrap_err().kind(), ErrorKind::Chunks);
        assert_eq!(u.plan_take(0, &[0]).unwrap_err().kind(), ErrorKind::Chunks);
        assert!(u.plan_take(1, &[0]).is_ok());
    }

    /// Longer runs for short source blocks, but never reading more source blocks per run than
    /// a run of the largest block's length could, or than the run's length in elements (a
    /// random permutation's runs of 1 MiB would read every block).
    #[test]
    fn long_runs_read_few_blocks() {
        let c = Chunks::from_blocks(vec![vec![2; 50]]).unwrap();
        // Periodic indices over one block: one run as long as allowed.
        let periodic: Vec<isize> = (0..1000).map(|i| i % 2).collect();
        let plan = c.plan_take_runs(0, &periodic, 400).unwrap();
        assert_eq!(plan.chunks, vec![400, 400, 200]);
        assert!(plan.blocks.iter().all(|b| b.sources.len() == 1));
        // Indices spread over every block: a run reads at most 400 / 2 = 200 blocks (here
        // there are 100, so runs are 400 long).
        let spread: Vec<isize> = (0..1000).map(|i| (i * 37 % 100) as isize).collect();
        let plan = c.plan_take_runs(0, &spread, 400).unwrap();
        assert_eq!(plan.chunks, vec![400, 400, 200]);
        // Over 1000 blocks: runs end at 200 blocks read.
        let big = Chunks::from_blocks(vec![vec![2; 1000]]).unwrap();
        let wide: Vec<isize> = (0..1000).map(|i| (i * 37 % 2000) as isize).collect();
        let plan = big.plan_take_runs(0, &wide, 400).unwrap();
        assert!(plan.blocks.iter().all(|b| b.sources.len() <= 200));
        assert_eq!(plan.chunks, vec![200; 5]);
        // Without a longer run, the plan is plan_take's.
        assert_eq!(
            c.plan_take_runs(0, &spread, 0).unwrap(),
            plan_take(c.axis(0), &spread).unwrap()
        );
    }

    #[test]
    fn take_plans() {
        // Sorted: aligned with the source blocks.
        let plan = plan_take(&[3, 3, 3], &[0, 4, 5, 8, -1]).unwrap();
        assert_eq!(plan.chunks, vec![1, 2, 2]);
        assert_eq!(
            plan.blocks[0].sources,
            vec![TakeSource {
                block: 0,
                local: vec![0],
                out_positions: vec![0]
            }]
        );
        assert_eq!(
            plan.blocks[2].sources,
            vec![TakeSource {
                block: 2,
                local: vec![2, 2],
                out_positions: vec![0, 1]
            }]
        );
        // Repeated indices split a long run at the largest block length.
        let plan = plan_take(&[2, 2], &[1; 5]).unwrap();
        assert_eq!(plan.chunks, vec![2, 2, 1]);
        // Unsorted: runs of at most the largest block, several sources per block.
        let plan = plan_take(&[3, 3, 3], &[8, 0, 4, 1]).unwrap();
        assert_eq!(plan.chunks, vec![3, 1]);
        assert_eq!(
            plan.blocks[0].sources,
            vec![
                TakeSource {
                    block: 0,
                    local: vec![0],
                    out_positions: vec![1]
                },
                TakeSource {
                    block: 1,
                    local: vec![1],
                    out_positions: vec![2]
                },
                TakeSource {
                    block: 2,
                    local: vec![2],
                    out_positions: vec![0]
                },
            ]
        );
        // Empty index list.
        let plan = plan_take(&[3, 3], &[]).unwrap();
        assert_eq!(plan.chunks, vec![0]);
        assert!(plan.blocks.is_empty());
        let plan = plan_take(&[0], &[]).unwrap();
        assert_eq!(plan.chunks, vec![0]);
        // Out of bounds.
        let e = plan_take(&[3, 3], &[0, 6]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Index);
        assert!(
            e.to_string().contains("index 6") && e.to_string().contains("length 6"),
            "{e}"
        );
        assert!(e.to_string().contains("entry 1"), "{e}");
        assert_eq!(
            plan_take(&[3, 3], &[-7]).unwrap_err().kind(),
            ErrorKind::Index
        );
        assert_eq!(plan_take(&[0], &[0]).unwrap_err().kind(), ErrorKind::Index);
    }

    // ---- property tests ----

    fn axis_chunks() -> impl Strategy<Value = Vec<usize>> {
        (0usize..60).prop_flat_map(|len| crate::testutil::axis_chunks(len, 0.25))
    }

    fn bound() -> impl Strategy<Value = Option<isize>> {
        prop_oneof![
            1 => Just(None),
            4 => (-80isize..80).prop_map(Some),
            1 => prop::sample::select(vec![isize::MIN, isize::MAX, isize::MIN + 1, isize::MAX - 1]).prop_map(Some),
        ]
    }

    fn step() -> impl Strategy<Value = isize> {
        prop_oneof![
            6 => 1isize..8,
            6 => -8isize..0,
            1 => (-100isize..100).prop_filter("non-zero", |s| *s != 0),
            1 => prop::sample::select(vec![isize::MIN, isize::MAX]),
        ]
    }

    proptest! {
        #[test]
        fn normalize_matches_reference(len in 0usize..60, start in bound(), stop in bound(), step in step()) {
            let s = normalize_slice(len, start, stop, step).unwrap();
            let got: Vec<usize> = s.positions().collect();
            prop_assert_eq!(got.len(), s.len);
            prop_assert_eq!(&got, &naive_slice(len, start, stop, step));
            let back: Vec<usize> = s.positions().rev().collect();
            prop_assert_eq!(back, got.iter().rev().copied().collect::<Vec<_>>());
            prop_assert!(got.iter().all(|&p| p < len));
        }

        #[test]
        fn slice_plan_reproduces_the_selection(chunks in axis_chunks(), start in bound(), stop in bound(), step in step()) {
            let len: usize = chunks.iter().sum();
            let s = normalize_slice(len, start, stop, step).unwrap();
            let plan = plan_axis_slice(&chunks, &s).unwrap();
            let offsets = prefix_offsets(&chunks);
            let want = naive_slice(len, start, stop, step);
            if want.is_empty() {
                prop_assert_eq!(plan.chunks, vec![0]);
                prop_assert!(plan.pieces.is_empty());
            } else {
                prop_assert_eq!(plan.chunks.len(), plan.pieces.len());
                let mut got = Vec::new();
                for (c, piece) in plan.chunks.iter().zip(&plan.pieces) {
                    prop_assert_eq!(*c, piece.slice.len);
                    prop_assert!(*c > 0);
                    for p in piece.slice.positions() {
                        prop_assert!(p < chunks[piece.block], "local {} outside block {}", p, piece.block);
                        got.push(offsets[piece.block] + p);
                    }
                }
                prop_assert_eq!(&got, &want);
                // One output block per touched block, each touched block exactly once, in slice order.
                let touched: Vec<usize> = {
                    let mut t: Vec<usize> = want.iter().map(|&p| block_containing(&offsets, p)).collect();
                    t.dedup();
                    t
                };
                prop_assert_eq!(plan.pieces.iter().map(|p| p.block).collect::<Vec<_>>(), touched);
            }
        }

        #[test]
        fn take_plan_reproduces_the_indices(chunks in axis_chunks(),
                                            raw in proptest::collection::vec(-80isize..80, 0..40),
                                            sort in 0u8..3) {
            let len: usize = chunks.iter().sum();
            let mut indices = raw.clone();
            match sort {
                0 => {}
                1 => indices.sort_by_key(|&i| if i < 0 { i + len as isize } else { i }),
                _ => indices.sort_by_key(|&i| std::cmp::Reverse(if i < 0 { i + len as isize } else { i })),
            }
            let n = len as isize;
            let valid = indices.iter().all(|&i| -n <= i && i < n);
            let result = plan_take(&chunks, &indices);
            if !valid {
                prop_assert_eq!(result.unwrap_err().kind(), ErrorKind::Index);
                return Ok(());
            }
            let plan = result.unwrap();
            let want: Vec<usize> = indices.iter().map(|&i| if i < 0 { (i + n) as usize } else { i as usize }).collect();
            if want.is_empty() {
                prop_assert_eq!(plan.chunks, vec![0]);
                prop_assert!(plan.blocks.is_empty());
                return Ok(());
            }
            prop_assert_eq!(plan.chunks.len(), plan.blocks.len());
            prop_assert_eq!(plan.chunks.iter().sum::<usize>(), want.len());
            let max_chunk = *chunks.iter().max().unwrap();
            prop_assert!(plan.chunks.iter().all(|&c| c > 0 && c <= max_chunk));
            let offsets = prefix_offsets(&chunks);
            let mut got = vec![None; want.len()];
            let mut base = 0;
            for (c, block) in plan.chunks.iter().zip(&plan.blocks) {
                let mut seen = vec![false; *c];
                prop_assert!(block.sources.windows(2).all(|w| w[0].block < w[1].block));
                for src in &block.sources {
                    prop_assert_eq!(src.local.len(), src.out_positions.len());
                    for (&l, &o) in src.local.iter().zip(&src.out_positions) {
                        prop_assert!(l < chunks[src.block]);
                        prop_assert!(o < *c && !seen[o]);
                        seen[o] = true;
                        got[base + o] = Some(offsets[src.block] + l);
                    }
                }
                prop_assert!(seen.iter().all(|&s| s));
                base += c;
            }
            let got: Vec<usize> = got.into_iter().map(|g| g.unwrap()).collect();
            prop_assert_eq!(&got, &want);
            if sort > 0 {
                // Sorted lists: each output block reads one source block.
                prop_assert!(plan.blocks.iter().all(|b| b.sources.len() == 1));
                // And consecutive output blocks with different sources change exactly at block changes.
                let per_block: Vec<usize> = plan.blocks.iter().map(|b| b.sources[0].block).collect();
                let mut distinct = per_block.clone();
                distinct.dedup();
                let mut touched: Vec<usize> = want.iter().map(|&p| block_containing(&offsets, p)).collect();
                touched.dedup();
                prop_assert_eq!(distinct, touched);
            }
        }

        #[test]
        fn expand_keeps_order_and_counts(nd in 0usize..5, picks in proptest::collection::vec(0u8..4, 0..6)) {
            let args: Vec<SliceArg> = picks.iter().map(|p| match p {
                0 => SliceArg::Index(0),
                1 => SliceArg::FULL,
                2 => SliceArg::NewAxis,
                _ => SliceArg::Ellipsis,
            }).collect();
            let consumed = args.iter().filter(|a| a.consumes_axis()).count();
            let ellipses = args.iter().filter(|a| **a == SliceArg::Ellipsis).count();
            match expand_args(&args, nd) {
                Ok(e) => {
                    prop_assert!(ellipses <= 1 && consumed <= nd);
                    prop_assert_eq!(e.args.iter().filter(|a| a.consumes_axis()).count(), nd);
                    prop_assert!(!e.args.contains(&SliceArg::Ellipsis));
                    prop_assert_eq!(e.new_axes, args.iter().filter(|a| **a == SliceArg::NewAxis).count());
                    // Removing the inserted full slices gives back the input without the ellipsis.
                    let rest: Vec<SliceArg> = args.iter().copied()
                        .filter(|a| *a != SliceArg::Ellipsis && *a != SliceArg::FULL)
                        .collect();
                    let filtered: Vec<SliceArg> = e.args.iter().copied().filter(|a| *a != SliceArg::FULL).collect();
                    prop_assert_eq!(filtered, rest);
                }
                Err(err) => {
                    prop_assert_eq!(err.kind(), ErrorKind::Index);
                    prop_assert!(ellipses > 1 || consumed > nd);
                }
            }
        }
    }
}
