//! The seed talk's `(x + x.T)[::2, 5000:].mean(axis=1)`, and `sum(x @ x.T)`, run across MPI
//! ranks.
//!
//! ```sh
//! cargo run --release -p sched-mpi --example distributed_mean -- --np 2   # launches mpirun
//! mpirun -np 4 target/release/examples/distributed_mean                  # an MPI program
//! srun -n 64 target/release/examples/distributed_mean --n 40000          # on a Slurm cluster
//! ```
//!
//! Every rank runs this same program and builds the same expression; the `MpiScheduler` gives
//! each rank its share of the blocks, sends the blocks other ranks need, and gathers the
//! result to rank 0, which prints it with the traffic between the ranks. `--np N` (not under
//! MPI) launches `mpirun -np N` on this program with the settings of `sched_mpi::MPI_ENV`.

use blockarray::{Computation, random::Rng, s};
use sched_mpi::{Mpi, MpiScheduler};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let n = flag("--n").unwrap_or(4000);
    if let Some(ranks) = flag("--np") {
        // Not an MPI program yet: launch this one on `ranks` ranks.
        let exe = std::env::current_exe().expect("this program's path");
        let status = sched_mpi::mpirun(ranks)
            .arg(exe)
            .args(["--n", &n.to_string()])
            .status();
        return match status {
            Ok(s) if s.success() => ExitCode::SUCCESS,
            Ok(s) => {
                eprintln!("mpirun failed: {s}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("cannot run mpirun (install Open MPI: cargo xtask deps): {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mpi = Mpi::init()?;
    let sched = MpiScheduler::builder().threads(1).build(&mpi)?;
    let block = (n / 4).max(1);
    let x = Rng::new(42).random::<f64>(&[n, n], [block, block])?;
    let y = (&x + &x.t())?
        .slice(s![..;2, n / 2..])?
        .mean(Some(&[1]), false)?;
    let mut c = Computation::new();
    let h = c.add(&y);
    let mut results = c.run(&sched)?;
    let stats = sched.last_run().expect("a run happened");
    if results.held() {
        let y = results.take(h)?;
        let head: Vec<String> = y.iter().take(4).map(|v| format!("{v:.6}")).collect();
        println!(
            "(x + x.T)[::2, {}:].mean(axis=1) of a {n}×{n} random array on {} MPI ranks: \
             {} values, first [{}]",
            n / 2,
            mpi.size(),
            y.len(),
            head.join(", ")
        );
        println!("{stats}");
        let plain = y.iter().sum::<f64>() / y.len() as f64;
        println!("mean of the result: {plain:.6} (uniform [0, 1) values: about 1.0)");
    }
    // Random blocks are generated where they are read, so that moved little: a contraction
    // reads every block of a row and a column, and moves blocks between ranks.
    let g = x.matmul(&x.t())?.sum(None, false)?;
    let mut c = Computation::new();
    let h = c.add(&g);
    let mut results = c.run(&sched)?;
    let stats = sched.last_run().expect("a run happened");
    if results.held() {
        let total = results.take(h)?.iter().sum::<f64>();
        println!(
            "sum(x @ x.T) = {total:.6e} (about n³/4 = {:.6e})",
            (n as f64).powi(3) / 4.0
        );
        println!("{stats}");
    }
    Ok(())
}
