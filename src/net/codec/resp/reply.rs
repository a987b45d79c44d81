//! [`Reply`]: a RESP2 reply value, encoded and (on the client's side) decoded.

use std::borrow::Cow;

use super::wire::{header_end, int_len, parse_int, put_int, put_line};
use super::{MAX_DEPTH, MAX_MULTIBULK, RespError};
use crate::net::codec::DecodeError;

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
    /// errors are read as UTF-8 (invalid bytes become U+FFFD). Unlike
    /// [`RespCodec`](super::RespCodec), a partly received reply is parsed again from its start
    /// on the next call.
    ///
    /// # Errors
    /// [`DecodeError::Resp`] for bytes that are not a RESP2 reply.
    pub fn decode(src: &[u8], max_bulk: usize) -> Result<Option<(Reply, usize)>, DecodeError> {
        // Arrays being filled, innermost last: (elements so far, elements expected).
        let mut stack: Vec<(Vec<Reply>, usize)> = Vec::new();
        let mut pos = 0;
        loop {
            let Some(cr) = header_end(src, pos, RespError::TooBigReplyHeader)? else {
                return Ok(None);
            };
            if cr == pos {
                return Err(RespError::UnknownReplyType.into());
            }
            if src[cr + 1] != b'\n' {
                return Err(RespError::ExpectedCrlfAfterHeader.into());
            }
            let tag = src[pos];
            let line = &src[pos + 1..cr];
            pos = cr + 2;
            let mut value = match tag {
                b'+' => Reply::Simple(String::from_utf8_lossy(line).into_owned().into()),
                b'-' => Reply::Error(String::from_utf8_lossy(line).into_owned().into()),
                b':' => Reply::Integer(parse_int(line).ok_or(RespError::InvalidInteger)?),
                b'$' => match parse_int(line) {
                    Some(-1) => Reply::Null,
                    Some(n) if n >= 0 && n as u64 <= max_bulk as u64 => {
                        let n = n as usize;
                        if src.len() < pos + n + 2 {
                            return Ok(None);
                        }
                        if &src[pos + n..pos + n + 2] != b"\r\n" {
                            return Err(RespError::ExpectedCrlfAfterBulk.into());
                        }
                        let b = src[pos..pos + n].to_vec();
                        pos += n + 2;
                        Reply::Bulk(b)
                    }
                    _ => return Err(RespError::InvalidBulkLength.into()),
                },
                b'*' => match parse_int(line) {
                    Some(-1) => Reply::NullArray,
                    Some(0) => Reply::Array(Vec::new()),
                    Some(n) if n > 0 && n as u64 <= MAX_MULTIBULK as u64 => {
                        if stack.len() >= MAX_DEPTH {
                            return Err(RespError::NestedTooDeep.into());
                        }
                        let n = n as usize;
                        stack.push((Vec::with_capacity(n.min(1024)), n));
                        continue;
                    }
                    _ => return Err(RespError::InvalidMultibulkLength.into()),
                },
                _ => return Err(RespError::UnknownReplyType.into()),
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
