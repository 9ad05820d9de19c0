//! Reductions along axes, as tree reductions, and cumulative sums and products.
//!
//! # Design notes
//!
//! A [`Reduction`] says how to reduce one block over some axes to a *partial* (with those axes
//! kept, of length 1), how to merge two partials of the same shape, and how to finish a partial
//! into output values. [`reduce`] builds three kinds of nodes:
//!
//! 1. one partial per input block (blockwise, so it fuses with the elementwise work before it);
//! 2. combine levels: each merges up to `fanin` partials (split between the reduced axes), until
//!    one partial is left along every reduced axis (the tree: dask's `split_every`);
//! 3. finish (blockwise), then the reduced axes are dropped unless `keepdims`.
//!
//! Partials of mean, var and std are `(count, mean, M2)` in `f64`, merged with Chan et al.'s
//! pairwise update, so the result is stable whatever the chunking (no sum-of-squares
//! cancellation). Sums accumulate in the element type, like NumPy for `f32`/`f64`/`i64`.

use crate::element::{Element, Float, Numeric, Real};
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::expr::wire::{WireElement, get_block, put_block};
use crate::ops::elementwise::{nan_max, nan_min};
use crate::ops::shape::axes_node;
use crate::{BlockArray, Chunks, Error, Result};
use dag_core::{BlockIndex, OpName, Tokenizer, Value};
use ndarray::{ArrayD, ArrayViewD, Axis, CowArray, Ix2, IxDyn, Zip};
use std::sync::Arc;

/// The default number of partials one combine task merges.
pub const DEFAULT_FANIN: usize = 8;

/// A blocked reduction.
pub trait Reduction: Send + Sync + 'static {
    /// Input element type.
    type In: Element;
    /// Output element type.
    type Out: Element;
    /// What one block reduces to.
    type Partial: Send + Sync + 'static;

    /// A short name for task keys (`"sum"`).
    fn name(&self) -> &str;
    /// Feed the parameters (ddof, …) to the key token.
    fn tokenize(&self, _t: &mut Tokenizer) {}
    /// Whether [`tokenize`](Self::tokenize) feeds everything that can change this reduction's
    /// results, so that equal reductions of equal inputs may share their tasks (the key is
    /// then the input's, [`name`](Self::name), the reduction's type, the axes, the fan-in and
    /// the token). The default, `false`, gives every [`reduce`] call keys of its own: a
    /// reduction's parameters cannot be seen unless `tokenize` writes them, and two reductions
    /// whose keys were equal would share one result.
    fn is_pure(&self) -> bool {
        false
    }
    /// Reduce `block` over `axes` (kept as length-1 axes). `offset` is the block's first
    /// element in the whole array of shape `shape` (for arg-reductions); on an axis whose
    /// block lengths are not known yet (after a boolean mask) both are `usize::MAX`, as in
    /// [`BlockInfo`](crate::BlockInfo).
    fn chunk(
        &self,
        block: &ArrayD<Self::In>,
        axes: &[usize],
        offset: &[usize],
        shape: &[usize],
    ) -> Self::Partial;
    /// Merge two partials of the same shape.
    fn merge(&self, a: &Self::Partial, b: &Self::Partial) -> Self::Partial;
    /// The output block of a fully merged partial (reduced axes of length 1).
    fn finish(&self, p: &Self::Partial) -> ArrayD<Self::Out>;
    /// Whether a fully merged partial has a result: an `Err` here fails the task that would
    /// [`finish`](Self::finish) it (for example a minimum over a selection that turned out to
    /// be empty once its length was known). The default accepts every partial.
    fn check(&self, _p: &Self::Partial) -> std::result::Result<(), dag_core::TaskError> {
        Ok(())
    }
    /// Bytes held by a partial.
    fn nbytes(p: &Self::Partial) -> usize;
    /// The predicted bytes of a partial covering `elements` output positions, for planning
    /// memory before a run (the default: one output element each).
    fn predicted_nbytes(&self, elements: usize) -> usize {
        elements * Self::Out::itemsize()
    }
}

/// The block with the reduced axes moved last and flattened: shape (outer, k), rows in the C
/// order of the kept-dims output (borrowed when the layout allows, copied otherwise); and that
/// output's shape (reduced axes → 1).
fn lanes<'a, T: Element>(
    block: &'a ArrayD<T>,
    axes: &[usize],
) -> (CowArray<'a, T, Ix2>, Vec<usize>) {
    let nd = block.ndim();
    let kept: Vec<usize> = (0..nd).filter(|a| !axes.contains(a)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
    let outer: usize = kept.iter().map(|&a| block.shape()[a]).product();
    let k: usize = axes.iter().map(|&a| block.shape()[a]).product();
    let moved = block.view().permuted_axes(IxDyn(&perm));
    let moved: CowArray<'a, T, IxDyn> = if moved.is_standard_layout() {
        moved.into()
    } else {
        moved.as_standard_layout().into_owned().into()
    };
    let flat = moved
        .into_shape_with_order((outer, k))
        .expect("sizes match");
    let mut out_shape = block.shape().to_vec();
    for &a in axes {
        out_shape[a] = 1;
    }
    (flat, out_shape)
}

/// Elements NumPy's pairwise summation adds in one run (`PW_BLOCKSIZE`): shorter runs are
/// folded with eight interleaved accumulators, longer ones split in halves merged pairwise.
const PAIRWISE_RUN: usize = 128;

/// Sub-arrays folded in order along a leading axis before halves are merged pairwise.
const PAIRWISE_ROWS: usize = 16;

/// Fold a slice pairwise: `step(acc, x)` adds an element, `merge(a, b)` joins two partial
/// results (both must be associative, and commutative for the interleaving). Runs of up to
/// [`PAIRWISE_RUN`] elements use eight interleaved accumulators, which the compiler
/// vectorises; longer slices are split in halves (at a multiple of 8) folded separately, so a
/// float sum's rounding error grows with `log n`, not `n` — NumPy's pairwise summation, at
/// memory speed. (A plain loop with eight lanes summed 2·10⁸ `f32` ones to 134217730.)
pub(crate) fn fold_pairwise<T: Copy, A: Copy>(
    xs: &[T],
    identity: A,
    step: &impl Fn(A, T) -> A,
    merge: &impl Fn(A, A) -> A,
) -> A {
    if xs.len() > PAIRWISE_RUN {
        let half = (xs.len() / 2) & !7;
        return merge(
            fold_pairwise(&xs[..half], identity, step, merge),
            fold_pairwise(&xs[half..], identity, step, merge),
        );
    }
    let mut acc = [identity; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = step(acc[i], c[i]);
        }
    }
    let rest = chunks.remainder().iter().fold(identity, |a, &x| step(a, x));
    let pairs = [
        merge(acc[0], acc[1]),
        merge(acc[2], acc[3]),
        merge(acc[4], acc[5]),
        merge(acc[6], acc[7]),
    ];
    merge(
        merge(merge(pairs[0], pairs[1]), merge(pairs[2], pairs[3])),
        rest,
    )
}

