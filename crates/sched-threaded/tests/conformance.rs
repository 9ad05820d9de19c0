//! Both schedulers against a naive recursive evaluator, on random DAGs, failures, huge graphs
//! and memory bounds.

use dag_core::{
    ErrorKind, Graph, Key, NoCallbacks, Plan, Scheduler, Task, TaskResult, Value, synthetic,
};
use proptest::prelude::*;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

fn threaded(n: usize) -> ThreadedScheduler {
    ThreadedScheduler::builder().threads(n).build().unwrap()
}

fn all_schedulers() -> Vec<Box<dyn Scheduler>> {
    vec![
        Box::new(SyncScheduler::new()),
        Box::new(threaded(1)),
        Box::new(threaded(2)),
        Box::new(threaded(8)),
    ]
}

/// Run `f` on another thread and fail the test if it takes longer than `secs`: a hang must be
/// a failure, not a stuck CI job.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the computation hung")
}

/// A random DAG: node `i` depends on some earlier nodes (repeats allowed).
#[derive(Clone, Debug)]
struct Dag {
    deps: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    insert_order: Vec<usize>,
}

fn node_value(i: usize, inputs: &[u64]) -> u64 {
    let mut h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF;
    for (j, v) in inputs.iter().enumerate() {
        h = (h ^ v.rotate_left(j as u32 % 63)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    h
}

/// The reference: evaluate by plain recursion with memoisation, no graph machinery.
fn naive(dag: &Dag, i: usize, memo: &mut Vec<Option<u64>>) -> u64 {
    if let Some(v) = memo[i] {
        return v;
    }
    let inputs: Vec<u64> = dag.deps[i].iter().map(|&d| naive(dag, d, memo)).collect();
    let v = node_value(i, &inputs);
    memo[i] = Some(v);
    v
}

fn build(dag: &Dag) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    for &i in &dag.insert_order {
        let deps = dag.deps[i].iter().map(|&d| Key::new("n", [d]));
        g.insert(
            Key::new("n", [i]),
            Task::new(deps, move |vals| {
                let inputs = vals
                    .iter()
                    .map(|v| v.get::<u64>().copied())
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::new(node_value(i, &inputs)))
            }),
        );
    }
    let outputs = dag.outputs.iter().map(|&o| Key::new("n", [o])).collect();
    (g, outputs)
}

/// [`build`], with task `i`'s value declared (and predicted) to hold `sizes[i]` bytes.
fn build_sized(dag: &Dag, sizes: &[usize]) -> (Graph, Vec<Key>) {
    let mut g = Graph::new();
    for &i in &dag.insert_order {
        let deps = dag.deps[i].iter().map(|&d| Key::new("n", [d]));
        let size = sizes[i % sizes.len()];
        let task = Task::new(deps, move |vals| {
            let inputs = vals
                .iter()
                .map(|v| v.get::<u64>().copied())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::with_nbytes(node_value(i, &inputs), size))
        });
        g.insert(Key::new("n", [i]), task.with_nbytes(size));
    }
    let outputs = dag.outputs.iter().map(|&o| Key::new("n", [o])).collect();
    (g, outputs)
}

