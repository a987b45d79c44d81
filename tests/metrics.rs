//! Runtime metrics (`runtime::metrics`), their Prometheus exposition (`goway::metrics`, served
//! by `http::debug` at `/metrics`) and the health probes (`/healthz`, `/readyz`).
//!
//! The exposition is checked by a strict parser of the Prometheus text format (0.0.4) written
//! here (prometheus-client has only an encoder), and by `promtool check metrics` when promtool
//! is installed (skipped otherwise).
//!
//! Run: `cargo test --release --test metrics`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::{WATCHDOG, client, wait_for, wait_until};
use goway::http::{ServeMux, Server as HttpServer, debug};
use goway::metrics::{DuplicateServer, Registry};

// ----- a strict parser of the Prometheus text format ------------------------------------------

/// A series' labels, sorted.
type Labels = Vec<(String, String)>;

/// One series: metric name and its labels.
type Series = (String, Labels);

/// What a scrape said: every series with its value, and each family's type.
#[derive(Debug, Default)]
struct Exposition {
    values: BTreeMap<Series, f64>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of `name` with exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut l: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.sort();
        self.values.get(&(name.to_string(), l)).copied()
    }

    #[track_caller]
    fn must(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no series {name}{labels:?} in {:#?}", self.values.keys()))
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// `{a="x",b="y"}` (the braces included) into sorted pairs; the rest of the line after it.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let b = s.as_bytes();
    let mut i = 1; // past '{'
    loop {
        if b.get(i) == Some(&b'}') {
            i += 1;
            break;
        }
        let eq = s[i..].find('=').ok_or("label without '='")? + i;
        let name = &s[i..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if b.get(eq + 1) != Some(&b'"') {
            return Err("label value not quoted".into());
        }
        let mut j = eq + 2;
        let mut value = String::new();
        loop {
            match b.get(j) {
                None => return Err("unterminated label value".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    match b.get(j + 1) {
                        Some(b'\\') => value.push('\\'),
                        Some(b'"') => value.push('"'),
                        Some(b'n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    }
                    j += 2;
                }
                Some(_) => {
                    let ch = s[j..].chars().next().ok_or("cut character")?;
                    value.push(ch);
                    j += ch.len_utf8();
                }
            }
        }
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_string(), value));
        i = j + 1;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => {}
            other => return Err(format!("expected ',' or '}}' after a label, got {other:?}")),
        }
    }
    labels.sort();
    Ok((labels, &s[i..]))
}

/// Parses the whole text strictly: every line a HELP, a TYPE or a sample; names and labels
/// well formed; TYPE (and HELP) once per family, before its samples; a family's samples
/// together; counters named `_total`; no series twice; the text ends with a newline.
fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text must end with a newline".into());
    }
    let mut out = Exposition::default();
    let mut helped = BTreeSet::new();
    let mut done_families = BTreeSet::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().ok_or_else(|| err("no metric name".into()))?;
            let arg = parts.next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(err(format!("bad metric name {name:?}")));
            }
            match kw {
                "HELP" => {
                    if !helped.insert(name.to_string()) {
                        return Err(err("HELP twice".into()));
                    }
                    if arg.is_empty() {
                        return Err(err("empty HELP".into()));
                    }
                }
                "TYPE" => {
                    if !matches!(
                        arg,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(err(format!("bad type {arg:?}")));
                    }
                    if out
                        .types
                        .insert(name.to_string(), arg.to_string())
                        .is_some()
                    {
                        return Err(err("TYPE twice".into()));
                    }
                    if arg == "counter" && !name.ends_with("_total") {
                        return Err(err("a counter's name must end in _total".into()));
                    }
                    if let Some(prev) = current.replace(name.to_string()) {
                        done_families.insert(prev);
                    }
                }
                _ => return Err(err("a comment that is neither HELP nor TYPE".into())),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err("malformed comment".into()));
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before the value".into()))?;
        let mut fields = rest.split(' ');
        let value = parse_value(fields.next().unwrap_or("")).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| err(format!("bad timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields".into()));
        }
        if current.as_deref() != Some(name) {
            return Err(err(format!(
                "sample of {name} outside its family (no TYPE line just before)"
            )));
        }
        if done_families.contains(name) {
            return Err(err("family split".into()));
        }
        if out
            .values
            .insert((name.to_string(), labels), value)
            .is_some()
        {
            return Err(err("series twice".into()));
        }
    }
    Ok(out)
}

