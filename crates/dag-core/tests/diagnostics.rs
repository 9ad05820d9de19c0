//! The profilers, the report and the Chrome trace, on real runs of both schedulers. (The
//! dashboard and the browser tests are in `crates/blockarray/tests/`, where the `dashboard`
//! feature is always on.)

use dag_core::diagnostics::{Profiler, Report, ResourceProfiler, render_dot};
use dag_core::{Graph, Key, Plan, Scheduler, Task, Value, synthetic};
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::collections::HashSet;
use std::time::Duration;

fn schedulers() -> Vec<Box<dyn Scheduler>> {
    vec![
        Box::new(SyncScheduler::new()),
        Box::new(ThreadedScheduler::builder().threads(1).build().unwrap()),
        Box::new(ThreadedScheduler::builder().threads(3).build().unwrap()),
    ]
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dag-core-diag-{}-{name}", std::process::id()))
}

#[test]
fn the_profiler_records_every_task_once_with_its_operation_worker_and_bytes() {
    let (g, root) = synthetic::tree(3_000, 8);
    let plan = Plan::new(&g, std::slice::from_ref(&root)).unwrap();
    for s in schedulers() {
        let profiler = Profiler::new();
        let run = s.execute(&plan, &profiler).unwrap();
        let p = profiler.last().expect("a profile");
        assert_eq!(p.tasks.len(), plan.len(), "{}", s.name());
        assert_eq!(p.planned, plan.len());
        assert_eq!(p.stats.as_ref(), Some(&run.stats));
        assert_eq!(p.workers, run.stats.threads, "{}", s.name());
        let keys: HashSet<&Key> = p.tasks.iter().map(|t| &t.key).collect();
        assert_eq!(keys.len(), plan.len(), "each task once");
        let mut prev = Duration::ZERO;
        for t in &p.tasks {
            assert!(t.start >= prev, "sorted by start");
            prev = t.start;
            assert!(t.start <= t.end && t.end <= p.wall + Duration::from_millis(50));
            assert!(t.worker < p.workers);
            assert_eq!(p.operation(t), t.key.prefix());
            assert_eq!(t.bytes_out, 8);
            let id = (0..plan.len()).find(|&i| plan.key(i) == &t.key).unwrap();
            assert_eq!(t.bytes_in, 8 * plan.deps(id).len());
        }
        // Per operation: the leaves, and one operation per level of the tree.
        let ops = p.by_operation();
        assert_eq!(ops.iter().map(|o| o.tasks).sum::<usize>(), plan.len());
        let leaf = ops.iter().find(|o| o.name == "leaf").unwrap();
        assert_eq!(
            (leaf.tasks, leaf.bytes_in, leaf.bytes_out),
            (3_000, 0, 24_000)
        );
        assert_eq!(ops.len(), 1 + 4, "{ops:?}"); // 3000 → 375 → 47 → 6 → 1
        assert!(p.busy() <= p.wall * p.workers as u32 + Duration::from_millis(50));
        assert!((0.0..=1.0).contains(&p.occupancy()));
    }
}

#[test]
fn the_profiler_keeps_runs_apart_and_records_failures() {
    let profiler = Profiler::new();
    let (g, root) = synthetic::tree(100, 4);
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    s.compute_with(&g, std::slice::from_ref(&root), &profiler)
        .unwrap();
    let mut bad = Graph::new();
    bad.insert("ok".into(), Task::literal(Value::new(1u64)));
    bad.insert(
        "boom".into(),
        Task::new(["ok".into()], |_| Err("no good".into())),
    );
    s.compute_with(&bad, &["boom".into()], &profiler)
        .unwrap_err();
    assert_eq!(profiler.runs(), 2);
    let profiles = profiler.profiles();
    assert_eq!(profiles[0].tasks.len(), g.len());
    assert!(profiles[0].failure.is_none());
    let failed = &profiles[1];
    assert_eq!(failed.planned, 2);
    assert_eq!(failed.tasks.len(), 1, "only the task that finished");
    assert!(failed.stats.is_none());
    let why = failed.failure.as_deref().unwrap();
    assert!(why.contains("boom") && why.contains("no good"), "{why}");
    profiler.clear();
    assert_eq!(profiler.runs(), 0);
}

/// Events of a task outside the current plan (a second run through one profiler at once,
/// which a profiler does not support) are dropped, not read past the plan's keys.
#[test]
fn events_outside_the_plan_do_not_break_a_profile() {
    use dag_core::{Callbacks, TaskEvent};
    let (g, root) = synthetic::tree(16, 4);
    let plan = Plan::new(&g, std::slice::from_ref(&root)).unwrap();
    let profiler = Profiler::new();
    profiler.on_start(&plan);
    let other = Key::scalar("another-run");
    profiler.on_task_finish(&TaskEvent::started(plan.len() + 5, &other, 0, 0).finished(8));
    profiler.on_task_finish(&TaskEvent::started(0, plan.key(0), 0, 0).finished(8));
    profiler.on_finish(None);
    let p = profiler.last().unwrap();
    assert_eq!(p.tasks.len(), 1);
}

