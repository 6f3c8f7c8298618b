//! The engine's one clock. Everything in core that reads the wall-clock time to decide something
//! reads it from the `Arc<dyn Clock>` given at open (`Syncmon::open_with_clock`): the webhook
//! timestamp tolerance and replay window, a `Retry-After` date turned into a wait, an OAuth
//! token's refresh time, the breaker's open-until, the scheduler's waits, the run history. Tests
//! pass a [`TestClock`] and so move time themselves.
//!
//! Two other clocks remain, on purpose: `std::time::Instant` where a duration is measured for a
//! log line or a report (the request log's `duration_ms`, a cycle's duration), and tokio's clock
//! for sleeping (which `#[tokio::test(start_paused = true)]` controls).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time source; passed in so that logic under test does not call `now()` behind its back.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// The same instant as a `SystemTime`, for comparing with dates read from the wire.
    fn now_system(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms().max(0) as u64)
    }
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// A clock for tests. [`TestClock::fixed`] moves only when the test says ([`TestClock::advance`],
/// [`TestClock::set`]); [`TestClock::following_tokio`] also moves with tokio's clock, so under
/// `#[tokio::test(start_paused = true)]` it moves exactly as far as simulated time does.
pub struct TestClock {
    /// The time shown when tokio's clock is at `origin` (moved by `advance` and `set`).
    base_ms: AtomicI64,
    origin: Option<tokio::time::Instant>,
}

impl TestClock {
    pub fn fixed(now_ms: i64) -> Self {
        TestClock { base_ms: AtomicI64::new(now_ms), origin: None }
    }

    pub fn following_tokio(now_ms: i64) -> Self {
        TestClock { base_ms: AtomicI64::new(now_ms), origin: Some(tokio::time::Instant::now()) }
    }

    pub fn advance(&self, by: Duration) {
        self.base_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, now_ms: i64) {
        self.base_ms.fetch_add(now_ms - self.now_ms(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        let moved = self.origin.map_or(0, |o| o.elapsed().as_millis() as i64);
        self.base_ms.load(Ordering::SeqCst) + moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_system_time_are_the_same_instant() {
        let c = TestClock::fixed(1_700_000_000_999);
        assert_eq!(c.now_unix(), 1_700_000_000);
        assert_eq!(c.now_system(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_999));
        c.advance(Duration::from_millis(1));
        assert_eq!(c.now_unix(), 1_700_000_001);
        c.set(5_000);
        assert_eq!(c.now_ms(), 5_000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_following_clock_moves_with_simulated_time_only() {
        let c = TestClock::following_tokio(1_000);
        assert_eq!(c.now_ms(), 1_000, "paused: no time passes on its own");
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now_ms(), 91_000);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now_ms(), 92_000);
    }
}
