//! Failed items: listing, replay of their failed stage, discard.

use super::Syncmon;
use crate::error::Result;
use crate::replay::{self, Replayed};
use crate::state::FailedState;
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

    pub fn discard(&self, ids: &[i64]) -> Result<usize> {
        Ok(self.ctx.store.discard_failed(ids, self.ctx.clock.now_ms())?)
    }

    /// One page of failed items with the number of all that match.
    pub fn failed_page(&self, filter: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        Ok(self.ctx.store.failed_page_with_total(filter, offset, limit)?)
    }
}
