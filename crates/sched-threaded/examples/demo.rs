//! Build a graph of about a million tasks (a tree sum, fan-in 8), run it with a progress bar on
//! the threaded scheduler, and print the task count, wall time and per-task overhead, next to
//! the synchronous scheduler.
//!
//! `cargo run --release -p sched-threaded --example demo [LEAVES]`

use dag_core::{NoCallbacks, ProgressBar, Scheduler, synthetic};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let leaves: usize = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|e| format!("LEAVES must be a number, got {a:?}: {e}"))?,
        None => 875_000,
    };
    let expected = (leaves as u64) * (leaves as u64).saturating_sub(1) / 2;
    let threaded = ThreadedScheduler::new();
    println!(
        "tree sum of {leaves} leaves, fan-in 8, {} threads",
        threaded.threads()
    );
    for (sched, bar) in [
        (&threaded as &dyn Scheduler, true),
        (&SyncScheduler::new() as &dyn Scheduler, false),
    ] {
        let t0 = Instant::now();
        let (graph, root) = synthetic::tree(leaves, 8);
        let built = t0.elapsed();
        let run = if bar {
            sched.compute_with(&graph, &[root], &ProgressBar::new())?
        } else {
            sched.compute_with(&graph, &[root], &NoCallbacks)?
        };
        let total = t0.elapsed();
        let got = *run.values[0].get::<u64>()?;
        if got != expected {
            return Err(format!("wrong sum: {got}, expected {expected}").into());
        }
        println!(
            "{:>9}: {} tasks | build {:>7.1} ms | run {:>7.1} ms | {:.3} µs/task incl. build | peak {} bytes live",
            sched.name(),
            run.stats.tasks,
            built.as_secs_f64() * 1e3,
            run.stats.wall.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e6 / run.stats.tasks as f64,
            run.stats.peak_bytes,
        );
    }
    Ok(())
}
