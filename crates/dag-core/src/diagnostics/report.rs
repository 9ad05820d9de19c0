//! The HTML report and the Chrome trace of a profiled run.

use super::json::Json;
use super::{Profile, ResourceProfile};
use crate::fmt_bytes;
use std::io;
use std::path::Path;
use std::time::Duration;

/// The script shared by the report and the dashboard (formatting, charts, the task stream).
pub(crate) const SCRIPT: &str = include_str!("assets/diagnostics.js");
/// Their style sheet.
pub(crate) const STYLE: &str = include_str!("assets/diagnostics.css");
const TEMPLATE: &str = include_str!("assets/report.html");

/// Columns the task stream is drawn in: tasks shorter than a column merge with their
/// neighbours of the same operation on the same worker, so a report of a million tasks stays
/// a few megabytes and draws at once.
const COLUMNS: f64 = 2400.0;

/// A self-contained HTML page about one run — everything inline (script, style, data), so it
/// opens from disk with no network — showing:
///
/// - a summary: tasks, wall time, workers and their occupancy, the peak of bytes held
///   measured against the plan's prediction and memory limit, peak resident memory, mean CPU;
/// - the task stream: one row per worker, each task a bar coloured by operation (hover for
///   its key and duration);
/// - memory over time (resident set and bytes held, with the predicted peak and the limit
///   drawn across) and CPU over time, from a [`ResourceProfile`];
/// - time per operation: tasks, total, mean and longest time, bytes in and out.
///
/// ```
/// use dag_core::diagnostics::{Profiler, Report, ResourceProfiler};
/// use dag_core::{Plan, Scheduler};
///
/// let (graph, root) = dag_core::synthetic::tree(4096, 8);
/// let plan = Plan::new(&graph, &[root])?;
/// let (profiler, resources) = (Profiler::new(), ResourceProfiler::new());
/// let scheduler = sched_threaded::ThreadedScheduler::builder().threads(2).build()?;
/// scheduler.execute(&plan, &(&profiler, &resources))?;
///
/// let html = Report::new("a tree sum")
///     .profile(&profiler.last().unwrap())
///     .resources(&resources.last().unwrap())
///     .predicted_peak(plan.predicted_peak(2))
///     .info("graph", "4096 leaves, fan-in 8")
///     .to_html();
/// assert!(html.starts_with("<!DOCTYPE html>") && html.contains("a tree sum"));
/// let path = std::env::temp_dir().join(format!("report-doc-{}.html", std::process::id()));
/// Report::new("a tree sum").profile(&profiler.last().unwrap()).write_html(&path)?;
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Report<'a> {
    title: String,
    info: Vec<(String, String)>,
    profile: Option<&'a Profile>,
    resources: Option<&'a ResourceProfile>,
    predicted_peak: Option<usize>,
    memory_limit: Option<Option<usize>>,
}

