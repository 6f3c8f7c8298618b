//! The `webhook-id`s already acted on (Standard Webhooks), so a replayed call is acknowledged
//! without a second nudge.

use std::collections::{HashMap, VecDeque};

/// How long a seen `webhook-id` is remembered. Longer than the two-sided tolerance window, so a
/// message cannot be replayed once forgotten: by then its timestamp is stale.
pub(super) const REPLAY_WINDOW_SECS: i64 = 10 * 60;
/// Upper bound on remembered `webhook-id`s (only verified calls are remembered).
const REPLAY_CAPACITY: usize = 10_000;

/// Remembers verified `webhook-id`s for [`REPLAY_WINDOW_SECS`], at most [`REPLAY_CAPACITY`].
#[derive(Default)]
pub(super) struct ReplayCache {
    seen: HashMap<String, u64>,
    order: VecDeque<(i64, u64, String)>,
    next_seq: u64,
}

impl ReplayCache {
    fn pop_oldest(&mut self) {
        if let Some((_, seq, key)) = self.order.pop_front() {
            if self.seen.get(&key) == Some(&seq) {
                self.seen.remove(&key);
            }
        }
    }

    /// Records `key`; returns its ticket, or None if it was already seen.
    pub(super) fn insert(&mut self, key: String, now: i64) -> Option<u64> {
        while self.order.front().is_some_and(|(t, _, _)| *t < now - REPLAY_WINDOW_SECS) {
            self.pop_oldest();
        }
        if self.seen.contains_key(&key) {
            return None;
        }
        while !self.order.is_empty() && (self.seen.len() >= REPLAY_CAPACITY || self.order.len() >= 2 * REPLAY_CAPACITY) {
            self.pop_oldest();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seen.insert(key.clone(), seq);
        self.order.push_back((now, seq, key));
        Some(seq)
    }

    /// Forgets `key` (the call was not acted on, so the sender's retry must go through).
    pub(super) fn forget(&mut self, key: &str, seq: u64) {
        if self.seen.get(key) == Some(&seq) {
            self.seen.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_bounds() {
        let mut c = ReplayCache::default();
        let t = c.insert("a".into(), 0).unwrap();
        assert!(c.insert("a".into(), 10).is_none());
        c.forget("a", t);
        assert!(c.insert("a".into(), 20).is_some());
        // Evicted after the window.
        assert!(c.insert("a".into(), 20 + REPLAY_WINDOW_SECS + 1).is_some());
        for i in 0..(REPLAY_CAPACITY + 50) {
            c.insert(format!("k{i}"), 1000);
        }
        assert!(c.seen.len() <= REPLAY_CAPACITY);
        assert!(c.order.len() <= 2 * REPLAY_CAPACITY);
    }
}
