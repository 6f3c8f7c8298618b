//! Desktop notifications: when to tell the user, and how often.
//!
//! [`Policy`] is pure: it is fed the engine's events and the entities' status together with the
//! time, and hands back the notifications to show. It never reads a clock, so tests drive it with
//! plain numbers. [`run`] wires it to a running engine and delivers over D-Bus (notify-rust); the
//! desktop app and `syncmon run --notify` both use it.
//!
//! What it tells:
//! - an entity has been failing (or its circuit open) for longer than `failing_after`, once per
//!   failing episode;
//! - new failed items appeared;
//! - a connection's circuit opened (naming the entities it stops);
//! - a full resync stopped at its deletion guard;
//! - recovery, for an entity the user was told was failing.
//!
//! Never a storm: everything that comes up within `burst` of the first problem is shown as one
//! notification, and an entity (or connection) that was the subject of a notification is quiet for
//! `debounce`; what comes up meanwhile is held and shown when the quiet time ends, if it still
//! holds then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use syncmon_core::{EntityStatus, Event, EventKind, Health, Syncmon, Tone};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// The tunables. `enabled` and `failing_after` come from the user's settings (`api::settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConfig {
    pub enabled: bool,
    /// Tell about an entity once it has been failing this long.
    pub failing_after: Duration,
    /// At most one notification per entity (or connection) within this time.
    pub debounce: Duration,
    /// Problems coming up within this time of the first one are shown together.
    pub burst: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { enabled: true, failing_after: Duration::from_secs(300), debounce: Duration::from_secs(300), burst: Duration::from_secs(3) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    Critical,
}

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub summary: String,
    pub body: String,
    pub urgency: Urgency,
    /// What it is about: `connection/entity` or a connection id.
    pub subjects: Vec<String>,
    /// The app's screen about it, as a hash route (`#/entity/src/items`, `#/failed?entity=…`,
    /// `#/overview`): where clicking the notification takes the user.
    pub screen: String,
}

/// Something worth telling, before bursts are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Failing { entity: String, reason: String },
    FailedItems { entity: String, count: usize },
    CircuitOpened { connection: String, error: String },
    GuardTripped { entity: String, would_delete: i64, live: i64 },
    Recovered { entity: String },
}

impl Item {
    /// The debounce key: the entity, or the connection for a circuit.
    fn subject(&self) -> &str {
        match self {
            Item::Failing { entity, .. } | Item::FailedItems { entity, .. } | Item::GuardTripped { entity, .. } | Item::Recovered { entity } => entity,
            Item::CircuitOpened { connection, .. } => connection,
        }
    }

    fn is_problem(&self) -> bool {
        !matches!(self, Item::Recovered { .. })
    }
}

#[derive(Debug, Default)]
struct EntityState {
    connection: String,
    health: Option<Health>,
    reason: Option<String>,
    failing_since: Option<i64>,
    /// The user was told it is failing (this episode).
    told_failing: bool,
}

/// The notification policy. Feed it with [`Policy::on_event`] and [`Policy::on_status`]; call
/// [`Policy::tick`] regularly (every second or so) to collect what is due.
#[derive(Debug)]
pub struct Policy {
    cfg: PolicyConfig,
    entities: BTreeMap<String, EntityState>,
    /// When each subject was last the subject of a notification.
    last_told: BTreeMap<String, i64>,
    /// The current burst, and when it began.
    burst: Vec<Item>,
    burst_since: Option<i64>,
    /// Items of subjects in their quiet time, shown when it ends if they still hold.
    held: Vec<Item>,
}

