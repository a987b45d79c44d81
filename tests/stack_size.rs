//! Goroutine stack sizes over the maximum are refused up front, with a typed error naming the
//! limit and the minimum, and nothing is printed. Before, `Config::stack_size(1 << 43)` made
//! may's first spawn panic inside its stack allocator (the panic hook printed
//! `failed to alloc sys stack`), which poisoned may's scheduler for good, and the error blamed
//! `vm.max_map_count`.
//!
//! Each case runs in a fresh process, this test binary run again as a child (the `child` test
//! with `GOWAY_STACK_SIZE_CHILD` set): the runtime's configuration is applied once per process,
//! and a panic message would go to the child's stderr, which the parent checks is empty.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use goway::runtime::{self, Config, ConfigError, StackLimit, StackSizeError};

mod common;
use common::child;

/// Tells the child which case to run.
const CHILD_ENV: &str = "GOWAY_STACK_SIZE_CHILD";
/// How long a child may take.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// Runs `case` in a child (with `setup` run in it before exec) and returns its stdout, after
/// checking that it succeeded and wrote nothing on stderr.
fn run_child(case: &str, setup: Option<fn() -> std::io::Result<()>>) -> String {
    let mut cmd = child::command(CHILD_ENV, case);
    if let Some(f) = setup {
        // SAFETY: `f` runs in the forked child before exec and only calls setrlimit, which is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(f);
        }
    }
    let o = child::run_command(&mut cmd, case, CHILD_LIMIT);
    assert!(o.status.success(), "child {case}: {}", o.describe());
    // The test harness's own lines aside, nothing: no panic message, no log line.
    let noise: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("running ") && !l.contains("test "))
        .collect();
    assert!(
        noise.is_empty(),
        "child {case} wrote on stderr:\n{}",
        o.stderr
    );
    assert!(
        !o.stdout.contains("panicked"),
        "child {case}:\n{}",
        o.stdout
    );
    assert!(o.stdout.contains("child ok"), "child {case}:\n{}", o.stdout);
    o.stdout
}

#[test]
#[ignore = "the child process of the other tests: does nothing unless GOWAY_STACK_SIZE_CHILD is set"]
fn child() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    match case.as_str() {
        "config" => child_config(),
        "rlimit" => child_rlimit(),
        "refused" => child_refused(),
        other => panic!("unknown case {other}"),
    }
    println!("child ok");
}

/// Absurd sizes in `Config` and `Builder` are refused with `StackSizeError`; the runtime works
/// afterwards with valid ones.
fn child_config() {
    let max = runtime::max_stack_size();
    // goway's maximum, unless the hard RLIMIT_STACK this test runs under is lower.
    let limit = if max == runtime::MAX_STACK_SIZE {
        StackLimit::Goway
    } else {
        StackLimit::RlimitStack
    };
    for bytes in [1usize << 43, usize::MAX / 2, max + 1] {
        match Config::new().stack_size(bytes).apply() {
            Err(ConfigError::StackSize(e)) => {
                assert_eq!(e.requested, bytes);
                assert_eq!(e.max, max);
                assert_eq!(e.limit, limit);
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("maximum of {max} bytes"))
                        && msg.contains(&format!("{} bytes (the minimum", runtime::MIN_STACK_SIZE)),
                    "{msg}"
                );
                println!("Config::stack_size({bytes}): {msg}");
            }
            other => panic!("Config::stack_size({bytes}).apply(): {other:?}"),
        }
    }
    // Nothing was applied: a valid configuration still applies.
    Config::new()
        .workers(2)
        .stack_size(64 * 1024)
        .apply()
        .expect("a valid configuration after refused ones");
    assert_eq!(goway::go!(|| 6 * 7).join().unwrap(), 42);

    for bytes in [1usize << 43, usize::MAX / 2, usize::MAX, max + 1] {
        let e = goway::Builder::new()
            .stack_size(bytes)
            .spawn(|| ())
            .expect_err("a stack over the maximum");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let s: &StackSizeError = StackSizeError::from_io(&e).expect("a StackSizeError");
        assert_eq!((s.requested, s.max), (bytes, max));
        assert!(!e.to_string().contains("max_map_count"), "{e}");
    }
    // The largest stack allowed, and a big one: mapped on trial first, so a machine that
    // cannot grant 1 GiB gets an error, never a panic.
    for bytes in [max, 8 << 20] {
        match goway::Builder::new().stack_size(bytes).spawn(|| 7) {
            Ok(h) => assert_eq!(h.join().unwrap(), 7),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory, "{e}");
                println!("Builder::stack_size({bytes}): {e}");
            }
        }
    }
    assert_eq!(runtime::num_goroutines(), 0);
    assert_eq!(goway::go!(|| 1).join().unwrap(), 1);
}

