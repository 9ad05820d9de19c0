//! Lowering expressions to task graphs, and running them: `compute`, `store`, `persist`, and
//! [`Computation`] for several arrays and sinks in one run.
//!
//! # Design notes
//!
//! Lowering starts from the requested output blocks and walks down: nodes are visited consumers
//! first (reverse post-order of the expression DAG), each turns its requested blocks into tasks
//! and requests the input blocks those tasks read. So `exp(ones((10000, 10000)))[1..100, 1..100]`
//! lowers one block of `ones`, whatever the array's size, and graph building costs time
//! proportional to the blocks touched.
//!
//! Tasks go into a numbered arena first (block index, dependencies by number, function), not
//! into a graph. Then blockwise fusion (`dag_core::fuse`): a task of a blockwise node (see
//! [`Node::blockwise`]) whose only consumer is also blockwise is inlined into it, so a chain of
//! elementwise operations, slices and transposes ending in a store or a reduction's first step
//! runs as one task per block, and intermediate blocks never reach the scheduler. Only the
//! tasks that remain get keys and graph entries: a million-block chain of three operations
//! builds one graph of a million tasks, not one of four million and then a second.

use crate::expr::array::{BlockTask, Meta, Node, block_ref};
use crate::{BlockArray, Element, Error, Result};
use dag_core::fuse::FusionSource;
use dag_core::{
    BlockIndex, Body, Callbacks, Graph, Key, NoCallbacks, RunStats, Scheduler, Task, TaskFn,
    Tokenizer, Value,
};
use ndarray::{ArrayD, Dimension, IxDyn, SliceInfoElem};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Every node reachable from `roots`, inputs before the nodes that read them, each once (by
/// name: equal names are equal computations).
pub(crate) fn nodes_of(roots: &[Arc<dyn Node>]) -> Vec<Arc<dyn Node>> {
    let mut seen: FxHashSet<Arc<str>> = FxHashSet::default();
    let mut order = Vec::new();
    let mut stack: Vec<(Arc<dyn Node>, bool)> =
        roots.iter().rev().map(|n| (n.clone(), false)).collect();
    while let Some((n, expanded)) = stack.pop() {
        if expanded {
            order.push(n);
            continue;
        }
        if !seen.insert(n.meta().name.clone()) {
            continue;
        }
        let inputs = n.inputs();
        stack.push((n, true));
        for i in inputs.into_iter().rev() {
            if !seen.contains(&i.meta().name) {
                stack.push((i, false));
            }
        }
    }
    order
}

/// The task graph computing `blocks` of each node (fused when `fuse`), and the output keys in
/// request order.
///
/// Tasks are first laid out in an arena, numbered, with dependencies by number, and become
/// graph tasks only at the end: with fusion, the tasks of blockwise producers that have one
/// consumer task never get a key, a graph entry or a graph of their own
/// (`dag_core::fuse::fuse_into` builds the fused tasks straight from the arena).
pub(crate) fn lower(
    requests: &[(Arc<dyn Node>, Vec<BlockIndex>)],
    fuse: bool,
) -> Result<(Graph, Vec<Key>)> {
    let roots: Vec<Arc<dyn Node>> = requests.iter().map(|(n, _)| n.clone()).collect();
    let order = nodes_of(&roots);
    let number: FxHashMap<Arc<str>, u32> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.meta().name.clone(), i as u32))
        .collect();
    let mut arena = Arena {
        nodes: &order,
        slots: Vec::new(),
        ids: vec![FxHashMap::default(); order.len()],
        todo: vec![Vec::new(); order.len()],
    };
    let mut outputs = Vec::new();
    for (n, blocks) in requests {
        let node = number[&n.meta().name];
        for b in blocks {
            outputs.push(arena.intern(node, b));
        }
    }
    // Consumers first: every request for a node's blocks is known before it is lowered.
    for (node, n) in order.iter().enumerate().rev() {
        let wanted = std::mem::take(&mut arena.todo[node]);
        // Its consumers are all lowered: no more requests for this node's blocks.
        arena.ids[node] = FxHashMap::default();
        if wanted.is_empty() {
            continue;
        }
        let inputs: Vec<u32> = n.inputs().iter().map(|i| number[&i.meta().name]).collect();
        for id in wanted {
            let BlockTask { deps, func } = n.block(&arena.slots[id as usize].index);
            let deps: SmallVec<[u32; 4]> = deps
                .iter()
                .map(|(i, bi)| arena.intern(inputs[*i], bi))
                .collect();
            let slot = &mut arena.slots[id as usize];
            slot.deps = deps;
            slot.func = Some(func);
        }
    }
    let mut absorbed = vec![false; arena.slots.len()];
    if fuse {
        // A blockwise task whose only dependent is blockwise runs inside it (blockwise fusion),
        // unless it is an output.
        let blockwise: Vec<bool> = order.iter().map(|n| n.blockwise()).collect();
        let is_blockwise = |id: u32| blockwise[arena.slots[id as usize].node as usize];
        let mut is_output = vec![false; arena.slots.len()];
        for &o in &outputs {
            is_output[o as usize] = true;
        }
        for (id, only) in dag_core::fuse::single_dependents(&arena)
            .into_iter()
            .enumerate()
        {
            absorbed[id] =
                only.is_some_and(|c| !is_output[id] && is_blockwise(id as u32) && is_blockwise(c));
        }
    }
    let mut graph = Graph::with_capacity(arena.slots.len());
    dag_core::fuse::fuse_into(&arena, &absorbed, &mut graph);
    let outputs = outputs.iter().map(|&o| arena.key(o as usize)).collect();
    Ok((graph, outputs))
}

