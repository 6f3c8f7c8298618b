//! `syncmon resync ENTITY [--yes]`: says before it starts how many replica rows its pass may
//! delete (and on a terminal without `--yes` asks first), then runs the pass with its progress.
//! The engine's deletion guard still applies at the end of the pass: the question here is about
//! starting, the guard about deleting more than its share.

use crate::progress::{thousands, Reporter};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use syncmon_core::{Outcome, ResyncPreview, Syncmon};

pub async fn run(sm: Syncmon, entity: &str, yes: bool, json: bool, cancel: &tokio_util::sync::CancellationToken) -> anyhow::Result<ExitCode> {
    let preview = sm.resync_preview(entity)?;
    // Beside agents on a PostgreSQL replica: refused while an agent holds the entity.
    let _leases = sm.claim(&sm.select(None, &[entity.to_string()])?)?;
    let said = preview_text(&preview, yes);
    // Asking needs someone to answer; a script without --yes gets today's behaviour (the guard
    // stops a mass deletion), told the same numbers.
    if !yes && preview.may_delete > 0 && std::io::stdin().is_terminal() {
        eprint!("{said}. Continue? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("resync not started");
            return Ok(ExitCode::from(1));
        }
    } else {
        eprintln!("{said}");
    }
    let progress = Reporter::start(&sm, "resync");
    let report = sm.resync(entity, yes, cancel).await;
    progress.finish().await;
    let report = report?;
    if json {
        crate::output::json(&report)?;
    } else {
        println!("{}", report.summary());
    }
    Ok(if report.outcome == Outcome::CaughtUp { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// "Resync retail/items: reads every record again; up to 3,000 of the 3,000 replica rows may be
/// deleted (…)": what the pass will do, as the question or as the line a script's log keeps.
pub fn preview_text(p: &ResyncPreview, allow_deletions: bool) -> String {
    let name = format!("{}/{}", p.connection, p.entity);
    let rows = thousands(p.replica_rows.max(0) as u64);
    let guard = format!("{} %", (p.deletion_guard * 100.0).round());
    if let (Some(n), true) = (p.stopped_at_guard, allow_deletions) {
        return format!(
            "Resync {name}: the last pass stopped at the deletion guard; --yes deletes the {} of the {rows} replica rows it did not see, then catches up",
            thousands(n.max(0) as u64)
        );
    }
    let mut s = format!("Resync {name}: ");
    if let Some(n) = p.stopped_at_guard {
        s.push_str(&format!(
            "the last pass stopped at the deletion guard asking to delete {} rows (--yes deletes them); this starts a new pass that ",
            thousands(n.max(0) as u64)
        ));
    }
    if p.resumes {
        s.push_str(&format!("resumes the pass under way ({} records read so far)", thousands(p.seen.max(0) as u64)));
    } else {
        s.push_str("reads every record again");
    }
    if p.replica_rows <= 0 {
        s.push_str("; the replica has no rows, so nothing can be deleted");
        return s;
    }
    let unseen = if p.resumes { "not seen yet" } else { "not seen again" };
    s.push_str(&format!("; up to {} of the {rows} replica rows may be deleted (those {unseen}", thousands(p.may_delete.max(0) as u64)));
    if allow_deletions {
        s.push_str(&format!("; --yes: even more than the deletion guard's {guard})"));
    } else {
        s.push_str(&format!("; above the deletion guard's {guard} it stops and asks)"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(replica_rows: i64, may_delete: i64) -> ResyncPreview {
        ResyncPreview {
            connection: "retail".into(),
            entity: "items".into(),
            replica_rows,
            may_delete,
            seen: 0,
            resumes: false,
            stopped_at_guard: None,
            deletion_guard: 0.5,
        }
    }

    #[test]
    fn the_preview_says_how_many_rows_may_be_deleted() {
        assert_eq!(
            preview_text(&preview(3000, 3000), false),
            "Resync retail/items: reads every record again; up to 3,000 of the 3,000 replica rows may be deleted (those not seen again; above the deletion guard's 50 % it stops and asks)"
        );
        assert!(preview_text(&preview(3000, 3000), true).ends_with("(those not seen again; --yes: even more than the deletion guard's 50 %)"));
        assert_eq!(preview_text(&preview(0, 0), false), "Resync retail/items: reads every record again; the replica has no rows, so nothing can be deleted");
        let resuming = ResyncPreview { resumes: true, seen: 1200, may_delete: 1800, ..preview(3000, 0) };
        assert!(
            preview_text(&resuming, false).starts_with("Resync retail/items: resumes the pass under way (1,200 records read so far); up to 1,800 of the 3,000")
        );
        let stopped = ResyncPreview { stopped_at_guard: Some(1600), ..preview(3000, 3000) };
        assert_eq!(
            preview_text(&stopped, true),
            "Resync retail/items: the last pass stopped at the deletion guard; --yes deletes the 1,600 of the 3,000 replica rows it did not see, then catches up"
        );
        assert!(preview_text(&stopped, false)
            .contains("asking to delete 1,600 rows (--yes deletes them); this starts a new pass that reads every record again; up to 3,000"));
    }
}
