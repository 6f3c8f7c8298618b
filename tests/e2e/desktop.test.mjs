// The real desktop window, end to end: syncmon-desktop --demo (simulated source, no random faults)
// under Xvfb, driven over WebDriver (tauri-driver → WebKitWebDriver), through the journey of
// journey.mjs. Screenshots of the main screens go to $SHOTS. Run by scripts/e2e-desktop.sh, which
// provides the display, the bus and tauri-driver.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { WebDriver } from './webdriver.mjs';
import { ENTITY, demoJourney, mockControl } from './journey.mjs';

const APP = process.env.APP;
const WEBDRIVER = process.env.WEBDRIVER ?? 'http://127.0.0.1:4444';
const SHOTS = process.env.SHOTS;
const MOCK_PORT = Number(process.env.MOCK_PORT ?? 18380);
const mock = mockControl(`http://127.0.0.1:${MOCK_PORT}/_mock`);

const ROOT = resolve(import.meta.dirname, '../..');

const wd = new WebDriver(WEBDRIVER);
const dataDirs = [];
const cleanups = [];
after(async () => {
  await wd.quit().catch(() => {});
  for (const c of cleanups) c();
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

test('the desktop window on a PostgreSQL replica names the agent syncing each entity', { timeout: 180_000 }, async () => {
  await wd.quit().catch(() => {});
  // A throwaway PostgreSQL (its own directory: as root the server runs as `postgres`) and a source.
  const pgDir = mkdtempSync(join(tmpdir(), 'syncmon-e2e-pg-'));
  const url = execFileSync(join(ROOT, 'scripts/pg-throwaway.sh'), ['start', pgDir], { encoding: 'utf8' }).trim();
  cleanups.push(() => execFileSync(join(ROOT, 'scripts/pg-throwaway.sh'), ['stop', pgDir]));
  const port = MOCK_PORT + 10;
  const source = spawn(join(dirname(APP), 'syncmon'), ['mock', '--listen', `127.0.0.1:${port}`, '--records', '300', '--mutations-per-sec', '0', '--entity', 'items'],
    { stdio: 'ignore' });
  cleanups.push(() => source.kill('SIGTERM'));
  for (let i = 0; i < 300; i++) {
    if (await fetch(`http://127.0.0.1:${port}/_mock/entities`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const dir = mkdtempSync(join(tmpdir(), 'syncmon-e2e-fleet-'));
  dataDirs.push(dir);
  const config = join(dir, 'syncmon.toml');
  writeFileSync(config, `[replica]\nurl = "${url}"\n\n[[connection]]\nid = "src"\nbase_url = "http://127.0.0.1:${port}"\n\n[[connection.entity]]\nname = "items"\npoll_every = "5s"\n`);

  await wd.start({ browserName: 'wry', 'tauri:options': { application: APP, args: ['--config', config, '--data-dir', join(dir, 'data')] } });
  const holder = await wd.byTestId('holder-src/items', { timeoutMs: 60_000 });
  assert.match(await wd.text(holder), /\/\d+$/, 'the agent is this app: host/pid');
  const rows = await wd.byTestId('entity-row-src/items');
  await wd.waitFor('the replica rows of items', async () => (await wd.text(rows)).includes('300'), { timeoutMs: 60_000 });
  await shot('fleet');
});

