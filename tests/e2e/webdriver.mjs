// A minimal W3C WebDriver client over fetch: enough to drive the desktop window through
// tauri-driver (which hands the session to WebKitWebDriver) and Chromium through chromedriver.
// Every call has a timeout: a WebDriver server that hangs must fail the test, not stall the suite.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(base, { callTimeoutMs = 30_000 } = {}) {
    this.base = base.replace(/\/$/, '');
    this.callTimeoutMs = callTimeoutMs;
    this.session = null;
  }

  async call(method, path, body, timeoutMs = this.callTimeoutMs) {
    const url = `${this.base}/session/${this.session}${path}`;
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const v = json.value ?? {};
      const err = new Error(`${method} ${path}: ${res.status} ${v.error ?? ''} ${v.message ?? ''}`.trim());
      err.webdriverError = v.error;
      throw err;
    }
    return json.value;
  }

  async start(capabilities, timeoutMs = 60_000) {
    const res = await fetch(`${this.base}/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ capabilities: { alwaysMatch: capabilities } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`new session: ${res.status} ${JSON.stringify(json)}`);
    this.session = json.value.sessionId;
    return json.value;
  }

  async quit() {
    if (!this.session) return;
    try {
      await this.call('DELETE', '', undefined, 15_000);
    } finally {
      this.session = null;
    }
  }

  async navigate(url) {
    return this.call('POST', '/url', { url }, 60_000);
  }

  /** An async script: the last argument is the callback that ends it. */
  async scriptAsync(source, args = [], timeoutMs = this.callTimeoutMs) {
    return this.call('POST', '/execute/async', { script: source, args }, timeoutMs);
  }

  /** All elements matching a CSS selector (possibly none). */
  async findAll(css) {
    const els = await this.call('POST', '/elements', { using: 'css selector', value: css });
    return els.map((e) => e[ELEMENT]);
  }

  async text(id) {
    return this.call('GET', `/element/${id}/text`);
  }

  async attr(id, name) {
    return this.call('GET', `/element/${id}/attribute/${encodeURIComponent(name)}`);
  }

  async click(id) {
    return this.call('POST', `/element/${id}/click`, {});
  }

  async script(source, args = []) {
    return this.call('POST', '/execute/sync', { script: source, args });
  }

  async screenshot() {
    return Buffer.from(await this.call('GET', '/screenshot', undefined, 10_000), 'base64');
  }

  /** Waits (bounded) until `probe` returns a truthy value, and returns it. */
  async waitFor(what, probe, { timeoutMs = 30_000, everyMs = 200 } = {}) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        const v = await probe();
        if (v) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** The first element for a `data-testid`, once it is there. */
  async byTestId(testid, opts) {
    return this.waitFor(`[data-testid="${testid}"]`, async () => (await this.findAll(`[data-testid="${testid}"]`))[0], opts);
  }
}
