//! A progress bar for runs, drawn with `indicatif` when stderr is a terminal.

use crate::{Callbacks, Error, Key, Plan, RunStats, TaskEvent};
use std::io::IsTerminal;

/// Draws a progress bar on stderr while a plan runs, and nothing when stderr is not a terminal
/// (logs and CI stay clean).
///
/// Pass it to `Scheduler::compute_with`; a scheduler calls it like this:
///
/// ```
/// use dag_core::{Callbacks, Graph, Plan, ProgressBar, Task, TaskEvent, Value};
/// let mut g = Graph::new();
/// g.insert("a".into(), Task::literal(Value::new(1u8)));
/// let plan = Plan::new(&g, &["a".into()]).unwrap();
/// let bar = ProgressBar::new();
/// bar.on_start(&plan);
/// bar.on_task_finish(&TaskEvent::started(0, plan.key(0), 0, 0).finished(1));
/// bar.on_finish(None);
/// ```
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
    /// Whether the bar is drawn (fixed at construction: asking indicatif per task costs).
    visible: bool,
}

impl Default for ProgressBar {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressBar {
    /// A bar on stderr, hidden unless stderr is a terminal.
    pub fn new() -> ProgressBar {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} tasks ({per_sec}, eta {eta}) {msg}",
            )
            .expect("valid template"),
        );
        let visible = !bar.is_hidden();
        ProgressBar { bar, visible }
    }

    /// Whether the bar is drawn.
    pub fn is_visible(&self) -> bool {
        self.visible
    }
}

impl Callbacks for ProgressBar {
    fn on_start(&self, plan: &Plan) {
        // A new run: position, message and clock start again (a bar finished by an earlier
        // run would otherwise stay finished, its rate and elapsed time counted from then).
        self.bar.reset();
        self.bar.set_message("");
        self.bar.set_length(plan.len() as u64);
    }
    fn on_task_finish(&self, _task: &TaskEvent<'_>) {
        if self.visible {
            self.bar.inc(1);
        }
    }
    fn on_task_fail(&self, key: &Key, _error: &Error) {
        self.bar.abandon_with_message(format!("failed at {key}"));
    }
    fn on_finish(&self, stats: Option<&RunStats>) {
        match stats {
            Some(_) => self.bar.finish(),
            // A failed or cancelled run stays where it stopped (finishing would fill the bar).
            None if !self.bar.is_finished() => self.bar.abandon(),
            None => {}
        }
    }
    fn per_task(&self) -> bool {
        self.visible
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graph, Task, Value};

    fn plan(n: usize) -> Plan {
        let mut g = Graph::new();
        for i in 0..n {
            g.insert(
                format!("t{i}").as_str().into(),
                Task::literal(Value::new(i as i64)),
            );
        }
        let keys: Vec<Key> = (0..n).map(|i| format!("t{i}").as_str().into()).collect();
        Plan::new(&g, &keys).unwrap()
    }

    /// A failed run's bar stays where the run stopped, and the next run starts from 0.
    #[test]
    fn a_failed_run_stops_the_bar_and_the_next_starts_afresh() {
        let bar = ProgressBar {
            bar: indicatif::ProgressBar::hidden(),
            visible: true,
        };
        let p = plan(4);
        bar.on_start(&p);
        bar.on_task_finish(&TaskEvent::started(0, p.key(0), 0, 0).finished(1));
        bar.on_task_fail(p.key(1), &Error::Scheduler("boom".into()));
        bar.on_finish(None);
        assert_eq!((bar.bar.position(), bar.bar.length()), (1, Some(4)));
        let q = plan(3);
        bar.on_start(&q);
        assert_eq!(bar.bar.position(), 0);
        assert!(!bar.bar.is_finished());
        for id in 0..3 {
            bar.on_task_finish(&TaskEvent::started(id, q.key(id), 0, 0).finished(1));
        }
        bar.on_finish(None);
        assert_eq!(bar.bar.position(), 3);
    }
}
