//! `cargo xtask bench [WORKLOAD…] [--reps N]`: blockarray against dask.array and NumPy, in one
//! run, on this machine.
//!
//! 1. Builds `blockarray-bench` in release mode.
//! 2. Creates a virtual environment under `target/bench-venv` and installs NumPy, SciPy,
//!    dask\[array\], h5py and zarr into it (pinned in `benches/python/requirements.txt`) unless they
//!    import already. Without `python3`, or if the install fails, it says so and runs the
//!    blockarray side alone.
//! 3. Measures memory bandwidth with a STREAM-style triad (`blockarray-bench triad`).
//! 4. Runs every workload in every engine, engines alternating, each repetition a fresh
//!    process, after a triad of its own (the report names the workloads measured while the
//!    machine ran below 80 % of its fastest triad: a shared VM slows with its host's load).
//!    The child measures its own wall time (start-up and imports excluded) and prints
//!    it with a check value; the peak RSS comes from the OS (`wait4`'s `ru_maxrss`).
//!    A progress bar on stderr (drawn only when stderr is a terminal) counts the runs, with
//!    the one going on and an estimate of the time left; stdout and the files below are the
//!    same with or without it.
//! 5. Writes one JSON line per run to `target/bench/results.jsonl` and a Markdown report
//!    (machine, command, medians, ratios, peak RSS, bandwidth shares, check agreement, notes)
//!    to `target/bench/report.md` and between the `<!-- workloads:begin -->` and
//!    `<!-- workloads:end -->` lines of `docs/benchmarks.md` (for a run of every workload, or
//!    with `--docs`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The engines, in the order of the table's columns. `mpi` is blockarray on 2 MPI ranks × 1
/// thread (`sched-mpi`), reported in a table of its own with the traffic between the ranks.
const ENGINES: [&str; 4] = ["blockarray", "dask", "numpy", "mpi"];

/// The main table's engines (all cores each).
const TABLE_ENGINES: [&str; 3] = ["blockarray", "dask", "numpy"];

/// Ranks of the `mpi` engine.
const MPI_RANKS: usize = 2;

/// The Python packages the reference engines need (versions pinned in the requirements file).
const PY_REQUIREMENTS: &str = "benches/python/requirements.txt";
/// The Python side of the workloads.
const PY_WORKLOADS: &str = "benches/python/workloads.py";
/// The modules that must import for the Python engines to run.
const PY_IMPORTS: &str = "import numpy, scipy, dask.array, h5py, zarr";

/// Exit status with which a child says the workload does not exist (yet) in its engine.
const EXIT_MISSING: i32 = 3;

/// Cores of other load above which a run counts as perturbed.
const PERTURBED: f64 = 0.25;

/// How much slower than dask blockarray must be for the report to call it slower (rather than
/// on par): run-to-run noise on this kind of machine is several percent.
const ON_PAR: f64 = 1.05;

const BEGIN_MARKER: &str = "<!-- workloads:begin -->";
const END_MARKER: &str = "<!-- workloads:end -->";

