//! Profiles: how a source API names things. The engine's loop only asks a profile for the first
//! URL of a cycle, to parse a page (records + where the next page is), and for a record's own URL.
//!
//! Records are parsed without building a JSON tree: only the id, the version and the required
//! fields are read, and the record's text is kept as is for the replica. An entity with a JSON
//! Schema (`schema`) is the exception: each of its records is parsed once more, into a tree, and
//! checked against it (`record_schema.rs`); a record that breaks it is rejected with kind
//! `schema` and the rule it broke.
//!
//! The `timestamp` profile pages like `cursor` but its version is a last-modified time
//! (`crate::timestamp`): the source is asked inclusively from the checkpoint (less `overlap`),
//! so the records at the checkpoint come again, and the store compares them by content.

use crate::config::{ConnectionConfig, CursorConfig, EntityConfig, NextPageMode, ProfileKind};
use crate::record::{Page, Record, Rejected};
use crate::record_schema::RecordSchema;
use crate::rowversion::RowVersion;
use crate::timestamp::{self, TimestampFormat};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use url::Url;

#[derive(Debug, Clone)]
pub struct Profile {
    kind: ProfileKind,
    cursor: Option<CursorConfig>,
    id_field: String,
    version_field: String,
    required: Vec<String>,
    /// The entity's JSON Schema, compiled when the config was loaded.
    schema: Option<RecordSchema>,
    page_size: u32,
    /// The entity's collection URL: base_url + path.
    entity_url: Url,
    /// `profile = "timestamp"`: how the timestamp is written, and how far below the checkpoint
    /// (microseconds) a poll reads again.
    timestamp: Option<(TimestampFormat, u64)>,
}

/// What a checkpoint is, so that front ends show it as people read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A version the source counts (rowVersion, a cursor's sequence): shown as is.
    Version,
    /// Microseconds since 1970 (UTC), shown as a date.
    Timestamp,
}

impl Profile {
    pub fn new(conn: &ConnectionConfig, entity: &EntityConfig) -> Result<Profile, String> {
        let base = conn.base_url.trim_end_matches('/');
        let entity_url =
            Url::parse(&format!("{base}{}", entity.path())).map_err(|e| format!("connection `{}`, entity `{}`: bad URL ({e})", conn.id, entity.name))?;
        let cursor = match conn.profile {
            ProfileKind::Cursor | ProfileKind::Timestamp => conn.cursor.clone(),
            ProfileKind::Snapshot => Some(snapshot_cursor(conn.cursor.as_ref())),
            ProfileKind::Rowversion => None,
        };
        let (id_field, version_field) = match (&conn.profile, &cursor) {
            (ProfileKind::Cursor | ProfileKind::Timestamp, Some(c)) => (c.id_field.clone(), c.version_field.clone()),
            // No version to read: the store numbers the changes it writes (store/snapshot.rs).
            (ProfileKind::Snapshot, Some(c)) => (c.id_field.clone(), String::new()),
            _ => ("id".to_string(), "rowVersion".to_string()),
        };
        if entity.schema.is_some() && entity.record_schema.is_none() {
            return Err(format!("connection `{}`, entity `{}`: its schema was not loaded (the config was not made by Config::parse_in)", conn.id, entity.name));
        }
        Ok(Profile {
            kind: conn.profile,
            cursor,
            id_field,
            version_field,
            required: entity.required_fields.clone(),
            schema: entity.record_schema.clone(),
            page_size: entity.page_size,
            entity_url,
            timestamp: (conn.profile == ProfileKind::Timestamp).then(|| {
                let format = conn.cursor.as_ref().and_then(|c| c.timestamp_format).unwrap_or_default();
                (format, conn.overlap.as_micros().min(u64::MAX as u128) as u64)
            }),
        })
    }

    /// The record field holding the version (`rowVersion` unless the profile's cursor names another).
    pub fn version_field(&self) -> &str {
        &self.version_field
    }

    /// True when the records at the checkpoint are read again (an inclusive "since"): the store
    /// then compares a record at the version it holds by content.
    pub fn rereads_checkpoint(&self) -> bool {
        self.timestamp.is_some()
    }

    pub fn checkpoint_kind(&self) -> CheckpointKind {
        match self.timestamp {
            Some(_) => CheckpointKind::Timestamp,
            None => CheckpointKind::Version,
        }
    }

    /// A version as people read it: a date for a timestamp feed, else the version itself.
    pub fn display_version(&self, v: &RowVersion) -> String {
        match self.timestamp {
            Some(_) => timestamp::display(v),
            None => v.to_string(),
        }
    }

    pub fn entity_url(&self) -> &Url {
        &self.entity_url
    }

