//! The desktop shell: the engine runs in-process on Tauri's tokio runtime; the window talks to it
//! through one command, `rpc` (docs/api.md), and hears every engine event as `syncmon://event`.
//! The shell only wires: behaviour lives in `syncmon_core::api`, notification policy in
//! `syncmon_notify`, the demo setup in `syncmon_demo`.

mod commands;
mod tray;

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use syncmon_core::api::StreamNotice;
use syncmon_core::Config;
use syncmon_core::Syncmon;
use tauri::{Emitter, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// The Tauri event that carries every engine event (payload: `Event`, or `{"type":"resync_needed"}`
/// after the window fell behind and should refetch).
pub const EVENT: &str = "syncmon://event";

#[derive(Parser, Debug)]
#[command(
    name = "syncmon-desktop",
    version,
    about = "Syncmon: keeps a replica (SQLite, or PostgreSQL) in sync with rowVersion REST APIs, and shows whether it is."
)]
pub struct Args {
    /// Config file (TOML). Default: the platform config dir, e.g. ~/.config/syncmon/syncmon.toml
    #[arg(long, env = "SYNCMON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the replica and its state live. Default: the platform data dir.
    #[arg(long, env = "SYNCMON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Run on the built-in simulated source, with faults, like `syncmon demo`.
    #[arg(long)]
    pub demo: bool,
    /// With --demo: keep the simulated source healthy (no injected faults).
    #[arg(long, requires = "demo")]
    pub no_faults: bool,
    /// With --demo: where the simulated source listens.
    #[arg(long, default_value = "127.0.0.1:8380", requires = "demo")]
    pub mock_listen: std::net::SocketAddr,
    /// With --demo: where the webhook receiver listens.
    #[arg(long, default_value = "127.0.0.1:8385", requires = "demo")]
    pub webhook_listen: std::net::SocketAddr,
    /// With --demo: seconds between scheduled polls.
    #[arg(long, default_value_t = 15, requires = "demo")]
    pub poll_seconds: u64,
    /// With --demo: records per entity.
    #[arg(long, default_value_t = 2000, requires = "demo")]
    pub records: usize,
    /// Start with the window hidden (in the tray).
    #[arg(long)]
    pub hidden: bool,
}

/// "Start at login" (the UI's toggle calls the plugin's `enable`/`disable`/`is_enabled`): the
/// platform's own mechanism — `~/.config/autostart/syncmon.desktop` (XDG autostart) on Linux, a
/// LaunchAgent on macOS, the `Run` registry key on Windows — starting the app with `--hidden`,
/// in the tray.
pub fn autostart_plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_autostart::Builder::new().app_name("syncmon").arg("--hidden").build()
}

/// The engine, shared by the command handler, the tray and the background tasks.
pub type Engine = Arc<Syncmon>;

/// The invoke handler of the window (and of tests on the mock runtime).
pub fn invoke_handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![commands::rpc]
}

/// Opens the engine as `syncmon run` would: the same config and data dir (flags, environment,
/// platform defaults), holding the data dir's agent lock (a running `syncmon run`/`serve` makes
/// the app exit 2 naming it). A missing config file opens an empty engine; the Connections
/// screen writes the file.
pub fn open_engine(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Syncmon, String> {
    let path = config.unwrap_or_else(syncmon_core::default_config_path);
    let config = if path.exists() { Config::load(&path).map_err(|e| e.to_string())? } else { Config::parse("").map_err(|e| e.to_string())? };
    let data_dir = data_dir.unwrap_or_else(syncmon_core::default_data_dir);
    Ok(Syncmon::open_agent(config, &data_dir).map_err(|e| e.to_string())?.with_config_path(path))
}

/// Forwards every engine event to the windows until `cancel`.
async fn forward_events<R: Runtime>(app: tauri::AppHandle<R>, mut rx: tokio::sync::broadcast::Receiver<syncmon_core::Event>, cancel: CancellationToken) {
    loop {
        let sent = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = rx.recv() => match ev {
                Ok(ev) => app.emit(EVENT, &ev),
                Err(RecvError::Lagged(_)) => app.emit(EVENT, StreamNotice::ResyncNeeded),
                Err(RecvError::Closed) => return,
            },
        };
        if let Err(e) = sent {
            tracing::debug!("cannot forward an event to the window: {e}");
        }
    }
}

