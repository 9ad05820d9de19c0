//! Block maps that drop or add axes (dask's `map_blocks(drop_axis=…, new_axis=…)`, and
//! [`blockwise_axes`] over several arrays), `apply_along_axis` and `apply_gufunc`.
//!
//! # Design notes
//!
//! Both go through [`blockwise`](crate::blockwise)'s node (so through its block-shape check
//! and keys): the input gets unit axes at its end for the new axes, is rechunked so that each
//! dropped axis is one block, and the user's block is moved into that layout — dropped axes
//! as unit axes, new axes at the end — then unit axes and a transpose give the output's
//! layout. The user function sees input blocks and returns output blocks in the output's own
//! layout, with a [`BlockInfo`] of the output.

use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value, token_of};
use crate::ops::blockwise::{BlockInfo, blockwise_tagged};
use crate::ops::shape::axes_node;
use crate::{BlockArray, ChunkSpec, Element, Error, OpName, Result};
use dag_core::{BlockIndex, TaskError, Value};
use ndarray::{ArrayD, ArrayView1, Axis, IxDyn};
use std::sync::Arc;

/// `op` with this wrapper's own parameters in its token when it is pure (a unique name stays
/// unique), so that equal pure names with different axes never share keys.
fn with_params<P: dag_core::Tokenize + ?Sized>(op: OpName, what: &str, params: &P) -> OpName {
    if op.is_pure() {
        let name = op.name().to_string();
        OpName::pure(name, &(op, what, params))
    } else {
        op
    }
}

impl<T: Element> BlockArray<T> {
    /// `map_blocks` with axes dropped and added (dask's `drop_axis` and `new_axis`): `f` gets
    /// each block whole along the `drop_axis` axes (the input is rechunked so they are single
    /// blocks) and returns the output block, in which those axes are gone and a new axis of
    /// length `len` sits at output position `pos` for each `(pos, len)` of `new_axis`. The
    /// element type may change. Keys as for [`blockwise`](crate::blockwise).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0.0f64, 12.0, 1.0, 5)?.reshape(&[3, 4])?.rechunk([2, 2])?;
    /// // Row sums (axis 1 dropped), as i64, each with a new trailing axis of length 2
    /// // holding (sum, max).
    /// let y = x.map_blocks_axes("sum-max", &[1], &[(1, 2)], |b, _| {
    ///     let s = b.sum_axis(ndarray::Axis(1));
    ///     let m = b.map_axis(ndarray::Axis(1), |r| r.fold(f64::MIN, |a, &v| a.max(v)));
    ///     Ok(ndarray::stack(ndarray::Axis(1), &[s.view(), m.view()])?.mapv(|v| v as i64))
    /// })?;
    /// assert_eq!(y.compute()?, ndarray::array![[6, 3], [22, 7], [38, 11]].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn map_blocks_axes<U, F>(
        &self,
        name: impl Into<OpName>,
        drop_axis: &[usize],
        new_axis: &[(usize, usize)],
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(&ArrayD<T>, &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
            + Send
            + Sync
            + 'static,
    {
        let tag = std::any::type_name::<F>();
        blockwise_axes_tagged(
            name.into(),
            tag,
            &[self],
            drop_axis,
            new_axis,
            move |b, info| f(b[0], info),
        )
    }

    /// `f` applied to every 1-d lane along `axis` (`numpy.apply_along_axis`): `f` returns
    /// `out_len` values per lane, which replace the axis (with `out_len` `None`, `f` returns
    /// one value and the axis is dropped). The axis is rechunked into single blocks; keys as
    /// for [`blockwise`](crate::blockwise).
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
    /// let first_last = x.apply_along_axis("ends", 1, Some(2), |lane| vec![lane[0], lane[lane.len() - 1]])?;
    /// assert_eq!(first_last.compute()?, ndarray::array![[0, 3], [4, 7], [8, 11]].into_dyn());
    /// let spread = x.apply_along_axis("spread", 0, None, |lane| vec![lane[2] - lane[0]])?;
    /// assert_eq!(spread.compute()?, ndarray::array![8, 8, 8, 8].into_dyn());
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn apply_along_axis<U, F>(
        &self,
        name: impl Into<OpName>,
        axis: usize,
        out_len: Option<usize>,
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(ArrayView1<'_, T>) -> Vec<U> + Send + Sync + 'static,
    {
        let name = with_params(name.into(), "apply_along_axis", &(axis, out_len));
        self.check_axis(axis)
            .map_err(|e| e.context(format!("apply_along_axis {}", name.name())))?;
        let label = format!("apply_along_axis {}", name.name());
        let new: Vec<(usize, usize)> = out_len.map(|l| vec![(axis, l)]).unwrap_or_default();
        let want = out_len.unwrap_or(1);
        self.map_blocks_axes(name, &[axis], &new, move |b, info| {
            let mut out = ArrayD::from_elem(IxDyn(info.block_shape), U::default());
            // Lanes of the block, in the order of the output's other positions.
            let lanes = b.lanes(Axis(axis));
            let mut results = Vec::new();
            for lane in lanes {
                let v = f(lane);
                if v.len() != want {
                    return Err(format!(
                        "{label}: the function returned {} values for a lane, not {want}",
                        v.len()
                    )
                    .into());
                }
                results.push(v);
            }
            if out_len.is_some() {
                for (mut lane, r) in out.lanes_mut(Axis(axis)).into_iter().zip(&results) {
                    for (o, v) in lane.iter_mut().zip(r) {
                        *o = *v;
                    }
                }
            } else {
                for (o, r) in out.iter_mut().zip(&results) {
                    *o = r[0];
                }
            }
            Ok(out)
        })
    }
}

/// The core dimension names of a gufunc signature's one term: `"(i,j)"` → `["i", "j"]`.
fn parse_core(term: &str, signature: &str) -> Result<Vec<String>> {
    let t = term.trim();
    let inner = t
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| {
            Error::shape(format!(
                "apply_gufunc: signature '{signature}': '{t}' is not a parenthesised list of core dimensions"
            ))
        })?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|d| {
            let d = d.trim();
            if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Err(Error::shape(format!(
                    "apply_gufunc: signature '{signature}': bad core dimension name '{d}'"
                )))
            } else {
                Ok(d.to_string())
            }
        })
        .collect()
}

