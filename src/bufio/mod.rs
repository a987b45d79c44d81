//! Go's `bufio.Scanner`: tokens (lines, words, runes, bytes, or your own split) read from any
//! [`Read`], such as a goway [`TcpStream`](crate::net::TcpStream).
//!
//! | Go | goway |
//! |---|---|
//! | `sc := bufio.NewScanner(conn)` | [`let mut sc = Scanner::new(conn)`](Scanner::new) |
//! | `for sc.Scan() { line := sc.Text() }` | `while sc.scan() { let line = sc.text(); }` ([`bytes()`](Scanner::bytes) for the raw bytes) |
//! | `if err := sc.Err(); err != nil` | `if let Some(err) = sc.err()` |
//! | `sc.Buffer(buf, max)` | [`Scanner::max_token_size(max)`](Scanner::max_token_size) |
//! | `sc.Split(bufio.ScanWords)` | [`Scanner::split(scan_words)`](Scanner::split); [`scan_lines`], [`scan_runes`], [`scan_bytes`] |
//! | `bufio.ErrTooLong` | [`ScanError::TooLong`] |
//! | `bufio.Writer`, `w.Flush()` | [`std::io::BufWriter`] and its `flush()`: see below |
//! | `bufio.Reader`, `r.ReadString('\n')` | [`std::io::BufReader`], `read_line` / `read_until` |
//!
//! Go's rules hold: a line is everything up to `\n`, with one `\r` before it dropped, and the
//! last line counts even without a newline; a token may be at most the maximum token size
//! ([`MAX_SCAN_TOKEN_SIZE`], 64 KiB, by default) **including** its delimiter, beyond which
//! scanning stops with [`ScanError::TooLong`]; the buffer starts at 4 KiB and doubles up to
//! that maximum; an error ends the scan for good (scanning does not resume after a read
//! timeout, as in Go); a clean end of stream is no error.
//!
//! The default line splitting is the line search of [`LinesCodec`](crate::net::codec::LinesCodec)
//! (one function, used by both): a line arriving in pieces is searched once, not again after
//! every read. A custom split function sees the whole buffered data at every call, as in Go.
//!
//! # Buffered writes
//! `std::io::BufWriter` is the right answer for Go's `bufio.Writer` over a goway stream:
//! `BufWriter::with_capacity(n, stream)` gathers small writes into one `write` call on the
//! socket, `flush()` is Go's `Flush`. One difference to keep in mind: Go's `Writer` remembers
//! its first error and refuses writes after it, while dropping a `BufWriter` flushes and
//! **ignores** a failure; so end with an explicit `flush()?` (the server model's writer
//! goroutine already batches a connection's replies into one write, so handlers of
//! [`net::Server`](crate::net::Server) need neither).
//!
//! # Examples
//! ```
//! use goway::bufio::{Scanner, ScanError, scan_words};
//!
//! let mut sc = Scanner::new(&b"first line\r\nsecond\nlast, no newline"[..]);
//! let mut lines = Vec::new();
//! while sc.scan() {
//!     lines.push(sc.text().into_owned());
//! }
//! assert!(sc.err().is_none());
//! assert_eq!(lines, ["first line", "second", "last, no newline"]);
//!
//! let mut words = Scanner::new(&b"  the quick\tbrown\n fox "[..]).split(scan_words);
//! let mut n = 0;
//! while words.scan() {
//!     n += 1;
//! }
//! assert_eq!(n, 4);
//!
//! let mut sc = Scanner::new(&b"0123456789\n"[..]).max_token_size(8);
//! assert!(!sc.scan());
//! assert!(matches!(sc.err(), Some(ScanError::TooLong { max: 8 })));
//! assert_eq!(sc.err().unwrap().to_string(), "bufio.Scanner: token too long");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};

mod split;

use split::lines_from;
pub(crate) use split::{find_byte, line_end};
pub use split::{scan_bytes, scan_lines, scan_runes, scan_words};

/// The default maximum size of a token, delimiter included (Go's `bufio.MaxScanTokenSize`).
pub const MAX_SCAN_TOKEN_SIZE: usize = 64 * 1024;

/// The buffer's first size (Go's `startBufSize`).
const START_BUF_SIZE: usize = 4096;

/// Calls of a split function in a row that may return an empty token without consuming input
/// before the scan stops with [`ScanError::NoProgress`] (Go: 100).
const MAX_EMPTY_TOKENS: usize = 100;

/// What a split function found in the data it was given (Go's `SplitFunc` results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split<'a> {
    /// No complete token yet: read more (Go's `return 0, nil, nil`).
    Need,
    /// Consume this many bytes without producing a token (Go's `return n, nil, nil`).
    Skip(usize),
    /// Consume `advance` bytes and produce `token` (Go's `return advance, token, nil`).
    Token {
        /// Bytes consumed from the data.
        advance: usize,
        /// The token: part of the data, or any other bytes.
        token: &'a [u8],
    },
    /// Produce this last token and stop scanning with no error (Go's `ErrFinalToken`).
    Final(&'a [u8]),
}

