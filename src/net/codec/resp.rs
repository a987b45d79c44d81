//! RESP2, the Redis serialization protocol: requests in, replies out (and the reverse for
//! clients).
//!
//! Decoding follows Redis's own reader (`processMultibulkBuffer` and `processInlineBuffer` in
//! Redis's `networking.c`) byte for byte where a client can see the difference:
//!
//! - A request starting with `*` is a *multibulk* request: `*<count>\r\n` then `count` bulk
//!   strings `$<len>\r\n<bytes>\r\n`. It is flat: an array inside a request is
//!   `expected '$', got '*'`. A count of zero or less is an empty request, which Redis
//!   ignores; it decodes to an empty [`Request`].
//! - Anything else is an *inline* request: one line split on whitespace, with Redis's quoting
//!   (`"a b\x41\n"`, `'it''s'`, see [`split_inline`]). A blank line is an empty request.
//! - Like Redis, a header line is found by its `\r` and the byte after it is skipped unread, and
//!   the two bytes after a bulk's data are skipped unread too.
//!
//! Every size is checked before the bytes are buffered: a count over [`MAX_MULTIBULK`], a bulk
//! length over the bulk maximum (the smaller of [`DEFAULT_MAX_BULK`] or
//! [`RespCodec::with_max_bulk`], and the server's `max_frame`), a header line longer than
//! [`MAX_INLINE`], an inline line longer than that or than `max_frame`, and a whole request
//! over `max_frame` all fail as soon as their header is in. The errors carry Redis's texts, and [`Codec::error_reply`] turns them into Redis's
//! reply, `-ERR Protocol error: <why>`, sent before the server closes the connection:
//!
//! | input | reply |
//! |---|---|
//! | `*3000000000\r\n`, `*x\r\n` | `-ERR Protocol error: invalid multibulk length` |
//! | `*1\r\n$-1\r\n`, `$blabla`, `$18446744073709551615`, over the max | `-ERR Protocol error: invalid bulk length` |
//! | `*1\r\nfoo\r\n`, `*1\r\n*1\r\n` | `-ERR Protocol error: expected '$', got 'f'` (`'*'`) |
//! | an inline line over 64 KiB | `-ERR Protocol error: too big inline request` |
//! | a `*`/`$` header line over 64 KiB | `-ERR Protocol error: too big mbulk count string` (`bulk`) |
//! | `SET "a b` | `-ERR Protocol error: unbalanced quotes in request` |
//! | a request over `max_frame` in total | `-ERR Protocol error: request of <n> bytes is over the limit of <max>` (goway's own) |
//!
//! Decoding is iterative (no recursion at all on the request side; replies nest at most
//! [`MAX_DEPTH`] arrays deep), so hostile input cannot overflow a goroutine's small stack.
//!
//! Three codecs share these rules: [`RespCodec`] (one [`Request`] in, one [`Reply`] out),
//! [`RespPipelineCodec`] (every request of a read as one [`Batch`] in, one [`Replies`] out:
//! the fast one for pipelining clients, used by `examples/kv.rs`), and [`RespClientCodec`]
//! (the client's side: requests out, replies in).
//!
//! ```
//! use goway::net::codec::{Codec, RespCodec, resp::{Reply, Request}};
//!
//! let mut c = RespCodec::new();
//! let (req, used) = c.decode(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n").unwrap().unwrap();
//! assert_eq!(used, 20);
//! assert!(req.is_command("get"));
//! assert_eq!(req.get(1), Some(&b"k"[..]));
//! let (inline, _) = c.decode(b"PING\r\n").unwrap().unwrap();
//! assert_eq!(inline, Request::from_args(["PING"]));
//!
//! let mut out = Vec::new();
//! c.encode(Reply::Bulk(b"v".to_vec()), &mut out).unwrap();
//! c.encode(Reply::Integer(-3), &mut out).unwrap();
//! assert_eq!(out, b"$1\r\nv\r\n:-3\r\n");
//!
//! let err = c.decode(b"*1\r\nfoo\r\n").unwrap_err();
//! assert_eq!(c.error_reply(&err).unwrap(), b"-ERR Protocol error: expected '$', got 'f'\r\n");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::ops::Index;

use super::{Codec, DEFAULT_MAX_FRAME, DecodeError, EncodeError, find_byte};

/// Most arguments in one multibulk request (and elements in one reply array): 1,048,576, the
/// limit Redis had before 7.0 (7.0 accepts up to `INT_MAX` but preallocates at most this).
pub const MAX_MULTIBULK: usize = 1024 * 1024;

/// Default largest bulk string: 512 MiB, Redis's `proto-max-bulk-len`. The server's
/// `max_frame` (1 MiB by default) lowers it.
pub const DEFAULT_MAX_BULK: usize = 512 << 20;

/// Longest inline request line, and longest `*`/`$` header line: 64 KiB, Redis's
/// `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE: usize = 64 << 10;

/// Deepest nesting of arrays in a decoded reply (requests are flat).
pub const MAX_DEPTH: usize = 32;

fn malformed(reason: &'static str) -> DecodeError {
    DecodeError::Malformed {
        reason: Cow::Borrowed(reason),
    }
}

// ----- requests -------------------------------------------------------------------------

/// One request: a command and its arguments, as byte strings.
///
/// The arguments are stored back to back in one buffer, and the offsets of up to six of them
/// inside the request itself: a short request costs one allocation.
///
/// ```
/// use goway::net::codec::resp::Request;
/// let r = Request::from_args(["SET", "k", "v"]);
/// assert_eq!(r.len(), 3);
/// assert!(r.is_command("set"));
/// assert_eq!(&r[2], b"v");
/// let mut wire = Vec::new();
/// r.encode(&mut wire);
/// assert_eq!(wire, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
#[derive(Clone, Default)]
pub struct Request {
    data: Vec<u8>,
    /// End offset in `data` of each argument.
    ends: Ends,
}

