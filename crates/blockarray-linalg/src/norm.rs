//! Vector and matrix norms (`numpy.linalg.norm`).
//!
//! Vector norms and the matrix norms `fro`, `1`, `-1`, `inf`, `-inf` are blockarray
//! reductions (a tree per output block, no task holds more than its fan-in of partials).
//! `2`, `-2` and `nuc` need singular values: the matrix goes through [`svd`](crate::svd).

use crate::scalar::{RealOf, Scalar};
use blockarray::{BlockArray, Error, Result};

/// The `ord` of [`norm`] (NumPy's `ord` argument).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormOrd {
    /// NumPy's `None`: the 2-norm of vectors, the Frobenius norm of matrices (and of the
    /// flattened array when no axes are given).
    Default,
    /// `'fro'`: the square root of the sum of squares (matrices only).
    Fro,
    /// `'nuc'`: the sum of the singular values (matrices only).
    Nuc,
    /// `inf`: vectors `max |x|`; matrices the largest row sum of `|x|`.
    Inf,
    /// `-inf`: vectors `min |x|`; matrices the smallest row sum of `|x|`.
    NegInf,
    /// A number `p`: vectors `(Σ |x|^p)^(1/p)` (`0`: the count of non-zeros); matrices accept
    /// `1` / `-1` (largest / smallest column sum of `|x|`) and `2` / `-2` (largest / smallest
    /// singular value).
    P(f64),
}

impl NormOrd {
    fn describe(&self) -> String {
        match self {
            NormOrd::Default => "None".into(),
            NormOrd::Fro => "'fro'".into(),
            NormOrd::Nuc => "'nuc'".into(),
            NormOrd::Inf => "inf".into(),
            NormOrd::NegInf => "-inf".into(),
            NormOrd::P(p) => format!("{p}"),
        }
    }
}

/// The norm of `x` (`numpy.linalg.norm(x, ord, axis, keepdims)`):
///
/// * `axes == None`: with [`NormOrd::Default`], the 2-norm of all elements whatever the number
///   of axes; otherwise `x` must be 1-d (a vector norm) or 2-d (a matrix norm);
/// * one axis: vector norms along it;
/// * two axes: matrix norms over them (`2`, `-2` and `nuc` only for a 2-d `x`).
///
/// `keepdims` keeps the reduced axes with length 1. The result has the real type.
///
/// ```
/// use blockarray_linalg::{NormOrd, norm};
/// let x = blockarray::BlockArray::from_array(ndarray::array![[3.0, -4.0], [0.0, 12.0]], [1, 2])?;
/// assert_eq!(norm(&x, NormOrd::Default, None, false)?.compute()?.into_iter().next(), Some(13.0));
/// let rows = norm(&x, NormOrd::P(1.0), Some(&[1]), false)?.compute()?;
/// assert_eq!(rows.into_raw_vec_and_offset().0, vec![7.0, 12.0]);
/// let inf = norm(&x, NormOrd::Inf, None, false)?.compute()?; // largest row sum
/// assert_eq!(inf.into_iter().next(), Some(12.0));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn norm<T: Scalar>(
    x: &BlockArray<T>,
    ord: NormOrd,
    axes: Option<&[usize]>,
    keepdims: bool,
) -> Result<BlockArray<RealOf<T>>> {
    let nd = x.ndim();
    let axes: Vec<usize> = match axes {
        None => {
            if ord == NormOrd::Default {
                let all: Vec<usize> = (0..nd).collect();
                return frobenius(x, &all, keepdims);
            }
            match nd {
                1 | 2 => (0..nd).collect(),
                _ => {
                    return Err(Error::axis(format!(
                        "norm: ord {} without axes needs a 1-d or 2-d array, got shape {:?}",
                        ord.describe(),
                        x.shape()
                    )));
                }
            }
        }
        Some(a) => a.to_vec(),
    };
    for (i, &a) in axes.iter().enumerate() {
        if a >= nd {
            return Err(Error::axis_out_of_bounds(a, nd).context("norm"));
        }
        if axes[..i].contains(&a) {
            return Err(Error::axis(format!(
                "norm: axis {a} is repeated in {axes:?}"
            )));
        }
    }
    match axes.len() {
        1 => vector_norm(x, ord, axes[0], keepdims),
        2 => matrix_norm(x, ord, axes[0], axes[1], keepdims),
        k => Err(Error::axis(format!(
            "norm: 1 axis (vector norms) or 2 (matrix norms), got {k}: {axes:?}"
        ))),
    }
}

fn real<T: Scalar>(v: f64) -> RealOf<T> {
    <RealOf<T> as blockarray::Float>::from_f64(v)
}

fn frobenius<T: Scalar>(
    x: &BlockArray<T>,
    axes: &[usize],
    keepdims: bool,
) -> Result<BlockArray<RealOf<T>>> {
    Ok(T::abs_array(x).powi(2).sum(Some(axes), keepdims)?.sqrt())
}

