//! Prometheus metrics: the runtime's counters ([`runtime::metrics`](crate::runtime::metrics))
//! and every registered server's [`stats`](crate::net::ServerHandle::stats), in the Prometheus
//! text exposition format (version 0.0.4), encoded by the ecosystem's
//! [`prometheus-client`](prometheus_client) crate. Needs the `metrics` cargo feature (on by
//! default).
//!
//! Nothing is counted for the exposition: a scrape reads the runtime's counters and calls each
//! registered server's `stats()` ([`Registry::encode`]). Serve it with
//! [`http::debug::register_metrics`](crate::http::debug::register_metrics) (`GET /metrics`,
//! Prometheus's default path).
//!
//! ```
//! use goway::metrics::Registry;
//!
//! let registry = Registry::new();
//! let text = registry.encode();
//! assert!(text.contains("# TYPE goway_goroutines gauge\n"));
//! assert!(text.contains("# TYPE goway_goroutines_spawned_total counter\n"));
//! ```
//!
//! # The metrics
//!
//! Runtime (see [`runtime::Metrics`](crate::runtime::Metrics) for each field's meaning):
//! `goway_goroutines`, `goway_goroutines_spawned_total`, `goway_goroutines_runnable`,
//! `goway_goroutine_limit`, `goway_goroutine_stacks`, `goway_goroutine_stacks_idle`,
//! `goway_goroutine_headroom`, `goway_vm_max_map_count`, `goway_workers`,
//! `goway_coroutine_resumes_total`, `goway_timers_pending`, `goway_blocked_workers`,
//! `goway_blocked_worker_incidents_total`, `goway_blocking_threads`,
//! `goway_blocking_threads_idle`, `goway_blocking_threads_max`, `goway_blocking_queued`.
//!
//! Servers, each with the label `server="<name given at registration>"` (see
//! [`ServerSample`]): `goway_server_connections_active`, `goway_server_connections_total`,
//! `goway_server_connections_rejected_total`; for a [`net::Server`](crate::net::Server):
//! `goway_server_connections_closed_total` (with a `reason` label, as
//! [`CloseReason::as_str`](crate::net::server::CloseReason::as_str) names it),
//! `goway_server_frames_received_total`, `goway_server_frames_sent_total`,
//! `goway_server_received_bytes_total`, `goway_server_sent_bytes_total`,
//! `goway_server_handler_panics_total`, `goway_server_goroutines`, `goway_server_queued_bytes`,
//! `goway_server_queued_bytes_peak`; for an [`http::Server`](crate::http::Server):
//! `goway_server_requests_total`, `goway_server_head_scanned_bytes_total`.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The `Content-Type` of [`Registry::encode`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A server's counters at one scrape, in the shape the exposition needs: what every server
/// has, and `Option`s for what only one kind has. Made by [`ServerMetrics::sample`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerSample {
    /// Connections open now (`goway_server_connections_active`).
    pub active: u64,
    /// Connections accepted and served (`goway_server_connections_total`).
    pub accepted: u64,
    /// Connections refused: over `max_connections`, or out of descriptors or goroutine stacks
    /// (`goway_server_connections_rejected_total`).
    pub rejected: u64,
    /// Connections closed, by reason (`goway_server_connections_closed_total{reason}`); empty
    /// where the server does not count them.
    pub closed_by: Vec<(&'static str, u64)>,
    /// HTTP requests read (`goway_server_requests_total`).
    pub requests: Option<u64>,
    /// Bytes of request heads the HTTP parser examined
    /// (`goway_server_head_scanned_bytes_total`).
    pub head_bytes_scanned: Option<u64>,
    /// Frames decoded (`goway_server_frames_received_total`).
    pub frames_in: Option<u64>,
    /// Frames encoded and written (`goway_server_frames_sent_total`).
    pub frames_out: Option<u64>,
    /// Bytes read (`goway_server_received_bytes_total`).
    pub bytes_in: Option<u64>,
    /// Bytes written (`goway_server_sent_bytes_total`).
    pub bytes_out: Option<u64>,
    /// Handler panics caught (`goway_server_handler_panics_total`).
    pub panics: Option<u64>,
    /// The server's live goroutines (`goway_server_goroutines`).
    pub goroutines: Option<u64>,
    /// Bytes of replies not yet written, over all connections (`goway_server_queued_bytes`).
    pub queued_bytes: Option<u64>,
    /// The most reply bytes one connection has held unwritten
    /// (`goway_server_queued_bytes_peak`).
    pub queued_bytes_peak: Option<u64>,
}

