//! The live dashboard: a page served over HTTP while runs go on (feature `dashboard`).
//!
//! # Design notes
//!
//! The run must not pay for the page. Per task the callbacks only append a 40-byte record to
//! their worker's own buffer under an uncontended lock (as the [`Profiler`](super::Profiler)
//! does) and note the task running on that worker in two atomics of its own. Everything else happens on the server's
//! thread, every 100 ms: it drains the buffers, maps tasks to operations, counts progress per
//! operation, keeps a bounded history of recent tasks, samples the bytes held, the resident
//! memory and the CPU, and wakes the page's streams. Each open page has one stream
//! (server-sent events, `/events`) with its own cursor into that history, so an event carries
//! only what that page has not seen — and at most a few thousand tasks, however fast they run.
//!
//! The HTTP side is `tiny_http` (small, synchronous, no async runtime). A stream writes
//! straight to its connection (`Request::into_writer`): tiny_http's own responses buffer
//! their bodies, which an event stream cannot have. When the dashboard stops it sends every
//! page a last snapshot and a `close` event; the page then closes its stream and keeps showing
//! the final state.

use super::process_usage;
use crate::{Callbacks, Error, Key, MemoryMeter, Plan, RunInfo, RunStats, TaskEvent};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::json::Json;

/// Where a dashboard listens unless told otherwise (dask's is port 8787 too). Only this
/// machine can connect to 127.0.0.1.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

/// Per-worker record buffers (workers beyond this share them, modulo).
const SHARDS: usize = 64;
/// How often the server aggregates and pages get an event.
const TICK: Duration = Duration::from_millis(100);
/// Recent tasks kept for pages that connect later.
const HISTORY_TASKS: usize = 50_000;
/// Samples kept (at one per tick: ten minutes).
const HISTORY_SAMPLES: usize = 6_000;
/// The most tasks one event carries (the newest).
const TASKS_PER_EVENT: usize = 3_000;
/// The window over which worker occupancy is measured, seconds.
const OCCUPANCY_WINDOW: f64 = 1.0;

const PAGE: &str = include_str!("assets/dashboard.html");

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One finished task as the callbacks record it.
#[derive(Clone, Copy)]
struct Raw {
    id: u32,
    worker: u32,
    start: Instant,
    dur: Duration,
}

/// A worker's records, and the task it runs now (two plain atomics, so that starting a task
/// takes no lock: the pair may be read half-updated for a moment, which only shows).
#[repr(align(128))]
struct Shard {
    records: Mutex<Vec<Raw>>,
    /// The running task's id + 1 (0: none).
    running: AtomicU64,
    /// When it started: nanoseconds since [`epoch`].
    since: AtomicU64,
}

/// The instant running tasks' starts are counted from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A task of the history: worker, operation, start and end (seconds since the run started).
#[derive(Clone, Copy)]
struct Row {
    seq: u64,
    id: u32,
    worker: u32,
    op: u32,
    start: f64,
    end: f64,
}

/// A sample of the history: time, bytes held, resident memory, cores busy.
#[derive(Clone, Copy)]
struct SampleRow {
    seq: u64,
    t: f64,
    held: usize,
    rss: usize,
    cpu: f64,
}

/// Progress of one operation.
struct OpRow {
    name: String,
    total: usize,
    done: usize,
    busy: f64,
}

/// What the server knows, updated every tick; the pages' events are made from it.
struct Agg {
    /// Bumped at every change pages should hear about.
    seq: u64,
    /// The dashboard is stopping: streams send a last event and close.
    stopping: bool,
    /// Runs seen (the current or last one's number; 0 before any).
    run: u64,
    status: &'static str,
    started: Instant,
    ended: Option<f64>,
    workers: usize,
    keys: Vec<Key>,
    labels: Vec<Option<Arc<str>>>,
    /// Each task's operation (filled on the first tick of a run).
    op_of: Vec<u32>,
    ops: Vec<OpRow>,
    done: usize,
    limit: Option<usize>,
    meter: Option<Arc<MemoryMeter>>,
    peak_held: usize,
    tasks: VecDeque<Row>,
    task_seq: u64,
    samples: VecDeque<SampleRow>,
    sample_seq: u64,
    last_cpu: Option<(Instant, Duration)>,
    /// Per worker: the operation running now and its start.
    running: Vec<Option<(u32, f64)>>,
    failure: Option<String>,
}

