//! Elementwise kernels run tile by tile, and chains of them fused into one pass per block.
//!
//! # Design notes
//!
//! Every elementwise operation ([`MapNode`]) carries a [`TileOp`]: its element function,
//! monomorphised over the closure, applied to a tile of each input (rows of contiguous
//! elements) into a tile of outputs. A `Program` is a tree of such steps over *leaves* (input
//! blocks), each leaf with an axis map saying which output axis each of its axes runs along (or
//! that it broadcasts). A program computes an output block one tile at a time: a tile of up to
//! `TILE` elements, whole rows when every operand is read along its rows, a `SIDE`-square when
//! some operand must be read across its rows, like `x.T` in `x + x.T`. Kernels take each
//! operand's tile as rows with a stride, so an operand read along its rows is read in place
//! wherever its rows are, and the output is written in place; any other operand (transposed,
//! broadcast along rows, strided) is gathered into a tile buffer, reading along its own
//! contiguous direction. Each step writes its tile buffer, the last one straight into the
//! output block. So `exp(a) * b + 1` reads `a` and `b` once and writes the result once: the
//! intermediates live in tile buffers that stay in L1, not in block-sized temporaries, and a
//! transposed operand is never copied into a block of its own.
//!
//! **Fusion.** At lowering, `fuse_elementwise` rewrites the expression before any task is
//! made: a map whose input is another map or a transpose used by nothing else (one use, not
//! an output, read without broadcasting, so its blocks correspond one to one) absorbs it, and
//! the merged program replaces the consumer under the consumer's name, so keys are unchanged.
//! This is what task fusion would have done with those nodes anyway (their tasks each had one
//! dependent), but composed element by element instead of block by block. A node used twice
//! (`y * b + y`) or through a broadcast stays a block of its own: fusing it would compute it
//! more than once. Results are bitwise those of the unfused operations: each element goes
//! through the same functions in the same order.
//!
//! **Types.** Steps are type-erased (raw pointers plus an `ElemIo` per input and output:
//! the type's id, size and typed copy/allocation functions). A producer is absorbed only when
//! its output type is the one its consumer's step reads, and a leaf's block is fetched with
//! its step's element type, so a pointer is only ever read as the type it was written as.

use crate::Element;
use crate::expr::array::{BlockTask, Meta, Node, block_ref, block_value};
use crate::ops::elementwise::MapNode;
use crate::ops::shape::as_transpose;
use dag_core::{BlockIndex, TaskError, TaskResult, Value};
use ndarray::{ArrayD, IxDyn};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::{SmallVec, smallvec};
use std::any::{Any, TypeId};
use std::sync::Arc;

/// The most elements in one tile: small enough that a program's tile buffers stay in L1/L2,
/// large enough that the one dynamic call per step and tile is noise.
const TILE: usize = 1024;
/// The side of a square tile when an operand is read across its rows: it reads `SIDE`
/// contiguous runs of `SIDE` elements of that operand, touching `SIDE` pages, not a page per
/// element as a row-long tile would.
const SIDE: usize = 32;

fn set(idx: &mut [usize], axis: Option<usize>, v: usize) {
    if let Some(k) = axis {
        idx[k] = v;
    }
}

/// Axis map of a leaf: leaf axis `j` runs along output axis `map[j]`, or broadcasts (`None`).
type AxisMap = SmallVec<[Option<usize>; 4]>;

/// The typed operations a program needs for one element type, behind function pointers.
#[derive(Clone, Copy)]
pub struct ElemIo {
    type_id: TypeId,
    size: usize,
    view: fn(&Value) -> Result<Raw, TaskError>,
    copy2d: unsafe fn(*const u8, [isize; 2], *mut u8, [isize; 2], [usize; 2]),
    alloc: fn(usize) -> *mut u8,
    finish: unsafe fn(*mut u8, usize, &[usize]) -> TaskResult,
    free: unsafe fn(*mut u8, usize),
}

impl ElemIo {
    fn of<T: Element>() -> ElemIo {
        ElemIo {
            type_id: TypeId::of::<T>(),
            size: std::mem::size_of::<T>(),
            view: view::<T>,
            copy2d: copy2d::<T>,
            alloc: alloc::<T>,
            finish: finish::<T>,
            free: free::<T>,
        }
    }
}

