//! `TTL key` and `PTTL key`: the time left, in seconds (rounded) or milliseconds; -1 for a
//! key without a deadline, -2 for a missing key.

use goway::net::codec::resp::{Reply, Req};

use crate::store::{Clock, Db};

/// `seconds`: TTL, else PTTL.
pub(crate) fn run(db: &Db, req: Req<'_>, seconds: bool, clock: &mut Clock) -> Reply {
    let key = req.get(1).unwrap_or_default();
    let mut s = db.shard(key);
    let t = s.peek(key, clock).map(|e| e.expires);
    match t {
        None => Reply::Integer(-2),
        Some(0) => Reply::Integer(-1),
        Some(t) => {
            let left = (t - clock.get()).max(0);
            Reply::Integer(if seconds { (left + 500) / 1000 } else { left })
        }
    }
}
