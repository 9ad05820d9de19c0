//! The live dashboard: serve it, then run computations long enough to watch — the task
//! stream, progress per operation, bytes held against the memory limit, worker occupancy.
//!
//! `cargo run --release -p blockarray --example dashboard` and open http://127.0.0.1:8787/
//! (`--addr HOST:PORT` to serve elsewhere; `--linger SECONDS` to keep serving after the runs,
//! default 60; `--short` for a run of a few seconds on a free port, as `cargo xtask demo`
//! does).

use blockarray::diagnostics::{DEFAULT_ADDR, Dashboard};
use blockarray::{BlockArray, Computation, ProgressBar, random::Rng, s};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let short = std::env::args().any(|a| a == "--short");
    let addr = arg("--addr").unwrap_or_else(|| {
        if short {
            "127.0.0.1:0".into()
        } else {
            DEFAULT_ADDR.into()
        }
    });
    let linger: f64 = arg("--linger").map_or(Ok(if short { 0.0 } else { 60.0 }), |s| s.parse())?;
    // Sizes: a few seconds each on two cores, or a fraction of a second with --short.
    let n = if short { 4_000 } else { 20_000 };

    let dashboard = Dashboard::serve(addr.as_str())?;
    println!("dashboard: {}", dashboard.url());
    let scheduler = blockarray::default_scheduler();
    let callbacks = (&dashboard, ProgressBar::new());
    let t0 = Instant::now();

    // 1. A reduction over normal random numbers: generation and partial means, then combines.
    let x: BlockArray<f64> = Rng::new(1).normal(10.0, 0.1, &[n, n], [n / 20, n / 20])?;
    let m = x.mean(Some(&[0]), false)?;
    let (v, stats) = m.compute_with_callbacks(&*scheduler, &callbacks)?;
    println!(
        "normal({n}×{n}).mean(axis=0): {} values around {:.4}; {} tasks in {:.2} s",
        v.len(),
        v.mean().unwrap_or(f64::NAN),
        stats.tasks,
        stats.wall.as_secs_f64()
    );

    // 2. The seed talk's example and two more results of the same array, in one computation.
    let y: BlockArray<f64> = Rng::new(2).random(&[n, n], [n / 10, n / 10])?;
    let z = (&y + &y.t())?;
    let mut c = Computation::new();
    let h1 = c.add(&z.slice(s![..;2, n / 2..])?.mean(Some(&[1]), false)?);
    let h2 = c.add(&z.std(None, 0.0, false)?);
    let h3 = c.add(&y.max(Some(&[1]), false)?);
    println!("plan: {}", c.plan(&*scheduler)?);
    let (mut out, stats) = c.run_with(&*scheduler, &callbacks)?;
    println!(
        "(y + y.T) slice mean, std, y.max(axis=1): {} + 1 + {} values; {} tasks in {:.2} s",
        out.take(h1)?.len(),
        out.take(h3)?.len(),
        stats.tasks,
        stats.wall.as_secs_f64()
    );
    let _ = out.take(h2)?;

    // 3. Many small tasks: ones in 100 × 100 blocks, summed (a tree of about 11,500 tasks).
    let ones = BlockArray::<f64>::ones(&[n / 2, n / 2], [100, 100])?;
    let (total, stats) = ones
        .sum(None, false)?
        .compute_with_callbacks(&*scheduler, &callbacks)?;
    println!(
        "ones.sum() = {}; {} tasks in {:.3} s",
        total.into_iter().next().unwrap_or(f64::NAN),
        stats.tasks,
        stats.wall.as_secs_f64()
    );

    println!("all runs took {:.2} s", t0.elapsed().as_secs_f64());
    if linger > 0.0 {
        println!(
            "serving the final state for {linger} s more ({}); Ctrl-C to stop",
            dashboard.url()
        );
        std::thread::sleep(Duration::from_secs_f64(linger));
    }
    Ok(())
}
