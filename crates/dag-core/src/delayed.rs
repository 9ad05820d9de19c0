//! Imperative task composition: `Delayed<T>` values built from functions of earlier results.
//!
//! For work that fits no collection: wrap inputs with [`Delayed::value`], combine them with
//! [`Delayed::map`], [`Delayed::zip_with`] and [`Delayed::reduce`], and compute the result with
//! any [`Scheduler`]. Each call records one task; nothing runs until `compute`.
//!
//! Keys: a known value is keyed by its contents, so equal values share a key. A function's
//! task is keyed by its [`OpName`]: a plain name (`"load"`) is unique to the call, because a
//! closure's captured values cannot be seen (`x.map("scale", move |v| Ok(v * k))` for two
//! different `k` must not share a result); [`OpName::pure`] keys it by the name and a token the
//! caller vouches for, so equal calls on equal inputs share one task.

use crate::{
    Data, Error, Graph, Key, OpName, Scheduler, Task, TaskError, Tokenize, Tokenizer, Value,
};
use rustc_hash::FxHashMap;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

struct Node {
    key: Key,
    task: Task,
    deps: Vec<Arc<Node>>,
    /// Made by [`Delayed::named`]: the key is the caller's, not derived from the work, so
    /// another node with the same key is a different value.
    named: bool,
}

impl Drop for Node {
    // Iterative, so dropping a chain of a million delayed values does not overflow the stack.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.deps);
        while let Some(n) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(n) {
                stack.append(&mut node.deps);
            }
        }
    }
}

