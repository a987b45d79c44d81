//! What the chat's goroutines share: the line type, a client as the broadcaster knows it,
//! the broadcaster's input channels and the queue bounds.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use goway::chan::{Receiver, Sender};
use goway::logging::LogSummary;
use goway::net::TcpStream;

/// How long a departing client's writer may take to deliver the lines still queued for it.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// What a queued line costs beyond its bytes (its `Arc` header, its slot in the queue and
/// the allocator's rounding), for the byte bound of the queues.
pub(crate) const LINE_OVERHEAD: usize = 64;
/// Arrivals and departures are announced one by one up to `--announce-per-sec` per window;
/// the rest are counted and announced together when the window ends.
pub(crate) const ANNOUNCE_WINDOW: Duration = Duration::from_secs(1);

/// What clients can cause as often as they like is logged at most once per 10 s per kind: the
/// first with its detail, then a count (`goway::logging::LogSummary`).
pub(crate) static SLOW_CLIENTS: LazyLock<LogSummary> =
    LazyLock::new(|| LogSummary::new("slow clients disconnected").target("chat"));
pub(crate) static LONG_LINES: LazyLock<LogSummary> = LazyLock::new(|| {
    LogSummary::new("clients disconnected for a line over --max-line").target("chat")
});

/// A line as queued for the clients, newline included: one allocation shared by every queue.
pub(crate) type Line = Arc<[u8]>;

pub(crate) fn line(text: &str) -> Line {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(b'\n');
    v.into()
}

pub(crate) fn charge(line: &Line) -> usize {
    line.len() + LINE_OVERHEAD
}

/// Milliseconds since the process started (`0` is reserved for "not writing").
pub(crate) fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

/// A client's backlog, shared by the broadcaster and the client's writer.
#[derive(Default)]
pub(crate) struct Backlog {
    /// Bytes queued or being written (see `charge`).
    pub(crate) bytes: AtomicUsize,
    /// When the write to the socket in progress started (`now_ms`), `0` between writes.
    pub(crate) writing_since: AtomicU64,
}

/// A connected client, as the broadcaster knows it (the book's `type client chan<- string`,
/// plus what the broadcaster needs to greet, pace and disconnect it).
pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) who: String,
    /// The client's outgoing queue, drained by its writer goroutine.
    pub(crate) out: Sender<Line>,
    pub(crate) backlog: Arc<Backlog>,
    /// A token from the writer each time it has written a line.
    pub(crate) progress: Receiver<()>,
    /// A handle on the client's socket, to shut it down when the client is too slow.
    pub(crate) kick: Arc<TcpStream>,
}

/// A line for everybody but its sender.
pub(crate) struct Message {
    pub(crate) from: u64,
    pub(crate) line: Line,
}

/// The broadcaster's three input channels.
#[derive(Clone)]
pub(crate) struct Hub {
    pub(crate) entering: Sender<Client>,
    pub(crate) leaving: Sender<u64>,
    pub(crate) messages: Sender<Message>,
}

/// The queue bounds, as the broadcaster applies them.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) queue_bytes: usize,
    pub(crate) slow: Duration,
    pub(crate) announce_per_sec: u32,
}
