//! The `Date` header value (IMF-fixdate), formatted at most once per second per connection.
//!
//! Reading the clock is a vDSO call (no system call); formatting happens only when the
//! second changes, so a connection serving many requests a second formats once.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

/// Length of the whole header line `Date: <date>\r\n`.
pub(crate) const LINE_LEN: usize = DATE_LEN + 8;

/// A per-connection cache of the formatted `Date` header line.
#[derive(Debug)]
pub(crate) struct DateCache {
    secs: u64,
    line: [u8; LINE_LEN],
}

impl DateCache {
    pub(crate) fn new() -> Self {
        let mut line = [b' '; LINE_LEN];
        line[..6].copy_from_slice(b"Date: ");
        line[LINE_LEN - 2..].copy_from_slice(b"\r\n");
        let mut d = DateCache {
            secs: u64::MAX,
            line,
        };
        d.get();
        d
    }

    /// The header line `Date: <now>\r\n`.
    #[inline]
    pub(crate) fn get(&mut self) -> &[u8; LINE_LEN] {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now != self.secs {
            self.secs = now;
            let mut buf = [0u8; DATE_LEN];
            format(now, &mut buf);
            self.line[6..6 + DATE_LEN].copy_from_slice(&buf);
        }
        &self.line
    }
}

/// Formats Unix time `secs` as IMF-fixdate (RFC 9110 §5.6.7).
pub(crate) fn format(secs: u64, out: &mut [u8; DATE_LEN]) {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let wday = DAYS[(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = year.clamp(0, 9999) as u64;
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[0..3].copy_from_slice(wday);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day as u64));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year % 100));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(h));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(m));
    out[22] = b':';
    out[22 + 1..25].copy_from_slice(&two(s));
    out[25..29].copy_from_slice(b" GMT");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        let mut b = [0u8; DATE_LEN];
        format(784_111_777, &mut b);
        assert_eq!(&b, b"Sun, 06 Nov 1994 08:49:37 GMT");
        format(0, &mut b);
        assert_eq!(&b, b"Thu, 01 Jan 1970 00:00:00 GMT");
        format(1_709_210_096, &mut b); // a leap day
        assert_eq!(&b, b"Thu, 29 Feb 2024 12:34:56 GMT");
    }
}
