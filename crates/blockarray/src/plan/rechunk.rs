//! Rechunk planning: which old blocks each new block reads, and when to go through an
//! intermediate chunking.
//!
//! A rechunk from chunks `old` to chunks `new` builds each new block from pieces of the old
//! blocks it overlaps ([`rechunk_pieces`], dask's `_intersect_1d`). The task that builds a new
//! block needs the old blocks it overlaps: along each axis, the span of those blocks; over all
//! axes, a box of old blocks, the *read region* ([`rechunk_read_elems`]). Going straight from
//! `(10000, 100)` to `(100, 10000)` chunks of a `10000 × 10000` array, every new block overlaps
//! every old block: each task would read the whole array. [`plan_rechunk`] then goes through an
//! intermediate chunking such that both steps read small regions.
//!
//! The algorithm is our own, in the spirit of dask's `plan_rechunk` (which merges and splits
//! chunks greedily under a block-size limit to keep the graph small); the difference is that it
//! bounds the read region of every task, not only the size of the blocks.

use crate::error::{Error, Result, fmt_shape};
use crate::plan::chunks::{Chunks, block_containing, fmt_chunks, prefix_offsets, unify_axis};
use std::ops::Range;

/// A direct rechunk whose number of pieces is at most this many times the number of old plus
/// new blocks is never split into two steps (dask's `array.rechunk.threshold`).
const GRAPH_THRESHOLD: u128 = 4;

/// A piece of a rechunk along one axis: an old block and the range of positions within it.
pub type Piece = (usize, Range<usize>);

/// For each new block along one axis, the old blocks it reads and the range within each, in
/// order (dask's `_intersect_1d`).
///
/// A new block of length 0 (only on an empty axis, chunks `[0]`) reads the empty range of one
/// old block, so that every new block has at least one piece.
///
/// ```
/// use blockarray::plan::rechunk::rechunk_pieces;
///
/// let pieces = rechunk_pieces(&[4, 4], &[3, 5])?;
/// assert_eq!(pieces, vec![vec![(0, 0..3)], vec![(0, 3..4), (1, 0..4)]]);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks), naming both, when the two chunkings do
/// not cover the same length.
pub fn rechunk_pieces(old_axis: &[usize], new_axis: &[usize]) -> Result<Vec<Vec<Piece>>> {
    let total = |c: &[usize]| c.iter().try_fold(0usize, |acc, &x| acc.checked_add(x));
    if total(old_axis).is_none() || total(old_axis) != total(new_axis) {
        return Err(Error::chunks(format!(
            "cannot rechunk an axis from chunks {} to {}: they cover different lengths",
            fmt_chunks(&[old_axis.to_vec()]),
            fmt_chunks(&[new_axis.to_vec()]),
        )));
    }
    let mut out = Vec::with_capacity(new_axis.len());
    // The old block under consideration and its first position.
    let (mut ob, mut ostart) = (0usize, 0usize);
    let mut pos = 0usize;
    for &n in new_axis {
        let end = pos + n;
        let mut pieces = Vec::new();
        while pos < end {
            while ostart + old_axis[ob] <= pos {
                ostart += old_axis[ob];
                ob += 1;
            }
            let stop = end.min(ostart + old_axis[ob]);
            pieces.push((ob, pos - ostart..stop - ostart));
            pos = stop;
        }
        if pieces.is_empty() && !old_axis.is_empty() {
            // An empty new block: the empty range at `pos` of the block holding it (or ending
            // there).
            while ob + 1 < old_axis.len() && ostart + old_axis[ob] <= pos {
                ostart += old_axis[ob];
                ob += 1;
            }
            let local = pos.saturating_sub(ostart);
            pieces.push((ob, local..local));
        }
        out.push(pieces);
    }
    Ok(out)
}

