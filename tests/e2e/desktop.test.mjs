// The real desktop window, end to end: syncmon-desktop --demo (simulated source, no random faults)
// under Xvfb, driven over WebDriver (tauri-driver → WebKitWebDriver), through the journey of
// journey.mjs. Screenshots of the main screens go to $SHOTS. Run by scripts/e2e-desktop.sh, which
// provides the display, the bus and tauri-driver.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebDriver } from './webdriver.mjs';
import { ENTITY, demoJourney, mockControl } from './journey.mjs';

const APP = process.env.APP;
const WEBDRIVER = process.env.WEBDRIVER ?? 'http://127.0.0.1:4444';
const SHOTS = process.env.SHOTS;
const MOCK_PORT = Number(process.env.MOCK_PORT ?? 18380);
const mock = mockControl(`http://127.0.0.1:${MOCK_PORT}/_mock`);

const wd = new WebDriver(WEBDRIVER);
const dataDirs = [];
after(async () => {
  await wd.quit().catch(() => {});
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

async function shot(name) {
  if (!SHOTS) return;
  // The DOM is ahead of the pixels: let two frames render and reach the X server first.
  await wd.call('POST', '/execute/async', {
    script: 'const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));',
    args: [],
  });
  await new Promise((r) => setTimeout(r, 800));
  mkdirSync(SHOTS, { recursive: true });
  // The whole Xvfb screen; WebDriver's own screenshot call is not used (it can hang).
  execFileSync('import', ['-window', 'root', join(SHOTS, `${name}.png`)], { timeout: 20_000 });
  console.log(`screenshot: ${join(SHOTS, `${name}.png`)}`);
}

/**
 * Memory (kB) of a process and all its descendants, from /proc: RSS summed (shared libraries
 * counted once per process) and PSS (each shared page split among the processes that map it:
 * what the tree costs the machine).
 */
function treeMemoryKb(rootPid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {}
  }
  let rss = 0;
  let pss = 0;
  const procs = [];
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const r = Number((/VmRSS:\s+(\d+)/.exec(status) ?? [0, 0])[1]);
      const p = Number((/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')) ?? [0, 0])[1]);
      const name = /Name:\s+(\S+)/.exec(status)[1];
      rss += r;
      pss += p;
      procs.push(`${name} ${Math.round(r / 1024)}/${Math.round(p / 1024)} MB`);
    } catch {}
    stack.push(...(children.get(pid) ?? []));
  }
  return { rss, pss, procs };
}

function appPid() {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0] === APP && cmd.includes('--demo')) return Number(d);
    } catch {}
  }
  return null;
}

test('the desktop window shows the demo, a failing entity with its Trackingid, failed items, replay and resync', { timeout: 420_000 }, async () => {
  assert.ok(APP, 'APP must name the syncmon-desktop binary');
  const dataDir = mkdtempSync(join(tmpdir(), 'syncmon-e2e-'));
  dataDirs.push(dataDir);
  const args = ['--demo', '--no-faults', '--data-dir', dataDir, '--mock-listen', `127.0.0.1:${MOCK_PORT}`,
    '--webhook-listen', `127.0.0.1:${MOCK_PORT + 5}`, '--poll-seconds', '60', '--records', '3000'];

  // Launch to the first painted Overview row.
  const t0 = performance.now();
  await wd.start({ browserName: 'wry', 'tauri:options': { application: APP, args } });
  const tSession = performance.now();
  await wd.byTestId(`entity-row-${ENTITY}`, { timeoutMs: 60_000, everyMs: 25 });
  const tRow = performance.now();
  console.log(`MEASURE launch→session ${Math.round(tSession - t0)} ms; launch→first Overview row ${Math.round(tRow - t0)} ms`);

  let measured = false;
  await demoJourney(wd, {
    mock,
    shot: async (name) => {
      await shot(name);
      // Memory once the demo runs and the Overview is painted.
      if (name === 'overview' && !measured) {
        measured = true;
        const pid = appPid();
        assert.ok(pid, 'the app process is found in /proc');
        await new Promise((r) => setTimeout(r, 3000));
        const { rss, pss, procs } = treeMemoryKb(pid);
        console.log(`MEASURE memory app+WebKit: RSS ${Math.round(rss / 1024)} MB summed, PSS ${Math.round(pss / 1024)} MB (RSS/PSS: ${procs.join(', ')})`);
      }
    },
  });
});
