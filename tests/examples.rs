//! The examples run as real programs: the README's main command serves echo over TCP.

mod common;

use common::example::Example;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn echo_example_echoes_lines() {
    let ex = Example::start("echo", &["--addr", "127.0.0.1:0"], true);
    let mut s = TcpStream::connect(ex.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for i in 0..100 {
        writeln!(s, "line {i}").unwrap();
    }
    for i in 0..100 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, format!("line {i}\n"));
    }
}
