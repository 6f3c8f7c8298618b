//! The tray icon: shaped and coloured by the verdict's tone (`Syncmon::verdict`, the rule the
//! Overview's banner follows): a green disc with a check mark in sync, an amber triangle with "!"
//! when something needs attention, a red disc with a cross when something is failing (told apart
//! without colour); the banner's words as the tooltip. Menu: Open, Sync all now, Pause all /
//! Resume all and Quit. The menu actions go through `api::call`, like the window's buttons.

use crate::{quit, show_main, Engine};
use std::time::Duration;
use syncmon_core::api::{self, Request};
use syncmon_core::{EventKind, Tone};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Runtime};
use tokio_util::sync::CancellationToken;

const TRAY_ID: &str = "main";

/// The tray's icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Ok,
    Attention,
    Failing,
}

impl Overall {
    /// The verdict's tone as an icon: ok and info (resyncing, first sync, paused) are in sync.
    pub fn of(tone: Tone) -> Overall {
        match tone {
            Tone::Ok | Tone::Info => Overall::Ok,
            Tone::Warn => Overall::Attention,
            Tone::Bad => Overall::Failing,
        }
    }

    fn icon(self) -> &'static [u8] {
        match self {
            Overall::Ok => include_bytes!("../../icons/tray-ok.png"),
            Overall::Attention => include_bytes!("../../icons/tray-lagging.png"),
            Overall::Failing => include_bytes!("../../icons/tray-failing.png"),
        }
    }
}

pub fn create<R: Runtime>(app: &AppHandle<R>, engine: Engine, cancel: CancellationToken) -> tauri::Result<()> {
    let menu = Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, "open", "Open Syncmon", true, None::<&str>)?,
            &MenuItem::with_id(app, "sync_all", "Sync all now", true, None::<&str>)?,
            &MenuItem::with_id(app, "pause_all", "Pause all", true, None::<&str>)?,
            &MenuItem::with_id(app, "resume_all", "Resume all", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?,
        ],
    )?;
    let e = engine.clone();
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(Overall::Ok.icon())?)
        .tooltip("Syncmon")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(move |app, event| {
            let request = match event.id().as_ref() {
                "open" => return show_main(app),
                "quit" => return quit(app),
                "sync_all" => Request::SyncNow { entity: None },
                "pause_all" => Request::SetPaused { entity: None, paused: true },
                "resume_all" => Request::SetPaused { entity: None, paused: false },
                _ => return,
            };
            let e = e.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(err) = api::call(&e, request).await {
                    tracing::warn!("tray action failed: {err}");
                }
            });
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click { button: MouseButton::Left, button_state: MouseButtonState::Up, .. } = event {
                show_main(tray.app_handle());
            }
        })
        .build(app)?;
    tauri::async_runtime::spawn(follow_health(app.clone(), engine, cancel));
    Ok(())
}

/// Recolours the tray after every finished cycle or circuit change, and every few seconds
/// (lagging comes with time, not with an event).
async fn follow_health<R: Runtime>(app: AppHandle<R>, engine: Engine, cancel: CancellationToken) {
    let mut events = engine.subscribe();
    let mut shown: Option<(Overall, String)> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
            ev = events.recv() => match ev {
                Ok(ev) if !matches!(ev.kind, EventKind::CycleFinished { .. } | EventKind::CircuitOpened { .. } | EventKind::CircuitClosed { .. } | EventKind::DeletionGuardTripped { .. }) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                _ => {}
            },
        }
        let e = engine.clone();
        let Ok(Ok(verdict)) = tokio::task::spawn_blocking(move || e.status().and_then(|s| e.verdict(&s))).await else { continue };
        let overall = Overall::of(verdict.tone);
        let tooltip = tooltip(&verdict);
        if shown.as_ref() == Some(&(overall, tooltip.clone())) {
            continue;
        }
        if let Some(tray) = app.tray_by_id(TRAY_ID) {
            let changed_colour = shown.as_ref().map(|s| s.0) != Some(overall);
            if changed_colour {
                if let Ok(icon) = Image::from_bytes(overall.icon()) {
                    let _ = tray.set_icon(Some(icon));
                }
            }
            let _ = tray.set_tooltip(Some(&tooltip));
            tracing::debug!(?overall, "tray updated");
        }
        shown = Some((overall, tooltip));
    }
}

/// "Syncmon: 1 entity needs attention — src/items": the banner's words.
fn tooltip(v: &syncmon_core::Verdict) -> String {
    if v.detail.is_empty() {
        format!("Syncmon: {}", v.title)
    } else {
        format!("Syncmon: {} — {}", v.title, v.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncmon_core::Health;

    #[test]
    fn the_tray_shows_the_verdicts_tone() {
        assert_eq!(Overall::of(Tone::Ok), Overall::Ok);
        assert_eq!(Overall::of(Tone::Info), Overall::Ok, "resyncing, a first sync, paused: in sync");
        assert_eq!(Overall::of(Tone::Warn), Overall::Attention);
        assert_eq!(Overall::of(Tone::Bad), Overall::Failing);
        // The tone per health is the engine's: retrying inside the budget is a triangle, not a cross.
        for (h, icon) in [
            (Health::Healthy, Overall::Ok),
            (Health::Paused, Overall::Ok),
            (Health::Pending, Overall::Ok),
            (Health::Resyncing, Overall::Ok),
            (Health::Retrying, Overall::Attention),
            (Health::Waiting, Overall::Attention),
            (Health::Lagging, Overall::Attention),
            (Health::Failing, Overall::Failing),
            (Health::CircuitOpen, Overall::Failing),
        ] {
            assert_eq!(Overall::of(h.tone()), icon, "{h}");
        }
    }
}
