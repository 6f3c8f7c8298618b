//! `syncmon check`: the config loads as the agent loads it, and the replica is sound (SQLite's
//! integrity check), or the PostgreSQL replica answers with this version's schema.

use crate::{config_of, data_dir_of, output, Cli};
use std::process::ExitCode;
use syncmon_core::Syncmon;

/// `syncmon check`: exit 0 sound, 1 damaged (with what to do), 2 a config refused, no replica, bad usage.
pub(crate) fn check(cli: &Cli, json: bool) -> anyhow::Result<ExitCode> {
    let (config_path, config) = config_of(cli)?;
    let data_dir = data_dir_of(cli);
    if let Some(replica) = &config.replica {
        // PostgreSQL keeps its own pages sound; what can fail here is reaching the database and its schema.
        let url = syncmon_core::replica_url(replica);
        Syncmon::open_read_only(config, &data_dir)?;
        if json {
            output::json(&serde_json::json!({ "ok": true, "config": config_path, "replica": url, "problems": [], "advice": null }))?;
        } else {
            println!("ok: the config {} loads and the PostgreSQL replica {url} answers with this version's schema", config_path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json && !data_dir.join(syncmon_core::DB_FILE).exists() {
        // The config part passed (a fresh `syncmon init` file, say); the replica is still to come.
        println!("the config {} loads", config_path.display());
    }
    let problems = Syncmon::check_integrity(&data_dir)?;
    let advice = (!problems.is_empty()).then(|| Syncmon::damaged_advice(&data_dir));
    if json {
        output::json(&serde_json::json!({ "ok": problems.is_empty(), "config": config_path, "problems": problems, "advice": advice }))?;
    } else if let Some(advice) = &advice {
        println!("the replica {} is damaged; SQLite's integrity check found:", data_dir.join(syncmon_core::DB_FILE).display());
        for p in &problems {
            println!("  {p}");
        }
        println!("what to do: {advice}");
    } else {
        println!("ok");
    }
    Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
