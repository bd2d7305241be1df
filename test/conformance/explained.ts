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
