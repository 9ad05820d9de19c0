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
use crate::{BlockArray, Chunks, Element, Error, Result};
use dag_core::fuse::FusionSource;
use dag_core::{
    BlockIndex, Body, Callbacks, Graph, Key, NoCallbacks, Plan, RunStats, Scheduler, Task, TaskFn,
    Tokenizer, Value,
};
use ndarray::{ArrayD, Dimension, IxDyn, SliceInfoElem};
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use std::any::Any;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};

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

/// How many times each node of `order` is used: as an input of a node of `order` (once per
/// input position) or as one of the `roots` asked for.
pub(crate) fn use_counts(
    order: &[Arc<dyn Node>],
    roots: &[Arc<dyn Node>],
) -> FxHashMap<Arc<str>, usize> {
    let mut uses: FxHashMap<Arc<str>, usize> = FxHashMap::default();
    for n in order {
        for i in n.inputs() {
            *uses.entry(i.meta().name.clone()).or_default() += 1;
        }
    }
    for r in roots {
        *uses.entry(r.meta().name.clone()).or_default() += 1;
    }
    uses
}

/// The task graph computing `blocks` of each node (fused when `fuse`), and the output keys in
/// request order.
///
/// Tasks are first laid out in an arena, numbered, with dependencies by number, and become
/// graph tasks only at the end: with fusion, the tasks of blockwise producers that have one
/// consumer task never get a key, a graph entry or a graph of their own
/// (`dag_core::fuse::fuse_into` builds the fused tasks straight from the arena).
///
/// When the run is spread over several processes (`processes > 1`), nothing is fused into a
/// task placed with the results ([`Node::placement`]): its work would all be pulled into the
/// processes that collect the results. In one process, chained rechunk steps may merge into
/// one (`ops::shape::merge_rechunks`).
pub(crate) fn lower(
    requests: &[(Arc<dyn Node>, Vec<BlockIndex>)],
    fuse: bool,
    max_tasks: usize,
    processes: usize,
) -> Result<(Graph, Vec<Key>)> {
    crate::expr::wire::register();
    let roots: Vec<Arc<dyn Node>> = requests.iter().map(|(n, _)| n.clone()).collect();
    let mut order = nodes_of(&roots);
    if fuse {
        if processes == 1 {
            let uses = use_counts(&order, &roots);
            crate::ops::shape::merge_rechunks(&mut order, &uses);
        }
        crate::ops::fused::fuse_elementwise(&mut order, &roots);
    }
    let number: FxHashMap<Arc<str>, u32> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.meta().name.clone(), i as u32))
        .collect();
    let mut arena = Arena {
        nodes: &order,
        slots: Vec::new(),
        ids: order.iter().map(|n| Ids::for_node(&**n)).collect(),
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
        if arena.todo[node].is_empty() {
            arena.ids[node] = Ids::Sparse(FxHashMap::default());
            continue;
        }
        let inputs: Vec<u32> = n.inputs().iter().map(|i| number[&i.meta().name]).collect();
        // A node that declares known chunks over inputs whose chunk sizes are unknown must
        // have made them known; its blocks are checked against what it declares, so an
        // operation that used unknown sizes as if they were real fails instead of answering
        // wrongly.
        let checked =
            n.meta().chunks.is_known() && n.inputs().iter().any(|i| !i.meta().chunks.is_known());
        // Until no block is left: a block may ask for other blocks of its own node
        // (`BlockTask::SELF`).
        loop {
            let wanted = std::mem::take(&mut arena.todo[node]);
            if wanted.is_empty() {
                break;
            }
            if arena.slots.len() > max_tasks {
                return Err(too_many_tasks(&order, max_tasks));
            }
            for id in wanted {
                let index = &arena.slots[id as usize].index;
                let nbytes = n.block_nbytes(index);
                let BlockTask { deps, mut func } = n.block(index);
                if checked {
                    func = check_block_shape(n.meta(), index, func);
                }
                let deps: SmallVec<[u32; 4]> = deps
                    .iter()
                    .map(|(i, bi)| {
                        let from = if *i == BlockTask::SELF {
                            node as u32
                        } else {
                            inputs[*i]
                        };
                        arena.intern(from, bi)
                    })
                    .collect();
                let slot = &mut arena.slots[id as usize];
                slot.deps = deps;
                slot.func = Some(func);
                slot.nbytes = nbytes;
            }
        }
        // Its consumers and its own blocks are all lowered: no more requests for this node.
        arena.ids[node] = Ids::Sparse(FxHashMap::default());
    }
    if arena.slots.len() > max_tasks {
        return Err(too_many_tasks(&order, max_tasks));
    }
    let mut absorbed = vec![false; arena.slots.len()];
    if fuse {
        // A blockwise task whose only dependent is blockwise runs inside it (blockwise fusion),
        // unless it is an output.
        let blockwise: Vec<bool> = order.iter().map(|n| n.blockwise()).collect();
        let is_blockwise = |id: u32| blockwise[arena.slots[id as usize].node as usize];
        let pinned: Vec<bool> = order
            .iter()
            .map(|n| processes > 1 && n.placement().is_pinned())
            .collect();
        let is_pinned = |id: u32| pinned[arena.slots[id as usize].node as usize];
        let mut is_output = vec![false; arena.slots.len()];
        for &o in &outputs {
            is_output[o as usize] = true;
        }
        for (id, only) in dag_core::fuse::single_dependents(&arena)
            .into_iter()
            .enumerate()
        {
            absorbed[id] = only.is_some_and(|c| {
                !is_output[id] && is_blockwise(id as u32) && is_blockwise(c) && !is_pinned(c)
            });
        }
    }
    let mut graph = Graph::with_capacity(arena.slots.len());
    dag_core::fuse::fuse_into(&arena, &absorbed, &mut graph);
    let outputs = outputs.iter().map(|&o| arena.key(o as usize)).collect();
    Ok((graph, outputs))
}

/// `func` followed by a check that its value, when it is a block of the node's element type,
/// has the shape the node's chunks declare for block `index`.
fn check_block_shape(meta: &Meta, index: &[usize], func: TaskFn) -> TaskFn {
    let want = meta.chunks.block_shape(index);
    let (kit, op) = (meta.kit, meta.op().to_string());
    Arc::new(move |v: &[Value]| {
        let out = func(v)?;
        if let Ok(shape) = kit.shape(&out)
            && shape != want
        {
            return Err(format!(
                "{op}: the block came out with shape {shape:?} where its chunks say {want:?} \
                 (the operation read chunk sizes that were not known; compute_chunk_sizes first)"
            )
            .into());
        }
        Ok(out)
    })
}

/// Bytes one lowered task costs while the graph is built and run (the arena slot, the key,
/// the closure and its captures, the graph and plan entries), measured on a sum over a million
/// one-element blocks (`cargo bench -p blockarray -- lowering`), rounded up.
pub const BYTES_PER_TASK: usize = 1500;

/// The most tasks an operation plans one by one while its expression is built (2^26: sort and
/// quantile lanes too long for one task, the steps of blocked factorisations, the partials of
/// a reduction over every block): more is refused with an error naming the operation. Unlike
/// [`default_max_tasks`] it does not depend on the memory available, so every process of a
/// distributed program builds the same expressions or fails alike; at [`BYTES_PER_TASK`] per
/// task it is about 100 GB of graph, far past what any computation could lower anyway.
pub const MAX_BUILD_TASKS: usize = 1 << 26;

/// Refuses (an `Err` of kind [`Memory`](crate::ErrorKind::Memory)) an operation `op` that
/// would plan `tasks` tasks one by one while its expression is built, when that passes
/// [`MAX_BUILD_TASKS`]. `what` says what those tasks are and `fix` what to do instead; both
/// are in the message.
pub fn check_build_tasks(
    op: &str,
    tasks: usize,
    what: impl FnOnce() -> String,
    fix: &str,
) -> Result<()> {
    if tasks > MAX_BUILD_TASKS {
        return Err(Error::memory(format!(
            "{op}: {}: more than the {MAX_BUILD_TASKS} tasks an expression may plan; {fix}",
            what()
        )));
    }
    Ok(())
}

