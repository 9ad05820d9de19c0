//! Elementwise operations: arithmetic, comparisons, logic, `where_`, ufuncs, `astype`, with
//! NumPy broadcasting.
//!
//! # Design notes
//!
//! Every elementwise operation is a [`MapNode`]: n inputs broadcast together, output chunks the
//! common refinement of the inputs' chunks (an input whose chunks differ is rechunked first), and
//! an element function in tile form ([`crate::ops::fused::TileOp`]), monomorphised over the
//! closure so the per-element work is inlined and vectorisable; the only dynamic calls are one
//! per tile of about a thousand elements. At lowering, chains of maps and transposes are fused
//! into one pass per block ([`crate::ops::fused`]).
//!
//! Array–array operators return `Result` (shapes may not broadcast: the error names both
//! shapes, raised when the expression is built), so write `(&x + &y)?`. Array–scalar operators
//! cannot fail and return the array. Integer division or modulo by zero fails when computed,
//! naming the task, rather than producing NumPy's silent zero.

use crate::element::{CastTo, Element, Float, Numeric, Promote, Real};
use crate::expr::array::{BlockTask, Kit, Meta, Node, kit};
use crate::ops::fused::{Program, TileOp};
pub(crate) use crate::ops::fused::{binary_kernel, scalar_kernel, ternary_kernel, unary_kernel};
use crate::plan::index::NormSlice;
use crate::{BlockArray, Chunks, Error, Result, broadcast_shapes, unify_axis};
use dag_core::{OpName, Tokenizer};
use std::ops::{Add, Div, Mul, Neg, Rem, Sub};
use std::sync::Arc;

/// An elementwise operation over broadcast inputs.
pub struct MapNode {
    meta: Meta,
    pub(crate) inputs: Vec<Arc<dyn Node>>,
    /// Per input: how many leading output axes it lacks, and which of its axes broadcast.
    pub(crate) broadcast: Vec<(usize, Vec<bool>)>,
    /// The element function, in tile form (see [`crate::ops::fused`]).
    pub(crate) op: Arc<TileOp>,
    /// `op` over the inputs as broadcast: what each block runs.
    program: Arc<Program>,
}

impl MapNode {
    /// The same operation over other inputs (slice push-down).
    pub(crate) fn with_inputs(&self, inputs: Vec<Arc<dyn Node>>) -> Result<MapNode> {
        let mut t = Tokenizer::new();
        t.write_str(&self.meta.name);
        let m = &self.meta;
        build_map_node(
            m.op(),
            (m.dtype, m.itemsize, m.kit),
            t,
            inputs,
            self.op.clone(),
        )
    }
}

