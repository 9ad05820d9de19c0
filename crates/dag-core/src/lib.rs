//! Task graphs for blocked algorithms.
//!
//! `dag-core` is the bottom layer of blockarray and knows nothing of arrays. It provides:
//!
//! - [`Key`]: a task name plus a block index, with deterministic tokens ([`Tokenizer`],
//!   [`tokenize`]) so the same operation on the same inputs has the same key in every process;
//! - [`Value`]: a type-erased, cheaply cloned task result that knows its size in bytes;
//! - [`Task`] and [`Graph`]: functions of their dependencies' values, keyed; validation
//!   (missing keys, cycles), culling, fusion, a listing ([`Graph`]'s `Display`) and DOT
//!   export; [`fuse`] is the fusion itself, usable by builders that fuse before a graph
//!   exists;
//! - [`Plan`]: a graph compiled for execution, in a memory-aware static order;
//! - the object-safe [`Scheduler`] trait that executors implement (`sched-sync`,
//!   `sched-threaded`), and the [`Callbacks`] trait for progress bars ([`ProgressBar`]),
//!   profilers and dashboards ([`diagnostics`]: a task profiler, a resource profiler, an HTML
//!   report, Chrome traces, Graphviz rendering, and with the `dashboard` feature a live
//!   dashboard in the browser);
//! - [`Delayed`]: imperative composition of functions of earlier results;
//! - [`wire`]: how values travel between processes (a registry of encoders by type) for
//!   distributed schedulers (`sched-mpi`), and [`Placement`] for the tasks that must run
//!   where a run's results are collected.
//!
//! # Example: a hand-built graph
//!
//! ```
//! use dag_core::{Graph, Key, Scheduler, Task, Value};
//! use sched_sync::SyncScheduler;
//!
//! let mut g = Graph::new();
//! for i in 0..4 {
//!     g.insert(Key::new("load", [i]), Task::literal(Value::new(i as i64)));
//! }
//! let parts: Vec<Key> = (0..4).map(|i| Key::new("load", [i])).collect();
//! g.insert(Key::scalar("total"), Task::new(parts, |vals| {
//!     let mut sum = 0i64;
//!     for v in vals {
//!         sum += v.get::<i64>()?;
//!     }
//!     Ok(Value::new(sum))
//! }));
//!
//! let out = SyncScheduler::new().compute(&g, &[Key::scalar("total")]).unwrap();
//! assert_eq!(*out[0].get::<i64>().unwrap(), 6);
//! assert!(g.to_dot().starts_with("digraph"));
//! ```

#![doc(test(attr(deny(warnings))))]

mod delayed;
pub mod diagnostics;
mod error;
pub mod fuse;
mod graph;
mod key;
mod memory;
mod plan;
mod progress;
mod scheduler;
pub mod synthetic;
mod task;
mod value;
pub mod wire;

pub use delayed::Delayed;
pub use error::{Error, ErrorKind};
pub use graph::Graph;
pub use key::{BlockIndex, Key, OpName, Tokenize, Tokenizer, tokenize};
pub use memory::{
    AllocatorTuning, BlockCache, MemoryMeter, available_cores, available_memory, fmt_bytes,
    tune_allocator,
};
pub use plan::{Cancel, Plan, panic_message};
pub use progress::ProgressBar;
pub use scheduler::{
    CallbackSet, Callbacks, Execution, FinishOnce, NoCallbacks, RunInfo, RunStats, Scheduler,
    TaskEvent,
};
pub use task::{Body, Placement, Task, TaskError, TaskFn, TaskResult};
pub use value::{Data, Value};