/// How a workload's result is compared across engines, and how much memory traffic it implies.
struct Spec {
    /// The workload's name (the same in `blockarray-bench` and `workloads.py`).
    name: &'static str,
    /// What it computes (Markdown).
    about: &'static str,
    /// Whether the data are random: engines then use different generators, and the check is a
    /// statistic compared with `tolerance` rather than an exact value.
    random: bool,
    /// Relative tolerance between engines' checks.
    tolerance: f64,
    /// For memory-bound workloads: bytes a minimal algorithm moves through memory, and how
    /// they are counted.
    traffic: Option<(f64, &'static str)>,
}

/// Every workload, in table order.
const SPECS: &[Spec] = &[
    Spec {
        name: "ones_sum",
        about: "ones 10000×10000, chunks 100×100, `sum()`",
        random: false,
        tolerance: 1e-9,
        traffic: Some((8e8, "0.8 GB: each element produced and summed once")),
    },
    Spec {
        name: "normal_mean",
        about: "normal(10, 0.1) 20000×20000, chunks 1000×1000, `mean(axis=0)`",
        random: true,
        tolerance: 1e-4,
        traffic: None,
    },
    Spec {
        name: "xxt_slice_mean",
        about: "random 10000×10000, chunks 1000×1000, `(x + x.T)[::2, 5000:].mean(axis=1)`",
        random: true,
        tolerance: 2e-3,
        traffic: None,
    },
    Spec {
        name: "fused_chain",
        about: "random 10000×10000, chunks 1000×1000, `(exp(x) * x.T + 1).mean(axis=0)`",
        random: true,
        tolerance: 2e-3,
        traffic: None,
    },
    Spec {
        name: "lazy_slice",
        about: "`exp(ones 10000×10000, chunks 100×100)[1:100, 1:100]`",
        random: false,
        tolerance: 1e-9,
        traffic: None,
    },
    Spec {
        name: "matmul",
        about: "random 6000×6000, chunks 1000×1000, `x @ x.T`",
        random: true,
        tolerance: 3e-3,
        traffic: None,
    },
    Spec {
        name: "rechunk_sum",
        about: "random 10000×10000, chunks 10000×100 → 100×10000, `sum(axis=1)`",
        random: true,
        tolerance: 2e-3,
        traffic: Some((
            3.2e9,
            "3.2 GB: generate (write 0.8), rechunk (read 0.8 + write 0.8), sum (read 0.8)",
        )),
    },
    Spec {
        name: "task_overhead",
        about: "1,000,002 trivial tasks (fan-in-8 tree sum over 875,000 leaves), graph building included",
        random: false,
        tolerance: 1e-9,
        traffic: None,
    },
    Spec {
        name: "cholesky",
        about: "`cholesky` of an SPD 6000×6000, chunks 1000×1000",
        random: true,
        tolerance: 1e-3,
        traffic: None,
    },
    Spec {
        name: "tsqr",
        about: "tall-skinny QR of random 400000×100, chunks 20000×100",
        random: true,
        tolerance: 1e-2,
        traffic: None,
    },
    Spec {
        name: "svd_tall",
        about: "SVD of random 400000×100, chunks 20000×100",
        random: true,
        tolerance: 1e-3,
        traffic: None,
    },
    Spec {
        name: "lu_solve",
        about: "`solve(a, b)`, random a 6000×6000 in chunks 1000×1000, b 6000×100 (LU with partial pivoting)",
        random: true,
        // The check is the mean of a @ x, i.e. of b: 6·10⁵ uniform values, standard error 7.5e-4
        // relative.
        tolerance: 3e-3,
        traffic: None,
    },
    Spec {
        name: "topk",
        about: "the 10 largest of 10⁸ random values",
        random: true,
        tolerance: 1e-6,
        traffic: None,
    },
    Spec {
        name: "percentile",
        about: "percentiles 5, 50, 95 of 10⁸ random values",
        random: true,
        // dask.array.percentile merges per-chunk percentiles: it is off by about 1.5e-3 here.
        tolerance: 5e-3,
        traffic: None,
    },
    Spec {
        name: "overlap_stencil",
        about: "3×3 mean filter, random 8000×8000, chunks 1000×1000",
        random: true,
        tolerance: 1e-3,
        traffic: None,
    },
    Spec {
        name: "sort",
        about: "sort 10⁸ random values into a new array (chunks 10⁶); dask has no sort",
        random: true,
        // The mean of every 1000th sorted value: 10⁵ values, standard error about 1e-3.
        tolerance: 5e-3,
        traffic: None,
    },
    Spec {
        name: "hdf5_sum",
        about: "sum of 2·10⁸ f64 read from HDF5 (page cache), chunks 10⁶",
        random: false,
        tolerance: 1e-9,
        traffic: Some((1.6e9, "1.6 GB: each element read once")),
    },
    Spec {
        name: "hdf5_sum_cold",
        about: "`hdf5_sum` from the disk: the file dropped from the page cache before each run (posix_fadvise DONTNEED, untimed)",
        random: false,
        tolerance: 1e-9,
        traffic: Some((1.6e9, "1.6 GB: each element read once, from the disk")),
    },
    Spec {
        name: "zarr_sum",
        about: "sum of 2·10⁸ f64 read from a Zarr v3 array (zstd, page cache), chunks 10⁶",
        random: false,
        tolerance: 1e-9,
        traffic: Some((1.6e9, "1.6 GB: each element decoded once")),
    },
];

/// The command line of `cargo xtask bench`.
struct Options {
    /// Workloads to run, in table order.
    workloads: Vec<&'static Spec>,
    /// Engines to run.
    engines: Vec<&'static str>,
    /// Repetitions per workload and engine.
    reps: usize,
    /// Longest a single run may take before it is killed.
    timeout: Duration,
    /// Whether to rewrite the section of `docs/benchmarks.md`.
    docs: bool,
    /// Whether to run the reference engines on workloads blockarray lacks.
    with_missing: bool,
    /// How long to wait, before each run, for other processes to go idle.
    quiet_wait: Duration,
    /// How long to wait for that over the whole run; then runs start whatever the load.
    quiet_budget: Duration,
    /// The arguments as given, for the report.
    args: Vec<String>,
}

/// The usage text of `cargo xtask bench`.
pub fn usage() -> String {
    let names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    format!(
        "usage: cargo xtask bench [WORKLOAD…] [--reps N] [--engines LIST] [--timeout SECS]\n\
         \x20                        [--quiet-wait SECS] [--quiet-budget SECS]\n\
         \x20                        [--docs | --no-docs] [--with-missing]\n\n\
         Runs each workload in blockarray, dask.array and NumPy (engines alternating, each\n\
         repetition a fresh process), writes target/bench/results.jsonl and a report.\n\n\
         \x20 WORKLOAD        one of: {}\n\
         \x20                 (default: all)\n\
         \x20 --reps N        repetitions per workload and engine (default 3)\n\
         \x20 --engines LIST  comma-separated subset of blockarray,dask,numpy,mpi (default all;\n\
         \x20                 mpi: blockarray on 2 MPI ranks × 1 thread)\n\
         \x20 --timeout SECS  kill a run after this long (default 1800)\n\
         \x20 --quiet-wait SECS  before each run, wait up to this long for other processes\n\
         \x20                 to go idle (default 30; 0 to never wait)\n\
         \x20 --quiet-budget SECS  wait at most this long in all (default 600), then run\n\
         \x20                 whatever the load (perturbed runs are flagged in the report)\n\
         \x20 --docs          rewrite docs/benchmarks.md's workloads section even for a subset\n\
         \x20 --no-docs       do not rewrite it even for a full run\n\
         \x20 --with-missing  also run dask and NumPy on workloads blockarray does not have yet",
        names.join(", ")
    )
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut names: Vec<String> = Vec::new();
    let mut reps = 3;
    let mut engines: Vec<&'static str> = ENGINES.to_vec();
    let mut timeout = Duration::from_secs(1800);
    let mut docs = None;
    let mut with_missing = false;
    let mut quiet_wait = Duration::from_secs(30);
    let mut quiet_budget = Duration::from_secs(600);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n\n{}", usage()))
        };
        match arg.as_str() {
            "--reps" => {
                let v = value("--reps")?;
                reps = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("--reps needs a positive integer, got {v:?}"))?;
            }
            "--timeout" => {
                let v = value("--timeout")?;
                let secs = v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("--timeout needs a positive integer, got {v:?}"))?;
                timeout = Duration::from_secs(secs);
            }
            "--engines" => {
                let v = value("--engines")?;
                engines = Vec::new();
                for e in v.split(',').filter(|e| !e.is_empty()) {
                    let known = ENGINES.iter().find(|k| **k == e).ok_or_else(|| {
                        format!("unknown engine {e:?}; engines: {}", ENGINES.join(", "))
                    })?;
                    if !engines.contains(known) {
                        engines.push(known);
                    }
                }
                if engines.is_empty() {
                    return Err("--engines needs at least one engine".into());
                }
                engines.sort_by_key(|e| ENGINES.iter().position(|k| k == e));
            }
            "--quiet-wait" => {
                let v = value("--quiet-wait")?;
                let secs = v
                    .parse::<u64>()
                    .map_err(|_| format!("--quiet-wait needs seconds (0 or more), got {v:?}"))?;
                quiet_wait = Duration::from_secs(secs);
            }
            "--quiet-budget" => {
                let v = value("--quiet-budget")?;
                let secs = v
                    .parse::<u64>()
                    .map_err(|_| format!("--quiet-budget needs seconds (0 or more), got {v:?}"))?;
                quiet_budget = Duration::from_secs(secs);
            }
            "--docs" => docs = Some(true),
            "--no-docs" => docs = Some(false),
            "--with-missing" => with_missing = true,
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag:?}\n\n{}", usage()));
            }
            name => names.push(name.to_string()),
        }
    }
    let mut workloads = Vec::new();
    for name in &names {
        let spec = SPECS.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
            format!(
                "unknown workload {name:?}; known workloads: {}",
                known.join(", ")
            )
        })?;
        if !workloads.iter().any(|w: &&Spec| w.name == spec.name) {
            workloads.push(spec);
        }
    }
    let all = workloads.is_empty();
    if all {
        workloads = SPECS.iter().collect();
    } else {
        workloads.sort_by_key(|w| SPECS.iter().position(|s| s.name == w.name));
    }
    let docs = docs.unwrap_or(all && engines_all(&engines));
    Ok(Options {
        workloads,
        engines,
        reps,
        timeout,
        docs,
        with_missing,
        quiet_wait,
        quiet_budget,
        args: args.to_vec(),
    })
}

fn engines_all(engines: &[&str]) -> bool {
    engines.len() == ENGINES.len()
}

// ------------------------------------------------------------------------------------------
// Running a child and measuring it.

/// How a child process ended.
#[derive(Clone, Debug)]
struct Exit {
    /// Exit code, if it exited.
    code: Option<i32>,
    /// Terminating signal, if it was killed.
    signal: Option<i32>,
    /// Whether we killed it for running past the timeout.
    timed_out: bool,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.timed_out, self.code, self.signal) {
            (true, _, _) => write!(f, "killed after the timeout"),
            (_, Some(c), _) => write!(f, "exit status {c}"),
            (_, _, Some(s)) => write!(f, "killed by signal {s}"),
            _ => write!(f, "ended"),
        }
    }
}

/// A finished child: how it ended, what it printed, its peak RSS.
struct Child {
    exit: Exit,
    stdout: String,
    stderr: String,
    peak_rss_mb: f64,
    /// Cores other processes kept busy on average while the child ran (`None` without
    /// `/proc/stat`): above a few tenths, the measurement was perturbed.
    other_load: Option<f64>,
}

/// CPU seconds all processes have spent busy since boot (user, nice, system, irq, softirq in
/// `/proc/stat`).
fn busy_cpu_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum();
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| busy / ticks as f64)
}

/// The runs' progress bar (stderr; hidden unless stderr is a terminal, so logs and the
/// machine-readable outputs stay as they are).
static PROGRESS: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// Print a line on stdout without tearing the progress bar.
fn say(line: &str) {
    match PROGRESS.get() {
        Some(bar) => bar.suspend(|| println!("{line}")),
        None => println!("{line}"),
    }
}

/// The progress bar for `total` runs.
fn progress_bar(total: usize) -> &'static indicatif::ProgressBar {
    PROGRESS.get_or_init(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} runs, eta {eta}: {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    })
}

