//! The examples with TLS: `echo` and `http_hello` started with `--tls-cert/--tls-key`, driven
//! by goway's TLS client, `examples/https_client`, `curl --cacert` and `openssl s_client`
//! (each tool skipped with a message when it is not installed).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

mod common;
use common::WATCHDOG;
use common::example::{Example, build_example};
use common::tls::Ca;

/// Temporary PEM files, removed on drop.
struct Files(Vec<std::path::PathBuf>);

impl Files {
    fn write(&mut self, name: &str, text: &str) -> String {
        let p = std::env::temp_dir().join(format!("goway-tls-ex-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        self.0.push(p.clone());
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

/// A CA and a server certificate for localhost in files: (files, ca, cert, key).
fn pki(tag: &str) -> (Files, Ca, String, String, String) {
    let ca = Ca::new("example CA");
    let pair = ca.issue(&["localhost", "127.0.0.1"]);
    let mut f = Files(Vec::new());
    let ca_path = f.write(&format!("{tag}-ca.pem"), ca.pem());
    let cert = f.write(&format!("{tag}-cert.pem"), &pair.cert);
    let key = f.write(&format!("{tag}-key.pem"), &pair.key);
    (f, ca, ca_path, cert, key)
}

#[test]
fn echo_example_serves_tls() {
    let (_f, ca, _ca_path, cert, key) = pki("echo");
    build_example("echo");
    let ex = Example::start(
        "echo",
        &[
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        true,
    );
    let addr: std::net::SocketAddr = ex.addr().parse().unwrap();
    let h = goway::go!(move || {
        let c = goway::tls::dial_timeout(addr, &ca.client(), "localhost", WATCHDOG).unwrap();
        let mut c = BufReader::new(c);
        c.get_mut().write_all(b"over tls\n").unwrap();
        let mut l = String::new();
        c.read_line(&mut l).unwrap();
        l
    });
    assert_eq!(common::join(h), "over tls\n");
}

#[test]
fn http_hello_example_serves_https() {
    let (_f, _ca, ca_path, cert, key) = pki("http");
    build_example("http_hello");
    let client = build_example("https_client");
    let ex = Example::start(
        "http_hello",
        &[
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        true,
    );
    let addr = ex.addr().to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();

    // examples/https_client
    let out = common::child::run_command(
        Command::new(&client).args([
            "--host",
            "localhost",
            "--connect",
            &addr,
            "--path",
            "/plaintext",
            "--cacert",
            &ca_path,
        ]),
        "https_client",
        WATCHDOG,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(
        out.stdout.starts_with("HTTP/1.1 200 OK\n"),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("Hello, World!"), "{}", out.describe());

    // Without the CA the client reports the unknown authority.
    let out = common::child::run_command(
        Command::new(&client).args(["--host", "localhost", "--connect", &addr]),
        "https_client",
        WATCHDOG,
    );
    assert_ne!(out.code(), Some(0));
    assert!(
        out.stderr.contains("UnknownAuthority"),
        "{}",
        out.describe()
    );

    if have("curl") {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert", &ca_path])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("https://localhost:{port}/json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            r#"{"message":"Hello, World!"}"#
        );
    }
    if have("openssl") {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error"])
            .args([
                "-servername",
                "localhost",
                "-connect",
                &addr,
                "-CAfile",
                &ca_path,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let out = common::child::finish(child, "openssl s_client", WATCHDOG, |_| {});
        assert!(out.stdout.contains("Hello, World!"), "{}", out.describe());
    }
}
