/** A filter expression that cannot be compiled: what is wrong, and where (0-based character offset). */
export class FilterError extends Error {
  constructor(readonly expression: string, readonly position: number, what: string) {
    super(`filter: ${what} at position ${position}:\n${pointAt(expression, position)}`);
    this.name = 'FilterError';
  }
}

/** Width of the expression excerpt shown above the caret. */
const WINDOW = 72;

/**
 * The expression on one line (line breaks and tabs shown as spaces, so columns stay put) with a
 * caret under `position`; a long one is cut to a window around it, marked with "…".
 */
function pointAt(expression: string, position: number): string {
  const flat = expression.replace(/[\t\n\r\v\f]/g, ' ');
  let from = 0;
  if (flat.length > WINDOW) from = Math.max(0, Math.min(position - WINDOW / 2, flat.length - WINDOW));
  const to = Math.min(flat.length, from + WINDOW);
  const head = from > 0 ? '…' : '';
  const line = `${head}${flat.slice(from, to)}${to < flat.length ? '…' : ''}`;
  return `  ${line}\n  ${' '.repeat(head.length + position - from)}^`;
}
