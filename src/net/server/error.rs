//! The server's errors, and the operating-system limits they name.

use std::io;

/// Why [`Server::serve`](super::Server::serve) or [`Builder::bind`](super::Builder::bind)
/// returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The server was shut down (Go's `http.ErrServerClosed`): the normal end of `serve`.
    #[error("server closed")]
    ServerClosed,
    /// An operating-system limit stopped the server from starting.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Binding failed, or `accept` failed with an error that retrying cannot fix.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// An operating-system limit was reached. Each message names the limit and the setting that
/// raises it. The server refuses the new work (and logs this) instead of aborting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The process is out of file descriptors (`EMFILE`/`ENFILE`).
    #[error(
        "out of file descriptors (RLIMIT_NOFILE soft limit {}): raise it with `ulimit -n` \
         (LimitNOFILE= under systemd) or lower max_connections; each connection uses one",
        fmt_limit(*.soft_limit)
    )]
    FileDescriptors {
        /// The soft `RLIMIT_NOFILE` when it could be read.
        soft_limit: Option<u64>,
    },
    /// A goroutine stack could not be mapped: usually `vm.max_map_count` is reached.
    #[error(
        "cannot create goroutine stacks (vm.max_map_count {}): raise it with \
         `sysctl -w vm.max_map_count=N` or lower max_connections; each connection needs 3 \
         goroutines of 2 mappings each",
        fmt_limit(*.max_map_count)
    )]
    GoroutineStacks {
        /// `vm.max_map_count` when it could be read.
        max_map_count: Option<u64>,
    },
}

fn fmt_limit(v: Option<u64>) -> String {
    v.map_or_else(|| "unknown".to_owned(), |v| v.to_string())
}

/// Why [`ServerHandle::shutdown`](super::ServerHandle::shutdown) did not finish cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The grace period ended with connections still busy; they were cut off (closed with
    /// their queued replies dropped).
    #[error("shutdown grace period over: {cut_off} connection(s) cut off")]
    Timeout {
        /// Connections closed forcibly.
        cut_off: usize,
    },
}

/// [`Conn::recv_timeout`](super::Conn::recv_timeout)'s error: the time was up before a frame
/// came (or the stream ended). The connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("timed out waiting for a frame")]
pub struct Timeout;

/// `errno` values the accept loop tells apart (Linux and the BSDs agree on EMFILE/ENFILE/
/// ENOMEM/EINTR; the others differ).
pub(crate) mod errno {
    pub(crate) const EINTR: i32 = 4;
    pub(crate) const ENOMEM: i32 = 12;
    pub(crate) const ENFILE: i32 = 23;
    pub(crate) const EMFILE: i32 = 24;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) const EPROTO: i32 = 71;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) const ECONNABORTED: i32 = 103;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) const ENOBUFS: i32 = 105;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) const EPROTO: i32 = 100;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) const ECONNABORTED: i32 = 53;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) const ENOBUFS: i32 = 55;
}

/// `true` for "out of file descriptors".
pub(crate) fn is_fd_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(errno::EMFILE | errno::ENFILE))
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (no `libc` needed); `None` elsewhere
/// or when unlimited.
pub(crate) fn nofile_limit() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Raises the soft `RLIMIT_NOFILE` towards `want` descriptors, within the hard limit, as Go
/// raises it at start-up (the soft limit is often 1024 while the hard one allows far more).
/// Returns the soft limit in force afterwards, or `None` if it cannot be read.
pub(crate) fn raise_nofile_limit(want: u64) -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let target = want.min(lim.rlim_max);
    if lim.rlim_cur >= target {
        return Some(lim.rlim_cur);
    }
    let old = lim.rlim_cur;
    lim.rlim_cur = target;
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one
    // needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Some(old);
    }
    log::info!(target: "goway::server", "raised the soft file-descriptor limit (RLIMIT_NOFILE) from {old} to {target}");
    Some(target)
}

/// `vm.max_map_count`, where readable.
pub(crate) fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages_name_the_setting() {
        let e = LimitError::FileDescriptors {
            soft_limit: Some(64),
        };
        let s = e.to_string();
        assert!(
            s.contains("RLIMIT_NOFILE soft limit 64") && s.contains("ulimit -n"),
            "{s}"
        );
        let e = LimitError::GoroutineStacks {
            max_map_count: None,
        };
        assert!(e.to_string().contains("vm.max_map_count"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_limits_from_proc() {
        assert!(nofile_limit().is_some());
        assert!(max_map_count().is_some());
    }
}
