//! [`Batch`]: the requests of one read sharing one buffer, and [`Req`], a view of one.

use std::fmt;
use std::ops::Index;

use super::Request;

/// The requests of one read, in order, sharing one buffer: what
/// [`RespPipelineCodec`](super::RespPipelineCodec) decodes. Iterate it for [`Req`] views, which
/// answer what a [`Request`] answers.
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
    pub(super) data: Vec<u8>,
    /// (start, end) in `data` of every argument of every request.
    pub(super) spans: Vec<(usize, usize)>,
    /// (first span, number of arguments) of each request.
    pub(super) reqs: Vec<(usize, usize)>,
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
    pub(super) data: &'a [u8],
    pub(super) spans: &'a [(usize, usize)],
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
