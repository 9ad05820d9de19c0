//! Tasks: functions of their dependencies' values.

use crate::{Key, Value};
use std::fmt;
use std::sync::Arc;

/// What a task returns on failure: any error, boxed.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// What a task returns.
pub type TaskResult = Result<Value, TaskError>;

/// A shared task function. It receives its dependencies' values in the order they were listed.
pub type TaskFn = Arc<dyn Fn(&[Value]) -> TaskResult + Send + Sync>;

/// The body of a task: a literal value, or a function of the dependencies.
#[derive(Clone)]
pub enum Body {
    /// A value known when the graph is built (dask's literal graph entries).
    Literal(Value),
    /// A function of the dependencies' values.
    Func(TaskFn),
}

impl Body {
    /// Run the body on its inputs.
    pub fn call(&self, inputs: &[Value]) -> TaskResult {
        match self {
            Body::Literal(v) => Ok(v.clone()),
            Body::Func(f) => f(inputs),
        }
    }
}

/// Where a task runs when a scheduler spreads a plan over several processes (`sched-mpi`).
/// Single-process schedulers ignore it.
///
/// A task's value can be sent anywhere, but a task's *side effects* happen where it runs: a
/// task that writes into a result held in memory (`blockarray`'s `compute` stores every block
/// into an in-memory array) must run in the processes that return the results, or their
/// arrays would miss the blocks computed elsewhere; a task that writes into a file must run
/// in one process only, the one that opened it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Wherever the scheduler chooses (the default).
    #[default]
    Anywhere,
    /// In every process that receives the run's results (see
    /// [`Scheduler::results_elsewhere`](crate::Scheduler::results_elsewhere)); its inputs are
    /// sent there. For writes into memory.
    Results,
    /// In the first process only (MPI rank 0, [`Scheduler::process_index`] 0), whatever
    /// processes receive the results: for side effects that must happen exactly once, such
    /// as writing into a file.
    ///
    /// [`Scheduler::process_index`]: crate::Scheduler::process_index
    First,
}

impl Placement {
    /// Whether the task is pinned to particular processes (not [`Anywhere`](Self::Anywhere)).
    /// Keep pinned tasks light: a builder that knows the run is spread over several processes
    /// ([`Scheduler::processes`](crate::Scheduler::processes)) should not fuse work into them,
    /// or that work would be pulled into those processes too.
    pub fn is_pinned(self) -> bool {
        self != Placement::Anywhere
    }
}

/// One node of a [`Graph`](crate::Graph): a body, the keys it depends on, and a label for
/// listings and DOT output.
#[derive(Clone)]
pub struct Task {
    deps: Vec<Key>,
    body: Body,
    label: Option<Arc<str>>,
    nbytes: Option<usize>,
    /// Bytes held while the task runs beyond its inputs and its value (0: none predicted).
    transient: usize,
    placement: Placement,
}

impl Task {
    /// A task computing `f(values of deps)`.
    ///
    /// ```
    /// use dag_core::{Key, Task, Value};
    /// let t = Task::new([Key::scalar("a")], |v| {
    ///     Ok(Value::new(*v[0].get::<i64>()? + 1))
    /// });
    /// assert_eq!(t.deps().len(), 1);
    /// ```
    pub fn new<F>(deps: impl IntoIterator<Item = Key>, f: F) -> Task
    where
        F: Fn(&[Value]) -> TaskResult + Send + Sync + 'static,
    {
        Task {
            deps: deps.into_iter().collect(),
            body: Body::Func(Arc::new(f)),
            label: None,
            nbytes: None,
            transient: 0,
            placement: Placement::Anywhere,
        }
    }

    /// A task from an already shared function.
    pub fn from_fn(deps: Vec<Key>, f: TaskFn) -> Task {
        Task {
            deps,
            body: Body::Func(f),
            label: None,
            nbytes: None,
            transient: 0,
            placement: Placement::Anywhere,
        }
    }

    /// A task whose result is a value known now.
    pub fn literal(value: Value) -> Task {
        let nbytes = Some(value.nbytes());
        Task {
            deps: Vec::new(),
            body: Body::Literal(value),
            label: None,
            nbytes,
            transient: 0,
            placement: Placement::Anywhere,
        }
    }

    /// The same task with a label shown in listings and DOT output (default: the key prefix).
    pub fn with_label(mut self, label: impl Into<Arc<str>>) -> Task {
        self.label = Some(label.into());
        self
    }

    /// The same task with the predicted size of the value it returns, in bytes (what
    /// [`Value::nbytes`] will report). Plans use it to predict the peak memory of a run
    /// before it starts ([`Plan::predicted_peak`](crate::Plan::predicted_peak)) and
    /// schedulers to keep to a memory limit. Literals know theirs.
    pub fn with_nbytes(mut self, nbytes: usize) -> Task {
        self.nbytes = Some(nbytes);
        self
    }

    /// The same task with the bytes it holds while it runs on top of its inputs and its value
    /// (a fused task's intermediate values, a kernel's scratch space).
    /// [`Plan::largest_footprint`](crate::Plan::largest_footprint) counts them, so that a
    /// memory limit refuses a task that could not run within it; the predicted and measured
    /// peaks count values held between tasks only. [`fuse`] sets them for the tasks it
    /// makes.
    ///
    /// [`fuse`]: crate::Graph::fuse
    pub fn with_transient(mut self, bytes: usize) -> Task {
        self.transient = bytes;
        self
    }

    /// The bytes the task holds while it runs on top of its inputs and its value (see
    /// [`Task::with_transient`]; 0 when none were given).
    pub fn transient(&self) -> usize {
        self.transient
    }

    /// The same task with a [`Placement`] (where it runs when a plan is spread over several
    /// processes).
    pub fn with_placement(mut self, placement: Placement) -> Task {
        self.placement = placement;
        self
    }

    /// Where the task runs when a plan is spread over several processes.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The predicted size of the task's value, if it was given.
    pub fn nbytes(&self) -> Option<usize> {
        self.nbytes
    }

    /// The keys this task depends on, in the order its function receives their values.
    pub fn deps(&self) -> &[Key] {
        &self.deps
    }

    /// The task's body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The label given with [`Task::with_label`], if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The label, shared (plans keep it without copying the string).
    pub(crate) fn shared_label(&self) -> Option<&Arc<str>> {
        self.label.as_ref()
    }

    /// Whether this task is a literal value.
    pub fn is_literal(&self) -> bool {
        matches!(self.body, Body::Literal(_))
    }

    /// Run the task on its inputs (the values of [`Task::deps`], in order).
    pub fn call(&self, inputs: &[Value]) -> TaskResult {
        self.body.call(inputs)
    }

    pub(crate) fn from_parts(
        deps: Vec<Key>,
        body: Body,
        label: Option<Arc<str>>,
        nbytes: Option<usize>,
        transient: usize,
        placement: Placement,
    ) -> Task {
        Task {
            deps,
            body,
            label,
            nbytes,
            transient,
            placement,
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("deps", &self.deps)
            .field("label", &self.label)
            .field("literal", &self.is_literal())
            .finish()
    }
}
