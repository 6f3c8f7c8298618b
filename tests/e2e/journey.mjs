// The user's journey through the demo, shared by the desktop window (desktop.test.mjs) and the
// served UI in Chromium (serve.test.mjs): the same screens, the same data-testids, the same checks.
// Faults are switched on and off through the simulated source's control API.

import assert from 'node:assert/strict';

export const ENTITY = 'demo/items';
export const DEMO_ENTITIES = ['demo/items', 'demo/customers', 'demo/salesorders'];

/** The simulated source's control API at `base` (http://127.0.0.1:PORT/_mock). */
export function mockControl(base) {
  return async function mock(method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    // What the route answered (the ids a change touched), when it is JSON.
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  };
}


/** The health shown on an entity's Overview row. */
export async function health(wd, entity) {
  const [pill] = await wd.findAll(`[data-testid="status-${entity}"]`);
  return pill ? wd.attr(pill, 'data-health') : null;
}

export async function waitHealth(wd, entity, wanted, timeoutMs = 60_000) {
  return wd.waitFor(`${entity} to be ${wanted.join(' or ')}`, async () => {
    const h = await health(wd, entity);
    return wanted.includes(h) ? h : null;
  }, { timeoutMs });
}

/**
 * The text of the first element matching `css` when it is laid out with a size (the user can see
 * it), else null. WebKitWebDriver's element text leaves out the Trackingid's <code> inside an
 * inline flex box, so this reads the DOM.
 */
export async function shownText(wd, css) {
  return wd.script(`const el = document.querySelector(arguments[0]);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 ? el.textContent.trim() : null;`, [css]);
}

/** Types `value` into the form control `testid` as the user would (Svelte listens to `event`). */
export async function fill(wd, testid, value, event = 'input') {
  await wd.byTestId(testid, { timeoutMs: 10_000 });
  await wd.script(`const el = document.querySelector('[data-testid="' + arguments[0] + '"]');
    el.value = arguments[1];
    el.dispatchEvent(new Event(arguments[2], { bubbles: true }));`, [testid, value, event]);
}

export async function go(wd, hash) {
  await wd.script(`location.hash = ${JSON.stringify(hash)}`);
}

/**
 * Overview healthy → one transient 503 reads "Retrying" with its next attempt (banner amber) →
 * an outage turns the entity failing with the failed request's Trackingid →
 * poison records land in Failed items → Replay all after the fix empties the list → Sync now and
 * Full resync (with its progress bar) → Activity and Connections. `shot(name)` takes a screenshot.
 */
