//! The dashboard and the HTML report in a real browser: headless Chromium loads them and the
//! tests read the DOM it ends with (`--dump-dom`), so the pages' scripts have run on real
//! data. Chromium is Debian's `chromium` package, installed by `cargo xtask deps` (CI runs
//! it); without it these tests fail and say how to install it.
//!
//! With `BLOCKARRAY_SCREENSHOTS=DIR` set they also save `DIR/dashboard.png` and
//! `DIR/report.png` (how `docs/dashboard.png` and `docs/report.png` were made:
//! `BLOCKARRAY_SCREENSHOTS=$PWD/docs cargo test -p blockarray --test browser`).

use blockarray::diagnostics::{Dashboard, Profiler, Report, ResourceProfiler};
use blockarray::{BlockArray, Computation, random::Rng, s};
use sched_threaded::ThreadedScheduler;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary: `$CHROMIUM`, else `chromium` (Debian), `chromium-browser` or
/// `google-chrome` on the PATH.
fn chromium() -> PathBuf {
    if let Some(c) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(c);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is needed for the browser tests and was not found: install it with \
         `cargo xtask deps` (Debian's chromium package, which CI installs the same way), or set \
         CHROMIUM to a Chromium or Chrome binary"
    );
}

/// A headless Chromium loading `url`, with a fresh profile directory, doing `action`
/// (`--dump-dom`, or `--screenshot=…`). Virtual time stops while the page has a request
/// open (the dashboard's event stream), so the budget only runs out once the page is done.
struct Browser {
    child: Child,
    profile: PathBuf,
    /// Readers of its output and error streams: read while it runs, or a DOM bigger than the
    /// pipe's buffer would block it.
    out: Option<std::thread::JoinHandle<String>>,
    err: Option<std::thread::JoinHandle<String>>,
}

