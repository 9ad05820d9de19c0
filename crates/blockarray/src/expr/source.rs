//! Sources: where blocks come from. In-memory arrays, constants, generators, random numbers —
//! and, in extension crates, files.
//!
//! A source implements [`ChunkSource`]: read any rectangular region. A [`SourceNode`] is a view
//! of a source (per axis: a strided range or a single index), so slicing an array that comes
//! straight from a source only changes the view, and each task reads exactly the elements its
//! block needs (slice push-down all the way to the read): sources that compute their elements
//! compute only those ([`ChunkSource::read_strided`]), so `x[::2]` of a random array draws
//! half the numbers.
//!
//! Random arrays live in [`super::random`].

use crate::element::{Element, Float, Numeric, Real};
use crate::expr::array::{BlockTask, Meta, Node, block_value};
use crate::plan::index::NormSlice;
use crate::{BlockArray, ChunkSpec, Chunks, Error, Result};
use dag_core::{OpName, Tokenizer, Value};
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use std::ops::Range;
use std::sync::Arc;

/// Something an array's blocks can be read from.
///
/// `read` may be called concurrently from several threads, for any region inside `shape`.
pub trait ChunkSource<T: Element>: Send + Sync + 'static {
    /// The full shape.
    fn shape(&self) -> Vec<usize>;
    /// Read the elements in `region` (one range per axis, inside the shape).
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>>;
    /// Read every `steps[k]`-th element of `region` along each axis `k`, starting at
    /// `region[k].start` (every step ≥ 1): the elements a strided slice selects, so the result
    /// has `region[k].len().div_ceil(steps[k])` elements along axis `k`.
    ///
    /// The default reads the whole region and picks them out; sources that compute their
    /// elements (random numbers, generators) override it to compute only the picked ones.
    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        let raw = self.read(region)?;
        if steps.iter().all(|&s| s == 1) {
            return Ok(raw);
        }
        let pick: Vec<SliceInfoElem> = steps
            .iter()
            .map(|&step| SliceInfoElem::Slice {
                start: 0,
                end: None,
                step: step as isize,
            })
            .collect();
        Ok(raw.slice(pick.as_slice()).to_owned())
    }
    /// Feed what identifies the contents (same contents, same token) to `t`. Keys of tasks
    /// reading this source derive from it.
    fn tokenize(&self, t: &mut Tokenizer);
    /// A short name for task keys: `"ones"`, `"from-array"`, `"hdf5"`.
    fn name(&self) -> &str;
    /// The source's natural chunking (a file's chunk shape), used when none is given.
    fn natural_chunks(&self) -> Option<Vec<usize>> {
        None
    }
    /// The storage this source reads (a file and dataset, as a string unique to it, such as
    /// `"hdf5:/abs/path/data.h5:/x"`), or `None` for sources that compute or hold their data.
    /// Compared with [`ChunkSink::writes_in_place`](crate::ChunkSink::writes_in_place) so that
    /// a computation never writes in place into what it reads.
    fn resource(&self) -> Option<String> {
        None
    }
}

/// The array of a source seen through a view.
pub struct SourceNode<T: Element> {
    meta: Meta,
    source: Arc<dyn ChunkSource<T>>,
    /// Per axis, the source positions this node's output positions map to.
    view: Vec<NormSlice>,
}

/// `s2` applied to the positions `s1` selects.
pub(crate) fn compose(s1: &NormSlice, s2: &NormSlice) -> NormSlice {
    if s2.len == 0 {
        return NormSlice {
            start: 0,
            len: 0,
            step: 1,
        };
    }
    NormSlice {
        start: (s1.start as isize + s1.step * s2.start as isize) as usize,
        len: s2.len,
        // The step of one element is never taken, and may be anything (`isize::MIN`): the
        // product of the steps is within the axis only when a second element is.
        step: if s2.len == 1 { 1 } else { s1.step * s2.step },
    }
}

/// The ndarray slice selecting `s`'s positions from an array whose axis starts at `origin`.
pub(crate) fn nd_slice(s: &NormSlice, origin: usize) -> SliceInfoElem {
    if s.len == 0 {
        return SliceInfoElem::Slice {
            start: 0,
            end: Some(0),
            step: 1,
        };
    }
    let first = (s.start - origin) as isize;
    let last = first + s.step * (s.len as isize - 1);
    if s.step > 0 {
        SliceInfoElem::Slice {
            start: first,
            end: Some(last + 1),
            step: s.step,
        }
    } else {
        // ndarray: a negative step walks [start, end) from the end.
        SliceInfoElem::Slice {
            start: last,
            end: Some(first + 1),
            step: s.step,
        }
    }
}

