//! `syncmon verify`: reads the whole entity from the source, writing nothing, and compares it
//! with the replica id by id: what the replica lacks, holds at another version, or holds that
//! the source no longer has. Support's answer to "is my copy right?" without touching it.

use super::{EngineCtx, EntityRt};
use crate::events::EventKind;
use crate::retry::Failure;
use crate::rowversion::RowVersion;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tokio_util::sync::CancellationToken;

/// At most this many ids of each kind are named in a report (the counts are exact).
const SAMPLES: usize = 20;

/// The outcome of a verify pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct VerifyReport {
    /// `connection/entity`.
    pub entity: String,
    /// Records the source served.
    pub source_records: u64,
    /// Live rows the replica held when the pass ended.
    pub replica_rows: u64,
    pub pages: u64,
    /// In the source, not (live) in the replica.
    pub missing: u64,
    /// In both, but the replica holds another version (snapshot feeds: other content).
    pub stale: u64,
    /// Live in the replica, no longer served by the source (a full resync would delete them).
    pub extra: u64,
    pub missing_ids: Vec<String>,
    pub stale_ids: Vec<String>,
    pub extra_ids: Vec<String>,
    /// The Trackingids of the pages read, first and last (what the vendor asks for).
    pub first_tracking_id: Option<String>,
    pub last_tracking_id: Option<String>,
    /// Why the pass could not finish; the counts then cover only what was read.
    pub error: Option<Failure>,
}

/// A verify as kept in the store: the entity's last one, shown on the Entity screen and put in
/// the diagnostics bundle.
#[derive(Debug, Clone, Serialize, Deserialize, ts_rs::TS)]
pub struct VerifyResult {
    /// When the pass ended, in milliseconds since 1970.
    pub finished_at: i64,
    /// Whether the replica equals the source (no error, nothing missing, stale or extra).
    pub equal: bool,
    pub report: VerifyReport,
}

impl VerifyReport {
    /// True when the replica equals the source.
    pub fn equal(&self) -> bool {
        self.error.is_none() && self.missing == 0 && self.stale == 0 && self.extra == 0
    }
}

/// Reads the entity from the first page to the last (rate-limited and retried like any read)
/// and compares. The entity's cycle lock is held, so no sync writes the replica meanwhile.
pub async fn verify(ctx: &EngineCtx, e: &EntityRt, cancel: &CancellationToken) -> VerifyReport {
    let _one_at_a_time = e.busy.lock().await;
    let key = &e.key;
    let mut report = VerifyReport { entity: key.to_string(), ..Default::default() };
    let first = e.profile.first_url(&RowVersion::zero());
    let mut url = first.clone();
    let mut visited = HashSet::new();
    // The ids served, to find the replica's extra rows at the end (a set of ids: the one part
    // of a verify that grows with the entity).
    let mut served: HashSet<String> = HashSet::new();
    let snapshot = e.profile.is_snapshot();
    loop {
        if !visited.insert(url.to_string()) {
            report.error = Some(Failure::new(crate::retry::FailureClass::Transient, "the source returned the same next page twice"));
            return report;
        }
        let parse = |f: &crate::source::Fetched| e.profile.parse_page(&f.body, &first, f.link.as_deref());
        let on_retry = |attempt: u32, f: &Failure, wait: std::time::Duration| ctx.emit_retrying(key, attempt, wait, f.message.clone(), f);
        let (page, fetched) = match e.source.fetch(&url, Some(&key.entity), cancel, parse, on_retry).await {
            Ok(p) => p,
            Err(f) => {
                report.error = Some(f);
                return report;
            }
        };
        report.pages += 1;
        report.first_tracking_id = report.first_tracking_id.take().or(fetched.tracking_id.clone());
        report.last_tracking_id = fetched.tracking_id.clone();
        for r in &page.records {
            report.source_records += 1;
            served.insert(r.id.clone());
            match ctx.store.replica_live_row(key, &r.id) {
                Ok(None) => note(&mut report.missing, &mut report.missing_ids, &r.id),
                Ok(Some((version, data))) => {
                    let differs =
                        if snapshot { crate::store::content_hash(&data) != crate::store::content_hash(&r.data) } else { version != r.version.as_str() };
                    if differs {
                        note(&mut report.stale, &mut report.stale_ids, &r.id);
                    }
                }
                Err(err) => {
                    report.error = Some(Failure::new(crate::retry::FailureClass::Config, err.to_string()));
                    return report;
                }
            }
        }
        ctx.events.emit(EventKind::VerifyProgress {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            pages: report.pages,
            records: report.source_records,
            missing: report.missing,
            stale: report.stale,
        });
        match page.next {
            Some(n) => url = n,
            None => break,
        }
    }
    let (mut extra, mut extra_ids, mut live) = (0u64, Vec::new(), 0u64);
    let walked = ctx.store.for_each_replica_row(key, false, |row| {
        live += 1;
        if !served.contains(&row.id) {
            note(&mut extra, &mut extra_ids, &row.id);
        }
        Ok(())
    });
    if let Err(err) = walked {
        report.error = Some(Failure::new(crate::retry::FailureClass::Config, err.to_string()));
    }
    (report.extra, report.extra_ids, report.replica_rows) = (extra, extra_ids, live);
    report
}

fn note(n: &mut u64, ids: &mut Vec<String>, id: &str) {
    *n += 1;
    if ids.len() < SAMPLES {
        ids.push(id.to_string());
    }
}
