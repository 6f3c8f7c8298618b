// The Failed items screen's groups by JSON Schema rule (`minimum`, `type`, `pattern`, …): the
// counts come with the first page of `failed_page` (`rules`), counted under the filter whatever
// its own `rule`, so every group stays on screen while one is chosen. Clicking a group filters
// the list to it; clicking it again clears that filter. RuleGroups.svelte shows them.
import { count, plural } from '../../lib/format';
import type { RuleCount } from '../../lib/types';

export interface RuleGroup {
  rule: string;
  count: number;
  /** The list is filtered to this rule. */
  active: boolean;
  /** "minimum · 12 items" */
  label: string;
}

/** The groups to show, most items first (the engine's order; ties by name). The chosen rule
 * stays listed with 0 when nothing under the filter breaks it any more, so it can be cleared. */
export function ruleGroups(rules: readonly RuleCount[] | null | undefined, chosen: string): RuleGroup[] {
  const merged = new Map<string, number>();
  for (const r of rules ?? []) merged.set(r.rule, (merged.get(r.rule) ?? 0) + r.count);
  if (chosen && !merged.has(chosen)) merged.set(chosen, 0);
  return [...merged]
    .sort(([a, n], [b, m]) => m - n || a.localeCompare(b))
    .map(([rule, n]) => ({ rule, count: n, active: rule === chosen, label: `${rule} · ${count(n)} ${plural(n, 'item')}` }));
}

/** A chip filter (rule, error kind) after a click on `clicked`: chosen, or cleared when it already was. */
export function toggleChip(chosen: string, clicked: string): string {
  return chosen === clicked ? '' : clicked;
}

/** Items that broke any rule, for the heading of the groups. */
export function ruleTotal(groups: readonly RuleGroup[]): number {
  return groups.reduce((n, g) => n + g.count, 0);
}
