//! The tray icon: shaped and coloured by overall health (green disc with a check mark ok, amber
//! triangle with "!" lagging, red disc with a cross failing: told apart without colour), with Open,
//! Sync all now, Pause all / Resume all and Quit. The menu actions go through `api::call`, like
//! the window's buttons.

use crate::{quit, show_main, Engine};
use std::time::Duration;
use syncmon_core::api::{self, Request};
use syncmon_core::{EventKind, Health};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Runtime};
use tokio_util::sync::CancellationToken;

const TRAY_ID: &str = "main";

/// The tray's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Ok,
    Lagging,
    Failing,
}

impl Overall {
    pub fn of(health: impl IntoIterator<Item = Health>) -> Overall {
        health.into_iter().fold(Overall::Ok, |acc, h| match h {
            Health::Failing | Health::CircuitOpen => Overall::Failing,
            Health::Lagging | Health::Waiting | Health::Retrying if acc == Overall::Ok => Overall::Lagging,
            _ => acc,
        })
    }

    fn icon(self) -> &'static [u8] {
        match self {
            Overall::Ok => include_bytes!("../../icons/tray-ok.png"),
            Overall::Lagging => include_bytes!("../../icons/tray-lagging.png"),
            Overall::Failing => include_bytes!("../../icons/tray-failing.png"),
        }
    }

    fn words(self) -> &'static str {
        match self {
            Overall::Ok => "all in sync",
            Overall::Lagging => "lagging",
            Overall::Failing => "failing",
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
        let Ok(Ok(status)) = tokio::task::spawn_blocking(move || e.status()).await else { continue };
        let overall = Overall::of(status.iter().map(|s| s.health));
        let bad: Vec<String> = status
            .iter()
            .filter(|s| !matches!(s.health, Health::Healthy | Health::PushOnly | Health::Pending | Health::Resyncing))
            .map(|s| format!("{}/{} {}", s.connection, s.entity, s.health.label()))
            .collect();
        let tooltip = if bad.is_empty() { format!("Syncmon: {}", overall.words()) } else { format!("Syncmon: {}", bad.join(", ")) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tray_shows_the_worst_state() {
        assert_eq!(Overall::of([]), Overall::Ok);
        assert_eq!(Overall::of([Health::Healthy, Health::Paused, Health::Pending, Health::Resyncing]), Overall::Ok);
        assert_eq!(Overall::of([Health::Healthy, Health::Lagging]), Overall::Lagging);
        assert_eq!(Overall::of([Health::Failing, Health::Lagging]), Overall::Failing);
        assert_eq!(Overall::of([Health::Lagging, Health::CircuitOpen, Health::Healthy]), Overall::Failing);
    }
}
