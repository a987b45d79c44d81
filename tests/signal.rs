//! `goway::signal`, Go's `os/signal`: every subscriber of a signal receives it, a delivery never
//! blocks, a dropped receiver unsubscribes, `notify_context` cancels on the first signal, and
//! once nobody listens the default action is back (a second `SIGINT` during a drain ends the
//! process). Signals are process-wide and tests run in parallel, so each test uses its own
//! signal; the `SIGINT`/`SIGTERM` cases run in a child process.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use goway::chan::RecvTimeoutError;
use goway::context::{self, ContextError};
use goway::signal::{self, Signal};
use goway::{go, select};

mod common;
use common::child;

/// Upper bound for a wait that should succeed.
const LIMIT: Duration = Duration::from_secs(10);
const CHILD_ENV: &str = "GOWAY_SIGNAL_CHILD";

#[test]
fn every_subscriber_receives_the_signal_and_a_dropped_one_is_forgotten() {
    let a = signal::notify(&[Signal::USR1]).unwrap();
    let b = signal::notify(&[Signal::USR1, Signal::HUP]).unwrap();
    let dropped = signal::notify(&[Signal::USR1]).unwrap();
    drop(dropped);
    signal::raise(Signal::USR1).unwrap();
    assert_eq!(a.recv_timeout(LIMIT), Ok(Signal::USR1));
    assert_eq!(b.recv_timeout(LIMIT), Ok(Signal::USR1));
    // A goroutine waits in select! for the next one.
    let waiter = go!(move || {
        select! {
            recv(b) -> s => s.ok(),
            recv(goway::time::after(LIMIT)) -> _ => None,
        }
    });
    signal::raise(Signal::HUP).unwrap();
    assert_eq!(common::join(waiter), Some(Signal::HUP));
    // `a` did not subscribe to SIGHUP.
    assert_eq!(
        a.recv_timeout(Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn a_subscriber_that_is_not_receiving_misses_signals_without_blocking_others() {
    let slow = signal::notify(&[Signal::USR2]).unwrap();
    let fast = signal::notify(&[Signal::USR2]).unwrap();
    for _ in 0..3 {
        signal::raise(Signal::USR2).unwrap();
        // `fast` gets each one: the dispatcher did not block on `slow`'s full channel.
        assert_eq!(fast.recv_timeout(LIMIT), Ok(Signal::USR2));
    }
    // `slow` holds one, as Go's `Notify` channel of capacity 1 does.
    assert_eq!(slow.try_recv().ok(), Some(Signal::USR2));
    assert!(slow.try_recv().is_err());
}

#[test]
fn notify_context_is_cancelled_by_the_signal_and_stop_ends_the_subscription() {
    // Keep SIGWINCH caught for the whole test (its default action is to ignore it anyway).
    let keep = signal::notify(&[Signal::WINCH]).unwrap();
    let parent = context::background();
    let (ctx, _stop) = signal::notify_context(&parent, &[Signal::WINCH]).unwrap();
    let (stopped, stop) = signal::notify_context(&parent, &[Signal::WINCH]).unwrap();
    stop.cancel();
    assert_eq!(stopped.err(), Some(ContextError::Canceled));
    assert!(!ctx.is_done());
    signal::raise(Signal::WINCH).unwrap();
    assert_eq!(
        ctx.done().recv_timeout(LIMIT),
        Err(RecvTimeoutError::Closed)
    );
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    assert_eq!(keep.recv_timeout(LIMIT), Ok(Signal::WINCH));
}

#[test]
fn signals_have_gos_names() {
    assert_eq!(Signal::INT.to_string(), "interrupt");
    assert_eq!(Signal::TERM.to_string(), "terminated");
    assert_eq!(Signal::HUP.to_string(), "hangup");
    assert_eq!(
        Signal::from_raw(libc::SIGRTMIN() + 1).unwrap().as_raw(),
        libc::SIGRTMIN() + 1
    );
    assert!(Signal::from_raw(libc::SIGKILL).is_err());
    assert!(Signal::from_raw(0).is_err());
}

// ----- in a child process: SIGINT and SIGTERM --------------------------------------------------

fn run_child(scenario: &str) {
    match scenario {
        // A graceful drain: the first SIGINT cancels the context, the drain then "hangs", and
        // a second SIGINT takes the default action (the process dies of SIGINT).
        "second-interrupt" => {
            let (ctx, _stop) =
                signal::notify_context(&context::background(), &[Signal::INT]).unwrap();
            signal::raise(Signal::INT).unwrap();
            assert_eq!(
                ctx.done().recv_timeout(LIMIT),
                Err(RecvTimeoutError::Closed)
            );
            println!("draining");
            signal::raise(Signal::INT).unwrap();
            // Not reached: the default action ends the process.
            goway::time::sleep(LIMIT);
            println!("survived");
        }
        // A subscriber on SIGTERM is told, and the process goes on and exits 0.
        "term" => {
            let c = signal::notify(&[Signal::TERM]).unwrap();
            signal::raise(Signal::TERM).unwrap();
            assert_eq!(c.recv_timeout(LIMIT), Ok(Signal::TERM));
            println!("got {}", Signal::TERM);
        }
        // After the only subscriber is dropped, SIGTERM ends the process again.
        "term-after-stop" => {
            let c = signal::notify(&[Signal::TERM]).unwrap();
            drop(c);
            signal::raise(Signal::TERM).unwrap();
            goway::time::sleep(LIMIT);
            println!("survived");
        }
        // `shutdown_context`: the first SIGTERM cancels the context, the next SIGINT exits 130.
        "shutdown-context" => {
            let ctx = signal::shutdown_context(&context::background()).unwrap();
            // Another subscriber of the same signals still receives them.
            let other = signal::notify(&[Signal::TERM]).unwrap();
            assert!(!ctx.is_done());
            signal::raise(Signal::TERM).unwrap();
            assert_eq!(
                ctx.done().recv_timeout(LIMIT),
                Err(RecvTimeoutError::Closed)
            );
            assert_eq!(other.recv_timeout(LIMIT), Ok(Signal::TERM));
            println!("draining");
            signal::raise(Signal::INT).unwrap();
            // Not reached: the second signal exits at once.
            goway::time::sleep(LIMIT);
            println!("survived");
        }
        // `shutdown_context` whose drain ends: the process exits as it chooses (0 here).
        "shutdown-context-drained" => {
            let ctx = signal::shutdown_context(&context::background()).unwrap();
            signal::raise(Signal::INT).unwrap();
            assert_eq!(
                ctx.done().recv_timeout(LIMIT),
                Err(RecvTimeoutError::Closed)
            );
            println!("drained");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
#[ignore = "the child process of the other tests: does nothing unless GOWAY_SIGNAL_CHILD is set"]
fn child() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        run_child(&s);
    }
}

#[test]
fn a_second_interrupt_during_the_drain_ends_the_process() {
    let o = child::run(CHILD_ENV, "second-interrupt", LIMIT * 2);
    assert!(o.stdout.contains("draining"), "{}", o.describe());
    assert!(!o.stdout.contains("survived"), "{}", o.describe());
    assert_eq!(o.status.signal(), Some(libc::SIGINT), "{}", o.describe());
}

#[test]
fn a_subscribed_sigterm_is_delivered_and_the_process_goes_on() {
    let o = child::run(CHILD_ENV, "term", LIMIT * 2);
    assert!(o.status.success(), "{}", o.describe());
    assert!(o.stdout.contains("got terminated"), "{}", o.describe());
}

#[test]
fn sigterm_takes_its_default_action_again_once_nobody_listens() {
    let o = child::run(CHILD_ENV, "term-after-stop", LIMIT * 2);
    assert!(!o.stdout.contains("survived"), "{}", o.describe());
    assert_eq!(o.status.signal(), Some(libc::SIGTERM), "{}", o.describe());
}

#[test]
fn shutdown_context_cancels_on_the_first_signal_and_exits_on_the_second() {
    let o = child::run(CHILD_ENV, "shutdown-context", LIMIT * 2);
    assert!(o.stdout.contains("draining"), "{}", o.describe());
    assert!(!o.stdout.contains("survived"), "{}", o.describe());
    assert_eq!(o.code(), Some(128 + libc::SIGINT), "{}", o.describe());
}

#[test]
fn shutdown_context_leaves_the_exit_to_the_program_after_one_signal() {
    let o = child::run(CHILD_ENV, "shutdown-context-drained", LIMIT * 2);
    assert!(o.status.success(), "{}", o.describe());
    assert!(o.stdout.contains("drained"), "{}", o.describe());
}
