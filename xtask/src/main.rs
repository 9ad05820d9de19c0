//! `cargo xtask`: the project's commands, identical for people and CI.
//!
//! - `cargo xtask demo`: install missing system packages, then run the demos (release build).
//! - `cargo xtask test`: install missing system packages, then `cargo fmt --check`,
//!   `cargo clippy -D warnings`, every test (unit, integration, doc) and the docs build with
//!   warnings denied.
//! - `cargo xtask deps`: only install the system packages the workspace needs.
//!
//! System packages are installed with apt-get when running as root; otherwise the one command
//! to run is printed and the task stops.

use std::process::{Command, ExitCode};

mod bench;

/// Debian packages the workspace links against, with the file that shows each is installed.
/// `blockarray-hdf5` links the HDF5 C library, found through pkg-config. `blockarray-zarr`
/// needs no system library: zarrs' blosc and zstd codecs compile their bundled C sources, and
/// blosc's snappy is C++, hence the C++ compiler. `visualize` renders graphs with Graphviz's
/// `dot`; the diagnostics tests load the dashboard and the HTML report in headless Chromium
/// (`crates/blockarray/tests/browser.rs`). `sched-mpi` links Open MPI (`mpi-sys` finds it with
/// `mpicc -show` and generates its bindings with bindgen, which needs libclang) and its tests
/// launch `mpirun`.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[
    ("libhdf5-dev", "/usr/include/hdf5/serial/hdf5.h"),
    ("pkg-config", "/usr/bin/pkg-config"),
    ("g++", "/usr/bin/g++"),
    ("graphviz", "/usr/bin/dot"),
    ("chromium", "/usr/bin/chromium"),
    // Paths that do not depend on the architecture or on Open MPI's major version.
    ("libopenmpi-dev", "/usr/share/doc/libopenmpi-dev"),
    ("openmpi-bin", "/usr/bin/mpirun.openmpi"),
    ("libclang-dev", "/usr/share/doc/libclang-dev"),
];

/// The demos `cargo xtask demo` runs, in order: (package, example, arguments).
const DEMOS: &[(&str, &str, &[&str])] = &[
    ("sched-threaded", "demo", &[]),
    ("blockarray", "lazy_slice", &[]),
    ("blockarray", "ones_sum", &[]),
    ("blockarray", "xxt_slice_mean", &[]),
    ("blockarray", "normal_mean", &[]),
    (
        "blockarray",
        "masked_mean",
        &["--gb", "0.5", "--limit-mb", "64"],
    ),
    ("blockarray", "random_sampling", &[]),
    ("blockarray", "mean_filter", &["2000"]),
    ("blockarray", "numpy_shapes", &[]),
    ("blockarray", "profile_xxt", &[]),
    ("blockarray", "dashboard", &["--short"]),
    ("blockarray-hdf5", "blocked_sum", &[]),
    ("blockarray-hdf5", "stack_files", &[]),
    (
        "blockarray-hdf5",
        "direct_chunks",
        &["--mb", "64", "--repeat", "1"],
    ),
    ("blockarray-hdf5", "larger_than_memory", &["--gb", "0.5"]),
    ("blockarray-linalg", "tall_qr", &[]),
    ("blockarray-linalg", "least_squares", &[]),
    (
        "blockarray-zarr",
        "hdf5_to_zarr",
        &["--days", "20", "--side", "300"],
    ),
    (
        "blockarray-zarr",
        "stack_to_zarr",
        &["--days", "8", "--side", "500"],
    ),
    (
        "blockarray-zarr",
        "larger_than_memory_zarr",
        &["--gb", "0.5"],
    ),
    (
        "blockarray-hdf5",
        "sort_dataset",
        &["--gb", "0.1", "--memory-gb", "0.03", "--reserve-gb", "1"],
    ),
    ("sched-mpi", "distributed_mean", &["--np", "2"]),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => deps().and_then(|()| demo()),
        Some("test") => deps().and_then(|()| test()),
        Some("deps") => deps(),
        Some("bench") => deps().and_then(|()| bench::bench(&args[1..])),
        Some("help" | "--help" | "-h") | None => {
            println!("{}", usage());
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{}", usage())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> &'static str {
    "usage: cargo xtask <command>\n\n\
     commands:\n  \
     demo   run the demos (release build)\n  \
     test   fmt check, clippy -D warnings, all tests, docs\n  \
     deps   install the system packages the workspace needs\n  \
     bench  blockarray against dask.array and NumPy side by side (`cargo xtask bench --help`)"
}

/// Run `cargo` with `args` (and extra environment), failing with the command line on error.
fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("$ cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn demo() -> Result<(), String> {
    for (package, example, extra) in DEMOS {
        let mut args = vec!["run", "--release", "-p", package, "--example", example];
        if !extra.is_empty() {
            args.push("--");
            args.extend(extra.iter().copied());
        }
        cargo(&args, &[])?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "--workspace", "--all-targets"], &[])?;
    cargo(&["test", "--workspace", "--doc"], &[])?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn deps() -> Result<(), String> {
    let missing: Vec<&str> = SYSTEM_PACKAGES
        .iter()
        .filter(|(_, marker)| !std::path::Path::new(marker).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!(
            "missing system packages {missing:?}; install them with:\n  sudo sh -c '{install}'"
        ));
    }
    println!("$ {install}");
    let status = Command::new("sh")
        .args(["-c", &install])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("could not run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{install}` failed ({status})"))
    }
}