/// Failing as the Overview's banner and the tray say it: the health's tone is bad (failing or
/// circuit open; retrying inside the budget is not).
fn is_failing(h: Health) -> bool {
    h.tone() == Tone::Bad
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

impl Policy {
    pub fn new(cfg: PolicyConfig) -> Self {
        Policy { cfg, entities: BTreeMap::new(), last_told: BTreeMap::new(), burst: Vec::new(), burst_since: None, held: Vec::new() }
    }

    pub fn config(&self) -> PolicyConfig {
        self.cfg
    }

    /// Settings may change at any time; switching off drops what is waiting.
    pub fn set_config(&mut self, cfg: PolicyConfig) {
        if !cfg.enabled {
            self.burst.clear();
            self.burst_since = None;
            self.held.clear();
        }
        self.cfg = cfg;
    }

    pub fn on_event(&mut self, event: &Event, now: i64) {
        match &event.kind {
            EventKind::FailedItemsAdded { connection, entity, count } if *count > 0 => {
                self.raise(Item::FailedItems { entity: format!("{connection}/{entity}"), count: *count }, now)
            }
            EventKind::CircuitOpened { connection, error, .. } => self.raise(Item::CircuitOpened { connection: connection.clone(), error: error.clone() }, now),
            EventKind::DeletionGuardTripped { connection, entity, would_delete, live } => {
                self.raise(Item::GuardTripped { entity: format!("{connection}/{entity}"), would_delete: *would_delete, live: *live }, now)
            }
            _ => {}
        }
    }

    /// The entities' current status: starts and ends failing episodes.
    pub fn on_status(&mut self, status: &[EntityStatus], now: i64) {
        for s in status {
            let key = format!("{}/{}", s.connection, s.entity);
            let failing_after = ms(self.cfg.failing_after);
            let st = self.entities.entry(key.clone()).or_default();
            st.connection = s.connection.clone();
            st.health = Some(s.health);
            st.reason = s.reason.clone().map(|r| match &s.last_tracking_id {
                Some(t) if !r.contains(t.as_str()) => format!("{r} (Trackingid {t})"),
                _ => r,
            });
            let raise = if is_failing(s.health) {
                let since = *st.failing_since.get_or_insert(now);
                (!st.told_failing && now - since >= failing_after)
                    .then(|| Item::Failing { entity: key, reason: st.reason.clone().unwrap_or_else(|| "the last cycle failed".into()) })
            } else if s.health == Health::Healthy {
                let told = st.told_failing;
                st.failing_since = None;
                st.told_failing = false;
                told.then_some(Item::Recovered { entity: key })
            } else {
                None
            };
            if let Some(item) = raise {
                self.raise(item, now);
            }
        }
    }

    /// The notifications due now: at most one (a burst is one notification).
    pub fn tick(&mut self, now: i64) -> Option<Notification> {
        // Held items whose quiet time is over join a burst if they still hold.
        let (keep, due): (Vec<Item>, Vec<Item>) = std::mem::take(&mut self.held).into_iter().partition(|i| self.is_quiet(i, now));
        self.held = keep;
        for item in due {
            if self.still_holds(&item) {
                self.add_to_burst(item, now);
            }
        }
        let since = self.burst_since?;
        if now - since < ms(self.cfg.burst) {
            return None;
        }
        self.burst_since = None;
        let items: Vec<Item> = std::mem::take(&mut self.burst).into_iter().filter(|i| self.still_holds(i)).collect();
        if items.is_empty() || !self.cfg.enabled {
            return None;
        }
        Some(self.compose(items, now))
    }

    fn raise(&mut self, item: Item, now: i64) {
        if !self.cfg.enabled {
            // Switched off: the episode still counts as told, so switching on brings no flood.
            if let Item::Failing { entity, .. } = &item {
                if let Some(st) = self.entities.get_mut(entity) {
                    st.told_failing = true;
                }
            }
            return;
        }
        if let Item::Failing { entity, .. } = &item {
            if let Some(st) = self.entities.get_mut(entity) {
                st.told_failing = true;
            }
        }
        if self.is_quiet(&item, now) {
            merge_into(&mut self.held, item);
        } else {
            self.add_to_burst(item, now);
        }
    }

    /// Whether the item's subject is in its quiet time.
    fn is_quiet(&self, item: &Item, now: i64) -> bool {
        let told_recently = |subject: &str| self.last_told.get(subject).is_some_and(|t| now - t < ms(self.cfg.debounce));
        if told_recently(item.subject()) {
            return true;
        }
        if let Item::CircuitOpened { connection, .. } = item {
            // The circuit opening over entities the user was just told are failing adds nothing.
            let mut failing = self.entities.iter().filter(|(_, s)| s.connection == *connection && s.health.is_some_and(is_failing)).peekable();
            return failing.peek().is_some() && failing.all(|(k, _)| told_recently(k.as_str()));
        }
        false
    }

    fn add_to_burst(&mut self, item: Item, now: i64) {
        self.burst_since.get_or_insert(now);
        merge_into(&mut self.burst, item);
    }

    /// A held or waiting item is dropped when it no longer describes the state.
    fn still_holds(&self, item: &Item) -> bool {
        let health = |e: &str| self.entities.get(e).and_then(|s| s.health);
        match item {
            Item::Failing { entity, .. } => health(entity).is_none_or(is_failing),
            Item::Recovered { entity } => health(entity).is_none_or(|h| !is_failing(h)),
            Item::CircuitOpened { connection, .. } => {
                let mut of_conn = self.entities.values().filter(|s| s.connection == *connection).peekable();
                of_conn.peek().is_none() || of_conn.any(|s| s.health.is_some_and(is_failing))
            }
            _ => true,
        }
    }

    fn compose(&mut self, items: Vec<Item>, now: i64) -> Notification {
        let mut subjects: BTreeSet<String> = BTreeSet::new();
        let mut lines = Vec::new();
        for item in &items {
            subjects.insert(item.subject().to_string());
            lines.push(match item {
                Item::Failing { entity, reason } => format!("{entity} has been failing for over {}: {reason}", human(self.cfg.failing_after)),
                Item::FailedItems { entity, count } => {
                    format!("{entity}: {count} new failed item{}; review them under Failed items", if *count == 1 { "" } else { "s" })
                }
                Item::CircuitOpened { connection, error } => {
                    // The entities the circuit stops are named, and count as told.
                    let stopped: Vec<String> = self.entities.iter().filter(|(_, s)| s.connection == *connection).map(|(k, _)| k.clone()).collect();
                    for e in &stopped {
                        subjects.insert(e.clone());
                        if let Some(st) = self.entities.get_mut(e) {
                            if st.health.is_some_and(is_failing) {
                                st.told_failing = true;
                                st.failing_since.get_or_insert(now);
                            }
                        }
                    }
                    let names = if stopped.is_empty() { String::new() } else { format!(" ({})", stopped.join(", ")) };
                    format!("{connection}: calls paused after repeated failures{names}: {error}")
                }
                Item::GuardTripped { entity, would_delete, live } => {
                    format!("{entity}: the full resync would delete {would_delete} of {live} records and stopped; allow the deletions or check the source")
                }
                Item::Recovered { entity } => format!("{entity} is syncing again"),
            });
        }
        for s in &subjects {
            self.last_told.insert(s.clone(), now);
        }
        let problems = items.iter().filter(|i| i.is_problem()).count();
        let urgency = if items.iter().any(|i| matches!(i, Item::Failing { .. } | Item::CircuitOpened { .. } | Item::GuardTripped { .. })) {
            Urgency::Critical
        } else {
            Urgency::Normal
        };
        let summary = match (&items[..], problems) {
            ([Item::Failing { entity, .. }], _) => format!("{entity} is failing"),
            ([Item::FailedItems { entity, .. }], _) => format!("New failed items in {entity}"),
            ([Item::CircuitOpened { connection, .. }], _) => format!("{connection}: circuit open"),
            ([Item::GuardTripped { entity, .. }], _) => format!("{entity}: resync stopped at the deletion guard"),
            ([Item::Recovered { entity }], _) => format!("{entity} recovered"),
            (_, 0) => format!("{} entities recovered", items.len()),
            (_, n) => format!("Syncmon: {n} problem{}", if n == 1 { "" } else { "s" }),
        };
        let screen = match &items[..] {
            [Item::Failing { entity, .. } | Item::Recovered { entity } | Item::GuardTripped { entity, .. }] => entity_route(entity),
            [Item::FailedItems { entity, .. }] => format!("#/failed?entity={}", encode(entity)),
            _ => "#/overview".to_string(),
        };
        Notification { summary, body: lines.join("\n"), urgency, subjects: subjects.into_iter().collect(), screen }
    }
}

/// `#/entity/<connection>/<entity>`, as the UI's `entityLink` writes it.
fn entity_route(key: &str) -> String {
    match key.split_once('/') {
        Some((c, e)) => format!("#/entity/{}/{}", encode(c), encode(e)),
        None => "#/overview".to_string(),
    }
}

/// Percent-encodes all but unreserved characters (`encodeURIComponent`).
fn encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Adds an item, merging it with one of the same kind and subject (counts add up).
fn merge_into(list: &mut Vec<Item>, item: Item) {
    for existing in list.iter_mut() {
        match (existing, &item) {
            (Item::FailedItems { entity: a, count }, Item::FailedItems { entity: b, count: more }) if a == b => {
                *count += more;
                return;
            }
            (e, i) if std::mem::discriminant(e) == std::mem::discriminant(i) && e.subject() == i.subject() => {
                *e = item;
                return;
            }
            _ => {}
        }
    }
    // A recovery cancels a waiting failure of the same entity and the other way round.
    list.retain(|e| match (e, &item) {
        (Item::Failing { entity: a, .. }, Item::Recovered { entity: b }) | (Item::Recovered { entity: a }, Item::Failing { entity: b, .. }) => a != b,
        _ => true,
    });
    list.push(item);
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Overrides of the user's settings (for scripted runs and tests); `None` = the setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    pub failing_after: Option<Duration>,
    pub debounce: Option<Duration>,
    pub burst: Option<Duration>,
}

/// The policy for the current settings (`api::settings`), with the overrides applied.
pub fn config_for(sm: &Syncmon, o: &Overrides) -> PolicyConfig {
    let d = PolicyConfig::default();
    let s = syncmon_core::api::settings(sm).ok();
    PolicyConfig {
        enabled: s.map(|s| s.notifications).unwrap_or(true),
        failing_after: o.failing_after.or(s.map(|s| Duration::from_secs(s.failing_after_seconds))).unwrap_or(d.failing_after),
        debounce: o.debounce.unwrap_or(d.debounce),
        burst: o.burst.unwrap_or(d.burst),
    }
}

/// Shows a notification on the desktop (freedesktop notifications over the session D-Bus).
/// Blocking; fails at once without a session bus.
pub fn show(n: &Notification) -> Result<(), String> {
    desktop_notification(n).show().map(|_| ()).map_err(|e| e.to_string())
}

fn desktop_notification(n: &Notification) -> notify_rust::Notification {
    let mut d = notify_rust::Notification::new();
    d.appname("Syncmon").summary(&n.summary).body(&n.body);
    #[cfg(all(unix, not(target_os = "macos")))]
    d.urgency(match n.urgency {
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    });
    d
}

/// [`show`], then waits until the notification is clicked (its default action, "Open Syncmon")
/// or closed, and calls `on_click` if it was clicked. Blocks for as long as the notification is
/// on screen: run it on a thread of its own (`run` delivers on blocking threads).
pub fn show_then(n: &Notification, on_click: impl FnOnce(&Notification)) -> Result<(), String> {
    let mut d = desktop_notification(n);
    d.action("default", "Open Syncmon");
    let handle = d.show().map_err(|e| e.to_string())?;
    #[cfg(all(unix, not(target_os = "macos")))]
    handle.wait_for_action(|action| {
        if action == "default" {
            on_click(n)
        }
    });
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        let _ = (handle, on_click);
    }
    Ok(())
}