/// `promtool check metrics` on the text, when promtool is installed.
fn promtool_check(text: &str) {
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return; // not installed
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_parser_rejects_what_prometheus_rejects() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 3\n# TYPE b gauge\nb 1.5\n";
    let e = parse(ok).unwrap();
    assert_eq!(e.must("a_total", &[("x", "1\"")]), 3.0);
    for bad in [
        "# TYPE a counter\na 1\n",               // counter without _total
        "# TYPE b gauge\nb 1\nb 2\n",            // series twice
        "b 1\n",                                 // no TYPE
        "# TYPE b gauge\nb{x=1} 1\n",            // unquoted label
        "# TYPE b gauge\nb one\n",               // bad value
        "# TYPE b gauge\nb 1",                   // no final newline
        "# TYPE b gauge\n# TYPE c gauge\nb 1\n", // outside its family
        "# TYPE 1b gauge\n1b 1\n",               // bad name
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

// ----- a tiny HTTP client ---------------------------------------------------------------------

/// `GET path` with `Connection: close`: the status and the body.
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut c = client(addr);
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut reply = String::new();
    c.read_to_string(&mut reply).expect("read the reply");
    let status = reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Scrapes `/metrics` and parses it (and has promtool check it, when installed).
fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    promtool_check(&body);
    parse(&body).unwrap_or_else(|e| panic!("{e}\nin:\n{body}"))
}

/// An HTTP server with the debug pages: the metrics of `registry`, and the probes.
fn debug_server(registry: &Registry, ready: &debug::Readiness) -> common::http_server::Running {
    let mut mux = ServeMux::new();
    debug::register(&mut mux);
    debug::register_metrics(&mut mux, registry);
    debug::register_health(&mut mux, ready);
    common::http_server::run(HttpServer::builder().handler(mux))
}

// ----- the snapshot ---------------------------------------------------------------------------

#[test]
fn snapshot_counts_parked_goroutines_and_returns_to_baseline() {
    let _g = common::exclusive();
    const N: usize = 64;
    let base = goway::runtime::metrics();
    assert!(base.workers >= 1);
    assert_eq!(base.goroutine_limit, goway::runtime::max_goroutines());
    assert!(base.headroom() <= base.goroutine_limit);
    assert!(base.stacks >= base.idle_stacks);

    let (tx, rx) = goway::chan::bounded::<()>(0);
    let (parked_tx, parked_rx) = goway::chan::bounded::<()>(N);
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let rx = rx.clone();
            let parked = parked_tx.clone();
            goway::go!(move || {
                parked.send(()).unwrap();
                rx.recv() // parks until the sender is dropped
            })
        })
        .collect();
    for _ in 0..N {
        parked_rx
            .recv_timeout(WATCHDOG)
            .expect("a goroutine started");
    }
    let during = goway::runtime::metrics();
    assert!(
        during.goroutines >= base.goroutines + N,
        "{base:?}\n{during:?}"
    );
    assert!(during.goroutines_spawned >= base.goroutines_spawned + N as u64);
    assert!(during.stacks >= N, "{during:?}");
    assert!(during.headroom() + N <= base.headroom() + base.idle_stacks.max(N));
    assert!(during.coroutine_resumes >= base.coroutine_resumes);

    drop(tx);
    for h in hs {
        assert!(common::join(h).is_err(), "the channel was closed");
    }
    wait_until("live goroutines back to the baseline", WATCHDOG, || {
        goway::runtime::metrics().goroutines <= base.goroutines
    });
    let after = goway::runtime::metrics();
    assert!(after.goroutines_spawned >= during.goroutines_spawned);
    assert!(
        after.coroutine_resumes > base.coroutine_resumes,
        "{base:?}\n{after:?}"
    );
}

#[test]
fn timers_pending_counts_armed_timers() {
    let _g = common::exclusive();
    let base = goway::runtime::metrics().timers_pending;
    let mut timers: Vec<_> = (0..10)
        .map(|_| goway::time::Timer::new(Duration::from_secs(3600)))
        .collect();
    assert!(goway::runtime::metrics().timers_pending >= base + 10);
    for t in &mut timers {
        t.stop();
    }
    drop(timers);
    assert!(goway::runtime::metrics().timers_pending <= base);
}

// ----- the exposition -------------------------------------------------------------------------

