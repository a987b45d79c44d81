//! The engine behind [`select!`](crate::select!) and the run-time [`Select`] builder.
//!
//! A select runs in Go's three steps (`runtime/select.go`), with crossbeam-channel's commit
//! protocol instead of locking every channel at once:
//! 1. poll every case once, in a fresh random order, and commit the first that is ready, so
//!    that among ready cases each is chosen with equal probability;
//! 2. if none is ready (and there is no `default`), queue one packet per case on its channel,
//!    all sharing one waiter; if a channel turns out ready while registering, withdraw and
//!    poll again;
//! 3. park; the first peer to commit the waiter wins, the other packets are removed.
//!
//! Exactly one case commits, no message is lost or duplicated, and no packet is left behind.
//!
//! This file holds the engine and the macro's cases; `builder.rs` the run-time [`Select`].

mod builder;

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::chan::packet::Packet;
use crate::chan::{Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError};
use crate::runtime::park::Waiter;
use crate::runtime::registry::{Wait, Why};
pub use builder::Select;

/// One case of a select: a receive or a send on one channel. Implemented by [`RecvCase`] and
/// [`SendCase`]; used by the `select!` macro, not meant to be implemented elsewhere.
#[doc(hidden)]
pub trait Case {
    /// Never ready (a never channel, or a send case whose value was already used).
    fn is_never(&self) -> bool;
    /// Step 1: try without waiting; on success the result is stored in the case.
    fn try_op(&mut self) -> bool;
    /// Step 2: queue a packet for `w` as case `idx`. `false` if the channel is ready already
    /// (nothing queued).
    fn register(&mut self, w: &Arc<Waiter>, idx: usize) -> bool;
    /// Removes the queued packet, if any, taking back an unsent value.
    fn unregister(&mut self);
    /// Step 3: this case committed through its packet; collect the result.
    fn complete(&mut self);
}

/// A receive case: `recv(rx) -> res`.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    packet: Option<Arc<Packet<T>>>,
    result: Option<Result<T, RecvError>>,
}

impl<'a, T> RecvCase<'a, T> {
    /// A receive case on `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvCase {
            rx,
            packet: None,
            result: None,
        }
    }
}

impl<T> Case for RecvCase<'_, T> {
    fn is_never(&self) -> bool {
        self.rx.chan.is_none()
    }

    fn try_op(&mut self) -> bool {
        match self.rx.try_recv() {
            Ok(v) => {
                self.result = Some(Ok(v));
                true
            }
            Err(TryRecvError::Closed) => {
                self.result = Some(Err(RecvError));
                true
            }
            Err(TryRecvError::Empty) => false,
        }
    }

    fn register(&mut self, w: &Arc<Waiter>, idx: usize) -> bool {
        let Some(c) = &self.rx.chan else { return true };
        match c.register_recv(w, idx) {
            Ok(p) => {
                self.packet = Some(p);
                true
            }
            Err(()) => false,
        }
    }

    fn unregister(&mut self) {
        if let (Some(c), Some(p)) = (&self.rx.chan, self.packet.take()) {
            c.unregister_recv(&p);
        }
    }

    fn complete(&mut self) {
        if let Some(p) = self.packet.take() {
            // SAFETY: the owner, committed through this packet (`complete` runs only for the
            // chosen case): packet.rs, who touches a slot.
            self.result = Some(unsafe { p.take() }.ok_or(RecvError));
        }
    }
}

/// A send case: `send(tx, value) -> res`.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    value: Option<T>,
    packet: Option<Arc<Packet<T>>>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> SendCase<'a, T> {
    /// A send case of `value` on `tx`.
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendCase {
            tx,
            value: Some(value),
            packet: None,
            result: None,
        }
    }
}

impl<T> Case for SendCase<'_, T> {
    fn is_never(&self) -> bool {
        self.tx.chan.is_none() || self.value.is_none()
    }

    fn try_op(&mut self) -> bool {
        let Some(v) = self.value.take() else {
            return false;
        };
        match self.tx.try_send(v) {
            Ok(()) => {
                self.result = Some(Ok(()));
                true
            }
            Err(TrySendError::Closed(v)) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            Err(TrySendError::Full(v)) => {
                self.value = Some(v);
                false
            }
        }
    }

    fn register(&mut self, w: &Arc<Waiter>, idx: usize) -> bool {
        let (Some(c), Some(v)) = (&self.tx.chan, self.value.take()) else {
            return true;
        };
        match c.register_send(w, idx, v) {
            Ok(p) => {
                self.packet = Some(p);
                true
            }
            Err(v) => {
                self.value = Some(v);
                false
            }
        }
    }

    fn unregister(&mut self) {
        if let (Some(c), Some(p)) = (&self.tx.chan, self.packet.take()) {
            c.unregister_send(&p);
            // SAFETY: the owner, with the packet out of the queue under the channel's lock
            // (packet.rs, who touches a slot): no peer meets it again.
            if let Some(v) = unsafe { p.take() } {
                self.value = Some(v);
            }
        }
    }

    fn complete(&mut self) {
        if let Some(p) = self.packet.take() {
            // A receiver took the value (slot empty), or close committed us (value still there).
            // SAFETY: the owner, committed through this packet (`complete` runs only for the
            // chosen case): packet.rs, who touches a slot.
            self.result = Some(match unsafe { p.take() } {
                None => Ok(()),
                Some(v) => Err(SendError(v)),
            });
        }
    }
}

