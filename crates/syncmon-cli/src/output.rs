//! Human-readable tables and JSON output for the listings.

use serde::Serialize;
use syncmon_core::{EntityStatus, FailedItem, IngestState, RequestRow};

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    use std::io::Write;
    writeln!(out)?;
    Ok(())
}

/// `--utc`: every time in UTC, saying so; otherwise the machine's local time with its offset.
static UTC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_utc(utc: bool) {
    UTC.store(utc, std::sync::atomic::Ordering::Relaxed);
}

fn utc() -> bool {
    UTC.load(std::sync::atomic::Ordering::Relaxed)
}

/// A time to come, in local time as users read a clock: "14:05" today, "2027-12-03 14:05" on
/// another day (for "waiting for the source until …"); with `--utc`, "14:05 UTC".
pub fn until_local(ms: i64, now_ms: i64) -> String {
    let parts = |ms| match local(ms) {
        Some(l) if !utc() => (l.day, l.time[..5].to_string()),
        _ => utc_day_and_time(ms),
    };
    let ((day, time), (today, _)) = (parts(ms), parts(now_ms));
    if day == today {
        time
    } else {
        format!("{day} {time}")
    }
}

/// A moment in the machine's time zone: "2026-12-03", "14:05:09", and the offset in seconds.
struct Local {
    day: String,
    time: String,
    offset: i64,
}

/// The C library's local time (it reads `TZ`, a zone name or a POSIX rule).
#[cfg(unix)]
fn local(ms: i64) -> Option<Local> {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value; localtime_r only writes into the `tm` we own
    // and reads `secs`, both valid for the call, and is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return None;
    }
    Some(Local {
        day: format!("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday),
        time: format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec),
        offset: tm.tm_gmtoff as i64,
    })
}

#[cfg(not(unix))]
fn local(_ms: i64) -> Option<Local> {
    None
}

fn utc_day_and_time(ms: i64) -> (String, String) {
    let t = rfc3339(ms); // 2026-12-03T14:05:00Z
    (t.get(..10).unwrap_or_default().to_string(), format!("{} UTC", t.get(11..16).unwrap_or_default()))
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// One rule for every time the CLI prints: local 24-hour time with the offset,
/// "2026-12-03 19:35:09 +05:30"; with `--utc` (or without a local zone) "2026-12-03 14:05:09 UTC".
/// JSON output keeps milliseconds since 1970.
pub fn time(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "never".into() };
    match local(ms) {
        Some(l) if !utc() => {
            let (sign, off) = if l.offset < 0 { ('-', -l.offset) } else { ('+', l.offset) };
            format!("{} {} {sign}{:02}:{:02}", l.day, l.time, off / 3600, off % 3600 / 60)
        }
        _ => {
            let t = rfc3339(ms);
            format!("{} {} UTC", t.get(..10).unwrap_or_default(), t.get(11..19).unwrap_or_default())
        }
    }
}

fn lag(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h", s / 3600),
    }
}

/// A table of `items`, one row each as `row` writes its cells, under `headers`; columns padded to
/// their widest cell.
pub(crate) fn table<T>(headers: &[&str], items: &[T], row: impl Fn(&T) -> Vec<String>) {
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells.into_iter().enumerate().map(|(i, c)| if i + 1 == n { c } else { format!("{c:<w$}", w = widths[i]) }).collect::<Vec<_>>().join("  ")
    };
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
}

