//! `CLIENT ID|GETNAME|SETNAME|SETINFO|INFO|LIST|HELP`, for the calling client.

use goway::net::codec::resp::{Reply, Req, parse_int};

use super::{Client, SYNTAX, err, help, unknown_subcommand, upper};

/// CLIENT's subcommands, with Redis 7.0's arities (see
/// [`command::SUBCOMMANDS`](super::command::SUBCOMMANDS)). SETINFO is Redis 7.2's (redis-cli
/// and redis-benchmark 7.2 send it).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] = &[
    ("getname", 2),
    ("help", 2),
    ("id", 2),
    ("info", 2),
    ("list", -2),
    ("setinfo", 4),
    ("setname", 3),
];

pub(crate) fn run(req: Req<'_>, cl: &mut Client) -> Reply {
    let sub = &req[1];
    let mut buf = [0u8; 16];
    match upper(sub, &mut buf) {
        b"ID" => Reply::Integer(cl.id as i64),
        b"GETNAME" => cl.name.clone().into(),
        b"SETNAME" => {
            let name = &req[2];
            if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                err("ERR Client names cannot contain spaces, newlines or special characters.")
            } else {
                cl.name = (!name.is_empty()).then(|| name.to_vec());
                Reply::OK
            }
        }
        b"SETINFO" => Reply::OK,
        b"INFO" => Reply::Bulk(client_line(cl)),
        b"LIST" => {
            // kv lists the calling client only; TYPE and ID filter it as Redis does.
            let mut buf2 = [0u8; 16];
            let arg = |i: usize| req.get(i).unwrap_or_default();
            let listed = match (req.len(), upper(arg(2), &mut buf2)) {
                (2, _) => true,
                (4, b"TYPE") => {
                    let mut buf3 = [0u8; 16];
                    match upper(arg(3), &mut buf3) {
                        b"NORMAL" => true,
                        b"MASTER" | b"REPLICA" | b"SLAVE" | b"PUBSUB" => false,
                        _ => {
                            return Reply::Error(
                                format!(
                                    "ERR Unknown client type '{}'",
                                    String::from_utf8_lossy(arg(3))
                                )
                                .into(),
                            );
                        }
                    }
                }
                (n, b"ID") if n > 3 => {
                    let mut me = false;
                    for id in req.iter().skip(3) {
                        match parse_int(id) {
                            Some(id) => me |= id == cl.id as i64,
                            None => return err("ERR Invalid client ID"),
                        }
                    }
                    me
                }
                _ => return err(SYNTAX),
            };
            Reply::Bulk(if listed { client_line(cl) } else { Vec::new() })
        }
        b"HELP" => help(
            "CLIENT",
            &[
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
                "    Return information about client connections (this one, if it matches).",
                "SETINFO <option> <value>",
                "    Accepted and ignored (lib-name, lib-ver).",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
            ],
        ),
        _ => unknown_subcommand(sub, "CLIENT"),
    }
}

/// The calling client's line of CLIENT INFO and CLIENT LIST.
fn client_line(cl: &Client) -> Vec<u8> {
    format!(
        "id={} addr={} name={} db=0 cmd=client\n",
        cl.id,
        cl.peer,
        String::from_utf8_lossy(cl.name.as_deref().unwrap_or_default())
    )
    .into_bytes()
}
