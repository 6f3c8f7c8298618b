//! `syncmon init`: a commented starter config, so the first run does not start with reading the
//! README. Asks on a terminal (base URL, connection id, entities, auth) unless flags say; `--demo`
//! writes one for the simulated source (`syncmon mock`). Never overwrites a file; what it writes
//! loads as `syncmon check` and `run` load it.

use crate::UsageError;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use syncmon_core::Config;

#[derive(Args)]
pub struct InitArgs {
    /// Where to write the config (default: --config, else the platform config dir, e.g.
    /// ~/.config/syncmon/syncmon.toml). An existing file is never overwritten.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A config for the simulated source of `syncmon mock` (http://127.0.0.1:8380).
    #[arg(long, conflicts_with_all = ["base_url", "entities"])]
    demo: bool,
    /// The API's base URL (asked on a terminal when not given).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The connection's id, a short name used in commands and keyring entries.
    #[arg(long, value_name = "ID")]
    connection: Option<String>,
    /// An entity to replicate; repeat for several (asked on a terminal when not given).
    #[arg(long = "entity", value_name = "NAME")]
    entities: Vec<String>,
    /// How Syncmon authenticates: none, api_key or bearer (oauth2: edit the file, it says how).
    #[arg(long, value_parser = ["none", "api_key", "bearer"])]
    auth: Option<String>,
}

/// What the starter config is made of.
struct Answers {
    connection: String,
    base_url: String,
    entities: Vec<String>,
    auth: String,
}

