//! What a failed call is and what to do about it, for sources and targets alike: the failure
//! classes, the one table that classifies an HTTP status, the retry policy and the circuit
//! breaker.

use crate::config::ConnectionConfig;
use rand::Rng;
use std::time::Duration;

/// A `Retry-After` up to this long is waited for within the cycle (the pages read so far stay
/// in flight); a longer one ends the cycle with the entity waiting, visible in the status, and
/// the agent comes back when the source said to. One minute is far above any normal pacing and
/// keeps an idle-looking entity explained within a minute.
pub const LONGEST_WAIT_IN_CYCLE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// 429: wait as told, counts against no breaker.
    RateLimited,
    /// 5xx, connect error, timeout, reset, truncated or unparsable body.
    Transient,
    /// 401 (after one token refresh), or no usable credentials.
    Auth,
    /// 400/403/404 and other 4xx: a configuration problem, no hot retry.
    Config,
    Cancelled,
}

/// A failed call, with everything the user needs to understand it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
    pub http_status: Option<u16>,
    pub tracking_id: Option<String>,
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub(crate) fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure { class, message: message.into(), http_status: None, tracking_id: None, retry_after: None }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = self.http_status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(t) = &self.tracking_id {
            write!(f, " [Trackingid {t}]")?;
        }
        Ok(())
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Retry {
        after: Duration,
        reason: String,
    },
    /// The source asked for a wait longer than [`LONGEST_WAIT_IN_CYCLE`]: end the cycle and
    /// come back `after` from now.
    WaitOutsideCycle {
        after: Duration,
    },
    GiveUp,
}

/// Retries with exponential backoff and *full* jitter (a uniform wait in [0, min(cap, base·2^n)]):
/// many workers retrying after one outage then spread out instead of hammering the source in
/// step. 429 waits for `Retry-After` and has its own, larger budget since it is the source
/// pacing us, not failing.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub max_rate_limited: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    pub fn from_config(c: &ConnectionConfig) -> Self {
        RetryPolicy { max_retries: c.max_retries, max_rate_limited: 20, base: c.backoff_base, cap: c.backoff_max }
    }

    /// `transient_tries` and `limited_tries` count the failures so far, this one included.
    pub fn decide(&self, f: &Failure, transient_tries: u32, limited_tries: u32, rng: &mut impl Rng) -> Decision {
        match f.class {
            FailureClass::RateLimited if f.retry_after.is_some_and(|w| w > LONGEST_WAIT_IN_CYCLE) => {
                Decision::WaitOutsideCycle { after: f.retry_after.unwrap_or_default() }
            }
            FailureClass::RateLimited if limited_tries <= self.max_rate_limited => {
                let after = f.retry_after.unwrap_or_else(|| self.full_jitter(limited_tries, rng));
                Decision::Retry { after, reason: "rate limited (429)".into() }
            }
            FailureClass::Transient if transient_tries <= self.max_retries => {
                Decision::Retry { after: self.full_jitter(transient_tries, rng), reason: f.message.clone() }
            }
            _ => Decision::GiveUp,
        }
    }

    fn full_jitter(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(self.cap);
        ceiling.mul_f64(rng.gen::<f64>())
    }
}

/// Opens after `threshold` consecutive failed cycles; stays open for a cooldown that doubles
/// (up to 16×) while the source keeps failing; one success closes it.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    base_cooldown_ms: i64,
    consecutive: u32,
    opened: u32,
    open_until_ms: Option<i64>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker { threshold: threshold.max(1), base_cooldown_ms: cooldown.as_millis() as i64, consecutive: 0, opened: 0, open_until_ms: None }
    }

    /// Some(until) while open.
    pub fn open_until(&self, now_ms: i64) -> Option<i64> {
        self.open_until_ms.filter(|u| *u > now_ms)
    }

    /// Returns Some(until) when this failure opens the circuit.
    pub fn record_failure(&mut self, now_ms: i64) -> Option<i64> {
        self.consecutive += 1;
        if self.consecutive >= self.threshold {
            let until = now_ms + self.base_cooldown_ms * (1i64 << self.opened.min(4));
            self.opened += 1;
            self.consecutive = 0;
            self.open_until_ms = Some(until);
            return Some(until);
        }
        None
    }

    /// Returns true when this success closes a circuit that had opened.
    pub fn record_success(&mut self) -> bool {
        let was_open = self.opened > 0;
        self.consecutive = 0;
        self.opened = 0;
        self.open_until_ms = None;
        was_open
    }
}

/// The one table that classifies an unsuccessful HTTP status, for sources and targets alike:
/// 429 is the other side pacing us, 401 is the credentials, 408 and 5xx may pass on a retry, and
/// any other status (400, 403, 404, 3xx not followed, …) is a configuration problem.
pub fn classify_status(status: u16) -> FailureClass {
    match status {
        429 => FailureClass::RateLimited,
        401 => FailureClass::Auth,
        408 | 500..=599 => FailureClass::Transient,
        _ => FailureClass::Config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy { max_retries: 3, max_rate_limited: 5, base: Duration::from_millis(100), cap: Duration::from_secs(1) }
    }

    #[test]
    fn statuses_classify_the_same_for_sources_and_targets() {
        use FailureClass::*;
        let table = [
            (300, Config),
            (304, Config),
            (400, Config),
            (401, Auth),
            (403, Config),
            (404, Config),
            (405, Config),
            (408, Transient),
            (409, Config),
            (410, Config),
            (422, Config),
            (429, RateLimited),
            (499, Config),
            (500, Transient),
            (502, Transient),
            (503, Transient),
            (504, Transient),
            (599, Transient),
            (600, Config),
        ];
        for (status, class) in table {
            assert_eq!(classify_status(status), class, "HTTP {status}");
        }
    }

    #[test]
    fn transient_failures_back_off_with_full_jitter_within_the_cap_then_give_up() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let f = Failure::new(FailureClass::Transient, "503");
        for attempt in 1..=3 {
            let ceiling = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            for _ in 0..50 {
                match policy().decide(&f, attempt, 0, &mut rng) {
                    Decision::Retry { after, .. } => assert!(after <= ceiling, "attempt {attempt}: {after:?} > {ceiling:?}"),
                    other => panic!("attempt {attempt} is within the budget: {other:?}"),
                }
            }
        }
        assert_eq!(policy().decide(&f, 4, 0, &mut rng), Decision::GiveUp);
    }

    #[test]
    fn rate_limits_wait_as_told_and_config_errors_never_retry() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut f = Failure::new(FailureClass::RateLimited, "429");
        f.retry_after = Some(Duration::from_secs(2));
        assert!(matches!(policy().decide(&f, 0, 1, &mut rng), Decision::Retry { after, .. } if after == Duration::from_secs(2)));
        assert_eq!(policy().decide(&f, 0, 6, &mut rng), Decision::GiveUp);
        assert_eq!(policy().decide(&Failure::new(FailureClass::Config, "404"), 1, 0, &mut rng), Decision::GiveUp);
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_backs_off() {
        let mut b = Breaker::new(3, Duration::from_secs(10));
        assert_eq!(b.record_failure(0), None);
        assert_eq!(b.record_failure(0), None);
        assert_eq!(b.record_failure(1_000), Some(11_000));
        assert_eq!(b.open_until(5_000), Some(11_000));
        assert_eq!(b.open_until(12_000), None, "half-open after the cooldown");
        b.record_failure(12_000);
        b.record_failure(12_000);
        assert_eq!(b.record_failure(12_000), Some(32_000), "the cooldown doubles while the source keeps failing");
        assert!(b.record_success());
        assert_eq!(b.open_until(13_000), None);
    }
}