/// One task of [`lower`]'s arena: a block of a node, its dependencies by number, and its
/// function (set when its node is lowered).
struct Slot {
    node: u32,
    index: BlockIndex,
    deps: SmallVec<[u32; 4]>,
    func: Option<TaskFn>,
}

/// The tasks of one lowering, numbered in the order they were first requested.
struct Arena<'a> {
    nodes: &'a [Arc<dyn Node>],
    slots: Vec<Slot>,
    /// Per node, the number of each requested block.
    ids: Vec<FxHashMap<BlockIndex, u32>>,
    /// Per node, the requested blocks not lowered yet.
    todo: Vec<Vec<u32>>,
}

impl Arena<'_> {
    /// The number of block `index` of node `node`, requesting it if new.
    fn intern(&mut self, node: u32, index: &BlockIndex) -> u32 {
        if let Some(&id) = self.ids[node as usize].get(index) {
            return id;
        }
        let id = self.slots.len() as u32;
        self.slots.push(Slot {
            node,
            index: index.clone(),
            deps: SmallVec::new(),
            func: None,
        });
        self.ids[node as usize].insert(index.clone(), id);
        self.todo[node as usize].push(id);
        id
    }

    fn func(&self, p: usize) -> TaskFn {
        self.slots[p]
            .func
            .clone()
            .expect("every requested block is lowered before the graph is built")
    }
}

impl FusionSource for Arena<'_> {
    fn len(&self) -> usize {
        self.slots.len()
    }
    fn deps(&self, p: usize) -> &[u32] {
        &self.slots[p].deps
    }
    fn key(&self, p: usize) -> Key {
        let s = &self.slots[p];
        Key::with_shared_name(&self.nodes[s.node as usize].meta().name, &s.index)
    }
    fn body(&self, p: usize) -> Body {
        Body::Func(self.func(p))
    }
    fn task(&self, p: usize) -> Task {
        let deps = self.slots[p]
            .deps
            .iter()
            .map(|&d| self.key(d as usize))
            .collect();
        Task::from_fn(deps, self.func(p))
    }
    fn name(&self, p: usize) -> &str {
        self.nodes[self.slots[p].node as usize].meta().op()
    }
}

fn all_blocks(node: &Arc<dyn Node>) -> Vec<BlockIndex> {
    node.meta()
        .chunks
        .block_indices()
        .map(|b| BlockIndex::from_slice(&b))
        .collect()
}

static DEFAULT_SCHEDULER: OnceLock<RwLock<Arc<dyn Scheduler>>> = OnceLock::new();

fn default_cell() -> &'static RwLock<Arc<dyn Scheduler>> {
    DEFAULT_SCHEDULER
        .get_or_init(|| RwLock::new(Arc::new(sched_threaded::ThreadedScheduler::new())))
}