impl<'a> Report<'a> {
    /// An empty report titled `title`.
    pub fn new(title: impl Into<String>) -> Report<'a> {
        Report {
            title: title.into(),
            info: Vec::new(),
            profile: None,
            resources: None,
            predicted_peak: None,
            memory_limit: None,
        }
    }

    /// Show the tasks of `profile` (a [`Profiler`](super::Profiler) run).
    #[must_use]
    pub fn profile(mut self, profile: &'a Profile) -> Report<'a> {
        self.profile = Some(profile);
        self
    }

    /// Show memory and CPU over time from `resources` (a
    /// [`ResourceProfiler`](super::ResourceProfiler) run; the same run as the profile).
    #[must_use]
    pub fn resources(mut self, resources: &'a ResourceProfile) -> Report<'a> {
        self.resources = Some(resources);
        self
    }

    /// The peak of bytes held that the plan predicted
    /// ([`Plan::predicted_peak`](crate::Plan::predicted_peak)), shown against the measured one.
    #[must_use]
    pub fn predicted_peak(mut self, bytes: usize) -> Report<'a> {
        self.predicted_peak = Some(bytes);
        self
    }

    /// The memory limit to show (default: the plan's, as the profiles recorded it).
    #[must_use]
    pub fn memory_limit(mut self, limit: Option<usize>) -> Report<'a> {
        self.memory_limit = Some(limit);
        self
    }

    /// A line of the summary: what was computed, on which machine, with which chunks…
    #[must_use]
    pub fn info(mut self, label: impl Into<String>, value: impl Into<String>) -> Report<'a> {
        self.info.push((label.into(), value.into()));
        self
    }

    /// The page.
    pub fn to_html(&self) -> String {
        let data = self.data();
        let mut title = String::new();
        for c in self.title.chars() {
            match c {
                '<' => title.push_str("&lt;"),
                '>' => title.push_str("&gt;"),
                '&' => title.push_str("&amp;"),
                '"' => title.push_str("&quot;"),
                c => title.push(c),
            }
        }
        fill(
            TEMPLATE,
            &[
                ("/*STYLE*/", STYLE),
                ("/*SCRIPT*/", SCRIPT),
                ("__TITLE__", &title),
                ("/*DATA*/", &data),
            ],
        )
    }

    /// Write the page to `path` (an error names the file).
    pub fn write_html(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_html()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not write the report {}: {e}", path.display()),
            )
        })
    }

    fn limit(&self) -> Option<usize> {
        self.memory_limit.unwrap_or_else(|| {
            self.profile
                .and_then(|p| p.memory_limit)
                .or_else(|| self.resources.and_then(|r| r.memory_limit))
        })
    }

    /// The report's data as JSON (the page draws it).
    fn data(&self) -> String {
        let mut j = Json::new();
        j.raw("{").key("title").str(&self.title);
        // Sample times relative to the profile's start.
        let offset = match (self.profile, self.resources) {
            (Some(p), Some(r)) => signed_secs(r.started, p.started),
            _ => 0.0,
        };
        let mut span = 0.0f64;
        if let Some(p) = self.profile {
            span = span.max(p.wall.as_secs_f64());
            if let Some(t) = p.tasks.iter().map(|t| t.end).max() {
                span = span.max(t.as_secs_f64());
            }
        }
        // Without a profile the samples give the time axis; with one, the run does (the
        // sampler's last sample comes a moment after the run and is drawn at its end).
        if self.profile.is_none()
            && let Some(r) = self.resources
            && let Some(s) = r.samples.last()
        {
            span = span.max(s.time.as_secs_f64() + offset);
        }
        j.raw(",").key("span").num(span, 9);
        self.summary(&mut j);
        match self.profile {
            Some(p) => {
                j.raw(",").key("workers").int(p.workers as u128);
                j.raw(",").key("ops").raw("[");
                let by_op = p.by_operation();
                for (i, name) in p.operations.iter().enumerate() {
                    let o = by_op
                        .iter()
                        .find(|o| &o.name == name)
                        .expect("every operation is summed");
                    if i > 0 {
                        j.raw(",");
                    }
                    j.raw("{").key("name").str(name);
                    j.raw(",").key("tasks").int(o.tasks as u128);
                    j.raw(",").key("total").num(o.total.as_secs_f64(), 9);
                    j.raw(",").key("mean").num(o.mean().as_secs_f64(), 9);
                    j.raw(",").key("max").num(o.max.as_secs_f64(), 9);
                    j.raw(",").key("bytes_in").int(o.bytes_in as u128);
                    j.raw(",").key("bytes_out").int(o.bytes_out as u128);
                    j.raw("}");
                }
                j.raw("]");
                j.raw(",").key("segments").raw("[");
                for (i, s) in segments(p, span / COLUMNS).iter().enumerate() {
                    if i > 0 {
                        j.raw(",");
                    }
                    j.raw("[")
                        .int(s.worker as u128)
                        .raw(",")
                        .int(s.op as u128)
                        .raw(",");
                    j.num(s.start, 9).raw(",").num(s.end, 9).raw(",");
                    j.int(s.count as u128).raw(",").num(s.busy, 9).raw(",");
                    j.opt_str(s.key.as_deref()).raw("]");
                }
                j.raw("]");
            }
            None => {
                j.raw(",").key("workers").int(0u8);
                j.raw(",").key("ops").raw("[]");
                j.raw(",").key("segments").raw("[]");
            }
        }
        j.raw(",").key("samples");
        match self.resources {
            Some(r) => {
                let s = &r.samples;
                j.raw("{").key("t");
                j.nums(
                    s.iter()
                        .map(|s| (s.time.as_secs_f64() + offset).clamp(0.0, span)),
                    6,
                );
                j.raw(",").key("cpu").nums(s.iter().map(|s| s.cpu), 3);
                j.raw(",")
                    .key("rss")
                    .nums(s.iter().map(|s| s.rss as f64), 0);
                j.raw(",")
                    .key("held")
                    .nums(s.iter().map(|s| s.held as f64), 0);
                j.raw(",").key("cores").int(r.cores as u128);
                j.raw("}");
            }
            None => {
                j.raw("null");
            }
        }
        j.raw(",").key("memory").raw("{");
        j.key("predicted").opt_int(self.predicted_peak);
        j.raw(",").key("measured").opt_int(
            self.profile
                .and_then(|p| p.stats.as_ref())
                .map(|s| s.peak_bytes),
        );
        j.raw(",")
            .key("sampled")
            .opt_int(self.resources.map(|r| r.peak_held()));
        j.raw(",")
            .key("rss")
            .opt_int(self.resources.map(|r| r.peak_rss()).filter(|&r| r > 0));
        j.raw(",").key("limit").opt_int(self.limit());
        j.raw("}}");
        j.0
    }

    /// The summary lines: `[id, label, value]`.
    fn summary(&self, j: &mut Json) {
        let mut rows: Vec<(&str, String, String)> = Vec::new();
        for (label, value) in &self.info {
            rows.push(("info", label.clone(), value.clone()));
        }
        if let Some(p) = self.profile {
            rows.push((
                "tasks",
                "Tasks".into(),
                if p.tasks.len() == p.planned {
                    group_digits(p.planned)
                } else {
                    format!(
                        "{} of {}",
                        group_digits(p.tasks.len()),
                        group_digits(p.planned)
                    )
                },
            ));
            rows.push(("wall", "Wall time".into(), fmt_duration(p.wall)));
            rows.push((
                "workers",
                "Workers".into(),
                format!(
                    "{} ({:.0} % busy running tasks)",
                    p.workers,
                    p.occupancy() * 100.0
                ),
            ));
            if let Some(f) = &p.failure {
                rows.push(("failure", "Failed".into(), f.clone()));
            }
        }
        let measured = self
            .profile
            .and_then(|p| p.stats.as_ref())
            .map(|s| s.peak_bytes);
        if let Some(m) = measured {
            rows.push(("peak", "Peak held (measured)".into(), fmt_bytes(m)));
        }
        if let Some(pred) = self.predicted_peak {
            let ratio = match measured {
                Some(m) if pred > 0 => {
                    format!(" ({:.0} % of it measured)", m as f64 * 100.0 / pred as f64)
                }
                _ => String::new(),
            };
            rows.push((
                "predicted",
                "Peak held (predicted)".into(),
                format!("{}{ratio}", fmt_bytes(pred)),
            ));
        }
        if let Some(l) = self.limit() {
            rows.push(("limit", "Memory limit".into(), fmt_bytes(l)));
        }
        if let Some(r) = self.resources {
            if r.peak_rss() > 0 {
                rows.push((
                    "rss",
                    "Peak resident memory".into(),
                    fmt_bytes(r.peak_rss()),
                ));
            }
            rows.push((
                "cpu",
                "Mean CPU".into(),
                format!("{:.2} of {} cores", r.mean_cpu(), r.cores),
            ));
        }
        j.raw(",").key("summary").raw("[");
        for (i, (id, label, value)) in rows.iter().enumerate() {
            if i > 0 {
                j.raw(",");
            }
            j.raw("[")
                .str(id)
                .raw(",")
                .str(label)
                .raw(",")
                .str(value)
                .raw("]");
        }
        j.raw("]");
    }
}

