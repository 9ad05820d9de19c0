//! The `Scheduler` and `Callbacks` traits: the boundary between graphs and executors.

use crate::{Error, Graph, Key, Plan, Value};
use std::sync::Arc;
use std::time::Duration;

/// What a run measured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Tasks executed.
    pub tasks: usize,
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// The largest total of `nbytes` of values held at once (intermediates and outputs).
    pub peak_bytes: usize,
    /// Worker threads used.
    pub threads: usize,
}

impl RunStats {
    /// Wall time per task: the scheduler's overhead when the tasks are trivial.
    pub fn per_task(&self) -> Duration {
        if self.tasks == 0 {
            Duration::ZERO
        } else {
            self.wall / self.tasks as u32
        }
    }
}

/// The result of [`Scheduler::execute`]: one value per requested output, and the run's stats.
#[derive(Debug)]
pub struct Execution {
    /// The output values, in the order of [`Plan::outputs`].
    pub values: Vec<Value>,
    /// What the run measured.
    pub stats: RunStats,
}

/// Hooks called by schedulers as a run progresses: progress bars, profilers, dashboards.
///
/// All methods have empty defaults. They are called from worker threads, concurrently, so they
/// take `&self`. Keep them cheap: they run once per task.
pub trait Callbacks: Send + Sync {
    /// The run is about to start.
    fn on_start(&self, _plan: &Plan) {}
    /// A task is about to run.
    fn on_task_start(&self, _key: &Key) {}
    /// A task finished in `elapsed`, producing a value of `nbytes` bytes.
    fn on_task_finish(&self, _key: &Key, _elapsed: Duration, _nbytes: usize) {}
    /// A task failed (it returned `Err` or panicked).
    fn on_task_fail(&self, _key: &Key, _error: &Error) {}
    /// The run ended; `stats` is `None` when it failed.
    fn on_finish(&self, _stats: Option<&RunStats>) {}
    /// Whether the per-task hooks do anything. Schedulers skip timing tasks when this is false.
    fn per_task(&self) -> bool {
        true
    }
}

/// Callbacks that do nothing (and tell schedulers not to time tasks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallbacks;

impl Callbacks for NoCallbacks {
    fn per_task(&self) -> bool {
        false
    }
}

/// Several callbacks called in turn.
#[derive(Clone, Default)]
pub struct CallbackSet(pub Vec<Arc<dyn Callbacks>>);

impl Callbacks for CallbackSet {
    fn on_start(&self, plan: &Plan) {
        self.0.iter().for_each(|c| c.on_start(plan));
    }
    fn on_task_start(&self, key: &Key) {
        self.0.iter().for_each(|c| c.on_task_start(key));
    }
    fn on_task_finish(&self, key: &Key, elapsed: Duration, nbytes: usize) {
        self.0
            .iter()
            .for_each(|c| c.on_task_finish(key, elapsed, nbytes));
    }
    fn on_task_fail(&self, key: &Key, error: &Error) {
        self.0.iter().for_each(|c| c.on_task_fail(key, error));
    }
    fn on_finish(&self, stats: Option<&RunStats>) {
        self.0.iter().for_each(|c| c.on_finish(stats));
    }
    fn per_task(&self) -> bool {
        self.0.iter().any(|c| c.per_task())
    }
}

/// Runs plans. Object safe: pass schedulers around as `&dyn Scheduler` or
/// `Arc<dyn Scheduler>`.
///
/// Contract for implementations:
/// - run every task of the plan once, after its dependencies, and return the output values in
///   the order of [`Plan::outputs`];
/// - drop every intermediate value as soon as its last dependent has run;
/// - on the first failure ([`Plan::run`] gives the `Err` naming the key), start no new task,
///   let running ones finish, and return that error; leave no thread behind;
/// - report the peak total of live value bytes in [`RunStats::peak_bytes`].
pub trait Scheduler: Send + Sync {
    /// A short name for reports (`"sync"`, `"threaded"`).
    fn name(&self) -> &str;

