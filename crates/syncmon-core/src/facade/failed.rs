//! Failed items: listing, replay of their failed stage, discard.

use super::Syncmon;
use crate::error::{Error, Result};
use crate::replay::{self, Replayed};
use crate::state::{FailedStage, FailedState};
use crate::store::{FailedFilter, FailedItem, RuleCount};
use serde::Serialize;
use std::io::Write;
use tokio_util::sync::CancellationToken;

/// The formats `Syncmon::export_failed` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A header line, then one line per item (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" | "json" | "ndjson" => Some(ExportFormat::Jsonl),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

/// Items read from the store per page while exporting (the export never holds more).
const EXPORT_PAGE: u32 = 500;

const CSV_COLUMNS: &[&str] = &[
    "id",
    "connection",
    "entity",
    "record_id",
    "row_version",
    "stage",
    "error_kind",
    "rule",
    "message",
    "http_status",
    "tracking_id",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "state",
    "payload",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(i: &FailedItem) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let ts = |ms: i64| crate::timestamp::format_rfc3339(ms * 1000);
    let fields = [
        i.id.to_string(),
        i.connection.clone(),
        i.entity.clone(),
        opt(&i.record_id),
        opt(&i.row_version),
        i.stage.as_str().to_string(),
        i.error_kind.clone(),
        opt(&i.rule),
        i.message.clone(),
        i.http_status.map(|s| s.to_string()).unwrap_or_default(),
        opt(&i.tracking_id),
        i.attempts.to_string(),
        ts(i.first_failed_at),
        ts(i.last_failed_at),
        i.state.as_str().to_string(),
        i.payload.clone(),
    ];
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Failed items per error kind under the filter (whatever its `error_kind`), most first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct KindCount {
    pub error_kind: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct ReplayReport {
    pub replayed: usize,
    pub superseded: usize,
    pub still_failing: usize,
}

impl Syncmon {
    pub fn failed_items(&self, filter: &FailedFilter, before_id: Option<i64>, limit: u32) -> Result<Vec<FailedItem>> {
        Ok(self.ctx.store.failed_items(filter, before_id, limit)?)
    }

    pub fn failed_item(&self, id: i64) -> Result<FailedItem> {
        Ok(self.ctx.store.failed_item(id)?)
    }

    /// The filter with its entity resolved against the config: `NAME` or `CONNECTION/NAME`
    /// becomes `CONNECTION/NAME`; an unknown or ambiguous name is an error. Front ends pass the
    /// filter as the user wrote it through here before they list or act on failed items.
    pub fn failed_filter(&self, filter: FailedFilter) -> Result<FailedFilter> {
        let entity = match filter.entity.as_deref() {
            Some(n) => Some(self.one(n)?.key.to_string()),
            None => None,
        };
        Ok(FailedFilter { entity, ..filter })
    }

    pub fn failed_ids(&self, filter: &FailedFilter) -> Result<Vec<i64>> {
        Ok(self.ctx.store.failed_ids(filter)?)
    }

    /// Re-runs the failed stage of pending items (see [`replay::replay_item`]): `validate`
    /// writes the record to the replica, `deliver` sends it to the target again; an item whose
    /// record went on in a newer version is resolved as superseded.
    pub async fn replay(&self, ids: &[i64], cancel: &CancellationToken) -> Result<ReplayReport> {
        let mut report = ReplayReport { replayed: 0, superseded: 0, still_failing: 0 };
        for id in ids {
            if cancel.is_cancelled() {
                break;
            }
            let item = self.ctx.store.failed_item(*id)?;
            if item.state != FailedState::Pending {
                continue;
            }
            let Some(e) = self.entities.iter().find(|e| e.key.connection == item.connection && e.key.entity == item.entity) else {
                continue;
            };
            match replay::replay_item(&self.ctx, e, &item, cancel).await? {
                Replayed::Replayed => report.replayed += 1,
                Replayed::Superseded => report.superseded += 1,
                Replayed::StillFailing => report.still_failing += 1,
            }
        }
        Ok(report)
    }

    /// Settles a two-way conflict (a failed item of stage `conflict`) by keeping the version of
    /// connection `keep`: it goes to the other system (delivered now), whose own change of the
    /// record is dropped. Returns the delivery pass that took it there.
    pub async fn resolve_conflict(&self, id: i64, keep: &str, cancel: &CancellationToken) -> Result<crate::forward::ForwardReport> {
        let item = self.ctx.store.failed_item(id)?;
        if item.stage != FailedStage::Conflict {
            return Err(Error::Usage(format!("failed item {id} is not a conflict (its stage is `{}`); replay or discard it", item.stage)));
        }
        if item.state != FailedState::Pending {
            return Err(Error::Usage(format!("failed item {id} is already {}; nothing to resolve", item.state)));
        }
        let record_id = item.record_id.clone().ok_or_else(|| Error::Usage(format!("failed item {id} names no record")))?;
        let own = self
            .entities
            .iter()
            .find(|e| e.key.connection == item.connection && e.key.entity == item.entity)
            .ok_or_else(|| Error::NotFound(format!("{}/{} is not in the config any more; discard item {id}", item.connection, item.entity)))?;
        let peer = own.peer(&self.entities).ok_or_else(|| Error::Usage(format!("{} is no longer one side of a two-way pair; discard item {id}", own.key)))?;
        let (winner, loser) = match keep {
            k if k == own.key.connection => (own, peer),
            k if k == peer.key.connection => (peer, own),
            _ => return Err(Error::Usage(format!("--keep takes `{}` or `{}` (the systems of item {id})", own.key.connection, peer.key.connection))),
        };
        let pair = winner.forward.as_ref().and_then(|f| f.pair.as_ref()).expect("a pair's sides forward to each other");
        let loser_fp = self.ctx.store.pair_row(&loser.key, &record_id)?.and_then(|row| crate::two_way::row_fingerprint(&row, pair));
        let policy = crate::two_way::ConflictPolicy::Manual;
        crate::two_way::settle(&self.ctx, &winner.key, &loser.key, &record_id, loser_fp, &policy, keep).await.map_err(Error::Io)?;
        self.ctx.store.conflict_kept(id, self.ctx.clock.now_ms())?;
        let f = winner.forward.as_ref().expect("a pair's sides forward");
        Ok(crate::forward::deliver_pending(&self.ctx, &winner.key, f, cancel).await)
    }

    pub fn discard(&self, ids: &[i64]) -> Result<usize> {
        Ok(self.ctx.store.discard_failed(ids, self.ctx.clock.now_ms())?)
    }

    /// Writes every item matching the filter (newest first, payloads whole) to `out`, reading
    /// the store a page at a time so an export of any size is streamed. Returns the item count.
    /// The same code serves the CLI (`failed export`), syncmon-serve's download and the desktop's save.
    pub fn export_failed(&self, filter: &FailedFilter, format: ExportFormat, out: &mut dyn Write) -> Result<u64> {
        let io = |e: std::io::Error| crate::error::Error::Io(format!("writing the export: {e}"));
        if format == ExportFormat::Csv {
            out.write_all(CSV_COLUMNS.join(",").as_bytes()).map_err(io)?;
            out.write_all(b"\r\n").map_err(io)?;
        }
        let mut before = None;
        let mut n = 0u64;
        loop {
            let page = self.ctx.store.failed_items(filter, before, EXPORT_PAGE)?;
            for item in &page {
                match format {
                    ExportFormat::Csv => out.write_all(csv_line(item).as_bytes()).map_err(io)?,
                    ExportFormat::Jsonl => {
                        serde_json::to_writer(&mut *out, item).map_err(|e| crate::error::Error::Io(format!("writing the export: {e}")))?;
                        out.write_all(b"\n").map_err(io)?;
                    }
                }
                n += 1;
            }
            match page.last() {
                Some(last) if page.len() as u32 == EXPORT_PAGE => before = Some(last.id),
                _ => break,
            }
        }
        out.flush().map_err(io)?;
        Ok(n)
    }

    /// Items per error kind under the filter (ignoring its `error_kind`), most first: the
    /// Failed screen's summary, whose groups filter on click.
    pub fn failed_kind_counts(&self, filter: &FailedFilter) -> Result<Vec<KindCount>> {
        let f = FailedFilter { error_kind: None, ..filter.clone() };
        Ok(self.ctx.store.failed_kind_counts(&f)?.into_iter().map(|(error_kind, count)| KindCount { error_kind, count }).collect())
    }

    /// Items per JSON Schema rule under the filter (whatever its `rule`), most first.
    pub fn failed_rule_counts(&self, filter: &FailedFilter) -> Result<Vec<RuleCount>> {
        Ok(self.ctx.store.failed_rule_counts(filter)?)
    }

    /// One page of failed items with the number of all that match.
    pub fn failed_page(&self, filter: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        Ok(self.ctx.store.failed_page_with_total(filter, offset, limit)?)
    }
}
