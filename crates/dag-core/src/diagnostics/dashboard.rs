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
//! The HTTP side is the standard library's sockets and a few lines of HTTP/1.1: the pages ask
//! for three paths with `GET`, and what matters is that no client can hold the server. So the
//! server's thread only accepts (a non-blocking listener, polled between ticks) and never
//! touches a connection; each connection is answered on a thread of its own (at most
//! [`MAX_CONNECTIONS`] at once, more are refused with 503), reads one request and gets one
//! response with `Connection: close`. The request head must arrive within [`IO_TIMEOUT`], and
//! each response, and each event of a stream, must be taken within it too (a deadline for the
//! whole, not per write: a client reading a byte now and then cannot keep a connection). A
//! client that sends its request slowly, pipelines requests and never reads, or stops reading
//! its event stream therefore costs one thread for a few seconds, and stopping the dashboard
//! never waits for it: the port is closed when stopping returns, event streams end with their
//! last event, and any other connection ends within its deadlines (at most
//! 2 · [`IO_TIMEOUT`] + [`LINGER`]). (`tiny_http`, used before, has none of these bounds: no
//! timeouts at all, pipelined requests read and queued whatever the server wants, an
//! unanswered request answered with a blocking write when dropped, and an accept loop that
//! ends at the first failed accept.)
//!
//! When the dashboard stops it sends every page a last snapshot and a `close` event; the page
//! then closes its stream and keeps showing the final state.

use super::process_usage;
use crate::{Callbacks, Error, Key, MemoryMeter, Plan, RunInfo, RunStats, TaskEvent};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{AssertUnwindSafe, catch_unwind};
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
/// The longest a client may take to send its request head, or to take a whole response or
/// one event of its stream (a page that stops reading its event stream loses it after this).
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections answered at once; more are refused with 503 until some are done.
const MAX_CONNECTIONS: usize = 64;
/// The longest request head read (a browser's is well under 2 KiB).
const MAX_HEAD: usize = 16 << 10;
/// How long the server's thread sleeps when there is nothing to accept.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// After a response: how long, and how many bytes, a connection is drained before it closes.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 << 10;

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
    cpu_rate: super::resources::CpuRate,
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
    /// Connections being answered (event streams included).
    connections: AtomicUsize,
    /// Why the last attempt to listen failed, if it did.
    error: Mutex<Option<String>>,
}

/// The running server: its thread and stop flag.
struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A live dashboard in the browser, as [`Callbacks`]: while a computation runs it serves a
/// page on the address it is given (such as [`DEFAULT_ADDR`], `http://127.0.0.1:8787/`) showing
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
/// clone is dropped, across any number of runs. Either way it binds the address it is given
/// (a loopback one keeps it to this machine), and costs the run no more than the
/// [`Profiler`](super::Profiler): the callbacks
/// only append to per-worker buffers, and the server's thread does the rest every 100 ms.
///
/// Needs the `dashboard` cargo feature of `dag-core`.
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
                cpu_rate: super::resources::CpuRate::new(),
                running: Vec::new(),
                failure: None,
            }),
            changed: Condvar::new(),
            addrs,
            per_run,
            server: Mutex::new(None),
            bound: Mutex::new(None),
            clients: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
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
    let cannot = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("the dashboard cannot listen on {}: {e}", inner.addrs[0]),
        )
    };
    let listener = TcpListener::bind(&inner.addrs[..]).map_err(cannot)?;
    listener.set_nonblocking(true).map_err(cannot)?;
    let bound = listener.local_addr().ok();
    lock(&inner.agg).stopping = false;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (inner, stop) = (inner.clone(), stop.clone());
        std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || serve_loop(&inner, listener, &stop))?
    };
    *lock(&inner.bound) = bound;
    *server = Some(Server { stop, thread });
    Ok(())
}

/// Stop the server, if running: the port is closed when this returns, and pages get a last
/// snapshot and a `close` event.
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
    // stopped reading cannot hold the caller for long: its writes time out on their own).
    let deadline = Instant::now() + Duration::from_secs(2);
    while inner.clients.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    *lock(&inner.bound) = None;
}

/// The server's thread: accept connections (each answered on a thread of its own), and
/// aggregate every [`TICK`]. It never reads from or writes to a connection, so no page can
/// hold it; the listener is closed when it returns.
fn serve_loop(inner: &Arc<Inner>, listener: TcpListener, stop: &AtomicBool) {
    let mut next_tick = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next_tick {
            let mut agg = lock(&inner.agg);
            tick(inner, &mut agg);
            next_tick = now + TICK;
        }
        match listener.accept() {
            Ok((conn, _)) => accept(inner, conn),
            // Nothing to accept, or an accept that failed (the peer gave up, or no descriptor
            // is left): that concerns one connection, so wait a moment and go on.
            Err(_) => {
                let wait = next_tick.saturating_duration_since(Instant::now());
                std::thread::sleep(wait.min(ACCEPT_POLL));
            }
        }
    }
}