/// The positions of `sub` (a slice within `s`'s output positions `range`).
fn sub_slice(s: &NormSlice, range: Range<usize>) -> NormSlice {
    compose(
        s,
        &NormSlice {
            start: range.start,
            len: range.len(),
            step: 1,
        },
    )
}

impl<T: Element> SourceNode<T> {
    /// The whole of `source`, in `chunks`.
    pub fn new(source: Arc<dyn ChunkSource<T>>, chunks: Chunks) -> Result<SourceNode<T>> {
        let shape = source.shape();
        if chunks.shape() != shape.as_slice() {
            return Err(Error::shape_mismatch(
                "chunks for source",
                chunks.shape(),
                &shape,
            ));
        }
        let view = shape.iter().map(|&n| NormSlice::full(n)).collect();
        Ok(Self::with_view(source, view, chunks))
    }

    fn with_view(
        source: Arc<dyn ChunkSource<T>>,
        view: Vec<NormSlice>,
        chunks: Chunks,
    ) -> SourceNode<T> {
        let mut t = Tokenizer::new();
        source.tokenize(&mut t);
        for s in &view {
            t.write_usize(s.start)
                .write_usize(s.len)
                .write_i64(s.step as i64);
        }
        let meta = Meta::new::<T>(source.name(), t, chunks);
        SourceNode { meta, source, view }
    }
}

impl<T: Element> Node for SourceNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        Vec::new()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let mut region = Vec::with_capacity(self.view.len());
        let mut steps = Vec::with_capacity(self.view.len());
        // Axes read in ascending order that the block wants descending.
        let mut reversed = Vec::new();
        for (axis, s) in self.view.iter().enumerate() {
            let r = self.meta.chunks.block_range(axis, index[axis]);
            let sub = sub_slice(s, r);
            if sub.len <= 1 {
                region.push(if sub.len == 0 { 0..0 } else { sub.span() });
                steps.push(1);
            } else {
                region.push(sub.span());
                steps.push(sub.step.unsigned_abs());
                if sub.step < 0 {
                    reversed.push(axis);
                }
            }
        }
        let source = self.source.clone();
        BlockTask {
            deps: Vec::new(),
            func: Arc::new(move |_: &[Value]| {
                let mut block = source.read_strided(&region, &steps)?;
                if reversed.is_empty() {
                    return Ok(block_value(block));
                }
                for &axis in &reversed {
                    block.invert_axis(ndarray::Axis(axis));
                }
                Ok(block_value(block.as_standard_layout().into_owned()))
            }),
        }
    }
    fn resources(&self) -> Vec<String> {
        self.source.resource().into_iter().collect()
    }
    fn push_slice(&self, slices: &[NormSlice]) -> Option<Result<Arc<dyn Node>>> {
        Some(
            crate::ops::slicing::plan_slices(&self.meta.chunks, slices).map(|(chunks, _)| {
                let view = self
                    .view
                    .iter()
                    .zip(slices)
                    .map(|(a, b)| compose(a, b))
                    .collect();
                Arc::new(Self::with_view(self.source.clone(), view, chunks)) as Arc<dyn Node>
            }),
        )
    }
}

/// The array of every `steps[k]`-th position of `region` (C order), filled one row (the last
/// axis) at a time: `row(outer, data)` appends the row whose other axes are at the global
/// positions `outer`. A 0-d region is one row of one element.
pub(super) fn fill_rows<T>(
    region: &[Range<usize>],
    steps: &[usize],
    mut row: impl FnMut(&[usize], &mut Vec<T>),
) -> ArrayD<T> {
    let dims = strided_dims(region, steps);
    let total: usize = dims.iter().product();
    let mut data = Vec::with_capacity(total);
    if total > 0 {
        let outer = dims.len().saturating_sub(1);
        let mut idx: Vec<usize> = region[..outer].iter().map(|r| r.start).collect();
        'rows: loop {
            row(&idx, &mut data);
            // Odometer over the outer axes.
            let mut k = outer;
            loop {
                if k == 0 {
                    break 'rows;
                }
                k -= 1;
                idx[k] += steps[k];
                if idx[k] < region[k].end {
                    break;
                }
                idx[k] = region[k].start;
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&dims), data).expect("sizes match")
}

