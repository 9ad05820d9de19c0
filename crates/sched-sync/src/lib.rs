//! The synchronous reference scheduler.
//!
//! [`SyncScheduler`] runs a [`Plan`] one task at a time, in the plan's static order, on the
//! calling thread. It is the reference the parallel schedulers are tested against, and the one
//! to use when debugging: a panic's backtrace points straight at the task.
//!
//! Like every scheduler it drops each intermediate value as soon as its last dependent has run,
//! so the static order's memory behaviour is exactly what this scheduler holds.
//!
//! ```
//! use dag_core::{Graph, Scheduler, Task, Value};
//! use sched_sync::SyncScheduler;
//!
//! let mut g = Graph::new();
//! g.insert("x".into(), Task::literal(Value::new(20.0f64)));
//! g.insert("y".into(), Task::new(["x".into(), "x".into()], |v| {
//!     Ok(Value::new(v[0].get::<f64>()? + v[1].get::<f64>()? + 2.0))
//! }));
//! let sched = SyncScheduler::new();
//! let out = sched.compute(&g, &["y".into()]).unwrap();
//! assert_eq!(*out[0].get::<f64>().unwrap(), 42.0);
//! ```

#![doc(test(attr(deny(warnings))))]

use dag_core::{
    Callbacks, Error, Execution, FinishOnce, MemoryMeter, Plan, RunInfo, RunStats, Scheduler,
    TaskEvent, Value, panic_message,
};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

/// Runs tasks one at a time in the plan's static order on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncScheduler;

impl SyncScheduler {
    /// The synchronous scheduler.
    pub fn new() -> SyncScheduler {
        SyncScheduler
    }
}

impl Scheduler for SyncScheduler {
    fn name(&self) -> &str {
        "sync"
    }

    fn execute(&self, plan: &Plan, callbacks: &dyn Callbacks) -> Result<Execution, Error> {
        dag_core::tune_allocator();
        // Tasks' own panics are caught by `Plan::run`; a panic in a callback or in a value's
        // `Drop` is caught here and ends the run with an `Err` naming the task it came from.
        let current = Cell::new(None);
        let callbacks = FinishOnce::new(callbacks);
        match catch_unwind(AssertUnwindSafe(|| run(plan, &callbacks, &current))) {
            Ok(result) => result,
            Err(payload) => {
                callbacks.finish_after_panic();
                let message = format!(
                    "a callback or a value's drop panicked: {}",
                    panic_message(&*payload)
                );
                Err(match current.get() {
                    Some(id) => Error::TaskFailed {
                        key: plan.key(id).clone(),
                        message,
                        panicked: true,
                    },
                    None => Error::Scheduler(message),
                })
            }
        }
    }
}

/// Run `plan` in order, recording in `current` the task being run (for errors).
fn run(
    plan: &Plan,
    callbacks: &dyn Callbacks,
    current: &Cell<Option<usize>>,
) -> Result<Execution, Error> {
    let start = Instant::now();
    let timed = callbacks.per_task();
    callbacks.on_start(plan);
    let meter = Arc::new(MemoryMeter::default());
    callbacks.on_run_info(&RunInfo::new(1, meter.clone()));
    let n = plan.len();
    let mut slots: Vec<Option<Value>> = vec![None; n];
    let mut uses: Vec<u32> = (0..n).map(|i| plan.dependents(i).len() as u32).collect();
    let mut inputs: Vec<Value> = Vec::new();
    for id in 0..n {
        if let Err(e) = plan.check_cancelled(id) {
            callbacks.on_finish(None);
            return Err(e);
        }
        current.set(Some(id));
        inputs.extend(plan.deps(id).iter().map(|&d| {
            slots[d as usize]
                .clone()
                .expect("dependencies run before their dependents")
        }));
        let key = plan.key(id);
        let event = timed.then(|| {
            let bytes_in = inputs.iter().map(Value::nbytes).sum();
            let event = TaskEvent::started(id, key, 0, bytes_in);
            callbacks.on_task_start(&event);
            event
        });
        let result = plan.run(id, &inputs);
        inputs.clear();
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                // The task's error stands even if a callback panics on it.
                if let Err(payload) =
                    catch_unwind(AssertUnwindSafe(|| callbacks.on_task_fail(key, &e)))
                {
                    eprintln!(
                        "sched-sync: a callback panicked in on_task_fail ({}); the task's error \
                         stands",
                        panic_message(&*payload)
                    );
                }
                callbacks.on_finish(None);
                return Err(e);
            }
        };
        if let Some(event) = event {
            callbacks.on_task_finish(&event.finished(value.nbytes()));
        }
        meter.hold(value.nbytes());
        slots[id] = Some(value);
        for &d in plan.deps(id) {
            let d = d as usize;
            uses[d] -= 1;
            if uses[d] == 0
                && !plan.is_output(d)
                && let Some(v) = slots[d].take()
            {
                meter.release(v.nbytes());
            }
        }
        // Nothing needs it (only possible for an unrequested sink): drop it now.
        if uses[id] == 0
            && !plan.is_output(id)
            && let Some(v) = slots[id].take()
        {
            meter.release(v.nbytes());
        }
    }
    current.set(None);
    let values = plan
        .outputs()
        .iter()
        .map(|&o| slots[o as usize].clone().expect("outputs are kept"))
        .collect();
    let stats = RunStats {
        tasks: n,
        wall: start.elapsed(),
        peak_bytes: meter.peak(),
        threads: 1,
    };
    callbacks.on_finish(Some(&stats));
    Ok(Execution { values, stats })
}
