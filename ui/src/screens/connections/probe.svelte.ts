// The state behind a "Test connection" button (a connection's or a target's): whether it runs,
// its answer, or why it could not run.
import { toApiError } from '../../lib/api';
import type { TestConnectionResult } from '../../lib/types';

export class ConnectionTest {
  running = $state(false);
  result = $state<TestConnectionResult | null>(null);
  error = $state<string | null>(null);

  reset() {
    this.result = null;
    this.error = null;
  }

  async run(call: () => Promise<TestConnectionResult>) {
    this.running = true;
    this.reset();
    try {
      this.result = await call();
    } catch (e) {
      this.error = toApiError(e).message;
    } finally {
      this.running = false;
    }
  }
}
