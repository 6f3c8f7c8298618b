//! How a cycle tells a source that is not advancing: a next page asked for twice, or a long run
//! of pages that bring nothing. The fetcher stops there rather than read forever.

use crate::retry::Failure;

/// Pages in a row with no record and no higher version before a cycle is stopped as not
/// advancing (a source that answers `morePages: true` with a fresh key forever).
pub const MAX_PAGES_WITHOUT_PROGRESS: u32 = 50;

/// The next-page URLs a cycle has asked for, as hashes: a URL asked twice means the source is
/// going round in circles. Bounded: past a million pages it starts over (a loop is then still
/// caught by the no-progress count, or at its second turn).
#[derive(Default)]
pub(super) struct SeenPages(std::collections::HashSet<u64>);

impl SeenPages {
    const MAX: usize = 1 << 20;

    /// False when the URL was seen before in this cycle.
    pub(super) fn first_visit(&mut self, url: &url::Url) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        url.as_str().hash(&mut h);
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(h.finish())
    }
}

/// How a next page is named in a message: its page key, or its URL (secrets redacted).
pub(super) fn describe_next(url: &url::Url) -> String {
    match url.query_pairs().find(|(k, _)| k == "pageKey") {
        Some((_, key)) => format!("pageKey {key}"),
        None => crate::secrets::redact_url(url),
    }
}

/// Why the fetcher ended before the feed did.
pub(super) enum FetchStop {
    Failed(Failure),
    /// The source is not advancing: `what` it did, on the page with this Trackingid and status.
    Stalled {
        what: String,
        tracking_id: Option<String>,
        http_status: u16,
    },
}