/// A block seen as raw memory: its first element, shape and strides (in elements).
struct Raw {
    ptr: *const u8,
    shape: SmallVec<[usize; 4]>,
    strides: SmallVec<[isize; 4]>,
}

fn view<T: Element>(v: &Value) -> Result<Raw, TaskError> {
    let b = block_ref::<T>(v)?;
    Ok(Raw {
        ptr: b.as_ptr().cast(),
        shape: b.shape().into(),
        strides: b.strides().into(),
    })
}

/// Gather a `rows × cols` grid of `T` whose rows are not contiguous (a transposed, broadcast
/// or strided operand): element `(r, c)` from `src + r·ss[0] + c·ss[1]` to
/// `dst + r·ds[0] + c·ds[1]` (strides in elements), reading along the source's shorter stride.
///
/// # Safety
/// Every addressed source element must be an initialised `T` and every destination slot
/// writable, both aligned for `T`, and the two regions must not overlap.
unsafe fn copy2d<T: Copy>(
    src: *const u8,
    ss: [isize; 2],
    dst: *mut u8,
    ds: [isize; 2],
    [rows, cols]: [usize; 2],
) {
    let (src, dst) = (src.cast::<T>(), dst.cast::<T>());
    // SAFETY: the caller's contract, element by element.
    unsafe {
        if ss[1] == 0 {
            for r in 0..rows as isize {
                let v = src.offset(r * ss[0]).read();
                for c in 0..cols as isize {
                    dst.offset(r * ds[0] + c * ds[1]).write(v);
                }
            }
        } else if ss[0] == 1 && ds[1] == 1 {
            // A transpose: eight source runs side by side, each read sequentially, so each
            // destination row gets eight contiguous values at a time.
            for c0 in (0..cols).step_by(8) {
                let cw = (cols - c0).min(8) as isize;
                let (s0, d0) = (src.offset(c0 as isize * ss[1]), dst.add(c0));
                for r in 0..rows as isize {
                    let d = d0.offset(r * ds[0]);
                    for c in 0..cw {
                        d.offset(c).write(s0.offset(c * ss[1] + r).read());
                    }
                }
            }
        } else if ss[0].unsigned_abs() < ss[1].unsigned_abs() {
            for c in 0..cols as isize {
                for r in 0..rows as isize {
                    let v = src.offset(r * ss[0] + c * ss[1]).read();
                    dst.offset(r * ds[0] + c * ds[1]).write(v);
                }
            }
        } else {
            for r in 0..rows as isize {
                for c in 0..cols as isize {
                    let v = src.offset(r * ss[0] + c * ss[1]).read();
                    dst.offset(r * ds[0] + c * ds[1]).write(v);
                }
            }
        }
    }
}

/// Room for `n` values of `T` (uninitialised), to be passed to [`finish`] or [`free`].
fn alloc<T>(n: usize) -> *mut u8 {
    let mut v = std::mem::ManuallyDrop::new(Vec::<T>::with_capacity(n));
    v.as_mut_ptr().cast()
}

/// The block of `shape` in the `n` values at `p` (from [`alloc`], all written).
///
/// # Safety
/// `p` comes from `alloc::<T>(n)` and its `n` values are initialised.
unsafe fn finish<T: Element>(p: *mut u8, n: usize, shape: &[usize]) -> TaskResult {
    // SAFETY: the caller's contract.
    let v = unsafe { Vec::from_raw_parts(p.cast::<T>(), n, n) };
    Ok(block_value(ArrayD::from_shape_vec(IxDyn(shape), v)?))
}

/// # Safety
/// `p` comes from `alloc::<T>(n)` and was not finished.
unsafe fn free<T>(p: *mut u8, n: usize) {
    // SAFETY: the caller's contract; no value is dropped (length 0).
    drop(unsafe { Vec::from_raw_parts(p.cast::<T>(), 0, n) });
}

/// A tile of one operand in memory: its first element and the distance between its rows
/// (in elements); each row is contiguous.
type Rows = (*const u8, isize);

/// An element function over a `rows × cols` tile: the inputs' tiles (each of initialised
/// values of its type) and the output's (room for the values).
type TileFn =
    dyn Fn(&[Rows], (*mut u8, isize), [usize; 2]) -> Result<(), &'static str> + Send + Sync;

