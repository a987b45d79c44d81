//! The broadcaster (the book's `broadcaster`): owns the set of clients, greets and announces
//! them, and offers each line to every client within its queue's bounds.

use std::collections::HashMap;
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use goway::chan::{self, Receiver, RecvTimeoutError, TryRecvError, TrySendError};
use goway::select;

use crate::hub::{
    ANNOUNCE_WINDOW, Client, Limits, Line, Message, SLOW_CLIENTS, charge, line, now_ms,
};

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
pub(crate) fn broadcaster(
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
