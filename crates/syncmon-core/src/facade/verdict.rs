//! The one health rule: from the entities' status and the last 5 minutes' calls, how everything
//! reads at a glance. The Overview's banner, header cards, sidebar word and row colours (over the
//! RPC's `overview`), the tray icon, the notifications and `syncmon status`'s exit code all read
//! this [`Verdict`], so they never disagree.
//!
//! Every signal has a [`Tone`] and the banner takes the worst of them all, so nothing red or amber
//! sits under a green "Everything is in sync":
//! - an entity: its [`EntityStatus::tone`] (a transient failure inside the retry budget is
//!   retrying, amber; failing and circuit open are red);
//! - the error rate of the last 5 min above 5 %: red while an entity is failing or its circuit is
//!   open (the errors are not being retried away), else amber (the retries absorb them);
//! - p95 above 500 ms: amber (slow, not broken);
//! - pending failed items: amber (records to review; the entities themselves are in sync).

use super::status::thousands;
use super::{EntityStatus, Syncmon};
use crate::error::Result;
use crate::state::{Health, Tone};
use crate::store::RequestStats;
use serde::Serialize;
use std::collections::BTreeMap;

/// Above this share of failed calls over 5 minutes the error rate is an alarm.
pub const ERROR_RATE_ALARM: f64 = 0.05;
/// Above this p95 response time over 5 minutes the source is slow.
pub const P95_ALARM_MS: i64 = 500;
/// The window the metrics cover.
pub const METRICS_WINDOW_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct Verdict {
    /// The worst of every signal: the banner's colour, the tray's icon, `status`'s exit code.
    pub tone: Tone,
    /// Every entity is in sync (failed items to review or paused ones aside).
    pub in_sync: bool,
    /// The banner's sentence: "Everything is in sync", "2 entities need attention", …
    pub title: String,
    pub detail: String,
    /// `connection/entity` of the one retrying entity whose next attempt ends the detail: front
    /// ends add it in local time ("…: next attempt 14:05 (in 20 s)").
    pub next_attempt_of: Option<String>,
    /// The colour of each header card, each by its own signal.
    pub cards: CardTones,
    /// The word of the "Overall health" card and the sidebar.
    pub overall: OverallWord,
    /// `connection/entity` → the entity row's colour.
    pub entities: BTreeMap<String, Tone>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CardTones {
    pub error_rate: Tone,
    pub p95: Tone,
    pub failed: Tone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct OverallWord {
    /// The worst entity's health word, or the metric that is worse ("Calls failing", "Slow source").
    pub label: String,
    pub tone: Tone,
}

impl EntityStatus {
    /// `connection/entity`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.connection, self.entity)
    }

    /// Its row's colour: its health's tone, at least amber while its forwarding is stuck.
    pub fn tone(&self) -> Tone {
        let stuck = if self.forward_error.is_some() { Tone::Warn } else { Tone::Ok };
        self.health.tone().max(stuck)
    }

    /// Needs a human: its health does, or its deliveries to the target are stuck.
    pub fn needs_attention(&self) -> bool {
        self.health.needs_attention() || self.forward_error.is_some()
    }
}

impl Syncmon {
    /// The verdict over `entities` (what [`Syncmon::status`] returned) and the last 5 minutes' calls.
    pub fn verdict(&self, entities: &[EntityStatus]) -> Result<Verdict> {
        let calls = self.request_stats(self.now_ms() - METRICS_WINDOW_MS)?;
        Ok(Verdict::of(entities, Some(&calls)))
    }
}

/// What the banner says before the metrics are weighed.
struct Banner {
    tone: Tone,
    in_sync: bool,
    title: String,
    detail: String,
    next_attempt_of: Option<String>,
}

impl Verdict {
    /// The rule (module docs). `calls`: the request log over the last 5 minutes; None weighs the
    /// entities alone.
    pub fn of(entities: &[EntityStatus], calls: Option<&RequestStats>) -> Verdict {
        let error_alarm = calls.is_some_and(|c| c.error_rate > ERROR_RATE_ALARM);
        let p95_alarm = calls.is_some_and(|c| c.p95_ms.is_some_and(|p| p > P95_ALARM_MS));
        let entity_worst = entities.iter().map(EntityStatus::tone).fold(Tone::Ok, Tone::max);
        let pending_failed: i64 = entities.iter().map(|e| e.pending_failed).sum();
        let cards = CardTones {
            error_rate: match (error_alarm, entity_worst) {
                (false, _) => Tone::Ok,
                (true, Tone::Bad) => Tone::Bad,
                (true, _) => Tone::Warn,
            },
            p95: if p95_alarm { Tone::Warn } else { Tone::Ok },
            failed: if pending_failed > 0 { Tone::Warn } else { Tone::Ok },
        };
        let metric_tone = cards.error_rate.max(cards.p95);
        let mut b = entity_banner(entities);
        if let Some(c) = calls.filter(|_| !entities.is_empty() && metric_tone.rank() > b.tone.rank()) {
            let mut parts = Vec::new();
            if error_alarm {
                parts.push(format!("{} of {} calls failed in the last 5 min", percent(c.error_rate), thousands(c.requests)));
            }
            if p95_alarm {
                parts.push(format!("p95 response {} (over {P95_ALARM_MS} ms)", ms(c.p95_ms.unwrap_or_default())));
            }
            if b.tone != Tone::Ok {
                parts.push(if b.detail.is_empty() { b.title.clone() } else { format!("{}: {}", b.title, b.detail) });
            } else if pending_failed > 0 {
                parts.push(b.detail.clone()); // "3 failed items to review"
            }
            let title = if error_alarm { "Calls to the source are failing" } else { "The source is answering slowly" };
            b = Banner { tone: metric_tone, in_sync: false, title: title.into(), detail: parts.join(" · "), next_attempt_of: None };
        }
        if cards.failed == Tone::Warn && b.tone.rank() < Tone::Warn.rank() {
            // Records to review: the banner is never greener than the card (its detail says so already).
            b.tone = Tone::Warn;
        }
        let worst_health = entities.iter().map(|e| e.health).max_by_key(|h| h.severity()).unwrap_or(Health::Healthy);
        let overall = if metric_tone.rank() > entity_worst.rank() {
            OverallWord { label: if error_alarm { "Calls failing" } else { "Slow source" }.into(), tone: metric_tone }
        } else {
            OverallWord { label: worst_health.title().into(), tone: entity_worst }
        };
        Verdict {
            tone: b.tone,
            in_sync: b.in_sync,
            title: b.title,
            detail: b.detail,
            next_attempt_of: b.next_attempt_of,
            cards,
            overall,
            entities: entities.iter().map(|e| (e.name(), e.tone())).collect(),
        }
    }

    /// Something is failing.
    pub fn is_bad(&self) -> bool {
        self.tone == Tone::Bad
    }
}

/// The banner from the entities alone.
fn entity_banner(entities: &[EntityStatus]) -> Banner {
    let banner = |tone, in_sync, title: String, detail: String| Banner { tone, in_sync, title, detail, next_attempt_of: None };
    if entities.is_empty() {
        return banner(Tone::Info, false, "No entities configured".into(), "Add a connection and its entities on the Connections screen.".into());
    }
    let attention: Vec<&EntityStatus> = entities.iter().filter(|e| e.needs_attention()).collect();
    let retrying: Vec<&EntityStatus> = entities.iter().filter(|e| e.health == Health::Retrying).collect();
    if !attention.is_empty() {
        let tone = if attention.iter().any(|e| e.health.tone() == Tone::Bad) { Tone::Bad } else { Tone::Warn };
        let n = attention.len();
        let title = format!("{n} {} attention", if n == 1 { "entity needs" } else { "entities need" });
        let mut detail = names(&attention);
        if !retrying.is_empty() {
            detail.push_str(&format!(" · {} retrying", retrying.len()));
        }
        return banner(tone, false, title, detail);
    }
    if !retrying.is_empty() {
        let n = retrying.len();
        return Banner {
            tone: Tone::Warn,
            in_sync: false,
            title: format!("Retrying: {n} {}", plural(n, "entity", "entities")),
            detail: format!("{} · a call failed and is tried again by itself", names(&retrying)),
            next_attempt_of: (n == 1).then(|| retrying[0].name()),
        };
    }
    let busy = entities.iter().filter(|e| matches!(e.health, Health::Resyncing | Health::Pending)).count();
    let paused = entities.iter().filter(|e| e.health == Health::Paused).count();
    let failed: i64 = entities.iter().map(|e| e.pending_failed).sum();
    let mut notes = Vec::new();
    if busy > 0 {
        notes.push(format!("{busy} syncing for the first time or resyncing"));
    }
    if paused > 0 {
        notes.push(format!("{paused} paused"));
    }
    if failed > 0 {
        notes.push(format!("{} failed {} to review", thousands(failed), plural(failed as usize, "item", "items")));
    }
    if busy > 0 || paused > 0 {
        let title = if busy > 0 { "Syncing…" } else { "Everything is in sync" };
        return banner(Tone::Info, busy == 0, title.into(), notes.join(" · "));
    }
    let n = entities.len();
    let detail = if notes.is_empty() { format!("{n} {} up to date", plural(n, "entity", "entities")) } else { notes.join(" · ") };
    // Failed items to review turn it amber in `Verdict::of`, after a worse metric had its say.
    banner(Tone::Ok, true, "Everything is in sync".into(), detail)
}

/// "c/a, c/b, c/c and 2 more".
fn names(list: &[&EntityStatus]) -> String {
    let mut s = list.iter().take(3).map(|e| e.name()).collect::<Vec<_>>().join(", ");
    if list.len() > 3 {
        s.push_str(&format!(" and {} more", list.len() - 3));
    }
    s
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// 0.0734 → "7.3 %", 0.12 → "12 %" (as the UI's `percent`).
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{} %", p.round())
    }
}

/// 804 → "804 ms", 1500 → "1.5 s" (as the UI's `ms`).
fn ms(value: i64) -> String {
    if value < 1000 {
        format!("{value} ms")
    } else if value < 10_000 {
        format!("{:.1} s", value as f64 / 1000.0)
    } else if value < 60_000 {
        format!("{} s", (value as f64 / 1000.0).round())
    } else {
        format!("{} min", value / 60_000)
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