/// The scheduler `compute`, `store` and `persist` use: a work-stealing pool over all cores
/// unless [`set_default_scheduler`] chose another.
pub fn default_scheduler() -> Arc<dyn Scheduler> {
    default_cell()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Make `scheduler` the one `compute`, `store` and `persist` use (like dask's
/// `dask.config.set(scheduler=...)`), process-wide.
pub fn set_default_scheduler(scheduler: Arc<dyn Scheduler>) {
    *default_cell().write().unwrap_or_else(|e| e.into_inner()) = scheduler;
}

/// Where `store` writes blocks: an in-memory array, a file dataset, ….
///
/// Blocks arrive concurrently from worker threads, each exactly once, in no particular order;
/// `offset` is the position of the block's first element. After the run, every sink of it is
/// either committed (all blocks were written) or aborted (something failed), once.
pub trait ChunkSink<T: Element>: Send + Sync {
    /// The shape of the destination.
    fn shape(&self) -> Vec<usize>;
    /// Write `block` at `offset`.
    fn write_block(&self, offset: &[usize], block: &ArrayD<T>) -> Result<()>;
    /// What the sink writes to, for error messages (`"dataset /x in out.h5"`). The default
    /// names only the shape.
    fn describe(&self) -> String {
        format!("a sink of shape {}", crate::error::fmt_shape(&self.shape()))
    }
    /// Called once after a run in which every block was written successfully
    /// ([`Computation::run`], [`BlockArray::store`]): make the data durable and visible
    /// (rename a temporary, flush). An error here fails the run. The default does nothing.
    fn commit(&self) -> Result<()> {
        Ok(())
    }
    /// Called once, instead of [`commit`](Self::commit), when the run failed or another sink of
    /// the same run failed to commit first: undo what can be undone (delete a temporary). The
    /// default does nothing.
    fn abort(&self) {}
}

/// The commit step of a run's sinks, whatever their element types.
trait Finish: Send + Sync {
    fn commit(&self) -> Result<()>;
    fn abort(&self);
}

impl<T: Element> Finish for Arc<dyn ChunkSink<T>> {
    fn commit(&self) -> Result<()> {
        (**self).commit()
    }
    fn abort(&self) {
        (**self).abort()
    }
}

/// A [`ChunkSink`] that fills an in-memory array.
pub struct ArraySink<T> {
    shape: Vec<usize>,
    array: Mutex<Option<ArrayD<T>>>,
}

impl<T: Element> ArraySink<T> {
    /// A sink filling `array` (its shape must match what is stored into it).
    pub fn new(array: ArrayD<T>) -> ArraySink<T> {
        ArraySink {
            shape: array.shape().to_vec(),
            array: Mutex::new(Some(array)),
        }
    }

    /// The array, with every block written so far.
    pub fn into_inner(self) -> ArrayD<T> {
        self.take().expect("an owned sink still holds its array")
    }

    /// Take the array out (later writes fail). `None` if it was already taken.
    pub fn take(&self) -> Option<ArrayD<T>> {
        self.array.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<T: Element> ChunkSink<T> for ArraySink<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn write_block(&self, offset: &[usize], block: &ArrayD<T>) -> Result<()> {
        let mut guard = self.array.lock().unwrap_or_else(|e| e.into_inner());
        let Some(a) = guard.as_mut() else {
            return Err(Error::io("this in-memory sink's array was already taken"));
        };
        if offset.len() != a.ndim() || block.ndim() != a.ndim() {
            return Err(Error::shape(format!(
                "block of shape {:?} at {offset:?} does not fit an array of shape {:?}",
                block.shape(),
                a.shape()
            )));
        }
        let info: Vec<SliceInfoElem> = offset
            .iter()
            .zip(block.shape())
            .zip(a.shape())
            .map(|((&o, &n), &len)| {
                if o + n > len {
                    Err(Error::shape(format!(
                        "block of shape {:?} at {offset:?} does not fit an array of shape {:?}",
                        block.shape(),
                        a.shape()
                    )))
                } else {
                    Ok(SliceInfoElem::from(o..o + n))
                }
            })
            .collect::<Result<_>>()?;
        a.slice_mut(info.as_slice()).assign(block);
        Ok(())
    }
}

/// Writes each block of its input into a sink; its tasks return `()`.
struct StoreNode<T: Element> {
    meta: Meta,
    input: Arc<dyn Node>,
    sink: Arc<dyn ChunkSink<T>>,
}

static STORE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl<T: Element> StoreNode<T> {
    fn new(input: &Arc<dyn Node>, sink: Arc<dyn ChunkSink<T>>) -> Result<StoreNode<T>> {
        let shape = input.meta().shape();
        let sink_shape = sink.shape();
        if sink_shape != shape {
            return Err(Error::shape(format!(
                "cannot store an array of shape {} into {}",
                crate::error::fmt_shape(shape),
                sink.describe()
            )));
        }
        // A store is an action, not a value: every store gets its own name.
        let mut t = Tokenizer::new();
        t.write_str(&input.meta().name)
            .write_u64(STORE_COUNTER.fetch_add(1, Ordering::Relaxed))
            .write_u64(std::process::id().into());
        Ok(StoreNode {
            meta: Meta::new::<T>("store", t, input.meta().chunks.clone()),
            input: input.clone(),
            sink,
        })
    }
}

impl<T: Element> Node for StoreNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let offset = self.meta.chunks.block_start(index);
        let sink = self.sink.clone();
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| {
                sink.write_block(&offset, block_ref::<T>(&v[0])?)?;
                Ok(Value::new(()))
            }),
        }
    }
}

