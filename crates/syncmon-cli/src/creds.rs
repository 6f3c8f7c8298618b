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
}

pub(crate) fn creds(cli: &Cli, command: &CredsCommand) -> anyhow::Result<ExitCode> {
    let path = cli.config.clone().unwrap_or_else(syncmon_core::default_config_path);
    let config = Config::load(&path).map_err(|e| UsageError(e.to_string()))?;
    let (connection, webhook) = match command {
        CredsCommand::Set { connection, webhook } | CredsCommand::Delete { connection, webhook } => (connection, *webhook),
    };
    // A target's secret lives under its id too (forwarding, `[[target]]`).
    if config.connection(connection).is_none() && (webhook || config.target(connection).is_none()) {
        return Err(UsageError(format!("no connection `{connection}` in {}", path.display())).into());
    }
    let kind = if webhook { SecretKind::Webhook } else { SecretKind::Connection };
    let account = secrets::keyring_account(connection, kind);
    match command {
        CredsCommand::Set { .. } => {
            let value = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                rpassword::prompt_password(format!("secret for {account} (not shown): "))?
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line
            };
            let value = value.trim_end_matches(['\r', '\n']).to_string();
            if value.is_empty() {
                return Err(UsageError("empty secret; nothing stored".into()).into());
            }
            secrets::keyring_set(&account, &Secret::new(value))?;
            println!("stored the secret of {account} in the OS keyring (service `syncmon`)");
        }
        CredsCommand::Delete { .. } => {
            if secrets::keyring_delete(&account)? {
                println!("deleted the secret of {account} from the OS keyring");
            } else {
                println!("no secret of {account} was in the OS keyring");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
