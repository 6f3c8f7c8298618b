//! The policy on a fake clock: time is a number the test advances.

use super::*;

const S: i64 = 1000;
const MIN: i64 = 60 * S;

fn status(entity: &str, health: Health) -> EntityStatus {
    EntityStatus {
        connection: "erp".into(),
        entity: entity.into(),
        health,
        reason: (health != Health::Healthy).then(|| "HTTP 503 Service Unavailable".to_string()),
        checkpoint: "0".into(),
        last_complete_pass_at: None,
        checkpoint_kind: syncmon_core::profile::CheckpointKind::Version,
        checkpoint_display: "0".into(),
        last_caught_up_at: None,
        lag_seconds: None,
        replica_rows: 0,
        pending_failed: 0,
        last_http_status: (health != Health::Healthy).then_some(503),
        last_tracking_id: (health != Health::Healthy).then(|| "trk-42".to_string()),
        next_attempt_at: None,
        waits_for_user: false,
        poll_every_seconds: 30,
        resync_seen: None,
        resync_would_delete: None,
        forward_pending: 0,
        forward_error: None,
        holder: None,
    }
}

fn event(kind: EventKind) -> Event {
    Event { seq: 1, at: 0, kind }
}

fn failed_items(entity: &str, count: usize) -> Event {
    event(EventKind::FailedItemsAdded { connection: "erp".into(), entity: entity.into(), count })
}

/// A policy with a 5 min threshold, 5 min quiet time and a 3 s burst window (the defaults).
fn policy() -> Policy {
    Policy::new(PolicyConfig::default())
}

/// Runs the policy from `from` to `to` in one-second steps with the same status, collecting what
/// it shows.
fn run(p: &mut Policy, from: i64, to: i64, st: &[EntityStatus]) -> Vec<Notification> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= to {
        p.on_status(st, t);
        out.extend(p.tick(t));
        t += S;
    }
    out
}

#[test]
fn a_failing_entity_is_told_once_after_the_threshold_with_its_reason_and_trackingid() {
    let mut p = policy();
    let failing = [status("items", Health::Failing)];
    assert!(run(&mut p, 0, 5 * MIN - S, &failing).is_empty(), "nothing before the threshold");
    let shown = run(&mut p, 5 * MIN, 30 * MIN, &failing);
    assert_eq!(shown.len(), 1, "one notification per failing episode, however long it lasts: {shown:?}");
    assert_eq!(shown[0].summary, "erp/items is failing");
    assert!(shown[0].body.contains("HTTP 503") && shown[0].body.contains("trk-42"), "says why: {}", shown[0].body);
    assert_eq!(shown[0].urgency, Urgency::Critical);
    assert_eq!(shown[0].screen, "#/entity/erp/items", "a click opens the entity's screen");
}

#[test]
fn a_retrying_entity_is_not_a_failure_and_is_never_told() {
    let mut p = policy();
    assert!(run(&mut p, 0, 30 * MIN, &[status("items", Health::Retrying)]).is_empty(), "a retry inside the budget is not news");
}

#[test]
fn a_failure_that_clears_before_the_threshold_is_never_told() {
    let mut p = policy();
    assert!(run(&mut p, 0, 4 * MIN, &[status("items", Health::Failing)]).is_empty());
    assert!(run(&mut p, 4 * MIN + S, 20 * MIN, &[status("items", Health::Healthy)]).is_empty(), "no recovery for an untold failure");
    // A new episode starts its own clock.
    assert!(run(&mut p, 20 * MIN + S, 24 * MIN, &[status("items", Health::Failing)]).is_empty());
}

#[test]
fn recovery_is_told_after_a_told_failure_but_not_within_the_quiet_time() {
    let mut p = policy();
    let shown = run(&mut p, 0, 6 * MIN, &[status("items", Health::Failing)]);
    assert_eq!(shown.len(), 1);
    let told_at = 5 * MIN + 3 * S;
    // Recovers one minute after being told: held until the quiet time ends.
    assert!(run(&mut p, 6 * MIN + S, told_at + 5 * MIN - S, &[status("items", Health::Healthy)]).is_empty(), "quiet time");
    let shown = run(&mut p, told_at + 5 * MIN, told_at + 20 * MIN, &[status("items", Health::Healthy)]);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].summary, "erp/items recovered");
    assert_eq!(shown[0].urgency, Urgency::Normal);
}