/// Blocks already computed, held in memory (the result of `persist`).
struct PersistedNode {
    meta: Meta,
    blocks: FxHashMap<BlockIndex, Value>,
}

impl Node for PersistedNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        Vec::new()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let v = self.blocks[index].clone();
        BlockTask {
            deps: Vec::new(),
            func: Arc::new(move |_: &[Value]| Ok(v.clone())),
        }
    }
}

/// Block `index` of `node`, computed on the calling thread now: its tasks are lowered (fused)
/// and run one after another, each intermediate dropped after its last use. For tasks that
/// must read a block again without keeping it from an earlier read ([`reread`]).
pub(crate) fn compute_block_inline(
    node: &Arc<dyn Node>,
    index: &[usize],
) -> std::result::Result<Value, dag_core::TaskError> {
    let (graph, keys) = lower(&[(node.clone(), vec![BlockIndex::from_slice(index)])], true)?;
    let plan = dag_core::Plan::new(&graph, &keys)?;
    let n = plan.len();
    let mut slots: Vec<Option<Value>> = vec![None; n];
    let mut uses: Vec<usize> = (0..n).map(|i| plan.dependents(i).len()).collect();
    let mut inputs = Vec::new();
    for id in 0..n {
        for &d in plan.deps(id) {
            let d = d as usize;
            inputs.push(slots[d].clone().ok_or("internal: inline input missing")?);
            uses[d] -= 1;
            if uses[d] == 0 && !plan.is_output(d) {
                slots[d] = None;
            }
        }
        slots[id] = Some(plan.run(id, &inputs)?);
        inputs.clear();
    }
    let out = *plan.outputs().first().ok_or("internal: no inline output")? as usize;
    Ok(slots[out].take().ok_or("internal: inline output missing")?)
}

/// `input`'s blocks under other keys (`salt`), each computed inside its own task from
/// `input`'s expression (its tasks are not part of the outer graph).
struct RereadNode {
    meta: Meta,
    input: Arc<dyn Node>,
}

impl Node for RereadNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        Vec::new()
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let (input, index) = (self.input.clone(), index.to_vec());
        BlockTask {
            deps: Vec::new(),
            func: Arc::new(move |_: &[Value]| compute_block_inline(&input, &index)),
        }
    }
}

/// `node` read afresh: the same blocks, under keys of their own (`salt` tells passes apart),
/// each computed inside its task from `node`'s expression. A multi-pass algorithm whose input
/// does not fit in memory reads it once per pass this way, instead of keeping every block from
/// the first pass to the last (what sharing one task per block implies).
pub(crate) fn reread(node: &Arc<dyn Node>, salt: u64) -> Arc<dyn Node> {
    let mut t = Tokenizer::new();
    t.write_str(&node.meta().name).write_u64(salt);
    let meta = node.meta().derive("reread", t, node.meta().chunks.clone());
    Arc::new(RereadNode {
        meta,
        input: node.clone(),
    })
}

/// A typed reference to one array's result in a [`Computation`].
pub struct Handle<T> {
    index: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

/// Several arrays computed, and stored, in one run: work they share is done once.
///
/// ```
/// use blockarray::{BlockArray, Computation};
/// let x = BlockArray::<f64>::ones(&[100, 100], [10, 10])?;
/// let y = (&x + 1.0).sum(None, false)?;
/// let z = (&x * 2.0).mean(Some(&[0]), false)?;
/// let mut c = Computation::new();
/// let (hy, hz) = (c.add(&y), c.add(&z));
/// let mut out = c.run(&*blockarray::default_scheduler())?;
/// assert_eq!(out.take(hy)?.into_iter().next(), Some(20_000.0));
/// assert_eq!(out.take(hz)?.len(), 100);
/// # Ok::<(), blockarray::Error>(())
/// ```
#[derive(Default)]
pub struct Computation {
    stores: Vec<Arc<dyn Node>>,
    /// The sinks of `stores`, committed (or aborted) after the run.
    sinks: Vec<Box<dyn Finish>>,
    results: Vec<Option<Box<dyn Any + Send + Sync>>>,
}

impl Computation {
    /// An empty computation.
    pub fn new() -> Computation {
        Computation::default()
    }

