//! An entity's JSON Schema (`schema = "schemas/items.json"`): read and compiled once when the
//! config is loaded, then checked against each record of that entity by the profile. Only such
//! entities build a JSON tree per record; the others keep the profile's tree-free parsing.
//!
//! The validator is the `jsonschema` crate without its features: no `$ref` fetched over HTTP or
//! read from other files (a schema is one file; `$ref` within it works), and no IDNA, so the
//! `idn-hostname` and `idn-email` formats are not checked; the other formats are.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A compiled schema and the file it came from.
#[derive(Clone)]
pub struct RecordSchema {
    path: PathBuf,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for RecordSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSchema").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The first rule of the schema a record broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The JSON pointer of the value that broke it ("" is the record itself).
    pub pointer: String,
    /// The schema keyword: `type`, `minimum`, `pattern`, `required`, …
    pub rule: String,
    /// `/price: -1 is less than the minimum of 0 (rule `minimum`)`, plus how many more problems.
    pub message: String,
}

/// Values longer than this are not quoted in a message (the payload is in the failed item).
const QUOTED_VALUE_CHARS: usize = 60;

impl RecordSchema {
    /// Reads and compiles the schema file; the error says what is wrong with it (the caller
    /// names the config key).
    pub fn load(path: &Path) -> Result<RecordSchema, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the schema file {}: {e}", path.display()))?;
        let schema: Value = serde_json::from_str(&text).map_err(|e| format!("the schema file {} is not JSON: {e}", path.display()))?;
        // `format` is checked, whatever the draft (2019-09 and 2020-12 only annotate by default): a
        // schema that names `date-time` or `email` means it for the records.
        let validator = jsonschema::options().should_validate_formats(true).build(&schema).map_err(|e| {
            let at = e.schema_path().as_str().to_string();
            let at = if at.is_empty() { String::new() } else { format!(" at `{at}`") };
            format!("the schema file {} is not a valid JSON Schema{at}: {}", path.display(), e.masked())
        })?;
        Ok(RecordSchema { path: path.to_path_buf(), validator: Arc::new(validator) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks one record (its JSON text): the first rule it breaks, if any.
    pub fn check(&self, record_text: &str) -> Result<(), Violation> {
        let record: Value = match serde_json::from_str(record_text) {
            Ok(v) => v,
            Err(e) => return Err(Violation { pointer: String::new(), rule: "json".into(), message: format!("the record is not JSON: {e}") }),
        };
        let mut errors = self.validator.iter_errors(&record);
        let Some(first) = errors.next() else { return Ok(()) };
        let more = errors.take(99).count();
        let pointer = first.instance_path().as_str().to_string();
        let rule = first.kind().keyword().to_string();
        let shown = first.instance().to_string();
        let value = if shown.chars().count() <= QUOTED_VALUE_CHARS { shown } else { "the value".to_string() };
        let mut message = format!("{}: {} (rule `{rule}`)", if pointer.is_empty() { "the record" } else { &pointer }, first.masked_with(value));
        if more > 0 {
            message.push_str(&format!("; and {more}{} more", if more == 99 { "+" } else { "" }));
        }
        Err(Violation { pointer, rule, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Result<RecordSchema, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, text).unwrap();
        RecordSchema::load(&path)
    }

    #[test]
    fn a_violation_names_the_pointer_and_the_rule() {
        let s = schema(r#"{"type":"object","properties":{"price":{"type":"number","minimum":0}}}"#).unwrap();
        assert_eq!(s.check(r#"{"price":3}"#), Ok(()));
        let v = s.check(r#"{"price":-1}"#).unwrap_err();
        assert_eq!((v.pointer.as_str(), v.rule.as_str()), ("/price", "minimum"));
        assert!(v.message.starts_with("/price: -1 ") && v.message.contains("(rule `minimum`)"), "{}", v.message);
    }

    #[test]
    fn formats_are_checked_in_every_draft() {
        let s = schema(r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"at":{"format":"date-time"}}}"#).unwrap();
        assert_eq!(s.check(r#"{"at":"2024-01-01T00:00:00Z"}"#), Ok(()));
        let v = s.check(r#"{"at":"yesterday"}"#).unwrap_err();
        assert_eq!((v.pointer.as_str(), v.rule.as_str()), ("/at", "format"), "{}", v.message);
    }

    #[test]
    fn an_invalid_schema_is_refused_with_what_is_wrong() {
        let e = schema(r#"{"type": 12}"#).unwrap_err();
        assert!(e.contains("not a valid JSON Schema"), "{e}");
        let e = schema("{nope").unwrap_err();
        assert!(e.contains("is not JSON"), "{e}");
        let e = RecordSchema::load(Path::new("/nonexistent/dir/s.json")).unwrap_err();
        assert!(e.contains("cannot read the schema file /nonexistent/dir/s.json"), "{e}");
    }
}
