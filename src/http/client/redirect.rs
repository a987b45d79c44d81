//! Go's redirect policy (net/http/client.go `redirectBehavior`, `CheckRedirect`).

use std::fmt;
use std::sync::Arc;

use super::request::{BodyKind, ClientRequest};
use super::response::Response;
use super::url::Url;

/// What a custom policy decides for one redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAction {
    /// Follow it.
    Follow,
    /// Stop and return the redirect response itself (Go's `ErrUseLastResponse`).
    UseLastResponse,
    /// Fail the request with this message.
    Error(String),
}

/// A custom policy: the next URL and the URLs requested so far, oldest first.
pub type RedirectFn = dyn Fn(&Url, &[Url]) -> RedirectAction + Send + Sync;

/// How a [`Client`](super::Client) follows redirects (Go's `CheckRedirect`).
///
/// # Examples
/// ```
/// use goway::http::{Client, RedirectAction, RedirectPolicy};
/// let c = Client::new().with_redirect(RedirectPolicy::none());
/// let c = Client::new().with_redirect(RedirectPolicy::limit(3));
/// let same_host = RedirectPolicy::custom(|next, via| {
///     if next.host() == via[0].host() { RedirectAction::Follow } else { RedirectAction::UseLastResponse }
/// });
/// # let _ = (c, same_host);
/// ```
#[derive(Clone)]
pub struct RedirectPolicy(Policy);

#[derive(Clone)]
enum Policy {
    Limit(usize),
    Custom(Arc<RedirectFn>),
}

impl fmt::Debug for RedirectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Policy::Limit(n) => write!(f, "RedirectPolicy::limit({n})"),
            Policy::Custom(_) => f.write_str("RedirectPolicy::custom(..)"),
        }
    }
}

impl Default for RedirectPolicy {
    /// Go's default, `limit(10)`: the 10th redirect fails with "stopped after 10
    /// redirects".
    fn default() -> Self {
        RedirectPolicy::limit(10)
    }
}

impl RedirectPolicy {
    /// Follow redirects until `n` requests were made, then fail at the next redirect with
    /// [`ClientError::TooManyRedirects`](super::ClientError::TooManyRedirects) (Go's rule:
    /// `limit(10)` follows 9 redirects and fails at the 10th).
    pub fn limit(n: usize) -> Self {
        RedirectPolicy(Policy::Limit(n))
    }

    /// Follow none: return every redirect response as it is.
    pub fn none() -> Self {
        RedirectPolicy::custom(|_, _| RedirectAction::UseLastResponse)
    }

    /// Ask `f` for each redirect (Go's `CheckRedirect(req, via)`).
    pub fn custom(f: impl Fn(&Url, &[Url]) -> RedirectAction + Send + Sync + 'static) -> Self {
        RedirectPolicy(Policy::Custom(Arc::new(f)))
    }

    pub(crate) fn check(&self, next: &Url, via: &[Url]) -> Result<RedirectAction, usize> {
        match &self.0 {
            Policy::Limit(n) if via.len() >= *n => Err(*n),
            Policy::Limit(_) => Ok(RedirectAction::Follow),
            Policy::Custom(f) => Ok(f(next, via)),
        }
    }
}

/// The request that follows `resp` to `req`, if it is a redirect to follow (Go's
/// `redirectBehavior`): 301, 302 and 303 turn into a GET without body (a HEAD stays a
/// HEAD); 307 and 308 keep the method and the body, when the body can be sent again (else
/// the redirect itself is returned). Returns `None` for a response to return as it is.
pub(crate) fn next_request(req: &mut ClientRequest, resp: &Response) -> Option<ClientRequest> {
    let code = resp.status().as_u16();
    let (method, keep_body) = match code {
        301..=303 => {
            let m = if req.method == "GET" || req.method == "HEAD" {
                req.method.clone()
            } else {
                "GET".to_owned()
            };
            let keep = m == req.method && code != 303;
            (m, keep)
        }
        307 | 308 => {
            if !req.body.is_replayable() && !matches!(req.body.0, BodyKind::Empty) {
                return None;
            }
            (req.method.clone(), true)
        }
        _ => return None,
    };
    let location = resp.header().get("Location")?;
    let url = req.url.join(location).ok()?;
    let mut next = ClientRequest::from_url(&method, url);
    next.context = req.context.clone();
    next.close = req.close;
    let same_host = next.url.host() == req.url.host()
        || next
            .url
            .host()
            .strip_suffix(req.url.host())
            .is_some_and(|p| p.ends_with('.'));
    for (name, value) in req.header.iter() {
        let sensitive = ["Authorization", "Www-Authenticate", "Cookie", "Cookie2"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name));
        if sensitive && !same_host {
            continue;
        }
        if !keep_body
            && (name.eq_ignore_ascii_case("Content-Type")
                || name.eq_ignore_ascii_case("Content-Length"))
        {
            continue;
        }
        next.header.add(name, value);
    }
    if keep_body {
        next.body.0 = req.body.take_for_send();
    }
    // Go sets Referer, unless going from https to http.
    let downgrade = req.url.scheme() == "https" && next.url.scheme() == "http";
    if !downgrade && !next.header.contains("Referer") {
        next.header.set("Referer", &req.url.to_string());
    }
    Some(next)
}