fn build_map_node(
    op: &str,
    (dtype, itemsize, kit): (&'static str, usize, &'static dyn Kit),
    mut t: Tokenizer,
    inputs: Vec<Arc<dyn Node>>,
    tile_op: Arc<TileOp>,
) -> Result<MapNode> {
    let mut shape: Vec<usize> = Vec::new();
    for n in &inputs {
        shape = broadcast_shapes(&shape, n.meta().shape())
            .map_err(|e| e.context(format!("{op}: operands do not broadcast")))?;
    }
    let nd = shape.len();
    // Axes of unknown length: every input that has the axis (other than a known length-1
    // axis, which broadcasts) must have it unknown with the same origin and bounds — arrays
    // of one origin have equal real lengths; any other pairing cannot be checked.
    let mut unknown: Vec<Option<(u64, Vec<usize>)>> = vec![None; nd];
    for n in &inputs {
        let c = &n.meta().chunks;
        let off = nd - c.ndim();
        for j in 0..c.ndim() {
            if let Some(o) = c.unknown_axis(j) {
                let this = (o, c.axis(j).to_vec());
                match &unknown[off + j] {
                    Some(prev) if *prev != this => {
                        return Err(Error::chunks(format!(
                            "{op}: operands have chunk sizes along axis {} that depend on \
                             different values and may differ: call .compute_chunk_sizes() on \
                             them first",
                            off + j
                        )));
                    }
                    _ => unknown[off + j] = Some(this),
                }
            }
        }
    }
    for n in &inputs {
        let c = &n.meta().chunks;
        let off = nd - c.ndim();
        for j in 0..c.ndim() {
            let broadcasts = c.shape()[j] == 1 && c.unknown_axis(j).is_none();
            if unknown[off + j].is_some() && c.unknown_axis(j).is_none() && !broadcasts {
                return Err(Error::chunks(format!(
                    "{op}: axis {} has chunk sizes that depend on values in one operand and \
                     known sizes in another: call .compute_chunk_sizes() first",
                    off + j
                )));
            }
        }
    }
    // Output chunks: along each axis, the common refinement of the non-broadcast inputs.
    let mut axes: Vec<Option<Vec<usize>>> = vec![None; nd];
    for n in &inputs {
        let c = &n.meta().chunks;
        let off = nd - c.ndim();
        for (j, ax) in c.axes().iter().enumerate() {
            let k = off + j;
            if c.shape()[j] == 1 && shape[k] != 1 && c.unknown_axis(j).is_none() {
                continue;
            }
            axes[k] = Some(match &axes[k] {
                None => ax.clone(),
                Some(prev) => unify_axis(prev, ax)?,
            });
        }
    }
    let axes: Vec<Vec<usize>> = axes
        .into_iter()
        .zip(&shape)
        .map(|(a, &n)| a.unwrap_or_else(|| vec![n]))
        .collect();
    let mut chunks = Chunks::from_blocks(axes)?;
    for (k, u) in unknown.iter().enumerate() {
        if let Some((o, _)) = u {
            chunks = chunks.with_unknown_axis(k, *o);
        }
    }
    let mut aligned = Vec::with_capacity(inputs.len());
    let mut broadcast = Vec::with_capacity(inputs.len());
    for n in inputs {
        let c = n.meta().chunks.clone();
        let off = nd - c.ndim();
        let flags: Vec<bool> = (0..c.ndim())
            .map(|j| c.shape()[j] == 1 && shape[off + j] != 1 && c.unknown_axis(j).is_none())
            .collect();
        let want: Vec<Vec<usize>> = (0..c.ndim())
            .map(|j| {
                if flags[j] {
                    vec![1]
                } else {
                    chunks.axis(off + j).to_vec()
                }
            })
            .collect();
        let n = if want.as_slice() != c.axes() {
            let mut want = Chunks::from_blocks(want)?;
            for j in 0..c.ndim() {
                if let Some(o) = c.unknown_axis(j) {
                    want = want.with_unknown_axis(j, o);
                }
            }
            crate::ops::shape::rechunk_direct(&n, want)?
        } else {
            n
        };
        aligned.push(n);
        broadcast.push((off, flags));
    }
    for n in &aligned {
        t.write_str(&n.meta().name);
    }
    t.write_str(dtype);
    for a in chunks.axes() {
        t.write(a);
    }
    for u in unknown.iter().flatten() {
        t.write_u64(u.0);
    }
    let meta = Meta {
        name: format!("{op}-{}", t.finish_hex()).into(),
        chunks,
        dtype,
        itemsize,
        kit,
    };
    let program = Arc::new(Program::single(nd, &tile_op, &broadcast));
    Ok(MapNode {
        meta,
        inputs: aligned,
        broadcast,
        op: tile_op,
        program,
    })
}

impl Node for MapNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        self.program.task(index)
    }
    fn push_slice(&self, slices: &[NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        let sliced = self
            .inputs
            .iter()
            .zip(&self.broadcast)
            .map(|(input, (off, flags))| {
                let s: Vec<NormSlice> = flags
                    .iter()
                    .enumerate()
                    .map(|(j, &bc)| {
                        if bc {
                            NormSlice::full(1)
                        } else {
                            slices[off + j]
                        }
                    })
                    .collect();
                crate::ops::slicing::slice_node(input, &s)
            })
            .collect::<Result<Vec<_>>>();
        Some(sliced.and_then(|inputs| Ok(Arc::new(self.with_inputs(inputs)?) as Arc<dyn Node>)))
    }
}

/// An operand of an elementwise operation: an array or a scalar.
#[derive(Clone, Copy)]
pub enum Operand<'a, T> {
    /// An array.
    Array(&'a BlockArray<T>),
    /// A scalar, broadcast to the other operands' shape.
    Scalar(T),
}