/// One elementwise operation in tile form, with the element types it reads and writes.
pub struct TileOp {
    run: Box<TileFn>,
    inputs: SmallVec<[ElemIo; 3]>,
    output: ElemIo,
}

/// Row `r` of a tile of `T` with `cols` columns.
///
/// # Safety
/// The row holds `cols` initialised values of `T`.
unsafe fn row<'a, T>((p, stride): Rows, r: usize, cols: usize) -> &'a [T] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(p.cast::<T>().offset(r as isize * stride), cols) }
}

/// The first slot of row `r` of an output tile of `T`.
fn out_row<T>((p, stride): (*mut u8, isize), r: usize) -> *mut T {
    p.cast::<T>().wrapping_offset(r as isize * stride)
}

/// The tile kernel of `f`, which reads one element of each input and may fail.
macro_rules! tile_kernel {
    ($f:ident, [$($x:ident : $A:ident @ $i:tt),+] -> $T:ident) => {
        Arc::new(TileOp {
            run: Box::new(move |ins, out, [rows, cols]| {
                let mut err = None;
                for r in 0..rows {
                    // SAFETY: a program passes tiles of initialised values of each input's type
                    // (checked when it was built) and room for the output's.
                    let ($($x,)+) = unsafe { ($(row::<$A>(ins[$i], r, cols),)+) };
                    let o = out_row::<$T>(out, r);
                    for (k, $($x),+) in zip_rows!($($x),+) {
                        let v = $f($(*$x),+).unwrap_or_else(|e| {
                            err = Some(e);
                            $T::default()
                        });
                        // SAFETY: the output row has room for `cols` values.
                        unsafe { o.add(k).write(v) };
                    }
                }
                err.map_or(Ok(()), Err)
            }),
            inputs: smallvec![$(ElemIo::of::<$A>()),+],
            output: ElemIo::of::<$T>(),
        })
    };
}

/// `(k, a[k], b[k], …)` over equally long slices.
macro_rules! zip_rows {
    ($a:ident) => {
        $a.iter().enumerate()
    };
    ($a:ident, $b:ident) => {
        $a.iter().zip($b).enumerate().map(|(k, (a, b))| (k, a, b))
    };
    ($a:ident, $b:ident, $c:ident) => {
        $a.iter()
            .zip($b)
            .zip($c)
            .enumerate()
            .map(|(k, ((a, b), c))| (k, a, b, c))
    };
}

/// `f` of each element.
pub(crate) fn unary_kernel<A: Element, T: Element, F>(f: F) -> Arc<TileOp>
where
    F: Fn(A) -> T + Send + Sync + 'static,
{
    let f = move |x: A| Ok::<T, &'static str>(f(x));
    tile_kernel!(f, [a: A @ 0] -> T)
}

/// `f` of each element, failing with `f`'s message (a scalar operand that can fail, like an
/// integer division by a zero scalar).
pub(crate) fn scalar_kernel<T: Element, F>(f: F) -> Arc<TileOp>
where
    F: Fn(T) -> Result<T, &'static str> + Send + Sync + 'static,
{
    tile_kernel!(f, [a: T @ 0] -> T)
}

/// `f` of each pair of elements, failing with `f`'s message.
pub(crate) fn binary_kernel<A: Element, B: Element, T: Element, F>(f: F) -> Arc<TileOp>
where
    F: Fn(A, B) -> Result<T, &'static str> + Send + Sync + 'static,
{
    tile_kernel!(f, [a: A @ 0, b: B @ 1] -> T)
}

/// `f` of each triple of elements.
pub(crate) fn ternary_kernel<A: Element, B: Element, C: Element, T: Element, F>(f: F) -> Arc<TileOp>
where
    F: Fn(A, B, C) -> T + Send + Sync + 'static,
{
    let f = move |x: A, y: B, z: C| Ok::<T, &'static str>(f(x, y, z));
    tile_kernel!(f, [a: A @ 0, b: B @ 1, c: C @ 2] -> T)
}

/// Where a step's input comes from.
#[derive(Clone, Copy)]
enum Arg {
    Leaf(usize),
    Step(usize),
}

struct Step {
    op: Arc<TileOp>,
    args: SmallVec<[Arg; 3]>,
}

