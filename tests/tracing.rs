//! The `tracing` feature: a test subscriber sees net::Server's connection span, http::Server's
//! connection and request spans with their fields, events inside them, and spans that follow a
//! goroutine across its parks (never current for another goroutine on the same worker).
//!
//! Run: `cargo test --release --features tracing --test tracing`.
#![cfg(feature = "tracing")]

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use common::{WATCHDOG, client, wait_for};
use goway::http::{Request, ResponseWriter, Server as HttpServer};
use goway::net::Server;
use goway::net::codec::LinesCodec;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span the subscriber saw created.
#[derive(Debug, Clone)]
struct SeenSpan {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<String>,
}

/// An event with the names of the spans current when it happened, innermost first.
#[derive(Debug, Clone)]
struct SeenEvent {
    message: String,
    scope: Vec<String>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SeenSpan>,
    events: Vec<SeenEvent>,
}

static SEEN: Mutex<Seen> = Mutex::new(Seen {
    spans: Vec::new(),
    events: Vec::new(),
});

fn seen() -> std::sync::MutexGuard<'static, Seen> {
    SEEN.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            format!("{value:?}").trim_matches('"').to_string(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

struct Recorder;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_string());
        seen().spans.push(SeenSpan {
            name: attrs.metadata().name().to_string(),
            fields,
            parent,
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let scope = ctx
            .event_scope(event)
            .map(|s| s.map(|span| span.name().to_string()).collect())
            .unwrap_or_default();
        seen().events.push(SeenEvent {
            message: fields.remove("message").unwrap_or_default(),
            scope,
        });
    }
}

/// Installs the recorder as the global subscriber (goroutines run on worker threads, so a
/// thread's default subscriber would not see them), and runs the runtime on one worker so that
/// two goroutines surely share a thread.
fn setup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = goway::runtime::Config::new().workers(1).apply();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
            .expect("the only global subscriber");
    });
}

/// The first span named `name` whose `field` is `value`.
fn span_with(name: &str, field: &str, value: &str) -> Result<SeenSpan, String> {
    let s = seen();
    s.spans
        .iter()
        .find(|sp| sp.name == name && sp.fields.get(field).map(String::as_str) == Some(value))
        .cloned()
        .ok_or_else(|| format!("spans so far: {:#?}", s.spans))
}

fn event(message: &str) -> Result<SeenEvent, String> {
    let s = seen();
    s.events
        .iter()
        .find(|e| e.message == message)
        .cloned()
        .ok_or_else(|| format!("events so far: {:#?}", s.events))
}

#[test]
fn net_server_connection_span() {
    setup();
    let _g = common::shared();
    let srv = Server::builder()
        .addr("127.0.0.1:0")
        .codec(LinesCodec::new())
        .handler(|conn| {
            for line in conn {
                tracing::info!("net echo {}", String::from_utf8_lossy(&line));
                conn.send(line)?;
            }
            Ok(())
        })
        .bind()
        .unwrap();
    let running = common::net_server::run(srv);
    let mut c = client(running.addr);
    let local = c.local_addr().unwrap().to_string();
    writeln!(c, "ping").unwrap();
    let mut line = String::new();
    BufReader::new(&mut c).read_line(&mut line).unwrap();
    assert_eq!(line, "ping\n");

    let span = wait_for("the conn span", WATCHDOG, || {
        span_with("conn", "peer", &local)
    });
    assert_eq!(span.fields["server"], running.addr.to_string());
    assert!(
        span.fields["conn_id"].parse::<u64>().unwrap() >= 1,
        "{span:?}"
    );
    let ev = wait_for("the handler's event", WATCHDOG, || event("net echo ping"));
    assert_eq!(ev.scope.first().map(String::as_str), Some("conn"), "{ev:?}");
    drop(c);
    running.stop();
}

fn hello(r: &Request<'_>, w: &mut ResponseWriter<'_>) {
    tracing::info!("http handled {}", r.path());
    goway::time::sleep(Duration::from_millis(1)); // parks inside the request span
    tracing::info!("http after park {}", r.path());
    let _ = w.write_all(b"hi\n");
}

#[test]
fn http_server_connection_and_request_spans() {
    setup();
    let _g = common::shared();
    let running = common::http_server::run(HttpServer::builder().handler(hello));
    let mut c = client(running.addr);
    let local = c.local_addr().unwrap().to_string();
    write!(
        c,
        "GET /traced?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let conn = wait_for("the http_conn span", WATCHDOG, || {
        span_with("http_conn", "peer", &local)
    });
    assert_eq!(conn.fields["server"], running.addr.to_string());
    let req = wait_for("the request span", WATCHDOG, || {
        span_with("request", "path", "/traced")
    });
    assert_eq!(req.fields["method"], "GET");
    assert_eq!(req.fields["conn_id"], conn.fields["conn_id"]);
    assert_eq!(req.parent.as_deref(), Some("http_conn"));
    for msg in ["http handled /traced", "http after park /traced"] {
        let ev = wait_for("the handler's events", WATCHDOG, || event(msg));
        assert_eq!(ev.scope, ["request", "http_conn"], "{msg}: {ev:?}");
    }
    running.stop();
}

#[test]
fn a_span_follows_its_goroutine_across_parks() {
    setup();
    let _g = common::shared();
    let (go_tx, go_rx) = goway::chan::bounded::<()>(0);
    let (parked_tx, parked_rx) = goway::chan::bounded::<()>(1);
    let a = goway::go!(move || {
        let _g = goway::runtime::enter_span(tracing::info_span!("goroutine_a"));
        tracing::info!("a before park");
        parked_tx.send(()).unwrap();
        go_rx.recv().unwrap(); // parks; b runs on the same (only) worker meanwhile
        tracing::info!("a after park");
    });
    parked_rx.recv_timeout(WATCHDOG).expect("a is running");
    let b = goway::go!(move || {
        tracing::info!("b while a is parked");
        go_tx.send(()).unwrap();
    });
    common::join(b);
    common::join(a);
    assert_eq!(event("a before park").unwrap().scope, ["goroutine_a"]);
    assert_eq!(event("a after park").unwrap().scope, ["goroutine_a"]);
    let b = event("b while a is parked").unwrap();
    assert!(b.scope.is_empty(), "a's span leaked into b: {b:?}");
}
