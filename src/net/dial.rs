//! Go's `net.Dialer`: connecting to a name, with a resolver, an overall timeout or deadline,
//! the resolved addresses tried one after another, and IPv4 raced against IPv6 ("happy
//! eyeballs").

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::ToAddrs;
use super::deadline::timed_out;
use super::dns::Resolver;
use super::tcp::{self, TcpStream};

/// Options for connecting over TCP (Go's `net.Dialer`): an overall
/// [`timeout`](Self::timeout) or [`deadline`](Self::deadline) that covers the name lookup and
/// every connection attempt, and the [`Resolver`] that looks host names up.
///
/// [`dial`](Self::dial) resolves `"host:port"` (off the worker thread), then tries each
/// address in the resolver's order until one connects, as Go's dialer does for a single
/// address family: with a time limit, each attempt gets an equal share of the time left, but
/// at least 2 s (or all that is left), so a first address that does not answer cannot use up
/// the time of the others. If every attempt fails, the error is the first attempt's (the most
/// preferred address's), as Go reports it. [`dial`](super::dial) and
/// [`dial_timeout`](super::dial_timeout) are this with the defaults.
///
/// When a name has addresses of both families, the dialer races them as Go's does ("happy
/// eyeballs", RFC 6555): it tries the family of the first address (the primaries) in turn,
/// and after the [fallback delay](Self::fallback_delay) (300 ms), or at once if the
/// primaries have all failed, the other family in parallel, in another goroutine. The first
/// connection made wins; the other attempt's connection, if it makes one, is closed. The
/// losing attempt tries no further address once the race is decided, but the connect it has
/// under way goes on in its goroutine until it connects or fails (at the latest at the dial's
/// time limit, else at the kernel's connect timeout): unlike Go's, goway's dialer cannot yet
/// withdraw a connect in progress. Give the dialer a [`timeout`](Self::timeout) to bound it.
/// If both fail, the error is the primaries'.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use goway::net::{Dialer, Resolver, TcpListener};
///
/// let ln = TcpListener::bind("127.0.0.1:0").unwrap();
/// let port = ln.local_addr().unwrap().port();
/// // A service name that a table resolves (the table runs on the blocking pool).
/// let dialer = Dialer::new()
///     .timeout(Duration::from_secs(5))
///     .resolver(Resolver::from_fn(|_name| Ok(vec!["127.0.0.1".parse().unwrap()])));
/// let c = goway::go!(move || dialer.dial(("db.internal", port))).join().unwrap();
/// assert_eq!(c.unwrap().peer_addr().unwrap(), ln.local_addr().unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    resolver: Resolver,
    /// `None`: [`DEFAULT_FALLBACK_DELAY`].
    fallback_delay: Option<Duration>,
    no_fallback: bool,
}

/// How long the primary family gets before the other one is tried too (Go's 300 ms).
const DEFAULT_FALLBACK_DELAY: Duration = Duration::from_millis(300);

impl Dialer {
    /// A dialer with no time limit (the kernel's connect timeout applies: minutes) and the
    /// system resolver.
    pub fn new() -> Self {
        Dialer::default()
    }