/// Fill every `steps[k]`-th position of a region of an array of `shape` (C order) with
/// `f(flat index)`.
pub(super) fn fill_flat<T, F: Fn(u64) -> T>(
    shape: &[usize],
    region: &[Range<usize>],
    steps: &[usize],
    f: F,
) -> ArrayD<T> {
    fill_flat_runs(shape, region, steps, |first, step, n, data| {
        data.extend((0..n as u64).map(|m| f(first + m * step)))
    })
}

/// Fill every `steps[k]`-th position of a region of an array of `shape` (C order) one run
/// (a row of the last axis) at a time: `run(first, step, n, data)` appends the values of the
/// `n` elements of flat indices `first + m·step`.
pub(super) fn fill_flat_runs<T>(
    shape: &[usize],
    region: &[Range<usize>],
    steps: &[usize],
    mut run: impl FnMut(u64, u64, usize, &mut Vec<T>),
) -> ArrayD<T> {
    let nd = shape.len();
    let mut strides = vec![1u64; nd];
    for k in (0..nd.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1] as u64;
    }
    fill_rows(region, steps, |outer, data| {
        let Some(last) = nd.checked_sub(1) else {
            run(0, 1, 1, data);
            return;
        };
        let base: u64 = outer
            .iter()
            .zip(&strides)
            .map(|(&i, &s)| i as u64 * s)
            .sum();
        let (start, step) = (region[last].start as u64, steps[last] as u64);
        let n = region[last].len().div_ceil(steps[last]);
        run(base + start, step, n, data);
    })
}

/// Fill every `steps[k]`-th position of a region (C order) with `f(global multi-index)`.
fn fill_index<T, F: Fn(&[usize]) -> T>(
    region: &[Range<usize>],
    steps: &[usize],
    f: F,
) -> ArrayD<T> {
    let mut full = vec![0usize; region.len()];
    fill_rows(region, steps, |outer, data| {
        let Some(last) = region.len().checked_sub(1) else {
            data.push(f(&[]));
            return;
        };
        full[..last].copy_from_slice(outer);
        for j in region[last].clone().step_by(steps[last]) {
            full[last] = j;
            data.push(f(&full));
        }
    })
}

/// A region's shape when every `steps[k]`-th element is read.
fn strided_dims(region: &[Range<usize>], steps: &[usize]) -> Vec<usize> {
    region
        .iter()
        .zip(steps)
        .map(|(r, &s)| r.len().div_ceil(s))
        .collect()
}

struct FullSource<T> {
    shape: Vec<usize>,
    value: T,
    name: &'static str,
}

impl<T: Element> ChunkSource<T> for FullSource<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.read_strided(region, &vec![1; region.len()])
    }
    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        Ok(ArrayD::from_elem(
            IxDyn(&strided_dims(region, steps)),
            self.value,
        ))
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write(&self.shape);
        self.value.tokenize(t);
    }
    fn name(&self) -> &str {
        self.name
    }
}

struct ArraySource<T> {
    data: Arc<ArrayD<T>>,
    token: u64,
}

impl<T: Element> ChunkSource<T> for ArraySource<T> {
    fn shape(&self) -> Vec<usize> {
        self.data.shape().to_vec()
    }
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        let info: Vec<SliceInfoElem> = region
            .iter()
            .map(|r| SliceInfoElem::from(r.clone()))
            .collect();
        Ok(self.data.slice(info.as_slice()).to_owned())
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write_u64(self.token);
    }
    fn name(&self) -> &str {
        "array"
    }
}

/// Generated values: `f(index)` with a token describing `f`.
struct FnSource<T, F> {
    shape: Vec<usize>,
    f: F,
    name: &'static str,
    token: u64,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Element, F: Fn(&[usize]) -> T + Send + Sync + 'static> ChunkSource<T> for FnSource<T, F> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<T>> {
        self.read_strided(region, &vec![1; region.len()])
    }
    fn read_strided(&self, region: &[Range<usize>], steps: &[usize]) -> Result<ArrayD<T>> {
        Ok(fill_index(region, steps, &self.f))
    }
    fn tokenize(&self, t: &mut Tokenizer) {
        t.write(&self.shape).write_u64(self.token);
    }
    fn name(&self) -> &str {
        self.name
    }
}

pub(super) fn from_source<T: Element>(
    source: Arc<dyn ChunkSource<T>>,
    chunks: impl Into<ChunkSpec>,
) -> Result<BlockArray<T>> {
    let chunks = Chunks::new(&source.shape(), chunks, T::itemsize())?;
    Ok(BlockArray::wrap(Arc::new(SourceNode::new(source, chunks)?)))
}

