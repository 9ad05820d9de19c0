//! The same program across machines: a [`dag_core::Scheduler`] that runs one computation over
//! the ranks of an MPI job.
//!
//! An MPI job runs the same program on every rank (SPMD). Each rank builds the same graph —
//! keys are deterministic, and a user's closures are numbered by a process-wide counter, so
//! ranks that build the same expressions in the same order agree on every key — and runs it
//! with an [`MpiScheduler`]. Swapping the scheduler is the only change a program needs:
//!
//! ```no_run
//! use blockarray::{BlockArray, random::Rng};
//! use sched_mpi::Mpi;
//!
//! let mpi = Mpi::init()?; // MPI_Init; MPI_Finalize when `mpi` is dropped
//! let sched = mpi.scheduler();
//! let x: BlockArray<f64> = Rng::new(42).random(&[4000, 4000], [500, 500])?;
//! let mean = x.mean(Some(&[0]), false)?;
//! let mut c = blockarray::Computation::new();
//! let h = c.add(&mean);
//! let mut results = c.run(&sched)?; // every rank runs its share
//! if results.held() {
//!     // rank 0: the gathered result
//!     println!("{:?}", results.take(h)?.iter().take(3).collect::<Vec<_>>());
//! }
//! println!("{}", sched.last_run().expect("a run happened"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Run it with `mpirun -np 4 ./program`, or `srun -n 4 ./program` under Slurm (see the
//! README).
//!
//! # How a run goes
//!
//! - **Owner computes.** Every rank computes the same static partition of the plan (see
//!   [`partition`](crate::MpiScheduler::predict) and the notes in `src/partition.rs`): leaves
//!   in contiguous runs of the plan's order, every other task on the rank holding most of
//!   its input bytes, under balance caps. Each rank runs its share with `sched-threaded`'s
//!   work-stealing loop on its own cores ([`Builder::threads`]).
//! - **Values travel once, point to point.** A value read on other ranks is encoded
//!   (through [`dag_core::wire`]; blockarray registers its blocks) by the worker that made it
//!   and sent, with non-blocking sends, once to each rank that reads it. A value whose type
//!   cannot be encoded fails the run with [`Error::CannotSend`]
//!   naming its key.
//! - **Results.** By default the outputs are gathered to rank 0 ([`Gather::Root`]), and
//!   tasks placed with the results ([`dag_core::Placement::Results`], such as the writes of
//!   `compute` into its in-memory result) run there; other ranks get `Ok` with the outputs
//!   they computed and an [`Elsewhere`] value for the others, and
//!   [`results_elsewhere`](dag_core::Scheduler::results_elsewhere) says so (blockarray's
//!   `Results::take` is then an error, `Results::held` false). [`Gather::All`] gives every
//!   rank every output. [`compute_everywhere`](dag_core::Scheduler::compute_everywhere)
//!   does so for one run whatever the mode: blockarray's `compute_chunk_sizes` uses it, so
//!   every rank learns the sizes and goes on to build the same graphs.
//! - **Storage.** Stores into files run on rank 0 (sinks are placed
//!   [`First`](dag_core::Placement::First) by default): blocks computed elsewhere are sent
//!   there once. `blockarray-hdf5`'s `to_hdf5_with(…, &sched)` opens the file on rank 0 only
//!   and the commit is agreed between the ranks ([`Scheduler::agree`]): the datasets appear
//!   only if every rank's share succeeded.
//! - **Failure.** A task failing or panicking on any rank ends the run on every rank, with
//!   the same `Err` naming the key and the rank (`… (on MPI rank 1 of 4)`); running tasks
//!   finish, nothing new starts, and no rank is left waiting (the ranks agree on the outcome
//!   before returning). A rank that *dies* (killed, out of memory, `abort`) cannot take part
//!   in that agreement: Open MPI's `mpirun` (and Slurm's `srun`) notice the process is gone
//!   and terminate the whole job, with an error naming the rank — MPI's own abort. A panic
//!   inside this scheduler's own communication code (a bug), or a failure of the
//!   communication itself (an MPI error, a message a rank cannot read), calls `MPI_Abort`
//!   for the same reason.
//! - **One run at a time.** Runs are collective: every rank must start the same runs in
//!   the same order. Runs from several threads of one process are serialised.
//!
//! [`MpiScheduler::last_run`] reports what the last run sent: bytes and messages per rank.
//!
//! # Launching
//!
//! [`mpirun`] builds an `mpirun` command for this machine with the settings the tests, the
//! demo and the benchmarks use (quiet shared-memory transport, root allowed,
//! oversubscription).

