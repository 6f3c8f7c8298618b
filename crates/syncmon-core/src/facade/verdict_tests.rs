//! The rule's cases (ported from the UI's former `health.test.ts`, whose wording the e2e journey checks).

use super::*;
use crate::profile::CheckpointKind;

fn ent(entity: &str, health: Health) -> EntityStatus {
    EntityStatus {
        connection: "c".into(),
        entity: entity.into(),
        health,
        reason: None,
        checkpoint: "1".into(),
        checkpoint_kind: CheckpointKind::Version,
        checkpoint_display: "1".into(),
        last_complete_pass_at: None,
        last_caught_up_at: Some(0),
        lag_seconds: Some(0),
        replica_rows: 0,
        pending_failed: 0,
        last_http_status: None,
        last_tracking_id: None,
        next_attempt_at: None,
        waits_for_user: false,
        poll_every_seconds: 60,
        resync_seen: None,
        resync_would_delete: None,
        forward_pending: 0,
        forward_error: None,
        holder: None,
    }
}

fn with_failed(mut e: EntityStatus, n: i64) -> EntityStatus {
    e.pending_failed = n;
    e
}

fn calls(error_rate: f64, p95_ms: Option<i64>, requests: i64) -> RequestStats {
    RequestStats { requests, failed: (error_rate * requests as f64).round() as i64, error_rate, p95_ms }
}

fn quiet() -> RequestStats {
    calls(0.0, Some(120), 200)
}

fn v(entities: &[EntityStatus]) -> Verdict {
    Verdict::of(entities, Some(&quiet()))
}

#[test]
fn says_everything_is_in_sync_when_all_entities_are_healthy() {
    let r = v(&[ent("a", Health::Healthy), ent("b", Health::Healthy)]);
    assert_eq!((r.tone, r.in_sync, r.title.as_str(), r.detail.as_str()), (Tone::Ok, true, "Everything is in sync", "2 entities up to date"));
    assert_eq!(r.overall, OverallWord { label: "Healthy".into(), tone: Tone::Ok });
    assert_eq!(r.cards, CardTones { error_rate: Tone::Ok, p95: Tone::Ok, failed: Tone::Ok });
}

#[test]
fn counts_the_entities_that_need_attention_and_names_them() {
    let r = v(&[ent("a", Health::Failing), ent("b", Health::Healthy), ent("c", Health::CircuitOpen)]);
    assert_eq!((r.tone, r.in_sync, r.title.as_str(), r.detail.as_str()), (Tone::Bad, false, "2 entities need attention", "c/a, c/c"));
    assert_eq!(r.entities["c/a"], Tone::Bad);
    assert_eq!(r.entities["c/b"], Tone::Ok);
    let lagging = v(&[ent("a", Health::Lagging)]);
    assert_eq!((lagging.tone, lagging.title.as_str()), (Tone::Warn, "1 entity needs attention"));
    let waiting = v(&[ent("a", Health::Waiting), ent("b", Health::Retrying)]);
    assert_eq!((waiting.tone, waiting.detail.as_str()), (Tone::Warn, "c/a · 1 retrying"));
}

#[test]
fn shortens_long_lists_of_names() {
    let all: Vec<EntityStatus> = ["a", "b", "c", "d", "e"].iter().map(|n| ent(n, Health::Failing)).collect();
    assert_eq!(v(&all).detail, "c/a, c/b, c/c and 2 more");
}

#[test]
fn does_not_call_paused_or_resyncing_a_problem_but_mentions_them() {
    let paused = v(&[ent("a", Health::Healthy), ent("b", Health::Paused)]);
    assert_eq!((paused.tone, paused.in_sync, paused.title.as_str(), paused.detail.as_str()), (Tone::Info, true, "Everything is in sync", "1 paused"));
    let resyncing = v(&[ent("a", Health::Resyncing)]);
    assert_eq!((resyncing.tone, resyncing.in_sync, resyncing.title.as_str()), (Tone::Info, false, "Syncing…"));
    assert_eq!(resyncing.entities["c/a"], Tone::Info);
}

#[test]
fn mentions_failed_items_to_review_while_in_sync() {
    let r = v(&[with_failed(ent("a", Health::Healthy), 3)]);
    assert_eq!((r.tone, r.in_sync, r.title.as_str(), r.detail.as_str()), (Tone::Warn, true, "Everything is in sync", "3 failed items to review"));
    assert_eq!(r.cards.failed, Tone::Warn);
    // Paused beside failed items: the banner is never greener than the failed items' card.
    let paused = v(&[with_failed(ent("a", Health::Healthy), 1), ent("b", Health::Paused)]);
    assert_eq!((paused.tone, paused.detail.as_str()), (Tone::Warn, "1 paused · 1 failed item to review"));
}

#[test]
fn counts_an_entity_whose_forwarding_is_stuck_as_needing_attention_without_calling_it_failing() {
    let mut stuck = ent("a", Health::Healthy);
    stuck.forward_error = Some("target circuit open".into());
    stuck.forward_pending = 12;
    let r = v(&[stuck, ent("b", Health::Healthy)]);
    assert_eq!((r.tone, r.in_sync, r.title.as_str(), r.detail.as_str()), (Tone::Warn, false, "1 entity needs attention", "c/a"));
    assert_eq!(r.entities["c/a"], Tone::Warn);
    assert_eq!(r.overall, OverallWord { label: "Healthy".into(), tone: Tone::Warn });
}

#[test]
fn says_what_to_do_when_nothing_is_configured() {
    let r = v(&[]);
    assert_eq!((r.tone, r.title.as_str()), (Tone::Info, "No entities configured"));
}