/// The most tasks a computation lowers to unless told otherwise: as many as half the memory
/// available can hold at [`BYTES_PER_TASK`] each (and at least a million).
pub fn default_max_tasks() -> usize {
    dag_core::available_memory().map_or(usize::MAX, |a| (a / 2 / BYTES_PER_TASK).max(1 << 20))
}

/// The error for a graph over `max_tasks` tasks, naming the array with the most blocks and
/// the rechunk that would help.
fn too_many_tasks(nodes: &[Arc<dyn Node>], max_tasks: usize) -> Error {
    let worst = nodes
        .iter()
        .max_by_key(|n| n.meta().chunks.nblocks())
        .expect("a graph with tasks has nodes");
    let m = worst.meta();
    Error::memory(format!(
        "this computation lowers to more than {max_tasks} tasks (about {} to build the graph); \
         {} has {} blocks of up to {} elements in chunks {}: give it larger chunks where it is \
         made or read (e.g. ChunkSpec::auto_bytes({}); rechunking it afterwards still lowers \
         every block it reads), or raise Computation::max_tasks",
        dag_core::fmt_bytes(max_tasks.saturating_mul(BYTES_PER_TASK)),
        m.name,
        m.chunks.nblocks(),
        m.chunks.max_block_shape().iter().product::<usize>(),
        m.chunks,
        crate::DEFAULT_CHUNK_BYTES
    ))
}

/// One task of [`lower`]'s arena: a block of a node, its dependencies by number, and its
/// function (set when its node is lowered).
struct Slot {
    node: u32,
    index: BlockIndex,
    deps: SmallVec<[u32; 4]>,
    func: Option<TaskFn>,
    /// The predicted size of the task's value ([`Node::block_nbytes`]).
    nbytes: usize,
}

/// The number of each requested block of one node: a table over the block grid (allocated
/// on the first request) when the grid has at most [`DENSE_IDS`] blocks, so most lookups are
/// an index instead of hashing a block index; a map for larger grids, of which a computation
/// usually touches a few blocks.
enum Ids {
    Dense {
        numblocks: SmallVec<[usize; 4]>,
        /// `u32::MAX` where a block was not requested; empty until the first request.
        ids: Vec<u32>,
    },
    Sparse(FxHashMap<BlockIndex, u32>),
}

/// The largest block grid numbered by a table (256 KiB of it).
const DENSE_IDS: usize = 1 << 16;

impl Ids {
    /// The number of block `index`, or `next` (now its number) if it was not requested yet.
    fn get_or_insert(&mut self, index: &BlockIndex, next: u32) -> u32 {
        match self {
            Ids::Dense { numblocks, ids } => {
                assert!(
                    index.len() == numblocks.len()
                        && index.iter().zip(numblocks.iter()).all(|(&i, &n)| i < n),
                    "block {index:?} requested of a node with {numblocks:?} blocks"
                );
                let flat = index
                    .iter()
                    .zip(numblocks.iter())
                    .fold(0, |acc, (&i, &n)| acc * n + i);
                if ids.is_empty() {
                    *ids = vec![u32::MAX; numblocks.iter().product()];
                }
                if ids[flat] == u32::MAX {
                    ids[flat] = next;
                }
                ids[flat]
            }
            Ids::Sparse(map) => *map.entry(index.clone()).or_insert(next),
        }
    }

    fn for_node(node: &dyn Node) -> Ids {
        let chunks = &node.meta().chunks;
        if chunks.nblocks() <= DENSE_IDS {
            Ids::Dense {
                numblocks: chunks.numblocks().into_iter().collect(),
                ids: Vec::new(),
            }
        } else {
            Ids::Sparse(FxHashMap::default())
        }
    }
}

/// The tasks of one lowering, numbered in the order they were first requested.
struct Arena<'a> {
    nodes: &'a [Arc<dyn Node>],
    slots: Vec<Slot>,
    /// Per node, the number of each requested block.
    ids: Vec<Ids>,
    /// Per node, the requested blocks not lowered yet.
    todo: Vec<Vec<u32>>,
}

impl Arena<'_> {
    /// The number of block `index` of node `node`, requesting it if new.
    fn intern(&mut self, node: u32, index: &BlockIndex) -> u32 {
        let next = self.slots.len() as u32;
        let id = self.ids[node as usize].get_or_insert(index, next);
        if id == next {
            self.slots.push(Slot {
                node,
                index: index.clone(),
                deps: SmallVec::new(),
                func: None,
                nbytes: 0,
            });
            self.todo[node as usize].push(id);
        }
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
            .with_nbytes(self.slots[p].nbytes)
            .with_placement(self.placement(p))
    }
    fn nbytes(&self, p: usize) -> Option<usize> {
        Some(self.slots[p].nbytes)
    }
    fn placement(&self, p: usize) -> dag_core::Placement {
        self.nodes[self.slots[p].node as usize].placement()
    }
    fn name(&self, p: usize) -> &str {
        self.nodes[self.slots[p].node as usize].label()
    }
}

