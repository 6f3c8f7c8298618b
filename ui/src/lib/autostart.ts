// "Start at login" in the desktop app: Tauri's autostart plugin (permission `autostart:default`,
// src-tauri/capabilities/main-window.json) registers the app with the platform's own mechanism
// (XDG autostart entry on Linux, LaunchAgent on macOS, Run key on Windows), started `--hidden`.

export type Invoke = (cmd: string) => Promise<unknown>;

export const AUTOSTART = {
  isEnabled: 'plugin:autostart|is_enabled',
  enable: 'plugin:autostart|enable',
  disable: 'plugin:autostart|disable',
} as const;

/** Whether the app starts at login now. */
export async function autostartEnabled(invoke: Invoke): Promise<boolean> {
  return (await invoke(AUTOSTART.isEnabled)) === true;
}

/** Switches it to `on`, then answers what the platform says it is (not what was asked). */
export async function setAutostart(invoke: Invoke, on: boolean): Promise<boolean> {
  await invoke(on ? AUTOSTART.enable : AUTOSTART.disable);
  return autostartEnabled(invoke);
}

/** The desktop app's `invoke`, loaded only there (the served UI has no Tauri). */
export async function tauriInvoke(): Promise<Invoke> {
  const { invoke } = await import('@tauri-apps/api/core');
  return (cmd) => invoke(cmd);
}
