//! Every state word of the engine, each written once: the entity's health and its severity order,
//! a cycle's outcome and a run's, the resync pass, a failed item's stage, state and resolution.
//!
//! [`text_enum!`] declares an enum with one text per variant; that text is what serde writes (and
//! so what the RPC, the events and the TypeScript types from ts-rs say), what the store keeps in
//! SQLite (`ToSql`/`FromSql`), and what `as_str`/`FromStr` map. An unknown stored word is an
//! error naming the words expected, never a panic. `ALL` lists the variants in declaration order;
//! `crates/syncmon-core/tests/bindings.rs` turns the lists the UI needs into
//! `ui/src/lib/generated/enums.ts`.
//!
//! The one other place that writes some of these words is the schema's migrations
//! (`store/schema.rs`: a column default and the pending-items triggers), which never change once
//! shipped; `store` tests read their effect back through these enums.

use serde::{Deserialize, Serialize};

/// A stored or given word that is none of its enum's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{text}` is none of {expected}")]
pub struct UnknownState {
    /// What the word names, e.g. "failed-item stage".
    pub what: &'static str,
    pub text: String,
    /// The words expected, comma-separated.
    pub expected: String,
}

/// `text_enum! { "what it names" pub enum Name { Variant = "text", … } }`: the enum (serde with
/// those texts, ts-rs, `Copy`, `Eq`) with `ALL`, `as_str`, `Display`, `FromStr` and rusqlite's
/// `ToSql`/`FromSql`.
macro_rules! text_enum {
    ($what:literal $(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, ts_rs::TS)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word for it: in JSON, in the TypeScript types and in the store.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::state::UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| $crate::state::UnknownState {
                    what: $what,
                    text: s.to_string(),
                    expected: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e: $crate::state::UnknownState| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

text_enum! {
    "health"
    /// The status words of DESIGN §6. Declared from the least severe to the most: `ALL` is the
    /// severity order (the overview's header reports the worst; the UI sorts by it).
    pub enum Health {
        /// Caught up within its poll interval (or a cycle is due soon).
        Healthy = "healthy",
        /// `poll_every = "never"`: records arrive only by `POST /ingest`, so no lag is measured.
        PushOnly = "push_only",
        Paused = "paused",
        /// Never synced yet.
        Pending = "pending",
        Resyncing = "resyncing",
        /// Its last cycle failed on a transient error (5xx, timeout, connection) within the retry
        /// budget (fewer consecutive failed cycles than the breaker's threshold): the next poll
        /// tries again by itself, at `next_attempt_at`.
        Retrying = "retrying",
        /// The source asked for a long wait (`Retry-After`); calls resume at `next_attempt_at`.
        Waiting = "waiting",
        /// Not caught up for more than twice its poll interval.
        Lagging = "lagging",
        /// Its last cycle failed, or a resync waits for permission to delete.
        Failing = "failing",
        CircuitOpen = "circuit_open",
    }
}

impl Health {
    /// Higher is worse: the position in [`Health::ALL`].
    pub fn severity(self) -> usize {
        Health::ALL.iter().position(|h| *h == self).unwrap_or(0)
    }

    /// The word for people (the CLI's status table, the tray): the state word, spaced.
    pub fn label(self) -> &'static str {
        match self {
            Health::CircuitOpen => "circuit open",
            Health::PushOnly => "push-only",
            h => h.as_str(),
        }
    }

    /// The word as a title (the UI's status pills, the Overview's "Overall health" card; the
    /// bindings test writes them into `enums.ts` as `HEALTH_LABEL`).
    pub fn title(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::PushOnly => "Push-only",
            Health::Paused => "Paused",
            Health::Pending => "Not synced yet",
            Health::Resyncing => "Resyncing",
            Health::Retrying => "Retrying",
            Health::Waiting => "Waiting",
            Health::Lagging => "Lagging",
            Health::Failing => "Failing",
            Health::CircuitOpen => "Circuit open",
        }
    }

    /// Its colour: red when failing or the circuit is open (the errors are not retried away);
    /// amber when retrying inside the budget, waiting for the source or lagging (nothing broken
    /// yet); blue while a resync or the first sync runs; green otherwise (paused is deliberate).
    pub fn tone(self) -> Tone {
        match self {
            Health::Failing | Health::CircuitOpen => Tone::Bad,
            Health::Retrying | Health::Waiting | Health::Lagging => Tone::Warn,
            Health::Resyncing | Health::Pending => Tone::Info,
            Health::Healthy | Health::PushOnly | Health::Paused => Tone::Ok,
        }
    }

    /// Needs a human: failing, circuit open, lagging, waiting (the source asked for a long wait).
    /// Retrying is not: it gets better by itself within the budget, or turns into failing.
    pub fn needs_attention(self) -> bool {
        matches!(self, Health::Failing | Health::CircuitOpen | Health::Lagging | Health::Waiting)
    }
}

text_enum! {
    "tone"
    /// How a signal reads at a glance (the colour of a banner, card, row, tray icon; `syncmon
    /// status`'s exit code). Declared from the best to the worst: `ALL` is the rank order.
    pub enum Tone {
        /// In sync.
        Ok = "ok",
        /// In sync or getting there by itself: a first sync, a resync, something paused.
        Info = "info",
        /// Needs attention, nothing broken: retrying, waiting, lagging, slow, items to review.
        Warn = "warn",
        /// Something is failing.
        Bad = "bad",
    }
}

impl Tone {
    /// Higher is worse: the position in [`Tone::ALL`].
    pub fn rank(self) -> usize {
        Tone::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The worse of the two.
    pub fn max(self, other: Tone) -> Tone {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

text_enum! {
    "cycle outcome"
    /// How a cycle ended; also the entity's `last_outcome`.
    pub enum Outcome {
        CaughtUp = "caught_up",
        Failed = "failed",
        /// The source asked for a wait longer than a cycle may block (a long `Retry-After`); the
        /// agent calls it again at `next_attempt_at`.
        Waiting = "waiting",
        CircuitOpen = "circuit_open",
        GuardTripped = "guard_tripped",
        Cancelled = "cancelled",
    }
}

text_enum! {
    "run kind"
    /// What a run (a row of the runs table, a cycle's report, a `cycle_started` event) was.
    pub enum RunKind {
        /// A poll: everything after the checkpoint.
        Incremental = "incremental",
        /// A lookback sweep: re-reads from the checkpoint at the entity's lookback anchor.
        Lookback = "lookback",
        /// A full resync pass.
        Resync = "resync",
    }
}

text_enum! {
    "unfinished run"
    /// A run that has no [`Outcome`] (yet).
    pub enum UnfinishedRun {
        /// The cycle is under way.
        Running = "running",
        /// The process ended during the cycle (closed so at the next writing open).
        Interrupted = "interrupted",
    }
}

/// A run's outcome in the runs table: unfinished, or how its cycle ended. In JSON it is the one
/// word of either (`"running"`, `"caught_up"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(untagged)]
pub enum RunOutcome {
    Unfinished(UnfinishedRun),
    Finished(Outcome),
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Unfinished(u) => u.as_str(),
            RunOutcome::Finished(o) => o.as_str(),
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<Outcome> for RunOutcome {
    fn eq(&self, other: &Outcome) -> bool {
        *self == RunOutcome::Finished(*other)
    }
}

impl PartialEq<UnfinishedRun> for RunOutcome {
    fn eq(&self, other: &UnfinishedRun) -> bool {
        *self == RunOutcome::Unfinished(*other)
    }
}

impl std::str::FromStr for RunOutcome {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match (s.parse::<Outcome>(), s.parse::<UnfinishedRun>()) {
            (Ok(o), _) => Ok(RunOutcome::Finished(o)),
            (_, Ok(u)) => Ok(RunOutcome::Unfinished(u)),
            (Err(a), Err(b)) => Err(UnknownState { what: "run outcome", text: s.to_string(), expected: format!("{}, {}", b.expected, a.expected) }),
        }
    }
}

impl rusqlite::types::ToSql for RunOutcome {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
    }
}

impl rusqlite::types::FromSql for RunOutcome {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e: UnknownState| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

text_enum! {
    "resync state"
    /// Where the entity's full resync pass is (`entity_state.resync_state`; none between passes).
    pub enum ResyncState {
        Running = "running",
        /// The pass ended but would delete more than the guard allows: it waits for permission.
        GuardTripped = "guard_tripped",
    }
}

text_enum! {
    "failed-item stage"
    /// The stage a failed item could not pass.
    pub enum FailedStage {
        /// Reading a record from the source page (id, rowVersion, required fields).
        Validate = "validate",
        /// Sending a change to the entity's target.
        Deliver = "deliver",
        /// Reading a record pushed to `POST /ingest` (id, rowVersion, required fields).
        Ingest = "ingest",
        /// A record of a two-way pair changed on both systems since they were last level; the
        /// item holds both versions until someone keeps one (`failed resolve --keep`).
        Conflict = "conflict",
        /// Marking a synced record at the source (`write_back`).
        WriteBack = "write_back",
    }
}

text_enum! {
    "pushed-batch state"
    /// Where a batch pushed to `POST /ingest` is.
    pub enum IngestState {
        /// Stored, not applied yet (the agent is not running, or the entity is paused).
        Queued = "queued",
        /// Every record applied (written, or older than the replica's and so left out).
        Applied = "applied",
        /// Applied except the records in its `failures`, which are failed items of stage `ingest`.
        PartlyFailed = "partly_failed",
    }
}

text_enum! {
    "failed-item state"
    /// Where a failed item is; lists show pending ones unless asked otherwise.
    pub enum FailedState {
        Pending = "pending",
        Resolved = "resolved",
        Discarded = "discarded",
    }
}

text_enum! {
    "failed-item resolution"
    /// How a failed item stopped being pending.
    pub enum Resolution {
        /// Its stage passed on a replay.
        Replayed = "replayed",
        /// A newer version of the record got through on its own.
        Superseded = "superseded",
        /// Given up by the user.
        Discarded = "discarded",
        /// A conflict settled by keeping one system's version.
        Kept = "kept",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::{FromSql, ToSql, ToSqlOutput, Value, ValueRef};

    /// serde, the store and `FromStr` say the same word for every variant, and read it back.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + for<'de> Deserialize<'de> + std::str::FromStr + ToSql + FromSql,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for v in all.iter().copied() {
            let word = as_str(v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(word.into()), "{v:?}");
            assert_eq!(serde_json::from_value::<T>(word.into()).unwrap(), v);
            assert_eq!(word.parse::<T>().unwrap(), v);
            match v.to_sql().unwrap() {
                ToSqlOutput::Borrowed(ValueRef::Text(t)) => assert_eq!(t, word.as_bytes()),
                ToSqlOutput::Owned(Value::Text(t)) => assert_eq!(t, word),
                other => panic!("{v:?} is stored as {other:?}"),
            }
            assert_eq!(T::column_result(ValueRef::Text(word.as_bytes())).unwrap(), v);
        }
    }

    #[test]
    fn every_word_is_one_mapping() {
        round_trips(Health::ALL, Health::as_str);
        round_trips(Outcome::ALL, Outcome::as_str);
        round_trips(UnfinishedRun::ALL, UnfinishedRun::as_str);
        round_trips(ResyncState::ALL, ResyncState::as_str);
        round_trips(FailedStage::ALL, FailedStage::as_str);
        round_trips(FailedState::ALL, FailedState::as_str);
        round_trips(Resolution::ALL, Resolution::as_str);
        round_trips(IngestState::ALL, IngestState::as_str);
        round_trips(Tone::ALL, Tone::as_str);
        let runs: Vec<RunOutcome> =
            UnfinishedRun::ALL.iter().map(|u| RunOutcome::Unfinished(*u)).chain(Outcome::ALL.iter().map(|o| RunOutcome::Finished(*o))).collect();
        round_trips(&runs, RunOutcome::as_str);
    }

    #[test]
    fn an_unknown_word_is_an_error_naming_the_expected_ones() {
        let e = "apply".parse::<FailedStage>().unwrap_err();
        assert_eq!(e.to_string(), "failed-item stage `apply` is none of validate, deliver, ingest, conflict, write_back");
        let stored = FailedState::column_result(ValueRef::Text(b"gone")).unwrap_err();
        assert!(stored.to_string().contains("failed-item state `gone` is none of pending, resolved, discarded"), "{stored}");
        assert!("nope".parse::<RunOutcome>().unwrap_err().to_string().contains("running, interrupted, caught_up"));
    }

    #[test]
    fn health_severity_is_the_declaration_order() {
        assert_eq!(Health::Healthy.severity(), 0);
        assert!(Health::Pending.severity() < Health::Resyncing.severity(), "pending ranks below resyncing");
        assert_eq!(Health::ALL.iter().copied().max_by_key(|h| h.severity()), Some(Health::CircuitOpen));
        assert_eq!(Health::CircuitOpen.label(), "circuit open");
    }

    #[test]
    fn needs_attention_for_failing_circuit_open_lagging_and_waiting_only() {
        let attention: Vec<Health> = Health::ALL.iter().copied().filter(|h| h.needs_attention()).collect();
        assert_eq!(attention, [Health::Waiting, Health::Lagging, Health::Failing, Health::CircuitOpen]);
        // Retrying inside the budget is amber, not red; paused is deliberate, so green.
        assert_eq!(Health::Retrying.tone(), Tone::Warn);
        assert_eq!(Health::Failing.tone(), Tone::Bad);
        assert_eq!(Health::CircuitOpen.tone(), Tone::Bad);
        assert_eq!(Health::Paused.tone(), Tone::Ok);
        assert_eq!(Health::Pending.tone(), Tone::Info);
        // A worse health never has a better tone than a less severe one that needs attention.
        for h in Health::ALL.iter().filter(|h| h.needs_attention()) {
            assert!(h.tone().rank() >= Tone::Warn.rank(), "{h}");
        }
        assert_eq!(Tone::Ok.max(Tone::Warn).max(Tone::Info), Tone::Warn);
        assert_eq!(Health::Pending.title(), "Not synced yet");
    }
}
