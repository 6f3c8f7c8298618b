//! Failed items: records a stage could not take ([`FailedStage`]), how they
//! are written, filtered, paged, replayed and discarded. `FailedFilter` is the one filter over them.

use super::db::{Db, Row};
use super::{dyn_params, EntityKey, Result, Store, StoreError};
use crate::record::Rejected;
use crate::state::{FailedStage, FailedState, Resolution};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// Items in list pages carry at most this much payload; `failed_item` gives the full one.
pub const LIST_PAYLOAD_CHARS: i64 = 2048;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct FailedItem {
    pub id: i64,
    pub connection: String,
    pub entity: String,
    /// The record's id; None when the record had none that could be read.
    pub record_id: Option<String>,
    /// The record's rowVersion; None when it had none that could be read.
    pub row_version: Option<String>,
    /// The record as received (or as it was to be sent); cut to [`LIST_PAYLOAD_CHARS`] in list pages.
    pub payload: String,
    pub stage: FailedStage,
    /// A short word for the error (`not_json`, `missing_row_version`, …): what the failed list filters by.
    pub error_kind: String,
    pub message: String,
    /// The HTTP status of the refusal, when an answer came.
    pub http_status: Option<u16>,
    pub tracking_id: Option<String>,
    /// How often the record failed while this item was pending (a replay that failed again counts).
    pub attempts: i64,
    /// Milliseconds since 1970.
    pub first_failed_at: i64,
    pub last_failed_at: i64,
    pub state: FailedState,
    /// How it stopped being pending; None while it is.
    pub resolution: Option<Resolution>,
    /// The JSON Schema keyword the record broke (`minimum`, `type`, `required`, …), for items of
    /// error kind `schema`; null otherwise.
    pub rule: Option<String>,
}

/// The failed-items filter of the UI, the CLI and the store's query alike: `entity` is written
/// `connection/entity`. `Syncmon::failed_filter` resolves a bare entity name against the config
/// (the store alone would match it in every connection).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct FailedFilter {
    #[ts(optional = nullable)]
    #[serde(default)]
    pub entity: Option<String>,
    /// Any stage when none.
    #[ts(optional = nullable)]
    #[serde(default)]
    pub stage: Option<FailedStage>,
    #[ts(optional = nullable)]
    #[serde(default)]
    pub error_kind: Option<String>,
    /// Pending items only when none (and `any_state` is not set).
    #[ts(optional = nullable)]
    #[serde(default)]
    pub state: Option<FailedState>,
    /// Items of every state (pending, resolved and discarded); `state` is then ignored.
    #[ts(as = "Option<bool>", optional)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub any_state: bool,
    /// Matches the record id, the `Trackingid` or the message.
    #[ts(optional = nullable)]
    #[serde(default)]
    pub text: Option<String>,
    /// The JSON Schema rule broken (`FailedItem.rule`), e.g. `minimum`.
    #[ts(optional = nullable)]
    #[serde(default)]
    pub rule: Option<String>,
}

/// How many failed items broke one JSON Schema rule: the Failed screen's groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct RuleCount {
    pub rule: String,
    pub count: i64,
}

impl FailedFilter {
    /// `entity` as the columns it matches: `CONNECTION/NAME` both, a bare `NAME` the entity only.
    fn connection_and_entity(&self) -> (Option<String>, Option<String>) {
        match self.entity.as_deref().map(|e| e.split_once('/')) {
            Some(Some((c, e))) => (Some(c.to_string()), Some(e.to_string())),
            Some(None) => (None, self.entity.clone()),
            None => (None, None),
        }
    }
}