#[test]
fn a_held_recovery_is_dropped_when_the_entity_fails_again() {
    let mut p = policy();
    assert_eq!(run(&mut p, 0, 6 * MIN, &[status("items", Health::Failing)]).len(), 1);
    run(&mut p, 6 * MIN + S, 7 * MIN, &[status("items", Health::Healthy)]);
    // Failing again before the quiet time ends: neither "recovered" nor a flapping "failing".
    let shown = run(&mut p, 7 * MIN + S, 11 * MIN, &[status("items", Health::Failing)]);
    assert!(shown.is_empty(), "{shown:?}");
}

#[test]
fn a_burst_of_failures_across_entities_is_one_notification() {
    let mut p = Policy::new(PolicyConfig { failing_after: Duration::from_secs(0), ..PolicyConfig::default() });
    p.on_event(&failed_items("items", 3), 0);
    p.on_event(&failed_items("items", 2), 500);
    p.on_event(&failed_items("customers", 1), 1000);
    p.on_event(&event(EventKind::CircuitOpened { connection: "erp".into(), until: 60_000, error: "HTTP 503".into() }), 1500);
    let st = [status("items", Health::Failing), status("customers", Health::CircuitOpen)];
    let shown = run(&mut p, 2000, 10 * MIN, &st);
    assert_eq!(shown.len(), 1, "one notification for the burst: {shown:?}");
    let n = &shown[0];
    assert_eq!(n.summary, "Syncmon: 5 problems", "{n:?}");
    assert!(n.body.contains("erp/items: 5 new failed items"), "counts add up: {}", n.body);
    assert!(n.body.contains("erp/customers: 1 new failed item;"), "{}", n.body);
    assert!(n.body.contains("calls paused after repeated failures (erp/customers, erp/items)"), "names the stopped entities: {}", n.body);
    assert_eq!(n.screen, "#/overview", "several things: the overview");
}

#[test]
fn new_failed_items_open_the_failed_screen_of_the_entity() {
    let mut p = policy();
    p.on_event(&failed_items("items", 2), 0);
    let shown = run(&mut p, 0, MIN, &[status("items", Health::Healthy)]);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].screen, "#/failed?entity=erp%2Fitems");
}

#[test]
fn nothing_is_delivered_while_the_window_has_the_focus() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let focused = Arc::new(AtomicBool::new(true));
    let delivered = Arc::new(AtomicUsize::new(0));
    let deliver = {
        let (f, d) = (focused.clone(), delivered.clone());
        crate::unless_focused(
            move || f.load(Ordering::SeqCst),
            move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            },
        )
    };
    let mut p = policy();
    let n = run(&mut p, 0, 30 * MIN, &[status("items", Health::Failing)]).remove(0);
    deliver(n.clone());
    assert_eq!(delivered.load(Ordering::SeqCst), 0, "focused: not shown");
    focused.store(false, Ordering::SeqCst);
    deliver(n);
    assert_eq!(delivered.load(Ordering::SeqCst), 1, "not focused: shown");
}

#[test]
fn the_circuit_notification_covers_the_entities_it_stops() {
    let mut p = Policy::new(PolicyConfig { failing_after: Duration::from_secs(10), ..PolicyConfig::default() });
    let st = [status("items", Health::CircuitOpen)];
    p.on_status(&st, 0);
    p.on_event(&event(EventKind::CircuitOpened { connection: "erp".into(), until: 60_000, error: "HTTP 503".into() }), 0);
    let shown = run(&mut p, 0, 10 * MIN, &st);
    assert_eq!(shown.len(), 1, "the later threshold adds nothing: {shown:?}");
    assert_eq!(shown[0].summary, "erp: circuit open");
    assert_eq!(shown[0].subjects, vec!["erp".to_string(), "erp/items".to_string()]);
}