impl<T: Element> From<T> for Operand<'_, T> {
    fn from(v: T) -> Self {
        Operand::Scalar(v)
    }
}

impl<'a, T: Element> From<&'a BlockArray<T>> for Operand<'a, T> {
    fn from(a: &'a BlockArray<T>) -> Self {
        Operand::Array(a)
    }
}

/// A 0-d array holding a scalar (so scalars take part in broadcasting like arrays).
fn scalar_node<T: Element>(v: T) -> Arc<dyn Node> {
    BlockArray::full(&[], v, Vec::<usize>::new())
        .expect("a 0-d array always has valid chunks")
        .node
}

impl<T: Element> Operand<'_, T> {
    pub(crate) fn node(&self) -> Arc<dyn Node> {
        match self {
            Operand::Array(a) => a.node.clone(),
            Operand::Scalar(v) => scalar_node(*v),
        }
    }
}

/// Build the map node `op` over `inputs` with `kernel`, producing `T`.
pub(crate) fn map_nodes<T: Element>(
    op: &str,
    params: Tokenizer,
    inputs: Vec<Arc<dyn Node>>,
    kernel: Arc<TileOp>,
) -> Result<BlockArray<T>> {
    let node = build_map_node(
        op,
        (T::DTYPE, T::itemsize(), kit::<T>()),
        params,
        inputs,
        kernel,
    )?;
    Ok(BlockArray::wrap(Arc::new(node)))
}

/// The token of a map with function `F` named by `op`: its name and token (unique unless
/// pure) and the function's type.
pub(crate) fn op_token<F>(op: &OpName) -> Tokenizer {
    let mut t = Tokenizer::new();
    t.write(op).write_str(std::any::type_name::<F>());
    t
}

impl<T: Element> BlockArray<T> {
    /// Apply `f` to every element (an elementwise map, fused with its neighbours when
    /// computed). `name` labels the tasks; from a plain name the map's keys are unique to this
    /// call (a closure's captured values cannot be seen, so two maps never share a result);
    /// with [`OpName::pure`] the caller vouches that the name and token identify `f`, and equal
    /// maps share their tasks.
    ///
    /// ```
    /// use blockarray::{BlockArray, OpName};
    /// let x = BlockArray::<f64>::ones(&[4], 2)?;
    /// let y = x.map("plus-half", |v| v + 0.5);
    /// assert_eq!(y.compute()?[[3]], 1.5);
    /// // Captured parameters in the token: equal parameters share keys, others do not.
    /// let scale = |k: f64| x.map(OpName::pure("scale", &k), move |v| v * k);
    /// assert_eq!(scale(2.0).name(), scale(2.0).name());
    /// assert_ne!(scale(2.0).name(), scale(3.0).name());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn map<U: Element, F>(&self, name: impl Into<OpName>, f: F) -> BlockArray<U>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        let op = name.into();
        map_nodes::<U>(
            op.name(),
            op_token::<F>(&op),
            vec![self.node.clone()],
            unary_kernel(f),
        )
        .expect("a unary map cannot fail to broadcast")
    }

    /// A map by one of blockarray's own functions: `name` fully identifies `f`, so equal
    /// calls share keys.
    pub(crate) fn map_builtin<U: Element, F>(&self, name: &str, f: F) -> BlockArray<U>
    where
        F: Fn(T) -> U + Send + Sync + 'static,
    {
        self.map(OpName::pure(name, &()), f)
    }

    /// Combine with another operand elementwise: `f(self, other)`, with broadcasting. Keys as
    /// for [`map`](Self::map): unique to the call unless `name` is an [`OpName::pure`].
    pub fn zip_map<'a, B: Element, U: Element, F>(
        &self,
        other: impl Into<Operand<'a, B>>,
        name: impl Into<OpName>,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        F: Fn(T, B) -> U + Send + Sync + 'static,
    {
        let other = other.into();
        let op = name.into();
        map_nodes::<U>(
            op.name(),
            op_token::<F>(&op),
            vec![self.node.clone(), other.node()],
            binary_kernel(move |a, b| Ok(f(a, b))),
        )
    }

    pub(crate) fn try_zip<'a, U: Element, F>(
        &self,
        other: impl Into<Operand<'a, T>>,
        name: &str,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        F: Fn(T, T) -> std::result::Result<U, &'static str> + Send + Sync + 'static,
    {
        let other = other.into();
        map_nodes::<U>(
            name,
            op_token::<F>(&OpName::pure(name, &())),
            vec![self.node.clone(), other.node()],
            binary_kernel(f),
        )
    }

    /// Convert every element to `U` with NumPy's `astype` rules (see [`CastTo`]).
    pub fn astype<U: Element>(&self) -> BlockArray<U>
    where
        T: CastTo<U>,
    {
        if T::DTYPE == U::DTYPE {
            return BlockArray::wrap(self.node.clone());
        }
        self.map_builtin(&format!("astype-{}", U::DTYPE), |v: T| v.cast())
    }

    /// `self == other` elementwise.
    pub fn equal<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "equal", |a, b| Ok(a == b))
    }

    /// `self != other` elementwise.
    pub fn not_equal<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "not_equal", |a, b| Ok(a != b))
    }

    /// Whether each element is NaN (false for non-float types).
    pub fn isnan(&self) -> BlockArray<bool> {
        self.map_builtin("isnan", |v: T| v.is_nan_value())
    }
}

