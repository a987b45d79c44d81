//! `DBSIZE`: the number of keys (those past their deadline until the sweeper removes them).

use goway::net::codec::resp::Reply;

use crate::store::Db;

pub(crate) fn run(db: &Db) -> Reply {
    Reply::Integer(db.dbsize().0 as i64)
}
