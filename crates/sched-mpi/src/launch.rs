//! Launching MPI jobs on this machine: the `mpirun` command the tests, the demo and the
//! benchmarks use.
//!
//! Open MPI, run in a container or on a laptop, tries network interfaces, CPU binding and
//! `ssh` it does not need for ranks on one machine, and prints warnings about each. The
//! settings in [`MPI_ENV`] keep such runs quiet and reliable; on a cluster, leave them out and
//! let the site's configuration (and `srun`) decide.

use std::process::Command;

/// Open MPI settings (environment variables) for jobs on one machine, and why:
///
/// | variable | value | why |
/// |---|---|---|
/// | `OMPI_MCA_btl` | `self,vader` | ranks on one machine talk through shared memory; no network interface is probed (containers often have none usable) |
/// | `OMPI_MCA_btl_vader_single_copy_mechanism` | `none` | the default single-copy path (CMA) needs `ptrace` rights that containers deny, and then fails on large messages |
/// | `OMPI_MCA_pml` | `ob1` | the point-to-point layer for those transports, without probing UCX devices |
/// | `OMPI_MCA_osc` | `^ucx` | nor for one-sided communication |
/// | `OMPI_MCA_hwloc_base_binding_policy` | `none` | do not pin ranks to cores: with more ranks than cores (oversubscription) pinning piles them up |
/// | `OMPI_MCA_rmaps_base_oversubscribe` | `1` | allow more ranks than cores (tests run 4 ranks on 2 cores) |
/// | `OMPI_ALLOW_RUN_AS_ROOT`, `OMPI_ALLOW_RUN_AS_ROOT_CONFIRM` | `1` | CI runs as root, which `mpirun` otherwise refuses |
/// | `PMIX_MCA_gds` | `hash` | avoids the shared-memory data store of PMIx, which warns in containers |
pub const MPI_ENV: &[(&str, &str)] = &[
    ("OMPI_MCA_btl", "self,vader"),
    ("OMPI_MCA_btl_vader_single_copy_mechanism", "none"),
    ("OMPI_MCA_pml", "ob1"),
    ("OMPI_MCA_osc", "^ucx"),
    ("OMPI_MCA_hwloc_base_binding_policy", "none"),
    ("OMPI_MCA_rmaps_base_oversubscribe", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT", "1"),
    ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"),
    ("PMIX_MCA_gds", "hash"),
];

/// `mpirun -np RANKS --oversubscribe [--allow-run-as-root]` with [`MPI_ENV`]: add the program
/// and its arguments, then run it.
///
/// ```no_run
/// let status = sched_mpi::mpirun(2).arg("./my_program").status()?;
/// assert!(status.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn mpirun(ranks: usize) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.arg("-np").arg(ranks.to_string()).arg("--oversubscribe");
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    cmd.envs(MPI_ENV.iter().copied());
    cmd
}

fn is_root() -> bool {
    // The real user id, from /proc (no libc call needed): `Uid: real effective …`.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
