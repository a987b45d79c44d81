//! The bytes of a response: its status line, chunked framing, and the content type sniffed
//! when a handler sets none.

use crate::http::status::status_text;

/// Appends `HTTP/1.1 <code> <reason>\r\n`; for a code without a reason phrase, Go's
/// `<code> status code <code>`.
pub(super) fn write_status_line(out: &mut Vec<u8>, status: u16) {
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    let mut num = itoa::Buffer::new();
    let code = num.format(status).as_bytes();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(code);
    out.push(b' ');
    let reason = status_text(status);
    if reason.is_empty() {
        out.extend_from_slice(b"status code ");
        out.extend_from_slice(code);
    } else {
        out.extend_from_slice(reason.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `data` to `out`, as one chunk if `chunked`.
pub(super) fn frame(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if chunked {
        let mut hex = [0u8; 16];
        let mut n = data.len();
        let mut i = hex.len();
        loop {
            i -= 1;
            hex[i] = b"0123456789abcdef"[n & 15];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&hex[i..]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// A small content sniffer (a subset of Go's `DetectContentType`).
pub(super) fn sniff(data: &[u8]) -> &'static str {
    let head = &data[..data.len().min(512)];
    let trimmed = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&head[..0], |i| &head[i..]);
    let starts = |p: &[u8]| trimmed.len() >= p.len() && trimmed[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"<!doctype html") || starts(b"<html") || starts(b"<head") || starts(b"<body") {
        return "text/html; charset=utf-8";
    }
    if head
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
    {
        return "application/octet-stream";
    }
    "text/plain; charset=utf-8"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing() {
        let mut out = Vec::new();
        frame(&mut out, b"hello", true);
        frame(&mut out, &[b'x'; 255], true);
        assert!(out.starts_with(b"5\r\nhello\r\nff\r\nxxx"));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"Hello"), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"  <!DOCTYPE html><p>"), "text/html; charset=utf-8");
        assert_eq!(sniff(&[0, 1, 2]), "application/octet-stream");
    }
}
