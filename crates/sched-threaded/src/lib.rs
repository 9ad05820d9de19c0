//! A work-stealing multi-threaded scheduler.
//!
//! [`ThreadedScheduler`] runs a [`Plan`] on N worker threads (default: the available cores)
//! with `crossbeam-deque` work stealing:
//!
//! - Tasks whose dependencies are all done go on the finishing worker's own deque, which it
//!   pops LIFO: a worker keeps going down the branch it is on, so one branch of a reduction is
//!   finished (and its inputs freed) before the next is started, as in the static order.
//! - Tasks ready at the start (the leaves) go into a shared FIFO injector in the plan's static
//!   order, so idle workers take leaves in priority order.
//! - An idle worker steals, first from the injector, then from the other workers.
//! - Every intermediate value is dropped the moment its last dependent has run.
//! - The first failing task (an `Err` or a panic), or a cancelled [`dag_core::Cancel`] token,
//!   stops the run: running tasks finish, no new
//!   task starts, every thread is joined, and `execute` returns the error naming the key. A
//!   panic anywhere else in the run — a `Callbacks` hook, a value's `Drop` — is caught too and
//!   ends the run the same way: a worker never unwinds out of its loop (the others would wait
//!   for its task forever).
//!
//! - Under a memory limit ([`Plan::with_memory_limit`]) leaves wait in one shared queue in
//!   priority order instead of the injector. The next one starts only when the bytes held,
//!   the predicted outputs and transient bytes (a fused task's intermediate blocks) of the
//!   running tasks and its own stay within the limit with room
//!   left for one value-reading task per worker (its output and transient bytes); those tasks always run (they are
//!   what frees memory). If no task is running at all
//!   the next leaf starts anyway, so the run degrades to one task at a time in the plan's
//!   memory-frugal order instead of stopping.
//!
//! - A share of a plan ([`Part`], run with [`ThreadedScheduler::execute_part`]) is how a
//!   distributed scheduler (`sched-mpi`) runs its process's tasks with this same loop: tasks
//!   outside the share never run here, their values arrive through an [`Inbox`] (and make
//!   local readers ready, through the injector), local values other processes read are
//!   handed to an export hook as their task finishes, and a value is freed when its last
//!   *local* reader has run. The calling thread then runs the scheduler's communication
//!   loop (the driver) instead of tasks.
//!
//! Worker threads are scoped to each run (`std::thread::scope`), so no thread outlives a call
//! and the scheduler can be reused, shared, or dropped at any time. The calling thread is one of
//! the workers.
//!
//! ```
//! use dag_core::{Graph, Key, Scheduler, Task, Value};
//! use sched_threaded::ThreadedScheduler;
//!
//! // A tree sum: 64 leaves, partial sums of 8, one total.
//! let mut g = Graph::new();
//! for i in 0..64 {
//!     g.insert(Key::new("leaf", [i]), Task::literal(Value::new(i as u64)));
//! }
//! let sum = |vals: &[Value]| -> dag_core::TaskResult {
//!     let mut s = 0u64;
//!     for v in vals {
//!         s += v.get::<u64>()?;
//!     }
//!     Ok(Value::new(s))
//! };
//! for p in 0..8 {
//!     let deps = (0..8).map(|i| Key::new("leaf", [p * 8 + i]));
//!     g.insert(Key::new("part", [p]), Task::new(deps, sum));
//! }
//! g.insert("total".into(), Task::new((0..8).map(|p| Key::new("part", [p])), sum));
//!
//! let sched = ThreadedScheduler::builder().threads(2).build().unwrap();
//! let run = sched.compute_with(&g, &["total".into()], &dag_core::NoCallbacks).unwrap();
//! assert_eq!(*run.values[0].get::<u64>().unwrap(), (0..64).sum::<u64>());
//! assert_eq!(run.stats.tasks, 73);
//! ```

