//! `syncmon serve`: the agent plus the web UI and its HTTP API (DESIGN §9, docs/api.md).
//!
//! The access token lives in the OS keyring (service `syncmon`, account `serve/token`), created on
//! the first start and printed once inside the URL; `--token-env VAR` takes it from the
//! environment instead (headless machines without a keyring).

use crate::{load_agent, shutdown_token, Cli, UsageError};
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use syncmon_core::secrets::{self, Secret};
use syncmon_serve::Server;

pub const TOKEN_ACCOUNT: &str = "serve/token";

#[derive(Args)]
pub struct ServeArgs {
    /// Where the web UI and its API listen. Loopback only, unless --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8384")]
    listen: SocketAddr,
    /// Take the access token from this environment variable instead of the OS keyring.
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// The built web UI. Default: $SYNCMON_UI_DIR, else ui/dist found above the executable,
    /// else <exe dir>/../share/syncmon/ui.
    #[arg(long, value_name = "PATH", env = "SYNCMON_UI_DIR")]
    ui_dir: Option<PathBuf>,
    /// Allow a --listen address other machines can reach (plain HTTP: put a TLS proxy in front).
    #[arg(long)]
    allow_remote: bool,
    /// Print the URL with the access token, then exit.
    #[arg(long)]
    show_token: bool,
    #[command(flatten)]
    metrics: crate::metrics::MetricsArgs,
}

/// Refuses an address other machines can reach unless the user said so, and then warns.
pub fn check_listen(listen: SocketAddr, allow_remote: bool) -> anyhow::Result<()> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    if !allow_remote {
        return Err(UsageError(format!(
            "refusing to serve on {listen}: it is not a loopback address, so other machines could reach Syncmon's API over \
             plain HTTP. Use --listen 127.0.0.1:PORT, or add --allow-remote if that is really meant (then put a TLS reverse \
             proxy in front)"
        ))
        .into());
    }
    eprintln!("WARNING: serving on {listen}, which other machines can reach. Anyone with the token can pause, resync and");
    eprintln!("WARNING: discard; the token and the data travel in plain HTTP. Put a TLS reverse proxy in front.");
    Ok(())
}

/// The address to print: loopback for a wildcard bind, since that always works on this machine.
pub fn url_for(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}/", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("http://[::1]:{}/", a.port()),
        a => format!("http://{a}/"),
    }
}

pub fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn token_from_env(var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(t) if t.len() >= 16 => Ok(t),
        Ok(_) => {
            Err(UsageError(format!("the token in ${var} is shorter than 16 characters; use a long random one, e.g. from `head -c 32 /dev/urandom | base64`"))
                .into())
        }
        Err(_) => Err(UsageError(format!("--token-env {var}: the environment variable {var} is not set; put the access token in it")).into()),
    }
}

/// (token, newly created). From `--token-env`, else the keyring, creating it on first use.
fn token(token_env: Option<&str>) -> anyhow::Result<(String, bool)> {
    if let Some(var) = token_env {
        return Ok((token_from_env(var)?, false));
    }
    let no_keyring = |e: secrets::SecretError| {
        let why = match e {
            secrets::SecretError::Keyring(detail) => detail,
            other => other.to_string(),
        };
        UsageError(format!(
            "the OS keyring is not available ({why}), and `syncmon serve` keeps its access token there. Pass --token-env VAR \
             instead, with a random token of at least 16 characters in the environment variable VAR, e.g.\n  \
             export SYNCMON_SERVE_TOKEN=$(head -c 32 /dev/urandom | base64)\n  syncmon serve --token-env SYNCMON_SERVE_TOKEN"
        ))
    };
    if let Some(t) = secrets::keyring_get(TOKEN_ACCOUNT).map_err(no_keyring)? {
        return Ok((t.expose().to_string(), false));
    }
    let t = new_token();
    secrets::keyring_set(TOKEN_ACCOUNT, &Secret::new(t.clone())).map_err(no_keyring)?;
    Ok((t, true))
}

/// Where the built UI is when neither --ui-dir nor SYNCMON_UI_DIR says.
pub fn default_ui_dir() -> PathBuf {
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        // A development build: target/debug/syncmon → <repo>/ui/dist.
        if let Some(found) = dir.ancestors().map(|a| a.join("ui").join("dist")).find(|c| c.is_dir()) {
            return found;
        }
    }
    exe_dir.map(|d| d.join("..").join("share").join("syncmon").join("ui")).unwrap_or_else(|| PathBuf::from("ui/dist"))
}

pub async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    check_listen(args.listen, args.allow_remote)?;
    let (token, created) = token(args.token_env.as_deref())?;
    if args.show_token {
        println!("{}#token={token}", url_for(args.listen));
        return Ok(ExitCode::SUCCESS);
    }
    let cancel = shutdown_token();
    let sm = Arc::new(load_agent(cli)?);
    let ui_dir = args.ui_dir.clone().unwrap_or_else(default_ui_dir);
    let server = Server::start(sm.clone(), args.listen, token.clone(), ui_dir.clone(), cancel.clone())
        .await
        .map_err(|e| UsageError(format!("cannot listen on {}: {e}; pass --listen with a free port", args.listen)))?;
    let url = url_for(server.addr);
    if created {
        println!("syncmon serve: open {url}#token={token}");
        println!("(shown once; the token is kept in the OS keyring, service `syncmon`, account `{TOKEN_ACCOUNT}`;");
        println!(" `syncmon serve --show-token` prints this URL again)");
    } else if let Some(var) = &args.token_env {
        println!("syncmon serve: open {url}#token=<the token in ${var}>");
    } else {
        println!("syncmon serve: open {url} with the token from the OS keyring (service `syncmon`, account `{TOKEN_ACCOUNT}`);");
        println!(" `syncmon serve --show-token` prints the URL with it");
    }
    if !ui_dir.join("index.html").is_file() {
        println!("note: no built UI in {}; run `npm --prefix ui ci && npm --prefix ui run build` or pass --ui-dir (the API works meanwhile)", ui_dir.display());
    }
    let _metrics = crate::metrics::start(&args.metrics, &sm, cancel.clone()).await?;
    tracing::info!("agent started: {} entities; Ctrl-C to stop", sm.status()?.len());
    let agent = sm.run(cancel.clone()).await;
    // The agent stops on a signal, or early when e.g. the webhook port is taken: stop the server too.
    cancel.cancel();
    server.wait().await?;
    agent?;
    Ok(ExitCode::SUCCESS)
}