/// Most argument ends kept inside the [`Request`] itself (no allocation): enough for
/// `SET key value EX 10 NX`.
const INLINE_ENDS: usize = 6;

/// End offsets of a request's arguments: inline for short requests, else on the heap.
#[derive(Clone)]
enum Ends {
    Inline(u8, [u32; INLINE_ENDS]),
    Heap(Vec<usize>),
}

impl Default for Ends {
    fn default() -> Self {
        Ends::Inline(0, [0; INLINE_ENDS])
    }
}

impl Ends {
    fn with_capacity(n: usize) -> Self {
        if n <= INLINE_ENDS {
            Ends::default()
        } else {
            Ends::Heap(Vec::with_capacity(n))
        }
    }

    fn len(&self) -> usize {
        match self {
            Ends::Inline(n, _) => *n as usize,
            Ends::Heap(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<usize> {
        match self {
            Ends::Inline(n, a) => (i < *n as usize).then(|| a[i] as usize),
            Ends::Heap(v) => v.get(i).copied(),
        }
    }

    fn push(&mut self, end: usize) {
        match self {
            Ends::Inline(n, a) if (*n as usize) < INLINE_ENDS && end <= u32::MAX as usize => {
                a[*n as usize] = end as u32;
                *n += 1;
            }
            Ends::Inline(n, a) => {
                let mut v: Vec<usize> = a[..*n as usize].iter().map(|&e| e as usize).collect();
                v.push(end);
                *self = Ends::Heap(v);
            }
            Ends::Heap(v) => v.push(end),
        }
    }
}

impl PartialEq for Request {
    fn eq(&self, other: &Request) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Request {}

impl std::hash::Hash for Request {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_usize(self.len());
        for a in self {
            a.hash(h);
        }
    }
}

impl Request {
    /// An empty request (no command).
    pub fn new() -> Self {
        Self::default()
    }

    /// A request of `args` (the first is the command).
    pub fn from_args<I, A>(args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let mut r = Request::new();
        for a in args {
            r.push(a.as_ref());
        }
        r
    }

    fn with_capacity(args: usize, bytes: usize) -> Self {
        Request {
            data: Vec::with_capacity(bytes),
            ends: Ends::with_capacity(args),
        }
    }

    /// Appends an argument.
    pub fn push(&mut self, arg: &[u8]) {
        self.data.extend_from_slice(arg);
        self.ends.push(self.data.len());
    }

    /// Number of arguments, the command included.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// `true` for an empty request (Redis ignores them).
    pub fn is_empty(&self) -> bool {
        self.ends.len() == 0
    }

    /// Argument `i` (0 is the command).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends.get(i - 1)? };
        Some(&self.data[start..end])
    }

    /// The command name (argument 0), as sent.
    pub fn command(&self) -> Option<&[u8]> {
        self.get(0)
    }

    /// `true` if the command is `name`, ignoring ASCII case (as Redis does).
    pub fn is_command(&self, name: &str) -> bool {
        self.command()
            .is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The arguments in order.
    pub fn iter(&self) -> Args<'_> {
        Args {
            req: self,
            next: 0,
            end: self.len(),
        }
    }

    /// Appends this request in the multibulk form to `dst` (what a client sends).
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.reserve(self.data.len() + 16 * self.len() + 16);
        put_int(dst, b'*', self.len() as i64);
        for a in self {
            put_int(dst, b'$', a.len() as i64);
            dst.extend_from_slice(a);
            dst.extend_from_slice(b"\r\n");
        }
    }

    /// The number of bytes [`encode`](Self::encode) appends, computed without encoding.
    ///
    /// ```
    /// use goway::net::codec::resp::Request;
    /// let r = Request::from_args(["SET", "key", "a value of 21 bytes.."]);
    /// let mut out = Vec::new();
    /// r.encode(&mut out);
    /// assert_eq!(r.encoded_len(), out.len());
    /// ```
    pub fn encoded_len(&self) -> usize {
        self.iter().fold(int_len(self.len() as i64), |n, a| {
            n.saturating_add(int_len(a.len() as i64) + a.len() + 2)
        })
    }

    /// The arguments as owned vectors.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl Index<usize> for Request {
    type Output = [u8];
    /// Argument `i`.
    ///
    /// # Panics
    /// If there are not more than `i` arguments.
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(a) => a,
            None => panic!("request has {} arguments, no index {i}", self.len()),
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// Iterator over a [`Request`]'s arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    req: &'a Request,
    next: usize,
    end: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next >= self.end {
            return None;
        }
        self.next += 1;
        self.req.get(self.next - 1)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Args<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        self.req.get(self.end)
    }
}

impl ExactSizeIterator for Args<'_> {}

impl<'a> IntoIterator for &'a Request {
    type Item = &'a [u8];
    type IntoIter = Args<'a>;
    fn into_iter(self) -> Args<'a> {
        self.iter()
    }
}

// ----- replies --------------------------------------------------------------------------

