//! `syncmon creds set|delete`: a connection's or target's secret into the OS keyring, or out.

use crate::{Cli, UsageError};
use clap::Subcommand;
use std::process::ExitCode;
use syncmon_core::config::Config;
use syncmon_core::secrets::{self, Secret, SecretKind};

#[derive(Subcommand)]
pub(crate) enum CredsCommand {
    /// Store a connection's (or a forwarding target's) secret (read from the terminal without echo, or from stdin).
    Set {
        /// The connection's (or target's) `id` in the config.
        connection: String,
        /// The webhook secret instead of the API secret.
        #[arg(long)]
        webhook: bool,
    },
    /// Remove a connection's secret from the keyring.
    Delete {
        /// The connection's (or target's) `id` in the config.
        connection: String,
        /// The webhook secret instead of the API secret.
        #[arg(long)]
        webhook: bool,
    },
    /// Store the bearer token the metrics endpoint requires on a non-loopback address (keyring
    /// account `metrics`; read from the terminal without echo, or from stdin).
    MetricsToken,
    /// Store the password of the PostgreSQL replica (`[replica]` without `password_env`; keyring
    /// account `replica`; read from the terminal without echo, or from stdin).
    Replica,
}

pub(crate) fn creds(cli: &Cli, command: &CredsCommand) -> anyhow::Result<ExitCode> {
    let (connection, webhook, set) = match command {
        CredsCommand::Set { connection, webhook } => (connection, *webhook, true),
        CredsCommand::Delete { connection, webhook } => (connection, *webhook, false),
        // Not a connection's: no config needed.
        CredsCommand::MetricsToken => return metrics_token(),
        CredsCommand::Replica => return replica_password(),
    };
    let path = cli.config.clone().unwrap_or_else(syncmon_core::default_config_path);
    let config = Config::load(&path).map_err(|e| UsageError(e.to_string()))?;
    // A target's secret lives under its id too (forwarding, `[[target]]`).
    if config.connection(connection).is_none() && (webhook || config.target(connection).is_none()) {
        return Err(UsageError(format!("no connection `{connection}` in {}", path.display())).into());
    }
    let kind = if webhook { SecretKind::Webhook } else { SecretKind::Connection };
    let account = secrets::keyring_account(connection, kind);
    if set {
        let value = read_secret(&format!("secret for {account} (not shown): "))?;
        secrets::keyring_set(&account, &Secret::new(value))?;
        println!("stored the secret of {account} in the OS keyring (service `syncmon`)");
    } else if secrets::keyring_delete(&account)? {
        println!("deleted the secret of {account} from the OS keyring");
    } else {
        println!("no secret of {account} was in the OS keyring");
    }
    Ok(ExitCode::SUCCESS)
}

/// A secret from the terminal without echo, or the first line of stdin; refused when empty.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let value = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    };
    let value = value.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(UsageError("empty secret; nothing stored".into()).into());
    }
    Ok(value)
}

fn metrics_token() -> anyhow::Result<ExitCode> {
    let account = crate::metrics::TOKEN_ACCOUNT;
    let value = read_secret("metrics token (not shown; at least 16 characters): ")?;
    if value.len() < 16 {
        return Err(
            UsageError("the metrics token is shorter than 16 characters; use a long random one, e.g. from `head -c 32 /dev/urandom | base64`".into()).into()
        );
    }
    secrets::keyring_set(account, &Secret::new(value))?;
    println!("stored the metrics token in the OS keyring (service `syncmon`, account `{account}`)");
    Ok(ExitCode::SUCCESS)
}

fn replica_password() -> anyhow::Result<ExitCode> {
    let account = secrets::REPLICA_ACCOUNT;
    let value = read_secret("password of the PostgreSQL replica's user (not shown): ")?;
    secrets::keyring_set(account, &Secret::new(value))?;
    println!("stored the replica's password in the OS keyring (service `syncmon`, account `{account}`); [replica] without password_env uses it");
    Ok(ExitCode::SUCCESS)
}
