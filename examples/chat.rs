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

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::bufio::{ScanError, Scanner};
use goway::chan::{self, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use goway::logging::LogSummary;
use goway::net::{Acceptor, TcpListener, TcpStream};
use goway::{go, select};

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

/// How long a departing client's writer may take to deliver the lines still queued for it.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// What a queued line costs beyond its bytes (its `Arc` header, its slot in the queue and
/// the allocator's rounding), for the byte bound of the queues.
const LINE_OVERHEAD: usize = 64;
/// Arrivals and departures are announced one by one up to `--announce-per-sec` per window;
/// the rest are counted and announced together when the window ends.
const ANNOUNCE_WINDOW: Duration = Duration::from_secs(1);

/// What clients can cause as often as they like is logged at most once per 10 s per kind: the
/// first with its detail, then a count (`goway::logging::LogSummary`).
static SLOW_CLIENTS: LazyLock<LogSummary> =
    LazyLock::new(|| LogSummary::new("slow clients disconnected").target("chat"));
static LONG_LINES: LazyLock<LogSummary> = LazyLock::new(|| {
    LogSummary::new("clients disconnected for a line over --max-line").target("chat")
});

/// A line as queued for the clients, newline included: one allocation shared by every queue.
type Line = Arc<[u8]>;

fn line(text: &str) -> Line {
    let mut v = Vec::with_capacity(text.len() + 1);
    v.extend_from_slice(text.as_bytes());
    v.push(b'\n');
    v.into()
}

fn charge(line: &Line) -> usize {
    line.len() + LINE_OVERHEAD
}

/// Milliseconds since the process started (`0` is reserved for "not writing").
fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

/// A client's backlog, shared by the broadcaster and the client's writer.
#[derive(Default)]
struct Backlog {
    /// Bytes queued or being written (see `charge`).
    bytes: AtomicUsize,
    /// When the write to the socket in progress started (`now_ms`), `0` between writes.
    writing_since: AtomicU64,
}

/// A connected client, as the broadcaster knows it (the book's `type client chan<- string`,
/// plus what the broadcaster needs to greet, pace and disconnect it).
struct Client {
    id: u64,
    who: String,
    /// The client's outgoing queue, drained by its writer goroutine.
    out: Sender<Line>,
    backlog: Arc<Backlog>,
    /// A token from the writer each time it has written a line.
    progress: Receiver<()>,
    /// A handle on the client's socket, to shut it down when the client is too slow.
    kick: Arc<TcpStream>,
}

/// A line for everybody but its sender.
struct Message {
    from: u64,
    line: Line,
}

/// The broadcaster's three input channels.
#[derive(Clone)]
struct Hub {
    entering: Sender<Client>,
    leaving: Sender<u64>,
    messages: Sender<Message>,
}

/// The queue bounds, as the broadcaster applies them.
#[derive(Clone, Copy)]
struct Limits {
    queue_bytes: usize,
    slow: Duration,
    announce_per_sec: u32,
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

/// Announces arrivals and departures: one by one up to `burst` per window, then counted and
/// announced together when the window ends.
struct Announcer {
    burst: u32,
    window: Instant,
    announced: u32,
    arrived: u64,
    left: u64,
    /// Fires when the counted ones are due; `None` while nothing is counted.
    due: Option<Receiver<Instant>>,
}

impl Announcer {
    fn new(burst: u32) -> Self {
        Announcer {
            burst,
            window: Instant::now(),
            announced: 0,
            arrived: 0,
            left: 0,
            due: None,
        }
    }

    /// `Some(line)` to announce now, `None` if counted for the summary.
    fn announce(&mut self, text: String, arrival: bool) -> Option<Line> {
        let now = Instant::now();
        if self.due.is_none() && now.duration_since(self.window) >= ANNOUNCE_WINDOW {
            self.window = now;
            self.announced = 0;
        }
        if self.announced < self.burst {
            self.announced += 1;
            return Some(line(&text));
        }
        if arrival {
            self.arrived += 1;
        } else {
            self.left += 1;
        }
        if self.due.is_none() {
            let end = self.window + ANNOUNCE_WINDOW;
            self.due = Some(goway::time::after(end.saturating_duration_since(now)));
        }
        None
    }

    /// The summary of what was counted; a new window starts.
    fn summary(&mut self) -> Line {
        let l = line(&format!(
            "({} more arrived, {} more left)",
            self.arrived, self.left
        ));
        self.arrived = 0;
        self.left = 0;
        self.due = None;
        self.window = Instant::now();
        self.announced = 0;
        l
    }
}

/// Owns the set of clients; the only goroutine that touches it, so it needs no lock.
fn broadcaster(
    entering: Receiver<Client>,
    leaving: Receiver<u64>,
    messages: Receiver<Message>,
    quit: Receiver<()>,
    limits: Limits,
) {
    let mut clients: HashMap<u64, Client> = HashMap::new();
    let mut ann = Announcer::new(limits.announce_per_sec);
    let never = chan::never();
    let mut quit = Some(quit);
    let never_quit = chan::never();
    loop {
        let due = ann.due.clone();
        select! {
            recv(quit.as_ref().unwrap_or(&never_quit)) -> _ => {
                // The server stops: tell everyone, then end every client's input; each
                // reader then leaves as if its client had hung up, and its writer delivers
                // what is queued before closing.
                quit = None;
                broadcast(&mut clients, &mut ann, limits, 0, line("server shutting down"));
                for cli in clients.values() {
                    let _ = cli.kick.shutdown(Shutdown::Read);
                }
            },
            recv(messages) -> msg => {
                let Ok(msg) = msg else { return };
                // A line from a client already dropped as too slow is not delivered.
                if clients.contains_key(&msg.from) {
                    broadcast(&mut clients, &mut ann, limits, msg.from, msg.line);
                }
            },
            recv(entering) -> cli => {
                let Ok(cli) = cli else { return };
                let (id, who) = (cli.id, cli.who.clone());
                // The queue is new and empty: this is the client's first line.
                let greeting = line(&format!("You are {who}"));
                cli.backlog.bytes.fetch_add(charge(&greeting), Ordering::Relaxed);
                let _ = cli.out.try_send(greeting);
                clients.insert(id, cli);
                if let Some(l) = ann.announce(format!("{who} has arrived"), true) {
                    broadcast(&mut clients, &mut ann, limits, id, l);
                }
                log::debug!("{who} entered ({} clients)", clients.len());
            },
            recv(leaving) -> id => {
                let Ok(id) = id else { return };
                // Absent if it was already dropped as too slow (and announced then).
                if let Some(cli) = clients.remove(&id) {
                    cli.out.close();
                    if let Some(l) = ann.announce(format!("{} has left", cli.who), false) {
                        broadcast(&mut clients, &mut ann, limits, id, l);
                    }
                    log::debug!("{} left ({} clients)", cli.who, clients.len());
                }
            },
            recv(due.as_ref().unwrap_or(&never)) -> _ => {
                let l = ann.summary();
                broadcast(&mut clients, &mut ann, limits, 0, l);
            },
        }
    }
}

/// What became of a line offered to one client.
enum Delivery {
    Queued,
    /// The client's writer has stopped; its reader will report it leaving.
    Gone,
    /// The queue stayed full while the writer made no progress: disconnect the client.
    Slow,
}

/// Queues `line` for `cli`, within its bounds. When the queue is full, waits for the writer
/// to make room, until its current write has been stuck for `limits.slow` (or, if it is not
/// in a write, for `limits.slow` from now).
fn deliver(cli: &Client, line: &Line, limits: Limits) -> Delivery {
    let cost = charge(line);
    let mut deadline: Option<Instant> = None;
    loop {
        // Forget earlier progress tokens, then look: a token sent after this is not lost.
        if let Err(TryRecvError::Closed) = cli.progress.try_recv() {
            return Delivery::Gone;
        }
        let queued = cli.backlog.bytes.load(Ordering::Relaxed);
        // An empty queue takes any line (a line is never longer than --max-line).
        if queued == 0 || queued + cost <= limits.queue_bytes {
            cli.backlog.bytes.fetch_add(cost, Ordering::Relaxed);
            match cli.out.try_send(line.clone()) {
                Ok(()) => return Delivery::Queued,
                Err(TrySendError::Closed(_)) => {
                    cli.backlog.bytes.fetch_sub(cost, Ordering::Relaxed);
                    return Delivery::Gone;
                }
                Err(TrySendError::Full(_)) => {
                    cli.backlog.bytes.fetch_sub(cost, Ordering::Relaxed);
                }
            }
        }
        let now = Instant::now();
        let deadline = *deadline.get_or_insert_with(|| {
            match cli.backlog.writing_since.load(Ordering::Relaxed) {
                0 => now + limits.slow,
                since => {
                    let stuck = Duration::from_millis(now_ms().saturating_sub(since));
                    now + limits.slow.saturating_sub(stuck)
                }
            }
        });
        if now >= deadline {
            return Delivery::Slow;
        }
        match cli.progress.recv_deadline(deadline) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Closed) => return Delivery::Gone,
        }
    }
}

