//! `einsum` (Einstein summation), `outer`, and `matmul` over leading batch axes.
//!
//! # Design notes
//!
//! `einsum` parses its subscripts (explicit `->` form or NumPy's implicit form, with `...`
//! standing for broadcast leading axes) into integer labels, then lowers to operations that
//! already exist, so every step is as lazy as they are:
//!
//! 1. a label repeated within one operand takes that operand's diagonal ([`diagonal`]);
//! 2. a label found in one operand only and not in the output is summed away at once;
//! 3. operands are combined left to right. Labels both share that are needed neither later
//!    nor in the output are contracted by [`tensordot`] (blocked matrix products) when the
//!    two share no other label; when they also share kept labels (batch axes, as in
//!    `...ij,...jk->...ik`) — for a few batch elements of large matrices — one `tensordot`
//!    per batch element, stacked; otherwise the pair is aligned, multiplied with broadcasting and summed
//!    over the contracted labels — blockwise products whose contracted axes are rechunked
//!    so that one product block stays under [`EINSUM_BLOCK_ELEMS`] elements;
//! 4. the result is transposed to the output's order.
//!
//! Batched `matmul` (operands of more than two axes) is `einsum("...ij,...jk->...ik")`.
//!
//! [`diagonal`]: BlockArray::diagonal

use crate::ops::contract::MatMul;
use crate::{BlockArray, ChunkSpec, Error, Numeric, OpName, Result, tensordot};

/// The most elements one block of the broadcast product of a batched contraction may hold
/// (the contracted axes are rechunked to stay below it where they can: never into more than
/// [`EINSUM_MAX_BLOCKS`] blocks of the product, larger blocks being kept beyond that).
pub const EINSUM_BLOCK_ELEMS: usize = 1 << 22;

/// The most blocks the rechunking of contracted axes may give the broadcast product of a
/// batched contraction (2²⁰): a product too large for it keeps blocks of more than
/// [`EINSUM_BLOCK_ELEMS`] elements rather than a graph of hundreds of millions of tasks
/// (whose bookkeeping alone would exhaust memory).
pub const EINSUM_MAX_BLOCKS: usize = 1 << 20;

/// Labels of `...` axes: `ELLIPSIS + d` for the axis `d` places from the right end of the
/// ellipsis (so broadcasting aligns them from the right).
const ELLIPSIS: u32 = 1 << 16;

/// One operand's labels.
type Labels = Vec<u32>;

fn label_name(l: u32) -> String {
    if l >= ELLIPSIS {
        format!("... axis {}", l - ELLIPSIS)
    } else {
        char::from_u32(l).map_or_else(|| l.to_string(), |c| format!("'{c}'"))
    }
}

/// A term's letters and whether (and where) it has an ellipsis.
fn parse_term(term: &str, what: &str) -> Result<(Vec<u32>, Option<usize>)> {
    let mut letters = Vec::new();
    let mut ellipsis = None;
    let mut rest = term.trim();
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("...") {
            if ellipsis.is_some() {
                return Err(Error::shape(format!(
                    "einsum: {what} '{term}' has more than one '...'"
                )));
            }
            ellipsis = Some(letters.len());
            rest = &rest[3..];
        } else if c.is_ascii_alphabetic() {
            letters.push(c as u32);
            rest = &rest[1..];
        } else if c == ' ' {
            // NumPy skips spaces between subscripts ("i j->ij").
            rest = &rest[1..];
        } else {
            return Err(Error::shape(format!(
                "einsum: {what} '{term}' contains '{c}': subscripts are letters and '...'"
            )));
        }
    }
    Ok((letters, ellipsis))
}

/// The labels of an operand of `ndim` axes for a parsed term.
fn expand(letters: &[u32], ellipsis: Option<usize>, ndim: usize, term: &str) -> Result<Labels> {
    match ellipsis {
        None if letters.len() != ndim => Err(Error::shape(format!(
            "einsum: subscripts '{term}' name {} axes but the operand has {ndim}",
            letters.len()
        ))),
        None => Ok(letters.to_vec()),
        Some(_) if letters.len() > ndim => Err(Error::shape(format!(
            "einsum: subscripts '{term}' name {} axes but the operand has {ndim}",
            letters.len()
        ))),
        Some(at) => {
            let m = ndim - letters.len();
            let mut out = letters[..at].to_vec();
            out.extend((0..m).map(|i| ELLIPSIS + (m - 1 - i) as u32));
            out.extend_from_slice(&letters[at..]);
            Ok(out)
        }
    }
}