impl Store {
    /// Pending failed items of the entity, from the counter the triggers keep exact.
    pub fn pending_failed_count(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_opt("SELECT pending_failed FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?
                .unwrap_or(0))
        })
    }

    /// A page of failed items, newest first, after `before_id` (keyset paging: constant time per page).
    pub fn failed_items(&self, f: &FailedFilter, before_id: Option<i64>, limit: u32) -> Result<Vec<FailedItem>> {
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT * FROM failed_items", before_id, Some(limit));
            Ok(c.query_all(&sql, &dyn_params(&args), failed_row)?)
        })
    }

    pub fn failed_ids(&self, f: &FailedFilter) -> Result<Vec<i64>> {
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT id FROM failed_items", None, None);
            Ok(c.query_all(&sql, &dyn_params(&args), |r| r.get(0))?)
        })
    }

    /// (error kind, count) under the filter, most first.
    pub fn failed_kind_counts(&self, f: &FailedFilter) -> Result<Vec<(String, i64)>> {
        self.read(|c| {
            let (filter, args) = failed_where(f);
            let sql = format!("SELECT error_kind, count(*) AS n FROM failed_items WHERE {filter} GROUP BY error_kind ORDER BY n DESC, error_kind");
            Ok(c.query_all(&sql, &dyn_params(&args), |r| Ok((r.get(0)?, r.get(1)?)))?)
        })
    }

    pub fn failed_item(&self, id: i64) -> Result<FailedItem> {
        self.read(|c| {
            c.query_opt("SELECT * FROM failed_items WHERE id = ?1", params![id], failed_row)?
                .ok_or_else(|| StoreError::NotFound(format!("no failed item {id}; `syncmon failed list` shows them")))
        })
    }

    /// Marks items discarded; returns how many were pending.
    pub fn discard_failed(&self, ids: &[i64], now_ms: i64) -> Result<usize> {
        self.execute_each("UPDATE failed_items SET state = ?3, resolution = ?4, resolved_at = ?1 WHERE id = ?2 AND state = ?5", ids, |st, id| {
            st.execute(params![now_ms, id, FailedState::Discarded, Resolution::Discarded, FailedState::Pending])
        })
    }

    /// A replay that failed again: the item stays pending with one more attempt and the new error.
    pub fn replay_failed_again(&self, failed_id: i64, rej: &Rejected, tracking_id: Option<&str>, now_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE failed_items SET attempts = attempts + 1, last_failed_at = ?1, error_kind = ?2, message = ?3,
                   tracking_id = coalesce(?4, tracking_id), rule = ?6 WHERE id = ?5",
                params![now_ms, rej.kind, rej.message, tracking_id, failed_id, rej.rule.as_deref()],
            )?;
            Ok(())
        })
    }
}

pub(super) fn failed_row(r: &Row<'_>) -> rusqlite::Result<FailedItem> {
    from_columns!(r => FailedItem {
        id, connection, entity, record_id, row_version, payload, stage, error_kind, message, http_status, tracking_id,
        attempts, first_failed_at, last_failed_at, state, resolution, rule
    })
}

pub(super) fn failed_query(f: &FailedFilter, select: &str, before_id: Option<i64>, limit: Option<u32>) -> (String, Vec<rusqlite::types::Value>) {
    let (filter, mut args) = failed_where(f);
    let mut sql = format!("{select} WHERE {filter}");
    if let Some(b) = before_id {
        sql.push_str(" AND id < ?");
        args.push(b.into());
    }
    sql.push_str(" ORDER BY id DESC");
    if let Some(l) = limit {
        sql.push_str(" LIMIT ?");
        args.push((l as i64).into());
    }
    (sql, args)
}

/// The filter as a WHERE condition and its arguments.
fn failed_where(f: &FailedFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if !f.any_state {
        sql.push_str(" AND state = ?");
        args.push(f.state.unwrap_or(FailedState::Pending).as_str().to_string().into());
    }
    let (connection, entity) = f.connection_and_entity();
    let stage = f.stage.map(|s| s.as_str().to_string());
    for (col, val) in [("connection", &connection), ("entity", &entity), ("stage", &stage), ("error_kind", &f.error_kind), ("rule", &f.rule)] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = ?"));
            args.push(v.clone().into());
        }
    }
    if let Some(t) = f.text.as_ref().filter(|t| !t.is_empty()) {
        sql.push_str(" AND (instr(record_id, ?) > 0 OR instr(tracking_id, ?) > 0 OR instr(message, ?) > 0)");
        for _ in 0..3 {
            args.push(t.clone().into());
        }
    }
    (sql, args)
}

impl Store {
    /// A queued record (outbox, write-back queue) that failed for good: its failed item recorded
    /// and its queue row removed by `dequeue` in one transaction, so a
    /// crash between the two neither loses the failure nor sends the record again.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fail_queued(
        &self,
        key: &EntityKey,
        rej: &Rejected,
        stage: FailedStage,
        http_status: Option<u16>,
        tracking_id: Option<&str>,
        now_ms: i64,
        dequeue: impl FnOnce(&Db) -> super::db::DbResult<usize>,
    ) -> Result<bool> {
        self.write(|c| {
            let tx = c.transaction()?;
            let new = record_failure(&tx, key, rej, stage, http_status, tracking_id, now_ms)?;
            dequeue(&tx)?;
            tx.commit()?;
            Ok(new)
        })
    }
}

