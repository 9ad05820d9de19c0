//! Users outgrow collections: the seed talk's imperative pipeline (load → clean → analyze →
//! store) with `Delayed`, and the same shape of work as a hand-built graph, with its listing,
//! its DOT and a progress bar.
//!
//! `cargo run -p dag-core --example delayed`

use dag_core::{Delayed, Graph, Key, ProgressBar, Scheduler, Task, TaskResult, Value};
use sched_sync::SyncScheduler;

fn main() -> Result<(), dag_core::Error> {
    let scheduler = SyncScheduler::new();

    // Imperative: each call records a task; nothing runs until compute.
    let files = ["a.csv", "b.csv", "c.csv"];
    let loaded: Vec<Delayed<Vec<f64>>> = files
        .iter()
        .map(|f| {
            Delayed::value(f.to_string()).map("load", |name: &String| {
                // Stand-in for reading a file: a deterministic series per name.
                Ok((0..5)
                    .map(|i| (name.len() * 10 + i) as f64)
                    .collect::<Vec<f64>>())
            })
        })
        .collect();
    let cleaned: Vec<_> = loaded
        .iter()
        .map(|d| {
            d.map("clean", |v: &Vec<f64>| {
                Ok(v.iter().map(|x| x / 10.0).collect::<Vec<f64>>())
            })
        })
        .collect();
    let analyzed = Delayed::reduce("analyze", &cleaned, |parts: &[&Vec<f64>]| {
        let all: Vec<f64> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        Ok(all.iter().sum::<f64>() / all.len() as f64)
    });
    let stored = analyzed.map("store", |mean: &f64| Ok(format!("mean = {mean:.3}")));
    let graph = stored.graph()?;
    println!("delayed graph ({} tasks):\n{graph}", graph.len());
    println!("result: {}\n", stored.compute(&scheduler)?);

    // The same by hand: keys, tasks, a listing and DOT.
    let mut g = Graph::new();
    for (i, f) in files.iter().enumerate() {
        let n = f.len();
        g.insert(
            Key::new("load", [i]),
            Task::new([], move |_| Ok(Value::new(n as f64))),
        );
        g.insert(
            Key::new("clean", [i]),
            Task::new([Key::new("load", [i])], |v| {
                Ok(Value::new(v[0].get::<f64>()? / 10.0))
            }),
        );
    }
    let mean = |v: &[Value]| -> TaskResult {
        let mut s = 0.0;
        for x in v {
            s += x.get::<f64>()?;
        }
        Ok(Value::new(s / v.len() as f64))
    };
    let parts: Vec<Key> = (0..files.len()).map(|i| Key::new("clean", [i])).collect();
    g.insert(Key::scalar("analyze"), Task::new(parts, mean));
    g.validate()?;
    println!("hand-built graph:\n{g}");
    println!("as DOT:\n{}", g.to_dot());
    let run = scheduler.compute_with(&g, &[Key::scalar("analyze")], &ProgressBar::new())?;
    println!(
        "analyze = {} ({} tasks, peak {} bytes held)",
        run.values[0].get::<f64>()?,
        run.stats.tasks,
        run.stats.peak_bytes
    );
    Ok(())
}