struct Leaf {
    io: ElemIo,
    map: AxisMap,
}

/// A tree of elementwise steps over leaf blocks, computed one tile at a time; the last step
/// is the output.
pub(crate) struct Program {
    nd: usize,
    leaves: Vec<Leaf>,
    steps: Vec<Step>,
}

/// A tile-sized scratch buffer, aligned for every element type.
fn scratch(size: usize) -> Vec<u128> {
    vec![0u128; (TILE * size).div_ceil(16)]
}

/// The output block being written; freed unless finished.
struct Out {
    io: ElemIo,
    ptr: *mut u8,
    n: usize,
}

impl Out {
    fn finish(self, shape: &[usize]) -> TaskResult {
        let (io, ptr, n) = (self.io, self.ptr, self.n);
        std::mem::forget(self);
        // SAFETY: `ptr` is `io.alloc(n)` and the tiles wrote all `n` values.
        unsafe { (io.finish)(ptr, n, shape) }
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // SAFETY: allocated by `io.alloc(n)` and not finished.
        unsafe { (self.io.free)(self.ptr, self.n) }
    }
}

/// How one tile is laid out: its slow axis (if any) and fast axis (the last, if any).
struct Grid {
    a: Option<usize>,
    l: Option<usize>,
}

impl Grid {
    fn strides(&self, s: &[isize]) -> [isize; 2] {
        [self.a.map_or(0, |a| s[a]), self.l.map_or(0, |l| s[l])]
    }
}

impl Program {
    /// One step over input blocks broadcast as a map node reads them: input `i` lacks
    /// `broadcast[i].0` leading axes and broadcasts along the flagged ones.
    pub(crate) fn single(nd: usize, op: &Arc<TileOp>, broadcast: &[(usize, Vec<bool>)]) -> Self {
        let leaves = broadcast
            .iter()
            .zip(&op.inputs)
            .map(|((off, flags), &io)| Leaf {
                io,
                map: input_map(*off, flags, &|k| Some(k)),
            })
            .collect::<Vec<_>>();
        Program {
            nd,
            steps: vec![Step {
                op: op.clone(),
                args: (0..leaves.len()).map(Arg::Leaf).collect(),
            }],
            leaves,
        }
    }

    /// The task computing output block `index`: leaf `i` is the block its axis map picks
    /// (block 0 along the axes it broadcasts).
    pub(crate) fn task(self: &Arc<Self>, index: &[usize]) -> BlockTask {
        let deps = self
            .leaves
            .iter()
            .enumerate()
            .map(|(i, leaf)| {
                let b: BlockIndex = leaf.map.iter().map(|k| k.map_or(0, |k| index[k])).collect();
                (i, b)
            })
            .collect();
        let program = self.clone();
        BlockTask {
            deps,
            func: Arc::new(move |v: &[Value]| program.run(v)),
        }
    }

    /// The output block from the leaves' blocks (in leaf order).
    pub(crate) fn run(&self, values: &[Value]) -> TaskResult {
        let nd = self.nd;
        let raws = self
            .leaves
            .iter()
            .zip(values)
            .map(|(l, v)| (l.io.view)(v))
            .collect::<Result<SmallVec<[Raw; 4]>, TaskError>>()?;
        // The output shape, and each leaf's strides along the output axes (0 where it
        // broadcasts).
        let mut shape: SmallVec<[usize; 4]> = smallvec![1; nd];
        let mut strides: SmallVec<[SmallVec<[isize; 4]>; 4]> = SmallVec::new();
        for (leaf, raw) in self.leaves.iter().zip(&raws) {
            if raw.shape.len() != leaf.map.len() {
                return Err(format!(
                    "an elementwise operand block has {} axes where {} were expected",
                    raw.shape.len(),
                    leaf.map.len()
                )
                .into());
            }
            let mut s: SmallVec<[isize; 4]> = smallvec![0; nd];
            for (j, k) in leaf.map.iter().enumerate() {
                if let Some(k) = *k
                    && raw.shape[j] != 1
                {
                    if shape[k] != 1 && shape[k] != raw.shape[j] {
                        return Err("block shapes do not broadcast".into());
                    }
                    shape[k] = raw.shape[j];
                    s[k] = raw.strides[j];
                }
            }
            strides.push(s);
        }
        let n: usize = shape.iter().product();
        let io = self.steps.last().expect("a program has a step").op.output;
        let out = Out {
            io,
            ptr: (io.alloc)(n),
            n,
        };
        if n > 0 {
            self.fill(&raws, &strides, &shape, out.ptr)?;
        }
        out.finish(&shape)
    }

