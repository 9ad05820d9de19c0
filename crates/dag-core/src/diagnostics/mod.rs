//! Diagnostics: what a run did, for people — dask's profilers, its HTML plots and its
//! dashboard, as [`Callbacks`](crate::Callbacks).
//!
//! - [`Profiler`] records every task: key, operation ([`Plan::operation`](crate::Plan::operation)),
//!   worker, start, end, bytes in and out, at about 40 bytes and a few tens of nanoseconds per
//!   task, into per-worker buffers (cheap enough to leave on; measured in
//!   `docs/benchmarks.md`).
//! - [`ResourceProfiler`] samples the process's CPU and resident memory
//!   (`CLOCK_PROCESS_CPUTIME_ID`, `/proc/self/statm`) and the scheduler's bytes held ([`RunInfo`](crate::RunInfo)) every
//!   100 ms on a thread that starts and stops with the run.
//! - [`Report`] writes one self-contained HTML file from them (script, style and data inline;
//!   it opens from disk with no network): the task stream per worker coloured by operation,
//!   memory and CPU over time, time per operation, and the predicted peak of bytes held
//!   against the measured one. [`Profile::chrome_trace`] writes Chrome's trace-event JSON for
//!   Perfetto.
//! - [`render_dot`] draws a graph's DOT text to SVG, PNG or PDF with Graphviz, or writes the
//!   text itself.
//! - With the `dashboard` cargo feature, `Dashboard` serves a live page (task stream,
//!   progress per operation, bytes held against the memory limit, worker occupancy) while
//!   runs go on.
//!
//! ```
//! use dag_core::diagnostics::{Profiler, Report, ResourceProfiler};
//! use dag_core::{Plan, ProgressBar, Scheduler};
//!
//! let (graph, root) = dag_core::synthetic::tree(10_000, 8);
//! let plan = Plan::new(&graph, &[root])?;
//! let profiler = Profiler::new();
//! let resources = ResourceProfiler::new();
//! let scheduler = sched_threaded::ThreadedScheduler::new();
//! // Callbacks combine as a tuple.
//! scheduler.execute(&plan, &(&profiler, &resources, &ProgressBar::new()))?;
//!
//! let (profile, samples) = (profiler.last().unwrap(), resources.last().unwrap());
//! assert_eq!(profile.tasks.len(), plan.len());
//! let dir = std::env::temp_dir().join(format!("diagnostics-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! Report::new("tree sum")
//!     .profile(&profile)
//!     .resources(&samples)
//!     .predicted_peak(plan.predicted_peak(scheduler.workers()))
//!     .write_html(dir.join("profile.html"))?;
//! profile.write_chrome_trace(dir.join("trace.json"), Some(&samples))?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "dashboard")]
mod dashboard;
mod graphviz;
mod json;
mod profiler;
mod report;
mod resources;

#[cfg(feature = "dashboard")]
pub use dashboard::{DEFAULT_ADDR, Dashboard};
pub use graphviz::{DOT_FORMATS, graphviz_available, render_dot};
pub use profiler::{OpSummary, Profile, Profiler, TaskRecord};
pub use report::Report;
pub use resources::{ProcessUsage, ResourceProfile, ResourceProfiler, Sample, process_usage};