impl<T: Element> BlockArray<T> {
    /// An array read from `source`, in `chunks` (or the source's natural chunking when
    /// `chunks` is `None`, else automatic). The entry point for storage extensions.
    pub fn from_source(
        source: Arc<dyn ChunkSource<T>>,
        chunks: Option<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let spec = match (chunks, source.natural_chunks()) {
            (Some(c), _) => c,
            (None, Some(natural)) => ChunkSpec::Shape(natural),
            (None, None) => ChunkSpec::auto(),
        };
        from_source(source, spec)
    }

    /// A chunked array over an in-memory array of any dimension (which it takes; share big
    /// arrays with [`from_shared`](Self::from_shared)).
    ///
    /// ```
    /// use ndarray::array;
    /// let x = blockarray::BlockArray::from_array(array![[1, 2, 3], [4, 5, 6]], [1, 2])?;
    /// assert_eq!(x.chunks().to_string(), "((1, 1), (2, 1))");
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn from_array<D: ndarray::Dimension>(
        data: ndarray::Array<T, D>,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        Self::from_shared(Arc::new(data.into_dyn()), chunks)
    }

    /// A chunked array over a shared in-memory array. Its key token hashes the contents, so the
    /// same data gives the same keys in every run.
    pub fn from_shared(
        data: Arc<ArrayD<T>>,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let mut t = Tokenizer::new();
        t.write(data.shape());
        for v in data.iter() {
            v.tokenize(&mut t);
        }
        let token = t.finish();
        from_source(Arc::new(ArraySource { data, token }), chunks)
    }

    /// An array filled with `value`.
    pub fn full(shape: &[usize], value: T, chunks: impl Into<ChunkSpec>) -> Result<BlockArray<T>> {
        from_source(
            Arc::new(FullSource {
                shape: shape.to_vec(),
                value,
                name: "full",
            }),
            chunks,
        )
    }

    /// An array whose element at index `i` is `f(i)`. `name` labels the tasks: from a plain
    /// name the keys are unique to this call (two arrays from closures that capture different
    /// values never share a key); with [`OpName`]`::pure` the caller vouches that the name and
    /// token identify `f`, so equal arrays share their tasks.
    ///
    /// ```
    /// let x = blockarray::BlockArray::from_fn(&[3, 4], [2, 2], "i-times-10-plus-j", |i| (i[0] * 10 + i[1]) as i64)?;
    /// assert_eq!(x.compute()?[[2, 3]], 23);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn from_fn<F>(
        shape: &[usize],
        chunks: impl Into<ChunkSpec>,
        name: impl Into<OpName>,
        f: F,
    ) -> Result<BlockArray<T>>
    where
        F: Fn(&[usize]) -> T + Send + Sync + 'static,
    {
        let mut t = Tokenizer::new();
        t.write(&name.into()).write_str(std::any::type_name::<F>());
        let source = FnSource {
            shape: shape.to_vec(),
            f,
            name: "from-fn",
            token: t.finish(),
            _type: std::marker::PhantomData,
        };
        from_source(Arc::new(source), chunks)
    }
}

