import { describe, expect, it } from 'vitest';
import { backoffMs, createSseParser } from './sse';

function collect(chunks: string[]) {
  const data: string[] = [];
  const comments: string[] = [];
  const p = createSseParser({ data: (d) => data.push(d), comment: (c) => comments.push(c) });
  for (const c of chunks) p.push(c);
  return { data, comments, p };
}

describe('SSE parser', () => {
  it('parses events split anywhere across chunks', () => {
    const { data, comments } = collect([': conn', 'ected\n\nda', 'ta: {"a":1}\n', '\ndata: {"b":2}\n\n']);
    expect(comments).toEqual(['connected']);
    expect(data).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('handles CRLF, CR split across chunks, multi-line data, and ignores other fields', () => {
    const { data } = collect(['event: x\r\nid: 3\r\ndata: one\r', '\ndata:two\r\n\r\n']);
    expect(data).toEqual(['one\ntwo']);
  });

  it('keeps keepalive comments out of the data', () => {
    const { data, comments } = collect([': keepalive\n\n', ': keepalive\n\n']);
    expect(data).toEqual([]);
    expect(comments).toEqual(['keepalive', 'keepalive']);
  });

  it('flushes a trailing event on end()', () => {
    const { data, p } = collect(['data: last']);
    expect(data).toEqual([]);
    p.end();
    expect(data).toEqual(['last']);
  });

  it('backs off from 0.5 s doubling to 15 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });
});
