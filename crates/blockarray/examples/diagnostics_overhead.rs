//! What diagnostics cost a run, measured robustly on a busy machine: the `ones_sum` workload
//! (`ones((10000, 10000), chunks=(100, 100)).sum()`, graph building included, as `cargo
//! xtask bench` times it) run in rounds, each round running every configuration once in a
//! rotating order, so load that comes and goes hits all of them alike; medians per
//! configuration, of wall time and of the process's CPU time (which other processes' load
//! inflates less).
//!
//! `cargo run --release -p blockarray --example diagnostics_overhead [-- --rounds N]`

use blockarray::BlockArray;
use blockarray::diagnostics::{Dashboard, Profiler, ResourceProfiler};
use dag_core::{Callbacks, NoCallbacks};
use std::time::Instant;

/// Callbacks that ask for per-task events and do nothing with them: the schedulers' own cost
/// of timing tasks.
struct Timed;

impl Callbacks for Timed {}

/// CPU seconds this process has used (all threads, user and system), to the microsecond.
fn cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Wall and CPU seconds of one `ones_sum` run.
fn ones_sum(callbacks: &dyn Callbacks) -> (f64, f64) {
    let c = cpu();
    let t = Instant::now();
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100]).expect("valid chunks");
    let (v, _) = x
        .sum(None, false)
        .expect("a sum")
        .compute_with_callbacks(&*blockarray::default_scheduler(), callbacks)
        .expect("computes");
    assert_eq!(v.into_iter().next(), Some(1e8));
    (t.elapsed().as_secs_f64(), cpu() - c)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(30), |s| s.parse())?;
    let dashboard = Dashboard::serve("127.0.0.1:0")?;
    let names = [
        "no callbacks",
        "timing only",
        "Profiler",
        "Profiler + ResourceProfiler",
        "Dashboard (serving)",
    ];
    let run = |i: usize| -> (f64, f64) {
        match i {
            0 => ones_sum(&NoCallbacks),
            1 => ones_sum(&Timed),
            2 => ones_sum(&Profiler::new()),
            3 => ones_sum(&(Profiler::new(), ResourceProfiler::new())),
            _ => ones_sum(&dashboard),
        }
    };
    for i in 0..names.len() {
        run(i); // warm up
    }
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for r in 0..rounds {
        for k in 0..names.len() {
            let i = (k + r) % names.len();
            let (w, c) = run(i);
            wall[i].push(w);
            cpu[i].push(c);
        }
    }
    let (base_wall, base_cpu) = (median(&mut wall[0]), median(&mut cpu[0]));
    println!("ones_sum, {rounds} rounds, medians:");
    println!(
        "  {:<30} {:>9} {:>8}   {:>9} {:>8}",
        "", "wall", "", "CPU", ""
    );
    for i in 0..names.len() {
        let (w, c) = (median(&mut wall[i]), median(&mut cpu[i]));
        println!(
            "  {:<30} {:>6.1} ms {:+6.1} %   {:>6.1} ms {:+6.1} %",
            names[i],
            w * 1e3,
            (w / base_wall - 1.0) * 100.0,
            c * 1e3,
            (c / base_cpu - 1.0) * 100.0
        );
    }
    Ok(())
}