#[test]
fn labels_name_operations() {
    let mut g = Graph::new();
    g.insert(Key::new("x-1f", [0]), Task::literal(Value::new(1u64)));
    g.insert(
        "y".into(),
        Task::new([Key::new("x-1f", [0])], |v| Ok(v[0].clone())).with_label("x+y"),
    );
    let profiler = Profiler::new();
    SyncScheduler::new()
        .compute_with(&g, &["y".into()], &profiler)
        .unwrap();
    let p = profiler.last().unwrap();
    assert_eq!(p.operations, ["x", "x+y"]);
}

#[test]
fn the_resource_profiler_samples_held_bytes_and_stops_with_the_run() {
    // Leaves declare 1 MB each and take a millisecond: the sampler sees bytes held.
    let (g, root) = synthetic::tree_with(200, 8, |i| {
        std::thread::sleep(Duration::from_millis(1));
        Value::with_nbytes(i as u64, 1_000_000)
    });
    for s in schedulers() {
        let resources = ResourceProfiler::new().interval(Duration::from_millis(5));
        s.compute_with(&g, std::slice::from_ref(&root), &resources)
            .unwrap();
        let r = resources.last().unwrap();
        assert!(r.samples.len() >= 3, "{}: {}", s.name(), r.samples.len());
        assert!(
            r.peak_held() >= 1_000_000,
            "{}: {}",
            s.name(),
            r.peak_held()
        );
        assert!(r.samples.windows(2).all(|w| w[0].time <= w[1].time));
        if cfg!(target_os = "linux") {
            assert!(r.peak_rss() > 0);
            assert!(r.mean_cpu() >= 0.0);
        }
        // The sampling thread stopped with the run: no samples arrive later.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(resources.last().unwrap().samples.len(), r.samples.len());
        assert_eq!(resources.profiles().len(), 1);
    }
}

#[test]
fn a_report_and_a_trace_are_written_for_a_real_run() {
    let (g, root) = synthetic::tree(2_000, 8);
    let plan = Plan::new(&g, &[root])
        .unwrap()
        .with_memory_limit(Some(1 << 30));
    let (profiler, resources) = (Profiler::new(), ResourceProfiler::new());
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    s.execute(&plan, &(&profiler, &resources)).unwrap();
    let (p, r) = (profiler.last().unwrap(), resources.last().unwrap());
    let html_path = temp("report.html");
    Report::new("tree </script> sum")
        .profile(&p)
        .resources(&r)
        .predicted_peak(plan.predicted_peak(2))
        .info("leaves", "2000")
        .write_html(&html_path)
        .unwrap();
    let html = std::fs::read_to_string(&html_path).unwrap();
    std::fs::remove_file(&html_path).unwrap();
    // The title cannot close the data's script element.
    assert_eq!(
        html.matches("</script>").count(),
        3,
        "three scripts, closed once each"
    );
    assert!(html.contains("tree &lt;/script&gt; sum"));
    assert!(html.contains(r#""limit":1073741824"#));
    assert!(html.contains(r#"["leaves","2000"]"#) || html.contains(r#""leaves","2000""#));

    let trace_path = temp("trace.json");
    p.write_chrome_trace(&trace_path, Some(&r)).unwrap();
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    std::fs::remove_file(&trace_path).unwrap();
    assert_eq!(trace.matches(r#""ph":"X""#).count(), plan.len());
    assert_eq!(trace.matches(r#""ph":"C""#).count(), 2 * r.samples.len());
    assert!(trace.trim_end().ends_with('}'));

    // Unwritable places are errors naming the file.
    let bad = std::env::temp_dir()
        .join("no-such-dir-dag-core")
        .join("r.html");
    let e = Report::new("x").profile(&p).write_html(&bad).unwrap_err();
    assert!(e.to_string().contains("no-such-dir-dag-core"), "{e}");
}

#[test]
fn graphs_render_as_dot_text_and_through_graphviz() {
    let (g, _) = synthetic::tree(20, 4);
    let dot = g.to_dot();
    let p = temp("g.dot");
    render_dot(&dot, &p).unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), dot);
    std::fs::remove_file(&p).unwrap();
    let e = render_dot(&dot, temp("g.bmp")).unwrap_err();
    assert!(
        e.to_string().contains("g.bmp") && e.to_string().contains("svg"),
        "{e}"
    );
    // CI installs Graphviz (`cargo xtask deps`); without it the error says how to get it.
    let svg = temp("g.svg");
    match render_dot(&dot, &svg) {
        Ok(()) => {
            let text = std::fs::read_to_string(&svg).unwrap();
            std::fs::remove_file(&svg).unwrap();
            assert!(text.contains("<svg"), "{}", &text[..100.min(text.len())]);
        }
        Err(e) => panic!("{e} (install Graphviz with `cargo xtask deps`)"),
    }
    let e = render_dot("digraph { this is not dot", temp("bad.svg")).unwrap_err();
    assert!(e.to_string().contains("bad.svg"), "{e}");
}