#[test]
fn the_circuit_opening_over_an_entity_just_told_failing_adds_nothing() {
    let mut p = Policy::new(PolicyConfig { failing_after: Duration::from_secs(2), ..PolicyConfig::default() });
    let shown = run(&mut p, 0, 10 * S, &[status("items", Health::Failing)]);
    assert_eq!(shown.len(), 1);
    p.on_event(&event(EventKind::CircuitOpened { connection: "erp".into(), until: 20 * MIN, error: "HTTP 503".into() }), 11 * S);
    let shown = run(&mut p, 11 * S, 4 * MIN, &[status("items", Health::CircuitOpen)]);
    assert!(shown.is_empty(), "same burst of trouble: {shown:?}");
}

#[test]
fn failed_items_of_one_entity_are_told_at_most_once_per_quiet_time_and_the_rest_later() {
    let mut p = policy();
    let st = [status("items", Health::Healthy)];
    p.on_event(&failed_items("items", 1), 0);
    let first = run(&mut p, 0, 10 * S, &st);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].summary, "New failed items in erp/items");
    // Every 10 s another poison record for 4 minutes: held.
    let mut shown = Vec::new();
    let mut t = 10 * S;
    while t < 4 * MIN {
        p.on_event(&failed_items("items", 1), t);
        shown.extend(run(&mut p, t, t + 9 * S, &st));
        t += 10 * S;
    }
    assert!(shown.is_empty(), "quiet: {shown:?}");
    let later = run(&mut p, 4 * MIN, 10 * MIN, &st);
    assert_eq!(later.len(), 1, "{later:?}");
    assert!(later[0].body.contains("erp/items: 23 new failed items"), "the held ones in one: {}", later[0].body);
}

#[test]
fn another_entity_is_not_silenced_by_the_quiet_time_of_the_first() {
    let mut p = policy();
    p.on_event(&failed_items("items", 1), 0);
    assert_eq!(run(&mut p, 0, 10 * S, &[]).len(), 1);
    p.on_event(&failed_items("customers", 1), 20 * S);
    let shown = run(&mut p, 20 * S, 30 * S, &[]);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].subjects, vec!["erp/customers".to_string()]);
}

#[test]
fn a_tripped_deletion_guard_is_told() {
    let mut p = policy();
    p.on_event(&event(EventKind::DeletionGuardTripped { connection: "erp".into(), entity: "items".into(), would_delete: 700, live: 1000 }), 0);
    let shown = run(&mut p, 0, 5 * S, &[]);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].summary, "erp/items: resync stopped at the deletion guard");
    assert!(shown[0].body.contains("would delete 700 of 1000 records"), "{}", shown[0].body);
}

#[test]
fn switched_off_nothing_is_shown_and_switching_on_brings_no_flood() {
    let mut p = Policy::new(PolicyConfig { enabled: false, ..PolicyConfig::default() });
    let failing = [status("items", Health::Failing)];
    p.on_event(&failed_items("items", 4), 0);
    assert!(run(&mut p, 0, 10 * MIN, &failing).is_empty());
    p.set_config(PolicyConfig::default());
    assert!(run(&mut p, 10 * MIN + S, 20 * MIN, &failing).is_empty(), "the episode was already under way");
}

#[test]
fn the_config_follows_the_settings_and_the_overrides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = syncmon_core::Config::parse("").expect("empty config");
    let sm = Syncmon::open(config, dir.path()).expect("open");
    let c = config_for(&sm, &Overrides::default());
    let s = syncmon_core::api::Settings::default();
    assert_eq!((c.enabled, c.failing_after), (s.notifications, Duration::from_secs(s.failing_after_seconds)));
    let o = Overrides { failing_after: Some(Duration::from_secs(2)), debounce: Some(Duration::from_secs(60)), burst: None };
    let c = config_for(&sm, &o);
    assert_eq!((c.failing_after, c.debounce, c.burst), (Duration::from_secs(2), Duration::from_secs(60), PolicyConfig::default().burst));
}