impl<T: Real> BlockArray<T> {
    /// `self < other` elementwise.
    pub fn less<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "less", |a, b| Ok(a < b))
    }
    /// `self <= other` elementwise.
    pub fn less_equal<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "less_equal", |a, b| Ok(a <= b))
    }
    /// `self > other` elementwise.
    pub fn greater<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "greater", |a, b| Ok(a > b))
    }
    /// `self >= other` elementwise.
    pub fn greater_equal<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "greater_equal", |a, b| Ok(a >= b))
    }

    /// The elementwise maximum, propagating NaN like `numpy.maximum`.
    pub fn maximum<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "maximum", |a, b| Ok(nan_max(a, b)))
    }

    /// The elementwise minimum, propagating NaN like `numpy.minimum`.
    pub fn minimum<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "minimum", |a, b| Ok(nan_min(a, b)))
    }

    /// Limit values to `[low, high]` (`numpy.clip`): a NaN value or bound gives NaN, and a
    /// value equal to a bound is kept (`-0.0` clipped to `[0.0, 1.0]` stays `-0.0`), as in
    /// NumPy. Fails if `low > high`.
    pub fn clip(&self, low: T, high: T) -> Result<BlockArray<T>> {
        if low > high {
            return Err(Error::unsupported(format!(
                "clip: low {low:?} is greater than high {high:?}"
            )));
        }
        let mut t = Tokenizer::new();
        low.tokenize(&mut t);
        high.tokenize(&mut t);
        t.write_str("clip");
        map_nodes::<T>(
            "clip",
            t,
            vec![self.node.clone()],
            // NumPy's `minimum(high, maximum(low, v))`: NaN if any of the three is, and `v`
            // itself where it equals a bound.
            unary_kernel(move |v: T| nan_min(high, nan_max(low, v))),
        )
    }

    /// The absolute value.
    pub fn abs(&self) -> BlockArray<T> {
        self.map_builtin("abs", |v: T| v.abs_value())
    }

    /// -1, 0 or 1 by sign (`numpy.sign`).
    pub fn sign(&self) -> BlockArray<T> {
        self.map_builtin("sign", |v: T| v.signum_value())
    }
}

/// The larger of two values; NaN if either is NaN, the first if both (`numpy.maximum`). Of
/// two equal values the second, as NumPy on x86-64 (whose `maxpd` returns its second operand
/// for `0.0` and `-0.0`): so a max reduction gives the last of equal maxima.
pub(crate) fn nan_max<T: Element + PartialOrd>(a: T, b: T) -> T {
    if a.is_nan_value() || (!b.is_nan_value() && a > b) {
        a
    } else {
        b
    }
}

/// The smaller of two values; NaN if either is NaN, the first if both (`numpy.minimum`); of
/// two equal values the second, as [`nan_max`].
pub(crate) fn nan_min<T: Element + PartialOrd>(a: T, b: T) -> T {
    if a.is_nan_value() || (!b.is_nan_value() && a < b) {
        a
    } else {
        b
    }
}