/// A RESP2 reply value.
///
/// Simple strings and errors must not contain `\r` or `\n`: encoding replaces them with
/// spaces, as Redis's `addReplyErrorFormat` does. An error's text starts with its code, as in
/// Redis: `Reply::error("ERR syntax error")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `+OK`
    Simple(Cow<'static, str>),
    /// `-ERR why`
    Error(Cow<'static, str>),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Vec<u8>),
    /// `$-1`, the null bulk string (a missing key).
    Null,
    /// `*2\r\n...`; encoding walks nested arrays without recursion.
    Array(Vec<Reply>),
    /// `*-1`, the null array.
    NullArray,
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple(Cow::Borrowed("OK"));

    /// A simple string.
    pub fn simple(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(s.into())
    }

    /// An error; the text starts with its code (`ERR`, `WRONGTYPE`, ...).
    pub fn error(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(s.into())
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// The number of bytes [`encode`](Self::encode) appends, computed without encoding (and,
    /// like it, without recursion).
    ///
    /// ```
    /// use goway::net::codec::resp::Reply;
    /// let r = Reply::Array(vec![Reply::bulk("abc"), Reply::Integer(-12), Reply::OK]);
    /// let mut out = Vec::new();
    /// r.encode(&mut out);
    /// assert_eq!(r.encoded_len(), out.len());
    /// ```
    pub fn encoded_len(&self) -> usize {
        // A sum, so the order of the walk does not matter: the top level's items first, then
        // nested arrays from a list that allocates only when there are some.
        let (mut n, mut items) = match self {
            Reply::Array(a) => (int_len(a.len() as i64), a.as_slice()),
            other => (0, std::slice::from_ref(other)),
        };
        let mut nested: Vec<&[Reply]> = Vec::new();
        loop {
            for r in items {
                n = n.saturating_add(match r {
                    Reply::Array(a) => {
                        nested.push(a);
                        int_len(a.len() as i64)
                    }
                    Reply::Simple(t) | Reply::Error(t) => t.len() + 3,
                    Reply::Integer(v) => int_len(*v),
                    Reply::Bulk(b) => int_len(b.len() as i64) + b.len() + 2,
                    Reply::Null | Reply::NullArray => 5,
                });
            }
            match nested.pop() {
                Some(a) => items = a,
                None => return n,
            }
        }
    }

    /// Appends the encoding to `dst`.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        // A flat array (the common case) needs no walk stack: only nested arrays take the
        // general path.
        match self {
            Reply::Array(items) => {
                put_int(dst, b'*', items.len() as i64);
                for item in items {
                    match item {
                        Reply::Array(_) => item.encode_walk(dst),
                        scalar => encode_scalar(scalar, dst),
                    }
                }
            }
            scalar => encode_scalar(scalar, dst),
        }
    }

    /// `encode` for any depth, without recursion.
    fn encode_walk(&self, dst: &mut Vec<u8>) {
        // Iterators over the arrays being written, innermost last.
        let mut stack: Vec<std::slice::Iter<'_, Reply>> = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                Reply::Array(items) => {
                    put_int(dst, b'*', items.len() as i64);
                    stack.push(items.iter());
                }
                other => encode_scalar(other, dst),
            }
            cur = loop {
                let Some(top) = stack.last_mut() else {
                    return;
                };
                match top.next() {
                    Some(next) => break next,
                    None => {
                        stack.pop();
                    }
                }
            };
        }
    }

    /// Decodes the first reply in `src` (what a client reads): the reply and the bytes it
    /// used, or `Ok(None)` if `src` holds only part of it. Bulk strings longer than
    /// `max_bulk` fail before they are buffered; arrays nest at most [`MAX_DEPTH`] deep and
    /// hold at most [`MAX_MULTIBULK`] elements. Decoding is iterative. Simple strings and
    /// errors are read as UTF-8 (invalid bytes become U+FFFD). Unlike [`RespCodec`], a partly
    /// received reply is parsed again from its start on the next call.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] for bytes that are not a RESP2 reply.
    pub fn decode(src: &[u8], max_bulk: usize) -> Result<Option<(Reply, usize)>, DecodeError> {
        // Arrays being filled, innermost last: (elements so far, elements expected).
        let mut stack: Vec<(Vec<Reply>, usize)> = Vec::new();
        let mut pos = 0;
        loop {
            let Some(cr) = header_end(src, pos, "too big reply header")? else {
                return Ok(None);
            };
            if cr == pos {
                return Err(malformed("unknown reply type"));
            }
            if src[cr + 1] != b'\n' {
                return Err(malformed("expected CRLF after a reply header"));
            }
            let tag = src[pos];
            let line = &src[pos + 1..cr];
            pos = cr + 2;
            let mut value = match tag {
                b'+' => Reply::Simple(String::from_utf8_lossy(line).into_owned().into()),
                b'-' => Reply::Error(String::from_utf8_lossy(line).into_owned().into()),
                b':' => Reply::Integer(parse_int(line).ok_or(malformed("invalid integer"))?),
                b'$' => match parse_int(line) {
                    Some(-1) => Reply::Null,
                    Some(n) if n >= 0 && n as u64 <= max_bulk as u64 => {
                        let n = n as usize;
                        if src.len() < pos + n + 2 {
                            return Ok(None);
                        }
                        if &src[pos + n..pos + n + 2] != b"\r\n" {
                            return Err(malformed("expected CRLF after bulk data"));
                        }
                        let b = src[pos..pos + n].to_vec();
                        pos += n + 2;
                        Reply::Bulk(b)
                    }
                    _ => return Err(malformed("invalid bulk length")),
                },
                b'*' => match parse_int(line) {
                    Some(-1) => Reply::NullArray,
                    Some(0) => Reply::Array(Vec::new()),
                    Some(n) if n > 0 && n as u64 <= MAX_MULTIBULK as u64 => {
                        if stack.len() >= MAX_DEPTH {
                            return Err(malformed("reply nested too deep"));
                        }
                        let n = n as usize;
                        stack.push((Vec::with_capacity(n.min(1024)), n));
                        continue;
                    }
                    _ => return Err(malformed("invalid multibulk length")),
                },
                _ => return Err(malformed("unknown reply type")),
            };
            // Hand the value to the array it completes, closing every array it fills.
            loop {
                let Some((items, want)) = stack.last_mut() else {
                    return Ok(Some((value, pos)));
                };
                items.push(value);
                if items.len() < *want {
                    break;
                }
                match stack.pop() {
                    Some((items, _)) => value = Reply::Array(items),
                    None => unreachable!("the stack had a last element"),
                }
            }
        }
    }
}

