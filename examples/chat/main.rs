//! The classic Go chat server (*The Go Programming Language*, section 8.10), ported shape for
//! shape: `net.Listen`, then `go handleConn(conn)` per client; per client a reader (the
//! `handleConn` loop) and a writer goroutine (`clientWriter`); one `broadcaster` goroutine
//! that owns the set of clients and `select`s over the `entering`, `leaving` and `messages`
//! channels.
//!
//! Run it with `cargo run --release --example chat` (`--addr` picks the address, `RUST_LOG=debug`
//! logs each client), then connect a few `nc 127.0.0.1 7879` and type lines. A new client reads
//! `You are <addr>`, the others read `<addr> has arrived`; each line a client types reaches the
//! others as `<addr>: <text>`; when it goes, they read `<addr> has left`.
//!
//! # Differences from the book's program
//!
//! - **Slow clients are dropped, healthy ones never.** In the book each client's channel is
//!   unbuffered and the broadcaster sends to it with a plain `cli <- msg`: one client that stops
//!   reading stalls the broadcaster, and with it every other client. Here each client has a
//!   queue bounded both in lines (`--queue`, 256) and in bytes (`--queue-bytes`, 1 MiB). When a
//!   client's queue is full, the broadcaster looks at its writer goroutine: if that has been
//!   stuck in a write to the socket for `--slow-ms` (1 s) — the client's kernel buffers are
//!   full too, so it has stopped reading or reads slower than the chat talks — the client is
//!   **disconnected**: the broadcaster removes it, closes its queue, shuts its socket down
//!   (which also wakes its writer) and announces `<addr> has left`. If its writer is not stuck
//!   (it is merely waiting for a CPU while a flood keeps the server busy), the broadcaster waits
//!   for it to catch up, for `--slow-ms` at most: the flood is held back instead (the flooder's
//!   reader waits for the broadcaster, and TCP pushes back on the flooder). A client therefore
//!   receives every line, in order, or is disconnected for being slow itself.
//! - **One copy of each line.** A line is formatted once, into an `Arc<[u8]>` that every
//!   client's queue shares; a queue holds references. The lines queued across all clients cost
//!   a few times `--queue-bytes` whatever the number of clients (each queue is a suffix of the
//!   same sequence of lines), where copies per client would cost clients × `--queue-bytes`.
//! - **Join/leave floods are summarised.** At most 20 arrivals and departures a second are
//!   announced one by one (`--announce-per-sec`); the others are counted and announced once a second in one line,
//!   `(<n> more arrived, <m> more left)`. A client connecting and leaving thousands of times a
//!   second thus costs the others one line a second, not thousands.
//! - **The broadcaster greets.** It sends `You are <addr>` to the newcomer and
//!   `<addr> has arrived` to the others as it registers the newcomer, and `<addr> has left` as it
//!   removes a client. So once a client has read `You are ...`, it is certain to receive every
//!   later line (in the book, the arrival is broadcast before the client is registered, and a
//!   client may miss lines sent in between).
//! - **A client's own lines are not echoed back to it** (`nc` already shows what you type).
//! - **Lines are capped** at `--max-line` bytes (64 KiB by default, `bufio.Scanner`'s limit): a
//!   longer line ends that client's session, as `Scanner.Scan` stops with `ErrTooLong`.
//!
//! **Connection cap.** At most `--max-connections` clients (10,000), fewer if the descriptor
//! limit allows fewer (three descriptors each); clients over the cap are refused (closed at
//! once): a connect/close flood faster than the broadcaster can register clients cannot pile up
//! connections until the process is out of descriptors (`goway::net::Acceptor`, the accept
//! loop of goway's own servers, with Go's accept backoff).
//!
//! What a client can cause at will (being disconnected as slow, sending an overlong line) is
//! logged at most once per 10 s per kind, the first with its detail and then a count
//! (`goway::logging::LogSummary`), so a flood of such clients cannot flood the log.
//!
//! **Graceful stop.** On SIGTERM or Ctrl-C the server stops accepting, sends every client
//! `server shutting down`, ends their input and lets their writers deliver what is queued for
//! them, for `--grace` seconds at most; then it reports how many sessions ended cleanly and how
//! many it cut off (still open: its exit closes them) and exits 0. A second signal exits at
//! once (status 130 or 143).

mod broadcaster;
mod client;
mod hub;

use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use goway::chan::{self, RecvTimeoutError};
use goway::go;
use goway::net::{Acceptor, TcpListener};

