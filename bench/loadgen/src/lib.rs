//! Pieces shared by the harness's load generator (`echo-load`) and its idle-connection probe
//! (`idle-probe`): reading another process's CPU time and memory from `/proc`, and parsing
//! command-line values.

pub mod procfs;

use std::process::exit;
use std::str::FromStr;

/// Parses `value` given to `flag`, or exits with status 2 and a message.
pub fn parse_flag<T: FromStr>(flag: &str, value: Option<String>) -> T {
    let Some(value) = value else {
        eprintln!("{flag} needs a value");
        exit(2)
    };
    value.parse().unwrap_or_else(|_| {
        eprintln!("bad value for {flag}: {value:?}");
        exit(2)
    })
}