/// How far one page's stream has got.
#[derive(Default)]
struct Cursor {
    run: u64,
    task_seq: u64,
    sample_seq: u64,
}

struct Inner {
    shards: Box<[Shard]>,
    agg: Mutex<Agg>,
    changed: Condvar,
    /// Where to listen.
    addrs: Vec<SocketAddr>,
    /// Serve only while a run goes on ([`Dashboard::new`]) rather than until dropped.
    per_run: bool,
    server: Mutex<Option<Server>>,
    /// The address the server listens on now.
    bound: Mutex<Option<SocketAddr>>,
    /// Open event streams.
    clients: AtomicUsize,
    /// Why the last attempt to listen failed, if it did.
    error: Mutex<Option<String>>,
}

/// The running server: its thread and stop flag.
struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A live dashboard in the browser, as [`Callbacks`]: while a computation runs it serves a
/// page (by default on [`DEFAULT_ADDR`], `http://127.0.0.1:8787/`) showing
///
/// - the task stream of the last ten seconds: one row per worker, tasks coloured by operation
///   (hover for the key and the duration);
/// - a progress bar per operation (done, running, left), like dask's progress panel, and the
///   run's overall progress;
/// - the bytes the scheduler holds against the plan's memory limit, with resident memory and
///   CPU over time;
/// - each worker's occupancy over the last second.
///
/// Two lifetimes: [`Dashboard::new`] starts serving when a run starts and stops when it ends
/// (an open page keeps the final state); [`Dashboard::serve`] serves from now until the last
/// clone is dropped, across any number of runs. Either way it binds to 127.0.0.1 unless told
/// otherwise, and costs the run no more than the [`Profiler`](super::Profiler): the callbacks
/// only append to per-worker buffers, and the server's thread does the rest every 100 ms.
///
/// Needs the `dashboard` cargo feature of `dag-core` (it brings in `tiny_http`).
///
/// ```no_run
/// use dag_core::diagnostics::Dashboard;
/// use dag_core::Scheduler;
///
/// let dashboard = Dashboard::serve("127.0.0.1:8787")?;
/// println!("watch at {}", dashboard.url());
/// let (graph, root) = dag_core::synthetic::tree(1_000_000, 8);
/// sched_threaded::ThreadedScheduler::new().compute_with(&graph, &[root], &dashboard)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A bad address is an error when the dashboard is made:
///
/// ```
/// let e = dag_core::diagnostics::Dashboard::serve("not an address").unwrap_err();
/// assert!(e.to_string().contains("not an address"));
/// ```
#[derive(Clone)]
pub struct Dashboard {
    handle: Arc<Handle>,
}

/// Owned by the user's clones only (the server's threads hold `Inner`): dropping the last
/// clone stops the server.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        stop(&self.inner);
    }
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dashboard {{ url: {} }}", self.url())
    }
}

impl Dashboard {
    /// A dashboard that serves on `addr` (e.g. [`DEFAULT_ADDR`]; port 0 picks a free one)
    /// while a run goes on: the server starts when a run starts and stops when it ends.
    /// Fails if `addr` is not an address. If it cannot listen when a run starts (the port is
    /// taken), the run goes on without it and [`error`](Self::error) says why.
    pub fn new(addr: impl ToSocketAddrs + std::fmt::Display) -> io::Result<Dashboard> {
        Ok(Dashboard::make(resolve(&addr)?, true))
    }

    /// A dashboard serving on `addr` from now until the last clone is dropped, across any
    /// number of runs. Fails, naming the address, if it is not one or cannot be listened on.
    pub fn serve(addr: impl ToSocketAddrs + std::fmt::Display) -> io::Result<Dashboard> {
        let d = Dashboard::make(resolve(&addr)?, false);
        start(&d.handle.inner)?;
        Ok(d)
    }

