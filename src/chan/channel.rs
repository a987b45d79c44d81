//! The channel algorithm: one lock-protected state per channel, as in Go's `runtime/chan.go`.
//!
//! Invariants (all under `Chan::inner`):
//! - `buf.len() <= cap`; `cap == 0` is the unbuffered rendezvous, `usize::MAX` unbounded.
//! - A live receiver packet waits in `recvq` only while `buf` is empty; a live sender packet
//!   waits in `sendq` only while `buf` is full. Dead packets (waiter already committed or
//!   aborted) may linger briefly; whoever meets one drops it.
//! - A sender packet's slot holds its value until a receiver takes it, or until the sender
//!   takes it back (timeout, close, or another select case won).
//! - Once `closed` is set it never clears, and both wait queues are empty from then on.
//! - Waiters are woken only after the lock is released.
//! - Nothing under the lock parks, yields, wakes a waiter, or drops a value or a packet that
//!   could be the last reference (values and dead packets are dropped after the release). The
//!   lock is a spin lock ([`lock`](super::lock)), so other threads spin while it is held, and
//!   what it guards stays short (a few sections grow with a queue's length, see there).
//!
//! Everything this file synchronises with comes from [`shim`](super::shim): `tests/loom_waiter.rs`
//! compiles this same file against a loom-based shim and model-checks it.

use std::collections::VecDeque;

use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use super::packet::Packet;
use super::shim::{
    Arc, AtomicBool, AtomicUsize, Instant, Mutex, Ordering, Site, Wait, Waiter, Why, yield_now,
};

pub(crate) struct Chan<T> {
    /// Guards the buffer, the wait queues and `closed`.
    inner: Mutex<Inner<T>>,
    cap: usize,
    /// Mirror of `Inner::closed`, for lock-free `is_closed()`.
    closed: AtomicBool,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
    /// Where the channel was made: its identity in goroutine dumps.
    site: Site,
}

struct Inner<T> {
    buf: VecDeque<T>,
    closed: bool,
    recvq: VecDeque<Arc<Packet<T>>>,
    sendq: VecDeque<Arc<Packet<T>>>,
}

/// A committed packet whose waiter to wake once the lock is released (the queue's reference
/// to the packet, so waking it takes no reference count of its own).
pub(crate) type Wake<T> = Option<Arc<Packet<T>>>;

/// Packets of finished waiters met under the lock. They are dropped only after the lock is
/// released: dropping the last reference to a waiter can wait for may to finish parking its
/// coroutine, which must never happen while holding a lock that coroutine may need.
pub(crate) type Dead<T> = Vec<Arc<Packet<T>>>;

/// `q.remove(i)`, with the usual case (the head of the queue) as a plain `pop_front`.
#[inline]
fn take_at<P>(q: &mut VecDeque<P>, i: usize) -> Option<P> {
    if i == 0 { q.pop_front() } else { q.remove(i) }
}

#[inline]
fn wake<T>(w: Wake<T>) {
    if let Some(p) = w {
        p.waiter.unpark();
    }
}

/// Pops the first live sender packet not owned by `me`, takes its value and commits its
/// waiter. The value leaves the slot *before* the commit: a sender that sees itself committed
/// reads its slot at once, and must find it empty (delivered), never its own value (which means
/// closed). If the commit fails, the value goes back for its owner to collect. Dead packets go
/// to `dead`; `me`'s own packets (a select sending and receiving on one channel) stay.
fn commit_sender<T>(
    q: &mut VecDeque<Arc<Packet<T>>>,
    me: Option<&Arc<Waiter>>,
    dead: &mut Dead<T>,
) -> Option<(T, Arc<Packet<T>>)> {
    let mut i = 0;
    while i < q.len() {
        if me.is_some_and(|me| q[i].belongs_to(me)) {
            i += 1;
            continue;
        }
        let p = take_at(q, i)?;
        // SAFETY: a peer under the channel's lock, with the packet just out of the queue
        // (packet.rs: who touches a slot); the value leaves before the commit.
        if let Some(v) = unsafe { p.take() } {
            if p.try_select() {
                return Some((v, p));
            }
            // SAFETY: as above; the commit failed, so the slot is still this peer's.
            unsafe { p.put(v) };
        }
        dead.push(p);
    }
    None
}