/// Fold `view` along `axis` pairwise into an array without that axis: `leaf` folds up to
/// [`PAIRWISE_ROWS`] consecutive sub-arrays in order, `merge` adds the right half's result into
/// the left's. The sub-arrays are added whole (vectorised across the kept axes), and the
/// rounding error grows with `log n` along the axis instead of `n`.
fn fold_axis_pairwise<T, A>(
    view: ArrayViewD<'_, T>,
    axis: Axis,
    leaf: &impl Fn(ArrayViewD<'_, T>) -> ArrayD<A>,
    merge: &impl Fn(&mut ArrayD<A>, &ArrayD<A>),
) -> ArrayD<A> {
    let n = view.len_of(axis);
    if n <= PAIRWISE_ROWS {
        return leaf(view);
    }
    let (left, right) = view.split_at(axis, n / 2);
    let mut out = fold_axis_pairwise(left, axis, leaf, merge);
    merge(&mut out, &fold_axis_pairwise(right, axis, leaf, merge));
    out
}

/// Fold `block` over `axes`, keeping the reduced axes as length 1. `f` must be associative and
/// commutative. Contiguous trailing axes fold each lane with [`fold_pairwise`]; other axes are
/// folded one at a time with [`fold_axis_pairwise`] (whole sub-arrays at a time).
fn fold_axes<T: Element>(
    block: &ArrayD<T>,
    axes: &[usize],
    identity: T,
    f: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    let nd = block.ndim();
    let trailing = axes
        .iter()
        .enumerate()
        .all(|(i, &a)| a == nd - axes.len() + i);
    if !axes.is_empty() && trailing && block.is_standard_layout() {
        // Contiguous lanes (a 1-d block, or reducing the last axes). (`fold_axis` walks these
        // lanes one element at a time with a dependency chain: ~40 ns per element.)
        let (flat, shape) = lanes(block, axes);
        let out: Vec<T> = flat
            .rows()
            .into_iter()
            .map(|row| {
                fold_pairwise(
                    row.as_slice().expect("standard layout rows are contiguous"),
                    identity,
                    &f,
                    &f,
                )
            })
            .collect();
        return ArrayD::from_shape_vec(IxDyn(&shape), out).expect("sizes match");
    }
    let mut cur: Option<ArrayD<T>> = None;
    // Descending, so the remaining axis numbers stay valid as axes are removed.
    for &a in axes.iter().rev() {
        let view = match &cur {
            Some(c) => c.view(),
            None => block.view(),
        };
        let leaf = |v: ArrayViewD<'_, T>| v.fold_axis(Axis(a), identity, |&acc, &x| f(acc, x));
        let merge = |acc: &mut ArrayD<T>, other: &ArrayD<T>| {
            Zip::from(acc).and(other).for_each(|x, &y| *x = f(*x, y));
        };
        cur = Some(fold_axis_pairwise(view, Axis(a), &leaf, &merge));
    }
    // Over no axes every element is still folded once into the identity (nansum of a NaN is 0).
    let mut out = cur.unwrap_or_else(|| block.mapv(|x| f(identity, x)));
    for &a in axes {
        out.insert_axis_inplace(Axis(a));
    }
    out
}

fn zip_with<T: Element>(a: &ArrayD<T>, b: &ArrayD<T>, f: impl Fn(T, T) -> T) -> ArrayD<T> {
    Zip::from(a).and(b).map_collect(|&x, &y| f(x, y))
}

/// A reduction that folds elements with an associative function from an identity: sums,
/// products, extrema, logical folds. Pass it to [`reduce`] to choose the tree's fan-in.
///
/// ```
/// use blockarray::{BlockArray, Fold, reduce};
/// let x = BlockArray::arange(0i64, 1000, 1, 10)?;
/// // The largest value, combining 2 partials per task (a deep, narrow tree).
/// let m = reduce(&x, Fold::new("max", i64::MIN, |a: i64, b: i64| a.max(b)), None, false, 2)?;
/// assert_eq!(m.compute()?.into_iter().next(), Some(999));
/// # Ok::<(), blockarray::Error>(())
/// ```
pub struct Fold<T, F> {
    op: OpName,
    identity: T,
    f: F,
}

impl<T: Element, F: Fn(T, T) -> T + Send + Sync + 'static> Fold<T, F> {
    /// Fold with `f` (associative and commutative) starting from `identity`. `name` labels the
    /// tasks; from a plain name the keys are unique to this fold (a closure's captured values
    /// cannot be seen); with [`OpName::pure`] the caller vouches that name and token identify
    /// `f`, so equal reductions share their tasks.
    pub fn new(name: impl Into<OpName>, identity: T, f: F) -> Fold<T, F> {
        Fold {
            op: name.into(),
            identity,
            f,
        }
    }
}

impl<T: Element, F: Fn(T, T) -> T + Send + Sync + 'static> Reduction for Fold<T, F> {
    type In = T;
    type Out = T;
    type Partial = ArrayD<T>;
    fn name(&self) -> &str {
        self.op.name()
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write(&self.op).write_str(std::any::type_name::<F>());
        self.identity.tokenize(t);
    }
    /// The [`OpName`]'s token is unique per fold unless the caller vouched for it with
    /// [`OpName::pure`].
    fn is_pure(&self) -> bool {
        true
    }
    fn chunk(&self, block: &ArrayD<T>, axes: &[usize], _: &[usize], _: &[usize]) -> ArrayD<T> {
        fold_axes(block, axes, self.identity, &self.f)
    }
    fn merge(&self, a: &ArrayD<T>, b: &ArrayD<T>) -> ArrayD<T> {
        zip_with(a, b, &self.f)
    }
    fn finish(&self, p: &ArrayD<T>) -> ArrayD<T> {
        p.clone()
    }
    fn nbytes(p: &ArrayD<T>) -> usize {
        p.len() * T::itemsize()
    }
}

/// Count, sum and sum of squared deviations from the mean, per output position. The sum, not
/// the mean, is carried so that the mean is NumPy's `sum / n` — the same value, and the same
/// infinities where a sum overflows or holds equal infinities (a running mean would turn
/// `inf - inf` into NaN).
#[derive(Clone)]
pub struct MomentsPartial {
    n: ArrayD<f64>,
    sum: ArrayD<f64>,
    m2: ArrayD<f64>,
}

/// What a moments reduction returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MomentKind {
    /// The mean.
    Mean,
    /// The variance with `ddof` delta degrees of freedom.
    Var(f64),
    /// The standard deviation with `ddof`.
    Std(f64),
}