#[test]
fn registry_refuses_a_duplicate_name_and_unregisters() {
    let _g = common::shared();
    let srv = common::line_echo_server(Duration::ZERO);
    let r = Registry::new();
    r.register_server("a", srv.handle()).unwrap();
    assert_eq!(
        r.register_server("a", srv.handle()),
        Err(DuplicateServer("a".into()))
    );
    let e = parse(&r.encode()).unwrap();
    assert_eq!(
        e.must("goway_server_connections_active", &[("server", "a")]),
        0.0
    );
    assert!(r.unregister_server("a"));
    assert!(!r.unregister_server("a"));
    let e = parse(&r.encode()).unwrap();
    assert!(
        e.get("goway_server_connections_active", &[("server", "a")])
            .is_none()
    );
    // Label values are escaped.
    r.register_server("we\"ird\\name", srv.handle()).unwrap();
    let e = parse(&r.encode()).unwrap();
    assert_eq!(
        e.must(
            "goway_server_connections_total",
            &[("server", "we\"ird\\name")]
        ),
        0.0
    );
}

#[test]
fn metrics_endpoint_before_during_and_after_load() {
    let _g = common::exclusive();
    const K: usize = 8;
    let registry = Registry::new();
    let echo = common::net_server::run(common::line_echo_server(Duration::ZERO));
    registry
        .register_server("echo", echo.handle.clone())
        .unwrap();
    let web = debug_server(&registry, &debug::Readiness::new());
    registry
        .register_server("debug", web.handle.clone())
        .unwrap();

    // The accept loop counts itself once its goroutine runs, which may be after `run` returns.
    wait_until("the echo server's accept loop", WATCHDOG, || {
        echo.handle.stats().goroutines == 1
    });
    // Every family has a TYPE and HELP, every counter ends in _total (the parser checks).
    let before = scrape(web.addr);
    for (name, ty) in [
        ("goway_goroutines", "gauge"),
        ("goway_goroutines_spawned_total", "counter"),
        ("goway_workers", "gauge"),
        ("goway_timers_pending", "gauge"),
        ("goway_goroutine_limit", "gauge"),
        ("goway_goroutine_stacks", "gauge"),
        ("goway_coroutine_resumes_total", "counter"),
        ("goway_blocked_workers", "gauge"),
        ("goway_server_connections_active", "gauge"),
        ("goway_server_connections_total", "counter"),
        ("goway_server_connections_rejected_total", "counter"),
        ("goway_server_requests_total", "counter"),
        ("goway_server_received_bytes_total", "counter"),
        ("goway_server_frames_sent_total", "counter"),
    ] {
        assert_eq!(
            before.types.get(name).map(String::as_str),
            Some(ty),
            "{name}"
        );
    }
    let echo_l = [("server", "echo")];
    assert_eq!(before.must("goway_server_connections_active", &echo_l), 0.0);
    assert_eq!(before.must("goway_server_goroutines", &echo_l), 1.0); // the accept loop
    assert_eq!(
        before.must("goway_goroutine_limit", &[]),
        goway::runtime::max_goroutines() as f64
    );
    // The scrape's own connection, counted by the debug server.
    assert!(before.must("goway_server_requests_total", &[("server", "debug")]) >= 1.0);
    let base_goroutines = before.must("goway_goroutines", &[]);

    // Load: K clients connected, each with a line echoed.
    let mut clients = Vec::new();
    for i in 0..K {
        let mut c = client(echo.addr);
        writeln!(c, "hello {i}").unwrap();
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("hello {i}\n").as_bytes());
        clients.push(c);
    }
    // A frame is counted as sent once its write returns, which may come after the client has
    // read the echo (received frames are counted before the handler gets them; waiting on both
    // costs nothing).
    let during = wait_for("the load counted", WATCHDOG, || {
        let e = scrape(web.addr);
        let got = e.must("goway_server_frames_received_total", &echo_l);
        let sent = e.must("goway_server_frames_sent_total", &echo_l);
        if got == K as f64 && sent == K as f64 {
            Ok(e)
        } else {
            Err(format!("received {got}, sent {sent}"))
        }
    });
    assert_eq!(
        during.must("goway_server_connections_active", &echo_l),
        K as f64
    );
    assert_eq!(
        during.must("goway_server_connections_total", &echo_l),
        K as f64
    );
    assert_eq!(
        during.must("goway_server_frames_received_total", &echo_l),
        K as f64
    );
    assert_eq!(
        during.must("goway_server_frames_sent_total", &echo_l),
        K as f64
    );
    assert!(during.must("goway_server_received_bytes_total", &echo_l) >= (K * 8) as f64);
    // A handler per connection (reading inline), and a writer only while one has replies to
    // write; plus the accept loop.
    let server_goroutines = during.must("goway_server_goroutines", &echo_l);
    assert!(
        ((K + 1) as f64..=(2 * K + 1) as f64).contains(&server_goroutines),
        "{during:?}"
    );
    assert!(
        during.must("goway_goroutines", &[]) >= base_goroutines + K as f64,
        "{during:?}"
    );
    assert!(
        during.must("goway_goroutines_spawned_total", &[])
            >= before.must("goway_goroutines_spawned_total", &[]) + K as f64
    );

    // After: the gauges return to their baseline, the counters keep their counts.
    drop(clients);
    let after = wait_for("the gauges back to their baseline", WATCHDOG, || {
        let e = scrape(web.addr);
        let active = e.must("goway_server_connections_active", &echo_l);
        let goroutines = e.must("goway_goroutines", &[]);
        if active == 0.0 && goroutines <= base_goroutines {
            Ok(e)
        } else {
            Err(format!(
                "active {active}, goroutines {goroutines} (baseline {base_goroutines})"
            ))
        }
    });
    assert_eq!(after.must("goway_server_goroutines", &echo_l), 1.0);
    assert_eq!(after.must("goway_server_queued_bytes", &echo_l), 0.0);
    assert_eq!(
        after.must("goway_server_connections_total", &echo_l),
        K as f64
    );
    assert_eq!(
        after.must(
            "goway_server_connections_closed_total",
            &[("server", "echo"), ("reason", "eof")]
        ),
        K as f64
    );
    for (series, v) in &before.values {
        if series.0.ends_with("_total") {
            let now = after.values.get(series).copied().unwrap_or(0.0);
            assert!(now >= *v, "counter {series:?} went back: {v} -> {now}");
        }
    }
    echo.stop();
    web.stop();
}