/// The maximum over `axes` of non-negative values, 0 over an empty selection (NumPy's norms
/// take their maxima with `initial=0`).
fn max0<R: blockarray::Float>(
    x: &BlockArray<R>,
    axes: &[usize],
    keepdims: bool,
) -> Result<BlockArray<R>> {
    if axes.iter().any(|&a| x.shape()[a] == 0) {
        // A sum over an empty axis is all zeros, of the reduced shape.
        x.sum(Some(axes), keepdims)
    } else {
        x.max(Some(axes), keepdims)
    }
}

fn vector_norm<T: Scalar>(
    x: &BlockArray<T>,
    ord: NormOrd,
    axis: usize,
    keepdims: bool,
) -> Result<BlockArray<RealOf<T>>> {
    let ax = [axis];
    let abs = T::abs_array(x);
    match ord {
        NormOrd::Default => frobenius(x, &ax, keepdims),
        NormOrd::Inf => max0(&abs, &ax, keepdims),
        NormOrd::NegInf => abs.min(Some(&ax), keepdims),
        // NumPy counts the elements `!= 0`, NaN among them: sign(|x|) is 1 for a non-zero, 0
        // for a zero and NaN for NaN, which fmin with 1 makes 1.
        NormOrd::P(0.0) => abs.sign().fmin(real::<T>(1.0))?.sum(Some(&ax), keepdims),
        NormOrd::P(1.0) => abs.sum(Some(&ax), keepdims),
        NormOrd::P(2.0) => frobenius(x, &ax, keepdims),
        NormOrd::P(p) if p.is_finite() => Ok(abs
            .powf(real::<T>(p))?
            .sum(Some(&ax), keepdims)?
            .powf(real::<T>(1.0 / p))?),
        NormOrd::P(p) => Err(Error::unsupported(format!(
            "norm: vector ord {p} (use NormOrd::Inf / NegInf for ±inf)"
        ))),
        NormOrd::Fro | NormOrd::Nuc => Err(Error::unsupported(format!(
            "norm: ord {} is a matrix norm; a vector norm (one axis, {axis}) takes None, ±inf or a number",
            ord.describe()
        ))),
    }
}

fn matrix_norm<T: Scalar>(
    x: &BlockArray<T>,
    ord: NormOrd,
    row: usize,
    col: usize,
    keepdims: bool,
) -> Result<BlockArray<RealOf<T>>> {
    let abs = T::abs_array(x);
    // Reduce `first` keeping it, then `second` (and drop both unless keepdims).
    let two = |first: usize, max_of_sums: bool| -> Result<BlockArray<RealOf<T>>> {
        let sums = abs.sum(Some(&[first]), true)?;
        let other = if first == row { col } else { row };
        let r = if max_of_sums {
            max0(&sums, &[other], true)?
        } else {
            sums.min(Some(&[other]), true)?
        };
        if keepdims {
            Ok(r)
        } else {
            let mut drop = [row, col];
            drop.sort_unstable();
            r.squeeze(Some(&drop))
        }
    };
    match ord {
        NormOrd::Default | NormOrd::Fro => frobenius(x, &[row, col], keepdims),
        NormOrd::Inf => two(col, true),
        NormOrd::NegInf => two(col, false),
        NormOrd::P(1.0) => two(row, true),
        NormOrd::P(-1.0) => two(row, false),
        NormOrd::P(p) if p == 2.0 || p == -2.0 => singular(
            x,
            row,
            col,
            keepdims,
            if p > 0.0 { Pick::Max } else { Pick::Min },
        ),
        NormOrd::Nuc => singular(x, row, col, keepdims, Pick::Sum),
        NormOrd::P(p) => Err(Error::unsupported(format!(
            "norm: matrix ord {p}: matrix norms take None, 'fro', 'nuc', ±inf, ±1 or ±2"
        ))),
    }
}

enum Pick {
    Max,
    Min,
    Sum,
}

fn singular<T: Scalar>(
    x: &BlockArray<T>,
    row: usize,
    col: usize,
    keepdims: bool,
    pick: Pick,
) -> Result<BlockArray<RealOf<T>>> {
    if x.ndim() != 2 {
        return Err(Error::unsupported(format!(
            "norm: ord 2, -2 and 'nuc' need a 2-d array (singular values of one matrix), got shape {:?}",
            x.shape()
        )));
    }
    let m = if row < col { x.clone() } else { x.t() };
    if m.shape()[0].min(m.shape()[1]) == 0 {
        // No singular values: NumPy's largest and sum are 0, its smallest an error.
        if let Pick::Min = pick {
            return Err(Error::shape(format!(
                "norm: ord -2 of an empty matrix (shape {:?}) has no smallest singular value",
                x.shape()
            )));
        }
        let zero = BlockArray::<RealOf<T>>::zeros(&[], 1)?;
        return if keepdims {
            zero.insert_axis(0)?.insert_axis(0)
        } else {
            Ok(zero)
        };
    }
    let (_, s, _) = crate::svd(&m)?;
    let r = match pick {
        Pick::Max => s.max(None, false)?,
        Pick::Min => s.min(None, false)?,
        Pick::Sum => s.sum(None, false)?,
    };
    if keepdims {
        r.insert_axis(0)?.insert_axis(0)
    } else {
        Ok(r)
    }
}
