//! Plans: a graph compiled for execution.

use crate::task::Body;
use crate::{Error, Graph, Key, Value};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A graph culled to the requested outputs, validated, and laid out for a scheduler.
///
/// Tasks get dense ids `0..len()` **in the static execution order**: every task's dependencies
/// have smaller ids, and running the ids in increasing order finishes one branch of a
/// reduction before starting the next, and lets every reader of a value run as soon as it can
/// (see `Plan::new`). Ids double as priorities for parallel schedulers: lower runs first.
///
/// ```
/// use dag_core::{Graph, Plan, Task, Value};
/// let mut g = Graph::new();
/// g.insert("a".into(), Task::literal(Value::new(1i64)));
/// g.insert("b".into(), Task::new(["a".into()], |v| Ok(Value::new(v[0].get::<i64>()? + 1))));
/// g.insert("unused".into(), Task::literal(Value::new(0i64)));
/// let plan = Plan::new(&g, &["b".into()]).unwrap();
/// assert_eq!(plan.len(), 2);
/// assert_eq!(plan.deps(1), &[0]);
/// ```
pub struct Plan {
    keys: Vec<Key>,
    bodies: Vec<Body>,
    dep_offsets: Vec<u32>,
    dep_ids: Vec<u32>,
    dependent_offsets: Vec<u32>,
    dependent_ids: Vec<u32>,
    outputs: Vec<u32>,
    is_output: Vec<bool>,
}

impl Plan {
    /// Compile the part of `graph` that `outputs` need. Fails, naming the keys, on a missing
    /// output, a missing dependency or a cycle.
    pub fn new(graph: &Graph, outputs: &[Key]) -> Result<Plan, Error> {
        let topo = graph.topo(outputs)?;
        let n = topo.order.len();
        let topo_deps = |p: usize| {
            &topo.dep_ids[topo.dep_offsets[p] as usize..topo.dep_offsets[p + 1] as usize]
        };
        let (topo_dependent_offsets, topo_dependent_ids) =
            invert(n, |p| topo_deps(p).iter().copied());
        // The execution order: one worker of a work-stealing scheduler, simulated. Tasks without
        // dependencies start in depth-first priority order; every task that becomes ready runs
        // next (LIFO), so a value is consumed by all its readers as soon as they can run. Plain
        // depth-first order would finish the first output's whole tree before starting the
        // next, holding every input the outputs share (sum, mean and std of one array).
        let mut pending: Vec<u32> = (0..n).map(|p| topo_deps(p).len() as u32).collect();
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let leaf_list: Vec<usize> = (0..n).filter(|&p| pending[p] == 0).collect();
        let mut leaves = leaf_list.into_iter();
        let mut ready: Vec<u32> = Vec::new();
        loop {
            let p = match ready.pop() {
                Some(p) => p as usize,
                None => match leaves.next() {
                    Some(p) => p,
                    None => break,
                },
            };
            order.push(p as u32);
            let ds = &topo_dependent_ids
                [topo_dependent_offsets[p] as usize..topo_dependent_offsets[p + 1] as usize];
            for &d in ds.iter().rev() {
                pending[d as usize] -= 1;
                if pending[d as usize] == 0 {
                    ready.push(d);
                }
            }
        }
        debug_assert_eq!(order.len(), n, "an acyclic graph runs every task");
        let mut new_id = vec![0u32; n];
        for (i, &p) in order.iter().enumerate() {
            new_id[p as usize] = i as u32;
        }
        let keys: Vec<Key> = order
            .iter()
            .map(|&p| graph.key_at(topo.order[p as usize]).clone())
            .collect();
        let bodies: Vec<Body> = order
            .iter()
            .map(|&p| graph.task_at(topo.order[p as usize]).body().clone())
            .collect();
        let mut dep_offsets = Vec::with_capacity(n + 1);
        let mut dep_ids = Vec::with_capacity(topo.dep_ids.len());
        dep_offsets.push(0u32);
        for &p in &order {
            dep_ids.extend(topo_deps(p as usize).iter().map(|&d| new_id[d as usize]));
            dep_offsets.push(dep_ids.len() as u32);
        }
        let (dependent_offsets, dependent_ids) = invert(n, |t| {
            dep_ids[dep_offsets[t] as usize..dep_offsets[t + 1] as usize]
                .iter()
                .copied()
        });
        // Outputs: graph.topo resolved them already, so the lookups succeed.
        let mut id_of = rustc_hash::FxHashMap::default();
        id_of.reserve(outputs.len());
        let mut is_output = vec![false; n];
        let wanted: rustc_hash::FxHashSet<&Key> = outputs.iter().collect();
        for (id, k) in keys.iter().enumerate() {
            if wanted.contains(k) {
                id_of.insert(k, id as u32);
                is_output[id] = true;
            }
        }
        let outputs = outputs.iter().map(|k| id_of[k]).collect();
        Ok(Plan {
            bodies,
            dep_offsets,
            dep_ids,
            dependent_offsets,
            dependent_ids,
            outputs,
            is_output,
            keys,
        })
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of task `id`.
    pub fn key(&self, id: usize) -> &Key {
        &self.keys[id]
    }

    /// The dependencies of task `id`, in the order its function receives them (repeats kept).
    pub fn deps(&self, id: usize) -> &[u32] {
        &self.dep_ids[self.dep_offsets[id] as usize..self.dep_offsets[id + 1] as usize]
    }

    /// The tasks that depend on `id`, ascending (a task that lists `id` twice appears twice).
    pub fn dependents(&self, id: usize) -> &[u32] {
        &self.dependent_ids
            [self.dependent_offsets[id] as usize..self.dependent_offsets[id + 1] as usize]
    }

    /// The ids of the requested outputs, in the order they were requested.
    pub fn outputs(&self) -> &[u32] {
        &self.outputs
    }

    /// Whether task `id` is a requested output (its value is kept to the end).
    pub fn is_output(&self, id: usize) -> bool {
        self.is_output[id]
    }

    /// Run task `id` on its dependencies' values. An error or a panic becomes
    /// [`Error::TaskFailed`] naming the key; the panic does not escape.
    pub fn run(&self, id: usize, inputs: &[Value]) -> Result<Value, Error> {
        match catch_unwind(AssertUnwindSafe(|| self.bodies[id].call(inputs))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::TaskFailed {
                key: self.keys[id].clone(),
                message: e.to_string(),
                panicked: false,
            }),
            Err(payload) => Err(Error::TaskFailed {
                key: self.keys[id].clone(),
                message: panic_message(&*payload),
                panicked: true,
            }),
        }
    }
}

/// The message of a caught panic (the `&str` or `String` it was raised with).
///
/// Schedulers use it to turn a panic anywhere in a run — a task, a callback, a value's `Drop`
/// — into an [`Error`] instead of letting it unwind through (or kill) a worker.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// The reverse edges of a graph of `n` tasks given each task's dependencies, as CSR arrays:
/// each task's dependents in ascending order (a task listing a dependency twice appears twice).
fn invert<I: Iterator<Item = u32>>(n: usize, deps: impl Fn(usize) -> I) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; n + 1];
    for t in 0..n {
        for d in deps(t) {
            offsets[d as usize + 1] += 1;
        }
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut ids = vec![0u32; offsets[n] as usize];
    for t in 0..n {
        for d in deps(t) {
            ids[fill[d as usize] as usize] = t as u32;
            fill[d as usize] += 1;
        }
    }
    (offsets, ids)
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan({} tasks, {} edges, {} outputs)",
            self.len(),
            self.dep_ids.len(),
            self.outputs.len()
        )
    }
}
