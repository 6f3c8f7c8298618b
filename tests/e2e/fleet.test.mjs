// Two agents on one PostgreSQL replica, seen through the served UI in Chromium: `syncmon serve`
// (agent A, with the UI) and `syncmon run` (agent B) share a throwaway PostgreSQL
// (scripts/pg-throwaway.sh) and the simulated source. The Overview names the agent syncing each
// entity, the Entity screen says "Synced by agent"; B is SIGKILLed and the Overview shows A
// holding everything within the lease. Run by scripts/e2e-serve.sh after serve.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebDriver } from './webdriver.mjs';

const ROOT = resolve(import.meta.dirname, '../..');
const SYNCMON = process.env.SYNCMON ?? join(ROOT, 'target/debug/syncmon');
const CHROMEDRIVER = process.env.CHROMEDRIVER ?? '/usr/bin/chromedriver';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SHOTS;
const BASE_PORT = Number(process.env.FLEET_E2E_PORT ?? 18580);
const [MOCK_PORT, UI_PORT, DRIVER_PORT] = [BASE_PORT, BASE_PORT + 1, BASE_PORT + 2];
const TOKEN = 'fleet-' + Math.random().toString(36).slice(2).padEnd(12, 'x') + Math.random().toString(36).slice(2);
const UI = `http://127.0.0.1:${UI_PORT}`;
const ENTITIES = ['items', 'customers'];
const LEASE_S = 3;

const work = mkdtempSync(join(tmpdir(), 'syncmon-fleet-e2e-'));
// Its own directory under /tmp: as root the server runs as `postgres`, which cannot enter `work`.
const pgDir = mkdtempSync(join(tmpdir(), 'syncmon-fleet-pg-'));
const wd = new WebDriver(`http://127.0.0.1:${DRIVER_PORT}`);
const children = [];

function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.output = () => out;
  children.push(child);
  return child;
}

async function until(what, probe, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${children.map((c) => c.output().slice(-2000)).join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The agent named in an Overview row's holder cell ('' when none). */
async function holderOf(entity) {
  const el = (await wd.findAll(`[data-testid="holder-src/${entity}"]`))[0];
  return el ? (await wd.text(el)).trim() : '';
}

let agentA, agentB;
before(async () => {
  const url = execFileSync(join(ROOT, 'scripts/pg-throwaway.sh'), ['start', pgDir], { encoding: 'utf8' }).trim();
  const mock = start(SYNCMON, ['mock', '--listen', `127.0.0.1:${MOCK_PORT}`, '--records', '400', '--mutations-per-sec', '0', ...ENTITIES.flatMap((e) => ['--entity', e])]);
  await until('the simulated source', async () => (await fetch(`http://127.0.0.1:${MOCK_PORT}/_mock/entities`)).ok && mock.exitCode === null);
  const config = join(work, 'syncmon.toml');
  writeFileSync(config, `[replica]\nurl = "${url}"\nlease = "${LEASE_S}s"\n\n[[connection]]\nid = "src"\nbase_url = "http://127.0.0.1:${MOCK_PORT}"\n` +
    ENTITIES.map((e) => `\n[[connection.entity]]\nname = "${e}"\npoll_every = "2s"\n`).join(''));
  agentA = start(SYNCMON, ['--config', config, '--data-dir', join(work, 'a'), 'serve', '--listen', `127.0.0.1:${UI_PORT}`,
    '--token-env', 'FLEET_TOKEN', '--ui-dir', join(ROOT, 'ui/dist')], { FLEET_TOKEN: TOKEN });
  agentB = start(SYNCMON, ['--config', config, '--data-dir', join(work, 'b'), 'run']);
  const driver = start(CHROMEDRIVER, [`--port=${DRIVER_PORT}`]);
  await until('chromedriver', async () => (await fetch(`http://127.0.0.1:${DRIVER_PORT}/status`)).ok);
  await wd.start({
    browserName: 'chrome',
    'goog:chromeOptions': { binary: CHROMIUM, args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1280,800', '--disable-dev-shm-usage'] },
  });
});

after(async () => {
  await wd.quit().catch(() => {});
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  try {
    execFileSync(join(ROOT, 'scripts/pg-throwaway.sh'), ['stop', pgDir]);
  } catch {}
  rmSync(work, { recursive: true, force: true });
});

test('in Chromium: two agents on one PostgreSQL replica, each entity shows its agent, and the survivor takes over after a SIGKILL', { timeout: 180_000 }, async () => {
  const [pidA, pidB] = [agentA.pid, agentB.pid];
  await wd.navigate(`${UI}/#token=${TOKEN}`);
  // One entity each: the Overview names both agents.
  const split = await until('one entity per agent on the Overview', async () => {
    const h = await Promise.all(ENTITIES.map(holderOf));
    return h.every(Boolean) && new Set(h).size === 2 && h.some((n) => n.endsWith(`/${pidA}`)) && h.some((n) => n.endsWith(`/${pidB}`)) ? h : null;
  });
  console.log(`fleet: holders ${split.join(', ')}`);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(join(SHOTS, 'web-fleet.png'), await wd.screenshot());
  }
  // The Entity screen says which agent syncs it.
  const bEntity = ENTITIES[split.findIndex((n) => n.endsWith(`/${pidB}`))];
  await wd.navigate(`${UI}/#/entity/src/${bEntity}`);
  const synced = await wd.byTestId('holder', { timeoutMs: 30_000 });
  assert.match(await wd.text(synced), new RegExp(`/${pidB}$`));

  // B dies; A holds both within the lease (and a poll), and the Overview says so.
  agentB.kill('SIGKILL');
  const killed = Date.now();
  await wd.navigate(`${UI}/#/`);
  await until('agent A holding every entity', async () => (await Promise.all(ENTITIES.map(holderOf))).every((n) => n.endsWith(`/${pidA}`)), LEASE_S * 10_000);
  console.log(`fleet: the Overview showed agent A holding both ${Date.now() - killed} ms after B's SIGKILL (lease ${LEASE_S} s)`);
  assert.equal(agentA.exitCode, null, 'agent A still runs');
});