use broadcaster::broadcaster;
use client::handle_conn;
use hub::{Hub, Limits};

/// Chat server: every line a client sends goes to all the other clients.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7879")]
    addr: String,
    /// Lines queued per client at most.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Bytes queued per client at most (each line counts its length plus 64 bytes).
    #[arg(long, default_value_t = 1 << 20)]
    queue_bytes: usize,
    /// A client whose queue is full and whose writes have not progressed for this many
    /// milliseconds is disconnected.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// Longest line accepted from a client, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_line: usize,
    /// Arrivals and departures announced one by one per second; the others are announced
    /// together once a second.
    #[arg(long, default_value_t = 20)]
    announce_per_sec: u32,
    /// Clients connected at once at most (lowered to what the descriptor limit allows, three
    /// descriptors each); more are refused (closed at once). `0`: only the descriptor limit.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a graceful stop (on SIGTERM or Ctrl-C) waits for the clients' last lines to be
    /// delivered before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
}

/// Descriptors a client holds: its socket, split into a read and a write half (`dup`), and
/// the broadcaster's handle to shut it down.
const FDS_PER_CLIENT: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    if args.queue == 0 {
        return Err("--queue must be at least 1".into());
    }

    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let stop = goway::signal::shutdown_context(&goway::context::background())?;
    let grace = Duration::from_secs(args.grace);

    let listener = TcpListener::bind(&args.addr)?;
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", listener.local_addr()?);
    // Stopping: shutting the listening socket down (through a duplicate of its descriptor,
    // the acceptor owns the listener) wakes the accept below with an error.
    let wake = socket2::SockRef::from(listener.as_may().inner()).try_clone()?;
    {
        let stop = stop.clone();
        go!(move || {
            let _ = stop.done().recv();
            let _ = wake.shutdown(Shutdown::Read);
        });
    }

    // entering = make(chan client); leaving = make(chan client); messages = make(chan string)
    let (entering, entering_rx) = chan::bounded(0);
    let (leaving, leaving_rx) = chan::bounded(0);
    let (messages, messages_rx) = chan::bounded(0);
    let hub = Hub {
        entering,
        leaving,
        messages,
    };
    let limits = Limits {
        queue_bytes: args.queue_bytes,
        slow: Duration::from_millis(args.slow_ms),
        announce_per_sec: args.announce_per_sec,
    };
    let quit = stop.done();
    go!(move || broadcaster(entering_rx, leaving_rx, messages_rx, quit, limits));

    // The connection cap, the descriptor budget and Go's accept backoff of goway's servers.
    let mut acceptor = Acceptor::new(listener)
        .fds_per_connection(FDS_PER_CLIENT)
        .max_connections(args.max_connections);
    let mut next_id = 0u64;
    // Every client's goroutine holds a clone; `all_done` closes once they are all gone.
    let (alive, all_done) = chan::bounded::<()>(0);
    // Sessions that ended after the stop signal.
    let drained = Arc::new(AtomicUsize::new(0));
    loop {
        // Only an error that retrying cannot fix comes back (or the stop's).
        let (conn, peer, slot) = match acceptor.accept() {
            Ok(c) => c,
            Err(_) if stop.is_done() => break,
            Err(e) => return Err(e.into()),
        };
        next_id += 1;
        let (hub, id, queue, max_line) = (hub.clone(), next_id, args.queue, args.max_line);
        let (alive, stop, drained) = (alive.clone(), stop.clone(), drained.clone());
        go!(move || {
            let _alive = alive;
            // The client's place under the cap, until its goroutines are done.
            let _slot = slot;
            handle_conn(conn, peer.to_string(), id, hub, queue, max_line);
            if stop.is_done() {
                drained.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // The broadcaster has told the clients and ended their input: their sessions end once
    // their last lines are written.
    drop(alive);
    log::info!(
        "shutting down: draining {} client(s), grace {grace:?}",
        acceptor.active()
    );
    if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(grace) {
        let cut_off = acceptor.active();
        log::warn!("shutdown: grace period over, {cut_off} client(s) cut off");
        println!("shutdown: grace over, cut off {cut_off} connection(s)");
    } else {
        let n = drained.load(Ordering::Relaxed);
        log::info!("shutdown complete: {n} client(s) drained");
        println!("shutdown: drained {n} connection(s), cut off 0");
    }
    Ok(())
}
