//! The config editor behind `save_connection` and `save_target`: writes one connection (or
//! target) into the TOML file in place (comments and the other connections stay), validated by the same rules as loading.

use super::{ApiError, AuthView, ConnectionView, CursorView, EntityView, SaveConnectionResult, TargetView};
use crate::config::Config;
use crate::{ErrorCode, Syncmon};
use std::time::Duration;

fn valid_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// An environment variable's name in `field`, refused when it is not one.
fn check_env_name(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value.as_deref().filter(|s| !s.is_empty()) {
        // Most likely the secret itself pasted into the wrong box: never write it.
        Some(name) if !valid_env_name(name) => Err(ApiError::field(
            ErrorCode::Config,
            field,
            "this must be the NAME of an environment variable (letters, digits, `_`), not the secret itself; \
             to store the secret, use Set secret (the OS keyring)",
        )),
        _ => Ok(()),
    }
}

/// The auth keys a connection and a target share, checked the same way.
fn check_auth(v: &AuthView) -> Result<(), ApiError> {
    check_env_name("secret_env", &v.secret_env)?;
    if !matches!(v.auth.as_str(), "none" | "api_key" | "bearer" | "oauth2") {
        return Err(ApiError::field(ErrorCode::Config, "auth", format!("auth `{}` is none of none, api_key, bearer, oauth2", v.auth)));
    }
    Ok(())
}

/// The auth keys written into a `[[connection]]` or `[[target]]` table (defaults left out).
fn fill_auth(t: &mut toml_edit::Table, v: &AuthView) {
    set_unless_default(t, "auth", v.auth.as_str(), "none");
    match v.api_key_header.as_deref().filter(|s| !s.is_empty()) {
        Some(h) => set_unless_default(t, "api_key_header", h, "x-np-api-key"),
        None => {
            t.remove("api_key_header");
        }
    }
    set_opts(t, [("token_url", &v.token_url), ("client_id", &v.client_id), ("scope", &v.scope), ("secret_env", &v.secret_env)]);
}

/// Checks what the TOML types alone cannot say well, naming the form field.
fn check_view(v: &ConnectionView) -> Result<(), ApiError> {
    check_auth(&v.credentials)?;
    check_env_name("webhook_secret_env", &v.webhook_secret_env)?;
    if !matches!(v.profile.as_str(), "rowversion" | "cursor" | "snapshot" | "timestamp") {
        return Err(ApiError::field(ErrorCode::Config, "profile", format!("profile `{}` is none of rowversion, cursor, snapshot, timestamp", v.profile)));
    }
    let duration = |field: String, text: &str| {
        humantime::parse_duration(text)
            .map(|_| ())
            .map_err(|_| ApiError::field(ErrorCode::Config, field, "this is not a duration; write e.g. \"30s\", \"5m\", \"24h\""))
    };
    duration("timeout".into(), &v.timeout)?;
    if let Some(overlap) = v.overlap.as_deref().filter(|s| !s.trim().is_empty()) {
        duration("overlap".into(), overlap)?;
    }
    if let Some(cur) = &v.cursor {
        if let Some(next) = cur.next.as_deref().filter(|s| !s.is_empty()) {
            if !matches!(next, "link-header" | "short-page") {
                return Err(ApiError::field(ErrorCode::Config, "cursor.next", format!("`{next}` is neither link-header nor short-page")));
            }
        }
        if let Some(f) = cur.timestamp_format.as_deref().filter(|s| !s.is_empty()) {
            if !matches!(f, "rfc3339" | "epoch_seconds" | "epoch_millis") {
                return Err(ApiError::field(ErrorCode::Config, "cursor.timestamp_format", format!("`{f}` is none of rfc3339, epoch_seconds, epoch_millis")));
            }
        }
    }
    for (i, e) in v.entities.iter().enumerate() {
        if e.poll_every.trim() != "never" {
            duration(format!("entities[{i}].poll_every"), &e.poll_every)?;
        }
        if let Some(f) = &e.full_resync_every {
            duration(format!("entities[{i}].full_resync_every"), f)?;
        }
    }
    Ok(())
}

