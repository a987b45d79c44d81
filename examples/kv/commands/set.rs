//! `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.

use goway::net::codec::resp::{Reply, Req, parse_int};

use super::{NOT_INT, SYNTAX, err, upper};
use crate::store::{Clock, Db};

// Inlined into `exec`, as when the commands were one function: GET and SET are most of the
// traffic a benchmark sends.
#[inline(always)]
pub(crate) fn run(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    #[derive(PartialEq)]
    enum Unit {
        None,
        Ex,
        Px,
        ExAt,
        PxAt,
        Keep,
    }
    let (mut nx, mut xx, mut get) = (false, false, false);
    let mut unit = Unit::None;
    let mut when: &[u8] = &[];
    let mut j = 3;
    while j < req.len() {
        let mut buf = [0u8; 16];
        let opt = upper(&req[j], &mut buf);
        let next = req.get(j + 1);
        match opt {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => get = true,
            b"KEEPTTL" if unit == Unit::None || unit == Unit::Keep => unit = Unit::Keep,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if next.is_some() => {
                let u = match opt {
                    b"EX" => Unit::Ex,
                    b"PX" => Unit::Px,
                    b"EXAT" => Unit::ExAt,
                    _ => Unit::PxAt,
                };
                if unit != Unit::None && unit != u {
                    return err(SYNTAX);
                }
                unit = u;
                when = next.unwrap_or_default();
                j += 1;
            }
            _ => return err(SYNTAX),
        }
        j += 1;
    }
    // The new deadline: Some(0) clears it, None keeps it (KEEPTTL).
    let expires = match unit {
        Unit::None => Some(0),
        Unit::Keep => None,
        _ => {
            let Some(n) = parse_int(when) else {
                return err(NOT_INT);
            };
            let bad = || err("ERR invalid expire time in 'set' command");
            let secs = matches!(unit, Unit::Ex | Unit::ExAt);
            if n <= 0 || (secs && n > i64::MAX / 1000) {
                return bad();
            }
            let ms = if secs { n * 1000 } else { n };
            let t = if matches!(unit, Unit::Ex | Unit::Px) {
                match ms.checked_add(clock.get()) {
                    Some(t) => t,
                    None => return bad(),
                }
            } else {
                ms
            };
            Some(t)
        }
    };
    let key = &req[1];
    let mut s = db.shard(key);
    // A plain SET (the common case) needs no look at the old entry: `set` replaces its
    // value and deadline in one lookup.
    let mut old_value = None;
    if nx || xx || get || expires.is_none() {
        let old = s.live(key, clock);
        let exists = old.is_some();
        if get {
            old_value = old.map(|e| e.value.clone());
        }
        if (nx && exists) || (xx && !exists) {
            return if get { old_value.into() } else { Reply::Null };
        }
    }
    s.set(key, &req[2], expires);
    if let Some(t) = expires
        && t != 0
        && t <= clock.get()
    {
        // EXAT/PXAT in the past: set, then gone at once (Redis deletes it).
        s.remove(key);
    }
    drop(s);
    if get { old_value.into() } else { Reply::OK }
}