/// Along one axis: the largest span of `src` blocks that one `dst` block overlaps, and the
/// number of non-empty (src block, dst block) intersections.
fn axis_stats(src: &[usize], dst: &[usize]) -> (u128, u128) {
    let so = prefix_offsets(src);
    let d_o = prefix_offsets(dst);
    let mut hull = 0usize;
    let mut first = 0usize;
    for w in d_o.windows(2) {
        let (s, e) = (w[0], w[1]);
        if s == e {
            continue;
        }
        while so[first + 1] <= s {
            first += 1;
        }
        let mut last = first;
        while so[last + 1] < e {
            last += 1;
        }
        hull = hull.max(so[last + 1] - so[first]);
    }
    // Intersections: the number of distinct block ends of either (one for an empty axis).
    let (mut i, mut j, mut count) = (1usize, 1usize, 0u128);
    let total = *so.last().unwrap_or(&0);
    if total == 0 {
        return (0, 1);
    }
    while i < so.len() || j < d_o.len() {
        let next = match (so.get(i), d_o.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        while so.get(i) == Some(&next) {
            i += 1;
        }
        while d_o.get(j) == Some(&next) {
            j += 1;
        }
        if next > 0 {
            count += 1;
        }
    }
    (hull as u128, count)
}

fn check_same_shape(old: &Chunks, new: &Chunks) -> Result<()> {
    if old.shape() == new.shape() {
        Ok(())
    } else {
        Err(Error::chunks(format!(
            "cannot rechunk from chunks {old} of shape {} to chunks {new} of shape {}",
            fmt_shape(old.shape()),
            fmt_shape(new.shape())
        )))
    }
}

/// The number of elements of the largest read region of a direct rechunk from `old` to `new`:
/// over all new blocks, the box of old blocks it overlaps (saturating at `usize::MAX`).
///
/// ```
/// use blockarray::Chunks;
/// use blockarray::plan::rechunk::rechunk_read_elems;
///
/// let old = Chunks::new(&[100, 100], [100, 10], 8)?;
/// let new = Chunks::new(&[100, 100], [10, 100], 8)?;
/// assert_eq!(rechunk_read_elems(&old, &new)?, 100 * 100);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when the shapes differ.
pub fn rechunk_read_elems(old: &Chunks, new: &Chunks) -> Result<usize> {
    check_same_shape(old, new)?;
    Ok(usize::try_from(direct_stats(old, new).0).unwrap_or(usize::MAX))
}

/// The direct rechunk from `old` to `new` (same shape): its largest read region in elements
/// and its number of pieces (products over the axes of [`axis_stats`], saturating).
fn direct_stats(old: &Chunks, new: &Chunks) -> (u128, u128) {
    old.axes()
        .iter()
        .zip(new.axes())
        .map(|(o, n)| axis_stats(o, n))
        .fold((1u128, 1u128), |(r, p), (ar, ap)| {
            (r.saturating_mul(ar), p.saturating_mul(ap))
        })
}

/// Two rechunk steps are merged into one ([`merge_steps`]) only if the one step has at most
/// this many pieces: each is a dependency and a region to copy in the graph (about 150 bytes).
const MERGE_MAX_PIECES: u128 = 1 << 20;
/// ... and only if its pieces average at least this many bytes: smaller pieces are copied
/// inefficiently (runs of a few elements), and the two steps gather them into larger ones.
const MERGE_MIN_PIECE_BYTES: u128 = 4096;

/// Along one axis, the fewest positions of `old` that a block of `new` depends on through
/// `mid`: the old blocks overlapping the `mid` blocks it overlaps (0 for an empty axis).
fn least_span_through(old: &[usize], mid: &[usize], new: &[usize]) -> u128 {
    let (oo, mo, no) = (
        prefix_offsets(old),
        prefix_offsets(mid),
        prefix_offsets(new),
    );
    // The start of the block of `offsets` holding `first`, and the end of the one holding `last`.
    let hull = |offsets: &[usize], first: usize, last: usize| {
        (
            offsets[block_containing(offsets, first)],
            offsets[block_containing(offsets, last) + 1],
        )
    };
    no.windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| {
            let (ms, me) = hull(&mo, w[0], w[1] - 1);
            let (os, oe) = hull(&oo, ms, me - 1);
            (oe - os) as u128
        })
        .min()
        .unwrap_or(0)
}

