//! The rules a parsed config must pass: names, URLs, secrets kept out of the file, value ranges.
//! Each refusal names the key and its line (through the [`Locator`]) and never repeats a value.

use super::locator::{Locator, Seg};
use super::{AuthKind, Config, ConfigProblem, ConnectionConfig, CursorConfig, NextPageMode, ProfileKind};
use crate::record_schema::RecordSchema;
use crate::redact;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

impl Config {
    pub(super) fn validate(&self, loc: &Locator) -> Result<(), ConfigProblem> {
        let mut ids = HashSet::new();
        // Lowercased id → index: SQLite table names ignore case, so ids must differ in more than case.
        let mut folded_ids: HashMap<String, usize> = HashMap::new();
        // Lowercased replica table → (connection, entity) index, for names that map to one table.
        let mut tables: HashMap<String, (usize, usize)> = HashMap::new();
        for (ci, c) in self.connections.iter().enumerate() {
            let at = format!("connection `{}`", c.id);
            let table = [Seg::Key("connection"), Seg::Index(ci)];
            if !valid_name(&c.id) {
                return Err(loc.problem(&table, "id", format!("{at}: id may hold only letters, digits, `-` and `_` (it names keyring entries and tables)")));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(loc.problem(&table, "id", format!("{at}: two connections have this id; give each a unique `id`")));
            }
            if let Some(&other) = folded_ids.get(&c.id.to_ascii_lowercase()) {
                let o = &self.connections[other];
                return Err(loc.problem(
                    &table,
                    "id",
                    format!(
                        "connection \"{}\"{} differs from \"{}\"{} only in case; replica tables ignore case: rename one",
                        c.id,
                        loc.at_line(&[&table[..], &[Seg::Key("id")]].concat()),
                        o.id,
                        loc.at_line(&[Seg::Key("connection"), Seg::Index(other), Seg::Key("id")]),
                    ),
                ));
            }
            folded_ids.insert(c.id.to_ascii_lowercase(), ci);
            let err = |key: &str, msg: String| loc.problem(&table, key, format!("{at}: {msg}"));
            loc.check_urls(&table, &c.id, &c.base_url, &c.token_url, "source", &err)?;
            if let Some(q) = c.cursor.as_ref().and_then(|cur| cur.extra_query.as_deref()) {
                if let Some(name) = url::form_urlencoded::parse(q.as_bytes()).map(|(k, _)| k).find(|k| redact::is_secret_param(k)) {
                    let cursor = [&table[..], &[Seg::Key("cursor")]].concat();
                    return Err(loc.problem(
                        &cursor,
                        "extra_query",
                        secret_in_url_message(&loc.key(&cursor, "extra_query"), &c.id, &format!("carries the credential-looking query parameter `{name}`")),
                    ));
                }
            }
            check_oauth2(c.auth, &c.token_url, &c.client_id, &err)?;
            loc.check_env_names(&table, [("secret_env", &c.secret_env), ("webhook_secret_env", &c.webhook_secret_env)])?;
            loc.check_client_limits(&table, c)?;
            loc.check_duration(&table, "lookback", c.lookback, Duration::ZERO, MAX_DURATION)?;
            match (c.profile, &c.cursor) {
                (ProfileKind::Cursor, None) => {
                    return Err(loc.problem(
                        &table,
                        "profile",
                        format!("{at}: profile = \"cursor\" needs a [connection.cursor] section with at least `filter_param`"),
                    ))
                }
                (ProfileKind::Cursor, Some(cur)) => {
                    let cursor = [&table[..], &[Seg::Key("cursor")]].concat();
                    if cur.filter_param.is_empty() {
                        return Err(loc.problem(
                            &cursor,
                            "filter_param",
                            format!("{at}: the cursor profile needs `filter_param` (the query parameter that receives the checkpoint)"),
                        ));
                    }
                    let ways = [cur.next_token_pointer.is_some(), cur.next_url_pointer.is_some(), cur.next.is_some()].iter().filter(|x| **x).count();
                    if ways != 1 {
                        return Err(loc.problem(
                            &table,
                            "cursor",
                            format!(
                                "{at}: the cursor profile needs exactly one way to find the next page: `next_token_pointer` + \
                             `next_token_param`, `next_url_pointer`, `next = \"link-header\"` or `next = \"short-page\"`"
                            ),
                        ));
                    }
                    check_token_param(loc, &cursor, &at, cur)?;
                    if cur.next == Some(NextPageMode::ShortPage) && cur.page_size_param.is_none() {
                        return Err(loc.problem(
                            &cursor,
                            "page_size_param",
                            format!("{at}: `next = \"short-page\"` needs `page_size_param`, or a short page cannot be told apart"),
                        ));
                    }
                }
                (ProfileKind::Snapshot, cur) => loc.check_snapshot(&table, &at, cur.as_ref())?,
                (ProfileKind::Timestamp, None) => {
                    return Err(loc.problem(
                        &table,
                        "profile",
                        format!(
                            "{at}: profile = \"timestamp\" needs a [connection.cursor] section with `version_field` (the records' last-modified \
                             field) and `filter_param` (the query parameter that receives the checkpoint)"
                        ),
                    ))
                }
                (ProfileKind::Timestamp, Some(cur)) => check_timestamp_cursor(loc, &table, &at, cur)?,
                _ => {}
            }
            if c.profile != ProfileKind::Timestamp {
                let cursor = [&table[..], &[Seg::Key("cursor")]].concat();
                if c.cursor.as_ref().is_some_and(|cur| cur.timestamp_format.is_some()) {
                    return Err(loc.problem(&cursor, "timestamp_format", format!("{at}: `timestamp_format` applies only to profile = \"timestamp\"")));
                }
                if !c.overlap.is_zero() {
                    return Err(loc.problem(&table, "overlap", format!("{at}: `overlap` applies only to profile = \"timestamp\"")));
                }
            }
            loc.check_duration(&table, "overlap", c.overlap, Duration::ZERO, MAX_DURATION)?;
            let mut names = HashSet::new();
            let mut folded_names: HashMap<String, usize> = HashMap::new();
            for (ei, e) in c.entities.iter().enumerate() {
                let at = format!("{at}, entity `{}`", e.name);
                let entity = [&table[..], &[Seg::Key("entity"), Seg::Index(ei)]].concat();
                let name_line = |i: usize| loc.at_line(&[&table[..], &[Seg::Key("entity"), Seg::Index(i), Seg::Key("name")]].concat());
                if !valid_name(&e.name) {
                    return Err(loc.problem(&entity, "name", format!("{at}: name may hold only letters, digits, `-` and `_`")));
                }
                if !names.insert(e.name.as_str()) {
                    return Err(loc.problem(&entity, "name", format!("{at}: listed twice")));
                }
                if let Some(&other) = folded_names.get(&e.name.to_ascii_lowercase()) {
                    return Err(loc.problem(
                        &entity,
                        "name",
                        format!(
                            "{at}: entity \"{}\"{} differs from \"{}\"{} only in case; replica tables ignore case: rename one",
                            e.name,
                            name_line(ei),
                            c.entities[other].name,
                            name_line(other),
                        ),
                    ));
                }
                folded_names.insert(e.name.to_ascii_lowercase(), ei);
                let replica = crate::store::EntityKey::new(&c.id, &e.name).table().to_ascii_lowercase();
                if let Some(&(oc, oe)) = tables.get(&replica) {
                    let (other_conn, other) = (&self.connections[oc], &self.connections[oc].entities[oe]);
                    return Err(loc.problem(
                        &entity,
                        "name",
                        format!(
                            "entity {}/{}{} and {}/{}{} would share the replica table `{replica}` (`-` becomes `_` in table names, \
                         and they ignore case): rename one",
                            c.id,
                            e.name,
                            name_line(ei),
                            other_conn.id,
                            other.name,
                            loc.at_line(&[Seg::Key("connection"), Seg::Index(oc), Seg::Key("entity"), Seg::Index(oe), Seg::Key("name")]),
                        ),
                    ));
                }
                tables.insert(replica, (ci, ei));
                if let Some(p) = &e.path {
                    loc.refuse_secret_in_path(&entity, "path", &c.id, p)?;
                }
                if !(1..=MAX_PAGE_SIZE).contains(&e.page_size) {
                    return Err(loc.problem(
                        &entity,
                        "page_size",
                        format!("{at}: page_size must be between 1 and {MAX_PAGE_SIZE}{}", loc.at_line(&[&entity[..], &[Seg::Key("page_size")]].concat())),
                    ));
                }
                if !(e.deletion_guard > 0.0 && e.deletion_guard <= 1.0) {
                    return Err(loc.problem(&entity, "deletion_guard", format!("{at}: deletion_guard is a share between 0 and 1, e.g. 0.5")));
                }
                if let Some(every) = e.poll_every {
                    loc.check_duration(&entity, "poll_every", every, Duration::from_secs(1), MAX_DURATION)?;
                }
                if let Some(every) = e.full_resync_every {
                    loc.check_duration(&entity, "full_resync_every", every, Duration::from_secs(1), MAX_DURATION)?;
                }
            }
        }
        if let Some(w) = &self.webhooks {
            w.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                loc.problem(&[Seg::Key("webhooks")], "listen", format!("[webhooks] listen = \"{}\" is not an address; write e.g. \"127.0.0.1:8385\"", w.listen))
            })?;
            // A pushed batch is held in memory while it is stored: refuse limits that cannot work.
            if !(1024..=1 << 30).contains(&w.ingest_max_bytes) {
                return Err(loc.problem(
                    &[Seg::Key("webhooks")],
                    "ingest_max_bytes",
                    format!(
                        "[webhooks] ingest_max_bytes must be between 1024 and {} (1 GiB); the default is {}",
                        1 << 30,
                        super::sections::DEFAULT_INGEST_MAX_BYTES
                    ),
                ));
            }
        }
        if let Some(m) = &self.metrics {
            m.listen.parse::<std::net::SocketAddr>().map_err(|_| {
                loc.problem(
                    &[Seg::Key("metrics")],
                    "listen",
                    format!(
                        "[metrics] listen = \"{}\" is not an address; write e.g. \"127.0.0.1:9464\"{}",
                        m.listen,
                        loc.at_line(&[Seg::Key("metrics"), Seg::Key("listen")])
                    ),
                )
            })?;
        }
        if let Some(r) = &self.replica {
            r.check(loc)?;
        }
        let storage = [Seg::Key("storage")];
        loc.check_duration(
            &storage,
            "request_log_retention",
            self.storage.request_log_retention,
            Duration::from_secs(1),
            Duration::from_secs(10 * 365 * 86400),
        )?;
        if self.storage.runs_kept == 0 {
            return Err(loc.problem(
                &storage,
                "runs_kept",
                format!("{} must be at least 1 (the last run of each entity is what status shows)", loc.key(&storage, "runs_kept")),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Reads and compiles each entity's `schema` once; a file that is missing, not JSON or not a
    /// valid JSON Schema is refused naming the key, its line and the path.
    pub(super) fn load_schemas(&mut self, dir: &Path, loc: &Locator) -> Result<(), ConfigProblem> {
        for (ci, c) in self.connections.iter_mut().enumerate() {
            for (ei, e) in c.entities.iter_mut().enumerate() {
                let Some(schema) = e.schema.as_deref() else { continue };
                let entity = [Seg::Key("connection"), Seg::Index(ci), Seg::Key("entity"), Seg::Index(ei)];
                let at = format!("connection `{}`, entity `{}`: {}", c.id, e.name, loc.key(&entity, "schema"));
                if schema.trim().is_empty() {
                    return Err(loc.problem(&entity, "schema", format!("{at}: schema is empty; name a JSON Schema file, e.g. \"schemas/{}.json\"", e.name)));
                }
                let compiled = RecordSchema::load(&dir.join(schema)).map_err(|why| loc.problem(&entity, "schema", format!("{at}: {why}")))?;
                e.record_schema = Some(compiled);
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads each connection's, target's and the replica's `ca_file` once: a file that is missing or holds no
    /// PEM certificate is refused naming the key, its line and the path.
    pub(super) fn load_ca_files(&mut self, dir: &Path, loc: &Locator) -> Result<(), ConfigProblem> {
        let connections = self.connections.iter_mut().enumerate().map(|(i, c)| ("connection", i, format!("connection `{}`", c.id), &c.ca_file, &mut c.ca));
        let targets = self.targets.iter_mut().enumerate().map(|(i, t)| ("target", i, format!("target `{}`", t.id), &t.ca_file, &mut t.ca));
        for (table, i, name, file, ca) in connections.chain(targets) {
            let Some(file) = file.as_deref() else { continue };
            let at = [Seg::Key(table), Seg::Index(i)];
            let what = format!("{name}: {}", loc.key(&at, "ca_file"));
            if file.trim().is_empty() {
                return Err(loc.problem(
                    &at,
                    "ca_file",
                    format!("{what}: ca_file is empty; name a PEM file of CA certificates, e.g. \"certs/proxy-root.pem\""),
                ));
            }
            let loaded = crate::source::tls::CaFile::load(&dir.join(file)).map_err(|why| loc.problem(&at, "ca_file", format!("{what}: {why}")))?;
            *ca = Some(std::sync::Arc::new(loaded));
        }
        match self.replica.as_mut() {
            Some(replica) => replica.load_ca_file(dir, loc),
            None => Ok(()),
        }
    }
}

/// The 1-based line holding `key = "value"`, for errors about a value that parsed fine.
pub(super) fn line_of(text: &str, key: &str, value: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let Some((k, v)) = l.split_once('=') else { return false };
            k.trim().trim_matches('"') == key && v.split('#').next().unwrap_or("").trim().trim_matches(['"', '\'']) == value
        })
        .map(|i| i + 1)
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Longest duration any setting takes; beyond it timers would overflow (and nothing would happen).
const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);
const MAX_PAGE_SIZE: u32 = 100_000;

/// OAuth2 needs where to get a token and who asks for it; the secret is never in the file.
pub(super) fn check_oauth2(
    auth: AuthKind,
    token_url: &Option<String>,
    client_id: &Option<String>,
    err: &dyn Fn(&str, String) -> ConfigProblem,
) -> Result<(), ConfigProblem> {
    if auth == AuthKind::Oauth2 && (token_url.is_none() || client_id.is_none()) {
        let missing = if token_url.is_none() { "token_url" } else { "client_id" };
        return Err(err(missing, "auth = \"oauth2\" needs `token_url` and `client_id` (the client secret goes in the keyring)".into()));
    }
    Ok(())
}

fn secret_in_url_message(key: &str, id: &str, problem: &str) -> String {
    format!(
        "{key} {problem}; put credentials in the keyring with `syncmon creds set {id}` (or name an environment variable \
         with `secret_env`) and choose the auth method with `auth` — the value is not shown"
    )
}

impl<'a> Locator<'a> {
    pub(super) fn check_duration(&self, table: &[Seg], key: &str, d: Duration, min: Duration, max: Duration) -> Result<(), ConfigProblem> {
        if d < min || d > max {
            // Whole days as "365d": humantime would write a year as "11months 30days 3h 50m 24s".
            let fmt = |d: Duration| match d.as_secs() {
                _ if d.is_zero() => "0s".to_string(),
                s if s >= 2 * 86400 && s % 86400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86400),
                _ => humantime::format_duration(d).to_string(),
            };
            return Err(self.problem(
                table,
                key,
                format!("{} must be between {} and {}: a value outside cannot work", self.key(table, key), fmt(min), fmt(max)),
            ));
        }
        Ok(())
    }

    /// `secret_env` names a variable; anything else is most likely the secret itself, pasted into
    /// the wrong key, and is refused without being repeated.
    pub(super) fn check_env_names<const N: usize>(&self, table: &[Seg], keys: [(&str, &Option<String>); N]) -> Result<(), ConfigProblem> {
        for (key, value) in keys {
            let Some(name) = value else { continue };
            let mut b = name.bytes();
            let valid = b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if !valid {
                return Err(self.problem(
                    table,
                    key,
                    format!(
                        "{} must be the NAME of an environment variable (letters, digits, `_`), not the secret itself — the value \
                     is not shown; keep the secret in the keyring with `syncmon creds set <id>` or in that variable",
                        self.key(table, key)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The limits a connection and a target share.
    pub(super) fn check_client_limits(&self, table: &[Seg], c: &ConnectionConfig) -> Result<(), ConfigProblem> {
        if !(1..=256).contains(&c.max_concurrency) {
            return Err(self.problem(table, "max_concurrency", format!("{} must be between 1 and 256", self.key(table, "max_concurrency"))));
        }
        if !(c.requests_per_second.is_finite() && (0.001..=1_000_000.0).contains(&c.requests_per_second)) {
            return Err(self.problem(
                table,
                "requests_per_second",
                format!("{} must be between 0.001 (one request in about 17 minutes) and 1000000", self.key(table, "requests_per_second")),
            ));
        }
        self.check_duration(table, "timeout", c.timeout, Duration::from_millis(100), Duration::from_secs(3600))?;
        if c.max_retries > 100 {
            return Err(self.problem(table, "max_retries", format!("{} must be between 0 and 100", self.key(table, "max_retries"))));
        }
        self.check_duration(table, "backoff_base", c.backoff_base, Duration::from_millis(1), Duration::from_secs(3600))?;
        self.check_duration(table, "backoff_max", c.backoff_max, c.backoff_base, Duration::from_secs(86400))?;
        if !(1..=10_000).contains(&c.breaker_threshold) {
            return Err(self.problem(table, "breaker_threshold", format!("{} must be between 1 and 10000", self.key(table, "breaker_threshold"))));
        }
        self.check_duration(table, "breaker_cooldown", c.breaker_cooldown, Duration::from_millis(10), Duration::from_secs(86400))
    }

    fn refuse_secret_in_url(&self, table: &[Seg], key: &str, id: &str, url: &url::Url) -> Result<(), ConfigProblem> {
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some("contains a user name/password".to_string())
        } else {
            url.query_pairs().map(|(k, _)| k).find(|k| redact::is_secret_param(k)).map(|k| format!("carries the credential-looking query parameter `{k}`"))
        };
        match problem {
            Some(p) => Err(self.problem(table, key, secret_in_url_message(&self.key(table, key), id, &p))),
            None => Ok(()),
        }
    }

    fn refuse_secret_in_url_text(&self, table: &[Seg], key: &str, id: &str, text: &str) -> Result<(), ConfigProblem> {
        let url = url::Url::parse(text).map_err(|e| {
            self.problem(table, key, format!("{} is not a URL ({e}); write e.g. \"https://login.example.com/oauth2/token\"", self.key(table, key)))
        })?;
        self.refuse_secret_in_url(table, key, id, &url)
    }

    /// The URLs of a connection or a target: `base_url` an http(s) URL, neither it nor
    /// `token_url` holding a credential. `side` is what a local http:// URL would reach
    /// ("source", "target"); `err` words a refusal the way the caller words its others.
    pub(super) fn check_urls(
        &self,
        table: &[Seg],
        id: &str,
        base_url: &str,
        token_url: &Option<String>,
        side: &str,
        err: &dyn Fn(&str, String) -> ConfigProblem,
    ) -> Result<(), ConfigProblem> {
        let url = url::Url::parse(base_url).map_err(|e| {
            err(
                "base_url",
                format!("base_url `{}` is not a URL ({e}); write e.g. \"https://api.example.com/tenant/prod/company\"", redact::redact_url_text(base_url)),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("base_url", format!("base_url must start with https:// (or http:// for a local {side})")));
        }
        self.refuse_secret_in_url(table, "base_url", id, &url)?;
        if let Some(token_url) = token_url {
            self.refuse_secret_in_url_text(table, "token_url", id, token_url)?;
        }
        Ok(())
    }

    /// A path below a base URL (`/items?api_key=…` is refused like a URL).
    pub(super) fn refuse_secret_in_path(&self, table: &[Seg], key: &str, id: &str, path: &str) -> Result<(), ConfigProblem> {
        let base = url::Url::parse("http://localhost/").expect("a constant URL");
        match base.join(path) {
            Ok(u) => self.refuse_secret_in_url(table, key, id, &u),
            Err(_) => Ok(()),
        }
    }
}

/// The timestamp profile's `[connection.cursor]`: the timestamp field named, one way to page that
/// is not `short-page` (it asks again from the highest version, which an inclusive "since"
/// answers with the same page when a page's records share one timestamp).
fn check_timestamp_cursor(loc: &Locator, table: &[Seg], at: &str, cur: &CursorConfig) -> Result<(), ConfigProblem> {
    let cursor = [table, &[Seg::Key("cursor")]].concat();
    if loc.line(&[&cursor[..], &[Seg::Key("version_field")]].concat()).is_none() {
        return Err(loc.problem(
            table,
            "cursor",
            format!("{at}: profile = \"timestamp\" needs `version_field` in [connection.cursor]: the records' last-modified field, e.g. \"lastModified\""),
        ));
    }
    if cur.filter_param.is_empty() {
        return Err(loc.problem(
            &cursor,
            "filter_param",
            format!("{at}: the timestamp profile needs `filter_param` (the query parameter that receives the checkpoint, inclusively)"),
        ));
    }
    let ways = [cur.next_token_pointer.is_some(), cur.next_url_pointer.is_some(), cur.next == Some(NextPageMode::LinkHeader)].iter().filter(|x| **x).count();
    if cur.next == Some(NextPageMode::ShortPage) {
        return Err(loc.problem(
            &cursor,
            "next",
            format!("{at}: the timestamp profile cannot page by `next = \"short-page\"` (a full page of one timestamp would be asked for again); use `next_url_pointer`, `next_token_pointer` + `next_token_param` or `next = \"link-header\"`"),
        ));
    }
    if ways != 1 {
        return Err(loc.problem(
            table,
            "cursor",
            format!(
                "{at}: the timestamp profile needs exactly one way to find the next page: `next_token_pointer` + `next_token_param`, \
                 `next_url_pointer` or `next = \"link-header\"`"
            ),
        ));
    }
    check_token_param(loc, &cursor, at, cur)
}

/// Any profile that pages by a token: `next_token_pointer` needs `next_token_param`, the query
/// parameter the token travels in.
pub(super) fn check_token_param(loc: &Locator, cursor: &[Seg], at: &str, cur: &CursorConfig) -> Result<(), ConfigProblem> {
    if cur.next_token_pointer.is_some() && cur.next_token_param.is_none() {
        return Err(loc.problem(
            cursor,
            "next_token_param",
            format!("{at}: `next_token_pointer` needs `next_token_param` (the query parameter that carries the token)"),
        ));
    }
    Ok(())
}