fn dag_strategy(max_nodes: usize) -> impl Strategy<Value = Dag> {
    (1..max_nodes, 0usize..12, any::<u64>()).prop_flat_map(|(n, max_fanin, seed)| {
        let deps = (0..n)
            .map(|i| {
                if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    proptest::collection::vec(0..i, 0..=max_fanin).boxed()
                }
            })
            .collect::<Vec<_>>();
        let outputs = proptest::collection::vec(0..n, 1..8);
        (deps, outputs).prop_map(move |(deps, outputs)| {
            // A deterministic shuffle of the insertion order, so keys are not added sorted.
            let mut insert_order: Vec<usize> = (0..deps.len()).collect();
            let mut s = seed | 1;
            for i in (1..insert_order.len()).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                insert_order.swap(i, (s % (i as u64 + 1)) as usize);
            }
            Dag {
                deps,
                outputs,
                insert_order,
            }
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_dags_agree_with_naive_evaluator(dag in dag_strategy(3000)) {
        let mut memo = vec![None; dag.deps.len()];
        let expected: Vec<u64> = dag.outputs.iter().map(|&o| naive(&dag, o, &mut memo)).collect();
        let (g, outputs) = build(&dag);
        for s in all_schedulers() {
            let run = s.compute_with(&g, &outputs, &NoCallbacks).unwrap();
            let got: Vec<u64> = run.values.iter().map(|v| *v.get::<u64>().unwrap()).collect();
            prop_assert_eq!(&got, &expected, "scheduler {}", s.name());
            // Only the needed tasks ran.
            let needed = memo.iter().filter(|m| m.is_some()).count();
            prop_assert_eq!(run.stats.tasks, needed);
        }
    }

    #[test]
    fn fused_graphs_give_the_same_results(dag in dag_strategy(400)) {
        let (g, outputs) = build(&dag);
        let fused = g.fuse(&outputs).unwrap();
        prop_assert!(fused.len() <= g.cull(&outputs).unwrap().len());
        let inlined = g.fuse_where(&outputs, |k, _, _, _| k.index()[0] % 3 != 0).unwrap();
        let a = SyncScheduler::new().compute(&g, &outputs).unwrap();
        let b = threaded(2).compute(&fused, &outputs).unwrap();
        let c = threaded(2).compute(&inlined, &outputs).unwrap();
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            prop_assert_eq!(x.get::<u64>().unwrap(), y.get::<u64>().unwrap());
            prop_assert_eq!(x.get::<u64>().unwrap(), z.get::<u64>().unwrap());
        }
    }

    #[test]
    fn the_predicted_sequential_peak_is_the_synchronous_schedulers_peak(
        dag in dag_strategy(1500),
        sizes in proptest::collection::vec(0usize..5000, 1500),
    ) {
        let (g, outputs) = build_sized(&dag, &sizes);
        let plan = Plan::new(&g, &outputs).unwrap();
        let run = SyncScheduler::new().execute(&plan, &NoCallbacks).unwrap();
        prop_assert_eq!(plan.predicted_peak(1), run.stats.peak_bytes);
        // One worker of the threaded scheduler runs the same order (under a limit, which
        // it never reaches here, it counts every byte as it goes).
        let exact = Plan::new(&g, &outputs).unwrap().with_memory_limit(Some(usize::MAX));
        let run1 = threaded(1).execute(&exact, &NoCallbacks).unwrap();
        prop_assert_eq!(plan.predicted_peak(1), run1.stats.peak_bytes);
        // The largest footprint is a task's distinct inputs plus output.
        let (id, bytes) = plan.largest_footprint().unwrap();
        let distinct: std::collections::BTreeSet<u32> = plan.deps(id).iter().copied().collect();
        let inputs: usize = distinct.iter().map(|&d| plan.predicted_nbytes(d as usize)).sum();
        prop_assert_eq!(bytes, inputs + plan.predicted_nbytes(id));
    }

    #[test]
    fn runs_under_any_memory_limit_finish_with_the_right_values(
        dag in dag_strategy(800),
        sizes in proptest::collection::vec(0usize..5000, 800),
        share in 0.0f64..1.5,
    ) {
        let mut memo = vec![None; dag.deps.len()];
        let expected: Vec<u64> = dag.outputs.iter().map(|&o| naive(&dag, o, &mut memo)).collect();
        let (g, outputs) = build_sized(&dag, &sizes);
        let plan = Plan::new(&g, &outputs).unwrap();
        // Any limit, even zero: the run degrades to one task at a time, and never stops.
        let limit = (plan.predicted_peak(1) as f64 * share) as usize;
        let plan = plan.with_memory_limit(Some(limit));
        let plan = std::sync::Arc::new(plan);
        for n in [1, 2, 8] {
            let p = plan.clone();
            let run = within(60, move || threaded(n).execute(&p, &NoCallbacks).unwrap());
            let got: Vec<u64> = run.values.iter().map(|v| *v.get::<u64>().unwrap()).collect();
            prop_assert_eq!(&got, &expected, "threads {}", n);
        }
    }

    #[test]
    fn plan_order_puts_dependencies_first(dag in dag_strategy(1000)) {
        let (g, outputs) = build(&dag);
        let plan = Plan::new(&g, &outputs).unwrap();
        for id in 0..plan.len() {
            for &d in plan.deps(id) {
                prop_assert!((d as usize) < id);
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    Error,
    Panic,
}

/// A tree of about 100,000 tasks in which the task `victim` fails.
fn failing_tree(victim: &Key, how: Failure) -> (Graph, Key) {
    let (mut g, root) = synthetic::tree(87_500, 8);
    let task = g.get(victim).expect("victim exists").clone();
    let deps = task.deps().to_vec();
    let failing = Task::new(deps, move |_| -> TaskResult {
        match how {
            Failure::Error => Err("disk on fire".into()),
            Failure::Panic => panic!("index out of range in test task"),
        }
    });
    g.insert(victim.clone(), failing);
    (g, root)
}

#[test]
fn failures_name_the_key_and_leave_the_scheduler_usable() {
    let (g, root) = synthetic::tree(87_500, 8);
    assert!(g.len() >= 100_000, "{} tasks", g.len());
    let middle = Key::new("sum1", [500]);
    assert!(g.contains_key(&middle));
    for victim in [Key::new("leaf", [0]), middle, root.clone()] {
        for how in [Failure::Error, Failure::Panic] {
            let (g, root) = failing_tree(&victim, how);
            let g = Arc::new(g);
            for threads in [0, 1, 2, 8] {
                let g2 = Arc::clone(&g);
                let root2 = root.clone();
                let err = within(120, move || {
                    if threads == 0 {
                        SyncScheduler::new().compute(&g2, &[root2]).unwrap_err()
                    } else {
                        threaded(threads).compute(&g2, &[root2]).unwrap_err()
                    }
                });
                assert_eq!(err.kind(), ErrorKind::TaskFailed, "{err}");
                assert_eq!(err.key(), Some(&victim), "{err}");
                let msg = err.to_string();
                match how {
                    Failure::Error => assert!(msg.contains("disk on fire"), "{msg}"),
                    Failure::Panic => {
                        assert!(msg.contains("panicked") && msg.contains("index out of range"))
                    }
                }
            }
        }
    }
    // The same scheduler value runs the next graph fine.
    let sched = threaded(8);
    let (bad, root) = failing_tree(&Key::new("leaf", [3]), Failure::Panic);
    assert!(sched.compute(&bad, std::slice::from_ref(&root)).is_err());
    let (good, root) = synthetic::tree(10_000, 8);
    let v = sched.compute(&good, &[root]).unwrap();
    assert_eq!(*v[0].get::<u64>().unwrap(), 10_000 * 9_999 / 2);
}

#[test]
fn no_new_tasks_start_after_a_failure() {
    let started = Arc::new(AtomicUsize::new(0));
    let mut g = Graph::new();
    let n = 100_000;
    for i in 0..n {
        let started = Arc::clone(&started);
        g.insert(
            Key::new("t", [i]),
            Task::new([], move |_| -> TaskResult {
                started.fetch_add(1, Ordering::Relaxed);
                if i == 100 {
                    return Err("boom".into());
                }
                Ok(Value::new(i as u64))
            }),
        );
    }
    let keys: Vec<Key> = (0..n).map(|i| Key::new("t", [i])).collect();
    for threads in [1, 2, 8] {
        started.store(0, Ordering::Relaxed);
        let err = threaded(threads).compute(&g, &keys).unwrap_err();
        assert_eq!(err.key(), Some(&Key::new("t", [100])));
        let ran = started.load(Ordering::Relaxed);
        assert!(
            ran < n / 2,
            "{ran} of {n} tasks started despite the failure"
        );
    }
}

#[test]
fn a_million_tasks_complete() {
    let (g, root) = synthetic::tree(875_000, 8);
    assert!(g.len() >= 1_000_000, "{} tasks", g.len());
    let expected = 875_000u64 * 874_999 / 2;
    for s in [
        Box::new(SyncScheduler::new()) as Box<dyn Scheduler>,
        Box::new(threaded(2)),
    ] {
        let run = s
            .compute_with(&g, std::slice::from_ref(&root), &NoCallbacks)
            .unwrap();
        assert_eq!(*run.values[0].get::<u64>().unwrap(), expected);
        assert_eq!(run.stats.tasks, g.len());
    }
}

#[test]
fn a_million_task_chain_completes() {
    let (g, last) = synthetic::chain(1_000_000);
    let v = threaded(2).compute(&g, &[last]).unwrap();
    assert_eq!(*v[0].get::<u64>().unwrap(), 999_999);
}

/// Peak number of leaf values held at once in a tree sum whose leaves declare 1 MB each.
fn peak_live_leaves(s: &dyn Scheduler, leaves: usize) -> usize {
    const LEAF: usize = 1_000_000;
    let (g, root) = synthetic::tree_with(leaves, 8, |i| Value::with_nbytes(i as u64, LEAF));
    let run = s.compute_with(&g, &[root], &NoCallbacks).unwrap();
    assert_eq!(
        *run.values[0].get::<u64>().unwrap(),
        (leaves as u64) * (leaves as u64 - 1) / 2
    );
    run.stats.peak_bytes / LEAF
}

#[test]
fn tree_sum_memory_does_not_grow_with_leaf_count() {
    // The static order holds one group of 8 leaves at a time.
    for leaves in [1_000, 10_000] {
        assert!(peak_live_leaves(&SyncScheduler::new(), leaves) <= 8);
    }
    // Work stealing: each worker holds at most a stolen batch plus a group; the bound depends
    // on the thread count, not on the number of leaves.
    for threads in [1, 2, 8] {
        let s = threaded(threads);
        let small = peak_live_leaves(&s, 1_000);
        let large = peak_live_leaves(&s, 10_000);
        let bound = threads * 48;
        assert!(
            small <= bound && large <= bound,
            "{threads} threads: peak {small} leaves for 1,000, {large} for 10,000 (bound {bound})"
        );
    }
}

#[test]
fn intermediates_are_freed_and_outputs_kept() {
    let (g, keys) = synthetic::independent(1_000);
    for s in all_schedulers() {
        let run = s.compute_with(&g, &keys, &NoCallbacks).unwrap();
        assert_eq!(run.values.len(), 1_000);
        assert_eq!(run.stats.peak_bytes, 1_000 * 8, "{}", s.name());
        for (i, v) in run.values.iter().enumerate() {
            assert_eq!(*v.get::<u64>().unwrap(), i as u64);
        }
    }
}

#[test]
fn callbacks_see_every_task() {
    #[derive(Default)]
    struct Count {
        started: AtomicUsize,
        finished: AtomicUsize,
        bytes: AtomicUsize,
        finishes: AtomicUsize,
    }
    impl dag_core::Callbacks for Count {
        fn on_task_start(&self, _: &dag_core::TaskEvent<'_>) {
            self.started.fetch_add(1, Ordering::Relaxed);
        }
        fn on_task_finish(&self, task: &dag_core::TaskEvent<'_>) {
            self.finished.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(task.bytes_out, Ordering::Relaxed);
        }
        fn on_finish(&self, stats: Option<&dag_core::RunStats>) {
            assert!(stats.is_some());
            self.finishes.fetch_add(1, Ordering::Relaxed);
        }
    }
    let (g, root) = synthetic::tree(5_000, 8);
    for s in all_schedulers() {
        let c = Count::default();
        s.compute_with(&g, std::slice::from_ref(&root), &c).unwrap();
        assert_eq!(c.started.load(Ordering::Relaxed), g.len());
        assert_eq!(c.finished.load(Ordering::Relaxed), g.len());
        assert_eq!(c.bytes.load(Ordering::Relaxed), g.len() * 8);
        assert_eq!(c.finishes.load(Ordering::Relaxed), 1);
    }
}

#[test]
fn task_events_name_the_task_its_worker_and_its_bytes() {
    use dag_core::{Callbacks, RunInfo, TaskEvent};
    use std::sync::Mutex;
    /// Every finished task as (id, worker, bytes in, bytes out, start ≤ end), the workers
    /// announced, and whether events were consistent.
    #[derive(Default)]
    struct Record {
        workers: AtomicUsize,
        tasks: Mutex<Vec<(usize, usize, usize, usize)>>,
        started: Mutex<Vec<usize>>,
    }
    impl Callbacks for Record {
        fn on_run_info(&self, info: &RunInfo) {
            self.workers.store(info.workers, Ordering::Relaxed);
        }
        fn on_task_start(&self, t: &TaskEvent<'_>) {
            assert_eq!((t.elapsed, t.bytes_out), (Duration::ZERO, 0));
            self.started.lock().unwrap().push(t.id);
        }
        fn on_task_finish(&self, t: &TaskEvent<'_>) {
            assert!(t.end() >= t.start);
            self.tasks
                .lock()
                .unwrap()
                .push((t.id, t.worker, t.bytes_in, t.bytes_out));
        }
    }
    let (g, root) = synthetic::tree(2_000, 8);
    let plan = Plan::new(&g, std::slice::from_ref(&root)).unwrap();
    for s in all_schedulers() {
        let r = Record::default();
        s.execute(&plan, &r).unwrap();
        let workers = r.workers.load(Ordering::Relaxed);
        assert!((1..=s.workers()).contains(&workers), "{}", s.name());
        let mut tasks = r.tasks.into_inner().unwrap();
        tasks.sort();
        assert_eq!(tasks.len(), plan.len());
        let mut started = r.started.into_inner().unwrap();
        started.sort();
        assert_eq!(started, (0..plan.len()).collect::<Vec<_>>());
        for (i, &(id, worker, bytes_in, bytes_out)) in tasks.iter().enumerate() {
            assert_eq!(id, i);
            assert!(
                worker < workers,
                "{}: worker {worker} of {workers}",
                s.name()
            );
            // Every value is a u64: a task reads 8 bytes per dependency.
            assert_eq!(bytes_in, plan.deps(id).len() * 8, "{}", plan.key(id));
            assert_eq!(bytes_out, 8);
        }
    }
}

#[test]
fn graph_errors_are_reported_before_running() {
    let mut g = Graph::new();
    g.insert("a".into(), Task::new(["b".into()], |v| Ok(v[0].clone())));
    g.insert("b".into(), Task::new(["c".into()], |v| Ok(v[0].clone())));
    g.insert("c".into(), Task::new(["a".into()], |v| Ok(v[0].clone())));
    g.insert("d".into(), Task::new(["nope".into()], |v| Ok(v[0].clone())));
    for s in all_schedulers() {
        let e = s.compute(&g, &["a".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cycle);
        assert_eq!(e.to_string(), "the graph has a cycle: a -> b -> c -> a");
        let e = s.compute(&g, &["d".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingDependency);
        assert!(e.to_string().contains("nope"), "{e}");
        let e = s.compute(&g, &["zz".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingKey);
    }
    assert!(threaded(2).compute(&Graph::new(), &[]).unwrap().is_empty());
    assert!(ThreadedScheduler::builder().threads(0).build().is_err());
}

#[test]
fn the_scheduler_is_object_safe_and_shareable() {
    let s: Arc<dyn Scheduler> = Arc::new(threaded(2));
    let (g, root) = synthetic::chain(100);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&s);
            let g = g.clone();
            let root = root.clone();
            std::thread::spawn(move || *s.compute(&g, &[root]).unwrap()[0].get::<u64>().unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 99);
    }
}

#[test]
fn outputs_sharing_inputs_do_not_hold_them_all() {
    // Three tree sums over the same 2,000 leaves of 1 MB (like sum, mean and std of one
    // array in one computation): each leaf is freed once its three readers have run, so the
    // static order holds a handful of leaves, not all of them.
    const LEAF: usize = 1_000_000;
    let leaves = 2_000;
    let mut g = Graph::new();
    for i in 0..leaves {
        g.insert(
            Key::new("leaf", [i]),
            Task::new([], move |_| Ok(Value::with_nbytes(i as u64, LEAF))),
        );
    }
    let sum = |vals: &[Value]| -> TaskResult {
        let mut s = 0u64;
        for v in vals {
            s += v.get::<u64>()?;
        }
        Ok(Value::new(s))
    };
    let mut outputs = Vec::new();
    for out in 0..3 {
        let name = format!("part{out}");
        for p in 0..leaves / 8 {
            let deps = (0..8).map(|i| Key::new("leaf", [p * 8 + i]));
            g.insert(Key::new(name.as_str(), [p]), Task::new(deps, sum));
        }
        let root = Key::new(format!("total{out}").as_str(), [0]);
        g.insert(
            root.clone(),
            Task::new((0..leaves / 8).map(|p| Key::new(name.as_str(), [p])), sum),
        );
        outputs.push(root);
    }
    let expected = (leaves as u64) * (leaves as u64 - 1) / 2;
    for s in all_schedulers() {
        let run = s.compute_with(&g, &outputs, &NoCallbacks).unwrap();
        for v in &run.values {
            assert_eq!(*v.get::<u64>().unwrap(), expected);
        }
        let peak_leaves = run.stats.peak_bytes / LEAF;
        assert!(
            peak_leaves <= 64,
            "{}: {peak_leaves} leaves held at once",
            s.name()
        );
    }
}

/// What one simulated process sends another: a value, or the error that ended its part.
enum Msg {
    Value(usize, Value),
    Failed(dag_core::Error),
}

/// Run `plan` split over `owner.len()`-way simulated processes (threads in this one), each
/// running its share with [`ThreadedScheduler::execute_part`] and passing values over
/// channels: the hook `sched-mpi` builds on, tested without MPI. Returns each part's outcome.
fn run_in_parts(
    plan: &Plan,
    owner: &[usize],
    parts: usize,
) -> Vec<Result<sched_threaded::PartRun, dag_core::Error>> {
    let n = plan.len();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..parts).map(|_| mpsc::channel()).unzip();
    std::thread::scope(|scope| {
        let handles: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(me, inbox_rx)| {
                let senders = senders.clone();
                scope.spawn(move || {
                    let local: Vec<bool> = (0..n).map(|i| owner[i] == me).collect();
                    // Where each local value must go: the other parts with a reader.
                    let dests: Vec<Vec<usize>> = (0..n)
                        .map(|i| {
                            let mut d: Vec<usize> = plan
                                .dependents(i)
                                .iter()
                                .map(|&t| owner[t as usize])
                                .filter(|&o| o != me && local[i])
                                .collect();
                            d.sort_unstable();
                            d.dedup();
                            d
                        })
                        .collect();
                    let exported: Vec<bool> = dests.iter().map(|d| !d.is_empty()).collect();
                    let export = |id: usize, v: &Value| {
                        for &d in &dests[id] {
                            let _ = senders[d].send(Msg::Value(id, v.clone()));
                        }
                        Ok(())
                    };
                    let part = sched_threaded::Part {
                        local: &local,
                        exported: &exported,
                        export: &export,
                    };
                    let sched = threaded(1 + me % 2);
                    let (outcome, ()) = sched.execute_part(plan, &part, &NoCallbacks, |inbox| {
                        loop {
                            while let Ok(msg) = inbox_rx.try_recv() {
                                match msg {
                                    Msg::Value(id, v) => inbox.deliver(id, v),
                                    Msg::Failed(e) => inbox.fail(e),
                                }
                            }
                            if inbox.is_over() {
                                break;
                            }
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        // A part that failed tells the others, as sched-mpi does (a part
                        // that was told passes it on too: harmless, the first error stays).
                        if let Some(e) = inbox.error() {
                            for (d, s) in senders.iter().enumerate() {
                                if d != me {
                                    let _ = s.send(Msg::Failed(e.clone()));
                                }
                            }
                        }
                    });
                    outcome
                })
            })
            .collect();
        drop(senders);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_plan_split_into_parts_computes_the_same_values(
        dag in dag_strategy(600),
        parts in 1usize..5,
        seed in any::<u64>(),
    ) {
        let mut memo = vec![None; dag.deps.len()];
        let expected: Vec<u64> = dag.outputs.iter().map(|&o| naive(&dag, o, &mut memo)).collect();
        let (g, outputs) = build(&dag);
        let plan = Plan::new(&g, &outputs).unwrap();
        let owner: Vec<usize> = (0..plan.len())
            .map(|i| ((i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % parts)
            .collect();
        let runs = within(60, move || {
            let outcomes = run_in_parts(&plan, &owner, parts);
            let mut got = vec![None; plan.outputs().len()];
            let mut tasks = 0;
            for o in outcomes {
                let run = o.unwrap();
                tasks += run.stats.tasks;
                for (slot, v) in got.iter_mut().zip(run.outputs) {
                    if let Some(v) = v {
                        *slot = Some(*v.get::<u64>().unwrap());
                    }
                }
            }
            (got, tasks, plan.len())
        });
        let (got, tasks, len) = runs;
        let got: Vec<u64> = got.into_iter().map(|v| v.expect("every output was computed somewhere")).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(tasks, len);
    }
}

#[test]
fn a_failure_in_one_part_ends_every_part_with_its_error() {
    let victim = Key::new("leaf", [77]);
    let (g, root) = failing_tree(&victim, Failure::Error);
    let plan = Plan::new(&g, &[root]).unwrap();
    let owner: Vec<usize> = (0..plan.len()).map(|i| i * 3 / plan.len()).collect();
    let victim_part = owner[(0..plan.len()).find(|&i| *plan.key(i) == victim).unwrap()];
    let root_part = owner[plan.outputs()[0] as usize];
    assert_ne!(victim_part, root_part);
    let outcomes = within(30, move || run_in_parts(&plan, &owner, 3));
    // The failing part and the part waiting for its values both end with the error (no
    // hang); a part that needed nothing from it may have finished first (sched-mpi's final
    // agreement then gives it the error too).
    for (p, o) in outcomes.iter().enumerate() {
        match o {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TaskFailed);
                assert_eq!(e.key(), Some(&victim), "{e}");
            }
            Ok(_) => assert!(p != victim_part && p != root_part, "part {p} succeeded"),
        }
    }
}

#[test]
fn a_run_uses_at_most_one_thread_per_task() {
    let four = ThreadedScheduler::builder().threads(4).build().unwrap();
    for (n, threads) in [(1, 1), (3, 3), (50, 4)] {
        let (g, keys) = synthetic::independent(n);
        let plan = Plan::new(&g, &keys).unwrap();
        let run = four.execute(&plan, &NoCallbacks).unwrap();
        assert_eq!(run.stats.threads, threads, "{n} tasks");
        assert_eq!(run.values.len(), n);
    }
}

/// A driver's mistakes — a value for a task not in the plan, for a task computed here, or
/// twice for one task — fail the part naming them (they indexed out of range, or counted a
/// dependency down twice and started its reader early).
#[test]
fn wrong_deliveries_fail_the_part_naming_them() {
    let mut g = Graph::new();
    g.insert("a".into(), Task::literal(Value::new(1u64)));
    g.insert("b".into(), Task::literal(Value::new(2u64)));
    g.insert(
        "sum".into(),
        Task::new(["a".into(), "b".into()], |v| {
            Ok(Value::new(*v[0].get::<u64>()? + *v[1].get::<u64>()?))
        }),
    );
    let plan = Plan::new(&g, &["sum".into()]).unwrap();
    let id = |k: &str| (0..plan.len()).find(|&i| *plan.key(i) == k.into()).unwrap();
    let (a, b, sum) = (id("a"), id("b"), id("sum"));
    // This part computes `sum`; `a` and `b` come from elsewhere.
    let local: Vec<bool> = (0..plan.len()).map(|i| i == sum).collect();
    let exported = vec![false; plan.len()];
    let export = |_: usize, _: &Value| Ok(());
    let part = sched_threaded::Part {
        local: &local,
        exported: &exported,
        export: &export,
    };
    let cases: [(Vec<usize>, &str); 3] = [
        (vec![99], "task 99 is not in the plan of 3 tasks"),
        (vec![sum], "is computed in this process"),
        (vec![a, a], "was delivered twice"),
    ];
    for (deliveries, why) in cases {
        // (The old code waited for ever on the task it was told was computed elsewhere.)
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (outcome, ()) = threaded(2).execute_part(&plan, &part, &NoCallbacks, |inbox| {
            for &d in &deliveries {
                inbox.deliver(d, Value::new(1u64));
            }
            while !inbox.is_over() {
                if std::time::Instant::now() > deadline {
                    inbox.fail(dag_core::Error::Scheduler("the part hung".into()));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let e = outcome.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Scheduler, "{e}");
        assert!(e.to_string().contains(why), "{e}");
    }
    // Delivered right, the part runs.
    let (outcome, ()) = threaded(2).execute_part(&plan, &part, &NoCallbacks, |inbox| {
        inbox.deliver(a, Value::new(1u64));
        inbox.deliver(b, Value::new(2u64));
        while !inbox.is_over() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let run = outcome.unwrap();
    assert_eq!(*run.outputs[0].as_ref().unwrap().get::<u64>().unwrap(), 3);
}