#![doc(test(attr(deny(warnings))))]

mod codec;
mod comm;
mod launch;
mod partition;
mod run;

pub use launch::{MPI_ENV, mpirun};
pub use partition::Traffic;

use dag_core::{Callbacks, Data, Error, Execution, Graph, Key, Plan, Scheduler, Value};
use sched_threaded::ThreadedScheduler;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a run's outputs are collected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Gather {
    /// On rank 0 (the default): the other ranks return placeholders ([`Elsewhere`]).
    #[default]
    Root = 0,
    /// On every rank: every output is sent to every rank that did not compute it.
    All = 1,
}

/// The value an [`MpiScheduler`] returns, on a rank that does not hold it, for an output
/// collected elsewhere ([`Gather::Root`] on ranks other than 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elsewhere {
    /// The output's key.
    pub key: Key,
    /// The rank that computed it.
    pub rank: usize,
}

impl Data for Elsewhere {}

/// What one distributed run did, on every rank (each rank has the same table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MpiStats {
    /// This rank.
    pub rank: usize,
    /// Ranks in the run.
    pub ranks: usize,
    /// Wall time of the run on this rank.
    pub wall: Duration,
    /// Tasks each rank ran.
    pub tasks: Vec<usize>,
    /// Values each rank sent (one per receiving rank).
    pub values: Vec<usize>,
    /// Bytes of encoded values each rank sent.
    pub value_bytes: Vec<usize>,
    /// All bytes each rank sent: values, gathered outputs, errors, headers.
    pub bytes_sent: Vec<usize>,
    /// MPI messages each rank sent.
    pub messages: Vec<usize>,
    /// The most bytes of values each rank held at once.
    pub peak_bytes: Vec<usize>,
    /// The traffic the same plan would cause over other numbers of ranks, as asked with
    /// [`Builder::predict`] (from the static partition and the predicted value sizes).
    pub predicted: Vec<Traffic>,
}

impl MpiStats {
    fn new(rank: usize, ranks: usize) -> MpiStats {
        MpiStats {
            rank,
            ranks,
            ..MpiStats::default()
        }
    }

    /// Bytes sent between ranks, all ranks together.
    pub fn total_bytes(&self) -> usize {
        self.bytes_sent.iter().sum()
    }

    /// MPI messages sent, all ranks together.
    pub fn total_messages(&self) -> usize {
        self.messages.iter().sum()
    }
}

impl fmt::Display for MpiStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ranks, {} tasks ({}), {} sent between ranks in {} messages ({} values, {}), \
             peak {} per rank, {:.3} s",
            self.ranks,
            self.tasks.iter().sum::<usize>(),
            self.tasks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            dag_core::fmt_bytes(self.total_bytes()),
            self.total_messages(),
            self.values.iter().sum::<usize>(),
            dag_core::fmt_bytes(self.value_bytes.iter().sum()),
            dag_core::fmt_bytes(self.peak_bytes.iter().copied().max().unwrap_or(0)),
            self.wall.as_secs_f64()
        )
    }
}

/// MPI for this process: initialised by [`Mpi::init`], finalised when dropped (if `init`
/// initialised it). Keep it alive until the program's last run has returned; a scheduler used
/// after it was dropped returns an error.
pub struct Mpi {
    universe: Option<mpi::environment::Universe>,
    rank: usize,
    size: usize,
}