/// What [`RecvCase`] and [`SendCase`] share: the result once chosen, and `Debug`.
macro_rules! case_result {
    ($Case:ident, $R:ty) => {
        impl<T> $Case<'_, T> {
            /// The result, once this case was chosen.
            ///
            /// # Panics
            /// If the case was not chosen (a bug in the caller).
            pub fn into_result(self) -> $R {
                match self.result {
                    Some(r) => r,
                    None => panic!("goway::select: result of a case that was not chosen"),
                }
            }

            /// `true` if this case was chosen.
            pub fn is_chosen(&self) -> bool {
                self.result.is_some()
            }
        }

        impl<T> fmt::Debug for $Case<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Case))
                    .field("chosen", &self.result.is_some())
                    .finish()
            }
        }
    };
}

case_result!(RecvCase, Result<T, RecvError>);
case_result!(SendCase, Result<(), SendError<T>>);

thread_local! {
    // Per-thread xorshift state. Read and written with no yield in between, so a coroutine
    // migrating between workers cannot observe another's half-updated state.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (NEXT.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ t).max(1)
}

/// Never inlined: a thread-local's address must not be kept across a caller's park (the
/// goroutine may resume on another worker).
#[inline(never)]
fn rand_below(n: usize) -> usize {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (((x >> 32) * n as u64) >> 32) as usize
    })
}

/// Runs a select over `cases`. Returns the index of the committed case, or `None` if
/// `non_blocking` and no case was ready, or `deadline` passed first.
#[doc(hidden)]
#[track_caller]
pub fn run(
    cases: &mut [&mut dyn Case],
    non_blocking: bool,
    deadline: Option<Instant>,
) -> Option<usize> {
    // The select's own site (`select!`'s, or the caller of `Select`'s methods): what the
    // registry shows while it waits.
    let site = std::panic::Location::caller();
    let n = cases.len();
    let mut small = [0usize; 16];
    let mut big = Vec::new();
    let order: &mut [usize] = if n <= small.len() {
        &mut small[..n]
    } else {
        big.resize(n, 0);
        &mut big[..]
    };
    // Fisher-Yates: a fresh uniform permutation per select, as Go's `fastrandn` shuffle.
    for i in 0..n {
        let j = rand_below(i + 1);
        order[i] = order[j];
        order[j] = i;
    }
    loop {
        // Step 1: poll.
        for &i in order.iter() {
            if !cases[i].is_never() && cases[i].try_op() {
                return Some(i);
            }
        }
        if non_blocking {
            return None;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // An expired deadline still lets the others run once (see `Waiter::wait`): this
            // point is reached only before any wait, or after polling found a case gone.
            crate::runtime::yield_now();
            return None;
        }
        // Step 2: register everywhere.
        let w = Waiter::new();
        let mut registered = 0;
        let mut ready = false;
        for &i in order.iter() {
            if cases[i].is_never() {
                continue;
            }
            registered += 1;
            if !cases[i].register(&w, i) {
                ready = true;
                break;
            }
        }
        let chosen = if ready {
            if w.try_abort() { None } else { w.selected() }
        } else if registered == 0 && deadline.is_none() {
            // Only never cases: block forever, as Go's `select {}` with nil channels does.
            w.wait(None, Why::new(Wait::SelectNoCases))
        } else {
            // Step 3: park until a peer commits one case, or the deadline passes.
            w.wait(deadline, Why::at(Wait::Select, site))
        };
        for &i in order.iter() {
            if Some(i) != chosen {
                cases[i].unregister();
            }
        }
        if let Some(i) = chosen {
            cases[i].complete();
        }
        w.recycle();
        match chosen {
            Some(i) => return Some(i),
            None if ready => continue,
            None => return None,
        }
    }
}

/// Lets `select!` accept a receiver by value, by reference, or as a temporary.
#[doc(hidden)]
pub trait AsReceiver<T> {
    fn as_receiver(&self) -> &Receiver<T>;
}

/// Lets `select!` accept a sender by value, by reference, or as a temporary.
#[doc(hidden)]
pub trait AsSender<T> {
    fn as_sender(&self) -> &Sender<T>;
}

/// Implements `$Trait` (`fn $method(&self) -> &$End<T>`) for `$End<T>`, `&$End<T>` and
/// `&mut $End<T>`.
macro_rules! as_end {
    ($Trait:ident, $method:ident, $End:ident) => {
        impl<T> $Trait<T> for $End<T> {
            fn $method(&self) -> &$End<T> {
                self
            }
        }
        impl<T> $Trait<T> for &$End<T> {
            fn $method(&self) -> &$End<T> {
                self
            }
        }
        impl<T> $Trait<T> for &mut $End<T> {
            fn $method(&self) -> &$End<T> {
                self
            }
        }
    };
}

as_end!(AsReceiver, as_receiver, Receiver);
as_end!(AsSender, as_sender, Sender);
