//! Open loop: frames leave on a fixed schedule, whatever the echoes do, and latency counts
//! from the scheduled time, so a server that falls behind shows it in its latency instead of
//! slowing the load down (no coordinated omission).
//!
//! With R frames/s over C connections, the slots are `gap = 1/R` apart and connection `i`
//! owns slots `i, i + C, i + 2C, ...`: one frame every `C/R` seconds, the connections evenly
//! staggered. The thread never sleeps (epoll_wait with a zero timeout), so frames are queued
//! on time; a sleeping pacer would pay a timer and a wakeup per frame. At most
//! `max_in_flight` frames per connection are outstanding; later ones wait, keeping their
//! scheduled time.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::conn::{Conn, Pattern, Record, Window};

pub struct Schedule {
    pub t0: Instant,
    /// Nanoseconds between two consecutive slots (over all connections).
    pub gap_ns: u64,
    pub conns: u64,
    pub max_in_flight: usize,
}

impl Schedule {
    /// When frame `k` of connection `conn` is due.
    pub fn at(&self, conn: usize, k: u64) -> Instant {
        let slot = k.saturating_mul(self.conns).saturating_add(conn as u64);
        self.t0 + Duration::from_nanos(slot.saturating_mul(self.gap_ns))
    }

    /// How many frames of connection `conn` are due before `t`.
    pub fn due_before(&self, conn: usize, t: Instant) -> u64 {
        let elapsed =
            u64::try_from(t.saturating_duration_since(self.t0).as_nanos()).unwrap_or(u64::MAX);
        let first = conn as u64 * self.gap_ns;
        if elapsed <= first {
            return 0;
        }
        let period = self.conns * self.gap_ns;
        (elapsed - first).div_ceil(period)
    }
}

/// Frames due by the end of the window and not echoed, and those of them not even sent.
#[derive(Default)]
pub struct Backlog {
    pub unanswered: u64,
    pub unsent: u64,
}

pub fn run(
    mut conns: Vec<Conn>,
    pat: &Pattern,
    sch: &Schedule,
    win: Window,
) -> io::Result<(Record, Backlog)> {
    let mut rec = Record::new(win);
    let mut poll = Poll::new()?;
    for (i, c) in conns.iter_mut().enumerate() {
        c.next_due = sch.at(c.id, 0);
        poll.registry().register(
            &mut c.sock,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
    }
    let mut live = conns.len();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    while live > 0 {
        let now = Instant::now();
        if now >= win.end {
            break;
        }
        for c in conns.iter_mut().filter(|c| c.alive) {
            let mut queued = false;
            while c.next_due <= now && c.in_flight() < sch.max_in_flight {
                let due = c.next_due;
                c.queue(pat, due);
                rec.queued(due, now);
                c.next_due = sch.at(c.id, c.sent);
                queued = true;
            }
            if queued && c.flush().is_err() {
                c.alive = false;
                live -= 1;
                rec.conn_errors += 1;
                let _ = poll.registry().deregister(&mut c.sock);
            }
        }
        match poll.poll(&mut events, Some(Duration::ZERO)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if !c.alive {
                continue;
            }
            let mut ok = true;
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                ok = c.read_all(&mut buf, pat, &mut rec).is_ok();
            }
            if ok && ev.is_writable() {
                ok = c.flush().is_ok();
            }
            if !ok {
                c.alive = false;
                live -= 1;
                rec.conn_errors += 1;
                let _ = poll.registry().deregister(&mut c.sock);
            }
        }
    }
    let mut backlog = Backlog::default();
    for c in conns.iter().filter(|c| c.alive) {
        let due = sch.due_before(c.id, win.end);
        backlog.unanswered += due.saturating_sub(c.received);
        backlog.unsent += due.saturating_sub(c.sent);
    }
    Ok((rec, backlog))
}