/// Offers `line` to every client except `from`. A client whose queue stays full while its
/// writer is stuck is disconnected and its departure announced (which may disconnect more
/// slow clients).
fn broadcast(
    clients: &mut HashMap<u64, Client>,
    ann: &mut Announcer,
    limits: Limits,
    from: u64,
    line: Line,
) {
    let mut pending = vec![(from, line)];
    while let Some((from, line)) = pending.pop() {
        let mut slow = Vec::new();
        for (id, cli) in clients.iter() {
            if *id == from {
                continue;
            }
            match deliver(cli, &line, limits) {
                Delivery::Queued | Delivery::Gone => {}
                Delivery::Slow => slow.push(*id),
            }
        }
        for id in slow {
            if let Some(cli) = clients.remove(&id) {
                let behind = cli.backlog.bytes.load(Ordering::Relaxed);
                if !SLOW_CLIENTS.record(|| {
                    format!(
                        "{}: {behind} bytes behind and not reading, disconnecting",
                        cli.who
                    )
                }) {
                    log::debug!("{}: {behind} bytes behind, disconnecting", cli.who);
                }
                cli.out.close();
                // Wakes its reader (EOF) and a writer stuck in a write.
                let _ = cli.kick.shutdown(Shutdown::Both);
                if let Some(l) = ann.announce(format!("{} has left", cli.who), false) {
                    pending.push((id, l));
                }
            }
        }
    }
}