/// Something whose counters a [`Registry`] reads at each scrape: implemented by
/// [`net::ServerHandle`](crate::net::ServerHandle) and
/// [`http::ServerHandle`](crate::http::ServerHandle); implement it for a server of your own.
pub trait ServerMetrics: Send + Sync + 'static {
    /// The counters now (called once per scrape; it should be cheap and never block).
    fn sample(&self) -> ServerSample;
}

/// [`Registry::register_server`] was given a name already registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a server named {0:?} is already registered")]
pub struct DuplicateServer(pub String);

type Servers = Arc<Mutex<Vec<(String, Arc<dyn ServerMetrics>)>>>;

/// The metrics one endpoint exposes: the runtime's, every registered server's, and any
/// `prometheus-client` metric of the application ([`with_prometheus`](Self::with_prometheus)).
/// Cloning gives another handle to the same registry.
///
/// ```
/// use goway::metrics::Registry;
/// use goway::net::{Server, codec::LinesCodec};
///
/// let srv = Server::builder()
///     .addr("127.0.0.1:0")
///     .codec(LinesCodec::new())
///     .handler(|conn| {
///         for line in conn {
///             conn.send(line)?;
///         }
///         Ok(())
///     })
///     .bind()
///     .unwrap();
/// let registry = Registry::new();
/// registry.register_server("echo", srv.handle()).unwrap();
/// // Serve `srv` (and `registry` with http::debug::register_metrics); a scrape then reads:
/// let text = registry.encode();
/// assert!(text.contains("goway_server_connections_active{server=\"echo\"} 0\n"));
/// ```
#[derive(Clone)]
pub struct Registry {
    servers: Servers,
    prom: Arc<Mutex<prometheus_client::registry::Registry>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.servers.lock().iter().map(|s| s.0.clone()).collect();
        f.debug_struct("Registry").field("servers", &names).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry with the runtime's metrics and no server yet.
    pub fn new() -> Registry {
        let servers: Servers = Arc::default();
        let mut prom = prometheus_client::registry::Registry::default();
        prom.register_collector(Box::new(RuntimeCollector));
        prom.register_collector(Box::new(ServersCollector(servers.clone())));
        Registry {
            servers,
            prom: Arc::new(Mutex::new(prom)),
        }
    }

    /// Adds a server under `name` (the `server` label of its metrics). Its counters are read
    /// at each scrape for as long as it stays registered (after a shutdown they stay at their
    /// final values).
    ///
    /// # Errors
    /// [`DuplicateServer`] if `name` is taken (two servers under one name would make
    /// duplicate series).
    pub fn register_server(
        &self,
        name: impl Into<String>,
        server: impl ServerMetrics,
    ) -> Result<(), DuplicateServer> {
        let name = name.into();
        let mut s = self.servers.lock();
        if s.iter().any(|(n, _)| *n == name) {
            return Err(DuplicateServer(name));
        }
        s.push((name, Arc::new(server)));
        Ok(())
    }

    /// Removes the server registered under `name`; `true` if there was one.
    pub fn unregister_server(&self, name: &str) -> bool {
        let mut s = self.servers.lock();
        let before = s.len();
        s.retain(|(n, _)| n != name);
        s.len() != before
    }

    /// Runs `f` on the underlying `prometheus-client` registry, to register the application's
    /// own metrics next to goway's.
    ///
    /// ```
    /// use prometheus_client::metrics::counter::Counter;
    ///
    /// let registry = goway::metrics::Registry::new();
    /// let jobs: Counter = Counter::default();
    /// registry.with_prometheus(|r| r.register("myapp_jobs", "Jobs done", jobs.clone()));
    /// jobs.inc();
    /// assert!(registry.encode().contains("myapp_jobs_total 1\n"));
    /// ```
    pub fn with_prometheus<R>(
        &self,
        f: impl FnOnce(&mut prometheus_client::registry::Registry) -> R,
    ) -> R {
        f(&mut self.prom.lock())
    }