fn show_main<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// Desktop notifications only while the window does not have the focus (shown and focused, the
/// window says the same); clicking one shows and focuses the window on the screen it is about.
fn notifications<R: Runtime>(app: &tauri::AppHandle<R>) -> impl Fn(syncmon_notify::Notification) + Send + Sync + 'static {
    let focus = app.clone();
    let click = app.clone();
    syncmon_notify::unless_focused(
        move || focus.get_webview_window("main").is_some_and(|w| w.is_visible().unwrap_or(false) && w.is_focused().unwrap_or(false)),
        move |n| {
            let app = click.clone();
            syncmon_notify::show_or_log_then(n, move |n| open_screen(&app, &n.screen));
        },
    )
}

/// Shows and focuses the window on `screen` (a hash route of the UI, e.g. `#/entity/src/items`).
fn open_screen<R: Runtime>(app: &tauri::AppHandle<R>, screen: &str) {
    show_main(app);
    if let (Some(w), Ok(route)) = (app.get_webview_window("main"), serde_json::to_string(screen)) {
        if let Err(e) = w.eval(format!("window.location.hash = {route}")) {
            tracing::debug!("cannot open {screen} in the window: {e}");
        }
    }
}

/// What `Quit` stops: the engine finishes or abandons its current page, then the app exits.
struct Shutdown {
    cancel: CancellationToken,
    engine_done: std::sync::Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

pub(crate) fn quit<R: Runtime>(app: &tauri::AppHandle<R>) {
    let shutdown = app.state::<Shutdown>();
    shutdown.cancel.cancel();
    let done = shutdown.engine_done.lock().ok().and_then(|mut d| d.take());
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Some(done) = done {
            // Bounded: a page in flight gets a few seconds to commit.
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
        app.exit(0);
    });
}

