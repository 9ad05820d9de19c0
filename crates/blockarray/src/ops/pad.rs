//! `pad` (`numpy.pad`): an array extended along each axis by a constant, its edge values, its
//! mirror images or its other end.
//!
//! # Design notes
//!
//! Axes are padded one after the other, each new axis padding the previous ones' margins too
//! (which is what NumPy's result is). Along one axis the result is the concatenation of a
//! left margin, the array, and a right margin, in blocks of about 1 MiB at least along the axis
//! when the array's are smaller (a margin of a million past a short axis is not a million
//! blocks). A constant margin is a `full` array, an `edge` margin (and the edge of a
//! `linear_ramp` one) the end face broadcast; every other mode's margin is a `take` of
//! positions of the array along the axis — `wrap` counts modulo the length, `reflect` and `symmetric` follow the
//! triangle wave of period `2(n - 1)` (edge not repeated) or `2n` (repeated). Margins wider
//! than the array thus continue periodically, as NumPy (≥ 1.25) pads them. The index lists
//! are as long as the margins, never as the array; the tasks read only the blocks near each
//! end (or, for wide margins, the blocks the periodic positions touch).

use crate::error::vec_with_capacity;
use crate::ops::shape_more::try_cut;
use crate::{BlockArray, ChunkSpec, Element, Error, Result, concatenate};

/// How [`BlockArray::pad`] fills the margins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode<T> {
    /// The given value (`mode='constant'`).
    Constant(T),
    /// The edge value repeated (`mode='edge'`).
    Edge,
    /// The mirror image without repeating the edge: `3 2 | 1 2 3 | 2 1` (`mode='reflect'`).
    Reflect,
    /// The mirror image repeating the edge: `2 1 | 1 2 3 | 3 2` (`mode='symmetric'`).
    Symmetric,
    /// The other end of the array: `2 3 | 1 2 3 | 1 2` (`mode='wrap'`).
    Wrap,
}

impl<T> PadMode<T> {
    fn name(&self) -> &'static str {
        match self {
            PadMode::Constant(_) => "constant",
            PadMode::Edge => "edge",
            PadMode::Reflect => "reflect",
            PadMode::Symmetric => "symmetric",
            PadMode::Wrap => "wrap",
        }
    }

    /// The source position of padded position `p` (relative to the array's start, so
    /// negative on the left) along an axis of length `n > 0`.
    fn source(&self, p: i128, n: i128) -> i128 {
        match self {
            PadMode::Constant(_) => unreachable!("constant margins are not taken"),
            PadMode::Edge => p.clamp(0, n - 1),
            PadMode::Wrap => p.rem_euclid(n),
            // NumPy extends a single element by itself in reflect mode.
            PadMode::Reflect if n == 1 => 0,
            PadMode::Reflect => {
                let q = p.rem_euclid(2 * (n - 1));
                if q >= n { 2 * (n - 1) - q } else { q }
            }
            PadMode::Symmetric => {
                let q = p.rem_euclid(2 * n);
                if q >= n { 2 * n - 1 - q } else { q }
            }
        }
    }
}

