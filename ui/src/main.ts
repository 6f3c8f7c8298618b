import { mount } from 'svelte';
import './app.css';
import './form.css';
import App from './App.svelte';
import { initApi } from './lib/api';

// The transport is chosen before anything renders: Tauri IPC in the desktop app, HTTP otherwise.
// (initApi also moves a `#token=…` from the address bar into sessionStorage.)
initApi(window).then(
  () => mount(App, { target: document.getElementById('app')! }),
  (e) => {
    document.getElementById('app')!.textContent = `Syncmon could not start: ${e instanceof Error ? e.message : String(e)}`;
  },
);
