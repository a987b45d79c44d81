//! `EXPIRE key seconds [NX|XX|GT|LT]` and `PEXPIRE key ms [NX|XX|GT|LT]`: sets a key's
//! deadline; 1 if set. A deadline in the past removes the key.

use goway::net::codec::resp::{Reply, Req, parse_int};

use super::{NOT_INT, err, upper};
use crate::store::{Clock, Db};

/// `unit_ms`: 1000 for EXPIRE, 1 for PEXPIRE; `name` for the error text.
pub(crate) fn run(db: &Db, req: Req<'_>, unit_ms: i64, name: &str, clock: &mut Clock) -> Reply {
    // The options first, then the time: Redis's order of checks (and of its errors).
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in req.iter().skip(3) {
        let mut buf = [0u8; 16];
        match upper(o, &mut buf) {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return Reply::Error(
                    format!("ERR Unsupported option {}", String::from_utf8_lossy(o)).into(),
                );
            }
        }
    }
    if nx && (xx || gt || lt) {
        return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return err("ERR GT and LT options at the same time are not compatible");
    }
    let Some(n) = parse_int(&req[2]) else {
        return err(NOT_INT);
    };
    let bad = || Reply::Error(format!("ERR invalid expire time in '{name}' command").into());
    let Some(ms) = n.checked_mul(unit_ms) else {
        return bad();
    };
    let Some(t) = ms.checked_add(clock.get()) else {
        return bad();
    };
    let key = &req[1];
    let mut s = db.shard(key);
    let Some(cur) = s.live(key, clock).map(|e| e.expires) else {
        return Reply::Integer(0);
    };
    // No deadline counts as infinite for GT and LT.
    let ok = (!nx || cur == 0)
        && (!xx || cur != 0)
        && (!gt || (cur != 0 && t > cur))
        && (!lt || cur == 0 || t < cur);
    if !ok {
        return Reply::Integer(0);
    }
    if t <= clock.get() {
        let old = s.remove(key);
        drop(s);
        drop(old);
    } else {
        s.set_expiry(key, t);
    }
    Reply::Integer(1)
}