    /// Compute every tile of the output (`shape`, C order, at `out`).
    fn fill(
        &self,
        raws: &[Raw],
        strides: &[SmallVec<[isize; 4]>],
        shape: &[usize],
        out: *mut u8,
    ) -> Result<(), TaskError> {
        let nd = shape.len();
        let l = nd.checked_sub(1);
        // An operand read across its rows (neither along them nor broadcast): square tiles,
        // their other axis the one that operand is contiguous along.
        let crossed = l.and_then(|l| {
            strides
                .iter()
                .find(|s| s[l] != 0 && s[l] != 1 && shape[l] > 1)
        });
        let a = match (l, crossed) {
            (Some(l), Some(s)) => (0..l)
                .filter(|&k| shape[k] > 1 && s[k] != 0)
                .min_by_key(|&k| s[k].unsigned_abs())
                .or(l.checked_sub(1)),
            (Some(l), None) => l.checked_sub(1),
            (None, _) => None,
        };
        let grid = Grid { a, l };
        let len_l = l.map_or(1, |l| shape[l]);
        let len_a = a.map_or(1, |a| shape[a]);
        let w = len_l.min(if crossed.is_some() { SIDE } else { TILE });
        let h = len_a.min((TILE / w).max(1));
        let mut cs: SmallVec<[isize; 4]> = smallvec![0; nd];
        let mut acc = 1isize;
        for k in (0..nd).rev() {
            cs[k] = acc;
            acc *= shape[k] as isize;
        }
        let outer: SmallVec<[usize; 4]> =
            (0..nd).filter(|&k| Some(k) != a && Some(k) != l).collect();
        let mut ctx = Ctx {
            raws,
            strides,
            grid,
            cs: &cs,
            out,
            leaf_bufs: (0..self.leaves.len()).map(|_| None).collect(),
            step_bufs: (0..self.steps.len()).map(|_| None).collect(),
        };
        let mut idx: SmallVec<[usize; 4]> = smallvec![0; nd];
        loop {
            for a0 in (0..len_a).step_by(h) {
                for l0 in (0..len_l).step_by(w) {
                    set(&mut idx, a, a0);
                    set(&mut idx, l, l0);
                    self.tile(&mut ctx, &idx, [h.min(len_a - a0), w.min(len_l - l0)])?;
                }
            }
            // The next index of the other axes, C order.
            let mut i = outer.len();
            loop {
                if i == 0 {
                    return Ok(());
                }
                i -= 1;
                let k = outer[i];
                idx[k] += 1;
                if idx[k] < shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
    }

    /// Compute the `rows × cols` tile whose first element is at `idx`: operands read along
    /// their rows are read in place, the others gathered into a tile buffer; the last step
    /// writes into the output block.
    fn tile(
        &self,
        ctx: &mut Ctx<'_>,
        idx: &[usize],
        [rows, cols]: [usize; 2],
    ) -> Result<(), TaskError> {
        let mut ins: SmallVec<[Rows; 4]> = SmallVec::with_capacity(self.leaves.len());
        for (i, leaf) in self.leaves.iter().enumerate() {
            let s = &ctx.strides[i];
            let off: isize = idx.iter().zip(s).map(|(&x, &s)| x as isize * s).sum();
            // SAFETY: `idx` is inside the output and the leaf's strides address its block.
            let src = unsafe { ctx.raws[i].ptr.offset(off * leaf.io.size as isize) };
            let [sa, sl] = ctx.grid.strides(s);
            if sl == 1 || cols == 1 {
                ins.push((src, sa));
            } else {
                let buf = ctx.leaf_bufs[i].get_or_insert_with(|| scratch(leaf.io.size));
                let dst = buf.as_mut_ptr().cast::<u8>();
                // SAFETY: the tile's elements lie in the leaf's block; the buffer holds
                // `TILE ≥ rows · cols` values.
                unsafe { (leaf.io.copy2d)(src, [sa, sl], dst, [cols as isize, 1], [rows, cols]) };
                ins.push((dst, cols as isize));
            }
        }
        let [ca, _] = ctx.grid.strides(ctx.cs);
        let out_off: isize = idx.iter().zip(ctx.cs).map(|(&x, &s)| x as isize * s).sum();
        // A tile whose rows all follow each other everywhere is one long row.
        let packed = rows > 1 && ca == cols as isize && ins.iter().all(|r| r.1 == cols as isize);
        let shape = if packed {
            [1, rows * cols]
        } else {
            [rows, cols]
        };
        let last = self.steps.len() - 1;
        let mut args: SmallVec<[Rows; 3]> = SmallVec::new();
        for (j, step) in self.steps.iter().enumerate() {
            args.clear();
            for arg in &step.args {
                args.push(match *arg {
                    Arg::Leaf(i) => ins[i],
                    Arg::Step(k) => (
                        ctx.step_bufs[k]
                            .as_ref()
                            .expect("steps run after the steps they read")
                            .as_ptr()
                            .cast(),
                        cols as isize,
                    ),
                });
            }
            let size = step.op.output.size as isize;
            let dst = if j == last {
                // SAFETY: the tile's elements lie in the output block.
                (unsafe { ctx.out.offset(out_off * size) }, ca)
            } else {
                let buf = ctx.step_bufs[j].get_or_insert_with(|| scratch(size as usize));
                (buf.as_mut_ptr().cast(), cols as isize)
            };
            (step.op.run)(&args, dst, shape).map_err(TaskError::from)?;
        }
        Ok(())
    }
}

/// What [`Program::tile`] reads and reuses from tile to tile.
struct Ctx<'a> {
    raws: &'a [Raw],
    strides: &'a [SmallVec<[isize; 4]>],
    grid: Grid,
    cs: &'a [isize],
    out: *mut u8,
    leaf_bufs: SmallVec<[Option<Vec<u128>>; 4]>,
    step_bufs: SmallVec<[Option<Vec<u128>>; 4]>,
}

/// `block` with its axes permuted (output axis `k` is the block's axis `perm[k]`), in standard
/// layout: a one-step program (the identity) whose leaf is the block read through the
/// permutation, so a transposed block is copied tile by tile, each tile's source read along its
/// rows, instead of element by element across pages.
pub(crate) fn permuted<T: Element>(block: &Value, perm: &[usize]) -> TaskResult {
    let mut map: AxisMap = smallvec![None; perm.len()];
    for (k, &p) in perm.iter().enumerate() {
        if p >= perm.len() || map[p].is_some() {
            return Err(
                format!("axes {perm:?} are not a permutation of {} axes", perm.len()).into(),
            );
        }
        map[p] = Some(k);
    }
    let op = unary_kernel(|x: T| x);
    Program {
        nd: perm.len(),
        leaves: vec![Leaf {
            io: op.inputs[0],
            map,
        }],
        steps: vec![Step {
            op,
            args: smallvec![Arg::Leaf(0)],
        }],
    }
    .run(std::slice::from_ref(block))
}

/// The axis map of a map node's input that lacks `off` leading axes and broadcasts along the
/// flagged ones, the node's own output axis `k` running along `outer(k)`.
fn input_map(off: usize, flags: &[bool], outer: &dyn Fn(usize) -> Option<usize>) -> AxisMap {
    flags
        .iter()
        .enumerate()
        .map(|(j, &bc)| if bc { None } else { outer(off + j) })
        .collect()
}

/// A chain of elementwise maps (and transposes) computed as one program per block; it
/// stands in, at lowering, for the map at its top and has that map's name.
struct FusedNode {
    meta: Meta,
    label: String,
    /// The program's leaves' nodes, in its leaf order.
    leaves: Vec<Arc<dyn Node>>,
    program: Arc<Program>,
}

impl Node for FusedNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        self.leaves.clone()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        self.program.task(index)
    }
    fn label(&self) -> &str {
        &self.label
    }
}

