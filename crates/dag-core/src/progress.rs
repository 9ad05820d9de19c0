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
                "[{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} tasks ({per_sec}, eta {eta})",
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
        self.bar.set_length(plan.len() as u64);
        self.bar.set_position(0);
    }
    fn on_task_finish(&self, _task: &TaskEvent<'_>) {
        if self.visible {
            self.bar.inc(1);
        }
    }
    fn on_task_fail(&self, key: &Key, _error: &Error) {
        self.bar.abandon_with_message(format!("failed at {key}"));
    }
    fn on_finish(&self, _stats: Option<&RunStats>) {
        self.bar.finish();
    }
    fn per_task(&self) -> bool {
        self.visible
    }
}
