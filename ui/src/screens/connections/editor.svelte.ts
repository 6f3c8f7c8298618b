// A list of things kept in the config file and the form that edits one of them (the Connections
// screen's connections and targets): loading, choosing, starting a new one, saving with the
// engine's refusal shown beside the field it names, and the form's "Test connection".
import { toApiError, type ApiError } from '../../lib/api';
import { fieldErrorFor } from '../../lib/connections';
import { ConnectionTest } from './probe.svelte';

export interface EditorCalls<T> {
  fetch: () => Promise<T[]>;
  clone: (t: T) => T;
  blank: () => T;
}

export class ConfigEditor<T extends { id: string }> {
  list = $state<T[]>([]);
  loadError = $state<string | null>(null);
  editing = $state<T | null>(null);
  isNew = $state(false);
  saveError = $state<ApiError | null>(null);
  saving = $state(false);
  saved = $state<string | null>(null);
  readonly probe = new ConnectionTest();
  readonly #calls: EditorCalls<T>;

  constructor(calls: EditorCalls<T>) {
    this.#calls = calls;
  }

  async load(): Promise<void> {
    try {
      this.list = await this.#calls.fetch();
      this.loadError = null;
    } catch (e) {
      this.loadError = toApiError(e).message;
    }
  }

  edit(t: T) {
    this.editing = this.#calls.clone(t);
    this.isNew = false;
    this.reset();
  }

  addNew() {
    this.editing = this.#calls.blank();
    this.isNew = true;
    this.reset();
  }

  reset() {
    this.saveError = null;
    this.saved = null;
    this.probe.reset();
  }

  /** The refusal's message when it names `field` (the form shows it beside that field). */
  err = (field: string): string | null => fieldErrorFor(this.saveError, field);

  /**
   * Saves the form: `write` gets a plain copy, stores it and returns its id and the "Saved to …"
   * line; then the list is read again and the form shows what was stored (returned, so the
   * caller can refresh what it derives from it). A refusal goes through `refusal` (a caller's
   * renaming of the field it names) into `saveError`.
   */
  async save(write: (form: T) => Promise<{ id: string; message: string }>, refusal: (e: ApiError) => ApiError = (e) => e): Promise<T | null> {
    const form = this.editing;
    if (!form) return null;
    this.saving = true;
    this.saveError = null;
    this.saved = null;
    try {
      const { id, message } = await write($state.snapshot(form) as T);
      this.saved = message;
      this.isNew = false;
      this.list = await this.#calls.fetch();
      const fresh = this.list.find((t) => t.id === id) ?? null;
      if (fresh) this.editing = this.#calls.clone(fresh);
      return fresh;
    } catch (e) {
      this.saveError = refusal(toApiError(e));
      return null;
    } finally {
      this.saving = false;
    }
  }
}