impl From<i64> for Reply {
    fn from(v: i64) -> Reply {
        Reply::Integer(v)
    }
}

impl From<Vec<u8>> for Reply {
    fn from(v: Vec<u8>) -> Reply {
        Reply::Bulk(v)
    }
}

impl From<Option<Vec<u8>>> for Reply {
    fn from(v: Option<Vec<u8>>) -> Reply {
        v.map_or(Reply::Null, Reply::Bulk)
    }
}

fn encode_scalar(r: &Reply, dst: &mut Vec<u8>) {
    match r {
        Reply::Simple(s) => put_line(dst, b'+', s.as_bytes()),
        Reply::Error(s) => put_line(dst, b'-', s.as_bytes()),
        Reply::Integer(v) => put_int(dst, b':', *v),
        Reply::Bulk(b) => {
            dst.reserve(b.len() + 16);
            put_int(dst, b'$', b.len() as i64);
            dst.extend_from_slice(b);
            dst.extend_from_slice(b"\r\n");
        }
        Reply::Null => dst.extend_from_slice(b"$-1\r\n"),
        Reply::NullArray => dst.extend_from_slice(b"*-1\r\n"),
        Reply::Array(_) => unreachable!("arrays are walked by Reply::encode"),
    }
}

/// `<prefix><text>\r\n`, with CR and LF in `text` replaced by spaces.
fn put_line(dst: &mut Vec<u8>, prefix: u8, text: &[u8]) {
    dst.reserve(text.len() + 3);
    dst.push(prefix);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        dst.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        dst.extend_from_slice(text);
    }
    dst.extend_from_slice(b"\r\n");
}

/// `<prefix><decimal v>\r\n` without allocating.
/// The length of `put_int`'s output: prefix, sign, digits, CRLF.
fn int_len(v: i64) -> usize {
    let digits = v
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d as usize + 1);
    1 + usize::from(v < 0) + digits + 2
}

fn put_int(dst: &mut Vec<u8>, prefix: u8, v: i64) {
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    i -= 2;
    buf[i] = b'\r';
    buf[i + 1] = b'\n';
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    i -= 1;
    buf[i] = prefix;
    dst.extend_from_slice(&buf[i..]);
}

/// Redis's `string2ll`: an optional `-`, then digits without leading zeros (`0` alone is
/// fine), no `+`, no spaces, no overflow.
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MIN.unsigned_abs() {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Finds the `\r` ending the header line that starts at `at`, once the byte after it is
/// buffered too. `Ok(None)`: wait for more. Fails when the line is longer than
/// [`MAX_INLINE`], whether or not its end is already buffered (so split and whole feeds agree).
fn header_end(src: &[u8], at: usize, too_big: &'static str) -> Result<Option<usize>, DecodeError> {
    let rest = &src[at.min(src.len())..];
    let window = &rest[..rest.len().min(MAX_INLINE + 1)];
    match find_byte(b'\r', window) {
        Some(i) if i + 1 < rest.len() => Ok(Some(at + i)),
        Some(_) => Ok(None),
        None if rest.len() > MAX_INLINE => Err(malformed(too_big)),
        None => Ok(None),
    }
}

/// Splits an inline request line into arguments as Redis's `sdssplitargs` does: arguments
/// are separated by whitespace; `"..."` quotes understand `\xHH`, `\n`, `\r`, `\t`, `\b`,
/// `\a` and `\<any>`; `'...'` quotes understand `\'`; a closing quote must be followed by
/// whitespace or the end. Like Redis (which reads the line as a C string) the line ends at
/// its first NUL byte. `None` for unbalanced quotes.
///
/// ```
/// use goway::net::codec::resp::split_inline;
/// let r = split_inline(br#"set "a b\x41" 'it\'s'  x"#).unwrap();
/// assert_eq!(r.to_vec(), vec![b"set".to_vec(), b"a bA".to_vec(), b"it's".to_vec(), b"x".to_vec()]);
/// assert!(split_inline(br#"set "a"b"#).is_none());
/// ```
pub fn split_inline(line: &[u8]) -> Option<Request> {
    let line = match find_byte(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut req = Request::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && space(line[i]) {
            i += 1;
        }
        if i == n {
            return Some(req);
        }
        let (mut dq, mut sq) = (false, false);
        loop {
            if dq {
                if i == n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 3 < n && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        req.data.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < n {
                    req.data.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                    i += 2;
                } else if c == b'"' {
                    // The closing quote must end the argument.
                    if i + 1 < n && !space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    req.data.push(c);
                    i += 1;
                }
            } else if sq {
                if i == n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    req.data.push(b'\'');
                    i += 2;
                } else if c == b'\'' {
                    if i + 1 < n && !space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    req.data.push(c);
                    i += 1;
                }
            } else {
                if i == n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => dq = true,
                    b'\'' => sq = true,
                    c => req.data.push(c),
                }
                i += 1;
            }
        }
        req.ends.push(req.data.len());
    }
}

