//! Go's `os/signal` for goroutines: Unix signals delivered on goway channels.
//!
//! | Go | goway |
//! |---|---|
//! | `c := make(chan os.Signal, 1); signal.Notify(c, os.Interrupt, syscall.SIGTERM)` | [`let c = signal::notify(&[Signal::INT, Signal::TERM])?`](notify) |
//! | `sig := <-c`, a `select` case on `c` | `c.recv()`, `recv(c) -> sig => ...` in [`select!`](crate::select!) |
//! | `signal.Stop(c)` | drop the receiver |
//! | `ctx, stop := signal.NotifyContext(parent, os.Interrupt)` | [`let (ctx, stop) = signal::notify_context(&parent, &[Signal::INT])?`](notify_context) |
//! | `NotifyContext(bg, os.Interrupt, syscall.SIGTERM)` + `srv.Shutdown(ctx)`, a second signal exits | [`let ctx = signal::shutdown_context(&bg)?`](shutdown_context), then `.context(&ctx)` on the server's builder |
//!
//! Go's rules hold: every subscriber of a signal receives it (each has its own channel); a
//! delivery never blocks, so a subscriber that has not taken the previous signal yet misses
//! the next one (the channel holds one, as Go's documentation asks of a `Notify` channel);
//! once nobody is subscribed to a signal any more, its default action is back (a `SIGINT`
//! then ends the process, as after Go's `signal.Stop`).
//!
//! Signals are caught with [`signal-hook`](https://docs.rs/signal-hook): its handler only
//! writes to a pipe, and one OS thread (`goway-signal`, started by the first subscription)
//! reads it and sends to the subscribers' channels. While it runs, the deadlock detector
//! counts on a signal possibly waking someone, as Go's does once `os/signal` is in use.
//!
//! # Examples
//! ```
//! use goway::signal::{self, Signal};
//! use goway::{chan, select};
//! use std::time::Duration;
//!
//! let sigs = signal::notify(&[Signal::USR1]).unwrap();
//! signal::raise(Signal::USR1).unwrap(); // as `kill -USR1 <pid>` would
//! let got = select! {
//!     recv(sigs) -> s => s.ok(),
//!     recv(goway::time::after(Duration::from_secs(10))) -> _ => None,
//! };
//! assert_eq!(got, Some(Signal::USR1));
//! assert_eq!(Signal::USR1.to_string(), "user defined signal 1");
//! ```

use std::fmt;
use std::io;
use std::sync::OnceLock;

use parking_lot::Mutex;
use signal_hook::iterator::Handle;

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::context::{self, CancelFunc, Context};

/// A Unix signal (Go's `os.Signal` / `syscall.Signal`), shown with Go's names.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    /// `SIGINT` (Go's `os.Interrupt`): Ctrl-C.
    pub const INT: Signal = Signal(libc::SIGINT);
    /// `SIGTERM`: what `kill`, systemd and Kubernetes send to stop a service.
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// `SIGHUP`: the terminal went away; by convention, "reload your configuration".
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// `SIGQUIT` (Ctrl-\); see also [`runtime::dump_on_signal`](crate::runtime::dump_on_signal).
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// `SIGUSR1`.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// `SIGWINCH`: the terminal changed size.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// The signal of number `n` (`SIGRTMIN + 1`, say).
    ///
    /// # Errors
    /// `InvalidInput` for a number that is no signal, or one a program may not handle
    /// (`SIGKILL`, `SIGSTOP`, and `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, which mean the
    /// process is broken).
    pub fn from_raw(n: i32) -> io::Result<Signal> {
        if n <= 0 || n > libc::SIGRTMAX() || signal_hook::consts::FORBIDDEN.contains(&n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("signal {n} cannot be handled"),
            ));
        }
        Ok(Signal(n))
    }

    /// The signal's number.
    pub fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Signal {
    /// Go's text for the signal (`interrupt`, `terminated`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            libc::SIGINT => "interrupt",
            libc::SIGTERM => "terminated",
            libc::SIGHUP => "hangup",
            libc::SIGQUIT => "quit",
            libc::SIGUSR1 => "user defined signal 1",
            libc::SIGUSR2 => "user defined signal 2",
            libc::SIGWINCH => "window changed",
            libc::SIGPIPE => "broken pipe",
            libc::SIGALRM => "alarm clock",
            libc::SIGCHLD => "child exited",
            n => return write!(f, "signal {n}"),
        };
        f.write_str(name)
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signal({}: {self})", self.0)
    }
}

/// Where a subscription delivers.
enum Target {
    Chan(Sender<Signal>),
    /// [`notify_context`]: cancel, once; over when `ctx` is done (cancelled by the signal, by
    /// the caller's `stop`, or by its parent).
    Cancel {
        cancel: Option<CancelFunc>,
        ctx: Context,
    },
    /// [`shutdown_context`]: the first signal cancels, the next one exits the process. For the
    /// life of the process.
    Shutdown {
        cancel: Option<CancelFunc>,
    },
}