/// Inserts a failed item, or counts another attempt on the pending one for the same record and
/// stage (a re-read of the same bad record must not pile up duplicates). Returns true when new.
pub(super) fn record_failure(
    tx: &Db,
    key: &EntityKey,
    rej: &Rejected,
    stage: FailedStage,
    http_status: Option<u16>,
    tracking_id: Option<&str>,
    now_ms: i64,
) -> Result<bool> {
    let existing: Option<i64> = match &rej.id {
        Some(id) => tx.query_opt(
            "SELECT id FROM failed_items WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND state = ?5 AND stage = ?4",
            params![key.connection, key.entity, id, stage, FailedState::Pending],
            |r| r.get(0),
        )?,
        None => tx.query_opt(
            "SELECT id FROM failed_items WHERE connection = ?1 AND entity = ?2 AND record_id IS NULL AND state = ?5 AND stage = ?3 AND payload = ?4",
            params![key.connection, key.entity, stage, rej.payload, FailedState::Pending],
            |r| r.get(0),
        )?,
    };
    let version = rej.version.as_ref().map(|v| v.as_str().to_string());
    match existing {
        Some(fid) => {
            tx.execute(
                "UPDATE failed_items SET attempts = attempts + 1, last_failed_at = ?1, payload = ?2, row_version = coalesce(?3, row_version),
                   error_kind = ?4, message = ?5, http_status = ?6, tracking_id = ?7, rule = ?9 WHERE id = ?8",
                params![now_ms, rej.payload, version, rej.kind, rej.message, http_status, tracking_id, fid, rej.rule.as_deref()],
            )?;
            Ok(false)
        }
        None => {
            tx.execute(
                "INSERT INTO failed_items (connection, entity, record_id, row_version, payload, stage, error_kind, message, http_status,
                   tracking_id, first_failed_at, last_failed_at, state, rule) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)",
                params![
                    key.connection,
                    key.entity,
                    rej.id,
                    version,
                    rej.payload,
                    stage,
                    rej.kind,
                    rej.message,
                    http_status,
                    tracking_id,
                    now_ms,
                    FailedState::Pending,
                    rej.rule.as_deref()
                ],
            )?;
            Ok(true)
        }
    }
}

impl Store {
    /// Failed items per entity, stage and state (the metrics' `syncmon_failed_items`): one pass
    /// over the table, only the combinations that exist.
    pub fn failed_counts_by_stage_and_state(&self) -> Result<Vec<(EntityKey, FailedStage, FailedState, i64)>> {
        self.read(|c| {
            Ok(c.query_all(
                "SELECT connection, entity, stage, state, count(*) FROM failed_items GROUP BY connection, entity, stage, state
             ORDER BY connection, entity, stage, state",
                params![],
                |r| Ok((EntityKey::new(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?), r.get(2)?, r.get(3)?, r.get(4)?)),
            )?)
        })
    }
}

impl Store {
    /// How many failed items match the filter.
    pub fn failed_count(&self, f: &FailedFilter) -> Result<i64> {
        self.read(|c| {
            let simple = f.stage.is_none() && f.error_kind.is_none() && f.rule.is_none() && f.text.as_deref().is_none_or(str::is_empty);
            if simple && !f.any_state && f.state.is_none_or(|s| s == FailedState::Pending) {
                // The per-entity counter the triggers keep: no scan of the failed items at all.
                let mut sql = String::from("SELECT coalesce(sum(pending_failed), 0) FROM entity_state WHERE 1 = 1");
                let mut args: Vec<rusqlite::types::Value> = Vec::new();
                let (connection, entity) = f.connection_and_entity();
                for (col, val) in [("connection", &connection), ("entity", &entity)] {
                    if let Some(v) = val {
                        sql.push_str(&format!(" AND {col} = ?"));
                        args.push(v.clone().into());
                    }
                }
                return Ok(c.query_row(&sql, &dyn_params(&args), |r| r.get(0))?);
            }
            // No ORDER BY: a count has no order (and PostgreSQL refuses one beside an aggregate).
            let (filter, args) = failed_where(f);
            Ok(c.query_row(&format!("SELECT count(*) FROM failed_items WHERE {filter}"), &dyn_params(&args), |r| r.get(0))?)
        })
    }

