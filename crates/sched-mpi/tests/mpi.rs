//! MPI runs, checked from outside: this test launches itself under `mpirun -np 2` and
//! `-np 4` (see `sched_mpi::mpirun`), and each rank runs the scenarios below and prints one
//! line per scenario; the launching process checks every rank's lines and the job's exit.
//!
//! - `random_dags`: random graphs (values of random sizes, some split into several MPI
//!   messages) equal the threaded scheduler's results, with outputs gathered to rank 0 and to
//!   every rank;
//! - `workloads`: the seed workloads (sums, means, `x + x.T` sliced, `x @ x.T`, a rechunk, an
//!   arg-reduction, a variance, a cumulative sum) bitwise equal to the threaded scheduler's;
//! - `task_fails_on_rank_1` / `task_panics_on_rank_1`: a task failing on rank 1 ends the
//!   run on every rank with the same error naming the key and the rank; the next run works;
//! - `empty_ranks`: more ranks than tasks;
//! - `unencodable_value`: a value that must travel but has no wire encoding;
//! - `undecodable_output`: outputs the gathering rank cannot decode fail the run on every
//!   rank;
//! - `different_graphs`: ranks that built different graphs are refused on every rank;
//! - `results_elsewhere`: ranks other than 0 are told they do not hold a result;
//! - `chunk_sizes`: `compute_chunk_sizes` of a masked array, with an MPI scheduler that
//!   gathers results to rank 0 (given, and as the default scheduler), gives every rank the
//!   sizes, so every rank builds the next graph alike;
//! - `persist`: persisted blocks reach every rank, so each goes on with the same graphs;
//! - `hdf5_store`: stores from every rank write the file once; a failed task leaves no
//!   file; an error only rank 0 can see (a dataset that exists) is returned by the run on
//!   every rank, not by `Hdf5Store::dataset` on rank 0 alone;
//! - `file_sinks_everywhere`: HDF5 and Zarr sinks built on every rank (not through a
//!   store made for the scheduler) are refused on every rank, not committed as arrays of
//!   fill values from the ranks that received no block;
//! - `a_rank_dies` (a job of its own): a rank exiting in the middle of a run ends the job
//!   through `mpirun`, and nothing hangs.
//!
//! Harness-free (`harness = false`): the launcher prints a libtest-style summary.

use blockarray::{BlockArray, Computation, ErrorKind as BaErrorKind, OpName, random::Rng, s};
use dag_core::{ErrorKind, Graph, Key, Plan, Scheduler, Task, TaskResult, Value};
use sched_mpi::{Gather, Mpi, MpiScheduler};
use sched_threaded::ThreadedScheduler;
use std::io::Read;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set in the ranks' environment: which job to run.
const JOB_VAR: &str = "SCHED_MPI_TEST_JOB";
/// Set in the ranks' environment: a fresh directory every rank writes its files into.
const DIR_VAR: &str = "SCHED_MPI_TEST_DIR";

fn main() -> ExitCode {
    match std::env::var(JOB_VAR) {
        Ok(job) => rank_main(&job),
        Err(_) => launcher_main(),
    }
}

// ---------------------------------------------------------------------------------------
// The launcher (the process `cargo test` runs).

/// The scenarios of the `suite` job, checked on every rank.
const SUITE: &[&str] = &[
    "random_dags",
    "workloads",
    "task_fails_on_rank_1",
    "task_panics_on_rank_1",
    "empty_ranks",
    "unencodable_value",
    "unencodable_output",
    "undecodable_output",
    "on_start_panics_on_rank_1",
    "different_graphs",
    "different_sizes",
    "results_elsewhere",
    "chunk_sizes",
    "persist",
    "hdf5_store",
    "file_sinks_everywhere",
];