impl<T: Element> BlockArray<T> {
    /// The array padded (`numpy.pad`): `widths[i] = (before, after)` elements added along
    /// axis `i`, or one pair for every axis; filled as `mode` says. Modes other than
    /// `Constant` need non-empty axes where they pad.
    ///
    /// ```
    /// use blockarray::{BlockArray, PadMode};
    /// let x = BlockArray::arange(1i64, 4, 1, 2)?;
    /// let p = |m| -> blockarray::Result<Vec<i64>> {
    ///     Ok(x.pad(&[(2, 2)], m)?.compute()?.into_raw_vec_and_offset().0)
    /// };
    /// assert_eq!(p(PadMode::Constant(0))?, vec![0, 0, 1, 2, 3, 0, 0]);
    /// assert_eq!(p(PadMode::Edge)?, vec![1, 1, 1, 2, 3, 3, 3]);
    /// assert_eq!(p(PadMode::Reflect)?, vec![3, 2, 1, 2, 3, 2, 1]);
    /// assert_eq!(p(PadMode::Symmetric)?, vec![2, 1, 1, 2, 3, 3, 2]);
    /// assert_eq!(p(PadMode::Wrap)?, vec![2, 3, 1, 2, 3, 1, 2]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn pad(&self, widths: &[(usize, usize)], mode: PadMode<T>) -> Result<BlockArray<T>> {
        self.chunks().require_known("pad")?;
        let nd = self.ndim();
        if widths.len() != nd && widths.len() != 1 {
            return Err(Error::shape(format!(
                "pad: {} width pairs for an array of shape {:?} (give 1 or {nd})",
                widths.len(),
                self.shape()
            )));
        }
        let mut out = self.clone();
        for axis in 0..nd {
            let (before, after) = widths[if widths.len() == 1 { 0 } else { axis }];
            if before == 0 && after == 0 {
                continue;
            }
            let n = out.shape()[axis];
            check_widths(n, before, after, axis)?;
            let mut parts = Vec::with_capacity(3);
            match mode {
                PadMode::Constant(v) => {
                    for w in [before, after] {
                        let (shape, chunks) = margin(&out, axis, w)?;
                        parts.push(BlockArray::full(&shape, v, ChunkSpec::Explicit(chunks))?);
                    }
                }
                PadMode::Edge if n > 0 => {
                    // The edge broadcast, in the blocks of a constant margin (a `take` of
                    // the edge position repeated would cut it like the array's blocks).
                    for (w, at) in [(before, 0), (after, n - 1)] {
                        let (shape, chunks) = margin(&out, axis, w)?;
                        let face = out.take(&[at as isize], axis)?;
                        parts.push(face.broadcast_to_chunks(&shape, ChunkSpec::Explicit(chunks))?);
                    }
                }
                _ => {
                    if n == 0 {
                        return Err(Error::shape(format!(
                            "pad: cannot extend the empty axis {axis} (shape {:?}) in mode {}",
                            out.shape(),
                            mode.name()
                        )));
                    }
                    let (n128, b128) = (n as i128, before as i128);
                    let left = index_list(before, (-b128..0).map(|p| mode.source(p, n128)))?;
                    let right = index_list(
                        after,
                        (n128..n128 + after as i128).map(|p| mode.source(p, n128)),
                    )?;
                    parts.push(out.take(&left, axis)?);
                    parts.push(out.take(&right, axis)?);
                }
            }
            let (l, r) = (&parts[0], &parts[1]);
            let middle = out.clone();
            let pieces: Vec<&BlockArray<T>> = [(before, l), (usize::MAX, &middle), (after, r)]
                .into_iter()
                .filter(|(w, _)| *w > 0)
                .map(|(_, a)| a)
                .collect();
            out = concatenate(&pieces, axis)?;
        }
        Ok(out)
    }
}