impl<T: Numeric> BlockArray<T> {
    /// An array of ones.
    pub fn ones(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<BlockArray<T>> {
        let source = FullSource {
            shape: shape.to_vec(),
            value: T::one(),
            name: "ones",
        };
        from_source(Arc::new(source), chunks)
    }

    /// An array of zeros.
    pub fn zeros(shape: &[usize], chunks: impl Into<ChunkSpec>) -> Result<BlockArray<T>> {
        let source = FullSource {
            shape: shape.to_vec(),
            value: T::zero(),
            name: "zeros",
        };
        from_source(Arc::new(source), chunks)
    }

    /// The `n × m` identity-like matrix with ones on diagonal `k` (0: main, > 0: above).
    pub fn eye(
        n: usize,
        m: Option<usize>,
        k: isize,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let m = m.unwrap_or(n);
        let source = FnSource {
            shape: vec![n, m],
            f: move |i: &[usize]| {
                if i[1] as isize - i[0] as isize == k {
                    T::one()
                } else {
                    T::zero()
                }
            },
            name: "eye",
            token: k as u64,
            _type: std::marker::PhantomData,
        };
        from_source(Arc::new(source), chunks)
    }
}

impl<T: Real> BlockArray<T> {
    /// Evenly spaced values in `[start, stop)` by `step`, like `numpy.arange`: the length is
    /// `ceil((stop - start) / step)`. A zero or NaN step, or a length that is not finite (an
    /// infinite bound), is an error.
    ///
    /// ```
    /// let x = blockarray::BlockArray::arange(0i64, 10, 3, 2)?;
    /// assert_eq!(x.compute()?.into_raw_vec_and_offset().0, vec![0, 3, 6, 9]);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn arange(
        start: T,
        stop: T,
        step: T,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        if step == T::zero() {
            return Err(Error::step("arange: step must not be zero"));
        }
        let len = match (start.to_i128(), stop.to_i128(), step.to_i128()) {
            // Integers: the exact length, as NumPy computes it for integer types (through f64
            // the bounds lose their low bits above 2^53).
            (Some(a), Some(b), Some(s)) => {
                let span = b - a;
                let n = span / s + i128::from(span % s != 0 && (span < 0) == (s < 0));
                usize::try_from(n.max(0)).map_err(|_| {
                    Error::step(format!("arange: [{a}, {b}) by {s} has too many values"))
                })?
            }
            _ => {
                // NumPy's length: `ceil((stop - start) / step)`, the difference and quotient
                // in the element type.
                let span = ((stop - start) / step).to_f64_lossy().ceil();
                let (a, b, s) = (
                    start.to_f64_lossy(),
                    stop.to_f64_lossy(),
                    step.to_f64_lossy(),
                );
                if !span.is_finite() || span >= isize::MAX as f64 {
                    return Err(Error::step(format!(
                        "arange: cannot compute the length of [{a}, {b}) by {s}: (stop - start) / step \
                         is {span}"
                    )));
                }
                span.max(0.0) as usize
            }
        };
        let mut t = Tokenizer::new();
        start.tokenize(&mut t);
        step.tokenize(&mut t);
        let source = FnSource {
            shape: vec![len],
            f: move |i: &[usize]| arange_value(start, step, i[0]),
            name: "arange",
            token: t.finish(),
            _type: std::marker::PhantomData,
        };
        from_source(Arc::new(source), chunks)
    }
}

/// Value `i` of an arange: `start + i·step` exactly for integers (every value of an arange
/// lies between its bounds, so it fits); for floats NumPy's values, computed in the element
/// type: `start`, then `start + step`, then `start + i·delta` with the step actually taken,
/// `delta = (start + step) - start` (so `arange(1.0, 2.0, 0.1)[2]` is `1.2000000000000002`,
/// as in NumPy).
fn arange_value<T: Real>(start: T, step: T, i: usize) -> T {
    if let (Some(a), Some(s)) = (start.to_i128(), step.to_i128()) {
        return T::from_i128(a + i as i128 * s).expect("arange values lie between its bounds");
    }
    match i {
        0 => start,
        1 => start + step,
        _ => start + T::from_index(i) * ((start + step) - start),
    }
}

impl<T: Float> BlockArray<T> {
    /// `num` evenly spaced values from `start` to `stop` (inclusive when `endpoint`), like
    /// `numpy.linspace`, bit for bit for `f64`. Values are computed in `f64` and rounded once:
    /// for `f32`, NumPy's `linspace(start, stop, num, dtype=np.float32)` (which may differ in
    /// the last bit from `linspace` of `float32` scalars, computed in `float32`).
    pub fn linspace(
        start: T,
        stop: T,
        num: usize,
        endpoint: bool,
        chunks: impl Into<ChunkSpec>,
    ) -> Result<BlockArray<T>> {
        let (a, b) = (start.as_f64(), stop.as_f64());
        let div = if endpoint { num.saturating_sub(1) } else { num };
        let delta = b - a;
        let step = if div == 0 {
            f64::NAN
        } else {
            delta / div as f64
        };
        let mut t = Tokenizer::new();
        t.write_f64(a).write_f64(b).write_u64(u64::from(endpoint));
        // NumPy's formulas: `i·step + start`; `(i/div)·delta + start` when the step underflows
        // to 0 (gh-5437); `0·delta + start` for a single value (NaN when `delta` is infinite).
        let source = FnSource {
            shape: vec![num],
            f: move |i: &[usize]| {
                let k = i[0] as f64;
                T::from_f64(if endpoint && num > 1 && i[0] == num - 1 {
                    b
                } else if div == 0 {
                    k * delta + a
                } else if step == 0.0 {
                    k / div as f64 * delta + a
                } else {
                    k * step + a
                })
            },
            name: "linspace",
            token: t.finish(),
            _type: std::marker::PhantomData,
        };
        from_source(Arc::new(source), chunks)
    }
}
