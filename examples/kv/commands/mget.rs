//! `MGET key [key ...]`: the values, in order, under the locks of all their shards.

use goway::net::codec::resp::{Replies, Req};

use super::{ServerInfo, Step};
use crate::store::{Clock, Db};

pub(crate) fn run(
    db: &Db,
    req: Req<'_>,
    info: &ServerInfo,
    clock: &mut Clock,
    out: &mut Replies,
) -> Step {
    let keys = || req.iter().skip(1);
    let mut guards = db.lock_many(keys());
    out.array(req.len() - 1);
    let limit = info.output_limit.0;
    for k in keys() {
        if limit != 0 && out.len() > limit {
            drop(guards);
            return Step::Overflow;
        }
        let i = db.shard_of(k);
        let e = match guards.iter_mut().find(|(j, _)| *j == i) {
            Some((_, g)) => g.peek(k, clock),
            None => None,
        };
        match e {
            Some(e) => out.bulk(&e.value),
            None => out.null(),
        }
    }
    drop(guards);
    Step::Written
}