/// Read all of `r` on a thread.
fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Browser {
    fn open(url: &str, action: &str, tag: &str, height: u32) -> Browser {
        let profile =
            std::env::temp_dir().join(format!("blockarray-chromium-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--window-size=1280,{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(action)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start Chromium ({e}); install it with `cargo xtask deps`")
            });
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        Browser {
            child,
            profile,
            out,
            err,
        }
    }

    /// What the browser printed (the DOM, for `--dump-dom`), failing the test if it takes
    /// more than `secs` or fails.
    fn finish(mut self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            match self.child.try_wait().expect("waiting for Chromium") {
                Some(status) => {
                    let out = self.out.take().map(|h| h.join().unwrap_or_default());
                    let err = self.err.take().map(|h| h.join().unwrap_or_default());
                    assert!(
                        status.success(),
                        "Chromium failed ({status}): {}",
                        err.unwrap_or_default()
                    );
                    return out.unwrap_or_default();
                }
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let err = self.err.take().map(|h| h.join().unwrap_or_default());
                    panic!(
                        "Chromium did not finish in {secs} s: {}",
                        err.unwrap_or_default()
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where to save screenshots, if asked.
fn screenshots() -> Option<PathBuf> {
    std::env::var_os("BLOCKARRAY_SCREENSHOTS").map(PathBuf::from)
}

/// The values of attribute `name` in `html`, in order.
fn attrs<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let pat = format!(" {name}=\"");
    html.match_indices(&pat)
        .map(|(i, _)| {
            let rest = &html[i + pat.len()..];
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect()
}

/// The text of the element with id `id`.
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let pat = format!("id=\"{id}\"");
    let at = html.find(&pat).unwrap_or_else(|| panic!("no element {id}"));
    let rest = &html[at..];
    let start = rest.find('>').expect("a tag") + 1;
    let end = rest[start..].find('<').expect("a closing tag");
    &rest[start..start + end]
}

#[test]
fn the_dashboard_shows_the_task_stream_and_full_progress_in_a_browser() {
    let dashboard = Dashboard::serve("127.0.0.1:0").expect("a free port");
    let url = dashboard.url();
    let page = Browser::open(&url, "--dump-dom", "dashboard-dom", 1100);
    let shot = screenshots().map(|dir| {
        let path = dir.join("dashboard.png");
        (
            Browser::open(
                &url,
                &format!("--screenshot={}", path.display()),
                "dashboard-png",
                1020,
            ),
            path,
        )
    });
    // Start the run once every page follows the stream.
    let pages = 1 + usize::from(shot.is_some());
    let t = Instant::now();
    while dashboard.clients() < pages {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the page did not connect to {url} within a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // Two runs: many tiny tasks, then several operations (the one left on the page), longer
    // when taking the picture.
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    let ones = BlockArray::<f64>::ones(&[1000, 1000], [50, 50]).unwrap();
    let (total, ones_stats) = ones
        .sum(None, false)
        .unwrap()
        .compute_with_callbacks(&s, &dashboard)
        .unwrap();
    assert_eq!(total.into_iter().next(), Some(1e6));
    assert!(ones_stats.tasks > 400);
    let n = if shot.is_some() { 8000 } else { 2000 };
    let x: BlockArray<f64> = Rng::new(3).random(&[n, n], [n / 10, n / 10]).unwrap();
    let mut c = Computation::new();
    let h1 = c.add(
        &(&x + &x.t())
            .unwrap()
            .slice(s![..;2, n / 2..])
            .unwrap()
            .mean(Some(&[1]), false)
            .unwrap(),
    );
    let h2 = c.add(&x.std(Some(&[0]), 0.0, false).unwrap());
    let (mut out, stats) = c.run_with(&s, &dashboard).unwrap();
    assert_eq!(out.take(h1).unwrap().len(), n / 2);
    assert_eq!(out.take(h2).unwrap().len(), n);

    // Stopping the dashboard sends the pages the final state and closes their streams.
    drop(dashboard);
    let dom = page.finish(60);
    if let Some((b, path)) = shot {
        b.finish(60);
        assert!(path.is_file(), "{}", path.display());
    }
    assert!(
        attrs(&dom, "data-error").is_empty(),
        "script error: {:?}",
        attrs(&dom, "data-error")
    );
    assert_eq!(
        attrs(&dom, "data-status"),
        ["finished"],
        "the page followed the runs"
    );
    assert_eq!(
        attrs(&dom, "data-closed"),
        ["yes"],
        "the page heard the dashboard stop"
    );
    assert!(
        text_of(&dom, "status").ends_with(" · dashboard stopped"),
        "{}",
        text_of(&dom, "status")
    );
    assert_eq!(text_of(&dom, "percent"), "100 %");
    let planned = stats.tasks;
    assert_eq!(
        text_of(&dom, "overall"),
        format!("{planned} / {planned}"),
        "the last run's tasks, all done"
    );
    // The task stream of the last run is drawn.
    let tasks = dom.matches("class=\"task\"").count();
    assert!(
        tasks > 0 && tasks <= planned,
        "{tasks} bars for {planned} tasks"
    );
    // Progress per operation: every bar full.
    let done = attrs(&dom, "data-done");
    let total = attrs(&dom, "data-total");
    assert!(!done.is_empty() && done == total, "{done:?} of {total:?}");
    let sum: usize = total.iter().map(|t| t.parse::<usize>().unwrap()).sum();
    assert_eq!(sum, planned);
}

#[test]
fn the_html_report_renders_in_a_browser() {
    let x: BlockArray<f64> = Rng::new(42).random(&[2000, 2000], [200, 200]).unwrap();
    let y = (&x + &x.t())
        .unwrap()
        .slice(s![..;2, 1000..])
        .unwrap()
        .mean(Some(&[1]), false)
        .unwrap();
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    let mut c = Computation::new();
    let h = c.add(&y);
    let plan = c.plan(&s).unwrap();
    let (profiler, resources) = (
        Profiler::new(),
        ResourceProfiler::new().interval(Duration::from_millis(10)),
    );
    let (mut out, _) = c.run_with(&s, &(&profiler, &resources)).unwrap();
    assert_eq!(out.take(h).unwrap().len(), 1000);
    let (profile, samples) = (profiler.last().unwrap(), resources.last().unwrap());
    let path = std::env::temp_dir().join(format!("blockarray-report-{}.html", std::process::id()));
    Report::new("(x + x.T)[::2, 1000:].mean(axis=1)")
        .info("expression", "x = random((2000, 2000), chunks=(200, 200))")
        .profile(&profile)
        .resources(&samples)
        .predicted_peak(plan.predicted_peak)
        .memory_limit(plan.allowed_mem)
        .write_html(&path)
        .unwrap();
    let url = format!("file://{}", path.display());
    let dom = Browser::open(&url, "--dump-dom", "report-dom", 1100).finish(60);
    if let Some(dir) = screenshots() {
        let png = dir.join("report.png");
        Browser::open(
            &url,
            &format!("--screenshot={}", png.display()),
            "report-png",
            1420,
        )
        .finish(60);
        assert!(png.is_file());
    }
    std::fs::remove_file(&path).unwrap();

    assert!(
        attrs(&dom, "data-error").is_empty(),
        "script error: {:?}",
        attrs(&dom, "data-error")
    );
    assert_eq!(attrs(&dom, "data-rendered"), ["ok"]);
    // The task stream: a bar per task here (few, long tasks), coloured by operation.
    let bars = dom.matches("class=\"task\"").count();
    assert!(
        bars > 0 && bars <= plan.tasks,
        "{bars} bars, {} tasks",
        plan.tasks
    );
    let ops = attrs(&dom, "data-op");
    assert!(ops.iter().all(|o| !o.is_empty()));
    // One row per operation in the time table, one legend entry each.
    assert_eq!(
        dom.matches("class=\"op-row\"").count(),
        profile.operations.len()
    );
    assert!(dom.matches("class=\"legend-item\"").count() >= profile.operations.len());
    // The summary and the memory panel: predicted against measured peak.
    let ids = attrs(&dom, "data-id");
    for id in [
        "tasks",
        "wall",
        "workers",
        "peak",
        "predicted",
        "measured",
        "rss",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    // Memory and CPU were drawn as lines over time.
    assert!(attrs(&dom, "data-series").contains(&"bytes held"));
    assert!(attrs(&dom, "data-series").contains(&"CPU"));
}
