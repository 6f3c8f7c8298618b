// Reads the first file of a zip when it is stored uncompressed: the diagnostics bundle puts its
// SUMMARY.md there, so the served UI shows the summary of the bundle it downloaded.

/** The first file's name and text, or null when the zip does not start with a stored file of known size. */
export function firstStoredFile(bytes: Uint8Array): { name: string; text: string } | null {
  if (bytes.length < 30) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== 0x04034b50) return null;
  const method = v.getUint16(8, true);
  const size = v.getUint32(18, true);
  const nameLen = v.getUint16(26, true);
  const extraLen = v.getUint16(28, true);
  if (method !== 0) return null;
  const start = 30 + nameLen + extraLen;
  if (start + size > bytes.length) return null;
  const dec = new TextDecoder();
  return { name: dec.decode(bytes.subarray(30, 30 + nameLen)), text: dec.decode(bytes.subarray(start, start + size)) };
}
