//! The reads: pushed batches, run history, lag history, the Activity log's search, the request log, find, export, statistics, settings.

use super::Syncmon;
use crate::error::{Error, Result};
use crate::store::{self, EntityKey, Found, RequestRow, RunRow};
use std::collections::BTreeMap;

impl Syncmon {
    /// A pushed batch by the correlation id its 202 answered with: state, counts, failed records.
    pub fn ingest_batch(&self, id: &str) -> Result<store::IngestBatch> {
        self.ctx.store.ingest_batch(id.trim())?.ok_or_else(|| {
            Error::NotFound(format!(
                "no pushed batch with id `{}`: use the id that POST /ingest/<connection>/<entity> answered with (applied batches are kept as long as the request log, [storage] request_log_retention)",
                id.trim()
            ))
        })
    }

    pub fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunRow>> {
        Ok(self.ctx.store.runs(&self.one(name)?.key, limit)?)
    }

    pub fn requests(&self, entity: Option<&str>, failed_only: bool, tracking_id: Option<&str>, limit: u32) -> Result<Vec<RequestRow>> {
        let key = match entity {
            Some(n) => Some(self.one(n)?.key.clone()),
            None => None,
        };
        Ok(self.ctx.store.requests(key.as_ref(), failed_only, tracking_id, limit)?)
    }

    /// Everything that carries `query` as a Trackingid, a pushed batch's id or a record id of a
    /// configured entity: calls, runs, failed items, the batch and replica rows (at most 100 of each).
    pub fn find(&self, query: &str) -> Result<Found> {
        let keys: Vec<EntityKey> = self.entities.iter().map(|e| e.key.clone()).collect();
        Ok(self.ctx.store.find(query, &keys, 100)?)
    }

    /// Streams the replica as `{"id","rowVersion","data"}` lines.
    pub fn export(&self, name: &str, include_deleted: bool, out: &mut dyn std::io::Write) -> Result<u64> {
        let e = self.one(name)?;
        self.ctx.store.entity(&e.key)?; // "no entity … in the replica" rather than "no such table"
        let mut n = 0u64;
        self.ctx.store.for_each_replica_row(&e.key, include_deleted, |row| {
            serde_json::to_writer(&mut *out, &row)?;
            out.write_all(b"\n")?;
            n += 1;
            Ok(())
        })?;
        out.flush().map_err(|x| Error::Io(x.to_string()))?;
        Ok(n)
    }

    /// Calls, failures and latency of the request log since `since_ms`.
    pub fn request_stats(&self, since_ms: i64) -> Result<store::RequestStats> {
        Ok(self.ctx.store.request_stats(since_ms)?)
    }

    /// Records received per hour over the last `hours` hours before `now_ms`, oldest first.
    pub fn hourly_changes(&self, now_ms: i64, hours: usize) -> Result<BTreeMap<EntityKey, Vec<i64>>> {
        Ok(self.ctx.store.hourly_changes(now_ms, hours)?)
    }

    pub fn runs_of(&self, key: &EntityKey, limit: u32) -> Result<Vec<RunRow>> {
        Ok(self.ctx.store.runs(key, limit)?)
    }

    /// The entity's lag (now − its last catch-up) over the last 7 days, at most
    /// [`store::LAG_POINTS`] points, oldest first.
    pub fn lag_history(&self, key: &EntityKey) -> Result<Vec<store::LagPoint>> {
        let now = self.now_ms();
        Ok(self.ctx.store.lag_history(key, now - store::LAG_HISTORY_MS, now, store::LAG_POINTS)?)
    }

    /// The newest events matching `q` (the stored Activity log, or this process's when it has
    /// no store), newest first, and whether older ones match too.
    pub fn search_events(&self, q: &store::EventQuery) -> (Vec<crate::Event>, bool) {
        self.ctx.events.search(q)
    }

    pub fn checkpoint_history(&self, key: &EntityKey, since_ms: i64) -> Result<Vec<store::CheckpointPoint>> {
        Ok(self.ctx.store.checkpoint_history(key, since_ms)?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.ctx.store.setting(key)?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        Ok(self.ctx.store.set_setting(key, value)?)
    }
}
