//! curl (Debian's package, installed by `.ci/run`) against the HTTP examples, run as child
//! processes: `http_hello`'s two TechEmpower routes, and `http_todo`'s REST API end to end.
#![cfg(feature = "json")]

mod common;

use std::process::Command;

use common::example::Example;

/// Runs curl with `args` (plus `-s`, a time limit, and `-w` printing the status last);
/// returns (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_owned())
}

#[test]
fn http_hello_with_curl() {
    let _g = common::shared();
    let ex = Example::start("http_hello", &["--addr", "127.0.0.1:0"], true);
    let base = format!("http://{}", ex.addr());
    assert_eq!(
        curl(&[&format!("{base}/plaintext")]),
        (200, "Hello, World!".to_owned())
    );
    assert_eq!(
        curl(&[&format!("{base}/json")]),
        (200, r#"{"message":"Hello, World!"}"#.to_owned())
    );
    // Headers, keep-alive over two URLs, HTTP/1.0, and the mux's 405 and 404.
    let (code, head) = curl(&["-i", &format!("{base}/plaintext"), &format!("{base}/json")]);
    assert_eq!(code, 200);
    assert!(head.contains("Content-Type: text/plain\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert_eq!(curl(&["--http1.0", &format!("{base}/plaintext")]).0, 200);
    assert_eq!(curl(&["-X", "POST", &format!("{base}/json")]).0, 405);
    assert_eq!(curl(&[&format!("{base}/nope")]).0, 404);
    let (code, head) = curl(&["-I", &format!("{base}/plaintext")]);
    assert_eq!(code, 200);
    assert!(head.contains("Content-Length: 13"), "{head}");
}

#[test]
fn http_todo_crud_with_curl() {
    let _g = common::shared();
    let ex = Example::start("http_todo", &["--addr", "127.0.0.1:0"], true);
    let base = format!("http://{}/todos", ex.addr());
    let json = ["-H", "Content-Type: application/json"];
    assert_eq!(curl(&[&base]), (200, "[]".to_owned()));
    let (code, body) = curl(&[&json[..], &["-d", r#"{"title":"milk"}"#, &base]].concat());
    assert_eq!(code, 201, "{body}");
    assert_eq!(body, r#"{"id":1,"title":"milk","done":false}"#);
    let (code, _) = curl(&[&json[..], &["-d", r#"{"title":"eggs"}"#, &base]].concat());
    assert_eq!(code, 201);
    assert_eq!(
        curl(&[&format!("{base}/1")]),
        (200, r#"{"id":1,"title":"milk","done":false}"#.to_owned())
    );
    let (code, body) = curl(
        &[
            &json[..],
            &[
                "-X",
                "PUT",
                "-d",
                r#"{"title":"milk","done":true}"#,
                &format!("{base}/1"),
            ],
        ]
        .concat(),
    );
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"id":1,"title":"milk","done":true}"#)
    );
    assert_eq!(
        curl(&["-X", "DELETE", &format!("{base}/2")]),
        (204, String::new())
    );
    assert_eq!(curl(&[&format!("{base}/2")]).0, 404);
    assert_eq!(curl(&[&format!("{base}/x")]).0, 400);
    assert_eq!(
        curl(&[&base]),
        (200, r#"[{"id":1,"title":"milk","done":true}]"#.to_owned())
    );
    // Bad JSON is a 400; a store slower than the request's 2 s context is a 504.
    assert_eq!(curl(&[&json[..], &["-d", "{", &base]].concat()).0, 400);
    assert_eq!(curl(&[&format!("{base}?delay_ms=5000")]).0, 504);
    assert_eq!(curl(&["-X", "PATCH", &format!("{base}/1")]).0, 405);
}