/// Mean, variance or standard deviation, NaN-propagating or NaN-skipping.
pub struct Moments<T> {
    kind: MomentKind,
    skip_nan: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Float> Moments<T> {
    /// A moments reduction.
    pub fn new(kind: MomentKind, skip_nan: bool) -> Moments<T> {
        Moments {
            kind,
            skip_nan,
            _type: std::marker::PhantomData,
        }
    }

    /// Whether partials carry the squared deviations: a mean needs the count and the sum
    /// only, so its `m2` stays zero (a second pass over every block saved), and `merge` and
    /// `finish` never read it.
    fn needs_m2(&self) -> bool {
        !matches!(self.kind, MomentKind::Mean)
    }
}

impl<T: Float> Reduction for Moments<T> {
    type In = T;
    type Out = T;
    type Partial = MomentsPartial;
    fn name(&self) -> &str {
        match (self.kind, self.skip_nan) {
            (MomentKind::Mean, false) => "mean",
            (MomentKind::Mean, true) => "nanmean",
            (MomentKind::Var(_), false) => "var",
            (MomentKind::Var(_), true) => "nanvar",
            (MomentKind::Std(_), false) => "std",
            (MomentKind::Std(_), true) => "nanstd",
        }
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        match self.kind {
            MomentKind::Mean => t.write_u64(0),
            MomentKind::Var(d) => t.write_u64(1).write_f64(d),
            MomentKind::Std(d) => t.write_u64(2).write_f64(d),
        };
    }
    /// The kind and `ddof` are in the token, NaN-skipping in the name.
    fn is_pure(&self) -> bool {
        true
    }
    fn chunk(&self, block: &ArrayD<T>, axes: &[usize], _: &[usize], _: &[usize]) -> MomentsPartial {
        let nd = block.ndim();
        let trailing = axes
            .iter()
            .enumerate()
            .all(|(i, &a)| a == nd - axes.len() + i);
        let add = |a: f64, b: f64| a + b;
        let need_m2 = self.needs_m2();
        if !self.skip_nan && axes.len() == 1 && !trailing {
            // One leading or middle axis: two passes over the sub-arrays along it, folded
            // pairwise into f64 arrays of the kept shape (no copy of the block).
            let ax = Axis(axes[0]);
            let count = block.len_of(ax);
            let mut kept = block.shape().to_vec();
            kept.remove(axes[0]);
            let merge = |acc: &mut ArrayD<f64>, other: &ArrayD<f64>| *acc += other;
            let sum_rows = |v: ArrayViewD<'_, T>| {
                let mut acc = ArrayD::<f64>::zeros(IxDyn(&kept));
                for sub in v.axis_iter(ax) {
                    Zip::from(&mut acc)
                        .and(&sub)
                        .for_each(|m, &x| *m += x.as_f64());
                }
                acc
            };
            let sum = fold_axis_pairwise(block.view(), ax, &sum_rows, &merge);
            let mean = if count > 0 {
                sum.mapv(|m| m / count as f64)
            } else {
                sum.clone()
            };
            let dev_rows = |v: ArrayViewD<'_, T>| {
                let mut acc = ArrayD::<f64>::zeros(IxDyn(&kept));
                for sub in v.axis_iter(ax) {
                    Zip::from(&mut acc)
                        .and(&sub)
                        .and(&mean)
                        .for_each(|m2, &x, &mu| {
                            let d = x.as_f64() - mu;
                            *m2 += d * d;
                        });
                }
                acc
            };
            let m2 = if need_m2 {
                fold_axis_pairwise(block.view(), ax, &dev_rows, &merge)
            } else {
                ArrayD::zeros(IxDyn(&kept))
            };
            let (sum, m2) = (sum.insert_axis(ax), m2.insert_axis(ax));
            return MomentsPartial {
                n: ArrayD::from_elem(sum.raw_dim(), count as f64),
                sum,
                m2,
            };
        }
        let (flat, shape) = lanes(block, axes);
        let rows = flat.nrows();
        let (mut n, mut sums, mut m2) = (
            Vec::with_capacity(rows),
            Vec::with_capacity(rows),
            Vec::with_capacity(rows),
        );
        let skip = self.skip_nan;
        for r in 0..rows {
            let row = flat.row(r);
            let row = row.as_slice().expect("standard layout rows are contiguous");
            // Pairwise sums in f64 (a NaN counts as nothing when skipped).
            let cnt = if skip {
                row.iter().filter(|x| !x.is_nan()).count()
            } else {
                row.len()
            } as f64;
            let sum = fold_pairwise(
                row,
                0.0,
                &|a: f64, x: T| {
                    if skip && x.is_nan() {
                        a
                    } else {
                        a + x.as_f64()
                    }
                },
                &add,
            );
            let mu = if cnt > 0.0 { sum / cnt } else { 0.0 };
            let dev = if need_m2 {
                fold_pairwise(
                    row,
                    0.0,
                    &|a: f64, x: T| {
                        if skip && x.is_nan() {
                            a
                        } else {
                            let d = x.as_f64() - mu;
                            a + d * d
                        }
                    },
                    &add,
                )
            } else {
                0.0
            };
            n.push(cnt);
            sums.push(sum);
            m2.push(dev);
        }
        let arr = |v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(&shape), v).expect("sizes match");
        MomentsPartial {
            n: arr(n),
            sum: arr(sums),
            m2: arr(m2),
        }
    }
    fn merge(&self, a: &MomentsPartial, b: &MomentsPartial) -> MomentsPartial {
        let need_m2 = self.needs_m2();
        let mut out = a.clone();
        Zip::from(&mut out.n)
            .and(&mut out.sum)
            .and(&mut out.m2)
            .and(&b.n)
            .and(&b.sum)
            .and(&b.m2)
            .for_each(|n, sum, m2, &nb, &sb, &m2b| {
                if nb == 0.0 {
                    return;
                }
                if *n == 0.0 {
                    (*n, *sum, *m2) = (nb, sb, m2b);
                    return;
                }
                // Chan et al.'s pairwise update of the squared deviations (a mean has none).
                let total = *n + nb;
                if need_m2 {
                    let delta = sb / nb - *sum / *n;
                    *m2 = if delta.is_nan() && !m2.is_nan() && !m2b.is_nan() {
                        // Two sums that overflowed alike (inf - inf): each block's deviations
                        // were infinite, and so are the whole's, as NumPy's one pass finds. A
                        // NaN partial (NaN or infinite values in the data) stays NaN.
                        f64::INFINITY
                    } else {
                        *m2 + m2b + delta * delta * *n * nb / total
                    };
                }
                *sum += sb;
                *n = total;
            });
        out
    }
    fn finish(&self, p: &MomentsPartial) -> ArrayD<T> {
        Zip::from(&p.n)
            .and(&p.sum)
            .and(&p.m2)
            .map_collect(|&n, &sum, &m2| {
                // A sum that overflowed makes NumPy's mean infinite and every deviation from
                // it infinite, so the variance is inf (one block's two passes give that, but
                // merging the partials of blocks that did not overflow would not). Partials
                // are f64: an f32 sum overflows when it is rounded to f32.
                let sum = if T::from_f64(sum).is_infinite() {
                    sum.signum() * f64::INFINITY
                } else {
                    sum
                };
                let m2 = if sum.is_infinite() && !m2.is_nan() {
                    f64::INFINITY
                } else {
                    m2
                };
                // As NumPy: no values give NaN; otherwise the divisor is max(n - ddof, 0), so
                // ddof ≥ n gives inf for a non-zero sum of squares and NaN (0/0) for zero.
                // (NumPy's nanvar and nanstd give NaN there instead.)
                let var = |ddof: f64| {
                    if self.skip_nan && n - ddof <= 0.0 {
                        f64::NAN
                    } else {
                        m2 / (n - ddof).max(0.0)
                    }
                };
                match self.kind {
                    _ if n == 0.0 => T::from_f64(f64::NAN),
                    MomentKind::Mean => T::from_f64(sum / n),
                    MomentKind::Var(ddof) => T::from_f64(var(ddof)),
                    // The root of the variance in `T`, as NumPy's: an f32 variance that
                    // overflows f32 has an infinite root.
                    MomentKind::Std(ddof) => T::from_f64(var(ddof)).sqrt(),
                }
            })
    }
    fn nbytes(p: &MomentsPartial) -> usize {
        p.n.len() * 24
    }
    fn predicted_nbytes(&self, elements: usize) -> usize {
        elements * 24
    }
}