/// Every block of `node`, refused before listing them when they alone pass `max_tasks` (a
/// list of 2^40 block indices would abort the process before lowering could count tasks).
fn all_blocks(node: &Arc<dyn Node>, max_tasks: usize) -> Result<Vec<BlockIndex>> {
    if node.meta().chunks.nblocks() > max_tasks {
        return Err(too_many_tasks(std::slice::from_ref(node), max_tasks));
    }
    Ok(node
        .meta()
        .chunks
        .block_indices()
        .map(|b| BlockIndex::from_slice(&b))
        .collect())
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
/// `offset` is the position of the block's first element.
///
/// # Committing: all of a run's sinks, or none
///
/// After the tasks of a run ([`Computation::run`], [`BlockArray::store`]) are done, its sinks
/// are finished together, in two phases, so that a run storing into several sinks changes
/// either all of them or none:
///
/// 1. if every task succeeded, [`prepare`](Self::prepare) on every sink: everything that can
///    fail before anything becomes visible (checks, flushes, creating parent groups);
/// 2. if every sink prepared, [`commit`](Self::commit) on every sink: make the data visible
///    (rename a temporary into place), keeping what is needed to undo it;
/// 3. if every sink committed, [`finish`](Self::finish) on every sink: drop what an undo would
///    have needed (a replaced dataset kept aside). Otherwise [`rollback`](Self::rollback) on
///    the sinks that had committed (in reverse order) and [`abort`](Self::abort) on the others.
///
/// When the tasks fail, every sink is aborted. A panic in any hook is caught: it fails the
/// run (or, in `abort`, `rollback` and `finish`, is ignored so the other sinks still get
/// theirs). All hooks default to doing nothing: a sink that writes straight into its
/// destination (an in-memory array) needs none — and is the exception to "all or none": an
/// [`ArraySink`] (or [`BlockArray::store_into`]'s array) holds whatever blocks were written
/// even when the run fails or another sink refuses to commit. Take an in-memory result only
/// from a run that returned `Ok`.
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
    /// Check, when a store is added to a computation (before anything runs), that blocks cut
    /// as `chunks` can be written into this sink. A format whose unit of writing is larger
    /// than one element (a Zarr chunk or shard) refuses a chunking in which two blocks would
    /// write parts of the same unit concurrently: each would read, modify and write the whole
    /// unit, and one block's data would be lost. The error should name the rechunk that fixes
    /// it. The default accepts any chunking.
    fn check_chunks(&self, chunks: &crate::Chunks) -> Result<()> {
        let _ = chunks;
        Ok(())
    }
    /// Phase 1 of committing, after every task succeeded: do and check everything that can
    /// fail before anything becomes visible. An error aborts every sink of the run.
    fn prepare(&self) -> Result<()> {
        Ok(())
    }
    /// Phase 2: make the data durable and visible (rename a temporary, flush), keeping what
    /// [`rollback`](Self::rollback) needs. An error rolls back the sinks committed before it
    /// and aborts the rest.
    fn commit(&self) -> Result<()> {
        Ok(())
    }
    /// Undo a successful [`commit`](Self::commit) because another sink of the same run failed
    /// to commit: afterwards the destination is as it was before the run, and the sink is
    /// aborted (its written data discarded).
    fn rollback(&self) {}
    /// Every sink of the run committed: release what a rollback would have needed.
    fn finish(&self) {}
    /// Called instead of committing when the run failed (a task, or another sink's
    /// [`prepare`](Self::prepare)): undo what can be undone (delete a temporary).
    fn abort(&self) {}
    /// The storage this sink modifies while the run is still reading, for writes in place
    /// into existing data, named as [`ChunkSource::resource`](crate::ChunkSource::resource)
    /// names what a source reads (`None`, the default, for sinks that write somewhere new
    /// until they commit). A [`Computation`] refuses to store in place into anything one of
    /// its arrays reads: blocks written early would be read back by later tasks (storing
    /// `x[::-1]` over `x` in place would give half the values wrong).
    fn writes_in_place(&self) -> Option<String> {
        None
    }
    /// The storage this sink rewrites in units that a second sink into it would rewrite too,
    /// named as [`writes_in_place`](Self::writes_in_place) names it, or `None` (the default)
    /// for sinks whose writes into one destination compose. A Zarr array is such storage:
    /// each sink writes whole chunks, merged with the array as it was, so of two sinks into
    /// one array whose regions share a chunk, the second to commit would undo the first's part
    /// of it; an HDF5 dataset is one unit (a new dataset replaces the old one when it
    /// commits). A [`Computation`] refuses two sinks naming the same storage.
    fn rewrites_units_of(&self) -> Option<String> {
        None
    }
    /// Where the tasks writing into this sink run when a run is spread over several processes
    /// (an MPI scheduler). The default, [`Placement::First`](dag_core::Placement::First):
    /// blocks computed elsewhere are sent to the first process (MPI rank 0), and written
    /// there, once — right for storage (a file only that process opens; build such sinks in
    /// that process only, see `Scheduler::process_index`). A sink that fills memory in the
    /// process that returns the results returns
    /// [`Placement::Results`](dag_core::Placement::Results) ([`ArraySink`] does). A sink
    /// that every process may write into independently (each its own blocks) can return
    /// `Anywhere`, so each block is written where it was computed.
    fn placement(&self) -> dag_core::Placement {
        dag_core::Placement::First
    }
    /// Check, before every run, that this sink, built in process `index` of a run spread over
    /// `processes` processes (`1` and `0` for a one-process scheduler), can take part. In an
    /// SPMD program every process builds its own sinks, so a sink that writes files must be
    /// either the one process's that writes them or a stand-in: a file sink built in every
    /// process would commit, from every process but the one its blocks went to, an array of
    /// nothing but fill values over the real one. The processes agree on the outcome, so a
    /// sink refused in one process refuses the run in all. The default accepts any process.
    fn check_processes(&self, processes: usize, index: usize) -> Result<()> {
        let _ = (processes, index);
        Ok(())
    }
}

/// The commit protocol of a run's sinks, whatever their element types.
trait Finish: Send + Sync {
    fn describe(&self) -> String;
    fn check_processes(&self, processes: usize, index: usize) -> Result<()>;
    fn prepare(&self) -> Result<()>;
    fn commit(&self) -> Result<()>;
    fn rollback(&self);
    fn finish(&self);
    fn abort(&self);
    fn writes_in_place(&self) -> Option<String>;
    fn rewrites_units_of(&self) -> Option<String>;
}

impl<T: Element> Finish for Arc<dyn ChunkSink<T>> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn check_processes(&self, processes: usize, index: usize) -> Result<()> {
        (**self).check_processes(processes, index)
    }
    fn prepare(&self) -> Result<()> {
        (**self).prepare()
    }
    fn commit(&self) -> Result<()> {
        (**self).commit()
    }
    fn rollback(&self) {
        (**self).rollback()
    }
    fn finish(&self) {
        (**self).finish()
    }
    fn abort(&self) {
        (**self).abort()
    }
    fn writes_in_place(&self) -> Option<String> {
        (**self).writes_in_place()
    }
    fn rewrites_units_of(&self) -> Option<String> {
        (**self).rewrites_units_of()
    }
}

/// Run one of a sink's hooks, turning a panic into an error naming the sink and the hook.
fn sink_hook<R>(sink: &dyn Finish, hook: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Error::io(format!(
            "{} panicked in {hook}: {}",
            sink.describe(),
            dag_core::panic_message(&*payload)
        ))),
    }
}

/// Abort every sink in `sinks` (a panic in one does not keep the others from theirs).
fn abort_all(sinks: &[Box<dyn Finish>]) {
    for s in sinks {
        let _ = sink_hook(&**s, "abort", || {
            s.abort();
            Ok(())
        });
    }
}

/// The two-phase commit of a successful run's sinks (see [`ChunkSink`]). When the run was
/// spread over several processes, each phase ends with the scheduler's
/// [`agree`](Scheduler::agree): every process commits only if every process prepared, and
/// finishes only if every process committed (otherwise rolls back), so they all end alike.
fn commit_all(sinks: &[Box<dyn Finish>], scheduler: &dyn Scheduler) -> Result<()> {
    let mut prepared = Ok(());
    for s in sinks {
        if let Err(e) = sink_hook(&**s, "prepare", || s.prepare()) {
            prepared = Err(e);
            break;
        }
    }
    if let Err(e) = agreed(scheduler, prepared) {
        abort_all(sinks);
        return Err(e);
    }
    let mut committed = Ok(());
    let mut done = 0;
    for s in sinks {
        if let Err(e) = sink_hook(&**s, "commit", || s.commit()) {
            committed = Err(e);
            break;
        }
        done += 1;
    }
    if let Err(e) = agreed(scheduler, committed) {
        for s in sinks[..done].iter().rev() {
            let _ = sink_hook(&**s, "rollback", || {
                s.rollback();
                Ok(())
            });
        }
        abort_all(&sinks[done..]);
        return Err(e);
    }
    for s in sinks {
        let _ = sink_hook(&**s, "finish", || {
            s.finish();
            Ok(())
        });
    }
    Ok(())
}

/// `prepared`, this process's checks and plan before a run, as every process's outcome when
/// the run is spread over several: the checks depend on this process's memory, and one
/// process refusing while the others start would leave them waiting for it. All start, or
/// none (every process gets the refusing one's error).
fn agreed_start<X>(scheduler: &dyn Scheduler, prepared: Result<X>) -> Result<X> {
    if scheduler.processes() > 1 {
        agreed(
            scheduler,
            prepared.as_ref().map(|_| ()).map_err(Clone::clone),
        )
        .and(prepared)
    } else {
        prepared
    }
}

