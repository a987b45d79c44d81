//! JSON helpers (feature `json`): decode a request body, encode a response (Go's
//! `json.NewDecoder(r.Body).Decode(&v)` and `json.NewEncoder(w).Encode(v)`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::request::Request;
use super::response::ResponseWriter;
use super::status::StatusCode;

/// Deepest nesting of arrays and objects that [`read_json`] decodes and [`write_json`]
/// encodes. A deeper body gets [`JsonError::TooDeep`] (400) before any decoding, as Go's
/// decoder errors out past its own limit (10,000 levels, on stacks that grow; a goroutine's
/// stack here does not grow, and a stack overflow ends the whole process).
///
/// 64 levels fit the server's default stack with room to spare. Measured by bisecting the
/// stack size at which a handler's `read_json::<serde_json::Value>` then `write_json` of
/// nested objects overflows: in an optimised build, about 6 KiB of server and handler
/// frames plus 320 to 512 bytes a level (depending on inlining), so 64 levels take 26 to
/// 37 KiB of the default 64 KiB; arrays, derived structs and tagged or untagged enums took
/// no more. Unoptimised builds take about 15 KiB plus 1.9 KiB a level (132 KiB at 64
/// levels), which is why the server's default stack is 256 KiB there (see
/// [`Config::handler_stack_size`](super::Config::handler_stack_size)). A type whose decoding
/// needs more than about 900 bytes of stack a level needs a larger `handler_stack_size`.
pub const MAX_JSON_DEPTH: usize = 64;