impl fmt::Debug for Mpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mpi {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

impl Mpi {
    /// Initialise MPI (`MPI_Init_thread`, asking for `MPI_THREAD_SERIALIZED`: only the thread
    /// driving a run calls MPI), or use it as it is if the program initialised it already
    /// (then it is not finalised here). A program started without `mpirun`/`srun` is a job of
    /// one rank.
    pub fn init() -> Result<Mpi, Error> {
        use mpi::Threading;
        use mpi::traits::Communicator;
        let universe = if mpi::environment::is_initialized() {
            None
        } else {
            let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
                .ok_or_else(|| Error::Scheduler("MPI could not be initialised".into()))?;
            if matches!(level, Threading::Single | Threading::Funneled) {
                return Err(Error::Scheduler(format!(
                    "this MPI library offers only {level:?} threading; sched-mpi needs \
                     MPI_THREAD_SERIALIZED (Open MPI and MPICH offer it)"
                )));
            }
            Some(universe)
        };
        if mpi::environment::is_finalized() {
            return Err(Error::Scheduler("MPI was already finalised".into()));
        }
        let world = mpi::topology::SimpleCommunicator::world();
        Ok(Mpi {
            universe,
            rank: world.rank() as usize,
            size: world.size() as usize,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A scheduler with the default settings (see [`Builder`]).
    pub fn scheduler(&self) -> MpiScheduler {
        MpiScheduler::builder()
            .build(self)
            .expect("the default settings are valid")
    }

    /// End every rank of the job now (`MPI_Abort`), with exit status `code`: for a rank that
    /// cannot go on while the others may be waiting for it in a collective call (a run, or
    /// the agreement of a commit) — returning early from an SPMD program leaves them waiting.
    pub fn abort(&self, code: i32) -> ! {
        comm::abort(code)
    }

    /// Whether this value finalises MPI when dropped.
    pub fn finalizes(&self) -> bool {
        self.universe.is_some()
    }
}

/// Builds an [`MpiScheduler`].
#[derive(Clone, Debug)]
pub struct Builder {
    threads: Option<usize>,
    gather: Gather,
    max_message: usize,
    predict: Vec<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            threads: None,
            gather: Gather::Root,
            max_message: 1 << 30,
            predict: Vec::new(),
        }
    }
}

impl Builder {
    /// Worker threads per rank (default: the cores available to the process, less one for
    /// the thread that drives the communication, and at least one).
    pub fn threads(mut self, n: usize) -> Builder {
        self.threads = Some(n);
        self
    }

    /// Where outputs are collected (default [`Gather::Root`]).
    pub fn gather(mut self, gather: Gather) -> Builder {
        self.gather = gather;
        self
    }

    /// The largest single MPI message, in bytes (default 1 GiB; at least 64): longer
    /// messages are sent in parts. MPI counts message lengths in `int`s, so one message
    /// cannot pass 2 GiB.
    pub fn max_message(mut self, bytes: usize) -> Builder {
        self.max_message = bytes.clamp(64, i32::MAX as usize);
        self
    }

    /// Also predict, in every run, the traffic the plan would cause over each of these
    /// numbers of ranks ([`MpiStats::predicted`]; see [`MpiScheduler::predict`]): how
    /// `docs/distributed.md` extrapolates measured runs to larger jobs.
    pub fn predict(mut self, ranks: &[usize]) -> Builder {
        self.predict = ranks.iter().copied().filter(|&r| r > 0).collect();
        self
    }

    /// The scheduler, or an error for zero threads.
    pub fn build(self, mpi: &Mpi) -> Result<MpiScheduler, Error> {
        let threads = match self.threads {
            Some(0) => {
                return Err(Error::Scheduler(
                    "an MPI scheduler needs at least 1 worker thread per rank, got 0".into(),
                ));
            }
            Some(n) => n,
            None => dag_core::available_cores().saturating_sub(1).max(1),
        };
        Ok(MpiScheduler {
            threaded: ThreadedScheduler::builder().threads(threads).build()?,
            gather: self.gather,
            max_message: self.max_message,
            predict: self.predict,
            rank: mpi.rank,
            size: mpi.size,
            last: Arc::new(Mutex::new(None)),
        })
    }
}

/// Runs plans across the ranks of an MPI job; see the [crate documentation](crate).
#[derive(Clone, Debug)]
pub struct MpiScheduler {
    threaded: ThreadedScheduler,
    gather: Gather,
    max_message: usize,
    predict: Vec<usize>,
    rank: usize,
    size: usize,
    last: Arc<Mutex<Option<MpiStats>>>,
}

/// Runs are collective and use MPI from the calling thread: one at a time per process.
static RUN_LOCK: Mutex<()> = Mutex::new(());

impl MpiScheduler {
    /// A builder, to choose threads, where outputs go and the message size.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn ranks(&self) -> usize {
        self.size
    }

    /// Where outputs are collected.
    pub fn gather_mode(&self) -> Gather {
        self.gather
    }

