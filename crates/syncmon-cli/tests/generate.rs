//! `syncmon generate`: the man pages and completions the packages ship, made from the CLI's own
//! definition (scripts/package.sh runs exactly these commands).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_syncmon");

fn generate(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).arg("generate").args(args).output().expect("run syncmon generate");
    assert!(out.status.success(), "syncmon generate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn man_pages_cover_every_visible_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    generate(&["man", "--output", dir.path().to_str().unwrap()]);
    let main = std::fs::read_to_string(dir.path().join("syncmon.1")).unwrap();
    assert!(main.contains(".TH syncmon 1"), "not a man page:\n{}", &main[..main.len().min(300)]);
    // The page names the subcommands and the global options as `--help` shows them.
    for word in ["serve", "failed", "diagnostics", "\\-\\-config", "\\-\\-data\\-dir"] {
        assert!(main.contains(word), "syncmon.1 lacks {word}");
    }
    // One page per subcommand, nested ones too (git style); the hidden `generate` has none.
    for page in ["syncmon-run.1", "syncmon-serve.1", "syncmon-failed.1", "syncmon-failed-list.1", "syncmon-creds-set.1"] {
        assert!(dir.path().join(page).is_file(), "no {page}");
    }
    assert!(!dir.path().join("syncmon-generate.1").exists(), "the hidden generate command got a page");
    let serve = std::fs::read_to_string(dir.path().join("syncmon-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-token\\-env"), "syncmon-serve.1 lacks --token-env");
    assert!(serve.contains(".TH syncmon-serve 1"), "syncmon-serve.1 has the wrong title");
    assert!(serve.contains(env!("CARGO_PKG_VERSION")), "syncmon-serve.1 does not name the version");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (shell, file) in [("bash", "syncmon.bash"), ("zsh", "_syncmon"), ("fish", "syncmon.fish")] {
        generate(&["completions", shell, "--output", out]);
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap_or_else(|e| panic!("{shell}: no {file}: {e}"));
        for word in ["serve", "diagnostics", "data-dir"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    // bash itself accepts the script and registers the completion.
    let check = Command::new("bash").arg("-c").arg(format!("source {out}/syncmon.bash && complete -p syncmon")).output().expect("run bash");
    assert!(check.status.success(), "bash rejected the completion: {}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("syncmon"));
}

#[test]
fn generate_is_hidden_from_help_and_refuses_an_unknown_shell() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate"), "generate shows in --help");
    let bad = Command::new(BIN).args(["generate", "completions", "tcsh", "--output", "/tmp"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bash"), "the refusal does not list the shells");
}