/// This process's outcome of a commit phase, combined with the other processes' (one process:
/// unchanged). A failure elsewhere becomes an I/O error carrying that process's message.
fn agreed(scheduler: &dyn Scheduler, local: Result<()>) -> Result<()> {
    let shared = scheduler.agree(local.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    match (local, shared) {
        (Err(e), _) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
        (Ok(()), Err(msg)) => Err(Error::io(msg)),
    }
}

/// A [`ChunkSink`] that fills an in-memory array.
///
/// Made from an existing array ([`ArraySink::new`]), or for a shape whose buffer is allocated
/// only when a run starts ([`ArraySink::for_shape`], what [`Computation::add`] uses), so that
/// a result too large for memory is refused with an `Err` instead of aborting the process.
///
/// Blocks are copied in concurrently: a write holds the lock only to claim its region (waiting
/// while a write in flight overlaps it) and copies outside it, so the workers fill a large
/// result in parallel; [`take`](Self::take) waits for the writes in flight.
pub struct ArraySink<T> {
    shape: Vec<usize>,
    array: Mutex<SinkState<T>>,
    /// Signalled when a write in flight ends.
    ended: Condvar,
}

/// An [`ArraySink`]'s array and the regions being copied into it now.
struct SinkState<T> {
    buffer: Buffer<T>,
    /// The regions of the writes in flight (at most one per worker), with their ids.
    in_flight: Vec<(u64, Vec<Range<usize>>)>,
    next_id: u64,
}

/// The state of an [`ArraySink`]'s array.
enum Buffer<T> {
    /// Not allocated yet.
    Pending,
    /// Allocated (blocks are written into it).
    Ready(ArrayD<T>),
    /// Taken out by the user.
    Taken,
}

impl<T: Element> ArraySink<T> {
    /// A sink filling `array` (its shape must match what is stored into it).
    pub fn new(array: ArrayD<T>) -> ArraySink<T> {
        ArraySink {
            shape: array.shape().to_vec(),
            array: Mutex::new(SinkState::new(Buffer::Ready(array))),
            ended: Condvar::new(),
        }
    }

    /// A sink for an array of `shape`, allocated by [`allocate`](Self::allocate) (a run's
    /// [`Computation`] calls it after checking that its results fit in memory).
    pub fn for_shape(shape: &[usize]) -> ArraySink<T> {
        ArraySink {
            shape: shape.to_vec(),
            array: Mutex::new(SinkState::new(Buffer::Pending)),
            ended: Condvar::new(),
        }
    }

    /// Bytes of the array (`usize::MAX` when more: such an array is refused as too large).
    pub fn nbytes(&self) -> usize {
        crate::plan::chunks::shape_bytes(&self.shape, T::itemsize())
    }

    /// Allocate the array if it is not yet: an `Err` (not an abort) when the allocator
    /// refuses.
    pub fn allocate(&self) -> Result<()> {
        let mut guard = self.array.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(guard.buffer, Buffer::Pending) {
            let n: usize = self.shape.iter().product();
            let data = crate::element::try_default_vec::<T>(n).ok_or_else(|| {
                Error::memory(format!(
                    "cannot allocate {} for a result of shape {}",
                    dag_core::fmt_bytes(self.nbytes()),
                    crate::error::fmt_shape(&self.shape)
                ))
            })?;
            let a = ArrayD::from_shape_vec(IxDyn(&self.shape), data).expect("sizes match");
            guard.buffer = Buffer::Ready(a);
        }
        Ok(())
    }

    /// The array, with every block written so far.
    pub fn into_inner(self) -> ArrayD<T> {
        self.take().expect("an owned sink still holds its array")
    }

    /// Take the array out (later writes fail). `None` if it was already taken or never
    /// allocated.
    pub fn take(&self) -> Option<ArrayD<T>> {
        let mut guard = self.array.lock().unwrap_or_else(|e| e.into_inner());
        while !guard.in_flight.is_empty() {
            guard = self.ended.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        match std::mem::replace(&mut guard.buffer, Buffer::Taken) {
            Buffer::Ready(a) => Some(a),
            Buffer::Pending => {
                guard.buffer = Buffer::Pending;
                None
            }
            Buffer::Taken => None,
        }
    }
}

impl<T> SinkState<T> {
    fn new(buffer: Buffer<T>) -> SinkState<T> {
        SinkState {
            buffer,
            in_flight: Vec::new(),
            next_id: 0,
        }
    }
}

/// Whether two boxes (ranges per axis) share an element.
fn boxes_overlap(a: &[Range<usize>], b: &[Range<usize>]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| x.start < y.end && y.start < x.end)
}

/// Ends a write in flight when dropped (also if the copy unwinds, so `take` cannot wait
/// forever).
struct InFlight<'a, T> {
    sink: &'a ArraySink<T>,
    id: u64,
}

impl<T> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        let mut guard = self.sink.array.lock().unwrap_or_else(|e| e.into_inner());
        guard.in_flight.retain(|(id, _)| *id != self.id);
        self.sink.ended.notify_all();
    }
}

impl<T: Element> ChunkSink<T> for ArraySink<T> {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    /// In memory: in every process that returns the results.
    fn placement(&self) -> dag_core::Placement {
        dag_core::Placement::Results
    }

    fn write_block(&self, offset: &[usize], block: &ArrayD<T>) -> Result<()> {
        let mut guard = self.array.lock().unwrap_or_else(|e| e.into_inner());
        let a = match &mut guard.buffer {
            Buffer::Ready(a) => a,
            Buffer::Pending => {
                return Err(Error::io(
                    "this in-memory sink's array was not allocated (ArraySink::allocate)",
                ));
            }
            Buffer::Taken => {
                return Err(Error::io("this in-memory sink's array was already taken"));
            }
        };
        if offset.len() != a.ndim() || block.ndim() != a.ndim() {
            return Err(Error::shape(format!(
                "block of shape {:?} at {offset:?} does not fit an array of shape {:?}",
                block.shape(),
                a.shape()
            )));
        }
        let region: Vec<Range<usize>> = offset
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
                    Ok(o..o + n)
                }
            })
            .collect::<Result<_>>()?;
        // Claim the region: wait while a write in flight overlaps it.
        while guard
            .in_flight
            .iter()
            .any(|(_, r)| boxes_overlap(r, &region))
        {
            guard = self.ended.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        let Buffer::Ready(a) = &mut guard.buffer else {
            return Err(Error::io(
                "this in-memory sink's array was taken during a write",
            ));
        };
        let info: Vec<SliceInfoElem> = region.iter().cloned().map(SliceInfoElem::from).collect();
        let target = a.raw_view_mut().slice_move(info.as_slice());
        let id = guard.next_id;
        guard.next_id += 1;
        guard.in_flight.push((id, region));
        drop(guard);
        let _claim = InFlight { sink: self, id };
        // SAFETY: `target` points into the array the sink owns, which stays allocated and in
        // place until `take` (which waits for this write to end: `_claim`). No other write in
        // flight overlaps `region` (claimed above, under the lock), and no reference to the
        // array's elements is handed out before `take`, so this is the only access to them.
        let mut view = unsafe { target.deref_into_view_mut() };
        view.assign(block);
        Ok(())
    }
}

/// Writes each block of its input into a sink; its tasks return `()`.
struct StoreNode<T: Element> {
    meta: Meta,
    input: Arc<dyn Node>,
    sink: Arc<dyn ChunkSink<T>>,
}

