//! One cycle of one entity: read the feed from a start version until it ends, applying each page
//! atomically. Fetching (and parsing) the next page overlaps with writing the current one.
//!
//! `run_cycle` is the single pass that `syncmon sync`, the scheduler, nudges and tests all call;
//! the loop that decides *when* to call it lives in `scheduler`.

use crate::config::EntityConfig;
// Re-exported: `engine::EngineCtx` was its home before `context`.
pub use crate::context::EngineCtx;
use crate::events::EventKind;
use crate::forward::{ForwardReport, Forwarder};
use crate::profile::Profile;
use crate::record::Page;
use crate::retry::{Failure, FailureClass};
use crate::rowversion::RowVersion;
use crate::source::SourceClient;
use crate::store::{EntityKey, PageBatch, PassEnd};
use serde::Serialize;
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
    pub fn as_str(&self) -> &'static str {
        match self {
            CycleKind::Incremental => "incremental",
            CycleKind::Lookback => "lookback",
            CycleKind::Resync { .. } => "resync",
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

// Re-exported: `engine::Outcome` was its home before `state`.
pub use crate::state::Outcome;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CycleReport {
    pub connection: String,
    pub entity: String,
    pub kind: &'static str,
    pub outcome: Outcome,
    pub pages: u64,
    pub records: u64,
    pub failed_new: u64,
    pub checkpoint: String,
    pub error: Option<Failure>,
    pub pass: Option<PassEnd>,
    pub duration_ms: u64,
    /// When the next attempt may happen (circuit open, or the source asked to wait).
    pub next_attempt_at: Option<i64>,
    /// The delivery pass to the entity's target that followed the cycle (`sync`, `resync`).
    pub forwarded: Option<ForwardReport>,
}

impl CycleReport {
    /// One line for humans: `retail/items: caught up, 3 pages, 2500 records, checkpoint 1234 (0.4 s)`.
    pub fn summary(&self) -> String {
        let mut s = format!("{}/{}: ", self.connection, self.entity);
        match self.outcome {
            Outcome::CaughtUp => s.push_str("caught up"),
            Outcome::Failed => s.push_str("FAILED"),
            Outcome::Waiting => s.push_str("waiting for the source"),
            Outcome::CircuitOpen => s.push_str("skipped, circuit open"),
            Outcome::GuardTripped => s.push_str("resync STOPPED by the deletion guard"),
            Outcome::Cancelled => s.push_str("stopped"),
        }
        s.push_str(&format!(", {} pages, {} records", self.pages, self.records));
        if self.failed_new > 0 {
            s.push_str(&format!(", {} new failed items", self.failed_new));
        }
        s.push_str(&format!(", checkpoint {} ({:.1} s)", self.checkpoint, self.duration_ms as f64 / 1000.0));
        if let Some(p) = &self.pass {
            if p.guard_tripped {
                s.push_str(&format!(
                    ": it would delete {} of {} rows; check the source, then run `syncmon resync {}/{} --yes` to allow it",
                    p.unseen, p.live_before, self.connection, self.entity
                ));
            } else {
                s.push_str(&format!(", {} deleted", p.deleted));
            }
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        if let Some(f) = &self.forwarded {
            s.push_str(&format!("; {}", f.summary()));
        }
        s
    }
}

/// Records per write transaction at most, when pages queue up behind the writer.
const WRITE_BATCH_RECORDS: usize = 10_000;

/// Pages in a row with no record and no higher version before a cycle is stopped as not
/// advancing (a source that answers `morePages: true` with a fresh key forever).
pub const MAX_PAGES_WITHOUT_PROGRESS: u32 = 50;

/// The next-page URLs a cycle has asked for, as hashes: a URL asked twice means the source is
/// going round in circles. Bounded: past a million pages it starts over (a loop is then still
/// caught by the no-progress count, or at its second turn).
#[derive(Default)]
struct SeenPages(std::collections::HashSet<u64>);

impl SeenPages {
    const MAX: usize = 1 << 20;

    /// False when the URL was seen before in this cycle.
    fn first_visit(&mut self, url: &url::Url) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.as_str().hash(&mut h);
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(h.finish())
    }
}

/// How a next page is named in a message: its page key, or its URL (secrets redacted).
fn describe_next(url: &url::Url) -> String {
    match url.query_pairs().find(|(k, _)| k == "pageKey") {
        Some((_, key)) => format!("pageKey {key}"),
        None => crate::secrets::redact_url(url),
    }
}

/// Why the fetcher ended before the feed did.
enum FetchStop {
    Failed(Failure),
    /// The source is not advancing: `what` it did, on the page with this Trackingid and status.
    Stalled {
        what: String,
        tracking_id: Option<String>,
        http_status: u16,
    },
}

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
        let lookback_ms = e.source.cfg.lookback.as_millis() as i64;
        let kind = cycle_kind(kind, ctx.store.entity(key).ok().and_then(|r| r.lookback_due_at), lookback_ms, now);
        let kind_name = kind.as_str();
        let mut report = CycleReport {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            kind: kind_name,
            outcome: Outcome::CaughtUp,
            pages: 0,
            records: 0,
            failed_new: 0,
            checkpoint: String::new(),
            error: None,
            pass: None,
            duration_ms: 0,
            next_attempt_at: None,
            forwarded: None,
        };

        let open_until = e.source.breaker.lock().unwrap().open_until(now);
        if let Some(until) = open_until {
            let msg = "the circuit is open after repeated failures; the source is not being called until the next attempt";
            let _ = ctx.store.note_skipped(key, Outcome::CircuitOpen, msg, Some(until), now);
            report.outcome = Outcome::CircuitOpen;
            report.next_attempt_at = Some(until);
            report.checkpoint = ctx.store.entity(key).map(|r| r.checkpoint.to_string()).unwrap_or_default();
            return Begun::Ended(report);
        }

        let setup = (|| -> Result<(RowVersion, Option<i64>, i64), String> {
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
            kind: kind_name.into(),
            from: from.to_string(),
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
            let on_retry = |attempt: u32, f: &Failure, wait: std::time::Duration| {
                ctx.events.emit(EventKind::Retrying {
                    connection: key.connection.clone(),
                    entity: key.entity.clone(),
                    attempt,
                    wait_ms: wait.as_millis() as u64,
                    reason: f.message.clone(),
                    http_status: f.http_status,
                    tracking_id: f.tracking_id.clone(),
                });
            };
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
                        run_id,
                        now_ms: now,
                    })
                    .collect();
                let applied = store.apply_pages(&k, &pages);
                drop(pages);
                applied.map(|a| (a, batch))
            })
            .await
            .expect("the page writer does not panic");
            match result {
                Ok((applied, batch)) => {
                    report.failed_new += applied.failed_new as u64;
                    if let Some(f) = e.forward.as_ref().filter(|_| applied.rows_written > 0) {
                        // The changes are in the outbox; delivery overlaps the rest of the cycle.
                        f.nudge.notify_one();
                    }
                    for p in &batch {
                        report.pages += 1;
                        report.records += (p.page.records.len() + p.page.rejected.len()) as u64;
                        last_tracking = p.tracking_id.clone();
                        ctx.events.emit(EventKind::PageApplied {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            records: p.page.records.len(),
                            failed: p.page.rejected.len(),
                            checkpoint: p.page.max_version.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                        });
                    }
                    if applied.failed_new > 0 {
                        ctx.events.emit(EventKind::FailedItemsAdded {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            count: applied.failed_new,
                        });
                    }
                    if self.pass.is_some() {
                        ctx.events.emit(EventKind::ResyncProgress {
                            connection: key.connection.clone(),
                            entity: key.entity.clone(),
                            seen: report.records as i64,
                            expected: self.expected,
                        });
                    }
                }
                Err(err) => {
                    failure = Some(Failure {
                        class: FailureClass::Config,
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

    /// Why the fetcher ended early, as a failure (a stall names the checkpoint reached).
    fn fetch_failure(&self, fetched: Result<(), FetchStop>) -> Option<Failure> {
        match fetched {
            Ok(()) => None,
            Err(FetchStop::Failed(f)) => Some(f),
            Err(FetchStop::Stalled { what, tracking_id, http_status }) => {
                let checkpoint = self.ctx.store.entity(&self.e.key).map(|r| r.checkpoint.to_string()).unwrap_or_default();
                let tid = tracking_id.as_deref().unwrap_or("of the last page");
                Some(Failure {
                    class: FailureClass::Config,
                    message: format!(
                        "{what}: it is not advancing; the cycle stopped at the last good page, checkpoint {checkpoint}; report the Trackingid {tid} to the source's owner"
                    ),
                    http_status: Some(http_status),
                    tracking_id,
                    retry_after: None,
                })
            }
        }
    }

    /// Ends the cycle: the outcome (and a resync pass's end), the breaker, the run record, the
    /// next lookback sweep, the waiting state, the closing event and the log line.
    fn finish(&self, mut report: CycleReport, failure: Option<Failure>, last_tracking: Option<String>, started: std::time::Instant) -> CycleReport {
        let now = self.ctx.clock.now_ms();
        self.settle(&mut report, failure, now);
        self.update_breaker(&mut report, now);
        let (error_text, tracking) = self.record_run(&report, last_tracking, now);
        self.announce(&mut report, error_text, tracking, started);
        report
    }

    /// The outcome from how the feed read ended; a resync read to its end finishes its pass
    /// (deleting what it did not see, unless the deletion guard stops it).
    fn settle(&self, report: &mut CycleReport, failure: Option<Failure>, now: i64) {
        let (ctx, e, key) = (self.ctx, self.e, &self.e.key);
        match &failure {
            Some(f) if f.class == FailureClass::Cancelled || self.cancel.is_cancelled() => report.outcome = Outcome::Cancelled,
            Some(f) if f.class == FailureClass::RateLimited && f.retry_after.is_some_and(|w| w > crate::source::LONGEST_WAIT_IN_CYCLE) => {
                report.outcome = Outcome::Waiting;
                let wait_ms = f.retry_after.unwrap_or_default().as_millis().min(i64::MAX as u128 / 2) as i64;
                report.next_attempt_at = Some(now.saturating_add(wait_ms));
            }
            Some(_) => report.outcome = Outcome::Failed,
            None => {
                if let (Some(pass), CycleKind::Resync { allow_deletions }) = (self.pass, self.kind) {
                    match ctx.store.resync_finish(key, pass, e.cfg.deletion_guard, allow_deletions, now) {
                        Ok(end) => {
                            if let Some(f) = e.forward.as_ref().filter(|_| end.deleted > 0) {
                                f.nudge.notify_one();
                            }
                            if end.guard_tripped {
                                report.outcome = Outcome::GuardTripped;
                                ctx.events.emit(EventKind::DeletionGuardTripped {
                                    connection: key.connection.clone(),
                                    entity: key.entity.clone(),
                                    would_delete: end.unseen,
                                    live: end.live_before,
                                });
                            }
                            report.pass = Some(end);
                        }
                        Err(err) => {
                            report.outcome = Outcome::Failed;
                            report.error = Some(Failure {
                                class: FailureClass::Config,
                                message: err.to_string(),
                                http_status: None,
                                tracking_id: None,
                                retry_after: None,
                            });
                        }
                    }
                }
            }
        }
        if report.error.is_none() {
            report.error = failure.filter(|f| f.class != FailureClass::Cancelled);
        }
    }

    /// The breaker counts failed cycles of the connection; a success closes it.
    fn update_breaker(&self, report: &mut CycleReport, now: i64) {
        let key = &self.e.key;
        let mut breaker = self.e.source.breaker.lock().unwrap();
        match report.outcome {
            Outcome::Failed if report.error.as_ref().is_some_and(|f| f.class == FailureClass::Transient) => {
                if let Some(until) = breaker.record_failure(now) {
                    report.next_attempt_at = Some(until);
                    self.ctx.events.emit(EventKind::CircuitOpened {
                        connection: key.connection.clone(),
                        until,
                        error: report.error.as_ref().map(|f| f.to_string()).unwrap_or_default(),
                    });
                }
            }
            Outcome::CaughtUp | Outcome::GuardTripped if breaker.record_success() => {
                self.ctx.events.emit(EventKind::CircuitClosed { connection: key.connection.clone() });
            }
            _ => {}
        }
    }

    /// Closes the run in the history, schedules the next lookback sweep after a catch-up, and
    /// keeps a wait (circuit open, `Retry-After`) in the entity's state. Returns the error text
    /// and Trackingid the run was closed with.
    fn record_run(&self, report: &CycleReport, last_tracking: Option<String>, now: i64) -> (Option<String>, Option<String>) {
        let (ctx, e, key) = (self.ctx, self.e, &self.e.key);
        let caught_up = matches!(report.outcome, Outcome::CaughtUp | Outcome::GuardTripped);
        let err = report.error.as_ref();
        let error_text = match (&report.pass, err) {
            (Some(p), None) if p.guard_tripped => Some(format!(
                "the full resync would delete {} of {} rows (more than the {:.0} % guard); check the source, then allow it with `syncmon resync {} --yes`",
                p.unseen,
                p.live_before,
                e.cfg.deletion_guard * 100.0,
                key
            )),
            _ => err.map(|f| f.message.clone()),
        };
        let tracking = err.and_then(|f| f.tracking_id.clone()).or(last_tracking);
        if report.outcome != Outcome::Cancelled || report.pages > 0 {
            if let Err(x) = ctx.store.finish_run(
                key,
                self.run_id,
                report.outcome,
                error_text.as_deref(),
                err.and_then(|f| f.http_status),
                tracking.as_deref(),
                caught_up,
                now,
                ctx.runs_kept,
            ) {
                tracing::warn!(entity = %key, error = %x, "could not record the run");
            }
        }
        if caught_up {
            let swept_from = (self.kind == CycleKind::Lookback).then_some(self.started_at);
            if let Err(x) = ctx.store.schedule_lookback(key, now, self.lookback_ms, swept_from) {
                tracing::warn!(entity = %key, error = %x, "could not schedule the lookback sweep");
            }
        }
        if let Some(until) = report.next_attempt_at {
            let outcome = if report.outcome == Outcome::Waiting { Outcome::Waiting } else { Outcome::Failed };
            let _ = ctx.store.note_skipped(key, outcome, error_text.as_deref().unwrap_or(""), Some(until), now);
        }
        (error_text, tracking)
    }

    /// The final checkpoint and duration into the report, the closing event, and the log line.
    fn announce(&self, report: &mut CycleReport, error_text: Option<String>, tracking: Option<String>, started: std::time::Instant) {
        let (ctx, key) = (self.ctx, &self.e.key);
        report.checkpoint = ctx.store.entity(key).map(|r| r.checkpoint.to_string()).unwrap_or_default();
        report.duration_ms = started.elapsed().as_millis() as u64;
        ctx.events.emit(EventKind::CycleFinished {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            outcome: report.outcome,
            records: report.records,
            error: error_text,
            tracking_id: tracking,
        });
        match report.outcome {
            Outcome::Failed | Outcome::GuardTripped | Outcome::Waiting => tracing::warn!("{}", report.summary()),
            // An idle poll that found nothing is not news: 50 entities would log 50 lines a minute.
            _ if report.records == 0 && report.failed_new == 0 => tracing::debug!("{}", report.summary()),
            _ => tracing::info!("{}", report.summary()),
        }
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
