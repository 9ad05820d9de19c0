//! Panics anywhere in a run — a task, a `Callbacks` hook, a value's `Drop`, a sink — end the
//! run with an `Err` naming where it happened; every thread is joined (no hang), the process
//! survives, and the scheduler runs the next graph normally.

use crate::common::{schedulers, within};
use blockarray::{BlockArray, ChunkSink, Computation, Error as ArrayError};
use dag_core::{Callbacks, Error, Graph, Key, Plan, Task, TaskEvent, Value, synthetic};
use ndarray::ArrayD;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Which hook panics.
#[derive(Clone, Copy, Debug)]
enum Hook {
    Start,
    TaskStart,
    TaskFinish,
    Finish,
}

/// Callbacks that panic in one hook, after `after` tasks have started.
struct Panicky {
    hook: Hook,
    after: usize,
    seen: AtomicUsize,
    /// How many times `on_finish` was called.
    finished: AtomicUsize,
}

impl Panicky {
    fn new(hook: Hook, after: usize) -> Panicky {
        Panicky {
            hook,
            after,
            seen: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
        }
    }
    fn maybe(&self, hook: Hook) {
        if std::mem::discriminant(&hook) == std::mem::discriminant(&self.hook)
            && self.seen.load(Ordering::Relaxed) >= self.after
        {
            panic!("hook {hook:?} exploded");
        }
    }
}

impl Callbacks for Panicky {
    fn on_start(&self, _: &Plan) {
        self.maybe(Hook::Start);
    }
    fn on_task_start(&self, _: &TaskEvent<'_>) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        self.maybe(Hook::TaskStart);
    }
    fn on_task_finish(&self, _: &TaskEvent<'_>) {
        self.maybe(Hook::TaskFinish);
    }
    fn on_finish(&self, _: Option<&dag_core::RunStats>) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        self.maybe(Hook::Finish);
    }
}

/// A tree sum of 4096 leaves: enough tasks that every worker is busy when the hook panics.
fn tree() -> (Graph, Key) {
    synthetic::tree(4096, 8)
}

#[test]
fn a_panicking_callback_ends_the_run_with_an_error_under_every_scheduler() {
    for (name, s) in schedulers() {
        for hook in [Hook::Start, Hook::TaskStart, Hook::TaskFinish, Hook::Finish] {
            // The start hook runs before any task: only "after 0" can fire there.
            let afters: &[usize] = if matches!(hook, Hook::Start) {
                &[0]
            } else {
                &[0, 100]
            };
            for &after in afters {
                let s = s.clone();
                let label = format!("{name}, {hook:?} after {after}");
                let (err, finished) = within(60, move || {
                    let (g, root) = tree();
                    let cb = Panicky::new(hook, after);
                    let e = s.compute_with(&g, &[root], &cb).map(|_| ()).unwrap_err();
                    (e, cb.finished.load(Ordering::Relaxed))
                });
                let msg = err.to_string();
                assert!(msg.contains("exploded"), "{label}: {msg}");
                assert!(msg.contains("panic"), "{label}: {msg}");
                // The run's end is announced once, whichever hook panicked (a dashboard or a
                // resource sampler stops there).
                assert_eq!(finished, 1, "{label}: on_finish calls");
            }
        }
        // The scheduler is still usable.
        let (g, root) = tree();
        let v = s.compute(&g, &[root]).unwrap();
        assert_eq!(
            *v[0].get::<u64>().unwrap(),
            (0..4096u64).sum::<u64>(),
            "{name}"
        );
    }
}

/// Callbacks that panic when told a task failed.
struct PanicOnFail;

impl Callbacks for PanicOnFail {
    fn on_task_fail(&self, _: &Key, _: &Error) {
        panic!("on_task_fail exploded");
    }
}

/// A task's failure stays the run's error when a callback panics on hearing of it (the panic's
/// message had replaced it).
#[test]
fn a_panic_in_on_task_fail_keeps_the_tasks_error() {
    for (name, s) in schedulers() {
        let s = s.clone();
        let err = within(60, move || {
            let mut g = Graph::new();
            g.insert("ok".into(), Task::literal(Value::new(1u64)));
            g.insert(
                "boom".into(),
                Task::new(["ok".into()], |_| Err("the task's own error".into())),
            );
            s.compute_with(&g, &["boom".into()], &PanicOnFail)
                .map(|_| ())
                .unwrap_err()
        });
        let msg = err.to_string();
        assert!(msg.contains("the task's own error"), "{name}: {msg}");
        assert_eq!(err.key(), Some(&Key::from("boom")), "{name}");
    }
}