/// Before a run: wait (up to `max`) until other processes keep less than a quarter of a core
/// busy over half a second, so that a concurrent build does not skew the run. Returns the last
/// load seen.
fn wait_for_quiet(max: Duration) -> Option<f64> {
    let start = Instant::now();
    let mut announced = false;
    loop {
        let before = busy_cpu_seconds()?;
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let load = (busy_cpu_seconds()? - before) / t.elapsed().as_secs_f64();
        if load < 0.25 || start.elapsed() >= max {
            if announced {
                say(&format!(
                    "  (waited {:.0} s for other processes to quiet down; load now {load:.2} cores)",
                    start.elapsed().as_secs_f64()
                ));
            }
            return Some(load);
        }
        if !announced {
            say(&format!(
                "  (other processes keep {load:.1} cores busy: waiting up to {max:?})"
            ));
            announced = true;
        }
    }
}

fn timeval_secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

/// Run `cmd` to completion (killing it after `timeout`) with its output in files under
/// `scratch`, and read its peak resident set size from `wait4`.
fn run_child(cmd: &mut Command, timeout: Duration, scratch: &Path) -> Result<Child, String> {
    let out_path = scratch.join("child.stdout");
    let err_path = scratch.join("child.stderr");
    let io = |e: std::io::Error| format!("{}: {e}", scratch.display());
    let out = File::create(&out_path).map_err(io)?;
    let err = File::create(&err_path).map_err(io)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("could not start {:?}: {e}", cmd.get_program()))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| format!("pid: {e}"))?;
    let start = Instant::now();
    let busy_before = busy_cpu_seconds();
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: `pid` is our own child, not yet reaped (std's `Child` never waited for it);
        // `status` and `usage` are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        if r == -1 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("wait4 on child {pid}: {e}"));
        }
        if !timed_out && start.elapsed() > timeout {
            // SAFETY: sending a signal to our own unreaped child has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            timed_out = true;
        }
        let pause = if start.elapsed() < Duration::from_secs(1) {
            1
        } else {
            20
        };
        std::thread::sleep(Duration::from_millis(pause));
    }
    let wall = start.elapsed().as_secs_f64();
    let busy_after = busy_cpu_seconds();
    // Reaped above: dropping the handle neither waits nor kills.
    drop(child);
    let child_cpu = timeval_secs(usage.ru_utime) + timeval_secs(usage.ru_stime);
    let other_load = match (busy_before, busy_after) {
        (Some(b), Some(a)) if wall > 0.05 => Some(((a - b - child_cpu) / wall).max(0.0)),
        _ => None,
    };
    let exit = Exit {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Ok(Child {
        exit,
        stdout: read(&out_path),
        stderr: read(&err_path),
        // Linux reports ru_maxrss in KiB.
        peak_rss_mb: usage.ru_maxrss as f64 * 1024.0 / 1e6,
        other_load,
    })
}

/// A JSON value of the flat objects the children print.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// Parse a flat JSON object (`{"key": number | string | true | false | null, …}`; Python's
/// `NaN` and `Infinity` are accepted as numbers).
fn parse_flat_json(text: &str) -> Result<BTreeMap<String, Json>, String> {
    let bad = |what: &str| format!("not a flat JSON object ({what}): {text:?}");
    let chars: Vec<char> = text.trim().chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let parse_str = |i: &mut usize| -> Result<String, String> {
        if chars.get(*i) != Some(&'"') {
            return Err(bad("expected a string"));
        }
        *i += 1;
        let mut s = String::new();
        while let Some(&c) = chars.get(*i) {
            *i += 1;
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let e = *chars.get(*i).ok_or_else(|| bad("bad escape"))?;
                    *i += 1;
                    match e {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        'u' => {
                            let hex: String = chars.iter().skip(*i).take(4).collect();
                            let v = u32::from_str_radix(&hex, 16).map_err(|_| bad("bad \\u"))?;
                            s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                            *i += 4;
                        }
                        other => s.push(other),
                    }
                }
                c => s.push(c),
            }
        }
        Err(bad("unterminated string"))
    };
    let mut map = BTreeMap::new();
    skip_ws(&mut i);
    if chars.get(i) != Some(&'{') {
        return Err(bad("expected '{'"));
    }
    i += 1;
    skip_ws(&mut i);
    if chars.get(i) == Some(&'}') {
        return Ok(map);
    }
    loop {
        skip_ws(&mut i);
        let key = parse_str(&mut i)?;
        skip_ws(&mut i);
        if chars.get(i) != Some(&':') {
            return Err(bad("expected ':'"));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if chars.get(i) == Some(&'"') {
            Json::Str(parse_str(&mut i)?)
        } else {
            let start = i;
            while i < chars.len() && !matches!(chars[i], ',' | '}') && !chars[i].is_whitespace() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.as_str() {
                "null" => Json::Null,
                "true" => Json::Bool(true),
                "false" => Json::Bool(false),
                "NaN" => Json::Num(f64::NAN),
                "Infinity" => Json::Num(f64::INFINITY),
                "-Infinity" => Json::Num(f64::NEG_INFINITY),
                w => Json::Num(w.parse().map_err(|_| bad("bad value"))?),
            }
        };
        map.insert(key, value);
        skip_ws(&mut i);
        match chars.get(i) {
            Some(',') => i += 1,
            Some('}') => return Ok(map),
            _ => return Err(bad("expected ',' or '}'")),
        }
    }
}

/// The last line of `stdout` that holds a JSON object, parsed.
fn last_json(stdout: &str) -> Result<BTreeMap<String, Json>, String> {
    let line = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| "printed no JSON line".to_string())?;
    parse_flat_json(line)
}

fn num(map: &BTreeMap<String, Json>, key: &str) -> Option<f64> {
    match map.get(key) {
        Some(Json::Num(v)) => Some(*v),
        _ => None,
    }
}

/// The last few lines of a child's stderr, for error messages.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = all.len().saturating_sub(lines);
    let joined = all[start..].join(" | ");
    if joined.chars().count() > 600 {
        let cut: String = joined.chars().skip(joined.chars().count() - 600).collect();
        format!("…{cut}")
    } else {
        joined
    }
}

// ------------------------------------------------------------------------------------------
// Results.

/// What one run produced.
#[derive(Clone, Debug)]
enum Outcome {
    /// It ran: the child's own wall time and check value.
    Ok { seconds: f64, check: f64 },
    /// The workload does not exist (yet) in this engine.
    Missing(String),
    /// It failed (exit status and the end of its stderr).
    Failed(String),
    /// It was not run (because blockarray lacks the workload, or Python is unavailable).
    Skipped(String),
}

/// One run of one workload in one engine.
struct Run {
    workload: &'static str,
    engine: &'static str,
    rep: usize,
    peak_rss_mb: Option<f64>,
    /// Cores other processes kept busy during the run.
    other_load: Option<f64>,
    outcome: Outcome,
    /// The `mpi` engine's traffic between ranks: bytes sent, MPI messages.
    traffic: Option<(f64, f64)>,
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:?}"),
        _ => "null".into(),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Run {
    /// The run as one line of `results.jsonl`.
    fn to_json(&self) -> String {
        let (status, seconds, check, message) = match &self.outcome {
            Outcome::Ok { seconds, check } => ("ok", Some(*seconds), Some(*check), None),
            Outcome::Missing(m) => ("missing", None, None, Some(m.as_str())),
            Outcome::Failed(m) => ("failed", None, None, Some(m.as_str())),
            Outcome::Skipped(m) => ("skipped", None, None, Some(m.as_str())),
        };
        let mut line = format!(
            "{{\"workload\": {}, \"engine\": {}, \"rep\": {}, \"seconds\": {}, \"peak_rss_mb\": {}, \"check\": {}, \"status\": {}, \"other_load\": {}",
            json_str(self.workload),
            json_str(self.engine),
            self.rep,
            json_num(seconds),
            json_num(self.peak_rss_mb),
            json_num(check),
            json_str(status),
            json_num(self.other_load),
        );
        if let Some(m) = message {
            let _ = write!(line, ", \"message\": {}", json_str(m));
        }
        if let Some((bytes, messages)) = self.traffic {
            let _ = write!(
                line,
                ", \"bytes_sent\": {}, \"messages\": {}",
                json_num(Some(bytes)),
                json_num(Some(messages))
            );
        }
        line.push('}');
        line
    }
}

