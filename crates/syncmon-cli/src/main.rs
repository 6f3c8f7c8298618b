//! `syncmon`: the headless agent and the support engineer's tool. A thin front end over the
//! engine's façade (`syncmon_core::Syncmon`). Exit codes: 0 success, 1 the work failed,
//! 2 bad usage or configuration.

mod activity;
mod check;
mod creds;
mod demo;
mod failed;
mod generate;
mod init;
mod metrics;
mod output;
mod progress;
mod resync;
mod serve;
mod status;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use creds::CredsCommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use syncmon_core::{Config, ErrorCode, Outcome, Syncmon};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "syncmon", version, about = "Keeps a local SQLite replica in sync with rowVersion REST APIs, and shows whether it is.")]
struct Cli {
    /// Config file (TOML). Default: the platform config dir, e.g. ~/.config/syncmon/syncmon.toml
    #[arg(long, global = true, env = "SYNCMON_CONFIG")]
    config: Option<PathBuf>,
    /// Where the replica and its state live. Default: the platform data dir.
    #[arg(long, global = true, env = "SYNCMON_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print times in UTC ("2026-12-03 14:05:09 UTC") instead of local time with its offset.
    #[arg(long, global = true)]
    utc: bool,
    /// Also write the log to this file (no colour codes; rotated at 10 MB, 3 old files kept).
    /// Default for `run` and `serve`: <data dir>/logs/agent.log; other commands write none.
    #[arg(long, global = true, value_name = "FILE", env = "SYNCMON_LOG_FILE")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One catch-up cycle per selected entity, then exit (0 when all caught up, 1 when any failed).
    Sync {
        /// Only the entities of this connection (its `id` in the config).
        #[arg(long)]
        connection: Option<String>,
        /// NAME or CONNECTION/NAME; repeat for several. Default: every entity.
        #[arg(long = "entity")]
        entities: Vec<String>,
        /// The cycle reports as JSON instead of one line each.
        #[arg(long)]
        json: bool,
    },
    /// The agent: scheduled polls and the webhook receiver, until Ctrl-C / SIGTERM.
    Run {
        /// Desktop notifications (session D-Bus) when an entity keeps failing, failed items
        /// appear, a circuit opens, a resync's deletion guard trips, and on recovery.
        #[arg(long)]
        notify: bool,
        /// Notify once an entity has been failing this long (default: the setting, as in the UI).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "notify")]
        notify_failing_after: Option<std::time::Duration>,
        /// At most one notification per entity within this time (default 5m).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "notify")]
        notify_debounce: Option<std::time::Duration>,
        #[command(flatten)]
        metrics: metrics::MetricsArgs,
    },
    /// The agent plus the web UI and its HTTP API on loopback, until Ctrl-C / SIGTERM.
    Serve(serve::ServeArgs),
    /// Per entity: state, checkpoint, last caught up, lag, replica rows, pending failed items,
    /// then the one-line verdict (the app's banner). Exit codes, for scripts and monitoring:
    /// 0 in sync (healthy, paused, resyncing, first sync); 1 something is failing (an entity
    /// failing or its circuit open); 2 bad usage, a refused config or no replica; 3 needs
    /// attention, nothing broken (retrying, waiting, lagging, failed items to review, slow or
    /// erroring calls in the last 5 minutes).
    Status {
        /// JSON instead of a table (warnings go to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Per target: changes waiting for it, the oldest wait, deliveries per minute over the last
    /// five minutes, and whether its circuit has paused delivery.
    Targets {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A full resync: re-reads everything and tombstones what the source no longer has. Says
    /// first how many replica rows it may delete, and on a terminal asks before it starts.
    Resync {
        /// NAME or CONNECTION/NAME
        entity: String,
        /// Start without asking, and allow deleting more than the entity's deletion guard (default 50 %).
        #[arg(long)]
        yes: bool,
        /// The cycle report as JSON instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// The config, loaded as `run` loads it (schema files included: a refusal exits 2 naming the
    /// key and its line), then SQLite's integrity check of the replica (read-only): "ok" (exit 0),
    /// or the problems and what to do (exit 1).
    Check {
        /// The verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The replica as JSON lines: {"id":…,"rowVersion":…,"data":{…}}.
    Export {
        /// The entity, e.g. `items` or `retail/items`.
        entity: String,
        /// Also the rows deleted at the source (tombstones, with `deletedAt`).
        #[arg(long)]
        include_deleted: bool,
    },
    /// Failed items (the dead-letter queue).
    Failed {
        #[command(subcommand)]
        command: failed::FailedCommand,
    },
    /// Batches of records pushed to `POST /ingest/<connection>/<entity>`.
    Ingest {
        #[command(subcommand)]
        command: IngestCommand,
    },
    /// The request log, newest first, with Trackingids.
    Requests {
        /// Only this entity's calls (and its forwarding's), e.g. `items` or `retail/items`.
        #[arg(long)]
        entity: Option<String>,
        /// Only failed calls (no answer, or HTTP 4xx/5xx).
        #[arg(long)]
        failed: bool,
        /// Only the calls whose answer carried this Trackingid.
        #[arg(long, value_name = "ID")]
        tracking_id: Option<String>,
        /// How many calls at most, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The stored Activity log (30 days), newest first: cycles, pages, retries, errors; searched
    /// by entity, type, text (a Trackingid, a record id) and time. Read-only.
    Activity(activity::ActivityArgs),
    /// Reads the whole entity from the source, writing nothing, and compares it with the replica:
    /// missing, stale and extra ids with samples and the reads' Trackingids. Exit 0 equal, 1 not.
    Verify {
        /// The entity, e.g. `items` or `retail/items`.
        entity: String,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everything that carries a Trackingid, a pushed batch's id or a record id: the calls, the
    /// runs, the failed items, the batch and the replica rows. Exit 1 when nothing does.
    Find {
        /// The Trackingid (from a ticket, a screenshot, an error), batch id or record id.
        id: String,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// One zip for a support ticket: SUMMARY.md says what is wrong (failing entities with reason,
    /// HTTP status, Trackingid, since when, next attempt; failed items by kind; open circuits;
    /// config warnings), beside the redacted config, status, runs, the last 24 hours of the
    /// request log, failed items and activity. Never a secret.
    Diagnostics {
        /// Where to write the zip (default: syncmon-diagnostics-<time>.zip here).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Include the failed items' payloads (the records' data); left out by default.
        #[arg(long)]
        include_payloads: bool,
    },
    /// Credentials in the OS keyring.
    Creds {
        #[command(subcommand)]
        command: CredsCommand,
    },
    /// Writes a commented starter config (asking on a terminal for the base URL, entities and
    /// auth, or from flags; `--demo` for the simulated source); never overwrites a file.
    Init(init::InitArgs),
    /// Start the simulated source API on loopback.
    Mock(MockArgs),
    /// The simulated source with faults switched on, a config pointing at it, and the agent.
    Demo(demo::DemoArgs),
    /// The man pages and shell completions, made from this command's definition (for packagers).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

#[derive(Subcommand)]
enum IngestCommand {
    /// One batch by the id its 202 answered with: queued, applied or partly failed, its counts
    /// and the records that failed (read-only).
    Show {
        /// The batch id (`ing_…`) the 202 answered with.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct MockArgs {
    /// Where the simulated source listens.
    #[arg(long, default_value = "127.0.0.1:8380")]
    listen: std::net::SocketAddr,
    /// Seed of the generated records (the same seed, the same data).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Records per entity.
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// Entities to serve (repeat); default items, customers and salesorders.
    #[arg(long = "entity")]
    entities: Vec<String>,
    /// Background changes per second across all entities.
    #[arg(long, default_value_t = 1.0)]
    mutations_per_sec: f64,
    /// First rowVersion handed out.
    #[arg(long, default_value_t = 1000)]
    start_version: u64,
}

/// Errors that mean "bad usage or configuration" (exit 2) rather than "the work failed" (exit 1).
#[derive(Debug)]
struct UsageError(String);
impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.prints_a_listing() {
        quiet_on_closed_pipe();
    }
    init_logging(&cli);
    output::set_utc(cli.utc);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some() || e.downcast_ref::<syncmon_core::Error>().is_some_and(|e| is_usage(e.error_code()));
            eprintln!("error: {e:#}");
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

impl Command {
    /// Commands that print a listing and end (`requests --json | head` is how they are read):
    /// a closed pipe ends them quietly, as it ends `cat`.
    fn prints_a_listing(&self) -> bool {
        matches!(
            self,
            Command::Requests { .. }
                | Command::Activity(_)
                | Command::Export { .. }
                | Command::Find { .. }
                | Command::Failed { .. }
                | Command::Ingest { .. }
                | Command::Status { .. }
                | Command::Targets { .. }
        )
    }
}

/// Rust ignores SIGPIPE so that a write to a closed socket is an error, not death; for a
/// listing on stdout that makes `| head` end in a "Broken pipe" panic instead. The agent's
/// commands keep the default (their sockets need it).
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread or socket exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Whether an error exits 2 ("what you asked cannot be done as asked") rather than 1 (it failed
/// while being done). No wildcard: a new code must be placed here.
fn is_usage(code: ErrorCode) -> bool {
    match code {
        ErrorCode::Config | ErrorCode::Usage | ErrorCode::NotFound | ErrorCode::Credentials | ErrorCode::AgentRunning | ErrorCode::Damaged => true,
        ErrorCode::Storage | ErrorCode::Io | ErrorCode::Unauthorized => false,
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = match cli.verbose {
        0 => "syncmon=info,syncmon_core=info,syncmon_mock=info",
        1 => "syncmon=debug,syncmon_core=debug,syncmon_mock=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let agent = matches!(cli.command, Command::Run { .. } | Command::Serve(_));
    let file = cli.log_file.clone().or_else(|| agent.then(|| syncmon_core::logfile::default_log_file(&data_dir_of(cli), "agent")));
    let file_layer = file
        .and_then(|path| match syncmon_core::logfile::RotatingFile::open(&path, syncmon_core::logfile::MAX_BYTES, syncmon_core::logfile::KEEP) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warning: cannot write the log file {}: {e}; logging to stderr only", path.display());
                None
            }
        })
        .map(|f| tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(std::sync::Mutex::new(f)));
    // Colours only for a terminal; on it, a log line first wipes the progress bar off its line.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr_layer = tracing_subscriber::fmt::layer().with_writer(progress::log_writer).with_ansi(colour).with_target(false);
    tracing_subscriber::registry().with(filter).with(stderr_layer).with(file_layer).init();
}

pub(crate) fn config_of(cli: &Cli) -> anyhow::Result<(PathBuf, Config)> {
    let path = cli.config.clone().unwrap_or_else(syncmon_core::default_config_path);
    let config = Config::load(&path).map_err(|e| UsageError(e.to_string()))?;
    Ok((path, config))
}

pub(crate) fn data_dir_of(cli: &Cli) -> PathBuf {
    cli.data_dir.clone().unwrap_or_else(syncmon_core::default_data_dir)
}

/// The engine over the config and data directory the command line names, opened by `open` (one
/// of the `Syncmon::open*` below: what the command may do to the data directory).
fn open_with(cli: &Cli, open: fn(Config, &Path) -> syncmon_core::Result<Syncmon>) -> anyhow::Result<Syncmon> {
    let (path, config) = config_of(cli)?;
    Ok(open(config, &data_dir_of(cli))?.with_config_path(path))
}

/// For commands that write a little beside a running agent (`failed replay|discard`): short
/// transactions that wait for the agent's writer, no agent lock.
fn load(cli: &Cli) -> anyhow::Result<Syncmon> {
    open_with(cli, Syncmon::open)
}

/// For the agent (`run`, `serve`): takes the data directory's agent lock, so that a second agent
/// exits 2 naming the holder, and refuses a damaged replica.
fn load_agent(cli: &Cli) -> anyhow::Result<Syncmon> {
    open_with(cli, Syncmon::open_agent)
}

/// For the one-shot writers (`sync`, `resync`): they take the agent lock too, rather than wait.
/// They run whole cycles that would race the agent's own cycles of the same entities
/// (checkpoints, resync passes), and an agent holds the lock for days, so waiting would mean
/// hanging; the message says what to do instead.
fn load_one_shot(cli: &Cli) -> anyhow::Result<Syncmon> {
    open_with(cli, Syncmon::open_one_shot)
}

/// For the read commands: read-only, never migrates, works beside a busy agent.
fn load_read_only(cli: &Cli) -> anyhow::Result<Syncmon> {
    open_with(cli, Syncmon::open_read_only)
}

/// Cancelled on Ctrl-C or SIGTERM: the current page is finished or abandoned, never half-written.
/// The handlers are installed before this returns, so a signal that arrives while the command is
/// still starting stops it cleanly too instead of killing it.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping: finishing the current page");
            t.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping: finishing the current page");
        t.cancel();
    });
    token
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Sync { connection, entities, json } => {
            let sm = load_one_shot(&cli)?;
            let selected = sm.select(connection.as_deref(), entities)?;
            if selected.is_empty() {
                return Err(UsageError("the config lists no entities; add [[connection.entity]] sections".into()).into());
            }
            // Beside agents on a PostgreSQL replica: only entities no agent holds, while this runs.
            let _leases = sm.claim(&selected)?;
            let progress = progress::Reporter::start(&sm, "sync");
            let reports = sm.sync_once(&selected, &shutdown_token()).await;
            progress.finish().await;
            if *json {
                output::json(&reports)?;
            } else {
                for r in &reports {
                    println!("{}", r.summary());
                }
            }
            let ok = reports.iter().all(|r| r.outcome == Outcome::CaughtUp);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Run { notify, notify_failing_after, notify_debounce, metrics } => {
            // Signals are taken first: a Ctrl-C while the replica is checked and opened stops cleanly.
            let cancel = shutdown_token();
            let sm = Arc::new(load_agent(&cli)?);
            let _metrics = metrics::start(metrics, &sm, cancel.clone()).await?;
            tracing::info!("agent started: {} entities; Ctrl-C to stop", sm.status()?.len());
            if *notify {
                let overrides = syncmon_notify::Overrides { failing_after: *notify_failing_after, debounce: *notify_debounce, burst: None };
                tokio::spawn(syncmon_notify::run(sm.clone(), overrides, syncmon_notify::show_or_log, cancel.clone()));
            }
            sm.run(cancel).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { json } => status::run(&load_read_only(&cli)?, *json),
        Command::Targets { json } => {
            let sm = load_read_only(&cli)?;
            let targets = sm.targets()?;
            if *json {
                output::json(&targets)?;
            } else {
                output::targets_table(&targets);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Resync { entity, yes, json } => resync::run(load_one_shot(&cli)?, entity, *yes, *json, &shutdown_token()).await,
        Command::Check { json } => check::check(&cli, *json),
        Command::Init(args) => init::init(cli.config.clone().unwrap_or_else(syncmon_core::default_config_path), args),
        Command::Export { entity, include_deleted } => {
            let sm = load_read_only(&cli)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = sm.export(entity, *include_deleted, &mut out)?;
            tracing::debug!("exported {n} rows");
            Ok(ExitCode::SUCCESS)
        }
        Command::Failed { command } => failed::failed(&cli, command).await,
        Command::Ingest { command: IngestCommand::Show { id, json } } => {
            let batch = load_read_only(&cli)?.ingest_batch(id)?;
            if *json {
                output::json(&batch)?;
            } else {
                output::ingest_detail(&batch);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Requests { entity, failed, tracking_id, limit, json } => {
            let sm = load_read_only(&cli)?;
            let rows = sm.requests(entity.as_deref(), *failed, tracking_id.as_deref(), *limit)?;
            if *json {
                output::json(&rows)?;
            } else {
                output::requests_table(&rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Activity(args) => activity::activity(&cli, args),
        Command::Verify { entity, json } => {
            // Read-only: the replica is compared, never written (it works beside a running agent).
            let sm = load_read_only(&cli)?;
            let report = sm.verify(entity, &shutdown_token()).await?;
            if *json {
                output::json(&report)?;
            } else {
                output::verify_report(&report);
            }
            Ok(if report.equal() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Find { id, json } => {
            let sm = load_read_only(&cli)?;
            let found = sm.find(id)?;
            if *json {
                output::json(&found)?;
            } else {
                output::found(&found);
            }
            Ok(if found.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Diagnostics { output, include_payloads } => {
            let sm = load_read_only(&cli)?;
            let path = output.clone().unwrap_or_else(|| {
                let stamp = syncmon_core::timestamp::format_rfc3339(sm.now_ms() / 1000 * 1_000_000).replace([':', '-'], "");
                PathBuf::from(format!("syncmon-diagnostics-{stamp}.zip"))
            });
            let file = std::fs::File::create(&path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            let report = sm.diagnostics(file, &syncmon_core::DiagnosticsOptions { include_payloads: *include_payloads })?;
            println!(
                "wrote {} ({} files; {}); attach it to the ticket",
                path.display(),
                report.files.len(),
                match report.problems {
                    0 => "no entity needs attention".to_string(),
                    1 => "1 entity needs attention, see SUMMARY.md".to_string(),
                    n => format!("{n} entities need attention, see SUMMARY.md"),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Creds { command } => creds::creds(&cli, command),
        Command::Mock(args) => {
            let server = syncmon_mock::MockServer::start(mock_config(args)).await.with_context(|| format!("cannot listen on {}", args.listen))?;
            println!("simulated source on {}; Ctrl-C to stop", server.base_url());
            shutdown_token().cancelled().await;
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => demo::run(&cli, args).await,
        Command::Serve(args) => serve::run(&cli, args).await,
        Command::Generate(args) => generate::run(args),
    }
}

fn mock_config(a: &MockArgs) -> syncmon_mock::MockConfig {
    let names = if a.entities.is_empty() { vec!["items".into(), "customers".into(), "salesorders".into()] } else { a.entities.clone() };
    let entities = names.into_iter().map(|name| syncmon_mock::EntitySpec { name, records: a.records }).collect();
    syncmon_mock::MockConfig {
        listen: Some(a.listen),
        seed: a.seed,
        entities,
        start_version: a.start_version,
        mutations_per_sec: a.mutations_per_sec,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand says what it does and every option and argument has a help text: the
    /// whole clap tree is walked, so a new option without one fails here.
    #[test]
    fn every_command_option_and_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = if path.is_empty() { cmd.get_name().to_string() } else { format!("{path} {}", cmd.get_name()) };
            if cmd.get_about().is_none() && path != "syncmon help" && !path.starts_with("syncmon help ") {
                missing.push(format!("`{path}`: no about"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("`{path}` {}", arg.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| id.to_uppercase())));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "without a help text:\n{}", missing.join("\n"));
    }
}