/// The operand transposed and given unit axes so that its axes are `to` (a superset of its
/// labels).
fn align<T: MatMul>(x: &BlockArray<T>, labels: &[u32], to: &[u32]) -> Result<BlockArray<T>> {
    let perm: Vec<usize> = to
        .iter()
        .filter_map(|l| labels.iter().position(|m| m == l))
        .collect();
    let mut y = x.permuted_axes(&perm)?;
    let missing: Vec<usize> = (0..to.len())
        .filter(|&k| !labels.contains(&to[k]))
        .collect();
    if !missing.is_empty() {
        y = y.expand_dims(&missing)?;
    }
    Ok(y)
}

/// `x` with axis `axis` cut into blocks of at most `step`.
fn rechunk_axis<T: MatMul>(x: &BlockArray<T>, axis: usize, step: usize) -> Result<BlockArray<T>> {
    let mut axes = x.chunks().axes().to_vec();
    let n = x.shape()[axis];
    if axes[axis].iter().all(|&c| c <= step) {
        return Ok(x.clone());
    }
    axes[axis] = crate::ops::shape_more::cut(n, step);
    x.rechunk(ChunkSpec::Explicit(axes))
}

/// Einstein summation (`numpy.einsum`) over any number of operands: `"ij,jk->ik"` (explicit)
/// or `"ij,jk"` (implicit: the output is the labels seen once, in alphabetical order, after
/// any `...` axes). `...` stands for leading axes that broadcast. Errors name the bad
/// subscript: characters other than letters, a count of terms different from the operands,
/// a term naming more axes than its operand has, an output label not in any input or
/// repeated, or a label whose lengths differ.
///
/// ```
/// use blockarray::{BlockArray, einsum};
/// let a = BlockArray::arange(0.0f64, 6.0, 1.0, 4)?.reshape(&[2, 3])?;
/// let b = BlockArray::arange(0.0f64, 12.0, 1.0, 5)?.reshape(&[3, 4])?;
/// let c = einsum("ij,jk->ik", &[&a, &b])?;
/// assert_eq!(c.compute()?, a.matmul(&b)?.compute()?);
/// assert_eq!(einsum("ii", &[&b.slice(blockarray::s![.., ..3])?])?.compute()?[[]], 0.0 + 5.0 + 10.0);
/// assert!(einsum("ij,jk->iz", &[&a, &b]).is_err());
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn einsum<T: MatMul>(subscripts: &str, operands: &[&BlockArray<T>]) -> Result<BlockArray<T>> {
    let (inputs, output) = match subscripts.split_once("->") {
        Some((i, o)) => {
            if o.contains("->") {
                return Err(Error::shape(format!(
                    "einsum: '{subscripts}' has more than one '->'"
                )));
            }
            (i, Some(o))
        }
        None => (subscripts, None),
    };
    let terms: Vec<&str> = inputs.split(',').collect();
    if terms.len() != operands.len() {
        return Err(Error::shape(format!(
            "einsum: '{subscripts}' has {} input terms for {} operands",
            terms.len(),
            operands.len()
        )));
    }
    for x in operands {
        x.chunks().require_known("einsum")?;
    }
    let mut labels: Vec<Labels> = Vec::with_capacity(terms.len());
    let mut max_ell = 0;
    for (term, x) in terms.iter().zip(operands) {
        let (letters, ell) = parse_term(term, "input term")?;
        let l = expand(&letters, ell, x.ndim(), term)?;
        if ell.is_some() {
            max_ell = max_ell.max(x.ndim() - letters.len());
        }
        labels.push(l);
    }
    // A label repeated within one operand takes a diagonal: its lengths there must agree.
    for (k, (l, x)) in labels.iter().zip(operands).enumerate() {
        for (p, &lab) in l.iter().enumerate() {
            if let Some(q) = l[..p].iter().position(|&m| m == lab)
                && x.shape()[q] != x.shape()[p]
            {
                return Err(Error::shape(format!(
                    "einsum '{subscripts}': label {} repeats in operand {k} with lengths {} and \
                     {} (shape {:?})",
                    label_name(lab),
                    x.shape()[q],
                    x.shape()[p],
                    x.shape()
                )));
            }
        }
    }
    // The length of every label: across operands, a length of 1 broadcasts (NumPy 2's rule,
    // for letters as for '...' axes).
    let mut size: std::collections::BTreeMap<u32, usize> = Default::default();
    for (k, (l, x)) in labels.iter().zip(operands).enumerate() {
        for (&lab, &n) in l.iter().zip(x.shape()) {
            match size.get(&lab).copied() {
                None => {
                    size.insert(lab, n);
                }
                Some(m) if m == n => {}
                // Length 1 broadcasts to the other length, 0 included.
                Some(m) if m == 1 || n == 1 => {
                    size.insert(lab, if m == 1 { n } else { m });
                }
                Some(m) => {
                    return Err(Error::shape(format!(
                        "einsum '{subscripts}': label {} has length {m} in an earlier operand \
                         but {n} in operand {k} (shape {:?})",
                        label_name(lab),
                        x.shape()
                    )));
                }
            }
        }
    }
    let ell_out: Labels = (0..max_ell).rev().map(|d| ELLIPSIS + d as u32).collect();
    let out: Labels = match output {
        Some(o) => {
            let (letters, ell) = parse_term(o, "output")?;
            if ell.is_none() && max_ell > 0 {
                return Err(Error::shape(format!(
                    "einsum '{subscripts}': the inputs have '...' axes but the output does not"
                )));
            }
            for (i, &l) in letters.iter().enumerate() {
                if letters[..i].contains(&l) {
                    return Err(Error::shape(format!(
                        "einsum '{subscripts}': output label {} is repeated",
                        label_name(l)
                    )));
                }
                if !size.contains_key(&l) {
                    return Err(Error::shape(format!(
                        "einsum '{subscripts}': output label {} is in no input",
                        label_name(l)
                    )));
                }
            }
            let at = ell.unwrap_or(0);
            let mut v = letters[..at].to_vec();
            v.extend_from_slice(&ell_out);
            v.extend_from_slice(&letters[at..]);
            v
        }
        None => {
            let mut once: Vec<u32> = size
                .keys()
                .copied()
                .filter(|&l| l < ELLIPSIS)
                .filter(|l| labels.iter().flatten().filter(|m| *m == l).count() == 1)
                .collect();
            once.sort_unstable();
            let mut v = ell_out.clone();
            v.extend(once);
            v
        }
    };

    // Letter axes of length 1 stretched to their label's length ('...' axes broadcast on
    // their own, below).
    let stretched = operands
        .iter()
        .zip(&labels)
        .map(|(x, l)| {
            let target: Vec<usize> = l
                .iter()
                .zip(x.shape())
                .map(|(lab, &n)| {
                    if *lab < ELLIPSIS && n == 1 {
                        size[lab]
                    } else {
                        n
                    }
                })
                .collect();
            if target == x.shape() {
                Ok((*x).clone())
            } else {
                x.broadcast_to(&target)
            }
        })
        .collect::<Result<Vec<BlockArray<T>>>>()?;
    // 1. Diagonals of labels repeated within an operand; 2. labels of one operand only.
    let mut ops: Vec<(BlockArray<T>, Labels)> = Vec::with_capacity(operands.len());
    for (k, (x, l)) in stretched.iter().zip(&labels).enumerate() {
        let (mut x, mut l) = (x.clone(), l.clone());
        while let Some((p, q)) = (0..l.len())
            .flat_map(|p| (p + 1..l.len()).map(move |q| (p, q)))
            .find(|&(p, q)| l[p] == l[q])
        {
            x = x.diagonal(0, p, q)?;
            let lab = l[p];
            l.remove(q);
            l.remove(p);
            l.push(lab);
        }
        let elsewhere = |lab: u32| {
            out.contains(&lab)
                || labels
                    .iter()
                    .enumerate()
                    .any(|(j, m)| j != k && m.contains(&lab))
        };
        let (x, l) = sum_labels(x, l, |lab| !elsewhere(lab))?;
        ops.push((x, l));
    }

    // 3. Pairwise combination.
    let mut rest = ops.into_iter();
    let (mut acc, mut acc_l) = rest
        .next()
        .ok_or_else(|| Error::shape(format!("einsum '{subscripts}': no operands")))?;
    let later: Vec<(BlockArray<T>, Labels)> = rest.collect();
    for (i, (x, xl)) in later.iter().enumerate() {
        let kept =
            |lab: u32| out.contains(&lab) || later[i + 1..].iter().any(|(_, m)| m.contains(&lab));
        let shared: Vec<u32> = acc_l.iter().copied().filter(|l| xl.contains(l)).collect();
        let contracted: Vec<u32> = shared.iter().copied().filter(|&l| !kept(l)).collect();
        if shared.iter().all(|&l| !kept(l)) {
            let ax_a: Vec<usize> = contracted
                .iter()
                .map(|l| acc_l.iter().position(|m| m == l).expect("shared"))
                .collect();
            let ax_b: Vec<usize> = contracted
                .iter()
                .map(|l| xl.iter().position(|m| m == l).expect("shared"))
                .collect();
            acc = tensordot(&acc, x, &ax_a, &ax_b)?;
            acc_l = acc_l
                .iter()
                .copied()
                .filter(|l| !contracted.contains(l))
                .chain(xl.iter().copied().filter(|l| !contracted.contains(l)))
                .collect();
        } else if let Some((r, l)) = batch_loop(&acc, &acc_l, x, xl, &contracted, kept, &size)? {
            acc = r;
            acc_l = l;
        } else {
            let mut union = acc_l.clone();
            union.extend(xl.iter().copied().filter(|l| !acc_l.contains(l)));
            let (mut a, mut b) = (align(&acc, &acc_l, &union)?, align(x, xl, &union)?);
            // Keep one block of the broadcast product under the bound by cutting the
            // contracted axes.
            for &c in &contracted {
                let ax = union.iter().position(|&l| l == c).expect("in union");
                let (na, nb) = (a.numblocks(), b.numblocks());
                let elems: usize = (0..union.len())
                    .map(|k| {
                        let m = |y: &BlockArray<T>| {
                            y.chunks().axis(k).iter().copied().max().unwrap_or(1)
                        };
                        m(&a).max(m(&b)).max(1)
                    })
                    .fold(1usize, usize::saturating_mul);
                if elems > EINSUM_BLOCK_ELEMS {
                    let cur = a
                        .chunks()
                        .axis(ax)
                        .iter()
                        .copied()
                        .max()
                        .unwrap_or(1)
                        .max(1);
                    // In u128: `cur * EINSUM_BLOCK_ELEMS` overflows usize for axes of 2⁴²;
                    // the quotient is at most `cur` (as `elems >= cur`).
                    let step =
                        (cur as u128 * EINSUM_BLOCK_ELEMS as u128 / elems as u128).max(1) as usize;
                    // No more than EINSUM_MAX_BLOCKS blocks of the product in all.
                    let others = (0..union.len())
                        .filter(|&k| k != ax)
                        .map(|k| na[k].max(nb[k]))
                        .fold(1usize, usize::saturating_mul);
                    let allowed = (EINSUM_MAX_BLOCKS / others.max(1)).max(1);
                    let step = step.max(a.shape()[ax].max(b.shape()[ax]).div_ceil(allowed));
                    a = rechunk_axis(&a, ax, step)?;
                    b = rechunk_axis(&b, ax, step)?;
                }
            }
            let prod = a.zip_map(&b, OpName::pure("einsum-mul", &()), |p: T, q: T| {
                p.mul_wrap(q)
            })?;
            let (s, l) = sum_labels(prod, union, |lab| contracted.contains(&lab))?;
            acc = s;
            acc_l = l;
        }
    }
    // 4. Anything left that the output does not name, then the output's order.
    let (acc, acc_l) = sum_labels(acc, acc_l, |lab| !out.contains(&lab))?;
    let perm: Vec<usize> = out
        .iter()
        .map(|l| {
            acc_l
                .iter()
                .position(|m| m == l)
                .expect("every output label is kept")
        })
        .collect();
    acc.permuted_axes(&perm)
}

