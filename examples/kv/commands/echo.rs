//! `ECHO message`.

use goway::net::codec::resp::{Reply, Req};

pub(crate) fn run(req: Req<'_>) -> Reply {
    Reply::Bulk(req.get(1).unwrap_or_default().to_vec())
}