/// The log goes to stderr and to `<data dir>/logs/desktop.log` (rotated, no colour codes): an
/// app started from a menu has no terminal, and the diagnostics bundle reads the file.
fn init_logging(args: &Args) {
    use syncmon_core::logfile;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("syncmon_desktop=info,syncmon_core=info,syncmon_notify=info"));
    let data_dir = args.data_dir.clone().unwrap_or_else(if args.demo { syncmon_demo::default_data_dir } else { syncmon_core::default_data_dir });
    let path = logfile::default_log_file(&data_dir, "desktop");
    let file = match logfile::RotatingFile::open(&path, logfile::MAX_BYTES, logfile::KEEP) {
        Ok(f) => Some(tracing_subscriber::fmt::layer().with_ansi(false).with_target(false).with_writer(std::sync::Mutex::new(f))),
        Err(e) => {
            eprintln!("warning: cannot write the log file {}: {e}; logging to stderr only", path.display());
            None
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .with(file)
        .try_init();
}

/// WebKitGTK takes `navigator.language` from the messages locale. Under the C/POSIX locale
/// (containers, CI, `env -i`) it reports "C", which `Intl` rejects, so the UI's chart library
/// cannot even load. Such a session shows the UI in en-US; a real locale is left alone. Runs first
/// in `main`, while the process has one thread.
fn avoid_c_locale_in_the_webview() {
    let c_like = |v: &str| v == "C" || v == "POSIX" || v.starts_with("C.");
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(effective) = var("LC_ALL").or_else(|| var("LC_MESSAGES")).or_else(|| var("LANG")) else { return };
    if !c_like(&effective) {
        return;
    }
    if let Some(all) = var("LC_ALL") {
        // LC_ALL would override LC_MESSAGES: keep its character set through LANG instead.
        std::env::set_var("LANG", all);
        std::env::remove_var("LC_ALL");
    }
    std::env::set_var("LC_MESSAGES", "en_US.UTF-8");
}

/// WebKitGTK's accelerated compositing cost the web process about 100 MB (measured under Xvfb)
/// and buys nothing for tables and small charts. Off unless the user set the variable either way.
fn prefer_software_compositing() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

pub fn main() {
    // Before any thread starts: both change the environment.
    avoid_c_locale_in_the_webview();
    prefer_software_compositing();
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    init_logging(&args);
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

/// Opens the engine (on the demo source with `--demo`); the demo's simulated source lives as long
/// as the returned handle.
fn open(args: &Args, cancel: &CancellationToken) -> Result<(Engine, Option<syncmon_demo::Demo>), String> {
    if !args.demo {
        return Ok((Arc::new(open_engine(args.config.clone(), args.data_dir.clone())?), None));
    }
    let opts = syncmon_demo::DemoOptions {
        mock_listen: args.mock_listen,
        webhook_listen: args.webhook_listen,
        records: args.records,
        poll_seconds: args.poll_seconds,
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(syncmon_demo::default_data_dir);
    let demo = tauri::async_runtime::block_on(syncmon_demo::Demo::start(&opts, &data_dir))?;
    tracing::info!("demo: simulated source on {}, config {}", demo.mock.base_url(), demo.config_path.display());
    if !args.no_faults {
        tauri::async_runtime::spawn(demo.faults(cancel.clone()));
    }
    Ok((Arc::new(demo.open()?), Some(demo)))
}

/// Keeps the demo's simulated source alive with the app.
struct DemoSource(#[allow(dead_code)] syncmon_demo::Demo);

fn run(args: Args) -> Result<(), String> {
    let cancel = CancellationToken::new();
    let setup_cancel = cancel.clone();
    // The single-instance plugin comes first: a second launch hands its arguments to the first
    // and exits before anything below opens the replica or starts a demo source.
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| show_main(app)))
        .plugin(autostart_plugin())
        .manage(Shutdown { cancel: cancel.clone(), engine_done: std::sync::Mutex::new(None) })
        .invoke_handler(invoke_handler())
        .setup(move |app| {
            let cancel = setup_cancel;
            let (engine, demo) = open(&args, &cancel)?;
            app.manage(engine.clone());
            if let Some(demo) = demo {
                app.manage(DemoSource(demo));
            }
            let handle = app.handle().clone();
            // Subscribed before the agent starts, so the window misses nothing.
            let events = engine.subscribe();
            tauri::async_runtime::spawn(forward_events(handle.clone(), events, cancel.clone()));
            let e = engine.clone();
            let c = cancel.clone();
            let done = tauri::async_runtime::spawn(async move {
                if let Err(err) = e.run(c).await {
                    tracing::error!("the agent stopped: {err}");
                }
            });
            *app.state::<Shutdown>().engine_done.lock().expect("lock") = Some(done);
            tauri::async_runtime::spawn(syncmon_notify::run(engine.clone(), syncmon_notify::Overrides::default(), notifications(&handle), cancel.clone()));
            tray::create(&handle, engine, cancel)?;
            // The window is made once the engine is managed, so its first `rpc` finds it.
            let config = app.config().app.windows.iter().find(|w| w.label == "main").cloned().ok_or("no main window in tauri.conf.json")?;
            let window = tauri::WebviewWindowBuilder::from_config(app, &config)?.visible(!args.hidden).build()?;
            window.on_window_event({
                let window = window.clone();
                move |event| {
                    // Closing the window keeps syncing in the tray; Quit (tray menu) ends the app.
                    if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                        api.prevent_close();
                        let _ = window.hide();
                    }
                }
            });
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| format!("cannot start: {e}"))?;
    app.run(|_, _| {});
    Ok(())
}
