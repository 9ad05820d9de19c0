//! Process resources over a run: CPU and resident memory from `/proc`, and the scheduler's
//! bytes held, sampled on a background thread.

use crate::{Callbacks, MemoryMeter, Plan, RunInfo, RunStats};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What this process has used so far: CPU time (user and system, all threads) and resident
/// memory, read from `/proc/self/stat` and `/proc/self/statm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessUsage {
    /// CPU time used by all the process's threads, user and system.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss: usize,
}

/// The process's CPU time and resident memory now, or `None` where `/proc` is not available
/// (systems other than Linux).
///
/// ```
/// if cfg!(target_os = "linux") {
///     let u = dag_core::diagnostics::process_usage().expect("/proc is readable");
///     assert!(u.rss > 0);
/// }
/// ```
pub fn process_usage() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_usage(&stat, &statm, clock_ticks()?, page_size()?)
}

/// `/proc/self/stat` and `/proc/self/statm` parsed: utime and stime are fields 14 and 15 of
/// the first (in clock ticks; the command name, field 2, is in parentheses and may contain
/// spaces, so fields are counted after its closing one), resident pages the second field of
/// the other.
fn parse_usage(stat: &str, statm: &str, ticks: u64, page: usize) -> Option<ProcessUsage> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: field 3 (state) is the first; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    let ticks = ticks.max(1);
    let t = utime + stime;
    Some(ProcessUsage {
        cpu: Duration::from_secs(t / ticks)
            + Duration::from_nanos((t % ticks) * 1_000_000_000 / ticks),
        rss: pages * page,
    })
}

#[cfg(unix)]
fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as u64)
}

#[cfg(unix)]
fn page_size() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (p > 0).then_some(p as usize)
}

#[cfg(not(unix))]
fn clock_ticks() -> Option<u64> {
    None
}

#[cfg(not(unix))]
fn page_size() -> Option<usize> {
    None
}

/// One sample of a [`ResourceProfile`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Time since the run started.
    pub time: Duration,
    /// Cores busy since the previous sample: CPU time used divided by the time between the two
    /// (1.0 = one core fully busy; 0 for the first sample).
    pub cpu: f64,
    /// Resident memory of the process, bytes (0 where unknown).
    pub rss: usize,
    /// Bytes of values the scheduler held (0 before the scheduler reported its meter).
    pub held: usize,
}

/// The samples of one run ([`ResourceProfiler::last`]).
#[derive(Clone, Debug)]
pub struct ResourceProfile {
    /// When the run started (to line samples up with a [`Profile`](super::Profile)'s tasks).
    pub started: Instant,
    /// The time between samples that was asked for.
    pub interval: Duration,
    /// The samples, in time order: one when the run starts, one per interval, one at its end.
    pub samples: Vec<Sample>,
    /// The plan's memory limit, if it had one.
    pub memory_limit: Option<usize>,
    /// The cores available to the process (the CPU plot's full scale).
    pub cores: usize,
}

impl ResourceProfile {
    /// The largest resident memory sampled.
    pub fn peak_rss(&self) -> usize {
        self.samples.iter().map(|s| s.rss).max().unwrap_or(0)
    }

    /// The most bytes held by the scheduler at a sample (the exact peak is
    /// [`RunStats::peak_bytes`]; samples can miss short peaks).
    pub fn peak_held(&self) -> usize {
        self.samples.iter().map(|s| s.held).max().unwrap_or(0)
    }

    /// Cores busy on average over the run.
    pub fn mean_cpu(&self) -> f64 {
        let (mut busy, mut span) = (0.0, 0.0);
        let mut prev = Duration::ZERO;
        for s in &self.samples {
            let dt = (s.time - prev).as_secs_f64();
            busy += s.cpu * dt;
            span += dt;
            prev = s.time;
        }
        if span > 0.0 { busy / span } else { 0.0 }
    }
}