/// Position of the minimum or maximum: the first one, and the first NaN if there is one (as
/// NumPy).
pub struct ArgExt<T> {
    max: bool,
    /// `None`: flat index over all axes; `Some(axis)`: position along that axis.
    axis: Option<usize>,
    _type: std::marker::PhantomData<fn() -> T>,
}

/// Values and indices of the best element so far.
#[derive(Clone)]
pub struct ArgPartial<T> {
    value: ArrayD<T>,
    index: ArrayD<i64>,
}

fn register_arg_partial<T: Real + WireElement>() {
    dag_core::wire::register::<ArgPartial<T>>(
        |p, out| {
            put_block(&p.value, out);
            put_block(&p.index, out);
        },
        |r| {
            let p = ArgPartial {
                value: get_block(r)?,
                index: get_block(r)?,
            };
            if p.value.shape() != p.index.shape() {
                return Err(format!(
                    "an arg-reduction partial has values of shape {:?} but indices of shape {:?}",
                    p.value.shape(),
                    p.index.shape()
                ));
            }
            Ok(p)
        },
    );
}

/// Register the partials of the builtin reductions with [`dag_core::wire`], so they can travel
/// between the processes of a distributed run (`Fold`'s partials are blocks, registered with
/// the blocks).
pub(crate) fn register_wire() {
    dag_core::wire::register::<MomentsPartial>(
        |p, out| {
            put_block(&p.n, out);
            put_block(&p.sum, out);
            put_block(&p.m2, out);
        },
        |r| {
            let p = MomentsPartial {
                n: get_block(r)?,
                sum: get_block(r)?,
                m2: get_block(r)?,
            };
            if p.sum.shape() != p.n.shape() || p.m2.shape() != p.n.shape() {
                return Err(format!(
                    "a moments partial has parts of shapes {:?}, {:?} and {:?}",
                    p.n.shape(),
                    p.sum.shape(),
                    p.m2.shape()
                ));
            }
            Ok(p)
        },
    );
    register_arg_partial::<f32>();
    register_arg_partial::<f64>();
    register_arg_partial::<i32>();
    register_arg_partial::<i64>();
    register_arg_partial::<u8>();
    register_arg_partial::<i8>();
    register_arg_partial::<i16>();
    register_arg_partial::<u16>();
    register_arg_partial::<u32>();
    register_arg_partial::<u64>();
}

impl<T: Real> ArgExt<T> {
    fn better(&self, a: T, ia: i64, b: T, ib: i64) -> bool {
        // Is (a, ia) preferred over (b, ib)?
        match (a.is_nan_value(), b.is_nan_value()) {
            (true, true) => ia < ib,
            (true, false) => true,
            (false, true) => false,
            _ if a == b => ia < ib,
            _ => (a > b) == self.max,
        }
    }
}

impl<T: Real> Reduction for ArgExt<T> {
    type In = T;
    type Out = i64;
    type Partial = ArgPartial<T>;
    fn name(&self) -> &str {
        if self.max { "argmax" } else { "argmin" }
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.axis.map_or(u64::MAX, |a| a as u64));
    }
    fn is_pure(&self) -> bool {
        true
    }
    fn chunk(
        &self,
        block: &ArrayD<T>,
        axes: &[usize],
        offset: &[usize],
        shape: &[usize],
    ) -> ArgPartial<T> {
        let bshape = block.shape().to_vec();
        let global = |k: usize| -> i64 {
            match self.axis {
                Some(ax) => (offset[ax] + k) as i64,
                None => {
                    // k is a C-order position in the block (all axes reduced).
                    let mut rem = k;
                    let mut local = vec![0; bshape.len()];
                    for d in (0..bshape.len()).rev() {
                        local[d] = rem % bshape[d];
                        rem /= bshape[d];
                    }
                    let mut flat = 0usize;
                    for d in 0..shape.len() {
                        flat = flat * shape[d] + offset[d] + local[d];
                    }
                    flat as i64
                }
            }
        };
        let (flat, out_shape) = lanes(block, axes);
        let mut value = Vec::with_capacity(flat.nrows());
        let mut index = Vec::with_capacity(flat.nrows());
        for r in 0..flat.nrows() {
            let row = flat.row(r);
            let mut best = 0;
            for k in 1..row.len() {
                if self.better(row[k], k as i64, row[best], best as i64) {
                    best = k;
                }
            }
            value.push(row[best]);
            index.push(global(best));
        }
        ArgPartial {
            value: ArrayD::from_shape_vec(IxDyn(&out_shape), value).expect("sizes match"),
            index: ArrayD::from_shape_vec(IxDyn(&out_shape), index).expect("sizes match"),
        }
    }
    fn merge(&self, a: &ArgPartial<T>, b: &ArgPartial<T>) -> ArgPartial<T> {
        let mut out = a.clone();
        Zip::from(&mut out.value)
            .and(&mut out.index)
            .and(&b.value)
            .and(&b.index)
            .for_each(|v, i, &bv, &bi| {
                if self.better(bv, bi, *v, *i) {
                    *v = bv;
                    *i = bi;
                }
            });
        out
    }
    fn finish(&self, p: &ArgPartial<T>) -> ArrayD<i64> {
        p.index.clone()
    }
    fn nbytes(p: &ArgPartial<T>) -> usize {
        p.value.len() * (T::itemsize() + 8)
    }
    fn predicted_nbytes(&self, elements: usize) -> usize {
        elements * (T::itemsize() + 8)
    }
}

/// A partial as a task value, sized by the reduction.
fn partial_value<R: Reduction>(p: R::Partial) -> Value {
    let n = R::nbytes(&p);
    Value::with_nbytes(p, n)
}

/// How partials merge in a tree's combine levels: every [`Reduction`], and the crate's other
/// trees (the passes of selections, top-k) whose per-block step needs more than one block.
pub(crate) trait Merge: Send + Sync + 'static {
    /// What one block, or a group of blocks, reduces to.
    type Partial: Send + Sync + 'static;
    /// Merge two partials of the same kept-axes block.
    fn merge_partials(&self, a: &Self::Partial, b: &Self::Partial) -> Self::Partial;
    /// Bytes held by a partial.
    fn partial_bytes(p: &Self::Partial) -> usize;
    /// The predicted bytes of a partial covering `elements` kept-axes positions, for planning
    /// memory (the default: eight bytes each).
    fn predicted_partial_bytes(&self, elements: usize) -> usize {
        elements * 8
    }
}

impl<R: Reduction> Merge for R {
    type Partial = R::Partial;
    fn merge_partials(&self, a: &R::Partial, b: &R::Partial) -> R::Partial {
        self.merge(a, b)
    }
    fn partial_bytes(p: &R::Partial) -> usize {
        R::nbytes(p)
    }
    fn predicted_partial_bytes(&self, elements: usize) -> usize {
        self.predicted_nbytes(elements)
    }
}