/// Why a [`Scanner`] stopped (Go's `bufio` errors and the reader's).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A token did not fit in the maximum token size (Go's `ErrTooLong`).
    #[error("bufio.Scanner: token too long")]
    TooLong {
        /// The maximum token size, delimiter included.
        max: usize,
    },
    /// The split function consumed more bytes than it was given (Go's `ErrAdvanceTooFar`).
    #[error("bufio.Scanner: SplitFunc returns advance count beyond input")]
    AdvanceTooFar,
    /// The split function returned empty tokens 100 times without consuming input (Go panics).
    #[error("bufio.Scanner: too many empty tokens without progressing")]
    NoProgress,
    /// The reader failed (a deadline, a reset, ...).
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The split function failed.
    #[error("{0}")]
    Split(#[source] io::Error),
}

impl ScanError {
    /// `true` for a read that ran out of time (a deadline or timeout on the stream).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ScanError::Io(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

impl From<ScanError> for io::Error {
    fn from(e: ScanError) -> io::Error {
        match e {
            ScanError::Io(e) | ScanError::Split(e) => e,
            e @ ScanError::TooLong { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            e => io::Error::other(e),
        }
    }
}

/// A split function: Go's `SplitFunc`, given the unconsumed data and whether the stream ended.
pub type SplitFn = dyn for<'a> FnMut(&'a [u8], bool) -> io::Result<Split<'a>> + Send;

enum Splitter {
    /// The built-in line search, which remembers how far it looked.
    Lines,
    Custom(Box<SplitFn>),
}

/// Where the token of the last successful [`Scanner::scan`] is.
#[derive(Debug, Clone, Copy)]
enum Tok {
    None,
    /// `buf[start..end]`.
    InBuf(usize, usize),
    /// In `own`.
    Own,
}

/// Reads tokens from a [`Read`]: Go's `bufio.Scanner`. See the [module docs](self).
pub struct Scanner<R> {
    r: R,
    buf: Vec<u8>,
    /// Unconsumed data is `buf[start..end]`.
    start: usize,
    end: usize,
    max: usize,
    split: Splitter,
    /// Bytes at `buf[start..]` known to hold no `\n` (the line search's memory).
    scanned: usize,
    tok: Tok,
    own: Vec<u8>,
    /// The stream ended (read returned 0).
    eof: bool,
    err: Option<ScanError>,
    done: bool,
    empties: usize,
}

impl<R: Read> Scanner<R> {
    /// A scanner of lines (Go's `bufio.NewScanner`), with a maximum token size of
    /// [`MAX_SCAN_TOKEN_SIZE`].
    pub fn new(r: R) -> Self {
        Scanner {
            r,
            buf: Vec::new(),
            start: 0,
            end: 0,
            max: MAX_SCAN_TOKEN_SIZE,
            split: Splitter::Lines,
            scanned: 0,
            tok: Tok::None,
            own: Vec::new(),
            eof: false,
            err: None,
            done: false,
            empties: 0,
        }
    }

    /// Sets the maximum token size, delimiter included (Go's `Buffer(buf, max)`; at least 1).
    ///
    /// # Examples
    /// ```
    /// let mut sc = goway::bufio::Scanner::new(&b"12345\n123456\n"[..]).max_token_size(6);
    /// assert!(sc.scan()); // 5 bytes and the newline fit
    /// assert_eq!(sc.bytes(), b"12345");
    /// assert!(!sc.scan()); // 6 bytes and the newline do not
    /// assert!(sc.err().is_some());
    /// ```
    pub fn max_token_size(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    /// Splits with `f` instead of into lines (Go's `Split`): [`scan_words`], [`scan_runes`],
    /// [`scan_bytes`], [`scan_lines`] or a function of your own.
    ///
    /// # Examples
    /// Comma-separated fields, the last one ended by the end of the stream:
    /// ```
    /// use goway::bufio::{Scanner, Split};
    ///
    /// let mut sc = Scanner::new(&b"a,bc,,d"[..]).split(|data: &[u8], at_eof| {
    ///     Ok(match data.iter().position(|&b| b == b',') {
    ///         Some(i) => Split::Token { advance: i + 1, token: &data[..i] },
    ///         None if at_eof && !data.is_empty() => Split::Final(data),
    ///         None => Split::Need,
    ///     })
    /// });
    /// let mut fields = Vec::new();
    /// while sc.scan() {
    ///     fields.push(sc.text().into_owned());
    /// }
    /// assert_eq!(fields, ["a", "bc", "", "d"]);
    /// ```
    pub fn split(
        mut self,
        f: impl for<'a> FnMut(&'a [u8], bool) -> io::Result<Split<'a>> + Send + 'static,
    ) -> Self {
        self.split = Splitter::Custom(Box::new(f));
        self
    }