/// A lazily computed `T`: a key plus the tasks that produce it.
///
/// ```
/// use dag_core::Delayed;
/// use sched_sync::SyncScheduler;
/// let xs: Vec<Delayed<i64>> = (1..=4).map(Delayed::value).collect();
/// let squares: Vec<_> = xs.iter().map(|x| x.map("square", |v| Ok(v * v))).collect();
/// let total = Delayed::reduce("sum", &squares, |vs| Ok(vs.iter().copied().sum::<i64>()));
/// assert_eq!(total.compute(&SyncScheduler::new()).unwrap(), 30);
/// assert_eq!(total.graph()?.len(), 9);
/// # Ok::<(), dag_core::Error>(())
/// ```
pub struct Delayed<T> {
    node: Arc<Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Delayed<T> {
    fn clone(&self) -> Self {
        Delayed {
            node: Arc::clone(&self.node),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Delayed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Delayed({})", self.node.key)
    }
}

/// The key of `op`'s task over `deps`: the function's name and token (unique unless the caller
/// made it pure), its type, and the inputs.
fn fn_key<F: ?Sized>(op: &OpName, deps: &[&Key]) -> Key {
    let mut t = Tokenizer::new();
    t.write(op).write_str(std::any::type_name::<F>());
    for k in deps {
        t.write_key(k);
    }
    Key::scalar(format!("{}-{}", op.name(), t.finish_hex()))
}

fn arg<A: Any>(values: &[Value], i: usize) -> Result<&A, TaskError> {
    Ok(values[i].get::<A>()?)
}

impl<T: Data + Clone> Delayed<T> {
    /// A known value, keyed by its type and contents (equal bits of different types, such as
    /// `1.0f32` and `0x3f80_0000u32`, get different keys).
    pub fn value(v: T) -> Delayed<T>
    where
        T: Tokenize,
    {
        let name = crate::tokenize("value", &(std::any::type_name::<T>(), &v));
        Self::literal(Key::scalar(name), v, false)
    }

    /// A known value under a key of your choosing (for types that cannot be tokenized). The
    /// key must name this value alone: a computation that meets two different values named
    /// with one key is refused ([`ErrorKind::DuplicateKey`](crate::ErrorKind::DuplicateKey)).
    pub fn named(key: Key, v: T) -> Delayed<T> {
        Self::literal(key, v, true)
    }

    /// A known value under `key`, which is the caller's own when `named`.
    fn literal(key: Key, v: T, named: bool) -> Delayed<T> {
        Delayed {
            node: Arc::new(Node {
                key,
                task: Task::literal(Value::new(v)),
                deps: Vec::new(),
                named,
            }),
            _type: PhantomData,
        }
    }

    /// The key of this value.
    pub fn key(&self) -> &Key {
        &self.node.key
    }

    /// `f(self)`, as a new task labelled `name` (unique to this call unless made with
    /// [`OpName::pure`]).
    pub fn map<U, F>(&self, name: impl Into<OpName>, f: F) -> Delayed<U>
    where
        U: Data + Clone,
        F: Fn(&T) -> Result<U, TaskError> + Send + Sync + 'static,
    {
        let op = name.into();
        let name = op.name();
        let key = fn_key::<F>(&op, &[self.key()]);
        let task = Task::new([self.key().clone()], move |v| {
            Ok(Value::new(f(arg(v, 0)?)?))
        })
        .with_label(name);
        Delayed::from_node(key, task, vec![Arc::clone(&self.node)])
    }

    /// `f(self, other)`, as a new task labelled `name` (unique to this call unless made with
    /// [`OpName::pure`]).
    pub fn zip_with<B, U, F>(&self, other: &Delayed<B>, name: impl Into<OpName>, f: F) -> Delayed<U>
    where
        B: Data + Clone,
        U: Data + Clone,
        F: Fn(&T, &B) -> Result<U, TaskError> + Send + Sync + 'static,
    {
        let op = name.into();
        let name = op.name();
        let key = fn_key::<F>(&op, &[self.key(), other.key()]);
        let deps = [self.key().clone(), other.key().clone()];
        let task =
            Task::new(deps, move |v| Ok(Value::new(f(arg(v, 0)?, arg(v, 1)?)?))).with_label(name);
        Delayed::from_node(
            key,
            task,
            vec![Arc::clone(&self.node), Arc::clone(&other.node)],
        )
    }

    /// `f(&[all items])`, as one task labelled `name` (for example, a sum of many results;
    /// unique to this call unless made with [`OpName::pure`]).
    pub fn reduce<U, F>(name: impl Into<OpName>, items: &[Delayed<T>], f: F) -> Delayed<U>
    where
        U: Data + Clone,
        F: Fn(&[&T]) -> Result<U, TaskError> + Send + Sync + 'static,
    {
        let op = name.into();
        let name = op.name();
        let keys: Vec<&Key> = items.iter().map(Delayed::key).collect();
        let key = fn_key::<F>(&op, &keys);
        let deps: Vec<Key> = keys.into_iter().cloned().collect();
        let task = Task::new(deps, move |v| {
            let args = (0..v.len())
                .map(|i| arg::<T>(v, i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::new(f(&args)?))
        })
        .with_label(name);
        Delayed::from_node(
            key,
            task,
            items.iter().map(|d| Arc::clone(&d.node)).collect(),
        )
    }

    fn from_node(key: Key, task: Task, deps: Vec<Arc<Node>>) -> Delayed<T> {
        Delayed {
            node: Arc::new(Node {
                key,
                task,
                deps,
                named: false,
            }),
            _type: PhantomData,
        }
    }

    /// The graph of every task this value needs (each shared task once).
    ///
    /// # Errors
    /// Two different values [`named`](Self::named) with one key.
    pub fn graph(&self) -> Result<Graph, Error> {
        graph_of(std::slice::from_ref(&self.node))
    }

    /// Compute the value with `scheduler`.
    pub fn compute(&self, scheduler: &dyn Scheduler) -> Result<T, Error> {
        Ok(Self::compute_all(std::slice::from_ref(self), scheduler)?.remove(0))
    }

    /// Compute several values in one run, sharing their common tasks.
    pub fn compute_all(items: &[Delayed<T>], scheduler: &dyn Scheduler) -> Result<Vec<T>, Error> {
        let nodes: Vec<Arc<Node>> = items.iter().map(|d| Arc::clone(&d.node)).collect();
        let graph = graph_of(&nodes)?;
        let keys: Vec<Key> = items.iter().map(|d| d.key().clone()).collect();
        let values = scheduler.compute(&graph, &keys)?;
        values
            .into_iter()
            .zip(&keys)
            .map(|(v, k)| v.into_inner::<T>().map_err(|e| e.at_key(k)))
            .collect()
    }
}

/// The graph under `roots`. Nodes with equal keys are the same work (keys derive from it),
/// except for [`Delayed::named`] values: two different nodes with one key, either of them
/// named, are refused rather than merged into one task (which gave both the value of one).
///
/// A second node with a key already seen is not inserted, but what it reads is still walked:
/// a task keyed by its inputs' keys (a pure operation) hides a clash between two named values
/// below it, which must still be found. Each node is walked once, so this stays linear.
fn graph_of(roots: &[Arc<Node>]) -> Result<Graph, Error> {
    let mut graph = Graph::new();
    let mut by_key: FxHashMap<&Key, &Node> = FxHashMap::default();
    let mut walked: rustc_hash::FxHashSet<*const Node> = Default::default();
    let mut stack: Vec<&Node> = roots.iter().map(|n| &**n).collect();
    while let Some(n) = stack.pop() {
        if !walked.insert(n as *const Node) {
            continue;
        }
        match by_key.get(&n.key) {
            Some(&other) => {
                if n.named || other.named {
                    return Err(Error::DuplicateKey { key: n.key.clone() });
                }
            }
            None => {
                by_key.insert(&n.key, n);
                graph.insert(n.key.clone(), n.task.clone());
            }
        }
        stack.extend(n.deps.iter().map(|d| &**d));
    }
    Ok(graph)
}