/// Per-block partials.
struct ChunkNode<R: Reduction> {
    meta: Meta,
    input: Arc<dyn Node>,
    axes: Vec<usize>,
    red: Arc<R>,
}

impl<R: Reduction> Node for ChunkNode<R> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn block_nbytes(&self, index: &[usize]) -> usize {
        self.red
            .predicted_partial_bytes(self.meta.chunks.block_shape(index).iter().product())
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        // Positions along axes of unknown lengths are not known: `usize::MAX`, never a guess
        // from the bounds.
        let chunks = &self.input.meta().chunks;
        let offset = chunks.unknown_as_max(chunks.block_start(index));
        let shape = chunks.unknown_as_max(self.input.meta().shape().to_vec());
        let (red, axes) = (self.red.clone(), self.axes.clone());
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                let p = red.chunk(block_ref::<R::In>(&v[0])?, &axes, &offset, &shape);
                Ok(partial_value::<R>(p))
            }),
        }
    }
}

/// Merges groups of partials along the reduced axes.
struct CombineNode<R: Merge> {
    meta: Meta,
    input: Arc<dyn Node>,
    /// Group size per axis (1 on kept axes).
    group: Vec<usize>,
    red: Arc<R>,
}

impl<R: Merge> Node for CombineNode<R> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn block_nbytes(&self, index: &[usize]) -> usize {
        self.red
            .predicted_partial_bytes(self.meta.chunks.block_shape(index).iter().product())
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let nb = self.input.meta().chunks.numblocks();
        let ranges: Vec<std::ops::Range<usize>> = index
            .iter()
            .zip(&self.group)
            .zip(&nb)
            .map(|((&b, &g), &n)| b * g..((b + 1) * g).min(n))
            .collect();
        let mut deps = Vec::new();
        let mut cur: Vec<usize> = ranges.iter().map(|r| r.start).collect();
        'all: loop {
            deps.push((0, BlockIndex::from_slice(&cur)));
            let mut k = cur.len();
            loop {
                if k == 0 {
                    break 'all;
                }
                k -= 1;
                cur[k] += 1;
                if cur[k] < ranges[k].end {
                    break;
                }
                cur[k] = ranges[k].start;
            }
        }
        let red = self.red.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                // The ragged end of a level may hold a single partial: pass it through.
                let [first, rest @ ..] = v else {
                    return Err("internal: empty combine group".into());
                };
                if rest.is_empty() {
                    return Ok(first.clone());
                }
                let first = first.get::<R::Partial>()?;
                let mut acc = red.merge_partials(first, rest[0].get::<R::Partial>()?);
                for x in &rest[1..] {
                    acc = red.merge_partials(&acc, x.get::<R::Partial>()?);
                }
                let n = R::partial_bytes(&acc);
                Ok(Value::with_nbytes(acc, n))
            }),
        }
    }
}

/// Partial → output block.
struct FinishNode<R: Reduction> {
    meta: Meta,
    input: Arc<dyn Node>,
    red: Arc<R>,
}

impl<R: Reduction> Node for FinishNode<R> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let red = self.red.clone();
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                let p = v[0].get::<R::Partial>()?;
                red.check(p)?;
                Ok(block_value(red.finish(p)))
            }),
        }
    }
}

/// Validate and normalise axes (`None`: all), sorted: each within `ndim`, none repeated.
pub(crate) fn norm_axes(ndim: usize, axes: Option<&[usize]>) -> Result<Vec<usize>> {
    let mut v: Vec<usize> = match axes {
        None => (0..ndim).collect(),
        Some(a) => a.to_vec(),
    };
    for &a in &v {
        if a >= ndim {
            return Err(Error::axis_out_of_bounds(a, ndim));
        }
    }
    v.sort_unstable();
    if let Some(w) = v.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::axis(format!(
            "axis {} is repeated in {:?}",
            w[0],
            axes.unwrap_or_default()
        )));
    }
    Ok(v)
}

/// The combine levels of a tree over per-block partials (`node`: one partial per input block,
/// the reduced axes' chunks all 1): each level merges up to `fanin` partials (the fan-in split
/// between the reduced axes that still have several blocks) until one partial is left along
/// every reduced axis. `U` only names the element type in the nodes' metadata.
pub(crate) fn combine_levels<U: Element, R: Merge>(
    mut node: Arc<dyn Node>,
    axes: &[usize],
    fanin: usize,
    red: &Arc<R>,
    op: &str,
    t: &Tokenizer,
) -> Result<Arc<dyn Node>> {
    let ndim = node.meta().chunks.ndim();
    // Split the fan-in between the reduced axes that still have several blocks.
    let mut level = 0u64;
    loop {
        let nb = node.meta().chunks.numblocks();
        let multi: Vec<usize> = axes.iter().copied().filter(|&a| nb[a] > 1).collect();
        if multi.is_empty() {
            break;
        }
        let per_axis = ((fanin as f64).powf(1.0 / multi.len() as f64).floor() as usize).max(2);
        let group: Vec<usize> = (0..ndim)
            .map(|a| if multi.contains(&a) { per_axis } else { 1 })
            .collect();
        let axes_chunks: Vec<Vec<usize>> = (0..ndim)
            .map(|a| {
                if multi.contains(&a) {
                    vec![1; nb[a].div_ceil(per_axis)]
                } else {
                    node.meta().chunks.axis(a).to_vec()
                }
            })
            .collect();
        let mut tl = t.clone();
        tl.write_u64(level);
        level += 1;
        // Kept axes of unknown length stay unknown (their partials are as long as the blocks).
        let chunks = Chunks::from_blocks(axes_chunks)?.with_unknown_of(&node.meta().chunks, axes);
        node = Arc::new(CombineNode {
            meta: Meta::new::<U>(&format!("{op}-combine"), tl, chunks),
            input: node,
            group,
            red: red.clone(),
        });
    }
    Ok(node)
}

/// Reduce `x` over `axes` (all when `None`) with `red`, as a tree whose combine tasks merge up
/// to `fanin` partials each. Keeps the reduced axes (length 1) when `keepdims`.
pub fn reduce<R: Reduction>(
    x: &BlockArray<R::In>,
    red: R,
    axes: Option<&[usize]>,
    keepdims: bool,
    fanin: usize,
) -> Result<BlockArray<R::Out>> {
    if fanin < 2 {
        return Err(Error::unsupported(format!(
            "reduction fan-in must be at least 2, got {fanin}"
        )));
    }
    let axes = norm_axes(x.ndim(), axes)?;
    let red = Arc::new(red);
    let mut t = token_of(&[&x.node]);
    t.write_str(red.name())
        .write_str(std::any::type_name::<R>())
        .write(axes.as_slice())
        .write_usize(fanin);
    red.tokenize(&mut t);
    if !red.is_pure() {
        t.write(&OpName::unique(red.name()));
    }
    let op = red.name().to_string();
    let input_chunks = x.chunks();
    let partial_axes: Vec<Vec<usize>> = (0..x.ndim())
        .map(|a| {
            if axes.contains(&a) {
                vec![1; input_chunks.axis(a).len()]
            } else {
                input_chunks.axis(a).to_vec()
            }
        })
        .collect();
    let node: Arc<dyn Node> = Arc::new(ChunkNode {
        meta: Meta::new::<R::Out>(
            &format!("{op}-chunk"),
            t.clone(),
            Chunks::from_blocks(partial_axes.clone())?.with_unknown_of(input_chunks, &axes),
        ),
        input: x.node.clone(),
        axes: axes.clone(),
        red: red.clone(),
    });
    let node = combine_levels::<R::Out, R>(node, &axes, fanin, &red, &op, &t)?;
    let finish: Arc<dyn Node> = Arc::new(FinishNode {
        meta: Meta::new::<R::Out>(&op, t, node.meta().chunks.clone()),
        input: node,
        red,
    });
    let out = if keepdims {
        finish
    } else {
        let from = (0..x.ndim())
            .filter(|a| !axes.contains(a))
            .map(Some)
            .collect();
        axes_node(&finish, from)?
    };
    Ok(BlockArray::wrap(out))
}

