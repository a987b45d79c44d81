//! What `/proc` tells about another process: the CPU time its threads used, its resident
//! memory, its thread count, its number of memory mappings, and the resident pages of each of
//! its guarded anonymous mappings (coroutine and thread stacks).

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

/// An anonymous private read-write mapping of another process with a one-page guard mapping
/// (no access) just below it: the shape of every coroutine stack from the `generator` crate
/// (may's and goway's goroutine stacks: one `mmap` of the stack plus its guard page, then
/// `mprotect` of the lowest page), and of a thread stack. A stack grows down, so its guard is
/// at its low end; the guard's different protection keeps the kernel from merging it with a
/// neighbouring stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardedMapping {
    /// The mapping's size without its guard page, in bytes.
    pub bytes: u64,
    /// How many of its pages are resident (`Rss` of `/proc/PID/smaps` in pages).
    pub resident_pages: u64,
}

/// The guarded anonymous mappings of process `pid` (see [`GuardedMapping`]), read from
/// `/proc/PID/smaps`, in address order; `None` if the file cannot be read (the process is
/// gone, or another user's). Reading smaps walks the page tables but faults nothing in: it
/// does not change what it measures.
pub fn guarded_mappings(pid: u32) -> Option<Vec<GuardedMapping>> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    Some(parse_guarded_mappings(&text, page_size()))
}

/// One mapping of smaps: its header line's address range, permissions and whether it is
/// anonymous (inode 0, no path), and its `Rss` field.
struct Mapping {
    start: u64,
    end: u64,
    perms: [u8; 4],
    anon: bool,
    rss_kb: u64,
}

fn parse_header(line: &str) -> Option<Mapping> {
    let mut f = line.split_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let perms = f.next()?.as_bytes().try_into().ok()?;
    let (_offset, _dev, inode) = (f.next()?, f.next()?, f.next()?);
    let anon = inode == "0" && f.next().is_none();
    Some(Mapping {
        start,
        end,
        perms,
        anon,
        rss_kb: 0,
    })
}

/// [`guarded_mappings`] of smaps text, for pages of `page` bytes. A header line starts with
/// the address range in lowercase hexadecimal; field lines start with a capitalised name.
fn parse_guarded_mappings(text: &str, page: u64) -> Vec<GuardedMapping> {
    let mut out = Vec::new();
    let mut prev: Option<Mapping> = None;
    let mut cur: Option<Mapping> = None;
    let mut finish = |prev: &Option<Mapping>, m: &Mapping| {
        let guarded = prev.as_ref().is_some_and(|g| {
            g.anon && &g.perms == b"---p" && g.end - g.start == page && g.end == m.start
        });
        if guarded && m.anon && &m.perms == b"rw-p" {
            out.push(GuardedMapping {
                bytes: m.end - m.start,
                resident_pages: m.rss_kb * 1024 / page,
            });
        }
    };
    for line in text.lines() {
        if line.starts_with(|c: char| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            if let Some(m) = parse_header(line) {
                if let Some(done) = cur.take() {
                    finish(&prev, &done);
                    prev = Some(done);
                }
                cur = Some(m);
            }
        } else if let (Some(m), Some(rest)) = (cur.as_mut(), line.strip_prefix("Rss:")) {
            m.rss_kb = first_number(rest).unwrap_or(0);
        }
    }
    if let Some(done) = cur {
        finish(&prev, &done);
    }
    out
}

/// The size of a memory page (`sysconf(_SC_PAGESIZE)`), 4096 if unknown.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        page as u64
    } else {
        4096
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_mappings_are_the_rw_ones_just_above_a_one_page_guard() {
        let smaps = "\
55d0c0000000-55d0c0001000 r--p 00000000 fd:01 1234 /usr/bin/echo
Rss:                   4 kB
7f0000000000-7f0000001000 ---p 00000000 00:00 0
Size:                  4 kB
Rss:                   0 kB
7f0000001000-7f0000009000 rw-p 00000000 00:00 0
Size:                 32 kB
Rss:                   4 kB
VmFlags: rd wr mr mw me ac nr
7f0000009000-7f000000a000 ---p 00000000 00:00 0
Rss:                   0 kB
7f000000a000-7f0000012000 rw-p 00000000 00:00 0
Rss:                   8 kB
7f0000012000-7f0000022000 rw-p 00000000 00:00 0
Rss:                  64 kB
7f0000030000-7f0000031000 ---p 00000000 00:00 0
Rss:                   0 kB
7f0000032000-7f0000042000 rw-p 00000000 00:00 0
Rss:                  12 kB
7ffc00000000-7ffc00001000 ---p 00000000 00:00 0
7ffc00001000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
Rss:                  16 kB
";
        let got = parse_guarded_mappings(smaps, 4096);
        let want = [(32 << 10, 1), (32 << 10, 2)].map(|(bytes, resident_pages)| GuardedMapping {
            bytes,
            resident_pages,
        });
        // The third rw mapping has no guard below it, the fourth is not adjacent to its
        // guard, [stack] is not anonymous.
        assert_eq!(got, want);
    }
}
