//! The diagnostics bundle: one zip a support engineer can be handed, whose `SUMMARY.md` says in
//! plain words what is wrong, with the evidence beside it. No HTTP and no Tauri here: the CLI
//! (`syncmon diagnostics`) and the RPC (`diagnostics`) both call [`Syncmon::diagnostics`].
//!
//! Never a secret: secrets live in the keyring or the environment and nothing here reads them;
//! the config file goes in with every secret-looking key's value replaced, URLs through
//! [`crate::redact`], and payloads only when asked for.

use super::Syncmon;
use crate::error::{Error, Result};
use crate::redact;
use crate::state::{FailedState, Health, Tone};
use crate::store::FailedFilter;
use std::io::{Seek, Write};

/// What to put in the bundle.
#[derive(Debug, Clone, Default)]
pub struct DiagnosticsOptions {
    /// The failed items' payloads (the records' data). Off by default: records may hold
    /// personal or business data.
    pub include_payloads: bool,
}

/// What the bundle holds, for the front end to say.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct DiagnosticsReport {
    pub files: Vec<String>,
    /// Entities that need attention: amber or red (failing, circuit open, retrying, waiting,
    /// lagging, forwarding stuck).
    pub problems: usize,
}

const DAY_MS: i64 = 24 * 3600 * 1000;
const REQUESTS_MAX: u32 = 1000;
const RUNS_PER_ENTITY: u32 = 20;
const FAILED_MAX: u32 = 5000;
/// The newest lines of the agent's and the desktop app's log files (`<data dir>/logs`).
const LOG_LINES: usize = 2000;

fn io(e: impl std::fmt::Display) -> Error {
    Error::Io(format!("writing the diagnostics bundle: {e}"))
}

/// Config text with the value of every key that looks like a secret replaced.
pub fn redact_config_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if let Some((k, _)) = trimmed.split_once('=') {
                let key = k.trim().trim_matches('"');
                let sensitive = redact::is_secret_param(key);
                if sensitive {
                    let indent = &line[..line.len() - trimmed.len()];
                    return format!("{indent}{} = \"REDACTED\"", k.trim());
                }
            }
            redact::redact_url_text(line)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn when(ms: i64) -> String {
    crate::timestamp::format_rfc3339(ms * 1000)
}

fn os_description() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())));
    format!("{} {} ({})", std::env::consts::OS, std::env::consts::ARCH, pretty.unwrap_or_else(|| "unknown release".into()))
}

/// A bundle saved beside the database (the RPC's `diagnostics`, for the app's button).
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
pub struct SavedDiagnostics {
    /// Where the zip was written: `<data dir>/diagnostics/syncmon-diagnostics-<time>.zip`.
    pub path: String,
    pub files: Vec<String>,
    pub problems: usize,
    /// The bundle's SUMMARY.md, for the app to show.
    pub summary: String,
}