/// The median of `values` (which must not be empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// One engine's summary for one workload.
#[derive(Clone, Debug, Default)]
struct Summary {
    /// Median seconds over successful runs.
    seconds: Option<f64>,
    /// Median check over successful runs.
    check: Option<f64>,
    /// Largest peak RSS over successful runs.
    peak_rss_mb: Option<f64>,
    /// Successful runs.
    ok: usize,
    /// Successful runs that other processes perturbed (see [`PERTURBED`]).
    perturbed: usize,
    /// Whether the median includes perturbed runs (every successful run was perturbed).
    tainted: bool,
    /// Why there is no number: missing, failed or skipped (the first such message).
    problem: Option<(&'static str, String)>,
}

fn summarize(runs: &[Run], workload: &str, engine: &str) -> Summary {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.workload == workload && r.engine == engine)
        .collect();
    let mut secs = Vec::new();
    let mut clean_secs = Vec::new();
    let mut checks = Vec::new();
    let mut rss: Option<f64> = None;
    let mut problem = None;
    for r in &mine {
        match &r.outcome {
            Outcome::Ok { seconds, check } => {
                secs.push(*seconds);
                if !r.other_load.is_some_and(|l| l > PERTURBED) {
                    clean_secs.push(*seconds);
                }
                checks.push(*check);
                if let Some(m) = r.peak_rss_mb {
                    rss = Some(rss.map_or(m, |x: f64| x.max(m)));
                }
            }
            Outcome::Missing(m) => {
                problem.get_or_insert(("missing", m.clone()));
            }
            Outcome::Failed(m) => {
                problem.get_or_insert(("failed", m.clone()));
            }
            Outcome::Skipped(m) => {
                problem.get_or_insert(("not run", m.clone()));
            }
        }
    }
    let ok = secs.len();
    let perturbed = ok - clean_secs.len();
    let tainted = clean_secs.is_empty() && !secs.is_empty();
    // Runs that other processes perturbed only count when there is no other.
    let use_secs = if clean_secs.is_empty() {
        &mut secs
    } else {
        &mut clean_secs
    };
    Summary {
        ok,
        perturbed,
        tainted,
        seconds: (!use_secs.is_empty()).then(|| median(use_secs)),
        check: (!checks.is_empty()).then(|| median(&mut checks)),
        peak_rss_mb: rss,
        problem,
    }
}

// ------------------------------------------------------------------------------------------
// The machine and the environment.

fn root_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// The stdout of a command, trimmed, if it ran successfully.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One line describing the machine: CPU, cores, memory, kernel.
fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown memory".into(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let kernel = output_of("uname", &["-sr"]).unwrap_or_else(|| "unknown OS".into());
    format!("{cpu}, {cores} cores, {mem} RAM, {kernel}")
}

/// The reference engines' interpreter, if it could be set up.
struct Python {
    exe: PathBuf,
    versions: String,
}