/// Whether the rechunk `old → mid → new` is better done in one step, `old → new`, when its
/// tasks read their input blocks in place (a run in one process; lowering merges such steps
/// there, see `merge_rechunks` in `ops/shape.rs`).
///
/// [`plan_rechunk`] goes through an intermediate to bound what one task reads. Where tasks read
/// in place, what that bound buys is memory: the blocks one task reads are held at once. But
/// the two steps hold at least as much at some point whenever every block of `new` depends,
/// through `mid`, on at least as many elements of `old` as any task of the one step reads:
/// when the first block of `new` is done, every element it depends on is still held (in its
/// old block, or in the intermediate block that still has another reader), except its own.
/// Then the intermediate bounds nothing and costs a second copy of the array. So the steps
/// merge when
///
/// - the smallest such dependency of a `new` block, through `mid`, is at least the largest read
///   region of the one step ([`rechunk_read_elems`]),
/// - and the one step's pieces stay few and large: at most 2²⁰ of them, of 4 KiB on average
///   at least.
///
/// Transposing the layout, row blocks to column blocks, is the typical case: every new block
/// depends on every old block either way, so the whole array is held before the first new block
/// is done, whatever the plan.
///
/// ```
/// use blockarray::Chunks;
/// use blockarray::plan::rechunk::{merge_steps, plan_rechunk};
///
/// let old = Chunks::new(&[10000, 10000], [10000, 100], 8)?;
/// let new = Chunks::new(&[10000, 10000], [100, 10000], 8)?;
/// let plan = plan_rechunk(&old, &new, 8, 128 << 20)?;
/// assert!(merge_steps(&old, &plan[0], &new, 8)?);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks) when the shapes differ.
pub fn merge_steps(old: &Chunks, mid: &Chunks, new: &Chunks, itemsize: usize) -> Result<bool> {
    check_same_shape(old, mid)?;
    check_same_shape(mid, new)?;
    let through = old
        .axes()
        .iter()
        .zip(mid.axes())
        .zip(new.axes())
        .map(|((o, m), n)| least_span_through(o, m, n))
        .fold(1u128, u128::saturating_mul);
    let (read, pieces) = direct_stats(old, new);
    let bytes = old
        .shape()
        .iter()
        .fold(itemsize as u128, |b, &n| b.saturating_mul(n as u128));
    Ok(through >= read
        && pieces <= MERGE_MAX_PIECES
        && bytes >= pieces.saturating_mul(MERGE_MIN_PIECE_BYTES))
}

/// One possible chunking of one axis of the intermediate, with what it costs.
#[derive(Debug)]
struct Candidate {
    chunks: Vec<usize>,
    /// Read span along this axis of the step old → candidate.
    read_in: u128,
    /// Read span along this axis of the step candidate → new.
    read_out: u128,
    /// Pieces along this axis of the step old → candidate.
    pieces_in: u128,
    /// Pieces along this axis of the step candidate → new.
    pieces_out: u128,
}

/// `base` merged into about `groups` blocks of nearly equal length, cutting only at boundaries
/// of `base` (each cut at the boundary nearest its ideal place).
fn group_to(base: &[usize], groups: usize) -> Vec<usize> {
    let offsets = prefix_offsets(base);
    let total = *offsets.last().unwrap_or(&0);
    let mut ends = Vec::with_capacity(groups);
    let mut last = 0usize;
    for k in 1..groups {
        #[allow(clippy::cast_possible_truncation)]
        let ideal = ((total as u128 * k as u128 + groups as u128 / 2) / groups as u128) as usize;
        let idx = offsets.partition_point(|&o| o < ideal);
        let above = offsets.get(idx).copied().unwrap_or(total);
        let below = offsets[idx.saturating_sub(1)];
        let cut = if ideal - below <= above - ideal {
            below
        } else {
            above
        };
        if cut > last && cut < total {
            ends.push(cut);
            last = cut;
        }
    }
    ends.push(total);
    let mut prev = 0;
    ends.into_iter()
        .map(|e| {
            let len = e - prev;
            prev = e;
            len
        })
        .collect()
}

