//! Inline requests: splitting a line into arguments with Redis's quoting.

use super::Request;
use crate::net::codec::find_byte;

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