    /// What the last run on this scheduler did (the same table on every rank), or `None`
    /// before the first run (or after a run that failed before the ranks agreed on a plan).
    pub fn last_run(&self) -> Option<MpiStats> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The traffic `plan` would cause over `ranks` ranks — values sent and their predicted
    /// bytes, tasks per rank — from the static partition and the tasks' predicted sizes,
    /// without running anything or needing MPI. The same partition a run uses.
    pub fn predict(plan: &Plan, ranks: usize, gather: Gather) -> Traffic {
        partition::traffic(plan, ranks, gather)
    }
}

impl Scheduler for MpiScheduler {
    fn name(&self) -> &str {
        "mpi"
    }

    fn workers(&self) -> usize {
        self.threaded.threads()
    }

    fn keeps_memory_limit(&self) -> bool {
        true
    }

    fn processes(&self) -> usize {
        self.size
    }

    fn process_index(&self) -> usize {
        self.rank
    }

    fn results_elsewhere(&self) -> Option<String> {
        (self.gather == Gather::Root && self.rank != 0).then(|| {
            format!(
                "this is MPI rank {} of {}, and the MPI scheduler gathers results to rank 0 \
                 (MpiScheduler::builder().gather(Gather::All) gathers them on every rank)",
                self.rank, self.size
            )
        })
    }

    fn agree(&self, outcome: Result<(), String>) -> Result<(), String> {
        let _run = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        ready().map_err(|e| e.to_string())?;
        comm::Comm::dup_world()?.agree(outcome)
    }

    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        self.execute_gathering(plan, callbacks, self.gather)
    }

    /// Every rank receives every output, whatever [`gather_mode`](Self::gather_mode) says
    /// (a run in [`Gather::All`] mode).
    fn compute_everywhere(&self, graph: &Graph, outputs: &[Key]) -> Result<Vec<Value>, Error> {
        let plan = Plan::new(graph, outputs)?;
        Ok(self
            .execute_gathering(&plan, &dag_core::NoCallbacks, Gather::All)?
            .values)
    }
}

impl MpiScheduler {
    /// [`Scheduler::execute`] with the outputs collected as `gather` says.
    fn execute_gathering(
        &self,
        plan: &Plan,
        callbacks: &dyn Callbacks,
        gather: Gather,
    ) -> Result<Execution, Error> {
        let _run = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        ready()?;
        let comm = comm::Comm::dup_world().map_err(Error::Scheduler)?;
        // Hooks run on one rank: a panic in one must not leave the others waiting for it in
        // a collective. `on_start`'s fails this rank's share (every rank gets the error).
        let failed_before =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callbacks.on_start(plan)))
                .err()
                .map(|payload| {
                    Error::Scheduler(format!(
                        "a callback panicked in on_start: {}",
                        dag_core::panic_message(&*payload)
                    ))
                });
        let cfg = run::Config {
            threaded: &self.threaded,
            gather,
            max_message: self.max_message,
            predict: &self.predict,
            failed_before,
        };
        // A panic in the communication code leaves the other ranks waiting for this one:
        // end the job instead.
        let (result, stats) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run::execute(&cfg, &comm, plan, callbacks)
        })) {
            Ok(r) => r,
            Err(payload) => {
                eprintln!(
                    "sched-mpi: rank {}: a panic in the scheduler itself ({}); aborting the MPI \
                     job so that no rank waits for this one",
                    comm.rank,
                    dag_core::panic_message(&*payload)
                );
                comm::abort(70)
            }
        };
        drop(comm);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        // The ranks agreed on the result; a panic in `on_finish` on one rank must not make
        // it return another (the next collective, a sink's commit, would wait for the rest).
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &result {
            Ok(run) => callbacks.on_finish(Some(&run.stats)),
            Err(_) => callbacks.on_finish(None),
        }));
        if let Err(payload) = finished {
            eprintln!(
                "sched-mpi: rank {}: a callback panicked in on_finish ({}); the run's result \
                 stands",
                self.rank(),
                dag_core::panic_message(&*payload)
            );
        }
        result
    }
}

/// `Ok` when MPI can be used now.
fn ready() -> Result<(), Error> {
    if !mpi::environment::is_initialized() {
        return Err(Error::Scheduler(
            "MPI is not initialised: call sched_mpi::Mpi::init() first".into(),
        ));
    }
    if mpi::environment::is_finalized() {
        return Err(Error::Scheduler(
            "MPI was finalised (the sched_mpi::Mpi value was dropped) before this run".into(),
        ));
    }
    Ok(())
}
