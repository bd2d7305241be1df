/**
 * A spec that cannot be used: the file, the field (a path such as `checks[2].expect.count.atMost`,
 * or `line 3, column 5` for YAML syntax) and what was wrong. The CLI prints the message as is and
 * exits 2, so it must say enough to fix the spec without reading tapwire's source.
 */
export class SpecError extends Error {
  /** What was wrong, without the file and field: kept so a caller can re-attribute the error. */
  readonly what: string;

  constructor(readonly source: string, readonly at: string, what: string, readonly line?: number) {
    super(`${source}: ${at}: ${what}${line !== undefined ? ` (line ${line})` : ''}`);
    this.name = 'SpecError';
    this.what = what;
  }
}