/// Answer `conn` on a thread of its own, or refuse it at once when [`MAX_CONNECTIONS`] are
/// being answered.
fn accept(inner: &Arc<Inner>, conn: TcpStream) {
    if inner.connections.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        inner.connections.fetch_sub(1, Ordering::AcqRel);
        // Without blocking: take what the client sent (an unread request would turn the close
        // into a reset that can destroy the answer), then answer. A new connection's send
        // buffer is empty, so the short answer goes out whole.
        let _ = conn.set_nonblocking(true);
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            if !matches!((&conn).read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = (&conn).write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = conn.shutdown(std::net::Shutdown::Write);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("dashboard-connection".into())
        .spawn({
            let inner = inner.clone();
            move || {
                // A panic answering one page concerns that page only.
                let _ = catch_unwind(AssertUnwindSafe(|| serve_connection(&inner, conn)));
                inner.connections.fetch_sub(1, Ordering::AcqRel);
            }
        });
    if spawned.is_err() {
        inner.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a request cannot be answered as asked: a status and its reason phrase.
struct Refusal(u16, &'static str);

/// Read one request from `conn` and answer it, then close the connection: one request per
/// connection (`Connection: close`), every read and write bounded by [`IO_TIMEOUT`].
///
/// A request that arrives over loopback (whatever address the server listens on: a loopback
/// one, or every address) is answered only if it is addressed to this machine (`Host`
/// `localhost`, `127.0.0.1`, `[::1]`, `0.0.0.0`, the host name; any port, see
/// [`is_local_host`]): a web page from elsewhere whose name its owner made resolve to
/// 127.0.0.1 (DNS rebinding) would otherwise read the dashboard.
fn serve_connection(inner: &Inner, mut conn: TcpStream) {
    if conn.set_nonblocking(false).is_err() {
        return;
    }
    // `::ffff:127.0.0.1` on a dual-stack listener is loopback too.
    let loopback = conn
        .local_addr()
        .is_ok_and(|a| a.ip().to_canonical().is_loopback());
    let _ = conn.set_nodelay(true);
    // Errors answering a page (it went away, or stopped reading) concern only that page.
    let _ = match read_request(&mut conn) {
        Ok(Some(Request {
            host: Some(host), ..
        })) if loopback && !is_local_host(&host) => reply(
            &mut conn,
            403,
            "Forbidden",
            "text/plain",
            "",
            format!(
                "over loopback, this dashboard answers requests for localhost only, not for \
                     {host}\n"
            )
            .as_bytes(),
            false,
        ),
        Ok(Some(r)) => answer(inner, &mut conn, &r.method, &r.target),
        Ok(None) => return,
        Err(Refusal(status, reason)) => reply(
            &mut conn,
            status,
            reason,
            "text/plain",
            "",
            format!("{reason}\n").as_bytes(),
            false,
        ),
    };
    close(conn);
}

/// What is read of a request.
struct Request {
    method: String,
    /// The path and query.
    target: String,
    /// The `Host` header, if sent.
    host: Option<String>,
}

/// Whether `host` (a `Host` header: a name or address, and maybe a port) names this machine:
/// `localhost`, a loopback address, the unspecified address a server on every address prints
/// as its URL (`0.0.0.0`, `[::]`), or the machine's own host name (which Debian resolves to
/// 127.0.1.1). None of these is a name a web page elsewhere can make its own.
fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| {
            let ip = ip.to_canonical();
            ip.is_loopback() || ip.is_unspecified()
        })
        || machine_name().is_some_and(|m| name.eq_ignore_ascii_case(&m))
}

/// This machine's host name, if it has one that can be read.
fn machine_name() -> Option<String> {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: `gethostname` writes at most `buf.len()` bytes into `buf`.
        let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if r != 0 {
            return None;
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8(buf[..end].to_vec())
            .ok()
            .filter(|n| !n.is_empty())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The request on `conn`; `None` if the client closed the connection or did not send a whole
/// request head within [`IO_TIMEOUT`] (it gets no answer).
fn read_request(conn: &mut TcpStream) -> Result<Option<Request>, Refusal> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        // A blank line before the request line is skipped, as HTTP asks.
        let blank = head
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        head.drain(..blank);
        if let Some(end) = head_end(&head) {
            break end;
        }
        if head.len() > MAX_HEAD {
            return Err(Refusal(431, "Request Header Fields Too Large"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return Ok(None);
        }
        match conn.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(None),
        }
    };
    let head = String::from_utf8_lossy(&head[..end]);
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if !method.is_empty() && origin_form(target).is_some() =>
        {
            if version.starts_with("HTTP/1.") {
                let host = head.lines().skip(1).find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("host")
                        .then(|| value.trim().to_string())
                });
                Ok(Some(Request {
                    method: method.to_string(),
                    target: origin_form(target).unwrap_or("/").to_string(),
                    host,
                }))
            } else {
                Err(Refusal(505, "HTTP Version Not Supported"))
            }
        }
        _ => Err(Refusal(400, "Bad Request")),
    }
}

