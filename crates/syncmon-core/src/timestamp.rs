//! Last-modified timestamps as versions (`profile = "timestamp"`).
//!
//! A timestamp is carried as an integer, microseconds since 1970 (UTC), in the ordinary
//! [`RowVersion`]: the store, its numeric comparisons and checkpoints work unchanged. It is read
//! from a record in the configured [`TimestampFormat`], written back in that format for the
//! source's "since" parameter, and shown to people as an RFC 3339 date.

use crate::rowversion::RowVersion;
use serde::Deserialize;

/// How a source writes its last-modified field (`timestamp_format` in `[connection.cursor]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// `"2024-01-01T00:00:05Z"`, any offset, an optional fraction (kept to the microsecond).
    #[default]
    Rfc3339,
    /// Seconds since 1970, a JSON number (a fraction is kept to the microsecond).
    EpochSeconds,
    /// Milliseconds since 1970, a JSON integer.
    EpochMillis,
}

impl TimestampFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampFormat::Rfc3339 => "rfc3339",
            TimestampFormat::EpochSeconds => "epoch_seconds",
            TimestampFormat::EpochMillis => "epoch_millis",
        }
    }
}

const MICROS: i64 = 1_000_000;
/// 9999-12-31T23:59:59Z: anything later is a unit mistake (milliseconds read as seconds).
const LATEST_SECS: i64 = 253_402_300_799;

/// The version of a record's last-modified value, or why it is not one (the message follows the
/// value in "`lastModified` is <value>, ...").
pub fn to_version(value: &serde_json::Value, format: TimestampFormat) -> Result<RowVersion, String> {
    let micros = match (format, value) {
        (TimestampFormat::Rfc3339, serde_json::Value::String(s)) => parse_rfc3339(s).ok_or_else(|| "not an RFC 3339 timestamp".to_string())?,
        (TimestampFormat::Rfc3339, serde_json::Value::Number(n)) => {
            let unit = if n.as_f64().is_some_and(|v| v >= 1e11) { "epoch_millis" } else { "epoch_seconds" };
            return Err(format!("a number, not an RFC 3339 timestamp: if the source sends epoch numbers, set timestamp_format = \"{unit}\""));
        }
        (TimestampFormat::EpochSeconds, serde_json::Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(s), _) => s.checked_mul(MICROS).ok_or_else(|| "out of range".to_string())?,
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => (f * MICROS as f64).floor() as i64,
            _ => return Err("not a number of seconds".into()),
        },
        (TimestampFormat::EpochMillis, serde_json::Value::Number(n)) => {
            n.as_i64().and_then(|ms| ms.checked_mul(1000)).ok_or_else(|| "not a whole number of milliseconds".to_string())?
        }
        (_, serde_json::Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            return to_version(&serde_json::Value::Number(s.parse::<i64>().map_err(|_| "out of range".to_string())?.into()), format)
        }
        (f, _) => return Err(format!("not a timestamp in the {} format", f.as_str())),
    };
    if micros < 0 {
        return Err("before 1970".into());
    }
    if micros / MICROS > LATEST_SECS {
        let hint = if format == TimestampFormat::EpochSeconds { ": if these are milliseconds, set timestamp_format = \"epoch_millis\"" } else { "" };
        return Err(format!("after the year 9999{hint}"));
    }
    Ok(RowVersion::from(micros as u64))
}

/// The value for the source's "since" parameter, in its own format. Rounded down, so an
/// inclusive "since" still returns the records at the version itself.
pub fn query_text(version: &RowVersion, format: TimestampFormat) -> String {
    let micros = micros_of(version);
    match format {
        TimestampFormat::Rfc3339 => format_rfc3339(micros),
        TimestampFormat::EpochSeconds => (micros / MICROS).to_string(),
        TimestampFormat::EpochMillis => (micros / 1000).to_string(),
    }
}

/// A version as people read it: an RFC 3339 date in UTC ("not synced yet" reads as 1970).
pub fn display(version: &RowVersion) -> String {
    format_rfc3339(micros_of(version))
}

/// Microseconds below `version`, not below 0.
pub fn minus_micros(version: &RowVersion, micros: u64) -> RowVersion {
    RowVersion::from((micros_of(version) as u64).saturating_sub(micros))
}