    /// Run a compiled plan.
    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error>;

    /// How many tasks this scheduler runs at once (to predict a plan's peak memory with
    /// [`Plan::predicted_peak`]). The default: 1.
    fn workers(&self) -> usize {
        1
    }

    /// Whether this scheduler keeps a plan's memory limit ([`Plan::with_memory_limit`]) by
    /// holding tasks back. One that does not runs the plan as it would without a limit, so a
    /// caller should refuse a plan whose predicted peak passes the limit. The default: no.
    fn keeps_memory_limit(&self) -> bool {
        false
    }

    /// How many processes a run is spread over (the default: 1). A distributed scheduler
    /// (`sched-mpi`) says how many; graph builders then keep tasks placed with the results
    /// ([`Placement::Results`](crate::Placement::Results)) light, so the work is not pulled
    /// into one process.
    fn processes(&self) -> usize {
        1
    }

    /// This process's index among the [`processes`](Self::processes) of a run, from 0 (the
    /// default, and the process that runs the tasks placed
    /// [`First`](crate::Placement::First)). Builders use it to open shared resources (a file
    /// being written) in that process only.
    fn process_index(&self) -> usize {
        0
    }

    /// `None` (the default) when this process receives the outputs of its runs. A
    /// distributed scheduler that collects outputs in other processes (an MPI rank other than
    /// the one the outputs are gathered to) says why, for the error a caller gives when asked
    /// for a result this process does not hold. Such a process still takes part in every run
    /// and gets `Ok` from [`execute`](Self::execute), with the output values it holds and
    /// placeholders for the rest (the scheduler documents which).
    fn results_elsewhere(&self) -> Option<String> {
        None
    }

    /// Combine the outcome of a step that every process of a distributed run takes after
    /// the run (a sink's prepare, then its commit), so that all take the next step, or none:
    /// every process gets `Ok` when every process had `Ok`, and otherwise the same `Err` (the
    /// first failing process's, naming it). A collective call: every process of the run must
    /// make it, in the same order. The default (one process) returns `outcome`.
    fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        outcome
    }

    /// Compile `graph` for `outputs` and run it.
    fn compute(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>, Error> {
        Ok(self.compute_with(graph, outputs, &NoCallbacks)?.values)
    }

    /// Compile `graph` for `outputs` and run it with callbacks, returning the stats too.
    fn compute_with(
        &self,
        graph: &Graph,
        outputs: &[Key],
        callbacks: &dyn Callbacks,
    ) -> Result<Execution, Error> {
        let plan = Plan::new(graph, outputs)?;
        self.execute(&plan, callbacks)
    }
}

impl<S: Scheduler + ?Sized> Scheduler for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        (**self).execute(plan, callbacks)
    }
    fn workers(&self) -> usize {
        (**self).workers()
    }
    fn keeps_memory_limit(&self) -> bool {
        (**self).keeps_memory_limit()
    }
    fn processes(&self) -> usize {
        (**self).processes()
    }
    fn results_elsewhere(&self) -> Option<String> {
        (**self).results_elsewhere()
    }
    fn process_index(&self) -> usize {
        (**self).process_index()
    }
    fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        (**self).agree(outcome)
    }
}

impl<S: Scheduler + ?Sized> Scheduler for &S {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        (**self).execute(plan, callbacks)
    }
    fn workers(&self) -> usize {
        (**self).workers()
    }
    fn keeps_memory_limit(&self) -> bool {
        (**self).keeps_memory_limit()
    }
    fn processes(&self) -> usize {
        (**self).processes()
    }
    fn results_elsewhere(&self) -> Option<String> {
        (**self).results_elsewhere()
    }
    fn process_index(&self) -> usize {
        (**self).process_index()
    }
    fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        (**self).agree(outcome)
    }
}