    /// A page of failed items, newest first, by offset, with payloads cut to
    /// `LIST_PAYLOAD_CHARS`. The offset is walked in the index only (the inner query selects ids
    /// from a covering index), so a page near the end costs an index walk, not a table scan.
    pub fn failed_page(&self, f: &FailedFilter, offset: u32, limit: u32) -> Result<Vec<FailedItem>> {
        self.read(|c| {
            let (inner, mut args) = failed_query(f, "SELECT id FROM failed_items", None, Some(limit));
            args.push((offset as i64).into());
            let sql = format!(
                "SELECT id, connection, entity, record_id, row_version, substr(payload, 1, {LIST_PAYLOAD_CHARS}) AS payload, stage,
                   error_kind, message, http_status, tracking_id, attempts, first_failed_at, last_failed_at, state, resolution, rule
                 FROM failed_items WHERE id IN ({inner} OFFSET ?) ORDER BY id DESC"
            );
            Ok(c.query_all(&sql, &dyn_params(&args), failed_row)?)
        })
    }

    /// Items per JSON Schema rule among those the filter matches, whatever its own `rule` (so a
    /// screen filtered to one rule still shows the others), most first. Only items with a rule
    /// are read, through the partial index `failed_items_by_rule`.
    pub fn failed_rule_counts(&self, f: &FailedFilter) -> Result<Vec<RuleCount>> {
        self.read(|c| {
            let (filter, args) = failed_where(&FailedFilter { rule: None, ..f.clone() });
            let sql = format!("SELECT rule, count(*) FROM failed_items WHERE rule IS NOT NULL AND {filter} GROUP BY rule ORDER BY count(*) DESC, rule");
            Ok(c.query_all(&sql, &dyn_params(&args), |r| Ok(RuleCount { rule: r.get(0)?, count: r.get(1)? }))?)
        })
    }

    /// `(total, page)` for the failed-items table. A text search cannot use an index to count, so
    /// it scans once (in the narrow covering text index), counting and keeping the page's ids, and
    /// then reads just those rows; other filters count from counters or indexes.
    pub fn failed_page_with_total(&self, f: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        if f.text.as_deref().is_none_or(str::is_empty) {
            return Ok((self.failed_count(f)?, self.failed_page(f, offset, limit)?));
        }
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT id FROM failed_items", None, None);
            let (mut total, mut ids) = (0i64, Vec::with_capacity(limit as usize));
            // Counted as the rows stream by: nothing is collected (the rows are `()`).
            c.query_all(&sql, &dyn_params(&args), |r| {
                if total >= offset as i64 && ids.len() < limit as usize {
                    ids.push(r.get::<_, i64>(0)?);
                }
                total += 1;
                Ok(())
            })?;
            if ids.is_empty() {
                return Ok((total, Vec::new()));
            }
            let marks = vec!["?"; ids.len()].join(",");
            let sql = format!(
                "SELECT id, connection, entity, record_id, row_version, substr(payload, 1, {LIST_PAYLOAD_CHARS}) AS payload, stage,
                   error_kind, message, http_status, tracking_id, attempts, first_failed_at, last_failed_at, state, resolution, rule
                 FROM failed_items WHERE id IN ({marks}) ORDER BY id DESC"
            );
            let ids: Vec<&dyn rusqlite::ToSql> = ids.iter().map(|id| id as &dyn rusqlite::ToSql).collect();
            let items = c.query_all(&sql, &ids, failed_row)?;
            Ok((total, items))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{apply, setup};
    use super::*;

    fn reject(store: &Store, key: &EntityKey, n: usize, kind: &'static str) {
        let rejected: Vec<Rejected> = (0..n)
            .map(|i| Rejected {
                id: Some(format!("{kind}-{i}")),
                version: None,
                payload: "x".repeat(3000),
                kind,
                message: format!("bad record {i}"),
                rule: None,
            })
            .collect();
        apply(store, key, &[], &rejected);
    }

    #[test]
    fn failed_pages_count_and_cut_payloads() {
        let (_d, store, key) = setup();
        reject(&store, &key, 250, "missing_id");
        reject(&store, &key, 5, "missing_field");
        let all = FailedFilter::default();
        assert_eq!(store.failed_count(&all).unwrap(), 255);
        let page = store.failed_page(&all, 0, 100).unwrap();
        assert_eq!(page.len(), 100);
        assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(page[0].payload.len() as i64, LIST_PAYLOAD_CHARS);
        let last = store.failed_page(&all, 200, 100).unwrap();
        assert_eq!(last.len(), 55);
        let kind = FailedFilter { error_kind: Some("missing_field".into()), ..Default::default() };
        assert_eq!(store.failed_count(&kind).unwrap(), 5);
        let text = FailedFilter { text: Some("bad record 24".into()), ..Default::default() };
        assert_eq!(store.failed_count(&text).unwrap(), 1 + 10, "24 and 240..249 of missing_id, none of the 5 others");
        assert_eq!(store.failed_page(&text, 0, 100).unwrap().len(), 11);
        let (total, page) = store.failed_page_with_total(&text, 5, 4).unwrap();
        assert_eq!((total, page.len()), (11, 4));
        let ids = |items: &[FailedItem]| items.iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(&page), ids(&store.failed_page(&text, 5, 4).unwrap()));
        assert_eq!(store.failed_page_with_total(&text, 20, 4).unwrap().0, 11);
        assert!(store.failed_page_with_total(&text, 20, 4).unwrap().1.is_empty());
        let discarded = FailedFilter { state: Some(FailedState::Discarded), ..Default::default() };
        assert_eq!(store.failed_count(&discarded).unwrap(), 0);
    }