fn as_map(node: &Arc<dyn Node>) -> Option<&MapNode> {
    (&**node as &dyn Any).downcast_ref::<MapNode>()
}

/// Builds one fused program, absorbing producers used only by it.
struct Builder<'a> {
    uses: &'a FxHashMap<Arc<str>, usize>,
    absorbed: Vec<Arc<str>>,
    /// The leaves' nodes, and the leaves (as the program reads them), in one order.
    leaf_nodes: Vec<Arc<dyn Node>>,
    leaves: Vec<Leaf>,
    steps: Vec<Step>,
    labels: Vec<String>,
}

impl Builder<'_> {
    /// The step computing map `m` whose output axis `k` runs along output axis `outer(k)`.
    fn map(&mut self, m: &MapNode, outer: &dyn Fn(usize) -> Option<usize>) -> Arg {
        let mut args = SmallVec::new();
        for ((input, (off, flags)), &io) in m.inputs.iter().zip(&m.broadcast).zip(&m.op.inputs) {
            let map = input_map(*off, flags, outer);
            let one_to_one = *off == 0 && !flags.contains(&true);
            args.push(self.operand(input, map, one_to_one, io));
        }
        self.steps.push(Step {
            op: m.op.clone(),
            args,
        });
        self.labels.push(m.meta().op().to_string());
        Arg::Step(self.steps.len() - 1)
    }

    /// `node` read through `map` as an operand of element type `io`: absorbed when it is a
    /// map or transpose used only here and its blocks correspond one to one with the
    /// consumer's (`one_to_one`), a leaf otherwise.
    fn operand(&mut self, node: &Arc<dyn Node>, map: AxisMap, one_to_one: bool, io: ElemIo) -> Arg {
        let name = &node.meta().name;
        if one_to_one && self.uses.get(name) == Some(&1) {
            if let Some(m) = as_map(node)
                && m.op.output.type_id == io.type_id
            {
                self.absorbed.push(name.clone());
                return self.map(m, &|k| map[k]);
            }
            if let Some((input, perm)) = as_transpose(node) {
                // Output axis `k` of the transpose is its input's axis `perm[k]`.
                let mut inner: AxisMap = smallvec![None; perm.len()];
                for (k, &p) in perm.iter().enumerate() {
                    inner[p] = map[k];
                }
                self.absorbed.push(name.clone());
                self.labels.push("transpose".to_string());
                return self.operand(input, inner, true, io);
            }
        }
        let same = |(n, l): (&Arc<dyn Node>, &Leaf)| n.meta().name == *name && l.map == map;
        if let Some(i) = self.leaf_nodes.iter().zip(&self.leaves).position(same) {
            return Arg::Leaf(i);
        }
        self.leaf_nodes.push(node.clone());
        self.leaves.push(Leaf { io, map });
        Arg::Leaf(self.leaves.len() - 1)
    }
}

