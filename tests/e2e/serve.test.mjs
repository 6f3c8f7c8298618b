// `syncmon serve` end to end in Chromium: `syncmon demo --serve` (simulated source, no random
// faults) on loopback, Debian's chromium driven over WebDriver (chromedriver), through the same
// journey as the desktop window (journey.mjs); plus what a server on a port must refuse: no or a
// wrong token (401), a foreign Host such as DNS rebinding sends (403), a foreign Origin (403).
// Then Failed items with 100,000 rows: the table stays virtualised and reaches the last row, and
// the time per page fetched from the engine and the frame times while scrolling are printed
// (MEASURE lines; measured, not asserted). Run by scripts/e2e-serve.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebDriver } from './webdriver.mjs';
import { ENTITY, demoJourney, go, mockControl } from './journey.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const SYNCMON = process.env.SYNCMON ?? join(ROOT, 'target/debug/syncmon');
const CHROMEDRIVER = process.env.CHROMEDRIVER ?? '/usr/bin/chromedriver';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SHOTS;
const BASE_PORT = Number(process.env.SERVE_E2E_PORT ?? 18480);
const MOCK_PORT = BASE_PORT;
const UI_PORT = BASE_PORT + 1;
const DRIVER_PORT = BASE_PORT + 2;
const WEBHOOK_PORT = BASE_PORT + 3;
const TOKEN = 'e2e-' + Math.random().toString(36).slice(2).padEnd(12, 'x') + Math.random().toString(36).slice(2);
const UI = `http://127.0.0.1:${UI_PORT}`;
const REBIND_HOST = 'rebind.syncmon-e2e.test';
const FAILED_ROWS = 100_000;

const mock = mockControl(`http://127.0.0.1:${MOCK_PORT}/_mock`);
const dataDir = mkdtempSync(join(tmpdir(), 'syncmon-serve-e2e-'));
const wd = new WebDriver(`http://127.0.0.1:${DRIVER_PORT}`);
const children = [];

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.output = () => out;
  children.push(child);
  return child;
}

/** Polls until `probe` is truthy (bounded); `child` dying first fails at once with its output. */
async function until(what, probe, child, timeoutMs = 120_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what}: the process exited (${child.exitCode}):\n${child.output()}`);
    try {
      if (await probe()) return;
    } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${child.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A raw HTTP request, so that `Host` and `Origin` can be anything. */
function http(method, path, headers = {}, body) {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port: UI_PORT, method, path, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolvePromise({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const rpcBody = JSON.stringify({ method: 'overview', params: {} });
const json = { 'content-type': 'application/json' };
const bearer = { authorization: `Bearer ${TOKEN}` };

async function shot(name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, `web-${name}.png`), await wd.screenshot());
}

let server;
before(async () => {
  server = start(SYNCMON, ['--data-dir', dataDir, 'demo', '--no-faults', '--serve', `127.0.0.1:${UI_PORT}`,
    '--mock-listen', `127.0.0.1:${MOCK_PORT}`, '--webhook-listen', `127.0.0.1:${WEBHOOK_PORT}`,
    '--poll-seconds', '60', '--records', '3000', '--ui-dir', join(ROOT, 'ui/dist')],
  { SYNCMON_DEMO_TOKEN: TOKEN, RUST_LOG: 'warn' });
  await until('syncmon demo --serve to answer', async () => (await http('GET', '/api/status', bearer)).status === 200, server);

  const driver = start(CHROMEDRIVER, [`--port=${DRIVER_PORT}`]);
  await until('chromedriver to listen', async () => (await fetch(`http://127.0.0.1:${DRIVER_PORT}/status`)).ok, driver, 30_000);
  await wd.start({
    browserName: 'chrome',
    'goog:chromeOptions': {
      binary: CHROMIUM,
      args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,800', '--disable-dev-shm-usage',
        // DNS rebinding, for real: this name resolves to loopback in this browser only.
        `--host-resolver-rules=MAP ${REBIND_HOST} 127.0.0.1`],
    },
  });
});

after(async () => {
  await wd.quit().catch(() => {});
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  // The replica with its 100,000 failed items is ~140 MB: leave nothing behind in /tmp.
  rmSync(dataDir, { recursive: true, force: true });
});

