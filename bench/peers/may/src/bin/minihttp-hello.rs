//! may-minihttp-hello: may_minihttp's `HttpService`, which parses pipelined requests in
//! place and answers each batch with one write.
//!
//! * `GET /plaintext`: `Hello, World!` (text/plain)
//! * `GET /json`: `{"message":"Hello, World!"}` (application/json)
//! * anything else: 404
//!
//! may_minihttp adds the `Server`, `Date` and `Content-Length` headers. One may worker per
//! CPU the process may use.
//!
//! Usage: may-minihttp-hello [-addr 127.0.0.1:PORT]

use std::io;

use may_minihttp::{HttpServer, HttpService, Request, Response};

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match (req.method(), req.path()) {
            ("GET", "/plaintext") => {
                rsp.header("Content-Type: text/plain");
                rsp.body("Hello, World!");
            }
            ("GET", "/json") => {
                rsp.header("Content-Type: application/json");
                rsp.body(r#"{"message":"Hello, World!"}"#);
            }
            _ => {
                rsp.status_code(404, "Not Found");
                rsp.header("Content-Type: text/plain");
                rsp.body("404 page not found\n");
            }
        }
        Ok(())
    }
}

fn main() {
    let addr = may_peers::addr("127.0.0.1:7014");
    may_peers::set_workers(may_peers::cpus());
    match HttpServer(Hello).start(addr) {
        Ok(server) => {
            let _ = server.join();
        }
        Err(e) => {
            eprintln!("listen {addr}: {e}");
            std::process::exit(1)
        }
    }
}