/// The path and query of a request target: itself when it starts with `/`, the part after
/// the authority of an absolute one (`http://host:port/path`, which servers must accept),
/// `None` for anything else.
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    Some(rest.find('/').map_or("/", |at| &rest[at..]))
}

/// Where the request head in `buf` ends (its blank line, with CRLF or bare LF line ends, or
/// both mixed), if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&i| {
        let rest = &buf[i..];
        rest.starts_with(b"\n\n") || rest.starts_with(b"\n\r\n")
    })
}

/// Answer `method target` on `conn`.
fn answer(inner: &Inner, conn: &mut TcpStream, method: &str, target: &str) -> io::Result<()> {
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return reply(
                conn,
                405,
                "Method Not Allowed",
                "text/plain",
                "Allow: GET, HEAD\r\n",
                b"only GET and HEAD\n",
                false,
            );
        }
    };
    let path = target.split('?').next().unwrap_or("/");
    match path {
        "/" | "/index.html" => reply(
            conn,
            200,
            "OK",
            "text/html; charset=utf-8",
            "",
            page().as_bytes(),
            head_only,
        ),
        "/state" => {
            let json = lock(&inner.agg).delta(&mut Cursor::default());
            reply(
                conn,
                200,
                "OK",
                "application/json",
                "",
                json.as_bytes(),
                head_only,
            )
        }
        "/events" => {
            inner.clients.fetch_add(1, Ordering::AcqRel);
            let streamed = catch_unwind(AssertUnwindSafe(|| stream(inner, conn, head_only)));
            inner.clients.fetch_sub(1, Ordering::AcqRel);
            streamed.unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        }
        _ => reply(
            conn,
            404,
            "Not Found",
            "text/plain",
            "",
            b"not found\n",
            head_only,
        ),
    }
}

/// Write a whole response within [`IO_TIMEOUT`]: status, headers (`Connection: close`, then
/// `extra`, whole lines) and, unless `head_only`, `body`.
#[allow(clippy::too_many_arguments)]
fn reply(
    conn: &mut TcpStream,
    status: u16,
    reason: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let mut out = Timed::new(conn);
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all(body)?;
    }
    Ok(())
}

/// Writes to a connection that must take each whole response, or each event of a stream,
/// within [`IO_TIMEOUT`]: every write waits at most what is left of it (a timeout per write
/// would let a client reading a byte now and then hold the connection for ever).
struct Timed<'a> {
    conn: &'a TcpStream,
    deadline: Instant,
}

impl<'a> Timed<'a> {
    fn new(conn: &'a TcpStream) -> Timed<'a> {
        Timed {
            conn,
            deadline: Instant::now() + IO_TIMEOUT,
        }
    }

    /// A new deadline, for the next event.
    fn renew(&mut self) {
        self.deadline = Instant::now() + IO_TIMEOUT;
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the page did not take its answer in time",
            ));
        }
        self.conn.set_write_timeout(Some(left))?;
        let mut conn = self.conn;
        conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Close `conn` after its response: end our side, then read and drop what the client still
/// sends (at most [`LINGER_BYTES`], for at most [`LINGER`]), so that unread bytes do not turn
/// the close into a reset that could destroy the response before the client has read it.
fn close(mut conn: TcpStream) {
    if conn.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut read = 0;
    while read < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
    }
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
/// stops. A page that stops reading ends its stream: a write that cannot go on within
/// [`IO_TIMEOUT`] fails.
fn stream(inner: &Inner, conn: &TcpStream, head_only: bool) -> io::Result<()> {
    let mut out = Timed::new(conn);
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
          Connection: close\r\n\r\n",
    )?;
    if head_only {
        return out.flush();
    }
    out.write_all(b"retry: 1000\n\n")?;
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
        out.renew();
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
    // Pages hear of a tick only when there is something new: while a run goes on, or when
    // tasks were recorded; an idle dashboard's streams get a comment every two seconds.
    if agg.status == "running" || changed || agg.samples.is_empty() {
        agg.sample();
        agg.seq += 1;
        inner.changed.notify_all();
    }
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
        self.cpu_rate = super::resources::CpuRate::new();
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
        let cpu = usage.map_or(0.0, |u| self.cpu_rate.rate(now, u.cpu));
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
            // Count everything before the event that says the run ended: no later tick may
            // find this run's tasks still in the buffers.
            tick(inner, &mut agg);
            agg.seq += 1;
            inner.changed.notify_all();
        }
        if inner.per_run {
            stop(inner);
        }
    }
}