    fn make(addrs: Vec<SocketAddr>, per_run: bool) -> Dashboard {
        epoch();
        let inner = Inner {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    records: Mutex::new(Vec::new()),
                    running: AtomicU64::new(0),
                    since: AtomicU64::new(0),
                })
                .collect(),
            agg: Mutex::new(Agg {
                seq: 0,
                stopping: false,
                run: 0,
                status: "idle",
                started: Instant::now(),
                ended: None,
                workers: 0,
                keys: Vec::new(),
                labels: Vec::new(),
                op_of: Vec::new(),
                ops: Vec::new(),
                done: 0,
                limit: None,
                meter: None,
                peak_held: 0,
                tasks: VecDeque::new(),
                task_seq: 0,
                samples: VecDeque::new(),
                sample_seq: 0,
                last_cpu: None,
                running: Vec::new(),
                failure: None,
            }),
            changed: Condvar::new(),
            addrs,
            per_run,
            server: Mutex::new(None),
            bound: Mutex::new(None),
            clients: AtomicUsize::new(0),
            error: Mutex::new(None),
        };
        Dashboard {
            handle: Arc::new(Handle {
                inner: Arc::new(inner),
            }),
        }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// The page's address: where the server listens now, or (before it started) where it
    /// will.
    pub fn url(&self) -> String {
        let addr = lock(&self.inner().bound)
            .or_else(|| self.inner().addrs.first().copied())
            .expect("a dashboard has an address");
        format!("http://{addr}/")
    }

    /// Whether the server is listening now.
    pub fn is_serving(&self) -> bool {
        lock(&self.inner().server).is_some()
    }

    /// Pages connected now (open event streams).
    pub fn clients(&self) -> usize {
        self.inner().clients.load(Ordering::Acquire)
    }

    /// Why the server could not listen when a run started, if it could not.
    pub fn error(&self) -> Option<String> {
        lock(&self.inner().error).clone()
    }

    /// The current state as the page's JSON (the same as `GET /state`).
    pub fn snapshot(&self) -> String {
        let inner = self.inner();
        let mut agg = lock(&inner.agg);
        tick(inner, &mut agg);
        agg.delta(&mut Cursor::default())
    }
}

/// `addr` resolved, or an error naming it.
fn resolve(addr: &(impl ToSocketAddrs + std::fmt::Display)) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("dashboard address {addr}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("dashboard address {addr} resolves to no address"),
        ));
    }
    Ok(addrs)
}

/// Start the server if it is not running.
fn start(inner: &Arc<Inner>) -> io::Result<()> {
    let mut server = lock(&inner.server);
    if server.is_some() {
        return Ok(());
    }
    let http = tiny_http::Server::http(&inner.addrs[..]).map_err(|e| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("the dashboard cannot listen on {}: {e}", inner.addrs[0]),
        )
    })?;
    let bound = http.server_addr().to_ip();
    *lock(&inner.bound) = bound;
    lock(&inner.agg).stopping = false;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (inner, stop) = (inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || serve_loop(&inner, &http, &stop))?
    };
    *server = Some(Server { stop, thread });
    Ok(())
}

/// Stop the server, if running: pages get a last snapshot and a `close` event.
fn stop(inner: &Arc<Inner>) {
    let Some(server) = lock(&inner.server).take() else {
        return;
    };
    {
        let mut agg = lock(&inner.agg);
        tick(inner, &mut agg);
        agg.stopping = true;
        agg.seq += 1;
        inner.changed.notify_all();
    }
    server.stop.store(true, Ordering::Release);
    let _ = server.thread.join();
    // Streams send their last event and end at once; wait a little for them (a page that
    // stopped reading cannot hold the caller for long).
    let deadline = Instant::now() + Duration::from_secs(2);
    while inner.clients.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    *lock(&inner.bound) = None;
}