/// `where_(cond, a, b)`: `a` where `cond` is true, else `b` (`numpy.where`), with broadcasting.
///
/// ```
/// use blockarray::{BlockArray, where_};
/// let x = BlockArray::arange(0i64, 6, 1, 4)?;
/// let y = where_(&x.greater(2)?, &x, 0)?;
/// assert_eq!(y.compute()?.into_raw_vec_and_offset().0, vec![0, 0, 0, 3, 4, 5]);
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn where_<'a, 'b, T: Element>(
    cond: &BlockArray<bool>,
    a: impl Into<Operand<'a, T>>,
    b: impl Into<Operand<'b, T>>,
) -> Result<BlockArray<T>> {
    let (a, b) = (a.into(), b.into());
    map_nodes::<T>(
        "where",
        Tokenizer::new(),
        vec![cond.node.clone(), a.node(), b.node()],
        ternary_kernel(|c: bool, x: T, y: T| if c { x } else { y }),
    )
}

impl BlockArray<bool> {
    /// Elementwise logical and.
    pub fn logical_and<'a>(&self, other: impl Into<Operand<'a, bool>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "logical_and", |a, b| Ok(a && b))
    }
    /// Elementwise logical or.
    pub fn logical_or<'a>(&self, other: impl Into<Operand<'a, bool>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "logical_or", |a, b| Ok(a || b))
    }
    /// Elementwise logical xor.
    pub fn logical_xor<'a>(&self, other: impl Into<Operand<'a, bool>>) -> Result<BlockArray<bool>> {
        self.try_zip(other, "logical_xor", |a, b| Ok(a != b))
    }
    /// Elementwise logical not.
    pub fn logical_not(&self) -> BlockArray<bool> {
        self.map_builtin("logical_not", |a: bool| !a)
    }
}

/// Both operands converted to NumPy's result type of the two ([`Promote`]): an identity for
/// equal types (no node is added), an `astype` otherwise.
pub(crate) fn promoted<T, U>(
    a: &BlockArray<T>,
    b: &BlockArray<U>,
) -> (BlockArray<T::Out>, BlockArray<T::Out>)
where
    T: Promote<U>,
    U: Element + CastTo<T::Out>,
{
    (a.astype::<T::Out>(), b.astype::<T::Out>())
}

/// The operators between arrays (with NumPy's promotion), between an array and a scalar of its
/// element type (the array's type, as a Python scalar in NumPy 2), and a scalar on the left.
macro_rules! arith {
    ($Trait:ident, $method:ident, $name:literal, |$a:ident, $b:ident| $body:expr) => {
        impl<T, U> $Trait<&BlockArray<U>> for &BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: Numeric,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: &BlockArray<U>) -> Self::Output {
                let (x, y) = promoted(self, rhs);
                x.try_zip(&y, $name, |$a, $b| $body)
            }
        }
        impl<T, U> $Trait<BlockArray<U>> for BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: Numeric,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: BlockArray<U>) -> Self::Output {
                (&self).$method(&rhs)
            }
        }
        impl<T, U> $Trait<&BlockArray<U>> for BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: Numeric,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: &BlockArray<U>) -> Self::Output {
                (&self).$method(rhs)
            }
        }
        impl<T, U> $Trait<BlockArray<U>> for &BlockArray<T>
        where
            T: Promote<U>,
            U: Element + CastTo<<T as Promote<U>>::Out>,
            <T as Promote<U>>::Out: Numeric,
        {
            type Output = Result<BlockArray<<T as Promote<U>>::Out>>;
            fn $method(self, rhs: BlockArray<U>) -> Self::Output {
                self.$method(&rhs)
            }
        }
        impl<T: Numeric> $Trait<T> for &BlockArray<T> {
            type Output = BlockArray<T>;
            fn $method(self, rhs: T) -> BlockArray<T> {
                let mut t = Tokenizer::new();
                rhs.tokenize(&mut t);
                t.write_str(concat!($name, "-scalar"));
                map_nodes::<T>(
                    $name,
                    t,
                    vec![self.node.clone()],
                    scalar_kernel(move |$a: T| {
                        let $b = rhs;
                        $body
                    }),
                )
                .expect("a unary map cannot fail to broadcast")
            }
        }
        impl<T: Numeric> $Trait<T> for BlockArray<T> {
            type Output = BlockArray<T>;
            fn $method(self, rhs: T) -> BlockArray<T> {
                (&self).$method(rhs)
            }
        }
    };
}

