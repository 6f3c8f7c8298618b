//! The rules for `[[target]]` sections and what entities forward: target ids and URLs,
//! `forward_to`/`forward_path`/`forward_method`, `write_back`, and the two-way pair's `conflict`.

use super::locator::{Locator, Seg};
use super::validate::{check_oauth2, line_of, valid_name};
use super::{Config, ConfigProblem};
use std::collections::HashSet;

impl Config {
    /// Targets and the entities' `forward_to`; errors name the line that is wrong.
    pub(super) fn validate_targets(&self, text: &str, at: &Locator) -> Result<(), ConfigProblem> {
        let at_line = |key: &str, value: &str, msg: String| match line_of(text, key, value) {
            Some(n) => format!("line {n}: {msg}"),
            None => msg,
        };
        let mut ids = HashSet::new();
        for (ti, t) in self.targets.iter().enumerate() {
            let table = [Seg::Key("target"), Seg::Index(ti)];
            let err = |key: &str, msg: String| at.problem(&table, key, at_line("id", &t.id, format!("target `{}`: {msg}", t.id)));
            if !valid_name(&t.id) {
                return Err(err("id", "id may hold only letters, digits, `-` and `_` (it names the keyring entry)".into()));
            }
            if !ids.insert(t.id.as_str()) {
                return Err(err("id", "two targets have this id; give each a unique `id`".into()));
            }
            // A target with a connection's id is that connection's system (a two-way flow) and
            // shares its keyring entry. Some keyrings (Windows) ignore case in account names, so
            // ids that differ only in case would share it by accident.
            if self.connections.iter().any(|c| c.id != t.id && c.id.eq_ignore_ascii_case(&t.id)) {
                return Err(err(
                    "id",
                    "a connection's id differs from it only in case, and both would read the same keyring entry; use the connection's exact id (the same system) or rename the target".into(),
                ));
            }
            at.check_urls(&table, &t.id, &t.base_url, &t.token_url, "target", &err)?;
            check_oauth2(t.auth, &t.token_url, &t.client_id, &err)?;
            at.check_env_names(&table, [("secret_env", &t.secret_env)])?;
            at.check_client_limits(&table, &t.as_connection())?;
        }
        for (ci, c) in self.connections.iter().enumerate() {
            for (ei, e) in c.entities.iter().enumerate() {
                let table = [Seg::Key("connection"), Seg::Index(ci), Seg::Key("entity"), Seg::Index(ei)];
                if let Some(p) = &e.forward_path {
                    at.refuse_secret_in_path(&table, "forward_path", &c.id, p)?;
                }
                let loc = at;
                let at = format!("connection `{}`, entity `{}`", c.id, e.name);
                match &e.forward_to {
                    Some(t) if !ids.contains(t.as_str()) => {
                        let known = if ids.is_empty() {
                            "there is no [[target]] section".to_string()
                        } else {
                            let mut v: Vec<&str> = ids.iter().copied().collect();
                            v.sort();
                            format!("the targets are: {}", v.join(", "))
                        };
                        return Err(loc.problem(
                            &table,
                            "forward_to",
                            at_line("forward_to", t, format!("{at}: forward_to = \"{t}\" names no [[target]] ({known})")),
                        ));
                    }
                    None if e.forward_path.is_some() => {
                        return Err(loc.problem(&table, "forward_path", format!("{at}: forward_path needs forward_to = \"<target id>\"")));
                    }
                    _ => {}
                }
                if let Some(m) = e.forward_method.as_deref().filter(|m| !matches!(*m, "PUT" | "POST" | "PATCH")) {
                    return Err(loc.problem(
                        &table,
                        "forward_method",
                        at_line("forward_method", m, format!("{at}: forward_method must be PUT, POST or PATCH")),
                    ));
                }
                if let Some(wb) = &e.write_back {
                    if !matches!(wb.method.as_str(), "PATCH" | "PUT" | "POST") {
                        return Err(loc.problem(&table, "write_back", format!("{at}: write_back method must be PATCH, PUT or POST, not `{}`", wb.method)));
                    }
                    if !wb.path.starts_with('/') || !wb.path.contains("{id}") {
                        return Err(loc.problem(
                            &table,
                            "write_back",
                            format!("{at}: write_back path must start with `/` and hold `{{id}}` where the record id goes, e.g. \"/{}/{{id}}\"", e.name),
                        ));
                    }
                    loc.refuse_secret_in_path(&table, "write_back", &c.id, &wb.path)?;
                    if !matches!(serde_json::from_str::<serde_json::Value>(&wb.body), Ok(serde_json::Value::Object(m)) if !m.is_empty()) {
                        return Err(loc.problem(
                            &table,
                            "write_back",
                            format!("{at}: write_back body must be a JSON object of the fields to set, e.g. '{{\"synced\": true}}'"),
                        ));
                    }
                    if c.profile == super::ProfileKind::Snapshot {
                        return Err(loc.problem(
                            &table,
                            "write_back",
                            format!("{at}: write_back needs a feed with versions; a snapshot feed cannot tell what is new"),
                        ));
                    }
                }
                if let Some(policy) = &e.conflict {
                    // A pair: this entity forwards to a connection that forwards the same entity back.
                    let peer = e.forward_to.as_deref().filter(|t| {
                        self.connections
                            .iter()
                            .any(|p| p.id == *t && p.entities.iter().any(|pe| pe.name == e.name && pe.forward_to.as_deref() == Some(c.id.as_str())))
                    });
                    let Some(peer) = peer else {
                        return Err(loc.problem(
                            &table,
                            "conflict",
                            format!("{at}: conflict applies to a two-way pair: forward_to a connection whose entity `{}` forwards back to `{}`", e.name, c.id),
                        ));
                    };
                    let theirs = self
                        .connections
                        .iter()
                        .find(|p| p.id == peer)
                        .and_then(|p| p.entities.iter().find(|pe| pe.name == e.name))
                        .and_then(|pe| pe.conflict.as_ref());
                    if theirs.is_some_and(|t| t != policy) {
                        return Err(loc.problem(
                            &table,
                            "conflict",
                            format!("{at}: conflict differs from the one `{peer}`'s entity `{}` sets; a pair has one policy (set it on one side)", e.name),
                        ));
                    }
                    if !matches!(policy.as_str(), "manual" | "newest") && policy != &c.id && policy != peer {
                        return Err(loc.problem(
                            &table,
                            "conflict",
                            at_line("conflict", policy, format!("{at}: conflict must be \"manual\", \"newest\", \"{}\" or \"{peer}\"", c.id)),
                        ));
                    }
                }
                if let Some(p) = e.forward_path.as_deref().filter(|p| !p.starts_with('/')) {
                    return Err(loc.problem(
                        &table,
                        "forward_path",
                        at_line("forward_path", p, format!("{at}: forward_path must start with `/`, e.g. \"/{p}\"")),
                    ));
                }
            }
        }
        Ok(())
    }
}
