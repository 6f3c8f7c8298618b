//! rowVersions are unsigned integers of any length, carried as decimal text.
//!
//! They must never be compared as strings: "999999" > "1000000" as text, and a replicator that
//! compares them that way silently drops every change once the version gains a digit. The
//! canonical form (no leading zeros) orders correctly by (length, bytes), which is also how the
//! replica compares them in SQL.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RowVersion(String);

impl RowVersion {
    pub fn zero() -> Self {
        RowVersion("0".to_string())
    }

    /// Parses decimal digits (leading zeros allowed, surrounding whitespace not).
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = text.trim_start_matches('0');
        Some(RowVersion(if trimmed.is_empty() { "0".to_string() } else { trimmed.to_string() }))
    }

    /// Accepts a JSON string of digits or a non-negative JSON integer.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => n.as_u64().map(Self::from),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0 == "0"
    }
}

impl From<u64> for RowVersion {
    fn from(v: u64) -> Self {
        RowVersion(v.to_string())
    }
}

impl Default for RowVersion {
    fn default() -> Self {
        Self::zero()
    }
}

impl Ord for RowVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for RowVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl serde::Serialize for RowVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for RowVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RowVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RowVersion({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(s: &str) -> RowVersion {
        RowVersion::parse(s).unwrap()
    }

    #[test]
    fn a_version_that_gains_a_digit_is_newer() {
        assert!(rv("1000000") > rv("999999"), "text comparison would say the opposite");
        assert!(rv("10") > rv("9"));
    }

    #[test]
    fn versions_longer_than_u64_compare_as_integers() {
        assert!(rv("184467440737095516160") > rv("18446744073709551615"));
        assert!(rv("99999999999999999999999") < rv("100000000000000000000000"));
    }

    #[test]
    fn leading_zeros_are_canonicalised() {
        assert_eq!(rv("000123"), rv("123"));
        assert_eq!(rv("0000").as_str(), "0");
    }

    #[test]
    fn non_digits_are_refused() {
        assert!(RowVersion::parse("").is_none());
        assert!(RowVersion::parse("-1").is_none());
        assert!(RowVersion::parse("12a").is_none());
        assert!(RowVersion::parse(" 1").is_none());
        assert!(RowVersion::from_json(&serde_json::json!(1.5)).is_none());
        assert!(RowVersion::from_json(&serde_json::json!(-3)).is_none());
        assert_eq!(RowVersion::from_json(&serde_json::json!(42)), Some(rv("42")));
    }
}
