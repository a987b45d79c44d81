//! `GET key`: the value, or the null bulk string.

use goway::net::codec::resp::{Replies, Req};

use super::Step;
use crate::store::{Clock, Db};

// Inlined into `exec`, as when the commands were one function: GET and SET are most of the
// traffic a benchmark sends.
#[inline(always)]
pub(crate) fn run(db: &Db, req: Req<'_>, clock: &mut Clock, out: &mut Replies) -> Step {
    let key = req.get(1).unwrap_or_default();
    // Copied once, from the store into the output, under the shard's lock.
    let mut s = db.shard(key);
    match s.peek(key, clock) {
        Some(e) => out.bulk(&e.value),
        None => out.null(),
    }
    Step::Written
}
