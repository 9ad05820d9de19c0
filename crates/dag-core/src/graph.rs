//! Graphs: keys mapped to tasks, with validation, culling, fusion and export.

use crate::fuse::{FusionSource, fuse_into, single_dependents};
use crate::task::Body;
use crate::{Error, Key, Placement, Task, Value};
use hashbrown::HashTable;
use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;

/// A task graph: a map from keys to tasks, in insertion order.
///
/// Building a graph does no checking; [`Graph::validate`], [`Graph::cull`] and
/// [`Plan::new`](crate::Plan::new) find missing dependencies and cycles and name the keys.
///
/// ```
/// use dag_core::{Graph, Key, Task, Value};
/// let mut g = Graph::new();
/// g.insert(Key::scalar("x"), Task::literal(Value::new(20i64)));
/// g.insert(Key::scalar("y"), Task::new([Key::scalar("x")], |v| {
///     Ok(Value::new(*v[0].get::<i64>()? * 2 + 2))
/// }));
/// g.validate().unwrap();
/// assert_eq!(g.len(), 2);
/// assert!(g.to_string().contains("y = y(x)"));
/// ```
#[derive(Clone, Default)]
pub struct Graph {
    /// The keys and tasks, in insertion order, shared with the plans made from this graph: a
    /// plan reads them in place instead of cloning every key and function (a million atomic
    /// reference-count updates, and as many again when the plan is dropped). A graph changed
    /// while a plan still shares them copies them first (`Arc::make_mut`).
    store: Arc<Store>,
    /// The hash of each key (for the index, and to grow it without rehashing keys).
    hashes: Vec<u64>,
    /// Key → position, as positions only: 4 bytes and a control byte per slot instead of a
    /// whole key, so the table of a million-task graph is ~10 MB (mostly in cache) rather
    /// than ~70 MB, and an insert or lookup misses the cache far less often. Keys are
    /// compared in `store.keys`, which lookups in dependency order read nearly sequentially.
    index: HashTable<u32>,
}

/// A graph's keys and tasks, by position.
#[derive(Clone, Default)]
pub(crate) struct Store {
    pub(crate) keys: Vec<Key>,
    pub(crate) tasks: Vec<Task>,
}

/// A graph's parts held for inserting (see [`Graph::inserter`]).
pub(crate) struct Inserter<'g> {
    keys: &'g mut Vec<Key>,
    tasks: &'g mut Vec<Task>,
    hashes: &'g mut Vec<u64>,
    index: &'g mut HashTable<u32>,
}

impl Inserter<'_> {
    /// [`Graph::insert`].
    pub(crate) fn insert(&mut self, key: Key, task: Task) -> Option<Task> {
        let Inserter {
            keys,
            tasks,
            hashes,
            index,
        } = self;
        // One hash and one probe of the index (the table is large and cold for big graphs).
        let h = key_hash(&key);
        match index.entry(h, |&p| keys[p as usize] == key, |&p| hashes[p as usize]) {
            hashbrown::hash_table::Entry::Occupied(e) => {
                Some(std::mem::replace(&mut tasks[*e.get() as usize], task))
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                let p = u32::try_from(keys.len()).expect("a graph holds fewer than 2³² tasks");
                e.insert(p);
                keys.push(key);
                hashes.push(h);
                tasks.push(task);
                None
            }
        }
    }
}

/// Tasks added in order, as by [`Graph::insert`] (a later task under a key replaces an
/// earlier one).
impl Extend<(Key, Task)> for Graph {
    fn extend<I: IntoIterator<Item = (Key, Task)>>(&mut self, iter: I) {
        let mut inserter = self.inserter();
        for (key, task) in iter {
            inserter.insert(key, task);
        }
    }
}