fn no_empty<T: Element>(x: &BlockArray<T>, axes: Option<&[usize]>, what: &str) -> Result<()> {
    let axes = norm_axes(x.ndim(), axes)?;
    if axes
        .iter()
        .any(|&a| x.chunks().unknown_axis(a).is_none() && x.shape()[a] == 0)
    {
        return Err(Error::shape(format!(
            "{what} of an empty selection: axes {axes:?} of shape {:?} include a zero-length axis, and {what} has no identity",
            x.shape()
        )));
    }
    Ok(())
}

/// A reduction without an identity (min, max and their NaN-skipping kin) over axes of which
/// some have unknown lengths (a boolean mask's result): the elements reduced are counted with
/// the partials, and an empty selection fails its finish task with an `Err` instead of
/// returning the fold's identity. (Known zero-length axes are refused when the graph is built.)
struct NonEmpty<R> {
    inner: R,
    what: &'static str,
}

impl<R: Reduction> Reduction for NonEmpty<R> {
    type In = R::In;
    type Out = R::Out;
    /// The inner partial and the number of elements each output position reduced (the same
    /// for all: a selection is rectangular).
    type Partial = (R::Partial, u64);
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_str("non-empty");
        self.inner.tokenize(t);
    }
    fn is_pure(&self) -> bool {
        self.inner.is_pure()
    }
    fn chunk(
        &self,
        block: &ArrayD<R::In>,
        axes: &[usize],
        offset: &[usize],
        shape: &[usize],
    ) -> Self::Partial {
        let n: usize = axes.iter().map(|&a| block.shape()[a]).product();
        (self.inner.chunk(block, axes, offset, shape), n as u64)
    }
    fn merge(&self, a: &Self::Partial, b: &Self::Partial) -> Self::Partial {
        (self.inner.merge(&a.0, &b.0), a.1 + b.1)
    }
    fn finish(&self, p: &Self::Partial) -> ArrayD<R::Out> {
        self.inner.finish(&p.0)
    }
    fn check(&self, p: &Self::Partial) -> std::result::Result<(), dag_core::TaskError> {
        self.inner.check(&p.0)?;
        if p.1 == 0 {
            return Err(format!(
                "{} of an empty selection: the reduced axes have length 0 once computed, and {} has no identity",
                self.what, self.what
            )
            .into());
        }
        Ok(())
    }
    fn nbytes(p: &Self::Partial) -> usize {
        R::nbytes(&p.0) + 8
    }
    fn predicted_nbytes(&self, elements: usize) -> usize {
        self.inner.predicted_nbytes(elements) + 8
    }
}

/// [`reduce`] with `red`, counting the elements reduced when a reduced axis has an unknown
/// length so that an empty selection is an `Err` ([`NonEmpty`]).
fn reduce_non_empty<R: Reduction>(
    x: &BlockArray<R::In>,
    red: R,
    what: &'static str,
    axes: Option<&[usize]>,
    keepdims: bool,
) -> Result<BlockArray<R::Out>> {
    no_empty(x, axes, what)?;
    let reduced = norm_axes(x.ndim(), axes)?;
    if reduced
        .iter()
        .any(|&a| x.chunks().unknown_axis(a).is_some())
    {
        reduce(
            x,
            NonEmpty { inner: red, what },
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    } else {
        reduce(x, red, axes, keepdims, DEFAULT_FANIN)
    }
}

/// One of blockarray's own folds: `name` identifies `f`, so equal reductions share keys.
fn fold<T: Element, F: Fn(T, T) -> T + Send + Sync + 'static>(
    name: &'static str,
    identity: T,
    f: F,
) -> Fold<T, F> {
    Fold::new(OpName::pure(name, &()), identity, f)
}

fn add<T: Numeric>(a: T, b: T) -> T {
    a.add_wrap(b)
}

/// The sum as a [`Reduction`] (for building on, like the contraction's tree of partial sums).
pub fn sum_reduction<T: Numeric>() -> Fold<T, fn(T, T) -> T> {
    fold("sum", T::zero(), add::<T> as fn(T, T) -> T)
}

