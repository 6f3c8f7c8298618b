//! One cycle of one entity: read the feed from a start version until it ends, applying each page
//! atomically. Fetching (and parsing) the next page overlaps with writing the current one.
//!
//! `run_cycle` is the single pass that `syncmon sync`, the scheduler, nudges and tests all call;
//! the loop that decides *when* to call it lives in `scheduler`.
//!
//! `report` holds what a cycle reports (`Outcome`, `CycleReport`), `guards` how it tells a
//! source that is not advancing, `finish` how a cycle ends.

mod finish;
mod guards;
mod report;
mod verify;

pub use guards::MAX_PAGES_WITHOUT_PROGRESS;
pub(crate) use report::counted;
pub use report::{CycleReport, Outcome};
pub use verify::{verify, VerifyReport, VerifyResult};

use crate::config::EntityConfig;
use guards::{describe_next, FetchStop, SeenPages};
// Re-exported: `engine::EngineCtx` was its home before `context`.
pub use crate::context::EngineCtx;
use crate::events::EventKind;
use crate::forward::Forwarder;
use crate::profile::Profile;
use crate::record::Page;
use crate::retry::{Failure, FailureClass};
use crate::rowversion::RowVersion;
use crate::source::SourceClient;
use crate::state::RunKind;
use crate::store::{EntityKey, PageBatch};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// An entity at run time.
pub struct EntityRt {
    pub key: EntityKey,
    pub cfg: EntityConfig,
    pub source: Arc<SourceClient>,
    pub profile: Profile,
    /// Nudges (webhooks, "Sync now") wake the entity's worker; extra nudges during a cycle
    /// coalesce into one more cycle (Notify keeps a single permit).
    pub nudge: Notify,
    /// One cycle at a time per entity, whoever asks.
    pub busy: tokio::sync::Mutex<()>,
    /// The target the entity forwards its changes to, if any.
    pub forward: Option<Arc<Forwarder>>,
    /// The call that marks synced records at the source (`write_back`), if any.
    pub write_back: Option<Arc<crate::write_back::WriteBack>>,
}

impl EntityRt {
    /// The other side of the entity's two-way pair, among `entities`.
    pub fn peer<'a>(&self, entities: &'a [Arc<EntityRt>]) -> Option<&'a Arc<EntityRt>> {
        let pair = self.forward.as_ref()?.pair.as_ref()?;
        entities.iter().find(|p| p.key == pair.peer)
    }
}