impl Syncmon {
    /// Builds the bundle into `<data dir>/diagnostics/` and answers where, with its summary.
    pub fn save_diagnostics(&self, opts: &DiagnosticsOptions) -> Result<SavedDiagnostics> {
        let dir = self.ctx.store.path().parent().map(|p| p.join("diagnostics")).unwrap_or_else(|| "diagnostics".into());
        std::fs::create_dir_all(&dir).map_err(io)?;
        let path = dir.join(self.diagnostics_file_name());
        let mut buf = std::io::Cursor::new(Vec::new());
        let report = self.diagnostics(&mut buf, opts)?;
        std::fs::write(&path, buf.get_ref()).map_err(io)?;
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(buf.into_inner())).map_err(io)?;
        let mut summary = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("SUMMARY.md").map_err(io)?, &mut summary).map_err(io)?;
        Ok(SavedDiagnostics { path: path.display().to_string(), files: report.files, problems: report.problems, summary })
    }

    /// The bundle's file name for now: `syncmon-diagnostics-<UTC time>.zip` (the served UI's
    /// download is named the same).
    pub fn diagnostics_file_name(&self) -> String {
        let stamp = crate::timestamp::format_rfc3339(self.now_ms() / 1000 * 1_000_000).replace([':', '-'], "");
        format!("syncmon-diagnostics-{stamp}.zip")
    }

    /// Writes the bundle as a zip to `out`. SUMMARY.md is its first file and stored uncompressed,
    /// so that a browser that downloaded the zip can show it without unzipping.
    pub fn diagnostics<W: Write + Seek>(&self, out: W, opts: &DiagnosticsOptions) -> Result<DiagnosticsReport> {
        let now = self.now_ms();
        let status = self.status()?;
        let all_pending = FailedFilter::default();
        let kinds = self.failed_kind_counts(&all_pending)?;
        let mut failed = self.failed_items(&FailedFilter { any_state: true, ..FailedFilter::default() }, None, FAILED_MAX)?;
        if !opts.include_payloads {
            for f in &mut failed {
                f.payload = format!("(left out: {} bytes; `syncmon diagnostics --include-payloads` includes it)", f.payload.len());
            }
        }
        let requests: Vec<_> = self.requests(None, false, None, REQUESTS_MAX)?.into_iter().filter(|r| r.at >= now - DAY_MS).collect();
        let mut runs = Vec::new();
        for e in &self.entities {
            runs.extend(self.runs_of(&e.key, RUNS_PER_ENTITY)?);
        }
        let events = self.recent_events(500);
        let log_dir = self.log_dir();
        let mut log_lines = crate::logfile::recent_lines(&log_dir, LOG_LINES);
        if log_lines.is_empty() {
            log_lines = format!("(no log file in {}: the agent and the desktop app write one there)\n", log_dir.display());
        }
        let mut verifies = Vec::new();
        for e in &self.entities {
            if let Some(v) = self.last_verify_of(&e.key)? {
                verifies.push(v);
            }
        }
        let warnings = self.config_warnings().to_vec();

        // SUMMARY.md: what is wrong, in plain words, first.
        let mut s = String::new();
        s.push_str(&format!("# Syncmon diagnostics\n\nMade {} by syncmon {} on {}.\n\n", when(now), env!("CARGO_PKG_VERSION"), os_description()));
        // The entities whose row the Overview colours amber or red (the verdict's rule).
        let bad: Vec<_> = status.iter().filter(|e| e.tone().rank() >= Tone::Warn.rank()).collect();
        s.push_str("## What is wrong\n\n");
        if bad.is_empty() && kinds.is_empty() && warnings.is_empty() {
            s.push_str("Nothing: every entity is healthy, no failed items are pending, the config has no warnings.\n\n");
        }
        for e in &bad {
            s.push_str(&format!("- **{}/{}** is {}", e.connection, e.entity, e.health.as_str()));
            if let Some(r) = &e.reason {
                s.push_str(&format!(": {r}"));
            }
            s.push('\n');
            if let Some(code) = e.last_http_status {
                s.push_str(&format!("  - HTTP status: {code}\n"));
            }
            if let Some(t) = &e.last_tracking_id {
                s.push_str(&format!("  - Trackingid: {t}\n"));
            }
            match e.last_caught_up_at {
                Some(at) => s.push_str(&format!("  - last caught up: {} (since then not in sync)\n", when(at))),
                None => s.push_str("  - never caught up yet\n"),
            }
            match e.next_attempt_at {
                Some(at) => s.push_str(&format!("  - next attempt: {}\n", when(at))),
                None => s.push_str("  - next attempt: at its next poll\n"),
            }
        }
        let open: Vec<_> = status.iter().filter(|e| e.health == Health::CircuitOpen).collect();
        if !open.is_empty() {
            s.push_str(&format!("\nOpen circuits: {}.\n", open.iter().map(|e| format!("{}/{}", e.connection, e.entity)).collect::<Vec<_>>().join(", ")));
        }
        if !kinds.is_empty() {
            s.push_str("\n### Pending failed items by kind\n\n");
            for k in &kinds {
                s.push_str(&format!("- {}: {}\n", k.error_kind, k.count));
            }
        }
        if !warnings.is_empty() {
            s.push_str("\n### Config warnings\n\n");
            for w in &warnings {
                s.push_str(&format!("- `{}`: {}\n", w.key, w.message));
            }
        }
        s.push_str("\n## Every entity\n\n| entity | health | replica rows | pending failed | last caught up | agent |\n|---|---|---|---|---|---|\n");
        for e in &status {
            s.push_str(&format!(
                "| {}/{} | {} | {} | {} | {} | {} |\n",
                e.connection,
                e.entity,
                e.health.as_str(),
                e.replica_rows,
                e.pending_failed,
                e.last_caught_up_at.map(when).unwrap_or_else(|| "never".into()),
                // Several agents on a PostgreSQL replica: which one syncs it ("this" on SQLite).
                e.holder.as_deref().unwrap_or(if self.ctx.store.is_postgres() { "none" } else { "this agent" })
            ));
        }
        if !verifies.is_empty() {
            s.push_str("\n## Last verify\n\n");
            for v in &verifies {
                let r = &v.report;
                s.push_str(&format!(
                    "- **{}** {}: {}; {} source records, {} replica rows; missing {}, stale {}, extra {}\n",
                    r.entity,
                    when(v.finished_at),
                    if v.equal {
                        "the replica equals the source"
                    } else if r.error.is_some() {
                        "could not finish"
                    } else {
                        "the replica differs"
                    },
                    r.source_records,
                    r.replica_rows,
                    r.missing,
                    r.stale,
                    r.extra
                ));
                for (what, ids) in [("missing", &r.missing_ids), ("stale", &r.stale_ids), ("extra", &r.extra_ids)] {
                    if !ids.is_empty() {
                        s.push_str(&format!("  - {what}: {}\n", ids.join(", ")));
                    }
                }
                if let Some(err) = &r.error {
                    s.push_str(&format!("  - error: {err}\n"));
                }
                if let (Some(first), Some(last)) = (&r.first_tracking_id, &r.last_tracking_id) {
                    s.push_str(&format!("  - Trackingids of the reads: first {first}, last {last}\n"));
                }
            }
        }
        s.push_str(&format!(
            "\n## In this bundle\n\n- `status.json` every entity's status\n- `config.toml` the config, secrets redacted\n- `runs.json` recent runs\n\
             - `requests.json` the request log of the last 24 hours ({} calls)\n- `failed_items.jsonl` failed items ({}, payloads {})\n\
             - `activity.json` recent activity\n- `log.txt` recent log lines (the last {LOG_LINES})\n\
             - `verify.json` the last verify of each entity that had one\n- `version.json` versions and OS\n",
            requests.len(),
            failed.len(),
            if opts.include_payloads { "included" } else { "left out" }
        ));

        let config_text = match self.config_path() {
            Some(p) => std::fs::read_to_string(p).map(|t| redact_config_text(&t)).unwrap_or_else(|e| format!("# cannot read {}: {e}", p.display())),
            None => "# no config file (the config was given in code)".into(),
        };
        let mut failed_lines = String::new();
        for f in &failed {
            failed_lines.push_str(&serde_json::to_string(f).map_err(io)?);
            failed_lines.push('\n');
        }
        let pending_count = failed.iter().filter(|f| f.state == FailedState::Pending).count();
        let files: Vec<(&str, String)> = vec![
            ("SUMMARY.md", s),
            (
                "version.json",
                serde_json::to_string_pretty(&serde_json::json!({
                    "syncmon": env!("CARGO_PKG_VERSION"),
                    "os": os_description(),
                    "made_at": when(now),
                    "pending_failed_in_bundle": pending_count,
                }))
                .map_err(io)?,
            ),
            ("config.toml", config_text),
            ("status.json", pretty(&status)?),
            ("runs.json", pretty(&runs)?),
            ("requests.json", pretty(&requests)?),
            ("failed_items.jsonl", failed_lines),
            ("activity.json", pretty(&events)?),
            ("log.txt", log_lines),
            ("verify.json", pretty(&verifies)?),
        ];
        let mut zip = zip::ZipWriter::new(out);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut names = Vec::new();
        for (name, text) in files {
            // A last pass over everything: no URL credential leaves in any file.
            let text = redact::redact_url_text(&text);
            let options = if name == "SUMMARY.md" { options.compression_method(zip::CompressionMethod::Stored) } else { options };
            zip.start_file(name, options).map_err(io)?;
            zip.write_all(text.as_bytes()).map_err(io)?;
            names.push(name.to_string());
        }
        zip.finish().map_err(io)?;
        Ok(DiagnosticsReport { files: names, problems: bad.len() })
    }
}

fn pretty<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(io)
}
