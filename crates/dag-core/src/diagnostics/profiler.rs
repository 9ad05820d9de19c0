//! The task profiler: every task's key, operation, worker, start, end and bytes.

use crate::{Callbacks, Error, Key, Plan, RunInfo, RunStats, TaskEvent};
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Record buffers, one per worker (modulo this many): a worker appends to its own under an
/// uncontended lock, so workers never share a cache line per task.
const SHARDS: usize = 64;

/// One task as recorded during the run: 40 bytes, no key clone (keys are copied once, when
/// the run starts, and joined to the records only when a profile is asked for).
#[derive(Clone, Copy)]
struct Raw {
    id: u32,
    worker: u32,
    start_ns: u64,
    dur_ns: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// One shard's records and the run's start (kept beside them so recording reads nothing
/// shared).
struct ShardData {
    started: Instant,
    records: Vec<Raw>,
}

/// A shard on its own cache lines (two, against adjacent-line prefetching).
#[repr(align(128))]
struct Shard(Mutex<ShardData>);

/// What a run's start told the profiler: enough to turn records into a [`Profile`] later.
struct RunMeta {
    started: Instant,
    keys: Vec<Key>,
    labels: Vec<Option<Arc<str>>>,
    memory_limit: Option<usize>,
    workers: Option<usize>,
}

/// A finished run, not yet turned into a [`Profile`] (that is done when asked, outside the
/// run).
struct Finished {
    meta: RunMeta,
    records: Vec<Raw>,
    wall: Duration,
    stats: Option<RunStats>,
    failure: Option<String>,
    profile: Option<Arc<Profile>>,
}

/// One task of a [`Profile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    /// The task's key.
    pub key: Key,
    /// Its operation: an index into [`Profile::operations`].
    pub op: usize,
    /// The worker that ran it.
    pub worker: usize,
    /// When it started, since the run started.
    pub start: Duration,
    /// When it ended, since the run started.
    pub end: Duration,
    /// Bytes of the values it read.
    pub bytes_in: usize,
    /// Bytes of the value it produced.
    pub bytes_out: usize,
}

impl TaskRecord {
    /// How long the task ran.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// The tasks of one operation, summed ([`Profile::by_operation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSummary {
    /// The operation ([`Plan::operation`]).
    pub name: String,
    /// Tasks run.
    pub tasks: usize,
    /// Their total running time (over all workers).
    pub total: Duration,
    /// The longest one.
    pub max: Duration,
    /// Bytes they read.
    pub bytes_in: usize,
    /// Bytes they produced.
    pub bytes_out: usize,
}

impl OpSummary {
    /// Mean running time per task.
    pub fn mean(&self) -> Duration {
        if self.tasks == 0 {
            Duration::ZERO
        } else {
            self.total / self.tasks as u32
        }
    }
}

/// Every task of one run: what [`Profiler`] recorded.
#[derive(Clone, Debug)]
pub struct Profile {
    /// When the run started (task times count from here).
    pub started: Instant,
    /// The tasks that finished, by start time.
    pub tasks: Vec<TaskRecord>,
    /// Operation names ([`TaskRecord::op`] indexes this), in order of first start.
    pub operations: Vec<String>,
    /// Tasks in the plan (more than `tasks.len()` when the run failed or was cancelled).
    pub planned: usize,
    /// Workers that ran the plan.
    pub workers: usize,
    /// The run's wall time.
    pub wall: Duration,
    /// The scheduler's statistics (`None` when the run failed).
    pub stats: Option<RunStats>,
    /// The plan's memory limit, if it had one.
    pub memory_limit: Option<usize>,
    /// Why the run failed, if it did.
    pub failure: Option<String>,
}

impl Profile {
    /// The operation of `task`.
    pub fn operation(&self, task: &TaskRecord) -> &str {
        &self.operations[task.op]
    }

    /// Total running time of all tasks (over all workers).
    pub fn busy(&self) -> Duration {
        self.tasks.iter().map(TaskRecord::duration).sum()
    }

