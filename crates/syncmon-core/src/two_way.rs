//! Two-way flows: connection `a` forwards entity `items` to `b` and connection `b` forwards
//! `items` back to `a` (a `[[target]]` whose id is a connection's id is that connection's
//! system). The store keeps, per system and record, the fingerprint of what that system held when
//! both were last level (`store/two_way.rs`); with it:
//!
//! - Syncmon's own writes coming back through the other system's feed are not sent again
//!   (checked where pages are applied), so the flow converges and goes quiet;
//! - before a change is delivered, the receiving system's replica row is compared with its base
//!   (here): unchanged, the change goes out; already holding the same content, nothing is sent;
//!   changed too, it is a conflict, settled by the entity's `conflict` policy or kept as a failed
//!   item of stage `conflict` holding both versions until someone keeps one.
//!
//! Conflicts are seen between what Syncmon has read of each system, so a delivery first polls the
//! receiving side (`engine::deliver`); a change made there in the instant between that poll and
//! the write is overwritten, as with any target that offers no conditional write.

use crate::context::EngineCtx;
use crate::events::EventKind;
use crate::forward::{blocking, Forwarder};
use crate::store::{fingerprint, EntityKey, OutboxItem, PairRow};

/// What a record changed on both systems ends as (`conflict = …` on the entity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// A failed item of stage `conflict`; `syncmon failed resolve ID --keep <connection>`.
    Manual,
    /// The change Syncmon saw last wins.
    Newest,
    /// That connection's system wins.
    Wins(String),
}

impl ConflictPolicy {
    pub fn parse(text: Option<&str>) -> ConflictPolicy {
        match text {
            None | Some("manual") => ConflictPolicy::Manual,
            Some("newest") => ConflictPolicy::Newest,
            Some(c) => ConflictPolicy::Wins(c.to_string()),
        }
    }

    fn word(&self) -> String {
        match self {
            ConflictPolicy::Manual => "manual".into(),
            ConflictPolicy::Newest => "newest".into(),
            ConflictPolicy::Wins(c) => format!("`{c}` wins"),
        }
    }
}

/// An entity's side of a pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The same entity on the other system's connection.
    pub peer: EntityKey,
    /// Left out of fingerprints: both sides' version fields and the targets' `ignore_fields`.
    pub ignore: Vec<String>,
    pub policy: ConflictPolicy,
}

impl Pair {
    /// Where the pair's conflicts are kept: the side whose connection id sorts first, so a
    /// conflict seen from either direction is one item.
    pub fn conflict_key(&self, own: &EntityKey) -> EntityKey {
        if own.connection <= self.peer.connection {
            own.clone()
        } else {
            self.peer.clone()
        }
    }
}

/// What to do with one queued change of a pair.
pub(crate) enum Check {
    /// Deliver it; afterwards both bases become what was sent.
    Send,
    /// The other system already holds this content: leave the outbox without a call.
    Done,
    /// The other system's change won a conflict: this change is dropped and theirs is queued
    /// in the other entity's outbox (deliver it next).
    Handed,
    /// A conflict kept for a person to settle.
    Conflict { new: bool },
}