#![doc(test(attr(deny(warnings))))]

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use dag_core::{
    Callbacks, Error, Execution, MemoryMeter, Plan, RunInfo, RunStats, Scheduler, TaskEvent, Value,
    panic_message,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A work-stealing scheduler over a fixed number of worker threads.
#[derive(Clone, Debug)]
pub struct ThreadedScheduler {
    /// The threads asked for; `None` means one per available core, counted on first need.
    threads: Option<usize>,
}

/// Builds a [`ThreadedScheduler`].
#[derive(Clone, Debug, Default)]
pub struct Builder {
    threads: Option<usize>,
}

impl Builder {
    /// Use `n` worker threads (the calling thread counts as one).
    pub fn threads(mut self, n: usize) -> Builder {
        self.threads = Some(n);
        self
    }

    /// The scheduler, or an error if zero threads were asked for.
    pub fn build(self) -> Result<ThreadedScheduler, Error> {
        match self.threads {
            Some(0) => Err(Error::Scheduler(
                "a threaded scheduler needs at least 1 thread, got 0".into(),
            )),
            Some(n) => Ok(ThreadedScheduler { threads: Some(n) }),
            None => Ok(ThreadedScheduler::new()),
        }
    }
}

impl Default for ThreadedScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadedScheduler {
    /// A scheduler with one worker per available core.
    pub fn new() -> ThreadedScheduler {
        ThreadedScheduler { threads: None }
    }

    /// A builder, to choose the number of threads.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The number of worker threads a run uses (at most; a run with fewer tasks uses fewer).
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(dag_core::available_cores)
    }

    /// The worker threads for a run of `tasks` tasks: one for at most one task (without
    /// counting the cores), else [`threads`](Self::threads), at most one per task.
    fn threads_for(&self, tasks: usize) -> usize {
        if tasks <= 1 {
            1
        } else {
            self.threads().min(tasks)
        }
    }
}

impl Scheduler for ThreadedScheduler {
    fn name(&self) -> &str {
        "threaded"
    }

    fn workers(&self) -> usize {
        self.threads()
    }

    fn keeps_memory_limit(&self) -> bool {
        true
    }

    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        // A panic in a worker is caught there (see `Run::work`); what is left — the run's start
        // and end hooks, and dropping what the run still holds — is caught here, so a panic
        // anywhere in a run ends it with an `Err`.
        let callbacks = dag_core::FinishOnce::new(callbacks);
        match catch_unwind(AssertUnwindSafe(|| self.execute_inner(plan, &callbacks))) {
            Ok(result) => result,
            Err(payload) => {
                callbacks.finish_after_panic();
                Err(Error::Scheduler(format!(
                    "a panic outside any task ended the run (in a callback or while dropping a value): {}",
                    panic_message(&*payload)
                )))
            }
        }
    }
}

