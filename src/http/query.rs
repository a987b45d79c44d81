//! Percent-decoding and query strings (Go's `url.PathUnescape`, `url.ParseQuery`).

use std::borrow::Cow;

/// Position of byte `b` in `s`: a plain loop, cheaper than `str::find` on the short strings
/// of a request line.
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set). A malformed escape is
/// kept as it is; bytes that do not form UTF-8 are replaced (lossy). Borrows when there is
/// nothing to decode.
pub(crate) fn unescape(s: &str, plus: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                match (
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// A parsed query string (Go's `url.Values`): decoded `key=value` pairs in order.
///
/// # Examples
/// ```
/// use goway::http::Query;
/// let q = Query::parse("a=1&b=x+y&a=2&c=%2F");
/// assert_eq!(q.get("a"), Some("1"));
/// assert_eq!(q.get_all("a").collect::<Vec<_>>(), ["1", "2"]);
/// assert_eq!(q.get("b"), Some("x y"));
/// assert_eq!(q.get("c"), Some("/"));
/// assert!(q.has("c") && !q.has("d"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `a=1&b=2` (without the `?`). Pairs split on `&`; a key without `=` gets an
    /// empty value; empty pairs are skipped. `+` is a space and `%XX` is decoded.
    ///
    /// ```
    /// let q = goway::http::Query::parse("q=rust+go&flag&&lang=%C3%A9");
    /// let pairs: Vec<_> = q.iter().collect();
    /// assert_eq!(pairs, [("q", "rust go"), ("flag", ""), ("lang", "\u{e9}")]);
    /// ```
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    unescape(k, true).into_owned(),
                    unescape(v, true).into_owned(),
                )
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key` (Go's `Values.Get`, but `None` when absent).
    ///
    /// ```
    /// let q = goway::http::Query::parse("tag=a&tag=b&empty=");
    /// assert_eq!(q.get("tag"), Some("a"));
    /// assert_eq!(q.get("empty"), Some(""));
    /// assert_eq!(q.get("missing"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    ///
    /// ```
    /// let q = goway::http::Query::parse("tag=a&x=1&tag=b");
    /// assert_eq!(q.get_all("tag").collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present (Go's `Values.Has`).
    ///
    /// ```
    /// let q = goway::http::Query::parse("verbose&n=3");
    /// assert!(q.has("verbose") && q.has("n") && !q.has("quiet"));
    /// ```
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Every `(key, value)` in order.
    ///
    /// ```
    /// let q = goway::http::Query::parse("b=2&a=1");
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [("b", "2"), ("a", "1")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    ///
    /// ```
    /// assert_eq!(goway::http::Query::parse("a=1&a=2&b").len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no pairs.
    ///
    /// ```
    /// assert!(goway::http::Query::parse("&&").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// The first value of `key` in a raw query string, decoded, without building a [`Query`].
pub(crate) fn lookup<'a>(raw: &'a str, key: &str) -> Option<Cow<'a, str>> {
    raw.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (!p.is_empty() && unescape(k, true) == key).then(|| unescape(v, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_cases() {
        assert_eq!(unescape("a%20b", false), "a b");
        assert_eq!(unescape("a+b", false), "a+b");
        assert_eq!(unescape("a+b", true), "a b");
        assert_eq!(unescape("100%", false), "100%");
        assert_eq!(unescape("%zz%4", false), "%zz%4");
        assert_eq!(unescape("%E2%82%AC", false), "€");
        assert!(matches!(unescape("plain", true), Cow::Borrowed(_)));
    }

    #[test]
    fn lookup_decodes() {
        assert_eq!(lookup("x=1&na%6De=v+w", "name").as_deref(), Some("v w"));
        assert_eq!(lookup("flag&x=1", "flag").as_deref(), Some(""));
        assert_eq!(lookup("", "x"), None);
    }
}