/// Compares the receiving system's replica row with its base before `item` is sent.
pub(crate) async fn before_send(ctx: &EngineCtx, key: &EntityKey, f: &Forwarder, pair: &Pair, item: &OutboxItem) -> Result<Check, String> {
    let (Some(data), false) = (item.data.as_deref(), item.is_delete()) else { return Ok(Check::Send) };
    let sent = f.map_body(data);
    let (store, peer, id) = (ctx.store.clone(), pair.peer.clone(), item.record_id.clone());
    let (theirs, their_base) =
        blocking(&store, move |s| Ok::<_, crate::store::StoreError>((s.pair_row(&peer, &id)?, s.two_way_base(&peer.connection, &peer.entity, &id)?)))
            .await
            .map_err(|e| format!("cannot read the other side of the pair: {e}"))?;
    let Some(theirs) = theirs.filter(|t| !t.deleted) else { return Ok(Check::Send) };
    let their_fp = fingerprint(&theirs.data, &pair.ignore);
    if their_fp == fingerprint(&sent, &pair.ignore) {
        level(ctx, key, pair, item, &sent).await?;
        return Ok(Check::Done);
    }
    if their_base == Some(their_fp) {
        return Ok(Check::Send);
    }
    // Both moved since they were last level.
    let own_key = key.clone();
    let ours = {
        let (store, id) = (ctx.store.clone(), item.record_id.clone());
        blocking(&store, move |s| s.pair_row(&own_key, &id)).await.map_err(|e| format!("cannot read the replica: {e}"))?
    };
    let ours_at = ours.as_ref().map_or(i64::MIN, |o| o.updated_at);
    let winner = match &pair.policy {
        ConflictPolicy::Manual => None,
        // Ties go to the other side: it was read after ours (the poll before delivery).
        ConflictPolicy::Newest if ours_at > theirs.updated_at => Some(key.connection.clone()),
        ConflictPolicy::Newest => Some(pair.peer.connection.clone()),
        ConflictPolicy::Wins(c) => Some(c.clone()),
    };
    let now = ctx.clock.now_ms();
    match winner {
        Some(w) if w == key.connection => {
            // Ours wins: their change counts as superseded, ours goes out now.
            settle(ctx, key, &pair.peer, &item.record_id, Some(their_fp), &pair.policy, &w).await?;
            Ok(Check::Send)
        }
        Some(w) => {
            let ours_fp = ours.as_ref().map(|o| fingerprint(&o.data, &pair.ignore));
            settle(ctx, &pair.peer, key, &item.record_id, ours_fp, &pair.policy, &w).await?;
            Ok(Check::Handed)
        }
        None => {
            // Both versions as people compare them: without the fields each system sets itself
            // (its version), which differ always and say nothing.
            let both = serde_json::json!({
                key.connection.clone(): parsed(data, &pair.ignore),
                pair.peer.connection.clone(): parsed(&theirs.data, &pair.ignore),
            });
            let message = format!(
                "changed on both `{}` and `{}` since they were last in step; keep one: syncmon failed resolve <id> --keep {}|{}",
                key.connection, pair.peer.connection, key.connection, pair.peer.connection
            );
            let (store, ck, peer, id, version) =
                (ctx.store.clone(), pair.conflict_key(key), pair.peer.clone(), item.record_id.clone(), item.row_version.clone());
            let other = if ck == *key { peer } else { key.clone() };
            let payload = both.to_string();
            let new = blocking(&store, move |s| s.record_conflict(&ck, &other, &id, &version, &payload, &message, now))
                .await
                .map_err(|e| format!("cannot record the conflict: {e}"))?;
            Ok(Check::Conflict { new })
        }
    }
}

/// After a delivery went through: both systems hold what was sent.
pub(crate) async fn level(ctx: &EngineCtx, key: &EntityKey, pair: &Pair, item: &OutboxItem, sent: &str) -> Result<(), String> {
    let Some(data) = item.data.as_deref() else { return Ok(()) };
    let (ours, theirs) = (fingerprint(data, &pair.ignore), fingerprint(sent, &pair.ignore));
    let (store, own, peer, id) = (ctx.store.clone(), key.connection.clone(), pair.peer.connection.clone(), item.record_id.clone());
    let entity = key.entity.clone();
    blocking(&store, move |s| s.two_way_level(&entity, &id, [(&own, ours), (&peer, theirs)])).await.map_err(|e| format!("cannot record the pair's state: {e}"))
}

/// `winner`'s version of the record is queued for `loser`, whose own change is dropped.
pub(crate) async fn settle(
    ctx: &EngineCtx,
    winner: &EntityKey,
    loser: &EntityKey,
    record_id: &str,
    loser_fp: Option<i64>,
    policy: &ConflictPolicy,
    kept: &str,
) -> Result<bool, String> {
    let now = ctx.clock.now_ms();
    let (store, w, l, id) = (ctx.store.clone(), winner.clone(), loser.clone(), record_id.to_string());
    let queued = blocking(&store, move |s| s.two_way_prefer(&w, &l, &id, loser_fp, now)).await.map_err(|e| format!("cannot settle the conflict: {e}"))?;
    tracing::info!("{winner}: {record_id} changed on both `{}` and `{}`: `{kept}` kept ({})", winner.connection, loser.connection, policy.word());
    ctx.events.emit(EventKind::ConflictSettled {
        connection: winner.connection.clone(),
        entity: winner.entity.clone(),
        record_id: record_id.to_string(),
        kept: kept.to_string(),
        policy: policy.word(),
    });
    Ok(queued)
}

/// The fingerprint of a replica row as the pair compares it.
pub fn row_fingerprint(row: &PairRow, pair: &Pair) -> Option<i64> {
    (!row.deleted).then(|| fingerprint(&row.data, &pair.ignore))
}

fn parsed(data: &str, ignore: &[String]) -> serde_json::Value {
    let mut v = serde_json::from_str(data).unwrap_or_else(|_| serde_json::Value::String(data.to_string()));
    if let serde_json::Value::Object(obj) = &mut v {
        for f in ignore {
            obj.remove(f);
        }
    }
    v
}