// ----- the server codec -----------------------------------------------------------------

/// The server side of RESP2: decodes [`Request`]s (multibulk and inline), encodes
/// [`Reply`]s. See the [module documentation](self) for the exact rules and error texts.
///
/// A multibulk request arriving in pieces is parsed once: the codec remembers the arguments
/// complete so far and resumes after them (the server hands it the same pending bytes with
/// more appended, as [`Codec::decode`] promises).
#[derive(Debug, Clone)]
pub struct RespCodec {
    max_bulk: usize,
    max_frame: usize,
    partial: Partial,
}

/// A multibulk request parsed up to an argument boundary.
#[derive(Debug, Clone, Default)]
struct Partial {
    active: bool,
    /// Bytes of the request parsed (where the next argument's header starts).
    pos: usize,
    /// Arguments still to read.
    left: usize,
    /// `src.len()` at the last call, to notice a caller that did not append.
    seen: usize,
    req: Request,
}

impl Default for RespCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RespCodec {
    /// Requests of at most [`DEFAULT_MAX_FRAME`] bytes (until the server sets its
    /// `max_frame`), bulk strings of at most [`DEFAULT_MAX_BULK`] bytes.
    pub fn new() -> Self {
        RespCodec {
            max_bulk: DEFAULT_MAX_BULK,
            max_frame: DEFAULT_MAX_FRAME,
            partial: Partial::default(),
        }
    }

    /// Bulk strings of at most `max` bytes (Redis's `proto-max-bulk-len`); the frame maximum
    /// still applies on top.
    pub fn with_max_bulk(mut self, max: usize) -> Self {
        self.max_bulk = max;
        self
    }

    /// Requests of at most `max` bytes in all (the server sets this from its `max_frame`).
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// The largest bulk string accepted: the bulk and frame maximums' smaller.
    pub fn max_bulk(&self) -> usize {
        self.max_bulk.min(self.max_frame)
    }

    /// A multibulk request of 1 to [`INLINE_ENDS`] arguments, complete and valid at the start
    /// of `src`: its argument spans (start, end) and its length. `None` for anything else,
    /// which the general path then handles (including every error).
    fn scan_short(
        &self,
        src: &[u8],
        spans: &mut [(usize, usize); INLINE_ENDS],
    ) -> Option<(usize, usize)> {
        if src.first() != Some(&b'*') {
            return None;
        }
        let cr = header_end(src, 0, "").ok()??;
        let n = parse_int(&src[1..cr])?;
        if n < 1 || n > INLINE_ENDS as i64 {
            return None;
        }
        let n = n as usize;
        let (max_bulk, max_frame) = (self.max_bulk.min(self.max_frame), self.max_frame);
        let mut at = cr + 2;
        for span in &mut spans[..n] {
            let (data, len) = bulk_at(src, at, max_bulk, max_frame).ok()??;
            *span = (data, data + len);
            at = data + len + 2;
        }
        Some((n, at))
    }

    fn inline(&mut self, src: &[u8]) -> Result<Option<(Request, usize)>, DecodeError> {
        // An inline request is a frame too: `max_frame` bounds it when below MAX_INLINE.
        let max = MAX_INLINE.min(self.max_frame);
        let window = &src[..src.len().min(max + 1)];
        match find_byte(b'\n', window) {
            None if src.len() > max => Err(malformed("too big inline request")),
            None => Ok(None),
            Some(i) if i > max => Err(malformed("too big inline request")),
            Some(i) => {
                let mut line = &src[..i];
                if let [head @ .., b'\r'] = line {
                    line = head;
                }
                match split_inline(line) {
                    Some(req) => Ok(Some((req, i + 1))),
                    None => Err(malformed("unbalanced quotes in request")),
                }
            }
        }
    }
}

impl Codec for RespCodec {
    type In = Request;
    type Out = Reply;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Request, usize)>, DecodeError> {
        if self.partial.active && src.len() < self.partial.seen {
            // Not the same pending bytes with more appended: start over.
            self.partial = Partial::default();
        }
        if !self.partial.active {
            let Some(&first) = src.first() else {
                return Ok(None);
            };
            if first != b'*' {
                return self.inline(src);
            }
            let Some(cr) = header_end(src, 0, "too big mbulk count string")? else {
                return Ok(None);
            };
            let n = match parse_int(&src[1..cr]) {
                Some(n) if n <= MAX_MULTIBULK as i64 => n,
                _ => return Err(malformed("invalid multibulk length")),
            };
            if n <= 0 {
                return Ok(Some((Request::new(), cr + 2)));
            }
            let n = n as usize;
            if n <= INLINE_ENDS {
                // The common case, a short request already complete: find its arguments
                // first, then copy them into a buffer of the exact size. Anything else
                // (incomplete, or an error) is left to the general path below.
                let mut spans = [(0usize, 0usize); INLINE_ENDS];
                if let Some((n, used)) = self.scan_short(src, &mut spans) {
                    let bytes = spans[..n].iter().map(|s| s.1 - s.0).sum();
                    let mut req = Request::with_capacity(n, bytes);
                    for &(start, end) in &spans[..n] {
                        req.push(&src[start..end]);
                    }
                    return Ok(Some((req, used)));
                }
            }
            self.partial = Partial {
                active: true,
                pos: cr + 2,
                left: n,
                seen: 0,
                req: Request::with_capacity(n.min(1024), 0),
            };
        }
        let (max_bulk, max_frame) = (self.max_bulk.min(self.max_frame), self.max_frame);
        let p = &mut self.partial;
        p.seen = src.len();
        while p.left > 0 {
            match bulk_at(src, p.pos, max_bulk, max_frame) {
                Ok(Some((data, len))) => {
                    p.req.push(&src[data..data + len]);
                    p.pos = data + len + 2;
                    p.left -= 1;
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    *p = Partial::default();
                    return Err(e);
                }
            }
        }
        let used = p.pos;
        let req = std::mem::take(&mut p.req);
        *p = Partial::default();
        Ok(Some((req, used)))
    }

    fn encoded_len(frame: &Reply) -> usize {
        frame.encoded_len()
    }

    fn encode(&mut self, frame: Reply, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame.encode(dst);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max_frame = max;
    }

    fn error_reply(&mut self, err: &DecodeError) -> Option<Vec<u8>> {
        Some(error_reply(err))
    }
}

