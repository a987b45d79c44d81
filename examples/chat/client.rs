//! One client: its reader (the book's `handleConn`) and its writer (`clientWriter`).

use std::io::{BufWriter, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use goway::bufio::{ScanError, Scanner};
use goway::chan::{self, Receiver, Sender};
use goway::net::TcpStream;
use goway::{go, select};

use crate::hub::{Backlog, Client, DRAIN_LIMIT, Hub, LONG_LINES, Line, Message, charge, now_ms};

/// One client: starts its writer, registers with the broadcaster, then forwards each line it
/// reads (the book's `handleConn`).
pub(crate) fn handle_conn(
    conn: TcpStream,
    who: String,
    id: u64,
    hub: Hub,
    queue: usize,
    max_line: usize,
) {
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
