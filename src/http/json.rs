//! JSON helpers (feature `json`): decode a request body, encode a response (Go's
//! `json.NewDecoder(r.Body).Decode(&v)` and `json.NewEncoder(w).Encode(v)`).

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::request::Request;
use super::response::ResponseWriter;
use super::status::StatusCode;

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
}

impl JsonError {
    /// The status to answer with: 413 for a body over the limit, else 400.
    pub fn status(&self) -> StatusCode {
        match self {
            JsonError::Body(e) if e.to_string().contains("too large") => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads the whole body and decodes it as JSON.
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
    Ok(serde_json::from_slice(&body)?)
}

/// Writes `value` as JSON with `status` and `Content-Type: application/json`. A value that
/// cannot be serialised (a map with non-string keys, say) gets a 500 instead.
pub fn write_json<T: Serialize + ?Sized>(
    w: &mut ResponseWriter<'_>,
    status: impl Into<StatusCode>,
    value: &T,
) {
    let start = w.buf.len();
    match serde_json::to_writer(&mut w.buf, value) {
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