/// Samples the process's CPU use and resident memory, and the scheduler's bytes held, every
/// `interval` (100 ms by default) on a background thread that starts with a run and stops
/// with it: dask's `ResourceProfiler`. Cheap to leave on: it does nothing per task.
///
/// Cloning shares the samples. Each run it is passed to gives a [`ResourceProfile`]
/// ([`last`](Self::last), [`profiles`](Self::profiles)); give it to one run at a time.
///
/// ```
/// use dag_core::diagnostics::ResourceProfiler;
/// use dag_core::Scheduler;
/// use std::time::Duration;
///
/// let (graph, root) = dag_core::synthetic::tree(10_000, 8);
/// let resources = ResourceProfiler::new().interval(Duration::from_millis(5));
/// sched_sync::SyncScheduler::new().compute_with(&graph, &[root], &resources)?;
/// let profile = resources.last().expect("one run");
/// assert!(profile.samples.len() >= 2); // at least the start and the end
/// # Ok::<(), dag_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ResourceProfiler {
    inner: Arc<Inner>,
}

struct Inner {
    interval: Duration,
    running: Mutex<Option<Running>>,
    /// Runs that ended whose sampling threads have not been joined yet.
    stopping: Mutex<Vec<Stopping>>,
    /// The scheduler's meter of the current run, once it reports it.
    held: Arc<Mutex<Option<Arc<MemoryMeter>>>>,
    profiles: Mutex<Vec<Arc<ResourceProfile>>>,
}

/// A sampling thread told to stop.
struct Stopping {
    thread: JoinHandle<Vec<Sample>>,
    started: Instant,
    memory_limit: Option<usize>,
}

/// The sampling thread of the current run.
struct Running {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Vec<Sample>>,
    started: Instant,
    memory_limit: Option<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for ResourceProfiler {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ResourceProfiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResourceProfiler {{ interval: {:?}, runs: {} }}",
            self.inner.interval,
            lock(&self.inner.profiles).len() + lock(&self.inner.stopping).len()
        )
    }
}

impl ResourceProfiler {
    /// A profiler sampling every 100 ms.
    pub fn new() -> ResourceProfiler {
        ResourceProfiler::every(Duration::from_millis(100))
    }