test('the API refuses a missing or wrong token, a foreign Host and a foreign Origin', async () => {
  const none = await http('POST', '/api/rpc', json, rpcBody);
  assert.equal(none.status, 401, 'no token → 401');
  const { error } = JSON.parse(none.text);
  assert.equal(error.code, 'unauthorized');
  assert.match(error.message, /--show-token/, 'the error says how to get the token');
  assert.equal((await http('GET', '/api/events')).status, 401, 'the event stream needs the token too');
  assert.equal((await http('POST', '/api/rpc', { ...json, authorization: 'Bearer not-the-token-at-all' }, rpcBody)).status, 401, 'wrong token → 401');

  const ok = await http('POST', '/api/rpc', { ...json, ...bearer }, rpcBody);
  assert.equal(ok.status, 200, 'the right token → 200');
  assert.equal(ok.headers['access-control-allow-origin'], undefined, 'no CORS');

  const rebound = await http('POST', '/api/rpc', { ...json, ...bearer, host: `${REBIND_HOST}:${UI_PORT}` }, rpcBody);
  assert.equal(rebound.status, 403, 'a foreign Host is refused even with the token');
  const page = await http('GET', '/', { host: `evil.example:${UI_PORT}` });
  assert.equal(page.status, 403, 'the UI is not served to a foreign Host either');
  const foreign = await http('POST', '/api/rpc', { ...json, ...bearer, origin: 'http://evil.example' }, rpcBody);
  assert.equal(foreign.status, 403, 'a foreign Origin is refused even with the token');
});

test('in Chromium: no token shows how to get one; a rebound host name gets no page', async () => {
  await wd.navigate(`${UI}/`);
  const alert = await wd.byTestId('unauthorized', { timeoutMs: 20_000 });
  assert.match(await wd.text(alert), /access token/);
  assert.equal((await wd.findAll('[data-testid^="entity-row-"]')).length, 0, 'no data without the token');

  // What a DNS-rebinding page would reach: the name resolves to 127.0.0.1, the Host is foreign.
  await wd.navigate(`http://${REBIND_HOST}:${UI_PORT}/#token=${TOKEN}`);
  const body = await wd.waitFor('the refusal', async () => wd.script('return document.body && document.body.innerText'));
  assert.match(body, /is not this server/);
  assert.equal((await wd.findAll('[data-testid="nav-failed"]')).length, 0, 'the UI did not load');
});

test('in Chromium: the demo journey through the served UI', { timeout: 420_000 }, async () => {
  await wd.navigate(`${UI}/#token=${TOKEN}`);
  const url = await wd.call('GET', '/url');
  assert.doesNotMatch(url, /token=/, 'the token leaves the address bar');
  await demoJourney(wd, { mock, shot, served: true });
});

