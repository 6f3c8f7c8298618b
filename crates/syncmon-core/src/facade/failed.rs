//! Failed items: listing, replay of their failed stage, discard.

use super::Syncmon;
use crate::error::Result;
use crate::forward;
use crate::record::Rejected;
use crate::retry::FailureClass;
use crate::store::{FailedFilter, FailedItem};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

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

    /// Re-runs the failed stage of pending items. `validate`: with the current record re-fetched
    /// by id where the profile knows its URL, else with the stored payload; an item whose record
    /// the replica already holds in a newer version is resolved as superseded. `deliver`: sends
    /// the record to the target again (see [`forward::replay`]).
    pub async fn replay(&self, ids: &[i64], cancel: &CancellationToken) -> Result<ReplayReport> {
        let mut report = ReplayReport { replayed: 0, superseded: 0, still_failing: 0 };
        for id in ids {
            if cancel.is_cancelled() {
                break;
            }
            let item = self.ctx.store.failed_item(*id)?;
            if item.state != "pending" {
                continue;
            }
            let Some(e) = self.entities.iter().find(|e| e.key.connection == item.connection && e.key.entity == item.entity) else {
                continue;
            };
            if item.stage == "deliver" {
                let outcome = match &e.forward {
                    Some(f) => forward::replay(&self.ctx, &e.key, f, &item, cancel).await?,
                    None => {
                        let rej = Rejected {
                            id: item.record_id.clone(),
                            version: None,
                            payload: item.payload.clone(),
                            kind: "not_forwarded",
                            message: format!("{} forwards to no target any more (no forward_to in the config); discard the item", e.key),
                        };
                        self.ctx.store.replay_failed_again(*id, &rej, None, self.ctx.clock.now_ms())?;
                        forward::Replayed::StillFailing
                    }
                };
                match outcome {
                    forward::Replayed::Replayed => report.replayed += 1,
                    forward::Replayed::Superseded => report.superseded += 1,
                    forward::Replayed::StillFailing => report.still_failing += 1,
                }
                continue;
            }
            let now = self.ctx.clock.now_ms();
            let (payload, tracking) = match item.record_id.as_deref().and_then(|rid| e.profile.record_url(rid)) {
                Some(url) => match e.source.fetch(&url, Some(&e.key.entity), cancel, |f| Ok(String::from_utf8_lossy(&f.body).into_owned()), |_, _, _| {}).await
                {
                    Ok((body, f)) => (body, f.tracking_id),
                    Err(f) if f.class == FailureClass::Config && f.http_status == Some(404) => {
                        // Gone at the source: nothing left to replay.
                        self.ctx.store.replay_failed_again(
                            *id,
                            &Rejected {
                                id: item.record_id.clone(),
                                version: None,
                                payload: item.payload.clone(),
                                kind: "not_found",
                                message: format!("the record no longer exists at the source ({f}); discard the item"),
                            },
                            f.tracking_id.as_deref(),
                            now,
                        )?;
                        report.still_failing += 1;
                        continue;
                    }
                    Err(f) => {
                        self.ctx.store.replay_failed_again(
                            *id,
                            &Rejected {
                                id: item.record_id.clone(),
                                version: None,
                                payload: item.payload.clone(),
                                kind: "fetch_failed",
                                message: f.to_string(),
                            },
                            f.tracking_id.as_deref(),
                            now,
                        )?;
                        report.still_failing += 1;
                        continue;
                    }
                },
                None => (item.payload.clone(), None),
            };
            match e.profile.validate_text(&payload) {
                Ok(record) if e.profile.is_snapshot() => {
                    // No version to compare: written as a snapshot pass writes it (content hash, change number).
                    self.ctx.store.apply_snapshot_replayed(&e.key, &record, *id, now)?;
                    report.replayed += 1;
                }
                Ok(record) => {
                    if self.ctx.store.apply_replayed(&e.key, &record, *id, now)? {
                        report.superseded += 1;
                    } else {
                        report.replayed += 1;
                    }
                }
                Err(rej) => {
                    self.ctx.store.replay_failed_again(*id, &rej, tracking.as_deref(), now)?;
                    report.still_failing += 1;
                }
            }
        }
        Ok(report)
    }

    pub fn discard(&self, ids: &[i64]) -> Result<usize> {
        Ok(self.ctx.store.discard_failed(ids, self.ctx.clock.now_ms())?)
    }

    /// One page of failed items with the number of all that match.
    pub fn failed_page(&self, filter: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        Ok(self.ctx.store.failed_page_with_total(filter, offset, limit)?)
    }
}