/// Writes `v` into the table, keeping the comments around an existing key and value (replacing
/// the item in place: inserting anew would drop the comment lines above the key).
fn set(table: &mut toml_edit::Table, key: &str, v: impl Into<toml_edit::Value>) {
    let mut v: toml_edit::Value = v.into();
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *v.decor_mut() = old.decor().clone();
            }
            *item = toml_edit::Item::Value(v);
        }
        None => {
            table.insert(key, toml_edit::Item::Value(v));
        }
    }
}

/// Like `set`, but a value equal to the default is only written when the file already has the key.
fn set_unless_default<T: PartialEq + Into<toml_edit::Value>>(table: &mut toml_edit::Table, key: &str, v: T, default: T) {
    if table.contains_key(key) || v != default {
        set(table, key, v);
    }
}

fn set_opt(table: &mut toml_edit::Table, key: &str, v: &Option<String>) {
    match v.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => set(table, key, s),
        None => {
            table.remove(key);
        }
    }
}

fn set_opts<const N: usize>(table: &mut toml_edit::Table, values: [(&str, &Option<String>); N]) {
    for (key, value) in values {
        set_opt(table, key, value);
    }
}

fn set_duration(table: &mut toml_edit::Table, key: &str, text: &str, default: Duration) {
    let same = humantime::parse_duration(text).is_ok_and(|d| d == default);
    if table.contains_key(key) || !same {
        set(table, key, text);
    }
}

fn fill_entity(t: &mut toml_edit::Table, e: &EntityView) {
    set(t, "name", e.name.as_str());
    set_opt(t, "path", &e.path);
    set_duration(t, "poll_every", &e.poll_every, crate::config::DEFAULT_POLL_EVERY);
    set_unless_default(t, "page_size", e.page_size as i64, 1000);
    set_opt(t, "full_resync_every", &e.full_resync_every);
    if e.required_fields.is_empty() {
        t.remove("required_fields");
    } else {
        set(t, "required_fields", e.required_fields.iter().collect::<toml_edit::Array>());
    }
    set_unless_default(t, "deletion_guard", e.deletion_guard, 0.5);
    set_opt(t, "schema", &e.schema);
}

/// `[connection.cursor]`: kept in place (with its comments) when the file has it, added otherwise.
fn fill_cursor(t: &mut toml_edit::Table, profile: &str, cur: Option<&CursorView>) {
    let Some(cur) = cur else {
        t.remove("cursor");
        return;
    };
    let (mut table, had) = match t.remove("cursor") {
        Some(toml_edit::Item::Table(table)) => (table, true),
        Some(toml_edit::Item::Value(toml_edit::Value::InlineTable(inline))) => (inline.into_table(), true),
        _ => (toml_edit::Table::new(), false),
    };
    set_unless_default(&mut table, "id_field", cur.id_field.as_str(), "id");
    match cur.version_field.as_deref().filter(|s| !s.is_empty()) {
        // Only the cursor profile has a default for it: the timestamp profile must name the
        // field, and a snapshot must be refused for naming one.
        Some(f) if profile == "cursor" => set_unless_default(&mut table, "version_field", f, "rowVersion"),
        Some(f) => set(&mut table, "version_field", f),
        None => {
            table.remove("version_field");
        }
    }
    set_unless_default(&mut table, "records_pointer", cur.records_pointer.as_str(), "");
    set_opts(
        &mut table,
        [
            ("filter_param", &cur.filter_param),
            ("extra_query", &cur.extra_query),
            ("page_size_param", &cur.page_size_param),
            ("next_token_pointer", &cur.next_token_pointer),
            ("next_token_param", &cur.next_token_param),
            ("next_url_pointer", &cur.next_url_pointer),
            ("next", &cur.next),
        ],
    );
    // The form shows the format in effect; the default is written only where the file has it.
    match cur.timestamp_format.as_deref().filter(|s| !s.is_empty()) {
        Some(f) => set_unless_default(&mut table, "timestamp_format", f, "rfc3339"),
        None => {
            table.remove("timestamp_format");
        }
    }
    // A snapshot left at its defaults gets no empty `[connection.cursor]` it did not have.
    if had || !table.is_empty() {
        t.insert("cursor", toml_edit::Item::Table(table));
    }
}

