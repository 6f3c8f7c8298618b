//! The feeds without a rowVersion, served at `/{name}` beside the rowVersion entities: a
//! *timestamp* feed (each record carries a coarse last-modified time; read with an inclusive
//! "since") and a *snapshot* feed (no version at all: every pass reads every record). Here: their
//! configuration, their records and order, and the clock that stamps changes. The routes are in
//! `server/feeds.rs`.

use crate::gen::{self, Keys, Template};
use crate::store::Damage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::ops::Bound;

/// A feed served at `GET /{name}` (and `GET /{name}/{id}`). Its name must not be an entity's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    pub name: String,
    pub records: usize,
    pub kind: FeedKind,
}

impl FeedSpec {
    /// A timestamp feed with the defaults of [`TimestampFeed`].
    pub fn timestamp(name: &str, records: usize) -> FeedSpec {
        FeedSpec { name: name.into(), records, kind: FeedKind::Timestamp(TimestampFeed::default()) }
    }

    pub fn snapshot(name: &str, records: usize) -> FeedSpec {
        FeedSpec { name: name.into(), records, kind: FeedKind::Snapshot }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedKind {
    Timestamp(TimestampFeed),
    /// Records with an `id` and nothing that says what changed.
    Snapshot,
}

/// How a timestamp feed stamps and filters its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampFeed {
    /// The last-modified field of each record (default `lastModified`).
    pub field: String,
    pub format: TimeFormat,
    /// Every timestamp is a multiple of this many milliseconds (default 1000: whole seconds).
    pub resolution_ms: i64,
    /// In the initial data set this many consecutive records share each timestamp (default 100),
    /// the newest group at the clock's time when the mock starts.
    pub records_per_timestamp: usize,
    /// The query parameter of the inclusive lower bound (default `modifiedSince`).
    pub since_param: String,
}

impl Default for TimestampFeed {
    fn default() -> Self {
        TimestampFeed {
            field: "lastModified".into(),
            format: TimeFormat::Rfc3339,
            resolution_ms: 1000,
            records_per_timestamp: 100,
            since_param: "modifiedSince".into(),
        }
    }
}

/// How a timestamp is written in records (and read in the since parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// `"2024-01-01T00:00:05Z"` (with `.mmm` when the resolution is finer than a second).
    Rfc3339,
    /// A JSON integer of seconds since 1970.
    EpochSeconds,
    /// A JSON integer of milliseconds since 1970.
    EpochMillis,
}

impl TimeFormat {
    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::EpochSeconds => "epoch_seconds",
            TimeFormat::EpochMillis => "epoch_millis",
        }
    }
}

/// A timestamp (milliseconds since 1970) as the feed writes it: a JSON string or integer.
pub fn format_time(t: &TimestampFeed, ms: i64) -> serde_json::Value {
    match t.format {
        TimeFormat::Rfc3339 => {
            let millis = (t.resolution_ms % 1000 != 0).then(|| ms.rem_euclid(1000) as u32);
            gen::datetime_string(ms.div_euclid(1000), millis).into()
        }
        TimeFormat::EpochSeconds => ms.div_euclid(1000).into(),
        TimeFormat::EpochMillis => ms.into(),
    }
}

/// The same as text (what `MockRecord::row_version` and the control API report).
pub fn time_text(t: &TimestampFeed, ms: i64) -> String {
    match format_time(t, ms) {
        serde_json::Value::String(s) => s,
        v => v.to_string(),
    }
}

/// Reads a since value: RFC 3339 text (`Z` or a `±HH:MM` offset, optional fraction), or decimal
/// digits in the feed's unit (seconds for RFC 3339 feeds). Returns milliseconds since 1970.
pub fn parse_time(format: TimeFormat, s: &str) -> Option<i64> {
    if !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return match format {
            TimeFormat::EpochMillis => Some(n),
            _ => n.checked_mul(1000),
        };
    }
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r).filter(|d| d.bytes().all(|c| c.is_ascii_digit()))?.parse().ok() };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (k, c) in b[i + 1..i + 1 + digits].iter().enumerate().take(3) {
            ms += (*c - b'0') as i64 * [100, 10, 1][k];
        }
        i += 1 + digits;
    }
    // A `+` in a query string arrives as a space once decoded.
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        off if off.len() == 6 && matches!(off.as_bytes()[0], b'+' | b'-' | b' ') && off.as_bytes()[3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let sign = if off.as_bytes()[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = gen::days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs) * 1000 + ms)
}

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// The first page of a pass (a timestamp feed's since applies).
    Start,
    /// After this (timestamp, id): a timestamp feed's continuation.
    AfterKey(i64, u128),
    /// After this record index: a snapshot feed's continuation.
    AfterIndex(u32),
    /// Skip this many records (page-number paging).
    Offset(usize),
}