/// Why a JSON body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Reading the body failed (too large, timed out, client gone).
    #[error("reading body: {0}")]
    Body(#[from] std::io::Error),
    /// The body is not the expected JSON.
    #[error("invalid JSON: {0}")]
    Decode(#[from] serde_json::Error),
    /// The body nests arrays and objects deeper than [`MAX_JSON_DEPTH`].
    #[error("invalid JSON: nested deeper than {limit} levels")]
    TooDeep {
        /// The limit, [`MAX_JSON_DEPTH`].
        limit: usize,
    },
}

impl JsonError {
    /// The status to answer with: 413 for a body over the limit, else 400.
    ///
    /// ```
    /// use goway::http::{Request, ResponseWriter, Server, read_json, write_json};
    ///
    /// fn echo(r: &Request, w: &mut ResponseWriter) {
    ///     match read_json::<serde_json::Value>(r) {
    ///         Ok(v) => write_json(w, 200, &v),
    ///         Err(e) => goway::http::error(w, &e.to_string(), e.status()),
    ///     }
    /// }
    /// // The reply to a body that is not JSON:
    /// # let req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n{x}";
    /// # let reply = goway::http::doctest::serve_one(echo, req).unwrap();
    /// assert_eq!(reply.status, 400);
    /// // and to a chunked body over the server's limit:
    /// let server = Server::builder().handler(echo).max_body_bytes(4);
    /// # let req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n[1,2,3,4]\r\n0\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one_with(server, req).unwrap();
    /// assert_eq!(reply.status, 413);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            JsonError::Body(e) if e.to_string().contains("too large") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads the whole body and decodes it as JSON. A body nested deeper than
/// [`MAX_JSON_DEPTH`] is refused before decoding (a scan of its brackets outside strings),
/// so no body can overflow the handler's stack.
///
/// # Errors
/// [`JsonError`]; answer it with `http::error(w, &e.to_string(), e.status())`.
///
/// # Examples
/// ```
/// use goway::http::{Request, ResponseWriter, read_json, write_json};
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Todo { title: String }
///
/// fn create(r: &Request, w: &mut ResponseWriter) {
///     match read_json::<Todo>(r) {
///         Ok(t) => write_json(w, 201, &t),
///         Err(e) => goway::http::error(w, &e.to_string(), e.status()),
///     }
/// }
/// # let _ = create;
/// ```
pub fn read_json<T: DeserializeOwned>(r: &Request<'_>) -> Result<T, JsonError> {
    let body = r.read_body()?;
    if nesting_depth(&body, MAX_JSON_DEPTH).is_none() {
        return Err(JsonError::TooDeep {
            limit: MAX_JSON_DEPTH,
        });
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The deepest nesting of `[` and `{` in `json`, not counting those inside strings; `None`
/// as soon as it exceeds `limit`. Malformed JSON is scanned all the same (the decoder
/// refuses it afterwards).
fn nesting_depth(json: &[u8], limit: usize) -> Option<usize> {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // Skip the string: to its closing quote, past escaped characters.
                i += 1;
                while i < json.len() {
                    match json[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return None;
                }
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Some(max)
}

/// A compact formatter that refuses to open an array or object deeper than
/// [`MAX_JSON_DEPTH`], so that encoding a value cannot overflow the stack either.
struct DepthLimited {
    depth: usize,
}

impl DepthLimited {
    fn enter(&mut self) -> std::io::Result<()> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("value nested deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }
}

impl serde_json::ser::Formatter for DepthLimited {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.enter()?;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        w.write_all(b"]")
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.enter()?;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        w.write_all(b"}")
    }
}

/// Writes `value` as JSON with `status` and `Content-Type: application/json`. A value that
/// cannot be serialised (a map with non-string keys, say, or one nested deeper than
/// [`MAX_JSON_DEPTH`]) gets a 500 instead.
///
/// ```
/// use goway::http::{Request, ResponseWriter, write_json};
///
/// fn item(_r: &Request, w: &mut ResponseWriter) {
///     write_json(w, 200, &serde_json::json!({"id": 7, "tags": ["a"]}));
/// }
/// // The reply to any request:
/// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
/// # let reply = goway::http::doctest::serve_one(item, req).unwrap();
/// assert_eq!(reply.header("Content-Type"), Some("application/json"));
/// assert_eq!(reply.body, r#"{"id":7,"tags":["a"]}"#);
/// ```
pub fn write_json<T: Serialize + ?Sized>(
    w: &mut ResponseWriter<'_>,
    status: impl Into<StatusCode>,
    value: &T,
) {
    let start = w.buf.len();
    let mut ser = serde_json::Serializer::with_formatter(&mut w.buf, DepthLimited { depth: 0 });
    match value.serialize(&mut ser) {
        Ok(()) => {
            let body = w.buf.split_off(start);
            w.header().set("Content-Type", "application/json");
            w.write_header(status);
            let _ = std::io::Write::write_all(w, &body);
        }
        Err(e) => {
            w.buf.truncate(start);
            super::handler::error(w, &format!("json: {e}"), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan() {
        assert_eq!(nesting_depth(b"1", 64), Some(0));
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":[]}]}"#, 64), Some(4));
        assert_eq!(nesting_depth(br#"["[[[[{{{{", "\"[[[", {}]"#, 64), Some(2));
        assert_eq!(nesting_depth(br#"["\\", [[]]]"#, 64), Some(3));
        assert_eq!(nesting_depth(br#""unterminated [[["#, 1), Some(0));
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(nesting_depth(deep(64).as_bytes(), 64), Some(64));
        assert_eq!(nesting_depth(deep(65).as_bytes(), 64), None);
        // Sequential, not nested: depth 1.
        assert_eq!(nesting_depth("[]".repeat(1000).as_bytes(), 1), Some(1));
        // Stray closers do not make room for more openers.
        assert_eq!(
            nesting_depth(format!("{}{}", "]".repeat(10), deep(3)).as_bytes(), 3),
            Some(3)
        );
    }

    #[test]
    fn encoding_stops_at_the_limit() {
        let nested = |n: usize| {
            let mut v = serde_json::Value::from(1);
            for _ in 0..n {
                v = serde_json::Value::Array(vec![v]);
            }
            v
        };
        let enc = |v: &serde_json::Value| {
            let mut out = Vec::new();
            let mut ser =
                serde_json::Serializer::with_formatter(&mut out, DepthLimited { depth: 0 });
            v.serialize(&mut ser).map(|()| out)
        };
        let ok = enc(&nested(MAX_JSON_DEPTH)).unwrap();
        assert_eq!(ok.len(), 2 * MAX_JSON_DEPTH + 1);
        assert_eq!(ok, serde_json::to_vec(&nested(MAX_JSON_DEPTH)).unwrap());
        let err = enc(&nested(MAX_JSON_DEPTH + 1)).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 64"), "{err}");
    }
}