fn fill_connection(t: &mut toml_edit::Table, v: &ConnectionView) {
    set(t, "id", v.id.as_str());
    set(t, "base_url", v.base_url.as_str());
    set_unless_default(t, "profile", v.profile.as_str(), "rowversion");
    fill_auth(t, &v.credentials);
    set_opts(t, [("webhook_secret_env", &v.webhook_secret_env), ("api_version", &v.api_version)]);
    set_unless_default(t, "max_concurrency", v.max_concurrency as i64, 5);
    set_unless_default(t, "requests_per_second", v.requests_per_second, 10.0);
    set_duration(t, "timeout", &v.timeout, Duration::from_secs(30));
    match v.overlap.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(o) => set_duration(t, "overlap", o, Duration::ZERO),
        None => {
            t.remove("overlap");
        }
    }
    fill_cursor(t, &v.profile, v.cursor.as_ref());

    // Entities in the order the screen lists them; existing tables (and their comments) are kept.
    let mut old: Vec<toml_edit::Table> = match t.remove("entity") {
        Some(toml_edit::Item::ArrayOfTables(a)) => a.into_iter().collect(),
        _ => Vec::new(),
    };
    let mut entities = toml_edit::ArrayOfTables::new();
    for e in &v.entities {
        let mut table = match old.iter().position(|o| o.get("name").and_then(|n| n.as_str()) == Some(e.name.as_str())) {
            Some(i) => old.remove(i),
            None => toml_edit::Table::new(),
        };
        fill_entity(&mut table, e);
        entities.push(table);
    }
    if !entities.is_empty() {
        t.insert("entity", toml_edit::Item::ArrayOfTables(entities));
    }
}

/// The config file's text and its path (an absent file reads as empty).
fn read_config(sm: &Syncmon) -> Result<(&std::path::Path, toml_edit::DocumentMut), ApiError> {
    let path = sm
        .config_path()
        .ok_or_else(|| ApiError::usage("this engine was started without a config file, so there is nothing to save to; start it with --config PATH"))?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ApiError::new(ErrorCode::Io, format!("cannot read {}: {e}", path.display()))),
    };
    let doc = text.parse().map_err(|e| ApiError::new(ErrorCode::Config, format!("{} is not valid TOML ({e}); fix it by hand first", path.display())))?;
    Ok((path, doc))
}

/// The index of the `[[name]]` table whose `id` is `id`, added at the end when there is none.
fn table_of<'d>(doc: &'d mut toml_edit::DocumentMut, path: &std::path::Path, name: &str, id: &str) -> Result<(&'d mut toml_edit::Table, usize), ApiError> {
    if !doc.contains_key(name) {
        doc.insert(name, toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
    }
    let tables = doc[name]
        .as_array_of_tables_mut()
        .ok_or_else(|| ApiError::new(ErrorCode::Config, format!("{}: `{name}` must be written [[{name}]]", path.display())))?;
    let found = tables.iter().position(|t| t.get("id").and_then(|i| i.as_str()) == Some(id));
    let index = found.unwrap_or_else(|| {
        tables.push(toml_edit::Table::new());
        tables.len() - 1
    });
    Ok((tables.get_mut(index).expect("the table was just found or added"), index))
}

/// Validates the edited file with the same rules as loading (a refusal inside the table being
/// saved names its form field: `prefix` is `connections[2].`), then, when `check` agrees, writes
/// it next to the file and renames it over it, so a crash never leaves half a config.
fn write_checked(
    path: &std::path::Path,
    doc: &toml_edit::DocumentMut,
    prefix: &str,
    check: impl FnOnce(&Config) -> Result<(), ApiError>,
) -> Result<SaveConnectionResult, ApiError> {
    let new_text = doc.to_string();
    // Relative paths in it (an entity's `schema`) are read from the file's directory, as at load.
    let dir = path.parent().unwrap_or(std::path::Path::new(""));
    let parsed = Config::parse_in(&new_text, dir).map_err(|p| ApiError {
        code: ErrorCode::Config,
        field: p.key.as_deref().and_then(|k| k.strip_prefix(prefix)).map(str::to_string),
        message: p.message,
    })?;
    check(&parsed)?;
    let tmp = path.with_extension("toml.saving");
    std::fs::write(&tmp, new_text.as_bytes())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("cannot write {}: {e}", path.display())))?;
    Ok(SaveConnectionResult { path: path.display().to_string(), restart_required: true })
}

