//! The `Scheduler` and `Callbacks` traits: the boundary between graphs and executors.

use crate::{Error, Graph, Key, MemoryMeter, Plan, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// One task as a scheduler's callbacks see it: which task, on which worker, when it started,
/// and (when it finished) how long it took and the bytes it read and produced.
///
/// A scheduler builds one with [`TaskEvent::started`] just before running a task, passes it to
/// [`Callbacks::on_task_start`], and passes [`TaskEvent::finished`] of it to
/// [`Callbacks::on_task_finish`] — both only when [`Callbacks::per_task`] is true, so a run
/// without per-task callbacks reads no clock. The struct is small and `Copy`: building one
/// costs a clock read and a few stores.
///
/// `start` is on this process's monotonic clock; a distributed scheduler reporting another
/// process's task translates it (for example by the offset between the two processes' run
/// starts).
///
/// ```
/// use dag_core::{Key, TaskEvent};
/// let key = Key::new("sum-1f2e", [3]);
/// let started = TaskEvent::started(7, &key, 1, 8000);
/// let done = started.finished(8);
/// assert_eq!((done.id, done.worker, done.bytes_in, done.bytes_out), (7, 1, 8000, 8));
/// assert!(done.end() >= done.start);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TaskEvent<'a> {
    /// The task's id in the [`Plan`] (`0..plan.len()`).
    pub id: usize,
    /// The task's key.
    pub key: &'a Key,
    /// The worker running it: `0..workers` (the synchronous scheduler: always 0).
    pub worker: usize,
    /// When the task started.
    pub start: Instant,
    /// How long it ran ([`Duration::ZERO`] in [`Callbacks::on_task_start`]).
    pub elapsed: Duration,
    /// The bytes of the values it reads (its dependencies' [`Value::nbytes`], summed).
    pub bytes_in: usize,
    /// The bytes of the value it produced (0 in [`Callbacks::on_task_start`]).
    pub bytes_out: usize,
}

impl<'a> TaskEvent<'a> {
    /// Task `id` (`key`) starting now on `worker`, reading `bytes_in` bytes.
    pub fn started(id: usize, key: &'a Key, worker: usize, bytes_in: usize) -> TaskEvent<'a> {
        TaskEvent {
            id,
            key,
            worker,
            start: Instant::now(),
            elapsed: Duration::ZERO,
            bytes_in,
            bytes_out: 0,
        }
    }

    /// The same task, finished now with a value of `bytes_out` bytes.
    #[must_use]
    pub fn finished(self, bytes_out: usize) -> TaskEvent<'a> {
        TaskEvent {
            elapsed: self.start.elapsed(),
            bytes_out,
            ..self
        }
    }

    /// When the task ended (its start when it has not finished).
    pub fn end(&self) -> Instant {
        self.start + self.elapsed
    }
}

/// What a scheduler tells callbacks about a run besides its plan ([`Callbacks::on_run_info`]):
/// how many workers run it and the live count of bytes it holds, which samplers (resource
/// profilers, dashboards) read from their own threads while the run goes on.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// Workers running tasks ([`TaskEvent::worker`] is below this).
    pub workers: usize,
    /// The bytes of values the scheduler holds, live (see [`MemoryMeter`]).
    pub held: Arc<MemoryMeter>,
}

impl RunInfo {
    /// A run on `workers` workers whose held bytes `held` counts.
    pub fn new(workers: usize, held: Arc<MemoryMeter>) -> RunInfo {
        RunInfo { workers, held }
    }
}

