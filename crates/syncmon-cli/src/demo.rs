//! `syncmon demo`: the simulated source with faults switched on, a generated config pointing at
//! it, and the agent — so every screen has something to show.

use crate::{config_of, shutdown_token, Cli, UsageError};
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use syncmon_demo::{Demo, DemoOptions};

/// The web UI's token for `demo --serve`; generated (and printed) when unset.
pub const DEMO_TOKEN_ENV: &str = "SYNCMON_DEMO_TOKEN";

#[derive(Args)]
pub struct DemoArgs {
    /// Where the simulated source listens (loopback).
    #[arg(long, default_value = "127.0.0.1:8380")]
    mock_listen: std::net::SocketAddr,
    /// Where the agent's webhook receiver listens (loopback).
    #[arg(long, default_value = "127.0.0.1:8385")]
    webhook_listen: std::net::SocketAddr,
    /// Records per entity.
    #[arg(long, default_value_t = 2000)]
    records: usize,
    /// Seconds between scheduled polls.
    #[arg(long, default_value_t = 15)]
    poll_seconds: u64,
    /// Keep the simulated source healthy (no injected faults).
    #[arg(long)]
    no_faults: bool,
    /// Stop after this many seconds (for scripted runs); default: until Ctrl-C.
    #[arg(long)]
    duration: Option<u64>,
    /// Also serve the web UI and its API here (loopback), e.g. 127.0.0.1:8384. The token comes
    /// from SYNCMON_DEMO_TOKEN, else it is generated and printed.
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// The built web UI for --serve (default as for `syncmon serve`).
    #[arg(long, value_name = "PATH", env = "SYNCMON_UI_DIR")]
    ui_dir: Option<std::path::PathBuf>,
}

pub async fn run(cli: &Cli, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(syncmon_demo::default_data_dir);
    let opts = DemoOptions { mock_listen: args.mock_listen, webhook_listen: args.webhook_listen, records: args.records, poll_seconds: args.poll_seconds };
    let demo = Demo::start(&opts, &data_dir).await.map_err(UsageError)?;
    let (mock, config_path) = (demo.mock.clone(), demo.config_path.clone());
    let demo_cli = Cli {
        config: Some(config_path.clone()),
        data_dir: Some(data_dir.clone()),
        verbose: cli.verbose,
        log_file: cli.log_file.clone(),
        utc: cli.utc,
        command: crate::Command::Run {
            notify: false,
            notify_failing_after: None,
            notify_debounce: None,
            metrics: crate::metrics::MetricsArgs { metrics: None },
        },
    };
    let (path, config) = config_of(&demo_cli)?;
    let sm = Arc::new(syncmon_core::Syncmon::open_agent_locked(config, &data_dir, demo.agent_lock())?.with_config_path(path));
    println!("syncmon demo");
    println!("  simulated source  {}", mock.base_url());
    println!("  config            {}", config_path.display());
    println!("  replica           {}", data_dir.join("syncmon.db").display());
    println!("  webhooks          http://{}/webhooks/demo", args.webhook_listen);
    println!("In another terminal: syncmon --config {} --data-dir {} status", config_path.display(), data_dir.display());

    let cancel = shutdown_token();
    let server = match args.serve {
        Some(listen) => {
            crate::serve::check_listen(listen, false)?;
            let token = match std::env::var(DEMO_TOKEN_ENV) {
                Ok(t) if t.len() >= 16 => t,
                Ok(_) => return Err(UsageError(format!("${DEMO_TOKEN_ENV} is shorter than 16 characters; use a longer token")).into()),
                Err(_) => crate::serve::new_token(),
            };
            let ui_dir = args.ui_dir.clone().unwrap_or_else(crate::serve::default_ui_dir);
            let server = syncmon_serve::Server::start(sm.clone(), listen, token.clone(), ui_dir, cancel.clone())
                .await
                .map_err(|e| UsageError(format!("cannot serve the web UI on {listen}: {e}; pass --serve with a free port")))?;
            println!("  web UI            {}#token={token}", crate::serve::url_for(server.addr));
            Some(server)
        }
        None => None,
    };
    if let Some(secs) = args.duration {
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            c.cancel();
        });
    }
    if !args.no_faults {
        tokio::spawn(demo.faults(cancel.clone()));
    }
    let agent = sm.run(cancel.clone()).await;
    cancel.cancel();
    if let Some(server) = server {
        server.wait().await?;
    }
    agent?;
    mock.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
