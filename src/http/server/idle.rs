//! The idle-connection janitor (Go's `IdleTimeout`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;
use super::table::{ConnEntry, ConnState};

/// Closes connections idle for longer than `idle_timeout`, checking every quarter of it,
/// until the server stops. One goroutine per server instead of a timer per read: an idle
/// connection closes between 1 and 1.5 times the timeout after its last response (its idle
/// stamp comes from the coarse clock, up to one tick old, so one tick is added).
pub(super) fn janitor(srv: Arc<Shared>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
    let idle_ms = u64::try_from((idle + tick).as_millis()).unwrap_or(u64::MAX);
    let stop = srv.stop_rx.clone();
    loop {
        crate::select! {
            recv(stop) -> _ => return,
            recv(crate::time::after(tick)) -> _ => {},
        }
        let now = u64::try_from(srv.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        srv.now_ms.store(now, Ordering::Relaxed);
        let conns: Vec<Arc<ConnEntry>> = srv.conns.lock().values().cloned().collect();
        for c in &conns {
            if c.state.load() == ConnState::Idle
                && now.saturating_sub(c.idle_since.load(Ordering::Relaxed)) >= idle_ms
                && c.close_if(ConnState::Idle)
            {
                log::debug!(target: "goway::http", "http: closing a connection idle for {idle:?}");
            }
        }
    }
}