/// A scalar on the left of an operator (`2.0 - &x`), for each element type (Rust's orphan
/// rules allow these impls only for named types).
macro_rules! scalar_left {
    ($($s:ty),*) => {$(
        scalar_left!(@op $s, Add, add, "add", |a, b| Ok(a.add_wrap(b)));
        scalar_left!(@op $s, Sub, sub, "sub", |a, b| Ok(a.sub_wrap(b)));
        scalar_left!(@op $s, Mul, mul, "mul", |a, b| Ok(a.mul_wrap(b)));
        scalar_left!(@op $s, Rem, rem, "mod", |a, b| a.try_rem(b));
        impl Div<&BlockArray<$s>> for $s {
            type Output = BlockArray<<$s as Numeric>::Quotient>;
            fn div(self, rhs: &BlockArray<$s>) -> Self::Output {
                let mut t = Tokenizer::new();
                self.tokenize(&mut t);
                t.write_str("true_divide-scalar-left");
                map_nodes(
                    "true_divide",
                    t,
                    vec![rhs.node.clone()],
                    unary_kernel(move |b: $s| self.true_div(b)),
                )
                .expect("a unary map cannot fail to broadcast")
            }
        }
        impl Div<BlockArray<$s>> for $s {
            type Output = BlockArray<<$s as Numeric>::Quotient>;
            fn div(self, rhs: BlockArray<$s>) -> Self::Output {
                self / &rhs
            }
        }
    )*};
    (@op $s:ty, $Trait:ident, $method:ident, $name:literal, |$a:ident, $b:ident| $body:expr) => {
        impl $Trait<&BlockArray<$s>> for $s {
            type Output = BlockArray<$s>;
            fn $method(self, rhs: &BlockArray<$s>) -> BlockArray<$s> {
                let mut t = Tokenizer::new();
                self.tokenize(&mut t);
                t.write_str(concat!($name, "-scalar-left"));
                map_nodes::<$s>(
                    $name,
                    t,
                    vec![rhs.node.clone()],
                    scalar_kernel(move |$b: $s| {
                        let $a = self;
                        $body
                    }),
                )
                .expect("a unary map cannot fail to broadcast")
            }
        }
        impl $Trait<BlockArray<$s>> for $s {
            type Output = BlockArray<$s>;
            fn $method(self, rhs: BlockArray<$s>) -> BlockArray<$s> {
                self.$method(&rhs)
            }
        }
    };
}
pub(crate) use scalar_left;

arith!(Add, add, "add", |a, b| Ok(a.add_wrap(b)));
arith!(Sub, sub, "sub", |a, b| Ok(a.sub_wrap(b)));
arith!(Mul, mul, "mul", |a, b| Ok(a.mul_wrap(b)));
arith!(Rem, rem, "mod", |a, b| a.try_rem(b));
scalar_left!(
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    num_complex::Complex<f32>,
    num_complex::Complex<f64>
);

/// `/` between arrays: NumPy's `true_divide` after promotion (integers divide into `f64`).
impl<T, U> Div<&BlockArray<U>> for &BlockArray<T>
where
    T: Promote<U>,
    U: Element + CastTo<<T as Promote<U>>::Out>,
    <T as Promote<U>>::Out: Numeric,
{
    type Output = Result<BlockArray<<<T as Promote<U>>::Out as Numeric>::Quotient>>;
    fn div(self, rhs: &BlockArray<U>) -> Self::Output {
        let (x, y) = promoted(self, rhs);
        map_nodes(
            "true_divide",
            op_token::<()>(&OpName::pure("true_divide", &())),
            vec![x.node.clone(), y.node.clone()],
            binary_kernel(|a: <T as Promote<U>>::Out, b| Ok(a.true_div(b))),
        )
    }
}