impl<T: Element> BlockArray<T> {
    /// A generalized ufunc over this array (the function [`apply_gufunc`] with one
    /// input): `signature` names the core dimensions, as `"(i,j)->(k)"` or `"(i)->()"`.
    /// The input's last axes are its core dimensions (rechunked to single blocks); the
    /// leading loop axes keep their chunks. `f` gets a block of shape `(loop…, core in…)` and
    /// returns one of shape `(loop…, core out…)`. An output core dimension named like an
    /// input one has its length; the others take theirs from `sizes`.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0.0f64, 24.0, 1.0, 5)?.reshape(&[6, 4])?.rechunk([2, 2])?;
    /// // Per row: mean and range, a new core dimension of length 2.
    /// let stats = x.apply_gufunc("stats", "(i)->(s)", &[("s", 2)], |b| {
    ///     let mean = b.mean_axis(ndarray::Axis(1)).unwrap();
    ///     let lo = b.map_axis(ndarray::Axis(1), |r| r[0]);
    ///     let hi = b.map_axis(ndarray::Axis(1), |r| r[r.len() - 1]);
    ///     Ok(ndarray::stack(ndarray::Axis(1), &[mean.view(), (&hi - &lo).view()])?)
    /// })?;
    /// let s = stats.compute()?;
    /// assert_eq!((s[[0, 0]], s[[0, 1]], s.shape()), (1.5, 3.0, &[6, 2][..]));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn apply_gufunc<U, F>(
        &self,
        name: impl Into<OpName>,
        signature: &str,
        sizes: &[(&str, usize)],
        f: F,
    ) -> Result<BlockArray<U>>
    where
        U: Element,
        F: Fn(&ArrayD<T>) -> std::result::Result<ArrayD<U>, TaskError> + Send + Sync + 'static,
    {
        apply_gufunc(name, signature, sizes, &[self], move |b| f(b[0]))
    }
}

