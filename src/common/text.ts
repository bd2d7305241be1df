/**
 * A count with its noun, singular for one: "1 flow", "3 flows", "1 UDP flow", "0 decode problems".
 * `many` is for nouns whose plural is not the singular plus "s".
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "http 17, postgres 12": counts by key, largest first (ties by key), as summaries list them. */
export function countsText(counts: Record<string, number>, sep = ' '): string {
  return Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k}${sep}${n}`).join(', ');
}