/// At most this many batch elements are contracted one by one (see [`batch_loop`]).
const BATCH_LOOP_MAX: usize = 64;

/// Products of one batch element at least this large (in multiply-adds) go through
/// `tensordot` (blocked GEMM) per batch element rather than the broadcast product.
const BATCH_LOOP_MIN_WORK: usize = 1 << 21;

/// A pair with batch labels contracted as one `tensordot` per batch element, the results
/// stacked: for few batch elements of large matrices, where blocked GEMM beats the
/// broadcast product (which has no BLAS inside a task). `None` when the pair is better off
/// with the broadcast product (many batch elements, or small matrices).
fn batch_loop<T: MatMul>(
    a: &BlockArray<T>,
    al: &[u32],
    b: &BlockArray<T>,
    bl: &[u32],
    contracted: &[u32],
    kept: impl Fn(u32) -> bool,
    size: &std::collections::BTreeMap<u32, usize>,
) -> Result<Option<(BlockArray<T>, Labels)>> {
    let batch: Labels = al
        .iter()
        .copied()
        .filter(|l| bl.contains(l) && kept(*l))
        .collect();
    let total: usize = batch.iter().map(|l| size[l]).fold(1, usize::saturating_mul);
    let work: usize = al
        .iter()
        .chain(bl.iter().filter(|l| !al.contains(l)))
        .filter(|l| !batch.contains(l))
        .map(|l| size[l])
        .fold(1, usize::saturating_mul);
    if total == 0 || total > BATCH_LOOP_MAX || work < BATCH_LOOP_MIN_WORK {
        return Ok(None);
    }
    let lengths: Vec<usize> = batch.iter().map(|l| size[l]).collect();
    // One batch element of an operand: its batch axes indexed (length-1 ones at 0).
    let select = |x: &BlockArray<T>, xl: &[u32], at: &[usize]| -> Result<BlockArray<T>> {
        let args: Vec<crate::SliceArg> = xl
            .iter()
            .zip(x.shape())
            .map(|(l, &n)| match batch.iter().position(|m| m == l) {
                Some(p) => crate::SliceArg::Index(if n == 1 { 0 } else { at[p] as isize }),
                None => crate::SliceArg::FULL,
            })
            .collect();
        x.slice(args)
    };
    let rest =
        |xl: &[u32]| -> Labels { xl.iter().copied().filter(|l| !batch.contains(l)).collect() };
    let (ra, rb) = (rest(al), rest(bl));
    let ax_a: Vec<usize> = contracted
        .iter()
        .map(|l| ra.iter().position(|m| m == l).expect("contracted"))
        .collect();
    let ax_b: Vec<usize> = contracted
        .iter()
        .map(|l| rb.iter().position(|m| m == l).expect("contracted"))
        .collect();
    let mut parts = Vec::with_capacity(total);
    for lin in 0..total {
        let mut at = vec![0; lengths.len()];
        let mut r = lin;
        for (k, &n) in lengths.iter().enumerate().rev() {
            at[k] = r % n;
            r /= n;
        }
        parts.push(tensordot(
            &select(a, al, &at)?,
            &select(b, bl, &at)?,
            &ax_a,
            &ax_b,
        )?);
    }
    let refs: Vec<&BlockArray<T>> = parts.iter().collect();
    let stacked = crate::stack(&refs, 0)?;
    let mut shape = lengths;
    shape.extend_from_slice(&stacked.shape()[1..]);
    let mut labels = batch.clone();
    labels.extend(ra.iter().copied().filter(|l| !contracted.contains(l)));
    labels.extend(rb.iter().copied().filter(|l| !contracted.contains(l)));
    Ok(Some((stacked.reshape(&shape)?, labels)))
}

