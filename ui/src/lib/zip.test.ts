import { describe, expect, it } from 'vitest';
import { firstStoredFile } from './zip';

/** A zip's first local file header and data, as the zip crate writes a stored file. */
function stored(name: string, text: string, method = 0): Uint8Array {
  const enc = new TextEncoder();
  const n = enc.encode(name);
  const d = enc.encode(text);
  const out = new Uint8Array(30 + n.length + d.length + 4);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x04034b50, true);
  v.setUint16(8, method, true);
  v.setUint32(18, d.length, true);
  v.setUint32(22, d.length, true);
  v.setUint16(26, n.length, true);
  v.setUint16(28, 0, true);
  out.set(n, 30);
  out.set(d, 30 + n.length);
  out.set([0x50, 0x4b, 0x03, 0x04], 30 + n.length + d.length); // the next file begins
  return out;
}

describe('firstStoredFile', () => {
  it('reads a stored first file', () => {
    expect(firstStoredFile(stored('SUMMARY.md', '# Syncmon diagnostics\n\n- **demo/items** is failing'))).toEqual({
      name: 'SUMMARY.md',
      text: '# Syncmon diagnostics\n\n- **demo/items** is failing',
    });
  });

  it('gives up on anything else', () => {
    expect(firstStoredFile(stored('SUMMARY.md', 'x', 8))).toBeNull(); // deflated
    expect(firstStoredFile(new TextEncoder().encode('not a zip at all, long enough to read'))).toBeNull();
    expect(firstStoredFile(stored('a', 'hello').subarray(0, 33))).toBeNull(); // cut short
  });
});