impl<T: crate::Float> BlockArray<T> {
    /// `numpy.pad(x, widths, mode='linear_ramp', end_values=ends)`: each margin ramps
    /// linearly from its end value at the outer edge towards the array's edge value (NumPy's
    /// `linspace(end, edge, width, endpoint=False)`, reversed on the right). `widths` and
    /// `ends` hold one pair per axis or one pair for all. Axes are padded in order, as NumPy
    /// does; each margin is the edge (the end face broadcast) combined with a ramp of
    /// integer positions.
    ///
    /// ```
    /// let x = blockarray::BlockArray::from_array(ndarray::array![1.0, 2.0, 3.0, 4.0, 5.0], 2)?;
    /// let p = x.pad_linear_ramp(&[(2, 3)], &[(5.0, -4.0)])?.compute()?;
    /// assert_eq!(p.into_raw_vec_and_offset().0, vec![5.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 2.0, -1.0, -4.0]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn pad_linear_ramp(
        &self,
        widths: &[(usize, usize)],
        ends: &[(T, T)],
    ) -> Result<BlockArray<T>> {
        self.chunks().require_known("pad")?;
        let nd = self.ndim();
        for (what, len) in [("width", widths.len()), ("end value", ends.len())] {
            if len != nd && len != 1 {
                return Err(Error::shape(format!(
                    "pad: {len} {what} pairs for an array of shape {:?} (give 1 or {nd})",
                    self.shape()
                )));
            }
        }
        let mut out = self.clone();
        for axis in 0..nd {
            let (before, after) = widths[if widths.len() == 1 { 0 } else { axis }];
            let (end_l, end_r) = ends[if ends.len() == 1 { 0 } else { axis }];
            if before == 0 && after == 0 {
                continue;
            }
            let n = out.shape()[axis];
            check_widths(n, before, after, axis)?;
            if n == 0 {
                return Err(Error::shape(format!(
                    "pad: cannot extend the empty axis {axis} (shape {:?}) in mode linear_ramp",
                    out.shape()
                )));
            }
            let ramp =
                |w: usize, edge_at: usize, end: T, reversed: bool| -> Result<BlockArray<T>> {
                    // The edge broadcast, in the blocks of a constant margin.
                    let face = out.take(&[edge_at as isize], axis)?;
                    let (shape, chunks) = margin(&out, axis, w)?;
                    let step = chunks[axis].clone();
                    let edge = face.broadcast_to_chunks(&shape, ChunkSpec::Explicit(chunks))?;
                    // Integer positions: in `f32`, positions past 2^24 would round.
                    let wi = i64::try_from(w).map_err(|_| {
                        Error::shape(format!("pad: a margin of {w} elements is too wide"))
                    })?;
                    let mut r = BlockArray::arange(0i64, wi, 1, ChunkSpec::Explicit(vec![step]))?;
                    if reversed {
                        r = r.flip(None)?;
                    }
                    let others: Vec<usize> = (0..nd).filter(|&a| a != axis).collect();
                    let r = r.expand_dims(&others)?;
                    // NumPy's `linspace(end, edge, w, endpoint=False)` over all lanes at once,
                    // in f64 (the end values are a float64 array there), rounded to `T`:
                    // `i·((edge − end)/w) + end`, or, when the step of any lane is 0 (gh-5437),
                    // `(i/w)·(edge − end) + end` for every lane.
                    let (end, wf) = (end.as_f64(), w as f64);
                    let step = move |e: T| (e.as_f64() - end) / wf;
                    let any_zero = face
                        .map(
                            crate::OpName::pure("linear-ramp-step-is-0", &(end, w)),
                            move |e| step(e) == 0.0,
                        )
                        .any(None, false)?;
                    let by_step = edge.zip_map(
                        &r,
                        crate::OpName::pure("linear-ramp", &(end, w)),
                        move |e: T, i: i64| T::from_f64(i as f64 * step(e) + end),
                    )?;
                    let by_share = edge.zip_map(
                        &r,
                        crate::OpName::pure("linear-ramp-by-share", &(end, w)),
                        move |e: T, i: i64| T::from_f64((i as f64 / wf) * (e.as_f64() - end) + end),
                    )?;
                    crate::where_(&any_zero, &by_share, &by_step)
                };
            let mut pieces = Vec::with_capacity(3);
            if before > 0 {
                pieces.push(ramp(before, 0, end_l, false)?);
            }
            pieces.push(out.clone());
            if after > 0 {
                pieces.push(ramp(after, n - 1, end_r, true)?);
            }
            let refs: Vec<&BlockArray<T>> = pieces.iter().collect();
            out = concatenate(&refs, axis)?;
        }
        Ok(out)
    }
}

/// The shape and chunks of a margin `w` wide along `axis` of `out`: the array's chunks across,
/// in one block-sized piece after another along the axis: the axis's largest chunk, or enough
/// for about 1 MiB per block when the axis is short (a margin of a million past one element is
/// not a million blocks).
fn margin<T: Element>(
    out: &BlockArray<T>,
    axis: usize,
    w: usize,
) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let mut shape = out.shape().to_vec();
    shape[axis] = w;
    let mut chunks: Vec<Vec<usize>> = out.chunks().axes().to_vec();
    let floor = out.chunks().mib_run(axis, T::itemsize());
    let step = out.chunks().axis(axis).iter().copied().max().unwrap_or(1);
    chunks[axis] = try_cut(w, step.max(floor), "pad")?;
    Ok((shape, chunks))
}

/// The `len` positions of `items` as a `take` index list, or an `Err` when a list that long
/// cannot be allocated (a margin of 2⁶² elements).
fn index_list(len: usize, items: impl Iterator<Item = i128>) -> Result<Vec<isize>> {
    let mut v = vec_with_capacity(len, "pad")?;
    v.extend(items.map(|p| p as isize));
    Ok(v)
}

/// Margins whose total length fits (they are laid out as blocks and index lists).
fn check_widths(n: usize, before: usize, after: usize, axis: usize) -> Result<()> {
    let fits = n
        .checked_add(before)
        .and_then(|v| v.checked_add(after))
        .is_some_and(|v| v <= isize::MAX as usize);
    if fits {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "pad: widths ({before}, {after}) on axis {axis} of length {n} overflow"
        )))
    }
}