impl ThreadedScheduler {
    /// Run the tasks of `plan` that `part` marks local, in this process, while `driver` runs
    /// on the calling thread: the hook for distributed schedulers (`sched-mpi`).
    ///
    /// The scheduler's threads (all spawned; the calling thread runs `driver`) run the local
    /// tasks exactly as [`execute`](Scheduler::execute) runs a whole plan: work stealing,
    /// freeing, the memory limit, cancellation, failures. A local task whose dependencies are
    /// elsewhere becomes ready when the driver has [`deliver`](Inbox::deliver)ed their
    /// values; a value marked in [`Part::exported`] is handed to [`Part::export`] when its
    /// task finishes. The driver must keep delivering until [`Inbox::is_over`]; if it returns
    /// earlier, the run is failed so the workers cannot wait forever. Only the per-task
    /// callbacks are called here (`on_task_*`); the run's start and finish are the caller's,
    /// which knows whether the whole distributed run succeeded.
    ///
    /// Returns the local outcome (the outputs held here, or the error that ended the run)
    /// and what the driver returned.
    pub fn execute_part<R>(
        &self,
        plan: &Plan,
        part: &Part<'_>,
        callbacks: &dyn Callbacks,
        driver: impl FnOnce(&Inbox<'_>) -> R,
    ) -> (Result<PartRun, Error>, R) {
        dag_core::tune_allocator();
        let start = Instant::now();
        let n = plan.len();
        if part.local.len() != n || part.exported.len() != n {
            let e = Error::Scheduler(format!(
                "a part of a plan of {n} tasks marks {} local and {} exported tasks",
                part.local.len(),
                part.exported.len()
            ));
            let run = Run::new(plan, None, callbacks, 1);
            run.fail(e.clone());
            let r = driver(&Inbox { run: &run });
            return (Err(e), r);
        }
        // The threads first: a memory limit's headroom is one largest running task (output and
        // transient bytes) per thread.
        let threads = self.threads_for(part.local.iter().filter(|&&l| l).count());
        let run = Run::new(plan, Some(part), callbacks, threads);
        let mut result = None;
        run.run_workers(Some(|| {
            let inbox = Inbox { run: &run };
            // A panicking driver must still stop the workers, or the scope would wait for
            // them forever; its panic resumes once they are joined.
            result = Some(catch_unwind(AssertUnwindSafe(|| driver(&inbox))));
            if !run.finished() {
                run.fail(Error::Scheduler(
                    "the distributed scheduler stopped feeding this process's tasks before \
                     they had finished"
                        .into(),
                ));
            }
        }));
        let stats = RunStats {
            tasks: run.done.load(Ordering::Acquire),
            wall: start.elapsed(),
            peak_bytes: run.meter.peak(),
            threads,
        };
        let outcome = match lock(&run.error).take() {
            Some(e) => Err(e),
            None => Ok(PartRun {
                outputs: plan
                    .outputs()
                    .iter()
                    .map(|&o| lock(&run.slots[o as usize]).clone())
                    .collect(),
                stats,
            }),
        };
        match result.expect("the driver ran") {
            Ok(r) => (outcome, r),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    fn execute_inner(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        // Blocks' buffers are reused instead of faulting in afresh (see the function's notes).
        dag_core::tune_allocator();
        let start = Instant::now();
        callbacks.on_start(plan);
        let threads = self.threads_for(plan.len());
        let run = Run::new(plan, None, callbacks, threads);
        callbacks.on_run_info(&RunInfo::new(threads, run.meter.clone()));
        let result = run.run_all();
        let stats = RunStats {
            tasks: run.done.load(Ordering::Acquire),
            wall: start.elapsed(),
            peak_bytes: run.meter.peak(),
            threads,
        };
        drop(run);
        match result {
            Ok(values) => {
                callbacks.on_finish(Some(&stats));
                Ok(Execution { values, stats })
            }
            Err(e) => {
                callbacks.on_finish(None);
                Err(e)
            }
        }
    }
}

/// The share of a plan one process runs when a distributed scheduler spreads the plan over
/// several processes (see [`ThreadedScheduler::execute_part`]).
///
/// This is the hook `sched-mpi` builds on: the work-stealing loop stays here, in one place,
/// and the distributed scheduler only decides which tasks run where and moves values.
pub struct Part<'a> {
    /// For each task of the plan: whether it runs in this process. The values of the other
    /// tasks that local tasks read arrive through [`Inbox::deliver`].
    pub local: &'a [bool],
    /// For each task: whether its value, once computed here, is handed to `export` (because
    /// tasks in other processes read it).
    pub exported: &'a [bool],
    /// Called on the worker thread that ran a task marked in `exported`, as soon as the task
    /// has finished (before its value can be dropped). An `Err` fails the run.
    pub export: &'a (dyn Fn(usize, &Value) -> Result<(), Error> + Sync),
}

/// What [`ThreadedScheduler::execute_part`] returns: the outputs held here and the local stats.
#[derive(Debug)]
pub struct PartRun {
    /// For each of [`Plan::outputs`]: its value if it was computed here or delivered.
    pub outputs: Vec<Option<Value>>,
    /// The local tasks run, the wall time, the peak bytes held in this process (delivered
    /// values included) and the worker threads.
    pub stats: RunStats,
}

/// The handle a distributed scheduler's driver uses to feed a running [`Part`]: deliver
/// values computed elsewhere, stop the run, and see when it is over.
pub struct Inbox<'r> {
    run: &'r Run<'r>,
}

impl Inbox<'_> {
    /// The value of task `id`, computed in another process, has arrived: it is held until
    /// its last local reader has run (or to the end, for an output), and local tasks waiting
    /// only for it become ready. Ignored once the run has failed. A value for a task not in
    /// the plan, for one this part computes itself, or a second value for one task fails the
    /// run ([`Error::Scheduler`] naming it).
    pub fn deliver(&self, id: usize, value: Value) {
        self.run.deliver(id, value);
    }