    /// The first request of a cycle: everything newer than `since`.
    pub fn first_url(&self, since: &RowVersion) -> Url {
        if self.kind == ProfileKind::Snapshot {
            return self.snapshot_first_url();
        }
        let mut url = self.entity_url.clone();
        match &self.cursor {
            None => {
                url.query_pairs_mut()
                    .append_pair("sync", "true")
                    .append_pair("lastRowVersion", since.as_str())
                    .append_pair("pageSize", &self.page_size.to_string());
            }
            Some(c) => {
                // A timestamp feed is asked from the checkpoint itself (less the overlap), in its
                // own format, and from the start without a filter.
                let filter = match self.timestamp {
                    None => Some(since.to_string()),
                    Some(_) if since.is_zero() => None,
                    Some((format, overlap)) => Some(timestamp::query_text(&timestamp::minus_micros(since, overlap), format)),
                };
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(f) = &filter {
                        q.append_pair(&c.filter_param, f);
                    }
                    if let Some(p) = &c.page_size_param {
                        q.append_pair(p, &self.page_size.to_string());
                    }
                }
                if let Some(extra) = c.extra_query.as_deref().filter(|e| !e.is_empty()) {
                    let q = match url.query() {
                        Some(existing) => format!("{existing}&{extra}"),
                        None => extra.to_string(),
                    };
                    url.set_query(Some(&q));
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None); // a timestamp feed's first read with no other parameter
        }
        url
    }

    /// A snapshot pass always starts at the first page: the page size and the fixed query, no filter.
    fn snapshot_first_url(&self) -> Url {
        let mut url = self.entity_url.clone();
        let Some(c) = &self.cursor else { return url };
        if let Some(p) = &c.page_size_param {
            url.query_pairs_mut().append_pair(p, &self.page_size.to_string());
        }
        if let Some(extra) = c.extra_query.as_deref().filter(|e| !e.is_empty()) {
            let q = match url.query() {
                Some(existing) => format!("{existing}&{extra}"),
                None => extra.to_string(),
            };
            url.set_query(Some(&q));
        }
        url
    }

    /// Whether this is a snapshot feed (no version: the store compares content, store/snapshot.rs).
    pub fn is_snapshot(&self) -> bool {
        self.kind == ProfileKind::Snapshot
    }

    /// The single-record URL, where the profile knows one (used by replay to re-fetch).
    pub fn record_url(&self, id: &str) -> Option<Url> {
        if self.kind != ProfileKind::Rowversion {
            return None;
        }
        let mut url = self.entity_url.clone();
        url.path_segments_mut().ok()?.push(id);
        Some(url)
    }

    /// Parses one page. `first` is the first request of the cycle (token paging repeats its query).
    pub fn parse_page(&self, body: &[u8], first: &Url, link_header: Option<&str>) -> Result<Page, String> {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text".to_string())?;
        let (raw_records, next) = match &self.cursor {
            None => self.parse_reference(text)?,
            Some(c) => self.parse_cursor(c, text, first, link_header)?,
        };
        let mut page = Page { records: Vec::with_capacity(raw_records.len()), rejected: Vec::new(), next, max_version: None };
        let count = raw_records.len();
        for raw in raw_records {
            match self.validate(raw) {
                Ok(r) => {
                    if page.max_version.as_ref().is_none_or(|m| r.version > *m) {
                        page.max_version = Some(r.version.clone());
                    }
                    page.records.push(r);
                }
                Err(rej) => {
                    // A rejected record still moves the checkpoint on: one bad record never stalls an entity.
                    if let Some(v) = &rej.version {
                        if page.max_version.as_ref().is_none_or(|m| v > m) {
                            page.max_version = Some(v.clone());
                        }
                    }
                    page.rejected.push(*rej)
                }
            }
        }
        if self.kind == ProfileKind::Snapshot {
            page.max_version = None; // no versions: the store numbers what changed
        }
        if let Some(NextPageMode::ShortPage) = self.cursor.as_ref().and_then(|c| c.next) {
            // A full page means there may be more: ask again from its highest version.
            page.next = match &page.max_version {
                Some(v) if count >= self.page_size as usize => Some(self.first_url(v)),
                _ => None,
            };
        }
        if let Some(next) = &page.next {
            if next.origin() != self.entity_url.origin() {
                // The same rule as for redirects (source.rs): credentials stay on the origin asked.
                return Err(format!(
                    "the next-page URL points to another server ({}, not {}); Syncmon does not send credentials to another origin: set base_url to the origin that serves the API",
                    next.origin().ascii_serialization(),
                    self.entity_url.origin().ascii_serialization()
                ));
            }
        }
        Ok(page)
    }