    /// The metrics now, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.prom.lock())
        {
            // Writing to a String fails only if a metric's own encoding does.
            log::error!(target: "goway::metrics", "cannot encode the metrics: {e}");
        }
        out
    }
}

/// The runtime's metrics as a `prometheus-client` collector, for an application that keeps its
/// own `prometheus_client::registry::Registry` (a goway [`Registry`] has it already).
///
/// ```
/// let mut r = prometheus_client::registry::Registry::default();
/// r.register_collector(Box::new(goway::metrics::RuntimeCollector));
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
/// assert!(text.contains("goway_goroutines "));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RuntimeCollector;

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: impl prometheus_client::encoding::EncodeGaugeValue,
) -> fmt::Result {
    let m = ConstGauge::new(v);
    let me = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    m.encode(me)
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = ConstCounter::new(v);
    let me = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    m.encode(me)
}

impl Collector for RuntimeCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let m = crate::runtime::metrics();
        let e = &mut e;
        gauge(
            e,
            "goway_goroutines",
            "Goroutines spawned through goway and not yet finished.",
            m.goroutines as u64,
        )?;
        counter(
            e,
            "goway_goroutines_spawned",
            "Goroutines spawned since the process started.",
            m.goroutines_spawned,
        )?;
        gauge(
            e,
            "goway_goroutines_runnable",
            "Goroutines spawned that have not started running yet.",
            m.goroutines_runnable as u64,
        )?;
        gauge(
            e,
            "goway_goroutine_limit",
            "The most goroutines that can live at once (two vm.max_map_count mappings per stack).",
            m.goroutine_limit as u64,
        )?;
        gauge(
            e,
            "goway_goroutine_stacks",
            "Goroutine stacks held, busy and idle.",
            m.stacks as u64,
        )?;
        gauge(
            e,
            "goway_goroutine_stacks_idle",
            "Goroutine stacks kept idle for reuse.",
            m.idle_stacks as u64,
        )?;
        gauge(
            e,
            "goway_goroutine_headroom",
            "Goroutines that could still start before spawns fail for want of stacks.",
            m.headroom() as u64,
        )?;
        if let Some(n) = m.max_map_count {
            gauge(
                e,
                "goway_vm_max_map_count",
                "The kernel's vm.max_map_count.",
                n,
            )?;
        }
        gauge(
            e,
            "goway_workers",
            "Worker threads that run goroutines.",
            m.workers as u64,
        )?;
        counter(
            e,
            "goway_coroutine_resumes",
            "Times a worker resumed a goroutine: starts and wake-ups after a park or yield.",
            m.coroutine_resumes,
        )?;
        gauge(
            e,
            "goway_timers_pending",
            "Deadlines pending in goway's timer queue.",
            m.timers_pending as u64,
        )?;
        gauge(
            e,
            "goway_blocked_workers",
            "Worker threads held by one goroutine past the blocked-worker threshold.",
            m.blocked_workers as u64,
        )?;
        counter(
            e,
            "goway_blocked_worker_incidents",
            "Times a goroutine held its worker thread past the blocked-worker threshold.",
            m.blocked_worker_incidents,
        )?;
        gauge(
            e,
            "goway_blocking_threads",
            "Threads of the blocking pool (block_on_thread).",
            m.blocking.threads as u64,
        )?;
        gauge(
            e,
            "goway_blocking_threads_idle",
            "Threads of the blocking pool waiting for work.",
            m.blocking.idle as u64,
        )?;
        gauge(
            e,
            "goway_blocking_threads_max",
            "The most threads the blocking pool may have.",
            m.blocking.max_threads as u64,
        )?;
        gauge(
            e,
            "goway_blocking_queued",
            "block_on_thread calls waiting for a free pool thread.",
            m.blocking.queued as u64,
        )?;
        Ok(())
    }
}

