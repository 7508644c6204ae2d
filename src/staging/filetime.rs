//! FILETIME (100 ns ticks since 1601-01-01 UTC, as in FILE_BASIC_INFORMATION,
//! MS-FSCC §2.4.7) to and from ISO 8601 text.

/// Seconds from 1601-01-01 to 1970-01-01.
const EPOCH_DIFF: i64 = 11_644_473_600;
const TICKS: i64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 8601 UTC time or FILETIME: {0:?} (want e.g. 2024-05-01T12:00:00Z, 2024-05-01T12:00:00.1234567+02:00 or a tick count)")]
pub struct TimeParseError(pub String);

// Howard Hinnant's civil-date algorithms (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Renders a FILETIME as ISO 8601 UTC (`2024-05-01T12:00:00.1234567Z`,
/// fraction only when non-zero). Negative values (special meanings in
/// FILE_BASIC_INFORMATION) are rendered as plain numbers.
pub fn to_iso8601(ft: i64) -> String {
    if ft < 0 {
        return ft.to_string();
    }
    let secs = ft / TICKS - EPOCH_DIFF;
    let frac = ft % TICKS;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let base = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    if frac == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{frac:07}Z")
    }
}

/// Parses ISO 8601 (`YYYY-MM-DDTHH:MM:SS[.fffffff](Z|±HH:MM)`) or a raw
/// FILETIME tick count.
pub fn from_iso8601(s: &str) -> Result<i64, TimeParseError> {
    let err = || TimeParseError(s.to_string());
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') || b[13] != b':' || b[16] != b':' {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, TimeParseError> {
        let t = s.get(r).ok_or_else(err)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        t.parse::<i64>().map_err(|_| err())
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut frac = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(err());
        }
        let digits = &r[..n];
        let mut padded: String = digits.chars().take(7).collect();
        while padded.len() < 7 {
            padded.push('0');
        }
        frac = padded.parse().map_err(|_| err())?;
        rest = &r[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || (rb[0] != b'+' && rb[0] != b'-') || rb[3] != b':' {
                return Err(err());
            }
            let oh: i64 = rest[1..3].parse().map_err(|_| err())?;
            let om: i64 = rest[4..6].parse().map_err(|_| err())?;
            let o = oh * 3600 + om * 60;
            if rb[0] == b'-' {
                -o
            } else {
                o
            }
        }
    };
    let days = days_from_civil(y, mo, d);
    let (_, m2, d2) = civil_from_days(days);
    if m2 != mo || d2 != d {
        return Err(err()); // e.g. February 30th
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset + EPOCH_DIFF;
    if secs < 0 {
        return Err(err());
    }
    secs.checked_mul(TICKS).and_then(|t| t.checked_add(frac)).ok_or_else(err)
}

/// A point in time as a FILETIME (times before 1970 count as 1970). The
/// clock is read by the caller, at the edge: this layer has none.
pub fn from_system_time(t: std::time::SystemTime) -> i64 {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64 + EPOCH_DIFF) * TICKS + (d.subsec_nanos() / 100) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(to_iso8601(0), "1601-01-01T00:00:00Z");
        // 1970-01-01 is 116444736000000000 ticks.
        assert_eq!(to_iso8601(116_444_736_000_000_000), "1970-01-01T00:00:00Z");
        assert_eq!(from_iso8601("1970-01-01T00:00:00Z").unwrap(), 116_444_736_000_000_000);
        let t = from_iso8601("2024-02-29T23:59:59.1234567Z").unwrap();
        assert_eq!(to_iso8601(t), "2024-02-29T23:59:59.1234567Z");
        assert_eq!(from_iso8601("2024-03-01T01:59:59.1234567+02:00").unwrap(), t);
        assert_eq!(from_iso8601("133000000000000000").unwrap(), 133_000_000_000_000_000);
        assert_eq!(to_iso8601(-1), "-1");
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01T25:00:00Z", "x024-01-01T00:00:00Z", "2024-01-01T00:00:00.Z"] {
            assert!(from_iso8601(s).is_err(), "{s}");
        }
    }

    #[test]
    fn round_trips() {
        for t in [1i64, 9_999_999, 130_000_000_000_000_001, 2_650_467_743_999_999_999] {
            assert_eq!(from_iso8601(&to_iso8601(t)).unwrap(), t, "{}", to_iso8601(t));
        }
    }
}
