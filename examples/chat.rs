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
//! - **Slow clients are dropped.** In the book each client's channel is unbuffered and the
//!   broadcaster sends to it with a plain `cli <- msg`: one client that stops reading stalls the
//!   broadcaster, and with it every other client. Here each client has a bounded queue
//!   (`--queue` lines, 256 by default) and the broadcaster never waits: it offers each line with
//!   `try_send` (Go's `select { case cli <- msg: default: }`). A client whose queue is full is
//!   **disconnected**: the broadcaster removes it, closes its queue, shuts its socket down (which
//!   also wakes its writer if that is stuck in a write), and tells the others
//!   `<addr> has left`. Its lines are never silently skipped: a client either gets every line,
//!   in order, or is disconnected.
//! - **The broadcaster greets.** It sends `You are <addr>` to the newcomer and
//!   `<addr> has arrived` to the others as it registers the newcomer, and `<addr> has left` as it
//!   removes a client. So once a client has read `You are ...`, it is certain to receive every
//!   later line (in the book, the arrival is broadcast before the client is registered, and a
//!   client may miss lines sent in between).
//! - **A client's own lines are not echoed back to it** (`nc` already shows what you type).
//! - **Lines are capped** at `--max-line` bytes (64 KiB by default, `bufio.Scanner`'s limit): a
//!   longer line ends that client's session, as `Scanner.Scan` stops with `ErrTooLong`.
//!
//! The process stops on SIGTERM or Ctrl-C; the kernel closes the connections.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use clap::Parser;
use goway::chan::{self, Receiver, Sender, TrySendError};
use goway::net::{TcpListener, TcpStream};
use goway::{go, select};

/// Chat server: every line a client sends goes to all the other clients.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7879")]
    addr: String,
    /// Lines queued per client; a client that falls this far behind is disconnected.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Longest line accepted from a client, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_line: usize,
}

/// How long a departing client's writer may take to deliver the lines still queued for it.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A connected client, as the broadcaster knows it (the book's `type client chan<- string`,
/// plus what the broadcaster needs to greet and to disconnect it).
struct Client {
    id: u64,
    who: String,
    /// The client's outgoing queue, drained by its writer goroutine.
    out: Sender<String>,
    /// A handle on the client's socket, to shut it down when the client is too slow.
    kick: TcpStream,
}

/// A line for everybody but its sender.
struct Message {
    from: u64,
    text: String,
}

/// The broadcaster's three input channels.
#[derive(Clone)]
struct Hub {
    entering: Sender<Client>,
    leaving: Sender<u64>,
    messages: Sender<Message>,
}

/// Pause after a failed accept, doubled on each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between accept retries.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    if args.queue == 0 {
        return Err("--queue must be at least 1".into());
    }

    let listener = TcpListener::bind(&args.addr)?;
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", listener.local_addr()?);

    // entering = make(chan client); leaving = make(chan client); messages = make(chan string)
    let (entering, entering_rx) = chan::bounded(0);
    let (leaving, leaving_rx) = chan::bounded(0);
    let (messages, messages_rx) = chan::bounded(0);
    let hub = Hub {
        entering,
        leaving,
        messages,
    };
    go!(move || broadcaster(entering_rx, leaving_rx, messages_rx));

    let mut next_id = 0u64;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let (conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: the pending client stays queued. Back off from 5 ms,
                // doubling up to 1 s, as Go's `http.Server.Serve` does.
                log::warn!("accept: {e}; retrying in {backoff:?}");
                goway::time::sleep(backoff);
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        next_id += 1;
        let (hub, id, queue, max_line) = (hub.clone(), next_id, args.queue, args.max_line);
        go!(move || handle_conn(conn, peer.to_string(), id, hub, queue, max_line));
    }
}

