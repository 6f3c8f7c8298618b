//! The small key/value settings table (the UI's saved preferences).

use super::{Result, Store};
use rusqlite::params;

impl Store {
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_opt("SELECT value FROM settings WHERE key = ?1", params![key], |r| r.get(0))?))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.write(|c| {
            c.execute("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params![key, value])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;

    #[test]
    fn settings_round_trip() {
        let (_d, store, _key) = setup();
        assert_eq!(store.setting("ui").unwrap(), None);
        store.set_setting("ui", "{}").unwrap();
        store.set_setting("ui", "{\"a\":1}").unwrap();
        assert_eq!(store.setting("ui").unwrap().as_deref(), Some("{\"a\":1}"));
    }
}