    /// The share of the workers' time spent running tasks (1.0: always busy).
    pub fn occupancy(&self) -> f64 {
        let span = self.wall.as_secs_f64() * self.workers.max(1) as f64;
        if span > 0.0 {
            (self.busy().as_secs_f64() / span).min(1.0)
        } else {
            0.0
        }
    }

    /// The tasks summed per operation, the most time first.
    pub fn by_operation(&self) -> Vec<OpSummary> {
        let mut ops: Vec<OpSummary> = self
            .operations
            .iter()
            .map(|name| OpSummary {
                name: name.clone(),
                tasks: 0,
                total: Duration::ZERO,
                max: Duration::ZERO,
                bytes_in: 0,
                bytes_out: 0,
            })
            .collect();
        for t in &self.tasks {
            let o = &mut ops[t.op];
            let d = t.duration();
            o.tasks += 1;
            o.total += d;
            o.max = o.max.max(d);
            o.bytes_in += t.bytes_in;
            o.bytes_out += t.bytes_out;
        }
        ops.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
        ops
    }
}

/// Records every task of a run — key, operation, worker, start, end, bytes in and out — at
/// about 40 bytes and a few tens of nanoseconds per task (dask's `Profiler`): cheap enough to
/// leave on (measured in `docs/benchmarks.md`).
///
/// Give it to a run as its callbacks (alone, or with others in a tuple), then ask for the
/// run's [`Profile`]; write it as an HTML report ([`Report`](super::Report)) or a Chrome
/// trace ([`Profile::chrome_trace`]). Cloning shares the records. It records the runs it is
/// given one after another ([`profiles`](Self::profiles)); give it to one run at a time.
///
/// ```
/// use dag_core::diagnostics::Profiler;
/// use dag_core::Scheduler;
///
/// let (graph, root) = dag_core::synthetic::tree(4096, 8);
/// let profiler = Profiler::new();
/// let scheduler = sched_threaded::ThreadedScheduler::builder().threads(2).build()?;
/// scheduler.compute_with(&graph, &[root], &profiler)?;
///
/// let profile = profiler.last().expect("one run");
/// assert_eq!(profile.tasks.len(), graph.len());
/// assert!(profile.tasks.iter().all(|t| t.worker < 2 && t.start <= t.end));
/// for op in profile.by_operation() {
///     println!("{:>8} {:>6} tasks {:?}", op.name, op.tasks, op.total);
/// }
/// # Ok::<(), dag_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Profiler {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Shard]>,
    current: Mutex<Option<RunMeta>>,
    failure: Mutex<Option<String>>,
    finished: Mutex<Vec<Finished>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Profiler {{ runs: {} }}",
            lock(&self.inner.finished).len()
        )
    }
}

impl Profiler {
    /// A profiler with no runs recorded.
    pub fn new() -> Profiler {
        let now = Instant::now();
        Profiler {
            inner: Arc::new(Inner {
                shards: (0..SHARDS)
                    .map(|_| {
                        Shard(Mutex::new(ShardData {
                            started: now,
                            records: Vec::new(),
                        }))
                    })
                    .collect(),
                current: Mutex::new(None),
                failure: Mutex::new(None),
                finished: Mutex::new(Vec::new()),
            }),
        }
    }

    /// How many runs were recorded.
    pub fn runs(&self) -> usize {
        lock(&self.inner.finished).len()
    }

    /// The profile of the last finished run.
    pub fn last(&self) -> Option<Arc<Profile>> {
        let mut finished = lock(&self.inner.finished);
        finished.last_mut().map(Finished::profile)
    }

    /// The profiles of every finished run, oldest first.
    pub fn profiles(&self) -> Vec<Arc<Profile>> {
        lock(&self.inner.finished)
            .iter_mut()
            .map(Finished::profile)
            .collect()
    }

    /// Forget the recorded runs.
    pub fn clear(&self) {
        lock(&self.inner.finished).clear();
    }

    /// Take the records of the current run out of the shards.
    fn drain(&self) -> Vec<Raw> {
        let mut all = Vec::new();
        for s in self.inner.shards.iter() {
            all.append(&mut lock(&s.0).records);
        }
        all
    }
}