/// The bulk string whose header starts at `at`: `Ok(Some((data start, length)))` once all
/// of it and the two bytes after it are buffered, `Ok(None)` before. Sizes are checked as soon
/// as the header is in.
fn bulk_at(
    src: &[u8],
    at: usize,
    max_bulk: usize,
    max_frame: usize,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let Some(cr) = header_end(src, at, "too big bulk count string")? else {
        return if at > max_frame {
            Err(DecodeError::FrameTooLarge {
                len: at,
                max: max_frame,
            })
        } else {
            Ok(None)
        };
    };
    if src[at] != b'$' {
        return Err(expected_dollar(src[at]));
    }
    let len = match parse_int(&src[at + 1..cr]) {
        Some(n) if n >= 0 && n as u64 <= max_bulk as u64 => n as usize,
        _ => return Err(malformed("invalid bulk length")),
    };
    let data = cr + 2;
    let end = data + len + 2;
    if end > max_frame {
        return Err(DecodeError::FrameTooLarge {
            len: end,
            max: max_frame,
        });
    }
    Ok(if src.len() < end {
        None
    } else {
        Some((data, len))
    })
}

fn expected_dollar(got: u8) -> DecodeError {
    let got = match got {
        b'\r' | b'\n' => " ".to_owned(),
        0x20..=0x7e => (got as char).to_string(),
        _ => format!("\\x{got:02x}"),
    };
    DecodeError::Malformed {
        reason: Cow::Owned(format!("expected '$', got '{got}'")),
    }
}

/// Redis's reply to a protocol error: `-ERR Protocol error: <why>\r\n`.
pub fn error_reply(err: &DecodeError) -> Vec<u8> {
    let why: Cow<'_, str> = match err {
        DecodeError::Malformed { reason } => Cow::Borrowed(reason),
        DecodeError::FrameTooLarge { len, max } => {
            Cow::Owned(format!("request of {len} bytes is over the limit of {max}"))
        }
    };
    let mut out = Vec::with_capacity(why.len() + 24);
    put_line(
        &mut out,
        b'-',
        format!("ERR Protocol error: {why}").as_bytes(),
    );
    out
}

// ----- encoded replies -----------------------------------------------------------------

/// Replies encoded as they are added, in order: what [`RespPipelineCodec`] sends. Besides
/// [`push`](Self::push)ing a [`Reply`], the shortcuts write a reply from borrowed data without
/// building one (`bulk(&value)` copies the value once, into the output).
///
/// ```
/// use goway::net::codec::resp::{Replies, Reply};
/// let mut r = Replies::new();
/// r.simple("OK");
/// r.integer(-2);
/// r.array(2);
/// r.bulk(b"a");
/// r.null();
/// r.error("ERR no");
/// r.push(&Reply::NullArray);
/// assert_eq!(r.as_bytes(), b"+OK\r\n:-2\r\n*2\r\n$1\r\na\r\n$-1\r\n-ERR no\r\n*-1\r\n");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Replies {
    buf: Vec<u8>,
}

