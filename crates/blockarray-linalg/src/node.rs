//! The expression nodes of this crate: one generic [`Node`] whose blocks are planned by a
//! function, with an explicit token.
//!
//! # Design notes
//!
//! Every step of a blocked algorithm (a panel factorisation, a trailing update, a level of a
//! TSQR tree) is an [`OpNode`]: its inputs, its block grid, and a function from a block index
//! to the [`BlockTask`] computing it. The node's name is `op-token` where the token hashes the
//! input names and every parameter the step depends on (passed explicitly to [`op`]: the
//! step number, the triangle, the seed…), never the planning closure: equal keys mean equal
//! work.
//!
//! Steps that produce more than an array block (a Householder factorisation, a tile pair)
//! are *hidden* nodes: their task values are this crate's own types ([`House`],
//! `Vec<ColMat>`), they are never wrapped in a `BlockArray`, and only nodes of this crate
//! read them (through [`mat`] and [`house`]). What users see are extractor nodes producing
//! ordinary ndarray blocks.

use crate::kernels::{ColMat, House, MatView, view};
use crate::scalar::Scalar;
use blockarray::{BlockTask, Chunks, Element, Meta, Node, Result};
use dag_core::{BlockIndex, TaskError, Tokenize, Tokenizer, Value};
use ndarray::ArrayD;
use std::sync::Arc;

/// Plans the task of one block.
type Plan = Box<dyn Fn(&[usize]) -> BlockTask + Send + Sync>;

/// A node of a blocked algorithm (see the module notes).
pub(crate) struct OpNode {
    meta: Meta,
    inputs: Vec<Arc<dyn Node>>,
    blockwise: bool,
    plan: Plan,
}

impl Node for OpNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.inputs.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        (self.plan)(index)
    }
    fn blockwise(&self) -> bool {
        self.blockwise
    }
}

/// A node named `op-token` computing `T` blocks over `chunks`, whose token hashes the names of
/// `inputs` and `params` (which must include every parameter `plan` depends on). `blockwise`
/// says each block reads at most one block of each input (so lowering may fuse it).
pub(crate) fn op<T: Element, P: Tokenize + ?Sized>(
    op: &str,
    params: &P,
    inputs: Vec<Arc<dyn Node>>,
    chunks: Chunks,
    blockwise: bool,
    plan: impl Fn(&[usize]) -> BlockTask + Send + Sync + 'static,
) -> Arc<dyn Node> {
    // Values of this crate may have to cross processes (sched-mpi).
    crate::wire::register();
    let mut t = Tokenizer::new();
    t.write_str("blockarray-linalg");
    for n in &inputs {
        t.write_str(&n.meta().name);
    }
    params.tokenize(&mut t);
    Arc::new(OpNode {
        meta: Meta::new::<T>(op, t, chunks),
        inputs,
        blockwise,
        plan: Box::new(plan),
    })
}

/// Refuses a blocked algorithm over `p` blocks along a side that lowers to about `tasks`
/// tasks (a count growing as p³ for factorisations), when that passes
/// [`blockarray::MAX_BUILD_TASKS`]: the nodes' bookkeeping grows as fast, and exhausted memory
/// while the expression was being built, before any task limit was checked.
pub(crate) fn check_tasks(op: &str, p: usize, tasks: usize) -> Result<()> {
    blockarray::check_build_tasks(
        op,
        tasks,
        || format!("{p} blocks along a side lower to about {tasks} tasks"),
        "rechunk the matrix into larger blocks",
    )
}

/// `p (p + 1) (p + 2) / 6`, saturating: the tasks of a factorisation's trailing updates
/// over `p` blocks along a side (about p³/6).
pub(crate) fn tetrahedral(p: usize) -> usize {
    let (a, b, c) = (p as u128, p as u128 + 1, p as u128 + 2);
    usize::try_from(a * b * c / 6).unwrap_or(usize::MAX)
}

/// One-axis chunks of `n` unit blocks: the grid of a hidden node with `n` tasks.
pub(crate) fn grid(n: usize) -> Chunks {
    Chunks::from_blocks(vec![vec![1; n.max(1)]]).expect("unit blocks are valid chunks")
}

/// A block index from a slice.
pub(crate) fn bi(index: &[usize]) -> BlockIndex {
    BlockIndex::from_slice(index)
}

/// A task.
pub(crate) fn task(
    deps: Vec<(usize, BlockIndex)>,
    f: impl Fn(&[Value]) -> std::result::Result<Value, TaskError> + Send + Sync + 'static,
) -> BlockTask {
    BlockTask {
        deps,
        func: Arc::new(f),
    }
}

/// A matrix as a task value.
pub(crate) fn mat_value<T: Scalar>(m: ColMat<T>) -> Value {
    let n = m.nbytes();
    Value::with_nbytes(m, n)
}

/// Several matrices as one task value.
pub(crate) fn mats_value<T: Scalar>(ms: Vec<ColMat<T>>) -> Value {
    let n = ms.iter().map(ColMat::nbytes).sum();
    Value::with_nbytes(ms, n)
}

/// A Householder factorisation as a task value.
pub(crate) fn house_value<T: Scalar>(h: House<T>) -> Value {
    let n = h.nbytes();
    Value::with_nbytes(h, n)
}