impl Finished {
    /// The profile of this run, built on first use.
    fn profile(&mut self) -> Arc<Profile> {
        if let Some(p) = &self.profile {
            return p.clone();
        }
        let meta = &self.meta;
        let mut raws = std::mem::take(&mut self.records);
        raws.sort_by_key(|r| (r.start_ns, r.worker, r.id));
        let mut op_ids: FxHashMap<&str, usize> = FxHashMap::default();
        let mut operations: Vec<String> = Vec::new();
        let ns = Duration::from_nanos;
        // Records of another plan (a second run through this profiler at the same time, which
        // it does not support) are dropped rather than read past this plan's keys.
        raws.retain(|r| (r.id as usize) < meta.keys.len());
        let tasks: Vec<TaskRecord> = raws
            .iter()
            .map(|r| {
                let id = r.id as usize;
                let key = &meta.keys[id];
                let name = meta.labels[id].as_deref().unwrap_or_else(|| key.prefix());
                let op = *op_ids.entry(name).or_insert_with(|| {
                    operations.push(name.to_string());
                    operations.len() - 1
                });
                TaskRecord {
                    key: key.clone(),
                    op,
                    worker: r.worker as usize,
                    start: ns(r.start_ns),
                    end: ns(r.start_ns + r.dur_ns),
                    bytes_in: r.bytes_in as usize,
                    bytes_out: r.bytes_out as usize,
                }
            })
            .collect();
        let seen_workers = tasks.iter().map(|t| t.worker + 1).max().unwrap_or(1);
        let profile = Arc::new(Profile {
            started: meta.started,
            planned: meta.keys.len(),
            workers: meta.workers.unwrap_or(seen_workers).max(seen_workers),
            wall: self.wall,
            stats: self.stats.clone(),
            memory_limit: meta.memory_limit,
            failure: self.failure.clone(),
            operations,
            tasks,
        });
        self.profile = Some(profile.clone());
        profile
    }
}

impl Callbacks for Profiler {
    fn on_start(&self, plan: &Plan) {
        let started = Instant::now();
        // Copying the keys once here (one reference count each, on one thread) is cheaper
        // than cloning a key per task on the workers, where blocks of one array share a name
        // whose count would bounce between cores.
        let meta = RunMeta {
            started,
            keys: (0..plan.len()).map(|i| plan.key(i).clone()).collect(),
            labels: plan.labels(),
            memory_limit: plan.memory_limit(),
            workers: None,
        };
        for s in self.inner.shards.iter() {
            let mut s = lock(&s.0);
            s.started = started;
            s.records.clear();
        }
        *lock(&self.inner.failure) = None;
        *lock(&self.inner.current) = Some(meta);
    }

    fn on_run_info(&self, info: &RunInfo) {
        if let Some(m) = lock(&self.inner.current).as_mut() {
            m.workers = Some(info.workers);
        }
    }

    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        let mut shard = lock(&self.inner.shards[task.worker % SHARDS].0);
        let start_ns = task
            .start
            .saturating_duration_since(shard.started)
            .as_nanos() as u64;
        shard.records.push(Raw {
            id: task.id as u32,
            worker: task.worker as u32,
            start_ns,
            dur_ns: task.elapsed.as_nanos() as u64,
            bytes_in: task.bytes_in as u64,
            bytes_out: task.bytes_out as u64,
        });
    }

    fn on_task_fail(&self, key: &Key, error: &Error) {
        let mut f = lock(&self.inner.failure);
        if f.is_none() {
            *f = Some(format!("{key}: {error}"));
        }
    }

    fn on_finish(&self, stats: Option<&RunStats>) {
        let Some(meta) = lock(&self.inner.current).take() else {
            return;
        };
        let wall = stats.map_or_else(|| meta.started.elapsed(), |s| s.wall);
        let records = self.drain();
        let failure = lock(&self.inner.failure).take().or_else(|| {
            stats
                .is_none()
                .then(|| "the run failed or was cancelled".to_string())
        });
        lock(&self.inner.finished).push(Finished {
            meta,
            records,
            wall,
            stats: stats.cloned(),
            failure,
            profile: None,
        });
    }
}