    /// Advances to the next token (Go's `Scan`): `true` if there is one, `false` at the end of
    /// the stream or after an error ([`err`](Self::err) tells which).
    pub fn scan(&mut self) -> bool {
        if self.done {
            return false;
        }
        self.tok = Tok::None;
        loop {
            if self.end > self.start || self.eof || self.err.is_some() {
                match self.split_once() {
                    Ok(Some(true)) => return true,
                    Ok(Some(false)) => {}
                    Ok(None) => {
                        self.done = true;
                        return true;
                    }
                    Err(e) => return self.stop(Some(e)),
                }
            }
            if self.eof || self.err.is_some() {
                return self.stop(None);
            }
            if let Err(e) = self.fill() {
                return self.stop(Some(e));
            }
        }
    }

    /// One call of the split function: `Ok(Some(true))` a token, `Ok(Some(false))` none yet,
    /// `Ok(None)` a final token.
    fn split_once(&mut self) -> Result<Option<bool>, ScanError> {
        let at_eof = self.eof || self.err.is_some();
        let data = &self.buf[self.start..self.end];
        let step = match &mut self.split {
            Splitter::Lines => {
                let (step, scanned) = lines_from(data, self.scanned, at_eof);
                self.scanned = scanned;
                step
            }
            Splitter::Custom(f) => f(data, at_eof).map_err(ScanError::Split)?,
        };
        let (advance, token, last) = match step {
            Split::Need => return Ok(Some(false)),
            Split::Skip(n) => (n, None, false),
            Split::Token { advance, token } => (advance, Some(token), false),
            Split::Final(token) => (0, Some(token), true),
        };
        if advance > data.len() {
            return Err(ScanError::AdvanceTooFar);
        }
        if let Some(token) = token {
            // A token inside the buffer is kept as a range; anything else is copied.
            let base = data.as_ptr() as usize;
            let at = (token.as_ptr() as usize).wrapping_sub(base);
            self.tok = if at <= data.len() && token.len() <= data.len() - at {
                Tok::InBuf(self.start + at, self.start + at + token.len())
            } else {
                self.own.clear();
                self.own.extend_from_slice(token);
                Tok::Own
            };
        }
        self.start += advance;
        if advance > 0 {
            self.scanned = 0;
        }
        if last {
            return Ok(None);
        }
        if token.is_none() {
            return Ok(Some(false));
        }
        if advance > 0 || !at_eof {
            self.empties = 0;
        } else {
            // At the end of the stream a split that produces tokens without consuming input
            // would loop forever.
            self.empties += 1;
            if self.empties > MAX_EMPTY_TOKENS {
                return Err(ScanError::NoProgress);
            }
        }
        Ok(Some(true))
    }

    /// Makes room and reads once more into the buffer.
    fn fill(&mut self) -> Result<(), ScanError> {
        // Move the unconsumed data to the front when the buffer is full or mostly consumed.
        if self.start > 0 && (self.end == self.buf.len() || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.max {
                return Err(ScanError::TooLong { max: self.max });
            }
            let grown = (self.buf.len() * 2).clamp(START_BUF_SIZE.min(self.max), self.max);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n.min(self.buf.len() - self.end);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ScanError::Io(e)),
            }
        }
    }

    fn stop(&mut self, err: Option<ScanError>) -> bool {
        if let Some(e) = err {
            self.err = Some(e);
            self.tok = Tok::None;
        }
        self.done = true;
        false
    }

    /// The last token found by [`scan`](Self::scan) (Go's `Bytes`); valid until the next scan.
    pub fn bytes(&self) -> &[u8] {
        match self.tok {
            Tok::None => &[],
            Tok::InBuf(a, b) => &self.buf[a..b],
            Tok::Own => &self.own,
        }
    }

    /// The last token as text (Go's `Text`), with invalid UTF-8 replaced by U+FFFD (borrowed
    /// when the token is valid UTF-8, as it nearly always is).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }

    /// Why scanning stopped, if not at a clean end of stream (Go's `Err`).
    pub fn err(&self) -> Option<&ScanError> {
        self.err.as_ref()
    }

    /// Takes the error out (for `?`): `Ok(())` after a clean end of stream.
    ///
    /// # Examples
    /// ```
    /// fn count_lines(r: impl std::io::Read) -> std::io::Result<usize> {
    ///     let mut sc = goway::bufio::Scanner::new(r);
    ///     let mut n = 0;
    ///     while sc.scan() {
    ///         n += 1;
    ///     }
    ///     sc.finish()?;
    ///     Ok(n)
    /// }
    /// assert_eq!(count_lines(&b"a\nb\n"[..]).unwrap(), 2);
    /// ```
    pub fn finish(&mut self) -> Result<(), ScanError> {
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Data read from the stream but not yet consumed by a token (for a protocol that switches
    /// from lines to raw bytes, as after an HTTP/1.1 `Upgrade`).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.r
    }

    /// The underlying reader, mutably (to set a deadline between scans, say).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.r
    }

    /// The underlying reader; data still [`buffered`](Self::buffered) is lost.
    pub fn into_inner(self) -> R {
        self.r
    }
}

impl<R> fmt::Debug for Scanner<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("buffered", &(self.end - self.start))
            .field("max_token_size", &self.max)
            .field("err", &self.err)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