#[derive(Clone, Copy, Debug)]
struct FeedRec {
    /// Milliseconds since 1970 (timestamp feeds; 0 in snapshots).
    time: i64,
    rev: u32,
    live: bool,
}

/// What rendering a record needs, copied out of the lock.
#[derive(Clone, Copy, Debug)]
pub struct FeedRow {
    pub idx: u32,
    pub time: i64,
    pub rev: u32,
}

pub struct Feed {
    pub spec: FeedSpec,
    pub keys: Keys,
    pub template: Template,
    recs: Vec<FeedRec>,
    /// Timestamp feeds: the live records in serving order, (timestamp, id, index).
    by_time: BTreeSet<(i64, u128, u32)>,
    live: usize,
    /// Timestamp feeds: the newest timestamp served in a page so far.
    pub newest_served: Option<i64>,
}

/// What rendering a feed's records needs, copied out of the lock.
#[derive(Clone, Debug)]
pub struct FeedShape {
    pub keys: Keys,
    pub template: Template,
    pub timestamp: Option<TimestampFeed>,
}

impl Feed {
    pub fn shape(&self) -> FeedShape {
        FeedShape { keys: self.keys, template: self.template, timestamp: self.timestamp().cloned() }
    }

    pub fn timestamp(&self) -> Option<&TimestampFeed> {
        match &self.spec.kind {
            FeedKind::Timestamp(t) => Some(t),
            FeedKind::Snapshot => None,
        }
    }

    pub fn live_count(&self) -> usize {
        self.live
    }

    fn row(&self, idx: u32) -> FeedRow {
        let r = self.recs[idx as usize];
        FeedRow { idx, time: r.time, rev: r.rev }
    }

    fn set_time(&mut self, idx: u32, time: i64) {
        let id = self.keys.id(idx);
        let rec = &mut self.recs[idx as usize];
        if self.spec.kind != FeedKind::Snapshot {
            self.by_time.remove(&(rec.time, id, idx));
            self.by_time.insert((time, id, idx));
        }
        rec.time = time;
    }

    fn newest_time(&self) -> Option<i64> {
        self.by_time.iter().next_back().map(|k| k.0)
    }
}

/// A feed's change, as the control API and `MockServer` ask for it.
#[derive(Clone, Debug)]
pub enum FeedOp {
    /// `n` random live records change, stamped with the clock's time.
    Mutate(usize),
    /// `n` random live records change, stamped with the newest timestamp already served.
    MutateAtServed(usize),
    /// These records change, stamped with the newest timestamp already served.
    EditAtServed(Vec<u128>),
    Insert(usize),
    Delete(usize),
    DeleteAll,
}

/// The clock that stamps changes: the wall clock, or a time a test set (it then stays put until
/// moved again).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    fixed: Option<i64>,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        self.fixed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
    }

    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }
}

pub struct Feeds {
    pub feeds: Vec<Feed>,
    pub clock: Clock,
    rng: StdRng,
}

fn truncate(ms: i64, resolution: i64) -> i64 {
    ms - ms.rem_euclid(resolution.max(1))
}

impl Feeds {
    pub fn new(seed: u64, specs: &[FeedSpec], clock_ms: Option<i64>) -> Feeds {
        let clock = Clock { fixed: clock_ms };
        let now = clock.now_ms();
        let feeds = specs
            .iter()
            .map(|spec| {
                let keys = Keys::new(seed, &spec.name);
                let mut feed = Feed {
                    spec: spec.clone(),
                    keys,
                    template: Template::for_entity(&spec.name),
                    recs: Vec::with_capacity(spec.records),
                    by_time: BTreeSet::new(),
                    live: spec.records,
                    newest_served: None,
                };
                let (per, res) = match &spec.kind {
                    FeedKind::Timestamp(t) => (t.records_per_timestamp.max(1), t.resolution_ms.max(1)),
                    FeedKind::Snapshot => (1, 0),
                };
                let groups = spec.records.div_ceil(per) as i64;
                let newest = truncate(now, res.max(1));
                for idx in 0..spec.records {
                    let time = if res == 0 { 0 } else { newest - (groups - 1 - (idx / per) as i64) * res };
                    feed.recs.push(FeedRec { time, rev: 0, live: true });
                    if res != 0 {
                        feed.by_time.insert((time, keys.id(idx as u32), idx as u32));
                    }
                }
                feed
            })
            .collect();
        Feeds { feeds, clock, rng: StdRng::seed_from_u64(seed ^ 0xFEED_FEED_FEED_FEED) }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.feeds.iter().position(|f| f.spec.name == name)
    }

    pub fn set_clock(&mut self, ms: i64) {
        self.clock.fixed = Some(ms);
    }