/// `template` with each marker replaced by its text. Only the template is searched, never
/// the inserted texts, so a title or a key that happens to contain a marker stays as it is.
pub(crate) fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + parts.iter().map(|p| p.1.len()).sum::<usize>());
    let mut rest = template;
    loop {
        let next = parts
            .iter()
            .filter_map(|&(m, text)| rest.find(m).map(|i| (i, m, text)))
            .min_by_key(|&(i, _, _)| i);
        match next {
            Some((i, m, text)) => {
                out.push_str(&rest[..i]);
                out.push_str(text);
                rest = &rest[i + m.len()..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// `a - b` in seconds, either way round.
fn signed_secs(a: std::time::Instant, b: std::time::Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64()
    } else {
        -b.duration_since(a).as_secs_f64()
    }
}

/// `12345678` → `"12,345,678"`.
fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: `850 µs`, `12.3 ms`, `4.56 s`, `2.5 min`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// Consecutive tasks of one worker drawn as one bar.
#[derive(Debug, PartialEq)]
struct Segment {
    worker: usize,
    op: usize,
    start: f64,
    end: f64,
    count: usize,
    /// Time spent running tasks (less than `end - start` when there were gaps).
    busy: f64,
    /// The key, for a bar of one task.
    key: Option<String>,
}

/// The task stream in bars: per worker, a task shorter than `resolution` seconds joins the
/// bar before it when that bar is of the same operation, ends within `resolution` of the
/// task's start and is still under four columns wide. Longer tasks keep their own bars, so
/// every task longer than a column is seen as itself.
fn segments(p: &Profile, resolution: f64) -> Vec<Segment> {
    let mut by_worker: Vec<Vec<&super::TaskRecord>> = vec![Vec::new(); p.workers.max(1)];
    for t in &p.tasks {
        if t.worker >= by_worker.len() {
            by_worker.resize(t.worker + 1, Vec::new());
        }
        by_worker[t.worker].push(t);
    }
    let mut out: Vec<Segment> = Vec::new();
    for (w, tasks) in by_worker.iter().enumerate() {
        let mut cur: Option<Segment> = None;
        for t in tasks {
            let (s, e) = (t.start.as_secs_f64(), t.end.as_secs_f64());
            if let Some(c) = cur.as_mut()
                && c.op == t.op
                && e - s < resolution
                && s - c.end < resolution
                && e - c.start < 4.0 * resolution
            {
                c.end = c.end.max(e);
                c.count += 1;
                c.busy += e - s;
                c.key = None;
                continue;
            }
            out.extend(cur.take());
            cur = Some(Segment {
                worker: w,
                op: t.op,
                start: s,
                end: e,
                count: 1,
                busy: e - s,
                key: Some(t.key.to_string()),
            });
        }
        out.extend(cur);
    }
    out
}

impl Profile {
    /// The run in Chrome's trace-event format (JSON), which Perfetto (ui.perfetto.dev) and
    /// `chrome://tracing` open: one track per worker with a slice per task (named by key,
    /// categorised by operation, bytes in and out as arguments), and with `resources` the
    /// process's memory, the bytes held and the CPU as counter tracks.
    ///
    /// ```
    /// use dag_core::diagnostics::Profiler;
    /// use dag_core::Scheduler;
    /// let (graph, root) = dag_core::synthetic::tree(64, 8);
    /// let profiler = Profiler::new();
    /// sched_sync::SyncScheduler::new().compute_with(&graph, &[root], &profiler)?;
    /// let trace = profiler.last().unwrap().chrome_trace(None);
    /// assert!(trace.starts_with(r#"{"traceEvents":["#));
    /// assert_eq!(trace.matches(r#""ph":"X""#).count(), graph.len());
    /// # Ok::<(), dag_core::Error>(())
    /// ```
    pub fn chrome_trace(&self, resources: Option<&ResourceProfile>) -> String {
        let mut j = Json::new();
        j.raw(r#"{"traceEvents":["#);
        j.raw(r#"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"run"}}"#);
        for w in 0..self.workers {
            j.raw(r#",{"name":"thread_name","ph":"M","pid":1,"tid":"#)
                .int(w as u128)
                .raw(r#","args":{"name":"#)
                .str(&format!("worker {w}"))
                .raw("}}");
        }
        for t in &self.tasks {
            j.raw(r#",{"name":"#).str(&t.key.to_string());
            j.raw(r#","cat":"#).str(self.operation(t));
            j.raw(r#","ph":"X","pid":1,"tid":"#).int(t.worker as u128);
            j.raw(r#","ts":"#).num(t.start.as_secs_f64() * 1e6, 3);
            j.raw(r#","dur":"#).num(t.duration().as_secs_f64() * 1e6, 3);
            j.raw(r#","args":{"bytes_in":"#).int(t.bytes_in as u128);
            j.raw(r#","bytes_out":"#).int(t.bytes_out as u128).raw("}}");
        }
        if let Some(r) = resources {
            let offset = signed_secs(r.started, self.started);
            for s in &r.samples {
                let ts = (s.time.as_secs_f64() + offset) * 1e6;
                j.raw(r#",{"name":"memory","ph":"C","pid":1,"ts":"#)
                    .num(ts, 3);
                j.raw(r#","args":{"resident":"#).int(s.rss as u128);
                j.raw(r#","held":"#).int(s.held as u128).raw("}}");
                j.raw(r#",{"name":"cpu (cores)","ph":"C","pid":1,"ts":"#)
                    .num(ts, 3);
                j.raw(r#","args":{"cores":"#).num(s.cpu, 3).raw("}}");
            }
        }
        j.raw(r#"],"displayTimeUnit":"ms"}"#);
        j.0
    }

    /// Write [`chrome_trace`](Self::chrome_trace) to `path` (an error names the file).
    pub fn write_chrome_trace(
        &self,
        path: impl AsRef<Path>,
        resources: Option<&ResourceProfile>,
    ) -> io::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.chrome_trace(resources)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not write the trace {}: {e}", path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;
    use crate::diagnostics::TaskRecord;
    use std::time::Instant;

    fn task(worker: usize, op: usize, start_us: u64, end_us: u64) -> TaskRecord {
        TaskRecord {
            key: Key::new("t-0", [start_us as usize]),
            op,
            worker,
            start: Duration::from_micros(start_us),
            end: Duration::from_micros(end_us),
            bytes_in: 0,
            bytes_out: 8,
        }
    }

    fn profile(tasks: Vec<TaskRecord>) -> Profile {
        Profile {
            started: Instant::now(),
            planned: tasks.len(),
            tasks,
            operations: vec!["a".into(), "b".into()],
            workers: 2,
            wall: Duration::from_millis(10),
            stats: None,
            memory_limit: Some(1000),
            failure: None,
        }
    }

    #[test]
    fn short_tasks_of_one_operation_merge_and_long_ones_do_not() {
        let p = profile(vec![
            task(0, 0, 0, 1),
            task(0, 0, 1, 2),
            task(0, 1, 2, 3), // another operation: its own bar
            task(0, 1, 3, 4),
            task(0, 1, 100, 5000), // long: its own bar
            task(1, 0, 0, 1),
        ]);
        let s = segments(&p, 10e-6);
        let summary: Vec<(usize, usize, usize)> =
            s.iter().map(|s| (s.worker, s.op, s.count)).collect();
        assert_eq!(summary, [(0, 0, 2), (0, 1, 2), (0, 1, 1), (1, 0, 1)]);
        assert_eq!(s[0].key, None);
        assert!(s[2].key.is_some());
        assert!((s[1].busy - 2e-6).abs() < 1e-12);
    }

    #[test]
    fn the_report_holds_its_data_and_escapes_the_title() {
        let p = profile(vec![task(0, 0, 0, 5), task(1, 1, 2, 9)]);
        let html = Report::new("<x> & y")
            .profile(&p)
            .predicted_peak(512)
            .to_html();
        assert!(
            html.contains("<title>&lt;x&gt; &amp; y</title>"),
            "{}",
            &html[..300]
        );
        assert!(!html.contains("/*DATA*/") && !html.contains("/*SCRIPT*/"));
        assert!(html.contains(r#""predicted":512"#));
        assert!(html.contains(r#""limit":1000"#));
        // Nothing is loaded from elsewhere.
        for needle in ["src=\"http", "href=\"http", "@import", "url(http", "fetch("] {
            assert!(!html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_chrome_trace_has_a_slice_per_task_and_counters_per_sample() {
        let p = profile(vec![task(0, 0, 0, 5), task(1, 1, 2, 9)]);
        let r = ResourceProfile {
            started: p.started,
            interval: Duration::from_millis(100),
            samples: vec![super::super::Sample {
                time: Duration::from_millis(1),
                cpu: 1.5,
                rss: 10,
                held: 4,
            }],
            memory_limit: None,
            cores: 2,
        };
        let t = p.chrome_trace(Some(&r));
        assert_eq!(t.matches(r#""ph":"X""#).count(), 2);
        assert_eq!(t.matches(r#""ph":"C""#).count(), 2);
        assert!(t.contains(r#""ts":2,"dur":7"#), "{t}");
        assert!(t.contains(r#""resident":10,"held":4"#));
    }

    #[test]
    fn markers_are_filled_in_the_template_only() {
        let t = fill(
            "<t>__T__</t><d>/*D*/</d>",
            &[("__T__", "/*D*/"), ("/*D*/", "1")],
        );
        assert_eq!(t, "<t>/*D*/</t><d>1</d>");
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