/// Hooks called by schedulers as a run progresses: progress bars, profilers, dashboards.
///
/// All methods have empty defaults. They are called from worker threads, concurrently, so they
/// take `&self`. Keep them cheap: they run once per task. A panic in a hook ends the run with
/// an `Err` (the schedulers catch it).
///
/// The order of calls in one run: [`on_start`](Self::on_start), then
/// [`on_run_info`](Self::on_run_info) (from schedulers that provide it), then per task
/// [`on_task_start`](Self::on_task_start) and [`on_task_finish`](Self::on_task_finish) or
/// [`on_task_fail`](Self::on_task_fail), then [`on_finish`](Self::on_finish) once.
///
/// ```
/// use dag_core::{Callbacks, Scheduler, TaskEvent};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// /// Counts the bytes the tasks produced.
/// #[derive(Default)]
/// struct BytesOut(AtomicUsize);
///
/// impl Callbacks for BytesOut {
///     fn on_task_finish(&self, task: &TaskEvent<'_>) {
///         self.0.fetch_add(task.bytes_out, Ordering::Relaxed);
///     }
/// }
///
/// let (graph, root) = dag_core::synthetic::tree(64, 8);
/// let counter = BytesOut::default();
/// sched_sync::SyncScheduler::new().compute_with(&graph, &[root], &counter)?;
/// assert_eq!(counter.0.load(Ordering::Relaxed), graph.len() * 8); // one u64 per task
/// # Ok::<(), dag_core::Error>(())
/// ```
pub trait Callbacks: Send + Sync {
    /// The run is about to start.
    fn on_start(&self, _plan: &Plan) {}
    /// The run's workers and live memory meter (called right after `on_start` by schedulers
    /// that provide them; keep the `Arc` to sample it from another thread).
    fn on_run_info(&self, _info: &RunInfo) {}
    /// A task is about to run (`elapsed` and `bytes_out` are zero).
    fn on_task_start(&self, _task: &TaskEvent<'_>) {}
    /// A task finished.
    fn on_task_finish(&self, _task: &TaskEvent<'_>) {}
    /// A task failed (it returned `Err` or panicked).
    fn on_task_fail(&self, _key: &Key, _error: &Error) {}
    /// The run ended; `stats` is `None` when it failed.
    fn on_finish(&self, _stats: Option<&RunStats>) {}
    /// Whether the per-task hooks do anything. Schedulers skip timing tasks (and building
    /// [`TaskEvent`]s) when this is false.
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

/// A scheduler's view of its caller's callbacks that remembers whether
/// [`on_finish`](Callbacks::on_finish) was called, so that a run ended by a panic the scheduler
/// caught outside any task (in a hook, or dropping a value) still tells the callbacks it ended,
/// once ([`finish_after_panic`](Self::finish_after_panic)): a dashboard stops serving, a
/// resource sampler stops sampling.
///
/// ```
/// use dag_core::{Callbacks, FinishOnce, ProgressBar};
/// let bar = ProgressBar::new();
/// let guarded = FinishOnce::new(&bar);
/// guarded.on_finish(None);
/// guarded.finish_after_panic(); // on_finish was called: nothing more
/// ```
pub struct FinishOnce<'a> {
    inner: &'a dyn Callbacks,
    finished: std::sync::atomic::AtomicBool,
}

impl<'a> FinishOnce<'a> {
    /// `callbacks`, their `on_finish` not called yet.
    pub fn new(callbacks: &'a dyn Callbacks) -> FinishOnce<'a> {
        FinishOnce {
            inner: callbacks,
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Call `on_finish(None)` unless `on_finish` was called already (a panic there is
    /// ignored: the run has failed anyway).
    pub fn finish_after_panic(&self) {
        if !self
            .finished
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.inner.on_finish(None)
            }));
        }
    }
}

impl Callbacks for FinishOnce<'_> {
    fn on_start(&self, plan: &Plan) {
        self.inner.on_start(plan)
    }
    fn on_run_info(&self, info: &RunInfo) {
        self.inner.on_run_info(info)
    }
    fn on_task_start(&self, task: &TaskEvent<'_>) {
        self.inner.on_task_start(task)
    }
    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        self.inner.on_task_finish(task)
    }
    fn on_task_fail(&self, key: &Key, error: &Error) {
        self.inner.on_task_fail(key, error)
    }
    /// Marked called first: if it panics, it is not called again.
    fn on_finish(&self, stats: Option<&RunStats>) {
        self.finished
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.on_finish(stats)
    }
    fn per_task(&self) -> bool {
        self.inner.per_task()
    }
}

/// Several callbacks called in turn.
///
/// Tuples and references are callbacks too, which is often shorter:
/// `scheduler.compute_with(&graph, &outputs, &(&profiler, &ProgressBar::new()))`.
#[derive(Clone, Default)]
pub struct CallbackSet(pub Vec<Arc<dyn Callbacks>>);

