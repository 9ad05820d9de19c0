//! Graph building, validation, culling, fusion, listing, DOT and delayed composition.

use dag_core::{
    Delayed, ErrorKind, Graph, Key, OpName, Placement, Plan, Scheduler, Task, TaskResult,
    Tokenizer, Value, tokenize,
};
use sched_sync::SyncScheduler;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn add_one(v: &[Value]) -> TaskResult {
    Ok(Value::new(v[0].get::<i64>()? + 1))
}

fn sum(v: &[Value]) -> TaskResult {
    let mut s = 0i64;
    for x in v {
        s += x.get::<i64>()?;
    }
    Ok(Value::new(s))
}

fn lit(v: i64) -> Task {
    Task::literal(Value::new(v))
}

#[test]
fn validate_names_missing_dependencies_and_cycles() {
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert("b".into(), Task::new(["a".into(), "ghost".into()], sum));
    let e = g.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingDependency);
    assert_eq!(
        e.to_string(),
        "task b depends on ghost, which is not in the graph"
    );

    let mut g = Graph::new();
    g.insert(Key::new("x", [0]), Task::new([Key::new("x", [1])], add_one));
    g.insert(Key::new("x", [1]), Task::new([Key::new("x", [0])], add_one));
    let e = g.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cycle);
    assert!(e.to_string().contains(r#"("x", 0)"#), "{e}");
    assert!(e.to_string().contains(r#"("x", 1)"#), "{e}");

    let mut g = Graph::new();
    g.insert("self".into(), Task::new(["self".into()], add_one));
    assert_eq!(g.validate().unwrap_err().kind(), ErrorKind::Cycle);
}

#[test]
fn cull_keeps_only_what_outputs_need_in_dependency_order() {
    let mut g = Graph::new();
    g.insert("c".into(), Task::new(["b".into()], add_one));
    g.insert("unused".into(), Task::new(["a".into()], add_one));
    g.insert("b".into(), Task::new(["a".into()], add_one));
    g.insert("a".into(), lit(1));
    let culled = g.cull(&["c".into()]).unwrap();
    let keys: Vec<String> = culled.keys().iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(
        g.cull(&["nope".into()]).unwrap_err().kind(),
        ErrorKind::MissingKey
    );
}

#[test]
fn placements_survive_fusion_and_planning() {
    // a → b → c with c placed with the results: the fused task keeps c's placement.
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert("b".into(), Task::new(["a".into()], add_one));
    g.insert(
        "c".into(),
        Task::new(["b".into()], add_one).with_placement(Placement::Results),
    );
    g.insert("d".into(), Task::new(["a".into()], add_one));
    let outputs: Vec<Key> = vec!["c".into(), "d".into()];
    let plan = Plan::new(&g, &outputs).unwrap();
    let placed: Vec<(String, Placement)> = (0..plan.len())
        .map(|i| (plan.key(i).to_string(), plan.placement(i)))
        .collect();
    assert!(
        placed.contains(&("c".into(), Placement::Results)),
        "{placed:?}"
    );
    assert!(
        placed.contains(&("b".into(), Placement::Anywhere)),
        "{placed:?}"
    );
    let fused = g.fuse(&["c".into()]).unwrap();
    assert_eq!(fused.len(), 1);
    let plan = Plan::new(&fused, &["c".into()]).unwrap();
    assert_eq!(plan.placement(0), Placement::Results);
    assert_eq!(Task::new([], add_one).placement(), Placement::Anywhere);
}

#[test]
fn fuse_merges_linear_chains_only() {
    // a → b → c → d, and c is also needed by e: b→c fuse into c (a too), d and e stay.
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert(
        "b".into(),
        Task::new(["a".into()], add_one).with_label("inc"),
    );
    g.insert("c".into(), Task::new(["b".into()], add_one));
    g.insert("d".into(), Task::new(["c".into()], add_one));
    g.insert("e".into(), Task::new(["c".into(), "a2".into()], sum));
    g.insert("a2".into(), lit(10));
    let outputs: Vec<Key> = vec!["d".into(), "e".into()];
    let fused = g.fuse(&outputs).unwrap();
    let keys: Vec<String> = fused.keys().iter().map(|k| k.to_string()).collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.contains(&"c".to_string()) && !keys.contains(&"b".to_string()));
    let listing = fused.to_string();
    assert!(listing.contains("c = a+inc+c()"), "{listing}");
    let s = SyncScheduler::new();
    let got = s.compute(&fused, &outputs).unwrap();
    assert_eq!(*got[0].get::<i64>().unwrap(), 4);
    assert_eq!(*got[1].get::<i64>().unwrap(), 13);
    // An output inside a chain is not fused away.
    let fused = g.fuse(&["b".into(), "d".into()]).unwrap();
    assert!(fused.contains_key(&"b".into()));
    // A producer pinned to the first process (a write into a file) stays a task of its own
    // under a consumer that may run anywhere; an unpinned one may join a pinned consumer.
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert(
        "b".into(),
        Task::new(["a".into()], add_one).with_placement(Placement::First),
    );
    g.insert("c".into(), Task::new(["b".into()], add_one));
    let fused = g.fuse(&["c".into()]).unwrap();
    assert!(fused.contains_key(&"b".into()), "{fused}");
    assert!(!fused.contains_key(&"a".into()), "{fused}");
    assert_eq!(
        fused.get(&"b".into()).unwrap().placement(),
        Placement::First
    );
}

#[test]
fn fused_tasks_are_labelled_by_their_stages() {
    // Three chains: two of the same shape (their fused tasks share one label) and a long one.
    let mut g = Graph::new();
    let mut outputs: Vec<Key> = Vec::new();
    for i in 0..2usize {
        let (src, mid, out) = (
            Key::new("src", [i]),
            Key::new("mid", [i]),
            Key::new("out", [i]),
        );
        g.insert(src.clone(), lit(i as i64));
        g.insert(mid.clone(), Task::new([src], add_one).with_label("inc"));
        g.insert(out.clone(), Task::new([mid], add_one).with_label("inc2"));
        outputs.push(out);
    }
    g.insert("l0".into(), lit(0));
    for i in 1..7 {
        g.insert(
            format!("l{i}").as_str().into(),
            Task::new([format!("l{}", i - 1).as_str().into()], add_one),
        );
    }
    outputs.push("l6".into());
    let fused = g.fuse(&outputs).unwrap();
    assert_eq!(fused.len(), 3);
    let listing = fused.to_string();
    assert!(
        listing.contains("(\"out\", 0) = src+inc+inc2()")
            && listing.contains("(\"out\", 1) = src+inc+inc2()"),
        "{listing}"
    );
    assert!(listing.contains("l6 = l0+…+l6 (7 fused)()"), "{listing}");
    let got = SyncScheduler::new().compute(&fused, &outputs).unwrap();
    let got: Vec<i64> = got.iter().map(|v| *v.get::<i64>().unwrap()).collect();
    assert_eq!(got, [2, 3, 6]);
}

#[test]
fn fused_errors_name_the_inner_stage() {
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert(
        "b".into(),
        Task::new(["a".into()], |_| -> TaskResult { Err("bad block".into()) }),
    );
    g.insert("c".into(), Task::new(["b".into()], add_one));
    let fused = g.fuse(&["c".into()]).unwrap();
    let e = SyncScheduler::new()
        .compute(&fused, &["c".into()])
        .unwrap_err();
    assert_eq!(e.key(), Some(&"c".into()));
    assert!(e.to_string().contains("in fused stage b: bad block"), "{e}");
}

#[test]
fn listing_and_dot_show_every_task_and_edge() {
    let mut g = Graph::new();
    g.insert(Key::new("ones-1", [0]), lit(1));
    g.insert(Key::new("ones-1", [1]), lit(1));
    g.insert(
        Key::new("sum-2", [0]),
        Task::new([Key::new("ones-1", [0]), Key::new("ones-1", [1])], sum),
    );
    let listing = g.to_string();
    assert_eq!(listing.lines().count(), 3);
    assert!(
        listing.contains(r#"("ones-1", 0) = <i64, 8 bytes>"#),
        "{listing}"
    );
    assert!(
        listing.contains(r#"("sum-2", 0) = sum(("ones-1", 0), ("ones-1", 1))"#),
        "{listing}"
    );
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph"));
    assert_eq!(dot.matches("->").count(), 2, "{dot}");
    assert_eq!(dot.matches("label").count(), 3, "{dot}");
    assert!(dot.contains(r#"label = "(\"ones-1\", 0)""#), "{dot}");
}

#[test]
fn plan_orders_reductions_branch_by_branch() {
    let (g, root) = dag_core::synthetic::tree(64, 8);
    let plan = Plan::new(&g, std::slice::from_ref(&root)).unwrap();
    // Each partial sum comes right after its 8 leaves.
    for id in 0..plan.len() {
        if plan.key(id).name() == "sum0" {
            let deps = plan.deps(id);
            assert_eq!(deps.len(), 8);
            assert_eq!(deps[7] as usize, id - 1, "sum at {id} waits on {deps:?}");
        }
    }
    assert_eq!(plan.key(plan.len() - 1), &root);
}

#[test]
fn repeated_dependencies_are_passed_twice() {
    let mut g = Graph::new();
    g.insert("x".into(), lit(21));
    g.insert("y".into(), Task::new(["x".into(), "x".into()], sum));
    let v = SyncScheduler::new().compute(&g, &["y".into()]).unwrap();
    assert_eq!(*v[0].get::<i64>().unwrap(), 42);
}

#[test]
fn wrong_value_types_are_errors_naming_both_types() {
    let mut g = Graph::new();
    g.insert("x".into(), Task::literal(Value::new(1.5f64)));
    g.insert("y".into(), Task::new(["x".into()], add_one));
    let e = SyncScheduler::new().compute(&g, &["y".into()]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TaskFailed);
    assert!(
        e.to_string().contains("f64") && e.to_string().contains("i64"),
        "{e}"
    );
}

#[test]
fn tokens_are_deterministic_and_pinned() {
    // Pinned: a change here changes every key in every persisted graph.
    let mut t = Tokenizer::new();
    t.write_str("ones").write_u64(10_000).write_f64(1.0);
    assert_eq!(t.finish_hex(), PINNED_TOKEN);
    assert_eq!(tokenize("x", &(1u8, 2u16)), tokenize("x", &(1u8, 2u16)));
    assert_ne!(tokenize("x", &(1u8, 2u16)), tokenize("x", &(2u8, 1u16)));
    assert_ne!(tokenize("x", &[1u32, 2]), tokenize("y", &[1u32, 2]));
}

const PINNED_TOKEN: &str = "9612f9b0f37da015";

#[test]
fn delayed_composes_shares_and_computes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let x = Delayed::value(10i64);
    let c = Arc::clone(&calls);
    let double = move |v: &i64| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(v * 2)
    };
    let y = x.map(OpName::pure("double", &()), double.clone());
    let y_again = x.map(OpName::pure("double", &()), double);
    // A function the caller vouches for, the same input: the same key, computed once.
    assert_eq!(y.key(), y_again.key());
    let z = y.zip_with(&y_again, "add", |a, b| Ok(a + b));
    let total = Delayed::reduce("sum", &[z.clone(), x.clone()], |vs| {
        Ok(vs.iter().copied().sum::<i64>())
    });
    let s = SyncScheduler::new();
    assert_eq!(total.compute(&s).unwrap(), 50);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(
        Delayed::compute_all(&[z, x.clone()], &s).unwrap(),
        vec![40, 10]
    );
    // Keys do not depend on the process: same input, same key.
    assert_eq!(Delayed::value(10i64).key(), x.key());
    assert!(x.key().name().starts_with("value-"));
}

/// Two different values under one caller-chosen key are refused: merged into one task, both
/// read one of them (`1 + 2` gave 2). Equal values by content (`value`) still share a task.
#[test]
fn delayed_values_named_alike_are_refused() {
    let s = SyncScheduler::new();
    let a = Delayed::named(Key::scalar("cfg"), 1i64);
    let b = Delayed::named(Key::scalar("cfg"), 2i64);
    let sum = a.zip_with(&b, "add", |x, y| Ok(x + y));
    let e = sum.compute(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DuplicateKey);
    assert!(e.to_string().contains("cfg"), "{e}");
    assert_eq!(sum.graph().unwrap_err().kind(), ErrorKind::DuplicateKey);
    // A named value next to a content-keyed one of the same key is refused too.
    let v = Delayed::value(5i64);
    let n = Delayed::named(v.key().clone(), 6i64);
    let e = Delayed::compute_all(&[v.clone(), n], &s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DuplicateKey);
    // One named value read twice, and two equal values by content: one task each.
    let twice = a.zip_with(&a, "add", |x, y| Ok(x + y));
    assert_eq!(twice.compute(&s).unwrap(), 2);
    let w = Delayed::value(5i64);
    let both = v.zip_with(&w, "add", |x, y| Ok(x + y));
    assert_eq!(both.compute(&s).unwrap(), 10);
    assert_eq!(both.graph().unwrap().len(), 2);
    // A clash below a pure operation, whose key derives from its input's key, is found too
    // (the two `double` tasks have one key; gave 8 without an error).
    fn double(d: &Delayed<i64>) -> Delayed<i64> {
        d.map(OpName::pure("double", &()), |x| Ok(x * 2))
    }
    let hidden = double(&a).zip_with(&double(&b), "add", |x, y| Ok(x + y));
    assert_eq!(
        hidden.compute(&s).unwrap_err().kind(),
        ErrorKind::DuplicateKey
    );
    let n = Delayed::named(v.key().clone(), 6i64);
    let hidden = double(&v).zip_with(&double(&n), "add", |x, y| Ok(x + y));
    assert_eq!(
        hidden.compute(&s).unwrap_err().kind(),
        ErrorKind::DuplicateKey
    );
    // A pure operation of one value, twice: one task.
    let same = double(&a).zip_with(&double(&a), "add", |x, y| Ok(x + y));
    assert_eq!(same.compute(&s).unwrap(), 4);
    assert_eq!(same.graph().unwrap().len(), 3);
}

/// A task reading one value twice holds it once: its footprint (what a memory limit must
/// allow) counts it once, as the predicted peak does.
#[test]
fn a_value_read_twice_counts_once_in_a_footprint() {
    let mut g = Graph::new();
    g.insert(
        "x".into(),
        Task::literal(dag_core::Value::with_nbytes(0u8, 100)),
    );
    g.insert(
        "y".into(),
        Task::new(["x".into(), "x".into()], |v| Ok(v[0].clone())).with_nbytes(100),
    );
    let p = Plan::new(&g, &["y".into()]).unwrap();
    assert_eq!(p.largest_footprint(), Some((1, 200)));
    assert_eq!(p.predicted_peak(1), 200);
}

/// A fused task holds its absorbed producers' values while it runs: a large block fused into
/// its small reduction still counts in the task's footprint, so a memory limit sees it. (The
/// predicted peak, like the schedulers' measured one, counts values held between tasks.)
#[test]
fn fused_intermediate_values_count_in_footprints() {
    let mut g = Graph::new();
    g.insert("a".into(), Task::literal(dag_core::Value::new(1u8)));
    g.insert(
        "big".into(),
        Task::new(["a".into()], |v| Ok(v[0].clone())).with_nbytes(1000),
    );
    g.insert(
        "small".into(),
        Task::new(["big".into()], |v| Ok(v[0].clone())).with_nbytes(8),
    );
    let unfused = Plan::new(&g, &["small".into()]).unwrap();
    assert_eq!(unfused.largest_footprint().unwrap().1, 1008);
    let fused = g.fuse(&["small".into()]).unwrap();
    assert_eq!(fused.len(), 1, "a and big are fused into small");
    let p = Plan::new(&fused, &["small".into()]).unwrap();
    // The task's value (8), and `big` (1000) while the literal (1) it reads is still held.
    assert_eq!(p.largest_footprint().unwrap().1, 1009);
    assert_eq!(p.predicted_peak(1), 8);
    // Tasks can declare scratch space of their own.
    let mut g = Graph::new();
    g.insert(
        "t".into(),
        Task::new(Vec::new(), |_| Ok(dag_core::Value::new(0u8)))
            .with_nbytes(1)
            .with_transient(500),
    );
    let p = Plan::new(&g, &["t".into()]).unwrap();
    assert_eq!(p.largest_footprint(), Some((0, 501)));
    assert_eq!(p.predicted_peak(1), 1);
}

#[test]
fn delayed_failures_name_the_task() {
    let x = Delayed::value(3i64);
    let bad = x.map("parse", |_| -> Result<i64, dag_core::TaskError> {
        Err("not a number".into())
    });
    let e = bad.compute(&SyncScheduler::new()).unwrap_err();
    assert_eq!(e.key(), Some(bad.key()));
    assert!(e.to_string().contains("not a number"));
}

#[test]
fn deep_delayed_chains_build_compute_and_drop() {
    let mut d = Delayed::value(0u64);
    for _ in 0..100_000 {
        d = d.map("inc", |v| Ok(v + 1));
    }
    assert_eq!(d.compute(&SyncScheduler::new()).unwrap(), 100_000);
    drop(d); // must not overflow the stack
}

#[test]
fn merged_graphs_compute_together() {
    let mut a = Graph::new();
    a.insert("a".into(), lit(1));
    let mut b = Graph::new();
    b.insert("b".into(), Task::new(["a".into()], add_one));
    a.merge(b);
    assert_eq!(a.len(), 2);
    let s: &dyn Scheduler = &SyncScheduler::new();
    assert_eq!(
        *s.compute(&a, &["b".into()]).unwrap()[0]
            .get::<i64>()
            .unwrap(),
        2
    );
}

#[test]
fn fuse_where_inlines_single_use_producers_into_their_consumer() {
    // x → a, y → b, (a, b, b) → c: with every merge allowed, c absorbs a and b.
    let mut g = Graph::new();
    g.insert("x".into(), lit(1));
    g.insert("y".into(), lit(10));
    g.insert("a".into(), Task::new(["x".into()], add_one));
    g.insert("b".into(), Task::new(["y".into()], add_one));
    g.insert(
        "c".into(),
        Task::new(["a".into(), "b".into(), "b".into()], sum),
    );
    let out: Vec<Key> = vec!["c".into()];
    let all = g.fuse_where(&out, |_, t, _, _| !t.is_literal()).unwrap();
    assert_eq!(all.len(), 3, "{all}");
    assert_eq!(all.get(&"c".into()).unwrap().deps().len(), 2);
    let s = SyncScheduler::new();
    assert_eq!(*s.compute(&all, &out).unwrap()[0].get::<i64>().unwrap(), 24);
    // The predicate decides: only `a` may merge.
    let some = g.fuse_where(&out, |k, _, _, _| k.name() == "a").unwrap();
    assert!(some.contains_key(&"b".into()) && !some.contains_key(&"a".into()));
    assert_eq!(
        *s.compute(&some, &out).unwrap()[0].get::<i64>().unwrap(),
        24
    );
    // Linear fusion folds x into a and y into b (chains) but not a or b into c, which has
    // three dependencies.
    let linear = g.fuse(&out).unwrap();
    assert_eq!(linear.len(), 3, "{linear}");
    assert_eq!(linear.get(&"c".into()).unwrap().deps().len(), 3);
}

#[test]
fn fusing_a_million_link_chain_does_not_overflow() {
    let (g, last) = dag_core::synthetic::chain(1_000_000);
    let fused = g.fuse(std::slice::from_ref(&last)).unwrap();
    assert_eq!(fused.len(), 1);
    let v = SyncScheduler::new().compute(&fused, &[last]).unwrap();
    assert_eq!(*v[0].get::<u64>().unwrap(), 999_999);
}

#[test]
fn delayed_closures_with_different_captures_never_share_a_key() {
    // The closure type is the same for every k; its captured k is not visible to the key.
    fn scaled(x: &Delayed<f64>, k: f64) -> Delayed<f64> {
        x.map("scale", move |v| Ok(v * k))
    }
    let x = Delayed::value(1.0f64);
    let (a, b) = (scaled(&x, 2.0), scaled(&x, 3.0));
    assert_ne!(a.key(), b.key());
    let sum = a.zip_with(&b, "add", |p, q| Ok(p + q));
    assert_eq!(sum.compute(&SyncScheduler::new()).unwrap(), 5.0);
    // Vouched-for tokens: equal tokens share, different tokens do not.
    let pure = |k: f64| x.map(OpName::pure("scale", &k), move |v| Ok(v * k));
    assert_eq!(pure(2.0).key(), pure(2.0).key());
    assert_ne!(pure(2.0).key(), pure(3.0).key());
    let reduced =
        |k: f64| Delayed::reduce("sum-times", std::slice::from_ref(&x), move |v| Ok(v[0] * k));
    assert_ne!(reduced(2.0).key(), reduced(3.0).key());
}

proptest::proptest! {
    /// A graph is a map from keys to tasks in insertion order: random inserts (repeated keys
    /// replace the task and keep the position), lookups of present and absent keys, from an
    /// empty graph that grows its index, agree with a `HashMap` and a list.
    #[test]
    fn graphs_index_tasks_like_a_map(
        ops in proptest::collection::vec((0u8..3, 0usize..40, 0usize..3), 0..300),
    ) {
        let names = ["x-1", "y-2", "x-1y"];
        let mut g = Graph::new();
        let mut reference = std::collections::HashMap::new();
        let mut order: Vec<Key> = Vec::new();
        for (step, &(n, i, j)) in ops.iter().enumerate() {
            let key = Key::new(names[n as usize], [i, j]);
            let replaced = g.insert(key.clone(), lit(step as i64).with_label(step.to_string()));
            let before = reference.insert(key.clone(), step);
            proptest::prop_assert_eq!(
                replaced.and_then(|t| t.label().map(str::to_string)),
                before.map(|s| s.to_string())
            );
            if before.is_none() {
                order.push(key);
            }
        }
        proptest::prop_assert_eq!(g.len(), reference.len());
        let listed: Vec<Key> = g.iter().map(|(k, _)| k.clone()).collect();
        proptest::prop_assert_eq!(&listed, &order);
        for name in names {
            for i in 0..41 {
                let key = Key::new(name, [i, 1]);
                let want = reference.get(&key).map(|s| s.to_string());
                proptest::prop_assert_eq!(g.contains_key(&key), want.is_some());
                let got = g.get(&key).and_then(|t| t.label().map(str::to_string));
                proptest::prop_assert_eq!(got, want);
            }
        }
        // The same tasks added in one `extend`, half of them into a clone that shares the
        // store with `g` (so the clone copies it first), give the same graphs.
        let tasks = || {
            ops.iter().enumerate().map(|(step, &(n, i, j))| {
                (Key::new(names[n as usize], [i, j]), lit(step as i64).with_label(step.to_string()))
            })
        };
        let mut extended = Graph::new();
        extended.extend(tasks());
        let mut halves = Graph::new();
        halves.extend(tasks().take(ops.len() / 2));
        let shared = halves.clone();
        halves.extend(tasks().skip(ops.len() / 2));
        let label = |g: &Graph| -> Vec<(String, Option<String>)> {
            g.iter().map(|(k, t)| (k.to_string(), t.label().map(str::to_string))).collect()
        };
        proptest::prop_assert_eq!(label(&extended), label(&g));
        proptest::prop_assert_eq!(label(&halves), label(&g));
        proptest::prop_assert_eq!(shared.len(), {
            let mut first = Graph::new();
            first.extend(tasks().take(ops.len() / 2));
            first.len()
        });
    }
}

#[test]
fn plan_outputs_follow_the_request_repeats_included() {
    // a → b → c, a → d: outputs asked out of order, one twice, one a dependency of another.
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert("b".into(), Task::new(["a".into()], add_one).with_nbytes(8));
    g.insert(
        "c".into(),
        Task::new(["b".into()], add_one).with_label("last"),
    );
    g.insert("d".into(), Task::new(["a".into()], add_one));
    g.insert("unused".into(), Task::new(["a".into()], add_one));
    let asked: Vec<Key> = vec!["c".into(), "a".into(), "c".into(), "d".into()];
    let plan = Plan::new(&g, &asked).unwrap();
    assert_eq!(plan.len(), 4, "`unused` is culled");
    let named: Vec<String> = plan
        .outputs()
        .iter()
        .map(|&o| plan.key(o as usize).to_string())
        .collect();
    assert_eq!(named, ["c", "a", "c", "d"]);
    let flagged: Vec<String> = (0..plan.len())
        .filter(|&i| plan.is_output(i))
        .map(|i| plan.key(i).to_string())
        .collect();
    assert_eq!(flagged.len(), 3, "{flagged:?}");
    assert!(!flagged.contains(&"b".to_string()));
    let b = (0..plan.len())
        .find(|&i| plan.key(i).to_string() == "b")
        .unwrap();
    let c = plan.outputs()[0] as usize;
    assert_eq!(plan.label(c), Some("last"));
    assert_eq!(plan.label(b), None);
    assert_eq!(plan.deps(c), [b as u32]);
    assert_eq!(plan.predicted_nbytes(b), 8);
}

#[test]
fn a_plan_keeps_the_graph_it_was_made_from() {
    // The plan shares the graph's keys and tasks; replacing a task afterwards must not reach it.
    let mut g = Graph::new();
    g.insert("a".into(), lit(1));
    g.insert("b".into(), Task::new(["a".into()], add_one));
    let plan = Plan::new(&g, &["b".into()]).unwrap();
    g.insert("b".into(), lit(100));
    g.insert("c".into(), lit(7));
    let mut values: Vec<Value> = Vec::new();
    for id in 0..plan.len() {
        let inputs: Vec<Value> = plan
            .deps(id)
            .iter()
            .map(|&d| values[d as usize].clone())
            .collect();
        values.push(plan.run(id, &inputs).unwrap());
    }
    assert_eq!(*values[1].get::<i64>().unwrap(), 2);
    assert_eq!(plan.key(1).to_string(), "b");
    assert_eq!(g.len(), 3);
    let replanned = Plan::new(&g, &["b".into()]).unwrap();
    assert_eq!(replanned.len(), 1, "b is a literal now");
}

/// Sizes near `usize::MAX` saturate the predicted peak instead of overflowing it (a debug
/// panic; a wrapped, under-reported peak in release builds).
#[test]
fn predicted_peaks_of_huge_values_saturate() {
    let half = usize::MAX / 2 + 1;
    let mut g = Graph::new();
    for k in ["a", "b"] {
        g.insert(
            k.into(),
            Task::new([], |_| Ok(dag_core::Value::new(0u8))).with_nbytes(half),
        );
    }
    g.insert(
        "c".into(),
        Task::new(["a".into(), "b".into()], |_| Ok(dag_core::Value::new(0u8))),
    );
    let p = Plan::new(&g, &["c".into()]).unwrap();
    assert_eq!(p.predicted_peak(1), usize::MAX);
    assert_eq!(p.predicted_peak(2), usize::MAX);
}
