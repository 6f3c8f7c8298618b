// Plain-words formatting of times, durations and numbers. Every function takes `now` so tests
// control the clock.

import type { CheckpointKind } from './types';

const units: [number, string][] = [
  [86_400, 'd'],
  [3_600, 'h'],
  [60, 'min'],
  [1, 's'],
];

/** A duration in seconds, short: "42 s", "5 min", "3 h 20 min", "2 d 4 h". */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const parts: string[] = [];
  for (const [size, unit] of units) {
    if (s >= size) {
      const n = Math.floor(s / size);
      parts.push(`${n} ${unit}`);
      s -= n * size;
      if (parts.length === 2) break;
    } else if (parts.length) {
      break; // "1 h 0 min 5 s" reads badly; stop at the first gap
    }
  }
  return parts.join(' ');
}

/** Milliseconds → "850 ms", "1.2 s", "3 min 10 s". */
export function ms(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return '—';
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(value < 10_000 ? 1 : 0)} s`;
  return duration(value / 1000);
}

/** "just now", "12 s ago", "5 min ago", "in 30 s" — `at` and `now` in ms since the epoch. */
export function relative(at: number | null | undefined, now: number): string {
  if (at == null) return 'never';
  const diff = Math.round((now - at) / 1000);
  if (Math.abs(diff) < 2) return 'just now';
  return diff > 0 ? `${duration(diff)} ago` : `in ${duration(-diff)}`;
}

/** Lag as the engine reports it (seconds), rendered against the current time when we know the anchor. */
export function lag(lastCaughtUpAt: number | null | undefined, now: number): string {
  if (lastCaughtUpAt == null) return '—';
  return duration(Math.max(0, (now - lastCaughtUpAt) / 1000));
}

/** Local date and time, e.g. "2026-11-24 10:33:02". */
export function timestamp(at: number | null | undefined): string {
  if (at == null) return '—';
  const d = new Date(at);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * A chart's time-axis label, 24-hour like every time in the UI: "14:05" within a day,
 * "14:05:30" within ten minutes, "12-03\n14:00" (month-day over the time) over longer spans.
 * `at` in ms since the epoch, `spanSeconds` the axis's whole range.
 */
export function axisTime(at: number, spanSeconds: number): string {
  const t = timestamp(at);
  if (spanSeconds <= 600) return t.slice(11);
  if (spanSeconds <= 36 * 3600) return t.slice(11, 16);
  return `${t.slice(5, 10)}\n${t.slice(11, 16)}`;
}

/** A checkpoint as a chart value: a timestamp feed's in milliseconds since 1970 (the engine keeps
 * microseconds), so it reads as a date; any other checkpoint is its version. */
export function checkpointValue(kind: CheckpointKind, checkpoint: string): number {
  return kind === 'timestamp' ? Math.floor(Number(checkpoint) / 1000) : Number(checkpoint);
}

/** Local time of day only, e.g. "10:33:02". */
export function clock(at: number | null | undefined): string {
  if (at == null) return '—';
  return timestamp(at).slice(11);
}

/** The local calendar day of `at`, as "2026-12-01" (for grouping by day). */
export function localDay(at: number): string {
  return timestamp(at).slice(0, 10);
}

/**
 * A day heading: "Today", "Yesterday", else the date in the user's locale with its weekday,
 * e.g. "Tue 1 Dec 2026" (en-GB) or "Tue, Dec 1, 2026" (en-US). `locale` for tests.
 */
export function dayLabel(at: number, now: number, locale?: string): string {
  const day = localDay(at);
  if (day === localDay(now)) return 'Today';
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (day === localDay(yesterday.getTime())) return 'Yesterday';
  return new Date(at).toLocaleDateString(locale, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).replaceAll(',', '');
}

/** A span of local times: "14:02–14:05", or one time when both are in the same minute. */
export function clockSpan(from: number, to: number): string {
  const [a, b] = [timestamp(from).slice(11, 16), timestamp(to).slice(11, 16)];
  return a === b ? a : `${a}–${b}`;
}

/** A local time to come: "14:05" today, "2027-12-03 14:05" on another day. */
export function until(at: number | null | undefined, now: number): string {
  if (at == null) return '—';
  const [day, time] = timestamp(at).split(' ');
  return day === timestamp(now).split(' ')[0] ? time.slice(0, 5) : `${day} ${time.slice(0, 5)}`;
}

const nf = new Intl.NumberFormat('en-US');
/** 1234567 → "1,234,567". */
export function count(n: number | null | undefined): string {
  return n == null ? '—' : nf.format(n);
}

/** The noun for a count: plural(1, 'item') → "item", plural(3, 'entity', 'entities') → "entities". */
export function plural(n: number | null | undefined, one: string, many = `${one}s`): string {
  return n === 1 ? one : many;
}

/** 0.0734 → "7.3 %". */
export function percent(share: number | null | undefined): string {
  if (share == null || !Number.isFinite(share)) return '—';
  const p = share * 100;
  return `${p === 0 ? '0' : p < 10 ? p.toFixed(1) : Math.round(p).toString()} %`;
}

/** Bytes → "512 B", "3.4 KB", "1.2 MB". */
export function bytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A payload string as indented JSON when it parses, else as is. */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/**
 * An error message in plain words: a gateway's HTML error page quoted inside a message becomes its
 * text ("503 Service Unavailable gateway"), repeated fragments once, whitespace collapsed.
 */
export function plainWords(text: string | null | undefined): string {
  if (!text) return '';
  if (!/<\/?[a-z!][^>]*>/i.test(text)) return text.replace(/\s+/g, ' ').trim();
  const parts = text
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, '\u0000')
    .replace(/<[^>]*>/g, '\u0000')
    .split('\u0000')
    .map((p) => p.replace(/\s+/g, ' ').trim())
    .filter(Boolean);
  const seen = new Set<string>();
  return parts.filter((p) => (seen.has(p) ? false : (seen.add(p), true))).join(' ');
}