    fn every(interval: Duration) -> ResourceProfiler {
        ResourceProfiler {
            inner: Arc::new(Inner {
                interval: interval.max(Duration::from_millis(1)),
                running: Mutex::new(None),
                stopping: Mutex::new(Vec::new()),
                held: Arc::new(Mutex::new(None)),
                profiles: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A profiler like this one sampling every `interval` (at least 1 ms) instead; use it
    /// before any run (it starts with no samples).
    #[must_use]
    pub fn interval(self, interval: Duration) -> ResourceProfiler {
        ResourceProfiler::every(interval)
    }

    /// The samples of the last finished run.
    pub fn last(&self) -> Option<Arc<ResourceProfile>> {
        self.collect();
        lock(&self.inner.profiles).last().cloned()
    }

    /// The samples of every finished run, oldest first.
    pub fn profiles(&self) -> Vec<Arc<ResourceProfile>> {
        self.collect();
        lock(&self.inner.profiles).clone()
    }

    /// Tell the sampling thread of the current run, if any, to take its last sample and stop.
    /// The run does not wait for it: its samples are collected when asked for.
    fn stop(&self) {
        let Some(run) = lock(&self.inner.running).take() else {
            return;
        };
        drop(run.stop);
        *lock(&self.inner.held) = None;
        lock(&self.inner.stopping).push(Stopping {
            thread: run.thread,
            started: run.started,
            memory_limit: run.memory_limit,
        });
    }

    /// Join the stopped sampling threads and keep their samples.
    fn collect(&self) {
        let stopped = std::mem::take(&mut *lock(&self.inner.stopping));
        for run in stopped {
            // The thread only reads files and a meter; if it panicked anyway, keep no samples.
            let samples = run.thread.join().unwrap_or_default();
            lock(&self.inner.profiles).push(Arc::new(ResourceProfile {
                started: run.started,
                interval: self.inner.interval,
                samples,
                memory_limit: run.memory_limit,
                cores: crate::available_cores(),
            }));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No sampling thread outlives the profiler.
        if let Some(run) = self.running.get_mut().map(Option::take).ok().flatten() {
            drop(run.stop);
            let _ = run.thread.join();
        }
        if let Ok(stopping) = self.stopping.get_mut() {
            for run in stopping.drain(..) {
                let _ = run.thread.join();
            }
        }
    }
}

/// Samples every `interval` until `stop` is dropped (or sent to), then one last time.
fn sample_loop(
    started: Instant,
    interval: Duration,
    held: Arc<Mutex<Option<Arc<MemoryMeter>>>>,
    stop: mpsc::Receiver<()>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut prev: Option<(Instant, Duration)> = None;
    let mut take = |samples: &mut Vec<Sample>| {
        let now = Instant::now();
        let usage = process_usage();
        let cpu = match (prev, usage) {
            (Some((t, c)), Some(u)) => {
                let dt = now.duration_since(t).as_secs_f64();
                if dt > 0.0 {
                    u.cpu.saturating_sub(c).as_secs_f64() / dt
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        if let Some(u) = usage {
            prev = Some((now, u.cpu));
        }
        let held = lock(&held).as_ref().map_or(0, |m| m.live());
        samples.push(Sample {
            time: now.duration_since(started),
            cpu,
            rss: usage.map_or(0, |u| u.rss),
            held,
        });
    };
    take(&mut samples);
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        take(&mut samples);
    }
    take(&mut samples);
    samples
}

impl Callbacks for ResourceProfiler {
    fn on_start(&self, plan: &Plan) {
        // A run that ended without `on_finish` (it cannot, but be safe): keep its samples.
        self.stop();
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let interval = self.inner.interval;
        let held = self.inner.held.clone();
        let spawned = std::thread::Builder::new()
            .name("resource-profiler".into())
            .spawn(move || sample_loop(started, interval, held, rx));
        // Without a thread there are no samples; the run goes on.
        if let Ok(thread) = spawned {
            *lock(&self.inner.running) = Some(Running {
                stop: tx,
                thread,
                started,
                memory_limit: plan.memory_limit(),
            });
        }
    }

    fn on_run_info(&self, info: &RunInfo) {
        *lock(&self.inner.held) = Some(info.held.clone());
    }

    fn on_finish(&self, _stats: Option<&RunStats>) {
        self.stop();
    }

    fn per_task(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_parsed_after_the_command_name() {
        // A command name with spaces and a parenthesis; utime 250, stime 50 ticks.
        let stat = "1234 (my (odd) cmd) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100";
        let u = parse_usage(stat, "5000 1200 300 1 0 900 0", 100, 4096).unwrap();
        assert_eq!(u.cpu, Duration::from_secs(3));
        assert_eq!(u.rss, 1200 * 4096);
        assert_eq!(parse_usage("garbage", "1 2", 100, 4096), None);
        assert_eq!(parse_usage(stat, "", 100, 4096), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        if cfg!(target_os = "linux") {
            let a = process_usage().unwrap();
            let mut x = 0u64;
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let b = process_usage().unwrap();
            assert!(b.cpu > a.cpu, "{a:?} {b:?}");
            assert!(a.rss > 1 << 20);
        }
    }

    #[test]
    fn mean_cpu_weights_samples_by_their_intervals() {
        let s = |ms: u64, cpu: f64| Sample {
            time: Duration::from_millis(ms),
            cpu,
            rss: 0,
            held: 0,
        };
        let p = ResourceProfile {
            started: Instant::now(),
            interval: Duration::from_millis(100),
            samples: vec![s(0, 0.0), s(100, 2.0), s(400, 1.0)],
            memory_limit: None,
            cores: 2,
        };
        assert!((p.mean_cpu() - (0.2 + 0.3) / 0.4).abs() < 1e-9);
    }
}
