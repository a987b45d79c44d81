//! Header fields (Go's `http.Header`): an ordered multimap with case-insensitive names.
//!
//! All names and values of one `Header` live in one string buffer, each field stored as the
//! line `name: value\r\n` that the response writer copies as it is, and the fields are ranges
//! into it: filling a header allocates nothing once the buffers have grown, and the server
//! reuses the same buffers for every request of a connection.

use std::fmt;

#[derive(Clone, Copy)]
struct Field {
    name: (u32, u32),
    value: (u32, u32),
}

/// HTTP header fields: names compare case-insensitively, a name may repeat, order is kept.
/// Values are owned by the header (`set` copies them).
///
/// A value with CR, LF or NUL is stored with those bytes turned into spaces, as Go does when
/// writing, so a header can never split a response.
///
/// # Examples
/// ```
/// use goway::http::Header;
/// let mut h = Header::new();
/// h.set("Content-Type", "text/plain");
/// h.add("Vary", "Accept");
/// h.add("vary", "Origin");
/// assert_eq!(h.get("content-type"), Some("text/plain"));
/// assert_eq!(h.values("Vary").collect::<Vec<_>>(), ["Accept", "Origin"]);
/// h.del("VARY");
/// assert_eq!(h.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Header {
    buf: String,
    fields: Vec<Field>,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Header {
    /// An empty header.
    ///
    /// ```
    /// let h = goway::http::Header::new();
    /// assert!(h.is_empty());
    /// ```
    pub fn new() -> Header {
        Header::default()
    }

    fn name(&self, f: &Field) -> &str {
        &self.buf[f.name.0 as usize..f.name.1 as usize]
    }

    fn value(&self, f: &Field) -> &str {
        &self.buf[f.value.0 as usize..f.value.1 as usize]
    }

    /// The first value of `name`, if any (Go's `Header.Get`).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Accept", "text/html");
    /// h.add("Accept", "text/plain");
    /// assert_eq!(h.get("accept"), Some("text/html"));
    /// assert_eq!(h.get("Host"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| self.name(f).eq_ignore_ascii_case(name))
            .map(|f| self.value(f))
    }

    /// Every value of `name`, in order (Go's `Header.Values`).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Set-Cookie", "a=1");
    /// h.add("set-cookie", "b=2");
    /// assert_eq!(h.values("SET-COOKIE").collect::<Vec<_>>(), ["a=1", "b=2"]);
    /// ```
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| self.name(f).eq_ignore_ascii_case(name))
            .map(move |f| self.value(f))
    }

    /// Whether `name` is present.
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.set("Authorization", "Bearer t");
    /// assert!(h.contains("authorization"));
    /// assert!(!h.contains("Cookie"));
    /// ```
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a value to `name` (Go's `Header.Add`). Spaces around the value are trimmed;
    /// CR, LF and NUL in it become spaces.
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Vary", "Accept");
    /// h.add("Vary", " Origin ");
    /// h.add("X-Bad", "a\r\nInjected: 1");
    /// assert_eq!(h.values("Vary").collect::<Vec<_>>(), ["Accept", "Origin"]);
    /// assert_eq!(h.get("X-Bad"), Some("a  Injected: 1"));
    /// ```
    pub fn add(&mut self, name: &str, value: &str) {
        let value = value.trim_ascii();
        self.buf.reserve(name.len() + value.len() + 4);
        let n0 = self.buf.len();
        self.buf.push_str(name);
        let n1 = self.buf.len();
        self.buf.push_str(": ");
        let v0 = self.buf.len();
        if value
            .bytes()
            .any(|b| b < 0x20 && matches!(b, b'\r' | b'\n' | 0))
        {
            self.buf.extend(value.chars().map(|c| match c {
                '\r' | '\n' | '\0' => ' ',
                c => c,
            }));
        } else {
            self.buf.push_str(value);
        }
        let v1 = self.buf.len();
        self.buf.push_str("\r\n");
        self.fields.push(Field {
            name: (pos(n0), pos(n1)),
            value: (pos(v0), pos(v1)),
        });
    }

    /// Replaces every value of `name` with `value` (Go's `Header.Set`).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Cache-Control", "no-cache");
    /// h.add("Cache-Control", "no-store");
    /// h.set("cache-control", "max-age=60");
    /// assert_eq!(h.values("Cache-Control").collect::<Vec<_>>(), ["max-age=60"]);
    /// ```
    pub fn set(&mut self, name: &str, value: &str) {
        self.del(name);
        self.add(name, value);
    }

    /// Removes every value of `name` (Go's `Header.Del`).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Vary", "Accept");
    /// h.add("vary", "Origin");
    /// h.set("Host", "example.com");
    /// h.del("VARY");
    /// assert_eq!(h.iter().collect::<Vec<_>>(), [("Host", "example.com")]);
    /// ```
    pub fn del(&mut self, name: &str) {
        let buf = &self.buf;
        self.fields
            .retain(|f| !buf[f.name.0 as usize..f.name.1 as usize].eq_ignore_ascii_case(name));
        if self.fields.is_empty() {
            self.buf.clear();
        }
    }

    /// Number of fields (a repeated name counts each time).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("Vary", "Accept");
    /// h.add("Vary", "Origin");
    /// assert_eq!(h.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// assert!(h.is_empty());
    /// h.set("Host", "a");
    /// assert!(!h.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Removes every field, keeping the buffers.
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.set("Host", "a");
    /// h.clear();
    /// assert_eq!(h.get("Host"), None);
    /// ```
    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
    }

    /// Every `(name, value)` in order, names as they were given.
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.add("content-type", "text/plain");
    /// h.add("X-Id", "7");
    /// let fields: Vec<_> = h.iter().collect();
    /// assert_eq!(fields, [("content-type", "text/plain"), ("X-Id", "7")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|f| (self.name(f), self.value(f)))
    }

    /// Whether any value of `name` holds `token` in its comma-separated list, ignoring case
    /// (`Connection: keep-alive, Upgrade` has `upgrade`).
    ///
    /// ```
    /// let mut h = goway::http::Header::new();
    /// h.set("Connection", "keep-alive, Upgrade");
    /// assert!(h.has_token("connection", "upgrade"));
    /// assert!(!h.has_token("connection", "close"));
    /// ```
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Every `(name, value, line)` as bytes, where `line` is `name: value\r\n` as stored,
    /// ready to be written (the server's response writer).
    pub(crate) fn raw_fields(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> + '_ {
        let b = self.buf.as_bytes();
        self.fields.iter().map(move |f| {
            let (n0, n1) = (f.name.0 as usize, f.name.1 as usize);
            let (v0, v1) = (f.value.0 as usize, f.value.1 as usize);
            (&b[n0..n1], &b[v0..v1], &b[n0..v1 + 2])
        })
    }

    /// Bytes of all names and values.
    pub(crate) fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Appends a field from raw request bytes: `httparse` has checked the name is a token and
    /// the value has no CR, LF or NUL; a value that is not UTF-8 (obs-text) is stored lossily.
    pub(crate) fn add_raw(&mut self, name: &str, value: &[u8]) {
        let n0 = self.buf.len();
        self.buf.push_str(name);
        let n1 = self.buf.len();
        self.buf.push_str(": ");
        let v0 = self.buf.len();
        match std::str::from_utf8(value) {
            Ok(v) => self.buf.push_str(v),
            Err(_) => self.buf.push_str(&String::from_utf8_lossy(value)),
        }
        let v1 = self.buf.len();
        self.buf.push_str("\r\n");
        self.fields.push(Field {
            name: (pos(n0), pos(n1)),
            value: (pos(v0), pos(v1)),
        });
    }
}

/// Header buffers are bounded by `max_header_bytes` (requests) or by what a handler writes;
/// past 4 GiB the positions saturate rather than wrap.
fn pos(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The bytes of an RFC 9110 token.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Whether `name` is a valid field name (an RFC 9110 token).
#[inline]
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TOKEN[b as usize])
}