    /// Compute `array` in this run; its result is taken from the [`Results`] with the handle.
    pub fn add<T: Element>(&mut self, array: &BlockArray<T>) -> Handle<T> {
        let sink = Arc::new(ArraySink::new(ArrayD::from_elem(
            IxDyn(array.shape()),
            T::default(),
        )));
        let node = StoreNode::new(&array.node, sink.clone() as Arc<dyn ChunkSink<T>>)
            .expect("the sink has the array's shape");
        self.stores.push(Arc::new(node));
        self.results.push(Some(Box::new(sink)));
        Handle {
            index: self.results.len() - 1,
            _type: PhantomData,
        }
    }

    /// Store `array` into `sink` in this run. Fails if the shapes differ.
    pub fn store<T: Element>(
        &mut self,
        array: &BlockArray<T>,
        sink: Arc<dyn ChunkSink<T>>,
    ) -> Result<()> {
        self.stores
            .push(Arc::new(StoreNode::new(&array.node, sink.clone())?));
        self.sinks.push(Box::new(sink));
        Ok(())
    }

    /// The fused task graph the run executes, and its output keys.
    pub fn graph(&self) -> Result<(Graph, Vec<Key>)> {
        let requests: Vec<_> = self
            .stores
            .iter()
            .map(|n| (n.clone(), all_blocks(n)))
            .collect();
        lower(&requests, true)
    }

    /// Run everything with `scheduler`.
    pub fn run(self, scheduler: &dyn Scheduler) -> Result<Results> {
        Ok(self.run_with(scheduler, &NoCallbacks)?.0)
    }

    /// Run everything with `scheduler` and `callbacks` (progress bars, profilers), returning the
    /// run's statistics too.
    pub fn run_with(
        self,
        scheduler: &dyn Scheduler,
        callbacks: &dyn Callbacks,
    ) -> Result<(Results, RunStats)> {
        let run = self
            .graph()
            .and_then(|(graph, outputs)| Ok(scheduler.compute_with(&graph, &outputs, callbacks)?));
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                self.sinks.iter().for_each(|s| s.abort());
                return Err(e);
            }
        };
        for (i, sink) in self.sinks.iter().enumerate() {
            if let Err(e) = sink.commit() {
                self.sinks[i + 1..].iter().for_each(|s| s.abort());
                return Err(e);
            }
        }
        Ok((
            Results {
                results: self.results,
            },
            run.stats,
        ))
    }
}

/// The arrays a [`Computation`] computed.
pub struct Results {
    results: Vec<Option<Box<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let left = self.results.iter().filter(|r| r.is_some()).count();
        write!(
            f,
            "Results {{ {left} of {} not taken }}",
            self.results.len()
        )
    }
}

impl std::fmt::Debug for Computation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Computation {{ {} stores, {} results }}",
            self.stores.len(),
            self.results.len()
        )
    }
}

impl Results {
    /// The array `handle` refers to (each can be taken once).
    pub fn take<T: Element>(&mut self, handle: Handle<T>) -> Result<ArrayD<T>> {
        let boxed = self
            .results
            .get_mut(handle.index)
            .and_then(Option::take)
            .ok_or_else(|| Error::index(format!("result {} was already taken", handle.index)))?;
        let sink = boxed
            .downcast::<Arc<ArraySink<T>>>()
            .map_err(|_| Error::type_error("handle type does not match its result"))?;
        sink.take()
            .ok_or_else(|| Error::index(format!("result {} was already taken", handle.index)))
    }
}

impl<T: Element> BlockArray<T> {
    /// Compute the array with the default scheduler.
    ///
    /// ```
    /// let x = blockarray::BlockArray::<f64>::ones(&[4, 6], [2, 3])?;
    /// let a = (&x + &x)?.compute()?;
    /// assert_eq!(a.shape(), &[4, 6]);
    /// assert!(a.iter().all(|&v| v == 2.0));
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn compute(&self) -> Result<ArrayD<T>> {
        self.compute_with(&*default_scheduler())
    }

    /// Compute the array with `scheduler`.
    pub fn compute_with(&self, scheduler: &dyn Scheduler) -> Result<ArrayD<T>> {
        let mut c = Computation::new();
        let h = c.add(self);
        c.run(scheduler)?.take(h)
    }