impl<T, U> Div<BlockArray<U>> for BlockArray<T>
where
    T: Promote<U>,
    U: Element + CastTo<<T as Promote<U>>::Out>,
    <T as Promote<U>>::Out: Numeric,
{
    type Output = Result<BlockArray<<<T as Promote<U>>::Out as Numeric>::Quotient>>;
    fn div(self, rhs: BlockArray<U>) -> Self::Output {
        &self / &rhs
    }
}

impl<T, U> Div<&BlockArray<U>> for BlockArray<T>
where
    T: Promote<U>,
    U: Element + CastTo<<T as Promote<U>>::Out>,
    <T as Promote<U>>::Out: Numeric,
{
    type Output = Result<BlockArray<<<T as Promote<U>>::Out as Numeric>::Quotient>>;
    fn div(self, rhs: &BlockArray<U>) -> Self::Output {
        &self / rhs
    }
}

impl<T, U> Div<BlockArray<U>> for &BlockArray<T>
where
    T: Promote<U>,
    U: Element + CastTo<<T as Promote<U>>::Out>,
    <T as Promote<U>>::Out: Numeric,
{
    type Output = Result<BlockArray<<<T as Promote<U>>::Out as Numeric>::Quotient>>;
    fn div(self, rhs: BlockArray<U>) -> Self::Output {
        self / &rhs
    }
}

/// `/` by a scalar of the array's type: NumPy's `true_divide` (integers into `f64`).
impl<T: Numeric> Div<T> for &BlockArray<T> {
    type Output = BlockArray<T::Quotient>;
    fn div(self, rhs: T) -> BlockArray<T::Quotient> {
        let mut t = Tokenizer::new();
        rhs.tokenize(&mut t);
        t.write_str("true_divide-scalar");
        map_nodes(
            "true_divide",
            t,
            vec![self.node.clone()],
            unary_kernel(move |a: T| a.true_div(rhs)),
        )
        .expect("a unary map cannot fail to broadcast")
    }
}

impl<T: Numeric> Div<T> for BlockArray<T> {
    type Output = BlockArray<T::Quotient>;
    fn div(self, rhs: T) -> BlockArray<T::Quotient> {
        &self / rhs
    }
}

impl<T: Numeric + Neg<Output = T>> Neg for &BlockArray<T> {
    type Output = BlockArray<T>;
    fn neg(self) -> BlockArray<T> {
        self.negative()
    }
}

impl<T: Numeric + Neg<Output = T>> Neg for BlockArray<T> {
    type Output = BlockArray<T>;
    fn neg(self) -> BlockArray<T> {
        -&self
    }
}

macro_rules! ufuncs {
    ($($(#[$doc:meta])* $name:ident => $f:expr;)*) => {
        impl<T: Float> BlockArray<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> BlockArray<T> {
                    self.map_builtin(stringify!($name), $f)
                }
            )*
        }
    };
}

ufuncs! {
    /// `e^x`.
    exp => |v: T| crate::element::libm::exp_of(v);
    /// `2^x`.
    exp2 => |v: T| v.exp2();
    /// `e^x - 1`, accurate near 0.
    expm1 => |v: T| v.exp_m1();
    /// Natural logarithm (`numpy.log`).
    log => |v: T| crate::element::libm::ln_of(v);
    /// Base-2 logarithm.
    log2 => |v: T| v.log2();
    /// Base-10 logarithm.
    log10 => |v: T| v.log10();
    /// `ln(1 + x)`, accurate near 0.
    log1p => |v: T| v.ln_1p();
    /// Square root.
    sqrt => |v: T| v.sqrt();
    /// Cube root.
    cbrt => |v: T| v.cbrt();
    /// Sine.
    sin => |v: T| v.sin();
    /// Cosine.
    cos => |v: T| v.cos();
    /// Tangent.
    tan => |v: T| v.tan();
    /// Inverse sine.
    asin => |v: T| v.asin();
    /// Inverse cosine.
    acos => |v: T| v.acos();
    /// Inverse tangent.
    atan => |v: T| v.atan();
    /// Hyperbolic sine.
    sinh => |v: T| v.sinh();
    /// Hyperbolic cosine.
    cosh => |v: T| v.cosh();
    /// Hyperbolic tangent.
    tanh => |v: T| v.tanh();
    /// Round down.
    floor => |v: T| v.floor();
    /// Round up.
    ceil => |v: T| v.ceil();
    /// Round half to even, like `numpy.round`.
    round => |v: T| {
        let r = v.round();
        if (v - v.trunc()).abs() == T::from_f64(0.5) { (v / T::from_f64(2.0)).round() * T::from_f64(2.0) } else { r }
    };
    /// Round toward zero.
    trunc => |v: T| v.trunc();
}

