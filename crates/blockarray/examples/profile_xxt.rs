//! A profile of the seed talk's example, `(x + x.T)[::2, 5000:].mean(axis=1)` on a random
//! 10000 × 10000 array in 1000 × 1000 blocks: the run with a task profiler, a resource
//! profiler and a progress bar, written as an HTML report a person can open (task stream,
//! memory and CPU over time, time per operation, predicted against measured peak memory), a
//! Chrome trace for Perfetto, and the graph of operations drawn with Graphviz.
//!
//! `cargo run --release -p blockarray --example profile_xxt [-- --out DIR --size N]`
//! (default `target/diagnostics`, N = 10000).

use blockarray::diagnostics::{Profiler, Report, ResourceProfiler, graphviz_available};
use blockarray::{BlockArray, Computation, ProgressBar, random::Rng, s};
use std::path::PathBuf;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(arg("--out").unwrap_or_else(|| "target/diagnostics".into()));
    let n: usize = arg("--size").map_or(Ok(10_000), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;

    let x: BlockArray<f64> = Rng::new(42).random(&[n, n], [n / 10, n / 10])?;
    let y = (&x + &x.t())?
        .slice(s![..;2, n / 2..])?
        .mean(Some(&[1]), false)?;
    println!("(x + x.T)[::2, {}:].mean(axis=1):\n{y}\n", n / 2);

    let scheduler = blockarray::default_scheduler();
    let mut c = Computation::new();
    let h = c.add(&y);
    // Known before running: tasks and the predicted peak of bytes held.
    let plan = c.plan(&*scheduler)?;
    println!("plan: {plan}");

    // The graph of operations: one node per array operation, whatever the number of blocks.
    let ops_path = out.join(if graphviz_available() {
        "xxt_slice_mean.operations.svg"
    } else {
        "xxt_slice_mean.operations.dot"
    });
    c.visualize_operations(&ops_path)?;

    let (profiler, resources) = (Profiler::new(), ResourceProfiler::new());
    let (mut results, stats) =
        c.run_with(&*scheduler, &(&profiler, &resources, &ProgressBar::new()))?;
    let v = results.take(h)?;
    println!(
        "result: {} values, mean {:.6} (expect ≈ 1.0); {} tasks in {:.3} s, peak {} held",
        v.len(),
        v.mean().unwrap_or(f64::NAN),
        stats.tasks,
        stats.wall.as_secs_f64(),
        dag_core::fmt_bytes(stats.peak_bytes)
    );

    let (profile, samples) = (
        profiler.last().expect("one run"),
        resources.last().expect("one run"),
    );
    println!("\ntime per operation:");
    for op in profile.by_operation() {
        println!(
            "  {:<28} {:>5} tasks  {:>9.2} ms total  {:>7.2} ms mean",
            op.name,
            op.tasks,
            op.total.as_secs_f64() * 1e3,
            op.mean().as_secs_f64() * 1e3
        );
    }
    let report = out.join("xxt_slice_mean.html");
    Report::new("(x + x.T)[::2, 5000:].mean(axis=1)")
        .info(
            "expression",
            format!(
                "x = random(({n}, {n}), chunks=({0}, {0})); (x + x.T)[::2, {1}:].mean(axis=1)",
                n / 10,
                n / 2
            ),
        )
        .info(
            "scheduler",
            format!("{} with {} workers", scheduler.name(), scheduler.workers()),
        )
        .profile(&profile)
        .resources(&samples)
        .predicted_peak(plan.predicted_peak)
        .memory_limit(plan.allowed_mem)
        .write_html(&report)?;
    let trace = out.join("xxt_slice_mean.trace.json");
    profile.write_chrome_trace(&trace, Some(&samples))?;
    println!(
        "\nreport: {}\nChrome trace (open in ui.perfetto.dev): {}\ngraph of operations: {}",
        report.display(),
        trace.display(),
        ops_path.display()
    );
    Ok(())
}
