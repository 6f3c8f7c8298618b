//! What a page of a feed holds once parsed: the records that passed validation, those that did
//! not, and where the next page is. The profile produces them, the engine and the store use them.

use crate::rowversion::RowVersion;
use url::Url;

/// A record that passed validation.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub version: RowVersion,
    /// The record's JSON text as the source sent it.
    pub data: String,
}

/// A record that failed validation (stage `validate`).
#[derive(Debug, Clone)]
pub struct Rejected {
    pub id: Option<String>,
    pub version: Option<RowVersion>,
    pub payload: String,
    pub kind: &'static str,
    pub message: String,
    /// The JSON Schema keyword a record broke (`minimum`, `type`, …; kind `schema`), which the
    /// Failed screen groups by; None for the other kinds.
    pub rule: Option<String>,
}

impl Rejected {
    /// A known record (id and version) that a later stage could not take: delivery, a conflict,
    /// a write-back.
    pub fn of_record(id: &str, version: &str, payload: &str, kind: &'static str, message: &str) -> Rejected {
        Rejected { id: Some(id.to_string()), version: RowVersion::parse(version), payload: payload.to_string(), kind, message: message.to_string(), rule: None }
    }
}

#[derive(Debug)]
pub struct Page {
    pub records: Vec<Record>,
    pub rejected: Vec<Rejected>,
    /// Where the next page is; None at the end of the feed.
    pub next: Option<Url>,
    /// Highest version in the page (valid or rejected records).
    pub max_version: Option<RowVersion>,
}