/// A matrix as an ndarray block in C order (a copy: see [`c_block`](crate::kernels::c_block)).
pub(crate) fn block_value<T: Scalar>(m: ColMat<T>) -> Value {
    blockarray::block_value(crate::kernels::c_block(m.as_ref()))
}

/// An ndarray block as a task value.
pub(crate) fn array_value<T: Scalar>(a: ArrayD<T>) -> Value {
    blockarray::block_value(a)
}

/// Part `part` of a task value holding matrices: an ndarray block (part 0), a [`ColMat`]
/// (part 0), or a `Vec<ColMat>`.
pub(crate) fn mat<T: Scalar>(
    v: &Value,
    part: usize,
) -> std::result::Result<MatView<'_, T>, TaskError> {
    if let Some(b) = v.downcast_ref::<ArrayD<T>>() {
        return view(b);
    }
    if let Some(m) = v.downcast_ref::<ColMat<T>>() {
        return Ok(MatView::Borrowed(m.as_ref()));
    }
    if let Some(ms) = v.downcast_ref::<Vec<ColMat<T>>>() {
        return ms
            .get(part)
            .map(|m| MatView::Borrowed(m.as_ref()))
            .ok_or_else(|| {
                format!(
                    "internal: no part {part} in a value of {} matrices",
                    ms.len()
                )
                .into()
            });
    }
    Err(format!("internal: expected matrices, found {}", v.type_name()).into())
}

/// Part `part` of a task value (see [`mat`]) copied into a column-major matrix (a fast strip
/// transpose for row-major ndarray blocks).
pub(crate) fn colmat<T: Scalar>(
    v: &Value,
    part: usize,
) -> std::result::Result<ColMat<T>, TaskError> {
    match v.downcast_ref::<ArrayD<T>>() {
        Some(block) => ColMat::from_block(block),
        None => Ok(ColMat::copy_of(mat::<T>(v, part)?.rf())),
    }
}

/// The Householder factorisation in a task value.
pub(crate) fn house<T: Scalar>(v: &Value) -> std::result::Result<&House<T>, TaskError> {
    Ok(v.get::<House<T>>()?)
}

/// The array over `node` (which computes `T` blocks).
pub(crate) fn array<T: Element>(node: Arc<dyn Node>) -> Result<blockarray::BlockArray<T>> {
    blockarray::BlockArray::from_node(node)
}

/// The complex conjugate of every element (the array itself for real types).
pub(crate) fn conj<T: Scalar>(x: &blockarray::BlockArray<T>) -> blockarray::BlockArray<T> {
    if !T::COMPLEX {
        return x.clone();
    }
    let node = op::<T, _>(
        "conj",
        &[0usize; 0],
        vec![x.node().clone()],
        x.chunks().clone(),
        true,
        |index| {
            task(vec![(0, bi(index))], |v| {
                let b = blockarray::block_ref::<T>(&v[0])?;
                Ok(blockarray::block_value(b.mapv(Scalar::conjugate)))
            })
        },
    );
    array(node).expect("conj keeps the element type")
}

/// The conjugate transpose of a matrix (a transpose, which contractions look through, of the
/// conjugate).
pub(crate) fn adjoint<T: Scalar>(x: &blockarray::BlockArray<T>) -> blockarray::BlockArray<T> {
    conj(x).t()
}

/// The largest matrix one task assembles whole (the R of a general SVD, eigh's matrix): 1 GiB.
pub(crate) const MAX_GATHER_BYTES: usize = 1 << 30;

/// A hidden one-task node holding the whole matrix `x` as a [`ColMat`] (its block `[0]`).
/// Fails at build time when the matrix would exceed [`MAX_GATHER_BYTES`]; `what` names the
/// operation in that message.
pub(crate) fn gather<T: Scalar>(
    x: &blockarray::BlockArray<T>,
    what: &str,
) -> Result<Arc<dyn Node>> {
    let (m, n) = (x.shape()[0], x.shape()[1]);
    let bytes = m.saturating_mul(n).saturating_mul(T::itemsize());
    if bytes > MAX_GATHER_BYTES {
        return Err(blockarray::Error::unsupported(format!(
            "{what} holds a {m} × {n} matrix ({:.1} MB) in one task, more than the {} MiB limit",
            bytes as f64 / 1e6,
            MAX_GATHER_BYTES >> 20
        )));
    }
    let chunks = x.chunks().clone();
    Ok(op::<T, _>(
        "gather",
        &[0usize; 0],
        vec![x.node().clone()],
        grid(1),
        false,
        move |_| {
            let nb = chunks.numblocks();
            let mut deps = Vec::new();
            let mut places = Vec::new();
            for i in 0..nb[0] {
                for j in 0..nb[1] {
                    deps.push((0, bi(&[i, j])));
                    let s = chunks.block_start(&[i, j]);
                    places.push((s[0], s[1]));
                }
            }
            task(deps, move |v| {
                let mut out = ColMat::<T>::zeros(m, n);
                for (x, &(r, c)) in v.iter().zip(&places) {
                    let b = mat::<T>(x, 0)?;
                    let b = b.rf();
                    out.as_mut()
                        .submatrix_mut(r, c, b.nrows(), b.ncols())
                        .copy_from(b);
                }
                Ok(mat_value(out))
            })
        },
    ))
}
