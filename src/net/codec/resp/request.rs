//! [`Request`]: one request, a command and its arguments.

use std::fmt;
use std::ops::Index;

use super::wire::{int_len, put_int};

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
    pub(super) data: Vec<u8>,
    /// End offset in `data` of each argument.
    pub(super) ends: Ends,
}

/// Most argument ends kept inside the [`Request`] itself (no allocation): enough for
/// `SET key value EX 10 NX`.
pub(super) const INLINE_ENDS: usize = 6;

/// End offsets of a request's arguments: inline for short requests, else on the heap.
#[derive(Clone)]
pub(super) enum Ends {
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

    pub(super) fn push(&mut self, end: usize) {
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

    pub(super) fn with_capacity(args: usize, bytes: usize) -> Self {
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
    pub(super) req: &'a Request,
    pub(super) next: usize,
    pub(super) end: usize,
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
