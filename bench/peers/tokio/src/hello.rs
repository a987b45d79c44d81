//! The HTTP routes of the hello peers (`tokio-http-hello`, `tokio-https-hello`):
//!
//! * `GET /plaintext`: `Hello, World!` (text/plain)
//! * `GET /json`: `{"message":"Hello, World!"}` (application/json, serialized per request)
//! * anything else: 404

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

fn reply(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/plaintext" => reply(Bytes::from_static(b"Hello, World!"), "text/plain"),
        "/json" => match serde_json::to_vec(&serde_json::json!({ "message": "Hello, World!" })) {
            Ok(body) => reply(Bytes::from(body), "application/json"),
            Err(_) => {
                let mut r = reply(Bytes::new(), "text/plain");
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        },
        _ => {
            let mut r = reply(Bytes::from_static(b"404 page not found\n"), "text/plain");
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    })
}