    /// Limits a whole [`dial`](Self::dial), lookup included, to `d` (Go's `Dialer.Timeout`).
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Makes every [`dial`](Self::dial) give up at `t` (Go's `Dialer.Deadline`); with a
    /// [`timeout`](Self::timeout) too, the earlier of the two applies.
    #[must_use]
    pub fn deadline(mut self, t: Instant) -> Self {
        self.deadline = Some(t);
        self
    }

    /// Looks host names up with `r` (Go's `Dialer.Resolver`).
    #[must_use]
    pub fn resolver(mut self, r: Resolver) -> Self {
        self.resolver = r;
        self
    }

    /// How long to wait for the primary family before racing the other one too (Go's
    /// `Dialer.FallbackDelay`; 300 ms if not set).
    #[must_use]
    pub fn fallback_delay(mut self, d: Duration) -> Self {
        self.fallback_delay = Some(d);
        self
    }

    /// Tries every address in turn, never racing the families (Go's negative
    /// `FallbackDelay`).
    #[must_use]
    pub fn disable_fallback(mut self) -> Self {
        self.no_fallback = true;
        self
    }

    /// Connects to `addr` (Go's `Dialer.Dial("tcp", addr)`). The stream has `TCP_NODELAY`
    /// set.
    ///
    /// # Errors
    /// A lookup error ([`DnsError`](super::DnsError) inside the `io::Error`), `TimedOut` when
    /// the time is up, or the first attempt's error (`ConnectionRefused`, …) when every
    /// address failed.
    pub fn dial(&self, addr: impl ToAddrs) -> io::Result<TcpStream> {
        let end = match (
            self.timeout.and_then(|d| Instant::now().checked_add(d)),
            self.deadline,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let addrs = addr.to_addrs_with(&self.resolver, end)?;
        let Some(first) = addrs.first() else {
            return dial_serial(&addrs, end, None);
        };
        let (primaries, fallbacks): (Vec<SocketAddr>, Vec<SocketAddr>) =
            addrs.iter().partition(|a| a.is_ipv4() == first.is_ipv4());
        if self.no_fallback || fallbacks.is_empty() {
            return dial_serial(&addrs, end, None);
        }
        let delay = self.fallback_delay.unwrap_or(DEFAULT_FALLBACK_DELAY);
        dial_parallel(primaries, fallbacks, end, delay)
    }
}

/// Races the primaries against the fallbacks, which start after `delay` or when the
/// primaries have failed (Go's `dialParallel`). The first connection wins.
fn dial_parallel(
    primaries: Vec<SocketAddr>,
    fallbacks: Vec<SocketAddr>,
    end: Option<Instant>,
    delay: Duration,
) -> io::Result<TcpStream> {
    // Room for both results: a goroutine never waits to hand in its result, and one that
    // comes after the winner is dropped (its stream closed) with the channel.
    let (tx, rx) = crate::chan::bounded::<(bool, io::Result<TcpStream>)>(2);
    // Set when this function returns: an attempt still running then tries no more addresses.
    let decided = Arc::new(AtomicBool::new(false));
    let _decide = Decided(&decided);
    let start = |addrs: Vec<SocketAddr>, primary: bool| -> io::Result<()> {
        let tx = tx.clone();
        let decided = decided.clone();
        crate::Builder::new()
            .spawn(move || {
                let _ = tx.send((primary, dial_serial(&addrs, end, Some(&decided))));
            })
            .map(drop)
    };
    start(primaries, true)?;
    let timer = crate::time::after(delay);
    let mut fallbacks = Some(fallbacks);
    let (mut primary_err, mut fallback_err) = (None, None);
    let mut running = 1;
    loop {
        crate::select! {
            recv(timer) -> _ => {
                if let Some(f) = fallbacks.take() {
                    start(f, false)?;
                    running += 1;
                }
            },
            recv(rx) -> r => {
                // `tx` is alive here, so the channel cannot be closed.
                let Ok((primary, r)) = r else {
                    return Err(io::Error::other("dial: attempt goroutine ended"));
                };
                running -= 1;
                match r {
                    Ok(s) => return Ok(s),
                    Err(e) if primary => {
                        primary_err = Some(e);
                        if let Some(f) = fallbacks.take() {
                            start(f, false)?;
                            running += 1;
                        }
                    }
                    Err(e) => fallback_err = Some(e),
                }
                if running == 0 && fallbacks.is_none() {
                    return Err(primary_err
                        .or(fallback_err)
                        .unwrap_or_else(|| io::Error::other("dial: no attempt made")));
                }
            },
        }
    }
}

/// Sets its flag when dropped: [`dial_parallel`] has returned.
struct Decided<'a>(&'a AtomicBool);

impl Drop for Decided<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Tries `addrs` in turn until one connects, each with its share of the time left until
/// `end`; the first error if none does (Go's `dialSerial`). Stops before the next address once
/// `decided` is set (a parallel dial has returned).
fn dial_serial(
    addrs: &[SocketAddr],
    end: Option<Instant>,
    decided: Option<&AtomicBool>,
) -> io::Result<TcpStream> {
    let _io = super::deadline::io_wait(end.is_some());
    let mut first: Option<io::Error> = None;
    for (i, &a) in addrs.iter().enumerate() {
        if i > 0 && decided.is_some_and(|d| d.load(Ordering::SeqCst)) {
            break;
        }
        let part = match end {
            None => None,
            Some(end) => match partial_deadline(Instant::now(), end, addrs.len() - i) {
                Some(p) => Some(p),
                None => {
                    first.get_or_insert_with(timed_out);
                    break;
                }
            },
        };
        match tcp::connect_one(a, part) {
            Ok(s) => return Ok(s),
            Err(e) => {
                log::debug!(target: "goway::net", "dial {a}: {e}");
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "missing address")))
}

/// The least time an attempt gets when several addresses share a time limit (Go's
/// `saneMinimum`).
const SANE_MINIMUM: Duration = Duration::from_secs(2);

/// When the attempt at the next of `remaining` addresses must end: an equal share of the time
/// left until `end`, but at least [`SANE_MINIMUM`] (or all that is left). `None` if the time
/// is up.
fn partial_deadline(now: Instant, end: Instant, remaining: usize) -> Option<Instant> {
    let left = end.checked_duration_since(now).filter(|d| !d.is_zero())?;
    let share = left / u32::try_from(remaining.max(1)).unwrap_or(u32::MAX);
    let share = if share >= SANE_MINIMUM {
        share
    } else {
        left.min(SANE_MINIMUM)
    };
    Some(now + share)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_time_left_is_shared_with_a_sane_minimum() {
        let now = Instant::now();
        // Equal shares when they are long enough.
        assert_eq!(partial_deadline(now, now + 9 * S, 3), Some(now + 3 * S));
        // A share under 2 s is raised to 2 s, taken from the later addresses.
        assert_eq!(partial_deadline(now, now + 5 * S, 4), Some(now + 2 * S));
        // Under 2 s left: all of it.
        assert_eq!(partial_deadline(now, now + S / 2, 3), Some(now + S / 2));
        // The last address gets all that is left.
        assert_eq!(partial_deadline(now, now + 7 * S, 1), Some(now + 7 * S));
        assert_eq!(partial_deadline(now, now, 1), None);
        assert_eq!(partial_deadline(now + S, now, 1), None);
    }
}