/// [`blockwise`](crate::blockwise) with axes dropped and added (dask's `blockwise` /
/// `map_blocks` with `drop_axis` and `new_axis`) over several arrays of one shape: their
/// chunks are unified and each `drop_axis` axis made one block; `f` gets the corresponding
/// blocks and returns the output block, in which those axes are gone and a new axis of
/// length `len` sits at output position `pos` for each `(pos, len)` of `new_axis`. Keys as
/// for [`blockwise`](crate::blockwise).
///
/// ```
/// use blockarray::{BlockArray, blockwise_axes};
/// let a = BlockArray::arange(0i64, 12, 1, 5)?.reshape(&[3, 4])?;
/// let b = BlockArray::<i64>::ones(&[3, 4], [1, 2])?;
/// // Row-wise dot products: axis 1 dropped.
/// let d = blockwise_axes("rowdot", &[&a, &b], &[1], &[], |x, _| Ok((x[0] * x[1]).sum_axis(ndarray::Axis(1))))?;
/// assert_eq!(d.compute()?, ndarray::array![6, 22, 38].into_dyn());
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn blockwise_axes<T, U, F>(
    name: impl Into<OpName>,
    inputs: &[&BlockArray<T>],
    drop_axis: &[usize],
    new_axis: &[(usize, usize)],
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&[&ArrayD<T>], &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
        + Send
        + Sync
        + 'static,
{
    let tag = std::any::type_name::<F>();
    blockwise_axes_tagged(name.into(), tag, inputs, drop_axis, new_axis, f)
}

fn blockwise_axes_tagged<T, U, F>(
    name: OpName,
    tag: &str,
    inputs: &[&BlockArray<T>],
    drop_axis: &[usize],
    new_axis: &[(usize, usize)],
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&[&ArrayD<T>], &BlockInfo<'_>) -> std::result::Result<ArrayD<U>, TaskError>
        + Send
        + Sync
        + 'static,
{
    let name = with_params(
        name,
        "map_blocks_axes",
        &(drop_axis.to_vec(), new_axis.to_vec()),
    );
    let what = format!("map_blocks {}", name.name());
    let first = inputs
        .first()
        .ok_or_else(|| Error::shape(format!("{what}: no input arrays")))?;
    for a in inputs {
        if a.shape() != first.shape() {
            return Err(Error::shape_mismatch(&what, first.shape(), a.shape()));
        }
    }
    let n = first.ndim();
    for (i, &a) in drop_axis.iter().enumerate() {
        first
            .check_axis(a)
            .map_err(|e| e.context(format!("{what}: drop_axis")))?;
        if drop_axis[..i].contains(&a) {
            return Err(Error::axis(format!(
                "{what}: drop_axis {a} is repeated in {drop_axis:?}"
            )));
        }
    }
    let m = n - drop_axis.len() + new_axis.len();
    let mut new_pos: Vec<(usize, usize)> = new_axis.to_vec();
    new_pos.sort_unstable();
    for (i, &(p, _)) in new_pos.iter().enumerate() {
        if p >= m {
            return Err(Error::axis_out_of_bounds(p, m).context(format!("{what}: new_axis")));
        }
        if i > 0 && new_pos[i - 1].0 == p {
            return Err(Error::axis(format!(
                "{what}: new_axis position {p} is repeated in {new_axis:?}"
            )));
        }
    }
    if !drop_axis.is_empty() || !new_axis.is_empty() {
        for a in inputs {
            a.chunks().require_known(&what)?;
        }
    }
    // Intermediate layout: the input's n axes (dropped ones of length 1), then the new
    // axes in output order. `src[k]`: the intermediate axis of output axis k.
    let kept: Vec<usize> = (0..n).filter(|a| !drop_axis.contains(a)).collect();
    let mut src = Vec::with_capacity(m);
    let (mut next_kept, mut next_new) = (0, 0);
    for k in 0..m {
        if new_pos.iter().any(|&(p, _)| p == k) {
            src.push(n + next_new);
            next_new += 1;
        } else {
            src.push(kept[next_kept]);
            next_kept += 1;
        }
    }
    // Common chunks, each dropped axis one block.
    let mut whole = first.chunks().axes().to_vec();
    for a in &inputs[1..] {
        for (k, c) in whole.iter_mut().enumerate() {
            *c = crate::unify_axis(c, a.chunks().axis(k))?;
        }
    }
    for &a in drop_axis {
        whole[a] = vec![first.shape()[a]];
    }
    let prepared = inputs
        .iter()
        .map(|a| {
            // (An input already in these chunks is taken as it is: a rechunk needs known
            // lengths, and an axis of unknown length is fine when no axis is dropped.)
            let a = if a.chunks().axes() == whole.as_slice() {
                BlockArray::clone(a)
            } else {
                a.rechunk(ChunkSpec::Explicit(whole.clone()))?
            };
            a.expand_dims(&(n..n + new_axis.len()).collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&BlockArray<T>> = prepared.iter().collect();
    if drop_axis.is_empty() && new_axis.is_empty() {
        // Nothing moves: blocks map as `blockwise` maps them, into chunks like the inputs'
        // (axes of unknown length included).
        return blockwise_tagged(&name, tag, &refs, None, f);
    }
    let mut out_chunks = whole;
    for &a in drop_axis {
        out_chunks[a] = vec![1];
    }
    out_chunks.extend(new_pos.iter().map(|&(_, len)| vec![len]));
    let src_c = src.clone();
    let label = what.clone();
    let mid = blockwise_tagged(
        &name,
        tag,
        &refs,
        Some(ChunkSpec::Explicit(out_chunks)),
        move |b: &[&ArrayD<T>], info: &BlockInfo<'_>| {
            // The input blocks without the new unit axes.
            let ibs = b
                .iter()
                .map(|x| {
                    let ishape = x.shape()[..n].to_vec();
                    x.as_standard_layout()
                        .into_owned()
                        .into_shape_with_order(IxDyn(&ishape))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let ib: Vec<&ArrayD<T>> = ibs.iter().collect();
            let pick = |v: &[usize]| src_c.iter().map(|&s| v[s]).collect::<Vec<_>>();
            let (index, start, block_shape, array_shape) = (
                pick(info.index),
                pick(info.start),
                pick(info.block_shape),
                pick(info.array_shape),
            );
            let out_info = BlockInfo {
                index: &index,
                start: &start,
                block_shape: &block_shape,
                array_shape: &array_shape,
            };
            let r = f(&ib, &out_info)?;
            if r.shape() != block_shape.as_slice() {
                return Err(format!(
                    "{label}: block {index:?} came back with shape {:?}, but the declared \
                         output gives {block_shape:?}",
                    r.shape()
                )
                .into());
            }
            // Into the intermediate layout: output axes in intermediate order, then
            // unit axes for the dropped ones.
            let mut order: Vec<usize> = (0..src_c.len()).collect();
            order.sort_by_key(|&k| src_c[k]);
            let r = r.permuted_axes(IxDyn(&order));
            let r = r.as_standard_layout().into_owned();
            Ok(r.into_shape_with_order(IxDyn(info.block_shape))?)
        },
    )?;
    // Drop the unit axes (in order), then move the axes into the output's order.
    let mut present = src.clone();
    present.sort_unstable();
    let squeezed = axes_node(&mid.node, present.iter().map(|&s| Some(s)).collect())?;
    let perm: Vec<usize> = src
        .iter()
        .map(|s| present.iter().position(|p| p == s).expect("present"))
        .collect();
    BlockArray::wrap(squeezed).permuted_axes(&perm)
}

type GufuncFn<T> =
    Arc<dyn Fn(&[&ArrayD<T>]) -> std::result::Result<Value, TaskError> + Send + Sync>;

/// One task per block of the loop axes: the inputs' blocks there (whole along their core
/// axes) through the user's function.
struct GufuncNode<T> {
    meta: Meta,
    inputs: Vec<Arc<dyn Node>>,
    loop_nd: usize,
    core_nd: Vec<usize>,
    f: GufuncFn<T>,
}

impl<T: Element> Node for GufuncNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let deps = self
            .core_nd
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let mut b = BlockIndex::from_slice(&index[..self.loop_nd]);
                b.extend(std::iter::repeat_n(0, c));
                (i, b)
            })
            .collect();
        let f = self.f.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| {
                let blocks = v
                    .iter()
                    .map(|b| block_ref::<T>(b))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                f(&blocks)
            }),
        }
    }
}