    /// End the run with `error` (a failure elsewhere): tasks running now finish, no other
    /// starts. The first error of a run is the one kept.
    pub fn fail(&self, error: Error) {
        self.run.fail(error);
    }

    /// Whether every local task has finished, or the run has failed.
    pub fn is_over(&self) -> bool {
        self.run.finished()
    }

    /// The error that ended the run, if it failed (a local task's, or the one given to
    /// [`fail`](Self::fail)).
    pub fn error(&self) -> Option<Error> {
        lock(&self.run.error).clone()
    }

    /// Local tasks finished so far (published by workers when they run out of work).
    pub fn done(&self) -> usize {
        self.run.done.load(Ordering::Acquire)
    }

    /// The value of task `id` if this process holds it now: computed here or delivered, and
    /// not yet freed (outputs are held to the end of the run).
    pub fn held(&self, id: usize) -> Option<Value> {
        self.run.slots.get(id).and_then(|s| lock(s).clone())
    }

    /// The most bytes of values this process has held at once so far (exact to 64 KiB per
    /// worker, as [`RunStats::peak_bytes`]).
    pub fn peak_bytes(&self) -> usize {
        self.run.meter.peak()
    }
}

/// The state one run shares between its workers.
pub(crate) struct Run<'a> {
    plan: &'a Plan,
    /// The share of the plan run here, when the rest runs in other processes.
    part: Option<&'a Part<'a>>,
    /// For each task of a part: whether its value has been delivered (empty without a part).
    delivered: Vec<AtomicBool>,
    /// Tasks run here: all of the plan's, or the part's local ones.
    local_count: usize,
    callbacks: &'a dyn Callbacks,
    timed: bool,
    /// Dependencies not yet done, per task.
    pending: Vec<AtomicU32>,
    /// Dependents not yet run, per task: at zero the value is dropped (unless an output).
    uses: Vec<AtomicU32>,
    slots: Vec<Mutex<Option<Value>>>,
    injector: Injector<u32>,
    done: AtomicUsize,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    /// Shared with callbacks that sample it ([`RunInfo::held`]).
    meter: Arc<MemoryMeter>,
    /// The plan's memory limit, if any (see `Run::take_leaf`).
    limit: Option<usize>,
    /// Tasks running now (counted only under a memory limit).
    busy: AtomicUsize,
    /// The predicted output bytes of the tasks running now (under a memory limit): what they
    /// will hold when they finish, counted before they do.
    reserved: AtomicUsize,
    /// Under a memory limit the leaves wait here, in priority order, instead of in the
    /// injector: they are taken one at a time, only when they fit (see `Run::take_leaf`).
    leaves: Mutex<std::collections::VecDeque<u32>>,
    /// Under a memory limit, the room a leaf leaves free for the outputs of the tasks that
    /// read other values, which always run: as many of the largest such output as there are
    /// workers (they can all be holding one before their inputs are freed).
    headroom: usize,
    threads: usize,
    sleepers: AtomicUsize,
    idle: Mutex<()>,
    wakeup: Condvar,
}