impl Replies {
    /// No replies yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No replies yet, with room for `bytes` of them.
    pub fn with_capacity(bytes: usize) -> Self {
        Replies {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Appends `r`.
    pub fn push(&mut self, r: &Reply) {
        r.encode(&mut self.buf);
    }

    /// Appends a simple string (`+OK`); CR and LF become spaces.
    pub fn simple(&mut self, s: &str) {
        put_line(&mut self.buf, b'+', s.as_bytes());
    }

    /// Appends an error (`-ERR why`); CR and LF become spaces.
    pub fn error(&mut self, s: &str) {
        put_line(&mut self.buf, b'-', s.as_bytes());
    }

    /// Appends an integer.
    pub fn integer(&mut self, v: i64) {
        put_int(&mut self.buf, b':', v);
    }

    /// Appends a bulk string copied from `b`.
    pub fn bulk(&mut self, b: &[u8]) {
        self.buf.reserve(b.len() + 16);
        put_int(&mut self.buf, b'$', b.len() as i64);
        self.buf.extend_from_slice(b);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Appends the null bulk string (`$-1`).
    pub fn null(&mut self) {
        self.buf.extend_from_slice(b"$-1\r\n");
    }

    /// Appends the header of an array of `n` elements; append the `n` elements next.
    pub fn array(&mut self, n: usize) {
        put_int(&mut self.buf, b'*', n as i64);
    }

    /// `true` if nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes appended so far: the size of the encoded replies (what
    /// [`RespPipelineCodec`] counts against the server's write-queue bound).
    ///
    /// ```
    /// use goway::net::codec::resp::Replies;
    /// let mut r = Replies::new();
    /// r.bulk(b"abc");
    /// assert_eq!(r.len(), b"$3\r\nabc\r\n".len());
    /// ```
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Replies")
            .field(&String::from_utf8_lossy(&self.buf))
            .finish()
    }
}

// ----- batches of requests ---------------------------------------------------------------

/// The requests of one read, in order, sharing one buffer: what [`RespPipelineCodec`]
/// decodes. Iterate it for [`Req`] views, which answer what a [`Request`] answers.
///
/// ```
/// use goway::net::codec::{Codec, resp::{Request, RespPipelineCodec}};
/// let mut c = RespPipelineCodec::new();
/// let (batch, _) = c.decode(b"GET a\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n").unwrap().unwrap();
/// assert_eq!(batch.len(), 2);
/// let keys: Vec<&[u8]> = batch.iter().map(|r| r.get(1).unwrap()).collect();
/// assert_eq!(keys, [&b"a"[..], b"b"]);
/// assert!(batch.iter().all(|r| r.is_command("get")));
/// assert_eq!(batch.to_requests()[1], Request::from_args(["GET", "b"]));
/// ```
#[derive(Clone, Default)]
pub struct Batch {
    data: Vec<u8>,
    /// (start, end) in `data` of every argument of every request.
    spans: Vec<(usize, usize)>,
    /// (first span, number of arguments) of each request.
    reqs: Vec<(usize, usize)>,
}

impl Batch {
    /// Number of requests.
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    /// `true` if the batch holds no request (only empty ones were received).
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Request `i`.
    pub fn get(&self, i: usize) -> Option<Req<'_>> {
        let &(first, n) = self.reqs.get(i)?;
        Some(Req {
            data: &self.data,
            spans: &self.spans[first..first + n],
        })
    }

    /// The requests in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Req<'_>> + '_ {
        self.reqs.iter().map(|&(first, n)| Req {
            data: &self.data,
            spans: &self.spans[first..first + n],
        })
    }

    /// The requests as owned [`Request`]s.
    pub fn to_requests(&self) -> Vec<Request> {
        self.iter().map(|r| r.to_request()).collect()
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One request of a [`Batch`], borrowed: its arguments (0 is the command).
#[derive(Clone, Copy)]
pub struct Req<'a> {
    data: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Req<'a> {
    /// Number of arguments, the command included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// `true` for a request without arguments (never in a [`Batch`]).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let &(a, b) = self.spans.get(i)?;
        Some(&self.data[a..b])
    }

    /// The command name (argument 0), as sent.
    pub fn command(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    /// `true` if the command is `name`, ignoring ASCII case.
    pub fn is_command(&self, name: &str) -> bool {
        self.command()
            .is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> + ExactSizeIterator + 'a {
        let data = self.data;
        self.spans.iter().map(move |&(a, b)| &data[a..b])
    }

    /// An owned copy.
    pub fn to_request(&self) -> Request {
        Request::from_args(self.iter())
    }
}

impl Index<usize> for Req<'_> {
    type Output = [u8];
    /// Argument `i`.
    ///
    /// # Panics
    /// If there are not more than `i` arguments.
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(a) => a,
            None => panic!("request has {} arguments, no index {i}", self.len()),
        }
    }
}

impl fmt::Debug for Req<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl PartialEq<Request> for Req<'_> {
    fn eq(&self, other: &Request) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

// ----- the pipelining server codec -----------------------------------------------------

/// Most requests [`RespPipelineCodec`] puts in one batch.
pub const MAX_BATCH: usize = 1024;

/// [`RespCodec`] for pipelining clients: one frame is *every* complete request buffered (up to
/// [`MAX_BATCH`]) as one [`Batch`], and the handler answers a batch with one [`Replies`], in
/// order.
///
/// A client pipelining 16 commands then costs one trip through the server's channels instead
/// of 16, which is most of a small command's cost; and [`Replies`] encodes each reply as it is
/// added, straight from borrowed bytes, so a reply needs no allocation of its own. The decoding rules, limits and error
/// replies are [`RespCodec`]'s; empty requests are left out of the batch (a batch can be
/// empty: answer it with nothing). Requests complete before a protocol error are still
/// delivered and answered, as Redis answers them before it meets the error.
///
/// ```
/// use goway::net::codec::{Codec, resp::{Replies, Reply, Request, RespPipelineCodec}};
/// let mut c = RespPipelineCodec::new();
/// let (batch, used) = c.decode(b"PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3").unwrap().unwrap();
/// assert_eq!(batch.to_requests(), vec![Request::from_args(["PING"]); 2]);
/// assert_eq!(used, 20);
/// let mut replies = Replies::new();
/// replies.push(&Reply::simple("PONG"));
/// replies.bulk(b"pong");
/// let mut out = Vec::new();
/// c.encode(replies, &mut out).unwrap();
/// assert_eq!(out, b"+PONG\r\n$4\r\npong\r\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RespPipelineCodec {
    inner: RespCodec,
}

impl RespPipelineCodec {
    /// See [`RespCodec::new`].
    pub fn new() -> Self {
        Self::default()
    }

    /// See [`RespCodec::with_max_bulk`].
    pub fn with_max_bulk(self, max: usize) -> Self {
        RespPipelineCodec {
            inner: self.inner.with_max_bulk(max),
        }
    }

    /// See [`RespCodec::with_max_frame`].
    pub fn with_max_frame(self, max: usize) -> Self {
        RespPipelineCodec {
            inner: self.inner.with_max_frame(max),
        }
    }
}