    #[test]
    fn any_state_lists_pending_resolved_and_discarded_alike() {
        let (_d, store, key) = setup();
        reject(&store, &key, 5, "missing_id");
        let pending = FailedFilter::default();
        let ids = store.failed_ids(&pending).unwrap();
        assert_eq!(store.discard_failed(&ids[..2], 10).unwrap(), 2);
        let every = FailedFilter { any_state: true, ..Default::default() };
        assert_eq!(store.failed_count(&pending).unwrap(), 3);
        assert_eq!(store.failed_count(&every).unwrap(), 5);
        let listed = store.failed_page(&every, 0, 100).unwrap();
        let states: Vec<_> = listed.iter().map(|i| i.state).collect();
        assert_eq!(states.iter().filter(|s| **s == FailedState::Discarded).count(), 2, "{states:?}");
        assert_eq!(states.iter().filter(|s| **s == FailedState::Pending).count(), 3, "{states:?}");
        let every_discarded = FailedFilter { any_state: true, state: Some(FailedState::Discarded), ..Default::default() };
        assert_eq!(store.failed_count(&every_discarded).unwrap(), 5, "any_state wins over state");
    }

    #[test]
    fn an_entity_filter_names_the_connection_too() {
        let (_d, store, key) = setup();
        let other = EntityKey::new("other", &key.entity);
        store.ensure_entity(&other).unwrap();
        reject(&store, &key, 3, "missing_id");
        reject(&store, &other, 2, "missing_id");
        let ours = FailedFilter { entity: Some(key.to_string()), ..Default::default() };
        assert_eq!(store.failed_count(&ours).unwrap(), 3, "from the counters");
        assert_eq!(store.failed_ids(&ours).unwrap().len(), 3);
        let theirs = FailedFilter { entity: Some(other.to_string()), error_kind: Some("missing_id".into()), ..Default::default() };
        assert_eq!(store.failed_count(&theirs).unwrap(), 2, "from the items");
        assert!(store.failed_page(&theirs, 0, 10).unwrap().iter().all(|i| i.connection == "other"));
        let bare = FailedFilter { entity: Some(key.entity.clone()), ..Default::default() };
        assert_eq!(store.failed_count(&bare).unwrap(), 5, "a bare name matches it in every connection");
    }

    #[test]
    fn a_stored_word_no_enum_knows_is_an_error_not_a_panic() {
        let (_d, store, key) = setup();
        reject(&store, &key, 1, "missing_id");
        let id = store.failed_items(&FailedFilter::default(), None, 1).unwrap()[0].id;
        assert_eq!(store.failed_item(id).unwrap().stage, FailedStage::Validate, "written and read through the enum");
        store.write(|c| Ok(c.execute("UPDATE failed_items SET stage = 'apply' WHERE id = ?1", params![id])?)).unwrap();
        let e = store.failed_item(id).unwrap_err().to_string();
        assert!(e.contains("failed-item stage `apply` is none of validate, deliver"), "{e}");
    }
}