/// Saves one connection into the config file, editing it in place (comments and the other
/// connections stay as they are). Validated with the same rules as loading; never writes a secret.
pub fn save_connection(sm: &Syncmon, v: &ConnectionView) -> Result<SaveConnectionResult, ApiError> {
    check_view(v)?;
    let (path, mut doc) = read_config(sm)?;
    let (table, index) = table_of(&mut doc, path, "connection", &v.id)?;
    fill_connection(table, v);
    write_checked(path, &doc, &format!("connections[{index}]."), |parsed| {
        // The written file must say what the screen said: the entities under this connection.
        let names: Vec<&str> = parsed.connection(&v.id).map(|c| c.entities.iter().map(|e| e.name.as_str()).collect()).unwrap_or_default();
        if names != v.entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>() {
            return Err(ApiError::new(ErrorCode::Config, format!("could not place the entities of `{}` in {}; edit the file by hand", v.id, path.display())));
        }
        Ok(())
    })
}

fn fill_target(t: &mut toml_edit::Table, v: &TargetView) {
    set(t, "id", v.id.as_str());
    set(t, "base_url", v.base_url.as_str());
    fill_auth(t, &v.credentials);
    set_unless_default(t, "max_concurrency", v.max_concurrency as i64, 5);
    set_unless_default(t, "requests_per_second", v.requests_per_second, 10.0);
    set_duration(t, "timeout", &v.timeout, Duration::from_secs(30));
    set_unless_default(t, "max_retries", v.max_retries as i64, 5);
    match v.idempotency_header.as_deref().filter(|s| !s.is_empty()) {
        Some(h) => set_unless_default(t, "idempotency_header", h, "Idempotency-Key"),
        None => {
            t.remove("idempotency_header");
        }
    }
    let ignore: Vec<&str> = v.ignore_fields.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
    if ignore.is_empty() {
        t.remove("ignore_fields");
    } else {
        set(t, "ignore_fields", ignore.into_iter().collect::<toml_edit::Array>());
    }
}

/// Checks what the TOML types alone cannot say well, naming the form field.
fn check_target_view(v: &TargetView) -> Result<(), ApiError> {
    check_auth(&v.credentials)?;
    humantime::parse_duration(&v.timeout).map_err(|_| ApiError::field(ErrorCode::Config, "timeout", "this is not a duration; write e.g. \"30s\", \"2m\""))?;
    Ok(())
}

/// Saves one `[[target]]` into the config file in place, like [`save_connection`]: the keys the
/// form does not show (backoff, breaker) and the comments stay; never writes a secret.
pub fn save_target(sm: &Syncmon, v: &TargetView) -> Result<SaveConnectionResult, ApiError> {
    check_target_view(v)?;
    let (path, mut doc) = read_config(sm)?;
    let (table, index) = table_of(&mut doc, path, "target", &v.id)?;
    fill_target(table, v);
    write_checked(path, &doc, &format!("targets[{index}]."), |_| Ok(()))
}
