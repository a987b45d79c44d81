//! Closed loop: every connection keeps `pipeline` frames in flight, sending a new frame each
//! time an echoed one has fully arrived.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::conn::{Conn, Pattern, Record, Window};

pub fn run(
    mut conns: Vec<Conn>,
    pat: &Pattern,
    pipeline: usize,
    win: Window,
) -> io::Result<Record> {
    let mut rec = Record::new(win);
    let mut poll = Poll::new()?;
    for (i, c) in conns.iter_mut().enumerate() {
        poll.registry().register(
            &mut c.sock,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
    }
    let mut live = conns.len();
    let now = Instant::now();
    for c in conns.iter_mut() {
        while c.in_flight() < pipeline {
            c.queue(pat, now);
        }
        if c.flush().is_err() {
            c.alive = false;
            live -= 1;
            rec.conn_errors += 1;
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 << 10];
    while live > 0 {
        let left = win.end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match poll.poll(&mut events, Some(left.min(Duration::from_millis(10)))) {
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
            if ok {
                let now = Instant::now();
                while c.in_flight() < pipeline {
                    c.queue(pat, now);
                }
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
    Ok(rec)
}