impl<T: Element> StoreNode<T> {
    /// The store of `input` into `sink` as the `position`-th store of its computation.
    fn new(
        input: &Arc<dyn Node>,
        sink: Arc<dyn ChunkSink<T>>,
        position: usize,
    ) -> Result<StoreNode<T>> {
        input
            .meta()
            .chunks
            .require_known(&format!("storing into {}", sink.describe()))?;
        let shape = input.meta().shape();
        let sink_shape = sink.shape();
        if sink_shape != shape {
            return Err(Error::shape(format!(
                "cannot store an array of shape {} into {}",
                crate::error::fmt_shape(shape),
                sink.describe()
            )));
        }
        sink.check_chunks(&input.meta().chunks)?;
        // A store is an action, not a value: every store of a computation gets its own name,
        // from its position there (two stores of one array into two sinks differ). Graphs
        // are never shared between computations, so the name need not be unique beyond it;
        // and it depends on nothing else, so the processes of an SPMD program agree on it
        // even when one of them computed something more before (a rank printing a result).
        let mut t = Tokenizer::new();
        t.write_str(&input.meta().name)
            .write_str("store")
            .write_usize(position);
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
    fn placement(&self) -> dag_core::Placement {
        self.sink.placement()
    }
    fn block_nbytes(&self, _: &[usize]) -> usize {
        0
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

/// An in-memory result whose chunk sizes are not known until computed: its blocks are kept as
/// they finish and put together when the result is taken, from the lengths they came with.
struct Collected<T> {
    chunks: Chunks,
    blocks: Mutex<Vec<(BlockIndex, Value)>>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Element> Collected<T> {
    /// The blocks put together: lengths along unknown axes from the blocks themselves
    /// (checked to agree along each slab), known axes checked against the chunks.
    fn assemble(&self) -> Result<ArrayD<T>> {
        let mut blocks =
            std::mem::take(&mut *self.blocks.lock().unwrap_or_else(|e| e.into_inner()));
        let nd = self.chunks.ndim();
        let mut lens: Vec<Vec<Option<usize>>> = self
            .chunks
            .numblocks()
            .into_iter()
            .map(|n| vec![None; n])
            .collect();
        for (index, value) in &blocks {
            let b = block_ref::<T>(value).map_err(|e| Error::type_error(e.to_string()))?;
            for k in 0..nd {
                let got = b.shape()[k];
                let slot = &mut lens[k][index[k]];
                let known = self.chunks.unknown_axis(k).is_none();
                if known && got != self.chunks.axis(k)[index[k]] || slot.is_some_and(|l| l != got) {
                    return Err(Error::shape(format!(
                        "block {:?} has length {got} along axis {k}, unlike the other blocks \
                         of its slab",
                        index.as_slice()
                    )));
                }
                *slot = Some(got);
            }
        }
        // Offsets from the lengths (blocks may be empty here).
        let offsets: Vec<Vec<usize>> = lens
            .iter()
            .map(|ax| {
                let mut o = vec![0];
                for l in ax {
                    o.push(o.last().copied().unwrap_or(0) + l.unwrap_or(0));
                }
                o
            })
            .collect();
        let shape: Vec<usize> = offsets.iter().map(|o| *o.last().unwrap_or(&0)).collect();
        // A result of one block is that block: moved out when nothing else holds it (the run
        // is over, so only a value that is also another result is shared), copied otherwise.
        if blocks.len() == 1
            && let Some((_, value)) = blocks.pop()
        {
            let block = value
                .into_inner::<ArrayD<T>>()
                .map_err(|e| Error::type_error(e.to_string()))?;
            return Ok(if block.is_standard_layout() {
                block
            } else {
                block.as_standard_layout().into_owned()
            });
        }
        let sink = ArraySink::<T>::for_shape(&shape);
        sink.allocate()?;
        // Each block is copied into place and dropped at once.
        for (index, value) in blocks.drain(..) {
            let b = block_ref::<T>(&value).map_err(|e| Error::type_error(e.to_string()))?;
            let start: Vec<usize> = index.iter().zip(&offsets).map(|(&i, o)| o[i]).collect();
            sink.write_block(&start, b)?;
        }
        Ok(sink.take().expect("allocated above"))
    }
}

/// Keeps each block of its input in a [`Collected`] result; its tasks return `()`.
struct CollectNode<T: Element> {
    meta: Meta,
    input: Arc<dyn Node>,
    into: Arc<Collected<T>>,
}

impl<T: Element> Node for CollectNode<T> {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    /// Writes into this process's memory: on the processes that hold the results, as
    /// [`ArraySink`] (anywhere else, a distributed run would leave blocks out of the result).
    fn placement(&self) -> dag_core::Placement {
        dag_core::Placement::Results
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block_nbytes(&self, _: &[usize]) -> usize {
        0
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let into = self.into.clone();
        let idx = BlockIndex::from_slice(index);
        BlockTask {
            deps: vec![(0, idx.clone())],
            func: Arc::new(move |v: &[Value]| {
                into.blocks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((idx.clone(), v[0].clone()));
                Ok(Value::new(()))
            }),
        }
    }
}

/// The lengths of each block of its input along every axis (one pass that keeps only the
/// shapes), for [`BlockArray::compute_chunk_sizes`].
struct ShapeNode {
    meta: Meta,
    input: Arc<dyn Node>,
}

impl Node for ShapeNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block_nbytes(&self, index: &[usize]) -> usize {
        std::mem::size_of_val(index)
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let kit = self.meta.kit;
        BlockTask {
            deps: vec![(0, BlockIndex::from_slice(index))],
            func: Arc::new(move |v: &[Value]| Ok(Value::new(kit.shape(&v[0])?))),
        }
    }
}

/// Its input's blocks, under chunks now known. Blocks found empty are left out (chunks have
/// no empty blocks on a non-empty axis): output block `i` along axis `k` is input block
/// `kept[k][i]`.
struct KnownNode {
    meta: Meta,
    input: Arc<dyn Node>,
    kept: Vec<Vec<usize>>,
}

impl Node for KnownNode {
    fn meta(&self) -> &Meta {
        &self.meta
    }
    fn inputs(&self) -> Vec<Arc<dyn Node>> {
        vec![self.input.clone()]
    }
    fn block(&self, index: &[usize]) -> BlockTask {
        let src: Vec<usize> = index.iter().zip(&self.kept).map(|(&i, k)| k[i]).collect();
        BlockTask {
            deps: vec![(0, BlockIndex::from_vec(src))],
            func: Arc::new(|v: &[Value]| Ok(v[0].clone())),
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
    let (graph, keys) = lower(
        &[(node.clone(), vec![BlockIndex::from_slice(index)])],
        true,
        default_max_tasks(),
        1,
    )?;
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

/// A typed reference to one array's result in a [`Computation`] (taken from that
/// computation's [`Results`] only).
pub struct Handle<T> {
    index: usize,
    /// The computation that gave it ([`Computation`]'s `id`).
    computation: u64,
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
pub struct Computation {
    /// This computation among the process's (see [`Handle`]).
    id: u64,
    stores: Vec<Arc<dyn Node>>,
    /// The sinks of `stores`, committed (or aborted) after the run.
    sinks: Vec<Box<dyn Finish>>,
    results: Vec<Option<Box<dyn Any + Send + Sync>>>,
    /// The in-memory results' buffers, allocated when the run starts.
    buffers: Vec<Box<dyn Buffered>>,
    /// The memory limit: `None` for the default (a share of the memory available).
    allowed_mem: Option<Option<usize>>,
    /// The most tasks the graph may have: `None` for [`default_max_tasks`].
    max_tasks: Option<usize>,
    /// Stops the run when cancelled.
    cancel: Option<dag_core::Cancel>,
}

/// The share of the memory available that a run's values may hold by default
/// ([`Computation::allowed_mem`]).
pub const DEFAULT_MEMORY_SHARE: f64 = 0.6;

/// What a [`Computation`] will do, known before it runs ([`Computation::plan`]): its tasks,
/// the peak of bytes its values are predicted to hold on the chosen scheduler, the memory limit
/// and the task needing the most memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Tasks in the fused graph.
    pub tasks: usize,
    /// The scheduler's workers the prediction assumed.
    pub workers: usize,
    /// The predicted peak of bytes of task values held at once (without a memory limit;
    /// [`Plan::predicted_peak`](dag_core::Plan::predicted_peak)).
    pub predicted_peak: usize,
    /// The memory limit the run keeps to, if any.
    pub allowed_mem: Option<usize>,
    /// The task needing the most memory on its own (inputs, output and intermediate blocks of fused stages), and that many bytes.
    pub largest_task: Option<(Key, usize)>,
}

impl std::fmt::Display for RunPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tasks on {} worker{}; predicted peak {} held",
            self.tasks,
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            dag_core::fmt_bytes(self.predicted_peak)
        )?;
        match self.allowed_mem {
            Some(l) => write!(f, " (limit {})", dag_core::fmt_bytes(l))?,
            None => write!(f, " (no limit)")?,
        }
        if let Some((key, bytes)) = &self.largest_task {
            write!(
                f,
                "; largest task {key} needs {}",
                dag_core::fmt_bytes(*bytes)
            )?;
        }
        Ok(())
    }
}

/// An in-memory result's buffer, whatever its element type.
trait Buffered: Send + Sync {
    fn nbytes(&self) -> usize;
    fn allocate(&self) -> Result<()>;
}

impl<T: Element> Buffered for Arc<ArraySink<T>> {
    fn nbytes(&self) -> usize {
        ArraySink::nbytes(self)
    }
    fn allocate(&self) -> Result<()> {
        ArraySink::allocate(self)
    }
}

impl<T: Element> Buffered for Arc<Collected<T>> {
    /// The bound: every block as long as its chunks allow.
    fn nbytes(&self) -> usize {
        crate::plan::chunks::shape_bytes(self.chunks.shape(), T::itemsize())
    }
    /// Nothing to allocate before the run: blocks are kept as they come.
    fn allocate(&self) -> Result<()> {
        Ok(())
    }
}

/// Refuse to hold `nbytes` in memory for `what` when the machine does not have them available
/// (allocating would abort the process, or push it into swap and the OOM killer).
pub(crate) fn check_fits(what: &str, nbytes: usize) -> Result<()> {
    if let Some(available) = dag_core::available_memory()
        && nbytes > available
    {
        return Err(Error::memory(format!(
            "{what} needs {} but only {} of memory is available; compute a slice or a \
             reduction of it, or store it to a file instead",
            dag_core::fmt_bytes(nbytes),
            dag_core::fmt_bytes(available)
        )));
    }
    Ok(())
}

/// Numbers computations, so that a handle is only taken from its own computation's results.
static COMPUTATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Default for Computation {
    fn default() -> Computation {
        Computation {
            id: COMPUTATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            stores: Vec::new(),
            sinks: Vec::new(),
            results: Vec::new(),
            buffers: Vec::new(),
            allowed_mem: None,
            max_tasks: None,
            cancel: None,
        }
    }
}

impl Computation {
    /// An empty computation.
    pub fn new() -> Computation {
        Computation::default()
    }

    /// Compute `array` in this run; its result is taken from the [`Results`] with the handle.
    ///
    /// The result's memory is allocated when the run starts, after checking that all the
    /// run's in-memory results fit in the memory available (an `Err` of kind
    /// [`Memory`](crate::ErrorKind::Memory) otherwise, before any task runs).
    ///
    /// An array whose chunk sizes are not known until computed (a boolean mask's result, say)
    /// is collected block by block and put together when taken; its memory is checked against
    /// the bounds of those sizes. An array of one block is collected too, and taken without a
    /// copy.
    pub fn add<T: Element>(&mut self, array: &BlockArray<T>) -> Handle<T> {
        if !array.chunks().is_known() || array.chunks().nblocks() == 1 {
            let into = Arc::new(Collected::<T> {
                chunks: array.chunks().clone(),
                blocks: Mutex::new(Vec::new()),
                _type: PhantomData,
            });
            // Named by its position in the computation, like a store (see `StoreNode::new`).
            let mut t = Tokenizer::new();
            t.write_str(array.name())
                .write_str("collect")
                .write_usize(self.stores.len());
            self.stores.push(Arc::new(CollectNode {
                meta: Meta::new::<T>("collect", t, array.chunks().clone()),
                input: array.node.clone(),
                into: into.clone(),
            }));
            self.buffers.push(Box::new(into.clone()));
            self.results.push(Some(Box::new(into)));
            return Handle {
                index: self.results.len() - 1,
                computation: self.id,
                _type: PhantomData,
            };
        }
        let sink = Arc::new(ArraySink::for_shape(array.shape()));
        let node = StoreNode::new(
            &array.node,
            sink.clone() as Arc<dyn ChunkSink<T>>,
            self.stores.len(),
        )
        .expect("the sink has the array's shape");
        self.stores.push(Arc::new(node));
        self.buffers.push(Box::new(sink.clone()));
        self.results.push(Some(Box::new(sink)));
        Handle {
            index: self.results.len() - 1,
            computation: self.id,
            _type: PhantomData,
        }
    }

    /// Store `array` into `sink` in this run. Fails if the shapes differ.
    pub fn store<T: Element>(
        &mut self,
        array: &BlockArray<T>,
        sink: Arc<dyn ChunkSink<T>>,
    ) -> Result<()> {
        self.stores.push(Arc::new(StoreNode::new(
            &array.node,
            sink.clone(),
            self.stores.len(),
        )?));
        self.sinks.push(Box::new(sink));
        Ok(())
    }

    /// Check that the in-memory results fit in the memory available, then allocate them.
    fn allocate_results(&self) -> Result<()> {
        let total = self
            .buffers
            .iter()
            .fold(0usize, |acc, b| acc.saturating_add(b.nbytes()));
        let what = if self.buffers.len() == 1 {
            "the result".to_string()
        } else {
            format!("the {} results", self.buffers.len())
        };
        check_fits(&what, total)?;
        self.buffers.iter().try_for_each(|b| b.allocate())
    }

    /// Refuse in-place stores into storage that an array of this computation reads (see
    /// [`ChunkSink::writes_in_place`]), and two in-place stores into the same storage.
    fn check_aliasing(&self) -> Result<()> {
        // The sinks naming a storage, with their descriptions; the first two naming the same.
        let named = |storage: &dyn Fn(&dyn Finish) -> Option<String>| {
            self.sinks
                .iter()
                .filter_map(|s| storage(&**s).map(|r| (r, s.describe())))
                .collect::<Vec<(String, String)>>()
        };
        let twice = |list: &[(String, String)]| {
            list.iter().enumerate().find_map(|(i, (r, what))| {
                list[..i]
                    .iter()
                    .find(|(r2, _)| r2 == r)
                    .map(|(_, other)| format!("{what} and {other} are the same storage"))
            })
        };
        if let Some(same) = twice(&named(&|s| s.rewrites_units_of())) {
            return Err(Error::io(format!(
                "{same}, stored into twice in one computation: each rewrites whole units (chunks, \
                 or the whole dataset), so one would undo the other's (store one array, or run \
                 them one after the other)"
            )));
        }
        let in_place = named(&|s| s.writes_in_place());
        if let Some(same) = twice(&in_place) {
            return Err(Error::io(format!(
                "{same}, written in place twice in one computation"
            )));
        }
        if in_place.is_empty() {
            return Ok(());
        }
        for node in nodes_of(&self.stores) {
            for read in node.resources() {
                if let Some((_, what)) = in_place.iter().find(|(r, _)| *r == read) {
                    return Err(Error::io(format!(
                        "cannot store in place into {what}: the same computation reads it \
                         ({}), so blocks written early would be read back by later tasks; \
                         store into a new dataset instead (or persist the input first)",
                        node.meta().name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Limit the bytes of values the run holds at once to `limit` (`None`: no limit). The
    /// default is [`DEFAULT_MEMORY_SHARE`] of the memory available when the run starts.
    ///
    /// Refused before the run starts, with an `Err` of kind
    /// [`Memory`](crate::ErrorKind::Memory): a run in which one task alone needs more than
    /// the limit (its inputs, output and intermediate blocks; the error names it), and a run predicted to pass the
    /// limit even one task at a time in the plan's memory-frugal order
    /// ([`Plan::predicted_peak`](dag_core::Plan::predicted_peak)) — or, on a scheduler that
    /// cannot hold tasks back, with all its workers. Otherwise a scheduler that keeps limits
    /// (the threaded one) holds new leaf tasks back while the limit would be passed.
    pub fn allowed_mem(&mut self, limit: Option<usize>) -> &mut Self {
        self.allowed_mem = Some(limit);
        self
    }

    /// Refuse graphs of more than `n` tasks (the default, [`default_max_tasks`], is what
    /// half the memory available can build): lowering stops with an `Err` of kind
    /// [`Memory`](crate::ErrorKind::Memory) naming the array with the most blocks.
    pub fn max_tasks(&mut self, n: usize) -> &mut Self {
        self.max_tasks = Some(n);
        self
    }

    /// Stop the run when `cancel` is cancelled (from another thread): tasks running then
    /// finish, no other starts, every sink is aborted, and the run returns an `Err` of kind
    /// [`Cancelled`](crate::ErrorKind::Cancelled).
    pub fn cancel_with(&mut self, cancel: dag_core::Cancel) -> &mut Self {
        self.cancel = Some(cancel);
        self
    }

    /// The nodes this computation stores (its results' included).
    pub(crate) fn roots(&self) -> &[Arc<dyn Node>] {
        &self.stores
    }

    fn limit(&self) -> Option<usize> {
        self.allowed_mem.unwrap_or_else(|| {
            dag_core::available_memory().map(|a| (a as f64 * DEFAULT_MEMORY_SHARE) as usize)
        })
    }

    /// The fused task graph the run executes in one process, and its output keys.
    pub fn graph(&self) -> Result<(Graph, Vec<Key>)> {
        self.graph_for(1)
    }

    /// The fused task graph for a run spread over `processes` processes.
    fn graph_for(&self, processes: usize) -> Result<(Graph, Vec<Key>)> {
        let max_tasks = self.max_tasks.unwrap_or_else(default_max_tasks);
        let outputs = self.stores.iter().fold(0usize, |acc, n| {
            acc.saturating_add(n.meta().chunks.nblocks())
        });
        if outputs > max_tasks {
            return Err(too_many_tasks(&self.stores, max_tasks));
        }
        let requests = self
            .stores
            .iter()
            .map(|n| Ok((n.clone(), all_blocks(n, max_tasks)?)))
            .collect::<Result<Vec<_>>>()?;
        lower(&requests, true, max_tasks, processes)
    }

    /// The compiled plan the run executes on `scheduler`, with its memory limit, after the
    /// checks that can refuse it before it starts.
    fn compile(&self, scheduler: &dyn Scheduler) -> Result<Plan> {
        let (graph, outputs) = self.graph_for(scheduler.processes())?;
        let limit = self.limit();
        let mut plan = Plan::new(&graph, &outputs)?.with_memory_limit(limit);
        if let Some(cancel) = &self.cancel {
            plan = plan.with_cancel(cancel.clone());
        }
        if let Some(limit) = limit {
            if let Some((id, bytes)) = plan.largest_footprint()
                && bytes > limit
            {
                return Err(Error::memory(format!(
                    "task {} needs {} for its inputs, output and intermediate blocks, more than the memory limit \
                     of {}: use smaller chunks, or raise Computation::allowed_mem",
                    plan.key(id),
                    dag_core::fmt_bytes(bytes),
                    dag_core::fmt_bytes(limit)
                )));
            }
            // One task at a time in the plan's order is the most frugal schedule there is to
            // fall back on; a limit below its peak cannot be kept by holding tasks back.
            // Schedulers that cannot hold back must fit with all their workers.
            let workers = if scheduler.keeps_memory_limit() {
                1
            } else {
                scheduler.workers()
            };
            let peak = plan.predicted_peak(workers);
            if peak > limit {
                return Err(Error::memory(format!(
                    "the run is predicted to hold {} of values at its peak even {}, more than \
                     the memory limit of {}: use smaller chunks, split the computation, or \
                     raise Computation::allowed_mem",
                    dag_core::fmt_bytes(peak),
                    if workers == 1 {
                        "one task at a time".to_string()
                    } else {
                        format!("on the {} scheduler's {workers} workers", scheduler.name())
                    },
                    dag_core::fmt_bytes(limit)
                )));
            }
        }
        Ok(plan)
    }

    /// What the run will do on `scheduler`, known before it runs: tasks, the predicted peak
    /// of bytes held, the memory limit, the task needing the most memory ([`RunPlan`]).
    ///
    /// ```
    /// use blockarray::{BlockArray, Computation};
    /// let x = BlockArray::<f64>::ones(&[4000, 4000], [1000, 1000])?;
    /// let mut c = Computation::new();
    /// c.add(&(&x + &x.t())?.sum(Some(&[0]), false)?);
    /// c.allowed_mem(Some(1 << 30));
    /// let plan = c.plan(&sched_sync::SyncScheduler::new())?;
    /// assert_eq!(plan.allowed_mem, Some(1 << 30));
    /// assert!(plan.predicted_peak >= 8_000_000, "{plan}"); // at least one 8 MB block
    /// println!("{plan}");
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn plan(&self, scheduler: &dyn Scheduler) -> Result<RunPlan> {
        let (graph, outputs) = self.graph_for(scheduler.processes())?;
        let plan = Plan::new(&graph, &outputs)?;
        Ok(RunPlan {
            tasks: plan.len(),
            workers: scheduler.workers(),
            predicted_peak: plan.predicted_peak(scheduler.workers()),
            allowed_mem: self.limit(),
            largest_task: plan
                .largest_footprint()
                .map(|(id, bytes)| (plan.key(id).clone(), bytes)),
        })
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
        let prepared = self.check_aliasing().and_then(|()| {
            for s in &self.sinks {
                let (processes, index) = (scheduler.processes(), scheduler.process_index());
                sink_hook(&**s, "check_processes", || {
                    s.check_processes(processes, index)
                })?;
            }
            // A process that does not receive the results (another rank of a distributed
            // run gathers them) never writes into their buffers: do not allocate them.
            if scheduler.results_elsewhere().is_none() {
                self.allocate_results()?;
            }
            self.compile(scheduler)
        });
        let prepared = agreed_start(scheduler, prepared);
        let run =
            prepared.and_then(|plan| -> Result<_> { Ok(scheduler.execute(&plan, callbacks)?) });
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                abort_all(&self.sinks);
                return Err(e);
            }
        };
        commit_all(&self.sinks, scheduler)?;
        Ok((
            Results {
                computation: self.id,
                results: self.results,
                elsewhere: scheduler.results_elsewhere(),
            },
            run.stats,
        ))
    }
}

/// The arrays a [`Computation`] computed.
pub struct Results {
    /// The computation whose results these are.
    computation: u64,
    results: Vec<Option<Box<dyn Any + Send + Sync>>>,
    /// Why this process does not hold the results, when a distributed scheduler collected
    /// them in another ([`Scheduler::results_elsewhere`]).
    elsewhere: Option<String>,
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
    /// Whether this process holds the results: always, unless the run was spread over
    /// several processes and they were collected in another (an MPI rank other than the one
    /// they are gathered to).
    pub fn held(&self) -> bool {
        self.elsewhere.is_none()
    }

    /// The array `handle` refers to (each can be taken once).
    ///
    /// In a run spread over several processes, only the processes that collect the results
    /// hold them (see the scheduler's documentation, e.g. rank 0 of an MPI run); elsewhere
    /// this is an `Err` of kind [`Unsupported`](crate::ErrorKind::Unsupported) saying so.
    pub fn take<T: Element>(&mut self, handle: Handle<T>) -> Result<ArrayD<T>> {
        if let Some(why) = &self.elsewhere {
            return Err(Error::new(
                crate::ErrorKind::Unsupported,
                format!(
                    "result {} was computed but is not held by this process: {why}",
                    handle.index
                ),
            ));
        }
        if handle.computation != self.computation {
            return Err(Error::index(format!(
                "result {} belongs to another computation than these results",
                handle.index
            )));
        }
        let slot = self
            .results
            .get_mut(handle.index)
            .ok_or_else(|| Error::index(format!("no result {}", handle.index)))?;
        // The type is checked before the result leaves its slot.
        if slot
            .as_ref()
            .is_some_and(|b| !(b.is::<Arc<Collected<T>>>() || b.is::<Arc<ArraySink<T>>>()))
        {
            return Err(Error::type_error("handle type does not match its result"));
        }
        let boxed = slot
            .take()
            .ok_or_else(|| Error::index(format!("result {} was already taken", handle.index)))?;
        let boxed = match boxed.downcast::<Arc<Collected<T>>>() {
            Ok(collected) => return collected.assemble(),
            Err(other) => other,
        };
        let sink = boxed
            .downcast::<Arc<ArraySink<T>>>()
            .map_err(|_| Error::type_error("handle type does not match its result"))?;
        sink.take()
            .ok_or_else(|| Error::index(format!("result {} was already taken", handle.index)))
    }
}

/// Numbers persisted arrays, so that two snapshots of one expression are never confused.
static PERSISTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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

    /// Compute into an existing array of the same shape. Blocks are written as they are
    /// computed: after an `Err`, `out` may hold some new blocks among its old values.
    pub fn store_into(&self, out: &mut ArrayD<T>) -> Result<()> {
        if out.shape() != self.shape() {
            return Err(Error::shape_mismatch(
                "store destination",
                out.shape(),
                self.shape(),
            ));
        }
        let scheduler = default_scheduler();
        let taken = std::mem::replace(out, ArrayD::from_elem(IxDyn(&[0]), T::default()));
        let sink = Arc::new(ArraySink::new(taken));
        let result = self.store_with(sink.clone(), &*scheduler);
        *out = sink.take().expect("the sink is only emptied here");
        result?;
        match scheduler.results_elsewhere() {
            None => Ok(()),
            Some(why) => Err(Error::new(
                crate::ErrorKind::Unsupported,
                format!("store_into: the blocks were written in another process: {why}"),
            )),
        }
    }

    /// The same array with its chunk sizes known: for an array whose sizes depend on values
    /// (`x.mask(&m)`, `nonzero`, …), one pass computes every block with the default scheduler
    /// and keeps only the blocks' shapes (dask's `compute_chunk_sizes`). An array whose sizes
    /// are known is returned as it is.
    ///
    /// ```
    /// use blockarray::BlockArray;
    /// let x = BlockArray::arange(0i64, 10, 1, 4)?;
    /// let even = x.mask(&x.zip_map(2i64, "is-even", |a, b| a % b == 0)?)?;
    /// assert!(even.reshape(&[5]).is_err()); // its length is not known yet
    /// let even = even.compute_chunk_sizes()?;
    /// assert_eq!(even.shape(), &[5]);
    /// assert_eq!(even.reshape(&[5, 1])?.compute()?.len(), 5);
    /// # Ok::<(), blockarray::Error>(())
    /// ```
    pub fn compute_chunk_sizes(&self) -> Result<BlockArray<T>> {
        self.compute_chunk_sizes_with(&*default_scheduler())
    }

    /// [`compute_chunk_sizes`](Self::compute_chunk_sizes) with `scheduler`. In a distributed
    /// run every process receives the sizes ([`Scheduler::compute_everywhere`]), so every
    /// process goes on to build the same graphs; like any run, it is a collective call.
    pub fn compute_chunk_sizes_with(&self, scheduler: &dyn Scheduler) -> Result<BlockArray<T>> {
        if self.chunks().is_known() {
            return Ok(self.clone());
        }
        let mut t = Tokenizer::new();
        t.write_str(self.name());
        let shapes: Arc<dyn Node> = Arc::new(ShapeNode {
            meta: self
                .node
                .meta()
                .derive("chunk-sizes", t, self.chunks().clone()),
            input: self.node.clone(),
        });
        // Every process lowers, and they agree on it before the collective run (one failing
        // alone would leave the others waiting in it; the task limit depends on each one's
        // memory).
        let max_tasks = default_max_tasks();
        let prepared = all_blocks(&shapes, max_tasks).and_then(|blocks| {
            let lowered = lower(
                &[(shapes, blocks.clone())],
                true,
                max_tasks,
                scheduler.processes(),
            )?;
            Ok((lowered, blocks))
        });
        let ((graph, outputs), blocks) = agreed_start(scheduler, prepared)?;
        let values = scheduler.compute_everywhere(&graph, &outputs)?;
        let mut lens: Vec<Vec<Option<usize>>> = self
            .numblocks()
            .into_iter()
            .map(|n| vec![None; n])
            .collect();
        for (index, v) in blocks.iter().zip(&values) {
            let shape = v.get::<Vec<usize>>()?;
            for (k, &n) in shape.iter().enumerate() {
                if lens[k][index[k]].is_some_and(|l| l != n) {
                    return Err(Error::shape(format!(
                        "block {:?} has length {n} along axis {k}, unlike the other blocks of \
                         its slab",
                        index.as_slice()
                    )));
                }
                lens[k][index[k]] = Some(n);
            }
        }
        // Empty blocks are left out, unless the whole axis is empty (then one block of it).
        let mut kept = Vec::with_capacity(lens.len());
        let mut axes = Vec::with_capacity(lens.len());
        for ax in lens {
            let ax: Vec<usize> = ax.into_iter().map(|l| l.unwrap_or(0)).collect();
            let keep: Vec<usize> = (0..ax.len()).filter(|&i| ax[i] > 0).collect();
            if keep.is_empty() {
                kept.push(vec![0]);
                axes.push(vec![0]);
            } else {
                axes.push(keep.iter().map(|&i| ax[i]).collect());
                kept.push(keep);
            }
        }
        let mut t = Tokenizer::new();
        t.write_str(self.name());
        for k in &kept {
            t.write(k.as_slice());
        }
        let chunks = Chunks::from_blocks(axes)?;
        let meta = self.node.meta().derive("known-chunks", t, chunks);
        Ok(BlockArray::wrap(Arc::new(KnownNode {
            meta,
            input: self.node.clone(),
            kept,
        })))
    }

    /// Compute every block now and keep them in memory: the result is an array with the same
    /// chunks whose graph is just its blocks.
    pub fn persist(&self) -> Result<BlockArray<T>> {
        self.persist_with(&*default_scheduler())
    }

    /// [`persist`](Self::persist) with `scheduler`. Fails before running (an `Err` of kind
    /// [`Memory`](crate::ErrorKind::Memory)) when the array does not fit in the memory
    /// available. Spread over processes (an MPI scheduler) it is a collective call after
    /// which every process holds every block, whatever the scheduler's gathering, so that
    /// all go on with the same persisted array.
    pub fn persist_with(&self, scheduler: &dyn Scheduler) -> Result<BlockArray<T>> {
        let max_tasks = default_max_tasks();
        let prepared = check_fits(
            &format!(
                "persisting an array of shape {}",
                crate::error::fmt_shape(self.shape())
            ),
            self.nbytes(),
        )
        .and_then(|()| all_blocks(&self.node, max_tasks))
        .and_then(|blocks| {
            let lowered = lower(
                &[(self.node.clone(), blocks.clone())],
                true,
                max_tasks,
                scheduler.processes(),
            )?;
            Ok((lowered, blocks))
        });
        // Numbered before the run, so processes that do not hold the blocks count it too and
        // later persists keep one name in every process.
        let number = PERSISTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ((graph, outputs), blocks) = agreed_start(scheduler, prepared)?;
        // Spread over processes, every process receives the blocks (each checked above that
        // the array fits): every process holds the persisted array and goes on with it. With
        // results gathered to the first process only, the others would return an error after
        // the run and leave the first waiting in its next collective call. (A single process
        // always holds its results.)
        let values = if scheduler.processes() > 1 {
            scheduler.compute_everywhere(&graph, &outputs)?
        } else {
            scheduler.compute(&graph, &outputs)?
        };
        // A snapshot: two persists of one expression may hold different values (its source
        // rewritten in between), so each is named apart, by a count of persists in this
        // process (SPMD processes persist in the same order, as they name functions).
        let mut t = Tokenizer::new();
        t.write_str(self.name()).write_u64(number);
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
        Ok(lower(
            &[(
                self.node.clone(),
                all_blocks(&self.node, default_max_tasks())?,
            )],
            false,
            default_max_tasks(),
            1,
        )?
        .0)
    }

    /// The fused graph `compute` runs for the blocks in `blocks` (all when `None`), and the
    /// output keys.
    pub fn lowered(&self, blocks: Option<&[Vec<usize>]>) -> Result<(Graph, Vec<Key>)> {
        let blocks = match blocks {
            None => all_blocks(&self.node, default_max_tasks())?,
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
        lower(&[(self.node.clone(), blocks)], true, default_max_tasks(), 1)
    }

    /// The unfused graph in Graphviz DOT.
    pub fn to_dot(&self) -> Result<String> {
        Ok(self.graph()?.to_dot())
    }
}
