//! `syncmon status`: the table (or `--json`), the verdict's line, and the exit code monitoring
//! scripts read (documented in the command's help and the README).

use crate::output;
use std::process::ExitCode;
use syncmon_core::{Syncmon, Tone};

pub fn run(sm: &Syncmon, json: bool) -> anyhow::Result<ExitCode> {
    let status = sm.status()?;
    if json {
        // The JSON on stdout stays the list of entities; the warnings go to stderr.
        for w in sm.config_warnings() {
            eprintln!("warning: {w}");
        }
        output::json(&status)?;
    } else {
        for w in sm.config_warnings() {
            println!("warning: {w}");
        }
        output::status_table(&status);
    }
    let verdict = sm.verdict(&status)?;
    if !json && !status.is_empty() {
        println!("{}", output::verdict_line(&verdict, &status, sm.now_ms()));
    }
    Ok(exit_code(verdict.tone))
}

/// 0 in sync (ok, info), 1 something is failing (bad), 3 needs attention, nothing broken (warn);
/// 2, bad usage or config, comes from `main`.
fn exit_code(tone: Tone) -> ExitCode {
    match tone {
        Tone::Ok | Tone::Info => ExitCode::SUCCESS,
        Tone::Bad => ExitCode::from(1),
        Tone::Warn => ExitCode::from(3),
    }
}