pub fn init(default_path: PathBuf, args: &InitArgs) -> anyhow::Result<ExitCode> {
    let path = args.output.clone().unwrap_or(default_path);
    if path.exists() {
        return Err(UsageError(format!("{} exists; syncmon init never overwrites a config (use --output for another file)", path.display())).into());
    }
    let answers = if args.demo {
        Answers {
            connection: "demo".into(),
            base_url: "http://127.0.0.1:8380".into(),
            entities: vec!["items".into(), "customers".into(), "salesorders".into()],
            auth: "none".into(),
        }
    } else {
        answers(args)?
    };
    let text = starter(&answers, args.demo);
    // What is written must load: a refusal here names the value that was given.
    Config::parse(&text).map_err(|e| UsageError(format!("these answers do not make a valid config: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())?;
    println!("wrote {}", path.display());
    let config_arg = config_arg(&path, args.output.is_some());
    if args.demo {
        println!("next: `syncmon mock` in another terminal, then `syncmon{config_arg} check` and `syncmon{config_arg} sync`");
    } else {
        if answers.auth != "none" {
            println!("next: `syncmon{config_arg} creds set {}` stores the secret in the OS keyring", answers.connection);
        }
        println!("then: `syncmon{config_arg} check`, `syncmon{config_arg} sync`, and `syncmon{config_arg} run` for the agent");
    }
    Ok(ExitCode::SUCCESS)
}

fn config_arg(path: &Path, given: bool) -> String {
    if given {
        format!(" --config {}", path.display())
    } else {
        String::new()
    }
}

/// The flags, and on a terminal the questions for what they leave out.
fn answers(args: &InitArgs) -> anyhow::Result<Answers> {
    let terminal = std::io::stdin().is_terminal();
    let ask = |question: &str, default: &str| -> anyhow::Result<String> {
        if !terminal {
            return Ok(default.to_string());
        }
        let hint = if default.is_empty() { String::new() } else { format!(" [{default}]") };
        eprint!("{question}{hint}: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim();
        Ok(if line.is_empty() { default.to_string() } else { line.to_string() })
    };
    let base_url = match &args.base_url {
        Some(u) => u.clone(),
        None if terminal => ask("The API's base URL (e.g. https://api.example.com/tenant/prod/company)", "")?,
        None => return Err(UsageError("no terminal to ask on: give --base-url URL and --entity NAME (or --demo)".into()).into()),
    };
    if base_url.is_empty() {
        return Err(UsageError("a base URL is needed (--base-url)".into()).into());
    }
    let connection = match &args.connection {
        Some(c) => c.clone(),
        None => ask("A short id for this connection", "main")?,
    };
    let entities = if args.entities.is_empty() {
        let names = ask("Entities to replicate, separated by commas", if terminal { "" } else { "items" })?;
        names.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
    } else {
        args.entities.clone()
    };
    if entities.is_empty() {
        return Err(UsageError("at least one entity is needed (--entity NAME)".into()).into());
    }
    let auth = match &args.auth {
        Some(a) => a.clone(),
        None => ask("Authentication: none, api_key or bearer", "api_key")?,
    };
    if !["none", "api_key", "bearer"].contains(&auth.as_str()) {
        return Err(UsageError(format!("authentication `{auth}`: none, api_key or bearer here (oauth2: start with one, then edit the file)")).into());
    }
    Ok(Answers { connection, base_url, entities, auth })
}

/// TOML's basic string: quotes and backslashes escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `line` with `# comment` beside it, the comments of the file in one column.
fn commented(line: &str, comment: &str) -> String {
    format!("{line:<35} # {comment}\n")
}

fn starter(a: &Answers, demo: bool) -> String {
    let mut s = String::new();
    s.push_str("# Syncmon configuration, written by `syncmon init`. The README describes every key.\n");
    s.push_str("# Secrets never go in this file: `syncmon creds set <connection id>` puts them in the OS\n");
    s.push_str("# keyring (or set secret_env below for a headless machine). `syncmon check` loads this file\n");
    s.push_str("# as the agent does and names the key and line of anything it refuses.\n\n");
    s.push_str("# [webhooks]\n# listen = \"127.0.0.1:8385\"        # POST /webhooks/<connection id> nudges a poll;\n");
    s.push_str("#                                   # POST /ingest/<connection id>/<entity> takes pushed records\n\n");
    s.push_str("# [storage]\n# request_log_retention = \"7d\"     # how long the request log keeps calls\n\n");
    s.push_str("# [replica]                         # PostgreSQL instead of the SQLite file in the data directory;\n");
    s.push_str("# url = \"postgresql://syncmon@127.0.0.1:5432/syncmon\"   # agents with this config share its entities\n");
    s.push_str("# password_env = \"SYNCMON_REPLICA_PASSWORD\"  # or `syncmon creds replica` (OS keyring)\n\n");
    s.push_str("[[connection]]\n");
    s.push_str(&format!("id = {}\n", quoted(&a.connection)));
    s.push_str(&format!("base_url = {}\n", quoted(&a.base_url)));
    s.push_str(&commented(&format!("auth = {}", quoted(&a.auth)), "none | api_key | bearer | oauth2 (client credentials)"));
    if a.auth == "api_key" {
        s.push_str("# api_key_header = \"x-np-api-key\"  # the header the key goes in\n");
    }
    s.push_str("# For oauth2: auth = \"oauth2\", token_url = \"https://login.example.com/oauth2/token\",\n# client_id = \"syncmon\"; the client secret goes in the keyring like any other.\n");
    s.push_str("# secret_env = \"SYNCMON_SECRET\"     # headless machines: the secret from this environment variable\n");
    s.push_str("# profile = \"rowversion\"            # or \"cursor\" / \"timestamp\" (with a [connection.cursor] section) or \"snapshot\"\n");
    s.push_str("# api_version = \"2024-06-01\"        # a pinned x-api-version header\n");
    s.push_str("requests_per_second = 10            # be gentle with the source\n");
    s.push_str("# max_concurrency = 5\n");
    for (i, name) in a.entities.iter().enumerate() {
        s.push_str("\n[[connection.entity]]\n");
        s.push_str(&format!("name = {}\n", quoted(name)));
        s.push_str(&commented(&format!("poll_every = {}", quoted(if demo { "15s" } else { "5m" })), "how often to ask for changes"));
        s.push_str("page_size = 1000\n");
        if i == 0 {
            s.push_str("# full_resync_every = \"24h\"        # re-read everything now and then; deletions guarded at 50 %\n");
            s.push_str("# required_fields = [\"number\"]     # records without them become failed items\n");
            s.push_str("# schema = \"schemas/items.json\"    # a JSON Schema each record is checked against\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_config_loads_and_quotes_what_it_is_given() {
        let a = Answers {
            connection: "retail".into(),
            base_url: "https://api.example.com/t/\"x\"".into(),
            entities: vec!["items".into(), "customers".into()],
            auth: "bearer".into(),
        };
        let text = starter(&a, false);
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.connections[0].id, "retail");
        assert_eq!(config.connections[0].base_url, "https://api.example.com/t/\"x\"");
        assert_eq!(config.connections[0].entities.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["items", "customers"]);
    }
}