export async function demoJourney(wd, { mock, shot, served = false }) {
  for (const e of DEMO_ENTITIES) {
    await wd.byTestId(`entity-row-${e}`, { timeoutMs: 60_000 });
    await waitHealth(wd, e, ['healthy']);
  }
  await shot('overview');

  // One transient outage inside the retry budget: four 503s (the call and its three retries) fail
  // one cycle; the entity reads "Retrying" with its next attempt, the banner stays amber, and the
  // next cycle heals it.
  await mock('POST', '/faults', { kind: 'status', status: 503, entity: 'items', times: 4 });
  await wd.click(await wd.byTestId(`sync-now-${ENTITY}`));
  await waitHealth(wd, ENTITY, ['retrying']);
  const next = await wd.waitFor('the next attempt on the row', () => shownText(wd, `[data-testid="entity-row-${ENTITY}"] [data-testid="next-attempt"]`));
  // A time on another day carries its date (a run just before midnight: "2026-12-05 00:00").
  assert.match(next, /^next attempt (now|(\d{4}-\d\d-\d\d )?\d\d:\d\d)/, `the row says when it tries again: ${next}`);
  assert.notEqual(await wd.attr(await wd.byTestId('banner'), 'data-tone'), 'bad', 'a retry inside the budget does not turn the banner red');
  assert.doesNotMatch(await shownText(wd, '[data-testid="banner"]'), /Everything is in sync/, 'nor does the banner call it in sync');
  await shot('overview-retrying');
  await wd.click(await wd.byTestId(`sync-now-${ENTITY}`));
  await waitHealth(wd, ENTITY, ['healthy']);

  // A source outage: every call of items answers 503 until cleared. Each failed cycle retries
  // by itself; after breaker_threshold (3) of them in a row the entity is failing, or its circuit open.
  await mock('POST', '/faults', { kind: 'status', status: 503, entity: 'items', times: 0 });
  for (let i = 0; i < 6 && !['failing', 'circuit_open'].includes(await health(wd, ENTITY)); i++) {
    // Each failed cycle ends on another 503, with another Trackingid on the row.
    const rowTracking = `[data-testid="entity-row-${ENTITY}"] [data-testid="tracking-id"]`;
    const before = await shownText(wd, rowTracking);
    await wd.click(await wd.byTestId(`sync-now-${ENTITY}`));
    await wd.waitFor('a failed cycle on the row', async () => {
      const t = await shownText(wd, rowTracking);
      return t && t !== before && ['retrying', 'failing', 'circuit_open'].includes(await health(wd, ENTITY));
    }, { timeoutMs: 30_000 });
  }
  await waitHealth(wd, ENTITY, ['failing', 'circuit_open']);
  const tracking = await wd.waitFor('the Trackingid of the failed request on the row', async () =>
    shownText(wd, `[data-testid="entity-row-${ENTITY}"] [data-testid="tracking-id"]`));
  assert.match(tracking, /^[0-9a-f-]{36}$/, 'the Trackingid the source sent');
  // Between its retries the entity reads failing; during one it reads resyncing: catch a still
  // frame of the failing state for the screenshot (bounded).
  for (let i = 0; i < 10; i++) {
    await waitHealth(wd, ENTITY, ['failing', 'circuit_open']);
    await shot('overview-failing');
    if (['failing', 'circuit_open'].includes(await health(wd, ENTITY))) break;
  }
  assert.equal(await wd.attr(await wd.byTestId('banner'), 'data-tone'), 'bad', 'past the budget the banner is red');

  // The Diagnostics button: the bundle's SUMMARY names the failing entity and a Trackingid. The
  // served UI downloads the zip (GET /api/diagnostics); the desktop window saves it in the data dir.
  if (served) {
    await wd.script(`window.__zip = null; const orig = URL.createObjectURL.bind(URL);
      URL.createObjectURL = (b) => { b.arrayBuffer().then((a) => (window.__zip = { size: a.byteLength, magic: String.fromCharCode(...new Uint8Array(a, 0, 2)) })); return orig(b); };`);
  }
  await wd.click(await wd.byTestId('diagnostics'));
  await wd.byTestId('diagnostics-summary', { timeoutMs: 30_000 });
  // textContent: the summary is many lines, and WebKit's WebDriver returns only the first.
  const summary = await wd.script(`return document.querySelector('[data-testid="diagnostics-summary"]').textContent`);
  assert.ok(summary.includes(`**${ENTITY}** is`), `SUMMARY names ${ENTITY}: ${summary}`);
  assert.match(summary, /Trackingid: [0-9a-f-]{36}/, `SUMMARY carries the Trackingid: ${summary}`);
  assert.match(await wd.script(`return document.querySelector('[data-testid="diagnostics-path"]').textContent.trim()`), /syncmon-diagnostics-.*\.zip$/);
  if (served) {
    const zip = await wd.waitFor('the diagnostics download', () => wd.script('return window.__zip'), { timeoutMs: 20_000 });
    assert.equal(zip.magic, 'PK', 'the download is a zip');
    assert.ok(zip.size > 1000, `a whole bundle: ${zip.size} bytes`);
  }
  await shot('diagnostics');
  await wd.click(await wd.byTestId('diagnostics-close'));

  // The fix, then a page with three poison records (no rowVersion).
  await mock('DELETE', '/faults');
  await mock('POST', '/faults', { kind: 'missing_row_version', records: 3, entity: 'items', times: 1 });
  await mock('POST', '/mutate/items?n=10');
  await wd.click(await wd.byTestId(`sync-now-${ENTITY}`));
  await waitHealth(wd, ENTITY, ['healthy']);
  await wd.click(await wd.byTestId('nav-failed'));
  const rows = await wd.waitFor('three failed rows', async () => {
    const r = await wd.findAll('[data-testid="failed-row"]');
    return r.length >= 3 ? r : null;
  });
  assert.equal(rows.length, 3, 'one failed item per poison record');
  await wd.click(rows[0]);
  await wd.byTestId('failed-detail');
  assert.match(await shownText(wd, '[data-testid="failed-detail"] [data-testid="tracking-id"]') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-/,
    'the detail pane shows the Trackingid');
  await shot('failed-items');

  // The summary by error kind, and (served UI) Export CSV: the download the button saves holds
  // the header and a row per failed item, each with its error kind.
  await wd.byTestId('kind-group', { timeoutMs: 10_000 });
  const kindChip = await wd.script(`return document.querySelector('[data-testid="kind-group"]').textContent`);
  assert.match(kindChip, /missing_row_version\s+3/, 'the summary counts the three by kind');
  if (served) {
    await wd.script(`window.__download = null; const orig = URL.createObjectURL.bind(URL);
      URL.createObjectURL = (b) => { b.text().then((t) => (window.__download = t)); return orig(b); };`);
    await wd.click(await wd.byTestId('export-csv'));
    const csv = await wd.waitFor('the CSV download', () => wd.script('return window.__download'), { timeoutMs: 20_000 });
    assert.match(csv, /^id,connection,entity,record_id,row_version,stage,error_kind/, 'a CSV header');
    assert.equal(csv.match(/missing_row_version/g)?.length, 3, 'a row per failed item');
  }

  // Discard all matching asks first, naming how many; cancelled, nothing is discarded.
  await wd.click(await wd.byTestId('discard-all'));
  const asked = await wd.waitFor('the discard confirmation', () => shownText(wd, '[data-testid="confirm-dialog"]'), { timeoutMs: 10_000 });
  assert.match(asked, /Discard failed items\?/, `the dialog asks: ${asked}`);
  assert.match(asked, /discards\s*3\s*items matching the current filter/, `and names how many: ${asked}`);
  assert.match(await shownText(wd, '[data-testid="confirm"]'), /^Discard 3$/);
  await shot('failed-discard-confirm');
  await wd.click(await wd.byTestId('confirm-cancel'));
  await wd.waitFor('the dialog to close', async () => (await shownText(wd, '[data-testid="confirm-dialog"]')) == null, { timeoutMs: 10_000 });
  assert.equal((await wd.findAll('[data-testid="failed-row"]')).length, 3, 'cancelled: nothing is discarded');

  // Replay after the fix: the records are fetched again by id and apply.
  await mock('DELETE', '/faults');
  await wd.click(await wd.byTestId('replay-all'));
  await wd.click(await wd.byTestId('confirm'));
  await wd.waitFor('the failed list to empty', async () =>
    (await wd.findAll('[data-testid="failed-row"]')).length === 0 && (await wd.findAll('[data-testid="failed-empty"]')).length > 0);
  await shot('failed-items-empty');

  // Sync now on the Entity screen, then a Full resync slowed down at the source so that its
  // progress shows.
  await go(wd, `#/entity/${ENTITY}`);
  await wd.click(await wd.byTestId(`sync-now-${ENTITY}`, { timeoutMs: 10_000 }));
  await shot('entity');

  // A Trackingid from the request log, pasted into the search box, brings up its call.
  const tid = await wd.waitFor('a Trackingid in the request log', () =>
    wd.script(`const el = document.querySelector('[data-testid="requests"] [data-testid="tracking-id"]'); return el ? el.textContent.trim() : null;`),
  { timeoutMs: 20_000 });
  await fill(wd, 'find-input', tid);
  await wd.script(`document.querySelector('[data-testid="find-input"]').form.requestSubmit()`);
  await wd.byTestId('find-request', { timeoutMs: 10_000 });
  // textContent: WebKit's WebDriver returns only the first line of an element's text.
  const foundCall = await wd.script(`return document.querySelector('[data-testid="find-request"]').textContent`);
  assert.match(foundCall, /demo\/items/, 'the call that carried the Trackingid, with its entity');
  await shot('find');
  await go(wd, `#/entity/${ENTITY}`);
  await mock('POST', '/faults', { kind: 'slow', millis: 800, entity: 'items', times: 8 });
  await wd.click(await wd.byTestId('resync'));
  // The confirmation says, before anything is read, how many replica rows the pass may delete.
  const preview = await wd.text(await wd.byTestId('resync-preview', { timeoutMs: 10_000 }));
  assert.match(preview, /Up to [\d,]+ of the [\d,]+ replica rows may be deleted/, `the resync preview: ${preview}`);
  await shot('entity-resync-confirm');
  await wd.click(await wd.byTestId('confirm'));
  await wd.byTestId('progress', { timeoutMs: 20_000, everyMs: 100 });
  await shot('entity-resync-progress');
  await wd.waitFor('the resync to finish', async () => (await wd.findAll('[data-testid="progress"]')).length === 0, { timeoutMs: 90_000 });
  const report = await wd.byTestId('resync-report', { timeoutMs: 10_000 });
  assert.match(await wd.text(report), /Full resync finished/, 'the resync reports its end');
  await go(wd, '#/overview');
  await waitHealth(wd, ENTITY, ['healthy'], 90_000);

  // Verify, on an entity whose source changed behind Syncmon's back: paused (no poll syncs the
  // changes meanwhile), five records changed and three added at the source. The demo source also
  // changes by itself (3 a second), so the counts are at least these; the added ids are named.
  const CUSTOMERS = 'demo/customers';
  await go(wd, `#/entity/${CUSTOMERS}`);
  await wd.click(await wd.byTestId('pause', { timeoutMs: 10_000 }));
  await wd.byTestId('resume', { timeoutMs: 10_000 });
  await mock('POST', '/mutate/customers?n=5');
  const added = await mock('POST', '/insert/customers?n=3');
  assert.equal(added.length, 3, 'the source added three records');
  await wd.click(await wd.byTestId('verify'));
  await wd.byTestId('verify-result', { timeoutMs: 60_000 });
  const verified = await wd.script(`const q = (t) => document.querySelector('[data-testid="' + t + '"]').textContent.replace(/\\s+/g, ' ').trim();
    return [q('verify-headline'), q('verify-missing'), q('verify-stale'), q('verify-extra')]`);
  assert.match(verified[0], /differs from the source: \d+ missing, \d+ stale/, `the headline: ${verified[0]}`);
  const counted = (text, kind) => Number((new RegExp(`^([\\d,]+) ${kind}`).exec(text) ?? [])[1]?.replaceAll(',', ''));
  assert.ok(counted(verified[1], 'missing') >= 3, `missing: ${verified[1]}`);
  assert.ok(counted(verified[2], 'stale') >= 5, `stale: ${verified[2]}`);
  assert.ok(Number.isFinite(counted(verified[3], 'extra')), `extra: ${verified[3]}`);
  if (counted(verified[1], 'missing') <= 20) {
    for (const id of added) assert.ok(verified[1].includes(id), `the added ${id} is named missing: ${verified[1]}`);
  }
  assert.match(await shownText(wd, '[data-testid="verify-result"] [data-testid="tracking-id"]') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-/,
    'the Trackingid of the reads');
  await shot('entity-verify');
  // Kept: the Entity screen shows the last verify after a reload of the screen.
  await go(wd, '#/overview');
  await go(wd, `#/entity/${CUSTOMERS}`);
  const kept = await wd.waitFor('the kept verify', () => shownText(wd, '[data-testid="verify-missing"]'), { timeoutMs: 10_000 });
  assert.equal(kept.replace(/\s+/g, ' '), verified[1], 'the last verify is kept');
  await wd.click(await wd.byTestId('resume'));
  await wd.byTestId('pause', { timeoutMs: 10_000 });
  await go(wd, '#/overview');

  // Activity: the failed call's Trackingid, typed into the search, finds its events in the
  // stored log; the entity's name brings up its events only, a run of pages folded into one row
  // ("N pages applied · … records · 14:02–14:05") that opens on click; days have headings.
  await wd.click(await wd.byTestId('nav-activity'));
  const day = await wd.waitFor('a day heading', () => shownText(wd, '[data-testid="activity-day"]'), { timeoutMs: 10_000 });
  assert.match(day, /^(Today|Yesterday)$/, `the day heading: ${day}`);
  await fill(wd, 'activity-search', tracking);
  const withTracking = await wd.waitFor('the events of the Trackingid', () => wd.script(`const rows = [...document.querySelectorAll('[data-testid="activity-event"]')];
    return rows.length && rows.every((r) => r.textContent.includes(arguments[0])) ? rows.map((r) => r.dataset.type) : null;`, [tracking]), { timeoutMs: 15_000 });
  assert.ok(withTracking.some((t) => t === 'cycle_finished' || t === 'retrying'), `the failed cycle or its retries: ${withTracking}`);
  await fill(wd, 'activity-search', ENTITY);
  const folded = await wd.waitFor('a folded row of pages', () => wd.script(`const rows = [...document.querySelectorAll('[data-testid="activity-event"], [data-testid="activity-group"]')];
    if (!rows.length || rows.some((r) => !r.textContent.includes(arguments[0]))) return null;
    const i = [...document.querySelectorAll('[data-testid="activity-group"]')].findIndex((g) => /\\d+ pages applied · [\\d,]+ records · \\d\\d:\\d\\d/.test(g.textContent));
    return i < 0 ? null : [i, document.querySelectorAll('[data-testid="activity-group"]')[i].textContent.replace(/\\s+/g, ' ').trim()];`, [ENTITY]), { timeoutMs: 15_000 })
    .catch(async (e) => {
      const shown = await wd.script(`return [...document.querySelectorAll('[data-testid="activity-event"], [data-testid="activity-group"]')].slice(-60)
        .map((r) => r.textContent.replace(/\\s+/g, ' ').trim()).join('\\n')`);
      throw new Error(`${e.message}; the last rows shown:\n${shown}`);
    });
  const pagesFolded = Number(/(\d+) pages applied/.exec(folded[1])[1]);
  assert.ok(pagesFolded >= 2, `a run of pages in one row: ${folded[1]}`);
  const group = (await wd.findAll('[data-testid="activity-group"]'))[folded[0]];
  await wd.script(`document.querySelectorAll('[data-testid="activity-group"]')[arguments[0]].scrollIntoView({ block: 'center' })`, [folded[0]]);
  await wd.click(group);
  assert.equal(await wd.attr(group, 'aria-expanded'), 'true');
  const opened = await wd.script(`const g = document.querySelectorAll('[data-testid="activity-group"]')[arguments[0]];
    return g.nextElementSibling?.querySelectorAll('[data-testid="activity-event"][data-type="page_applied"]').length ?? 0;`, [folded[0]]);
  assert.equal(opened, pagesFolded, 'opened, the row shows each of its pages');
  await shot('activity');
  // The entity's lag over the last 7 days is charted ("was it in sync yesterday?").
  await go(wd, `#/entity/${ENTITY}`);
  await wd.waitFor('the lag chart', () => wd.script(`return document.querySelector('[data-testid="lag-chart"] canvas') ? true : null`), { timeoutMs: 15_000 });
  assert.equal(await shownText(wd, '[data-testid="lag-chart"] h2'), 'Lag, last 7 days');
  await wd.script(`document.querySelector('[data-testid="lag-chart"]').scrollIntoView({ block: 'center' })`);
  await shot('entity-lag');
  await wd.click(await wd.byTestId('nav-connections'));
  // The demo connection opens in the form; Test connection makes one call and shows its outcome.
  await wd.click(await wd.byTestId('test-connection', { timeoutMs: 10_000 }));
  const result = await wd.byTestId('test-result', { timeoutMs: 20_000 });
  const text = await wd.text(result);
  assert.match(text, /OK/, `the demo source answers the test: ${text}`);
  assert.match(await shownText(wd, '[data-testid="test-result"] [data-testid="tracking-id"]') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-/,
    'the test shows the Trackingid of its call');
  await shot('connections');

  // A timestamp connection made from the form (the feed's keys included), saved to the config
  // file, listed with its entity, and tested against the simulated source's `vendors` feed.
  const base = await wd.script(`return document.querySelector('[data-testid="conn-base-url"]').value`);
  await wd.click(await wd.byTestId('add-connection'));
  await fill(wd, 'conn-id', 'stamped');
  await fill(wd, 'conn-base-url', base);
  await fill(wd, 'conn-auth', 'none', 'change');
  await fill(wd, 'conn-profile', 'timestamp', 'change');
  await wd.byTestId('cursor-fields', { timeoutMs: 10_000 });
  const filled = await wd.script(`return ['cursor-version_field', 'cursor-filter_param', 'cursor-records_pointer']
    .map((t) => document.querySelector('[data-testid="' + t + '"]').value)`);
  assert.deepEqual(filled, ['lastModified', 'modifiedSince', '/items'], 'the timestamp profile starts from the usual names');
  await fill(wd, 'entity-name-0', 'vendors');
  // A refusal of a feed key appears beside its field, and nothing is listed yet.
  await fill(wd, 'cursor-filter_param', '');
  await wd.click(await wd.byTestId('save-connection'));
  const refusal = await wd.byTestId('field-error-cursor.filter_param', { timeoutMs: 15_000 });
  assert.match(await wd.text(refusal), /filter_param/, 'the refusal names the key');
  assert.equal((await wd.findAll('[data-testid="connection-stamped"]')).length, 0, 'a refused connection is not saved');
  await fill(wd, 'cursor-filter_param', 'modifiedSince');
  await wd.click(await wd.byTestId('save-connection'));
  await wd.byTestId('connection-stamped', { timeoutMs: 15_000 });
  // textContent: WebKit's WebDriver text of the button is its first line only.
  assert.match(await shownText(wd, '[data-testid="connection-stamped"]') ?? '', /stamped\s*1 entity · none/,
    'the saved connection is listed with its entity');
  // Opened again from the list (read back from the file), the form shows its feed keys.
  await wd.click(await wd.byTestId('connection-demo'));
  await wd.waitFor('the demo connection in the form', async () =>
    (await wd.script(`return document.querySelector('[data-testid="conn-profile"]')?.value`)) === 'rowversion');
  await wd.click(await wd.byTestId('connection-stamped'));
  const loaded = await wd.waitFor('the timestamp connection in the form', async () => {
    const v = await wd.script(`const q = (t) => document.querySelector('[data-testid="' + t + '"]')?.value;
      return [q('conn-profile'), q('entity-name-0'), q('cursor-version_field'), q('cursor-filter_param'), q('cursor-timestamp_format')]`);
    return v[0] === 'timestamp' ? v : null;
  });
  assert.deepEqual(loaded, ['timestamp', 'vendors', 'lastModified', 'modifiedSince', 'rfc3339'], 'the saved feed keys are read back');
  await wd.click(await wd.byTestId('test-connection'));
  const stamped = await wd.waitFor('the test of the new connection', async () => {
    const [r] = await wd.findAll('[data-testid="test-result"]');
    return r ? wd.text(r) : null;
  }, { timeoutMs: 20_000 });
  assert.match(stamped, /OK/, `the new timestamp connection answers: ${stamped}`);
  await shot('connections-timestamp');

  // A target made from the form: a refusal beside its field first, then saved to the config file,
  // listed, and Test connection makes one GET at the simulated target and shows its Trackingid.
  await wd.click(await wd.byTestId('add-target'));
  await fill(wd, 'target-id', 'warehouse');
  await fill(wd, 'target-base-url', `${base}/target`);
  await fill(wd, 'target-auth', 'none', 'change');
  await fill(wd, 'target-max-concurrency', '0');
  await wd.click(await wd.byTestId('save-target'));
  const tooFew = await wd.byTestId('target-error-max_concurrency', { timeoutMs: 15_000 });
  assert.match(await wd.text(tooFew), /max_concurrency/, 'the refusal sits beside its field and names the key');
  assert.equal((await wd.findAll('[data-testid="target-warehouse"]')).length, 0, 'a refused target is not saved');
  await fill(wd, 'target-max-concurrency', '2');
  await wd.click(await wd.byTestId('save-target'));
  await wd.byTestId('target-warehouse', { timeoutMs: 15_000 });
  assert.match(await shownText(wd, '[data-testid="target-warehouse"]') ?? '', /warehouse\s*no auth/, 'the saved target is listed');
  await fill(wd, 'target-test-path', '/items');
  await wd.click(await wd.byTestId('test-target'));
  const tested = await wd.waitFor('the test of the new target', async () => {
    const [r] = await wd.findAll('[data-testid="target-test-result"]');
    return r ? wd.text(r) : null;
  }, { timeoutMs: 20_000 });
  assert.match(tested, /OK/, `the simulated target answers: ${tested}`);
  assert.match(await shownText(wd, '[data-testid="target-test-result"] [data-testid="tracking-id"]') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-/,
    'the target test shows the Trackingid of its call');
  await shot('connections-target');

  // The demo's two-way pair: a record changed on both systems before Syncmon syncs either is a
  // conflict on the Failed screen, both versions side by side with the fields that differ marked;
  // "Keep store" sends the store's version to the ERP.
  const sku = 'sku-0001';
  const at = (system) => `${base}/target/${system}/${sku}`;
  const put = async (system, body) => {
    const res = await fetch(at(system), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    assert.ok(res.ok, `PUT ${at(system)}: ${res.status}`);
  };
  await put('store-stock', { id: sku, sku, quantity: 11, changedBy: 'store' });
  await put('erp-stock', { id: sku, sku, quantity: 22, changedBy: 'erp' });
  await go(wd, '#/overview');
  await wd.click(await wd.byTestId('sync-now-store/stock', { timeoutMs: 30_000 }));
  await wd.click(await wd.byTestId('nav-failed'));
  const conflictRow = await wd.waitFor('the conflict in the failed list', async () => {
    const [r] = await wd.findAll('[data-testid="failed-row"]');
    return r ?? null;
  }, { timeoutMs: 60_000 });
  await wd.click(conflictRow);
  await wd.byTestId('conflict', { timeoutMs: 15_000 });
  const differing = await wd.script(`return [...document.querySelectorAll('[data-testid="conflict-row"][data-changed="true"]')].map((r) => r.textContent)`);
  assert.ok(differing.some((t) => t.includes('quantity') && t.includes('11') && t.includes('22')), `quantity differs, 11 against 22: ${differing}`);
  assert.equal(differing.length, 2, `quantity and changedBy differ, not the systems' own versions: ${differing}`);
  await shot('failed-conflict');
  await wd.click(await wd.byTestId('keep-store'));
  await wd.waitFor('the ERP to hold the store\'s version', async () => {
    const res = await fetch(at('erp-stock'), { signal: AbortSignal.timeout(10_000) });
    return res.ok && (await res.json()).quantity === 11;
  }, { timeoutMs: 30_000 });
}