pub fn status_table(status: &[EntityStatus]) {
    if status.is_empty() {
        println!("No entities configured. Add [[connection.entity]] sections to the config.");
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
    // Several agents on one PostgreSQL replica: which one syncs each entity.
    let agents = status.iter().any(|s| s.holder.is_some());
    let mut headers = vec!["ENTITY", "STATE", "CHECKPOINT", "LAST CAUGHT UP", "LAG", "ROWS", "FAILED"];
    if agents {
        headers.push("AGENT");
    }
    headers.push("WHY");
    table(&headers, status, |s| {
        let waiting = s.next_attempt_at.filter(|_| s.health == syncmon_core::Health::Waiting);
        let mut why = match waiting {
            Some(t) => format!("waiting for the source until {}: ", until_local(t, now)),
            None => String::new(),
        };
        why.push_str(s.reason.as_deref().unwrap_or_default());
        if let Some(code) = s.last_http_status.filter(|c| *c >= 400) {
            why.push_str(&format!(" (HTTP {code})"));
        }
        if s.health != syncmon_core::Health::Healthy {
            if let Some(t) = &s.last_tracking_id {
                why.push_str(&format!(" [Trackingid {t}]"));
            }
        }
        if let Some(n) = s.next_attempt_at.filter(|_| waiting.is_none()) {
            why.push_str(&format!("; next attempt {}", time(Some(n))));
        }
        if s.forward_pending > 0 {
            why.push_str(&format!(" {} changes waiting for the target", s.forward_pending));
            if let Some(e) = &s.forward_error {
                why.push_str(&format!(" ({e})"));
            }
        }
        let mut cells = vec![
            format!("{}/{}", s.connection, s.entity),
            s.health.label().to_string(),
            // A snapshot feed has no version: when it was last read whole says how fresh it is.
            match s.last_complete_pass_at {
                Some(t) => format!("pass {}", time(Some(t))),
                None => s.checkpoint_display.clone(),
            },
            time(s.last_caught_up_at),
            lag(s.lag_seconds),
            s.replica_rows.to_string(),
            s.pending_failed.to_string(),
        ];
        if agents {
            cells.push(s.holder.clone().unwrap_or_else(|| "none".into()));
        }
        cells.push(why.trim().to_string());
        cells
    });
}

/// The verdict under the status table, the app's banner in one line: "Retrying: 1 entity — c/items
/// · a call failed and is tried again by itself: next attempt 14:05 (in 20 s)".
pub fn verdict_line(v: &syncmon_core::Verdict, status: &[EntityStatus], now: i64) -> String {
    let mut line = v.title.clone();
    if !v.detail.is_empty() {
        line.push_str(" — ");
        line.push_str(&v.detail);
    }
    let next = v.next_attempt_of.as_deref().and_then(|name| status.iter().find(|s| s.name() == name)).and_then(|s| s.next_attempt_at);
    if let Some(at) = next {
        let secs = (at - now).max(0) / 1000;
        if secs < 2 {
            line.push_str(": next attempt now");
        } else {
            let within = if secs < 60 {
                format!("{secs} s")
            } else if secs < 3600 {
                format!("{} min", secs / 60)
            } else {
                format!("{} h", secs / 3600)
            };
            line.push_str(&format!(": next attempt {} (in {within})", until_local(at, now)));
        }
    }
    line
}

pub fn targets_table(targets: &[syncmon_core::TargetStatus]) {
    if targets.is_empty() {
        println!("No targets configured. A [[target]] section and forward_to on an entity send its changes on.");
        return;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default();
    table(&["TARGET", "PENDING", "OLDEST WAITING", "PER MINUTE", "CIRCUIT", "ENTITIES", "LAST ERROR"], targets, |t| {
        vec![
            t.id.clone(),
            t.pending.to_string(),
            t.oldest_queued_at.map(|at| lag(Some((now - at).max(0) / 1000))).unwrap_or_else(|| "-".into()),
            format!("{:.1}", t.deliveries_per_minute),
            match t.circuit_open_until {
                Some(until) => format!("open until {}", until_local(until, now)),
                None => "closed".into(),
            },
            t.entities.join(", "),
            t.last_error.clone().unwrap_or_default(),
        ]
    });
}

pub fn failed_table(items: &[FailedItem]) {
    failed_table_page(items);
    if let Some(last) = items.last() {
        println!("(older items: --before {})", last.id);
    }
}

/// The failed-items table without the paging hint (`failed list --all` prints one per page).
pub fn failed_table_page(items: &[FailedItem]) {
    table(&["ID", "ENTITY", "RECORD", "STAGE", "KIND", "TRIES", "TRACKINGID", "MESSAGE"], items, |i| {
        vec![
            i.id.to_string(),
            format!("{}/{}", i.connection, i.entity),
            i.record_id.clone().unwrap_or_else(|| "(no id)".into()),
            i.stage.to_string(),
            i.error_kind.clone(),
            i.attempts.to_string(),
            i.tracking_id.clone().unwrap_or_default(),
            i.message.clone(),
        ]
    });
}

pub fn failed_detail(i: &FailedItem) {
    println!("failed item {}  ({})", i.id, i.state);
    println!("  entity       {}/{}", i.connection, i.entity);
    println!("  record id    {}", i.record_id.as_deref().unwrap_or("(none)"));
    println!("  rowVersion   {}", i.row_version.as_deref().unwrap_or("(none)"));
    println!("  stage        {}", i.stage);
    println!("  error        {}: {}", i.error_kind, i.message);
    println!("  HTTP status  {}", i.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()));
    println!("  Trackingid   {}", i.tracking_id.as_deref().unwrap_or("-"));
    println!("  attempts     {}  (first {}, last {})", i.attempts, time(Some(i.first_failed_at)), time(Some(i.last_failed_at)));
    if let Some(r) = &i.resolution {
        println!("  resolution   {r}");
    }
    let pretty = serde_json::from_str::<serde_json::Value>(&i.payload).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_else(|_| i.payload.clone());
    println!("  payload:\n{}", pretty.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"));
}

pub fn ingest_detail(b: &syncmon_core::IngestBatch) {
    let state = match b.state {
        IngestState::Queued => "queued (not applied yet: the agent applies it when it runs and the entity is not paused)",
        IngestState::Applied => "applied",
        IngestState::PartlyFailed => "partly failed (the records below are failed items of stage `ingest`; the rest is applied)",
    };
    println!("pushed batch {}", b.id);
    println!("  entity       {}/{}", b.connection, b.entity);
    println!("  state        {state}");
    println!("  received     {}", time(Some(b.received_at)));
    if let Some(at) = b.applied_at {
        println!("  applied      {}", time(Some(at)));
    }
    if let (Some(records), Some(applied), Some(unchanged), Some(failed)) = (b.records, b.applied, b.unchanged, b.failed) {
        println!("  records      {records}: {applied} written, {unchanged} unchanged (the replica had that version or newer), {failed} failed");
    }
    for f in &b.failures {
        println!("  failed       {}: {}: {}", f.record_id.as_deref().unwrap_or("(no id)"), f.error_kind, f.message);
    }
    if !b.failures.is_empty() {
        println!("  (syncmon failed list --search {} lists them as failed items)", b.id);
    }
}

pub fn requests_table(rows: &[RequestRow]) {
    table(&["AT", "ENTITY", "STATUS", "TIME", "TRY", "TRACKINGID", "REQUEST", "ERROR"], rows, |r| {
        vec![
            time(Some(r.at)),
            r.entity.clone().map(|e| format!("{}/{e}", r.connection)).unwrap_or_else(|| r.connection.clone()),
            r.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            format!("{}ms", r.duration_ms),
            r.attempt.to_string(),
            r.tracking_id.clone().unwrap_or_default(),
            format!("{} {}", r.method, r.url),
            r.error.clone().unwrap_or_default(),
        ]
    });
}

/// `syncmon find`: each kind of place the text was found in, or where it was looked for.
pub fn found(f: &syncmon_core::Found) {
    if f.is_empty() {
        println!(
            "nothing carries `{}`: it is not a Trackingid in the request log or the runs, not a pushed batch's id, and no failed item or replica row has that record id (the request log keeps [storage] request_log_retention)",
            f.query
        );
        return;
    }
    let n = |count: usize, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
    if !f.requests.is_empty() {
        println!("{} with Trackingid {}:", n(f.requests.len(), "call", "calls"), f.query);
        requests_table(&f.requests);
        println!();
    }
    if !f.runs.is_empty() {
        println!("{}:", n(f.runs.len(), "run", "runs"));
        table(&["RUN", "ENTITY", "KIND", "STARTED", "OUTCOME", "RECORDS", "ERROR"], &f.runs, |r| {
            vec![
                r.id.to_string(),
                format!("{}/{}", r.connection, r.entity),
                r.kind.to_string(),
                time(Some(r.started_at)),
                r.outcome.to_string(),
                r.records.to_string(),
                r.error.clone().unwrap_or_default(),
            ]
        });
        println!();
    }
    if !f.failed.is_empty() {
        println!("{} (any state; `syncmon failed show ID` for one):", n(f.failed.len(), "failed item", "failed items"));
        failed_table(&f.failed);
        println!();
    }
    if let Some(b) = &f.ingest {
        ingest_detail(b);
        println!();
    }
    if !f.replica.is_empty() {
        println!("{} with record id {}:", n(f.replica.len(), "replica row", "replica rows"), f.query);
        table(&["ENTITY", "ROWVERSION", "STATE", "DATA"], &f.replica, |r| {
            vec![
                r.entity.clone(),
                r.row_version.clone(),
                r.deleted_at.map_or_else(|| "live".to_string(), |at| format!("deleted {}", time(Some(at)))),
                r.data.to_string(),
            ]
        });
    }
}

/// `syncmon verify`: equal, or what differs with samples, and the reads' Trackingids.
pub fn verify_report(r: &syncmon_core::engine::VerifyReport) {
    let pages = if r.pages == 1 { "page" } else { "pages" };
    println!("{}: read {} records from the source in {} {pages}; the replica holds {} rows", r.entity, r.source_records, r.pages, r.replica_rows);
    if let Some(e) = &r.error {
        println!("  the read stopped early, so the counts cover only what was read: {e}");
    }
    let part = |n: u64, what: &str, ids: &[String]| {
        if n > 0 {
            let more = if n as usize > ids.len() { format!(" and {} more", n as usize - ids.len()) } else { String::new() };
            println!("  {n} {what}: {}{more}", ids.join(", "));
        }
    };
    part(r.missing, "missing from the replica", &r.missing_ids);
    part(r.stale, "at another version in the replica", &r.stale_ids);
    part(r.extra, "in the replica but no longer at the source", &r.extra_ids);
    if r.equal() {
        println!("  equal: the replica holds exactly what the source serves");
    } else if r.error.is_none() {
        println!("  `syncmon sync` brings missing and stale records; `syncmon resync {} --yes` also removes the extra ones", r.entity);
    }
    if let (Some(first), Some(last)) = (&r.first_tracking_id, &r.last_tracking_id) {
        println!("  Trackingids of the reads: first {first}, last {last}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_local_with_the_offset_or_say_utc() {
        // 2026-12-03T14:05:09Z; the test process's zone is whatever the machine has, so only
        // the UTC form and the shape of the local one are fixed here (the CLI test sets TZ).
        let ms = 1_796_306_709_000;
        set_utc(true);
        assert_eq!(time(Some(ms)), "2026-12-03 14:05:09 UTC");
        assert_eq!(until_local(ms, ms), "14:05 UTC");
        set_utc(false);
        let t = time(Some(ms));
        assert!(t.len() == "2026-12-03 14:05:09 +00:00".len() && (t.contains(" +") || t.contains(" -")), "{t}");
        assert_eq!(time(None), "never");
    }
}
