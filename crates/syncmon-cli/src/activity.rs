//! `syncmon activity`: the stored Activity log searched from the command line (read-only, beside
//! a running agent): by entity, type, text (a Trackingid, a record id) and time, newest first.

use crate::{load_read_only, output, Cli, UsageError};
use clap::Args;
use std::process::ExitCode;
use syncmon_core::api::activity_query;
use syncmon_core::Event;
use syncmon_core::EventQuery;

#[derive(Args)]
pub(crate) struct ActivityArgs {
    /// Only this entity's events (and its connection's), e.g. `items` or `retail/items`, or a
    /// connection's.
    #[arg(long)]
    entity: Option<String>,
    /// Only events of this type, e.g. `cycle_finished`, `retrying`, `circuit_opened`.
    #[arg(long, value_name = "TYPE")]
    kind: Option<String>,
    /// Only events containing this text, any case: a Trackingid, a record id, words of an error.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only events since then: a duration back from now (`2h`, `3days`) or a date and time
    /// (`2026-12-01`, `2026-12-01 14:00`; local time, UTC with --utc).
    #[arg(long, value_name = "DURATION|DATE")]
    since: Option<String>,
    /// How many events at most, newest first (it says when older ones match too).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// JSON (`{"events": […], "more": …}`, times in ms since 1970) instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn activity(cli: &Cli, a: &ActivityArgs) -> anyhow::Result<ExitCode> {
    let sm = load_read_only(cli)?;
    let since = a.since.as_deref().map(|s| since_ms(s, sm.now_ms(), cli.utc)).transpose()?;
    let typed = EventQuery { entity: a.entity.clone(), kind: a.kind.clone(), text: a.search.clone(), since, limit: a.limit as usize, ..Default::default() };
    let q = activity_query(&sm, typed);
    let (events, more) = sm.search_events(&q);
    if a.json {
        output::json(&serde_json::json!({ "events": events, "more": more }))?;
    } else {
        table(&events);
        if more {
            eprintln!("(older events match too: raise --limit, or narrow with --since or --search)");
        } else if events.is_empty() {
            eprintln!("(no events match)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn table(events: &[Event]) {
    output::table(&["AT", "ENTITY", "TYPE", "DETAILS"], events, |e| {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        let fields = v.as_object_mut().map(std::mem::take).unwrap_or_default();
        let text = |k: &str| fields.get(k).and_then(|x| x.as_str()).map(String::from);
        let who = match (text("connection"), text("entity")) {
            (Some(c), Some(e)) => format!("{c}/{e}"),
            (Some(c), None) => c,
            _ => String::new(),
        };
        let details = fields
            .iter()
            .filter(|(k, x)| !["seq", "at", "type", "connection", "entity"].contains(&k.as_str()) && !x.is_null())
            .map(|(k, x)| format!("{k}={}", x.as_str().map(String::from).unwrap_or_else(|| x.to_string())))
            .collect::<Vec<_>>()
            .join(" ");
        vec![output::time(Some(e.at)), who, text("type").unwrap_or_default(), details]
    });
}

/// `--since`: a duration back from `now_ms`, or a date with an optional time of day.
fn since_ms(text: &str, now_ms: i64, utc: bool) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(now_ms - d.as_millis() as i64);
    }
    let bad = || UsageError(format!("--since {text}: write a duration (`2h`, `3days`) or a date (`2026-12-01` or `2026-12-01 14:00`)"));
    let (day, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00"));
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
    let mut d = day.split('-');
    let (y, m, dd) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut t = time.split(':');
    let (hh, mm) = (num(t.next())?, num(t.next())?);
    let ss = t.next().map(|s| num(Some(s))).transpose()?.unwrap_or(0);
    if d.next().is_some() || t.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&dd) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad().into());
    }
    let as_utc = ((days_from_civil(y, m, dd) * 24 + hh) * 60 + mm) * 60 + ss;
    let secs = if utc { as_utc } else { local_seconds(y, m, dd, hh, mm, ss).unwrap_or(as_utc) };
    Ok(secs * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since 1970 of a local date and time (the C library's zone, as output.rs prints).
#[cfg(unix)]
fn local_seconds(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<i64> {
    // SAFETY: an all-zero `tm` is a valid value; mktime reads and normalises the `tm` we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = (y - 1900) as libc::c_int;
    tm.tm_mon = (m - 1) as libc::c_int;
    tm.tm_mday = d as libc::c_int;
    tm.tm_hour = hh as libc::c_int;
    tm.tm_min = mm as libc::c_int;
    tm.tm_sec = ss as libc::c_int;
    tm.tm_isdst = -1; // the zone's rule decides whether summer time applies
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t as i64)
}

#[cfg(not(unix))]
fn local_seconds(_y: i64, _m: i64, _d: i64, _hh: i64, _mm: i64, _ss: i64) -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_date() {
        let now = 1_764_600_000_000;
        assert_eq!(since_ms("2h", now, true).unwrap(), now - 2 * 3_600_000);
        assert_eq!(since_ms("2026-12-01", 0, true).unwrap(), 1_796_083_200_000);
        assert_eq!(since_ms("2026-12-01 14:05", 0, true).unwrap(), 1_796_083_200_000 + (14 * 60 + 5) * 60_000);
        assert_eq!(since_ms("1970-01-01T00:00:01", 0, true).unwrap(), 1000);
        for bad in ["yesterday", "2026-13-01", "2026-12-01 25:00", "2026-12"] {
            assert!(since_ms(bad, 0, true).is_err(), "{bad}");
        }
    }
}
