/**
 * The explained-deviation tables shared by the conformance suites: each deviation from tshark
 * must be covered by an entry (checked by hand), each entry covers `count` deviations (default
 * one), and entries that cover nothing any more are reported as stale.
 */
export function reconcile<D, E extends { count?: number }>(
  devs: readonly D[],
  table: readonly E[],
  covers: (entry: E, dev: D) => boolean,
): { unexplained: D[]; stale: E[] } {
  const budget = new Map<E, number>(table.map((e) => [e, e.count ?? 1]));
  const unexplained: D[] = [];
  for (const d of devs) {
    const e = table.find((x) => covers(x, d) && budget.get(x)! > 0);
    if (e) budget.set(e, budget.get(e)! - 1);
    else unexplained.push(d);
  }
  return { unexplained, stale: table.filter((e) => budget.get(e)! > 0) };
}

/**
 * A named rule that explains a class of deviations (Redis, MySQL): `covers` says which, `reason`
 * why tapwire and tshark differ there. Unlike the hand-checked entries above, a rule may cover any
 * number of deviations; one that covers none is stale.
 */
export interface Rule<D> {
  name: string;
  reason: string;
  covers: (d: D) => boolean;
}

/** The deviations no rule covers. */
export function unexplained<D>(devs: readonly D[], rules: readonly Rule<D>[]): D[] {
  return devs.filter((d) => !rules.some((r) => r.covers(d)));
}

/** Deviations per rule (the first rule that covers each), and the rules that cover none. */
export function ruleReport<D>(devs: readonly D[], rules: readonly Rule<D>[]): { counts: Record<string, number>; unused: string[] } {
  const counts: Record<string, number> = {};
  for (const d of devs) {
    const r = rules.find((x) => x.covers(d));
    if (r) counts[r.name] = (counts[r.name] ?? 0) + 1;
  }
  return { counts, unused: rules.filter((r) => !devs.some((d) => r.covers(d))).map((r) => r.name) };
}
