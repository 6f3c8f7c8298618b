import { describe, expect, it } from 'vitest';
import { AUTOSTART, autostartEnabled, setAutostart } from './autostart';

/** A fake plugin: the state lives here, as it would in ~/.config/autostart/. */
function fakePlugin(initial: boolean) {
  let on = initial;
  const calls: string[] = [];
  const invoke = async (cmd: string) => {
    calls.push(cmd);
    if (cmd === AUTOSTART.enable) on = true;
    else if (cmd === AUTOSTART.disable) on = false;
    else if (cmd === AUTOSTART.isEnabled) return on;
    else throw new Error(`unknown command ${cmd}`);
    return null;
  };
  return { invoke, calls };
}

describe('start at login', () => {
  it('reads the state from the plugin', async () => {
    expect(await autostartEnabled(fakePlugin(true).invoke)).toBe(true);
    expect(await autostartEnabled(fakePlugin(false).invoke)).toBe(false);
  });

  it('switches on and off, answering what the plugin then says', async () => {
    const p = fakePlugin(false);
    expect(await setAutostart(p.invoke, true)).toBe(true);
    expect(await setAutostart(p.invoke, false)).toBe(false);
    expect(p.calls).toEqual([AUTOSTART.enable, AUTOSTART.isEnabled, AUTOSTART.disable, AUTOSTART.isEnabled]);
  });

  it('reports a refusal instead of pretending', async () => {
    const invoke = async (cmd: string) => {
      if (cmd === AUTOSTART.enable) throw new Error('no home directory');
      return false;
    };
    await expect(setAutostart(invoke, true)).rejects.toThrow('no home directory');
  });
});