    /// Compute with `scheduler`, reporting progress to `callbacks` (for example a
    /// `dag_core::ProgressBar`), and return the run's statistics (tasks, wall time, peak bytes
    /// held) with the result.
    pub fn compute_with_callbacks(
        &self,
        scheduler: &dyn Scheduler,
        callbacks: &dyn Callbacks,
    ) -> Result<(ArrayD<T>, RunStats)> {
        let mut c = Computation::new();
        let h = c.add(self);
        let (mut results, stats) = c.run_with(scheduler, callbacks)?;
        Ok((results.take(h)?, stats))
    }

    /// Compute into a fixed-dimension array (`Ix1`, `Ix2`, …); fails if the number of axes
    /// differs.
    pub fn compute_as<D: Dimension>(&self) -> Result<ndarray::Array<T, D>> {
        self.compute()?.into_dimensionality::<D>().map_err(|e| {
            Error::shape(format!(
                "cannot view {:?} as that dimension: {e}",
                self.shape()
            ))
        })
    }

    /// Write every block into `sink` with the default scheduler.
    pub fn store(&self, sink: Arc<dyn ChunkSink<T>>) -> Result<()> {
        self.store_with(sink, &*default_scheduler())
    }

    /// Write every block into `sink` with `scheduler`.
    pub fn store_with(&self, sink: Arc<dyn ChunkSink<T>>, scheduler: &dyn Scheduler) -> Result<()> {
        let mut c = Computation::new();
        c.store(self, sink)?;
        c.run(scheduler).map(|_| ())
    }

    /// Compute into an existing array of the same shape.
    pub fn store_into(&self, out: &mut ArrayD<T>) -> Result<()> {
        if out.shape() != self.shape() {
            return Err(Error::shape_mismatch(
                "store destination",
                out.shape(),
                self.shape(),
            ));
        }
        let taken = std::mem::replace(out, ArrayD::from_elem(IxDyn(&[0]), T::default()));
        let sink = Arc::new(ArraySink::new(taken));
        let result = self.store_with(sink.clone(), &*default_scheduler());
        *out = sink.take().expect("the sink is only emptied here");
        result
    }

    /// Compute every block now and keep them in memory: the result is an array with the same
    /// chunks whose graph is just its blocks.
    pub fn persist(&self) -> Result<BlockArray<T>> {
        self.persist_with(&*default_scheduler())
    }

    /// [`persist`](Self::persist) with `scheduler`.
    pub fn persist_with(&self, scheduler: &dyn Scheduler) -> Result<BlockArray<T>> {
        let blocks = all_blocks(&self.node);
        let (graph, outputs) = lower(&[(self.node.clone(), blocks.clone())], true)?;
        let values = scheduler.compute(&graph, &outputs)?;
        let mut t = Tokenizer::new();
        t.write_str(self.name());
        let meta = Meta::new::<T>("persist", t, self.chunks().clone());
        let node = PersistedNode {
            meta,
            blocks: blocks.into_iter().zip(values).collect(),
        };
        Ok(BlockArray::wrap(Arc::new(node)))
    }

    /// The task graph of the whole array, unfused: one task per block of every node, like
    /// dask's `x.dask`. Its `Display` lists `key = op(deps)` lines.
    pub fn graph(&self) -> Result<Graph> {
        Ok(lower(&[(self.node.clone(), all_blocks(&self.node))], false)?.0)
    }

    /// The fused graph `compute` runs for the blocks in `blocks` (all when `None`), and the
    /// output keys.
    pub fn lowered(&self, blocks: Option<&[Vec<usize>]>) -> Result<(Graph, Vec<Key>)> {
        let blocks = match blocks {
            None => all_blocks(&self.node),
            Some(bs) => {
                let numblocks = self.numblocks();
                bs.iter()
                    .map(|b| {
                        if b.len() != numblocks.len()
                            || b.iter().zip(&numblocks).any(|(i, n)| i >= n)
                        {
                            Err(Error::index(format!(
                                "block index {b:?} out of range for {numblocks:?} blocks"
                            )))
                        } else {
                            Ok(BlockIndex::from_slice(b))
                        }
                    })
                    .collect::<Result<_>>()?
            }
        };
        lower(&[(self.node.clone(), blocks)], true)
    }

    /// The unfused graph in Graphviz DOT.
    pub fn to_dot(&self) -> Result<String> {
        Ok(self.graph()?.to_dot())
    }
}