/// The hash of a key in a graph's index, laid out for the order graphs are built and walked in.
///
/// Keys are usually made in runs: the blocks of one array, or the leaves under one reduction
/// task, one after the other along the last axis. A well-mixed hash scatters such a run over
/// the whole index, so for a large graph every insert and every lookup is a cache miss (on
/// the control bytes, then on the slot): 60–75 % of the time of building a million-task
/// graph. So the key's last block index is split: its high bits are hashed with the name
/// and the other indices into a random *base*, and its low 4 bits are added to that base.
/// Sixteen keys that differ only there take sixteen adjacent buckets of `hashbrown`'s table,
/// whose probe position is the hash's low bits, and the next sixteen start elsewhere: at
/// most one new cache line per sixteen keys, and runs too short to pile up into the long
/// clusters a purely sequential hash makes when several arrays share one table. The top 7
/// bits, which `hashbrown` keeps as each slot's tag to skip non-matching slots, are mixed
/// from the whole key, so neighbours in a run still have different tags.
fn key_hash(key: &Key) -> u64 {
    const LOW: u64 = u64::MAX >> 7;
    const RUN: usize = 16;
    let mut h = rustc_hash::FxHasher::default();
    h.write(key.name().as_bytes());
    let (last, rest) = key.index().split_last().unwrap_or((&0, &[]));
    h.write_usize(key.index().len());
    for &i in rest {
        h.write_usize(i);
    }
    h.write_usize(last / RUN);
    let base = crate::key::mix(h.finish());
    let offset = (last % RUN) as u64;
    let tag = (base ^ offset.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & !LOW;
    (base.wrapping_add(offset) & LOW) | tag
}

/// The part of a graph reachable from some roots, in a memory-friendly post order.
///
/// `order[i]` is a graph position; the dependencies of `order[i]` are
/// `dep_ids[dep_offsets[i]..dep_offsets[i + 1]]`, as positions in `order`, in the order the
/// task lists them. Every dependency comes before its dependents. `roots[j]` is the position
/// in `order` of the `j`-th root asked for (so callers need not look keys up again).
pub(crate) struct Topo {
    pub order: Vec<usize>,
    pub dep_offsets: Vec<u32>,
    pub dep_ids: Vec<u32>,
    pub roots: Vec<u32>,
}

/// A graph's tasks in topological order, numbered by position, as fusion reads them.
struct TopoTasks<'g> {
    graph: &'g Graph,
    topo: &'g Topo,
}

impl TopoTasks<'_> {
    /// The task numbered `p` in topological order.
    fn task_ref(&self, p: usize) -> &Task {
        self.graph.task_at(self.topo.order[p])
    }
}

