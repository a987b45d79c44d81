//! Server settings, with defaults after Go's `net/http.Server` timeouts and Redis's
//! `maxclients` (see `docs/reliability.md` for what they guard against).

use std::time::Duration;

use crate::net::codec::DEFAULT_MAX_FRAME;

/// A server's limits and timeouts. Every field states its default and what zero means; the
/// [`Builder`](super::Builder) has a setter for each.
///
/// ```
/// use std::time::Duration;
/// let cfg = goway::net::server::Config::default();
/// assert_eq!(cfg.max_connections, 10_000);
/// assert_eq!(cfg.frame_timeout, Duration::from_secs(10));
/// assert_eq!(cfg.idle_timeout, Duration::from_secs(60));
/// assert_eq!(cfg.write_timeout, Duration::from_secs(10));
/// assert_eq!((cfg.write_queue, cfg.write_queue_bytes), (64, 1 << 20));
/// assert_eq!(cfg.write_queue_full, goway::net::server::WhenFull::Wait);
/// assert_eq!(cfg.write_queue_soft, 0);
/// assert_eq!(cfg.max_frame, 1 << 20);
/// assert_eq!(cfg.shutdown_grace, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Most connections served at once. Default 10,000 (Redis's `maxclients`). A client over
    /// the limit is accepted, sent [`overload_reply`](Self::overload_reply) if any, and closed
    /// at once, before any goroutine is spawned for it; it counts in `Stats::rejected`. `bind`
    /// raises the soft file-descriptor limit (`RLIMIT_NOFILE`) as far as this needs and the
    /// hard limit allows, as Go does at start-up; beyond that the limit is lowered, with a
    /// warning, to what the descriptor limit allows: each connection uses one descriptor (a
    /// second one while its client is not reading its replies), and 32 are kept for the rest
    /// of the process. `0` means no limit but that one.
    pub max_connections: usize,
    /// Largest frame, in bytes, the codec accepts (passed to `Codec::set_max_frame`). Default
    /// 1 MiB. The reader never buffers more than this plus 64 KiB of one incomplete frame.
    /// `0` means the default.
    pub max_frame: usize,
    /// Time allowed to receive one whole frame, counted from its first byte (Go's
    /// `ReadHeaderTimeout`): bytes trickling in do not extend it, so slowloris clients are
    /// closed with reason `FrameTimeout`. Time the reader spends blocked because the handler is
    /// behind does not count. Default 10 s. `0` means no limit. (A per-frame clock, not Go's
    /// `ReadTimeout`, which the HTTP server's `read_timeout` is.)
    pub frame_timeout: Duration,
    /// Time a connection may sit between frames, with the handler waiting for input (in
    /// `recv`, or parked on `incoming()` in a `select!`) and nothing queued for writing (Go's
    /// `IdleTimeout`); then it is closed with reason `IdleTimeout`. A handler busy elsewhere
    /// is not idle. Default 60 s. `0` means no limit.
    pub idle_timeout: Duration,
    /// Time a write may make no progress (a client that stops reading); then the connection
    /// is closed with reason `WriteTimeout`. Default 10 s. `0` means no limit.
    pub write_timeout: Duration,
    /// Frames the handler can queue for the writer before `send` blocks (backpressure to a
    /// slow client). Default 64. `0` makes every `send` wait for the writer (unbuffered).
    pub write_queue: usize,
    /// Bytes of replies not yet written (as the codec's
    /// [`encoded_len`](crate::net::codec::Codec::encoded_len) sizes them, counting those the
    /// writer is writing) a connection may hold, on top of the `write_queue` frame count:
    /// with both, a slow client holds at most this much of the server's memory in replies.
    /// What happens at the bound is [`write_queue_full`](Self::write_queue_full)'s choice:
    /// by default `send` waits for room, and a frame larger than the bound is queued alone.
    /// Default 1 MiB. `0` means no byte bound (frames are counted only).
    pub write_queue_bytes: usize,
    /// What `send` does with a reply that does not fit in `write_queue_bytes`: wait for the
    /// client to make room ([`WhenFull::Wait`], the default), or disconnect it
    /// ([`WhenFull::Disconnect`], Redis's hard `client-output-buffer-limit`).
    pub write_queue_full: WhenFull,
    /// Redis's soft output-buffer limit: a connection whose replies not yet written stay
    /// above this many bytes for [`write_queue_soft_for`](Self::write_queue_soft_for) is
    /// closed with reason `OutputLimit` (and a warning naming the client and the limit),
    /// whatever `write_queue_full` says. Checked, as Redis does, when a reply is queued; a
    /// `send` waiting for room waits no longer than the limit allows. Default 0: none.
    pub write_queue_soft: usize,
    /// How long the replies may stay above [`write_queue_soft`](Self::write_queue_soft).
    /// Default 0: the first reply queued while above it closes the connection.
    pub write_queue_soft_for: Duration,
    /// Decoded frames the reader can queue ahead of the handler before it stops reading.
    /// Default 64. `0` hands each frame over directly.
    pub read_queue: usize,
    /// Most bytes the writer encodes into one buffer before writing it (it writes earlier
    /// whenever its queue is momentarily empty). Default 1 MiB. `0` means the default.
    pub write_buffer: usize,
    /// Read buffer the reader grows to for throughput; it starts at 4 KiB and grows further
    /// only for a frame that needs it. Default 64 KiB. `0` means the default.
    pub read_buffer: usize,
    /// How long [`ServerHandle::shutdown`](super::ServerHandle::shutdown) lets in-flight frames
    /// finish before cutting the remaining connections off. Default 30 s. `0` cuts off at once.
    pub shutdown_grace: Duration,
    /// Stack size of each connection's handler goroutine, in bytes. Default 0: the runtime's
    /// default (32 KiB, see `runtime::Config::stack_size`). Besides your handler, this stack
    /// runs the codec's `decode` (inside `recv`, while no reader goroutine exists), its
    /// `encode` for replies written at once, and the end of the connection's output when no
    /// writer goroutine runs: size it for the deepest of these.
    pub handler_stack_size: usize,
    /// Bytes written to a client refused because the server is full or the process is out of
    /// goroutine stacks, as Redis writes `-ERR max number of clients reached`. Default none:
    /// the connection is just closed.
    pub overload_reply: Option<Vec<u8>>,
    /// How long the server may spin looking for new input before its worker thread sleeps
    /// (spin polling, as Go's scheduler spins before parking a thread). A sleeping server is
    /// woken by the client's next `send`, which costs the client an inter-processor wake-up;
    /// spinning spares it that at the price of up to this much server CPU per burst of
    /// input. Worth it for a server whose clients are CPU-bound (a pipelining benchmark
    /// client); a waste at moderate, steady load. Default 0: off. See
    /// [`Builder::spin_poll`](super::Builder::spin_poll). Budgets over 1 ms count as 1 ms.
    pub spin_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 10_000,
            max_frame: DEFAULT_MAX_FRAME,
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            write_queue: 64,
            write_queue_bytes: 1 << 20,
            write_queue_full: WhenFull::Wait,
            write_queue_soft: 0,
            write_queue_soft_for: Duration::ZERO,
            read_queue: 64,
            write_buffer: 1 << 20,
            read_buffer: 64 << 10,
            shutdown_grace: Duration::from_secs(30),
            handler_stack_size: 0,
            overload_reply: None,
            spin_poll: Duration::ZERO,
        }
    }
}

