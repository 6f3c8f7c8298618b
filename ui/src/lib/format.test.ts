import { describe, expect, it } from 'vitest';
import { axisTime, bytes, checkpointValue, count, duration, lag, ms, percent, plainWords, plural, prettyJson, relative } from './format';

const NOW = 1_700_000_000_000;

describe('format', () => {
  it('charts a timestamp checkpoint as a date and a version as itself', () => {
    expect(new Date(checkpointValue('timestamp', '1704067205250000')).toISOString()).toBe('2024-01-01T00:00:05.250Z');
    expect(checkpointValue('version', '1234')).toBe(1234);
  });

  it('writes durations with at most two units', () => {
    expect(duration(0)).toBe('0 s');
    expect(duration(42)).toBe('42 s');
    expect(duration(300)).toBe('5 min');
    expect(duration(3 * 3600 + 20 * 60 + 5)).toBe('3 h 20 min');
    expect(duration(2 * 86400 + 4 * 3600)).toBe('2 d 4 h');
    expect(duration(3600 + 5)).toBe('1 h');
    expect(duration(null)).toBe('—');
  });

  it('writes relative times both ways', () => {
    expect(relative(NOW - 500, NOW)).toBe('just now');
    expect(relative(NOW - 12_000, NOW)).toBe('12 s ago');
    expect(relative(NOW - 5 * 60_000, NOW)).toBe('5 min ago');
    expect(relative(NOW + 30_000, NOW)).toBe('in 30 s');
    expect(relative(null, NOW)).toBe('never');
  });

  it('computes lag from the last caught-up time and never goes negative', () => {
    expect(lag(NOW - 90_000, NOW)).toBe('1 min 30 s');
    expect(lag(NOW + 5_000, NOW)).toBe('0 s');
    expect(lag(null, NOW)).toBe('—');
  });

  it('formats ms, counts, percentages and bytes', () => {
    expect(ms(37)).toBe('37 ms');
    expect(ms(1234)).toBe('1.2 s');
    expect(ms(95_000)).toBe('1 min 35 s');
    expect(count(1234567)).toBe('1,234,567');
    expect(percent(0)).toBe('0 %');
    expect(percent(0.0734)).toBe('7.3 %');
    expect(percent(0.5)).toBe('50 %');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(3500)).toBe('3.4 KB');
  });

  it('picks the noun for a count', () => {
    expect(plural(1, 'item')).toBe('item');
    expect(plural(0, 'item')).toBe('items');
    expect(plural(null, 'item')).toBe('items');
    expect(plural(2, 'entity', 'entities')).toBe('entities');
  });

  it('pretty-prints JSON payloads and leaves other text alone', () => {
    expect(prettyJson('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyJson('not json {')).toBe('not json {');
  });
});

describe('plainWords', () => {
  it('turns a quoted gateway error page into its text', () => {
    const msg =
      'the source answered 503: <html> <head><title>503 Service Unavailable</title></head> <body> <center><h1>503 Service Unavailable</h1></center> <hr><center>gateway</center> </body> </html>';
    expect(plainWords(msg)).toBe('the source answered 503: 503 Service Unavailable gateway');
  });

  it('leaves ordinary messages alone (comparisons are not tags)', () => {
    expect(plainWords('rowVersion 5 < 7 and  a > b')).toBe('rowVersion 5 < 7 and a > b');
    expect(plainWords(null)).toBe('');
  });
});

describe('axisTime', () => {
  it('labels chart axes in 24-hour local time, with the date over long spans', () => {
    const at = new Date(2026, 11, 3, 14, 5, 30).getTime();
    expect(axisTime(at, 300)).toBe('14:05:30');
    expect(axisTime(at, 24 * 3600)).toBe('14:05');
    expect(axisTime(at, 7 * 24 * 3600)).toBe('12-03\n14:05');
    expect(axisTime(new Date(2026, 11, 3, 23, 0).getTime(), 3600)).toBe('23:00');
  });
});