impl FusionSource for TopoTasks<'_> {
    fn len(&self) -> usize {
        self.topo.order.len()
    }
    fn deps(&self, p: usize) -> &[u32] {
        &self.topo.dep_ids[self.topo.dep_offsets[p] as usize..self.topo.dep_offsets[p + 1] as usize]
    }
    fn key(&self, p: usize) -> Key {
        self.graph.store.keys[self.topo.order[p]].clone()
    }
    fn body(&self, p: usize) -> Body {
        self.task_ref(p).body().clone()
    }
    fn task(&self, p: usize) -> Task {
        self.task_ref(p).clone()
    }
    fn nbytes(&self, p: usize) -> Option<usize> {
        self.task_ref(p).nbytes()
    }
    fn transient(&self, p: usize) -> usize {
        self.task_ref(p).transient()
    }
    fn placement(&self, p: usize) -> crate::Placement {
        self.task_ref(p).placement()
    }
    fn name(&self, p: usize) -> &str {
        self.task_ref(p)
            .label()
            .unwrap_or_else(|| self.graph.store.keys[self.topo.order[p]].prefix())
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// An empty graph with room for `n` tasks.
    pub fn with_capacity(n: usize) -> Graph {
        Graph {
            store: Arc::new(Store {
                keys: Vec::with_capacity(n),
                tasks: Vec::with_capacity(n),
            }),
            hashes: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
        }
    }

    /// The position of `key`, if it has a task.
    fn find(&self, key: &Key) -> Option<usize> {
        self.index
            .find(key_hash(key), |&p| self.store.keys[p as usize] == *key)
            .map(|&p| p as usize)
    }

    /// Add a task under `key`, returning the task it replaced, if any (like a map insert).
    pub fn insert(&mut self, key: Key, task: Task) -> Option<Task> {
        self.inserter().insert(key, task)
    }

    /// Exclusive access to the store for many inserts: one `Arc::make_mut` (an atomic
    /// compare-and-swap, which also waits for every pending store) instead of one per insert.
    pub(crate) fn inserter(&mut self) -> Inserter<'_> {
        let Graph {
            store,
            hashes,
            index,
        } = self;
        let Store { keys, tasks } = Arc::make_mut(store);
        Inserter {
            keys,
            tasks,
            hashes,
            index,
        }
    }

    /// Add a literal value under `key`.
    pub fn insert_value(&mut self, key: Key, value: Value) -> Option<Task> {
        self.insert(key, Task::literal(value))
    }

    /// Add every task of `other` (tasks of `other` replace tasks with the same key).
    pub fn merge(&mut self, other: Graph) {
        let Store { keys, tasks } = Arc::unwrap_or_clone(other.store);
        self.extend(keys.into_iter().zip(tasks));
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.store.keys.len()
    }

    /// Whether the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.store.keys.is_empty()
    }

    /// Whether `key` has a task.
    pub fn contains_key(&self, key: &Key) -> bool {
        self.find(key).is_some()
    }

    /// The task under `key`.
    pub fn get(&self, key: &Key) -> Option<&Task> {
        self.find(key).map(|i| &self.store.tasks[i])
    }

    /// All keys, in insertion order.
    pub fn keys(&self) -> &[Key] {
        &self.store.keys
    }

    /// All (key, task) pairs, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Key, &Task)> + '_ {
        self.store.keys.iter().zip(&self.store.tasks)
    }

    pub(crate) fn task_at(&self, i: usize) -> &Task {
        &self.store.tasks[i]
    }

    /// The keys and tasks, to share with a plan.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn position(&self, key: &Key) -> Result<usize, Error> {
        self.find(key)
            .ok_or_else(|| Error::MissingKey { key: key.clone() })
    }

    /// Check that every dependency exists and that there is no cycle.
    pub fn validate(&self) -> Result<(), Error> {
        self.topo_from((0..self.len()).collect()).map(|_| ())
    }

    /// The graph restricted to the tasks that `outputs` need, in execution order.
    pub fn cull(&self, outputs: &[Key]) -> Result<Graph, Error> {
        let topo = self.topo(outputs)?;
        let mut g = Graph::with_capacity(topo.order.len());
        g.extend(
            topo.order
                .iter()
                .map(|&i| (self.store.keys[i].clone(), self.store.tasks[i].clone())),
        );
        Ok(g)
    }

    /// Fuse linear chains among the tasks `outputs` need.
    ///
    /// A task is merged into its dependent when it has exactly one dependent, is not an output,
    /// and that dependent has no other dependency. A chain `a → b → c` becomes one task under
    /// the key `c` that runs the three functions in turn, so the intermediate values never
    /// reach the scheduler. The result is culled to `outputs`.
    ///
    /// ```
    /// use dag_core::{Graph, Task, Value};
    /// let mut g = Graph::new();
    /// g.insert("a".into(), Task::literal(Value::new(1i64)));
    /// g.insert("b".into(), Task::new(["a".into()], |v| Ok(Value::new(v[0].get::<i64>()? + 1))));
    /// g.insert("c".into(), Task::new(["b".into()], |v| Ok(Value::new(v[0].get::<i64>()? * 10))));
    /// let fused = g.fuse(&["c".into()]).unwrap();
    /// assert_eq!(fused.len(), 1);
    /// ```
    pub fn fuse(&self, outputs: &[Key]) -> Result<Graph, Error> {
        self.fuse_where(outputs, |_, _, _, consumer| consumer.deps().len() == 1)
    }

    /// Inline tasks into their single dependent where
    /// `merge(key, task, dependent_key, dependent)` allows.
    ///
    /// A task that is not an output and whose only dependent (listing it once or more) is
    /// `dependent` is merged into it when `merge` returns true; merges repeat, so a whole tree
    /// of producers can collapse into the task that consumes it. The merged task keeps the
    /// consumer's key, takes the producers' external dependencies, and runs the producers'
    /// functions then the consumer's, dropping each intermediate as soon as it is used. This
    /// is blockwise fusion: `exp(x) + sin(y)` becomes one task per block that reads blocks of
    /// `x` and `y`. Restrict `merge` to cheap tasks, or a reduction tree would collapse into
    /// one task and lose its parallelism. A task pinned to a process (a
    /// [`Placement`](crate::Placement) other than `Anywhere`) is only merged into a dependent
    /// of the same placement, so side effects stay in their process. The result is culled to
    /// `outputs`.
    pub fn fuse_where<F>(&self, outputs: &[Key], merge: F) -> Result<Graph, Error>
    where
        F: Fn(&Key, &Task, &Key, &Task) -> bool,
    {
        let topo = self.topo(outputs)?;
        let n = topo.order.len();
        let src = TopoTasks {
            graph: self,
            topo: &topo,
        };
        let only = single_dependents(&src);
        let mut is_output = vec![false; n];
        // Graph index → position in the topological order (every output is in it).
        let mut pos = vec![u32::MAX; self.store.keys.len()];
        for (p, &i) in topo.order.iter().enumerate() {
            pos[i] = p as u32;
        }
        for k in outputs {
            is_output[pos[self.position(k)?] as usize] = true;
        }
        let task = |p: usize| &self.store.tasks[topo.order[p]];
        let key = |p: usize| &self.store.keys[topo.order[p]];
        let absorbed: Vec<bool> = (0..n)
            .map(|p| {
                // A producer pinned to a process (a write into a file or into memory) is
                // never folded into a task that could run elsewhere.
                only[p].is_some_and(|c| {
                    let pinned = task(p).placement();
                    !is_output[p]
                        && (pinned == Placement::Anywhere || pinned == task(c as usize).placement())
                        && merge(key(p), task(p), key(c as usize), task(c as usize))
                })
            })
            .collect();
        let mut g = Graph::with_capacity(n);
        fuse_into(&src, &absorbed, &mut g);
        Ok(g)
    }

    /// The graph in Graphviz DOT format: one node per task (labelled with its key, and its task
    /// label when it has one), one edge from each dependency to its dependent. Built with
    /// `petgraph`.
    pub fn to_dot(&self) -> String {
        let mut pg = petgraph::Graph::<String, &str>::with_capacity(self.len(), self.len());
        let nodes: Vec<_> = self
            .iter()
            .map(|(k, t)| {
                pg.add_node(match t.label() {
                    Some(l) => format!("{k}\n{l}"),
                    None => k.to_string(),
                })
            })
            .collect();
        for (i, t) in self.store.tasks.iter().enumerate() {
            for d in t.deps() {
                if let Some(j) = self.find(d) {
                    pg.add_edge(nodes[j], nodes[i], "");
                }
            }
        }
        format!(
            "{}",
            petgraph::dot::Dot::with_config(&pg, &[petgraph::dot::Config::EdgeNoLabel])
        )
    }

    pub(crate) fn topo(&self, roots: &[Key]) -> Result<Topo, Error> {
        let roots = roots
            .iter()
            .map(|k| self.position(k))
            .collect::<Result<Vec<_>, _>>()?;
        self.topo_from(roots)
    }

    /// Depth-first post order from `roots`, resolving dependencies, detecting missing keys and
    /// cycles. Iterative, so a chain of millions of tasks does not overflow the stack.
    ///
    /// Ordering heuristic (in the spirit of dask.order): each task's dependencies are visited
    /// depth-first, so one branch of a reduction is finished, and its inputs can be freed,
    /// before the next one starts; among siblings, those with more dependencies of their own
    /// are visited first (Sethi–Ullman: start the expensive subtree while little is held), and
    /// cheap leaves are left until just before the task that consumes them.
    fn topo_from(&self, roots: Vec<usize>) -> Result<Topo, Error> {
        let n = self.len();
        let mut walk = Walk {
            state: vec![NEW; n],
            stack: Vec::new(),
            resolved: Vec::new(),
            visit: Vec::new(),
            last: usize::MAX,
        };
        let mut plan_id = vec![u32::MAX; n];
        let mut order = Vec::new();
        let mut dep_offsets = vec![0u32];
        let mut dep_ids = Vec::new();

        for &root in &roots {
            if walk.state[root] != NEW {
                continue;
            }
            self.push_frame(root, &mut walk)?;
            while let Some(top) = walk.stack.last_mut() {
                let nvisit = walk.visit.len() - top.visit_at;
                if top.next < nvisit {
                    let child = walk.visit[top.visit_at + top.next];
                    top.next += 1;
                    match walk.state[child] {
                        NEW => self.push_frame(child, &mut walk)?,
                        ACTIVE => {
                            let from = walk
                                .stack
                                .iter()
                                .position(|f| f.node == child)
                                .expect("active node is on the stack");
                            let mut keys: Vec<Key> = walk.stack[from..]
                                .iter()
                                .map(|f| self.store.keys[f.node].clone())
                                .collect();
                            keys.push(self.store.keys[child].clone());
                            return Err(Error::Cycle { keys });
                        }
                        _ => {}
                    }
                    continue;
                }
                let frame = walk.stack.pop().expect("non-empty stack");
                let id = u32::try_from(order.len())
                    .map_err(|_| Error::Scheduler("more than 2^32 tasks".into()))?;
                for &d in &walk.resolved[frame.resolved_at..] {
                    dep_ids.push(plan_id[d]);
                }
                dep_offsets.push(dep_ids.len() as u32);
                plan_id[frame.node] = id;
                walk.state[frame.node] = DONE;
                order.push(frame.node);
                walk.resolved.truncate(frame.resolved_at);
                walk.visit.truncate(frame.visit_at);
            }
        }
        Ok(Topo {
            order,
            dep_offsets,
            dep_ids,
            roots: roots.iter().map(|&r| plan_id[r]).collect(),
        })
    }

    /// Resolve `node`'s dependencies and push its frame. The dependency after the one
    /// resolved last (`walk.last`, across calls) is tried before the index: graphs are mostly
    /// built in the order their tasks are read (an array's blocks one after the other, a
    /// reduction's inputs together), so the next dependency is usually the key inserted just
    /// after it, and one comparison with that key replaces a hash and two probes of the index.
    fn push_frame(&self, node: usize, walk: &mut Walk) -> Result<(), Error> {
        let resolved_at = walk.resolved.len();
        let visit_at = walk.visit.len();
        for dep in self.store.tasks[node].deps() {
            let next = walk.last.wrapping_add(1);
            let found = match self.store.keys.get(next) {
                Some(k) if k == dep => Some(next),
                _ => self.find(dep),
            };
            let Some(d) = found else {
                return Err(Error::MissingDependency {
                    key: self.store.keys[node].clone(),
                    dependency: dep.clone(),
                });
            };
            walk.last = d;
            walk.resolved.push(d);
            walk.visit.push(d);
        }
        // Stable: siblings with more dependencies first, otherwise in listed order.
        walk.visit[visit_at..]
            .sort_by_key(|&d| std::cmp::Reverse(self.store.tasks[d].deps().len()));
        walk.state[node] = ACTIVE;
        walk.stack.push(Frame {
            node,
            resolved_at,
            visit_at,
            next: 0,
        });
        Ok(())
    }
}