/// `true` if a live packet not owned by `me` waits in `q`.
fn has_peer<T>(q: &VecDeque<Arc<Packet<T>>>, me: &Arc<Waiter>) -> bool {
    q.iter().any(|p| !p.belongs_to(me) && p.waiter.is_waiting())
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize, site: Site) -> Self {
        Chan {
            inner: Mutex::new(Inner {
                // Grows with use: an idle connection's queues (two per connection, 64 slots
                // each) would otherwise hold 3 KiB that it never fills.
                buf: VecDeque::with_capacity(cap.min(4)),
                closed: false,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
            }),
            cap,
            closed: AtomicBool::new(false),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
            site,
        }
    }

    #[inline]
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().buf.len()
    }

    /// `true` if a receiver is parked on the channel right now: a `recv`, or a select with a
    /// receive case on it, still waiting (a packet whose waiter committed elsewhere or gave up
    /// does not count).
    pub(crate) fn has_waiting_receiver(&self) -> bool {
        self.inner
            .lock()
            .recvq
            .iter()
            .any(|p| p.waiter.is_waiting())
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Caller holds `inner`. Sends without blocking; on success returns the receiver to wake.
    fn try_send_locked(
        &self,
        g: &mut Inner<T>,
        v: T,
        me: Option<&Arc<Waiter>>,
        dead: &mut Dead<T>,
    ) -> Result<Wake<T>, TrySendError<T>> {
        if g.closed {
            return Err(TrySendError::Closed(v));
        }
        let mut v = v;
        // A waiting receiver means the buffer is empty: hand the value over directly.
        loop {
            let mut i = 0;
            let mut found = None;
            while i < g.recvq.len() {
                if me.is_some_and(|me| g.recvq[i].belongs_to(me)) {
                    i += 1;
                    continue;
                }
                found = take_at(&mut g.recvq, i);
                break;
            }
            let Some(p) = found else { break };
            // The value goes into the slot before the commit, so the receiver finds it as soon
            // as it sees itself selected.
            // SAFETY: a peer under the channel's lock, with the packet just out of the queue
            // (packet.rs: who touches a slot); it writes before the commit, never after.
            unsafe { p.put(v) };
            if p.try_select() {
                return Ok(Some(p));
            }
            // SAFETY: as above; the commit failed, so the slot is still this peer's.
            match unsafe { p.take() } {
                Some(back) => v = back,
                None => unreachable!("a dead packet's slot is touched by nobody else"),
            }
            dead.push(p);
        }
        if g.buf.len() < self.cap {
            g.buf.push_back(v);
            Ok(None)
        } else {
            Err(TrySendError::Full(v))
        }
    }

    /// Caller holds `inner`. Receives without blocking; on success returns the sender to wake.
    fn try_recv_locked(
        &self,
        g: &mut Inner<T>,
        me: Option<&Arc<Waiter>>,
        dead: &mut Dead<T>,
    ) -> Result<(T, Wake<T>), TryRecvError> {
        if let Some(v) = g.buf.pop_front() {
            // A slot freed: move the first waiting sender's value into the buffer (FIFO kept).
            let mut w = None;
            if !g.sendq.is_empty() {
                if let Some((sv, sw)) = commit_sender(&mut g.sendq, me, dead) {
                    g.buf.push_back(sv);
                    w = Some(sw);
                }
            }
            return Ok((v, w));
        }
        // Unbuffered (or a momentarily empty buffer): take straight from a waiting sender.
        if let Some((v, sw)) = commit_sender(&mut g.sendq, me, dead) {
            return Ok((v, Some(sw)));
        }
        if g.closed {
            Err(TryRecvError::Closed)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut dead = Dead::new();
        let r = {
            let mut g = self.inner.lock();
            self.try_send_locked(&mut g, v, None, &mut dead)
        };
        drop(dead);
        r.map(wake)
    }

    /// `try_send` that leaves the wake-up and the dead packets to the caller, who must run
    /// them after releasing its own locks (see [`Dead`]).
    pub(crate) fn try_send_deferred(
        &self,
        v: T,
    ) -> (Result<(), TrySendError<T>>, Wake<T>, Dead<T>) {
        let mut dead = Dead::new();
        let r = {
            let mut g = self.inner.lock();
            self.try_send_locked(&mut g, v, None, &mut dead)
        };
        match r {
            Ok(w) => (Ok(()), w, dead),
            Err(e) => (Err(e), None, dead),
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut dead = Dead::new();
        let r = {
            let mut g = self.inner.lock();
            self.try_recv_locked(&mut g, None, &mut dead)
        };
        drop(dead);
        r.map(|(v, w)| {
            wake(w);
            v
        })
    }

    /// Moves up to `max` ready values into `out` under one lock; how many it moved.
    pub(crate) fn try_recv_many(&self, out: &mut Vec<T>, max: usize) -> usize {
        let mut dead = Dead::new();
        let mut wakes: Vec<Arc<Packet<T>>> = Vec::new();
        let mut n = 0;
        {
            let mut g = self.inner.lock();
            while n < max {
                match self.try_recv_locked(&mut g, None, &mut dead) {
                    Ok((v, w)) => {
                        out.push(v);
                        n += 1;
                        if let Some(w) = w {
                            wakes.push(w);
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        drop(dead);
        for p in wakes {
            p.waiter.unpark();
        }
        n
    }

    /// Blocking send; `deadline == None` waits as long as it takes.
    pub(crate) fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        // Declared before the guard, so dropped after it.
        let mut dead = Dead::new();
        let mut g = self.inner.lock();
        let v = match self.try_send_locked(&mut g, v, None, &mut dead) {
            Ok(w) => {
                drop(g);
                wake(w);
                return Ok(());
            }
            Err(TrySendError::Closed(v)) => return Err(SendTimeoutError::Closed(v)),
            Err(TrySendError::Full(v)) => v,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            drop(g);
            drop(dead);
            // An expired deadline still lets the others run once (see `Waiter::wait`).
            yield_now();
            return Err(SendTimeoutError::Timeout(v));
        }
        let waiter = Waiter::new();
        let packet = Packet::new(waiter.clone(), 0, Some(v));
        g.sendq.push_back(packet.clone());
        drop(g);
        drop(dead);
        let r = match waiter.wait(deadline, Why::at(Wait::ChanSend, self.site)) {
            // Committed: by a receiver (slot emptied) or by close (value still there).
            // SAFETY: the owner, committed through this packet (its only one).
            Some(_) => match unsafe { packet.take() } {
                None => Ok(()),
                Some(v) => Err(SendTimeoutError::Closed(v)),
            },
            None => {
                self.remove_send(&packet);
                // SAFETY: the owner, with the packet out of the queue under the lock.
                match unsafe { packet.take() } {
                    Some(v) => Err(SendTimeoutError::Timeout(v)),
                    None => unreachable!("an aborted send keeps its value"),
                }
            }
        };
        drop(packet);
        Waiter::release(waiter);
        r
    }

    /// Blocking receive; `deadline == None` waits as long as it takes.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        // Declared before the guard, so dropped after it.
        let mut dead = Dead::new();
        let mut g = self.inner.lock();
        match self.try_recv_locked(&mut g, None, &mut dead) {
            Ok((v, w)) => {
                drop(g);
                wake(w);
                return Ok(v);
            }
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            drop(g);
            drop(dead);
            // An expired deadline still lets the others run once (see `Waiter::wait`).
            yield_now();
            return Err(RecvTimeoutError::Timeout);
        }
        let waiter = Waiter::new();
        let packet = Packet::new(waiter.clone(), 0, None);
        g.recvq.push_back(packet.clone());
        drop(g);
        drop(dead);
        let r = match waiter.wait(deadline, Why::at(Wait::ChanRecv, self.site)) {
            // Committed: by a sender (value in the slot) or by close (slot empty).
            // SAFETY: the owner, committed through this packet (its only one).
            Some(_) => unsafe { packet.take() }.ok_or(RecvTimeoutError::Closed),
            None => {
                self.remove_recv(&packet);
                Err(RecvTimeoutError::Timeout)
            }
        };
        drop(packet);
        Waiter::release(waiter);
        r
    }

    /// Closes the channel; `true` if this call closed it. Every waiter is committed and woken:
    /// receivers see the close, senders get their values back.
    pub(crate) fn close(&self) -> bool {
        let (recvq, sendq) = {
            let mut g = self.inner.lock();
            if g.closed {
                return false;
            }
            g.closed = true;
            self.closed.store(true, Ordering::Release);
            (std::mem::take(&mut g.recvq), std::mem::take(&mut g.sendq))
        };
        for p in recvq.into_iter().chain(sendq) {
            if p.try_select() {
                p.waiter.unpark();
            }
        }
        true
    }

    /// The last receiver is gone: close, and drop what nobody can receive any more (outside
    /// the lock, since a value's destructor may do anything).
    pub(crate) fn disconnect_receivers(&self) {
        self.close();
        let buf = std::mem::take(&mut self.inner.lock().buf);
        drop(buf);
    }

    fn remove_send(&self, p: &Arc<Packet<T>>) {
        self.inner.lock().sendq.retain(|q| !Arc::ptr_eq(q, p));
    }

    fn remove_recv(&self, p: &Arc<Packet<T>>) {
        self.inner.lock().recvq.retain(|q| !Arc::ptr_eq(q, p));
    }

    // ----- select support -------------------------------------------------------------------

    /// Registers a select's receive. Returns `Ok(packet)` once queued, or `Err(())` without
    /// queueing when the channel is ready for `me` already (the select then polls again).
    pub(crate) fn register_recv(
        &self,
        me: &Arc<Waiter>,
        case: usize,
    ) -> Result<Arc<Packet<T>>, ()> {
        let mut g = self.inner.lock();
        if !g.buf.is_empty() || g.closed || has_peer(&g.sendq, me) {
            return Err(());
        }
        let p = Packet::new(me.clone(), case, None);
        g.recvq.push_back(p.clone());
        Ok(p)
    }

    /// Registers a select's send of `v`; `Err(v)` when the channel is ready for `me` already.
    pub(crate) fn register_send(
        &self,
        me: &Arc<Waiter>,
        case: usize,
        v: T,
    ) -> Result<Arc<Packet<T>>, T> {
        let mut g = self.inner.lock();
        if g.closed || g.buf.len() < self.cap || has_peer(&g.recvq, me) {
            return Err(v);
        }
        let p = Packet::new(me.clone(), case, Some(v));
        g.sendq.push_back(p.clone());
        Ok(p)
    }

    pub(crate) fn unregister_recv(&self, p: &Arc<Packet<T>>) {
        self.remove_recv(p);
    }

    pub(crate) fn unregister_send(&self, p: &Arc<Packet<T>>) {
        self.remove_send(p);
    }
}