impl<T: Float> BlockArray<T> {
    /// Whether each element is infinite.
    pub fn isinf(&self) -> BlockArray<bool> {
        self.map_builtin("isinf", |v: T| v.is_infinite())
    }

    /// Whether each element is finite.
    pub fn isfinite(&self) -> BlockArray<bool> {
        self.map_builtin("isfinite", |v: T| v.is_finite())
    }

    /// Each element to an integer power, as NumPy's `power(x, n)` computes it (`pow`: correctly
    /// rounded to within an ulp, and subnormal results where repeated squaring would underflow
    /// `1/x^|n|` to 0).
    pub fn powi(&self, n: i32) -> BlockArray<T> {
        let mut t = Tokenizer::new();
        t.write_i64(n.into()).write_str("powi");
        map_nodes::<T>(
            "powi",
            t,
            vec![self.node.clone()],
            unary_kernel(move |v: T| crate::element::libm::pow_of(v, T::from_f64(f64::from(n)))),
        )
        .expect("a unary map cannot fail to broadcast")
    }

    /// Each element to a power (array or scalar).
    pub fn powf<'a>(&self, exponent: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(exponent, "powf", |a, b| {
            Ok(crate::element::libm::pow_of(a, b))
        })
    }

    /// The four-quadrant inverse tangent of `self / other` (`numpy.arctan2(self, other)`).
    pub fn atan2<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "atan2", |a, b| Ok(a.atan2(b)))
    }

    /// `sqrt(self² + other²)` without overflow.
    pub fn hypot<'a>(&self, other: impl Into<Operand<'a, T>>) -> Result<BlockArray<T>> {
        self.try_zip(other, "hypot", |a, b| Ok(a.hypot(b)))
    }
}

macro_rules! complex_ufuncs {
    ($($(#[$doc:meta])* $name:ident => $f:expr;)*) => {
        impl<F: Float> BlockArray<num_complex::Complex<F>>
        where
            num_complex::Complex<F>: Element,
        {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> BlockArray<num_complex::Complex<F>> {
                    self.map_builtin(stringify!($name), $f)
                }
            )*

            /// The modulus `|z|`.
            pub fn abs(&self) -> BlockArray<F> {
                self.map_builtin("abs", |z: num_complex::Complex<F>| z.norm())
            }

            /// The real part.
            pub fn re(&self) -> BlockArray<F> {
                self.map_builtin("real", |z: num_complex::Complex<F>| z.re)
            }

            /// The imaginary part.
            pub fn im(&self) -> BlockArray<F> {
                self.map_builtin("imag", |z: num_complex::Complex<F>| z.im)
            }
        }
    };
}

complex_ufuncs! {
    /// `e^z`.
    exp => crate::element::complex::exp::<F>;
    /// Natural logarithm (principal branch).
    log => crate::element::complex::log::<F>;
    /// Square root (principal branch).
    sqrt => crate::element::complex::sqrt::<F>;
    /// Sine.
    sin => |z: num_complex::Complex<F>| z.sin();
    /// Cosine.
    cos => |z: num_complex::Complex<F>| z.cos();
    /// Tangent.
    tan => crate::element::complex::tan::<F>;
    /// Hyperbolic sine.
    sinh => |z: num_complex::Complex<F>| z.sinh();
    /// Hyperbolic cosine.
    cosh => |z: num_complex::Complex<F>| z.cosh();
    /// Hyperbolic tangent.
    tanh => crate::element::complex::tanh::<F>;
    /// The complex conjugate.
    conj => |z: num_complex::Complex<F>| z.conj();
}