/// Owns the set of clients; the only goroutine that touches it, so it needs no lock.
fn broadcaster(entering: Receiver<Client>, leaving: Receiver<u64>, messages: Receiver<Message>) {
    let mut clients: HashMap<u64, Client> = HashMap::new();
    loop {
        select! {
            recv(messages) -> msg => {
                let Ok(msg) = msg else { return };
                // A line from a client already dropped as too slow is not delivered.
                if clients.contains_key(&msg.from) {
                    broadcast(&mut clients, msg.from, &msg.text);
                }
            },
            recv(entering) -> cli => {
                let Ok(cli) = cli else { return };
                let (id, who) = (cli.id, cli.who.clone());
                // The queue is new and empty: this is the client's first line.
                let _ = cli.out.try_send(format!("You are {who}"));
                clients.insert(id, cli);
                broadcast(&mut clients, id, &format!("{who} has arrived"));
                log::debug!("{who} entered ({} clients)", clients.len());
            },
            recv(leaving) -> id => {
                let Ok(id) = id else { return };
                // Absent if it was already dropped as too slow (and announced then).
                if let Some(cli) = clients.remove(&id) {
                    cli.out.close();
                    broadcast(&mut clients, id, &format!("{} has left", cli.who));
                    log::debug!("{} left ({} clients)", cli.who, clients.len());
                }
            },
        }
    }
}

/// Offers `text` to every client except `from`, never waiting. A client whose queue is full is
/// disconnected and its departure announced (which may disconnect more slow clients).
fn broadcast(clients: &mut HashMap<u64, Client>, from: u64, text: &str) {
    let mut pending = vec![(from, text.to_owned())];
    while let Some((from, text)) = pending.pop() {
        let mut slow = Vec::new();
        for (id, cli) in clients.iter() {
            if *id == from {
                continue;
            }
            match cli.out.try_send(text.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => slow.push(*id),
                // Its writer has stopped; its reader will report it leaving.
                Err(TrySendError::Closed(_)) => {}
            }
        }
        for id in slow {
            if let Some(cli) = clients.remove(&id) {
                log::warn!("{}: {} lines behind, disconnecting", cli.who, cli.out.len());
                cli.out.close();
                // Wakes its reader (EOF) and a writer stuck in a write.
                let _ = cli.kick.shutdown(Shutdown::Both);
                pending.push((id, format!("{} has left", cli.who)));
            }
        }
    }
}

/// One client: starts its writer, registers with the broadcaster, then forwards each line it
/// reads (the book's `handleConn`).
fn handle_conn(conn: TcpStream, who: String, id: u64, hub: Hub, queue: usize, max_line: usize) {
    let kick = match conn.try_clone() {
        Ok(k) => k,
        Err(e) => {
            log::warn!("{who}: {e}");
            return;
        }
    };
    let (rd, wr) = match conn.split() {
        Ok(halves) => halves,
        Err(e) => {
            log::warn!("{who}: {e}");
            return;
        }
    };
    // ch := make(chan string); go clientWriter(conn, ch)
    let (out, out_rx) = chan::bounded(queue);
    let writer = go!(move || client_writer(wr, out_rx));

    let client = Client {
        id,
        who: who.clone(),
        out,
        kick,
    };
    if hub.entering.send(client).is_err() {
        return;
    }

    // input := bufio.NewScanner(conn); for input.Scan() { messages <- who + ": " + input.Text() }
    let mut input = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = max_line as u64 + 1;
        match (&mut input).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                log::debug!("{who}: {e}");
                break;
            }
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() > max_line {
            log::info!("{who}: line longer than {max_line} bytes, closing");
            break;
        }
        let text = format!("{who}: {}", String::from_utf8_lossy(&line));
        if hub.messages.send(Message { from: id, text }).is_err() {
            break;
        }
        if !complete {
            break; // EOF after a last line without a newline
        }
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
/// momentarily empty. Ends when the broadcaster closes the queue or a write fails.
fn client_writer(conn: goway::net::TcpWriteHalf, out: Receiver<String>) {
    let mut w = BufWriter::new(conn);
    loop {
        let msg = select! {
            recv(out) -> msg => msg,
            default => {
                // Nothing queued right now: push the buffered lines out, then wait.
                if w.flush().is_err() {
                    break;
                }
                out.recv()
            },
        };
        let Ok(msg) = msg else { break };
        if w.write_all(msg.as_bytes()).is_err() || w.write_all(b"\n").is_err() {
            break;
        }
    }
    let _ = w.flush();
    // Closing: shut the socket down so that the reader also stops (a no-op if it already has).
    let _ = w.get_ref().shutdown(Shutdown::Both);
}