/// The delivery of a front end with a window: nothing while `focused()` says the window has the
/// focus (the window shows the same thing, and a notification over it is noise), else `deliver`.
pub fn unless_focused<G, F>(focused: G, deliver: F) -> impl Fn(Notification) + Send + Sync + 'static
where
    G: Fn() -> bool + Send + Sync + 'static,
    F: Fn(Notification) + Send + Sync + 'static,
{
    move |n| {
        if focused() {
            tracing::debug!(summary = %n.summary, "notification not shown: the window has the focus");
        } else {
            deliver(n)
        }
    }
}

/// Watches a running engine until `cancel` and delivers what the policy decides through
/// `deliver` (e.g. [`show`]). Re-reads the settings every few seconds, so switching
/// notifications off in the UI takes effect without a restart.
pub async fn run<F>(sm: Arc<Syncmon>, overrides: Overrides, deliver: F, cancel: CancellationToken)
where
    F: Fn(Notification) + Send + Sync + 'static,
{
    let deliver = Arc::new(deliver);
    let clock = syncmon_core::SystemClock;
    let now = || syncmon_core::Clock::now_ms(&clock);
    let mut events = sm.subscribe();
    let mut policy = Policy::new(config_for(&sm, &overrides));
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            ev = events.recv() => match ev {
                Ok(ev) => policy.on_event(&ev, now()),
                Err(RecvError::Lagged(n)) => tracing::debug!("notifications missed {n} events"),
                Err(RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(5) {
                    policy.set_config(config_for(&sm, &overrides));
                }
                let s = sm.clone();
                if let Ok(Ok(status)) = tokio::task::spawn_blocking(move || s.status()).await {
                    policy.on_status(&status, now());
                }
                if let Some(n) = policy.tick(now()) {
                    tracing::info!(summary = %n.summary, "notification");
                    let deliver = deliver.clone();
                    // D-Bus calls block; keep them off the runtime's workers.
                    tokio::task::spawn_blocking(move || (*deliver)(n));
                }
            }
        }
    }
}

/// Logs a delivery failure once, then at debug level (no session bus is common on servers).
/// A click on the notification is logged (the agent has no window to open).
pub fn show_or_log(n: Notification) {
    show_or_log_then(n, |n| tracing::info!(screen = %n.screen, "notification clicked: {}", n.summary))
}

/// [`show_then`], logging a delivery failure as [`show_or_log`] does.
pub fn show_or_log_then(n: Notification, on_click: impl FnOnce(&Notification)) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if let Err(e) = show_then(&n, on_click) {
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!("cannot show desktop notifications: {e}");
        } else {
            tracing::debug!("cannot show a desktop notification: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