#[test]
fn turns_the_error_rate_on_above_5_percent_and_p95_above_500_ms() {
    let all = [ent("a", Health::Healthy)];
    let at = Verdict::of(&all, Some(&calls(0.05, Some(500), 10)));
    assert_eq!(at.cards, CardTones { error_rate: Tone::Ok, p95: Tone::Ok, failed: Tone::Ok });
    let over = Verdict::of(&all, Some(&calls(0.051, Some(501), 10)));
    assert_eq!(over.cards, CardTones { error_rate: Tone::Warn, p95: Tone::Warn, failed: Tone::Ok });
    let none = Verdict::of(&all, Some(&calls(0.0, None, 0)));
    assert_eq!(none.cards, CardTones { error_rate: Tone::Ok, p95: Tone::Ok, failed: Tone::Ok });
    assert_eq!(Verdict::of(&all, None).tone, Tone::Ok);
}

#[test]
fn never_says_in_sync_or_healthy_above_an_alarming_error_rate_or_p95() {
    let all = [ent("a", Health::Healthy), ent("b", Health::Healthy)];
    let r = Verdict::of(&all, Some(&calls(0.12, Some(804), 200)));
    assert_eq!((r.tone, r.in_sync, r.title.as_str()), (Tone::Warn, false, "Calls to the source are failing"));
    assert_eq!(r.detail, "12 % of 200 calls failed in the last 5 min · p95 response 804 ms (over 500 ms)");
    assert_eq!(r.cards, CardTones { error_rate: Tone::Warn, p95: Tone::Warn, failed: Tone::Ok });
    assert_eq!(r.overall, OverallWord { label: "Calls failing".into(), tone: Tone::Warn });
    let slow = Verdict::of(&all, Some(&calls(0.0, Some(804), 200)));
    assert_eq!((slow.title.as_str(), slow.overall.label.as_str()), ("The source is answering slowly", "Slow source"));
    let slower = Verdict::of(&all, Some(&calls(0.0, Some(1500), 200)));
    assert_eq!(slower.detail, "p95 response 1.5 s (over 500 ms)");
    // Failed items to review do not hide a slow source, and stay in the words.
    let slow_with_items = Verdict::of(&[with_failed(ent("a", Health::Healthy), 2)], Some(&calls(0.0, Some(804), 200)));
    assert_eq!((slow_with_items.tone, slow_with_items.title.as_str()), (Tone::Warn, "The source is answering slowly"));
    assert_eq!(slow_with_items.detail, "p95 response 804 ms (over 500 ms) · 2 failed items to review");
    // An entity's own problem is kept after the metrics.
    let lagging = Verdict::of(&[ent("a", Health::Lagging)], Some(&calls(0.0, Some(900), 2)));
    assert_eq!(lagging.tone, Tone::Warn);
    assert_eq!(lagging.title, "1 entity needs attention", "the metric is no worse than the entity: the entity's words stay");
}

#[test]
fn colours_a_card_no_worse_than_the_banner_and_red_only_when_the_banner_is_red() {
    let failing = Verdict::of(&[ent("a", Health::Failing)], Some(&calls(0.5, Some(100), 10)));
    assert_eq!(failing.tone, Tone::Bad);
    assert_eq!(failing.cards.error_rate, Tone::Bad);
    assert_eq!(failing.overall, OverallWord { label: "Failing".into(), tone: Tone::Bad });
    for h in [Health::Healthy, Health::Retrying, Health::Lagging, Health::Waiting, Health::Failing, Health::CircuitOpen, Health::Paused, Health::Resyncing] {
        for rate in [0.0, 0.2] {
            for p95 in [100, 900] {
                let r = Verdict::of(&[with_failed(ent("a", h), 1)], Some(&calls(rate, Some(p95), 10)));
                for t in [r.cards.error_rate, r.cards.p95, r.cards.failed, r.overall.tone] {
                    assert!(t.rank() <= r.tone.rank(), "{h} {rate} {p95}: {t} above the banner's {}", r.tone);
                }
                if r.title == "Everything is in sync" {
                    assert_eq!([r.cards.error_rate, r.cards.p95, r.overall.tone], [Tone::Ok; 3], "{h} {rate} {p95}");
                }
            }
        }
    }
}

#[test]
fn reads_one_transient_503_inside_the_retry_budget_as_retrying_not_red() {
    let mut e = ent("items", Health::Retrying);
    e.reason = Some("HTTP 503".into());
    e.last_http_status = Some(503);
    // One 503 among few calls is a high error rate: still amber while the entity retries.
    let r = Verdict::of(&[e.clone(), ent("b", Health::Healthy)], Some(&calls(0.25, Some(100), 4)));
    assert_eq!(r.tone, Tone::Warn);
    assert!(!r.title.contains("attention") && !r.title.contains("in sync"), "{}", r.title);
    assert_eq!(r.cards.error_rate, Tone::Warn);
    assert_eq!(r.overall, OverallWord { label: "Retrying".into(), tone: Tone::Warn });
    let alone = v(&[e]);
    assert_eq!((alone.tone, alone.title.as_str()), (Tone::Warn, "Retrying: 1 entity"));
    assert_eq!(alone.detail, "c/items · a call failed and is tried again by itself");
    assert_eq!(alone.next_attempt_of.as_deref(), Some("c/items"), "front ends add when, in local time");
    let two = v(&[ent("a", Health::Retrying), ent("b", Health::Retrying)]);
    assert_eq!((two.title.as_str(), two.next_attempt_of.as_deref()), ("Retrying: 2 entities", None));
}
