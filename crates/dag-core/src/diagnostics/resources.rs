//! Process resources over a run: CPU and resident memory from `/proc`, and the scheduler's
//! bytes held, sampled on a background thread.

use crate::{Callbacks, MemoryMeter, Plan, RunInfo, RunStats};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What this process has used so far: CPU time (user and system, all threads) and resident
/// memory.
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
/// The CPU time is the scheduler's own count, to the nanosecond (`CLOCK_PROCESS_CPUTIME_ID`:
/// every thread, live or exited, user and system). `/proc/self/stat` counts whole clock ticks
/// of 10 ms, so two readings a few milliseconds apart differed by 0 or 10 ms, and the CPU of
/// a sample came out as several times the cores, or none.
///
/// ```
/// if cfg!(target_os = "linux") {
///     let u = dag_core::diagnostics::process_usage().expect("/proc is readable");
///     assert!(u.rss > 0);
/// }
/// ```
pub fn process_usage() -> Option<ProcessUsage> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(ProcessUsage {
        cpu: process_cpu_time()?,
        rss: parse_rss(&statm, page_size()?)?,
    })
}

/// The resident set size from `/proc/self/statm`: its second field, in pages.
fn parse_rss(statm: &str, page: usize) -> Option<usize> {
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page)
}

#[cfg(unix)]
fn process_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant the system has.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    (r == 0).then(|| Duration::new(secs, nanos))
}

#[cfg(not(unix))]
fn process_cpu_time() -> Option<Duration> {
    None
}

/// The CPU a process used between readings of [`process_usage`], in cores, never more than
/// the cores it can run on.
///
/// The reading counts the calling thread exactly, but another thread running on another
/// core only up to its last scheduler tick (a few milliseconds), so a reading a few
/// milliseconds after the last one can hold time spent before it. What an interval would
/// show beyond the cores is carried into the next intervals, so no sample shows more than the
/// machine can do, and no CPU time read is lost (short of what the last interval of a run
/// could not show).
#[derive(Debug)]
pub(crate) struct CpuRate {
    last: Option<(Instant, Duration)>,
    carry: f64,
    cores: f64,
}

impl CpuRate {
    pub(crate) fn new() -> CpuRate {
        CpuRate::with_cores(crate::available_cores())
    }

    fn with_cores(cores: usize) -> CpuRate {
        CpuRate {
            last: None,
            carry: 0.0,
            cores: cores.max(1) as f64,
        }
    }

    /// The cores busy since the last reading, given the process's CPU time `cpu` at `now`
    /// (0 for the first reading).
    pub(crate) fn rate(&mut self, now: Instant, cpu: Duration) -> f64 {
        let Some((t, c)) = self.last else {
            self.last = Some((now, cpu));
            return 0.0;
        };
        let dt = now.saturating_duration_since(t).as_secs_f64();
        if dt <= 0.0 {
            return 0.0;
        }
        self.last = Some((now, cpu));
        let used = cpu.saturating_sub(c).as_secs_f64() + self.carry;
        let shown = used.min(self.cores * dt);
        self.carry = used - shown;
        shown / dt
    }
}

#[cfg(unix)]
fn page_size() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (p > 0).then_some(p as usize)
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
    let mut rate = CpuRate::new();
    let mut take = |samples: &mut Vec<Sample>| {
        let now = Instant::now();
        let usage = process_usage();
        let cpu = usage.map_or(0.0, |u| rate.rate(now, u.cpu));
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
    fn statm_gives_the_resident_pages() {
        assert_eq!(
            parse_rss("5000 1200 300 1 0 900 0", 4096),
            Some(1200 * 4096)
        );
        assert_eq!(parse_rss("1", 4096), None);
        assert_eq!(parse_rss("", 4096), None);
        assert_eq!(parse_rss("1 x", 4096), None);
    }

    /// The calling thread's CPU time is counted to the nanosecond: it grows over every
    /// millisecond this thread is busy (clock ticks of 10 ms, as `/proc/self/stat` counts,
    /// left most such intervals at 0).
    #[test]
    fn cpu_time_grows_over_every_busy_millisecond() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut last = process_usage().unwrap().cpu;
        for _ in 0..50 {
            let t = Instant::now();
            let mut x = 0u64;
            while t.elapsed() < Duration::from_millis(1) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let now = process_usage().unwrap().cpu;
            assert!(now > last, "{now:?} after {last:?}");
            last = now;
        }
    }

    /// Readings that lag (20 ms of CPU seen at once, at 1 ms intervals on 2 cores) show at
    /// most the cores per interval; the rest is shown in the intervals after.
    #[test]
    fn cpu_rates_never_exceed_the_cores_and_keep_the_total() {
        let mut r = CpuRate::with_cores(2);
        let t0 = Instant::now();
        let ms = |k: u64| t0 + Duration::from_millis(k);
        assert_eq!(r.rate(ms(0), Duration::ZERO), 0.0);
        let mut total = 0.0;
        for k in 1..=20u64 {
            // Two busy threads whose time is seen every 10 ms, at once.
            let cpu = Duration::from_millis(20 * (k / 10));
            let shown = r.rate(ms(k), cpu);
            assert!((0.0..=2.0 + 1e-9).contains(&shown), "{shown} at {k} ms");
            total += shown * 0.001;
        }
        // What is shown, and what is still to show, is all the CPU time read.
        assert!(
            (total + r.carry - 0.040).abs() < 1e-9,
            "{total} + {}",
            r.carry
        );
        // A reading at the same instant changes nothing.
        assert_eq!(r.rate(ms(20), Duration::from_millis(40)), 0.0);
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