    fn parse_reference<'a>(&self, text: &'a str) -> Result<(Vec<&'a RawValue>, Option<Url>), String> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(rename = "morePages", default)]
            more_pages: bool,
            #[serde(rename = "nextPageKey", default)]
            next_page_key: Option<String>,
            #[serde(rename = "nextPageURL", default)]
            next_page_url: Option<String>,
            #[serde(borrow)]
            data: Vec<&'a RawValue>,
        }
        let body: Body = serde_json::from_str(text).map_err(|e| format!("the body is not a page of records: {e}"))?;
        let next = if !body.more_pages {
            None
        } else if let Some(u) = body.next_page_url.filter(|u| !u.is_empty()) {
            Some(self.entity_url.join(&u).map_err(|e| format!("nextPageURL `{}` is not a URL: {e}", crate::secrets::redact_url_text(&u)))?)
        } else if let Some(k) = body.next_page_key.filter(|k| !k.is_empty()) {
            let mut u = self.entity_url.clone();
            u.query_pairs_mut().append_pair("pageKey", &k);
            Some(u)
        } else {
            return Err("morePages is true but the page has neither nextPageURL nor nextPageKey".into());
        };
        Ok((body.data, next))
    }

    fn parse_cursor<'a>(&self, c: &CursorConfig, text: &'a str, first: &Url, link_header: Option<&str>) -> Result<(Vec<&'a RawValue>, Option<Url>), String> {
        let root: &RawValue = serde_json::from_str(text).map_err(|e| format!("the body is not JSON: {e}"))?;
        let records_raw = pointer(root, &c.records_pointer)?.ok_or_else(|| format!("no records at `{}` in the body", c.records_pointer))?;
        let records: Vec<&RawValue> =
            serde_json::from_str(records_raw.get()).map_err(|_| format!("the value at `{}` is not an array of records", c.records_pointer))?;
        let next = if let (Some(ptr), Some(param)) = (&c.next_token_pointer, &c.next_token_param) {
            match pointer_string(root, ptr)? {
                Some(token) => {
                    let mut u = first.clone();
                    u.query_pairs_mut().append_pair(param, &token);
                    Some(u)
                }
                None => None,
            }
        } else if let Some(ptr) = &c.next_url_pointer {
            match pointer_string(root, ptr)? {
                Some(u) => Some(self.entity_url.join(&u).map_err(|e| format!("next URL `{}` is not a URL: {e}", crate::secrets::redact_url_text(&u)))?),
                None => None,
            }
        } else if c.next == Some(NextPageMode::LinkHeader) {
            match link_header.and_then(next_link) {
                Some(u) => Some(self.entity_url.join(&u).map_err(|e| format!("Link URL `{}` is not a URL: {e}", crate::secrets::redact_url_text(&u)))?),
                None => None,
            }
        } else {
            None // short-page: decided after validation
        };
        Ok((records, next))
    }

    /// Validates one record given as text (replay of a stored or re-fetched record). The
    /// rejection is boxed: it is the rare path, and `Rejected` is large.
    pub fn validate_text(&self, text: &str) -> Result<Record, Box<Rejected>> {
        match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => self.validate(raw),
            Err(e) => Err(Box::new(Rejected {
                id: None,
                version: None,
                payload: text.to_string(),
                kind: "not_json",
                message: format!("the record is not JSON: {e}"),
                rule: None,
            })),
        }
    }

    fn validate(&self, raw: &RawValue) -> Result<Record, Box<Rejected>> {
        let payload = raw.get();
        let reject = |id: Option<String>, version: Option<RowVersion>, kind: &'static str, message: String| {
            Box::new(Rejected { id, version, payload: payload.to_string(), kind, message, rule: None })
        };
        let mut wanted: Vec<&str> = vec![&self.id_field];
        if self.kind != ProfileKind::Snapshot {
            wanted.push(&self.version_field);
        }
        wanted.extend(self.required.iter().map(String::as_str));
        let fields = match (FieldPicker { wanted: &wanted }).deserialize(&mut serde_json::Deserializer::from_str(payload)) {
            Ok(f) => f,
            Err(_) => return Err(reject(None, None, "not_an_object", "the record is not a JSON object".into())),
        };
        let id = match fields.get(self.id_field.as_str()) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let version = match self.kind {
            // A placeholder: the store gives a changed record the entity's next change number.
            ProfileKind::Snapshot => Ok(RowVersion::zero()),
            _ => self.version_of(fields.get(self.version_field.as_str())),
        };
        let Some(id) = id else {
            return Err(reject(None, version.ok(), "missing_id", format!("the record has no `{}`", self.id_field)));
        };
        let version = match version {
            Ok(v) => v,
            Err(msg) => return Err(reject(Some(id), None, "missing_row_version", msg)),
        };
        for f in &self.required {
            if matches!(fields.get(f.as_str()), None | Some(serde_json::Value::Null)) {
                return Err(reject(Some(id), Some(version), "missing_field", format!("required field `{f}` is missing or null")));
            }
        }
        let depth = nesting_depth(payload);
        if depth > MAX_RECORD_DEPTH {
            return Err(reject(
                Some(id),
                Some(version),
                "too_deep",
                format!("the record is nested {depth} levels deep, more than {MAX_RECORD_DEPTH}: readers of the replica could not parse it"),
            ));
        }
        if let Some(schema) = &self.schema {
            if let Err(v) = schema.check(payload) {
                let rejected =
                    Rejected { id: Some(id), version: Some(version), payload: payload.to_string(), kind: "schema", message: v.message, rule: Some(v.rule) };
                return Err(Box::new(rejected));
            }
        }
        Ok(Record { id, version, data: payload.to_string() })
    }

    /// The record's version from its version field, or why it has none.
    fn version_of(&self, value: Option<&serde_json::Value>) -> Result<RowVersion, String> {
        let field = &self.version_field;
        match (value, self.timestamp) {
            (None | Some(serde_json::Value::Null), _) => Err(format!("the record has no `{field}`")),
            (Some(v), None) => RowVersion::from_json(v).ok_or_else(|| format!("`{field}` is {v}, not an unsigned integer")),
            (Some(v), Some((format, _))) => timestamp::to_version(v, format).map_err(|why| format!("`{field}` is {v}, {why}")),
        }
    }
}