/// The chunkings of one axis the intermediate may take: the common refinement of old and new,
/// old, new, and coarser groupings of each (block counts shrinking by a factor 0.8 at a time).
/// Sorted by decreasing number of blocks; the refinement (the most blocks) comes first.
fn axis_candidates(old: &[usize], new: &[usize]) -> Result<Vec<Candidate>> {
    let refinement = unify_axis(old, new)?;
    let mut lists: Vec<Vec<usize>> = vec![refinement.clone(), old.to_vec(), new.to_vec()];
    for base in [&refinement[..], old, new] {
        let mut g = base.len();
        while g > 1 {
            g = (g * 4 / 5).min(g - 1).max(1);
            lists.push(group_to(base, g));
        }
    }
    lists.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    lists.dedup();
    Ok(lists
        .into_iter()
        .map(|chunks| {
            let (read_in, pieces_in) = axis_stats(old, &chunks);
            let (read_out, pieces_out) = axis_stats(&chunks, new);
            Candidate {
                chunks,
                read_in,
                read_out,
                pieces_in,
                pieces_out,
            }
        })
        .collect())
}

/// Read regions of both steps and the pieces of both steps for a choice of candidates.
fn evaluate(cands: &[Vec<Candidate>], choice: &[usize]) -> (u128, u128, u128) {
    let mut read_in = 1u128;
    let mut read_out = 1u128;
    let mut pieces_in = 1u128;
    let mut pieces_out = 1u128;
    for (list, &i) in cands.iter().zip(choice) {
        let c = &list[i];
        read_in = read_in.saturating_mul(c.read_in);
        read_out = read_out.saturating_mul(c.read_out);
        pieces_in = pieces_in.saturating_mul(c.pieces_in);
        pieces_out = pieces_out.saturating_mul(c.pieces_out);
    }
    (read_in, read_out, pieces_in.saturating_add(pieces_out))
}