/// The server's thread: answer requests, and aggregate every [`TICK`].
fn serve_loop(inner: &Arc<Inner>, http: &tiny_http::Server, stop: &AtomicBool) {
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next_tick {
            let mut agg = lock(&inner.agg);
            tick(inner, &mut agg);
            next_tick = now + TICK;
        }
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match http.recv_timeout(wait) {
            Ok(Some(request)) => respond(inner, request),
            Ok(None) => {}
            // The listener failed: nothing more can be served.
            Err(_) => break,
        }
    }
    // Requests already accepted would wait forever once this thread is gone (tiny_http
    // keeps their connections open): answer them until none has come for a moment.
    while let Ok(Some(request)) = http.recv_timeout(Duration::from_millis(50)) {
        let _ = request.respond(
            tiny_http::Response::from_string("the dashboard stopped\n").with_status_code(503),
        );
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn respond(inner: &Arc<Inner>, request: tiny_http::Request) {
    use tiny_http::{Method, Response};
    let path = request.url().split('?').next().unwrap_or("/").to_string();
    if !matches!(request.method(), Method::Get | Method::Head) {
        let _ = request.respond(Response::from_string("only GET\n").with_status_code(405));
        return;
    }
    // Errors answering a page (it went away) concern only that page.
    let _ = match path.as_str() {
        "/" | "/index.html" => request.respond(
            Response::from_string(page())
                .with_header(header("Content-Type", "text/html; charset=utf-8"))
                .with_header(header("Cache-Control", "no-store")),
        ),
        "/state" => {
            let json = {
                let mut agg = lock(&inner.agg);
                agg.delta(&mut Cursor::default())
            };
            request.respond(
                Response::from_string(json)
                    .with_header(header("Content-Type", "application/json"))
                    .with_header(header("Cache-Control", "no-store")),
            )
        }
        "/events" => {
            let inner = inner.clone();
            inner.clients.fetch_add(1, Ordering::AcqRel);
            let spawned = std::thread::Builder::new()
                .name("dashboard-stream".into())
                .spawn({
                    let inner = inner.clone();
                    move || {
                        let _ = stream(&inner, request.into_writer());
                        inner.clients.fetch_sub(1, Ordering::AcqRel);
                    }
                });
            if spawned.is_err() {
                inner.clients.fetch_sub(1, Ordering::AcqRel);
            }
            Ok(())
        }
        _ => request.respond(Response::from_string("not found\n").with_status_code(404)),
    };
}

/// The page, with the shared script and style inline.
fn page() -> String {
    super::report::fill(
        PAGE,
        &[
            ("/*STYLE*/", super::report::STYLE),
            ("/*SCRIPT*/", super::report::SCRIPT),
        ],
    )
}

/// One page's event stream: an event whenever the state changes (at most every tick), a
/// comment every two seconds otherwise, and a last event and `close` when the dashboard
/// stops.
fn stream(inner: &Inner, mut out: Box<dyn Write + Send>) -> io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\nretry: 1000\n\n",
    )?;
    out.flush()?;
    let mut cursor = Cursor::default();
    let mut seen = u64::MAX;
    loop {
        let (json, stopping) = {
            let mut agg = lock(&inner.agg);
            let deadline = Instant::now() + Duration::from_secs(2);
            while agg.seq == seen && !agg.stopping {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                agg = inner
                    .changed
                    .wait_timeout(agg, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if agg.seq == seen && !agg.stopping {
                (None, false)
            } else {
                seen = agg.seq;
                (Some(agg.delta(&mut cursor)), agg.stopping)
            }
        };
        match json {
            Some(json) => {
                out.write_all(b"data: ")?;
                out.write_all(json.as_bytes())?;
                out.write_all(b"\n\n")?;
            }
            None => out.write_all(b": idle\n\n")?,
        }
        if stopping {
            out.write_all(b"event: close\ndata: the dashboard stopped\n\n")?;
            out.flush()?;
            return Ok(());
        }
        out.flush()?;
    }
}

/// Drain the workers' buffers into the aggregate, sample, and wake the streams.
fn tick(inner: &Inner, agg: &mut Agg) {
    if agg.run == 0 {
        return;
    }
    agg.resolve_ops();
    let mut raws: Vec<Raw> = Vec::new();
    let mut running: Vec<Option<(u32, Instant)>> = Vec::with_capacity(SHARDS);
    for s in inner.shards.iter() {
        raws.append(&mut lock(&s.records));
        let id = s.running.load(Ordering::Relaxed);
        let since = epoch() + Duration::from_nanos(s.since.load(Ordering::Relaxed));
        running.push(id.checked_sub(1).map(|id| (id as u32, since)));
    }
    let started = agg.started;
    let secs = |t: Instant| t.saturating_duration_since(started).as_secs_f64();
    let changed = !raws.is_empty();
    raws.sort_by_key(|r| r.start);
    for r in raws {
        let Some(&op) = agg.op_of.get(r.id as usize) else {
            continue;
        };
        let o = &mut agg.ops[op as usize];
        o.done += 1;
        o.busy += r.dur.as_secs_f64();
        agg.done += 1;
        agg.task_seq += 1;
        let start = secs(r.start);
        let row = Row {
            seq: agg.task_seq,
            id: r.id,
            worker: r.worker,
            op,
            start,
            end: start + r.dur.as_secs_f64(),
        };
        agg.tasks.push_back(row);
    }
    while agg.tasks.len() > HISTORY_TASKS {
        agg.tasks.pop_front();
    }
    if agg.status == "running" {
        let workers = agg.workers.max(1);
        agg.running = (0..workers)
            .map(|w| {
                running
                    .get(w)
                    .copied()
                    .flatten()
                    .and_then(|(id, t)| agg.op_of.get(id as usize).map(|&op| (op, secs(t))))
            })
            .collect();
    } else {
        agg.running.clear();
    }
    if agg.status == "running" || changed || agg.samples.is_empty() {
        agg.sample();
    }
    agg.seq += 1;
    inner.changed.notify_all();
}

impl Agg {
    /// A new run of `plan` starts.
    fn begin(&mut self, plan: &Plan) {
        self.run += 1;
        self.status = "running";
        self.started = Instant::now();
        self.ended = None;
        self.workers = 0;
        self.keys = (0..plan.len()).map(|i| plan.key(i).clone()).collect();
        self.labels = plan.labels();
        self.op_of.clear();
        self.ops.clear();
        self.done = 0;
        self.limit = plan.memory_limit();
        self.meter = None;
        self.peak_held = 0;
        self.tasks.clear();
        self.samples.clear();
        self.last_cpu = None;
        self.running.clear();
        self.failure = None;
        self.seq += 1;
    }

    /// Map every task of the run to its operation (once per run, on the server's thread).
    /// Tasks of one array share their name's allocation, so most lookups are by pointer.
    fn resolve_ops(&mut self) {
        if self.op_of.len() == self.keys.len() {
            return;
        }
        let mut by_ptr: FxHashMap<usize, u32> = FxHashMap::default();
        let mut by_name: FxHashMap<String, u32> = FxHashMap::default();
        let mut op_of = Vec::with_capacity(self.keys.len());
        let mut ops: Vec<OpRow> = Vec::new();
        for (key, label) in self.keys.iter().zip(&self.labels) {
            let ptr = match label {
                Some(l) => Arc::as_ptr(l) as *const u8 as usize,
                None => Arc::as_ptr(key.shared_name()) as *const u8 as usize,
            };
            let op = match by_ptr.get(&ptr) {
                Some(&op) => op,
                None => {
                    let name = label.as_deref().unwrap_or_else(|| key.prefix());
                    let op = *by_name.entry(name.to_string()).or_insert_with(|| {
                        ops.push(OpRow {
                            name: name.to_string(),
                            total: 0,
                            done: 0,
                            busy: 0.0,
                        });
                        ops.len() as u32 - 1
                    });
                    by_ptr.insert(ptr, op);
                    op
                }
            };
            ops[op as usize].total += 1;
            op_of.push(op);
        }
        self.op_of = op_of;
        self.ops = ops;
    }

    /// Record the bytes held, the resident memory and the CPU now.
    fn sample(&mut self) {
        let now = Instant::now();
        let held = self.meter.as_ref().map_or(0, |m| m.live());
        self.peak_held = self.peak_held.max(held);
        let usage = process_usage();
        let cpu = match (self.last_cpu, usage) {
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
            self.last_cpu = Some((now, u.cpu));
        }
        self.sample_seq += 1;
        self.samples.push_back(SampleRow {
            seq: self.sample_seq,
            t: now.saturating_duration_since(self.started).as_secs_f64(),
            held,
            rss: usage.map_or(0, |u| u.rss),
            cpu,
        });
        while self.samples.len() > HISTORY_SAMPLES {
            self.samples.pop_front();
        }
    }

    fn elapsed(&self) -> f64 {
        self.ended
            .unwrap_or_else(|| self.started.elapsed().as_secs_f64())
    }

    /// The page's JSON: the state now, and the tasks and samples `cursor` has not seen (all
    /// of this run's, newest [`TASKS_PER_EVENT`], when it saw another run).
    fn delta(&mut self, cursor: &mut Cursor) -> String {
        let reset = cursor.run != self.run;
        if reset {
            *cursor = Cursor {
                run: self.run,
                ..Cursor::default()
            };
        }
        let now = self.elapsed();
        let mut j = Json::new();
        j.raw("{").key("run").int(self.run);
        j.raw(",")
            .key("reset")
            .raw(if reset { "true" } else { "false" });
        j.raw(",").key("status").str(self.status);
        j.raw(",").key("elapsed").num(now, 4);
        j.raw(",").key("planned").int(self.keys.len() as u128);
        j.raw(",").key("done").int(self.done as u128);
        j.raw(",").key("workers").int(self.workers as u128);
        j.raw(",").key("limit").opt_int(self.limit);
        j.raw(",").key("peak_held").int(self.peak_held as u128);
        j.raw(",").key("failure").opt_str(self.failure.as_deref());
        j.raw(",").key("ops").raw("[");
        let mut running_per_op = vec![0usize; self.ops.len()];
        for (_, op) in self.running.iter().flatten().map(|&(op, s)| (s, op)) {
            if let Some(r) = running_per_op.get_mut(op as usize) {
                *r += 1;
            }
        }
        for (i, o) in self.ops.iter().enumerate() {
            if i > 0 {
                j.raw(",");
            }
            j.raw("{").key("name").str(&o.name);
            j.raw(",").key("total").int(o.total as u128);
            j.raw(",").key("done").int(o.done as u128);
            j.raw(",").key("running").int(running_per_op[i] as u128);
            j.raw(",").key("busy").num(o.busy, 6).raw("}");
        }
        j.raw("]");
        j.raw(",").key("running").raw("[");
        let mut first = true;
        for (w, r) in self.running.iter().enumerate() {
            if let Some((op, start)) = r {
                if !first {
                    j.raw(",");
                }
                first = false;
                j.raw("[").int(w as u128).raw(",").int(*op).raw(",");
                j.num(*start, 6).raw("]");
            }
        }
        j.raw("]");
        // Occupancy over the last second, per worker.
        let from = (now - OCCUPANCY_WINDOW).max(0.0);
        let span = (now - from).max(1e-9);
        let workers = self.workers.max(self.running.len());
        let mut busy = vec![0.0f64; workers];
        for t in self.tasks.iter().rev() {
            if t.end < from - 60.0 {
                break;
            }
            if let Some(b) = busy.get_mut(t.worker as usize) {
                *b += (t.end.min(now) - t.start.max(from)).max(0.0);
            }
        }
        for (w, r) in self.running.iter().enumerate() {
            if let (Some((_, start)), Some(b)) = (r, busy.get_mut(w)) {
                *b += (now - start.max(from)).max(0.0);
            }
        }
        j.raw(",").key("occupancy");
        j.nums(busy.iter().map(|b| (b / span).min(1.0)), 3);
        // New tasks, the newest at most.
        let new = self
            .tasks
            .iter()
            .filter(|t| t.seq > cursor.task_seq)
            .count();
        let skip = new.saturating_sub(TASKS_PER_EVENT);
        j.raw(",").key("tasks").raw("[");
        let mut first = true;
        for t in self
            .tasks
            .iter()
            .filter(|t| t.seq > cursor.task_seq)
            .skip(skip)
        {
            if !first {
                j.raw(",");
            }
            first = false;
            j.raw("[").int(t.worker).raw(",").int(t.op).raw(",");
            j.num(t.start, 6).raw(",").num(t.end, 6).raw(",");
            j.str(&self.keys[t.id as usize].to_string()).raw("]");
        }
        j.raw("]");
        cursor.task_seq = self.task_seq;
        j.raw(",").key("samples").raw("[");
        let mut first = true;
        for s in self.samples.iter().filter(|s| s.seq > cursor.sample_seq) {
            if !first {
                j.raw(",");
            }
            first = false;
            j.raw("[").num(s.t, 4).raw(",").int(s.held as u128).raw(",");
            j.int(s.rss as u128).raw(",").num(s.cpu, 3).raw("]");
        }
        j.raw("]");
        cursor.sample_seq = self.sample_seq;
        j.raw("}");
        j.0
    }
}

impl Callbacks for Dashboard {
    fn on_start(&self, plan: &Plan) {
        let inner = self.inner();
        {
            let mut agg = lock(&inner.agg);
            // Leftovers of the previous run belong to it.
            tick(inner, &mut agg);
            for s in inner.shards.iter() {
                s.running.store(0, Ordering::Relaxed);
            }
            agg.begin(plan);
        }
        if inner.per_run {
            match start(inner) {
                Ok(()) => *lock(&inner.error) = None,
                Err(e) => {
                    eprintln!("{e}; the run goes on without it");
                    *lock(&inner.error) = Some(e.to_string());
                }
            }
        }
    }

    fn on_run_info(&self, info: &RunInfo) {
        let mut agg = lock(&self.inner().agg);
        agg.workers = info.workers;
        agg.meter = Some(info.held.clone());
    }

    fn on_task_start(&self, task: &TaskEvent<'_>) {
        let s = &self.inner().shards[task.worker % SHARDS];
        let since = task.start.saturating_duration_since(epoch()).as_nanos() as u64;
        s.since.store(since, Ordering::Relaxed);
        s.running.store(task.id as u64 + 1, Ordering::Relaxed);
    }

    fn on_task_finish(&self, task: &TaskEvent<'_>) {
        let s = &self.inner().shards[task.worker % SHARDS];
        s.running.store(0, Ordering::Relaxed);
        lock(&s.records).push(Raw {
            id: task.id as u32,
            worker: task.worker as u32,
            start: task.start,
            dur: task.elapsed,
        });
    }

    fn on_task_fail(&self, key: &Key, error: &Error) {
        let mut agg = lock(&self.inner().agg);
        if agg.failure.is_none() {
            agg.failure = Some(format!("{key}: {error}"));
        }
    }

    fn on_finish(&self, stats: Option<&RunStats>) {
        let inner = self.inner();
        {
            let mut agg = lock(&inner.agg);
            agg.ended = Some(agg.started.elapsed().as_secs_f64());
            agg.status = if stats.is_some() {
                "finished"
            } else {
                "failed"
            };
            if let Some(s) = stats {
                agg.peak_held = agg.peak_held.max(s.peak_bytes);
            } else if agg.failure.is_none() {
                agg.failure = Some("the run failed or was cancelled".into());
            }
            if inner.per_run {
                // The server stops now: count everything before the last event.
                tick(inner, &mut agg);
            } else {
                agg.seq += 1;
                inner.changed.notify_all();
            }
        }
        if inner.per_run {
            stop(inner);
        }
    }
}