impl<T: Numeric> BlockArray<T> {
    /// The sum over `axes` (all when `None`); reduced axes kept (length 1) when `keepdims`.
    /// Integers are summed in 64 bits (`i64`, or `u64` for unsigned types), as NumPy's `sum`.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::ones(&[10_000, 10_000], [1000, 1000])?;
    /// assert_eq!(x.sum(None, false)?.compute()?.into_iter().next(), Some(1e8));
    /// assert_eq!(x.sum(Some(&[1]), true)?.shape(), &[10_000, 1]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn sum(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T::Acc>> {
        reduce(
            &self.widened(),
            fold(
                "sum",
                <T::Acc as num_traits::Zero>::zero(),
                |a: T::Acc, b| a.add_wrap(b),
            ),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The product over `axes` (integers in 64 bits, as [`sum`](Self::sum)).
    pub fn prod(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T::Acc>> {
        reduce(
            &self.widened(),
            fold(
                "prod",
                <T::Acc as num_traits::One>::one(),
                |a: T::Acc, b| a.mul_wrap(b),
            ),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The array in the type NumPy accumulates it in ([`Numeric::Acc`]): itself for floats,
    /// complex and 64-bit integers, a widening map otherwise.
    pub(crate) fn widened(&self) -> BlockArray<T::Acc> {
        if T::DTYPE == <T::Acc as Element>::DTYPE {
            return BlockArray::wrap(self.node.clone());
        }
        self.map_builtin("astype-acc", |v: T| v.to_acc())
    }
}

impl<T: Real> BlockArray<T> {
    /// The minimum over `axes`; NaN if any element is NaN. Fails on an empty selection.
    pub fn min(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        let red = fold("min", T::max_value(), nan_min);
        reduce_non_empty(self, red, "min", axes, keepdims)
    }

    /// The maximum over `axes`; NaN if any element is NaN. Fails on an empty selection.
    pub fn max(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        let red = fold("max", T::min_value(), nan_max);
        reduce_non_empty(self, red, "max", axes, keepdims)
    }

    /// Index of the minimum: along `axis`, or in the flattened array when `None` (a 0-d
    /// result). The first occurrence wins; a NaN counts as the minimum, like NumPy.
    pub fn argmin(&self, axis: Option<usize>) -> Result<BlockArray<i64>> {
        self.arg_extreme(axis, false)
    }

    /// Index of the maximum (see [`argmin`](Self::argmin)).
    pub fn argmax(&self, axis: Option<usize>) -> Result<BlockArray<i64>> {
        self.arg_extreme(axis, true)
    }

    fn arg_extreme(&self, axis: Option<usize>, max: bool) -> Result<BlockArray<i64>> {
        let axes: Option<Vec<usize>> = axis.map(|a| vec![a]);
        let name = if max { "argmax" } else { "argmin" };
        // Positions need the lengths of the blocks before: along the axis, or all of them.
        match axis {
            Some(a) => self.chunks().require_known_axis(a, name)?,
            None => self.chunks().require_known(name)?,
        }
        no_empty(self, axes.as_deref(), name)?;
        let red = ArgExt {
            max,
            axis,
            _type: std::marker::PhantomData,
        };
        reduce(self, red, axes.as_deref(), false, DEFAULT_FANIN)
    }
}

fn nan_skip_min<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b < a { b } else { a }
}

fn nan_skip_max<T: Float>(a: T, b: T) -> T {
    if a.is_nan() || b > a { b } else { a }
}

impl<T: Float> BlockArray<T> {
    /// The mean over `axes` (NaN for an empty selection).
    pub fn mean(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Mean, false),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The variance over `axes` with `ddof` delta degrees of freedom: the sum of squared
    /// deviations over `max(n - ddof, 0)`, as NumPy (so `ddof ≥ n` gives `inf`, or NaN where the
    /// values are all equal; no values give NaN).
    pub fn var(&self, axes: Option<&[usize]>, ddof: f64, keepdims: bool) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Var(ddof), false),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The standard deviation over `axes` with `ddof`.
    pub fn std(&self, axes: Option<&[usize]>, ddof: f64, keepdims: bool) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Std(ddof), false),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The sum ignoring NaN: NaN counts as zero, as in NumPy (so `inf` and `-inf` still give
    /// NaN).
    pub fn nansum(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        // Not a fold that skips NaN operands: it would also skip a partial sum that became
        // NaN (`inf + -inf`) when partial sums merge.
        let zeroed = self.map_builtin("nan-to-zero", |v: T| if v.is_nan() { T::zero() } else { v });
        reduce(&zeroed, sum_reduction::<T>(), axes, keepdims, DEFAULT_FANIN)
    }

    /// The mean ignoring NaN.
    pub fn nanmean(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Mean, true),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The variance ignoring NaN.
    pub fn nanvar(
        &self,
        axes: Option<&[usize]>,
        ddof: f64,
        keepdims: bool,
    ) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Var(ddof), true),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The standard deviation ignoring NaN.
    pub fn nanstd(
        &self,
        axes: Option<&[usize]>,
        ddof: f64,
        keepdims: bool,
    ) -> Result<BlockArray<T>> {
        reduce(
            self,
            Moments::new(MomentKind::Std(ddof), true),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// The minimum ignoring NaN (NaN where all are NaN).
    pub fn nanmin(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        let red = fold("nanmin", T::nan(), nan_skip_min);
        reduce_non_empty(self, red, "nanmin", axes, keepdims)
    }

    /// The maximum ignoring NaN (NaN where all are NaN).
    pub fn nanmax(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<T>> {
        let red = fold("nanmax", T::nan(), nan_skip_max);
        reduce_non_empty(self, red, "nanmax", axes, keepdims)
    }
}

impl BlockArray<bool> {
    /// Whether any element over `axes` is true.
    pub fn any(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<bool>> {
        reduce(
            self,
            fold("any", false, |a, b| a || b),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }

    /// Whether all elements over `axes` are true.
    pub fn all(&self, axes: Option<&[usize]>, keepdims: bool) -> Result<BlockArray<bool>> {
        reduce(
            self,
            fold("all", true, |a, b| a && b),
            axes,
            keepdims,
            DEFAULT_FANIN,
        )
    }
}

/// A scan of each block along `axis`. Unchained, every block is scanned on its own (the
/// carry of the blocks before is added afterwards: [`CarryNode`]). Chained, block `j` starts
/// from the last values of block `j - 1`, its own earlier block ([`BlockTask::SELF`]), so every
/// element is `f(previous result, element)` exactly as NumPy's sequential loop computes it,
/// whatever the chunking: for floating-point types, whose addition and multiplication are not
/// associative. Blocks along the other axes run in parallel either way.
struct ScanBlockNode<T, F> {
    meta: Meta,
    input: Arc<dyn Node>,
    axis: usize,
    f: Arc<F>,
    chained: bool,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element, F: Fn(T, T) -> T + Send + Sync + 'static> Node for ScanBlockNode<T, F> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let (f, axis) = (self.f.clone(), self.axis);
        let here = BlockIndex::from_slice(index);
        let mut deps = vec![(0, here.clone())];
        // Only a zero-length axis has empty blocks, so the block before has a last slice.
        if self.chained && index[axis] > 0 {
            let mut before = here;
            before[axis] -= 1;
            deps.push((BlockTask::SELF, before));
        }
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let mut b = block_ref::<T>(&v[0])?.clone();
                if let Some(before) = v.get(1)
                    && b.shape()[axis] > 0
                {
                    let before = block_ref::<T>(before)?;
                    let n = before.shape()[axis];
                    let last =
                        before.index_axis(Axis(axis), n.checked_sub(1).ok_or("empty block")?);
                    Zip::from(b.index_axis_mut(Axis(axis), 0))
                        .and(&last)
                        .for_each(|c, &p| *c = f(p, *c));
                }
                b.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur = f(prev, *cur));
                Ok(block_value(b))
            }),
        }
    }
}

/// Carry into block `j` along the axis: `carry(j-1) ∘ last(scan(j-1))`, shape of the block with
/// the axis of length 1. Block 0's carry is the identity.
struct CarryNode<T, F> {
    meta: Meta,
    scanned: Arc<dyn Node>,
    axis: usize,
    identity: T,
    f: Arc<F>,
}

impl<T: Element, F: Fn(T, T) -> T + Send + Sync + 'static> Node for CarryNode<T, F> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.scanned.clone()]
    }
    fn blockwise(&self) -> bool {
        false
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let (f, axis, identity) = (self.f.clone(), self.axis, self.identity);
        let j = index[axis];
        // Carry(j) = f-fold of the last slices of scanned blocks 0..j: reading them all keeps
        // the node acyclic; each last slice is small (block with the axis of length 1).
        let deps: Vec<(usize, BlockIndex)> = (0..j)
            .map(|k| {
                let mut b = BlockIndex::from_slice(index);
                b[axis] = k;
                (0, b)
            })
            .collect();
        let mut shape = self.meta.chunks.block_shape(index);
        shape[axis] = 1;
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let mut carry = ArrayD::from_elem(IxDyn(&shape), identity);
                for b in v {
                    let b = block_ref::<T>(b)?;
                    let n = b.shape()[axis];
                    if n == 0 {
                        continue;
                    }
                    let last = b.slice_axis(Axis(axis), ndarray::Slice::from(n - 1..n));
                    Zip::from(&mut carry)
                        .and(&last)
                        .for_each(|c, &x| *c = f(*c, x));
                }
                Ok(block_value(carry))
            }),
        }
    }
}