fn launcher_main() -> ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let mut passed = 0;
    let mut failed = Vec::new();
    for ranks in [2, 4] {
        let names: Vec<String> = SUITE.iter().map(|s| format!("np{ranks}::{s}")).collect();
        if !names.iter().any(|n| wanted(n)) {
            continue;
        }
        let (ok, out) = launch(ranks, "suite", 120);
        for (scenario, name) in SUITE.iter().zip(&names) {
            if !wanted(name) {
                continue;
            }
            let lines: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with(&format!("SCENARIO {scenario} ")))
                .collect();
            let oks = lines.iter().filter(|l| l.ends_with(" ok")).count();
            // Scenarios that end in an error: the same error on every rank.
            let same_errors = match *scenario {
                "task_fails_on_rank_1"
                | "task_panics_on_rank_1"
                | "unencodable_output"
                | "on_start_panics_on_rank_1" => {
                    let tag = match *scenario {
                        "task_panics_on_rank_1" => "ERROR panics ",
                        "task_fails_on_rank_1" => "ERROR fails ",
                        "unencodable_output" => "ERROR output ",
                        _ => "ERROR on_start ",
                    };
                    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with(tag)).collect();
                    errors.len() == ranks && errors.iter().all(|e| *e == errors[0])
                }
                _ => true,
            };
            if ok && oks == ranks && same_errors {
                println!("test {name} ... ok");
                passed += 1;
            } else {
                println!("test {name} ... FAILED");
                failed.push((name.clone(), out.clone()));
            }
        }
    }
    if wanted("np2::a_rank_dies") {
        let start = Instant::now();
        let (ok, out) = launch(2, "dies", 120);
        // The job must end (no hang), and fail: mpirun reports the rank that exited.
        if !ok
            && start.elapsed() < Duration::from_secs(110)
            && out.contains("SCENARIO dies started")
        {
            println!("test np2::a_rank_dies ... ok");
            passed += 1;
        } else {
            println!("test np2::a_rank_dies ... FAILED");
            failed.push(("np2::a_rank_dies".into(), out));
        }
    }
    for (name, out) in &failed {
        println!("\n---- {name} output ----\n{out}");
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Run `job` on `ranks` ranks of this executable; whether the job succeeded, and its output
/// (stdout then stderr). A job still running after `timeout` seconds is killed (a hang is a
/// failure, not a stuck CI run).
fn launch(ranks: usize, job: &str, timeout: u64) -> (bool, String) {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = std::env::temp_dir().join(format!(
        "sched-mpi-test-{}-{job}-{ranks}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut child = sched_mpi::mpirun(ranks)
        .arg(exe)
        .env(JOB_VAR, job)
        .env(DIR_VAR, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("mpirun starts (installed by `cargo xtask deps`)");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mpirun") {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(timeout) {
            // SAFETY: signalling the process group this test created.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}{}",
        out.join().unwrap(),
        err.join().unwrap(),
        if status.is_none() {
            format!("\n(killed after {timeout} s: the job hung)")
        } else {
            String::new()
        }
    );
    (status.is_some_and(|s| s.success()), text)
}

// ---------------------------------------------------------------------------------------
// The ranks.

fn rank_main(job: &str) -> ExitCode {
    let mpi = match Mpi::init() {
        Ok(m) => m,
        Err(e) => {
            println!("MPI init failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    RANK.store(mpi.rank(), Ordering::SeqCst);
    let mut all_ok = true;
    let scenarios: Vec<&str> = if job == "dies" {
        vec!["dies"]
    } else {
        SUITE.to_vec()
    };
    for scenario in scenarios {
        println!("SCENARIO {scenario} started");
        let result = std::panic::catch_unwind(|| run_scenario(scenario, &mpi));
        let line = match result {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => {
                all_ok = false;
                format!("FAILED: {e}")
            }
            Err(p) => {
                all_ok = false;
                format!("FAILED: panicked: {}", dag_core::panic_message(&*p))
            }
        };
        println!("SCENARIO {scenario} rank {} {line}", mpi.rank());
        if !all_ok {
            // The other ranks may be waiting for this one in a later collective call: end
            // the job now rather than let it hang until the launcher's timeout.
            use std::io::Write;
            let _ = std::io::stdout().flush();
            mpi.abort(1);
        }
    }
    drop(mpi);
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

static RANK: AtomicUsize = AtomicUsize::new(usize::MAX);

type Check = Result<(), String>;

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(what()) }
}

fn run_scenario(name: &str, mpi: &Mpi) -> Check {
    match name {
        "random_dags" => random_dags(mpi),
        "workloads" => workloads(mpi),
        "task_fails_on_rank_1" => fails_on_rank_1(mpi, false),
        "task_panics_on_rank_1" => fails_on_rank_1(mpi, true),
        "empty_ranks" => empty_ranks(mpi),
        "unencodable_value" => unencodable_value(mpi),
        "unencodable_output" => unencodable_output(mpi),
        "undecodable_output" => undecodable_output(mpi),
        "on_start_panics_on_rank_1" => on_start_panics_on_rank_1(mpi),
        "different_graphs" => different_graphs(mpi),
        "different_sizes" => different_sizes(mpi),
        "results_elsewhere" => results_elsewhere(mpi),
        "chunk_sizes" => chunk_sizes(mpi),
        "persist" => persist(mpi),
        "hdf5_store" => hdf5_store(mpi),
        "file_sinks_everywhere" => file_sinks_everywhere(mpi),
        "dies" => dies(mpi),
        other => Err(format!("unknown scenario {other}")),
    }
}

fn sched(mpi: &Mpi, gather: Gather) -> MpiScheduler {
    MpiScheduler::builder()
        .threads(2)
        .gather(gather)
        .build(mpi)
        .unwrap()
}

fn threaded() -> ThreadedScheduler {
    ThreadedScheduler::builder().threads(2).build().unwrap()
}

/// xorshift64*: the same random graphs on every rank.
struct Rand(u64);

impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A random DAG whose node `i` returns a vector of `len(i)` words derived from its inputs.
fn random_graph(r: &mut Rand, n: usize) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    for i in 0..n {
        let fanin = if i == 0 { 0 } else { r.below(6) };
        let deps: Vec<Key> = (0..fanin).map(|_| Key::new("n", [r.below(i)])).collect();
        let len = [0, 1, 3, 40, 700][r.below(5)];
        let task = Task::new(deps, move |vals| -> TaskResult {
            let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for (j, v) in vals.iter().enumerate() {
                for &w in v.get::<Vec<u64>>()? {
                    h = (h ^ w.rotate_left(j as u32)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                }
            }
            Ok(Value::new((0..len).map(|k| h ^ k).collect::<Vec<u64>>()))
        })
        .with_nbytes(len as usize * 8);
        g.insert(Key::new("n", [i]), task);
    }
    let outputs = (0..1 + r.below(6))
        .map(|_| Key::new("n", [r.below(n)]))
        .collect();
    (g, outputs)
}

fn words(values: &[Value]) -> Vec<Vec<u64>> {
    values
        .iter()
        .map(|v| v.get::<Vec<u64>>().cloned().unwrap_or_default())
        .collect()
}

fn random_dags(mpi: &Mpi) -> Check {
    let mut r = Rand(0x5EED_1234_ABCD_0001);
    let small_messages = MpiScheduler::builder()
        .threads(1)
        .max_message(256)
        .build(mpi)
        .unwrap();
    let mut sent = 0;
    for round in 0..24 {
        let n = 1 + r.below(400);
        let (g, outputs) = random_graph(&mut r, n);
        let expected = words(&threaded().compute(&g, &outputs).unwrap());
        let gather = if round % 3 == 0 {
            Gather::All
        } else {
            Gather::Root
        };
        let s = if round % 4 == 1 {
            &small_messages
        } else {
            &sched(mpi, gather)
        };
        let got = s
            .compute(&g, &outputs)
            .map_err(|e| format!("round {round}: {e}"))?;
        let stats = s.last_run().unwrap();
        sent += stats.values.iter().sum::<usize>();
        ensure(
            stats.tasks.iter().sum::<usize>() >= Plan::new(&g, &outputs).unwrap().len(),
            || format!("round {round}: {stats}"),
        )?;
        if mpi.rank() == 0 || s.gather_mode() == Gather::All {
            let got = words(&got);
            ensure(got == expected, || format!("round {round}: values differ"))?;
        } else {
            // Other ranks hold placeholders for outputs they did not compute.
            for v in &got {
                ensure(v.is::<Vec<u64>>() || v.is::<sched_mpi::Elsewhere>(), || {
                    format!("round {round}: {v:?}")
                })?;
            }
        }
    }
    ensure(sent > 0, || "no value was ever sent between ranks".into())
}

/// Compute with `s` and with the threaded scheduler; equal bit for bit on the ranks that
/// hold the result.
fn same<T: blockarray::Element>(name: &str, x: &BlockArray<T>, s: &MpiScheduler) -> Check {
    let expected = x.compute_with(&threaded()).map_err(|e| e.to_string())?;
    let mut c = Computation::new();
    let h = c.add(x);
    let mut out = c.run(s).map_err(|e| format!("{name}: {e}"))?;
    if !out.held() {
        return Ok(());
    }
    let got = out.take(h).map_err(|e| e.to_string())?;
    let bits = |a: &ndarray::ArrayD<T>| format!("{:?}", a.iter().collect::<Vec<_>>());
    ensure(
        got.shape() == expected.shape() && bits(&got) == bits(&expected),
        || {
            format!(
                "{name}: the MPI result differs from the threaded scheduler's: {} vs {}",
                bits(&got).chars().take(300).collect::<String>(),
                bits(&expected).chars().take(300).collect::<String>()
            )
        },
    )
}

fn workloads(mpi: &Mpi) -> Check {
    for gather in [Gather::Root, Gather::All] {
        let s = &sched(mpi, gather);
        let ones = BlockArray::<f64>::ones(&[200, 300], [20, 30]).map_err(|e| e.to_string())?;
        same("ones_sum", &ones.sum(None, false).unwrap(), s)?;
        let x = Rng::new(42)
            .normal::<f64>(10.0, 0.1, &[300, 200], [50, 40])
            .unwrap();
        same("normal_mean", &x.mean(Some(&[0]), false).unwrap(), s)?;
        let y = Rng::new(7).random::<f64>(&[240, 240], [60, 60]).unwrap();
        let xxt = (&y + &y.t()).unwrap().slice(s![..;2, 120..]).unwrap();
        same("xxt_slice_mean", &xxt.mean(Some(&[1]), false).unwrap(), s)?;
        same("lazy_slice", &ones.exp().slice(s![1..50, 3..7]).unwrap(), s)?;
        same("matmul", &y.matmul(&y.t()).unwrap(), s)?;
        let tall = Rng::new(3).random::<f64>(&[200, 200], [200, 10]).unwrap();
        let re = tall
            .rechunk([10, 200])
            .unwrap()
            .sum(Some(&[1]), false)
            .unwrap();
        same("rechunk_sum", &re, s)?;
        same("argmin", &y.argmin(Some(0)).unwrap(), s)?;
        same("var", &x.var(Some(&[1]), 1.0, false).unwrap(), s)?;
        same("cumsum", &y.cumsum(1).unwrap(), s)?;
        let ints = BlockArray::<i64>::arange(0, 1000, 1, [64]).map_err(|e| e.to_string())?;
        same("int_map", &ints.map(OpName::pure("sq", &()), |v| v * v), s)?;
        same("bool", &y.map(OpName::pure("gt", &()), |v| v > 0.5), s)?;
        // Selections and value-dependent results: their partials travel too.
        let flat = y.reshape(&[240 * 240]).map_err(|e| e.to_string())?;
        same("topk", &flat.topk(7, 0).unwrap(), s)?;
        same("sort", &flat.sort(0).unwrap(), s)?;
        let q = flat
            .percentile(
                [5.0, 50.0, 95.0],
                None,
                blockarray::QuantileMethod::Linear,
                false,
            )
            .unwrap();
        same("percentile", &q, s)?;
        let small = ints.astype::<u16>();
        same("unique", &(&small % 37).unique().unwrap(), s)?;
        // A result of unknown length in many blocks, collected on the result ranks.
        same("mask", &flat.mask(&flat.greater(0.7).unwrap()).unwrap(), s)?;
        // Linear algebra: matrices and factorisations between ranks.
        let spd = (&y.matmul(&y.t()).unwrap()
            + &(&BlockArray::<f64>::eye(240, None, 0, [60, 60]).unwrap() * 240.0))
            .unwrap();
        same(
            "cholesky",
            &blockarray_linalg::cholesky(&spd, blockarray_linalg::Tri::Lower).unwrap(),
            s,
        )?;
        let (_, r) = blockarray_linalg::tsqr(&tall).unwrap();
        same("tsqr_r", &r, s)?;
        let b = Rng::new(5).random::<f64>(&[240, 3], [60, 3]).unwrap();
        same("solve", &blockarray_linalg::solve(&y, &b).unwrap(), s)?;
    }
    Ok(())
}

/// A graph whose task `victim` fails (or panics) when it runs on rank 1; returns the graph,
/// its output and the victim's key.
fn fails_on_rank_1(mpi: &Mpi, panic: bool) -> Check {
    let s = sched(mpi, Gather::Root);
    let (mut g, root) = dag_core::synthetic::tree(400, 4);
    let plan = Plan::new(&g, std::slice::from_ref(&root)).unwrap();
    // The first leaf rank 1 runs, found from the partition every rank computes: leaves are
    // cut into equal runs of the plan's order.
    let leaves: Vec<usize> = (0..plan.len())
        .filter(|&i| plan.deps(i).is_empty())
        .collect();
    let victim = plan.key(leaves[leaves.len() / mpi.size()]).clone();
    let deps = g.get(&victim).unwrap().deps().to_vec();
    g.insert(
        victim.clone(),
        Task::new(deps, move |_| -> TaskResult {
            if panic {
                panic!("disk on fire on rank {}", RANK.load(Ordering::SeqCst));
            }
            Err(format!("disk on fire on rank {}", RANK.load(Ordering::SeqCst)).into())
        }),
    );
    let e = match s.compute(&g, std::slice::from_ref(&root)) {
        Ok(_) => return Err("the run succeeded".into()),
        Err(e) => e,
    };
    let text = e.to_string();
    println!("ERROR {} {text}", if panic { "panics" } else { "fails" });
    ensure(e.kind() == ErrorKind::TaskFailed, || {
        format!("kind: {text}")
    })?;
    ensure(e.key() == Some(&victim), || format!("key: {text}"))?;
    let at = format!("on MPI rank 1 of {}", mpi.size());
    ensure(
        text.contains(&at) && text.contains("disk on fire on rank 1"),
        || format!("expected {at}: {text}"),
    )?;
    ensure(
        text.contains(if panic { "panicked" } else { "failed" }),
        || text.clone(),
    )?;
    // (The launcher checks that every rank printed the same error.)
    still_usable(mpi, &s)
}

/// After a failed run, the scheduler runs the next one (a tree sum of 0..100, gathered to
/// rank 0).
fn still_usable(mpi: &Mpi, s: &MpiScheduler) -> Check {
    let (g, root) = dag_core::synthetic::tree(100, 4);
    let v = s.compute(&g, &[root]).map_err(|e| e.to_string())?;
    if mpi.rank() == 0 {
        ensure(*v[0].get::<u64>().unwrap() == (0..100).sum::<u64>(), || {
            "sum".into()
        })?;
    }
    Ok(())
}

fn empty_ranks(mpi: &Mpi) -> Check {
    let s = sched(mpi, Gather::All);
    let (g, root) = dag_core::synthetic::chain(2);
    let v = s.compute(&g, &[root]).map_err(|e| e.to_string())?;
    let stats = s.last_run().unwrap();
    ensure(
        stats.tasks.iter().filter(|&&t| t == 0).count() >= mpi.size() - 2,
        || format!("{stats}"),
    )?;
    let expected = threaded()
        .compute(
            &dag_core::synthetic::chain(2).0,
            &[dag_core::synthetic::chain(2).1],
        )
        .unwrap();
    ensure(
        v[0].get::<u64>().ok() == expected[0].get::<u64>().ok(),
        || format!("{:?}", v[0]),
    )?;
    // An empty plan.
    let none = s.compute(&Graph::new(), &[]).map_err(|e| e.to_string())?;
    ensure(none.is_empty(), || "values from nothing".into())
}

fn unencodable_value(mpi: &Mpi) -> Check {
    struct Opaque;
    let s = sched(mpi, Gather::Root);
    let mut g = Graph::new();
    for i in 0..8 {
        g.insert(
            Key::new("opaque", [i]),
            Task::new([], |_| Ok(Value::with_nbytes(Opaque, 8))).with_nbytes(8),
        );
    }
    let deps: Vec<Key> = (0..8).map(|i| Key::new("opaque", [i])).collect();
    g.insert(
        Key::scalar("count"),
        Task::new(deps, |v| Ok(Value::new(v.len() as u64))),
    );
    let e = s
        .compute(&g, &[Key::scalar("count")])
        .err()
        .ok_or("the run succeeded")?;
    let text = e.to_string();
    ensure(e.kind() == ErrorKind::CannotSend, || text.clone())?;
    ensure(
        text.contains("opaque") && text.contains("Opaque") && text.contains("no wire encoding"),
        || text.clone(),
    )
}

/// Outputs of a type with no wire encoding, some computed on other ranks than the one that
/// gathers them: every rank ends with the same `CannotSend` error (the ranks that computed
/// them used to return it alone, and rank 0 waited for them for ever).
fn unencodable_output(mpi: &Mpi) -> Check {
    struct Opaque;
    let s = sched(mpi, Gather::Root);
    let e = outputs_of(&s, "opaque-out", || Opaque)?;
    let text = e.to_string();
    println!("ERROR output {text}");
    ensure(e.kind() == ErrorKind::CannotSend, || text.clone())?;
    ensure(
        text.contains("opaque-out") && text.contains("Opaque") && text.contains("output"),
        || text.clone(),
    )?;
    still_usable(mpi, &s)
}

/// Outputs whose bytes the gathering rank cannot decode: every rank ends with the error (the
/// gathering rank had returned alone, and the others waited in the final gather for ever).
fn undecodable_output(mpi: &Mpi) -> Check {
    struct Refused;
    dag_core::wire::register::<Refused>(
        |_, _| {},
        |_| Err("this build refuses to decode it".to_string()),
    );
    let s = sched(mpi, Gather::Root);
    let e = outputs_of(&s, "refused-out", || Refused)?;
    let text = e.to_string();
    println!("ERROR undecodable {text}");
    ensure(text.contains("decode"), || text.clone())?;
    still_usable(mpi, &s)
}

/// The error of a run whose 8 outputs (named `name`, spread over the ranks) are values made
/// by `make`, or an `Err` if it succeeded.
fn outputs_of<V: Send + Sync + 'static>(
    s: &MpiScheduler,
    name: &str,
    make: fn() -> V,
) -> Result<dag_core::Error, String> {
    let mut g = Graph::new();
    let keys: Vec<Key> = (0..8).map(|i| Key::new(name, [i])).collect();
    for k in &keys {
        g.insert(
            k.clone(),
            Task::new([], move |_| Ok(Value::with_nbytes(make(), 8))).with_nbytes(8),
        );
    }
    Ok(s.compute(&g, &keys).err().ok_or("the run succeeded")?)
}

/// A callback that panics in `on_start` on rank 1 only: every rank ends with its error (the
/// panic used to leave rank 1, and the others waited for it in the first collective).
fn on_start_panics_on_rank_1(mpi: &Mpi) -> Check {
    struct Boom(usize);
    impl dag_core::Callbacks for Boom {
        fn on_start(&self, _: &Plan) {
            if self.0 == 1 {
                panic!("the progress bar broke on rank 1");
            }
        }
    }
    let s = sched(mpi, Gather::Root);
    let (g, root) = dag_core::synthetic::tree(100, 4);
    let e = s
        .compute_with(&g, std::slice::from_ref(&root), &Boom(mpi.rank()))
        .err()
        .ok_or("the run succeeded")?;
    let text = e.to_string();
    println!("ERROR on_start {text}");
    ensure(
        text.contains("on_start") && text.contains("the progress bar broke on rank 1"),
        || text.clone(),
    )?;
    still_usable(mpi, &s)
}

fn different_graphs(mpi: &Mpi) -> Check {
    let s = sched(mpi, Gather::Root);
    let (g, root) = dag_core::synthetic::tree(10 + mpi.rank(), 4);
    let e = s.compute(&g, &[root]).err().ok_or("the run succeeded")?;
    let text = e.to_string();
    ensure(
        text.contains("different plan") && text.contains("rank 1"),
        || text,
    )
}

/// The same keys and edges, but sizes predicted differently on each rank (the partition weighs
/// tasks by them, so the ranks would cut the plan differently and wait for each other): the
/// "different plan" error, not a hang.
fn different_sizes(mpi: &Mpi) -> Check {
    let s = sched(mpi, Gather::Root);
    let mut g = Graph::new();
    let leaves: Vec<Key> = (0..16).map(|i| Key::new("sized", [i])).collect();
    for (i, k) in leaves.iter().enumerate() {
        // Rank r predicts leaf i to be large when i is a multiple of r + 2.
        let big = i % (mpi.rank() + 2) == 0;
        g.insert(
            k.clone(),
            Task::new([], move |_| Ok(Value::new(i as u64))).with_nbytes(if big {
                1 << 20
            } else {
                8
            }),
        );
    }
    g.insert(
        Key::scalar("total"),
        Task::new(leaves, |v| {
            Ok(Value::new(
                v.iter().map(|x| *x.get::<u64>().unwrap()).sum::<u64>(),
            ))
        }),
    );
    let e = s
        .compute(&g, &[Key::scalar("total")])
        .err()
        .ok_or("the run succeeded")?;
    let text = e.to_string();
    ensure(
        text.contains("different plan") && text.contains("predicted sizes"),
        || text.clone(),
    )?;
    still_usable(mpi, &s)
}

fn results_elsewhere(mpi: &Mpi) -> Check {
    let s = sched(mpi, Gather::Root);
    let x = BlockArray::<f64>::ones(&[40], [10]).unwrap();
    let r = x.sum(None, false).unwrap().compute_with(&s);
    if mpi.rank() == 0 {
        ensure(
            r.as_ref().is_ok_and(|a| a.iter().sum::<f64>() == 40.0),
            || format!("{r:?}"),
        )?;
    } else {
        let e = r.err().ok_or("a rank other than 0 got a result")?;
        ensure(
            e.kind() == BaErrorKind::Unsupported
                && e.to_string().contains("gathers results to rank 0"),
            || e.to_string(),
        )?;
    }
    ensure(s.results_elsewhere().is_some() == (mpi.rank() != 0), || {
        "results_elsewhere".into()
    })
}

fn chunk_sizes(mpi: &Mpi) -> Check {
    let x = Rng::new(3).random::<f64>(&[50, 8], [7, 3]).unwrap();
    let keep = x.slice(s![.., 0]).unwrap().greater(0.5).unwrap();
    let m = x.mask(&keep).unwrap();
    let want = x.compute_with(&threaded()).unwrap();
    let want: Vec<f64> = want
        .outer_iter()
        .filter(|r| r[0] > 0.5)
        .flat_map(|r| r.iter().copied().collect::<Vec<f64>>())
        .collect();
    let rows = want.len() / 8;
    let given = m.compute_chunk_sizes_with(&sched(mpi, Gather::Root));
    blockarray::set_default_scheduler(std::sync::Arc::new(sched(mpi, Gather::Root)));
    let by_default = m.compute_chunk_sizes();
    blockarray::set_default_scheduler(std::sync::Arc::new(ThreadedScheduler::new()));
    for known in [given, by_default] {
        let known = known.map_err(|e| format!("compute_chunk_sizes: {e}"))?;
        ensure(known.shape() == [rows, 8], || {
            format!("shape {:?}, want [{rows}, 8]", known.shape())
        })?;
        // Every rank goes on with the same graph: a reshape needs the known length.
        let flat = known.reshape(&[rows * 8]).map_err(|e| e.to_string())?;
        let got = flat
            .compute_with(&sched(mpi, Gather::All))
            .map_err(|e| e.to_string())?;
        ensure(got.as_slice() == Some(&want[..]), || {
            "values differ from the threaded scheduler's".into()
        })?;
    }
    Ok(())
}

/// `persist` under a scheduler that gathers results to rank 0 only: every rank still holds the
/// persisted blocks and goes on with them (ranks other than 0 used to get an error after the
/// run, and rank 0 waited in its next collective call).
fn persist(mpi: &Mpi) -> Check {
    let x = Rng::new(5).random::<f64>(&[30, 6], [7, 4]).unwrap();
    let want = x.compute_with(&threaded()).unwrap();
    let kept = x
        .persist_with(&sched(mpi, Gather::Root))
        .map_err(|e| format!("persist: {e}"))?;
    // No scheduler needed to read it back, and the same values on every rank.
    let here = kept
        .compute_with(&threaded())
        .map_err(|e| format!("reading the persisted array: {e}"))?;
    ensure(here == want, || "persisted values differ".into())?;
    let total = (&kept * 2.0)
        .sum(None, false)
        .unwrap()
        .compute_with(&sched(mpi, Gather::All))
        .map_err(|e| format!("a run on the persisted array: {e}"))?;
    let expected = want.sum() * 2.0;
    ensure(
        (total[[]] - expected).abs() <= 1e-9 * expected.abs(),
        || format!("{} != {expected}", total[[]]),
    )
}

/// `to_hdf5` from a distributed run: the first rank writes the file, every rank's blocks
/// reach it, and the datasets appear only when every rank succeeded.
fn hdf5_store(mpi: &Mpi) -> Check {
    use blockarray_hdf5::{DatasetOptions, Hdf5Store, from_hdf5, to_hdf5_with};
    let dir = std::path::PathBuf::from(std::env::var(DIR_VAR).map_err(|e| e.to_string())?);
    let x = Rng::new(11).random::<f64>(&[120, 90], [25, 20]).unwrap();
    let y = (&x * 2.0).sum(Some(&[1]), false).unwrap();
    for (i, gather) in [Gather::Root, Gather::All].into_iter().enumerate() {
        let s = sched(mpi, gather);
        let path = dir.join(format!("out{i}.h5"));
        to_hdf5_with(
            &path,
            &[("/x", &x), ("/g/y", &y)],
            &DatasetOptions::new().deflate(1),
            &s,
        )
        .map_err(|e| format!("store: {e}"))?;
        // Every rank reads the file right away (SPMD): the store returns on no rank before
        // the first has closed it.
        {
            let t = threaded();
            for (name, a) in [("/x", &x), ("/g/y", &y)] {
                let back = from_hdf5::<f64>(&path, name)
                    .unwrap()
                    .compute_with(&t)
                    .unwrap();
                ensure(back == a.compute_with(&t).unwrap(), || {
                    format!("{name} differs")
                })?;
            }
        }
    }
    // A task failing on rank 1: no file is left behind, on any rank's word.
    let s = sched(mpi, Gather::Root);
    let bad = x
        .map_blocks(
            OpName::from("fail-on-rank-1"),
            None,
            |b: &ndarray::ArrayD<f64>, _: &blockarray::BlockInfo<'_>| {
                if RANK.load(Ordering::SeqCst) == 1 {
                    Err("no space left on rank 1".into())
                } else {
                    Ok(b.clone())
                }
            },
        )
        .map_err(|e| e.to_string())?;
    let path = dir.join("failed.h5");
    let e = to_hdf5_with(&path, &[("/bad", &bad)], &DatasetOptions::new(), &s)
        .err()
        .ok_or("the store succeeded")?;
    ensure(e.to_string().contains("on MPI rank 1"), || e.to_string())?;
    // (Rank 0 wrote the file, and removed it before returning.)
    ensure(mpi.rank() != 0 || !path.exists(), || {
        "a failed store left its file".into()
    })?;
    // A name taken in the file (seen by rank 0 only): every rank gets the error, no hang.
    let taken = dir.join("out0.h5");
    let e = to_hdf5_with(&taken, &[("/x", &x)], &DatasetOptions::new(), &s)
        .err()
        .ok_or("storing over an existing dataset succeeded")?;
    ensure(e.to_string().contains("/x"), || e.to_string())?;
    // The same through a store: adding the dataset passes on every rank (rank 0 returning
    // there would leave the others waiting in the run), and the run fails on every rank.
    let mut store = Hdf5Store::for_scheduler(&taken, &s);
    store
        .dataset("/x", &x, &DatasetOptions::new())
        .map_err(|e| format!("dataset returned on rank {}: {e}", mpi.rank()))?;
    let e = store
        .run_with(&s, &dag_core::NoCallbacks)
        .err()
        .ok_or("a store over an existing dataset succeeded")?;
    ensure(e.to_string().contains("/x"), || e.to_string())
}

fn file_sinks_everywhere(mpi: &Mpi) -> Check {
    use blockarray_hdf5::{DatasetOptions, Hdf5Sink, from_hdf5};
    use blockarray_zarr::{ArrayOptions, ZarrSink};
    use std::sync::Arc;
    let dir = std::path::PathBuf::from(std::env::var(DIR_VAR).map_err(|e| e.to_string())?);
    let x = Rng::new(12).random::<f64>(&[60, 40], [20, 20]).unwrap();
    let s = sched(mpi, Gather::Root);
    let rank = mpi.rank();
    // Each rank makes its own sink, into its own file, as an SPMD program would: the blocks
    // all go to rank 0, so every other rank would commit a dataset of zeros.
    let h5 = dir.join(format!("direct{rank}.h5"));
    let sink = Hdf5Sink::<f64>::create(&h5, "/x", x.shape(), &DatasetOptions::new())
        .map_err(|e| format!("create: {e}"))?;
    let e = x
        .store_with(Arc::new(sink), &s)
        .err()
        .ok_or("HDF5 sinks built on every rank were accepted")?;
    ensure(e.to_string().contains("first process"), || e.to_string())?;
    ensure(from_hdf5::<f64>(&h5, "/x").is_err(), || {
        format!("a refused HDF5 sink left its dataset on rank {rank}")
    })?;
    let zarr = dir.join(format!("direct{rank}.zarr"));
    let sink = ZarrSink::<f64>::create(
        &zarr,
        "/x",
        x.shape(),
        &ArrayOptions::new().chunks([20, 20]),
    )
    .map_err(|e| format!("create: {e}"))?;
    let e = x
        .store_with(Arc::new(sink), &s)
        .err()
        .ok_or("Zarr sinks built on every rank were accepted")?;
    ensure(e.to_string().contains("spread over"), || e.to_string())?;
    ensure(
        blockarray_zarr::from_zarr::<f64>(&zarr, "/x").is_err(),
        || format!("a refused Zarr sink left its array on rank {rank}"),
    )?;
    // The same arrays through a store made for the scheduler are written once, whole.
    let path = dir.join("through_store.h5");
    blockarray_hdf5::to_hdf5_with(&path, &[("/x", &x)], &DatasetOptions::new(), &s)
        .map_err(|e| format!("store: {e}"))?;
    let t = threaded();
    ensure(
        from_hdf5::<f64>(&path, "/x")
            .unwrap()
            .compute_with(&t)
            .unwrap()
            == x.compute_with(&t).unwrap(),
        || "the stored array differs".into(),
    )
}

fn dies(mpi: &Mpi) -> Check {
    let s = sched(mpi, Gather::Root);
    let (mut g, root) = dag_core::synthetic::tree(400, 4);
    let victim = Key::new("leaf", [399]);
    let deps = g.get(&victim).unwrap().deps().to_vec();
    g.insert(
        victim,
        Task::new(deps, |_| -> TaskResult {
            std::thread::sleep(Duration::from_millis(200));
            if RANK.load(Ordering::SeqCst) == 1 {
                std::process::exit(3);
            }
            Ok(Value::new(0u64))
        }),
    );
    let _ = s.compute(&g, &[root]);
    Err("the job went on after a rank died".into())
}