    /// A page from `from`: at most `limit` records and whether more follow. A timestamp feed
    /// serves records with a timestamp >= `since` ordered by (timestamp, id); a snapshot serves
    /// every live record in index order.
    pub fn page(&mut self, f: usize, since: Option<i64>, from: From, limit: usize) -> (Vec<FeedRow>, bool) {
        let feed = &mut self.feeds[f];
        let mut rows = Vec::with_capacity(limit.min(feed.live) + 1);
        let mut more = false;
        let mut take = |row: FeedRow| {
            if rows.len() == limit {
                more = true;
                return false;
            }
            rows.push(row);
            true
        };
        if feed.spec.kind == FeedKind::Snapshot {
            let (start, skip) = match from {
                From::AfterIndex(i) => (i as usize + 1, 0),
                From::Offset(n) => (0, n),
                _ => (0, 0),
            };
            let live = feed.recs.iter().enumerate().skip(start).filter(|(_, r)| r.live).skip(skip);
            for (idx, r) in live {
                if !take(FeedRow { idx: idx as u32, time: r.time, rev: r.rev }) {
                    break;
                }
            }
        } else {
            let lower = match from {
                From::AfterKey(t, id) => Bound::Excluded((t, id, u32::MAX)),
                _ => Bound::Included((since.unwrap_or(i64::MIN), 0, 0)),
            };
            let skip = if let From::Offset(n) = from { n } else { 0 };
            for &(time, _, idx) in feed.by_time.range((lower, Bound::Unbounded)).skip(skip) {
                let rev = feed.recs[idx as usize].rev;
                if !take(FeedRow { idx, time, rev }) {
                    break;
                }
            }
            if let Some(last) = rows.last() {
                feed.newest_served = Some(feed.newest_served.map_or(last.time, |n| n.max(last.time)));
            }
        }
        (rows, more)
    }

    pub fn get(&self, f: usize, id: u128) -> Option<FeedRow> {
        let feed = &self.feeds[f];
        let idx = feed.keys.index_of(id)?;
        feed.recs.get(idx as usize)?.live.then(|| feed.row(idx))
    }

    /// The live records, sorted by id.
    pub fn live_rows(&self, f: usize) -> Vec<FeedRow> {
        let feed = &self.feeds[f];
        let mut rows: Vec<FeedRow> = feed.recs.iter().enumerate().filter(|(_, r)| r.live).map(|(i, _)| feed.row(i as u32)).collect();
        rows.sort_by_key(|r| feed.keys.id(r.idx));
        rows
    }

    fn pick_live(&mut self, f: usize, n: usize) -> Vec<u32> {
        let live: Vec<u32> = self.feeds[f].recs.iter().enumerate().filter(|(_, r)| r.live).map(|(i, _)| i as u32).collect();
        rand::seq::index::sample(&mut self.rng, live.len(), n.min(live.len())).into_iter().map(|i| live[i]).collect()
    }

    /// Applies a change; returns the record indexes it touched.
    pub fn apply(&mut self, f: usize, op: FeedOp) -> Vec<u32> {
        let res = self.feeds[f].timestamp().map_or(1, |t| t.resolution_ms);
        let now = truncate(self.clock.now_ms(), res);
        let stamp = |feed: &Feed| if feed.spec.kind == FeedKind::Snapshot { 0 } else { now };
        // The newest timestamp served, or the newest in the data before any read.
        let served = |feed: &Feed| if feed.spec.kind == FeedKind::Snapshot { 0 } else { feed.newest_served.or(feed.newest_time()).unwrap_or(now) };
        let (picked, time) = match op {
            FeedOp::Mutate(n) => (self.pick_live(f, n), stamp(&self.feeds[f])),
            FeedOp::MutateAtServed(n) => (self.pick_live(f, n), served(&self.feeds[f])),
            FeedOp::EditAtServed(ids) => {
                let feed = &self.feeds[f];
                let picked = ids.iter().filter_map(|id| feed.keys.index_of(*id)).filter(|i| feed.recs.get(*i as usize).is_some_and(|r| r.live)).collect();
                (picked, served(feed))
            }
            FeedOp::Insert(n) => {
                let feed = &mut self.feeds[f];
                let time = stamp(feed);
                let first = feed.recs.len();
                return (first..first + n)
                    .map(|i| {
                        let idx = u32::try_from(i).expect("fewer than 2^32 records");
                        feed.recs.push(FeedRec { time, rev: 0, live: true });
                        if feed.spec.kind != FeedKind::Snapshot {
                            feed.by_time.insert((time, feed.keys.id(idx), idx));
                        }
                        feed.live += 1;
                        idx
                    })
                    .collect();
            }
            FeedOp::Delete(n) => {
                let picked = self.pick_live(f, n);
                let feed = &mut self.feeds[f];
                for &idx in &picked {
                    let rec = &mut feed.recs[idx as usize];
                    rec.live = false;
                    feed.by_time.remove(&(rec.time, feed.keys.id(idx), idx));
                    feed.live -= 1;
                }
                return picked;
            }
            FeedOp::DeleteAll => {
                let feed = &mut self.feeds[f];
                feed.recs.iter_mut().for_each(|r| r.live = false);
                feed.by_time.clear();
                feed.live = 0;
                return Vec::new();
            }
        };
        let feed = &mut self.feeds[f];
        for &idx in &picked {
            feed.recs[idx as usize].rev += 1;
            feed.set_time(idx, time);
        }
        picked
    }