fn micros_of(version: &RowVersion) -> i64 {
    version.as_str().parse::<i64>().unwrap_or(i64::MAX).min(LATEST_SECS * MICROS)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (also `t`, or a space for `T`); microseconds since 1970.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit()))?.parse().ok() };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b[i] == b'.' {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (k, c) in b[i + 1..i + 1 + digits.min(6)].iter().enumerate() {
            micros += (*c - b'0') as i64 * 10i64.pow(5 - k as u32);
        }
        i += 1 + digits;
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        off if off.len() == 6 && matches!(off.as_bytes()[0], b'+' | b'-') && off.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let sign = if off.as_bytes()[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * MICROS + micros)
}

/// UTC, with a fraction only when there is one (milliseconds, or microseconds when needed).
pub fn format_rfc3339(micros: i64) -> String {
    let (secs, frac) = (micros.div_euclid(MICROS), micros.rem_euclid(MICROS));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let fraction = match frac {
        0 => String::new(),
        f if f % 1000 == 0 => format!(".{:03}", f / 1000),
        f => format!(".{f:06}"),
    };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
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
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: i64 = 1_704_067_205; // 2024-01-01T00:00:05Z

    fn v(value: serde_json::Value, f: TimestampFormat) -> Result<String, String> {
        to_version(&value, f).map(|v| v.to_string())
    }

    #[test]
    fn each_format_reads_to_microseconds_and_writes_back_as_the_source_wrote_it() {
        use TimestampFormat::*;
        let us = (T * MICROS).to_string();
        assert_eq!(v(json!("2024-01-01T00:00:05Z"), Rfc3339).unwrap(), us);
        assert_eq!(v(json!("2024-01-01T01:00:05+01:00"), Rfc3339).unwrap(), us);
        assert_eq!(v(json!("2024-01-01T00:00:05.250Z"), Rfc3339).unwrap(), (T * MICROS + 250_000).to_string());
        assert_eq!(v(json!("2024-01-01T00:00:05.123456789Z"), Rfc3339).unwrap(), (T * MICROS + 123_456).to_string());
        assert_eq!(v(json!(T), EpochSeconds).unwrap(), us);
        assert_eq!(v(json!(T * 1000), EpochMillis).unwrap(), us);
        assert_eq!(v(json!(format!("{}", T * 1000)), EpochMillis).unwrap(), us, "digits in a string");
        let ver = RowVersion::from((T * MICROS + 250_000) as u64);
        assert_eq!(query_text(&ver, Rfc3339), "2024-01-01T00:00:05.250Z");
        assert_eq!(query_text(&ver, EpochSeconds), T.to_string(), "rounded down: an inclusive since still covers it");
        assert_eq!(query_text(&ver, EpochMillis), (T * 1000 + 250).to_string());
        assert_eq!(display(&RowVersion::from((T * MICROS) as u64)), "2024-01-01T00:00:05Z");
        assert_eq!(display(&RowVersion::from((T * MICROS + 7) as u64)), "2024-01-01T00:00:05.000007Z");
        assert_eq!(display(&RowVersion::zero()), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn dates_round_trip_across_leap_years_and_centuries() {
        for s in ["1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2100-03-01T00:00:00Z", "2024-12-31T12:00:00.001Z"] {
            assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
        }
    }

    #[test]
    fn wrong_values_say_what_to_set() {
        use TimestampFormat::*;
        assert!(v(json!(T * 1000), Rfc3339).unwrap_err().contains("timestamp_format = \"epoch_millis\""));
        assert!(v(json!(T), Rfc3339).unwrap_err().contains("timestamp_format = \"epoch_seconds\""));
        assert!(v(json!(T * 1000), EpochSeconds).unwrap_err().contains("epoch_millis"), "milliseconds read as seconds: year 55000");
        for bad in [json!("yesterday"), json!("2024-13-01T00:00:00Z"), json!("2024-01-01T00:00:05"), json!(true), json!(-5)] {
            assert!(v(bad.clone(), Rfc3339).is_err() && v(bad.clone(), EpochMillis).is_err(), "{bad}");
        }
    }
}
