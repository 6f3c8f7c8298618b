#![no_main]
//! Any text through the config loader: no panic; an accepted config builds its profiles.
use libfuzzer_sys::fuzz_target;
use syncmon_core::config::Config;
use syncmon_core::profile::Profile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text) {
        Ok(cfg) => {
            for c in &cfg.connections {
                for e in &c.entities {
                    Profile::new(c, e).expect("an accepted config builds its profiles");
                }
            }
        }
        Err(problem) => assert!(!problem.message.trim().is_empty()),
    }
});
