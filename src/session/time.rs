//! HTTP dates (the `Date` and `Retry-After` headers), parsed without a date crate: the engine
//! only needs IMF-fixdate (RFC 9110 §5.6.7), the form every modern server sends. Hand-written
//! for size: the `httpdate` crate in its place adds 3,844 B to the release wasm (2,282 B gzip
//! -9), measured with `scripts/size`-style builds of both on 2026-12-01.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT` into Unix ms; `None` for anything else.
pub fn parse_http_date(s: &str) -> Option<f64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: i64 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)? as i64 + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let hms: Vec<i64> = it
        .next()?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if it.next()? != "GMT" || hms.len() != 3 || !(1..=31).contains(&day) {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(secs as f64 * 1000.0)
}

/// Formats Unix ms as IMF-fixdate (used by the test fakes to play a server).
pub fn format_http_date(ms: f64) -> String {
    let secs = (ms / 1000.0).floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A non-negative decimal number of seconds (`12`, `1.5`), the form of `Retry-After`'s
/// delta-seconds; `None` for anything else. Hand-written for wasm size: `str::parse::<f64>`
/// links core's float parser (dec2flt and its tables: 14.4 KB gzip of wasm, README size section).
pub fn parse_seconds(v: &str) -> Option<f64> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (v.contains('.') && frac.is_empty()) {
        return None;
    }
    let value = |p: &str| p.bytes().fold(0.0, |n, b| n * 10.0 + f64::from(b - b'0'));
    Some(value(int) + value(frac) / 10f64.powi(frac.len() as i32))
}

/// `Retry-After` as a delay in ms: either delta-seconds or an HTTP date (relative to `now_ms`,
/// both on the server's clock when the caller has corrected it).
pub fn parse_retry_after(value: &str, server_now_ms: f64) -> Option<f64> {
    let v = value.trim();
    if let Some(secs) = parse_seconds(v) {
        return secs.is_finite().then_some(secs * 1000.0);
    }
    parse_http_date(v).map(|at| (at - server_now_ms).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_round_trips() {
        let ms = 784_111_777_000.0;
        assert_eq!(format_http_date(ms), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(ms));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("7", 0.0), Some(7000.0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", 784_111_777_000.0),
            Some(10_000.0)
        );
        assert_eq!(parse_retry_after("-3", 0.0), None);
    }

    #[test]
    fn seconds_are_non_negative_decimals() {
        assert_eq!(parse_seconds("12"), Some(12.0));
        assert_eq!(parse_seconds("1.5"), Some(1.5));
        assert_eq!(parse_seconds("0.25"), Some(0.25));
        for bad in ["", "-3", "1.", ".5", "1e3", "inf", "1.2.3", " 7"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }
}