/// A task `topo_from` has not reached yet.
const NEW: u8 = 0;
/// A task on `topo_from`'s stack (reaching it again is a cycle).
const ACTIVE: u8 = 1;
/// A task `topo_from` has numbered.
const DONE: u8 = 2;

/// `topo_from`'s state: each task's progress (`NEW`, `ACTIVE`, `DONE`), the frames being
/// expanded, the resolved dependencies and the visit order of the tasks on the stack, and the
/// position of the dependency resolved last.
struct Walk {
    state: Vec<u8>,
    stack: Vec<Frame>,
    resolved: Vec<usize>,
    visit: Vec<usize>,
    last: usize,
}

/// One task being expanded by `topo_from`: its graph position, where its resolved
/// dependencies start in `resolved`, where its visit order starts in `visit`, and how many of
/// those have been visited.
struct Frame {
    node: usize,
    resolved_at: usize,
    visit_at: usize,
    next: usize,
}

impl fmt::Display for Graph {
    /// One line per task, like dask's graph dict: `key = label(dep, dep)` or
    /// `key = <literal type, N bytes>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, t) in self.iter() {
            match t.body() {
                Body::Literal(v) => {
                    writeln!(f, "{k} = <{}, {} bytes>", v.type_name(), v.nbytes())?;
                }
                Body::Func(_) => {
                    write!(f, "{k} = {}(", t.label().unwrap_or(k.prefix()))?;
                    for (i, d) in t.deps().iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{d}")?;
                    }
                    writeln!(f, ")")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph({} tasks)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: u64 = u64::MAX >> 7;

    #[test]
    fn a_run_of_sixteen_keys_takes_adjacent_buckets_with_different_tags() {
        let name: Arc<str> = Arc::from("ones-0123456789abcdef");
        for row in [0usize, 3, 1000] {
            for start in [0usize, 16, 4096] {
                let hashes: Vec<u64> = (start..start + 16)
                    .map(|j| key_hash(&Key::with_shared_name(&name, &[row, j])))
                    .collect();
                for (o, h) in hashes.iter().enumerate() {
                    assert_eq!(
                        h & LOW,
                        (hashes[0] + o as u64) & LOW,
                        "row {row}, column {start}+{o}"
                    );
                }
                let mut tags: Vec<u64> = hashes.iter().map(|h| h >> 57).collect();
                tags.sort_unstable();
                tags.dedup();
                assert!(tags.len() >= 12, "tags of one run mostly differ: {tags:?}");
            }
        }
    }

    #[test]
    fn runs_start_apart_for_other_names_rows_and_sixteens() {
        let a: Arc<str> = Arc::from("a-1");
        let b: Arc<str> = Arc::from("b-1");
        let base = |name: &Arc<str>, ix: &[usize]| key_hash(&Key::with_shared_name(name, ix)) & LOW;
        let bases = [
            base(&a, &[0, 0]),
            base(&b, &[0, 0]),
            base(&a, &[1, 0]),
            base(&a, &[0, 16]),
            base(&a, &[0]),
            key_hash(&Key::scalar("a-1")) & LOW,
        ];
        for (i, x) in bases.iter().enumerate() {
            for y in &bases[i + 1..] {
                // Far apart in a table of 2²⁰ buckets, not in the same or a neighbouring run.
                let d = (x.wrapping_sub(*y) & ((1 << 20) - 1))
                    .min(y.wrapping_sub(*x) & ((1 << 20) - 1));
                assert!(d > 64, "bases {x:#x} and {y:#x} are {d} buckets apart");
            }
        }
    }
}