    /// One background change (the same mix as the entities': mostly updates, some inserts, a few
    /// deletions).
    pub fn random_change(&mut self) {
        if self.feeds.is_empty() {
            return;
        }
        let f = self.rng.gen_range(0..self.feeds.len());
        let r: f64 = self.rng.gen();
        let op = if r < 0.03 && self.feeds[f].live > 1 {
            FeedOp::Delete(1)
        } else if r < 0.13 {
            FeedOp::Insert(1)
        } else {
            FeedOp::Mutate(1)
        };
        self.apply(f, op);
    }
}

/// Writes one record: `id`, the timestamp field (timestamp feeds), then the entity's fields
/// without their own `lastModifiedDateTime` (a snapshot has nothing that tells what changed).
pub fn render(out: &mut String, feed: &FeedShape, row: &FeedRow, damage: Damage) {
    out.push('{');
    let mut first = true;
    if !damage.no_id {
        out.push_str("\"id\":\"");
        gen::write_uuid(out, feed.keys.id(row.idx));
        out.push('"');
        first = false;
    }
    if let (Some(t), false) = (&feed.timestamp, damage.no_version) {
        if !first {
            out.push(',');
        }
        gen::json_str(out, &t.field);
        out.push(':');
        out.push_str(&format_time(t, row.time).to_string());
        first = false;
    }
    let start = out.len();
    gen::write_fields(out, feed.template, &feed.keys, row.idx, row.rev);
    if let Some(p) = out[start..].rfind(",\"lastModifiedDateTime\":\"") {
        out.truncate(start + p);
    }
    if first && out.len() > start {
        out.remove(start);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        let t = TimestampFeed::default();
        let ms = 1_704_067_205_000;
        assert_eq!(time_text(&t, ms), "2024-01-01T00:00:05Z");
        assert_eq!(parse_time(TimeFormat::Rfc3339, "2024-01-01T00:00:05Z"), Some(ms));
        assert_eq!(parse_time(TimeFormat::Rfc3339, "2024-01-01T01:00:05+01:00"), Some(ms));
        assert_eq!(parse_time(TimeFormat::Rfc3339, "2024-01-01T01:00:05 01:00"), Some(ms), "a + decoded as a space");
        assert_eq!(parse_time(TimeFormat::Rfc3339, "2024-01-01T00:00:05.250Z"), Some(ms + 250));
        assert_eq!(parse_time(TimeFormat::Rfc3339, "1704067205"), Some(ms));
        assert_eq!(parse_time(TimeFormat::EpochMillis, "1704067205000"), Some(ms));
        for bad in ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-01T00:00:05", "2024-01-01T00:00:05.Z", "-5"] {
            assert_eq!(parse_time(TimeFormat::Rfc3339, bad), None, "{bad}");
        }
        let fine = TimestampFeed { resolution_ms: 100, ..TimestampFeed::default() };
        assert_eq!(time_text(&fine, ms + 300), "2024-01-01T00:00:05.300Z");
        let secs = TimestampFeed { format: TimeFormat::EpochSeconds, ..TimestampFeed::default() };
        assert_eq!(format_time(&secs, ms), serde_json::json!(1_704_067_205));
    }

    #[test]
    fn initial_records_share_timestamps_in_groups() {
        let spec =
            FeedSpec { kind: FeedKind::Timestamp(TimestampFeed { records_per_timestamp: 100, ..Default::default() }), ..FeedSpec::timestamp("vendors", 250) };
        let mut feeds = Feeds::new(1, &[spec], Some(1_704_067_200_400));
        let (rows, more) = feeds.page(0, None, From::Start, 1000);
        assert!(!more);
        let times: BTreeSet<i64> = rows.iter().map(|r| r.time).collect();
        assert_eq!(times.into_iter().collect::<Vec<_>>(), [1_704_067_198_000, 1_704_067_199_000, 1_704_067_200_000]);
        assert_eq!(rows.iter().filter(|r| r.time == 1_704_067_200_000).count(), 50);
        assert_eq!(feeds.feeds[0].newest_served, Some(1_704_067_200_000));
    }
}