fn imports_ok(exe: &Path) -> bool {
    Command::new(exe)
        .args(["-c", PY_IMPORTS])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Create the virtual environment and install the reference engines into it, unless they
/// import already. `Err` says why the Python side cannot run.
fn python_env(root: &Path, target: &Path) -> Result<Python, String> {
    let venv = target.join("bench-venv");
    let exe = venv.join("bin").join("python");
    if !exe.exists() {
        let version = output_of("python3", &["--version"])
            .ok_or("python3 is not installed (or does not run)")?;
        println!("$ python3 -m venv {}   ({version})", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map_err(|e| format!("python3 -m venv: {e}"))?;
        if !status.success() || !exe.exists() {
            return Err(format!(
                "`python3 -m venv {}` failed ({status}); on Debian install python3-venv",
                venv.display()
            ));
        }
    }
    if !imports_ok(&exe) {
        let req = root.join(PY_REQUIREMENTS);
        println!("$ {} -m pip install -r {}", exe.display(), req.display());
        let status = Command::new(&exe)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "-r",
            ])
            .arg(&req)
            .status()
            .map_err(|e| format!("pip: {e}"))?;
        if !status.success() {
            return Err(format!("installing {} failed ({status})", req.display()));
        }
        if !imports_ok(&exe) {
            return Err(format!(
                "`{PY_IMPORTS}` still fails in {} after the install",
                venv.display()
            ));
        }
    }
    let versions = Command::new(&exe)
        .args([
            "-c",
            "import sys, numpy, scipy, dask, h5py, zarr; \
             print(f'Python {sys.version.split()[0]}, NumPy {numpy.__version__}, \
             dask {dask.__version__}, SciPy {scipy.__version__}, h5py {h5py.__version__}, \
             zarr {zarr.__version__}')",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Ok(Python { exe, versions })
}

// ------------------------------------------------------------------------------------------
// The run.

/// Everything the report needs besides the runs.
struct Context {
    machine: String,
    rustc: String,
    python: Option<String>,
    python_problem: Option<String>,
    triad_gbs: Option<f64>,
    first_touch_gbs: Option<f64>,
    /// Cores other processes kept busy during the triad.
    triad_load: Option<f64>,
    baseline_rss: BTreeMap<&'static str, f64>,
    /// The triad measured just before each workload's runs, GB/s: a shared VM's memory
    /// bandwidth changes with its neighbours' load, which `/proc/stat` cannot see.
    workload_triad: BTreeMap<&'static str, f64>,
    date: String,
    command: String,
    reps: usize,
    elapsed: Duration,
    /// Time spent waiting for other processes to go idle.
    waited: Duration,
}

/// `cargo xtask bench …`.
pub fn bench(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| matches!(a.as_str(), "-h" | "--help")) {
        println!("{}", usage());
        return Ok(());
    }
    let opts = parse_args(args)?;
    let started = Instant::now();
    let root = root_dir();
    let target = target_dir(&root);
    let out_dir = target.join("bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    crate::cargo(&["build", "--release", "-p", "blockarray-bench"], &[])?;
    let bin = target.join("release").join("blockarray-bench");
    if !bin.exists() {
        return Err(format!("{} was not built", bin.display()));
    }

    let wants_python = opts.engines.iter().any(|e| *e == "dask" || *e == "numpy");
    let (python, python_problem) = if wants_python {
        match python_env(&root, &target) {
            Ok(p) => (Some(p), None),
            Err(why) => {
                println!("bench: {why}: running the blockarray side alone");
                (None, Some(why))
            }
        }
    } else {
        (None, None)
    };
    let script = root.join(PY_WORKLOADS);

    let mut ctx = Context {
        machine: machine_description(),
        rustc: output_of("rustc", &["--version"]).unwrap_or_else(|| "rustc".into()),
        python: python.as_ref().map(|p| p.versions.clone()),
        python_problem,
        triad_gbs: None,
        first_touch_gbs: None,
        triad_load: None,
        workload_triad: BTreeMap::new(),
        baseline_rss: BTreeMap::new(),
        date: output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        command: std::iter::once("cargo xtask bench".to_string())
            .chain(opts.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        reps: opts.reps,
        elapsed: Duration::ZERO,
        waited: Duration::ZERO,
    };

    // Memory bandwidth (on a quiet machine if possible), and what an idle process costs in
    // memory.
    let mut waited = Duration::ZERO;
    let quiet_start = Instant::now();
    wait_for_quiet(opts.quiet_wait.min(opts.quiet_budget));
    waited += quiet_start.elapsed();
    let (triad, figures) = run_triad(&bin, opts.timeout, &out_dir)?;
    if triad.other_load.is_some_and(|l| l > 0.25) {
        println!(
            "triad: other processes kept {:.1} cores busy: the bandwidth is underestimated",
            triad.other_load.unwrap_or(0.0)
        );
    }
    ctx.triad_load = triad.other_load;
    match figures {
        Some((gbs, first_touch)) => {
            println!(
                "triad: {gbs:.2} GB/s (first touch of new memory: {:.2} GB/s)",
                first_touch.unwrap_or(f64::NAN)
            );
            ctx.triad_gbs = Some(gbs);
            ctx.first_touch_gbs = first_touch;
        }
        None => println!("triad failed ({}): {}", triad.exit, tail(&triad.stderr, 3)),
    }
    if let Ok(c) = run_child(Command::new(&bin).arg("list"), opts.timeout, &out_dir) {
        ctx.baseline_rss.insert("blockarray", c.peak_rss_mb);
    }
    if let Some(py) = &python {
        for engine in ["dask", "numpy"] {
            let mut cmd = Command::new(&py.exe);
            cmd.arg(&script).args(["ones_sum", "baseline"]);
            if engine == "numpy" {
                // The NumPy engine never imports dask: measure the interpreter with NumPy only.
                cmd = Command::new(&py.exe);
                cmd.args(["-c", "import numpy"]);
            }
            if let Ok(c) = run_child(&mut cmd, opts.timeout, &out_dir) {
                ctx.baseline_rss.insert(engine, c.peak_rss_mb);
            }
        }
    }

    let results_path = out_dir.join("results.jsonl");
    let mut results =
        File::create(&results_path).map_err(|e| format!("{}: {e}", results_path.display()))?;
    let mut runs: Vec<Run> = Vec::new();
    let bar = progress_bar(opts.workloads.len() * opts.reps * opts.engines.len());
    for (w, spec) in opts.workloads.iter().enumerate() {
        // Input files (hdf5_sum's, zarr_sum's) are written once, untimed, by blockarray-bench for every
        // engine, so every engine reads the same bytes.
        let mut cmd = Command::new(&bin);
        cmd.arg("--data-dir")
            .arg(&out_dir)
            .args(["setup", spec.name]);
        let c = run_child(&mut cmd, opts.timeout, &out_dir)?;
        if c.exit.code != Some(0) {
            say(&format!(
                "{}: setup failed ({}): {}",
                spec.name,
                c.exit,
                tail(&c.stderr, 3)
            ));
        }
        if let Ok((_, Some((gbs, _)))) = run_triad(&bin, opts.timeout, &out_dir) {
            ctx.workload_triad.insert(spec.name, gbs);
        }
        // Engines that need no more runs for this workload (missing, or not runnable).
        let mut done: Vec<&str> = Vec::new();
        for rep in 1..=opts.reps {
            // Rotate the engine order each repetition, so no engine always runs first.
            let n = opts.engines.len();
            let order: Vec<&'static str> =
                (0..n).map(|i| opts.engines[(i + rep - 1) % n]).collect();
            for engine in order {
                if done.contains(&engine) {
                    continue;
                }
                let blockarray_missing = runs.iter().any(|r| {
                    r.workload == spec.name
                        && r.engine == "blockarray"
                        && matches!(r.outcome, Outcome::Missing(_))
                });
                // The engine's process: the blockarray binary or the Python script, or why
                // the engine does not run.
                let command = if !matches!(engine, "blockarray" | "mpi")
                    && blockarray_missing
                    && !opts.with_missing
                {
                    Err("blockarray lacks this workload (run with --with-missing)")
                } else if engine == "blockarray" {
                    let mut cmd = Command::new(&bin);
                    cmd.arg("--data-dir").arg(&out_dir).arg(spec.name);
                    Ok(cmd)
                } else if engine == "mpi" {
                    let mut cmd = Command::new(&bin);
                    cmd.arg("--data-dir").arg(&out_dir).args([
                        "--mpi",
                        &MPI_RANKS.to_string(),
                        spec.name,
                    ]);
                    Ok(cmd)
                } else {
                    python
                        .as_ref()
                        .map(|py| {
                            let mut cmd = Command::new(&py.exe);
                            cmd.arg(&script)
                                .args([spec.name, engine, "--data-dir"])
                                .arg(&out_dir);
                            cmd
                        })
                        .ok_or("Python engines unavailable")
                };
                bar.set_message(format!("{} on {engine}, repetition {rep}", spec.name));
                let run = match command {
                    Ok(mut cmd) => measure(
                        spec.name,
                        engine,
                        rep,
                        &mut cmd,
                        &opts,
                        &out_dir,
                        &mut waited,
                    ),
                    Err(why) => {
                        done.push(engine);
                        Run {
                            workload: spec.name,
                            engine,
                            rep,
                            peak_rss_mb: None,
                            other_load: None,
                            outcome: Outcome::Skipped(why.into()),
                            traffic: None,
                        }
                    }
                };
                if matches!(run.outcome, Outcome::Missing(_)) {
                    done.push(engine);
                }
                writeln!(results, "{}", run.to_json())
                    .map_err(|e| format!("{}: {e}", results_path.display()))?;
                runs.push(run);
                bar.inc(1);
            }
        }
        // Engines that stopped early (missing, skipped) skip their later repetitions.
        bar.set_position(((w + 1) * opts.reps * opts.engines.len()) as u64);
    }
    bar.finish_and_clear();
    ctx.elapsed = started.elapsed();
    ctx.waited = waited;
    let _ = fs::remove_file(out_dir.join("child.stdout"));
    let _ = fs::remove_file(out_dir.join("child.stderr"));

    let report = report(&opts, &ctx, &runs);
    let report_path = out_dir.join("report.md");
    fs::write(&report_path, &report).map_err(|e| format!("{}: {e}", report_path.display()))?;
    println!("\n{report}");
    println!("results: {}", results_path.display());
    println!("report:  {}", report_path.display());
    if opts.docs {
        let docs = root.join("docs").join("benchmarks.md");
        replace_section(&docs, &report)?;
        println!("updated: {}", docs.display());
    } else {
        println!("docs/benchmarks.md left as it is (a subset run; pass --docs to write it)");
    }
    Ok(())
}

/// What a triad printed: its bandwidth and, if given, the first-touch bandwidth (GB/s).
type TriadFigures = (f64, Option<f64>);

/// Run `blockarray-bench triad`: the child, and its figures when it printed them.
fn run_triad(
    bin: &Path,
    timeout: Duration,
    out_dir: &Path,
) -> Result<(Child, Option<TriadFigures>), String> {
    let c = run_child(Command::new(bin).arg("triad"), timeout, out_dir)?;
    let figures = last_json(&c.stdout)
        .ok()
        .and_then(|m| Some((num(&m, "triad_gbs")?, num(&m, "first_touch_gbs"))));
    Ok((c, figures))
}

/// Below this share of the run's fastest triad, a workload's numbers are flagged as taken on a
/// slowed machine.
const SLOW_MACHINE: f64 = 0.8;

/// The report's note on the memory bandwidth measured before each workload: its range, and
/// the workloads measured while it was below [`SLOW_MACHINE`] of the best.
fn speed_note(triads: &BTreeMap<&'static str, f64>) -> Option<String> {
    let best = triads.values().copied().fold(f64::NAN, f64::max);
    let worst = triads.values().copied().fold(f64::NAN, f64::min);
    if !best.is_finite() {
        return None;
    }
    let slow: Vec<String> = triads
        .iter()
        .filter(|&(_, &g)| g < SLOW_MACHINE * best)
        .map(|(w, g)| format!("`{w}` ({g:.1} GB/s)"))
        .collect();
    Some(format!(
        "- **Machine speed**: a triad run just before each workload measured {worst:.1}–{best:.1} \
         GB/s (the load of other virtual machines on the host changes it, and `/proc/stat` \
         does not show that load). {}",
        if slow.is_empty() {
            format!(
                "No workload ran below {:.0} % of the fastest.",
                SLOW_MACHINE * 100.0
            )
        } else {
            format!(
                "Measured below {:.0} % of the fastest, so slower for every engine than on a \
                 quiet host: {}.",
                SLOW_MACHINE * 100.0,
                slow.join(", ")
            )
        }
    ))
}

/// Run one child for one workload and engine, print a progress line, and classify the result.
fn measure(
    workload: &'static str,
    engine: &'static str,
    rep: usize,
    cmd: &mut Command,
    opts: &Options,
    scratch: &Path,
    waited: &mut Duration,
) -> Run {
    let budget = opts.quiet_budget.saturating_sub(*waited);
    let start = Instant::now();
    wait_for_quiet(opts.quiet_wait.min(budget));
    *waited += start.elapsed();
    let mut traffic = None;
    let (peak_rss_mb, other_load, outcome) = match run_child(cmd, opts.timeout, scratch) {
        Err(e) => (None, None, Outcome::Failed(e)),
        Ok(c) => {
            let parsed = last_json(&c.stdout);
            if let Ok(m) = &parsed
                && let (Some(b), Some(n)) = (num(m, "bytes_sent"), num(m, "messages"))
            {
                traffic = Some((b, n));
            }
            let outcome = match (c.exit.code, &parsed) {
                (Some(0), Ok(m)) => match (num(m, "seconds"), num(m, "check")) {
                    (Some(seconds), Some(check)) => Outcome::Ok { seconds, check },
                    _ => {
                        Outcome::Failed(format!("printed no seconds/check: {}", tail(&c.stdout, 2)))
                    }
                },
                (Some(EXIT_MISSING), _) => Outcome::Missing(match &parsed {
                    Ok(m) => match m.get("missing") {
                        Some(Json::Str(s)) => s.clone(),
                        _ => "missing".into(),
                    },
                    Err(_) => "missing".into(),
                }),
                (Some(0), Err(e)) => Outcome::Failed(e.clone()),
                _ => Outcome::Failed(format!("{}: {}", c.exit, tail(&c.stderr, 4))),
            };
            (Some(c.peak_rss_mb), c.other_load, outcome)
        }
    };
    let what = match &outcome {
        Outcome::Ok { seconds, check } => format!(
            "{seconds:>10.4} s {:>8.0} MB   check {check:.6e}{}",
            peak_rss_mb.unwrap_or(f64::NAN),
            match other_load {
                Some(l) if l > 0.25 => format!("   (other load {l:.1} cores)"),
                _ => String::new(),
            }
        ),
        Outcome::Missing(m) => format!("missing: {m}"),
        Outcome::Failed(m) => format!("FAILED: {m}"),
        Outcome::Skipped(m) => format!("not run: {m}"),
    };
    let what = match traffic {
        Some((b, n)) => format!("{what}   sent {:.3} MB in {n:.0} messages", b / 1e6),
        None => what,
    };
    say(&format!(
        "{workload:<16} {engine:<10} rep {rep}/{}  {what}",
        opts.reps
    ));
    Run {
        workload,
        engine,
        rep,
        peak_rss_mb,
        other_load,
        outcome,
        traffic,
    }
}

// ------------------------------------------------------------------------------------------
// The report.

/// Seconds with three significant digits.
fn fmt_secs(s: f64) -> String {
    if !s.is_finite() || s <= 0.0 {
        return format!("{s}");
    }
    let digits = (2 - s.log10().floor() as i32).clamp(0, 6) as usize;
    format!("{s:.digits$}")
}

fn fmt_ratio(r: f64) -> String {
    let text = if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    };
    if r < 1.0 { format!("**{text}**") } else { text }
}

fn fmt_check(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

/// Whether two checks agree within a relative tolerance.
fn agree(a: f64, b: f64, tolerance: f64) -> bool {
    let scale = a.abs().max(b.abs());
    (a - b).abs() <= tolerance * scale || (a - b).abs() <= f64::EPSILON
}

/// The Markdown for the workloads section.
fn report(opts: &Options, ctx: &Context, runs: &[Run]) -> String {
    let mut md = String::new();
    let summaries: Vec<(&Spec, BTreeMap<&str, Summary>)> = opts
        .workloads
        .iter()
        .map(|spec| {
            let per: BTreeMap<&str, Summary> = ENGINES
                .iter()
                .map(|&e| (e, summarize(runs, spec.name, e)))
                .collect();
            (*spec, per)
        })
        .collect();

    let _ = writeln!(md, "## Side-by-side workloads\n");
    let _ = writeln!(
        md,
        "Run of {} on {}. {}; {}.",
        ctx.date,
        ctx.machine,
        ctx.rustc,
        ctx.python.as_deref().unwrap_or("no Python engines")
    );
    if let Some(why) = &ctx.python_problem {
        let _ = writeln!(md, "\nThe Python engines did not run: {why}.");
    }
    match ctx.triad_gbs {
        Some(gbs) => {
            let _ = writeln!(
                md,
                "Memory bandwidth (STREAM triad `a = b + s·c`, 3 × 256 MiB, all cores, best of 10, \
                 measured in this run): **{gbs:.1} GB/s**{}{}.",
                ctx.first_touch_gbs.map_or_else(String::new, |f| format!(
                    "; writing freshly allocated memory the first time (page faults): {f:.2} GB/s"
                )),
                match ctx.triad_load {
                    Some(l) if l > 0.25 => format!(
                        " (⚠ other processes kept {l:.1} cores busy during the triad: both \
                         figures are underestimates)"
                    ),
                    _ => String::new(),
                }
            );
        }
        None => {
            let _ = writeln!(md, "The memory-bandwidth triad failed in this run.");
        }
    }
    let _ = writeln!(
        md,
        "{} repetitions per workload and engine, engines alternating, each a fresh process; \
         medians shown. The whole run took {:.1} minutes.\n",
        ctx.reps,
        ctx.elapsed.as_secs_f64() / 60.0
    );
    let _ = writeln!(md, "```sh\n{}\n```\n", ctx.command);

    let engine_names: Vec<&str> = opts.engines.clone();
    let _ = writeln!(
        md,
        "| workload | blockarray s | dask s | numpy s | dask / blockarray | numpy / blockarray | peak RSS MB (blockarray / dask / numpy) | check (blockarray) | checks agree |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|:-:|");
    for (spec, per) in &summaries {
        let cell = |e: &str| -> String {
            let s = &per[e];
            match (s.seconds, &s.problem) {
                (Some(v), _) if s.tainted => format!("{} †", fmt_secs(v)),
                (Some(v), _) => fmt_secs(v),
                (None, Some((kind, _))) => (*kind).to_string(),
                (None, None) if !engine_names.contains(&e) => "not run".into(),
                (None, None) => "–".into(),
            }
        };
        let ratio = |e: &str| -> String {
            match (per[e].seconds, per["blockarray"].seconds) {
                (Some(x), Some(b)) if b > 0.0 => fmt_ratio(x / b),
                _ => "–".into(),
            }
        };
        let rss: Vec<String> = TABLE_ENGINES
            .iter()
            .map(|e| {
                per[e]
                    .peak_rss_mb
                    .map_or_else(|| "–".into(), |m| format!("{m:.0}"))
            })
            .collect();
        let check = per["blockarray"]
            .check
            .map_or_else(|| "–".into(), fmt_check);
        let agreement = check_agreement(spec, per).map_or("–", |mismatches| {
            if mismatches.is_empty() {
                "✓"
            } else {
                "⚠ **mismatch**"
            }
        });
        let _ = writeln!(
            md,
            "| `{}`: {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            spec.name,
            spec.about,
            cell("blockarray"),
            cell("dask"),
            cell("numpy"),
            ratio("dask"),
            ratio("numpy"),
            rss.join(" / "),
            check,
            agreement
        );
    }

    // The MPI engine.
    let mpi: Vec<&(&Spec, BTreeMap<&str, Summary>)> = summaries
        .iter()
        .filter(|(_, per)| per["mpi"].seconds.is_some() || per["mpi"].problem.is_some())
        .collect();
    if !mpi.is_empty() {
        let _ = writeln!(
            md,
            "\nblockarray on {MPI_RANKS} MPI ranks × 1 thread each (`sched-mpi`, `mpirun` on this \
             machine; results gathered to rank 0), against the threaded scheduler over all \
             cores. Traffic is all ranks' sends together, from the last repetition (the \
             partition is static, so it is the same in every repetition). See \
             `docs/distributed.md` for what it implies across machines.\n"
        );
        let _ = writeln!(
            md,
            "| workload | mpi s | blockarray s | bytes sent between ranks | messages | check (mpi) |\n|---|--:|--:|--:|--:|--:|"
        );
        for (spec, per) in mpi {
            let s = &per["mpi"];
            let secs = |e: &str| per[e].seconds.map_or_else(|| "–".into(), fmt_secs);
            let last = runs
                .iter()
                .rev()
                .find(|r| r.workload == spec.name && r.engine == "mpi" && r.traffic.is_some())
                .and_then(|r| r.traffic);
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} |",
                spec.name,
                match (&s.problem, s.seconds) {
                    (_, Some(v)) => fmt_secs(v),
                    (Some((kind, _)), None) => (*kind).to_string(),
                    (None, None) => "–".into(),
                },
                secs("blockarray"),
                last.map_or_else(|| "–".into(), |(b, _)| format!("{:.3} MB", b / 1e6)),
                last.map_or_else(|| "–".into(), |(_, n)| format!("{n:.0}")),
                s.check.map_or_else(|| "–".into(), fmt_check)
            );
        }
    }

    // Bandwidth shares of the memory-bound workloads.
    let bound: Vec<&(&Spec, BTreeMap<&str, Summary>)> = summaries
        .iter()
        .filter(|(s, _)| s.traffic.is_some())
        .collect();
    if !bound.is_empty() {
        let _ = writeln!(
            md,
            "\nMemory-bound workloads: bytes moved by a minimal algorithm / median seconds, and \
             its share of the triad bandwidth.\n"
        );
        let _ = writeln!(
            md,
            "| workload | bytes counted | blockarray | dask | numpy |\n|---|---|--:|--:|--:|"
        );
        for (spec, per) in bound {
            let Some((bytes, how)) = spec.traffic else {
                continue;
            };
            let cell = |e: &str| -> String {
                match (per[e].seconds, ctx.triad_gbs) {
                    (Some(s), Some(t)) if s > 0.0 => {
                        let gbs = bytes / s / 1e9;
                        format!("{gbs:.1} GB/s ({:.0} %)", 100.0 * gbs / t)
                    }
                    (Some(s), None) if s > 0.0 => format!("{:.1} GB/s", bytes / s / 1e9),
                    _ => "–".into(),
                }
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} |",
                spec.name,
                how,
                cell("blockarray"),
                cell("dask"),
                cell("numpy")
            );
        }
    }

    // Notes.
    let _ = writeln!(md, "\n### Notes (generated)\n");
    let _ = writeln!(
        md,
        "- **Timing**: each process times itself, from before the array expression is built \
         until the result is in memory: graph construction, optimisation and scheduling are \
         included; process start-up, interpreter start-up and imports are not. blockarray uses \
         its default work-stealing scheduler over all cores; dask uses its threaded scheduler \
         (`scheduler=\"threads\"`, one worker per core); NumPy runs in one in-memory array \
         (multi-threaded only inside BLAS, for `matmul`)."
    );
    let base: Vec<String> = TABLE_ENGINES
        .iter()
        .filter_map(|e| ctx.baseline_rss.get(e).map(|m| format!("{e} {m:.0} MB")))
        .collect();
    let _ = writeln!(
        md,
        "- **Peak RSS** is the whole child process's maximum resident set size as the kernel \
         reports it (`wait4`, `ru_maxrss`), largest over the repetitions. It includes the \
         runtime itself: an idle process peaks at {} (blockarray: the binary printing its \
         workload list; dask: the interpreter with numpy, scipy and dask.array imported; NumPy: \
         the interpreter with numpy imported).",
        if base.is_empty() {
            "(not measured)".to_string()
        } else {
            base.join(", ")
        }
    );
    let random: Vec<String> = opts
        .workloads
        .iter()
        .filter(|s| s.random)
        .map(|s| format!("`{}` ({:.0e})", s.name, s.tolerance))
        .collect();
    let exact: Vec<String> = opts
        .workloads
        .iter()
        .filter(|s| !s.random)
        .map(|s| format!("`{}`", s.name))
        .collect();
    let _ = writeln!(
        md,
        "- **Checks**: every engine reports a statistic of its result, compared with \
         blockarray's (or, where blockarray has none, dask's). Deterministic workloads ({}) \
         report the sum of the result, which must agree to 1e-9. Random workloads draw from \
         different generators (NumPy and dask: PCG64 `default_rng(42)`; blockarray: its own \
         seeded generator), so their values differ element by element and the check is a \
         statistic (mostly the mean of the result; for `topk`, `percentile` and the \
         decompositions see `benches/python/workloads.py`) that agrees within a relative \
         tolerance several standard errors wide{}. A disagreement is flagged ⚠ in the table \
         and listed below.",
        if exact.is_empty() {
            "none here".to_string()
        } else {
            exact.join(", ")
        },
        if random.is_empty() {
            String::new()
        } else {
            format!(": {}", random.join(", "))
        }
    );
    if summaries.iter().any(|(s, _)| s.traffic.is_some()) {
        let _ = writeln!(
            md,
            "- **Bandwidth shares** count the bytes a minimal algorithm must move through main \
             memory, whether or not an engine keeps blocks in cache: a share above 100 % means \
             the data never left the caches (`ones_sum`'s 100×100 blocks are 80 kB)."
        );
    }
    for (spec, per) in &summaries {
        if let Some(mismatches) = check_agreement(spec, per) {
            for m in mismatches {
                let _ = writeln!(md, "- ⚠ **Check mismatch** in `{}`: {m}.", spec.name);
            }
        }
    }
    let loads: Vec<f64> = runs.iter().filter_map(|r| r.other_load).collect();
    if !loads.is_empty() {
        let mean_load = loads.iter().sum::<f64>() / loads.len() as f64;
        let ok_runs = runs
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Ok { .. }))
            .count();
        let perturbed: usize = summaries
            .iter()
            .flat_map(|(_, per)| per.values().map(|s| s.perturbed))
            .sum();
        let tainted: Vec<String> = summaries
            .iter()
            .flat_map(|(spec, per)| {
                per.iter()
                    .filter(|(_, s)| s.tainted)
                    .map(|(e, _)| format!("`{}` in {e}", spec.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        let _ = writeln!(
            md,
            "- **Other load**: this is a shared machine. Before each run the harness waits (up to \
             {} s, {} s in all) for other processes to go idle; it waited {:.0} s in this run. \
             While the runs ran, other processes kept {mean_load:.2} cores busy on average (from \
             `/proc/stat`, minus the run's own CPU time), and {perturbed} of {ok_runs} timed runs \
             had more than {PERTURBED} of a core of other load (`other_load` in \
             `results.jsonl`). Medians use only the unperturbed runs of a workload and engine \
             when there is one{}.",
            opts.quiet_wait.as_secs(),
            opts.quiet_budget.as_secs(),
            ctx.waited.as_secs_f64(),
            if tainted.is_empty() {
                String::new()
            } else {
                format!(
                    "; † marks medians with none, which are overestimates: {}",
                    tainted.join(", ")
                )
            }
        );
    }
    if let Some(note) = speed_note(&ctx.workload_triad) {
        let _ = writeln!(md, "{note}");
    }
    let slower: Vec<String> = summaries
        .iter()
        .filter_map(
            |(spec, per)| match (per["blockarray"].seconds, per["dask"].seconds) {
                (Some(b), Some(d)) if b > d * ON_PAR => Some(format!(
                    "`{}` ({} s against {} s, {:.2}× slower)",
                    spec.name,
                    fmt_secs(b),
                    fmt_secs(d),
                    b / d
                )),
                _ => None,
            },
        )
        .collect();
    let on_par: Vec<String> = summaries
        .iter()
        .filter_map(
            |(spec, per)| match (per["blockarray"].seconds, per["dask"].seconds) {
                (Some(b), Some(d)) if b <= d * ON_PAR && b * ON_PAR >= d => Some(format!(
                    "`{}` ({} s against {} s)",
                    spec.name,
                    fmt_secs(b),
                    fmt_secs(d)
                )),
                _ => None,
            },
        )
        .collect();
    if !on_par.is_empty() {
        let _ = writeln!(
            md,
            "- **On par with dask** (within {:.0} %): {}.",
            (ON_PAR - 1.0) * 100.0,
            on_par.join(", ")
        );
    }
    if slower.is_empty() {
        let _ = writeln!(
            md,
            "- blockarray is not slower than dask (beyond {:.0} %) on any workload both ran.",
            (ON_PAR - 1.0) * 100.0
        );
    } else {
        let _ = writeln!(
            md,
            "- **blockarray is slower than dask** on {}: see the analysis below the table.",
            slower.join(", ")
        );
    }
    let missing: Vec<String> = summaries
        .iter()
        .filter_map(|(spec, per)| match &per["blockarray"].problem {
            Some(("missing", why)) if per["blockarray"].ok == 0 => {
                Some(format!("`{}`: {why}", spec.name))
            }
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            md,
            "- **Missing** in blockarray, so not timed{}: {}. Their dask and NumPy versions are \
             ready in `benches/python/workloads.py`.",
            if opts.with_missing {
                ""
            } else {
                " in any engine (`--with-missing` runs dask and NumPy on them)"
            },
            missing.join("; ")
        );
    }
    for (spec, per) in &summaries {
        for e in ENGINES {
            if let Some(("failed", why)) = &per[e].problem {
                let _ = writeln!(
                    md,
                    "- **Failed**: `{}` in {e} ({} of {} runs succeeded): {why}",
                    spec.name, per[e].ok, ctx.reps
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "- Raw runs: `target/bench/results.jsonl` (one JSON object per run: `workload`, \
         `engine`, `rep`, `seconds`, `peak_rss_mb`, `check`, `status`, `other_load`)."
    );
    md
}

/// `None` when fewer than two engines produced a check; otherwise the disagreements with the
/// reference (blockarray, or the first engine that has a check).
fn check_agreement(spec: &Spec, per: &BTreeMap<&str, Summary>) -> Option<Vec<String>> {
    let checks: Vec<(&str, f64)> = ENGINES
        .iter()
        .filter_map(|e| per[e].check.map(|c| (*e, c)))
        .collect();
    if checks.len() < 2 {
        return None;
    }
    let (ref_engine, reference) = checks[0];
    Some(
        checks[1..]
            .iter()
            .filter(|(_, c)| !agree(*c, reference, spec.tolerance))
            .map(|(e, c)| {
                format!(
                    "{e} {} against {ref_engine} {} (relative difference {:.1e}, tolerance {:.0e})",
                    fmt_check(*c),
                    fmt_check(reference),
                    (c - reference).abs() / reference.abs().max(c.abs()),
                    spec.tolerance
                )
            })
            .collect(),
    )
}

/// Replace the lines between the workloads markers of `docs` with `section`.
fn replace_section(docs: &Path, section: &str) -> Result<(), String> {
    let text = fs::read_to_string(docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| l.trim() == BEGIN_MARKER);
    let end = lines.iter().position(|l| l.trim() == END_MARKER);
    let (Some(begin), Some(end)) = (begin, end) else {
        return Err(format!(
            "{} has no `{BEGIN_MARKER}` … `{END_MARKER}` lines: the report is in target/bench/report.md",
            docs.display()
        ));
    };
    if end < begin {
        return Err(format!(
            "{}: `{END_MARKER}` comes before `{BEGIN_MARKER}`",
            docs.display()
        ));
    }
    let mut out: Vec<&str> = lines[..=begin].to_vec();
    out.extend(section.trim_end().lines());
    out.extend(&lines[end..]);
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    fs::write(docs, joined).map_err(|e| format!("{}: {e}", docs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_child_json() {
        let m = parse_flat_json(
            r#"{"seconds": 1.5e-3, "check": NaN, "missing": "no \"x\"", "a": null}"#,
        )
        .expect("parses");
        assert_eq!(num(&m, "seconds"), Some(1.5e-3));
        assert!(num(&m, "check").is_some_and(f64::is_nan));
        assert_eq!(m.get("missing"), Some(&Json::Str("no \"x\"".into())));
        assert_eq!(m.get("a"), Some(&Json::Null));
        assert!(parse_flat_json("{\"a\": }").is_err());
        assert!(parse_flat_json("nope").is_err());
        assert!(last_json("noise\n{\"seconds\": 2, \"check\": 3}\n").is_ok());
    }

    #[test]
    fn rejects_unknown_workloads_and_bad_reps() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = parse_args(&args(&["nope"])).err().expect("an error");
        assert!(
            err.contains("ones_sum") && err.contains("hdf5_sum"),
            "{err}"
        );
        assert!(parse_args(&args(&["--reps", "0"])).is_err());
        assert!(parse_args(&args(&["--reps"])).is_err());
        let o = parse_args(&args(&["matmul", "ones_sum", "--reps", "5"])).expect("parses");
        assert_eq!(o.reps, 5);
        assert_eq!(
            o.workloads.iter().map(|w| w.name).collect::<Vec<_>>(),
            ["ones_sum", "matmul"]
        );
        assert!(!o.docs);
        assert!(parse_args(&[]).expect("parses").docs);
    }

    #[test]
    fn replaces_only_the_marked_section() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("b.md");
        fs::write(
            &path,
            format!("# T\nkeep\n{BEGIN_MARKER}\nold\n{END_MARKER}\nafter\n"),
        )
        .expect("write");
        replace_section(&path, "new 1\nnew 2\n").expect("replaces");
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            format!("# T\nkeep\n{BEGIN_MARKER}\nnew 1\nnew 2\n{END_MARKER}\nafter\n")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn medians_prefer_unperturbed_runs() {
        let run = |rep, seconds, other_load| Run {
            workload: "ones_sum",
            engine: "dask",
            rep,
            peak_rss_mb: Some(rep as f64),
            other_load: Some(other_load),
            outcome: Outcome::Ok {
                seconds,
                check: 1.0,
            },
            traffic: None,
        };
        let runs = [run(1, 1.0, 0.0), run(2, 9.0, 1.0), run(3, 8.0, 1.0)];
        let s = summarize(&runs, "ones_sum", "dask");
        assert_eq!(
            (s.seconds, s.ok, s.perturbed, s.tainted),
            (Some(1.0), 3, 2, false)
        );
        assert_eq!(s.peak_rss_mb, Some(3.0));
        let s = summarize(&runs[1..], "ones_sum", "dask");
        assert_eq!((s.seconds, s.tainted), (Some(8.5), true));
        assert!(summarize(&runs, "ones_sum", "numpy").seconds.is_none());
    }

    #[test]
    fn flags_workloads_run_on_a_slowed_machine() {
        assert_eq!(speed_note(&BTreeMap::new()), None);
        let triads: BTreeMap<&'static str, f64> = [("a", 50.0), ("b", 39.0), ("c", 41.0)]
            .into_iter()
            .collect();
        let note = speed_note(&triads).unwrap();
        assert!(note.contains("39.0–50.0 GB/s"), "{note}");
        assert!(
            note.contains("`b` (39.0 GB/s)") && !note.contains("`c`"),
            "{note}"
        );
        let even: BTreeMap<&'static str, f64> = [("a", 50.0), ("c", 41.0)].into_iter().collect();
        assert!(
            speed_note(&even)
                .unwrap()
                .contains("No workload ran below 80 %")
        );
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(fmt_secs(0.000433), "0.000433");
        assert_eq!(fmt_secs(17.88), "17.9");
        assert_eq!(fmt_secs(123.4), "123");
        assert_eq!(fmt_ratio(0.5), "**0.50×**");
        assert!(agree(1.0, 1.0005, 1e-3) && !agree(1.0, 1.01, 1e-3));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}