// ----- the health probes ----------------------------------------------------------------------

#[test]
fn healthz_and_readyz_follow_the_drain() {
    let _g = common::shared();
    let (drain, cancel) = goway::context::with_cancel(&goway::context::background());
    let ready = debug::Readiness::until_done(&drain);
    let web = debug_server(&Registry::new(), &ready);

    assert_eq!(get(web.addr, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(get(web.addr, "/readyz"), (200, "ok\n".to_string()));

    // The flag: not ready while warming up, ready again after.
    ready.set_ready(false);
    assert_eq!(get(web.addr, "/readyz").0, 503);
    ready.set_ready(true);
    assert_eq!(get(web.addr, "/readyz").0, 200);

    // The drain (SIGTERM): not ready for good, still alive.
    cancel.cancel();
    assert_eq!(get(web.addr, "/readyz"), (503, "not ready\n".to_string()));
    ready.set_ready(true);
    assert_eq!(get(web.addr, "/readyz").0, 503, "a done drain context wins");
    assert_eq!(get(web.addr, "/healthz").0, 200);
    web.stop();
}

// ----- the examples' --metrics flag -----------------------------------------------------------

/// Starts example `name` with `--metrics 127.0.0.1:0`; the example and its metrics address.
fn example_with_metrics(name: &str) -> (common::example::Example, SocketAddr) {
    let exe = common::example::build_example(name);
    let ex = common::example::Example::start_with(
        std::process::Command::new(exe).args(["--addr", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]),
        true,
    );
    let line = ex
        .stdout
        .recv_timeout(WATCHDOG)
        .expect("the example prints its metrics address");
    let addr = line
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .expect("a socket address");
    (ex, addr)
}

#[test]
fn echo_example_serves_its_metrics() {
    let _g = common::shared();
    let (ex, metrics) = example_with_metrics("echo");
    let mut c = client(ex.addr().parse().unwrap());
    writeln!(c, "hi").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(c.read(&mut buf).unwrap(), 3);
    let e = scrape(metrics);
    let l = [("server", "echo")];
    assert_eq!(e.must("goway_server_connections_active", &l), 1.0);
    assert_eq!(e.must("goway_server_frames_received_total", &l), 1.0);
    assert!(e.must("goway_goroutines", &[]) >= 4.0); // accept loop + 3 for the client
}

#[test]
fn http_hello_example_serves_its_metrics() {
    let _g = common::shared();
    let (ex, metrics) = example_with_metrics("http_hello");
    let (status, body) = get(ex.addr().parse().unwrap(), "/plaintext");
    assert_eq!((status, body.as_str()), (200, "Hello, World!"));
    let e = scrape(metrics);
    assert_eq!(
        e.must("goway_server_requests_total", &[("server", "http_hello")]),
        1.0
    );
    assert_eq!(get(metrics, "/healthz").0, 200);
}