/// Fuse elementwise chains in `order` (every node of an expression, inputs first; `roots` are
/// the requested arrays): each map that absorbs producers (see the module notes) is replaced
/// by a [`FusedNode`] of the same name. Absorbed nodes stay in `order` but nothing requests
/// their blocks any more.
pub(crate) fn fuse_elementwise(order: &mut [Arc<dyn Node>], roots: &[Arc<dyn Node>]) {
    let uses = crate::expr::lower::use_counts(order, roots);
    let mut absorbed: FxHashSet<Arc<str>> = FxHashSet::default();
    // Consumers first: a node is absorbed, if at all, by the group of its one consumer.
    for pos in (0..order.len()).rev() {
        let node = &order[pos];
        if absorbed.contains(&node.meta().name) {
            continue;
        }
        let Some(m) = as_map(node) else {
            continue;
        };
        let mut b = Builder {
            uses: &uses,
            absorbed: Vec::new(),
            leaf_nodes: Vec::new(),
            leaves: Vec::new(),
            steps: Vec::new(),
            labels: Vec::new(),
        };
        b.map(m, &|k| Some(k));
        if b.absorbed.is_empty() {
            continue;
        }
        let program = Program {
            nd: m.meta().chunks.ndim(),
            leaves: b.leaves,
            steps: b.steps,
        };
        let label = b.labels.join("+");
        absorbed.extend(b.absorbed);
        order[pos] = Arc::new(FusedNode {
            meta: m.meta().clone(),
            label,
            leaves: b.leaf_nodes,
            program: Arc::new(program),
        });
    }
}