/// A worker's unpublished counts. Shared counters touched by every task would bounce a cache
/// line between cores on every task (measured: 5× slower than the synchronous scheduler on a
/// million trivial tasks), so each worker publishes its finished-task count when it runs out of
/// work, and its change in live bytes once that exceeds [`Tally::BYTES`]. The reported peak is
/// therefore exact to within `BYTES` per worker; values of at least that size are counted
/// exactly.
#[derive(Default)]
struct Tally {
    done: usize,
    bytes: isize,
}

impl Tally {
    const BYTES: isize = 64 * 1024;

    fn bytes(&mut self, run: &Run<'_>, delta: isize) {
        self.bytes += delta;
        if self.bytes.abs() >= Self::BYTES {
            self.flush_bytes(run);
        }
    }

    fn flush_bytes(&mut self, run: &Run<'_>) {
        if self.bytes > 0 {
            run.meter.hold(self.bytes as usize);
        } else if self.bytes < 0 {
            run.meter.release(self.bytes.unsigned_abs());
        }
        self.bytes = 0;
    }

    fn flush(&mut self, run: &Run<'_>) {
        self.flush_bytes(run);
        run.add_done(std::mem::take(&mut self.done));
    }
}

/// What task `id` is counted as holding while it runs, under a memory limit: its predicted
/// output and its transient bytes (a fused task's intermediate blocks).
fn running_bytes(plan: &Plan, id: usize) -> usize {
    plan.predicted_nbytes(id)
        .saturating_add(plan.predicted_transient(id))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No task runs while a slot lock is held, so poisoning cannot happen; recover regardless.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'a> Run<'a> {
    fn new(
        plan: &'a Plan,
        part: Option<&'a Part<'a>>,
        callbacks: &'a dyn Callbacks,
        threads: usize,
    ) -> Run<'a> {
        let n = plan.len();
        let local = |i: usize| part.is_none_or(|p| p.local[i]);
        let pending = (0..n)
            .map(|i| AtomicU32::new(plan.deps(i).len() as u32))
            .collect();
        // Only readers run here free a value: a value read elsewhere was exported already.
        let uses = (0..n)
            .map(|i| {
                let here = plan.dependents(i).iter().filter(|&&t| local(t as usize));
                AtomicU32::new(here.count() as u32)
            })
            .collect();
        let injector = Injector::new();
        let mut leaves = std::collections::VecDeque::new();
        let mut local_count = 0;
        for i in 0..n {
            if !local(i) {
                continue;
            }
            local_count += 1;
            if plan.deps(i).is_empty() {
                if plan.memory_limit().is_some() {
                    leaves.push_back(i as u32);
                } else {
                    injector.push(i as u32);
                }
            }
        }
        let headroom = if plan.memory_limit().is_some() {
            let largest = (0..n)
                .filter(|&i| local(i) && !plan.deps(i).is_empty())
                .map(|i| running_bytes(plan, i))
                .max()
                .unwrap_or(0);
            largest.saturating_mul(threads)
        } else {
            0
        };
        Run {
            plan,
            part,
            delivered: if part.is_some() {
                (0..n).map(|_| AtomicBool::new(false)).collect()
            } else {
                Vec::new()
            },
            local_count,
            headroom,
            callbacks,
            timed: callbacks.per_task(),
            pending,
            uses,
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            injector,
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            meter: Arc::new(MemoryMeter::default()),
            limit: plan.memory_limit(),
            busy: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            leaves: Mutex::new(leaves),
            threads,
            sleepers: AtomicUsize::new(0),
            idle: Mutex::new(()),
            wakeup: Condvar::new(),
        }
    }

    fn run_all(&self) -> Result<Vec<Value>, Error> {
        if self.plan.is_empty() {
            return Ok(Vec::new());
        }
        self.run_workers(None::<fn()>);
        if let Some(e) = lock(&self.error).take() {
            return Err(e);
        }
        self.plan
            .outputs()
            .iter()
            .map(|&o| {
                lock(&self.slots[o as usize]).clone().ok_or_else(|| {
                    Error::Scheduler(format!(
                        "output {} was not computed",
                        self.plan.key(o as usize)
                    ))
                })
            })
            .collect()
    }

    /// Run the workers until the run is over. Without a `driver` the calling thread is worker
    /// 0; with one, it runs the driver while `threads` spawned workers run the tasks.
    fn run_workers(&self, driver: Option<impl FnOnce()>) {
        let workers: Vec<Worker<u32>> = (0..self.threads).map(|_| Worker::new_lifo()).collect();
        let stealers: Vec<Stealer<u32>> = workers.iter().map(Worker::stealer).collect();
        std::thread::scope(|scope| {
            let mut workers = workers.into_iter().enumerate();
            let mine = if driver.is_some() {
                None
            } else {
                workers.next()
            };
            for (i, w) in workers {
                let stealers = &stealers;
                let spawned = std::thread::Builder::new()
                    .name(format!("sched-threaded-{i}"))
                    .spawn_scoped(scope, move || self.work(i, w, stealers));
                if let Err(e) = spawned {
                    self.fail(Error::Scheduler(format!("could not start worker {i}: {e}")));
                    break;
                }
            }
            match (mine, driver) {
                (Some((_, mine)), _) => self.work(0, mine, &stealers),
                (None, Some(driver)) => driver(),
                (None, None) => unreachable!("worker 0 is taken only for a driver"),
            }
        });
    }

    fn finished(&self) -> bool {
        self.failed.load(Ordering::Acquire) || self.done.load(Ordering::Acquire) == self.local_count
    }

    fn work(&self, me: usize, local: Worker<u32>, stealers: &[Stealer<u32>]) {
        let mut tally = Tally::default();
        let mut inputs: Vec<Value> = Vec::new();
        let mut idle_rounds = 0u32;
        loop {
            if self.failed.load(Ordering::Acquire) {
                tally.flush(self);
                return;
            }
            if self.limit.is_some() {
                // Publish this worker's releases before it decides whether a leaf fits.
                tally.flush_bytes(self);
            }
            if let Some(id) = self.find(me, &local, stealers) {
                if let Err(e) = self.plan.check_cancelled(self.done.load(Ordering::Acquire)) {
                    self.fail(e);
                    tally.flush(self);
                    return;
                }
                // Under a memory limit, leaves were counted as running when taken; tasks that
                // read other values run regardless (they are what frees memory).
                if self.limit.is_some() && !self.plan.deps(id as usize).is_empty() {
                    self.busy.fetch_add(1, Ordering::AcqRel);
                    self.reserved
                        .fetch_add(running_bytes(self.plan, id as usize), Ordering::AcqRel);
                }
                idle_rounds = 0;
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    self.run_task(me, id as usize, &local, &mut inputs, &mut tally)
                }));
                if self.limit.is_some() {
                    tally.flush_bytes(self);
                    self.reserved
                        .fetch_sub(running_bytes(self.plan, id as usize), Ordering::AcqRel);
                    self.busy.fetch_sub(1, Ordering::AcqRel);
                }
                if let Err(payload) = ran {
                    // The task's own panics are caught by `Plan::run`; this one came from a
                    // callback or a value's `Drop`. Unwinding out of this thread would leave
                    // the task unfinished and the other workers waiting for it forever, so stop
                    // the run instead. (Dropping the inputs only releases references, the
                    // values stay in their slots; a panic there again is caught too.)
                    let _ = catch_unwind(AssertUnwindSafe(|| inputs.clear()));
                    self.fail(Error::TaskFailed {
                        key: self.plan.key(id as usize).clone(),
                        message: format!(
                            "a callback or a value's drop panicked around this task: {}",
                            panic_message(&*payload)
                        ),
                        panicked: true,
                    });
                    return;
                }
                continue;
            }
            tally.flush(self);
            if self.finished() {
                return;
            }
            idle_rounds += 1;
            if idle_rounds < 64 {
                std::hint::spin_loop();
            } else if idle_rounds < 96 {
                std::thread::yield_now();
            } else {
                self.sleep();
            }
        }
    }

    /// Under a memory limit: whether leaf `id` may start now, counting it as running if so.
    /// It may if the bytes held, the predicted outputs and transient bytes of the running tasks
    /// and its own, with room left for those of the tasks that read other values (`headroom`),
    /// stay
    /// within the limit — or if no task is running at all, so that a run always makes
    /// progress (one task at a time, in the plan's memory-frugal order). The way past the
    /// limit is a compare-and-swap of the running count from zero, so only one leaf at a
    /// time takes it. A limit below the largest single task, or
    /// below that order's predicted peak, is refused before the run by its caller.
    fn try_start(&self, id: usize) -> bool {
        let limit = self.limit.expect("only called under a memory limit");
        let size = running_bytes(self.plan, id);
        let held = self
            .meter
            .live()
            .saturating_add(self.reserved.load(Ordering::Acquire));
        if held.saturating_add(size).saturating_add(self.headroom) <= limit {
            self.busy.fetch_add(1, Ordering::AcqRel);
        } else if self
            .busy
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.reserved.fetch_add(size, Ordering::AcqRel);
        true
    }

    /// Under a memory limit, the next leaf in priority order if it may start now
    /// ([`try_start`](Self::try_start)); leaves wait in one queue so they start in the plan's
    /// order.
    fn take_leaf(&self) -> Option<u32> {
        self.limit?;
        let mut leaves = lock(&self.leaves);
        let &id = leaves.front()?;
        if self.try_start(id as usize) {
            leaves.pop_front();
            return Some(id);
        }
        None
    }

    /// The next task for worker `me`: its own newest, else (under a memory limit) the next
    /// leaf if it may start, else a batch of leaves from the injector, else one stolen from
    /// another worker.
    fn find(&self, me: usize, local: &Worker<u32>, stealers: &[Stealer<u32>]) -> Option<u32> {
        if let Some(id) = local.pop() {
            return Some(id);
        }
        if let Some(id) = self.take_leaf() {
            return Some(id);
        }
        loop {
            match self.injector.steal_batch_and_pop(local) {
                Steal::Success(id) => return Some(id),
                Steal::Empty => break,
                Steal::Retry => continue,
            }
        }
        let k = stealers.len();
        for off in 1..k {
            let victim = &stealers[(me + off) % k];
            loop {
                match victim.steal() {
                    Steal::Success(id) => return Some(id),
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        None
    }

    fn run_task(
        &self,
        me: usize,
        id: usize,
        local: &Worker<u32>,
        inputs: &mut Vec<Value>,
        tally: &mut Tally,
    ) {
        let plan = self.plan;
        for &d in plan.deps(id) {
            let v = lock(&self.slots[d as usize])
                .clone()
                .expect("a dependency's value is held until its last dependent has run");
            inputs.push(v);
        }
        let key = plan.key(id);
        let event = self.timed.then(|| {
            let bytes_in = inputs.iter().map(Value::nbytes).sum();
            let event = TaskEvent::started(id, key, me, bytes_in);
            self.callbacks.on_task_start(&event);
            event
        });
        let result = plan.run(id, inputs);
        inputs.clear();
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                // Recorded first: a callback panicking on it does not replace the error.
                self.fail(e.clone());
                self.callbacks.on_task_fail(key, &e);
                return;
            }
        };
        let nbytes = value.nbytes();
        if let Some(event) = event {
            self.callbacks.on_task_finish(&event.finished(nbytes));
        }
        if let Some(part) = self.part
            && part.exported[id]
            && let Err(e) = (part.export)(id, &value)
        {
            self.fail(e);
            return;
        }
        tally.bytes(self, nbytes as isize);
        if self.limit.is_some() {
            // Count the output before the inputs it frees, as the peak is reached then.
            tally.flush_bytes(self);
        }
        // No reader here (none at all, or all in other processes): drop it now. Its readers'
        // decrements come after this, so the count is still the initial one.
        if self.uses[id].load(Ordering::Acquire) == 0 && !plan.is_output(id) {
            tally.bytes(self, -(nbytes as isize));
        } else {
            *lock(&self.slots[id]) = Some(value);
        }
        for &d in plan.deps(id) {
            let d = d as usize;
            if self.uses[d].fetch_sub(1, Ordering::AcqRel) == 1
                && !plan.is_output(d)
                && let Some(v) = lock(&self.slots[d]).take()
            {
                tally.bytes(self, -(v.nbytes() as isize));
            }
        }
        // Push newly ready dependents highest id first, so the lowest (highest priority) is
        // on top of the LIFO deque and runs next on this thread.
        for &t in plan.dependents(id).iter().rev() {
            if self.is_local(t as usize)
                && self.pending[t as usize].fetch_sub(1, Ordering::AcqRel) == 1
            {
                local.push(t);
            }
        }
        tally.done += 1;
        if local.len() > 1 && self.sleepers.load(Ordering::Acquire) > 0 {
            let _g = lock(&self.idle);
            self.wakeup.notify_one();
        }
    }

    /// Add a worker's finished-task count to the total; the worker that completes the plan
    /// wakes the others so they can exit.
    fn add_done(&self, n: usize) {
        if n > 0 && self.done.fetch_add(n, Ordering::AcqRel) + n == self.local_count {
            self.wake_all();
        }
    }

    fn is_local(&self, id: usize) -> bool {
        self.part.is_none_or(|p| p.local[id])
    }

    /// A value computed elsewhere arrives (see [`Inbox::deliver`]).
    fn deliver(&self, id: usize, value: Value) {
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        // A driver's mistake fails the run instead of indexing out of range, or counting a
        // dependency down twice (which would start its readers before their other inputs).
        let wrong = if id >= self.plan.len() {
            Some(format!(
                "task {id} is not in the plan of {} tasks",
                self.plan.len()
            ))
        } else if self.is_local(id) {
            Some(format!(
                "task {} is computed in this process",
                self.plan.key(id)
            ))
        } else if self.delivered[id].swap(true, Ordering::AcqRel) {
            Some(format!("task {} was delivered twice", self.plan.key(id)))
        } else {
            None
        };
        if let Some(why) = wrong {
            self.fail(Error::Scheduler(format!(
                "a value delivered to this part: {why}"
            )));
            return;
        }
        if self.uses[id].load(Ordering::Acquire) > 0 || self.plan.is_output(id) {
            self.meter.hold(value.nbytes());
            *lock(&self.slots[id]) = Some(value);
        }
        let mut woke = false;
        for &t in self.plan.dependents(id) {
            if self.is_local(t as usize)
                && self.pending[t as usize].fetch_sub(1, Ordering::AcqRel) == 1
            {
                self.injector.push(t);
                woke = true;
            }
        }
        if woke && self.sleepers.load(Ordering::Acquire) > 0 {
            let _g = lock(&self.idle);
            self.wakeup.notify_one();
        }
    }

    fn fail(&self, e: Error) {
        let mut slot = lock(&self.error);
        if slot.is_none() {
            *slot = Some(e);
        }
        drop(slot);
        self.failed.store(true, Ordering::Release);
        self.wake_all();
    }

    fn wake_all(&self) {
        let _g = lock(&self.idle);
        self.wakeup.notify_all();
    }

    /// Park until woken, or for at most a millisecond (so a missed wake-up costs little).
    fn sleep(&self) {
        let guard = lock(&self.idle);
        self.sleepers.fetch_add(1, Ordering::AcqRel);
        if !self.finished() && self.injector.is_empty() {
            // (Leaves held back by a memory limit are retried after the timeout.)
            let _ = self
                .wakeup
                .wait_timeout(guard, Duration::from_millis(1))
                .map(|(g, _)| drop(g));
        }
        self.sleepers.fetch_sub(1, Ordering::AcqRel);
    }
}