struct Subscription {
    signals: Vec<i32>,
    target: Target,
}

struct Dispatcher {
    handle: Handle,
    subs: Mutex<Vec<Subscription>>,
}

/// The process's dispatcher, started by the first subscription.
fn dispatcher() -> io::Result<&'static Dispatcher> {
    static D: OnceLock<Result<Dispatcher, (io::ErrorKind, String)>> = OnceLock::new();
    let d = D.get_or_init(|| start().map_err(|e| (e.kind(), e.to_string())));
    match d {
        Ok(d) => Ok(d),
        Err((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
    }
}

fn start() -> io::Result<Dispatcher> {
    let mut signals = signal_hook::iterator::Signals::new::<[i32; 0], i32>([])?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("goway-signal".into())
        .spawn(move || {
            for sig in signals.forever() {
                deliver(sig);
            }
        })?;
    Ok(Dispatcher {
        handle,
        subs: Mutex::new(Vec::new()),
    })
}

/// Runs on the `goway-signal` thread for each signal caught.
fn deliver(sig: i32) {
    let Ok(d) = dispatcher() else { return };
    let mut delivered = false;
    // Cancelled after the lock is released: a cancel runs the context's callbacks.
    let mut cancels = Vec::new();
    let mut exit_now = None;
    let mut subs = d.subs.lock();
    subs.retain_mut(|s| {
        if !s.signals.contains(&sig) {
            return true;
        }
        match &mut s.target {
            Target::Chan(tx) => match tx.try_send(Signal(sig)) {
                Ok(()) => {
                    delivered = true;
                    true
                }
                // Not taken yet: this one is dropped, as Go drops it.
                Err(TrySendError::Full(_)) => {
                    delivered = true;
                    true
                }
                // The receiver was dropped (Go's `signal.Stop`).
                Err(TrySendError::Closed(_)) => false,
            },
            Target::Cancel { cancel, ctx } => {
                if !ctx.is_done() {
                    cancels.extend(cancel.take());
                    delivered = true;
                }
                false
            }
            Target::Shutdown { cancel } => {
                delivered = true;
                match cancel.take() {
                    Some(c) => {
                        log::info!(target: "goway::signal", "{}: shutting down gracefully (the same signal again exits at once)", Signal(sig));
                        cancels.push(c);
                    }
                    None => exit_now = Some(sig),
                }
                true
            }
        }
    });
    drop(subs);
    if let Some(sig) = exit_now {
        let code = 128 + sig;
        log::warn!(target: "goway::signal", "{} during the shutdown: exiting at once (status {code})", Signal(sig));
        std::process::exit(code);
    }
    for c in cancels {
        c.cancel();
    }
    if !delivered {
        // Nobody listens any more: the default action, as if never caught.
        log::debug!("signal {}: no subscriber, default action", Signal(sig));
        if let Err(e) = signal_hook::low_level::emulate_default_handler(sig) {
            log::warn!("signal {}: default action failed: {e}", Signal(sig));
        }
    }
}

fn subscribe(signals: &[Signal], target: Target) -> io::Result<()> {
    let d = dispatcher()?;
    let mut subs = d.subs.lock();
    // Forget the subscriptions that are over (a stopped `notify_context`), so that a program
    // calling it again and again does not grow the list.
    subs.retain(|s| !matches!(&s.target, Target::Cancel { ctx, .. } if ctx.is_done()));
    for s in signals {
        d.handle.add_signal(s.0)?;
    }
    subs.push(Subscription {
        signals: signals.iter().map(|s| s.0).collect(),
        target,
    });
    Ok(())
}

/// Delivers each of `signals` that the process receives from now on to the returned channel
/// (Go's `signal.Notify` with a channel of capacity 1). Dropping the receiver ends the
/// subscription (Go's `signal.Stop`).
///
/// # Errors
/// The handler could not be installed (a forbidden signal, or the thread not started).
///
/// # Examples
/// Wait for Ctrl-C or `kill` (a server's main):
/// ```no_run
/// use goway::signal::{self, Signal};
///
/// let stop = signal::notify(&[Signal::INT, Signal::TERM]).unwrap();
/// // ... start serving ...
/// let sig = stop.recv().unwrap();
/// log::info!("{sig}: shutting down");
/// ```
pub fn notify(signals: &[Signal]) -> io::Result<Receiver<Signal>> {
    let (tx, rx) = chan::bounded(1);
    subscribe(signals, Target::Chan(tx))?;
    Ok(rx)
}

/// A child of `parent` that is cancelled when one of `signals` arrives (Go's
/// `signal.NotifyContext`), and its [`CancelFunc`] (Go's `stop`: it cancels the context and
/// ends the subscription, after which the signal's default action is back if nobody else
/// listens). The first signal cancels the context; a second one finds the subscription gone, so
/// with no other subscriber it takes its default action: a second Ctrl-C during a graceful
/// drain ends the process, as in most Go services.
///
/// # Errors
/// As [`notify`].
///
/// # Examples
/// ```
/// use goway::context;
/// use goway::signal::{self, Signal};
///
/// let (ctx, _stop) = signal::notify_context(&context::background(), &[Signal::USR2]).unwrap();
/// assert!(!ctx.is_done());
/// signal::raise(Signal::USR2).unwrap();
/// assert!(ctx.done().recv_timeout(std::time::Duration::from_secs(10)).is_err()); // closed
/// assert!(ctx.is_done());
/// ```
pub fn notify_context(parent: &Context, signals: &[Signal]) -> io::Result<(Context, CancelFunc)> {
    // The signal cancels `outer`; the caller's `stop` cancels `ctx`, its child. Either way
    // `ctx` is done, which is what the subscription checks to know it is over.
    let (outer, cancel_outer) = context::with_cancel(parent);
    let (ctx, stop) = context::with_cancel(&outer);
    subscribe(
        signals,
        Target::Cancel {
            cancel: Some(cancel_outer),
            ctx: ctx.clone(),
        },
    )?;
    Ok((ctx, stop))
}

/// The context of a server's graceful shutdown: a child of `parent` cancelled by the first
/// `SIGTERM` or `SIGINT` the process receives, after which the next one of them ends the
/// process at once with status `128 + signal` (130 for `SIGINT`, 143 for `SIGTERM`, as a shell
/// reports a process killed by them). This is the usual shape of a Go service's main
/// (`signal.NotifyContext`, `srv.Shutdown(ctx)`, and a second Ctrl-C that does not wait for
/// the drain), as one call: give the context's [`done`](Context::done) channel to a server's
/// `shutdown_on(..)` builder hook
/// ([`net::server::Builder::shutdown_on`](crate::net::server::Builder::shutdown_on),
/// [`http::Builder::shutdown_on`](crate::http::Builder::shutdown_on)) and the first signal
/// starts its graceful shutdown (within its `shutdown_grace`). Rather not as the server's base
/// context (`context(..)`): every request's context would be its child, cancelled by the
/// signal at once, where a drain lets the requests in flight finish (Go has the same trap
/// with `BaseContext`).
///
/// Both signals are logged (target `goway::signal`): the first at `info`, the one that exits
/// at `warn`. The subscription lasts as long as the process: call this once, in `main`.
/// Other subscribers of the two signals (see [`notify`]) still receive them.
///
/// # Errors
/// As [`notify`].
///
/// # Examples
/// A server's main: serve until `SIGTERM` or Ctrl-C, then drain and report.
/// ```
/// use std::time::Duration;
/// use goway::net::{Server, codec::LinesCodec};
/// use goway::signal::{self, Signal};
///
/// let ctx = signal::shutdown_context(&goway::context::background()).unwrap();
/// let server = Server::builder()
///     .addr("127.0.0.1:0")
///     .codec(LinesCodec::new())
///     .shutdown_grace(Duration::from_secs(10))
///     .shutdown_on(ctx.done())
///     .handler(|conn| {
///         for line in conn {
///             conn.send(line)?;
///         }
///         Ok(())
///     })
///     .bind()
///     .unwrap();
/// let handle = server.handle();
/// # let serving = goway::go!(move || server.serve());
/// signal::raise(Signal::TERM).unwrap(); // as Kubernetes' `kill -TERM <pid>` would
/// # let _ = serving.join();
/// // In `main`: `server.serve()` returns `ServerClosed` as the drain starts; then wait for it.
/// match handle.wait_shutdown(Duration::from_secs(15)) {
///     Some(Ok(report)) => log::info!("drained {} connection(s)", report.drained),
///     Some(Err(e)) => log::warn!("{e}"), // the grace ran out: how many were cut off
///     None => log::error!("the drain did not finish"),
/// }
/// assert!(ctx.is_done());
/// ```
pub fn shutdown_context(parent: &Context) -> io::Result<Context> {
    let (ctx, cancel) = context::with_cancel(parent);
    subscribe(
        &[Signal::INT, Signal::TERM],
        Target::Shutdown {
            cancel: Some(cancel),
        },
    )?;
    Ok(ctx)
}

/// Sends `sig` to this process (C's `raise`; `kill -<sig> <own pid>`), for tests and for
/// re-raising a signal after cleanup.
///
/// # Errors
/// The system refused.
pub fn raise(sig: Signal) -> io::Result<()> {
    signal_hook::low_level::raise(sig.0)
}