/// A value whose `Drop` panics (when the scheduler frees it, mid-run).
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("Bomb's drop exploded");
        }
    }
}

#[test]
fn a_panicking_drop_of_an_intermediate_ends_the_run_with_an_error() {
    for (name, s) in schedulers() {
        let s = s.clone();
        let err = within(60, move || {
            let mut g = Graph::new();
            g.insert(
                "bomb".into(),
                Task::new([], |_| Ok(Value::with_nbytes(Bomb, 1))),
            );
            g.insert(
                "reader".into(),
                Task::new(["bomb".into()], |_| Ok(Value::new(1u64))),
            );
            g.insert(
                "after".into(),
                Task::new(["reader".into()], |v| {
                    Ok(Value::new(v[0].get::<u64>()? + 1))
                }),
            );
            s.compute(&g, &["after".into()]).unwrap_err()
        });
        let msg = err.to_string();
        assert!(msg.contains("exploded"), "{name}: {msg}");
    }
}

#[test]
fn a_panicking_task_names_its_key_and_leaves_no_thread_behind() {
    for (name, s) in schedulers() {
        let s = s.clone();
        let err = within(60, move || {
            let (mut g, root) = tree();
            let victim = Key::new("leaf", [1234]);
            g.insert(
                victim.clone(),
                Task::new([], |_| panic!("leaf 1234 exploded")),
            );
            s.compute(&g, &[root]).unwrap_err()
        });
        assert!(
            matches!(err, Error::TaskFailed { panicked: true, .. }),
            "{name}: {err}"
        );
        assert_eq!(err.key(), Some(&Key::new("leaf", [1234])), "{name}");
    }
}

/// A sink that panics in one of its hooks.
struct PanickySink {
    shape: Vec<usize>,
    panic_in: &'static str,
    aborted: AtomicUsize,
}

impl ChunkSink<f64> for PanickySink {
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn write_block(&self, offset: &[usize], _: &ArrayD<f64>) -> blockarray::Result<()> {
        if self.panic_in == "write" && offset[0] == 8 {
            panic!("sink write exploded");
        }
        Ok(())
    }
    fn commit(&self) -> blockarray::Result<()> {
        if self.panic_in == "commit" {
            panic!("sink commit exploded");
        }
        Ok(())
    }
    fn abort(&self) {
        self.aborted.fetch_add(1, Ordering::Relaxed);
        if self.panic_in == "abort" {
            panic!("sink abort exploded");
        }
    }
}

#[test]
fn a_panicking_sink_is_an_error_and_the_other_sinks_are_aborted() {
    for panic_in in ["write", "commit", "abort"] {
        for (name, s) in schedulers() {
            let x = BlockArray::<f64>::ones(&[16], [4]).unwrap();
            let bad = Arc::new(PanickySink {
                shape: vec![16],
                panic_in,
                aborted: AtomicUsize::new(0),
            });
            let good = Arc::new(PanickySink {
                shape: vec![16],
                panic_in: "",
                aborted: AtomicUsize::new(0),
            });
            let mut c = Computation::new();
            c.store(&x, bad.clone()).unwrap();
            c.store(&x, good.clone()).unwrap();
            // An abort that panics only runs when something else failed first: fail a task.
            let failing = x.map_blocks("fail", None, |b, info| {
                if info.index[0] == 2 {
                    Err("block 2 failed".into())
                } else {
                    Ok(b.clone())
                }
            });
            if panic_in == "abort" {
                c.add(&failing.unwrap());
            }
            let err: ArrayError = c.run(&*s).unwrap_err();
            let msg = err.to_string();
            let expect = if panic_in == "abort" {
                "block 2 failed"
            } else {
                "exploded"
            };
            assert!(msg.contains(expect), "{name}, panic in {panic_in}: {msg}");
            assert_eq!(
                good.aborted.load(Ordering::Relaxed),
                1,
                "{name}, panic in {panic_in}: the good sink is aborted once"
            );
        }
    }
}
