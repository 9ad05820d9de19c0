//! Helpers shared by the fault tests.

use dag_core::Scheduler;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Every scheduler a fault must be handled by: synchronous, and threaded with 1, 2 and 8
/// workers (more workers than cores, so stealing and sleeping are exercised).
pub fn schedulers() -> Vec<(String, Arc<dyn Scheduler>)> {
    let mut v: Vec<(String, Arc<dyn Scheduler>)> =
        vec![("sync".into(), Arc::new(SyncScheduler::new()))];
    for n in [1, 2, 8] {
        v.push((
            format!("threaded({n})"),
            Arc::new(ThreadedScheduler::builder().threads(n).build().unwrap()),
        ));
    }
    v
}

/// Run `f` on another thread and fail the test if it takes longer than `secs`: a hang must be
/// a failure, not a stuck CI job.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the run hung (or its thread panicked)")
}
