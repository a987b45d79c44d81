//! The runtime's on/off switches that the environment overrides: the goroutine registry
//! (`GOWAY_REGISTRY`, default off) and the deadlock detector (`GOWAY_DETECT_DEADLOCK`, default
//! on). `Config::apply` sets them; before it (or without it), the environment decides on first
//! use.

use std::sync::atomic::{AtomicU8, Ordering};

/// A switch read on hot-ish paths (every wait of a plain thread): one relaxed load once decided.
pub(crate) struct Switch {
    /// 0: not decided yet (the environment decides on first use); 1: on; 2: off.
    state: AtomicU8,
    env: &'static str,
    default: bool,
}

/// The goroutine registry (`Config::registry`).
pub(crate) static REGISTRY: Switch = Switch::new("GOWAY_REGISTRY", false);

/// The deadlock detector (`Config::detect_deadlock`).
pub(crate) static DETECT_DEADLOCK: Switch = Switch::new("GOWAY_DETECT_DEADLOCK", true);

impl Switch {
    const fn new(env: &'static str, default: bool) -> Switch {
        Switch {
            state: AtomicU8::new(0),
            env,
            default,
        }
    }

    /// Sets the switch: the environment variable, if set, wins over `on`.
    pub(crate) fn set(&self, on: bool) {
        let on = env_flag(self.env).unwrap_or(on);
        self.state.store(if on { 1 } else { 2 }, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn on(&self) -> bool {
        match self.state.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => self.decide(),
        }
    }

    /// Before `Config::apply`: the environment decides, else the default.
    #[cold]
    #[inline(never)]
    fn decide(&self) -> bool {
        let on = env_flag(self.env).unwrap_or(self.default);
        let _ = self.state.compare_exchange(
            0,
            if on { 1 } else { 2 },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.state.load(Ordering::Relaxed) == 1
    }
}

/// An on/off environment variable: `1`/`true`/`on`/`yes` or `0`/`false`/`off`/`no`.
fn env_flag(name: &str) -> Option<bool> {
    let v = std::env::var(name).ok()?;
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}