/// `x` summed over the axes whose labels satisfy `drop`.
fn sum_labels<T: Numeric>(
    x: BlockArray<T>,
    labels: Labels,
    drop: impl Fn(u32) -> bool,
) -> Result<(BlockArray<T>, Labels)> {
    let axes: Vec<usize> = (0..labels.len()).filter(|&k| drop(labels[k])).collect();
    if axes.is_empty() {
        return Ok((x, labels));
    }
    let kept = labels.iter().copied().filter(|&l| !drop(l)).collect();
    // In the operands' own type, as NumPy's einsum (not `sum`'s 64-bit integers).
    let summed = crate::ops::reduce::reduce(
        &x,
        crate::ops::reduce::sum_reduction::<T>(),
        Some(&axes),
        false,
        crate::ops::reduce::DEFAULT_FANIN,
    )?;
    Ok((summed, kept))
}

/// The outer product of two arrays, flattened first (`numpy.outer`): `out[i, j] = a[i] ·
/// b[j]`, a broadcast elementwise product.
///
/// ```
/// use blockarray::{BlockArray, outer};
/// let a = BlockArray::arange(1i64, 3, 1, 1)?;
/// let b = BlockArray::arange(1i64, 4, 1, 2)?;
/// assert_eq!(outer(&a, &b)?.compute()?, ndarray::array![[1, 2, 3], [2, 4, 6]].into_dyn());
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn outer<T: Numeric>(a: &BlockArray<T>, b: &BlockArray<T>) -> Result<BlockArray<T>> {
    let col = a.ravel()?.insert_axis(1)?;
    let row = b.ravel()?.insert_axis(0)?;
    col.zip_map(&row, OpName::pure("outer", &()), |p: T, q: T| p.mul_wrap(q))
}

/// `matmul` with NumPy's rules for operands of any number of axes (at least one): the last
/// two axes are matrices, a 1-d operand is a vector (its axis dropped from the result), and
/// the leading axes broadcast.
pub(crate) fn matmul_nd<T: MatMul>(a: &BlockArray<T>, b: &BlockArray<T>) -> Result<BlockArray<T>> {
    let spec = match (a.ndim(), b.ndim()) {
        (0, _) | (_, 0) => {
            return Err(Error::shape(format!(
                "matmul: operands must have at least 1 axis, got shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            )));
        }
        (1, _) => "j,...jk->...k",
        (_, 1) => "...ij,j->...i",
        _ => "...ij,...jk->...ik",
    };
    einsum(spec, &[a, b]).map_err(|e| {
        e.context(format!(
            "matmul of shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        ))
    })
}