/// A generalized ufunc (dask's `apply_gufunc`, NumPy's gufunc signatures) over several
/// arrays, one output: `signature` names each input's core dimensions and the output's, as
/// `"(i),(i)->()"` or `"(m,n),(n,p)->(m,p)"`. Each input's last axes are its core dimensions
/// (rechunked to single blocks); the leading loop axes broadcast together (NumPy's rules)
/// and are chunked alike. `f` gets one block per input, of shape `(loop…, core…)`, and returns
/// the output block `(loop…, core out…)`. A core dimension named in several places must have
/// one length; output core dimensions not among the inputs' take theirs from `sizes`. Keys
/// as for [`blockwise`](crate::blockwise).
///
/// ```
/// use blockarray::{BlockArray, apply_gufunc};
/// let a = BlockArray::arange(0.0f64, 12.0, 1.0, 5)?.reshape(&[3, 4])?;
/// let b = BlockArray::arange(0.0f64, 4.0, 1.0, 2)?;
/// // Row-wise inner products of a with the vector b (loop axes broadcast: (3,) with ()).
/// let d = apply_gufunc("inner", "(i),(i)->()", &[], &[&a, &b], |x| {
///     Ok((x[0] * x[1]).sum_axis(ndarray::Axis(x[0].ndim() - 1)))
/// })?;
/// assert_eq!(d.compute()?, ndarray::array![14.0, 38.0, 62.0].into_dyn());
/// # Ok::<(), blockarray::Error>(())
/// ```
pub fn apply_gufunc<T, U, F>(
    name: impl Into<OpName>,
    signature: &str,
    sizes: &[(&str, usize)],
    inputs: &[&BlockArray<T>],
    f: F,
) -> Result<BlockArray<U>>
where
    T: Element,
    U: Element,
    F: Fn(&[&ArrayD<T>]) -> std::result::Result<ArrayD<U>, TaskError> + Send + Sync + 'static,
{
    let (ins, out) = signature.split_once("->").ok_or_else(|| {
        Error::shape(format!("apply_gufunc: signature '{signature}' has no '->'"))
    })?;
    if out.matches('(').count() > 1 {
        return Err(Error::unsupported(format!(
            "apply_gufunc: signature '{signature}': only one output term is supported"
        )));
    }
    // Terms of the inputs: split at the commas between parentheses.
    let mut terms = Vec::new();
    let mut depth = 0i32;
    let mut from = 0;
    for (i, c) in ins.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&ins[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&ins[from..]);
    if terms.len() != inputs.len() {
        return Err(Error::shape(format!(
            "apply_gufunc: signature '{signature}' has {} input terms for {} arrays",
            terms.len(),
            inputs.len()
        )));
    }
    let cores = terms
        .iter()
        .map(|t| parse_core(t, signature))
        .collect::<Result<Vec<_>>>()?;
    let core_out = parse_core(out, signature)?;
    let mut len_of: std::collections::BTreeMap<String, usize> = Default::default();
    let mut loop_shape: Vec<usize> = Vec::new();
    for (k, (x, core)) in inputs.iter().zip(&cores).enumerate() {
        x.chunks().require_known("apply_gufunc")?;
        if core.len() > x.ndim() {
            return Err(Error::shape(format!(
                "apply_gufunc: signature '{signature}': input {k} has {} core dimensions but shape {:?}",
                core.len(),
                x.shape()
            )));
        }
        let lnd = x.ndim() - core.len();
        for (d, &n) in core.iter().zip(&x.shape()[lnd..]) {
            match len_of.insert(d.clone(), n) {
                Some(m) if m != n => {
                    return Err(Error::shape(format!(
                        "apply_gufunc: signature '{signature}': core dimension '{d}' has length {m} and {n} (input {k}, shape {:?})",
                        x.shape()
                    )));
                }
                _ => {}
            }
        }
        loop_shape = crate::broadcast_shapes(&loop_shape, &x.shape()[..lnd]).map_err(|e| {
            e.context(format!(
                "apply_gufunc: the loop axes of input {k} do not broadcast"
            ))
        })?;
    }
    let out_core: Vec<usize> = core_out
        .iter()
        .map(|d| {
            len_of
                .get(d)
                .copied()
                .or_else(|| sizes.iter().find(|(s, _)| s == d).map(|&(_, l)| l))
                .ok_or_else(|| {
                    Error::shape(format!(
                        "apply_gufunc: signature '{signature}': give the length of output core dimension '{d}' in sizes"
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let loop_nd = loop_shape.len();
    // Every input over the common loop shape, then common loop chunks.
    let full = inputs
        .iter()
        .zip(&cores)
        .map(|(x, core)| {
            let mut shape = loop_shape.clone();
            shape.extend_from_slice(&x.shape()[x.ndim() - core.len()..]);
            x.broadcast_to(&shape)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut loop_chunks: Vec<Vec<usize>> = full[0].chunks().axes()[..loop_nd].to_vec();
    for x in &full[1..] {
        for (k, c) in loop_chunks.iter_mut().enumerate() {
            *c = crate::unify_axis(c, x.chunks().axis(k))?;
        }
    }
    let nodes = full
        .iter()
        .map(|x| {
            let mut axes = loop_chunks.clone();
            axes.extend(x.shape()[loop_nd..].iter().map(|&n| vec![n]));
            Ok(x.rechunk(ChunkSpec::Explicit(axes))?.node)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out_axes = loop_chunks;
    out_axes.extend(out_core.iter().map(|&n| vec![n]));
    let chunks = crate::Chunks::from_blocks(out_axes)?;
    let op = with_params(name.into(), "apply_gufunc", &(signature, sizes.to_vec()));
    let refs: Vec<&Arc<dyn Node>> = nodes.iter().collect();
    let mut t = token_of(&refs);
    t.write(&op).write_str(std::any::type_name::<F>());
    let meta = Meta::new::<U>(op.name(), t, chunks);
    let label = format!("apply_gufunc {}", op.name());
    let nout = loop_nd + out_core.len();
    let func: GufuncFn<T> = Arc::new(move |blocks: &[&ArrayD<T>]| {
        let r = f(blocks)?;
        // Loop lengths from the first block, core lengths as declared.
        let mut want: Vec<usize> = blocks[0].shape()[..loop_nd].to_vec();
        want.extend_from_slice(&out_core);
        if r.ndim() != nout || r.shape() != want.as_slice() {
            return Err(format!(
                "{label}: a block came back with shape {:?}, but the declared output gives {want:?}",
                r.shape()
            )
            .into());
        }
        Ok(block_value(r))
    });
    Ok(BlockArray::wrap(Arc::new(GufuncNode::<T> {
        meta,
        inputs: nodes,
        loop_nd,
        core_nd: cores.iter().map(Vec::len).collect(),
        f: func,
    })))
}
