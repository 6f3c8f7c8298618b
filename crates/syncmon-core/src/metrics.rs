//! The engine's counters and histograms for Prometheus: cycles by outcome and records synced (fed
//! by every event the bus emits) and the duration of every HTTP call (fed by the request log of
//! each `SourceClient`). They live for the process: a restart starts them at zero, which
//! Prometheus's `rate()` and `increase()` expect of a `_total`.
//!
//! The gauges (lag, replica rows, failed items, outbox, circuits) are read from the store and the
//! breakers at scrape time by `Syncmon::metrics_text` (`facade/metrics.rs`); front ends serve that
//! text over HTTP. Nothing here knows of HTTP handlers.

use crate::events::EventKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// The media type of `Syncmon::metrics_text` (OpenMetrics text, which Prometheus negotiates).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric's name starts with this (`syncmon_entity_lag_seconds`, …).
pub const PREFIX: &str = "syncmon";

/// Upper bounds of the request-duration buckets, in seconds: from a fast loopback answer to a
/// call near the default 30 s timeout.
pub const REQUEST_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntityLabels {
    pub connection: String,
    pub entity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CycleLabels {
    connection: String,
    entity: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The connection's id, or the target's for a delivery.
    connection: String,
    /// `2xx` … `5xx`, or `error` when no answer came (refused, reset, timed out).
    status_class: String,
}

type RequestFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

/// The process-lifetime metrics of one engine. Cloning shares them (the families are `Arc`s).
#[derive(Clone)]
pub struct EngineMetrics {
    cycles: Family<CycleLabels, Counter>,
    records: Family<EntityLabels, Counter>,
    requests: RequestFamily,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        EngineMetrics { cycles: Family::default(), records: Family::default(), requests: Family::new_with_constructor(request_histogram as fn() -> Histogram) }
    }
}

impl EngineMetrics {
    /// Counts what an event reports: called by the bus for every event it emits, so no count is
    /// lost to a subscriber that lagged behind the channel.
    pub(crate) fn observe_event(&self, kind: &EventKind) {
        match kind {
            EventKind::CycleFinished { connection, entity, outcome, records, .. } => {
                let labels = CycleLabels { connection: connection.clone(), entity: entity.clone(), outcome: outcome.as_str().to_string() };
                self.cycles.get_or_create(&labels).inc();
                self.records.get_or_create(&EntityLabels { connection: connection.clone(), entity: entity.clone() }).inc_by(*records);
            }
            EventKind::IngestApplied { connection, entity, records, .. } => {
                self.records.get_or_create(&EntityLabels { connection: connection.clone(), entity: entity.clone() }).inc_by(*records as u64);
            }
            _ => {}
        }
    }

    /// One HTTP call of `connection` (a source's or a target's id) that took `took`; `status` is
    /// None when no answer came.
    pub(crate) fn observe_request(&self, connection: &str, status: Option<u16>, took: Duration) {
        let labels = RequestLabels { connection: connection.to_string(), status_class: status_class(status) };
        self.requests.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// Adds the counters and the histogram to `registry` (a clone shares the values).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register("cycles", "Cycles finished since the process started, by outcome", self.cycles.clone());
        registry.register(
            "records",
            "Records synced since the process started: read by cycles (unchanged re-reads not counted, rejected ones counted) and pushed to /ingest",
            self.records.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Duration of the HTTP calls to sources and targets, by status class (error: no answer)",
            self.requests.clone(),
        );
    }
}

/// `200` → `2xx`; no answer → `error`.
pub fn status_class(status: Option<u16>) -> String {
    match status {
        Some(s) if (100..600).contains(&s) => format!("{}xx", s / 100),
        Some(_) => "other".to_string(),
        None => "error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Outcome;

    fn text(m: &EngineMetrics) -> String {
        let mut registry = Registry::with_prefix(PREFIX);
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn cycles_records_and_requests_are_counted_with_their_labels() {
        let m = EngineMetrics::default();
        let finished =
            |outcome, records| EventKind::CycleFinished { connection: "shop".into(), entity: "items".into(), outcome, records, error: None, tracking_id: None };
        m.observe_event(&finished(Outcome::CaughtUp, 40));
        m.observe_event(&finished(Outcome::CaughtUp, 2));
        m.observe_event(&finished(Outcome::Failed, 0));
        m.observe_event(&EventKind::Nudged { connection: "shop".into(), entity: "items".into() });
        m.observe_request("shop", Some(200), Duration::from_millis(3));
        m.observe_request("shop", Some(503), Duration::from_millis(700));
        m.observe_request("shop", None, Duration::from_secs(2));
        let t = text(&m);
        assert!(t.contains(r#"syncmon_cycles_total{connection="shop",entity="items",outcome="caught_up"} 2"#), "{t}");
        assert!(t.contains(r#"syncmon_cycles_total{connection="shop",entity="items",outcome="failed"} 1"#), "{t}");
        assert!(t.contains(r#"syncmon_records_total{connection="shop",entity="items"} 42"#), "{t}");
        assert!(t.contains(r#"syncmon_http_request_duration_seconds_count{connection="shop",status_class="5xx"} 1"#), "{t}");
        assert!(t.contains(r#"syncmon_http_request_duration_seconds_bucket{le="0.005",connection="shop",status_class="2xx"} 1"#), "{t}");
        assert!(t.contains(r#"syncmon_http_request_duration_seconds_bucket{le="0.5",connection="shop",status_class="5xx"} 0"#), "{t}");
        assert!(t.contains(r#"syncmon_http_request_duration_seconds_bucket{le="1.0",connection="shop",status_class="5xx"} 1"#), "{t}");
        assert!(t.contains(r#"status_class="error""#), "{t}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(Some(204)), "2xx");
        assert_eq!(status_class(Some(429)), "4xx");
        assert_eq!(status_class(Some(599)), "5xx");
        assert_eq!(status_class(None), "error");
    }
}
