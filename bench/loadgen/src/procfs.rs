//! What `/proc` tells about another process: the CPU time its threads used, its resident
//! memory, its thread count and its number of memory mappings.

use std::fs;

/// CPU time a process has used so far, read two ways.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    /// Sum over the live threads of the first field of `/proc/PID/task/TID/schedstat`:
    /// nanoseconds on a CPU, as the scheduler accounts them.
    pub sched_ns: u64,
    /// utime + stime of `/proc/PID/stat` (all threads, living and exited), in clock ticks.
    pub ticks: u64,
}

impl CpuSample {
    /// Samples process `pid`; an unreadable field counts as 0 (the process may be gone).
    pub fn read(pid: u32) -> CpuSample {
        let mut sched_ns = 0;
        if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let path = task.path().join("schedstat");
                if let Ok(text) = fs::read_to_string(path) {
                    sched_ns += first_number(&text).unwrap_or(0);
                }
            }
        }
        let ticks = stat_fields(pid)
            .and_then(|f| Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?))
            .unwrap_or(0);
        CpuSample { sched_ns, ticks }
    }
}

/// The fields of `/proc/PID/stat` after the `(comm)` field: index 0 is the state, 11 utime,
/// 12 stime (fields 3, 14 and 15 of proc(5)).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn first_number(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of [`CpuSample::ticks`].
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// CPU seconds (user + system) this process has used, all threads.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value, and getrusage
    // writes only into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// A value of `/proc/PID/status` such as `VmRSS` (in kB) or `Threads`.
pub fn status_value(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        first_number(rest)
    })
}

/// The number of memory mappings of process `pid` (lines of `/proc/PID/maps`): stackful
/// coroutines use one or two per stack, and `vm.max_map_count` bounds them.
pub fn map_count(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(text.lines().count() as u64)
}

/// Raises this process's soft limit on open descriptors to its hard limit, so that it can
/// hold many connections; returns the limit in force afterwards.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: rlimit is plain old data; getrlimit and setrlimit read or write only the struct
    // they are given.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim = wanted;
            }
        }
        lim.rlim_cur as u64
    }
}