/// The cursor keys a snapshot feed uses, or their defaults when it has no `[connection.cursor]`
/// (`id`, the body is the array of records, one page).
pub(crate) fn snapshot_cursor(cursor: Option<&CursorConfig>) -> CursorConfig {
    cursor.cloned().unwrap_or_else(|| CursorConfig {
        id_field: "id".into(),
        version_field: String::new(),
        records_pointer: String::new(),
        filter_param: String::new(),
        extra_query: None,
        page_size_param: None,
        next_token_pointer: None,
        next_token_param: None,
        next_url_pointer: None,
        next: None,
        timestamp_format: None,
    })
}

/// Records nested deeper than this are refused: most JSON readers (serde_json, SQLite's json
/// functions at 1000) stop at about this depth, so the replica would hold rows nobody can read.
pub const MAX_RECORD_DEPTH: usize = 128;

/// The deepest nesting of arrays and objects in a JSON text, without parsing it (no recursion).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Follows a JSON pointer through raw values without building a tree; "" is the root.
fn pointer<'a>(root: &'a RawValue, ptr: &str) -> Result<Option<&'a RawValue>, String> {
    if ptr.is_empty() {
        return Ok(Some(root));
    }
    if !ptr.starts_with('/') {
        return Err(format!("`{ptr}` is not a JSON pointer (it must start with `/`)"));
    }
    let mut cur = root;
    for seg in ptr[1..].split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let text = cur.get().trim_start();
        cur = if text.starts_with('{') {
            let map: BTreeMap<String, &RawValue> = serde_json::from_str(cur.get()).map_err(|e| e.to_string())?;
            match map.get(&seg) {
                Some(v) => v,
                None => return Ok(None),
            }
        } else if text.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(cur.get()).map_err(|e| e.to_string())?;
            match seg.parse::<usize>().ok().and_then(|i| items.get(i).copied()) {
                Some(v) => v,
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
    }
    Ok(Some(cur))
}

/// A string (or number) at a pointer; null, absent or "" mean none.
fn pointer_string(root: &RawValue, ptr: &str) -> Result<Option<String>, String> {
    let Some(raw) = pointer(root, ptr)? else { return Ok(None) };
    Ok(match serde_json::from_str::<serde_json::Value>(raw.get()).map_err(|e| e.to_string())? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The URL of `rel="next"` in an RFC 8288 Link header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("rel=").map(|r| r.trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))).unwrap_or(false)
        });
        (is_next && target.starts_with('<') && target.ends_with('>')).then(|| target[1..target.len() - 1].to_string())
    })
}

/// Reads only the wanted top-level fields of an object; the rest is skipped unparsed.
struct FieldPicker<'w> {
    wanted: &'w [&'w str],
}

impl<'de, 'w> DeserializeSeed<'de> for FieldPicker<'w> {
    type Value = BTreeMap<String, serde_json::Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'w> Visitor<'de> for FieldPicker<'w> {
    type Value = BTreeMap<String, serde_json::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.wanted.contains(&key.as_ref()) {
                out.insert(key.into_owned(), map.next_value::<serde_json::Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
