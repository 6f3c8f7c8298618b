//! `syncmon failed …`: the failed items (dead-letter queue) from the command line: list (cut
//! or whole), show, export, summary, replay, discard (asking first for a bulk discard) and
//! resolve (a two-way conflict).

use crate::{load, load_read_only, output, shutdown_token, Cli, UsageError};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use syncmon_core::{FailedFilter, FailedStage, FailedState, Syncmon, UnknownState};

#[derive(Subcommand)]
pub(crate) enum FailedCommand {
    /// Pending failed items, newest first (100 unless --limit or --all; it says when it cut).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many items at most.
        #[arg(long, default_value_t = 100, conflicts_with = "all")]
        limit: u32,
        /// Every matching item, read page by page (memory stays flat).
        #[arg(long)]
        all: bool,
        /// Show items older than this item id (paging).
        #[arg(long)]
        before: Option<i64>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every item matching the filter, payloads whole, as CSV or JSON lines (streamed).
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// csv or jsonl.
        #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Item counts per error kind under the filter, most first.
    Summary {
        #[command(flatten)]
        filter: FilterArgs,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One item in full: payload, error, HTTP status, Trackingid, attempts.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Re-run the failed stage (re-fetching the record by id where possible).
    Replay(Selection),
    /// Give up on items; they stay listed under --state discarded.
    Discard(Selection),
    /// Settle a two-way conflict (stage `conflict`): keep one system's version, which goes to the other.
    Resolve {
        /// The conflict's failed item id.
        id: i64,
        /// The connection whose version is kept (one of the pair's two).
        #[arg(long)]
        keep: String,
        /// JSON instead of a sentence.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(crate) struct FilterArgs {
    #[arg(long)]
    entity: Option<String>,
    #[arg(long, value_parser = state_word(FailedStage::ALL, FailedStage::as_str))]
    stage: Option<FailedStage>,
    /// e.g. missing_id, missing_row_version, missing_field, schema
    #[arg(long)]
    kind: Option<String>,
    /// Default: pending items only.
    #[arg(long, value_parser = state_word(FailedState::ALL, FailedState::as_str))]
    state: Option<FailedState>,
    /// Items of every state: pending, resolved and discarded.
    #[arg(long, conflicts_with = "state")]
    all_states: bool,
    /// Text in the record id, Trackingid or message.
    #[arg(long)]
    search: Option<String>,
    /// The JSON Schema rule broken (kind `schema`), e.g. minimum, type, pattern, required.
    #[arg(long)]
    rule: Option<String>,
}

/// One of the engine's state words (clap lists them as the possible values, from the enum).
fn state_word<T: Copy + std::str::FromStr<Err = UnknownState> + Send + Sync + 'static>(
    all: &'static [T],
    as_str: fn(T) -> &'static str,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(all.iter().map(|v| as_str(*v))).try_map(|s| s.parse::<T>())
}

#[derive(Args)]
pub(crate) struct Selection {
    /// Failed item ids.
    ids: Vec<i64>,
    /// Every pending item (of --entity, if given).
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// With --all: only the items of this entity.
    #[arg(long, requires = "all")]
    entity: Option<String>,
    /// With --all: do not ask for confirmation (needed when no terminal can ask).
    #[arg(long, short = 'y')]
    yes: bool,
    /// JSON instead of a sentence.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn failed(cli: &Cli, command: &FailedCommand) -> anyhow::Result<ExitCode> {
    // Listing and showing only read; replay and discard write (see `load`).
    let sm = match command {
        FailedCommand::List { .. } | FailedCommand::Show { .. } | FailedCommand::Export { .. } | FailedCommand::Summary { .. } => load_read_only(cli)?,
        FailedCommand::Replay(_) | FailedCommand::Discard(_) | FailedCommand::Resolve { .. } => load(cli)?,
    };
    match command {
        FailedCommand::List { filter, limit, all, before, json } => {
            let f = sm.failed_filter(filter.to_filter())?;
            if *all {
                return list_all_failed(&sm, &f, *before, *json);
            }
            // One more than asked for tells whether the list was cut.
            let mut items = sm.failed_items(&f, *before, limit.saturating_add(1))?;
            let cut = items.len() > *limit as usize;
            items.truncate(*limit as usize);
            if *json {
                output::json(&items)?;
            } else if items.is_empty() && before.is_none() {
                println!("No failed items. Everything is in sync.");
            } else {
                output::failed_table(&items);
            }
            if cut {
                let total = sm.failed_ids(&f)?.len();
                let last = items.last().map_or(0, |i| i.id);
                // On stderr with --json, so that the JSON stays one array.
                let note = format!(
                    "(showing the newest {limit} of {total} items; --before {last} for the next ones, --all for every one, `syncmon failed export` writes them to a file)"
                );
                if *json {
                    eprintln!("{note}");
                } else {
                    println!("{note}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Export { filter, format, output } => {
            let f = sm.failed_filter(filter.to_filter())?;
            let format = syncmon_core::ExportFormat::parse(format).expect("clap checked the format");
            let n = match output {
                Some(path) => {
                    let file = std::fs::File::create(path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = sm.export_failed(&f, format, &mut w)?;
                    eprintln!("wrote {n} failed items to {}", path.display());
                    n
                }
                None => {
                    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                    sm.export_failed(&f, format, &mut w)?
                }
            };
            let _ = n;
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Summary { filter, json } => {
            let f = sm.failed_filter(filter.to_filter())?;
            let counts = sm.failed_kind_counts(&f)?;
            if *json {
                output::json(&counts)?;
            } else if counts.is_empty() {
                println!("No failed items match.");
            } else {
                for c in &counts {
                    println!("{:>8}  {}", c.count, c.error_kind);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Show { id, json } => {
            let item = sm.failed_item(*id)?;
            if *json {
                output::json(&item)?;
            } else {
                output::failed_detail(&item);
            }
            Ok(ExitCode::SUCCESS)
        }
        FailedCommand::Resolve { id, keep, json } => {
            let report = sm.resolve_conflict(*id, keep, &shutdown_token()).await?;
            if *json {
                output::json(&report)?;
            } else {
                println!("conflict {id} resolved: kept `{keep}`'s version; {}", report.summary());
            }
            Ok(if report.error.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        FailedCommand::Replay(sel) => {
            let ids = selection_ids(&sm, sel)?;
            let report = sm.replay(&ids, &shutdown_token()).await?;
            if sel.json {
                output::json(&report)?;
            } else {
                println!(
                    "replayed {} items: {} applied, {} already superseded, {} still failing{}",
                    ids.len(),
                    report.replayed,
                    report.superseded,
                    report.still_failing,
                    if report.still_failing > 0 { " (see `syncmon failed list`)" } else { "" }
                );
            }
            Ok(if report.still_failing == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        FailedCommand::Discard(sel) => {
            let ids = selection_ids(&sm, sel)?;
            if sel.all && !sel.yes && !confirm_bulk_discard(ids.len(), sel.entity.as_deref())? {
                println!("nothing discarded");
                return Ok(ExitCode::from(1));
            }
            let n = sm.discard(&ids)?;
            if sel.json {
                output::json(&serde_json::json!({ "discarded": n }))?;
            } else {
                println!("discarded {n} items");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `failed list --all`: every matching item, a page at a time (a JSON array written as it is read).
fn list_all_failed(sm: &Syncmon, f: &FailedFilter, mut before: Option<i64>, json: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    const PAGE: u32 = 1000;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut shown = 0usize;
    if json {
        write!(out, "[")?;
    }
    loop {
        let items = sm.failed_items(f, before, PAGE)?;
        for item in &items {
            if json {
                write!(out, "{}{}", if shown == 0 { "\n" } else { ",\n" }, serde_json::to_string(item)?)?;
            }
            shown += 1;
        }
        if !json && !items.is_empty() {
            drop(out);
            output::failed_table_page(&items);
            out = stdout.lock();
        }
        match items.last() {
            Some(last) if items.len() == PAGE as usize => before = Some(last.id),
            _ => break,
        }
    }
    if json {
        writeln!(out, "\n]")?;
    } else if shown == 0 {
        writeln!(out, "No failed items. Everything is in sync.")?;
    } else {
        writeln!(out, "({shown} {})", if shown == 1 { "item" } else { "items" })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal before `failed discard --all`; without one, refuses (use --yes).
fn confirm_bulk_discard(n: usize, entity: Option<&str>) -> anyhow::Result<bool> {
    use std::io::{IsTerminal, Write};
    let what = format!("{n} pending failed {} of {}", if n == 1 { "item" } else { "items" }, entity.unwrap_or("every entity"));
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!("this would discard {what}; there is no terminal to ask on, so add --yes to confirm")).into());
    }
    print!("Discard {what}? They stop being retried (still listed with --state discarded). [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

impl FilterArgs {
    fn to_filter(&self) -> FailedFilter {
        FailedFilter {
            entity: self.entity.clone(),
            stage: self.stage,
            error_kind: self.kind.clone(),
            state: self.state,
            any_state: self.all_states,
            text: self.search.clone(),
            rule: self.rule.clone(),
        }
    }
}

fn selection_ids(sm: &Syncmon, sel: &Selection) -> anyhow::Result<Vec<i64>> {
    if sel.all {
        let f = sm.failed_filter(FailedFilter { entity: sel.entity.clone(), ..FailedFilter::default() })?;
        Ok(sm.failed_ids(&f)?)
    } else if sel.ids.is_empty() {
        Err(UsageError("name the failed item ids, or --all (with --entity to narrow it)".into()).into())
    } else {
        Ok(sel.ids.clone())
    }
}
