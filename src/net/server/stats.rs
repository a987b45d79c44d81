//! Counters and gauges of a server, and why its connections closed.

use std::fmt;
use std::ops::Index;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $text:literal,)*) => {
        /// Why a connection closed. The first cause wins: a client that sends EOF and whose
        /// handler then returns closed by [`Eof`](CloseReason::Eof).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum CloseReason {
            $($(#[$doc])* $name,)*
        }

        impl CloseReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [CloseReason] = &[$(CloseReason::$name,)*];

            /// The reason's name in logs (`snake_case`, as in `docs/reliability.md`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CloseReason::$name => $text,)*
                }
            }
        }
    };
}

reasons! {
    /// The client closed its side between frames.
    Eof = "eof",
    /// The client closed its side in the middle of a frame; the partial frame was dropped.
    EofMidFrame = "eof_mid_frame",
    /// The client reset the connection (ECONNRESET, EPIPE).
    PeerReset = "peer_reset",
    /// A frame was over `max_frame`.
    FrameTooLarge = "frame_too_large",
    /// The codec rejected the bytes.
    Protocol = "protocol",
    /// A frame took longer than `frame_timeout` to arrive.
    FrameTimeout = "frame_timeout",
    /// The connection sat idle longer than `idle_timeout`.
    IdleTimeout = "idle_timeout",
    /// A write made no progress for `write_timeout`.
    WriteTimeout = "write_timeout",
    /// The handler returned while the client was still connected.
    HandlerDone = "handler_done",
    /// The handler returned an error.
    HandlerError = "handler_error",
    /// The handler panicked.
    Panic = "panic",
    /// The client's replies not yet written passed the output limit
    /// ([`WhenFull::Disconnect`](super::WhenFull::Disconnect) at `write_queue_bytes`, or the
    /// soft limit `write_queue_soft` for too long): Redis's `client-output-buffer-limit`.
    OutputLimit = "output_limit",
    /// A reply could not be encoded.
    EncodeError = "encode_error",
    /// The server shut down and the connection finished its in-flight frames.
    Shutdown = "shutdown",
    /// The server's shutdown grace ended and the connection was closed forcibly.
    CutOff = "cut_off",
    /// The connection could not be started (descriptor or goroutine-stack limit).
    Refused = "refused",
    /// Another I/O error.
    Io = "io_error",
    /// The TLS handshake failed (a client that does not speak TLS, a refused certificate, a
    /// handshake that did not finish within the handshake timeout); the handler never ran.
    TlsHandshake = "tls_handshake",
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const N: usize = CloseReason::ALL.len();

/// Closed-connection counts by [`CloseReason`]: `stats.closed_by[CloseReason::Panic]`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ClosedBy([u64; N]);

impl ClosedBy {
    /// Connections closed for `r`.
    pub fn get(&self, r: CloseReason) -> u64 {
        self.0[r as usize]
    }

    /// `(reason, count)` for every reason with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL
            .iter()
            .map(|&r| (r, self.get(r)))
            .filter(|&(_, n)| n > 0)
    }
}

impl Index<CloseReason> for ClosedBy {
    type Output = u64;
    fn index(&self, r: CloseReason) -> &u64 {
        &self.0[r as usize]
    }
}

impl fmt::Debug for ClosedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (r.as_str(), n)))
            .finish()
    }
}

/// A snapshot of a server's counters ([`ServerHandle::stats`](super::ServerHandle::stats)).
///
/// Gauges (`active`, `goroutines`) return to 0 once every client has left and the server has
/// shut down; `accepted == closed + active` whenever nothing is being set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections being served now (gauge).
    pub active: u64,
    /// Connections accepted and served (refused ones are in `rejected`).
    pub accepted: u64,
    /// Connections refused at accept, with the overload reply: over `max_connections`, or out of
    /// goroutine stacks (see [`runtime::max_goroutines`](crate::runtime::max_goroutines)). A
    /// connection accepted just as shutdown closes the listener is closed with it, like the
    /// clients still in the listener's backlog, and not counted.
    pub rejected: u64,
    /// Connections closed, in total.
    pub closed: u64,
    /// Connections closed, by reason.
    pub closed_by: ClosedBy,
    /// Frames decoded.
    pub frames_in: u64,
    /// Frames encoded and written.
    pub frames_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written (frames; not error or overload replies).
    pub bytes_out: u64,
    /// Handler panics caught.
    pub panics: u64,
    /// The server's live goroutines (gauge): the accept loop, and per connection its handler,
    /// plus a reader while one is needed (after the handler's first `done`, `incoming` or
    /// `context`, under TLS, and while input is discarded after the handler returned) and a
    /// writer while replies wait to be written. An idle plain connection holds 1.
    pub goroutines: u64,
    /// Bytes of replies not yet written, over all connections now (gauge; as the codec's
    /// `encoded_len` sizes them, counting those being written). Each connection's share is
    /// bounded by `write_queue_bytes`.
    pub queued_bytes: u64,
    /// The most bytes of replies not yet written one connection has held at once, over
    /// the server's life.
    pub queued_bytes_peak: u64,
    /// Spin-poll rounds: times the server spun for input before its worker slept (0 unless
    /// [`Config::spin_poll`](super::Config::spin_poll) is set).
    pub spins: u64,
    /// Spin-poll rounds that found input soon enough to pay (within 10 µs). Far fewer
    /// than `spins` means spinning does not pay at this load; the server then mostly stops.
    pub spin_hits: u64,
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) active: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) closed: AtomicU64,
    closed_by: [AtomicU64; N],
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) goroutines: AtomicU64,
    /// `queued_bytes_peak` of the connections already closed.
    pub(crate) queued_bytes_peak: AtomicU64,
}

impl StatsCell {
    pub(crate) fn record_close(&self, r: CloseReason) {
        self.closed_by[r as usize].fetch_add(1, Relaxed);
        self.closed.fetch_add(1, Relaxed);
        self.active.fetch_sub(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let mut by = ClosedBy::default();
        for (d, s) in by.0.iter_mut().zip(&self.closed_by) {
            *d = s.load(Relaxed);
        }
        Stats {
            active: self.active.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            closed: self.closed.load(Relaxed),
            closed_by: by,
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            panics: self.panics.load(Relaxed),
            goroutines: self.goroutines.load(Relaxed),
            queued_bytes: 0,
            queued_bytes_peak: self.queued_bytes_peak.load(Relaxed),
            spins: 0,
            spin_hits: 0,
        }
    }
}

#[cfg(feature = "metrics")]
impl crate::metrics::ServerMetrics for super::ServerHandle {
    fn sample(&self) -> crate::metrics::ServerSample {
        let s = self.stats();
        crate::metrics::ServerSample {
            active: s.active,
            accepted: s.accepted,
            rejected: s.rejected,
            closed_by: CloseReason::ALL
                .iter()
                .map(|&r| (r.as_str(), s.closed_by.get(r)))
                .collect(),
            frames_in: Some(s.frames_in),
            frames_out: Some(s.frames_out),
            bytes_in: Some(s.bytes_in),
            bytes_out: Some(s.bytes_out),
            panics: Some(s.panics),
            goroutines: Some(s.goroutines),
            queued_bytes: Some(s.queued_bytes),
            queued_bytes_peak: Some(s.queued_bytes_peak),
            ..Default::default()
        }
    }
}
