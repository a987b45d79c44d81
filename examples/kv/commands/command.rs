//! `COMMAND [COUNT|LIST|INFO|DOCS|HELP]`: enough of the command table for redis-cli and
//! redis-benchmark.

use goway::net::codec::resp::{Reply, Req};

use super::{COMMANDS, SYNTAX, err, glob, help, unknown_subcommand, upper};

/// COMMAND's subcommands kv serves, with Redis 7.0's arities (what its `COMMAND INFO` says:
/// `n > 0` exactly n arguments, command and subcommand included, `n < 0` at least -n), as
/// CLIENT's and CONFIG's are. [`exec`](super::exec) checks them before the subcommand runs.
pub(crate) const SUBCOMMANDS: &[(&str, i32)] = &[
    ("count", 2),
    ("docs", -2),
    ("help", 2),
    ("info", -2),
    ("list", -2),
];

pub(crate) fn run(req: Req<'_>) -> Reply {
    let Some(sub) = req.get(1) else {
        // The full command table: an empty one is enough for the tools.
        return Reply::Array(Vec::new());
    };
    let mut buf = [0u8; 16];
    let mut buf2 = [0u8; 16];
    let mut buf3 = [0u8; 16];
    let arg = |i: usize| req.get(i).unwrap_or_default();
    match upper(sub, &mut buf) {
        b"COUNT" => Reply::Integer(COMMANDS.len() as i64),
        b"DOCS" => Reply::Array(Vec::new()),
        b"LIST" => {
            // FILTERBY PATTERN <glob> (kv has no modules and no ACL categories).
            let pattern = match (
                req.len(),
                upper(arg(2), &mut buf2),
                upper(arg(3), &mut buf3),
            ) {
                (2, _, _) => None,
                (5, b"FILTERBY", b"PATTERN") => Some(arg(4)),
                _ => return err(SYNTAX),
            };
            Reply::Array(
                COMMANDS
                    .iter()
                    .filter(|c| pattern.is_none_or(|p| glob(p, c.as_bytes())))
                    .map(|c| Reply::Bulk(c.as_bytes().to_vec()))
                    .collect(),
            )
        }
        // Details are not kept: a null per name, as Redis answers for a name it lacks.
        b"INFO" => Reply::Array(req.iter().skip(2).map(|_| Reply::Null).collect()),
        b"HELP" => help(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all commands (none are kept: an empty list).",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST [FILTERBY PATTERN <pattern>]",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands (none are kept).",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands (none are kept).",
            ],
        ),
        _ => unknown_subcommand(sub, "COMMAND"),
    }
}