/// Hard `RLIMIT_STACK` of the `rlimit` child: 8 MiB.
const RLIMIT_STACK: u64 = 8 << 20;

fn set_rlimit_stack() -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: RLIMIT_STACK,
        rlim_max: RLIMIT_STACK,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_STACK, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Under a hard RLIMIT_STACK of 8 MiB, the maximum is that (less two pages), and the error
/// says so.
fn child_rlimit() {
    let max = runtime::max_stack_size();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    assert_eq!(max, RLIMIT_STACK as usize - 2 * page);
    let e = goway::Builder::new()
        .stack_size(16 << 20)
        .spawn(|| ())
        .expect_err("over RLIMIT_STACK");
    let s = StackSizeError::from_io(&e).expect("a StackSizeError");
    assert_eq!((s.max, s.limit), (max, StackLimit::RlimitStack));
    assert!(e.to_string().contains("RLIMIT_STACK"), "{e}");
    println!("Builder::stack_size(16 MiB) under RLIMIT_STACK 8 MiB: {e}");
    let h = goway::Builder::new()
        .stack_size(4 << 20)
        .spawn(|| 5)
        .unwrap();
    assert_eq!(h.join().unwrap(), 5);
}

/// `RLIMIT_AS` of the `refused` child: less than the largest stack allowed.
const RLIMIT_AS: u64 = 1 << 30;

fn set_rlimit_as() -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: RLIMIT_AS,
        rlim_max: RLIMIT_AS,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A stack within the maximum that the system refuses (the address space is limited to less):
/// an `OutOfMemory` error that names the stack, no panic, and the runtime works on.
fn child_refused() {
    let bytes = runtime::max_stack_size();
    assert!(bytes as u64 >= RLIMIT_AS);
    let e = goway::Builder::new()
        .stack_size(bytes)
        .spawn(|| ())
        .expect_err("a stack larger than the address space allowed");
    assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("cannot map a goroutine stack of {bytes} bytes")),
        "{e}"
    );
    assert!(!e.to_string().contains("max_map_count"), "{e}");
    println!("Builder::stack_size({bytes}) under RLIMIT_AS 1 GiB: {e}");
    assert_eq!(goway::go!(|| 3).join().unwrap(), 3);
}

#[test]
fn a_stack_the_system_refuses_is_an_error_not_a_panic() {
    let out = run_child("refused", Some(set_rlimit_as));
    println!("{out}");
}

#[test]
fn absurd_stack_sizes_are_refused_with_a_typed_error_and_print_nothing() {
    let out = run_child("config", None);
    println!("{out}");
}

#[test]
fn the_hard_rlimit_stack_lowers_the_maximum() {
    let out = run_child("rlimit", Some(set_rlimit_stack));
    println!("{out}");
}

#[test]
fn the_maximum_is_at_most_goways_own() {
    // In this process RLIMIT_STACK is whatever the test runner has: at most goway's maximum.
    assert!(runtime::max_stack_size() <= runtime::MAX_STACK_SIZE);
    assert!(runtime::max_stack_size() >= runtime::DEFAULT_STACK_SIZE);
}