test("in Chromium: the UI follows the system's dark theme", async () => {
  const background = () => wd.script('return getComputedStyle(document.body).backgroundColor');
  const light = await background();
  // What a desktop set to dark mode tells the page (Chrome DevTools Protocol through chromedriver).
  await wd.call('POST', '/goog/cdp/execute', { cmd: 'Emulation.setEmulatedMedia', params: { features: [{ name: 'prefers-color-scheme', value: 'dark' }] } });
  try {
    await go(wd, '#/overview');
    await wd.byTestId(`entity-row-${ENTITY}`);
    const dark = await background();
    const luminance = (css) => {
      const [r, g, b] = css.match(/\d+/g).map(Number);
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    assert.ok(luminance(light) > 200 && luminance(dark) < 40, `light ${light}, dark ${dark}`);
    await shot('overview-dark');
  } finally {
    await wd.call('POST', '/goog/cdp/execute', { cmd: 'Emulation.setEmulatedMedia', params: { features: [] } });
  }
});

test('in Chromium: Failed items with 100,000 rows stays virtualised and reaches the last row', { timeout: 300_000 }, async () => {
  execFileSync('python3', [join(ROOT, 'bench/run.py'), '--fill-failed', join(dataDir, 'syncmon.db'), String(FAILED_ROWS), 'demo', 'items'],
    { timeout: 240_000 });
  await go(wd, `#/failed?entity=${ENTITY}`);
  // A filter change or new data refetches: reload so the screen reads the new total.
  await wd.script('location.reload(); return true;');
  const total = await wd.byTestId('failed-total', { timeoutMs: 30_000 });
  await wd.waitFor('the total of 100,000', async () => /100[,. \u202f\u00a0]?000/.test(await wd.text(total)), { timeoutMs: 30_000 });

  // The time per page fetched from the engine, as the table fetches it (POST /api/rpc failed_page,
  // 100 rows), at offsets spread over the list.
  const times = await wd.scriptAsync(`
    const [token, total, done] = arguments;
    (async () => {
      const out = [];
      for (let i = 0; i < 40; i++) {
        const offset = Math.floor(((i * 7919) % 40) / 40 * (total - 100));
        const t = performance.now();
        const res = await fetch('/api/rpc', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
          body: JSON.stringify({ method: 'failed_page', params: { filter: { entity: 'demo/items' }, offset, limit: 100 } }) });
        const page = await res.json();
        out.push([performance.now() - t, res.status, (page.items || []).length]);
      }
      done(out);
    })().catch((e) => done(String(e)));`, [TOKEN, FAILED_ROWS], 120_000);
  assert.ok(Array.isArray(times), `page fetches: ${times}`);
  for (const [, status, n] of times) {
    assert.equal(status, 200);
    assert.equal(n, 100, 'a full page of 100 items');
  }
  const ms = times.map((t) => t[0]).sort((a, b) => a - b);
  const pct = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
  console.log(`MEASURE failed_page (100 of ${FAILED_ROWS.toLocaleString('en')} items, over HTTP in Chromium): median ${pct(0.5)} ms, p95 ${pct(0.95)} ms, max ${ms.at(-1).toFixed(1)} ms (${ms.length} fetches)`);

  // Scroll the table from top to bottom, one step per animation frame, counting the rows in the
  // DOM and the frame intervals.
  const scroll = await wd.scriptAsync(`
    const done = arguments[arguments.length - 1];
    const vp = document.querySelector('[role="rowgroup"]');
    if (!vp) return done('no virtual list');
    const frames = [];
    let maxRows = 0, last = performance.now(), steps = 0;
    const rpcBefore = performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/rpc')).length;
    const stepPx = Math.ceil(vp.scrollHeight / 400);
    function step(now) {
      frames.push(now - last);
      last = now;
      maxRows = Math.max(maxRows, document.querySelectorAll('[data-testid="failed-row"]').length);
      if (steps++ >= 400 || vp.scrollTop + vp.clientHeight >= vp.scrollHeight) {
        const rpc = performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/rpc')).length - rpcBefore;
        return done({ frames: frames.slice(1), maxRows, rpc, steps });
      }
      vp.scrollTop += stepPx;
      requestAnimationFrame(step);
    }
    requestAnimationFrame(step);`, [], 120_000);
  assert.equal(typeof scroll, 'object', `scroll: ${scroll}`);
  assert.ok(scroll.maxRows > 0 && scroll.maxRows < 200, `virtualised: at most ${scroll.maxRows} rows in the DOM at once`);
  const lastRow = await wd.waitFor('the last row, loaded', async () => {
    const rows = await wd.findAll(`[data-testid="failed-row"][data-index="${FAILED_ROWS - 1}"]`);
    return rows[0] && (await wd.attr(rows[0], 'data-id')) ? rows[0] : null;
  }, { timeoutMs: 20_000 });
  assert.ok(lastRow);
  const f = scroll.frames.slice().sort((a, b) => a - b);
  const over = (limit) => scroll.frames.filter((x) => x > limit).length;
  console.log(`MEASURE scrolling ${FAILED_ROWS.toLocaleString('en')} failed items top to bottom in ${scroll.steps} frames (headless Chromium, software rendering): ` +
    `frame median ${f[Math.floor(f.length / 2)].toFixed(1)} ms, p95 ${f[Math.floor(f.length * 0.95)].toFixed(1)} ms, max ${f.at(-1).toFixed(1)} ms; ` +
    `${over(1000 / 60 * 1.5)} frames over 25 ms, ${over(50)} over 50 ms; ${scroll.rpc} page requests; at most ${scroll.maxRows} rows in the DOM`);
  await shot('failed-100k');
});