/// Whether `T`'s arithmetic rounds (so a scan's result depends on its order).
fn rounds<T: Element>() -> bool {
    matches!(T::DTYPE, "float32" | "float64" | "complex64" | "complex128")
}

/// A scan along `axis` with `f`. Floating-point scans run in NumPy's sequential order (a
/// chained [`ScanBlockNode`]); integer ones (exact in any order, wrapping) scan every block at once,
/// then add the carry of the blocks before.
fn scan<T: Element, F>(
    x: &BlockArray<T>,
    axis: usize,
    name: &'static str,
    identity: T,
    f: F,
) -> Result<BlockArray<T>>
where
    F: Fn(T, T) -> T + Send + Sync + Copy + 'static,
{
    x.check_axis(axis)?;
    x.chunks().require_known(name)?;
    let f = Arc::new(f);
    let mut t = token_of(&[&x.node]);
    t.write_usize(axis).write_str(name);
    if rounds::<T>() {
        return Ok(BlockArray::wrap(Arc::new(ScanBlockNode {
            meta: Meta::new::<T>(name, t, x.chunks().clone()),
            input: x.node.clone(),
            axis,
            f,
            chained: true,
            _type: std::marker::PhantomData,
        })));
    }
    let scanned: Arc<dyn Node> = Arc::new(ScanBlockNode {
        meta: Meta::new::<T>(&format!("{name}-block"), t.clone(), x.chunks().clone()),
        input: x.node.clone(),
        axis,
        f: f.clone(),
        chained: false,
        _type: std::marker::PhantomData,
    });
    let mut carry_axes = x.chunks().axes().to_vec();
    carry_axes[axis] = vec![1; carry_axes[axis].len()];
    let carry: Arc<dyn Node> = Arc::new(CarryNode {
        meta: Meta::new::<T>(
            &format!("{name}-carry"),
            t.clone(),
            Chunks::from_blocks(carry_axes)?,
        ),
        scanned: scanned.clone(),
        axis,
        identity,
        f: f.clone(),
    });
    let kernel: dag_core::TaskFn = Arc::new(move |v: &[Value]| {
        let b = block_ref::<T>(&v[0])?;
        let c = block_ref::<T>(&v[1])?;
        let cb = c
            .broadcast(b.raw_dim())
            .ok_or("carry does not broadcast to its block")?;
        let out: ArrayD<T> = Zip::from(b).and(&cb).map_collect(|&x, &y| f(y, x));
        Ok(block_value(out))
    });
    let applied = ApplyCarryNode {
        meta: Meta::new::<T>(name, t, x.chunks().clone()),
        scanned,
        carry,
        kernel,
    };
    Ok(BlockArray::wrap(Arc::new(applied)))
}

/// `f(carry, x)` for every element of a scanned block, the carry broadcast along the axis.
struct ApplyCarryNode {
    meta: Meta,
    scanned: Arc<dyn Node>,
    carry: Arc<dyn Node>,
    kernel: dag_core::TaskFn,
}

impl Node for ApplyCarryNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.scanned.clone(), self.carry.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let b = BlockIndex::from_slice(index);
        BlockTask {
            deps: vec![(0, b.clone()), (1, b)],
            func: self.kernel.clone(),
        }
    }
}

impl<T: Numeric> BlockArray<T> {
    /// Cumulative sum along `axis` (integers in 64 bits, as [`sum`](Self::sum)).
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(1i64, 7, 1, 4)?;
    /// assert_eq!(x.cumsum(0)?.compute()?.into_raw_vec_and_offset().0, vec![1, 3, 6, 10, 15, 21]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn cumsum(&self, axis: usize) -> Result<BlockArray<T::Acc>> {
        scan(
            &self.widened(),
            axis,
            "cumsum",
            <T::Acc as num_traits::Zero>::zero(),
            |a: T::Acc, b| a.add_wrap(b),
        )
    }

    /// Cumulative product along `axis` (integers in 64 bits, as [`sum`](Self::sum)).
    pub fn cumprod(&self, axis: usize) -> Result<BlockArray<T::Acc>> {
        scan(
            &self.widened(),
            axis,
            "cumprod",
            <T::Acc as num_traits::One>::one(),
            |a: T::Acc, b| a.mul_wrap(b),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partials whose parts do not fit together (a corrupt frame from another process) are
    /// refused when decoded, before a task would broadcast or index them.
    #[test]
    fn partials_of_mismatched_parts_are_refused() {
        crate::expr::wire::register();
        let decode = |v: Value| {
            let mut bytes = Vec::new();
            dag_core::wire::encode(&v, &mut bytes).unwrap();
            dag_core::wire::decode(&bytes).unwrap_err()
        };
        let zeros = |n: usize| ArrayD::<f64>::zeros(IxDyn(&[n]));
        let moments = MomentsPartial {
            n: zeros(2),
            sum: zeros(3),
            m2: zeros(2),
        };
        let e = decode(Value::with_nbytes(moments, 0));
        assert!(e.contains("moments partial"), "{e}");
        let arg = ArgPartial::<f64> {
            value: zeros(2),
            index: ArrayD::zeros(IxDyn(&[3])),
        };
        let e = decode(Value::with_nbytes(arg, 0));
        assert!(e.contains("arg-reduction partial"), "{e}");
    }

    /// A mean skips the squared deviations: its counts and sums must still be bitwise those a
    /// variance computes, through both chunk paths (a leading axis, trailing axes) and merges,
    /// and its deviations stay zero.
    #[test]
    fn a_mean_keeps_the_sums_of_a_variance_without_its_deviations() {
        let block = ArrayD::from_shape_fn(IxDyn(&[37, 5, 11]), |ix| {
            ((ix[0] * 131 + ix[1] * 17 + ix[2] * 7) % 97) as f64 / 7.3 - 3.1
        });
        let other = block.mapv(|v| v * 1.7 + 0.3);
        let mean = Moments::<f64>::new(MomentKind::Mean, false);
        let var = Moments::<f64>::new(MomentKind::Var(1.0), false);
        for axes in [&[0usize][..], &[1], &[2], &[1, 2], &[0, 1, 2]] {
            let chunk = |m: &Moments<f64>, b: &ArrayD<f64>| m.chunk(b, axes, &[], &[]);
            let (pm, pv) = (chunk(&mean, &block), chunk(&var, &block));
            let (qm, qv) = (chunk(&mean, &other), chunk(&var, &other));
            let (mm, mv) = (mean.merge(&pm, &qm), var.merge(&pv, &qv));
            for (a, b) in [(&pm, &pv), (&mm, &mv)] {
                assert_eq!(a.n, b.n, "counts over {axes:?}");
                let bits = |x: &ArrayD<f64>| x.mapv(f64::to_bits);
                assert_eq!(bits(&a.sum), bits(&b.sum), "sums over {axes:?}");
                assert!(
                    a.m2.iter().all(|&v| v == 0.0),
                    "a mean's deviations over {axes:?}"
                );
                assert!(
                    b.m2.iter().any(|&v| v > 0.0),
                    "a variance's deviations over {axes:?}"
                );
            }
            let means = mean.finish(&mm);
            let expected = mv.sum.clone() / &mv.n;
            assert_eq!(means.mapv(f64::to_bits), expected.mapv(f64::to_bits));
        }
    }
}
