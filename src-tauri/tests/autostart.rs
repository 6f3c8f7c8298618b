//! "Start at login" as configured by the app (`autostart_plugin`), on Tauri's mock runtime: the
//! XDG autostart entry appears in ~/.config/autostart/syncmon.desktop, starts this executable
//! with `--hidden`, and goes away again. Its own test binary: it points HOME at a temporary
//! directory.

use tauri::test::{mock_builder, mock_context, noop_assets};
use tauri_plugin_autostart::ManagerExt;

#[test]
fn start_at_login_writes_and_removes_the_xdg_autostart_entry() {
    let home = tempfile::tempdir().expect("temp dir");
    std::env::set_var("HOME", home.path());
    let app = mock_builder().plugin(syncmon_desktop::autostart_plugin()).build(mock_context(noop_assets())).expect("mock app");
    let launch = app.autolaunch();
    let entry = home.path().join(".config/autostart/syncmon.desktop");

    assert!(!launch.is_enabled().expect("is_enabled"), "off until the user switches it on");
    launch.enable().expect("enable");
    assert!(launch.is_enabled().expect("is_enabled"));
    let text = std::fs::read_to_string(&entry).expect("the autostart entry exists");
    let exec = text.lines().find(|l| l.starts_with("Exec=")).expect("an Exec line");
    let exe = std::env::current_exe().expect("current exe");
    assert!(exec.contains(&*exe.to_string_lossy()), "Exec starts this executable: {exec}");
    assert!(exec.trim_end().ends_with("--hidden"), "started hidden in the tray: {exec}");
    assert!(text.contains("Type=Application"), "a desktop entry:\n{text}");

    launch.disable().expect("disable");
    assert!(!entry.exists(), "switching it off removes the entry");
    assert!(!launch.is_enabled().expect("is_enabled"));
}