/// One delivery pass of the entity's outbox to its target (None when it forwards nowhere). In a
/// two-way pair the receiving system is polled first, so that a change made there is in its
/// replica before anything is written over it (`two_way.rs`); and when the other side's change
/// won a conflict, its delivery pass follows.
pub async fn deliver(ctx: &EngineCtx, e: &EntityRt, entities: &[Arc<EntityRt>], cancel: &CancellationToken) -> Option<crate::forward::ForwardReport> {
    let f = e.forward.as_ref()?;
    let peer = e.peer(entities);
    if let Some(peer) = peer {
        if ctx.store.outbox_count(&e.key).unwrap_or(0) > 0 {
            run_cycle(ctx, peer, CycleKind::Incremental, cancel).await;
        }
    }
    let report = crate::forward::deliver_pending(ctx, &e.key, f, cancel).await;
    if let Some((peer, pf)) = peer.and_then(|p| Some((p, p.forward.as_ref()?))).filter(|_| report.handed_over > 0) {
        crate::forward::deliver_pending(ctx, &peer.key, pf, cancel).await;
    }
    Some(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleKind {
    /// Reads strictly after the checkpoint; becomes a [`CycleKind::Lookback`] sweep when one is
    /// due (see [`cycle_kind`]), so every caller (agent, `sync`, nudges) sweeps on schedule.
    Incremental,
    /// A lookback sweep (DESIGN §2.5): re-reads from the checkpoint that was current at the
    /// entity's lookback anchor, to pick up late commits below what polls already read.
    Lookback,
    /// A full resync pass (resumes an interrupted one).
    Resync { allow_deletions: bool },
}

impl CycleKind {
    /// The run kind in the runs table, reports and events.
    pub fn run_kind(&self) -> RunKind {
        match self {
            CycleKind::Incremental => RunKind::Incremental,
            CycleKind::Lookback => RunKind::Lookback,
            CycleKind::Resync { .. } => RunKind::Resync,
        }
    }
}

/// What an incremental cycle actually is: a lookback sweep once one is due (sweeps enabled,
/// `lookback_due_at` reached), else a plain poll. The one place that decides. A due time more
/// than a lookback ahead means the clock was set back: sweep now rather than wait for it.
pub fn cycle_kind(kind: CycleKind, due_at: Option<i64>, lookback_ms: i64, now_ms: i64) -> CycleKind {
    match (kind, due_at) {
        (CycleKind::Incremental, Some(due)) if lookback_ms > 0 && (due <= now_ms || due > now_ms + lookback_ms) => CycleKind::Lookback,
        (k, _) => k,
    }
}
/// Records per write transaction at most, when pages queue up behind the writer.
const WRITE_BATCH_RECORDS: usize = 10_000;

struct ParsedPage {
    page: Page,
    tracking_id: Option<String>,
    status: u16,
}

/// Runs one cycle. Never panics on source trouble: every failure ends up in the report, the
/// entity's state and the run history.
///
/// The protocol, step by step: `begin` (circuit check, start version, run opened), then the
/// feed read page by page — `fetch_pages` fetches and parses the next page while `write_pages`
/// applies the current one, each page with its checkpoint in one transaction — and `finish`
/// (resync pass end, breaker, run closed, lookback schedule, events).
pub async fn run_cycle(ctx: &EngineCtx, e: &EntityRt, kind: CycleKind, cancel: &CancellationToken) -> CycleReport {
    let _one_at_a_time = e.busy.lock().await;
    let started = std::time::Instant::now();
    let (cycle, mut report) = match Cycle::begin(ctx, e, kind, cancel) {
        Begun::Running(cycle, report) => (cycle, report),
        Begun::Ended(report) => return report,
    };
    // Pages in feed order through a small channel, so the next page is fetched and parsed while
    // the current one is written. Room for one write batch plus the pages being fetched
    // meanwhile: memory stays bounded by records, not by the size of the feed.
    let (tx, rx) = mpsc::channel::<ParsedPage>((WRITE_BATCH_RECORDS / e.cfg.page_size.max(1) as usize).max(2));
    let (fetched, written) = tokio::join!(cycle.fetch_pages(tx), cycle.write_pages(rx, &mut report));
    // Read after the writer is done, so a stall names the checkpoint the good pages reached.
    let failure = written.failure.or(cycle.fetch_failure(fetched));
    cycle.finish(report, failure, written.last_tracking, started)
}

/// One cycle under way: what `begin` decided, read by every step after it.
struct Cycle<'a> {
    ctx: &'a EngineCtx,
    e: &'a EntityRt,
    cancel: &'a CancellationToken,
    kind: CycleKind,
    /// Clock time at the start (a lookback sweep covers the changes committed before it).
    started_at: i64,
    lookback_ms: i64,
    /// The feed is read strictly after this version.
    from: RowVersion,
    /// For a resync: the pass under way, and the replica's row count when it began.
    pass: Option<i64>,
    expected: i64,
    run_id: i64,
}

enum Begun<'a> {
    Running(Cycle<'a>, CycleReport),
    /// The cycle ended before reading the feed (circuit open, or the store could not start it).
    Ended(CycleReport),
}

/// What the writer leaves behind.
struct Written {
    failure: Option<Failure>,
    /// The Trackingid of the last page applied.
    last_tracking: Option<String>,
}

impl<'a> Cycle<'a> {
    /// Decides the kind (a poll may be a due lookback sweep), checks the circuit, chooses where to
    /// start (checkpoint, the checkpoint at the lookback anchor, or the resync cursor) and opens
    /// the run.
    fn begin(ctx: &'a EngineCtx, e: &'a EntityRt, kind: CycleKind, cancel: &'a CancellationToken) -> Begun<'a> {
        let key = &e.key;
        let now = ctx.clock.now_ms();
        // A snapshot pass reads everything every time: there is nothing late to sweep for.
        let lookback_ms = if e.profile.is_snapshot() { 0 } else { e.source.cfg.lookback.as_millis() as i64 };
        let kind = cycle_kind(kind, ctx.store.entity(key).ok().and_then(|r| r.lookback_due_at), lookback_ms, now);
        let kind_name = kind.run_kind();
        let mut report = CycleReport {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            kind: kind_name,
            outcome: Outcome::CaughtUp,
            pages: 0,
            records: 0,
            failed_new: 0,
            checkpoint: String::new(),
            checkpoint_display: String::new(),
            error: None,
            pass: None,
            duration_ms: 0,
            next_attempt_at: None,
            forwarded: None,
            write_back: None,
            changed: e.profile.is_snapshot().then_some(0),
        };

        let open_until = e.source.breaker.lock().unwrap().open_until(now);
        if let Some(until) = open_until {
            let msg = "the circuit is open after repeated failures; the source is not being called until the next attempt";
            let _ = ctx.store.note_skipped(key, Outcome::CircuitOpen, msg, Some(until), now);
            report.outcome = Outcome::CircuitOpen;
            report.next_attempt_at = Some(until);
            if let Ok(row) = ctx.store.entity(key) {
                report.checkpoint = row.checkpoint.to_string();
                report.checkpoint_display = e.profile.display_version(&row.checkpoint);
            }
            return Begun::Ended(report);
        }

        let setup = (|| -> Result<(RowVersion, Option<i64>, i64), String> {
            if e.profile.is_snapshot() {
                // Every cycle of a snapshot feed is a whole pass from the first page, whatever asked for it.
                let expected = ctx.store.replica_count(key).map_err(|x| x.to_string())?;
                ctx.store.snapshot_begin(key).map_err(|x| x.to_string())?;
                return Ok((RowVersion::zero(), None, expected));
            }
            Ok(match kind {
                CycleKind::Incremental => (ctx.store.entity(key).map_err(|x| x.to_string())?.checkpoint, None, 0),
                CycleKind::Lookback => {
                    let anchor = ctx.store.entity(key).map_err(|x| x.to_string())?.lookback_anchor_at;
                    (ctx.store.checkpoint_at(key, anchor).map_err(|x| x.to_string())?, None, 0)
                }
                CycleKind::Resync { .. } => {
                    let expected = ctx.store.replica_count(key).map_err(|x| x.to_string())?;
                    let (pass, cursor) = ctx.store.resync_begin(key).map_err(|x| x.to_string())?;
                    (cursor, Some(pass), expected)
                }
            })
        })();
        let (from, pass, expected) = match setup {
            Ok(s) => s,
            Err(msg) => {
                report.outcome = Outcome::Failed;
                report.error = Some(Failure { class: FailureClass::Config, message: msg, http_status: None, tracking_id: None, retry_after: None });
                return Begun::Ended(report);
            }
        };
        let run_id = match ctx.store.begin_run(key, kind_name, now) {
            Ok(id) => id,
            Err(err) => {
                report.outcome = Outcome::Failed;
                report.error = Some(Failure { class: FailureClass::Config, message: err.to_string(), http_status: None, tracking_id: None, retry_after: None });
                return Begun::Ended(report);
            }
        };
        ctx.events.emit(EventKind::CycleStarted {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            kind: kind_name,
            from: e.profile.display_version(&from),
        });
        let cycle = Cycle { ctx, e, cancel, kind, started_at: now, lookback_ms, from, pass, expected, run_id };
        Begun::Running(cycle, report)
    }

    /// The fetcher: follows the feed from `from` and sends each parsed page to the writer. Stops
    /// at the end of the feed, on a failure, or when the source is not advancing (a next page
    /// asked for before, or a long run of pages that bring nothing).
    async fn fetch_pages(&self, tx: mpsc::Sender<ParsedPage>) -> Result<(), FetchStop> {
        // `tx` is owned here so that the channel closes when the fetcher ends and the writer's
        // loop stops.
        let (ctx, e, key, cancel) = (self.ctx, self.e, &self.e.key, self.cancel);
        let first = e.profile.first_url(&self.from);
        let mut url = first.clone();
        let mut seen = SeenPages::default();
        seen.first_visit(&url);
        let mut best = self.from.clone();
        let mut without_progress = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(FetchStop::Failed(Failure {
                    class: FailureClass::Cancelled,
                    message: "stopped".into(),
                    http_status: None,
                    tracking_id: None,
                    retry_after: None,
                }));
            }
            let on_retry = |attempt: u32, f: &Failure, wait: std::time::Duration| ctx.emit_retrying(key, attempt, wait, f.message.clone(), f);
            let parse = |f: &crate::source::Fetched| e.profile.parse_page(&f.body, &first, f.link.as_deref());
            let (page, fetched) = e.source.fetch(&url, Some(&key.entity), cancel, parse, on_retry).await.map_err(FetchStop::Failed)?;
            let next = page.next.clone();
            // A page that points back to a page already asked for, or the last of a long run of
            // pages that bring nothing, is not applied: the checkpoint stays at the last good page.
            let advanced = !page.records.is_empty() || !page.rejected.is_empty() || page.max_version.as_ref().is_some_and(|v| *v > best);
            without_progress = if advanced { 0 } else { without_progress + 1 };
            if let Some(v) = page.max_version.as_ref().filter(|v| **v > best) {
                best = v.clone();
            }
            let stalled = match &next {
                Some(n) if !seen.first_visit(n) => Some(format!("the source returned the same next page twice ({})", describe_next(n))),
                Some(_) if without_progress >= MAX_PAGES_WITHOUT_PROGRESS => {
                    Some(format!("the source returned {MAX_PAGES_WITHOUT_PROGRESS} pages in a row with no record and no higher version"))
                }
                _ => None,
            };
            if let Some(what) = stalled {
                return Err(FetchStop::Stalled { what, tracking_id: fetched.tracking_id, http_status: fetched.status });
            }
            if tx.send(ParsedPage { page, tracking_id: fetched.tracking_id, status: fetched.status }).await.is_err() {
                return Ok(()); // the writer stopped; it reports why
            }
            match next {
                Some(n) => url = n,
                None => return Ok(()),
            }
        }
    }

    /// The writer: applies the pages as they come, each with its checkpoint (and resync cursor)
    /// in the same transaction, and counts them into the report.
    async fn write_pages(&self, rx: mpsc::Receiver<ParsedPage>, report: &mut CycleReport) -> Written {
        // `rx` is owned here so that a writer that stops early unblocks the fetcher's `send`.
        let (ctx, e, key) = (self.ctx, self.e, &self.e.key);
        let mut rx = rx;
        let mut failure: Option<Failure> = None;
        let mut last_tracking: Option<String> = None;
        // Records read in a resync pass, unchanged ones too: its progress.
        let mut seen = 0u64;
        while let Some(first) = rx.recv().await {
            // Pages already waiting join this transaction (up to WRITE_BATCH_RECORDS): one commit
            // per ~10 pages instead of per page is most of the storage speed, and the checkpoint
            // stays exact because it commits with exactly the rows it covers.
            let mut batch = vec![first];
            let mut queued = batch[0].page.records.len();
            while queued < WRITE_BATCH_RECORDS {
                match rx.try_recv() {
                    Ok(p) => {
                        queued += p.page.records.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let store = ctx.store.clone();
            let k = key.clone();
            let now = ctx.clock.now_ms();
            let in_resync = self.pass.is_some();
            let snapshot = e.profile.is_snapshot();
            let rereads_checkpoint = e.profile.rereads_checkpoint();
            let run_id = self.run_id;
            let result = tokio::task::spawn_blocking(move || {
                let pages: Vec<PageBatch> = batch
                    .iter()
                    .map(|p| PageBatch {
                        records: &p.page.records,
                        rejected: &p.page.rejected,
                        tracking_id: p.tracking_id.as_deref(),
                        http_status: Some(p.status),
                        max_version: p.page.max_version.as_ref(),
                        resync_cursor: if in_resync { p.page.max_version.as_ref() } else { None },
                        rereads_checkpoint,
                        run_id,
                        now_ms: now,
                    })
                    .collect();
                let applied = if snapshot { store.apply_snapshot_pages(&k, &pages) } else { store.apply_pages(&k, &pages) };
                drop(pages);
                applied.map(|a| (a, batch))
            })
            .await
            .expect("the page writer does not panic");
            match result {
                Ok((applied, batch)) => {
                    report.failed_new += applied.failed_new as u64;
                    if snapshot {
                        *report.changed.get_or_insert(0) += applied.rows_written as u64;
                    }
                    if let Some(f) = e.forward.as_ref().filter(|_| applied.rows_written > 0) {
                        // The changes are in the outbox; delivery overlaps the rest of the cycle.
                        f.nudge.notify_one();
                    }
                    let mut read = 0u64;
                    for p in &batch {
                        report.pages += 1;
                        read += (p.page.records.len() + p.page.rejected.len()) as u64;
                        last_tracking = p.tracking_id.clone();
                        ctx.events.emit(EventKind::PageApplied {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            records: p.page.records.len(),
                            failed: p.page.rejected.len(),
                            checkpoint: p.page.max_version.as_ref().map(|v| e.profile.display_version(v)).unwrap_or_default(),
                        });
                    }
                    // Records read again unchanged (a timestamp feed's checkpoint) are not news.
                    report.records += read.saturating_sub(applied.unchanged as u64);
                    seen += read;
                    if applied.failed_new > 0 {
                        ctx.events.emit(EventKind::FailedItemsAdded {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            count: applied.failed_new,
                        });
                    }
                    if self.pass.is_some() || snapshot {
                        // A resync's counts are the whole pass's (as the status says), resumed cycles included.
                        let row = if snapshot { None } else { ctx.store.entity(key).ok() };
                        ctx.events.emit(EventKind::ResyncProgress {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            seen: row.as_ref().map_or(seen as i64, |r| r.resync_seen),
                            expected: self.expected,
                            would_delete: row.and_then(|r| r.resync_would_delete),
                        });
                    }
                }
                Err(err) => {
                    // Another agent took the entity over: this one stops, and that is no failure.
                    let lost = matches!(err, crate::store::StoreError::LeaseLost { .. });
                    failure = Some(Failure {
                        class: if lost { FailureClass::Cancelled } else { FailureClass::Config },
                        message: format!("cannot write the replica: {err}"),
                        http_status: None,
                        tracking_id: last_tracking.clone(),
                        retry_after: None,
                    });
                    break;
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
        }
        Written { failure, last_tracking }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_becomes_a_sweep_once_one_is_due_and_only_then() {
        let (l, now) = (600_000, 10_000_000);
        let kind = |due| cycle_kind(CycleKind::Incremental, due, l, now);
        assert_eq!(kind(None), CycleKind::Incremental, "nothing scheduled before the first catch-up");
        assert_eq!(kind(Some(now + 1)), CycleKind::Incremental);
        assert_eq!(kind(Some(now)), CycleKind::Lookback);
        assert_eq!(kind(Some(now - 1)), CycleKind::Lookback);
        assert_eq!(kind(Some(now + l + 1)), CycleKind::Lookback, "the clock was set back");
        assert_eq!(cycle_kind(CycleKind::Incremental, Some(now - 1), 0, now), CycleKind::Incremental, "lookback = 0s: no sweeps");
        let resync = CycleKind::Resync { allow_deletions: false };
        assert_eq!(cycle_kind(resync, Some(now - 1), l, now), resync, "a resync pass stays one");
    }
}