/// What a connection's `send` does when a reply does not fit in its write queue's byte bound
/// ([`Config::write_queue_bytes`]): the choice between back-pressure and Redis's
/// `client-output-buffer-limit`.
///
/// Either way a client holds at most about `write_queue_bytes` of the server's memory in
/// replies. With `Wait` a client that never reads keeps its handler waiting in `send` until
/// the writer's [`write_timeout`](Config::write_timeout) closes the connection; with
/// `Disconnect` it is closed as soon as its replies pass the bound. The frame count
/// ([`Config::write_queue`]) still makes `send` wait in both cases: size it so that the
/// byte bound is reached first.
///
/// ```
/// use std::time::Duration;
/// use goway::net::codec::LinesCodec;
/// use goway::net::server::{Server, WhenFull};
///
/// // Redis's `client-output-buffer-limit normal 8mb 2mb 60`.
/// let server = Server::builder()
///     .addr("127.0.0.1:0")
///     .codec(LinesCodec::new())
///     .output_limit(8 << 20, 2 << 20, Duration::from_secs(60))
///     .handler(|conn| {
///         for line in conn {
///             conn.send(line)?; // fails once the client is disconnected
///         }
///         Ok(())
///     })
///     .bind()
///     .unwrap();
/// # drop(server);
///
/// // The same settings, field by field.
/// let mut cfg = goway::net::server::Config::default();
/// cfg.write_queue_bytes = 8 << 20;
/// cfg.write_queue_full = WhenFull::Disconnect;
/// cfg.write_queue_soft = 2 << 20;
/// cfg.write_queue_soft_for = Duration::from_secs(60);
/// # let _ = Server::builder().codec(LinesCodec::new()).config(cfg);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// `send` waits for the writer to make room (back-pressure, as a Go handler's
    /// `conn.Write` blocks); `try_send` answers `Full`. A frame larger than the whole bound
    /// is queued alone once the queue is empty.
    #[default]
    Wait,
    /// The connection is closed at once with reason
    /// [`OutputLimit`](super::CloseReason::OutputLimit), and a warning is logged with the
    /// client's address, the limit and the bytes held; the replies not yet written are
    /// dropped and `send` fails. A single reply larger than the bound closes it too: set the
    /// bound above the largest reply a well-behaved client can get (Redis's hard limit).
    Disconnect,
}