/// Plans a rechunk from `old` to `new` chunks of elements of `itemsize` bytes: the chunkings to
/// go through, the last one being `new`.
///
/// The guarantee: every step's read region ([`rechunk_read_elems`]: the box of blocks of the
/// previous chunking that one block of the next must read) holds at most
/// `max(max_block_bytes, largest old block, largest new block)` bytes. (The limit is raised to
/// the largest block because a step can never read less than one whole block; with that limit,
/// a plan always exists.)
///
/// The plan:
/// 1. If the direct rechunk keeps to the limit and is not much larger as a graph than the old
///    and new chunkings (at most 4 pieces per old plus new block, dask's threshold), it is the
///    plan: `[new]`.
/// 2. Otherwise one intermediate is chosen. It starts as the common refinement of old and new
///    on every axis, which always keeps to the limit (each of its blocks lies in one old block
///    and each new block is a union of its blocks). Then, greedily, one axis at a time is
///    coarsened (to old's, new's, or a coarser grouping of either or of the refinement), taking
///    the move that removes the most pieces from the two-step graph per growth of the read
///    region, as long as both steps keep to the limit. The result is `[intermediate, new]`,
///    unless the direct rechunk keeps to the limit and is smaller.
///
/// For `10000 × 10000` `f64` from `(10000, 100)` to `(100, 10000)` chunks under 128 MiB, the
/// direct rechunk would read the whole array (800 MB) for every new block; the plan goes through
/// blocks of about `1400 × 1400`, each step reading at most 128 MiB.
///
/// ```
/// use blockarray::Chunks;
/// use blockarray::plan::rechunk::{plan_rechunk, rechunk_read_elems};
///
/// let old = Chunks::new(&[10000, 10000], [10000, 100], 8)?;
/// let new = Chunks::new(&[10000, 10000], [100, 10000], 8)?;
/// let limit = 128 << 20;
/// let plan = plan_rechunk(&old, &new, 8, limit)?;
/// assert_eq!(plan.len(), 2);
/// assert_eq!(plan.last(), Some(&new));
/// assert!(rechunk_read_elems(&old, &plan[0])? * 8 <= limit);
/// assert!(rechunk_read_elems(&plan[0], &new)? * 8 <= limit);
/// # Ok::<(), blockarray::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::Chunks`](crate::ErrorKind::Chunks), naming both chunkings and shapes, when the
/// shapes differ.
pub fn plan_rechunk(
    old: &Chunks,
    new: &Chunks,
    itemsize: usize,
    max_block_bytes: usize,
) -> Result<Vec<Chunks>> {
    check_same_shape(old, new)?;
    if old == new || old.shape().contains(&0) {
        return Ok(vec![new.clone()]);
    }
    // A zero itemsize makes every block free.
    let limit = max_block_bytes
        .checked_div(itemsize)
        .map_or(u128::MAX, |elems| elems as u128)
        .max(old.max_block_elems() as u128)
        .max(new.max_block_elems() as u128);

    let direct = direct_stats(old, new);
    let direct_ok = direct.0 <= limit;
    let blocks = (old.nblocks() as u128).saturating_add(new.nblocks() as u128);
    if direct_ok && direct.1 <= GRAPH_THRESHOLD.saturating_mul(blocks) {
        return Ok(vec![new.clone()]);
    }

    let cands = old
        .axes()
        .iter()
        .zip(new.axes())
        .map(|(o, n)| axis_candidates(o, n))
        .collect::<Result<Vec<_>>>()?;
    // Start at the refinement: the candidate with the most blocks on every axis.
    let mut choice = vec![0usize; cands.len()];
    let (mut read_in, mut read_out, mut cost) = evaluate(&cands, &choice);
    loop {
        let mut best: Option<(f64, u128, usize, usize)> = None;
        let current_read = read_in.max(read_out).max(1) as f64;
        for axis in 0..cands.len() {
            let here = cands[axis][choice[axis]].chunks.len();
            for j in 0..cands[axis].len() {
                if cands[axis][j].chunks.len() >= here {
                    continue;
                }
                let mut trial = choice.clone();
                trial[axis] = j;
                let (ri, ro, c) = evaluate(&cands, &trial);
                if ri > limit || ro > limit || c >= cost {
                    continue;
                }
                let growth = ri.max(ro) as f64 / current_read;
                let gain = (cost as f64 / c as f64).ln();
                let score = if growth <= 1.0 {
                    f64::INFINITY
                } else {
                    gain / growth.ln()
                };
                let better = match best {
                    None => true,
                    Some((s, bc, _, _)) => score > s || (score == s && c < bc),
                };
                if better {
                    best = Some((score, c, axis, j));
                }
            }
        }
        let Some((_, _, axis, j)) = best else { break };
        choice[axis] = j;
        (read_in, read_out, cost) = evaluate(&cands, &choice);
    }
    debug_assert!(read_in <= limit && read_out <= limit);

    let intermediate = Chunks::from_valid(
        cands
            .iter()
            .zip(&choice)
            .map(|(list, &i)| list[i].chunks.clone())
            .collect(),
    );
    if (direct_ok && cost >= direct.1) || intermediate == *old || intermediate == *new {
        return Ok(vec![new.clone()]);
    }
    Ok(vec![intermediate, new.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn ch(axes: &[&[usize]]) -> Chunks {
        Chunks::from_blocks(axes.iter().map(|a| a.to_vec()).collect()).expect("valid chunks")
    }

    /// Reference: the old block holding each position, by a linear scan.
    fn owner(blocks: &[usize], pos: usize) -> usize {
        let mut start = 0;
        for (i, &b) in blocks.iter().enumerate() {
            if pos < start + b {
                return i;
            }
            start += b;
        }
        unreachable!("position {pos} beyond {blocks:?}")
    }

    /// Reference read region of one axis: for each new block, the old blocks owning any of its
    /// positions, their total length; the maximum.
    fn naive_axis_read(old: &[usize], new: &[usize]) -> usize {
        let mut pos = 0;
        let mut best = 0;
        for &n in new {
            let touched: BTreeSet<usize> = (pos..pos + n).map(|p| owner(old, p)).collect();
            best = best.max(touched.iter().map(|&b| old[b]).sum::<usize>());
            pos += n;
        }
        best
    }

    fn naive_read(old: &Chunks, new: &Chunks) -> usize {
        old.axes()
            .iter()
            .zip(new.axes())
            .map(|(o, n)| naive_axis_read(o, n))
            .product()
    }

    #[test]
    fn pieces_examples() {
        // dask's _intersect_1d doctest: old (2, 2, 1) -> new (2, 3).
        assert_eq!(
            rechunk_pieces(&[2, 2, 1], &[2, 3]).unwrap(),
            vec![vec![(0, 0..2)], vec![(1, 0..2), (2, 0..1)]]
        );
        // old (5,) -> new (2, 2, 1).
        assert_eq!(
            rechunk_pieces(&[5], &[2, 2, 1]).unwrap(),
            vec![vec![(0, 0..2)], vec![(0, 2..4)], vec![(0, 4..5)]]
        );
        assert_eq!(rechunk_pieces(&[0], &[0]).unwrap(), vec![vec![(0, 0..0)]]);
        assert_eq!(rechunk_pieces(&[], &[0]).unwrap(), vec![vec![]]);
        // Raw chunk lists may hold empty blocks; they are never read.
        assert_eq!(
            rechunk_pieces(&[2, 0, 2], &[1, 3]).unwrap(),
            vec![vec![(0, 0..1)], vec![(0, 1..2), (2, 0..2)]]
        );
        assert_eq!(
            rechunk_pieces(&[3, 3], &[6]).unwrap(),
            vec![vec![(0, 0..3), (1, 0..3)]]
        );
        let e = rechunk_pieces(&[3, 3], &[5]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("((3, 3),)") && e.to_string().contains("((5,),)"));
    }

    #[test]
    fn read_region_examples() {
        let old = ch(&[&[3, 3, 3]]);
        let new = ch(&[&[4, 5]]);
        // New block 0..4 overlaps old blocks 0..3 and 3..6; new block 4..9 overlaps 3..6
        // and 6..9.
        assert_eq!(rechunk_read_elems(&old, &new).unwrap(), 6);
        assert_eq!(axis_stats(&[3, 3, 3], &[4, 5]), (6, 4));
        assert_eq!(axis_stats(&[3, 3, 3], &[1, 7, 1]), (9, 5));
        assert_eq!(axis_stats(&[0], &[0]), (0, 1));
        assert_eq!(axis_stats(&[10], &[10]), (10, 1));
        let e = rechunk_read_elems(&ch(&[&[3]]), &ch(&[&[4]])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(
            e.to_string().contains("(3,)") && e.to_string().contains("(4,)"),
            "{e}"
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group_to(&[1; 10], 2), vec![5, 5]);
        assert_eq!(group_to(&[1; 10], 3), vec![3, 4, 3]);
        assert_eq!(group_to(&[1; 10], 1), vec![10]);
        assert_eq!(group_to(&[9, 1], 2), vec![9, 1]);
        assert_eq!(group_to(&[5, 5], 4), vec![5, 5]);
    }

    #[test]
    fn classic_transpose_rechunk() {
        let old = Chunks::new(&[10000, 10000], [10000, 100], 8).unwrap();
        let new = Chunks::new(&[10000, 10000], [100, 10000], 8).unwrap();
        let limit = 128 << 20;
        // The direct rechunk reads the whole array per new block.
        assert_eq!(rechunk_read_elems(&old, &new).unwrap(), 10000 * 10000);
        let plan = plan_rechunk(&old, &new, 8, limit).unwrap();
        assert_eq!(plan.len(), 2, "{plan:?}");
        let mid = &plan[0];
        assert_eq!(&plan[1], &new);
        assert!(rechunk_read_elems(&old, mid).unwrap() * 8 <= limit);
        assert!(rechunk_read_elems(mid, &new).unwrap() * 8 <= limit);
        // Close to square blocks of a thousand or so, not tiny ones.
        let m = mid.max_block_shape();
        assert!(m[0] >= 500 && m[1] >= 500, "{mid}");
        assert!(mid.nblocks() <= 100, "{mid}");
    }

    #[test]
    fn small_limit_still_has_a_plan() {
        let old = Chunks::new(&[100, 100], [100, 1], 8).unwrap();
        let new = Chunks::new(&[100, 100], [1, 100], 8).unwrap();
        // The limit is below one block: it is raised to the largest block (100 elements).
        let plan = plan_rechunk(&old, &new, 8, 1).unwrap();
        assert_eq!(plan.len(), 2);
        assert!(rechunk_read_elems(&old, &plan[0]).unwrap() <= 100);
        assert!(rechunk_read_elems(&plan[0], &new).unwrap() <= 100);
    }

    #[test]
    fn trivial_plans() {
        let a = ch(&[&[5, 5], &[2, 2]]);
        assert_eq!(plan_rechunk(&a, &a, 8, 1).unwrap(), vec![a.clone()]);
        let b = ch(&[&[10], &[4]]);
        assert_eq!(plan_rechunk(&a, &b, 8, 1 << 20).unwrap(), vec![b.clone()]);
        let e = ch(&[&[0], &[3]]);
        let f = ch(&[&[0], &[1, 2]]);
        assert_eq!(plan_rechunk(&e, &f, 8, 1).unwrap(), vec![f.clone()]);
        let err = plan_rechunk(&a, &e, 8, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Chunks);
        assert!(err.to_string().contains("(10, 4)"), "{err}");
        assert!(err.to_string().contains("(0, 3)"), "{err}");
    }

    #[test]
    fn many_tiny_pieces_go_through_an_intermediate_even_under_a_large_limit() {
        // 1-element-wide columns to 1-element-high rows: the direct graph has a piece per element.
        let old = Chunks::new(&[64, 64], [64, 1], 8).unwrap();
        let new = Chunks::new(&[64, 64], [1, 64], 8).unwrap();
        let plan = plan_rechunk(&old, &new, 8, usize::MAX).unwrap();
        assert_eq!(plan.len(), 2, "{plan:?}");
    }

    /// Reference of `least_span_through`: for each non-empty new block, the positions of the
    /// mid blocks owning any of its positions, then the total length of the old blocks owning
    /// any of those; the minimum.
    fn naive_least_through(old: &[usize], mid: &[usize], new: &[usize]) -> usize {
        let mid_start = |b: usize| mid[..b].iter().sum::<usize>();
        let mut pos = 0;
        let mut least = None;
        for &n in new {
            if n > 0 {
                let mids: BTreeSet<usize> = (pos..pos + n).map(|p| owner(mid, p)).collect();
                let olds: BTreeSet<usize> = mids
                    .iter()
                    .flat_map(|&m| (mid_start(m)..mid_start(m) + mid[m]).map(|p| owner(old, p)))
                    .collect();
                let len = olds.iter().map(|&b| old[b]).sum::<usize>();
                least = Some(least.map_or(len, |l: usize| l.min(len)));
            }
            pos += n;
        }
        least.unwrap_or(0)
    }

    #[test]
    fn transposing_the_layout_merges_into_one_step() {
        // Every new block depends on every old block through any intermediate: the whole
        // array is held before the first new block is done, so the intermediate bounds nothing.
        let old = Chunks::new(&[10000, 10000], [10000, 100], 8).unwrap();
        let new = Chunks::new(&[10000, 10000], [100, 10000], 8).unwrap();
        let plan = plan_rechunk(&old, &new, 8, 128 << 20).unwrap();
        assert_eq!(plan.len(), 2);
        assert!(merge_steps(&old, &plan[0], &new, 8).unwrap());
        // Blocks ten times thinner: pieces of 10 × 10 elements (800 bytes) are too small to
        // copy well, and there would be a million of them.
        let old = Chunks::new(&[10000, 10000], [10000, 10], 8).unwrap();
        let new = Chunks::new(&[10000, 10000], [10, 10000], 8).unwrap();
        let plan = plan_rechunk(&old, &new, 8, 128 << 20).unwrap();
        assert_eq!(plan.len(), 2);
        assert!(!merge_steps(&old, &plan[0], &new, 8).unwrap());
    }

    #[test]
    fn an_intermediate_that_bounds_memory_is_kept() {
        // The last new block (100 columns) depends through `mid` on one old column block only,
        // while the first reads 99 of them directly: the two steps can hold less.
        let old = ch(&[&[10000], &[100; 100]]);
        let mut wide = vec![9900];
        wide.push(100);
        let new = ch(&[&[10000], &wide]);
        let mid = ch(&[&[10000], &[100; 100]]);
        assert!(!merge_steps(&old, &mid, &new, 8).unwrap());
        // With the new blocks equal, each depends on as much as it reads: merged.
        let even = ch(&[&[10000], &[5000, 5000]]);
        assert!(merge_steps(&old, &mid, &even, 8).unwrap());
    }

    #[test]
    fn merging_refuses_tiny_pieces_and_other_shapes() {
        // Columns of one element to rows of one element: a piece per element.
        let old = Chunks::new(&[64, 64], [64, 1], 8).unwrap();
        let new = Chunks::new(&[64, 64], [1, 64], 8).unwrap();
        let plan = plan_rechunk(&old, &new, 8, usize::MAX).unwrap();
        assert!(!merge_steps(&old, &plan[0], &new, 8).unwrap());
        // An empty array has nothing to move.
        let empty = ch(&[&[0], &[4]]);
        assert!(!merge_steps(&empty, &empty, &empty, 8).unwrap());
        let other = ch(&[&[4], &[4]]);
        let e = merge_steps(&old, &other, &new, 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Chunks);
        assert!(e.to_string().contains("(4, 4)"), "{e}");
    }

    fn two_chunkings() -> impl Strategy<Value = (Chunks, Chunks)> {
        proptest::collection::vec(0usize..24, 1..4).prop_flat_map(|shape| {
            let a: Vec<_> = shape
                .iter()
                .map(|&l| crate::testutil::axis_chunks(l, 0.3))
                .collect();
            let b: Vec<_> = shape
                .iter()
                .map(|&l| crate::testutil::axis_chunks(l, 0.3))
                .collect();
            (a, b).prop_map(|(a, b)| {
                (
                    Chunks::from_blocks(a).unwrap(),
                    Chunks::from_blocks(b).unwrap(),
                )
            })
        })
    }

    proptest! {
        #[test]
        fn pieces_tile_each_new_block((old, new) in (0usize..40).prop_flat_map(|l| (crate::testutil::axis_chunks(l, 0.3), crate::testutil::axis_chunks(l, 0.3)))) {
            let pieces = rechunk_pieces(&old, &new).unwrap();
            prop_assert_eq!(pieces.len(), new.len());
            let old_off = prefix_offsets(&old);
            let mut pos = 0;
            for (n, ps) in new.iter().zip(&pieces) {
                prop_assert!(!ps.is_empty());
                // Concatenating the pieces gives exactly the new block's positions.
                let got: Vec<usize> = ps.iter()
                    .flat_map(|(b, r)| {
                        assert!(r.end <= old[*b]);
                        (old_off[*b] + r.start)..(old_off[*b] + r.end)
                    })
                    .collect();
                let want: Vec<usize> = (pos..pos + n).collect();
                prop_assert_eq!(got, want);
                pos += n;
            }
        }

        #[test]
        fn span_through_matches_reference((old, mid, new) in (0usize..40).prop_flat_map(|l| (crate::testutil::axis_chunks(l, 0.3), crate::testutil::axis_chunks(l, 0.3), crate::testutil::axis_chunks(l, 0.3)))) {
            prop_assert_eq!(least_span_through(&old, &mid, &new), naive_least_through(&old, &mid, &new) as u128);
        }

        #[test]
        fn read_region_matches_reference((old, new) in two_chunkings()) {
            prop_assert_eq!(rechunk_read_elems(&old, &new).unwrap(), naive_read(&old, &new));
        }

        #[test]
        fn pieces_count_matches_rechunk_pieces((old, new) in (1usize..40).prop_flat_map(|l| (crate::testutil::axis_chunks(l, 0.3), crate::testutil::axis_chunks(l, 0.3)))) {
            let n: usize = rechunk_pieces(&old, &new).unwrap().iter().map(Vec::len).sum();
            prop_assert_eq!(axis_stats(&old, &new).1, n as u128);
        }

        #[test]
        fn plans_keep_to_the_limit((old, new) in two_chunkings(), limit_elems in 1usize..300, itemsize in 1usize..9) {
            let plan = plan_rechunk(&old, &new, itemsize, limit_elems * itemsize).unwrap();
            prop_assert!(!plan.is_empty() && plan.len() <= 2);
            prop_assert_eq!(plan.last().unwrap(), &new);
            let bound = limit_elems.max(old.max_block_elems()).max(new.max_block_elems());
            let mut prev = &old;
            for step in &plan {
                prop_assert_eq!(step.shape(), old.shape());
                let read = naive_read(prev, step);
                prop_assert!(read <= bound, "step {} -> {} reads {} > {}", prev, step, read, bound);
                prev = step;
            }
        }
    }
}
