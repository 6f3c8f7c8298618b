//! The rules of `profile = "snapshot"`: a feed without any version. The `[connection.cursor]`
//! keys that name records and pages still apply (`id_field`, `records_pointer`,
//! `page_size_param`, `extra_query`, a next-page way); the keys that carry a version contradict it.

use super::locator::{Locator, Seg};
use super::{ConfigProblem, CursorConfig, NextPageMode};

impl Locator<'_> {
    pub(super) fn check_snapshot(&self, table: &[Seg], at: &str, cur: Option<&CursorConfig>) -> Result<(), ConfigProblem> {
        let Some(cur) = cur else { return Ok(()) }; // the defaults: `id`, the body is the array, one page
        let cursor = [table, &[Seg::Key("cursor")]].concat();
        // `version_field` has a default, so whether it was written is read from the file itself.
        for key in ["version_field", "filter_param"] {
            if self.line(&[&cursor[..], &[Seg::Key(key)]].concat()).is_some() {
                return Err(self.problem(
                    &cursor,
                    key,
                    format!(
                        "{at}: profile = \"snapshot\" reads every record on every poll and has no version, so `{key}`{} contradicts it: \
                         remove it, or use profile = \"cursor\" if the records carry a version",
                        self.at_line(&[&cursor[..], &[Seg::Key(key)]].concat())
                    ),
                ));
            }
        }
        if cur.next == Some(NextPageMode::ShortPage) {
            return Err(self.problem(
                &cursor,
                "next",
                format!("{at}: `next = \"short-page\"` asks again from the highest version, which a snapshot does not have: use `next_url_pointer`, `next_token_pointer` or `next = \"link-header\"`"),
            ));
        }
        let ways = [cur.next_token_pointer.is_some(), cur.next_url_pointer.is_some(), cur.next.is_some()].iter().filter(|x| **x).count();
        if ways > 1 {
            return Err(self.problem(
                table,
                "cursor",
                format!("{at}: the snapshot profile takes at most one way to find the next page (none: the whole snapshot is one response)"),
            ));
        }
        super::validate::check_token_param(self, &cursor, at, cur)
    }
}