impl Callbacks for CallbackSet {
    fn on_start(&self, plan: &Plan) {
        self.0.iter().for_each(|c| c.on_start(plan));
    }
    fn on_run_info(&self, info: &RunInfo) {
        self.0.iter().for_each(|c| c.on_run_info(info));
    }
    fn on_task_start(&self, task: &TaskEvent<'_>) {
        self.0.iter().for_each(|c| c.on_task_start(task));
    }
    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        self.0.iter().for_each(|c| c.on_task_finish(task));
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

impl<C: Callbacks + ?Sized> Callbacks for &C {
    fn on_start(&self, plan: &Plan) {
        (**self).on_start(plan)
    }
    fn on_run_info(&self, info: &RunInfo) {
        (**self).on_run_info(info)
    }
    fn on_task_start(&self, task: &TaskEvent<'_>) {
        (**self).on_task_start(task)
    }
    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        (**self).on_task_finish(task)
    }
    fn on_task_fail(&self, key: &Key, error: &Error) {
        (**self).on_task_fail(key, error)
    }
    fn on_finish(&self, stats: Option<&RunStats>) {
        (**self).on_finish(stats)
    }
    fn per_task(&self) -> bool {
        (**self).per_task()
    }
}

impl<C: Callbacks + ?Sized> Callbacks for Arc<C> {
    fn on_start(&self, plan: &Plan) {
        (**self).on_start(plan)
    }
    fn on_run_info(&self, info: &RunInfo) {
        (**self).on_run_info(info)
    }
    fn on_task_start(&self, task: &TaskEvent<'_>) {
        (**self).on_task_start(task)
    }
    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        (**self).on_task_finish(task)
    }
    fn on_task_fail(&self, key: &Key, error: &Error) {
        (**self).on_task_fail(key, error)
    }
    fn on_finish(&self, stats: Option<&RunStats>) {
        (**self).on_finish(stats)
    }
    fn per_task(&self) -> bool {
        (**self).per_task()
    }
}

/// Callbacks for tuples: each member in turn (`per_task` if any member's is), so several
/// callbacks combine without boxing: `&(&profiler, &resources, &ProgressBar::new())`.
macro_rules! tuple_callbacks {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Callbacks),+> Callbacks for ($($name,)+) {
            fn on_start(&self, plan: &Plan) {
                $(self.$idx.on_start(plan);)+
            }
            fn on_run_info(&self, info: &RunInfo) {
                $(self.$idx.on_run_info(info);)+
            }
            fn on_task_start(&self, task: &TaskEvent<'_>) {
                $(self.$idx.on_task_start(task);)+
            }
            fn on_task_finish(&self, task: &TaskEvent<'_>) {
                $(self.$idx.on_task_finish(task);)+
            }
            fn on_task_fail(&self, key: &Key, error: &Error) {
                $(self.$idx.on_task_fail(key, error);)+
            }
            fn on_finish(&self, stats: Option<&RunStats>) {
                $(self.$idx.on_finish(stats);)+
            }
            fn per_task(&self) -> bool {
                false $(|| self.$idx.per_task())+
            }
        }
    };
}

tuple_callbacks!(A 0, B 1);
tuple_callbacks!(A 0, B 1, C 2);
tuple_callbacks!(A 0, B 1, C 2, D 3);

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

    /// [`compute`](Self::compute), with every output received by every process of a
    /// distributed run, whichever process the scheduler gathers results to otherwise. For
    /// small values that a graph builder needs in every process before it builds the next
    /// graph (the chunk sizes of an array whose shape depends on its values): each process
    /// must build the same graphs. A collective call, like every run. The default (one
    /// process) is [`compute`](Self::compute).
    fn compute_everywhere(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>, Error> {
        self.compute(graph, outputs)
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
    fn compute_everywhere(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>, Error> {
        (**self).compute_everywhere(graph, outputs)
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
    fn compute_everywhere(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>, Error> {
        (**self).compute_everywhere(graph, outputs)
    }
}