/// The registered servers' metrics, read at each scrape.
struct ServersCollector(Servers);

impl fmt::Debug for ServersCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServersCollector")
    }
}

/// One metric family over the servers that have it.
fn family(
    e: &mut DescriptorEncoder<'_>,
    samples: &[(String, ServerSample)],
    name: &str,
    help: &str,
    kind: MetricType,
    get: impl Fn(&ServerSample) -> Option<u64>,
) -> fmt::Result {
    let values: Vec<(&str, u64)> = samples
        .iter()
        .filter_map(|(n, s)| get(s).map(|v| (n.as_str(), v)))
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let mut me = e.encode_descriptor(name, help, None, kind)?;
    for (server, v) in values {
        let labels = [("server", server)];
        let fam = me.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(v).encode(fam)?,
            _ => ConstGauge::new(v).encode(fam)?,
        }
    }
    Ok(())
}

impl Collector for ServersCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        // Sampled outside the lock: a server's stats() takes its own locks.
        let servers: Vec<(String, Arc<dyn ServerMetrics>)> = self.0.lock().clone();
        let samples: Vec<(String, ServerSample)> =
            servers.into_iter().map(|(n, s)| (n, s.sample())).collect();
        if samples.is_empty() {
            return Ok(());
        }
        use MetricType::{Counter as C, Gauge as G};
        let e = &mut e;
        family(
            e,
            &samples,
            "goway_server_connections_active",
            "Connections open now.",
            G,
            |s| Some(s.active),
        )?;
        family(
            e,
            &samples,
            "goway_server_connections",
            "Connections accepted and served.",
            C,
            |s| Some(s.accepted),
        )?;
        family(
            e,
            &samples,
            "goway_server_connections_rejected",
            "Connections refused (over max_connections, or out of descriptors or goroutine stacks).",
            C,
            |s| Some(s.rejected),
        )?;
        let closed: Vec<(&str, &str, u64)> = samples
            .iter()
            .flat_map(|(n, s)| s.closed_by.iter().map(move |&(r, v)| (n.as_str(), r, v)))
            .collect();
        if !closed.is_empty() {
            let mut me = e.encode_descriptor(
                "goway_server_connections_closed",
                "Connections closed, by reason.",
                None,
                C,
            )?;
            for (server, reason, v) in closed {
                let labels = [("server", server), ("reason", reason)];
                ConstCounter::new(v).encode(me.encode_family(&labels)?)?;
            }
        }
        family(
            e,
            &samples,
            "goway_server_requests",
            "HTTP requests read.",
            C,
            |s| s.requests,
        )?;
        family(
            e,
            &samples,
            "goway_server_head_scanned_bytes",
            "Bytes of HTTP request heads the parser examined.",
            C,
            |s| s.head_bytes_scanned,
        )?;
        family(
            e,
            &samples,
            "goway_server_frames_received",
            "Frames decoded.",
            C,
            |s| s.frames_in,
        )?;
        family(
            e,
            &samples,
            "goway_server_frames_sent",
            "Frames encoded and written.",
            C,
            |s| s.frames_out,
        )?;
        family(
            e,
            &samples,
            "goway_server_received_bytes",
            "Bytes read from clients.",
            C,
            |s| s.bytes_in,
        )?;
        family(
            e,
            &samples,
            "goway_server_sent_bytes",
            "Bytes of frames written to clients.",
            C,
            |s| s.bytes_out,
        )?;
        family(
            e,
            &samples,
            "goway_server_handler_panics",
            "Handler panics caught.",
            C,
            |s| s.panics,
        )?;
        family(
            e,
            &samples,
            "goway_server_goroutines",
            "The server's live goroutines.",
            G,
            |s| s.goroutines,
        )?;
        family(
            e,
            &samples,
            "goway_server_queued_bytes",
            "Bytes of replies not yet written, over all connections.",
            G,
            |s| s.queued_bytes,
        )?;
        family(
            e,
            &samples,
            "goway_server_queued_bytes_peak",
            "The most reply bytes one connection has held unwritten.",
            G,
            |s| s.queued_bytes_peak,
        )?;
        Ok(())
    }
}