/// One client: starts its writer, registers with the broadcaster, then forwards each line it
/// reads (the book's `handleConn`).
fn handle_conn(conn: TcpStream, who: String, id: u64, hub: Hub, queue: usize, max_line: usize) {
    // One connection shared by the reader (here), the writer and the broadcaster, which kicks a
    // slow client with `shutdown` from its own goroutine: Go's `net.Conn` contract.
    let conn = Arc::new(conn);
    let kick = conn.clone();
    let wr = conn.clone();
    // ch := make(chan string); go clientWriter(conn, ch)
    let (out, out_rx) = chan::bounded(queue);
    let (progress_tx, progress) = chan::bounded(1);
    let backlog = Arc::new(Backlog::default());
    let writer = {
        let backlog = backlog.clone();
        go!(move || client_writer(wr, out_rx, &backlog, progress_tx))
    };

    let client = Client {
        id,
        who: who.clone(),
        out,
        backlog,
        progress,
        kick,
    };
    if hub.entering.send(client).is_err() {
        return;
    }

    // input := bufio.NewScanner(conn); for input.Scan() { messages <- who + ": " + input.Text() }
    // A line may hold `max_line` bytes before its newline.
    let mut input = Scanner::new(&*conn).max_token_size(max_line.saturating_add(1));
    let prefix = format!("{who}: ");
    while input.scan() {
        // The outgoing line: `<who>: <text>\n` (invalid UTF-8 replaced, as Go's %s would not:
        // the other clients get text).
        let text = input.text();
        let mut line = Vec::with_capacity(prefix.len() + text.len() + 1);
        line.extend_from_slice(prefix.as_bytes());
        line.extend_from_slice(text.as_bytes());
        line.push(b'\n');
        if hub
            .messages
            .send(Message {
                from: id,
                line: line.into(),
            })
            .is_err()
        {
            break;
        }
    }
    match input.err() {
        Some(ScanError::TooLong { .. }) => {
            LONG_LINES.record(|| format!("{who}: line longer than {max_line} bytes, closing"));
        }
        Some(e) => log::debug!("{who}: {e}"),
        None => {}
    }

    // leaving <- ch; the broadcaster closes the client's queue and announces the departure.
    let _ = hub.leaving.send(id);
    // The writer drains what is queued, then closes the connection. A client that has stopped
    // reading could keep it in a write forever (the book's clientWriter would leak): after a
    // grace period the socket is shut down, which fails that write.
    if let Err(Ok(writer)) = writer.join_timeout(DRAIN_LIMIT) {
        log::debug!("{who}: not reading its last lines, closing");
        let _ = input.get_ref().shutdown(Shutdown::Both);
        let _ = writer.join();
    }
}

/// Writes the client's queued lines (the book's `clientWriter`), flushing whenever the queue is
/// momentarily empty. Ends when the broadcaster closes the queue or a write fails. Tells the
/// broadcaster how far it got: `backlog` (bytes left, and whether it is stuck in a write) and a
/// token on `progress` after each line.
fn client_writer(
    conn: Arc<TcpStream>,
    out: Receiver<Line>,
    backlog: &Backlog,
    progress: Sender<()>,
) {
    let mut w = BufWriter::new(&*conn);
    loop {
        let msg = select! {
            recv(out) -> msg => msg,
            default => {
                // Nothing queued right now: push the buffered lines out, then wait.
                backlog.writing_since.store(now_ms(), Ordering::Relaxed);
                let flushed = w.flush();
                backlog.writing_since.store(0, Ordering::Relaxed);
                if flushed.is_err() {
                    break;
                }
                out.recv()
            },
        };
        let Ok(msg) = msg else { break };
        backlog.writing_since.store(now_ms(), Ordering::Relaxed);
        let written = w.write_all(&msg);
        backlog.writing_since.store(0, Ordering::Relaxed);
        if written.is_err() {
            break;
        }
        backlog.bytes.fetch_sub(charge(&msg), Ordering::Relaxed);
        let _ = progress.try_send(());
    }
    let _ = w.flush();
    // Closing: shut the socket down so that the reader also stops (a no-op if it already has).
    let _ = w.get_ref().shutdown(Shutdown::Both);
}