/// After a server sends FIN, how long the client gets to read the replies and close before
/// the server stops reading (Go's `rstAvoidanceDelay`, net/http/server.go): closing with
/// unread input makes the kernel send RST, which can destroy replies still in flight. Both
/// servers use it.
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// `None` for a zero duration ("no limit"). Both servers use it.
pub(crate) fn limit(d: Duration) -> Option<Duration> {
    if d.is_zero() { None } else { Some(d) }
}

/// The settings after zeros that mean "default" are resolved.
#[derive(Debug, Clone)]
pub(crate) struct Effective {
    pub(crate) max_connections: usize,
    pub(crate) max_frame: usize,
    pub(crate) frame_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) write_queue: usize,
    pub(crate) write_queue_bytes: usize,
    pub(crate) write_queue_full: WhenFull,
    pub(crate) write_queue_soft: usize,
    pub(crate) write_queue_soft_for: Duration,
    pub(crate) read_queue: usize,
    pub(crate) write_buffer: usize,
    pub(crate) read_buffer: usize,
    pub(crate) shutdown_grace: Duration,
    pub(crate) handler_stack_size: Option<usize>,
    pub(crate) overload_reply: Option<Vec<u8>>,
    pub(crate) spin_poll: Option<Duration>,
}

impl Effective {
    pub(crate) fn new(c: &Config) -> Self {
        let or = |v: usize, d: usize| if v == 0 { d } else { v };
        let d = Config::default();
        Effective {
            max_connections: c.max_connections,
            max_frame: or(c.max_frame, d.max_frame),
            frame_timeout: limit(c.frame_timeout),
            idle_timeout: limit(c.idle_timeout),
            write_timeout: limit(c.write_timeout),
            write_queue: c.write_queue,
            write_queue_bytes: c.write_queue_bytes,
            write_queue_full: c.write_queue_full,
            write_queue_soft: c.write_queue_soft,
            write_queue_soft_for: c.write_queue_soft_for,
            read_queue: c.read_queue,
            write_buffer: or(c.write_buffer, d.write_buffer),
            read_buffer: or(c.read_buffer, d.read_buffer),
            shutdown_grace: c.shutdown_grace,
            handler_stack_size: (c.handler_stack_size > 0).then_some(c.handler_stack_size),
            overload_reply: c.overload_reply.clone(),
            spin_poll: limit(c.spin_poll),
        }
    }
}
