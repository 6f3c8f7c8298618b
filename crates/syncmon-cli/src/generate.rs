//! `syncmon generate man|completions SHELL --output DIR`: the man page and the shell completions,
//! made from the same clap definition the command parses with, so they never drift from it.
//! Hidden from `--help`: packagers run it (scripts/package.sh), users read its results.

use clap::{Args, CommandFactory, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The man pages: syncmon.1 and one syncmon-<command>.1 per subcommand.
    Man {
        /// The directory to write into (created if missing).
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
    },
    /// The completion script for one shell: `syncmon.bash`, `_syncmon` (zsh) or `syncmon.fish`.
    Completions {
        /// bash, zsh or fish.
        shell: Shell,
        /// The directory to write into (created if missing).
        #[arg(long, short, value_name = "DIR")]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    cmd.build();
    match &args.what {
        What::Man { output } => {
            create_dir(output)?;
            let mut written = Vec::new();
            man_pages(&cmd, "syncmon", output, &mut written)?;
            println!("wrote {} man pages into {}", written.len(), output.display());
        }
        What::Completions { shell, output } => {
            create_dir(output)?;
            use clap_complete::Shell as S;
            let shell = match shell {
                Shell::Bash => S::Bash,
                Shell::Zsh => S::Zsh,
                Shell::Fish => S::Fish,
            };
            let path = clap_complete::generate_to(shell, &mut cmd, "syncmon", output)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}

/// `name.1` for `cmd`, then one page per visible subcommand (`syncmon-failed-list.1`, …), as git does.
fn man_pages(cmd: &clap::Command, name: &str, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    // clap names are `&'static str` without its `string` feature; a one-shot generator can leak.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let cmd = cmd.clone().name(leak(name.to_string())).bin_name(leak(name.replace('-', " "))).version(env!("CARGO_PKG_VERSION"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
