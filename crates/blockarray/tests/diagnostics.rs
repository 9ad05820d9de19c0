//! Diagnostics on array computations: profiles against the plan, the dashboard over HTTP
//! (without a browser; `browser.rs` loads it in Chromium), and visualize.

use blockarray::diagnostics::{Dashboard, Profiler, graphviz_available};
use blockarray::{BlockArray, Computation, MAX_DRAWN_TASKS, s};
use dag_core::Scheduler;
use sched_sync::SyncScheduler;
use sched_threaded::ThreadedScheduler;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("blockarray-diag-{}-{name}", std::process::id()))
}

/// `GET path` from `url` (`http://host:port/`): the status code and the body.
fn get(url: &str, path: &str) -> std::io::Result<(u16, String)> {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

/// The number after `"name":` in a JSON text.
fn field(json: &str, name: &str) -> Option<f64> {
    let at = json.find(&format!("\"{name}\":"))? + name.len() + 3;
    let rest = &json[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn a_profile_of_an_array_run_matches_its_plan() {
    let x = BlockArray::<f64>::ones(&[1000, 1000], [100, 100]).unwrap();
    let y = (&x + &x.t()).unwrap().sum(Some(&[0]), false).unwrap();
    for s in [
        Box::new(SyncScheduler::new()) as Box<dyn Scheduler>,
        Box::new(ThreadedScheduler::builder().threads(2).build().unwrap()),
    ] {
        let mut c = Computation::new();
        let h = c.add(&y);
        let plan = c.plan(&*s).unwrap();
        let profiler = Profiler::new();
        let (mut out, stats) = c.run_with(&*s, &profiler).unwrap();
        assert!(out.take(h).unwrap().iter().all(|&v| v == 2000.0));
        let p = profiler.last().unwrap();
        assert_eq!(p.tasks.len(), plan.tasks);
        assert_eq!(
            p.stats.as_ref().map(|s| s.peak_bytes),
            Some(stats.peak_bytes)
        );
        // Fused tasks are named by their chain of operations.
        assert!(
            p.operations.iter().any(|o| o.contains('+')),
            "{:?}",
            p.operations
        );
        // Every 100 × 100 block of x is read once by a fused task producing a partial sum.
        let bytes_out: usize = p.tasks.iter().map(|t| t.bytes_out).sum();
        assert!(bytes_out > 0);
    }
}

#[test]
fn the_dashboard_serves_its_page_state_and_stream() {
    let d = Dashboard::serve("127.0.0.1:0").unwrap();
    let url = d.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (status, page) = get(&url, "/").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("blockarray dashboard") && page.contains("EventSource"));
    for needle in ["src=\"http", "href=\"http", "@import"] {
        assert!(
            !page.contains(needle),
            "the page loads nothing from elsewhere: {needle}"
        );
    }
    assert_eq!(get(&url, "/nothing-here").unwrap().0, 404);
    let (_, idle) = get(&url, "/state").unwrap();
    assert_eq!(field(&idle, "run"), Some(0.0), "{idle}");

    // A stream opened before the run sees it, and a close event when the dashboard stops.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream_opened(&d);

    let x = BlockArray::<f64>::ones(&[600, 600], [50, 50]).unwrap();
    let total = x.sum(None, false).unwrap();
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    let (v, stats) = total.compute_with_callbacks(&s, &d).unwrap();
    assert_eq!(v.into_iter().next(), Some(360_000.0));
    let state = d.snapshot();
    assert_eq!(field(&state, "run"), Some(1.0));
    assert_eq!(
        field(&state, "planned"),
        Some(stats.tasks as f64),
        "{state}"
    );
    assert_eq!(field(&state, "done"), Some(stats.tasks as f64), "{state}");
    assert!(state.contains(r#""status":"finished""#));
    let (_, served) = get(&url, "/state").unwrap();
    assert_eq!(field(&served, "done"), Some(stats.tasks as f64));

    drop(d);
    let mut events = String::new();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        events.push_str(&line);
        line.clear();
        if events.contains("event: close") {
            break;
        }
    }
    assert!(
        events.starts_with("HTTP/1.1 200"),
        "{}",
        &events[..events.len().min(200)]
    );
    assert!(events.contains("text/event-stream"));
    assert!(
        events.contains("event: close"),
        "the stream ends with a close event"
    );
    let last = events
        .lines()
        .rfind(|l| l.starts_with("data: {"))
        .expect("at least one event");
    assert_eq!(field(last, "done"), Some(stats.tasks as f64), "{last}");
    // The server is gone.
    assert!(get(&url, "/").is_err());
}

#[test]
fn a_dashboard_for_one_run_serves_only_while_it_runs() {
    let d = Dashboard::new("127.0.0.1:0").unwrap();
    assert!(!d.is_serving());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let x = {
        let (d, seen) = (d.clone(), seen.clone());
        BlockArray::<f64>::from_fn(&[4], [2], blockarray::OpName::unique("probe"), move |_| {
            // Inside the run: the page is served.
            let state = get(&d.url(), "/state").map(|(_, b)| b).ok();
            seen.lock().unwrap().get_or_insert((d.is_serving(), state));
            1.0
        })
        .unwrap()
    };
    let v = x
        .compute_with_callbacks(&SyncScheduler::new(), &d)
        .unwrap()
        .0;
    assert_eq!(v.sum(), 4.0);
    let (serving, state) = seen.lock().unwrap().take().expect("the task ran");
    assert!(serving);
    let state = state.expect("the state was served during the run");
    assert!(state.contains(r#""status":"running""#), "{state}");
    assert!(!d.is_serving(), "stopped with the run");
    assert!(d.error().is_none());
}

#[test]
fn dashboard_addresses_that_cannot_be_used_are_errors() {
    let e = Dashboard::serve("127.0.0.1:notaport").unwrap_err();
    assert!(e.to_string().contains("127.0.0.1:notaport"), "{e}");
    let first = Dashboard::serve("127.0.0.1:0").unwrap();
    let taken = first
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let e = Dashboard::serve(taken.as_str()).unwrap_err();
    assert!(e.to_string().contains(&taken), "{e}");
    // A dashboard for one run whose port is taken lets the run go on, and says why.
    let d = Dashboard::new(taken.as_str()).unwrap();
    let x = BlockArray::<f64>::ones(&[10], [5]).unwrap();
    let v = x
        .sum(None, false)
        .unwrap()
        .compute_with_callbacks(&SyncScheduler::new(), &d)
        .unwrap()
        .0;
    assert_eq!(v.into_iter().next(), Some(10.0));
    assert!(d.error().unwrap().contains(&taken));
}

/// Wait (at most 10 s) until `d` answers a client: the event stream just asked for.
fn stream_opened(d: &Dashboard) {
    let t = Instant::now();
    while d.clients() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the stream never opened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The host and port of a dashboard's `url`.
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Send `request` as is on a new connection and read until the server closes it.
fn raw(url: &str, request: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(host_of(url))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut text = Vec::new();
    s.read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Run `f` on a thread and wait for it at most `secs` seconds: `None` if it did not return
/// (a hang fails the test instead of hanging it).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

#[test]
fn no_client_can_hold_the_dashboard() {
    let d = Dashboard::serve("127.0.0.1:0").unwrap();
    let url = d.url();
    let host = host_of(&url);
    // A client that connects and never sends its request.
    let _silent = TcpStream::connect(&host).unwrap();
    // A client that pipelines many requests for the page and never reads an answer.
    let mut pipelined = TcpStream::connect(&host).unwrap();
    let one = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
    pipelined.write_all(one.repeat(2000).as_bytes()).unwrap();
    // A page that opens its event stream and never reads it.
    let mut deaf = TcpStream::connect(&host).unwrap();
    write!(deaf, "GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();

    // Other pages are answered meanwhile, and runs go on.
    assert_eq!(get(&url, "/state").unwrap().0, 200);
    let x = BlockArray::<f64>::ones(&[400, 400], [20, 20]).unwrap();
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    let (v, _) = x
        .sum(None, false)
        .unwrap()
        .compute_with_callbacks(&s, &d)
        .unwrap();
    assert_eq!(v.into_iter().next(), Some(160_000.0));
    assert_eq!(get(&url, "/").unwrap().0, 200);

    // Keep-alive is not offered: a request that does not ask to close gets its answer and
    // the end of the connection.
    let kept = raw(
        &url,
        format!("GET /state HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .expect("the server closes the connection after one response");
    assert!(kept.starts_with("HTTP/1.1 200"), "{kept}");
    assert!(kept.contains("Connection: close"), "{kept}");

    // Stopping the dashboard does not wait for any of them, and closes the port.
    assert!(
        within(30, move || drop(d)).is_some(),
        "dropping the dashboard hung"
    );
    assert!(get(&url, "/").is_err(), "the port is closed");
    // The pipelining client got one answer, then the end of its connection.
    pipelined
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answers = Vec::new();
    pipelined
        .read_to_end(&mut answers)
        .expect("the connection was closed after one answer");
    let answers = String::from_utf8_lossy(&answers);
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 1);
    assert!(answers.contains("blockarray dashboard"));
}

#[test]
fn a_page_that_stops_reading_its_stream_loses_it() {
    // Tasks with long keys, slow enough that the stream's events outgrow the socket buffers
    // of a page that reads none of them.
    let name = "a-task-with-a-long-name-".repeat(12);
    let mut g = dag_core::Graph::new();
    let n = 40_000;
    for i in 0..n {
        g.insert(
            dag_core::Key::new(name.as_str(), [i]),
            dag_core::Task::new([], |_: &[dag_core::Value]| {
                std::thread::sleep(Duration::from_micros(100));
                Ok(dag_core::Value::new(1u64))
            }),
        );
    }
    let d = Dashboard::serve("127.0.0.1:0").unwrap();
    let host = host_of(&d.url());
    let mut deaf = TcpStream::connect(&host).unwrap();
    write!(deaf, "GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    stream_opened(&d);
    let keys: Vec<dag_core::Key> = (0..n)
        .map(|i| dag_core::Key::new(name.as_str(), [i]))
        .collect();
    let s = ThreadedScheduler::builder().threads(2).build().unwrap();
    s.compute_with(&g, &keys, &d).unwrap();
    // The dashboard still serves; the stream that could not be written ended on its own.
    let t = Instant::now();
    while d.clients() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "a stream nobody reads kept its thread"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.is_serving());
    assert_eq!(get(&d.url(), "/state").unwrap().0, 200);
    drop(deaf);
}

#[test]
fn bad_requests_to_the_dashboard_are_refused_by_status() {
    let d = Dashboard::serve("127.0.0.1:0").unwrap();
    let url = d.url();
    let host = host_of(&url);
    let status = |request: String| {
        let text = raw(&url, request.as_bytes()).unwrap();
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0)
    };
    let cases = [
        ("NONSENSE\r\n\r\n".to_string(), 400),
        (format!("GET nowhere HTTP/1.1\r\nHost: {host}\r\n\r\n"), 400),
        (format!("POST /state HTTP/1.1\r\nHost: {host}\r\n\r\n"), 405),
        (format!("GET / HTTP/2.0\r\nHost: {host}\r\n\r\n"), 505),
        // What HTTP asks servers to accept: an absolute target, a blank line before the
        // request, bare-LF line ends (also ending in CRLF).
        (
            format!("GET http://{host}/state HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            200,
        ),
        (
            format!("\r\nGET /state HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            200,
        ),
        (format!("GET /state HTTP/1.1\nHost: {host}\n\n"), 200),
        (format!("GET /state HTTP/1.1\nHost: {host}\n\r\n"), 200),
    ];
    for (request, expected) in cases {
        assert_eq!(status(request.clone()), expected, "{request:?}");
    }
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nX: {}\r\n\r\n",
        "y".repeat(40_000)
    );
    assert_eq!(status(huge), 431);
    // HEAD: the headers of the page, without it.
    let head = raw(
        &url,
        format!("HEAD / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "{body}");
    let length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(length, get(&url, "/").unwrap().1.len());
    // A query string does not change the page asked for.
    assert_eq!(get(&url, "/state?x=1").unwrap().0, 200);
    // Requests for another host name are refused (DNS rebinding); loopback names are not.
    let port = host.rsplit_once(':').unwrap().1;
    for (name, expected) in [
        (format!("localhost:{port}"), 200),
        ("LOCALHOST".to_string(), 200),
        (format!("[::1]:{port}"), 200),
        (format!("127.0.0.2:{port}"), 200),
        (format!("evil.example:{port}"), 403),
        ("evil.example".to_string(), 403),
        (format!("10.0.0.1:{port}"), 403),
    ] {
        let request = format!("GET /state HTTP/1.1\r\nHost: {name}\r\n\r\n");
        assert_eq!(status(request), expected, "{name}");
    }
    // Listening on every address, a request that arrives over loopback is checked too.
    let every = Dashboard::serve("0.0.0.0:0").unwrap();
    let port = every
        .url()
        .rsplit_once(':')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string();
    let over_loopback = format!("http://127.0.0.1:{port}/");
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    for (name, expected) in [
        (format!("localhost:{port}"), 200),
        (format!("[::ffff:127.0.0.1]:{port}"), 200),
        // The URL such a dashboard prints, and the machine's own name.
        (format!("0.0.0.0:{port}"), 200),
        (format!("{machine}:{port}"), 200),
        (format!("evil.example:{port}"), 403),
    ] {
        let request = format!("GET /state HTTP/1.1\r\nHost: {name}\r\n\r\n");
        let text = raw(&over_loopback, request.as_bytes()).unwrap();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {expected}")),
            "{name}: {text}"
        );
    }
    let refused = raw(
        &url,
        format!("DELETE / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert!(refused.contains("Allow: GET, HEAD\r\n"), "{refused}");
}

/// An idle dashboard's stream carries a comment every two seconds, not the same state at
/// every tick (it sent an event every 100 ms for ever after the first run).
#[test]
fn an_idle_dashboard_sends_no_events() {
    let d = Dashboard::serve("127.0.0.1:0").unwrap();
    let x = BlockArray::<f64>::ones(&[100], 10).unwrap();
    let s = SyncScheduler::new();
    x.sum(None, false)
        .unwrap()
        .compute_with_callbacks(&s, &d)
        .unwrap();
    let host = host_of(&d.url());
    let mut stream = TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let t = Instant::now();
    let mut buf = [0u8; 65536];
    while t.elapsed() < Duration::from_millis(1500) {
        if let Ok(n) = stream.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    let seen = String::from_utf8_lossy(&seen);
    // The state once, when the page connects; nothing has changed since.
    assert_eq!(seen.matches("data: {").count(), 1, "{seen}");
}

#[test]
fn the_graph_of_operations_has_a_node_per_operation_whatever_the_blocks() {
    let x = BlockArray::<f64>::ones(&[10_000, 10_000], [100, 100]).unwrap();
    let y = (&x + &x.t())
        .unwrap()
        .slice(s![..;2, 5000..])
        .unwrap()
        .mean(Some(&[1]), false)
        .unwrap();
    let dot = y.operations_dot();
    let nodes = dot.lines().filter(|l| l.contains("[label=")).count();
    assert!((4..20).contains(&nodes), "{nodes} nodes:\n{dot}");
    assert!(dot.contains("ones") && dot.contains("mean"));
    // Writing DOT text works at any size; drawing refuses big task graphs with a hint.
    let path = temp("tasks.dot");
    y.visualize(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(text.lines().filter(|l| l.contains("->")).count() > MAX_DRAWN_TASKS);
    let e = y.visualize(temp("tasks.svg")).unwrap_err();
    assert!(e.to_string().contains("visualize_operations"), "{e}");
    let e = y.visualize_operations(temp("ops.gif")).unwrap_err();
    assert!(e.to_string().contains("ops.gif"), "{e}");
}

#[test]
fn graphs_are_drawn_with_graphviz() {
    // CI installs Graphviz (`cargo xtask deps`): its absence is a failure saying so.
    assert!(
        graphviz_available(),
        "Graphviz's dot is missing: install it with `cargo xtask deps` (apt-get install graphviz)"
    );
    let x = BlockArray::<f64>::ones(&[400, 400], [100, 100]).unwrap();
    let y = (&x * 2.0).sum(Some(&[1]), false).unwrap();
    let mut c = Computation::new();
    c.add(&y);
    for (path, magic) in [
        (temp("ops.svg"), &b"<?xml"[..]),
        (temp("ops.png"), &b"\x89PNG"[..]),
    ] {
        c.visualize_operations(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(bytes.starts_with(magic), "{}", path.display());
    }
    let tasks = temp("tasks.svg");
    y.visualize(&tasks).unwrap();
    let svg = std::fs::read_to_string(&tasks).unwrap();
    std::fs::remove_file(&tasks).unwrap();
    // One drawn node per task of the fused graph.
    let (graph, _) = y.lowered(None).unwrap();
    assert_eq!(svg.matches("class=\"node\"").count(), graph.len());
}