impl Codec for RespPipelineCodec {
    type In = Batch;
    type Out = Replies;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Batch, usize)>, DecodeError> {
        let mut batch = Batch::default();
        // Arguments of requests not copied verbatim from `src` (inline ones, and ones that
        // arrived in pieces): appended after the copy of `src[..used]`.
        let mut extra: Vec<u8> = Vec::new();
        let mut extra_spans: Vec<usize> = Vec::new();
        let mut used = 0;
        let mut frames = 0;
        let mut spans = [(0usize, 0usize); INLINE_ENDS];
        while frames < MAX_BATCH {
            // The inner codec's resume state always refers to the slice starting at `used`:
            // the first request not yet returned.
            if !self.inner.partial.active {
                if let Some((n, len)) = self.inner.scan_short(&src[used..], &mut spans) {
                    if batch.spans.capacity() == 0 {
                        batch.spans.reserve(64);
                        batch.reqs.reserve(16);
                    }
                    batch.reqs.push((batch.spans.len(), n));
                    batch
                        .spans
                        .extend(spans[..n].iter().map(|&(a, b)| (used + a, used + b)));
                    used += len;
                    frames += 1;
                    continue;
                }
            }
            match self.inner.decode(&src[used..]) {
                Ok(Some((req, n))) => {
                    used += n;
                    frames += 1;
                    if !req.is_empty() {
                        batch.reqs.push((batch.spans.len(), req.len()));
                        for a in &req {
                            extra_spans.push(batch.spans.len());
                            let start = extra.len();
                            extra.extend_from_slice(a);
                            batch.spans.push((start, extra.len()));
                        }
                    }
                }
                Ok(None) => break,
                // Deliver what came before the error first; the next call meets it again.
                Err(_) if used > 0 => break,
                Err(e) => return Err(e),
            }
        }
        if used == 0 {
            return Ok(None);
        }
        batch.data.reserve_exact(used + extra.len());
        batch.data.extend_from_slice(&src[..used]);
        batch.data.extend_from_slice(&extra);
        for i in extra_spans {
            let (a, b) = batch.spans[i];
            batch.spans[i] = (used + a, used + b);
        }
        Ok(Some((batch, used)))
    }

    fn encoded_len(frame: &Replies) -> usize {
        frame.len()
    }

    fn encode(&mut self, frame: Replies, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        if dst.is_empty() && dst.capacity() <= frame.buf.len() {
            *dst = frame.buf;
        } else {
            dst.extend_from_slice(&frame.buf);
        }
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.inner.set_max_frame(max);
    }

    fn error_reply(&mut self, err: &DecodeError) -> Option<Vec<u8>> {
        Some(error_reply(err))
    }
}

// ----- the client codec -----------------------------------------------------------------

/// The client side of RESP2: encodes [`Request`]s, decodes [`Reply`]s (iteratively, arrays at
/// most [`MAX_DEPTH`] deep). For proxies, tests and tools talking to a Redis server.
///
/// ```
/// use goway::net::codec::{Codec, resp::{Reply, Request, RespClientCodec}};
/// let mut c = RespClientCodec::new();
/// let mut out = Vec::new();
/// c.encode(Request::from_args(["PING"]), &mut out).unwrap();
/// assert_eq!(out, b"*1\r\n$4\r\nPING\r\n");
/// assert_eq!(c.decode(b"+PONG\r\n").unwrap(), Some((Reply::simple("PONG"), 7)));
/// ```
#[derive(Debug, Clone)]
pub struct RespClientCodec {
    max_bulk: usize,
}

impl Default for RespClientCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RespClientCodec {
    /// Bulk strings of at most [`DEFAULT_MAX_BULK`] bytes.
    pub fn new() -> Self {
        RespClientCodec {
            max_bulk: DEFAULT_MAX_BULK,
        }
    }
}

impl Codec for RespClientCodec {
    type In = Reply;
    type Out = Request;

    fn decode(&mut self, src: &[u8]) -> Result<Option<(Reply, usize)>, DecodeError> {
        Reply::decode(src, self.max_bulk)
    }

    fn encoded_len(frame: &Request) -> usize {
        frame.encoded_len()
    }

    fn encode(&mut self, frame: Request, dst: &mut Vec<u8>) -> Result<(), EncodeError> {
        frame.encode(dst);
        Ok(())
    }

    fn set_max_frame(&mut self, max: usize) {
        self.max_bulk = max;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_is_redis_string2ll() {
        for (s, v) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("42", Some(42)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("18446744073709551615", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            ("", None),
            ("-", None),
            (" 1", None),
            ("1 ", None),
            ("blabla", None),
        ] {
            assert_eq!(parse_int(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn put_int_matches_to_string() {
        for v in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_int(&mut out, b':', v);
            assert_eq!(out, format!(":{v}\r\n").as_bytes());
        }
    }

    #[test]
    fn resumes_a_request_arriving_in_pieces() {
        let mut c = RespCodec::new();
        let wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
        assert_eq!(c.decode(&wire[..14]).unwrap(), None);
        assert!(c.partial.active);
        assert_eq!(c.partial.req.len(), 1);
        assert_eq!(c.decode(&wire[..20]).unwrap(), None);
        assert_eq!(c.partial.req.len(), 2);
        let (r, used) = c.decode(wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(r, Request::from_args(["SET", "k", "value"]));
        assert!(!c.partial.active);
        // A shorter buffer than last time is a new start.
        assert_eq!(c.decode(&wire[..20]).unwrap(), None);
        let (r, _) = c.decode(b"*1\r\n$1\r\nP\r\n").unwrap().unwrap();
        assert_eq!(r, Request::from_args(["P"]));
    }
}
