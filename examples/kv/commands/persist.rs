//! `PERSIST key`: removes the key's deadline; 1 if it had one.

use goway::net::codec::resp::{Reply, Req};

use crate::store::{Clock, Db};

pub(crate) fn run(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    let key = req.get(1).unwrap_or_default();
    let mut s = db.shard(key);
    match s.live(key, clock).map(|e| e.expires) {
        Some(t) if t != 0 => {
            s.set_expiry(key, 0);
            Reply::Integer(1)
        }
        _ => Reply::Integer(0),
    }
}
