//! Plans: a graph compiled for execution.

use crate::graph::Store;
use crate::{Error, Graph, Key, Placement, Value};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

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
    /// The graph's keys and tasks, shared with it (not copied).
    store: Arc<Store>,
    /// Each task's position in `store`.
    at: Vec<u32>,
    dep_offsets: Vec<u32>,
    dep_ids: Vec<u32>,
    dependent_offsets: Vec<u32>,
    dependent_ids: Vec<u32>,
    outputs: Vec<u32>,
    is_output: Vec<bool>,
    /// Predicted bytes of each task's value (0 where the task gave none).
    sizes: Vec<usize>,
    /// Where each task runs when the plan is spread over processes.
    placements: Vec<Placement>,
    memory_limit: Option<usize>,
    cancel: Option<Cancel>,
}

/// A token that stops a run from another thread (a user's "stop" button, a Ctrl-C handler, a
/// deadline): attach it to a plan ([`Plan::with_cancel`]) and call [`Cancel::cancel`]. The
/// schedulers check it before each task: tasks running then finish, no other starts, every
/// thread is joined, and the run ends with [`Error::Cancelled`]. Cloning shares the token.
///
/// ```
/// use dag_core::{Cancel, ErrorKind, Plan, Scheduler};
/// let (g, root) = dag_core::synthetic::tree(1000, 8);
/// let cancel = Cancel::new();
/// cancel.cancel(); // already cancelled: nothing runs
/// let plan = Plan::new(&g, &[root])?.with_cancel(cancel.clone());
/// let e = sched_sync::SyncScheduler::new().execute(&plan, &dag_core::NoCallbacks).unwrap_err();
/// assert_eq!(e.kind(), ErrorKind::Cancelled);
/// assert!(cancel.is_cancelled());
/// # Ok::<(), dag_core::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stop every run this token is attached to (and every later one).
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
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
        // One pass over the tasks in execution order, reading each once. Keys, functions and
        // labels stay in the graph's store, which the plan shares; sizes and placements are
        // gathered in id order, because schedulers read them in their loops over every task.
        let mut at: Vec<u32> = Vec::with_capacity(n);
        let mut sizes: Vec<usize> = Vec::with_capacity(n);
        let mut placements: Vec<Placement> = Vec::with_capacity(n);
        for &p in &order {
            let i = topo.order[p as usize];
            let task = graph.task_at(i);
            at.push(i as u32);
            sizes.push(task.nbytes().unwrap_or(0));
            placements.push(task.placement());
        }
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
        // Outputs: graph.topo resolved them already, in the order asked for.
        let mut is_output = vec![false; n];
        let outputs: Vec<u32> = topo.roots.iter().map(|&r| new_id[r as usize]).collect();
        for &o in &outputs {
            is_output[o as usize] = true;
        }
        Ok(Plan {
            store: Arc::clone(graph.store()),
            at,
            dep_offsets,
            dep_ids,
            dependent_offsets,
            dependent_ids,
            outputs,
            is_output,
            sizes,
            placements,
            memory_limit: None,
            cancel: None,
        })
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The key of task `id`.
    pub fn key(&self, id: usize) -> &Key {
        &self.store.keys[self.at[id] as usize]
    }

    /// The task `id` runs (in the graph's store).
    fn task(&self, id: usize) -> &crate::Task {
        &self.store.tasks[self.at[id] as usize]
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

    /// The label of task `id` ([`Task::with_label`](crate::Task::with_label)), if it has one.
    pub fn label(&self, id: usize) -> Option<&str> {
        self.task(id).label()
    }

    /// Every task's label in id order, read from the graph's store (the strings are shared,
    /// not copied), for diagnostics that keep them after the run.
    pub(crate) fn labels(&self) -> Vec<Option<std::sync::Arc<str>>> {
        (0..self.len())
            .map(|id| self.task(id).shared_label().cloned())
            .collect()
    }

    /// The operation task `id` belongs to, for profiles and progress per operation: its label
    /// when it has one (a fused task's is its chain of operations, `"ones+sum-chunk"`), else
    /// its key's name without the token ([`Key::prefix`]).
    ///
    /// ```
    /// use dag_core::{Graph, Key, Plan, Task, Value};
    /// let mut g = Graph::new();
    /// g.insert(Key::new("load-9f0c", [0]), Task::literal(Value::new(1u8)));
    /// g.insert("total".into(), Task::new([Key::new("load-9f0c", [0])], |v| Ok(v[0].clone()))
    ///     .with_label("sum"));
    /// let plan = Plan::new(&g, &["total".into()])?;
    /// assert_eq!((plan.operation(0), plan.operation(1)), ("load", "sum"));
    /// # Ok::<(), dag_core::Error>(())
    /// ```
    pub fn operation(&self, id: usize) -> &str {
        self.label(id).unwrap_or_else(|| self.key(id).prefix())
    }

    /// The predicted size of task `id`'s value ([`Task::with_nbytes`](crate::Task::with_nbytes);
    /// 0 when none was given).
    pub fn predicted_nbytes(&self, id: usize) -> usize {
        self.sizes[id]
    }

    /// The bytes task `id` is predicted to hold while it runs on top of its inputs and its
    /// value ([`Task::with_transient`](crate::Task::with_transient); a fused task's
    /// intermediate values).
    pub fn predicted_transient(&self, id: usize) -> usize {
        self.task(id).transient()
    }

    /// Where task `id` runs when the plan is spread over several processes
    /// ([`Task::with_placement`](crate::Task::with_placement)).
    pub fn placement(&self, id: usize) -> Placement {
        self.placements[id]
    }

    /// The same plan with a memory limit: schedulers that can (the threaded one) hold back new
    /// leaf tasks while the bytes of values held would pass `limit`; see
    /// [`memory_limit`](Self::memory_limit).
    #[must_use]
    pub fn with_memory_limit(mut self, limit: Option<usize>) -> Plan {
        self.memory_limit = limit;
        self
    }

    /// The same plan, stopped when `cancel` is cancelled (see [`Cancel`]).
    #[must_use]
    pub fn with_cancel(mut self, cancel: Cancel) -> Plan {
        self.cancel = Some(cancel);
        self
    }

    /// `Err(Error::Cancelled)` if the plan's [`Cancel`] token was cancelled: schedulers call
    /// this before starting each task. `done` is the number of tasks finished so far.
    pub fn check_cancelled(&self, done: usize) -> Result<(), Error> {
        match &self.cancel {
            Some(c) if c.is_cancelled() => Err(Error::Cancelled {
                done,
                total: self.len(),
            }),
            _ => Ok(()),
        }
    }

    /// The limit on bytes of values held at once that schedulers should keep to, if any.
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory_limit
    }

    /// The task needing the most memory on its own — its inputs, its output and its transient
    /// bytes ([`Task::with_transient`](crate::Task::with_transient)), predicted — and that
    /// many bytes (`None` for an empty plan). A memory limit below it cannot be
    /// kept by any schedule.
    pub fn largest_footprint(&self) -> Option<(usize, usize)> {
        (0..self.len())
            .map(|id| {
                // A value read twice by the task is held once.
                let mut deps = self.deps(id).to_vec();
                deps.sort_unstable();
                deps.dedup();
                let inputs = deps
                    .iter()
                    .fold(0usize, |acc, &d| acc.saturating_add(self.sizes[d as usize]));
                let own = self.sizes[id].saturating_add(self.predicted_transient(id));
                (id, inputs.saturating_add(own))
            })
            .max_by_key(|&(id, bytes)| (bytes, std::cmp::Reverse(id)))
    }

    /// The predicted peak of bytes of values held at once when `workers` workers run this plan
    /// the way `sched-threaded` does (1 worker: exactly the synchronous scheduler's order),
    /// from the tasks' predicted sizes.
    ///
    /// The simulation gives every task the same duration and follows the threaded
    /// scheduler's rules: a worker runs the newest task on its own LIFO deque; newly ready
    /// dependents go on top of the deque of the worker that finished their last dependency,
    /// lowest id on top; an idle worker takes a batch of leaves from the shared queue (half
    /// of what is left, at most 32, run in priority order), or else steals the oldest task of
    /// another worker. Values are counted from the end of the task that made them to the end
    /// of their last reader, as the schedulers count them (outputs to the end of the run).
    pub fn predicted_peak(&self, workers: usize) -> usize {
        use std::collections::VecDeque;
        let n = self.len();
        let workers = workers.max(1);
        let mut pending: Vec<u32> = (0..n).map(|i| self.deps(i).len() as u32).collect();
        let mut uses: Vec<u32> = (0..n).map(|i| self.dependents(i).len() as u32).collect();
        let mut injector: VecDeque<u32> = (0..n as u32)
            .filter(|&i| self.deps(i as usize).is_empty())
            .collect();
        let mut deques: Vec<VecDeque<u32>> = vec![VecDeque::new(); workers];
        let mut running: Vec<Option<u32>> = vec![None; workers];
        // (Sums in u128: sizes saturate at usize::MAX, and two of them would overflow.)
        let (mut live, mut peak, mut done) = (0u128, 0u128, 0usize);
        while done < n {
            // Idle workers take work, in worker order.
            for w in 0..workers {
                if running[w].is_some() {
                    continue;
                }
                let next = deques[w].pop_back().or_else(|| {
                    if !injector.is_empty() {
                        let batch = injector.len().div_ceil(2).min(32);
                        let first = injector.pop_front();
                        let rest: Vec<u32> = injector.drain(..batch - 1).collect();
                        deques[w].extend(rest.into_iter().rev());
                        first
                    } else {
                        (1..workers).find_map(|off| deques[(w + off) % workers].pop_front())
                    }
                });
                running[w] = next;
            }
            // Every running task finishes; workers in order.
            for w in 0..workers {
                let Some(id) = running[w].take() else {
                    continue;
                };
                let id = id as usize;
                done += 1;
                live += self.sizes[id] as u128;
                peak = peak.max(live);
                if self.dependents(id).is_empty() && !self.is_output[id] {
                    live -= self.sizes[id] as u128;
                }
                for &d in self.deps(id) {
                    let d = d as usize;
                    uses[d] -= 1;
                    if uses[d] == 0 && !self.is_output[d] {
                        live -= self.sizes[d] as u128;
                    }
                }
                for &t in self.dependents(id).iter().rev() {
                    pending[t as usize] -= 1;
                    if pending[t as usize] == 0 {
                        deques[w].push_back(t);
                    }
                }
            }
        }
        usize::try_from(peak).unwrap_or(usize::MAX)
    }

    /// Run task `id` on its dependencies' values. An error or a panic becomes
    /// [`Error::TaskFailed`] naming the key; the panic does not escape.
    pub fn run(&self, id: usize, inputs: &[Value]) -> Result<Value, Error> {
        match catch_unwind(AssertUnwindSafe(|| self.task(id).body().call(inputs))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::TaskFailed {
                key: self.key(id).clone(),
                message: e.to_string(),
                panicked: false,
            }),
            Err(payload) => Err(Error::TaskFailed {
                key: self.key(id).clone(),
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
