import { describe, expect, it } from 'vitest';
import { ConfigEditor } from './editor.svelte';
import { toApiError } from '../../lib/api';

type Thing = { id: string; url: string };

function editor(stored: Thing[]) {
  return new ConfigEditor<Thing>({ fetch: async () => stored.map((t) => ({ ...t })), clone: (t) => ({ ...t }), blank: () => ({ id: '', url: '' }) });
}

describe('ConfigEditor', () => {
  it('saves a copy of the form, reads the list again and shows the stored version', async () => {
    const stored: Thing[] = [];
    const e = editor(stored);
    e.addNew();
    expect(e.isNew).toBe(true);
    e.editing!.id = ' a ';
    const fresh = await e.save(async (form) => {
      stored.push({ id: form.id.trim(), url: 'https://stored' });
      return { id: form.id.trim(), message: 'Saved to syncmon.toml.' };
    });
    expect(fresh).toEqual({ id: 'a', url: 'https://stored' });
    expect(e.editing).toEqual({ id: 'a', url: 'https://stored' });
    expect(e.isNew).toBe(false);
    expect(e.saved).toBe('Saved to syncmon.toml.');
    expect(e.list).toHaveLength(1);
  });

  it('keeps the form and shows a refusal beside the field it names', async () => {
    const e = editor([{ id: 'a', url: 'x' }]);
    await e.load();
    e.edit(e.list[0]);
    e.editing!.url = 'not a url';
    const fresh = await e.save(
      async () => {
        throw { code: 'invalid_config', message: 'base_url: not a URL', field: 'connection' };
      },
      (a) => (a.field === 'connection' ? toApiError({ code: a.code, message: a.message, field: 'base_url' }) : a),
    );
    expect(fresh).toBeNull();
    expect(e.editing!.url).toBe('not a url');
    expect(e.err('base_url')).toContain('not a URL');
    expect(e.saving).toBe(false);
    e.edit(e.list[0]);
    expect(e.saveError).toBeNull();
  });
});
